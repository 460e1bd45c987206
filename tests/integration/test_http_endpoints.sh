#!/usr/bin/env bash
#
# test_http_endpoints.sh - the consumer's HTTP endpoints: /metrics passes `promtool check
# metrics` with no output and its families (names, types, help) equal the golden list;
# /status is the documented JSON; the bearer token guards /metrics and /status but not the
# probes /livez and /readyz; a bad listen address or an empty token file is rejected; systemd
# gets READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 (NOTIFY_SOCKET served by a small listener).
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
GOLDEN="$XDCR_SOURCE_DIR/tests/integration/golden/consumer_metrics.txt"

command -v promtool >/dev/null || h_fail "promtool is needed (apt-get install prometheus)"

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text);
             CREATE PUBLICATION xdcr_east FOR TABLE t" >/dev/null
h_psql west "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null

PORT=$(h__free_port)
FEED_PORT=$(h__free_port)
URL="http://127.0.0.1:$PORT"
TOKEN="s3cret-$RANDOM$RANDOM"
printf '%s\n' "$TOKEN" >"$H_DIR/token"
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
batch.max_delay = 20ms
http.listen = 127.0.0.1:$PORT
http.token_file = $H_DIR/token
status.push_url = http://127.0.0.1:$FEED_PORT/feed
status.push_interval = 1s
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
CONF

: >"$H_DIR/empty"
h_check_fails "an empty token file is rejected" \
    "$CONS" --config "$H_DIR/consumer.conf" --http.token_file="$H_DIR/empty"
h_assert_contains "$H_OUT" "http.token_file" "the error names the option"
h_check_fails "a listen address without a port is rejected" \
    "$CONS" --config "$H_DIR/consumer.conf" --check-config --http.listen=127.0.0.1
h_assert_contains "$H_OUT" "listen address" "the error names the listen address"

# a stand-in for systemd's notification socket: one line per datagram
cat >"$H_DIR/notify.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
h_daemon_start notify python3 "$H_DIR/notify.py" "$H_DIR/notify.sock" "$H_DIR/notify.log"
h_wait_for 10 "the notify socket" test -S "$H_DIR/notify.sock"

# the status feed receiver: one JSON body per line
cat >"$H_DIR/feed.py" <<'PY2'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with open(sys.argv[2], "a") as out:
            out.write(body.replace("\n", " ") + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY2
h_daemon_start feed python3 "$H_DIR/feed.py" "$FEED_PORT" "$H_DIR/feed.log"
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer env NOTIFY_SOCKET="$H_DIR/notify.sock" WATCHDOG_USEC=2000000 \
    "$CONS" --config "$H_DIR/consumer.conf"

get() { # get PATH [curl args]: prints the HTTP status code, body in $H_DIR/body
    local path=$1
    shift
    curl -s -m 5 -o "$H_DIR/body" -w '%{http_code}' "$@" "$URL$path" || true
}
auth=(-H "Authorization: Bearer $TOKEN")
ready() { [[ "$(get /readyz)" == 200 ]]; }
h_wait_for 40 "the consumer to be ready" ready
fwd_wait_streaming east xdcr_east # a write before the slot exists is not captured
h_psql east "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g" >/dev/null
applied() { [[ "$(h_psql west "SELECT count(*) FROM t")" == 20 ]]; }
h_wait_for 30 "the rows to arrive" applied

# ---- the token ------------------------------------------------------------------------------
h_assert_eq 401 "$(get /metrics)" "/metrics without the token: 401"
h_assert_eq 401 "$(get /status)" "/status without the token: 401"
h_assert_eq 401 "$(get /metrics -H 'Authorization: Bearer wrong')" "/metrics with a wrong token: 401"
h_assert_eq 200 "$(get /livez)" "/livez is open"
h_assert_eq "ok" "$(cat "$H_DIR/body")" "/livez says ok"
h_assert_eq 200 "$(get /readyz)" "/readyz is open"
h_assert_eq 404 "$(get /nothing "${auth[@]}")" "unknown path: 404"

# ---- /metrics ---------------------------------------------------------------------------------
h_assert_eq 200 "$(get /metrics "${auth[@]}")" "/metrics with the token: 200"
cp "$H_DIR/body" "$H_DIR/metrics.txt"
ctype=$(curl -s -m 5 -o /dev/null -w '%{content_type}' "${auth[@]}" "$URL/metrics")
h_assert_contains "$ctype" "text/plain; version=0.0.4" "Prometheus text format 0.0.4"
out=$(promtool check metrics <"$H_DIR/metrics.txt" 2>&1) || h_fail "promtool check metrics failed: $out"
h_assert_eq "" "$out" "promtool check metrics has no complaints"
# the golden list: HELP and TYPE lines in order, then every series shape name{label,...}
{
    # xdcr_status_pushes_total exists only with status.push_url: not part of the golden list
    grep '^# ' "$H_DIR/metrics.txt" | grep -v 'xdcr_status_pushes_total'
    grep -v '^#' "$H_DIR/metrics.txt" | grep -v '^xdcr_status_pushes_total' | awk '{print $1}' |
        sed -E 's/="([^"\\]|\\.)*"//g' | sort -u
} >"$H_DIR/families.txt"
if ! diff -u "$GOLDEN" "$H_DIR/families.txt" >"$H_DIR/families.diff"; then
    h_fail "metric families differ from $GOLDEN (update it when the change is intended): $(cat "$H_DIR/families.diff")"
fi
h_pass "metric names, types, help and label names equal the golden list"
for m in xdcr_consumer_lag_seconds xdcr_consumer_lag_bytes xdcr_consumer_lag_messages \
    xdcr_consumer_last_source_time_seconds 'xdcr_consumer_apply_delay_seconds_count'; do
    grep -q "^$m{origin=\"east\"} " "$H_DIR/metrics.txt" || h_fail "no sample of $m{origin=\"east\"}"
done
h_pass "the lag gauges and the apply delay have samples for origin east"
count=$(awk '/^xdcr_consumer_apply_delay_seconds_count\{origin="east"\}/ {print $2}' "$H_DIR/metrics.txt")
((count >= 1)) || h_fail "apply delay histogram has no observation ($count)"
h_pass "apply delay observed per transaction"
# the stages (capture, transport, apply) split the same delay: as many observations, and their
# sums add up to the apply delay's (up to the Kafka timestamp's millisecond resolution)
stage_check=$(awk -v n="$count" '
    /^xdcr_consumer_apply_delay_seconds_sum\{origin="east"\}/ { total = $2 }
    /^xdcr_consumer_stage_delay_seconds_count\{origin="east",stage="(capture|transport|apply)"\}/ {
        stages++; if ($2 != n) bad = bad " count " $0 }
    /^xdcr_consumer_stage_delay_seconds_sum\{origin="east",stage="(capture|transport|apply)"\}/ {
        sum += $2 }
    END {
        d = sum - total; if (d < 0) d = -d
        if (stages != 3) bad = bad " stages " stages
        if (d > n * 0.002 + 0.001) bad = bad " sums " sum " vs " total
        print bad == "" ? "ok" : bad }' "$H_DIR/metrics.txt")
h_assert_eq "ok" "$stage_check" "the stage delays split the apply delay of every transaction"
# every label value is quoted and escaped: the whole exposition parses as name{k="v",...} value
bad=$(grep -v '^#' "$H_DIR/metrics.txt" |
    grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\["\\n])*",?)*\})? [-+0-9.eEINFaninf]+$' || true)
h_assert_eq "" "$bad" "every sample line is well formed with escaped label values"

# ---- /status ----------------------------------------------------------------------------------
h_assert_eq 200 "$(get /status "${auth[@]}")" "/status with the token: 200"
cp "$H_DIR/body" "$H_DIR/status.json"
h_assert_eq "1 consumer west true running" \
    "$(jq -r '"\(.version) \(.service) \(.origin) \(.ready) \(.state)"' "$H_DIR/status.json")" \
    "/status: version, service, own origin, ready, state"
h_assert_eq "east xdcr.east.changes 0 applying null" \
    "$(jq -r '.origins[0] | "\(.origin) \(.topic) \(.partition) \(.state) \(.halt)"' "$H_DIR/status.json")" \
    "/status: the origin's topic, partition, state, no halt"
seq=$(h_psql west "SELECT seq FROM xdcr.positions WHERE origin = 'east'")
h_assert_eq "$seq" "$(jq -r '.origins[0].applied_seq' "$H_DIR/status.json")" \
    "/status: applied_seq is the stored position"
h_assert_eq "true" "$(jq -r '.origins[0] | (.applied_seq | type == "string")
    and (.lag_seconds | type == "number") and (.lag_bytes | type == "number")
    and (.lag_messages | type == "number") and (.kafka_offset | type == "number")
    and (.high_watermark | type == "number") and (.commit_time | type == "string")
    and (.mark_time | type == "string") and (.source_wal_lsn | type == "string")
    and (.lag_seconds < 5) and (.lag_bytes >= 0)' "$H_DIR/status.json")" \
    "/status: every lag and position field is present with its type"
h_assert_eq "true" "$(jq -r 'has("service_version") and has("time") and has("last_error")' "$H_DIR/status.json")" \
    "/status: service_version, time, last_error"

# ---- status feed ------------------------------------------------------------------------------
fed() { [[ -s "$H_DIR/feed.log" ]] && tail -n 1 "$H_DIR/feed.log" | jq -e '.service == "consumer" and .origins[0].origin == "east"' >/dev/null; }
h_wait_for 15 "the status feed to deliver the consumer's /status JSON" fed
h_pass "status feed: the consumer POSTs its /status JSON (status.push_url)"

# ---- systemd notifications -------------------------------------------------------------------
grep -q '^READY=1 STATUS=running' "$H_DIR/notify.log" || h_fail "no READY=1: $(cat "$H_DIR/notify.log")"
h_pass "sd_notify: READY=1 with a STATUS once the target schema is installed"
grep -q '^STATUS=running' "$H_DIR/notify.log" || h_fail "no STATUS=running: $(cat "$H_DIR/notify.log")"
h_pass "sd_notify: STATUS= when the state changes"
n=$(grep -c '^WATCHDOG=1$' "$H_DIR/notify.log" || true)
((n >= 3)) || h_fail "only $n WATCHDOG=1 with WatchdogSec=2s"
h_pass "sd_notify: WATCHDOG=1 from the loop ($n so far)"

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the consumer stops cleanly"
grep -q '^STOPPING=1' "$H_DIR/notify.log" || h_fail "no STOPPING=1: $(tail -n 3 "$H_DIR/notify.log")"
h_pass "sd_notify: STOPPING=1 on SIGTERM"
h_daemon_stop forwarder >/dev/null
h_daemon_stop notify >/dev/null
h_daemon_stop feed >/dev/null
h_finish
