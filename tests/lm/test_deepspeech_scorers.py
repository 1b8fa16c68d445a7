"""Scorers made by DeepSpeech's generate_scorer_package (issue #15): read, decode, rebuild.

`pruned_lm.scorer` (DeepSpeech 0.9.3 smoke test, tests/data/deepspeech_smoke) holds a KenLM binary
and the lexicon trie; both are recoverable from it. Given them, our writer must reproduce the
file byte for byte. The decoder agreement with libdeepspeech on the smoke model is in
tests/smoke/test_deepspeech_smoke.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.lm.scorer import build_scorer, check_scorer_mode, read_scorer, vocabulary
from pipeline.text.alphabet import Alphabet

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests/data/deepspeech_smoke"
EN = Alphabet.from_file(REPO / "pipeline/langs/en/alphabet.txt")
SENTENCE = "she had your dark suit in greasy wash water all year"


def test_rebuilds_pruned_lm_scorer_byte_for_byte(tmp_path: Path) -> None:
    src = DATA / "pruned_lm.scorer"
    info = read_scorer(src)
    assert not info.utf8 and (info.alpha, round(info.beta, 6)) == (0.75, 1.85)
    raw = src.read_bytes()
    lm = tmp_path / "lm.binary"
    lm.write_bytes(raw[:info.lm_size])  # KenLM part: the file up to the trailer
    vocab = list(vocabulary(info, EN))
    assert len(vocab) == 3540 and {"she", "greasy", "year"} <= set(vocab)
    out = tmp_path / "rebuilt.scorer"
    build_scorer(lm, vocab, EN, info.alpha, info.beta, out)
    new = out.read_bytes()
    assert len(new) == len(raw) == 439040
    diff = [i for i in range(len(raw)) if raw[i] != new[i]]
    assert diff == [], f"{len(diff)} bytes differ, first at {diff[:5]}"


def test_bytes_scorer_is_read_and_its_mode_checked() -> None:
    info = read_scorer(DATA / "pruned_lm.bytes.scorer")
    assert info.utf8
    # in bytes output mode DeepSpeech's LM "words" are single characters ("s p o t" lines)
    words = list(vocabulary(info, EN))
    assert len(words) == 27 and set(words) == set("abcdefghijklmnopqrstuvwxyz'")
    with pytest.raises(ConfigError) as exc:
        check_scorer_mode(info, model_utf8=False, model="output_graph.tflite")
    msg = str(exc.value)
    assert "\n" not in msg and "pruned_lm.bytes.scorer" in msg and "output_graph.tflite" in msg
    assert "UTF-8" in msg and "alphabet-mode" in msg
    check_scorer_mode(read_scorer(DATA / "pruned_lm.scorer"), model_utf8=False)


def test_our_decoder_with_deepspeech_scorer_fixes_a_spelling() -> None:
    """Emissions where greedy merges the double l of 'all' ('al year'): the lexicon and LM of
    pruned_lm.scorer take the path with a blank between the two l frames."""
    from pipeline.lm.decode import Decoder, greedy_decode

    blank = EN.blank_index
    frames = []
    for i, ch in enumerate(SENTENCE):
        p = np.full(EN.num_classes, 0.001)
        p[EN.encode(ch)[0]] = 1.0
        frames.append(p)
        q = np.full(EN.num_classes, 0.001)
        q[blank] = 1.0
        if SENTENCE[i:i + 2] == "ll":  # between the two l: l a bit likelier than blank
            q[blank], q[EN.encode("l")[0]] = 0.7, 1.0
        frames.append(q)
    probs = np.array([f / f.sum() for f in frames], np.float32)
    assert greedy_decode(probs, EN) == SENTENCE.replace("all", "al")
    info = read_scorer(DATA / "pruned_lm.scorer")
    dec = Decoder(EN, DATA / "pruned_lm.scorer", info.alpha, info.beta, 500)
    assert dec.decode(probs).strip() == SENTENCE
