"""The benchmarks' results as tables for the book: ``make bench`` writes them to ``benchmarks/results/``.

``throughput`` (benchmarks/throughput.py) holds one row per model x training mode (non-private LoRA, DP-LoRA
under each Opacus per-sample-gradient mode, full fine-tuning) with reports/s, peak memory and their ratios
to non-private LoRA; ``levers`` (benchmarks/levers.py) the before/after of each speed lever radcore keeps;
``kernel_env`` (benchmarks/kernel_env.py) grid-kernel throughput with and without Dask's malloc-trim setting;
``adapt_layers`` (benchmarks/adapt_layers.py) LoRA and DP-LoRA at adapt_layers 1, 2 and all, and the frozen prefix's
one-time cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
TARGET_SPEED, TARGET_MEMORY = 0.9, 1.25  # DP-LoRA vs LoRA: throughput at least, peak memory at most
TARGET_ADAPT_SPEEDUP = 10.0  # DP-LoRA at adapt_layers 1 vs DP-LoRA with every layer adapted (before the prefix)


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


def adapt_layers_table(rows: pd.DataFrame, prefix: list) -> pd.DataFrame:
    """``adapt_layers.json`` as one row per model x adapt_layers x variant: reports/s, peak memory (the process' RSS,
    and the live tensors'), each as a ratio to LoRA at the same K, the speed-up over the same variant at
    adapt_layers all, and the prefix's one-time reports/s (on LoRA's row); a refused or failed measurement says why."""
    if rows.empty:
        return rows
    table = rows.reindex(columns=["model", "adapt_layers", "variant", "reports_per_s", "ratio_vs_lora", "peak_mem_mb",
                                  "mem_ratio_vs_lora", "live_mem_mb", "live_mem_ratio_vs_lora", "speedup_vs_all",
                                  "error"]).copy()
    pre = pd.DataFrame(prefix).reindex(columns=["model", "adapt_layers", "reports_per_s"])
    pre = pre.rename(columns={"reports_per_s": "prefix_reports_per_s"}).assign(variant="lora")
    table = table.merge(pre, on=["model", "adapt_layers", "variant"], how="left")
    refused = table["variant"] == "all"  # the model refuses this K whatever the variant
    why = table["error"].fillna("")
    table["error"] = why.where(~refused, "refused: " + why.str.split(": ", n=1).str[-1])
    table["adapt_layers"] = table["adapt_layers"].astype(str)
    return table.set_index(["model", "adapt_layers", "variant"]).rename(columns={
        "reports_per_s": "reports/s", "ratio_vs_lora": "÷ LoRA", "peak_mem_mb": "peak MB",
        "mem_ratio_vs_lora": "memory ÷ LoRA", "live_mem_mb": "live peak MB", "live_mem_ratio_vs_lora": "live ÷ LoRA",
        "speedup_vs_all": "speed-up over K = all",
        "prefix_reports_per_s": "prefix reports/s (once)", "error": "note"})


def adapt_layers_targets(header: dict, rows: pd.DataFrame, before: pd.DataFrame, *, model: str = "minilm",
                         k: int = 1) -> dict | None:
    """radcore's default DP-LoRA variant at adapt_layers ``k`` against the targets: its reports/s as a multiple of
    DP-LoRA's before the frozen prefix (``before``: ``latest.json``'s rows, Opacus hooks, every layer adapted), of the
    same variant at K = all side by side, and its throughput and live peak memory as ratios to LoRA at the same K.
    None where either measurement is missing."""
    default = next((n for n, v in header.get("variants", {}).items() if v.get("default") and v["mode"] != "lora"), None)
    if rows.empty or before.empty or default is None:
        return None
    row = rows[(rows["model"] == model) & (rows["adapt_layers"].astype(str) == str(k)) & (rows["variant"] == default)]
    old = before[(before["model"] == model) & (before["mode"] == "dp-lora/hooks")]
    if row.empty or old.empty or "error" in row and row["error"].notna().any():
        return None
    row, old_speed = row.iloc[0], float(old["reports_per_s"].iloc[0])
    return {"variant": default, "reports_per_s": float(row["reports_per_s"]), "before_reports_per_s": old_speed,
            "x_before": float(row["reports_per_s"]) / old_speed, "x_all": float(row["speedup_vs_all"]),
            "x_lora": float(row["ratio_vs_lora"]),
            "live_x_lora": float(row.get("live_mem_ratio_vs_lora", float("nan"))),
            "meets": bool(float(row["reports_per_s"]) / old_speed >= TARGET_ADAPT_SPEEDUP
                          and row["ratio_vs_lora"] >= TARGET_SPEED
                          and row.get("live_mem_ratio_vs_lora", float("inf")) <= TARGET_MEMORY)}


def adapt_layers_sentence(check: dict, before_header: dict) -> str:
    """The book's sentence for :func:`adapt_layers_targets`' result."""
    threads = before_header.get("machine", {}).get("torch_threads", "all")
    return (f"MiniLM DP-LoRA ({check['variant']}) at adapt_layers 1: {check['reports_per_s']:.0f} reports/s, "
            f"{check['x_before']:.1f}x the {check['before_reports_per_s']:.1f} reports/s of DP-LoRA with every layer "
            f"adapted in `throughput.py`'s run ({before_header.get('when', '?')}, {threads} threads; target "
            f"{TARGET_ADAPT_SPEEDUP:.0f}x), {check['x_all']:.1f}x the same variant at K = all side by side; "
            f"{check['x_lora']:.2f}x LoRA's reports/s (target >= {TARGET_SPEED}) and {check['live_x_lora']:.2f}x its "
            f"live peak memory (target <= {TARGET_MEMORY}) at the same K: "
            f"{'every target met' if check['meets'] else 'not every target met'}.")
