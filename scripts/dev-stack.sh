#!/usr/bin/env bash
#
# dev-stack.sh - the local dev stack for trying xdcr by hand: the dev broker (librdkafka's mock
# cluster, in memory) and two throwaway PostgreSQL 15 clusters, "east" and "west", on
# 127.0.0.1. DEV ONLY: trust authentication, in-memory Kafka. State lives in ./.xdcr
# (XDCR_STATE_DIR); processes keep running after this script exits, until `down`.
#
#   scripts/dev-stack.sh up       install packages if needed, build, start (idempotent)
#   scripts/dev-stack.sh status   show what runs; exit 0 only if everything runs
#   scripts/dev-stack.sh down     stop everything and remove the state directory
#
# Environment: XDCR_BUILD_DIR (default ./build), XDCR_STATE_DIR (default ./.xdcr),
# XDCR_DEV_TOPICS (default "xdcr.east.changes:1 xdcr.west.changes:1"), XDCR_DEV_EAST_PORT and
# XDCR_DEV_WEST_PORT (defaults 25432 and 25433; a free port is used if taken),
# XDCR_SKIP_INSTALL=1 to skip scripts/install-deps.sh, XDCR_DEV_BUILD_TARGETS (default
# "xdcr xdcr-forwarder xdcr-consumer"; empty: do not build, use what is in XDCR_BUILD_DIR).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export XDCR_SOURCE_DIR=$ROOT
export XDCR_BUILD_DIR=${XDCR_BUILD_DIR:-$ROOT/build}
STATE=${XDCR_STATE_DIR:-$ROOT/.xdcr}
TOPICS=${XDCR_DEV_TOPICS:-xdcr.east.changes:1 xdcr.west.changes:1}
MARKER=.xdcr-dev-stack # only a directory holding this file is ever removed by `down`

# shellcheck source=../tests/support/harness.sh
source "$ROOT/tests/support/harness.sh"
H_QUIET=1

# Harness failures end this script with a plain message (there is no test to fail).
h_fail() {
    echo "dev-stack: $*" >&2
    exit 1
}
h_pass() {
    :
}

usage() {
    sed -n '/^#   scripts/s/^# *//p' "${BASH_SOURCE[0]}"
}

rel() {
    local p=$1
    if [[ "$p" == "$PWD/"* ]]; then
        echo "${p#"$PWD"/}"
    else
        echo "$p"
    fi
}

build() {
    if [[ "${XDCR_SKIP_INSTALL:-0}" != 1 ]]; then
        "$ROOT/scripts/install-deps.sh"
    fi
    local targets=${XDCR_DEV_BUILD_TARGETS-xdcr xdcr-forwarder xdcr-consumer}
    if [[ -z "$targets" ]]; then
        [[ -x "$XDCR_BUILD_DIR/cli/xdcr" ]] || h_fail "$XDCR_BUILD_DIR/cli/xdcr not found"
        return 0
    fi
    if [[ ! -f "$XDCR_BUILD_DIR/CMakeCache.txt" ]]; then
        cmake -S "$ROOT" -B "$XDCR_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    # shellcheck disable=SC2086
    cmake --build "$XDCR_BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)" \
        --target $targets >/dev/null ||
        h_fail "build failed: run cmake --build $(rel "$XDCR_BUILD_DIR") to see why"
}

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_pg() {
    local name=$1 port=$2
    if h_pg_is_running "$name"; then
        return 0
    fi
    if [[ -d "$H_DIR/pg/$name/data" ]]; then
        h_pg_restart "$name" >/dev/null
    elif port_is_free "$port"; then
        h_pg_start "$name" --port "$port" >/dev/null
    else
        h__note "port $port is taken, PostgreSQL $name gets a free one"
        h_pg_start "$name" >/dev/null
    fi
}

write_env() {
    {
        echo "# xdcr dev stack: source this file"
        printf 'export XDCR_BOOTSTRAP=%q\n' "$(h_broker_bootstrap)"
        printf 'export XDCR_BROKER_CONTROL=%q\n' "$H_DIR/broker/control.sock"
        printf 'export XDCR_EAST_CONNINFO=%q\n' "$(h_pg_conninfo east)"
        printf 'export XDCR_WEST_CONNINFO=%q\n' "$(h_pg_conninfo west)"
    } >"$H_DIR/env"
}

cmd_up() {
    local args=() t
    build
    mkdir -p "$STATE"
    touch "$STATE/$MARKER"
    h_attach "$STATE"
    if ! h_daemon_alive dev-broker; then
        for t in $TOPICS; do
            args+=(--topic "$t")
        done
        h_broker_start --brokers 3 "${args[@]}"
    fi
    start_pg east "${XDCR_DEV_EAST_PORT:-25432}"
    start_pg west "${XDCR_DEV_WEST_PORT:-25433}"
    write_env
    print_info
}

print_info() {
    local xdcr name ci
    xdcr=$(rel "$XDCR_BUILD_DIR/cli/xdcr")
    echo "xdcr dev stack is up (DEV ONLY: in-memory Kafka, trust auth on 127.0.0.1)"
    echo "  Kafka bootstrap   $(h_broker_bootstrap)"
    echo "  topics            $TOPICS (others are auto-created with 4 partitions)"
    echo "  broker control    $xdcr broker-ctl --control $(rel "$H_DIR/broker/control.sock") info"
    for name in east west; do
        ci=$(h_pg_conninfo "$name")
        printf '  PostgreSQL %-6s %s\n' "$name" "$ci"
        printf '                    psql "%s"\n' "$ci"
    done
    echo "  environment       source $(rel "$H_DIR/env")"
    echo "  logs              $(rel "$H_DIR/logs")/, $(rel "$H_DIR/pg")/<name>/postgresql.log"
    echo "  stop              scripts/dev-stack.sh down"
}

cmd_status() {
    local ok=0 name pid
    if [[ ! -f "$STATE/$MARKER" ]]; then
        echo "dev stack: not set up (no $(rel "$STATE"))"
        return 1
    fi
    h_attach "$STATE"
    if pid=$(h_daemon_pid dev-broker); then
        echo "dev broker        running (pid $pid): $(h_broker_bootstrap)"
    else
        echo "dev broker        stopped"
        ok=1
    fi
    for name in east west; do
        if pid=$(h_pg_pid "$name"); then
            printf 'PostgreSQL %-6s running (pid %s): %s\n' "$name" "$pid" "$(h_pg_conninfo "$name")"
        else
            printf 'PostgreSQL %-6s stopped\n' "$name"
            ok=1
        fi
    done
    return "$ok"
}

cmd_down() {
    if [[ ! -d "$STATE" ]]; then
        echo "dev stack: nothing to stop (no $(rel "$STATE"))"
        return 0
    fi
    [[ -f "$STATE/$MARKER" ]] ||
        h_fail "$STATE is not a dev stack state directory (no $MARKER): not touching it"
    h_attach "$STATE"
    H_STOP_TIMEOUT_S=10 h__teardown "$H_DIR" fast
    rm -rf "$STATE"
    echo "dev stack: stopped, $(rel "$STATE") removed"
}

case "${1:-}" in
up) cmd_up ;;
status) cmd_status ;;
down) cmd_down ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
