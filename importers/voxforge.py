"""VoxForge: read prompts recorded by volunteers, one archive per recording session.

- Homepage: http://www.voxforge.org — sessions at
  `http://www.repository.voxforge1.org/downloads/<ll>/Trunk/Audio/Main/16kHz_16bit/<user>-<date>-<id>.tgz`
  (DeepSpeech's `import_voxforge.py` read the same archives). Nothing is downloaded here: the
  listing holds thousands of archives; mirror the ones you want.
- License: GPL-3.0 (per VoxForge; a model trained on it is yours to license, the audio is not).
- Where: `sources/voxforge/` holding the session archives (`*.tgz`, `*.tar.gz`, `*.zip`, or
  already extracted session folders), or one archive of sessions named by the pack's
  `[corpus.voxforge] archive` (a file in sources/).
- Layout of a session: `<user>-<date>-<id>/etc/PROMPTS` (lines `<session>/mfc/<clip id> TEXT`),
  `etc/README` (`User Name:<user>`, gender, dialect, recording setup) and the audio as
  `wav/<clip id>.wav` (or `flac/<clip id>.flac`); a flattened copy with PROMPTS, README and the
  audio in one folder is read too.
- Quirks: prompts are upper-cased by a tool that left accented letters lower-case
  (`IL éTAIT`): the normalizer lower-cases everything. The speaker is the README's user name;
  `anonymous` sessions are each their own speaker. READMEs often state a sampling rate the audio
  does not have (the audio is decoded for what it is). Old sessions may be Latin-1.
"""

from __future__ import annotations

import re
from pathlib import Path

from importers.base import ImportContext, RowList, SourceRow, wav_rel_for
from importers.common import decode_lines, extract_source
from pipeline import download as dl
from pipeline.errors import MissingInputError

KEY = "voxforge"
TITLE = "VoxForge"
LICENSE = "GPL-3.0"
DEFAULT_NAME = "voxforge"
ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".zip")
AUDIO_DIRS = (("wav", ".wav"), ("flac", ".flac"))
_USER_RE = re.compile(r"^\s*User\s*Name\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)


def download(ctx: ImportContext) -> Path:
    name = str(ctx.settings(KEY).get("archive", "")) or DEFAULT_NAME
    p = ctx.paths.sources / name
    if not p.exists():
        raise MissingInputError(
            f"{p} not found: put the VoxForge session archives (<user>-<date>-<id>.tgz from "
            f"repository.voxforge1.org/downloads/{ctx.pack.code}/Trunk/Audio/Main/16kHz_16bit/) in "
            f"{ctx.paths.sources / DEFAULT_NAME}/, or name one archive of sessions in the language "
            f"pack's [corpus.voxforge] archive")
    return p


def _archive_stem(p: Path) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if p.name.endswith(suffix):
            return p.name[: -len(suffix)]
    return p.name


def extract(source: Path, ctx: ImportContext) -> Path:
    if source.is_file():
        return extract_source(source, ctx, KEY)
    # A folder of per-session archives: each is extracted (safely, resumably) into its own folder.
    root = ctx.source_dir(KEY)
    root.mkdir(parents=True, exist_ok=True)
    for p in sorted(source.iterdir()):
        if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES):
            dl.extract(p, root / _archive_stem(p))
    # a folder of already extracted sessions is read where it is
    return root if any(root.iterdir()) else source


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old sessions; every byte decodes


def _speaker(session: Path, readme: Path | None) -> str:
    user = ""
    if readme is not None:
        m = _USER_RE.search(_read_text(readme))
        user = m.group(1) if m else ""
    if not user or user.lower() == "anonymous":
        return session.name  # anonymous sessions cannot be told apart: one speaker each
    return user


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for cand in (folder / name, folder / name.lower(), folder / name.upper()):
            if cand.is_file():
                return cand
    return None


def _audio(session: Path, clip_id: str) -> Path:
    for sub, suffix in AUDIO_DIRS:
        for folder in (session / sub, session):
            p = folder / f"{clip_id}{suffix}"
            if p.is_file():
                return p
    return session / "wav" / f"{clip_id}.wav"  # missing: the engine quarantines it as missing_file


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    prompt_files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.upper() == "PROMPTS")
    if not prompt_files:
        raise MissingInputError(f"{root}: no VoxForge session (no etc/PROMPTS file) found")
    out = RowList()
    for prompts in prompt_files:
        etc = prompts.parent
        session = etc.parent if etc.name.lower() == "etc" else etc
        speaker = _speaker(session, _find(etc, ("README", "readme")))
        rel_session = session.name  # <user>-<date>-<id>: unique across the release
        lines, bad = decode_lines(_read_text(prompts).encode("utf-8"), f"{rel_session}/PROMPTS")
        out.rejected += bad
        for lineno, line in lines:
            ident, _, text = line.strip().partition(" ")
            clip_id = ident.rsplit("/", 1)[-1]
            key = f"{rel_session}/{clip_id}"
            out.rows.append(SourceRow(key=key, audio=_audio(session, clip_id), wav_rel=wav_rel_for(f"{key}.wav"),
                                      transcript=text.strip(), speaker=speaker,
                                      origin=f"{rel_session}/PROMPTS:{lineno}"))
    return out
