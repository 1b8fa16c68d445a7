#!/usr/bin/env bash
# Make a local Debian base image without a registry: `debootstrap --variant=minbase` a rootfs
# (cached as a tarball), then import it into buildah storage (or `docker import` with an engine).
#
#   scripts/make_base_rootfs.sh [IMAGE]        default IMAGE: localhost/ds-pipeline/debian-base:<suite>
#
# Environment: BASE_SUITE (default: the host's codename), DEBOOTSTRAP_MIRROR (default: the first
# Debian mirror in /etc/apt/sources.list.d or sources.list), DS_CONTAINER_CACHE (default
# ~/.cache/ds-pipeline/container), CONTAINER_ENGINE=buildah|docker. Needs root and debootstrap.
set -euo pipefail

# shellcheck disable=SC1091
suite="${BASE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
image="${1:-localhost/ds-pipeline/debian-base:$suite}"
cache="${DS_CONTAINER_CACHE:-$HOME/.cache/ds-pipeline/container}"
engine="${CONTAINER_ENGINE:-buildah}"
tarball="$cache/debian-$suite-minbase.tar"
BUILDAH=(buildah --storage-driver overlay)

mirror_from_apt() {  # first URI listed for "$suite" itself (not -updates/-security)
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" 'BEGIN{RS=""} /Types:[^\n]*deb/ && $0 ~ "Suites:[^\n]*[ \t]" s "([ \t\n]|$)" {
        if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit } }' "$f"
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    awk -v s="$suite" '$1 == "deb" && $2 !~ /^\[/ && $3 == s { print $2 } $1 == "deb" && $2 ~ /^\[/ && $4 == s { print $3 }'
}

if [ "$engine" = docker ]; then
  have_image() { docker image inspect "$image" >/dev/null 2>&1; }
else
  have_image() { "${BUILDAH[@]}" inspect --type image "$image" >/dev/null 2>&1; }
fi
if have_image; then
  echo "base image $image: cached"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  mirror="${DEBOOTSTRAP_MIRROR:-$(mirror_from_apt | head -n1)}"
  if [ -z "$mirror" ]; then
    echo "error: no Debian mirror for '$suite' found in /etc/apt/sources.list(.d); set DEBOOTSTRAP_MIRROR" >&2
    exit 2
  fi
  mkdir -p "$cache"
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root" "$tarball.tmp"' EXIT
  echo "debootstrap --variant=minbase $suite from $mirror (about a minute)"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"   # atomic: a half-written tarball never looks cached
  rm -rf "$root"
  trap - EXIT
fi

echo "importing $tarball as $image"
if [ "$engine" = docker ]; then
  docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$image" >/dev/null
else
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$ctr" "$tarball" / >/dev/null
  "${BUILDAH[@]}" config --cmd /bin/bash --env LANG=C.UTF-8 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$image" >/dev/null
fi
echo "base image $image: ready"
