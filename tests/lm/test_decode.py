"""Greedy and LM beam-search decoding on synthetic emissions."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lm.decode import PYCTCDECODE_LIKE, WIDE, Decoder, greedy_decode
from tests.lm.helpers import ALPHABET, emissions


def test_greedy_collapses_repeats_and_drops_blank() -> None:
    assert greedy_decode(emissions("le chat"), ALPHABET) == "le chat"
    assert greedy_decode(emissions("la balle"), ALPHABET) == "la balle"  # "ll" kept: blank between


def test_empty_and_all_blank_inputs(small_lm: dict) -> None:
    c = ALPHABET.num_classes
    empty = np.zeros((0, c), dtype=np.float32)
    blank = np.zeros((50, c), dtype=np.float32)
    blank[:, -1] = 1.0
    assert greedy_decode(empty, ALPHABET) == ""
    assert greedy_decode(blank, ALPHABET) == ""
    for scorer in (None, small_lm["scorer"]):
        dec = Decoder(ALPHABET, scorer, 0.93, 1.18, beam_width=32)
        assert dec.decode(empty) == ""
        assert dec.decode(blank) == ""
        assert dec.decode_batch([]) == []


@pytest.mark.parametrize("pruning", ["default", "wide", "pyctcdecode"])
def test_lm_fixes_what_greedy_gets_wrong(small_lm: dict, pruning: str) -> None:
    text = "le chat mange le fromage"
    # "chat" -> "chot" and "fromage" -> "fromoge" for greedy
    probs = emissions(text, confusions={5: ("o", 0.5), 21: ("o", 0.5)})
    assert greedy_decode(probs, ALPHABET) == "le chot mange le fromoge"
    kw = {"wide": {"pruning": WIDE, "rescue": None},
          "pyctcdecode": {"pruning": PYCTCDECODE_LIKE, "rescue": None}}.get(pruning, {})
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=64, **kw)
    assert dec.decode(probs) == text
    no_lm = Decoder(ALPHABET, None, 0.0, 0.0, beam_width=64)
    assert no_lm.decode(probs) == "le chot mange le fromoge"


def test_output_is_restricted_to_the_lexicon(small_lm: dict) -> None:
    vocab = set(small_lm["vocab"])
    assert "zorglub" not in vocab
    probs = emissions("le chat zorglub")
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=64)
    out = dec.decode(probs)
    assert out.startswith("le chat")
    assert all(w in vocab for w in out.split())
    assert "zorglub" not in out
    assert greedy_decode(probs, ALPHABET) == "le chat zorglub"


def test_alpha_and_beta_change_the_result(small_lm: dict) -> None:
    # Acoustically "la" is slightly preferred over "le"; the LM prefers "le chat".
    probs = emissions("la chat mange", confusions={1: ("e", 0.42)})
    assert greedy_decode(probs, ALPHABET) == "la chat mange"
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.0, 0.0, beam_width=64)
    assert dec.decode(probs) == "la chat mange"       # alpha 0: acoustics only
    dec.set_weights(1.0, 0.0)
    assert dec.decode(probs) == "le chat mange"       # the LM outweighs the small acoustic margin
    # A heavy LM weight (no insertion bonus) overrides the acoustics.
    dec.set_weights(3.0, 0.0)
    assert dec.decode(probs) not in ("le chat mange", "la chat mange")
    # beta is added per word: a large negative one pushes towards fewer, longer words (here the
    # frames force three words, so the output degrades); a moderate one gives the right words.
    dec.set_weights(1.0, -30.0)
    assert dec.decode(probs) != "le chat mange"
    dec.set_weights(1.0, 2.0)
    assert dec.decode(probs) == "le chat mange"


def test_batch_matches_single(small_lm: dict) -> None:
    sents = small_lm["sentences"][:6]
    batch = [emissions(s, confusions={2: ("o", 0.3)}, seed=i) for i, s in enumerate(sents)]
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    single = [dec.decode(p) for p in batch]
    assert dec.decode_batch(batch, workers=2) == single
    assert single == sents


def test_wrong_class_count_is_an_error(small_lm: dict) -> None:
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=8)
    with pytest.raises(ValueError, match="classes"):
        dec.decode(np.full((5, 10), 0.1, dtype=np.float32))
