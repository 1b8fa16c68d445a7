"""The layout rules of issue #12, checked on the source tree: no import cycle, one statement of each
idea (greedy decoder, WER/CER, DeepSpeech-CSV reader, geometry), stages are glue, and the package's
top level holds only infrastructure."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "importers")
# Infrastructure modules, the CLI and the domain subpackages: nothing else at pipeline/'s top level.
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "config.py", "paths.py", "errors.py",
             "corpus_csv.py", "audio.py", "mp3.py", "download.py", "vad.py", "sample_corpus.py", "fsutil.py",
             "procs.py", "faults.py", "tools.py", "logs.py", "progress.py", "transcribe.py",
             "langs", "text", "model", "lm", "export", "report", "stages", "data", "__pycache__"}
STAGE_FUNCTION_MAX_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for p in _modules().values():
        yield p, ast.parse(p.read_text(encoding="utf-8"))


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (imports for annotations only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _import_graph() -> dict[str, set[str]]:
    """Module -> modules it imports at run time, at the top or inside functions alike."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in _runtime_nodes(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    target = f"{node.module}.{a.name}"
                    if target in mods:
                        graph[m].add(target)
                    elif node.module in mods:
                        graph[m].add(node.module)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
        graph[m].discard(m)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_import_graph()) == []


def test_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_top_level_holds_only_infrastructure() -> None:
    extra = {p.name for p in (ROOT / "pipeline").iterdir()} - TOP_LEVEL
    assert not extra, f"new top-level entries in pipeline/: {sorted(extra)} (put domain code in a subpackage)"


def test_one_greedy_decoder_one_wer_cer_one_csv_reader() -> None:
    greedy, wer, jiwer_users, csv_readers = [], [], [], []
    for path, tree in _trees():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                if "greedy" in node.name:
                    greedy.append(f"{rel}:{node.name}")
                if node.name.lstrip("_") in ("wer", "cer", "wer_cer", "error_rate", "measures"):
                    wer.append(f"{rel}:{node.name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "jiwer" in names:
                    jiwer_users.append(rel)
            # reading the DeepSpeech CSV column by name: row["wav_filename"]
            if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                    and node.slice.value == "wav_filename"):
                csv_readers.append(rel)
    assert greedy == ["pipeline/lm/decode.py:greedy_decode"]
    assert sorted(set(jiwer_users)) == ["pipeline/report/metrics.py"]
    assert wer == ["pipeline/report/metrics.py:wer_cer"]
    assert sorted(set(csv_readers)) == ["pipeline/corpus_csv.py"]


def test_no_literal_feature_sizes_outside_geometry() -> None:
    found = []
    for path, tree in _trees():
        if path.name == "geometry.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in (26, 494):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "use pipeline.model.geometry's N_INPUT / N_FEATURES"


def test_stages_are_glue() -> None:
    long = []
    for p in (ROOT / "pipeline" / "stages").glob("*.py"):
        if p.name == "base.py":  # the planner itself, not a stage
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > STAGE_FUNCTION_MAX_LINES:
                long.append(f"{p.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == [], "move domain logic out of the stage into its area (model/, lm/, export/, report/)"
