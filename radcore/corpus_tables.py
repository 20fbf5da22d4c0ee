"""Tables that describe a corpus with aggregates, for the data page: label prevalence per split, labels with
few positives, label co-occurrence, report lengths, split sizes, loader skips and (synthetic corpora only)
example reports.

Nothing here returns report text except :func:`example_reports`, which refuses real data.
"""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pandas as pd

from radcore.corpus import SPLITS, Corpus

PERCENTILES = (50, 90, 99)



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
