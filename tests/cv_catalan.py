"""A small Common Voice archive in a language no built-in pack covers (Catalan), named and laid out
the current way: `mcv-scripted-ca-v23.0.tar.gz` holding `cv-corpus-23.0-2025-09-05/ca/` with
`clips/*.mp3` and the TSVs. Speech by espeak-ng's Catalan voices (tests/espeak.py).

The sentences use the letters beyond a-z (à è é í ï ò ó ú ü ç), in-word punctuation (`l·l`),
elisions (l'àvia) and a digit.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

CODE = "ca"
ARCHIVE_NAME = "mcv-scripted-ca-v23.0.tar.gz"
ROOT = "cv-corpus-23.0-2025-09-05/ca"
COLUMNS = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes",
           "down_votes", "age", "gender", "accents", "variant", "locale", "segment")
LETTERS = "àèéíïòóúüç·"

TRAIN = [
    "La col·lecció del museu és molt bonica.",
    "Al col·legi aprenem a llegir i a escriure.",
    "L'àvia cuina una paella deliciosa.",
    "El pingüí neda a l'aigua freda.",
    "Demà anirem a la platja amb els nens.",
    "La cançó que cantes és preciosa.",
    "Aquesta il·lusió no s'acaba mai.",
    "Tinc 3 gats i un gos.",
    "El rellotge de la plaça toca les dues.",
    "Els veïns fan festa cada diumenge.",
    "La música clàssica m'agrada molt.",
    "Vull un cafè amb llet, si us plau.",
    "La novel·la té més de cent pàgines.",
    "El camió porta taronges a València.",
    "La meva germana estudia història.",
    "Hem comprat pa, formatge i raïm.",
]
DEV = ["El tren surt a les vuit del matí.", "Aquí fa molta calor a l'estiu.",
       "Parlem català a casa i a l'escola.", "La lluna brilla sobre el mar."]
TEST = ["Què vols per sopar aquesta nit?", "El nen llegeix un conte d'aventures.",
        "Les flors del jardí són grogues.", "Mireu com plou sobre la ciutat."]
TRAIN_VOICES = ("ca", "ca+m3")
DEV_VOICE, TEST_VOICE = "ca+f2", "ca+m5"


def _mp3(text: str, voice: str) -> bytes:
    import soundfile as sf
    import soxr

    from tests.espeak import speak

    x, rate = speak(text, voice, wpm=150)
    y = soxr.resample(x, rate, 48000)
    buf = io.BytesIO()
    sf.write(buf, y, 48000, format="MP3")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def make_archive(dest_dir: Path, name: str = ARCHIVE_NAME) -> Path:
    """Write the archive into `dest_dir`; returns its path."""
    rows: dict[str, list[tuple[str, str, str]]] = {"train": [], "dev": [], "test": []}
    clips: list[tuple[str, bytes]] = []
    plan = [("train", s, v) for s in TRAIN for v in TRAIN_VOICES]
    plan += [("dev", s, DEV_VOICE) for s in DEV] + [("test", s, TEST_VOICE) for s in TEST]
    for i, (split, sentence, voice) in enumerate(plan):
        clip = f"common_voice_ca_{41000000 + i}.mp3"
        client = hashlib.sha256(voice.encode()).hexdigest()[:32]
        clips.append((clip, _mp3(sentence, voice)))
        rows[split].append((client, clip, sentence))

    def tsv(items: list[tuple[str, str, str]]) -> bytes:
        lines = ["\t".join(COLUMNS)]
        for client, clip, sentence in items:
            sid = hashlib.sha1(sentence.encode()).hexdigest()
            lines.append("\t".join((client, clip, sid, sentence, "", "2", "0", "", "", "", "",
                                    CODE, "")))
        return ("\n".join(lines) + "\n").encode("utf-8")

    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / name
    with tarfile.open(path, "w:gz") as tar:
        for clip, data in clips:
            _add(tar, f"{ROOT}/clips/{clip}", data)
        everything = rows["train"] + rows["dev"] + rows["test"]
        _add(tar, f"{ROOT}/validated.tsv", tsv(everything))
        for split, items in rows.items():
            _add(tar, f"{ROOT}/{split}.tsv", tsv(items))
        _add(tar, f"{ROOT}/invalidated.tsv", tsv([]))
    return path
