# shellcheck shell=bash
#
# workloads.sh - W1 bulk, W2 OLTP, W3 updates on bench_items at the source (src).
#
#   W1  BENCH_W1_ROWS rows inserted in BENCH_W1_TXN-row transactions (INSERT ... SELECT
#       generate_series), one client.
#   W2  BENCH_W2_TXNS single-row transactions from 4 pgbench clients (-t per client), weighted
#       scripts: 70% insert (new id from a source-only sequence), 25% update of an existing id
#       (preloaded first half), 5% delete of an existing id (a second source-only sequence walks
#       up through the preloaded second half, so every delete hits a row).
#   W3  BENCH_W3_ROWS updates in BENCH_W3_TXN-row transactions over BENCH_W3_ROWS preloaded
#       rows (each row updated once).
# Every row written carries updated_at = clock_timestamp().

BENCH_W2_CLIENTS=4

bench_workload_rows() { # the row (W1, W3) or transaction (W2) count a rate is computed from
    case "$1" in
    W1) echo "$BENCH_W1_ROWS" ;;
    W2) echo "$BENCH_W2_TXNS" ;;
    W3) echo "$BENCH_W3_ROWS" ;;
    esac
}

bench_workload_desc() {
    case "$1" in
    W1) echo "bulk: $BENCH_W1_ROWS rows inserted in $BENCH_W1_TXN-row transactions" ;;
    W2) echo "OLTP: $BENCH_W2_TXNS single-row transactions from $BENCH_W2_CLIENTS clients (70% insert, 25% update, 5% delete), $BENCH_W2_PRELOAD rows preloaded" ;;
    W3) echo "updates: $BENCH_W3_ROWS updates in $BENCH_W3_TXN-row transactions over $BENCH_W3_ROWS preloaded rows" ;;
    esac
}

# bench_workload_prepare : write the workload files into $H_DIR/wl (once per run of run.sh).
bench_workload_prepare() {
    local d="$H_DIR/wl" i lo hi
    mkdir -p "$d"
    : >"$d/w1.sql"
    for ((i = 0; i * BENCH_W1_TXN < BENCH_W1_ROWS; i++)); do
        lo=$((i * BENCH_W1_TXN + 1))
        hi=$(((i + 1) * BENCH_W1_TXN))
        ((hi <= BENCH_W1_ROWS)) || hi=$BENCH_W1_ROWS
        echo "INSERT INTO bench_items (id, account, amount, note, updated_at) SELECT g, g % 1000, (g % 100000) / 100.0, md5(g::text), clock_timestamp() FROM generate_series($lo, $hi) g;"
    done >>"$d/w1.sql"
    : >"$d/w3.sql"
    for ((i = 0; i * BENCH_W3_TXN < BENCH_W3_ROWS; i++)); do
        lo=$((i * BENCH_W3_TXN + 1))
        hi=$(((i + 1) * BENCH_W3_TXN))
        ((hi <= BENCH_W3_ROWS)) || hi=$BENCH_W3_ROWS
        echo "UPDATE bench_items SET amount = amount + 1, updated_at = clock_timestamp() WHERE id BETWEEN $lo AND $hi;"
    done >>"$d/w3.sql"
    cat >"$d/w2_insert.sql" <<'EOF'
\set acct random(0, 999)
\set cents random(1, 99999999)
INSERT INTO bench_items (id, account, amount, note, updated_at) VALUES (nextval('bench_w2_ins'), :acct, :cents / 100.0, md5(:cents::text), clock_timestamp());
EOF
    cat >"$d/w2_update.sql" <<'EOF'
\set uid random(1, :n_upd)
\set cents random(1, 99999999)
UPDATE bench_items SET amount = :cents / 100.0, note = md5(:uid::text || :cents::text), updated_at = clock_timestamp() WHERE id = :uid;
EOF
    cat >"$d/w2_delete.sql" <<'EOF'
DELETE FROM bench_items WHERE id = (SELECT nextval('bench_w2_del'));
EOF
}

bench_w2_cmd() { # the pgbench command line of W2 (printed into RESULTS.md too)
    local per_client=$((BENCH_W2_TXNS / BENCH_W2_CLIENTS)) d="$H_DIR/wl"
    echo "$H_PG_BIN/pgbench -n -M prepared -c $BENCH_W2_CLIENTS -j 2 -t $per_client" \
        "-D n_upd=$((BENCH_W2_PRELOAD / 2)) -f $d/w2_insert.sql@70 -f $d/w2_update.sql@25" \
        "-f $d/w2_delete.sql@5 -h $H_DIR/pg/src/sock -p $(h_pg_port src) -U postgres postgres"
}

# bench_workload_run W LOGFILE : run W against src (bounded); status non-zero on failure.
bench_workload_run() {
    local w=$1 log=$2 cmd
    case "$w" in
    W1)
        b_cmd "W1 (psql, one transaction per statement)" \
            "psql -X -v ON_ERROR_STOP=1 -d '<src>' -f w1.sql   # $((BENCH_W1_ROWS / BENCH_W1_TXN)) statements like:
$(head -n 1 "$H_DIR/wl/w1.sql")"
        b_sql_file src "$H_DIR/wl/w1.sql" >"$log" 2>&1
        ;;
    W2)
        cmd=$(bench_w2_cmd)
        b_cmd "W2 (pgbench)" "$cmd
# w2_insert.sql:
$(cat "$H_DIR/wl/w2_insert.sql")
# w2_update.sql:
$(cat "$H_DIR/wl/w2_update.sql")
# w2_delete.sql:
$(cat "$H_DIR/wl/w2_delete.sql")"
        # shellcheck disable=SC2086
        timeout -k 5 "$BENCH_SQL_TIMEOUT" $cmd >"$log" 2>&1 || return 1
        # pgbench exits 0 even when some transactions failed: check the count
        grep -q "number of failed transactions: 0 " "$log" ||
            ! grep -q "number of failed transactions" "$log" || return 1
        grep -qE "number of transactions actually processed: $BENCH_W2_TXNS/$BENCH_W2_TXNS" "$log"
        ;;
    W3)
        b_cmd "W3 (psql, one transaction per statement)" \
            "psql -X -v ON_ERROR_STOP=1 -d '<src>' -f w3.sql   # $((BENCH_W3_ROWS / BENCH_W3_TXN)) statements like:
$(head -n 1 "$H_DIR/wl/w3.sql")"
        b_sql_file src "$H_DIR/wl/w3.sql" >"$log" 2>&1
        ;;
    esac
}
