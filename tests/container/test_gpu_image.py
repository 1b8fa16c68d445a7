"""The GPU image pins what TensorFlow 2.21 loads (issue #13): every CUDA wheel of TF's `and-cuda`
extra is pinned in constraints-gpu.txt inside TF's own range, the image sets the NVIDIA_* variables
and the persistent JIT cache, and no nvidia/cuda base (its NVIDIA_REQUIRE_CUDA refused GeForce on
drivers 535/550) comes back."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.container.test_dockerfiles import ROOT, arg_defaults, instructions


def _pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints-gpu.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_gpu_constraints_pin_every_tensorflow_cuda_wheel_in_range() -> None:
    dist = next(d for d in ("tensorflow", "tensorflow-cpu") if _installed(d))
    reqs = [Requirement(r) for r in metadata.requires(dist) or []]
    cuda = [r for r in reqs if r.marker is not None and "and-cuda" in str(r.marker)]
    assert len(cuda) >= 10
    pins = _pins()
    for r in cuda:
        assert r.name.lower() in pins, f"{r.name} (TensorFlow and-cuda) is not pinned in constraints-gpu.txt"
        assert Version(pins[r.name.lower()]) in r.specifier, (r, pins[r.name.lower()])
    assert pins["nvidia-cudnn-cu12"].startswith("9.") and pins["nvidia-cuda-runtime-cu12"].startswith("12.5")
    assert pins["keras"] == metadata.version("keras")


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_gpu_image_env_and_base() -> None:
    instrs = instructions(ROOT / "Dockerfile.train")
    base = arg_defaults(instrs)["BASE_IMAGE"]
    assert not base.startswith(("nvidia/cuda", "nvcr.io/nvidia/cuda")), base
    env = " ".join(r for w, r in instrs if w == "ENV")
    assert "NVIDIA_VISIBLE_DEVICES=all" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env
    assert "NVIDIA_REQUIRE_CUDA" not in env
    assert re.search(r"CUDA_CACHE_PATH=/mnt/\S+", env) and "CUDA_CACHE_MAXSIZE=" in env
    copies = [r for w, r in instrs if w == "COPY"]
    assert any(r.startswith("constraints-gpu.txt ") for r in copies)
    assert any("-c /tmp/constraints-gpu.txt" in r for w, r in instrs if w == "RUN")
    assert "!constraints-gpu.txt" in Path(ROOT / ".dockerignore").read_text()
