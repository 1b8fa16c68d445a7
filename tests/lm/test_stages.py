"""The lm stage through the CLI on a generated data dir, and the lm_optimize core on synthetic outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline.config import LmRange
from pipeline.lm.decode import Decoder, greedy_decode
from pipeline.lm.optimize import optimize
from pipeline.lm.scorer import read_scorer
from pipeline.report.metrics import wer_cer
from tests.helpers import SUBPROCESS_TIMEOUT
from tests.lm.helpers import ALPHABET, REPO, emissions, lm_optimize_data_dir, make_sentences, write_transcript_csv


def _lm_data_dir(data: Path, corpus: str, train: list[str], heldout: list[str]) -> None:
    """A data dir as the lm stage finds it after import and alphabet."""
    write_transcript_csv(data / "extracted" / corpus / f"{corpus}_train.csv", train)
    (data / "extracted" / "heldout_sentences.txt").write_text("\n".join(heldout) + "\n")
    (data / "models").mkdir(parents=True)
    ALPHABET.write(data / "models" / "alphabet.txt")


def _run_lm(data: Path, kenlm_bin: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = [a for kv in ("LM_ORDER=3", "LM_MEMORY=64M", f"KENLM_BIN={kenlm_bin}", *sets) for a in ("--set", kv)]
    return subprocess.run([sys.executable, "-m", "pipeline", "run", "--data-dir", str(data), "--stages",
                           "lm", *args], cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def test_lm_stage_builds_scorer_without_heldout_sentences(tmp_path: Path, kenlm_bin: Path) -> None:
    data = tmp_path / "data"
    sents = list(dict.fromkeys(make_sentences(1500, seed=5)))
    train, heldout = sents[:-40], sents[-40:]
    train = train + heldout[:5]  # leaked duplicates must be removed
    _lm_data_dir(data, "common_voice", train, heldout)
    proc = _run_lm(data, kenlm_bin, "CORPORA=common_voice", "FAST_TRAIN=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((data / "lm" / "lm_report.json").read_text())
    assert report["text"]["excluded_heldout_lines"] == 5
    assert report["text"]["lines"] == len(train) - 5
    assert report["vocabulary"]["top_k"] == 500  # FAST_TRAIN caps the vocabulary
    assert 0.9 < report["heldout_coverage"]["token_coverage"] <= 1.0
    assert (data / "lm" / "lm.binary").is_file()
    vocab = (data / "lm" / "vocab-500.txt").read_text().split()
    assert vocab[0] in ("le", "la")
    info = read_scorer(data / "lm" / "kenlm.scorer")
    assert (info.alpha, info.beta) == (0.931289039105002, 1.1834137581510284)
    assert not list((data / "tmp").glob("lm/**/*.arpa"))
    # second run: skipped (marker + outputs)
    proc = _run_lm(data, kenlm_bin, "CORPORA=common_voice", "FAST_TRAIN=1")
    assert proc.returncode == 0 and "skip: done with the same settings" in proc.stderr


def test_optimizer_does_not_worsen_dev_wer(small_lm: dict) -> None:
    rng = np.random.default_rng(7)
    sents = small_lm["sentences"][100:130]
    pairs = []
    for i, s in enumerate(sents):
        # confuse a few characters per utterance with random letters
        conf = {int(j): (str(rng.choice(list("aeiou"))), 0.48)
                for j in rng.choice(len(s), size=3, replace=False) if s[int(j)] != " "}
        pairs.append((emissions(s, confusions=conf, seed=i), s))
    res = optimize(pairs, ALPHABET, small_lm["scorer"], LmRange(3.0, 3.0, 12), default_alpha=0.0,
                   default_beta=0.0, beam_width=32, seed=1, workers=2)
    assert res.n_trials == 12
    assert res.value <= res.default_value
    # the chosen values really give that WER
    dec = Decoder(ALPHABET, small_lm["scorer"], res.alpha, res.beta, beam_width=32)
    wer = wer_cer([t for _, t in pairs], [dec.decode(p) for p, _ in pairs])[0]
    assert abs(wer - res.value) < 1e-9
    greedy_wer = wer_cer([t for _, t in pairs], [greedy_decode(p, ALPHABET) for p, _ in pairs])[0]
    assert res.value < greedy_wer or greedy_wer == 0.0


def test_error_rate_is_corpus_level_and_capped() -> None:
    assert wer_cer(["a b c d", "e f"], ["a b c d", "x"])[0] == 2 / 6
    assert wer_cer(["a"], ["b c d e"]) == (1.0, 1.0)
    assert wer_cer([""], ["x"]) == (0.0, 0.0)      # empty reference: skipped
    assert wer_cer([" ", "ab"], ["x", ""]) == (1.0, 1.0)  # empty hypothesis: all deleted


def test_lm_optimize_stage_writes_scorer_and_result(small_lm: dict, tmp_path: Path) -> None:
    """Stage wiring. Synthetic acoustic outputs are passed in (the stage's `outputs` parameter) instead
    of a trained checkpoint's, which is out of scope here; the search itself is the real one."""
    from dataclasses import dataclass

    from pipeline.config import load_config
    from pipeline.lm.optimize import decoder_weights
    from pipeline.stages import lm_optimize
    from pipeline.stages.base import StageContext

    @dataclass
    class Utterance:
        wav_filename: str
        transcript: str
        probs: np.ndarray

    sents = small_lm["sentences"][200:215]
    utts = [Utterance(f"{i}.wav", s, emissions(s, confusions={3: ("o", 0.46)}, seed=i))
            for i, s in enumerate(sents)]
    seen_csvs: list[Path] = []

    def outputs(cfg, paths, csv_files):
        seen_csvs.extend(csv_files)
        return utts

    cfg, paths = lm_optimize_data_dir(tmp_path / "data", sents, small_lm["scorer"],
                                      "LM_EVALUATE_RANGE=2,3,6", "BEAM_WIDTH=16")
    paths.marker("lm_optimize").parent.mkdir(parents=True, exist_ok=True)
    lm_optimize.run(StageContext(cfg, paths, lm_optimize.STAGE, tmp_path / "t"), outputs=outputs)
    assert seen_csvs == [paths.corpus_csv("common_voice", "dev")]  # the dev split, nothing else
    res = json.loads((paths.models / "lm_optimize.json").read_text())
    assert res["n_trials"] == 6 and res["dev_value_after"] <= res["dev_value_before"]
    info = read_scorer(paths.scorer)
    assert (info.alpha, info.beta) == (res["alpha"], res["beta"])
    paths.marker("lm_optimize").write_text("{}")
    assert decoder_weights(cfg, paths) == (res["alpha"], res["beta"])
    explicit = load_config(environ={}, overrides=["LM_ALPHA=0.5"])
    assert decoder_weights(explicit, paths)[0] == 0.5


def test_lm_stage_small_vocabulary_builds_from_training_sentences(tmp_path: Path,
                                                                    kenlm_bin: Path) -> None:
    """Digits with speaker-disjoint splits: every dev/test sentence is also a training sentence, so
    the held-out-free text is empty; the stage builds the LM from the training sentences and says so
    instead of failing (issue #16)."""
    data = tmp_path / "data"
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    _lm_data_dir(data, "csv", words * 4, words)
    proc = _run_lm(data, kenlm_bin, "CORPORA=csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training sentences" in proc.stderr + proc.stdout  # the log says which LM was built
    report = json.loads((data / "lm" / "lm_report.json").read_text())
    assert report["text"]["mode"] == "training_sentences"
    assert report["text"]["heldout_duplicates_kept"] == 40 and report["text"]["lines"] == 40
    assert report["vocabulary"]["size"] == 10
    assert report["heldout_coverage"]["token_coverage"] == 1.0
    assert read_scorer(data / "lm" / "kenlm.scorer").alpha > 0


def test_small_vocabulary_rule() -> None:
    from pipeline.lm.build import TextStats, small_vocabulary_text

    assert small_vocabulary_text(TextStats(lines=0, words=0, excluded_heldout=40))
    assert small_vocabulary_text(TextStats(lines=3, words=3, excluded_heldout=37))
    # sentence-disjoint splits: a few external lines equal held-out ones, the text stays
    assert not small_vocabulary_text(TextStats(lines=1000, words=9000, excluded_heldout=5))
