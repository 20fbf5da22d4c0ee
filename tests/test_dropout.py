"""The dropout knob: off by default under DP (benchmarks/recipe.py --study dropout), the model's own otherwise."""

from __future__ import annotations

import pytest
import torch

from radcore.config import TrainConfig
from radcore.fit import build_model
from radcore.results import same_config


def dropouts(config: TrainConfig) -> set[float]:
    model, _ = build_model(config, 3, torch.device("cpu"))
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


def config(**values) -> TrainConfig:
    return TrainConfig(dataset="mimic-cxr", data_dir="x", model="tiny-bert", pretrained=False, **values)


@pytest.mark.parametrize("mode", ["dp-lora", "dp-full", "dp-head"])
def test_dp_modes_train_without_dropout(mode):
    assert dropouts(config(mode=mode, epsilon=1.0)) == {0.0}


def test_non_private_modes_keep_the_models_own_dropout_unless_told():
    assert max(dropouts(config(mode="lora"))) > 0  # encoder 0.1, LoRA branch 0.05
    assert dropouts(config(mode="lora", dropout=0.2)) == {0.2}
    assert dropouts(config(mode="dp-lora", epsilon=1.0, dropout=0.1)) == {0.1}


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0"])
def test_dropout_is_a_probability(bad):
    with pytest.raises(ValueError, match="dropout must be a probability"):
        config(dropout=bad)


def test_runs_recorded_before_the_knob_rerun_only_where_the_default_changed():
    dp = config(mode="dp-lora", epsilon=1.0).as_dict()
    lora = config(mode="lora").as_dict()
    assert dp["dropout"] == 0.0 and lora["dropout"] is None
    assert not same_config({k: v for k, v in dp.items() if k != "dropout"}, dp)  # trained with dropout: run again
    assert same_config({k: v for k, v in lora.items() if k != "dropout"}, lora)  # the same run
