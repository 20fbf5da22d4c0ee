"""Rényi DP of the Poisson-subsampled Gaussian mechanism at integer orders, and its (epsilon, delta).

For an integer order ``a``, sampling rate ``q`` and noise multiplier ``sigma`` (Mironov, Talwar and Zhang 2019,
section 3.3), the RDP of one step is ``log A / (a - 1)`` with

    A = sum_{i=0..a} C(a, i) q^i (1 - q)^(a - i) exp((i^2 - i) / (2 sigma^2)).

Opacus and dp-accounting both sum this term by term in a Python loop. Planning one DP-LoRA cell (two LP-FT phases,
radcore's orders up to 10,000, tens of calibration steps) took 8.6 s of Opacus' loop; here each order is one
numpy ``logsumexp``, so one evaluation at every order takes about 10 ms and that plan 0.4-0.5 s
(``benchmarks/accounting.py`` measures both). The
binomial is taken as ``gammaln`` differences, as dp-accounting does: Opacus' ``log(binom(a, i))`` overflows to
infinity above order ~1,030, which drops those orders out of its minimum (an epsilon that is conservative, never
optimistic). The conversion to (epsilon, delta) is Opacus' own (Balle et al. 2020, theorem 21).
tests/test_rdp.py checks every order against dp-accounting and, where Opacus is finite, against Opacus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from opacus.accountants.analysis.rdp import get_privacy_spent
from scipy.special import gammaln, logsumexp


def subsampled_gaussian_rdp(q: float, sigma: float, orders: Sequence[int]) -> np.ndarray:
    """RDP of one step of the Poisson-subsampled Gaussian at each integer order (``inf`` where there is none)."""
    if not 0 <= q <= 1:
        raise ValueError(f"sampling rate must lie in [0, 1], got {q}")
    if sigma < 0:
        raise ValueError(f"noise multiplier must be >= 0, got {sigma}")
    orders = np.asarray(orders, dtype=float)
    if np.any(orders < 2) or np.any(orders != np.round(orders)):
        raise ValueError("RDP orders must be integers >= 2 (radcore evaluates integer orders only)")
    if q == 0:
        return np.zeros_like(orders)
    if sigma == 0:
        return np.full_like(orders, np.inf)
    if q == 1:
        return orders / (2 * sigma**2)
    log_q, log_1mq = math.log(q), math.log1p(-q)
    rdp = np.empty_like(orders)
    for k, order in enumerate(orders):
        i = np.arange(order + 1)
        log_binom = gammaln(order + 1) - gammaln(i + 1) - gammaln(order - i + 1)
        terms = log_binom + i * log_q + (order - i) * log_1mq + (i * i - i) / (2 * sigma**2)
        rdp[k] = logsumexp(terms) / (order - 1)
    return rdp


def rdp_epsilon(history: Iterable[tuple[float, float, int]], *, delta: float, orders: Sequence[int]) -> float:
    """Epsilon at ``delta`` of phases ``(noise multiplier, sample rate, steps)`` composed in RDP (the curves add)."""
    rdp = sum(steps * subsampled_gaussian_rdp(q, sigma, orders) for sigma, q, steps in history)
    epsilon, _ = get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
    return float(epsilon)
