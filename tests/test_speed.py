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
