#!/usr/bin/env bash
# The project's one test command: installs what the tests need, runs the tests, checks
# formatting and lints. Works on a fresh Debian machine, with no stdin and with CI=true.
#
#   bash scripts/test.sh [extra args for `cargo test`]
#
# Prometheus, Alertmanager, PostgreSQL, Redis, NATS (and the fake HTTP servers) are started
# by the Rust test harness itself (tests/cli/support/), on 127.0.0.1 and free ports; this script
# only installs them. Services the harness cannot start itself go in start_services below: a
# private dockerd (its own socket, data and exec roots, no bridge, no iptables) with a test
# image made from busybox-static, reached through ONCALL_TEST_DOCKER_HOST.
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
    [dockerd]=docker.io
    [busybox]=busybox-static
    [docker-compose]=docker-compose
    # PostgreSQL 15 (with pg_stat_statements); its programs are not on PATH.
    [/usr/lib/postgresql/15/bin/initdb]=postgresql
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    # In /usr/sbin, which a non-root PATH may lack.
    [/usr/sbin/nats-server]=nats-server
    [prometheus-alertmanager]=prometheus-alertmanager
    [amtool]=prometheus-alertmanager
    # Makes the certificate of the PostgreSQL the team store's TLS tests talk to.
    [openssl]=openssl
)

# The test image is made from /bin/busybox, which must be the static build: a dynamically
# linked busybox (package `busybox`) also answers `command -v busybox` but cannot run in an
# image with no libc.
BUSYBOX=/bin/busybox
busybox_is_static() {
    [ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1
}

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
    if ! busybox_is_static && [[ " ${missing[*]-} " != *" busybox-static "* ]]; then
        missing+=(busybox-static)
    fi
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
# Services the Rust harness does not start itself (dockerd).
# Start each on 127.0.0.1 and a free port, record its PID in STARTED_PIDS and export how to
# reach it (e.g. ONCALL_TEST_PG_URL) for the tests. stop_services kills only those PIDs.

STARTED_PIDS=()
SERVICE_DIR=""
DOCKER_DIR=""
DOCKERD_PID=""

# The image every Docker test runs (no image can be pulled here), and the applets it links.
DOCKER_TEST_IMAGE=oncall-test-busybox:latest
BUSYBOX_APPLETS=(sh sleep echo cat printf true false touch rm ls wget nc httpd kill tail)
# Bounds, in tenths of a second.
DOCKERD_READY_TENTHS=300
DOCKERD_STOP_TENTHS=150

start_services() {
    SERVICE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/oncall-test-services.XXXXXX")
    chmod 755 "$SERVICE_DIR"
    # Prometheus is started per test by tests/cli/support/prometheus.rs.
    start_dockerd
}

# A private dockerd: own socket, data root and exec root under a SHORT folder in /tmp (unix
# socket paths are limited to 108 bytes, and containerd's lives under the exec root), no
# bridge and no iptables (containers never get a network here).
start_dockerd() {
    local sock tries=0 started
    started=$(date +%s%N)
    DOCKER_DIR=$(mktemp -d /tmp/ocd.XXXX)
    chmod 755 "$DOCKER_DIR"
    sock="$DOCKER_DIR/docker.sock"
    log "starting a private dockerd in $DOCKER_DIR"
    dockerd --host "unix://$sock" --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/x" \
        --pidfile "$DOCKER_DIR/pid" --bridge=none --iptables=false --ip-masq=false \
        >"$DOCKER_DIR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    STARTED_PIDS+=("$DOCKERD_PID")
    until docker -H "unix://$sock" version >/dev/null 2>&1; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null || [ "$tries" -ge "$DOCKERD_READY_TENTHS" ]; then
            log "the private dockerd did not start (it needs root, or CAP_SYS_ADMIN and cgroups); its log:"
            tail -n 30 "$DOCKER_DIR/dockerd.log" >&2 || true
            log "the Docker tests cannot run without it: failing (set up root or a privileged container)"
            exit 1
        fi
        tries=$((tries + 1))
        sleep 0.1
    done
    log "dockerd ready (pid $DOCKERD_PID) in $((($(date +%s%N) - started) / 1000000)) ms"
    started=$(date +%s%N)
    build_docker_test_image "$sock"
    log "built $DOCKER_TEST_IMAGE in $((($(date +%s%N) - started) / 1000000)) ms"
    export ONCALL_TEST_DOCKER_HOST="unix://$sock"
}

# A one-layer image: /bin/busybox and symlinks for the applets the tests use.
build_docker_test_image() {
    local sock=$1 rootfs="$DOCKER_DIR/rootfs" applet
    if ! busybox_is_static; then
        log "$BUSYBOX is missing or not statically linked: install busybox-static"
        exit 1
    fi
    mkdir -p "$rootfs/bin" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    cp "$BUSYBOX" "$rootfs/bin/busybox"
    for applet in "${BUSYBOX_APPLETS[@]}"; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    tar -C "$rootfs" -c . | docker -H "unix://$sock" import -c 'CMD ["/bin/sh"]' - "$DOCKER_TEST_IMAGE" >/dev/null
}

stop_dockerd() {
    local sock="$DOCKER_DIR/docker.sock" ids tries=0 mnt
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$(timeout 20 docker -H "unix://$sock" ps -aq 2>/dev/null || true)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086 # one word per container id
            timeout 60 docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true
        fi
        log "stopping dockerd pid $DOCKERD_PID"
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        while kill -0 "$DOCKERD_PID" 2>/dev/null && [ "$tries" -lt "$DOCKERD_STOP_TENTHS" ]; do
            tries=$((tries + 1))
            sleep 0.1
        done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            log "dockerd did not stop within $((DOCKERD_STOP_TENTHS / 10)) s: SIGKILL"
            kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        fi
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    DOCKERD_PID=""
    if [ -n "$DOCKER_DIR" ]; then
        # A killed dockerd can leave overlay mounts behind: unmount them (deepest first) so
        # removing the folder never reaches into a mounted file system.
        for mnt in $(awk -v d="$DOCKER_DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
            umount -l "$mnt" 2>/dev/null || true
        done
        rm -rf "$DOCKER_DIR"
        DOCKER_DIR=""
    fi
}

stop_services() {
    local pid
    stop_dockerd
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
# Without these a signal ends bash without its EXIT trap, leaving dockerd running.
trap 'exit 130' INT
trap 'exit 143' TERM HUP
start_services

log "cargo test $*"
cargo test "$@"

# The bundled runbooks test themselves: every scenario replayed, every expectation held.
log "oncall test (the bundled runbooks' scenarios, every branch taken)"
cargo run --quiet -- test --min-coverage 100

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

log "all checks passed"
