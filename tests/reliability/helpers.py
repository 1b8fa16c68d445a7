"""Helpers for the bad-input, disk-full and security tests (tests/reliability/test_bad_input_matrix.py,
test_enospc.py, test_security.py): a small tmpfs when this machine may mount one, a local HTTP server
with scripted failures, Common Voice archives with hand-made TSV bytes, and one tiny trained data dir
shared by the tests that need a checkpoint."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.helpers import run_cli
from tests.importers.archives import Clip, clip_bytes

REPO = Path(__file__).resolve().parents[2]

CV_NAME = "cv-corpus-17.0-2024-03-15-fr.tar.gz"
CV_PREFIX = "cv-corpus-17.0-2024-03-15/fr/"
TINY = {"N_HIDDEN": "16", "BATCH_SIZE": "4", "EPOCHS": "1", "LEARNING_RATE": "0.001", "DROPOUT": "0",
        "EARLY_STOP": "0", "LIVE_TRANSCRIPTS": "0", "CORPORA": "synth", "EXPORT_PARITY_CLIPS": "0",
        "CHECKPOINT_SECS": "0"}  # no wall-clock checkpoints: the same files on any machine


def sets(values: dict[str, str]) -> list[str]:
    """`--set K=V` arguments."""
    out: list[str] = []
    for k, v in values.items():
        out += ["--set", f"{k}={v}"]
    return out


# ---------------------------------------------------------------------------------------------
# tmpfs: the real "disk full" (and a real read-only file system) when mounting is permitted
# ---------------------------------------------------------------------------------------------
@functools.cache
def can_mount() -> bool:
    """True when this process may mount a tmpfs (root with CAP_SYS_ADMIN, as on the build machine).
    DS_TEST_NO_MOUNT=1 forces the fallbacks (fault injection), to test them here too."""
    if os.environ.get("DS_TEST_NO_MOUNT") == "1" or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    d = tempfile.mkdtemp(prefix="ds-mount-probe-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", d], check=True)
        return ok
    finally:
        os.rmdir(d)


def mount_tmpfs(where: Path, size_bytes: int, read_only: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={max(size_bytes, 4096)}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True)


def remount(where: Path, size_bytes: int | None = None, read_only: bool | None = None) -> None:
    opts = ["remount"]
    if size_bytes is not None:
        opts.append(f"size={size_bytes}")
    if read_only is not None:
        opts.append("ro" if read_only else "rw")
    subprocess.run(["mount", "-o", ",".join(opts), str(where)], check=True)


@contextlib.contextmanager
def tmpfs(where: Path, size_bytes: int) -> Iterator[Path]:
    mount_tmpfs(where, size_bytes)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def du(path: Path) -> int:
    """Bytes used by the file system mounted at `path`."""
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# ---------------------------------------------------------------------------------------------
# Archives with TSV bytes written by hand (BOMs, encodings, renamed columns)
# ---------------------------------------------------------------------------------------------
def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 1_600_000_000
    tf.addfile(ti, io.BytesIO(data))


def tsv_bytes(rows: Sequence[dict[str, str]], columns: Sequence[str], encoding: str = "utf-8",
              bom: bytes = b"") -> bytes:
    lines = ["\t".join(columns)] + ["\t".join(r.get(c, "") for c in columns) for r in rows]
    return bom + ("\n".join(lines) + "\n").encode(encoding)


def cv_row(c: Clip) -> dict[str, str]:
    return {"client_id": c.client_id, "path": c.path, "sentence": c.sentence, "up_votes": "2",
            "down_votes": "0", "locale": "fr"}


def write_cv_archive(out: Path, clips: Sequence[Clip], tsvs: dict[str, bytes]) -> Path:
    """A Common Voice .tar.gz with the clips' audio and the given TSV files (name -> bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tf:
        seen: set[str] = set()
        for c in clips:
            if c.path in seen:
                continue
            seen.add(c.path)
            data = clip_bytes(c)
            if data is not None:
                _add(tf, f"{CV_PREFIX}clips/{c.path}", data)
        for name, data in tsvs.items():
            _add(tf, f"{CV_PREFIX}{name}", data)
    return out


# ---------------------------------------------------------------------------------------------
# One tiny trained data dir (N_HIDDEN 16, one epoch) for the checkpoint/export cases
# ---------------------------------------------------------------------------------------------
_TRAINED: dict[str, Path] = {}


def trained_data_dir() -> Path:
    """A data dir with a synthesized corpus (`extracted/synth/`), `models/alphabet.txt` and a finished
    one-epoch N_HIDDEN=16 training (train + best_dev checkpoints, train marker). Built once per
    session; copy it (`copy_data_dir`) before changing anything."""
    if "dir" in _TRAINED:
        return _TRAINED["dir"]
    from tests.train.synth import make_corpus

    root = Path(tempfile.mkdtemp(prefix="ds-reliability-trained-")) / "data"
    make_corpus(root, n_train=12, n_dev=4, n_test=4, seed=5, words=(1, 1))
    res = run_cli("run", "--data-dir", str(root), "--stages", "train", *sets(TINY),
                  env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "checkpoints" / "best_dev").is_dir()
    _TRAINED["dir"] = root
    return root


def copy_data_dir(dest: Path) -> Path:
    shutil.copytree(trained_data_dir(), dest, symlinks=True)
    return dest


def tree_digest(directory: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file below `directory`."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def temp_leftovers(directory: Path) -> list[Path]:
    """Files or dirs below `directory` that look like an interrupted atomic write."""
    return [p for p in directory.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
