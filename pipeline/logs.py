"""Logging: configured once per process; stderr plus one log file per run under `logs/`."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

_CONSOLE_FMT = "%(asctime)s %(message)s"
_FILE_FMT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_configured = False


def setup_logging(verbose: bool = False) -> None:
    global _configured
    root = logging.getLogger()
    if _configured:
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_CONSOLE_FMT, "%H:%M:%S"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("urllib3", "matplotlib", "PIL", "h5py", "absl", "tensorflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def add_run_log(logs_dir: Path, name: str = "run") -> Path:
    """Start a log file `logs/<name>-<timestamp>.log` that receives everything from now on."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = logs_dir / f"{name}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = logs_dir / f"{name}-{stamp}-{n}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FILE_FMT))
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    return path


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
