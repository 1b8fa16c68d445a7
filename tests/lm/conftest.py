"""Fixtures for the LM tests: real KenLM tools (built by scripts/build_kenlm.sh into the cache the
pipeline searches) and a small LM + scorer (helpers: tests/lm/helpers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lm.helpers import ALPHABET, REPO, make_sentences


@pytest.fixture(scope="session")
def kenlm_bin() -> Path:
    """The KenLM tools; built with scripts/build_kenlm.sh when missing (≈ 80 s, once per machine)."""
    from pipeline.lm.build import KENLM_TOOLS
    from pipeline.tools import default_tool_dirs, find_tool

    if all(find_tool(t) for t in KENLM_TOOLS):
        return find_tool("lmplz").parent  # type: ignore[union-attr]
    dest = default_tool_dirs()[0]
    subprocess.run(["bash", str(REPO / "scripts" / "build_kenlm.sh"), str(dest)], check=True,
                   env={**os.environ, "PYTHON": sys.executable})
    return dest


@pytest.fixture(scope="session")
def small_lm(tmp_path_factory: pytest.TempPathFactory, kenlm_bin: Path) -> dict:
    """A 3-gram LM + scorer over the generated corpus (shared by the decoder tests)."""
    from pipeline.lm import build as lmbuild
    from pipeline.lm.scorer import build_scorer

    work = tmp_path_factory.mktemp("small_lm")
    sentences = make_sentences(3000, seed=1)
    text = work / "text.txt.gz"
    _, counts = lmbuild.write_lm_text(text, [("gen", sentences)], set())
    vocab = lmbuild.top_k_vocab(counts, 1000)
    tools = lmbuild.kenlm_tools(str(kenlm_bin))
    binary = work / "lm.binary"
    lmbuild.build_kenlm(text, vocab, binary, lmbuild.LmSettings(order=3, prune="0", memory="64M"), tools,
                   work / "k")
    scorer = work / "kenlm.scorer"
    build_scorer(binary, vocab, ALPHABET, 0.93, 1.18, scorer)
    return {"binary": binary, "scorer": scorer, "vocab": vocab, "sentences": sentences}
