"""The real-reports page: runs on the public Open-i reports beside the same model on a synthetic corpus.

Per model x setting and per label, real against synthetic scores; aggregates that set the two corpora apart
(counts only, no report text); the numbers the page glues into its text; and its opening note.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from radcore.corpus_tables import MIN_POSITIVES_FOR_F1, few_positives, prevalence, report_lengths
from radcore.grid.profile import MODE_NAMES
from radcore.results_tables import headline_numbers

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
                     "lora_auroc", "dp_auroc", "labeller_f1", "tfidf_f1", "head_f1", "dp_head_f1", "dp1_f1",
                     "lora_tfidf_gap", "syn_n_runs", "syn_n_train", "syn_lora_f1",
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
      (DP-LoRA at its largest epsilon), lora_dp_gap: as :func:`radcore.results_tables.headline_numbers` gives them;
      lora_auroc and dp_auroc the same for macro AUROC; labeller_f1 the rule labeller's weighted F1;
    - tfidf_f1, head_f1, dp_head_f1 (DP head at dp_eps), dp1_f1 (DP-LoRA at epsilon 1): mean weighted F1 of those
      rows; lora_tfidf_gap: LoRA minus TF-IDF;
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
    mean_f1 = real[real["model"] == model].groupby("setting")["weighted_f1"].mean()
    row = lambda setting: float(mean_f1.get(setting, math.nan))  # noqa: E731
    numbers.update(tfidf_f1=row(MODE_NAMES["tfidf"]), head_f1=row(MODE_NAMES["head"]),
                   dp_head_f1=row(f"{MODE_NAMES['dp-head']} ε={numbers['dp_eps']:g}"),
                   dp1_f1=row(f"{MODE_NAMES['dp-lora']} ε=1"))
    numbers["lora_tfidf_gap"] = numbers["lora_f1"] - numbers["tfidf_f1"]

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
