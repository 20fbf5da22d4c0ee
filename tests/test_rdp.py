"""radcore's vectorised RDP of the subsampled Gaussian is the same curve as dp-accounting's at every order and as
Opacus' wherever Opacus' binomial does not overflow; calibration with it keeps every budget."""

import math

import numpy as np
import pytest
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as opacus_rdp

from radcore.privacy import RDP_ORDERS, composed_epsilon, least_noise
from radcore.rdp import rdp_epsilon, subsampled_gaussian_rdp

dp_rdp = pytest.importorskip("dp_accounting.rdp.rdp_privacy_accountant")

CASES = [(1 / 17, 0.8), (1 / 17, 5.0), (0.06, 30.0), (1e-3, 1.2), (0.5, 2.0), (0.25, 700.0)]


@pytest.mark.parametrize("q, sigma", CASES)
def test_every_order_agrees_with_dp_accounting(q, sigma):
    ours = subsampled_gaussian_rdp(q, sigma, RDP_ORDERS)
    theirs = np.array(dp_rdp._compute_rdp_poisson_subsampled_gaussian(q, sigma, list(RDP_ORDERS)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)


@pytest.mark.parametrize("q, sigma", CASES)
def test_orders_opacus_can_evaluate_agree_with_opacus(q, sigma):
    orders = [o for o in RDP_ORDERS if o <= 1000]  # above ~1,030 Opacus' binom() overflows and its RDP is inf
    theirs = np.array([opacus_rdp._compute_rdp(q, sigma, o) for o in orders])
    np.testing.assert_allclose(subsampled_gaussian_rdp(q, sigma, orders), theirs, rtol=1e-9, atol=0)


def test_special_cases_and_bad_orders():
    orders = [2, 10, 100]
    assert np.all(subsampled_gaussian_rdp(0.0, 1.0, orders) == 0)  # nobody sampled: nothing leaks
    assert np.all(np.isinf(subsampled_gaussian_rdp(0.1, 0.0, orders)))  # no noise: no privacy
    np.testing.assert_allclose(subsampled_gaussian_rdp(1.0, 2.0, orders), np.array(orders) / 8)  # plain Gaussian
    for bad in ([2.5], [1], [0]):
        with pytest.raises(ValueError, match="integers >= 2"):
            subsampled_gaussian_rdp(0.1, 1.0, bad)
    with pytest.raises(ValueError, match="sampling rate"):
        subsampled_gaussian_rdp(1.5, 1.0, orders)


def test_epsilon_of_a_composition_matches_opacus_accountant_at_opacus_orders():
    history = [(11.1, 1 / 5, 100), (2.55, 1 / 17, 51)]
    orders = [o for o in RDP_ORDERS if o <= 1000]
    accountant = RDPAccountant()
    accountant.history = list(history)
    theirs = accountant.get_epsilon(delta=1e-5, alphas=orders)
    assert rdp_epsilon(history, delta=1e-5, orders=orders) == pytest.approx(theirs, rel=1e-9)
    # the composition is the sum of the phases' curves: more steps, more epsilon
    assert composed_epsilon(history, delta=1e-5) > composed_epsilon(history[:1], delta=1e-5)


def test_least_noise_finds_the_smallest_level_within_tolerance_and_refuses_the_impossible():
    epsilon_of = lambda x: 3.0 / x  # noqa: E731  falls as the noise grows
    x = least_noise(epsilon_of, 0.7)
    assert epsilon_of(x) <= 0.7 and epsilon_of(x) >= 0.7 * 0.999
    assert math.isclose(x, 3.0 / 0.7, rel_tol=2e-3)
    with pytest.raises(ValueError, match="no noise multiplier"):
        least_noise(lambda x: 1.0, 0.5)
