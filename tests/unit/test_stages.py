"""Stage planning and execution: markers, fingerprints, reruns, crash safety, selection, the CLI plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import MissingInputError, UsageError
from pipeline.fsutil import write_text
from pipeline.paths import Paths
from pipeline.stages import STAGE_NAMES, STAGES
from pipeline.stages.base import Stage, StageContext, execute, plan, read_marker, select_stages
from tests.helpers import run_cli


class Recorder:
    """Real stages that write real files and count their runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.fail: set[str] = set()

    def stage(self, name: str, keys: tuple[str, ...] = (), deps: tuple[str, ...] = (),
              out: str | None = None, requires: tuple[str, ...] = ()) -> Stage:
        out_name = out or f"{name}.out"

        def run(ctx: StageContext) -> None:
            self.runs.append(name)
            assert ctx.tmp.is_dir() and not any(ctx.tmp.iterdir()), "temp space must start empty"
            (ctx.tmp / "scratch").write_text("x")
            if name in self.fail:
                # a crash mid-stage: a partial output under a temp name, then the error
                (ctx.paths.root / f".{out_name}.tmp-1").write_text("partial")
                raise RuntimeError(f"{name} crashed")
            write_text(ctx.paths.root / out_name, f"{name} {ctx.cfg.train.batch_size}")

        return Stage(name=name, help=name, run=run, config_keys=keys, depends_on=deps,
                     produces=lambda cfg, paths: [paths.root / out_name],
                     requires=lambda cfg, paths: [paths.root / r for r in requires])


@pytest.fixture
def setup(tmp_path):
    rec = Recorder()
    a = rec.stage("a", keys=("BATCH_SIZE",))
    b = rec.stage("b", keys=("EPOCHS",), deps=("a",), requires=("a.out",))
    c = rec.stage("c", deps=("b",))
    order = [a, b, c]
    paths = Paths.at(tmp_path / "data")
    paths.root.mkdir()
    return rec, order, paths


def _run(order, paths, cfg, force=()):
    items = plan(order, order, cfg, paths, force)
    execute(items, cfg, paths)
    return items


def test_first_run_runs_all_then_skips(setup):
    rec, order, paths = setup
    cfg = load_config(environ={})
    items = _run(order, paths, cfg)
    assert [i.action for i in items] == ["run", "run", "run"]
    assert rec.runs == ["a", "b", "c"]
    marker = read_marker(paths, "a")
    assert marker["settings"] == {"BATCH_SIZE": "64"} and marker["outputs"] == ["a.out"]
    assert not paths.stage_tmp("a").exists(), "temp space removed after success"
    items = _run(order, paths, cfg)
    assert [(i.action, i.reason) for i in items] == [("skip", "done with the same settings")] * 3
    assert rec.runs == ["a", "b", "c"]


def test_changed_setting_reruns_stage_and_downstream(setup):
    rec, order, paths = setup
    _run(order, paths, load_config(environ={}))
    rec.runs.clear()
    items = _run(order, paths, load_config(environ={"EPOCHS": "2"}))
    assert [i.action for i in items] == ["skip", "run", "run"]
    assert items[1].reason == "settings changed: EPOCHS 30->2"
    assert items[2].reason == "upstream stage b reruns"
    assert rec.runs == ["b", "c"]


def test_upstream_setting_changes_fingerprint_of_dependents(setup):
    rec, order, paths = setup
    _run(order, paths, load_config(environ={}))
    rec.runs.clear()
    items = _run(order, paths, load_config(environ={"BATCH_SIZE": "8"}))
    assert [i.action for i in items] == ["run", "run", "run"]
    assert (paths.root / "a.out").read_text() == "a 8"


def test_missing_output_reruns(setup):
    rec, order, paths = setup
    cfg = load_config(environ={})
    _run(order, paths, cfg)
    (paths.root / "c.out").unlink()
    rec.runs.clear()
    items = _run(order, paths, cfg)
    assert items[2].reason == "output missing: c.out"
    assert rec.runs == ["c"]


def test_crash_mid_stage_leaves_no_marker_and_reruns(setup):
    rec, order, paths = setup
    cfg = load_config(environ={})
    _run(order, paths, cfg)
    rec.runs.clear()
    rec.fail.add("b")
    with pytest.raises(RuntimeError):
        _run(order, paths, cfg, force=("b",))
    assert read_marker(paths, "b") is None, "a crashed stage must not look done"
    assert (paths.stage_tmp("b") / "scratch").exists()
    rec.fail.clear()
    rec.runs.clear()
    items = _run(order, paths, cfg)
    assert [i.reason for i in items][1] == "not done yet"
    assert rec.runs == ["b", "c"]


def test_force_reruns_only_that_stage_and_dependents(setup):
    rec, order, paths = setup
    cfg = load_config(environ={})
    _run(order, paths, cfg)
    rec.runs.clear()
    items = _run(order, paths, cfg, force=("b",))
    assert items[1].reason == "forced with --force"
    assert rec.runs == ["b", "c"]


def test_missing_requirement_is_a_clear_error(setup):
    rec, order, paths = setup
    cfg = load_config(environ={})
    with pytest.raises(MissingInputError, match="stage b needs a.out"):
        execute(plan(order, [order[1]], cfg, paths), cfg, paths)


def test_selection():
    assert [s.name for s in select_stages(STAGES, ["alphabet", "import"])] == ["import", "alphabet"]
    assert [s.name for s in select_stages(STAGES, None, "lm", "test")] == [
        "lm", "train", "lm_optimize", "test"]
    with pytest.raises(UsageError, match="unknown stage 'trian'"):
        select_stages(STAGES, ["trian"])
    with pytest.raises(UsageError):
        select_stages(STAGES, None, "test", "lm")


def test_registry_contract():
    assert STAGE_NAMES == ("preflight", "import", "alphabet", "lm", "train", "lm_optimize", "test",
                           "export", "package")
    cfg = load_config(environ={})
    paths = Paths.at("/nonexistent")
    names = set(STAGE_NAMES)
    for s in STAGES:
        assert s.help and callable(s.run)
        assert set(s.depends_on) <= names, s.name
        for key in s.config_keys:
            cfg.value(key)  # every declared key exists
        for p in [*s.requires(cfg, paths), *s.produces(cfg, paths)]:
            assert isinstance(p, Path) and str(p).startswith("/nonexistent"), (s.name, p)


def test_optional_stages_disabled_by_config():
    cfg = load_config(environ={})
    by_name = {s.name: s for s in STAGES}
    assert "LM_EVALUATE_RANGE" in by_name["lm_optimize"].disabled_reason(cfg)
    assert by_name["lm_optimize"].disabled_reason(load_config(environ={"LM_EVALUATE_RANGE": "1,1,5"})) is None
    assert "ONLY_EXPORT" in by_name["train"].disabled_reason(load_config(environ={"ONLY_EXPORT": "1"}))


def test_cli_dry_run_prints_plan(tmp_path):
    res = run_cli("run", "--data-dir", str(tmp_path / "d"), "--dry-run", "--set", "ONLY_EXPORT=1")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].strip() == "[1/9 preflight] run: runs every time"
    assert "[5/9 train] skip: disabled: ONLY_EXPORT=1" in res.stdout
    assert "[2/9 import] run: not done yet" in res.stdout
    assert not (tmp_path / "d").exists(), "a dry run writes nothing"


def test_cli_dry_run_shows_skip_after_marker(tmp_path):
    data = tmp_path / "d"
    res = run_cli("run", "--data-dir", str(data), "--stages", "preflight")
    assert res.returncode == 0, res.stderr
    assert "[1/1 preflight] done in" in res.stderr
    assert list((data / "logs").glob("run-*.log")), "one log file per run"
    # a marker from an earlier run with the current fingerprint makes the plan skip the stage
    from pipeline.stages.base import fingerprint

    cfg = load_config(environ={})
    reg = {s.name: s for s in STAGES}
    for out in reg["import"].produces(cfg, Paths.at(data)):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("x")
    fp = fingerprint(reg["import"], cfg, Paths.at(data), reg)
    (data / ".state" / "import.done.json").write_text(json.dumps({"fingerprint": fp, "settings": {}}))
    res = run_cli("run", "--data-dir", str(data), "--dry-run", "--stages", "import")
    assert "[1/1 import] skip: done with the same settings" in res.stdout, res.stdout


def test_cli_unknown_stage_exits_2(tmp_path):
    res = run_cli("run", "--data-dir", str(tmp_path), "--stages", "imprt", "--dry-run")
    assert res.returncode == 2 and "unknown stage 'imprt'" in res.stderr


def test_marker_records_inputs_made_earlier_in_the_same_run(tmp_path):
    """A stage whose fingerprint reads a file an upstream stage rewrites in the same run (export reads
    the best checkpoint that train writes) must be skipped on the next run, not rerun forever."""
    rec = Recorder()
    a = rec.stage("a")
    b_base = rec.stage("b", deps=("a",))
    b = Stage(name="b", help="b", run=b_base.run, depends_on=("a",), produces=b_base.produces,
              extra_fingerprint=lambda cfg, paths: (paths.root / "a.out").stat().st_mtime_ns
              if (paths.root / "a.out").exists() else None)
    order = [a, b]
    paths = Paths.at(tmp_path / "data")
    paths.root.mkdir()
    cfg = load_config(environ={})
    _run(order, paths, cfg)
    rec.runs.clear()
    items = _run(order, paths, cfg)
    assert [i.action for i in items] == ["skip", "skip"], [i.reason for i in items]
    assert rec.runs == []
