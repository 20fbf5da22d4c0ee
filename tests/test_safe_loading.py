"""Weights load from safetensors only: a pickled checkpoint is refused, with a clear message, unless the user
sets RADCORE_ALLOW_PICKLE=1; every run and evaluation records which format it read."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

from radcore.cli import main
from radcore.models import (ALLOW_PICKLE_ENV, MINILM_PACKAGE, PickledCheckpointError, _package_dir,
                            checkpoint_format, load_encoder, loaded_checkpoint_format)
from radcore.results import read_results

TINY_SHAPE = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64}
TRAIN = ["--epochs", "1", "--batch-size", "16", "--max-length", "32", "--max-train-reports", "64"]


def _tokenizer_files(target):
    """The offline MiniLM tokenizer (BERT uncased vocabulary) beside the weights, as a model directory needs."""
    source = _package_dir(MINILM_PACKAGE)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)


def _model_dir(path, *, pickled: bool):
    """A tiny random BERT as a Hugging Face directory: weights as ``pytorch_model.bin`` (a pickle) or safetensors.

    transformers 5 always writes safetensors (``safe_serialization=False`` is gone), so the pickle is written
    with ``torch.save`` as older transformers and many hub repositories did.
    """
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY_SHAPE), add_pooling_layer=False)
    path.mkdir(parents=True)
    if pickled:
        model.config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    else:
        model.save_pretrained(path)
    _tokenizer_files(path)
    return path, model


def test_a_pickled_checkpoint_is_refused_with_a_message_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    path, _ = _model_dir(tmp_path / "old-bert", pickled=True)
    assert checkpoint_format(path) == "pickle"
    with pytest.raises(PickledCheckpointError) as info:
        load_encoder(path)
    message = str(info.value)
    assert str(path) in message and "pickled checkpoint" in message
    assert "save_pretrained" in message and f"{ALLOW_PICKLE_ENV}=1" in message  # how to convert, how to opt in


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_only_an_explicit_yes_opts_in(tmp_path, monkeypatch, value):
    monkeypatch.setenv(ALLOW_PICKLE_ENV, value)
    path, _ = _model_dir(tmp_path / "old-bert", pickled=True)
    with pytest.raises(PickledCheckpointError):
        load_encoder(path)


def test_the_opt_in_loads_the_pickle_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")
    path, saved = _model_dir(tmp_path / "old-bert", pickled=True)
    encoder = load_encoder(path)
    assert loaded_checkpoint_format(encoder) == "pickle"
    for name, tensor in saved.state_dict().items():
        assert torch.equal(encoder.state_dict()[name], tensor), name


def test_safetensors_load_without_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    path, _ = _model_dir(tmp_path / "new-bert", pickled=False)
    assert checkpoint_format(path) == "safetensors"
    assert loaded_checkpoint_format(load_encoder(path)) == "safetensors"


def test_train_refuses_a_pickled_model_dir_and_records_the_opt_in(synthetic_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    path, _ = _model_dir(tmp_path / "old-bert", pickled=True)
    argv = ["train", "--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"]), "--model", str(path),
            "--mode", "lora", *TRAIN]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "pickled checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "refused" / "results.json").exists()

    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")
    assert main([*argv, "--out", str(tmp_path / "allowed")]) == 0
    assert read_results(tmp_path / "allowed")["model"]["checkpoint_format"] == "pickle"


def test_runs_record_the_format_they_read(synthetic_dirs, tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    path, _ = _model_dir(tmp_path / "new-bert", pickled=False)
    data = ["--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"])]
    assert main(["train", *data, "--model", str(path), "--mode", "full", *TRAIN, "--out", str(tmp_path / "a")]) == 0
    assert read_results(tmp_path / "a")["model"]["checkpoint_format"] == "safetensors"
    assert main(["train", *data, "--model", "tiny-bert", "--random-init", "--mode", "lora", *TRAIN,
                 "--out", str(tmp_path / "b")]) == 0
    assert read_results(tmp_path / "b")["model"]["checkpoint_format"] == "random-init"


def _pickle_weights(safetensors_file, bin_name):
    """Replace a safetensors file by a pickle of the same tensors (what an older tool would have written)."""
    torch.save(load_file(safetensors_file), safetensors_file.with_name(bin_name))
    safetensors_file.unlink()


@pytest.mark.parametrize("mode,weights,safe_name,bin_name", [
    ("full", "model", "model.safetensors", "pytorch_model.bin"),
    ("lora", "adapter", "adapter_model.safetensors", "adapter_model.bin"),
])
def test_evaluate_refuses_a_run_whose_weights_are_pickled(synthetic_dirs, tmp_path, monkeypatch, capsys, mode,
                                                           weights, safe_name, bin_name):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    run = tmp_path / "run"
    data = ["--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"])]
    assert main(["train", *data, "--model", "tiny-bert", "--random-init", "--mode", mode, *TRAIN,
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), *data, "--out", str(tmp_path / "safe.json")]) == 0
    safe = json.loads((tmp_path / "safe.json").read_text())
    assert safe["checkpoint_format"] == "safetensors"
    assert safe["metrics"] == read_results(run)["metrics"]["test"]  # the saved weights score exactly as trained

    _pickle_weights(run / weights / safe_name, bin_name)
    assert main(["evaluate", "--run", str(run), *data, "--out", str(tmp_path / "refused.json")]) == 2
    err = capsys.readouterr().err
    assert str(run / weights) in err and "pickled checkpoint" in err and ALLOW_PICKLE_ENV in err
    assert not (tmp_path / "refused.json").exists()

    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")
    assert main(["evaluate", "--run", str(run), *data, "--out", str(tmp_path / "allowed.json")]) == 0
    allowed = json.loads((tmp_path / "allowed.json").read_text())
    assert allowed["checkpoint_format"] == "pickle" and allowed["metrics"] == safe["metrics"]


def test_runs_save_safetensors_only(synthetic_dirs, tmp_path):
    """What radcore writes it can read back without the opt-in: no pickle in any run directory."""
    data = ["--dataset", "mimic-cxr", "--data", str(synthetic_dirs["mimic-cxr"])]
    for mode in ("dp-lora", "full"):
        extra = ["--epsilon", "10"] if mode == "dp-lora" else []
        run = tmp_path / mode
        assert main(["train", *data, "--model", "tiny-bert", "--random-init", "--mode", mode, *extra, *TRAIN,
                     "--out", str(run)]) == 0
        written = [p.name for p in run.rglob("*") if p.is_file()]
        assert any(name.endswith(".safetensors") for name in written), written
        assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for name in written), written
