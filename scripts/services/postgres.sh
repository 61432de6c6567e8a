#!/usr/bin/env bash
# Starts a PostgreSQL 16 (with pgvector) for the test suites, from the PyPI package `pgserver`.
#
# Idempotent: on a fresh machine it creates the venv, installs pgserver, creates the data
# directory and starts the server; when the server already runs it only reports its URL.
#
# Usage:
#   eval "$(scripts/services/postgres.sh)"      # exports NEXUS_TEST_POSTGRES_URL
#   scripts/services/postgres.sh stop           # stops the server
#
# Settings (environment):
#   NEXUS_PG_PORT   TCP port on 127.0.0.1 (default 55432)
#   NEXUS_PG_DATA   data directory (default $REPO/.services/pgdata)
#   NEXUS_PG_USER   system user that runs the server when this script runs as root
#                   (default nexuspg; PostgreSQL refuses to run as root)
#
# Only the `export NEXUS_TEST_POSTGRES_URL=…` line goes to stdout; progress goes to stderr.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES="$REPO/.services"
VENV="$SERVICES/venv"
PORT="${NEXUS_PG_PORT:-55432}"
DATA="${NEXUS_PG_DATA:-$SERVICES/pgdata}"
RUN_USER="${NEXUS_PG_USER:-nexuspg}"
LOG="$SERVICES/postgres.log"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$SERVICES"

# 1. The venv and pgserver (shared with the other service scripts).
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV"
    python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (install python3-venv)"
fi
# find_spec locates the package without importing it (its import has side effects).
FIND_PKG='import importlib.util as u; s = u.find_spec("pgserver"); print(s.submodule_search_locations[0])'
if ! "$VENV/bin/python" -c "$FIND_PKG" >/dev/null 2>&1; then
    log "installing pgserver into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check pgserver >&2 \
        || die "pip install pgserver failed"
fi
PKG="$("$VENV/bin/python" -c "$FIND_PKG")"
BIN="$PKG/pginstall/bin"
[[ -x "$BIN/pg_ctl" ]] || die "no PostgreSQL binaries at $BIN"

# 2. Who runs the server: never root.
as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}
if [[ "$(id -u)" -eq 0 ]]; then
    if ! id "$RUN_USER" >/dev/null 2>&1; then
        log "creating system user $RUN_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
    fi
    # The server user needs to reach the binaries and the data directory.
    as_pg test -x "$BIN/postgres" || die "$RUN_USER cannot execute $BIN/postgres (check permissions of $REPO)"
fi

if [[ "${1:-}" == "stop" ]]; then
    if [[ -f "$DATA/postmaster.pid" ]]; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    log "stopped"
    exit 0
fi

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; }

# 3. The cluster.
if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initialising $DATA"
    mkdir -p "$DATA"
    [[ "$(id -u)" -eq 0 ]] && chown "$RUN_USER" "$DATA"
    chmod 700 "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >&2 || as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2 \
        || die "initdb failed"
fi
[[ "$(id -u)" -eq 0 ]] && chown -R "$RUN_USER" "$DATA"

# 4. The server.
if as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 && ready; then
    log "already running on 127.0.0.1:$PORT"
else
    if ready; then
        die "port $PORT answers but is not the server in $DATA; set NEXUS_PG_PORT"
    fi
    # A stale pid file from a killed server would stop pg_ctl; it checks the pid itself.
    touch "$LOG"
    [[ "$(id -u)" -eq 0 ]] && chown "$RUN_USER" "$LOG"
    log "starting on 127.0.0.1:$PORT (log: $LOG)"
    # Tests create a database each and run in parallel: allow plenty of connections; the data
    # is throwaway, so durability is traded for speed.
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DATA -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >&2 || { tail -n 20 "$LOG" >&2; die "pg_ctl start failed"; }
    for _ in $(seq 1 60); do ready && break; sleep 0.5; done
    ready || die "server did not become ready; see $LOG"
fi

printf 'export NEXUS_TEST_POSTGRES_URL=%s\n' "$URL"
