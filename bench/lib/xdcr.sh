# shellcheck shell=bash
#
# xdcr.sh - xdcr between src and dst: xdcr-forwarder (origin east, publication xdcr_east =
# bench_items + bench_marker, slot xdcr_east) -> the dev broker (librdkafka mock cluster, one
# broker, topic xdcr.east.changes with 1 partition, fresh for every run) -> xdcr-consumer
# (origin west, origins east; positions in dst's schema xdcr, dropped between runs).
# Same system interface as native.sh. Catch-up: forwarder and consumer are stopped (SIGTERM)
# during the workload, so the backlog waits in the replication slot exactly as it does for a
# disabled subscription; then both start and drain it. A consumer that falls below the mock
# broker's retention (about 5 MiB per partition) must detect the gap and halt: the run then
# ends with that finding.
#
# Extra configuration lines: BENCH_FWD_CONF and BENCH_CONS_CONF (newline-separated "key =
# value" lines, appended to the generated files, so they win).

BENCH_FWD_BIN=${BENCH_FWD_BIN:-$XDCR_BUILD_DIR/forwarder/xdcr-forwarder}
BENCH_CONS_BIN=${BENCH_CONS_BIN:-$XDCR_BUILD_DIR/consumer/xdcr-consumer}
# see xdcr_write_confs; empty: librdkafka's default (500 ms)
BENCH_CONS_FETCH_WAIT_MS=${BENCH_CONS_FETCH_WAIT_MS-2}
# catch-up only: the consumer's prefetch (kafka.queued.max.messages.kbytes; xdcr's default is
# 24 MB). The forwarder publishes a backlog several times faster than the consumer applies it,
# and the mock keeps only about 5 MiB of it: the consumer must hold the rest in its prefetch or
# fall below the mock's retention (a gap). 64 MB is librdkafka's own default. Empty: xdcr's.
BENCH_CATCHUP_PREFETCH_KB=${BENCH_CATCHUP_PREFETCH_KB-65536}
XDCR_FWD_NAME=""
XDCR_CONS_NAME=""
XDCR_CONS_HTTP_PORT=""
XDCR_TAG=""
XDCR_STARTS=0

xdcr_available() { # status 0 when both daemons are built; the reason on stdout otherwise
    local b
    for b in "$BENCH_FWD_BIN" "$BENCH_CONS_BIN" "$XDCR_BUILD_DIR/cli/xdcr"; do
        if [[ ! -x "$b" ]]; then
            echo "$b is not built"
            return 1
        fi
    done
}

xdcr_write_confs() {
    local fetch_wait=""
    if [[ -n "$BENCH_CONS_FETCH_WAIT_MS" ]]; then
        fetch_wait="# the mock answers a Fetch that finds no data only after the full fetch.wait.max.ms
# (default 500 ms), even when data arrives meanwhile; Kafka answers as soon as data arrives
kafka.fetch.wait.max.ms = $BENCH_CONS_FETCH_WAIT_MS"
    fi
    cat >"$H_DIR/fwd.conf" <<EOF
origin = east
pg.conninfo = $(b_conn src)
slot.create = true
publication.create = false
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
${BENCH_FWD_CONF:-}
EOF
    cat >"$H_DIR/cons.conf" <<EOF
origin = west
origins = east
pg.conninfo = $(b_conn dst)
tables = public.bench_items,public.bench_marker
# one-way by default, as native logical replication applies (BENCH_XDCR_MODE=active-active
# measures conflict resolution: one target transaction per source transaction)
mode = ${BENCH_XDCR_MODE:-one-way}
# metrics only: the apply delay by stage (xdcr_stage_scrape)
http.listen = 127.0.0.1:$XDCR_CONS_HTTP_PORT
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
# one consumer for the target, as a subscription has one apply worker: it reads its partition
# itself, without a consumer group's join (3 s on an empty group)
assignment = static
${fetch_wait}
${BENCH_CONS_CONF:-}
EOF
    b_cmd "xdcr replication" "-- src
CREATE PUBLICATION xdcr_east FOR TABLE bench_items, bench_marker;
# dev broker (fresh for every run)
$XDCR_BUILD_DIR/cli/xdcr dev-broker --brokers 1 --topic xdcr.east.changes:1 --bootstrap-file ... --control ...
# forwarder: xdcr-forwarder --config fwd.conf
$(sed -e "s|$H_DIR|\$H_DIR|g" -e "s|^kafka.bootstrap.servers = .*|kafka.bootstrap.servers = <dev broker>|" "$H_DIR/fwd.conf")
# consumer: xdcr-consumer --config cons.conf
$(sed -e "s|$H_DIR|\$H_DIR|g" -e "s|^kafka.bootstrap.servers = .*|kafka.bootstrap.servers = <dev broker>|" \
        -e "s|^http.listen = 127.0.0.1:.*|http.listen = 127.0.0.1:<free port>|" "$H_DIR/cons.conf")
# catch-up runs: both stopped with SIGTERM before the workload; after it the consumer starts
# (with --kafka.queued.max.messages.kbytes=${BENCH_CATCHUP_PREFETCH_KB:-24576}), and the forwarder
# once the consumer has its partition"
}

# Start forwarder and consumer (new daemon names, so each start has its own log).
# xdcr_start_daemons [--consumer-first] : with --consumer-first the forwarder starts once the
# consumer has its partition (see xdcr_resume).
xdcr_start_daemons() {
    XDCR_STARTS=$((XDCR_STARTS + 1))
    XDCR_FWD_NAME="fwd-$XDCR_TAG-$XDCR_STARTS"
    XDCR_CONS_NAME="cons-$XDCR_TAG-$XDCR_STARTS"
    if [[ "${1:-}" != --consumer-first ]]; then
        H_QUIET=1 h_daemon_start "$XDCR_FWD_NAME" "$BENCH_FWD_BIN" --config "$H_DIR/fwd.conf"
    fi
    local extra=()
    if [[ "${1:-}" == --consumer-first && -n "$BENCH_CATCHUP_PREFETCH_KB" ]]; then
        extra=("--kafka.queued.max.messages.kbytes=$BENCH_CATCHUP_PREFETCH_KB")
    fi
    H_QUIET=1 h_daemon_start "$XDCR_CONS_NAME" "$BENCH_CONS_BIN" --config "$H_DIR/cons.conf" "${extra[@]}"
    if [[ "${1:-}" == --consumer-first ]]; then
        # every 10 ms: the harness's polling is not the consumer's start-up
        B_WAIT_EVERY=0.01 b_wait 30 xdcr_cons_assigned || true
        H_QUIET=1 h_daemon_start "$XDCR_FWD_NAME" "$BENCH_FWD_BIN" --config "$H_DIR/fwd.conf"
    fi
}

# Stop both with SIGTERM (clean drain); a non-zero exit status is a finding.
xdcr_stop_daemons() {
    local name st
    for name in "$XDCR_CONS_NAME" "$XDCR_FWD_NAME"; do
        [[ -n "$name" ]] || continue
        # not in a subshell: only this shell can collect the exit status of its children
        h_daemon_stop "$name" >/dev/null
        st=$H_LAST_EXIT
        # a consumer that halted (already a finding) exits on its own with a non-zero status
        if [[ -n "$st" && "$st" != 0 ]] && ! grep -q 'msg="origin halted"' "$(h_daemon_log "$name")"; then
            b_finding "xdcr run $XDCR_TAG: $name exited with status $st on SIGTERM: $(grep -h 'level=error' "$(h_daemon_log "$name")" | tail -n 1)"
        fi
    done
}

xdcr_slot_active() {
    [[ "$(b_sql src "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east' AND active")" == 1 ]]
}

# xdcr_prepare TAG : a run's publication, a fresh dev broker and the configurations; no daemon yet
xdcr_prepare() {
    XDCR_TAG=$1
    XDCR_STARTS=0
    XDCR_FWD_NAME=""
    XDCR_CONS_NAME=""
    XDCR_CONS_HTTP_PORT=$(h__free_port)
    b_sql src "CREATE PUBLICATION xdcr_east FOR TABLE bench_items, bench_marker" >/dev/null
    H_QUIET=1 h_broker_start --brokers 1 --topic xdcr.east.changes:1
    xdcr_write_confs
}

xdcr_setup() {
    local mode=$1 n problem
    xdcr_prepare "$2"
    xdcr_start_daemons
    if ! b_wait 60 xdcr_slot_active; then
        problem=$(xdcr_health) || true
        BENCH_PROBLEM="the forwarder did not stream from its slot within 60 s${problem:+: $problem}"
        return 1
    fi
    bench_mark_next
    n=$BENCH_MARK
    bench_mark_set "$n"
    bench_waiter_start "$n" 120 "$H_DIR/warmup.out"
    if ! bench_waiter_finish 120 >/dev/null; then
        BENCH_PROBLEM="warm-up transaction not applied: $BENCH_PROBLEM"
        return 1
    fi
    xdcr_stage_scrape >"$H_DIR/stages0.txt"
    if [[ "$mode" == catchup ]]; then
        xdcr_stop_daemons
    fi
}

# Catch-up: the consumer first, and the forwarder once the consumer has its partition, so that
# a forwarder publishing the backlog cannot run the dev broker's 5 MiB retention past a consumer
# that is still starting. With assignment = static the consumer has its partition within
# milliseconds of connecting (a consumer group's join would take about 3 s, the group's initial
# rebalance delay, as in Kafka). The rate counts from the consumer's start;
# "after partition assigned" leaves its start-up out.
xdcr_cons_assigned() {
    grep -q 'msg="partition assigned"' "$(h_daemon_log "$XDCR_CONS_NAME")" 2>/dev/null
}

xdcr_resume() {
    xdcr_start_daemons --consumer-first
}

# 0 while healthy; otherwise the problem on stdout: a daemon that exited, or a halted origin.
xdcr_health() {
    local name log line
    for name in "$XDCR_FWD_NAME" "$XDCR_CONS_NAME"; do
        [[ -n "$name" ]] || continue
        log=$(h_daemon_log "$name")
        if [[ "$name" == cons-* ]] && line=$(grep -m 1 'origin halted' "$log" 2>/dev/null); then
            echo "consumer halted: $line"
            return 1
        fi
        if ! h_daemon_alive "$name"; then
            # (its exit status is collected by xdcr_stop_daemons, in the main shell)
            echo "$name exited: $(grep -h 'level=error' "$log" 2>/dev/null | tail -n 1)"
            return 1
        fi
    done
    if ! h_daemon_alive dev-broker; then
        echo "the dev broker exited"
        return 1
    fi
    return 0
}

# xdcr_extra_metrics W S M REP T0 T1 ROWS : catch-up only: how long the consumer took from its
# start to its partition assignment (the backlog cannot drain before it), and the drain rate
# after that.
xdcr_extra_metrics() {
    local w=$1 s=$2 m=$3 rep=$4 t0=$5 t1=$6 rows=$7 ts ta stage mean
    if [[ "$m" == e2e ]]; then
        # the run's transactions only: the warm-up was scraped before
        xdcr_stage_scrape >"$H_DIR/stages1.txt"
        for stage in capture transport apply; do
            mean=$(awk -v st="$stage" '$1 == st && FILENAME ~ /stages0/ { c0 = $2; s0 = $3 }
                $1 == st && FILENAME ~ /stages1/ { c1 = $2; s1 = $3 }
                END { if (c1 > c0) printf "%.3f", (s1 - s0) / (c1 - c0) * 1000 }' \
                "$H_DIR/stages0.txt" "$H_DIR/stages1.txt")
            [[ -z "$mean" ]] || b_record "$w" "$s" "$m" "$rep" "stage_${stage}_ms" "$mean"
        done
        return 0
    fi
    [[ "$m" == catchup ]] || return 0
    ts=$(grep -m 1 'msg="partition assigned"' "$(h_daemon_log "$XDCR_CONS_NAME")" 2>/dev/null |
        sed -n 's/^ts=\([^ ]*\) .*/\1/p')
    [[ -n "$ts" ]] || return 0
    ta=$(date -u -d "$ts" +%s.%N 2>/dev/null) || return 0
    b_record "$w" "$s" "$m" "$rep" startup_seconds "$(b_elapsed "$t0" "$ta")"
    if [[ -n "$t1" ]]; then
        b_record "$w" "$s" "$m" "$rep" drain_rate "$(b_rate "$rows" "$(b_elapsed "$ta" "$t1")")"
    fi
}

# xdcr_stage_scrape : "stage count sum" lines of the consumer's
# xdcr_consumer_stage_delay_seconds (nothing when it cannot be read)
xdcr_stage_scrape() {
    curl -fsS -m 5 "http://127.0.0.1:$XDCR_CONS_HTTP_PORT/metrics" 2>/dev/null |
        awk '/^xdcr_consumer_stage_delay_seconds_(count|sum)\{/ {
            match($0, /stage="[a-z]+"/); st = substr($0, RSTART + 7, RLENGTH - 8)
            if ($1 ~ /_count\{/) c[st] = $2; else s[st] = $2 }
            END { for (st in c) print st, c[st], s[st] }' || true
}

xdcr_role_pids() {
    local p
    p=$(h_daemon_pid "$XDCR_FWD_NAME" 2>/dev/null) && echo "forwarder $p"
    p=$(h_daemon_pid "$XDCR_CONS_NAME" 2>/dev/null) && echo "consumer $p"
    p=$(h_daemon_pid dev-broker 2>/dev/null) && echo "broker $p"
    echo "walsender $(b_sql src "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'xdcr_east' AND active" 2>/dev/null)"
    echo "apply $(b_sql dst "SELECT pid FROM pg_stat_activity WHERE application_name = 'xdcr-consumer' ORDER BY backend_start LIMIT 1" 2>/dev/null)"
    return 0
}

xdcr_teardown() {
    local f
    xdcr_stop_daemons
    # stop every daemon of this run that may still be there (earlier starts included)
    for f in "$H_DIR"/daemons/fwd-"$XDCR_TAG"-*.pid "$H_DIR"/daemons/cons-"$XDCR_TAG"-*.pid; do
        [[ -e "$f" ]] || continue
        h_daemon_stop "$(basename "$f" .pid)" >/dev/null
    done
    h_broker_stop >/dev/null || true
    mkdir -p "$BENCH_OUT/logs"
    for f in "$H_DIR"/logs/fwd-"$XDCR_TAG"-*.log "$H_DIR"/logs/cons-"$XDCR_TAG"-*.log; do
        [[ -e "$f" ]] || continue
        cp "$f" "$BENCH_OUT/logs/"
    done
    if [[ -e "$H_DIR/logs/dev-broker.log" ]]; then
        mv "$H_DIR/logs/dev-broker.log" "$BENCH_OUT/logs/dev-broker-$XDCR_TAG.log"
    fi
    # the slot, the publication, the consumer's schema and replication origin: bench_reset
    # (bench_drop_replication) removes them before the next run
}

# ---- replay: the apply engine alone ------------------------------------------------------------

# the recorder must stay within the mock broker's retention (about 5 MiB per partition) while
# the forwarder publishes at full speed: big fetches, answered at once
XDCR_RECORD_FETCH=(-X fetch.wait.max.ms=1 -X max.partition.fetch.bytes=67108864
    -X fetch.max.bytes=134217728 -X queued.min.messages=1000000)

xdcr_slot_confirmed() { # LSN
    [[ "$(b_sql src "SELECT confirmed_flush_lsn >= '$1' FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == t ]]
}

# xdcr_replay_run W REP : the consumer's apply engine without a broker. The forwarder publishes
# the workload (no consumer) while `xdcr tail --record` copies the topic to a file; then
# `xdcr-consumer --replay.file` applies the file into dst, which still holds the preload only.
# rate = rows / replay wall time (process start to exit, the file check included); the contents
# are compared by checksum. Bounded by PostgreSQL and the consumer only: neither the mock
# broker's retention nor its fetch behaviour is involved in the timed part.
xdcr_replay_run() {
    local w=$1 rep=$2 rows tag rec t0 t1 secs rc=0 lsn cpu cpu_u cpu_s rss cmp log
    tag="$w-replay-$rep"
    rec="$H_DIR/$tag.rec"
    BENCH_SYS=xdcr
    rows=$(bench_workload_rows "$w")
    b_note "run $w xdcr replay rep $rep ($rows rows)"
    bench_reset "$w"
    xdcr_prepare "$tag"
    XDCR_STARTS=1
    XDCR_FWD_NAME="fwd-$tag-1"
    b_cmd "xdcr replay (the apply engine alone)" "# record: the forwarder as above, no consumer
xdcr tail --bootstrap <dev broker> --topic xdcr.east.changes --follow --idle-ms 3000 --record W.rec ${XDCR_RECORD_FETCH[*]}
# replay into the target (preload only), timed
xdcr-consumer --config cons.conf --replay.file=W.rec"
    H_QUIET=1 h_daemon_start "$XDCR_FWD_NAME" "$BENCH_FWD_BIN" --config "$H_DIR/fwd.conf"
    if ! b_wait 60 xdcr_slot_active; then
        b_finding "$w xdcr replay rep $rep: the forwarder did not stream within 60 s"
        b_record "$w" xdcr replay "$rep" status setup-failed
        xdcr_teardown
        return 0
    fi
    rm -f "$rec"
    H_QUIET=1 h_daemon_start "rec-$tag" "$XDCR_BUILD_DIR/cli/xdcr" tail \
        --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.east.changes --follow --idle-ms 3000 \
        --record "$rec" "${XDCR_RECORD_FETCH[@]}"
    # the recorder must read before the workload starts (the mock keeps only about 5 MiB: a
    # recorder that starts late begins at the low watermark): a marker, then wait until the
    # recorder has written it (it flushes the file whenever it is idle)
    bench_mark_next
    bench_mark_set "$BENCH_MARK"
    recording() { [[ "$(stat -c %s "$rec" 2>/dev/null || echo 0)" -gt 8 ]]; }
    if ! b_wait 60 recording; then
        b_finding "$w xdcr replay rep $rep: the recorder did not start within 60 s"
        b_record "$w" xdcr replay "$rep" status setup-failed
        h_daemon_stop "rec-$tag" >/dev/null
        xdcr_teardown
        return 0
    fi
    if ! bench_workload_run "$w" "$H_DIR/workload.log"; then
        b_finding "$w xdcr replay rep $rep: the workload failed: $(tail -n 3 "$H_DIR/workload.log")"
        b_record "$w" xdcr replay "$rep" status workload-failed
        h_daemon_stop "rec-$tag" >/dev/null
        xdcr_teardown
        return 0
    fi
    bench_mark_next
    bench_mark_set "$BENCH_MARK"
    lsn=$(b_sql src "SELECT pg_current_wal_lsn()")
    if ! b_wait "$(bench_timeout "$rows")" xdcr_slot_confirmed "$lsn"; then
        b_finding "$w xdcr replay rep $rep: the forwarder did not confirm the workload"
        b_record "$w" xdcr replay "$rep" status timeout
        h_daemon_stop "rec-$tag" >/dev/null
        xdcr_teardown
        return 0
    fi
    # no more progress marks: the recorder ends 3 s after the last message
    h_daemon_stop "$XDCR_FWD_NAME" >/dev/null
    h_daemon_wait "rec-$tag" 600 >/dev/null
    if [[ "$H_LAST_EXIT" != 0 ]]; then
        b_finding "$w xdcr replay rep $rep: the recording failed (the mock broker's retention?): $(tail -n 2 "$(h_daemon_log "rec-$tag")")"
        b_record "$w" xdcr replay "$rep" status record-failed
        xdcr_teardown
        rm -f "$rec"
        return 0
    fi
    b_record "$w" xdcr replay "$rep" file_bytes "$(stat -c %s "$rec")"
    # the file is read from the page cache, as a consumer reads a hot Kafka partition
    cat "$rec" >/dev/null
    t0=$(b_now)
    log="$H_DIR/logs/cons-$tag-replay.log" # (xdcr_teardown keeps cons-<tag>-*.log)
    /usr/bin/time -f '%U %S %M' -o "$H_DIR/replay.time" "$BENCH_CONS_BIN" \
        --config "$H_DIR/cons.conf" "--replay.file=$rec" >"$log" 2>&1 || rc=$?
    t1=$(b_now)
    if ((rc != 0)); then
        b_finding "$w xdcr replay rep $rep: the replay exited with status $rc: $(grep -h 'level=error\|exiting' "$log" | tail -n 1)"
        b_record "$w" xdcr replay "$rep" status failed
        xdcr_teardown
        rm -f "$rec"
        return 0
    fi
    if grep -q "starting at the partition's low watermark" "$log"; then
        b_finding "$w xdcr replay rep $rep: the recording misses the start of the topic (the recorder fell behind the mock's retention)"
        b_record "$w" xdcr replay "$rep" status record-incomplete
        xdcr_teardown
        rm -f "$rec"
        return 0
    fi
    secs=$(b_elapsed "$t0" "$t1")
    read -r cpu_u cpu_s rss <"$H_DIR/replay.time" || true
    cpu=$(awk -v a="${cpu_u:-0}" -v b="${cpu_s:-0}" 'BEGIN { printf "%.3f", a + b }')
    b_record "$w" xdcr replay "$rep" rows "$rows"
    b_record "$w" xdcr replay "$rep" seconds "$secs"
    b_record "$w" xdcr replay "$rep" rate "$(b_rate "$rows" "$secs")"
    b_record "$w" xdcr replay "$rep" cpu_consumer "$cpu"
    [[ -z "${rss:-}" ]] || b_record "$w" xdcr replay "$rep" rss_kb_consumer "$rss"
    if cmp=$(bench_compare); then
        b_record "$w" xdcr replay "$rep" status ok
        h_pass "$w xdcr replay rep $rep: $(b_rate "$rows" "$secs") rows/s, contents equal (${cmp%% |*})"
    else
        b_finding "$w xdcr replay rep $rep: contents differ after the replay: $cmp"
        b_record "$w" xdcr replay "$rep" status mismatch
    fi
    xdcr_teardown
    rm -f "$rec"
}
