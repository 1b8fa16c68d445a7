"""The segmentation measure of `transcribe`'s VAD against real sentence boundaries (issue #16):
a LibriVox reading from TrainingSpeech with its aligner's sentence times (tests/data/trainingspeech)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import audio
from pipeline.vad import Segment, cut_points, score_segmentation, split_speech

DATA = Path(__file__).resolve().parent.parent / "data" / "trainingspeech"


def _case() -> tuple:
    case = json.loads((DATA / "alignment_cases.json").read_text(encoding="utf-8"))["cases"]["speech.wav"]
    samples, rate, _ = audio.decode(DATA / "speech.wav")
    sentences = [(s["begin"], s["end"]) for s in case["expected_segments"]]
    return samples, rate, sentences


def test_default_vad_finds_the_sentence_boundary_and_cuts_no_word():
    samples, rate, sentences = _case()
    score = score_segmentation(split_speech(samples, rate), sentences, samples, rate)
    assert score.boundaries == 1 and score.found == 1 and score.boundary_share == 1.0
    assert score.cuts >= 2 and score.cuts_in_speech == ()


def test_measure_flags_cuts_inside_words_and_missed_boundaries():
    samples, rate, sentences = _case()
    # fixed 1.5 s cuts, blind to the speech: mid-sentence, mid-word, far from the boundary (5.8-6.0 s)
    edges = [0.0, 1.5, 3.0, 4.5, 7.5, len(samples) / rate]
    blind = [Segment(int(a * rate), int(b * rate)) for a, b in zip(edges, edges[1:], strict=False)]
    score = score_segmentation(blind, sentences, samples, rate)
    assert score.found == 0 and score.boundary_share == 0.0
    assert len(score.cuts_in_speech) >= 2
    # a cut in the pause between the sentences is found and not in speech
    pause = [Segment(0, int(5.9 * rate)), Segment(int(5.9 * rate), len(samples))]
    score = score_segmentation(pause, sentences, samples, rate)
    assert score.found == 1 and score.cuts_in_speech == ()


def test_cut_points_exclude_the_recording_edges():
    segs = [Segment(0, 100), Segment(120, 200), Segment(200, 300)]
    assert cut_points(segs, 300, 100) == [1.0, 1.2, 2.0]
