"""espeak-ng speech for test fixtures: one process-wide libespeak-ng (espeakng-loader wheel, ctypes).

The sample-corpus generator (pipeline/sample_corpus.py) has its own engine because it renders in fresh
processes for byte-identical archives; tests only need speech, so they share this one.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

_lock = threading.Lock()
_chunks: list[np.ndarray] = []
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3


@functools.lru_cache(maxsize=1)
def _lib() -> tuple[ctypes.CDLL, int, object]:
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    data = espeakng_loader.get_data_path().encode()
    lib.espeak_Initialize.restype = ctypes.c_int
    rate = lib.espeak_Initialize(2, 0, ctypes.c_char_p(data), 0)  # AUDIO_OUTPUT_SYNCHRONOUS
    if rate <= 0:
        raise RuntimeError("espeak_Initialize failed")
    cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                               ctypes.c_void_p)

    def on_audio(wav, n, events):
        if wav and n > 0:
            _chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    cb = cb_type(on_audio)
    lib.espeak_SetSynthCallback(cb)
    return lib, rate, cb  # keep the callback object alive with the library


def speak(text: str, voice: str = "fr", wpm: int = 170, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Synthesize `text`; returns (float32 samples in [-1, 1], sample rate 22050)."""
    with _lock:
        lib, rate, _ = _lib()
        _chunks.clear()
        lib.espeak_SetVoiceByName(voice.encode())
        lib.espeak_SetParameter(_ESPEAK_RATE, wpm, 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
        raw = text.encode("utf-8")
        lib.espeak_Synth(ctypes.c_char_p(raw), len(raw) + 1, 0, 0, 0, 1, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
    return pcm.astype(np.float32) / 32768.0, rate
