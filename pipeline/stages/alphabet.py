"""alphabet: models/alphabet.txt from the language pack, with a report of unknown characters."""

from __future__ import annotations

from pipeline.stages.base import Stage, not_available

STAGE = Stage(
    name="alphabet",
    help="write models/alphabet.txt and report characters outside it",
    run=not_available("alphabet", "importers issue"),
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE"),
    depends_on=("import",),
    produces=lambda cfg, paths: [paths.alphabet, paths.alphabet_report],
)
