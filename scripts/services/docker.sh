#!/usr/bin/env bash
# Starts a Docker engine for the code sandbox and builds the sandbox image.
#
# Idempotent: on a fresh Debian machine it installs docker.io (and debootstrap), starts dockerd
# in the background, builds the image from a minimal Debian root file system and prints the
# variables the tests read; when the engine answers and the image exists it only prints them.
# The root file system tarball is cached under .services/, so a rebuild needs no network.
#
# Usage:
#   eval "$(scripts/services/docker.sh)"   # exports NEXUS_TEST_DOCKER_HOST, NEXUS_TEST_SANDBOX_IMAGE
#   scripts/services/docker.sh stop        # stops the dockerd this script started
#
# Settings (environment):
#   NEXUS_DOCKER_SOCKET     socket path of the engine (default /var/run/docker.sock)
#   NEXUS_SANDBOX_IMAGE     image name (default nexus-sandbox:latest)
#   NEXUS_SANDBOX_PACKAGES  Debian packages of the image, comma-separated (default python3:
#                           Python with its whole standard library; python3-minimal is smaller
#                           but lacks json, sqlite3, decimal, urllib…)
#   NEXUS_SANDBOX_SUITE     Debian suite (default bookworm)
#   NEXUS_DEBIAN_MIRROR     Debian mirror (default http://deb.debian.org/debian)
#
# Only the `export …` lines go to stdout; progress goes to stderr.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES="$REPO/.services"
SOCKET="${NEXUS_DOCKER_SOCKET:-/var/run/docker.sock}"
HOST="unix://$SOCKET"
IMAGE="${NEXUS_SANDBOX_IMAGE:-nexus-sandbox:latest}"
PACKAGES="${NEXUS_SANDBOX_PACKAGES:-python3}"
SUITE="${NEXUS_SANDBOX_SUITE:-bookworm}"
MIRROR="${NEXUS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LOG="$SERVICES/dockerd.log"
PIDFILE="$SERVICES/dockerd.pid"
ROOTFS="$SERVICES/sandbox-rootfs-$SUITE-${PACKAGES//,/_}.tar"

log() { printf 'docker.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

mkdir -p "$SERVICES"

if [[ "${1:-}" == "stop" ]]; then
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        pid="$(cat "$PIDFILE")"
        log "stopping dockerd (pid $pid)"
        as_root kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && die "dockerd (pid $pid) did not stop; see $LOG"
    else
        log "no dockerd started by this script is running"
    fi
    rm -f "$PIDFILE"
    exit 0
fi

APT_UPDATED=0
apt_install() {
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
            || die "apt-get update failed (run as root, or install $* by hand)"
        APT_UPDATED=1
    fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

# 1. The engine and its client.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io
fi

ready() { docker -H "$HOST" version >/dev/null 2>&1; }

# 2. The engine: started in the background (in its own session, so it outlives this shell)
#    when the socket does not answer.
if ready; then
    log "engine answers at $HOST"
else
    log "starting dockerd (log: $LOG)"
    rm -f "$PIDFILE"
    # dockerd writes its own pid to $PIDFILE (what `stop` reads).
    if [[ "$(id -u)" -eq 0 ]]; then
        setsid dockerd --host="$HOST" --pidfile="$PIDFILE" >>"$LOG" 2>&1 </dev/null &
    else
        sudo -n setsid dockerd --host="$HOST" --pidfile="$PIDFILE" >>"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 120); do ready && break; sleep 0.5; done
    ready || { tail -n 30 "$LOG" >&2; die "dockerd did not answer at $HOST within 60 s; see $LOG"; }
    log "engine ready at $HOST"
fi

# 3. The image: a minimal Debian with Python, imported from a cached root file system tarball.
if docker -H "$HOST" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE present"
else
    if [[ ! -s "$ROOTFS" ]]; then
        command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
        ROOTDIR="$(mktemp -d "$SERVICES/rootfs.XXXXXX")"
        trap 'as_root rm -rf "$ROOTDIR"' EXIT
        log "debootstrap $SUITE with $PACKAGES into $ROOTDIR (a few minutes)"
        as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTDIR" "$MIRROR" >&2 \
            || die "debootstrap failed; see $ROOTDIR/debootstrap/debootstrap.log"
        # Package caches are not needed at run time.
        as_root rm -rf "$ROOTDIR"/var/cache/apt/archives/*.deb "$ROOTDIR"/var/lib/apt/lists/*
        as_root tar -C "$ROOTDIR" -c . >"$ROOTFS.tmp"
        mv "$ROOTFS.tmp" "$ROOTFS"
        as_root rm -rf "$ROOTDIR"
        trap - EXIT
    fi
    log "importing $ROOTFS as $IMAGE"
    docker -H "$HOST" import - "$IMAGE" <"$ROOTFS" >&2 || die "docker import failed"
fi

printf 'export NEXUS_TEST_DOCKER_HOST=%s\n' "$HOST"
printf 'export NEXUS_TEST_SANDBOX_IMAGE=%s\n' "$IMAGE"
