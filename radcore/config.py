"""The run configuration: every choice that decides a training run, with the defaults per mode."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from radcore.classifier import POOLINGS
from radcore.device import PRECISIONS
from radcore.models import LoraSettings
from radcore.optim import OPTIMIZERS

MODES = ("lora", "dp-lora", "full", "dp-full", "head", "dp-head", "tfidf")
HEAD_MODES = ("head", "dp-head")  # a linear head on the frozen encoder's pooled features (adapt_layers 0)
HEAD_INITS = ("random", "zero")
# LP-FT by default for DP fine-tuning: a DP head first (half the budget), then DP-LoRA from it; measured by
# benchmarks/recipe.py (synthetic MIMIC-CXR, epsilon 10: 0.719 without, 0.874 with, clip 0.1).
DEFAULT_LP_FT = {"dp-lora": 0.5, "dp-full": 0.5}
NEURAL_MODES = tuple(m for m in MODES if m != "tfidf")  # tfidf: TF-IDF + logistic regression (radcore.tfidf)
# Defaults per mode (the study publishes none). DP noise is added to a sum of clipped gradients, so
# its share of the averaged update falls as 1/batch: DP modes take large (expected) batches and a larger
# step (tests/test_dp.py shows DP-LoRA learning with them). Full fine-tuning moves pretrained weights
# and takes a small step.
# A linear head on cached features costs milliseconds a step, so it takes large batches, a large step and
# many epochs (benchmarks/recipe.py, "heads": synthetic MIMIC-CXR, DP head at epsilon 1: 0.692 at batch 256 and
# lr 0.05, 0.728 at 1,024 and 0.2; non-private head 0.835 at 64 and 0.01, 0.906 at 256 and 0.05, centred).
# No dropout under DP: dropout's masks are a second source of noise in every per-report gradient, beside DP's own.
# benchmarks/recipe.py --study dropout, DP-LoRA at epsilon 1 / 10, mean of two seeds: synthetic MIMIC-CXR 0.662 /
# 0.833 at dropout 0.1, 0.705 / 0.868 without; CT-RATE 0.770 / 0.858 and 0.784 / 0.859 (the DP head moves < 0.01).
DROPOUT_DP = 0.0
DEFAULT_LEARNING_RATE = {"lora": 3e-3, "dp-lora": 1e-2, "full": 1e-4, "dp-full": 5e-4, "head": 5e-2,
                         "dp-head": 0.2, "tfidf": None}
DEFAULT_BATCH_SIZE = {"lora": 32, "dp-lora": 256, "full": 32, "dp-full": 256, "head": 256, "dp-head": 1024,
                      "tfidf": None}


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
    max_grad_norm: float = 0.1  # per-sample clipping norm (DP only; benchmarks/recipe.py: 0.1 beat 1.0)
    physical_batch_size: int = 32  # reports per forward/backward; a larger (DP) batch is split into chunks
    precision: str = "auto"  # training forward pass: "bf16" autocast, "fp32", or "auto" (bf16 where native)
    accountant: str = "rdp"
    adapt_layers: int | str = "all"  # top encoder layers LoRA / full FT adapt; the rest is a cached frozen prefix
    optimizer: str = "adamw"  # "adamw", "sgd" (momentum 0.9) or "adambc" (DP-AdamBC, radcore.optim)
    ema: float = 0.0  # decay per step of an EMA of the trained weights, written back at the end; 0 off
    dropout: float | None = None  # of the whole trained model; None: DROPOUT_DP under DP, the model's own otherwise
    centre: bool | None = None  # the head trains on publicly centred features (radcore.centre); None: DP heads do
    head_init: str = "random"  # classifier head: "random" (PyTorch's default) or "zero" (public: reads no data)
    lp_ft: float | None = None  # LP-FT: share of the budget spent first on the head alone; 0 off; None: DEFAULT_LP_FT
    lp_epochs: int = 20  # epochs of that head phase (head modes' batch and learning rate)
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
        check_values(self)
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.is_private and self.epsilon is None:
            raise ValueError(f"mode {self.mode!r} needs a target epsilon (--epsilon)")
        if not self.is_private and self.epsilon is not None:
            hint = "" if self.mode == "tfidf" else f" or use dp-{self.mode}"
            raise ValueError(f"mode {self.mode!r} is not private; drop epsilon{hint}")
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ValueError(f"epsilon must be a positive finite number, got {self.epsilon}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.canaries < 0:
            raise ValueError(f"canaries must be >= 0, got {self.canaries}")
        for name in ("epochs", "max_length", "physical_batch_size") + (("batch",) if self.mode != "tfidf" else ()):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self._check_adapt_layers()
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if isinstance(self.ema, bool) or not (isinstance(self.ema, numbers.Real) and 0 <= self.ema < 1):
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), got {self.ema!r}")
        _check_dropout(self.dropout)
        if self.centre not in (None, True, False):
            raise ValueError(f"centre must be true, false or unset, got {self.centre!r}")
        if self.centre and self.mode not in HEAD_MODES and not self.lp_share:
            raise ValueError(f"centre applies to a head trained on pooled features (head modes, or LP-FT's head "
                             f"phase), not to mode {self.mode!r} without lp_ft")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"unknown head_init {self.head_init!r}; choose one of {', '.join(HEAD_INITS)}")
        share = self.lp_ft
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1):
            raise ValueError(f"lp_ft is the head phase's share of the budget, in [0, 1); got {share}")
        if share and self.mode not in ("lora", "dp-lora", "full", "dp-full"):
            raise ValueError(f"lp_ft (a head phase before fine-tuning) does not apply to mode {self.mode!r}")

    def _check_adapt_layers(self) -> None:
        value = self.adapt_layers
        if self.mode in HEAD_MODES or self.mode == "tfidf":
            if value not in ("all", 0):
                raise ValueError(f"mode {self.mode!r} adapts no encoder layer; drop adapt_layers ({value!r})")
            return
        if value == 0:
            raise ValueError(f"adapt_layers 0 with mode {self.mode!r} trains only the head: use mode "
                             f"{'dp-head' if self.is_private else 'head'}")
        if value != "all" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"adapt_layers must be 'all' or a whole number >= 1, got {value!r}")
    @property
    def is_private(self) -> bool:
        return self.mode.startswith("dp-")

    @property
    def uses_lora(self) -> bool:
        return self.mode.endswith("lora")

    @property
    def top_layers(self) -> int | str | None:
        """Encoder layers this run adapts: ``"all"``, a number K (the top K), 0 (head modes); None for tfidf."""
        if self.mode == "tfidf":
            return None
        return 0 if self.mode in HEAD_MODES else self.adapt_layers

    def head_phase(self) -> "TrainConfig":
        """LP-FT's first phase: the head alone on the frozen encoder's pooled features (head modes' batch and
        learning rate, ``lp_epochs``); :func:`radcore.privacy.plan_phases` gives it ``lp_ft`` of the budget."""
        mode = "dp-head" if self.is_private else "head"
        return dataclasses.replace(self, mode=mode, adapt_layers="all", epochs=self.lp_epochs, batch_size=None,
                                   learning_rate=None, physical_batch_size=DEFAULT_BATCH_SIZE[mode], lp_ft=0.0)

    def tuning_phase(self) -> "TrainConfig":
        """LP-FT's second phase: this run's mode, from the head the first phase trained."""
        return dataclasses.replace(self, lp_ft=0.0, centre=None)  # the centre is the head phase's (radcore.centre)

    @property
    def lp_share(self) -> float:
        """The head phase's share of the budget (``lp_ft``, or the mode's default); 0: no head phase."""
        return self.lp_ft if self.lp_ft is not None else DEFAULT_LP_FT.get(self.mode, 0.0)

    @property
    def drop(self) -> float | None:
        """The dropout probability set on every dropout of the trained model, or None: the model's own (encoder
        0.1 for MiniLM and BERT, LoRA branch ``lora.dropout``, head the encoder's)."""
        if self.dropout is not None:
            return self.dropout
        return DROPOUT_DP if self.is_private else None

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.mode]

    @property
    def batch(self) -> int:
        return self.batch_size if self.batch_size is not None else DEFAULT_BATCH_SIZE[self.mode]

    @property
    def centres(self) -> bool:
        """Whether a head trains on publicly centred pooled features (:mod:`radcore.centre`): ``centre``, or by
        default every head on pooled features (head modes, and LP-FT's head phase): clipping makes it pay under
        DP, and the better-conditioned problem trains faster without."""
        if self.centre is not None:
            return self.centre
        return self.mode in HEAD_MODES or self.lp_share > 0

    def as_dict(self) -> dict:
        """The config with mode defaults resolved, as stored in results.json."""
        return {**dataclasses.asdict(self), "learning_rate": self.lr, "batch_size": self.batch,
                "adapt_layers": self.top_layers if self.top_layers is not None else "all", "lp_ft": self.lp_share,
                "centre": self.centres, "dropout": self.drop}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        lora = values.pop("lora", {}) or {}
        if lora.get("target_modules") is not None:
            lora["target_modules"] = tuple(lora["target_modules"])
        lora["modules_to_save"] = tuple(lora.get("modules_to_save", LoraSettings().modules_to_save))
        return cls(**values, lora=LoraSettings(**lora))


def _check_dropout(value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1):
        raise ValueError(f"dropout must be a probability in [0, 1) or unset (the mode's default), got {value!r}")


WHOLE_FIELDS = ("epochs", "max_length", "physical_batch_size", "seed", "batch_size", "max_train_reports", "lp_epochs")
POSITIVE_FIELDS = ("learning_rate", "max_grad_norm", "epsilon", "delta")
OPTIONAL_FIELDS = ("batch_size", "max_train_reports", "learning_rate", "epsilon", "delta")


def check_values(config: TrainConfig) -> None:
    """Types and ranges of the numeric and yes/no fields: profiles set them from YAML, so ``"3"``, ``true`` for a
    number, ``-1`` or ``.nan`` must fail here, by the field's name, not in the middle of a run."""
    for name in WHOLE_FIELDS + POSITIVE_FIELDS:
        value = getattr(config, name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        whole = name in WHOLE_FIELDS
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if whole else numbers.Real):
            raise ValueError(f"{name} must be {'a whole number' if whole else 'a number'}, got {value!r}")
        if whole and value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be >= {0 if name == 'seed' else 1}, got {value}")
        if not whole and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    if config.delta is not None and not config.delta < 1:
        raise ValueError(f"delta must lie in (0, 1/n) for n training reports, got {config.delta}")
    for name in ("pretrained", "progress"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be true or false, got {getattr(config, name)!r}")
    if str(config.mode).startswith("dp-"):  # only DP runs use an accountant (and importing opacus takes seconds)
        from radcore.privacy import ACCOUNTANTS

        if config.accountant not in ACCOUNTANTS:
            raise ValueError(f"unknown accountant {config.accountant!r}; choose one of {', '.join(ACCOUNTANTS)}")
