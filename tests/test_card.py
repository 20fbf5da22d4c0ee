"""Model cards: every saved adapter or model gets a Hugging Face card that names the base model by its public id,
states the guarantee (epsilon, delta) of a DP run, and holds no path of the training machine and no report text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from radcore.audit.run import audit_run
from radcore.card import CARD_FILE, base_model, command, render
from radcore.config import TrainConfig
from radcore.data import load_corpus
from radcore.evaluate import load_trained, predict
from radcore.batches import encode
from radcore.train import train

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
# "/home/...", "/tmp/...", "/usr/lib/...": a slash that starts a token and is followed by a name
ABSOLUTE = re.compile(r"(?<![\w.:/~-])/[A-Za-z0-9_.-]+/|[A-Za-z]:\\\\|~/")


def _run(data_dir, out, **overrides) -> dict:
    values = dict(dataset="mimic-cxr", data_dir=str(data_dir), model="tiny-bert", pretrained=False, mode="lora",
                  epochs=1, max_length=32, max_train_reports=48, device="cpu", progress=False)
    return train(TrainConfig(**{**values, **overrides}), out)


@pytest.fixture(scope="module")
def runs(synthetic_dirs, tmp_path_factory):
    data = synthetic_dirs["mimic-cxr"]  # an absolute path under the test's temporary folder
    root = tmp_path_factory.mktemp("cards")
    made = {"lora": _run(data, root / "lora"), "full": _run(data, root / "full", mode="full"),
            # the offline pretrained MiniLM: its weights live in site-packages, the path peft used to leak
            "dp-lora": _run(data, root / "dp-lora", model="minilm", pretrained=True, mode="dp-lora", epsilon=2.0,
                            canaries=20, max_train_reports=24)}
    audit_run(root / "dp-lora", n_bootstrap=20)
    return {name: (root / name, results) for name, results in made.items()}


def _card(run_dir: Path) -> tuple[dict, str]:
    results = json.loads((run_dir / "results.json").read_text())
    text = (run_dir / results["model"]["weights"] / CARD_FILE).read_text()
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def test_every_weights_folder_has_a_real_card(runs):
    for name, (run_dir, results) in runs.items():
        meta, body = _card(run_dir)
        assert meta["pipeline_tag"] == "text-classification" and meta["radcore"]["mode"] == name
        assert "More Information Needed" not in body  # not peft's empty template
        for section in ("## Model details", "## Task and labels", "## Training data", "## Privacy",
                        "## Empirical privacy audit", "## Evaluation", "## How it was made"):
            assert section in body, (name, section)
        assert all(f"`{label}`" in body for label in results["data"]["label_names"])
        assert "synthetic" in body and "radcore train --dataset mimic-cxr" in body


def test_no_card_holds_an_absolute_path_or_report_text(runs, synthetic_dirs):
    reports = load_corpus("mimic-cxr", synthetic_dirs["mimic-cxr"]).texts
    fragments = {s.strip() for text in reports for s in text.split(".") if len(s.strip()) >= 25}
    assert fragments
    for name, (run_dir, results) in runs.items():
        weights = run_dir / results["model"]["weights"]
        for path in [weights / CARD_FILE] + sorted(weights.glob("*.json")):
            text = path.read_text()
            assert str(synthetic_dirs["mimic-cxr"]) not in text and str(run_dir) not in text
            assert "site-packages" not in text and not ABSOLUTE.search(text), (name, path.name, ABSOLUTE.search(text))
            assert not [f for f in fragments if f in text], (name, path.name)


def test_dp_card_states_epsilon_delta_and_the_audit(runs):
    run_dir, results = runs["dp-lora"]
    meta, body = _card(run_dir)
    privacy = results["privacy"]
    assert meta["base_model"] == MINILM_ID and meta["library_name"] == "peft"
    assert meta["radcore"]["epsilon"] == pytest.approx(privacy["epsilon_spent"])
    assert meta["radcore"]["delta"] == pytest.approx(privacy["delta"])
    assert meta["radcore"]["accountant"] == "rdp" and "differential-privacy" in meta["tags"]
    assert f"{privacy['epsilon_spent']:.4g}" in body and f"{privacy['delta']:.3g}" in body
    assert "poisson" in body and f"max norm {privacy['max_grad_norm']:g}" in body and f"{privacy['steps']} (planned" in body
    assert "audit_epsilon_lower_bound" in meta["radcore"] and "One-run canary audit" in body
    assert "--canaries 20" in body and "--epsilon 2" in body
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == MINILM_ID


def test_non_private_card_says_there_is_no_guarantee(runs):
    meta, body = _card(runs["lora"][0])
    assert "base_model" not in meta  # random init: no base model to name
    assert meta["radcore"]["epsilon"] is None and "No differential privacy" in body
    assert "Not audited" in body


def test_adapter_still_loads_after_its_config_is_rewritten(runs, synthetic_dirs):
    run_dir, results = runs["dp-lora"]
    model, tokenizer, config = load_trained(run_dir, results, device=__import__("torch").device("cpu"))
    test = load_corpus("mimic-cxr", synthetic_dirs["mimic-cxr"]).subset("test")
    probs = predict(model, encode(test, tokenizer, max_length=config.max_length), __import__("torch").device("cpu"))
    saved = np.load(run_dir / "predictions.npz")["probabilities"]
    np.testing.assert_allclose(probs, saved, atol=1e-5)


def test_base_model_names_no_local_path(tmp_path):
    assert ABSOLUTE.search(f"base_model: {tmp_path}/x") and ABSOLUTE.search("at /usr/lib/python3/site-packages")
    assert not ABSOLUTE.search("radcore/mimic-cxr, 1/f, https://huggingface.co/x")  # the scanner finds paths only
    local = tmp_path / "my-bert"
    local.mkdir()
    (local / "config.json").write_text("{}")
    named = base_model({"model": str(local), "pretrained": True})
    assert named["id"] is None and "`my-bert`" in named["text"] and str(tmp_path) not in named["text"]
    assert base_model({"model": "bert-small", "pretrained": True})["id"] == "prajjwal1/bert-small"
    assert base_model({"model": "minilm", "pretrained": True})["id"] == MINILM_ID
    line = command({"dataset": "mimic-cxr", "data_dir": str(tmp_path / "data"), "model": str(local),
                    "mode": "lora", "epsilon": None, "seed": 0})
    assert str(tmp_path) not in line and "--data DATA_DIR" in line and "--model MODEL_DIR/my-bert" in line
    assert "--data data/synthetic/quick/mimic-cxr" in command(
        {"dataset": "mimic-cxr", "data_dir": "data/synthetic/quick/mimic-cxr", "model": "minilm", "mode": "lora"})


def test_render_tolerates_a_future_config(runs):
    """The lead's modes and knobs (adapt_layers, head, tfidf) show up without a code change here."""
    _, results = runs["lora"]
    future = {**results, "config": {**results["config"], "mode": "dp-head", "adapt_layers": 1}}
    text = render(future)
    assert "linear head on frozen features" in text and "**Adapted layers:** 1" in text
