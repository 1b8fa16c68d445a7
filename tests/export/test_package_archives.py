"""Release archives at model scale (issue #14 item 5): tar streams into a multi-threaded `xz`, so a
0.5 GB checkpoint compresses on every core and no member or archive is ever held in memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipeline.errors import ExternalToolError
from pipeline.export.package import compress_threads, write_archive, xz_command
from pipeline.tools import pipe_through_tool
from tests.helpers import REPO, SUBPROCESS_TIMEOUT

MB = 1 << 20


def _xz_blocks(archive: Path) -> list[list[str]]:
    """The `block` rows of `xz --list --robot -vv`: one per independently compressed block."""
    out = subprocess.run(["xz", "--list", "--robot", "-vv", str(archive)], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.startswith("block\t")]


def _sha256(fh, size: int = MB) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(size):
        h.update(chunk)
    return h.hexdigest()


def test_compression_uses_every_core_by_default_and_output_does_not_depend_on_it(tmp_path):
    """WORKERS=0 means one xz thread per CPU; the archive is xz's multi-threaded format (several
    independent blocks with their sizes in the headers, which only that mode writes), and is
    byte-identical whatever the thread count (reproducible releases across machines)."""
    assert compress_threads(0) == (os.cpu_count() or 1)
    assert compress_threads(3) == 3
    assert f"--threads=+{os.cpu_count()}" in xz_command(compress_threads(0))
    big = tmp_path / "weights.bin"
    with open(big, "wb") as fh:  # 60 MiB of a cheap-to-compress pattern: 3 blocks of 24 MiB
        fh.truncate(60 * MB)
    members = [(big, "checkpoint_fr/weights.bin")]
    one, many = tmp_path / "t1.tar.xz", tmp_path / "t2.tar.xz"
    write_archive(one, members, threads=1)
    write_archive(many, members, threads=compress_threads(0))
    blocks = _xz_blocks(many)
    assert len(blocks) == 3, blocks
    # column 13: "cu" = compressed and uncompressed size stored in the block header
    assert all(b[12] == "cu" for b in blocks), blocks
    assert one.read_bytes() == many.read_bytes()


def test_packaging_a_200_mb_member_streams_in_bounded_memory(tmp_path):
    """A child process packages a 200 MB file: its own peak RSS stays far below the file's size
    (the member is streamed, and the compressed archive never passes through Python: xz writes
    the temp file itself), xz's peak stays within its per-thread bound, and the archive round-trips."""
    big = tmp_path / "ckpt.data-00000-of-00001"
    with open(big, "wb") as fh:
        fh.write(os.urandom(MB))  # a non-zero head, then a sparse tail: fast to write and to pack
        fh.truncate(200 * MB)
    small = tmp_path / "ckpt.index"
    small.write_bytes(b"index")
    archive = tmp_path / "checkpoint_fr.tar.xz"
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from pipeline.export.package import write_archive\n"
        "a, b, out = map(Path, sys.argv[1:4])\n"
        "write_archive(out, [(a, 'checkpoint_fr/' + a.name), (b, 'checkpoint_fr/' + b.name)], 2)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big pytest
        # process would report the parent's peak
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(json.dumps({'self_mb': int(hwm) / 1024,\n"
        "                  'xz_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, str(big), str(small), str(archive)],
                          capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    rss = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rss["self_mb"] < 100, rss          # ~20 MB: the 200 MB member is never in it
    assert 0 < rss["xz_mb"] < 2 * 200, rss    # ~120 MB per xz thread at -6 (2 threads here)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with tarfile.open(archive, "r:xz") as t, open(big, "rb") as orig:
        assert t.getnames() == ["checkpoint_fr/" + big.name, "checkpoint_fr/" + small.name]
        packed = t.extractfile("checkpoint_fr/" + big.name)
        assert packed is not None and _sha256(packed) == _sha256(orig)
        assert t.extractfile("checkpoint_fr/" + small.name).read() == b"index"  # type: ignore[union-attr]


def test_a_failing_compressor_leaves_no_archive_and_says_why(tmp_path):
    """A compressor that exits non-zero mid-stream: ExternalToolError with its stderr, the final
    name is never created (the temp file is removed by the atomic write)."""
    from pipeline.fsutil import atomic_write

    out = tmp_path / "x.tar.xz"
    with pytest.raises(ExternalToolError, match="exited with code 3.*boom"):
        with atomic_write(out, "wb", encoding=None) as fh, \
                pipe_through_tool([sys.executable, "-c", "import sys; sys.stdin.read(10); "
                                   "sys.stderr.write('boom'); sys.exit(3)"], fh) as pipe:
            for _ in range(64):
                pipe.write(bytes(MB))
    assert list(tmp_path.iterdir()) == []
