"""test: WER/CER on every test set, greedy and with the scorer; reports.

`models/test_results.json` = {"<test set>": {"wer", "cer", "greedy_wer", "greedy_cer", "samples"}}
where wer/cer are with the scorer (`lm/kenlm.scorer` through `pipeline.lm.decode.Decoder`) when one
exists and the decoder is importable, else equal to the greedy values (logged). Per-sample results,
best/median/worst samples (ranked by WER, by CER in bytes output mode) and a hint go to
`reports/test_<set>.json`; the training report
(`reports/training_report.{md,html}`, `reports/loss_curve.png`) is written here too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.config import FAST_TRAIN
from pipeline.corpus_csv import split_csvs
from pipeline.faults import crashpoint
from pipeline.stages.base import Stage, StageContext

log = logging.getLogger(__name__)


def _decoder(ctx: StageContext, alphabet: Any) -> tuple[Any, str]:
    cfg, paths = ctx.cfg, ctx.paths
    if not paths.scorer.exists():
        return None, f"greedy only (no scorer at {paths.scorer})"
    from pipeline.lm.decode import Decoder
    from pipeline.lm.optimize import decoder_weights

    alpha, beta = decoder_weights(cfg, paths)  # lm_optimize's values when it ran
    dec = Decoder(alphabet, paths.scorer, alpha, beta, cfg.lm.beam_width)
    return dec, (f"beam search with {paths.scorer.name} (alpha {alpha:g}, beta {beta:g}, "
                 f"beam {cfg.lm.beam_width})")


def ranking_metric(alphabet: Any) -> str:
    """"cer" for a ByteAlphabet (bytes output mode), else "wer": the metric the test reports rank
    samples by. Bytes mode is for languages written without spaces between words (Chinese,
    Japanese): a transcript is one "word", so WER is 0 or 1 per sample and cannot rank them
    (lm_optimize optimizes CER there too)."""
    from pipeline.text.alphabet import ByteAlphabet

    return "cer" if isinstance(alphabet, ByteAlphabet) else "wer"


def evaluate_sets(ctx: StageContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from pipeline.errors import MissingInputError
    from pipeline.fsutil import write_json
    from pipeline.lm.decode import greedy_decode
    from pipeline.model.output_cache import cached_outputs
    from pipeline.report.metrics import best_median_worst, hint, score_samples, wer_cer
    from pipeline.text.alphabet import Alphabet

    cfg, paths = ctx.cfg, ctx.paths
    alphabet = Alphabet.from_file(paths.alphabet)
    sets = {p.stem[: -len("_test")] if p.stem.endswith("_test") else p.stem: p
            for p in split_csvs(cfg, paths, "test")}
    if not sets:
        raise MissingInputError(f"no test CSV for the corpora {', '.join(cfg.active_corpora())} under "
                                f"{paths.extracted}; run the import stage first")
    decoder, how = _decoder(ctx, alphabet)
    rank_by = ranking_metric(alphabet)
    log.info("decoding: %s", how)
    limit = FAST_TRAIN.test_samples if cfg.general.fast_train else None
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, csv_file in sets.items():
        utts = cached_outputs(cfg, paths, [Path(csv_file)], f"test_{name}", limit=limit)
        greedy = [greedy_decode(u.probs, alphabet) for u in utts]
        decoded = decoder.decode_batch([u.probs for u in utts], cfg.general.workers) if decoder else greedy
        refs = [u.transcript for u in utts]
        crashpoint("evaluate.decode")  # decoded, nothing written yet
        wer, cer = wer_cer(refs, decoded)
        gwer, gcer = wer_cer(refs, greedy)
        results[name] = {"wer": round(wer, 4), "cer": round(cer, 4), "greedy_wer": round(gwer, 4),
                         "greedy_cer": round(gcer, 4), "samples": len(utts)}
        samples = score_samples([u.wav_filename for u in utts], refs, greedy, decoded)
        examples = best_median_worst(samples, by=rank_by)
        advice = hint(wer, cer, gwer, gcer, decoder is not None)
        details[name] = {"decoder": how, "hint": advice, "examples": examples, "ranked_by": rank_by}
        write_json(paths.test_report(name), {**results[name], "decoder": how, "hint": advice,
                                                         "ranked_by": rank_by, **examples,
                                                         "all": [s.as_dict() for s in samples]})
        log.info("test %s: %d samples, WER %.3f CER %.3f (greedy WER %.3f CER %.3f)", name, len(utts),
                 wer, cer, gwer, gcer)
        for s in examples["worst"][:3]:
            log.info("  worst: %r -> %r", s["reference"], s["decoded"])
        log.info("  hint: %s", advice)
    return results, details


def _run(ctx: StageContext) -> None:
    from pipeline.fsutil import write_json
    from pipeline.report.training import write_report

    results, details = evaluate_sets(ctx)
    write_json(ctx.paths.test_results, results)
    report = write_report(ctx.cfg, ctx.paths, results, details)
    log.info("report: %s", report)


STAGE = Stage(
    name="test",
    help="evaluate on the test sets; write models/test_results.json and reports/",
    run=_run,
    config_keys=("BEAM_WIDTH", "LM_ALPHA", "LM_BETA", "BATCH_SIZE", "FAST_TRAIN",
                 "BYTES_OUTPUT_MODE"),
    depends_on=("train", "lm", "lm_optimize"),
    requires=lambda cfg, paths: [paths.best_checkpoint_dir],
    produces=lambda cfg, paths: [paths.test_results],
    version=4,  # 3: decodes the cached float16 acoustic outputs; 4: ranked by CER in bytes mode
)
