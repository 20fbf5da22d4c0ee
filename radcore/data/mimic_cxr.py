"""MIMIC-CXR reports with MIMIC-CXR-JPG's CheXpert/NegBio labels and official split.

On PhysioNet the reports (``mimic-cxr/2.0.0``: ``files/p10/p10000032/s50414267.txt`` or
``mimic-cxr-reports.zip``) and the CSVs (``mimic-cxr-jpg/2.0.0``) sit in different folders: each is
found by exact name up to five folders below ``data_dir`` (report trees are never walked).
One corpus entry per study: id ``s<study_id>``, patient ``p<subject_id>``, ordered by study id. Reports with
Windows line endings read exactly as with Unix ones.
"""

from __future__ import annotations

import logging
import re
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcore.corpus import SPLITS, Corpus
from radcore.data.sections import SECTION_CHOICES, extract, last_paragraph, normalise
from radcore.data.tables import (SEARCH_DEPTH, check_choice, data_folder, find_named, label_number, read_rows, token,
                                 unix_newlines)
from radcore.errors import DataError
from radcore.labels import MIMIC_CXR_LABELS

log = logging.getLogger(__name__)

LABEL_FILES = {"chexpert": "mimic-cxr-2.0.0-chexpert.csv", "negbio": "mimic-cxr-2.0.0-negbio.csv"}
SPLIT_FILE = "mimic-cxr-2.0.0-split.csv"
REPORTS_ZIP = "mimic-cxr-reports.zip"
JPG_HINT = "it ships with MIMIC-CXR-JPG 2.0.0 on PhysioNet (https://physionet.org/content/mimic-cxr-jpg/2.0.0/)"
REPORTS_HINT = ("download mimic-cxr-reports.zip (or the files/ tree) of MIMIC-CXR 2.0.0 from PhysioNet "
                "(https://physionet.org/content/mimic-cxr/2.0.0/)")
SAME_RELEASE = "reports, labels and split must come from the same MIMIC-CXR release; re-download the mismatched file"
_ID = re.compile(r"(\d+)(?:\.0+)?")
_MEMBER = re.compile(r"(?:^|/)p\d\d/p(\d+)/s(\d+)\.txt")
SKIPS = ("report_without_labels", "labels_without_report", "study_without_split", "no_sections",
         "section_fallback", "empty_text", "truncated_long")


@dataclass(frozen=True)
class MimicOptions:
    """How MIMIC-CXR reports and labels become a corpus."""

    label_source: str = "chexpert"
    """Labeler whose CSV to use: ``chexpert`` (the 14 CheXpert labels of the reference study) or ``negbio``."""
    uncertain: str = "ignore"
    """Uncertain ``-1.0`` cells: ``ignore`` (label 0, mask 0: out of loss and metrics; the reference study is
    silent, and ignoring neither invents nor hides findings), ``positive`` (U-Ones) or ``negative`` (U-Zeros).
    Blank (not mentioned) is always negative."""
    sections: str = "findings_impression"
    """Text fed to the model: ``findings_impression`` (both, in report order), ``findings``, ``impression``
    or ``full`` (whole report)."""
    fallback: str = "last_paragraph"
    """When the chosen sections are absent or empty: ``last_paragraph`` (last non-empty paragraph, as the
    official section script does), ``full`` (whole report) or ``skip`` (drop, counted as ``no_sections``)."""
    reports: str = "auto"
    """Report source: ``auto`` (an extracted ``files/`` tree, else the zip), ``files`` or ``zip``."""
    max_chars: int = 20000
    """Texts longer than this are cut (counted as ``truncated_long``)."""

    def __post_init__(self):
        for name, choices in (("label_source", tuple(LABEL_FILES)), ("uncertain", ("ignore", "positive", "negative")),
                              ("sections", SECTION_CHOICES), ("fallback", ("last_paragraph", "full", "skip")),
                              ("reports", ("auto", "files", "zip"))):
            check_choice("MimicOptions", name, getattr(self, name), choices)
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ValueError(f"MimicOptions.max_chars must be a positive integer, got {self.max_chars!r}")


def load_mimic_cxr(data_dir: str | Path, options: MimicOptions = MimicOptions()) -> Corpus:
    """Load MIMIC-CXR under ``data_dir`` as a :class:`Corpus` (see :class:`MimicOptions`)."""
    root = data_folder(Path(data_dir).expanduser(), hint=REPORTS_HINT)
    label_name = LABEL_FILES[options.label_source]
    names = [label_name + ".gz", label_name, SPLIT_FILE + ".gz", SPLIT_FILE, REPORTS_ZIP]
    found, trees = find_named(root, names)
    label_path = _one(found, label_name, root)
    split_path = _one(found, SPLIT_FILE, root)
    with ExitStack() as stack:
        reports, read = _report_source(root, found[REPORTS_ZIP], trees, options.reports, stack)
        labels = _read_labels(label_path)
        splits = _read_split(split_path)
        skipped = dict.fromkeys(SKIPS, 0)
        skipped["report_without_labels"] = len(reports.keys() - labels.keys())
        skipped["labels_without_report"] = len(labels.keys() - reports.keys())
        rows = []
        for study in sorted(reports.keys() & labels.keys()):
            subject, where = reports[study]
            if labels[study][0] != subject:
                raise DataError(f"subject_id {labels[study][0]} of study {study} differs from the report's folder "
                                f"p{subject}", path=label_path, row=labels[study][1], column="subject_id",
                                hint=SAME_RELEASE)
            if study not in splits:
                skipped["study_without_split"] += 1
                continue
            if splits[study][1] != subject:
                raise DataError(f"subject_id {splits[study][1]} of study {study} differs from the report's folder "
                                f"p{subject}", path=split_path, row=splits[study][2], column="subject_id",
                                hint=SAME_RELEASE)
            text = _text(read(where), options, skipped)
            if text is not None:
                rows.append((study, subject, text, splits[study][0], labels[study][2]))
    if not rows:
        raise DataError("no labelled reports found in this directory", path=root,
                        hint="check that reports, label CSV and split CSV describe the same studies")
    log.info("MIMIC-CXR: %d studies loaded; skipped/repaired: %s", len(rows), skipped)
    return _corpus(rows, options.uncertain, skipped)


def _one(found: dict[str, list[Path]], name: str, root: Path) -> Path:
    paths = found[name + ".gz"] + found[name]
    if not paths:
        raise DataError(f"{name}.gz (or {name}) not found up to {SEARCH_DEPTH} folders below this directory",
                        path=root, hint=JPG_HINT)
    if len(paths) > 1:
        raise DataError(f"several candidates for {name}: {', '.join(map(str, paths))}", path=root,
                        hint="keep one of them, or point data_dir at a folder holding one")
    return paths[0]


def _report_source(root, zips, trees, choice, stack):
    """``({study: (subject, locator)}, read(locator) -> str)`` from an extracted tree or the zip."""
    trees = [t for t in trees if _has_reports(t)] if choice != "zip" else []
    if choice == "files" or (choice == "auto" and trees):
        if len(trees) != 1:
            raise DataError(f"{len(trees)} MIMIC-CXR report trees (files/p1x/pNNN/sNNN.txt) found"
                            + (f": {', '.join(map(str, trees))}" if trees else ""), path=root, hint=REPORTS_HINT)
        return _scan_tree(trees[0]), lambda p: _decode(p.read_bytes(), p)
    if len(zips) != 1:
        what = f"{len(zips)} copies of {REPORTS_ZIP}" + (" and no files/ report tree" if choice == "auto" else "")
        raise DataError(f"{what} found up to {SEARCH_DEPTH} folders below"
                        + (f": {', '.join(map(str, zips))}" if zips else ""), path=root, hint=REPORTS_HINT)
    try:
        archive = stack.enter_context(zipfile.ZipFile(zips[0]))
        members = {}
        for name in archive.namelist():
            m = _MEMBER.search(name)
            if m:
                _add(members, int(m.group(2)), int(m.group(1)), name, zips[0])
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"cannot read the zip archive ({type(e).__name__})", path=zips[0], hint=REPORTS_HINT) from None

    def read(member):
        try:
            return _decode(archive.read(member), f"{zips[0]}:{member}")
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"cannot read this member ({type(e).__name__})", path=f"{zips[0]}:{member}",
                            hint=REPORTS_HINT) from None
    return members, read


def _has_reports(tree: Path, probes: int = 20) -> bool:
    """Whether the first few patient folders of ``tree`` hold ``sNNN.txt`` files (MIMIC-CXR-JPG's do not)."""
    for group in sorted(tree.glob("p[0-9][0-9]")):
        for patient in group.iterdir():
            if any(patient.glob("s*.txt")):
                return True
            probes -= 1
            if probes <= 0:
                return False
    return False


def _scan_tree(tree: Path) -> dict[int, tuple[int, Path]]:
    found = {}
    for path in tree.glob("p[0-9][0-9]/p*/s*.txt"):
        m = _MEMBER.search(path.relative_to(tree).as_posix())
        if m:
            _add(found, int(m.group(2)), int(m.group(1)), path, tree)
    return found


def _add(found, study, subject, where, source):
    if study in found:
        raise DataError(f"study s{study} has two report files: {found[study][1]} and {where}", path=source)
    found[study] = (subject, where)


def _decode(data: bytes, where) -> str:
    try:
        return unix_newlines(data.decode("utf-8").lstrip("\ufeff"))
    except UnicodeDecodeError:
        raise DataError("report file is not valid UTF-8", path=where,
                        hint="re-download or re-extract the reports") from None


def _text(raw: str, options: MimicOptions, skipped: dict[str, int]) -> str | None:
    if not raw.strip():
        skipped["empty_text"] += 1
        return None
    text = extract(raw, options.sections)
    if text is None:
        if options.fallback == "skip":
            skipped["no_sections"] += 1
            return None
        skipped["section_fallback"] += 1
        text = last_paragraph(raw) if options.fallback == "last_paragraph" else normalise(raw)
    if not text:
        skipped["empty_text"] += 1
        return None
    if len(text) > options.max_chars:
        skipped["truncated_long"] += 1
        text = text[:options.max_chars]
    return text


def _id(cell: str, path, row, column) -> int:
    m = _ID.fullmatch(cell.strip())
    if not m:
        raise DataError(f"{column} must be an integer, got {token(cell)}", path=path, row=row, column=column)
    return int(m.group(1))


def _read_labels(path: Path) -> dict[int, tuple[int, str, list[float]]]:
    """``{study_id: (subject_id, row, [14 values in {1, 0, -1}])}``; blank -> 0; ``1``, ``1.0`` and ``1.00`` alike."""
    out = {}
    for row, cells in read_rows(path, required=("subject_id", "study_id") + MIMIC_CXR_LABELS):
        study = _id(cells["study_id"], path, row, "study_id")
        if study in out:
            raise DataError(f"study_id {study} repeats row {out[study][1]}", path=path, row=row, column="study_id",
                            hint="the label CSV must hold one row per study")
        values = []
        for name in MIMIC_CXR_LABELS:
            cell = cells[name].strip()
            value = 0 if not cell else label_number(cell)
            if value is None:
                raise DataError(f"label value {token(cell)} is not 1.0, 0.0, -1.0 or blank", path=path, row=row,
                                column=name, hint="values may also be written 1, 0, -1 or with more zeros (1.00)")
            values.append(float(value))
        out[study] = (_id(cells["subject_id"], path, row, "subject_id"), row, values)
    return out


def _read_split(path: Path) -> dict[int, tuple[str, int, str]]:
    """``{study_id: (split, subject_id, first row)}`` from one row per image; checks patient-disjointness."""
    out, subject_splits = {}, {}
    for row, cells in read_rows(path, required=("dicom_id", "study_id", "subject_id", "split")):
        study = _id(cells["study_id"], path, row, "study_id")
        subject = _id(cells["subject_id"], path, row, "subject_id")
        split = cells["split"].strip()
        if split not in SPLITS:
            raise DataError(f"split {token(split)} is not one of {SPLITS}", path=path, row=row, column="split",
                            hint="use the unmodified official split file")
        if study in out and out[study][:2] != (split, subject):
            first = out[study]
            raise DataError(f"study_id {study} has split {split!r} and subject {subject} here but split "
                            f"{first[0]!r} and subject {first[1]} at row {first[2]}", path=path, row=row,
                            hint="one study must have one split and one subject")
        out.setdefault(study, (split, subject, row))
        subject_splits.setdefault(subject, set()).add(split)
    for subject, seen in subject_splits.items():
        if len(seen) > 1:
            raise DataError(f"subject_id {subject} appears in several splits {sorted(seen)}; MIMIC-CXR's official "
                            "split is patient-disjoint", path=path, hint="use the unmodified official split file")
    return out


def _corpus(rows, uncertain: str, skipped: dict[str, int]) -> Corpus:
    raw = np.asarray([r[4] for r in rows], dtype=np.float32).reshape(len(rows), len(MIMIC_CXR_LABELS))
    unsure = raw == -1
    labels = np.where(unsure, 1.0 if uncertain == "positive" else 0.0, raw).astype(np.float32)
    mask = np.where(unsure & (uncertain == "ignore"), 0.0, 1.0).astype(np.float32)
    skipped[f"uncertain_{uncertain}"] = int(unsure.sum())
    return Corpus(dataset="mimic-cxr", ids=tuple(f"s{r[0]}" for r in rows), patient_ids=tuple(f"p{r[1]}" for r in rows),
                  texts=tuple(r[2] for r in rows), labels=labels, label_mask=mask, label_names=MIMIC_CXR_LABELS,
                  split=tuple(r[3] for r in rows), skipped=skipped)
