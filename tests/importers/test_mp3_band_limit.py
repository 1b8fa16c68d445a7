"""Our build of libmpg123 (scripts/build_mpg123.sh + pipeline/data/mpg123-band-limit.patch, issue #14
item 3): without a band it decodes exactly what the system libmpg123 decodes; with the import's
band (audio.decode(for_rate=16000): 10 kHz) the 16 kHz wav is the same apart from the resampler's
onset in a clip's first and last milliseconds; a library built from another patch is not used."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline import audio, mp3
from pipeline.tools import native_lib_dirs

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
SCRIPT = ROOT / "scripts" / "build_mpg123.sh"
BUILT = next((d / mp3.LIB_NAME for d in native_lib_dirs() if (d / mp3.LIB_NAME).is_file()), None)
needs_ours = pytest.mark.skipif(not mp3.band_limited(), reason="band-limited libmpg123 not built "
                                "(scripts/build_mpg123.sh, make mpg123)")


def test_the_built_library_is_the_one_in_use():
    """A build that exists must load (else every test below would skip and hide it)."""
    if BUILT is None or os.environ.get(mp3.ENV):
        pytest.skip("band-limited libmpg123 not built (scripts/build_mpg123.sh, make mpg123)")
    assert mp3.band_limited() and mp3.describe() == "libmpg123, band-limited (scripts/build_mpg123.sh)"
    assert subprocess.run(["bash", str(SCRIPT), "--is-current", str(BUILT.parent)]).returncode == 0


def _clip(path: Path, rate: int, channels: int, seconds: float, kind: str) -> Path:
    """A CV-like voiced tone with wide-band noise, or clicks (transients: short blocks)."""
    rng = np.random.default_rng(rate + channels)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x = x + 0.02 * rng.standard_normal(t.size)
    if kind == "clicks":
        x[:: rate // 7] += 0.6
    data = np.stack([x, np.roll(x, 50)], axis=1) if channels == 2 else x
    sf.write(path, data.astype(np.float32), rate, format="MP3")
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("mp3")
    return [_clip(d / "cv48k.mp3", 48000, 1, 4.0, "voice"),
            _clip(d / "clicks48k.mp3", 48000, 1, 3.0, "clicks"),
            _clip(d / "stereo44k.mp3", 44100, 2, 3.0, "voice"),
            _clip(d / "clicks32k.mp3", 32000, 1, 3.0, "clicks"),
            REAL / "udhr_preamble_first5s_22k.mp3"]


def _decode_with(lib: mp3._Lib | None, path: Path, for_rate: int | None) -> np.ndarray:
    saved = mp3._LIB
    mp3._LIB = lib
    try:
        return audio.decode(path, for_rate=for_rate)[0]
    finally:
        mp3._LIB = saved


@pytest.fixture(scope="module")
def system() -> mp3._Lib:
    name = ctypes.util.find_library("mpg123") or "libmpg123.so.0"
    return mp3._Lib(ctypes.CDLL(name))


@needs_ours
def test_without_a_band_it_decodes_what_the_system_library_decodes(clips, system):
    for clip in clips:
        ours = _decode_with(mp3._LIB, clip, None)
        assert np.array_equal(ours, _decode_with(system, clip, None)), clip.name


@needs_ours
def test_the_import_band_leaves_the_16k_wav_as_it_was(clips, system):
    """Same length; within 1 LSB from 10 ms in. Nearer the ends the resampler's onset differs (the
    decode starts abruptly, and so does the band above 10 kHz in the full decode): by up to a few
    LSB for the tone, more for a clip that starts with a click. And the decode really is
    band-limited: far less above 10.5 kHz, where long blocks keep nothing (short ones, as for
    clicks, decode whole)."""
    for clip in clips:
        ours = _decode_with(mp3._LIB, clip, 16000)
        full = _decode_with(system, clip, None)
        rate = sf.info(str(clip)).samplerate
        a = audio.to_16k_pcm16(ours, rate).astype(np.int32)
        b = audio.to_16k_pcm16(full, rate).astype(np.int32)
        assert a.size == b.size, clip.name
        inner = (a - b)[160:-160]
        assert np.abs(inner).max() <= 1 and np.sqrt(np.mean(inner ** 2.0)) < 0.5, clip.name
        if rate >= 32000:
            high = np.fft.rfftfreq(ours.size, 1 / rate) > 10500
            kept = np.abs(np.fft.rfft(ours))[high].mean() / np.abs(np.fft.rfft(full))[high].mean()
            assert kept < (0.5 if "clicks" in clip.name else 0.1), clip.name


@needs_ours
def test_bad_mp3s_fail_the_same_way_with_the_band(tmp_path, clips):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(clips[0].read_bytes()[: clips[0].stat().st_size // 3])
    with pytest.raises(audio.AudioError, match="truncated: the header promises 4.00s"):
        audio.decode(cut, for_rate=16000)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\xff\xfb\x90\x00" + bytes(1000))
    with pytest.raises(audio.AudioError, match="cannot decode"):
        audio.decode(junk, for_rate=16000)
    with pytest.raises(audio.AudioTooLong, match="4.00s long"):
        audio.decode(clips[0], max_seconds=1.0, for_rate=16000)


def _loaded_in_child(env: dict[str, str]) -> str:
    code = "from pipeline import mp3; print(mp3.band_limited(), mp3.describe())"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


@needs_ours
def test_a_library_built_from_another_patch_is_not_used(tmp_path):
    assert BUILT is not None
    stale = tmp_path / mp3.LIB_NAME
    shutil.copy(BUILT, stale)
    sha = hashlib.sha256(mp3.PATCH.read_bytes()).hexdigest().encode()
    data = stale.read_bytes()
    assert data.count(sha) == 1  # the stamp scripts/build_mpg123.sh writes into the source
    stale.write_bytes(data.replace(sha, b"0" * len(sha)))
    out = _loaded_in_child({mp3.ENV: str(stale)})
    assert out.startswith("False the system libmpg123")
    assert "built from another version of mpg123-band-limit.patch" in out and "make mpg123" in out
    assert _loaded_in_child({mp3.ENV: "0"}).startswith(f"False the system libmpg123 ({mp3.ENV}=0)")


def test_the_build_refuses_sources_that_are_not_the_pinned_ones(tmp_path):
    """Offline (MPG123_SOURCE_DIR) with a look-alike tarball: a clear error, nothing built."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mpg123_1.31.2.orig.tar.bz2").write_bytes(b"not the tarball")
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "lib")], capture_output=True, text=True,
                         env={**os.environ, "MPG123_SOURCE_DIR": str(tmp_path / "src")})
    assert res.returncode == 1
    assert "mpg123_1.31.2.orig.tar.bz2 is not the pinned file" in res.stderr
    assert not (tmp_path / "lib").exists()
