"""A new language from a Common Voice archive: `new-language`, the pack in <data-dir>/langs/, folding
never silent, pack edits rerunning what they affect, the alphabet report of a failed import, local
LM text, and the whole pipeline end to end on CPU with artifacts the legacy runtimes load."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests import legacy_runtime
from tests.cv_catalan import ARCHIVE_NAME, CODE, LETTERS, make_archive
from tests.helpers import run_cli

TINY = {"MODEL_LANGUAGE": CODE, "N_HIDDEN": "32", "EPOCHS": "1", "BATCH_SIZE": "8",
        "EARLY_STOP": "0", "LIVE_TRANSCRIPTS": "0", "EXPORT_PARITY_CLIPS": "0", "BEAM_WIDTH": "16",
        "WORKERS": "2", "DROPOUT": "0"}


def _sets(values: dict[str, str]) -> list[str]:
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def _kenlm_or_skip() -> None:
    from pipeline.lm.build import KENLM_TOOLS
    from pipeline.tools import find_tool

    if not all(find_tool(t) for t in KENLM_TOOLS):
        pytest.skip("KenLM tools not built (scripts/build_kenlm.sh)")


@pytest.fixture(scope="module")
def ca_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("ca_archive"))


def _data_dir(root: Path, archive: Path) -> Path:
    """A data dir with the archive in sources/ and the pack written by `new-language`."""
    data = root / "data"
    (data / "sources").mkdir(parents=True)
    os.link(archive, data / "sources" / archive.name)
    res = run_cli("new-language", CODE, "--from-cv", str(data / "sources" / archive.name),
                  "--data-dir", str(data))
    assert res.returncode == 0, res.stderr
    return data


def _run(data: Path, *args: str, **settings: str):
    return run_cli("run", "--data-dir", str(data), *args, *_sets({**TINY, **settings}))


def _plan(data: Path, **settings: str) -> dict[str, str]:
    res = _run(data, "--dry-run", **settings)
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        if line.strip().startswith("["):
            name = line.split("]")[0].split()[-1]
            out[name] = line.split("] ", 1)[1]
    return out


def _drop_alphabet_lines(pack_dir: Path, chars: str) -> None:
    p = pack_dir / "alphabet.txt"
    lines = p.read_text(encoding="utf-8").splitlines()
    p.write_text("\n".join(x for x in lines if x not in chars) + "\n", encoding="utf-8")


@pytest.mark.legacy
def test_new_language_end_to_end(tmp_path: Path, ca_archive: Path) -> None:
    """mcv-scripted-ca archive -> new-language -> every stage on CPU -> legacy runtimes."""
    _kenlm_or_skip()
    data = _data_dir(tmp_path, ca_archive)
    pack_dir = data / "langs" / CODE
    labels = [x for x in (pack_dir / "alphabet.txt").read_text(encoding="utf-8").splitlines()
              if not x.startswith("#")]
    assert set(LETTERS) <= set(labels) and " " in labels and "'" in labels
    toml = (pack_dir / "pack.toml").read_text(encoding="utf-8")
    assert 'num2words_lang = "ca"' in toml and f'archive = "{ARCHIVE_NAME}"' in toml
    with gzip.open(pack_dir / "lm_text.txt.gz", "rt", encoding="utf-8") as fh:
        lm_lines = fh.read().splitlines()
    assert "La col·lecció del museu és molt bonica." in lm_lines
    assert "Les flors del jardí són grogues." not in lm_lines  # a test sentence

    res = _run(data)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"language pack {CODE}: {pack_dir}" in res.stderr
    alphabet = [x for x in (data / "models/alphabet.txt").read_text(encoding="utf-8").splitlines()
                if not x.startswith("#")]
    assert alphabet == labels
    imp = json.loads((data / "extracted/common_voice/import_report.json").read_text())
    assert imp["rows_kept"] == 40 and imp["folded"] == {}
    rep = json.loads((data / "reports/alphabet_report.json").read_text())
    assert rep["folded_characters"] == [] and rep["unknown_characters"] == []
    with open(data / "extracted/common_voice/common_voice_train.csv", encoding="utf-8") as fh:
        transcripts = {r["transcript"] for r in csv.DictReader(fh)}
    assert "la col·lecció del museu és molt bonica" in transcripts
    assert "tinc tres gats i un gos" in transcripts
    lm = json.loads((data / "lm/lm_report.json").read_text())
    assert lm["text"]["sources"][f"language pack {CODE}: lm_text.txt.gz"] == 16
    with tarfile.open(data / f"model_tflite_{CODE}.tar.xz") as t:
        assert "output_graph.tflite" in t.getnames()

    why = legacy_runtime.ensure_runtimes()
    if why:
        pytest.skip(why)
    wav = sorted((data / "extracted/common_voice/wavs").glob("*.wav"))[:1]
    for runtime, model in (("deepspeech", "output_graph.pbmm"),
                           ("deepspeech_tflite", "output_graph.tflite"), ("stt", "output_graph.tflite")):
        out = legacy_runtime.transcribe(runtime, data / "models" / model, wav,
                                        scorer=data / "lm/kenlm.scorer")
        assert len(out.transcripts) == 1 and set(out.transcripts[0]) <= set(alphabet), runtime


def test_pack_edits_rerun_what_they_affect_and_local_lm_text(tmp_path: Path, ca_archive: Path
                                                             ) -> None:
    _kenlm_or_skip()
    data = _data_dir(tmp_path, ca_archive)
    pack_dir = data / "langs" / CODE
    res = _run(data, "--stages", "import,alphabet,lm")
    assert res.returncode == 0, res.stderr[-3000:]
    stages = ("import", "alphabet", "lm")
    assert [_plan(data)[s] for s in stages] == ["skip: done with the same settings"] * 3

    # the model card text: no stage before package reruns
    toml = pack_dir / "pack.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('author = ""', 'author = "Tester"'), encoding="utf-8")
    plan = _plan(data)
    assert [plan[s] for s in stages] == ["skip: done with the same settings"] * 3
    assert plan["package"].startswith("run")

    # local LM text: the LM (and what reads it) only
    lm_dir = data / "sources" / "lm"
    lm_dir.mkdir()
    (lm_dir / "wiki.txt").write_text("el xilòfon sona bé\n", encoding="utf-8")
    with gzip.open(lm_dir / "more.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("la mandolina també\n")
    plan = _plan(data)
    assert plan["import"].startswith("skip") and plan["alphabet"].startswith("skip")
    assert plan["lm"] == "run: inputs changed: sources/lm"
    res = _run(data, "--stages", "lm")
    assert res.returncode == 0, res.stderr[-3000:]
    vocab = next((data / "lm").glob("vocab-*.txt")).read_text(encoding="utf-8").split()
    assert "xilòfon" in vocab and "mandolina" in vocab
    sources = json.loads((data / "lm/lm_report.json").read_text())["text"]["sources"]
    assert sources["sources/lm/wiki.txt"] == 1 and sources["sources/lm/more.txt.gz"] == 1

    # the pack's LM text file
    with gzip.open(pack_dir / "lm_text.txt.gz", "at", encoding="utf-8") as fh:
        fh.write("una frase nova\n")
    plan = _plan(data)
    assert plan["import"].startswith("skip")
    assert plan["lm"] == "run: inputs changed: language pack lm_text"

    # a normalizer table: import and everything after it
    toml.write_text(toml.read_text(encoding="utf-8").replace("replace = {}",
                                                             'replace = { "plaça" = "placa" }'),
                    encoding="utf-8")
    plan = _plan(data)
    assert plan["import"] == "run: inputs changed: language pack normalizer"
    assert plan["alphabet"] == "run: upstream stage import reruns"

    # the alphabet alone (normalizer restored)
    toml.write_text(toml.read_text(encoding="utf-8").replace('replace = { "plaça" = "placa" }',
                                                             "replace = {}"), encoding="utf-8")
    (pack_dir / "alphabet.txt").write_text((pack_dir / "alphabet.txt").read_text(encoding="utf-8")
                                           + "k\n", encoding="utf-8")
    plan = _plan(data)
    assert plan["import"] == "run: inputs changed: language pack alphabet"
    assert plan["lm"] == "run: upstream stage import reruns"


def test_folding_is_counted_and_strict_mode_quarantines(tmp_path: Path, ca_archive: Path) -> None:
    data = _data_dir(tmp_path, ca_archive)
    _drop_alphabet_lines(data / "langs" / CODE, "çï")
    res = _run(data, "--stages", "import,alphabet")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "'ç' -> 'c': 4 times in 4 rows" in res.stderr  # import report table in the log
    imp = json.loads((data / "extracted/common_voice/import_report.json").read_text())
    assert {k: (v["to"], v["count"], v["rows"]) for k, v in imp["folded"].items()} == {
        "ç": ("c", 4, 4), "ï": ("i", 4, 4)}
    assert imp["rows_kept"] == 40
    rep = json.loads((data / "reports/alphabet_report.json").read_text())
    assert [(f["char"], f["to"], f["count"]) for f in rep["folded_characters"]] == [
        ("ç", "c", 4), ("ï", "i", 4)]
    assert "FOLDED to a base letter" in res.stderr

    res = _run(data, "--stages", "import,alphabet", STRICT_ALPHABET="1")
    assert res.returncode == 0, res.stderr[-3000:]
    imp = json.loads((data / "extracted/common_voice/import_report.json").read_text())
    assert imp["folded"] == {} and imp["reasons"]["outside_alphabet"] == 8
    with open(data / "extracted/common_voice/common_voice_quarantine.csv", encoding="utf-8") as fh:
        details = [r["detail"] for r in csv.DictReader(fh) if r["reason"] == "outside_alphabet"]
    assert "'ç' (STRICT_ALPHABET=1: not folded 'ç'->'c')" in details
    rep = json.loads((data / "reports/alphabet_report.json").read_text())
    assert {u["char"]: u["count"] for u in rep["unknown_characters"]} == {"ç": 4, "ï": 4}
    assert rep["folded_characters"] == []


def test_alphabet_report_is_written_when_the_import_fails(tmp_path: Path, ca_archive: Path) -> None:
    data = _data_dir(tmp_path, ca_archive)
    _drop_alphabet_lines(data / "langs" / CODE, "a")  # no base letter to fold to: rows rejected
    res = _run(data, "--stages", "import,alphabet")
    assert res.returncode == 1, res.stderr[-3000:]
    assert "MIN_KEPT_RATIO" in res.stderr and "alphabet_report.json" in res.stderr
    rep = json.loads((data / "reports/alphabet_report.json").read_text())
    assert rep["import_failed"] is True
    assert rep["alphabet"] == str(data / "langs" / CODE / "alphabet.txt")
    top = rep["unknown_characters"][0]
    assert top["char"] == "a" and top["count"] > 50 and top["examples"]
    assert not (data / "models" / "alphabet.txt").exists()


def test_new_language_refuses_to_overwrite_and_missing_archive(tmp_path: Path, ca_archive: Path
                                                                ) -> None:
    data = _data_dir(tmp_path, ca_archive)
    res = run_cli("new-language", CODE, "--from-cv", str(ca_archive), "--data-dir", str(data))
    assert res.returncode == 2 and "--force" in res.stderr
    res = run_cli("new-language", CODE, "--from-cv", str(tmp_path / "nope.tar.gz"),
                  "--data-dir", str(data), "--force")
    assert res.returncode == 3 and "nope.tar.gz" in res.stderr and "Traceback" not in res.stderr
    out = tmp_path / "elsewhere"
    res = run_cli("new-language", CODE, "--from-cv", str(ca_archive), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "pack.toml").is_file() and (out / "scaffold_report.md").is_file()
    shutil.rmtree(out)
