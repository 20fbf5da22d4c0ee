"""Privacy planning: calibration never exceeds the target and matches what Opacus' loader does."""

import math

import pytest
import torch
from opacus.data_loader import DPDataLoader
from torch.utils.data import DataLoader, TensorDataset

from radcore.privacy import default_delta, plan_privacy, poisson_schedule, spent_epsilon

EPSILONS = (0.01, 0.1, 1.0, 10.0)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_plan_spends_at_most_the_target_and_is_tight(epsilon):
    plan = plan_privacy(epsilon=epsilon, n_train=2400, batch_size=64, epochs=5, max_grad_norm=1.0)
    assert plan.epsilon_planned <= epsilon
    assert plan.epsilon_planned >= 0.95 * epsilon  # calibrated, not just "huge noise"
    assert plan.delta == default_delta(2400) < 1 / 2400
    again = spent_epsilon(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate,
                          steps=plan.steps, delta=plan.delta)
    assert again == pytest.approx(plan.epsilon_planned)


def test_more_privacy_means_more_noise():
    sigmas = [plan_privacy(epsilon=e, n_train=1000, batch_size=32, epochs=2, max_grad_norm=1.0).noise_multiplier
              for e in EPSILONS]
    assert sigmas == sorted(sigmas, reverse=True)
    assert sigmas[0] > 10 * sigmas[-1]


@pytest.mark.parametrize("n,batch", [(100, 10), (101, 10), (2400, 64), (7, 32)])
def test_schedule_matches_opacus_poisson_loader(n, batch):
    loader = DataLoader(TensorDataset(torch.zeros(n, 1)), batch_size=batch)
    dp_loader = DPDataLoader.from_data_loader(loader)
    rate, steps = poisson_schedule(n_train=n, batch_size=batch, epochs=3)
    assert math.isclose(dp_loader.sample_rate, rate)
    assert steps == 3 * len(dp_loader)


@pytest.mark.parametrize("bad", [dict(epsilon=0), dict(epsilon=-1), dict(epsilon=float("inf")),
                                 dict(delta=1 / 1000), dict(delta=0.5), dict(delta=0),
                                 dict(accountant="moments"), dict(max_grad_norm=0)])
def test_bad_privacy_parameters_are_refused(bad):
    args = dict(epsilon=1.0, n_train=1000, batch_size=32, epochs=1, max_grad_norm=1.0) | bad
    with pytest.raises(ValueError):
        plan_privacy(**args)


def test_delta_error_says_why():
    with pytest.raises(ValueError, match=r"1/n"):
        plan_privacy(epsilon=1.0, n_train=1000, batch_size=32, epochs=1, max_grad_norm=1.0, delta=0.01)
