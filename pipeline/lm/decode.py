"""CTC decoding: greedy, and lexicon-constrained prefix beam search with the KenLM scorer.

The beam search is flashlight-text's `LexiconDecoder` algorithm (C++, no torch), configured to
behave like DeepSpeech's `ds_ctcdecoder` (reference deepspeech-0.9.md §7.3); for word scorers it runs
in our own restatement of it (`ctc_search`, the same results in about half the time) when that
library is built, else in flashlight-text itself:
- the lexicon is the scorer's own word trie (read back from the `.scorer` package), each word spelled
  with its characters followed by the space label, so output is restricted to in-vocabulary words;
- each completed word adds alpha·ln P_LM(word | history) + beta. flashlight's KenLM wrapper returns
  log10 probabilities, so its LM weight is alpha·ln(10);
- at most `cutoff_top_n` candidate characters per frame, `beam_width` beams;
- the trailing unfinished word is completed (and scored) by one extra frame that emits a space,
  as ds_ctcdecoder scores the last word before ranking.
Without a scorer the beam search is lexicon-free with no LM (a plain CTC prefix beam search).

Speed (docs/language-model.md, benchmarks/decode_speed.py). Before the search, each run of frames
that one class dominates (p >= 0.999: blank runs between characters and in silence, repeated
spike frames) is merged into one frame: CTC's meaning is kept (a blank still separates a repeated
character) and 20-45 % of the frames go. Then two passes:
1. `FAST`: hypotheses within 10 nats of the best; per frame the 6 best characters, and only those
   within 10 nats of the frame's best (the blank and the repeat are always tried).
2. When the fast result explains the audio much worse than the frame-wise best path does (its
   acoustic log-likelihood is more than `rescue_gap` nats per frame lower: the LM had to fight the
   acoustics, the sign of a hypothesis lost to pruning, or of a word outside the lexicon), the
   utterance is decoded again with `RESCUE_NARROW` (hypotheses within 20 nats, 12 characters per
   frame down to 12 nats below the best, at most 16 beams) and, if that result still fits as badly,
   with `RESCUE` (the same on 32 beams); the best-scoring result is kept.
`WIDE` (25 nats, every character, the full beam; no second pass needed) is the slow,
ds_ctcdecoder-like search; `PYCTCDECODE_LIKE` is pyctcdecode's own pruning.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.lm.ctc_search import CtcSearch, SearchPass, open_search
from pipeline.procs import die_with_parent
from pipeline.text.alphabet import Alphabet, is_bytes_mode

LN10 = math.log(10.0)
# Log-probability floor (ds_ctcdecoder adds FLT_MIN before the log).
_FLOOR = np.float32(np.finfo(np.float32).tiny)
_PRUNED = np.float32(-1e9)


@dataclass(frozen=True)
class Pruning:
    """How much of the search space one beam-search pass explores."""

    beam_threshold: float                # keep hypotheses within this many nats of the best
    top_n: int = 40                      # candidate characters per frame (<= cutoff_top_n)
    token_margin: float | None = None    # skip characters this far (nats) below the frame's best
    token_min_logp: float | None = None  # skip characters below this log-probability
    collapse: float | None = 0.999       # merge runs of frames one class dominates (p >= this)
    max_beams: int | None = None         # at most this many beams (None: the beam width)


# ds_ctcdecoder prunes only by the beam; 25 nats and every character reproduced the legacy
# runtimes' transcripts with our scorer on a weak model (20 still did, 15 did not).
WIDE = Pruning(beam_threshold=25.0)
FAST = Pruning(beam_threshold=10.0, top_n=6, token_margin=10.0)
# The second pass for suspicious utterances: nearly ds_ctcdecoder's breadth on a narrow beam; it
# recovers what the fast pass pruned (tests/lm/test_decode_speed.py) and, with it, the legacy
# runtimes' transcripts on a replica of the weak model of tests/export/test_export_legacy.py (there
# 16 beams, a 15-nat threshold or a 10-nat character margin lost words; `transcribe`, which that
# test runs, now searches with WIDE).
RESCUE = Pruning(beam_threshold=20.0, top_n=12, token_margin=12.0, max_beams=32)
# Tried before RESCUE: the same breadth on half the beams, a third cheaper. On the benchmark's real
# outputs on one host it found RESCUE's transcript for every utterance sent to a second pass (on
# another host's, for none of three); an utterance it leaves still fitting worse than RESCUE_GAP
# goes on to RESCUE (so nothing RESCUE finds is lost).
RESCUE_NARROW = dataclasses.replace(RESCUE, max_beams=16)
RESCUES = (RESCUE_NARROW, RESCUE)
# pyctcdecode's own defaults (beam_prune_logp -10, token_min_logp -5), for comparisons.
PYCTCDECODE_LIKE = Pruning(beam_threshold=10.0, token_min_logp=-5.0, collapse=None)
# Nats per (merged) frame. Correct results whose LM fixed a few characters stay below ≈ 0.3 on the
# benchmark's outputs; the fast pass's losses on the weak model of the legacy test were 0.48, 0.68.
RESCUE_GAP = 0.4


def greedy_decode(probs: np.ndarray, alphabet: Alphabet) -> str:
    """Best path: argmax per frame, collapse repeats, drop the blank (last class)."""
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] == 0:
        return ""
    blank = probs.shape[1] - 1
    best = probs.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    ids = [int(i) for i in best[keep] if i != blank]
    return " ".join(alphabet.decode(ids).split())


def collapse_runs(logp: np.ndarray, min_logp: float) -> np.ndarray:
    """Merge each run of consecutive frames dominated by the same class (log p >= `min_logp`) into
    one frame holding the per-class maximum over the run.

    A blank-dominated run stays one blank frame between the characters on either side, so a
    repeated character ("ll") is still two characters; a character-dominated run still emits the
    character once. What is lost is a path that changes class inside the run, which costs more
    than -ln(1 - p) per frame; the other classes' best evidence in the run is kept in the merged
    frame, so a character the model only hints at can still be read there.
    """
    best = logp.argmax(axis=1)
    return _merge_runs(logp, logp[np.arange(len(logp)), best], best, min_logp)[0]


def _merge_runs(em: np.ndarray, top: np.ndarray, best: np.ndarray, min_logp: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """`collapse_runs` of `em`, given each frame's best class and its log probability (`top`);
    also returns the merged frames' best values (a merged frame's best is its run's best)."""
    if len(em) < 2:
        return em, top
    dominated = top >= min_logp
    joined = dominated[1:] & dominated[:-1] & (best[1:] == best[:-1])
    if not joined.any():
        return em, top
    starts = np.flatnonzero(np.concatenate(([True], ~joined)))
    return np.maximum.reduceat(em, starts, axis=0), np.maximum.reduceat(top, starts)


def log_emissions(probs: np.ndarray, pruning: Pruning, space: int | None = None) -> np.ndarray:
    """ln(probs) as contiguous float32, runs merged and skipped characters at -1e9 (the blank is
    never skipped; the frame's best character never by `token_min_logp`)."""
    return _emissions(probs, pruning, space, tail=False)[0]


def _emissions(probs: np.ndarray, pruning: Pruning, space: int | None, tail: bool
               ) -> tuple[np.ndarray, int, float]:
    """(`log_emissions`, plus with `tail` one frame that certainly emits the space; its frame count
    without the tail; the log-likelihood of its frame-wise best path). Each frame's best value is
    found once and carried through the merge, instead of row-wise max reductions (slow on 29
    columns) for the token floor and the best path."""
    em = np.log(np.asarray(probs, dtype=np.float32) + _FLOOR)
    best = em.argmax(axis=1)
    top = em[np.arange(len(em)), best]
    if pruning.collapse is not None:
        em, top = _merge_runs(em, top, best, math.log(pruning.collapse))
    n = len(em)
    out = np.empty((n + 1 if tail else n, em.shape[1]), dtype=np.float32)
    body = out[:n]
    if pruning.token_min_logp is not None or pruning.token_margin is not None:
        floor = np.full(n, -np.inf, dtype=np.float32)
        if pruning.token_min_logp is not None:
            floor = np.maximum(floor, np.minimum(pruning.token_min_logp, top))
        if pruning.token_margin is not None:
            floor = np.maximum(floor, top - pruning.token_margin)
        keep = em >= floor[:, None]
        keep[:, -1] = True
        body.fill(_PRUNED)
        np.copyto(body, em, where=keep)
        if space is not None:
            # A skipped space sorts after the other skipped characters: inside the decoder's
            # top_n it would still cost an LM lookup for every hypothesis ending a word.
            body[~keep[:, space], space] = 2 * _PRUNED
    else:
        np.copyto(body, em)
    if tail:
        out[n] = -1e4
        out[n, space] = 0.0
    # the best value of every frame is kept, so the best path is the sum of the frames' best
    return out, n, float(top.sum())


class Decoder:
    """CTC prefix beam search, lexicon-constrained and LM-scored when `scorer_path` is given.

    `pruning` is the first pass; `rescue` (a pass or several; None: never) the later ones, tried in
    turn while the result fits the acoustics worse than `rescue_gap` nats per frame (module
    docstring)."""

    def __init__(self, alphabet: Alphabet, scorer_path: Path | None, alpha: float, beta: float,
                 beam_width: int, cutoff_top_n: int = 40, pruning: Pruning = FAST,
                 rescue: Pruning | Sequence[Pruning] | None = RESCUES, rescue_gap: float = RESCUE_GAP,
                 model_name: str = "the model", reference: bool = False) -> None:
        from flashlight.lib.text import decoder as fl
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        self.alphabet = alphabet
        self.scorer_path = Path(scorer_path) if scorer_path else None
        self.beam_width = int(beam_width)
        self.cutoff_top_n = int(cutoff_top_n)
        self.pruning = pruning
        # the later passes, tried in turn while the result still fits the acoustics badly
        self.rescue: tuple[Pruning, ...] = (() if rescue is None else (rescue,) if isinstance(rescue, Pruning)
                                            else tuple(rescue))
        self.rescue_gap = float(rescue_gap)
        self.num_classes = alphabet.num_classes
        self.blank = alphabet.blank_index
        self.space = alphabet.space_index
        self._fl = fl
        self.words: list[str] = []
        self._lm: Any = None
        self._trie: Any = None
        self.utf8 = False
        self.rescued = 0  # utterances decoded a second time (for benchmarks and logs)
        self.runs: Counter[Pruning] = Counter()  # searches made with each pass's pruning
        self._reference = reference
        self._native: CtcSearch | None = None
        if self.scorer_path is not None:
            from pipeline.lm.scorer import check_scorer_mode, read_scorer, vocabulary

            info = read_scorer(self.scorer_path)
            self.utf8 = is_bytes_mode(alphabet)
            check_scorer_mode(info, model_utf8=self.utf8, model=model_name)
            self.words = list(vocabulary(info, alphabet))
            self._word_dict = Dictionary([*self.words, "<unk>"])
            self._unk = self._word_dict.get_index("<unk>")
            # KenLM mmaps the package: the trailer after end-of-search is ignored, as in DeepSpeech.
            self._lm = KenLM(str(self.scorer_path), self._word_dict)
            if self.utf8:
                # A "word" is one character, complete after its last byte with no separator: the
                # lexicon decoder would read a repeated frame after it as silence (so "he" came out
                # "hehe"); bytes go through the lexicon-free search and `_Utf8Characters` instead.
                self._spellings = {tuple(alphabet.encode(w)): i for i, w in enumerate(self.words)}
            else:
                self._native = open_search(self.scorer_path, self.words, self._lexicon(),
                                           self.space, self.blank)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._passes: list[tuple[Pruning, Any]] = []
        self.set_weights(self.alpha, self.beta)

    def _make(self, pruning: Pruning, alpha: float, beta: float) -> Any:
        fl = self._fl
        top_n = min(pruning.top_n, self.cutoff_top_n, self.num_classes)
        beams = min(self.beam_width, pruning.max_beams or self.beam_width)
        if self._lm is None:
            opts = fl.LexiconFreeDecoderOptions(
                beam_size=beams, beam_size_token=top_n,
                beam_threshold=pruning.beam_threshold, lm_weight=0.0, sil_score=0.0, log_add=True,
                criterion_type=fl.CriterionType.CTC)
            return fl.LexiconFreeDecoder(opts, fl.ZeroLM(), self.space, self.blank, [])
        if self.utf8:
            opts = fl.LexiconFreeDecoderOptions(
                beam_size=beams, beam_size_token=top_n, beam_threshold=pruning.beam_threshold,
                lm_weight=1.0, sil_score=0.0, log_add=True, criterion_type=fl.CriterionType.CTC)
            lm = _utf8_characters(fl, self._lm, self._spellings, alpha * LN10, beta)
            # the decoder holds the LM by a C++ pointer: keep the Python object alive with it
            return _KeepAlive(fl.LexiconFreeDecoder(opts, lm, self.space, self.blank, []), lm)
        if self._native is not None and not self._reference:
            return SearchPass(self._native, beams, top_n, pruning.beam_threshold, alpha * LN10, beta)
        opts = fl.LexiconDecoderOptions(
            beam_size=beams, beam_size_token=top_n,
            beam_threshold=pruning.beam_threshold, lm_weight=alpha * LN10, word_score=beta,
            unk_score=-math.inf, sil_score=0.0, log_add=True, criterion_type=fl.CriterionType.CTC)
        return fl.LexiconDecoder(opts, self._flashlight_trie(), self._lm, self.space, self.blank,
                                 self._unk, [], False)

    @property
    def reference(self) -> bool:
        """True: search with flashlight-text and read the best result from its list of all final
        hypotheses (the reference the native search and the faster readout are checked against, in
        tests and benchmarks/decode_speed.py)."""
        return self._reference

    @reference.setter
    def reference(self, value: bool) -> None:
        self._reference = bool(value)
        self.set_weights(self.alpha, self.beta)

    def _lexicon(self) -> list[list[int]]:
        """Each word spelled with its characters and the space that completes it."""
        return [[*self.alphabet.encode(word), self.space] for word in self.words]

    def _flashlight_trie(self) -> Any:
        if self._trie is None:
            fl = self._fl
            start = self._lm.start(False)
            self._trie = fl.Trie(self.num_classes, self.space)
            for idx, spelling in enumerate(self._lexicon()):
                _, score = self._lm.score(start, idx)
                self._trie.insert(spelling, idx, score)
            self._trie.smear(fl.SmearingMode.MAX)
        return self._trie

    def set_weights(self, alpha: float, beta: float) -> None:
        """Change alpha/beta without reloading the LM or the lexicon (used by lm_optimize)."""
        self.alpha, self.beta = float(alpha), float(beta)
        passes = [self.pruning]
        if self._lm is not None:
            passes += self.rescue
        self._passes = [(p, self._make(p, self.alpha, self.beta)) for p in passes]

    def _search(self, probs: np.ndarray, pruning: Pruning, decoder: Any) -> tuple[Any, float]:
        """Best result of one pass and its acoustic gap per frame to the frame-wise best path."""
        # With the LM, one more frame that certainly emits a space completes and LM-scores the last
        # word.
        em, n, best_path = _emissions(probs, pruning, self.space,
                                      tail=self._lm is not None and not self.utf8)
        if isinstance(decoder, SearchPass):
            found = decoder(em)
            return (found, (best_path - found.emittingModelScore) / n) if found is not None \
                else (None, 0.0)
        # Only the best hypothesis: `decoder.decode()` returns every final beam as a Python object
        # (with its token path), which costs about as much as the search itself at beam 100. The
        # best is the same hypothesis as decode()[0] (the final beams are sorted by score, ties go
        # to the first) when it ends at the last frame; flashlight walks a best hypothesis that
        # ends inside a word back to its last complete word, so then the full list is read.
        if isinstance(decoder, _KeepAlive):
            results = decoder.decoder.decode(em.ctypes.data, em.shape[0], em.shape[1])
            return (results[0], (best_path - results[0].emittingModelScore) / n) if results \
                else (None, 0.0)
        if self.reference or self._lm is None:  # lexicon-free: ties are ordered differently
            results = decoder.decode(em.ctypes.data, em.shape[0], em.shape[1])  # best first
            return (results[0], (best_path - results[0].emittingModelScore) / n) if results \
                else (None, 0.0)
        decoder.decode_begin()
        decoder.decode_step(em.ctypes.data, em.shape[0], em.shape[1])
        decoder.decode_end()
        best = decoder.get_best_hypothesis()
        if len(best.tokens) != em.shape[0] + 2:  # + the start and end-of-sentence positions
            results = decoder.get_all_final_hypothesis()  # best first
            if not results:
                return None, 0.0
            best = results[0]
        return best, (best_path - best.emittingModelScore) / n

    def decode(self, probs: np.ndarray) -> str:
        """Best transcript of one utterance; `probs` [T, C] softmax outputs, blank last."""
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[0] == 0:
            return ""
        if probs.shape[1] != self.num_classes:
            raise ValueError(f"probabilities have {probs.shape[1]} classes, the alphabet needs "
                             f"{self.num_classes} (labels + blank)")
        best, gap = self._search(probs, *self._passes[0])
        self.runs[self._passes[0][0]] += 1
        if len(self._passes) > 1 and gap > self.rescue_gap:
            self.rescued += 1
        for pruning, decoder in self._passes[1:]:
            if gap <= self.rescue_gap:
                break
            again, gap = self._search(probs, pruning, decoder)
            self.runs[pruning] += 1
            if best is None or (again is not None and again.score > best.score):
                best = again
        if best is None:
            return ""
        if self._lm is not None and not self.utf8:
            return " ".join(self.words[w] for w in best.words if 0 <= w < len(self.words))
        ids: list[int] = []
        prev = -1
        for t in best.tokens:
            if t != prev and t != self.blank and t >= 0:
                ids.append(t)
            prev = t
        return " ".join(self.alphabet.decode(ids).split())

    def decode_batch(self, list_of_probs: Sequence[np.ndarray], workers: int = 0) -> list[str]:
        """Decode many utterances; `workers` processes (0 = one per CPU, 1 = in this process)."""
        n = len(list_of_probs)
        workers = workers or (os.cpu_count() or 1)
        workers = max(1, min(workers, n))
        if workers == 1:
            return [self.decode(p) for p in list_of_probs]
        method = start_method()
        ctx = multiprocessing.get_context(method)
        # Longest first so the last worker to finish is not stuck with a long utterance.
        order = sorted(range(n), key=lambda i: -len(list_of_probs[i]))
        global _WORKER
        if method == "fork":  # workers inherit this decoder (LM and lexicon already loaded)
            _WORKER = self
            pool = ctx.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),))
        else:
            args = (os.getpid(), self.alphabet, self.scorer_path, self.alpha, self.beta,
                    self.beam_width, self.cutoff_top_n, self.pruning, self.rescue, self.rescue_gap)
            pool = ctx.Pool(workers, initializer=_init_worker, initargs=args)
        try:
            with pool:
                texts = pool.map(_decode_in_worker, [list_of_probs[i] for i in order], chunksize=1)
        finally:
            _WORKER = None
        out = [""] * n
        for i, text in zip(order, texts, strict=True):
            out[i] = text
        return out


@dataclass(frozen=True)
class _KeepAlive:
    decoder: Any
    lm: Any


# A byte sequence that is not (the start of) a character of the scorer's vocabulary.
_NOT_A_CHARACTER = -1e9


def _utf8_characters(fl: Any, kenlm: Any, spellings: dict[tuple[int, ...], int], weight: float,
                     bonus: float) -> Any:
    """DeepSpeech's UTF-8 scoring as a flashlight LM over byte labels: bytes gather into a character;
    when they complete one of the scorer's characters, KenLM scores it (`weight` x log10 p, plus
    `bonus`, DeepSpeech's beta, per character); bytes that cannot become one of its characters (a
    space included, when the vocabulary has none, as in DeepSpeech's bytes scorers) are ruled out,
    as DeepSpeech's dictionary does."""
    prefixes = {sp[:k] for sp in spellings for k in range(1, len(sp))}

    class Utf8Characters(fl.LM):
        def __init__(self) -> None:
            fl.LM.__init__(self)
            # state -> (KenLM state, pending bytes, score of reaching it)
            self.states: dict[Any, tuple[Any, tuple[int, ...], float]] = {}

        def start(self, start_with_nothing: bool) -> Any:
            state = fl.LMState()
            self.states[state] = (kenlm.start(start_with_nothing), (), 0.0)
            return state

        def score(self, state: Any, token: int) -> tuple[Any, float]:
            out = state.child(token)
            known = self.states.get(out)
            if known is None:
                inner, pending, _ = self.states[state]
                spelling = (*pending, token)
                word = spellings.get(spelling)
                if word is not None:
                    inner, lm = kenlm.score(inner, word)
                    known = (inner, (), weight * lm + bonus)
                elif spelling in prefixes:
                    known = (inner, spelling, 0.0)
                else:
                    known = (inner, (), _NOT_A_CHARACTER)
                self.states[out] = known
            return out, known[2]

        def finish(self, state: Any) -> tuple[Any, float]:
            inner, pending, _ = self.states[state]
            if pending:
                return state, _NOT_A_CHARACTER
            _, lm = kenlm.finish(inner)
            return state, weight * lm

    return Utf8Characters()


def start_method() -> str:
    # fork is fast, but not safe once TensorFlow's threads exist in this process.
    if sys.platform.startswith("linux") and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


_WORKER: Decoder | None = None


def _init_worker(parent: int, alphabet: Alphabet, scorer_path: Path | None, alpha: float, beta: float,
                 beam_width: int, cutoff_top_n: int, pruning: Pruning, rescue: tuple[Pruning, ...],
                 rescue_gap: float) -> None:
    global _WORKER
    die_with_parent(parent)
    _WORKER = Decoder(alphabet, scorer_path, alpha, beta, beam_width, cutoff_top_n,
                      pruning, rescue, rescue_gap)


def _decode_in_worker(probs: np.ndarray) -> str:
    assert _WORKER is not None
    return _WORKER.decode(probs)
