"""The run configuration: every choice that decides a training run, with the defaults per mode."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from radcore.classifier import POOLINGS
from radcore.device import PRECISIONS
from radcore.models import LoraSettings

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
    canaries: int = 0  # audit canaries (radcore.audit.canaries), each put into training by a fair coin of the seed
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
        if self.canaries < 0:
            raise ValueError(f"canaries must be >= 0, got {self.canaries}")
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
