"""The decoder's speed measures: run collapse, token pruning and the second (rescue) pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.lm.decode import (
    FAST,
    RESCUE,
    RESCUE_NARROW,
    Decoder,
    Pruning,
    collapse_runs,
    greedy_decode,
    log_emissions,
)
from tests.lm.helpers import ALPHABET, emissions, peaky


def test_collapse_removes_most_frames_of_a_blank_heavy_emission() -> None:
    text = "la balle"
    probs = peaky(text)
    assert len(probs) == 30 + len(text) * (2 + 4) + 30
    em = collapse_runs(np.log(probs), math.log(0.999))
    # leading silence -> 1 frame; per character: its spike -> 1 frame, its gap -> 1 frame (the
    # last gap merges with the trailing silence)
    assert len(em) == 1 + 2 * len(text)
    assert len(em) / len(probs) < 0.25
    assert greedy_decode(np.exp(em), ALPHABET) == "la balle"  # "ll": a blank stays between


def test_collapse_keeps_hints_and_leaves_uncertain_frames_alone() -> None:
    probs = peaky("le chat", hints={3: ("c", 2e-4)})
    em = collapse_runs(np.log(probs), math.log(0.999))
    c = ALPHABET.encode("c")[0]
    assert np.isclose(em[:, c].max(), math.log(2e-4), atol=1e-3)  # the max over the run is kept
    soft = emissions("le chat")                  # peak 0.9: no frame is dominated
    assert np.array_equal(collapse_runs(np.log(soft), math.log(0.999)), np.log(soft))


def test_repeated_characters_survive_collapse_in_the_beam_search(small_lm: dict) -> None:
    free = Decoder(ALPHABET, None, 0.0, 0.0, beam_width=16)
    probs = peaky("la balle")
    assert free.decode(probs) == "la balle"
    uncollapsed = Decoder(ALPHABET, None, 0.0, 0.0, beam_width=16,
                          pruning=Pruning(beam_threshold=10.0, collapse=None))
    assert uncollapsed.decode(probs) == "la balle"


@pytest.mark.parametrize("shape", ["peaky", "soft"])
def test_same_text_with_and_without_collapse(small_lm: dict, shape: str) -> None:
    plain = Pruning(beam_threshold=25.0, collapse=None)
    sents = small_lm["sentences"][:8]
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    ref = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32, pruning=plain,
                  rescue=None)
    for i, s in enumerate(sents):
        probs = peaky(s) if shape == "peaky" else emissions(s, confusions={2: ("o", 0.3)}, seed=i)
        assert dec.decode(probs) == ref.decode(probs) == s
    assert dec.rescued == 0


def test_token_pruning_keeps_blank_and_best() -> None:
    probs = emissions("le chat")
    em = log_emissions(probs, Pruning(beam_threshold=10.0, token_margin=0.5, collapse=None))
    assert np.all(em[:, -1] > -1e8)                            # blank always kept
    assert np.array_equal(em.argmax(axis=1), np.log(probs).argmax(axis=1))
    assert (em > -1e8).sum(axis=1).max() <= 2                  # the rest is skipped
    em = log_emissions(probs, Pruning(beam_threshold=10.0, token_min_logp=-50.0, collapse=None))
    assert np.all(em > -1e8)


def test_second_pass_recovers_a_word_the_fast_pass_prunes(small_lm: dict) -> None:
    # The "c" of "chat" is only a faint hint (ln p ≈ -10.8, other characters ≈ -13) inside a blank
    # run: below FAST's token margin, so the fast pass cannot spell "chat" and must fight the
    # acoustics; its poor fit sends the utterance to the second pass, which reads "le chat mange".
    assert FAST.token_margin is not None and math.log(2e-5) < -FAST.token_margin
    assert RESCUE.token_margin is not None and math.log(2e-5) > -RESCUE.token_margin
    probs = peaky("le chat mange", hints={3: ("c", 2e-5)})
    assert greedy_decode(probs, ALPHABET) == "le hat mange"
    fast_only = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32, rescue=None)
    assert fast_only.decode(probs) != "le chat mange"
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    assert dec.decode(probs) == "le chat mange"
    assert dec.rescued == 1
    assert dec.decode_batch([probs, probs], workers=2) == ["le chat mange"] * 2


def test_rescue_passes_escalate_only_while_the_result_fits_badly(small_lm: dict) -> None:
    # The fast pass cannot spell "chat" and fits the acoustics hundreds of nats per frame worse than
    # the best path; the narrow rescue reads "le chat mange" but still fits 0.43 nats per frame
    # worse, above RESCUE_GAP (0.4), so RESCUE runs too. With a gap of 0.5 the narrow pass settles it.
    probs = peaky("le chat mange", hints={3: ("c", 2e-5)})
    dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    assert dec.decode(probs) == "le chat mange"
    assert (dec.runs[FAST], dec.runs[RESCUE_NARROW], dec.runs[RESCUE]) == (1, 1, 1)
    _, narrow_gap = dec._search(probs, *dec._passes[1])
    assert 0.4 < narrow_gap < 0.5
    settled = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32, rescue_gap=0.5)
    assert settled.decode(probs) == "le chat mange"
    assert (settled.runs[FAST], settled.runs[RESCUE_NARROW], settled.runs[RESCUE]) == (1, 1, 0)
    clean = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    assert clean.decode(peaky("le chat mange")) == "le chat mange"
    assert sum(clean.runs.values()) == 1


def test_best_result_equals_the_reference_search(small_lm: dict) -> None:
    """The decoder reads only the best final hypothesis (get_best_hypothesis) instead of the list
    of all of them; the transcripts must be those of the list's first, also for an utterance whose
    best hypothesis ends inside a word (flashlight walks that one back, so the list is read)."""
    sents = small_lm["sentences"][40:52]
    cases = [peaky(s) for s in sents[:4]]
    cases += [emissions(s, confusions={2: ("o", 0.45), 5: ("e", 0.4)}, seed=i) for i, s in enumerate(sents)]
    cases += [peaky("le chat mange", hints={3: ("c", 2e-5)}), emissions("le chat mang"),
              emissions("xqzw"), peaky("la souri")]
    # (Without a scorer the decoder reads the list as before: flashlight's lexicon-free search
    # orders equal-score hypotheses by memory address, so it is not repeatable on ties anyway.)
    for beam in (32, 8):
        dec = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=beam)
        ref = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=beam)
        ref.reference = True
        assert [dec.decode(p) for p in cases] == [ref.decode(p) for p in cases]
        assert dec.rescued == ref.rescued
