#!/usr/bin/env bash
#
# test_http_status_cli.sh - `xdcr status` against a running forwarder and consumer: the table
# and --json from the consumer's /status (--http, with a bearer token), the forwarder's
# /status, and the target's lag view (--db); a standby forwarder's document (served from a
# file); exit 7 when a source
# cannot be read, exit 1 with a tiny --max-lag-seconds once the forwarder is stopped and when
# an origin is halted; --watch refreshes until interrupted.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
XDCR="$XDCR_BUILD_DIR/cli/xdcr"

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text);
             CREATE PUBLICATION xdcr_east FOR TABLE t" >/dev/null
h_psql west "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null
WEST=$(h_pg_conninfo west)

PORT=$(h__free_port)
ADDR="127.0.0.1:$PORT"
FWDADDR="127.0.0.1:$(h__free_port)"
echo "tok-$RANDOM$RANDOM" >"$H_DIR/token"
cat >"$H_DIR/forwarder.conf" <<CONF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
heartbeat.interval = 500ms
http.listen = $FWDADDR
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
CONF
cat >"$H_DIR/consumer.conf" <<CONF
origin = west
origins = east
pg.conninfo = $WEST
http.listen = $ADDR
http.token_file = $H_DIR/token
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
kafka.fetch.wait.max.ms = 50
CONF
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

# a standby forwarder's /status document
FPORT=$(h__free_port)
mkdir -p "$H_DIR/fwdstatus"
cat >"$H_DIR/fwdstatus/status" <<'JSON'
{"version": 1, "service": "forwarder", "origin": "east", "state": "standby", "ready": false,
 "role": "standby", "confirmed_lsn": "0/1A2B3C4", "source_wal_lsn": "0/1A2B400",
 "slot_retained_wal_bytes": 12345, "inflight_messages": 3, "last_error": null}
JSON
h_daemon_start fakefwd python3 -m http.server "$FPORT" --bind 127.0.0.1 --directory "$H_DIR/fwdstatus"

st() { # st ARGS...: run xdcr status, output in $H_DIR/out, exit status printed
    local rc=0
    "$XDCR" status "$@" >"$H_DIR/out" 2>&1 || rc=$?
    echo "$rc"
}
lag_small() {
    [[ "$(st --json --http "$ADDR" --token-file "$H_DIR/token" --max-lag-seconds 2)" == 0 ]] &&
        [[ "$(jq -r '.origins[0].state' "$H_DIR/out")" == applying ]]
}
fwd_wait_streaming east xdcr_east # a write before the slot exists is not captured
h_psql east "INSERT INTO t VALUES (1, 'a')" >/dev/null
h_wait_for 40 "xdcr status to report a small lag" lag_small
fwd_up() { [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FPORT/status")" == 200 ]]; }
h_wait_for 10 "the fake forwarder endpoint" fwd_up

# ---- table ------------------------------------------------------------------------------------
h_assert_eq 0 "$(st --http "$ADDR" --token-file "$H_DIR/token" --db "$WEST" --http "$FWDADDR" \
    --http "127.0.0.1:$FPORT")" "consumer, database and forwarders readable: exit 0"
out=$(cat "$H_DIR/out")
grep -Eq "^west +east +applying +[0-9.]+ +[0-9]+ +[0-9]+ +[0-9A-F]+/[0-9A-F]+ +http://$ADDR/status" <<<"$out" ||
    h_fail "no applying row for east at west from the consumer: $out"
h_pass "table: the consumer's row (DC west, origin east, applying, lag s/bytes/messages, seq)"
grep -Eq "^west +east +stored +[0-9.]+ +[0-9]+ +[0-9]+ +[0-9A-F]+/[0-9A-F]+ +db:127.0.0.1:" <<<"$out" ||
    h_fail "no row for east at west from the database: $out"
h_pass "table: the database's row, DC from the consumer's recorded origin"
grep -Eq "^east +active +streaming +yes +[0-9A-F]+/[0-9A-F]+ +[0-9A-F]+/[0-9A-F]+ +[0-9]+ +[0-9]+ +http://$FWDADDR/status" <<<"$out" ||
    h_fail "no row for the running forwarder: $out"
h_pass "table: the forwarder's role, state, confirmed LSN, source WAL, slot retention, in flight"
grep -Eq "^east +standby +standby +no +0/1A2B3C4 +0/1A2B400 +12345 +3 " <<<"$out" ||
    h_fail "no row for the standby forwarder: $out"
h_pass "table: a standby forwarder's row"
if grep -q "$(cat "$H_DIR/token")" "$H_DIR/out"; then h_fail "the token was printed"; fi

# ---- --json -----------------------------------------------------------------------------------
h_assert_eq 0 "$(st --json --http "$ADDR" --token-file "$H_DIR/token" --db "$WEST" \
    --http "$FWDADDR" --http "127.0.0.1:$FPORT")" "--json: exit 0"
h_assert_eq "1 0 2 2 0 true" "$(jq -r '"\(.version) \(.status) \(.origins | length) \(.forwarders | length) \(.problems | length) \([.sources[].ok] | all)"' "$H_DIR/out")" \
    "--json: version, status, two origin rows, two forwarders, no problems, every source read"
h_assert_eq "west east applying true" "$(jq -r '.origins[0] | "\(.dc) \(.origin) \(.state) \(.lag_seconds < 2)"' "$H_DIR/out")" \
    "--json: the consumer's origin row"
h_assert_eq "active true standby 12345" "$(jq -r '.forwarders | "\(.[0].role) \(.[0].ready) \(.[1].role) \(.[1].slot_retained_wal_bytes)"' "$H_DIR/out")" \
    "--json: the forwarder rows"

# ---- unreadable sources -----------------------------------------------------------------------
h_assert_eq 7 "$(st --http "$ADDR")" "without the token: exit 7"
h_assert_contains "$(cat "$H_DIR/out")" "401" "the table says why (HTTP 401)"
h_assert_eq 7 "$(st --http "127.0.0.1:$(h__free_port)" --db "$WEST")" "a closed port: exit 7"
h_assert_contains "$(cat "$H_DIR/out")" "UNREADABLE" "the unreadable source is listed"
h_assert_eq 7 "$(st --db "host=127.0.0.1 port=$(h__free_port) user=postgres connect_timeout=2")" \
    "an unreachable database: exit 7"
h_assert_eq 2 "$(st)" "no source: usage error"

# ---- --watch ----------------------------------------------------------------------------------
# SIGINT goes in only once two rounds are out (an interrupt before main() would just kill it), and
# the wait for the exit is bounded: a --watch that ignores SIGINT fails here instead of hanging.
h_daemon_start watch "$XDCR" status --watch 1 --http "$ADDR" --token-file "$H_DIR/token"
rounds() { (($(grep -c '^xdcr status at ' "$(h_daemon_log watch)" || true) >= 2)); }
h_wait_for 30 "--watch to print two rounds" rounds
h_pass "--watch refreshed $(grep -c '^xdcr status at ' "$(h_daemon_log watch)") times"
h_daemon_signal watch INT
h_daemon_wait watch 10 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "--watch: exits with the last round's status when interrupted"

# ---- the forwarder stops: lag over a tiny threshold -----------------------------------------
h_daemon_stop forwarder >/dev/null
sleep 1.5
h_assert_eq 1 "$(st --http "$ADDR" --token-file "$H_DIR/token" --max-lag-seconds 0.5)" \
    "forwarder stopped: exit 1 with --max-lag-seconds 0.5"
h_assert_contains "$(cat "$H_DIR/out")" "PROBLEM origin east at west: lag" "the problem is named"
h_assert_eq 1 "$(st --db "$WEST" --max-lag-seconds 0.5)" "the lag view agrees: exit 1"
h_assert_eq 0 "$(st --http "$ADDR" --token-file "$H_DIR/token" --max-lag-seconds 60)" \
    "under a generous threshold: exit 0"

# ---- an origin halted -------------------------------------------------------------------------
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_psql west "DROP TABLE t" >/dev/null
h_psql east "INSERT INTO t VALUES (2, 'b')" >/dev/null
halted() { [[ "$(h_psql west "SELECT count(*) FROM xdcr.halts WHERE origin = 'east'")" == 1 ]]; }
h_wait_for 30 "the origin to halt on the missing table" halted
h_assert_eq 1 "$(st --db "$WEST")" "an origin halted: exit 1"
grep -Eq "^west +east +halted .*relation" "$H_DIR/out" || h_fail "no halted row: $(cat "$H_DIR/out")"
h_pass "the halted row shows the error"

h_daemon_stop consumer >/dev/null
h_daemon_stop forwarder >/dev/null
h_daemon_stop fakefwd >/dev/null
h_finish
