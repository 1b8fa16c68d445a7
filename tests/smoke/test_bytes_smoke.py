"""DeepSpeech 0.9's LDC93S1 smoke test in bytes output mode (issue #15; `make smoke`).

As DeepSpeech's `bin/run-tc-ldc93s1_new_bytes.sh` did: an English model trained on UTF-8 bytes
(BYTES_OUTPUT_MODE=1, 256 outputs) with LDC93S1 as train = dev = test, then every stage through
export (env_files/deepspeech_smoke_bytes.env), every artifact in our `transcribe` and in
libdeepspeech 0.9.3 / libstt 1.4.0, without a scorer and with DeepSpeech's `pruned_lm.bytes.scorer`.

The clip: LDC93S1.wav ends 0.22 s after the last word; the test trains on a copy with 0.5 s of
silence appended (in the test's tmp dir), because with a short tail the exported models of an
overfit bytes model lost the last byte (tests/smoke/test_bytes_mode.py).

`slow` (not in the default suite: ≈ 8 min of training, 12.5 min for the module on 2 idle cores).
The seed matters: with RANDOM_SEED=1 the greedy output of the best dev checkpoint is exact from
epoch ~290 and the dev loss reaches 0.004 at 650 (all four tests pass, measured 2026-11-30); with
4568 (the character-mode smoke test's seed) training stalled at dev loss 0.48 and greedy read
"... al year" through 1000 epochs, with 2 at 0.58 and "... all ear" at 650. Training is
deterministic on a given machine, so the test is reproducible; a different CPU's float rounding
can move it onto a stalled path (then try another RANDOM_SEED in env_files/deepspeech_smoke_bytes.env).
With pruned_lm.bytes.scorer libdeepspeech and libstt give the transcript WITHOUT spaces (that
scorer's lexicon holds letters only: a space can never come out in UTF-8 mode); our decoder gives
the same (it doubled letters, "shehehadad...", until UTF-8 scorers moved to the lexicon-free search,
see docs/language-model.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import REPO, require_kenlm, run_cli
from tests.smoke.smoke_matrix import ARTIFACTS, legacy, ours, table

pytestmark = pytest.mark.slow  # 650 epochs at N_HIDDEN 256, and see the module docstring

DATA = REPO / "tests/data/deepspeech_smoke"
ENV = REPO / "env_files/deepspeech_smoke_bytes.env"
EXPECTED = "she had your dark suit in greasy wash water all year"
SCORER = DATA / "pruned_lm.bytes.scorer"
TAIL_S = 0.5


@pytest.fixture(scope="module")
def bytes_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.audio import write_wav

    require_kenlm()
    data = tmp_path_factory.mktemp("bytes_smoke") / "data"
    sources = data / "sources"
    sources.mkdir(parents=True)
    pcm, rate = sf.read(str(DATA / "LDC93S1.wav"), dtype="int16")
    wav = sources / "LDC93S1.wav"
    write_wav(wav, np.concatenate([pcm, np.zeros(int(TAIL_S * rate), np.int16)]), rate)
    (sources / "ldc93s1.csv").write_text(
        f"wav_filename,wav_filesize,transcript\n{wav},{wav.stat().st_size},{EXPECTED}\n", encoding="utf-8")
    proc = run_cli("run", "--data-dir", str(data), "--env-file", str(ENV), "--to", "export", timeout=7200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return data


def _wav(data: Path) -> Path:
    return data / "sources/LDC93S1.wav"


def test_bytes_model_and_cer_ranked_report(bytes_smoke: Path) -> None:
    from pipeline.export.runtime import load_model
    from pipeline.text.alphabet import ByteAlphabet

    model = load_model(bytes_smoke / "models/output_graph.tflite")
    assert isinstance(model.alphabet, ByteAlphabet) and model.alphabet.num_classes == 256
    results = json.loads((bytes_smoke / "models/test_results.json").read_text(encoding="utf-8"))
    (name,) = results
    report = json.loads((bytes_smoke / f"reports/test_{name}.json").read_text(encoding="utf-8"))
    assert report["ranked_by"] == "cer"


def test_beam_search_without_scorer_is_exact_everywhere(bytes_smoke: Path) -> None:
    from tests.legacy_runtime import ensure_runtimes

    results = [r for r in ours(bytes_smoke / "models", SCORER, [_wav(bytes_smoke)], beam_without_scorer=True)
               if r.scorer == "none" and "greedy" not in r.runtime]
    why = ensure_runtimes()
    if why:
        pytest.skip(why)
    results += [r for r in legacy(bytes_smoke / "models", SCORER, _wav(bytes_smoke)) if r.scorer == "none"]
    assert len(results) == len(ARTIFACTS) + 6
    assert all(r.transcript == EXPECTED for r in results), table(results, EXPECTED)


def test_greedy_is_exact_for_every_artifact(bytes_smoke: Path) -> None:
    results = [r for r in ours(bytes_smoke / "models", SCORER, [_wav(bytes_smoke)]) if r.scorer == "none"]
    assert len(results) == len(ARTIFACTS)
    assert all(r.transcript == EXPECTED for r in results), table(results, EXPECTED)


def test_deepspeech_bytes_scorer_in_every_runtime(bytes_smoke: Path) -> None:
    """libdeepspeech / libstt with pruned_lm.bytes.scorer give the letters without spaces (its
    lexicon has no space); our decoder must give what they give."""
    from tests.legacy_runtime import ensure_runtimes

    why = ensure_runtimes()
    if why:
        pytest.skip(why)
    theirs = [r for r in legacy(bytes_smoke / "models", SCORER, _wav(bytes_smoke)) if r.scorer != "none"]
    letters = EXPECTED.replace(" ", "")
    assert len(theirs) == 6 and all(r.transcript == letters for r in theirs), table(theirs, letters)
    mine = [r for r in ours(bytes_smoke / "models", SCORER, [_wav(bytes_smoke)]) if r.scorer != "none"]
    assert all(r.transcript == letters for r in mine), table(mine, letters)
