#!/usr/bin/env bash
# Provides the headless Chromium the browser tool's tests drive (Debian package `chromium`).
#
# Idempotent: when a Chromium is already installed it only checks that it starts and reports
# its path; otherwise it installs the Debian package with apt-get (as root).
#
# Usage:
#   eval "$(scripts/services/chromium.sh)"      # exports NEXUS_TEST_CHROMIUM
#
# Settings (environment):
#   NEXUS_CHROMIUM   a Chromium executable to use instead of searching PATH
#
# Only the `export NEXUS_TEST_CHROMIUM=…` line goes to stdout; progress goes to stderr.
# Nothing runs in the background: each test starts (and stops) its own browser.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

find_chromium() {
    if [[ -n "${NEXUS_CHROMIUM:-}" ]]; then
        [[ -x "$NEXUS_CHROMIUM" ]] || die "NEXUS_CHROMIUM=$NEXUS_CHROMIUM is not executable"
        printf '%s\n' "$NEXUS_CHROMIUM"
        return 0
    fi
    local name
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if ! CHROMIUM="$(find_chromium)"; then
    [[ "$(id -u)" -eq 0 ]] || die "no Chromium on PATH; install it (sudo apt-get install chromium) or set NEXUS_CHROMIUM"
    command -v apt-get >/dev/null 2>&1 || die "no Chromium on PATH and no apt-get to install it; set NEXUS_CHROMIUM"
    log "installing the Debian package chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq chromium >&2 || die "apt-get install chromium failed"
    CHROMIUM="$(find_chromium)" || die "chromium installed but not found on PATH"
fi

# It must at least start: a broken install fails here rather than in every test.
VERSION="$(timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --version 2>/dev/null)" \
    || die "$CHROMIUM does not start (try: $CHROMIUM --headless --no-sandbox --version)"
log "using $CHROMIUM ($VERSION)"

printf 'export NEXUS_TEST_CHROMIUM=%s\n' "$CHROMIUM"
