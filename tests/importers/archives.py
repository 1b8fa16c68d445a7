"""Exact-layout corpus archives built by code (espeak-ng speech, tones, junk bytes)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tests.importers.synth import speak, tone

VOICES = ("fr", "fr+m3", "fr+f2", "fr+m5", "fr+f4", "fr+m7", "fr+f1", "fr+m1")

CV_COLUMNS = {
    # up to CV 4
    "v4": ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent"],
    # CV 17-ish: renamed accent->accents, more columns, sentence_id before sentence
    "v17": ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
            "down_votes", "age", "gender", "accents", "variant", "locale", "segment"],
    # what the sample-corpus generator writes
    "sample": ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents",
               "variant", "locale", "segment"],
}

SENTENCES = [
    "bonjour tout le monde", "il fait beau aujourd'hui", "le chat dort sur le canapé",
    "nous partons demain matin", "la voiture est rouge", "elle lit un livre",
    "les enfants jouent dehors", "mon frère habite à paris", "le train arrive à l'heure",
    "je bois un café chaud", "la mer est calme ce soir", "il pleut depuis hier",
    "tu chantes très bien", "les fleurs sont jolies", "on mange des pommes",
    "le soleil se couche tôt", "ma soeur aime la musique", "le jardin est grand",
    "vous avez raison", "ce film est long", "le chien court vite", "la porte est fermée",
    "nous aimons le fromage", "il écrit une lettre", "le ciel est bleu", "je cherche mes clés",
    "elle porte une robe verte", "le marché ouvre à huit heures", "les oiseaux chantent",
    "il neige en montagne", "le pain est frais", "tu as gagné la course",
]


def speech(text: str, voice: str = "fr", rate: int = 48000) -> np.ndarray:
    x, r = speak(text, voice)
    return soxr.resample(x, r, rate).astype(np.float32) if rate != r else x


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    kw = {"MP3": {"format": "MP3"}, "OGG": {"format": "OGG", "subtype": "VORBIS"},
          "WAV": {"format": "WAV", "subtype": "PCM_16"}, "FLAC": {"format": "FLAC"}}[fmt]
    sf.write(buf, samples, rate, **kw)
    return buf.getvalue()


@dataclass
class Clip:
    """One CV row. `audio`: 'speech', 'corrupt', 'empty', 'missing', 'stereo44k', 'mono8k',
    'short', 'long', 'speech_short' (0.6 s tone), or raw bytes."""

    path: str
    sentence: str
    client_id: str
    split: str = "train"
    audio: str | bytes = "speech"
    voice: str = "fr"
    spoken: str | None = None   # what espeak says (default: the sentence)
    raw_line: bytes | None = None  # write this TSV line verbatim instead of the columns


def clip_bytes(c: Clip) -> bytes | None:
    if isinstance(c.audio, bytes):
        return c.audio
    kind = c.audio
    text = c.spoken or c.sentence or "bonjour"
    if kind == "speech":
        return encode(speech(text, c.voice), 48000, "MP3")
    if kind == "corrupt":
        return b"ID3\x03\x00" + bytes(range(256)) * 20
    if kind == "empty":
        return b""
    if kind == "missing":
        return None
    if kind == "stereo44k":
        x = speech(text, c.voice, 44100)
        return encode(np.stack([x, 0.5 * x], axis=1), 44100, "MP3")
    if kind == "mono8k":
        return encode(speech(text, c.voice, 8000), 8000, "MP3")
    if kind == "short":
        return encode(tone(0.2, 48000), 48000, "MP3")
    if kind == "long":
        return encode(tone(20.0, 48000), 48000, "MP3")
    if kind == "speech_short":
        return encode(tone(0.6, 48000), 48000, "MP3")
    raise ValueError(kind)


def standard_clips(n_speakers: int = 6, per_speaker: int = 4, lang_voice: str = "fr") -> list[Clip]:
    """Speakers 0..n-3 train, n-2 dev, n-1 test; one sentence per clip (official CV style)."""
    clips = []
    k = 0
    for s in range(n_speakers):
        split = "test" if s == n_speakers - 1 else "dev" if s == n_speakers - 2 else "train"
        for _ in range(per_speaker):
            clips.append(Clip(path=f"common_voice_fr_{1000 + k}.mp3",
                              sentence=SENTENCES[k].capitalize() + ".",
                              client_id=f"spk{s:02d}" + "a" * 20, split=split,
                              voice=VOICES[s % len(VOICES)]))
            k += 1
    return clips


def _row(c: Clip, columns: Sequence[str], i: int) -> bytes:
    if c.raw_line is not None:
        return c.raw_line
    values = {"client_id": c.client_id, "path": c.path, "sentence": c.sentence,
              "sentence_id": f"sid{i}", "sentence_domain": "", "up_votes": "2", "down_votes": "0",
              "age": "", "gender": "", "accent": "", "accents": "", "variant": "", "locale": "fr",
              "segment": ""}
    return "\t".join(values[col] for col in columns).encode("utf-8")


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 1_600_000_000
    tf.addfile(ti, io.BytesIO(data))


def make_cv_archive(out: Path, clips: Sequence[Clip], *, layout: str = "versioned",
                    columns: str = "v17", lang: str = "fr", validated: Sequence[Clip] | None = None,
                    official: bool = True, header: Sequence[str] | None = None,
                    version: str = "17.0-2024-03-15") -> Path:
    """A Common Voice .tar.gz: 'flat' (2019) or 'versioned' (cv-corpus-<ver>/<lang>/)."""
    prefix = "" if layout == "flat" else f"cv-corpus-{version}/{lang}/"
    cols = list(header) if header is not None else CV_COLUMNS[columns]
    out.parent.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    with tarfile.open(out, "w:gz") as tf:
        for c in list(clips) + list(validated or []):
            if c.path in written or c.raw_line is not None:
                continue
            data = clip_bytes(c)
            written.add(c.path)
            if data is not None:
                _add(tf, f"{prefix}clips/{c.path}", data)
        tsvs: dict[str, list[Clip]] = {"validated": list(validated if validated is not None else clips)}
        if official:
            for sp in ("train", "dev", "test"):
                tsvs[sp] = [c for c in clips if c.split == sp]
        tsvs["invalidated"] = []
        tsvs["other"] = []
        for name, rows in tsvs.items():
            lines = ["\t".join(cols).encode()] + [_row(c, cols, i) for i, c in enumerate(rows)]
            _add(tf, f"{prefix}{name}.tsv", b"\n".join(lines) + b"\n")
    return out


# ---------------------------------------------------------------------------------------------
# Other corpora
# ---------------------------------------------------------------------------------------------
@dataclass
class Entry:
    rel: str                 # path inside the archive
    data: bytes
    meta: dict = field(default_factory=dict)


def make_zip(out: Path, files: dict[str, bytes]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out


def make_tgz(out: Path, files: dict[str, bytes]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tf:
        for name, data in files.items():
            _add(tf, name, data)
    return out


def trainingspeech_files() -> dict[str, bytes]:
    """`ts_2019-04-11_fr_FR/data.csv` (path,text,duration) + wavs in one folder per reader."""
    files: dict[str, bytes] = {}
    lines = ["path,text,duration"]
    k = 0
    for r in range(4):
        for _ in range(3):
            text = SENTENCES[k].capitalize() + " !"
            x = speech(SENTENCES[k], VOICES[r], 22050)
            rel = f"reader{r}/book{r}_{k:04d}.wav"
            files[f"ts_2019-04-11_fr_FR/{rel}"] = encode(x, 22050, "WAV")
            text = text.replace("'", "’")  # typographic apostrophe, as in the real corpus
            lines.append(f'{rel},"{text}",{len(x) / 22050:.2f}')
            k += 1
    files["ts_2019-04-11_fr_FR/data.csv"] = ("\n".join(lines) + "\n").encode()
    return files


LL_WORDS = ["bonjour", "maison", "voiture", "soleil", "jardin", "fromage", "montagne", "musique",
            "chocolat", "bibliothèque", "papillon", "parapluie"]


def lingua_libre_files(qdir: str = "Q21-fra-French") -> dict[str, bytes]:
    """`Q21-fra-French/<Speaker>/<word>.ogg`; speaker Modjou is on the fr skip list."""
    files: dict[str, bytes] = {}
    speakers = ["Alice", "Bruno", "Chloe", "Modjou"]
    k = 0
    for s, spk in enumerate(speakers):
        for _ in range(3):
            word = LL_WORDS[k % len(LL_WORDS)]
            files[f"{qdir}/{spk}/{word}.ogg"] = encode(speech(word, VOICES[s], 48000), 48000, "OGG")
            k += 1
    return files


def m_ailabs_files(lang: str = "fr_FR") -> dict[str, bytes]:
    """`<lang>/by_book/{female,male,mix}/...` with `metadata.csv` `id|text|normalized`.
    The book `monsieur_lecoq` (on the fr skip list) appears under two different speakers."""
    books = [("female", "ezwa", "monsieur_lecoq"), ("female", "ezwa", "le_petit_prince"),
             ("male", "bernard", "monsieur_lecoq"), ("male", "bernard", "les_miserables"),
             ("male", "gilles", "vingt_mille_lieues"), ("mix", None, "contes")]
    files: dict[str, bytes] = {}
    k = 0
    for gender, spk, book in books:
        d = f"{lang}/by_book/{gender}/{spk}/{book}" if spk else f"{lang}/by_book/{gender}/{book}"
        lines = []
        for j in range(2):
            text = SENTENCES[k]
            cid = f"{book}_{j:02d}_f{k:06d}"
            files[f"{d}/wavs/{cid}.wav"] = encode(speech(text, VOICES[k % 8], 16000), 16000, "WAV")
            lines.append(f"{cid}|{text.upper()}!|{text}")
            k += 1
        files[f"{d}/metadata.csv"] = ("\n".join(lines) + "\n").encode()
        files[f"{d}/metadata_mls.json"] = b"{}"
    return files


def set_mtime(p: Path, t: int = 1_600_000_000) -> None:
    os.utime(p, (t, t))
