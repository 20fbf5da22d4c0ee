"""The privacy audit end to end on a tiny random-init BERT: canaries enter training by their coins, a broken DP
mechanism (noise off, accountant unaware) is caught by the one-run bound, a correct DP run never exceeds its claim,
and non-private training leaks measurably. CI-sized: each run trains for a few seconds."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from radcore.audit.canaries import CANARY_ID_PREFIX, add_canaries, canary_coins, canary_corpus
from radcore.audit.run import AUDIT_FILE, audit_run
from radcore.cli import main
from radcore.config import TrainConfig
from radcore.models import LoraSettings
from radcore.train import train

from conftest import easy_corpus

# DP-LoRA sized so that the tiny model memorises most canaries in a few seconds once the noise is off: few real
# reports (64) beside m = 200 canaries (about 100 trained on), many small steps, no LoRA dropout. delta = 1e-5
# (< 1/n) leaves the bound room: with 0.1/n the 2 m delta term of the theorem caps it near 2.
CLAIM = 1.0


def dp_config(data_dir, **overrides) -> TrainConfig:
    values = dict(dataset="mimic-cxr", data_dir=str(data_dir), model="tiny-bert", pretrained=False, mode="dp-lora",
                  epsilon=CLAIM, delta=1e-5, epochs=30, batch_size=16, learning_rate=0.03, max_length=32,
                  max_train_reports=64, canaries=200, lora=LoraSettings(dropout=0.0), device="cpu", progress=False,
                  lp_ft=0.0, max_grad_norm=1.0)  # one DP phase, clip 1: the mechanism this audit is sized for
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def broken_run(synthetic_dirs, tmp_path_factory):
    """A DP run whose noise is switched off inside Opacus while the plan (and so the accountant) keeps it."""
    import opacus

    original, calls = opacus.PrivacyEngine.make_private, []

    def without_noise(self, **kwargs):
        calls.append(kwargs["noise_multiplier"])
        return original(self, **{**kwargs, "noise_multiplier": 0.0})

    out = tmp_path_factory.mktemp("broken")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(opacus.PrivacyEngine, "make_private", without_noise)
        results = train(dp_config(synthetic_dirs["mimic-cxr"]), out)
    assert calls and calls[0] > 0.5, "the noise was never switched off: DP training no longer goes through the patch"
    return out, results, audit_run(out, n_bootstrap=200)


@pytest.fixture(scope="module")
def correct_run(synthetic_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("correct")
    return out, train(dp_config(synthetic_dirs["mimic-cxr"]), out), audit_run(out, n_bootstrap=200)


def test_canaries_enter_training_by_their_coins():
    train_set = easy_corpus(20, seed=0)
    joined, record = add_canaries(train_set, m=50, seed=3)
    coins = canary_coins(50, seed=3)
    assert record["included"] == coins.sum() == len(joined) - 20 and record["coins"] == coins.astype(int).tolist()
    assert joined.ids[:20] == train_set.ids and all(i.startswith(CANARY_ID_PREFIX) for i in joined.ids[20:])
    pool = canary_corpus(50, seed=3, label_names=train_set.label_names, dataset="mimic-cxr")
    assert list(joined.ids[20:]) == [pool.ids[i] for i in np.flatnonzero(coins)]
    assert 0.4 < pool.labels.mean() < 0.6 and len(set(pool.texts)) == 50  # fair coins, every text unique
    assert add_canaries(train_set, m=0, seed=3) == (train_set, None)
    assert not np.array_equal(canary_coins(50, seed=3), canary_coins(50, seed=4))
    words = {w for text in pool.texts for w in text.split()}
    assert not words & {"effusion", "edema", "pneumothorax", "cardiomegaly", "no", "normal"}


def test_broken_mechanism_is_caught(broken_run):
    _, results, audit = broken_run
    claimed = results["privacy"]["epsilon_spent"]
    assert claimed <= CLAIM  # the accountant still certifies the target...
    canary = audit["canary"]
    assert canary["epsilon_lower_bound"] > claimed  # ...and the audit refutes it, at 95% confidence
    assert canary["epsilon_lower_bound"] > 1.5 * CLAIM
    print(f"broken: bound {canary['epsilon_lower_bound']:.3f} vs claim {claimed:.3f}; "
          f"{canary['correct']}/{canary['guesses']} right; ceiling {canary['ceiling']:.2f}")


def test_correct_dp_run_stays_below_its_claim(correct_run):
    _, results, audit = correct_run
    canary = audit["canary"]
    assert canary["epsilon_lower_bound"] <= results["privacy"]["epsilon_spent"]
    assert canary["ceiling"] > CLAIM  # the audit could have refuted the claim: its silence means something
    print(f"correct: bound {canary['epsilon_lower_bound']:.3f} vs claim {results['privacy']['epsilon_spent']:.3f}")


def test_audit_is_recorded_beside_the_results(correct_run):
    out, results, audit = correct_run
    stored = json.loads((out / "results.json").read_text())
    assert stored["canaries"]["m"] == 200 and stored["canaries"]["included"] == audit["canary"]["included"]
    assert stored["audit"]["epsilon_lower_bound"] == audit["canary"]["epsilon_lower_bound"]
    assert stored["audit"]["mia_auc"] == audit["membership"]["auc"]
    assert stored["data"]["splits"]["train_used"] == 64 + stored["canaries"]["included"]
    assert stored["privacy"]["n_train"] == stored["data"]["splits"]["train_used"]  # canaries count in n
    from radcore.summary import audit_table

    table = audit_table(stored)
    assert table.loc["epsilon_lower_bound", "value"] == audit["canary"]["epsilon_lower_bound"]
    assert audit_table({**stored, "audit": None}) is None
    on_disk = json.loads((out / AUDIT_FILE).read_text())
    assert on_disk["membership"]["n_members"] == 64
    assert on_disk["membership"]["bootstrap_unit"] == "patient"
    text = (out / AUDIT_FILE).read_text() + (out / "results.json").read_text()
    from radcore.data import load_corpus

    corpus = load_corpus("mimic-cxr", results["config"]["data_dir"])
    assert not any(report[:40] in text for report in corpus.texts)  # aggregates only, no report text


def test_non_private_training_leaks_measurably(synthetic_dirs, tmp_path):
    config = dp_config(synthetic_dirs["mimic-cxr"], mode="full", epsilon=None, delta=None, epochs=10,
                       learning_rate=1e-3, max_train_reports=None)
    train(config, tmp_path)
    audit = audit_run(tmp_path, n_bootstrap=200)
    assert audit["claimed_epsilon"] is None
    assert audit["canary"]["epsilon_lower_bound"] > 1.5  # memorised canaries: no DP claim could survive this
    assert audit["canary"]["canary_auc"] > 0.95
    assert audit["membership"]["auc"] > 0.5
    print(f"full: bound {audit['canary']['epsilon_lower_bound']:.3f}, MIA AUC {audit['membership']['auc']:.3f} "
          f"{audit['membership']['auc_ci']}")


def test_cli_audit_prints_the_summary(correct_run, capsys):
    out, _, _ = correct_run
    assert main(["audit", "--run", str(out), "--bootstrap", "50", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"mia_auc", "mia_tpr_at_fpr_0.01", "mia_tpr_at_fpr_0.001", "epsilon_lower_bound",
            "claimed_epsilon"} <= set(printed["audit"])


def test_cli_audit_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["audit", "--run", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0]


def test_negative_canaries_are_refused(synthetic_dirs):
    with pytest.raises(ValueError, match="canaries"):
        replace(dp_config(synthetic_dirs["mimic-cxr"]), canaries=-1)
