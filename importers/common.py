"""Helpers shared by the corpus modules: fetching into sources/ and extracting into
`extracted/<key>/source/`, reading delimited metadata by header name."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from importers.base import BAD_ROW, ImportContext, Rejection
from pipeline import download as dl
from pipeline.errors import ConfigError, MissingInputError

log = logging.getLogger(__name__)


def fetch(ctx: ImportContext, key: str, url: str, archive_name: str, checksum: str) -> Path:
    """The corpus archive in sources/: used as is when present (checksum verified), else downloaded."""
    if not url and not archive_name:
        raise ConfigError(f"language pack {ctx.pack.code}: [corpus.{key}] needs `url` (or `archive` "
                          f"placed in {ctx.paths.sources})")
    name = archive_name or url.rstrip("/").rpartition("/")[2]
    dest = ctx.paths.sources / name
    try:
        dl.parse_checksum(checksum)
    except ValueError as exc:
        raise ConfigError(f"language pack {ctx.pack.code} [corpus.{key}] checksum: {exc}") from None
    if dest.is_file():
        dl.verify_checksum(dest, checksum, what=f" (language pack {ctx.pack.code} [corpus.{key}])")
        return dest
    if not url:
        raise MissingInputError(f"{dest} not found and [corpus.{key}] has no url; put the archive "
                                f"there")
    log.info("downloading %s -> %s", dl.redact_url(url), dest)
    return dl.download(url, dest, checksum, source=f"language pack {ctx.pack.code} [corpus.{key}] url")


def extract_source(archive: Path, ctx: ImportContext, key: str) -> Path:
    """Safe, atomic, resumable extraction into `extracted/<key>/source/`."""
    return dl.extract(archive, ctx.source_dir(key))


def decode_lines(data: bytes, name: str) -> tuple[list[tuple[int, str]], list[Rejection]]:
    """Split bytes into (line number, text) pairs; lines that are not UTF-8 become rejections."""
    lines: list[tuple[int, str]] = []
    bad: list[Rejection] = []
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 BOM (Excel, Notepad)
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM (Excel "Unicode text")
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            return [], [Rejection(key=f"{name}:1", reason=BAD_ROW, origin=f"{name}:1",
                                  detail=f"{name} starts with a UTF-16 byte-order mark but is not "
                                         f"valid UTF-16 ({exc.reason}); save it as UTF-8")]
    for i, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            lines.append((i, raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            bad.append(Rejection(key=f"{name}:{i}", reason=BAD_ROW,
                                 detail=f"line is not UTF-8 (byte {exc.start}); save {name} as "
                                        f"UTF-8",
                                 transcript=raw.decode("utf-8", "replace"), origin=f"{name}:{i}"))
    return lines, bad


def read_table(path: Path, delimiter: str, required: Sequence[str],
               aliases: dict[str, Sequence[str]] | None = None, nonempty: Sequence[str] | None = None
               ) -> tuple[list[tuple[str, dict[str, str]]], list[Rejection]]:
    """Rows of a delimited file as dicts keyed by header name (any column order).

    `required` columns (after `aliases`: canonical -> accepted header names) must be present, and
    `nonempty` ones (default: all required) non-empty; rows breaking that, rows too short to hold
    a required column and non-UTF-8 lines become `bad_row` rejections.
    Returns ((origin, row), ...) and the rejections. Quotes are literal (QUOTE_NONE) for TSV.
    """
    aliases = aliases or {}
    lines, bad = decode_lines(path.read_bytes(), path.name)
    if not lines:
        return [], bad
    header_no, header_line = lines[0]
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    header = next(csv.reader([header_line], delimiter=delimiter, quoting=quoting))
    header = [h.strip() for h in header]
    mapping: dict[str, str] = {}
    for canon in {*required, *aliases}:
        for cand in [canon, *aliases.get(canon, ())]:
            if cand in header:
                mapping[canon] = cand
                break
    missing = [c for c in required if c not in mapping]
    rows: list[tuple[str, dict[str, str]]] = []
    for lineno, text in lines[1:]:
        origin = f"{path.name}:{lineno}"
        if missing:
            bad.append(Rejection(key=origin, reason=BAD_ROW,
                                 detail=f"column(s) {', '.join(missing)} missing from the header of "
                                        f"{path.name} (has: {', '.join(header)})",
                                 transcript=text, origin=origin))
            continue
        fields = next(csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting), [])
        short = [c for c in required if header.index(mapping[c]) >= len(fields)]
        if short:
            bad.append(Rejection(key=origin, reason=BAD_ROW,
                                 detail=f"row has {len(fields)} of {len(header)} columns; "
                                        f"{', '.join(short)} missing",
                                 transcript=text, origin=origin))
            continue
        # A missing trailing optional column is harmless.
        fields += [""] * (len(header) - len(fields))
        row = dict(zip(header, fields, strict=True))
        out = {canon: row.get(col, "").strip() for canon, col in mapping.items()}
        empty = [c for c in (required if nonempty is None else nonempty) if not out.get(c)]
        if empty:
            bad.append(Rejection(key=origin, reason=BAD_ROW,
                                 detail=f"empty or missing value in column(s) {', '.join(empty)}",
                                 transcript=text, origin=origin))
            continue
        rows.append((origin, out))
    return rows, bad
