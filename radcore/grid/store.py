"""The results store: every finished run's ``results.json`` under a root, as pandas tables.

A run directory is finished when its ``results.json`` exists (it is written last, atomically). The tables
are what the analysis notebooks read: one row per run (:func:`collect`) or per run x label
(:func:`per_label`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from radcore.grid.profile import Setting
from radcore.results import RESULTS_FILE

RUN_COLUMNS = ("dataset", "model", "mode", "epsilon", "setting", "setting_order", "seed", "weighted_f1",
               "weighted_f1_lo", "weighted_f1_hi", "macro_f1", "micro_f1", "auroc_macro", "epsilon_spent",
               "noise_multiplier", "delta", "steps", "n_train", "train_seconds", "reports_per_s", "run_dir")


def finished_runs(root: str | Path) -> list[Path]:
    """Run directories under ``root`` that hold a results file, sorted."""
    return sorted(p.parent for p in Path(root).glob(f"**/{RESULTS_FILE}"))


def _read(run_dir: Path) -> dict:
    return json.loads((run_dir / RESULTS_FILE).read_text())


def _row(run_dir: Path, results: dict) -> dict:
    config, test = results["config"], results["metrics"]["test"]
    privacy = results.get("privacy") or {}
    setting = Setting(config["mode"], config["epsilon"])
    lo, hi = test["weighted_f1_ci95"]
    return {
        "dataset": config["dataset"], "model": Path(config["model"]).name, "mode": config["mode"],
        "epsilon": config["epsilon"] if config["epsilon"] is not None else math.nan,
        "setting": setting.label, "setting_order": setting.order, "seed": config["seed"],
        "weighted_f1": test["weighted_f1"], "weighted_f1_lo": lo, "weighted_f1_hi": hi,
        "macro_f1": test["macro_f1"], "micro_f1": test["micro_f1"],
        "auroc_macro": test["auroc_macro"] if test["auroc_macro"] is not None else math.nan,
        "epsilon_spent": privacy.get("epsilon_spent", math.nan),
        "noise_multiplier": privacy.get("noise_multiplier", math.nan), "delta": privacy.get("delta", math.nan),
        "steps": results["timing"]["train_steps"], "n_train": results["data"]["splits"]["train_used"],
        "train_seconds": results["timing"]["train_seconds"], "reports_per_s": results["timing"]["reports_per_s"],
        "run_dir": str(run_dir),
    }


def collect(root: str | Path) -> pd.DataFrame:
    """One row per finished run under ``root`` (columns :data:`RUN_COLUMNS`), sorted by dataset, model, setting, seed."""
    rows = [_row(d, _read(d)) for d in finished_runs(root)]
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    return frame.sort_values(["dataset", "model", "setting_order", "seed"], ignore_index=True)


def per_label(root: str | Path) -> pd.DataFrame:
    """One row per finished run x label: test precision, recall, F1, support and AUROC."""
    rows = []
    for run_dir in finished_runs(root):
        results = _read(run_dir)
        row = _row(run_dir, results)
        base = {k: row[k] for k in ("dataset", "model", "setting", "setting_order", "seed")}
        labels = results["metrics"]["test"]["per_label"]
        rows += [{**base, "label": name, **{k: (np.nan if v is None else v) for k, v in scores.items()}}
                 for name, scores in labels.items()]
    frame = pd.DataFrame(rows)
    return frame.sort_values(["dataset", "model", "setting_order", "seed"], ignore_index=True) if rows else frame


def labeller_baselines(profile, *, split: str = "test") -> pd.DataFrame:
    """The rule-based labeller scored on ``split`` of each chest X-ray dataset of ``profile``: a zero-privacy-cost
    baseline (it trains on nothing). One row per dataset; CT-RATE has other labels and gets none. The records
    are written to ``<results_root>/labeller/``."""
    from radcore.labeller import evaluate_labeller
    from radcore.labels import LABELS, MIMIC_CXR_LABELS

    rows = []
    for spec in profile.datasets:
        if LABELS[spec.name] != MIMIC_CXR_LABELS or not Path(spec.data_dir).is_dir():
            continue
        record = evaluate_labeller(dataset=spec.name, data_dir=spec.data_dir, split=split,
                                   data_options=dict(spec.options),
                                   out=profile.results_root / "labeller" / f"{spec.name}-{split}.json")
        metrics = record["metrics"]
        lo, hi = metrics["weighted_f1_ci95"]
        rows.append({"dataset": spec.name, "weighted_f1": metrics["weighted_f1"], "weighted_f1_lo": lo,
                     "weighted_f1_hi": hi, "macro_f1": metrics["macro_f1"],
                     "auroc_macro": metrics["auroc_macro"] if metrics["auroc_macro"] is not None else math.nan,
                     "n_reports": metrics["n_reports"]})
    return pd.DataFrame(rows, columns=["dataset", "weighted_f1", "weighted_f1_lo", "weighted_f1_hi", "macro_f1",
                                       "auroc_macro", "n_reports"])


def load_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The test-set ``ids``, ``probabilities``, ``labels`` and ``label_mask`` a run saved."""
    with np.load(Path(run_dir) / "predictions.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


TRAINING_DATA_COLUMNS = ("dataset", "source", "data_dir", "data_options", "train", "validate", "test", "train_used",
                         "runs")


def training_data(root: str | Path) -> pd.DataFrame:
    """What the finished runs under ``root`` trained and were scored on: one row per dataset x data folder.

    Read from the runs' own records (``config`` and ``data`` of ``results.json``), not from the data folder, so
    it holds where the data is gone. Columns (:data:`TRAINING_DATA_COLUMNS`): dataset, source ("synthetic" or
    "real", as the loader found it), data_dir, data_options (the loader options, a dict), train / validate /
    test (split sizes), train_used (the largest training subsample any run used) and runs.
    """
    rows = {}
    for run_dir in finished_runs(root):
        results = _read(run_dir)
        config, data = results["config"], results["data"]
        splits = data["splits"]
        options = config.get("data_options") or {}
        key = (config["dataset"], config["data_dir"], json.dumps(options, sort_keys=True))
        row = rows.setdefault(key, {"dataset": config["dataset"], "source": data.get("source"),
                                    "data_dir": config["data_dir"], "data_options": dict(options),
                                    "train": splits["train"], "validate": splits["validate"], "test": splits["test"],
                                    "train_used": 0, "runs": 0})
        row["train_used"] = max(row["train_used"], splits["train_used"])
        row["runs"] += 1
    return pd.DataFrame(list(rows.values()), columns=list(TRAINING_DATA_COLUMNS))
