"""Fixtures of the reliability tests: one uninterrupted baseline run of the whole pipeline on a tiny
synthesized corpus, with a snapshot of the data dir after each stage (built once per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.http_server import LocalServer
from tests.reliability.crash_harness import (
    CLIPS,
    LANG,
    LM_TEXT_NAME,
    REPO,
    STAGES,
    Env,
    copy_tree,
    make_packs,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def crash_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The baseline: `run --to <stage>` for each stage in turn, snapshotting the data dir after each;
    the last snapshot is the uninterrupted run every kill test is compared with."""
    from pipeline.sample_corpus import make_sample_corpus

    root = tmp_path_factory.mktemp("crash")
    lm_text = (REPO / "pipeline" / "langs" / LANG / "sentences.txt").read_bytes()
    server = LocalServer()
    server.files[f"/{LM_TEXT_NAME}"] = lm_text
    try:
        packs = make_packs(root / "packs", server.url(f"/{LM_TEXT_NAME}"))
        env = Env(root=root, work=root / "work" / "data", packs=packs, snapshots={},
                  baseline=root / "snap" / "package", server=server)
        archive = env.work / "sources" / f"cv-corpus-sample-{LANG}.tar.gz"
        archive.parent.mkdir(parents=True)
        make_sample_corpus(LANG, archive, clips=CLIPS, seed=7)
        os.utime(archive, (1_600_000_000, 1_600_000_000))  # the import fingerprint uses the mtime
        env.snapshots["start"] = root / "snap" / "start"
        copy_tree(env.work, env.snapshots["start"])
        for stage in STAGES:
            run = env.run("--to", stage, log_name=f"baseline-{stage}")
            assert run.returncode == 0, f"baseline run --to {stage} failed:\n{run.log[-3000:]}"
            env.snapshots[stage] = root / "snap" / stage
            copy_tree(env.work, env.snapshots[stage])
        assert (env.baseline / "checkpoints" / "train_done.json").is_file()
        yield env
    finally:
        server.close()
