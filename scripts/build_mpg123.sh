#!/usr/bin/env bash
# Build the importer's MP3 decoder: libmpg123 1.31.2 as Debian 12 ships it (the upstream source and
# Debian's patches, both fetched from the Debian archive and checked against their SHA-256) plus
# pipeline/data/mpg123-band-limit.patch, into DEST_DIR/libds_mpg123.so, stamped with the patch's SHA-256
# (pipeline/mp3.py loads only a library built from its own patch, else the system libmpg123).
# Idempotent: does nothing when the library there is current.
# Usage: scripts/build_mpg123.sh [DEST_DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/ds-pipeline/kenlm/lib,
#          where pipeline.tools.native_lib_dirs() looks first)
#        scripts/build_mpg123.sh --is-current DEST_DIR   (exit 0: built from this patch)
# Env: MPG123_SOURCE_DIR (a folder already holding the two Debian files below: no download),
#      DEBIAN_MIRROR (default http://deb.debian.org/debian), JOBS, CC.
# Needs: gcc make curl bzip2 xz-utils patch.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PATCH="${MPG123_PATCH:-$HERE/../pipeline/data/mpg123-band-limit.patch}"
LIB=libds_mpg123.so
# shellcheck source=scripts/stamp.sh
source "$HERE/stamp.sh"
SHA="$(stamp_of "$PATCH")"
if [[ "${1:-}" == --is-current ]]; then stamped_with "$2/$LIB" "$SHA"; exit; fi
DEST="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/ds-pipeline/kenlm/lib}"
if stamped_with "$DEST/$LIB" "$SHA"; then echo "band-limited libmpg123 already built: $DEST/$LIB"; exit 0; fi

VERSION=1.31.2
ORIG="mpg123_$VERSION.orig.tar.bz2"
ORIG_SHA=b17f22905e31f43b6b401dfdf6a71ed11bb7d056f68db449d70b9f9ae839c7de
DEBIAN="mpg123_$VERSION-1+deb12u1.debian.tar.xz"
DEBIAN_SHA=9fc7eeeb4be67525fb7901022955b646832f095499612672ad7c24a1b3303599
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Where the files are once Debian has replaced this revision in its pool: Debian 12.11's snapshot.
SNAPSHOT=https://snapshot.debian.org/archive/debian/20250520T000000Z
fetch() {  # name sha256
  if [[ -n "${MPG123_SOURCE_DIR:-}" ]]; then
    cp "$MPG123_SOURCE_DIR/$1" "$WORK/$1"
  elif ! curl -fsSL --retry 3 -o "$WORK/$1" "$MIRROR/pool/main/m/mpg123/$1" &&
       ! curl -fsSL --retry 3 -o "$WORK/$1" "$SNAPSHOT/pool/main/m/mpg123/$1"; then
    echo "build_mpg123.sh: cannot download $1 from $MIRROR or $SNAPSHOT; put it in a folder" \
         "and set MPG123_SOURCE_DIR to that folder (without this library the import decodes with" \
         "the system libmpg123, about 10 % slower)" >&2
    exit 1
  fi
  echo "$2  $WORK/$1" | sha256sum --check --quiet || { echo "build_mpg123.sh: $1 is not the pinned file" >&2; exit 1; }
}
fetch "$ORIG" "$ORIG_SHA"
fetch "$DEBIAN" "$DEBIAN_SHA"
tar -xjf "$WORK/$ORIG" -C "$WORK"
SRC="$WORK/mpg123-$VERSION"
tar -xJf "$WORK/$DEBIAN" -C "$SRC"
while read -r p; do
  [[ -z "$p" || "$p" == \#* ]] || patch -d "$SRC" -p1 --quiet < "$SRC/debian/patches/$p"
done < "$SRC/debian/patches/series"
patch -d "$SRC" -p1 --quiet < "$PATCH"
sed -i "s/@DS_PIPELINE_PATCH_SHA@/$SHA/" "$SRC/src/libmpg123/layer3.c"
mkdir -p "$WORK/build"
# Debian's configuration for amd64 (debian/rules), the library alone.
(cd "$WORK/build" && "$SRC/configure" --quiet --enable-static=no --enable-shared --disable-modules >/dev/null)
# Its own SONAME: a process that also loads the system libmpg123.so.0 gets two libraries, not one
# standing in for the other.
sed -i "s/^soname_spec=.*/soname_spec='$LIB'/" "$WORK/build/libtool"
make -C "$WORK/build" -j"${JOBS:-2}" src/libmpg123/libmpg123.la >/dev/null
BUILT="$(find "$WORK/build/src/libmpg123/.libs" -name 'libmpg123.so.*.*' -type f | head -n1)"
stamped_with "$BUILT" "$SHA"
mkdir -p "$DEST"
install -m 0644 "$BUILT" "$DEST/$LIB.tmp.$$"
mv -f "$DEST/$LIB.tmp.$$" "$DEST/$LIB"
echo "band-limited libmpg123 built: $DEST/$LIB"
