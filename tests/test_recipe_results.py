"""The data-size study's reading for the book: gaps to LoRA per DP mode, the sentence and the figure."""

import json

import pandas as pd
import pytest

from radcore import figures
from radcore.recipe_results import data_study, data_table, gap_summary


def rows() -> pd.DataFrame:
    out = []
    for dataset, lora, dp_gap in (("mimic-cxr", 0.9, -0.05), ("ct-rate", 0.8, -0.10)):
        for n in (500, 4000):
            small = n == 500
            out.append({"dataset": dataset, "mode": "lora", "epsilon": None, "n_train": n, "weighted_f1": lora})
            for eps in (1.0, 10.0):
                out.append({"dataset": dataset, "mode": "dp-lora", "epsilon": eps, "n_train": n,
                            "weighted_f1": lora + dp_gap * (3 if small else 1) * (2 if eps == 1 else 1)})
                out.append({"dataset": dataset, "mode": "dp-head", "epsilon": eps, "n_train": n,
                            "weighted_f1": lora - 0.2 if small else lora - 0.01})
    return pd.DataFrame(out).assign(auroc_macro=0.9)


def test_gaps_are_read_at_the_largest_n_per_mode_and_the_growth_sentence_follows_them():
    gaps = gap_summary(rows())
    assert gaps["gap_mimic_cxr_eps10"] == pytest.approx(-0.05) and gaps["gap_ct_rate_eps1"] == pytest.approx(-0.20)
    assert gaps["head_gap_mimic_cxr_eps1"] == pytest.approx(-0.01)
    assert "n = 4,000 training reports on ct-rate, the DP head is -0.010 at ε = 1" in gaps["sentence"]
    assert "DP-LoRA's gap grows from MIMIC-CXR (-0.100) to CT-RATE (-0.200)" in gaps["sentence"]


def test_the_figure_draws_one_line_per_dp_mode_and_epsilon_and_panel(tmp_path):
    fig = figures.dp_gap_by_size(rows())
    gids = sorted(line.get_gid() for ax in fig.axes for line in ax.get_lines() if line.get_gid())
    gaps = [gid for gid in gids if gid.startswith("gap:")]
    assert len(gaps) == 8 and "gap:ct-rate:dp-head:10" in gaps and "gap:mimic-cxr:dp-lora:1" in gaps
    target = next(line for line in fig.axes[1].get_lines() if line.get_gid() == "target:ct-rate:1")
    assert list(target.get_ydata()) == pytest.approx([-0.15, -0.15])  # the book's epsilon-1 target
    line = next(line for line in fig.axes[0].get_lines() if line.get_gid() == "gap:mimic-cxr:dp-lora:1")
    assert list(line.get_ydata()) == pytest.approx([-0.30, -0.10])


def test_only_data_study_rows_are_read(tmp_path):
    path = tmp_path / "recipe.json"
    lines = [{"study": "levers", "dataset": "mimic-cxr", "mode": "dp-lora"},
             {"study": "data", **rows().iloc[0].to_dict()}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert len(data_study(path)) == 1 and data_study(tmp_path / "missing.json").empty


def test_the_table_has_a_row_per_size_and_a_column_per_dataset_and_setting():
    table = data_table(rows())
    assert list(table.index) == [500, 4000]
    assert ("ct-rate", "DP head ε=10") in table.columns and ("mimic-cxr", "LoRA") in table.columns
    assert table.loc[4000, ("mimic-cxr", "DP-LoRA ε=1")] == pytest.approx(0.8)
