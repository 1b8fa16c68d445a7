#!/usr/bin/env bash
# Fetch the legacy DeepSpeech / Coqui STT runtimes (cp39 manylinux wheels, no deps) and unpack them.
# Usage: scripts/fetch_legacy_runtimes.sh [CACHE_DIR]   (default ~/.cache/ds-pipeline/legacy)
# Result: CACHE_DIR/<name>/ with the unpacked wheel (libdeepspeech.so or libstt.so + libkenlm.so).
# Idempotent: a runtime already unpacked is skipped. Uses pip from $PYTHON (default: python3).
set -euo pipefail

CACHE="${1:-${DS_LEGACY_CACHE:-$HOME/.cache/ds-pipeline/legacy}}"
PY="${PYTHON:-python3}"
mkdir -p "$CACHE/wheels"

fetch() {
  local name="$1" spec="$2" lib="$3"
  local dest="$CACHE/$name"
  if [ -n "$(find "$dest" -name "$lib" 2>/dev/null | head -n1)" ]; then
    echo "$name: already in $dest"
    return 0
  fi
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.9 \
    --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$CACHE/wheels" "$spec"
  local whl
  whl="$(ls "$CACHE"/wheels/"${spec%%==*}"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$whl" ]; then
    whl="$(ls "$CACHE"/wheels/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -n1)"
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  "$PY" -m zipfile -e "$whl" "$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  echo "$name: $(find "$dest" -name "$lib" | head -n1)"
}

fetch deepspeech "deepspeech==0.9.3" libdeepspeech.so
fetch deepspeech_tflite "deepspeech-tflite==0.9.3" libdeepspeech.so
fetch stt "stt==1.4.0" libstt.so
