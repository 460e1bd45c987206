#!/usr/bin/env bash
#
# test_conflict_policies.sh - every conflict kind under each policy, deterministically: east's
# forwarder publishes, west's consumer applies into a database that is also written locally.
# The consumer is stopped while both sides write the same keys (in a known order, so commit
# times are known), then started: per table policy (conflict.table_policies), the outcome, the
# conflict rows (both versions, both origins and times, the resolution) and the metrics are
# checked. Then: conflict.policy = error halts the origin until an operator skips the
# transaction; expired tombstones are removed; a missing track_commit_timestamp is refused.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
TABLES=(t_lww t_keep t_remote t_err)

h_init
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1

ddl=""
for t in "${TABLES[@]}"; do
    ddl+="CREATE TABLE $t (id integer PRIMARY KEY, v text, n integer);"
done
h_psql east "$ddl CREATE PUBLICATION xdcr_east FOR TABLE t_lww, t_keep, t_remote, t_err" >/dev/null
h_psql west "$ddl" >/dev/null

cat >"$H_DIR/forwarder.conf" <<EOF
origin = east
pg.conninfo = $(h_pg_conninfo east)
slot.create = true
heartbeat.interval = 200ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
ADDR=127.0.0.1:$(h__free_port)
cat >"$H_DIR/consumer.conf" <<EOF
origin = west
origins = east
pg.conninfo = $(h_pg_conninfo west)
tables = public.t_lww, public.t_keep, public.t_remote, public.t_err
conflict.table_policies = public.t_keep=keep_local, t_remote=apply_remote, public.t_err=error
conflict.tombstone_retention = 1min
halt.check_interval = 500ms
http.listen = $ADDR
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
kafka.fetch.wait.max.ms = 20
EOF
# the configuration is checked before anything connects
h_check "the configuration passes --check-config" "$CONS" --config "$H_DIR/consumer.conf" --check-config
h_check_fails "an unknown policy is refused" "$CONS" --config "$H_DIR/consumer.conf" \
    --check-config --conflict.table_policies=public.t_lww=newest_wins
h_assert_contains "$H_OUT" "unknown policy" "... naming the problem"
h_check_fails "an item without = is refused" "$CONS" --config "$H_DIR/consumer.conf" \
    --check-config --conflict.table_policies=public.t_lww
h_check_fails "an unknown mode is refused" "$CONS" --config "$H_DIR/consumer.conf" \
    --check-config --mode=multi-master

h_daemon_start forwarder "$FWD" --config "$H_DIR/forwarder.conf"
fwd_wait_streaming east xdcr_east
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"

applied_all() { # west applied everything east wrote so far
    local tok
    tok=$(h_psql east "SELECT pg_current_wal_lsn()")
    h_wait_for 40 "west to apply east up to $tok" bash -c \
        "[[ \$(psql -XAtq -d '$(h_pg_conninfo west)' -c \"SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$tok'\") == 1 ]]"
}
on_all() { # on_all DB SQL-with-@ : run SQL for each table but t_err (@ = the table)
    local sql="" t
    for t in t_lww t_keep t_remote; do sql+="${2//@/$t};"; done
    h_psql "$1" "$sql" >/dev/null
}
row() { h_psql west "SELECT coalesce((SELECT v FROM $1 WHERE id = $2), 'none')"; }

# the shared starting point: these rows exist on both sides (replicated from east)
BASE="2 3 4 5 10 11 12"
on_all east "INSERT INTO @ SELECT g, 'base', 0 FROM unnest('{${BASE// /,}}'::int[]) g"
applied_all
h_assert_eq base "$(row t_lww 12)" "rows replicated before the conflicts"

# ---- conflicting writes while the consumer is away, in a known order --------------------------
h_daemon_stop consumer >/dev/null
# west first (east's changes below are newer)
on_all west "INSERT INTO @ VALUES (1, 'west', 0)"  # insert/insert
on_all west "UPDATE @ SET v = 'west' WHERE id = 5" # update/update
on_all west "DELETE FROM @ WHERE id = 10"          # delete/delete (tombstone)
on_all west "INSERT INTO @ VALUES (13, 'west', 0); DELETE FROM @ WHERE id = 13" # a tombstone only
# rows gone without a trace (no trigger under replica): east's changes find them missing
on_all west "SET session_replication_role = replica; DELETE FROM @ WHERE id IN (11, 12);
             SET session_replication_role = origin"
# east
on_all east "INSERT INTO @ VALUES (1, 'east', 0)"
on_all east "UPDATE @ SET v = 'east' WHERE id = 2" # update/update, west newer (below)
on_all east "UPDATE @ SET v = 'east' WHERE id = 3" # update/delete, west's delete newer
on_all east "DELETE FROM @ WHERE id = 4"           # delete/update, west's update newer
on_all east "UPDATE @ SET v = 'east' WHERE id = 5"
on_all east "INSERT INTO @ VALUES (6, 'east', 0); DELETE FROM @ WHERE id = 6" # no conflict
on_all east "DELETE FROM @ WHERE id = 10"
on_all east "DELETE FROM @ WHERE id = 11"          # delete of a missing row
on_all east "UPDATE @ SET v = 'east' WHERE id = 12" # update of a missing row
on_all east "INSERT INTO @ VALUES (13, 'east', 0)"  # insert over west's (older) tombstone
# west last (newer than east's changes above)
on_all west "UPDATE @ SET v = 'west' WHERE id = 2"
on_all west "DELETE FROM @ WHERE id = 3"
on_all west "UPDATE @ SET v = 'west' WHERE id = 4"
on_all west "INSERT INTO @ VALUES (7, 'west', 0)"
on_all east "INSERT INTO @ VALUES (7, 'east', 0)"  # insert/insert, east newer again
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"
applied_all

IDS="1 2 3 4 5 6 7 10 11 12 13"
declare -A WANT=(
    [t_lww]="east west none west east none east none none east east"
    [t_keep]="west west none west west none west none none none none"
    [t_remote]="east east east none east none east none none east east"
)
for t in t_lww t_keep t_remote; do
    got=""
    for id in $IDS; do got+="$(row "$t" "$id") "; done
    h_assert_eq "${WANT[$t]}" "${got% }" "$t: rows $IDS after the conflicts"
done

kinds() { # kinds TABLE: id:kind:resolution of the conflicts recorded, in order
    h_psql west "SELECT string_agg((key->>'id') || ':' || kind || ':' || resolution, ' ' ORDER BY id)
                 FROM xdcr.conflicts WHERE table_name = '\"public\".\"$1\"'"
}
A=apply_remote
K=keep_local
h_assert_eq "1:insert_exists:$A 2:update_exists:$K 3:update_deleted:$K 4:delete_exists:$K 5:update_exists:$A 10:delete_deleted:$A 11:delete_missing:$A 12:update_missing:$A 13:insert_deleted:$A 7:insert_exists:$A" \
    "$(kinds t_lww)" "last_writer_wins: kinds and resolutions"
h_assert_eq "1:insert_exists:$K 2:update_exists:$K 3:update_deleted:$K 4:delete_exists:$K 5:update_exists:$K 10:delete_deleted:$K 11:delete_missing:$A 12:update_missing:$K 13:insert_deleted:$K 7:insert_exists:$K" \
    "$(kinds t_keep)" "keep_local: kinds and resolutions"
h_assert_eq "1:insert_exists:$A 2:update_exists:$A 3:update_deleted:$A 4:delete_exists:$A 5:update_exists:$A 10:delete_deleted:$A 11:delete_missing:$A 12:update_missing:$A 13:insert_deleted:$A 7:insert_exists:$A" \
    "$(kinds t_remote)" "apply_remote: kinds and resolutions"
h_assert_eq "west|west|east|east|true" \
    "$(h_psql west "SELECT local_origin || '|' || (local_row->>'v') || '|' || remote_origin || '|'
                           || (remote_row->>'v') || '|' || (local_commit_time > remote_commit_time)
                    FROM xdcr.conflicts WHERE table_name = '\"public\".\"t_lww\"'
                     AND key = '{\"id\": \"2\"}'")" \
    "a conflict row holds both versions, both origins and both commit times"
h_assert_eq t "$(h_psql west "SELECT bool_and(local_commit_time > remote_commit_time)
                FROM xdcr.conflicts WHERE resolution = 'keep_local' AND table_name LIKE '%t_lww%'")" \
    "last_writer_wins kept local rows only when they were newer"
metric() {
    curl -s -m 3 "http://$ADDR/metrics" |
        awk -v n="xdcr_consumer_conflicts_total{origin=\"east\",kind=\"$1\",resolution=\"$2\"}" \
            '$1 == n { print $2 }'
}
h_assert_eq 3 "$(metric update_exists keep_local)" "metric: update/update conflicts kept local"
h_assert_eq 3 "$(metric delete_missing apply_remote)" "metric: delete/delete conflicts"

# ---- conflict.policy = error: the origin halts, an operator skips -----------------------------
h_psql east "INSERT INTO t_err VALUES (8, 'east', 0)" >/dev/null
applied_all
h_daemon_stop consumer >/dev/null
h_psql west "UPDATE t_err SET v = 'west' WHERE id = 8" >/dev/null
h_psql east "UPDATE t_err SET v = 'east' WHERE id = 8" >/dev/null
h_psql east "INSERT INTO t_lww VALUES (9, 'after', 0)" >/dev/null
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"
halted() { [[ "$(h_psql west "SELECT count(*) FROM xdcr.halts WHERE origin = 'east'")" == 1 ]]; }
h_wait_for 30 "the origin to halt on the conflict" halted
h_assert_contains "$(h_psql west "SELECT error FROM xdcr.halts")" "conflict update_exists on public.t_err" \
    "the halt names the conflict and the table"
h_assert_eq "west|none" "$(row t_err 8)|$(row t_lww 9)" "nothing of the transaction or later applied"
h_daemon_wait consumer 30 >/dev/null # its only origin halted: it exits for its supervisor
h_psql west "SELECT xdcr.skip_transaction('east', (SELECT commit_lsn FROM xdcr.halts), 'test')" >/dev/null
h_daemon_start consumer "$CONS" --config "$H_DIR/consumer.conf"
h_wait_for 30 "the transaction after the skipped one" bash -c \
    "[[ \$(psql -XAtq -d '$(h_pg_conninfo west)' -c 'SELECT count(*) FROM t_lww WHERE id = 9') == 1 ]]"
h_assert_eq west "$(row t_err 8)" "the skipped conflicting change was not applied"

# ---- tombstones expire ------------------------------------------------------------------------
n=$(h_psql west "SELECT count(*) FROM xdcr.tombstones")
h_check "tombstones recorded ($n)" test "$n" -gt 0
# every other tombstone is fresh (the retention is 1 min): only the backdated ones may go
h_psql west "UPDATE xdcr.tombstones SET deleted_at = now() + interval '1 hour'" >/dev/null
h_psql west "UPDATE xdcr.tombstones SET deleted_at = now() - interval '2 minutes' WHERE key = '{\"id\": \"3\"}'" >/dev/null
purged() { [[ "$(h_psql west "SELECT count(*) FROM xdcr.tombstones WHERE key = '{\"id\": \"3\"}'")" == 0 ]]; }
h_wait_for 30 "expired tombstones to be removed" purged
h_assert_eq "$((n - 3))" "$(h_psql west "SELECT count(*) FROM xdcr.tombstones")" \
    "... and only those (one per table)"

# ---- track_commit_timestamp is required -------------------------------------------------------
h_daemon_stop consumer >/dev/null
h_pg_start plain --set track_commit_timestamp=off >/dev/null 2>&1 || h_pg_start plain >/dev/null
if [[ "$(h_psql plain "SHOW track_commit_timestamp")" == off ]]; then
    sed "s|^pg.conninfo = .*|pg.conninfo = $(h_pg_conninfo plain)|; s|^tables = .*|tables =|" \
        "$H_DIR/consumer.conf" >"$H_DIR/plain.conf"
    rc=0
    out=$(timeout -k 5 30 "$CONS" --config "$H_DIR/plain.conf" 2>&1) || rc=$?
    h_assert_eq 2 "$rc" "a target without track_commit_timestamp is refused (exit 2: configuration)"
    h_assert_contains "$out" "track_commit_timestamp" "... with a clear reason"
else
    h_fail "could not start a cluster with track_commit_timestamp = off"
fi
h_finish
