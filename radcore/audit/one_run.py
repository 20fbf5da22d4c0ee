"""The one-run audit of Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1) Training Run".

``m`` canaries each enter training by an independent fair coin ``S_i``. After training the auditor guesses the
coin of ``r`` of them (the rest abstain) and gets ``v`` right. If training is (epsilon, delta)-DP, the number of
correct guesses is nearly dominated by a binomial: for every ``v`` (their Theorem 5.2, guesses with abstention),

    P[W >= v] <= P[B >= v] + 2 m delta * max_{1 <= i <= v} P[v - i <= B < v] / i,   B ~ Binomial(r, q),

with ``q = e^eps / (1 + e^eps)``, the accuracy of eps-randomised response. The right side is the p-value of the
observed ``v`` under the hypothesis "this run is (eps, delta)-DP". The empirical lower bound at confidence
``1 - alpha`` is the largest eps whose p-value stays below ``alpha``: every smaller eps is rejected, so with
probability at least ``1 - alpha`` (over the coins and the training noise) the run is not (eps', delta)-DP for any
eps' below the bound. The bound can only refute a claim, never confirm one (see :func:`audit_canaries`).

radcore implements the theorem itself (here, tested against its closed form at delta = 0 and a Monte Carlo check
of the dominance). The same bound is computed by DeepMind's ``jax_privacy.auditing`` and by the authors'
appendix code; ``jax_privacy`` pulls in JAX, optax and dp-accounting from git, too much for one formula in a
PyTorch compendium.

Which canaries to guess: the ``k`` highest scores "in", the ``k`` lowest "out", abstain on the rest. The paper's
experiments report the best ``k`` over a sweep, which a post-hoc choice makes optimistic; radcore fixes a small
grid of ``k`` in advance and splits ``alpha`` among them (Bonferroni), so the maximum over the grid is itself a
valid ``1 - alpha`` bound.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from scipy.stats import binom

GUESS_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # guesses r = 2k as a share of the m canaries
EPSILON_CEILING = 100.0  # no search beyond this


def p_value(*, m: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """P-value of ``correct`` right guesses out of ``guesses`` on ``m`` canaries, if training is (epsilon, delta)-DP."""
    if not 0 <= correct <= guesses <= m:
        raise ValueError(f"need 0 <= correct <= guesses <= m, got {correct}, {guesses}, {m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and 0 <= delta <= 1, got {epsilon}, {delta}")
    if correct == 0:
        return 1.0
    q = float(expit(epsilon))
    tail = float(binom.sf(correct - 1, guesses, q))  # P[B >= v]
    if delta == 0:
        return min(tail, 1.0)
    below = np.cumsum(binom.pmf(correct - np.arange(1, correct + 1), guesses, q))  # P[v - i <= B < v], i = 1..v
    return min(tail + 2 * m * delta * float(np.max(below / np.arange(1, correct + 1))), 1.0)


def epsilon_lower_bound(*, m: int, guesses: int, correct: int, delta: float, alpha: float = 0.05,
                        tolerance: float = 1e-6) -> float:
    """The largest epsilon that ``correct`` of ``guesses`` refutes at level ``alpha`` (0 if none)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    reject = lambda eps: p_value(m=m, guesses=guesses, correct=correct, epsilon=eps, delta=delta) <= alpha  # noqa: E731
    if not reject(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while reject(hi):  # the p-value rises with epsilon: find a level that is not rejected
        lo, hi = hi, 2 * hi
        if hi > EPSILON_CEILING:
            return EPSILON_CEILING
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if reject(mid) else (lo, mid)
    return lo


def guess_counts(m: int, fractions=GUESS_FRACTIONS) -> list[int]:
    """The ``k`` of the grid (``k`` guesses "in" and ``k`` "out" each), fixed by ``m`` before any score is seen."""
    return sorted({max(1, int(round(f * m / 2))) for f in fractions if 2 * max(1, int(round(f * m / 2))) <= m})


def audit_canaries(scores, included, *, delta: float, confidence: float = 0.95,
                   fractions=GUESS_FRACTIONS) -> dict:
    """The one-run audit of canaries with attack ``scores`` (higher: more likely trained on) and their coins.

    Returns the bound (the maximum over the ``k`` grid, each ``k`` tested at ``(1 - confidence) / len(grid)``), the
    ``k``, guesses and correct guesses that gave it, and every ``k``'s row.
    """
    scores, included = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    m = len(scores)
    if m < 2 or included.shape != (m,):
        raise ValueError(f"need at least 2 canaries with one coin each, got {m} scores and {included.shape} coins")
    alpha = 1 - confidence
    ks = guess_counts(m, fractions)
    # Ties broken by canary index, which the coins are independent of, so the guesses stay a function of the model.
    order = np.lexsort((np.arange(m), scores))  # ascending score
    rows = []
    for k in ks:
        correct = int((~included[order[:k]]).sum() + included[order[m - k:]].sum())
        rows.append({"k": k, "guesses": 2 * k, "correct": correct,
                     "epsilon_lower_bound": epsilon_lower_bound(m=m, guesses=2 * k, correct=correct, delta=delta,
                                                                alpha=alpha / len(ks))})
    best = max(rows, key=lambda row: (row["epsilon_lower_bound"], -row["k"]))
    return {"epsilon_lower_bound": best["epsilon_lower_bound"], "confidence": confidence, "delta": delta,
            "m": m, "included": int(included.sum()), "k": best["k"], "guesses": best["guesses"],
            "correct": best["correct"], "accuracy": best["correct"] / best["guesses"],
            "bonferroni_tests": len(ks), "by_k": rows}
