"""Where commands write: destinations checked before any work, folders built aside and moved into place whole.

A command checks its destination first (:func:`check_file_target`, :func:`check_folder_target`,
:func:`check_run_target`), so a path it cannot write is one line naming it (:class:`~radcore.errors.OutputError`)
before data is read or a model trained. A folder output (a synthetic corpus, a run started by hand) is built in
a hidden sibling ``.NAME.HOST-PID.partial`` and renamed into place at the end (:func:`staged_folder`): the
destination holds the whole new folder or what it held before, never a mix, and a failure leaves neither the
staging folder nor a parent folder made for it. A staging folder that a killed writer left is removed by the
next writer of the same destination on the same host.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from radcore.errors import OutputError
from radcore.results import (PREDICTIONS_FILE, RESULTS_FILE, STALE_PATTERNS, fsync_dir, replace_dir_atomic,
                             same_config, sync_filesystem)

# What a run folder may hold besides stale temporaries: train's files, evaluate's records, the grid's notebooks
# and lock (radcore.grid.runner, radcore.grid.lock).
RUN_ENTRIES = frozenset({RESULTS_FILE, PREDICTIONS_FILE, "adapter", "model", "evaluations", "failed.ipynb",
                         "run.partial.ipynb", ".lock"})
REPLACE_HINT = "choose a new --out, or add --overwrite to replace the folder as a whole"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not os.path.lexists(path):
        path = path.parent
    return path


def check_writable(path: str | Path) -> None:
    """``path`` (or the folders to be made for it) can be created: the nearest existing folder above it is a
    folder this process may create entries in."""
    path = Path(path)
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise OutputError(f"cannot write {path}: {base} is a file, not a folder", hint="choose another destination")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no permission to create files in {base}",
                          hint="choose another destination, or a folder you can write to")


def check_file_target(path: str | Path, *, fixed_name: bool = False) -> Path:
    """``path`` can be written as one file (replacing an old one): it is not a folder, and its folder is writable.
    ``fixed_name``: the command chose the name (the user named only its folder), so a folder there is in the way."""
    path = Path(path)
    if path.is_dir():
        if fixed_name:
            raise OutputError(f"{path} is a folder, where this command writes its record",
                              hint="move that folder away and run again")
        raise OutputError(f"{path} is a folder; name the JSON file to write, e.g. {path / 'record.json'}")
    check_writable(path)
    return path


def check_folder_target(path: str | Path) -> Path:
    """``path`` can be made (or replaced) as a folder by a rename beside it: it is no file and its parent writable."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"{path} is a file; a folder is written here", hint="choose another destination")
    check_writable(path)
    return path


def refuse_nonempty(out: Path) -> None:
    """Raise FileExistsError when ``out`` exists and is not an empty folder (a writer that lost a race sees it too)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not empty; remove it or choose another folder")


def check_run_target(out: str | Path, config: dict, *, overwrite: bool = False) -> Path:
    """The ``--out`` of a run started by hand: absent, empty, or holding this same run (a ``results.json`` with
    ``config``); any other run folder only with ``overwrite``; never a folder holding anything but a run."""
    out = check_folder_target(out)
    if not out.exists():
        return out
    try:
        names = sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise OutputError(f"cannot list {out} ({e.strerror})", hint="choose another --out") from None
    if not names:
        return out
    stale = {Path(name).name for pattern in STALE_PATTERNS for name in glob.glob(pattern, root_dir=out)}
    foreign = [name for name in names if name not in RUN_ENTRIES and name not in stale]
    if foreign:
        what = "entry that is" if len(foreign) == 1 else "entries that are"
        raise OutputError(f"--out {out} holds {len(foreign)} {what} not part of a radcore run (e.g. "
                          f"{foreign[0]!r}); --overwrite replaces run folders only", hint="choose a new or empty --out")
    if same_config(_recorded_config(out), json.loads(json.dumps(config))) or overwrite:
        return out
    what = "another run (its results.json records another config)" if RESULTS_FILE in names else \
        "an unfinished run (no results.json)"
    raise OutputError(f"--out {out} already holds {what}; one folder holds one run", hint=REPLACE_HINT)


def _recorded_config(run_dir: Path):
    try:
        return json.loads((run_dir / RESULTS_FILE).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def staging_name(out: Path) -> str:
    """``.NAME.HOST-PID.partial``: this process's staging folder for ``out``."""
    return f".{out.name}.{socket.gethostname()}-{os.getpid()}.partial"


def remove_dead_stagings(out: str | Path) -> list[Path]:
    """Delete the staging folders of ``out`` whose writer, on this host, is gone; returns them.

    A live writer's folder (another process writing the same destination now) and other hosts' are left alone.
    """
    out = Path(out)
    host, found = socket.gethostname(), []
    prefix, suffix = f".{out.name}.", ".partial"
    for path in out.parent.glob(f"{glob.escape(prefix)}*{suffix}") if out.parent.is_dir() else ():
        who, _, pid = path.name[len(prefix):-len(suffix)].rpartition("-")
        if who == host and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            found.append(path)
    return found


@contextmanager
def staged_folder(out: str | Path, *, replace: bool = False):
    """Yield a fresh hidden sibling folder of ``out``; on success it becomes ``out``, on failure it is deleted.

    ``replace``: an existing ``out`` is replaced as a whole (renamed aside, then deleted); otherwise ``out`` must
    be absent or an empty folder when the new one moves in (else FileExistsError).
    """
    out = Path(os.path.abspath(check_folder_target(out)))  # "." or "run/" has a name and a parent too
    made = _make_folders(out.parent)
    try:
        remove_dead_stagings(out)
        tmp = out.parent / staging_name(out)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            if replace:
                replace_dir_atomic(tmp, out)  # flushes tmp first
            else:
                sync_filesystem(tmp)
                refuse_nonempty(out)
                if out.exists():
                    out.rmdir()
                os.replace(tmp, out)
                fsync_dir(out.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except BaseException:
        for folder in made:  # deepest first; only those still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns the ones made, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing
