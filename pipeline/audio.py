"""Audio conversion in process: decode (mp3/ogg/flac/wav via libsndfile), downmix, resample to
16 kHz with soxr, write 16-bit PCM wav atomically. No subprocess per clip (the seeds' bottleneck).

Nothing is trimmed: the output holds every decoded sample, and callers get the duration to report.
"""

from __future__ import annotations

import contextlib
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from pipeline.fsutil import tmp_name_for

TARGET_RATE = 16000


@dataclass(frozen=True)
class AudioInfo:
    """What we know about a (converted) clip."""

    frames: int            # samples per channel at `rate`
    rate: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


class AudioError(Exception):
    """A clip cannot be decoded (corrupt, unsupported, empty). Carries a short reason."""


def decode(path: str | os.PathLike[str] | BinaryIO) -> tuple[np.ndarray, int, int]:
    """Decode a libsndfile-readable file (path or binary file object) to float32 mono samples;
    returns (samples, rate, channels of the source). Raises AudioError."""
    src = path if hasattr(path, "read") else os.fspath(path)  # type: ignore[arg-type]
    try:
        data, rate = sf.read(src, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"cannot decode: {exc}") from None
    channels = data.shape[1]
    if data.shape[0] == 0:
        raise AudioError("no audio samples")
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    return mono, int(rate), channels


def to_16k_pcm16(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample float mono samples to 16 kHz (soxr 'HQ') and quantize to int16 with clipping."""
    if rate != TARGET_RATE:
        samples = soxr.resample(samples, rate, TARGET_RATE, quality="HQ")
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def write_wav(path: str | os.PathLike[str], pcm16: np.ndarray) -> None:
    """Write 16 kHz mono PCM16 wav atomically (temp name + rename), so an existing wav is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name_for(path)
    try:
        # The stdlib writer: libsndfile's close() fsyncs every file, which costs ~4 ms per clip.
        with wave.open(os.fspath(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(TARGET_RATE)
            w.writeframes(pcm16.astype("<i2", copy=False).tobytes())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> AudioInfo:
    """Convert any readable clip to a 16 kHz mono PCM16 wav at `dst`. Raises AudioError."""
    samples, rate, _ = decode(src)
    pcm = to_16k_pcm16(samples, rate)
    if pcm.size == 0:
        raise AudioError("no audio samples after resampling")
    write_wav(dst, pcm)
    return AudioInfo(frames=int(pcm.size), rate=TARGET_RATE, channels=1)


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header info of a file libsndfile can read. Raises AudioError."""
    try:
        i = sf.info(os.fspath(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"cannot read header: {exc}") from None
    return AudioInfo(frames=int(i.frames), rate=int(i.samplerate), channels=int(i.channels))


def is_target_wav(path: str | os.PathLike[str]) -> AudioInfo | None:
    """Info of `path` if it is already a complete 16 kHz mono PCM16 wav, else None."""
    try:
        i = sf.info(os.fspath(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, FileNotFoundError):
        return None
    if i.samplerate != TARGET_RATE or i.channels != 1 or i.subtype != "PCM_16" or i.format != "WAV":
        return None
    # A wav whose data size disagrees with its header was not written by us completely.
    expected = int(i.frames) * 2
    if Path(path).stat().st_size < expected + 44 or i.frames == 0:
        return None
    return AudioInfo(frames=int(i.frames), rate=TARGET_RATE, channels=1)
