"""Real-format loaders on tiny hand-made trees (tests/realformat.py)."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from radcore.data import CtRateOptions, MimicOptions, load_corpus, load_ct_rate, load_mimic_cxr, options_for
from radcore.data.sections import extract, last_paragraph, split_sections
from radcore.errors import DataError
from radcore.labels import CT_RATE_LABELS, MIMIC_CXR_LABELS
from realformat import (Study, ct_labels, ct_row, default_ct, default_studies, mimic_report, write_csv,
                        write_ct_rate, write_mimic)

CANARY = "ZEBRA-CANARY-7731"
L = {n: i for i, n in enumerate(MIMIC_CXR_LABELS)}


def row_of(corpus, ident):
    return corpus.ids.index(ident)


# ------------------------------------------------------------------------------------------ MIMIC-CXR

def test_mimic_happy_path(tmp_path):
    write_mimic(tmp_path)
    c = load_mimic_cxr(tmp_path)
    assert c.dataset == "mimic-cxr" and c.label_names == MIMIC_CXR_LABELS
    assert c.ids == ("s50414267", "s50771383", "s51178377", "s53189527", "s57375967")
    assert c.patient_ids == ("p10000032", "p10000898", "p10000935", "p10000032", "p10000764")
    assert c.split == ("train", "test", "test", "train", "validate")
    assert c.texts[0] == "The lungs are clear. No pleural effusion. No acute cardiopulmonary process."
    assert c.texts[1] == "Endotracheal tube in place."  # findings only
    i = row_of(c, "s53189527")
    assert c.labels[i, L["Cardiomegaly"]] == 1 and c.labels[i, L["Edema"]] == 0
    assert c.labels[i, L["Pleural Effusion"]] == 0 and c.label_mask[i, L["Pleural Effusion"]] == 0  # ignore
    assert c.labels[i, L["No Finding"]] == 0 and c.label_mask[i, L["No Finding"]] == 1  # blank -> negative
    assert c.labels[row_of(c, "s50414267"), L["No Finding"]] == 1
    assert c.labels.dtype == np.float32 and c.label_mask.dtype == np.float32
    assert c.label_mask.sum() == c.labels.size - 2
    assert c.skipped["uncertain_ignore"] == 2
    assert all(v == 0 for k, v in c.skipped.items() if not k.startswith("uncertain"))


@pytest.mark.parametrize("policy,value,mask", [("positive", 1, 1), ("negative", 0, 1), ("ignore", 0, 0)])
def test_mimic_uncertain_policies(tmp_path, policy, value, mask):
    write_mimic(tmp_path)
    c = load_corpus("mimic-cxr", tmp_path, uncertain=policy)
    i, j = row_of(c, "s57375967"), L["Pneumonia"]
    assert (c.labels[i, j], c.label_mask[i, j]) == (value, mask)
    assert c.labels[i, L["Lung Opacity"]] == 1 and c.label_mask[i, L["Lung Opacity"]] == 1


@pytest.mark.parametrize("reports", ["zip", "both"])
def test_mimic_zip_matches_tree(tmp_path, reports):
    write_mimic(tmp_path / "tree")
    write_mimic(tmp_path / "zip", reports=reports)
    a = load_mimic_cxr(tmp_path / "tree")
    b = load_mimic_cxr(tmp_path / "zip", MimicOptions(reports="zip"))
    assert a.ids == b.ids and a.texts == b.texts and np.array_equal(a.labels, b.labels)


def test_mimic_plain_csv_flat_layout_and_column_order(tmp_path):
    cols = ["Support Devices", "study_id", "extra", *reversed(MIMIC_CXR_LABELS[:-1]), "subject_id"]
    write_mimic(tmp_path / "a", gz=False, layout="flat", label_columns=cols)
    write_mimic(tmp_path / "b")
    a, b = load_mimic_cxr(tmp_path / "a"), load_mimic_cxr(tmp_path / "b")
    assert a.ids == b.ids and np.array_equal(a.labels, b.labels) and a.split == b.split


def test_mimic_negbio_source(tmp_path):
    write_mimic(tmp_path, label_source="negbio")
    assert len(load_corpus("mimic-cxr", tmp_path, label_source="negbio")) == 5
    with pytest.raises(DataError, match="mimic-cxr-2.0.0-chexpert.csv.gz .*not found.*MIMIC-CXR-JPG"):
        load_mimic_cxr(tmp_path)


def test_sections_and_fallbacks():
    report = mimic_report("Heart normal.\n  Lungs clear.", "No  acute ___ process.")
    assert extract(report) == "Heart normal. Lungs clear. No acute ___ process."
    assert extract(report, "findings") == "Heart normal. Lungs clear."
    assert extract(report, "impression") == "No acute ___ process."
    assert extract(report, "full").startswith("FINAL REPORT EXAMINATION: CHEST (PA AND LAT)")
    both = " INDICATION: ___\n \n FINDINGS AND IMPRESSION:\n Small effusion.\n"
    assert [n for n, _ in split_sections(both)] == ["", "INDICATION", "FINDINGS AND IMPRESSION"]
    assert extract(both) == extract(both, "findings") == extract(both, "impression") == "Small effusion."
    bare = "CHEST RADIOGRAPH\n \n Lungs are clear.\n \n No change from prior.\n \n"
    assert extract(bare) is None and last_paragraph(bare) == "No change from prior."
    assert extract(" FINDINGS:\n \n IMPRESSION:  \n") is None  # headers without text -> fallback


@pytest.mark.parametrize("fallback,expected,n", [("last_paragraph", "Stable appearance of the chest.", 5),
                                                 ("full", "PORTABLE CHEST: Lungs clear. Stable appearance "
                                                          "of the chest.", 5), ("skip", None, 4)])
def test_mimic_fallbacks(tmp_path, fallback, expected, n):
    studies = default_studies()
    studies[0].text = "PORTABLE CHEST:\n Lungs clear.\n \n Stable appearance of the chest.\n"
    write_mimic(tmp_path, studies)
    c = load_mimic_cxr(tmp_path, MimicOptions(fallback=fallback))
    assert len(c) == n
    if expected:
        assert c.texts[row_of(c, "s50414267")] == expected and c.skipped["section_fallback"] == 1
    else:
        assert "s50414267" not in c.ids and c.skipped["no_sections"] == 1


def test_mimic_counted_skips(tmp_path):
    studies = default_studies() + [
        Study(10001111, 52000001, labels=None),                      # report without labels
        Study(10001111, 52000002, text=None),                        # labels without report
        Study(10001111, 52000003, split=None),                       # not in split file
        Study(10001111, 52000004, text=" \n \n\t\n"),                # whitespace only
        Study(10001111, 52000005, text=mimic_report("x" * 200, "y")),  # too long
    ]
    write_mimic(tmp_path, studies)
    c = load_mimic_cxr(tmp_path, MimicOptions(max_chars=100))
    assert c.skipped["report_without_labels"] == 1 and c.skipped["labels_without_report"] == 1
    assert c.skipped["study_without_split"] == 1 and c.skipped["empty_text"] == 1
    assert c.skipped["truncated_long"] == 1 and c.texts[row_of(c, "s52000005")] == "x" * 100
    assert "s52000001" not in c.ids and "s52000004" not in c.ids


def _bad_label(tmp_path, cell):
    studies = default_studies()
    studies[2].text = mimic_report(f"Finding {CANARY}.", "Impression.")
    studies[2].labels = {"Edema": cell}
    return write_mimic(tmp_path, studies)


@pytest.mark.parametrize("cell", ["2.0", "yes", "nan", f"positive {CANARY}"])
def test_mimic_bad_label_value(tmp_path, cell):
    paths = _bad_label(tmp_path, cell)
    with pytest.raises(DataError) as e:
        load_mimic_cxr(tmp_path)
    msg = str(e.value)
    assert str(paths["labels"]) in msg and "row 3 (line 4)" in msg and "column 'Edema'" in msg
    assert CANARY not in msg


def test_mimic_missing_label_column(tmp_path):
    cols = ["subject_id", "study_id", *[n for n in MIMIC_CXR_LABELS if n != "Pneumothorax"]]
    paths = write_mimic(tmp_path, label_columns=cols)
    with pytest.raises(DataError, match=re.escape(f"file {paths['labels']}, column 'Pneumothorax': missing column")):
        load_mimic_cxr(tmp_path)


def test_mimic_duplicate_study(tmp_path):
    studies = default_studies()
    studies.append(Study(10000032, 50414267, text=None, labels={"Edema": "1.0"}))
    paths = write_mimic(tmp_path, studies)
    with pytest.raises(DataError, match=re.escape(f"file {paths['labels']}, row 6 (line 7), column 'study_id': "
                                                  "study_id 50414267 repeats row 1 (line 2)")):
        load_mimic_cxr(tmp_path)


def test_mimic_patient_in_two_splits(tmp_path):
    studies = default_studies()
    studies[1].split = "test"
    paths = write_mimic(tmp_path, studies)
    with pytest.raises(DataError, match=re.escape(f"file {paths['split']}: subject_id 10000032 appears in several "
                                                  "splits ['test', 'train']")):
        load_mimic_cxr(tmp_path)


def test_mimic_conflicting_split_for_study(tmp_path):
    paths = write_mimic(tmp_path)
    text = gzip.decompress(paths["split"].read_bytes()).decode().replace("50414267,10000032,train\n",
                                                                         "50414267,10000032,test\n", 1)
    paths["split"].write_bytes(gzip.compress(text.encode()))
    with pytest.raises(DataError, match=re.escape(f"file {paths['split']}, row 2 (line 3): study_id 50414267 has "
                                                  "split 'train'")):
        load_mimic_cxr(tmp_path)


@pytest.mark.parametrize("reports", ["files", "zip"])
def test_mimic_non_utf8_report(tmp_path, reports):
    studies = default_studies()
    studies[3].text = f"FINDINGS: caf\xe9 {CANARY}".encode("latin-1")
    write_mimic(tmp_path, studies, reports=reports)
    with pytest.raises(DataError, match=r"p10/p10000898/s50771383.txt: report file is not valid UTF-8") as e:
        load_mimic_cxr(tmp_path)
    assert CANARY not in str(e.value) and "\\xe9" not in str(e.value)


def test_mimic_truncated_gzip(tmp_path):
    paths = write_mimic(tmp_path, default_studies() * 40)  # large enough to need several blocks
    data = paths["labels"].read_bytes()
    paths["labels"].write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=re.escape(f"file {paths['labels']}: compressed stream is truncated")):
        load_mimic_cxr(tmp_path)


def test_mimic_empty_missing_and_ambiguous(tmp_path):
    with pytest.raises(DataError, match="data directory does not exist"):
        load_mimic_cxr(tmp_path / "nowhere")
    write_mimic(tmp_path / "a", [Study(10000032, 50414267, split=None)])
    with pytest.raises(DataError, match="no labelled reports found"):
        load_mimic_cxr(tmp_path / "a")
    paths = write_mimic(tmp_path / "b")
    paths["split"].unlink()
    with pytest.raises(DataError, match=r"mimic-cxr-2.0.0-split.csv.gz \(or mimic-cxr-2.0.0-split.csv\) not found"):
        load_mimic_cxr(tmp_path / "b")
    paths = write_mimic(tmp_path / "c")
    write_csv(paths["labels"].with_suffix(""), ["subject_id"], [])
    with pytest.raises(DataError, match="several candidates for mimic-cxr-2.0.0-chexpert.csv"):
        load_mimic_cxr(tmp_path / "c")
    paths = write_mimic(tmp_path / "d", jpg_tree=False)
    for f in paths["files"].rglob("*.txt"):
        f.unlink()
    with pytest.raises(DataError, match="mimic-cxr-reports.zip.*physionet.org/content/mimic-cxr/2.0.0"):
        load_mimic_cxr(tmp_path / "d")


def test_mimic_subject_mismatch_and_logs(tmp_path, caplog):
    studies = default_studies()
    studies[0].text = mimic_report(f"Lungs clear {CANARY}.")
    write_mimic(tmp_path / "ok", studies)
    with caplog.at_level("DEBUG"):
        assert CANARY in load_mimic_cxr(tmp_path / "ok").texts[0]
    assert "5 studies loaded" in caplog.text and CANARY not in caplog.text
    studies.append(Study(10000999, 50414267, labels=None, split=None))  # same study under another patient
    write_mimic(tmp_path / "dup", studies)
    with pytest.raises(DataError, match="study s50414267 has two report files"):
        load_mimic_cxr(tmp_path / "dup")
    studies = default_studies()
    studies[2].subject = 10000765
    paths = write_mimic(tmp_path / "mismatch", studies)
    (paths["files"] / "p10/p10000765").rename(paths["files"] / "p10/p10000766")
    with pytest.raises(DataError, match=re.escape(f"file {paths['labels']}, row 3 (line 4), column 'subject_id': "
                                                  "subject_id 10000765 of study 57375967 differs")):
        load_mimic_cxr(tmp_path / "mismatch")


def test_mimic_corrupt_zip(tmp_path):
    paths = write_mimic(tmp_path, reports="zip")
    paths["zip"].write_bytes(paths["zip"].read_bytes()[:100])
    with pytest.raises(DataError, match=re.escape(f"file {paths['zip']}: cannot read the zip archive (BadZipFile)")):
        load_mimic_cxr(tmp_path)


def test_load_corpus_options():
    assert options_for("mimic-cxr", uncertain="positive") == MimicOptions(uncertain="positive")
    with pytest.raises(ValueError, match="unknown option.*'uncertainty'.*MimicOptions accepts"):
        options_for("mimic-cxr", uncertainty="positive")
    with pytest.raises(ValueError, match="MimicOptions.uncertain='maybe' is not allowed"):
        load_corpus("mimic-cxr", "/nonexistent", uncertain="maybe")
    with pytest.raises(ValueError, match="validation_fraction"):
        CtRateOptions(validation_fraction=1.5)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_corpus("chexpert", "/nonexistent")


# ------------------------------------------------------------------------------------------ CT-RATE

def test_ct_rate_happy_path(tmp_path):
    write_ct_rate(tmp_path)
    c = load_ct_rate(tmp_path, CtRateOptions(validation_fraction=0))
    assert c.dataset == "ct-rate" and c.label_names == CT_RATE_LABELS
    assert c.ids == ("train_1_a", "train_2_a", "train_3_a", "train_3_b", "valid_1_a")
    assert c.patient_ids == ("train_1", "train_2", "train_3", "train_3", "valid_1")
    assert c.split == ("train",) * 4 + ("test",)
    assert c.texts[2] == "Emphysema in both upper lobes."  # 'Not given.' findings left out
    assert c.texts[3] == "A 4 mm nodule in the right upper lobe."
    assert c.texts[1] == "Cardiomegaly, effusion. Bilateral pleural effusion. Heart enlarged."  # impression first
    j = CT_RATE_LABELS.index
    assert c.labels[1, j("Cardiomegaly")] == 1 and c.labels[1, j("Pleural effusion")] == 1 and c.labels[1].sum() == 2
    assert c.labels[4, j("Coronary artery wall calcification")] == 1 and c.label_mask.min() == 1
    assert c.skipped["reconstructions_merged"] == 1 and c.skipped["reconstruction_label_conflict"] == 0


@pytest.mark.parametrize("report_prefix,label_prefix", [("validation", "valid"), ("valid", "validation")])
def test_ct_rate_prefixes_and_dataset_dir(tmp_path, report_prefix, label_prefix):
    base = write_ct_rate(tmp_path, report_prefix=report_prefix, label_prefix=label_prefix)
    assert load_corpus("ct-rate", base).ids == load_corpus("ct-rate", tmp_path).ids


def test_ct_rate_sections_and_column_order(tmp_path):
    cols = ("Impressions_EN", "Findings_EN", "VolumeName", "Technique_EN", "ClinicalInformation_EN")
    write_ct_rate(tmp_path, report_columns=cols, label_columns=["x", *reversed(CT_RATE_LABELS), "VolumeName"])
    assert load_corpus("ct-rate", tmp_path, sections="impressions").texts[0] == "No acute pathology."
    full = load_corpus("ct-rate", tmp_path, sections="all").texts[0]
    assert full.startswith("Non-contrast axial images") and full.endswith("No acute pathology.")
    assert load_corpus("ct-rate", tmp_path, sections="findings").skipped["empty_text"] == 1  # train_3_a


def test_ct_rate_carve_by_patient(tmp_path):
    t = default_ct()
    vols = [f"train_{p}_{s}_{r}.nii.gz" for p in range(1, 61) for s in "ab" for r in (1, 2)]
    t["train_reports"], t["train_labels"] = [ct_row(v) for v in vols], [ct_labels(v) for v in vols]
    write_ct_rate(tmp_path, t)
    c = load_ct_rate(tmp_path, CtRateOptions(validation_fraction=0.3, seed=1))
    assert len(c) == 121 and c.skipped["reconstructions_merged"] == 120
    splits = {}
    for p, s in zip(c.patient_ids, c.split):
        splits.setdefault(p, set()).add(s)
    assert all(len(s) == 1 for s in splits.values())
    assert 5 < c.split_sizes()["validate"] < 40 and c.split_sizes()["test"] == 1
    assert load_ct_rate(tmp_path, CtRateOptions(validation_fraction=0.3, seed=1)).split == c.split


def test_ct_rate_counted_skips_and_conflicts(tmp_path):
    t = default_ct()
    t["train_labels"][1] = ct_labels("train_1_a_2.nii.gz", "Emphysema")        # reconstruction disagrees
    t["train_reports"].append(ct_row("train_9_a_1.nii.gz"))                     # no labels
    t["train_labels"].append(ct_labels("train_8_a_1.nii.gz"))                   # no report
    t["train_reports"].append(ct_row("train_7_a_1.nii.gz", "Not given.", " "))  # empty text
    t["train_labels"].append(ct_labels("train_7_a_1.nii.gz"))
    t["train_reports"].append(ct_row("train_6_a_1.nii.gz", "z" * 200))          # too long
    t["train_labels"].append(ct_labels("train_6_a_1.nii.gz"))
    write_ct_rate(tmp_path, t)
    c = load_ct_rate(tmp_path, CtRateOptions(max_chars=150, sections="findings_impression"))
    s = c.skipped
    assert (s["report_without_labels"], s["labels_without_report"], s["empty_text"]) == (1, 1, 1)
    assert s["reconstruction_label_conflict"] == 1 and s["truncated_long"] == 1
    assert c.labels[c.ids.index("train_1_a")].sum() == 0  # lowest reconstruction wins
    assert c.texts[c.ids.index("train_6_a")] == "z" * 150


def test_ct_rate_duplicate_volume(tmp_path):
    t = default_ct()
    t["train_reports"].append(ct_row("train_2_a_1.nii.gz", f"Other text {CANARY}."))
    base = write_ct_rate(tmp_path, t)
    with pytest.raises(DataError) as e:
        load_ct_rate(tmp_path)
    msg = str(e.value)
    assert f"file {base / 'radiology_text_reports/train_reports.csv'}, row 6 (line 7)" in msg
    assert "repeats row 3 (line 4)" in msg and CANARY not in msg


@pytest.mark.parametrize("name", ["train_1_a.nii.gz", "valid_1_a_1.nii.gz", f"{CANARY}.nii.gz", "train_x_a_1.nii"])
def test_ct_rate_bad_volume_name(tmp_path, name):
    t = default_ct()
    t["train_labels"][2]["VolumeName"] = name
    base = write_ct_rate(tmp_path, t)
    with pytest.raises(DataError) as e:
        load_ct_rate(tmp_path)
    msg = str(e.value)
    assert f"file {base / 'multi_abnormality_labels/train_predicted_labels.csv'}, row 3 (line 4), " \
           "column 'VolumeName'" in msg and CANARY not in msg


@pytest.mark.parametrize("cell", ["2", "yes", "", "0.5"])
def test_ct_rate_bad_label_value(tmp_path, cell):
    t = default_ct()
    t["valid_labels"][0]["Emphysema"] = cell
    base = write_ct_rate(tmp_path, t)
    with pytest.raises(DataError, match=re.escape(f"file {base / 'multi_abnormality_labels/valid_predicted_labels.csv'}"
                                                  ", row 1 (line 2), column 'Emphysema'")):
        load_ct_rate(tmp_path)


def test_ct_rate_multiline_cells_keep_line_numbers(tmp_path):
    t = default_ct()
    t["train_reports"][0]["Findings_EN"] = "Line one.\nLine two.\nLine three."
    t["train_reports"][3]["VolumeName"] = "bad.nii.gz"
    write_ct_rate(tmp_path, t)
    with pytest.raises(DataError, match=re.escape("row 4 (line 7)")):
        load_ct_rate(tmp_path)


def test_ct_rate_missing_inputs(tmp_path):
    with pytest.raises(DataError, match="data directory does not exist"):
        load_ct_rate(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no dataset/radiology_text_reports"):
        load_ct_rate(tmp_path)
    base = write_ct_rate(tmp_path)
    (base / "multi_abnormality_labels/valid_predicted_labels.csv").unlink()
    with pytest.raises(DataError, match="valid_predicted_labels.csv or validation_predicted_labels.csv not found"):
        load_ct_rate(tmp_path)
    write_csv(base / "multi_abnormality_labels/valid_predicted_labels.csv", ["VolumeName"], [])
    write_csv(base / "multi_abnormality_labels/validation_predicted_labels.csv", ["VolumeName"], [])
    with pytest.raises(DataError, match="both valid_predicted_labels.csv and validation_predicted_labels.csv"):
        load_ct_rate(tmp_path)
    (base / "multi_abnormality_labels/validation_predicted_labels.csv").unlink()
    t = default_ct()
    t["train_labels"] = [ct_labels("train_99_a_1.nii.gz")]
    t["valid_labels"] = [ct_labels("valid_99_a_1.nii.gz")]
    write_ct_rate(tmp_path, t)
    with pytest.raises(DataError, match="no labelled reports found"):
        load_ct_rate(tmp_path)
    cols = ["VolumeName", *CT_RATE_LABELS[1:]]
    base = write_ct_rate(tmp_path, label_columns=cols)
    with pytest.raises(DataError, match="column 'Medical material': missing column"):
        load_ct_rate(tmp_path)
