#!/usr/bin/env bash
#
# test_lag_idle.sh - lag in seconds on an idle source (progress marks every 500 ms): stays under
# twice the mark interval for 20 s, in /metrics, /status and the xdcr.lag view; with the
# forwarder stopped it grows linearly (three samples, slope about 1 s/s, last source time
# frozen); with the forwarder back it returns under the bound.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
MARK_MS=500
BOUND=$(awk -v m="$MARK_MS" 'BEGIN { print 2 * m / 1000 }')

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text);
             CREATE PUBLICATION xdcr_east FOR TABLE t" >/dev/null
h_psql west "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null

PORT=$(h__free_port)
URL="http://127.0.0.1:$PORT"
cat >"$H_DIR/forwarder.conf" <<CONF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
heartbeat.interval = ${MARK_MS}ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
CONF
cat >"$H_DIR/consumer.conf" <<CONF
origin = west
origins = east
pg.conninfo = $(h_pg_conninfo west)
http.listen = 127.0.0.1:$PORT
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
# the dev broker answers an empty fetch only after fetch.wait.max.ms (a real broker answers as
# soon as data arrives): keep that wait short so transport time does not blur the lag
kafka.fetch.wait.max.ms = 50
CONF
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

# metric NAME: the value of NAME{origin="east"} in a fresh scrape ("" when absent)
metric() {
    curl -s -m 3 "$URL/metrics" | awk -v n="$1{origin=\"east\"}" '$1 == n { print $2 }'
}
view_lag() { h_psql west "SELECT round(lag_seconds::numeric, 3) FROM xdcr.lag WHERE origin = 'east'"; }
status_lag() { curl -s -m 3 "$URL/status" | jq -r '.origins[0].lag_seconds'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a < b) }'; }
between() { awk -v a="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(a != "" && a >= lo && a <= hi) }'; }
under_bound() { lt "$(metric xdcr_consumer_lag_seconds)" "$BOUND"; }

fwd_wait_streaming east xdcr_east # a write before the slot exists is not captured
h_psql east "INSERT INTO t VALUES (1, 'a')" >/dev/null
h_wait_for 40 "lag under ${BOUND}s" under_bound

# ---- idle: marks keep the lag near zero -------------------------------------------------------
max=0
end=$(($(date +%s) + 20))
while (($(date +%s) < end)); do
    m=$(metric xdcr_consumer_lag_seconds)
    v=$(view_lag)
    s=$(status_lag)
    for x in "$m" "$v" "$s"; do
        lt "$x" "$BOUND" || h_fail "idle: lag ${x}s is not under ${BOUND}s (metric $m, view $v, status $s)"
    done
    max=$(awk -v a="$max" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
    sleep 0.3
done
h_pass "idle: lag stayed under ${BOUND}s for 20 s in /metrics, /status and xdcr.lag (max ${max}s)"
h_assert_eq 0 "$(metric xdcr_consumer_lag_bytes)" "idle: no byte lag"

# ---- forwarder stopped: the lag grows with the clock ----------------------------------------
h_daemon_stop forwarder >/dev/null
sleep 1 # a mark produced before the stop may still be on its way
src=$(metric xdcr_consumer_last_source_time_seconds)
declare -a at lag
for i in 0 1 2; do
    at[i]=$(date +%s.%N)
    lag[i]=$(metric xdcr_consumer_lag_seconds)
    ((i == 2)) || sleep 2
done
h__note "forwarder stopped: lag ${lag[0]}s, ${lag[1]}s, ${lag[2]}s"
for i in 1 2; do
    dl=$(awk -v a="${lag[i - 1]}" -v b="${lag[i]}" 'BEGIN { print b - a }')
    dt=$(awk -v a="${at[i - 1]}" -v b="${at[i]}" 'BEGIN { print b - a }')
    slope=$(awk -v l="$dl" -v t="$dt" 'BEGIN { print l / t }')
    between "$slope" 0.8 1.2 || h_fail "lag grew ${dl}s in ${dt}s (slope $slope): not linear"
done
h_pass "forwarder stopped: lag grows linearly (${lag[0]}s, ${lag[1]}s, ${lag[2]}s)"
between "${lag[2]}" 4.5 7 || h_fail "lag ${lag[2]}s, about 5.5 s after the last mark expected"
h_assert_eq "$src" "$(metric xdcr_consumer_last_source_time_seconds)" \
    "forwarder stopped: the last source time stays where it was"
v=$(view_lag)
between "$v" 4.5 8 || h_fail "xdcr.lag shows ${v}s"
h_pass "the xdcr.lag view grows too (${v}s)"

# ---- forwarder back: under the bound again ----------------------------------------------------
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_wait_for 30 "lag back under ${BOUND}s" under_bound
end=$(($(date +%s) + 4))
while (($(date +%s) < end)); do
    m=$(metric xdcr_consumer_lag_seconds)
    lt "$m" "$BOUND" || h_fail "after the restart: lag ${m}s is not under ${BOUND}s"
    sleep 0.3
done
h_pass "forwarder back: lag stays under ${BOUND}s"

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the consumer stops cleanly"
h_daemon_stop forwarder >/dev/null
h_finish
