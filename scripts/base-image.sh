#!/usr/bin/env bash
# Build the local base image fleetdist/base:bookworm with debootstrap, once.
#
# No image registry is reachable from CI, so images start from a rootfs built
# out of the Debian mirror apt already uses on this machine.  The image is kept
# generic (sshd, python3 + venv, CA certificates, procps, sudo) so that the sshd
# test fleet and the build containers can both start FROM it.
#
# Idempotent: does nothing when the image exists and was built with this
# package list (recorded in the image as /etc/fleetdist-base-packages).
# Environment:
#   FLEETDIST_BASE_IMAGE      image name (default fleetdist/base:bookworm)
#   FLEETDIST_DEBIAN_MIRROR   mirror URL (default: read from apt's sources)
#   FLEETDIST_DEBIAN_SUITE    suite (default bookworm)
set -euo pipefail

IMAGE="${FLEETDIST_BASE_IMAGE:-fleetdist/base:bookworm}"
SUITE="${FLEETDIST_DEBIAN_SUITE:-bookworm}"
PACKAGES="openssh-server,python3,python3-venv,ca-certificates,procps,sudo"

log() { printf 'base-image: %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    built="$(docker run --rm --network none "$IMAGE" cat /etc/fleetdist-base-packages 2>/dev/null || true)"
    if [ "$built" = "$PACKAGES" ]; then
        log "$IMAGE already present"
        exit 0
    fi
    log "$IMAGE was built with other packages: rebuilding it with $PACKAGES"
fi

# Print the first non-security Debian mirror apt is configured with:
# deb822 files (URIs: ...) first, then one-line sources.list entries.
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk 'tolower($1) == "uris:" {
                for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")"
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # `deb [options] URI suite components`: skip the optional [...] block.
        uri="$(sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f" \
               | grep -v security | head -n 1 || true)"
        if [ -n "$uri" ]; then printf '%s\n' "$uri"; return 0; fi
    done
    return 1
}

MIRROR="${FLEETDIST_DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ]; then
    MIRROR="$(find_mirror)" || { log "no Debian mirror found in /etc/apt; set FLEETDIST_DEBIAN_MIRROR"; exit 1; }
fi
command -v debootstrap >/dev/null || { log "debootstrap missing (run scripts/docker-up.sh)"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleetdist-rootfs.XXXXXX")"
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT
ROOTFS="$WORK/rootfs"

log "debootstrap $SUITE from $MIRROR (a few minutes on a cold cache)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || {
    log "debootstrap failed; last lines:"; tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }

# Keep the image small and generic: no apt caches, and no host keys baked in
# (every container that runs sshd must bring or generate its own).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/etc/ssh/ssh_host_*
mkdir -p "$ROOTFS/run/sshd"
printf '%s\n' "$PACKAGES" > "$ROOTFS/etc/fleetdist-base-packages"

log "importing $IMAGE"
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
log "built $IMAGE"
