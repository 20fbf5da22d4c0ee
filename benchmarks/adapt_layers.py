"""Training throughput and peak memory of LoRA and DP-LoRA at adapt_layers 1, 2 and all, per model shape, and
the one-time cost of the frozen prefix's cached features.

With ``adapt_layers`` K below the encoder's depth, the embeddings and the bottom layers are a frozen prefix whose
output radcore computes once per corpus and caches on disk (``radcore.prefix_cache``); a step then runs only
the top K layers and the head. This script measures both halves through radcore's own code path
(``harness.training_run``: ``build_model``, ``prefix_features``, ``radcore.dp.make_private`` with its Poisson
loader, ``radcore.fit.step``) on a synthetic MIMIC-CXR corpus (real report lengths, 128 tokens at most), random
init at each model's real shape, in radcore's precision (bf16 autocast where native):

* training: non-private LoRA at its default batch (32), and DP-LoRA at expected batch 128 in physical chunks
  of 32, at 256 in chunks of 64 and at radcore's default (256 in chunks of 32), at each K;
* prefix: reports/s of computing and storing the prefix features of the whole corpus in an empty cache, the
  price paid once per corpus and K before any run trains on it.

Each measurement lives in its own child process: it builds its run once (model, cached features, optimizer,
loader) and takes one warm-up step (the children of a model start together and warm up one at a time), then,
round after round, times the steps it is told to. Rounds alternate all of a model's measurements, so the
machine's load hits all of them alike, and each times about the same number of reports (``--window``: LoRA takes
more steps of its smaller batch). A waiting child hands its freed heap back to the OS (glibc's ``malloc_trim``),
so that a model's children do not hold their peaks at once; the timed steps then map that memory again, a
small cost that falls on every measurement alike. Peak memory is the rise of the child's resident-set high-water
mark from just before its warm-up step (the cached features already read into memory, as an epoch reads them
all), over every round. A model's children stay alive together (MiniLM: 14 processes, about 10 GB resident in all).

That RSS peak is what the process costs with glibc's default allocator, which keeps freed heap and moves its
mmap threshold up as large blocks are freed: a DP step's chunks (the forward and backward of 32 reports each, 8
of them per expected batch of 256) then grow the heap chunk after chunk, and the high-water mark holds far more
than any one chunk needs. So each variant is measured a second time, after the timed rounds, in a child of its
own whose glibc serves every block of 128 KiB or more by ``mmap`` (``MALLOC_MMAP_THRESHOLD_``, which also turns
the moving threshold off): freed tensors go back to the OS at once and the high-water mark follows the live
tensors, as CUDA's ``max_memory_allocated`` does on a GPU. That ``live`` peak, over one epoch of the corpus in
fp32 (:func:`live_peaks` says why), is the one the DP memory target compares; it costs those children speed (page
faults), so they are not timed.
Compare the ratios, which are measured side by side, more than the absolute reports/s.
ALBERT applies one shared layer at every depth, so radcore refuses 0 < K < all for it by design; its rows record
that refusal. Writes ``benchmarks/results/adapt_layers.json``.

    .venv/bin/python benchmarks/adapt_layers.py            # tiny-bert, minilm, bert-small, bert-medium
    .venv/bin/python benchmarks/adapt_layers.py --quick    # tiny-bert and minilm, shorter (make bench QUICK=1)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("tiny-bert", "minilm", "bert-small", "bert-medium")
QUICK_MODELS = ("tiny-bert", "minilm")
REFUSING = ("albert-base",)  # one shared layer: adapt_layers 0 < K < all is refused, by design
ADAPT = (1, 2, "all")
DATASET, SEQ_LEN = "mimic-cxr", 128
RESULTS = Path(__file__).resolve().parent / "results" / "adapt_layers.json"


def variants() -> dict[str, dict]:
    """Name -> mode, (expected) batch, physical chunk and whether that is radcore's default: non-private LoRA at its
    default, and DP-LoRA at 128 in chunks of 32, at 256 in chunks of 64 (large batches are the DP recipe) and at
    radcore's default (``radcore.config``; 256 in chunks of 32 since the recipe study)."""
    from radcore.config import DEFAULT_BATCH_SIZE, TrainConfig

    chunk = TrainConfig.__dataclass_fields__["physical_batch_size"].default
    default = (DEFAULT_BATCH_SIZE["dp-lora"], chunk)
    out = {"lora": {"mode": "lora", "batch": DEFAULT_BATCH_SIZE["lora"], "chunk": chunk, "default": True}}
    for batch, size in sorted({(128, 32), (256, 64), default}):
        out[f"dp-lora {batch}/{size}"] = {"mode": "dp-lora", "batch": batch, "chunk": size,
                                          "default": (batch, size) == default}
    return out


def _adapt(value: str) -> int | str:
    return value if value == "all" else int(value)


# ---- the child: one measurement, set up once, timed on command ------------------------------------------------

def _reply(payload: dict) -> None:
    """Hand freed heap back to the OS (glibc's ``malloc_trim``; the high-water mark keeps the peak), so that a model's
    waiting children do not all hold their peaks at once, then answer the parent."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to hand back this way
    print(json.dumps(payload), flush=True)


def child(args) -> None:
    """Set up one measurement, say ``ready``, then answer each command line on stdin with one JSON line: ``warmup``
    (train: one step, from which the peak memory counts), ``steps N`` (train: N timed steps) or ``prefix DIR``
    (prefix: compute the features into the empty cache DIR)."""
    import warnings

    import torch
    from harness import CPU, reset_rss_high_water, rss_rise_mb, timed_steps, training_batches, training_run

    from radcore.device import resolve_precision
    from radcore.prefix_cache import CACHE_ENV, prefix_features

    warnings.filterwarnings("ignore")
    adapt = _adapt(args.adapt)
    spec = variants()[args.variant or "lora"]
    precision = args.precision or resolve_precision("auto", CPU)
    data = training_batches(DATASET, args.data, reports=args.reports, model=args.model, seq_len=SEQ_LEN)
    run = training_run(spec["mode"], data, grouped=True, chunk=spec["chunk"], precision=precision, seq_len=SEQ_LEN,
                       model=args.model, adapt_layers=adapt, batch_size=spec["batch"])
    cache = run["prefix_cache"]
    ident = {"model": args.model, "adapt_layers": adapt, "threads": torch.get_num_threads(), "precision": precision}
    if args.child == "prefix":
        _reply({**ident, "ready": True})
        for line in sys.stdin:
            os.environ[CACHE_ENV] = line.split(maxsplit=1)[1].strip()
            _, record = prefix_features(run["net"], data, precision=precision, device=CPU)
            if record["hit"]:
                raise RuntimeError(f"the prefix cache {os.environ[CACHE_ENV]} was not empty")
            _reply({"reports": len(data), "seconds": record["seconds"], "megabytes": round(record["megabytes"], 1),
                    "frozen_layers": record["frozen_layers"]})
        return
    if cache is not None:
        # Memory-mapped features: an epoch reads every row, so they are read in whole first and the peak below is
        # training's own (LoRA's batches of 32 and DP's of 128 would otherwise touch different shares of the file).
        int(run["data"].inputs["features"].reshape(-1).view(torch.uint8).sum())
    _reply({**ident, "ready": True, "variant": args.variant, "mode": spec["mode"], "batch_size": spec["batch"],
            "chunk": run["chunk"], "default": spec["default"],
            "cache_mb": None if cache is None else round(cache["megabytes"], 1)})
    mark = reset_rss_high_water()
    for line in sys.stdin:
        if line.startswith("warmup"):  # first-step allocations and kernel choice; its memory counts in the peak
            mark = reset_rss_high_water()
            timed_steps(run, 1)
            _reply({"warm": True})
            continue
        seen, seconds = timed_steps(run, int(line.split()[1]))
        _reply({"reports": seen, "seconds": seconds, "steps": int(line.split()[1]),
                "peak_mem_mb": round(rss_rise_mb(mark), 1)})


# ---- the parent: start the children, alternate them, add up ----------------------------------------------------

class Measurement:
    """One child process and its running totals."""

    def __init__(self, kind: str, args, *, model: str, adapt, variant: str | None, env: dict, log_dir: Path,
                 tag: str = "", precision: str | None = None):
        cmd = [sys.executable, __file__, "--child", kind, "--model", model, "--adapt", str(adapt),
               "--data", str(args.data), "--reports", str(args.reports)] + (["--variant", variant] if variant else [])
        cmd += ["--precision", precision] if precision else []
        self.key = {"model": model, "adapt_layers": adapt, **({"variant": variant} if variant else {})}
        name = "-".join([kind, model, str(adapt), variant or "prefix", tag]).translate(str.maketrans(" /", "__"))
        self.log = log_dir / f"{name}.log"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=env, bufsize=1)
        self.info: dict = {}
        self.rounds: list[dict] = []
        self.error: str | None = None

    def _answer(self) -> dict | None:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = [x for x in self.log.read_text().strip().splitlines() if x.strip()]
            self.error = tail[-1].strip() if tail else f"exit status {self.proc.returncode}"
            return None
        return json.loads(line)

    def ready(self) -> None:
        answer = self._answer()
        if answer is not None:
            self.info = {k: v for k, v in answer.items() if k != "ready"}

    def ask(self, command: str, *, record: bool = True) -> None:
        if self.error is not None:
            return
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        if answer is not None and record:
            self.rounds.append(answer)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def row(self) -> dict:
        if self.error is not None:
            return {**self.key, "error": self.error}
        reports = sum(r["reports"] for r in self.rounds)
        seconds = sum(r["seconds"] for r in self.rounds)
        row = {**self.key, **self.info, "rounds": len(self.rounds), "reports": reports, "seconds": round(seconds, 2),
               "reports_per_s": round(reports / seconds, 3),
               "reports_per_s_by_round": [round(r["reports"] / r["seconds"], 2) for r in self.rounds]}
        if "peak_mem_mb" in self.rounds[-1]:
            row["steps_per_round"] = self.rounds[-1]["steps"]
            row["peak_mem_mb"] = max(r["peak_mem_mb"] for r in self.rounds)
        else:
            row.update(megabytes=self.rounds[-1]["megabytes"], frozen_layers=self.rounds[-1]["frozen_layers"])
        return row


LIVE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}  # glibc: blocks >= 128 KiB by mmap, handed back when freed


def live_peaks(args, model: str, keys: list[dict], env: dict, root: Path) -> dict[tuple, float]:
    """(K, variant) -> peak MB of live memory over one epoch of the corpus (every variant sees the same reports, the
    longest included), each in a fresh child under :data:`LIVE_ENV`, in fp32, one at a time. fp32, because bf16
    autocast on the CPU keeps per-shape kernel state that grows with every new (chunk, width) shape, and a Poisson
    batch's chunks take more shapes than LoRA's fixed batches: tensors, not kernel caches, are what the target
    compares (fp32 keeps the resident set flat from epoch to epoch)."""
    peaks = {}
    for key in keys:
        m = Measurement("train", args, model=model, adapt=key["adapt_layers"], variant=key["variant"],
                        env={**env, **LIVE_ENV}, log_dir=root, tag="live", precision="fp32")
        try:
            m.ready()
            m.ask("warmup", record=False)
            m.ask(f"steps {math.ceil(args.reports / variants()[key['variant']]['batch'])}")
        finally:
            m.close()
        if m.error is None:
            peaks[(key["adapt_layers"], key["variant"])] = m.rounds[-1]["peak_mem_mb"]
    return peaks


def _depth(model: str) -> int:
    from radcore.models import model_spec

    return int(model_spec(model).shape["num_hidden_layers"])


def measure_model(args, model: str, root: Path) -> tuple[list[dict], list[dict]]:
    """All of one model's measurements: children started together, then ``args.rounds`` alternating rounds."""
    env = {**os.environ, "RADCORE_CACHE": str(root / "shared")}  # the training children's cache (one fills it)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    ks = [k for k in ADAPT if k == "all" or k < _depth(model)]  # K >= depth adapts every layer: it is "all"
    prefix: list[Measurement] = []
    train: list[Measurement] = []
    try:
        prefix += [Measurement("prefix", args, model=model, adapt=k, variant=None, env=env, log_dir=root)
                   for k in ks[:-1]]
        train += [Measurement("train", args, model=model, adapt=k, variant=v, env=env, log_dir=root)
                  for k in ks for v in variants()]
        for m in prefix + train:
            m.ready()
        for m in train:  # one at a time: their first steps' peaks never overlap
            m.ask("warmup", record=False)
        for r in range(args.rounds):
            for m in prefix:
                fresh = root / f"fresh-{r}"
                m.ask(f"prefix {fresh}")
                shutil.rmtree(fresh, ignore_errors=True)
            for m in train:
                m.ask(f"steps {max(1, round(args.window / variants()[m.key['variant']]['batch']))}")
            print(f"{model}: round {r + 1}/{args.rounds} done ({time.strftime('%H:%M:%S')}, load average "
                  f"{os.getloadavg()[0]:.2f})", flush=True)
    finally:
        for m in prefix + train:
            m.close()
    rows = [m.row() for m in train]
    live = live_peaks(args, model, [m.key for m in train if m.error is None], env, root)
    for row in rows:
        if (row["adapt_layers"], row["variant"]) in live:
            row["live_mem_mb"] = live[(row["adapt_layers"], row["variant"])]
    return _ratios(rows), [m.row() for m in prefix]


def _ratios(rows: list[dict]) -> list[dict]:
    """DP-LoRA / LoRA at the same K (throughput, RSS and live peak memory); each variant's speed-up over itself at
    K = all."""
    by = {(r["model"], r["adapt_layers"], r["variant"]): r for r in rows if "error" not in r}
    for row in by.values():
        lora, full = by.get((row["model"], row["adapt_layers"], "lora")), by.get((row["model"], "all", row["variant"]))
        if lora:
            row["ratio_vs_lora"] = round(row["reports_per_s"] / lora["reports_per_s"], 3)
            base = lora["peak_mem_mb"]
            row["mem_ratio_vs_lora"] = round(row["peak_mem_mb"] / base, 3) if base > 0 else None
            if row.get("live_mem_mb") and lora.get("live_mem_mb"):
                row["live_mem_ratio_vs_lora"] = round(row["live_mem_mb"] / lora["live_mem_mb"], 3)
        if full:
            row["speedup_vs_all"] = round(row["reports_per_s"] / full["reports_per_s"], 3)
    return rows


def _refusal(model: str, adapt: int) -> str | None:
    """The error radcore raises for ``adapt`` top layers of ``model`` (None if it builds)."""
    from radcore.models import load_classifier, model_spec

    try:
        load_classifier(model_spec(model), num_labels=14, pretrained=False, adapt_layers=adapt)
    except ValueError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _table(rows: list[dict], prefix: list[dict]) -> str:
    pre, nan = {(p["model"], p["adapt_layers"]): p for p in prefix}, float("nan")
    head = (f"{'model':<12} {'K':>3} {'variant':<15} {'reports/s':>9} {'x LoRA':>7} {'peak MB':>8} {'x LoRA':>7} "
            f"{'live MB':>8} {'x LoRA':>7} {'x K=all':>8} {'prefix reports/s':>16}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            why = "refused" if r["variant"] == "all" else "failed"  # "all": the model refuses this K outright
            lines.append(f"{r['model']:<12} {r['adapt_layers']!s:>3} {r['variant']:<15} {why}: {r['error'][:90]}")
            continue
        p = pre.get((r["model"], r["adapt_layers"]), {})
        lines.append(f"{r['model']:<12} {r['adapt_layers']!s:>3} {r['variant']:<15} {r['reports_per_s']:>9.2f} "
                     f"{r.get('ratio_vs_lora', nan):>7.2f} {r['peak_mem_mb']:>8.0f} "
                     f"{r.get('mem_ratio_vs_lora') or nan:>7.2f} {r.get('live_mem_mb', nan):>8.0f} "
                     f"{r.get('live_mem_ratio_vs_lora', nan):>7.2f} {r.get('speedup_vs_all', nan):>8.2f} "
                     f"{p.get('reports_per_s', '-') if r['variant'] == 'lora' else '':>16}")
    return "\n".join(lines)


def _command() -> str:
    """This run's command line, less ``--note`` (kept in its own field)."""
    argv, out = sys.argv[1:], []
    while argv:
        arg = argv.pop(0)
        if arg == "--note":
            argv = argv[1:]
        elif not arg.startswith("--note="):
            out.append(arg)
    return shlex.join(["benchmarks/adapt_layers.py", *out])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_MODELS)}, shorter rounds")
    parser.add_argument("--models", nargs="+", help=f"registry names (default: {', '.join(MODELS)})")
    parser.add_argument("--reports", type=int, default=640, help="corpus size (the prefix is computed for all of it)")
    parser.add_argument("--window", type=int, default=None,
                        help="reports each measurement times per round, in whole steps (default 256; quick 128)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3; quick 2")
    parser.add_argument("--threads", type=int, help="torch threads per child (default: torch's, one per core); "
                        "1 is steadier on a machine other jobs share, and is how the grid's kernels run")
    parser.add_argument("--data", help="synthetic MIMIC-CXR corpus (default: written to a scratch folder)")
    parser.add_argument("--note", default="", help="a note on the machine (e.g. its other load), kept in the JSON")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=("train", "prefix"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--adapt", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from harness import machine

    args.window = args.window or (128 if args.quick else 256)
    args.rounds = args.rounds or (2 if args.quick else 3)
    start, load_start = time.perf_counter(), os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="radcore-adapt-layers-"))
    if args.data is None:
        from radcore.data.synth import write_corpus

        args.data = write_corpus(DATASET, n=2 * args.reports, seed=0, out=root / "corpus")
    models = args.models or (QUICK_MODELS if args.quick else MODELS)
    rows, prefix = [], []
    try:
        for model in models:
            train_rows, prefix_rows = measure_model(args, model, root)
            rows += train_rows
            prefix += prefix_rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for model in REFUSING:
        for k in ADAPT[:-1]:
            error = _refusal(model, k)
            if error:
                rows.append({"model": model, "adapt_layers": k, "variant": "all", "error": error})
    threads = next((r["threads"] for r in rows if "threads" in r), None)
    payload = {"machine": {**machine("cpu"), "torch_threads": threads}, "when": time.strftime("%Y-%m-%d %H:%M"),
               "command": _command(), "note": args.note,
               "load_average_start": [round(x, 2) for x in load_start],
               "load_average_end": [round(x, 2) for x in os.getloadavg()],
               "dataset": f"synthetic {DATASET}", "reports": args.reports, "seq_len": SEQ_LEN, "rounds": args.rounds,
               "window": args.window, "variants": variants(), "layers": {m: _depth(m) for m in (*models, *REFUSING)},
               "seconds": round(time.perf_counter() - start), "rows": rows, "prefix": prefix}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"{payload['machine']['name']} ({threads} threads per child), load average at start {load_start[0]:.2f}; "
          f"{args.rounds} rounds of about {args.window} reports per measurement, {payload['seconds']} s")
    print(_table(rows, prefix))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
