#!/usr/bin/env bash
#
# test_forwarder_capture.sh - every capture case of RELIABILITY.md's bad-input list round-trips
# through the forwarder into Kafka exactly, checked by decoding the topic (`xdcr tail`) and
# replaying it against the source's values as text row by row (the output function's text,
# which is `col::text` except for boolean 't'/'f' and char(n) padding): NULLs, unicode and control
# characters, numeric NaN/±Infinity, float edge values, timestamps ±infinity, BC dates, bytea,
# arrays with NULLs, json/jsonb, enums, domains, composites, ranges, intervals, composite and
# changed primary keys, REPLICA IDENTITY FULL, a table without a key, unchanged TOAST values
# (marked unchanged, never sent as NULL), TRUNCATE, partitioned tables (with and without
# publish_via_partition_root), DDL inside a transaction, a 100,000-row transaction split into
# bounded parts, transactional logical messages, and a LATIN1 database (UTF-8 in Kafka). The source runs with non-default output settings (DateStyle,
# IntervalStyle, extra_float_digits, bytea_output): the stream must still carry canonical text.
set -euo pipefail

: "${XDCR_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=../support/harness.sh
source "$XDCR_SOURCE_DIR/tests/support/harness.sh"
# shellcheck source=fwd_lib.sh
source "$XDCR_SOURCE_DIR/tests/integration/fwd_lib.sh"

MAX_BYTES=65536

h_init
T0=$(h__now_ms)
# Settings an operator may have that change how values print; the forwarder must not depend on them.
h_pg_start east --set "DateStyle=SQL, DMY" --set IntervalStyle=sql_standard \
    --set extra_float_digits=0 --set bytea_output=escape --set TimeZone=America/New_York >/dev/null
h_broker_start --brokers 1 --topic xdcr.east.changes:1 --topic xdcr.eastroot.changes:1

h_psql east "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très content');
CREATE TYPE pair AS (a integer, b text);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE types (
    id integer PRIMARY KEY, t text, n numeric, n2 numeric(12,3), f4 real, f8 float8,
    ts timestamp, tstz timestamptz, d date, tm time, tmtz timetz, iv interval, b bytea,
    arr integer[], tarr text[], arr2 integer[][], j jsonb, js json, m mood, marr mood[], u uuid,
    bo boolean, ip inet, cidr cidr, mac macaddr, bits varbit(12), pt point, rng int4range,
    mrng int4multirange, tsv tsvector, x xml, money money, c char(5), vc varchar(10), o oid,
    p pair, dom posint, big bigint, small smallint);
CREATE TABLE \"Comp Key\" (\"tenant-id\" text, id bigint, sub smallint, v text,
    PRIMARY KEY (\"tenant-id\", id, sub));
CREATE TABLE toast (id integer PRIMARY KEY, big text, small integer, other text);
ALTER TABLE toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE full_ident (a integer, b text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE nokey (a integer, b text);
CREATE TABLE trunc_a (id serial PRIMARY KEY, v text);
CREATE TABLE trunc_b (id integer PRIMARY KEY, v text);
CREATE TABLE parted (id integer, region text, v text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE parted_east PARTITION OF parted FOR VALUES IN ('east');
CREATE TABLE parted_west PARTITION OF parted FOR VALUES IN ('west');
CREATE TABLE bulk (id integer PRIMARY KEY, v text);
CREATE TABLE ddl (id integer PRIMARY KEY, v text);
-- the second forwarder publishes the partitioned table through its root
CREATE PUBLICATION xdcr_eastroot FOR TABLE parted WITH (publish_via_partition_root = true);
" >/dev/null

# a LATIN1 database: values and names must arrive as UTF-8
h_psql east "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
LATIN=$(h_pg_conninfo east | sed 's/dbname=postgres/dbname=latin/')
PGCLIENTENCODING=UTF8 psql -XAtq -v ON_ERROR_STOP=1 -d "$LATIN" \
    -c 'CREATE TABLE "tablé" ("clé" text PRIMARY KEY, "valeur à" text)' >/dev/null

fwd_conf "$H_DIR/east.conf" east east "message.max_bytes = $MAX_BYTES"
fwd_conf "$H_DIR/eastroot.conf" eastroot east "publication.create = false"
fwd_conf "$H_DIR/latin.conf" latin east "pg.conninfo = $LATIN"
fwd_start fwd "$H_DIR/east.conf"
fwd_start fwdroot "$H_DIR/eastroot.conf"
fwd_start fwdlatin "$H_DIR/latin.conf"
fwd_wait_streaming east xdcr_east xdcr_eastroot xdcr_latin

# ---- the workload: one statement per transaction unless noted ---------------------------------
h_psql east >/dev/null <<<"
INSERT INTO types (id) VALUES (1);  -- every column NULL
INSERT INTO types VALUES (2, E'unicode \u00e9\u4e2d\U0001F600, tab\there, newline\nand \\\\ \"quotes\" \u0001\u001f\u007f',
    'NaN', 123456789.123, 'NaN', 'NaN', 'infinity', 'infinity', '0044-03-15 BC', '23:59:59.999999',
    '12:00:00+05:30', '-1 year 2 months -3 days 04:05:06.789', '\\x00ff5c27226e00'::bytea,
    '{1,NULL,3}', '{NULL,\"a,b\",\"quo\\\"te\",\"\",\"NULL\"}', '{{1,2},{3,NULL}}',
    '{\"a\": [1, null, \"\\u00e9\", 1.50e3], \"b\": {\"c\": {}}, \"\": \"\"}', '{\"dup\": 1, \"dup\": 2}',
    'très content', '{sad,NULL,happy}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true,
    '2001:db8::1/64', '10.0.0.0/8', '08:00:2b:01:02:03', B'101', '(1.5,-2)', '[1,10)',
    '{[1,3),[5,7)}', 'a fat cat:1A', '<r a=\"1\">x &amp; y</r>', 12.34, 'ab', 'xyz', 4294967295,
    ROW(1, 'p,q'), 7, 9223372036854775807, -32768);
INSERT INTO types (id, n, n2, f4, f8, ts, tstz, d, iv, b, arr, tarr, j, t, big, small) VALUES
    (3, 'Infinity', -0.001, '-Infinity', '-Infinity', '-infinity', '-infinity', '4713-01-01 BC',
     '-178000000 years', '', '{}', '{}', 'null', '', -9223372036854775808, 32767),
    (4, '-Infinity', 0, 1.17549435e-38, 2.2250738585072014e-308, '294276-12-31 23:59:59.999999',
     '2024-02-29 12:34:56.789+01', '5874897-12-31', '0', '\\x', '{{{1}}}', '{\"\"}', '\"str\"',
     ' ', 0, 0),
    (5, 1e-300, 1.5, 3.4028235e38, 1.7976931348623157e308, '2000-01-01', '1999-12-31 23:59:59+14',
     '2000-02-29', '1 day -1 sec', decode(repeat('ff', 100), 'hex'), '{-2147483648,2147483647}',
     '{\"\\\\\\\\\"}', '[1, \"two\", [null]]', repeat('ü', 1000), 1, 1),
    (6, 0.1, 0.1, 0.1, 0.1, '1970-01-01', '1970-01-01 00:00:00+00', '1970-01-01', '1 mon',
     '\\x0a0d09', NULL, '{a}', '{}', E'\\\\x not bytea', NULL, NULL);
INSERT INTO types (id, f8) VALUES (7, -0.0), (8, 4.9406564584124654e-324), (9, 1/3.0);
INSERT INTO \"Comp Key\" SELECT 't' || (g % 3), g, g % 5, 'v' || g FROM generate_series(1, 30) g;
UPDATE \"Comp Key\" SET v = 'updated' WHERE id <= 5;
UPDATE \"Comp Key\" SET id = id + 1000, v = 'key changed' WHERE id BETWEEN 6 AND 8;
DELETE FROM \"Comp Key\" WHERE id BETWEEN 9 AND 11;
INSERT INTO toast SELECT g, (SELECT string_agg(md5(random()::text || g || i), '')
                             FROM generate_series(1, 300) i), g, 'o' FROM generate_series(1, 3) g;
UPDATE toast SET small = small + 100 WHERE id = 1;                   -- big: unchanged TOAST
UPDATE toast SET other = 'x', small = small + 1 WHERE id IN (1, 2);  -- again, two rows
UPDATE toast SET big = 'now small', small = 0 WHERE id = 3;         -- big changed: sent
INSERT INTO full_ident VALUES (1, 'one'), (2, 'two'), (3, NULL);
UPDATE full_ident SET b = 'uno' WHERE a = 1;
DELETE FROM full_ident WHERE a = 2;
INSERT INTO nokey VALUES (1, 'no key');
INSERT INTO trunc_a (v) SELECT 'a' || g FROM generate_series(1, 10) g;
INSERT INTO trunc_b SELECT g, 'b' || g FROM generate_series(1, 10) g;
TRUNCATE trunc_a;
BEGIN; TRUNCATE trunc_a, trunc_b RESTART IDENTITY; INSERT INTO trunc_b VALUES (100, 'after'); COMMIT;
INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'east' ELSE 'west' END, 'p' || g
    FROM generate_series(1, 10) g;
UPDATE parted SET v = 'changed' WHERE id = 2;
UPDATE parted SET region = 'west', v = 'moved' WHERE id = 4;  -- moves to another partition
DELETE FROM parted WHERE id = 6;
BEGIN;
SELECT pg_logical_emit_message(true, 'app', 'hello');
INSERT INTO trunc_b VALUES (200, 'with a message');
SELECT pg_logical_emit_message(true, 'bin', '\\x00ff0a'::bytea);
COMMIT;
SELECT pg_logical_emit_message(true, 'alone', 'only a message');
SELECT pg_logical_emit_message(false, 'nontx', 'not transactional');
INSERT INTO ddl VALUES (1, 'before');
BEGIN;
ALTER TABLE ddl ADD COLUMN c text;
INSERT INTO ddl VALUES (2, 'added', 'c2');
ALTER TABLE ddl DROP COLUMN v;
INSERT INTO ddl VALUES (3, 'c3');
COMMIT;
ALTER TABLE ddl ALTER COLUMN c TYPE integer USING length(c);
INSERT INTO ddl VALUES (4, 44);
"
PGCLIENTENCODING=UTF8 psql -XAtq -v ON_ERROR_STOP=1 -d "$LATIN" \
    -c "INSERT INTO \"tablé\" VALUES ('clé 1', 'café ÿ ß'), ('clé 2', NULL)" >/dev/null
# One transaction of 100,000 rows: split into parts of at most message.max_bytes.
BULK_TOKEN=$(h_psql east "INSERT INTO bulk SELECT g, 'r' || g FROM generate_series(1, 100000) g" \
    "SELECT pg_current_wal_lsn()")
BULK_XID=$(h_psql east "SELECT xmin FROM bulk WHERE id = 1")
# the last transaction: its seq must equal the WAL position read right after its COMMIT
LAST_TOKEN=$(h_psql east "INSERT INTO trunc_b VALUES (300, 'last')" "SELECT pg_current_wal_lsn()")

fwd_wait_confirmed 60 east xdcr_east "whole workload"
fwd_wait_confirmed 30 east xdcr_eastroot "whole workload"
fwd_wait_confirmed 30 east xdcr_latin "whole workload"
for d in fwd fwdroot fwdlatin; do
    h_daemon_stop $d >/dev/null
    h_assert_eq 0 "$H_LAST_EXIT" "forwarder $d drains and exits 0 on SIGTERM"
done

fwd_tail xdcr.east.changes "$H_DIR/east.jsonl" --raw
fwd_tail xdcr.eastroot.changes "$H_DIR/eastroot.jsonl"
fwd_tail xdcr.latin.changes "$H_DIR/latin.jsonl"
fwd_check_stream "east: stream contract holds" "$H_DIR/east.jsonl"
h_assert_eq 0 "$(fwd_summary duplicates)" "east: a clean run publishes no duplicates"
h_assert_eq 1 "$(fwd_summary stream_starts)" "east: one stream start"
fwd_check_stream "eastroot: stream contract holds" "$H_DIR/eastroot.jsonl"

# ---- values: every table replayed from Kafka equals the source, as canonical text --------------
# The comparison reads the source with canonical output settings, whatever the server's are.
export PGOPTIONS="-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c TimeZone=America/New_York"
fwd_check_state "east: every row replayed from Kafka equals the source's values as text" \
    "$H_DIR/east.jsonl" east --table public.types --table 'public.Comp Key' --table public.toast \
    --table public.full_ident --table public.trunc_a --table public.trunc_b \
    --table public.parted_east --table public.parted_west --table public.bulk
fwd_check_state "eastroot: the partitioned table replayed through its root equals the source" \
    "$H_DIR/eastroot.jsonl" east --table public.parted
h_check "latin: a LATIN1 database's names and values arrive as UTF-8" \
    "$PY" "$FWD_CHECK" state "$H_DIR/latin.jsonl" --pg "$LATIN" --table "public.tablé"
h_assert_contains "$(cat "$H_DIR/latin.jsonl")" '"new":{"clé":"clé 1","valeur à":"café ÿ ß"}' \
    "... e.g. {\"clé\": \"clé 1\", \"valeur à\": \"café ÿ ß\"}"
unset PGOPTIONS

# ---- specific cases ----------------------------------------------------------------------------
out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
ins = {c["new"]["id"]: c for t in s.txns() for c in t.changes
       if c.get("table") == "types" and c["op"] == "I"}
r1, r2, r3 = ins["1"], ins["2"], ins["3"]
print("all_null", all(v is None for k, v in r1["new"].items() if k != "id"))
print("nan", r2["new"]["n"], r2["new"]["f8"], r3["new"]["n"], r3["new"]["f8"], ins["4"]["new"]["n"])
print("ts", r2["new"]["ts"], r3["new"]["tstz"], "|", r2["new"]["d"], "|", r3["new"]["d"])
print("bytea", r2["new"]["b"], r3["new"]["b"])
print("arrays", r2["new"]["arr"], r2["new"]["tarr"])
print("types", r2["types"]["n"], r2["types"]["m"], r2["types"]["arr"], r2["types"]["p"],
      r2["types"]["c"], r2["types"]["tstz"], r2["types"]["iv"])
# as pgoutput's Type messages name them: not format_type()'s "mood[]" and "posint"
print("typemsg", r2["types"]["marr"], r2["types"]["dom"])
print("key", r2["key"])
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "all_null True" "a row of NULLs: every value is JSON null"
h_assert_contains "$out" "nan NaN NaN Infinity -Infinity -Infinity" "numeric and float NaN/±Infinity as text"
h_assert_contains "$out" "ts infinity -infinity | 0044-03-15 BC | 4713-01-01 BC" "timestamps ±infinity and BC dates, ISO"
h_assert_contains "$out" 'bytea \x00ff5c27226e00 \x' "bytea in hex, also empty"
h_assert_contains "$out" 'arrays {1,NULL,3} {NULL,"a,b","quo\"te","","NULL"}' "arrays with NULLs and quoting"
h_assert_contains "$out" "types numeric public.mood integer[] public.pair bpchar timestamp with time zone interval" \
    "column types: built-in, enum, array, composite, char(n)"
h__note "array of enum and domain column types: $(grep typemsg <<<"$out")"
h_assert_contains "$out" "key ['id']" "the primary key is marked as key"

out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
ups = [(t, c) for t in s.txns() for c in t.changes if c.get("table") == "toast" and c["op"] == "U"]
print("updates", len(ups))
for t, c in ups:
    print("id", c["new"]["id"], "big", json.dumps(c["new"]["big"]) if isinstance(c["new"]["big"], dict)
          else ("len%d" % len(c["new"]["big"]) if c["new"]["big"] else "null"),
          "old" in c)
ins = [c for t in s.txns() for c in t.changes if c.get("table") == "toast" and c["op"] == "I"]
print("inserted_lengths", sorted(len(c["new"]["big"]) for c in ins))
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "updates 4" "four updates of the TOAST table"
h_assert_contains "$out" 'id 1 big {"unchanged": true} False' "an update of another column marks the TOAST value unchanged (no NULL, no old tuple)"
h_assert_contains "$out" 'id 2 big {"unchanged": true} False' "... also for the second row of a multi-row update"
h_assert_contains "$out" 'id 3 big len9' "an update that changed the TOAST column sends the new value"
h_assert_contains "$out" "inserted_lengths [9600, 9600, 9600]" "inserts carry the full 9600-byte value"

out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
for t in s.txns():
    for c in t.changes:
        if c.get("table") == "Comp Key" and c["op"] in ("U", "D") and c["new" if c["op"] == "U" else "old"]["id"] in ("1", "1006", "9"):
            print(c["op"], c["new"]["id"] if c["op"] == "U" else "-", json.dumps(c.get("old")), c["key"])
        if c.get("table") == "full_ident" and c["op"] in ("U", "D"):
            print("full", c["op"], json.dumps(c["old"]), c["key"])
        if c.get("table") == "nokey":
            print("nokey", c["op"], c["key"])
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "U 1 null ['tenant-id', 'id', 'sub']" "composite key: an update keeping the key has no old tuple"
h_assert_contains "$out" 'U 1006 {"tenant-id": "t0", "id": "6", "sub": "1", "v": null}' \
    "composite key: a key change carries the old key (non-key columns null)"
h_assert_contains "$out" 'D - {"tenant-id": "t0", "id": "9", "sub": "4", "v": null}' \
    "composite key: a delete carries the old key"
h_assert_contains "$out" "full U {\"a\": \"1\", \"b\": \"one\"} ['a', 'b']" "REPLICA IDENTITY FULL: the whole old row"
h_assert_contains "$out" "nokey I []" "a table without a key: inserts still published, no key column"

out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
for t in s.txns():
    ops = [c["op"] for c in t.changes]
    if "T" in ops:
        print("trunc", [(c["tables"], c["cascade"], c["restart_identity"]) for c in t.changes if c["op"] == "T"], ops)
    if "M" in ops:
        print("msg", [(c["op"], c.get("prefix"), c.get("content"), c.get("content_hex")) for c in t.changes])
print("nontx", any(c.get("prefix") == "nontx" for t in s.txns() for c in t.changes))
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "trunc [(['public.trunc_a'], False, False)] ['T']" "TRUNCATE of one table"
h_assert_contains "$out" "trunc [(['public.trunc_a', 'public.trunc_b'], False, True)] ['T', 'I']" \
    "TRUNCATE of two tables with RESTART IDENTITY, then an insert, in one transaction"
h_assert_contains "$out" "msg [('M', 'app', 'hello', '68656c6c6f'), ('I', None, None, None), ('M', 'bin', None, '00ff0a')]" \
    "transactional logical messages in order with the rows, text and binary content"
h_assert_contains "$out" "msg [('M', 'alone', 'only a message', '6f6e6c792061206d657373616765')]" \
    "a transaction holding only a logical message"
h_assert_contains "$out" "nontx False" "non-transactional logical messages are not published (no place in commit order)"

# DDL mid-stream: each change carries the relation definition it was decoded with, also when the
# definition changes inside a transaction (one relation entry per definition in the message).
out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
for t in s.txns():
    cs = [c for c in t.changes if c.get("table") == "ddl"]
    if cs:
        rels = [r for p in t.parts for r in json.loads(p["payload"])["relations"] if r["table"] == "ddl"]
        print("ddl", len(rels), [(c["new"]["id"], ",".join("%s:%s" % kv for kv in c["types"].items()),
                                  ",".join(str(v) for v in c["new"].values())) for c in cs])
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "ddl 1 [('1', 'id:integer,v:text', '1,before')]" "DDL: the row before ALTER TABLE"
h_assert_contains "$out" "ddl 2 [('2', 'id:integer,v:text,c:text', '2,added,c2'), ('3', 'id:integer,c:text', '3,c3')]" \
    "DDL: ADD COLUMN and DROP COLUMN inside one transaction give two relation entries"
h_assert_contains "$out" "ddl 1 [('4', 'id:integer,c:integer', '4,44')]" "DDL: a changed column type"

# partitioned tables: without publish_via_partition_root the leaf partitions are published, and a
# row moving between partitions is a delete in one and an insert in the other; through the root
# it is the same delete and insert on the root table.
out=$(fwd_py "$H_DIR/east.jsonl" <<'EOF'
print("leaf", sorted({c["table"] for t in s.txns() for c in t.changes if c.get("table", "").startswith("parted")}))
for t in s.txns():
    cs = [c for c in t.changes if c.get("table", "").startswith("parted")]
    if any(c["op"] != "I" for c in cs):
        print("east", [(c["op"], c["table"]) for c in cs])
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "leaf ['parted_east', 'parted_west']" "partitions published as themselves by default"
h_assert_contains "$out" "east [('D', 'parted_east'), ('I', 'parted_west')]" "row movement: delete + insert on the leaves"
out=$(fwd_py "$H_DIR/eastroot.jsonl" <<'EOF'
print("root", sorted({c["table"] for t in s.txns() for c in t.changes if "table" in c}))
for t in s.txns():
    if any(c["op"] not in ("I", "M") for c in t.changes):
        print("root", [(c["op"], c["table"]) for c in t.changes])
# logical decoding messages do not belong to a publication: every slot with messages on gets them
print("messages", sorted(c["prefix"] for t in s.txns() for c in t.changes if c["op"] == "M"))
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "root ['parted']" "publish_via_partition_root: published as the root table"
h_assert_contains "$out" "root [('U', 'parted')]" "... an update inside one partition is an update of the root"
h_assert_contains "$out" "root [('D', 'parted'), ('I', 'parted')]" "... row movement is delete + insert on the root"
h_assert_contains "$out" "messages ['alone', 'app', 'bin']" \
    "transactional logical messages reach every forwarder, whatever its publication"

# ---- the 100,000-row transaction ---------------------------------------------------------------
out=$(fwd_py "$H_DIR/east.jsonl" "$BULK_XID" "$MAX_BYTES" "$BULK_TOKEN" "$LAST_TOKEN" <<'EOF'
xid, limit, token, last_token = int(sys.argv[2]), int(sys.argv[3]), lsn(sys.argv[4]), lsn(sys.argv[5])
occ = [t for t in s.txns() if t.xid == xid]
t = occ[0]
parts = t.parts
print("occurrences", len(occ))
print("parts_numbered", [p["part"] for p in parts] == list(range(len(parts))), "several", len(parts) >= 10)
print("one_last", [p["last"] for p in parts].count(True), parts[-1]["last"])
print("same_commit_lsn", len({p["commit_lsn"] for p in parts}), "seq_only_last", [p["seq"] is not None for p in parts].count(True))
print("contiguous_offsets", [p["offset"] for p in parts] == list(range(parts[0]["offset"], parts[0]["offset"] + len(parts))))
print("rows", len(t.changes), "ords", [c["ord"] for c in t.changes] == list(range(100000)))
print("ids", sorted(int(c["new"]["id"]) for c in t.changes) == list(range(1, 100001)))
# A part is closed once it reaches message.max_bytes, so it ends with the change that crossed it:
# without that change it was below the limit.
def last_change_len(p):
    ch = json.loads(p["payload"])["changes"][-1]
    return len(json.dumps(ch, separators=(",", ":"), ensure_ascii=False).encode()) + 1
sizes = [len(p["payload"].encode()) for p in parts]
print("bounded", all(sz - last_change_len(p) < limit <= sz for sz, p in zip(sizes[:-1], parts)),
      "last_under", sizes[-1] - last_change_len(parts[-1]) < limit)
print("token", t.seq <= token)
lastt = s.txns()[-1]
print("last_seq_is_wal_lsn", lastt.seq == last_token)
EOF
) || h_fail "python check failed: $out"
h_assert_contains "$out" "occurrences 1" "100,000-row transaction published once"
h_assert_contains "$out" "parts_numbered True several True" "... as parts 0..n in a row (at least 10)"
h_assert_contains "$out" "one_last 1 True" "... exactly one last part, at the end"
h_assert_contains "$out" "same_commit_lsn 1 seq_only_last 1" "... one commit_lsn on every part, seq only on the last"
h_assert_contains "$out" "contiguous_offsets True" "... adjacent in the partition"
h_assert_contains "$out" "rows 100000 ords True" "... 100,000 rows with ordinals 0..99999"
h_assert_contains "$out" "ids True" "... every id once"
h_assert_contains "$out" "bounded True last_under True" \
    "... each part closed by the change that reached message.max_bytes (limit + one change)"
h_assert_contains "$out" "token True" "... its seq is not above pg_current_wal_lsn() read after COMMIT"
h_assert_contains "$out" "last_seq_is_wal_lsn True" "seq is the end of the commit record (equals pg_current_wal_lsn() after COMMIT on an idle source)"

h__note "test_forwarder_capture took $((($(h__now_ms) - T0) / 1000))s"
h_finish
