"""Study script: what each training lever does to test weighted F1, measured through ``radcore.train.train``.

Studies (``--study``):

* ``adapt``: LoRA at adapt_layers 1, 2 and all, 1,000 reports x 3 epochs, at three learning rates (quick's 1e-2,
  radcore's LoRA default 3e-3, and 1e-3), on both synthetic corpora (what the CPU default trades for speed; one seed).
* ``levers``: the DP recipe, one lever at a time from a baseline, at epsilon 1 and 10: expected batch, epochs,
  learning rate, clip norm, optimizer (AdamW, SGD with momentum, DP-AdamBC), head initialisation, LP-FT and its
  budget split, an EMA of the weights, the head's public centre (radcore.centre); the DP head beside them. No lever reads private data outside the accounted mechanism: every choice is scored on
  the test split once, with the fixed threshold; nothing is selected on validation data.
* ``heads``: the linear head on the frozen pooled features (head modes, and LP-FT's first phase), DP at epsilon
  0.1, 1 and 10 and non-private, at its batch, learning rate, epochs and centring, on both synthetic corpora: a
  step there costs milliseconds, so the head can take large batches and many epochs.
* ``data``: the DP minus LoRA gap against the number of training reports: DP-LoRA and the DP head at epsilon 0.1, 1
  and 10 (quick's LoRA and DP head rows, radcore's DP-LoRA defaults).
* ``epochs``: at the data study's largest n, DP-LoRA with fewer epochs (1 and 2; the data study's rows have 3) and
  LoRA with fewer (2 and 3; the data study's have 6): whether more reports seen fewer times buy the same F1 for
  less compute, the trade ``quick`` makes at about 10,000 reports; and, on MIMIC-CXR, DP-LoRA at 1, 2 and 3 epochs
  without dropout (radcore's DP default since the ``dropout`` study; the other DP rows had MiniLM's own).
* ``tokens``: TF-IDF + logistic regression on only the first 64, 128 or 256 tokens of each report (MiniLM's
  tokenizer, decoded back to text) beside all of it, at the data study's largest n: how much of the baseline's lead
  is the text a 64- or 128-token model never sees.
* ``dropout``: every dropout of the trained model (encoder layer, attention, LoRA branch, head) at 0.1, MiniLM's
  own, or off: DP-LoRA at epsilon 1 and 10 (two seeds), the DP head, and non-private LoRA, on both synthetic corpora.
* ``targets``: which weights of the top layer LoRA adapts, at the data study's largest n on MIMIC-CXR: attention
  query and value (radcore's default), the feed-forward block alone (the cached prefix could then run through the
  top layer's attention, about half of a step's compute), or every linear layer; LoRA as in ``quick`` and DP-LoRA
  at epsilon 1 with radcore's DP defaults.
* ``phases``: LP-FT's two phases at 4,000 synthetic MIMIC-CXR reports (where the DP head alone beats DP-LoRA): the
  head phase's share of the budget and its epochs, and the tuning phase's learning rate, beside the DP head given
  the whole budget.

Each finished row is appended to ``benchmarks/results/recipe.json`` at once (a rerun skips rows it has), and the
study's table is printed and written as markdown to ``book/generated/recipe_<study>.md``, which the book includes:
every number on those pages has this one producer. Corpora, under ``data/synthetic/recipe``: the 5,200 / 5,300-report
ones ``quick`` used before it grew to about 10,000 training reports (rows tagged ``quick``), or ``--n`` reports. Run
with one thread per process on a shared machine (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "recipe.json"
TABLES = ROOT / "book" / "generated"
DATASETS = ("mimic-cxr", "ct-rate")
MAX_LENGTH = {"mimic-cxr": 128, "ct-rate": 64}

# Every lever departs from the DP-LoRA settings radcore had before this study (clip 1.0, no LP-FT, no centring), at
# quick's shape (top layer over the cached prefix, 3 epochs); "radcore default" is the recipe radcore now ships.
DP_BASE = {"mode": "dp-lora", "adapt_layers": 1, "epochs": 3, "batch_size": 256, "physical_batch_size": 64,
           "learning_rate": 1e-2, "max_grad_norm": 1.0, "lp_ft": 0.0, "centre": False}
LEVERS = {
    "before: clip 1.0, no LP-FT": {},
    "clip 0.1": {"max_grad_norm": 0.1},
    "LP-FT 0.5": {"lp_ft": 0.5},
    "batch 1024": {"batch_size": 1024},
    "epochs 6": {"epochs": 6},
    "SGD momentum 0.9 (lr 0.5)": {"optimizer": "sgd", "learning_rate": 0.5},
    "zero head": {"head_init": "zero"},
    "clip 0.1, LP-FT 0.5": {"max_grad_norm": 0.1, "lp_ft": 0.5},
    "clip 0.1, LP-FT 0.3": {"max_grad_norm": 0.1, "lp_ft": 0.3},
    "clip 0.1, LP-FT 0.5, DP-AdamBC": {"max_grad_norm": 0.1, "lp_ft": 0.5, "optimizer": "adambc"},
    "clip 0.1, LP-FT 0.5, EMA 0.9": {"max_grad_norm": 0.1, "lp_ft": 0.5, "ema": 0.9},
    "radcore default: clip 0.1, LP-FT 0.5, public centre": {"max_grad_norm": 0.1, "lp_ft": 0.5, "centre": True},
    "radcore default + epochs 6": {"max_grad_norm": 0.1, "lp_ft": 0.5, "centre": True, "epochs": 6},
    "SGD momentum 0.9 (lr 5), clip 0.1": {"optimizer": "sgd", "learning_rate": 5.0, "max_grad_norm": 0.1},
}
# The head study: each DP head departs from radcore's head settings before it (batch 256, lr 0.05, 20 epochs).
DP_HEADS = {
    "before: batch 256, lr 0.05, 20 epochs": {"batch_size": 256, "learning_rate": 0.05, "epochs": 20},
    "batch 256, lr 0.2, 20 epochs": {"batch_size": 256, "learning_rate": 0.2, "epochs": 20},
    "batch 1024, lr 0.05, 80 epochs": {"batch_size": 1024, "learning_rate": 0.05, "epochs": 80},
    "radcore default: batch 1024, lr 0.2, 80 epochs": {"batch_size": 1024, "learning_rate": 0.2, "epochs": 80},
    "batch 1024, lr 0.5, 80 epochs": {"batch_size": 1024, "learning_rate": 0.5, "epochs": 80},
    "batch 1024, lr 0.2, 160 epochs": {"batch_size": 1024, "learning_rate": 0.2, "epochs": 160},
    "batch 4096, lr 0.2, 200 epochs": {"batch_size": 4096, "learning_rate": 0.2, "epochs": 200},
}
HEADS = {
    "before: batch 64, lr 0.01, 20 epochs, raw features": {"batch_size": 64, "learning_rate": 0.01, "epochs": 20,
                                                          "centre": False},
    "batch 256, lr 0.05, 80 epochs, raw features": {"batch_size": 256, "learning_rate": 0.05, "epochs": 80,
                                                    "centre": False},
    "radcore default: batch 256, lr 0.05, 80 epochs, centred": {"batch_size": 256, "learning_rate": 0.05,
                                                                "epochs": 80, "centre": True},
}
LEVER_DATASETS = ("mimic-cxr",)  # one corpus: each DP-LoRA cell costs minutes on the CPU
# The data study compares quick's LoRA row and DP-LoRA with radcore's default recipe as they were at 4,200 reports
# (6 LoRA epochs, 3 DP epochs); quick now trains 3 and 2 over about 10,000.
QUICK_LORA = {"mode": "lora", "adapt_layers": 1, "epochs": 6, "learning_rate": 1e-2, "physical_batch_size": 64}
DP_DEFAULT = {"mode": "dp-lora", "adapt_layers": 1, "epochs": 3, "physical_batch_size": 64}
QUICK_DP_HEAD = {"mode": "dp-head", "epochs": 80, "physical_batch_size": 1024}
ADAPT_LEARNING_RATES = (1e-2, 3e-3, 1e-3)  # quick's LoRA, radcore's LoRA default, and a tenth of quick's
DATA_MODES = {"LoRA": QUICK_LORA, "DP-LoRA": DP_DEFAULT, "DP head": QUICK_DP_HEAD}
DATA_SIZES = (500, 1000, 2000, 4000, 10_000)
# Reports per corpus of the studies tagged "quick" (adapt, levers, heads, dropout): quick's corpora until it grew
# to about 10,000 training reports, about 4,200 training reports each.
QUICK_BEFORE = {"mimic-cxr": 5200, "ct-rate": 5300}
DATA_CORPUS = 13_200  # reports per synthetic corpus of the data study: over 10,000 in either training split
EPOCH_STUDY = {"LoRA": (2, 3), "DP-LoRA": (1, 2)}  # at max(DATA_SIZES) reports
EPOCHS_NO_DROPOUT = (1, 2, 3)  # DP-LoRA without dropout: half, quick's epochs at 10,000 reports, the data study's
# LoRA's target modules (peft names; "layer.5" is MiniLM's top layer, the one adapt_layers 1 adapts).
LORA_TARGETS = {"attention query, value (default)": None,
                "feed-forward only": ["intermediate.dense", "layer.5.output.dense"],
                "every linear layer": ["query", "key", "value", "dense"]}
TOKEN_WINDOWS = (64, 128, 256, None)  # None: the whole report
PHASE_N = 4000  # the data study's size where the DP head (0.879 / 0.746) beat DP-LoRA (0.862 / 0.651), MIMIC-CXR
PHASES = {  # each departs from radcore's DP-LoRA defaults (LP-FT 0.5, a 20-epoch head phase, tuning step 1e-2)
    "radcore default: LP-FT 0.5, head phase 20 epochs, lr 0.01": {},
    "LP-FT 0.8": {"lp_ft": 0.8},
    "head phase 80 epochs": {"lp_epochs": 80},
    "LP-FT 0.8, head phase 80 epochs": {"lp_ft": 0.8, "lp_epochs": 80},
    "tuning lr 0.003": {"learning_rate": 3e-3},
}
DROPOUTS = {"dropout 0.1": 0.1, "no dropout": 0.0}  # every dropout of the trained model; MiniLM's own: 0.1
DROPOUT_SEEDS = (0, 1)


def _studies(epsilons=(1.0, 10.0)) -> dict[str, list[tuple[str, str, dict]]]:
    """study -> [(dataset, row name, TrainConfig overrides)]."""
    adapt = [(d, f"LoRA adapt_layers {k}" + ("" if lr == QUICK_LORA["learning_rate"] else f", lr {lr:g}"),
              {**QUICK_LORA, "adapt_layers": k, "epochs": 3, "max_train_reports": 1000, "learning_rate": lr})
             for lr in ADAPT_LEARNING_RATES for d in DATASETS for k in (1, 2, "all")]
    levers = [(d, f"{name} · ε={eps:g}", {**DP_BASE, **over, "epsilon": eps})
              for d in LEVER_DATASETS for eps in epsilons for name, over in LEVERS.items()]
    levers += [(d, f"dp-head{clip} · ε={eps:g}", {"mode": "dp-head", "epsilon": eps, "epochs": 20,
                                                  "physical_batch_size": 256, **over})
               for d in LEVER_DATASETS for eps in epsilons
               for clip, over in ((", clip 1.0", {"max_grad_norm": 1.0, "centre": False}),
                                  (", clip 0.1", {"max_grad_norm": 0.1, "centre": False}),
                                  (", clip 0.1, public centre (default)", {"max_grad_norm": 0.1, "centre": True}))]
    heads = [(d, f"DP head {name} · ε={eps:g}", {"mode": "dp-head", "epsilon": eps, "physical_batch_size": 1024,
                                                   **over})
             for d in DATASETS for eps in (0.1, 1.0, 10.0) for name, over in DP_HEADS.items()]
    heads += [(d, f"head {name}", {"mode": "head", "physical_batch_size": 1024, **over})
              for d in DATASETS for name, over in HEADS.items()]
    data = [(d, f"{mode} n={n}" + (f" · ε={eps:g}" if eps else ""),
             {**DATA_MODES[mode], "max_train_reports": n, **({"epsilon": eps} if eps else {})})
            for n in DATA_SIZES for d in DATASETS  # smallest first: a cut-short run has both
            for mode, eps in (("LoRA", None), *((dp, e) for dp in ("DP-LoRA", "DP head") for e in (0.1, 1.0, 10.0)))]
    n = max(DATA_SIZES)
    epochs = [(d, f"{mode} n={n}, {e} epoch{'s' if e > 1 else ''}" + (f" · ε={eps:g}" if eps else ""),
               {**DATA_MODES[mode], "max_train_reports": n, "epochs": e, **({"epsilon": eps} if eps else {})})
              for d in DATASETS for mode, eps in (("LoRA", None), *(("DP-LoRA", e) for e in (0.1, 1.0, 10.0)))
              for e in EPOCH_STUDY[mode]]
    epochs += [(d, f"DP-LoRA n={n}, {e} epoch{'s' if e > 1 else ''}, no dropout · ε={eps:g}",  # the DP default
                {**DP_DEFAULT, "max_train_reports": n, "epochs": e, "epsilon": eps, "dropout": 0.0})
               for d in LEVER_DATASETS for eps in (0.1, 1.0, 10.0) for e in EPOCHS_NO_DROPOUT]
    tokens = [(d, "TF-IDF, " + (f"first {t} tokens" if t else "whole report"),
               {"mode": "tfidf", "max_train_reports": n, **({"tokens": t} if t else {})})
              for d in DATASETS for t in TOKEN_WINDOWS]
    phases = [(d, f"DP-LoRA {name} · ε={eps:g}", {**DP_DEFAULT, **over, "max_train_reports": PHASE_N, "epsilon": eps})
              for d in LEVER_DATASETS for eps in epsilons for name, over in PHASES.items()]
    phases += [(d, f"DP head, the whole budget · ε={eps:g}", {**QUICK_DP_HEAD, "max_train_reports": PHASE_N,
                                                              "epsilon": eps})
               for d in LEVER_DATASETS for eps in epsilons]
    dropout = [(d, f"{mode} · {name}" + (f" · ε={eps:g}" if eps else "") + f" · seed {seed}",
                {**DATA_MODES[mode], **({"epsilon": eps} if eps else {}), "dropout": p, "seed": seed})
               for d in DATASETS
               for mode, eps, seeds in (("DP-LoRA", 1.0, DROPOUT_SEEDS), ("DP-LoRA", 10.0, DROPOUT_SEEDS),
                                        ("DP head", 1.0, (0,)), ("DP head", 10.0, (0,)), ("LoRA", None, (0,)))
               for seed in seeds for name, p in DROPOUTS.items()]
    quick_dp = {**DP_DEFAULT, "max_train_reports": n, "epochs": 2, "dropout": 0.0}
    targets = [(d, f"{mode}, {name}" + (f" · ε={eps:g}" if eps else ""),
                {**over, **({"epsilon": eps} if eps else {}), **({"lora": {"target_modules": t}} if t else {})})
               for d in LEVER_DATASETS
               for mode, eps, over in (("LoRA", None, {**QUICK_LORA, "max_train_reports": n, "epochs": 3}),
                                       ("DP-LoRA", 1.0, quick_dp))
               for name, t in LORA_TARGETS.items() if mode == "LoRA" or name != "every linear layer"]
    return {"adapt": adapt, "levers": levers, "heads": heads, "data": data, "epochs": epochs, "tokens": tokens,
            "phases": phases, "dropout": dropout, "targets": targets}


def first_tokens(corpus, tokens: int, model: str = "minilm"):
    """``corpus`` with each report cut to its first ``tokens`` tokens of ``model``'s tokenizer (as the model reads
    it, special tokens included), decoded back to text."""
    import dataclasses

    from radcore.models import load_tokenizer, model_spec

    tokenizer = load_tokenizer(model_spec(model))
    ids = tokenizer(list(corpus.texts), truncation=True, max_length=tokens)["input_ids"]
    return dataclasses.replace(corpus, texts=tuple(tokenizer.batch_decode(ids, skip_special_tokens=True)))


def tfidf_on_first_tokens(config, tokens: int) -> dict:
    """A ``tfidf`` run's test metrics when training and test reports are cut to their first ``tokens`` tokens."""
    from radcore.data import load_corpus
    from radcore.evaluate import score
    from radcore.tfidf import TfidfClassifier
    from radcore.train import split_rows, training_rows

    corpus = load_corpus(config.dataset, config.data_dir)
    train_set = first_tokens(corpus.take(training_rows(corpus, config)), tokens)
    test = first_tokens(corpus.take(split_rows(corpus, "test")), tokens)
    model = TfidfClassifier.fit(train_set)
    return {"metrics": {"test": score(test, model.predict(test.texts), seed=config.seed)}, "privacy": None,
            "data": {"splits": {"train_used": len(train_set)}}, "timing": {"train_steps": 0}}


def _corpus(dataset: str, n: int | None) -> Path:
    """The synthetic corpus of ``n`` reports (default :data:`QUICK_BEFORE`) under ``data/synthetic/recipe``."""
    from radcore.data.synth import is_synthetic, write_corpus

    n = n or QUICK_BEFORE[dataset]
    path = ROOT / "data/synthetic/recipe" / f"{dataset}-{n}"
    if not is_synthetic(path):
        write_corpus(dataset, n=n, seed=0, out=path)
    return path


def _done() -> list[dict]:
    return [json.loads(line) for line in RESULTS.read_text().splitlines()] if RESULTS.is_file() else []


def run(study: str, *, n: int | None, seed: int = 0, only: str | None = None,
        datasets: tuple[str, ...] = DATASETS) -> list[dict]:
    from radcore.config import TrainConfig
    from radcore.models import LoraSettings
    from radcore.train import train

    tag = "quick" if n is None else f"n={n}"
    done = {(r["study"], r["dataset"], r["name"], r["corpus"], r["seed"]) for r in _done()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for dataset, name, over in _studies()[study]:
        row_seed = over.get("seed", seed)  # a row may set its own seed
        if ((study, dataset, name, tag, row_seed) in done or (only and not re.search(only, name))
                or dataset not in datasets):
            continue
        settings = {"seed": row_seed, **{k: v for k, v in over.items() if k != "tokens"}}
        if "lora" in settings:  # JSON-like in the row, LoraSettings in the config
            settings["lora"] = LoraSettings(**{k: tuple(v) for k, v in settings["lora"].items()})
        config = TrainConfig(dataset=dataset, data_dir=str(_corpus(dataset, n)), model="minilm",
                             max_length=MAX_LENGTH[dataset], progress=False, **settings)
        start = time.perf_counter()
        results = (tfidf_on_first_tokens(config, over["tokens"]) if "tokens" in over
                   else train(config, ROOT / "runs" / "recipe" / study / dataset / name.replace(" ", "_")))
        test, privacy = results["metrics"]["test"], results["privacy"] or {}
        row = {"study": study, "dataset": dataset, "name": name, "corpus": tag, "seed": row_seed,
               "n_train": results["data"]["splits"]["train_used"], "mode": config.mode, "epsilon": config.epsilon,
               "weighted_f1": test["weighted_f1"], "auroc_macro": test["auroc_macro"],
               "epsilon_spent": privacy.get("epsilon_spent"), "steps": results["timing"]["train_steps"],
               "seconds": round(time.perf_counter() - start, 1), "overrides": over}
        with RESULTS.open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(json.dumps({k: row[k] for k in ("dataset", "name", "weighted_f1", "auroc_macro", "seconds")}), flush=True)
    return [r for r in _done() if r["study"] == study]


def table(rows: list[dict], order: list[str] | None = None) -> str:
    """Markdown: one row per setting (in ``order`` of names, when given), weighted F1 (macro AUROC) per dataset."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return "(no rows yet)\n"
    if order:  # the study's own row order, whatever order the rows were measured in
        rank = {name: k for k, name in enumerate(dict.fromkeys(order))}
        frame = frame.sort_values("name", key=lambda names: names.map(rank), kind="stable")
    frame["cell"] = [f"{f:.3f} ({a:.3f})" for f, a in zip(frame["weighted_f1"], frame["auroc_macro"])]
    wide = frame.pivot_table(index="name", columns="dataset", values="cell", aggfunc="first", sort=False)
    return wide.fillna("-").reset_index().rename(columns={"name": "setting"}).to_markdown(index=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=tuple(_studies()), required=True)
    parser.add_argument("--n", type=int, help="reports per synthetic corpus (default: quick's former corpora; the data "
                        f"study: {DATA_CORPUS:,}, for up to {max(DATA_SIZES):,} training reports)")
    parser.add_argument("--only", help="run only rows whose name matches this regular expression (two processes "
                        "can split a study: --only '^LoRA' and --only '^DP')")
    parser.add_argument("--dataset", choices=DATASETS, help="run only this dataset's rows (another way to split)")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RADCORE_CACHE", str(ROOT / ".cache" / "radcore"))  # the book's cache, wherever this runs
    n = args.n or (DATA_CORPUS if args.study in ("data", "epochs", "tokens", "phases", "targets") else None)
    rows = run(args.study, n=n, only=args.only, datasets=(args.dataset,) if args.dataset else DATASETS)
    done = [r for r in rows if r["corpus"] == ("quick" if n is None else f"n={n}")]
    text = table(done, order=[name for _, name, _ in _studies()[args.study]])
    missing = [f"{d} · {name}" for d, name, _ in _studies()[args.study]
               if not any(r["dataset"] == d and r["name"] == name for r in done)]
    if missing:
        text += (f"\nNot measured yet ({len(missing)} of {len(_studies()[args.study])} rows): " + "; ".join(missing)
                 + f". Run `python benchmarks/recipe.py --study {args.study}` to add them.\n")
    TABLES.mkdir(parents=True, exist_ok=True)
    (TABLES / f"recipe_{args.study}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
