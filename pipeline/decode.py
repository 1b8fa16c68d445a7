"""CTC decoding: greedy, and lexicon-constrained prefix beam search with the KenLM scorer.

The beam search is flashlight-text's native `LexiconDecoder` (C++, no torch), configured to behave
like DeepSpeech's `ds_ctcdecoder` (reference deepspeech-0.9.md §7.3):
- the lexicon is the scorer's own word trie (read back from the `.scorer` package), each word spelled
  with its characters followed by the space label, so output is restricted to in-vocabulary words;
- each completed word adds alpha·ln P_LM(word | history) + beta. flashlight's KenLM wrapper returns
  log10 probabilities, so its LM weight is alpha·ln(10);
- `cutoff_top_n` candidate characters per step (flashlight's `beam_size_token`), `beam_width` beams;
  optional pyctcdecode-style pruning (`beam_threshold`, `token_min_logp`; FAST_* presets);
- the trailing unfinished word is completed (and scored) by one extra frame that emits a space,
  as ds_ctcdecoder scores the last word before ranking.
Without a scorer the beam search is lexicon-free with no LM (a plain CTC prefix beam search).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.text.alphabet import Alphabet

LN10 = math.log(10.0)
# Log-probability floor (ds_ctcdecoder adds FLT_MIN before the log).
_FLOOR = np.float32(np.finfo(np.float32).tiny)
# Pruning. ds_ctcdecoder has none beyond the beam: the default keeps hypotheses within 25 (ln) of
# the best and expands every character (token_min_logp None), which reproduced the legacy runtimes'
# transcripts with our scorer, also on a weak model. FAST_* are pyctcdecode's own defaults
# (beam_prune_logp -10, token_min_logp -5): much faster on peaky outputs, same WER on confident
# models, but they lose words a weak model only hints at (docs/language-model.md).
BEAM_THRESHOLD = 25.0
TOKEN_MIN_LOGP: float | None = None
FAST_BEAM_THRESHOLD = 10.0
FAST_TOKEN_MIN_LOGP = -5.0
_PRUNED = np.float32(-1e9)


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


def _log_emissions(probs: np.ndarray, token_min_logp: float | None) -> np.ndarray:
    em = np.log(np.asarray(probs, dtype=np.float32) + _FLOOR).astype(np.float32)
    if token_min_logp is None:
        return em
    keep = em >= token_min_logp
    keep[np.arange(len(em)), em.argmax(axis=1)] = True
    return np.where(keep, em, _PRUNED).astype(np.float32)


class Decoder:
    """CTC prefix beam search, lexicon-constrained and LM-scored when `scorer_path` is given."""

    def __init__(self, alphabet: Alphabet, scorer_path: Path | None, alpha: float, beta: float,
                 beam_width: int, cutoff_top_n: int = 40, beam_threshold: float = BEAM_THRESHOLD,
                 token_min_logp: float | None = TOKEN_MIN_LOGP) -> None:
        from flashlight.lib.text import decoder as fl
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        self.alphabet = alphabet
        self.scorer_path = Path(scorer_path) if scorer_path else None
        self.beam_width = int(beam_width)
        self.cutoff_top_n = int(cutoff_top_n)
        self.beam_threshold = float(beam_threshold)
        self.token_min_logp = None if token_min_logp is None else float(token_min_logp)
        self.num_classes = alphabet.num_classes
        self.blank = alphabet.blank_index
        self.space = alphabet.space_index
        self._fl = fl
        self.words: list[str] = []
        self._lm: Any = None
        self._trie: Any = None
        if self.scorer_path is not None:
            from pipeline.scorer import read_scorer, vocabulary

            info = read_scorer(self.scorer_path)
            if info.utf8:
                raise ValueError(f"{self.scorer_path} is a UTF-8 (bytes) mode scorer; this decoder "
                                 f"needs an alphabet-mode scorer")
            self.words = list(vocabulary(info, alphabet))
            self._word_dict = Dictionary([*self.words, "<unk>"])
            self._unk = self._word_dict.get_index("<unk>")
            # KenLM mmaps the package: the trailer after end-of-search is ignored, as in DeepSpeech.
            self._lm = KenLM(str(self.scorer_path), self._word_dict)
            start = self._lm.start(False)
            self._trie = fl.Trie(self.num_classes, self.space)
            for idx, word in enumerate(self.words):
                spelling = [*alphabet.encode(word), self.space]
                _, score = self._lm.score(start, idx)
                self._trie.insert(spelling, idx, score)
            self._trie.smear(fl.SmearingMode.MAX)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._decoder = self._make(self.alpha, self.beta)

    def _make(self, alpha: float, beta: float) -> Any:
        fl = self._fl
        if self._lm is None:
            opts = fl.LexiconFreeDecoderOptions(
                beam_size=self.beam_width, beam_size_token=min(self.cutoff_top_n, self.num_classes),
                beam_threshold=self.beam_threshold, lm_weight=0.0, sil_score=0.0, log_add=True,
                criterion_type=fl.CriterionType.CTC)
            return fl.LexiconFreeDecoder(opts, fl.ZeroLM(), self.space, self.blank, [])
        opts = fl.LexiconDecoderOptions(
            beam_size=self.beam_width, beam_size_token=min(self.cutoff_top_n, self.num_classes),
            beam_threshold=self.beam_threshold, lm_weight=alpha * LN10, word_score=beta,
            unk_score=-math.inf, sil_score=0.0, log_add=True, criterion_type=fl.CriterionType.CTC)
        return fl.LexiconDecoder(opts, self._trie, self._lm, self.space, self.blank, self._unk, [],
                                 False)

    def set_weights(self, alpha: float, beta: float) -> None:
        """Change alpha/beta without reloading the LM or the lexicon (used by lm_optimize)."""
        self.alpha, self.beta = float(alpha), float(beta)
        self._decoder = self._make(self.alpha, self.beta)

    def decode(self, probs: np.ndarray) -> str:
        """Best transcript of one utterance; `probs` [T, C] softmax outputs, blank last."""
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[0] == 0:
            return ""
        if probs.shape[1] != self.num_classes:
            raise ValueError(f"probabilities have {probs.shape[1]} classes, the alphabet needs "
                             f"{self.num_classes} (labels + blank)")
        em = _log_emissions(probs, self.token_min_logp)
        if self._lm is not None:
            # One frame that certainly emits a space: completes and LM-scores the last word.
            tail = np.full((1, self.num_classes), -1e4, dtype=np.float32)
            tail[0, self.space] = 0.0
            em = np.concatenate([em, tail])
        em = np.ascontiguousarray(em)
        results = self._decoder.decode(em.ctypes.data, em.shape[0], em.shape[1])
        if not results:
            return ""
        best = results[0]
        if self._lm is not None:
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
        method = _start_method()
        ctx = multiprocessing.get_context(method)
        # Longest first so the last worker to finish is not stuck with a long utterance.
        order = sorted(range(n), key=lambda i: -len(list_of_probs[i]))
        global _WORKER
        if method == "fork":  # workers inherit this decoder (LM and lexicon already loaded)
            _WORKER = self
            pool = ctx.Pool(workers)
        else:
            args = (self.alphabet.labels, self.scorer_path, self.alpha, self.beta,
                    self.beam_width, self.cutoff_top_n, self.beam_threshold, self.token_min_logp)
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


def _start_method() -> str:
    # fork is fast, but not safe once TensorFlow's threads exist in this process.
    if sys.platform.startswith("linux") and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


_WORKER: Decoder | None = None


def _init_worker(labels: tuple[str, ...], scorer_path: Path | None, alpha: float, beta: float,
                 beam_width: int, cutoff_top_n: int, beam_threshold: float,
                 token_min_logp: float | None) -> None:
    global _WORKER
    _WORKER = Decoder(Alphabet(labels), scorer_path, alpha, beta, beam_width, cutoff_top_n,
                      beam_threshold, token_min_logp)


def _decode_in_worker(probs: np.ndarray) -> str:
    assert _WORKER is not None
    return _WORKER.decode(probs)
