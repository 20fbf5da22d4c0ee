"""Multi-label metrics: the study's weighted F1, macro/micro F1, per-label scores, AUROC, bootstrap CI.

Per-label scores come from scikit-learn on the reports where the label counts (``mask``), so
MIMIC-CXR's ignored uncertain cells drop out of exactly that label. Without a mask the aggregates equal
scikit-learn's ``average="weighted" / "macro" / "micro"`` (tested). The bootstrap is vectorised here:
1,000 resamples cost one matrix product instead of 1,000 scikit-learn calls.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

THRESHOLD = 0.5


def _masked_columns(y_true, y_pred, mask):
    for k in range(y_true.shape[1]):
        keep = mask[:, k] > 0
        yield k, y_true[keep, k], y_pred[keep, k], keep


def per_label_scores(y_true: np.ndarray, y_prob: np.ndarray, mask: np.ndarray, *,
                     threshold: float = THRESHOLD) -> dict[str, np.ndarray]:
    """Precision, recall, F1, support and AUROC per label (AUROC NaN where one class is absent)."""
    y_pred = (y_prob >= threshold).astype(int)
    k = y_true.shape[1]
    out = {name: np.zeros(k) for name in ("precision", "recall", "f1", "support", "auroc")}
    for j, t, p, keep in _masked_columns(y_true.astype(int), y_pred, mask):
        if not len(t):  # every cell of this label ignored (e.g. all uncertain): no score, support 0
            out["auroc"][j] = np.nan
            continue
        prec, rec, f1, _ = precision_recall_fscore_support(t, p, average="binary", zero_division=0)
        out["precision"][j], out["recall"][j], out["f1"][j] = prec, rec, f1
        out["support"][j] = t.sum()
        out["auroc"][j] = roc_auc_score(t, y_prob[keep, j]) if 0 < t.sum() < len(t) else np.nan
    return out


def _counts(y_true, y_pred, mask):
    """TP, FP, FN per label, over counted cells."""
    tp = (y_true * y_pred * mask).sum(0)
    fp = ((1 - y_true) * y_pred * mask).sum(0)
    fn = (y_true * (1 - y_pred) * mask).sum(0)
    return tp, fp, fn


def _f1(tp, fp, fn):
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=float), where=den > 0)


def resample_weights(n: int, *, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap resample counts (``n_resamples`` x ``n``): how often each report is drawn in each resample."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def weighted_f1_of_resamples(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                             mask: np.ndarray) -> np.ndarray:
    """Weighted F1 of each row of resample counts ``weights`` (one matrix product per count)."""
    tp = weights @ (y_true * y_pred * mask)
    fp = weights @ ((1 - y_true) * y_pred * mask)
    support = weights @ (y_true * mask)
    f1 = _f1(tp, fp, support - tp)
    total = support.sum(1)
    return np.divide((f1 * support).sum(1), total, out=np.zeros(len(weights)), where=total > 0)


def bootstrap_weighted_f1(y_true: np.ndarray, y_prob: np.ndarray, mask: np.ndarray, *,
                          n_resamples: int = 1000, seed: int = 0, threshold: float = THRESHOLD) -> np.ndarray:
    """Weighted F1 of ``n_resamples`` bootstrap resamples of the reports (rows)."""
    y_pred = (y_prob >= threshold).astype(float)
    weights = resample_weights(len(y_true), n_resamples=n_resamples, seed=seed)
    return weighted_f1_of_resamples(weights, y_true, y_pred, mask)


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray, *, label_names, mask=None,
                           threshold: float = THRESHOLD, n_resamples: int = 1000, seed: int = 0) -> dict:
    """The metrics block of a results file.

    Weighted F1 (the study's headline) weights each label's F1 by its support; macro F1 averages the
    labels that have at least one positive in the evaluated set (a label absent from a small test set
    has no defined F1); micro F1 pools all counted cells. ``threshold`` is fixed, never tuned on data.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_prob = np.asarray(y_prob, dtype=float)
    mask = np.ones_like(y_true) if mask is None else np.asarray(mask, dtype=float)
    if y_true.shape != y_prob.shape or y_true.shape != mask.shape or y_true.shape[1] != len(label_names):
        raise ValueError(f"shape mismatch: labels {y_true.shape}, probabilities {y_prob.shape}, "
                         f"mask {mask.shape}, {len(label_names)} label names")
    per = per_label_scores(y_true, y_prob, mask, threshold=threshold)
    support = per["support"]
    present = support > 0
    tp, fp, fn = _counts(y_true, (y_prob >= threshold).astype(float), mask)
    boot = bootstrap_weighted_f1(y_true, y_prob, mask, n_resamples=n_resamples, seed=seed, threshold=threshold)
    auroc = per["auroc"][~np.isnan(per["auroc"])]
    return {
        "n_reports": int(len(y_true)),
        "threshold": threshold,
        "weighted_f1": float((per["f1"] * support).sum() / support.sum()) if support.sum() else 0.0,
        "macro_f1": float(per["f1"][present].mean()) if present.any() else 0.0,
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "auroc_macro": float(auroc.mean()) if len(auroc) else None,
        "weighted_f1_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "per_label": {
            name: {
                "precision": float(per["precision"][j]), "recall": float(per["recall"][j]),
                "f1": float(per["f1"][j]), "support": int(support[j]),
                "auroc": None if np.isnan(per["auroc"][j]) else float(per["auroc"][j]),
            }
            for j, name in enumerate(label_names)
        },
    }
