"""Inference speed: `ds-pipeline transcribe` on the int8 `.tflite` vs libdeepspeech 0.9.3 (TFLite
build) on the same model and the same audio, pinned to one CPU; plus `.pbmm` vs `.pb` load time and
memory in libdeepspeech 0.9.3 (TF build).

    python benchmarks/inference_speed.py [--models DIR] [--n-hidden 2048] [--audio F.wav]...
                                         [--seconds 30] [--beam-width 500] [--json OUT]

Without --models a model with seeded random weights is exported (speed does not depend on the
weights' values, only on the geometry); without --audio espeak-ng French speech is synthesized.
Needs scripts/fetch_legacy_runtimes.sh to have run (it is called if the runtimes are missing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import legacy_runtime  # noqa: E402


def _random_model(out: Path, n_hidden: int) -> Path:
    from pipeline.export.graph import LSTM_BIAS, LSTM_KERNEL, export_models
    from pipeline.langs import load_pack

    alphabet = load_pack("fr").alphabet
    h, c = n_hidden, alphabet.num_classes
    shapes = {"layer_1/weights": (494, h), "layer_1/bias": (h,), "layer_2/weights": (h, h),
              "layer_2/bias": (h,), "layer_3/weights": (h, h), "layer_3/bias": (h,),
              LSTM_KERNEL: (2 * h, 4 * h), LSTM_BIAS: (4 * h,), "layer_5/weights": (h, h),
              "layer_5/bias": (h,), "layer_6/weights": (h, c), "layer_6/bias": (c,)}
    w = {k: (np.random.default_rng([7, i]).standard_normal(s) / np.sqrt(s[0])).astype(np.float32)
         for i, (k, s) in enumerate(shapes.items())}
    # Peaky output distributions like a trained model's (flat ones make beam search the
    # bottleneck of both runtimes and say nothing about real use).
    w["layer_6/weights"] *= 12.0
    export_models(w, alphabet, out, n_hidden, 500, "fr-FR")
    return out


def _speech(out: Path, seconds: float) -> Path:
    import soundfile as sf

    from tests.export.helpers import synth  # the test helper: espeak-ng through the espeakng-loader wheel

    text = ("le soleil se lève sur la ville et les enfants partent à l'école pendant que les "
            "parents prennent le train pour aller travailler")
    clip = synth([text], out / "clip")[0]
    x, _ = sf.read(str(clip), dtype="float32")
    reps = int(np.ceil(seconds * 16000 / (len(x) + 8000)))
    audio = np.concatenate([np.concatenate([x, np.zeros(8000, np.float32)])] * reps)
    audio = audio[:int(seconds * 16000)]
    path = out / "speech.wav"
    sf.write(str(path), audio, 16000, subtype="PCM_16")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, help="dir with output_graph{.pb,.pbmm,.tflite}")
    ap.add_argument("--n-hidden", type=int, default=2048)
    ap.add_argument("--audio", type=Path, action="append", default=[])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--beam-width", type=int, default=500)
    ap.add_argument("--cpu", type=int, default=0, help="CPU both runtimes are pinned to")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best one counts")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    why = legacy_runtime.ensure_runtimes()
    if why:
        print(why, file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {args.cpu})  # 1 thread for us; inherited by the runtime processes
    tmp = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    models = args.models or _random_model(tmp / "models", args.n_hidden)
    files = args.audio or [_speech(tmp, args.seconds)]
    durations = []
    for f in files:
        import soundfile as sf

        durations.append(sf.info(str(f)).duration)
    audio_s = float(sum(durations))
    tflite = models / "output_graph.tflite"

    from pipeline.export.runtime import load_model
    from pipeline.transcribe import Transcriber

    t0 = time.perf_counter()
    tr = Transcriber(load_model(tflite, threads=1), beam_width=args.beam_width)
    ours_load = time.perf_counter() - t0
    tr.transcribe_file(files[0])  # warm-up (allocations, decoder set-up)
    greedy = Transcriber(tr.model, greedy=True)
    # The machine is shared: alternate the two runtimes and keep each one's best round.
    ours_s = greedy_s = ds_s = float("inf")
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ours_texts = [tr.transcribe_file(f)["transcript"] for f in files]
        ours_s = min(ours_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for f in files:
            greedy.transcribe_file(f)
        greedy_s = min(greedy_s, time.perf_counter() - t0)
        ds = legacy_runtime.transcribe("deepspeech_tflite", tflite, [files[0], *files],
                                       beam_width=args.beam_width)
        ds_s = min(ds_s, float(sum(ds.stt_s[1:])))  # the first call is the warm-up
    res: dict = {
        "n_hidden_or_models": str(args.models or args.n_hidden), "audio_s": audio_s,
        "beam_width": args.beam_width, "cpu_pinned": args.cpu, "rounds": args.rounds,
        "load_average": os.getloadavg(),
        "tflite_int8_bytes": tflite.stat().st_size,
        "ours": {"load_s": ours_load, "transcribe_s": ours_s, "rtf": ours_s / audio_s,
                 "rtf_greedy_no_beam_search": greedy_s / audio_s},
        "libdeepspeech_0.9.3_tflite": {"load_s": ds.load_s, "transcribe_s": ds_s,
                                       "rtf": ds_s / audio_s},
        "same_transcripts": ours_texts == ds.transcripts[1:],
    }
    res["ratio_ours_over_libdeepspeech"] = ours_s / ds_s
    for kind in ("pb", "pbmm"):
        r = legacy_runtime.transcribe("deepspeech", models / f"output_graph.{kind}", [])
        res[f"libdeepspeech_0.9.3_{kind}"] = {
            "bytes": (models / f"output_graph.{kind}").stat().st_size, "load_s": r.load_s,
            "rss_added_by_load_mb": (r.rss_kb["after_load"] - r.rss_kb["before"]) / 1024,
            "rss_peak_mb": r.rss_kb["peak"] / 1024}
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
