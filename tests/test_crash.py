"""Crash safety: the grid runner killed at any moment resumes with no corrupt file and no cell run twice.

The main test SIGKILLs ``radcore grid`` (serial, and on a two-worker local Dask cluster) seven times at
moments chosen by a seeded RNG and by what the runner is doing (writing the synthetic corpus, starting
a kernel, saving weights, between results.json and the notebook, training), reruns it each time, then
lets one run finish. After every kill nothing on disk may be partial or corrupt; once a cell is
complete it may never change again; and at the end every cell is complete exactly once with nothing
left over. The smaller tests pin down the pieces: the cell lock, the corpus staging, ``is_done``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from radcore.data.synth import MARKER, corpus_files, is_synthetic
from radcore.grid.lock import LOCK_FILE, cell_lock
from radcore.grid.profile import load_profile
from radcore.grid.runner import CellJob, ensure_corpora, is_done
from radcore.results import RESULTS_FILE, remove_stale, savez_atomic, write_json_atomic

CRASH = """
name: crash
datasets:
  mimic-cxr: {data: data/synthetic/crash/mimic-cxr, synthetic: {n: 200, seed: 0}}
models: [tiny-bert]
settings:
  - {mode: dp-lora, epsilons: [1]}
  - {mode: full}
seeds: [0, 1]
train: {epochs: 1, max_length: 32, pretrained: false, batch_size: 32}
"""
SEED = 20260611
MIN_KILLS = 5
# Hidden temporaries of interrupted writes (radcore.results.STALE_PATTERNS, corpus staging) and locks.
LEFTOVER_GLOBS = ("**/.*.tmp", "**/.*.partial", "**/.*.old", "**/*.partial.ipynb", f"**/{LOCK_FILE}",
                  "**/failed.ipynb")


# ------------------------------------------------------------------------------------------- killing

def kill_tree(proc: subprocess.Popen) -> bool:
    """SIGKILL the runner and every process under it at once, as a machine crash would; True if it was alive.

    The runner is started in a session (and process group) of its own, and that group is killed. The
    group alone is not the whole run: jupyter_client starts each papermill kernel with
    ``start_new_session=True``, so the kernel that trains (and writes results.json) is in another group,
    and killing only the runner's group would orphan it; it would go on writing files for up to a
    second, until ipykernel notices that its parent is gone. A crash of the machine kills everything at
    the same instant. So every process of the tree is first frozen (SIGSTOP, repeated until no new child
    appears), then the group and each process get SIGKILL: none moves on while the others die.
    """
    try:
        runner = psutil.Process(proc.pid)
        tree, frozen = [runner], set()
        while True:
            try:
                tree = [runner, *runner.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            fresh = [p for p in tree if p.pid not in frozen]
            if not fresh:
                break
            for p in fresh:
                frozen.add(p.pid)
                try:
                    p.suspend()
                except psutil.NoSuchProcess:
                    pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in tree:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        tree = []
    code = proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    for p in tree[1:]:  # gone, or a zombie waiting for init: either way it writes nothing more
        while time.monotonic() < deadline:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
    return code == -signal.SIGKILL


# ------------------------------------------------------------------------------------------- the grid

class Grid:
    """The crash profile in a scratch directory, its cells, and what the disk says about them."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "crash.yaml").write_text(CRASH)
        self.profile = load_profile(root / "crash.yaml")
        self.jobs = [CellJob.of(cell) for cell in self.profile.cells()]
        self.corpus = root / self.profile.datasets[0].data_dir
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "JUPYTER_RUNTIME_DIR": str(root.parent / "jupyter-runtime")}

    def start(self, workers: int, log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen([sys.executable, "-m", "radcore.cli", "grid", "--profile", "crash.yaml",
                                     "--workers", str(workers)], cwd=self.root, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def run_dir(self, job: CellJob) -> Path:
        return self.root / job.run_dir

    def complete(self) -> list[CellJob]:
        return [job for job in self.jobs if is_done(job, self.root)]

    def identity(self, job: CellJob) -> tuple:
        """What must never change once the cell is complete: its results file and its book notebook."""
        files = (self.run_dir(job) / RESULTS_FILE, self.root / job.notebook)
        return tuple((p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files)

    def leftovers(self) -> list[str]:
        found = {p for pattern in LEFTOVER_GLOBS for p in self.root.glob(pattern)}
        found |= set(self.corpus.parent.glob(".*.partial")) if self.corpus.parent.is_dir() else set()
        return sorted(str(p.relative_to(self.root)) for p in found)

    # -- triggers: each returns True when the runner is at the moment to kill it
    def writing_corpus(self) -> bool:
        return self.corpus.parent.is_dir() and any(self.corpus.parent.glob(f".{self.corpus.name}.*.partial"))

    def kernel_started(self) -> bool:
        return any((self.run_dir(job) / "run.partial.ipynb").exists() for job in self.jobs)

    def saving(self) -> bool:
        """A weights staging folder or a temporary of predictions.npz / results.json exists (a few ms each)."""
        for job in self.jobs:
            try:
                names = os.listdir(self.run_dir(job))
            except FileNotFoundError:
                continue
            if any(n.startswith(".") and (n.endswith(".partial") or n.endswith(".tmp")) for n in names):
                return True
        return False

    def between_results_and_notebook(self) -> bool:
        return any((self.run_dir(job) / RESULTS_FILE).exists() and not (self.root / job.notebook).exists()
                   for job in self.jobs)

    # -- nothing on disk is partial or corrupt, whatever the moment of the kill
    def check_nothing_corrupt(self) -> None:
        for path in (self.root / "runs").glob(f"**/{RESULTS_FILE}"):
            results = json.loads(path.read_text())  # raises on a partial file
            assert {"config", "metrics", "privacy", "timing", "versions"} <= set(results), path
        for path in (self.root / "book").glob("**/*.ipynb"):
            assert json.loads(path.read_text())["metadata"]["papermill"]["parameters"], path
        for path in (self.root / "runs").glob("**/predictions.npz"):
            with np.load(path) as npz:
                assert set(npz.files) == {"ids", "probabilities", "labels", "label_mask"}, path
                assert npz["probabilities"].shape == npz["labels"].shape, path
        from safetensors import safe_open

        for name in ("adapter", "model"):
            for folder in (self.root / "runs").glob(f"**/{name}"):
                weights = list(folder.glob("*.safetensors"))
                assert weights and list(folder.glob("*config.json")), folder
                for w in weights:
                    with safe_open(str(w), "pt") as f:  # raises on a truncated file
                        assert list(f.keys()), w
        if self.corpus.exists():  # whole and byte-identical to what the generator makes, or absent
            spec = self.profile.datasets[0].synthetic
            expected = corpus_files("mimic-cxr", n=spec["n"], seed=spec["seed"])
            on_disk = {p.relative_to(self.corpus).as_posix(): p.read_bytes()
                       for p in self.corpus.rglob("*") if p.is_file()}
            assert on_disk == expected, "the corpus on disk is not the whole generated corpus"


def wait_for(proc: subprocess.Popen, trigger, *, timeout: float, poll: float = 0.002) -> bool:
    """Poll until ``trigger()`` holds (True) or the runner exits / ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if trigger():
            return True
        time.sleep(poll)
    return False


def test_grid_killed_at_random_moments_resumes_without_corruption_or_recomputation(tmp_path):
    grid = Grid(tmp_path / "compendium")
    rng = random.Random(SEED)
    # (name, workers, how to pick the moment). The moments follow the runner: a fixed delay would land
    # in import time on a fast machine and in a different phase on a slow one.
    def done_plus(extra):  # one more cell complete than when the run started, then a random delay
        start = len(grid.complete())
        return lambda proc: (wait_for(proc, lambda: len(grid.complete()) > start, timeout=240, poll=0.05)
                             and _sleep(proc, extra))

    plan = [
        ("corpus being written", 1, lambda proc: wait_for(proc, grid.writing_corpus, timeout=120)),
        ("kernel starting", 1, lambda proc: wait_for(proc, grid.kernel_started, timeout=120)
         and _sleep(proc, rng.uniform(0.0, 1.5))),
        ("saving, after a cell completed (2 workers)", 2, lambda proc: done_plus(0)(proc)
         and wait_for(proc, grid.saving, timeout=120, poll=0.001)),
        ("results.json written, notebook not yet in the book", 1,
         lambda proc: wait_for(proc, grid.between_results_and_notebook, timeout=180)),
        ("random delay (2 workers)", 2, lambda proc: _sleep(proc, rng.uniform(2.0, 12.0))),
        ("weights being saved", 1, lambda proc: wait_for(proc, grid.saving, timeout=180, poll=0.001)),
        ("after a cell completed, random delay", 1, lambda proc: done_plus(rng.uniform(0.0, 3.0))(proc)),
    ]
    kills, seen = [], {}  # seen: cell key -> identity when first found complete
    for attempt, (name, workers, moment) in enumerate(plan):
        proc = grid.start(workers, tmp_path / f"run{attempt}.log")
        began = time.monotonic()
        reached = moment(proc)
        if not reached and proc.poll() is None:  # the moment never came (e.g. no cell left to save)
            _sleep(proc, rng.uniform(0.3, 2.0))
        killed = kill_tree(proc)
        kills += [(name, workers, round(time.monotonic() - began, 1), reached, grid.leftovers())] if killed else []
        if not killed:
            assert proc.returncode == 0, (tmp_path / f"run{attempt}.log").read_text()[-3000:]
        grid.check_nothing_corrupt()
        for job in grid.complete():
            identity = grid.identity(job)
            assert seen.setdefault(job.key, identity) == identity, f"{job.key} was recomputed after {name}"

    complete_before = {job.key for job in grid.complete()}
    proc = grid.start(1, tmp_path / "final.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "final.log").read_text()[-3000:]
    report = _report(tmp_path / "final.log")

    print("\nkills (moment, workers, seconds after start, moment reached, leftovers then):")
    for kill in kills:
        print("  ", *kill)
    print(f"complete before the final run: {len(complete_before)} of {len(grid.jobs)}; final run: {report}")

    assert len(kills) >= MIN_KILLS
    grid.check_nothing_corrupt()
    # Every cell complete exactly once: one results file and one book notebook per cell, nothing else.
    assert [job.key for job in grid.complete()] == [job.key for job in grid.jobs]
    assert sorted((grid.root / "runs").glob(f"**/{RESULTS_FILE}")) == sorted(grid.run_dir(j) / RESULTS_FILE
                                                                          for j in grid.jobs)
    assert sorted((grid.root / "book").glob("**/*.ipynb")) == sorted(grid.root / j.notebook for j in grid.jobs)
    assert grid.leftovers() == []
    # No completed cell recomputed: identities unchanged since first seen, and the final run ran only the rest.
    for job in grid.jobs:
        assert seen.setdefault(job.key, grid.identity(job)) == grid.identity(job), job.key
    assert report["completed"] == len(grid.jobs) - len(complete_before)
    assert report["skipped"] == len(complete_before)


def _sleep(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait ``seconds`` unless the runner exits first; True if it is still running."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def _report(log: Path) -> dict:
    """The JSON the CLI prints last."""
    text = log.read_text()
    return json.loads(text[text.rindex("\n{") + 1:])


# ------------------------------------------------------------------------------------------- the pieces

def test_a_lock_held_by_a_killed_process_is_free_at_once(tmp_path):
    run_dir = tmp_path / "cell"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from radcore.grid.lock import cell_lock\n"
        f"with cell_lock({str(run_dir)!r}) as held:\n"
        "    print(held, flush=True); time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        with cell_lock(run_dir, wait=False) as held:
            assert held is False  # busy: another process holds it
        holder.kill()
        holder.wait()
        assert (run_dir / LOCK_FILE).exists()  # the file stays behind, the lock does not
        with cell_lock(run_dir, wait=False) as held:
            assert held is True
        assert not (run_dir / LOCK_FILE).exists()  # the holder removes it when done
    finally:
        holder.kill()
        holder.wait()


def test_a_corpus_write_killed_midway_is_cleaned_up_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crash.yaml").write_text(CRASH)
    profile = load_profile(tmp_path / "crash.yaml")
    out = Path(profile.datasets[0].data_dir)
    out.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = out.parent / f".{out.name}.{socket.gethostname()}-{dead.pid}.partial"  # a writer killed midway
    (killed / "files").mkdir(parents=True)
    (killed / "files" / "half.txt").write_text("FINDINGS: no")
    elsewhere = out.parent / f".{out.name}.another-host-{os.getpid()}.partial"  # may still be writing
    elsewhere.mkdir()
    ensure_corpora(profile)
    assert is_synthetic(out) and not killed.exists() and elsewhere.exists()


def test_a_corpus_another_runner_finished_first_is_accepted(tmp_path, monkeypatch):
    from radcore.data import synth

    monkeypatch.chdir(tmp_path)
    (tmp_path / "crash.yaml").write_text(CRASH)
    profile = load_profile(tmp_path / "crash.yaml")
    real = synth.write_corpus

    def lose_the_race(dataset, *, n, seed, out):
        real(dataset, n=n, seed=seed, out=out)  # the other runner renames its corpus into place first
        raise FileExistsError(f"{out} already exists and is not empty")

    monkeypatch.setattr(synth, "write_corpus", lose_the_race)
    ensure_corpora(profile)
    assert json.loads((Path(profile.datasets[0].data_dir) / MARKER).read_text())["n"] == 200


def test_a_cell_whose_book_notebook_ran_other_parameters_is_not_done(tmp_path):
    """A config change, rerun killed after results.json: the book still has the old config's notebook."""
    (tmp_path / "crash.yaml").write_text(CRASH)
    job = CellJob.of(load_profile(tmp_path / "crash.yaml").cells()[0])
    write_json_atomic(tmp_path / job.run_dir / RESULTS_FILE, {"config": job.config})
    notebook = tmp_path / job.notebook
    notebook.parent.mkdir(parents=True)
    notebook.write_text(json.dumps({"metadata": {"papermill": {"parameters": {**job.parameters, "epochs": 9}}}}))
    assert not is_done(job, tmp_path)
    notebook.write_text(json.dumps({"metadata": {"papermill": {"parameters": job.parameters}}}))
    assert is_done(job, tmp_path)
    notebook.write_text('{"metadata": {"papermill": {"parame')  # unreadable: run it again
    assert not is_done(job, tmp_path)


def test_atomic_writes_leave_only_hidden_temporaries_which_remove_stale_deletes(tmp_path):
    savez_atomic(tmp_path / "predictions.npz", probabilities=np.ones((2, 3)))
    write_json_atomic(tmp_path / RESULTS_FILE, {"config": {}})
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / RESULTS_FILE, {"bad": float("nan")})  # the old file stays whole
    assert json.loads((tmp_path / RESULTS_FILE).read_text()) == {"config": {}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.npz", RESULTS_FILE]
    for name in (".results.json.k3j2.tmp", ".predictions.npz.x9.tmp", "run.partial.ipynb"):
        (tmp_path / name).write_text("half")
    (tmp_path / ".adapter.partial").mkdir()
    (tmp_path / ".adapter.old").mkdir()
    assert len(remove_stale(tmp_path)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.npz", RESULTS_FILE]
