"""Bad-input matrix, the cases not already proven elsewhere (docs/RELIABILITY.md lists all of them
with the test of each): every bad input ends in a quarantine row with its reason or in one clear
error naming what to fix, and nothing already done is lost (sources untouched, finished work reused
on the rerun after the fix)."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import logging
import math
import os
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.http_server import LocalServer
from tests.reliability.helpers import (
    CV_NAME,
    TINY,
    Clip,
    can_mount,
    clip_bytes,
    copy_data_dir,
    cv_row,
    mount_tmpfs,
    run_cli,
    sets,
    temp_leftovers,
    tree_digest,
    tsv_bytes,
    write_cv_archive,
)

SPK = "matrixspeaker" + "b" * 20
COLUMNS = ["client_id", "path", "sentence", "up_votes", "down_votes", "locale"]
# the BOM file lists `path` first: a BOM left in place would hide that column
BOM_COLUMNS = ["path", "sentence", "client_id", "up_votes", "down_votes", "locale"]


def _good(n_speakers: int = 6, per: int = 4) -> list[Clip]:
    from tests.importers.archives import standard_clips

    return standard_clips(n_speakers, per)


def _mp3_cut() -> bytes:
    from tests.importers.archives import encode, speech

    data = encode(speech("une phrase assez longue pour être coupée en deux"), 48000, "MP3")
    return data[: len(data) // 2]


def _wav_cut() -> bytes:
    from tests.importers.archives import encode, speech

    data = encode(speech("une autre phrase coupée au milieu", rate=22050), 22050, "WAV")
    return data[: len(data) // 2]


def _hour_long_flac() -> bytes:
    """One hour of silence at 48 kHz (550 kB of FLAC): 691 MB as float32 if a decoder read it whole."""
    buf = io.BytesIO()
    block = np.zeros(48000 * 60, np.float32)
    with sf.SoundFile(buf, "w", 48000, 1, format="FLAC") as f:
        for _ in range(60):
            f.write(block)
    return buf.getvalue()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _quarantine(data: Path) -> dict[str, dict[str, str]]:
    rows = _read_csv(data / "extracted" / "common_voice" / "common_voice_quarantine.csv")
    return {r["source"]: r for r in rows}


def _import(data: Path, *extra: str, env: dict[str, str] | None = None):
    return run_cli("run", "--data-dir", str(data), "--stages", "import", *sets(
        {"CORPORA": "common_voice", "WORKERS": "2", "MODEL_LANGUAGE": "fr"}), *extra, env=env)


# ---------------------------------------------------------------------------------------------
# Audio and TSV encodings, through the real import stage
# ---------------------------------------------------------------------------------------------
# path -> (expected reason, text the quarantine detail must contain)
BAD_CLIPS = {
    "cut.mp3": ("unreadable_audio", "truncated: the header promises"),
    "cut.wav": ("unreadable_audio", "truncated: the WAV header declares"),
    "hour.flac": ("too_long", "3600.00s > MAX_DURATION 15s"),
    "oslo.mp3": ("outside_alphabet", "ø"),
    "emoji.mp3": ("outside_alphabet", "😀"),
    "copy.mp3": ("duplicate_clip", "same audio bytes as clips/common_voice_fr_1000.mp3"),
}


@functools.cache
def bad_clips() -> dict[str, Clip]:
    return {
        "cut.mp3": Clip("cut.mp3", "une phrase assez longue pour être coupée en deux", SPK, audio=_mp3_cut()),
        "cut.wav": Clip("cut.wav", "une autre phrase coupée au milieu", SPK, audio=_wav_cut()),
        "hour.flac": Clip("hour.flac", "une très longue lecture", SPK, audio=_hour_long_flac()),
        "oslo.mp3": Clip("oslo.mp3", "Il a vu Søren à Oslo", SPK, spoken="il a vu soren à oslo"),
        "emoji.mp3": Clip("emoji.mp3", "c'est super 😀 non", SPK, spoken="c'est super non"),
    }


@pytest.fixture(scope="module")
def matrix_import(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CV archive: train.tsv with a UTF-8 BOM (and `path` as first column), dev.tsv in UTF-16
    with BOM, test.tsv plain; the bad clips above in train, plus a Spanish 'ñ' that is spelled."""
    data = tmp_path_factory.mktemp("matrix") / "data"
    good = _good()
    good[0].audio = clip_bytes(good[0])  # the same bytes again under another name: a duplicate
    bad = [*bad_clips().values(), Clip("copy.mp3", "un autre texte", SPK, audio=good[0].audio)]
    nino = Clip("nino.mp3", "El niño joue dehors", SPK, spoken="el nino joue dehors")
    rows = {sp: [cv_row(c) for c in good if c.split == sp] for sp in ("train", "dev", "test")}
    rows["train"] += [cv_row(c) for c in bad + [nino]]
    tsvs = {
        "train.tsv": tsv_bytes(rows["train"], BOM_COLUMNS, bom=b"\xef\xbb\xbf"),
        "dev.tsv": tsv_bytes(rows["dev"], COLUMNS, encoding="utf-16"),  # Python writes the BOM
        "test.tsv": tsv_bytes(rows["test"], COLUMNS),
        "validated.tsv": tsv_bytes([cv_row(c) for c in good + bad + [nino]], COLUMNS),
    }
    assert tsvs["dev.tsv"][:2] == b"\xff\xfe"
    write_cv_archive(data / "sources" / CV_NAME, good + bad + [nino], tsvs)
    res = _import(data)
    assert res.returncode == 0, res.stderr[-3000:]
    return data


def test_bom_and_utf16_tsvs_import_every_row(matrix_import: Path) -> None:
    d = matrix_import / "extracted" / "common_voice"
    counts = {sp: len(_read_csv(d / f"common_voice_{sp}.csv")) for sp in ("train", "dev", "test")}
    # 16 good train rows + the spelled 'ñ' row; dev (UTF-16) and test keep all 4 each
    assert counts == {"train": 17, "dev": 4, "test": 4}
    q = _quarantine(matrix_import)
    assert not [r for r in q.values() if r["reason"] == "bad_row"], q
    report = json.loads((d / "import_report.json").read_text(encoding="utf-8"))
    assert report["speakers_kept"] == 7  # speakers read from client_id in every encoding


@pytest.mark.parametrize("name", sorted(BAD_CLIPS))
def test_bad_audio_and_text_quarantined_with_reason(matrix_import: Path, name: str) -> None:
    reason, detail = BAD_CLIPS[name]
    row = _quarantine(matrix_import)[f"clips/{name}"]
    assert row["reason"] == reason, row
    assert detail in row["detail"], row
    if reason != "duplicate_clip":  # (a duplicate is found by its converted bytes; its wav is kept)
        assert not (matrix_import / "extracted" / "common_voice" / "wavs" / f"{Path(name).stem}.wav").exists()


def test_spanish_letter_is_spelled_not_rejected(matrix_import: Path) -> None:
    rows = _read_csv(matrix_import / "extracted" / "common_voice" / "common_voice_train.csv")
    assert {r["wav_filename"]: r["transcript"] for r in rows}["wavs/nino.wav"] == "el nino joue dehors"


def test_hour_long_clip_is_never_read_whole(tmp_path: Path) -> None:
    """The too_long verdict comes from the header: decoding the hour would take ~700 MB."""
    from importers.base import SourceRow
    from importers.engine import RowSettings, process_row
    from pipeline.langs import load_pack
    from pipeline.text.normalize import rules_for

    src = tmp_path / "hour.flac"
    src.write_bytes(bad_clips()["hour.flac"].audio)  # type: ignore[arg-type]
    row = SourceRow(key="clips/hour.flac", audio=src, wav_rel="wavs/hour.wav",
                    transcript="une très longue lecture", speaker="s")
    settings = RowSettings(corpus_dir=tmp_path, rules=rules_for(load_pack("fr"), False),
                           min_duration=0.5, max_duration=15.0)
    tracemalloc.start()
    res = process_row(row, settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res.reason == "too_long" and math.isclose(res.duration, 3600.0)  # type: ignore[union-attr]
    assert peak < 50 << 20, f"peak {peak / 1e6:.0f} MB"
    # less than twice MAX_DURATION: reading stops just past MAX_DURATION, the header gives the length
    from pipeline import audio

    long_wav = tmp_path / "long.wav"
    sf.write(long_wav, np.zeros(16000 * 25, np.float32), 16000, subtype="PCM_16")
    with pytest.raises(audio.AudioTooLong) as exc:
        audio.decode(long_wav, max_seconds=15.0)
    assert exc.value.exact and exc.value.duration == 25.0


# ---------------------------------------------------------------------------------------------
# Whole-file problems: a clear error naming the file and what to do; nothing lost
# ---------------------------------------------------------------------------------------------
def test_cp1252_tsv_fails_clearly_then_resumes_with_a_lower_ratio(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = _good()
    rows = {sp: [cv_row(c) for c in good if c.split == sp] for sp in ("train", "dev", "test")}
    # French with accents in every other train sentence: those lines are not UTF-8 in cp1252
    accented = [Clip(f"acc{i}.mp3", f"le café numéro {w} est fermé", SPK, spoken=f"le café {w}")
                for i, w in enumerate(["un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit",
                                       "neuf", "dix", "onze", "douze", "treize", "quatorze", "quinze",
                                       "seize", "dix-sept", "dix-huit"])]
    rows["train"] += [cv_row(c) for c in accented]
    tsvs = {"train.tsv": tsv_bytes(rows["train"], COLUMNS, encoding="cp1252"),
            "dev.tsv": tsv_bytes(rows["dev"], COLUMNS), "test.tsv": tsv_bytes(rows["test"], COLUMNS),
            "validated.tsv": tsv_bytes(rows["train"] + rows["dev"] + rows["test"], COLUMNS)}
    archive = write_cv_archive(data / "sources" / CV_NAME, good + accented, tsvs)
    before = archive.read_bytes()
    res = _import(data)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "MIN_KEPT_RATIO" in res.stderr and "bad_row" in res.stderr
    assert "is not UTF-8" in res.stderr and "save train.tsv as UTF-8" in res.stderr
    assert not (data / ".state" / "import.done.json").exists()
    assert archive.read_bytes() == before  # sources/ is never modified
    wavs = data / "extracted" / "common_voice" / "wavs"
    done = tree_digest(wavs)
    # the 18 rows without accents (10 train, dev, test) were converted before the verdict
    assert len([k for k in done if k.endswith(".wav")]) == 18
    # the user accepts the loss for now: the rerun neither re-extracts nor re-converts
    res2 = _import(data, "--set", "MIN_KEPT_RATIO=0.3")
    assert res2.returncode == 0, res2.stderr[-2000:]
    assert "already extracted" in res2.stderr
    after = tree_digest(wavs)
    assert {k: after[k] for k in done} == done
    assert (data / ".state" / "import.done.json").exists()


def test_renamed_column_names_the_column_and_the_header(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = _good(3, 2)
    renamed = ["client_id", "path", "text", "up_votes"]
    tsvs = {f"{sp}.tsv": tsv_bytes([{**cv_row(c), "text": c.sentence} for c in good if c.split == sp],
                                   renamed) for sp in ("train", "dev", "test")}
    write_cv_archive(data / "sources" / CV_NAME, good, tsvs)
    res = _import(data)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "column(s) sentence missing from the header of" in res.stderr
    assert "(has: client_id, path, text, up_votes)" in res.stderr


def test_decompression_bomb_is_refused_before_writing(tmp_path: Path) -> None:
    """A tar member that declares 2 GiB in a 200-byte .tar.gz (real default limits)."""
    data = tmp_path / "data"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        ok = tarfile.TarInfo("cv/fr/train.tsv")
        ok.size = 5
        tf.addfile(ok, io.BytesIO(b"path\n"))
        bomb = tarfile.TarInfo("cv/fr/clips/bomb.mp3")
        bomb.size = 2 << 30
        tf.addfile(bomb)  # header only: the guard must refuse before any data is read
    archive = data / "sources" / CV_NAME
    archive.parent.mkdir(parents=True)
    archive.write_bytes(gzip.compress(raw.getvalue()[:1536]))
    res = _import(data)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "decompression bomb" in res.stderr and CV_NAME in res.stderr
    corpus = data / "extracted" / "common_voice"
    assert not (corpus / "source").exists() and not temp_leftovers(data / "extracted")


def test_zip_ratio_limit_and_free_space_check(tmp_path: Path) -> None:
    from pipeline import download as dl
    from pipeline.errors import UnsafeArchiveError

    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"ok")
        zf.writestr("zeros.bin", bytes(20 << 20))  # 20 MiB -> ~20 kB
    assert z.stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError, match=r"over 10:1.*decompression bomb"):
        dl.extract(z, tmp_path / "out", max_ratio=10, floor=1 << 20)
    assert not (tmp_path / "out").exists() and not temp_leftovers(tmp_path)
    # the real limits leave a ratio like this alone below the 1 GiB floor
    assert (dl.extract(z, tmp_path / "ok") / "zeros.bin").stat().st_size == 20 << 20


# ---------------------------------------------------------------------------------------------
# Downloads: HTTP errors and cut connections
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def test_http_403_fails_at_once_naming_the_url_source(server: LocalServer, tmp_path: Path) -> None:
    from pipeline import download as dl
    from pipeline.errors import DownloadError

    server.status["/corpus.zip"] = 403
    with pytest.raises(DownloadError) as exc:
        dl.download(server.url("/corpus.zip"), tmp_path / "corpus.zip", backoff_s=0.01,
                    source="language pack fr [corpus.lingua_libre] url")
    msg = str(exc.value)
    assert "HTTP 403" in msg and "[corpus.lingua_libre] url" in msg and str(tmp_path / "corpus.zip") in msg
    assert len(server.requests) == 1  # not retried
    assert not list(tmp_path.iterdir())


def test_http_500_gives_up_after_retries(server: LocalServer, tmp_path: Path) -> None:
    from pipeline import download as dl
    from pipeline.errors import DownloadError

    server.status["/f"] = 500
    with pytest.raises(DownloadError, match=r"failed after 2 retries \(HTTP 500\)"):
        dl.download(server.url("/f"), tmp_path / "f", retries=2, backoff_s=0.01)
    assert len(server.requests) == 3 and not (tmp_path / "f").exists()


def test_truncated_download_keeps_the_part_and_the_next_run_resumes(server: LocalServer,
                                                                    tmp_path: Path) -> None:
    from pipeline import download as dl
    from pipeline.errors import DownloadError

    payload = os.urandom(400_000)
    server.files["/c.tgz"] = payload
    server.cut["/c.tgz"] = 3  # the first three answers are cut in half
    checksum = "sha256:" + __import__("hashlib").sha256(payload).hexdigest()
    with pytest.raises(DownloadError, match="partial file .* is kept"):
        dl.download(server.url("/c.tgz"), tmp_path / "c.tgz", checksum, retries=2, backoff_s=0.01)
    part = tmp_path / "c.tgz.part"
    have = part.stat().st_size
    assert 0 < have < len(payload) and not (tmp_path / "c.tgz").exists()
    server.requests.clear()
    out = dl.download(server.url("/c.tgz"), tmp_path / "c.tgz", checksum, backoff_s=0.01)
    assert out.read_bytes() == payload and not part.exists()
    assert server.requests[0][1] == f"bytes={have}-"  # resumed, not restarted


# ---------------------------------------------------------------------------------------------
# The data dir
# ---------------------------------------------------------------------------------------------
def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sources").mkdir(parents=True)
    keep = data / "sources" / "mine.tar.gz"
    if can_mount():  # a real read-only file system (root ignores permission bits)
        mount_tmpfs(data, 1 << 20)
        (data / "sources").mkdir()
        keep.write_bytes(b"user data")
        from tests.reliability.helpers import remount

        remount(data, read_only=True)
    elif os.geteuid() != 0:
        keep.write_bytes(b"user data")
        data.chmod(0o555)
        (data / "sources").chmod(0o555)
    else:
        pytest.skip("root without CAP_SYS_ADMIN: no way to make a directory unwritable")
    try:
        res = run_cli("run", "--data-dir", str(data), "--stages", "preflight")
    finally:
        if can_mount():
            __import__("subprocess").run(["umount", "-l", str(data)], check=False)
        else:
            data.chmod(0o755)
            (data / "sources").chmod(0o755)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    if can_mount():
        assert f"the data dir {data} is on a read-only file system; mount it read-write" in res.stderr
    else:
        assert "not writable" in res.stderr and f"chown -R {os.getuid()}:{os.getgid()}" in res.stderr
        assert "--build-arg UID=" in res.stderr


# ---------------------------------------------------------------------------------------------
# Training: non-finite batches, a checkpoint of another geometry
# ---------------------------------------------------------------------------------------------
def _poisoned_trainer(cfg, paths, poison: set[int]):
    """The real Trainer whose batches number `poison` (1-based calls) carry NaN features: the
    real step computes a NaN loss and NaN gradients (no real clip gives NaN: PCM16 -> MFCC is
    finite, so this is the only way to exercise the guard without a diverging run)."""
    from pipeline.corpus_csv import split_csvs
    from pipeline.model.train import Trainer

    class Poisoned(Trainer):
        calls = 0

        def train_step(self, batch, *args, **kwargs):
            Poisoned.calls += 1
            if Poisoned.calls in poison:
                feats, flen, labels, llen = batch
                batch = (feats * float("nan"), flen, labels, llen)
            return super().train_step(batch, *args, **kwargs)

    return Poisoned(cfg, paths, split_csvs(cfg, paths, "train"), split_csvs(cfg, paths, "dev"))


def _weights_finite(ckpt: Path) -> bool:
    from pipeline.model.network import read_checkpoint_weights

    return all(np.isfinite(v).all() for v in read_checkpoint_weights(ckpt).values())


def test_nonfinite_batches_are_skipped_named_and_bounded(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.config import load_config
    from pipeline.errors import PipelineError
    from pipeline.paths import Paths

    data = copy_data_dir(tmp_path / "data")
    for d in ("checkpoints", ".state"):
        __import__("shutil").rmtree(data / d)
    paths = Paths.at(data)
    cfg = load_config(environ={}, overrides=[f"{k}={v}" for k, v in TINY.items()] +
                      ["EPOCHS=2", "NONFINITE_LIMIT=2"])
    # 12 clips, batch 4: 3 steps per epoch. Steps 2 and 4 are poisoned (never 2 in a row).
    caplog.set_level(logging.WARNING, logger="pipeline.model.train")
    state = _poisoned_trainer(cfg, paths, {2, 4}).run()
    assert state["nonfinite_total"] == 2 and state["epoch"] == 2 and state["global_step"] == 6
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert len(warnings) == 2 and all("clips: " in w and ".wav" in w for w in warnings), warnings
    assert "batch skipped, weights unchanged" in warnings[0]
    assert _weights_finite(paths.best_checkpoint_dir) and _weights_finite(paths.train_checkpoint_dir)

    # Two poisoned batches in a row reach NONFINITE_LIMIT=2: a clear stop, a finite checkpoint
    # holding the pre-poison weights, and a clean resume from it.
    __import__("shutil").rmtree(data / "checkpoints")
    with pytest.raises(PipelineError) as exc:
        _poisoned_trainer(cfg, paths, {2, 3}).run()
    msg = str(exc.value)
    assert "2 consecutive batches had a non-finite loss" in msg
    assert "LEARNING_RATE" in msg and "NONFINITE_LIMIT" in msg
    saved = json.loads((paths.train_checkpoint_dir / "train_state.json").read_text())
    assert saved["step_in_epoch"] == 3 and saved["nonfinite_total"] == 2
    assert _weights_finite(paths.train_checkpoint_dir)
    state = _poisoned_trainer(cfg, paths, set()).run()  # the data/LR fixed: resume, no poison
    assert state["global_step"] == 6 and state["epoch"] == 2


def test_nan_weights_are_never_checkpointed(tmp_path: Path) -> None:
    import tensorflow as tf

    from pipeline.config import load_config
    from pipeline.corpus_csv import split_csvs
    from pipeline.errors import PipelineError
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    data = copy_data_dir(tmp_path / "data")
    paths = Paths.at(data)
    before = tree_digest(paths.checkpoints)
    cfg = load_config(environ={}, overrides=[f"{k}={v}" for k, v in TINY.items()] + ["EPOCHS=2"])
    t = Trainer(cfg, paths, split_csvs(cfg, paths, "train"), split_csvs(cfg, paths, "dev"))
    state = t.setup()
    w = t.model.weight_list()[0]
    w.assign(tf.fill(w.shape, float("nan")))
    with pytest.raises(PipelineError, match="not finite; no checkpoint was written"):
        t._end_epoch(state, 0.0, 0.0)
    assert tree_digest(paths.checkpoints) == before


def test_checkpoint_of_another_geometry_is_a_clear_error(tmp_path: Path) -> None:
    data = copy_data_dir(tmp_path / "data")
    ckpt = data / "checkpoints"
    before = tree_digest(ckpt)
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    res = run_cli("run", "--data-dir", str(data), "--stages", "train", *sets({**TINY, "N_HIDDEN": "24"}),
                  env=env)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert "N_HIDDEN" in res.stderr and str(ckpt / "train") in res.stderr
    assert {k: v for k, v in tree_digest(ckpt).items() if k != "train_done.json"} == \
        {k: v for k, v in before.items() if k != "train_done.json"}  # no checkpoint touched
    # back to the checkpoint's settings: nothing is retrained
    res = run_cli("run", "--data-dir", str(data), "--stages", "train", *sets(TINY), env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 1 epoch(s) already done" in res.stderr
    state = json.loads((ckpt / "train" / "train_state.json").read_text())
    assert state["global_step"] == 3
