"""CT-RATE chest CT reports with their 18 multi-abnormality labels.

``data_dir`` is the folder holding ``dataset/`` or ``dataset/`` itself. Reconstructions of one scan
(``{split}_{patient}_{scan}_{reconstruction}.nii.gz``) share one report and become one corpus entry with
id ``{split}_{patient}_{scan}`` and patient ``{split}_{patient}``; the lowest reconstruction number wins.
CT-RATE's validation split is our ``test``; ``validate`` is carved from train by patient.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcore.corpus import Corpus, carve_validation
from radcore.data.sections import normalise
from radcore.data.tables import check_choice, data_folder, label_number, read_rows, token
from radcore.errors import DataError
from radcore.labels import CT_RATE_LABELS

log = logging.getLogger(__name__)

HINT = "CT-RATE is a gated Hugging Face dataset: https://huggingface.co/datasets/ibrahimhamamci/CT-RATE"
SECTIONS = {"impression_findings": ("Impressions_EN", "Findings_EN"),
            "findings_impression": ("Findings_EN", "Impressions_EN"), "findings": ("Findings_EN",),
            "impressions": ("Impressions_EN",),
            "all": ("ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN")}
MISSING = frozenset({"", "not given.", "not given", "nan"})
_VOLUME = re.compile(r"(train|valid)_(\d+)_([A-Za-z]+)_(\d+)\.nii\.gz")
# (split file prefix, our split, report file names, label file names); valid_ and validation_ both accepted
FILES = (("train", "train", ("train_reports.csv",), ("train_predicted_labels.csv",)),
         ("valid", "test", ("validation_reports.csv", "valid_reports.csv"),
          ("valid_predicted_labels.csv", "validation_predicted_labels.csv")))
SKIPS = ("report_without_labels", "labels_without_report", "empty_text", "truncated_long",
         "reconstructions_merged", "reconstruction_text_conflict", "reconstruction_label_conflict")


@dataclass(frozen=True)
class CtRateOptions:
    """How CT-RATE reports and labels become a corpus."""

    sections: str = "impression_findings"
    """Text fed to the model: ``impression_findings`` (Impressions_EN, then Findings_EN: CT findings run to
    ~260 tokens, so the summary goes first where truncation cannot cut it), ``findings_impression``, ``findings``,
    ``impressions`` or ``all`` (clinical information, technique, findings, impressions). A ``Not given.``
    or blank section is left out."""
    validation_fraction: float = 0.1
    """Share of training *patients* moved to ``validate`` (CT-RATE ships train and validation only)."""
    seed: int = 0
    """Seed of the patient-level validation carve."""
    max_chars: int = 20000
    """Texts longer than this are cut (counted as ``truncated_long``)."""

    def __post_init__(self):
        check_choice("CtRateOptions", "sections", self.sections, tuple(SECTIONS))
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"CtRateOptions.validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"CtRateOptions.seed must be an integer, got {self.seed!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ValueError(f"CtRateOptions.max_chars must be a positive integer, got {self.max_chars!r}")


def load_ct_rate(data_dir: str | Path, options: CtRateOptions = CtRateOptions()) -> Corpus:
    """Load CT-RATE under ``data_dir`` as a :class:`Corpus` (see :class:`CtRateOptions`)."""
    base = _dataset_dir(Path(data_dir).expanduser())
    skipped = dict.fromkeys(SKIPS, 0)
    entries = []
    for prefix, split, report_names, label_names in FILES:
        reports = _read_reports(_pick(base / "radiology_text_reports", report_names), prefix, options, skipped)
        labels = _read_labels(_pick(base / "multi_abnormality_labels", label_names), prefix, skipped)
        skipped["report_without_labels"] += len(reports.keys() - labels.keys())
        skipped["labels_without_report"] += len(labels.keys() - reports.keys())
        for key in reports.keys() & labels.keys():
            text = reports[key]
            if not text:
                skipped["empty_text"] += 1
                continue
            if len(text) > options.max_chars:
                skipped["truncated_long"] += 1
                text = text[:options.max_chars]
            entries.append((key, split, text, labels[key]))
    if not entries:
        raise DataError("no labelled reports found in this directory", path=base,
                        hint="check that the report and label CSVs describe the same volumes")
    entries.sort(key=lambda e: (e[0][0] != "train", int(e[0][1]), e[0][2]))
    patients = tuple(f"{k[0]}_{k[1]}" for k, *_ in entries)
    split = carve_validation(patients, [e[1] for e in entries], fraction=options.validation_fraction,
                             seed=options.seed)
    labels = np.asarray([e[3] for e in entries], dtype=np.float32).reshape(len(entries), len(CT_RATE_LABELS))
    log.info("CT-RATE: %d scans loaded; skipped/repaired: %s", len(entries), skipped)
    return Corpus(dataset="ct-rate", ids=tuple("_".join(k) for k, *_ in entries), patient_ids=patients,
                  texts=tuple(e[2] for e in entries), labels=labels, label_mask=np.ones_like(labels),
                  label_names=CT_RATE_LABELS, split=split, skipped=skipped)


def _dataset_dir(root: Path) -> Path:
    data_folder(root, hint=HINT)
    for base in (root / "dataset", root):
        if (base / "radiology_text_reports").is_dir() or (base / "multi_abnormality_labels").is_dir():
            return base
    raise DataError("no dataset/radiology_text_reports or dataset/multi_abnormality_labels folder here", path=root,
                    hint="point data_dir at the CT-RATE download (the folder holding dataset/) or at dataset/; " + HINT)


def _pick(folder: Path, names: tuple[str, ...]) -> Path:
    paths = [folder / n for n in names if (folder / n).is_file()]
    if not paths:
        raise DataError(f"{' or '.join(names)} not found", path=folder, hint=HINT)
    if len(paths) > 1:
        raise DataError(f"both {paths[0].name} and {paths[1].name} present", path=folder, hint="keep one of them")
    return paths[0]


def _volume(cell: str, prefix: str, path: Path, row: str) -> tuple[tuple[str, str, str], int]:
    """``((split, patient, scan), reconstruction)`` of a VolumeName."""
    m = _VOLUME.fullmatch(cell.strip())
    if not m or m.group(1) != prefix:
        raise DataError(f"VolumeName {token(cell)} does not match {prefix}_<patient>_<scan>_<reconstruction>.nii.gz",
                        path=path, row=row, column="VolumeName",
                        hint=f"each file holds only its own split's volumes ({prefix}_...); "
                        "use CT-RATE's files unmodified")
    return (m.group(1), m.group(2), m.group(3)), int(m.group(4))


def _merge(rows, path: Path, skipped: dict[str, int], *, conflict: str, merged: str | None = None) -> dict:
    """One value per scan from ``(key, reconstruction, row, value)``: the lowest reconstruction wins."""
    best, seen = {}, {}
    for volume, key, recon, row, value in rows:
        if volume in seen:
            raise DataError(f"VolumeName repeats row {seen[volume]}", path=path, row=row, column="VolumeName",
                            hint="each volume must appear once per file")
        seen[volume] = row
        if key in best:
            if merged:
                skipped[merged] += 1
            if best[key][1] != value:
                skipped[conflict] += 1
            if recon > best[key][0]:
                continue
        best[key] = (recon, value)
    return {k: v for k, (_, v) in best.items()}


def _read_reports(path: Path, prefix: str, options: CtRateOptions, skipped) -> dict[tuple, str]:
    columns = SECTIONS[options.sections]

    def rows():
        for row, cells in read_rows(path, required=("VolumeName",) + columns):
            key, recon = _volume(cells["VolumeName"], prefix, path, row)
            parts = (normalise(cells[c]) for c in columns)
            yield cells["VolumeName"].strip(), key, recon, row, " ".join(p for p in parts if p.lower() not in MISSING)
    return _merge(rows(), path, skipped, merged="reconstructions_merged", conflict="reconstruction_text_conflict")


def _read_labels(path: Path, prefix: str, skipped) -> dict[tuple, tuple[float, ...]]:
    def rows():
        for row, cells in read_rows(path, required=("VolumeName",) + CT_RATE_LABELS):
            key, recon = _volume(cells["VolumeName"], prefix, path, row)
            values = []
            for name in CT_RATE_LABELS:
                value = label_number(cells[name])
                if value not in (0, 1):
                    raise DataError(f"label value {token(cells[name])} is not 0 or 1", path=path, row=row, column=name,
                                    hint="values may also be written 0.0, 1.0 or with more zeros")
                values.append(float(value))
            yield cells["VolumeName"].strip(), key, recon, row, tuple(values)
    return _merge(rows(), path, skipped, conflict="reconstruction_label_conflict")
