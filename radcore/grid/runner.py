"""Run a profile's grid: one papermill-executed run notebook per cell, resumable, failures kept apart.

A cell is done when its ``results.json`` records the config the cell would run now (up to fields added to
the config since, at the default that reproduces the older code: :func:`radcore.results.same_config`) and its
executed notebook, run with the cell's parameters, is in the book; done cells are skipped, so an interrupted grid
resumes where it stopped. Each cell's notebook is executed into a temporary file and moved into
``book/runs/<profile>/`` only when it succeeded; a failed cell's notebook goes to
``<run_dir>/failed.ipynb`` (out of the book) and its error is reported at the end.

Crash safety: every file a cell leaves is renamed into place whole (:mod:`radcore.results`), the run's
``results.json`` after its weights and predictions and the notebook last, so a kill at any moment leaves
each cell done or not done, never half of one, and what the killed attempt left is deleted before the
cell runs again. Several runners may share a grid: each cell is run under its lock
(:mod:`radcore.grid.lock`), re-checked once the lock is held.

Where cells run: in this process one after another (``workers=1``), on a local Dask cluster of ``workers``
processes over loopback, or on the Dask cluster at ``scheduler`` (e.g. dask-jobqueue's SLURMCluster); its
workers must see this directory at the same path (a shared file system).
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from radcore.grid.lock import cell_lock, clear_stale_lock
from radcore.grid.profile import Cell, Profile
from radcore.results import RESULTS_FILE, remove_stale, replace_file_atomic, same_config

log = logging.getLogger(__name__)
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
RUN_NOTEBOOK = NOTEBOOK_DIR / "run.ipynb"
PARTIAL_NOTEBOOK = "run.partial.ipynb"
FAILED_NOTEBOOK = "failed.ipynb"


@dataclass
class GridReport:
    """What a grid run did: cells done before, run now, and failed (key -> one-line error)."""

    skipped: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"grid: {len(self.completed)} run, {len(self.skipped)} already done, "
                 f"{len(self.failed)} failed in {self.seconds:.0f} s"]
        lines += [f"  FAILED {key}: {error}" for key, error in self.failed.items()]
        return "\n".join(lines)


def notebook_parameters(notebook: str | Path) -> set[str]:
    """Names in the notebook's ``parameters`` cell."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def check_parameters(cells: list[Cell], notebook: str | Path) -> None:
    """Refuse to start unless every cell passes exactly the names the notebook declares: papermill accepts a
    misspelled name silently, and a name left out would let the notebook's default decide the run."""
    declared = notebook_parameters(notebook)
    for cell in cells:
        passed = set(cell.parameters())
        if passed != declared:
            raise ValueError(f"{cell.key}: the parameters cell of {notebook} declares {sorted(declared)}; "
                             f"unknown here: {sorted(passed - declared)}, not passed: {sorted(declared - passed)}")


def ensure_corpora(profile: Profile) -> None:
    """Write each synthetic corpus the profile names if it is missing; check that real data directories exist.

    A corpus appears whole or not at all (:func:`radcore.data.synth.write_corpus` builds it aside and renames
    it); what a killed writer left is removed, and a corpus another runner wrote meanwhile is accepted.
    """
    from radcore.data.synth import MARKER, is_synthetic, write_corpus
    from radcore.outputs import remove_dead_stagings

    for spec in profile.datasets:
        path = Path(spec.data_dir)
        if spec.synthetic is None:
            if not path.is_dir():
                raise FileNotFoundError(f"profile {profile.name}: data directory {path} for {spec.name} does not "
                                        f"exist; see data/README.md for where to put the data")
            continue
        remove_dead_stagings(path)
        if not is_synthetic(path):
            log.info("writing synthetic %s corpus (%s) to %s", spec.name, spec.synthetic, path)
            try:
                write_corpus(spec.name, n=spec.synthetic["n"], seed=spec.synthetic["seed"], out=path)
            except OSError:
                if not is_synthetic(path):  # not another runner's corpus, finished first: a real error
                    raise
        marker = json.loads((path / MARKER).read_text())
        if (marker["n"], marker["seed"]) != (spec.synthetic["n"], spec.synthetic["seed"]):
            raise ValueError(f"{path} holds a synthetic corpus with n={marker['n']}, seed={marker['seed']}, "
                             f"but profile {profile.name} asks for {spec.synthetic}; remove it to regenerate")


def _jsonable(value):
    return json.loads(json.dumps(value))


@dataclass(frozen=True)
class CellJob:
    """What running one cell needs, as plain data: where it writes, what it passes, the config it records.

    Built from a :class:`Cell` where the grid starts (that needs :mod:`radcore.config`, hence torch); a Dask
    worker gets only this, so it never imports torch itself (the kernel does), and exits at once when the
    cluster closes.
    """

    key: str
    title: str
    run_dir: str
    notebook: str
    config: dict  # TrainConfig.as_dict(), as results.json records it
    parameters: dict  # the run notebook's papermill parameters

    @classmethod
    def of(cls, cell: "Cell | CellJob") -> "CellJob":
        if isinstance(cell, CellJob):
            return cell
        return cls(cell.key, cell.title, str(cell.run_dir), str(cell.notebook),
                   _jsonable(cell.train_config().as_dict()), _jsonable(cell.parameters()))


def is_done(cell: Cell | CellJob, root: str | Path | None = None) -> bool:
    """The cell finished with the config it would run now, and its notebook, executed with the parameters it
    would pass now, is in the book (paths relative to ``root``, by default the working directory)."""
    job, root = CellJob.of(cell), Path.cwd() if root is None else Path(root)
    results, notebook = root / job.run_dir / RESULTS_FILE, root / job.notebook
    if not (results.is_file() and notebook.is_file()):
        return False
    try:
        recorded = json.loads(results.read_text())["config"]
        executed = json.loads(notebook.read_text())["metadata"]["papermill"]["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unreadable: run it again
    # The parameters matter when a config changed and the rerun was killed between writing results.json
    # and moving its notebook: the book still holds the old config's notebook, so the cell is not done.
    return same_config(recorded, job.config) and executed == job.parameters


def _retitle(path: Path, title: str) -> None:
    """Give the executed notebook its cell's title (the book's appendix lists runs by it)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = f"# {title}\n\n" + nb.cells[0].source.partition("\n\n")[2]
    nbformat.write(nb, path)


def execute_cell(cell: Cell | CellJob, notebook: str | Path = RUN_NOTEBOOK, *,
                 root: str | Path | None = None) -> str | None:
    """Execute the run notebook for ``cell`` (paths relative to ``root``); None on success, else a one-line error.

    Call it holding the cell's lock (:func:`attempt_cell` does).
    """
    from radcore.grid.kernel import execute

    job, root = CellJob.of(cell), Path.cwd() if root is None else Path(root)
    run_dir = root / job.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    partial, failed = run_dir / PARTIAL_NOTEBOOK, run_dir / FAILED_NOTEBOOK
    try:
        execute(notebook, partial, parameters=job.parameters, cwd=root)
    except Exception as exc:  # papermill raises its own error type carrying the kernel's exception
        if partial.exists():
            os.replace(partial, failed)
        ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
        return f"{ename}: {str(evalue).strip().splitlines()[-1] if str(evalue).strip() else ''} (notebook: {failed})"
    _retitle(partial, job.title)
    target = root / job.notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_file_atomic(partial, target)  # the cell is done from here on
    failed.unlink(missing_ok=True)
    return None


# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which a kernel would inherit: glibc then
# hands freed memory back to the OS at every step and maps it again, and training runs 1.7x slower
# (benchmarks/kernel_env.py).
KERNEL_ENV_DROPPED = ("MALLOC_TRIM_THRESHOLD_",)


def set_kernel_environment(threads: int | None = None) -> None:
    """The environment the next kernel inherits: ``threads`` intra-op threads (OMP_NUM_THREADS,
    MKL_NUM_THREADS) if given, and none of :data:`KERNEL_ENV_DROPPED`."""
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    for var in KERNEL_ENV_DROPPED:
        os.environ.pop(var, None)


def attempt_cell(cell: Cell | CellJob, notebook: str | Path = RUN_NOTEBOOK, root: str | Path | None = None, *,
                 wait: bool = False, threads: int | None = None) -> tuple[str, str | None]:
    """Run ``cell`` unless it is done, holding its lock: what the grid runs for each cell, here or on a Dask worker.

    Returns ``("ran", None)``, ``("failed", error)``, ``("done", None)`` (finished meanwhile, by another
    runner) or ``("busy", None)`` (another runner holds the lock and ``wait`` is False). ``threads`` sets the
    intra-op threads of the kernel it starts (OMP_NUM_THREADS, MKL_NUM_THREADS).
    """
    job, root = CellJob.of(cell), Path.cwd() if root is None else Path(root)
    set_kernel_environment(threads)
    with cell_lock(root / job.run_dir, wait=wait) as held:
        if not held:
            return "busy", None
        if is_done(job, root):
            return "done", None
        for path in remove_stale(root / job.run_dir):
            log.info("removed %s, left by an interrupted run", path)
        error = execute_cell(job, notebook, root=root)
    return ("ran", None) if error is None else ("failed", error)


@contextmanager
def dask_client(*, workers: int = 2, scheduler: str | None = None):
    """A Dask client: on the cluster at ``scheduler``, else on a new local cluster of ``workers`` processes
    (one thread each) over loopback. Yields (client, threads per kernel or None to leave it to the cluster)."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # the CLI logs INFO; Dask's is chatty
    if scheduler:
        with Client(scheduler) as client:
            yield client, None
        return
    # No dashboard (its HTTP server on a free loopback port, so two local clusters never clash); no memory
    # limit: the work happens in the kernels the workers start, which the nanny does not watch.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                      memory_limit=0, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client, max(1, (os.cpu_count() or 1) // workers)


def run_grid(profile: Profile, *, workers: int = 1, scheduler: str | None = None,
             notebook: str | Path = RUN_NOTEBOOK, progress: bool = True) -> GridReport:
    """Run every cell of ``profile`` that is not done; never raises for a failed cell (see the report).

    ``workers`` <= 1 and no ``scheduler``: one cell after another in this process. ``workers`` > 1: a local
    Dask cluster of that many processes. ``scheduler`` (``tcp://host:8786``): that Dask cluster's workers.
    """
    start = time.perf_counter()
    root = Path.cwd()
    cells = profile.cells()
    check_parameters(cells, notebook)
    ensure_corpora(profile)
    report = GridReport()
    todo = []
    for job in map(CellJob.of, cells):
        if is_done(job, root):
            report.skipped.append(job.key)
            clear_stale_lock(root / job.run_dir)  # a kill after the notebook moved, before the lock was released
        else:
            todo.append(job)
    with tqdm(total=len(todo), desc=f"grid {profile.name}", unit="cell", disable=not progress) as bar:
        def record(cell: CellJob, outcome: str, error: str | None) -> bool:
            """False when the cell was busy elsewhere and must be tried again, waiting for its lock."""
            if outcome == "busy":
                return False
            if outcome == "ran":
                report.completed.append(cell.key)
            elif outcome == "done":
                report.skipped.append(cell.key)
            else:
                report.failed[cell.key] = error
                bar.write(f"FAILED {cell.key}: {error}")
            bar.update()
            return True

        if workers <= 1 and not scheduler:
            busy = []
            for cell in todo:
                bar.set_postfix_str(cell.key, refresh=True)
                if not record(cell, *attempt_cell(cell, notebook, root)):
                    busy.append(cell)
            for cell in busy:  # other runners' cells: wait for each, then run it only if they did not finish it
                bar.set_postfix_str(cell.key, refresh=True)
                record(cell, *attempt_cell(cell, notebook, root, wait=True))
        else:
            _run_on_dask(todo, record, notebook=notebook, root=root, workers=workers, scheduler=scheduler)
    report.seconds = time.perf_counter() - start
    return report


def _run_on_dask(cells: list[CellJob], record, *, notebook, root: Path, workers: int, scheduler: str | None) -> None:
    """Submit each cell as one Dask task (in grid order); a cell busy elsewhere is resubmitted to wait for it."""
    if not cells:
        return
    from distributed import as_completed

    with dask_client(workers=workers, scheduler=scheduler) as (client, threads):
        def submit(cell: CellJob, wait: bool):
            return client.submit(attempt_cell, cell, str(notebook), str(root), wait=wait, threads=threads,
                                 pure=False, key=f"radcore-cell-{cell.key}-{'wait' if wait else 'try'}-{time.time_ns()}")

        pending = {submit(cell, False): cell for cell in cells}
        queue = as_completed(list(pending))
        for future in queue:
            cell = pending.pop(future)
            try:
                outcome, error = future.result()
            except Exception as exc:  # the task itself failed, e.g. its worker died repeatedly
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            if not record(cell, outcome, error):
                again = submit(cell, True)
                pending[again] = cell
                queue.add(again)
