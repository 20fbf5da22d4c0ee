"""Noise calibration with radcore's vectorised RDP (radcore/rdp.py) against Opacus' own RDP accountant, side by
side in one run: the seconds each takes to plan quick's DP-LoRA cell (LP-FT, two phases composed) and the noise
multipliers and epsilons they arrive at. Opacus' calibration is radcore's own bisection, fed by Opacus'
``RDPAccountant`` at the same orders, which is what ``radcore.privacy`` did before radcore/rdp.py.

    python benchmarks/accounting.py                     # quick's MIMIC-CXR-sized cell, epsilon 0.01 .. 10
    python benchmarks/accounting.py --n-train 220000    # a MIMIC-CXR-sized training set
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

from harness import machine
from opacus.accountants import RDPAccountant

import radcore.privacy as privacy

RESULTS = Path(__file__).resolve().parent / "results" / "accounting.json"


def opacus_composed_epsilon(history, *, delta, accountant="rdp"):
    """Epsilon by Opacus' RDP accountant at radcore's orders (its loop over every term of every order)."""
    acc = RDPAccountant()
    acc.history = [tuple(h) for h in history]
    return float(acc.get_epsilon(delta=delta, alphas=list(privacy.RDP_ORDERS)))


def plan(epsilon: float, n_train: int, epochs: int, lp_epochs: int) -> tuple[float, list]:
    start = time.perf_counter()
    plans = privacy.plan_phases(epsilon=epsilon, n_train=n_train, max_grad_norm=0.1,
                                phases=[(1024, lp_epochs, 0.5), (256, epochs, 0.5)])
    return time.perf_counter() - start, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=4205, help="training reports (quick's synthetic MIMIC-CXR)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lp-epochs", type=int, default=20)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0])
    args = parser.parse_args()
    rows = []
    print(f"{'epsilon':>8} {'radcore s':>10} {'Opacus s':>9} {'ratio':>6}  noise multipliers (radcore | Opacus)"
          "  epsilon spent (radcore | Opacus)")
    for epsilon in args.epsilons:
        ours_s, ours = plan(epsilon, args.n_train, args.epochs, args.lp_epochs)
        with mock.patch.object(privacy, "composed_epsilon", opacus_composed_epsilon):
            theirs_s, theirs = plan(epsilon, args.n_train, args.epochs, args.lp_epochs)
        history = lambda plans: [(p.noise_multiplier, p.sample_rate, p.steps) for p in plans]  # noqa: E731
        row = {"epsilon": epsilon, "radcore_seconds": ours_s, "opacus_seconds": theirs_s,
               "speedup": theirs_s / ours_s, "radcore_noise": [p.noise_multiplier for p in ours],
               "opacus_noise": [p.noise_multiplier for p in theirs],
               "radcore_epsilon": privacy.composed_epsilon(history(ours), delta=ours[0].delta),
               "opacus_epsilon_of_radcore_plan": opacus_composed_epsilon(history(ours), delta=ours[0].delta)}
        rows.append(row)
        print(f"{epsilon:>8g} {ours_s:>10.2f} {theirs_s:>9.2f} {row['speedup']:>6.1f}  "
              f"{', '.join(f'{s:.4g}' for s in row['radcore_noise'])} | "
              f"{', '.join(f'{s:.4g}' for s in row['opacus_noise'])}  "
              f"{row['radcore_epsilon']:.5g} | {row['opacus_epsilon_of_radcore_plan']:.5g}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine("cpu"), "n_train": args.n_train, "epochs": args.epochs,
                                   "lp_epochs": args.lp_epochs, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
