"""DeepSpeech's overfit smoke test, ours: every exported artifact x runtime x scorer on LDC93S1.

`matrix(models_dir, scorer, wavs)` transcribes with
- our `transcribe` (in process, `pipeline.transcribe.Transcriber`): the four artifacts, greedy and
  with the scorer, on every given wav (16 kHz, 8 kHz, 44.1 kHz stereo: resampled like the client);
- libdeepspeech 0.9.3 (`.pb`, `.pbmm` in the TF build, both `.tflite` in the TFLite build) and
  libstt 1.4.0 (both `.tflite`), with and without the scorer, on the wav at the model's rate
  (the legacy harness feeds PCM as is, like the C clients).

`python tests/smoke/smoke_matrix.py MODELS_DIR SCORER WAV...` prints the table (markdown).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ARTIFACTS = {"pb": "output_graph.pb", "pbmm": "output_graph.pbmm",
             "tflite int8": "output_graph.tflite", "tflite fp32": "output_graph_fp32.tflite"}
LEGACY = {"deepspeech": ("pb", "pbmm"), "deepspeech_tflite": ("tflite int8", "tflite fp32"),
          "stt": ("tflite int8", "tflite fp32")}
LEGACY_NAMES = {"deepspeech": "libdeepspeech 0.9.3 (TF)", "deepspeech_tflite":
                "libdeepspeech 0.9.3 (TFLite)", "stt": "libstt 1.4.0"}


@dataclass(frozen=True)
class Result:
    artifact: str
    runtime: str
    scorer: str      # "none" (greedy / no-LM beam search) or the scorer's file name
    audio: str
    transcript: str


def ours(models: Path, scorer: Path | None, wavs: list[Path], beam_without_scorer: bool = False) -> list[Result]:
    """Greedy and with `scorer`; with `beam_without_scorer` also a beam search without a scorer (what
    the legacy runtimes do without one)."""
    from pipeline.export.runtime import load_model
    from pipeline.transcribe import Transcriber

    out = []
    modes: list[tuple[Path | None, bool]] = [(None, True), (scorer, False)]
    if beam_without_scorer:
        modes.insert(1, (None, False))
    for art, name in ARTIFACTS.items():
        model = load_model(models / name)
        for sc, greedy in modes:
            tr = Transcriber(model, scorer=sc, greedy=greedy)
            for wav in wavs:
                text = tr.transcribe_file(wav)["transcript"]
                out.append(Result(art, "ds-pipeline transcribe" + (" (greedy)" if greedy else ""),
                                  sc.name if sc else "none", wav.name, text))
    return out


def legacy(models: Path, scorer: Path | None, wav: Path) -> list[Result]:
    from tests.legacy_runtime import transcribe

    out = []
    for runtime, arts in LEGACY.items():
        for art in arts:
            for sc in (None, scorer):
                res = transcribe(runtime, models / ARTIFACTS[art], [wav], scorer=sc)
                out.append(Result(art, LEGACY_NAMES[runtime], sc.name if sc else "none", wav.name,
                                  res.transcripts[0]))
    return out


def table(results: list[Result], expected: str) -> str:
    lines = ["| artifact | runtime | scorer | audio | transcript | match |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.artifact} | {r.runtime} | {r.scorer} | {r.audio} | {r.transcript} | "
                     f"{'yes' if r.transcript == expected else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    models_dir, scorer_path, *wav_args = sys.argv[1:]
    wav_paths = [Path(w) for w in wav_args]
    rows = ours(Path(models_dir), Path(scorer_path), wav_paths)
    rows += legacy(Path(models_dir), Path(scorer_path), wav_paths[0])
    print(table(rows, "she had your dark suit in greasy wash water all year"))
