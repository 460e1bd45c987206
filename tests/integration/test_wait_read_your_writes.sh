#!/usr/bin/env bash
#
# test_wait_read_your_writes.sh - read-your-writes: `xdcr wait` (LISTEN xdcr_applied) and the
# SQL function xdcr.wait_for() (advisory-lock turnstile) are started before the write is
# applied and return within 100 ms of the apply (measured from a target-only column default,
# clock_timestamp() inside the apply transaction: an applied row's commit timestamp is the
# source's, by design). They time out correctly (exit 1 / false, not before the timeout), also
# while the consumer is away; a blocked wait_for() sleeps on a lock, not in a loop; REPEATABLE
# READ is refused.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
XDCR="$XDCR_BUILD_DIR/cli/xdcr"

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text);
             CREATE PUBLICATION xdcr_east FOR TABLE t" >/dev/null
# applied_at: when the consumer's insert ran (inside the apply transaction, before its commit)
h_psql west "CREATE TABLE t (id integer PRIMARY KEY, v text,
             applied_at timestamptz DEFAULT clock_timestamp())" >/dev/null
WEST=$(h_pg_conninfo west)

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
pg.conninfo = $WEST
batch.max_delay = 20ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 10000
CONF
h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

now_s() { echo "$EPOCHREALTIME"; } # no fork: the timing is the point
# seconds between two timestamps (epoch seconds), 3 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
# epoch at which the consumer applied row ID of t (a little before its commit)
commit_epoch() {
    h_psql west "SELECT extract(epoch FROM applied_at) FROM t WHERE id = $1"
}
token_after_insert() { # insert row ID at east, print the read-your-writes token
    h_psql east "INSERT INTO t VALUES ($1, 'x')" "SELECT pg_current_wal_lsn()"
}

fwd_wait_streaming east xdcr_east # a write before the slot exists is not captured
h_psql east "INSERT INTO t VALUES (0, 'warm up')" >/dev/null
h_wait_for 40 "the first row at west" bash -c "[[ \$(psql -XAtq -d '$WEST' -c 'SELECT count(*) FROM t') == 1 ]]"
h_assert_eq "t" "$(h_psql west "SELECT to_regprocedure('xdcr.wait_for(text, pg_lsn, interval)') IS NOT NULL")" \
    "xdcr.wait_for(text, pg_lsn, interval) is installed"

# ---- already applied: both return at once -------------------------------------------------
tok=$(h_psql east "SELECT pg_current_wal_lsn()")
h_wait_for 20 "west to apply $tok" "$XDCR" wait --target "$WEST" --origin east --seq "$tok" --timeout 1s
h_assert_eq "t" "$(h_psql west "SELECT xdcr.wait_for('east', '$tok')")" "wait_for: an applied seq returns true"

# ---- started before the apply: both wake within 100 ms of the commit --------------------------
for round in 1 2 3; do
    id=$((round * 10))
    h_daemon_signal consumer STOP # hold the apply back until both waiters are waiting
    tok=$(token_after_insert "$id")
    # (the leak check at exit of a sanitizer build is not part of what is timed)
    ( ASAN_OPTIONS=detect_leaks=0 "$XDCR" wait --target "$WEST" --origin east --seq "$tok" \
        --timeout 20s; echo "$? $EPOCHREALTIME" >"$H_DIR/cli.$round" ) &
    cli_pid=$!
    ( psql -XAtq -d "$WEST" -c "SELECT xdcr.wait_for('east', '$tok', '20s')" \
        -c "SELECT extract(epoch FROM clock_timestamp())" >"$H_DIR/sql.$round" 2>&1 ) &
    sql_pid=$!
    sleep 1
    h_assert_eq "0" "$(h_psql west "SELECT count(*) FROM t WHERE id = $id")" "round $round: not applied while the consumer is stopped"
    waiting=$(h_psql west "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%wait_for(''east''%'
        AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND pid <> pg_backend_pid()")
    h_assert_eq "1" "$waiting" "round $round: wait_for sleeps on the advisory lock (no polling)"
    [[ ! -e "$H_DIR/cli.$round" ]] || h_fail "round $round: xdcr wait returned before the apply: $(cat "$H_DIR/cli.$round")"
    h_daemon_signal consumer CONT
    wait "$cli_pid" "$sql_pid" || true
    c=$(commit_epoch "$id")
    read -r st t_cli <"$H_DIR/cli.$round"
    h_assert_eq 0 "$st" "round $round: xdcr wait exits 0"
    h_assert_eq "t" "$(sed -n 1p "$H_DIR/sql.$round")" "round $round: wait_for returns true"
    t_sql=$(sed -n 2p "$H_DIR/sql.$round")
    d_cli=$(elapsed "$c" "$t_cli")
    d_sql=$(elapsed "$c" "$t_sql")
    h__note "round $round: xdcr wait returned ${d_cli}s, wait_for ${d_sql}s after the commit"
    lt "$d_cli" 0.1 || h_fail "round $round: xdcr wait returned ${d_cli}s after the apply"
    lt "$d_sql" 0.1 || h_fail "round $round: wait_for returned ${d_sql}s after the apply"
    ge "$d_sql" 0 || h_fail "round $round: wait_for returned before the commit (${d_sql}s)"
    h_pass "round $round: both returned within 100 ms of the apply (${d_cli}s, ${d_sql}s)"
done

# ---- timeouts ---------------------------------------------------------------------------------
far="FFFFFFFF/0"
t0=$(now_s)
st=0
"$XDCR" wait --target "$WEST" --origin east --seq "$far" --timeout 1500ms 2>/dev/null || st=$?
d=$(elapsed "$t0" "$(now_s)")
h_assert_eq 1 "$st" "xdcr wait times out with exit 1"
ge "$d" 1.5 && lt "$d" 2.5 || h_fail "xdcr wait timed out after ${d}s (want 1.5s)"
h_pass "xdcr wait timed out after ${d}s, not before"
out=$(h_psql west "SELECT extract(epoch FROM clock_timestamp())" \
    "SELECT xdcr.wait_for('east', '$far', '1500ms')" "SELECT extract(epoch FROM clock_timestamp())")
d=$(elapsed "$(sed -n 1p <<<"$out")" "$(sed -n 3p <<<"$out")")
h_assert_eq "f" "$(sed -n 2p <<<"$out")" "wait_for returns false on timeout"
ge "$d" 1.5 && lt "$d" 2.5 || h_fail "wait_for timed out after ${d}s (want 1.5s)"
h_pass "wait_for timed out after ${d}s, not before"
h_assert_eq "f" "$(h_psql west "SELECT xdcr.wait_for('nosuch', '0/1', '200ms')")" \
    "wait_for on an unknown origin times out with false"

# ---- refuses a snapshot that cannot see the consumer's commits ------------------------------
out=$(psql -XAtq -d "$WEST" -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
    -c "SELECT xdcr.wait_for('east', '$far', '1s')" 2>&1 || true)
h_assert_contains "$out" "READ COMMITTED" "wait_for refuses REPEATABLE READ"

# ---- consumer away: nobody holds the turnstile; wait_for polls gently, times out, wakes ----
# frozen, with its session (and so its advisory locks) gone
h_daemon_signal consumer STOP
h_psql west "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'xdcr-consumer'" >/dev/null
tok=$(token_after_insert 100)
out=$(h_psql west "SELECT extract(epoch FROM clock_timestamp())" \
    "SELECT xdcr.wait_for('east', '$tok', '1s')" "SELECT extract(epoch FROM clock_timestamp())")
d=$(elapsed "$(sed -n 1p <<<"$out")" "$(sed -n 3p <<<"$out")")
h_assert_eq "f" "$(sed -n 2p <<<"$out")" "consumer away: wait_for returns false on timeout"
ge "$d" 1 && lt "$d" 1.5 || h_fail "consumer away: wait_for timed out after ${d}s (want 1s)"
( psql -XAtq -d "$WEST" -c "SELECT xdcr.wait_for('east', '$tok', '30s')" \
    -c "SELECT extract(epoch FROM clock_timestamp())" >"$H_DIR/sql.down" 2>&1 ) &
sql_pid=$!
sleeping() {
    [[ "$(h_psql west "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%wait_for(''east''%'
        AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()")" == 1 ]]
}
h_wait_for 5 "consumer away: wait_for to sleep between checks" sleeping
h_daemon_signal consumer CONT
wait "$sql_pid" || true
h_assert_eq "t" "$(sed -n 1p "$H_DIR/sql.down")" "consumer back: the waiting wait_for returns true"
d=$(elapsed "$(commit_epoch 100)" "$(sed -n 2p "$H_DIR/sql.down")")
lt "$d" 0.15 || h_fail "consumer back: wait_for returned ${d}s after the apply"
h_pass "consumer back: wait_for returned ${d}s after the apply"
h_assert_eq "t" "$(h_psql west "SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE a.application_name = 'xdcr-consumer' AND l.locktype = 'advisory' AND l.granted
    AND l.classid::integer = hashtext('xdcr:east') AND l.mode = 'ExclusiveLock'")" \
    "the consumer's new session holds the turnstile of east again (one parity)"

h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the consumer stops cleanly"
h_daemon_stop forwarder >/dev/null
h_finish
