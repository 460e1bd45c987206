#!/usr/bin/env bash
#
# test_forwarder_http.sh - the forwarder's HTTP endpoints and status feed: /metrics passes
# `promtool check metrics` with no output and equals the golden list of families; the bearer
# token guards /metrics and /status but not the probes; /status is the documented JSON;
# /livez stays 200 while PostgreSQL is down and while every broker is down, /readyz turns 503;
# the status feed POSTs the /status JSON with the bearer token and retries a failed push.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
GOLDEN="$XDCR_SOURCE_DIR/tests/integration/golden/forwarder_metrics.txt"
command -v promtool >/dev/null || h_fail "promtool is needed (apt-get install prometheus)"

h_init
h_pg_start east >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null

PORT=$(h__free_port)
FEED_PORT=$(h__free_port)
URL="http://127.0.0.1:$PORT"
TOKEN="tok-$RANDOM$RANDOM"
FEED_TOKEN="feed-$RANDOM$RANDOM"
printf '%s\n' "$TOKEN" >"$H_DIR/token"
printf '%s\n' "$FEED_TOKEN" >"$H_DIR/feed-token"

# the feed receiver: answers 503 to the first request (so the forwarder must retry), then 200;
# writes one line per request: "<status> <authorization header> <body>"
cat >"$H_DIR/feed.py" <<'PY'
import http.server, sys
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global n
        n += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        code = 503 if n == 1 else 200
        with open(sys.argv[2], "a") as out:
            out.write("%d %s %s\n" % (code, self.headers.get("Authorization", "-").replace(" ", "_"), body))
        self.send_response(code)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
h_daemon_start feed python3 "$H_DIR/feed.py" "$FEED_PORT" "$H_DIR/feed.log"

cat >"$H_DIR/forwarder.conf" <<CONF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
publication.create = true
heartbeat.interval = 500ms
retry.backoff_max = 1s
http.listen = 127.0.0.1:$PORT
http.token_file = $H_DIR/token
status.push_url = http://127.0.0.1:$FEED_PORT/xdcr
status.push_interval = 1s
status.push_token_file = $H_DIR/feed-token
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.message.timeout.ms = 3000
CONF
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"

get() { # get PATH [curl args]: prints the HTTP status code, body in $H_DIR/body
    local path=$1
    shift
    curl -s -m 5 -o "$H_DIR/body" -w '%{http_code}' "$@" "$URL$path" || true
}
auth=(-H "Authorization: Bearer $TOKEN")
ready() { [[ "$(get /readyz)" == 200 ]]; }
h_wait_for 30 "the forwarder to stream" ready
h_psql east "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g" >/dev/null

h_assert_eq 401 "$(get /metrics)" "/metrics without the token: 401"
h_assert_eq 401 "$(get /status)" "/status without the token: 401"
h_assert_eq 200 "$(get /livez)" "/livez is open"
h_assert_eq 404 "$(get /nothing "${auth[@]}")" "unknown path: 404"

published() {
    get /metrics "${auth[@]}" >/dev/null
    grep -qE '^xdcr_forwarder_transactions_published_total\{origin="east"\} [1-9]' "$H_DIR/body"
}
h_wait_for 20 "the transaction to be published" published
cp "$H_DIR/body" "$H_DIR/metrics.txt"
out=$(promtool check metrics <"$H_DIR/metrics.txt" 2>&1) || h_fail "promtool check metrics failed: $out"
h_assert_eq "" "$out" "promtool check metrics has no complaints"
{
    grep '^# ' "$H_DIR/metrics.txt" | grep -v 'xdcr_status_pushes_total'
    grep -v '^#' "$H_DIR/metrics.txt" | grep -v '^xdcr_status_pushes_total' | awk '{print $1}' |
        sed -E 's/="([^"\\]|\\.)*"//g' | sort -u
} >"$H_DIR/families.txt"
if ! diff -u "$GOLDEN" "$H_DIR/families.txt" >"$H_DIR/families.diff"; then
    h_fail "metric families differ from $GOLDEN (update it when the change is intended): $(cat "$H_DIR/families.diff")"
fi
h_pass "metric names, types, help and label names equal the golden list"
h_assert_contains "$(cat "$H_DIR/metrics.txt")" 'xdcr_forwarder_role{origin="east",role="active"} 1' \
    "the role metric says active"

h_assert_eq 200 "$(get /status "${auth[@]}")" "/status with the token: 200"
h_assert_eq "1 forwarder east streaming active true xdcr_east xdcr.east.changes" \
    "$(jq -r '"\(.version) \(.service) \(.origin) \(.state) \(.role) \(.ready) \(.slot) \(.topic)"' "$H_DIR/body")" \
    "/status: version, service, origin, state, role, ready, slot, topic"
confirmed=$(jq -r .confirmed_lsn "$H_DIR/body")
h_assert_eq t "$(h_psql east "SELECT confirmed_flush_lsn <= '$confirmed'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" \
    "/status: the slot never holds more than the forwarder's confirmed_lsn"

# ---- status feed ------------------------------------------------------------------------------
fed() { [[ $(grep -c '^200 ' "$H_DIR/feed.log" 2>/dev/null) -ge 2 ]]; }
h_wait_for 20 "two successful status feed pushes" fed
h_assert_eq "503" "$(head -n 1 "$H_DIR/feed.log" | cut -d' ' -f1)" "the first push was refused by the receiver"
h_assert_eq "Bearer_$FEED_TOKEN" "$(sed -n 2p "$H_DIR/feed.log" | cut -d' ' -f2)" \
    "the feed carries the bearer token from status.push_token_file"
h_assert_eq "forwarder east" "$(sed -n 2p "$H_DIR/feed.log" | cut -d' ' -f3- | jq -r '"\(.service) \(.origin)"')" \
    "the feed body is the /status JSON"
get /metrics "${auth[@]}" >/dev/null
grep -qE '^xdcr_status_pushes_total\{result="ok"\} [1-9]' "$H_DIR/body" ||
    h_fail "xdcr_status_pushes_total{result=\"ok\"} not counted"
h_pass "successful pushes are counted (the refused one was retried)"

# ---- probes while dependencies are down -------------------------------------------------------
h_pg_stop east
notready() { [[ "$(get /readyz)" == 503 ]]; }
h_wait_for 20 "/readyz to turn 503 with PostgreSQL down" notready
for i in 1 2 3; do
    h_assert_eq 200 "$(get /livez)" "/livez stays 200 with PostgreSQL down ($i)"
    sleep 1
done
h_broker_ctl broker-down 1 >/dev/null
for i in 1 2 3; do
    h_assert_eq 200 "$(get /livez)" "/livez stays 200 with PostgreSQL and Kafka down ($i)"
    sleep 1
done
h_broker_ctl broker-up 1 >/dev/null
h_pg_restart east
h_wait_for 30 "/readyz back to 200" ready
h_daemon_stop forwarder
h_assert_eq 0 "$H_LAST_EXIT" "SIGTERM: clean exit"
h_finish
