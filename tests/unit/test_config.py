"""Configuration: precedence, strict parsing, error messages, the `config` command."""

from __future__ import annotations

import pytest

from pipeline.config import SPECS, LmRange, load_config, markdown_table
from pipeline.errors import ConfigError
from tests.helpers import run_cli

SEED_VARIABLES = [
    "BATCH_SIZE", "EPOCHS", "LEARNING_RATE", "N_HIDDEN", "DROPOUT", "EARLY_STOP", "ES_STOP",
    "MAX_TO_KEEP", "AMP", "LM_ALPHA", "LM_BETA", "LM_TOP_K", "LM_EVALUATE_RANGE", "BEAM_WIDTH",
    "TRANSFER_LEARNING", "DROP_SOURCE_LAYERS", "FAST_TRAIN", "ONLY_EXPORT", "ENGLISH_COMPATIBLE",
    "DUPLICATE_SENTENCE_COUNT", "MODEL_LANGUAGE", "CORPORA",
]


def test_every_seed_variable_exists_with_seed_defaults():
    names = {s.env for s in SPECS}
    assert set(SEED_VARIABLES) <= names
    cfg = load_config(environ={})
    assert cfg.train.batch_size == 64
    assert cfg.train.epochs == 30
    assert cfg.train.learning_rate == pytest.approx(0.0001)
    assert cfg.train.n_hidden == 2048
    assert cfg.train.early_stop is True
    assert cfg.lm.lm_top_k == 500000
    assert cfg.lm.beam_width == 500
    assert cfg.lm.lm_evaluate_range is None
    assert cfg.data.duplicate_sentence_count == 1
    assert cfg.general.model_language == "fr"


def test_language_pack_defaults_apply_and_are_overridden(tmp_path):
    fr = load_config(environ={})
    it = load_config(environ={}, lang="it")
    assert fr.train.dropout == pytest.approx(0.3) and fr.sources["DROPOUT"] == "pack:fr"
    # The Italian seed's values come from the it pack.
    assert it.train.dropout == pytest.approx(0.4) and it.train.es_stop == 10 and it.train.max_to_keep == 2
    assert it.active_corpora() == ("common_voice", "m_ailabs")
    env_file = tmp_path / "x.env"
    env_file.write_text("DROPOUT=0.25\n")
    cfg = load_config([env_file], environ={}, lang="it")
    assert cfg.train.dropout == pytest.approx(0.25)
    assert cfg.sources["DROPOUT"] == "env-file x.env:1"


def test_precedence_default_pack_envfile_environment_cli(tmp_path):
    f1 = tmp_path / "a.env"
    f2 = tmp_path / "b.env"
    f1.write_text("# comment\n\nBATCH_SIZE=8\nEPOCHS=3\nN_HIDDEN=100\nLEARNING_RATE=0.5\n")
    f2.write_text("EPOCHS=4\nN_HIDDEN=200\nLEARNING_RATE=0.25\n")
    env = {"N_HIDDEN": "300", "LEARNING_RATE": "0.125", "PATH": "/usr/bin"}
    cfg = load_config([f1, f2], environ=env, overrides=["LEARNING_RATE=0.0625"])
    assert cfg.train.batch_size == 8 and cfg.sources["BATCH_SIZE"] == "env-file a.env:3"
    assert cfg.train.epochs == 4 and cfg.sources["EPOCHS"] == "env-file b.env:1"
    assert cfg.train.n_hidden == 300 and cfg.sources["N_HIDDEN"] == "environment"
    assert cfg.train.learning_rate == 0.0625 and cfg.sources["LEARNING_RATE"] == "cli"
    assert cfg.train.dropout == pytest.approx(0.3) and cfg.sources["DROPOUT"] == "pack:fr"
    assert cfg.sources["MAX_TO_KEEP"] == "pack:fr"
    assert cfg.sources["AMP"] == "default"


def test_language_from_env_file_selects_pack(tmp_path):
    f = tmp_path / "lang.env"
    f.write_text("MODEL_LANGUAGE=it\n")
    cfg = load_config([f], environ={})
    assert cfg.general.model_language == "it"
    assert cfg.train.dropout == pytest.approx(0.4)


@pytest.mark.parametrize("raw,expected", [("1", True), ("0", False), ("true", True), ("FALSE", False),
                                          ("yes", True), ("no", False)])
def test_booleans_accept_only_documented_forms(raw, expected):
    assert load_config(environ={"AMP": raw}).train.amp is expected


@pytest.mark.parametrize("raw", ["y", "on", "2", "", "maybe", "tru"])
def test_booleans_reject_everything_else(raw):
    with pytest.raises(ConfigError, match="AMP"):
        load_config(environ={"AMP": raw})


def test_lm_evaluate_range_parsing():
    assert load_config(environ={"LM_EVALUATE_RANGE": "5,5,600"}).lm.lm_evaluate_range == LmRange(5.0, 5.0, 600)
    assert load_config(environ={"LM_EVALUATE_RANGE": ""}).lm.lm_evaluate_range is None
    for bad in ["5,5", "a,b,c", "5,5,0", "5,5,1.5", "-1,5,3"]:
        with pytest.raises(ConfigError, match="LM_EVALUATE_RANGE"):
            load_config(environ={"LM_EVALUATE_RANGE": bad})


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_config(environ={"BATCH_SIZE": "abc", "EARLY_STOP": "maybe", "DROPOUT": "1.5",
                             "LM_MEMORY": "85%"})
    msg = str(info.value)
    for name in ("BATCH_SIZE", "EARLY_STOP", "DROPOUT", "LM_MEMORY"):
        assert name in msg
    assert "1/0/true/false/yes/no" in msg and "an integer" in msg


def test_unknown_env_file_key_names_file_and_line(tmp_path):
    f = tmp_path / "typo.env"
    f.write_text("BATCH_SIZE=8\n\nLEARNIG_RATE=0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config([f], environ={})
    assert f"{f}:3" in str(info.value)
    assert "LEARNIG_RATE" in str(info.value) and "did you mean LEARNING_RATE" in str(info.value)


def test_env_file_syntax_errors_and_bare_keys(tmp_path):
    f = tmp_path / "e.env"
    f.write_text("export BATCH_SIZE=3\n")
    with pytest.raises(ConfigError, match="e.env:1"):
        load_config([f], environ={})
    f.write_text("EPOCHS\n")  # docker: a bare key takes the value from the environment
    assert load_config([f], environ={"EPOCHS": "7"}).train.epochs == 7
    assert load_config([f], environ={}).train.epochs == 30


def test_unknown_language_is_a_config_error():
    with pytest.raises(ConfigError, match="MODEL_LANGUAGE='xx'.*available: en, fr, it"):
        load_config(environ={"MODEL_LANGUAGE": "xx"})


def test_cross_checks():
    with pytest.raises(ConfigError, match="MIN_DURATION"):
        load_config(environ={"MIN_DURATION": "20", "MAX_DURATION": "10"})
    with pytest.raises(ConfigError, match="LM_PRUNE"):
        load_config(environ={"LM_PRUNE": "0|x"})
    with pytest.raises(ConfigError, match="CV_CHECKSUM"):
        load_config(environ={"CV_CHECKSUM": "md5:abc"})


def test_config_is_frozen_and_with_values():
    cfg = load_config(environ={})
    with pytest.raises(AttributeError):
        cfg.train.batch_size = 3  # type: ignore[misc]
    other = cfg.with_values(BATCH_SIZE=3, LM_ALPHA=0.5)
    assert other.train.batch_size == 3 and other.lm.lm_alpha == 0.5 and cfg.train.batch_size == 64


def test_cli_config_exits_2_naming_both_bad_variables():
    res = run_cli("config", env={"BATCH_SIZE": "abc", "EARLY_STOP": "maybe"})
    assert res.returncode == 2
    assert "BATCH_SIZE='abc'" in res.stderr and "EARLY_STOP='maybe'" in res.stderr


def test_cli_config_unknown_key_in_env_file_exits_2(tmp_path):
    f = tmp_path / "bad.env"
    f.write_text("EPOCHS=2\nFOO=1\n")
    res = run_cli("config", "--env-file", str(f))
    assert res.returncode == 2
    assert f"{f}:2: unknown variable FOO" in res.stderr


def test_cli_config_prints_every_variable_with_source(tmp_path):
    f = tmp_path / "p.env"
    f.write_text("EPOCHS=5\n")
    res = run_cli("config", "--env-file", str(f), "--set", "BATCH_SIZE=4", env={"N_HIDDEN": "128"})
    assert res.returncode == 0, res.stderr
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines()[1:]}
    for name in SEED_VARIABLES:
        assert name in lines
    assert "env-file p.env:1" in lines["EPOCHS"]
    assert " cli " in lines["BATCH_SIZE"]
    assert "environment" in lines["N_HIDDEN"]
    assert "pack:fr" in lines["DROPOUT"]


def test_markdown_table_lists_every_variable():
    table = markdown_table()
    for spec in SPECS:
        assert f"`{spec.env}`" in table
