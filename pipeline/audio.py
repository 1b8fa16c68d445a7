"""Audio conversion in process: decode (mp3/ogg/flac/wav via libsndfile), downmix, resample to
16 kHz with soxr, write 16-bit PCM wav atomically. No subprocess per clip (the seeds' bottleneck).

Nothing is trimmed: the output holds every decoded sample, and callers get the duration to report.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from pipeline import mp3
from pipeline.fsutil import create_tmp_for

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


class AudioTooLong(AudioError):
    """The clip is longer than the `max_seconds` given to `decode` (nothing beyond it was read)."""

    def __init__(self, duration: float, exact: bool):
        super().__init__(f"{duration:.2f}s long" if exact else f"longer than {duration:.2f}s")
        self.duration = duration  # the header's length, or where reading stopped
        self.exact = exact


# A clip is truncated when less than this share of the length its header promises decodes (and at
# least TRUNCATED_MIN_S is missing): encoder delay/padding differ by milliseconds, a cut file by more.
TRUNCATED_RATIO = 0.9
TRUNCATED_MIN_S = 0.1


def _wav_missing_bytes(path: str) -> tuple[int, int] | None:
    """(bytes the RIFF `data` chunk declares, bytes present) when a WAV file is cut short, else None.
    libsndfile silently clamps a cut WAV to what is there; the header still tells the truth."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                if size in (0, 0xFFFFFFFF):  # streaming writers leave the size open
                    return None
                present = os.fstat(fh.fileno()).st_size - fh.tell()
                return (size, present) if present < size else None
            fh.seek(size + (size & 1), os.SEEK_CUR)


def _mp3_audio_start(head: bytes) -> int:
    """Offset of the first MPEG frame: past the ID3v2 tag (syncsafe size) if the file has one."""
    if head[:3] == b"ID3" and len(head) >= 10:
        return 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    return 0


def _mp3_length_is_exact(src: str | BinaryIO | bytes) -> bool:
    """An MP3's frame count is exact only with a Xing/Info/VBRI header; without one libsndfile
    estimates it from the first frame's bit rate (wrong for VBR speech that starts with silence).
    `src`: a path or the file's content."""
    if isinstance(src, bytes):
        head = src[:10]
    elif isinstance(src, str):
        with open(src, "rb") as fh:
            head = fh.read(10)
    else:
        return False
    start = _mp3_audio_start(head)
    if isinstance(src, bytes):
        first = src[start:start + 4096]
    else:
        with open(src, "rb") as fh:
            fh.seek(start)
            first = fh.read(4096)
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


# MPEG audio layer III frame headers: sample rates by version bits, bit rates (kbit/s) by MPEG-1 or 2/2.5.
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_KBPS = {True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
             False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}


def _mp3_frame_length(header: bytes | bytearray) -> tuple[int, int] | None:
    """(bytes, samples) of the layer III frame starting with `header`, None if it is not one."""
    h = int.from_bytes(header[:4], "big")
    version, layer, bri, sri = (h >> 19) & 3, (h >> 17) & 3, (h >> 12) & 15, (h >> 10) & 3
    if (h >> 21) & 0x7FF != 0x7FF or layer != 1 or version == 1 or bri in (0, 15) or sri == 3:
        return None
    mpeg1 = version == 3
    rate, kbps = _MP3_RATES[version][sri], _MP3_KBPS[mpeg1][bri]
    return (144 if mpeg1 else 72) * kbps * 1000 // rate + ((h >> 9) & 1), 1152 if mpeg1 else 576


def _mp3_with_frame_count(path: str, estimate: int) -> io.BytesIO | None:
    """The MP3 at `path` with a Xing header stating its real frame count, when libsndfile's
    `estimate` (from the first frame's bit rate, for files without a Xing/Info/VBRI header) is short
    of what the frames hold: libsndfile stops reading at its estimate, silently cutting a VBR file
    (a 128 s reading decoded as 99 s). None when the estimate is not short or the stream is odd."""
    with open(path, "rb") as fh:
        data = fh.read()
    first = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10])) \
        if data[:3] == b"ID3" and len(data) >= 10 else 0
    pos, frames, spf = first, 0, 0
    while pos + 4 <= len(data):
        fl = _mp3_frame_length(data[pos:pos + 4])
        if fl is None:
            break  # an ID3v1 tag or junk at the end
        pos, frames, spf = pos + fl[0], frames + 1, fl[1]
    if frames == 0 or frames * spf <= estimate:
        return None
    header = bytearray(data[first:first + 4])
    header[1] |= 0x01           # no CRC
    header[2] &= 0xFD           # no padding
    mono = header[3] >> 6 == 3
    side = (17 if mono else 32) if (header[1] >> 3) & 3 == 3 else (9 if mono else 17)
    body = bytes(header) + bytes(side) + b"Xing" + (1).to_bytes(4, "big") + frames.to_bytes(4, "big")
    while (fl := _mp3_frame_length(header)) is not None and fl[0] < len(body) and header[2] >> 4 < 14:
        header[2] += 0x10       # a higher bit rate: a frame long enough for the header
        body = bytes(header) + body[4:]
    if fl is None or fl[0] < len(body):
        return None
    return io.BytesIO(data[:first] + body + bytes(fl[0] - len(body)) + data[first:])


def _open(src: str | BinaryIO) -> sf.SoundFile:
    f = sf.SoundFile(src)
    if f.format == "MP3" and isinstance(src, str) and not _mp3_length_is_exact(src):
        whole = _mp3_with_frame_count(src, int(f.frames))
        if whole is not None:
            f.close()
            return sf.SoundFile(whole)
    return f


def _read_mp3(path: str, max_seconds: float | None, max_hz: float | None = None
              ) -> tuple[np.ndarray, int, int, int] | None:
    """(samples, rate, declared frames or 0, limit) of an MP3 decoded by libmpg123 directly (see
    pipeline/mp3.py), or None when `path` is no MP3, libmpg123 is missing or does not decode it
    cleanly (libsndfile then decodes it, with its own messages). Raises AudioTooLong."""
    if not mp3.available():
        return None
    with open(path, "rb", buffering=0) as fh:
        head = fh.read(1 << 14)
        if not mp3.is_mp3(head):
            return None
        # the Xing/Info/VBRI check on the bytes already read, unless an ID3 tag pushes it past them
        exact = _mp3_length_is_exact(head if _mp3_audio_start(head) + 4096 <= len(head) else path)
        fh.seek(0)
        try:
            dec = mp3.decode(fh, max_seconds, exact, max_hz)
        except mp3.Mp3TooLong as exc:
            raise AudioTooLong(exc.frames / exc.rate, True) from None
        except mp3.Mp3Error:
            return None
    if dec.samples.shape[0] == 0:
        return None
    limit = -1 if max_seconds is None else int(max_seconds * dec.rate) + 1
    return dec.samples, dec.rate, dec.length if exact else 0, limit


def decode(path: str | os.PathLike[str] | BinaryIO, max_seconds: float | None = None,
           for_rate: int | None = None) -> tuple[np.ndarray, int, int]:
    """Decode a libsndfile-readable file (path or binary file object) to float32 mono samples;
    returns (samples, rate, channels of the source). Raises AudioError, or AudioTooLong without
    reading past `max_seconds` (a multi-hour file never lands in memory). `for_rate`: the samples
    will be resampled to this rate (to_16k_pcm16), so an MP3's band far above its Nyquist frequency
    need not be decoded (see decode_band_hz)."""
    src: str | BinaryIO = path if hasattr(path, "read") else os.fspath(path)  # type: ignore[assignment]
    max_hz = decode_band_hz(for_rate) if for_rate else None
    fast = _read_mp3(src, max_seconds, max_hz) if isinstance(src, str) else None
    if fast is not None:
        data, rate, declared, limit = fast
        channels = int(data.shape[1])
    else:
        data, rate, channels, declared, limit = _read_sndfile(src, max_seconds)
    got = data.shape[0]
    if got == 0:
        raise AudioError("no audio samples")
    if 0 < limit <= got:
        raise AudioTooLong(max(got, declared) / rate, declared > got)
    if declared > 0 and got < TRUNCATED_RATIO * declared and declared - got > TRUNCATED_MIN_S * rate:
        raise AudioError(f"truncated: the header promises {declared / rate:.2f}s, only "
                         f"{got / rate:.2f}s decodes")
    if isinstance(src, str) and fast is None:
        cut = _wav_missing_bytes(src)
        if cut is not None:
            raise AudioError(f"truncated: the WAV header declares {cut[0]} bytes of audio, the file "
                             f"holds {cut[1]}")
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    return mono, rate, channels


# The band an MP3 decode keeps when its samples are resampled to `rate`: up to 1.25 x the new
# Nyquist frequency (10 kHz for 16 kHz). soxr HQ passes 95 % of the Nyquist frequency and stops
# everything above it, so the lines above add nothing but an onset transient in a clip's first
# and last ~2 ms (measured: identical within 1 LSB from 10 ms in, within 3 LSB from 1 ms in).
DECODE_BAND = 1.25


def decode_band_hz(rate: int) -> float:
    return DECODE_BAND * rate / 2


def _read_sndfile(src: str | BinaryIO, max_seconds: float | None
                  ) -> tuple[np.ndarray, int, int, int, int]:
    """(samples, rate, channels, declared frames or 0, limit) through libsndfile."""
    try:
        with _open(src) as f:
            rate, channels, declared = int(f.samplerate), int(f.channels), int(f.frames)
            if f.format == "MP3" and not _mp3_length_is_exact(src):
                declared = 0  # an estimate: neither "too long" nor "truncated" can rely on it
            limit = -1 if max_seconds is None else int(max_seconds * rate) + 1
            if 0 < limit and declared > 2 * limit:  # clearly too long: not even a partial read
                raise AudioTooLong(declared / rate, True)
            data = f.read(frames=limit, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"cannot decode: {exc}") from None
    return data, rate, channels, declared, limit


# AUDIO_NORMALIZE: every clip's speech brought to one level at import (docs/real-speech.md).
SPEECH_LEVEL_DBFS = -22.0     # the level of a typical close-talking recording (FSDD's loud speakers)
LEVEL_FRAME_S = 0.02          # frames whose RMS is measured
LEVEL_ACTIVE_DB = 30.0        # frames within this of the loudest one are speech
LEVEL_MAX_GAIN_DB = 30.0      # a near-silent clip is not lifted into noise


def speech_level_db(samples: np.ndarray, rate: int) -> float | None:
    """The RMS level in dBFS of a clip's speech: its 20 ms frames within 30 dB of the loudest one
    (pauses and silence do not count, so a clip's level does not depend on how much of it is
    pause). None for digital silence."""
    if samples.size == 0:
        return None
    n = max(1, int(rate * LEVEL_FRAME_S))
    frames = samples[: samples.size // n * n].reshape(-1, n) if samples.size >= n else samples[None, :]
    power = np.einsum("ij,ij->i", frames, frames) / np.float32(frames.shape[1])
    top = float(power.max()) if power.size else 0.0
    if top <= 1e-20:
        return None
    active = power[power >= top * 10 ** (-LEVEL_ACTIVE_DB / 10)]
    return float(10 * np.log10(active.mean(dtype=np.float64)))


def level_gain(samples: np.ndarray, rate: int, target_db: float = SPEECH_LEVEL_DBFS) -> float:
    """The linear gain that brings the clip's speech level to `target_db` (at most +30 dB)."""
    level = speech_level_db(samples, rate)
    if level is None:
        return 1.0
    return float(10 ** (min(target_db - level, LEVEL_MAX_GAIN_DB) / 20))


def to_16k_pcm16(samples: np.ndarray, rate: int, target_rate: int = TARGET_RATE,
                 normalize: bool = False) -> np.ndarray:
    """Resample float mono samples to 16 kHz (or `target_rate`, AUDIO_SAMPLE_RATE) and quantize to
    int16 with clipping. soxr 'HQ' is SoX's default `rate -h` (20-bit precision, 95 % pass band).
    `normalize` (AUDIO_NORMALIZE) first brings the speech level to SPEECH_LEVEL_DBFS, before the
    quantization, so every clip has the same 16-bit floor below its speech."""
    if rate != target_rate:
        samples = soxr.resample(samples, rate, target_rate, quality="HQ")
    scale = 32767.0 * (level_gain(samples, target_rate) if normalize else 1.0)
    # In float32 and in place: one temporary instead of three float64 ones.
    y = np.multiply(samples, np.float32(scale), dtype=np.float32)
    np.clip(y, -32767.0, 32767.0, out=y)
    np.rint(y, out=y)
    return y.astype(np.int16)


WAV_HEADER_BYTES = 44


def wav_header(frames: int, rate: int = TARGET_RATE) -> bytes:
    """The 44-byte RIFF header of a mono PCM16 wav holding `frames` samples (what `wave` writes)."""
    data = 2 * frames
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1,
                       rate, 2 * rate, 2, 16, b"data", data)


def write_wav(path: str | os.PathLike[str], pcm16: np.ndarray, rate: int = TARGET_RATE) -> None:
    """Write a 16 kHz (or `rate`) mono PCM16 wav atomically (temp name + rename), so an existing wav is complete."""
    path = Path(path)
    try:
        fd, tmp = create_tmp_for(path)
    except FileNotFoundError:  # the first wav of its folder
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_tmp_for(path)
    try:
        # Header and samples in one file object, no fsync: libsndfile's close() fsyncs every file
        # (~4 ms per clip) and `wave` seeks back to patch sizes. A wav cut by a crash is caught by
        # `is_target_wav` (its size disagrees with its header) and converted again.
        pcm = np.ascontiguousarray(pcm16, dtype="<i2")
        with open(fd, "wb") as fh:
            fh.write(wav_header(pcm.size, rate))
            fh.write(pcm.data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> AudioInfo:
    """Convert any readable clip to a 16 kHz mono PCM16 wav at `dst`. Raises AudioError."""
    samples, rate, _ = decode(src, for_rate=TARGET_RATE)
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


def is_target_wav(path: str | os.PathLike[str], rate: int = TARGET_RATE) -> AudioInfo | None:
    """Info of `path` if it is already a complete mono PCM16 wav at `rate`, else None."""
    if not os.path.exists(path):  # the common case on a first import; libsndfile's error is slow
        return None
    try:
        i = sf.info(os.fspath(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, FileNotFoundError):
        return None
    if i.samplerate != rate or i.channels != 1 or i.subtype != "PCM_16" or i.format != "WAV":
        return None
    # A wav whose data size disagrees with its header was not written by us completely.
    expected = int(i.frames) * 2
    if Path(path).stat().st_size < expected + 44 or i.frames == 0:
        return None
    return AudioInfo(frames=int(i.frames), rate=rate, channels=1)
