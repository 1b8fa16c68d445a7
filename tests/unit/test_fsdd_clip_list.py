"""scripts/fsdd_clip_list.py (`make demo-digits`): FSDD file names -> a clip list with a speaker column."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "fsdd_clip_list.py"


def test_clip_list_from_fsdd_names(tmp_path: Path) -> None:
    out = tmp_path / "sources" / "digits.csv"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(REPO / "tests" / "data" / "fsdd"), str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60 and set(rows[0]) == {"path", "transcript", "speaker"}
    assert len({r["speaker"] for r in rows}) == 6
    for r in rows:
        digit, speaker, _ = Path(r["path"]).stem.split("_")
        assert r["speaker"] == speaker and Path(r["path"]).is_absolute()
        assert r["transcript"] == ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                   "eight", "nine")[int(digit)]


def test_missing_folder_is_one_line_naming_digits(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope"), str(tmp_path / "x.csv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0 and "DIGITS=" in proc.stderr
