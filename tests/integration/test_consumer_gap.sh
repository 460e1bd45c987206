#!/usr/bin/env bash
#
# test_consumer_gap.sh - a retention gap: while the consumer is down, the dev broker (about
# 5 MiB per partition) drops messages the consumer never applied. The consumer must stop with
# exit status 4, one error line and a row in xdcr.halts, apply nothing past the gap and never
# reset its position by itself. After the operator accepts the gap (xdcr.accept_gap, audited)
# it goes on from the new offset.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
KAFKA="$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka"

applied_up_to() {
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$1'")" == 1 ]]
}

watermarks() {
    timeout -k 5 30 "$KAFKA" watermarks --bootstrap "$H_BROKER_BOOTSTRAP" \
        --topic xdcr.east.changes --partition 0
}

low_above() { # low_above OFFSET: the partition's low watermark is above OFFSET
    local low high
    read -r low high < <(watermarks)
    ((low > $1))
}

west_has() {
    [[ "$(h_psql west "SELECT count(*) FROM blobs WHERE id = $1")" == 1 ]]
}

start_consumer() {
    h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf" "$@"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

h_psql east "CREATE TABLE blobs (id integer PRIMARY KEY, payload text);
             CREATE PUBLICATION xdcr_east FOR TABLE blobs" >/dev/null
h_psql west "CREATE TABLE blobs (id integer PRIMARY KEY, payload text)" >/dev/null

cat >"$H_DIR/forwarder.conf" <<EOF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
heartbeat.interval = 200ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
cat >"$H_DIR/consumer.conf" <<EOF
origin = west
origins = east
pg.conninfo = $(h_pg_conninfo west)
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}
h_wait_for 30 "the forwarder's slot" slot_exists

start_consumer
h_psql east "INSERT INTO blobs SELECT g, 'small' FROM generate_series(1, 100) g" >/dev/null
token=$(h_psql east "SELECT pg_current_wal_lsn()")
h_wait_for 30 "the first rows to apply" applied_up_to "$token"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
stored=$(h_psql west "SELECT kafka_offset FROM xdcr.positions WHERE origin = 'east'")
seq_before=$(h_psql west "SELECT seq FROM xdcr.positions WHERE origin = 'east'")

# ~10 MB of changes while the consumer is down: the broker keeps only ~5 MiB
for b in $(seq 0 9); do
    h_psql east "INSERT INTO blobs SELECT g, (SELECT string_agg(md5(random()::text || g || i), '')
                 FROM generate_series(1, 32) i) FROM generate_series(1000 + $b * 1000, 1999 + $b * 1000) g" >/dev/null
done
h_wait_for 40 "the broker to drop offset $stored" low_above "$stored"
read -r low high < <(watermarks)
h__note "watermarks after the flood: low $low high $high (stored $stored)"

start_consumer
h_daemon_wait consumer 40 >/dev/null
h_assert_eq 4 "$H_LAST_EXIT" "a retention gap stops the consumer with exit status 4"
h_assert_eq 100 "$(h_psql west "SELECT count(*) FROM blobs")" "nothing past the gap was applied"
h_assert_eq "$stored|$seq_before" "$(h_psql west "SELECT kafka_offset, seq FROM xdcr.positions WHERE origin = 'east'")" \
    "the stored position did not move"
h_assert_eq "gap|$stored" "$(h_psql west "SELECT kind, kafka_offset FROM xdcr.halts WHERE origin = 'east'")" \
    "xdcr.halts records the gap at the stored offset"
log=$(grep 'level=error.*msg="origin halted"' "$(h_daemon_log consumer)" || true)
h_assert_contains "$log" "retention gap" "one error line names the gap"
h_assert_contains "$log" "offset=$stored" "and the offset"

# the operator accepts the gap (after resynchronising the data by other means)
h_psql west "SELECT xdcr.accept_gap('east', 'xdcr.east.changes', 0, $low, 'test: accepted')" >/dev/null
h_assert_eq 1 "$(h_psql west "SELECT count(*) FROM xdcr.audit WHERE action = 'accept_gap' AND detail->>'new_offset' = '$low'")" \
    "accepting the gap is audited"
start_consumer
h_psql east "INSERT INTO blobs VALUES (999999, 'after the gap')" >/dev/null
h_wait_for 40 "a change after the accepted gap" west_has 999999
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "no halt any more"
h_assert_eq "t" "$(h_psql west "SELECT kafka_offset > $low AND NOT resync FROM xdcr.positions WHERE origin = 'east'")" \
    "the position moved on from the accepted offset"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
h_daemon_stop forwarder >/dev/null
h_finish
