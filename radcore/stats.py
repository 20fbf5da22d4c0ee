"""Statistical tests across privacy settings, on the results store's one-row-per-run table.

Two sources of uncertainty, two kinds of test:

* **seed variance** (retraining with another seed): an omnibus test per dataset x model
  (:func:`omnibus`: Friedman with seeds as blocks, else Kruskal-Wallis), post-hoc DP-vs-LoRA comparisons
  with Holm correction (:func:`posthoc`) and a linear model with a type-II ANOVA (:func:`linear_model`);
* **test-set sampling** (one trained model, other test reports): a paired bootstrap of the weighted-F1
  difference between a DP run and the non-private LoRA run of the same seed (:func:`paired_bootstrap`).

:func:`summarise` runs what the data allow and says why it skipped the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from patsy import dmatrix
from scipy import stats
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from radcore.grid.store import load_predictions
from radcore.metrics import THRESHOLD, resample_weights, weighted_f1_of_resamples

METRIC = "weighted_f1"
REFERENCE_MODE = "lora"  # the non-private LoRA reference every DP setting is compared with
CELL = ["dataset", "model"]
REQUIRED = ("dataset", "model", "mode", "setting", "setting_order", "seed")


def _check(df: pd.DataFrame, *, metric: str | None = METRIC) -> pd.DataFrame:
    needed = [*REQUIRED, *([metric] if metric else [])]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks column(s) {missing}")
    dupes = df.duplicated(["dataset", "model", "setting", "seed"])
    if dupes.any():
        raise ValueError(f"{int(dupes.sum())} duplicate run(s) of one (dataset, model, setting, seed)")
    return df


def _cells(df: pd.DataFrame):
    """(dataset, model) and its runs, in table order."""
    yield from df.groupby(CELL, sort=False)


def _seed_sets(cell: pd.DataFrame) -> dict[str, frozenset]:
    return {s: frozenset(g["seed"]) for s, g in cell.groupby("setting", sort=False)}


def _ordered_settings(cell: pd.DataFrame) -> list[str]:
    return list(cell.sort_values("setting_order")["setting"].drop_duplicates())


def max_seeds_per_setting(df: pd.DataFrame) -> int:
    """The largest number of runs (seeds) of any dataset x model x setting."""
    return int(df.groupby([*CELL, "setting"]).size().max()) if len(df) else 0


# ---------------------------------------------------------------- omnibus test per dataset x model

def _omnibus_choice(cell: pd.DataFrame) -> tuple[str, str]:
    seeds = _seed_sets(cell)
    if len(seeds) < 2:
        return "none", "only one setting"
    if max(map(len, seeds.values())) < 2:
        return "none", "one run per setting: no replication"
    if len(set(seeds.values())) > 1:
        return "Kruskal-Wallis", "settings ran different seeds, so runs are not paired"
    if len(seeds) < 3:
        return "Kruskal-Wallis", "Friedman needs at least 3 settings"
    return "Friedman", "every setting ran the same seeds: runs are paired by seed (blocks)"


def _friedman(cell: pd.DataFrame, metric: str) -> dict:
    wide = cell.pivot(index="seed", columns="setting", values=metric)[_ordered_settings(cell)]
    n, k = wide.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.friedmanchisquare(*(wide[c].to_numpy() for c in wide.columns))
    return {"statistic": res.statistic, "df": k - 1, "p_value": res.pvalue, "n_seeds": n,
            "effect_size": res.statistic / (n * (k - 1)), "effect_size_name": "Kendall's W"}


def _kruskal(cell: pd.DataFrame, metric: str) -> dict:
    groups = [g[metric].to_numpy() for _, g in cell.groupby("setting", sort=False)]
    n = sum(map(len, groups))
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.kruskal(*groups)
    return {"statistic": res.statistic, "df": len(groups) - 1, "p_value": res.pvalue,
            "n_seeds": cell["seed"].nunique(), "effect_size": res.statistic / (n - 1),
            "effect_size_name": "epsilon-squared"}


def omnibus(df: pd.DataFrame, *, metric: str = METRIC) -> pd.DataFrame:
    """Does ``metric`` differ across privacy settings? One row per dataset x model.

    Friedman (seeds as blocks) when every setting ran the same >= 2 seeds and there are >= 3 settings,
    else Kruskal-Wallis; ``reason`` says why. Effect size: Kendall's W (Friedman) or epsilon-squared
    (Kruskal-Wallis), both in [0, 1]. Statistic and p-value are NaN when all values tie.
    """
    rows = []
    for (dataset, model), cell in _cells(_check(df, metric=metric)):
        test, reason = _omnibus_choice(cell)
        base = {"dataset": dataset, "model": model, "test": test, "reason": reason,
                "n_settings": cell["setting"].nunique(), "n_seeds": cell["seed"].nunique(), "n_runs": len(cell)}
        result = {"Friedman": _friedman, "Kruskal-Wallis": _kruskal}.get(test)
        rows.append({**base, **(result(cell, metric) if result else {})})
    columns = ["dataset", "model", "test", "reason", "n_settings", "n_seeds", "n_runs", "statistic", "df",
               "p_value", "effect_size", "effect_size_name"]
    return pd.DataFrame(rows).reindex(columns=columns)


# ---------------------------------------------------------------- post-hoc: each DP setting vs LoRA

def _paired(dp: pd.Series, ref: pd.Series) -> dict:
    """Wilcoxon signed-rank and paired t-test on seed-matched values (index: seed)."""
    diff = (dp - ref).to_numpy()
    mean, n = diff.mean(), len(diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        wil = stats.wilcoxon(diff) if np.any(diff != 0) else None
        spread = np.ptp(diff) > 1e-12  # constant differences: no t-test, no interval width, no d_z
        t = stats.ttest_rel(dp.to_numpy(), ref.to_numpy()) if spread else None
    ci = t.confidence_interval(0.95) if spread else (mean, mean)
    return {"test": "Wilcoxon signed-rank", "statistic": wil.statistic if wil else math.nan,
            "p_value": wil.pvalue if wil else 1.0, "min_attainable_p": 2.0 ** (1 - n),
            "t_statistic": t.statistic if spread else math.nan, "t_p_value": t.pvalue if spread else math.nan,
            "diff_ci_low": ci[0], "diff_ci_high": ci[1], "d_z": mean / diff.std(ddof=1) if spread else math.nan}


def _unpaired(dp: pd.Series, ref: pd.Series) -> dict:
    """Mann-Whitney U and Welch t-test when the two settings ran different seeds."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mw = stats.mannwhitneyu(dp, ref, alternative="two-sided")
        t = stats.ttest_ind(dp, ref, equal_var=False)
    ci = t.confidence_interval(0.95)
    return {"test": "Mann-Whitney U", "statistic": mw.statistic, "p_value": mw.pvalue,
            "min_attainable_p": min(1.0, 2.0 / math.comb(len(dp) + len(ref), len(dp))),
            "t_statistic": t.statistic, "t_p_value": t.pvalue, "diff_ci_low": ci.low, "diff_ci_high": ci.high,
            "d_z": math.nan}


def _compare(dp: pd.DataFrame, ref: pd.DataFrame, metric: str) -> dict:
    a, b = dp.set_index("seed")[metric].sort_index(), ref.set_index("seed")[metric].sort_index()
    out = {"n_dp": len(a), "n_ref": len(b), "paired": bool(a.index.equals(b.index)),
           "mean_dp": a.mean(), "mean_ref": b.mean(), "mean_diff": a.mean() - b.mean()}
    if min(len(a), len(b)) < 2:
        return {**out, "note": "fewer than 2 runs on one side: no test"}
    out.update(_paired(a, b) if out["paired"] else _unpaired(a, b))
    if out["min_attainable_p"] >= 0.05:
        out["note"] = (f"with {min(len(a), len(b))} seeds the exact {out['test']} test cannot reach p < 0.05 "
                       f"(smallest p = {out['min_attainable_p']:.3g}); see the t-test")
    return out


def _holm(p: pd.Series) -> pd.Series:
    """Holm-adjusted p-values over the finite entries of ``p``."""
    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        out[ok] = multipletests(p[ok].to_numpy(), method="holm")[1]
    return out


POSTHOC_COLUMNS = ["dataset", "model", "setting", "setting_order", "reference", "n_dp", "n_ref", "paired",
                   "mean_dp", "mean_ref", "mean_diff", "diff_ci_low", "diff_ci_high", "d_z", "test", "statistic",
                   "p_value", "p_holm", "min_attainable_p", "t_statistic", "t_p_value", "t_p_holm", "note"]


def posthoc(df: pd.DataFrame, *, metric: str = METRIC) -> pd.DataFrame:
    """Each DP setting vs non-private LoRA, per dataset x model; differences are DP minus LoRA.

    Paired by seed (Wilcoxon signed-rank, paired t-test, d_z = mean/sd of the differences) when both
    settings ran the same seeds, else Mann-Whitney U and Welch's t-test (d_z NaN). ``p_holm`` and
    ``t_p_holm`` are Holm-adjusted over the DP settings of one dataset x model. ``diff_ci_*`` is the 95%
    t-interval of the mean difference. ``note`` flags comparisons whose exact test cannot reach p < 0.05.
    """
    rows = []
    for (dataset, model), cell in _cells(_check(df, metric=metric)):
        ref = cell[cell["mode"] == REFERENCE_MODE]
        if ref.empty:
            continue
        found = []
        for setting, dp in cell[cell["mode"].str.startswith("dp-")].groupby("setting", sort=False):
            found.append({"dataset": dataset, "model": model, "setting": setting,
                          "setting_order": dp["setting_order"].iloc[0], "reference": ref["setting"].iloc[0],
                          **_compare(dp, ref, metric)})
        block = pd.DataFrame(found).reindex(columns=POSTHOC_COLUMNS)
        if len(block):
            block["p_holm"], block["t_p_holm"] = _holm(block["p_value"]), _holm(block["t_p_value"])
            rows.append(block.sort_values("setting_order"))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=POSTHOC_COLUMNS)


# ---------------------------------------------------------------- linear model and ANOVA

class LinearModel(NamedTuple):
    """An OLS fit, its type-II ANOVA table and formula; ``fit`` and ``anova`` are None when it cannot be fit."""

    fit: object | None
    anova: pd.DataFrame | None
    formula: str | None
    note: str


def _resid_df(formula: str, df: pd.DataFrame) -> int:
    design = dmatrix(formula.split("~", 1)[1], df, return_type="dataframe")
    return len(df) - int(np.linalg.matrix_rank(design.to_numpy()))


def _formulas(df: pd.DataFrame, metric: str) -> tuple[list[str], list[str]]:
    """Candidate formulas (richest first) and notes on the factors dropped."""
    factors = [f for f in ("setting", "model", "dataset") if df[f].nunique() > 1]
    notes = [f"{f} dropped (one level)" for f in ("setting", "model", "dataset") if f not in factors]
    terms = [f"C({f})" for f in factors]
    main = f"{metric} ~ " + (" + ".join(terms) if terms else "1")
    if "setting" in factors and "model" in factors:
        rest = [t for t in terms if t not in ("C(setting)", "C(model)")]
        return [f"{metric} ~ " + " + ".join(["C(setting) * C(model)", *rest]), main], notes
    return [main], notes


def linear_model(df: pd.DataFrame, *, metric: str = METRIC, min_resid_df: int = 1) -> LinearModel:
    """OLS of ``metric`` on C(setting) * C(model) (+ C(dataset)) and its type-II ANOVA table.

    Factors with a single level are dropped; the setting x model interaction is dropped when it would
    leave fewer than ``min_resid_df`` residual degrees of freedom. Assumes normal, equal-variance
    residuals (see :func:`residual_check`).
    """
    df = _check(df, metric=metric)
    if df["setting"].nunique() < 2:
        return LinearModel(None, None, None, "only one setting: nothing to compare")
    candidates, notes = _formulas(df, metric)
    for formula in candidates:
        if _resid_df(formula, df) >= min_resid_df:
            if formula != candidates[0]:
                notes.append("setting x model interaction dropped (too few residual degrees of freedom)")
            fit = ols(formula, data=df).fit()
            return LinearModel(fit, anova_lm(fit, typ=2), formula, "; ".join(notes))
    return LinearModel(None, None, None, "no residual degrees of freedom (too few runs per setting)")


def residual_check(fit, *, groups: pd.Series | None = None) -> pd.DataFrame:
    """Shapiro-Wilk on the residuals (normality) and, given ``groups``, Levene across them (equal variances)."""
    resid = np.asarray(fit.resid)
    rows = []
    if len(resid) >= 3 and np.ptp(resid) > 0:
        sw = stats.shapiro(resid)
        rows.append({"check": "Shapiro-Wilk (normal residuals)", "statistic": sw.statistic, "p_value": sw.pvalue,
                     "n": len(resid)})
    if groups is not None:
        parts = [resid[np.asarray(groups) == g] for g in pd.unique(groups)]
        if len(parts) > 1 and all(len(p) >= 2 for p in parts):
            with np.errstate(invalid="ignore", divide="ignore"):
                lev = stats.levene(*parts, center="median")
            rows.append({"check": "Levene/Brown-Forsythe (equal variances)", "statistic": lev.statistic,
                         "p_value": lev.pvalue, "n": len(resid)})
    return pd.DataFrame(rows, columns=["check", "statistic", "p_value", "n"])


# ---------------------------------------------------------------- paired bootstrap on test reports

def _same_test_set(a: dict, b: dict, *, what: str) -> None:
    if a["ids"].shape != b["ids"].shape or not np.array_equal(a["ids"], b["ids"]):
        raise ValueError(f"{what}: test report ids differ ({len(a['ids'])} vs {len(b['ids'])} reports, or "
                         "another order); runs of one dataset must share the same test set")
    for key in ("labels", "label_mask"):
        if not np.array_equal(a[key], b[key]):
            raise ValueError(f"{what}: test '{key}' arrays differ although the report ids match")


def _bootstrap(a: dict, b: dict, *, n_resamples: int, seed: int, threshold: float) -> dict:
    y, mask = a["labels"].astype(float), a["label_mask"].astype(float)
    n = len(y)
    weights = np.vstack([np.ones(n), resample_weights(n, n_resamples=n_resamples, seed=seed)])
    f1 = {key: weighted_f1_of_resamples(weights, y, (run["probabilities"] >= threshold).astype(float), mask)
          for key, run in (("a", a), ("b", b))}
    diff = f1["a"] - f1["b"]
    observed, boot = diff[0], diff[1:]
    other_side = np.mean(boot >= 0) if observed < 0 else np.mean(boot <= 0) if observed > 0 else 1.0
    return {"f1_a": f1["a"][0], "f1_b": f1["b"][0], "diff": observed,
            "ci_low": np.percentile(boot, 2.5), "ci_high": np.percentile(boot, 97.5),
            "p_value": min(1.0, 2 * other_side), "n_reports": n, "n_resamples": n_resamples}


def paired_bootstrap(run_a: str | Path, run_b: str | Path, *, n_resamples: int = 1000, seed: int = 0,
                     threshold: float = THRESHOLD) -> dict:
    """Weighted F1 of run A minus run B, resampling the shared test reports (the same resamples for both).

    Returns ``f1_a``, ``f1_b``, the observed ``diff``, its 95% percentile interval (``ci_low``,
    ``ci_high``), the two-sided bootstrap ``p_value`` (twice the share of resampled differences on the
    other side of 0, at most 1), ``n_reports`` and ``n_resamples``. Raises ValueError if the test sets differ.
    """
    a, b = load_predictions(run_a), load_predictions(run_b)
    _same_test_set(a, b, what=f"{Path(run_a).name} vs {Path(run_b).name}")
    return _bootstrap(a, b, n_resamples=n_resamples, seed=seed, threshold=threshold)


def _dataset_predictions(runs: pd.DataFrame) -> dict[str, dict]:
    """Predictions of every run of one dataset, checked to share one test set."""
    preds = {d: load_predictions(d) for d in runs["run_dir"]}
    first = next(iter(preds))
    for run_dir, p in preds.items():
        _same_test_set(preds[first], p, what=f"dataset {runs['dataset'].iloc[0]!r}, run {Path(run_dir).name}")
    return preds


BOOTSTRAP_COLUMNS = ["dataset", "model", "seed", "setting", "setting_order", "reference", "f1_dp", "f1_ref", "diff",
                     "ci_low", "ci_high", "p_value", "n_reports", "n_resamples"]


def paired_bootstrap_table(df: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0,
                           threshold: float = THRESHOLD) -> pd.DataFrame:
    """:func:`paired_bootstrap` of every DP run vs the LoRA run of the same dataset, model and seed."""
    df = _check(df, metric=None)
    if "run_dir" not in df.columns:
        raise ValueError("results table lacks column 'run_dir'")
    rows = []
    for _, runs in df.groupby("dataset", sort=False):
        preds = _dataset_predictions(runs)
        refs = runs[runs["mode"] == REFERENCE_MODE].set_index(["model", "seed"])
        for _, dp in runs[runs["mode"].str.startswith("dp-")].iterrows():
            if (dp["model"], dp["seed"]) not in refs.index:
                continue
            ref = refs.loc[(dp["model"], dp["seed"])]
            res = _bootstrap(preds[dp["run_dir"]], preds[ref["run_dir"]], n_resamples=n_resamples, seed=seed,
                             threshold=threshold)
            rows.append({**{k: dp[k] for k in ("dataset", "model", "seed", "setting", "setting_order")},
                         "reference": ref["setting"], "f1_dp": res.pop("f1_a"), "f1_ref": res.pop("f1_b"), **res})
    table = pd.DataFrame(rows).reindex(columns=BOOTSTRAP_COLUMNS)
    return table.sort_values(["dataset", "model", "setting_order", "seed"], ignore_index=True)


def bootstrap_overview(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x model x DP setting: seeds, mean/min/max difference, and intervals below or above 0."""
    groups = table.assign(below=table["ci_high"] < 0, above=table["ci_low"] > 0).groupby(
        ["dataset", "model", "setting_order", "setting"], sort=True)
    out = groups.agg(n_seeds=("seed", "size"), mean_diff=("diff", "mean"), min_diff=("diff", "min"),
                     max_diff=("diff", "max"), ci_below_0=("below", "sum"), ci_above_0=("above", "sum"))
    return out.reset_index().drop(columns="setting_order")


# ---------------------------------------------------------------- everything the data allow

@dataclass
class Summary:
    """The tables :func:`summarise` could compute (None where skipped) and, per skipped part, why."""

    omnibus: pd.DataFrame | None = None
    posthoc: pd.DataFrame | None = None
    linear: LinearModel | None = None
    bootstrap: pd.DataFrame | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def summarise(df: pd.DataFrame, *, metric: str = METRIC, n_resamples: int = 1000, seed: int = 0) -> Summary:
    """Omnibus, post-hoc, linear model and paired bootstrap; with one seed per setting, only the bootstrap."""
    df = _check(df, metric=metric)
    out = Summary()
    if df.empty:
        out.skipped = {k: "no finished runs" for k in ("omnibus", "posthoc", "linear", "bootstrap")}
        return out
    if max_seeds_per_setting(df) < 2:
        reason = "one seed per setting: seed variance cannot be estimated"
        out.skipped.update(omnibus=reason, posthoc=reason, linear=reason)
    else:
        out.omnibus, out.posthoc = omnibus(df, metric=metric), posthoc(df, metric=metric)
        out.linear = linear_model(df, metric=metric)
        if out.linear.fit is None:
            out.skipped["linear"] = out.linear.note
    if "run_dir" not in df.columns:
        out.skipped["bootstrap"] = "no run_dir column: predictions unavailable"
        return out
    table = paired_bootstrap_table(df, n_resamples=n_resamples, seed=seed)
    if table.empty:
        out.skipped["bootstrap"] = "no DP run has a LoRA run of the same dataset, model and seed"
    else:
        out.bootstrap = table
    return out
