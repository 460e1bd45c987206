#!/usr/bin/env bash
#
# test_forwarder_config.sh - the forwarder's configuration and its clear failures:
# - bad configuration (unknown key, bad type, out of range, missing secret file, librdkafka
#   property rejected by us or by librdkafka, bad origin, bad environment value, unknown flag)
#   exits 2 at once, before connecting, with one line naming the key and no secret in it;
#   --check-config and --version;
# - PostgreSQL unreachable: retries (does not exit), never logs the password;
# - wal_level = replica: one clear error saying how to fix it, exit 2;
# - a missing slot without slot.create: exit 3; a dropped slot whose topic holds data, and an
#   invalidated slot (max_slot_wal_keep_size), exit 3 even with slot.create and are never
#   recreated (the topic gets nothing new);
# - TLS: streaming from a cluster that only accepts TLS, with sslmode=verify-full; a wrong CA is
#   refused; SIGHUP does not stop the daemon; SIGTERM while Kafka is down exits within
#   drain.timeout;
# - a row larger than kafka.message.max.bytes: exit 1 naming the limit and the transaction, the
#   slot keeps it; published once the limit is raised.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

SECRET=s3cret-pw-42

h_init
T0=$(h__now_ms)

# ---- bad configuration: exit 2 before connecting, one line naming the key ---------------------
# Nothing listens on port 1: a forwarder that tried to connect would retry, not exit.
cat >"$H_DIR/base.conf" <<EOF
origin = east
pg.conninfo = host=127.0.0.1 port=1 dbname=postgres user=postgres password=$SECRET connect_timeout=2
kafka.bootstrap.servers = 127.0.0.1:1
http.listen =
EOF
echo "$SECRET" >"$H_DIR/pw"

# bad_config DESC EXPECTED_IN_MESSAGE LINE [ARGS...]: the config is base.conf plus LINE
bad_config() {
    local desc=$1 want=$2 line=$3 rc=0 out t0
    shift 3
    { cat "$H_DIR/base.conf"; echo "$line"; } >"$H_DIR/bad.conf"
    t0=$(h__now_ms)
    out=$(timeout -k 2 20 "$FWD" --config "$H_DIR/bad.conf" "$@" 2>&1) || rc=$?
    if ((rc != 2)); then
        h_fail "$desc: expected exit 2, got $rc: $out"
    elif [[ $(wc -l <<<"$out") != 1 ]]; then
        h_fail "$desc: expected one line, got: $out"
    elif [[ "$out" != *level=error*"$want"* ]]; then
        h_fail "$desc: the error does not name '$want': $out"
    elif [[ "$out" == *"$SECRET"* ]]; then
        h_fail "$desc: the error shows the password: $out"
    elif (($(h__now_ms) - t0 > 5000)); then
        h_fail "$desc: took $(($(h__now_ms) - t0)) ms (did it try to connect?)"
    fi
    h_pass "$desc: exit 2, one error line naming $want"
}
bad_config "unknown key" '\"no.such.key\"' "no.such.key = 1"
bad_config "bad duration" '\"heartbeat.interval\"' "heartbeat.interval = soon"
bad_config "bad boolean" '\"slot.create\"' "slot.create = maybe"
bad_config "size out of range" '\"message.max_bytes\"' "message.max_bytes = 1"
bad_config "bad integer" '\"inflight.max_messages\"' "inflight.max_messages = many"
bad_config "bad enum" '\"log.level\"' "log.level = loud"
bad_config "missing secret file" '\"pg.password_file\"' "pg.password_file = $H_DIR/no-such-file"
bad_config "librdkafka property refused by xdcr" "kafka.acks" "kafka.acks = 0"
bad_config "idempotence cannot be turned off" "kafka.enable.idempotence" "kafka.enable.idempotence = false"
bad_config "librdkafka rejects an unknown property" "kafka.no.such" "kafka.no.such = 1"
bad_config "librdkafka rejects a bad value" "kafka.compression.type" "kafka.compression.type = zip"
bad_config "invalid origin name" 'origin \"bad/origin\"' "origin = bad/origin"
bad_config "unknown flag" '\"no-such-flag\"' "" --no-such-flag
XDCR_HEARTBEAT_INTERVAL=bad bad_config "bad value in the environment" "XDCR_HEARTBEAT_INTERVAL" ""
bad_config "missing required key" '\"kafka.bootstrap.servers\"' "kafka.bootstrap.servers ="

h_check "--check-config accepts a good configuration without connecting" \
    timeout -k 5 10 "$FWD" --config "$H_DIR/base.conf" --check-config
h_assert_eq "configuration ok" "$H_OUT" "... and says so"
h_check "--check-config accepts pg.password_file" \
    timeout -k 5 10 "$FWD" --config "$H_DIR/base.conf" "--pg.password_file=$H_DIR/pw" --check-config
h_check "--version" timeout -k 5 10 "$FWD" --version
h_assert_contains "$H_OUT" "xdcr-forwarder " "--version prints the program and version"

# ---- PostgreSQL unreachable: retry with backoff, never exit, never log the password -----------
fwd_start unreachable "$H_DIR/base.conf"
sleep 3
h_check "PostgreSQL unreachable: the forwarder keeps retrying" h_daemon_alive unreachable
h_daemon_stop unreachable >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "... and stops cleanly on SIGTERM"
if grep -q "$SECRET" "$(h_daemon_log unreachable)"; then
    h_fail "the password from pg.conninfo appears in the log"
fi
h_pass "the password from pg.conninfo never appears in the log"

# ---- a cluster with wal_level = replica ----------------------------------------------------------
h_pg_start replica --set wal_level=replica >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.inv.changes:1 \
    --topic xdcr.tls.changes:1
fwd_conf "$H_DIR/replica.conf" east replica
fwd_start walrep "$H_DIR/replica.conf"
h_daemon_wait walrep 30 >/dev/null
h_assert_eq 2 "$H_LAST_EXIT" "wal_level = replica: exit 2 (configuration of the source)"
log=$(grep 'level=error' "$(h_daemon_log walrep)")
h_assert_eq 1 "$(grep -c . <<<"$log")" "... one error line"
h_assert_contains "$log" 'wal_level is \"replica\"' "... saying what is wrong"
h_assert_contains "$log" "wal_level = logical" "... and how to fix it"
h_assert_eq 0 "$(h_psql replica "SELECT count(*) FROM pg_replication_slots")" "... and no slot was created"

# ---- TLS-only source (verify-full) -----------------------------------------------------------------
h_pg_start east --ssl >/dev/null
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null
fwd_conf "$H_DIR/tls.conf" tls east
h_assert_contains "$(grep pg.conninfo "$H_DIR/tls.conf")" "sslmode=verify-full" "the conninfo asks for verify-full"
fwd_start tls "$H_DIR/tls.conf"
fwd_wait_streaming east xdcr_tls
h_assert_eq t "$(h_psql east "SELECT s.ssl FROM pg_replication_slots r JOIN pg_stat_ssl s
    ON s.pid = r.active_pid WHERE r.slot_name = 'xdcr_tls'")" "the walsender's connection uses TLS"
h_psql east "INSERT INTO t VALUES (1, 'over TLS')" >/dev/null
fwd_wait_confirmed 30 east xdcr_tls
h_daemon_signal tls HUP
sleep 0.5
h_check "SIGHUP does not stop the forwarder" h_daemon_alive tls
# SIGTERM while Kafka is down: drain.timeout (3s) bounds the exit
h_check "all brokers down" h_broker_ctl broker-down all
h_psql east "INSERT INTO t VALUES (2, 'while Kafka is down')" >/dev/null
sleep 0.5
t0=$(h__now_ms)
h_daemon_stop tls >/dev/null
took=$(($(h__now_ms) - t0))
h_assert_eq 0 "$H_LAST_EXIT" "SIGTERM while Kafka is down: exit 0"
((took < 8000)) || h_fail "SIGTERM while Kafka is down took ${took} ms (drain.timeout is 3s)"
h_pass "... within ${took} ms"
h_check "all brokers up" h_broker_ctl broker-up all
fwd_start tls "$H_DIR/tls.conf"
fwd_wait_confirmed 30 east xdcr_tls "after the restart"
h_daemon_stop tls >/dev/null
fwd_tail xdcr.tls.changes "$H_DIR/tls.jsonl"
fwd_check_stream "TLS: the stream holds both transactions" "$H_DIR/tls.jsonl"
fwd_check_state "TLS: replayed rows equal the source" "$H_DIR/tls.jsonl" east --table public.t
# a row larger than kafka.message.max.bytes: a clear error naming the position, nothing confirmed
fwd_conf "$H_DIR/big.conf" big east "publication.create = false" "publication.name = xdcr_tls"
fwd_start big "$H_DIR/big.conf"
fwd_wait_streaming east xdcr_big
before=$(fwd_slot_confirmed east xdcr_big)
h_psql east "INSERT INTO t SELECT 10, string_agg(md5(g::text), '') FROM generate_series(1, 50000) g" >/dev/null
h_daemon_wait big 30 >/dev/null
h_assert_eq 1 "$H_LAST_EXIT" "a 1.6 MB row with kafka.message.max.bytes at 1 MB: exit 1"
log=$(grep 'level=error' "$(h_daemon_log big)")
h_assert_contains "$log" "larger than kafka.message.max.bytes" "... the error names the limit"
h_assert_contains "$log" 'msg="stopped on an unrecoverable error" error="transaction at ' "... and the transaction's position"
h_check "... and the slot did not confirm it" fwd_slot_reached east xdcr_big "$before"
h_assert_eq f "$(h_psql east "SELECT confirmed_flush_lsn > '$before' FROM pg_replication_slots WHERE slot_name = 'xdcr_big'")" \
    "... its confirmed position did not move"
fwd_start big "$H_DIR/big.conf" --kafka.message.max.bytes=4000000
fwd_wait_confirmed 30 east xdcr_big "with a larger kafka.message.max.bytes"
h_daemon_stop big >/dev/null
fwd_tail xdcr.big.changes "$H_DIR/big.jsonl"
h_assert_eq 1600000 "$(fwd_py "$H_DIR/big.jsonl" <<<'print(sum(len(c["new"]["v"]) for t in s.txns() for c in t.changes if c["new"]["id"] == "10"))')" \
    "after raising kafka.message.max.bytes the row is published"

# a server certificate not signed by the given CA is refused
fwd_conf "$H_DIR/wrongca.conf" wrongca east \
    "pg.conninfo = host=127.0.0.1 port=$(h_pg_port east) user=postgres dbname=postgres sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt"
fwd_start wrongca "$H_DIR/wrongca.conf"
sleep 2
h_check "verify-full with another CA: the forwarder keeps retrying" h_daemon_alive wrongca
h_assert_eq 0 "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_wrongca'")" \
    "... and never got to create its slot"
h_daemon_stop wrongca >/dev/null

# ---- publications: created for the configured tables; a missing one is a clear error ------------
h_psql east "CREATE TABLE other (id integer PRIMARY KEY)" >/dev/null
fwd_conf "$H_DIR/pubt.conf" pubt east "publication.tables = public.t"
fwd_start pubt "$H_DIR/pubt.conf"
fwd_wait_streaming east xdcr_pubt
h_assert_eq "public.t" "$(h_psql east "SELECT schemaname || '.' || tablename FROM pg_publication_tables
    WHERE pubname = 'xdcr_pubt'")" "publication.tables: the created publication holds only those tables"
h_daemon_stop pubt >/dev/null
fwd_conf "$H_DIR/nopub.conf" nopub east "publication.create = false"
fwd_start nopub "$H_DIR/nopub.conf"
h_daemon_wait nopub 30 >/dev/null
h_assert_eq 2 "$H_LAST_EXIT" "a missing publication without publication.create is a configuration error: exit 2"
h_assert_contains "$(grep 'level=error' "$(h_daemon_log nopub)")" 'publication \"xdcr_nopub\" does not exist' \
    "a missing publication without publication.create: exit $H_LAST_EXIT naming it"

# ---- slots: missing, dropped, invalidated -----------------------------------------------------------
fwd_conf "$H_DIR/noslot.conf" noslot east "slot.create = false"
fwd_start noslot "$H_DIR/noslot.conf"
h_daemon_wait noslot 30 >/dev/null
h_assert_eq 3 "$H_LAST_EXIT" "a missing slot without slot.create: exit 3"
h_assert_contains "$(grep 'level=error' "$(h_daemon_log noslot)")" "slot.create" "... the error says how to create it"
h_assert_eq 0 "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_noslot'")" \
    "... and no slot was created"

# a slot that streamed, then is invalidated because it kept too much WAL
fwd_conf "$H_DIR/inv.conf" inv east
fwd_start inv "$H_DIR/inv.conf"
fwd_wait_streaming east xdcr_inv
h_psql east "INSERT INTO t VALUES (3, 'before the slot is lost')" >/dev/null
fwd_wait_confirmed 30 east xdcr_inv
h_daemon_stop inv >/dev/null
h_psql east "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'" "SELECT pg_reload_conf()" >/dev/null
h_psql east "CREATE TABLE filler (v text)" >/dev/null
# shellcheck disable=SC2317 # called through h_wait_for
invalidate() {
    h_psql east "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)" \
        "SELECT pg_switch_wal()" "CHECKPOINT" >/dev/null
    [[ "$(h_psql east "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'xdcr_inv'")" == lost ]]
}
h_wait_for 60 "the slot to be invalidated" invalidate
read -r lo hw < <(timeout -k 5 30 "$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka" watermarks \
    --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.inv.changes --partition 0)
fwd_start inv "$H_DIR/inv.conf"
h_daemon_wait inv 30 >/dev/null
h_assert_eq 3 "$H_LAST_EXIT" "an invalidated slot: exit 3, even with slot.create = true"
log=$(grep 'level=error' "$(h_daemon_log inv)")
h_assert_contains "$log" "invalidated" "... the error says the slot was invalidated"
h_assert_eq "lost " "$(h_psql east "SELECT wal_status, restart_lsn FROM pg_replication_slots WHERE slot_name = 'xdcr_inv'" | tr '|' ' ')" \
    "... the slot is left as it is (not dropped, not recreated)"
((hw > 0)) || h_fail "the topic of the lost slot is empty: the test wrote nothing through it"
h_assert_eq "$lo $hw" "$(timeout -k 5 30 "$XDCR_BUILD_DIR/tests/support/xdcr-test-kafka" watermarks \
    --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.inv.changes --partition 0)" \
    "... and nothing new was published"

# the operator drops the lost slot: with data in the topic, slot.create must still refuse
h_psql east "SELECT pg_drop_replication_slot('xdcr_inv')" >/dev/null
fwd_start inv "$H_DIR/inv.conf"
h_daemon_wait inv 30 >/dev/null
h_assert_eq 3 "$H_LAST_EXIT" "a dropped slot whose topic holds data: exit 3, even with slot.create = true"
h_assert_eq 0 "$(h_psql east "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'xdcr_inv'")" \
    "... and the slot was not recreated at the current position"

h__note "test_forwarder_config took $((($(h__now_ms) - T0) / 1000))s"
h_finish
