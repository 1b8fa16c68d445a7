"""Packaging speed: a checkpoint-like file of float32 weights -> `.tar.xz`, single-thread vs all cores.

Three ways, alternated in the same run on the same file: the former packager (Python's `lzma`
through `tarfile` "w:xz", preset 6, one thread), `write_archive` with one xz thread, and
`write_archive` with one xz thread per CPU (the default). Prints MB/s, wall and CPU seconds, the
peak RSS of the packaging process and of xz, and the all-cores / single-thread ratios.

    python benchmarks/package_speed.py --mb 96

Trained weights compress poorly (≈ 7 % at -6), and xz -6 runs at ≈ 1.5 MB/s per core on them:
a 2048-wide model's 0.5 GB checkpoint is minutes of CPU, which is why all cores matter.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.export.package import _reproducible, compress_threads, write_archive


def make_weights(path: Path, mb: int, seed: int = 1) -> None:
    """float32 N(0, 0.05) values, like trained dense/LSTM weights, written 16 MiB at a time."""
    rng = np.random.default_rng(seed)
    left = mb << 20
    with open(path, "wb") as fh:
        while left > 0:
            n = min(left, 16 << 20) // 4
            fh.write((rng.standard_normal(n, dtype=np.float32) * 0.05).tobytes())
            left -= 4 * n


def python_lzma(archive: Path, members: list[tuple[Path, str]]) -> None:
    """The packager before issue #14: tarfile + Python's lzma, one thread."""
    with tarfile.open(archive, "w:xz") as t:
        for src, name in members:
            t.add(src, arcname=name, recursive=False, filter=_reproducible)


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=96, help="size of the weights file (MiB)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the methods this many times, "
                    "keep each one's best wall time")
    ap.add_argument("--threads", type=int, default=0, help="threads of the all-cores run (0 = one per CPU)")
    args = ap.parse_args()
    threads = compress_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="package-bench-") as tmp:
        root = Path(tmp)
        src = root / "ckpt-1000.data-00000-of-00001"
        make_weights(src, args.mb)
        members = [(src, f"checkpoint_xx/{src.name}")]
        methods = {
            "python lzma, 1 thread (before)": lambda out: python_lzma(out, members),
            "xz, 1 thread": lambda out: write_archive(out, members, 1),
            f"xz, {threads} threads (default)": lambda out: write_archive(out, members, threads),
        }
        best: dict[str, tuple[float, float, int]] = {}
        for r in range(max(1, args.repeat)):
            for i, (name, fn) in enumerate(methods.items()):
                out = root / f"{i}-{r}.tar.xz"
                c0, t0 = cpu_seconds(), time.perf_counter()
                fn(out)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu, out.stat().st_size)
                out.unlink()
    print(f"{args.mb} MiB of float32 weights, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for name, (wall, cpu, size) in best.items():
        print(f"  {name:32s} {args.mb / wall:6.2f} MiB/s  wall {wall:6.1f} s  CPU {cpu:6.1f} s  "
              f"archive {size / (args.mb << 20):.3f} of the input")
    walls = [w for w, _, _ in best.values()]
    print(f"  ratio all cores / python lzma: {walls[0] / walls[2]:.2f}x; all cores / xz 1 thread: "
          f"{walls[1] / walls[2]:.2f}x (same run)")
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"  peak RSS: this process {me.ru_maxrss / 1024:.0f} MB (python lzma runs in it), "
          f"xz {kids.ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
