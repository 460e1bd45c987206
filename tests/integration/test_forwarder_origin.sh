#!/usr/bin/env bash
#
# test_forwarder_origin.sh - loop prevention: transactions applied under a replication origin
# (a session origin, and an origin with pg_replication_origin_xact_setup as the consumer uses it)
# are not forwarded by default, while progress marks and the slot's confirmed position still move
# past them; a second forwarder with forward_origins = true forwards them, with the same seq.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

h_init
T0=$(h__now_ms)
h_pg_start east >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.eastall.changes:1
h_psql east "CREATE TABLE t (id integer PRIMARY KEY, v text)" >/dev/null
fwd_conf "$H_DIR/east.conf" east east
fwd_conf "$H_DIR/eastall.conf" eastall east "forward_origins = true"
fwd_start fwd "$H_DIR/east.conf"
fwd_start fwdall "$H_DIR/eastall.conf"
fwd_wait_streaming east xdcr_east xdcr_eastall

h_psql east "SELECT pg_replication_origin_create('xdcr_west')" >/dev/null
h_psql east "INSERT INTO t VALUES (1, 'local')" >/dev/null
# a session under a replication origin: every transaction it commits carries the origin
h_psql east "SELECT pg_replication_origin_session_setup('xdcr_west')" \
    "INSERT INTO t VALUES (2, 'applied from west')" \
    "UPDATE t SET v = 'changed by west' WHERE id = 1" >/dev/null
h_psql east "INSERT INTO t VALUES (3, 'local again')" >/dev/null
# as the consumer applies: the origin's commit LSN and timestamp set per transaction
h_psql east "SELECT pg_replication_origin_session_setup('xdcr_west')" "BEGIN" \
    "SELECT pg_replication_origin_xact_setup('0/AB000000', '2026-01-01 00:00:00+00')" \
    "INSERT INTO t VALUES (4, 'applied from west, xact setup')" "DELETE FROM t WHERE id = 3" \
    "COMMIT" >/dev/null
h_assert_eq "3" "$(h_psql east "SELECT count(*) FROM t WHERE pg_xact_commit_timestamp_origin(xmin) IS NOT NULL
    AND (pg_xact_commit_timestamp_origin(xmin)).roident <> 0")" \
    "the source recorded the origin for the rows written under it"

# the last transactions carry the origin: the slot must still confirm past them
fwd_wait_confirmed 30 east xdcr_east "past the skipped transactions"
# WAL of another database is not decoded for this slot: it must not be retained for ever either
h_psql east "CREATE DATABASE other" >/dev/null
psql -XAtq -v ON_ERROR_STOP=1 -d "$(h_pg_conninfo east | sed 's/dbname=postgres/dbname=other/')" \
    -c "CREATE TABLE o (id integer PRIMARY KEY)" \
    -c "INSERT INTO o SELECT generate_series(1, 10000)" >/dev/null
fwd_wait_confirmed 30 east xdcr_east "past the writes of another database"
h_pass "the slot confirms past writes it does not publish (another database)"
fwd_wait_confirmed 30 east xdcr_eastall
sleep 0.5 # one more progress mark
h_daemon_stop fwd >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "forwarder east exits 0"
h_daemon_stop fwdall >/dev/null
h_assert_eq 0 "$H_LAST_EXIT" "forwarder eastall exits 0"
fwd_tail xdcr.east.changes "$H_DIR/east.jsonl"
fwd_tail xdcr.eastall.changes "$H_DIR/eastall.jsonl"
fwd_check_stream "east: stream contract holds" "$H_DIR/east.jsonl"
fwd_check_stream "eastall: stream contract holds" "$H_DIR/eastall.jsonl"

summary() {
    fwd_py "$1" <<'EOF'
for t in s.txns():
    print(t.xid, hex(t.seq), " ".join("%s:%s" % (c["op"], (c.get("new") or c.get("old"))["id"])
                                     for c in t.changes if c.get("table") == "t"))
print("max_mark", hex(max(lsn(m["seq"]) for m in s.marks())))
EOF
}
east=$(summary "$H_DIR/east.jsonl") || h_fail "python failed: $east"
all=$(summary "$H_DIR/eastall.jsonl") || h_fail "python failed: $all"
h__note "east: ${east//$'\n'/; }"
h__note "eastall: ${all//$'\n'/; }"
h_assert_eq "I:1 I:3" "$(grep -v max_mark <<<"$east" | cut -d' ' -f3- | tr '\n' ' ' | sed 's/ $//')" \
    "default: only the local transactions are forwarded"
h_assert_eq "I:1|I:2|U:1|I:3|I:4 D:3" "$(grep -v max_mark <<<"$all" | cut -d' ' -f3- | paste -sd'|')" \
    "forward_origins = true: the transactions applied under an origin are forwarded too"
h_assert_eq "$(grep -v max_mark <<<"$east" | cut -d' ' -f1,2 | paste -sd' ')" \
    "$(grep -v max_mark <<<"$all" | sed -n '1p;4p' | cut -d' ' -f1,2 | paste -sd' ')" \
    "the local transactions have the same xid and seq in both streams"
last_skipped=$(grep -v max_mark <<<"$all" | tail -n 1 | cut -d' ' -f2)
east_mark=$(grep max_mark <<<"$east" | cut -d' ' -f2)
if (($(printf '%d' "$east_mark") < $(printf '%d' "$last_skipped"))); then
    h_fail "east's progress marks ($east_mark) never passed the skipped transaction ($last_skipped)"
fi
h_pass "east's progress marks move past the skipped transactions ($east_mark >= $last_skipped)"

h__note "test_forwarder_origin took $((($(h__now_ms) - T0) / 1000))s"
h_finish
