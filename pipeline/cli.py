"""`ds-pipeline` command line.

    ds-pipeline run --data-dir DIR [--env-file F]... [--lang LL] [--set K=V]...
                    [--stages a,b | --from X --to Y] [--force STAGE]... [--dry-run]
    ds-pipeline config [--data-dir DIR] [--env-file F]... [--lang LL] [--set K=V]... [--markdown]
    ds-pipeline stages
    ds-pipeline new-language LL --from-cv ARCHIVE [--data-dir DIR] [--out DIR] [--name NAME]
    ds-pipeline sample-corpus --lang LL --out PATH.tar.gz [--clips N] [--seed S]
    ds-pipeline transcribe --model M [--scorer S] [--json] FILES...

Exit codes: 0 ok, 1 failure, 2 configuration or usage error, 3 missing input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pipeline import __version__
from pipeline.config import Config, load_config
from pipeline.errors import PipelineError, UsageError
from pipeline.paths import Paths

log = logging.getLogger("pipeline")

DEFAULT_DATA_DIR = "/mnt"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit code 2, like our config errors
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="KEY=VALUE file in docker --env-file syntax (repeatable; later files win)")
    p.add_argument("--lang", metavar="LL", help="language pack (sets MODEL_LANGUAGE)")
    p.add_argument("--set", "-e", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="set one variable (repeatable; wins over env files and the environment)")


def _add_data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=os.environ.get("DS_DATA_DIR", DEFAULT_DATA_DIR),
                   help="data directory (default /mnt, the container's bind mount); its langs/<ll>/ "
                        "packs are used before the built-in ones")


def _config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.env_file, overrides=args.overrides, lang=args.lang,
                       data_dir=args.data_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ds-pipeline", description="Train DeepSpeech-compatible speech-to-text "
                     "models from open corpora.")
    parser.add_argument("--version", action="version", version=f"ds-pipeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run the pipeline (all stages, or a selection)")
    _add_config_args(p)
    _add_data_dir_arg(p)
    p.add_argument("--stages", help="comma list of stages to run (e.g. import,alphabet)")
    p.add_argument("--from", dest="start", metavar="STAGE", help="first stage to run")
    p.add_argument("--to", dest="stop", metavar="STAGE", help="last stage to run")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="rerun this stage even if it is done (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")

    p = sub.add_parser("config", help="print the effective configuration and where each value came from")
    _add_config_args(p)
    _add_data_dir_arg(p)
    p.add_argument("--markdown", action="store_true",
                   help="print the variable reference table (used in README.md)")

    sub.add_parser("stages", help="list the stages in order")

    p = sub.add_parser("new-language", help="write a language pack from a Common Voice archive "
                       "(alphabet, pack.toml, LM text, a report of what to check)")
    p.add_argument("code", metavar="LL", help="language code as Common Voice spells it (e.g. br, ca)")
    p.add_argument("--from-cv", required=True, metavar="ARCHIVE",
                   help="Common Voice archive (mcv-scripted-LL-vNN.0.tar.gz or cv-corpus-*.tar.gz); "
                        "only its TSVs are read")
    _add_data_dir_arg(p)
    p.add_argument("--out", help="pack folder to write (default: <data-dir>/langs/LL)")
    p.add_argument("--name", help="the language's English name (default: looked up from LL)")
    p.add_argument("--force", action="store_true", help="overwrite an existing pack folder")

    p = sub.add_parser("sample-corpus", help="synthesize a Common-Voice-format sample archive with espeak-ng")
    p.add_argument("--lang", default="fr", help="language pack whose sentences are spoken")
    p.add_argument("--out", required=True, help="output archive, e.g. data/sources/cv-corpus-fr.tar.gz")
    p.add_argument("--clips", type=int, default=1000, help="number of clips (default 1000, ~0.7 h)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same archive)")

    p = sub.add_parser("transcribe", help="transcribe audio files with an exported model")
    p.add_argument("--model", required=True, help="output_graph.tflite, .pb or .pbmm")
    p.add_argument("--scorer", help="kenlm.scorer for beam search (default: greedy decoding)")
    p.add_argument("--beam-width", type=int, help="beam width (default: the model's metadata)")
    p.add_argument("--greedy", action="store_true", help="best-path decoding instead of beam search")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads for .tflite models")
    p.add_argument("--level", choices=("auto", "normalize", "raw"), default="auto",
                   help="normalize: bring each segment's speech to the level AUDIO_NORMALIZE=1 "
                        "gives at import; raw: feed the audio as it is; auto (default): normalize "
                        "when the config.env beside the model says AUDIO_NORMALIZE=1")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per file with timestamped segments")
    p.add_argument("files", nargs="+", metavar="FILE", help="wav/mp3/ogg/flac files")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.fsutil import DataDirLock
    from pipeline.logs import add_run_log
    from pipeline.stages import STAGES
    from pipeline.stages.base import clean_stale_temps, execute, plan, select_stages
    from pipeline.stages.preflight import check_writable

    cfg = _config_from_args(args)
    stage_list = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    selected = select_stages(STAGES, stage_list, args.start, args.stop)
    for name in args.force:
        if name not in [s.name for s in STAGES]:
            raise UsageError(f"--force {name}: unknown stage")
    paths = Paths.at(args.data_dir)
    if args.dry_run:
        items = plan(STAGES, selected, cfg, paths, args.force)
        print(f"plan for {paths.root} (language {cfg.general.model_language}):")
        for i, item in enumerate(items, 1):
            print(f"  [{i}/{len(items)} {item.stage.name}] {item.action}: {item.reason}")
        return 0
    check_writable(paths)
    with DataDirLock(paths.lock_file):
        log_path = add_run_log(paths.logs)
        log.info("ds-pipeline %s, data dir %s, log %s", __version__, paths.root, log_path)
        _log_config(cfg)
        _write_resolved_config(cfg, paths)
        clean_stale_temps(paths)
        items = plan(STAGES, selected, cfg, paths, args.force)
        execute(items, cfg, paths)
        log.info("all selected stages done")
    return 0


def _log_config(cfg: Config) -> None:
    from pipeline.config import iter_rows

    changed = [f"{name}={value} ({source})" for name, value, source, _ in iter_rows(cfg)
               if source != "default"]
    log.info("configuration (non-default values): %s", "; ".join(changed) or "all defaults")


def _write_resolved_config(cfg: Config, paths: Paths) -> None:
    """models/config.env: what this run uses, next to the model it makes (atomic; no secrets, since
    only pipeline variables are in it)."""
    from pipeline.fsutil import disk_full_error, is_disk_full, write_text

    try:
        paths.resolved_config.parent.mkdir(parents=True, exist_ok=True)
        write_text(paths.resolved_config, cfg.as_env_file())
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(exc, paths.resolved_config.parent) from None
        raise


def cmd_config(args: argparse.Namespace) -> int:
    from pipeline.config import iter_rows, markdown_table

    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    cfg = _config_from_args(args)
    rows = list(iter_rows(cfg))
    w_name = max(len(r[0]) for r in rows)
    w_val = min(max(len(r[1]) for r in rows), 28)
    w_src = max(len(r[2]) for r in rows)
    print(f"{'NAME':<{w_name}}  {'VALUE':<{w_val}}  {'SOURCE':<{w_src}}  HELP")
    for name, value, source, help_text in rows:
        shown = value if value else "(empty)"
        print(f"{name:<{w_name}}  {shown:<{w_val}}  {source:<{w_src}}  {help_text}")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    from pipeline.stages import STAGES

    for i, s in enumerate(STAGES, 1):
        print(f"{i}. {s.name:<12} {s.help}")
    return 0


def cmd_new_language(args: argparse.Namespace) -> int:
    from pipeline.langs.scaffold import scaffold_pack
    from pipeline.paths import Paths

    out = Path(args.out) if args.out else Paths.at(args.data_dir).langs / args.code
    result = scaffold_pack(args.code, Path(args.from_cv), out, name=args.name, force=args.force)
    print(result.report)
    log.info("wrote the language pack %s (report: %s)", out, result.report_path)
    return 0


def cmd_sample_corpus(args: argparse.Namespace) -> int:
    from pipeline.sample_corpus import make_sample_corpus

    if args.clips < 1:
        raise UsageError("--clips must be at least 1")
    out = make_sample_corpus(args.lang, Path(args.out), clips=args.clips, seed=args.seed)
    log.info("wrote %s", out)
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    import json

    from pipeline.export.runtime import load_model
    from pipeline.transcribe import Transcriber, trained_on_normalized_levels

    tr = Transcriber(load_model(args.model, threads=args.threads),
                     scorer=Path(args.scorer) if args.scorer else None, beam_width=args.beam_width,
                     greedy=args.greedy, model_name=args.model,
                     normalize=args.level == "normalize" or
                     (args.level == "auto" and trained_on_normalized_levels(args.model)))
    for f in args.files:
        res = tr.transcribe_file(f)
        if args.json:
            print(json.dumps(res, ensure_ascii=False), flush=True)
        else:
            print(f"{f}: {res['transcript']}" if len(args.files) > 1 else res["transcript"],
                  flush=True)
    return 0


COMMANDS = {
    "run": cmd_run,
    "config": cmd_config,
    "stages": cmd_stages,
    "new-language": cmd_new_language,
    "sample-corpus": cmd_sample_corpus,
    "transcribe": cmd_transcribe,
}


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.logs import setup_logging

    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # seed's "magic flag"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except PipelineError as exc:
        log.error("error: %s", exc)
        return exc.exit_code
    except BrokenPipeError:  # `ds-pipeline config | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        log.error("interrupted; finished stages are kept, rerun the same command to continue")
        return 130
