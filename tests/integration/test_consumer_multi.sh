#!/usr/bin/env bash
#
# test_consumer_multi.sh - one consumer applies two remote origins at once (east and north, each
# with its forwarder and topic) into west, under concurrent load on both sources: each target
# transaction holds one origin only (its own replication origin), both positions advance, every
# table ends equal to its source.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"

FWD="$XDCR_BUILD_DIR/forwarder/xdcr-forwarder"
CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

same() { # same SOURCE TABLE
    local q="SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY id)), 'empty') FROM $2 t"
    h_assert_eq "$(h_psql "$1" "$q")" "$(h_psql west "$q")" "$2 equal to $1"
}

applied_up_to() { # applied_up_to ORIGIN TOKEN
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = '$1' AND seq >= '$2'")" == 1 ]]
}

slot_exists() { # slot_exists DB SLOT
    [[ "$(h_psql "$1" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$2'")" == 1 ]]
}

h_init
h_pg_start east >/dev/null
h_pg_start north >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.north.changes:1

h_psql east "CREATE TABLE east_t (id integer PRIMARY KEY, v integer, note text);
             CREATE PUBLICATION xdcr_east FOR TABLE east_t" >/dev/null
h_psql north "CREATE TABLE north_t (id integer PRIMARY KEY, v integer, note text);
              CREATE PUBLICATION xdcr_north FOR TABLE north_t" >/dev/null
h_psql west "CREATE TABLE east_t (id integer PRIMARY KEY, v integer, note text);
             CREATE TABLE north_t (id integer PRIMARY KEY, v integer, note text)" >/dev/null

for o in east north; do
    cat >"$H_DIR/fwd-$o.conf" <<EOF
origin = $o
pg.conninfo = $(h_pg_conninfo "$o")
slot.create = true
heartbeat.interval = 200ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
    h_daemon_start "fwd-$o" "$FWD" --config "$H_DIR/fwd-$o.conf"
    h_wait_for 30 "the $o forwarder's slot" slot_exists "$o" "xdcr_$o"
    cat >"$H_DIR/load-$o.sql" <<EOF
\\set id random(1, 2000)
INSERT INTO ${o}_t VALUES (:id, 1, 'x') ON CONFLICT (id) DO UPDATE SET v = ${o}_t.v + 1;
EOF
done
cat >"$H_DIR/consumer.conf" <<EOF
origin = west
origins = east, north
mode = ${XDCR_TEST_CONSUMER_MODE:-active-active}
pg.conninfo = $(h_pg_conninfo west)
batch.max_rows = 500
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

for o in east north; do
    h_daemon_start "load-$o" "$H_PG_BIN/pgbench" -n -T 8 -R 400 -c 2 -j 2 -f "$H_DIR/load-$o.sql" \
        "$(h_pg_conninfo "$o")"
done
for o in east north; do
    h_daemon_wait "load-$o" 40 >/dev/null
    h_assert_eq 0 "$H_LAST_EXIT" "load on $o ran"
done
for o in east north; do
    token=$(h_psql "$o" "SELECT pg_current_wal_lsn()")
    h_wait_for 40 "west to apply $o up to $token" applied_up_to "$o" "$token"
done
same east east_t
same north north_t
h_assert_eq "2" "$(h_psql west "SELECT count(*) FROM pg_replication_origin_status s
    JOIN pg_replication_origin o ON o.roident = s.local_id
    WHERE o.roname IN ('xdcr_east', 'xdcr_north') AND s.remote_lsn > '0/0'")" \
    "both replication origins advanced"
h_assert_eq "t" "$(h_psql west "SELECT bool_and((pg_xact_commit_timestamp_origin(t.xmin)).roident = o.roident)
    FROM north_t t, pg_replication_origin o WHERE o.roname = 'xdcr_north'")" \
    "north's rows were committed under north's replication origin only"
h_daemon_stop consumer >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
h_finish
