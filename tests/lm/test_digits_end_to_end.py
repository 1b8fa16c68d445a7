"""A digit corpus as a new user gives it (a clip list with a speaker column) runs import -> test
end to end (issue #16): speaker-disjoint splits by fallback, an LM from the training sentences, and
the test stage reporting greedy and scorer results. Real FSDD clips (tests/data/fsdd), tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, SUBPROCESS_TIMEOUT

FSDD = REPO / "tests" / "data" / "fsdd"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def test_digits_clip_list_runs_to_the_test_stage(tmp_path: Path, kenlm_bin: Path) -> None:
    data = tmp_path / "data"
    (data / "sources").mkdir(parents=True)
    lines = ["path,transcript,speaker"]
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, _ = wav.stem.split("_")
        lines.append(f"{wav},{WORDS[int(digit)]},{speaker}")
    (data / "sources" / "digits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = ["CORPORA=csv", "CSV_LIST=digits.csv", "MIN_DURATION=0.1", "N_HIDDEN=32", "EPOCHS=2",
                "BATCH_SIZE=8", "LM_ORDER=2", "LM_MEMORY=64M", "LM_EVALUATE_RANGE=1,1,2",
                f"KENLM_BIN={kenlm_bin}"]
    argv = [sys.executable, "-m", "pipeline", "run", "--data-dir", str(data), "--lang", "en",
            "--to", "test"]
    for s in settings:
        argv += ["--set", s]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "SPLIT_POLICY fallback" in log
    imp = json.loads((data / "extracted" / "csv" / "import_report.json").read_text())
    assert imp["split_method"]["fallback"]["to"] == "speaker"
    assert imp["splits"]["train"]["speakers"] == 4 and imp["splits"]["test"]["rows"] == 10
    # every dev/test word is also a train sentence: nothing is held out of the LM (the import says
    # so), so the LM is the training sentences and knows all ten words
    assert "are also train sentences: the LM text keeps them" in log
    lm = json.loads((data / "lm" / "lm_report.json").read_text())
    assert lm["text"]["excluded_heldout_lines"] == 0 and lm["vocabulary"]["size"] == 10
    results = json.loads((data / "models" / "test_results.json").read_text())["csv"]
    assert results["samples"] == 10
    for key in ("wer", "cer", "greedy_wer", "greedy_cer"):
        assert 0.0 <= results[key] <= 1.0, (key, results)
