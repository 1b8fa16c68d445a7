"""Language packs in <data-dir>/langs/, validated on load: one line per problem naming file and line;
environment variables that look like misspelled settings are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import environment_typos, load_config
from pipeline.errors import ConfigError
from pipeline.langs import PACKS_DIR, load_pack
from tests.helpers import run_cli

PACK = """name = "Breton"
corpora = ["common_voice"]
lm_text_urls = []

[metadata]
model_name = "ds-pipeline-br"
languages_tag = "br-FR"

[normaliser]
num2words_lang = "br"

[normalizer]
num2words_lang = "br"
decimal_separator = ","
"""
GOOD_PACK = 'name = "Breton"\ncorpora = ["common_voice"]\n\n[normalizer]\nreplace = {}\n'
ALPHABET = " \n'\na\nb\nc\nd\ne\nh\nñ\nz\n"


def _pack(data: Path, toml: str, alphabet: str = ALPHABET, code: str = "br") -> Path:
    d = data / "langs" / code
    d.mkdir(parents=True, exist_ok=True)
    (d / "pack.toml").write_text(toml, encoding="utf-8")
    (d / "alphabet.txt").write_text(alphabet, encoding="utf-8")
    return d


def _problems(data: Path, code: str = "br") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_pack(code, data)
    return str(exc.value).splitlines()[1:]


def test_unknown_keys_and_unsupported_num2words_each_one_line(tmp_path: Path) -> None:
    d = _pack(tmp_path, PACK)
    lines = [p.strip() for p in _problems(tmp_path)]
    f = d / "pack.toml"
    assert f"{f}:9: unknown key 'normaliser' (did you mean normalizer?)" in lines
    assert any(p.startswith(f"{f}:7: unknown key 'languages_tag' in [metadata] (did you mean "
                            f"language_tag?)") for p in lines), lines
    n2w = [p for p in lines if "num2words_lang = 'br'" in p]
    assert len(n2w) == 1 and n2w[0].startswith(f"{f}:13: "), lines
    assert "quarantined" in n2w[0]
    assert len(lines) == 3, lines


def test_alphabet_problems_name_the_line(tmp_path: Path) -> None:
    trimmed = "# Breton\n\n'\na\nb\nA\n-\n3\nb\nñ\n"
    d = _pack(tmp_path, GOOD_PACK, trimmed)
    lines = [p.strip() for p in _problems(tmp_path)]
    f = d / "alphabet.txt"
    assert f"{f}:9: label 'b' appears twice (first on line 5); remove one" in lines
    assert any(p.startswith(f"{f}:6: label 'A' can never appear") and "lowercased" in p
               for p in lines), lines
    assert any(p.startswith(f"{f}:7: label '-' can never appear") and "in_word" in p
               for p in lines), lines
    assert any(p.startswith(f"{f}:8: label '3' can never appear") for p in lines), lines
    assert any(p.startswith(f"{f}:2: empty line where the space label should be") for p in lines)
    assert len(lines) == 5, lines


def test_missing_space_label_without_empty_line(tmp_path: Path) -> None:
    d = _pack(tmp_path, GOOD_PACK, "a\nb\n")
    assert _problems(tmp_path) == [f"    {d / 'alphabet.txt'}: no space label; add a line holding "
                                   f"exactly one space"]


def test_in_word_punctuation_is_a_valid_label(tmp_path: Path) -> None:
    _pack(tmp_path, GOOD_PACK + 'in_word = ["·"]\n', ALPHABET + "·\n", code="ca")
    pack = load_pack("ca", tmp_path)
    assert "·" in pack.alphabet.labels


def test_validation_runs_before_any_stage_exit_2(tmp_path: Path) -> None:
    _pack(tmp_path, PACK)
    res = run_cli("run", "--data-dir", str(tmp_path), "--lang", "br", "--stages", "preflight")
    assert res.returncode == 2, res.stderr
    assert "did you mean normalizer?" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / ".state").exists()


def test_data_dir_pack_overrides_builtin_and_is_logged(tmp_path: Path) -> None:
    d = tmp_path / "langs" / "fr"
    shutil.copytree(PACKS_DIR / "fr", d)
    text = (d / "pack.toml").read_text(encoding="utf-8")
    (d / "pack.toml").write_text(text.replace('name = "French"', 'name = "Français local"'),
                                 encoding="utf-8")
    assert load_pack("fr", tmp_path).name == "Français local"
    assert load_pack("fr").name == "French"
    res = run_cli("config", "--data-dir", str(tmp_path), "--lang", "fr")
    assert res.returncode == 0, res.stderr
    assert f"language pack fr: {d} (overrides the built-in pack)" in res.stderr


def test_unknown_language_names_new_language_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(environ={}, lang="br", data_dir=tmp_path)
    msg = str(exc.value)
    assert "ds-pipeline new-language br --from-cv" in msg and str(tmp_path / "langs") in msg


def test_environment_typos_warn_naming_both(tmp_path: Path) -> None:
    res = run_cli("config", "--data-dir", str(tmp_path), env={"EPOHCS": "5"})
    assert res.returncode == 0
    assert ("environment variable EPOHCS is not a ds-pipeline setting and is ignored (did you mean "
            "EPOCHS?)") in res.stderr
    assert any(line.split()[:3] == ["EPOCHS", "30", "default"] for line in res.stdout.splitlines())


def test_environment_typos_ignore_unrelated_names() -> None:
    common = ("PATH HOME HOSTNAME LANG LANGUAGE LC_ALL TERM SHELL USER PWD PYTHONPATH TZ "
              "TF_CPP_MIN_LOG_LEVEL TF_FORCE_GPU_ALLOW_GROWTH NVIDIA_VISIBLE_DEVICES CUDA_VERSION "
              "CUDA_VISIBLE_DEVICES DS_DATA_DIR LD_LIBRARY_PATH DEBIAN_FRONTEND PYTHONUNBUFFERED "
              "VIRTUAL_ENV OMP_NUM_THREADS HTTPS_PROXY NO_PROXY EPOCHS BATCH_SIZE").split()
    assert environment_typos(dict.fromkeys(common, "1")) == []
    assert environment_typos({"N_HIDEN": "8", "DROPUOT": "0.1"}) == [
        "environment variable DROPUOT is not a ds-pipeline setting and is ignored (did you mean "
        "DROPOUT?)",
        "environment variable N_HIDEN is not a ds-pipeline setting and is ignored (did you mean "
        "N_HIDDEN?)"]


def test_in_word_punctuation_kept_only_inside_words(tmp_path: Path) -> None:
    from pipeline.text.normalize import normalize, normalize_verbose

    alphabet = " \n'\n" + "\n".join("abcdefghijklmnopqrstuvwxyzàèéíïòóúüç") + "\n·\n"
    _pack(tmp_path, GOOD_PACK + 'in_word = ["·"]\n', alphabet, code="ca")
    ca = load_pack("ca", tmp_path)
    assert normalize("La col·lecció · és ŀlegible.", ca) == "la col·lecció és l·legible"
    plain = load_pack("fr")
    assert normalize_verbose("col·lecció", plain).text == "col leccio"  # fr has no ó: folded
    res = normalize_verbose("Anezhañ", plain)
    assert res.text == "anezhan" and res.folded == "ñ"
    strict = normalize_verbose("Anezhañ", plain, strict_alphabet=True)
    assert strict.text is None and strict.detail == "'ñ' (STRICT_ALPHABET=1: not folded 'ñ'->'n')"


def test_unknown_default_variable_names_the_line(tmp_path: Path) -> None:
    # checked by load_config (the settings live there), which loads the pack before any stage
    from pipeline.config import load_config

    d = _pack(tmp_path, GOOD_PACK.replace("[normalizer]", '[defaults]\nDROPUOT = "0.3"\n\n[normalizer]'))
    with pytest.raises(ConfigError) as exc:
        load_config(environ={}, lang="br", data_dir=tmp_path)
    assert str(exc.value).splitlines()[1:] == [f"  - {d / 'pack.toml'}:5: unknown variable 'DROPUOT' in "
                                               f"[defaults] (did you mean DROPOUT?)"]
