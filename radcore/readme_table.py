"""A profile's results as the README's markdown table, made from its runs (never typed by hand).

``radcore table --profile quick`` prints test weighted F1 (mean ± sd over seeds) and macro AUROC per dataset x
setting, with the rule labeller's row; a profile whose cells train with audit canaries (``audit``) gets its audits
instead, one row per run (:func:`audit_readme_table`). ``--readme README.md`` replaces the block between
``<!-- table:PROFILE -->`` and ``<!-- /table:PROFILE -->`` in that file with it.
"""

from __future__ import annotations

import re
from pathlib import Path


README_AUDIT_COLUMNS = ("setting", "claimed ε", "ε lower bound (95%)", "correct / guesses", "canary AUC",
                       "MIA AUC [95% CI]", "TPR at 1% FPR [95% CI]", "test weighted F1")


def readme_table(profile) -> str:
    """The README's table of ``profile``: its audits when its cells train with canaries, else its results."""
    audited = any(profile.train_knobs(d).get("canaries") for d in profile.datasets)
    return audit_readme_table(profile) if audited else profile_table(profile)


def audit_readme_table(profile) -> str:
    """Markdown: per audited run, in grid order, the claim, the canary bound and the membership attack
    (:func:`radcore.audit.report.audit_table`), with dataset, model and seed columns where they vary."""
    from radcore.audit.report import audit_table, collect_audits

    frame = collect_audits(profile.results_root)
    if frame.empty:
        raise ValueError(f"no audited runs under {profile.results_root}; run `radcore grid --profile {profile.name}`")
    table = audit_table(frame)
    varying = [c for c in ("dataset", "model", "seed") if table[c].nunique() > 1]
    table = table[[*varying, *README_AUDIT_COLUMNS]]
    note = (f"\n\nOne row per audited run ({len(frame)}), test split for F1. At {int(frame['canaries'].max())} canary "
            f"coins no bound can exceed {frame['bound_ceiling'].max():.2f}; * marks a TPR that the "
            f"{int(frame['mia_nonmembers'].min())} non-members cannot resolve.")
    return table.to_markdown(index=False) + note + "\n"


def profile_table(profile) -> str:
    """Markdown: rows dataset x metric, columns the settings in the book's order; the rule labeller last."""
    import pandas as pd

    from radcore.grid.store import collect, labeller_baselines
    from radcore.results_tables import seed_summary

    frame = collect(profile.results_root)
    if frame.empty:
        raise ValueError(f"no finished runs under {profile.results_root}; run `radcore grid --profile {profile.name}`")
    baselines = labeller_baselines(profile)
    rows = []
    for dataset, part in frame.groupby("dataset", sort=False):
        for metric, name in (("weighted_f1", "weighted F1"), ("auroc_macro", "macro AUROC")):
            summary = seed_summary(part, metric=metric).sort_values("setting_order")
            cells = {s: (f"{m:.3f}" + (f" ± {sd:.3f}" if n > 1 and metric == "weighted_f1" else ""))
                     for s, m, sd, n in zip(summary["setting"], summary["mean"], summary["sd"], summary["seeds"])}
            rule = baselines.loc[baselines["dataset"] == dataset, metric]
            cells["rule labeller (ε=0)"] = f"{rule.iloc[0]:.3f}" if len(rule) and pd.notna(rule.iloc[0]) else ""
            rows.append({"": f"{dataset} {name}", **cells})
    order = seed_summary(frame).sort_values("setting_order")["setting"].drop_duplicates().tolist()
    table = pd.DataFrame(rows).reindex(columns=["", *order, "rule labeller (ε=0)"]).fillna("")
    seeds = sorted(set(frame.groupby(["dataset", "setting"])["seed"].nunique()))
    note = f"\n\nMean over {'–'.join(map(str, (seeds[0], seeds[-1]) if len(seeds) > 1 else seeds))} seed(s), test split."
    return table.to_markdown(index=False) + note + "\n"


def replace_block(path: str | Path, profile_name: str, text: str) -> Path:
    """Put ``text`` between the profile's table markers in ``path`` (which must hold them)."""
    path = Path(path)
    start, end = f"<!-- table:{profile_name} -->", f"<!-- /table:{profile_name} -->"
    source = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(source):
        raise ValueError(f"{path} has no {start} ... {end} block to fill")
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}{end}", source), encoding="utf-8")
    return path
