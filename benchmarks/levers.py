"""Before/after throughput of the speed levers radcore keeps, on a real-length synthetic corpus.

Levers: length-aware batching (non-DP: length-grouped batches; DP: each Poisson batch split into
length-sorted chunks, each trimmed to its own longest report) and bf16 autocast (where the hardware has
it). Every variant trains the same model on the same reports; rounds alternate between variants so the
machine's load hits all alike. Prints reports/s per variant and the speed-up over the baseline.

    .venv/bin/python benchmarks/levers.py            # on a fresh synthetic MIMIC-CXR corpus
    .venv/bin/python benchmarks/levers.py --dataset ct-rate --data DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

# kernel_env.py imports CPU, _round, _variant and training_batches from here
from harness import CPU, training_batches
from harness import timed_steps as _round
from harness import training_run as _variant

from radcore.device import native_bf16


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mimic-cxr")
    parser.add_argument("--data", help="corpus directory (default: a synthetic corpus written to a scratch folder)")
    parser.add_argument("--model", default="minilm", help="shape (random init)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--reports", type=int, default=640)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "levers.json")
    args = parser.parse_args()
    if args.data is None:
        from radcore.data.synth import write_corpus

        args.data = write_corpus(args.dataset, n=2 * args.reports, seed=0, out=Path(tempfile.mkdtemp()) / "corpus")
    data = training_batches(args.dataset, args.data, reports=args.reports, model=args.model, seq_len=args.seq_len)
    bf16 = ["fp32", "bf16"] if native_bf16(CPU) else ["fp32"]
    variants = {(mode, grouped, precision): _variant(mode, data, grouped=grouped, chunk=32, precision=precision,
                                                     seq_len=args.seq_len, model=args.model)
                for mode in ("lora", "dp-lora") for grouped in (False, True) for precision in bf16}
    totals = {key: [0, 0.0] for key in variants}
    for _ in range(args.rounds):
        for key, run in variants.items():
            seen, seconds = _round(run, args.steps)
            totals[key][0] += seen
            totals[key][1] += seconds
    rows = []
    for (mode, grouped, precision), (seen, seconds) in totals.items():
        base = totals[(mode, False, "fp32")]
        rate = seen / seconds
        rows.append({"dataset": args.dataset, "model": args.model, "mode": mode, "length_aware": grouped,
                     "precision": precision, "seq_len": args.seq_len, "reports_per_s": round(rate, 2),
                     "speedup": round(rate / (base[0] / base[1]), 2)})
    payload = {"when": time.strftime("%Y-%m-%d %H:%M"), "threads": torch.get_num_threads(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"{'mode':<8} {'length-aware':<13} {'precision':<9} {'reports/s':>9} {'speed-up':>8}")
    for r in rows:
        print(f"{r['mode']:<8} {str(r['length_aware']):<13} {r['precision']:<9} {r['reports_per_s']:>9.2f} "
              f"{r['speedup']:>8.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
