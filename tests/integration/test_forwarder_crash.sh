#!/usr/bin/env bash
#
# test_forwarder_crash.sh - SIGKILL of the forwarder at random moments, _exit() at its named
# crash points (after a produce before its delivery report; after Kafka acknowledged, before the
# slot is confirmed), its walsender terminated, and the source stopped with -m immediate, under a
# mixed write load (pgbench: upserts, range updates, deletes and
# 200-row transactions split into parts, each transaction logging its xid in txlog). Afterwards:
# every committed source transaction is in Kafka, duplicates carry the same seq and changes,
# nothing uncommitted is there, first occurrences keep commit order, the consumer's chaining rule
# applies every transaction exactly once, and replaying what it applies gives the source's rows.
# XDCR_TEST_SEED reproduces a run's kill timings.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

SEED=${XDCR_TEST_SEED:-$$}
RANDOM=$SEED
KILLS=12

h_init
T0=$(h__now_ms)
h__note "seed $SEED (XDCR_TEST_SEED)"
h_pg_start east >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1
h_psql east "
CREATE TABLE txlog (xid bigint PRIMARY KEY);
CREATE TABLE kv (id integer PRIMARY KEY, v text, n integer);
" >/dev/null
fwd_conf "$H_DIR/east.conf" east east "message.max_bytes = 4096" "heartbeat.interval = 100ms" \
    "status.interval = 100ms"

cat >"$H_DIR/load.sql" <<'EOF'
\set id random(1, 500)
\set op random(1, 20)
BEGIN;
INSERT INTO txlog (xid) VALUES (pg_current_xact_id()::text::bigint);
\if :op <= 9
INSERT INTO kv VALUES (:id, md5(random()::text), 1)
    ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = kv.n + 1;
\elif :op <= 16
UPDATE kv SET n = n + 1, v = left(v, 40) || 'u' WHERE id BETWEEN :id AND :id + 3;
\elif :op <= 19
DELETE FROM kv WHERE id = :id;
\else
INSERT INTO kv SELECT g, repeat('b', 40), 0 FROM generate_series(1000 + :id, 1200 + :id) g
    ON CONFLICT (id) DO UPDATE SET n = kv.n + 1;
\endif
COMMIT;
EOF
chmod 644 "$H_DIR/load.sql"

fwd_start fwd "$H_DIR/east.conf"
fwd_wait_streaming east xdcr_east
# The load runs until stopped; pgbench retries deadlocks between its clients.
start_load() {
    h_daemon_start load "$H_PG_BIN/pgbench" -n -c 2 -j 2 -T 600 -R 150 --max-tries=50 \
        -f "$H_DIR/load.sql" -h 127.0.0.1 -p "$(h_pg_port east)" -U postgres postgres
}
start_load
# shellcheck disable=SC2317 # called through h_wait_for
load_running() { (($(h_psql east "SELECT count(*) FROM txlog") > 20)); }
h_wait_for 30 "the load to commit transactions" load_running

# ---- SIGKILL at random moments ----------------------------------------------------------------
for ((i = 1; i <= KILLS; i++)); do
    if ! h_daemon_alive fwd; then
        fwd_start fwd "$H_DIR/east.conf"
    fi
    # 0.05 .. 2.5 s: during startup, standby wait, catch-up and steady streaming
    ms=$((50 + RANDOM % 2450))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    h_daemon_alive fwd || h_fail "the forwarder died by itself before kill $i: $(tail -n 5 "$(h_daemon_log fwd)")"
    h_daemon_kill fwd >/dev/null
done
h_pass "$KILLS SIGKILLs of the forwarder under load"

# ---- named crash points: the process _exit()s there (status 99) -------------------------------
for cp in "after_produce:$((1 + RANDOM % 40))" "before_confirm:$((1 + RANDOM % 5))" \
    "after_produce:$((40 + RANDOM % 200))" "before_confirm:$((5 + RANDOM % 20))"; do
    h_daemon_start fwd env "XDCR_CRASH_POINT=$cp" "$FWD" --config "$H_DIR/east.conf"
    h_daemon_wait fwd 60 >/dev/null
    h_assert_eq 99 "$H_LAST_EXIT" "crash point $cp reached"
done

# ---- the source side: walsender terminated, PostgreSQL stopped with -m immediate ----------------
fwd_start fwd "$H_DIR/east.conf"
for ((i = 1; i <= 3; i++)); do
    fwd_wait_streaming east xdcr_east
    sleep "0.$((RANDOM % 9 + 1))"
    h_assert_eq t "$(h_psql east "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
        WHERE slot_name = 'xdcr_east'")" "walsender terminated under load ($i)"
done
fwd_wait_streaming east xdcr_east
h_pg_restart east immediate
h_daemon_stop load >/dev/null # lost its connections
start_load
fwd_wait_streaming east xdcr_east
sleep 1
h_check "the forwarder reconnected by itself (same process)" h_daemon_alive fwd

# ---- recovery: the load stops; everything gets confirmed -------------------------------------------
h_daemon_stop load >/dev/null
fwd_wait_confirmed 60 east xdcr_east "after the crashes"
h_daemon_stop fwd >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the last forwarder drains and exits 0"
h__note "committed source transactions: $(h_psql east "SELECT count(*) FROM txlog")"

fwd_tail xdcr.east.changes "$H_DIR/east.jsonl"
fwd_check_stream "every committed transaction in Kafka, duplicates identical, commit order, chaining rule applies each once" \
    "$H_DIR/east.jsonl" --pg "$(h_pg_conninfo east)" --expect-sql "SELECT xid FROM txlog" \
    --log-table public.txlog
h_assert_eq "$(h_psql east "SELECT count(*) FROM txlog")" "$(fwd_summary rule_applied)" \
    "the chaining rule applies exactly the committed transactions"
if (($(fwd_summary max_parts) < 2)); then
    h_fail "no transaction was split into parts: the load does not exercise split transactions"
fi
fwd_check_state "replaying what the chaining rule applies gives the source's rows" \
    "$H_DIR/east.jsonl" east --table public.kv --table public.txlog
h__note "duplicates $(fwd_summary duplicates), stream starts $(fwd_summary stream_starts), abandoned parts $(fwd_summary abandoned_parts), rule gaps $(fwd_summary rule_gaps)"
if (($(fwd_summary stream_starts) < KILLS / 2)); then
    h_fail "only $(fwd_summary stream_starts) stream starts: most killed forwarders never streamed"
fi

h__note "test_forwarder_crash took $((($(h__now_ms) - T0) / 1000))s"
h_finish
