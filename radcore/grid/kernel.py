"""Executing a notebook with papermill, the one way radcore does it (run cells and analysis pages alike).

The kernel talks to papermill over Unix sockets in a private temporary folder instead of loopback TCP:
outputs of runs on credentialed data never cross a network socket, and ipykernel has no reason to print
its "running over TCP without encryption" warning into every grid log. The folder
(``radcore-kernel-PID-XXXX``) goes when the kernel shuts down; one that a killed grid left (its PID gone) is
removed when the next kernel starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from radcore.outputs import process_alive

KERNEL = "python3"
SOCKET_DIR_PREFIX = "radcore-kernel-"


def remove_dead_socket_dirs(parent: str | Path | None = None) -> list[Path]:
    """Delete this user's kernel socket folders in ``parent`` (the temporary folder) whose manager process is
    gone, as a killed grid leaves them; returns them."""
    gone = []
    for path in Path(parent or tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*-*"):
        pid = path.name[len(SOCKET_DIR_PREFIX):].partition("-")[0]
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose channels are Unix sockets in a folder only this user can read."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        remove_dead_socket_dirs()
        self._socket_dir = tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-")
        self.ip = str(Path(self._socket_dir) / "ipc")

    def cleanup_ipc_files(self) -> None:
        super().cleanup_ipc_files()
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def execute(source: str | Path, target: str | Path, *, parameters: dict, cwd: str | Path) -> None:
    """Run ``source`` with ``parameters`` into ``target`` (papermill; raises its error if a cell fails)."""
    import papermill

    papermill.execute_notebook(str(source), str(target), parameters=parameters, kernel_name=KERNEL,
                               progress_bar=False, cwd=str(cwd), kernel_manager_class=IpcKernelManager)
