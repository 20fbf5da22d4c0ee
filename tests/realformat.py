"""Tiny hand-made trees in the real MIMIC-CXR and CT-RATE layouts (invented text only)."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from radcore.labels import CT_RATE_LABELS, MIMIC_CXR_LABELS


def write_csv(path: Path, header, rows) -> Path:
    """Write ``rows`` (sequences) under ``header``; gzip when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


# --------------------------------------------------------------------------------------------- MIMIC-CXR

def mimic_report(findings: str | None = "The lungs are clear. No pleural effusion.",
                 impression: str | None = "No acute cardiopulmonary process.", *,
                 indication: str = "___ year old with cough.") -> str:
    """A report laid out like MIMIC-CXR's: centred title, one-space-indented upper-case headers."""
    parts = ["                                 FINAL REPORT", " EXAMINATION:  CHEST (PA AND LAT)", " ",
             f" INDICATION:  {indication}", " ", " COMPARISON:  ___.", " "]
    if findings is not None:
        parts += [" FINDINGS:", " ", f" {findings}", " "]
    if impression is not None:
        parts += [" IMPRESSION:", " ", f" {impression}", " "]
    return "\n".join(parts) + "\n"


@dataclass
class Study:
    """One study: ``text`` None = no report file; ``labels`` None = no label row; ``split`` None = not in split."""

    subject: int
    study: int
    text: str | bytes | None = field(default_factory=mimic_report)
    labels: dict[str, str] | None = field(default_factory=dict)  # label -> cell ('1.0', '-1.0', ...); rest blank
    split: str | None = "train"
    images: int = 2


def default_studies() -> list[Study]:
    return [
        Study(10000032, 50414267, labels={"No Finding": "1.0"}),
        Study(10000032, 53189527, mimic_report("Heart size is enlarged. Small right pleural effusion.",
                                               "Cardiomegaly. Possible small effusion."),
              labels={"Cardiomegaly": "1.0", "Pleural Effusion": "-1.0", "Edema": "0.0"}),
        Study(10000764, 57375967, mimic_report(None, "Patchy opacity at the left base, cannot exclude pneumonia."),
              labels={"Lung Opacity": "1.0", "Pneumonia": "-1.0"}, split="validate"),
        Study(10000898, 50771383, mimic_report("Endotracheal tube in place.", None),
              labels={"Support Devices": "1.0"}, split="test"),
        Study(10000935, 51178377, labels={"No Finding": "1.0"}, split="test"),
    ]


def write_mimic(root: Path, studies: list[Study] | None = None, *, reports: str = "files", gz: bool = True,
                layout: str = "physionet", label_source: str = "chexpert", label_columns=None,
                jpg_tree: bool = True) -> dict[str, Path]:
    """Write a MIMIC-CXR install; ``layout`` 'physionet' (two projects, like a wget mirror) or 'flat'.

    ``reports`` is 'files' (extracted tree), 'zip' (mimic-cxr-reports.zip) or 'both'. ``label_columns``
    orders the label CSV's columns (default: the real order plus nothing else).
    """
    studies = default_studies() if studies is None else studies
    if layout == "physionet":
        cxr, jpg = root / "physionet.org/files/mimic-cxr/2.0.0", root / "physionet.org/files/mimic-cxr-jpg/2.0.0"
    else:
        cxr = jpg = root
    cxr.mkdir(parents=True, exist_ok=True)
    paths = {}
    members = {f"files/p{s.subject // 1000000}/p{s.subject}/s{s.study}.txt": s.text for s in studies
               if s.text is not None}
    if reports in ("files", "both"):
        for name, text in members.items():
            (cxr / name).parent.mkdir(parents=True, exist_ok=True)
            (cxr / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        paths["files"] = cxr / "files"
    if reports in ("zip", "both"):
        paths["zip"] = cxr / "mimic-cxr-reports.zip"
        with zipfile.ZipFile(paths["zip"], "w") as zf:
            for name, text in members.items():
                zf.writestr(name, text)
    if jpg_tree:  # MIMIC-CXR-JPG's image tree: same folder names, no .txt, must be ignored
        for s in studies[:2]:
            folder = jpg / f"files/p{s.subject // 1000000}/p{s.subject}/s{s.study}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "0001.jpg").write_bytes(b"")
    ext = ".csv.gz" if gz else ".csv"
    columns = list(label_columns or ("subject_id", "study_id") + MIMIC_CXR_LABELS)
    rows = [[{"subject_id": s.subject, "study_id": s.study}.get(c, (s.labels or {}).get(c, "")) for c in columns]
            for s in studies if s.labels is not None]
    paths["labels"] = write_csv(jpg / f"mimic-cxr-2.0.0-{label_source}{ext}", columns, rows)
    split_rows = [[f"{s.study:x}-{i}", s.study, s.subject, s.split] for s in studies if s.split
                  for i in range(s.images)]
    paths["split"] = write_csv(jpg / f"mimic-cxr-2.0.0-split{ext}", ["dicom_id", "study_id", "subject_id", "split"],
                               split_rows)
    return paths


# --------------------------------------------------------------------------------------------- CT-RATE

REPORT_COLUMNS = ("VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN")


def ct_row(volume: str, findings: str = "Trachea and both main bronchi are open. No pleural effusion.",
           impressions: str = "No acute pathology.", *, clinical: str = "Not given.",
           technique: str = "Non-contrast axial images of the thorax.") -> dict[str, str]:
    return {"VolumeName": volume, "ClinicalInformation_EN": clinical, "Technique_EN": technique,
            "Findings_EN": findings, "Impressions_EN": impressions}


def ct_labels(volume: str, *positive: str) -> dict[str, str]:
    return {"VolumeName": volume, **{n: str(int(n in positive)) for n in CT_RATE_LABELS}}


def default_ct() -> dict[str, list[dict[str, str]]]:
    train = [ct_row("train_1_a_1.nii.gz"), ct_row("train_1_a_2.nii.gz"),
             ct_row("train_2_a_1.nii.gz", "Bilateral pleural effusion. Heart enlarged.", "Cardiomegaly, effusion."),
             ct_row("train_3_a_1.nii.gz", "Not given.", "Emphysema in both upper lobes."),
             ct_row("train_3_b_1.nii.gz", "A 4 mm nodule in the right upper lobe.", "Not given.")]
    valid = [ct_row("valid_1_a_1.nii.gz", "Coronary artery calcification.", "Atherosclerosis.")]
    return {
        "train_reports": train, "valid_reports": valid,
        "train_labels": [ct_labels("train_1_a_1.nii.gz"), ct_labels("train_1_a_2.nii.gz"),
                         ct_labels("train_2_a_1.nii.gz", "Cardiomegaly", "Pleural effusion"),
                         ct_labels("train_3_a_1.nii.gz", "Emphysema"), ct_labels("train_3_b_1.nii.gz", "Lung nodule")],
        "valid_labels": [ct_labels("valid_1_a_1.nii.gz", "Coronary artery wall calcification")],
    }


def write_ct_rate(root: Path, tables: dict | None = None, *, report_prefix: str = "validation",
                  label_prefix: str = "valid", report_columns=REPORT_COLUMNS, label_columns=None) -> Path:
    """Write ``root/dataset/...`` with the real file names; returns the ``dataset`` folder."""
    t = default_ct() if tables is None else tables
    base = root / "dataset"
    label_columns = list(label_columns or ("VolumeName",) + CT_RATE_LABELS)
    for name, rows in (("radiology_text_reports/train_reports.csv", t["train_reports"]),
                       (f"radiology_text_reports/{report_prefix}_reports.csv", t["valid_reports"])):
        write_csv(base / name, report_columns, [[r.get(c, "") for c in report_columns] for r in rows])
    for name, rows in (("multi_abnormality_labels/train_predicted_labels.csv", t["train_labels"]),
                       (f"multi_abnormality_labels/{label_prefix}_predicted_labels.csv", t["valid_labels"])):
        write_csv(base / name, label_columns, [[r.get(c, "") for c in label_columns] for r in rows])
    return base
