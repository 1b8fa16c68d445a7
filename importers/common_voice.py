"""Common Voice (Mozilla): crowd-sourced read speech, many speakers, mp3 clips.

- Download: today from Mozilla Data Collective (https://datacollective.mozillafoundation.org,
  "Common Voice Scripted Speech <version> - <language>", sign-in and terms to accept); releases up
  to 2025 came from https://commonvoice.mozilla.org/<lang>/datasets behind an e-mail form. Either
  way the user places the archive in `sources/` by hand (nothing is downloaded here).
- License: CC0-1.0 (clips and sentences).
- Archive: `mcv-scripted-<lang>-v<NN>.0.tar.gz` (Data Collective; inside
  `cv-corpus-<NN>.0-<date>/<lang>/`), `cv-corpus-<version>-<date>-<lang>.tar.gz` (older site); 2019
  releases were `<lang>.tar.gz` (fr sha1 30dbf694…, it sha1 5949823c…). Found in `sources/` as
  `CV_ARCHIVE`, else the pack's `[corpus.common_voice] archive` if present, else the single file
  matching the first of `archive_patterns(lang)` that matches anything.
- Checksum: optional, `CV_CHECKSUM` or the pack's `checksum` ("sha256:HEX" / "sha1:HEX").
- Layout after extraction (both handled): flat 2019 archives `clips/*.mp3` + `*.tsv` at the top, or
  `cv-corpus-<ver>-<date>/<lang>/{clips/,train.tsv,dev.tsv,test.tsv,validated.tsv,...}`.
- TSV columns differ by release (`accent` -> `accents`, `locale`, `segment`, `variant`,
  `sentence_id`, `sentence_domain`, ...): read by header name; only `path`, `sentence` and
  `client_id` are used. Quotes in sentences are literal (no CSV quoting).
- Quirks: the official splits keep one clip per sentence, which left most validated clips unused
  (fr 2019: 147k validated, 55k in the splits). `DUPLICATE_SENTENCE_COUNT=N>1` rebuilds the splits
  from `validated.tsv` with up to N clips per sentence (what the seeds used Corpora Creator for),
  speaker- and sentence-disjoint. Some old `path` values lack the `.mp3` suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from importers.base import ImportContext, RowList, SourceRow
from importers.common import extract_source, read_table
from pipeline import download as dl
from pipeline.errors import ConfigError, MissingInputError

KEY = "common_voice"
TITLE = "Common Voice"
HOMEPAGE = "https://datacollective.mozillafoundation.org"
LICENSE = "CC0-1.0"
TSV_SPLITS = ("test", "dev", "train")  # read order: a clip listed twice stays in the held-out set


def archive_patterns(lang: str) -> list[str]:
    return [f"mcv-scripted-{lang}-v*.tar.gz", f"cv-corpus-*-{lang}.tar.gz",
            f"cv-corpus-*{lang}*.tar.gz", f"cv-*-{lang}.tar.gz", f"{lang}.tar.gz"]


def _how_to_get(ctx: ImportContext) -> str:
    lang = ctx.pack.code
    return (f"download 'Common Voice Scripted Speech - {ctx.pack.name}' from Mozilla Data "
            f"Collective, {HOMEPAGE} (sign in, accept the terms), e.g. "
            f"mcv-scripted-{lang}-v<NN>.0.tar.gz, and put it in {ctx.paths.sources}/ unchanged "
            f"(or set CV_ARCHIVE=<its file name>)")


def find_archive(ctx: ImportContext) -> Path:
    """The CV archive in sources/ (see the module docstring for the search order)."""
    sources = ctx.paths.sources
    name = ctx.cfg.data.cv_archive
    if name:
        p = Path(name) if Path(name).is_absolute() else sources / name
        if p.is_file():
            return p
        raise MissingInputError(f"Common Voice archive {p} not found (CV_ARCHIVE={name!r}); "
                                f"{_how_to_get(ctx)}")
    pack_name = str(ctx.settings(KEY).get("archive", ""))
    if pack_name and (sources / pack_name).is_file():
        return sources / pack_name
    for pattern in archive_patterns(ctx.pack.code):
        found = sorted(p for p in sources.glob(pattern) if p.is_file()) if sources.is_dir() else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise MissingInputError(
                f"several Common Voice archives in {sources} match {pattern}: "
                f"{', '.join(p.name for p in found)}; set CV_ARCHIVE=<file name> to choose one")
    raise MissingInputError(f"no Common Voice archive for language {ctx.pack.code!r} in {sources} "
                            f"(looked for {', '.join(archive_patterns(ctx.pack.code))}); "
                            f"{_how_to_get(ctx)}")


def download(ctx: ImportContext) -> Path:
    """CV cannot be downloaded automatically: find the user's archive and verify its checksum."""
    archive = find_archive(ctx)
    checksum = ctx.cfg.data.cv_checksum or str(ctx.settings(KEY).get("checksum", ""))
    try:
        dl.parse_checksum(checksum)
    except ValueError as exc:
        raise ConfigError(f"language pack {ctx.pack.code} [corpus.common_voice] checksum: {exc}") from None
    where = " (CV_CHECKSUM)" if ctx.cfg.data.cv_checksum else \
        f" (language pack {ctx.pack.code} [corpus.common_voice] checksum)"
    dl.verify_checksum(archive, checksum, what=where)
    return archive


def extract(source: Path, ctx: ImportContext) -> Path:
    return extract_source(source, ctx, KEY)


def language_folder(folders: Sequence[str], lang: str, where: str) -> str:
    """Of the folders holding Common Voice TSVs (paths with `/`), the one of `lang`: the only one,
    or the one named `lang`. MissingInputError naming `where` otherwise."""
    same = [d for d in folders if d.rstrip("/").rsplit("/", 1)[-1] == lang]
    cands = same or list(folders)
    if not cands:
        raise MissingInputError(f"{where}: no train.tsv/validated.tsv found; is it a Common Voice "
                                f"dataset archive (cv-corpus-<NN>.0-<date>/{lang}/...)?")
    if len(cands) > 1:
        raise MissingInputError(f"{where}: several Common Voice folders ({', '.join(sorted(cands))}) "
                                f"and none is named {lang!r}; the archive should hold one language")
    return cands[0]


def find_tsv_dir(root: Path, lang: str) -> Path:
    """The folder holding the TSVs and `clips/`, at depth 0-2 under the extraction root."""
    cands = [str(d) for d in [root, *sorted(root.glob("*")), *sorted(root.glob("*/*"))]
             if d.is_dir() and ((d / "validated.tsv").is_file() or (d / "train.tsv").is_file())]
    return Path(language_folder(cands, lang, str(root)))


def list_rows(root: Path, ctx: ImportContext) -> RowList:
    tsv_dir = find_tsv_dir(root, ctx.pack.code)
    clips = tsv_dir / "clips"
    n_dup = ctx.cfg.data.duplicate_sentence_count
    has_official = all((tsv_dir / f"{s}.tsv").is_file() for s in TSV_SPLITS)
    out = RowList()
    if n_dup > 1 or not has_official:
        if not (tsv_dir / "validated.tsv").is_file():
            raise MissingInputError(f"{tsv_dir}: validated.tsv is missing (needed for "
                                    f"DUPLICATE_SENTENCE_COUNT={n_dup} or when train/dev/test.tsv "
                                    f"are absent)")
        tsvs: list[tuple[str, str | None]] = [("validated", None)]
        out.official_splits = False
        out.max_clips_per_sentence = n_dup if n_dup > 1 else 0
        out.notes.append("splits rebuilt from validated.tsv" +
                         (f" with up to {n_dup} clips per sentence" if n_dup > 1 else
                          " (train/dev/test.tsv absent)"))
    else:
        tsvs = [(s, s) for s in TSV_SPLITS]
        out.official_splits = True
    for name, split in tsvs:
        rows, bad = read_table(tsv_dir / f"{name}.tsv", "\t", required=("path", "sentence"),
                               aliases={"client_id": ()}, nonempty=("path",))
        out.rejected += bad
        for origin, r in rows:
            rel = r["path"]
            audio = clips / rel
            if not Path(rel).suffix and not audio.exists():
                audio = clips / f"{rel}.mp3"
            out.rows.append(SourceRow(
                key=f"clips/{audio.name}", audio=audio,
                wav_rel=str(Path("wavs") / Path(audio.name).with_suffix(".wav")),
                transcript=r["sentence"], speaker=r.get("client_id") or f"clip:{audio.stem}",
                split=split, origin=origin))
    return out
