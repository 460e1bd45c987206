#!/usr/bin/env bash
#
# test_consumer_faults.sh - target-side faults under load: the target PostgreSQL restarted in
# immediate mode mid-apply, the apply session terminated, and a deadlock in which PostgreSQL
# picks the consumer's transaction as the victim. Each time the consumer rolls back, backs off
# and applies the same batch again: the target ends equal to the source, nothing halts.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

SCHEMA_SQL="
CREATE TABLE accounts (id integer PRIMARY KEY, grp integer NOT NULL, balance bigint NOT NULL,
                       n integer NOT NULL DEFAULT 0, pad text);
CREATE TABLE history (id bigserial PRIMARY KEY, grp integer, delta integer);
"

assert_same() { # assert_same TABLE
    local a b q="SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY id)), 'empty') FROM $1 t"
    a=$(h_psql east "$q")
    b=$(h_psql west "$q")
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

wait_for_token() {
    local token
    token=$(h_psql east "SELECT pg_current_wal_lsn()")
    h_wait_for 40 "west to apply up to $token ($1)" applied_up_to "$token"
}

h_init
h_pg_start east >/dev/null
h_pg_start west --set deadlock_timeout=1s >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

h_psql east "$SCHEMA_SQL" >/dev/null
h_psql west "$SCHEMA_SQL" >/dev/null
h_psql east "CREATE PUBLICATION xdcr_east FOR TABLE accounts, history;
             INSERT INTO accounts (id, grp, balance) SELECT g, (g - 1) / 10, 100 FROM generate_series(1, 500) g" >/dev/null

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
# a read-only copy: the local session below only provokes a deadlock, its write must not win
mode = one-way
retry.backoff_initial = 100ms
retry.backoff_max = 1s
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF
cat >"$H_DIR/transfer.sql" <<EOF
\\set g random(0, 49)
\\set x random(1, 10)
\\set y random(1, 10)
\\set d random(1, 50)
BEGIN;
UPDATE accounts SET balance = balance - :d, n = n + 1 WHERE id = :g * 10 + :x;
UPDATE accounts SET balance = balance + :d, n = n + 1 WHERE id = :g * 10 + :y;
INSERT INTO history (grp, delta) VALUES (:g, :d);
END;
EOF

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}
h_wait_for 30 "the forwarder's slot" slot_exists
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"
h_daemon_start load "$H_PG_BIN/pgbench" -n -T 12 -R 300 -c 2 -j 2 -f "$H_DIR/transfer.sql" \
    "$(h_pg_conninfo east)"

# ---- the target restarts in immediate mode while the consumer applies -----------------------
sleep 3
h_pg_restart west immediate
h_pass "target restarted (immediate) under load"

# ---- the apply session is terminated -----------------------------------------------------------
apply_session() {
    [[ "$(h_psql west "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'xdcr-consumer'")" -ge 1 ]]
}
h_wait_for 30 "the consumer to reconnect" apply_session
sleep 2
h_assert_eq t "$(h_psql west "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'xdcr-consumer'")" \
    "apply session terminated"
h_daemon_wait load 40 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the load ran"
wait_for_token "after the restart and the terminated session"
assert_same accounts
assert_same history

# ---- a deadlock: the consumer's transaction is the victim --------------------------------------
deadlocks_before=$(h_psql west "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
# a local session locks row 1, waits until the consumer waits for it, then asks for row 2
h_daemon_start locker psql -XAtq -v ON_ERROR_STOP=1 -d "$(h_pg_conninfo west)" -c "
BEGIN;
UPDATE accounts SET pad = 'local 1' WHERE id = 1;
DO \$\$ BEGIN
    FOR i IN 1..300 LOOP
        PERFORM pg_stat_clear_snapshot();
        PERFORM 1 FROM pg_stat_activity
            WHERE application_name = 'xdcr-consumer' AND wait_event_type = 'Lock';
        EXIT WHEN FOUND;
        PERFORM pg_sleep(0.05);
    END LOOP;
END \$\$;
UPDATE accounts SET pad = 'local 2' WHERE id = 2;
COMMIT;"
sleep 0.5
# the consumer applies: row 2 first, then row 1 (held by the locker); the history row between
# them keeps the two updates in two statements, in this order (consecutive rows of one table
# would share one multi-row statement, whose locking order is the plan's)
h_psql east "BEGIN; UPDATE accounts SET n = n + 100 WHERE id = 2;
             INSERT INTO history (grp, delta) VALUES (0, 0);
             UPDATE accounts SET n = n + 100 WHERE id = 1; COMMIT" >/dev/null
h_daemon_wait locker 30 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the local session committed: the consumer's transaction was the victim"
wait_for_token "after the deadlock"
deadlocks_after=$(h_psql west "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
h_assert_eq t "$([[ $deadlocks_after -gt $deadlocks_before ]] && echo t || echo f)" "a deadlock happened at the target"
assert_same accounts
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "nothing halted"
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.dead_letters")" "nothing dead-lettered"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
h_daemon_stop forwarder >/dev/null
h_finish
