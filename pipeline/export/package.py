"""Release archives in the data-dir root (the seeds' names), byte-reproducible.

- `<ll>-<ll>.zip`: output_graph.tflite, kenlm.scorer, alphabet.txt, the model card
- `model_tensorflow_<ll>.tar.xz`: output_graph.pbmm, alphabet.txt, kenlm.scorer
- `model_tflite_<ll>.tar.xz`: output_graph.tflite, alphabet.txt, kenlm.scorer
- `checkpoint_<ll>.tar.xz`: the best-dev checkpoint directory

Members are streamed from their files into the compressor (1 MiB chunks), never held whole.
"""

from __future__ import annotations

import logging
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


def write_archive(archive: Path, members: list[tuple[Path, str]]) -> None:
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
            with tarfile.open(fileobj=fh, mode="w:xz") as t:
                for src, name in members:
                    t.add(src, arcname=name, recursive=False, filter=_reproducible)
                    crashpoint("package.tar")
    log.info("wrote %s (%.1f MB)", archive, archive.stat().st_size / 1e6)


def write_release(cfg: Config, paths: Paths) -> None:
    from pipeline.report.model_card import build_model_card

    pack = load_pack(cfg.general.model_language, paths.root)
    write_text(paths.model_card, build_model_card(cfg, paths, pack))
    for archive, members in archive_contents(cfg, paths).items():
        write_archive(archive, members)
