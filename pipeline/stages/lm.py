"""lm: LM text -> KenLM binary -> lm/kenlm.scorer (DeepSpeech 0.9 package format).

Text = train transcripts of every active corpus + the language pack's `lm_text_urls` and
`lm_text_files` + the user's own text files in `sources/lm/` (`*.txt`, `*.gz`, `*.xz`; all normalized
like the labels), minus every dev/test sentence (`extracted/heldout_sentences.txt`). FAST_TRAIN caps the
vocabulary at 500 words (the Italian seed's smoke-run LM). Outputs: `lm/lm.binary`,
`lm/vocab-<top_k>.txt`, `lm/kenlm.scorer`, `lm/lm_report.json`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.config import Config
from pipeline.corpus_csv import split_csvs
from pipeline.errors import MissingInputError
from pipeline.fsutil import write_json, write_text
from pipeline.paths import Paths
from pipeline.stages.base import Stage, StageContext, combine_extras, pack_parts

FAST_TRAIN_TOP_K = 500


def effective_top_k(cfg: Config) -> int:
    return min(cfg.lm.lm_top_k, FAST_TRAIN_TOP_K) if cfg.general.fast_train else cfg.lm.lm_top_k


def vocab_path(cfg: Config, paths: Paths) -> Path:
    return paths.vocab(effective_top_k(cfg))


def run(ctx: StageContext) -> None:
    from pipeline.lm import build as lmbuild
    from pipeline.lm.scorer import build_scorer
    from pipeline.text.alphabet import Alphabet

    cfg, paths, pack = ctx.cfg, ctx.paths, ctx.pack
    alphabet = Alphabet.from_file(paths.alphabet)
    tools = lmbuild.kenlm_tools(cfg.lm.kenlm_bin)
    top_k = effective_top_k(cfg)

    train_csvs = split_csvs(cfg, paths, "train", existing=False)
    present = [p for p in train_csvs if p.is_file()]
    for p in train_csvs:
        if not p.is_file():
            ctx.log.warning("no training transcripts at %s: that corpus adds nothing to the LM", p)
    local = lmbuild.local_text_files(paths.lm_text_dir)
    if not present and not pack.lm_text_urls and not pack.lm_text_files and not local:
        raise MissingInputError(
            f"no LM text: none of {', '.join(str(p) for p in train_csvs)} exists, the language "
            f"pack has no lm_text_urls/lm_text_files and {paths.lm_text_dir} has no text files; run "
            f"the import stage first")
    heldout = lmbuild.load_heldout(paths.heldout_sentences)
    if not heldout:
        ctx.log.warning("%s is missing or empty: dev/test sentences cannot be kept out of the LM",
                        paths.heldout_sentences)

    def external(path: Path) -> Iterator[str]:
        with lmbuild.open_text(path) as fh:
            for line in fh:
                norm = lmbuild.normalize_lm_line(line, pack, cfg.data.english_compatible,
                                                 cfg.data.strict_alphabet)
                if norm:
                    yield norm

    sources: list[tuple[str, Iterator[str]]] = []
    for url in pack.lm_text_urls:
        downloaded = lmbuild.download_text(url, paths.sources / "lm_text")
        sources.append((url, external(downloaded)))
    for path in pack.lm_text_paths:
        sources.append((f"language pack {pack.code}: {path.name}", external(path)))
    for path in local:
        ctx.log.info("LM text from %s", path)
        sources.append((str(path.relative_to(paths.root)), external(path)))
    for p in present:
        sources.append((str(p.relative_to(paths.root)), lmbuild.read_transcripts(p)))

    text_gz = ctx.tmp / "lm_text.txt.gz"
    stats, counts = lmbuild.write_lm_text(text_gz, sources, heldout)
    if stats.words == 0:
        raise MissingInputError("the LM text is empty after removing dev/test sentences; add "
                                f"training data, text files in {paths.lm_text_dir}, or "
                                "lm_text_urls to the language pack")
    vocab = lmbuild.top_k_vocab(counts, top_k)
    write_text(vocab_path(cfg, paths), "\n".join(vocab) + "\n")
    settings = lmbuild.LmSettings(order=cfg.lm.lm_order, prune=cfg.lm.lm_prune, memory=cfg.lm.lm_memory,
                             top_k=top_k)
    build = lmbuild.build_kenlm(text_gz, vocab, paths.lm_binary, settings, tools, ctx.tmp / "kenlm")
    text_gz.unlink(missing_ok=True)
    info = build_scorer(paths.lm_binary, vocab, alphabet, cfg.lm.lm_alpha, cfg.lm.lm_beta,
                        paths.scorer)
    n_trie_words = sum(1 for w in vocab if lmbuild.clean_line(w) and not alphabet.missing(w))
    cov = lmbuild.coverage(set(vocab), heldout)
    report = {
        "text": {"lines": stats.lines, "words": stats.words, "unique_words": len(counts),
                 "excluded_heldout_lines": stats.excluded_heldout, "sources": stats.sources},
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
        "normalizer": "pipeline.text.normalize" if _has_normalizer() else "fallback (lowercase)",
    }
    write_json(paths.lm_report, report)
    ctx.log.info("LM: %d lines, %d words, vocabulary %d, dev/test token coverage %.1f%%, scorer %.1f MB",
                 stats.lines, stats.words, len(vocab), 100 * float(cov["token_coverage"]),
                 paths.scorer.stat().st_size / 1e6)


def _local_text_identity(cfg: Config, paths: Paths) -> dict[str, list[tuple[str, int, int]]]:
    from pipeline.lm.build import local_text_files

    return {"sources/lm": [(p.name, p.stat().st_size, int(p.stat().st_mtime))
                           for p in local_text_files(paths.lm_text_dir)]}


def _has_normalizer() -> bool:
    try:
        from pipeline.text import normalize  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True


STAGE = Stage(
    name="lm",
    help="build the KenLM language model and the .scorer package",
    run=run,
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE", "LM_TOP_K", "LM_ORDER", "LM_PRUNE",
                 "LM_MEMORY", "LM_ALPHA", "LM_BETA", "FAST_TRAIN", "STRICT_ALPHABET"),
    depends_on=("import", "alphabet"),
    requires=lambda cfg, paths: [paths.alphabet],
    produces=lambda cfg, paths: [paths.scorer, paths.lm_report, paths.lm_binary,
                                 vocab_path(cfg, paths)],
    extra_fingerprint=combine_extras(pack=pack_parts("normalizer", "lm_text"),
                                     local=_local_text_identity),
)
