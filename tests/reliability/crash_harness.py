"""Machinery of the crash-resume matrix: a tiny pipeline run, per-stage snapshots of an uninterrupted
baseline, a SIGKILL at a named crash point (`pipeline.faults`), and the checks after the kill and
after the rerun.

Every run uses the same data-dir path (`work/data` under the session's temp root), so the few
absolute paths written into reports are the same in the baseline and in every rerun, and files
compare byte for byte.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import SUBPROCESS_TIMEOUT
from tests.http_server import LocalServer

REPO = Path(__file__).resolve().parents[2]
LANG = "fr"
CLIPS = 40
LM_TEXT_NAME = "fr-lm-text.txt"

# Tiny and fast (~25 s for the whole pipeline on 2 cores), yet every stage does real work:
# 3 epochs x 8 steps, mid-epoch checkpoints every 3 updates (CHECKPOINT_STEPS, never wall-clock, so the
# checkpoint a kill resumes from is the same on any machine), 3 alpha/beta trials, 2 parity clips.
SETTINGS = {
    "CORPORA": "common_voice", "N_HIDDEN": "16", "BATCH_SIZE": "4", "EPOCHS": "3", "EARLY_STOP": "0",
    "DROPOUT": "0.1", "LEARNING_RATE": "0.001", "CHECKPOINT_SECS": "0", "CHECKPOINT_STEPS": "3",
    "LIVE_TRANSCRIPTS": "1", "MAX_TO_KEEP": "3", "LM_EVALUATE_RANGE": "2,2,3", "BEAM_WIDTH": "16", "WORKERS": "2",
    "EXPORT_PARITY_CLIPS": "2",
}
STAGES = ("import", "alphabet", "lm", "train", "lm_optimize", "test", "export", "package")
# How long orphaned workers may take to die after the run ends (PR_SET_PDEATHSIG delivers SIGKILL at
# once; a loaded machine may still take a while to schedule the exit). Not a timing claim: the wait
# ends as soon as the session is empty, so a generous bound costs nothing when all is well.
EXIT_GRACE_S = 30.0

# Files whose bytes legitimately differ between two uninterrupted runs (wall-clock times inside);
# they are checked for being complete and well-formed instead. Everything else must be identical.
VOLATILE = (
    "logs/*",                                  # run logs, TensorBoard events
    ".state/*",                                # markers carry finished_at / duration_s
    "checkpoints/train/*",                     # training state holds elapsed_s; save times vary
    "checkpoints/train_done.json",             # elapsed_s
    "extracted/*/import_report.json",          # elapsed_s
    "reports/training_report.md",              # training minutes
    "reports/training_report.html",
    "tmp/acoustic_outputs/*.npz",              # a cache (pipeline/model/output_cache.py): zip times
)
# Complete files under tmp/ that outlive a stage: disposable caches, not leftovers of a write.
CACHES = ("tmp/acoustic_outputs/*.npz",)
# Outputs a stage legitimately rewrites several times while it runs (best_dev/ after each improving
# epoch): after a kill they may hold an intermediate state, which must still be complete.
EVOLVING = ("checkpoints/best_dev/*",)
TEMP_MARKS = (".tmp-", ".old-")


def is_volatile(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pat) for pat in VOLATILE)


def is_temp(rel: str) -> bool:
    """A name that is not final: atomic-write temps, moved-aside dirs, partial downloads, TF temps,
    the stages' private temp space (tmp/<stage>/, emptied before the stage runs)."""
    parts = rel.split("/")
    if parts[0] == "tmp":
        return not (any(fnmatch.fnmatch(rel, pat) for pat in CACHES)
                    and not any(m in parts[-1] for m in TEMP_MARKS))
    if any(p.startswith(".") and any(m in p for m in TEMP_MARKS) for p in parts):
        return True
    return rel.endswith(".part") or any(p.endswith("_temp") for p in parts)


def files(root: Path) -> dict[str, Path]:
    """Every regular file under `root` by relative POSIX path (symlinks not followed)."""
    out: dict[str, Path] = {}
    for dirpath, _dirs, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == ".state/lock":
                continue
            out[rel] = p
    return out


def make_packs(dest: Path, lm_url: str) -> Path:
    """A copy of pipeline/langs whose French pack downloads its LM text from `lm_url`."""
    shutil.copytree(REPO / "pipeline" / "langs", dest, ignore=shutil.ignore_patterns("__pycache__"))
    pack = dest / LANG / "pack.toml"
    text = pack.read_text(encoding="utf-8")
    new = re.sub(r"(?m)^lm_text_urls = \[\]$", f'lm_text_urls = ["{lm_url}"]', text)
    assert new != text, "pack.toml has no empty lm_text_urls line to replace"
    pack.write_text(new, encoding="utf-8")
    return dest


# ---------------------------------------------------------------------------------------------
# Running the pipeline
# ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    returncode: int
    log: str
    survivors: list[str]  # processes of the run still alive after it ended (orphaned workers)


@dataclass
class Env:
    """Everything a crash test needs: where to run, the snapshots, the baseline, the packs."""

    root: Path
    work: Path                 # the data dir every run uses
    packs: Path
    snapshots: dict[str, Path]  # "start" and each stage name -> data dir after that stage
    baseline: Path
    server: LocalServer

    def run(self, *extra: str, crash_at: str | None = None, log_name: str = "run",
            timeout: float = SUBPROCESS_TIMEOUT) -> Run:
        cmd = [sys.executable, "-m", "tests.reliability.crash_cli", "run", "--data-dir", str(self.work),
               "--lang", LANG, *extra]
        for k, v in SETTINGS.items():
            cmd += ["--set", f"{k}={v}"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DS_PIPELINE_") and k not in _CONFIG_ENV_NAMES}
        env.update(DS_CRASH_TEST_PACKS=str(self.packs), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if crash_at:
            env["DS_PIPELINE_CRASH_AT"] = crash_at
        log_path = self.root / "logs" / f"{log_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as fh:
            # Own session: worker processes orphaned by a SIGKILL are found, reported and killed.
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_session(proc.pid)
                proc.wait()
                raise AssertionError(f"pipeline run timed out after {timeout}s; log {log_path}") from None
            survivors = _session_processes(proc.pid, grace_s=EXIT_GRACE_S)
            _kill_session(proc.pid)
        return Run(rc, log_path.read_text(encoding="utf-8", errors="replace"), survivors)

    def restore(self, snapshot: str) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        copy_tree(self.snapshots[snapshot], self.work)


def _config_env_names() -> frozenset[str]:
    from pipeline.config import ENV_NAMES

    return frozenset(ENV_NAMES)


_CONFIG_ENV_NAMES = _config_env_names()


def _session_processes(sid: int, grace_s: float) -> list[str]:
    """Command lines of live processes in session `sid`, after giving them `grace_s` to exit."""
    deadline = time.monotonic() + grace_s
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session
                    found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except (OSError, IndexError, ValueError):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _kill_session(sid: int) -> None:
    """SIGKILL what is left of the run's session (orphaned pool workers), like `docker kill` would."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def copy_tree(src: Path, dst: Path) -> None:
    """A copy that keeps mtimes (fingerprints use archive and checkpoint mtimes) and symlinks."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)


def stage_running(log: str) -> str | None:
    """The stage that was running when the log ends (the last `[i/n stage] run:` line)."""
    found = re.findall(r"\[\d+/\d+ (\w+)\] run:", log)
    return found[-1] if found else None


def skipped_stages(log: str) -> set[str]:
    return set(re.findall(r"\[\d+/\d+ (\w+)\] skip:", log))


def ran_stages(log: str) -> set[str]:
    return set(re.findall(r"\[\d+/\d+ (\w+)\] run:", log))


def markers(data: Path) -> set[str]:
    state = data / ".state"
    return {p.name[: -len(".done.json")] for p in state.glob("*.done.json")} if state.is_dir() else set()


def current_train_checkpoint(data: Path) -> str | None:
    """`train-N` named by checkpoints/train/checkpoint, or None when there is none."""
    return current_checkpoint(data / "checkpoints" / "train")


def current_checkpoint(directory: Path) -> str | None:
    """The checkpoint prefix named by `<directory>/checkpoint` (TF's state file), or None."""
    state = directory / "checkpoint"
    if not state.is_file():
        return None
    m = re.search(r'^model_checkpoint_path: "([^"]+)"', state.read_text(encoding="utf-8"), re.M)
    return Path(m.group(1)).name if m else None


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
def well_formed(path: Path) -> str | None:
    """Why a volatile file is not complete/readable, or None. Only the formats we write."""
    name = path.name
    try:
        if name.endswith(".json"):
            json.loads(path.read_text(encoding="utf-8"))
        elif name.endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            if not rows or any(len(r) != len(rows[0]) for r in rows):
                return "CSV with ragged or no rows"
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad:
                return f"zip member {bad} is corrupt"
        elif name.endswith(".tar.xz"):
            with tarfile.open(path, "r:xz") as t:
                for m in t:
                    if m.isfile():
                        t.extractfile(m).read()  # type: ignore[union-attr]
        elif name == "checkpoint":
            ckpt = current_checkpoint(path.parent)
            if ckpt is None:
                return "checkpoint state names no checkpoint"
            if not (path.parent / f"{ckpt}.index").is_file() or \
                    not list(path.parent.glob(f"{ckpt}.data-*")):
                return f"checkpoint state names {ckpt}, whose files are missing"
    except (ValueError, OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        return f"unreadable: {exc}"
    return None


def check_after_kill(data: Path, before: Path, baseline: Path, after: Path | None = None) -> list[str]:
    """Problems with what a killed run left under final names. A deterministic file must be either
    what it was before the run (`before` snapshot) or what the uninterrupted run made: as the killed
    stage left it (`after` snapshot; a later stage may rewrite it in place, as lm_optimize does the
    scorer) or at the end (`baseline`). A half-written file is none of these. Volatile files must be
    well-formed."""
    problems = []
    before_files, base_files = files(before), files(baseline)
    after_files = files(after) if after is not None else {}
    for rel, path in sorted(files(data).items()):
        if is_temp(rel):
            continue
        if is_volatile(rel):
            why = well_formed(path)
            if why:
                problems.append(f"{rel}: {why}")
            if rel.startswith(".state/") and rel not in base_files:
                problems.append(f"{rel}: a marker the baseline does not have")
            continue
        candidates = [p for p in (before_files.get(rel), after_files.get(rel), base_files.get(rel))
                      if p is not None]
        if any(fnmatch.fnmatch(rel, pat) for pat in EVOLVING):
            why = well_formed(path)
            if why:
                problems.append(f"{rel}: {why}")
            continue
        if not candidates:
            problems.append(f"{rel}: a file under a final name that neither the snapshot nor the "
                            f"baseline has")
            continue
        data_bytes = path.read_bytes()
        if not any(data_bytes == c.read_bytes() for c in candidates):
            problems.append(f"{rel}: differs from the file before the run and from the uninterrupted run's "
                            f"({len(data_bytes)} bytes; partial or wrong)")
    problems += check_best_dev(data / "checkpoints" / "best_dev", baseline / "checkpoints" / "best_dev")
    return problems


def check_train_checkpoints(directory: Path) -> list[str]:
    """Only the checkpoints the state file lists (MAX_TO_KEEP rotates them): one that a crash left
    unlisted would never be deleted (a full-size file per crash)."""
    state = directory / "checkpoint"
    if not state.is_file():
        return []
    listed = set(re.findall(r'^all_model_checkpoint_paths: "([^"]+)"', state.read_text(encoding="utf-8"),
                            re.M))
    listed = {Path(p).name for p in listed}
    return [f"checkpoints/train/{p.name}: not a listed checkpoint (leaked)"
            for p in sorted(directory.iterdir())
            if p.name.startswith("train-") and re.split(r"[._]", p.name, maxsplit=1)[0] not in listed]


def check_best_dev(best: Path, baseline_best: Path) -> list[str]:
    """best_dev/ is absent or one complete checkpoint: the state file names a prefix whose index and
    data exist (data the size of the baseline's: same variables), and best_dev.json agrees."""
    if not best.exists():
        return []
    prefix = current_checkpoint(best)
    if prefix is None:
        return ["checkpoints/best_dev: no checkpoint state file"]
    data = list(best.glob(f"{prefix}.data-*"))
    want = list(baseline_best.glob("*.data-*"))
    problems = []
    if not (best / f"{prefix}.index").is_file() or len(data) != 1:
        problems.append(f"checkpoints/best_dev: {prefix} has no index or data file")
    elif want and data[0].stat().st_size != want[0].stat().st_size:
        problems.append(f"checkpoints/best_dev: {data[0].name} is {data[0].stat().st_size} bytes, "
                        f"a complete one {want[0].stat().st_size}")
    try:
        info = json.loads((best / "best_dev.json").read_text(encoding="utf-8"))
        if f"best_dev-{info['global_step']}" != prefix:
            problems.append(f"checkpoints/best_dev: best_dev.json says step {info['global_step']}, "
                            f"the checkpoint is {prefix}")
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"checkpoints/best_dev/best_dev.json: {exc}")
    return problems


def check_same_as_baseline(data: Path, baseline: Path) -> list[str]:
    """Problems after the rerun: leftovers of interrupted writes, missing or extra files, and any
    deterministic file that is not byte-identical to the uninterrupted run's."""
    problems = []
    got, want = files(data), files(baseline)
    for rel in sorted(got):
        if is_temp(rel):
            problems.append(f"{rel}: leftover of an interrupted write after the rerun")
    for rel in sorted(set(want) - set(got)):
        if not rel.startswith(("logs/", "checkpoints/train/")):
            problems.append(f"{rel}: missing after the rerun")
    for rel in sorted(set(got) - set(want)):
        if is_temp(rel) or rel.startswith(("logs/", "checkpoints/train/")):
            continue
        problems.append(f"{rel}: extra file after the rerun")
    problems += check_train_checkpoints(data / "checkpoints" / "train")
    for rel in sorted(set(got) & set(want)):
        if is_volatile(rel):
            why = well_formed(got[rel])
            if why:
                problems.append(f"{rel}: {why}")
        elif got[rel].read_bytes() != want[rel].read_bytes():
            problems.append(f"{rel}: differs from the uninterrupted run")
    return problems
