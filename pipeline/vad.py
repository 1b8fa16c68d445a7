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


# ---------------------------------------------------------------------------------------------
# Measuring a segmentation against known sentence boundaries (issue #16)
# ---------------------------------------------------------------------------------------------
LEVEL_FRAME_S = 0.010


@dataclass(frozen=True)
class SegmentationScore:
    """How a segmentation fits the true sentence boundaries of one recording."""

    boundaries: int            # true sentence boundaries (between consecutive sentences)
    found: int                 # of them, within the tolerance of a segment boundary
    cuts: int                  # segment boundaries inside the recording
    cuts_in_speech: tuple[float, ...]  # cut points (s) where the audio is loud: a word cut in two

    @property
    def boundary_share(self) -> float:
        return self.found / self.boundaries if self.boundaries else 1.0


def cut_points(segments: list[Segment], n_samples: int, sample_rate: int) -> list[float]:
    """Every segment start and end strictly inside the recording, in seconds, sorted."""
    pts = {p for s in segments for p in (s.start, s.end) if 0 < p < n_samples}
    return sorted(p / sample_rate for p in pts)


def loud_at(samples: np.ndarray, sample_rate: int, t: float, window_s: float = 0.02) -> bool:
    """True when every 10 ms frame within `window_s` of `t` is louder than half-way (in dB)
    between the recording's quiet floor (5th percentile frame level) and its speech level (95th):
    a cut there falls inside a word, not in a pause. An energy rule independent of the VAD."""
    frame = max(1, int(LEVEL_FRAME_S * sample_rate))
    n = len(samples) // frame
    if n == 0:
        return False
    frames = samples[:n * frame].astype(np.float64).reshape(n, frame)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    floor, speech = np.percentile(db, 5), np.percentile(db, 95)
    lo = max(0, int((t - window_s) / LEVEL_FRAME_S))
    hi = min(n, int((t + window_s) / LEVEL_FRAME_S) + 1)
    return bool(hi > lo and db[lo:hi].min() > (floor + speech) / 2)


def score_segmentation(segments: list[Segment], sentences: list[tuple[float, float]],
                       samples: np.ndarray, sample_rate: int, tolerance_s: float = 0.5
                       ) -> SegmentationScore:
    """Score `segments` against the (begin, end) times in seconds of the recording's sentences.

    A true boundary is the stretch between one sentence's end and the next one's begin (aligners may
    let them overlap); it is found when a cut point (`cut_points`) lies within `tolerance_s` of it.
    A cut point where the audio is loud (`loud_at`) counts as a word cut in two.
    """
    cuts = cut_points(segments, len(samples), sample_rate)
    spans = sorted(sentences)
    found = 0
    for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
        a, b = min(end, begin), max(end, begin)
        if any(a - tolerance_s <= c <= b + tolerance_s for c in cuts):
            found += 1
    loud = tuple(round(c, 3) for c in cuts if loud_at(samples, sample_rate, c))
    return SegmentationScore(boundaries=max(0, len(spans) - 1), found=found, cuts=len(cuts),
                             cuts_in_speech=loud)
