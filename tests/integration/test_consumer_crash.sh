#!/usr/bin/env bash
#
# test_consumer_crash.sh - the consumer killed under load: SIGKILL at random moments (10 times)
# and _exit() at each named crash point (after_rows: statements sent, before COMMIT;
# after_commit: target committed, Kafka offsets not). A checker polls the target all along:
# no snapshot may show part of a source transaction (every group's balance sum stays constant).
# At the end the target equals the source exactly.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
GROUPS_N=50

SCHEMA_SQL="
CREATE TABLE accounts (id integer PRIMARY KEY, grp integer NOT NULL, balance bigint NOT NULL,
                       n integer NOT NULL DEFAULT 0, pad text);
CREATE TABLE history (id bigserial PRIMARY KEY, grp integer, delta integer, at timestamptz DEFAULT now());
"

checksum() { # checksum DB TABLE
    h_psql "$1" "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY id)), 'empty') FROM $2 t"
}

# equal checksums, or fail with the first differing rows
assert_same() { # assert_same TABLE
    local a b
    a=$(checksum east "$1")
    b=$(checksum west "$1")
    if [[ "$a" != "$b" ]]; then
        h_psql east "SELECT t::text FROM $1 t ORDER BY id" >"$H_DIR/east.$1"
        h_psql west "SELECT t::text FROM $1 t ORDER BY id" >"$H_DIR/west.$1"
        h_fail "$1 differs (east < > west): $(diff "$H_DIR/east.$1" "$H_DIR/west.$1" | head -n 20)"
    fi
    h_pass "$1 equal"
}

applied_up_to() {
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$1'")" == 1 ]]
}

# I4: every group's sum is what the source keeps constant (or the group is not there yet)
torn_groups() {
    h_psql west "SELECT count(*) FROM (SELECT grp FROM accounts GROUP BY grp
                 HAVING sum(balance) <> 1000 AND count(*) = 10) x" 2>/dev/null || echo 0
}

TORN=0
check_atomic() {
    local t
    t=$(torn_groups)
    if [[ "$t" =~ ^[0-9]+$ ]] && ((t > 0)); then
        TORN=$((TORN + t))
        h__note "torn snapshot: $t group(s) with a partial transaction"
    fi
}

start_consumer() {
    h_daemon_start consumer "$@" "$CONS" --config "$H_DIR/consumer.conf"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

h_psql east "$SCHEMA_SQL" >/dev/null
h_psql west "$SCHEMA_SQL" >/dev/null
h_psql east "CREATE PUBLICATION xdcr_east FOR TABLE accounts, history" >/dev/null
h_psql east "INSERT INTO accounts (id, grp, balance) SELECT g, (g - 1) / 10, 100 FROM generate_series(1, $((GROUPS_N * 10))) g" >/dev/null

cat >"$H_DIR/forwarder.conf" <<EOF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
message.max_bytes = 8192
heartbeat.interval = 200ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
cat >"$H_DIR/consumer.conf" <<EOF
origin = west
origins = east
mode = ${XDCR_TEST_CONSUMER_MODE:-active-active}
pg.conninfo = $(h_pg_conninfo west)
batch.max_delay = 20ms
batch.max_rows = 200
retry.backoff_initial = 50ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF
cat >"$H_DIR/transfer.sql" <<EOF
\\set g random(0, $((GROUPS_N - 1)))
\\set x random(1, 10)
\\set y random(1, 10)
\\set d random(1, 50)
BEGIN;
UPDATE accounts SET balance = balance - :d, n = n + 1 WHERE id = :g * 10 + :x;
UPDATE accounts SET balance = balance + :d, n = n + 1 WHERE id = :g * 10 + :y;
INSERT INTO history (grp, delta) VALUES (:g, :d);
END;
EOF
cat >"$H_DIR/bulk.sql" <<EOF
\\set g random(0, $((GROUPS_N - 1)))
BEGIN;
UPDATE accounts SET pad = repeat(md5(random()::text), 20), n = n + 1 WHERE grp = :g;
UPDATE accounts SET balance = balance + 7 WHERE id = :g * 10 + 1;
UPDATE accounts SET balance = balance - 7 WHERE id = :g * 10 + 2;
END;
EOF

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}
h_wait_for 30 "the forwarder's slot" slot_exists
# the load: small transfers, and bulk transactions large enough to be split into parts
h_daemon_start load "$H_PG_BIN/pgbench" -n -T 25 -R 300 -c 2 -j 2 \
    -f "$H_DIR/transfer.sql@9" -f "$H_DIR/bulk.sql@1" "$(h_pg_conninfo east)"

# crash points first, then random SIGKILLs
start_consumer env XDCR_CRASH_POINT=after_rows:4
h_daemon_wait consumer 30 >/dev/null
h_assert_eq 99 "$H_LAST_EXIT" "crash point after_rows reached"
check_atomic
start_consumer env XDCR_CRASH_POINT=after_commit:6
h_daemon_wait consumer 30 >/dev/null
h_assert_eq 99 "$H_LAST_EXIT" "crash point after_commit reached"
check_atomic

for i in $(seq 1 10); do
    start_consumer
    end=$(($(h__now_ms) + 300 + RANDOM % 1200))
    while (($(h__now_ms) < end)); do
        check_atomic
        sleep 0.1
    done
    h_daemon_kill consumer >/dev/null
    check_atomic
done
h_pass "10 SIGKILLs under load"

start_consumer
h_daemon_wait load 60 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the load ran"
token=$(h_psql east "SELECT pg_current_wal_lsn()")
while ! applied_up_to "$token"; do
    check_atomic
    sleep 0.2
    h_daemon_alive consumer || h_fail "the consumer died: $(tail -n 5 "$(h_daemon_log consumer)")"
done
check_atomic
h_assert_eq 0 "$TORN" "no target snapshot showed part of a source transaction"
assert_same accounts
assert_same history
h_assert_eq "$(h_psql east "SELECT count(*) FROM history")" "$(h_psql west "SELECT count(*) FROM history")" \
    "every transaction arrived"
h_assert_eq "0" "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "nothing halted"

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
h_daemon_stop forwarder >/dev/null
h_finish
