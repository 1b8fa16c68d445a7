"""LR_DECAY: the learning-rate factor over the training budget (EPOCHS or TRAIN_MAX_MINUTES)."""

from __future__ import annotations

import pytest

from pipeline.model.train import budget_used, lr_decay_scale


def test_the_budget_is_the_limit_that_ends_the_run_first() -> None:
    assert budget_used(3, 10, 0.0, 0.0) == pytest.approx(0.3)          # epochs only
    assert budget_used(3, 60, 300.0, 10.0) == pytest.approx(0.5)       # 5 of 10 minutes > 3 of 60 epochs
    assert budget_used(9, 10, 60.0, 10.0) == pytest.approx(0.9)        # 9 of 10 epochs > 1 of 10 minutes
    assert budget_used(3, 60, 900.0, 10.0) == 1.0                      # past the time budget: capped


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_decay_runs_from_the_full_rate_to_the_floor(kind: str) -> None:
    assert lr_decay_scale(kind, 0.0, 0.05) == pytest.approx(1.0)
    assert lr_decay_scale(kind, 1.0, 0.05) == pytest.approx(0.05)
    assert lr_decay_scale(kind, 0.5, 0.05) == pytest.approx(0.525)     # halfway: both at the mean
    values = [lr_decay_scale(kind, u / 20, 0.05) for u in range(21)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))  # strictly falling


def test_cosine_stays_high_early_and_low_late_compared_with_linear() -> None:
    assert lr_decay_scale("cosine", 0.2, 0.0) > lr_decay_scale("linear", 0.2, 0.0)
    assert lr_decay_scale("cosine", 0.8, 0.0) < lr_decay_scale("linear", 0.8, 0.0)
    assert lr_decay_scale("cosine", 0.2, 0.0) == pytest.approx(0.904508, abs=1e-6)


def test_none_is_constant() -> None:
    assert {lr_decay_scale("none", u, 0.05) for u in (0.0, 0.4, 1.0)} == {1.0}
