"""The benchmarks' results as tables for the book: ``make bench`` writes them to ``benchmarks/results/``.

``throughput`` (benchmarks/throughput.py) holds one row per model x training mode (non-private LoRA, DP-LoRA
under each Opacus per-sample-gradient mode, full fine-tuning) with reports/s, peak memory and their ratios
to non-private LoRA; ``levers`` (benchmarks/levers.py) the before/after of each speed lever radcore keeps;
``kernel_env`` (benchmarks/kernel_env.py) grid-kernel throughput with and without Dask's malloc-trim setting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
TARGET_SPEED, TARGET_MEMORY = 0.9, 1.25  # DP-LoRA vs LoRA: throughput at least, peak memory at most


def load(name: str, results_dir: str | Path = RESULTS_DIR) -> tuple[dict, pd.DataFrame]:
    """``(header, rows)`` of ``<name>.json`` (``latest``, ``levers``, ``kernel_env``); empty if never run."""
    path = Path(results_dir) / f"{name}.json"
    if not path.is_file():
        return {}, pd.DataFrame()
    payload = json.loads(path.read_text())
    return {k: v for k, v in payload.items() if k != "rows"}, pd.DataFrame(payload["rows"])


def throughput_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows model x mode: reports/s, peak MB, both as ratios to LoRA, and whether DP meets the targets.

    A mode Opacus cannot run on a model shows its error instead of numbers.
    """
    if rows.empty:
        return rows
    table = rows.reindex(columns=["model", "mode", "reports_per_s", "ratio_vs_lora", "peak_mem_mb",
                                  "mem_ratio_vs_lora", "error"]).copy()
    dp = table["mode"].str.startswith("dp-") & table["error"].isna()
    table["meets_targets"] = pd.Series(pd.NA, index=table.index, dtype="object")
    table.loc[dp, "meets_targets"] = ((table.loc[dp, "ratio_vs_lora"] >= TARGET_SPEED)
                                      & (table.loc[dp, "mem_ratio_vs_lora"] <= TARGET_MEMORY))
    table["error"] = table["error"].fillna("")
    return table.set_index(["model", "mode"])


def best_dp_mode(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model, the fastest DP-LoRA mode that ran, with its ratios to LoRA."""
    if rows.empty:
        return rows
    dp = rows[rows["mode"].str.startswith("dp-")]
    if "error" in dp:
        dp = dp[dp["error"].isna()]
    best = dp.loc[dp.groupby("model", sort=False)["reports_per_s"].idxmax()]
    return best[["model", "mode", "ratio_vs_lora", "mem_ratio_vs_lora"]].reset_index(drop=True)
