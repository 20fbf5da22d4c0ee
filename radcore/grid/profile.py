"""Grid profiles: which datasets, models, privacy settings and seeds a grid runs, and with which knobs.

A profile is data, a YAML file in ``radcore/grid/profiles/`` (or any path), read into frozen dataclasses.
Every (dataset, model, setting, seed) is one :class:`Cell`, which knows its training config, its
results directory and its run notebook.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from radcore.grid.checks import check_cells, check_shape
from radcore.labels import DATASETS

PROFILE_DIR = Path(__file__).parent / "profiles"
RESULTS_ROOT = Path("runs")  # results of profile P live in runs/P/... (relative to the repository root)
NOTEBOOK_ROOT = Path("book/runs")  # executed run notebooks of profile P live in book/runs/P/...
TRAIN_KNOBS = ("epochs", "max_length", "max_train_reports", "batch_size", "learning_rate", "pretrained",
               "pooling", "max_grad_norm", "accountant", "delta", "physical_batch_size", "precision", "adapt_layers",
               "optimizer", "head_init", "lp_ft", "lp_epochs", "canaries")
MODE_NAMES = {"lora": "LoRA", "full": "Full FT", "head": "Head", "tfidf": "TF-IDF + LR", "dp-lora": "DP-LoRA",
              "dp-full": "DP-Full FT", "dp-head": "DP-Head"}
_MODE_RANK = ("lora", "full", "head", "tfidf")  # order within DP settings of one epsilon, and of the non-private ones


@dataclass(frozen=True)
class Setting:
    """One privacy setting: a training mode and, for DP modes, its target epsilon."""

    mode: str
    epsilon: float | None = None
    train: tuple = ()  # (knob, value) pairs for this setting only, on top of the profile's and the dataset's

    @property
    def is_private(self) -> bool:
        return self.mode.startswith("dp-")

    @property
    def slug(self) -> str:
        """File-name form: ``dp-lora-eps1``, ``lora``."""
        return f"{self.mode}-eps{self.epsilon:g}" if self.is_private else self.mode

    @property
    def label(self) -> str:
        """Reader form: ``DP-LoRA ε=1``, ``LoRA``, ``Full FT``."""
        name = MODE_NAMES[self.mode]
        return f"{name} ε={self.epsilon:g}" if self.is_private else name

    @property
    def order(self) -> int:
        """Sort key: DP settings by ascending epsilon, then LoRA, full fine-tuning, head, TF-IDF."""
        rank = _MODE_RANK.index(self.mode.removeprefix("dp-"))
        if self.is_private:
            return int(round(1000 * math.log10(self.epsilon))) + rank
        return 10_000 + rank


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's corpus lives; ``synthetic`` (``{"n": N, "seed": S}``) means generate it there."""

    name: str
    data_dir: str
    synthetic: dict | None = None
    options: dict = field(default_factory=dict)  # loader options, e.g. {"uncertain": "ignore"}
    train: dict = field(default_factory=dict)  # TrainConfig knobs for this dataset only, on top of the profile's train


@dataclass(frozen=True)
class Profile:
    """A grid: datasets x models x settings x seeds, with shared training knobs."""

    name: str
    description: str
    datasets: tuple[DatasetSpec, ...]
    models: tuple[str, ...]
    settings: tuple[Setting, ...]
    seeds: tuple[int, ...]
    train: dict = field(default_factory=dict)  # TrainConfig fields shared by every cell (TRAIN_KNOBS)
    source: str = ""  # the YAML file it was read from (what load_profile accepts)

    def cells(self) -> list["Cell"]:
        """Every cell, datasets outermost and seeds innermost."""
        return [Cell(self, d, m, s, seed) for d in self.datasets for m in self.models
                for s in sorted(self.settings, key=lambda s: s.order) for seed in self.seeds]

    def train_knobs(self, dataset: DatasetSpec) -> dict:
        """The training knobs of ``dataset``'s cells: the profile's ``train``, then the dataset's own on top."""
        return {**self.train, **dataset.train}

    @property
    def results_root(self) -> Path:
        return RESULTS_ROOT / self.name

    @property
    def notebook_root(self) -> Path:
        return NOTEBOOK_ROOT / self.name


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    profile: Profile
    dataset: DatasetSpec
    model: str
    setting: Setting
    seed: int

    @property
    def key(self) -> str:
        """``mimic-cxr/minilm/dp-lora-eps1/seed0``: unique within a profile."""
        return f"{self.dataset.name}/{Path(self.model).name}/{self.setting.slug}/seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return self.profile.results_root / self.key

    @property
    def notebook(self) -> Path:
        return self.profile.notebook_root / (self.key.replace("/", "__") + ".ipynb")

    def train_config(self):
        """The :class:`~radcore.config.TrainConfig` this cell runs."""
        from radcore.config import HEAD_MODES, TrainConfig

        knobs = {**self.profile.train_knobs(self.dataset), **dict(self.setting.train)}
        if self.setting.mode in HEAD_MODES + ("tfidf",):
            knobs.pop("adapt_layers", None)  # a profile-wide adapt_layers is for the modes that adapt layers
        return TrainConfig(dataset=self.dataset.name, data_dir=self.dataset.data_dir, model=self.model,
                           mode=self.setting.mode, epsilon=self.setting.epsilon, seed=self.seed,
                           data_options=dict(self.dataset.options), progress=False, **knobs)

    def parameters(self) -> dict:
        """The run notebook's papermill parameters: every one explicit, so the notebook's defaults never decide a run."""
        config = self.train_config()
        return {"profile": self.profile.name, "dataset": config.dataset, "data_dir": config.data_dir,
                "model": config.model, "mode": config.mode, "epsilon": config.epsilon, "seed": config.seed,
                "data_options": dict(config.data_options), "out_dir": str(self.run_dir),
                **{knob: getattr(config, knob) for knob in TRAIN_KNOBS}}

    @property
    def title(self) -> str:
        return f"{self.dataset.name} · {Path(self.model).name} · {self.setting.label} · seed {self.seed}"


def config_from_parameters(*, profile: str, out_dir: str, **params):
    """The :class:`~radcore.config.TrainConfig` of a run notebook's parameters (``profile`` and ``out_dir`` aside)."""
    from radcore.config import TrainConfig

    return TrainConfig(progress=False, **params)


def run_cell(**params) -> dict:
    """The run notebook's body: train the cell its parameters describe, and audit it if it trained with canaries
    (:func:`radcore.audit.run.audit_run`); returns the results written."""
    from radcore.train import train

    config = config_from_parameters(**params)
    results = train(config, params["out_dir"])
    if config.canaries:
        from radcore.audit.run import audit_run
        from radcore.results import read_results

        audit_run(params["out_dir"], device=config.device)
        results = read_results(params["out_dir"])
    return results


def _setting(entry: dict) -> Setting:
    unknown = set(entry) - {"mode", "epsilon", "train"}
    if unknown:
        raise ValueError(f"setting {entry}: unknown key(s) {sorted(unknown)}; use mode, epsilon and train")
    _check_knobs(entry.get("train"), where=f"setting {entry['mode']}: train")
    return Setting(entry["mode"], float(entry["epsilon"]) if entry.get("epsilon") is not None else None,
                   tuple(sorted((entry.get("train") or {}).items())))


def _expand(entry: dict) -> list[Setting]:
    """``{mode: dp-lora, epsilons: [1, 10]}`` is shorthand for one setting per epsilon."""
    if "epsilons" in entry:
        rest = {k: v for k, v in entry.items() if k != "epsilons"}
        return [_setting({**rest, "epsilon": e}) for e in entry["epsilons"]]
    return [_setting(entry)]


def _check_knobs(knobs: dict | None, *, where: str) -> None:
    bad = set(knobs or {}) - set(TRAIN_KNOBS)
    if bad:
        raise ValueError(f"{where}: unknown knob(s) {sorted(bad)}; allowed {list(TRAIN_KNOBS)}")


def parse_profile(raw: dict, *, source: str) -> Profile:
    """A :class:`Profile` from a parsed YAML mapping, checked whole (:mod:`radcore.grid.checks`); errors name
    ``source`` and the bad key."""
    from radcore.config import MODES

    check_shape(raw, source=source)
    known = {f.name for f in dataclasses.fields(Profile)} - {"source"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; a profile has {sorted(known)}")
    _check_knobs(raw.get("train"), where=f"{source}: train")
    datasets = []
    for name, spec in (raw.get("datasets") or {}).items():
        if name not in DATASETS:
            raise ValueError(f"{source}: unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
        spec = spec or {}
        unknown = set(spec) - {"data", "synthetic", "options", "train"}
        if unknown:
            raise ValueError(f"{source}: datasets: {name}: unknown key(s) {sorted(unknown)}; "
                             f"use data, synthetic, options and train")
        _check_knobs(spec.get("train"), where=f"{source}: datasets: {name}: train")
        datasets.append(DatasetSpec(name, str(spec.get("data", f"data/synthetic/{name}")),
                                    spec.get("synthetic"), dict(spec.get("options") or {}),
                                    dict(spec.get("train") or {})))
    settings = tuple(s for entry in raw.get("settings") or [] for s in _expand(entry))
    for s in settings:
        if s.mode not in MODES:
            raise ValueError(f"{source}: unknown mode {s.mode!r}; choose from {', '.join(MODES)}")
        if s.is_private != (s.epsilon is not None):
            raise ValueError(f"{source}: mode {s.mode!r} {'needs' if s.is_private else 'takes no'} epsilon")
    profile = Profile(name=raw.get("name") or Path(source).stem, description=raw.get("description", ""),
                      datasets=tuple(datasets), models=tuple(raw.get("models") or ()), settings=settings,
                      seeds=tuple(int(s) for s in raw.get("seeds") or ()), train=dict(raw.get("train") or {}),
                      source=source)
    for what in ("datasets", "models", "settings", "seeds"):
        if not getattr(profile, what):
            raise ValueError(f"{source}: the profile lists no {what}")
    check_cells(profile)
    return profile


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``ci``, ``quick``, ``paper``) or a YAML file of your own."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {str(name_or_path)!r}: use one of {', '.join(shipped)} "
                                f"or the path of a YAML file")
    return parse_profile(_read_yaml(path), source=str(path))


def _read_yaml(path: Path):
    """The parsed YAML of ``path``; a file that is not UTF-8 or not YAML is one error naming it and the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}: not valid UTF-8 (line {line}); save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or type(e).__name__})") from None
    return {} if raw is None else raw
