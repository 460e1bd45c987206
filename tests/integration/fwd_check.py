#!/usr/bin/python3
"""fwd_check.py - checks what the forwarder published, from `xdcr tail` output (one decoded JSON
line per Kafka message), for the forwarder integration tests.

  fwd_check.py stream TAIL [--pg CONNINFO --expect-sql SQL] [--expect-file FILE]
                           [--log-table SCHEMA.TABLE]
      Assembles transactions from their parts and checks the stream contract:
      - every message decoded and verified (no "error" line);
      - parts of a transaction are 0..n in a row with one commit_lsn/xid/prev, only the last
        has seq, ordinals run 0..N-1 across parts;
      - a transaction published more than once has the same seq, commit_lsn and changes;
      - first occurrences have strictly increasing seq (per-origin commit order), one seq per xid;
        with --reordered-ok a failed delivery may have left later messages of the failed stream
        ahead of the re-stream ("message N fails, N+1 lands", docs/design-notes.md), and order
        is checked as the consumer sees it: through the chaining rule;
      - the consumer's chaining rule (docs/design-notes.md) applied in offset order yields every
        transaction exactly once, in seq order, and its position never goes backwards;
      - with --expect-sql (a query returning the committed source xids, one per row, run after
        the topic was read): every xid is in the stream, unless --expect-file (xids, blank
        separated: a snapshot taken before the slot confirmed it) narrows what must be there;
        with --log-table too, every transaction writing to that table must be committed (no
        phantom: nothing uncommitted was published).
      Prints one JSON summary line; exit 1 when a check failed (reasons on stderr).

  fwd_check.py state TAIL --pg CONNINFO [--table SCHEMA.TABLE]...
      Replays the transactions the chaining rule applies (inserts, updates with unchanged-TOAST
      columns kept, deletes, truncates) and compares every table seen (or the given ones) row by
      row with the source's `col::text` values. Exit 1 on any difference.

Used as a module by tests that check more specific things (import fwd_check; load(path)).
"""
import argparse
import json
import os
import subprocess
import sys


def lsn(s):
    """'16/B374D848' -> int; None -> 0."""
    if s is None:
        return 0
    hi, lo = s.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


class Txn:
    """One complete occurrence of a source transaction in the topic (all its parts)."""

    def __init__(self, first):
        self.xid = first["xid"]
        self.commit_lsn = lsn(first["commit_lsn"])
        self.prev = lsn(first.get("prev"))
        self.commit_time = first["commit_time"]
        self.parts = [first]
        self.seq = 0
        self.offset = first["offset"]  # offset of part 0
        self.last_offset = first["offset"]

    @property
    def changes(self):
        return [c for p in self.parts for c in p["changes"]]


class Stream:
    def __init__(self, lines):
        self.msgs = []
        self.errors = []  # contract violations
        self.bad = []  # messages that failed verification
        self.items = []  # complete Txn and mark dicts, in offset order of their last message
        self.abandoned = 0  # incomplete part sequences (a crash or restart between parts)
        for ln in lines:
            ln = ln.strip()
            if not ln:
                continue
            m = json.loads(ln)
            if "error" in m:
                self.bad.append(m)
                continue
            self.msgs.append(m)
        self.msgs.sort(key=lambda m: (m["partition"], m["offset"]))
        if len({m["partition"] for m in self.msgs}) > 1:
            self.errors.append("messages of one origin in more than one partition")
        self._assemble()

    def err(self, s):
        self.errors.append(s)

    def _assemble(self):
        cur = None
        for m in self.msgs:
            if m["type"] == "mark":
                if cur is not None:
                    # a mark inside a transaction: the transaction was abandoned (re-stream)
                    self.abandoned += 1
                    cur = None
                if lsn(m.get("prev")) > lsn(m["seq"]):
                    self.err("mark at offset %d: prev above seq" % m["offset"])
                self.items.append(m)
                continue
            if m["part"] == 0:
                if cur is not None:
                    self.abandoned += 1
                cur = Txn(m)
            elif (cur is None or m["part"] != len(cur.parts) or
                  lsn(m["commit_lsn"]) != cur.commit_lsn or m["xid"] != cur.xid or
                  lsn(m.get("prev")) != cur.prev):
                # a part without its predecessors: only after a restart mid-transaction
                if cur is not None:
                    self.abandoned += 1
                self.abandoned += 1
                cur = None
                continue
            else:
                cur.parts.append(m)
                cur.last_offset = m["offset"]
            if m["last"]:
                cur.seq = lsn(m["seq"])
                self._check_txn(cur)
                self.items.append(cur)
                cur = None
            elif m.get("seq") is not None and lsn(m["seq"]) != lsn(m["commit_lsn"]):
                self.err("part %d at offset %d is not last but has seq %s" %
                         (m["part"], m["offset"], m["seq"]))
        if cur is not None:
            self.abandoned += 1

    def _check_txn(self, t):
        ords = [c["ord"] for c in t.changes]
        if ords != list(range(len(ords))):
            self.err("xid %d at offset %d: ordinals are not 0..%d in a row" %
                     (t.xid, t.offset, len(ords) - 1))
        if not t.changes:
            self.err("xid %d at offset %d: a transaction without changes" % (t.xid, t.offset))
        if not t.seq > t.commit_lsn:
            self.err("xid %d at offset %d: seq not above commit_lsn" % (t.xid, t.offset))
        if t.prev > t.commit_lsn:
            self.err("xid %d at offset %d: prev above commit_lsn" % (t.xid, t.offset))
        for p in t.parts:
            if p["commit_time"] != t.commit_time:
                self.err("xid %d: parts with different commit times" % t.xid)

    def txns(self):
        return [i for i in self.items if isinstance(i, Txn)]

    def marks(self):
        return [i for i in self.items if not isinstance(i, Txn)]

    def first_occurrences(self):
        seen, out = set(), []
        for t in self.txns():
            if t.xid not in seen:
                seen.add(t.xid)
                out.append(t)
        return out

    def stream_starts(self):
        """Messages without prev: the forwarder (re)started streaming."""
        n = 0
        for m in self.msgs:
            if m.get("prev") is None and (m["type"] == "mark" or m["part"] == 0):
                n += 1
        return n

    def apply_chaining_rule(self):
        """The consumer's rule over the stream: returns (applied items, skipped dups, gaps)."""
        a, applied, dups, gaps = 0, [], 0, 0
        for it in self.items:
            if isinstance(it, Txn):
                seq, prev, dup = it.seq, it.prev, it.commit_lsn < a
            else:
                seq, prev = lsn(it["seq"]), lsn(it.get("prev"))
                dup = seq <= a
            if dup:
                dups += 1
            elif prev == 0 or prev <= a:
                if seq < a:
                    self.err("position would go backwards")
                a = seq
                applied.append(it)
            else:
                gaps += 1
        return applied, dups, gaps

    def check(self, strict_order=True):
        by_xid = {}
        for t in self.txns():
            first = by_xid.setdefault(t.xid, t)
            if first is t:
                continue
            if (t.seq, t.commit_lsn) != (first.seq, first.commit_lsn):
                self.err("xid %d published at offsets %d and %d with different positions "
                         "(seq %x vs %x)" % (t.xid, first.offset, t.offset, first.seq, t.seq))
            elif t.changes != first.changes:
                self.err("xid %d published at offsets %d and %d with different changes" %
                         (t.xid, first.offset, t.offset))
        seqs = {}
        for t in self.first_occurrences():
            if seqs.setdefault(t.seq, t.xid) != t.xid:
                self.err("xids %d and %d share seq %x" % (seqs[t.seq], t.xid, t.seq))
        last, reordered = 0, 0
        for t in self.first_occurrences():
            if t.seq <= last:
                reordered += 1
                if strict_order:
                    self.err("xid %d (seq %x) first published after a transaction with seq %x: "
                             "commit order broken" % (t.xid, t.seq, last))
            last = max(last, t.seq)
        applied, dups, gaps = self.apply_chaining_rule()
        applied_txns = [i for i in applied if isinstance(i, Txn)]
        axids = [t.xid for t in applied_txns]
        if len(axids) != len(set(axids)):
            self.err("the chaining rule applied a transaction twice")
        missing = set(by_xid) - set(axids)
        if missing:
            self.err("the chaining rule never applied xids %s" % sorted(missing)[:20])
        return {"messages": len(self.msgs), "bad": len(self.bad),
                "marks": len(self.marks()), "txn_occurrences": len(self.txns()),
                "txns": len(by_xid), "duplicates": len(self.txns()) - len(by_xid),
                "abandoned_parts": self.abandoned, "stream_starts": self.stream_starts(),
                "rule_applied": len(applied_txns), "rule_duplicates": dups,
                "rule_gaps": gaps, "reordered_first": reordered,
                "max_parts": max([len(t.parts) for t in self.txns()] or [0])}


def load(path):
    with open(path, encoding="utf-8") as f:
        return Stream(f.readlines())


def psql(conninfo, sql):
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                         check=True, capture_output=True, text=True,
                         env=dict(os.environ, PGCONNECT_TIMEOUT="10",
                                  PGCLIENTENCODING="UTF8")).stdout
    return [ln for ln in out.split("\n") if ln != ""]


def qident(s):
    return '"' + s.replace('"', '""') + '"'


def touches(t, table):
    schema, name = table.split(".", 1)
    return any(c.get("schema") == schema and c.get("table") == name and c["op"] == "I"
               for c in t.changes)


def cmd_stream(a):
    s = load(a.tail)
    summary = s.check(strict_order=not a.reordered_ok)
    for b in s.bad[:5]:
        s.err("message at offset %s failed verification: %s" % (b.get("offset"), b["error"]))
    committed = None
    if a.expect_sql:
        committed = {int(x) for x in psql(a.pg, a.expect_sql)}
    expected = committed
    if a.expect_file:
        with open(a.expect_file, encoding="utf-8") as f:
            expected = {int(x) for x in f.read().split()}
    if expected is not None:
        got = {t.xid for t in s.txns()}
        missing = expected - got
        if missing:
            s.err("%d committed source transactions are not in Kafka, e.g. xids %s" %
                  (len(missing), sorted(missing)[:10]))
        summary["expected"] = len(expected)
    if committed is not None and a.log_table:
        logged = {t.xid for t in s.txns() if touches(t, a.log_table)}
        phantom = logged - committed
        if phantom:
            s.err("transactions in Kafka that the source did not commit: xids %s" %
                  sorted(phantom)[:10])
    print(json.dumps(summary, sort_keys=True))
    for e in s.errors[:30]:
        print("stream check: " + e, file=sys.stderr)
    return 1 if s.errors else 0


def replay(s, errors):
    """Tables (schema, table) -> {key tuple: {col: text}} from the applied transactions."""
    tables = {}
    applied, _, _ = s.apply_chaining_rule()
    for t in applied:
        if not isinstance(t, Txn):
            continue
        for c in t.changes:
            if c["op"] == "T":
                for name in c["tables"]:
                    tables[tuple(name.split(".", 1))] = {}
                continue
            if c["op"] == "M":
                continue
            rows = tables.setdefault((c["schema"], c["table"]), {})
            keycols = c["key"]
            if c["op"] in ("U", "D") and "old" in c:
                oldkey = tuple(c["old"][k] for k in keycols)
            elif c["op"] == "D":
                errors.append("xid %d: delete without old key" % t.xid)
                continue
            else:
                oldkey = tuple(c["new"][k] for k in keycols)
            if c["op"] == "D":
                if rows.pop(oldkey, None) is None:
                    errors.append("xid %d: delete of unknown row %s in %s.%s" %
                                  (t.xid, oldkey, c["schema"], c["table"]))
                continue
            row = dict(c["new"])
            if c["op"] == "U":
                prev = rows.pop(oldkey, None)
                for col, v in c["new"].items():
                    if isinstance(v, dict):
                        if prev is None or col not in prev:
                            errors.append("xid %d: unchanged value of %s for a row never seen" %
                                          (t.xid, col))
                        else:
                            row[col] = prev[col]
            elif any(isinstance(v, dict) for v in row.values()):
                errors.append("xid %d: unchanged marker on an insert" % t.xid)
            rows[tuple(row[k] for k in keycols)] = row
    return tables


def cmd_state(a):
    s = load(a.tail)
    # First occurrences may be out of commit order after an ambiguous delivery (the dev broker
    # does not enforce idempotent sequence numbers); the replay below applies the consumer's
    # chaining rule, which is what must restore order, and the row comparison proves it.
    s.check(strict_order=False)
    errors = list(s.errors)
    tables = replay(s, errors)
    names = [tuple(n.split(".", 1)) for n in a.table] if a.table else sorted(tables)
    for schema, name in names:
        rows = tables.get((schema, name), {})
        cols = psql(a.pg, "SELECT attname FROM pg_attribute WHERE attrelid = '%s.%s'::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum" %
                    (qident(schema), qident(name)))
        # the output function's text (format's %s), which pgoutput sends; `::text` differs
        # for boolean ('true' vs 't') and character(n) (padding)
        sel = ", ".join("CASE WHEN %s IS NOT NULL THEN format('%%s', %s) END" %
                        (qident(c), qident(c)) for c in cols)
        src = [json.loads(r) for r in psql(
            a.pg, "SELECT json_build_array(%s) FROM %s.%s" % (sel, qident(schema), qident(name)))]
        src = [dict(zip(cols, r)) for r in src]
        got = sorted(json.dumps(r, sort_keys=True) for r in rows.values())
        want = sorted(json.dumps(r, sort_keys=True) for r in src)
        if got != want:
            extra = sorted(set(got) - set(want))
            lack = sorted(set(want) - set(got))
            errors.append("%s.%s: Kafka replay has %d rows, the source %d; only in Kafka: %s; "
                          "only in the source: %s" % (schema, name, len(got), len(want),
                                                      [x[:300] for x in extra[:3]],
                                                      [x[:300] for x in lack[:3]]))
        else:
            print("%s.%s: %d rows equal" % (schema, name, len(got)))
    for e in errors[:30]:
        print("state check: " + e, file=sys.stderr)
    return 1 if errors else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stream")
    st.add_argument("tail")
    st.add_argument("--pg")
    st.add_argument("--expect-sql")
    st.add_argument("--expect-file")
    st.add_argument("--log-table")
    st.add_argument("--reordered-ok", action="store_true")
    sa = sub.add_parser("state")
    sa.add_argument("tail")
    sa.add_argument("--pg", required=True)
    sa.add_argument("--table", action="append", default=[])
    a = p.parse_args()
    return cmd_stream(a) if a.cmd == "stream" else cmd_state(a)


if __name__ == "__main__":
    sys.exit(main())
