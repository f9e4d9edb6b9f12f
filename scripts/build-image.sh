#!/usr/bin/env bash
# Build the build-machine image fleetdist/build:bookworm FROM the local base image.
#
# fleetdist builds venv bundles and OS packages in clean containers started
# from this image.  No registry is reachable, so it starts FROM the
# debootstrapped base image (scripts/base-image.sh, run here if the base is
# missing) and adds compilers, Python headers, pip and patchelf from the
# Debian mirror the base image's apt sources already name.
#
# Idempotent: does nothing when the image exists (set FLEETDIST_REBUILD=1 to rebuild).
# Environment:
#   FLEETDIST_BASE_IMAGE    base image (default fleetdist/base:bookworm)
#   FLEETDIST_BUILD_IMAGE   image to build (default fleetdist/build:bookworm)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="${FLEETDIST_BASE_IMAGE:-fleetdist/base:bookworm}"
IMAGE="${FLEETDIST_BUILD_IMAGE:-fleetdist/build:bookworm}"

log() { printf 'build-image: %s\n' "$*" >&2; }

if [ -z "${FLEETDIST_REBUILD:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already present"
    exit 0
fi
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    log "$BASE missing; building it first"
    FLEETDIST_BASE_IMAGE="$BASE" bash "$HERE/base-image.sh"
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/fleetdist-build-image.XXXXXX")"
trap 'rm -f "$LOG"' EXIT
log "building $IMAGE FROM $BASE (a minute or two on a cold apt cache)"
# The classic builder uses the local base image as is; BuildKit would try to
# resolve FROM against a registry first.
if ! DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" \
        -f "$HERE/build-image.Dockerfile" "$HERE" >"$LOG" 2>&1; then
    log "docker build failed; last lines:"; tail -n 20 "$LOG" >&2; exit 1
fi
log "built $IMAGE"
