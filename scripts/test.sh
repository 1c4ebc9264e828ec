#!/usr/bin/env bash
# The project's one test command: installs what the tests need, runs the tests, checks
# formatting and lints. Works on a fresh Debian machine, with no stdin and with CI=true.
#
#   bash scripts/test.sh [extra args for `cargo test`]
#
# Prometheus (and the fake HTTP servers) are started by the Rust test harness itself
# (tests/support/), on 127.0.0.1 and free ports; this script only installs them. Services the
# harness cannot start itself go in start_services below.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null
export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*" >&2; }

# --- packages -----------------------------------------------------------------------------

# command -> Debian package providing it
declare -A PACKAGES=(
    [prometheus]=prometheus
    [promtool]=prometheus
    [kubectl]=kubernetes-client
)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

install_missing() {
    local missing=() cmd pkg
    for cmd in "${!PACKAGES[@]}"; do
        if ! command -v "$cmd" >/dev/null 2>&1; then
            pkg=${PACKAGES[$cmd]}
            [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "all test dependencies present (${!PACKAGES[*]})"
        return
    fi
    log "installing missing packages: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

ensure_rust_component() {
    local probe=$1 component=$2
    if cargo "$probe" --version >/dev/null 2>&1; then
        return
    fi
    if command -v rustup >/dev/null 2>&1; then
        log "installing rustup component $component"
        rustup component add "$component" || log "could not install $component"
    else
        log "cargo $probe is missing and rustup is not available"
    fi
}

# --- services -----------------------------------------------------------------------------
# Services the Rust harness does not start itself (later: PostgreSQL, Redis, NATS, dockerd...).
# Start each on 127.0.0.1 and a free port, record its PID in STARTED_PIDS and export how to
# reach it (e.g. ONCALL_TEST_PG_URL) for the tests. stop_services kills only those PIDs.

STARTED_PIDS=()
SERVICE_DIR=""

start_services() {
    SERVICE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/oncall-test-services.XXXXXX")
    chmod 755 "$SERVICE_DIR"
    # Nothing to start yet: Prometheus is started per test by tests/support/prometheus.rs.
}

stop_services() {
    local pid
    for pid in "${STARTED_PIDS[@]-}"; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping service pid $pid"
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    STARTED_PIDS=()
    if [ -n "$SERVICE_DIR" ]; then
        rm -rf "$SERVICE_DIR"
        SERVICE_DIR=""
    fi
}

# --- run ----------------------------------------------------------------------------------

install_missing
ensure_rust_component fmt rustfmt
ensure_rust_component clippy clippy

trap stop_services EXIT
start_services

log "cargo test $*"
cargo test "$@"

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

log "all checks passed"
