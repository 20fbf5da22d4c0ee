"""The frozen-prefix cache: what a classifier's frozen bottom computes for a corpus, computed once, kept on disk.

With ``adapt_layers`` K below the encoder's depth, the embeddings and the bottom layers are a fixed function of
the public model, so their output for a report (token states after the last frozen layer, or the pooled vector
when the whole encoder is frozen) is the same in every cell, seed and privacy setting of a grid. It is
computed once per corpus and stored under ``$RADCORE_CACHE`` (default ``.cache/radcore``, git-ignored, removed
by ``make clean``), in an entry named by a content hash of everything that determines it: the frozen weights,
the token ids and attention masks of every report (hence corpus, split, tokenizer and ``max_length``), the
number of frozen layers, the pooling (pooled entries) and the precision it was computed in.

A pooled entry of a BERT-style encoder is built on the token-states entry one layer below it (the one an
``adapt_layers 1`` run trains on): only the top layer and the pooling run over the cached states, so a grid with
both head modes and top-layer runs pays for the bottom layers once, not twice. The pooled entry is computed this
way whether or not the states entry existed before (it is made when missing), so its content never depends on
the order in which cells ran; its key says so (``via_states``).

An entry is a folder holding ``features.npy`` (bf16 stored as int16 bits, or float32) and ``meta.json``,
written last and atomically: an entry without it is unfinished and is computed again. A folder lock
(:func:`radcore.grid.lock.cell_lock`) makes concurrent workers safe: one computes, the others wait and reuse.
The array is memory-mapped (copy on write, never written back), so a corpus larger than memory is read row by
row as batches need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from radcore.batches import Encoded, as_inputs, length_sorted_batches
from radcore.classifier import num_layers, splittable
from radcore.device import autocast
from radcore.results import fsync_dir, write_json_atomic

CACHE_ENV = "RADCORE_CACHE"
DEFAULT_ROOT = Path(".cache/radcore")
FORMAT_VERSION = 1
FEATURES_FILE, META_FILE = "features.npy", "meta.json"
_CHUNK = 64  # reports per forward pass while filling an entry


def cache_root() -> Path:
    """Where entries live: ``$RADCORE_CACHE`` or ``.cache/radcore`` under the working directory."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT) / "prefix"


def _digest_tensor(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())


def states_below(model) -> int | None:
    """For a pooled prefix built on a token-states entry: that entry's layer count (the encoder's depth - 1)."""
    depth = num_layers(model.encoder)
    stacked = model.feature_kind == "pooled" and splittable(model.encoder) and depth >= 2
    return depth - 1 if stacked else None


def entry_key(model, data: Encoded, *, precision: str, layers: int | None = None) -> str:
    """The content hash naming ``model``'s prefix features for ``data``'s reports in ``precision``: of its own
    frozen prefix, or of the prefix ending after ``layers`` (token states)."""
    h = hashlib.sha256(f"radcore-prefix-v{FORMAT_VERSION}".encode())
    config = model.encoder.config
    layers = model.frozen_layers if layers is None else layers
    pooled = layers == num_layers(model.encoder)
    h.update(json.dumps({"kind": "pooled" if pooled else "states", "frozen_layers": layers, "precision": precision,
                         "pooling": model.pooling if pooled else None,
                         "via_states": states_below(model) if pooled else None,
                         "model_type": config.model_type, "attention": getattr(config, "_attn_implementation", None),
                         "fields": list(data.fields), "rows": len(data)}, sort_keys=True).encode())
    for module in model.prefix_modules(layers):
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            _digest_tensor(h, tensor)
    for name in data.fields:
        _digest_tensor(h, data.inputs[name][torch.as_tensor(data.rows)])
    return h.hexdigest()[:32]


def prefix_features(model, data: Encoded, *, precision: str, device: torch.device,
                    progress: bool = False) -> tuple[Encoded, dict]:
    """``data`` with its token ids replaced by ``model``'s cached prefix features, and a record of the lookup
    (key, hit, seconds, megabytes) for ``results.json``. Computes and stores the entry on a miss."""
    start = time.perf_counter()
    below, source = states_below(model), {}

    def states_below_entry() -> torch.Tensor:  # only on a miss: the states one layer down, from their own entry
        states, record = _lookup(model, data, below, precision=precision, device=device, progress=progress)
        source.update(record)
        return states

    features, record = _lookup(model, data, None, precision=precision, device=device, progress=progress,
                               states=states_below_entry if below is not None else None)
    inputs = {"features": features}
    if model.feature_kind == "states":
        inputs["attention_mask"] = data.inputs["attention_mask"][torch.as_tensor(data.rows), :features.shape[1]]
    cached = Encoded(inputs, data.labels[torch.as_tensor(data.rows)], data.label_mask[torch.as_tensor(data.rows)])
    record = {**record, "seconds": time.perf_counter() - start, "kind": model.feature_kind,
              "frozen_layers": model.frozen_layers, "megabytes": features.numel() * features.element_size() / 1e6}
    if source:
        record["from_states"] = source
    return cached, record


def _lookup(model, data: Encoded, layers: int | None, *, precision: str, device: torch.device, progress: bool,
            states=None) -> tuple[torch.Tensor, dict]:
    """The features of one entry (``model``'s own prefix, or the states after ``layers``), computed on a miss
    (from the cached states that ``states()`` returns, when given); and {key, hit, layers}."""
    from radcore.grid.lock import cell_lock

    key = entry_key(model, data, precision=precision, layers=layers)
    entry = cache_root() / key
    with cell_lock(entry):
        hit = (entry / META_FILE).is_file()
        if not hit:
            _fill(entry, model, data, precision=precision, device=device, progress=progress, layers=layers,
                  states=states() if states is not None else None)
        features = _open(entry)
    return features, {"key": key, "hit": hit, "layers": model.frozen_layers if layers is None else layers}


def _open(entry: Path) -> torch.Tensor:
    meta = json.loads((entry / META_FILE).read_text())
    array = np.load(entry / FEATURES_FILE, mmap_mode="c")  # copy on write: torch may view it, nothing goes back
    tensor = torch.from_numpy(array)
    return tensor.view(torch.bfloat16) if meta["dtype"] == "bfloat16" else tensor


@torch.no_grad()
def _fill(entry: Path, model, data: Encoded, *, precision: str, device: torch.device, progress: bool,
          layers: int | None = None, states: torch.Tensor | None = None) -> None:
    """Compute an entry's features batch by batch into a temporary file, then publish it: ``model``'s own prefix
    (its pooled vector from ``states``, the cached states one layer down, when given), or the token states after
    ``layers``."""
    was_training = model.training
    model.eval()
    lengths = data.lengths()
    width = int(lengths.max()) if lengths is not None else 0
    hidden = model.encoder.config.hidden_size
    pooled = layers is None and model.feature_kind == "pooled"
    shape = (len(data), hidden) if pooled else (len(data), width, hidden)
    bf16 = precision == "bf16"
    tmp = entry / f".{FEATURES_FILE}.{os.getpid()}.tmp"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16 if bf16 else np.float32, shape=shape)
    batches = length_sorted_batches(lengths, _CHUNK, n=len(data))
    for idx in tqdm(batches, desc="prefix features", unit="batch", disable=not progress):
        inputs = as_inputs(data.fields, data.batch(idx)[:len(data.fields)], device)
        mask = inputs["attention_mask"]
        with autocast(device, precision):
            if states is not None:  # as forward() reads cached states: in the head's dtype, then autocast
                below = states[torch.as_tensor(idx), :mask.shape[1]].to(device, model.classifier.weight.dtype)
                feats = model.top(below, mask, states_below(model))
            elif layers is not None:
                feats = model.states(inputs["input_ids"], mask, layers)
            else:
                feats = model.features(inputs["input_ids"], mask)
        feats = feats.to(torch.bfloat16 if bf16 else torch.float32).cpu()
        feats = (feats.view(torch.int16) if bf16 else feats).numpy()
        if feats.ndim == 3:
            out[idx, :feats.shape[1]] = feats
        else:
            out[idx] = feats
    out.flush()
    del out
    os.replace(tmp, entry / FEATURES_FILE)
    fsync_dir(entry)
    write_json_atomic(entry / META_FILE, {"dtype": "bfloat16" if bf16 else "float32", "shape": list(shape),
                                          "format_version": FORMAT_VERSION})
    model.train(was_training)
