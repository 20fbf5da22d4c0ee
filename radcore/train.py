"""One entry point for every training mode: LoRA, DP-LoRA, full fine-tuning and DP full fine-tuning.

``train(config, out_dir)`` loads the corpus through the real loader, fine-tunes, scores validation and
test at the fixed threshold, and writes ``out_dir/results.json`` (last, atomically: its presence marks a
finished run), the adapter or model, and the test-set probabilities for paired statistics.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import set_seed

from radcore.batches import encode, length_grouped_loader, length_sorted_batches, trim
from radcore.classifier import POOLINGS
from radcore.corpus import Corpus
from radcore.data import load_corpus
from radcore.device import PRECISIONS, autocast, resolve_device, resolve_precision
from radcore.errors import DataError
from radcore.evaluate import predict, score
from radcore.models import (LoraSettings, count_parameters, load_classifier, load_tokenizer,
                            loaded_checkpoint_format, model_spec, wrap_lora)
from radcore.privacy import PrivacyBudgetError, PrivacyPlan, plan_privacy, spent_epsilon
from radcore.results import (PREDICTIONS_FILE, RESULTS_FILE, library_versions, savez_atomic, write_dir_atomic,
                             write_json_atomic)

log = logging.getLogger(__name__)
# Opacus' hooks on a frozen encoder trigger this notice on every backward pass; it is expected.
warnings.filterwarnings("ignore", message="Full backward hook is firing")

MODES = ("lora", "dp-lora", "full", "dp-full")
# Defaults per mode (the study publishes none). DP noise is added to a sum of clipped gradients, so
# its share of the averaged update falls as 1/batch: DP modes take large (expected) batches and a larger
# step (tests/test_dp.py shows DP-LoRA learning with them). Full fine-tuning moves pretrained weights
# and takes a small step.
DEFAULT_LEARNING_RATE = {"lora": 3e-3, "dp-lora": 1e-2, "full": 1e-4, "dp-full": 5e-4}
DEFAULT_BATCH_SIZE = {"lora": 32, "dp-lora": 128, "full": 32, "dp-full": 128}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run; stored verbatim in ``results.json`` so the run can be repeated."""

    dataset: str  # "mimic-cxr" or "ct-rate"
    data_dir: str  # corpus root in the dataset's real layout
    model: str = "minilm"  # registry name or local model directory
    mode: str = "lora"  # one of MODES
    epsilon: float | None = None  # target epsilon; required for dp-* modes only
    delta: float | None = None  # None: 0.1 / n_train
    epochs: int = 3
    batch_size: int | None = None  # None: DEFAULT_BATCH_SIZE[mode]; the expected (Poisson) size under DP
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE[mode]
    max_length: int = 128  # tokens per report
    max_grad_norm: float = 1.0  # per-sample clipping norm (DP only)
    physical_batch_size: int = 32  # reports per forward/backward; a larger (DP) batch is split into chunks
    precision: str = "auto"  # training forward pass: "bf16" autocast, "fp32", or "auto" (bf16 where native)
    accountant: str = "rdp"
    lora: LoraSettings = field(default_factory=LoraSettings)
    pooling: str = "mean"  # report vector: masked mean of token states, or "cls" (first token)
    pretrained: bool = True  # False: random init at the model's shape (tests, benchmarks)
    max_train_reports: int | None = None  # subsample the training split (seeded) for small profiles
    data_options: dict = field(default_factory=dict)  # loader options, e.g. {"uncertain": "ignore"}
    seed: int = 0
    device: str = "auto"  # "auto", "cpu" or "cuda"
    progress: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.is_private and self.epsilon is None:
            raise ValueError(f"mode {self.mode!r} needs a target epsilon (--epsilon)")
        if not self.is_private and self.epsilon is not None:
            raise ValueError(f"mode {self.mode!r} is not private; drop epsilon or use dp-{self.mode}")
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be a positive finite number, got {self.epsilon}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "batch", "max_length", "physical_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def is_private(self) -> bool:
        return self.mode.startswith("dp-")

    @property
    def uses_lora(self) -> bool:
        return self.mode.endswith("lora")

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.mode]

    @property
    def batch(self) -> int:
        return self.batch_size if self.batch_size is not None else DEFAULT_BATCH_SIZE[self.mode]

    def as_dict(self) -> dict:
        """The config with mode defaults resolved, as stored in results.json."""
        return {**dataclasses.asdict(self), "learning_rate": self.lr, "batch_size": self.batch}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        lora = values.pop("lora", {}) or {}
        if lora.get("target_modules") is not None:
            lora["target_modules"] = tuple(lora["target_modules"])
        lora["modules_to_save"] = tuple(lora.get("modules_to_save", LoraSettings().modules_to_save))
        return cls(**values, lora=LoraSettings(**lora))


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Batch mean of per-report losses; each report's loss is its masked BCE averaged over all labels.

    Dividing by the fixed label count (not the report's unmasked count) keeps every report's loss on
    one scale, and the per-report structure is what Opacus' per-sample gradients require.
    """
    per_cell = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return ((per_cell * mask).sum(1) / labels.shape[1]).mean()


def training_subset(corpus: Corpus, config: TrainConfig) -> Corpus:
    """The training split, subsampled to ``max_train_reports`` with the run's seed if asked."""
    train = corpus.subset("train")
    if config.max_train_reports and len(train) > config.max_train_reports:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(train), config.max_train_reports,
                                                                 replace=False))
        train = train.take(keep)
    return train


def build_model(config: TrainConfig, num_labels: int, device: torch.device):
    """Classifier on ``device`` first, then (for LoRA modes) wrapped by peft: the order opacus#820 needs."""
    spec = model_spec(config.model)
    model = load_classifier(spec, num_labels=num_labels, pretrained=config.pretrained, pooling=config.pooling,
                            init_seed=config.seed, device=device)
    if config.uses_lora:
        return wrap_lora(model, family=spec.family, settings=config.lora), spec
    if config.mode == "dp-full":
        # Per-sample gradients of the 30k-row token embedding dominate DP memory; it stays frozen. So do the
        # position embeddings: they are looked up through a shared (1, length) index buffer, so Opacus' hooks see
        # a batch of 1 there and cannot form per-sample gradients (the first DP step would fail).
        model.get_input_embeddings().weight.requires_grad_(False)
        for name, module in model.named_modules():
            if name.endswith("position_embeddings"):
                module.weight.requires_grad_(False)
    return model, spec


def _make_private(model, optimizer, loader, plan: PrivacyPlan, seed: int):
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


def step(model, optimizer, batch, device: torch.device, *, chunk: int, private: bool, precision: str) -> torch.Tensor:
    """One optimizer step on a (logical) batch, computed in length-sorted chunks of at most ``chunk`` reports.

    Each chunk is trimmed to its own longest report. Non-private: chunk losses are weighted by their share
    of the batch and accumulated. DP: Opacus clips each chunk's per-sample gradients and adds them up;
    noise and the 1/expected-batch scale come once, at the last chunk (as Opacus' BatchMemoryManager
    does), so the step is the same DP-SGD step whatever the chunking. Returns the batch's mean loss.
    """
    input_ids, attention_mask, labels, mask = batch
    n = len(input_ids)
    chunks = length_sorted_batches(attention_mask, chunk) if n else [np.arange(0)]
    total = torch.zeros((), device=device)
    for k, idx in enumerate(chunks):
        idx = torch.as_tensor(idx, dtype=torch.long)
        ids, am = trim(input_ids[idx].to(device), attention_mask[idx].to(device))
        with autocast(device, precision):
            logits = model(input_ids=ids, attention_mask=am).logits
        loss = masked_bce(logits, labels[idx].to(device), mask[idx].to(device))
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


def fit(config: TrainConfig, train: Corpus, tokenizer, device: torch.device):
    """Fine-tune; returns (trained model, its spec, privacy block or None, timing block)."""
    model, spec = build_model(config, len(train.label_names), device)
    data = encode(train, tokenizer, max_length=config.max_length)
    # Under DP, Opacus replaces this loader's order by Poisson sampling of the same dataset.
    loader = length_grouped_loader(data, config.batch, seed=config.seed)
    precision = resolve_precision(config.precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    plan = engine = None
    if config.is_private:
        plan = plan_privacy(epsilon=config.epsilon, delta=config.delta, n_train=len(train),
                            batch_size=config.batch, epochs=config.epochs,
                            max_grad_norm=config.max_grad_norm, accountant=config.accountant)
        model, optimizer, loader, engine = _make_private(model, optimizer, loader, plan, config.seed)
    total_steps = config.epochs * len(loader)
    steps = seen = 0
    model.train()
    start = time.perf_counter()
    with tqdm(total=total_steps, desc=f"{config.mode} {config.model}", disable=not config.progress,
              unit="step") as bar:
        for _epoch in range(config.epochs):
            for batch in loader:
                if plan is not None and steps >= plan.steps:
                    raise PrivacyBudgetError(f"step {steps + 1} would exceed the {plan.steps} planned steps")
                loss = step(model, optimizer, batch, device, chunk=config.physical_batch_size,
                            private=plan is not None, precision=precision)
                steps += 1
                seen += len(batch[0])
                bar.update()
                if config.progress and steps % 10 == 0:  # .item() waits for the device: not every step
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    seconds = time.perf_counter() - start
    privacy = None
    if plan is not None:
        spent = spent_epsilon(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate,
                              steps=steps, delta=plan.delta, accountant=plan.accountant)
        if spent > plan.epsilon_target:
            raise PrivacyBudgetError(f"spent epsilon {spent:.4g} exceeds the target {plan.epsilon_target}")
        privacy = {**plan.as_dict(), "steps": steps, "steps_planned": plan.steps, "epsilon_spent": spent,
                   "sampling": "poisson", "clipping": "flat per-sample", "grad_sample_mode": "hooks",
                   "n_train": len(train)}
        model = model._module
    timing = {"train_seconds": seconds, "train_steps": steps, "reports_seen": seen,
              "reports_per_s": seen / seconds if seconds > 0 else None, "precision": precision}
    return model, spec, privacy, timing


def _save_weights(model, config: TrainConfig, run_dir: Path) -> str:
    name = "adapter" if config.uses_lora else "model"
    write_dir_atomic(run_dir / name, model.save_pretrained)
    return name


def train(config: TrainConfig, out_dir: str | Path) -> dict:
    """Run one cell end to end and return what was written to ``out_dir/results.json``."""
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    device = resolve_device(config.device)
    corpus = load_corpus(config.dataset, config.data_dir, **config.data_options)
    train_split = training_subset(corpus, config)
    for split, size in (("train", len(train_split)), ("test", len(corpus.subset("test")))):
        if size == 0:
            raise DataError(f"no {split} reports (split sizes {corpus.split_sizes()}); a run needs both a "
                            f"training and a test split", path=config.data_dir,
                            hint="check the split file, or point --data at the whole corpus")
    tokenizer = load_tokenizer(model_spec(config.model))
    model, spec, privacy, timing = fit(config, train_split, tokenizer, device)
    metrics, probabilities = {}, {}
    start = time.perf_counter()
    for split in ("validate", "test"):
        part = corpus.subset(split)
        if len(part):
            probabilities[split] = predict(model, encode(part, tokenizer, max_length=config.max_length), device)
            metrics[split] = score(part, probabilities[split], seed=config.seed)
    timing["eval_seconds"] = time.perf_counter() - start
    weights = _save_weights(model, config, run_dir)
    if "test" in probabilities:
        test = corpus.subset("test")
        savez_atomic(run_dir / PREDICTIONS_FILE, ids=np.array(test.ids), probabilities=probabilities["test"],
                     labels=test.labels, label_mask=test.label_mask)
    results = {
        "schema_version": 1,
        "config": config.as_dict(),
        "data": {"source": corpus.source, "splits": {**corpus.split_sizes(), "train_used": len(train_split)},
                 "skipped": dict(corpus.skipped), "label_names": list(corpus.label_names)},
        "model": {"family": spec.family, **count_parameters(model), "weights": weights,
                  "checkpoint_format": loaded_checkpoint_format(model)},
        "metrics": metrics,
        "privacy": privacy,
        "timing": {**timing, "device": str(device), "torch_threads": torch.get_num_threads()},
        "versions": library_versions(),
    }
    write_json_atomic(run_dir / RESULTS_FILE, results)
    log.info("wrote %s", run_dir / RESULTS_FILE)
    return results
