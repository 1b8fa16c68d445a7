#!/usr/bin/env python3
"""How a demo model reads sentences it never saw, spoken by voices it never heard (issue #16).

`make demo` holds out dev/test sentences and voices, but they come from the pack's own sentence list.
This measures one step further out: Common Voice CC0 sentences that are *not* in the pack's list
(the ones `scripts/make_sentences.py` ranks just after the pack's selection, so they pass the same
filters), synthesized with the demo corpus's held-out test voices, transcribed by the exported model
greedy and with the scorer:

    python benchmarks/demo_outside.py --data-dir data --cv-dir <common-voice>/server/data/fr

`--seed` must match the demo corpus's (1 in the Makefile) for the voices to be the demo's held-out
ones (they depend on the seed alone, not on the corpus size). Prints CER/WER and writes `--json` if given.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from pipeline.export.runtime import load_model  # noqa: E402
from pipeline.langs import load_pack  # noqa: E402
from pipeline.paths import Paths  # noqa: E402
from pipeline.report.metrics import wer_cer  # noqa: E402
from pipeline.sample_corpus import (  # noqa: E402
    PITCH,
    PITCH_RANGE,
    RATE_WPM,
    Clip,
    Voice,
    distinct_variants,
    load_sentences,
    mild_variants,
    render_clip,
    split_pools,
)
from pipeline.text.normalize import normalize  # noqa: E402
from pipeline.transcribe import Transcriber, trained_on_normalized_levels  # noqa: E402


def outside_sentences(lang: str, cv_dir: Path, count: int) -> list[str]:
    """`count` CC0 sentences ranked right after the pack's selection: same filters, not in the list."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_sentences as ms

    listed = load_sentences(lang)
    ranked = ms.select_cv(lang, cv_dir, len(listed) + count)
    pack = load_pack(lang)
    in_list = {normalize(s, pack) for s in listed}
    out = [s for s in ranked if normalize(s, pack) not in in_list][:count]
    if len(out) < count:
        raise SystemExit(f"{cv_dir}: only {len(out)} sentences outside the pack list")
    return out


def heldout_voices(lang: str, seed: int) -> tuple[list[str], list[str]]:
    """(test voices, train voices) of a demo corpus of this seed, whatever its size."""
    voices, _ = split_pools(lang, seed, load_sentences(lang), mild_variants(distinct_variants(lang)))
    return sorted(voices["test"]), sorted(voices["train"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("data"), help="the demo's data dir")
    ap.add_argument("--cv-dir", type=Path, required=True,
                    help="Common Voice sentence files of the language (server/data/<ll>)")
    ap.add_argument("--lang", default="fr")
    ap.add_argument("--clips", type=int, default=100, help="sentences to synthesize")
    ap.add_argument("--seed", type=int, default=1, help="the demo corpus seed")
    ap.add_argument("--model", type=Path, default=None, help="default: the data dir's .tflite")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    paths = Paths.at(args.data_dir)
    model_path = args.model or paths.output_graph_tflite
    pack = load_pack(args.lang)
    sentences = outside_sentences(args.lang, args.cv_dir, args.clips)
    test_voices, train_voices = heldout_voices(args.lang, args.seed)
    assert not set(test_voices) & set(train_voices)
    rng = np.random.default_rng([args.seed, 16])
    model = load_model(model_path, threads=2)
    level = trained_on_normalized_levels(model_path)  # as `transcribe` does (AUDIO_NORMALIZE)
    greedy = Transcriber(model, greedy=True, normalize=level)
    scored = Transcriber(model, scorer=paths.scorer, normalize=level) if paths.scorer.is_file() else None
    refs, hyp_g, hyp_s = [], [], []
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(sentences):
            voice = Voice(variant=str(rng.choice(test_voices)),
                          rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                          pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                          pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)))
            clip = Clip(index=i + 1, lang=args.lang, split="test", sentence=sentence, voice=voice,
                        seed=int(rng.integers(0, 2**31)))
            mp3, _ = render_clip(clip)
            path = Path(tmp) / clip.filename
            path.write_bytes(mp3)
            refs.append(normalize(sentence, pack) or "")
            hyp_g.append(greedy.transcribe_file(path)["transcript"])
            if scored is not None:
                hyp_s.append(scored.transcribe_file(path)["transcript"])
    wer_g, cer_g = wer_cer(refs, hyp_g)
    result = {"model": str(model_path), "clips": len(refs), "test_voices": test_voices,
              "greedy": {"wer": wer_g, "cer": cer_g}, "seconds": round(time.monotonic() - start, 1)}
    if scored is not None:
        wer_s, cer_s = wer_cer(refs, hyp_s)
        result["scorer"] = {"wer": wer_s, "cer": cer_s}
    result["examples"] = [{"ref": r, "greedy": g} for r, g in list(zip(refs, hyp_g, strict=True))[:5]]
    print(f"{len(refs)} {args.lang} CC0 sentences outside the pack list, held-out voices "
          f"{', '.join(test_voices)}: greedy CER {cer_g:.1%} WER {wer_g:.1%}"
          + (f"; scorer CER {result['scorer']['cer']:.1%} WER {result['scorer']['wer']:.1%}"
             if scored is not None else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
