"""The "Real reports" chapter: its helpers on invented runs, and its notebook with and without Open-i runs.

Runs are written here in the results store's format (``results.json`` + ``predictions.npz``) with invented
scores, so no model trains. The Open-i corpus is the invented XML fixture of ``test_openi.py``, whose reports
carry a canary that must not reach the executed notebook.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcore import corpus_tables, real_reports
from radcore.corpus import Corpus
from radcore.grid.profile import Setting
from radcore.grid.store import collect, per_label, training_data
from radcore.labels import MIMIC_CXR_LABELS
from radcore.metrics import classification_metrics

from test_openi import CANARY, REPORTS, write_archive

SETTINGS = (Setting("dp-lora", 1.0), Setting("dp-lora", 10.0), Setting("lora"), Setting("full"))
QUALITY = {"dp-lora-eps1": 0.15, "dp-lora-eps10": 0.25, "lora": 0.35, "full": 0.4}  # share of signal in the scores
PREVALENCE = np.linspace(0.5, 0.02, len(MIMIC_CXR_LABELS))
SYNTHETIC_DIR = "data/synthetic/ci/mimic-cxr"


def write_run(root: Path, *, dataset: str, model: str, setting: Setting, seed: int, n_test: int = 60,
              n_train: int = 100, data_dir: str = "data/openi", source: str = "real", shift: float = 0.0) -> Path:
    """One finished run as ``radcore train`` leaves it, with invented predictions on a per-dataset test set."""
    truth = np.random.default_rng(zlib.crc32(dataset.encode()))
    labels = (truth.random((n_test, len(MIMIC_CXR_LABELS))) < PREVALENCE).astype(np.float32)
    mask = np.ones_like(labels)
    noise = np.random.default_rng(zlib.crc32(f"{dataset}/{setting.slug}/{seed}".encode())).random(labels.shape)
    quality = QUALITY[setting.slug] + shift
    probabilities = np.clip(quality * labels + (1 - quality) * noise, 0, 1).astype(np.float32)
    metrics = classification_metrics(labels, probabilities, mask=mask, label_names=MIMIC_CXR_LABELS, n_resamples=20)
    run_dir = root / dataset / model / setting.slug / f"seed{seed}"
    run_dir.mkdir(parents=True)
    np.savez(run_dir / "predictions.npz", ids=np.array([f"{dataset}-{i}" for i in range(n_test)]),
             probabilities=probabilities, labels=labels, label_mask=mask)
    private = setting.is_private
    privacy = {"epsilon_target": setting.epsilon, "delta": 0.1 / n_train, "epsilon_spent": 0.97 * setting.epsilon,
               "noise_multiplier": 4.0 / setting.epsilon * (n_train / 100) ** -0.5, "steps": 5,
               "n_train": n_train} if private else None
    results = {
        "schema_version": 1,
        "config": {"dataset": dataset, "data_dir": data_dir, "model": model, "mode": setting.mode,
                   "epsilon": setting.epsilon, "seed": seed, "data_options": {}},
        "data": {"source": source, "splits": {"train": n_train + 20, "validate": 10, "test": n_test,
                                              "train_used": n_train}, "label_names": list(MIMIC_CXR_LABELS)},
        "metrics": {"test": metrics, "validate": metrics},
        "privacy": privacy,
        "timing": {"train_seconds": 1.0, "train_steps": 5, "reports_per_s": 100.0},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def write_grid(root: Path, *, dataset: str, model: str = "minilm", seeds=(0, 1, 2), **kwargs) -> Path:
    for setting in SETTINGS:
        for seed in seeds:
            write_run(root, dataset=dataset, model=model, setting=setting, seed=seed, **kwargs)
    return root


@pytest.fixture
def grids(tmp_path):
    """Invented Open-i runs (weaker by 0.1) and synthetic MIMIC-CXR runs of the same model and settings."""
    real = write_grid(tmp_path / "runs/openi", dataset="openi", shift=-0.1, n_test=80, n_train=200)
    synthetic = write_grid(tmp_path / "runs/ci", dataset="mimic-cxr", n_train=100, data_dir=SYNTHETIC_DIR,
                           source="synthetic")
    return real, synthetic


# ============================================================================================== helpers


def test_training_data_reads_what_the_runs_trained_on(grids):
    real, synthetic = grids
    row = training_data(real).iloc[0]
    assert (row["dataset"], row["source"], row["data_dir"], row["runs"]) == ("openi", "real", "data/openi", 12)
    assert (row["train"], row["test"], row["train_used"], row["data_options"]) == (220, 80, 200, {})
    assert training_data(synthetic).iloc[0]["source"] == "synthetic"
    assert list(training_data(synthetic.parent / "nothing").columns) == list(
        ("dataset", "source", "data_dir", "data_options", "train", "validate", "test", "train_used", "runs"))


def test_real_vs_synthetic_pairs_model_and_setting(grids):
    real, synthetic = (collect(root) for root in grids)
    table = real_reports.real_vs_synthetic(real, synthetic)
    assert list(table["setting"]) == ["DP-LoRA ε=1", "DP-LoRA ε=10", "LoRA", "Full FT"]
    assert (table["seeds_real"] == 3).all() and (table["seeds_synthetic"] == 3).all()
    assert np.allclose(table["weighted_f1_diff"], table["weighted_f1_real"] - table["weighted_f1_synthetic"])
    assert (table["weighted_f1_diff"] < 0).all()  # the invented Open-i runs carry less signal
    assert (table["n_train_real"] == 200).all() and (table["n_train_synthetic"] == 100).all()
    dp = table[table["setting"] == "DP-LoRA ε=1"].iloc[0]
    assert dp["noise_real"] < dp["noise_synthetic"]  # more training reports, less noise for one epsilon
    assert table.loc[table["setting"] == "LoRA", "noise_real"].isna().all()
    other = real_reports.real_vs_synthetic(real, synthetic.assign(model="tiny-bert"))
    assert other.empty and list(other.columns) == list(table.columns)
    assert real_reports.real_vs_synthetic(real, synthetic.iloc[0:0]).empty


def test_label_comparison_flags_labels_with_few_positives(grids):
    real, synthetic = (per_label(root) for root in grids)
    table = real_reports.label_comparison(real, synthetic, setting="LoRA")
    assert list(table["label"]) == list(MIMIC_CXR_LABELS) and set(table["model"]) == {"minilm"}
    assert (table["few_positives"] == (table["positives_real"] < corpus_tables.MIN_POSITIVES_FOR_F1)).all()
    assert table["few_positives"].any() and not table["few_positives"].all()
    assert np.allclose(table["f1_diff"], table["f1_real"] - table["f1_synthetic"])
    assert real_reports.label_comparison(real, synthetic.assign(model="other")).empty


def test_corpus_contrast_counts_lengths_labels_and_masked_cells():
    names = ("No Finding", "Edema")
    labels = np.array([[1, 0], [0, 1], [0, 1], [0, 0]], np.float32)
    mask = np.array([[1, 1], [1, 1], [1, 0], [1, 1]], np.float32)
    corpus = Corpus("openi", ("a", "b", "c", "d"), ("a", "b", "c", "d"), ("one two", "one two three", "x", "y z"),
                    labels, mask, names, ("train", "train", "test", "test"), source="real")
    row = real_reports.corpus_contrast([corpus], minimum=1).iloc[0]
    assert (row["reports"], row["train"], row["test"], row["source"]) == (4, 2, 2, "real")
    assert row["words_p50"] == 2 and row["positives_per_report"] == pytest.approx(0.5)
    assert row["no_finding_share"] == pytest.approx(0.25) and row["masked_share"] == pytest.approx(1 / 8)
    assert row["few_test_positives"] == 2  # no positive test report of either label (the masked Edema is not one)


def test_real_reports_numbers(grids):
    (real, synthetic), labels = (collect(root) for root in grids), per_label(grids[0])
    baselines = pd.DataFrame([{"dataset": "openi", "weighted_f1": 0.42}])
    contrast = pd.DataFrame([{"dataset": "openi", "train": 2640, "words_p50": 30.0, "positives_per_report": 0.7,
                              "no_finding_share": 0.4, "masked_share": 0.001}])
    numbers = real_reports.real_reports_numbers(real, synthetic, real_labels=labels, baselines=baselines,
                                            contrast=contrast)
    assert tuple(numbers) == real_reports.REAL_REPORTS_KEYS
    assert (numbers["n_runs"], numbers["n_seeds"], numbers["model"], numbers["n_train"]) == (12, 3, "minilm", 200)
    assert numbers["dp_eps"] == 10 and numbers["labeller_f1"] == 0.42 and numbers["n_compared"] == 4
    openi, mimic = real[real["setting"] == "LoRA"], synthetic[synthetic["setting"] == "LoRA"]
    assert numbers["lora_f1"] == pytest.approx(openi["weighted_f1"].mean())
    assert numbers["syn_lora_f1"] == pytest.approx(mimic["weighted_f1"].mean())
    assert numbers["lora_diff"] == pytest.approx(numbers["lora_f1"] - numbers["syn_lora_f1"])
    assert numbers["dp_diff"] == pytest.approx(numbers["dp_f1"] - numbers["syn_dp_f1"])
    assert numbers["lora_auroc"] == pytest.approx(openi["auroc_macro"].mean())
    assert numbers["dp_noise"] < numbers["syn_dp_noise"] and numbers["syn_n_runs"] == 12
    few = [label for label, n in labels[labels["setting"] == "LoRA"].groupby("label", sort=False)["support"].max()
           .items() if n < 20]
    assert numbers["n_few_labels"] == len(few) > 0 and numbers["few_labels"] == ", ".join(few)
    assert (numbers["train_split"], numbers["words_p50"], numbers["syn_train_split"]) == (2640, 30.0, 0)
    assert math.isnan(numbers["syn_words_p50"])

    alone = real_reports.real_reports_numbers(real, synthetic.iloc[0:0])  # nothing to compare with: NaN, not errors
    assert alone["n_compared"] == 0 and math.isnan(alone["lora_diff"]) and math.isnan(alone["labeller_f1"])
    assert not math.isnan(alone["dp_noise"]) and alone["few_labels"] == "none"
    with pytest.raises(ValueError, match="no finished openi runs"):
        real_reports.real_reports_numbers(synthetic, synthetic)


def test_real_reports_note_in_each_state(grids):
    real, synthetic = (collect(root) for root in grids)
    empty = real_reports.real_reports_note(real.iloc[0:0], synthetic, openi_root="runs/openi", results_root="runs/ci",
                                       data_present=False)
    assert "empty in this build" in empty and "`runs/openi`" in empty and "not in this checkout" in empty
    for command, _ in real_reports.REAL_REPORTS_COMMANDS:
        assert command in empty
    assert "can be skipped" in real_reports.real_reports_note(real.iloc[0:0], synthetic, openi_root="r",
                                                          results_root="s", data_present=True)
    full = real_reports.real_reports_note(real, synthetic, openi_root="runs/openi", results_root="runs/ci",
                                      data_present=True)
    assert "12 finished Open-i runs of minilm" in full and "compared with 12 runs" in full
    assert "labeller" not in full
    unmatched = real_reports.real_reports_note(real, synthetic.assign(model="tiny-bert"), openi_root="runs/openi",
                                           results_root="runs/ci", data_present=False)
    assert "hold no mimic-cxr run of minilm (models there: tiny-bert)" in unmatched
    assert "rule-labeller baseline" in unmatched


# ============================================================================================= notebook


def execute_chapter(root: Path, monkeypatch) -> dict:
    """``radcore book``'s analysis step for this chapter alone, in ``root``, for the ci profile."""
    from radcore.grid.book import ANALYSIS_DIR, run_analysis
    from radcore.grid.profile import load_profile

    monkeypatch.chdir(root)
    run_analysis(load_profile("ci"), names=("real_reports",))
    text = (root / ANALYSIS_DIR / "real_reports.ipynb").read_text()
    assert "Traceback" not in text and '"output_type": "error"' not in text
    return json.loads(text)


def outputs(notebook: dict, mime: str) -> list[str]:
    return ["".join(o["data"][mime]) for c in notebook["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if mime in o.get("data", {})]


def glued(notebook: dict) -> dict:
    """Glued key -> its text/plain form (stored under papermill's record prefix)."""
    return {o["metadata"]["scrapbook"]["name"]: "".join(o["data"][o["metadata"]["scrapbook"]["mime_prefix"]
                                                           + "text/plain"])
            for c in notebook["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
            if "scrapbook" in o.get("metadata", {})}


def test_chapter_without_openi_runs_says_how_to_fill_it(tmp_path, monkeypatch):
    notebook = execute_chapter(tmp_path, monkeypatch)
    markdown = "\n".join(outputs(notebook, "text/markdown"))
    assert "empty in this build" in markdown and "radcore grid --profile openi --workers 2" in markdown
    assert not glued(notebook) and not outputs(notebook, "image/png")
    assert not (tmp_path / "runs").exists()  # nothing written when there is nothing to show


def test_chapter_with_openi_runs(grids, tmp_path, monkeypatch):
    from radcore.data.synth import write_corpus

    write_archive(tmp_path / "data/openi/NLMCXR_reports.tgz",
                  [(k * 100 + n, s, m, *a) for k in range(1, 11) for n, s, m, *a in REPORTS])
    write_corpus("mimic-cxr", n=60, seed=0, out=tmp_path / SYNTHETIC_DIR)
    notebook = execute_chapter(tmp_path, monkeypatch)
    keys = glued(notebook)
    assert set(keys) == {f"real_{k}" for k in real_reports.REAL_REPORTS_KEYS}
    assert keys["real_n_runs"] == "12" and keys["real_n_compared"] == "4" and keys["real_model"] == "'minilm'"
    assert keys["real_labeller_f1"] != "nan" and keys["real_words_p50"] != "nan"  # the baseline and corpora ran
    assert len(outputs(notebook, "image/png")) == 2  # weighted F1 and macro AUROC against epsilon
    html = "\n".join(outputs(notebook, "text/html"))
    assert "rule labeller" in html and "Friedman" in html and "few_positives" in html
    markdown = "\n".join(outputs(notebook, "text/markdown"))
    assert "{glue" not in markdown  # the paragraphs hold their numbers, not roles left to a renderer
    lora, tfidf = float(keys["real_lora_f1"]), float(keys["real_tfidf_f1"])
    assert f"non-private LoRA reaches a mean test weighted F1 of {lora:.3f}" in markdown
    assert f"TF-IDF + logistic regression baseline ({tfidf:.3f}" in markdown
    everything = json.dumps(notebook)
    assert CANARY not in everything and "The heart is mildly enlarged" not in everything  # no report text anywhere


def test_no_paragraph_needs_a_glue_role():
    """Paragraphs are formatted from the numbers when the chapter runs: no ``{glue:text}`` role anywhere (a role in
    a Markdown output is left raw unless its cell asks for MyST rendering; static text must not need keys that an
    empty build lacks)."""
    notebook = json.loads((Path(__file__).resolve().parents[1] / "notebooks/real_reports.ipynb").read_text())
    assert not [c for c in notebook["cells"] if "{glue" in "".join(c["source"])]
