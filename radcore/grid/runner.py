"""Run a profile's grid: one papermill-executed run notebook per cell, resumable, failures kept apart.

A cell is done when its ``results.json`` exists and records the config the cell would run now; done
cells are skipped, so an interrupted grid resumes where it stopped. Each cell's notebook is executed
into a temporary file and moved into ``book/runs/<profile>/`` only when it succeeded; a failed cell's
notebook goes to ``<run_dir>/failed.ipynb`` (out of the book) and its error is reported at the end.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm.auto import tqdm

from radcore.grid.profile import Cell, Profile
from radcore.results import RESULTS_FILE

log = logging.getLogger(__name__)
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
RUN_NOTEBOOK = NOTEBOOK_DIR / "run.ipynb"
KERNEL = "python3"


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
    """Write each synthetic corpus the profile names if it is missing; check that real data directories exist."""
    from radcore.data.synth import MARKER, is_synthetic, write_corpus

    for spec in profile.datasets:
        path = Path(spec.data_dir)
        if spec.synthetic is None:
            if not path.is_dir():
                raise FileNotFoundError(f"profile {profile.name}: data directory {path} for {spec.name} does not "
                                        f"exist; see data/README.md for where to put the data")
            continue
        if is_synthetic(path):
            marker = json.loads((path / MARKER).read_text())
            if (marker["n"], marker["seed"]) != (spec.synthetic["n"], spec.synthetic["seed"]):
                raise ValueError(f"{path} holds a synthetic corpus with n={marker['n']}, seed={marker['seed']}, "
                                 f"but profile {profile.name} asks for {spec.synthetic}; remove it to regenerate")
            continue
        log.info("writing synthetic %s corpus (%s) to %s", spec.name, spec.synthetic, path)
        write_corpus(spec.name, n=spec.synthetic["n"], seed=spec.synthetic["seed"], out=path)


def is_done(cell: Cell) -> bool:
    """The cell finished with the config it would run now, and its notebook is in the book."""
    results = cell.run_dir / RESULTS_FILE
    if not (results.is_file() and cell.notebook.is_file()):
        return False
    recorded = json.loads(results.read_text())["config"]
    return recorded == json.loads(json.dumps(cell.train_config().as_dict()))


def _retitle(path: Path, cell: Cell) -> None:
    """Give the executed notebook its cell's title (the book's appendix lists runs by it)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = f"# {cell.title}\n\n" + nb.cells[0].source.partition("\n\n")[2]
    nbformat.write(nb, path)


def execute_cell(cell: Cell, notebook: str | Path = RUN_NOTEBOOK) -> str | None:
    """Execute the run notebook for ``cell``; None on success, else a one-line error."""
    import papermill

    cell.run_dir.mkdir(parents=True, exist_ok=True)
    partial = cell.run_dir / "run.partial.ipynb"
    failed = cell.run_dir / "failed.ipynb"
    try:
        papermill.execute_notebook(str(notebook), str(partial), parameters=cell.parameters(),
                                   kernel_name=KERNEL, progress_bar=False, cwd=os.getcwd())
    except Exception as exc:  # papermill raises its own error type carrying the kernel's exception
        if partial.exists():
            os.replace(partial, failed)
        ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
        return f"{ename}: {str(evalue).strip().splitlines()[-1] if str(evalue).strip() else ''} (notebook: {failed})"
    _retitle(partial, cell)
    cell.notebook.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, cell.notebook)
    failed.unlink(missing_ok=True)
    return None


def _worker_init(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # inherited by the kernel papermill starts


def run_grid(profile: Profile, *, workers: int = 1, notebook: str | Path = RUN_NOTEBOOK,
             progress: bool = True) -> GridReport:
    """Run every cell of ``profile`` that is not done; never raises for a failed cell (see the report)."""
    start = time.perf_counter()
    cells = profile.cells()
    check_parameters(cells, notebook)
    ensure_corpora(profile)
    report = GridReport()
    todo = []
    for cell in cells:
        if is_done(cell):
            report.skipped.append(cell.key)
        else:
            todo.append(cell)
    with tqdm(total=len(todo), desc=f"grid {profile.name}", unit="cell", disable=not progress) as bar:
        def record(cell: Cell, error: str | None) -> None:
            if error is None:
                report.completed.append(cell.key)
            else:
                report.failed[cell.key] = error
                bar.write(f"FAILED {cell.key}: {error}")
            bar.update()

        if workers <= 1:
            for cell in todo:
                bar.set_postfix_str(cell.key, refresh=True)
                record(cell, execute_cell(cell, notebook))
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init,
                                     initargs=(threads,)) as pool:
                futures = {pool.submit(execute_cell, cell, notebook): cell for cell in todo}
                for future in as_completed(futures):
                    record(futures[future], future.result())
    report.seconds = time.perf_counter() - start
    return report
