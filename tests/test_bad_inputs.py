"""Bad-input matrix: every malformed input or misuse gets a clear error, a documented counted skip, or no effect.

Each case plants one defect in a fresh tiny tree in a real layout (tests/realformat.py, invented text) and runs
``radcore train`` (or another command) through :func:`radcore.cli.main`, in a scratch working directory. An
error case must exit 2 with one line ``radcore <cmd>: error: ...`` that holds the case's needles (file, key,
row or column, range, what to do), no traceback, and leave the file system as it was: no results, weights,
predictions, partial or stale file, and no empty ``--out`` folder. A skip case must finish and count the
defect under ``results.json`` ``data.skipped``. A same case (Windows line endings, another spelling of a
value) must finish and load to exactly the corpus of its reference tree. Every invented report carries
CANARY, which no output may show. book/reproducing.md tabulates the cases; the last test keeps that table and
this one in step.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from radcore.cli import main
from radcore.data import load_corpus
from radcore.labels import MIMIC_CXR_LABELS
from realformat import (REPORT_COLUMNS, Study, ct_labels, ct_row, default_ct, default_studies, mimic_report,
                        write_ct_rate, write_mimic)

CANARY = "QUOKKA-CANARY-5821"
TINY = ["--model", "tiny-bert", "--random-init", "--epochs", "1", "--batch-size", "16", "--max-length", "64"]
WEIGHTS = ("results.json", "adapter", "model", "predictions.npz")
BOOK = Path(__file__).resolve().parents[1] / "book" / "reproducing.md"
LABELS = "mimic-cxr-2.0.0-chexpert.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"


@dataclass(frozen=True)
class Case:
    """One malformed input or misuse: ``plant(root)`` writes it under ``root`` and returns the argv after ``radcore``
    (``--out RUN`` is appended when ``out``). Expect an error holding every needle in ``error``, ``count`` skips
    under ``skip``, or (``same``) the corpus of the reference tree that ``plant`` wrote at ``root/reference``."""

    id: str
    format: str  # "mimic-cxr", "ct-rate", "openi" (a loader), "cli" or "profile"
    plant: Callable[[Path], list[str]]
    error: tuple[str, ...] = ()
    skip: str | None = None
    count: int = 1
    same: bool = False
    out: bool = True


CASES: list[Case] = []


def case(id: str, format: str, *, error=(), skip=None, count=1, same=False, out=True):
    """Register the decorated planting function as a row of the matrix."""
    def register(plant):
        CASES.append(Case(id, format, plant, tuple(error), skip, count, same, out))
        return plant
    return register


# ------------------------------------------------------------------------------------------ trees

def studies() -> list[Study]:
    """The default MIMIC studies, each report carrying CANARY."""
    out = default_studies()
    for s in out:
        s.text += f" {CANARY} stands in for report text.\n"
    return out


def tables() -> dict:
    """The default CT-RATE tables, each report carrying CANARY."""
    t = default_ct()
    for rows in (t["train_reports"], t["valid_reports"]):
        for r in rows:
            r["Findings_EN"] += f" {CANARY}."
    return t


def train(dataset: str, data: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", dataset, "--data", str(data), *TINY, *extra]


def mimic(root: Path, change=None, *extra: str, **write) -> list[str]:
    """Train argv on a MIMIC tree written after ``change(studies)``."""
    s = studies()
    if change:
        change(s)
    write_mimic(root / "data", s, **write)
    return train("mimic-cxr", root / "data", *extra)


def ct(root: Path, change=None, *extra: str, **write) -> list[str]:
    """Train argv on a CT-RATE tree written after ``change(tables)``."""
    t = tables()
    if change:
        change(t)
    write_ct_rate(root / "data", t, **write)
    return train("ct-rate", root / "data", *extra)


def edit_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_crlf(tree: Path) -> None:
    """Give every text file under ``tree`` Windows line endings, inside ``.gz`` and ``.zip`` files too (what
    ``sed -i 's/$/\\r/'`` or a Windows copy does)."""
    for path in [p for p in tree.rglob("*") if p.is_file()]:
        if path.suffix in (".txt", ".csv", ".xml"):
            path.write_bytes(_crlf(path.read_bytes()))
        elif path.suffix == ".gz":
            path.write_bytes(gzip.compress(_crlf(gzip.decompress(path.read_bytes()))))
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = {name: zf.read(name) for name in zf.namelist()}
            with zipfile.ZipFile(path, "w") as zf:
                for name, data in members.items():
                    zf.writestr(name, _crlf(data))


def with_reference(root: Path, argv: list[str], change: Callable[[Path], None]) -> list[str]:
    """Copy the tree ``root/data`` to ``root/reference``, then ``change(root/data)``: a same case's two trees."""
    shutil.copytree(root / "data", root / "reference")
    change(root / "data")
    return argv


SECTIONLESS = f" WET READ: invented note.\n \n Stable appearance of the chest {CANARY}.\n"  # read by the fallback


# ------------------------------------------------------------------------------------------ MIMIC-CXR

@case("mimic-missing-label-column", "mimic-cxr",
      error=(LABELS, "column 'Pneumothorax'", "missing column", "expected columns"))
def _(root):
    return mimic(root, label_columns=["subject_id", "study_id", *(n for n in MIMIC_CXR_LABELS if n != "Pneumothorax")])


@case("mimic-unknown-label-value", "mimic-cxr",
      error=(LABELS, "row 3 (line 4)", "column 'Edema'", "is not 1.0, 0.0, -1.0 or blank"))
def _(root):
    return mimic(root, lambda s: s[2].labels.update(Edema="2.0"))


def respell_labels(tree: Path, spellings: dict[str, str]) -> None:
    """Rewrite the label cells of every label CSV under ``tree`` (``1.0`` -> ``1.00`` ...), ids untouched."""
    for path in [*tree.rglob("*chexpert.csv.gz"), *tree.rglob("*predicted_labels.csv")]:
        gz = path.suffix == ".gz"
        text = (gzip.decompress(path.read_bytes()) if gz else path.read_bytes()).decode()
        text = re.sub(r"(?<=,)(-?[01](?:\.0)?)(?=,|\n)", lambda m: spellings.get(m.group(1), m.group(1)), text)
        path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())


@case("mimic-label-value-spellings", "mimic-cxr", same=True)
def _(root):
    return with_reference(root, mimic(root), lambda tree: respell_labels(tree, {"1.0": "1.00", "-1.0": "-1", "0.0": "0"}))


@case("mimic-label-value-plus-one", "mimic-cxr",
      error=(LABELS, "row 3 (line 4)", "column 'Edema'", "label value '+1' is not 1.0, 0.0, -1.0 or blank",
             "1.00"))
def _(root):
    return mimic(root, lambda s: s[2].labels.update(Edema="+1"))


@case("mimic-duplicate-study", "mimic-cxr",
      error=(LABELS, "row 6 (line 7)", "column 'study_id'", "repeats row 1 (line 2)", "one row per study"))
def _(root):
    return mimic(root, lambda s: s.append(Study(10000032, 50414267, text=None, labels={"Edema": "1.0"})))


@case("mimic-non-utf8-report", "mimic-cxr",
      error=("p10/p10000898/s50771383.txt", "not valid UTF-8", "re-download"))
def _(root):
    def change(s):
        s[3].text = mimic_report(f"Caf\xe9 {CANARY}.").encode("latin-1")
    return mimic(root, change)


@case("mimic-truncated-gzip", "mimic-cxr", error=(LABELS, "truncated or corrupt", "re-download"))
def _(root):
    argv = mimic(root)
    path = next((root / "data").rglob(LABELS))
    path.write_bytes(path.read_bytes()[:-20])
    return argv


@case("mimic-corrupt-zip", "mimic-cxr",
      error=("mimic-cxr-reports.zip", "cannot read the zip archive", "physionet.org/content/mimic-cxr"))
def _(root):
    argv = mimic(root, reports="zip")
    path = next((root / "data").rglob("mimic-cxr-reports.zip"))
    path.write_bytes(path.read_bytes()[:100])
    return argv


@case("mimic-empty-label-file", "mimic-cxr", error=(LABELS, "empty file", "re-download"))
def _(root):
    argv = mimic(root)
    next((root / "data").rglob(LABELS)).write_bytes(gzip.compress(b""))
    return argv


@case("mimic-missing-split-file", "mimic-cxr",
      error=("mimic-cxr-2.0.0-split.csv.gz (or mimic-cxr-2.0.0-split.csv) not found", "MIMIC-CXR-JPG 2.0.0"))
def _(root):
    argv = mimic(root)
    next((root / "data").rglob(SPLIT)).unlink()
    return argv


@case("mimic-patient-in-train-and-test", "mimic-cxr",
      error=(SPLIT, "subject_id 10000032 appears in several splits ['test', 'train']", "unmodified official split"))
def _(root):
    return mimic(root, lambda s: setattr(s[1], "split", "test"))


@case("mimic-unknown-split-value", "mimic-cxr",
      error=(SPLIT, "row 1 (line 2)", "column 'split'", "unmodified official split"))
def _(root):
    return mimic(root, lambda s: setattr(s[0], "split", "holdout"))


@case("mimic-subject-mismatch", "mimic-cxr",
      error=(LABELS, "row 3 (line 4)", "column 'subject_id'", "differs from the report's folder", "same MIMIC-CXR"))
def _(root):
    argv = mimic(root)
    patients = root / "data/physionet.org/files/mimic-cxr/2.0.0/files/p10"
    (patients / "p10000764").rename(patients / "p10000765")
    return argv


@case("mimic-empty-corpus", "mimic-cxr",
      error=("no labelled reports found", "reports, label CSV and split CSV describe the same studies"))
def _(root):
    return mimic(root, lambda s: [setattr(study, "labels", None) for study in s])


@case("mimic-whitespace-only-report", "mimic-cxr", skip="empty_text")
def _(root):
    return mimic(root, lambda s: s.append(Study(10001111, 52000004, text=" \n \n\t\n", labels={"Edema": "1.0"})))


@case("mimic-report-without-labels", "mimic-cxr", skip="report_without_labels")
def _(root):
    return mimic(root, lambda s: s.append(Study(10001111, 52000001, labels=None)))


@case("mimic-labels-without-report", "mimic-cxr", skip="labels_without_report")
def _(root):
    return mimic(root, lambda s: s.append(Study(10001111, 52000002, text=None, labels={"Edema": "1.0"})))


@case("mimic-study-without-split", "mimic-cxr", skip="study_without_split")
def _(root):
    return mimic(root, lambda s: s.append(Study(10001111, 52000003, split=None)))


@case("mimic-report-without-sections", "mimic-cxr", skip="section_fallback")
def _(root):
    text = f" WET READ: invented note.\n \n Stable appearance of the chest {CANARY}.\n"
    return mimic(root, lambda s: s.append(Study(10001111, 52000006, text=text)))


@case("mimic-crlf-reports", "mimic-cxr", same=True)
def _(root):
    argv = mimic(root, lambda s: s.append(Study(10001111, 52000006, text=SECTIONLESS)))
    return with_reference(root, argv, to_crlf)


@case("mimic-crlf-reports-zip", "mimic-cxr", same=True)
def _(root):
    argv = mimic(root, lambda s: s.append(Study(10001111, 52000006, text=SECTIONLESS)), reports="zip")
    return with_reference(root, argv, to_crlf)


@case("mimic-absurdly-long-report", "mimic-cxr", skip="truncated_long")
def _(root):
    text = mimic_report("Invented words. " * 50_000 + CANARY)  # 800,000 characters; the cut is at 20,000
    return mimic(root, lambda s: s.append(Study(10001111, 52000005, text=text)))


# ------------------------------------------------------------------------------------------ CT-RATE

@case("ct-missing-report-column", "ct-rate",
      error=("train_reports.csv", "column 'Findings_EN'", "missing column", "expected columns"))
def _(root):
    return ct(root, report_columns=[c for c in REPORT_COLUMNS if c != "Findings_EN"])


@case("ct-unknown-label-value", "ct-rate",
      error=("valid_predicted_labels.csv", "row 1 (line 2)", "column 'Emphysema'", "is not 0 or 1"))
def _(root):
    return ct(root, lambda t: t["valid_labels"][0].update(Emphysema="yes"))


@case("ct-label-value-spellings", "ct-rate", same=True)
def _(root):
    return with_reference(root, ct(root), lambda tree: respell_labels(tree, {"1": "1.0", "0": "0.00"}))


@case("ct-duplicate-volume", "ct-rate",
      error=("train_reports.csv", "row 6 (line 7)", "column 'VolumeName'", "repeats row 3 (line 4)", "once per file"))
def _(root):
    return ct(root, lambda t: t["train_reports"].append(ct_row("train_2_a_1.nii.gz", f"Other text {CANARY}.")))


@case("ct-non-utf8-csv", "ct-rate", error=("train_reports.csv", "not valid UTF-8", "line 4", "save it as UTF-8"))
def _(root):
    argv = ct(root)
    edit_bytes(root / "data/dataset/radiology_text_reports/train_reports.csv", b"Heart enlarged",
               "Heart enlarg\xe9d".encode("latin-1"))
    return argv


@case("ct-ragged-row", "ct-rate",
      error=("train_predicted_labels.csv", "row 2 (line 3)", "has 20 fields, the header has 19", "must be quoted"))
def _(root):
    argv = ct(root)
    edit_bytes(root / "data/dataset/multi_abnormality_labels/train_predicted_labels.csv", b"train_1_a_2.nii.gz,",
               b"train_1_a_2.nii.gz,0,")
    return argv


@case("ct-test-volume-in-train-file", "ct-rate",
      error=("train_reports.csv", "row 3 (line 4)", "column 'VolumeName'", "own split's volumes"))
def _(root):
    return ct(root, lambda t: t["train_reports"][2].update(VolumeName="valid_2_a_1.nii.gz"))


@case("ct-missing-label-file", "ct-rate",
      error=("valid_predicted_labels.csv or validation_predicted_labels.csv not found", "huggingface.co/datasets"))
def _(root):
    argv = ct(root)
    (root / "data/dataset/multi_abnormality_labels/valid_predicted_labels.csv").unlink()
    return argv


@case("ct-no-dataset-folder", "ct-rate",
      error=("no dataset/radiology_text_reports", "point data_dir at the CT-RATE download"))
def _(root):
    (root / "data").mkdir(parents=True)
    return train("ct-rate", root / "data")


@case("ct-empty-corpus", "ct-rate",
      error=("dataset", "no labelled reports found", "describe the same volumes"))
def _(root):
    return ct(root, lambda t: t.update({k: [] for k in t}))


@case("ct-empty-report", "ct-rate", skip="empty_text")
def _(root):
    def change(t):
        t["train_reports"].append(ct_row("train_7_a_1.nii.gz", "Not given.", "  "))
        t["train_labels"].append(ct_labels("train_7_a_1.nii.gz"))
    return ct(root, change)


@case("ct-report-without-labels", "ct-rate", skip="report_without_labels")
def _(root):
    return ct(root, lambda t: t["train_reports"].append(ct_row("train_9_a_1.nii.gz", f"Invented {CANARY}.")))


@case("ct-labels-without-report", "ct-rate", skip="labels_without_report")
def _(root):
    return ct(root, lambda t: t["train_labels"].append(ct_labels("train_8_a_1.nii.gz", "Emphysema")))


@case("ct-reconstructions-disagree", "ct-rate", skip="reconstruction_label_conflict")
def _(root):
    return ct(root, lambda t: t["train_labels"].__setitem__(1, ct_labels("train_1_a_2.nii.gz", "Emphysema")))


@case("ct-absurdly-long-report", "ct-rate", skip="truncated_long")
def _(root):
    def change(t):
        t["train_reports"].append(ct_row("train_6_a_1.nii.gz", "Invented words. " * 50_000 + CANARY))
        t["train_labels"].append(ct_labels("train_6_a_1.nii.gz", "Emphysema"))
    return ct(root, change)


@case("ct-crlf-csv", "ct-rate", same=True)
def _(root):
    def change(t):
        t["train_reports"][2]["Findings_EN"] = f"Bilateral pleural effusion.\nHeart enlarged {CANARY}."  # a quoted break
    return with_reference(root, ct(root, change), to_crlf)


# ------------------------------------------------------------------------------------------ Open-i

def openi(root: Path) -> list[str]:
    """``radcore label`` argv on an extracted Open-i folder of invented XML reports, sections on several lines."""
    from test_openi import openi_xml

    folder = root / "data" / "ecgen-radiology"
    folder.mkdir(parents=True)
    for number, findings, tags in ((1, "The heart is normal in size.\nThe lungs are clear.", ["normal"]),
                                   (2, f"The heart is enlarged.\n\nSmall right effusion {CANARY}.",
                                    ["Cardiomegaly/mild", "Pleural Effusion/right"])):
        xml = openi_xml(number, {"FINDINGS": findings, "IMPRESSION": "Invented\nimpression."}, tags)
        (folder / f"{number}.xml").write_bytes(xml.encode())
    return ["label", "--dataset", "openi", "--data", str(root / "data"), "--split", "all"]


@case("openi-crlf-xml", "openi", same=True)
def _(root):
    return with_reference(root, openi(root), to_crlf)


# ------------------------------------------------------------------------------------------ command line

@case("cli-missing-data-dir", "cli", error=("nowhere", "data directory does not exist", "physionet.org"))
def _(root):
    return train("mimic-cxr", root / "nowhere")


@case("cli-data-is-a-file", "cli", error=("case/F", "is a file, not a data folder", "point --data at the folder"))
def _(root):
    root.mkdir(parents=True)
    (root / "F").write_text("mine")
    return train("mimic-cxr", root / "F")


@case("ct-data-is-a-file", "ct-rate", error=("train_reports.csv", "is a file, not a data folder", "huggingface.co"))
def _(root):
    ct(root)
    return train("ct-rate", root / "data/dataset/radiology_text_reports/train_reports.csv")


@case("cli-unknown-model", "cli", error=("unknown model 'gpt-17'", "use one of", "tiny-bert"))
def _(root):
    return mimic(root, None, "--model", "gpt-17")


@case("cli-epsilon-zero", "cli", error=("argument --epsilon", "must be a positive finite number", "'0'"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora", "--epsilon", "0")


@case("cli-epsilon-negative", "cli", error=("argument --epsilon", "must be a positive finite number", "'-1'"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora", "--epsilon=-1")


@case("cli-epsilon-not-a-number", "cli", error=("argument --epsilon", "must be a positive finite number", "'one'"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora", "--epsilon", "one")


@case("cli-dp-without-epsilon", "cli", error=("mode 'dp-lora' needs a target epsilon", "--epsilon"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora")


@case("cli-delta-at-one-over-n", "cli",
      error=("delta must lie in (0, 1/n) = (0, 0.5) for n=2 training reports, got 0.5", "Leave delta unset"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora", "--epsilon", "1", "--delta", "0.5")


@case("cli-delta-above-one-over-n", "cli", error=("delta must lie in (0, 1/n)", "got 0.9", "Leave delta unset"))
def _(root):
    return ct(root, None, "--mode", "dp-lora", "--epsilon", "1", "--delta", "0.9")


@case("cli-delta-zero", "cli", error=("argument --delta", "must be a positive finite number", "'0'"))
def _(root):
    return mimic(root, None, "--mode", "dp-lora", "--epsilon", "1", "--delta", "0")


@case("cli-delta-without-dp", "cli", error=("--delta applies to dp-* modes only", "drop --delta"))
def _(root):
    return mimic(root, None, "--mode", "lora", "--delta", "1e-5")


@case("cli-unknown-data-option", "cli", error=("unknown option(s) ['colour']", "MimicOptions accepts"))
def _(root):
    return mimic(root, None, "--data-option", "colour=red")


@case("cli-bad-data-option-value", "cli", error=("MimicOptions.uncertain='maybe' is not allowed", "choose one of"))
def _(root):
    return mimic(root, None, "--data-option", "uncertain=maybe")


@case("cli-max-train-reports-zero", "cli", error=("argument --max-train-reports", "whole number >= 1", "'0'"))
def _(root):
    return mimic(root, None, "--max-train-reports", "0")


@case("cli-max-length-one", "cli", error=("max_length 1 is out of range for model 'tiny-bert'", "use 8 to 512 tokens"))
def _(root):
    return mimic(root, None, "--max-length", "1")


@case("cli-max-length-beyond-the-model", "cli",
      error=("max_length 100000 is out of range for model 'tiny-bert'", "use 8 to 512 tokens", "position embeddings"))
def _(root):
    return mimic(root, None, "--max-length", "100000")


@case("evaluate-run-max-length-beyond-the-model", "cli", error=("max_length 4096 is out of range", "8 to 512"))
def _(root):
    run = finished_run(root)
    results = json.loads((run / "results.json").read_text())
    results["config"]["max_length"] = 4096
    (run / "results.json").write_text(json.dumps(results))
    return evaluate(root, run)


@case("cli-evaluate-unfinished-run", "cli", error=("no results.json in", "unfinished", "the run did not finish"))
def _(root):
    (root / "unfinished/.adapter.partial").mkdir(parents=True)
    mimic(root)
    return ["evaluate", "--run", str(root / "unfinished"), "--dataset", "mimic-cxr", "--data", str(root / "data")]


# ------------------------------------------------------------------------------------------ where runs are written

def finished_run(root: Path, *extra: str) -> Path:
    """A finished tiny LoRA run on the default MIMIC tree, at ``root/finished``."""
    out = root / "finished"
    assert main(mimic(root, None, *extra) + ["--out", str(out)]) == 0
    return out


def evaluate(root: Path, run: Path) -> list[str]:
    return ["evaluate", "--run", str(run), "--dataset", "mimic-cxr", "--data", str(root / "data")]


def label(root: Path) -> list[str]:
    mimic(root)
    return ["label", "--dataset", "mimic-cxr", "--data", str(root / "data"), "--split", "all"]


def read_only(folder: Path) -> Path:
    """``folder``, made and then closed to writing (root ignores that: the case is skipped as root)."""
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere; run the suite as a normal user to test this")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    return folder


@case("train-out-holds-another-run", "cli", out=False,
      error=("case/R already holds another run", "records another config", "--overwrite to replace the folder"))
def _(root):
    (root / "R" / "model").mkdir(parents=True)
    (root / "R" / "results.json").write_text(json.dumps({"config": {"mode": "full"}}))
    return mimic(root) + ["--out", str(root / "R")]


@case("train-out-holds-an-unfinished-run", "cli", out=False,
      error=("case/R already holds an unfinished run (no results.json)", "--overwrite"))
def _(root):
    (root / "R" / "adapter").mkdir(parents=True)
    (root / "R" / ".predictions.npz.x1y2.tmp").write_bytes(b"")
    return mimic(root) + ["--out", str(root / "R")]


@case("train-overwrite-a-folder-that-is-no-run", "cli", out=False,
      error=("case/R holds 1 entry", "'notes.txt'", "--overwrite replaces run folders only"))
def _(root):
    (root / "R").mkdir(parents=True)
    (root / "R" / "notes.txt").write_text("mine")
    return mimic(root) + ["--out", str(root / "R"), "--overwrite"]


@case("train-failure-leaves-no-folder", "cli", out=False,
      error=("no labelled reports found",))
def _(root):
    return mimic(root, lambda s: [setattr(study, "labels", None) for study in s]) + [
        "--out", str(root / "new" / "deeper" / "R")]


@case("train-out-is-a-file", "cli", out=False, error=("case/R is a file; a folder is written here",))
def _(root):
    argv = mimic(root)
    (root / "R").write_text("mine")
    return argv + ["--out", str(root / "R")]


@case("train-out-under-a-file", "cli", out=False, error=("cannot write", "case/F is a file, not a folder"))
def _(root):
    argv = mimic(root)
    (root / "F").write_text("mine")
    return argv + ["--out", str(root / "F" / "R")]


@case("train-out-unwritable", "cli", out=False, error=("cannot write", "no permission to create files in", "case/ro"))
def _(root):
    argv = mimic(root)
    return argv + ["--out", str(read_only(root / "ro") / "R")]


@case("synth-out-is-a-file", "cli", out=False, error=("case/F is a file; a folder is written here",))
def _(root):
    root.mkdir(parents=True)
    (root / "F").write_text("mine")
    return ["synth", "--dataset", "mimic-cxr", "--n", "20", "--out", str(root / "F")]


@case("synth-out-unwritable", "cli", out=False, error=("cannot write", "no permission to create files in", "case/ro"))
def _(root):
    return ["synth", "--dataset", "mimic-cxr", "--n", "20", "--out", str(read_only(root / "ro") / "corpus")]


@case("evaluate-out-is-a-folder", "cli", out=False, error=("case/E is a folder", "name the JSON file to write"))
def _(root):
    argv = evaluate(root, finished_run(root))
    (root / "E").mkdir()
    return argv + ["--out", str(root / "E")]


@case("evaluate-out-unwritable", "cli", out=False, error=("cannot write", "no permission to create files in", "case/ro"))
def _(root):
    return evaluate(root, finished_run(root)) + ["--out", str(read_only(root / "ro") / "e.json")]


@case("evaluate-run-folder-unwritable", "cli", out=False,
      error=("cannot write", "evaluations/mimic-cxr-test.json", "no permission"))
def _(root):
    run = finished_run(root)
    read_only(run)
    return evaluate(root, run)


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


@case("evaluate-cut-off-adapter", "cli",
      error=("cannot read the saved weights in", "finished/adapter", "SafetensorError", "cut off or damaged",
             "--overwrite"))
def _(root):
    run = finished_run(root)
    cut_in_half(run / "adapter" / "adapter_model.safetensors")
    return evaluate(root, run)


@case("evaluate-cut-off-model", "cli",
      error=("cannot read the saved weights in", "finished/model", "cut off or damaged", "--overwrite"))
def _(root):
    run = finished_run(root, "--mode", "full")
    cut_in_half(run / "model" / "model.safetensors")
    return evaluate(root, run)


@case("evaluate-cut-off-results", "cli",
      error=("finished/results.json is not valid JSON (line", "cut off or damaged", "--overwrite"))
def _(root):
    run = finished_run(root)
    cut_in_half(run / "results.json")
    return evaluate(root, run)


@case("evaluate-results-without-config", "cli",
      error=("finished/results.json lacks the config, data, model block(s) of a radcore run",))
def _(root):
    run = finished_run(root)
    (run / "results.json").write_text("{}")
    return evaluate(root, run)


@case("label-out-is-a-folder", "cli", out=False, error=("case/E is a folder", "name the JSON file to write"))
def _(root):
    (root / "E").mkdir(parents=True)
    return label(root) + ["--out", str(root / "E")]


@case("label-out-unwritable", "cli", out=False, error=("cannot write", "no permission to create files in", "case/ro"))
def _(root):
    return label(root) + ["--out", str(read_only(root / "ro") / "l.json")]


def audit(run: Path) -> list[str]:
    return ["audit", "--run", str(run), "--bootstrap", "20"]


@case("audit-run-folder-missing", "cli", out=False, error=("case/nowhere", "no results.json"))
def _(root):
    root.mkdir(parents=True)
    return audit(root / "nowhere")


@case("audit-run-folder-unwritable", "cli", out=False, error=("cannot write", "finished/audit.json", "no permission"))
def _(root):
    run = finished_run(root)
    read_only(run)
    return audit(run)


@case("audit-record-is-a-folder", "cli", out=False, error=("finished/audit.json is a folder",))
def _(root):
    run = finished_run(root)
    (run / "audit.json").mkdir()
    return audit(run)


@case("audit-cut-off-results", "cli", out=False,
      error=("finished/results.json is not valid JSON (line", "cut off or damaged", "--overwrite"))
def _(root):
    run = finished_run(root)
    cut_in_half(run / "results.json")
    return audit(run)


@case("audit-cut-off-adapter", "cli", out=False,
      error=("cannot read the saved weights in", "finished/adapter", "cut off or damaged", "--overwrite"))
def _(root):
    run = finished_run(root)
    cut_in_half(run / "adapter" / "adapter_model.safetensors")
    return audit(run)


# ------------------------------------------------------------------------------------------ grid profiles

PROFILE = """\
datasets:
  mimic-cxr: {data: DATA}
models: [tiny-bert]
settings:
  - {mode: lora}
  - {mode: dp-lora, epsilons: [1, 10]}
seeds: [0]
train: {epochs: 1, max_length: 32, pretrained: false}
"""


def profile(root: Path, old: str = "", new: str = "", *, raw: bytes | None = None) -> list[str]:
    """``radcore grid`` argv on ``root/bad.yaml``: PROFILE (on the default MIMIC tree) with ``old`` replaced by
    ``new``, or the bytes ``raw``."""
    mimic(root)
    assert old in PROFILE
    text = PROFILE.replace(old, new, 1).replace("DATA", str(root / "data"))
    (root / "bad.yaml").write_bytes(raw if raw is not None else text.encode())
    return ["grid", "--profile", str(root / "bad.yaml")]


@case("profile-yaml-syntax-error", "profile", out=False,
      error=("bad.yaml: not valid YAML at line 3, column", "mapping values are not allowed here"))
def _(root):
    return profile(root, "models: [tiny-bert]", "models: tiny-bert: [x]")


@case("profile-not-utf8", "profile", out=False, error=("bad.yaml: not valid UTF-8 (line 1)", "save it as UTF-8"))
def _(root):
    return profile(root, raw="description: caf\xe9\n".encode("latin-1") + PROFILE.encode())


@case("profile-not-a-mapping", "profile", out=False, error=("bad.yaml: a profile is a mapping of keys", "got a list"))
def _(root):
    return profile(root, raw=b"- mimic-cxr\n- tiny-bert\n")


@case("profile-datasets-not-a-mapping", "profile", out=False,
      error=("bad.yaml: datasets must be a mapping like {mimic-cxr: {data: DIR}}", "got a list"))
def _(root):
    return profile(root, "datasets:\n  mimic-cxr: {data: DATA}", "datasets: [mimic-cxr]")


@case("profile-epsilons-not-a-list", "profile", out=False,
      error=("bad.yaml: settings: dp-lora: epsilons must be a list like [0.1, 1, 10]", "got 1"))
def _(root):
    return profile(root, "epsilons: [1, 10]", "epsilons: 1")


@case("profile-epsilon-zero", "profile", out=False,
      error=("bad.yaml: settings: dp-lora: epsilons: epsilon must be a positive finite number, got 0",))
def _(root):
    return profile(root, "epsilons: [1, 10]", "epsilons: [0]")


@case("profile-epsilon-nan", "profile", out=False,
      error=("bad.yaml: settings: dp-lora: epsilons: epsilon must be a positive finite number, got nan",))
def _(root):
    return profile(root, "epsilons: [1, 10]", "epsilons: [.nan]")


@case("profile-setting-not-a-mapping", "profile", out=False,
      error=("bad.yaml: settings: each entry must be a mapping like {mode: lora}", "got text"))
def _(root):
    return profile(root, "settings:\n  - {mode: lora}", "settings:\n  - lora")


@case("profile-seed-not-a-number", "profile", out=False, error=("bad.yaml: seeds: 'zero' is not a whole number >= 0",))
def _(root):
    return profile(root, "seeds: [0]", "seeds: [zero]")


@case("profile-unknown-model", "profile", out=False, error=("bad.yaml: models: unknown model 'gpt-17'", "tiny-bert"))
def _(root):
    return profile(root, "models: [tiny-bert]", "models: [tiny-bert, gpt-17]")


@case("profile-negative-learning-rate", "profile", out=False,
      error=("bad.yaml: train: learning_rate must be a positive finite number, got -1",))
def _(root):
    return profile(root, "epochs: 1,", "epochs: 1, learning_rate: -1,")


@case("profile-number-read-as-text", "profile", out=False,
      error=("bad.yaml: train: learning_rate: '1e-3' is text, not a number", "write 0.001 or 1.0e-3"))
def _(root):
    return profile(root, "epochs: 1,", "epochs: 1, learning_rate: 1e-3,")


@case("profile-max-length-beyond-the-model", "profile", out=False,
      error=("bad.yaml: datasets: mimic-cxr: train: max_length 100000 is out of range for model 'tiny-bert'",
             "8 to 512"))
def _(root):
    return profile(root, "{data: DATA}", "{data: DATA, train: {max_length: 100000}}")


@case("profile-duplicate-cell", "profile", out=False,
      error=("bad.yaml: cell mimic-cxr/tiny-bert/", "/seed0 comes twice", "its own run folder"))
def _(root):
    return profile(root, "seeds: [0]", "seeds: [0, 0]")


@case("profile-name-absolute-path", "profile", out=False,
      error=("bad.yaml: name: '/tmp/elsewhere' is not a plain name", "runs/NAME"))
def _(root):
    return profile(root, "models:", "name: /tmp/elsewhere\nmodels:")


@case("profile-name-with-parent", "profile", out=False, error=("bad.yaml: name: '../up' is not a plain name",))
def _(root):
    return profile(root, "models:", "name: ../up\nmodels:")


@case("cli-workers-zero", "cli", out=False, error=("argument --workers", "whole number >= 1", "'0'"))
def _(root):
    return ["grid", "--profile", "ci", "--workers", "0"]


@case("cli-workers-negative", "cli", out=False, error=("argument --workers", "whole number >= 1", "'-3'"))
def _(root):
    return ["book", "--profile", "ci", "--workers", "-3"]


@case("data-out-is-a-file", "cli", out=False,
      error=("cannot write", "NLMCXR_reports.tgz", "case/F is a file, not a folder"))
def _(root):
    root.mkdir(parents=True)
    (root / "F").write_text("mine")
    return ["data", "openi", "--out", str(root / "F")]


# ------------------------------------------------------------------------------------------ the tests

def clean_skips(format: str, root: Path) -> dict[str, int]:
    """``skipped`` of the same tree without the defect."""
    (mimic if format == "mimic-cxr" else ct)(root)
    return load_corpus(format, root / "data").skipped


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: files with size and modification time, folders as such (what an error must not
    change: a new, changed, partial or stale file, or an empty folder, shows)."""
    return {str(p.relative_to(root)): ("dir",) if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def corpus_view(corpus) -> dict:
    return {"ids": corpus.ids, "patients": corpus.patient_ids, "texts": corpus.texts, "split": corpus.split,
            "labels": corpus.labels.tolist(), "mask": corpus.label_mask.tolist(), "skipped": corpus.skipped}


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input(bad: Case, tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)  # what a command writes by default lands here, where the snapshot sees it
    run = tmp_path / "run"
    argv = bad.plant(tmp_path / "case") + (["--out", str(run)] if bad.out else [])
    before = snapshot(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse refuses bad flags before radcore runs
        status = exit_.code
    out, err = capsys.readouterr()
    shown = out + err + caplog.text
    assert CANARY not in shown and "\\xe9" not in shown and "Traceback" not in shown
    if bad.error:
        assert status == 2, err
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"radcore {argv[0]}: error: "), err
        missing = [needle for needle in bad.error if needle not in line]
        assert not missing, f"{line!r} lacks {missing}"
        after = snapshot(tmp_path)
        assert after == before, {"new": sorted(after.keys() - before.keys()), "gone": sorted(before.keys() - after.keys()),
                                 "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k])}
    elif bad.same:
        assert status == 0, err
        reference = load_corpus(bad.format, tmp_path / "case" / "reference")
        assert corpus_view(load_corpus(bad.format, tmp_path / "case" / "data")) == corpus_view(reference)
    else:
        assert status == 0, err
        skipped = json.loads((run / "results.json").read_text())["data"]["skipped"]
        baseline = clean_skips(bad.format, tmp_path / "clean")
        assert skipped == {**baseline, bad.skip: baseline[bad.skip] + bad.count}


def test_matrix_covers_the_issue_and_the_book_lists_every_case():
    formats = {c.format for c in CASES}
    assert len(CASES) >= 15 and formats >= {"mimic-cxr", "ct-rate", "openi", "cli"}
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(sum(map(bool, (c.error, c.skip, c.same))) == 1 for c in CASES)
    assert all(c.format in ("mimic-cxr", "ct-rate", "openi") for c in CASES if c.same)
    text = BOOK.read_text()
    table = text.split("## Bad inputs and what radcore does", 1)[1].split("\n#", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9.-]+)` \|", table, flags=re.M)
    assert sorted(documented) == sorted(c.id for c in CASES)
    for c in CASES:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{c.id}` |"))
        assert (f"`{c.skip}`" in row) if c.skip else ("same corpus" in row) if c.same else ("error" in row), row
