"""The synthetic Common Voice archive: layout, TSVs, audio, disjoint splits, determinism, voices."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline import sample_corpus
from pipeline.errors import ConfigError
from pipeline.langs import load_pack
from pipeline.sample_corpus import (
    CV_COLUMNS,
    VERSION_DIR,
    distinct_variants,
    engine,
    load_sentences,
    make_sample_corpus,
    plan_corpus,
)
from tests.helpers import SUBPROCESS_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
CLIPS = 50
TSVS = ("validated", "train", "dev", "test", "invalidated", "other")


@pytest.fixture(scope="module")
def cli_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An fr archive made through the CLI, as `make demo` does."""
    out = tmp_path_factory.mktemp("cli") / "cv-corpus-fr.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "sample-corpus", "--lang", "fr",
                           "--out", str(out), "--clips", str(CLIPS), "--seed", "3"],
                          cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def extracted(cli_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("x")
    with tarfile.open(cli_archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / VERSION_DIR / "fr"


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_cli_writes_archive_atomically(cli_archive: Path) -> None:
    assert cli_archive.stat().st_size > 100_000
    assert cli_archive.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in cli_archive.parent.iterdir()] == [cli_archive.name]  # no temp left over


def test_archive_layout(cli_archive: Path, extracted: Path) -> None:
    with tarfile.open(cli_archive) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    root = f"{VERSION_DIR}/fr"
    assert names[:3] == [VERSION_DIR, root, f"{root}/clips"]
    for t in TSVS:
        assert f"{root}/{t}.tsv" in names
    clips = sorted(n for n in names if n.startswith(f"{root}/clips/") and n.endswith(".mp3"))
    assert len(clips) == CLIPS
    assert all(Path(n).name.startswith("common_voice_fr_") for n in clips)
    assert {m.uid for m in members} == {0} and {m.uname for m in members} == {""}
    assert len({m.mtime for m in members}) == 1
    assert len(names) == 3 + len(TSVS) + CLIPS


def test_tsv_columns_are_common_voices(extracted: Path) -> None:
    for t in TSVS:
        header = (extracted / f"{t}.tsv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split("\t") == list(CV_COLUMNS)
    assert CV_COLUMNS == ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender",
                          "accents", "variant", "locale", "segment")
    validated = read_tsv(extracted / "validated.tsv")
    splits = {s: read_tsv(extracted / f"{s}.tsv") for s in ("train", "dev", "test")}
    assert len(validated) == CLIPS
    assert sorted(r["path"] for r in validated) == sorted(r["path"] for rows in splits.values() for r in rows)
    assert {len(rows) for rows in splits.values()} >= {5}  # dev and test 10 % each
    assert len(splits["train"]) == CLIPS - 10
    clip_files = {p.name for p in (extracted / "clips").iterdir()}
    assert {r["path"] for r in validated} == clip_files
    for r in validated:
        assert r["locale"] == "fr" and r["up_votes"] == "2" and r["down_votes"] == "0"
        assert len(r["client_id"]) == 64 and r["sentence"]
    assert read_tsv(extracted / "invalidated.tsv") == [] and read_tsv(extracted / "other.tsv") == []


def test_clips_are_48k_mono_mp3_of_plausible_length(extracted: Path) -> None:
    rows = read_tsv(extracted / "validated.tsv")
    for r in rows:
        path = extracted / "clips" / r["path"]
        head = path.read_bytes()[:3]
        assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # ID3 tag or mp3 frame sync
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.format) == (48_000, 1, "MP3")
        audio, sr = sf.read(str(path), dtype="float32")
        words = len(r["sentence"].split())
        duration = len(audio) / sr
        assert 0.3 + 0.12 * words < duration < 2.0 + 0.8 * words, (r["sentence"], duration)
        assert 0.01 < float(np.sqrt(np.mean(audio ** 2))) and float(np.max(np.abs(audio))) <= 1.0


def test_splits_are_speaker_and_sentence_disjoint(extracted: Path) -> None:
    splits = {s: read_tsv(extracted / f"{s}.tsv") for s in ("train", "dev", "test")}
    speakers = {s: {r["client_id"] for r in rows} for s, rows in splits.items()}
    sentences = {s: {r["sentence"] for r in rows} for s, rows in splits.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not speakers[a] & speakers[b], (a, b)
        assert not sentences[a] & sentences[b], (a, b)
    assert len(speakers["train"]) >= 20  # many voices in train


def test_plan_holds_out_whole_voices_and_sentences() -> None:
    sentences = load_sentences("fr")
    variants = [f"v{i}" for i in range(60)]
    plan = plan_corpus("fr", 1000, 1, sentences, variants)
    by = {s: [c for c in plan if c.split == s] for s in ("train", "dev", "test")}
    assert [len(by[s]) for s in ("train", "dev", "test")] == [800, 100, 100]
    variant_sets = {s: {c.voice.variant for c in rows} for s, rows in by.items()}
    assert not variant_sets["train"] & (variant_sets["dev"] | variant_sets["test"])
    assert not variant_sets["dev"] & variant_sets["test"]
    assert len(variant_sets["dev"]) >= 3 and len(variant_sets["train"]) >= 40
    assert len({c.sentence for c in by["train"]}) == 800  # enough sentences: no repeats in train
    assert sorted(c.index for c in plan) == list(range(1, 1001))
    assert plan == plan_corpus("fr", 1000, 1, sentences, variants)
    assert plan != plan_corpus("fr", 1000, 2, sentences, variants)
    # A larger corpus of the same seed holds out the same voices and sentence pools.
    bigger = plan_corpus("fr", 2500, 1, sentences, variants)
    for split in ("dev", "test"):
        assert {c.voice.variant for c in bigger if c.split == split} == variant_sets[split]
        assert {c.sentence for c in bigger if c.split == split} >= {c.sentence for c in by[split]}
    mild = variants[::4]
    plan = plan_corpus("fr", 1000, 1, sentences, variants, heldout_candidates=mild)
    held = {c.voice.variant for c in plan if c.split != "train"}
    assert held <= set(mild) and len(held) == 10
    assert {c.voice.variant for c in plan if c.split == "train"} == set(variants) - held


def test_held_out_voices_are_ordinary_speakers() -> None:
    mild = sample_corpus.mild_variants(["m1", "f1", "Alex", "m7", "kaukovalta", "AnxiousAndy", "klatt",
                                        "robosoft3", "RicishayMax2", "linda", "NoSuchVoice"])
    assert mild == ["m1", "f1", "Alex", "m7"]


def test_same_seed_gives_byte_identical_archive(cli_archive: Path, tmp_path: Path) -> None:
    again = make_sample_corpus("fr", tmp_path / "again.tar.gz", clips=CLIPS, seed=3)
    assert again.read_bytes() == cli_archive.read_bytes()
    assert again.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_archive_does_not_depend_on_worker_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    two = make_sample_corpus("it", tmp_path / "two.tar.gz", clips=22, seed=5)  # 2 blocks, 2 workers
    monkeypatch.setattr(sample_corpus, "_pool_workers", lambda blocks: 1)
    one = make_sample_corpus("it", tmp_path / "one.tar.gz", clips=22, seed=5)
    assert one.read_bytes() == two.read_bytes()
    other = make_sample_corpus("it", tmp_path / "other.tar.gz", clips=6, seed=6)
    assert other.read_bytes() != two.read_bytes()
    with tarfile.open(one) as tar:
        assert f"{VERSION_DIR}/it/clips/common_voice_it_000022.mp3" in tar.getnames()


def test_variants_really_differ() -> None:
    kept = distinct_variants("fr")
    assert {f"m{i}" for i in range(1, 8)} | {f"f{i}" for i in range(1, 6)} <= set(kept)
    assert len(kept) >= 40
    assert len(kept) == len(set(kept)) and "fast" not in kept
    # Unknown names fall back to the base voice and are dropped; so are variants that sound like the
    # base voice ("fast" only sets a speed, which the rate parameter overrides) or like one already
    # kept (in espeak-ng 1.52 "benjamin" and "klatt6" render the probe like "adam").
    candidates = ["NoSuchVoice", "adam", "benjamin", "fast", "klatt6", "m3"]
    assert distinct_variants("fr", candidates) == ["adam", "m3"]
    eng = engine()
    probe = "le petit chat dort sur le canapé rouge"
    base = eng.synth(probe, "fr")
    for v in ("m3", "f2", "Annie"):
        assert eng.synth(probe, f"fr+{v}").tobytes() != base.tobytes()


def test_unknown_language_is_a_config_error(tmp_path: Path) -> None:
    out = tmp_path / "x.tar.gz"
    out.write_bytes(b"old")
    with pytest.raises(ConfigError, match="xx"):
        make_sample_corpus("xx", out, clips=5, seed=1)
    assert out.read_bytes() == b"old"


def _make_sentences_module():
    spec = importlib.util.spec_from_file_location("make_sentences", REPO / "scripts" / "make_sentences.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("lang", ["fr", "it", "en"])
def test_sentence_lists_fit_the_alphabet(lang: str) -> None:
    from pipeline.text.normalize import normalize

    pack = load_pack(lang)
    alphabet = pack.alphabet
    sentences = load_sentences(lang)
    raw = pack.sentences_path.read_text(encoding="utf-8").splitlines()
    assert len(raw) == len(set(raw)) == len(sentences)
    assert len(sentences) >= (1500 if lang == "fr" else 300)
    for s in sentences:
        assert 3 <= len(s.split()) <= 12, s
        assert not any(ch.isdigit() for ch in s), s
        assert all(ch in alphabet for ch in s.lower() if ch not in ".,;:!?-"), s
        assert normalize(s, pack), s  # the importer keeps every sentence
    words = {w.strip(".,;:!?-").lower() for s in sentences for w in s.split()}
    assert len(words) >= 500
    assert any("'" in s for s in sentences) and any("," in s for s in sentences)


def test_english_sentence_list_is_the_grammar_output() -> None:
    committed = load_pack("en").sentences_path.read_text(encoding="utf-8").splitlines()
    assert _make_sentences_module().generate("en", len(committed)) == committed


@pytest.mark.parametrize("lang", ["fr", "it"])
def test_french_and_italian_lists_are_real_cc0_sentences(lang: str) -> None:
    """Common Voice's CC0 sentences (issue #16), licence noted in the pack, chosen by the script's
    rules (the source collection itself is not in the repository)."""
    pack = load_pack(lang)
    note = (pack.directory / "sentences_LICENSE.txt").read_text(encoding="utf-8")
    assert "CC0" in note and "common-voice" in note
    mod = _make_sentences_module()
    alphabet = mod.load_alphabet(lang)
    sentences = load_sentences(lang)
    assert all(mod.cv_candidate(s, alphabet) == s for s in sentences)
    # real text: a vocabulary far beyond a grammar's (2500 French sentences, 4946 words)
    words = {w.strip(mod.CV_PUNCT).lower() for s in sentences for w in s.split()}
    assert len(words) > 1.2 * len(sentences)


def test_cv_candidate_rules() -> None:
    mod = _make_sentences_module()
    fr = mod.load_alphabet("fr")
    assert mod.cv_candidate("L’été   est chaud, dit-il.", fr) == "L'été est chaud, dit-il."
    for bad in ["Il est né en 1905 à Paris.",          # digit
                "M. Dupont est arrivé hier soir.",       # abbreviation
                "La SNCF annonce une grève demain.",     # acronym
                "Bonjour madame.",                       # too short
                "Il a dit « oui » sans hésiter.",        # quotes: espeak and the TSV would differ
                "Le mot 東京 est japonais ici."]:       # outside the alphabet
        assert mod.cv_candidate(bad, fr) is None, bad
