"""Determinism on CPU: one config and seed give bit-identical metrics, predictions and weights in every mode.

DP noise is drawn from a generator seeded with the run's seed, Poisson sampling from one seeded too, so a DP
run repeats exactly. A different seed must change the outcome, or the comparison would prove nothing.
GPU runs are not bit-identical (cuBLAS, atomics, bf16): see book/reproducing.md, "Determinism".
"""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from radcore.grid.store import load_predictions
from radcore.config import TrainConfig
from radcore.train import train

SETTINGS = [("dp-lora", 1.0), ("lora", None), ("full", None), ("dp-full", 10.0)]


def _run(data_dir, out, mode, epsilon, seed):
    config = TrainConfig(dataset="mimic-cxr", data_dir=str(data_dir), model="tiny-bert", mode=mode, epsilon=epsilon,
                         epochs=1, batch_size=32, max_length=48, pretrained=False, seed=seed, device="cpu",
                         progress=False)
    return train(config, out)


def _weights(run_dir):
    return {f.relative_to(run_dir).as_posix(): load_file(f) for f in sorted(run_dir.rglob("*.safetensors"))}


@pytest.mark.parametrize("mode,epsilon", SETTINGS)
def test_same_config_and_seed_give_identical_results(synthetic_dirs, tmp_path, mode, epsilon):
    first = _run(synthetic_dirs["mimic-cxr"], tmp_path / "a", mode, epsilon, seed=3)
    second = _run(synthetic_dirs["mimic-cxr"], tmp_path / "b", mode, epsilon, seed=3)
    assert first["metrics"] == second["metrics"]  # every split, every label, the bootstrap CI: exactly equal
    assert first["privacy"] == second["privacy"]
    assert first["data"] == second["data"] and first["model"] == second["model"]
    a, b = load_predictions(tmp_path / "a"), load_predictions(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key  # bit for bit, not approximately
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        for tensor in wa[name]:
            assert torch.equal(wa[name][tensor], wb[name][tensor]), (name, tensor)

    other = _run(synthetic_dirs["mimic-cxr"], tmp_path / "c", mode, epsilon, seed=4)
    assert not np.array_equal(load_predictions(tmp_path / "c")["probabilities"], a["probabilities"])
    assert other["metrics"] != first["metrics"]
