"""Membership inference: how well an attack score tells training members from non-members.

Members are the reports a run trained on; non-members are reports of the same corpus (same generator or same
hospital, patient-disjoint) that it never saw. The attack calls "member" above a threshold. Reported, as Carlini
et al. 2022 ask ("Membership Inference Attacks From First Principles"): the ROC AUC, and the true-positive rate at
a low false-positive rate (1% and 0.1%), which says whether the attack can pick out *some* members with
confidence; an AUC near 0.5 can hide that. Intervals: percentile bootstrap, members and non-members resampled
separately.

A TPR at FPR ``a`` uses the threshold that lets at most ``floor(a * n_nonmembers)`` non-members through, so with
fewer than ``1 / a`` non-members it is the TPR at zero false positives (``resolvable`` is then False).

Reports of one patient are alike, and a corpus is split by patient, so the bootstrap resamples patients (each with
all their reports) when ``member_groups`` / ``nonmember_groups`` are given: resampling reports would treat a
patient's reports as independent and give intervals too narrow.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

FPRS = (0.01, 0.001)
ROC_GRID = tuple(float(x) for x in np.logspace(-3, 0, 31))


def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(member score > non-member score), ties counting one half (Mann-Whitney)."""
    ranks = rankdata(np.concatenate([members, nonmembers]))
    n1, n0 = len(members), len(nonmembers)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float:
    """The share of members above the threshold that at most ``floor(fpr * n)`` of the ``n`` non-members exceed."""
    allowed = int(np.floor(fpr * len(nonmembers) + 1e-9))
    if allowed >= len(nonmembers):
        return 1.0
    threshold = np.sort(nonmembers)[::-1][allowed]
    return float(np.mean(members > threshold))


def _interval(values, confidence: float) -> list[float]:
    tail = (1 - confidence) / 2 * 100
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def _resampler(n: int, groups, rng: np.random.Generator):
    """A function drawing one bootstrap resample's indices: whole groups with replacement (or single rows)."""
    if groups is None:
        return lambda: rng.integers(0, n, n)
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members_of = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    return lambda: np.concatenate([members_of[g] for g in rng.integers(0, len(members_of), len(members_of))])


def membership_inference(member_scores, nonmember_scores, *, fprs=FPRS, n_bootstrap: int = 1000,
                         confidence: float = 0.95, seed: int = 0, member_groups=None, nonmember_groups=None) -> dict:
    """AUC and TPR at each of ``fprs`` (higher score: "member"), each with a bootstrap interval; and an ROC curve."""
    members, nonmembers = np.asarray(member_scores, np.float64), np.asarray(nonmember_scores, np.float64)
    if len(members) < 1 or len(nonmembers) < 1:
        raise ValueError(f"need members and non-members, got {len(members)} and {len(nonmembers)}")
    rng = np.random.default_rng(seed)
    draw_members = _resampler(len(members), member_groups, rng)
    draw_nonmembers = _resampler(len(nonmembers), nonmember_groups, rng)
    boot_auc, boot_tpr = [], {f: [] for f in fprs}
    for _ in range(n_bootstrap):
        mem, non = members[draw_members()], nonmembers[draw_nonmembers()]
        boot_auc.append(auc(mem, non))
        for f in fprs:
            boot_tpr[f].append(tpr_at_fpr(mem, non, f))
    record = {"auc": auc(members, nonmembers), "tpr_at_fpr": {}, "n_members": len(members),
              "n_nonmembers": len(nonmembers), "min_resolvable_fpr": 1 / len(nonmembers),
              "n_bootstrap": n_bootstrap, "confidence": confidence,
              "bootstrap_unit": "patient" if member_groups is not None and nonmember_groups is not None else "report"}
    if n_bootstrap:
        record["auc_ci"] = _interval(boot_auc, confidence)
    for f in fprs:
        entry = {"fpr": f, "tpr": tpr_at_fpr(members, nonmembers, f), "resolvable": f * len(nonmembers) >= 1}
        if n_bootstrap:
            entry["tpr_ci"] = _interval(boot_tpr[f], confidence)
        record["tpr_at_fpr"][f"{f:g}"] = entry
    record["roc"] = {"fpr": list(ROC_GRID), "tpr": [tpr_at_fpr(members, nonmembers, f) for f in ROC_GRID]}
    return record
