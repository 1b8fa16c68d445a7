"""ctypes harness for the legacy runtimes: libdeepspeech.so 0.9.3 (TF and TFLite builds) and
libstt.so 1.4.0, unpacked from their cp39 wheels by scripts/fetch_legacy_runtimes.sh.

Each transcription runs in a child process (`python tests/legacy_runtime.py ...`): a runtime that
rejects or crashes on a model must fail one test, not the test process, and the two
libdeepspeech.so builds export the same symbols so they cannot share a process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DS_LEGACY_CACHE", Path.home() / ".cache/ds-pipeline/legacy"))

# runtime name -> (unpacked wheel dir, library, symbol prefix)
RUNTIMES = {
    "deepspeech": ("deepspeech", "deepspeech/lib/libdeepspeech.so", "DS"),          # .pb / .pbmm
    "deepspeech_tflite": ("deepspeech_tflite", "deepspeech/lib/libdeepspeech.so", "DS"),
    "stt": ("stt", "stt/lib/libstt.so", "STT"),                                      # .tflite only
}


def library_path(runtime: str) -> Path:
    sub, lib, _ = RUNTIMES[runtime]
    return CACHE / sub / lib


def ensure_runtimes() -> str | None:
    """Fetch the wheels if needed; return None when all are there, else why not."""
    if all(library_path(r).exists() for r in RUNTIMES):
        return None
    proc = subprocess.run(["bash", str(REPO / "scripts/fetch_legacy_runtimes.sh"), str(CACHE)],
                          capture_output=True, text=True, env={**os.environ,
                                                               "PYTHON": sys.executable})
    if proc.returncode != 0 or not all(library_path(r).exists() for r in RUNTIMES):
        return f"legacy runtime wheels could not be fetched: {proc.stderr.strip()[-500:]}"
    return None


@dataclass
class LegacyResult:
    transcripts: list[str]
    load_s: float
    stt_s: list[float]
    log: str
    rss_kb: dict[str, int]  # before/after_load (VmRSS) and peak (VmHWM) of the child process


def transcribe(runtime: str, model: Path, wavs: list[Path], scorer: Path | None = None,
               beam_width: int | None = None, timeout: float | None = None) -> LegacyResult:
    """Transcribe mono PCM16 `wavs` at the model's sample rate (16 kHz unless exported with
    AUDIO_SAMPLE_RATE) with `runtime` in a child process."""
    from tests.helpers import SUBPROCESS_TIMEOUT  # here: this file also runs as a script

    timeout = SUBPROCESS_TIMEOUT if timeout is None else timeout
    cmd = [sys.executable, str(Path(__file__).resolve()), "--runtime", runtime, "--model",
           str(model)]
    if scorer is not None:
        cmd += ["--scorer", str(scorer)]
    if beam_width is not None:
        cmd += ["--beam-width", str(beam_width)]
    cmd += [str(w) for w in wavs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{runtime} on {model.name} failed (rc {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = {k[4:-3]: v for k, v in out.items() if k.startswith("rss_")}
    return LegacyResult(out["transcripts"], out["load_s"], out["stt_s"], proc.stderr, rss)


# ---------------------------------------------------------------------------------------------
# Child process side
# ---------------------------------------------------------------------------------------------
def _load(runtime: str) -> tuple[ctypes.CDLL, str]:
    sub, lib, prefix = RUNTIMES[runtime]
    path = CACHE / sub / lib
    if not path.exists():
        raise SystemExit(f"{path} missing: run scripts/fetch_legacy_runtimes.sh")
    if runtime == "stt":  # libstt.so links libkenlm.so by soname: preload it globally
        ctypes.CDLL(str(path.parent / "libkenlm.so"), mode=ctypes.RTLD_GLOBAL)
    return ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL), prefix


def _read_pcm16(path: Path, rate: int = 16000) -> bytes:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != rate or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: this model needs {rate} Hz mono PCM16 (the C clients do not "
                             f"resample either)")
        return w.readframes(w.getnframes())


def _rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=sorted(RUNTIMES), required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--scorer")
    ap.add_argument("--beam-width", type=int)
    ap.add_argument("wavs", nargs="*")
    args = ap.parse_args(argv)
    lib, p = _load(args.runtime)
    f = lambda name: getattr(lib, f"{p}_{name}")
    f("CreateModel").argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    f("CreateModel").restype = ctypes.c_int
    f("ErrorCodeToErrorMessage").restype = ctypes.c_void_p
    f("ErrorCodeToErrorMessage").argtypes = [ctypes.c_int]
    f("EnableExternalScorer").argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    f("SpeechToText").argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_short), ctypes.c_uint]
    f("SpeechToText").restype = ctypes.c_void_p
    f("FreeString").argtypes = [ctypes.c_void_p]
    f("FreeModel").argtypes = [ctypes.c_void_p]
    f("SetModelBeamWidth").argtypes = [ctypes.c_void_p, ctypes.c_uint]
    f("GetModelSampleRate").argtypes = [ctypes.c_void_p]
    f("GetModelSampleRate").restype = ctypes.c_int

    def err(code: int) -> str:
        ptr = f("ErrorCodeToErrorMessage")(code)
        msg = ctypes.string_at(ptr).decode() if ptr else str(code)
        return f"{msg} (0x{code:x})"

    rss0 = _rss_kb()
    state = ctypes.c_void_p()
    t0 = time.perf_counter()
    rc = f("CreateModel")(args.model.encode(), ctypes.byref(state))
    load_s = time.perf_counter() - t0
    rss_load = _rss_kb()
    if rc != 0:
        print(f"CreateModel failed: {err(rc)}", file=sys.stderr)
        return 3
    if args.scorer:
        rc = f("EnableExternalScorer")(state, args.scorer.encode())
        if rc != 0:
            print(f"EnableExternalScorer failed: {err(rc)}", file=sys.stderr)
            return 4
    if args.beam_width:
        f("SetModelBeamWidth")(state, args.beam_width)
    texts, times = [], []
    rate = f("GetModelSampleRate")(state)  # the runtime reads it from the model's metadata
    for wav in args.wavs:
        pcm = _read_pcm16(Path(wav), rate)
        n = len(pcm) // 2
        buf = (ctypes.c_short * n).from_buffer_copy(pcm)
        t0 = time.perf_counter()
        ptr = f("SpeechToText")(state, buf, n)
        times.append(time.perf_counter() - t0)
        # errors="replace": a bytes-mode model can emit an invalid UTF-8 sequence
        texts.append(ctypes.string_at(ptr).decode("utf-8", errors="replace") if ptr else "")
        if ptr:
            f("FreeString")(ptr)
    f("FreeModel")(state)
    print(json.dumps({"transcripts": texts, "load_s": load_s, "stt_s": times, "sample_rate": rate,
                      "rss_before_kb": rss0, "rss_after_load_kb": rss_load,
                      "rss_peak_kb": _rss_kb("VmHWM")}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
