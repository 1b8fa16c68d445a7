"""Helpers for the LM tests: the test alphabet, a generated French-like text corpus and synthetic CTC
emissions spelling a text."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

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


def peaky(text: str, gap: int = 4, silence: int = 30, spike: int = 2,
          hints: dict[int, tuple[str, float]] | None = None) -> np.ndarray:
    """A confident model's output: silence, per character `spike` frames (p 0.99995) then `gap`
    blank frames (p_blank 0.99995), silence. `hints` maps a character position to (character,
    probability): that character replaces the spike by a faint hint inside the preceding gap."""
    rng = np.random.default_rng(0)
    rows: list[np.ndarray] = []
    blank = ALPHABET.num_classes - 1

    def frame(cls: int, others: dict[int, float] | None = None) -> None:
        p = rng.uniform(0.5, 1.5, ALPHABET.num_classes)
        p *= 5e-5 / p.sum()
        for k, v in (others or {}).items():
            p[k] = v
        p[cls] = 1.0 - (p.sum() - p[cls])
        rows.append(p)

    for _ in range(silence):
        frame(blank)
    for i, ch in enumerate(text):
        if hints and i in hints:
            other, q = hints[i]
            rows[-1] = rows[-1].copy()
            rows[-1][ALPHABET.encode(other)[0]] = q
            rows[-1][blank] = 1.0 - (rows[-1].sum() - rows[-1][blank])
        else:
            for _ in range(spike):
                frame(ALPHABET.encode(ch)[0])
        for _ in range(gap):
            frame(blank)
    for _ in range(silence):
        frame(blank)
    return np.asarray(rows, dtype=np.float32)


def write_transcript_csv(path: Path, transcripts: list[str]) -> None:
    """A DeepSpeech CSV of `transcripts` (clips/<i>.wav, no audio behind it)."""
    from pipeline.corpus_csv import write_rows

    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(path, ((f"clips/{i}.wav", 1000, t) for i, t in enumerate(transcripts)))


def lm_optimize_data_dir(root: Path, dev: list[str], scorer: Path, *overrides: str) -> tuple[Any, Any]:
    """(cfg, paths) of a data dir with a dev CSV of `dev`, `scorer` and the alphabet: what the
    lm_optimize stage reads besides the acoustic outputs."""
    from pipeline.config import load_config
    from pipeline.paths import Paths

    paths = Paths.at(root)
    write_transcript_csv(paths.corpus_csv("common_voice", "dev"), dev)
    paths.lm.mkdir(parents=True)
    paths.scorer.write_bytes(scorer.read_bytes())
    ALPHABET.write(paths.alphabet)
    return load_config(environ={}, overrides=["CORPORA=common_voice", "WORKERS=1", *overrides]), paths
