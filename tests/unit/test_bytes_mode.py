"""Bytes output mode (issue #15 item 5) without training: DeepSpeech's UTF8Alphabet layout, the
serialized `metadata_alphabet`, greedy and scorer decoding of known probabilities, mode checks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.lm.decode import greedy_decode
from pipeline.text.alphabet import Alphabet, ByteAlphabet

DATA = Path(__file__).resolve().parents[1] / "data/deepspeech_smoke"


def _probs(labels: list[int], n_classes: int = 256) -> np.ndarray:
    """One frame per label, a blank frame between labels: the best path spells `labels`."""
    frames = []
    for lab in labels:
        for cls in (lab, n_classes - 1):
            row = np.full(n_classes, 1e-4, np.float32)
            row[cls] = 1.0
            frames.append(row / row.sum())
    return np.stack(frames)


def test_labels_follow_deepspeech_utf8_alphabet() -> None:
    a = ByteAlphabet()
    # 255 labels (byte 1..255) + blank 255 = 256 outputs; the space label is byte 0x20 - 1 = 31
    assert (len(a), a.num_classes, a.blank_index, a.space_index) == (255, 256, 255, 31)
    assert a.encode("a 你") == [0x60, 0x1F, 0xE3, 0xBC, 0x9F]
    assert a.decode(a.encode("北京 ok")) == "北京 ok"
    with pytest.raises(ValueError, match="NUL"):
        a.encode("a\x00b")


def test_serialized_alphabet_is_deepspeech_bytes_layout() -> None:
    raw = ByteAlphabet().serialize()
    assert struct.unpack_from("<H", raw, 0)[0] == 255
    assert len(raw) == 2 + 255 * 5
    # pair i: u16 i, u16 1, the raw byte i + 1 (not UTF-8 encoded: 0xff stays one byte)
    assert raw[2:7] == struct.pack("<HH", 0, 1) + b"\x01"
    assert raw[-5:] == struct.pack("<HH", 254, 1) + b"\xff"
    assert isinstance(Alphabet.deserialize(raw), ByteAlphabet)
    # an ordinary alphabet still reads back as one
    en = Alphabet.from_text(" \na\nb\n")
    assert type(Alphabet.deserialize(en.serialize())) is Alphabet


def test_alphabet_file_round_trip_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "alphabet.txt"
    ByteAlphabet().write(path, header=["bytes"])
    assert isinstance(Alphabet.from_file(path), ByteAlphabet)


def test_greedy_decode_bytes_to_text_and_invalid_sequences() -> None:
    a = ByteAlphabet()
    assert greedy_decode(_probs(a.encode("你好")), a) == "你好"
    # a truncated sequence (first two bytes of 你) and a lone continuation byte become U+FFFD
    assert greedy_decode(_probs(a.encode("你")[:2] + a.encode("好")), a) == "\ufffd好"
    assert greedy_decode(_probs([0x80 - 1, *a.encode("好")]), a) == "\ufffd好"


def test_setting_and_stage_keys() -> None:
    from pipeline.stages import STAGES

    assert load_config(environ={}).data.bytes_output_mode is False
    assert load_config(environ={"BYTES_OUTPUT_MODE": "1"}).data.bytes_output_mode is True
    keyed = {s.name for s in STAGES if "BYTES_OUTPUT_MODE" in s.config_keys}
    assert {"import", "alphabet", "lm", "train", "test", "export"} <= keyed


def test_decoder_with_deepspeech_bytes_scorer() -> None:
    """DeepSpeech's pruned_lm.bytes.scorer: a UTF-8 scorer whose words are single letters."""
    pytest.importorskip("flashlight.lib.text")
    from pipeline.lm.decode import Decoder

    a = ByteAlphabet()
    dec = Decoder(a, DATA / "pruned_lm.bytes.scorer", 0.93, 1.18, 64)
    assert len(dec.words) == 27
    # no space in that lexicon (as in libdeepspeech): letters only
    assert dec.decode(_probs(a.encode("shehad"))) == "shehad"


def test_mode_mismatch_is_one_line_naming_both() -> None:
    pytest.importorskip("flashlight.lib.text")
    from pipeline.lm.decode import Decoder

    with pytest.raises(ConfigError) as exc:
        Decoder(ByteAlphabet(), DATA / "pruned_lm.scorer", 0.9, 1.2, 16, model_name="m.tflite")
    msg = str(exc.value)
    assert "\n" not in msg and "pruned_lm.scorer" in msg and "m.tflite" in msg
    en = Alphabet.from_text(" \n" + "\n".join("abcdefghijklmnopqrstuvwxyz'") + "\n")
    with pytest.raises(ConfigError, match="pruned_lm.bytes.scorer.*UTF-8"):
        Decoder(en, DATA / "pruned_lm.bytes.scorer", 0.9, 1.2, 16)


def test_import_keeps_any_script_in_bytes_mode() -> None:
    import dataclasses

    from pipeline.langs import load_pack
    from pipeline.text.normalize import normalize_text, rules_for

    rules = rules_for(load_pack("en"))
    assert normalize_text("我爱北京", rules).text is None  # foreign script for the en alphabet
    byte_rules = dataclasses.replace(rules, bytes_output_mode=True)
    assert normalize_text("我爱 北京。", byte_rules).text == "我爱 北京"


def test_bytes_scorer_reads_repeated_frames_once_as_libdeepspeech() -> None:
    """A real bytes model holds a letter for several frames and goes from letter to letter without
    a blank ("s h h e e ␠ ␠ h a a d d", the LDC93S1 bytes model's best path). Each run is one
    letter; the space is not in the scorer's vocabulary, so it is dropped: libdeepspeech 0.9.3 read
    this model as `shehadyour…`. (flashlight's lexicon search had read a repeated frame after a
    one-letter word as a new word: `shehehadad…`.)"""
    pytest.importorskip("flashlight.lib.text")
    from pipeline.lm.decode import FAST, WIDE, Decoder

    a = ByteAlphabet()
    frames = []
    for ch, n in (("s", 1), ("h", 2), ("e", 2), (" ", 2), ("h", 1), ("a", 2), ("d", 2), (" ", 3),
                  ("y", 3), ("o", 3), ("u", 2)):
        frames += a.encode(ch) * n
    rows = np.full((len(frames), 256), 1e-4, np.float32)
    rows[:, -1] = 0.01  # as in a trained model, the blank is the likeliest other class
    rows[np.arange(len(frames)), frames] = 1.0
    probs = rows / rows.sum(axis=1, keepdims=True)
    for pruning in (WIDE, FAST):
        dec = Decoder(a, DATA / "pruned_lm.bytes.scorer", 0.93, 1.18, 100, pruning=pruning)
        assert dec.decode(probs) == "shehadyou"


def test_test_reports_rank_samples_by_cer_in_bytes_mode() -> None:
    """Without spaces between words a transcript is one "word" (WER 0 or 1 per sample): the test
    stage ranks a ByteAlphabet model's samples by CER, an alphabet model's by WER."""
    from pipeline.report.metrics import best_median_worst, score_samples
    from pipeline.stages.evaluate import ranking_metric

    en = Alphabet.from_text(" \n" + "\n".join("abcdefghijklmnopqrstuvwxyz'") + "\n")
    assert ranking_metric(ByteAlphabet()) == "cer" and ranking_metric(en) == "wer"
    refs = ["你好", "我 爱 北京", "你好吗朋友"]
    hyps = ["你好", "我 爱", "你好吗朋有"]  # exact; WER 1/3 but CER 3/6; WER 1 but CER 1/5
    samples = score_samples(["a.wav", "b.wav", "c.wav"], refs, hyps, hyps)
    assert [round(s.wer, 2) for s in samples] == [0.0, 0.33, 1.0]
    assert [round(s.cer, 2) for s in samples] == [0.0, 0.5, 0.2]
    by_cer = best_median_worst(samples, n=3, by=ranking_metric(ByteAlphabet()))
    assert [s["wav_filename"] for s in by_cer["worst"]] == ["b.wav", "c.wav", "a.wav"]
    by_wer = best_median_worst(samples, n=3, by=ranking_metric(en))
    assert [s["wav_filename"] for s in by_wer["worst"]] == ["c.wav", "b.wav", "a.wav"]
    with pytest.raises(ValueError, match="rank by"):
        best_median_worst(samples, by="loss")
