"""Readable tables of one run's ``results.json``: headline metrics, privacy spent, privacy audit, per-label scores."""

from __future__ import annotations

import pandas as pd

HEADLINE = ("weighted_f1", "macro_f1", "micro_f1", "auroc_macro")


def metrics_table(results: dict) -> pd.DataFrame:
    """Headline metrics (rows) per evaluated split (columns), with the weighted-F1 bootstrap CI."""
    rows = {}
    for split, block in results["metrics"].items():
        lo, hi = block["weighted_f1_ci95"]
        rows[split] = {"reports": block["n_reports"], **{k: block[k] for k in HEADLINE},
                       "weighted_f1 95% CI": f"[{lo:.3f}, {hi:.3f}]"}
    return pd.DataFrame(rows)


def privacy_table(results: dict) -> pd.DataFrame | None:
    """The DP guarantee and how it was obtained (None for a non-private run)."""
    privacy = results.get("privacy")
    if not privacy:
        return None
    keys = ("epsilon_target", "epsilon_spent", "delta", "noise_multiplier", "sample_rate", "steps",
            "max_grad_norm", "accountant", "sampling", "clipping", "n_train")
    return pd.DataFrame({"value": [privacy[k] for k in keys if k in privacy]},
                        index=[k for k in keys if k in privacy])


def per_label_table(results: dict, split: str = "test") -> pd.DataFrame:
    """Precision, recall, F1, support and AUROC per label on ``split``."""
    return pd.DataFrame(results["metrics"][split]["per_label"]).T.rename_axis("label")


def audit_table(results: dict) -> pd.DataFrame | None:
    """The privacy audit's summary (``results["audit"]``, written by ``radcore audit``), None if not audited."""
    audit = results.get("audit")
    if not audit:
        return None
    keys = ("claimed_epsilon", "epsilon_lower_bound", "bound_ceiling", "delta", "canaries", "canaries_included",
            "guesses", "correct", "mia_auc", "mia_auc_ci", "mia_tpr_at_fpr_0.01", "mia_tpr_at_fpr_0.01_ci",
            "mia_tpr_at_fpr_0.001", "mia_members", "mia_nonmembers")
    return pd.DataFrame({"value": [audit[k] for k in keys if k in audit]}, index=[k for k in keys if k in audit])
