"""Import speed: Common Voice mp3 -> 16 kHz mono PCM16 wav, clips per second.

Ours: `importers.engine.run_rows` (normalize + checks + in-process decode through libmpg123 -- our
band-limited build when scripts/build_mpg123.sh has built it, which skips the lines above 10 kHz --
soxr 'HQ' resampling = SoX's default `rate -h`, write; a pool of WORKERS processes). Baseline: the
DeepSpeech 0.9 `bin/import_cv2.py` way, one `sox` conversion per
clip through the python `sox` package (`Transformer.convert(16000, 1)` + `build`) followed by one
`soxi -s` per clip for the frame count, in a `multiprocessing.Pool` of the same size (DeepSpeech
used `Pool()` = one process per CPU). Both convert the same N clips, measured in the same run.

    python benchmarks/import_speed.py [--clips 1000] [--workers 2] [--repeat 3]

The ratio wanted is the per-clip cost of a long import (Common Voice: 700 k clips). Each method also
pays a fixed cost per run (forking its pool, the workers' first-clip set-up, shutting down: ≈ 55 ms
of CPU for ours with 2 workers), which a short run spreads over few clips: at 300 clips it is 0.18 ms
of ours' ≈ 2.8 ms a clip, at 1000 clips 0.05 ms. Hence 1000 clips by default; --repeat keeps each
method's least disturbed run.

Equal output is checked: both write 16 kHz mono PCM16, ours lasts what the source lasts (within
10 ms; mpg123's gapless decoding drops the encoder delay and padding the LAME header states); sox
(libmad) keeps those ≈ 25-50 ms, which is printed.

Needs the `sox` and `libsox-fmt-mp3` Debian packages for the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from importers.base import SourceRow
from importers.engine import RowSettings, Sample, run_rows
from pipeline import mp3
from pipeline.langs import load_pack
from pipeline.text.normalize import rules_for


def make_clips(out: Path, n: int, seed: int = 1) -> tuple[list[Path], list[float]]:
    """CV-like clips: 48 kHz mono mp3, 2-6 s of voiced-like signal with noise; and their lengths."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    clips, seconds = [], []
    for i in range(n):
        sec = rng.uniform(2.0, 6.0)
        t = np.arange(int(sec * 48000)) / 48000
        f0 = rng.uniform(90, 250)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
        x = env * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        x = (0.2 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        p = out / f"common_voice_fr_{i:06d}.mp3"
        sf.write(p, x, 48000, format="MP3")
        clips.append(p)
        seconds.append(t.size / 48000)
    return clips, seconds


def check_outputs(clips: list[Path], seconds: list[float], ours: Path, ds: Path) -> str:
    """Both outputs are 16 kHz mono PCM16; ours lasts what the source lasts within 10 ms."""
    ours_err, ds_err = [], []
    for clip, sec in zip(clips, seconds, strict=True):
        for wav, errs in ((ours / "wavs" / f"{clip.stem}.wav", ours_err), (ds / f"{clip.stem}.wav", ds_err)):
            i = sf.info(str(wav))
            if (i.samplerate, i.channels, i.subtype) != (16000, 1, "PCM_16"):
                raise SystemExit(f"{wav}: {i.samplerate} Hz, {i.channels} channels, {i.subtype}")
            errs.append(i.frames / 16000 - sec)
    worst = max(abs(e) for e in ours_err)
    if worst > 0.010:
        raise SystemExit(f"ours is {1000 * worst:.1f} ms off the source length")
    return (f"equal output: 16 kHz mono PCM16; length vs source: ours within {1000 * worst:.1f} ms, "
            f"sox +{1000 * min(ds_err):.0f}..{1000 * max(ds_err):.0f} ms (encoder delay + padding kept)")


def _ds_one(args: tuple[str, str]) -> int:
    import sox

    mp3, wav = args
    tfm = sox.Transformer()
    tfm.convert(samplerate=16000, n_channels=1)
    tfm.build(mp3, wav)
    return int(subprocess.check_output(["soxi", "-s", wav], stderr=subprocess.STDOUT))


def cpu_seconds() -> float:
    """CPU time of this process plus its waited-for descendants (pool workers, their sox calls)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fn(*args)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0, cpu_seconds() - c0


def run_deepspeech(clips: list[Path], out: Path, workers: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(str(c), str(out / (c.stem + ".wav"))) for c in clips]
    if workers <= 1:
        for t in tasks:
            _ds_one(t)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            list(pool.imap_unordered(_ds_one, tasks))


def ours_settings(out: Path) -> RowSettings:
    """Built once per import (the language pack's rules), so outside the timed conversion."""
    return RowSettings(corpus_dir=out, rules=rules_for(load_pack("fr")), min_duration=0.5,
                       max_duration=15.0)


def run_ours(clips: list[Path], out: Path, workers: int, settings: RowSettings | None = None) -> None:
    settings = dataclasses.replace(settings, corpus_dir=out) if settings else ours_settings(out)
    rows = [SourceRow(key=c.name, audio=c, wav_rel=f"wavs/{c.stem}.wav",
                      transcript="bonjour tout le monde", speaker="s", origin=c.name) for c in clips]
    res = run_rows(rows, settings, workers, "benchmark")
    kept = sum(isinstance(r, Sample) for r in res)
    if kept != len(clips):
        raise SystemExit(f"only {kept}/{len(clips)} clips converted: {res[:3]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3,
                    help="alternate the methods this many times and keep each one's best time "
                         "(evens out load from other processes on a shared machine)")
    args = ap.parse_args()
    if shutil.which("sox") is None or shutil.which("soxi") is None:
        print("the baseline needs sox: apt-get install sox libsox-fmt-mp3", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        root = Path(tmp)
        clips, seconds = make_clips(root / "clips", args.clips)
        audio_s = sum(sf.info(str(c)).duration for c in clips)
        best = {k: (float("inf"), float("inf")) for k in ("ours", "ds", "ds1")}
        settings = ours_settings(root)
        methods = [("ours", lambda c, o, w: run_ours(c, o, w, settings), args.workers),
                   ("ds", run_deepspeech, args.workers), ("ds1", run_deepspeech, 1)]
        for r in range(max(1, args.repeat)):
            # Each repeat starts one method further along, so none always follows the same one.
            for k, fn, w in methods[r % len(methods):] + methods[:r % len(methods)]:
                wall, cpu = timed(fn, clips, root / f"{k}{r}", w)
                best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
                # Only the first repeat's wavs are checked; the others' (a gigabyte in all) would
                # otherwise be written back to disk under the later runs.
                if r > 0:
                    shutil.rmtree(root / f"{k}{r}")
        checked = check_outputs(clips, seconds, root / "ours0", root / "ds0")
    t_ours, t_ds, t_ds1 = best["ours"][0], best["ds"][0], best["ds1"][0]
    n = args.clips
    print(f"{n} clips ({audio_s / 60:.1f} min of 48 kHz mp3), {args.workers} workers")
    print(f"  ours (MP3 decoder: {mp3.describe()}; soxr HQ; in process): {n / t_ours:7.1f} clips/s")
    print(f"  DeepSpeech 0.9 (sox + soxi per clip), {args.workers} processes: {n / t_ds:7.1f} clips/s")
    print(f"  DeepSpeech 0.9 (sox + soxi per clip), 1 process:  {n / t_ds1:7.1f} clips/s")
    print(f"  ratio ours / DeepSpeech, same worker count: {t_ds / t_ours:.2f}x")
    print(f"  ratio ours ({args.workers} workers) / DeepSpeech 1 process: {t_ds1 / t_ours:.2f}x")
    print(f"  CPU seconds per clip: ours {1000 * best['ours'][1] / n:.1f} ms, DeepSpeech "
          f"{1000 * best['ds'][1] / n:.1f} ms -> CPU-time ratio {best['ds'][1] / best['ours'][1]:.2f}x "
          f"(the wall-clock ratio on an idle machine with enough cores; load now: "
          f"{os.getloadavg()[0]:.1f})")
    print(f"  {checked}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
