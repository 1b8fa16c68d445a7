"""`ds-pipeline transcribe`: formats, rates, channels, VAD segmentation of a 60 s file, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.export.runtime import load_model
from pipeline.report.metrics import wer_cer
from pipeline.transcribe import Transcriber
from pipeline.vad import split_speech
from tests.export.helpers import REPO, TinyModel
from tests.helpers import SUBPROCESS_TIMEOUT


def _cer(ref: str, hyp: str) -> float:
    return wer_cer([ref], [hyp])[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "transcribe", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


@pytest.fixture(scope="module")
def long_file(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, list[str], list[tuple[float, float]]]:
    """A 60 s, 44.1 kHz stereo FLAC: the clips in turn, separated by 1.5-3 s pauses (faint noise)."""
    import soundfile as sf
    import soxr

    rng = np.random.default_rng(0)
    parts, texts, spans = [], [], []
    pos = 0
    k = 0
    while True:
        x, _ = sf.read(str(tiny_model.clips[k % len(tiny_model.clips)]), dtype="float32")
        gap = np.zeros(int(16000 * rng.uniform(1.5, 3.0)), np.float32)
        if pos + len(gap) + len(x) > 59 * 16000:
            break
        parts += [gap, x]
        spans.append(((pos + len(gap)) / 16000, (pos + len(gap) + len(x)) / 16000))
        texts.append(tiny_model.texts[k % len(tiny_model.texts)])
        pos += len(gap) + len(x)
        k += 1
    parts.append(np.zeros(60 * 16000 - pos, np.float32))
    audio = np.concatenate(parts) + rng.standard_normal(60 * 16000).astype(np.float32) * 1e-3
    hi = soxr.resample(audio, 16000, 44100)
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(str(path), np.stack([hi, hi * 0.9], axis=1), 44100)
    return path, texts, spans


def test_vad_finds_each_clip(long_file) -> None:
    from pipeline.transcribe import load_audio

    path, texts, spans = long_file
    segs = split_speech(load_audio(path))
    assert len(segs) == len(texts)
    for s, (a, b) in zip(segs, spans, strict=True):
        assert s.start / 16000 <= a + 0.05 and s.end / 16000 >= b - 0.05


def test_transcribe_json_long_file(long_file, tiny_export) -> None:
    path, texts, spans = long_file
    proc = _cli("--json", "--model", str(tiny_export / "output_graph.tflite"), str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["file"] == str(path)
    assert set(res) == {"file", "transcript", "segments"}
    segs = res["segments"]
    assert len(segs) == len(texts)
    for seg, text, (a, b) in zip(segs, texts, spans, strict=True):
        assert set(seg) == {"start", "end", "text"}
        assert seg["start"] <= a + 0.05 and seg["end"] >= b - 0.05
        # loose per segment (a short sentence from a tiny model varies between TF runs: 0.38 seen
        # once under load); the whole-file CER below is the accuracy check
        assert _cer(text, seg["text"]) <= 0.5, (text, seg["text"])
    total = _cer(" ".join(texts), " ".join(s["text"] for s in segs))
    # the tiny model's own greedy CER on its clips is 0.09-0.14 (weights vary between TF runs)
    assert total <= 0.25
    assert res["transcript"] == " ".join(s["text"] for s in segs if s["text"])


def test_formats_rates_channels(tiny_model, tiny_export, tmp_path) -> None:
    """The same clip as 48 kHz stereo mp3, 22.05 kHz ogg, 32 kHz stereo flac and 16 kHz wav."""
    import soundfile as sf
    import soxr

    from pipeline.transcribe import load_audio

    x, _ = sf.read(str(tiny_model.clips[3]), dtype="float32")
    variants = {"a.mp3": (48000, 2, "MPEG_LAYER_III"), "b.ogg": (22050, 1, "VORBIS"),
                "c.flac": (32000, 2, "PCM_16"), "d.wav": (16000, 1, "PCM_16")}
    tr = Transcriber(load_model(tiny_export / "output_graph.tflite"))
    for name, (rate, ch, subtype) in variants.items():
        y = soxr.resample(x, 16000, rate) if rate != 16000 else x
        data = np.stack([y] * ch, axis=1) if ch > 1 else y
        f = tmp_path / name
        sf.write(str(f), data, rate, subtype=subtype)
        audio = load_audio(f)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(len(audio) - len(x)) < 0.06 * 16000, name  # mp3 adds encoder delay/padding
        text = tr.transcribe_file(f)["transcript"]
        # The overfit tiny model is not robust to lossy coding: only the lossless ones must match.
        limit = 0.35 if subtype == "PCM_16" else 0.6
        assert _cer(tiny_model.texts[3], text) <= limit, (name, text)


def test_transcribe_pb_and_pbmm_agree(tiny_model, tiny_export) -> None:
    outs = []
    for name in ("output_graph.pb", "output_graph.pbmm"):
        tr = Transcriber(load_model(tiny_export / name), greedy=True)
        outs.append([tr.transcribe_file(c)["transcript"] for c in tiny_model.clips])
    assert outs[0] == outs[1]
    assert _cer(" ".join(tiny_model.texts), " ".join(outs[0])) < 0.2


def test_cli_errors_name_the_problem(tmp_path) -> None:
    proc = _cli("--model", str(tmp_path / "nope.tflite"), "x.wav")
    assert proc.returncode == 3 and "nope.tflite" in proc.stderr
    (tmp_path / "m.onnx").write_bytes(b"x")
    proc = _cli("--model", str(tmp_path / "m.onnx"), "x.wav")
    assert proc.returncode == 2 and ".tflite, .pb or .pbmm" in proc.stderr


def test_level_normalization_undoes_a_quiet_recording(tiny_model, tiny_export, tmp_path) -> None:
    """`--level normalize` (AUDIO_NORMALIZE models): a clip recorded 25 dB quieter is fed at the
    level of the original, so it reads like the original; the CLI's `auto` finds the setting in the
    config.env beside the model."""
    import shutil

    import soundfile as sf

    from pipeline import audio

    x, rate = sf.read(str(tiny_model.clips[3]), dtype="float32")
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), x * 10 ** (-25 / 20), rate, subtype="PCM_16")
    tr = Transcriber(load_model(tiny_export / "output_graph.tflite"), greedy=True, normalize=True)
    level = audio.speech_level_db(np.clip(x * np.float32(audio.level_gain(x, rate)), -1, 1), rate)
    assert level is not None and abs(level - audio.SPEECH_LEVEL_DBFS) < 0.1
    normalized = tr.transcribe_file(tiny_model.clips[3])["transcript"]
    assert _cer(normalized, tr.transcribe_file(quiet)["transcript"]) <= 0.05
    raw = Transcriber(tr.model, greedy=True).transcribe_file(quiet)["transcript"]
    print("raw level:", raw, "| normalized:", normalized)
    assert _cer(normalized, raw) > 0.05  # the tiny model does not read the quiet clip as it is
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    shutil.copy(tiny_export / "output_graph.tflite", model_dir)
    (model_dir / "config.env").write_text("AUDIO_NORMALIZE=1\n")
    proc = _cli("--model", str(model_dir / "output_graph.tflite"), "--greedy", str(quiet))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == tr.transcribe_file(quiet)["transcript"]
