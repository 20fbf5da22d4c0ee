"""One run end to end: ``train(config, out_dir)`` loads the corpus through the real loader, fine-tunes
(:mod:`radcore.fit`), scores validation and test at the fixed threshold (:mod:`radcore.evaluate`), and writes
``out_dir/results.json`` (last, atomically: its presence marks a finished run), the adapter or model, and the
test-set probabilities for paired statistics.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch

from radcore.audit.canaries import add_canaries
from radcore.batches import encode
from radcore.card import write_card
from radcore.centre import centred, fold_centre, public_centre
from radcore.config import TrainConfig
from radcore.corpus import Corpus
from radcore.data import load_corpus
from radcore.device import resolve_device, resolve_precision
from radcore.dp import composed_record
from radcore.errors import DataError
from radcore.evaluate import predict, score
from radcore.fit import build_model, copy_head, fit, head_module
from radcore.models import check_model, count_parameters, load_tokenizer, loaded_checkpoint_format
from radcore.prefix_cache import prefix_features
from radcore.privacy import plan_phases
from radcore.results import (PREDICTIONS_FILE, RESULTS_FILE, library_versions, savez_atomic, write_dir_atomic,
                             write_json_atomic)
from radcore.tfidf import TfidfClassifier

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (every device's). transformers' ``set_seed`` does the same,
    but importing it loads peft and much of transformers' trainer, 3-4 s of every cell that never builds a LoRA
    model (head, DP head, TF-IDF, full fine-tuning; tests/test_imports.py)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_rows(corpus: Corpus, config: TrainConfig) -> np.ndarray:
    """Positions of the training reports in ``corpus``, subsampled to ``max_train_reports`` with the run's seed."""
    rows = split_rows(corpus, "train")
    if config.max_train_reports and len(rows) > config.max_train_reports:
        rows = np.sort(np.random.default_rng(config.seed).choice(rows, config.max_train_reports, replace=False))
    return rows


def split_rows(corpus: Corpus, split: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(corpus.split) == split)


def training_subset(corpus: Corpus, config: TrainConfig) -> Corpus:
    """The training reports of a run (:func:`training_rows`)."""
    return corpus.take(training_rows(corpus, config))


def _fit_tfidf(config: TrainConfig, corpus: Corpus, rows: dict[str, np.ndarray]):
    start = time.perf_counter()
    model = TfidfClassifier.fit(corpus.take(rows["train"]))
    seconds = time.perf_counter() - start
    probabilities = {split: model.predict(corpus.take(r).texts) for split, r in rows.items() if split != "train"}
    timing = {"train_seconds": seconds, "train_steps": 0, "reports_seen": len(rows["train"]),
              "reports_per_s": len(rows["train"]) / seconds if seconds > 0 else None, "precision": "fp64"}
    info = {"family": "tfidf", "trainable": int(model.coef.size + model.intercept.size),
            "total": int(model.coef.size + model.intercept.size), "vocabulary": model.vocabulary_size,
            "checkpoint_format": "safetensors"}
    return model, probabilities, None, timing, info


def _fit_neural(config: TrainConfig, corpus: Corpus, rows: dict[str, np.ndarray], device: torch.device):
    model, spec = build_model(config, len(corpus.label_names), device)
    tokenizer = load_tokenizer(spec)
    tokens = encode(corpus, tokenizer, max_length=config.max_length)
    precision = resolve_precision(config.precision, device)
    caches, data = [], tokens
    if model.feature_kind is not None:  # the frozen prefix runs once per corpus, not once per step
        data, record = prefix_features(model, tokens, precision=precision, device=device, progress=config.progress)
        caches.append(record)

    def centre_of(head_model):  # a public centre for a head on pooled features (radcore.centre)
        centre, record = public_centre(head_model, config.dataset, tokenizer, max_length=config.max_length,
                                       precision=precision, device=device)
        caches.append(record)
        return centre

    centre = centre_of(model) if model.feature_kind == "pooled" and config.centres else None
    plans, tuning = [None, None], config
    if config.lp_share:  # LP-FT: the head alone first, on the pooled features, with its share of the budget
        head_config, tuning = config.head_phase(), config.tuning_phase()
        if config.is_private:
            plans = plan_phases(epsilon=config.epsilon, delta=config.delta, n_train=len(rows["train"]),
                                phases=[(head_config.batch, head_config.epochs, config.lp_share),
                                        (config.batch, config.epochs, 1 - config.lp_share)],
                                max_grad_norm=config.max_grad_norm, accountant=config.accountant)
        head, _ = build_model(head_config, len(corpus.label_names), device)
        pooled, record = prefix_features(head, tokens, precision=precision, device=device, progress=config.progress)
        caches.append(record)
        pooled = pooled.take(rows["train"])
        head_centre = centre_of(head) if head_config.centres else None
        if head_centre is not None:
            pooled = centred(pooled, head_centre)
        head, head_privacy, head_timing = fit(head_config, head, pooled, device, plan=plans[0])
        if head_centre is not None:
            fold_centre(head_module(head), head_centre)
        copy_head(head, model)
    train_data = data.take(rows["train"])
    model, privacy, timing = fit(tuning, model, train_data if centre is None else centred(train_data, centre), device,
                                 plan=plans[1])
    if centre is not None:
        fold_centre(head_module(model), centre)
    if config.lp_share:
        if privacy is not None:
            privacy = composed_record([head_privacy, privacy], epsilon_target=config.epsilon)
        timing = {**timing, "head_phase": head_timing,
                  "train_seconds": timing["train_seconds"] + head_timing["train_seconds"]}
    start = time.perf_counter()
    probabilities = {split: predict(model, data.take(r), device) for split, r in rows.items() if split != "train"}
    timing["eval_seconds"] = time.perf_counter() - start
    if caches:
        timing["prefix_cache"] = caches
    info = {"family": spec.family, **count_parameters(model), "checkpoint_format": loaded_checkpoint_format(model)}
    return model, probabilities, privacy, timing, info


def _save_weights(model, config: TrainConfig, run_dir: Path) -> str:
    name = {"tfidf": "tfidf", "head": "head", "dp-head": "head"}.get(config.mode)
    name = name or ("adapter" if config.uses_lora else "model")
    save = model.save_pretrained
    if name == "head":  # the encoder is the unchanged public model: only the head is new
        save = lambda path: model.save_pretrained(path, head_only=True)  # noqa: E731
    write_dir_atomic(run_dir / name, save)
    return name


def train(config: TrainConfig, out_dir: str | Path) -> dict:
    """Run one cell end to end and return what was written to ``out_dir/results.json``.

    Files are written in place, each atomically, over those of an earlier attempt of the same cell (the grid's
    resume); a run started by hand goes through :func:`radcore.outputs.check_run_target` and
    :func:`~radcore.outputs.staged_folder` instead, so its folder never mixes two runs (``radcore train``).
    """
    run_dir = Path(out_dir)
    check_model(config.model, max_length=config.max_length, pretrained=config.pretrained)  # before any work
    seed_everything(config.seed)
    device = resolve_device(config.device)
    corpus = load_corpus(config.dataset, config.data_dir, **config.data_options)
    rows = {"train": training_rows(corpus, config), "validate": split_rows(corpus, "validate"),
            "test": split_rows(corpus, "test")}
    for split in ("train", "test"):
        if len(rows[split]) == 0:
            raise DataError(f"no {split} reports (split sizes {corpus.split_sizes()}); a run needs both a "
                            f"training and a test split", path=config.data_dir,
                            hint="check the split file, or point --data at the whole corpus")
    if not len(rows["validate"]):
        del rows["validate"]
    sizes = corpus.split_sizes()
    if config.canaries:  # audit canaries (radcore.audit): appended to the corpus, trained on where their coin came up
        n_real = len(corpus)
        corpus, canaries = add_canaries(corpus, m=config.canaries, seed=config.seed)
        rows["train"] = np.concatenate([rows["train"], np.arange(n_real, len(corpus))])
    else:
        canaries = None
    if config.mode == "tfidf":
        model, probabilities, privacy, timing, info = _fit_tfidf(config, corpus, rows)
    else:
        model, probabilities, privacy, timing, info = _fit_neural(config, corpus, rows, device)
    metrics = {split: score(corpus.take(rows[split]), p, seed=config.seed) for split, p in probabilities.items()}
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a run that fails earlier leaves no empty folder
    weights = _save_weights(model, config, run_dir)
    test = corpus.take(rows["test"])
    savez_atomic(run_dir / PREDICTIONS_FILE, ids=np.array(test.ids), probabilities=probabilities["test"],
                 labels=test.labels, label_mask=test.label_mask)
    results = {
        "schema_version": 1,
        "config": config.as_dict(),
        "data": {"source": corpus.source, "splits": {**sizes, "train_used": len(rows["train"])},
                 "skipped": dict(corpus.skipped), "label_names": list(corpus.label_names)},
        "model": {**info, "weights": weights},
        "metrics": metrics,
        "privacy": privacy,
        "canaries": canaries,  # the audit canaries' coins (radcore.audit), or None
        "timing": {**timing, "device": str(device), "torch_threads": torch.get_num_threads()},
        "versions": library_versions(),
    }
    write_card(run_dir, results)  # the weights' README.md: a model card that states the guarantee
    write_json_atomic(run_dir / RESULTS_FILE, results)
    log.info("wrote %s", run_dir / RESULTS_FILE)
    return results
