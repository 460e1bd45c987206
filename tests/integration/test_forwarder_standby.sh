#!/usr/bin/env bash
#
# test_forwarder_standby.sh - several forwarders on one slot (one sidecar per application pod):
# the first streams, the second waits as a standby (the slot's walsender belongs to the first);
# SIGKILL of the active one under load: the standby takes over within a few seconds; the killed
# one comes back as a standby; a clean stop (SIGTERM) of the active one hands over again. Then
# every committed transaction is in Kafka and the chaining rule applies each exactly once.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

TAKEOVER_MAX_MS=5000

h_init
T0=$(h__now_ms)
h_pg_start east >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1
h_psql east "
CREATE TABLE txlog (xid bigint PRIMARY KEY);
CREATE TABLE kv (id integer PRIMARY KEY, v text, n integer);
" >/dev/null
# retry.backoff_initial is the default (250ms): standbys retry every second
fwd_conf "$H_DIR/east.conf" east east "retry.backoff_initial = 250ms"
cat >"$H_DIR/load.sql" <<'EOF'
\set id random(1, 300)
BEGIN;
INSERT INTO txlog (xid) VALUES (pg_current_xact_id()::text::bigint);
INSERT INTO kv VALUES (:id, md5(random()::text), 1)
    ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = kv.n + 1;
COMMIT;
EOF
chmod 644 "$H_DIR/load.sql"

# start_fwd NAME : a forwarder whose PostgreSQL sessions are named NAME (application_name)
start_fwd() {
    fwd_start "$1" "$H_DIR/east.conf" "--pg.conninfo=$(h_pg_conninfo east) application_name=$1"
}

# The application_name of the walsender holding the slot ("" when none does).
slot_holder() {
    h_psql east "SELECT coalesce((SELECT a.application_name FROM pg_replication_slots s
        JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = 'xdcr_east'), '')"
}

# shellcheck disable=SC2317 # called through h_wait_for
holder_is() {
    [[ "$(slot_holder)" == "$1" ]]
}

start_fwd fwd_a
h_wait_for 30 "fwd_a to stream" holder_is fwd_a
start_fwd fwd_b
h_daemon_start load "$H_PG_BIN/pgbench" -n -c 1 -T 600 -R 100 -f "$H_DIR/load.sql" \
    -h 127.0.0.1 -p "$(h_pg_port east)" -U postgres postgres
sleep 3
h_assert_eq fwd_a "$(slot_holder)" "two forwarders on one slot: the first one's walsender holds it"
h_check "the second one waits as a standby (still running)" h_daemon_alive fwd_b

# ---- SIGKILL of the active forwarder ------------------------------------------------------------
h_daemon_kill fwd_a >/dev/null
t_kill=$(h__now_ms)
h_wait_for 30 "fwd_b to take over" holder_is fwd_b
took=$(($(h__now_ms) - t_kill))
if ((took > TAKEOVER_MAX_MS)); then
    h_fail "the standby took over after ${took} ms (limit $TAKEOVER_MAX_MS ms)"
fi
h_pass "the standby took over ${took} ms after SIGKILL of the active forwarder"

start_fwd fwd_a
sleep 3
h_assert_eq fwd_b "$(slot_holder)" "the restarted forwarder waits as a standby"

# ---- clean stop of the active forwarder ---------------------------------------------------------
# Everything so far (the re-stream after the SIGKILL included) is in Kafka once the slot confirms.
fwd_wait_confirmed 30 east xdcr_east "before the clean stop"
fwd_tail xdcr.east.changes "$H_DIR/before.jsonl"
fwd_check_stream "after the SIGKILL hand-over" "$H_DIR/before.jsonl"
dups=$(fwd_summary duplicates)
h_daemon_stop fwd_b >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "SIGTERM: the active forwarder drains and exits 0"
t_kill=$(h__now_ms)
h_wait_for 30 "fwd_a to take over" holder_is fwd_a
took=$(($(h__now_ms) - t_kill))
if ((took > TAKEOVER_MAX_MS)); then
    h_fail "the standby took over after ${took} ms (limit $TAKEOVER_MAX_MS ms)"
fi
h_pass "the standby took over ${took} ms after the clean stop of the active forwarder"
sleep 1

h_daemon_stop load >/dev/null
fwd_wait_confirmed 60 east xdcr_east "after the hand-overs"
h_daemon_stop fwd_a >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the last forwarder drains and exits 0"
fwd_tail xdcr.east.changes "$H_DIR/east.jsonl"
fwd_check_stream "no gap across the hand-overs: every committed transaction in Kafka, chaining rule applies each once" \
    "$H_DIR/east.jsonl" --pg "$(h_pg_conninfo east)" --expect-sql "SELECT xid FROM txlog" \
    --log-table public.txlog
h_assert_eq "$(h_psql east "SELECT count(*) FROM txlog")" "$(fwd_summary rule_applied)" \
    "the chaining rule applies exactly the committed transactions"
h_assert_eq "$dups" "$(fwd_summary duplicates)" \
    "the clean hand-over (SIGTERM) published no duplicate"
fwd_check_state "replaying the stream gives the source's rows" "$H_DIR/east.jsonl" east \
    --table public.kv --table public.txlog

h__note "test_forwarder_standby took $((($(h__now_ms) - T0) / 1000))s"
h_finish
