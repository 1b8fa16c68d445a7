"""ds-pipeline packaging. Dependencies are pinned in requirements*.txt (why each is there is noted
beside it); install_requires repeats them without TensorFlow, which the installer picks
(tensorflow-cpu or tensorflow[and-cuda])."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _reqs(name: str) -> list[str]:
    out = []
    for line in (HERE / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            out.append(line)
    return out


setup(
    name="ds-pipeline",
    version="0.1.0",
    description="Train DeepSpeech-compatible speech-to-text models from open corpora",
    python_requires=">=3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "importers", "importers.*"]),
    package_data={"pipeline": ["langs/*/*.toml", "langs/*/*.txt", "data/*", "lm/*.cc"]},
    install_requires=_reqs("requirements.txt"),
    entry_points={"console_scripts": ["ds-pipeline=pipeline.cli:main"]},
)
