#!/usr/bin/env bash
#
# test_consumer_static.sh - assignment = static: the consumer reads every partition of its
# origins' topics itself, without a consumer group.
# 1. The broker is down when the consumer starts: it says it cannot read the topics'
#    partitions, keeps trying, and takes them once the broker is back; the changes made
#    meanwhile are applied.
# 2. A second consumer with static assignment, started while the first applies, stands by (the
#    origin's replication origin admits one session at a time) and takes over when the first
#    is killed under load; the first, restarted, stands by in turn. The target ends equal to
#    the source, nothing halts.
# 3. A restart picks up from the stored position (no group, no Kafka offsets involved) and
#    drains a backlog through a 512 kB prefetch (librdkafka stops fetching whenever it is full).
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

SCHEMA_SQL="CREATE TABLE items (id integer PRIMARY KEY, v integer NOT NULL, note text);
            CREATE TABLE log (id bigserial PRIMARY KEY, item integer, at timestamptz DEFAULT now());"

same() { # same TABLE
    local q="SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY id)), 'empty') FROM $1 t"
    h_assert_eq "$(h_psql east "$q")" "$(h_psql west "$q")" "$1 equal to the source"
}

applied_up_to() {
    [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$1'")" == 1 ]]
}

slot_exists() {
    [[ "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_east'")" == 1 ]]
}

log_has() { # log_has DAEMON TEXT
    grep -qF "$2" "$(h_daemon_log "$1")"
}

caught_up() { # caught_up : wait until west has applied everything east committed so far
    local token
    token=$(h_psql east "SELECT pg_current_wal_lsn()")
    h_wait_for 60 "west to apply east up to $token" applied_up_to "$token"
}

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

h_psql east "$SCHEMA_SQL" >/dev/null
h_psql west "$SCHEMA_SQL" >/dev/null
h_psql east "CREATE PUBLICATION xdcr_east FOR TABLE items, log" >/dev/null

fwd_conf "$H_DIR/forwarder.conf" east east "publication.create = false"
cat >"$H_DIR/consumer.conf" <<EOF
origin = west
origins = east
assignment = static
mode = ${XDCR_TEST_CONSUMER_MODE:-active-active}
pg.conninfo = $(h_pg_conninfo west)
batch.max_rows = 300
retry.backoff_initial = 20ms
retry.backoff_max = 200ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
cat >"$H_DIR/load.sql" <<EOF
\\set id random(1, 500)
BEGIN;
INSERT INTO items VALUES (:id, 1, 'x') ON CONFLICT (id) DO UPDATE SET v = items.v + 1;
INSERT INTO log (item) VALUES (:id);
END;
EOF

fwd_start forwarder "$H_DIR/forwarder.conf"
h_wait_for 30 "the forwarder's slot" slot_exists

# 1. broker down at the consumer's start
h_psql east "INSERT INTO items SELECT g, 0, 'before' FROM generate_series(1, 200) g" >/dev/null
h_broker_ctl broker-down 1 >/dev/null
# librdkafka's group debugging shows a JoinGroup request if the consumer ever sent one
h_daemon_start a "$CONS" --config "$H_DIR/consumer.conf" --log.level=debug --kafka.debug=cgrp
h_wait_for 30 "consumer a to report that it cannot read the partitions" \
    log_has a "could not read the topics' partitions from Kafka"
h_check "consumer a has no partition while the broker is down" \
    bash -c "! grep -qF 'msg=\"partition assigned\"' '$(h_daemon_log a)'"
h_broker_ctl broker-up 1 >/dev/null
h_wait_for 30 "consumer a to take the partition" log_has a 'msg="partition assigned"'
h_check "consumer a said so when the broker answered again" \
    log_has a "read the topics' partitions from Kafka again"
h_check "consumer a did not join a group" \
    bash -c "! grep -qE 'JoinGroup|Joining group' '$(h_daemon_log a)'"
caught_up
same items

# 2. a second consumer at the same time stands by: PostgreSQL lets one session at a time hold
#    an origin's replication origin. a is killed under load; b goes on; a comes back as standby.
h_daemon_start load "$H_PG_BIN/pgbench" -n -T 12 -R 400 -c 2 -j 2 -f "$H_DIR/load.sql" \
    "$(h_pg_conninfo east)"
h_daemon_start b "$CONS" --config "$H_DIR/consumer.conf"
h_wait_for 30 "consumer b to take the partition" log_has b 'msg="partition assigned"'
h_wait_for 30 "consumer b to stand by while a applies" log_has b "another session (another consumer?)"
h_daemon_kill a >/dev/null
token=$(h_psql east "SELECT pg_current_wal_lsn()")
h_wait_for 30 "consumer b to apply once a is gone" applied_up_to "$token"
h_check "consumer b said it took over" log_has b "taking over"
h_check "standing by is no failure: b logged no failed target transaction" \
    bash -c "! grep -F 'could not open a target transaction' '$(h_daemon_log b)'"
h_daemon_start a "$CONS" --config "$H_DIR/consumer.conf"
h_daemon_wait load 60 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the load ran"
caught_up
h_check "consumer a is alive" h_daemon_alive a
h_check "consumer b is alive" h_daemon_alive b
h_wait_for 30 "the restarted consumer a to stand by" log_has a "another session (another consumer?)"
same items
same log
h_assert_eq 0 "$(h_psql west "SELECT count(*) FROM xdcr.halts")" "nothing halted"

# 3. a restart goes on from the stored position
h_daemon_stop b >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "b stops cleanly"
h_daemon_stop a >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "a stops cleanly"
h_psql east "UPDATE items SET v = v + 100 WHERE id <= 50; INSERT INTO log (item) VALUES (0)" >/dev/null
# a backlog of small transactions, read back through a prefetch of 512 kB (less than one of
# the forwarder's batches, uncompressed, and more than one compressed): librdkafka stops
# fetching after every batch, and the consumer wakes its fetcher each time
h_daemon_start backlog "$H_PG_BIN/pgbench" -n -t 1000 -c 2 -j 2 -f "$H_DIR/load.sql" \
    "$(h_pg_conninfo east)"
h_daemon_wait backlog 60 >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "the backlog was written"
h_daemon_start a "$CONS" --config "$H_DIR/consumer.conf" --kafka.queued.max.messages.kbytes=512
caught_up
same items
same log
h_check "the restart started from the stored position" \
    bash -c "grep -F 'msg=\"partition assigned\"' '$(h_daemon_log a)' | tail -n 1 | grep -qF 'stored=true'"
h_daemon_stop a >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "clean stop"
h_daemon_stop forwarder >/dev/null
h_finish
