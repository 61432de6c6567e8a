#!/usr/bin/env bash
# Starts moto_server, a local S3 (and other AWS APIs) for the object storage tests, from the
# PyPI package `moto[server]`.
#
# Idempotent: on a fresh machine it creates the venv (shared with the other service scripts),
# installs moto and starts the server in the background; when the server already answers it
# only reports its address.
#
# Usage:
#   eval "$(scripts/services/moto.sh)"      # exports NEXUS_TEST_S3_ENDPOINT
#   scripts/services/moto.sh stop           # stops the server this script started
#
# Settings (environment):
#   NEXUS_MOTO_PORT   TCP port on 127.0.0.1 (default 55433)
#
# Only the `export NEXUS_TEST_S3_ENDPOINT=…` line goes to stdout; progress goes to stderr.
# moto accepts any credentials (the tests use "testing") and keeps everything in memory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES="$REPO/.services"
VENV="$SERVICES/venv"
PORT="${NEXUS_MOTO_PORT:-55433}"
LOG="$SERVICES/moto.log"
PIDFILE="$SERVICES/moto.pid"
ENDPOINT="http://127.0.0.1:${PORT}"

log() { printf 'moto.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$SERVICES"

if [[ "${1:-}" == "stop" ]]; then
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill "$(cat "$PIDFILE")"
        log "stopped"
    else
        log "not running (no live pid in $PIDFILE)"
    fi
    rm -f "$PIDFILE"
    exit 0
fi

# Answers like S3: the service root lists buckets.
answers() {
    "$VENV/bin/python" - "$ENDPOINT" >/dev/null 2>&1 <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/", timeout=2) as response:
    sys.exit(0 if b"ListAllMyBucketsResult" in response.read() else 1)
PY
}

# 1. The venv and moto (serialised, so parallel runs of this script do not install twice).
exec 9>"$SERVICES/moto.lock"
flock 9
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV"
    python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (install python3-venv)"
fi
if [[ ! -x "$VENV/bin/moto_server" ]] || ! "$VENV/bin/python" -c 'import moto.server, flask' >/dev/null 2>&1; then
    log "installing moto[server] into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' >&2 \
        || die "pip install 'moto[server]' failed"
fi

# 2. The server.
if answers; then
    log "already running on $ENDPOINT"
else
    if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))" 2>/dev/null; then
        die "port $PORT is taken by something that is not moto; set NEXUS_MOTO_PORT"
    fi
    log "starting on $ENDPOINT (log: $LOG)"
    # `9>&-`: the server must not inherit (and hold forever) the install lock.
    setsid nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >>"$LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 60); do answers && break; sleep 0.5; done
    answers || { tail -n 20 "$LOG" >&2; die "moto_server did not answer; see $LOG"; }
fi

printf 'export NEXUS_TEST_S3_ENDPOINT=%s\n' "$ENDPOINT"
