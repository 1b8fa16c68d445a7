"""Fixtures for the export area (the helpers they use live in tests/export/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.text.alphabet import Alphabet
from tests.export.helpers import REPO, SENTENCES, TinyModel, synth, train_tiny


@pytest.fixture(scope="session")
def fr_alphabet() -> Alphabet:
    return Alphabet.from_file(REPO / "pipeline/langs/fr/alphabet.txt")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, fr_alphabet: Alphabet) -> TinyModel:
    import soundfile as sf

    d = tmp_path_factory.mktemp("clips")
    clips = synth(SENTENCES, d)
    weights = train_tiny(clips, SENTENCES, fr_alphabet)
    rng = np.random.default_rng(42)
    padded = []
    for p in clips:
        x, _ = sf.read(str(p), dtype="float32")
        x = np.concatenate([np.zeros(int(16000 * rng.uniform(0.2, 0.6)), np.float32), x,
                            np.zeros(int(16000 * rng.uniform(0.2, 0.6)), np.float32)])
        x = x + rng.standard_normal(len(x)).astype(np.float32) * 1e-3
        q = d / f"padded_{p.name}"
        sf.write(str(q), x, 16000, subtype="PCM_16")
        padded.append(q)
    return TinyModel(weights, fr_alphabet, 64, clips, SENTENCES, [*clips, *padded],
                     [*SENTENCES, *SENTENCES])


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory, tiny_model: TinyModel) -> Path:
    from pipeline.export.graph import export_models

    out = tmp_path_factory.mktemp("models")
    export_models(tiny_model.weights, tiny_model.alphabet, out, tiny_model.n_hidden, 500, "fr-FR")
    return out
