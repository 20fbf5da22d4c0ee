"""Training throughput and peak memory: non-private LoRA vs DP-LoRA (each Opacus per-sample-gradient mode)
vs full fine-tuning, for every model shape, measured side by side in one run.

Every (model, mode) trains the same random-init model on the same random token batches at the same batch
size and sequence length (every token real: no padding, the worst case of a report at ``--seq-len``),
in radcore's precision (bf16 autocast where the hardware has it). Each measurement runs in its own child
process, so its peak memory is its own (CUDA: ``max_memory_allocated``; CPU: the rise of the process'
resident-set high-water mark over its size before the first step). Rounds alternate the modes, so the
machine's load hits all of them alike. Writes ``benchmarks/results/latest.json`` and prints a table of
reports/s and memory with their ratios to non-private LoRA.

    make bench            # every model shape
    make bench QUICK=1    # tiny-bert and minilm: a few minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
from harness import machine as _machine
from harness import peak_mb as _peak_mb
from harness import rss_high_water_kb

MODELS = ("tiny-bert", "minilm", "bert-small", "bert-medium", "albert-base")
QUICK_MODELS = ("tiny-bert", "minilm")
MODES = ("lora", "dp-lora/hooks", "dp-lora/functorch", "dp-lora/ghost", "full")
NUM_LABELS = 14
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


class MaskedBCE(torch.nn.Module):
    """radcore's per-report loss as a criterion, the form Opacus' ghost clipping asks for:
    ``target`` is labels and label mask side by side; ``reduction="none"`` gives one loss per report."""

    reduction = "mean"

    def forward(self, logits, target):
        labels, mask = target.chunk(2, dim=1)
        per_cell = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
        per_report = (per_cell * mask).sum(1) / labels.shape[1]
        return per_report if self.reduction == "none" else per_report.mean()


def measure(model: str, mode: str, *, batch: int, seq_len: int, steps: int, device: str) -> dict:
    """Train ``steps`` steps (after one warm-up step) and return the throughput row. Runs in a child process."""
    from opacus import PrivacyEngine

    from radcore.device import autocast, resolve_device, resolve_precision
    from radcore.models import LoraSettings, load_classifier, model_spec, wrap_lora

    warnings.filterwarnings("ignore")
    dev = resolve_device(device)
    precision = resolve_precision("auto", dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    spec = model_spec(model)
    torch.manual_seed(0)
    net = load_classifier(spec, num_labels=NUM_LABELS, pretrained=False, device=dev)
    if mode != "full":
        net = wrap_lora(net, family=spec.family, settings=LoraSettings())
    n = batch * (steps + 1)
    data = torch.utils.data.TensorDataset(torch.randint(1000, 5000, (n, seq_len)),
                                          torch.ones(n, seq_len, dtype=torch.long),
                                          torch.randint(0, 2, (n, NUM_LABELS)).float(), torch.ones(n, NUM_LABELS))
    loader = torch.utils.data.DataLoader(data, batch_size=batch)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    criterion = MaskedBCE()
    if mode.startswith("dp-"):
        # Fixed-size batches, so that every mode sees the same shapes (Poisson sizes only add noise here).
        private = PrivacyEngine().make_private(
            module=net, optimizer=optimizer, data_loader=loader, criterion=criterion, noise_multiplier=1.0,
            max_grad_norm=1.0, poisson_sampling=False, grad_sample_mode=mode.split("/")[1])
        # ghost clipping also wraps the criterion (two backward passes behind loss.backward())
        net, optimizer, criterion, loader = private if len(private) == 4 else (*private[:2], criterion, private[2])
    rss_before = rss_high_water_kb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    seen, start = 0, None
    for k, (input_ids, attention_mask, labels, mask) in enumerate(loader):
        if k == 1:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
        with autocast(dev, precision):
            logits = net(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev)).logits
        loss = criterion(logits, torch.cat([labels, mask], 1).to(dev))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += len(input_ids) if k else 0
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return {"model": model, "mode": mode, "device": str(dev), "precision": precision, "batch_size": batch,
            "seq_len": seq_len, "steps": steps, "reports": seen, "seconds": seconds,
            "peak_mem_mb": round(_peak_mb(dev, rss_before), 1)}


def _child(args) -> dict:
    """One measurement in a fresh process; a mode that fails reports its error instead."""
    cmd = [sys.executable, __file__, "--child", args.model_mode, "--batch-size", str(args.batch_size),
           "--seq-len", str(args.seq_len), "--steps", str(args.steps), "--device", args.device]
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": done.stderr.strip().splitlines()[-1:]}


def _table(rows: list[dict]) -> str:
    head = f"{'model':<12} {'mode':<18} {'reports/s':>9} {'x LoRA':>7} {'peak MB':>8} {'x LoRA':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:<12} {r['mode']:<18} failed: {r['error']}")
            continue
        lines.append(f"{r['model']:<12} {r['mode']:<18} {r['reports_per_s']:>9.2f} {r['ratio_vs_lora']:>7.2f} "
                     f"{r['peak_mem_mb']:>8.0f} {r['mem_ratio_vs_lora']:>7.2f}")
    return "\n".join(lines)


def run(models, modes, *, batch: int, seq_len: int, steps: int, rounds: int, device: str) -> list[dict]:
    """Every (model, mode) ``rounds`` times, modes alternating; rows with ratios to non-private LoRA."""
    totals: dict[tuple, dict] = {}
    for _ in range(rounds):
        for model in models:
            for mode in modes:
                args = argparse.Namespace(model_mode=f"{model}:{mode}", batch_size=batch, seq_len=seq_len,
                                          steps=steps, device=device)
                row = _child(args)
                key = (model, mode)
                if "error" in row:
                    totals[key] = {"model": model, "mode": mode, "error": " ".join(row["error"])}
                    continue
                acc = totals.setdefault(key, {**row, "reports": 0, "seconds": 0.0, "peak_mem_mb": 0.0})
                if "error" not in acc:
                    acc["reports"] += row["reports"]
                    acc["seconds"] += row["seconds"]
                    acc["peak_mem_mb"] = max(acc["peak_mem_mb"], row["peak_mem_mb"])
    rows = list(totals.values())
    for row in rows:
        if "error" not in row:
            row["reports_per_s"] = round(row["reports"] / row["seconds"], 3)
    for row in rows:
        base = totals.get((row["model"], "lora"), {})
        if "error" in row or "reports_per_s" not in base:
            continue
        row["ratio_vs_lora"] = round(row["reports_per_s"] / base["reports_per_s"], 3)
        row["mem_ratio_vs_lora"] = round(row["peak_mem_mb"] / base["peak_mem_mb"], 3) if base["peak_mem_mb"] else None
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_MODELS)}")
    parser.add_argument("--models", nargs="+", help=f"registry names (default: {', '.join(MODELS)})")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 (CPU) or 64 (GPU)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default 3 CPU, 20 GPU)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    batch = args.batch_size or (64 if gpu else 32)
    steps = args.steps or (20 if gpu else 3)
    if args.child:
        model, mode = args.child.split(":")
        try:
            row = measure(model, mode, batch=batch, seq_len=args.seq_len, steps=steps, device=args.device)
        except Exception as exc:  # a mode Opacus cannot run on this model: reported, not fatal
            traceback.print_exc(file=sys.stderr)
            print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
            sys.exit(1)
        print(json.dumps(row))
        return
    models = args.models or (QUICK_MODELS if args.quick else MODELS)
    start = time.perf_counter()
    rows = run(models, args.modes, batch=batch, seq_len=args.seq_len, steps=steps, rounds=args.rounds,
               device=args.device)
    machine = _machine(args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "when": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds,
               "seconds": round(time.perf_counter() - start), "rows": rows}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"{machine['name']} ({machine['device']}, {machine['torch_threads']} threads), batch {batch}, "
          f"{args.seq_len} tokens, {args.rounds} rounds of {steps} steps")
    print(_table(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
