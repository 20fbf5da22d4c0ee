"""Executing a notebook with papermill, the one way radcore does it (run cells and analysis pages alike).

The kernel talks to papermill over Unix sockets in a private temporary folder instead of loopback TCP:
outputs of runs on credentialed data never cross a network socket, and ipykernel has no reason to print
its "running over TCP without encryption" warning into every grid log.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

KERNEL = "python3"


class IpcKernelManager(AsyncKernelManager):
    """A kernel manager whose channels are Unix sockets in a folder only this user can read."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self._socket_dir = tempfile.mkdtemp(prefix="radcore-kernel-")
        self.ip = str(Path(self._socket_dir) / "ipc")

    def cleanup_ipc_files(self) -> None:
        super().cleanup_ipc_files()
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def execute(source: str | Path, target: str | Path, *, parameters: dict, cwd: str | Path) -> None:
    """Run ``source`` with ``parameters`` into ``target`` (papermill; raises its error if a cell fails)."""
    import papermill

    papermill.execute_notebook(str(source), str(target), parameters=parameters, kernel_name=KERNEL,
                               progress_bar=False, cwd=str(cwd), kernel_manager_class=IpcKernelManager)
