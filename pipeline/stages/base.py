"""Stage contract, fingerprints, done-markers, planning and execution.

A stage declares what it needs (`requires`), what it makes (`produces`), the config variables its
result depends on (`config_keys`) and the stages whose outputs it reads (`depends_on`). Its
fingerprint hashes those values, its `version` and its dependencies' fingerprints. A stage is skipped
only when its marker holds the current fingerprint and every output exists; otherwise its marker is
removed, its temp space emptied, and it runs. The marker is written last, atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config, format_value
from pipeline.errors import MissingInputError, PipelineError
from pipeline.faults import crashpoint
from pipeline.fsutil import remove_stale_temps, write_json
from pipeline.langs import LanguagePack, load_pack
from pipeline.logs import format_duration
from pipeline.paths import Paths

log = logging.getLogger(__name__)

PathsFn = Callable[[Config, Paths], Sequence[Path]]


def _no_paths(cfg: Config, paths: Paths) -> Sequence[Path]:
    return []


def _always_enabled(cfg: Config) -> str | None:
    return None


@dataclass
class StageContext:
    """What a stage's `run` receives."""

    cfg: Config
    paths: Paths
    stage: Stage
    tmp: Path                      # private temp space, empty at start, removed after success
    log: logging.Logger = field(default_factory=lambda: log)
    planned: tuple[str, ...] = ()  # names of the stages that run in this invocation

    @property
    def pack(self) -> LanguagePack:
        return load_pack(self.cfg.general.model_language, self.paths.root)


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    run: Callable[[StageContext], None]
    config_keys: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    requires: PathsFn = _no_paths
    produces: PathsFn = _no_paths
    disabled_reason: Callable[[Config], str | None] = _always_enabled  # why it is off, or None
    always_run: bool = False
    version: int = 1
    # Extra inputs to the fingerprint that are not config values (e.g. identity of source archives).
    extra_fingerprint: Callable[[Config, Paths], Any] | None = None


def pack_parts(*parts: str) -> Callable[[Config, Paths], dict[str, Any]]:
    """An `extra_fingerprint` covering parts of the language pack (`pipeline.langs.pack_inputs`
    keys: alphabet, normalizer, corpora, lm_text, export): editing them reruns the stage."""

    def extra(cfg: Config, paths: Paths) -> dict[str, Any]:
        from pipeline.langs import pack_inputs

        inputs = pack_inputs(load_pack(cfg.general.model_language, paths.root),
                             cfg.data.english_compatible)
        return {f"language pack {p}": inputs[p] for p in parts}

    return extra


def combine_extras(**extras: Callable[[Config, Paths], Any]) -> Callable[[Config, Paths], dict[str, Any]]:
    """One `extra_fingerprint` from several: named parts (dict results are merged)."""

    def extra(cfg: Config, paths: Paths) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, fn in extras.items():
            value = fn(cfg, paths)
            if isinstance(value, dict):
                out.update(value)
            else:
                out[name] = value
        return out

    return extra


# ---------------------------------------------------------------------------------------------
# Fingerprints and markers
# ---------------------------------------------------------------------------------------------
def stage_settings(stage: Stage, cfg: Config) -> dict[str, str]:
    return {key: format_value(cfg.value(key)) for key in stage.config_keys}


def fingerprint(stage: Stage, cfg: Config, paths: Paths, registry: dict[str, Stage],
                _memo: dict[str, str] | None = None) -> str:
    memo = {} if _memo is None else _memo
    if stage.name in memo:
        return memo[stage.name]
    payload = {
        "stage": stage.name,
        "version": stage.version,
        "settings": stage_settings(stage, cfg),
        "deps": {d: fingerprint(registry[d], cfg, paths, registry, memo) for d in stage.depends_on},
        "extra": stage.extra_fingerprint(cfg, paths) if stage.extra_fingerprint else None,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    memo[stage.name] = digest
    return digest


def input_digests(stage: Stage, cfg: Config, paths: Paths) -> dict[str, str]:
    """Short digests of each named part of a stage's `extra_fingerprint` (when it returns a dict),
    kept in the marker so the plan can say which input changed (e.g. the pack's alphabet)."""
    if stage.extra_fingerprint is None:
        return {}
    extra = stage.extra_fingerprint(cfg, paths)
    if not isinstance(extra, dict):
        return {}
    return {k: hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest()[:16]
            for k, v in extra.items()}


def read_marker(paths: Paths, stage: str) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.marker(stage).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(paths: Paths, stage: Stage, cfg: Config, fp: str, duration: float,
                 outputs: Sequence[Path]) -> None:
    write_json(paths.marker(stage.name), {
        "stage": stage.name,
        "fingerprint": fp,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(duration, 3),
        "settings": stage_settings(stage, cfg),
        "inputs": input_digests(stage, cfg, paths),
        "outputs": [_rel(p, paths.root) for p in outputs],
    })


def _rel(p: Path, root: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanItem:
    stage: Stage
    action: str  # "run" | "skip"
    reason: str
    fingerprint: str
    registry: Mapping[str, Stage] = field(default_factory=dict, compare=False, repr=False)

    def current_fingerprint(self, cfg: Config, paths: Paths) -> str:
        """The fingerprint recomputed after the stage ran: `extra_fingerprint` inputs made by
        upstream stages of this same run (e.g. a new best checkpoint) must be what the marker
        records."""
        return fingerprint(self.stage, cfg, paths, dict(self.registry))


def select_stages(order: Sequence[Stage], stages: Sequence[str] | None = None,
                  start: str | None = None, stop: str | None = None) -> list[Stage]:
    from pipeline.errors import UsageError

    names = [s.name for s in order]
    for n in [*(stages or []), *([start] if start else []), *([stop] if stop else [])]:
        if n not in names:
            raise UsageError(f"unknown stage {n!r}; stages are: {', '.join(names)}")
    if stages:
        if start or stop:
            raise UsageError("--stages cannot be combined with --from/--to")
        return [s for s in order if s.name in stages]
    i = names.index(start) if start else 0
    j = names.index(stop) if stop else len(names) - 1
    if i > j:
        raise UsageError(f"--from {start} comes after --to {stop}")
    return list(order[i:j + 1])


def plan(order: Sequence[Stage], selected: Sequence[Stage], cfg: Config, paths: Paths,
         force: Sequence[str] = ()) -> list[PlanItem]:
    registry = {s.name: s for s in order}
    memo: dict[str, str] = {}
    items: list[PlanItem] = []
    rerun: set[str] = set()
    for stage in selected:
        fp = fingerprint(stage, cfg, paths, registry, memo)
        disabled = stage.disabled_reason(cfg)
        if disabled:
            items.append(PlanItem(stage, "skip", f"disabled: {disabled}", fp))
            continue
        reason = _run_reason(stage, cfg, paths, fp, force, rerun)
        if reason is None:
            items.append(PlanItem(stage, "skip", "done with the same settings", fp))
        else:
            rerun.add(stage.name)
            items.append(PlanItem(stage, "run", reason, fp, registry))
    return items


def _run_reason(stage: Stage, cfg: Config, paths: Paths, fp: str, force: Sequence[str],
                rerun: set[str]) -> str | None:
    if stage.always_run:
        return "runs every time"
    if stage.name in force:
        return "forced with --force"
    marker = read_marker(paths, stage.name)
    if marker is None:
        return "not done yet"
    upstream = [d for d in stage.depends_on if d in rerun]
    if upstream:
        return f"upstream stage {upstream[0]} reruns"
    if marker.get("fingerprint") != fp:
        old = marker.get("settings", {})
        changed = [f"{k} {old.get(k, '?')!s}->{v}" for k, v in stage_settings(stage, cfg).items()
                   if old.get(k) != v]
        if changed:
            return "settings changed: " + ", ".join(changed)
        old_inputs = marker.get("inputs")  # absent in markers of older versions: no detail
        inputs = [k for k, v in input_digests(stage, cfg, paths).items()
                  if isinstance(old_inputs, dict) and old_inputs.get(k) != v]
        if inputs:
            return "inputs changed: " + ", ".join(inputs)
        return "inputs changed since it was done"
    missing = [p for p in stage.produces(cfg, paths) if not p.exists()]
    if missing:
        return f"output missing: {_rel(missing[0], paths.root)}"
    return None


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------
def execute(items: Sequence[PlanItem], cfg: Config, paths: Paths) -> None:
    total = len(items)
    planned = tuple(it.stage.name for it in items if it.action == "run")
    for i, item in enumerate(items, 1):
        stage = item.stage
        tag = f"[{i}/{total} {stage.name}]"
        if item.action == "skip":
            log.info("%s skip: %s", tag, item.reason)
            continue
        log.info("%s run: %s", tag, item.reason)
        paths.marker(stage.name).unlink(missing_ok=True)
        tmp = paths.stage_tmp(stage.name)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        # Leftovers of this stage's atomic writes cut short by a crash, in the folders its outputs go
        # to (e.g. a half-extracted corpus in extracted/<corpus>/.source.tmp-*); the top-level
        # folders are cleaned at every start, these nested ones only here.
        for d in sorted({p.parent for p in stage.produces(cfg, paths)}):
            remove_stale_temps(d)
        missing = [p for p in stage.requires(cfg, paths) if not p.exists()]
        if missing:
            raise MissingInputError(
                f"stage {stage.name} needs {', '.join(_rel(p, paths.root) for p in missing)}, which "
                f"does not exist; run the earlier stages first (ds-pipeline run --to {stage.name})")
        start = time.monotonic()
        try:
            stage.run(StageContext(cfg, paths, stage, tmp, logging.getLogger(f"pipeline.stages.{stage.name}"),
                                  planned))
        except PipelineError:
            log.error("%s failed after %s", tag, format_duration(time.monotonic() - start))
            raise
        except OSError as exc:
            from pipeline.fsutil import disk_full_error, is_disk_full

            if not is_disk_full(exc):
                raise
            # a write the stage did not translate itself: name the file's directory if known, else
            # the directory that holds the stage's outputs
            log.error("%s failed after %s", tag, format_duration(time.monotonic() - start))
            raise disk_full_error(exc, _write_dir(exc, stage, cfg, paths)) from None
        duration = time.monotonic() - start
        outputs = list(stage.produces(cfg, paths))
        absent = [p for p in outputs if not p.exists()]
        if absent:
            raise PipelineError(f"stage {stage.name} finished but did not produce "
                                f"{', '.join(_rel(p, paths.root) for p in absent)}")
        if not stage.always_run:
            fp = item.current_fingerprint(cfg, paths)
            crashpoint(f"stage.{stage.name}.before_marker")
            write_marker(paths, stage, cfg, fp, duration, outputs)
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("%s done in %s", tag, format_duration(duration))


def _write_dir(exc: OSError, stage: Stage, cfg: Config, paths: Paths) -> Path:
    if exc.filename:
        return Path(exc.filename).parent
    outputs = [str(p) for p in stage.produces(cfg, paths)]
    common = Path(os.path.commonpath(outputs)) if outputs else paths.root
    return common if common.is_dir() else common.parent


def clean_stale_temps(paths: Paths) -> None:
    """Remove leftovers of interrupted atomic writes in the data dir's top-level folders."""
    for d in [paths.root, *paths.top_level_dirs()]:
        remove_stale_temps(d)
