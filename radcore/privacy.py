"""Privacy planning and accounting for DP-SGD (Poisson-sampled, per-sample clipped, Gaussian noise).

The plan is made before training from what the accountant assumes: the sampling rate of Opacus'
Poisson loader (``1 / ceil(n / batch)``), the number of steps it will take (``epochs`` times
``ceil(n / batch)``), and the target (epsilon, delta). The noise multiplier is the smallest one (to
0.1 % of epsilon) whose accounted epsilon does not exceed the target. The RDP accountant is radcore's vectorised
one (:mod:`radcore.rdp`, the same curve as Opacus' and dp-accounting's); PRV is Opacus'.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

from opacus.accountants import create_accountant

from radcore.rdp import rdp_epsilon

ACCOUNTANTS = ("rdp", "prv")
# Opacus' default RDP orders stop at 63, which cannot certify epsilon below ~0.2 at any noise level
# (the conversion term log(1/delta)/(order-1) alone exceeds it). Larger orders make epsilon=0.01 reachable.
# Integer orders only. At fractional orders Opacus' RDP of the subsampled Gaussian comes out below Google's
# dp-accounting (e.g. q=1/16, sigma=0.90: 4.231 vs 4.282 at order 2.5), and in (1, 2) dp-accounting's series does
# not even converge at small sigma; at integer orders the two agree exactly. An epsilon resting on a fractional
# order could therefore be optimistic: radcore evaluates integer orders, where both implementations agree.
RDP_ORDERS = tuple(list(range(2, 64)) + sorted({int(round(64 * (10000 / 64) ** (i / 23))) for i in range(24)}))
DELTA_FRACTION_OF_INVERSE_N = 0.1  # default delta = 0.1 / n: an order of magnitude below 1/n
CALIBRATION_TOLERANCE = 0.001  # a calibrated run spends between 99.9% and 100% of its epsilon
MAX_NOISE = 1e6  # no noise multiplier above this: the target is beyond what the accountant's orders certify


class PrivacyBudgetError(RuntimeError):
    """A run would spend more privacy than its target."""


@dataclass(frozen=True)
class PrivacyPlan:
    """Everything the accountant needs, and the epsilon it gives for the whole run."""

    epsilon_target: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    accountant: str
    epsilon_planned: float

    def as_dict(self) -> dict:
        return asdict(self)


def default_delta(n_train: int) -> float:
    """delta = 0.1 / n: well below 1/n, the level at which one record may leak outright."""
    return DELTA_FRACTION_OF_INVERSE_N / n_train


def poisson_schedule(*, n_train: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """(sample rate, steps) of Opacus' Poisson loader for this corpus and expected batch size."""
    if n_train < 1 or batch_size < 1 or epochs < 1:
        raise ValueError(f"need n_train, batch_size, epochs >= 1 (got {n_train}, {batch_size}, {epochs})")
    batches_per_epoch = math.ceil(n_train / batch_size)
    return 1.0 / batches_per_epoch, epochs * batches_per_epoch


def spent_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                  accountant: str = "rdp") -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps, by the named Opacus accountant."""
    return composed_epsilon([(noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant)


def composed_epsilon(history: list[tuple[float, float, int]], *, delta: float, accountant: str = "rdp") -> float:
    """Epsilon of a sequence of Poisson-subsampled Gaussian phases ``(noise multiplier, sample rate, steps)``
    composed by the named accountant (RDP: the curves add, :mod:`radcore.rdp`; PRV: Opacus composes the privacy
    loss distributions)."""
    if accountant == "rdp":
        return rdp_epsilon(history, delta=delta, orders=RDP_ORDERS)
    acc = create_accountant(accountant)
    acc.history = [tuple(h) for h in history]
    return float(acc.get_epsilon(delta=delta))


def least_noise(epsilon_of, epsilon: float) -> float:
    """The smallest noise level ``x`` (to within :data:`CALIBRATION_TOLERANCE` of ``epsilon``) whose
    ``epsilon_of(x)`` does not exceed ``epsilon``: doubling from 1 until it fits, then bisection. ``epsilon_of``
    must fall as ``x`` grows (more noise, less privacy loss), as every accountant's epsilon does."""
    low, high = 0.0, 1.0
    with warnings.catch_warnings():  # trial noise levels may sit at the orders' ends; the final plan is re-accounted
        warnings.filterwarnings("ignore", message="Optimal order is the")
        while (spent := epsilon_of(high)) > epsilon:
            low, high = high, 2 * high
            if high > MAX_NOISE:
                raise ValueError(f"no noise multiplier up to {MAX_NOISE:g} reaches epsilon {epsilon}: the budget is "
                                 "below what the accountant's orders can certify")
        while epsilon - spent > CALIBRATION_TOLERANCE * epsilon and high - low > 1e-9 * high:
            mid = (low + high) / 2
            if (trial := epsilon_of(mid)) <= epsilon:
                high, spent = mid, trial
            else:
                low = mid
    return high


def plan_privacy(*, epsilon: float, n_train: int, batch_size: int, epochs: int, max_grad_norm: float,
                 delta: float | None = None, accountant: str = "rdp") -> PrivacyPlan:
    """Calibrate the noise multiplier so that the planned run spends at most ``epsilon``."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a positive finite number, got {epsilon}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; choose one of {ACCOUNTANTS}")
    if max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")
    delta = default_delta(n_train) if delta is None else delta
    if not 0 < delta < 1 / n_train:
        why = ": a larger delta allows leaking a whole record" if delta >= 1 / n_train else ""
        raise ValueError(f"delta must lie in (0, 1/n) = (0, {1 / n_train:.3g}) for n={n_train} training "
                         f"reports, got {delta}{why}. Leave delta unset for the default 0.1/n = "
                         f"{default_delta(n_train):.3g}")
    sample_rate, steps = poisson_schedule(n_train=n_train, batch_size=batch_size, epochs=epochs)
    sigma = least_noise(lambda noise: spent_epsilon(noise_multiplier=noise, sample_rate=sample_rate, steps=steps,
                                                    delta=delta, accountant=accountant), epsilon)
    planned = spent_epsilon(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, delta=delta,
                            accountant=accountant)
    if planned > epsilon:
        raise PrivacyBudgetError(f"calibrated noise {sigma:.4g} gives epsilon {planned:.4g} > target {epsilon}")
    return PrivacyPlan(epsilon_target=epsilon, delta=delta, noise_multiplier=sigma, sample_rate=sample_rate,
                       steps=steps, max_grad_norm=max_grad_norm, accountant=accountant,
                       epsilon_planned=planned)


def plan_phases(*, epsilon: float, n_train: int, phases: list[tuple[int, int, float]], max_grad_norm: float,
                delta: float | None = None, accountant: str = "rdp") -> list[PrivacyPlan]:
    """Plans for a run trained in phases on the same reports (LP-FT), whose composition spends at most ``epsilon``.

    ``phases`` are ``(expected batch, epochs, share)``: each phase is first calibrated alone to its ``share`` of
    epsilon (at the full delta; to the whole epsilon where its share lies below what the accountant's orders can
    certify), then every noise multiplier is scaled by one common factor, the smallest (to 0.2%) whose composed
    epsilon, by the same accountant, meets the target. Basic composition of the shares would waste a third or
    more of the budget; the common factor keeps the phases' ratio of noise.
    """
    delta = default_delta(n_train) if delta is None else delta
    alone = []
    for batch, epochs, share in phases:
        options = dict(delta=delta, n_train=n_train, batch_size=batch, epochs=epochs, max_grad_norm=max_grad_norm,
                       accountant=accountant)
        try:
            alone.append(plan_privacy(epsilon=epsilon * share, **options))
        except ValueError:  # the share alone is below the orders' floor; the common factor below fixes the total
            alone.append(plan_privacy(epsilon=epsilon, **options))

    def composed(scale: float) -> float:
        return composed_epsilon([(p.noise_multiplier * scale, p.sample_rate, p.steps) for p in alone], delta=delta,
                                accountant=accountant)

    try:
        scale = least_noise(composed, epsilon)
    except ValueError as err:
        raise PrivacyBudgetError(f"no noise level fits {len(phases)} phases into epsilon {epsilon}") from err
    planned = composed(scale)
    return [PrivacyPlan(epsilon_target=epsilon, delta=delta, noise_multiplier=p.noise_multiplier * scale,
                        sample_rate=p.sample_rate, steps=p.steps, max_grad_norm=max_grad_norm, accountant=accountant,
                        epsilon_planned=planned) for p in alone]
