"""One run end to end: ``train(config, out_dir)`` loads the corpus through the real loader, fine-tunes
(:mod:`radcore.fit`), scores validation and test at the fixed threshold (:mod:`radcore.evaluate`), and writes
``out_dir/results.json`` (last, atomically: its presence marks a finished run), the adapter or model, and the
test-set probabilities for paired statistics.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from transformers import set_seed

from radcore.audit.canaries import add_canaries
from radcore.batches import encode
from radcore.card import write_card
from radcore.config import TrainConfig
from radcore.corpus import Corpus
from radcore.data import load_corpus
from radcore.device import resolve_device
from radcore.errors import DataError
from radcore.evaluate import predict, score
from radcore.fit import fit
from radcore.models import count_parameters, load_tokenizer, loaded_checkpoint_format, model_spec
from radcore.results import PREDICTIONS_FILE, RESULTS_FILE, library_versions, savez_atomic, write_dir_atomic, write_json_atomic

log = logging.getLogger(__name__)


def training_subset(corpus: Corpus, config: TrainConfig) -> Corpus:
    """The training split, subsampled to ``max_train_reports`` with the run's seed if asked."""
    train = corpus.subset("train")
    if config.max_train_reports and len(train) > config.max_train_reports:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(train), config.max_train_reports,
                                                                 replace=False))
        train = train.take(keep)
    return train


def _save_weights(model, config: TrainConfig, run_dir: Path) -> str:
    name = "adapter" if config.uses_lora else "model"
    write_dir_atomic(run_dir / name, model.save_pretrained)
    return name


def train(config: TrainConfig, out_dir: str | Path) -> dict:
    """Run one cell end to end and return what was written to ``out_dir/results.json``."""
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    device = resolve_device(config.device)
    corpus = load_corpus(config.dataset, config.data_dir, **config.data_options)
    train_split = training_subset(corpus, config)
    for split, size in (("train", len(train_split)), ("test", len(corpus.subset("test")))):
        if size == 0:
            raise DataError(f"no {split} reports (split sizes {corpus.split_sizes()}); a run needs both a "
                            f"training and a test split", path=config.data_dir,
                            hint="check the split file, or point --data at the whole corpus")
    train_split, canaries = add_canaries(train_split, m=config.canaries, seed=config.seed)
    tokenizer = load_tokenizer(model_spec(config.model))
    model, spec, privacy, timing = fit(config, train_split, tokenizer, device)
    metrics, probabilities = {}, {}
    start = time.perf_counter()
    for split in ("validate", "test"):
        part = corpus.subset(split)
        if len(part):
            probabilities[split] = predict(model, encode(part, tokenizer, max_length=config.max_length), device)
            metrics[split] = score(part, probabilities[split], seed=config.seed)
    timing["eval_seconds"] = time.perf_counter() - start
    weights = _save_weights(model, config, run_dir)
    if "test" in probabilities:
        test = corpus.subset("test")
        savez_atomic(run_dir / PREDICTIONS_FILE, ids=np.array(test.ids), probabilities=probabilities["test"],
                     labels=test.labels, label_mask=test.label_mask)
    results = {
        "schema_version": 1,
        "config": config.as_dict(),
        "data": {"source": corpus.source, "splits": {**corpus.split_sizes(), "train_used": len(train_split)},
                 "skipped": dict(corpus.skipped), "label_names": list(corpus.label_names)},
        "model": {"family": spec.family, **count_parameters(model), "weights": weights,
                  "checkpoint_format": loaded_checkpoint_format(model)},
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
