"""The public centre: folding it into the head is exact, it reads no training report, and DP heads use it."""

import json

import pytest
import torch

from radcore.centre import PUBLIC_REPORTS, centred, fold_centre, public_centre
from radcore.batches import Encoded
from radcore.cli import main
from radcore.config import TrainConfig
from radcore.fit import build_model
from radcore.models import load_tokenizer, model_spec
from radcore.results import read_results

CPU = torch.device("cpu")


def test_a_head_trained_on_centred_features_folds_into_the_same_function_on_raw_ones():
    torch.manual_seed(0)
    head, x, c = torch.nn.Linear(8, 3), torch.randn(20, 8) + 5.0, torch.randn(8) + 5.0
    on_centred = head(x - c)
    fold_centre(head, c)
    assert torch.allclose(head(x), on_centred, atol=1e-5)
    data = Encoded({"features": x}, torch.zeros(20, 3), torch.ones(20, 3), rows=[3, 4])
    assert torch.allclose(centred(data, c).batch([0, 1])[0], x[[3, 4]] - c)


def test_the_centre_depends_on_the_public_model_and_report_style_only():
    config = TrainConfig(dataset="mimic-cxr", data_dir="-", model="tiny-bert", mode="dp-head", epsilon=1.0,
                         pretrained=False, max_length=32)
    model, spec = build_model(config, 14, CPU)
    tokenizer = load_tokenizer(model_spec("tiny-bert"))
    centre, record = public_centre(model, "mimic-cxr", tokenizer, max_length=32, precision="fp32", device=CPU)
    again, _ = public_centre(model, "openi", tokenizer, max_length=32, precision="fp32", device=CPU)
    assert record["reports"] == PUBLIC_REPORTS and record["kind"] == "public centre"
    assert torch.equal(centre, again)  # Open-i takes the chest X-ray (MIMIC-CXR) style: no Open-i report is read
    assert centre.shape == (model.encoder.config.hidden_size,) and torch.isfinite(centre).all()


def test_heads_centre_by_default_and_the_saved_head_scores_as_the_run_did(synthetic_dirs, tmp_path, capsys):
    assert TrainConfig(dataset="mimic-cxr", data_dir="-", mode="dp-head", epsilon=1.0).centres
    assert TrainConfig(dataset="mimic-cxr", data_dir="-", mode="head").centres
    assert TrainConfig(dataset="mimic-cxr", data_dir="-", mode="dp-lora", epsilon=1.0).centres  # LP-FT's head
    assert not TrainConfig(dataset="mimic-cxr", data_dir="-", mode="lora", lp_ft=0.0).centres
    explicit = TrainConfig(dataset="mimic-cxr", data_dir="-", mode="dp-lora", epsilon=1.0, centre=True)
    assert explicit.head_phase().centres and not explicit.tuning_phase().centres
    with pytest.raises(ValueError, match="centre applies to a head"):
        TrainConfig(dataset="mimic-cxr", data_dir="-", mode="lora", centre=True)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "mimic-cxr", "--data", str(synthetic_dirs["mimic-cxr"]), "--model", "tiny-bert",
                 "--random-init", "--mode", "dp-head", "--epsilon", "10", "--epochs", "2", "--max-length", "32",
                 "--precision", "fp32", "--out", str(run)]) == 0
    results = read_results(run)
    assert results["config"]["centre"] is True
    assert any(c["kind"] == "public centre" for c in results["timing"]["prefix_cache"])
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--dataset", "mimic-cxr", "--data", str(synthetic_dirs["mimic-cxr"])]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"]["auroc_macro"] == pytest.approx(results["metrics"]["test"]["auroc_macro"], abs=1e-6)
