#!/usr/bin/env bash
# Compile the native beam search (pipeline/lm/ctc_search.cc) with KenLM's query code (no Boost, no
# compression libraries) into DEST_DIR/libds_ctc_search.so, stamped with the source's SHA-256
# (pipeline/lm/ctc_search.py loads only a library built from its own source).
# Usage: scripts/build_ctc_search.sh KENLM_SOURCE_DIR DEST_DIR
#        scripts/build_ctc_search.sh --is-current DEST_DIR   (exit 0: built from this source)
# Env: CXX (default g++). Called by scripts/build_kenlm.sh and the Dockerfile's KenLM stage.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${CTC_SEARCH_SOURCE:-$HERE/../pipeline/lm/ctc_search.cc}"
LIB=libds_ctc_search.so
# shellcheck source=scripts/stamp.sh
source "$HERE/stamp.sh"
SHA="$(stamp_of "$SRC")"
if [[ "$1" == --is-current ]]; then stamped_with "$2/$LIB" "$SHA"; exit; fi
KENLM="$1"
DEST="$2"
mapfile -t KENLM_SOURCES < <(find "$KENLM/util" "$KENLM/lm" -maxdepth 1 -name '*.cc' \
  ! -name '*test.cc' ! -name '*main.cc' | sort; find "$KENLM/util/double-conversion" -name '*.cc' | sort)
mkdir -p "$DEST"
"${CXX:-g++}" -O3 -DNDEBUG -DKENLM_MAX_ORDER=6 -DDSCTC_SOURCE_SHA="\"$SHA\"" -fPIC -shared \
  -Wno-deprecated-declarations -I"$KENLM" -o "$DEST/$LIB.tmp.$$" "$SRC" "${KENLM_SOURCES[@]}"
mv -f "$DEST/$LIB.tmp.$$" "$DEST/$LIB"
echo "native beam search built: $DEST/$LIB"
