"""Statistical tests on synthetic result tables and predictions where the truth is known."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from radcore.metrics import classification_metrics
from radcore.stats import (bootstrap_overview, linear_model, omnibus, paired_bootstrap, paired_bootstrap_table,
                           posthoc, residual_check, summarise)

# (mode, epsilon, setting label, setting_order) as the results store writes them
SETTINGS = {
    "DP-LoRA ε=0.1": ("dp-lora", 0.1, -1000), "DP-LoRA ε=1": ("dp-lora", 1.0, 0),
    "DP-LoRA ε=10": ("dp-lora", 10.0, 1000), "LoRA": ("lora", np.nan, 10_000), "Full FT": ("full", np.nan, 10_001),
}


def frame(means: dict, *, seeds=range(5), sd=0.01, models=("m1",), datasets=("d1",), rng_seed=0, run_dirs=None):
    """One row per run: ``weighted_f1`` ~ Normal(means[setting] + seed effect, sd)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for dataset in datasets:
        for model in models:
            seed_effect = rng.normal(0, 0.02, size=100)
            for setting, mean in means.items():
                mode, eps, order = SETTINGS[setting]
                for seed in (seeds[setting] if isinstance(seeds, dict) else seeds):
                    rows.append({"dataset": dataset, "model": model, "mode": mode, "epsilon": eps, "setting": setting,
                                 "setting_order": order, "seed": seed,
                                 "weighted_f1": mean + seed_effect[seed] + rng.normal(0, sd),
                                 "run_dir": (run_dirs or {}).get((setting, seed), "")})
    return pd.DataFrame(rows)


APART = {"DP-LoRA ε=0.1": 0.60, "DP-LoRA ε=1": 0.75, "LoRA": 0.85, "Full FT": 0.92}
SAME = dict.fromkeys(APART, 0.8)


def test_friedman_detects_clearly_different_settings():
    row = omnibus(frame(APART)).iloc[0]
    assert row["test"] == "Friedman" and "paired" in row["reason"]
    assert (row["n_settings"], row["n_seeds"], row["df"]) == (4, 5, 3)
    assert row["p_value"] < 0.01 and row["effect_size_name"] == "Kendall's W"
    assert row["effect_size"] == pytest.approx(1.0)  # the ranking is the same for every seed


def test_friedman_not_significant_for_identical_distributions():
    row = omnibus(frame(SAME, sd=0.02, rng_seed=1)).iloc[0]
    assert row["test"] == "Friedman" and row["p_value"] > 0.05 and 0 <= row["effect_size"] < 0.5


def test_unequal_seed_sets_fall_back_to_kruskal_wallis():
    seeds = {s: range(5) for s in APART} | {"LoRA": range(3)}
    row = omnibus(frame(APART, seeds=seeds)).iloc[0]
    assert row["test"] == "Kruskal-Wallis" and "not paired" in row["reason"]
    assert row["effect_size_name"] == "epsilon-squared" and 0 <= row["effect_size"] <= 1
    assert row["p_value"] < 0.01 and row["n_runs"] == 18


def test_two_settings_and_single_runs_are_explained():
    two = omnibus(frame({"DP-LoRA ε=1": 0.7, "LoRA": 0.8})).iloc[0]
    assert two["test"] == "Kruskal-Wallis" and "at least 3 settings" in two["reason"]
    single = omnibus(frame(APART, seeds=[0])).iloc[0]
    assert single["test"] == "none" and np.isnan(single["p_value"])


def test_posthoc_holm_dz_and_small_sample_note():
    means = {"DP-LoRA ε=0.1": 0.60, "DP-LoRA ε=1": 0.83, "DP-LoRA ε=10": 0.845, "LoRA": 0.85}
    table = posthoc(frame(means, sd=0.01, models=("m1", "m2")))
    assert len(table) == 6 and set(table["reference"]) == {"LoRA"} and table["paired"].all()
    for _, block in table.groupby("model"):
        assert (block["p_holm"] >= block["p_value"] - 1e-12).all()
        ranked = block.sort_values("p_value")
        assert ranked["p_holm"].is_monotonic_increasing and ranked["t_p_holm"].dropna().le(1).all()
    worst = table[(table["setting"] == "DP-LoRA ε=0.1") & (table["model"] == "m1")].iloc[0]
    assert worst["test"] == "Wilcoxon signed-rank" and worst["min_attainable_p"] == pytest.approx(1 / 16)
    assert "cannot reach p < 0.05" in worst["note"]
    assert worst["t_p_value"] < 0.001 and worst["d_z"] < -3
    assert worst["diff_ci_low"] < -0.25 < worst["diff_ci_high"] < 0  # true difference 0.60 - 0.85
    assert worst["mean_diff"] == pytest.approx(worst["mean_dp"] - worst["mean_ref"])


def test_posthoc_unpaired_and_constant_differences():
    seeds = {"DP-LoRA ε=1": range(4), "LoRA": range(2, 8)}
    row = posthoc(frame({"DP-LoRA ε=1": 0.7, "LoRA": 0.8}, seeds=seeds)).iloc[0]
    assert not row["paired"] and row["test"] == "Mann-Whitney U" and np.isnan(row["d_z"])
    const = frame({"DP-LoRA ε=1": 0.7, "LoRA": 0.8}, sd=0.0)  # identical seed effects: every difference -0.1
    row = posthoc(const).iloc[0]
    assert np.isnan(row["d_z"]) and row["diff_ci_low"] == pytest.approx(-0.1) == row["diff_ci_high"]


def test_anova_finds_the_setting_effect():
    df = frame(APART, models=("m1", "m2"), datasets=("d1", "d2"), sd=0.02)
    fit, anova, formula, _ = linear_model(df)
    assert formula == "weighted_f1 ~ C(setting) * C(model) + C(dataset)"
    assert anova.loc["C(setting)", "PR(>F)"] < 1e-6 and anova.loc["C(setting):C(model)", "PR(>F)"] > 0.01
    checks = residual_check(fit, groups=df["setting"])
    assert list(checks["check"].str.split().str[0]) == ["Shapiro-Wilk", "Levene/Brown-Forsythe"]
    assert checks["p_value"].between(0, 1).all()


def test_linear_model_degrades_without_crashing():
    one = linear_model(frame(APART))
    assert one.formula == "weighted_f1 ~ C(setting)" and "model dropped" in one.note
    tight = linear_model(frame(APART, seeds=[0], models=("m1", "m2")))  # interaction would leave 0 df
    assert tight.formula == "weighted_f1 ~ C(setting) + C(model)" and "interaction dropped" in tight.note
    none = linear_model(frame(APART, seeds=[0]))
    assert none.fit is None and none.anova is None and "no residual degrees of freedom" in none.note


# ---------------------------------------------------------------- paired bootstrap on predictions

def predictions(rng, y, error_rate):
    """Probabilities that cross 0.5 on the wrong side for about ``error_rate`` of the cells."""
    wrong = rng.random(y.shape) < error_rate
    truth = np.where(wrong, 1 - y, y)
    return np.clip(0.5 + (truth - 0.5) * rng.uniform(0.2, 0.9, y.shape), 0, 1)


def save(path, ids, prob, y, mask=None):
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "predictions.npz", ids=np.asarray(ids), probabilities=prob, labels=y,
             label_mask=np.ones_like(y) if mask is None else mask)
    return str(path)


@pytest.fixture(scope="module")
def population():
    """A large population of reports, two classifiers (5% vs 20% wrong cells), and their true F1 gap."""
    rng = np.random.default_rng(0)
    y = (rng.random((40_000, 5)) < [0.4, 0.3, 0.2, 0.1, 0.05]).astype(float)
    good, bad = predictions(rng, y, 0.05), predictions(rng, y, 0.20)
    names = list("abcde")
    true_gap = (classification_metrics(y, bad, label_names=names, n_resamples=1)["weighted_f1"]
                - classification_metrics(y, good, label_names=names, n_resamples=1)["weighted_f1"])
    return y, good, bad, true_gap


def test_bootstrap_ci_covers_true_difference_and_excludes_zero(population, tmp_path):
    y, good, bad, true_gap = population
    rows = np.random.default_rng(1).choice(len(y), 600, replace=False)
    ids = [f"r{i}" for i in rows]
    a = save(tmp_path / "dp", ids, bad[rows], y[rows])
    b = save(tmp_path / "lora", ids, good[rows], y[rows])
    res = paired_bootstrap(a, b, n_resamples=1000, seed=0)
    assert res["ci_low"] < true_gap < res["ci_high"] < 0 and res["p_value"] < 0.01
    assert res["ci_low"] < res["diff"] < res["ci_high"]
    pred = (bad[rows] >= 0.5).astype(int)
    assert res["f1_a"] == pytest.approx(f1_score(y[rows], pred, average="weighted", zero_division=0))
    same = paired_bootstrap(b, b, n_resamples=200)
    assert same["diff"] == 0 and same["p_value"] == 1 and same["ci_low"] == same["ci_high"] == 0


def test_bootstrap_honours_the_label_mask(population, tmp_path):
    y, good, bad, _ = population
    y, good, bad = y[:300], good[:300], bad[:300]
    mask = np.ones_like(y)
    mask[:, 0] = 0  # label a ignored: its (different) predictions must not count
    ids = [f"r{i}" for i in range(300)]
    bad_mixed = np.column_stack([good[:, 0], bad[:, 1:]])
    r1 = paired_bootstrap(save(tmp_path / "a", ids, bad, y, mask), save(tmp_path / "b", ids, good, y, mask))
    r2 = paired_bootstrap(save(tmp_path / "c", ids, bad_mixed, y, mask), save(tmp_path / "d", ids, good, y, mask))
    assert r1["diff"] == r2["diff"] and r1["ci_low"] == r2["ci_low"]


def test_mismatched_test_ids_raise(population, tmp_path):
    y, good, bad, _ = population
    a = save(tmp_path / "a", [f"r{i}" for i in range(50)], good[:50], y[:50])
    b = save(tmp_path / "b", [f"r{i}" for i in reversed(range(50))], bad[:50], y[:50])
    with pytest.raises(ValueError, match="test report ids differ"):
        paired_bootstrap(a, b)


def grid_on_disk(population, tmp_path, *, seeds):
    """DP at epsilon 1 (worse) and LoRA runs of one dataset x model with predictions on disk."""
    y, good, bad, _ = population
    ids = [f"r{i}" for i in range(400)]
    rng = np.random.default_rng(2)
    run_dirs = {}
    for seed in seeds:
        run_dirs["DP-LoRA ε=1", seed] = save(tmp_path / f"dp{seed}", ids, predictions(rng, y[:400], 0.2), y[:400])
        run_dirs["LoRA", seed] = save(tmp_path / f"lora{seed}", ids, predictions(rng, y[:400], 0.05), y[:400])
    return frame({"DP-LoRA ε=1": 0.7, "LoRA": 0.85}, seeds=seeds, run_dirs=run_dirs)


def test_bootstrap_table_pairs_runs_by_seed(population, tmp_path):
    table = paired_bootstrap_table(grid_on_disk(population, tmp_path, seeds=[0, 1, 2]), n_resamples=300)
    assert list(table["seed"]) == [0, 1, 2] and (table["setting"] == "DP-LoRA ε=1").all()
    assert (table["ci_high"] < 0).all() and (table["n_reports"] == 400).all()


def test_bootstrap_table_rejects_a_run_with_another_test_set(population, tmp_path):
    df = grid_on_disk(population, tmp_path, seeds=[0, 1])
    y, good, _, _ = population
    df.loc[df.index[-1], "run_dir"] = save(tmp_path / "other", [f"x{i}" for i in range(400)], good[:400], y[:400])
    with pytest.raises(ValueError, match="test report ids differ"):
        paired_bootstrap_table(df, n_resamples=10)


def test_single_seed_degrades_to_bootstrap_only(population, tmp_path):
    out = summarise(grid_on_disk(population, tmp_path, seeds=[0]), n_resamples=200)
    assert out.omnibus is None and out.posthoc is None and out.linear is None
    assert set(out.skipped) == {"omnibus", "posthoc", "linear"} and "one seed" in out.skipped["omnibus"]
    assert len(out.bootstrap) == 1 and out.bootstrap["p_value"].iloc[0] < 0.05


def test_summarise_runs_everything_with_replicates(population, tmp_path):
    out = summarise(grid_on_disk(population, tmp_path, seeds=[0, 1, 2]), n_resamples=100)
    assert not out.skipped and len(out.omnibus) == 1 and len(out.posthoc) == 1 and len(out.bootstrap) == 3
    assert out.linear.formula == "weighted_f1 ~ C(setting)"


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="seed"):
        omnibus(frame(APART).drop(columns="seed"))


def test_bootstrap_overview_counts_intervals(population, tmp_path):
    table = paired_bootstrap_table(grid_on_disk(population, tmp_path, seeds=[0, 1, 2]), n_resamples=200)
    row = bootstrap_overview(table).iloc[0]
    assert (row["n_seeds"], row["ci_below_0"], row["ci_above_0"]) == (3, 3, 0)
    assert row["min_diff"] <= row["mean_diff"] <= row["max_diff"] < 0


def test_summarise_without_a_lora_reference(population, tmp_path):
    df = grid_on_disk(population, tmp_path, seeds=[0, 1])
    out = summarise(df[df["mode"] != "lora"], n_resamples=50)
    assert out.bootstrap is None and "no DP run has a LoRA run" in out.skipped["bootstrap"]
    assert out.posthoc.empty and out.omnibus["test"].iloc[0] == "none"
