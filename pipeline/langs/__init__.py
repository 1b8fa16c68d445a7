"""Language packs: data only (`<code>/pack.toml`, `<code>/alphabet.txt`, optional `sentences.txt`).

A pack is searched first in the data dir (`<data-dir>/langs/<code>/`, i.e. `/mnt/langs/<code>/` in
Docker: no image rebuild), then among the built-in packs in this folder; a data-dir pack overrides a
built-in one of the same code, and the log says which one is used. `ds-pipeline new-language`
(`pipeline.langs.scaffold`) writes a new pack from a Common Voice archive. Every pack is validated
when loaded (`pipeline.langs.validate`): one line per problem, naming file and line.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.text.alphabet import Alphabet

PACKS_DIR = Path(__file__).resolve().parent
log = logging.getLogger("pipeline.langs")


@dataclass(frozen=True)
class LanguagePack:
    code: str                          # "fr"
    name: str                          # "French"
    directory: Path
    export_zip_name: str               # "fr-fr"
    corpora: tuple[str, ...]           # default importer keys
    lm_text_urls: tuple[str, ...]      # extra LM text sources (may be empty)
    defaults: dict[str, str]           # env-var defaults of this language (e.g. DROPOUT)
    metadata: dict[str, str]           # model card fields (author, license, ...)
    corpus_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [corpus.<key>] tables
    normalizer: dict[str, Any] = field(default_factory=dict)                  # [normalizer] table
    lm_text_files: tuple[str, ...] = ()  # LM text files inside the pack folder (plain, .gz, .xz)

    @property
    def alphabet_path(self) -> Path:
        return self.directory / "alphabet.txt"

    @property
    def sentences_path(self) -> Path:
        return self.directory / "sentences.txt"

    @functools.cached_property
    def alphabet(self) -> Alphabet:
        return Alphabet.from_file(self.alphabet_path)

    def corpus(self, key: str) -> dict[str, Any]:
        """The `[corpus.<key>]` table (empty if the pack has none)."""
        return dict(self.corpus_settings.get(key, {}))

    @property
    def lm_text_paths(self) -> tuple[Path, ...]:
        return tuple(self.directory / f for f in self.lm_text_files)


def _data_packs(data_dir: str | Path | None) -> Path | None:
    if data_dir is None or str(data_dir) == "":
        return None
    from pipeline.paths import Paths

    return Paths.at(data_dir).langs


def available_languages(data_dir: str | Path | None = None) -> list[str]:
    """Codes of the built-in packs and of the data dir's `langs/` packs."""
    codes = {p.parent.name for p in PACKS_DIR.glob("*/pack.toml")}
    extra = _data_packs(data_dir)
    if extra is not None and extra.is_dir():
        codes |= {p.parent.name for p in extra.glob("*/pack.toml")}
    return sorted(codes)


def pack_directory(code: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder of pack `code`: `<data-dir>/langs/<code>` first, then the built-in one."""
    if not code or "/" in code or code.startswith("."):
        return None
    extra = _data_packs(data_dir)
    for base in ([extra] if extra is not None else []) + [PACKS_DIR]:
        if (base / code / "pack.toml").is_file():
            return base / code
    return None


def load_pack(code: str, data_dir: str | Path | None = None) -> LanguagePack:
    """The validated pack `code` (see the module docstring for where it is searched)."""
    extra = _data_packs(data_dir)
    return _load_pack(code, str(extra.parent) if extra is not None else "")


@functools.cache
def _load_pack(code: str, data_dir: str) -> LanguagePack:
    directory = pack_directory(code, data_dir or None)
    if directory is None:
        where = f"{PACKS_DIR}" + (f" or {_data_packs(data_dir)}" if data_dir else "")
        hint = (f"; make one with `ds-pipeline new-language {code} --from-cv <Common Voice archive>"
                f"{' --data-dir ' + data_dir if data_dir else ''}` (it goes to "
                f"<data-dir>/langs/{code}/)") if code and "/" not in code else ""
        raise ConfigError(f"MODEL_LANGUAGE={code!r}: no language pack with that code; available: "
                          f"{', '.join(available_languages(data_dir or None))} (packs are folders in "
                          f"{where}){hint}")
    pack_file = directory / "pack.toml"
    if directory.parent != PACKS_DIR:
        builtin = PACKS_DIR / code / "pack.toml"
        log.info("language pack %s: %s%s", code, directory,
                 " (overrides the built-in pack)" if builtin.is_file() else "")
    try:
        text = pack_file.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{pack_file}: not UTF-8 ({exc.reason}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pack_file}: {exc}") from None
    from pipeline.langs.validate import check_alphabet, check_pack_toml

    problems = check_pack_toml(pack_file, text, data)
    alphabet_path = directory / "alphabet.txt"
    if not alphabet_path.is_file():
        problems.append(f"{alphabet_path}: the language pack has no alphabet")
    elif isinstance(data.get("normalizer", {}), dict):
        problems += check_alphabet(alphabet_path, data.get("normalizer", {}))
    for name in data.get("lm_text_files", []) if isinstance(data.get("lm_text_files"), list) else []:
        if not (directory / str(name)).is_file():
            problems.append(f"{pack_file}: lm_text_files: {directory / str(name)} does not exist")
    if problems:
        raise ConfigError(f"language pack {code} ({directory}) is invalid:\n    " +
                          "\n    ".join(problems))
    return LanguagePack(
        code=code,
        name=str(data["name"]),
        directory=directory,
        export_zip_name=str(data.get("export_zip_name", f"{code}-{code}")),
        corpora=tuple(data.get("corpora", ["common_voice"])),
        lm_text_urls=tuple(data.get("lm_text_urls", [])),
        defaults={k: str(v) for k, v in data.get("defaults", {}).items()},
        metadata={k: str(v) for k, v in data.get("metadata", {}).items()},
        corpus_settings=dict(data.get("corpus", {})),
        normalizer=dict(data.get("normalizer", {})),
        lm_text_files=tuple(str(f) for f in data.get("lm_text_files", [])),
    )


def pack_inputs(pack: LanguagePack, english_compatible: bool = False) -> dict[str, Any]:
    """What of a pack each stage's result depends on, for the stage fingerprints (content, not
    file bytes: a comment edit reruns nothing). Keys: alphabet, normalizer, corpora, lm_text,
    export (model card, archive names), language_tag (written into the exported models)."""
    from pipeline.text.normalize import target_alphabet

    def identity(p: Path) -> tuple[str, int, int]:
        st = p.stat()
        return (p.name, st.st_size, int(st.st_mtime))

    return {
        "alphabet": list(target_alphabet(pack, english_compatible).labels),
        "normalizer": pack.normalizer,
        "corpora": {"list": list(pack.corpora), "settings": pack.corpus_settings},
        "lm_text": {"urls": list(pack.lm_text_urls),
                    "files": [identity(p) for p in pack.lm_text_paths if p.is_file()]},
        "export": {"name": pack.name, "export_zip_name": pack.export_zip_name,
                   "metadata": pack.metadata},
        "language_tag": pack.metadata.get("language_tag", pack.code),
    }
