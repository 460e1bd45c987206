#!/usr/bin/env bash
#
# dev-stack.sh - the local dev stack for trying xdcr by hand: the dev broker (librdkafka's mock
# cluster, in memory) and two throwaway PostgreSQL 15 clusters, "east" and "west", on
# 127.0.0.1. DEV ONLY: trust authentication, in-memory Kafka. State lives in ./.xdcr
# (XDCR_STATE_DIR); processes keep running after this script exits, until `down`.
#
#   scripts/dev-stack.sh demo     up, then a forwarder and a consumer per DC, a workload in both
#                                 DCs, live lag, catch-up, checksums; stops everything at the end
#   scripts/dev-stack.sh demo --keep   the same, but leave the stack running (stop it with down)
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
    for pid in "$H_DIR"/daemons/*.pid; do # the demo's forwarders, consumers (demo --keep)
        [[ -e "$pid" ]] || continue
        name=$(basename "$pid" .pid)
        [[ $name == dev-broker ]] && continue
        if h_daemon_alive "$name"; then
            printf '%-17s running (pid %s), log %s\n' "$name" "$(h_daemon_pid "$name")" \
                "$(rel "$H_DIR/logs/$name.log")"
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
    # the demo's daemons first, while the broker still runs (a forwarder drains to Kafka)
    local f
    for f in "$H_DIR"/daemons/workload-*.pid "$H_DIR"/daemons/consumer-*.pid \
        "$H_DIR"/daemons/forwarder-*.pid; do
        [[ -e "$f" ]] && H_STOP_TIMEOUT_S=15 h__stop_pidfile "$f" TERM
    done
    H_STOP_TIMEOUT_S=10 h__teardown "$H_DIR" fast
    rm -rf "$STATE"
    echo "dev stack: stopped, $(rel "$STATE") removed"
}

# ---------------------------------------------------------------------------------------------
# demo: the whole path in one command (README's first Quickstart command)

DEMO_TABLES=(accounts east_events west_events)
DEMO_KEEP=0
DEMO_T0=0

demo_schema() {
    cat <<'SQL'
-- accounts: written in both DCs on the same keys: conflicts happen and are resolved by last
-- writer wins (docs/active-active.md; the losing DC's increment is lost, both DCs converge).
CREATE TABLE accounts (
    id integer PRIMARY KEY,
    dc text NOT NULL,
    balance bigint NOT NULL,
    updates integer NOT NULL,
    updated_at timestamptz NOT NULL
);
-- one table per DC, written only there
CREATE TABLE east_events (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id integer NOT NULL,
    amount integer NOT NULL,
    note text,
    created_at timestamptz NOT NULL
);
CREATE TABLE west_events (LIKE east_events INCLUDING ALL);
-- the workload: one transaction per step (upsert an account of this DC, insert an event,
-- now and then delete the oldest event), p_tps steps a second for p_seconds
CREATE PROCEDURE demo_workload(p_dc text, p_seconds float8, p_tps integer)
LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + make_interval(secs => p_seconds);
    events text := p_dc || '_events';
    acct integer;
    amt integer;
BEGIN
    LOOP
        EXIT WHEN clock_timestamp() >= stop_at;
        acct := floor(random() * 50)::integer;
        amt := floor(random() * 201)::integer - 100;
        INSERT INTO accounts AS a VALUES (acct, p_dc, amt, 1, clock_timestamp())
        ON CONFLICT (id) DO UPDATE
            SET balance = a.balance + excluded.balance, updates = a.updates + 1,
                updated_at = excluded.updated_at;
        EXECUTE format('INSERT INTO %I (account_id, amount, note, created_at)
                        VALUES ($1, $2, $3, clock_timestamp())', events)
            USING acct, amt, 'payment of ' || amt || ' on account ' || acct;
        IF random() < 0.1 THEN
            EXECUTE format('DELETE FROM %I WHERE id = (SELECT min(id) FROM %I)', events, events);
        END IF;
        COMMIT;
        PERFORM pg_sleep(1.0 / p_tps);
    END LOOP;
END
$$;
SQL
}

demo_elapsed() {
    printf '%3ds' $(($(date +%s) - DEMO_T0))
}

# demo_status_lines URL: one line per origin from a consumer's /status ("" if unreachable)
demo_status_lines() {
    curl -s -m 2 "$1/status" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit(0)
for o in d.get("origins") or []:
    def v(k, fmt="{}"):
        x = o.get(k)
        return "?" if x is None else fmt.format(x)
    print("%s -> %-5s lag %6ss %5s msgs %8s bytes  applied seq %-11s %s" % (
        o.get("origin"), d.get("origin"), v("lag_seconds", "{:.2f}"), v("lag_messages"),
        v("lag_bytes"), v("applied_seq"), o.get("state")))
'
}

demo_lag_line() {
    local line
    for url in "$@"; do
        while IFS= read -r line; do
            echo "  [$(demo_elapsed)] $line"
        done < <(demo_status_lines "$url")
    done
}

demo_count() { # DC TABLE
    h_psql "$1" "SELECT count(*) FROM $2"
}

demo_checksum() { # DC TABLE
    h_psql "$1" "SET TimeZone = 'UTC'" \
        "SELECT md5(coalesce(string_agg(t::text, '' ORDER BY id), '')) || ' ' || count(*) FROM $2 t"
}

demo_converged() {
    local t
    for t in "${DEMO_TABLES[@]}"; do
        [[ "$(demo_checksum east "$t")" == "$(demo_checksum west "$t")" ]] || return 1
    done
}

demo_origin_caught_up() { # URL: every origin of that consumer has nothing left to apply
    curl -s -m 2 "$1/status" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
o = d.get("origins") or []
sys.exit(0 if o and all(x.get("state") == "applying" and x.get("lag_messages") == 0 and
                        (x.get("lag_bytes") or 0) == 0 for x in o) else 1)
' 2>/dev/null
}

demo_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((DEMO_KEEP == 1)); then
        exit "$rc"
    fi
    echo
    echo "== stopping everything (run with --keep to leave the stack up)"
    cmd_down || true
    exit "$rc"
}

demo_start_daemons() {
    local dc other port fport
    for dc in east west; do
        [[ $dc == east ]] && other=west || other=east
        fport=$(h__free_port)
        port=$(h__free_port)
        while [[ "$port" == "$fport" ]]; do port=$(h__free_port); done
        echo "$fport" >"$H_DIR/forwarder-$dc.port"
        echo "$port" >"$H_DIR/consumer-$dc.port"
        cat >"$H_DIR/forwarder-$dc.conf" <<CONF
# xdcr-forwarder of $dc: captures $dc's writes, publishes them to xdcr.$dc.changes
origin = $dc
pg.conninfo = $(h_pg_conninfo "$dc")
slot.create = true
publication.create = true
publication.tables = public.accounts,public.east_events,public.west_events
heartbeat.interval = 500ms
http.listen = 127.0.0.1:$fport
kafka.bootstrap.servers = $(h_broker_bootstrap)
CONF
        cat >"$H_DIR/consumer-$dc.conf" <<CONF
# xdcr-consumer of $dc: applies $other's changes to $dc's database
origin = $dc
origins = $other
pg.conninfo = $(h_pg_conninfo "$dc")
# active-active (the default mode): the tombstone triggers go on these tables at start
tables = public.accounts,public.east_events,public.west_events
http.listen = 127.0.0.1:$port
kafka.bootstrap.servers = $(h_broker_bootstrap)
kafka.session.timeout.ms = 6000
# the dev broker answers an empty fetch only after fetch.wait.max.ms: keep it short
kafka.fetch.wait.max.ms = 50
CONF
        h_daemon_start "forwarder-$dc" "$XDCR_BUILD_DIR/forwarder/xdcr-forwarder" \
            --config "$H_DIR/forwarder-$dc.conf"
        h_daemon_start "consumer-$dc" "$XDCR_BUILD_DIR/consumer/xdcr-consumer" \
            --config "$H_DIR/consumer-$dc.conf"
    done
    for dc in east west; do
        h_wait_for 60 "forwarder-$dc ready (log: $(rel "$H_DIR/logs/forwarder-$dc.log"))" \
            curl -sf -m 2 "http://127.0.0.1:$(cat "$H_DIR/forwarder-$dc.port")/readyz"
        h_wait_for 60 "consumer-$dc ready (log: $(rel "$H_DIR/logs/consumer-$dc.log"))" \
            curl -sf -m 2 "$(demo_url consumer "$dc")/readyz"
    done
}

demo_url() { # KIND DC
    echo "http://127.0.0.1:$(cat "$H_DIR/$1-$2.port")"
}

demo_start_consumer() {
    h_daemon_start "consumer-$1" "$XDCR_BUILD_DIR/consumer/xdcr-consumer" \
        --config "$H_DIR/consumer-$1.conf"
}

cmd_demo() {
    local arg seconds=${XDCR_DEMO_SECONDS:-20} catchup=${XDCR_DEMO_CATCHUP_SECONDS:-10}
    local tps=${XDCR_DEMO_TPS:-25} dc t e w ok=1 ce cw end xdcr line
    for arg in "$@"; do
        case "$arg" in
        --keep) DEMO_KEEP=1 ;;
        *)
            usage >&2
            exit 2
            ;;
        esac
    done
    if [[ -e "$STATE" ]]; then
        h_fail "$(rel "$STATE") exists: the demo starts from scratch, run scripts/dev-stack.sh down first"
    fi
    DEMO_T0=$(date +%s)
    trap demo_cleanup EXIT
    trap 'echo; echo "dev-stack: interrupted" >&2; exit 130' INT TERM

    echo "== 1/7 build and start the dev broker and PostgreSQL east and west"
    cmd_up | sed 's/^/  /'
    h_attach "$STATE"
    xdcr=$(rel "$XDCR_BUILD_DIR/cli/xdcr")

    echo "== 2/7 sample schema in both DCs: ${DEMO_TABLES[*]}"
    for dc in east west; do
        demo_schema | h_psql "$dc" >/dev/null
    done

    echo "== 3/7 a forwarder and a consumer per DC (east applies west's changes, west applies east's)"
    demo_start_daemons
    for dc in east west; do
        echo "  $dc: forwarder $(demo_url forwarder "$dc"), consumer $(demo_url consumer "$dc")"
    done

    echo "== 4/7 workload in both DCs for ${seconds}s (~${tps} transactions/s each), live lag"
    echo "  both DCs write the same 50 accounts (conflicts: last writer wins) and their own"
    echo "  events table (east_events in east, west_events in west)"
    for dc in east west; do
        h_daemon_start "workload-$dc" psql -XAtq -v ON_ERROR_STOP=1 -d "$(h_pg_conninfo "$dc")" \
            -c "CALL demo_workload('$dc', $seconds, $tps)"
    done
    while h_daemon_alive workload-east || h_daemon_alive workload-west; do
        sleep 2
        demo_lag_line "$(demo_url consumer east)" "$(demo_url consumer west)"
    done
    for dc in east west; do
        [[ "$(h_daemon_wait "workload-$dc" 5)" == 0 ]] ||
            h_fail "the workload in $dc failed: $(tail -3 "$H_DIR/logs/workload-$dc.log")"
    done

    echo "== 5/7 catch-up: stop west's consumer, write in east for ${catchup}s, start it again"
    h_daemon_stop consumer-west >/dev/null
    echo "  [$(demo_elapsed)] west's consumer stopped"
    h_daemon_start workload-east psql -XAtq -v ON_ERROR_STOP=1 -d "$(h_pg_conninfo east)" \
        -c "CALL demo_workload('east', $catchup, $tps)"
    while h_daemon_alive workload-east; do
        sleep 2
        e=$(demo_count east east_events)
        w=$(demo_count west east_events)
        echo "  [$(demo_elapsed)] east -> west lag $(h_psql west "SELECT coalesce(round(lag_seconds::numeric, 2)::text, '?') FROM xdcr.lag WHERE origin = 'east'")s (xdcr.lag in west)  east_events: $e rows in east, $w in west, $((e - w)) behind"
    done
    [[ "$(h_daemon_wait workload-east 5)" == 0 ]] ||
        h_fail "the workload in east failed: $(tail -3 "$H_DIR/logs/workload-east.log")"
    demo_start_consumer west
    echo "  [$(demo_elapsed)] west's consumer started again: the lag drains"
    end=$(($(date +%s) + 60))
    while :; do
        sleep 1
        line=$(demo_status_lines "$(demo_url consumer west)" | head -1)
        e=$(demo_count east east_events)
        w=$(demo_count west east_events)
        if [[ "$line" == *" applying" ]]; then
            echo "  [$(demo_elapsed)] $line, east_events $((e - w)) behind"
        else
            echo "  [$(demo_elapsed)] west's consumer is joining its group (${line##* }), east_events $((e - w)) behind"
        fi
        if demo_origin_caught_up "$(demo_url consumer west)" &&
            [[ "$(demo_count east east_events)" == "$(demo_count west east_events)" ]]; then
            break
        fi
        (($(date +%s) < end)) || h_fail "west did not catch up within 60 s (log: $(rel "$H_DIR/logs/consumer-west.log"))"
    done
    echo "  [$(demo_elapsed)] west caught up"

    echo "== 6/7 convergence: per-table checksums, md5(string_agg(t::text, '' ORDER BY id))"
    end=$(($(date +%s) + 30))
    until demo_converged || (($(date +%s) >= end)); do
        sleep 0.5
    done
    printf '  %-12s %-40s %-40s %s\n' table east west ""
    for t in "${DEMO_TABLES[@]}"; do
        ce=$(demo_checksum east "$t")
        cw=$(demo_checksum west "$t")
        if [[ "$ce" == "$cw" ]]; then
            printf '  %-12s %-40s %-40s %s\n' "$t" "$ce rows" "$cw rows" "equal"
        else
            printf '  %-12s %-40s %-40s %s\n' "$t" "$ce rows" "$cw rows" "DIFFERENT"
            ok=0
        fi
    done
    if ((ok == 0)); then
        echo "dev-stack demo: FAILED: east and west did not converge (logs: $(rel "$H_DIR/logs")/)" >&2
        exit 1
    fi
    echo "  [$(demo_elapsed)] east and west converged: every table has the same checksum in both DCs"
    for dc in east west; do
        echo "  $dc: $(h_psql "$dc" "SELECT count(*) FROM xdcr.conflicts") conflicts resolved" \
            "($(h_psql "$dc" "SELECT coalesce(string_agg(kind || ' ' || n, ', '), 'none')
                              FROM (SELECT kind, count(*) n FROM xdcr.conflicts GROUP BY kind) k"))"
    done

    echo "== 7/7 what to look at next"
    echo "  $xdcr status --http $(demo_url consumer east | sed 's|http://||') --http $(demo_url consumer west | sed 's|http://||')"
    "$xdcr" status --http "$(demo_url consumer east)" --http "$(demo_url consumer west)" 2>&1 |
        sed 's/^/    /' || true
    for dc in east west; do
        echo "  $dc consumer  $(demo_url consumer "$dc")/status  $(demo_url consumer "$dc")/metrics"
        echo "  $dc forwarder $(demo_url forwarder "$dc")/status  $(demo_url forwarder "$dc")/metrics"
    done
    for dc in east west; do
        echo "  psql \"$(h_pg_conninfo "$dc")\" -c 'SELECT * FROM xdcr.lag'"
        echo "  psql \"$(h_pg_conninfo "$dc")\" -c 'SELECT * FROM xdcr.conflicts ORDER BY id DESC LIMIT 5'"
    done
    echo "  configs and logs  $(rel "$H_DIR")/*.conf, $(rel "$H_DIR/logs")/"
    echo "  stop and clean up scripts/dev-stack.sh down"
    if ((DEMO_KEEP == 1)); then
        echo "dev-stack demo: OK in $(demo_elapsed | tr -d ' '); the stack keeps running (--keep)"
    else
        echo "dev-stack demo: OK in $(demo_elapsed | tr -d ' ') (the URLs above work with --keep)"
    fi
}

case "${1:-}" in
up) cmd_up ;;
demo)
    shift
    cmd_demo "$@"
    ;;
status) cmd_status ;;
down) cmd_down ;;
-h | --help | help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
