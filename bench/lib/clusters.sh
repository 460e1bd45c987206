# shellcheck shell=bash
#
# clusters.sh - the two PostgreSQL clusters of the benchmark (src, dst; identical settings), the
# bench schema, resets between runs, the completion marker and the content checksum.
#
# Completion: every run ends with one more transaction on src, `UPDATE bench_marker SET v = N`.
# Both systems apply a source's transactions in commit order, so when dst shows v >= N it has
# applied the whole workload. A waiter on dst (the procedure bench_wait, polling every 5 ms and
# committing between polls so it holds no snapshot) reports the dst clock when it saw N; the
# same clock as the workload start (one machine). The checksum then proves the contents equal.

# Settings beyond the harness's (which sets wal_level=logical, track_commit_timestamp=on,
# fsync=on, shared_buffers=32MB, max_wal_senders/slots/workers=20, max_connections=100).
# Identical on both clusters; RESULTS.md lists every non-default setting as PostgreSQL reports it.
BENCH_PG_SETS=(
    --set shared_buffers=256MB
    --set max_wal_size=8GB
    --set checkpoint_timeout=1h
    --set log_min_messages=warning
    --set log_checkpoints=off
    # the logical replication launcher starts a worker at most once per this interval (default
    # 5 s): a subscription enabled again right after its warm-up would otherwise wait up to 5 s
    # before catch-up begins
    --set wal_retrieve_retry_interval=100ms
)
BENCH_SQL_TIMEOUT=${BENCH_SQL_TIMEOUT:-1800}
BENCH_MARK=0 # last marker value used

BENCH_SCHEMA_SQL="
CREATE TABLE bench_items (
    id bigint PRIMARY KEY,
    account int NOT NULL,
    amount numeric(12,2) NOT NULL,
    note text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_marker (id int PRIMARY KEY, v bigint NOT NULL);
INSERT INTO bench_marker VALUES (1, 0);"

BENCH_WAIT_PROC="
CREATE OR REPLACE PROCEDURE bench_wait(want bigint, timeout_s float8, INOUT seen float8 DEFAULT NULL)
LANGUAGE plpgsql AS \$\$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF EXISTS (SELECT 1 FROM bench_marker WHERE id = 1 AND v >= want) THEN
            seen := extract(epoch FROM clock_timestamp());
            RETURN;
        END IF;
        EXIT WHEN clock_timestamp() > deadline;
        COMMIT; -- no snapshot held between polls
        PERFORM pg_sleep(0.005);
    END LOOP;
END \$\$;"

# Connection over the unix socket (its path is under \$H_DIR, so the harness finds and stops
# any client left behind). Used by every client, the native subscription and both daemons.
b_conn() {
    echo "host=$H_DIR/pg/$1/sock port=$(h_pg_port "$1") user=postgres dbname=postgres"
}

# b_sql NAME SQL... : psql, each SQL its own -c, bounded in time; output unaligned, tuples only.
b_sql() {
    local name=$1 s args=()
    shift
    for s in "$@"; do
        args+=(-c "$s")
    done
    PGOPTIONS="-c client_min_messages=warning" timeout -k 5 "$BENCH_SQL_TIMEOUT" \
        psql -XAtq -v ON_ERROR_STOP=1 -d "$(b_conn "$name")" "${args[@]}"
}

# b_sql_file NAME FILE [psql args...]
b_sql_file() {
    local name=$1 file=$2
    shift 2
    PGOPTIONS="-c client_min_messages=warning" timeout -k 5 "$BENCH_SQL_TIMEOUT" \
        psql -XAtq -v ON_ERROR_STOP=1 -d "$(b_conn "$name")" "$@" -f "$file"
}

bench_clusters_start() {
    h_pg_start src "${BENCH_PG_SETS[@]}" >/dev/null
    h_pg_start dst "${BENCH_PG_SETS[@]}" >/dev/null
    b_sql dst "$BENCH_WAIT_PROC" >/dev/null
}

# Rows preloaded before a run (identically on both sides, outside replication).
bench_preload_rows() {
    case "$1" in
    W1) echo 0 ;;
    W2) echo "$BENCH_W2_PRELOAD" ;;
    W3) echo "$BENCH_W3_ROWS" ;;
    *) echo 0 ;;
    esac
}

bench_preload_sql() { # bench_preload_sql N
    echo "INSERT INTO bench_items (id, account, amount, note, updated_at)
SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text),
       '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, $1) g;"
}

# Defensive cleanup of replication state left by a run (also by an aborted one).
bench_drop_replication() {
    local s
    b_sql dst "ALTER SUBSCRIPTION bench_sub DISABLE" >/dev/null 2>&1 || true
    b_sql dst "ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)" >/dev/null 2>&1 || true
    b_sql dst "DROP SUBSCRIPTION IF EXISTS bench_sub" >/dev/null
    b_sql dst "DROP SCHEMA IF EXISTS xdcr CASCADE" >/dev/null
    b_sql dst "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin" >/dev/null 2>&1 || true
    for s in src dst; do
        # wait for walsenders to let go of their slots, then drop every slot
        b_wait 30 bash -c "[[ \$(psql -XAtq -d '$(b_conn "$s")' -c 'SELECT count(*) FROM pg_replication_slots WHERE active') == 0 ]]" ||
            b_sql "$s" "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active" >/dev/null
        b_wait 30 bash -c "[[ \$(psql -XAtq -d '$(b_conn "$s")' -c 'SELECT count(*) FROM pg_replication_slots WHERE active') == 0 ]]" || true
        b_sql "$s" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
        b_sql "$s" "DO \$\$ DECLARE p name; BEGIN FOR p IN SELECT pubname FROM pg_publication LOOP
            EXECUTE format('DROP PUBLICATION %I', p); END LOOP; END \$\$" >/dev/null
    done
}

# bench_reset W : fresh tables on both sides, preloaded for W, vacuumed, checkpointed.
bench_reset() {
    local w=$1 n s
    n=$(bench_preload_rows "$w")
    bench_drop_replication
    for s in src dst; do
        b_sql "$s" "DROP TABLE IF EXISTS bench_items, bench_marker" \
            "DROP SEQUENCE IF EXISTS bench_w2_ins, bench_w2_del" >/dev/null
        b_sql "$s" "$BENCH_SCHEMA_SQL" >/dev/null
        if ((n > 0)); then
            b_sql "$s" "$(bench_preload_sql "$n")" >/dev/null
        fi
        b_sql "$s" "VACUUM (FREEZE, ANALYZE) bench_items" "VACUUM (FREEZE, ANALYZE) bench_marker" \
            "CHECKPOINT" >/dev/null
    done
    if [[ "$w" == W2 ]]; then
        # ids of W2: inserts above the preload, deletes walk up through the second half
        b_sql src "CREATE SEQUENCE bench_w2_ins START $((n + 1))" \
            "CREATE SEQUENCE bench_w2_del START $((n / 2 + 1))" >/dev/null
    fi
}

# bench_mark_next : the next marker value into BENCH_MARK (never reused within a run of run.sh;
# call it directly, not in a subshell).
bench_mark_next() {
    BENCH_MARK=$((BENCH_MARK + 1))
}

bench_mark_set() { # bench_mark_set N : the completion transaction on src
    b_sql src "UPDATE bench_marker SET v = $1 WHERE id = 1" >/dev/null
}

# bench_waiter_start N TIMEOUT_S OUTFILE : background waiter on dst; sets BENCH_WAITER_PID and
# BENCH_WAITER_OUT. bench_waiter_finish (runner.sh) collects it.
bench_waiter_start() {
    local n=$1 t=$2 out=$3
    # shellcheck disable=SC2034 # read by bench_waiter_finish (runner.sh)
    BENCH_WAITER_OUT=$out
    : >"$out"
    timeout -k 5 $((t + 30)) psql -XAtq -v ON_ERROR_STOP=1 -d "$(b_conn dst)" \
        -c "CALL bench_wait($n, $t)" >"$out" 2>"$out.err" &
    # shellcheck disable=SC2034
    BENCH_WAITER_PID=$!
}

# bench_marker_seen N : dst shows marker >= N (one query; for short waits).
bench_marker_seen() {
    [[ "$(b_sql dst "SELECT v >= $1 FROM bench_marker WHERE id = 1")" == t ]]
}

# bench_checksum NAME : "count md5" of bench_items.
bench_checksum() {
    b_sql "$1" "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '' ORDER BY id)), 'empty')
                FROM bench_items t"
}

# bench_compare : status 0 when src and dst hold the same rows; prints "src | dst" checksums.
bench_compare() {
    local a b fa fb
    fa=$(mktemp "$H_DIR/cksum.XXXXXX")
    fb=$(mktemp "$H_DIR/cksum.XXXXXX")
    bench_checksum src >"$fa" &
    local pa=$!
    bench_checksum dst >"$fb" &
    local pb=$!
    wait "$pa" || true
    wait "$pb" || true
    a=$(cat "$fa")
    b=$(cat "$fb")
    rm -f "$fa" "$fb"
    echo "$a | $b"
    [[ -n "$a" && "$a" == "$b" ]]
}
