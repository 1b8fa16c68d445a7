"""AUDIO_NORMALIZE (issue #16): the import brings every clip's speech to one level before the 16-bit
quantization. FSDD's speakers were recorded 22 dB apart (theo's speech at -42 dBFS, jackson's at
-21), and since the 8 kHz recordings are converted to 16 kHz, the band above 4 kHz is the 16-bit
floor: a quiet speaker's spectrum has another shape, not only another level. Normalized, every
speaker's speech sits the same distance above that floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline import audio
from tests.importers.helpers import read_csv, run_stages

FSDD = Path(__file__).resolve().parent.parent / "data" / "fsdd"


def _tone(seconds: float, amplitude: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_speech_level_counts_speech_frames_only():
    tone = _tone(1.0, 0.1)  # RMS 0.1/sqrt(2): -23.01 dBFS
    pause = np.zeros(32000, np.float32)
    noise = (np.random.default_rng(0).standard_normal(48000) * 1e-4).astype(np.float32)  # -80 dB
    for clip in (tone, np.concatenate([pause, tone, pause]), np.concatenate([noise, tone])):
        level = audio.speech_level_db(clip, 16000)
        assert level is not None and abs(level - 20 * np.log10(0.1 / np.sqrt(2))) < 0.05
    assert audio.speech_level_db(np.zeros(16000, np.float32), 16000) is None
    assert audio.level_gain(np.zeros(16000, np.float32), 16000) == 1.0


def test_gain_is_capped_for_near_silent_clips():
    faint = _tone(1.0, 10 ** (-80 / 20))  # speech level -83 dB: would need +61 dB
    assert abs(20 * np.log10(audio.level_gain(faint, 16000)) - audio.LEVEL_MAX_GAIN_DB) < 1e-6
    loud = _tone(1.0, 0.9)
    expected_db = audio.SPEECH_LEVEL_DBFS - 20 * np.log10(0.9 / np.sqrt(2))  # -18.1 dB: not capped
    assert abs(20 * np.log10(audio.level_gain(loud, 16000)) - expected_db) < 0.05


def test_quiet_and_loud_speakers_leave_the_conversion_at_one_level():
    raw, normalized = {}, {}
    for speaker in ("theo", "jackson", "yweweler"):
        x, rate = sf.read(str(FSDD / f"7_{speaker}_5.wav"), dtype="float32")
        raw[speaker] = audio.speech_level_db(audio.to_16k_pcm16(x, rate) / 32768, 16000)
        normalized[speaker] = audio.speech_level_db(
            audio.to_16k_pcm16(x, rate, normalize=True) / 32768, 16000)
    assert raw["jackson"] - raw["theo"] > 15  # the mismatch the setting is for
    for speaker, level in normalized.items():
        assert abs(level - audio.SPEECH_LEVEL_DBFS) < 0.2, (speaker, level)


def _levels(paths) -> dict[str, float]:
    out = {}
    for split in ("train", "dev", "test"):
        for row in read_csv(paths.corpus_csv("csv", split))[1]:
            x, rate = sf.read(str(paths.corpus_dir("csv") / row["wav_filename"]), dtype="float32")
            out[Path(row["wav_filename"]).stem.split("_", 1)[1]] = audio.speech_level_db(x, rate)
    return out


def test_import_normalizes_when_set_and_reconverts_when_the_setting_changes(data_dir):
    clips = sorted(FSDD.glob("[0-3]_*_5.wav"))  # 4 digits x 6 speakers
    lines = ["path,transcript,speaker"]
    lines += [f"{c},{['zero', 'one', 'two', 'three'][int(c.name[0])]},{c.name.split('_')[1]}"
              for c in clips]
    (data_dir / "sources" / "digits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = {"CORPORA": "csv", "CSV_LIST": "digits.csv", "MODEL_LANGUAGE": "en", "MIN_DURATION": "0.1"}
    _, paths = run_stages(data_dir, AUDIO_NORMALIZE="1", **common)
    levels = _levels(paths)
    assert len(levels) == len(clips)
    assert all(abs(v - audio.SPEECH_LEVEL_DBFS) < 0.3 for v in levels.values()), levels

    _, paths = run_stages(data_dir, **common)  # the default: each source's own level (DeepSpeech's)
    raw = _levels(paths)
    theo = [v for k, v in raw.items() if "_theo_" in k]
    jackson = [v for k, v in raw.items() if "_jackson_" in k]
    assert max(theo) < -35 and min(jackson) > -30, (theo, jackson)  # reconverted, not reused


def test_transcribe_follows_the_setting_the_model_was_trained_with(tmp_path):
    from pipeline.transcribe import trained_on_normalized_levels

    model = tmp_path / "output_graph.tflite"
    assert not trained_on_normalized_levels(model)  # no config.env: a DeepSpeech model
    for value, expected in (("1", True), ("0", False), ("maybe", False)):
        (tmp_path / "config.env").write_text(f"MODEL_LANGUAGE=en\nAUDIO_NORMALIZE={value}\n")
        assert trained_on_normalized_levels(model) is expected
