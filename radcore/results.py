"""Results files: one JSON per run, written atomically, with the library versions that made it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS_FILE = "results.json"
TRACKED_PACKAGES = ("radcore", "torch", "transformers", "peft", "opacus", "scikit-learn", "numpy")


def write_json_atomic(path: str | Path, payload: dict) -> Path:
    """Write JSON so that readers see the old file or the whole new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=False, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def replace_dir_atomic(staging: Path, target: Path) -> Path:
    """Move a fully written ``staging`` directory to ``target``, replacing any old one."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


def read_results(run_dir: str | Path) -> dict:
    """The results of a finished run; a clear error if the run never finished."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {run_dir}: the run did not finish or the path is wrong")
    return json.loads(path.read_text())


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide a run's numbers."""
    found = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
