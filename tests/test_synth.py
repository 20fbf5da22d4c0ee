"""The synthetic corpus generator: real layouts, determinism, realistic labels, safe writing."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radcore.data import synth
from radcore.data.synth_findings import C, M
from radcore.labels import CT_RATE_LABELS, MIMIC_CXR_LABELS

MIMIC_FILES = ("mimic-cxr-2.0.0-chexpert.csv.gz", "mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.0.0-split.csv.gz")
CT_FILES = ("dataset/radiology_text_reports/train_reports.csv",
            "dataset/radiology_text_reports/validation_reports.csv",
            "dataset/multi_abnormality_labels/train_predicted_labels.csv",
            "dataset/multi_abnormality_labels/valid_predicted_labels.csv")
HEDGES = ("possibl", "cannot", "not excluded", "may ", "likely", "questionable", "could", "versus", "suspected",
          "concerning", "borderline", "upper limit")

MIMIC_RATES = {M.NO_FINDING: .30, M.SUPPORT_DEVICES: .28, M.PLEURAL_EFFUSION: .23, M.LUNG_OPACITY: .22,
               M.ATELECTASIS: .20, M.CARDIOMEGALY: .19, M.EDEMA: .12, M.PNEUMONIA: .07, M.CONSOLIDATION: .05,
               M.PNEUMOTHORAX: .04, M.ENLARGED_CARDIOMEDIASTINUM: .03, M.LUNG_LESION: .03, M.FRACTURE: .02,
               M.PLEURAL_OTHER: .01}
CT_RATES = {C.LUNG_NODULE: .45, C.LUNG_OPACITY: .38, C.ARTERIAL_WALL_CALCIFICATION: .28,
            C.PULMONARY_FIBROTIC_SEQUELA: .27, C.ATELECTASIS: .25, C.CORONARY_ARTERY_WALL_CALCIFICATION: .25,
            C.LYMPHADENOPATHY: .25, C.EMPHYSEMA: .20, C.CONSOLIDATION: .17, C.HIATAL_HERNIA: .14,
            C.PLEURAL_EFFUSION: .12, C.MEDICAL_MATERIAL: .10, C.CARDIOMEGALY: .10, C.BRONCHIECTASIS: .10,
            C.PERIBRONCHIAL_THICKENING: .10, C.INTERLOBULAR_SEPTAL_THICKENING: .08,
            C.MOSAIC_ATTENUATION_PATTERN: .07, C.PERICARDIAL_EFFUSION: .07}


# ------------------------------------------------------------------------------------------ helpers

def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(files: dict[str, bytes], name: str) -> pd.DataFrame:
    """A CSV of an in-memory corpus, every cell as text (blank stays '')."""
    return pd.read_csv(io.BytesIO(files[name]), compression="gzip" if name.endswith(".gz") else None, dtype=str,
                       keep_default_na=False)


def mimic_texts(files: dict[str, bytes]) -> dict[int, str]:
    return {int(k.rsplit("/s", 1)[1][:-4]): v.decode() for k, v in files.items() if k.startswith("files/")}


def ct_tables(files: dict[str, bytes]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All report rows and label rows, with the file's split added."""
    read = lambda rel: read_csv(files, rel)  # noqa: E731
    reports = pd.concat([read(CT_FILES[0]).assign(file="train"), read(CT_FILES[1]).assign(file="valid")])
    labels = pd.concat([read(CT_FILES[2]).assign(file="train"), read(CT_FILES[3]).assign(file="valid")])
    return reports, labels


def ct_unique(reports: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """One row per scan: text and 0/1 labels."""
    both = reports.merge(labels, on=["VolumeName", "file"])
    both["scan"] = both.VolumeName.str.rsplit("_", n=1).str[0]
    return both.drop_duplicates("scan")


# n=5000 corpora are checked in memory (corpus_files): creating and deleting thousands of small files costs
# more than generating them on a slow disk. test_disk_matches_memory ties the two together.

@pytest.fixture(scope="module")
def mimic() -> dict[str, bytes]:
    return synth.corpus_files("mimic-cxr", n=5000, seed=11)


@pytest.fixture(scope="module")
def ct() -> dict[str, bytes]:
    return synth.corpus_files("ct-rate", n=5000, seed=11)


# ------------------------------------------------------------------------------------------ determinism

@pytest.mark.parametrize("dataset", ["mimic-cxr", "ct-rate"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, dataset):
    a = tree_bytes(synth.write_corpus(dataset, n=100, seed=5, out=tmp_path / "a"))
    b = tree_bytes(synth.write_corpus(dataset, n=100, seed=5, out=tmp_path / "b"))
    c = synth.corpus_files(dataset, n=100, seed=6)
    assert a == b
    assert len(a) > 3
    shared = [k for k in a if k in c and k != synth.MARKER]
    assert all(a[k] != c[k] for k in shared if k.endswith((".csv", ".gz")))
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in shared)


@pytest.mark.parametrize("dataset", ["mimic-cxr", "ct-rate"])
def test_disk_matches_memory(tmp_path, dataset):
    on_disk = tree_bytes(synth.write_corpus(dataset, n=300, seed=9, out=tmp_path / "x"))
    assert on_disk == synth.corpus_files(dataset, n=300, seed=9)


# ------------------------------------------------------------------------------------------ MIMIC-CXR layout

def test_mimic_layout_ids_and_columns(mimic):
    reports = [k for k in mimic if k.startswith("files/")]
    assert sorted(set(mimic) - set(reports)) == sorted([*MIMIC_FILES, synth.MARKER])
    assert len(reports) == 5000
    for k in reports:
        _, group, patient, study = k.split("/")
        assert re.fullmatch(r"p1\d{7}", patient) and group == patient[:3]
        assert re.fullmatch(r"s5\d{7}\.txt", study)
    chex = read_csv(mimic, MIMIC_FILES[0])
    assert list(chex.columns) == ["subject_id", "study_id", *MIMIC_CXR_LABELS]
    assert chex.study_id.is_unique and len(chex) == 5000
    on_disk = {(int(k.split("/")[2][1:]), int(k.split("/")[3][1:-4])) for k in reports}
    assert on_disk == set(zip(chex.subject_id.astype(int), chex.study_id.astype(int)))
    cells = set(np.unique(chex[list(MIMIC_CXR_LABELS)].to_numpy()))
    assert cells == {"1.0", "0.0", "-1.0", ""}
    assert set(chex[M.NO_FINDING]) == {"1.0", ""}
    assert chex.groupby("subject_id").size().max() <= 4


def test_mimic_negbio_is_a_slightly_different_labeller(mimic):
    chex, negbio = (read_csv(mimic, name) for name in MIMIC_FILES[:2])
    assert list(negbio.columns) == list(chex.columns)
    assert (negbio[["subject_id", "study_id"]] == chex[["subject_id", "study_id"]]).all().all()
    changed = (negbio[list(MIMIC_CXR_LABELS)] != chex[list(MIMIC_CXR_LABELS)]).to_numpy().mean()
    assert 0.01 < changed < 0.03
    assert set(negbio[M.NO_FINDING]) == {"1.0", ""}


def test_mimic_split_is_per_image_and_per_patient(mimic):
    split = read_csv(mimic, MIMIC_FILES[2])
    assert list(split.columns) == ["dicom_id", "study_id", "subject_id", "split"]
    assert split.dicom_id.is_unique
    assert split.dicom_id.str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}").all()
    per_study = split.groupby("study_id").size()
    assert len(per_study) == 5000 and per_study.between(1, 3).all() and per_study.max() == 3
    assert set(split.split) == {"train", "validate", "test"}
    assert split.groupby("subject_id").split.nunique().max() == 1
    shares = split.drop_duplicates("subject_id").split.value_counts(normalize=True)
    assert 0.74 < shares["train"] < 0.86 and 0.06 < shares["test"] < 0.14


def test_mimic_report_format_and_section_variants(mimic):
    texts = list(mimic_texts(mimic).values())
    for t in texts[:300]:
        lines = t.split("\n")
        assert lines[0] == " " * 33 + "FINAL REPORT" and lines[1].startswith(" EXAMINATION:  CHEST")
        assert all(line.startswith(" ") for line in lines[1:-1]) and lines[-1] == ""
        assert max(map(len, lines)) <= 80
    share = lambda f: np.mean([f(t) for t in texts])  # noqa: E731
    assert share(lambda t: "___" in t) > 0.9  # de-identified spans
    assert 0.7 < share(lambda t: "\n FINDINGS:" in t and "\n IMPRESSION:" in t) < 0.9
    assert 0.06 < share(lambda t: "\n FINDINGS:" not in t and "\n IMPRESSION:" in t) < 0.14
    assert 0.02 < share(lambda t: "IMPRESSION:" not in t and "FINDINGS:" not in t) < 0.08
    assert share(lambda t: "FINDINGS AND IMPRESSION:" in t) > 0.02
    words = [len(t.split(" COMPARISON:")[1].split()) for t in texts]
    assert 40 <= np.median(words) <= 120


# ------------------------------------------------------------------------------------------ CT-RATE layout

def test_ct_layout_volumes_and_columns(ct):
    assert sorted(ct) == sorted([*CT_FILES, synth.MARKER])
    reports, labels = ct_tables(ct)
    assert list(reports.columns[:-1]) == ["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN",
                                          "Impressions_EN"]
    assert list(labels.columns[:-1]) == ["VolumeName", *CT_RATE_LABELS]
    assert reports.VolumeName.is_unique and labels.VolumeName.is_unique
    assert list(reports.VolumeName) == list(labels.VolumeName)
    parts = reports.VolumeName.str.extract(r"^(train|valid)_(\d+)_([ab])_([123])\.nii\.gz$")
    assert parts.notna().all().all()
    assert (parts[0] == reports.file.to_numpy()).all()
    scans = reports.VolumeName.str.rsplit("_", n=1).str[0]
    assert scans.nunique() == 5000
    assert 1.6 < len(reports) / 5000 < 2.3  # reconstructions per scan
    patients = scans.str.rsplit("_", n=1).str[0].drop_duplicates()
    assert 1.15 < 5000 / len(patients) < 1.45
    assert 0.10 < patients.str.startswith("valid").mean() < 0.20
    assert set(np.unique(labels[list(CT_RATE_LABELS)].to_numpy())) == {"0", "1"}


def test_ct_reconstructions_share_text_and_labels(ct):
    reports, labels = ct_tables(ct)
    both = reports.merge(labels, on=["VolumeName", "file"])
    both["scan"] = both.VolumeName.str.rsplit("_", n=1).str[0]
    columns = ["ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN", *CT_RATE_LABELS]
    assert (both.groupby("scan")[columns].nunique() == 1).all().all()


def test_ct_report_text(ct):
    scans = ct_unique(*ct_tables(ct))
    assert 0.15 < (scans.ClinicalInformation_EN == "Not given.").mean() < 0.35
    assert 0.002 < (scans.Findings_EN == "Not given.").mean() < 0.03
    given = scans[scans.Findings_EN != "Not given."]
    words = given.Findings_EN.str.split().str.len()
    assert 120 <= words.median() <= 250 and words.min() >= 50
    assert given.Findings_EN.str.startswith("Trachea").all()
    assert given.Findings_EN.str.contains("lung parenchyma window;").all()
    assert scans.Technique_EN.str.contains("chest CT|images of the chest").all()
    assert (scans.Impressions_EN.str.split().str.len() <= 60).all()


# ------------------------------------------------------------------------------------------ labels

def test_mimic_prevalence_is_realistic(mimic):
    chex = read_csv(mimic, MIMIC_FILES[0])
    for label, rate in MIMIC_RATES.items():
        got = (chex[label] == "1.0").mean()
        assert rate / 1.6 < got < rate * 1.6, (label, got, rate)
    for label in (M.PNEUMONIA, M.ATELECTASIS, M.EDEMA, M.CONSOLIDATION):
        assert (chex[label] == "-1.0").mean() > 0.015, label


def test_ct_prevalence_is_realistic(ct):
    scans = ct_unique(*ct_tables(ct))
    for label, rate in CT_RATES.items():
        got = (scans[label] == "1").mean()
        assert rate / 1.6 < got < rate * 1.6, (label, got, rate)


def test_findings_co_occur(mimic, ct):
    chex = read_csv(mimic, MIMIC_FILES[0])
    pos = lambda df, a, v="1.0": df[a] == v  # noqa: E731
    edema = pos(chex, M.EDEMA)
    assert pos(chex, M.CARDIOMEGALY)[edema].mean() > 1.5 * pos(chex, M.CARDIOMEGALY).mean()
    scans = ct_unique(*ct_tables(ct))
    arterial = pos(scans, C.ARTERIAL_WALL_CALCIFICATION, "1")
    coronary = pos(scans, C.CORONARY_ARTERY_WALL_CALCIFICATION, "1")
    assert coronary[arterial].mean() > 1.5 * coronary[~arterial].mean()


def test_negated_mentions_defeat_keyword_spotting(mimic, ct):
    chex = read_csv(mimic, MIMIC_FILES[0]).set_index("study_id")
    texts = mimic_texts(mimic)
    has = lambda word: pd.Series({k: word in t.lower() for k, t in texts.items()})  # noqa: E731
    effusion = has("effusion").reindex(chex.index.astype(int)).to_numpy()
    cells = chex[M.PLEURAL_EFFUSION].to_numpy()
    assert (effusion & (cells == "0.0")).sum() > 0.5 * (effusion & (cells == "1.0")).sum()
    assert (~effusion & (cells == "1.0")).sum() > 50  # positives phrased without the keyword
    pneumothorax = has("pneumothorax").reindex(chex.index.astype(int)).to_numpy()
    assert (pneumothorax & (chex[M.PNEUMOTHORAX].to_numpy() == "0.0")).sum() > 1000
    scans = ct_unique(*ct_tables(ct))
    said = scans.Findings_EN.str.contains("pleural effusion", case=False)
    assert (said & (scans[C.PLEURAL_EFFUSION] == "0")).sum() > 1000
    lymph = scans.Findings_EN.str.contains("lymph node", case=False)
    assert (lymph & (scans[C.LYMPHADENOPATHY] == "0")).sum() > 1000


def test_hedged_mentions_are_uncertain(mimic):
    chex = read_csv(mimic, MIMIC_FILES[0])
    texts = mimic_texts(mimic)
    for label in (M.PNEUMONIA, M.ATELECTASIS, M.EDEMA):
        studies = chex.study_id[chex[label] == "-1.0"].astype(int)
        assert len(studies) > 75
        hedged = [any(h in texts[s].lower() for h in HEDGES) for s in studies]
        assert np.mean(hedged) > 0.9, label  # the rest: labeller noise turned a 1.0 or 0.0 into -1.0
    assert any("cannot exclude pneumonia" in t.lower() for t in texts.values())


def test_no_finding_follows_the_other_labels(mimic):
    chex = read_csv(mimic, MIMIC_FILES[0])
    pathology = [n for n in MIMIC_CXR_LABELS if n not in (M.NO_FINDING, M.SUPPORT_DEVICES)]
    found = chex[pathology].isin(["1.0", "-1.0"]).any(axis=1)
    normal = chex[M.NO_FINDING] == "1.0"
    assert (normal & found).mean() < 0.03 and (~normal & ~found).mean() < 0.03  # only labeller noise
    assert (normal & (chex[M.SUPPORT_DEVICES] == "1.0")).sum() > 10


def test_loaders_read_the_synthetic_corpora(tmp_path):
    load_corpus = pytest.importorskip("radcore.data").load_corpus
    for dataset in ("mimic-cxr", "ct-rate"):
        corpus = load_corpus(dataset, synth.write_corpus(dataset, n=200, seed=2, out=tmp_path / dataset))
        assert len(corpus) == 200 and all(corpus.texts)


# ------------------------------------------------------------------------------------------ arguments & safety

@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10", None, synth.MAX_N + 1])
def test_n_is_validated(tmp_path, n):
    with pytest.raises(ValueError, match="n must be an integer"):
        synth.write_corpus("mimic-cxr", n=n, seed=0, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_dataset_and_seed_are_validated(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        synth.write_corpus("mimic", n=10, seed=0, out=tmp_path / "x")
    with pytest.raises(ValueError, match="seed must be an integer"):
        synth.write_corpus("ct-rate", n=10, seed=-1, out=tmp_path / "x")


def test_refuses_a_nonempty_folder_but_fills_an_empty_one(tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="remove it or choose another folder"):
        synth.write_corpus("ct-rate", n=10, seed=0, out=out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synth.write_corpus("ct-rate", n=10, seed=0, out=empty) == empty and synth.is_synthetic(empty)


@pytest.mark.parametrize("dataset,victim", [("mimic-cxr", "_split_rows"), ("ct-rate", "_write_csv")])
def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, dataset, victim):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, victim, boom)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.write_corpus(dataset, n=30, seed=0, out=tmp_path / "corpus")
    assert list(tmp_path.iterdir()) == []


def test_marker_file(tmp_path):
    out = synth.write_corpus("mimic-cxr", n=20, seed=3, out=str(tmp_path / "deep" / "m"))
    info = json.loads((out / synth.MARKER).read_text())
    assert info["synthetic"] is True and (info["dataset"], info["n"], info["seed"]) == ("mimic-cxr", 20, 3)
    assert info["version"] == synth.GENERATOR_VERSION
    assert synth.is_synthetic(out) and not synth.is_synthetic(tmp_path)


def test_gzip_headers_are_fixed(tmp_path):
    out = synth.write_corpus("mimic-cxr", n=20, seed=3, out=tmp_path / "m")
    for name in MIMIC_FILES:
        raw = (out / name).read_bytes()
        assert raw[4:8] == b"\0\0\0\0"  # mtime 0
        rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode())))
        assert len(rows) > 20


def test_study_rows_match_report_files_for_every_study(tmp_path):
    out = synth.write_corpus("mimic-cxr", n=300, seed=8, out=tmp_path / "m")
    chex = pd.read_csv(out / MIMIC_FILES[0], dtype=str)
    split = pd.read_csv(out / MIMIC_FILES[2], dtype=str)
    files = defaultdict(set)
    for p in (out / "files").glob("*/*/*.txt"):
        files[p.parent.name].add(p.stem)
    labelled = defaultdict(set)
    for subject, study in zip(chex.subject_id, chex.study_id):
        labelled[f"p{subject}"].add(f"s{study}")
    assert files == labelled
    assert set(split.study_id) == set(chex.study_id)
