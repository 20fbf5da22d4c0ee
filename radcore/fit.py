"""The training loop: the model a config asks for, one optimizer step on a batch, and the loop over epochs."""

from __future__ import annotations

import time
import warnings

import torch
from tqdm.auto import tqdm

from radcore.batches import Encoded, as_inputs, length_grouped_loader, length_sorted_batches
from radcore.config import TrainConfig
from radcore.device import attention, autocast, encoders, resolve_precision, training_attention
from radcore.dp import check_step_budget, make_private, privacy_record
from radcore.models import load_classifier, model_spec, wrap_lora
from radcore.optim import WeightEMA, dp_noise_variance, make_optimizer
from radcore.privacy import PrivacyPlan, plan_privacy

# Opacus' hooks on a frozen encoder trigger this notice on every backward pass; it is expected.
warnings.filterwarnings("ignore", message="Full backward hook is firing")


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Batch mean of per-report losses; each report's loss is its masked BCE averaged over all labels.

    Dividing by the fixed label count (not the report's unmasked count) keeps every report's loss on
    one scale, and the per-report structure is what Opacus' per-sample gradients require.
    """
    per_cell = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return ((per_cell * mask).sum(1) / labels.shape[1]).mean()


def build_model(config: TrainConfig, num_labels: int, device: torch.device):
    """Classifier on ``device`` first, then (for LoRA modes) wrapped by peft: the order opacus#820 needs.

    Layers below the top ``config.top_layers`` are a frozen prefix (:class:`~radcore.classifier.ReportClassifier`);
    head modes freeze the whole encoder and train the linear head alone.
    """
    spec = model_spec(config.model)
    model = load_classifier(spec, num_labels=num_labels, pretrained=config.pretrained, pooling=config.pooling,
                            init_seed=config.seed, device=device, adapt_layers=config.top_layers)
    if config.head_init == "zero":  # public: every label starts at p = 0.5, whatever the data
        torch.nn.init.zeros_(model.classifier.weight)
        torch.nn.init.zeros_(model.classifier.bias)
    if config.uses_lora:
        model = wrap_lora(model, family=spec.family, settings=config.lora)
    elif config.mode == "dp-full" and not model.frozen_layers:
        # Per-sample gradients of the 30k-row token embedding dominate DP memory; it stays frozen. So do the
        # position embeddings: they are looked up through a shared (1, length) index buffer, so Opacus' hooks see
        # a batch of 1 there and cannot form per-sample gradients (the first DP step would fail).
        model.get_input_embeddings().weight.requires_grad_(False)
        for name, module in model.named_modules():
            if name.endswith("position_embeddings"):
                module.weight.requires_grad_(False)
    if config.drop is not None:
        set_dropout(model, config.drop)
    return model, spec


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout of ``model`` (encoder layers and attention, LoRA branches, head) to ``p``; the frozen prefix
    runs in eval mode, where dropout does nothing anyway."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def step(model, optimizer, batch: Encoded, device: torch.device, *, chunk: int, private: bool,
         precision: str) -> torch.Tensor:
    """One optimizer step on a (logical) batch, computed in length-sorted chunks of at most ``chunk`` reports.

    ``batch`` is a view of the training data (:meth:`~radcore.batches.Encoded.take`): each chunk's reports are
    gathered only when it runs, and trimmed to its own longest report. Non-private: chunk losses are weighted by
    their share of the batch and accumulated. DP: Opacus clips each chunk's per-sample gradients and adds them up;
    noise and the 1/expected-batch scale come once, at the last chunk (as Opacus' BatchMemoryManager does), so
    the step is the same DP-SGD step whatever the chunking. Returns the batch's mean loss.
    """
    n = len(batch)
    total = torch.zeros((), device=device)
    if private and n == 0:  # an empty Poisson batch: a step of noise alone, without a forward pass (BERT's
        for p in optimizer.params:  # attention cannot reshape 0 rows), as Opacus steps on empty per-sample grads
            p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total
    chunks = length_sorted_batches(batch.lengths(), chunk, n=n)
    with attention(model, training_attention(precision, device)):
        for k, idx in enumerate(chunks):
            *inputs, labels, mask = batch.batch(idx)
            with autocast(device, precision):
                logits = model(**as_inputs(batch.fields, inputs, device)).logits
            loss = masked_bce(logits, labels.to(device), mask.to(device))
            total += loss.detach() * len(idx)
            if private:
                loss.backward()
                optimizer.signal_skip_step(do_skip=k < len(chunks) - 1)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            else:
                (loss * (len(idx) / n)).backward()
    if not private:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return total / max(n, 1)


def batches(loader, data: Encoded):
    """The loader's batches of positions as views of ``data`` (:class:`~radcore.batches.Positions`)."""
    for (positions,) in loader:
        yield data.take(positions.numpy())


def fit(config: TrainConfig, model, data: Encoded, device: torch.device, *, plan: PrivacyPlan | None = None):
    """Train ``model`` (from :func:`build_model`) on ``data``; returns (trained model, privacy block or None,
    timing block). A DP run calibrates its own plan unless given one (a phase of :func:`radcore.privacy.plan_phases`)."""
    # Under DP, Opacus replaces this loader's order by Poisson sampling of the same dataset.
    loader = length_grouped_loader(data, config.batch, seed=config.seed)
    precision = resolve_precision(config.precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    params = [p for p in model.parameters() if p.requires_grad]
    if config.is_private and plan is None:
        plan = plan_privacy(epsilon=config.epsilon, delta=config.delta, n_train=len(data),
                            batch_size=config.batch, epochs=config.epochs,
                            max_grad_norm=config.max_grad_norm, accountant=config.accountant)
    optimizer = make_optimizer(config.optimizer, params, lr=config.lr,
                               noise_variance=dp_noise_variance(plan, len(data)) if plan is not None else 0.0)
    ema = WeightEMA(params, config.ema) if config.ema else None
    if plan is not None:
        model, optimizer, loader, _engine = make_private(model, optimizer, loader, plan, config.seed)
    total_steps = config.epochs * len(loader)
    steps = seen = 0
    model.train()
    start = time.perf_counter()
    with tqdm(total=total_steps, desc=f"{config.mode} {config.model}", disable=not config.progress,
              unit="step") as bar:
        for _epoch in range(config.epochs):
            for batch in batches(loader, data):
                if plan is not None:
                    check_step_budget(plan, steps)
                loss = step(model, optimizer, batch, device, chunk=config.physical_batch_size,
                            private=plan is not None, precision=precision)
                if ema is not None:
                    ema.update()
                steps += 1
                seen += len(batch)
                bar.update()
                if config.progress and steps % 10 == 0:  # .item() waits for the device: not every step
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    seconds = time.perf_counter() - start
    if ema is not None:
        ema.write_back()
    privacy = None
    if plan is not None:
        privacy = privacy_record(plan, steps=steps, n_train=len(data))
        model = model._module
    timing = {"train_seconds": seconds, "train_steps": steps, "reports_seen": seen,
              "reports_per_s": seen / seconds if seconds > 0 else None, "precision": precision,
              "attention": training_attention(precision, device)
              or next((e.config._attn_implementation for e in encoders(model)), None)}
    return model, privacy, timing


def copy_head(source, target) -> None:
    """Load ``source``'s trained classifier head into ``target`` (peft-wrapped or not): LP-FT's hand-over."""
    state = head_module(source).state_dict()
    wrapper = (target.get_base_model() if hasattr(target, "get_base_model") else target).classifier
    saved = getattr(wrapper, "modules_to_save", None)
    for module in ([wrapper.original_module, saved["default"]] if saved is not None else [wrapper]):
        module.load_state_dict(state)


def head_module(model) -> torch.nn.Linear:
    """The classifier Linear that a model trains (inside peft's wrapper when there is one)."""
    wrapper = (model.get_base_model() if hasattr(model, "get_base_model") else model).classifier
    saved = getattr(wrapper, "modules_to_save", None)
    return saved["default"] if saved is not None else wrapper
