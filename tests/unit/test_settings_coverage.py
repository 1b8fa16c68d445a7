"""Every setting either changes some stage's fingerprint (it is in that stage's `config_keys`) or is
declared, with a reason, as changing no stage's outputs (`NO_OUTPUT_EFFECT`); never both, never
neither. A setting in neither list would be a stage that silently skips after its output changed."""

from __future__ import annotations

import pytest

from pipeline.config import ENV_NAMES, load_config
from pipeline.paths import Paths
from pipeline.stages import NO_OUTPUT_EFFECT, STAGES
from pipeline.stages.base import fingerprint


def _keyed() -> dict[str, list[str]]:
    """setting -> the stages whose config_keys name it"""
    out: dict[str, list[str]] = {}
    for stage in STAGES:
        for key in stage.config_keys:
            out.setdefault(key, []).append(stage.name)
    return out


def test_every_setting_is_keyed_or_declared_without_effect() -> None:
    keyed = _keyed()
    neither = sorted(ENV_NAMES - set(keyed) - set(NO_OUTPUT_EFFECT))
    assert not neither, (f"settings in no stage's config_keys and not in NO_OUTPUT_EFFECT "
                         f"(pipeline/stages/__init__.py): {neither}")
    both = sorted(set(keyed) & set(NO_OUTPUT_EFFECT))
    assert not both, f"declared without effect yet in config_keys: {[(k, keyed[k]) for k in both]}"


def test_declared_names_are_real_settings_with_reasons() -> None:
    unknown = sorted(set(NO_OUTPUT_EFFECT) - ENV_NAMES)
    assert not unknown, f"NO_OUTPUT_EFFECT names unknown settings: {unknown}"
    stale = sorted({k for s in STAGES for k in s.config_keys} - ENV_NAMES)
    assert not stale, f"config_keys name unknown settings: {stale}"
    assert all(reason.strip() for reason in NO_OUTPUT_EFFECT.values())


@pytest.mark.parametrize("name", sorted(NO_OUTPUT_EFFECT))
def test_declared_settings_leave_every_fingerprint_unchanged(name: str, tmp_path) -> None:
    """The declaration is what the planner sees: changing such a setting reruns nothing."""
    from pipeline.config import SPEC_BY_ENV

    spec = SPEC_BY_ENV[name]
    if spec.choices:  # another valid choice than the default
        other = next(c for c in spec.choices if c != spec.default)
    else:
        other = {"int": "7", "float": "7.5", "bool": "1", "str": "/elsewhere"}[spec.kind]
    base, changed = load_config(environ={}), load_config(environ={}, overrides=[f"{name}={other}"])
    assert base.value(name) != changed.value(name)
    paths = Paths.at(tmp_path)
    registry = {s.name: s for s in STAGES}
    for stage in STAGES:
        assert fingerprint(stage, base, paths, registry) == fingerprint(stage, changed, paths, registry)
