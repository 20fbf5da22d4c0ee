"""The Opacus wiring of a DP run: the plan made private, and the privacy block its results record.

``make_private`` hands Opacus the model, optimizer and loader with the plan's noise and clipping, Poisson
sampling (what the accountant assumes) and a seeded noise generator; ``privacy_record`` re-accounts the
steps actually taken and refuses a run that spent more than its target.
"""

from __future__ import annotations

import math
import warnings

import torch

from radcore.privacy import PrivacyBudgetError, PrivacyPlan, composed_epsilon, spent_epsilon


def make_private(model, optimizer, loader, plan: PrivacyPlan, seed: int):
    """(model, optimizer, loader, engine) made private by Opacus' hooks for ``plan``."""
    from opacus import PrivacyEngine

    with warnings.catch_warnings():
        # Noise comes from a seeded torch generator so that runs repeat; secure_mode is for deployment.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=plan.accountant)
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=plan.noise_multiplier,
            max_grad_norm=plan.max_grad_norm, poisson_sampling=True, grad_sample_mode="hooks",
            noise_generator=torch.Generator(device=next(model.parameters()).device).manual_seed(seed))
    if not math.isclose(loader.sample_rate, plan.sample_rate, rel_tol=1e-9):
        raise PrivacyBudgetError(f"Opacus samples at rate {loader.sample_rate}, the plan assumed {plan.sample_rate}")
    return model, optimizer, loader, engine


def check_step_budget(plan: PrivacyPlan, steps_taken: int) -> None:
    """Refuse a step beyond the planned ones: the noise was calibrated for exactly ``plan.steps``."""
    if steps_taken >= plan.steps:
        raise PrivacyBudgetError(f"step {steps_taken + 1} would exceed the {plan.steps} planned steps")


def privacy_record(plan: PrivacyPlan, *, steps: int, n_train: int) -> dict:
    """The results' privacy block: the plan, the steps taken and the epsilon they spent (checked)."""
    spent = spent_epsilon(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=steps,
                          delta=plan.delta, accountant=plan.accountant)
    if spent > plan.epsilon_target:
        raise PrivacyBudgetError(f"spent epsilon {spent:.4g} exceeds the target {plan.epsilon_target}")
    return {**plan.as_dict(), "steps": steps, "steps_planned": plan.steps, "epsilon_spent": spent,
            "sampling": "poisson", "clipping": "flat per-sample", "grad_sample_mode": "hooks", "n_train": n_train}


def composed_record(phases: list[dict], *, epsilon_target: float) -> dict:
    """The privacy block of a run trained in phases on the same data (LP-FT: head, then fine-tuning), planned
    together by :func:`radcore.privacy.plan_phases`: the accountant composes every phase's steps at the run's
    delta, and the run fails if that exceeds the target."""
    delta, accountant = phases[0]["delta"], phases[0]["accountant"]
    history = [(p["noise_multiplier"], p["sample_rate"], p["steps"]) for p in phases]
    spent = composed_epsilon(history, delta=delta, accountant=accountant)
    if spent > epsilon_target:
        raise PrivacyBudgetError(f"composed epsilon {spent:.4g} exceeds the target {epsilon_target}")
    last = phases[-1]
    return {**{k: last[k] for k in ("noise_multiplier", "sample_rate", "max_grad_norm", "sampling", "clipping",
                                    "grad_sample_mode", "n_train")},
            "epsilon_target": epsilon_target, "delta": delta, "epsilon_spent": spent, "accountant": accountant,
            "epsilon_planned": last["epsilon_planned"], "composition": "LP-FT: head phase, then fine-tuning, on "
            "the same training reports; the accountant composes both", "steps": sum(p["steps"] for p in phases),
            "steps_planned": sum(p["steps_planned"] for p in phases), "phases": phases}
