"""Common Voice: both archive layouts, several TSV column sets, splits, determinism, errors."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import soundfile as sf

from pipeline.errors import ChecksumMismatch, MissingInputError
from tests.importers.archives import SENTENCES, VOICES, Clip, make_cv_archive, standard_clips
from tests.importers.helpers import quarantine, read_csv, report, run_stages


@pytest.fixture(scope="module")
def std_clips():
    return standard_clips()


def _assert_outputs(paths, n_train=16, n_dev=4, n_test=4):
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        header, rows = read_csv(paths.corpus_csv("common_voice", split))
        assert header == ["wav_filename", "wav_filesize", "transcript"]
        assert len(rows) == n, split
        for r in rows:
            wav = paths.corpus_dir("common_voice") / r["wav_filename"]
            info = sf.info(str(wav))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert int(r["wav_filesize"]) == wav.stat().st_size
            assert r["transcript"] == r["transcript"].lower().strip(" .")


@pytest.mark.parametrize("layout,columns", [("versioned", "v17"), ("flat", "v4"),
                                            ("versioned", "sample")])
def test_layouts_and_column_sets(data_dir, std_clips, layout, columns):
    name = "fr.tar.gz" if layout == "flat" else "cv-corpus-17.0-2024-03-15-fr.tar.gz"
    make_cv_archive(data_dir / "sources" / name, std_clips, layout=layout, columns=columns)
    _, paths = run_stages(data_dir)
    _assert_outputs(paths)
    rep = report(paths)
    assert rep["rows_total"] == 24 and rep["rows_kept"] == 24 and rep["kept_ratio"] == 1.0
    assert rep["split_method"]["method"] == "official"
    assert rep["speakers_kept"] == 6 and rep["hours_kept"] > 0
    held = paths.heldout_sentences.read_text(encoding="utf-8").splitlines()
    assert len(held) == 8 and "bonjour tout le monde" not in held  # speaker 0 is in train


def test_deterministic_across_runs(tmp_path, std_clips):
    digests = []
    archive = make_cv_archive(tmp_path / "cv-corpus-17.0-2024-03-15-fr.tar.gz", std_clips)
    for i in range(2):
        d = tmp_path / f"run{i}"
        (d / "sources").mkdir(parents=True)
        shutil.copy2(archive, d / "sources" / archive.name)
        _, paths = run_stages(d, DUPLICATE_SENTENCE_COUNT="2", WORKERS=str(i + 1))
        h = hashlib.sha256()
        for split in ("train", "dev", "test"):
            h.update(paths.corpus_csv("common_voice", split).read_bytes())
        h.update(paths.corpus_quarantine("common_voice").read_bytes())
        digests.append(h.hexdigest())
    assert digests[0] == digests[1]


def test_duplicate_sentence_count_rebuilds_disjoint_splits(data_dir):
    # 8 speakers read overlapping sentences: 3 clips per sentence for 8 sentences.
    validated = []
    k = 0
    for s in range(8):
        for j in range(3):
            sent = SENTENCES[(s + j * 3) % 8]
            validated.append(Clip(path=f"c{k}.mp3", sentence=sent, client_id=f"speaker{s}",
                                  voice=VOICES[s % 8]))
            k += 1
    official = [c for c in validated[::3]]
    make_cv_archive(data_dir / "sources" / "cv-corpus-17.0-2024-03-15-fr.tar.gz", official,
                    validated=validated)
    _, paths = run_stages(data_dir, DUPLICATE_SENTENCE_COUNT="2")
    rep = report(paths)
    splits = {sp: read_csv(paths.corpus_csv("common_voice", sp))[1] for sp in ("train", "dev", "test")}
    counts: dict[str, int] = {}
    for rows in splits.values():
        for r in rows:
            counts[r["transcript"]] = counts.get(r["transcript"], 0) + 1
    assert max(counts.values()) <= 2
    assert rep["split_method"]["method"] == "speaker"
    assert rep["reasons"].get("sentence_over_limit", 0) == 8  # 8 sentences x (3 - 2)
    # sentence- and speaker-disjoint
    q = quarantine(paths)
    spk = {c.path: c.client_id for c in validated}
    by_split = {sp: ({r["transcript"] for r in rows},
                     {spk[r["wav_filename"].split("/")[-1].replace(".wav", ".mp3")] for r in rows})
                for sp, rows in splits.items()}
    for a in ("train", "dev", "test"):
        for b in ("train", "dev", "test"):
            if a < b:
                assert not (by_split[a][0] & by_split[b][0])
                assert not (by_split[a][1] & by_split[b][1])
    assert sum(len(r) for r in splits.values()) + len(q) == 24


def test_missing_archive_says_what_to_download(data_dir):
    with pytest.raises(MissingInputError) as exc:
        run_stages(data_dir)
    msg = str(exc.value)
    assert "datacollective.mozillafoundation.org" in msg and str(data_dir / "sources") in msg
    assert "cv-corpus-*-fr.tar.gz" in msg and "mcv-scripted-fr-v*.tar.gz" in msg


def test_several_archives_is_an_error(data_dir, std_clips):
    for name in ("cv-corpus-16.0-2023-12-06-fr.tar.gz", "cv-corpus-17.0-2024-03-15-fr.tar.gz"):
        (data_dir / "sources" / name).write_bytes(b"x")
    with pytest.raises(MissingInputError, match="CV_ARCHIVE"):
        run_stages(data_dir)


def test_checksum(data_dir, std_clips):
    archive = make_cv_archive(data_dir / "sources" / "mine.tar.gz", std_clips[:8])
    good = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(ChecksumMismatch, match="CV_CHECKSUM"):
        run_stages(data_dir, CV_ARCHIVE="mine.tar.gz", CV_CHECKSUM="sha1:" + "0" * 40)
    assert not (data_dir / "extracted" / "common_voice" / "source").exists()
    _, paths = run_stages(data_dir, CV_ARCHIVE="mine.tar.gz", CV_CHECKSUM=good, MIN_KEPT_RATIO="0")
    assert report(paths)["rows_kept"] == 8


def test_rerun_reuses_converted_wavs(data_dir, std_clips):
    make_cv_archive(data_dir / "sources" / "cv-corpus-17.0-2024-03-15-fr.tar.gz", std_clips[:12])
    _, paths = run_stages(data_dir, MIN_KEPT_RATIO="0")
    wavs = sorted((paths.corpus_dir("common_voice") / "wavs").glob("*.wav"))
    mtimes = [w.stat().st_mtime_ns for w in wavs]
    first = paths.corpus_csv("common_voice", "train").read_bytes()
    _, paths = run_stages(data_dir, MIN_KEPT_RATIO="0", MAX_DURATION="14")  # settings change: rerun
    assert [w.stat().st_mtime_ns for w in wavs] == mtimes
    assert paths.corpus_csv("common_voice", "train").read_bytes() == first


def test_english_compatible_and_reimport_as_csv(data_dir, std_clips):
    make_cv_archive(data_dir / "sources" / "cv-corpus-17.0-2024-03-15-fr.tar.gz", std_clips)
    _, paths = run_stages(data_dir, ("import", "alphabet"), ENGLISH_COMPATIBLE="1")
    _, rows = read_csv(paths.corpus_csv("common_voice", "train"))
    texts = {r["transcript"] for r in rows}
    assert "le chat dort sur le canape" in texts and all(t.isascii() for t in texts)
    from pipeline.text.alphabet import Alphabet

    assert len(Alphabet.from_file(paths.alphabet)) == 28
    # A DeepSpeech CSV is a valid `csv` corpus (absolute CSV_LIST, paths relative to it).
    _, paths2 = run_stages(data_dir.parent / "data2", CORPORA="csv",
                           CSV_LIST=str(paths.corpus_csv("common_voice", "train")))
    rep = report(paths2, "csv")
    assert rep["rows_kept"] + rep["reasons"].get("split_overlap", 0) == 16
