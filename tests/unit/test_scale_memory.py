"""Passes over a corpus's CSVs hold one row at a time, not the corpus (#14): the memory they
allocate does not grow with the number of rows (measured with tracemalloc, not with time)."""

from __future__ import annotations

import multiprocessing
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.corpus_csv import SPLITS, iter_rows, read_rows, write_rows
from pipeline.errors import MissingInputError
from pipeline.paths import Paths


def _data_dir(root: Path, n: int) -> tuple[Any, Paths]:
    """A data dir whose common_voice train CSV has `n` rows, every transcript outside the
    French alphabet (the worst case for the alphabet report)."""
    cfg = load_config(environ={"MODEL_LANGUAGE": "fr", "CORPORA": "common_voice"}, data_dir=root)
    paths = Paths.at(root)
    for sp in SPLITS:
        p = paths.corpus_csv("common_voice", sp)
        p.parent.mkdir(parents=True, exist_ok=True)
        k = n if sp == "train" else 2
        write_rows(p, ((f"wavs/clip_{sp}_{i}.wav", 44 + 32000 * 3,
                        f"phrase numéro {i} avec Ω" if sp == "train" or i == 0 else f"phrase {sp} avec Ω")
                       for i in range(k)))
    return cfg, paths


def _peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _alphabet_report(cfg: Any, paths: Paths) -> dict[str, Any]:
    from pipeline.langs import load_pack
    from pipeline.text.alphabet_report import UNENCODABLE_SHOWN, build_alphabet_report

    report = build_alphabet_report(cfg, paths, load_pack("fr").alphabet, "fr")
    assert report["unencodable_count"] == report["rows_checked"]
    assert len(report["unencodable_rows"]) == min(UNENCODABLE_SHOWN, report["rows_checked"])
    return report


def _lm_transcripts(cfg: Any, paths: Paths) -> int:
    from pipeline.lm.build import read_transcripts

    return sum(1 for _ in read_transcripts(paths.corpus_csv("common_voice", "train")))


def _corpus_hours(cfg: Any, paths: Paths) -> dict[str, Any]:
    from pipeline.report.model_card import corpus_hours

    return corpus_hours(cfg, paths)


def _heldout(cfg: Any, paths: Paths) -> tuple[int, int]:
    from pipeline.stages.import_data import write_heldout

    n, in_train = write_heldout(cfg, paths)
    assert (n, in_train) == (2, 1)  # "phrase numéro 0 avec Ω" is in every split
    assert paths.heldout_sentences.read_text(encoding="utf-8").splitlines() == [
        "phrase dev avec Ω", "phrase test avec Ω"]
    return n, in_train


def _measure(task: Callable[..., object], root: Path) -> tuple[int, int]:
    """(peak bytes the pass allocates, peak bytes of reading the corpus's rows whole)."""
    cfg, paths = _data_dir(root, 20000)
    task(cfg, paths)  # warm-up: imports and caches are not the pass's own memory
    all_rows = _peak_bytes(lambda: read_rows(paths.corpus_csv("common_voice", "train")))
    return _peak_bytes(lambda: task(cfg, paths)), all_rows


@pytest.mark.parametrize("task", [_alphabet_report, _lm_transcripts, _corpus_hours, _heldout],
                         ids=["alphabet_report", "lm_transcripts", "corpus_hours", "heldout_sentences"])
def test_csv_passes_hold_one_row_at_a_time(tmp_path: Path, task: Callable[..., object]) -> None:
    # in a fresh process: what earlier tests left in this one (TensorFlow, caches) is not the pass's
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        peak, all_rows = pool.apply(_measure, (task, tmp_path))
    # the pass allocates a small fraction of what holding the corpus's rows takes
    assert peak < 0.25 * all_rows, (peak, all_rows)


def test_iter_rows_is_read_rows_one_at_a_time(tmp_path: Path) -> None:
    cfg, paths = _data_dir(tmp_path, 50)
    p = paths.corpus_csv("common_voice", "train")
    it = iter_rows(p)
    assert not isinstance(it, list)
    assert list(it) == read_rows(p)
    with pytest.raises(MissingInputError, match="does not exist"):
        next(iter_rows(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(MissingInputError, match="expected the header"):
        read_rows(bad)
