#!/usr/bin/env bash
# Build KenLM's lmplz, build_binary, filter and query from the PyPI `kenlm` source distribution
# (it ships the full C++ source) into a cache dir, and with the same source the native beam search
# (scripts/build_ctc_search.sh) into the sibling lib/ dir; idempotent: skips what exists and is
# current. Usage: scripts/build_kenlm.sh [DEST_BIN_DIR]   (default:
# ${XDG_CACHE_HOME:-~/.cache}/ds-pipeline/kenlm/bin, the directory pipeline.tools.default_tool_dirs()
# searches; the library goes to ../lib, where pipeline.lm.ctc_search looks). Env: PYTHON (pip to
# use), KENLM_VERSION, JOBS.
# Needs: cmake g++ make libboost-{program-options,system,thread,test}-dev libeigen3-dev zlib1g-dev libbz2-dev liblzma-dev
set -euo pipefail
DEST="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/ds-pipeline/kenlm/bin}"
LIB_DIR="$(dirname "$DEST")/lib"
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
KENLM_VERSION="${KENLM_VERSION:-0.3.0}"
JOBS="${JOBS:-2}"
TOOLS=(lmplz build_binary filter query)

ok=1
for t in "${TOOLS[@]}"; do
  # `build_binary` with no args prints usage and exits 1; a missing or broken binary gives 126/127.
  if [[ ! -x "$DEST/$t" ]]; then ok=0; break; fi
  set +e; "$DEST/$t" --help >/dev/null 2>&1; rc=$?; set -e
  if (( rc >= 126 )); then ok=0; break; fi
done
search_ok=1
bash "$HERE/build_ctc_search.sh" --is-current "$LIB_DIR" || search_ok=0
if (( ok && search_ok )); then echo "KenLM tools and the native beam search already built in $(dirname "$DEST")"; exit 0; fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip download --quiet --no-binary kenlm --no-deps --dest "$WORK" "kenlm==$KENLM_VERSION"
tar -xzf "$WORK"/kenlm-*.tar.gz -C "$WORK"
SRC="$(find "$WORK" -maxdepth 1 -type d -name 'kenlm-*' | head -n1)"
if (( ! search_ok )); then bash "$HERE/build_ctc_search.sh" "$SRC" "$LIB_DIR"; fi
if (( ok )); then exit 0; fi
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-Wno-deprecated-declarations >/dev/null
make -C "$WORK/build" -j"$JOBS" "${TOOLS[@]}" >/dev/null
mkdir -p "$DEST"
for t in "${TOOLS[@]}"; do
  install -m 0755 "$WORK/build/bin/$t" "$DEST/$t.tmp.$$"
  mv -f "$DEST/$t.tmp.$$" "$DEST/$t"
done
echo "KenLM tools built in $DEST"
