"""export stage glue (parity report from dev clips) and the package stage (archives, model card)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.export.package import write_release
from pipeline.paths import Paths
from pipeline.stages.export import run_export
from tests.export.helpers import REPO, TinyModel
from tests.helpers import SUBPROCESS_TIMEOUT


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: TinyModel) -> Path:
    root = tmp_path_factory.mktemp("datadir")
    paths = Paths.at(root)
    tiny_model.alphabet.write(paths.alphabet)
    d = paths.corpus_dir("common_voice")
    d.mkdir(parents=True)
    rows = [(str(c), c.stat().st_size, t) for c, t in zip(tiny_model.test_clips,
                                                            tiny_model.test_texts, strict=True)]
    for split, part in (("train", rows[:8]), ("dev", rows[8:]), ("test", rows[:4])):
        with open(paths.corpus_csv("common_voice", split), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["wav_filename", "wav_filesize", "transcript"])
            w.writerows(part)
    return root


def _cfg(**extra: str):
    sets = ["CORPORA=common_voice", "N_HIDDEN=64", "EXPORT_PARITY_CLIPS=6", "BEAM_WIDTH=100",
            *(f"{k}={v}" for k, v in extra.items())]
    return load_config(environ={}, overrides=sets, lang="fr")


@pytest.fixture(scope="module")
def exported(data_dir: Path, tiny_model: TinyModel) -> dict:
    """The export stage's work on the data dir (every test that needs its artifacts asks for this,
    so no test depends on another having run first)."""
    return run_export(_cfg(), Paths.at(data_dir), tiny_model.weights)


def test_run_export_writes_models_and_parity(data_dir, exported) -> None:
    paths = Paths.at(data_dir)
    report = exported
    for p in (paths.output_graph_pb, paths.output_graph_pbmm, paths.output_graph_tflite,
              paths.output_graph_fp32_tflite):
        assert p.stat().st_size > 0
    saved = json.loads(paths.export_parity.read_text())
    assert saved["sizes"] == report["sizes"]
    par = saved["parity"]
    assert len(par["clips"]) == 6
    for name in ("pb", "pbmm", "tflite_fp32"):
        assert par["artifacts"][name]["same_as_checkpoint"], name
        assert par["artifacts"][name]["max_abs_prob_diff"] < 1e-4
    assert par["artifacts"]["tflite"]["cer_vs_checkpoint"] < 0.1  # int8: near-ties may flip
    assert "int8_wer_delta" in par
    assert par["checkpoint"]["cer"] < 0.3


def test_package_archives_and_model_card(data_dir, exported) -> None:
    paths = Paths.at(data_dir)
    paths.scorer.parent.mkdir(parents=True, exist_ok=True)
    paths.scorer.write_bytes(b"scorer bytes")  # packaging copies it; its format is the LM area's
    paths.best_checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (paths.best_checkpoint_dir / "ckpt-7.index").write_bytes(b"i")
    (paths.best_checkpoint_dir / "ckpt-7.data-00000-of-00001").write_bytes(b"d" * 100)
    paths.test_results.write_text(json.dumps({"common_voice": {"wer": 0.25, "cer": 0.08}}))
    write_release(_cfg(EXPORT_MODEL_VERSION="1.2.3"), paths)
    with zipfile.ZipFile(paths.release_zip("fr-fr")) as z:
        assert sorted(z.namelist()) == ["MODEL_CARD.md", "alphabet.txt", "kenlm.scorer",
                                        "output_graph.tflite"]
        assert z.read("output_graph.tflite") == paths.output_graph_tflite.read_bytes()
    expected = {"model_tensorflow": ["alphabet.txt", "kenlm.scorer", "output_graph.pbmm"],
                "model_tflite": ["alphabet.txt", "kenlm.scorer", "output_graph.tflite"],
                "checkpoint": ["checkpoint_fr/ckpt-7.data-00000-of-00001",
                               "checkpoint_fr/ckpt-7.index"]}
    for kind, names in expected.items():
        with tarfile.open(paths.package_archive(kind, "fr"), "r:xz") as t:
            assert sorted(t.getnames()) == names
    card = paths.model_card.read_text()
    assert "model_version: 1.2.3" in card and "language: fr-FR" in card
    assert "license: MIT-0" in card
    assert "| common_voice | 0.250 | 0.080 |" in card
    assert "| common_voice |" in card.split("## Training data")[1]
    assert "output_graph.pbmm" in card and "MB" in card
    assert "int8 vs fp32" in card


def test_stage_via_cli_without_checkpoint_exits_3_naming_it(tmp_path, fr_alphabet) -> None:
    """Without a best checkpoint (the alphabet is there) the export stage stops with exit 3 (missing
    input) and one error line naming checkpoints/best_dev and nothing else, no traceback."""
    fr_alphabet.write(Paths.at(tmp_path).alphabet)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--data-dir", str(tmp_path),
                           "--stages", "export", "--set", "ONLY_EXPORT=1"], cwd=REPO,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 3, proc.stderr[-1500:]
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1, proc.stderr[-1500:]
    assert "checkpoints/best_dev" in errors[0] and "alphabet" not in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
