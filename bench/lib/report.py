#!/usr/bin/env python3
"""report.py - turn one benchmark run (raw.tsv, meta.tsv, commands.md, findings.txt,
settings.txt, micro.txt in --dir) into the side-by-side table on stdout and RESULTS.md.

raw.tsv: workload, system, mode, rep, metric, value (one measurement per line).
Medians are taken over the repetitions whose status is "ok" (contents verified equal)."""

import argparse
import os
import statistics
import sys
from collections import defaultdict

SYSTEMS = ("native", "xdcr")
WORKLOAD_NAMES = {"W1": "W1 bulk", "W2": "W2 OLTP", "W3": "W3 updates"}
NATIVE_ROLES = ("walsender", "apply")
XDCR_ROLES = ("walsender", "forwarder", "broker", "consumer", "apply")
ROLE_NAMES = {
    "walsender": "walsender (src)",
    "apply": "apply worker / consumer's backend (dst)",
    "forwarder": "xdcr-forwarder",
    "broker": "dev broker (mock)",
    "consumer": "xdcr-consumer",
}
# issue 8, item 5 (never asserted)
TARGETS = {
    ("W1", "rate_e2e"): 1.0, ("W2", "rate_e2e"): 1.0, ("W3", "rate_e2e"): 1.0,
    ("W1", "rate_catchup"): 1.5, ("W2", "rate_catchup"): 1.0, ("W3", "rate_catchup"): 1.0,
}


def read_tsv(path):
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    rows.append(parts)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def ratio(x, n, higher_is_better=True):
    if x is None or n is None or n == 0:
        return "n/a"
    return f"{x / n:.2f}x"


class Run:
    def __init__(self):
        self.m = {}

    def get(self, k):
        return self.m.get(k)

    def status(self):
        return self.m.get("status", "incomplete")


def load(d):
    runs = defaultdict(dict)  # (w, s, mode) -> rep -> Run
    for w, s, mode, rep, metric, value in (r[:6] for r in read_tsv(os.path.join(d, "raw.tsv")) if len(r) >= 6):
        run = runs[(w, s, mode)].setdefault(int(rep), Run())
        run.m[metric] = value
    return runs


def ok_runs(runs, key):
    return [r for _, r in sorted(runs.get(key, {}).items()) if r.status() == "ok"]


def med(runs, key, metric):
    return median([num(r.get(metric)) for r in ok_runs(runs, key)])


def med_all(runs, key, metric):
    """median over every repetition that has the metric (also failed ones)"""
    return median([num(r.get(metric)) for _, r in sorted(runs.get(key, {}).items())])


def cpu_total(run, roles):
    vals = [num(run.get("cpu_" + r)) for r in roles]
    vals = [v for v in vals if v is not None]
    return sum(vals) if vals else None


def med_cpu_total(runs, key, roles):
    return median([cpu_total(r, roles) for r in ok_runs(runs, key)])


def status_note(runs, key):
    reps = runs.get(key, {})
    if not reps:
        return "not run"
    bad = [r.status() for r in reps.values() if r.status() != "ok"]
    if not bad:
        return ""
    counts = defaultdict(int)
    for b in bad:
        counts[b] += 1
    return ", ".join(f"{k} {v}/{len(reps)}" for k, v in sorted(counts.items()))


def summary_rows(runs, workloads):
    """(workload, metric label, native, xdcr, ratio, target) rows of medians."""
    out = []
    for w in workloads:
        e = {s: (w, s, "e2e") for s in SYSTEMS}
        c = {s: (w, s, "catchup") for s in SYSTEMS}

        def cell(key, metric, digits=0):
            v = med(runs, key, metric)
            note = status_note(runs, key)
            text = fmt(v, digits)
            if note and note != "not run":
                text += f" ({note})"
            elif note == "not run":
                text = "not run"
            return v, text

        for label, keys, metric, digits, hib, tkey in (
            ("end-to-end rows/s", e, "rate", 0, True, "rate_e2e"),
            ("catch-up rows/s", c, "rate", 0, True, "rate_catchup"),
            ("apply lag p50 ms (e2e)", e, "lag_p50_ms", 2, False, None),
            ("apply lag p99 ms (e2e)", e, "lag_p99_ms", 2, False, None),
            ("source rate, replication paused, rows/s", c, "source_rate", 0, True, None),
        ):
            nv, nt = cell(keys["native"], metric, digits)
            xv, xt = cell(keys["xdcr"], metric, digits)
            t = TARGETS.get((w, tkey))
            target = f">= {t:.1f}x" if t else ""
            if metric == "lag_p99_ms" and w == "W2":
                target = "xdcr <= 10 ms"
            out.append((WORKLOAD_NAMES.get(w, w), label, nt, xt, ratio(xv, nv), target))
        stages = [med(runs, e["xdcr"], f"stage_{st}_ms") for st in ("capture", "transport", "apply")]
        if any(v is not None for v in stages):
            # from the consumer's xdcr_consumer_stage_delay_seconds: means per source transaction
            out.append((WORKLOAD_NAMES.get(w, w),
                        "xdcr apply delay by stage, mean ms (e2e): capture / transport / apply",
                        "", " / ".join(fmt(v, 2) for v in stages), "", ""))
        r = (w, "xdcr", "replay")
        if runs.get(r):
            # the apply engine alone (no broker) against native's catch-up: both apply a
            # backlog that is already there; native's also includes decoding it from the slot
            nv = med(runs, c["native"], "rate")
            xv, xt = cell(r, "rate")
            t = TARGETS.get((w, "rate_catchup"))
            out.append((WORKLOAD_NAMES.get(w, w),
                        "catch-up rows/s: xdcr apply engine alone (replay from file) vs native catch-up",
                        fmt(nv), xt, ratio(xv, nv), f">= {t:.1f}x" if t else ""))
            out.append((WORKLOAD_NAMES.get(w, w), "xdcr replay: consumer CPU s, peak RSS MB",
                        "", f"{fmt(med(runs, r, 'cpu_consumer'), 2)} s, "
                        f"{fmt(med(runs, r, 'rss_kb_consumer') / 1024 if med(runs, r, 'rss_kb_consumer') else None, 1)} MB",
                        "", ""))
        if runs.get(c["xdcr"]):
            out.append((WORKLOAD_NAMES.get(w, w),
                        "xdcr catch-up: consumer start -> partition assigned, s (all reps)",
                        "", fmt(med_all(runs, c["xdcr"], "startup_seconds"), 2), "", ""))
            # the consumer's start-up left out: the drain itself against native's catch-up
            nv = med(runs, c["native"], "rate")
            xv = med(runs, c["xdcr"], "drain_rate")
            out.append((WORKLOAD_NAMES.get(w, w), "xdcr catch-up rows/s after partition assigned (vs native catch-up)",
                        fmt(nv), fmt(xv), ratio(xv, nv), ""))
        for mode_label, keys in (("e2e", e), ("catch-up", c)):
            nv = med_cpu_total(runs, keys["native"], NATIVE_ROLES)
            xv = med_cpu_total(runs, keys["xdcr"], XDCR_ROLES)
            out.append((WORKLOAD_NAMES.get(w, w), f"CPU s, all replication processes ({mode_label})",
                        fmt(nv, 2), fmt(xv, 2), ratio(xv, nv), ""))
        for role, nrole in (("forwarder", "walsender"), ("consumer", "apply")):
            xv = med(runs, e["xdcr"], "cpu_" + role)
            nv = med(runs, e["native"], "cpu_" + nrole)
            out.append((WORKLOAD_NAMES.get(w, w), f"CPU s {role} (native: {nrole}) (e2e)",
                        fmt(nv, 2), fmt(xv, 2), "", ""))
        # catch-up runs give the consumer a bigger prefetch for the mock's retention
        # (BENCH_CATCHUP_PREFETCH_KB): their peaks are shown apart from the default's
        for mode, label in (("e2e", "e2e"), ("catchup", "catch-up")):
            for role, nrole in (("forwarder", "walsender"), ("consumer", "apply")):
                vals_x = [num(r.get("rss_kb_" + role)) for r in ok_runs(runs, (w, "xdcr", mode))]
                vals_n = [num(r.get("rss_kb_" + nrole)) for r in ok_runs(runs, (w, "native", mode))]
                xv = max([v for v in vals_x if v is not None], default=None)
                nv = max([v for v in vals_n if v is not None], default=None)
                if xv is None and nv is None:
                    continue
                target = "xdcr < 64 MB" if mode == "e2e" or role == "forwarder" else ""
                out.append((WORKLOAD_NAMES.get(w, w), f"peak RSS MB {role} (native: {nrole}) ({label})",
                            fmt(nv / 1024 if nv else None, 1), fmt(xv / 1024 if xv else None, 1), "",
                            target))
    return out


def text_table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(widths[i]) for i, h in enumerate(header)),
             "  ".join("-" * w for w in widths)]
    prev = None
    for r in rows:
        cells = list(r)
        if cells[0] == prev:
            cells[0] = ""
        else:
            prev = cells[0]
        lines.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(cells)).rstrip())
    return "\n".join(lines)


def md_table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def per_rep_tables(runs):
    out = []
    for key in sorted(runs):
        w, s, mode = key
        if s == "ceiling":
            continue
        roles = NATIVE_ROLES if s == "native" else XDCR_ROLES
        header = ["rep", "status", "seconds", "rows/s", "source rows/s", "lag p50 ms", "lag p99 ms",
                  "lag max ms", "lag rows", "startup s", "drain rows/s"] + [f"CPU s {r}" for r in roles] + [f"RSS MB {r}" for r in roles]
        rows = []
        for rep, r in sorted(runs[key].items()):
            problem = r.get("problem") or ""
            if len(problem) > 90:
                problem = problem[:87] + "..."
            row = [rep, r.status() + (f": {problem}" if problem else ""),
                   fmt(num(r.get("seconds")), 3), fmt(num(r.get("rate"))), fmt(num(r.get("source_rate"))),
                   fmt(num(r.get("lag_p50_ms")), 2), fmt(num(r.get("lag_p99_ms")), 2),
                   fmt(num(r.get("lag_max_ms")), 2), fmt(num(r.get("lag_rows"))),
                   fmt(num(r.get("startup_seconds")), 2), fmt(num(r.get("drain_rate")))]
            row += [fmt(num(r.get("cpu_" + ro)), 2) for ro in roles]
            row += [fmt(num(r.get("rss_kb_" + ro)) / 1024 if num(r.get("rss_kb_" + ro)) else None, 1) for ro in roles]
            rows.append(row)
        medrow = ["median", "", fmt(med(runs, key, "seconds"), 3), fmt(med(runs, key, "rate")),
                  fmt(med(runs, key, "source_rate")), fmt(med(runs, key, "lag_p50_ms"), 2),
                  fmt(med(runs, key, "lag_p99_ms"), 2), fmt(med(runs, key, "lag_max_ms"), 2),
                  fmt(med(runs, key, "lag_rows")), fmt(med(runs, key, "startup_seconds"), 2),
                  fmt(med(runs, key, "drain_rate"))]
        medrow += [fmt(med(runs, key, "cpu_" + ro), 2) for ro in roles]
        medrow += [fmt(med(runs, key, "rss_kb_" + ro) / 1024 if med(runs, key, "rss_kb_" + ro) else None, 1) for ro in roles]
        rows.append(medrow)
        mode_name = {"e2e": "end-to-end", "catchup": "catch-up",
                     "replay": "replay from file (apply engine alone)"}.get(mode, mode)
        out.append(f"#### {WORKLOAD_NAMES.get(w, w)} · {s} · {mode_name}\n\n"
                   + md_table(rows, header))
    return "\n\n".join(out)


def ceiling_rows(runs):
    rows = []
    for mode, label in (("decode", "pgoutput decoding of the W1 backlog (pg_recvlogical to /dev/null)"),
                        ("copy", "COPY of W1's rows into the target (psql COPY FROM STDIN)")):
        key = ("W1", "ceiling", mode)
        reps = runs.get(key, {})
        if not reps:
            continue
        per = ", ".join(fmt(num(r.get("rate"))) for _, r in sorted(reps.items()))
        rows.append((label, fmt(med(runs, key, "rate")), per))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    d = a.dir
    meta = {r[0]: "\t".join(r[1:]) for r in read_tsv(os.path.join(d, "meta.tsv"))}
    runs = load(d)
    workloads = sorted({k[0] for k in runs if k[1] in SYSTEMS})
    header = ["workload", "metric (median)", "native", "xdcr", "xdcr/native", "target"]
    rows = summary_rows(runs, workloads)
    ceil = ceiling_rows(runs)

    def readf(name):
        p = os.path.join(d, name)
        return open(p, encoding="utf-8").read().strip() if os.path.exists(p) else ""

    findings = [f for f in readf("findings.txt").splitlines() if f.strip()]
    micro = readf("micro.txt")

    # ---- stdout ----
    print()
    print(f"xdcr vs native logical replication - {meta.get('scale', '?')} scale, "
          f"{meta.get('reps', '?')} repetitions, medians")
    print(text_table(rows, header))
    if ceil:
        print()
        print(text_table([(c[0], c[1]) for c in ceil], ["ceiling", "rows/s"]))
    if micro:
        print()
        print(micro)
    if findings:
        print()
        print("findings:")
        for f in findings:
            print("  - " + f)
    print()

    # ---- RESULTS.md ----
    md = []
    md.append("# Benchmark results: xdcr against PostgreSQL native logical replication\n")
    md.append(f"Generated by `{meta.get('command', 'bench/run.sh')}` on {meta.get('date', '?')} "
              f"(commit {meta.get('commit', '?')}); {meta.get('scale', '?')} scale, "
              f"{meta.get('reps', '?')} alternating repetitions per system, workload and mode. "
              "Do not edit: rerun `bench/run.sh` (see bench/README.md).\n")
    md.append("## Summary (medians)\n")
    md.append("Rates are rows per second (W2: transactions per second, one row each). "
              "xdcr/native above 1 means xdcr is faster for rates, slower (worse) for lag and CPU. "
              "Medians cover the repetitions whose contents were verified equal by checksum; "
              "a repetition that failed is named in its cell.\n")
    md.append(md_table(rows, header) + "\n")
    md.append("Workloads:\n")
    for w in ("W1", "W2", "W3"):
        if meta.get("desc_" + w):
            md.append(f"- **{w}** {meta['desc_' + w]}")
    md.append("")
    if ceil:
        md.append("## Ceilings (for context)\n")
        md.append(md_table(ceil, ["ceiling", "rows/s (median)", "per repetition"]) + "\n")
    md.append("## Micro-benchmarks (pure code, one thread)\n")
    md.append("```\n" + (micro or "not run") + "\n```\n")
    md.append("## Findings\n")
    if findings:
        md.extend(f"- {f}" for f in findings)
    else:
        md.append("- none: every repetition completed and its contents matched.")
    md.append("")
    md.append("## What the dev broker bounds\n")
    md.append(
        "The xdcr figures pass through the dev broker, librdkafka's mock cluster (`xdcr dev-broker`), "
        "not a real Kafka:\n\n"
        "- **xdcr end-to-end and catch-up rates, apply lag, broker CPU**: every message is produced to "
        "and fetched from the mock, one process, in memory, over loopback TCP. Its request handling "
        "(single-threaded, no zero-copy, no batching optimisations of a real broker) is part of "
        "every xdcr figure; a real Kafka on separate machines adds network round trips but not "
        "this process's CPU on the database host.\n"
        "- **xdcr catch-up**: the mock keeps only about 5 MiB (or 100,000 message sets) per "
        "partition, hard-coded. Catch-up is measured like native (the backlog waits in the slot "
        "while forwarder and consumer are stopped); the consumer starts first and the forwarder "
        "once the consumer has its partition, so that the forwarder cannot publish the backlog "
        "past the mock's retention while the consumer starts. The consumer runs with "
        "`assignment = static` (one consumer for the target, as a subscription has one apply "
        "worker): it reads its partition without joining a consumer group, which would take "
        "about 3 s, the group's initial rebalance delay. The catch-up rate counts from the "
        "consumer's start; the row \"after partition assigned\" leaves its start-up out. The "
        "forwarder publishes a backlog several times faster than the consumer applies it, so the "
        "consumer must hold what the mock no longer keeps in its prefetch: catch-up runs raise "
        "`kafka.queued.max.messages.kbytes` from xdcr's 24 MB to librdkafka's own 64 MB "
        "(`BENCH_CATCHUP_PREFETCH_KB`), and their consumer RSS is shown apart. Once "
        "the forwarder publishes faster than the "
        "consumer applies, the consumer's next offset may fall below the low watermark: it then "
        "must halt with a retention gap, reported under Findings, and that catch-up has no rate. "
        "A backlog larger than 5 MiB of JSON can be drained only while the consumer stays within "
        "5 MiB of the forwarder, so the catch-up figure measures the pipeline, not the "
        "consumer's apply engine alone.\n"
        "- **xdcr apply lag**: the mock answers a Fetch that finds no new data only after the "
        "consumer's full `fetch.wait.max.ms`, even when data arrives meanwhile (a real broker "
        "answers as soon as data arrives). With librdkafka's default of 500 ms that alone puts "
        "hundreds of milliseconds into every lag figure; the bench sets a small "
        "`kafka.fetch.wait.max.ms` for the consumer (2 ms unless `BENCH_CONS_FETCH_WAIT_MS` says "
        "otherwise; shown in the commands below), which leaves up to that much of the lag to the "
        "mock and costs fetch requests. The row \"apply delay by stage\" (from the consumer's "
        "`xdcr_consumer_stage_delay_seconds`) shows where it goes: `transport` (Kafka "
        "timestamp to the consumer taking the message) holds the producer's `linger.ms` and "
        "the mock's fetch.\n"
        "- **xdcr replay (the apply engine alone)**: not bounded by the broker in its timed part. "
        "The broker only carries the recording, before the timing starts; a recorder that falls "
        "behind its retention is reported under Findings.\n"
        "- **Peak RSS of the forwarder**: bounded by its in-flight limits, not by the broker; the "
        "broker's own memory (all retained data) is not counted against xdcr.\n"
        "- **Not bounded by the broker**: the native figures, the xdcr replay figures, the "
        "ceilings, the micro-benchmarks, the source rates.\n")
    md.append("## Machine and PostgreSQL\n")
    for k, label in (("nproc", "CPUs (nproc)"), ("cpu", "CPU model"), ("memory", "memory"),
                     ("kernel", "kernel"), ("postgres", "PostgreSQL")):
        md.append(f"- {label}: {meta.get(k, '?')}")
    md.append(f"- load average (1, 5, 15 min) before the runs: {meta.get('load_start', '?')}, after: "
              f"{meta.get('load_end', '?')} (the benchmark itself keeps about 1-2 CPUs busy; "
              "anything else running on the machine shows here)")
    md.append("- both clusters: initdb `-E UTF8 --locale=C -N`, started by tests/support/harness.sh, "
              "identical settings (checked by the run), **fsync on**, synchronous_commit on; "
              "loopback, unix sockets for every PostgreSQL connection")
    md.append(f"- build: `{meta.get('build', '?')}`")
    md.append("\nNon-default settings (pg_settings, source other than default; the same on src and dst):\n")
    md.append("```\n" + readf("settings.txt") + "\n```\n")
    md.append("## Method\n")
    md.append(
        "- Two clusters, **src** and **dst**. Before every run both get a fresh `bench_items` (and the "
        "one-row `bench_marker`), the same preload (W2, W3), `VACUUM (FREEZE, ANALYZE)` and a "
        "`CHECKPOINT`. Replication is then set up from scratch (native: publication + subscription "
        "with `copy_data = false`; xdcr: a fresh dev broker, forwarder, consumer, new slot, empty "
        "`xdcr` schema) and proven with a warm-up transaction.\n"
        "- Systems alternate within each repetition: for each workload and mode, rep 1 native, rep 1 "
        "xdcr, rep 2 native, ...\n"
        "- **End-to-end**: from the start of the workload to the moment dst has applied the "
        "marker transaction committed right after the workload (commit order implies everything "
        "before it is applied). A procedure on dst polls every 5 ms, committing between polls, "
        "and reports the dst clock; the contents are then compared: `md5(string_agg(t::text, '' "
        "ORDER BY id))` and `count(*)` equal on both sides.\n"
        "- **Catch-up**: native: `ALTER SUBSCRIPTION ... DISABLE` before the workload, `ENABLE` "
        "after it; xdcr: forwarder and consumer stopped (SIGTERM) before, started after. Rate = "
        "rows / (resume -> marker applied); the backlog is decoded from the slot in both cases.\n"
        "- Each system runs with its defaults otherwise. Note that a native subscription's apply "
        "worker commits with `synchronous_commit = off` (the subscription default), so it does not "
        "wait for a WAL flush per applied transaction; the xdcr consumer's session uses the "
        "server's `synchronous_commit = on`.\n"
        "- **Apply lag** (end-to-end runs, same method for both systems, no triggers): per row "
        "still present at the end, dst commit time of the transaction that wrote it (from dst's "
        "WAL commit records via pg_waldump; `pg_xact_commit_timestamp` at dst returns the origin's "
        "commit time, because both systems apply under a replication origin) minus src commit time "
        "(`pg_xact_commit_timestamp(xmin)`, track_commit_timestamp = on). p50, p99 and max over those "
        "rows.\n"
        "- **CPU** = utime + stime from /proc/PID/stat of each process between workload start and "
        "marker applied (end-to-end), or over the process's life (catch-up: they start at resume). "
        "**Peak RSS** = VmHWM (PostgreSQL backends include the shared buffers they touched).\n"
        "- The workloads run on the same 2-CPU machine as both clusters and the replication "
        "processes, so replication competes with the workload for CPU in end-to-end runs.\n")
    md.append("## Exact commands\n")
    md.append(readf("commands.md") + "\n")
    md.append("## Per-repetition numbers\n")
    md.append(f"Raw data: `{meta.get('results_dir', d)}/raw.tsv`; daemon logs of the xdcr runs in `logs/` there.\n")
    md.append(per_rep_tables(runs) + "\n")
    with open(a.results, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
