"""Downloads (resume, retries with back-off, progress, checksum) and safe archive extraction.

- `download(url, dest, checksum)`: https only (plain http for loopback test servers), streams into
  `<dest>.part`, resumes it with an HTTP Range request, retries network errors and 5xx with
  exponential back-off, fails at once on other 4xx, verifies the checksum and only then renames to
  `dest`. A checksum mismatch moves the file aside to `<dest>.mismatch` (kept for inspection) and
  raises `ChecksumMismatch`. URLs are logged without passwords or query strings.
- `extract(archive, dest, identity)`: checks every member (no absolute paths, no `..`, no links
  pointing outside, no devices, total size within MAX_EXPANSION_RATIO of the archive and within the
  free disk space) before writing it, extracts into a temp dir beside `dest` (removed
  entirely if any member is refused, so nothing is extracted), writes the marker `.extracted.json`
  last and renames the dir into place. An existing `dest` counts as done only
  when its marker holds the same archive identity.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import ChecksumMismatch, DownloadError, MissingInputError, UnsafeArchiveError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_dir, write_json
from pipeline.progress import Progress

log = logging.getLogger(__name__)

MARKER = ".extracted.json"
CHUNK = 1 << 20
NET_CHUNK = 1 << 16  # small enough that a cut loses little
# Decompression-bomb guard: an archive may unpack to at most MAX_EXPANSION_RATIO times its own size
# once it passes EXPANSION_FLOOR. Speech corpora hold compressed audio or wav (ratio ~1-3); a
# metadata-only archive of text reaches ~10.
MAX_EXPANSION_RATIO = 100
EXPANSION_FLOOR = 1 << 30
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """`url` safe for logs: no password, no query string (signed links carry tokens there)."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = u.netloc
    if u.password is not None:
        netloc = f"{u.username}:***@{u.hostname}" + (f":{u.port}" if u.port else "")
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, "…" if u.query else "", ""))


def url_allowed(url: str) -> bool:
    """https anywhere; plain http only to a loopback host (the tests' local server)."""
    try:
        u = urllib.parse.urlsplit(url)
        host = u.hostname
    except ValueError:
        return False
    return bool(host) and (u.scheme == "https" or (u.scheme == "http" and host in LOOPBACK_HOSTS))


def check_url(url: str, source: str = "") -> None:
    """Raise ConfigError naming `source` (where the URL came from) unless `url_allowed`."""
    if not url_allowed(url):
        from pipeline.errors import ConfigError

        where = f" (from {source})" if source else ""
        raise ConfigError(f"download URL {redact_url(url)!r}{where} is not allowed: only https:// "
                          f"URLs are downloaded (plain http only from 127.0.0.1 for tests); fix the URL "
                          f"or place the file in sources/ by hand")


# ---------------------------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------------------------
def parse_checksum(spec: str) -> tuple[str, str] | None:
    """'sha256:HEX' / 'sha1:HEX' -> (algo, hex); '' -> None."""
    spec = (spec or "").strip()
    if not spec:
        return None
    algo, _, hexdigest = spec.partition(":")
    algo = algo.lower()
    if algo not in ("sha1", "sha256") or not hexdigest:
        raise ValueError(f"checksum {spec!r}: expected 'sha256:HEX' or 'sha1:HEX'")
    return algo, hexdigest.lower()


def file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: Path, spec: str, *, what: str = "") -> None:
    """Raise ChecksumMismatch when `path` does not match `spec` (no-op for an empty spec)."""
    parsed = parse_checksum(spec)
    if parsed is None:
        return
    algo, expected = parsed
    actual = file_digest(path, algo)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path}: {algo} is {actual}, expected {expected}{what}. The file is corrupt or a "
            f"different release; delete it and download again, or fix the expected checksum.")


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------
def _retryable_status(code: int) -> bool:
    return code >= 500 or code in (408, 429)


def download(url: str, dest: Path, checksum: str = "", *, retries: int = 5, backoff_s: float = 1.0,
             timeout_s: float = 60.0, session: Any = None, source: str = "") -> Path:
    """Download `url` to `dest` (resumable) and verify `checksum`. Returns `dest`. `source` says where
    the URL came from (a pack key or variable), for error messages.

    Raises ConfigError (not https), DownloadError (4xx, retries exhausted) or ChecksumMismatch (file
    moved to `<dest>.mismatch`).
    """
    import requests

    dest = Path(dest)
    if dest.is_file():
        _verify_or_set_aside(dest, checksum, url)
        return dest
    check_url(url, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    sess = session or requests.Session()
    attempt = 0
    while True:
        try:
            if _fetch_once(sess, url, part, timeout_s):
                break
        except _Fatal as exc:
            where = f" ({source})" if source else ""
            raise DownloadError(f"{exc}. Fix the URL{where}, or download the file by hand and put it "
                                f"at {dest}") from None
        except (requests.RequestException, OSError, _Retry) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                from pipeline.fsutil import disk_full_error

                raise disk_full_error(exc, dest.parent) from None  # retrying cannot help
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"download of {redact_url(url)} failed after {retries} retries ({exc}); the partial "
                    f"file {part} is kept and the next run resumes it. Check the network or the URL in "
                    f"the language pack.") from None
            wait = backoff_s * (2 ** (attempt - 1))
            log.warning("download of %s interrupted (%s); retry %d/%d in %.0fs", redact_url(url), exc,
                        attempt, retries, wait)
            time.sleep(wait)
    crashpoint("download.before_rename")
    os.replace(part, dest)
    _verify_or_set_aside(dest, checksum, url)
    return dest


class _Retry(Exception):
    pass


class _Fatal(Exception):
    pass


def _refuse_insecure_redirect(resp: Any, *args: Any, **kwargs: Any) -> None:
    """requests response hook (runs for every hop, before the redirect is followed)."""
    if resp.is_redirect:
        target = urllib.parse.urljoin(resp.url, resp.headers.get("Location", ""))
        if not url_allowed(target):
            raise _Fatal(f"{redact_url(resp.url)} redirects to {redact_url(target)}, which is not https")


def _fetch_once(sess: Any, url: str, part: Path, timeout_s: float) -> bool:
    """One request; appends to `part`. Returns True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with sess.get(url, headers=headers, stream=True, timeout=timeout_s,
                  hooks={"response": _refuse_insecure_redirect}) as resp:
        if resp.status_code == 416 and have:
            # Range not satisfiable: the partial file is already complete (or bigger): start over
            # only if the server says the size differs.
            total = resp.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and int(total) == have:
                return True
            part.unlink()
            raise _Retry("partial file does not match the server's file; restarting")
        if resp.status_code == 404:
            raise _Fatal(f"{redact_url(url)}: 404 Not Found; the URL is out of date")
        if _retryable_status(resp.status_code):
            raise _Retry(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise _Fatal(f"{redact_url(url)}: HTTP {resp.status_code} {resp.reason or ''}".rstrip() +
                         "; the server refuses the download (moved, login needed, or blocked)")
        if have and resp.status_code == 200:
            log.info("server ignored the Range request; downloading %s from the start",
                     redact_url(url))
            have = 0
            mode = "wb"
        else:
            mode = "ab" if have else "wb"
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        got = have
        with open(part, mode) as fh, Progress(total, f"download {part.name[:-5]}", "bytes") as prog:
            prog.update(have)
            for chunk in resp.iter_content(NET_CHUNK):
                fh.write(chunk)
                crashpoint("download.chunk")
                got += len(chunk)
                prog.update(len(chunk))
        if total is not None and got < total:
            raise _Retry(f"connection closed after {got} of {total} bytes")
        return True


def _verify_or_set_aside(path: Path, checksum: str, url: str) -> None:
    try:
        verify_checksum(path, checksum, what=f" (from {redact_url(url)})")
    except ChecksumMismatch as exc:
        aside = path.with_name(path.name + ".mismatch")
        os.replace(path, aside)
        raise ChecksumMismatch(f"{exc} The file was moved aside to {aside}.") from None


# ---------------------------------------------------------------------------------------------
# Safe extraction
# ---------------------------------------------------------------------------------------------
def _check_name(name: str, archive: Path) -> str:
    """The normalized relative POSIX name, or UnsafeArchiveError."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to "
                                 f"extract this archive")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'; refusing to extract "
                                 f"this archive")
    return posixpath.normpath(name.replace("\\", "/"))


def _check_link(name: str, target: str, archive: Path, hard: bool = False) -> None:
    if target.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} points to the absolute path {target!r}; "
                                 f"refusing to extract this archive")
    base = "" if hard else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} points outside the archive "
                                 f"({target!r}); refusing to extract this archive")


def archive_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"archive": path.name, "size": st.st_size, "mtime": int(st.st_mtime)}


def is_extracted(dest: Path, identity: dict[str, Any]) -> bool:
    try:
        return json.loads((dest / MARKER).read_text(encoding="utf-8")) == identity
    except (OSError, ValueError):
        return False


class _SizeGuard:
    """Counts the sizes members declare (tar and zip both write exactly the declared size) and
    refuses an archive before the member that would exceed the bomb limit or the free disk space."""

    def __init__(self, archive: Path, dest: Path, max_ratio: float, floor: int):
        self.archive, self.dest = archive, dest
        self.packed = archive.stat().st_size
        self.limit = max(int(max_ratio * self.packed), floor)
        self.max_ratio = max_ratio
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.free = shutil.disk_usage(dest.parent).free
        self.total = 0

    def add(self, size: int) -> None:
        self.total += max(size, 0)
        if self.total > self.limit:
            raise UnsafeArchiveError(
                f"{self.archive}: unpacks to more than {_size(self.total)} from {_size(self.packed)} "
                f"(over {self.max_ratio:g}:1; the limit applies above {_size(self.limit)}): a "
                f"decompression bomb or a damaged archive; refusing to extract it. Replace it with the "
                f"genuine corpus archive")
        if self.total > self.free:
            from pipeline.errors import DiskFullError

            raise DiskFullError(
                f"{self.archive} unpacks to more than {_size(self.total)} but only {_size(self.free)} "
                f"are free in {self.dest.parent}; free space there (or move the data dir to a bigger "
                f"disk) and rerun. Nothing was extracted.")


def _size(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def extract(archive: Path, dest: Path, identity: dict[str, Any] | None = None,
            on_member: Callable[[str], None] | None = None, *,
            max_ratio: float = MAX_EXPANSION_RATIO, floor: int = EXPANSION_FLOOR) -> Path:
    """Safely extract a .tar(.gz/.bz2/.xz)/.tgz/.zip into `dest` (atomic, marker last).

    Raises UnsafeArchiveError if a member would escape `dest` or the archive unpacks to more than
    `max_ratio` times its size (above `floor` bytes), DiskFullError if it would not fit on the disk;
    `dest` is then left untouched.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise MissingInputError(f"archive not found: {archive}")
    identity = identity if identity is not None else archive_identity(archive)
    if is_extracted(dest, identity):
        log.info("%s already extracted in %s", archive.name, dest)
        return dest
    log.info("extracting %s into %s", archive.name, dest)
    guard = _SizeGuard(archive, dest, max_ratio, floor)
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, dest, identity, guard)
        return dest
    try:
        # Streaming mode: one pass over the (possibly 20+ GB) compressed tar, not two.
        # The decompressor is opened here, not by tarfile: gzip/bz2/lzma raise EOFError on a stream
        # cut short, while tarfile's own stream reader ends silently at a member boundary (a
        # truncated download would look like a smaller complete corpus).
        with _open_decompressed(archive) as raw, tarfile.open(fileobj=raw, mode="r|") as tf, \
                atomic_dir(dest) as tmp:
            for m in tf:
                _check_tar_member(m, archive)
                guard.add(m.size)
                if _HAS_TAR_FILTER:
                    tf.extract(m, tmp, filter="data")
                else:  # Python < 3.11.4 (Debian 12's 3.11.2): our member checks above still apply
                    tf.extract(m, tmp)
                crashpoint("extract.member")
            while raw.read(1 << 20):  # the end of the compressed stream must be there
                pass
            crashpoint("extract.before_marker")
            write_json(tmp / MARKER, identity)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise MissingInputError(f"{archive}: not a readable tar or zip archive, or truncated ({exc}); "
                                f"download it again") from None
    return dest


_HAS_TAR_FILTER = hasattr(tarfile, "data_filter")


def _open_decompressed(archive: Path) -> Any:
    """A binary file object of the tar stream inside `archive` (.tar, .tar.gz, .tar.bz2, .tar.xz)."""
    import bz2

    with open(archive, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(archive, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(archive, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(archive, "rb")
    return open(archive, "rb")


def _check_tar_member(m: tarfile.TarInfo, archive: Path) -> None:
    name = _check_name(m.name, archive)
    if m.issym():
        _check_link(name, m.linkname, archive)
    elif m.islnk():
        _check_link(name, _check_name(m.linkname, archive), archive, hard=True)
    elif not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo; refusing "
                                 f"to extract this archive")


def _extract_zip(archive: Path, dest: Path, identity: dict[str, Any], guard: _SizeGuard) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        links = {}
        for info in infos:
            name = _check_name(info.filename, archive)
            guard.add(info.file_size)
            if stat.S_ISLNK(info.external_attr >> 16):
                target = zf.read(info).decode("utf-8", "replace")
                _check_link(name, target, archive)
                links[info.filename] = target
        with atomic_dir(dest) as tmp:
            for info in infos:
                out = tmp / _check_name(info.filename, archive)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if info.filename in links:
                    os.symlink(links[info.filename], out)
                    continue
                with zf.open(info) as src, open(out, "wb") as fh:
                    shutil.copyfileobj(src, fh, CHUNK)
                crashpoint("extract.member")
            crashpoint("extract.before_marker")
            write_json(tmp / MARKER, identity)
