"""Synthetic speech corpora for training tests: espeak-ng (the `espeakng-loader` wheel, via ctypes)
straight to 16 kHz PCM16 wav plus DeepSpeech CSVs in the `extracted/<corpus>/<corpus>_{split}.csv`
layout. Dev/test use voices and sentences that train never sees."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tests.espeak import speak

# Short everyday sentences; the generator combines words into new ones so train and held-out
# sentences differ while sharing the vocabulary.
_WORDS = {
    "fr": ("le chat la maison un chien petit grand rouge bleu mange dort court vite avec sans "
           "pour dans sur sous une table porte soleil pluie matin soir ami mère père livre "
           "école jardin pomme pain lait eau noir blanc vert jaune fleur arbre route ville "
           "mer ciel nuit jour beau chaud froid").split(),
    "en": ("the cat a house dog small big red blue eats sleeps runs fast with without for "
           "in on under table door sun rain morning evening friend mother father book school "
           "garden apple bread milk water black white green yellow flower tree road city sea "
           "sky night day nice warm cold").split(),
}
TRAIN_VOICES = ("m1", "m2", "m3", "f1", "f2", "f3", "m4", "f4")
HELDOUT_VOICES = ("m7", "f5")


def synth_clip(text: str, voice: str, out: Path, *, wpm: int = 160, pitch: int = 50,
               noise: float = 0.0, rng: np.random.Generator | None = None) -> int:
    """Speak `text` into a 16 kHz mono PCM16 wav at `out`; returns its size in bytes."""
    pcm, rate = speak(text, voice, wpm, pitch)
    audio = soxr.resample(pcm, rate, 16000)
    if noise > 0:
        rng = rng or np.random.default_rng(0)
        audio = audio + rng.normal(0, noise, audio.shape).astype(np.float32)
    audio = np.concatenate([np.zeros(1600, np.float32), audio, np.zeros(1600, np.float32)])
    sf.write(out, np.clip(audio, -1, 1), 16000, subtype="PCM_16")
    return out.stat().st_size


@dataclass(frozen=True)
class Corpus:
    root: Path          # the data dir
    name: str
    csvs: dict[str, Path]
    alphabet: Path


def sentences(lang: str, n: int, seed: int, words: tuple[int, int] = (2, 4)) -> list[str]:
    rng = random.Random(seed)
    vocab = _WORDS[lang]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        s = " ".join(rng.choice(vocab) for _ in range(rng.randint(*words)))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def make_corpus(data_dir: Path, *, lang: str = "fr", name: str = "synth", n_train: int = 40,
                n_dev: int = 10, n_test: int = 10, seed: int = 0, words: tuple[int, int] = (2, 4),
                train_voices: Sequence[str] = TRAIN_VOICES,
                heldout_voices: Sequence[str] = HELDOUT_VOICES, noise: float = 0.002) -> Corpus:
    """Write `extracted/<name>/` with wavs and the three CSVs, and `models/alphabet.txt`."""
    from pipeline.langs import load_pack  # noqa: F401 - ensures repo import path works
    from pipeline.text.alphabet import Alphabet

    rng = np.random.default_rng(seed)
    corpus_dir = data_dir / "extracted" / name
    clips = corpus_dir / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    all_sent = sentences(lang, n_train + n_dev + n_test, seed, words)
    splits = {"train": all_sent[:n_train], "dev": all_sent[n_train:n_train + n_dev],
              "test": all_sent[n_train + n_dev:]}
    csvs: dict[str, Path] = {}
    for split, sents in splits.items():
        voices = train_voices if split == "train" else heldout_voices
        rows = []
        for i, text in enumerate(sents):
            voice = f"{lang}+{voices[i % len(voices)]}"
            wav = clips / f"{split}_{i:05d}.wav"
            size = synth_clip(text, voice, wav, wpm=int(rng.integers(140, 190)),
                              pitch=int(rng.integers(35, 65)), noise=noise, rng=rng)
            rows.append((f"clips/{wav.name}", size, text))
        path = corpus_dir / f"{name}_{split}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["wav_filename", "wav_filesize", "transcript"])
            w.writerows(rows)
        csvs[split] = path
    alphabet_path = data_dir / "models" / "alphabet.txt"
    lang_alpha = Path(__file__).resolve().parents[2] / "pipeline" / "langs" / lang / "alphabet.txt"
    alphabet_path.parent.mkdir(parents=True, exist_ok=True)
    Alphabet.from_file(lang_alpha).write(alphabet_path)
    heldout = data_dir / "extracted" / "heldout_sentences.txt"
    heldout.write_text("\n".join(splits["dev"] + splits["test"]) + "\n", encoding="utf-8")
    return Corpus(data_dir, name, csvs, alphabet_path)
