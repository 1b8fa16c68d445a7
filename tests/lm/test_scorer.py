"""The .scorer byte layout (DeepSpeech 0.9 package), checked field by field and read back with OpenFst."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.lm.scorer import (
    FST_MAGIC,
    build_scorer,
    build_trie,
    parse_const_fst,
    read_scorer,
    serialize_const_fst,
    set_scorer_defaults,
    vocabulary,
)
from tests.lm.helpers import ALPHABET

WORDS = ["chat", "chats", "chien", "le", "la", "l'eau", "<s>", "</s>", "<unk>", "x1", "été"]


def test_trie_is_the_minimized_lexicon() -> None:
    import pywrapfst as fst

    const, n_words = build_trie(WORDS, ALPHABET)
    assert n_words == 6  # specials, "x1" (digit) and "été" (é) are not spellable
    props = const.properties(fst.ACCEPTOR | fst.I_DETERMINISTIC | fst.I_LABEL_SORTED, True)
    assert props == fst.ACCEPTOR | fst.I_DETERMINISTIC | fst.I_LABEL_SORTED
    # Every word path = label index + 1 per char, then the space label + 1.
    space = ALPHABET.space_index + 1
    for word in ["chat", "l'eau"]:
        labels = [i + 1 for i in ALPHABET.encode(word)] + [space]
        state = const.start()
        for lab in labels:
            nxt = [a.nextstate for a in const.arcs(state) if a.ilabel == lab]
            assert len(nxt) == 1
            state = nxt[0]
        assert const.final(state) == fst.Weight.one("tropical")


def test_const_fst_matches_openfst_serialization() -> None:
    import pywrapfst as fst

    const, _ = build_trie(WORDS, ALPHABET)
    ref = const.write_to_string()  # OpenFst's own const writer (unaligned, version 2)
    data, header, used = parse_const_fst(ref)
    assert used == len(ref) and header["version"] == 2 and header["flags"] == 0
    assert serialize_const_fst(data, 0, aligned=False) == ref
    aligned = serialize_const_fst(data, 0, aligned=True)
    back = fst.Fst.read_from_string(aligned)  # OpenFst reads our aligned form (version 1, flags 4)
    assert back.fst_type() == "const" and fst.equal(back, const)


@pytest.mark.parametrize("base", [0, 1, 7, 13, 16, 29])
def test_alignment_is_relative_to_the_absolute_offset(base: int) -> None:
    const, _ = build_trie(WORDS, ALPHABET)
    data, _, _ = parse_const_fst(const.write_to_string())
    blob = serialize_const_fst(data, base, aligned=True)
    _, header, used = parse_const_fst(blob, base)
    assert used == len(blob)
    assert (base + header["states_at"]) % 16 == 0 and (base + header["arcs_at"]) % 16 == 0


def test_scorer_layout(small_lm: dict) -> None:
    import pywrapfst as fst

    scorer: Path = small_lm["scorer"]
    binary: Path = small_lm["binary"]
    raw = scorer.read_bytes()
    lm_size = binary.stat().st_size
    assert raw[:lm_size] == binary.read_bytes()
    assert raw.startswith(b"mmap lm http://kheafield.com/code format version")
    # trailer: "EIRT", version 6, utf8 flag, f64 alpha, f64 beta
    assert raw[lm_size:lm_size + 4] == b"EIRT"
    magic, version, utf8, alpha, beta = struct.unpack_from("<iiBdd", raw, lm_size)
    assert (magic, version, utf8) == (0x54524945, 6, 0)
    assert (alpha, beta) == (0.93, 1.18)
    # FST header
    pos = lm_size + 25
    assert struct.unpack_from("<i", raw, pos)[0] == FST_MAGIC
    assert raw[pos + 4:pos + 4 + 4 + 5] == b"\x05\x00\x00\x00const"
    assert raw[pos + 13:pos + 13 + 4 + 8] == b"\x08\x00\x00\x00standard"
    version, flags = struct.unpack_from("<ii", raw, pos + 25)
    assert (version, flags) == (1, 4)
    info = read_scorer(scorer)
    assert info.lm_size == lm_size and info.fst_offset == pos
    states_at = pos + info.fst_header["states_at"]
    arcs_at = pos + info.fst_header["arcs_at"]
    assert states_at % 16 == 0 and arcs_at % 16 == 0
    assert set(raw[pos + info.fst_header["header_end"]:states_at]) <= {0}
    assert arcs_at + 16 * info.fst_header["narcs"] == len(raw)
    # Sliced out and re-based at offset 0, OpenFst reads the same automaton.
    blob = serialize_const_fst(info.fst, 0, aligned=True)
    back = fst.Fst.read_from_string(blob)
    const, _ = build_trie(small_lm["vocab"], ALPHABET)
    assert fst.equal(back, const)
    # The lexicon read back from the package is the spellable vocabulary.
    assert sorted(vocabulary(info, ALPHABET)) == sorted(
        w for w in small_lm["vocab"] if not ALPHABET.missing(w))


def test_set_defaults_rewrites_only_the_trailer(small_lm: dict, tmp_path: Path) -> None:
    scorer = tmp_path / "s.scorer"
    scorer.write_bytes(small_lm["scorer"].read_bytes())
    before = scorer.read_bytes()
    set_scorer_defaults(scorer, 0.5, 2.25)
    after = scorer.read_bytes()
    info = read_scorer(scorer)
    assert (info.alpha, info.beta) == (0.5, 2.25)
    assert len(before) == len(after)
    diff = [i for i in range(len(before)) if before[i] != after[i]]
    assert diff and min(diff) >= info.lm_size + 9 and max(diff) < info.lm_size + 25


def test_rejects_non_kenlm_input(tmp_path: Path) -> None:
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\n")
    with pytest.raises(ConfigError, match="not a KenLM binary"):
        build_scorer(arpa, ["chat"], ALPHABET, 1.0, 1.0, tmp_path / "x.scorer")
    assert not (tmp_path / "x.scorer").exists()
