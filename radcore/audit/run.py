"""Audit a saved run: membership inference on its real reports and, if it trained with canaries, the one-run bound.

``audit_run(run_dir)`` reloads the run's corpus and weights, rebuilds exactly which real reports it trained on
(:func:`radcore.train.training_subset`, seeded) and which canaries (the coins in ``results.json``), scores them
with the saved model, and writes ``audit.json`` (aggregates and the synthetic canaries' scores only: no report
text and no per-report score of a real report) beside ``results.json``, whose ``audit`` block gets the summary.
The adapter's model card is refreshed with the numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from radcore.audit import canaries as canary_mod
from radcore.audit.membership import membership_inference
from radcore.audit.one_run import audit_canaries
from radcore.audit.scores import label_log_odds, per_report_loss, probabilities
from radcore.outputs import check_file_target
from radcore.results import RESULTS_FILE, library_versions, read_results, write_json_atomic

AUDIT_FILE = "audit.json"
CONFIDENCE = 0.95


def claimed_privacy(results: dict) -> tuple[float | None, float]:
    """(claimed epsilon, delta) of a run: the accountant's epsilon for the steps taken and the run's delta; a
    non-private run claims nothing (None) and is audited at the delta a DP run of its size would default to."""
    from radcore.privacy import default_delta

    privacy = results.get("privacy")
    if privacy:
        return privacy["epsilon_spent"], privacy["delta"]
    return None, default_delta(results["data"]["splits"]["train_used"])


def _members_and_nonmembers(results: dict):
    from radcore.config import TrainConfig
    from radcore.data import load_corpus
    from radcore.train import training_subset

    config = TrainConfig.from_dict(results["config"])
    corpus = load_corpus(config.dataset, config.data_dir, **config.data_options)
    members = training_subset(corpus, config)
    included = (results.get("canaries") or {}).get("included", 0)
    if len(members) + included != results["data"]["splits"]["train_used"]:
        raise ValueError(f"the corpus at {config.data_dir} no longer gives the run's training set "
                         f"({len(members)} reports + {included} canaries, the run trained on "
                         f"{results['data']['splits']['train_used']}); audit it where it was trained")
    # Non-members: every report of a patient none of whose reports was trained on (a patient's other reports are
    # alike and would blur the comparison).
    trained_patients = set(members.patient_ids)
    nonmembers = corpus.take([i for i, patient in enumerate(corpus.patient_ids) if patient not in trained_patients])
    return config, members, nonmembers


def audit_run(run_dir: str | Path, *, device: str = "auto", n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Audit the run in ``run_dir``; writes ``audit.json``, the ``audit`` block of ``results.json`` and the card."""
    from radcore.device import resolve_device
    from radcore.evaluate import load_trained

    start = time.perf_counter()
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    check_file_target(run_dir / AUDIT_FILE, fixed_name=True)
    config, members, nonmembers = _members_and_nonmembers(results)
    if len(nonmembers) == 0:
        raise ValueError(f"run {run_dir} trained on every report of its corpus: no non-member is left to attack with")
    dev = resolve_device(device)
    model, tokenizer, _ = load_trained(run_dir, results, dev)
    score = lambda corpus: probabilities(model, corpus, tokenizer, max_length=config.max_length, device=dev)  # noqa: E731
    loss = {"members": per_report_loss(score(members), members.labels, members.label_mask),
            "nonmembers": per_report_loss(score(nonmembers), nonmembers.labels, nonmembers.label_mask)}
    membership = membership_inference(-loss["members"], -loss["nonmembers"], n_bootstrap=n_bootstrap,
                                      confidence=CONFIDENCE, seed=seed, member_groups=members.patient_ids,
                                      nonmember_groups=nonmembers.patient_ids)
    membership.update(score="negative per-report loss (loss attack)",
                      mean_loss_members=float(loss["members"].mean()),
                      mean_loss_nonmembers=float(loss["nonmembers"].mean()),
                      nonmembers_from={s: int(n) for s, n in nonmembers.split_sizes().items()})
    claimed, delta = claimed_privacy(results)
    canary = None
    record = results.get("canaries")
    if record:
        pool = canary_mod.canary_corpus(record["m"], seed=record["seed"], label_names=members.label_names,
                                        dataset=members.dataset)
        if record.get("sha256", canary_mod.fingerprint(pool)) != canary_mod.fingerprint(pool):
            raise ValueError(f"run {run_dir}: its canaries cannot be rebuilt (made by another canary design); "
                             f"audit it with the radcore version that trained it")
        coins = np.asarray(record["coins"], dtype=bool)
        if not np.array_equal(coins, canary_mod.canary_coins(record["m"], seed=record["seed"])):
            raise ValueError(f"run {run_dir}: the recorded canary coins are not those of seed {record['seed']}")
        odds = label_log_odds(score(pool), pool.labels)
        canary = audit_canaries(odds, coins, delta=delta, confidence=CONFIDENCE)
        canary.update(score="label log-odds of the canary's own labels against their complement",
                      ceiling=_ceiling(record["m"], delta), scores=[float(s) for s in odds],
                      canary_auc=membership_inference(odds[coins], odds[~coins], n_bootstrap=0)["auc"]
                      if 0 < coins.sum() < len(coins) else None)
    audit = {"schema_version": 1, "run": run_dir.name, "claimed_epsilon": claimed, "delta": delta,
             "epsilon_target": config.epsilon, "mode": config.mode, "membership": membership, "canary": canary,
             "seconds": time.perf_counter() - start, "device": str(dev), "versions": library_versions()}
    write_json_atomic(run_dir / AUDIT_FILE, audit)
    results["audit"] = summary(audit)
    _refresh_card(run_dir, results)
    write_json_atomic(run_dir / RESULTS_FILE, results)
    return audit


def _ceiling(m: int, delta: float) -> float:
    """The largest bound this audit could give: every guess right at the best ``k`` of the grid."""
    from radcore.audit.one_run import epsilon_lower_bound, guess_counts

    ks = guess_counts(m)
    return max(epsilon_lower_bound(m=m, guesses=2 * k, correct=2 * k, delta=delta, alpha=(1 - CONFIDENCE) / len(ks))
               for k in ks)


def summary(audit: dict) -> dict:
    """The few numbers ``results.json``, the CLI and the model card carry."""
    mia, canary = audit["membership"], audit["canary"]
    out = {"claimed_epsilon": audit["claimed_epsilon"], "delta": audit["delta"],
           "mia_auc": mia["auc"], "mia_auc_ci": mia.get("auc_ci"),
           **{f"mia_tpr_at_fpr_{key}": entry["tpr"] for key, entry in mia["tpr_at_fpr"].items()},
           **{f"mia_tpr_at_fpr_{key}_ci": entry.get("tpr_ci") for key, entry in mia["tpr_at_fpr"].items()},
           **{f"mia_tpr_at_fpr_{key}_resolvable": entry["resolvable"] for key, entry in mia["tpr_at_fpr"].items()},
           "mia_members": mia["n_members"], "mia_nonmembers": mia["n_nonmembers"]}
    if canary:
        out.update(epsilon_lower_bound=canary["epsilon_lower_bound"], confidence=canary["confidence"],
                   canaries=canary["m"], canaries_included=canary["included"], guesses=canary["guesses"],
                   correct=canary["correct"], bound_ceiling=canary["ceiling"])
    return out


def _refresh_card(run_dir: Path, results: dict) -> None:
    from radcore.card import write_card

    write_card(run_dir, results)
