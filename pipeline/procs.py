"""Worker processes that never outlive the run that started them.

A SIGKILLed run (OOM killer, `docker kill`, a crash) cannot clean up its pool. Forked workers would
then linger, blocked on a queue, holding the parent's open files, among them the data dir's
`flock` (`.state/lock`), so the rerun would be refused as "another run". Each worker asks the
kernel to kill it when its parent dies (Linux `PR_SET_PDEATHSIG`; elsewhere a no-op).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Call first in a worker initializer. `parent_pid`: the pid that created the pool (closes the
    race where the parent dies before this call)."""
    if not sys.platform.startswith("linux"):
        return
    # CDLL(None): the process's own symbols, libc's prctl among them. find_library("c") would run
    # `ldconfig -p` in a subprocess in every worker (~2 ms of CPU each, every pool).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent is already gone
