#!/usr/bin/env bash
# Make sure Docker, docker-compose and debootstrap are usable on this machine.
#
# Meant for a fresh Debian 12 run as root (CI) and for developers alike:
# installs what is missing, starts dockerd in the background when `docker info`
# cannot reach one (CI containers have no systemd), and waits for it with a
# bound.  Idempotent: a machine that is already set up costs one `docker info`.
set -euo pipefail

WAIT_SECONDS="${FLEETDIST_DOCKERD_WAIT:-60}"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/fleetdist"
LOG_FILE="$CACHE_DIR/dockerd.log"

log() { printf 'docker-up: %s\n' "$*" >&2; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)  # a bare docker client is not enough
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing ${missing[*]}; run this script as root to install them"; exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    log "docker info fails and only root can start dockerd here"; exit 1
fi
mkdir -p "$CACHE_DIR"
# A dockerd that is still starting up owns the pid file; do not start a second.
if ! { [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; }; then
    log "starting dockerd (log: $LOG_FILE)"
    # setsid: dockerd must outlive this script and the CI step's process group.
    # No userland proxy: 127.0.0.1-published ports are NATed by iptables rather than
    # relayed by one docker-proxy process per port, which made the fleet's SSH traffic
    # cost up to twice the CPU after its first gigabyte (bench/README.md).
    setsid dockerd --userland-proxy=false >"$LOG_FILE" 2>&1 < /dev/null &
    # Without the proxy, Docker (before 25) sets route_localnet on its bridges, so a
    # neighbour could route to 127.0.0.1-published ports: drop 127/8 from anywhere but lo.
    # (Replies from the containers are masqueraded to the bridge address, not 127/8.)
    rule=(PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP)
    iptables -t raw -C "${rule[@]}" 2>/dev/null || iptables -t raw -I "${rule[@]}"
fi

for _ in $(seq "$WAIT_SECONDS"); do
    if docker info >/dev/null 2>&1; then
        log "dockerd is up"; exit 0
    fi
    sleep 1
done
log "dockerd did not answer within ${WAIT_SECONDS}s; last lines of $LOG_FILE:"
tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true
exit 1
