"""The native lexicon beam search (pipeline/lm/ctc_search.cc) against flashlight-text's, which it
restates: the same best hypothesis, total and acoustic score, for every pass's pruning."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.lm import ctc_search
from pipeline.lm.decode import FAST, PYCTCDECODE_LIKE, RESCUE, RESCUE_NARROW, WIDE, Decoder, Pruning
from pipeline.lm.scorer import read_scorer
from pipeline.text.alphabet import Alphabet
from pipeline.tools import find_tool, native_lib_dirs
from tests.lm.helpers import ALPHABET, emissions, peaky

DATA = Path(__file__).resolve().parents[1] / "data" / "deepspeech_smoke"
EN = Alphabet(tuple(" abcdefghijklmnopqrstuvwxyz'"))


@pytest.fixture(scope="module")
def native() -> None:
    lib, why = ctc_search.load()
    if lib is None:
        if find_tool("lmplz") is None:  # KenLM not built at all: the one allowed reason to skip
            pytest.skip(f"native beam search not built ({why}); scripts/build_kenlm.sh builds it")
        pytest.fail(f"KenLM tools are built but the native beam search is not usable ({why}): "
                    "run scripts/build_kenlm.sh")


def _cases(sentences: list[str], alphabet: Alphabet, seed: int) -> list[np.ndarray]:
    """Confident, confused, hinted, truncated and out-of-lexicon emissions, and noise."""
    rng = np.random.default_rng(seed)
    out = [emissions(s, alphabet, confusions={2: ("o", 0.45), 5: ("e", 0.4)}, seed=i)
           for i, s in enumerate(sentences)]
    if alphabet is ALPHABET:
        out += [peaky(s) for s in sentences[:3]]
        out += [peaky("le chat mange", hints={3: ("c", 2e-5)}), peaky("la souri")]
    out += [emissions(sentences[0][:-3], alphabet), emissions("xqzw", alphabet)]
    for _ in range(3):
        logits = rng.normal(0.0, 3.0, (60, alphabet.num_classes)).astype(np.float32)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append((p / p.sum(axis=1, keepdims=True)).astype(np.float32))
    return out


def _same_results(scorer: Path, alphabet: Alphabet, cases: list[np.ndarray], alpha: float,
                  beta: float, beam: int, pruning: Pruning) -> int:
    """Compare every case pass by pass; the number of cases with a result."""
    ours = Decoder(alphabet, scorer, alpha, beta, beam_width=beam, pruning=pruning, rescue=None)
    ref = Decoder(alphabet, scorer, alpha, beta, beam_width=beam, pruning=pruning, rescue=None)
    ref.reference = True
    assert isinstance(ours._passes[0][1], ctc_search.SearchPass)
    assert not isinstance(ref._passes[0][1], ctc_search.SearchPass)
    found = 0
    for i, probs in enumerate(cases):
        a, gap_a = ours._search(probs, *ours._passes[0])
        b, gap_b = ref._search(probs, *ref._passes[0])
        assert (a is None) == (b is None), i
        if a is None:
            continue
        found += 1
        assert a.words == [w for w in b.words if w >= 0], (i, pruning)
        assert a.score == pytest.approx(b.score, rel=1e-9, abs=1e-9), (i, pruning)
        assert a.emittingModelScore == pytest.approx(b.emittingModelScore, abs=1e-9), (i, pruning)
        assert gap_a == pytest.approx(gap_b, abs=1e-9)
    return found


@pytest.mark.parametrize("pruning", [FAST, RESCUE_NARROW, RESCUE, WIDE, PYCTCDECODE_LIKE],
                         ids=["fast", "narrow", "rescue", "wide", "pyctcdecode"])
@pytest.mark.parametrize("beam", [8, 64])
def test_native_search_equals_flashlight(native: None, small_lm: dict, pruning: Pruning,
                                         beam: int) -> None:
    cases = _cases(small_lm["sentences"][:10], ALPHABET, seed=beam)
    assert _same_results(small_lm["scorer"], ALPHABET, cases, 0.93, 1.18, beam, pruning) >= 15


def test_native_search_reads_deepspeech_scorers(native: None) -> None:
    """DeepSpeech 0.9.3's own quantized trie LM package, its vocabulary and weights."""
    info = read_scorer(DATA / "pruned_lm.scorer")
    cases = _cases(["she had your dark suit in greasy wash water all year",
                    "don't ask me to carry an oily rag like that"], EN, seed=1)
    for pruning in (FAST, WIDE):
        assert _same_results(DATA / "pruned_lm.scorer", EN, cases, info.alpha, info.beta, 100,
                             pruning) >= 5
    dec = Decoder(EN, DATA / "pruned_lm.scorer", info.alpha, info.beta, 100)
    assert dec.decode(emissions("she had your dark suit", EN)) == "she had your dark suit"


def test_decoder_falls_back_to_flashlight_and_says_how_to_build(
        native: None, small_lm: dict, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    probs = emissions("le chat mange le fromage", confusions={5: ("o", 0.5)})
    fast = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
    monkeypatch.setenv(ctc_search.ENV, "0")
    ctc_search.load.cache_clear()
    ctc_search._say_why_not.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="pipeline.lm.ctc_search"):
            slow = Decoder(ALPHABET, small_lm["scorer"], 0.93, 1.18, beam_width=32)
        assert not isinstance(slow._passes[0][1], ctc_search.SearchPass)
        assert slow.decode(probs) == fast.decode(probs) == "le chat mange le fromage"
        assert "build_kenlm.sh" in caplog.text and f"{ctc_search.ENV}=0" in caplog.text
    finally:
        monkeypatch.delenv(ctc_search.ENV)
        ctc_search.load.cache_clear()


def test_a_library_built_from_other_source_is_not_used(native: None, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lib = next(d / ctc_search.LIB_NAME for d in native_lib_dirs()
               if (d / ctc_search.LIB_NAME).is_file())
    stale = tmp_path / ctc_search.LIB_NAME
    shutil.copy(lib, stale)
    sha = hashlib.sha256(ctc_search.SOURCE.read_bytes()).hexdigest().encode()
    data = stale.read_bytes()
    assert data.count(sha) == 1  # the stamp scripts/build_ctc_search.sh compiles in
    stale.write_bytes(data.replace(sha, b"0" * len(sha)))
    monkeypatch.setenv(ctc_search.ENV, str(stale))
    ctc_search.load.cache_clear()
    try:
        lib_, why = ctc_search.load()
        assert lib_ is None and "another version of ctc_search.cc" in why
    finally:
        monkeypatch.delenv(ctc_search.ENV)
        ctc_search.load.cache_clear()


def test_an_unreadable_lm_falls_back_with_the_reason(native: None, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "not_a_model.scorer"
    bad.write_bytes(b"not a KenLM model" * 100)
    with caplog.at_level(logging.WARNING, logger="pipeline.lm.ctc_search"):
        assert ctc_search.open_search(bad, ["le"], [[12, 5, 0]], 0, 28) is None
    assert "not_a_model.scorer" in caplog.text and "flashlight-text" in caplog.text
