"""Figures of the compendium (seaborn on matplotlib); each returns its matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import NullLocator, PercentFormatter


def per_label_f1(table: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Horizontal bars of test F1 per label (``table`` from :func:`radcore.summary.per_label_table`)."""
    data = table.reset_index().astype({"f1": float, "support": int})
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(data) + 1))
    sns.barplot(data=data, y="label", x="f1", color="#4C72B0", ax=ax)
    for patch, support in zip(ax.patches, data["support"]):
        ax.annotate(f"n={support}", (patch.get_width(), patch.get_y() + patch.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set(xlim=(0, 1.1), xlabel="test F1 (threshold 0.5)", ylabel="", title=title)
    fig.tight_layout()
    return fig


# ================================================================================================ corpus

SPLIT_COLORS = {"train": "#4C72B0", "validate": "#DD8452", "test": "#55A868"}


def _datasets(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["dataset"]))


def prevalence_bars(table: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Share of positive reports per label and split, one panel per dataset (``table`` from
    :func:`radcore.corpus_tables.prevalence`). Masked (uncertain/ignored) cells are left out of the share."""
    datasets = _datasets(table)
    heights = [table.loc[table["dataset"] == d, "label"].nunique() for d in datasets]
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(5.5 * len(datasets), 0.3 * max(heights) + 1.4))
    for ax, dataset in zip(axes[0], datasets):
        data = table[table["dataset"] == dataset]
        splits = [s for s in SPLIT_COLORS if s in set(data["split"])]
        sns.barplot(data=data, y="label", x="share", hue="split", hue_order=splits, palette=SPLIT_COLORS,
                    orient="h", ax=ax)
        ax.set(xlabel="share of reports with the label (among counted)", ylabel="",
               xlim=(0, min(1.0, float(data["share"].max()) * 1.15 + 0.02)))
        ax.set_title(dataset, pad=24)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        sns.move_legend(ax, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(splits), title=None,
                        frameon=False, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


COOCCURRENCE_MEASURES = {"p_b_given_a": "P(column | row)", "jaccard": "Jaccard", "phi": "phi correlation"}


def cooccurrence_heatmap(table: pd.DataFrame, *, measure: str = "p_b_given_a", annotate: bool = True,
                         title: str = "") -> plt.Figure:
    """Label co-occurrence matrix, one panel per dataset (``table`` from :func:`radcore.corpus_tables.cooccurrence`).

    ``measure``: ``p_b_given_a`` (row label A, column label B: the share of A-positive reports that are also
    B-positive), ``jaccard`` or ``phi``. The diagonal is left blank.
    """
    if measure not in COOCCURRENCE_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(COOCCURRENCE_MEASURES)}")
    datasets = _datasets(table)
    k = max(table.loc[table["dataset"] == d, "label_a"].nunique() for d in datasets)
    side = 0.45 * k + 2.5
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(side * len(datasets), side * 0.85))
    signed = measure == "phi"
    for ax, dataset in zip(axes[0], datasets):
        data = table[table["dataset"] == dataset]
        order = list(dict.fromkeys(data["label_a"]))
        matrix = data.pivot(index="label_a", columns="label_b", values=measure).loc[order, order]
        mask = np.eye(len(order), dtype=bool) | matrix.isna().to_numpy()
        sns.heatmap(matrix, mask=mask, ax=ax, cmap="RdBu_r" if signed else "rocket_r",
                    vmin=-1 if signed else 0, vmax=1, square=True, annot=annotate, fmt=".2f",
                    annot_kws={"fontsize": 6.5}, linewidths=0.3, linecolor="white",
                    cbar_kws={"label": COOCCURRENCE_MEASURES[measure], "shrink": 0.7})
        ax.set(xlabel="label B (column)" if measure == "p_b_given_a" else "",
               ylabel="label A (row)" if measure == "p_b_given_a" else "", title=dataset)
        ax.tick_params(labelsize=8)
        ax.set_xticklabels(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def length_histogram(lengths: pd.DataFrame, *, unit: str | None = None, max_length=None,
                     title: str = "") -> plt.Figure:
    """Histogram of report lengths, one panel per dataset (``lengths`` from
    :func:`radcore.corpus_tables.report_lengths`).

    ``unit``: ``tokens`` (the default when the column exists) or ``words``. ``max_length`` (one value or
    several) draws the truncation cut as a vertical line labelled with the share of reports it cuts.
    """
    unit = unit or ("tokens" if "tokens" in lengths else "words")
    cuts = [] if max_length is None else ([max_length] if np.isscalar(max_length) else list(max_length))
    datasets = _datasets(lengths)
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(5.5 * len(datasets), 3.4))
    styles = ["--", ":", "-."]
    for ax, dataset in zip(axes[0], datasets):
        values = lengths.loc[lengths["dataset"] == dataset, unit]
        sns.histplot(values, bins=30, ax=ax, color="#4C72B0")
        for i, cut in enumerate(dict.fromkeys(cuts)):
            ax.axvline(cut, color="#C44E52", ls=styles[i % len(styles)], lw=1.5,
                       label=f"max_length {cut}: cuts {(values > cut).mean():.0%} of reports")
        ax.set(xlabel=f"{unit} per report" + (" (with special tokens)" if unit == "tokens" else ""),
               ylabel="reports", title=dataset)
        if cuts:
            ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# =============================================================================================== results

METRIC_NAMES = {"weighted_f1": "weighted F1 (test)", "macro_f1": "macro F1 (test)", "micro_f1": "micro F1 (test)",
                "auroc_macro": "macro AUROC (test)", "f1": "F1", "precision": "precision", "recall": "recall",
                "auroc": "AUROC"}
REFERENCE_STYLES = {"lora": "--", "full": ":", "head": (0, (4, 1, 1, 1, 1, 1)), "tfidf": (0, (9, 3))}
DP_STYLES = {"dp-lora": "-", "dp-full": "-.", "dp-head": (0, (3, 1, 1, 1, 1, 1))}
DP_NAMES = {"dp-lora": "DP-LoRA", "dp-full": "DP full FT", "dp-head": "DP head"}
GAP_TARGETS = {10.0: 0.05, 1.0: 0.15}  # DP-LoRA within this much of LoRA (the book's targets)


def _band(summary: pd.DataFrame, band: str) -> tuple[str, str, str]:
    """Columns of the band and its description: t interval with 3+ seeds everywhere, else min-max."""
    if band == "auto":
        band = "t95" if summary["seeds"].min() >= 3 else "range"
    if band == "t95":
        return "t_lo", "t_hi", "95% t-interval over seeds"
    if band == "range":
        return "min", "max", "min–max over seeds"
    raise ValueError("band must be 'auto', 't95' or 'range'")


def privacy_utility(frame: pd.DataFrame, *, metric: str = "weighted_f1", band: str = "auto",
                    title: str = "", baselines: pd.DataFrame | None = None) -> plt.Figure:
    """``metric`` against the target epsilon (log axis): one panel per dataset, one colour per model.

    ``frame`` is :func:`radcore.grid.store.collect`'s table. DP settings are lines through the mean over
    seeds with a shaded band (``band``: ``t95`` Student-t 95% interval of the mean, ``range`` min-max, or
    ``auto``: t95 when every setting has 3+ seeds, else range; one seed draws no band) and each seed's run as
    a faint point. Non-private LoRA (dashed) and full fine-tuning (dotted) are horizontal reference lines in
    the model's colour with their own band; each has ``gid`` ``"reference:<setting>:<model>"``. ``baselines``
    (:func:`radcore.grid.store.labeller_baselines`) adds the rule labeller, which trains on nothing, as a grey
    dash-dot line (``gid`` ``"baseline:rules"``).
    """
    from radcore.results_tables import seed_summary

    summary = seed_summary(frame, metric=metric)
    lo_col, hi_col, band_text = _band(summary, band)
    datasets, models = _datasets(frame), list(dict.fromkeys(frame["model"]))
    colors = dict(zip(models, sns.color_palette("colorblind", len(models))))
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(5.2 * len(datasets) + 2.3, 4.0))
    eps = frame.loc[frame["mode"].str.startswith("dp-"), "epsilon"]
    xlim = (eps.min() / 2.5, eps.max() * 2.5) if len(eps) else (0.1, 10)
    for ax, dataset in zip(axes[0], datasets):
        runs, summ = frame[frame["dataset"] == dataset], summary[summary["dataset"] == dataset]
        for model in models:
            color = colors[model]
            for mode, style in DP_STYLES.items():
                s = summ[(summ["model"] == model) & (summ["mode"] == mode)].sort_values("epsilon")
                if s.empty:
                    continue
                ax.plot(s["epsilon"], s["mean"], ls=style, marker="o", color=color, lw=1.8, ms=5,
                        gid=f"dp:{mode}:{model}")
                if (s["seeds"] > 1).any():
                    ax.fill_between(s["epsilon"], s[lo_col], s[hi_col], color=color, alpha=0.18, lw=0)
                r = runs[(runs["model"] == model) & (runs["mode"] == mode)]
                ax.scatter(r["epsilon"], r[metric], color=color, alpha=0.35, s=14, lw=0)
            for mode, style in REFERENCE_STYLES.items():
                s = summ[(summ["model"] == model) & (summ["mode"] == mode)]
                if s.empty:
                    continue
                row = s.iloc[0]
                ax.axhline(row["mean"], ls=style, color=color, lw=1.5, gid=f"reference:{row['setting']}:{model}")
                if row["seeds"] > 1:
                    ax.axhspan(row[lo_col], row[hi_col], color=color, alpha=0.08, lw=0)
                if len(models) == 1:
                    ax.annotate(row["setting"], (1, row["mean"]), xycoords=("axes fraction", "data"),
                                xytext=(-3, 2), textcoords="offset points", ha="right", va="bottom",
                                fontsize=8, color=color)
        if baselines is not None and metric in baselines:
            for value in baselines.loc[baselines["dataset"] == dataset, metric]:
                ax.axhline(value, ls="-.", color="0.45", lw=1.3, gid="baseline:rules")
        ax.set_xscale("log")
        ticks = sorted(set(eps)) or [1.0]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set(xlim=xlim, xlabel="target ε (log scale)", ylabel=METRIC_NAMES.get(metric, metric), title=dataset)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[m], lw=2, label=m) for m in models]
    modes = set(frame["mode"])
    handles += [plt.Line2D([], [], color="0.3", ls=style, marker="o" if mode in DP_STYLES else None,
                           label=summary.loc[summary["mode"] == mode, "setting"].iloc[0].split(" ε")[0])
                for mode, style in {**DP_STYLES, **REFERENCE_STYLES}.items() if mode in modes]
    if baselines is not None and len(baselines):
        handles.append(plt.Line2D([], [], color="0.45", ls="-.", label="rule labeller (no training)"))
    n_seeds = sorted(set(summary["seeds"]))
    seeds = f"{n_seeds[0]}" if len(n_seeds) == 1 else f"{n_seeds[0]}–{n_seeds[-1]}"
    handles.append(plt.Line2D([], [], color="none", label=f"mean of {seeds} seed(s);\nband: {band_text};\n"
                              "points: single runs"))
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / fig.get_figwidth(), 1))
    return fig


def per_label_heatmap(table: pd.DataFrame, *, metric: str = "f1", annotate: bool = True,
                      title: str = "") -> plt.Figure:
    """Per-label ``metric`` (mean over seeds): labels x settings, one panel per dataset (row) x model (column).

    ``table`` is :func:`radcore.grid.store.per_label`'s table. Settings run left to right by
    ``setting_order`` (DP by ascending epsilon, then LoRA, then full fine-tuning). One colour bar (0 to 1) is
    shared; the figure has datasets x models panels plus that colour bar's axes.
    """
    datasets, models = _datasets(table), list(dict.fromkeys(table["model"]))
    mean = table.groupby(["dataset", "model", "setting_order", "setting", "label"], sort=False)[metric].mean()
    mean = mean.reset_index()
    settings = mean.sort_values("setting_order")["setting"].drop_duplicates().tolist()
    n_labels = [table.loc[table["dataset"] == d, "label"].nunique() for d in datasets]
    width = 0.52 * len(settings) + 0.5
    gap = 1.4  # inches between dataset rows: rotated setting names and the next panel's title
    height = 0.27 * sum(n_labels) + gap * len(datasets)
    fig, axes = plt.subplots(len(datasets), len(models), squeeze=False, figsize=(width * len(models) + 3.2, height),
                             gridspec_kw={"height_ratios": n_labels, "wspace": 0.06,
                                          "hspace": gap / (0.27 * np.mean(n_labels))})
    cbar_ax = fig.add_axes([0.93, 0.3, 0.015, 0.4])
    for i, dataset in enumerate(datasets):
        labels = list(dict.fromkeys(table.loc[table["dataset"] == dataset, "label"]))
        for j, model in enumerate(models):
            ax = axes[i][j]
            part = mean[(mean["dataset"] == dataset) & (mean["model"] == model)]
            matrix = part.pivot(index="label", columns="setting", values=metric).reindex(index=labels,
                                                                                        columns=settings)
            sns.heatmap(matrix, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=annotate, fmt=".2f",
                        annot_kws={"fontsize": 6.5}, cbar=(i == 0 and j == 0), cbar_ax=cbar_ax,
                        cbar_kws={"label": f"test {METRIC_NAMES.get(metric, metric)}, mean over seeds"},
                        linewidths=0.3, linecolor="white")
            ax.set(title=f"{dataset} · {model}", xlabel="", ylabel="")
            ax.tick_params(labelsize=7.5)
            ax.set_xticklabels(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
            if j:
                ax.set_yticklabels([])
                ax.tick_params(left=False)
    fig.subplots_adjust(left=2.6 / fig.get_figwidth(), right=0.9, bottom=1.0 / height, top=1 - 0.35 / height)
    if title:
        fig.suptitle(title)
    return fig


# ================================================================================================ speed

def speed_ratios(rows: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Throughput and peak memory of every mode relative to non-private LoRA, one group of bars per model
    (``rows``: :func:`radcore.speed.load`'s ``latest`` table); dashed lines at the DP targets (0.9x, 1.25x)."""
    from radcore.speed import TARGET_MEMORY, TARGET_SPEED

    data = rows.dropna(subset=["ratio_vs_lora"]) if "ratio_vs_lora" in rows else rows
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=False)
    for ax, column, target, label in ((axes[0], "ratio_vs_lora", TARGET_SPEED, "reports/s ÷ LoRA's"),
                                      (axes[1], "mem_ratio_vs_lora", TARGET_MEMORY, "peak memory ÷ LoRA's")):
        sns.barplot(data=data, x="model", y=column, hue="mode", palette="colorblind", ax=ax)
        ax.axhline(target, ls="--", color="0.3", lw=1, gid=f"target:{column}")
        ax.axhline(1.0, color="0.6", lw=0.8)
        ax.set(xlabel="", ylabel=label)
        ax.tick_params(axis="x", labelrotation=20)
        ax.get_legend().remove()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    return fig


def dp_gap_by_size(rows: pd.DataFrame) -> plt.Figure:
    """DP minus LoRA test weighted F1 against the number of training reports, one line per DP mode and epsilon
    (line style per mode as on the privacy-utility plots, a colour per epsilon), the DP-LoRA targets dotted, one
    panel per dataset. ``rows``: the ``data`` study of ``benchmarks/recipe.py`` (columns dataset, mode, epsilon,
    n_train, weighted_f1)."""
    lora = rows[rows["mode"] == "lora"].set_index(["dataset", "n_train"])["weighted_f1"]
    dp = rows[rows["mode"].isin(list(DP_STYLES))].assign(
        gap=lambda d: d["weighted_f1"].to_numpy() - lora.reindex(list(zip(d["dataset"], d["n_train"]))).to_numpy())
    datasets = list(dict.fromkeys(rows["dataset"]))
    colours = {eps: f"C{k}" for k, eps in enumerate(sorted(dp["epsilon"].unique()))}
    fig, axes = plt.subplots(1, len(datasets), squeeze=False, figsize=(4.8 * len(datasets) + 2.0, 3.8), sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        for (mode, eps), part in dp[dp["dataset"] == dataset].groupby(["mode", "epsilon"]):
            part = part.sort_values("n_train")
            ax.plot(part["n_train"], part["gap"], marker="o", ls=DP_STYLES[mode], color=colours[eps],
                    label=f"{DP_NAMES[mode]} ε = {eps:g}", gid=f"gap:{dataset}:{mode}:{eps:g}")
        for eps, gap in GAP_TARGETS.items():  # the book's targets for DP-LoRA, in the epsilon's colour
            if eps in colours:
                ax.axhline(-gap, color=colours[eps], lw=1, ls=":", label=f"target at ε = {eps:g}: −{gap:g}",
                           gid=f"target:{dataset}:{eps:g}")
        ax.axhline(0, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set(title=dataset, xlabel="training reports (log scale)", ylabel="DP − LoRA weighted F1")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.83, 0.5), frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    return fig
