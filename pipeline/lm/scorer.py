"""The DeepSpeech 0.9 `.scorer` package: KenLM binary + trailer + OpenFst ConstFst lexicon trie.

Layout (reference deepspeech-0.9.md §7.2, platform-notes.md "`.scorer`"), all little-endian:

    KenLM binary (built with `build_binary -v`, so the file ends at KenLM's end-of-search offset)
    int32 magic 0x54524945 ("EIRT" on disk), int32 version 6, uint8 utf8 flag, f64 alpha, f64 beta
    ConstFst<StdArc, uint32> written with align=true (OpenFst 1.6.7 reader):
        header: int32 2125659606, str "const", str "standard" (int32 length + bytes), int32 version 1,
                int32 flags 4 (kIsAligned), uint64 properties, int64 start, int64 nstates, int64 narcs
        zero padding to a multiple of 16 of the ABSOLUTE file offset (the runtime reads the FST from
        the scorer file stream, and OpenFst aligns on `tellg()`)
        states: f32 final weight, uint32 first arc, uint32 narcs, uint32 n_in_eps, uint32 n_out_eps
        padding to 16 again; arcs: int32 ilabel, int32 olabel, f32 weight, int32 nextstate

The trie is built, determinized and minimized with OpenFst (`pywrapfst` from `pynini`); its
unaligned const serialization (version 2, flags 0) is then re-emitted in the aligned form above,
which `pywrapfst` cannot write itself (alignment is a global OpenFst flag).
"""

from __future__ import annotations

import logging
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, MissingInputError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_write
from pipeline.text.alphabet import Alphabet

log = logging.getLogger(__name__)

TRIE_MAGIC = 0x54524945
SCORER_VERSION = 6
FST_MAGIC = 2125659606
FST_ALIGN = 16
FST_FLAG_ALIGNED = 4
CONST_FST_ALIGNED_VERSION = 1
KENLM_MAGIC_PREFIX = b"mmap lm http://kheafield.com/code format version"
SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>"})
_TRAILER = struct.Struct("<iiBdd")
_STATE = struct.Struct("<fIIII")
_ARC = struct.Struct("<iifi")
_INF = float("inf")


# ---------------------------------------------------------------------------------------------
# Trie
# ---------------------------------------------------------------------------------------------
def word_labels(word: str, alphabet: Alphabet, utf8: bool = False) -> list[int] | None:
    """FST labels of `word` (label index + 1 per codepoint, then the space label + 1), or None when
    a character is not in the alphabet. In UTF-8 mode: one label per byte (label = byte), no space."""
    if utf8:
        return list(word.encode("utf-8"))
    if any(ch not in alphabet for ch in word):
        return None
    if alphabet.space_index < 0:
        raise ConfigError("the alphabet has no space label; a word-level scorer needs one "
                          "(add a line holding a single space to alphabet.txt)")
    return [i + 1 for i in alphabet.encode(word)] + [alphabet.space_index + 1]


def build_trie(vocab: Iterable[str], alphabet: Alphabet, utf8: bool = False) -> tuple[Any, int]:
    """The minimized lexicon acceptor as a pywrapfst ConstFst, and the number of words in it."""
    import pywrapfst as fst

    trie = fst.VectorFst()
    one = fst.Weight.one(trie.weight_type())
    start = trie.add_state()
    trie.set_start(start)
    children: dict[tuple[int, int], int] = {}
    n_words = 0
    for word in vocab:
        if not word or word in SPECIAL_WORDS:
            continue
        labels = word_labels(word, alphabet, utf8)
        if labels is None:
            continue
        state = start
        for lab in labels:
            nxt = children.get((state, lab))
            if nxt is None:
                nxt = trie.add_state()
                trie.add_arc(state, fst.Arc(lab, lab, one, nxt))
                children[(state, lab)] = nxt
            state = nxt
        if trie.final(state) != one:
            trie.set_final(state, one)
            n_words += 1
    # The same operations as generate_scorer_package; a prefix trie is already epsilon-free and
    # deterministic, so minimize() is the one that shrinks it (shared suffixes).
    trie.rmepsilon()
    det = fst.determinize(trie)
    det.minimize()
    det.arcsort("ilabel")  # the runtime's SortedMatcher needs input-sorted arcs
    return fst.convert(det, "const"), n_words


# ---------------------------------------------------------------------------------------------
# ConstFst serialization
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConstFstData:
    """The records of a ConstFst<StdArc, uint32> (what both serializations share)."""

    properties: int
    start: int
    states: list[tuple[float, int, int, int, int]]
    arcs: list[tuple[int, int, float, int]]


def _pad(offset: int) -> int:
    return (-offset) % FST_ALIGN


def _read_str(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<i", buf, pos)
    return buf[pos + 4:pos + 4 + n].decode("ascii"), pos + 4 + n


def parse_const_fst(buf: bytes, base_offset: int = 0) -> tuple[ConstFstData, dict[str, Any], int]:
    """Parse a ConstFst (aligned or not). `base_offset` = absolute file offset of `buf[0]`, which
    decides the alignment padding. Returns the records, the header fields and the bytes consumed."""
    (magic,) = struct.unpack_from("<i", buf, 0)
    if magic != FST_MAGIC:
        raise ValueError(f"bad FST magic {magic}")
    fst_type, pos = _read_str(buf, 4)
    arc_type, pos = _read_str(buf, pos)
    version, flags, props, start, nstates, narcs = struct.unpack_from("<iiQqqq", buf, pos)
    pos += 4 + 4 + 8 + 8 + 8 + 8
    header = {"fst_type": fst_type, "arc_type": arc_type, "version": version, "flags": flags,
              "properties": props, "start": start, "nstates": nstates, "narcs": narcs,
              "header_end": pos}
    if flags & ~FST_FLAG_ALIGNED:
        raise ValueError(f"unsupported FST flags {flags} (symbol tables are not expected)")
    aligned = bool(flags & FST_FLAG_ALIGNED)
    if aligned:
        pos += _pad(base_offset + pos)
    header["states_at"] = pos
    states = [_STATE.unpack_from(buf, pos + i * _STATE.size) for i in range(nstates)]
    pos += nstates * _STATE.size
    if aligned:
        pos += _pad(base_offset + pos)
    header["arcs_at"] = pos
    arcs = [_ARC.unpack_from(buf, pos + i * _ARC.size) for i in range(narcs)]
    pos += narcs * _ARC.size
    return ConstFstData(props, start, states, arcs), header, pos


def serialize_const_fst(data: ConstFstData, base_offset: int, aligned: bool = True) -> bytes:
    """ConstFst bytes as OpenFst writes them; aligned pads relative to `base_offset + position`."""
    out = bytearray(struct.pack("<i", FST_MAGIC))
    for s in ("const", "standard"):
        out += struct.pack("<i", len(s)) + s.encode("ascii")
    version = CONST_FST_ALIGNED_VERSION if aligned else 2
    flags = FST_FLAG_ALIGNED if aligned else 0
    out += struct.pack("<iiQqqq", version, flags, data.properties, data.start, len(data.states),
                       len(data.arcs))
    if aligned:
        out += b"\0" * _pad(base_offset + len(out))
    for st in data.states:
        out += _STATE.pack(*st)
    if aligned:
        out += b"\0" * _pad(base_offset + len(out))
    for arc in data.arcs:
        out += _ARC.pack(*arc)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Package
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScorerInfo:
    path: Path
    lm_size: int           # bytes of the KenLM binary = offset of the trailer
    alpha: float
    beta: float
    utf8: bool
    fst_offset: int
    fst_header: dict[str, Any]
    fst: ConstFstData


def _check_kenlm_binary(lm_binary: Path) -> int:
    if not lm_binary.is_file():
        raise MissingInputError(f"KenLM binary {lm_binary} does not exist; run the lm stage")
    with open(lm_binary, "rb") as fh:
        head = fh.read(len(KENLM_MAGIC_PREFIX))
    if head != KENLM_MAGIC_PREFIX:
        raise ConfigError(f"{lm_binary} is not a KenLM binary (build it with build_binary, not an ARPA)")
    return lm_binary.stat().st_size


def build_scorer(lm_binary: Path, vocab: Iterable[str], alphabet: Alphabet, alpha: float,
                 beta: float, out: Path, utf8: bool = False) -> ScorerInfo:
    """Write `out` = KenLM binary + trailer + aligned ConstFst trie of `vocab`.

    `lm_binary` must have been built with `build_binary -v` (no vocabulary strings): the runtime
    reads the trailer at KenLM's end-of-search offset, which is then the end of the file.
    """
    lm_binary, out = Path(lm_binary), Path(out)
    lm_size = _check_kenlm_binary(lm_binary)
    const, n_words = build_trie(vocab, alphabet, utf8)
    if n_words == 0:
        raise ConfigError("no vocabulary word can be spelled with the alphabet; the scorer would be "
                          "empty (check models/alphabet.txt against the LM text)")
    data, _, _ = parse_const_fst(const.write_to_string())
    trailer = _TRAILER.pack(TRIE_MAGIC, SCORER_VERSION, int(utf8), float(alpha), float(beta))
    fst_offset = lm_size + len(trailer)
    fst_bytes = serialize_const_fst(data, fst_offset, aligned=True)
    with open(lm_binary, "rb") as fin, atomic_write(out, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        fout.write(trailer)
        crashpoint("lm.scorer_write")  # LM and trailer in the temp file, trie not yet
        fout.write(fst_bytes)
    log.info("scorer %s: %d words, %d FST states, %d arcs, alpha %.4f beta %.4f", out, n_words,
             len(data.states), len(data.arcs), alpha, beta)
    return read_scorer(out, lm_size)


def find_trailer(path: Path) -> int:
    """Offset of the scorer trailer. The KenLM part is written with `-v`, so the trailer is the
    first occurrence of magic+version that is followed by a valid FST header reaching end-of-file."""
    raw = Path(path).read_bytes()
    needle = struct.pack("<ii", TRIE_MAGIC, SCORER_VERSION)
    pos = raw.find(needle)
    while pos >= 0:
        try:
            _, _, used = parse_const_fst(raw[pos + _TRAILER.size:], pos + _TRAILER.size)
            if pos + _TRAILER.size + used == len(raw):
                return pos
        except (ValueError, struct.error, UnicodeDecodeError):
            pass
        pos = raw.find(needle, pos + 1)
    raise ConfigError(f"{path} is not a DeepSpeech scorer package (no 'TRIE' v6 trailer found); "
                      f"rebuild it with the lm stage")


def read_scorer(path: Path, lm_size: int | None = None) -> ScorerInfo:
    """Parse and validate a scorer package."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"scorer {path} does not exist; run the lm stage")
    if lm_size is None:
        lm_size = find_trailer(path)
    raw = path.read_bytes()
    if not raw.startswith(KENLM_MAGIC_PREFIX):
        raise ConfigError(f"{path} does not start with a KenLM binary")
    magic, version, utf8, alpha, beta = _TRAILER.unpack_from(raw, lm_size)
    if magic != TRIE_MAGIC or version != SCORER_VERSION:
        raise ConfigError(f"{path}: bad scorer trailer (magic {magic:#x}, version {version})")
    fst_offset = lm_size + _TRAILER.size
    data, header, used = parse_const_fst(raw[fst_offset:], fst_offset)
    if fst_offset + used != len(raw):
        raise ConfigError(f"{path}: {len(raw) - fst_offset - used} unexpected bytes after the FST")
    return ScorerInfo(path, lm_size, alpha, beta, bool(utf8), fst_offset, header, data)


def check_scorer_mode(info: ScorerInfo, model_utf8: bool, model: str | Path = "the model") -> None:
    """One-line ConfigError when the scorer's mode (UTF-8 bytes or alphabet) is not the model's."""
    if info.utf8 == model_utf8:
        return
    mode = {True: "a UTF-8 (bytes output mode)", False: "an alphabet-mode"}
    raise ConfigError(f"scorer {info.path} is {mode[info.utf8]} scorer but model {model} is "
                      f"{mode[model_utf8]} model: use {mode[model_utf8]} scorer with this model")


def set_scorer_defaults(path: Path, alpha: float, beta: float) -> None:
    """Rewrite the default alpha/beta of a scorer package in place (atomically)."""
    info = read_scorer(path)
    raw = bytearray(Path(path).read_bytes())
    _TRAILER.pack_into(raw, info.lm_size, TRIE_MAGIC, SCORER_VERSION, int(info.utf8), float(alpha),
                       float(beta))
    with atomic_write(path, "wb") as fh:
        fh.write(bytes(raw))


def vocabulary(info: ScorerInfo, alphabet: Alphabet) -> Iterator[str]:
    """Every word of the scorer's trie (the lexicon of the decoder), in label order."""
    st, arcs = info.fst.states, info.fst.arcs
    space = alphabet.space_index + 1

    def walk(state: int, prefix: list[int]) -> Iterator[list[int]]:
        final_w, first, narcs, _, _ = st[state]
        if final_w != _INF:
            yield prefix
        for ilabel, _, _, nxt in arcs[first:first + narcs]:
            prefix.append(ilabel)
            yield from walk(nxt, prefix)
            prefix.pop()

    for labels in walk(info.fst.start, []):
        if info.utf8:
            yield bytes(labels).decode("utf-8", "replace")
        else:
            if labels and labels[-1] == space:
                labels = labels[:-1]
            yield alphabet.decode([lab - 1 for lab in labels])
