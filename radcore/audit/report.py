"""The audits of a grid as the book shows them: one row per audited run, a table per setting, the glued numbers,
and the chapter's figure (empirical against claimed epsilon; membership-inference TPR at 1% FPR)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from radcore.audit.run import AUDIT_FILE
from radcore.grid.profile import Setting
from radcore.results import RESULTS_FILE

AUDIT_COLUMNS = ("dataset", "model", "mode", "epsilon", "setting", "setting_order", "seed", "claimed_epsilon",
                 "epsilon_lower_bound", "bound_ceiling", "delta", "canaries", "canaries_included", "guesses",
                 "correct", "canary_auc", "mia_auc", "mia_auc_lo", "mia_auc_hi", "tpr_1pct", "tpr_1pct_lo",
                 "tpr_1pct_hi", "tpr_1pct_resolvable", "tpr_01pct", "tpr_01pct_resolvable", "mia_members",
                 "mia_nonmembers", "weighted_f1", "train_seconds", "audit_seconds", "run_dir")


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _row(run_dir: Path) -> dict:
    results = json.loads((run_dir / RESULTS_FILE).read_text())
    audit = json.loads((run_dir / AUDIT_FILE).read_text())
    config, mia, canary = results["config"], audit["membership"], audit.get("canary") or {}
    setting = Setting(config["mode"], config["epsilon"])
    tpr1, tpr01 = mia["tpr_at_fpr"]["0.01"], mia["tpr_at_fpr"]["0.001"]
    lo, hi = mia.get("auc_ci") or (math.nan, math.nan)
    tlo, thi = tpr1.get("tpr_ci") or (math.nan, math.nan)
    return {"dataset": config["dataset"], "model": Path(config["model"]).name, "mode": config["mode"],
            "epsilon": _nan(config["epsilon"]), "setting": setting.label, "setting_order": setting.order,
            "seed": config["seed"], "claimed_epsilon": _nan(audit["claimed_epsilon"]),
            "epsilon_lower_bound": _nan(canary.get("epsilon_lower_bound")), "bound_ceiling": _nan(canary.get("ceiling")),
            "delta": audit["delta"], "canaries": canary.get("m", 0), "canaries_included": canary.get("included", 0),
            "guesses": canary.get("guesses", 0), "correct": canary.get("correct", 0),
            "canary_auc": _nan(canary.get("canary_auc")), "mia_auc": mia["auc"], "mia_auc_lo": lo, "mia_auc_hi": hi,
            "tpr_1pct": tpr1["tpr"], "tpr_1pct_lo": tlo, "tpr_1pct_hi": thi, "tpr_1pct_resolvable": tpr1["resolvable"],
            "tpr_01pct": tpr01["tpr"], "tpr_01pct_resolvable": tpr01["resolvable"], "mia_members": mia["n_members"],
            "mia_nonmembers": mia["n_nonmembers"], "weighted_f1": results["metrics"]["test"]["weighted_f1"],
            "train_seconds": results["timing"]["train_seconds"], "audit_seconds": audit["seconds"],
            "run_dir": str(run_dir)}


def collect_audits(root: str | Path) -> pd.DataFrame:
    """One row per audited run under ``root`` (a finished run with an ``audit.json``), in grid order."""
    dirs = sorted(p.parent for p in Path(root).glob(f"**/{AUDIT_FILE}") if (p.parent / RESULTS_FILE).is_file())
    frame = pd.DataFrame([_row(d) for d in dirs], columns=list(AUDIT_COLUMNS))
    return frame.sort_values(["dataset", "model", "setting_order", "seed"], ignore_index=True)


def _interval(mean: float, lo: float, hi: float) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else f"{mean:.3f}"


def audit_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run, in grid order: the claim, the bound (and what the audit could at most show), the guesses, and the
    membership attack with its 95% intervals. A TPR that the number of non-members cannot resolve is marked."""
    rows = []
    for r in frame.itertuples():
        rows.append({"dataset": r.dataset, "model": r.model, "setting": r.setting, "seed": r.seed,
                     "claimed ε": "none" if math.isnan(r.claimed_epsilon) else f"{r.claimed_epsilon:.3g}",
                     "ε lower bound (95%)": "n/a" if math.isnan(r.epsilon_lower_bound) else f"{r.epsilon_lower_bound:.3f}",
                     "bound ceiling": "n/a" if math.isnan(r.bound_ceiling) else f"{r.bound_ceiling:.2f}",
                     "correct / guesses": f"{r.correct} / {r.guesses}" if r.guesses else "n/a",
                     "canary AUC": "n/a" if math.isnan(r.canary_auc) else f"{r.canary_auc:.3f}",
                     "MIA AUC [95% CI]": _interval(r.mia_auc, r.mia_auc_lo, r.mia_auc_hi),
                     "TPR at 1% FPR [95% CI]": _interval(r.tpr_1pct, r.tpr_1pct_lo, r.tpr_1pct_hi)
                     + ("" if r.tpr_1pct_resolvable else " *"),
                     "TPR at 0.1% FPR": f"{r.tpr_01pct:.3f}" + ("" if r.tpr_01pct_resolvable else " *"),
                     "members / non-members": f"{r.mia_members} / {r.mia_nonmembers}",
                     "test weighted F1": f"{r.weighted_f1:.3f}"})
    return pd.DataFrame(rows)


def audit_numbers(frame: pd.DataFrame) -> dict:
    """The numbers the chapter's text quotes (``audit_`` keys); ``nan`` where a setting did not run."""
    dp = frame[frame["mode"].str.startswith("dp-")]
    by_mode = lambda mode, col: float(frame.loc[frame["mode"] == mode, col].mean()) if (frame["mode"] == mode).any() else math.nan  # noqa: E731
    refuted = dp[dp["epsilon_lower_bound"] > dp["claimed_epsilon"]]
    return {"n_runs": int(len(frame)), "n_dp": int(len(dp)), "n_refuted": int(len(refuted)),
            "canaries": int(frame["canaries"].max()) if len(frame) else 0,
            "lora_auc": by_mode("lora", "mia_auc"), "full_auc": by_mode("full", "mia_auc"),
            "lora_tpr": by_mode("lora", "tpr_1pct"), "full_tpr": by_mode("full", "tpr_1pct"),
            "lora_bound": by_mode("lora", "epsilon_lower_bound"), "full_bound": by_mode("full", "epsilon_lower_bound"),
            "dp_max_auc": float(dp["mia_auc"].max()) if len(dp) else math.nan,
            "dp_max_tpr": float(dp["tpr_1pct"].max()) if len(dp) else math.nan,
            "dp_max_bound": float(dp["epsilon_lower_bound"].max()) if len(dp) else math.nan,
            "ceiling": float(frame["bound_ceiling"].max()) if len(frame) else math.nan,
            "delta": float(frame["delta"].median()) if len(frame) else math.nan,
            "nonmembers": int(frame["mia_nonmembers"].min()) if len(frame) else 0,
            "audit_seconds": float(frame["audit_seconds"].sum()), "train_seconds": float(frame["train_seconds"].sum())}


def audit_figure(frame: pd.DataFrame):
    """Left: empirical epsilon lower bound against claimed epsilon (log scale; non-private runs at the right edge,
    their claim being none), with the diagonal where a bound would refute its claim and each run's ceiling.
    Right: membership-inference TPR at 1% FPR per setting with its 95% interval; dashed: chance (TPR = FPR)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    dp = frame[frame["mode"].str.startswith("dp-")]
    plain = frame[~frame["mode"].str.startswith("dp-")]
    claims = dp["claimed_epsilon"].to_numpy()
    lo_x = min(claims.min() if len(claims) else 0.01, 0.01) / 2
    hi_x = max(claims.max() if len(claims) else 10, 10) * 2
    edge = hi_x * 3  # where the non-private runs stand
    grid = np.logspace(np.log10(lo_x), np.log10(hi_x), 50)
    left.plot(grid, grid, color="grey", lw=1, ls="--", label="bound = claim (above: claim refuted)")
    left.scatter(dp["claimed_epsilon"], dp["epsilon_lower_bound"], color="#4C72B0", zorder=3, label="DP-LoRA runs")
    left.scatter(dp["claimed_epsilon"], dp["bound_ceiling"], marker="_", s=200, color="#4C72B0", alpha=0.5,
                 label="ceiling (every guess right)")
    for name, marker, shift in (("lora", "s", 1 / 1.4), ("full", "D", 1.4)):
        rows = plain[plain["mode"] == name]
        if len(rows):
            left.scatter(np.full(len(rows), edge * shift), rows["epsilon_lower_bound"], marker=marker, color="#C44E52",
                         zorder=3, label=f"{Setting(name).label} (no claim)")
    top = np.nanmax(np.r_[frame["bound_ceiling"].to_numpy(float), frame["epsilon_lower_bound"].to_numpy(float), 1.0])
    ticks = [t for t in (0.01, 0.1, 1, 10, 100) if lo_x <= t <= hi_x]
    left.set(xscale="log", xlim=(lo_x, edge * 2), ylim=(-0.05 * top, 1.25 * top), xlabel="claimed ε (accountant)",
             ylabel="empirical ε lower bound (95%)", title="One-run canary audit")
    left.set_xticks(ticks + ([edge] if len(plain) else []), [f"{t:g}" for t in ticks] + (["none"] if len(plain) else []))
    left.minorticks_off()
    left.legend(fontsize=7, loc="center left")
    order = frame.sort_values("setting_order")
    labels = list(dict.fromkeys(order["setting"]))
    x = {label: i for i, label in enumerate(labels)}
    err = np.vstack([order["tpr_1pct"] - order["tpr_1pct_lo"], order["tpr_1pct_hi"] - order["tpr_1pct"]])
    right.errorbar([x[s] for s in order["setting"]], order["tpr_1pct"], yerr=np.nan_to_num(err), fmt="o",
                   color="#4C72B0", capsize=3)
    right.axhline(0.01, color="grey", ls="--", lw=1, label="chance (TPR = FPR = 1%)")
    right.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    right.set(ylabel="TPR at 1% FPR (loss attack)", title="Membership inference on real training reports")
    right.set_ylim(bottom=0)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def audit_note(frame: pd.DataFrame, *, audit_root: str) -> str:
    """The chapter's opening line: what was audited, or how to get audits when there are none."""
    if frame.empty:
        return (f"*No audited runs in this build: `{audit_root}` holds no `audit.json`. Run `radcore grid --profile "
                f"audit` (every DP setting and the non-private rows, trained with canaries and audited), or "
                f"`radcore audit --run RUN_DIR` on any finished run, then rebuild the book.*")
    n, n_dp = len(frame), int(frame["mode"].str.startswith("dp-").sum())
    return (f"Audited here: {n} run{'s' * (n != 1)} ({n_dp} of them DP) under `{audit_root}`, trained with up to "
            f"{int(frame['canaries'].max())} canary coins each, and attacked with at least "
            f"{int(frame['mia_members'].min())} training reports against at least {int(frame['mia_nonmembers'].min())} "
            f"held-out ones.")
