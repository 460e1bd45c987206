#!/usr/bin/env bash
#
# test_lag_load.sh - lag in bytes and Kafka messages under load (pgbench): with the apply blocked
# by a lock at the target, the Kafka backlog and the lag in seconds show in /status (kept
# current during the wait); after
# the load stops, bytes and messages return to 0 in /metrics, /status and the xdcr.lag view,
# the target equals the source, and the apply-delay histogram counted every transaction.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
SCHEMA="CREATE TABLE acct (id integer PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
        CREATE TABLE hist (id bigserial PRIMARY KEY, acct integer, delta integer)"
h_psql east "$SCHEMA" "CREATE PUBLICATION xdcr_east FOR TABLE acct, hist" \
    "INSERT INTO acct SELECT g FROM generate_series(1, 100) g" >/dev/null
h_psql west "$SCHEMA" >/dev/null

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
http.listen = 127.0.0.1:$PORT
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 10000
# the dev broker answers an empty fetch only after fetch.wait.max.ms
kafka.fetch.wait.max.ms = 50
CONF
cat >"$H_DIR/load.sql" <<'SQL'
\set a random(1, 100)
\set d random(1, 50)
BEGIN;
UPDATE acct SET balance = balance + :d WHERE id = :a;
INSERT INTO hist (acct, delta) VALUES (:a, :d);
COMMIT;
SQL
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

metric() { # metric NAME: value of NAME{origin="east"} ("" when absent)
    curl -s -m 3 "$URL/metrics" | awk -v n="$1{origin=\"east\"}" '$1 == n { print $2 }'
}
both_zero() { # lag bytes and messages 0 in /status, /metrics and xdcr.lag
    local s m v
    s=$(curl -s -m 3 "$URL/status" | jq -r '.origins[0] | "\(.lag_bytes) \(.lag_messages)"')
    m="$(metric xdcr_consumer_lag_bytes) $(metric xdcr_consumer_lag_messages)"
    v=$(h_psql west "SELECT lag_bytes || ' ' || lag_messages FROM xdcr.lag WHERE origin = 'east'")
    echo "status $s, metrics $m, view $v"
    [[ "$s" == "0 0" && "$m" == "0 0" && "$v" == "0 0" ]]
}
h_wait_for 40 "an idle start with no lag" both_zero

# ---- load, with the apply held back for a while by a lock at the target ----------------------
h_daemon_start load "$H_PG_BIN/pgbench" -n -T 8 -R 400 -c 2 -j 2 -f "$H_DIR/load.sql" \
    "$(h_pg_conninfo east)"
maxb=0
for _ in $(seq 1 10); do # 1 s of samples while the load runs freely
    b=$(metric xdcr_consumer_lag_bytes)
    ((${b:-0} > maxb)) && maxb=${b:-0}
    sleep 0.1
done
h_daemon_start locker psql -XAtq -d "$(h_pg_conninfo west)" \
    -c "BEGIN" -c "LOCK TABLE acct IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(3)" -c "COMMIT"
sleep 2.5
read -r lb lm ls <<<"$(curl -s -m 3 "$URL/status" |
    jq -r '.origins[0] | "\(.lag_bytes) \(.lag_messages) \(.lag_seconds)"')"
h__note "load, apply blocked for 2.5 s: lag_bytes $lb, lag_messages $lm, lag_seconds $ls"
((lm > 100)) || h_fail "apply blocked under load: lag_messages $lm, a backlog expected"
h_pass "apply blocked under load: the Kafka backlog shows ($lm messages)"
awk -v s="$ls" 'BEGIN { exit !(s >= 1.5) }' || h_fail "apply blocked: lag_seconds $ls, >= 1.5 expected"
h_pass "apply blocked under load: lag in seconds grows (${ls}s)"
h_daemon_wait locker 10 >/dev/null
for _ in $(seq 1 10); do
    b=$(metric xdcr_consumer_lag_bytes)
    ((${b:-0} > maxb)) && maxb=${b:-0}
    sleep 0.1
done
# bytes count what the source had written beyond the published position when the newest
# applied mark was made: with a forwarder that keeps up it is mostly 0 even under load
h__note "largest byte lag seen under load: $maxb"
h_daemon_wait load 30 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "pgbench ran without errors"

# ---- load stopped: both return to 0 ------------------------------------------------------------
h_wait_for 30 "byte and message lag back to 0" both_zero
h_pass "after the load: $H_OUT"
q="SELECT count(*) || ' ' || coalesce(sum(balance), 0) FROM acct"
h_assert_eq "$(h_psql east "$q")" "$(h_psql west "$q")" "acct equal"
q="SELECT count(*) || ' ' || coalesce(sum(delta), 0) FROM hist"
h_assert_eq "$(h_psql east "$q")" "$(h_psql west "$q")" "hist equal"
txns=$(h_psql east "SELECT count(*) FROM hist")
count=$(metric xdcr_consumer_apply_delay_seconds_count)
((count >= txns)) || h_fail "apply delay observed $count times for $txns transactions"
h_pass "the apply-delay histogram observed every transaction ($count >= $txns)"
p99=$(curl -s -m 3 "$URL/metrics" | awk '/^xdcr_consumer_apply_delay_seconds_bucket\{origin="east",le="\+Inf"\}/ {print $2}')
h_assert_eq "$count" "$p99" "the +Inf bucket holds every observation"

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the consumer stops cleanly"
h_daemon_stop forwarder >/dev/null
h_finish
