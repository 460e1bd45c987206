# shellcheck shell=bash
#
# runner.sh - one measured run (workload x system x mode x repetition), the apply-lag
# computation, and the ceilings (pgoutput decoding, COPY).
#
# A run: reset both clusters (fresh tables, same preload), set the system up and prove it
# replicates (a warm-up transaction), then
#   e2e:     t0; workload on src; marker transaction; dst applied the marker -> t1.
#   catchup: the system is paused (subscription disabled / forwarder and consumer stopped);
#            workload; marker; t0; resume; dst applied the marker -> t1.
# rate = rows / (t1 - t0); then the contents are compared by checksum; e2e runs also compute
# the apply lag of every row from the WAL (see bench_lag).

BENCH_SYS=""
BENCH_PROBLEM=""
BENCH_WAITER_PID=""
BENCH_WAITER_OUT=""
BENCH_SEEN=""

b_role_pids() {
    "${BENCH_SYS}_role_pids"
}

bench_timeout() { # bench_timeout ROWS : seconds allowed for applying ROWS
    if [[ -n "${BENCH_WAIT_TIMEOUT:-}" ]]; then
        echo "$BENCH_WAIT_TIMEOUT"
    else
        echo $((60 + $1 / 1000))
    fi
}

# bench_waiter_start N TIMEOUT_S OUT (clusters.sh) runs the waiter; this waits for it while
# checking the system's health every second. Sets BENCH_SEEN to the dst epoch when the marker
# was seen (call it directly, not in a subshell).
# Status 1: timeout; 2: the system is unhealthy (halted consumer, dead daemon, apply errors).
# The reason is in BENCH_PROBLEM.
bench_waiter_finish() {
    local timeout_s=$1 deadline next_health now problem seen
    BENCH_PROBLEM=""
    BENCH_SEEN=""
    deadline=$(($(h__now_ms) + timeout_s * 1000))
    next_health=$(($(h__now_ms) + 1000))
    while h__alive "$BENCH_WAITER_PID"; do
        now=$(h__now_ms)
        if ((now >= next_health)); then
            if ! problem=$("${BENCH_SYS}_health"); then
                kill -TERM "$BENCH_WAITER_PID" 2>/dev/null || true
                wait "$BENCH_WAITER_PID" 2>/dev/null || true
                BENCH_PROBLEM=$problem
                return 2
            fi
            next_health=$((now + 1000))
        fi
        if ((now >= deadline)); then
            kill -TERM "$BENCH_WAITER_PID" 2>/dev/null || true
            wait "$BENCH_WAITER_PID" 2>/dev/null || true
            BENCH_PROBLEM="not applied within ${timeout_s} s"
            return 1
        fi
        sleep 0.02
    done
    wait "$BENCH_WAITER_PID" 2>/dev/null || true
    seen=$(cat "$BENCH_WAITER_OUT" 2>/dev/null || true)
    if [[ ! "$seen" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        BENCH_PROBLEM="not applied within ${timeout_s} s${seen:+ ($seen)} $(cat "$BENCH_WAITER_OUT.err" 2>/dev/null)"
        return 1
    fi
    BENCH_SEEN=$seen
}

# bench_lag W S M REP T0 DST_LSN0 : per-row apply lag of an e2e run, identical for both
# systems and free of triggers: for every row the workload wrote that is still there,
#   lag = (dst local commit time of the transaction that wrote the row at dst)
#         - (src commit time of the transaction that wrote it at src).
# The src side is pg_xact_commit_timestamp(xmin) (track_commit_timestamp = on). At dst that
# function returns the *origin's* commit time for rows applied under a replication origin
# (both systems apply under one), so the dst commit time is read from dst's WAL commit
# records (pg_waldump, which prints the local commit time; subtransactions are mapped to
# their top transaction). Both times are taken at the same point of a commit (when the commit
# record is built, before its flush), on one machine clock.
bench_lag() {
    local w=$1 s=$2 m=$3 rep=$4 t0=$5 lsn0=$6 lsn1 d="$H_DIR/lag" res n p50 p99 mx
    mkdir -p "$d"
    lsn1=$(b_sql dst "SELECT pg_current_wal_lsn()")
    TZ=UTC timeout -k 5 900 "$H_PG_BIN/pg_waldump" -p "$H_DIR/pg/dst/data/pg_wal" -s "$lsn0" \
        -e "$lsn1" -r Transaction 2>"$d/waldump.err" |
        awk '
            /desc: COMMIT [0-9]/ {
                if (!match($0, /tx: *[0-9]+/)) next
                xid = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", xid)
                if (!match($0, /desc: COMMIT [0-9-]+ [0-9:.]+ [A-Za-z+0-9]+/)) next
                ts = substr($0, RSTART + 13, RLENGTH - 13)
                print xid "," ts
                if (match($0, /subxacts: [0-9 ]+/)) {
                    n = split(substr($0, RSTART + 10, RLENGTH - 10), subs, " ")
                    for (i = 1; i <= n; i++) if (subs[i] != "") print subs[i] "," ts
                }
            }' >"$d/commits.csv" || true
    b_sql src "COPY (SELECT id, pg_xact_commit_timestamp(xmin) FROM bench_items
                     WHERE pg_xact_commit_timestamp(xmin) >= to_timestamp($t0)) TO STDOUT (FORMAT csv)" \
        >"$d/src.csv"
    cat >"$d/lag.sql" <<EOF
CREATE TEMP TABLE lag_w (xid bigint, ts timestamptz);
\\copy lag_w FROM '$d/commits.csv' (FORMAT csv)
CREATE TEMP TABLE lag_s (id bigint, ts timestamptz);
\\copy lag_s FROM '$d/src.csv' (FORMAT csv)
SELECT count(*),
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 3),
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 3),
       round(max(ms)::numeric, 3),
       (SELECT count(*) FROM lag_s)
FROM (SELECT extract(epoch FROM w.ts - s.ts) * 1000 AS ms
      FROM bench_items d JOIN lag_s s USING (id) JOIN lag_w w ON w.xid = d.xmin::text::bigint) x;
EOF
    res=$(b_sql_file dst "$d/lag.sql" 2>&1 | tail -n 1) || true
    IFS='|' read -r n p50 p99 mx total <<<"$res"
    if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 0)); then
        b_record "$w" "$s" "$m" "$rep" lag_rows "$n"
        b_record "$w" "$s" "$m" "$rep" lag_p50_ms "$p50"
        b_record "$w" "$s" "$m" "$rep" lag_p99_ms "$p99"
        b_record "$w" "$s" "$m" "$rep" lag_max_ms "$mx"
        if [[ "$total" =~ ^[0-9]+$ ]] && ((n < total)); then
            b_note "lag: $n of $total rows matched a dst commit in the WAL"
        fi
    else
        b_finding "$w $s rep $rep: apply lag could not be computed: $res $(head -c 300 "$d/waldump.err")"
    fi
    rm -f "$d"/*.csv
}

# bench_run_one W SYSTEM MODE REP
bench_run_one() {
    local w=$1 sys=$2 mode=$3 rep=$4 tag rows n timeout_s t0 t1 tsrc tw rc cmp lsn0=""
    tag="$w-$mode-$rep"
    BENCH_SYS=$sys
    rows=$(bench_workload_rows "$w")
    timeout_s=$(bench_timeout "$rows")
    b_note "run $w $sys $mode rep $rep ($rows rows)"
    bench_reset "$w"
    if ! "${sys}_setup" "$mode" "$tag"; then
        b_finding "$w $sys $mode rep $rep: setup failed: $BENCH_PROBLEM"
        b_record "$w" "$sys" "$mode" "$rep" status setup-failed
        "${sys}_teardown"
        return 0
    fi
    bench_mark_next
    n=$BENCH_MARK
    if [[ "$mode" == e2e ]]; then
        b_sql dst "SELECT pg_create_physical_replication_slot('bench_walkeep', true)" >/dev/null
        lsn0=$(b_sql dst "SELECT pg_current_wal_lsn()")
    fi
    bench_waiter_start "$n" $((timeout_s * 3)) "$H_DIR/waiter.out"
    if [[ "$mode" == e2e ]]; then
        b_procs_snapshot0
    fi
    t0=$(b_now)
    tw=$t0
    if ! bench_workload_run "$w" "$H_DIR/workload.log"; then
        b_finding "$w $sys $mode rep $rep: the workload failed: $(tail -n 3 "$H_DIR/workload.log")"
        b_record "$w" "$sys" "$mode" "$rep" status workload-failed
        kill -TERM "$BENCH_WAITER_PID" 2>/dev/null || true
        wait "$BENCH_WAITER_PID" 2>/dev/null || true
        "${sys}_teardown"
        return 0
    fi
    bench_mark_set "$n"
    tsrc=$(b_now)
    b_record "$w" "$sys" "$mode" "$rep" source_seconds "$(b_elapsed "$tw" "$tsrc")"
    if [[ "$mode" == catchup ]]; then
        b_procs_snapshot0
        t0=$(b_now)
        "${sys}_resume"
    fi
    rc=0
    bench_waiter_finish "$timeout_s" || rc=$?
    if ((rc != 0)); then
        b_procs_record "$w" "$sys" "$mode" "$rep"
        "${sys}_extra_metrics" "$w" "$sys" "$mode" "$rep" "$t0" "" "$rows"
        if ((rc == 2)); then
            b_finding "$w $sys $mode rep $rep: $BENCH_PROBLEM"
            b_record "$w" "$sys" "$mode" "$rep" status halted
        else
            b_finding "$w $sys $mode rep $rep: $BENCH_PROBLEM"
            b_record "$w" "$sys" "$mode" "$rep" status timeout
        fi
        b_record "$w" "$sys" "$mode" "$rep" problem "${BENCH_PROBLEM//$'\t'/ }"
        "${sys}_teardown"
        return 0
    fi
    t1=$BENCH_SEEN
    b_procs_record "$w" "$sys" "$mode" "$rep"
    b_record "$w" "$sys" "$mode" "$rep" rows "$rows"
    b_record "$w" "$sys" "$mode" "$rep" seconds "$(b_elapsed "$t0" "$t1")"
    b_record "$w" "$sys" "$mode" "$rep" rate "$(b_rate "$rows" "$(b_elapsed "$t0" "$t1")")"
    b_record "$w" "$sys" "$mode" "$rep" source_rate "$(b_rate "$rows" "$(b_elapsed "$tw" "$tsrc")")"
    "${sys}_extra_metrics" "$w" "$sys" "$mode" "$rep" "$t0" "$t1" "$rows"
    if cmp=$(bench_compare); then
        b_record "$w" "$sys" "$mode" "$rep" status ok
        h_pass "$w $sys $mode rep $rep: $(b_rate "$rows" "$(b_elapsed "$t0" "$t1")") rows/s, contents equal (${cmp%% |*})"
    else
        b_finding "$w $sys $mode rep $rep: contents differ after the marker was applied: $cmp"
        b_record "$w" "$sys" "$mode" "$rep" status mismatch
    fi
    if [[ "$mode" == e2e ]]; then
        bench_lag "$w" "$sys" "$mode" "$rep" "$tw" "$lsn0"
    fi
    "${sys}_teardown"
}

# ---- ceilings ----------------------------------------------------------------------------------

# pgoutput decoding: the W1 backlog in a pgoutput slot, consumed by pg_recvlogical into
# /dev/null (no apply, no network beyond the local socket).
bench_ceiling_decode() {
    local rep=$1 rows=$BENCH_W1_ROWS end t0 t1 secs cmd
    BENCH_SYS=none
    b_note "ceiling: pgoutput decoding rep $rep"
    bench_reset W1
    b_sql src "CREATE PUBLICATION bench_dec FOR TABLE bench_items, bench_marker" \
        "SELECT pg_create_logical_replication_slot('bench_dec', 'pgoutput')" >/dev/null
    if ! bench_workload_run W1 "$H_DIR/workload.log"; then
        b_finding "ceiling decode rep $rep: the workload failed: $(tail -n 3 "$H_DIR/workload.log")"
        return 0
    fi
    end=$(b_sql src "SELECT pg_current_wal_lsn()")
    cmd="pg_recvlogical -d '<src>' --slot bench_dec --start --endpos <lsn after W1> --no-loop -F 0 -o proto_version=1 -o publication_names=bench_dec -f /dev/null"
    b_cmd "ceiling: pgoutput decoding of the W1 backlog" "$cmd"
    t0=$(b_now)
    if ! timeout -k 5 900 "$H_PG_BIN/pg_recvlogical" -d "$(b_conn src)" --slot bench_dec --start \
        --endpos "$end" --no-loop -F 0 -o proto_version=1 -o publication_names=bench_dec \
        -f /dev/null 2>"$H_DIR/recvlogical.err"; then
        b_finding "ceiling decode rep $rep: pg_recvlogical failed: $(tail -n 2 "$H_DIR/recvlogical.err")"
        return 0
    fi
    t1=$(b_now)
    secs=$(b_elapsed "$t0" "$t1")
    b_record W1 ceiling decode "$rep" rows "$rows"
    b_record W1 ceiling decode "$rep" seconds "$secs"
    b_record W1 ceiling decode "$rep" rate "$(b_rate "$rows" "$secs")"
    b_record W1 ceiling decode "$rep" status ok
}

# COPY into dst: W1's rows, client-side COPY FROM STDIN into the empty table (primary key
# index included), one transaction.
bench_ceiling_copy() {
    local rep=$1 rows=$BENCH_W1_ROWS t0 t1 secs f="$H_DIR/copy.dat"
    BENCH_SYS=none
    b_note "ceiling: COPY rep $rep"
    bench_reset W1
    if [[ ! -s "$f" ]]; then
        b_sql dst "COPY (SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text), clock_timestamp()
                         FROM generate_series(1, $rows) g) TO STDOUT" >"$f"
    fi
    b_cmd "ceiling: COPY into the target" "psql -X -d '<dst>' -c 'COPY bench_items FROM STDIN' < copy.dat   # $rows rows like W1's"
    t0=$(b_now)
    if ! timeout -k 5 900 psql -XAtq -v ON_ERROR_STOP=1 -d "$(b_conn dst)" \
        -c "COPY bench_items FROM STDIN" <"$f" >/dev/null 2>"$H_DIR/copy.err"; then
        b_finding "ceiling COPY rep $rep failed: $(tail -n 2 "$H_DIR/copy.err")"
        return 0
    fi
    t1=$(b_now)
    secs=$(b_elapsed "$t0" "$t1")
    b_record W1 ceiling copy "$rep" rows "$rows"
    b_record W1 ceiling copy "$rep" seconds "$secs"
    b_record W1 ceiling copy "$rep" rate "$(b_rate "$rows" "$secs")"
    b_record W1 ceiling copy "$rep" status ok
}
