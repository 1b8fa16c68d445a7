"""The conversion's fast path (issue #14 item 3): MP3 through libmpg123 directly, the wav written
in one go, every core by default. Each must give exactly what the slower path gave."""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from importers.engine import _workers
from pipeline import audio, mp3
from pipeline.config import load_config

REAL = Path(__file__).resolve().parent.parent / "data" / "real"
MP3S = ["udhr_preamble_first5s_22k.mp3", "udhr_preamble_first5s_22k_noxing.mp3"]
needs_mpg123 = pytest.mark.skipif(not mp3.available(), reason="libmpg123 not installed (libmpg123-0)")


def test_conversion_uses_every_core_by_default():
    assert load_config(environ={}, overrides=[], lang="fr").general.workers == 0
    assert _workers(0) == (os.cpu_count() or 1)
    assert _workers(3) == 3


@needs_mpg123
@pytest.mark.parametrize("name", MP3S)
@pytest.mark.parametrize("max_seconds", [None, 15.0])
def test_libmpg123_path_is_bit_identical_to_libsndfile(name, max_seconds):
    """With and without a Xing header (the header-less VBR file decodes whole either way)."""
    data, rate, declared, limit = audio._read_mp3(str(REAL / name), max_seconds)  # type: ignore[misc]
    ref, ref_rate, _, ref_declared, ref_limit = audio._read_sndfile(str(REAL / name), max_seconds)
    assert (rate, declared, limit) == (ref_rate, ref_declared, ref_limit)
    assert data.shape == ref.shape and np.array_equal(data, ref)


@needs_mpg123
def test_libmpg123_path_keeps_the_length_checks(tmp_path):
    """Stereo 44.1 kHz: downmixed like before; over max_seconds: AudioTooLong without decoding;
    cut to a third: 'truncated'; not an MP3 at all: libsndfile's own error."""
    t = np.arange(44100 * 3) / 44100
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 220 * t)], axis=1)
    src = tmp_path / "stereo.mp3"
    sf.write(src, x, 44100, format="MP3")
    mono, rate, channels = audio.decode(src)
    ref, _, _, _, _ = audio._read_sndfile(str(src), None)
    assert (rate, channels) == (44100, 2) and np.array_equal(mono, ref.mean(axis=1, dtype=np.float32))
    with pytest.raises(audio.AudioTooLong, match="3.00s long"):
        audio.decode(src, max_seconds=1.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(src.read_bytes()[:src.stat().st_size // 3])
    with pytest.raises(audio.AudioError, match="truncated: the header promises 3.00s"):
        audio.decode(cut)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\xff\xfb\x90\x00" + bytes(1000))
    with pytest.raises(audio.AudioError, match="cannot decode"):
        audio.decode(junk)


def test_wav_writer_writes_what_the_stdlib_writer_writes(tmp_path):
    pcm = (np.arange(3001) % 300 - 150).astype(np.int16)
    for arr in (pcm, pcm[::2], pcm.astype(">i2")):
        ref = io.BytesIO()
        with wave.open(ref, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(arr.astype("<i2").tobytes())
        audio.write_wav(tmp_path / "x.wav", arr)
        assert (tmp_path / "x.wav").read_bytes() == ref.getvalue()
        assert audio.is_target_wav(tmp_path / "x.wav") is not None
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]  # no temp file left


def test_quantizer_rounds_and_clips_like_before():
    x = np.concatenate([np.random.default_rng(0).standard_normal(5000).astype(np.float32) * 0.4,
                        np.float32([1.5, -1.5, 0.5 / 32767, 1.5 / 32767, -2.5 / 32767])])
    old = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    assert np.array_equal(audio.to_16k_pcm16(x, 16000), old)
