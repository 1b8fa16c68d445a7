"""Speech segmentation of long recordings with webrtcvad (`webrtcvad-wheels`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 30


@dataclass(frozen=True)
class Segment:
    start: int  # sample index, inclusive
    end: int    # sample index, exclusive


def split_speech(samples: np.ndarray, sample_rate: int = 16000, aggressiveness: int = 2,
                 min_silence_s: float = 0.4, min_speech_s: float = 0.25, pad_s: float = 0.25,
                 max_segment_s: float = 30.0) -> list[Segment]:
    """Speech regions of float samples in [-1, 1] (mono, 8/16/32/48 kHz).

    Voiced 30 ms frames are grouped into regions; gaps shorter than `min_silence_s` are bridged,
    regions shorter than `min_speech_s` dropped, each region padded by `pad_s` (without overlapping
    its neighbours) and regions longer than `max_segment_s` cut into equal parts.
    """
    import webrtcvad

    if sample_rate not in (8000, 16000, 32000, 48000):
        raise ValueError(f"webrtcvad needs 8/16/32/48 kHz audio, got {sample_rate} Hz")
    vad = webrtcvad.Vad(aggressiveness)
    frame = sample_rate * FRAME_MS // 1000
    pcm = (np.clip(samples, -1.0, 1.0 - 1 / 32768) * 32768).astype("<i2")
    n_frames = len(pcm) // frame
    voiced = np.array([vad.is_speech(pcm[i * frame:(i + 1) * frame].tobytes(), sample_rate)
                       for i in range(n_frames)], dtype=bool)
    regions: list[list[int]] = []
    gap = int(round(min_silence_s * 1000 / FRAME_MS))
    for i in np.flatnonzero(voiced).tolist():
        if regions and i - regions[-1][1] <= gap:
            regions[-1][1] = i + 1
        else:
            regions.append([int(i), int(i) + 1])
    min_len = int(round(min_speech_s * 1000 / FRAME_MS))
    regions = [r for r in regions if r[1] - r[0] >= min_len]
    pad = int(pad_s * sample_rate)
    out: list[Segment] = []
    prev_voiced_end = 0
    for a, b in regions:
        start = max(0, a * frame - pad)
        end = min(len(samples), b * frame + pad)
        if out and start < out[-1].end:  # paddings overlap: split the gap in the middle
            mid = (prev_voiced_end + a * frame) // 2
            out[-1] = Segment(out[-1].start, mid)
            start = mid
        out.append(Segment(start, end))
        prev_voiced_end = b * frame
    max_len = int(max_segment_s * sample_rate)
    final: list[Segment] = []
    for s in out:
        n = max(1, -(-(s.end - s.start) // max_len))
        edges = np.linspace(s.start, s.end, n + 1).astype(int)
        final.extend(Segment(int(edges[j]), int(edges[j + 1])) for j in range(n))
    return final
