"""The native lexicon beam search (`ctc_search.cc`) through ctypes.

`pipeline.lm.decode.Decoder` uses it for scorers with a word vocabulary: it is flashlight-text's
`LexiconDecoder` restated with flat data (same candidates, beam, merging and scores; see the
source's header), about twice as fast. `scripts/build_kenlm.sh` (`make kenlm`; the Docker image's
KenLM stage) compiles it with KenLM's query code into `libds_ctc_search.so`. When that library is
missing or was built from another version of the source, the decoder falls back to flashlight-text
(same transcripts, slower) and says so once.

API boundary: emissions cross as a C-contiguous float32 [T, N] array of log probabilities (blank
last, pruned characters at <= -1e8); words as indices into the scorer's vocabulary order.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.tools import load_stamped_library

log = logging.getLogger(__name__)

LIB_NAME = "libds_ctc_search.so"
SOURCE = Path(__file__).with_name("ctc_search.cc")
# Set to a library path to use that file, or to 0 to use flashlight-text.
ENV = "DS_PIPELINE_CTC_SEARCH"
_MAX_WORDS = 4096
_ERRORS = {-2: "the utterance or its alphabet is over the native search's limits",
           -3: "out of memory or a KenLM error"}


class Hypothesis(NamedTuple):
    """The best result of one search (field names as flashlight-text's DecodeResult)."""

    score: float
    emittingModelScore: float  # flashlight's name: the decoder reads both alike
    words: list[int]


@functools.cache
def load() -> tuple[ctypes.CDLL | None, str]:
    """(the library, "") or (None, why not)."""
    lib, why = load_stamped_library(LIB_NAME, SOURCE, ENV, "dsctc_source_sha")
    if lib is None:
        return None, why
    c = ctypes
    lib.dsctc_new.restype = c.c_void_p
    lib.dsctc_new.argtypes = [c.c_char_p, c.c_int, c.POINTER(c.c_char_p), c.c_void_p, c.c_void_p,
                              c.c_int, c.c_int, c.c_char_p, c.c_int]
    lib.dsctc_free.argtypes = [c.c_void_p]
    lib.dsctc_decode.restype = c.c_int
    lib.dsctc_decode.argtypes = [c.c_void_p, c.c_void_p, c.c_int, c.c_int, c.c_int, c.c_int,
                                 c.c_double, c.c_double, c.c_double, c.c_void_p, c.c_int,
                                 c.POINTER(c.c_double), c.POINTER(c.c_double)]
    return lib, ""


@functools.cache
def _say_why_not(why: str) -> None:
    log.warning("native beam search unavailable (%s): decoding with flashlight-text, the same "
                "transcripts about 2x slower; build it with scripts/build_kenlm.sh (make kenlm)", why)


class CtcSearch:
    """The lexicon trie and the KenLM model of one scorer, in native memory."""

    def __init__(self, lib: ctypes.CDLL, lm_path: Path, words: Sequence[str],
                 spellings: Sequence[Sequence[int]], space: int, blank: int) -> None:
        self._lib = lib
        encoded = (ctypes.c_char_p * len(words))(*[w.encode("utf-8") for w in words])
        offsets = np.zeros(len(spellings) + 1, dtype=np.int32)
        np.cumsum([len(s) for s in spellings], out=offsets[1:])
        tokens = np.fromiter((t for s in spellings for t in s), dtype=np.int32, count=int(offsets[-1]))
        err = ctypes.create_string_buffer(1024)
        self._handle = lib.dsctc_new(str(lm_path).encode(), len(words), encoded, tokens.ctypes.data,
                                     offsets.ctypes.data, space, blank, err, len(err))
        if not self._handle:
            raise RuntimeError(f"{lm_path}: {err.value.decode('utf-8', 'replace')}")
        self._words = np.empty(_MAX_WORDS, dtype=np.int32)
        self._score, self._am = ctypes.c_double(), ctypes.c_double()

    def search(self, em: np.ndarray, beams: int, top_n: int, threshold: float, lm_weight: float,
               word_score: float) -> Hypothesis | None:
        """The best hypothesis for `em` (see the module docstring), None when none survives."""
        assert em.dtype == np.float32 and em.flags.c_contiguous
        n = self._lib.dsctc_decode(self._handle, em.ctypes.data, em.shape[0], em.shape[1], beams,
                                   top_n, threshold, lm_weight, word_score, self._words.ctypes.data,
                                   len(self._words), ctypes.byref(self._score), ctypes.byref(self._am))
        if n == -1:
            return None
        if n < 0:
            raise RuntimeError(f"native beam search failed: {_ERRORS.get(n, n)}")
        if n > len(self._words):
            self._words = np.empty(n, dtype=np.int32)
            return self.search(em, beams, top_n, threshold, lm_weight, word_score)
        return Hypothesis(self._score.value, self._am.value, self._words[:n].tolist())

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self._lib.dsctc_free(self._handle)
            self._handle = None


@dataclass(frozen=True)
class SearchPass:
    """One pass's settings bound to a CtcSearch (what `Decoder` keeps per pass)."""

    search: CtcSearch
    beams: int
    top_n: int
    threshold: float
    lm_weight: float
    word_score: float

    def __call__(self, em: np.ndarray) -> Hypothesis | None:
        return self.search.search(em, self.beams, self.top_n, self.threshold, self.lm_weight,
                                  self.word_score)


def open_search(lm_path: Path, words: Sequence[str], spellings: Sequence[Sequence[int]],
                space: int, blank: int) -> CtcSearch | None:
    """A CtcSearch, or None (logged) when the library is not available or cannot read the LM (a
    model of an order over 6, say: then flashlight-text's KenLM is asked)."""
    lib, why = load()
    if lib is None:
        _say_why_not(why)
        return None
    try:
        return CtcSearch(lib, lm_path, words, spellings, space, blank)
    except RuntimeError as e:
        _say_why_not(str(e))
        return None
