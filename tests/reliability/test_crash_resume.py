"""Crash-resume matrix (issue #8): SIGKILL the pipeline at named crash points in every stage, rerun,
and prove that nothing was lost or corrupted.

For each kill point (`DS_PIPELINE_CRASH_AT=<point>[:n]`, see pipeline/faults.py):
- the run dies by SIGKILL (returncode -9) in the stage the point belongs to (the point was reached);
- nothing under a final name is half-written: every deterministic file is either what it was before
  the run or what the uninterrupted run made; volatile files (logs, markers, training state) parse;
- the killed stage has no done-marker, so the rerun cannot skip it;
- the rerun exits 0, skips the stages finished before the kill, leaves no temp files, and every
  deterministic output (CSVs, wavs, alphabet, LM, scorer, checkpoints/best_dev, exports, archives,
  reports) is byte-identical to the uninterrupted baseline;
- a kill in training resumes from the checkpoint that was current at the kill (never from scratch,
  never "skip training"), ends with the baseline's epochs and step count and the same weights.

The CI subset (not slow) runs in the default suite; the full matrix:
`python -m pytest tests/reliability -m "slow or not slow"` (`make reliability`).
docs/RELIABILITY.md ("Crash-resume matrix") lists the points.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass

import pytest

from tests.reliability.crash_harness import (
    LM_TEXT_NAME,
    Env,
    check_after_kill,
    check_same_as_baseline,
    current_train_checkpoint,
    markers,
    ran_stages,
    skipped_stages,
    stage_running,
)


@dataclass(frozen=True)
class Kill:
    point: str        # DS_PIPELINE_CRASH_AT value
    start: str        # snapshot the run starts from ("start" or the stage before `stage`)
    stage: str        # the stage running when the point is reached
    ci: bool = False  # in the default (not slow) suite

    @property
    def id(self) -> str:
        return self.point


MATRIX = [
    # import: extraction of the corpus archive, per-clip conversion, CSV writing
    Kill("extract.member:20", "start", "import", ci=True),
    Kill("extract.before_marker", "start", "import"),
    Kill("import.convert:10", "start", "import", ci=True),
    Kill("import.csv_write:20", "start", "import"),
    Kill("stage.import.before_marker", "start", "import"),
    # alphabet
    Kill("alphabet.write", "import", "alphabet"),
    Kill("stage.alphabet.before_marker", "import", "alphabet"),
    # lm: LM text download (resumed with Range), KenLM build, scorer package
    Kill("download.chunk", "alphabet", "lm", ci=True),
    Kill("download.before_rename", "alphabet", "lm"),
    Kill("lm.after_lmplz", "alphabet", "lm"),
    Kill("lm.after_build_binary", "alphabet", "lm"),
    Kill("lm.scorer_write", "alphabet", "lm"),
    Kill("stage.lm.before_marker", "alphabet", "lm"),
    # train: 3 epochs x 8 steps
    Kill("train.step:3", "lm", "train"),
    Kill("train.step:13", "lm", "train", ci=True),
    Kill("train.checkpoint_save:3", "lm", "train"),
    Kill("train.best_save:2", "lm", "train"),
    Kill("fsutil.atomic_dir:1", "lm", "train"),
    Kill("train.epoch_end:2", "lm", "train"),
    Kill("train.done_marker", "lm", "train"),
    Kill("stage.train.before_marker", "lm", "train"),
    # lm_optimize: alpha/beta trials, then the scorer rewritten in place
    Kill("lm_optimize.trial:2", "train", "lm_optimize"),
    Kill("lm_optimize.write", "train", "lm_optimize", ci=True),
    Kill("stage.lm_optimize.before_marker", "train", "lm_optimize"),
    # test
    Kill("evaluate.decode", "lm_optimize", "test"),
    Kill("fsutil.atomic_write:1", "lm_optimize", "test"),
    Kill("stage.test.before_marker", "lm_optimize", "test"),
    # export
    Kill("export.pb", "test", "export"),
    Kill("export.pbmm", "test", "export"),
    Kill("export.tflite:2", "test", "export", ci=True),
    Kill("stage.export.before_marker", "test", "export"),
    # package
    Kill("package.zip:2", "export", "package", ci=True),
    Kill("package.tar:4", "export", "package"),
    Kill("stage.package.before_marker", "export", "package"),
]


def _params() -> list:
    return [pytest.param(k, id=k.id, marks=() if k.ci else (pytest.mark.slow,)) for k in MATRIX]


def _fail(what: str, problems: list[str], log: str) -> str:
    return f"{what}:\n  " + "\n  ".join(problems[:30]) + f"\n--- log tail ---\n{log[-2500:]}"


def test_uninterrupted_run_is_reproducible(crash_env: Env) -> None:
    """The comparison every kill test relies on: one uninterrupted run of the whole pipeline gives the
    baseline's bytes (which was built stage by stage with --to)."""
    crash_env.restore("start")
    run = crash_env.run(log_name="uninterrupted")
    assert run.returncode == 0, run.log[-3000:]
    problems = check_same_as_baseline(crash_env.work, crash_env.baseline)
    assert not problems, _fail("an uninterrupted run differs from the baseline", problems, run.log)


@pytest.mark.parametrize("kill", _params())
def test_kill_and_rerun(crash_env: Env, kill: Kill) -> None:
    env = crash_env
    env.restore(kill.start)
    requests_before = len(env.server.requests)

    killed = env.run(crash_at=kill.point, log_name=f"kill-{kill.id.replace(':', '@')}")
    assert killed.returncode == -signal.SIGKILL, (
        f"DS_PIPELINE_CRASH_AT={kill.point} did not kill the run (rc {killed.returncode}): the point "
        f"was never reached\n{killed.log[-3000:]}")
    assert stage_running(killed.log) == kill.stage, f"killed in the wrong stage\n{killed.log[-3000:]}"
    assert not killed.survivors, f"processes outlived the killed run: {killed.survivors}"
    at_kill = markers(env.work)
    assert kill.stage not in at_kill, f"the killed stage {kill.stage} has a done-marker"
    problems = check_after_kill(env.work, env.snapshots[kill.start], env.baseline,
                                env.snapshots[kill.stage])
    assert not problems, _fail(f"after the kill at {kill.point}", problems, killed.log)
    ckpt = current_train_checkpoint(env.work)
    part = env.work / "sources" / "lm_text" / f"{LM_TEXT_NAME}.part"
    part_size = part.stat().st_size if part.is_file() else 0

    rerun = env.run(log_name=f"rerun-{kill.id.replace(':', '@')}")
    assert rerun.returncode == 0, f"the rerun after {kill.point} failed\n{rerun.log[-4000:]}"
    assert not rerun.survivors, f"processes outlived the rerun: {rerun.survivors}"
    assert at_kill <= skipped_stages(rerun.log), (
        f"stages finished before the kill ({sorted(at_kill)}) were redone\n{rerun.log[-3000:]}")
    assert kill.stage in ran_stages(rerun.log), f"the rerun skipped the killed stage {kill.stage}"
    problems = check_same_as_baseline(env.work, env.baseline)
    assert not problems, _fail(f"after the rerun (kill at {kill.point})", problems, rerun.log)

    if kill.stage == "train":
        _check_training_resumed(env, ckpt, rerun.log)
    if kill.point.startswith("download.chunk"):
        assert part_size > 0, "the kill mid-download left no partial file to resume"
        ranges = [r for _, r, _ in env.server.requests[requests_before:] if r]
        assert ranges == [f"bytes={part_size}-"], f"the rerun did not resume the download: {ranges}"


def _check_training_resumed(env: Env, ckpt: str | None, log: str) -> None:
    want = json.loads((env.baseline / "checkpoints" / "train_done.json").read_text())
    got = json.loads((env.work / "checkpoints" / "train_done.json").read_text())
    assert (got["epochs"], got["global_step"]) == (want["epochs"], want["global_step"]), \
        f"training ended at epoch {got['epochs']}, step {got['global_step']}; the baseline at " \
        f"{want['epochs']}, {want['global_step']}"
    if ckpt is None:  # killed before the first checkpoint: starting over is the only option
        assert "starting training from random initialization" in log, log[-3000:]
        return
    assert "starting training from random initialization" not in log, \
        f"a checkpoint ({ckpt}) existed but the rerun restarted training from scratch\n{log[-3000:]}"
    assert f"resumed from {ckpt}:" in log or f"resumed {ckpt}: all" in log, \
        f"the rerun did not resume from {ckpt}, the checkpoint current at the kill\n{log[-3000:]}"


@pytest.mark.slow
def test_kill_twice_in_training(crash_env: Env) -> None:
    """Killed mid-epoch, and the resumed run killed again: the third run still ends with the
    uninterrupted run's weights, each rerun resuming from the checkpoint current at its kill."""
    env = crash_env
    env.restore("lm")
    first = env.run(crash_at="train.step:13", log_name="twice-kill1")
    assert first.returncode == -signal.SIGKILL, first.log[-3000:]
    ckpt1 = current_train_checkpoint(env.work)
    assert ckpt1 is not None
    second = env.run(crash_at="train.step:6", log_name="twice-kill2")
    assert second.returncode == -signal.SIGKILL, second.log[-3000:]
    assert f"resumed from {ckpt1}:" in second.log, second.log[-3000:]
    ckpt2 = current_train_checkpoint(env.work)
    assert ckpt2 is not None and int(ckpt2.split("-")[1]) >= int(ckpt1.split("-")[1])
    problems = check_after_kill(env.work, env.snapshots["lm"], env.baseline)
    assert not problems, _fail("after the second kill", problems, second.log)
    final = env.run(log_name="twice-rerun")
    assert final.returncode == 0, final.log[-4000:]
    problems = check_same_as_baseline(env.work, env.baseline)
    assert not problems, _fail("after the final rerun", problems, final.log)
    _check_training_resumed(env, ckpt2, final.log)


def test_unrecorded_checkpoints_are_removed(tmp_path) -> None:
    """A kill at `train.checkpoint_save` leaves train-N files that `checkpoint` does not list; with
    time-based mid-epoch saves the rerun may never save step N again, so setup deletes them."""
    from pipeline.model.train import remove_unlisted_checkpoints

    for name in ("train-8.index", "train-8.data-00000-of-00001", "train-13.index",
                 "train-13.data-00000-of-00001", "train_state.json", "checkpoint"):
        (tmp_path / name).write_text("x")
    (tmp_path / "train-13_temp").mkdir()
    (tmp_path / "train-13_temp" / "part-00000-of-00001.data-00000-of-00001").write_text("x")
    assert remove_unlisted_checkpoints(tmp_path, [str(tmp_path / "train-8")]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "train-8.data-00000-of-00001", "train-8.index", "train_state.json"]
