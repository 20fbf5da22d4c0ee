"""Training throughput of a process that inherits Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` vs one that does not.

Dask's nanny starts its workers with that variable; a papermill kernel a worker starts would inherit it,
and glibc would then return freed memory to the OS after each step and map it again. radcore's grid
drops it from the kernels' environment (``radcore.grid.runner.set_kernel_environment``). This script
measures why: LoRA and DP-LoRA steps (MiniLM shape, a real-length synthetic MIMIC-CXR corpus, bf16 where
native, length-aware batches, one thread, as a grid kernel runs them) in child processes with and without
the variable, rounds alternating. Writes ``results/kernel_env.json``.

    .venv/bin/python benchmarks/kernel_env.py [--steps 3 --rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DASK_ENV = {"MALLOC_TRIM_THRESHOLD_": "65536"}


def child(args) -> None:
    """Measure both modes in this process; print {mode: [reports, seconds]} as JSON."""
    import torch

    from levers import CPU, _round, _variant, training_batches
    from radcore.device import resolve_precision

    data = training_batches("mimic-cxr", args.data, reports=args.reports, model=args.model, seq_len=128)
    precision = resolve_precision("auto", CPU)
    out = {}
    for mode in ("lora", "dp-lora"):
        run = _variant(mode, data, grouped=True, chunk=32, precision=precision, seq_len=128, model=args.model)
        _round(run, 1)  # warm-up: first-step allocations and kernel selection
        out[mode] = list(_round(run, args.steps))
    print(json.dumps({"threads": torch.get_num_threads(), "precision": precision, "rates": out}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="shape (random init)")
    parser.add_argument("--reports", type=int, default=640)
    parser.add_argument("--steps", type=int, default=3, help="steps per mode and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", help="synthetic MIMIC-CXR corpus (default: written to a scratch folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "kernel_env.json")
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.data is None:
        from radcore.data.synth import write_corpus

        args.data = str(write_corpus("mimic-cxr", n=2 * args.reports, seed=0, out=Path(tempfile.mkdtemp()) / "c"))
    base = {k: v for k, v in os.environ.items() if k not in DASK_ENV}
    base.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one thread, as each of the grid's kernels
    envs = {"without": base, "with Dask's MALLOC_TRIM_THRESHOLD_": {**base, **DASK_ENV}}
    totals = {(env, mode): [0, 0.0] for env in envs for mode in ("lora", "dp-lora")}
    command = [sys.executable, __file__, "--child", "--data", args.data, "--model", args.model,
               "--reports", str(args.reports), "--steps", str(args.steps)]
    for _ in range(args.rounds):
        for env, environ in envs.items():
            result = json.loads(subprocess.run(command, env=environ, check=True, capture_output=True,
                                               text=True).stdout.strip().splitlines()[-1])
            for mode, (seen, seconds) in result["rates"].items():
                totals[(env, mode)][0] += seen
                totals[(env, mode)][1] += seconds
    rows = []
    for (env, mode), (seen, seconds) in totals.items():
        clean = totals[("without", mode)]
        rate = seen / seconds
        rows.append({"model": args.model, "mode": mode, "environment": env, "threads": result["threads"],
                     "precision": result["precision"], "reports_per_s": round(rate, 2),
                     "ratio_vs_without": round(rate / (clean[0] / clean[1]), 2)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, indent=2) + "\n")
    print(f"{'mode':<8} {'environment':<36} {'reports/s':>9} {'x without':>9}")
    for r in rows:
        print(f"{r['mode']:<8} {r['environment']:<36} {r['reports_per_s']:>9.2f} {r['ratio_vs_without']:>9.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
