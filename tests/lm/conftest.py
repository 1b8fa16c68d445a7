"""Fixtures for the LM tests: real KenLM tools (built by scripts/build_kenlm.sh into the cache the
pipeline searches), a generated text corpus, synthetic CTC emissions."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from pipeline.text.alphabet import Alphabet

REPO = Path(__file__).resolve().parents[2]
ALPHABET = Alphabet(tuple(" abcdefghijklmnopqrstuvwxyz'"))

SUBJECTS = ["le chat", "le chien", "la souris", "un oiseau", "mon voisin", "la petite fille",
            "le vieux marin", "notre professeur", "ce cheval", "la reine"]
VERBS = ["mange", "regarde", "cherche", "aime", "voit", "attrape", "dessine", "porte"]
OBJECTS = ["une pomme", "le fromage", "un livre", "la lune", "une lettre", "le pain", "un bateau",
           "la maison", "des fleurs", "un chapeau"]
PLACES = ["dans le jardin", "sur la table", "au marché", "près de la mer", "sous le pont",
          "dans la cuisine", "avec plaisir", "le matin", "ce soir"]


def make_sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        if rng.random() < 0.6:
            s += " " + rng.choice(PLACES)
        # fold accents: the test alphabet is a-z'
        out.append(unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode())
    return out


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


def emissions(text: str, alphabet: Alphabet = ALPHABET, frames_per_char: int = 2,
              peak: float = 0.9, confusions: dict[int, tuple[str, float]] | None = None,
              seed: int = 0) -> np.ndarray:
    """Softmax-like [T, C] probabilities spelling `text` (char frames, then a blank frame).

    `confusions` maps a character position to (other char, its probability): that position's
    frames give `other` that probability and the true char the rest of `peak`, so greedy reads
    `other` when its probability is higher.
    """
    rng = np.random.default_rng(seed)
    c = alphabet.num_classes
    rows = []
    for i, ch in enumerate(text):
        for _ in range(frames_per_char):
            p = rng.uniform(0.0, 0.01, c)
            if confusions and i in confusions:
                other, q = confusions[i]
                p[alphabet.encode(other)[0]] = q
                p[alphabet.encode(ch)[0]] = peak - q
            else:
                p[alphabet.encode(ch)[0]] = peak
            rows.append(p / p.sum())
        p = rng.uniform(0.0, 0.01, c)
        p[-1] = peak
        rows.append(p / p.sum())
    return np.asarray(rows, dtype=np.float32)
