"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every child process a test waits for gets this long. A guard against hangs, not a timing claim: far
# above any test's run time on a loaded machine, below pytest's own timeout (pytest.ini, 1800 s) so a
# hung child is killed and the test fails with its output instead of the whole session stopping.
SUBPROCESS_TIMEOUT = 1500.0


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = SUBPROCESS_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run `python -m pipeline ARGS` from the repo root; environment = os.environ + `env`."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def require_kenlm() -> None:
    """Skip when the KenLM tools (an external build, scripts/build_kenlm.sh) are missing."""
    import pytest

    from pipeline.errors import MissingInputError
    from pipeline.lm.build import kenlm_tools

    try:
        kenlm_tools("")
    except MissingInputError as exc:
        pytest.skip(f"KenLM tools missing: {exc}")
