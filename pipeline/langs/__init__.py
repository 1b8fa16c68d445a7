"""Language packs: data only (`<code>/pack.toml`, `<code>/alphabet.txt`, `<code>/sentences.txt`).

A new language is a new folder here (plus at most one small normalizer module in `pipeline/text/`).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.text.alphabet import Alphabet

PACKS_DIR = Path(__file__).resolve().parent


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


def available_languages() -> list[str]:
    return sorted(p.parent.name for p in PACKS_DIR.glob("*/pack.toml"))


@functools.cache
def load_pack(code: str) -> LanguagePack:
    directory = PACKS_DIR / code
    pack_file = directory / "pack.toml"
    if not code or "/" in code or not pack_file.is_file():
        raise ConfigError(f"MODEL_LANGUAGE={code!r}: no language pack with that code; available: "
                          f"{', '.join(available_languages())} (a pack is a folder in {PACKS_DIR})")
    try:
        data = tomllib.loads(pack_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pack_file}: {exc}") from None
    try:
        pack = LanguagePack(
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
        )
    except KeyError as exc:
        raise ConfigError(f"{pack_file}: missing key {exc}") from None
    if not pack.alphabet_path.is_file():
        raise ConfigError(f"{pack.alphabet_path}: the language pack has no alphabet")
    return pack
