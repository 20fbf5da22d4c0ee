"""Grid profiles and the papermill runner: validation before anything runs, resuming, failures kept apart."""

import json

import nbformat
import pytest

from radcore.grid.profile import load_profile, parse_profile
from radcore.grid.runner import RUN_NOTEBOOK, check_parameters, is_done, run_grid
from radcore.grid.store import collect, per_label
from radcore.results import RESULTS_FILE

SHIPPED = ("ci", "quick", "paper", "openi", "scale")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_every_cell_matches_the_run_notebook(name):
    profile = load_profile(name)
    cells = profile.cells()
    assert len(cells) == len(profile.datasets) * len(profile.models) * len(profile.settings) * len(profile.seeds)
    assert len({c.key for c in cells}) == len(cells) == len({c.notebook for c in cells})
    check_parameters(cells, RUN_NOTEBOOK)
    for cell in cells:
        config = cell.train_config()
        assert (config.mode, config.epsilon, config.seed) == (cell.setting.mode, cell.setting.epsilon, cell.seed)


def test_paper_profile_is_the_studys_grid():
    profile = load_profile("paper")
    assert set(profile.models) == {"bert-small", "bert-medium", "albert-base"}
    assert sorted(s.epsilon for s in profile.settings if s.is_private) == [0.01, 0.1, 1, 10]
    assert {s.mode for s in profile.settings if not s.is_private} == {"lora", "full", "tfidf"}  # + the baseline
    assert len(profile.seeds) == 5


@pytest.mark.parametrize("raw, needle", [
    ({"modelz": ["tiny-bert"]}, "modelz"),
    ({"settings": [{"mode": "dp-lora"}]}, "needs epsilon"),
    ({"settings": [{"mode": "lora", "epsilon": 1}]}, "takes no epsilon"),
    ({"settings": [{"mode": "sgd"}]}, "'sgd'"),
    ({"datasets": {"chexpert": {}}}, "'chexpert'"),
    ({"train": {"epoch": 3}}, "epoch"),
    ({"datasets": {"mimic-cxr": {"dir": "x"}}}, "mimic-cxr: unknown key.*'dir'"),
    ({"datasets": {"mimic-cxr": {"train": {"max_len": 96}}}}, "mimic-cxr: train: unknown knob.*max_len"),
    ({"seeds": []}, "no seeds"),
])
def test_bad_profiles_are_refused_naming_the_key(raw, needle):
    base = {"datasets": {"mimic-cxr": {}}, "models": ["tiny-bert"], "settings": [{"mode": "lora"}], "seeds": [0]}
    with pytest.raises(ValueError, match=needle):
        parse_profile(base | raw, source="my.yaml")


def test_a_datasets_own_train_knobs_override_the_profiles_for_its_cells_only():
    raw = {"datasets": {"mimic-cxr": {}, "ct-rate": {"train": {"max_length": 96}}}, "models": ["tiny-bert"],
           "settings": [{"mode": "lora"}], "seeds": [0], "train": {"max_length": 128, "epochs": 2}}
    cells = parse_profile(raw, source="my.yaml").cells()
    knobs = {c.dataset.name: (c.train_config().max_length, c.train_config().epochs) for c in cells}
    assert knobs == {"mimic-cxr": (128, 2), "ct-rate": (96, 2)}
    assert {c.dataset.name: c.parameters()["max_length"] for c in cells} == {"mimic-cxr": 128, "ct-rate": 96}


def test_the_run_notebook_refuses_a_max_length_the_model_cannot_read_before_any_work(tmp_path):
    from radcore.grid.profile import run_cell

    params = load_profile("ci").cells()[0].parameters() | {"max_length": 100000, "out_dir": str(tmp_path / "cell")}
    with pytest.raises(ValueError, match="max_length 100000 is out of range .* 8 to 512"):
        run_cell(**params)
    assert not (tmp_path / "cell").exists()


def test_a_killed_grids_kernel_socket_folder_goes_when_the_next_kernel_starts(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from radcore.grid.kernel import IpcKernelManager, remove_dead_socket_dirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = tmp_path / f"radcore-kernel-{dead.pid}-x1y2"  # its grid was killed: no cleanup ran
    (killed / "ipc-1").parent.mkdir()
    (killed / "ipc-1").write_text("")
    live = tmp_path / f"radcore-kernel-{os.getpid()}-a1b2"  # a running grid's
    live.mkdir()
    assert remove_dead_socket_dirs(tmp_path) == [killed] and live.is_dir()
    killed.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    manager = IpcKernelManager()
    assert not killed.exists() and live.is_dir()
    assert manager.ip.startswith(str(tmp_path / f"radcore-kernel-{os.getpid()}-"))
    manager.cleanup_ipc_files()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_unknown_profile_names_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="ci, openi, paper, quick"):
        load_profile("qiuck")


def test_notebook_defaults_never_decide_a_run():
    """quick sets no `pretrained`: the cell must still pass pretrained=True, not leave the notebook's False."""
    for cell in load_profile("quick").cells():
        params = cell.parameters()
        assert params["pretrained"] is True and params["pooling"] == "mean"
        assert params["epsilon"] == cell.setting.epsilon


def test_a_parameter_the_notebook_does_not_declare_is_refused_before_anything_runs(tmp_path):
    nb = nbformat.read(RUN_NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace("max_length = 64", "max_len = 64")
    broken = tmp_path / "run.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(ValueError, match="max_length"):
        check_parameters(load_profile("ci").cells(), broken)


TINY = """
name: tiny
datasets:
  mimic-cxr: {data: data/synthetic/tiny/mimic-cxr, synthetic: {n: 200, seed: 0}}
models: [tiny-bert, weightless-bert]
settings:
  - {mode: dp-lora, epsilons: [1]}
  - {mode: lora}
seeds: [0]
train: {epochs: 1, max_length: 32, pretrained: false, batch_size: 32}
"""


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    """A 4-cell grid run once in a scratch directory: the two cells of a model folder without weights or tokenizer
    fail when they run (an unknown model name would be refused before anything runs)."""
    root = tmp_path_factory.mktemp("grid")
    (root / "tiny.yaml").write_text(TINY)
    (root / "weightless-bert").mkdir()
    (root / "weightless-bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        profile = load_profile(root / "tiny.yaml")
        report = run_grid(profile, progress=False)
        yield root, profile, report


def test_grid_runs_cells_into_results_and_book_notebooks(tiny_grid):
    root, profile, report = tiny_grid
    assert sorted(report.completed) == ["mimic-cxr/tiny-bert/dp-lora-eps1/seed0", "mimic-cxr/tiny-bert/lora/seed0"]
    for cell in profile.cells()[:2]:
        results = json.loads((root / cell.run_dir / RESULTS_FILE).read_text())
        assert results["config"] == json.loads(json.dumps(cell.train_config().as_dict()))
        nb = nbformat.read(root / cell.notebook, as_version=4)
        assert nb.cells[0].source.startswith(f"# {cell.title}")
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)  # papermill's injected cell
    frame = collect(root / profile.results_root)
    assert list(frame["setting"]) == ["DP-LoRA ε=1", "LoRA"]
    assert frame["epsilon_spent"].iloc[0] <= 1.0
    assert len(per_label(root / profile.results_root)) == 2 * 14


def test_a_failed_cell_is_reported_kept_out_of_the_book_and_its_notebook_kept(tiny_grid):
    root, profile, report = tiny_grid
    assert not report.ok and "exit" not in report.summary()
    assert set(report.failed) == {"mimic-cxr/weightless-bert/dp-lora-eps1/seed0", "mimic-cxr/weightless-bert/lora/seed0"}
    assert all("weightless-bert" in error for error in report.failed.values())
    for cell in profile.cells()[2:]:
        assert not (root / cell.notebook).exists()
        assert (root / cell.run_dir / "failed.ipynb").is_file()
        assert not (root / cell.run_dir / RESULTS_FILE).exists()
    assert not list(root.glob("**/*.partial.ipynb"))


def test_rerun_skips_done_cells_and_a_changed_config_is_not_done(tiny_grid, monkeypatch):
    root, profile, _ = tiny_grid
    monkeypatch.chdir(root)
    done = [c for c in profile.cells() if is_done(c)]
    assert len(done) == 2
    changed = load_profile(root / "tiny.yaml").__class__(**{**profile.__dict__, "train": {**profile.train, "epochs": 2}})
    assert not any(is_done(c) for c in changed.cells())
    before = {c.key: (root / c.run_dir / RESULTS_FILE).stat().st_mtime_ns for c in done}
    single = profile.__class__(**{**profile.__dict__, "models": ("tiny-bert",)})
    report = run_grid(single, progress=False)
    assert report.ok and report.completed == [] and sorted(report.skipped) == sorted(before)
    assert before == {c.key: (root / c.run_dir / RESULTS_FILE).stat().st_mtime_ns for c in done}
