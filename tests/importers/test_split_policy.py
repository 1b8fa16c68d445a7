"""SPLIT_POLICY and its fallback (issue #16): a small vocabulary read by several speakers.

The clips are 60 real Free Spoken Digit Dataset recordings (tests/data/fsdd, CC BY-SA 4.0): 6
speakers x the 10 digits. Speaker- and sentence-disjoint splits of such a corpus keep one speaker's
ten digits and drop everything else as `split_overlap`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from importers.base import Sample
from importers.engine import assign_splits, choose_splits
from pipeline.errors import DataQualityError
from tests.importers.helpers import read_csv, report, run_stages

FSDD = Path(__file__).resolve().parent.parent / "data" / "fsdd"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digits_list(src: Path) -> Path:
    """A plain clip list with a speaker column, paths absolute (as a new user would write it)."""
    lines = ["path,transcript,speaker"]
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, _ = wav.stem.split("_")
        lines.append(f"{wav},{WORDS[int(digit)]},{speaker}")
    out = src / "digits.csv"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _splits(paths) -> dict[str, list[dict[str, str]]]:
    return {sp: read_csv(paths.corpus_csv("csv", sp))[1] for sp in ("train", "dev", "test")}


def _speakers(rows: list[dict[str, str]]) -> set[str]:
    return {Path(r["wav_filename"]).stem.split("_")[-2] for r in rows}


def test_digits_fall_back_to_speaker_disjoint_splits(data_dir, caplog):
    digits_list(data_dir / "sources")
    with caplog.at_level("INFO"):
        _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="digits.csv", MODEL_LANGUAGE="en",
                              MIN_DURATION="0.1")
    rep = report(paths, "csv")
    fb = rep["split_method"]["fallback"]
    assert fb["from"] == "speaker+sentence" and fb["to"] == "speaker"
    assert "MIN_KEPT_RATIO=0.5" in fb["reason"]
    assert rep["split_method"]["speaker_disjoint"] and not rep["split_method"]["sentence_disjoint"]
    assert any("SPLIT_POLICY fallback" in n for n in rep["notes"])
    assert "SPLIT_POLICY fallback" in caplog.text  # stated in the log too
    assert "SPLIT_POLICY=speaker (fallback from speaker+sentence" in caplog.text  # report table
    assert rep["rows_kept"] == 60 and rep["kept_ratio"] == 1.0
    assert "split_overlap" not in rep["reasons"]
    splits = _splits(paths)
    assert [len(_speakers(splits[sp])) for sp in ("train", "dev", "test")] == [4, 1, 1]
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not _speakers(splits[a]) & _speakers(splits[b])
    # every digit is in train and in test: a vocabulary, not a sentence, generalization test
    assert {r["transcript"] for r in splits["train"]} == {r["transcript"] for r in splits["test"]}


def test_explicit_sentence_policy_and_empty_train_error(data_dir):
    digits_list(data_dir / "sources")
    _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="digits.csv", MODEL_LANGUAGE="en",
                          MIN_DURATION="0.1", SPLIT_POLICY="sentence")
    rep = report(paths, "csv")
    assert "fallback" not in rep["split_method"] and rep["split_method"]["method"] == "sentence"
    splits = _splits(paths)
    sents = {sp: {r["transcript"] for r in rows} for sp, rows in splits.items()}
    assert not sents["train"] & sents["dev"] and not sents["train"] & sents["test"]
    assert sum(len(v) for v in splits.values()) == 60

    # two clips dealt by sentence: one to test, one to dev, nothing left to train on
    lines = ["path,transcript,speaker", f"{FSDD / '1_george_5.wav'},one,george",
             f"{FSDD / '2_george_5.wav'},two,george"]
    (data_dir / "sources" / "two.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataQualityError) as err:
        run_stages(data_dir, CORPORA="csv", CSV_LIST="two.csv", MODEL_LANGUAGE="en",
                   MIN_DURATION="0.1", SPLIT_POLICY="sentence")
    msg = str(err.value)
    assert "train split is empty" in msg and "SPLIT_POLICY" in msg and "csv" in msg


def _s(key: str, spk: str, text: str) -> Sample:
    return Sample(key=key, wav_rel=f"wavs/{key}.wav", wav_filesize=100, transcript=text, duration=1.0,
                  speaker=spk, split=None, content_hash=key)


def test_policies_are_disjoint_as_named_and_deterministic():
    samples = [_s(f"k{i}", f"spk{i % 6}", f"word {i % 10}") for i in range(120)]
    for policy in ("speaker", "sentence", "none"):
        out, overlap, info = assign_splits(samples, False, seed=3, policy=policy)
        assert not overlap and sum(len(v) for v in out.values()) == 120 and info["policy"] == policy
        again, _, _ = assign_splits(list(reversed(samples)), False, seed=3, policy=policy)
        assert again == out
        spk = {sp: {s.speaker for s in rows} for sp, rows in out.items()}
        sent = {sp: {s.transcript for s in rows} for sp, rows in out.items()}
        if policy == "speaker":
            assert not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
        if policy == "sentence":
            assert not sent["train"] & sent["test"] and not sent["dev"] & sent["test"]
    with pytest.raises(ValueError):
        assign_splits(samples, False, seed=3, policy="both")


def test_fallback_only_when_the_default_drops_too_much():
    # 10 speakers, sentences shared by two neighbouring speakers: the default keeps most rows
    mostly = [_s(f"k{i}", f"spk{i // 20}", f"sentence {(i // 40) * 20 + i % 20}") for i in range(200)]
    out, overlap, info = choose_splits(mostly, False, 7, "speaker+sentence", 0.5)
    assert "fallback" not in info and len(overlap) < 100
    # the same rows under a stricter ratio than the default keeps: falls back
    kept = 1 - len(overlap) / 200
    if kept < 1.0:
        _, o2, i2 = choose_splits(mostly, False, 7, "speaker+sentence", min(1.0, kept + 0.01))
        assert i2["fallback"]["to"] == "speaker" and not o2
    # an explicit policy never falls back
    digits = [_s(f"d{i}", f"spk{i % 6}", f"w{i % 10}") for i in range(60)]
    _, o3, i3 = choose_splits(digits, False, 7, "speaker+sentence", 0.5)
    assert i3["fallback"]["to"] == "speaker" and not o3
    _, o4, i4 = choose_splits(digits, False, 7, "sentence", 0.5)
    assert "fallback" not in i4 and i4["policy"] == "sentence"
    # fewer than 3 speakers: "speaker" is skipped, sentence-disjoint is next
    two = [_s(f"t{i}", f"spk{i % 2}", f"w{i % 20}") for i in range(80)]
    _, _, i5 = choose_splits(two, False, 7, "speaker+sentence", 0.5)
    assert "fallback" not in i5 and i5["method"] == "sentence"


def test_rows_dropped_by_the_split_policy_count_toward_min_kept_ratio(data_dir):
    # half of each speaker's clips read a shared word, half a sentence of their own: the default
    # policy drops some rows as split_overlap, keeps more than MIN_KEPT_RATIO (no fallback), and
    # the report's ratio counts the dropped rows (it said 100 % of "considered" rows before)
    lines = ["path,transcript,speaker"]
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, _ = wav.stem.split("_")
        text = WORDS[int(digit)] if int(digit) < 5 else f"{WORDS[int(digit)]} for {speaker}"
        lines.append(f"{wav},{text},{speaker}")
    (data_dir / "sources" / "mixed.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="mixed.csv", MODEL_LANGUAGE="en",
                          MIN_DURATION="0.1")
    rep = report(paths, "csv")
    assert "fallback" not in rep["split_method"]
    overlap = rep["reasons"]["split_overlap"]
    assert overlap > 0 and rep["rows_considered"] == 60
    assert rep["kept_ratio"] == round(rep["rows_kept"] / 60, 4)
    assert rep["rows_kept"] + overlap <= 60 and 0.5 <= rep["kept_ratio"] < 1.0
    # the same corpus under a stricter MIN_KEPT_RATIO falls back instead of failing
    _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="mixed.csv", MODEL_LANGUAGE="en",
                          MIN_DURATION="0.1", MIN_KEPT_RATIO="0.9")
    rep = report(paths, "csv")
    assert rep["split_method"]["fallback"]["to"] == "speaker" and "split_overlap" not in rep["reasons"]
