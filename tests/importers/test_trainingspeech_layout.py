"""TrainingSpeech in the layout of the real release samples (issue #16): one flat folder holding
`data.csv` with the columns `path,duration,text` in that order and the clips named by a hash,
transcripts of several sentences with typographic apostrophes, « » quotes and ';'. Speech is
synthesized here (the real clips are 9-32 s, too big to bundle)."""

from __future__ import annotations

import hashlib

from tests.importers.archives import encode, make_zip, speech
from tests.importers.helpers import read_csv, report, run_stages

TEXTS = [
    "Franz était trop préoccupé pour bien dormir. Sa nuit fut employée à rêver.",
    "Il faut que je sache qui il est, dit Franz en se levant. Oh ! non, s’écria la comtesse.",
    "D’ailleurs, en disant ces paroles, Luigi s’était éloigné.",
    "Teresa le suivit des yeux ; puis elle rentra chez elle en soupirant.",
    "« Comment ! véritablement, vous avez peur ? » lui dit Franz.",
    "Après le départ des deux dames pour le bal, il s’enferma dans son cabinet.",
]
VOICES = ("fr+m3", "fr+f2")


def ts_release_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    lines = ["path,duration,text"]
    for i, text in enumerate(TEXTS):
        x = speech(text.replace("’", "'"), VOICES[i % 2], 16000)
        name = hashlib.sha1(text.encode()).hexdigest()[:8] + ".wav"
        files[name] = encode(x, 16000, "WAV")
        quoted = text.replace('"', '""')
        lines.append(f'{name},{len(x) / 16000:.3f},"{quoted}"')
    files["data.csv"] = ("\n".join(lines) + "\n").encode("utf-8")
    return files


def test_trainingspeech_release_layout(data_dir):
    make_zip(data_dir / "sources" / "ts_2019-04-11_fr_FR.zip", ts_release_files())
    _, paths = run_stages(data_dir, CORPORA="trainingspeech")
    rep = report(paths, "trainingspeech")
    assert rep["rows_kept"] == len(TEXTS), rep["reasons"]
    rows = [r for sp in ("train", "dev", "test")
            for r in read_csv(paths.corpus_csv("trainingspeech", sp))[1]]
    texts = {r["transcript"] for r in rows}
    assert "d'ailleurs en disant ces paroles luigi s'était éloigné" in texts
    assert "comment véritablement vous avez peur lui dit franz" in texts
    assert all(r["wav_filename"].startswith("wavs/") for r in rows)
