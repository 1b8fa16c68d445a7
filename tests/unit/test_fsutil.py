"""Atomic writes, atomic directories and the data-dir lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from pipeline.errors import LockedError
from pipeline.fsutil import DataDirLock, atomic_dir, atomic_write, remove_stale_temps, write_json
from tests.helpers import REPO, run_cli


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write("new")
        assert target.read_text() == "old", "final name untouched until the write completes"
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_and_dir_use_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f") as fh:
            fh.write("x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_killed_process_never_shows_partial_file(tmp_path):
    target = tmp_path / "big.bin"
    code = textwrap.dedent(f"""
        import os, signal
        from pipeline.fsutil import atomic_write
        with atomic_write({str(target)!r}, "wb") as fh:
            fh.write(b"x" * 100000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO)
    assert proc.returncode == -9
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".big.bin.tmp-")
    assert remove_stale_temps(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        assert not target.exists()
    assert (target / "a").read_text() == "1"
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_write_json_unicode(tmp_path):
    write_json(tmp_path / "x.json", {"é": 1})
    assert '"é": 1' in (tmp_path / "x.json").read_text(encoding="utf-8")


def test_lock_refuses_second_holder(tmp_path):
    lock_path = tmp_path / ".state" / "lock"
    with DataDirLock(lock_path):
        with pytest.raises(LockedError, match="another ds-pipeline run"):
            DataDirLock(lock_path).acquire()
    with DataDirLock(lock_path):  # released: can be taken again
        pass


def test_second_concurrent_run_is_refused(tmp_path):
    data = tmp_path / "data"
    with DataDirLock(data / ".state" / "lock"):
        res = run_cli("run", "--data-dir", str(data), "--stages", "preflight")
    assert res.returncode == 1
    assert "another ds-pipeline run" in res.stderr and str(data) in res.stderr
    res = run_cli("run", "--data-dir", str(data), "--stages", "preflight")
    assert res.returncode == 0, res.stderr
