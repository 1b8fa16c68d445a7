"""`python -m pipeline` for the crash matrix, with the language packs read from `DS_CRASH_TEST_PACKS`.

That directory is a copy of `pipeline/langs/` whose French pack lists one `lm_text_urls` entry on the
test's HTTP server (127.0.0.1), so the lm stage downloads real bytes through `pipeline.download`
(resume, rename) and the download crash points are reached. Packs are data; nothing else differs
from the real command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pipeline.langs

# Module level: spawned worker processes (decoder pools) need the same packs.
if os.environ.get("DS_CRASH_TEST_PACKS"):
    pipeline.langs.PACKS_DIR = Path(os.environ["DS_CRASH_TEST_PACKS"])

if __name__ == "__main__":  # not in multiprocessing's spawned workers, which import this module
    from pipeline.cli import main

    sys.exit(main())
