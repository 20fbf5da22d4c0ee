"""Scale-out on Dask: the grid on a two-worker LocalCluster over loopback gives exactly the serial run's
results, and two runners working on one grid at once (one of them on a Dask cluster given by its
scheduler address) never run a cell twice.

The grid is the ``ci`` profile cut to four cells (one dataset, one model, DP-LoRA and LoRA, both seeds),
with ci's training knobs, so the test costs a couple of minutes instead of the full grid's ten.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from radcore.grid.lock import LOCK_FILE
from radcore.grid.profile import PROFILE_DIR, load_profile
from radcore.grid.runner import is_done, run_grid, set_kernel_environment
from radcore.grid.store import collect
from radcore.results import PREDICTIONS_FILE, RESULTS_FILE


def small_ci(root):
    """ci.yaml with fewer cells, written to ``root/ci-small.yaml``."""
    raw = yaml.safe_load((PROFILE_DIR / "ci.yaml").read_text())
    raw["name"] = "ci-small"
    raw["datasets"] = {"mimic-cxr": raw["datasets"]["mimic-cxr"]}
    raw["models"] = ["tiny-bert"]
    raw["settings"] = [s for s in raw["settings"] if s["mode"] in ("dp-lora", "lora")]
    root.mkdir(parents=True, exist_ok=True)
    (root / "ci-small.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    profile = load_profile(root / "ci-small.yaml")
    assert len(profile.cells()) == 4 and profile.train == yaml.safe_load((PROFILE_DIR / "ci.yaml").read_text())["train"]
    return profile


THREADS = max(1, (os.cpu_count() or 1) // 2)  # what each of two local Dask workers gives its kernel


@pytest.fixture(scope="module")
def serial_and_dask(tmp_path_factory):
    """The small grid run serially and on two Dask workers, in two scratch directories.

    The serial run's kernels get the same number of CPU threads as a Dask worker's: the comparison is
    about where cells run, and a different thread count may change the last bits of a float sum.
    """
    runs = {}
    for how, workers in (("serial", 1), ("dask", 2)):
        root = tmp_path_factory.mktemp(how)
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            if workers == 1:
                mp.setenv("OMP_NUM_THREADS", str(THREADS))  # inherited by the kernels papermill starts
                mp.setenv("MKL_NUM_THREADS", str(THREADS))
            profile = small_ci(root)
            report = run_grid(profile, workers=workers, progress=False)
        runs[how] = (root, profile, report)
    return runs


def test_two_dask_workers_give_the_serial_results(serial_and_dask):
    (s_root, profile, s_report), (d_root, _, d_report) = serial_and_dask["serial"], serial_and_dask["dask"]
    assert s_report.ok and d_report.ok, (s_report.summary(), d_report.summary())
    assert sorted(d_report.completed) == sorted(s_report.completed) == sorted(c.key for c in profile.cells())
    serial, dask = collect(s_root / profile.results_root), collect(d_root / profile.results_root)
    columns = ["dataset", "model", "setting", "seed", "weighted_f1", "auroc_macro", "epsilon_spent", "steps"]
    assert serial[columns].equals(dask[columns]), (serial[columns], dask[columns])
    for cell in profile.cells():
        a = json.loads((s_root / cell.run_dir / RESULTS_FILE).read_text())
        b = json.loads((d_root / cell.run_dir / RESULTS_FILE).read_text())
        assert a["config"] == b["config"] and a["metrics"] == b["metrics"] and a["privacy"] == b["privacy"], cell.key
        with np.load(s_root / cell.run_dir / PREDICTIONS_FILE) as p, np.load(d_root / cell.run_dir / PREDICTIONS_FILE) as q:
            assert np.array_equal(p["probabilities"], q["probabilities"]), cell.key
        # each local worker's kernel gets its share of the cores
        assert a["timing"]["torch_threads"] == b["timing"]["torch_threads"] == THREADS, cell.key
        assert (d_root / cell.notebook).is_file() and not (d_root / cell.run_dir / LOCK_FILE).exists()


def test_a_dask_rerun_skips_every_done_cell(serial_and_dask, monkeypatch):
    root, profile, _ = serial_and_dask["dask"]
    monkeypatch.chdir(root)
    before = {c.key: (root / c.run_dir / RESULTS_FILE).stat().st_mtime_ns for c in profile.cells()}
    report = run_grid(profile, workers=2, progress=False)  # nothing to do: no cluster is even started
    assert report.completed == [] and sorted(report.skipped) == sorted(before)
    assert before == {c.key: (root / c.run_dir / RESULTS_FILE).stat().st_mtime_ns for c in profile.cells()}


def test_two_runners_on_one_grid_never_run_a_cell_twice(tmp_path):
    """Two runners start together on one directory: `radcore grid --scheduler ADDRESS` on a two-worker Dask
    cluster started here (its workers run elsewhere, in this test's working directory, so paths must be
    resolved against the runner's), and a serial `radcore grid`. Every cell is run by exactly one of them
    and skipped by the other (the cell lock, then a second look at the cell)."""
    import logging

    from distributed import LocalCluster

    profile = small_ci(tmp_path)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / ".jupyter-runtime")}
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", memory_limit=0,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                      silence_logs=logging.ERROR) as cluster:
        commands = (["--scheduler", cluster.scheduler_address], ["--workers", "1"])
        procs = [subprocess.Popen([sys.executable, "-m", "radcore.cli", "grid", "--profile", "ci-small.yaml", *args],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in commands]
        outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    reports = [json.loads(out) for out, _ in outputs]
    n = len(profile.cells())
    print("\nrunners (Dask cluster, serial): (run, skipped) =", [(r["completed"], r["skipped"]) for r in reports])
    assert sum(r["completed"] for r in reports) == n  # a cell run by both would count twice
    assert all(r["completed"] + r["skipped"] == n for r in reports)
    assert all(is_done(cell, tmp_path) for cell in profile.cells())
    assert sorted((tmp_path / "runs").glob(f"**/{RESULTS_FILE}")) == sorted(tmp_path / c.run_dir / RESULTS_FILE
                                                                         for c in profile.cells())
    assert not list(tmp_path.glob(f"**/{LOCK_FILE}")) and not list(tmp_path.glob("**/*.partial*"))


def _kernel_environment_on_worker():
    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    set_kernel_environment(1)
    return before, os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_kernels_started_by_a_dask_worker_do_not_inherit_its_malloc_trim_threshold():
    """Dask's nanny gives workers MALLOC_TRIM_THRESHOLD_=65536; a kernel inheriting it trains 1.7x slower
    (benchmarks/kernel_env.py). The environment a worker's kernels inherit drops it."""
    import logging

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", memory_limit=0,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        before, after, threads = client.submit(_kernel_environment_on_worker, pure=False).result()
    assert before == "65536"  # what Dask sets: if this fails, Dask stopped and the workaround can go
    assert after is None and threads == "1"
