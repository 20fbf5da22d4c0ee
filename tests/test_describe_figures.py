"""Corpus descriptions, results tables and figures, on hand-made data with known answers."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from radcore import corpus_tables, figures, results_tables  # noqa: E402
from radcore.corpus import Corpus  # noqa: E402
from radcore.grid.profile import Setting  # noqa: E402

NAMES = ("A", "B", "C")
# report: split, labels (A, B, C), mask of C (0 = uncertain/ignored)
ROWS = [("train", (1, 1, 0), 1), ("train", (1, 0, 1), 0), ("train", (0, 1, 0), 1), ("train", (0, 0, 1), 1),
        ("validate", (1, 0, 0), 1), ("test", (0, 0, 0), 1)]


def tiny_corpus() -> Corpus:
    n = len(ROWS)
    labels = np.array([r[1] for r in ROWS], np.float32)
    mask = np.ones_like(labels)
    mask[:, 2] = [r[2] for r in ROWS]
    labels *= mask  # an ignored cell holds 0, as the loaders write it
    texts = tuple(" ".join(["word"] * (i + 1)) for i in range(n))  # 1..6 words
    ids = tuple(f"r{i}" for i in range(n))
    return Corpus("mimic-cxr", ids, tuple(f"p{i // 2}" for i in range(n)), texts, labels, mask, NAMES,
                  tuple(r[0] for r in ROWS), {"empty_text": 2, "no_sections": 0})


class WordTokenizer:
    """Two special tokens plus one per word, called like a Hugging Face tokenizer."""

    def __call__(self, texts, add_special_tokens=True, truncation=False):
        return {"input_ids": [[0] * (len(t.split()) + 2 * add_special_tokens) for t in texts]}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------------ corpus


def test_prevalence_counts_positives_counted_and_masked_cells():
    table = corpus_tables.prevalence(tiny_corpus()).set_index(["split", "label"])
    assert table.loc[("train", "A"), ["reports", "counted", "positives", "masked"]].tolist() == [4, 4, 2, 0]
    assert table.loc[("train", "C"), ["counted", "positives", "masked"]].tolist() == [3, 1, 1]
    assert table.loc[("train", "C"), "share"] == pytest.approx(1 / 3)
    assert table.loc[("validate", "A"), "share"] == 1.0
    assert table.loc[("test", "B"), "share"] == 0.0
    assert set(table.index.get_level_values("split")) == {"train", "validate", "test"}
    wide = corpus_tables.prevalence_wide(corpus_tables.prevalence(tiny_corpus()))
    assert list(wide.index) == list(NAMES) and list(wide.columns) == ["train", "validate", "test"]
    assert wide.loc["C", "train"] == "1 / 3 (33.3%), 1 masked"


def test_cooccurrence_conditional_jaccard_phi_on_known_counts():
    table = corpus_tables.cooccurrence(tiny_corpus()).set_index(["label_a", "label_b"])
    ab = table.loc[("A", "B")]
    assert (ab.reports, ab.n_a, ab.n_b, ab.n_ab) == (4, 2, 2, 1)
    assert ab.p_b_given_a == 0.5 and ab.jaccard == pytest.approx(1 / 3) and ab.phi == pytest.approx(0.0)
    ac = table.loc[("A", "C")]  # only reports where C counts: r0, r2, r3
    assert (ac.reports, ac.n_a, ac.n_b, ac.n_ab) == (3, 1, 1, 0)
    assert ac.p_b_given_a == 0.0 and ac.phi == pytest.approx(-0.5)
    assert table.loc[("A", "A"), "p_b_given_a"] == 1.0
    assert len(table) == len(NAMES) ** 2
    everything = corpus_tables.cooccurrence(tiny_corpus(), split=None).set_index(["label_a", "label_b"])
    assert everything.loc[("A", "B"), "n_a"] == 3  # the validation report adds an A


def test_cooccurrence_of_a_label_never_positive_is_nan_not_an_error():
    corpus = tiny_corpus().subset("test")  # no positives at all
    table = corpus_tables.cooccurrence(corpus, split=None)
    assert table["p_b_given_a"].isna().all() and table["phi"].isna().all()


def test_report_lengths_and_percentiles():
    lengths = corpus_tables.report_lengths(tiny_corpus(), tokenizer=WordTokenizer())
    assert lengths["words"].tolist() == [1, 2, 3, 4, 5, 6]
    assert lengths["tokens"].tolist() == [3, 4, 5, 6, 7, 8]
    summary = corpus_tables.length_summary(lengths, max_length=5).set_index("unit")
    assert summary.loc["words", "p50"] == 3.5 and summary.loc["words", "max"] == 6
    assert summary.loc["words", "p90"] == pytest.approx(np.percentile([1, 2, 3, 4, 5, 6], 90))
    assert summary.loc["tokens", "over_max"] == 0.5  # 6, 7 and 8 tokens exceed 5
    assert math.isnan(summary.loc["words", "over_max"])
    assert "tokens" not in corpus_tables.report_lengths(tiny_corpus())


def test_split_and_skip_tables():
    splits = corpus_tables.split_table(tiny_corpus()).set_index("split")
    assert splits["reports"].tolist() == [4, 1, 1] and splits["patients"].tolist() == [2, 1, 1]
    assert splits["share"].sum() == pytest.approx(1.0)
    skips = corpus_tables.skip_table(tiny_corpus())
    assert dict(zip(skips["reason"], skips["count"])) == {"empty_text": 2, "no_sections": 0}
    row = corpus_tables.overview(tiny_corpus(), data_dir="somewhere", synthetic=False).iloc[0]
    assert (row.reports, row.patients, row.labels, row.train, row.test, row.synthetic) == (6, 3, 3, 4, 1, False)


def test_example_reports_refuses_real_data():
    corpus = tiny_corpus()
    with pytest.raises(ValueError, match="synthetic"):
        corpus_tables.example_reports(corpus, 2, 0, synthetic=False)
    with pytest.raises(ValueError):
        corpus_tables.example_reports(corpus, 2, 0, synthetic="yes")  # only True itself opens it
    with pytest.raises(TypeError):
        corpus_tables.example_reports(corpus, 2, 0)  # the caller must say


def test_example_reports_of_synthetic_data_list_positive_and_masked_labels():
    examples = corpus_tables.example_reports(tiny_corpus(), k=6, seed=0, synthetic=True).set_index("id")
    assert len(examples) == 6
    assert examples.loc["r0", "positive"] == "A, B"
    assert examples.loc["r1", "positive"] == "A" and examples.loc["r1", "masked"] == "C"
    assert examples.loc["r5", "positive"] == "(none)"
    assert examples.loc["r2", "text"] == "word word word"
    text = corpus_tables.examples_markdown(examples.reset_index())
    assert "**r0** (train split). Positive: A, B." in text and "masked (uncertain): C" in text
    assert text.count("```text") == 6
    again = corpus_tables.example_reports(tiny_corpus(), k=2, seed=3, synthetic=True)
    assert again.equals(corpus_tables.example_reports(tiny_corpus(), k=2, seed=3, synthetic=True))


# ----------------------------------------------------------------------------------------------- results

SETTINGS = (Setting("dp-lora", 0.1), Setting("dp-lora", 1.0), Setting("lora"), Setting("full"))


def runs(models=("tiny-bert", "tiny-albert"), seeds=(0, 1), datasets=("mimic-cxr", "ct-rate"),
         settings=SETTINGS) -> pd.DataFrame:
    """A collect()-shaped table: F1 = 0.5 + 0.1 * setting index + 0.1 * seed (models and datasets alike)."""
    rows = []
    for dataset in datasets:
        for model in models:
            for i, setting in enumerate(settings):
                for seed in seeds:
                    f1 = 0.5 + 0.1 * i + 0.1 * seed
                    private = setting.is_private
                    rows.append({"dataset": dataset, "model": model, "mode": setting.mode,
                                 "epsilon": setting.epsilon if private else math.nan, "setting": setting.label,
                                 "setting_order": setting.order, "seed": seed, "weighted_f1": f1,
                                 "weighted_f1_lo": f1 - 0.05, "weighted_f1_hi": f1 + 0.05,
                                 "epsilon_spent": 0.98 * setting.epsilon if private else math.nan,
                                 "noise_multiplier": (2.0 + seed) / setting.epsilon if private else math.nan,
                                 "delta": 1e-4 if private else math.nan, "steps": 10 + seed})
    return pd.DataFrame(rows)


def per_label_runs(frame: pd.DataFrame) -> pd.DataFrame:
    labels = {"mimic-cxr": ("No Finding", "Edema", "Fracture"), "ct-rate": ("Emphysema", "Lung nodule")}
    return pd.DataFrame([{**row[["dataset", "model", "setting", "setting_order", "seed"]].to_dict(), "label": label,
                          "f1": row["weighted_f1"], "support": 5} for _, row in frame.iterrows()
                         for label in labels[row["dataset"]]])


def test_results_table_shape_order_and_cells():
    table = results_tables.results_table(runs())
    assert list(table.columns) == ["DP-LoRA ε=0.1", "DP-LoRA ε=1", "LoRA", "Full FT", "seeds"]
    assert table.index.names == ["dataset", "model"] and len(table) == 4
    assert table.loc[("mimic-cxr", "tiny-bert"), "DP-LoRA ε=0.1"] == "0.550 ± 0.071"
    assert table.loc[("ct-rate", "tiny-albert"), "Full FT"] == "0.850 ± 0.071"
    assert (table["seeds"] == "2").all()


def test_results_table_with_one_seed_and_a_missing_setting():
    frame = runs(models=("tiny-bert",), seeds=(0,))
    frame = frame.drop(frame.index[(frame["dataset"] == "ct-rate") & (frame["mode"] == "full")])
    table = results_tables.results_table(frame)
    assert table.loc[("mimic-cxr", "tiny-bert"), "LoRA"] == "0.700"
    assert table.loc[("ct-rate", "tiny-bert"), "Full FT"] == ""
    assert table.loc[("ct-rate", "tiny-bert"), "seeds"] == "1"


def test_seed_summary_intervals():
    summary = results_tables.seed_summary(runs(seeds=(0, 1, 2)))
    row = summary[(summary["model"] == "tiny-bert") & (summary["setting"] == "LoRA")].iloc[0]
    assert row["seeds"] == 3 and row["mean"] == pytest.approx(0.8) and row["sd"] == pytest.approx(0.1)
    assert row["t_hi"] - row["mean"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert (row["min"], row["max"]) == pytest.approx((0.7, 0.9))
    one = results_tables.seed_summary(runs(seeds=(0,)))
    assert one["sd"].isna().all() and one["t_lo"].isna().all()


def test_privacy_table_is_conservative_over_runs():
    table = results_tables.privacy_table(runs()).set_index(["dataset", "setting"])
    assert list(table.index.get_level_values("setting").unique()) == ["DP-LoRA ε=0.1", "DP-LoRA ε=1"]
    row = table.loc[("mimic-cxr", "DP-LoRA ε=1")]
    assert row["epsilon"] == 1.0 and row["epsilon_spent"] == pytest.approx(0.98) and row["within_target"]
    assert row["noise_multiplier"] == 2.0 and row["steps"] == 11 and row["runs"] == 4
    assert results_tables.privacy_table(runs(settings=SETTINGS[2:])).empty


def test_headline_numbers():
    numbers = results_tables.headline_numbers(runs(), dataset="mimic-cxr", model="tiny-bert")
    assert set(numbers) == set(results_tables.HEADLINE_KEYS)
    assert numbers["n_runs"] == 32 and numbers["n_seeds"] == 2 and numbers["dp_eps"] == 1.0
    assert numbers["lora_f1"] == pytest.approx(0.75) and numbers["dp_f1"] == pytest.approx(0.65)
    assert numbers["full_f1"] == pytest.approx(0.85)
    assert numbers["lora_dp_gap"] == pytest.approx(0.1) and numbers["full_lora_gap"] == pytest.approx(0.1)
    no_full = results_tables.headline_numbers(runs(settings=SETTINGS[:3]))
    assert no_full["dataset"] == "mimic-cxr" and math.isnan(no_full["full_f1"])
    with pytest.raises(ValueError):
        results_tables.headline_numbers(runs(), dataset="mimic-cxr", model="nope")


def test_target_table_says_which_targets_hold():
    table = results_tables.target_table(runs(models=("tiny-bert",), datasets=("mimic-cxr",)))
    rows = table.set_index("target")
    assert list(rows.index) == ["LoRA >= 0.90", "LoRA - DP-LoRA ε=1 <= 0.15", "DP-LoRA ε=0.1 >= 0.50",
                                "DP-LoRA rises with ε"]  # no epsilon-10 run: no epsilon-10 row
    assert rows.loc["LoRA >= 0.90", "measured"] == pytest.approx(0.75) and not rows.loc["LoRA >= 0.90", "met"]
    assert rows.loc["LoRA - DP-LoRA ε=1 <= 0.15", "measured"] == pytest.approx(0.10)
    assert rows.loc["LoRA - DP-LoRA ε=1 <= 0.15", "met"] and rows.loc["DP-LoRA ε=0.1 >= 0.50", "met"]
    inverted = runs(models=("tiny-bert",), datasets=("mimic-cxr",), settings=(SETTINGS[1], SETTINGS[0], SETTINGS[2]))
    assert not results_tables.target_table(inverted).set_index("target").loc["DP-LoRA rises with ε", "met"]


# ----------------------------------------------------------------------------------------------- figures


def references(ax) -> list[str]:
    return sorted(line.get_gid() for line in ax.get_lines() if (line.get_gid() or "").startswith("reference:"))


@pytest.mark.parametrize("models, seeds", [(("tiny-bert", "tiny-albert"), (0, 1, 2)), (("tiny-bert",), (0,))])
def test_privacy_utility_has_one_reference_line_per_non_private_setting_and_model(models, seeds):
    fig = figures.privacy_utility(runs(models=models, seeds=seeds))
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2  # one panel per dataset
    for ax in fig.axes:
        assert references(ax) == sorted(f"reference:{s}:{m}" for s in ("LoRA", "Full FT") for m in models)
        assert ax.get_xscale() == "log"
        dp = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("dp:")]
        assert len(dp) == len(models)
        assert list(dp[0].get_xdata()) == [0.1, 1.0]
        assert list(dp[0].get_ydata()) == pytest.approx([0.5 + 0.1 * np.mean(seeds), 0.6 + 0.1 * np.mean(seeds)])


def test_privacy_utility_without_non_private_runs_and_with_one_dataset():
    fig = figures.privacy_utility(runs(datasets=("ct-rate",), settings=SETTINGS[:2]))
    assert len(fig.axes) == 1 and references(fig.axes[0]) == []


def test_per_label_heatmap_has_a_panel_per_dataset_and_model_plus_a_colour_bar():
    frame = runs()
    fig = figures.per_label_heatmap(per_label_runs(frame))
    assert len(fig.axes) == 2 * 2 + 1
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_xticklabels()] == ["DP-LoRA ε=0.1", "DP-LoRA ε=1", "LoRA", "Full FT"]
    assert [t.get_text() for t in first.get_yticklabels()] == ["No Finding", "Edema", "Fracture"]
    assert first.texts[0].get_text() == "0.55"  # annotated mean over seeds
    one = figures.per_label_heatmap(per_label_runs(runs(models=("tiny-bert",), seeds=(0,), datasets=("ct-rate",))))
    assert len(one.axes) == 2


def test_corpus_figures_return_figures():
    corpus = tiny_corpus()
    prevalence = pd.concat([corpus_tables.prevalence(corpus), corpus_tables.prevalence(corpus).assign(dataset="other")])
    assert len(figures.prevalence_bars(prevalence).axes) == 2
    fig = figures.cooccurrence_heatmap(corpus_tables.cooccurrence(corpus), measure="phi")
    assert len(fig.axes) == 2  # the matrix and its colour bar
    with pytest.raises(ValueError):
        figures.cooccurrence_heatmap(corpus_tables.cooccurrence(corpus), measure="lift")
    lengths = corpus_tables.report_lengths(corpus, tokenizer=WordTokenizer())
    fig = figures.length_histogram(lengths, max_length=5)
    cut = [line for line in fig.axes[0].get_lines() if list(line.get_xdata()) == [5, 5]]
    assert len(fig.axes) == 1 and len(cut) == 1 and "50%" in cut[0].get_label()
    assert isinstance(figures.length_histogram(lengths, unit="words"), plt.Figure)


BASELINES = pd.DataFrame([{"dataset": "mimic-cxr", "weighted_f1": 0.612, "auroc_macro": 0.7}])


def test_rule_labeller_is_a_row_of_the_chest_xray_table_only():
    table = results_tables.results_table(runs(), baselines=BASELINES)
    assert table.columns[0] == results_tables.BASELINE_COLUMN and len(table) == 5
    row = table.loc[("mimic-cxr", results_tables.BASELINE_MODEL)]
    assert row[results_tables.BASELINE_COLUMN] == "0.612" and row["LoRA"] == "" and row["seeds"] == "–"
    assert (table.loc["ct-rate", results_tables.BASELINE_COLUMN] == "").all()  # CT-RATE has no rule labeller
    assert table.loc[("mimic-cxr", "tiny-bert"), "DP-LoRA ε=0.1"] == "0.550 ± 0.071"  # model rows unchanged


def test_privacy_utility_draws_the_rule_labeller_on_its_dataset_only():
    fig = figures.privacy_utility(runs(), baselines=BASELINES)
    drawn = {ax.get_title(): [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "baseline:rules"]
             for ax in fig.axes}
    assert drawn == {"ct-rate": [], "mimic-cxr": [0.612]}


def test_labeller_baselines_score_the_chest_xray_datasets_of_a_profile(synthetic_dirs, tmp_path, monkeypatch):
    from radcore.grid.profile import parse_profile
    from radcore.grid.store import labeller_baselines

    monkeypatch.chdir(tmp_path)
    profile = parse_profile({"name": "t", "datasets": {name: {"data": str(path)} for name, path in synthetic_dirs.items()},
                             "models": ["tiny-bert"], "settings": [{"mode": "lora"}], "seeds": [0]}, source="t.yaml")
    frame = labeller_baselines(profile)
    assert list(frame["dataset"]) == ["mimic-cxr"]
    assert 0.5 < frame.loc[0, "weighted_f1"] <= 1 and frame.loc[0, "n_reports"] > 0
    assert (profile.results_root / "labeller" / "mimic-cxr-test.json").is_file()
