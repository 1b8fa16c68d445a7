"""Corpus importers: one module per corpus behind one contract (`importers.base`), and the registry.

The registry key is the name used everywhere: `CORPORA`, the pack's `corpora` list, the folder
`extracted/<key>/` and the CSV prefix `<key>_train.csv`. Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pipeline.errors import ConfigError

REGISTRY: dict[str, str] = {
    "common_voice": "importers.common_voice",
    "trainingspeech": "importers.trainingspeech",
    "lingua_libre": "importers.lingua_libre",
    "m_ailabs": "importers.m_ailabs",
    "voxforge": "importers.voxforge",
    "csv": "importers.csv_list",  # module not named csv: it would shadow the stdlib
}

CONTRACT = ("KEY", "TITLE", "LICENSE", "download", "extract", "list_rows")


def get_importer(key: str) -> ModuleType:
    """The module registered under `key`; ConfigError naming the valid keys otherwise."""
    if key not in REGISTRY:
        raise ConfigError(f"CORPORA: unknown corpus {key!r}; known: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[key])
