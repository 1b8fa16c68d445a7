"""The env presets: valid docker `--env-file` syntax, and our config reads them the same way whether
they come as `--env-file` (ds-pipeline) or as process environment (docker run --env-file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import ENV_NAMES, load_config

ROOT = Path(__file__).resolve().parents[2]
ENV_DIR = ROOT / "env_files"
ENV_FILES = sorted(ENV_DIR.glob("*.env"))
REQUIRED = {"fast_dev.env", "do_transfer_learning.env", "only_export.env", "run_lm_optimizer.env",
            "sample.env"}


def docker_env_file(path: Path) -> dict[str, str]:
    """What `docker run --env-file` puts in the environment: KEY=VALUE lines taken literally."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        env[key] = value
    return env


def test_required_presets_exist() -> None:
    assert REQUIRED <= {p.name for p in ENV_FILES}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_plain_docker_syntax(path: Path) -> None:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        # docker keeps quotes and trailing comments in the value and has no `export`.
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\"'#\s]*", line), f"{path.name}:{n}: {line!r}"
        assert line.split("=", 1)[0] in ENV_NAMES, f"{path.name}:{n}: unknown variable"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_and_environment_give_the_same_config(path: Path) -> None:
    as_file = load_config([path], environ={})
    as_env = load_config([], environ=docker_env_file(path))
    assert as_file.as_env() == as_env.as_env()
    for key, value in docker_env_file(path).items():
        assert as_file.sources[key].startswith(f"env-file {path.name}:")
        assert as_env.sources[key] == "environment"
        assert as_env.as_env()[key] == as_file.as_env()[key]
        assert value.strip() != ""


def test_presets_set_what_their_name_says() -> None:
    def cfg(name: str):
        return load_config([ENV_DIR / name], environ={})

    assert cfg("fast_dev.env").general.fast_train
    assert cfg("fast_dev.env").train.n_hidden <= 256
    tl = cfg("do_transfer_learning.env").train
    assert tl.transfer_learning and tl.transfer_checkpoint == "/transfer-checkpoint"
    assert cfg("only_export.env").general.only_export
    rng = cfg("run_lm_optimizer.env").lm.lm_evaluate_range
    assert rng is not None and (rng.alpha_max, rng.beta_max, rng.n_trials) == (5, 5, 600)


def test_layering_like_docker_run() -> None:
    """`--env-file a --env-file b -e K=V`: later files win, -e wins over files."""
    cfg = load_config([ENV_DIR / "sample.env", ENV_DIR / "fast_dev.env"], environ={"EPOCHS": "7"})
    assert cfg.train.n_hidden == load_config([ENV_DIR / "fast_dev.env"], environ={}).train.n_hidden
    assert cfg.train.epochs == 7
    assert cfg.sources["EPOCHS"] == "environment"
