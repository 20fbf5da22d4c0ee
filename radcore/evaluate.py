"""Scoring: probabilities from a model, the metrics block, and re-scoring a saved run on another corpus."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from radcore.batches import Encoded, as_inputs, encode, length_sorted_batches
from radcore.corpus import Corpus
from radcore.metrics import classification_metrics
from radcore.outputs import check_file_target
from radcore.results import RESULTS_FILE, read_results, write_json_atomic

WEIGHT_FOLDERS = ("adapter", "model", "head", "tfidf")  # what radcore.train saves, by mode


@torch.no_grad()
def predict(model: torch.nn.Module, data: Encoded, device: torch.device, *, batch_size: int = 64) -> np.ndarray:
    """Sigmoid probabilities ``(n, k)`` in the rows' original order; batches grouped by length."""
    was_training = model.training
    model.eval()
    out = np.zeros((len(data), data.num_labels), dtype=np.float32)
    for idx in length_sorted_batches(data.lengths(), batch_size, n=len(data)):
        inputs = as_inputs(data.fields, data.batch(idx)[:len(data.fields)], device)
        out[idx] = torch.sigmoid(model(**inputs).logits.float()).cpu().numpy()
    model.train(was_training)
    return out


def score(corpus: Corpus, probabilities: np.ndarray, *, seed: int = 0) -> dict:
    """The metrics block for one split."""
    return classification_metrics(corpus.labels, probabilities, mask=corpus.label_mask,
                                  label_names=corpus.label_names, seed=seed)


def load_trained(run_dir: Path, results: dict, device: torch.device):
    """The fine-tuned model and tokenizer saved by a run (tokenizer None for ``tfidf``); saved weights that cannot
    be read are one error naming them."""
    from radcore.classifier import ReportClassifier
    from radcore.config import HEAD_MODES, TrainConfig
    from radcore.models import (load_classifier, load_encoder, load_tokenizer, mark_checkpoint_format, model_spec,
                                refuse_pickle)

    config = TrainConfig.from_dict(results["config"])
    name = results["model"].get("weights")
    if name not in WEIGHT_FOLDERS:
        raise ValueError(f"{run_dir / RESULTS_FILE}: model.weights is {name!r}, not one of {', '.join(WEIGHT_FOLDERS)}; "
                         f"train the run again (radcore train ... --overwrite)")
    weights = run_dir / name
    if config.mode == "tfidf":
        from radcore.tfidf import TfidfClassifier

        return _read_saved(weights, lambda: TfidfClassifier.from_pretrained(weights)), None, config
    spec = model_spec(config.model)
    if config.uses_lora or config.mode in HEAD_MODES:
        base = load_classifier(spec, num_labels=len(results["data"]["label_names"]),
                               pretrained=config.pretrained, pooling=config.pooling, init_seed=config.seed,
                               device=device, adapt_layers=config.top_layers)
        if config.mode in HEAD_MODES:
            model = _read_saved(weights, lambda: base.load_head(weights))
        else:
            from peft import PeftModel

            refuse_pickle(weights, what="adapter")  # peft would fall back to adapter_model.bin (a pickle) silently
            model = _read_saved(weights, lambda: PeftModel.from_pretrained(base, weights))
            safe = (weights / "adapter_model.safetensors").is_file()
            mark_checkpoint_format(model, "safetensors" if safe else "pickle")
    else:
        model = _read_saved(weights, lambda: ReportClassifier.from_pretrained(weights, load_encoder=load_encoder))
        model = model.to(device)
    return model, load_tokenizer(spec), config


def _read_saved(weights: Path, load):
    """``load()``, with what a missing, cut-off or damaged weights folder raises as one error naming it."""
    from safetensors import SafetensorError

    from radcore.models import PickledCheckpointError

    try:
        return load()
    except PickledCheckpointError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        raise ValueError(f"cannot read the saved weights in {weights} ({type(e).__name__}): they are missing, cut "
                         f"off or damaged; train the run again (radcore train ... --overwrite)") from None


def evaluate_run(run_dir: str | Path, *, dataset: str, data_dir: str | Path, split: str = "test",
                 out: str | Path | None = None, device: str = "auto") -> dict:
    """Score a saved run on ``split`` of another corpus; writes and returns an evaluation record."""
    from radcore.config import TrainConfig
    from radcore.data import load_corpus
    from radcore.device import resolve_device
    from radcore.models import check_model, loaded_checkpoint_format

    run_dir = Path(run_dir)
    target = check_file_target(Path(out) if out else run_dir / "evaluations" / f"{dataset}-{split}.json")
    results = read_results(run_dir, needs=("config", "data", "model"))
    try:
        config = TrainConfig.from_dict(results["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{run_dir / RESULTS_FILE}: config: {e}") from None
    check_model(config.model, max_length=config.max_length, pretrained=config.pretrained)
    corpus = load_corpus(dataset, data_dir, **results["config"].get("data_options", {}))
    if list(corpus.label_names) != results["data"]["label_names"]:
        raise ValueError(f"run {run_dir} was trained on {results['config']['dataset']} labels; "
                         f"{dataset} has a different label set")
    part = corpus if split == "all" else corpus.subset(split)
    if len(part) == 0:
        raise ValueError(f"the {split!r} split of {data_dir} is empty")
    dev = resolve_device(device)
    model, tokenizer, config = load_trained(run_dir, results, dev)
    start = time.perf_counter()
    if tokenizer is None:  # tfidf reads the text itself
        probabilities = model.predict(part.texts)
    else:
        probabilities = predict(model, encode(part, tokenizer, max_length=config.max_length), dev)
    record = {"run": str(run_dir), "dataset": dataset, "data_dir": str(data_dir), "source": corpus.source,
              "split": split, "checkpoint_format": results["model"]["checkpoint_format"] if tokenizer is None
              else loaded_checkpoint_format(model),
              "metrics": score(part, probabilities, seed=config.seed),
              "eval_seconds": time.perf_counter() - start}
    write_json_atomic(target, record)
    return record
