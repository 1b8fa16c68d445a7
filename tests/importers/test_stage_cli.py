"""`ds-pipeline run --stages preflight,import,alphabet` on a sample-layout CV archive (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import SUBPROCESS_TIMEOUT
from tests.importers.archives import make_cv_archive, standard_clips
from tests.importers.helpers import read_csv

REPO = Path(__file__).resolve().parents[2]


def test_cli_import_alphabet(tmp_path):
    data = tmp_path / "data"
    make_cv_archive(data / "sources" / "cv-corpus-sample-fr.tar.gz", standard_clips(5, 4),
                    columns="sample", version="0.0-sample")
    cmd = [sys.executable, "-m", "pipeline", "run", "--data-dir", str(data), "--stages",
           "preflight,import,alphabet", "--set", "CORPORA=common_voice", "--set", "WORKERS=2"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "import report: common_voice" in proc.stderr and "hours kept" in proc.stderr
    ex = data / "extracted" / "common_voice"
    counts = [len(read_csv(ex / f"common_voice_{s}.csv")[1]) for s in ("train", "dev", "test")]
    assert counts == [12, 4, 4]
    rep = json.loads((ex / "import_report.json").read_text(encoding="utf-8"))
    assert rep["rows_kept"] == 20 and rep["splits"]["dev"]["rows"] == 4
    assert (data / "models" / "alphabet.txt").is_file()
    assert (data / "reports" / "alphabet_report.json").is_file()
    assert len((data / "extracted" / "heldout_sentences.txt").read_text().splitlines()) == 8
    # A second run skips both stages (same settings, outputs present).
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0
    assert "[2/3 import] skip: done with the same settings" in proc.stderr
    assert "[3/3 alphabet] skip" in proc.stderr
