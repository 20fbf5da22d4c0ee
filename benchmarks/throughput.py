"""Training throughput of non-private LoRA vs DP-LoRA (Opacus hooks), measured side by side.

Both modes train the same model on the same random token batches at the same batch size and sequence
length; rounds alternate between modes so machine load hits both alike. Prints reports/s and the ratio.

    .venv/bin/python benchmarks/throughput.py --model minilm --batch-size 32 --seq-len 128
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from radcore.models import load_classifier, model_spec, wrap_lora, LoraSettings
from radcore.privacy import plan_privacy
from radcore.train import _make_private, masked_bce

NUM_LABELS = 14


def _setup(mode: str, spec, batch: int, seq: int, n_batches: int):
    torch.manual_seed(0)
    model = wrap_lora(load_classifier(spec, num_labels=NUM_LABELS, pretrained=False), family=spec.family,
                      settings=LoraSettings())
    data = torch.utils.data.TensorDataset(torch.randint(1000, 5000, (batch * n_batches, seq)),
                                          torch.ones(batch * n_batches, seq, dtype=torch.long),
                                          torch.randint(0, 2, (batch * n_batches, NUM_LABELS)).float(),
                                          torch.ones(batch * n_batches, NUM_LABELS))
    loader = torch.utils.data.DataLoader(data, batch_size=batch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    if mode == "dp-lora":
        plan = plan_privacy(epsilon=1.0, n_train=len(data), batch_size=batch, epochs=100, max_grad_norm=1.0)
        model, optimizer, loader, _ = _make_private(model, optimizer, loader, plan, seed=0)
    return model, optimizer, loader


def _round(model, optimizer, loader) -> tuple[int, float]:
    seen, start = 0, time.perf_counter()
    for input_ids, attention_mask, labels, mask in loader:
        masked_bce(model(input_ids=input_ids, attention_mask=attention_mask).logits, labels, mask).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += len(input_ids)
    return seen, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batches", type=int, default=3, help="batches per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    spec = model_spec(args.model)
    runs = {mode: _setup(mode, spec, args.batch_size, args.seq_len, args.batches) for mode in ("lora", "dp-lora")}
    totals = {mode: [0, 0.0] for mode in runs}
    for _ in range(args.rounds):
        for mode, run in runs.items():
            seen, seconds = _round(*run)
            totals[mode][0] += seen
            totals[mode][1] += seconds
    rate = {mode: seen / seconds for mode, (seen, seconds) in totals.items()}
    print(json.dumps({"model": args.model, "batch_size": args.batch_size, "seq_len": args.seq_len,
                      "threads": torch.get_num_threads(), "reports_per_s": rate,
                      "dp_over_lora": rate["dp-lora"] / rate["lora"]}, indent=2))


if __name__ == "__main__":
    main()
