#!/usr/bin/env bash
#
# test_consumer_basic.sh - end to end: source PostgreSQL (east) -> xdcr-forwarder -> dev broker
# -> xdcr-consumer -> target PostgreSQL (west). Many types (a domain, box, arrays, an enum),
# composite and quoted keys, a changed key, unchanged TOAST values, deletes, TRUNCATE, a
# transaction split into many messages; then a clean stop (exit 0) and a catch-up after downtime.
# Every table is compared by content checksum, and the position row by SQL.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

SCHEMA_SQL="
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE items (
    id bigint PRIMARY KEY, name text, doc text, price numeric(12,2), ts timestamptz, d date,
    tags text[], data jsonb, b bytea, m mood, f float8, iv interval, flag boolean, u uuid,
    bx box, dm posint);
ALTER TABLE items ALTER COLUMN doc SET STORAGE EXTERNAL;
CREATE TABLE \"Order Lines\" (
    \"tenant-id\" text, \"order\" bigint, \"Qty\" integer, note text,
    PRIMARY KEY (\"tenant-id\", \"order\"));
CREATE TABLE trunc_me (id integer PRIMARY KEY, v text);
"

# md5 over a table's rows in key order, over the source's columns (the target may have more)
checksum() { # checksum DB TABLE ORDER
    local cols
    cols=$(h_psql east "SELECT string_agg('t.' || quote_ident(attname), ', ' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = '$2'::regclass AND attnum > 0 AND NOT attisdropped")
    h_psql "$1" "SELECT coalesce(md5(string_agg(ROW($cols)::text, '|' ORDER BY $3)), 'empty') FROM $2 t"
}

compare_all() {
    h_assert_eq "$(checksum east items id)" "$(checksum west items id)" "$1: items equal"
    h_assert_eq "$(checksum east '"Order Lines"' '"tenant-id", "order"')" \
        "$(checksum west '"Order Lines"' '"tenant-id", "order"')" "$1: \"Order Lines\" equal"
    h_assert_eq "$(checksum east trunc_me id)" "$(checksum west trunc_me id)" "$1: trunc_me equal"
}

# has west applied everything up to TOKEN?
applied_up_to() {
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$1'")" == 1 ]]
}

wait_for_token() {
    local token
    token=$(h_psql east "SELECT pg_current_wal_lsn()")
    h_wait_for 40 "west to apply up to $token ($1)" applied_up_to "$token"
}

start_consumer() {
    h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf" "$@"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1

h_psql east "$SCHEMA_SQL" >/dev/null
h_psql west "$SCHEMA_SQL" >/dev/null
# an extra column at the target keeps its own values
h_psql west "ALTER TABLE items ADD COLUMN local_note text DEFAULT 'west only'" >/dev/null
h_psql east "CREATE PUBLICATION xdcr_east FOR TABLE items, \"Order Lines\", trunc_me" >/dev/null

cat >"$H_DIR/forwarder.conf" <<EOF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
message.max_bytes = 4096
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
tables = public.items,public.trunc_me
# its own port: the one-way run of this script may run at the same time
http.listen = 127.0.0.1:$(h__free_port)
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
# the dev broker lets a new member in only a session timeout after the last one left
kafka.session.timeout.ms = 6000
EOF

h_check "consumer --check-config accepts the configuration" \
    "$CONS" --config "$H_DIR/consumer.conf" --check-config
h_check_fails "consumer rejects kafka.auto.offset.reset=earliest" \
    "$CONS" --config "$H_DIR/consumer.conf" --check-config --kafka.auto.offset.reset=earliest
h_assert_contains "$H_OUT" "auto.offset.reset" "the error names the key"
h_check_fails "consumer rejects its own origin in origins" \
    "$CONS" --config "$H_DIR/consumer.conf" --check-config --origins=east,west

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}
h_wait_for 30 "the forwarder's slot" slot_exists
start_consumer

# ---- workload 1 -----------------------------------------------------------------------------
h_psql east "
INSERT INTO items (id, name, doc, price, ts, d, tags, data, b, m, f, iv, flag, u, bx, dm)
SELECT g, 'item ' || g,
       CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(random()::text || i), '')
                                  FROM generate_series(1, 300) s(i)) END,
       g * 1.25, '2024-02-29 12:34:56.789+01'::timestamptz + g * interval '1 hour',
       '0044-03-15 BC'::date + g, ARRAY['a', NULL, 'c ' || g, 'quo\"te'],
       jsonb_build_object('k', g, 'nested', jsonb_build_array(1, 'two', NULL)),
       decode(md5(g::text), 'hex'), (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::mood,
       CASE WHEN g = 1 THEN 'NaN' WHEN g = 2 THEN '-Infinity' ELSE g / 3.0 END,
       make_interval(days => g, secs => g * 1.5), g % 2 = 0, gen_random_uuid(),
       box(point(g, -g), point(g + 0.5, 2)), g
FROM generate_series(1, 300) g;
INSERT INTO \"Order Lines\" SELECT 't' || (g % 5), g, g * 2, 'note ' || g FROM generate_series(1, 100) g;
INSERT INTO trunc_me SELECT g, 'v' || g FROM generate_series(1, 20) g;
" >/dev/null
h_psql east "INSERT INTO items (id, name, ts) VALUES (1001, E'unicode \u00e9\u4e2d\U0001F600 and \\\\ backslash', 'infinity')" >/dev/null
h_psql east "UPDATE items SET name = name || ' (renamed)' WHERE id % 10 = 0" >/dev/null # doc: unchanged TOAST
h_psql east "UPDATE items SET price = NULL, tags = NULL WHERE id BETWEEN 11 AND 20" >/dev/null
h_psql east "DELETE FROM items WHERE id BETWEEN 21 AND 30" >/dev/null
h_psql east "UPDATE \"Order Lines\" SET \"order\" = \"order\" + 1000, note = 'moved' WHERE \"order\" <= 10" >/dev/null
h_psql east "DELETE FROM \"Order Lines\" WHERE \"tenant-id\" = 't1'" >/dev/null
h_psql east "BEGIN; TRUNCATE trunc_me; INSERT INTO trunc_me VALUES (1, 'after truncate'); COMMIT" >/dev/null
# one transaction far larger than message.max_bytes: many parts, applied atomically; one of its
# rows exists at the target already (one-way: its COPY finds it and the group goes by upsert)
h_psql west "INSERT INTO items (id, name) VALUES (11500, 'west had it first')" >/dev/null
h_psql east "INSERT INTO items (id, name, data) SELECT g, repeat('x', 50), jsonb_build_object('big', g) FROM generate_series(10000, 12000) g" >/dev/null

wait_for_token "workload 1"
compare_all "after workload 1"
h_assert_eq "west only" "$(h_psql west "SELECT DISTINCT local_note FROM items")" \
    "the target-only column kept its default"
h_assert_eq "t" "$(h_psql west "SELECT doc IS NOT NULL AND length(doc) = 9600 FROM items WHERE id = 10")" \
    "unchanged TOAST value kept after an update that did not touch it"
h_assert_eq "1" "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND topic = 'xdcr.east.changes' AND partition = 0 AND kafka_offset > 0 AND sysid IS NOT NULL")" \
    "one position row with offset and source identity"
h_assert_eq "0" "$(h_psql west "SELECT count(*) FROM xdcr.dead_letters")" "no dead letters"
h_assert_eq "t" "$(h_psql west "SELECT s.remote_lsn = p.seq FROM pg_replication_origin_status s
    JOIN pg_replication_origin o ON o.roident = s.local_id, xdcr.positions p
    WHERE o.roname = 'xdcr_east' AND p.origin = 'east'")" \
    "replication origin xdcr_east tracks the applied seq"
h_assert_eq "t" "$(h_psql west "SELECT bool_and((pg_xact_commit_timestamp_origin(i.xmin)).roident = o.roident)
    FROM items i, pg_replication_origin o WHERE o.roname = 'xdcr_east'")" \
    "applied rows carry the source's replication origin (loop prevention)"

# COPY groups, one-way only (active-active resolves every row)
HTTP=$(sed -n 's/^http.listen = //p' "$H_DIR/consumer.conf")
copy_groups() { # RESULT
    curl -fsS "http://$HTTP/metrics" | sed -n "s/^xdcr_consumer_copy_groups_total{origin=\"east\",result=\"$1\"} //p"
}
if [[ "${XDCR_TEST_CONSUMER_MODE:-active-active}" == one-way ]]; then
    h_assert_eq 1 "$(copy_groups upserted)" "one-way: the big insert found a row by COPY and went by upsert"
else
    h_assert_eq "0 0" "$(copy_groups copied) $(copy_groups upserted)" "active-active: no COPY"
fi

# ---- clean stop, downtime, catch-up ----------------------------------------------------------
h_daemon_stop consumer >/dev/null
h_assert_eq "0" "$H_LAST_EXIT" "SIGTERM: the consumer drains and exits 0"
h_psql east "UPDATE items SET f = f + 1 WHERE id <= 100" >/dev/null
for i in $(seq 1 50); do
    echo "INSERT INTO \"Order Lines\" VALUES ('t9', $i, $i, 'catch-up'); UPDATE items SET name = 'n$i' WHERE id = $((i + 100));"
done | h_psql east >/dev/null
h_psql east "INSERT INTO items (id, name) SELECT g, 'late' FROM generate_series(20000, 20500) g" >/dev/null
start_consumer
wait_for_token "catch-up"
compare_all "after catch-up"
if [[ "${XDCR_TEST_CONSUMER_MODE:-active-active}" == one-way ]]; then
    h_assert_eq "1 0" "$(copy_groups copied) $(copy_groups upserted)" \
        "one-way: the 501 new rows went by one COPY"
    missing_updates() {
        curl -fsS "http://$HTTP/metrics" | sed -n 's/^xdcr_consumer_missing_rows_total{origin="east",op="update"} //p'
    }
    range_sum() { # range_sum DB LO HI COLUMNS : md5 of items LO..HI over COLUMNS
        h_psql "$1" "SELECT md5(string_agg(($4)::text, '|' ORDER BY id)) FROM items WHERE id BETWEEN $2 AND $3"
    }
    # updates of rows the target does not have (one multi-row statement): inserted from what
    # the update carries, and counted
    h_psql west "DELETE FROM items WHERE id BETWEEN 201 AND 210" >/dev/null
    h_psql east "UPDATE items SET name = 'renamed again' WHERE id BETWEEN 201 AND 210" >/dev/null
    wait_for_token "updates of missing rows"
    h_assert_eq 10 "$(h_psql west "SELECT count(*) FROM items WHERE id BETWEEN 201 AND 210 AND name = 'renamed again'")" \
        "one-way: the 10 updated rows missing at the target were inserted"
    carried="id, name, price, ts, tags, data, m, u, bx, dm" # doc, unchanged TOAST, is not carried
    h_assert_eq "$(range_sum east 201 210 "$carried")" "$(range_sum west 201 210 "$carried")" \
        "... with every column the update carried"
    h_assert_eq 10 "$(missing_updates)" "... and counted as missing"
    # a large group goes by the update alone; it finds rows missing, so the batch is applied
    # again with the statement that inserts them
    h_psql west "DELETE FROM items WHERE id BETWEEN 10100 AND 10249" >/dev/null
    h_psql east "UPDATE items SET name = 'large group' WHERE id BETWEEN 10000 AND 10399" >/dev/null
    wait_for_token "a large update group with missing rows"
    h_assert_eq 400 "$(h_psql west "SELECT count(*) FROM items WHERE id BETWEEN 10000 AND 10399 AND name = 'large group'")" \
        "one-way: a 400-row update with 150 rows missing at the target applied them all"
    every="id, name, doc, price, ts, d, tags, data, b, m, f, iv, flag, u, bx, dm"
    h_assert_eq "$(range_sum east 10000 10399 "$every")" "$(range_sum west 10000 10399 "$every")" \
        "... equal to the source's rows"
    h_assert_eq 160 "$(missing_updates)" "... the 150 counted as missing"
    h_assert_contains "$(cat "$(h_daemon_log consumer)")" "150 of 400 rows are missing at the target" \
        "... after the update alone found them missing"
fi
h_assert_eq "0" "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "nothing halted"
h_assert_eq "t" "$(h_psql west "SELECT lag_bytes IS NOT NULL AND lag_seconds < 60 FROM xdcr.lag WHERE origin = 'east'")" \
    "the lag view shows the origin"

h_daemon_stop consumer >/dev/null
h_assert_eq "0" "$H_LAST_EXIT" "second clean stop exits 0"
h_daemon_stop forwarder >/dev/null
h_finish
