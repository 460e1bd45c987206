#!/usr/bin/env bash
#
# test_active_active.sh - three DCs (east, west, north), each with its PostgreSQL, forwarder and
# consumer, one dev broker. All three write concurrently: random inserts, updates and deletes on
# overlapping keys of four tables (a composite key; a key-only table with a timestamptz key,
# written from sessions in different time zones; a partitioned table), every transaction also
# inserting one event row with a DC-unique id. While that runs, every daemon is SIGKILLed once and restarted.
# After the load stops and everything is applied:
#   - the three databases are identical (per-table checksums);
#   - conflicts were found and recorded with both versions (xdcr.conflicts, metrics);
#   - no source transaction was applied twice: an ALWAYS trigger at each target logs every
#     application of an event row, and every remote event is logged exactly once;
#   - no ping-pong: each topic holds only its own DC's transactions (every event in it is the
#     DC's own), and no more distinct transactions than the DC committed.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

CONS="$XDCR_BUILD_DIR/consumer/xdcr-consumer"
DCS=(east west north)
DURATION=${AA_DURATION:-24}

h_init
for dc in "${DCS[@]}"; do
    h_pg_start "$dc" >/dev/null
done
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.west.changes:1 \
    --topic xdcr.north.changes:1

for dc in "${DCS[@]}"; do
    h_psql "$dc" "
        CREATE TABLE items (id integer PRIMARY KEY, v integer NOT NULL, note text, who text);
        CREATE TABLE pairs (a integer, b text, val numeric(12,2), PRIMARY KEY (a, b));
        CREATE TABLE tagged (tag text, at timestamptz, PRIMARY KEY (tag, at));
        CREATE TABLE parts (id integer, region integer, v integer, PRIMARY KEY (id, region))
            PARTITION BY LIST (region);
        CREATE TABLE parts_0 PARTITION OF parts FOR VALUES IN (0);
        CREATE TABLE parts_1 PARTITION OF parts FOR VALUES IN (1);
        CREATE TABLE events (id text PRIMARY KEY, dc text NOT NULL);
        CREATE SEQUENCE ev_seq;
        CREATE PUBLICATION xdcr_$dc FOR TABLE items, pairs, tagged, parts, events;
        -- not replicated: every application of an event row by the consumer
        CREATE TABLE applied_log (id text NOT NULL, op text NOT NULL);
        CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS \$\$
        BEGIN
            IF current_setting('xdcr.applying', true) = 'on' THEN
                INSERT INTO applied_log VALUES (NEW.id, TG_OP);
            END IF;
            RETURN NULL;
        END \$\$;
        CREATE TRIGGER log_applied AFTER INSERT OR UPDATE ON events
            FOR EACH ROW EXECUTE FUNCTION log_applied();
        ALTER TABLE events ENABLE ALWAYS TRIGGER log_applied;" >/dev/null
done

others() { # the DCs other than $1, comma separated
    local o=() d
    for d in "${DCS[@]}"; do [[ $d == "$1" ]] || o+=("$d"); done
    (IFS=,; echo "${o[*]}")
}
start_fwd() {
    h_daemon_start "fwd-$1" "$FWD" --config "$H_DIR/fwd-$1.conf"
}
start_cons() {
    h_daemon_start "cons-$1" "$CONS" --config "$H_DIR/cons-$1.conf"
}
for dc in "${DCS[@]}"; do
    cat >"$H_DIR/fwd-$dc.conf" <<EOF
origin = $dc
pg.conninfo = $(h_pg_conninfo "$dc")
slot.create = true
heartbeat.interval = 300ms
http.listen =
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
EOF
    cat >"$H_DIR/cons-$dc.conf" <<EOF
origin = $dc
origins = $(others "$dc")
pg.conninfo = $(h_pg_conninfo "$dc")
tables = public.items, public.pairs, public.tagged, public.parts, public.events
http.listen = 127.0.0.1:$(h__free_port)
kafka.bootstrap.servers = $H_BROKER_BOOTSTRAP
kafka.session.timeout.ms = 6000
kafka.fetch.wait.max.ms = 20
EOF
    start_fwd "$dc"
    start_cons "$dc"
done
for dc in "${DCS[@]}"; do
    fwd_wait_streaming "$dc" "xdcr_$dc"
done
tracked() { # the consumer put the tombstone trigger on every table
    # items, pairs, tagged, events, and parts with its two partitions
    [[ "$(h_psql "$1" "SELECT count(*) FROM pg_trigger WHERE tgname = 'xdcr_tombstone'")" == 7 ]]
}
for dc in "${DCS[@]}"; do
    h_wait_for 30 "the $dc consumer to track deletes" tracked "$dc"
done
h_pass "three DCs up: a forwarder and a consumer each; tombstone triggers in place"

# ---- the load -----------------------------------------------------------------------------------
for dc in "${DCS[@]}"; do
    cat >"$H_DIR/load-$dc.sql" <<EOF
\\set id random(1, 40)
\\set op random(1, 100)
\\set v random(1, 1000000)
BEGIN;
\\if :op <= 30
INSERT INTO items VALUES (:id, :v, 'n' || :v, '$dc')
    ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, note = EXCLUDED.note, who = '$dc';
\\elif :op <= 55
UPDATE items SET v = :v, who = '$dc' WHERE id = :id;
\\elif :op <= 65
DELETE FROM items WHERE id = :id;
\\elif :op <= 75
INSERT INTO pairs VALUES (:id % 6, 'k' || (:id % 4), :v / 100.0)
    ON CONFLICT (a, b) DO UPDATE SET val = EXCLUDED.val;
\\elif :op <= 80
DELETE FROM pairs WHERE a = :id % 6 AND b = 'k' || (:id % 4);
\\elif :op <= 87
INSERT INTO tagged VALUES ('t' || (:id % 5), '2026-01-01 00:00:00+00'::timestamptz
    + (:id % 8) * interval '1 hour') ON CONFLICT DO NOTHING;
\\elif :op <= 91
DELETE FROM tagged WHERE tag = 't' || (:id % 5)
    AND at = '2026-01-01 00:00:00+00'::timestamptz + (:id % 8) * interval '1 hour';
\\elif :op <= 97
INSERT INTO parts VALUES (:id % 10, :id % 2, :v) ON CONFLICT (id, region) DO UPDATE SET v = EXCLUDED.v;
\\else
DELETE FROM parts WHERE id = :id % 10 AND region = :id % 2;
\\endif
INSERT INTO events VALUES ('$dc-' || nextval('ev_seq'), '$dc');
COMMIT;
EOF
    # each DC's sessions in another time zone (tombstone keys must not depend on it)
    declare -A TZ_OF=([east]=Europe/Berlin [west]=America/New_York [north]=Asia/Kolkata)
    h_daemon_start "load-$dc" env PGOPTIONS="-c TimeZone=${TZ_OF[$dc]}" \
        "$H_PG_BIN/pgbench" -n -T "$DURATION" -R 40 -c 2 -j 1 \
        -f "$H_DIR/load-$dc.sql" "$(h_pg_conninfo "$dc")"
done

# every daemon is killed once while the load runs, and restarted
step=$((DURATION / 8))
((step >= 1)) || step=1
sleep "$step"
for d in cons-east fwd-west cons-north fwd-east cons-west fwd-north; do
    h_daemon_kill "$d" >/dev/null
    sleep 0.5
    case $d in
    cons-*) start_cons "${d#cons-}" ;;
    fwd-*) start_fwd "${d#fwd-}" ;;
    esac
    sleep "$step"
done
h_pass "every daemon SIGKILLed once under load and restarted"
for dc in "${DCS[@]}"; do
    h_daemon_wait "load-$dc" $((DURATION + 30)) >/dev/null
done

# ---- quiesce: every DC applied everything of every other DC -------------------------------------
declare -A TOKEN
for dc in "${DCS[@]}"; do
    TOKEN[$dc]=$(h_psql "$dc" "SELECT pg_current_wal_lsn()")
done
applied() { # applied DST SRC
    [[ "$(h_psql "$1" "SELECT count(*) FROM xdcr.positions
                       WHERE origin = '$2' AND seq >= '${TOKEN[$2]}'")" -ge 1 ]]
}
for dst in "${DCS[@]}"; do
    for src in "${DCS[@]}"; do
        [[ $src != "$dst" ]] || continue
        h_wait_for 90 "$dst to apply everything of $src" applied "$dst" "$src"
    done
done

# ---- identical --------------------------------------------------------------------------------
sum() { # sum DC TABLE ORDER
    h_psql "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY $3)), '')
                 FROM $2 t"
}
for t in "items:id" "pairs:a, b" "tagged:tag, at" "parts:id, region" "events:id"; do
    tbl=${t%%:*}
    ord=${t#*:}
    ref=$(sum east "$tbl" "$ord")
    h_assert_eq "$ref" "$(sum west "$tbl" "$ord")" "$tbl: west identical to east"
    h_assert_eq "$ref" "$(sum north "$tbl" "$ord")" "$tbl: north identical to east"
done
tombs=0
for dc in "${DCS[@]}"; do
    tombs=$((tombs + $(h_psql "$dc" "SELECT count(*) FROM xdcr.tombstones")))
done
h_check "deletes left tombstones ($tombs)" test "$tombs" -gt 0

# ---- exactly once -----------------------------------------------------------------------------
for dst in "${DCS[@]}"; do
    remote=$(h_psql "$dst" "SELECT count(*) FROM events WHERE dc <> '$dst'")
    h_assert_eq "$remote" "$(h_psql "$dst" "SELECT count(*) FROM applied_log")" \
        "$dst: every remote transaction applied ($remote events)..."
    h_assert_eq "0" "$(h_psql "$dst" "SELECT count(*) FROM (SELECT id FROM applied_log
                                      GROUP BY id HAVING count(*) > 1) d")" \
        "... and none of them twice"
done

# ---- conflicts recorded -----------------------------------------------------------------------
total=0
for dc in "${DCS[@]}"; do
    n=$(h_psql "$dc" "SELECT count(*) FROM xdcr.conflicts")
    total=$((total + n))
    h_assert_eq 0 "$(h_psql "$dc" "SELECT count(*) FROM xdcr.conflicts
        WHERE remote_origin = '$dc' OR remote_origin = local_origin OR remote_commit_time IS NULL
           OR (kind LIKE '%_exists' AND (local_row IS NULL OR local_commit_time IS NULL))
           OR policy <> 'last_writer_wins'")" "$dc: conflict rows are well-formed ($n)"
    h_assert_eq 0 "$(h_psql "$dc" "SELECT count(*) FROM xdcr.conflicts
        WHERE kind IN ('insert_exists', 'update_exists', 'delete_exists')
          AND (resolution = 'apply_remote') <>
              ((remote_commit_time, remote_origin COLLATE \"C\")
               > (local_commit_time, local_origin COLLATE \"C\"))")" \
        "$dc: every row conflict resolved by last writer wins"
done
h_check "conflicts were found and recorded ($total)" test "$total" -gt 0
kinds=$(for dc in "${DCS[@]}"; do h_psql "$dc" "SELECT DISTINCT kind FROM xdcr.conflicts"; done |
    sort -u | tr '\n' ' ')
echo "# conflict kinds seen: $kinds"
h_assert_contains "$kinds" "update_exists" "update/update conflicts seen"
metric_sum() { # the sum of xdcr_consumer_conflicts_total at a consumer (since its last start)
    local conf=$H_DIR/cons-$1.conf addr
    addr=$(sed -n 's/^http.listen = //p' "$conf")
    curl -s -m 3 "http://$addr/metrics" |
        awk '/^xdcr_consumer_conflicts_total\{/ { s += $2 } END { print s + 0 }'
}
m=0
for dc in "${DCS[@]}"; do m=$((m + $(metric_sum "$dc"))); done
h_check "xdcr_consumer_conflicts_total counts conflicts ($m since the restarts)" test "$m" -gt 0

# ---- no ping-pong -----------------------------------------------------------------------------
for dc in "${DCS[@]}"; do
    fwd_tail "xdcr.$dc.changes" "$H_DIR/topic-$dc.jsonl"
    own=$(h_psql "$dc" "SELECT count(*) FROM events WHERE dc = '$dc'")
    out=$("$PY" - "$H_DIR/topic-$dc.jsonl" "$dc" <<'PY'
import json, sys
path, dc = sys.argv[1], sys.argv[2]
seqs, foreign = set(), 0
for line in open(path):
    m = json.loads(line)
    if m.get("type") != "txn":
        continue
    seqs.add(m["commit_lsn"])
    for ch in m["changes"]:
        if ch.get("op") == "I" and ch["table"] == "events" and ch["new"]["dc"] != dc:
            foreign += 1
print(len(seqs), foreign)
PY
)
    read -r distinct foreign <<<"$out"
    h_assert_eq 0 "$foreign" "topic of $dc: no event of another DC (nothing applied came back)"
    h_check "topic of $dc: $distinct distinct transactions <= $own written there" \
        test "$distinct" -le "$own"
done
h_finish
