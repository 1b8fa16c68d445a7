"""Security: nothing executes code that comes with the data, downloads are https with checksums
where the source publishes them, and neither logs nor the `config` command show secrets.

The container's non-root user is proven by tests/container/test_dockerfiles.py::
test_base_image_runtime_contract (USER ${UID}, default 999; uid 0 refused at build time) and, in a real
container, by scripts/container_test.sh (`id` inside the image is 999).
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

from tests.http_server import LocalServer
from tests.reliability.helpers import REPO, run_cli

SCANNED = sorted([*REPO.glob("pipeline/**/*.py"), *REPO.glob("importers/**/*.py"),
                  *REPO.glob("scripts/*.py"), *REPO.glob("benchmarks/*.py")])

# Reviewed exceptions: (file, function, call) -> why it is safe.
ALLOWED = {
    ("importers/__init__.py", "get_importer", "importlib.import_module"):
        "imports a module named in the fixed REGISTRY dict, after checking the key is in it",
}
SUBPROCESS_OK = {"pipeline/tools.py"}  # external programs run through run_tool only (argv lists)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _findings(path: Path, rel: str = "") -> list[str]:
    rel = rel or str(path.relative_to(REPO))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    out: list[str] = []
    scopes: dict[ast.AST, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(fn):
                scopes.setdefault(sub, fn.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        where = f"{rel}:{node.lineno} {name}"
        if (rel, scopes.get(node, ""), name) in ALLOWED:
            continue
        if name in ("eval", "exec", "compile", "__import__", "breakpoint"):
            out.append(f"{where}: runs code built at run time")
        elif name.split(".")[-1] in ("import_module", "spec_from_file_location", "run_path",
                                     "run_module", "load_source") and name.split(".")[0] in (
                                         "importlib", "runpy", "imp", "util"):
            out.append(f"{where}: imports a module chosen at run time")
        elif name.split(".")[0] in ("pickle", "cPickle", "marshal", "shelve", "dill", "joblib") and \
                name.split(".")[-1] in ("load", "loads", "Unpickler", "open"):
            out.append(f"{where}: unpickling runs code from the file")
        elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
            loader = _dotted(kw["Loader"]) if "Loader" in kw else ""
            if not loader.endswith(("SafeLoader", "CSafeLoader")):
                out.append(f"{where}: use yaml.safe_load")
        elif name.endswith(("np.load", "numpy.load")) and isinstance(kw.get("allow_pickle"), ast.Constant) \
                and kw["allow_pickle"].value:
            out.append(f"{where}: allow_pickle=True runs code from the file")
        elif name in ("os.system", "os.popen") or name.startswith(("os.exec", "os.spawn")):
            out.append(f"{where}: runs a shell/program outside run_tool")
        elif name.split(".")[-1] in ("extractall", "unpack_archive"):
            out.append(f"{where}: extract archives with pipeline.download.extract (member checks)")
        if isinstance(kw.get("shell"), ast.Constant) and kw["shell"].value:
            out.append(f"{where}: shell=True")
        if name.startswith("subprocess.") and rel.startswith(("pipeline/", "importers/")) and \
                rel not in SUBPROCESS_OK:
            out.append(f"{where}: external programs go through pipeline.tools.run_tool")
    return out


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("import pickle, yaml, subprocess, importlib\n"
                   "def f(p, s):\n"
                   "    eval(s)\n    pickle.load(open(p, 'rb'))\n    yaml.load(s)\n"
                   "    yaml.load(s, Loader=yaml.SafeLoader)\n"
                   "    subprocess.run(s, shell=True)\n    importlib.import_module(s)\n")
    found = _findings(bad, rel="pipeline/probe.py")
    kinds = " ".join(found)
    assert len(found) == 6, found  # the SafeLoader call is fine
    for word in ("runs code built", "unpickling", "safe_load", "shell=True", "imports a module",
                 "run_tool"):
        assert word in kinds


def test_no_code_from_data_is_executed() -> None:
    assert len(SCANNED) > 50
    found = [f for p in SCANNED for f in _findings(p)]
    assert found == [], "\n".join(found)


def test_corpora_keys_cannot_import_arbitrary_modules() -> None:
    from importers import get_importer
    from pipeline.errors import ConfigError

    for key in ("os", "pipeline.cli", "../evil", "importers.base"):
        with pytest.raises(ConfigError, match="unknown corpus"):
            get_importer(key)


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url,ok", [
    ("https://lingualibre.org/datasets/Q21-fra-French.zip", True),
    ("http://127.0.0.1:8080/x.zip", True),
    ("http://localhost/x.zip", True),
    ("http://lingualibre.org/datasets/Q21-fra-French.zip", False),
    ("http://127.0.0.1.evil.example/x.zip", False),
    ("ftp://example.org/x.zip", False),
    ("file:///etc/passwd", False),
    ("Q21-fra-French.zip", False),
    ("https:///no-host", False),
])
def test_url_policy(url: str, ok: bool) -> None:
    from pipeline import download as dl

    assert dl.url_allowed(url) is ok


def test_plain_http_pack_url_is_a_config_error_naming_the_pack_key(tmp_path: Path) -> None:
    from importers.base import ImportContext
    from importers.common import fetch
    from pipeline.config import load_config
    from pipeline.errors import ConfigError
    from pipeline.langs import load_pack
    from pipeline.paths import Paths

    ctx = ImportContext(load_config(environ={}), Paths.at(tmp_path / "data"), load_pack("fr"))
    with pytest.raises(ConfigError) as exc:
        fetch(ctx, "lingua_libre", "http://user:hunter2@lingualibre.org/d.zip?token=abc", "", "")
    msg = str(exc.value)
    assert "only https://" in msg and "language pack fr [corpus.lingua_libre] url" in msg
    assert "hunter2" not in msg and "token=abc" not in msg
    assert not (tmp_path / "data" / "sources").exists() or not any((tmp_path / "data" / "sources").iterdir())


def test_redirect_to_plain_http_is_not_followed(tmp_path: Path) -> None:
    from pipeline import download as dl
    from pipeline.errors import DownloadError

    s = LocalServer()
    try:
        s.redirect["/x.zip"] = "http://mirror.invalid/x.zip"
        with pytest.raises(DownloadError, match="redirects to http://mirror.invalid/x.zip, which is not https"):
            dl.download(s.url("/x.zip"), tmp_path / "x.zip", backoff_s=0.01)
        assert len(s.requests) == 1
    finally:
        s.close()


def test_urls_are_logged_without_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline import download as dl
    from pipeline.errors import DownloadError
    from pipeline.logs import setup_logging

    s = LocalServer()
    try:
        s.status["/f"] = 503
        setup_logging(verbose=True)  # as the CLI does: urllib3 (which logs query strings) stays quiet
        caplog.set_level(logging.DEBUG)
        url = s.url("/f?X-Amz-Signature=sekr1tsig", auth="alice:hunter2")
        with pytest.raises(DownloadError) as exc:
            dl.download(url, tmp_path / "f", retries=1, backoff_s=0.01)
        assert s.requests[0][2] is not None  # the credentials were still used for the request
    finally:
        s.close()
    text = caplog.text + str(exc.value)
    assert "retry 1/1" in caplog.text and "failed after 1 retries (HTTP 503)" in text
    assert "alice:***@127.0.0.1" in text
    assert "hunter2" not in text and "sekr1tsig" not in text


def test_checksums_are_pinned_where_the_source_publishes_them() -> None:
    """Every downloadable corpus in every pack has a pinned checksum, or its importer documents that
    the source publishes none (then the user may pin one in the pack). Build-time downloads are
    hash-pinned (KenLM in Dockerfile.train)."""
    import importers
    from pipeline.langs import available_languages, load_pack

    unpinned = []
    for code in available_languages():
        pack = load_pack(code)
        for url in pack.lm_text_urls:
            assert url.startswith("https://"), (code, url)
        for key, table in pack.corpus_settings.items():
            url = str(table.get("url", ""))
            if url:
                assert url.startswith("https://"), (code, key, url)
            if url and not table.get("checksum"):
                doc = importers.get_importer(key).__doc__ or ""
                if not re.search(r"no\s+(published\s+)?checksums?\b|no checksum can be pinned", doc, re.I):
                    unpinned.append(f"{code}:{key}")
    assert unpinned == []
    docker = (REPO / "Dockerfile.train").read_text(encoding="utf-8")
    assert re.search(r"KENLM_SHA256=[0-9a-f]{64}", docker) and "--require-hashes" in docker


# ---------------------------------------------------------------------------------------------
# Logs and the config command
# ---------------------------------------------------------------------------------------------
SECRETS = {
    "DS_SECRET_TOKEN": "tok-5f1a9c-do-not-log",
    "HTTPS_PROXY": "http://bob:pr0xy-Passw0rd@proxy.invalid:3128",
    "https_proxy": "http://bob:pr0xy-Passw0rd@proxy.invalid:3128",
    "AWS_SECRET_ACCESS_KEY": "aws-9b8c7d-do-not-log",
}
NEEDLES = ("tok-5f1a9c", "pr0xy-Passw0rd", "aws-9b8c7d")


def test_logs_and_config_never_show_the_environment(tmp_path: Path) -> None:
    from pipeline.config import ENV_NAMES

    data = tmp_path / "data"
    res = run_cli("-v", "run", "--data-dir", str(data), "--stages", "preflight", env=SECRETS)
    assert res.returncode == 0, res.stderr[-2000:]
    logs = [p.read_text(encoding="utf-8") for p in (data / "logs").glob("*.log")]
    assert logs
    cfg = run_cli("config", env=SECRETS)
    assert cfg.returncode == 0, cfg.stderr
    for text in (res.stdout, res.stderr, *logs, cfg.stdout, cfg.stderr):
        for needle in NEEDLES:
            assert needle not in text
    names = {line.split()[0] for line in cfg.stdout.splitlines()[1:] if line.strip()}
    assert names == set(ENV_NAMES)  # pipeline variables only, every one of them


def test_resolved_config_written_next_to_the_model_holds_only_pipeline_variables(tmp_path: Path) -> None:
    """`run` writes models/config.env: every pipeline variable with the value this run used (env file,
    environment, --set and language pack layered), readable back as an env file, and nothing else from
    the environment."""
    from pipeline.config import ENV_NAMES, load_config
    from pipeline.paths import Paths

    data = tmp_path / "data"
    env_file = tmp_path / "my.env"
    env_file.write_text("EPOCHS=7\nAUGMENT=volume,tempo=0.9:1.1\n")
    env = {**SECRETS, "BATCH_SIZE": "8"}
    res = run_cli("run", "--data-dir", str(data), "--env-file", str(env_file), "--lang", "it",
                  "--set", "N_HIDDEN=96", "--stages", "preflight", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    paths = Paths.at(data)
    written = paths.resolved_config
    assert written.parent == paths.models and written.is_file()  # next to the exported model
    assert not [p for p in paths.models.iterdir() if p != written]  # atomic: no temp file left
    text = written.read_text(encoding="utf-8")
    assert not any(n in text for n in NEEDLES)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert sorted(ln.split("=", 1)[0] for ln in lines) == sorted(ENV_NAMES)  # each once, no other name
    for line in ("BATCH_SIZE=8", "EPOCHS=7", "AUGMENT=volume,tempo=0.9:1.1", "N_HIDDEN=96",
                 "MODEL_LANGUAGE=it"):
        assert line in lines
    expected = load_config([env_file], environ={"BATCH_SIZE": "8"}, overrides=["N_HIDDEN=96"], lang="it")
    assert load_config([written], environ={}).as_env() == expected.as_env()  # the effective values
    # a later run with other settings replaces it
    res = run_cli("run", "--data-dir", str(data), "--set", "BATCH_SIZE=3", "--stages", "preflight")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "BATCH_SIZE=3" in written.read_text(encoding="utf-8").splitlines()
