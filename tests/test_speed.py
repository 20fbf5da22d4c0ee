"""The benchmark's tables and figure, and the ghost-clipping criterion it uses (same loss as training)."""

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from radcore import figures, speed
from radcore.fit import masked_bce

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from throughput import MaskedBCE  # noqa: E402

ROWS = [
    {"model": "minilm", "mode": "lora", "reports_per_s": 20.0, "peak_mem_mb": 400.0, "ratio_vs_lora": 1.0,
     "mem_ratio_vs_lora": 1.0},
    {"model": "minilm", "mode": "dp-lora/hooks", "reports_per_s": 19.0, "peak_mem_mb": 440.0,
     "ratio_vs_lora": 0.95, "mem_ratio_vs_lora": 1.1},
    {"model": "minilm", "mode": "dp-lora/ghost", "reports_per_s": 10.0, "peak_mem_mb": 600.0,
     "ratio_vs_lora": 0.5, "mem_ratio_vs_lora": 1.5},
    {"model": "albert-base", "mode": "lora", "reports_per_s": 4.0, "peak_mem_mb": 900.0, "ratio_vs_lora": 1.0,
     "mem_ratio_vs_lora": 1.0},
    {"model": "albert-base", "mode": "dp-lora/ghost", "error": "NotImplementedError: Parameter tying"},
]


@pytest.fixture
def results(tmp_path):
    (tmp_path / "latest.json").write_text(json.dumps({"machine": {"name": "cpu"}, "when": "now", "rows": ROWS}))
    return tmp_path


def test_throughput_table_checks_the_targets_and_keeps_errors(results):
    header, rows = speed.load("latest", results)
    table = speed.throughput_table(rows)
    assert header["machine"]["name"] == "cpu"
    assert table.loc[("minilm", "dp-lora/hooks"), "meets_targets"] == True  # noqa: E712 (numpy bool)
    assert table.loc[("minilm", "dp-lora/ghost"), "meets_targets"] == False  # noqa: E712
    assert pd.isna(table.loc[("minilm", "lora"), "meets_targets"])
    assert "Parameter tying" in table.loc[("albert-base", "dp-lora/ghost"), "error"]


def test_best_dp_mode_skips_failed_modes(results):
    best = speed.best_dp_mode(speed.load("latest", results)[1])
    assert best.to_dict("records") == [{"model": "minilm", "mode": "dp-lora/hooks", "ratio_vs_lora": 0.95,
                                        "mem_ratio_vs_lora": 1.1}]


def test_missing_results_give_empty_tables(tmp_path):
    header, rows = speed.load("latest", tmp_path)
    assert header == {} and rows.empty and speed.throughput_table(rows).empty


def test_speed_figure_draws_both_targets(results):
    fig = figures.speed_ratios(speed.load("latest", results)[1])
    gids = {line.get_gid() for ax in fig.axes for line in ax.get_lines()}
    assert {"target:ratio_vs_lora", "target:mem_ratio_vs_lora"} <= gids
    plt.close(fig)


def test_ghost_criterion_is_the_training_loss():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 4), torch.randint(0, 2, (5, 4)).float()
    mask = torch.randint(0, 2, (5, 4)).float()
    criterion = MaskedBCE()
    torch.testing.assert_close(criterion(logits, torch.cat([labels, mask], 1)), masked_bce(logits, labels, mask))
    criterion.reduction = "none"
    per_report = criterion(logits, torch.cat([labels, mask], 1))
    assert per_report.shape == (5,)
    torch.testing.assert_close(per_report.mean(), masked_bce(logits, labels, mask))


ADAPT_HEADER = {"variants": {"lora": {"mode": "lora", "default": True},
                             "dp-lora 256/32": {"mode": "dp-lora", "default": True},
                             "dp-lora 128/32": {"mode": "dp-lora", "default": False}}}


def _adapt_rows(speedup_k1: float, live_ratio: float) -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "minilm", "adapt_layers": 1, "variant": "lora", "reports_per_s": 200.0, "ratio_vs_lora": 1.0,
         "live_mem_ratio_vs_lora": 1.0, "speedup_vs_all": 6.0},
        {"model": "minilm", "adapt_layers": 1, "variant": "dp-lora 256/32", "reports_per_s": speedup_k1 * 22.0,
         "ratio_vs_lora": 1.05, "live_mem_ratio_vs_lora": live_ratio, "speedup_vs_all": 6.5},
        {"model": "minilm", "adapt_layers": "all", "variant": "dp-lora 256/32", "reports_per_s": 30.0,
         "ratio_vs_lora": 1.0, "live_mem_ratio_vs_lora": 1.0, "speedup_vs_all": 1.0},
        {"model": "albert-base", "adapt_layers": 1, "variant": "all", "error": "ValueError: one shared layer"},
    ])


def test_adapt_layers_targets_compare_the_default_dp_variant_with_dp_lora_before_the_prefix():
    before = pd.DataFrame(ROWS[:2]).assign(reports_per_s=[22.0, 22.0])
    met = speed.adapt_layers_targets(ADAPT_HEADER, _adapt_rows(10.5, 1.03), before)
    assert met["variant"] == "dp-lora 256/32" and met["x_before"] == pytest.approx(10.5) and met["meets"]
    assert "every target met" in speed.adapt_layers_sentence(met, {"when": "then", "machine": {"torch_threads": 2}})
    assert not speed.adapt_layers_targets(ADAPT_HEADER, _adapt_rows(6.0, 1.03), before)["meets"]  # too slow
    assert not speed.adapt_layers_targets(ADAPT_HEADER, _adapt_rows(10.5, 1.4), before)["meets"]  # too much memory
    assert speed.adapt_layers_targets(ADAPT_HEADER, _adapt_rows(10.5, 1.0), pd.DataFrame()) is None


def test_adapt_layers_table_names_refusals_and_puts_the_prefix_on_loras_row():
    table = speed.adapt_layers_table(_adapt_rows(10.0, 1.0), [{"model": "minilm", "adapt_layers": 1,
                                                                "reports_per_s": 75.0}])
    assert table.loc[("minilm", "1", "lora"), "prefix reports/s (once)"] == 75.0
    assert table.loc[("albert-base", "1", "all"), "note"] == "refused: one shared layer"
    assert speed.adapt_layers_table(pd.DataFrame(), []).empty
