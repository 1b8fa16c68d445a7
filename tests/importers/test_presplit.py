"""Pre-split lists used as given (issue #15): TRAIN_FILES/DEV_FILES/TEST_FILES and a `split` column.

DeepSpeech users arrive with train/dev/test CSVs already made; the overfit smoke test even lists
one clip in all three. The clips are still checked, converted and quarantined, never moved between
splits, and overlap is kept and reported.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.importers.helpers import quarantine, read_csv, report, run_stages
from tests.importers.synth import tone

REPO = Path(__file__).resolve().parents[2]


def _clip(path: Path, seconds: float, freq: float, rate: int = 16000) -> Path:
    """A tone: the importer never listens, it checks and converts (distinct bytes per clip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, rate, freq), rate, subtype="PCM_16")
    return path


def _ds_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """A DeepSpeech CSV (wav_filename,wav_filesize,transcript)."""
    lines = ["wav_filename,wav_filesize,transcript"]
    for wav, text in rows:
        lines.append(f"{wav},0,{text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _splits(paths, corpus: str = "csv") -> dict[str, list[str]]:
    return {sp: [r["transcript"] for r in read_csv(paths.corpus_csv(corpus, sp))[1]]
            for sp in ("train", "dev", "test")}


def test_split_files_used_as_given(data_dir, tmp_path, caplog):
    src = data_dir / "sources"
    for i, name in enumerate(("a", "b", "c", "d", "e")):
        _clip(src / "clips" / f"{name}.wav", 1.5, 300 + 50 * i, rate=44100 if name == "b" else 16000)
    _clip(src / "clips" / "short.wav", 0.2, 900)
    outside = _clip(tmp_path / "elsewhere" / "f.wav", 1.5, 1000)  # absolute path, outside sources/
    _ds_csv(src / "train.csv", [("clips/a.wav", "bonjour"), ("clips/b.wav", "merci beaucoup"),
                                ("clips/c.wav", "au revoir"), ("clips/missing.wav", "bonne nuit"),
                                ("clips/short.wav", "trop court")])
    _ds_csv(src / "dev.csv", [("clips/a.wav", "bonjour"), ("clips/d.wav", "il fait froid")])
    _ds_csv(tmp_path / "test.csv", [(str(outside), "à demain"), ("clips/e.wav", "au revoir")])
    # the test list has a relative path too: relative to its own folder, so it is missing
    with caplog.at_level(logging.INFO, logger="pipeline"):
        _, paths = run_stages(data_dir, ("import",), CORPORA="", TRAIN_FILES="train.csv",
                              DEV_FILES="dev.csv", TEST_FILES=str(tmp_path / "test.csv"),
                              MIN_KEPT_RATIO="0")
    splits = _splits(paths)
    # kept exactly where listed; the overlap (a.wav in train and dev) is kept in both
    assert splits == {"train": ["bonjour", "merci beaucoup", "au revoir"],
                      "dev": ["bonjour", "il fait froid"], "test": ["à demain"]}
    # keys are relative to the lists' common folder (here tmp_path: one list is outside sources/)
    q = {k.removeprefix("data/sources/"): v for k, v in quarantine(paths, "csv").items()}
    assert q == {"clips/missing.wav": "missing_file", "clips/short.wav": "too_short",
                 "clips/e.wav": "missing_file"}  # tmp_path/clips/e.wav
    # the pack's default corpora (common_voice for fr) are not imported: the lists are enough
    assert not paths.corpus_dir("common_voice").exists()
    rep = report(paths, "csv")
    assert rep["split_method"]["method"] == "as given"
    assert rep["split_method"]["overlap"]["pairs"] == {"train/dev": {"clips": 1, "sentences": 1}}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("train/dev share 1 clip(s) and 1 sentence(s)" in w for w in warnings), warnings
    assert any("also train sentences: the LM text keeps them" in w for w in warnings), warnings
    # LM exclusion: dev/test sentences minus those also in train
    held = paths.heldout_sentences.read_text(encoding="utf-8").splitlines()
    assert held == ["il fait froid", "à demain"]
    # converted to 16 kHz mono like any import
    wav = Path(read_csv(paths.corpus_csv("csv", "train"))[1][1]["wav_filename"])
    info = sf.info(str(wav if wav.is_absolute() else paths.corpus_csv("csv", "train").parent / wav))
    assert (info.samplerate, info.channels) == (16000, 1)


def test_one_clip_in_all_three_splits(data_dir):
    """DeepSpeech's smoke test: train = dev = test = one clip (a single clip used to land in test)."""
    src = data_dir / "sources"
    _clip(src / "LDC93S1.wav", 2.9, 440)
    _ds_csv(src / "ldc93s1.csv", [("LDC93S1.wav", "she had your dark suit in greasy wash water all year")])
    _, paths = run_stages(data_dir, ("import",), CORPORA="", TRAIN_FILES="ldc93s1.csv",
                          DEV_FILES="ldc93s1.csv", TEST_FILES="ldc93s1.csv", MODEL_LANGUAGE="en")
    assert {sp: len(v) for sp, v in _splits(paths).items()} == {"train": 1, "dev": 1, "test": 1}
    rep = report(paths, "csv")
    assert rep["reasons"] == {} and rep["rows_kept"] == 3
    assert rep["split_method"]["overlap"]["clips"] == 1
    assert paths.heldout_sentences.read_text(encoding="utf-8") == ""
    # converted once: one wav for the three listings
    assert len(list((paths.corpus_dir("csv") / "wavs").rglob("*.wav"))) == 1


def test_split_column_in_csv_list(data_dir):
    src = data_dir / "sources"
    rows = [("a", "train", "bonjour"), ("b", "train", "merci"), ("c", "dev", "bonjour"),
            ("d", "test", "au revoir"), ("e", "validation", "bonne nuit"), ("f", "holdout", "salut")]
    lines = ["path,transcript,split"]
    for i, (name, split, text) in enumerate(rows):
        _clip(src / f"{name}.wav", 1.2, 200 + 70 * i)
        lines.append(f"{name}.wav,{text},{split}")
    (src / "mine.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, paths = run_stages(data_dir, ("import",), CORPORA="csv", CSV_LIST="mine.csv")
    assert _splits(paths) == {"train": ["bonjour", "merci"], "dev": ["bonjour", "bonne nuit"],
                              "test": ["au revoir"]}
    q = quarantine(paths, "csv")
    assert q == {"f.wav": "bad_row"}
    assert report(paths, "csv")["split_method"]["overlap"]["sentences"] == 1


def test_active_corpora_and_conflicts():
    base = {"MODEL_LANGUAGE": "fr"}
    assert "common_voice" in load_config(environ=base).active_corpora()  # the pack's list
    assert load_config(environ={**base, "TRAIN_FILES": "a.csv,b.csv"}).active_corpora() == ("csv",)
    cfg = load_config(environ={**base, "DEV_FILES": "d.csv", "CORPORA": "common_voice"})
    assert cfg.active_corpora() == ("common_voice", "csv")
    assert cfg.data.dev_files == ("d.csv",)
    with pytest.raises(ConfigError, match="CSV_LIST=x.csv and TRAIN_FILES"):
        load_config(environ={**base, "TRAIN_FILES": "a.csv", "CSV_LIST": "x.csv"})


def test_missing_split_file_is_one_line(data_dir):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--data-dir", str(data_dir),
                           "--stages", "import", "--set", "TRAIN_FILES=nope.csv"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    err = [line for line in proc.stderr.splitlines() if "TRAIN_FILES" in line and "nope.csv" in line]
    assert err and "not found" in err[-1]
