"""Optimizers for a run: AdamW, SGD with momentum, and DP-AdamBC; and an EMA of the trained weights.

DP-AdamBC (Tang et al. 2024, "DP-AdamBC: Your DP-Adam Is Actually DP-SGD (Unless You Apply Bias Correction)"):
under DP-SGD every coordinate of the averaged gradient carries Gaussian noise of variance
``phi = (noise_multiplier * max_grad_norm / expected_batch)**2``, so Adam's second moment estimates
``g**2 + phi`` and, where the noise dominates, divides every coordinate by about ``sqrt(phi)``: Adam then behaves
like SGD with one global step size. AdamBC subtracts ``phi`` from the bias-corrected second moment and floors the
result at ``gamma * phi`` (``gamma`` 0.1 by default, our choice: the paper floors at a small constant, which lets
a coordinate whose estimate falls inside the noise take an unbounded step; a floor tied to ``phi`` caps that step
at ``1 / sqrt(gamma)`` times Adam's). ``phi`` is public: it follows from the accountant's plan, not from the data.

The EMA (De et al. 2022, Sander et al. 2023) averages the trainable parameters after every step and writes the
average back at the end; it is post-processing of the DP iterates, so it keeps the run's guarantee.
"""

from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "sgd", "adambc")


class AdamBC(torch.optim.Optimizer):
    """Adam whose second moment has the DP noise variance ``noise_variance`` removed (floored at
    ``gamma * noise_variance``); with ``noise_variance`` 0 it is Adam without weight decay."""

    def __init__(self, params, *, lr: float, noise_variance: float, betas=(0.9, 0.999), gamma: float = 0.1,
                 eps: float = 1e-8):
        if noise_variance < 0 or gamma <= 0:
            raise ValueError(f"need noise_variance >= 0 and gamma > 0 (got {noise_variance}, {gamma})")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "noise_variance": noise_variance,
                                  "gamma": gamma})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            phi, floor = group["noise_variance"], group["gamma"] * group["noise_variance"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"], state["m"], state["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                v_hat = (v / (1 - beta2 ** t) - phi).clamp_(min=floor)
                p.addcdiv_(m, v_hat.sqrt_().add_(group["eps"]), value=-group["lr"] / (1 - beta1 ** t))
        return loss


def dp_noise_variance(plan, n_train: int) -> float:
    """Per-coordinate variance of the Gaussian noise on Opacus' averaged gradient for ``plan``."""
    expected_batch = plan.sample_rate * n_train
    return (plan.noise_multiplier * plan.max_grad_norm / expected_batch) ** 2


def make_optimizer(name: str, params, *, lr: float, noise_variance: float = 0.0) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params``; ``noise_variance`` for AdamBC."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adambc":
        return AdamBC(params, lr=lr, noise_variance=noise_variance)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


class WeightEMA:
    """Exponential moving average of ``params`` (decay per step); :meth:`write_back` copies it into them."""

    def __init__(self, params, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = decay
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1 - self.decay)

    @torch.no_grad()
    def write_back(self) -> None:
        for p, a in zip(self.params, self.average):
            p.copy_(a)

