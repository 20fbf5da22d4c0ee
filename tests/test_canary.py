"""No report text leaks: canary strings planted in a real-mode corpus appear in no output, log or page.

Small synthetic corpora of both datasets are written, their ``SYNTHETIC.json`` marker is deleted (so radcore
treats them as real patient data), and every report gets unique canary strings (``CANARY`` + 32 hex digits) at
the start of its findings or impression, at its end and in a section the model never reads. Then, in a scratch
copy of the book sources, the whole compendium runs on them as a user would run it: ``radcore book`` with a
profile of DP-LoRA, LoRA and full fine-tuning cells (papermill run notebooks, the data, results and statistics
notebooks, the Jupyter Book HTML with its search index), with stdout and stderr kept as log files; and
``radcore train`` / ``radcore evaluate`` in process, with their output and every log record captured. Every file
written anywhere under the scratch tree (the planted corpus aside) is read as bytes, with zip / npz / gzip
members unpacked and UTF-16 / UTF-32 views searched too, and must hold no canary, in whole or in part.

The scanner is tested first on files that do hold canaries, so a scanner that finds nothing fails the suite.
What it cannot see: text drawn into a raster image (a figure) or base64-encoded inside a page.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_book_sources
from radcore import corpus_tables
from radcore.cli import main
from radcore.data import load_corpus
from radcore.data.synth import MARKER, write_corpus
from radcore.errors import DataError

N_REPORTS = 200
PROFILE = """\
name: leakcheck
description: "Real-data mode: tiny random-init BERT on corpora without a SYNTHETIC.json marker."
datasets:
  mimic-cxr: {data: data/real/mimic-cxr}
  ct-rate: {data: data/real/ct-rate}
models: [tiny-bert]
settings:
  - {mode: dp-lora, epsilons: [1]}
  - {mode: lora}
  - {mode: full}
seeds: [0]
train: {epochs: 1, max_length: 64, pretrained: false, batch_size: 32}
"""
CELLS = 6  # 2 datasets x 1 model x 3 settings x 1 seed

# ============================================================================================ canaries


class Canaries:
    """Unique canary strings, and a scanner that finds any of them (or a 12-digit piece of one) in bytes."""

    PREFIX = re.compile(r"canary[0-9a-f]{6}")
    HEX_RUN = re.compile(r"[0-9a-f]{12,}")
    PIECE = 12

    def __init__(self):
        self.all: list[str] = []
        self._pieces: set[str] = set()

    def new(self) -> str:
        canary = f"CANARY{uuid.uuid4().hex}"
        self.all.append(canary)
        digits = canary[len("CANARY"):]
        self._pieces.update(digits[i:i + self.PIECE] for i in range(len(digits) - self.PIECE + 1))
        return canary

    def in_text(self, text: str) -> bool:
        """Whether ``text`` holds a canary, its prefix with 6 digits, or 12 consecutive digits of one."""
        low = text.lower()
        if self.PREFIX.search(low):
            return True
        for run in self.HEX_RUN.finditer(low):
            digits = run.group()
            if any(digits[i:i + self.PIECE] in self._pieces for i in range(len(digits) - self.PIECE + 1)):
                return True
        return False

    def in_bytes(self, data: bytes) -> bool:
        """Bytes read as Latin-1 (so ASCII and UTF-8 text), UTF-16 and UTF-32 at every alignment (numpy's
        string arrays are UTF-32)."""
        views = [data.decode("latin-1")]
        views += [data[k:].decode(enc, errors="ignore") for enc, width in
                  (("utf-16-le", 2), ("utf-16-be", 2), ("utf-32-le", 4), ("utf-32-be", 4)) for k in range(width)]
        return any(self.in_text(v) for v in views)


def blobs(name: str, data: bytes, depth: int = 0):
    """``(name, bytes)`` of a file and, recursively, of the members of a zip (npz) or gzip stream it is."""
    yield name, data
    if depth > 3:
        return
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    yield from blobs(f"{name}:{member}", archive.read(member), depth + 1)
        except zipfile.BadZipFile:
            pass
    elif data[:2] == b"\x1f\x8b":
        try:
            yield from blobs(f"{name}:gunzip", gzip.decompress(data), depth + 1)
        except (OSError, EOFError):
            pass


def scan_tree(root: Path, canaries: Canaries, *, skip: tuple[Path, ...] = ()) -> tuple[list[str], Counter]:
    """Every regular file under ``root`` (hidden ones too; ``skip`` folders aside): the files and archive members
    holding a canary, and how many files of each kind were read."""
    leaks, kinds = [], Counter()
    for here, dirs, files in os.walk(root):
        if any(Path(here) == s or s in Path(here).parents for s in skip):
            dirs[:] = []
            continue
        for name in files:
            path = Path(here) / name
            if path.is_symlink() or not path.is_file():
                continue
            kinds[_kind(path)] += 1
            for part, data in blobs(str(path.relative_to(root)), path.read_bytes()):
                if canaries.in_bytes(data):
                    leaks.append(part)
    return leaks, kinds


def _kind(path: Path) -> str:
    if path.name == "README.md" and path.parent.name == "adapter":
        return "adapter card"  # peft's model card
    return "".join(path.suffixes[-1:]) or path.name


# ============================================================================================ planting


def plant_mimic(root: Path, canaries: Canaries) -> int:
    """Canaries in every MIMIC-CXR report file: on its first findings/impression header line (so the model reads
    it), at the very end (last section or the last-paragraph fallback) and in the indication (never read)."""
    header = re.compile(r"^( (?:FINDINGS|IMPRESSION|FINDINGS AND IMPRESSION):)", re.MULTILINE)
    indication = re.compile(r"^( INDICATION:)", re.MULTILINE)
    reports = sorted(root.glob("files/p[0-9][0-9]/p*/s*.txt"))
    for path in reports:
        text = path.read_text()
        text = header.sub(lambda m: f"{m.group(1)} {canaries.new()} seen.", text, count=1)
        text = indication.sub(lambda m: f"{m.group(1)} {canaries.new()}", text, count=1)
        path.write_text(text.rstrip() + f" {canaries.new()}.\n")
    return len(reports)


def plant_ct(root: Path, canaries: Canaries) -> int:
    """Canaries in every CT-RATE report row: impression start, findings end, clinical information. The
    reconstructions of one scan share one report, so they get the same canaries."""
    planted = 0
    for path in sorted((root / "dataset" / "radiology_text_reports").glob("*.csv")):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        fields = list(rows[0])
        by_scan: dict[str, tuple[str, str, str]] = {}
        for row in rows:
            scan = row["VolumeName"].rsplit("_", 1)[0]
            a, b, c = by_scan.setdefault(scan, (canaries.new(), canaries.new(), canaries.new()))
            row["Impressions_EN"] = f"{a} noted. {row['Impressions_EN']}"
            row["Findings_EN"] = f"{row['Findings_EN']} {b}."
            row["ClinicalInformation_EN"] = f"{row['ClinicalInformation_EN']} {c}"
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        planted += len(by_scan)
    return planted


def real_corpus(dataset: str, out: Path, canaries: Canaries) -> Path:
    """A synthetic corpus turned into a "real" one: marker deleted, canaries planted."""
    write_corpus(dataset, n=N_REPORTS, seed=11, out=out)
    (out / MARKER).unlink()
    planted = (plant_mimic if dataset == "mimic-cxr" else plant_ct)(out, canaries)
    assert planted >= N_REPORTS * 0.9
    return out


@pytest.fixture(scope="module")
def canaries():
    return Canaries()


@pytest.fixture(scope="module")
def real_dirs(tmp_path_factory, canaries):
    root = tmp_path_factory.mktemp("realmode")
    return {d: real_corpus(d, root / d, canaries) for d in ("mimic-cxr", "ct-rate")}


# ============================================================================================ the scanner


def test_the_scanner_finds_canaries_wherever_they_hide(tmp_path):
    canaries = Canaries()
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "plain.txt").write_text(f"report: {canaries.new()} end")
    (hidden / "lower.json").write_text(json.dumps({"text": canaries.new().lower()}))
    (hidden / "digits-only.html").write_text(f"<p>{canaries.new()[len('CANARY'):][:14]}</p>")
    np.savez_compressed(hidden / "ids.npz", ids=np.array(["s1", canaries.new()]))  # UTF-32, compressed
    (hidden / "log.gz").write_bytes(gzip.compress(f"INFO {canaries.new()}".encode()))
    (hidden / "utf16.txt").write_bytes(f"x {canaries.new()}".encode("utf-16-le"))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep/a.txt", gzip.compress(canaries.new().encode()))
    (hidden / "nested.zip").write_bytes(inner.getvalue())
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "ok.txt").write_text("CANARY alone, canary-free prose and hex 0123456789abcdef0123 are fine")
    np.savez_compressed(clean / "ok.npz", ids=np.array(["s1", "s2"]))

    leaks, kinds = scan_tree(tmp_path, canaries, skip=(clean,))
    found_files = {Path(p.split(":")[0]).name for p in leaks}
    assert found_files == {p.name for p in hidden.iterdir()}, found_files
    assert sum(kinds.values()) == len(list(hidden.iterdir()))
    assert scan_tree(clean, canaries) == ([], Counter({".txt": 1, ".npz": 1}))


def test_planted_corpora_are_real_and_every_report_carries_canaries(real_dirs, canaries):
    for dataset, path in real_dirs.items():
        corpus = load_corpus(dataset, path)
        assert corpus.source == "real" and len(corpus) >= N_REPORTS * 0.9
        assert all(canaries.in_text(text) for text in corpus.texts)  # what the model reads holds canaries
        assert not canaries.in_text(repr(corpus)) and not canaries.in_text(str(corpus.subset("test")))
        with pytest.raises(ValueError, match="synthetic"):
            corpus_tables.example_reports(corpus, k=2, synthetic=True)  # the loader said real: no text, whatever the caller says


# ============================================================================================ bad rows


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_errors_about_bad_rows_name_the_row_and_never_quote_the_report(real_dirs, canaries, tmp_path, capsys):
    ct = _copy(real_dirs["ct-rate"], tmp_path / "ct")
    reports = ct / "dataset" / "radiology_text_reports" / "train_reports.csv"
    lines = reports.read_text().splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n") + f",{canaries.new()} stray cell\n"  # an extra field in data row 3
    reports.write_text("".join(lines))
    with pytest.raises(DataError) as info:
        load_corpus("ct-rate", ct)
    assert "row 3" in str(info.value) and str(reports) in str(info.value)
    assert not canaries.in_text(str(info.value))

    lines[3] = f"{canaries.new()} leaked into the id column," + lines[3].split(",", 1)[1]  # a bad VolumeName
    reports.write_text("".join(lines))
    with pytest.raises(DataError) as info:
        load_corpus("ct-rate", ct)
    assert "row 3" in str(info.value) and not canaries.in_text(str(info.value))

    mimic = _copy(real_dirs["mimic-cxr"], tmp_path / "mimic")
    bad = sorted(mimic.glob("files/p*/p*/s*.txt"))[5]
    bad.write_bytes(f" FINDINGS: {canaries.new()} ".encode() + b"\xff\xfe not utf-8")
    with pytest.raises(DataError) as info:
        load_corpus("mimic-cxr", mimic)
    assert bad.name in str(info.value) and not canaries.in_text(str(info.value))

    capsys.readouterr()
    assert main(["train", "--dataset", "mimic-cxr", "--data", str(mimic), "--model", "tiny-bert", "--random-init",
                 "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert bad.name in captured.err and not canaries.in_text(captured.out + captured.err)


# ============================================================================================ command line


@pytest.fixture
def all_logs(caplog):
    """Every log record, from DEBUG up, of radcore and of the libraries (transformers' too)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.enable_propagation()
    hf_logging.set_verbosity_debug()
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.disable_propagation()


@pytest.mark.parametrize("dataset,mode", [("mimic-cxr", "dp-lora"), ("ct-rate", "full")])
def test_train_and_evaluate_leak_nothing(real_dirs, canaries, tmp_path, capfd, all_logs, dataset, mode):
    run = tmp_path / "run"
    data = ["--dataset", dataset, "--data", str(real_dirs[dataset])]
    extra = ["--epsilon", "1"] if mode == "dp-lora" else []
    assert main(["train", *data, "--model", "tiny-bert", "--random-init", "--mode", mode, *extra, "--epochs", "1",
                 "--batch-size", "32", "--max-length", "64", "--out", str(run)]) == 0
    assert main(["evaluate", "--run", str(run), *data, "--split", "all"]) == 0
    out, err = capfd.readouterr()
    records = [r.getMessage() for r in all_logs.records]
    assert records and out and any("real data" in r for r in records)  # the capture worked, and says real
    assert not canaries.in_text(out) and not canaries.in_text(err)
    assert not any(canaries.in_text(r) for r in records)

    results = json.loads((run / "results.json").read_text())
    assert results["data"]["source"] == "real"
    evaluation = json.loads(next((run / "evaluations").glob("*.json")).read_text())
    assert evaluation["source"] == "real"
    leaks, kinds = scan_tree(tmp_path, canaries)
    assert leaks == []
    assert kinds[".json"] >= 2 and kinds[".npz"] == 1 and kinds[".safetensors"] >= 1


# ============================================================================================ the whole book


@pytest.fixture(scope="module")
def book(tmp_path_factory, canaries):
    """``radcore book`` on a real-mode profile, in a scratch copy of the book sources, output logged to files."""
    root = tmp_path_factory.mktemp("compendium")
    copy_book_sources(root)
    data = root / "data" / "real"
    for dataset in ("mimic-cxr", "ct-rate"):
        real_corpus(dataset, data / dataset, canaries)
    (root / "leakcheck.yaml").write_text(PROFILE)
    logs = root / "logs"
    logs.mkdir()
    # IPython's history database and matplotlib's cache live inside the scanned tree too.
    env = {**os.environ, "IPYTHONDIR": str(root / ".ipython"), "MPLCONFIGDIR": str(root / ".matplotlib")}
    with open(logs / "book.stdout.log", "wb") as out, open(logs / "book.stderr.log", "wb") as err:
        done = subprocess.run([sys.executable, "-m", "radcore.cli", "book", "--profile", "leakcheck.yaml",
                               "--workers", "2"], cwd=root, env=env, stdout=out, stderr=err, timeout=1500)
    return root, data, done.returncode


def test_the_book_builds_on_real_mode_data(book):
    root, _data, returncode = book
    assert returncode == 0, (root / "logs" / "book.stderr.log").read_text()[-3000:]
    results = sorted((root / "runs" / "leakcheck").rglob("results.json"))
    assert len(results) == CELLS
    assert all(json.loads(p.read_text())["data"]["source"] == "real" for p in results)
    page = (root / "_build" / "html" / "book" / "analysis" / "data.html").read_text()
    for dataset in ("mimic-cxr", "ct-rate"):  # both corpora are real: no report text is shown
        assert f"holds real {dataset} data" in page


def test_no_canary_in_any_file_of_the_book_build(book, canaries):
    root, data, returncode = book
    assert returncode == 0
    leaks, kinds = scan_tree(root, canaries, skip=(data,))
    assert leaks == [], f"report text leaked into: {leaks[:20]}"
    # The scan read what it should have: every kind of output, in the numbers the profile implies.
    assert kinds[".ipynb"] >= CELLS + 3 and kinds[".npz"] == CELLS and kinds["adapter card"] == 4
    assert kinds[".safetensors"] >= CELLS and kinds[".html"] >= CELLS + 6 and kinds[".js"] >= 1
    assert (root / "_build" / "html" / "searchindex.js").is_file()
    assert kinds[".log"] == 2 and kinds[".json"] >= CELLS
    print(f"\nscanned {sum(kinds.values())} files: {dict(sorted(kinds.items()))}")
