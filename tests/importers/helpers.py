"""Helpers for importer tests: run the import/alphabet stages in process on a temp data dir."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def make_cfg(**env: str):
    from pipeline.config import load_config

    base = {"CORPORA": "common_voice", "WORKERS": "2", "MODEL_LANGUAGE": "fr"}
    base.update(env)
    return load_config(environ=base)


def run_stages(data_dir: Path, names: tuple[str, ...] = ("import",), **env: str):
    from pipeline.paths import Paths
    from pipeline.stages import STAGES
    from pipeline.stages.base import execute, plan, select_stages

    cfg = make_cfg(**env)
    paths = Paths.at(data_dir)
    for d in paths.top_level_dirs():
        d.mkdir(parents=True, exist_ok=True)
    items = plan(STAGES, select_stages(STAGES, list(names)), cfg, paths)
    execute(items, cfg, paths)
    return cfg, paths


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def report(paths, corpus: str = "common_voice") -> dict:
    return json.loads(paths.corpus_report(corpus).read_text(encoding="utf-8"))


def quarantine(paths, corpus: str = "common_voice") -> dict[str, str]:
    """source -> reason"""
    _, rows = read_csv(paths.corpus_quarantine(corpus))
    return {r["source"]: r["reason"] for r in rows}
