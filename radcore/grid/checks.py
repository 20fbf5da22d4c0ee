"""A profile checked whole before anything runs: the shapes and values of its YAML, then every cell it makes.

:func:`check_shape` looks at the parsed YAML (each mapping, list and value of the type and range it needs),
:func:`check_cells` at the :class:`~radcore.grid.profile.Profile` (its name, each knob table on its own, each
model, then every cell's training config, and that no two cells share a run folder). Each problem is one
``ValueError`` line naming the file and the key, e.g. ``my.yaml: settings: epsilons: ...``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
NUMBER_KNOBS = ("epochs", "max_length", "max_train_reports", "batch_size", "learning_rate", "max_grad_norm",
                "delta", "physical_batch_size")


def _kind(value) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(type(value), repr(value))


def _mapping(value, where: str, example: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping like {example}, got {_kind(value)}")
    return value


def _list(value, where: str, example: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list like {example}, got {_kind(value)}")
    return value


def _epsilon(value, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{where}: epsilon must be a positive finite number, got {value!r}")


def _whole(value, where: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where}: {value!r} is not a whole number >= {low}")


def _knobs(value, where: str) -> None:
    """A knob table is a mapping; a number written so that YAML reads it as text (``1e-3``) is named as such."""
    for knob, setting in _mapping(value, where, "{epochs: 3}").items():
        if knob in NUMBER_KNOBS and isinstance(setting, str):
            raise ValueError(f"{where}: {knob}: {setting!r} is text, not a number (YAML reads 1e-3 as text: "
                             f"write 0.001 or 1.0e-3)")


def check_shape(raw, *, source: str) -> None:
    """Every part of a parsed profile has the type and range it needs (unknown keys are :func:`parse_profile`'s)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: a profile is a mapping of keys (name, datasets, models, settings, seeds, "
                         f"train), got {_kind(raw)}")
    for key in ("name", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"{source}: {key} must be text, got {_kind(raw[key])}")
    _knobs(raw.get("train"), f"{source}: train")
    for name, spec in _mapping(raw.get("datasets"), f"{source}: datasets", "{mimic-cxr: {data: DIR}}").items():
        where = f"{source}: datasets: {name}"
        spec = _mapping(spec, where, "{data: DIR}")
        if spec.get("data") is not None and not isinstance(spec["data"], str):
            raise ValueError(f"{where}: data must be a folder path, got {_kind(spec['data'])}")
        if spec.get("synthetic") is not None:
            synthetic = _mapping(spec["synthetic"], f"{where}: synthetic", "{n: 1500, seed: 0}")
            if set(synthetic) != {"n", "seed"}:
                raise ValueError(f"{where}: synthetic needs exactly the keys n and seed, got {sorted(synthetic)}")
            _whole(synthetic["n"], f"{where}: synthetic: n", 1)
            _whole(synthetic["seed"], f"{where}: synthetic: seed", 0)
        _mapping(spec.get("options"), f"{where}: options", "{uncertain: ignore}")
        _knobs(spec.get("train"), f"{where}: train")
    for model in _list(raw.get("models"), f"{source}: models", "[minilm]"):
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"{source}: models: {model!r} is not a model name or folder")
    for entry in _list(raw.get("settings"), f"{source}: settings", "[{mode: lora}, {mode: dp-lora, epsilons: [1]}]"):
        entry = _mapping(entry, f"{source}: settings: each entry", "{mode: lora}")
        if not isinstance(entry.get("mode"), str):
            raise ValueError(f"{source}: settings: {entry}: mode must be text such as lora or dp-lora")
        if entry.get("epsilon") is not None:
            _epsilon(entry["epsilon"], f"{source}: settings: {entry['mode']}")
        if "epsilons" in entry:
            for epsilon in _list(entry["epsilons"], f"{source}: settings: {entry['mode']}: epsilons", "[0.1, 1, 10]"):
                _epsilon(epsilon, f"{source}: settings: {entry['mode']}: epsilons")
    for seed in _list(raw.get("seeds"), f"{source}: seeds", "[0, 1, 2]"):
        _whole(seed, f"{source}: seeds", 0)


def _at(where: str, check, *args, **kwargs):
    """``check(*args, **kwargs)``, its ValueError prefixed with ``where``."""
    try:
        return check(*args, **kwargs)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def check_cells(profile) -> None:
    """Everything a cell would refuse when it runs, refused now for the whole profile.

    Each knob table is checked on its own first, so an error names the table that holds the bad value.
    """
    from radcore.config import TrainConfig
    from radcore.models import check_model, model_spec

    source = profile.source
    if not PLAIN_NAME.fullmatch(profile.name):
        raise ValueError(f"{source}: name: {profile.name!r} is not a plain name (letters, digits, '.', '_', '-'; "
                         f"no '/' or '..'): results go to runs/NAME and notebooks to book/runs/NAME")
    for model in profile.models:
        _at(f"{source}: models", model_spec, model)
        if not PLAIN_NAME.fullmatch(Path(model).name):
            raise ValueError(f"{source}: models: {model!r} ends in no plain folder name for its cells' run folders")
    tables = [("train", profile.train)] + [(f"datasets: {d.name}: train", d.train) for d in profile.datasets]
    for where, knobs in tables:
        config = _at(f"{source}: {where}", TrainConfig, dataset=profile.datasets[0].name, data_dir="",
                     progress=False, **knobs)
        for model in profile.models:
            _at(f"{source}: {'models' if 'max_length' not in knobs else where}", check_model, model,
                max_length=config.max_length, pretrained=config.pretrained)
    seen, models = {}, set()
    for cell in profile.cells():
        config = _at(f"{source}: cell {cell.key}", cell.train_config)
        if (config.model, config.max_length, config.pretrained) not in models:
            _at(f"{source}: cell {cell.key}", check_model, config.model, max_length=config.max_length,
                pretrained=config.pretrained)
            models.add((config.model, config.max_length, config.pretrained))
        if cell.run_dir in seen:
            raise ValueError(f"{source}: cell {cell.key} comes twice (a seed or epsilon listed twice, or two models "
                             f"whose folders share a name); each cell needs its own run folder")
        seen[cell.run_dir] = cell
