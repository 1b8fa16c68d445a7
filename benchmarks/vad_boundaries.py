"""VAD segmentation of `transcribe` against real sentence boundaries (issue #16).

    python benchmarks/vad_boundaries.py <folder with alignment_cases.json and its clips>

For every case (a recording and its aligner's sentence begin/end times, the format of
tests/data/trainingspeech/alignment_cases.json), `pipeline.vad.split_speech` segments the audio
and `pipeline.vad.score_segmentation` counts the true sentence boundaries within 0.5 s of a segment
boundary and the cuts that fall inside speech (a word cut in two). Prints the totals for the
defaults and for a small grid of settings. No timing: the numbers are counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from pipeline import audio
from pipeline.vad import score_segmentation, split_speech


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    cases = json.loads((args.folder / "alignment_cases.json").read_text(encoding="utf-8"))["cases"]
    data = []
    for name, case in sorted(cases.items()):
        samples, rate, _ = audio.decode(args.folder / name)
        data.append((samples, rate, [(s["begin"], s["end"]) for s in case["expected_segments"]]))

    def run(**kw: Any) -> str:
        b = f = c = loud = 0
        for samples, rate, sentences in data:
            sc = score_segmentation(split_speech(samples, rate, **kw), sentences, samples, rate)
            b, f, c, loud = b + sc.boundaries, f + sc.found, c + sc.cuts, loud + len(sc.cuts_in_speech)
        return f"boundaries found {f}/{b} ({100 * f / max(1, b):.0f}%), cut points {c}, cuts in speech {loud}"

    print(f"{len(data)} recordings; defaults: {run()}")
    for agg, sil, pad in itertools.product((1, 2, 3), (0.15, 0.25, 0.3, 0.4), (0.1, 0.25)):
        print(f"aggressiveness {agg} min_silence_s {sil} pad_s {pad}: "
              f"{run(aggressiveness=agg, min_silence_s=sil, pad_s=pad)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
