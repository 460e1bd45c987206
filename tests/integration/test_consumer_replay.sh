#!/usr/bin/env bash
#
# test_consumer_replay.sh - the recorded message stream: `xdcr tail --record` copies an origin's
# topic to a file; `xdcr-consumer --replay.file=FILE` applies it without a broker into a fresh
# target (identical by checksum, split transactions whole), a second replay applies nothing twice,
# a live consumer then goes on from the replayed position without a duplicate, and a damaged or
# foreign file is refused before a single change is applied.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"

SCHEMA_SQL="CREATE TABLE items (id bigint PRIMARY KEY, v text, n integer, doc text);
ALTER TABLE items ALTER COLUMN doc SET STORAGE EXTERNAL;"
# every row change the apply session makes at the target, counted by an ALWAYS trigger (it fires
# under session_replication_role = replica too): a duplicate apply shows up here
COUNT_SQL="CREATE TABLE applied (op text, id bigint);
CREATE FUNCTION count_apply() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO applied VALUES (TG_OP, coalesce(NEW.id, OLD.id));
    RETURN NULL;
END \$\$;
CREATE TRIGGER count_apply AFTER INSERT OR UPDATE OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION count_apply();
ALTER TABLE items ENABLE ALWAYS TRIGGER count_apply;"

checksum() {
    h_psql "$1" "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY id)), 'empty') FROM items t"
}

# replay_conf FILE PGNAME : a consumer config without any Kafka setting
replay_conf() {
    cat >"$1" <<EOF
origin = west
origins = east
mode = one-way
pg.conninfo = $(h_pg_conninfo "$2")
tables = public.items
http.listen =
EOF
}

# replay PGNAME FILE : run a replay to its end; its exit status in RC, its output in OUT
replay() {
    RC=0
    OUT=$(timeout -k 5 120 "$CONS" --config "$H_DIR/replay-$1.conf" "--replay.file=$2" 2>&1) || RC=$?
    printf '%s\n' "$OUT" >>"$H_DIR/logs/replay-$1.log" # shown when the test fails
}

h_init
REC="$H_DIR/east.rec"
h_pg_start east >/dev/null
h_pg_start west >/dev/null
h_pg_start west2 >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1
for db in east west west2; do
    h_psql "$db" "$SCHEMA_SQL" >/dev/null
done
h_psql west "$COUNT_SQL" >/dev/null

# small messages: the large transaction below becomes many parts
fwd_conf "$H_DIR/fwd.conf" east east "message.max_bytes = 4096" "publication.tables = public.items"
fwd_start forwarder "$H_DIR/fwd.conf"
fwd_wait_streaming east xdcr_east

h_psql east "INSERT INTO items SELECT g, 'v' || g, g, CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 200) END FROM generate_series(1, 500) g" >/dev/null
h_psql east "UPDATE items SET n = n * 10 WHERE id % 3 = 0" >/dev/null # doc stays unchanged TOAST
h_psql east "DELETE FROM items WHERE id BETWEEN 100 AND 149" >/dev/null
h_psql east "INSERT INTO items SELECT g, repeat('x', 40), g FROM generate_series(1000, 3000) g" >/dev/null
for i in $(seq 1 20); do
    h_psql east "UPDATE items SET v = 'single $i' WHERE id = $i" >/dev/null
done
fwd_wait_confirmed 30 east xdcr_east "everything written"

# ---- record -----------------------------------------------------------------------------------
h_check "xdcr tail --record writes the topic to a file" \
    timeout -k 5 60 "$XDCR" tail --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.east.changes --record "$REC"
h_assert_contains "$H_OUT" "recorded" "tail says how many messages it recorded"
msgs=$(sed -n 's/.*recorded \([0-9]*\) messages.*/\1/p' <<<"$H_OUT")
((msgs > 20)) || h_fail "only $msgs messages recorded: $H_OUT"
h_pass "$msgs messages recorded"
recorded_sum=$(checksum east) # what the recording holds
h_check_fails "tail --record never overwrites a recording" \
    timeout -k 5 60 "$XDCR" tail --bootstrap "$H_BROKER_BOOTSTRAP" --topic xdcr.east.changes --record "$REC"
h_assert_contains "$H_OUT" "never overwritten" "the refusal says why"

# ---- replay into a fresh target ---------------------------------------------------------------
replay_conf "$H_DIR/replay-west.conf" west
replay west "$REC"
((RC == 0)) || h_fail "replay exited with status $RC: $(tail -n 5 <<<"$OUT")"
h_pass "replay: exit 0 at the end of the file"
h_assert_contains "$OUT" "replay finished" "replay: logs its end"
h_assert_eq "$(checksum east)" "$(checksum west)" "replay: the target equals the source"
# the topic is fresh: the recording holds offsets 0 .. msgs-1
h_assert_eq "$msgs" "$(h_psql west "SELECT kafka_offset FROM xdcr.positions WHERE origin = 'east'")" \
    "replay: the stored position is the offset after the last recorded message"
applied_once=$(h_psql west "SELECT count(*) FROM applied")
((applied_once > 2500)) || h_fail "only $applied_once row changes applied"

# ---- replay again: nothing twice --------------------------------------------------------------
replay west "$REC"
h_assert_eq 0 "$RC" "second replay: exit 0"
h_assert_eq "$applied_once" "$(h_psql west "SELECT count(*) FROM applied")" \
    "second replay: not one row change applied again"
h_assert_eq "$(checksum east)" "$(checksum west)" "second replay: still equal"

# ---- a live consumer goes on from the replayed position ---------------------------------------
cat >"$H_DIR/live.conf" <<EOF
origin = west
origins = east
mode = one-way
pg.conninfo = $(h_pg_conninfo west)
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
EOF
h_daemon_start consumer "$CONS" --config "$H_DIR/live.conf"
h_psql east "UPDATE items SET v = 'after replay' WHERE id BETWEEN 1 AND 30" >/dev/null
token=$(h_psql east "SELECT pg_current_wal_lsn()")
caught_up() { [[ "$(h_psql west "SELECT count(*) FROM xdcr.positions WHERE origin = 'east' AND seq >= '$token'")" == 1 ]]; }
h_wait_for 40 "the live consumer to apply the new changes" caught_up
h_assert_eq "$(checksum east)" "$(checksum west)" "live after replay: equal"
h_assert_eq "$((applied_once + 30))" "$(h_psql west "SELECT count(*) FROM applied")" \
    "live after replay: exactly the 30 new row changes, nothing of the recording again"
h_daemon_stop consumer >/dev/null

# ---- damaged and foreign files are refused, nothing applied -----------------------------------
replay_conf "$H_DIR/replay-west2.conf" west2
size=$(stat -c %s "$REC")
head -c $((size - 3)) "$REC" >"$H_DIR/truncated.rec"
replay west2 "$H_DIR/truncated.rec"
h_assert_eq 2 "$RC" "a truncated recording: exit 2"
h_assert_contains "$OUT" "truncated record" "the error says truncated"
h_assert_contains "$OUT" "nothing was applied" "the error says nothing was applied"
cp "$REC" "$H_DIR/flipped.rec"
printf '\x00' | dd of="$H_DIR/flipped.rec" bs=1 seek=$((size / 2)) conv=notrunc status=none
printf '\xff' | dd of="$H_DIR/flipped.rec" bs=1 seek=$((size / 2 + 1)) conv=notrunc status=none
replay west2 "$H_DIR/flipped.rec"
h_assert_eq 2 "$RC" "a corrupted recording: exit 2"
h_assert_contains "$OUT" "CRC mismatch" "the error names the CRC"
printf '{"not": "a recording"}\n' >"$H_DIR/foreign.rec"
replay west2 "$H_DIR/foreign.rec"
h_assert_eq 2 "$RC" "a file that is no recording: exit 2"
h_assert_contains "$OUT" "not a recorded message stream" "the error says what the file is not"
replay west2 "$H_DIR/missing.rec"
h_assert_eq 2 "$RC" "a missing file: exit 2"
h_assert_eq "0" "$(h_psql west2 "SELECT count(*) FROM items")" "west2: no row applied"
h_assert_eq "0" "$(h_psql west2 "SELECT count(*) FROM pg_namespace WHERE nspname = 'xdcr'")" \
    "west2: not even the consumer's schema was created"

# ---- a recording with a hole: applied up to the hole, then exit 4 ------------------------------
# drop one transaction message from the middle (records are length-prefixed, see
# docs/message-format.md); every record stays intact, so only the stream rules can notice
python3 - "$REC" "$H_DIR/hole.rec" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
pos, recs = 8, []
while pos < len(data):
    n = struct.unpack('>I', data[pos:pos + 4])[0]
    recs.append(data[pos:pos + 8 + n])
    pos += 8 + n
txns = [i for i, r in enumerate(recs) if b'xdcr-type\x00\x00\x00\x03txn' in r]
drop = txns[len(txns) // 2]
open(sys.argv[2], 'wb').write(data[:8] + b''.join(r for i, r in enumerate(recs) if i != drop))
PY
replay west2 "$H_DIR/hole.rec"
((RC == 4)) || h_fail "a recording with a hole: exit $RC, not 4: $(tail -n 5 <<<"$OUT")"
h_pass "a recording with a hole: exit 4 (gap)"
h__note "$(grep -E 'replay finished|assigned' <<<"$OUT")"
h_assert_contains "$OUT" "the recording misses messages" "the error says the recording misses messages"
h_assert_eq "t" "$(h_psql west2 "SELECT count(*) > 0 FROM items")" "what came before the hole was applied"

# ---- the intact recording into the same target: completes it ----------------------------------
replay west2 "$REC"
((RC == 0)) || h_fail "the intact recording after the hole: exit $RC: $(tail -n 5 <<<"$OUT")"
h_pass "west2: the intact recording applies the rest"
h_assert_eq "$recorded_sum" "$(checksum west2)" "west2: equal to the source as recorded"

h_daemon_stop forwarder >/dev/null
h_finish
