"""Disk full during conversion, during export and before extraction.

The real thing when this machine may mount a tmpfs (root with CAP_SYS_ADMIN): the output directory
is a size-limited tmpfs, so the kernel itself answers ENOSPC. Otherwise the same failure is injected
at the same place with DS_PIPELINE_FAIL_AT (pipeline/faults.py), so the test always runs.

Each case checks: one error that names the full directory and says to free space and rerun (exit 1,
no traceback); nothing partial under a final name; no stage marker; the rerun with space completes
and reuses what was finished (converted wavs keep their mtime; the checkpoint is untouched).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from tests.reliability.helpers import (
    CV_NAME,
    TINY,
    can_mount,
    copy_data_dir,
    mount_tmpfs,
    remount,
    run_cli,
    sets,
    temp_leftovers,
    tree_digest,
)

PAGE = 4096
IMPORT_SETS = {"CORPORA": "common_voice", "WORKERS": "2", "MODEL_LANGUAGE": "fr"}


def _pages(n: int) -> int:
    return math.ceil(n / PAGE) * PAGE


def _umount(where: Path) -> None:
    __import__("subprocess").run(["umount", "-l", str(where)], check=False)


def _assert_disk_full_message(stderr: str, directory: Path) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    assert f"while writing into {directory} (" in stderr, stderr[-3000:]
    assert "Free space on that file system" in stderr and "rerun the same command" in stderr


# ---------------------------------------------------------------------------------------------
def test_disk_full_during_conversion(tmp_path: Path) -> None:
    from pipeline import audio
    from tests.importers.archives import make_cv_archive, standard_clips

    data = tmp_path / "data"
    archive = make_cv_archive(data / "sources" / CV_NAME, standard_clips(6, 4))
    extracted = data / "extracted"
    wavs = extracted / "common_voice" / "wavs"
    real = can_mount()
    env = None
    if real:
        # room for the extracted archive and about half of the converted wavs
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            src = sum(_pages(m.size) for m in members)
            wav = 0
            for m in members:
                if m.name.endswith(".mp3"):
                    info = sf.info(io.BytesIO(tf.extractfile(m).read()))  # type: ignore[union-attr]
                    wav += _pages(44 + 2 * math.ceil(info.duration * 16000))
        mount_tmpfs(extracted, src + 16 * PAGE + wav // 2)
    else:
        env = {"DS_PIPELINE_FAIL_AT": "import.convert:12"}
    try:
        res = run_cli("run", "--data-dir", str(data), "--stages", "import", *sets(IMPORT_SETS), env=env)
        assert res.returncode == 1, res.stderr[-3000:]
        _assert_disk_full_message(res.stderr, wavs)
        assert not (data / ".state" / "import.done.json").exists()
        done = {p.name: p.stat().st_mtime_ns for p in wavs.glob("*.wav")}
        assert 0 < len(done) < 24, len(done)
        for name in done:  # every wav under its final name is complete
            assert audio.is_target_wav(wavs / name) is not None, name
        assert not (extracted / "common_voice" / "common_voice_train.csv").exists()
        if real:
            remount(extracted, size_bytes=64 << 20)
        res = run_cli("run", "--data-dir", str(data), "--stages", "import", *sets(IMPORT_SETS))
        assert res.returncode == 0, res.stderr[-3000:]
        assert "already extracted" in res.stderr
        assert {n: (wavs / n).stat().st_mtime_ns for n in done} == done  # reused, not converted again
        assert len(list(wavs.glob("*.wav"))) == 24
        assert not temp_leftovers(extracted)  # temp files of killed workers are cleaned on rerun
        assert (data / ".state" / "import.done.json").exists()
    finally:
        if real:
            _umount(extracted)


def test_disk_full_before_extraction(tmp_path: Path) -> None:
    """The archive declares more than the free space: refused before anything is written."""
    if not can_mount():
        pytest.skip("needs a small tmpfs (root with CAP_SYS_ADMIN); the guard reads the real free space")
    data = tmp_path / "data"
    archive = data / "sources" / CV_NAME
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tf:
        for i in range(3):
            blob = os.urandom(1 << 20)  # incompressible: the ratio is ~1, not a bomb
            ti = tarfile.TarInfo(f"cv/fr/clips/{i}.mp3")
            ti.size = len(blob)
            tf.addfile(ti, io.BytesIO(blob))
    extracted = data / "extracted"
    mount_tmpfs(extracted, 1 << 20)
    try:
        res = run_cli("run", "--data-dir", str(data), "--stages", "import", *sets(IMPORT_SETS))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "MiB are free in" in res.stderr and str(extracted / "common_voice") in res.stderr
        assert "Nothing was extracted" in res.stderr
        assert not (extracted / "common_voice" / "source").exists() and not temp_leftovers(extracted)
    finally:
        _umount(extracted)


# ---------------------------------------------------------------------------------------------
EXPORTS = ("output_graph.pb", "output_graph.pbmm", "output_graph_fp32.tflite", "output_graph.tflite")


def _export(data: Path, env: dict[str, str] | None = None):
    return run_cli("run", "--data-dir", str(data), "--stages", "export", *sets(TINY),
                   env={"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def test_disk_full_during_export(tmp_path: Path) -> None:
    data = copy_data_dir(tmp_path / "data")
    models = data / "models"
    ckpt_before = tree_digest(data / "checkpoints")
    real = can_mount()
    env = None
    if real:
        # measure the four files once, then give models/ room for .pb and .pbmm and half the fp32 tflite
        res = _export(data)
        assert res.returncode == 0, res.stderr[-3000:]
        sizes = {n: (models / n).stat().st_size for n in EXPORTS}
        shutil.rmtree(models)
        (data / ".state" / "export.done.json").unlink()
        alphabet = (data / "checkpoints" / "best_dev" / "alphabet.txt").read_bytes()
        mount_tmpfs(models, _pages(len(alphabet)) + _pages(sizes["output_graph.pb"]) +
                    _pages(sizes["output_graph.pbmm"]) + sizes["output_graph_fp32.tflite"] // 2)
        (models / "alphabet.txt").write_bytes(alphabet)
    else:
        # No tmpfs: the fault point in the tflite write fails with ENOSPC. If that point were renamed
        # or removed, the export would succeed and the asserts below fail (never a skip).
        env = {"DS_PIPELINE_FAIL_AT": "export.tflite"}
    try:
        res = _export(data, env)
        assert res.returncode == 1, res.stderr[-3000:]
        _assert_disk_full_message(res.stderr, models)
        # it failed at the tflite write (with GBs free, only the fault point can fail it there):
        # the graphs before it were written completely
        assert (models / "output_graph.pb").stat().st_size > 0
        assert (models / "output_graph.pbmm").stat().st_size > 0
        assert not (data / ".state" / "export.done.json").exists()
        assert not (models / "output_graph_fp32.tflite").exists()  # nothing partial under a final name
        assert not (models / "output_graph.tflite").exists()
        assert not temp_leftovers(models)
        assert tree_digest(data / "checkpoints") == ckpt_before
        if real:
            remount(models, size_bytes=64 << 20)
        res = _export(data)
        assert res.returncode == 0, res.stderr[-3000:]
        for name in EXPORTS:
            assert (models / name).stat().st_size > 0
        for name in EXPORTS[2:]:
            assert (models / name).read_bytes()[4:8] == b"TFL3"
        assert (data / ".state" / "export.done.json").exists()
        assert tree_digest(data / "checkpoints") == ckpt_before
    finally:
        if real:
            _umount(models)
