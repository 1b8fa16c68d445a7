"""Release archives in the data-dir root (the seeds' names), byte-reproducible.

- `<ll>-<ll>.zip`: output_graph.tflite, kenlm.scorer, alphabet.txt, the model card
- `model_tensorflow_<ll>.tar.xz`: output_graph.pbmm, alphabet.txt, kenlm.scorer
- `model_tflite_<ll>.tar.xz`: output_graph.tflite, alphabet.txt, kenlm.scorer
- `checkpoint_<ll>.tar.xz`: the best-dev checkpoint directory

Members are streamed from their files into the compressor, never held whole, and no archive is
held in memory: tar streams into `xz` (multi-threaded, one thread per CPU or WORKERS), which writes
the temp file that is renamed into place. xz's multi-threaded mode (`-T+N`, independent blocks of
XZ_BLOCK_SIZE) gives byte-identical output for any thread count, so archives stay reproducible
across machines; memory is bounded by xz (about 3 blocks + the LZMA2 encoder state per thread,
≈ 0.2 GB per thread at -6) and capped by XZ_MEMLIMIT, which lowers the thread count, never the
output.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import MissingInputError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_write, write_text
from pipeline.langs import load_pack
from pipeline.paths import Paths
from pipeline.tools import find_tool, pipe_through_tool

log = logging.getLogger(__name__)


def archive_contents(cfg: Config, paths: Paths) -> dict[Path, list[tuple[Path, str]]]:
    """{archive: [(source file, name in archive)]}; the model card is added to the zip."""
    pack = load_pack(cfg.general.model_language, paths.root)
    lang = pack.code
    common = [(paths.alphabet, "alphabet.txt"), (paths.scorer, "kenlm.scorer")]
    ckpt = sorted(p for p in paths.best_checkpoint_dir.rglob("*") if p.is_file()) \
        if paths.best_checkpoint_dir.is_dir() else []
    return {
        paths.release_zip(pack.export_zip_name): [
            (paths.output_graph_tflite, "output_graph.tflite"), *common,
            (paths.model_card, paths.model_card.name)],
        paths.package_archive("model_tensorflow", lang): [
            (paths.output_graph_pbmm, "output_graph.pbmm"), *common],
        paths.package_archive("model_tflite", lang): [
            (paths.output_graph_tflite, "output_graph.tflite"), *common],
        paths.package_archive("checkpoint", lang): [
            (p, f"checkpoint_{lang}/{p.relative_to(paths.best_checkpoint_dir)}") for p in ckpt],
    }


# Fixed member times and owners: the same inputs give byte-identical archives (reproducible
# releases, and a rerun after a crash produces what an uninterrupted run would have).
ARCHIVE_DATE = (2020, 1, 1, 0, 0, 0)
ARCHIVE_MTIME = 1_577_836_800  # 2020-01-01T00:00:00Z


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


# xz settings: preset 6 is what Python's lzma (our former compressor) and `xz` default to; the
# block size is xz's default for -6 (3 x the 8 MiB dictionary), fixed so output never depends on
# the xz version's defaults.
XZ_PRESET = 6
XZ_BLOCK_SIZE = 24 << 20
XZ_MEMLIMIT = "25%"  # of RAM: xz runs fewer threads (same output) rather than use more


def compress_threads(workers: int) -> int:
    """Threads for archive compression: WORKERS, or one per CPU when it is 0."""
    return workers or (os.cpu_count() or 1)


def xz_command(threads: int) -> list[str]:
    """The `xz` argv that compresses stdin to stdout on `threads` threads. `+N`: multi-threaded
    mode even for one thread, so the archive bytes do not depend on the thread count."""
    xz = find_tool("xz")
    if xz is None:
        raise MissingInputError("program not found: xz (install xz-utils; it writes the .tar.xz "
                                "release archives)")
    return [str(xz), f"-{XZ_PRESET}", f"--threads=+{max(1, threads)}", f"--block-size={XZ_BLOCK_SIZE}",
            f"--memlimit-compress={XZ_MEMLIMIT}", "--check=crc64", "--stdout", "--quiet"]


def write_archive(archive: Path, members: list[tuple[Path, str]], threads: int = 1) -> None:
    missing = [str(src) for src, _ in members if not src.is_file()]
    if missing:
        raise MissingInputError(f"cannot write {archive.name}: missing {', '.join(missing)}")
    if not members:
        raise MissingInputError(f"cannot write {archive.name}: nothing to put in it")
    with atomic_write(archive, "wb", encoding=None) as fh:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for src, name in members:
                    info = zipfile.ZipInfo(name, date_time=ARCHIVE_DATE)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(src, "rb") as fin, z.open(info, "w") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
                    crashpoint("package.zip")  # some members in the temp file, not yet renamed
        else:
            # "w|": a stream (no seeks back), written straight into xz's stdin.
            with pipe_through_tool(xz_command(threads), fh) as pipe, \
                    tarfile.open(fileobj=pipe, mode="w|") as t:
                for src, name in members:
                    t.add(src, arcname=name, recursive=False, filter=_reproducible)
                    crashpoint("package.tar")
    log.info("wrote %s (%.1f MB)", archive, archive.stat().st_size / 1e6)


def write_release(cfg: Config, paths: Paths) -> None:
    from pipeline.report.model_card import build_model_card

    pack = load_pack(cfg.general.model_language, paths.root)
    write_text(paths.model_card, build_model_card(cfg, paths, pack))
    threads = compress_threads(cfg.general.workers)
    for archive, members in archive_contents(cfg, paths).items():
        write_archive(archive, members, threads)
