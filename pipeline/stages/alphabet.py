"""alphabet: models/alphabet.txt from the language pack, with a report of unknown characters.

The alphabet is never grown from the data: characters found in the corpora but missing from the
alphabet (quarantined as `outside_alphabet` by the import) and letters folded to a base letter
(ñ -> n, counted by the import) are listed with counts and example rows in
`reports/alphabet_report.json` and in the log (`pipeline.text.alphabet_report`), so a maintainer can
decide to add them to the language pack's `alphabet.txt` or to a normalizer rule.
"""

from __future__ import annotations

import logging

from pipeline.errors import DataQualityError
from pipeline.faults import crashpoint
from pipeline.stages.base import Stage, StageContext, pack_parts

log = logging.getLogger(__name__)


def run(ctx: StageContext) -> None:
    from pipeline.text.alphabet import ByteAlphabet
    from pipeline.text.alphabet_report import build_alphabet_report
    from pipeline.text.normalize import target_alphabet

    cfg, paths = ctx.cfg, ctx.paths
    english = cfg.data.english_compatible
    alphabet = target_alphabet(ctx.pack, english)
    source = "en (ENGLISH_COMPATIBLE=1)" if english else ctx.pack.code
    if cfg.data.bytes_output_mode:
        # DeepSpeech's bytes output mode: labels are UTF-8 bytes whatever the language pack says
        alphabet = ByteAlphabet()
        source += ", BYTES_OUTPUT_MODE=1"
    layout = ("Labels are UTF-8 bytes: label = byte - 1, blank 255 (DeepSpeech's UTF8Alphabet)."
              if cfg.data.bytes_output_mode else
              "One label per line; the line holding one space is the space label; \\# is '#'.")
    alphabet.write(paths.alphabet, header=[
        f"ds-pipeline alphabet, language pack {source}: {len(alphabet)} labels + CTC blank.", layout])
    crashpoint("alphabet.write")

    report = build_alphabet_report(cfg, paths, alphabet, source)
    log.info("alphabet: %d labels -> %s; %d CSV rows checked", len(alphabet), paths.alphabet,
             report["rows_checked"])
    unencodable = report["unencodable_rows"]
    if unencodable:
        raise DataQualityError(
            f"{report['unencodable_count']} transcripts in the corpus CSVs cannot be encoded with {paths.alphabet} "
            f"(first: {unencodable[0]}); rerun the import stage (--force import) with the same "
            f"ENGLISH_COMPATIBLE/MODEL_LANGUAGE")


STAGE = Stage(
    name="alphabet",
    help="write models/alphabet.txt and report characters outside it",
    run=run,
    config_keys=("MODEL_LANGUAGE", "ENGLISH_COMPATIBLE", "BYTES_OUTPUT_MODE"),
    depends_on=("import",),
    produces=lambda cfg, paths: [paths.alphabet, paths.alphabet_report],
    extra_fingerprint=pack_parts("alphabet"),
)
