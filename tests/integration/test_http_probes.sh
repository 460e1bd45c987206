#!/usr/bin/env bash
#
# test_http_probes.sh - /livez depends on neither PostgreSQL nor Kafka: it stays 200 while the
# target PostgreSQL is stopped and while every broker is down, and /metrics and /status still
# answer; /readyz turns 503 with a reason in both cases and back to 200 when they return; the
# consumer then applies again.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 2 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text);
             CREATE PUBLICATION xdcr_east FOR TABLE t" >/dev/null
h_psql west "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null

PORT=$(h__free_port)
URL="http://127.0.0.1:$PORT"
cat >"$H_DIR/forwarder.conf" <<CONF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
heartbeat.interval = 500ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
CONF
cat >"$H_DIR/consumer.conf" <<CONF
origin = west
origins = east
pg.conninfo = $(h_pg_conninfo west)
retry.backoff_initial = 100ms
retry.backoff_max = 1s
http.listen = 127.0.0.1:$PORT
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 30000
CONF
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

code() { curl -s -m 3 -o "$H_DIR/body" -w '%{http_code}' "$URL$1" || true; }
is_code() { [[ "$(code "$2")" == "$1" ]]; }
# /livez answers 200 on every probe for SECS seconds (every 0.25 s)
live_for() {
    local end=$(($(date +%s) + $1)) c
    while (($(date +%s) < end)); do
        c=$(code /livez)
        [[ "$c" == 200 ]] || h_fail "/livez answered $c while $2"
        sleep 0.25
    done
    h_pass "/livez stayed 200 for $1 s while $2"
}
rows_at_west() { [[ "$(h_psql west "SELECT count(*) FROM t")" == "$1" ]]; }

h_wait_for 40 "/readyz 200" is_code 200 /readyz
fwd_wait_streaming east xdcr_east # a write before the slot exists is not captured
h_psql east "INSERT INTO t VALUES (1, 'a')" >/dev/null
h_wait_for 20 "row 1 at west" rows_at_west 1

# ---- the target PostgreSQL stopped ----------------------------------------------------------
h_pg_stop west
h_wait_for 10 "/readyz 503 without the target" is_code 503 /readyz
h_assert_contains "$(cat "$H_DIR/body")" "target PostgreSQL" "/readyz names the target as the reason"
live_for 6 "the target PostgreSQL is stopped"
h_assert_eq 200 "$(code /status)" "/status answers without the target"
h_assert_eq "false degraded" "$(jq -r '"\(.target_connected) \(.state)"' "$H_DIR/body")" \
    "/status: target not connected, state degraded"
h_assert_eq "waiting" "$(jq -r '.origins[0].state' "$H_DIR/body")" "/status: the origin is waiting"
h_assert_contains "$(jq -r '.last_error' "$H_DIR/body")" "target PostgreSQL" "/status: last_error names the target"
h_assert_eq 200 "$(code /metrics)" "/metrics answers without the target"
grep -q '^xdcr_consumer_ready 0$' "$H_DIR/body" || h_fail "xdcr_consumer_ready is not 0 without the target"
h_pass "xdcr_consumer_ready 0 without the target"
h_pg_restart west
h_wait_for 30 "/readyz 200 after the target is back" is_code 200 /readyz
h_psql east "INSERT INTO t VALUES (2, 'b')" >/dev/null
h_wait_for 30 "row 2 at west after the target came back" rows_at_west 2

# ---- every broker down ------------------------------------------------------------------------
h_broker_ctl broker-down 1 >/dev/null
h_broker_ctl broker-down 2 >/dev/null
h_wait_for 15 "/readyz 503 without Kafka" is_code 503 /readyz
h_assert_contains "$(cat "$H_DIR/body")" "Kafka" "/readyz names Kafka as the reason"
live_for 6 "every broker is down"
h_assert_eq 200 "$(code /status)" "/status answers without Kafka"
h_assert_eq "false" "$(jq -r '.kafka_up' "$H_DIR/body")" "/status: kafka_up false"
h_broker_ctl broker-up 1 >/dev/null
h_broker_ctl broker-up 2 >/dev/null
h_wait_for 30 "/readyz 200 after the brokers are back" is_code 200 /readyz
h_psql east "INSERT INTO t VALUES (3, 'c')" >/dev/null
h_wait_for 30 "row 3 at west after the brokers came back" rows_at_west 3

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the consumer stops cleanly"
h_daemon_stop forwarder >/dev/null
h_finish
