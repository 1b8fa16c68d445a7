"""The bad-input matrix: every bad row is quarantined with the right reason; nothing aborts."""

from __future__ import annotations

import pytest
import soundfile as sf

from pipeline.errors import DataQualityError
from tests.importers.archives import Clip, make_cv_archive, standard_clips
from tests.importers.helpers import quarantine, read_csv, report, run_stages

SPK = "badspeaker"


def _matrix() -> list[Clip]:
    bad = [
        Clip("corrupt.mp3", "une phrase correcte", SPK, audio="corrupt"),
        Clip("empty.mp3", "une phrase correcte", SPK, audio="empty"),
        Clip("stereo.mp3", "le vent souffle fort", SPK, audio="stereo44k"),
        Clip("mono8k.mp3", "la nuit tombe vite", SPK, audio="mono8k"),
        Clip("digits.mp3", "J'ai 3 chats et 2 chiens", SPK, spoken="j'ai trois chats et deux chiens"),
        Clip("glued.mp3", "Un écran 3D", SPK),
        Clip("foreign.mp3", "Il a dit 東京 hier", SPK, spoken="il a dit tokyo hier"),
        Clip("ctc.mp3", "une phrase beaucoup trop longue pour un si court extrait", SPK,
             audio="speech_short"),
        Clip("short.mp3", "oui", SPK, audio="short"),
        Clip("long.mp3", "une phrase", SPK, audio="long"),
        Clip("emptytext.mp3", "", SPK, spoken="euh"),
        Clip("punct.mp3", "« … ! »", SPK, spoken="euh"),
        Clip("missing.mp3", "ce fichier manque", SPK, audio="missing"),
        Clip("nonutf8.mp3", "x", SPK, raw_line=f"{SPK}\tnonutf8.mp3\tsid\tcaf\xe9 cr\xe8me".encode("latin-1")
             + b"\t\t2\t0\t\t\t\t\tfr\t"),
        Clip("short_row.mp3", "x", SPK, raw_line=f"{SPK}\tshort_row.mp3".encode()),
    ]
    return bad


EXPECTED = {
    "clips/corrupt.mp3": "unreadable_audio",
    "clips/empty.mp3": "empty_file",
    "clips/glued.mp3": "invalid_transcript",
    "clips/foreign.mp3": "outside_alphabet",
    "clips/ctc.mp3": "ctc_infeasible",
    "clips/short.mp3": "too_short",
    "clips/long.mp3": "too_long",
    "clips/emptytext.mp3": "empty_transcript",
    "clips/punct.mp3": "empty_transcript",
    "clips/missing.mp3": "missing_file",
    "train.tsv:31": "bad_row",   # non-UTF-8 line (header + 16 good + 13 bad before it)
    "train.tsv:32": "bad_row",   # row without the sentence column
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad") / "data"
    good = standard_clips(6, 4)
    bad = _matrix()
    # The duplicate: the same clip listed in train.tsv and test.tsv.
    dup = Clip(good[-1].path, good[-1].sentence, good[-1].client_id, split="train")
    make_cv_archive(d / "sources" / "cv-corpus-17.0-2024-03-15-fr.tar.gz", good + bad + [dup])
    _, paths = run_stages(d, ("import", "alphabet"))
    return paths, good


def test_each_bad_row_has_its_reason(imported):
    paths, good = imported
    q = quarantine(paths)
    for source, reason in EXPECTED.items():
        assert q.get(source) == reason, (source, q.get(source))
    dup_path = f"clips/{good[-1].path}"
    assert q[dup_path] == "duplicate_clip"
    rep = report(paths)
    assert rep["reasons"] == {"bad_row": 2, "ctc_infeasible": 1, "duplicate_clip": 1, "empty_file": 1,
                              "empty_transcript": 2, "invalid_transcript": 1, "missing_file": 1,
                              "outside_alphabet": 1, "too_long": 1, "too_short": 1,
                              "unreadable_audio": 1}
    assert rep["rows_kept"] == 24 + 3  # good + stereo + 8 kHz + digits
    assert rep["rows_total"] == 24 + 15 + 1
    assert "unreadable_audio" in rep["examples"]


def test_converted_and_spelled(imported):
    paths, _ = imported
    _, rows = read_csv(paths.corpus_csv("common_voice", "train"))
    by_wav = {r["wav_filename"]: r for r in rows}
    assert by_wav["wavs/digits.wav"]["transcript"] == "j'ai trois chats et deux chiens"
    for name in ("stereo", "mono8k"):
        info = sf.info(str(paths.corpus_dir("common_voice") / f"wavs/{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration > 0.5  # nothing trimmed silently


def test_alphabet_report_lists_foreign_glyphs(imported):
    import json

    paths, _ = imported
    rep = json.loads(paths.alphabet_report.read_text(encoding="utf-8"))
    chars = {u["char"]: u for u in rep["unknown_characters"]}
    assert set(chars) == {"東", "京"}
    assert chars["東"]["count"] == 1 and chars["東"]["examples"][0]["source"] == "clips/foreign.mp3"
    assert rep["unencodable_rows"] == [] and rep["rows_checked"] == 27
    text = paths.alphabet.read_text(encoding="utf-8")
    assert "\n \n" in text and "\nœ\n" in text and text.startswith("#")
    from pipeline.text.alphabet import Alphabet

    assert Alphabet.from_file(paths.alphabet).labels[:3] == (" ", "'", "a")


def test_missing_column_fails_with_top_reason(tmp_path):
    d = tmp_path / "data"
    clips = standard_clips(3, 2)
    header = ["client_id", "path", "up_votes"]  # no `sentence` column
    make_cv_archive(d / "sources" / "cv-corpus-17.0-2024-03-15-fr.tar.gz", clips, header=header)
    with pytest.raises(DataQualityError) as exc:
        run_stages(d)
    msg = str(exc.value)
    assert "bad_row 6" in msg and "MIN_KEPT_RATIO" in msg
    q = read_csv(d / "extracted" / "common_voice" / "common_voice_quarantine.csv")[1]
    assert "column(s) sentence missing" in q[0]["detail"]
