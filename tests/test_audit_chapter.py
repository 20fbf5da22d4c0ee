"""The "Does DP protect?" chapter (notebooks/privacy_audit.ipynb) executes with and without audited runs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from radcore.audit.report import audit_numbers, audit_table, collect_audits
from radcore.audit.run import audit_run
from radcore.config import TrainConfig
from radcore.grid.book import ANALYSIS_NOTEBOOKS
from radcore.grid.kernel import execute
from radcore.train import train

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "privacy_audit.ipynb"


def _outputs(path: Path) -> tuple[list[str], list[str]]:
    texts, errors = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"{out['ename']}: {out['evalue']}")
            data = out.get("data", {})
            texts.append(data.get("text/markdown", "") + data.get("text/plain", "") + out.get("text", ""))
    return texts, errors


@pytest.fixture(scope="module")
def audited_root(synthetic_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("audits")
    for mode, epsilon in (("dp-lora", 1.0), ("lora", None)):
        out = root / mode
        train(TrainConfig(dataset="mimic-cxr", data_dir=str(synthetic_dirs["mimic-cxr"]), model="tiny-bert",
                          pretrained=False, mode=mode, epsilon=epsilon, epochs=1, max_length=32, max_train_reports=48,
                          canaries=40, device="cpu", progress=False), out)
        audit_run(out, n_bootstrap=20)
    return root


def test_the_chapter_is_in_the_book():
    assert "privacy_audit" in ANALYSIS_NOTEBOOKS
    assert "book/analysis/privacy_audit" in (REPO / "_toc.yml").read_text()


def test_chapter_says_so_when_there_are_no_audits(tmp_path):
    out = tmp_path / "chapter.ipynb"
    execute(NOTEBOOK, out, parameters={"audit_root": str(tmp_path / "none")}, cwd=os.getcwd())
    texts, errors = _outputs(out)
    assert not errors
    assert any("No audited runs in this build" in t and "radcore grid --profile audit" in t for t in texts)


def test_chapter_shows_audited_runs(audited_root, tmp_path):
    frame = collect_audits(audited_root)
    assert list(frame["mode"]) == ["dp-lora", "lora"]  # grid order: DP first
    table = audit_table(frame)
    assert table.loc[1, "claimed ε"] == "none" and table.loc[0, "claimed ε"] != "none"
    numbers = audit_numbers(frame)
    assert numbers["n_runs"] == 2 and numbers["n_dp"] == 1 and numbers["canaries"] == 40
    out = tmp_path / "chapter.ipynb"
    execute(NOTEBOOK, out, parameters={"audit_root": str(audited_root)}, cwd=os.getcwd())
    texts, errors = _outputs(out)
    assert not errors
    joined = "\n".join(texts)
    assert "Audited here: 2 runs (1 of them DP)" in joined and "DP-LoRA ε=1" in joined
    assert "image/png" in out.read_text()  # the figure


def test_the_readme_audit_table_is_made_from_the_audited_runs(audited_root, monkeypatch):
    """`radcore table --profile audit`: a profile whose cells train with canaries gets its audits, one row per run."""
    from radcore.grid.profile import parse_profile
    from radcore.readme_table import readme_table

    profile = parse_profile({"name": "audit-test", "description": "d", "models": ["tiny-bert"], "seeds": [0],
                             "datasets": {"mimic-cxr": {"data": "unused"}}, "settings": [{"mode": "lora"}],
                             "train": {"canaries": 40}}, source="test")
    monkeypatch.setattr(type(profile), "results_root", property(lambda self: audited_root))
    text = readme_table(profile)
    header, _rule, dp, lora = text.splitlines()[:4]
    assert header.split("|")[1].strip() == "setting" and "ε lower bound (95%)" in header and "seed" not in header
    assert "DP-LoRA ε=1" in dp and "| none " in lora  # the DP run's claim, the non-private one's none
    assert "One row per audited run (2)" in text and "40 canary coins" in text
