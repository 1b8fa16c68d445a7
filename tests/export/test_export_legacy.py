"""The exported artifacts in the legacy runtimes (libdeepspeech 0.9.3 TF and TFLite builds,
libstt 1.4.0) through ctypes, against `ds-pipeline transcribe` on the same artifact.

A tiny model is trained in the fixture (espeak-ng clips, N_HIDDEN=64) so transcripts are real.
STT 1.x has no TensorFlow runtime: `.pb`/`.pbmm` in libstt is not a combination that can work.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.export.runtime import load_model
from pipeline.lm.build import KENLM_TOOLS
from pipeline.lm.scorer import build_scorer
from pipeline.report.metrics import wer_cer
from pipeline.tools import find_tool
from pipeline.transcribe import Transcriber
from tests import legacy_runtime
from tests.export.helpers import TinyModel

pytestmark = pytest.mark.legacy

COMBINATIONS = [
    ("deepspeech", "output_graph.pb"),
    ("deepspeech", "output_graph.pbmm"),
    ("deepspeech_tflite", "output_graph_fp32.tflite"),
    ("deepspeech_tflite", "output_graph.tflite"),
    ("stt", "output_graph_fp32.tflite"),
    ("stt", "output_graph.tflite"),
]


def _cer(refs: list[str], hyps: list[str]) -> float:
    return wer_cer(refs, hyps)[1]


@pytest.fixture(scope="module")
def runtimes() -> None:
    why = legacy_runtime.ensure_runtimes()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def ours(tiny_model: TinyModel, tiny_export: Path) -> dict[str, Any]:
    """CER of our transcribe (default decoding, as the CLI: beam search without a scorer, the
    model's beam width) per artifact on the test clips."""
    out = {}
    for name in {a for _, a in COMBINATIONS}:
        tr = Transcriber(load_model(tiny_export / name))
        hyps = [tr.transcribe_file(c)["transcript"] for c in tiny_model.test_clips]
        out[name] = _cer(tiny_model.test_texts, hyps)
        print(f"ours {name}: CER {out[name]:.4f} {hyps}")
    return out


@pytest.mark.parametrize(("runtime", "artifact"), COMBINATIONS)
def test_legacy_runtime_transcribes_like_ours(runtimes, tiny_model, tiny_export, ours, runtime,
                                              artifact) -> None:
    # Both sides decode as their clients do by default: beam search, the model's beam width, no scorer.
    res = legacy_runtime.transcribe(runtime, tiny_export / artifact, tiny_model.test_clips)
    cer = _cer(tiny_model.test_texts, res.transcripts)
    print(f"{runtime} {artifact}: CER {cer:.4f} (ours {ours[artifact]:.4f}) {res.transcripts}")
    assert ours[artifact] < 0.25, "the tiny model did not learn enough for a meaningful check"
    # deepspeech-tflite 0.9.3 feeds its last partial window with the previous window's tail (a
    # runtime quirk, docs/export.md): a character or two of the 16 clips may differ there.
    tolerance = 0.025 if runtime == "deepspeech_tflite" else 0.01
    assert abs(cer - ours[artifact]) <= tolerance


@pytest.fixture(scope="module")
def scorer(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools = {t: find_tool(t) for t in KENLM_TOOLS}  # found the way the pipeline finds them
    missing = [t for t, p in tools.items() if p is None]
    if missing:  # an external tool, the one allowed reason to skip
        pytest.skip(f"KenLM tools {missing} not found (scripts/build_kenlm.sh)")
    d = tmp_path_factory.mktemp("lm")
    text = d / "text.txt.gz"
    with gzip.open(text, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(tiny_model.texts * 5) + "\n")
    subprocess.run([str(tools["lmplz"]), "--order", "3", "--discount_fallback", "--memory",
                    "64M", "--text", str(text), "--arpa", str(d / "lm.arpa")], check=True,
                   capture_output=True)
    subprocess.run([str(tools["build_binary"]), "-a", "255", "-q", "8", "-v", "trie",
                    str(d / "lm.arpa"), str(d / "lm.binary")], check=True, capture_output=True)
    vocab = sorted({w for t in tiny_model.texts for w in t.split()})
    out = d / "kenlm.scorer"
    build_scorer(d / "lm.binary", vocab, tiny_model.alphabet, 0.93, 1.18, out)
    return out


@pytest.mark.parametrize(("runtime", "artifact"), [
    ("deepspeech", "output_graph.pbmm"), ("deepspeech_tflite", "output_graph.tflite"),
    ("stt", "output_graph.tflite")])
def test_scorer_in_legacy_runtimes(runtimes, tiny_model, tiny_export, ours, scorer, runtime,
                                   artifact) -> None:
    res = legacy_runtime.transcribe(runtime, tiny_export / artifact, tiny_model.test_clips,
                                    scorer=scorer)
    cer = _cer(tiny_model.test_texts, res.transcripts)
    print(f"{runtime} {artifact} + scorer: CER {cer:.4f} (ours no scorer {ours[artifact]:.4f})")
    # The vocabulary is exactly the test sentences: the lexicon can only help.
    assert cer <= ours[artifact] + 0.01
    # Our decoder with the same scorer must agree; any failure to build it is a failure, not a skip.
    tr = Transcriber(load_model(tiny_export / artifact), scorer=scorer)
    ours_lm = _cer(tiny_model.test_texts,
                   [tr.transcribe_file(c)["transcript"] for c in tiny_model.test_clips])
    print(f"  ours + scorer: CER {ours_lm:.4f}")
    # ours with the scorer is no worse than the runtime's decoder, within 3 characters of the 97:
    # on this weak tiny model (its weights vary between TF runs) the two beam searches swap a
    # word either way (measured: ours 0.041 vs 0.052, 0.067 vs 0.031-0.036)
    assert ours_lm <= cer + 0.035
