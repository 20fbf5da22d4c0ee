"""Describing corpora and grids of runs with aggregates: tidy pandas tables for the data and results pages.

Corpus side: label prevalence per split, label co-occurrence, report lengths, split sizes, loader skips, and
(synthetic corpora only) example reports. Results side: the study's table (mean ± sd over seeds per dataset x
model x setting), the privacy actually spent, and the headline numbers the results page glues into its text.

Nothing here returns report text except :func:`example_reports`, which refuses real data.
"""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pandas as pd
from scipy import stats

from radcore.corpus import SPLITS, Corpus

PERCENTILES = (50, 90, 99)

# ================================================================================================ corpus


def prevalence(corpus: Corpus) -> pd.DataFrame:
    """Label prevalence per split: one row per split x label.

    Columns: dataset, split, label, reports (in the split), counted (cells with mask 1), positives (counted
    cells equal to 1), masked (cells with mask 0: e.g. MIMIC-CXR's uncertain labels under ``ignore``), share
    (positives / counted; NaN when nothing is counted). Splits without reports are left out.
    """
    rows = []
    for split in SPLITS:
        part = corpus.subset(split)
        if not len(part):
            continue
        counted = part.label_mask.sum(0)
        positives = (part.labels * part.label_mask).sum(0)
        for j, label in enumerate(corpus.label_names):
            rows.append({"dataset": corpus.dataset, "split": split, "label": label, "reports": len(part),
                         "counted": int(counted[j]), "positives": int(positives[j]),
                         "masked": int(len(part) - counted[j]),
                         "share": positives[j] / counted[j] if counted[j] else math.nan})
    return pd.DataFrame(rows, columns=["dataset", "split", "label", "reports", "counted", "positives", "masked",
                                       "share"])


def prevalence_wide(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`prevalence` as a reader's table: one row per label, per split "positives / counted (share)"."""
    cell = table.apply(lambda r: f"{r.positives} / {r.counted} ({r.share:.1%})"
                       + (f", {r.masked} masked" if r.masked else ""), axis=1)
    wide = table.assign(cell=cell).pivot(index="label", columns="split", values="cell")
    order = list(dict.fromkeys(table["label"]))
    return wide.loc[order, [s for s in SPLITS if s in wide.columns]].rename_axis(index="label", columns=None)


MIN_POSITIVES_FOR_F1 = 20
"""Below this many positive test reports a label's F1 is flagged as unstable: one report then moves its recall
by more than 0.05."""


def few_positives(table: pd.DataFrame, *, split: str = "test", minimum: int = MIN_POSITIVES_FOR_F1) -> pd.DataFrame:
    """Labels with fewer than ``minimum`` positives in ``split`` (``table`` from :func:`prevalence`).

    Columns: dataset, label, positives, counted. Their per-label F1 is too unstable to read on its own; the
    weighted F1 gives them weight in proportion to their positives.
    """
    rows = table[(table["split"] == split) & (table["positives"] < minimum)]
    return rows[["dataset", "label", "positives", "counted"]].reset_index(drop=True)


def few_positives_markdown(table: pd.DataFrame, *, split: str = "test", minimum: int = MIN_POSITIVES_FOR_F1) -> str:
    """:func:`few_positives` as a sentence per dataset, for the data page."""
    flagged = few_positives(table, split=split, minimum=minimum)
    lines = []
    for dataset in dict.fromkeys(table["dataset"]):
        rows = flagged[flagged["dataset"] == dataset]
        listed = ", ".join(f"{r.label} ({r.positives})" for r in rows.itertuples())
        lines.append(f"- **{dataset}**: " + (f"fewer than {minimum} positive {split} reports, so F1 is unstable "
                                             f"for {listed}." if len(rows) else
                                             f"every label has at least {minimum} positive {split} reports."))
    return "\n".join(lines)


def cooccurrence(corpus: Corpus, *, split: str | None = "train") -> pd.DataFrame:
    """Pairwise label co-occurrence over ``split`` (``None``: every report): one row per ordered label pair.

    A pair is counted on the reports where *both* labels count (mask 1). Columns: dataset, label_a, label_b,
    reports (both counted), n_a, n_b, n_ab (positives), p_b_given_a (n_ab / n_a, NaN when n_a = 0),
    jaccard (n_ab / (n_a + n_b - n_ab)) and phi (Pearson correlation of the two 0/1 columns; NaN when
    either is constant).
    """
    part = corpus if split is None else corpus.subset(split)
    y = (part.labels * part.label_mask).astype(np.int64)
    m = part.label_mask.astype(np.int64)
    both = m.T @ m                                  # reports where a and b both count
    n_ab = y.T @ y                                  # both positive
    n_a = y.T @ m                                   # [a, b]: a positive, b counted
    n_b = m.T @ y                                   # [a, b]: a counted, b positive
    n00 = both - n_a - n_b + n_ab
    with np.errstate(divide="ignore", invalid="ignore"):
        p_b_given_a = np.where(n_a > 0, n_ab / n_a, np.nan)
        union = n_a + n_b - n_ab
        jaccard = np.where(union > 0, n_ab / union, np.nan)
        den = np.sqrt(n_a.astype(float) * (both - n_a) * n_b * (both - n_b))
        phi = np.where(den > 0, (n_ab * n00 - (n_a - n_ab) * (n_b - n_ab)) / den, np.nan)
    names = corpus.label_names
    k = len(names)
    a, b = np.repeat(np.arange(k), k), np.tile(np.arange(k), k)
    return pd.DataFrame({"dataset": corpus.dataset, "label_a": [names[i] for i in a],
                         "label_b": [names[j] for j in b], "reports": both[a, b], "n_a": n_a[a, b],
                         "n_b": n_b[a, b], "n_ab": n_ab[a, b], "p_b_given_a": p_b_given_a[a, b],
                         "jaccard": jaccard[a, b], "phi": phi[a, b]})


def report_lengths(corpus: Corpus, *, tokenizer=None) -> pd.DataFrame:
    """Length of every report: one row each with dataset, split, words and (given a tokenizer) tokens.

    Words are whitespace-separated pieces; tokens are the tokenizer's ids *with* special tokens, the count that
    ``max_length`` truncates.
    """
    frame = pd.DataFrame({"dataset": corpus.dataset, "split": list(corpus.split),
                          "words": [len(t.split()) for t in corpus.texts]})
    if tokenizer is not None:
        ids = tokenizer(list(corpus.texts), add_special_tokens=True, truncation=False)["input_ids"]
        frame["tokens"] = [len(x) for x in ids]
    return frame


def length_summary(lengths: pd.DataFrame, *, max_length: int | None = None) -> pd.DataFrame:
    """Percentiles of :func:`report_lengths` per dataset and unit (words, tokens).

    Columns: dataset, unit, reports, mean, p50, p90, p99, max and, for tokens when ``max_length`` is given,
    over_max (share of reports longer than ``max_length`` tokens, i.e. cut by truncation).
    """
    rows = []
    for dataset, group in lengths.groupby("dataset", sort=False):
        for unit in ("words", "tokens"):
            if unit not in group:
                continue
            values = group[unit].to_numpy()
            row = {"dataset": dataset, "unit": unit, "reports": len(values), "mean": values.mean(),
                   **{f"p{q}": np.percentile(values, q) for q in PERCENTILES}, "max": values.max()}
            if max_length is not None:
                row["over_max"] = float((values > max_length).mean()) if unit == "tokens" else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def overview(corpus: Corpus, *, data_dir: str, synthetic: bool) -> pd.DataFrame:
    """One row: the dataset, where its corpus lies, whether it is synthetic, and its size."""
    sizes = corpus.split_sizes()
    return pd.DataFrame([{"dataset": corpus.dataset, "data_dir": str(data_dir), "synthetic": bool(synthetic),
                          "reports": len(corpus), "patients": len(set(corpus.patient_ids)),
                          "labels": len(corpus.label_names), **sizes}])


def split_table(corpus: Corpus) -> pd.DataFrame:
    """Reports and patients per split, with each split's share of the reports."""
    sizes = corpus.split_sizes()
    patients = {s: len({p for p, x in zip(corpus.patient_ids, corpus.split) if x == s}) for s in SPLITS}
    total = max(len(corpus), 1)
    return pd.DataFrame({"dataset": corpus.dataset, "split": list(SPLITS), "reports": [sizes[s] for s in SPLITS],
                         "patients": [patients[s] for s in SPLITS],
                         "share": [sizes[s] / total for s in SPLITS]})


def skip_table(corpus: Corpus) -> pd.DataFrame:
    """The loader's counted skips and repairs (``Corpus.skipped``), one row per reason, zeros included."""
    return pd.DataFrame({"dataset": corpus.dataset, "reason": list(corpus.skipped),
                         "count": [int(v) for v in corpus.skipped.values()]},
                        columns=["dataset", "reason", "count"])


def example_reports(corpus: Corpus, k: int = 3, seed: int = 0, *, synthetic: bool) -> pd.DataFrame:
    """``k`` reports drawn with ``seed``, with their positive and masked labels: **synthetic corpora only**.

    ``synthetic`` must be stated by the caller (e.g. ``corpus.source == "synthetic"``); anything but ``True``
    raises ``ValueError``, and so does a corpus the loader found to be real (``corpus.source == "real"``, no
    ``SYNTHETIC.json``) whatever the caller says, so real report text cannot be shown by accident.
    """
    if synthetic is not True or corpus.source == "real":
        raise ValueError("example_reports shows report text and is for synthetic corpora only; "
                         "real reports are never printed (pass synthetic=True only for generated data)")
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(corpus), size=min(k, len(corpus)), replace=False).tolist())
    names = corpus.label_names
    rows = [{"id": corpus.ids[i], "split": corpus.split[i],
             "positive": ", ".join(n for j, n in enumerate(names)
                                   if corpus.label_mask[i, j] and corpus.labels[i, j] == 1) or "(none)",
             "masked": ", ".join(n for j, n in enumerate(names) if not corpus.label_mask[i, j]),
             "text": corpus.texts[i]} for i in picks]
    return pd.DataFrame(rows, columns=["id", "split", "positive", "masked", "text"])


def examples_markdown(examples: pd.DataFrame, *, width: int = 100) -> str:
    """:func:`example_reports` as Markdown: a line of labels per report, then its text verbatim (wrapped)."""
    parts = []
    for row in examples.itertuples():
        masked = f"; masked (uncertain): {row.masked}" if row.masked else ""
        text = "\n".join(textwrap.fill(line, width) if line.strip() else "" for line in row.text.splitlines())
        fence = "`" * max([3] + [len(run) + 1 for run in re.findall("`+", text)])
        parts.append(f"**{row.id}** ({row.split} split). Positive: {row.positive}{masked}.\n\n"
                     f"{fence}text\n{text}\n{fence}")
    return "\n\n".join(parts)


# =============================================================================================== results


def seed_summary(frame: pd.DataFrame, *, metric: str = "weighted_f1") -> pd.DataFrame:
    """``metric`` over seeds per dataset x model x setting (``frame`` from :func:`radcore.grid.store.collect`).

    Columns: dataset, model, mode, epsilon, setting, setting_order, seeds (n), mean, sd (NaN for one seed),
    min, max, t_lo and t_hi (two-sided 95% Student-t interval of the mean; NaN for one seed).
    """
    keys = ["dataset", "model", "setting_order", "setting", "mode"]
    grouped = frame.groupby(keys, sort=True, dropna=False)
    out = grouped[metric].agg(seeds="count", mean="mean", sd="std", min="min", max="max").reset_index()
    out["epsilon"] = grouped["epsilon"].first().to_numpy()
    half = stats.t.ppf(0.975, np.maximum(out["seeds"] - 1, 1)) * out["sd"] / np.sqrt(out["seeds"])
    out["t_lo"], out["t_hi"] = out["mean"] - half, out["mean"] + half
    return out[["dataset", "model", "mode", "epsilon", "setting", "setting_order", "seeds", "mean", "sd", "min",
                "max", "t_lo", "t_hi"]]


BASELINE_COLUMN = "no training (ε = 0)"
BASELINE_MODEL = "rule labeller"


def results_table(frame: pd.DataFrame, *, metric: str = "weighted_f1", digits: int = 3,
                  baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """The study's table: rows dataset x model, columns the settings (DP by ascending epsilon, LoRA, Full FT).

    Cells read "mean ± sd" of ``metric`` over seeds (just the mean for one seed; empty where a setting has no
    run). A last column ``seeds`` gives the number of seeds per row ("2" or a range such as "1–3").
    ``baselines`` (:func:`radcore.grid.store.labeller_baselines`) adds a "rule labeller" row per dataset, its
    score in a first column "no training (ε = 0)".
    """
    summary = seed_summary(frame, metric=metric)
    if summary.empty:
        return pd.DataFrame()
    fmt = f"{{:.{digits}f}}"
    summary["cell"] = [fmt.format(m) + ("" if n < 2 else f" ± {fmt.format(s)}")
                       for m, s, n in zip(summary["mean"], summary["sd"], summary["seeds"])]
    columns = summary.sort_values("setting_order")["setting"].drop_duplicates().tolist()
    table = summary.pivot(index=["dataset", "model"], columns="setting", values="cell")
    table = table.reindex(columns=columns).fillna("")
    counts = summary.groupby(["dataset", "model"])["seeds"].agg(["min", "max"])
    table["seeds"] = [str(lo) if lo == hi else f"{lo}–{hi}" for lo, hi in zip(counts["min"], counts["max"])]
    if baselines is not None and len(baselines):
        table.insert(0, BASELINE_COLUMN, "")
        index = pd.MultiIndex.from_tuples([(d, BASELINE_MODEL) for d in baselines["dataset"]], names=table.index.names)
        extra = pd.DataFrame({BASELINE_COLUMN: [fmt.format(v) for v in baselines[metric]], "seeds": "–"}, index=index)
        table = pd.concat([table, extra.reindex(columns=table.columns, fill_value="")])
        table = table.sort_index(level=0, sort_remaining=False)
    table.columns.name = None
    return table


def privacy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Privacy actually spent per dataset x DP setting, summarised conservatively over models and seeds.

    Columns: dataset, setting, epsilon (target), epsilon_spent (max over runs), within_target (every run's
    spent epsilon <= target), noise_multiplier (min), delta (max), steps (max), runs.
    """
    dp = frame[frame["mode"].str.startswith("dp-")]
    if dp.empty:
        return pd.DataFrame(columns=["dataset", "setting", "epsilon", "epsilon_spent", "within_target",
                                     "noise_multiplier", "delta", "steps", "runs"])
    dp = dp.assign(within=dp["epsilon_spent"] <= dp["epsilon"] * (1 + 1e-9))
    out = dp.groupby(["dataset", "setting_order", "setting"]).agg(
        epsilon=("epsilon", "first"), epsilon_spent=("epsilon_spent", "max"), within_target=("within", "all"),
        noise_multiplier=("noise_multiplier", "min"), delta=("delta", "max"), steps=("steps", "max"),
        runs=("seed", "count")).reset_index()
    return out.drop(columns="setting_order")


HEADLINE_KEYS = ("n_runs", "n_seeds", "dataset", "model", "lora_f1", "full_f1", "dp_f1", "dp_eps", "lora_dp_gap",
                 "full_lora_gap")


def headline_numbers(frame: pd.DataFrame, *, dataset: str | None = None, model: str | None = None,
                     metric: str = "weighted_f1") -> dict:
    """Numbers the results page quotes, for one dataset x model (default: the first in ``frame``).

    Keys (:data:`HEADLINE_KEYS`): n_runs (all rows of ``frame``), n_seeds (most seeds of any setting of the
    pair), dataset, model, lora_f1 / full_f1 (mean ``metric`` of non-private LoRA / full fine-tuning),
    dp_f1 and dp_eps (mean of DP-LoRA at the largest epsilon run, and that epsilon), lora_dp_gap
    (lora_f1 - dp_f1) and full_lora_gap (full_f1 - lora_f1). A missing setting gives NaN.
    """
    if frame.empty:
        raise ValueError("no finished runs to summarise")
    dataset = dataset if dataset is not None else frame["dataset"].iloc[0]
    pair = frame[frame["dataset"] == dataset]
    model = model if model is not None else (pair["model"].iloc[0] if len(pair) else None)
    pair = pair[pair["model"] == model]
    if pair.empty:
        raise ValueError(f"no finished runs for dataset {dataset!r} and model {model!r}")
    mean = lambda rows: float(rows[metric].mean()) if len(rows) else math.nan  # noqa: E731
    dp = pair[pair["mode"] == "dp-lora"]
    dp_eps = float(dp["epsilon"].max()) if len(dp) else math.nan
    numbers = {"n_runs": int(len(frame)), "n_seeds": int(pair.groupby("setting")["seed"].nunique().max()),
               "dataset": dataset, "model": model, "lora_f1": mean(pair[pair["mode"] == "lora"]),
               "full_f1": mean(pair[pair["mode"] == "full"]), "dp_f1": mean(dp[dp["epsilon"] == dp_eps]),
               "dp_eps": dp_eps}
    numbers["lora_dp_gap"] = numbers["lora_f1"] - numbers["dp_f1"]
    numbers["full_lora_gap"] = numbers["full_f1"] - numbers["lora_f1"]
    return numbers



# ========================================================================================== real reports

REAL_DATASET = "openi"
SYNTHETIC_DATASET = "mimic-cxr"
REAL_REPORTS_COMMANDS = (
    ("radcore data openi --out data/openi", "the public Open-i reports, into git-ignored data/openi/"),
    ("radcore grid --profile openi --workers 2", "MiniLM on them: every privacy setting, 3 seeds"),
    ("make book", "the quick grid (synthetic MiniLM runs to compare with) and this book"),
)


def _models(frame: pd.DataFrame, dataset: str) -> list[str]:
    return list(dict.fromkeys(frame.loc[frame["dataset"] == dataset, "model"])) if len(frame) else []


def real_reports_note(real: pd.DataFrame, synthetic: pd.DataFrame, *, openi_root: str, results_root: str,
                      data_present: bool, real_dataset: str = REAL_DATASET,
                      synthetic_dataset: str = SYNTHETIC_DATASET) -> str:
    """Markdown that opens the real-reports page: what this build holds and, when it is empty, how to fill it.

    ``real`` and ``synthetic`` are :func:`radcore.grid.store.collect` tables of ``openi_root`` and
    ``results_root``; ``data_present`` says whether the Open-i reports are on disk (the rule labeller needs
    them). Without real runs it gives the commands of :data:`REAL_REPORTS_COMMANDS`; with them, how many runs
    there are and whether the synthetic results hold runs of the same model to compare with.
    """
    if real.empty:
        width = max(len(command) for command, _ in REAL_REPORTS_COMMANDS)
        block = "\n".join(f"{command:<{width}}  # {why}" for command, why in REAL_REPORTS_COMMANDS)
        data = ("The Open-i reports are already in `data/openi/`, so the first command can be skipped."
                if data_present else "The Open-i reports are not in this checkout either.")
        return (f"**This chapter is empty in this build.** No finished Open-i runs were found under "
                f"`{openi_root}`, so there are no tables, figures or statistics below, only what they will show. "
                f"{data} To fill the chapter, run from the repository root (prefix `radcore` with `.venv/bin/` "
                f"if the virtual environment is not active):\n\n```bash\n{block}\n```\n\n"
                "The grid trains on your machine and writes aggregates only; no report text reaches this book.")
    models = _models(real, real_dataset)
    matched = [m for m in models if m in _models(synthetic, synthetic_dataset)]
    text = (f"This build holds {len(real)} finished Open-i runs of {', '.join(models)} under `{openi_root}`.")
    if matched:
        n = int(((synthetic["dataset"] == synthetic_dataset) & synthetic["model"].isin(matched)).sum())
        text += (f" They are compared with {n} runs of the same model on the synthetic {synthetic_dataset} corpus "
                 f"under `{results_root}`.")
    else:
        held = ", ".join(_models(synthetic, synthetic_dataset)) or "none"
        text += (f" The synthetic results under `{results_root}` hold no {synthetic_dataset} run of "
                 f"{', '.join(models)} (models there: {held}), so the comparison sections are empty: the book of "
                 "the `quick` profile (`make book`) trains MiniLM on synthetic reports.")
    if not data_present:
        text += (" The Open-i reports are not in `data/openi/` on this machine, so the rule-labeller baseline "
                 "(which labels the test reports afresh) is left out.")
    return text


def real_vs_synthetic(real: pd.DataFrame, synthetic: pd.DataFrame, *, metrics=("weighted_f1", "auroc_macro"),
                      real_dataset: str = REAL_DATASET, synthetic_dataset: str = SYNTHETIC_DATASET) -> pd.DataFrame:
    """Mean over seeds per model x setting on the real dataset beside the synthetic one, where both ran it.

    ``real`` and ``synthetic`` are :func:`radcore.grid.store.collect` tables. Columns: model, setting,
    setting_order, seeds_real, seeds_synthetic; per metric ``m``: ``m_real``, ``m_synthetic`` and ``m_diff``
    (real minus synthetic); n_train_real, n_train_synthetic (training reports used, mean over runs) and
    noise_real, noise_synthetic (mean DP noise multiplier; NaN for non-private settings). Rows run by setting
    order; empty, with these columns, when no model x setting ran on both.
    """
    metrics = list(metrics)
    columns = (["model", "setting", "setting_order", "seeds_real", "seeds_synthetic"]
               + [f"{m}_{side}" for m in metrics for side in ("real", "synthetic", "diff")]
               + ["n_train_real", "n_train_synthetic", "noise_real", "noise_synthetic"])

    def side(frame: pd.DataFrame, dataset: str, suffix: str) -> pd.DataFrame:
        part = frame[frame["dataset"] == dataset] if len(frame) else frame
        if part.empty:
            return pd.DataFrame(columns=[f"{c}_{suffix}" for c in ("seeds", *metrics, "n_train", "noise")])
        grouped = part.groupby(["model", "setting_order", "setting"])
        out = grouped.agg(seeds=("seed", "nunique"), **{m: (m, "mean") for m in metrics},
                          n_train=("n_train", "mean"), noise=("noise_multiplier", "mean"))
        return out.add_suffix(f"_{suffix}")

    real_side, synthetic_side = side(real, real_dataset, "real"), side(synthetic, synthetic_dataset, "synthetic")
    if real_side.empty or synthetic_side.empty:
        return pd.DataFrame(columns=columns)
    both = real_side.join(synthetic_side, how="inner").reset_index()
    for m in metrics:
        both[f"{m}_diff"] = both[f"{m}_real"] - both[f"{m}_synthetic"]
    return both.sort_values(["model", "setting_order"], ignore_index=True)[columns]


def label_comparison(real_labels: pd.DataFrame, synthetic_labels: pd.DataFrame, *, setting: str = "LoRA",
                     metric: str = "f1", minimum: int = MIN_POSITIVES_FOR_F1, real_dataset: str = REAL_DATASET,
                     synthetic_dataset: str = SYNTHETIC_DATASET) -> pd.DataFrame:
    """Per label, ``metric`` of one ``setting`` on the real and the synthetic test set (mean over seeds).

    ``real_labels`` and ``synthetic_labels`` are :func:`radcore.grid.store.per_label` tables. Columns: model,
    label, positives_real and positives_synthetic (positive test reports, the label's support), ``metric``
    real, synthetic and diff (real minus synthetic), and few_positives: fewer than ``minimum`` positive real
    test reports, so the real score of that label is too unstable to read on its own. Models that ran
    ``setting`` on both sides; labels in the real table's order (NaN where the synthetic side lacks one).
    """
    columns = ["model", "label", "positives_real", "positives_synthetic", f"{metric}_real", f"{metric}_synthetic",
               f"{metric}_diff", "few_positives"]

    def side(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
        if table.empty:
            return pd.DataFrame(columns=["model", "label", "positives", metric])
        part = table[(table["dataset"] == dataset) & (table["setting"] == setting)]
        return part.groupby(["model", "label"], sort=False).agg(positives=("support", "max"),
                                                                 **{metric: (metric, "mean")}).reset_index()

    real, synthetic = side(real_labels, real_dataset), side(synthetic_labels, synthetic_dataset)
    real = real[real["model"].isin(set(synthetic["model"]))]
    if real.empty:
        return pd.DataFrame(columns=columns)
    out = real.merge(synthetic, on=["model", "label"], how="left", suffixes=("_real", "_synthetic"))
    out[f"{metric}_diff"] = out[f"{metric}_real"] - out[f"{metric}_synthetic"]
    out["few_positives"] = out["positives_real"] < minimum
    return out[columns].reset_index(drop=True)


def corpus_contrast(corpora, *, minimum: int = MIN_POSITIVES_FOR_F1) -> pd.DataFrame:
    """Aggregates that set two corpora apart: one row per :class:`~radcore.corpus.Corpus` in ``corpora``.

    Columns: dataset, source, reports, train, test (split sizes), words_p50 and words_p90 (words per report),
    positives_per_report (mean positive labels per report), no_finding_share (share of reports whose
    "No Finding" is positive; NaN without that label), masked_share (share of label cells masked, e.g.
    uncertain mentions under ``ignore``) and few_test_positives (labels with fewer than ``minimum`` positive
    test reports). Counts only: no report text.
    """
    rows = []
    for corpus in corpora:
        words = report_lengths(corpus)["words"].to_numpy()
        counted = corpus.label_mask.astype(bool)
        positives = (corpus.labels * corpus.label_mask) == 1
        sizes = corpus.split_sizes()
        names = list(corpus.label_names)
        no_finding = positives[:, names.index("No Finding")].mean() if "No Finding" in names else math.nan
        flagged = few_positives(prevalence(corpus), minimum=minimum) if sizes["test"] else pd.DataFrame()
        rows.append({"dataset": corpus.dataset, "source": corpus.source, "reports": len(corpus),
                     "train": sizes["train"], "test": sizes["test"],
                     "words_p50": float(np.percentile(words, 50)) if len(words) else math.nan,
                     "words_p90": float(np.percentile(words, 90)) if len(words) else math.nan,
                     "positives_per_report": float(positives.sum(1).mean()) if len(corpus) else math.nan,
                     "no_finding_share": float(no_finding), "masked_share": float(1 - counted.mean()) if counted.size
                     else math.nan, "few_test_positives": int(len(flagged))})
    return pd.DataFrame(rows, columns=["dataset", "source", "reports", "train", "test", "words_p50", "words_p90",
                                       "positives_per_report", "no_finding_share", "masked_share",
                                       "few_test_positives"])


REAL_REPORTS_KEYS = ("n_runs", "n_seeds", "model", "n_train", "lora_f1", "full_f1", "dp_f1", "dp_eps", "lora_dp_gap",
                     "lora_auroc", "dp_auroc", "labeller_f1", "syn_n_runs", "syn_n_train", "syn_lora_f1",
                     "syn_full_f1", "syn_dp_f1", "syn_lora_auroc", "syn_dp_auroc", "lora_diff", "full_diff", "dp_diff",
                     "n_compared", "dp_noise", "syn_dp_noise", "min_positives", "n_few_labels", "few_labels",
                     "train_split", "syn_train_split", "words_p50", "syn_words_p50", "positives_per_report",
                     "syn_positives_per_report", "no_finding_share", "syn_no_finding_share", "masked_share",
                     "syn_masked_share")
CONTRAST_KEYS = ("words_p50", "positives_per_report", "no_finding_share", "masked_share")


def real_reports_numbers(real: pd.DataFrame, synthetic: pd.DataFrame, *, real_labels: pd.DataFrame | None = None,
                         baselines: pd.DataFrame | None = None, contrast: pd.DataFrame | None = None,
                         minimum: int = MIN_POSITIVES_FOR_F1, real_dataset: str = REAL_DATASET,
                         synthetic_dataset: str = SYNTHETIC_DATASET) -> dict:
    """Numbers the real-reports page quotes (its glue keys are these with a ``real_`` prefix).

    ``real`` and ``synthetic`` are :func:`radcore.grid.store.collect` tables (``real`` must hold runs of
    ``real_dataset``), ``real_labels`` its :func:`~radcore.grid.store.per_label` table and ``baselines``
    :func:`~radcore.grid.store.labeller_baselines` and ``contrast`` :func:`corpus_contrast` of the two corpora.
    Keys (:data:`REAL_REPORTS_KEYS`), for the first model of
    the real runs:

    - n_runs, n_seeds, model, n_train (training reports a run used), lora_f1, full_f1, dp_f1 and dp_eps
      (DP-LoRA at its largest epsilon), lora_dp_gap: as :func:`headline_numbers` gives them;
      lora_auroc and dp_auroc the same for macro AUROC; labeller_f1 the rule labeller's weighted F1;
    - syn_*: the same model on the synthetic dataset (syn_dp_* at the real runs' dp_eps), syn_n_runs its runs;
      lora_diff, full_diff, dp_diff: real minus synthetic weighted F1; n_compared: settings both ran;
    - dp_noise, syn_dp_noise: mean DP noise multiplier at dp_eps on each side;
    - min_positives (``minimum``), n_few_labels and few_labels: labels with fewer than ``minimum`` positive
      real test reports ("none" when there are none);
    - from ``contrast``: train_split (training reports in the corpus), words_p50, positives_per_report,
      no_finding_share, masked_share, and each with a ``syn_`` prefix for the synthetic corpus.

    Anything a side lacks is NaN (0 for counts).
    """
    real = real[real["dataset"] == real_dataset]
    if real.empty:
        raise ValueError(f"no finished {real_dataset} runs to summarise")
    model = real["model"].iloc[0]
    head = headline_numbers(real, dataset=real_dataset, model=model)
    auroc = headline_numbers(real, dataset=real_dataset, model=model, metric="auroc_macro")
    numbers = {k: head[k] for k in ("n_runs", "n_seeds", "model", "lora_f1", "full_f1", "dp_f1", "dp_eps",
                                    "lora_dp_gap")}
    numbers["n_train"] = int(real.loc[real["model"] == model, "n_train"].max())
    numbers["lora_auroc"], numbers["dp_auroc"] = auroc["lora_f1"], auroc["dp_f1"]
    rule = baselines[baselines["dataset"] == real_dataset] if baselines is not None and len(baselines) else None
    numbers["labeller_f1"] = float(rule["weighted_f1"].iloc[0]) if rule is not None and len(rule) else math.nan

    compared = real_vs_synthetic(real, synthetic, real_dataset=real_dataset, synthetic_dataset=synthetic_dataset)
    compared = compared[compared["model"] == model].set_index("setting")
    dp_setting = f"DP-LoRA ε={numbers['dp_eps']:g}" if not math.isnan(numbers["dp_eps"]) else None

    def pick(setting, column):
        return float(compared.at[setting, column]) if setting in compared.index else math.nan

    syn = synthetic[(synthetic["dataset"] == synthetic_dataset) & (synthetic["model"] == model)] if len(synthetic) \
        else synthetic
    numbers.update(
        syn_n_runs=int(len(syn)), syn_n_train=int(syn["n_train"].max()) if len(syn) else 0,
        syn_lora_f1=pick("LoRA", "weighted_f1_synthetic"), syn_full_f1=pick("Full FT", "weighted_f1_synthetic"),
        syn_dp_f1=pick(dp_setting, "weighted_f1_synthetic"), syn_lora_auroc=pick("LoRA", "auroc_macro_synthetic"),
        syn_dp_auroc=pick(dp_setting, "auroc_macro_synthetic"), lora_diff=pick("LoRA", "weighted_f1_diff"),
        full_diff=pick("Full FT", "weighted_f1_diff"), dp_diff=pick(dp_setting, "weighted_f1_diff"),
        n_compared=int(len(compared)), dp_noise=pick(dp_setting, "noise_real"),
        syn_dp_noise=pick(dp_setting, "noise_synthetic"))
    if dp_setting is not None and math.isnan(numbers["dp_noise"]):
        dp = real[(real["model"] == model) & (real["setting"] == dp_setting)]
        numbers["dp_noise"] = float(dp["noise_multiplier"].mean())

    few = []
    if real_labels is not None and len(real_labels):
        part = real_labels[(real_labels["dataset"] == real_dataset) & (real_labels["model"] == model)]
        positives = part.groupby("label", sort=False)["support"].max()
        few = [label for label, n in positives.items() if n < minimum]
    numbers.update(min_positives=int(minimum), n_few_labels=len(few), few_labels=", ".join(few) or "none")

    for prefix, dataset in (("", real_dataset), ("syn_", synthetic_dataset)):
        row = contrast[contrast["dataset"] == dataset] if contrast is not None and len(contrast) else ()
        numbers[f"{prefix}train_split"] = int(row["train"].iloc[0]) if len(row) else 0
        for key in CONTRAST_KEYS:
            numbers[f"{prefix}{key}"] = float(row[key].iloc[0]) if len(row) else math.nan
    return {k: numbers[k] for k in REAL_REPORTS_KEYS}
