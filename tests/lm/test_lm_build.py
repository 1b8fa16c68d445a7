"""LM text preparation and the real KenLM build (lmplz -> filter -> build_binary)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.lm import build as lmbuild
from tests.lm.helpers import make_sentences


def test_text_excludes_heldout_and_reserved_tokens(tmp_path: Path) -> None:
    heldout = {"le chat mange une pomme"}
    lines = ["Le  Chat mange une pomme", "le chien <s> voit la lune", "", "la reine aime le pain"]
    stats, counts = lmbuild.write_lm_text(tmp_path / "t.txt.gz", [("a", lines)], heldout)
    text = gzip.open(tmp_path / "t.txt.gz", "rt", encoding="utf-8").read().splitlines()
    assert text == ["le chien voit la lune", "la reine aime le pain"]
    assert stats.excluded_heldout == 1 and stats.lines == 2 and stats.words == 10
    assert "<s>" not in counts and counts["le"] == 2


def test_top_k_and_coverage() -> None:
    from collections import Counter

    counts = Counter({"le": 5, "chat": 3, "b": 1, "a": 1})
    assert lmbuild.top_k_vocab(counts, 3) == ["le", "chat", "a"]
    cov = lmbuild.coverage({"le", "chat"}, ["le chien", "le chat"])
    assert cov == {"tokens": 4, "token_coverage": 0.75, "types": 3, "type_coverage": 0.6667}


def test_prune_args() -> None:
    assert lmbuild.prune_args("0|0|1", 4) == ["0", "0", "1"]
    assert lmbuild.prune_args("0|0|1|1|2", 3) == ["0", "0", "1"]
    with pytest.raises(ConfigError, match="LM_PRUNE"):
        lmbuild.prune_args("0|x", 3)
    with pytest.raises(ConfigError, match="non-decreasing"):
        lmbuild.prune_args("1|0", 3)


def test_kenlm_build_small_corpus(tmp_path: Path, kenlm_bin: Path) -> None:
    import kenlm

    sentences = make_sentences(400, seed=3)
    text = tmp_path / "text.txt.gz"
    _, counts = lmbuild.write_lm_text(text, [("gen", sentences)], set())
    vocab = lmbuild.top_k_vocab(counts, 20)
    out = tmp_path / "lm" / "lm.binary"
    work = tmp_path / "work"
    info = lmbuild.build_kenlm(text, vocab, out, lmbuild.LmSettings(order=4, prune="0|0|1", memory="64M"),
                          lmbuild.kenlm_tools(str(kenlm_bin)), work)
    assert out.read_bytes().startswith(b"mmap lm http://kheafield.com/code")
    assert info["binary_bytes"] == out.stat().st_size
    assert sorted(p.name for p in work.iterdir()) == []  # arpa intermediates removed
    model = kenlm.Model(str(out))
    assert model.order == 4
    # filtered to the top-20 vocabulary: a frequent word is known, a rarer one is not
    outside = next(w for w in counts if w not in vocab)
    assert vocab[0] in model and outside not in model
    assert model.score("le chat", bos=True, eos=False) > model.score("chat le", bos=True, eos=False)


def test_tiny_corpus_needs_discount_fallback(tmp_path: Path, kenlm_bin: Path) -> None:
    text = tmp_path / "text.txt.gz"
    _, counts = lmbuild.write_lm_text(text, [("gen", ["le chat mange", "le chien mange"])], set())
    info = lmbuild.build_kenlm(text, lmbuild.top_k_vocab(counts, 10), tmp_path / "lm.binary",
                          lmbuild.LmSettings(order=3, prune="0", memory="32M"),
                          lmbuild.kenlm_tools(str(kenlm_bin)), tmp_path / "w")
    assert info["discount_fallback"] is True


def test_missing_tools_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import MissingInputError

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingInputError, match="build_kenlm.sh"):
        lmbuild.kenlm_tools(str(tmp_path))
