"""MP3 decoding straight through the system's libmpg123 (ctypes), the import's hottest loop.

libsndfile decodes MP3 with the same libmpg123 (statically linked into soundfile's wheel, so not
callable from here), but around it spend ~10 % more CPU per clip (its own buffering and float
conversion, two opens per clip, the cffi file object) and it stops reading a header-less VBR file
at its first-frame length estimate. Here mpg123 decodes float32 samples at the native rate
(gapless: the LAME encoder delay and padding are removed, as libsndfile does) into one numpy buffer
per clip, and always reads to the last frame. Output is bit-identical to libsndfile's.

`available()` is False where libmpg123 is missing (Debian/Ubuntu: `libmpg123-0`); `pipeline.audio`
then decodes through libsndfile, with the same results, more slowly.

The library is preferably our own build (scripts/build_mpg123.sh: Debian 12's libmpg123 plus
data/mpg123-band-limit.patch, `libds_mpg123.so`), which can skip the spectral lines above a frequency
(`decode(max_hz=)`) instead of decoding them: a caller that resamples to 16 kHz loses nothing and
the decode costs 10-15 % less. Without it (or with DS_PIPELINE_MPG123=0) the system libmpg123 decodes
every line; with max_hz=None both give the same samples.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.tools import load_stamped_library

# mpg123.h (API version 45+, libmpg123 >= 1.25): parameters, flags, encodings, return codes.
_ADD_FLAGS, _REMOVE_FLAGS = 2, 13
_FLAG_QUIET, _FLAG_GAPLESS, _FLAG_FORCE_FLOAT = 0x20, 0x40, 0x400
_ENC_FLOAT_32 = 0x200
_MONO, _STEREO = 1, 2
_OK, _ERR, _NEED_MORE, _NEW_FORMAT, _DONE = 0, -1, -10, -11, -12
_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# mpg123's decoder delay (its GAPLESS_DELAY): gapless mode drops it whenever the stream's extent is
# known (a Xing/Info/VBRI header, which libsndfile's path always supplies); without one mpg123
# outputs it, so it is dropped here too, keeping both paths bit-identical.
DECODER_DELAY = 529
# Our build of libmpg123 (scripts/build_mpg123.sh), stamped with the SHA-256 of this patch.
LIB_NAME = "libds_mpg123.so"
PATCH = Path(__file__).parent / "data" / "mpg123-band-limit.patch"
# Set to a library path to use that file, or to 0 to use the system libmpg123.
ENV = "DS_PIPELINE_MPG123"


class Mp3Error(Exception):
    """mpg123 cannot open or decode the stream (its own message)."""


class Mp3TooLong(Mp3Error):
    """The header's exact length is over twice the limit: nothing was decoded."""

    def __init__(self, frames: int, rate: int):
        super().__init__(f"{frames / rate:.2f}s long")
        self.frames, self.rate = frames, rate


@dataclass
class Decoded:
    samples: np.ndarray     # float32, shape (frames, channels)
    rate: int
    length: int             # frames the header declares (exact with Xing/Info/VBRI, else estimated)


class _Lib:
    """The loaded library and one decoder handle per process (a handle is not shareable across
    forked workers, so it is created lazily in each)."""

    def __init__(self, lib: ctypes.CDLL, band_limit: bool = False):
        c = ctypes
        self.lib = lib
        self.band_limit = band_limit
        if band_limit:
            lib.mpg123_ds_max_hz.argtypes = [c.c_double]
            lib.mpg123_ds_max_hz.restype = None
        lib.mpg123_init.restype = c.c_int
        lib.mpg123_new.restype = c.c_void_p
        lib.mpg123_new.argtypes = [c.c_char_p, c.POINTER(c.c_int)]
        lib.mpg123_param.argtypes = [c.c_void_p, c.c_int, c.c_long, c.c_double]
        lib.mpg123_format_none.argtypes = [c.c_void_p]
        lib.mpg123_format.argtypes = [c.c_void_p, c.c_long, c.c_int, c.c_int]
        lib.mpg123_open_feed.argtypes = [c.c_void_p]
        lib.mpg123_feed.argtypes = [c.c_void_p, c.c_char_p, c.c_size_t]
        lib.mpg123_close.argtypes = [c.c_void_p]
        lib.mpg123_read.argtypes = [c.c_void_p, c.c_void_p, c.c_size_t, c.POINTER(c.c_size_t)]
        lib.mpg123_getformat.argtypes = [c.c_void_p, c.POINTER(c.c_long), c.POINTER(c.c_int),
                                         c.POINTER(c.c_int)]
        lib.mpg123_length.argtypes = [c.c_void_p]
        lib.mpg123_length.restype = c.c_long  # off_t: 64 bits on the 64-bit systems we run on
        lib.mpg123_strerror.argtypes = [c.c_void_p]
        lib.mpg123_strerror.restype = c.c_char_p
        lib.mpg123_init()
        self._handle: int | None = None
        self._pid = -1

    def handle(self) -> int:
        if self._handle is None or self._pid != os.getpid():
            err = ctypes.c_int()
            h = self.lib.mpg123_new(None, ctypes.byref(err))
            if not h:
                raise Mp3Error(f"mpg123_new failed ({err.value})")
            self.lib.mpg123_param(h, _ADD_FLAGS, _FLAG_QUIET | _FLAG_GAPLESS | _FLAG_FORCE_FLOAT, 0.0)
            # Native rate and channels only: never mpg123's own (low quality) resampling.
            self.lib.mpg123_format_none(h)
            for rate in _RATES:
                self.lib.mpg123_format(h, rate, _MONO | _STEREO, _ENC_FLOAT_32)
            self._handle, self._pid = h, os.getpid()
        return self._handle


def _load() -> tuple[_Lib | None, str]:
    """(the decoder, "") with our band-limited build, else (the system's or None, why not ours)."""
    if os.environ.get("DS_PIPELINE_NO_MPG123"):  # benchmarks/tests compare with the libsndfile path
        return None, "DS_PIPELINE_NO_MPG123 is set"
    ours, why = load_stamped_library(LIB_NAME, PATCH, ENV, "mpg123_ds_patch_sha")
    if ours is not None:
        return _Lib(ours, band_limit=True), ""
    for name in (ctypes.util.find_library("mpg123"), "libmpg123.so.0", "libmpg123.dylib"):
        if not name:
            continue
        try:
            return _Lib(ctypes.CDLL(name)), why
        except (OSError, AttributeError):
            continue
    return None, "no libmpg123: apt-get install libmpg123-0"


_LIB, _WHY_NOT_OURS = _load()


def available() -> bool:
    return _LIB is not None


def band_limited() -> bool:
    """Whether decode(max_hz=) skips the lines above max_hz (our build of libmpg123 is loaded)."""
    return _LIB is not None and _LIB.band_limit


def describe() -> str:
    """Which MP3 decoder is in use, and how to get the faster one (for logs and benchmarks)."""
    if _LIB is None:
        return f"libsndfile ({_WHY_NOT_OURS})"
    if _LIB.band_limit:
        return "libmpg123, band-limited (scripts/build_mpg123.sh)"
    return (f"the system libmpg123 ({_WHY_NOT_OURS}); scripts/build_mpg123.sh (make mpg123) builds "
            "the band-limited one, ≈ 10 % faster imports")


def is_mp3(head: bytes) -> bool:
    """An ID3v2 tag or an MPEG audio layer III frame header at the start of the file."""
    if head[:3] == b"ID3":
        return True
    if len(head) < 4:
        return False
    h = int.from_bytes(head[:4], "big")
    version, layer, bri, sri = (h >> 19) & 3, (h >> 17) & 3, (h >> 12) & 15, (h >> 10) & 3
    return (h >> 21) & 0x7FF == 0x7FF and layer == 1 and version != 1 and bri != 15 and sri != 3


FEED_BYTES = 1 << 18


def decode(fh: BinaryIO, max_seconds: float | None = None, length_is_exact: bool = False,
           max_hz: float | None = None) -> Decoded:
    """Decode the MP3 file open as `fh` to float32 at its native rate and channel count. With
    `max_seconds`, reading stops after int(max_seconds * rate) + 1 frames, and when the header's
    length is exact and over twice that, nothing is decoded (Mp3TooLong). With `max_hz` and
    band_limited(), long blocks' spectral lines above max_hz are not decoded (only for a caller that
    filters that band away). Raises Mp3Error for anything mpg123 does not decode cleanly (the
    caller then asks libsndfile, for its messages).

    The file is fed from memory in FEED_BYTES chunks: reading a descriptor itself, mpg123 makes two
    read() calls per frame (~340 system calls for a 4 s clip, ~10 % of the decode time)."""
    if _LIB is None:
        raise Mp3Error("libmpg123 is not available")
    lib, h = _LIB.lib, _LIB.handle()
    if _LIB.band_limit:
        lib.mpg123_ds_max_hz(max_hz or 0.0)
    if lib.mpg123_open_feed(h) != _OK:
        raise Mp3Error(_message(lib, h))

    def feed() -> bool:
        chunk = fh.read(FEED_BYTES)
        if chunk and lib.mpg123_feed(h, chunk, len(chunk)) != _OK:
            raise Mp3Error(_message(lib, h))
        return bool(chunk)

    try:
        return _read(lib, h, feed, max_seconds, length_is_exact)
    finally:
        lib.mpg123_close(h)


def _message(lib: ctypes.CDLL, h: int) -> str:
    return bytes(lib.mpg123_strerror(h) or b"?").decode("utf-8", "replace")


def _read(lib: ctypes.CDLL, h: int, feed: Callable[[], bool], max_seconds: float | None,
          length_is_exact: bool) -> Decoded:
    done = ctypes.c_size_t()
    rate, channels, enc = ctypes.c_long(), ctypes.c_int(), ctypes.c_int()
    # The first read parses the header and announces the format without decoding audio.
    ret = _NEED_MORE
    while ret == _NEED_MORE and feed():
        ret = lib.mpg123_read(h, None, 0, ctypes.byref(done))
    if ret not in (_OK, _NEW_FORMAT) or \
            lib.mpg123_getformat(h, ctypes.byref(rate), ctypes.byref(channels), ctypes.byref(enc)) != _OK:
        raise Mp3Error(_message(lib, h) if ret != _DONE else "no MPEG audio frames")
    fmt = (rate.value, channels.value)
    sr, ch = int(rate.value), int(channels.value)
    length = max(0, int(lib.mpg123_length(h)))
    limit = -1 if max_seconds is None else int(max_seconds * sr) + 1
    if length_is_exact and 0 < limit and length > 2 * limit:
        raise Mp3TooLong(length, sr)
    skip = 0 if length_is_exact else DECODER_DELAY
    if limit > 0:
        limit += skip
    # One allocation sized from the header (+ two frames' slack), grown only for header-less VBR.
    cap = max(length + 2304, 4608)
    if limit > 0:
        cap = min(cap, limit)
    buf = np.empty((cap, ch), np.float32)
    got = 0
    while limit < 0 or got < limit:
        if got == buf.shape[0]:
            grown = buf.shape[0] * 2 if limit < 0 else min(buf.shape[0] * 2, limit)
            buf = np.concatenate([buf, np.empty((grown - buf.shape[0], ch), np.float32)])
        room = buf.shape[0] - got
        ret = lib.mpg123_read(h, buf[got:].ctypes.data, room * ch * 4, ctypes.byref(done))
        got += done.value // (4 * ch)
        if ret == _NEED_MORE and feed():
            continue
        if ret in (_DONE, _NEED_MORE):  # NEED_MORE here: the file is used up
            break
        if ret == _NEW_FORMAT:
            lib.mpg123_getformat(h, ctypes.byref(rate), ctypes.byref(channels), ctypes.byref(enc))
            if (rate.value, channels.value) != fmt:
                raise Mp3Error("the sample rate or channel count changes mid-stream")
        elif ret != _OK:
            raise Mp3Error(_message(lib, h))
    return Decoded(buf[skip:got] if got > skip else buf[:0], sr, length)
