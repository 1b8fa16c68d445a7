"""Fixtures for the importer tests (helpers: tests/importers/helpers.py, archives.py, synth.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    (d / "sources").mkdir(parents=True)
    return d
