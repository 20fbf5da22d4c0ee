"""What the benchmarks share: a training run through radcore's own code path, its timed steps, the process'
peak memory and a description of the machine.

``training_run`` builds what ``radcore.fit.fit`` builds (``build_model``; the cached frozen prefix's features when
the model has one, as ``radcore.train`` does; AdamW; length-grouped batches, or Opacus' Poisson loader through
``radcore.dp.make_private``) and ``timed_steps`` runs ``radcore.fit.step`` on its batches. Used by ``levers.py``,
``kernel_env.py`` (through ``levers``) and ``adapt_layers.py``; ``throughput.py`` uses the memory and machine
helpers.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import torch

from radcore.batches import encode, length_grouped_loader, shuffled_loader
from radcore.config import TrainConfig
from radcore.data import load_corpus
from radcore.dp import make_private
from radcore.fit import batches, build_model, step
from radcore.models import load_tokenizer, model_spec, weights_location
from radcore.prefix_cache import prefix_features
from radcore.privacy import plan_privacy

CPU = torch.device("cpu")


def training_batches(dataset: str, data_dir, *, reports: int, model: str, seq_len: int):
    """The first ``reports`` training reports of a corpus, tokenised for ``model`` (real report lengths)."""
    corpus = load_corpus(dataset, data_dir).subset("train")
    corpus = corpus.take(range(min(reports, len(corpus))))
    return encode(corpus, bench_tokenizer(model), max_length=seq_len)


def bench_tokenizer(model: str):
    """``model``'s tokenizer where it is on disk; for a BERT shape known only by hub id (bert-small, bert-medium), the
    offline MiniLM's, which has the same uncased vocabulary (30,522): the benchmarks train at random init, offline."""
    spec = model_spec(model)
    location = weights_location(spec)
    if spec.family == "bert" and location is not None and not Path(location).is_dir():
        spec = model_spec("minilm")
    return load_tokenizer(spec)


def training_run(mode: str, data, *, grouped: bool, chunk: int, precision: str, seq_len: int, model: str,
                 **settings) -> dict:
    """Model, optimizer and loader of one training run on ``data`` (random init at ``model``'s shape), for
    :func:`timed_steps`. ``settings`` are further :class:`~radcore.config.TrainConfig` fields (``adapt_layers``,
    ``batch_size``). With a frozen prefix, the run trains on its cached features (``RADCORE_CACHE``), and
    ``run["prefix_cache"]`` records that lookup."""
    config = TrainConfig(dataset="-", data_dir="-", model=model, mode=mode,
                         epsilon=1.0 if mode.startswith("dp-") else None, pretrained=False, max_length=seq_len,
                         progress=False, **settings)
    torch.manual_seed(0)
    net, _ = build_model(config, data.num_labels, CPU)
    cache = None
    if net.feature_kind is not None:  # as radcore.train does: the frozen prefix's output, computed once
        data, cache = prefix_features(net, data, precision=precision, device=CPU)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=config.lr)
    loader = (length_grouped_loader(data, config.batch, seed=0) if grouped
              else shuffled_loader(data, config.batch, seed=0))
    if config.is_private:
        plan = plan_privacy(epsilon=1.0, n_train=len(data), batch_size=config.batch, epochs=1000, max_grad_norm=1.0)
        net, optimizer, loader, _ = make_private(net, optimizer, loader, plan, seed=0)
    return {"net": net, "optimizer": optimizer, "loader": loader, "chunk": chunk if grouped else config.batch,
            "fields": data.fields, "private": config.is_private, "precision": precision, "data": data,
            "prefix_cache": cache}


def timed_steps(run: dict, steps: int) -> tuple[int, float]:
    """``steps`` optimizer steps of ``run`` (its loader restarted when it runs out): (reports seen, seconds)."""
    seen, start, views = 0, time.perf_counter(), batches(run["loader"], run["data"])
    for _ in range(steps):
        batch = next(views, None)
        if batch is None:
            views = batches(run["loader"], run["data"])
            batch = next(views)
        step(run["net"], run["optimizer"], batch, CPU, chunk=run["chunk"], private=run["private"],
             precision=run["precision"])
        seen += len(batch)
    return seen, time.perf_counter() - start


def rss_high_water_kb() -> int:
    """This process' resident-set high-water mark so far (kB, Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _vm_hwm_kb() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)


def reset_rss_high_water() -> int:
    """Lower the resident-set high-water mark to the current resident size where Linux allows it
    (``/proc/self/clear_refs``), so that :func:`rss_rise_mb` sees what runs after this call even when an earlier
    transient (model build, cache fill) peaked higher; returns the mark (kB) to pass to it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not allowed here: the mark stays, and the rise is counted from it
    return _vm_hwm_kb() or rss_high_water_kb()


def rss_rise_mb(mark_kb: int) -> float:
    """How far the resident-set high-water mark rose above ``mark_kb`` (from :func:`reset_rss_high_water`), MB."""
    return ((_vm_hwm_kb() or rss_high_water_kb()) - mark_kb) / 1024


def peak_mb(device: torch.device, rss_before_kb: int) -> float:
    """Peak memory of what ran since ``rss_before_kb`` was read: CUDA's ``max_memory_allocated``; on the CPU the
    rise of the resident-set high-water mark over it."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return (rss_high_water_kb() - rss_before_kb) / 1024


def machine(device: str) -> dict:
    """The device, its name (the CPU's model name), core and torch-thread counts, torch and Python versions."""
    from radcore.device import resolve_device

    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    if dev.type == "cpu" and Path("/proc/cpuinfo").is_file():
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        name = models[0] if models else name
    return {"device": str(dev), "name": name, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}
