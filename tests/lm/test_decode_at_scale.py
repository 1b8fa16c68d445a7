"""Decoding at scale (#14 item 4): acoustic outputs cached per checkpoint and reused by the test
stage and lm_optimize, a deterministic dev subset, early stopping of bad trials, parallel trials."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import LmRange, load_config
from pipeline.corpus_csv import CsvRow, read_rows
from pipeline.lm.optimize import TrialDecoder, dev_subset, optimize, prune_slice
from tests.lm.helpers import ALPHABET, emissions, lm_optimize_data_dir


def _confused_pairs(sentences: list[str], seed: int = 7) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i, s in enumerate(sentences):
        conf = {int(j): (str(rng.choice(list("aeiou"))), 0.48)
                for j in rng.choice(len(s), size=3, replace=False) if s[int(j)] != " "}
        pairs.append((emissions(s, confusions=conf, seed=i), s))
    return pairs


# ---------------------------------------------------------------------------------------------
# dev subset, early stopping, parallel trials (synthetic outputs, the real decoder and KenLM)
# ---------------------------------------------------------------------------------------------
def test_dev_subset_has_the_stated_size_and_is_deterministic() -> None:
    rows = [CsvRow(Path(f"/c/clips/{i:05d}.wav"), 100, f"phrase {i}") for i in range(1000)]
    sub = dev_subset(rows, 120)
    assert len(sub) == 120
    assert sub == dev_subset(list(rows), 120)                     # same rows on every call
    assert sub == sorted(sub, key=rows.index)                      # CSV order kept
    assert set(dev_subset(rows[::-1], 120)) == set(sub)            # independent of row order
    # spread over the CSV, not its head
    assert min(rows.index(r) for r in sub) < 100 and max(rows.index(r) for r in sub) > 900
    assert dev_subset(rows, 0) == rows and dev_subset(rows[:50], 120) == rows[:50]
    assert prune_slice(40, 3) == prune_slice(40, 3) and len(prune_slice(40, 3)) == 10


def test_pruning_stops_clearly_bad_trials(small_lm: dict, caplog: pytest.LogCaptureFixture) -> None:
    """A huge word bonus (beta up to 40) inserts words everywhere: such trials are stopped after
    the first quarter; the search still finds the same best WER as the unpruned one."""
    pairs = _confused_pairs(small_lm["sentences"][100:132])
    search = LmRange(2.0, 40.0, 10)
    kw = dict(default_alpha=0.93, default_beta=1.18, beam_width=16, seed=1, workers=1)
    with caplog.at_level(logging.INFO, logger="pipeline.lm.optimize"):
        pruned = optimize(pairs, ALPHABET, small_lm["scorer"], search, prune_margin=0.05, **kw)
    full = optimize(pairs, ALPHABET, small_lm["scorer"], search, prune_margin=1.0, **kw)
    print(f"pruned search: {pruned}\nfull search: {full}")
    assert pruned.n_trials == full.n_trials == 10
    assert pruned.pruned >= 1 and full.pruned == 0
    assert "stopped: WER" in caplog.text
    assert pruned.decoded < full.decoded
    # a stopped trial decoded only its quarter: 8 of 32 utterances
    assert full.decoded - pruned.decoded == pruned.pruned * (len(pairs) - len(pairs) // 4)
    assert pruned.value <= pruned.default_value and pruned.value == full.value


def test_parallel_trials_equal_serial(small_lm: dict) -> None:
    pairs = _confused_pairs(small_lm["sentences"][300:312], seed=3)
    probs = [p for p, _ in pairs]
    with TrialDecoder(ALPHABET, small_lm["scorer"], probs, 16, workers=1) as serial, \
            TrialDecoder(ALPHABET, small_lm["scorer"], probs, 16, workers=2) as parallel:
        assert parallel.workers == 2
        for alpha, beta, idx in [(0.93, 1.18, None), (0.2, 3.0, [5, 1, 7]), (2.0, 0.0, None)]:
            assert serial.decode(alpha, beta, idx) == parallel.decode(alpha, beta, idx)
    res = [optimize(pairs, ALPHABET, small_lm["scorer"], LmRange(2.0, 3.0, 5), 0.93, 1.18, 16,
                    seed=2, workers=w, prune_margin=0.05) for w in (1, 2)]
    assert res[0] == res[1]


@dataclass
class _Utt:
    wav_filename: str
    transcript: str
    probs: np.ndarray


def test_lm_optimize_stage_decodes_the_stated_subset(small_lm: dict, tmp_path: Path) -> None:
    from pipeline.stages import lm_optimize
    from pipeline.stages.base import StageContext

    sents = small_lm["sentences"][400:420]
    by_text = {s: emissions(s, seed=i) for i, s in enumerate(sents)}
    seen: list[list[str]] = []

    def outputs(cfg, paths, csv_files):
        rows = [r for f in csv_files for r in read_rows(Path(f))]
        seen.append([r.transcript for r in rows])
        return [_Utt(str(r.wav), r.transcript, by_text[r.transcript]) for r in rows]

    cfg, paths = lm_optimize_data_dir(tmp_path / "data", sents, small_lm["scorer"],
                                      "LM_EVALUATE_RANGE=2,3,3", "BEAM_WIDTH=8", "LM_OPTIMIZE_MAX_CLIPS=7")
    for run in range(2):
        lm_optimize.run(StageContext(cfg, paths, lm_optimize.STAGE, tmp_path / f"t{run}"),
                        outputs=outputs)
    assert len(seen[0]) == 7 and seen[0] == seen[1]        # 7 clips, the same ones both times
    assert json.loads(paths.lm_optimize_result.read_text())["dev_utterances"] == 7


# ---------------------------------------------------------------------------------------------
# The acoustic output cache with a real (tiny) checkpoint and TensorFlow
# ---------------------------------------------------------------------------------------------
def _scorer_for(data: Path, kenlm_bin: Path, alphabet) -> Path:
    from pipeline.lm import build as lmbuild
    from pipeline.lm.scorer import build_scorer

    texts = [r.transcript for split in ("train", "dev", "test")
             for r in read_rows(data / "extracted" / "synth" / f"synth_{split}.csv")]
    work = data / "lm"
    work.mkdir(exist_ok=True)
    _, counts = lmbuild.write_lm_text(work / "t.txt.gz", [("c", texts * 3)], set())
    vocab = lmbuild.top_k_vocab(counts, 1000)
    lmbuild.build_kenlm(work / "t.txt.gz", vocab, work / "lm.binary",
                        lmbuild.LmSettings(order=2, prune="0", memory="64M"),
                        lmbuild.kenlm_tools(str(kenlm_bin)), data / "tmp" / "k")
    build_scorer(work / "lm.binary", vocab, alphabet, 0.93, 1.18, work / "kenlm.scorer")
    return work / "kenlm.scorer"


def _perturb_checkpoint(checkpoint: Path, alphabet) -> None:
    """Write other weights into the checkpoint (as a further training epoch would)."""
    import tensorflow as tf

    from pipeline.model.inference import load_checkpoint_model
    from pipeline.model.network import checkpoint_prefix

    model = load_checkpoint_model(checkpoint, alphabet)
    for v in model.trainable_variables:
        v.assign(v * 1.5)
    tf.train.Checkpoint(model=model).write(checkpoint_prefix(checkpoint))


def test_acoustic_outputs_are_cached_reused_and_invalidated(tmp_path: Path, kenlm_bin: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.model import output_cache
    from pipeline.paths import Paths
    from pipeline.stages import evaluate, lm_optimize
    from pipeline.stages.base import StageContext
    from pipeline.text.alphabet import Alphabet
    from tests.reliability.helpers import copy_data_dir

    paths = Paths.at(copy_data_dir(tmp_path / "data"))
    alphabet = Alphabet.from_file(paths.alphabet)
    _scorer_for(paths.root, kenlm_bin, alphabet)
    cfg = load_config(environ={}, overrides=["CORPORA=synth", "LM_EVALUATE_RANGE=1,1,2", "BEAM_WIDTH=8",
                                             "WORKERS=2", "BATCH_SIZE=4"])
    counter = output_cache.COMPUTED

    def run_both(tag: str) -> dict[str, int]:
        before = dict(counter)
        lm_optimize.run(StageContext(cfg, paths, lm_optimize.STAGE, tmp_path / f"o{tag}"))
        evaluate.evaluate_sets(StageContext(cfg, paths, evaluate.STAGE, tmp_path / f"e{tag}"))
        return {k: counter[k] - before[k] for k in counter}

    with caplog.at_level(logging.INFO):
        assert run_both("1") == {"sets": 2, "utterances": 8}        # dev (4) and test (4) computed
        dev_cache = paths.acoustic_cache("lm_optimize_dev")
        stamp = dev_cache.stat().st_mtime_ns
        first = json.loads(paths.test_report("synth").read_text())["all"]
        caplog.clear()
        assert run_both("2") == {"sets": 0, "utterances": 0}        # both reused
        assert "4 utterances reused from" in caplog.text
        assert dev_cache.stat().st_mtime_ns == stamp
        assert json.loads(paths.test_report("synth").read_text())["all"] == first

        cached = output_cache.cached_outputs(cfg, paths, [paths.corpus_csv("synth", "test")], "test_synth")
        _perturb_checkpoint(paths.best_checkpoint_dir, alphabet)
        assert run_both("3") == {"sets": 2, "utterances": 8}        # new weights: recomputed
        fresh = output_cache.cached_outputs(cfg, paths, [paths.corpus_csv("synth", "test")], "test_synth")
    assert [u.wav_filename for u in fresh] == [u.wav_filename for u in cached]
    assert not all(np.array_equal(a.probs, b.probs) for a, b in zip(fresh, cached, strict=True))
    assert fresh[0].probs.dtype == np.float32
