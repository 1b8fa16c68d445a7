"""Today's Common Voice archive names are found without CV_ARCHIVE; `new-language` for a language
num2words does not support (Breton): digits quarantined with the reason said, symbols and rare
letters listed, never dropped. Only the TSVs are read, so these archives hold no audio."""

from __future__ import annotations

import io
import tarfile
import tomllib
from pathlib import Path

import pytest

from importers.base import ImportContext
from importers.common_voice import find_archive
from pipeline.config import load_config
from pipeline.errors import MissingInputError
from pipeline.langs import load_pack
from pipeline.langs.scaffold import scaffold_pack
from pipeline.paths import Paths


def _ctx(data: Path) -> ImportContext:
    return ImportContext(load_config(environ={}, lang="fr"), Paths.at(data), load_pack("fr"))


@pytest.mark.parametrize("name", ["mcv-scripted-fr-v24.0.tar.gz",
                                  "cv-corpus-24.0-2025-12-05-fr.tar.gz"])
def test_current_and_older_names_found(tmp_path: Path, name: str) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / name).write_bytes(b"x")
    (tmp_path / "sources" / "mcv-scripted-it-v24.0.tar.gz").write_bytes(b"x")  # another language
    assert find_archive(_ctx(tmp_path)).name == name


def test_missing_archive_points_to_data_collective(tmp_path: Path) -> None:
    (tmp_path / "sources").mkdir()
    with pytest.raises(MissingInputError) as exc:
        find_archive(_ctx(tmp_path))
    msg = str(exc.value)
    assert "mcv-scripted-fr-v*.tar.gz" in msg and "cv-corpus-*-fr.tar.gz" in msg
    assert "Mozilla Data Collective" in msg and "datacollective.mozillafoundation.org" in msg
    assert "e-mail" not in msg


BR_ROWS = {
    "train": ["Gwelet em eus anezhañ.", "Eürus on bremañ.", "Mont d'ar gêr.",
              "Me a zo 3 bloaz.", "Kant % eo.", "Demat d'an holl.", "Anezhañ a gan."],
    "dev": ["Kenavo emberr."],
    "test": ["Trugarez vras."],
}


def _tsv_archive(dest: Path, rows: dict[str, list[str]], code: str = "br") -> Path:
    root = f"cv-corpus-24.0-2025-12-05/{code}"
    path = dest / f"mcv-scripted-{code}-v24.0.tar.gz"

    def tsv(sentences: list[str]) -> bytes:
        lines = ["client_id\tpath\tsentence"]
        lines += [f"c{i % 3}\tclip_{i}.mp3\t{s}" for i, s in enumerate(sentences)]
        return ("\n".join(lines) + "\n").encode()

    with tarfile.open(path, "w:gz") as tar:
        every = [s for v in rows.values() for s in v]
        for name, data in [("validated.tsv", tsv(every))] + [(f"{k}.tsv", tsv(v))
                                                              for k, v in rows.items()]:
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_scaffold_without_num2words_support(tmp_path: Path) -> None:
    archive = _tsv_archive(tmp_path, BR_ROWS)
    data = tmp_path / "data"
    res = scaffold_pack("br", archive, Paths.at(data).langs / "br")
    pack_dir = data / "langs" / "br"
    toml_text = (pack_dir / "pack.toml").read_text(encoding="utf-8")
    toml = tomllib.loads(toml_text)
    assert toml["name"] == "Breton" and toml["corpus"]["common_voice"]["archive"] == archive.name
    assert "num2words_lang" not in toml["normalizer"]
    assert "num2words cannot spell numbers in 'br'" in toml_text
    assert "(invalid_transcript; 1 of 9 validated sentences)" in toml_text
    assert "'%' 1" in toml_text  # symbols found, to spell out
    for letter in "ñüê":
        assert letter in res.alphabet
    assert "%" not in res.alphabet and "3" not in res.alphabet
    assert "'ñ' (LATIN SMALL LETTER N WITH TILDE, 3)" in res.report  # rare: listed for review
    assert "digits, and the language pack sets no [normalizer] num2words_lang: 1" in res.report
    pack = load_pack("br", data)  # the written pack validates and loads from <data-dir>/langs
    assert pack.lm_text_files == ("lm_text.txt.gz",) and " " in pack.alphabet.labels


def test_scaffold_with_num2words_support(tmp_path: Path) -> None:
    rows = {"train": ["Costa 2,5 euros.", "Són 3,75 metres.", "La col·lecció és gran.",
                      "El col·legi obre.", "Una il·lusió."], "dev": ["Bon dia."], "test": ["Adéu."]}
    res = scaffold_pack("ca", _tsv_archive(tmp_path, rows, "ca"), tmp_path / "ca")
    toml = tomllib.loads((tmp_path / "ca" / "pack.toml").read_text(encoding="utf-8"))
    norm = toml["normalizer"]
    assert norm["num2words_lang"] == "ca" and norm["decimal_separator"] == ","
    assert norm["decimal_word"] == "punt" and norm["in_word"] == ["·"]
    assert "·" in res.alphabet and "é" in res.alphabet and "2" not in res.alphabet
    assert res.counts["·"] == 3
