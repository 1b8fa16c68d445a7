#!/usr/bin/env bash
# Build both images and run the pipeline in a container against a bind-mounted data dir, the way
# users do (`docker run --mount type=bind,src=DATA,dst=/mnt --env-file ... IMAGE`).
#
# With a Docker engine it uses `docker build/run`; without one (CI, build machines) it uses
# `buildah bud/run --isolation chroot` on a debootstrapped Debian base (scripts/make_base_rootfs.sh),
# which needs root and the apt packages buildah and debootstrap.
#
# Environment:
#   CONTAINER_TEST_STAGES=preflight|all  preflight (default): config, dry-run, preflight as uid 999,
#                                        the unwritable-mount message, the no-GPU warning.
#                                        all: also the whole pipeline on a synthesized sample corpus
#                                        and the models/packages checked on the host side.
#   CONTAINER_TEST_CLIPS=40              sample corpus size for `all`
#   CONTAINER_ENGINE=docker|buildah      default: docker if `docker info` works, else buildah
#   BASE_IMAGE=...                       base for Dockerfile.train (default: the local Debian base)
#   TF_PACKAGE=tensorflow-cpu==2.21.0    TensorFlow in the test image (CPU)
#   PIP_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt  given to pip as a build secret when present
#   CONTAINER_TEST_KEEP_IMAGES=1         keep the built images (layer cache for fast reruns; default)
set -euo pipefail
cd "$(dirname "$0")/.."

stages="${CONTAINER_TEST_STAGES:-preflight}"
clips="${CONTAINER_TEST_CLIPS:-40}"
tf_package="${TF_PACKAGE:-tensorflow-cpu==2.21.0}"
ca="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
tag="test"
base_tag="localhost/ds-pipeline/base:$tag"
lang_tag="localhost/ds-pipeline/fr:$tag"
case "$stages" in preflight|all) ;; *) echo "CONTAINER_TEST_STAGES must be preflight or all" >&2; exit 2;; esac

if [ -z "${CONTAINER_ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then CONTAINER_ENGINE=docker; else CONTAINER_ENGINE=buildah; fi
fi
engine="$CONTAINER_ENGINE"
export CONTAINER_ENGINE
if [ "$engine" = buildah ]; then
  for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found: apt-get install buildah debootstrap" >&2; exit 3; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "error: buildah --isolation chroot needs root (run with sudo)" >&2; exit 3; }
fi
BUILDAH=(buildah --storage-driver overlay)
t0=$SECONDS
step() { printf '\n=== [%4ss] %s\n' "$((SECONDS - t0))" "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# --- build -----------------------------------------------------------------------------------
base_image="${BASE_IMAGE:-localhost/ds-pipeline/debian-base:$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
if [ -z "${BASE_IMAGE:-}" ]; then
  step "base image (debootstrap, cached)"
  scripts/make_base_rootfs.sh "$base_image"
fi
secret=()
[ -s "$ca" ] && secret=(--secret "id=pip_ca,src=$ca")
build() {  # build DOCKERFILE TAG BUILD-ARG... [--label K=V]
  local file="$1" out="$2"; shift 2
  local args=(-f "$file" -t "$out" "${secret[@]}")
  while [ $# -gt 0 ]; do
    if [ "$1" = --label ]; then args+=(--label "$2"); shift 2; else args+=(--build-arg "$1"); shift; fi
  done
  if [ "$engine" = docker ]; then
    DOCKER_BUILDKIT=1 docker build --progress=plain "${args[@]}" . >"$logdir/build-$(basename "$file").log" 2>&1
  else
    "${BUILDAH[@]}" bud --format docker --layers --jobs 3 --isolation chroot "${args[@]}" . >"$logdir/build-$(basename "$file").log" 2>&1
  fi || { tail -n 40 "$logdir/build-$(basename "$file").log" >&2; fail "building $file (log: $logdir)"; }
}
logdir="$(mktemp -d /tmp/ds-container-test.XXXXXX)"
work="$logdir/work"
mkdir -p "$work"
ctrs=()
cleanup() {
  local c
  for c in "${ctrs[@]}"; do "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
  if [ "${CONTAINER_TEST_KEEP_IMAGES:-1}" = 0 ]; then
    if [ "$engine" = docker ]; then docker rmi "$lang_tag" "$base_tag" >/dev/null 2>&1 || true
    else "${BUILDAH[@]}" rmi "$lang_tag" "$base_tag" >/dev/null 2>&1 || true; fi
  fi
}
trap cleanup EXIT

# Skip the builds when the images were built from exactly these inputs: even a fully cached
# rebuild re-hashes the 2.5 GB venv layer (minutes on a busy machine).
inputs="$( { printf '%s\n' "$base_image" "$tf_package"
             find Dockerfile.train Dockerfile_lang.train .dockerignore setup.py requirements.txt constraints-gpu.txt pipeline \
               importers env_files scripts/build_ctc_search.sh scripts/build_mpg123.sh scripts/stamp.sh -type f ! -name '*.pyc' -print0 | sort -z |
               xargs -0 sha256sum; } |
           sha256sum | cut -c1-16)"
if [ "$engine" = docker ]; then
  built="$(docker image inspect --format '{{index .Config.Labels "ds-pipeline.test-inputs"}}' "$lang_tag" 2>/dev/null || true)"
else
  built="$("${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "ds-pipeline.test-inputs"}}' "$lang_tag" 2>/dev/null || true)"
fi
if [ "$built" = "$inputs" ]; then
  step "images up to date with the sources (inputs $inputs): not rebuilt"
else
  step "build Dockerfile.train ($engine, BASE_IMAGE=$base_image, TF_PACKAGE=$tf_package)"
  build Dockerfile.train "$base_tag" "BASE_IMAGE=$base_image" "TF_PACKAGE=$tf_package"
  step "build Dockerfile_lang.train (MODEL_LANGUAGE=fr)"
  build Dockerfile_lang.train "$lang_tag" "BASE_IMAGE=$base_tag" "MODEL_LANGUAGE=fr" --label "ds-pipeline.test-inputs=$inputs"
fi

# --- run -------------------------------------------------------------------------------------
# crun [--data DIR] [--ro SRC:DST] [--env-file F]... [-e K=V]... [--entrypoint P] -- ARGS...
# Like `docker run --rm IMAGE ARGS`: ARGS go after the image's ENTRYPOINT. With buildah, env files
# are read with docker's rules (KEY=VALUE taken literally, `#` comments, bare KEY from the host).
crun() {
  local data="" entry="" mounts=() envs=() line
  while [ $# -gt 0 ]; do
    case "$1" in
      --data) data="$2"; shift 2;;
      --ro) mounts+=("$2"); shift 2;;
      --entrypoint) entry="$2"; shift 2;;
      -e) envs+=("$2"); shift 2;;
      --env-file)
        while IFS= read -r line || [ -n "$line" ]; do
          case "$line" in ''|'#'*) continue;; esac
          if [[ "$line" == *=* ]]; then envs+=("$line"); elif [ -n "${!line+x}" ]; then envs+=("$line=${!line}"); fi
        done <"$2"; shift 2;;
      --) shift; break;;
      *) fail "crun: unknown option $1";;
    esac
  done
  if [ "$engine" = docker ]; then
    local opts=(--rm --mount "type=bind,src=$data,dst=/mnt")
    for m in "${mounts[@]}"; do opts+=(--mount "type=bind,src=${m%%:*},dst=${m#*:},readonly"); done
    for e in "${envs[@]}"; do opts+=(-e "$e"); done
    [ -n "$entry" ] && opts+=(--entrypoint "$entry")
    docker run "${opts[@]}" "$lang_tag" "$@"
  else
    local ctr opts=(--isolation chroot -v "$data:/mnt")
    ctr="$("${BUILDAH[@]}" from --quiet --pull=never "$lang_tag")"
    ctrs+=("$ctr")
    # buildah 1.28 mounts the image's VOLUME over a `-v` bind on the same path: drop it.
    "${BUILDAH[@]}" config --volume /mnt- "$ctr"
    for m in "${mounts[@]}"; do opts+=(-v "$m:ro"); done
    for e in "${envs[@]}"; do opts+=(-e "$e"); done
    local cmd
    if [ -n "$entry" ]; then cmd=("$entry")
    else mapfile -t cmd < <("${BUILDAH[@]}" inspect --type image --format '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' "$lang_tag"); fi
    # runc sometimes fails to seal its memfd copy of itself ("Device or resource busy") before the
    # container starts: nothing has run then, so that one error is retried once.
    local errs="$work/crun.err" rc=0
    "${BUILDAH[@]}" run "${opts[@]}" "$ctr" -- "${cmd[@]}" "$@" 2>"$errs" || rc=$?
    cat "$errs" >&2
    if [ "$rc" -ne 0 ] && grep -q 'sealing memfd copy' "$errs"; then
      echo "(runc could not seal its memfd copy: running again)" >&2
      rc=0; "${BUILDAH[@]}" run "${opts[@]}" "$ctr" -- "${cmd[@]}" "$@" || rc=$?
    fi
    return "$rc"
  fi
}
owner_check() {  # every path under DIR owned by uid 999
  local bad
  bad="$(find "$1" ! -uid 999 -printf '%u:%g %p\n' | head -n 5)"
  [ -z "$bad" ] || fail "files in $1 not owned by uid 999:"$'\n'"$bad"
}

data="$work/data"
mkdir -p "$data"
chown 999:999 "$data"

step "who runs inside the container"
crun --data "$data" --entrypoint id -- | tee "$logdir/id.txt"
grep -q '^uid=999(trainer) gid=999(trainer)' "$logdir/id.txt" || fail "the container does not run as trainer (999:999)"

step "every env file parses inside the container (docker --env-file rules)"
for f in env_files/*.env; do
  crun --data "$data" --env-file "$f" -- config >"$logdir/config-$(basename "$f").txt" ||
    { cat "$logdir/config-$(basename "$f").txt"; fail "$f does not parse in the container"; }
  key="$(grep -m1 -E '^[A-Z_]+=' "$f" | cut -d= -f1)"
  grep -qE "^$key +.* environment " "$logdir/config-$(basename "$f").txt" || fail "$f: $key not taken from the environment"
  echo "  $f: ok"
done
grep -E '^MODEL_LANGUAGE ' "$logdir/config-sample.env.txt"

step "dry run (sample.env + -e overrides)"
crun --data "$data" --env-file env_files/sample.env -e N_HIDDEN=32 -e EPOCHS=1 -- run --dry-run

step "preflight as uid 999 on a bind mount owned by 999"
crun --data "$data" --env-file env_files/sample.env -- run --stages preflight 2>&1 | tee "$logdir/preflight.txt"
ls -ln "$data" "$data/logs"
owner_check "$data"
ls "$data"/logs/run-*.log >/dev/null 2>&1 || fail "no run log in DATA/logs"

step "bind mount owned by root: the preflight says how to fix it"
rootdir="$work/rootowned"
mkdir -p "$rootdir"
chmod 755 "$rootdir"
set +e
crun --data "$rootdir" -- run --stages preflight >"$logdir/unwritable.txt" 2>&1
rc=$?
set -e
cat "$logdir/unwritable.txt"
[ "$rc" -eq 2 ] || fail "expected exit code 2 for an unwritable data dir, got $rc"
grep -q 'chown -R 999:999' "$logdir/unwritable.txt" || fail "the message does not give the chown fix"
grep -q -- '--build-arg UID=' "$logdir/unwritable.txt" || fail "the message does not give the build-arg fix"

step "no GPU: a clear warning, CPU fallback"
crun --data "$data" --entrypoint python -- -c \
  'import logging, sys; logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from pipeline.stages.preflight import check_gpu
sys.exit(check_gpu())' 2>&1 | grep -v -E '^(I|W|E)0000 |^WARNING: All log messages' | tee "$logdir/gpu.txt"
grep -q 'no GPU visible: training on CPU' "$logdir/gpu.txt" || fail "no CPU-fallback warning"

step "the native beam search is in the image and built from the packaged source"
crun --data "$data" --entrypoint python -- -c \
  'from pipeline.lm import ctc_search
lib, why = ctc_search.load()
print("native beam search:", "loaded" if lib else why)' | tee "$logdir/ctc_search.txt"
grep -q '^native beam search: loaded' "$logdir/ctc_search.txt" || fail "the native beam search does not load"

step "the band-limited MP3 decoder is in the image and built from the packaged patch"
crun --data "$data" --entrypoint python -- -c \
  'from pipeline import mp3
print("mp3 decoder:", mp3.describe())' | tee "$logdir/mp3.txt"
grep -q '^mp3 decoder: libmpg123, band-limited' "$logdir/mp3.txt" || fail "the band-limited MP3 decoder does not load"

step "transfer checkpoint: read-only mount at /transfer-checkpoint"
ckpt="$work/transfer-checkpoint"
mkdir -p "$ckpt"
echo "model_checkpoint_path: \"best_dev-1\"" >"$ckpt/checkpoint"
crun --data "$data" --ro "$ckpt:/transfer-checkpoint" --env-file env_files/do_transfer_learning.env \
  --entrypoint python -- -c \
  'import sys; from pathlib import Path; from pipeline.config import load_config
from pipeline.stages.preflight import check_transfer
check_transfer(load_config())
try:
    Path("/transfer-checkpoint/x").touch()
    sys.exit("/transfer-checkpoint is writable")
except OSError as exc:
    print("TRANSFER_CHECKPOINT", load_config().train.transfer_checkpoint, "found, read-only:", exc.strerror)' |
  tee "$logdir/transfer.txt"
grep -q 'read-only: Read-only file system' "$logdir/transfer.txt" || fail "transfer checkpoint mount"

if [ "$stages" = all ]; then
  step "the whole pipeline on a $clips-clip sample corpus (sample.env + fast_dev.env)"
  crun --data "$data" -- sample-corpus --lang fr --clips "$clips" --out /mnt/sources/cv-corpus-sample-fr.tar.gz
  crun --data "$data" --env-file env_files/sample.env --env-file env_files/fast_dev.env -- run
  step "artifacts on the host side"
  ls -ln "$data" "$data/models" "$data/lm"
  for f in models/output_graph.pb models/output_graph.pbmm models/output_graph.tflite lm/kenlm.scorer \
           fr-fr.zip model_tensorflow_fr.tar.xz model_tflite_fr.tar.xz checkpoint_fr.tar.xz; do
    [ -s "$data/$f" ] || fail "missing on the host: DATA/$f"
  done
  owner_check "$data"
fi

step "done: CONTAINER_TEST_STAGES=$stages passed with $engine in $((SECONDS - t0)) s"
du -sh "$data" 2>/dev/null || true
