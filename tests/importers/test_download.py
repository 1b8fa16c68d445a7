"""Downloads against a local HTTP server on 127.0.0.1, and safe extraction of hostile archives."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from importers.base import ImportContext
from pipeline import download as dl
from pipeline.errors import ChecksumMismatch, DownloadError, UnsafeArchiveError
from pipeline.langs import load_pack
from pipeline.paths import Paths
from tests.http_server import LocalServer
from tests.importers.archives import lingua_libre_files, make_zip
from tests.importers.helpers import make_cfg

PAYLOAD = os.urandom(300_000)


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_resume_after_cut(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    server.cut["/big.bin"] = 1
    out = dl.download(server.url("/big.bin"), tmp_path / "big.bin", sha256(PAYLOAD), backoff_s=0.01)
    assert out.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    resumed_at = int(server.requests[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(PAYLOAD) // 2  # resumed from the partial file, not restarted
    assert not (tmp_path / "big.bin.part").exists()


def test_retry_after_server_error(server, tmp_path):
    server.files["/f"] = b"hello"
    server.fail["/f"] = 1
    dl.download(server.url("/f"), tmp_path / "f", backoff_s=0.01)
    assert (tmp_path / "f").read_bytes() == b"hello" and len(server.requests) == 2


def test_404_is_clear_and_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        dl.download(server.url("/nope.zip"), tmp_path / "nope.zip", backoff_s=0.01)
    assert len(server.requests) == 1
    assert not (tmp_path / "nope.zip").exists()


def test_checksum_mismatch_keeps_file_aside_and_extracts_nothing(server, tmp_path):
    archive = make_zip(tmp_path / "Q21-fra-French.zip", lingua_libre_files())
    server.files["/Q21-fra-French.zip"] = archive.read_bytes()
    pack = load_pack("fr")
    settings = dict(pack.corpus_settings)
    settings["lingua_libre"] = {**pack.corpus("lingua_libre"),
                                "url": server.url("/Q21-fra-French.zip"),
                                "checksum": "sha256:" + "0" * 64}
    pack = dataclasses.replace(pack, corpus_settings=settings)
    paths = Paths.at(tmp_path / "data")
    ctx = ImportContext(make_cfg(CORPORA="lingua_libre"), paths, pack)
    from importers import lingua_libre

    with pytest.raises(ChecksumMismatch) as exc:
        lingua_libre.download(ctx)
    assert "expected 0000" in str(exc.value) and ".mismatch" in str(exc.value)
    assert (paths.sources / "Q21-fra-French.zip.mismatch").is_file()
    assert not (paths.sources / "Q21-fra-French.zip").exists()
    assert not ctx.source_dir("lingua_libre").exists()
    # With the right checksum it downloads, extracts, and lists rows.
    settings["lingua_libre"]["checksum"] = sha256(archive.read_bytes())
    ctx = dataclasses.replace(ctx, pack=dataclasses.replace(pack, corpus_settings=settings))
    root = lingua_libre.extract(lingua_libre.download(ctx), ctx)
    assert (root / dl.MARKER).is_file()
    assert len(lingua_libre.list_rows(root, ctx).rows) == 9


# ---------------------------------------------------------------------------------------------
def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("good/file.txt")
        ok.size = 1
        tf.addfile(ok, io.BytesIO(b"x"))
        for m in members:
            tf.addfile(m, io.BytesIO(data) if m.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = link
    m.size = 1 if kind == tarfile.REGTYPE else 0
    return m


@pytest.mark.parametrize("member,what", [
    (_member("../evil.txt"), "'..'"),
    (_member("good/../../evil.txt"), "'..'"),
    (_member("/tmp/evil-abs.txt"), "absolute"),
    (_member("good/link", tarfile.SYMTYPE, "/etc/passwd"), "absolute"),
    (_member("good/link", tarfile.SYMTYPE, "../../outside"), "outside"),
    (_member("good/hard", tarfile.LNKTYPE, "../outside"), "'..'"),
    (_member("good/dev", tarfile.CHRTYPE), "device"),
])
def test_hostile_tar_is_refused(tmp_path, member, what):
    archive = _tar(tmp_path / "evil.tar.gz", [member])
    dest = tmp_path / "out" / "source"
    with pytest.raises(UnsafeArchiveError, match=what):
        dl.extract(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-abs.txt").exists()
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # nothing written, no temp dir left


def test_inside_symlink_is_allowed(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [_member("good/link", tarfile.SYMTYPE, "file.txt")])
    dest = dl.extract(archive, tmp_path / "src")
    assert (dest / "good" / "link").is_symlink() and (dest / dl.MARKER).is_file()


def test_hostile_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", b"x")
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="'..'"):
        dl.extract(archive, tmp_path / "src")
    assert not (tmp_path / "src").exists() and not (tmp_path / "evil.txt").exists()
    archive2 = tmp_path / "evil2.zip"
    with zipfile.ZipFile(archive2, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        dl.extract(archive2, tmp_path / "src")


def test_extract_is_resumable_and_marker_checked(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [])
    dest = dl.extract(archive, tmp_path / "src")
    (dest / "good" / "file.txt").write_text("changed")
    dl.extract(archive, dest)  # same identity: not re-extracted
    assert (dest / "good" / "file.txt").read_text() == "changed"
    (dest / dl.MARKER).unlink()  # an existing dir without marker never means done
    dl.extract(archive, dest)
    assert (dest / "good" / "file.txt").read_text() == "x"


def test_truncated_archive_is_a_clear_error(tmp_path):
    from pipeline.errors import MissingInputError

    archive = _tar(tmp_path / "a.tar.gz", [_member(f"good/f{i}") for i in range(50)], os.urandom(1))
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MissingInputError, match="truncated"):
        dl.extract(cut, tmp_path / "src")
    assert not (tmp_path / "src").exists()
