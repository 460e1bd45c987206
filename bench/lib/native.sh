# shellcheck shell=bash
#
# native.sh - PostgreSQL's own logical replication between src and dst: publication bench_pub,
# subscription bench_sub (copy_data = false: both sides start from the same preloaded
# contents), all other options at their PostgreSQL 15 defaults (text format, no streaming of
# in-progress transactions, the subscription's synchronous_commit = off).
#
# System interface (the same in xdcr.sh): <sys>_setup MODE TAG, <sys>_resume, <sys>_health,
# <sys>_role_pids, <sys>_teardown. MODE e2e: replicating when setup returns. MODE catchup:
# set up, proven to work, then paused (the backlog of the workload waits in the slot) until
# <sys>_resume.

native_sub_ddl() {
    echo "CREATE SUBSCRIPTION bench_sub CONNECTION '$(b_conn src)' PUBLICATION bench_pub WITH (copy_data = false)"
}

native_streaming() {
    [[ "$(b_sql dst "SELECT count(*) FROM pg_stat_subscription WHERE subname = 'bench_sub' AND pid IS NOT NULL AND relid IS NULL")" == 1 &&
        "$(b_sql src "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_sub' AND active")" == 1 ]]
}

native_stopped() {
    [[ "$(b_sql dst "SELECT count(*) FROM pg_stat_subscription WHERE subname = 'bench_sub' AND pid IS NOT NULL")" == 0 &&
        "$(b_sql src "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_sub' AND active")" == 0 ]]
}

# native_setup MODE TAG : status 0 when ready; the reason in BENCH_PROBLEM otherwise.
native_setup() {
    local mode=$1 n
    b_sql src "CREATE PUBLICATION bench_pub FOR TABLE bench_items, bench_marker" >/dev/null
    b_sql dst "$(native_sub_ddl)" >/dev/null
    b_cmd "native replication" "-- src
CREATE PUBLICATION bench_pub FOR TABLE bench_items, bench_marker;
-- dst
$(native_sub_ddl);
-- catch-up runs: ALTER SUBSCRIPTION bench_sub DISABLE before the workload, ENABLE after it"
    if ! b_wait 60 native_streaming; then
        BENCH_PROBLEM="the subscription did not start streaming within 60 s"
        return 1
    fi
    # prove the path works before measuring
    bench_mark_next
    n=$BENCH_MARK
    bench_mark_set "$n"
    bench_waiter_start "$n" 60 "$H_DIR/warmup.out"
    if ! bench_waiter_finish 60 >/dev/null; then
        BENCH_PROBLEM="warm-up transaction not applied: $BENCH_PROBLEM"
        return 1
    fi
    if [[ "$mode" == catchup ]]; then
        b_sql dst "ALTER SUBSCRIPTION bench_sub DISABLE" >/dev/null
        if ! b_wait 60 native_stopped; then
            BENCH_PROBLEM="the subscription did not stop within 60 s"
            return 1
        fi
    fi
}

native_resume() {
    b_sql dst "ALTER SUBSCRIPTION bench_sub ENABLE" >/dev/null
}

# 0 while healthy; otherwise the problem on stdout (an apply error makes the worker restart in a
# loop and never catch up).
native_health() {
    local n
    n=$(b_sql dst "SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats WHERE subname = 'bench_sub'" 2>/dev/null) || return 0
    if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 0)); then
        echo "the apply worker failed $n time(s): $(grep -h 'ERROR' "$H_DIR/pg/dst/postgresql.log" | tail -n 1)"
        return 1
    fi
    return 0
}

native_extra_metrics() {
    return 0
}

native_role_pids() {
    echo "walsender $(b_sql src "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bench_sub' AND active" 2>/dev/null)"
    echo "apply $(b_sql dst "SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub' AND relid IS NULL AND pid IS NOT NULL" 2>/dev/null)"
}

native_teardown() {
    b_sql dst "DROP SUBSCRIPTION IF EXISTS bench_sub" >/dev/null 2>&1 || true
    b_sql src "DROP PUBLICATION IF EXISTS bench_pub" >/dev/null 2>&1 || true
}
