"""Test audio made by code: espeak-ng speech (espeakng-loader wheel, ctypes) and numpy tones."""

from __future__ import annotations

import numpy as np

from tests.espeak import speak  # noqa: F401  (re-exported for the importer fixtures)


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x
