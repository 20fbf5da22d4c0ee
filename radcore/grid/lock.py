"""One runner per cell at a time: an advisory ``flock`` on ``<run_dir>/.lock``.

Several runners may work on one grid at once (Dask workers, two ``radcore grid`` commands, a rerun
started while an old one still runs). Each takes a cell's lock before it looks at the cell, re-checks
that the cell is still not done, and only then runs it, so no cell runs twice at the same time and a
cell that another runner finished is not run again.

The lock is the kernel's ``flock``, not the existence of a file: it belongs to the open file and goes
away when the process holding it dies, however it dies (SIGKILL, out of memory, a crashed node whose
NFS lease runs out). A killed run therefore never leaves a stale lock that blocks the next one, and no
timeout has to guess whether a holder is alive. The holder deletes the file when it is done; a waiter
that then finds it took the lock on a deleted file opens the new one and tries again.

Needs a file system whose ``flock`` is shared by every machine that runs cells: local disks and NFS
(v4, or v3 with lockd) are; Lustre only when mounted with ``-o flock`` (``localflock`` locks per node).
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


@contextmanager
def cell_lock(run_dir: str | Path, *, wait: bool = True):
    """Hold ``run_dir``'s lock inside the block; yields True, or False at once when another process holds it
    and ``wait`` is False."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = _acquire(path, wait=wait)
    if fd is None:
        yield False
        return
    try:
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())  # who holds it, for a person looking
        yield True
    finally:
        path.unlink(missing_ok=True)  # still holding it: a waiter sees its file gone and retries
        os.close(fd)


def clear_stale_lock(run_dir: str | Path) -> None:
    """Remove the lock file a killed holder left (only when nobody holds the lock)."""
    if (Path(run_dir) / LOCK_FILE).exists():
        with cell_lock(run_dir, wait=False):
            pass  # taking and releasing a free lock deletes its file


def _acquire(path: Path, *, wait: bool) -> int | None:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # not inherited by the kernel
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
