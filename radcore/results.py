"""Results files: one JSON per run, written atomically, with the library versions that made it.

Every file or folder a run leaves is written under a hidden temporary name in its final folder, flushed
to disk, and renamed into place (a rename within one file system is atomic), so a reader, or a rerun
after a crash, sees the old version or the whole new one, never part of one. What a crash can leave is a
hidden temporary (:data:`STALE_PATTERNS`), which no reader mistakes for a result and
:func:`remove_stale` deletes before the folder is written again.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.npz"
TRACKED_PACKAGES = ("radcore", "torch", "transformers", "peft", "opacus", "scikit-learn", "numpy")
# What an interrupted write leaves behind: ``.results.json.x1y2.tmp`` (write_json_atomic, savez_atomic),
# ``.adapter.partial`` (staging folder), ``.adapter.old`` (replace_dir_atomic), ``run.partial.ipynb`` (the grid).
STALE_PATTERNS = (".*.tmp", ".*.partial", ".*.old", "*.partial.ipynb")


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where the OS cannot open folders."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """Flush every file and folder under ``root`` to disk (before it is renamed into place)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def sync_filesystem(path: str | Path) -> None:
    """Flush the whole file system holding ``path`` (Linux ``syncfs``: one call, much faster than an fsync per
    file for a folder of thousands); :func:`fsync_tree` where ``syncfs`` is missing."""
    try:
        import ctypes

        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        fsync_tree(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            fsync_tree(path)
    finally:
        os.close(fd)


def replace_file_atomic(source: str | Path, target: str | Path) -> Path:
    """Flush ``source`` and rename it to ``target`` (same file system), replacing any old file."""
    source, target = Path(source), Path(target)
    fd = os.open(source, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(source, target)
    fsync_dir(target.parent)
    return target


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb"):
    """Yield a file object on a hidden temporary beside ``path``; on success it replaces ``path`` atomically,
    on an error it is removed (a kill leaves the temporary, see :func:`remove_stale`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: str | Path, payload: dict) -> Path:
    """Write JSON so that readers see the old file or the whole new one, never a partial one."""
    path = Path(path)
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"  # fails before any file exists
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return path


def savez_atomic(path: str | Path, **arrays) -> Path:
    """``numpy.savez_compressed`` that readers see whole or not at all (same contract as :func:`write_json_atomic`)."""
    import numpy as np

    with atomic_file(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def replace_dir_atomic(staging: Path, target: Path) -> Path:
    """Move a fully written ``staging`` directory to ``target``, replacing any old one.

    Without an old ``target`` this is one atomic rename. With one, the old folder is first renamed aside
    (``.NAME.old``), so a crash between the two renames leaves no ``target`` at all, never a mixed one; the
    run's ``results.json``, written after its weights, is what marks a run finished.
    """
    fsync_tree(staging)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
    fsync_dir(target.parent)
    return target


def write_dir_atomic(target: str | Path, write) -> Path:
    """``write(folder)`` into a fresh hidden staging folder beside ``target``, then move it to ``target`` whole."""
    target = Path(target)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by a run killed while writing
    write(staging)
    return replace_dir_atomic(staging, target)


def remove_stale(folder: str | Path) -> list[Path]:
    """Delete what interrupted writes left directly in ``folder`` (:data:`STALE_PATTERNS`); returns what went.

    Only for a folder nobody else is writing to right now (the grid calls it holding the cell's lock).
    """
    folder = Path(folder)
    gone = []
    for pattern in STALE_PATTERNS:
        for path in folder.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def read_results(run_dir: str | Path, *, needs: tuple[str, ...] = ()) -> dict:
    """The results of a finished run, holding the blocks ``needs``; a clear error naming the file if the run never
    finished or its file is damaged."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {run_dir}: the run did not finish or the path is wrong")
    try:
        results = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise ValueError(f"{path} is not valid JSON{where}: it is cut off or damaged; train the run again "
                         f"(radcore train ... --overwrite)") from None
    missing = [key for key in needs if not isinstance(results, dict) or not isinstance(results.get(key), dict)]
    if missing:
        raise ValueError(f"{path} lacks the {', '.join(missing)} block(s) of a radcore run; train the run again "
                         f"(radcore train ... --overwrite)")
    return results


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide a run's numbers."""
    found = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


# Fields radcore.config.TrainConfig gained after runs were recorded without them. Each one's default reproduces
# what the code did before the field existed, so a run recorded without it is the run its default asks for
# (radcore.grid.runner.is_done, radcore.outputs.check_run_target).
ADDED_FIELDS = {"ema": 0.0, "centre": False, "dropout": None}


def same_config(recorded: dict, current: dict) -> bool:
    """Whether a ``results.json`` config asks for the run that ``current`` (``TrainConfig.as_dict()`` as JSON)
    asks for: equal, up to :data:`ADDED_FIELDS` that ``recorded`` predates and ``current`` leaves at default."""
    if not isinstance(recorded, dict):
        return False
    predates = {k: ADDED_FIELDS[k] for k in ADDED_FIELDS if k not in recorded}
    return {**recorded, **predates} == current
