#!/usr/bin/env bash
#
# test_consumer_errors.sh - what cannot be applied is never skipped silently:
#  1. a poison transaction (constraint violation at the target) halts its origin by default,
#     with the position in xdcr.halts and exit status 6; nothing after it is applied;
#  2. xdcr.skip_transaction() lets an operator skip it (audited) and later transactions apply;
#  3. with on_error = dead_letter a poison transaction and an undecodable message (bad CRC) land
#     in xdcr.dead_letters and later transactions apply;
#  4. the preflight (option tables) and the first use of a table report every mismatch at once.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
KAFKA="$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka"

west_has() { # west_has ID
    [[ "$(h_psql west "SELECT count(*) FROM items WHERE id = $1")" == 1 ]]
}

applied_up_to() {
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$1'")" == 1 ]]
}

start_consumer() {
    h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf" "$@"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

h_psql east "CREATE TABLE items (id integer PRIMARY KEY, qty integer, note text);
             CREATE TABLE mismatch (id integer PRIMARY KEY, a text, b integer, c date);
             CREATE PUBLICATION xdcr_east FOR TABLE items, mismatch" >/dev/null
h_psql west "CREATE TABLE items (id integer PRIMARY KEY, qty integer CHECK (qty < 1000), note text);
             CREATE TABLE mismatch (id integer PRIMARY KEY, b smallint, d integer NOT NULL);
             CREATE TABLE nokey (id integer)" >/dev/null

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
mode = ${XDCR_TEST_CONSUMER_MODE:-active-active}
pg.conninfo = $(h_pg_conninfo west)
tables = public.items
halt.check_interval = 500ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}
h_wait_for 30 "the forwarder's slot" slot_exists

# ---- 1. a poison transaction halts the origin ------------------------------------------------
start_consumer
h_psql east "INSERT INTO items SELECT g, g, 'ok' FROM generate_series(1, 10) g" >/dev/null
before=$(h_psql east "SELECT pg_current_wal_lsn()")
h_psql east "INSERT INTO items VALUES (11, 5000, 'poison')" >/dev/null
poison_seq=$(h_psql east "SELECT pg_current_wal_lsn()")
h_psql east "INSERT INTO items VALUES (12, 1, 'after the poison')" >/dev/null
h_daemon_wait consumer 40 >/dev/null
h_assert_eq 6 "$H_LAST_EXIT" "a poison transaction halts: exit status 6"
h_assert_eq 10 "$(h_psql west "SELECT count(*) FROM items")" "the transactions before it applied"
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM items WHERE id >= 11")" "nothing at or after it applied"
h_assert_eq "t" "$(h_psql west "SELECT seq >= '$before' AND seq < '$poison_seq' FROM xdcr.positions WHERE origin = 'east'")" \
    "the position stays before the poison transaction"
h_assert_eq "apply|public.items|t|t" \
    "$(h_psql west "SELECT kind, table_name, commit_lsn < '$poison_seq', kafka_offset >= 0 FROM xdcr.halts WHERE origin = 'east'")" \
    "xdcr.halts names kind, table, commit_lsn and offset"
errors=$(grep -c 'level=error' "$(h_daemon_log consumer)" || true)
h_assert_eq 1 "$errors" "exactly one error line for the halt"
h_assert_contains "$(grep 'msg="origin halted"' "$(h_daemon_log consumer)")" "table=public.items" \
    "the error line names the table"

# ---- 2. the operator skips it ----------------------------------------------------------------
h_psql west "SELECT xdcr.skip_transaction('east', (SELECT commit_lsn FROM xdcr.halts WHERE origin = 'east'), 'test: poison')" >/dev/null
start_consumer
h_wait_for 30 "the transaction after the skipped one" west_has 12
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM items WHERE id = 11")" "the skipped transaction is not applied"
h_assert_eq 1 "$(h_psql west "SELECT count(*) FROM xdcr.skip_requests WHERE done_at IS NOT NULL AND done_seq = '$poison_seq'")" \
    "the skip request is marked done with the transaction's seq"
h_assert_eq "skip_requested,transaction_skipped" \
    "$(h_psql west "SELECT string_agg(action, ',' ORDER BY id) FROM xdcr.audit")" "the skip is audited"
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "no halt recorded any more"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"

# ---- 3. dead letters ---------------------------------------------------------------------------
start_consumer --on_error=dead_letter
h_psql east "BEGIN; INSERT INTO items VALUES (13, 1, 'same txn as the poison');
             INSERT INTO items VALUES (14, 7000, 'poison 2'); COMMIT" >/dev/null
h_psql east "INSERT INTO items VALUES (15, 2, 'after poison 2')" >/dev/null
h_wait_for 30 "the transaction after the dead-lettered one" west_has 15
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM items WHERE id IN (13, 14)")" \
    "the dead-lettered transaction is not applied, not even in part"
h_assert_eq "1|public.items|t|t" \
    "$(h_psql west "SELECT count(*), min(table_name), bool_and(payload LIKE '%7000%'), bool_and(error LIKE '%check constraint%') FROM xdcr.dead_letters")" \
    "xdcr.dead_letters holds the transaction with its error and payload"
# an undecodable message in the middle of the stream
timeout -k 5 60 "$KAFKA" produce --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.east.changes \
    --key east --header xdcr-origin=east --header xdcr-seq=0/1 --header xdcr-format=1 \
    --header xdcr-crc32c=deadbeef --header xdcr-type=txn --value '{"v":1,"garbage":true}' \
    --quiet >/dev/null
h_psql east "INSERT INTO items VALUES (16, 3, 'after the garbage')" >/dev/null
h_wait_for 30 "the transaction after the bad message" west_has 16
h_assert_eq "2|t" "$(h_psql west "SELECT count(*), bool_or(error LIKE '%CRC%' OR error LIKE '%crc%') FROM xdcr.dead_letters")" \
    "the bad message is in the dead letters"
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "dead letters do not halt"
# a big poison transaction: in one-way mode its 600 inserts go by COPY, which fails the same way
h_psql east "INSERT INTO items SELECT g, CASE WHEN g = 1300 THEN 9000 ELSE 1 END, 'big poison'
             FROM generate_series(1001, 1600) g" >/dev/null
h_psql east "INSERT INTO items VALUES (17, 4, 'after the big poison')" >/dev/null
h_wait_for 30 "the transaction after the big poison" west_has 17
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM items WHERE id BETWEEN 1001 AND 1600")" \
    "the big poison transaction is not applied, not even in part"
h_assert_eq "t" "$(h_psql west "SELECT error LIKE '%check constraint%' FROM xdcr.dead_letters ORDER BY id DESC LIMIT 1")" \
    "it is a dead letter with the check constraint's error"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"

# ---- 4. preflight and first use report every mismatch ---------------------------------------
h_check_fails "preflight fails" "$CONS" --config "$H_DIR/consumer.conf" \
    --tables=public.items,public.missing_table,public.nokey
h_assert_contains "$H_OUT" "table public.missing_table does not exist at the target" "missing table reported"
h_assert_contains "$H_OUT" "table public.nokey has no primary key at the target" "missing key reported too"
start_consumer
h_psql east "INSERT INTO mismatch VALUES (1, 'a', 2, '2024-01-01')" >/dev/null
h_daemon_wait consumer 40 >/dev/null
h_assert_eq 6 "$H_LAST_EXIT" "a table that does not fit halts"
err=$(h_psql west "SELECT kind || ': ' || error FROM xdcr.halts WHERE origin = 'east'")
h_assert_contains "$err" "schema: " "kind schema"
h_assert_contains "$err" "column public.mismatch.a (text) is missing at the target" "missing column a"
h_assert_contains "$err" "column public.mismatch.c (date) is missing at the target" "missing column c"
h_assert_contains "$err" "b has type integer at the source but smallint at the target" "narrower type"
h_assert_contains "$err" "d is NOT NULL without a default" "unfillable target column"

h_daemon_stop forwarder >/dev/null
h_finish
