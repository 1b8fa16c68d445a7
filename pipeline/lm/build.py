"""Language-model text and KenLM build (the seeds' `generate_lm.py`, reference deepspeech-0.9.md §7.1).

text: training transcripts of every active corpus + the language pack's `lm_text_urls`, normalized
like the labels, lower-cased, with every dev/test sentence removed (leakage would make WER look better
than it is) → top-k vocabulary → `lmplz` → `filter` to the vocabulary → `build_binary -a A -q Q -v
trie` (`-v` omits the vocabulary strings so the scorer trailer can follow the search data).

Small vocabularies (commands, digits): their few sentences are in every split, so removing dev/test
sentences leaves nothing. When that removal takes most of the text (`small_vocabulary_text`), the LM
is built from the training transcripts alone, as they are (`text.mode = training_sentences` in the
report, and a warning in the log) instead of failing.
"""

from __future__ import annotations

import collections
import gzip
import io
import logging
import lzma
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.corpus_csv import iter_rows, split_csvs
from pipeline.errors import ConfigError, ExternalToolError, MissingInputError
from pipeline.faults import crashpoint
from pipeline.fsutil import atomic_copy, atomic_write, write_text
from pipeline.langs import LanguagePack
from pipeline.paths import Paths
from pipeline.text.alphabet import Alphabet
from pipeline.tools import find_tool, run_tool

log = logging.getLogger(__name__)

KENLM_TOOLS = ("lmplz", "filter", "build_binary")
# Tokens KenLM reserves: a literal `<s>` in the text makes lmplz fail.
RESERVED_TOKENS = frozenset({"<s>", "</s>", "<unk>"})


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
def kenlm_tools(kenlm_bin: str = "") -> dict[str, Path]:
    """Paths of lmplz/filter/build_binary (KENLM_BIN, then PATH, then the build cache)."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in KENLM_TOOLS:
        path = find_tool(name, [kenlm_bin] if kenlm_bin else [])
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise MissingInputError(
            f"KenLM tools not found: {', '.join(missing)}; build them with scripts/build_kenlm.sh "
            f"(or set KENLM_BIN to the directory holding lmplz, filter and build_binary)")
    return found


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------
def normalize_lm_line(text: str, pack: Any, english_compatible: bool,
                      strict_alphabet: bool = False) -> str | None:
    """Normalize one external LM text line exactly like the labels (`pipeline.text.normalize`), so
    the LM vocabulary and the acoustic labels agree (the seeds' œ/oe mismatch). None = rejected."""
    from pipeline.text.normalize import normalize

    return normalize(text, pack, english_compatible, strict_alphabet) or None


def clean_line(line: str) -> str:
    """Lower-case, collapse whitespace and drop KenLM's reserved tokens."""
    words = [w for w in line.lower().split() if w not in RESERVED_TOKENS]
    return " ".join(words)


def read_transcripts(csv_path: Path) -> Iterator[str]:
    """The `transcript` column of a DeepSpeech CSV."""
    for row in iter_rows(csv_path):
        yield row.transcript


def open_text(path: Path) -> io.TextIOBase:
    """Open plain, .gz or .xz text for reading (UTF-8, undecodable bytes replaced)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if name.endswith(".xz"):
        return io.TextIOWrapper(lzma.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


LOCAL_TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.xz", ".gz", ".xz")


def local_text_files(directory: Path) -> list[Path]:
    """The user's own LM text in `directory` (`sources/lm/`): `*.txt`, `*.gz`, `*.xz`, sorted."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(LOCAL_TEXT_SUFFIXES))


def download_text(url: str, dest_dir: Path) -> Path:
    """Download one LM text source into `dest_dir` (kept across runs, like corpus archives)."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "lm_text"
    dest = dest_dir / name
    if dest.is_file():
        return dest
    from pipeline.download import download, redact_url

    log.info("downloading LM text %s", redact_url(url))
    return Path(download(url, dest, source="the language pack's lm_text_urls"))


@dataclass
class TextStats:
    lines: int = 0
    words: int = 0
    excluded_heldout: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # source -> lines kept


def load_heldout(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with open(path, encoding="utf-8") as fh:
        return {clean_line(line) for line in fh if line.strip()}


def char_tokens(line: str) -> str:
    """A line as space-separated codepoints, spaces dropped: the text of a UTF-8 (bytes mode) LM."""
    return " ".join(ch for ch in line if not ch.isspace())


def write_lm_text(out_gz: Path, sources: Iterable[tuple[str, Iterable[str]]], heldout: set[str],
                  ) -> tuple[TextStats, collections.Counter[str]]:
    """Write the cleaned LM text (gzip) and count words. `sources` = (name, lines) pairs whose
    lines are already normalized. Lines equal to a held-out sentence are skipped."""
    stats = TextStats()
    counts: collections.Counter[str] = collections.Counter()
    with atomic_write(out_gz, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb",
                                                          compresslevel=3) as gz:
        for name, lines in sources:
            kept = 0
            for line in lines:
                text = clean_line(line)
                if not text:
                    continue
                if text in heldout:
                    stats.excluded_heldout += 1
                    continue
                words = text.split()
                counts.update(words)
                stats.words += len(words)
                gz.write(text.encode("utf-8") + b"\n")
                kept += 1
            stats.sources[name] = stats.sources.get(name, 0) + kept
            stats.lines += kept
    return stats, counts


def small_vocabulary_text(stats: TextStats) -> bool:
    """True when removing dev/test sentences took most of the LM text: the corpus's sentences
    repeat across splits (a command or digit vocabulary), so a held-out-free LM would be empty or
    tiny. Sentence-disjoint splits never trigger this (train lines are never held-out ones)."""
    return stats.words == 0 or stats.excluded_heldout > stats.lines


def text_mode(stats: TextStats) -> dict[str, Any]:
    """What the LM is built from, for the report: the text minus dev/test sentences, or (a small
    vocabulary, `small_vocabulary_text`) the training sentences as they are."""
    if not small_vocabulary_text(stats):
        return {"mode": "text_minus_heldout",
                "detail": "training transcripts and LM text, dev/test sentences removed"}
    return {"mode": "training_sentences", "heldout_duplicates_kept": stats.excluded_heldout,
            "detail": f"removing dev/test sentences would drop {stats.excluded_heldout} lines and "
                      f"keep {stats.lines} (small vocabulary: the same sentences in every split): "
                      f"the LM is built from the training sentences as they are, dev/test "
                      f"duplicates included"}


def top_k_vocab(counts: collections.Counter[str], top_k: int) -> list[str]:
    """The `top_k` most frequent words; ties broken alphabetically so the result is reproducible."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:top_k]]


def coverage(vocab: set[str], sentences: Iterable[str]) -> dict[str, float | int]:
    """Share of held-out tokens and word types that the vocabulary covers."""
    tokens = 0
    covered = 0
    types: set[str] = set()
    for s in sentences:
        for w in s.split():
            tokens += 1
            covered += w in vocab
            types.add(w)
    return {"tokens": tokens, "token_coverage": round(covered / tokens, 4) if tokens else 0.0,
            "types": len(types),
            "type_coverage": round(sum(w in vocab for w in types) / len(types), 4) if types else 0.0}


# ---------------------------------------------------------------------------------------------
# KenLM build
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LmSettings:
    order: int = 4
    prune: str = "0|0|1"
    memory: str = "1G"
    top_k: int = 500000
    a_bits: int = 255
    q_bits: int = 8
    binary_type: str = "trie"


def prune_args(prune: str, order: int) -> list[str]:
    """`LM_PRUNE` ('|'-separated, non-decreasing) as lmplz arguments, cut to the order."""
    parts = [p.strip() for p in prune.split("|") if p.strip()] if prune else []
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"LM_PRUNE={prune!r}: expected '|'-separated integers like 0|0|1") from None
    if any(b < a for a, b in zip(values, values[1:], strict=False)) or any(v < 0 for v in values):
        raise ConfigError(f"LM_PRUNE={prune!r}: thresholds must be >= 0 and non-decreasing")
    values = values[:order]
    return [str(v) for v in values]


def build_kenlm(text_gz: Path, vocab: list[str], out_binary: Path, settings: LmSettings,
                tools: dict[str, Path], work: Path) -> dict[str, Any]:
    """lmplz → filter → build_binary; intermediates live in `work` and are removed."""
    work.mkdir(parents=True, exist_ok=True)
    arpa = work / "lm.arpa"
    filtered = work / "lm_filtered.arpa"
    temp = work / "lmplz-tmp"
    temp.mkdir(exist_ok=True)
    argv: list[str | Path] = [tools["lmplz"], "--order", str(settings.order), "--temp_prefix",
                              str(temp) + "/", "--memory", settings.memory, "--text", text_gz,
                              "--arpa", arpa, "--skip_symbols"]
    prune = prune_args(settings.prune, settings.order)
    if prune and any(p != "0" for p in prune):
        argv += ["--prune", *prune]
    fallback = False
    try:
        run_tool(argv)
    except ExternalToolError as exc:
        # Small corpora have too few singletons/doubletons for Kneser-Ney discount estimation.
        if "discount" not in str(exc).lower():
            raise
        log.info("lmplz could not estimate discounts (small corpus): retrying with --discount_fallback")
        fallback = True
        run_tool([*argv, "--discount_fallback"])
    crashpoint("lm.after_lmplz")
    run_tool([tools["filter"], "single", f"model:{arpa}", filtered],
             stdin=("\n".join(vocab) + "\n").encode("utf-8"))
    arpa.unlink(missing_ok=True)
    shutil.rmtree(temp, ignore_errors=True)
    tmp_binary = work / "lm.binary"
    run_tool([tools["build_binary"], "-a", str(settings.a_bits), "-q", str(settings.q_bits), "-v",
              settings.binary_type, filtered, tmp_binary])
    filtered.unlink(missing_ok=True)
    crashpoint("lm.after_build_binary")
    out_binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp_binary.replace(out_binary)  # the stage's work dir is on the data disk: atomic rename
    except OSError:
        atomic_copy(tmp_binary, out_binary)
        tmp_binary.unlink()
    return {"discount_fallback": fallback, "binary_bytes": out_binary.stat().st_size}


def build_language_model(cfg: Config, paths: Paths, pack: LanguagePack, tmp: Path) -> dict[str, Any]:
    """The lm stage's work: LM text (train transcripts + the pack's LM text, minus dev/test
    sentences) -> KenLM binary -> vocabulary -> `.scorer`. Returns the LM report."""
    from pipeline.lm.scorer import build_scorer

    alphabet = Alphabet.from_file(paths.alphabet)
    tools = kenlm_tools(cfg.lm.kenlm_bin)
    top_k = cfg.lm.lm_top_k

    train_csvs = split_csvs(cfg, paths, "train", existing=False)
    present = [p for p in train_csvs if p.is_file()]
    for p in train_csvs:
        if not p.is_file():
            log.warning("no training transcripts at %s: that corpus adds nothing to the LM", p)
    local = local_text_files(paths.lm_text_dir)
    if not present and not pack.lm_text_urls and not pack.lm_text_files and not local:
        raise MissingInputError(
            f"no LM text: none of {', '.join(str(p) for p in train_csvs)} exists, the language "
            f"pack has no lm_text_urls/lm_text_files and {paths.lm_text_dir} has no text files; run "
            f"the import stage first")
    heldout = load_heldout(paths.heldout_sentences)
    if not heldout:
        log.warning("%s is missing or empty: dev/test sentences cannot be kept out of the LM",
                    paths.heldout_sentences)

    def external(path: Path) -> Iterator[str]:
        with open_text(path) as fh:
            for line in fh:
                norm = normalize_lm_line(line, pack, cfg.data.english_compatible,
                                         cfg.data.strict_alphabet)
                if norm:
                    yield norm

    sources: list[tuple[str, Iterator[str]]] = []
    for url in pack.lm_text_urls:
        downloaded = download_text(url, paths.sources / "lm_text")
        sources.append((url, external(downloaded)))
    for path in pack.lm_text_paths:
        sources.append((f"language pack {pack.code}: {path.name}", external(path)))
    for path in local:
        log.info("LM text from %s", path)
        sources.append((str(path.relative_to(paths.root)), external(path)))
    for p in present:
        sources.append((str(p.relative_to(paths.root)), read_transcripts(p)))

    if cfg.data.bytes_output_mode:
        # DeepSpeech's UTF-8 scorers are character LMs: every codepoint is a "word"
        sources = [(name, (char_tokens(line) for line in lines)) for name, lines in sources]
        heldout = {char_tokens(h) for h in heldout}
    text_gz = tmp / "lm_text.txt.gz"
    stats, counts = write_lm_text(text_gz, sources, heldout)
    mode = text_mode(stats)
    if mode["mode"] == "training_sentences":
        # only the training transcripts, as they are: external text would dilute a closed
        # vocabulary and could bring held-out sentences of its own
        again: list[tuple[str, Iterable[str]]] = [
            (str(p.relative_to(paths.root)), read_transcripts(p)) for p in present]
        if cfg.data.bytes_output_mode:
            again = [(name, (char_tokens(line) for line in lines)) for name, lines in again]
        stats, counts = write_lm_text(text_gz, again, set())
        mode["detail"] += f" ({stats.lines} lines, {len(counts)} words)"
        log.warning("LM text: %s", mode["detail"])
    if stats.words == 0:
        raise MissingInputError("the LM text is empty after removing dev/test sentences; add "
                                f"training data, text files in {paths.lm_text_dir}, or "
                                "lm_text_urls to the language pack")
    vocab = top_k_vocab(counts, top_k)
    write_text(paths.vocab(top_k), "\n".join(vocab) + "\n")
    settings = LmSettings(order=cfg.lm.lm_order, prune=cfg.lm.lm_prune, memory=cfg.lm.lm_memory,
                          top_k=top_k)
    build = build_kenlm(text_gz, vocab, paths.lm_binary, settings, tools, tmp / "kenlm")
    text_gz.unlink(missing_ok=True)
    info = build_scorer(paths.lm_binary, vocab, alphabet, cfg.lm.lm_alpha, cfg.lm.lm_beta,
                        paths.scorer, utf8=cfg.data.bytes_output_mode)
    n_trie_words = sum(1 for w in vocab if clean_line(w) and not alphabet.missing(w))
    cov = coverage(set(vocab), heldout)
    report = {
        "text": {"lines": stats.lines, "words": stats.words, "unique_words": len(counts),
                 "excluded_heldout_lines": stats.excluded_heldout, "sources": stats.sources,
                 **mode},
        "vocabulary": {"top_k": top_k, "size": len(vocab), "in_scorer": n_trie_words,
                       "not_spellable": len(vocab) - n_trie_words,
                       "share_of_text_tokens": round(sum(counts[w] for w in vocab) / stats.words, 4)},
        "heldout_coverage": cov,
        "kenlm": {"order": settings.order, "prune": settings.prune, "memory": settings.memory,
                  "a_bits": settings.a_bits, "q_bits": settings.q_bits, "type": settings.binary_type,
                  **build},
        "scorer": {"path": str(paths.scorer.relative_to(paths.root)),
                   "bytes": paths.scorer.stat().st_size, "alpha": info.alpha, "beta": info.beta,
                   "fst_states": len(info.fst.states), "fst_arcs": len(info.fst.arcs)},
    }
    return report
