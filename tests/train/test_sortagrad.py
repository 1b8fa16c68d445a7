"""SORTAGRAD_EPOCHS: the first epochs' batches in order of duration, shortest first; shuffled after."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.helpers import copy_corpus, train_config


def _lengths(trainer, plan: list[list[int]]) -> list[int]:
    frames = trainer.train_set.frames
    return [int(max(frames[i] for i in batch)) for batch in plan]


@pytest.mark.parametrize("sortagrad", [0, 1])
def test_first_epochs_shortest_first(tiny_corpus, tmp_path: Path, sortagrad: int) -> None:
    from pipeline.model.train import Trainer
    from pipeline.paths import Paths

    paths = Paths.at(copy_corpus(tiny_corpus, tmp_path / "data"))
    t = Trainer(train_config(BATCH_SIZE=2, SORTAGRAD_EPOCHS=sortagrad), paths,
                [tiny_corpus.csvs["train"]], [tiny_corpus.csvs["dev"]])
    t.setup()
    first, second = t.epoch_plan(0), t.epoch_plan(1)
    assert len(first) == len(second) == 12  # 24 clips, batch 2
    for plan in (first, second):
        assert sorted(i for b in plan for i in b) == list(range(24))  # every clip once
    ascending = sorted(_lengths(t, first))
    assert (_lengths(t, first) == ascending) == bool(sortagrad)
    assert _lengths(t, second) != ascending  # shuffled from the epoch after (the seed's order)
    assert t.epoch_plan(1) == second          # the same order again: a resumed epoch replays it
