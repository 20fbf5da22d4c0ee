"""DP-AdamBC undoes the noise's inflation of Adam's second moment; the weight EMA averages; old configs still match."""

from __future__ import annotations

import pytest
import torch

from radcore.config import TrainConfig
from radcore.optim import AdamBC, WeightEMA, make_optimizer
from radcore.results import same_config


def drift(optimizer_for, *, signal: float, noise_sd: float, steps: int = 400, d: int = 2000) -> float:
    """Mean move per step along a constant true gradient ``signal`` observed with Gaussian noise."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(d))
    optimizer = optimizer_for([p])
    for _ in range(steps):
        p.grad = torch.full((d,), signal) + noise_sd * torch.randn(d)
        optimizer.step()
    return float(-p.detach().mean()) / steps


def test_adambc_without_noise_is_adam():
    torch.manual_seed(1)
    a, b = torch.nn.Parameter(torch.randn(50)), None
    b = torch.nn.Parameter(a.detach().clone())
    adam, bc = torch.optim.Adam([a], lr=1e-2), AdamBC([b], lr=1e-2, noise_variance=0.0)
    for _ in range(20):
        g = torch.randn(50)
        a.grad, b.grad = g.clone(), g.clone()
        adam.step()
        bc.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_adambc_moves_faster_than_adam_where_dp_noise_dominates():
    """Signal 0.1 of the noise's sd: Adam divides by about the noise's sd and drifts at about 0.1 lr per step; AdamBC
    removes the noise variance (floored at 0.1 of it) and drifts about sqrt(10) times faster, in the right
    direction."""
    lr, sd = 1e-3, 0.05
    adam = drift(lambda ps: torch.optim.Adam(ps, lr=lr), signal=0.1 * sd, noise_sd=sd)
    bc = drift(lambda ps: AdamBC(ps, lr=lr, noise_variance=sd ** 2), signal=0.1 * sd, noise_sd=sd)
    assert 0.07 * lr < adam < 0.13 * lr
    assert bc > 2.5 * adam
    # a strong signal (sd 0.1 of it) moves both at about lr: the correction only matters inside the noise
    strong = drift(lambda ps: AdamBC(ps, lr=lr, noise_variance=sd ** 2), signal=10 * sd, noise_sd=sd)
    assert 0.9 * lr < strong < 1.1 * lr


def test_make_optimizer_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        make_optimizer("lamb", [torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_weight_ema_writes_back_the_average():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = WeightEMA([p], decay=0.5)
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            p.fill_(value)
        ema.update()
    ema.write_back()
    # 0 -> 0.5 -> 1.25 -> 2.125
    assert torch.allclose(p.detach(), torch.full((3,), 2.125))


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0.9"])
def test_ema_decay_is_checked(bad):
    with pytest.raises(ValueError, match="ema must be a decay in"):
        TrainConfig(dataset="mimic-cxr", data_dir="x", ema=bad)


def test_a_run_recorded_before_a_field_existed_is_the_run_its_default_asks_for():
    current = TrainConfig(dataset="mimic-cxr", data_dir="x").as_dict()
    old = {k: v for k, v in current.items() if k != "ema"}
    assert same_config(old, current)
    assert not same_config(old, {**current, "ema": 0.9})  # a non-default value is another run
    assert not same_config({**old, "epochs": 9}, current)
    assert not same_config(None, current)
