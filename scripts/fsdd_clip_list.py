"""Write a clip list (path,transcript,speaker) for the Free Spoken Digit Dataset.

FSDD names its clips `<digit>_<speaker>_<take>.wav` (upstream's `recordings/` folder); the list
gives each clip its digit as a word and its speaker, which the csv importer uses for
speaker-disjoint splits (`make demo-digits`, docs/real-speech.md).

    python scripts/fsdd_clip_list.py FSDD_FOLDER OUT.csv [--takes N]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")


def clip_rows(folder: Path, takes: int = 0) -> list[tuple[str, str, str]]:
    """(absolute path, word, speaker) of every FSDD clip under `folder` (recursively), sorted;
    `takes` > 0 keeps the takes numbered below it."""
    rows = []
    for wav in sorted(folder.rglob("*.wav")):
        m = NAME.match(wav.name)
        if m is None or (takes and int(m.group(3)) >= takes):
            continue
        rows.append((str(wav.resolve()), WORDS[int(m.group(1))], m.group(2)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="FSDD folder (its recordings/ or the repository root)")
    ap.add_argument("out", type=Path, help="clip list to write (csv)")
    ap.add_argument("--takes", type=int, default=0, help="keep takes 0..N-1 of each digit and speaker")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: DIGITS={args.folder} is not a folder (give the FSDD recordings folder)",
              file=sys.stderr)
        return 3
    rows = clip_rows(args.folder, args.takes)
    if not rows:
        print(f"error: no <digit>_<speaker>_<take>.wav clips under DIGITS={args.folder}", file=sys.stderr)
        return 3
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text("path,transcript,speaker\n" + "".join(f"{p},{w},{s}\n" for p, w, s in rows),
                   encoding="utf-8")
    tmp.replace(args.out)  # atomic: a half-written list is never taken for a whole one
    speakers = sorted({s for _, _, s in rows})
    print(f"{args.out}: {len(rows)} clips, {len(speakers)} speakers ({', '.join(speakers)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
