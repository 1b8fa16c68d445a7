"""Alphabet file rules and the language packs."""

from __future__ import annotations

import struct

import pytest

from pipeline.errors import ConfigError
from pipeline.langs import available_languages, load_pack
from pipeline.text.alphabet import Alphabet


def test_alphabet_parsing_rules():
    text = "# comment\n \na\n\\#\n\nb\r\n'\n"
    alpha = Alphabet.from_text(text)
    assert alpha.labels == (" ", "a", "#", "b", "'")
    assert alpha.blank_index == 5 and alpha.num_classes == 6 and alpha.space_index == 0
    assert alpha.encode("ab a") == [1, 3, 0, 1]
    assert alpha.decode([1, 3, 9]) == "ab"
    assert alpha.missing("abcxc") == ["c", "x"]
    assert Alphabet.from_text(alpha.to_text(["header"])) == alpha


def test_alphabet_rejects_multi_codepoint_and_duplicates():
    with pytest.raises(ConfigError, match=":2: alphabet line"):
        Alphabet.from_text("a\nbc\n")
    with pytest.raises(ConfigError, match="twice"):
        Alphabet.from_text("a\na\n")
    with pytest.raises(ConfigError, match="no labels"):
        Alphabet.from_text("# only comments\n")


def test_alphabet_serialization_layout():
    alpha = Alphabet((" ", "é"))
    data = alpha.serialize()
    assert data[:2] == struct.pack("<H", 2)
    assert data[2:7] == struct.pack("<HH", 0, 1) + b" "
    assert data[7:] == struct.pack("<HH", 1, 2) + "é".encode()
    assert Alphabet.deserialize(data) == alpha


@pytest.mark.parametrize("code,size,zip_name", [("en", 28, "en-us"), ("fr", 44, "fr-fr"), ("it", 38, "it-it")])
def test_language_packs(code, size, zip_name):
    assert code in available_languages()
    pack = load_pack(code)
    assert len(pack.alphabet) == size
    assert pack.export_zip_name == zip_name
    assert pack.alphabet.labels[0] == " " and "'" in pack.alphabet
    assert "common_voice" in pack.corpora
    assert pack.metadata["license"]


def test_english_alphabet_matches_deepspeech():
    assert "".join(load_pack("en").alphabet.labels) == " abcdefghijklmnopqrstuvwxyz'"
