"""Fault injection for the reliability tests: named points where a test can kill the process or make
an operation fail, to prove that a crash or a full disk at that exact point loses nothing.

`DS_PIPELINE_CRASH_AT=name[:n]` SIGKILLs the process the n-th time (default 1st) `crashpoint(name)` is
reached. `DS_PIPELINE_FAIL_AT=name[:n]` raises `OSError(ENOSPC)` there instead. Unset (always, outside
tests), a crashpoint costs one dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import signal

_counts: dict[str, int] = {}


def _match(var: str, name: str) -> bool:
    spec = os.environ.get(var)
    if not spec:
        return False
    target, _, nth = spec.partition(":")
    if target != name:
        return False
    _counts[var + name] = _counts.get(var + name, 0) + 1
    return _counts[var + name] == (int(nth) if nth else 1)


def crashpoint(name: str) -> None:
    """Die here (SIGKILL) or fail with ENOSPC here if a test asked for it."""
    if _match("DS_PIPELINE_CRASH_AT", name):
        os.kill(os.getpid(), signal.SIGKILL)
    if _match("DS_PIPELINE_FAIL_AT", name):
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
