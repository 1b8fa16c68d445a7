"""TrainingSpeech, Lingua Libre, M-AILABS and csv lists from exact-layout archives in sources/."""

from __future__ import annotations

import pytest
import soundfile as sf

from importers import CONTRACT, REGISTRY, get_importer
from tests.importers.archives import (
    encode,
    lingua_libre_files,
    m_ailabs_files,
    make_tgz,
    make_zip,
    speech,
    trainingspeech_files,
)
from tests.importers.helpers import quarantine, read_csv, report, run_stages


def _splits(paths, corpus):
    out = {}
    for sp in ("train", "dev", "test"):
        header, rows = read_csv(paths.corpus_csv(corpus, sp))
        assert header == ["wav_filename", "wav_filesize", "transcript"]
        out[sp] = rows
    return out


def _speaker_of(corpus: str, wav: str) -> str:
    parts = wav.split("/")
    if corpus == "m_ailabs":
        return "/".join(parts[1:3]) if parts[1] != "mix" else f"mix/{parts[2]}"
    return parts[1]


def _assert_disjoint(splits, corpus, speakers=True):
    sets = {sp: ({r["transcript"] for r in rows}, {_speaker_of(corpus, r["wav_filename"]) for r in rows})
            for sp, rows in splits.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not sets[a][0] & sets[b][0], (a, b)
        if speakers:
            assert not sets[a][1] & sets[b][1], (a, b)


@pytest.mark.parametrize("key", list(REGISTRY))
def test_contract(key):
    mod = get_importer(key)
    for name in CONTRACT:
        assert hasattr(mod, name), (key, name)
    assert mod.KEY == key
    doc = mod.__doc__ or ""
    assert "License" in doc and "Layout" in doc or "Input" in doc


def test_trainingspeech(data_dir):
    make_zip(data_dir / "sources" / "ts_2019-04-11_fr_FR.zip", trainingspeech_files())
    _, paths = run_stages(data_dir, CORPORA="trainingspeech")
    splits = _splits(paths, "trainingspeech")
    rep = report(paths, "trainingspeech")
    assert rep["rows_kept"] == 12 and rep["speakers_kept"] == 4
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [6, 3, 3]
    _assert_disjoint(splits, "trainingspeech")
    texts = {r["transcript"] for rows in splits.values() for r in rows}
    assert "il fait beau aujourd'hui" in texts  # ’ -> ', "!" dropped, lowercase


def test_lingua_libre_skip_list(data_dir):
    make_zip(data_dir / "sources" / "Q21-fra-French.zip", lingua_libre_files())
    # single words are short: the default MIN_DURATION=0.5 rejects espeak's (see docs)
    _, paths = run_stages(data_dir, CORPORA="lingua_libre", MIN_DURATION="0.2")
    rep = report(paths, "lingua_libre")
    q = quarantine(paths, "lingua_libre")
    assert sorted(k for k, v in q.items() if v == "skip_list") == [
        "Modjou/bibliothèque.ogg", "Modjou/papillon.ogg", "Modjou/parapluie.ogg"]
    assert rep["rows_kept"] == 9 and rep["kept_ratio"] == 1.0
    splits = _splits(paths, "lingua_libre")
    _assert_disjoint(splits, "lingua_libre")
    wav = paths.corpus_dir("lingua_libre") / splits["train"][0]["wav_filename"]
    assert sf.info(str(wav)).samplerate == 16000


def test_m_ailabs_skip_list_applies_to_every_metadata_file(data_dir):
    make_tgz(data_dir / "sources" / "fr_FR.tgz", m_ailabs_files())
    _, paths = run_stages(data_dir, CORPORA="m_ailabs")
    q = quarantine(paths, "m_ailabs")
    skipped = sorted(k for k, v in q.items() if v == "skip_list")
    assert len(skipped) == 4
    assert {k.split("/")[1] for k in skipped} == {"ezwa", "bernard"}  # two speakers, two files
    rep = report(paths, "m_ailabs")
    assert rep["rows_kept"] + rep["reasons"].get("split_overlap", 0) == 8
    splits = _splits(paths, "m_ailabs")
    _assert_disjoint(splits, "m_ailabs")
    texts = {r["transcript"] for rows in splits.values() for r in rows}
    assert all(t == t.lower() for t in texts)


def test_csv_list(data_dir):
    src = data_dir / "sources"
    lines = ["file,text,speaker"]
    for i, (spk, text) in enumerate([("a", "bonjour"), ("a", "merci beaucoup"), ("b", "au revoir"),
                                     ("b", "bonne nuit"), ("c", "à demain"), ("c", "bon appétit"),
                                     ("d", "excusez moi"), ("d", "il fait froid")]):
        rel = f"my_audio/{spk}/{i}.flac"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(encode(speech(text, "fr+m3", 44100), 44100, "FLAC"))
        lines.append(f"{rel},{text},{spk}")
    (src / "mine.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, paths = run_stages(data_dir, CORPORA="csv", CSV_LIST="mine.csv", MIN_DURATION="0.2")
    splits = _splits(paths, "csv")
    assert sum(len(r) for r in splits.values()) == 8
    assert all(len(splits[s]) >= 1 for s in splits)


def test_two_corpora_and_heldout(data_dir):
    make_zip(data_dir / "sources" / "Q21-fra-French.zip", lingua_libre_files())
    make_zip(data_dir / "sources" / "ts_2019-04-11_fr_FR.zip", trainingspeech_files())
    _, paths = run_stages(data_dir, ("import", "alphabet"), CORPORA="lingua_libre,trainingspeech",
                          MIN_DURATION="0.2")
    held = set(paths.heldout_sentences.read_text(encoding="utf-8").splitlines())
    expect = set()
    for c in ("lingua_libre", "trainingspeech"):
        for sp in ("dev", "test"):
            expect |= {r["transcript"] for r in read_csv(paths.corpus_csv(c, sp))[1]}
    assert held == expect and held
    assert paths.alphabet.is_file()
