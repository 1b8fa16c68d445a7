"""benchmarks/scale.py keeps working (#14): on tiny sizes and the import/alphabet stages it builds
its Common Voice-shaped corpus, runs each stage in a child process and writes the JSON the issue
specifies."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

STAGES = ("import_plan", "dedup", "splits", "csv", "alphabet")


def test_scale_benchmark_json_shape(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scale.py"), "--sizes", "200,400",
                           "--stages", ",".join(STAGES), "--json", str(out), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data["stages"]) == set(STAGES)
    for stage, d in data["stages"].items():
        assert set(d["sizes"]) == {"200", "400"}, stage
        for n, cell in d["sizes"].items():
            assert set(cell) == {"seconds", "seconds_per_1k_rows", "peak_rss_mb"}
            assert cell["seconds"] >= 0 and cell["peak_rss_mb"] > 10
            per_1k = 1000 * cell["seconds"] / int(n)
            assert abs(cell["seconds_per_1k_rows"] - per_1k) < 1e-4 + 1e-3 * per_1k
        per_row = {int(n): c["seconds"] / int(n) for n, c in d["sizes"].items()}
        if per_row[200] > 0:
            assert abs(d["growth"] - per_row[400] / per_row[200]) < 0.002 * max(1.0, d["growth"])
    assert "growth" in proc.stdout  # the table
    # the corpus really is Common Voice-shaped: current CV columns, many speakers
    tsv = next((tmp_path / "w" / "n400").rglob("validated.tsv"))
    with open(tsv, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 400 and {"client_id", "path", "sentence", "sentence_id", "locale"} <= set(rows[0])
    assert len({r["client_id"] for r in rows}) >= 20
    # and the csv stage wrote the split CSVs from it
    csvs = list((tmp_path / "w" / "n400" / "extracted" / "common_voice").glob("common_voice_*.csv"))
    assert {"train", "dev", "test"} <= {p.stem.rsplit("_", 1)[1] for p in csvs}
    assert set(data["cpu_growth"]) == set(STAGES)


def test_scale_benchmark_resume_keeps_earlier_figures(tmp_path: Path) -> None:
    """A long run done in parts: --resume keeps what the JSON holds and measures only the rest."""
    out, work = tmp_path / "scale.json", tmp_path / "w"
    cmd = [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--json", str(out), "--work", str(work)]
    first = subprocess.run(cmd + ["--sizes", "200", "--stages", "dedup,alphabet"],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    before = json.loads(out.read_text(encoding="utf-8"))
    again = subprocess.run(cmd + ["--sizes", "200,400", "--stages", "dedup,alphabet,splits", "--resume"],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    after = json.loads(out.read_text(encoding="utf-8"))
    for stage in ("dedup", "alphabet"):  # the 200-row figures are the first run's, not re-measured
        assert after["stages"][stage]["sizes"]["200"] == before["stages"][stage]["sizes"]["200"]
        assert set(after["stages"][stage]["sizes"]) == {"200", "400"}
    assert set(after["stages"]["splits"]["sizes"]) == {"200", "400"}
    measured = [ln.split()[:2] for ln in again.stdout.splitlines() if ln.strip().endswith(")")]
    assert ["200", "dedup"] not in measured and ["400", "dedup"] in measured and ["200", "splits"] in measured
    no_json = subprocess.run(cmd[:2] + ["--resume"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert no_json.returncode == 2 and "--resume needs --json" in no_json.stderr
