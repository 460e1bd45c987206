/*
 * consumer.c - the consumer's main loop and its per-partition state: positioning at assignment,
 * reading one partition at a time into batches (one origin per target transaction, source
 * transactions never split across target transactions), the stream rules, failure handling
 * (retry, isolate the failing transaction, halt or dead-letter it), operator actions picked up
 * from the target, and the drain on SIGTERM. Single-threaded: librdkafka's rebalance callback
 * runs from cons_source_poll() on this thread. Publishes its state (cons_status) for the HTTP
 * thread and systemd, and ticks the liveness clock in every wait.
 */
#include "consumer.h"

#include "cons_notify.h"
#include "cons_stream.h"
#include "kafka_consumer.h"
#include "pg_apply.h"
#include "replay.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EK_DECODE, EK_SCHEMA, EK_APPLY, EK_GAP, EK_IDENTITY, EK_POSTGRES, EK_KAFKA, EK_N };
static const char *const error_kinds[EK_N] = {"decode",   "schema",   "apply", "gap",
                                              "identity", "postgres", "kafka"};
enum { OP_INSERT, OP_UPDATE, OP_DELETE, OP_TRUNCATE, OP_N };
static const char *const op_names[OP_N] = {"insert", "update", "delete", "truncate"};

/* The stages of xdcr_consumer_stage_delay_seconds, cut at the Kafka timestamp and the take. */
enum { STAGE_CAPTURE, STAGE_TRANSPORT, STAGE_APPLY, STAGE_N };
static const char *const stage_names[STAGE_N] = {"capture", "transport", "apply"};

/* Metric series of one origin. */
typedef struct omet {
    xdcr_series_t *txns, *rows[OP_N], *dups, *ooo, *batches, *batch_rows, *apply_seconds;
    xdcr_series_t *missing[2], *dead_letters, *halted, *applied_seq, *retries, *errors[EK_N];
    xdcr_series_t *apply_delay, *stage_delay[STAGE_N];
    xdcr_series_t *conflicts[CONS_CONFLICT_KINDS][2]; /* [kind][0 kept local, 1 applied] */
    xdcr_series_t *copies[2];                         /* COPY groups: [0] copied, [1] upserted */
} omet_t;

/* One assigned (or once assigned) partition of a remote origin's topic. */
typedef struct cpart {
    char *topic;
    int32_t partition;
    const char *origin;
    omet_t *m;
    bool assigned;
    bool positioned; /* stored position read and the partition seeked to it */
    bool standby;    /* another session holds the origin's replication origin: waiting */

    cons_position_t pos;     /* as committed (or read) */
    cons_stream_t stream;    /* working state, including the open batch */
    cons_stream_t committed; /* state at pos */
    bool have_identity;      /* source system id and timeline known (working) */
    uint64_t sysid;
    uint32_t timeline;
    int64_t next_offset;      /* offset after the last message consumed; -1 when unknown */
    xdcr_lsn_t skipped_ahead; /* highest seq skipped because an earlier message was missing */
    int64_t ahead_offset;     /* replay: where to read again for the first such message not yet
                                 made up for; positions stay there, so a fuller recording
                                 applies it */
    int64_t boundary_offset;  /* replay: after the last message that left no transaction open */
    int64_t isolate_until;    /* -1, or: one source transaction per batch up to this offset */

    bool halted;
    int halt_code;
    const char *halt_kind; /* error_kinds[] entry, for /status */
    char halt_error[XDCR_ERROR_MSG_MAX];
    xdcr_lsn_t halt_seq;
    int64_t halt_offset;
    int64_t halt_version;  /* position version when halted: a change means an operator acted */
    int64_t halt_max_skip; /* highest skip request id when halted */
    int64_t next_check_ms;

    int64_t *skip_ids; /* pending operator skip requests */
    xdcr_lsn_t *skip_lsns;
    size_t nskips;

    /* the transaction being discarded (operator skip or dead letter) instead of applied */
    bool discarding, discard_skip;
    int64_t discard_skip_id;
    /* a transaction that failed alone under on_error = dead_letter: discard it when it comes */
    bool dl_set;
    xdcr_lsn_t dl_key;
    int64_t dl_offset;
    char dl_table[256];
    char dl_error[XDCR_ERROR_MSG_MAX];
    void *dl_payload; /* copy of the failing message's payload */
    size_t dl_len;
} cpart_t;

/* The open target transaction (at most one, for one partition). */
typedef struct batch {
    cpart_t *p; /* NULL when none is open */
    int64_t opened_ms;
    uint64_t rows, bytes, txns, dups, ooo, dead;
    uint32_t txns_begun;
    int64_t last_offset;
    bool applied;          /* a transaction or mark moved the position */
    xdcr_lsn_t origin_lsn; /* for pg_replication_origin_xact_setup */
    int64_t origin_time_us;
    int64_t commit_time_us; /* of the last applied transaction */
    int64_t mark_time_us;
    xdcr_lsn_t wal_lsn;
    xdcr_lsn_t txn_key; /* commit_lsn (or seq) of the transaction begun last */
    int64_t txn_first_offset;
    uint32_t subcommits; /* target transactions committed inside this pipeline */
} batch_t;

/* Times of one applied source transaction, microseconds since the epoch. */
typedef struct txn_time {
    int64_t commit_us; /* source commit */
    int64_t kafka_us;  /* its (last) message's Kafka timestamp, -1 when unknown or replayed */
    int64_t taken_us;  /* the consumer took that message to apply */
} txn_time_t;

struct cons {
    cons_env_t env;
    const cons_config_t *cfg;
    const xdcr_log_t *lg;
    cons_pg_t *pg;
    cons_source_t *source; /* Kafka, or a recording (replay.file) */
    omet_t *om;            /* per configured origin */
    cpart_t **parts;
    size_t nparts;
    batch_t b;
    size_t rr; /* round-robin position over parts */
    int64_t backoff_ms;
    int64_t retry_at_ms;
    int last_halt_code;
    int crash_hits;
    bool pg_down_logged;
    uint64_t iterations;

    cons_status_t *st;          /* published state (env) */
    cons_origin_status_t *view; /* scratch for publishing, one per configured origin */
    cons_notify_t notify;       /* systemd */
    bool started;               /* schema installed, READY=1 sent */
    int64_t next_publish_ms;
    bool publish_now;
    char last_error[XDCR_ERROR_MSG_MAX];
    int64_t last_error_us;
    char kafka_error_seen[256];
    txn_time_t *txn_times; /* the open batch's source transactions, for the delay histograms */
    int64_t next_purge_ms; /* active-active: next removal of expired tombstones */
    size_t ntxn_times, txn_times_cap;
};

/* ---- time, crash points ------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A sign of life for /livez and the systemd watchdog: from every wait, however long. */
static void touch(cons_t *c)
{
    int64_t now = mono_ms();

    cons_status_tick(c->st, now);
    cons_notify_watchdog(&c->notify, now);
}

static void publish(cons_t *c, int64_t now);

/* From inside PostgreSQL waits: alive, and /status stays current (Kafka goes on meanwhile). */
static void pg_tick(void *ctx)
{
    cons_t *c = ctx;

    touch(c);
    publish(c, mono_ms());
}

/* Sleep until deadline (or stop) in small steps, alive meanwhile. */
static void sleep_until(cons_t *c, int64_t deadline)
{
    while (!*c->env.stop && mono_ms() < deadline) {
        touch(c);
        usleep(20000);
    }
}

/* The last error for /status (each is also logged once where it is handled). */
static void note_error(cons_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(cons_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
    c->last_error_us = wall_us();
    c->publish_now = true;
}

/* Test builds stop dead at a named point ("name" or "name:N" for the N-th time). */
static void crash_point(cons_t *c, const char *name)
{
    const char *cp = c->env.crash_point;
    size_t n = strlen(name);

    if (cp == NULL || strncmp(cp, name, n) != 0 || (cp[n] != '\0' && cp[n] != ':'))
        return;
    if (cp[n] == ':' && ++c->crash_hits < atoi(cp + n + 1))
        return;
    fprintf(stderr, "crash point %s reached\n", name);
    _exit(99);
}

static void backoff(cons_t *c)
{
    c->retry_at_ms = mono_ms() + c->backoff_ms;
    c->backoff_ms *= 2;
    if (c->backoff_ms > c->cfg->backoff_max_ms)
        c->backoff_ms = c->cfg->backoff_max_ms;
}

/* ---- metrics ------------------------------------------------------------------------------- */

static int register_metrics(cons_t *c, xdcr_error_t *err)
{
    static const char *const l_origin[] = {"origin", NULL};
    static const char *const l_op[] = {"origin", "op", NULL};
    static const char *const l_kind[] = {"origin", "kind", NULL};
    static const double rows_buckets[] = {1, 10, 100, 1000, 10000, 100000};
    static const double secs_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60};
    static const double delay_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1,     2.5,    5,     10,   30,    60,   120, 300,  600};
    xdcr_metrics_t *m = c->env.metrics;
    static const char *const l_conflict[] = {"origin", "kind", "resolution", NULL};
    static const char *const l_result[] = {"origin", "result", NULL};
    static const char *const l_stage[] = {"origin", "stage", NULL};
    xdcr_metric_t *f[18];

    f[0] = xdcr_metrics_register(m, "xdcr_consumer_transactions_applied_total",
                                 "Source transactions applied to the target.", XDCR_METRIC_COUNTER,
                                 l_origin, NULL, 0, err);
    f[1] = xdcr_metrics_register(m, "xdcr_consumer_rows_applied_total",
                                 "Row changes applied to the target, by operation.",
                                 XDCR_METRIC_COUNTER, l_op, NULL, 0, err);
    f[2] = xdcr_metrics_register(m, "xdcr_consumer_duplicates_skipped_total",
                                 "Messages skipped because they were already applied.",
                                 XDCR_METRIC_COUNTER, l_origin, NULL, 0, err);
    f[3] = xdcr_metrics_register(
        m, "xdcr_consumer_out_of_order_skipped_total",
        "Messages skipped because an earlier message of their stream was missing (the "
        "forwarder re-streams them).",
        XDCR_METRIC_COUNTER, l_origin, NULL, 0, err);
    f[4] = xdcr_metrics_register(m, "xdcr_consumer_batches_total", "Target transactions committed.",
                                 XDCR_METRIC_COUNTER, l_origin, NULL, 0, err);
    f[5] =
        xdcr_metrics_register(m, "xdcr_consumer_batch_rows", "Row changes per target transaction.",
                              XDCR_METRIC_HISTOGRAM, l_origin, rows_buckets, 6, err);
    f[6] = xdcr_metrics_register(m, "xdcr_consumer_apply_seconds",
                                 "Time from opening a target transaction to its commit.",
                                 XDCR_METRIC_HISTOGRAM, l_origin, secs_buckets, 10, err);
    f[7] = xdcr_metrics_register(m, "xdcr_consumer_missing_rows_total",
                                 "Updates and deletes whose row was missing at the target.",
                                 XDCR_METRIC_COUNTER, l_op, NULL, 0, err);
    f[8] = xdcr_metrics_register(m, "xdcr_consumer_errors_total",
                                 "Errors while consuming or applying, by kind.",
                                 XDCR_METRIC_COUNTER, l_kind, NULL, 0, err);
    f[9] = xdcr_metrics_register(m, "xdcr_consumer_dead_letters_total",
                                 "Messages or transactions stored in the dead-letter table.",
                                 XDCR_METRIC_COUNTER, l_origin, NULL, 0, err);
    f[10] = xdcr_metrics_register(m, "xdcr_consumer_halted",
                                  "1 while applying the origin is halted and needs an operator.",
                                  XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    f[11] = xdcr_metrics_register(m, "xdcr_consumer_applied_seq",
                                  "Applied position (seq, as a number) of the origin.",
                                  XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    f[12] = xdcr_metrics_register(m, "xdcr_consumer_retries_total",
                                  "Target transactions rolled back and retried.",
                                  XDCR_METRIC_COUNTER, l_origin, NULL, 0, err);
    f[13] = xdcr_metrics_register(
        m, "xdcr_consumer_apply_delay_seconds",
        "Per applied source transaction: target commit time minus source commit time.",
        XDCR_METRIC_HISTOGRAM, l_origin, delay_buckets,
        sizeof(delay_buckets) / sizeof(delay_buckets[0]), err);
    f[14] = xdcr_metrics_register(
        m, "xdcr_consumer_conflicts_total",
        "Active-active conflicts found while applying, by kind and resolution (apply_remote: "
        "the remote change was applied, keep_local: it was not).",
        XDCR_METRIC_COUNTER, l_conflict, NULL, 0, err);
    f[15] = xdcr_metrics_register(
        m, "xdcr_consumer_copy_groups_total",
        "One-way: groups of inserts applied by COPY (copied), or that found a row already there "
        "and were applied by the upsert statement instead (upserted).",
        XDCR_METRIC_COUNTER, l_result, NULL, 0, err);
    f[16] = xdcr_metrics_register(
        m, "xdcr_consumer_stage_delay_seconds",
        "Per applied source transaction, the apply delay by stage: capture (source commit to the "
        "Kafka timestamp), transport (to the consumer taking it) and apply (to the target "
        "commit).",
        XDCR_METRIC_HISTOGRAM, l_stage, delay_buckets,
        sizeof(delay_buckets) / sizeof(delay_buckets[0]), err);
    f[17] = NULL;
    for (int i = 0; i < 17; i++)
        if (f[i] == NULL)
            return err->code != 0 ? err->code
                                  : xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    c->om = calloc(c->cfg->norigins, sizeof(*c->om));
    if (c->om == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    for (size_t o = 0; o < c->cfg->norigins; o++) {
        omet_t *om = &c->om[o];
        const char *lv[] = {c->cfg->origin_list[o], NULL, NULL};
        bool ok;

        om->txns = xdcr_metric_series(f[0], lv);
        om->dups = xdcr_metric_series(f[2], lv);
        om->ooo = xdcr_metric_series(f[3], lv);
        om->batches = xdcr_metric_series(f[4], lv);
        om->batch_rows = xdcr_metric_series(f[5], lv);
        om->apply_seconds = xdcr_metric_series(f[6], lv);
        om->dead_letters = xdcr_metric_series(f[9], lv);
        om->halted = xdcr_metric_series(f[10], lv);
        om->applied_seq = xdcr_metric_series(f[11], lv);
        om->retries = xdcr_metric_series(f[12], lv);
        om->apply_delay = xdcr_metric_series(f[13], lv);
        ok = om->txns && om->dups && om->ooo && om->batches && om->batch_rows &&
             om->apply_seconds && om->dead_letters && om->halted && om->applied_seq &&
             om->retries && om->apply_delay;
        for (int i = 0; i < OP_N; i++) {
            lv[1] = op_names[i];
            om->rows[i] = xdcr_metric_series(f[1], lv);
            ok = ok && om->rows[i] != NULL;
        }
        lv[1] = "update";
        om->missing[0] = xdcr_metric_series(f[7], lv);
        lv[1] = "delete";
        om->missing[1] = xdcr_metric_series(f[7], lv);
        ok = ok && om->missing[0] && om->missing[1];
        lv[1] = "copied";
        om->copies[0] = xdcr_metric_series(f[15], lv);
        lv[1] = "upserted";
        om->copies[1] = xdcr_metric_series(f[15], lv);
        ok = ok && om->copies[0] && om->copies[1];
        for (int i = 0; i < STAGE_N; i++) {
            lv[1] = stage_names[i];
            om->stage_delay[i] = xdcr_metric_series(f[16], lv);
            ok = ok && om->stage_delay[i] != NULL;
        }
        for (int i = 0; i < EK_N; i++) {
            lv[1] = error_kinds[i];
            om->errors[i] = xdcr_metric_series(f[8], lv);
            ok = ok && om->errors[i] != NULL;
        }
        for (int k = 0; k < CONS_CONFLICT_KINDS && c->cfg->mode == CONS_MODE_ACTIVE_ACTIVE; k++) {
            const char *cv[] = {c->cfg->origin_list[o], cons_conflict_kind_names[k], NULL, NULL};

            cv[2] = "keep_local";
            om->conflicts[k][0] = xdcr_metric_series(f[14], cv);
            cv[2] = "apply_remote";
            om->conflicts[k][1] = xdcr_metric_series(f[14], cv);
            ok = ok && om->conflicts[k][0] != NULL && om->conflicts[k][1] != NULL;
        }
        if (!ok)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    }
    return 0;
}

/* ---- partitions ------------------------------------------------------------------------------ */

static cpart_t *find_part(cons_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i]->partition == partition && strcmp(c->parts[i]->topic, topic) == 0)
            return c->parts[i];
    return NULL;
}

static cpart_t *get_part(cons_t *c, const char *topic, int32_t partition)
{
    cpart_t *p = find_part(c, topic, partition), **parts;
    size_t oi;

    if (p != NULL)
        return p;
    for (oi = 0; oi < c->cfg->norigins; oi++)
        if (strcmp(c->cfg->topics[oi], topic) == 0)
            break;
    if (oi == c->cfg->norigins)
        return NULL; /* not one of ours */
    parts = realloc(c->parts, (c->nparts + 1) * sizeof(*parts));
    if (parts == NULL)
        return NULL;
    c->parts = parts;
    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->topic = strdup(topic)) == NULL) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->origin = c->cfg->origin_list[oi];
    p->m = &c->om[oi];
    p->next_offset = -1;
    p->isolate_until = -1;
    p->ahead_offset = -1;
    p->boundary_offset = -1;
    c->parts[c->nparts++] = p;
    return p;
}

static void part_free(cpart_t *p)
{
    if (p == NULL)
        return;
    free(p->topic);
    free(p->skip_ids);
    free(p->skip_lsns);
    free(p->dl_payload);
    free(p);
}

static void clear_dl(cpart_t *p)
{
    p->dl_set = false;
    free(p->dl_payload);
    p->dl_payload = NULL;
    p->dl_len = 0;
}

static char *lsn_str(xdcr_lsn_t lsn, char *buf)
{
    return xdcr_lsn_format(lsn, buf);
}

/* ---- batches --------------------------------------------------------------------------------- */

static void reset_batch(cons_t *c)
{
    memset(&c->b, 0, sizeof(c->b));
    c->ntxn_times = 0;
}

/* Remember an applied transaction's times for the delay histograms (see commit_batch). */
static void note_txn_time(cons_t *c, int64_t commit_time_us, int64_t kafka_ms)
{
    if (c->ntxn_times == c->txn_times_cap) {
        size_t cap = c->txn_times_cap ? c->txn_times_cap * 2 : 64;
        txn_time_t *t = realloc(c->txn_times, cap * sizeof(*t));

        if (t == NULL)
            return; /* a metric sample less, nothing worse */
        c->txn_times = t;
        c->txn_times_cap = cap;
    }
    c->txn_times[c->ntxn_times].commit_us = commit_time_us;
    c->txn_times[c->ntxn_times].kafka_us = kafka_ms >= 0 ? kafka_ms * 1000 : -1;
    c->txn_times[c->ntxn_times].taken_us = wall_us();
    c->ntxn_times++;
}

static void observe_delay(xdcr_series_t *s, int64_t from_us, int64_t to_us)
{
    int64_t d = to_us - from_us;

    xdcr_series_observe(s, d > 0 ? (double)d / 1e6 : 0.0);
}

/* Restore the partition's working state to its committed position. */
static void restore_part(cpart_t *p)
{
    p->stream = p->committed;
    p->have_identity = p->pos.has_identity;
    p->sysid = p->pos.sysid;
    p->timeline = p->pos.timeline;
    p->discarding = false;
}

/*
 * Roll back the open batch. With seek, the partition is read again from its committed offset
 * (everything consumed since is re-delivered); without, reading goes on where it is (what was
 * consumed is given up for good: only for an abandoned split transaction, which the forwarder
 * re-streams, and before a halt).
 */
static void rollback_batch(cons_t *c, bool seek)
{
    cpart_t *p = c->b.p;
    xdcr_error_t e;

    if (p == NULL)
        return;
    cons_pg_rollback(c->pg);
    restore_part(p);
    if (c->b.subcommits > 0) {
        /* part of the batch is committed: the stored position is the truth */
        reset_batch(c);
        p->positioned = false;
        return;
    }
    reset_batch(c);
    if (!seek)
        return;
    /* pos.kafka_offset is the stored offset, or where a partition without one started */
    p->next_offset = p->pos.kafka_offset;
    if (p->pos.kafka_offset < 0 ||
        cons_source_seek(c->source, p->topic, p->partition, p->pos.kafka_offset, &e) != 0)
        p->positioned = false; /* position again before reading on */
}

static int open_batch(cons_t *c, cpart_t *p, xdcr_error_t *err)
{
    int rc;

    if (c->b.p == p)
        return 0;
    reset_batch(c);
    rc = cons_pg_begin(c->pg, p->origin, err);
    if (rc != 0) {
        cons_pg_rollback(c->pg);
        return rc;
    }
    c->b.p = p;
    c->b.opened_ms = mono_ms();
    return 0;
}

static void fail_batch(cons_t *c, const xdcr_error_t *err);

/* The open batch's position as it stands (the caller sets advance, notify, wait_gen and the
 * high watermark). The sub-commits of the batch wrote it already, each bumping its version. */
static void position_write(const cons_t *c, cons_pos_write_t *w)
{
    const batch_t *b = &c->b;
    const cpart_t *p = b->p;

    memset(w, 0, sizeof(*w));
    w->origin = p->origin;
    w->topic = p->topic;
    w->partition = p->partition;
    w->seq = p->stream.applied;
    w->commit_time_us = b->commit_time_us;
    w->kafka_offset =
        p->ahead_offset >= 0 && p->ahead_offset < p->next_offset ? p->ahead_offset : p->next_offset;
    w->has_identity = p->have_identity;
    w->sysid = p->sysid;
    w->timeline = p->timeline;
    w->mark_time_us = b->mark_time_us;
    w->source_wal_lsn = b->wal_lsn;
    w->resync = p->stream.resync;
    w->expect_version = (p->pos.exists ? p->pos.version : 0) + b->subcommits;
}

/* Write the position, commit, and account for the batch. On failure see fail_batch(). */
static int commit_batch(cons_t *c, xdcr_error_t *err)
{
    batch_t *b = &c->b;
    cpart_t *p = b->p;
    cons_pos_write_t w;
    cons_pg_stats_t st;
    int rc;

    if (p == NULL)
        return 0;
    position_write(c, &w);
    w.advance = w.seq > p->pos.seq;
    w.wait_gen = p->pos.wait_gen + (w.advance ? 1 : 0);
    w.high_watermark = cons_source_high_watermark(c->source, p->topic, p->partition, mono_ms());
    rc = cons_pg_put_position(c->pg, &w, err);
    if (rc == 0 && c->env.crash_point != NULL) {
        rc = cons_pg_wait_results(c->pg, err);
        if (rc == 0)
            crash_point(c, "after_rows");
    }
    if (rc == 0)
        rc = cons_pg_commit(c->pg, b->applied ? b->origin_lsn : 0, b->origin_time_us, &st, err);
    if (rc != 0)
        return rc;
    crash_point(c, "after_commit");
    /* committed: this is now the partition's position */
    p->pos.exists = true;
    p->pos.version = w.expect_version + 1;
    p->pos.seq = w.seq;
    p->pos.kafka_offset = w.kafka_offset;
    p->pos.has_identity = w.has_identity;
    p->pos.sysid = w.sysid;
    p->pos.timeline = w.timeline;
    p->pos.resync = w.resync;
    p->pos.wait_gen = w.wait_gen;
    if (b->commit_time_us > 0)
        p->pos.commit_time_us = b->commit_time_us;
    if (b->mark_time_us > p->pos.mark_time_us)
        p->pos.mark_time_us = b->mark_time_us;
    if (b->wal_lsn > p->pos.source_wal_lsn)
        p->pos.source_wal_lsn = b->wal_lsn;
    if (w.high_watermark >= 0)
        p->pos.high_watermark = w.high_watermark;
    p->committed = p->stream;
    cons_source_commit(c->source, p->topic, p->partition, p->next_offset, true);
    xdcr_series_inc(p->m->batches, 1);
    xdcr_series_observe(p->m->batch_rows, (double)b->rows);
    xdcr_series_observe(p->m->apply_seconds, (double)(mono_ms() - b->opened_ms) / 1000.0);
    xdcr_series_inc(p->m->txns, (double)b->txns);
    xdcr_series_inc(p->m->rows[OP_INSERT], (double)st.inserts);
    xdcr_series_inc(p->m->rows[OP_UPDATE], (double)st.updates);
    xdcr_series_inc(p->m->rows[OP_DELETE], (double)st.deletes);
    xdcr_series_inc(p->m->rows[OP_TRUNCATE], (double)st.truncates);
    xdcr_series_inc(p->m->missing[0], (double)st.missing_updates);
    xdcr_series_inc(p->m->missing[1], (double)st.missing_deletes);
    xdcr_series_inc(p->m->copies[0], (double)st.copies);
    xdcr_series_inc(p->m->copies[1], (double)st.copy_fallbacks);
    for (int k = 0; k < CONS_CONFLICT_KINDS; k++)
        for (int r = 0; r < 2; r++)
            if (st.conflicts[k][r] > 0 && p->m->conflicts[k][r] != NULL)
                xdcr_series_inc(p->m->conflicts[k][r], (double)st.conflicts[k][r]);
    xdcr_series_inc(p->m->dups, (double)b->dups);
    xdcr_series_inc(p->m->ooo, (double)b->ooo);
    xdcr_series_inc(p->m->dead_letters, (double)b->dead);
    xdcr_series_set(p->m->applied_seq, (double)p->stream.applied);
    {
        int64_t now = wall_us();

        for (size_t i = 0; i < c->ntxn_times; i++) {
            const txn_time_t *t = &c->txn_times[i];

            observe_delay(p->m->apply_delay, t->commit_us, now);
            if (t->kafka_us >= 0) {
                observe_delay(p->m->stage_delay[STAGE_CAPTURE], t->commit_us, t->kafka_us);
                observe_delay(p->m->stage_delay[STAGE_TRANSPORT], t->kafka_us, t->taken_us);
            }
            observe_delay(p->m->stage_delay[STAGE_APPLY], t->taken_us, now);
        }
    }
    c->publish_now = true;
    if (p->isolate_until >= 0 && p->next_offset > p->isolate_until)
        p->isolate_until = -1;
    reset_batch(c);
    c->backoff_ms = c->cfg->backoff_initial_ms;
    return 0;
}

/*
 * One target transaction per source transaction (last_writer_wins), several per round trip: at
 * the end of a source transaction, while more messages wait, write the position and commit it
 * inside the open pipeline, then go on. The turnstile of wait_for() moves at the batch's final
 * commit; `xdcr wait` listeners are notified at each. On failure see fail_batch().
 */
static int subcommit_batch(cons_t *c, xdcr_error_t *err)
{
    batch_t *b = &c->b;
    cpart_t *p = b->p;
    cons_pos_write_t w;
    int rc;

    position_write(c, &w);
    w.advance = false;
    w.notify = w.seq > p->pos.seq;
    w.wait_gen = p->pos.wait_gen;
    w.high_watermark = -1;
    rc = cons_pg_put_position(c->pg, &w, err);
    if (rc == 0)
        rc = cons_pg_subcommit(c->pg, b->applied ? b->origin_lsn : 0, b->origin_time_us, err);
    if (rc != 0)
        return rc;
    b->subcommits++;
    b->txns_begun = 0;
    b->applied = false;
    return 0;
}

/* Commit, and hand a failure to fail_batch(); true when committed. */
static bool try_commit(cons_t *c)
{
    xdcr_error_t e;

    if (c->b.p == NULL)
        return true;
    if (commit_batch(c, &e) == 0)
        return true;
    fail_batch(c, &e);
    return false;
}

/* ---- halts ----------------------------------------------------------------------------------- */

typedef struct halt_info {
    int ek;   /* EK_* */
    int code; /* XDCR_EGAP, XDCR_EHALTED, XDCR_ESYSID */
    const char *error;
    int64_t offset;
    xdcr_lsn_t seq, commit_lsn;
    const char *table; /* or NULL */
} halt_info_t;

static const char *halt_hint(const cons_t *c, int ek)
{
    (void)c;
    switch (ek) {
    case EK_GAP:
        return "data is missing from Kafka: resynchronise the affected tables, then accept the "
               "gap with SELECT <schema>.accept_gap(origin, topic, partition, low watermark); "
               "see the runbook \"retention gap\"";
    case EK_IDENTITY:
        return "the source database changed identity (failover, restore): check for lost "
               "transactions, then SELECT <schema>.accept_source_identity(origin); see the "
               "runbook \"source identity\"";
    default:
        return "fix the target (or the source) and restart, or skip the transaction with SELECT "
               "<schema>.skip_transaction(origin, commit_lsn or seq); see the runbook \"halted "
               "origin\"";
    }
}

/* Stop applying p's origin: one error line, a metric, a row in <schema>.halts, paused. */
static void halt(cons_t *c, cpart_t *p, const halt_info_t *h, bool from_assign)
{
    char off[24], part[16], seq[XDCR_LSN_STRLEN], clsn[XDCR_LSN_STRLEN];
    cons_halt_row_t row;
    xdcr_error_t e;

    if (c->b.p == p)
        rollback_batch(c, false);
    p->halted = true;
    p->halt_code = h->code;
    p->halt_kind = error_kinds[h->ek];
    snprintf(p->halt_error, sizeof(p->halt_error), "%s", h->error);
    p->halt_seq = h->seq != 0 ? h->seq : h->commit_lsn;
    p->halt_offset = h->offset;
    note_error(c, "origin %s halted (%s): %s", p->origin, error_kinds[h->ek], h->error);
    p->discarding = false;
    c->last_halt_code = h->code;
    if (!from_assign)
        (void)cons_source_pause(c->source, p->topic, p->partition, true, &e);
    xdcr_series_set(p->m->halted, 1);
    xdcr_series_inc(p->m->errors[h->ek], 1);
    snprintf(off, sizeof(off), "%" PRId64, h->offset);
    snprintf(part, sizeof(part), "%d", (int)p->partition);
    XDCR_LOG_KV(c->lg, XDCR_LOG_ERROR, "origin halted", "origin", p->origin, "kind",
                error_kinds[h->ek], "topic", p->topic, "partition", part, "offset", off, "seq",
                h->seq != 0 ? lsn_str(h->seq, seq) : "", "commit_lsn",
                h->commit_lsn != 0 ? lsn_str(h->commit_lsn, clsn) : "", "table",
                h->table != NULL ? h->table : "", "error", h->error, "applied_seq",
                lsn_str(p->stream.applied, seq), "hint", halt_hint(c, h->ek));
    memset(&row, 0, sizeof(row));
    row.origin = p->origin;
    row.topic = p->topic;
    row.partition = p->partition;
    row.kind = error_kinds[h->ek];
    row.kafka_offset = h->offset;
    row.seq = h->seq;
    row.commit_lsn = h->commit_lsn;
    row.table_name = h->table;
    row.error = h->error;
    if (cons_pg_is_connected(c->pg) && cons_pg_record_halt(c->pg, &row, &e) != 0)
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not record the halt in the target", "error",
                    e.message);
    p->halt_version = p->pos.version;
    p->halt_max_skip = p->nskips > 0 ? p->skip_ids[p->nskips - 1] : 0;
    p->next_check_ms = mono_ms() + c->cfg->halt_check_ms;
}

/* ---- positioning --------------------------------------------------------------------------- */

static int load_skips(cons_t *c, cpart_t *p, xdcr_error_t *err)
{
    int64_t *ids;
    xdcr_lsn_t *lsns;
    size_t n;
    int rc = cons_pg_read_skips(c->pg, p->origin, &ids, &lsns, &n, err);

    if (rc != 0)
        return rc;
    free(p->skip_ids);
    free(p->skip_lsns);
    p->skip_ids = ids;
    p->skip_lsns = lsns;
    p->nskips = n;
    return 0;
}

/*
 * Read p's stored position and skip requests, set up its stream state, and find where to
 * start reading; a retention gap or a recreated topic halts it (*pause).
 */
static int position_part(cons_t *c, cpart_t *p, int64_t *start, bool *pause, bool from_assign,
                         xdcr_error_t *err)
{
    int64_t low = -1, high = -1;
    bool have_marks;
    int rc;

    *pause = false;
    *start = CONS_KAFKA_OFFSET_NONE;
    rc = cons_pg_read_position(c->pg, p->origin, p->topic, p->partition, &p->pos, err);
    if (rc == 0)
        rc = load_skips(c, p, err);
    /* waiters in wait_for() block on this origin's turnstile from now on */
    if (rc == 0)
        rc = cons_pg_turnstile_hold(c->pg, p->origin, p->pos.wait_gen, err);
    if (rc != 0)
        return rc;
    cons_stream_init(&p->stream, p->pos.seq, !p->pos.exists || p->pos.resync);
    p->committed = p->stream;
    restore_part(p);
    xdcr_series_set(p->m->applied_seq, (double)p->pos.seq);
    have_marks =
        cons_source_watermarks(c->source, p->topic, p->partition, 10000, &low, &high, err) == 0;
    if (!have_marks)
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN,
                    "could not read watermarks; gaps are detected when "
                    "reading",
                    "topic", p->topic, "error", err->message);
    if (p->pos.exists) {
        *start = p->pos.kafka_offset;
        /* (a replay file that ends before the stored position only holds what is applied) */
        if (have_marks && (p->pos.kafka_offset < low ||
                           (p->pos.kafka_offset > high && c->cfg->replay_file == NULL))) {
            char msg[XDCR_ERROR_MSG_MAX];
            halt_info_t h;

            snprintf(msg, sizeof(msg),
                     p->pos.kafka_offset < low
                         ? "retention gap: the next offset to apply (%" PRId64
                           ") is below the partition's low watermark %" PRId64 " (high %" PRId64
                           "): Kafka deleted messages that were never applied"
                         : "topic recreated or truncated: the next offset to apply (%" PRId64
                           ") is above the partition's high watermark (low %" PRId64
                           ", high %" PRId64 ")",
                     p->pos.kafka_offset, low, high);
            memset(&h, 0, sizeof(h));
            h.ek = EK_GAP;
            h.code = XDCR_EGAP;
            h.error = msg;
            h.offset = p->pos.kafka_offset;
            h.seq = p->pos.seq;
            p->positioned = true;
            p->next_offset = p->pos.kafka_offset;
            halt(c, p, &h, from_assign);
            *pause = true;
            return 0;
        }
    } else if (c->cfg->initial_position == CONS_INITIAL_LATEST) {
        *start = have_marks ? high : CONS_KAFKA_OFFSET_END;
    } else {
        *start = have_marks ? low : CONS_KAFKA_OFFSET_BEGINNING;
        if (have_marks && low > 0) {
            char off[24];

            snprintf(off, sizeof(off), "%" PRId64, low);
            XDCR_LOG_KV(c->lg, XDCR_LOG_WARN,
                        "no stored position: starting at the partition's low watermark; "
                        "changes before it are no longer in Kafka and need an initial copy",
                        "origin", p->origin, "topic", p->topic, "offset", off);
        }
    }
    p->next_offset = *start >= 0 ? *start : -1;
    if (!p->pos.exists)
        p->pos.kafka_offset = p->next_offset; /* where a rollback reads again from */
    p->positioned = true;
    /* a halt recorded by an earlier run is retried now; it is recorded again if it persists */
    if (cons_pg_clear_halt(c->pg, p->origin, p->topic, p->partition, err) != 0)
        return err->code;
    if (p->halted) {
        p->halted = false;
        xdcr_series_set(p->m->halted, 0);
    }
    return 0;
}

/* Position a partition outside the rebalance callback: read, seek, pause or resume. */
static int reposition(cons_t *c, cpart_t *p, xdcr_error_t *err)
{
    int64_t start;
    bool pause;
    int rc = position_part(c, p, &start, &pause, false, err);

    if (rc != 0)
        return rc;
    if (pause)
        return 0;
    if (start != CONS_KAFKA_OFFSET_NONE &&
        (rc = cons_source_seek(c->source, p->topic, p->partition, start, err)) != 0) {
        p->positioned = false;
        return rc;
    }
    return cons_source_pause(c->source, p->topic, p->partition, false, err);
}

static int connect_target(cons_t *c, xdcr_error_t *err)
{
    int rc = cons_pg_connect(c->pg, err);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < c->nparts; i++)
        c->parts[i]->positioned = false; /* positions may have moved while we were away */
    if (c->pg_down_logged)
        XDCR_LOG(c->lg, XDCR_LOG_INFO, "reconnected to the target PostgreSQL");
    c->pg_down_logged = false;
    return 0;
}

/* Position p for an assignment, retrying with back-off until it works; false on stop. */
static bool assign_position(cons_t *c, cpart_t *p, cons_tp_t *tp, const char *part)
{
    int64_t delay = c->cfg->backoff_initial_ms;
    xdcr_error_t e;

    while (!*c->env.stop) {
        int64_t until;

        if ((cons_pg_is_connected(c->pg) || connect_target(c, &e) == 0) &&
            position_part(c, p, &tp->offset, &tp->pause, true, &e) == 0)
            return true;
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not read the stored position; retrying", "topic",
                    p->topic, "partition", part, "error", e.message);
        if (!cons_pg_is_connected(c->pg))
            cons_pg_disconnect(c->pg);
        note_error(c, "could not read the stored position of %s: %s", p->origin, e.message);
        until = mono_ms() + delay;
        sleep_until(c, until);
        delay = delay * 2 > c->cfg->backoff_max_ms ? c->cfg->backoff_max_ms : delay * 2;
    }
    return false;
}

static void on_assign(void *ctx, cons_tp_t *tps, size_t n)
{
    cons_t *c = ctx;

    /* positions are read outside a batch (cooperative rebalances can come mid-batch) */
    rollback_batch(c, true);

    for (size_t i = 0; i < n; i++) {
        cpart_t *p = get_part(c, tps[i].topic, tps[i].partition);
        char part[16];

        snprintf(part, sizeof(part), "%d", (int)tps[i].partition);
        if (p == NULL) {
            XDCR_LOG_KV(c->lg, XDCR_LOG_ERROR, "assigned a partition that is not ours; pausing",
                        "topic", tps[i].topic, "partition", part);
            tps[i].pause = true;
            continue;
        }
        p->assigned = true;
        p->positioned = false;
        p->halted = false;
        xdcr_series_set(p->m->halted, 0);
        /*
         * Without its stored position a partition cannot be assigned safely (librdkafka would
         * fall back to Kafka's committed offset), so wait here for the target: nothing can be
         * applied while it is unreachable anyway.
         */
        if (!assign_position(c, p, &tps[i], part)) {
            p->positioned = false;
            tps[i].offset = CONS_KAFKA_OFFSET_NONE;
            tps[i].pause = true;
            continue;
        }
        {
            char off[24], seq[XDCR_LSN_STRLEN];

            snprintf(off, sizeof(off), "%" PRId64, tps[i].offset);
            XDCR_LOG_KV(c->lg, XDCR_LOG_INFO, "partition assigned", "origin", p->origin, "topic",
                        p->topic, "partition", part, "offset", off, "applied_seq",
                        lsn_str(p->pos.seq, seq), "stored", p->pos.exists ? "true" : "false");
        }
    }
}

static void on_revoke(void *ctx, const cons_tp_t *tps, size_t n)
{
    cons_t *c = ctx;

    for (size_t i = 0; i < n; i++) {
        cpart_t *p = find_part(c, tps[i].topic, tps[i].partition);

        if (p == NULL)
            continue;
        if (c->b.p == p)
            rollback_batch(c, false); /* the next owner starts from the stored position */
        if (!cons_pg_in_batch(c->pg))
            cons_pg_turnstile_release(c->pg, p->origin);
        p->assigned = false;
        p->positioned = false;
        p->halted = false;
        xdcr_series_set(p->m->halted, 0);
    }
}

/* ---- failures -------------------------------------------------------------------------------- */

/*
 * A batch failed (err). Retriable: roll back, read the partition again from its committed
 * offset after a back-off. Not retriable: if the batch held several source transactions, apply
 * them one per batch up to the failing point (so the good ones commit and the failure is pinned
 * to one transaction); a single transaction halts its origin, or is dead-lettered.
 */
static void fail_batch(cons_t *c, const xdcr_error_t *err)
{
    cpart_t *p = c->b.p;
    cons_pg_failure_t f = *cons_pg_failure(c->pg);
    uint32_t begun = c->b.txns_begun;
    bool sub = c->b.subcommits > 0; /* the failing statement may belong to an earlier one */
    int64_t last = c->b.last_offset;
    xdcr_lsn_t key = c->b.txn_key;
    int64_t first = c->b.txn_first_offset;
    char part[16];

    if (p == NULL)
        return;
    snprintf(part, sizeof(part), "%d", (int)p->partition);
    rollback_batch(c, true);
    if (err->retriable) {
        xdcr_series_inc(p->m->retries, 1);
        xdcr_series_inc(p->m->errors[EK_POSTGRES], 1);
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "target transaction rolled back; retrying", "origin",
                    p->origin, "topic", p->topic, "partition", part, "error", err->message);
        note_error(c, "origin %s: target transaction rolled back, retrying: %s", p->origin,
                   err->message);
        if (err->code == XDCR_ESTATE)
            p->positioned = false; /* an operator or another consumer moved the position */
        if (!cons_pg_is_connected(c->pg)) {
            cons_pg_disconnect(c->pg);
            for (size_t i = 0; i < c->nparts; i++)
                c->parts[i]->positioned = false;
        }
        backoff(c);
        return;
    }
    if ((begun > 1 || sub) && p->isolate_until < last) {
        char off[24];

        snprintf(off, sizeof(off), "%" PRId64, last);
        p->isolate_until = last;
        XDCR_LOG_KV(c->lg, XDCR_LOG_INFO,
                    "a batch failed; applying its source transactions one at a time to find "
                    "the failing one",
                    "origin", p->origin, "until_offset", off, "error", err->message);
        return;
    }
    {
        int64_t offset = f.offset >= 0 ? f.offset : first;
        halt_info_t h;

        if (c->cfg->on_error == CONS_ON_ERROR_DEAD_LETTER && key != 0) {
            char off[24], clsn[XDCR_LSN_STRLEN];

            clear_dl(p);
            p->dl_set = true;
            p->dl_key = key;
            p->dl_offset = offset;
            snprintf(p->dl_table, sizeof(p->dl_table), "%s", f.table);
            snprintf(p->dl_error, sizeof(p->dl_error), "%s", err->message);
            if (p->isolate_until < last)
                p->isolate_until = last;
            snprintf(off, sizeof(off), "%" PRId64, offset);
            XDCR_LOG_KV(c->lg, XDCR_LOG_WARN,
                        "transaction cannot be applied; it goes to the "
                        "dead letters",
                        "origin", p->origin, "topic", p->topic, "partition", part, "offset", off,
                        "commit_lsn", lsn_str(key, clsn), "table", f.table, "error", err->message);
            return;
        }
        memset(&h, 0, sizeof(h));
        h.ek = err->code == XDCR_ESCHEMA ? EK_SCHEMA : EK_APPLY;
        h.code = XDCR_EHALTED;
        h.error = err->message;
        h.offset = offset;
        h.commit_lsn = key;
        h.table = f.table[0] != '\0' ? f.table : NULL;
        halt(c, p, &h, false);
    }
}

/* ---- messages -------------------------------------------------------------------------------- */

static bool skip_requested(const cpart_t *p, xdcr_lsn_t a, xdcr_lsn_t b, int64_t *id)
{
    for (size_t i = 0; i < p->nskips; i++)
        if ((a != 0 && p->skip_lsns[i] == a) || (b != 0 && p->skip_lsns[i] == b)) {
            *id = p->skip_ids[i];
            return true;
        }
    return false;
}

static void drop_skip(cpart_t *p, int64_t id)
{
    for (size_t i = 0; i < p->nskips; i++)
        if (p->skip_ids[i] == id) {
            memmove(&p->skip_ids[i], &p->skip_ids[i + 1], (p->nskips - i - 1) * sizeof(int64_t));
            memmove(&p->skip_lsns[i], &p->skip_lsns[i + 1],
                    (p->nskips - i - 1) * sizeof(xdcr_lsn_t));
            p->nskips--;
            return;
        }
}

static int hdr_index_ok(const cons_kmsg_t *km, int i, const char *want)
{
    return km->hdr[i] != NULL && km->hdr_len[i] == strlen(want) &&
           memcmp(km->hdr[i], want, km->hdr_len[i]) == 0;
}

static xdcr_lsn_t header_seq(const cons_kmsg_t *km)
{
    char buf[XDCR_LSN_STRLEN + 2];
    xdcr_lsn_t lsn = 0;

    if (km->hdr[CONS_HDR_SEQ] == NULL || km->hdr_len[CONS_HDR_SEQ] >= sizeof(buf))
        return 0;
    memcpy(buf, km->hdr[CONS_HDR_SEQ], km->hdr_len[CONS_HDR_SEQ]);
    buf[km->hdr_len[CONS_HDR_SEQ]] = '\0';
    if (xdcr_lsn_parse(buf, &lsn, NULL) != 0)
        return 0;
    return lsn;
}

/*
 * A message that cannot be decoded or is inconsistent. Whatever good is in the open batch is
 * committed first (an open split transaction is abandoned); then the message halts its origin,
 * or goes to the dead letters (on_error = dead_letter, or an operator asked to skip it) and the
 * stream chain restarts after it.
 */
static void poison(cons_t *c, cpart_t *p, const cons_kmsg_t *km, int ek, const char *error)
{
    xdcr_lsn_t hseq = header_seq(km);
    int64_t skip_id = 0;
    bool skip = skip_requested(p, hseq, 0, &skip_id);
    xdcr_error_t e;

    if (c->b.p == p) {
        if (p->stream.in_txn || p->discarding)
            rollback_batch(c, false);
        else if (!try_commit(c))
            return; /* read again after the retry */
    }
    if (skip || c->cfg->on_error == CONS_ON_ERROR_DEAD_LETTER) {
        cons_dead_letter_t d;
        char msg[XDCR_ERROR_MSG_MAX];

        snprintf(msg, sizeof(msg), "%s%s", skip ? "skipped by operator: " : "", error);
        memset(&d, 0, sizeof(d));
        d.origin = p->origin;
        d.topic = p->topic;
        d.partition = p->partition;
        d.kafka_offset = km->offset;
        d.seq = hseq;
        d.error = msg;
        d.payload = km->payload;
        d.len = km->len;
        if (open_batch(c, p, &e) != 0 || cons_pg_put_dead_letter(c->pg, &d, &e) != 0)
            goto failed;
        if (skip) {
            cons_skip_done_t s;

            memset(&s, 0, sizeof(s));
            s.request_id = skip_id;
            s.origin = p->origin;
            s.topic = p->topic;
            s.partition = p->partition;
            s.kafka_offset = km->offset;
            s.seq = hseq;
            if (cons_pg_put_skip_done(c->pg, &s, &e) != 0)
                goto failed;
        }
        p->stream.in_txn = false;
        p->stream.resync = true; /* the chain restarts after the lost message */
        p->next_offset = km->offset + 1;
        c->b.last_offset = km->offset;
        c->b.dead++;
        xdcr_series_inc(p->m->errors[ek], 1);
        if (try_commit(c) && skip)
            drop_skip(p, skip_id);
        {
            char off[24];

            snprintf(off, sizeof(off), "%" PRId64, km->offset);
            XDCR_LOG_KV(c->lg, XDCR_LOG_WARN,
                        skip ? "message skipped by operator request"
                             : "message cannot be decoded; it went to the dead letters",
                        "origin", p->origin, "topic", p->topic, "offset", off, "error", error);
        }
        return;
    failed:
        fail_batch(c, &e);
        return;
    }
    {
        halt_info_t h;

        memset(&h, 0, sizeof(h));
        h.ek = ek;
        h.code = XDCR_EHALTED;
        h.error = error;
        h.offset = km->offset;
        h.seq = hseq;
        halt(c, p, &h, false);
    }
}

/* Kafka no longer has the next offset (or the topic was recreated). */
static void gap(cons_t *c, cpart_t *p, const cons_kmsg_t *km)
{
    char msg[XDCR_ERROR_MSG_MAX];
    int64_t low = -1, high = -1, want = p->next_offset >= 0 ? p->next_offset : km->offset;
    xdcr_error_t e;
    halt_info_t h;

    if (c->b.p == p) {
        if (p->stream.in_txn || p->discarding)
            rollback_batch(c, false);
        else if (!try_commit(c))
            return;
    }
    (void)cons_source_watermarks(c->source, p->topic, p->partition, 5000, &low, &high, &e);
    snprintf(msg, sizeof(msg),
             "Kafka cannot serve offset %" PRId64 " (low watermark %" PRId64 ", high %" PRId64
             "): %s; never reset automatically",
             want, low, high, km->errstr);
    memset(&h, 0, sizeof(h));
    h.ek = EK_GAP;
    h.code = XDCR_EGAP;
    h.error = msg;
    h.offset = want;
    h.seq = p->stream.applied;
    halt(c, p, &h, false);
}

static void count_skip(cons_t *c, cons_stream_action_t a)
{
    if (a == CONS_STREAM_DUPLICATE)
        c->b.dups++;
    else
        c->b.ooo++;
}

static bool batch_full(const cons_t *c)
{
    return c->b.rows >= (uint64_t)c->cfg->batch_max_rows ||
           c->b.bytes >= (uint64_t)c->cfg->batch_max_bytes;
}

/* Apply (or discard) one transaction part whose verdict is APPLY. 0, or the batch failed. */
static int apply_txn_part(cons_t *c, cpart_t *p, const cons_kmsg_t *km, const xdcr_message_t *msg,
                          const cons_stream_msg_t *sm, const cons_stream_verdict_t *v,
                          xdcr_error_t *err)
{
    batch_t *b = &c->b;
    xdcr_lsn_t key = sm->commit_lsn != 0 ? sm->commit_lsn : sm->seq;
    int rc;

    if (v->txn_begins) {
        int64_t skip_id = 0;

        b->txns_begun++;
        b->txn_key = key;
        b->txn_first_offset = km->offset;
        if (skip_requested(p, key, sm->seq, &skip_id)) {
            p->discarding = true;
            p->discard_skip = true;
            p->discard_skip_id = skip_id;
        } else if (p->dl_set && p->dl_key == key) {
            p->discarding = true;
            p->discard_skip = false;
        }
    }
    if (!p->discarding) {
        for (uint32_t i = 0; i < msg->nchanges; i++) {
            rc = cons_pg_apply_change(c->pg, msg, &msg->changes[i], km->offset, err);
            if (rc != 0)
                return rc;
        }
    } else if (!p->discard_skip && p->dl_set && km->offset == p->dl_offset &&
               p->dl_payload == NULL) {
        p->dl_payload = malloc(km->len ? km->len : 1);
        if (p->dl_payload != NULL) {
            memcpy(p->dl_payload, km->payload, km->len);
            p->dl_len = km->len;
        }
    }
    b->rows += msg->nchanges;
    if (!sm->last)
        return 0;
    if (p->discarding) {
        if (p->discard_skip) {
            cons_skip_done_t s;

            memset(&s, 0, sizeof(s));
            s.request_id = p->discard_skip_id;
            s.origin = p->origin;
            s.topic = p->topic;
            s.partition = p->partition;
            s.kafka_offset = km->offset;
            s.seq = sm->seq;
            s.commit_lsn = sm->commit_lsn;
            rc = cons_pg_put_skip_done(c->pg, &s, err);
        } else {
            cons_dead_letter_t d;

            memset(&d, 0, sizeof(d));
            d.origin = p->origin;
            d.topic = p->topic;
            d.partition = p->partition;
            d.kafka_offset = p->dl_offset;
            d.seq = sm->seq;
            d.commit_lsn = sm->commit_lsn;
            d.table_name = p->dl_table[0] != '\0' ? p->dl_table : NULL;
            d.error = p->dl_error;
            d.payload = p->dl_payload;
            d.len = p->dl_len;
            rc = cons_pg_put_dead_letter(c->pg, &d, err);
            b->dead++;
        }
        if (rc != 0)
            return rc;
    } else {
        b->txns++;
        note_txn_time(c, msg->commit_time_us, km->timestamp_ms);
    }
    b->applied = true;
    b->origin_lsn = sm->seq;
    b->origin_time_us = msg->commit_time_us;
    b->commit_time_us = msg->commit_time_us;
    return 0;
}

/* After a committed discard: forget the request or decision it fulfilled. */
static void discard_done(cpart_t *p, bool was_skip, int64_t skip_id)
{
    if (was_skip)
        drop_skip(p, skip_id);
    else
        clear_dl(p);
}

static void process(cons_t *c, cpart_t *p, cons_kmsg_t *km)
{
    xdcr_message_t *msg = NULL;
    cons_stream_msg_t sm;
    cons_stream_verdict_t v;
    xdcr_error_t e;
    char origin[XDCR_ORIGIN_MAX];
    bool ended_discard = false, was_skip = false;
    int64_t skip_id = 0;
    int rc;

    if (km->err == XDCR_EGAP) {
        gap(c, p, km);
        return;
    }
    if (km->err != 0) {
        xdcr_series_inc(p->m->errors[EK_KAFKA], 1);
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "kafka partition error", "origin", p->origin, "topic",
                    p->topic, "error", km->errstr);
        note_error(c, "kafka partition error on %s: %s", p->topic, km->errstr);
        return;
    }
    if (p->next_offset < 0)
        p->next_offset = km->offset;
    /* headers: the origin must be the topic's, the format known, the CRC right */
    if (!hdr_index_ok(km, CONS_HDR_ORIGIN, p->origin)) {
        size_t n = km->hdr[CONS_HDR_ORIGIN] != NULL ? km->hdr_len[CONS_HDR_ORIGIN] : 0;
        char msgbuf[XDCR_ERROR_MSG_MAX];

        snprintf(origin, sizeof(origin), "%.*s", (int)(n < sizeof(origin) - 1 ? n : 0),
                 km->hdr[CONS_HDR_ORIGIN] != NULL ? km->hdr[CONS_HDR_ORIGIN] : "");
        snprintf(msgbuf, sizeof(msgbuf),
                 "message header %s is \"%s\", not the topic's origin \"%s\"", XDCR_HDR_ORIGIN,
                 origin, p->origin);
        poison(c, p, km, EK_DECODE, msgbuf);
        return;
    }
    rc = xdcr_headers_verify(km->hdr[CONS_HDR_FORMAT], km->hdr_len[CONS_HDR_FORMAT],
                             km->hdr[CONS_HDR_CRC], km->hdr_len[CONS_HDR_CRC], km->payload, km->len,
                             &e);
    if (rc == 0)
        rc = xdcr_message_decode(km->payload, km->len, &msg, &e);
    if (rc != 0) {
        poison(c, p, km, EK_DECODE, e.message);
        return;
    }
    if (strcmp(msg->src.origin, p->origin) != 0) {
        char msgbuf[XDCR_ERROR_MSG_MAX];

        snprintf(msgbuf, sizeof(msgbuf), "message of origin \"%s\" in the topic of origin \"%s\"",
                 msg->src.origin, p->origin);
        poison(c, p, km, EK_DECODE, msgbuf);
        goto out;
    }
    /* a changed source identity is handled by an operator, never by the seq rules */
    if (p->have_identity && (msg->src.sysid != p->sysid || msg->src.timeline != p->timeline)) {
        char msgbuf[XDCR_ERROR_MSG_MAX];
        halt_info_t h;

        snprintf(msgbuf, sizeof(msgbuf),
                 "source identity changed from system %" PRIu64 " timeline %u to system %" PRIu64
                 " timeline %u: LSNs of the old and the new source may overlap",
                 p->sysid, p->timeline, msg->src.sysid, msg->src.timeline);
        if (c->b.p == p && !p->stream.in_txn && !p->discarding && !try_commit(c))
            goto out;
        memset(&h, 0, sizeof(h));
        h.ek = EK_IDENTITY;
        h.code = XDCR_ESYSID;
        h.error = msgbuf;
        h.offset = km->offset;
        h.seq = msg->seq;
        h.commit_lsn = msg->commit_lsn;
        halt(c, p, &h, false);
        goto out;
    }
    memset(&sm, 0, sizeof(sm));
    sm.type = msg->type;
    sm.seq = msg->seq;
    sm.prev = msg->prev_seq;
    sm.commit_lsn = msg->commit_lsn;
    sm.part = msg->part;
    sm.last = msg->last;
    v = cons_stream_decide(&p->stream, &sm);
    if (v.action == CONS_STREAM_INVALID) {
        poison(c, p, km, EK_DECODE,
               "inconsistent message: seq, commit_lsn, part and last do not fit together");
        goto out;
    }
    if (v.abort_open && c->b.p == p) {
        /* by construction the batch holds only the abandoned split transaction */
        rollback_batch(c, false);
    }
    if (v.action == CONS_STREAM_APPLY && v.txn_begins && c->b.p == p &&
        (!sm.last || p->isolate_until >= 0 || c->cfg->per_txn_commit) &&
        (c->b.txns_begun > 0 || c->b.applied || (!sm.last && c->b.subcommits > 0))) {
        /* a split transaction (or an isolated one) starts its own target transaction, and a
           split one its own batch (its abandonment rolls back the batch: nothing else in it) */
        if (!try_commit(c))
            goto out;
    }
    if (!p->have_identity) {
        p->have_identity = true;
        p->sysid = msg->src.sysid;
        p->timeline = msg->src.timeline;
    }
    rc = open_batch(c, p, &e);
    if (rc != 0 && e.code == XDCR_EEXISTS) {
        /* a standby, not a failure: said once, tried again after each backoff */
        if (!p->standby)
            XDCR_LOG_KV(c->lg, XDCR_LOG_INFO,
                        "another consumer is applying this origin into the target; standing by",
                        "origin", p->origin, "detail", e.message);
        p->standby = true;
        p->positioned = false; /* the message is read again */
        backoff(c);
        goto out;
    }
    if (rc == 0 && p->standby) {
        XDCR_LOG_KV(c->lg, XDCR_LOG_INFO, "no other consumer applies this origin now; taking over",
                    "origin", p->origin);
        p->standby = false;
    }
    if (rc != 0) {
        xdcr_series_inc(p->m->errors[EK_POSTGRES], 1);
        if (!e.retriable) {
            halt_info_t h;

            memset(&h, 0, sizeof(h));
            h.ek = EK_POSTGRES;
            h.code = XDCR_EHALTED;
            h.error = e.message;
            h.offset = km->offset;
            halt(c, p, &h, false);
            goto out;
        }
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not open a target transaction; retrying", "origin",
                    p->origin, "error", e.message);
        if (!cons_pg_is_connected(c->pg))
            cons_pg_disconnect(c->pg);
        p->positioned = false; /* the message is read again */
        backoff(c);
        goto out;
    }
    c->b.last_offset = km->offset;
    c->b.bytes += km->len;
    switch (v.action) {
    case CONS_STREAM_APPLY:
        if (sm.type == XDCR_MSG_MARK) {
            c->b.applied = true;
            c->b.origin_lsn = sm.seq > p->stream.applied ? sm.seq : p->stream.applied;
            c->b.origin_time_us = msg->time_us;
            c->b.mark_time_us = msg->time_us;
            if (msg->wal_lsn > c->b.wal_lsn)
                c->b.wal_lsn = msg->wal_lsn;
            break;
        }
        was_skip = p->discard_skip;
        skip_id = p->discard_skip_id;
        rc = apply_txn_part(c, p, km, msg, &sm, &v, &e);
        if (rc != 0) {
            fail_batch(c, &e);
            goto out;
        }
        ended_discard = p->discarding && sm.last;
        if (ended_discard) {
            was_skip = p->discard_skip;
            skip_id = p->discard_skip_id;
        }
        break;
    case CONS_STREAM_DUPLICATE:
    case CONS_STREAM_AHEAD:
    case CONS_STREAM_ORPHAN_PART:
        count_skip(c, v.action);
        if (v.action != CONS_STREAM_DUPLICATE) {
            char off[24], prev[XDCR_LSN_STRLEN], a[XDCR_LSN_STRLEN];
            xdcr_lsn_t key = sm.seq != 0 ? sm.seq : sm.commit_lsn;

            /* normally delivered again by the forwarder's re-stream; a replay checks at its end */
            if (key > p->skipped_ahead)
                p->skipped_ahead = key;
            /* (from the last transaction boundary: the missing message may be at any offset
               after it, also a part of a transaction whose first parts were read) */
            if (c->cfg->replay_file != NULL && p->ahead_offset < 0)
                p->ahead_offset = p->boundary_offset >= 0    ? p->boundary_offset
                                  : p->pos.kafka_offset >= 0 ? p->pos.kafka_offset
                                                             : km->offset;

            snprintf(off, sizeof(off), "%" PRId64, km->offset);
            XDCR_LOG_KV(c->lg, XDCR_LOG_DEBUG,
                        "message skipped: an earlier message of its "
                        "stream is missing",
                        "origin", p->origin, "offset", off, "action",
                        cons_stream_action_name(v.action), "prev", lsn_str(sm.prev, prev),
                        "applied_seq", lsn_str(p->stream.applied, a));
        }
        break;
    case CONS_STREAM_INVALID:
        break;
    }
    cons_stream_advance(&p->stream, &sm, &v);
    if (p->ahead_offset >= 0 && p->skipped_ahead <= p->stream.applied)
        p->ahead_offset = -1; /* the skipped messages came again later in the file */
    if (!p->stream.in_txn && p->ahead_offset < 0)
        p->boundary_offset = km->offset + 1;
    if (ended_discard)
        p->discarding = false;
    p->next_offset = km->offset + 1;
    if (!p->stream.in_txn && !p->discarding &&
        (batch_full(c) ||
         ((p->isolate_until >= 0 || c->cfg->per_txn_commit) && c->b.txns_begun > 0 && sm.last) ||
         ended_discard)) {
        if (c->cfg->per_txn_commit && p->isolate_until < 0 && !ended_discard && !batch_full(c) &&
            cons_source_has_data(c->source, p->topic, p->partition)) {
            /* more is waiting: commit this source transaction and go on in the same pipeline */
            if (subcommit_batch(c, &e) != 0)
                fail_batch(c, &e);
        } else if (try_commit(c) && ended_discard) {
            discard_done(p, was_skip, skip_id);
        }
    }
out:
    xdcr_message_free(msg);
}

/* Active-active, between batches: forget deleted keys older than the tombstone retention. */
static void purge_tombstones(cons_t *c)
{
    xdcr_error_t e;
    int64_t n = 0;

    if (!cons_pg_is_connected(c->pg) || cons_pg_in_batch(c->pg))
        return;
    if (cons_pg_purge_tombstones(c->pg, c->cfg->tombstone_retention_ms, &n, &e) != 0) {
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not remove expired tombstones", "error",
                    e.message);
        return;
    }
    if (n > 0) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRId64, n);
        XDCR_LOG_KV(c->lg, XDCR_LOG_DEBUG, "expired tombstones removed", "count", buf);
    }
}

/* ---- published state ----------------------------------------------------------------------- */

/* The partition that stands for origin oi in /status: an assigned one, else the last known. */
static cpart_t *origin_part(const cons_t *c, size_t oi)
{
    cpart_t *found = NULL;

    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];

        if (p->m != &c->om[oi])
            continue;
        if (p->assigned)
            return p;
        if (found == NULL)
            found = p;
    }
    return found;
}

/*
 * Publish the state for the HTTP thread (at most every 200 ms, at once after a commit, a halt
 * or an error) and tell systemd when it changed. Also notices a target session that the
 * server closed while idle, so readiness does not wait for the next batch to fail.
 */
static void publish(cons_t *c, int64_t now)
{
    cons_status_view_t v;
    const char *kerr;
    char reason[256], status[300];
    bool ready;

    if (!c->publish_now && now < c->next_publish_ms)
        return;
    c->next_publish_ms = now + 200;
    c->publish_now = false;
    if (c->b.p == NULL && cons_pg_is_connected(c->pg) && !cons_pg_check_alive(c->pg)) {
        XDCR_LOG(c->lg, XDCR_LOG_WARN, "the target PostgreSQL closed the session; reconnecting");
        note_error(c, "the target PostgreSQL closed the session");
    }
    kerr = cons_source_last_error(c->source);
    if (kerr[0] != '\0' && strcmp(kerr, c->kafka_error_seen) != 0) {
        snprintf(c->kafka_error_seen, sizeof(c->kafka_error_seen), "%s", kerr);
        note_error(c, "%s", kerr);
    }
    memset(&v, 0, sizeof(v));
    v.started = c->started;
    v.stopping = *c->env.stop != 0;
    v.target_connected = cons_pg_is_connected(c->pg);
    v.kafka_up = cons_source_is_up(c->source);
    snprintf(v.last_error, sizeof(v.last_error), "%s", c->last_error);
    v.last_error_us = c->last_error_us;
    v.norigins = c->cfg->norigins;
    v.origins = c->view;
    for (size_t oi = 0; oi < c->cfg->norigins; oi++) {
        cons_origin_status_t *o = &c->view[oi];
        cpart_t *p = origin_part(c, oi);

        memset(o, 0, sizeof(*o));
        snprintf(o->origin, sizeof(o->origin), "%s", c->cfg->origin_list[oi]);
        o->partition = -1;
        o->kafka_offset = -1;
        o->high_watermark = -1;
        o->halt_offset = -1;
        o->state = CONS_OSTATE_IDLE;
        if (p == NULL)
            continue;
        snprintf(o->topic, sizeof(o->topic), "%s", p->topic);
        o->partition = p->partition;
        o->has_position = p->pos.exists;
        o->applied_seq = p->pos.seq;
        o->commit_time_us = p->pos.commit_time_us;
        o->mark_time_us = p->pos.mark_time_us;
        o->source_wal_lsn = p->pos.source_wal_lsn;
        o->kafka_offset = p->pos.kafka_offset >= 0 ? p->pos.kafka_offset : -1;
        if (!p->assigned)
            continue;
        v.assigned++;
        o->high_watermark = cons_source_high_watermark(c->source, p->topic, p->partition, now);
        if (p->halted) {
            o->state = CONS_OSTATE_HALTED;
            o->halted = true;
            snprintf(o->halt_kind, sizeof(o->halt_kind), "%s",
                     p->halt_kind != NULL ? p->halt_kind : "");
            snprintf(o->halt_error, sizeof(o->halt_error), "%s", p->halt_error);
            o->halt_seq = p->halt_seq;
            o->halt_offset = p->halt_offset;
        } else if (p->positioned && v.target_connected && v.kafka_up) {
            o->state = CONS_OSTATE_APPLYING;
        } else {
            o->state = CONS_OSTATE_WAITING;
        }
    }
    cons_status_publish(c->st, &v);
    ready = cons_status_is_ready(&v, reason, sizeof(reason));
    snprintf(status, sizeof(status), "%s%s%s", cons_status_state(&v), ready ? "" : ": ",
             ready ? "" : reason);
    if (c->started && !v.stopping)
        cons_notify_status(&c->notify, status);
}

/* ---- the loop -------------------------------------------------------------------------------- */

static bool all_halted(const cons_t *c)
{
    size_t assigned = 0;

    for (size_t i = 0; i < c->nparts; i++) {
        if (!c->parts[i]->assigned)
            continue;
        assigned++;
        if (!c->parts[i]->halted)
            return false;
    }
    return assigned > 0;
}

/* A halted partition: has an operator acted (position changed, new skip request)? */
static void check_halted(cons_t *c, cpart_t *p, int64_t now)
{
    cons_position_t pos;
    int64_t *ids = NULL;
    xdcr_lsn_t *lsns = NULL;
    size_t n = 0;
    xdcr_error_t e;
    bool acted;

    if (now < p->next_check_ms || !cons_pg_is_connected(c->pg))
        return;
    p->next_check_ms = now + c->cfg->halt_check_ms;
    if (cons_pg_read_position(c->pg, p->origin, p->topic, p->partition, &pos, &e) != 0 ||
        cons_pg_read_skips(c->pg, p->origin, &ids, &lsns, &n, &e) != 0) {
        free(ids);
        free(lsns);
        return;
    }
    acted = pos.version != p->halt_version || (n > 0 && ids[n - 1] > p->halt_max_skip);
    free(ids);
    free(lsns);
    if (!acted)
        return;
    XDCR_LOG_KV(c->lg, XDCR_LOG_INFO, "operator action found; resuming the halted origin", "origin",
                p->origin, "topic", p->topic);
    p->halted = false;
    xdcr_series_set(p->m->halted, 0);
    if (cons_pg_clear_halt(c->pg, p->origin, p->topic, p->partition, &e) != 0)
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not clear the halt", "error", e.message);
    if (reposition(c, p, &e) != 0) {
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not position the partition; will retry", "origin",
                    p->origin, "error", e.message);
        p->positioned = false;
    }
}

/* Keep the target connected and every assigned partition positioned; false to wait. */
static bool maintain(cons_t *c, int64_t now, xdcr_error_t *fatal)
{
    xdcr_error_t e;

    if (!cons_pg_is_connected(c->pg)) {
        if (c->b.p != NULL)
            rollback_batch(c, true);
        if (now < c->retry_at_ms)
            return false;
        if (connect_target(c, &e) != 0) {
            if (!e.retriable) {
                *fatal = e;
                return false;
            }
            if (!c->pg_down_logged)
                XDCR_LOG_KV(c->lg, XDCR_LOG_WARN,
                            "target PostgreSQL unavailable; retrying with back-off", "error",
                            e.message);
            note_error(c, "target PostgreSQL unavailable: %s", e.message);
            c->pg_down_logged = true;
            backoff(c);
            return false;
        }
    }
    if (c->b.p != NULL)
        return true; /* the session is busy with a batch; positioning waits for its end */
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];

        if (!p->assigned)
            continue;
        if (p->halted) {
            check_halted(c, p, now);
            continue;
        }
        if (p->positioned || c->b.p == p)
            continue;
        if (reposition(c, p, &e) != 0) {
            XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "could not position a partition; retrying", "origin",
                        p->origin, "topic", p->topic, "error", e.message);
            backoff(c);
            return false;
        }
    }
    return true;
}

static cpart_t *next_ready(cons_t *c)
{
    for (size_t k = 0; k < c->nparts; k++) {
        cpart_t *p = c->parts[(c->rr + k) % c->nparts];

        if (p->assigned && p->positioned && !p->halted &&
            cons_source_has_data(c->source, p->topic, p->partition)) {
            c->rr = (c->rr + k + 1) % c->nparts;
            return p;
        }
    }
    return NULL;
}

/* Take and process one message of p; false when it had none. */
static bool consume_one(cons_t *c, cpart_t *p)
{
    cons_kmsg_t km;
    int rc = cons_source_consume(c->source, p->topic, p->partition, &km);

    if (rc <= 0)
        return false;
    process(c, p, &km);
    cons_source_release(c->source, &km);
    return true;
}

static void drain(cons_t *c)
{
    int64_t deadline = mono_ms() + c->cfg->drain_timeout_ms;

    XDCR_LOG(c->lg, XDCR_LOG_INFO, "draining");
    cons_notify_stopping(&c->notify);
    c->publish_now = true;
    publish(c, mono_ms());
    while (c->b.p != NULL && (c->b.p->stream.in_txn || c->b.p->discarding) &&
           mono_ms() < deadline) {
        touch(c);
        if (!consume_one(c, c->b.p)) {
            if (cons_source_done(c->source))
                break; /* a replay file that ends inside a transaction: nothing more comes */
            cons_source_poll(c->source, 10);
        }
    }
    if (c->b.p != NULL) {
        if (c->b.p->stream.in_txn || c->b.p->discarding) {
            XDCR_LOG(c->lg, XDCR_LOG_WARN,
                     cons_source_done(c->source)
                         ? "the replay file ends inside a source transaction: rolling back what "
                           "was applied of it (a longer recording applies it whole)"
                         : "drain timeout: rolling back the open source transaction (it is read "
                           "again at the next start)");
            rollback_batch(c, false);
        } else {
            (void)try_commit(c);
        }
        if (c->b.p != NULL)
            rollback_batch(c, false);
    }
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];

        if (p->assigned && p->pos.exists)
            cons_source_commit(c->source, p->topic, p->partition, p->pos.kafka_offset, false);
    }
    cons_source_close(c->source);
    XDCR_LOG(c->lg, XDCR_LOG_INFO, "stopped");
}

/*
 * replay.file read to its end (nothing open: the last batch is committed): exit 0, or the halt
 * code when an origin halted on the way, so a script sees that not everything was applied.
 */
static int replay_finished(cons_t *c, xdcr_error_t *err)
{
    bool halted = false;
    cpart_t *missing = NULL;

    for (size_t i = 0; i < c->nparts; i++)
        halted = halted || c->parts[i]->halted;
    drain(c); /* commits what is complete; leaving "the group" clears the halt flags */
    for (size_t i = 0; i < c->nparts; i++) {
        cpart_t *p = c->parts[i];

        /* skipped for a missing earlier message, and no later message of the file brought it */
        if (p->skipped_ahead > p->stream.applied && missing == NULL)
            missing = p;
    }
    XDCR_LOG_KV(c->lg, XDCR_LOG_INFO, "replay finished", "file", c->cfg->replay_file, "result",
                halted            ? "an origin halted"
                : missing != NULL ? "the recording misses messages"
                                  : "everything applied");
    if (halted)
        return xdcr_error_set(err, c->last_halt_code, false,
                              "replay finished with a halted origin (see the error above)");
    if (missing != NULL) {
        char a[XDCR_LSN_STRLEN], s[XDCR_LSN_STRLEN];

        return xdcr_error_set(err, XDCR_EGAP, false,
                              "the recording misses messages of origin %s: changes up to seq %s "
                              "were skipped because an earlier message of their stream is not in "
                              "the file; applied up to %s (record the topic again, from before "
                              "the gap)",
                              missing->origin, lsn_str(missing->skipped_ahead, s),
                              lsn_str(missing->stream.applied, a));
    }
    return 0;
}

int cons_run(cons_t *c, xdcr_error_t *err)
{
    xdcr_error_t e;
    xdcr_problems_t probs;
    int rc;

    /* the target first: its schema, and the preflight of the configured tables */
    for (;;) {
        touch(c);
        publish(c, mono_ms());
        if (*c->env.stop)
            return 0;
        rc = connect_target(c, &e);
        if (rc == 0)
            rc = cons_pg_ensure_schema(c->pg, &e);
        if (rc == 0)
            break;
        note_error(c, "target PostgreSQL not ready: %s", e.message);
        if (!e.retriable) {
            *err = e;
            return rc;
        }
        XDCR_LOG_KV(c->lg, XDCR_LOG_WARN, "target PostgreSQL not ready; retrying", "error",
                    e.message);
        cons_pg_disconnect(c->pg);
        backoff(c);
        sleep_until(c, c->retry_at_ms);
    }
    c->started = true;
    c->publish_now = true;
    cons_notify_ready(&c->notify, "running: target connected, schema installed");
    c->backoff_ms = c->cfg->backoff_initial_ms;
    c->retry_at_ms = 0;
    if (c->cfg->mode == CONS_MODE_ACTIVE_ACTIVE && c->cfg->tables[0] == '\0')
        XDCR_LOG(c->lg, XDCR_LOG_WARN,
                 "active-active without \"tables\": a table gets its tombstone trigger only "
                 "with its first remote change, so local deletes before that are not "
                 "remembered (list the replicated tables in \"tables\")");
    xdcr_problems_init(&probs);
    rc = cons_pg_check_tables(c->pg, c->cfg->tables, &probs, &e);
    if (rc == 0 && probs.count > 0) {
        char buf[XDCR_ERROR_MSG_MAX];

        xdcr_problems_join(&probs, buf, sizeof(buf));
        rc = xdcr_error_set(&e, XDCR_ESCHEMA, false,
                            "preflight found %zu problem(s) with the target tables: %s",
                            probs.count, buf);
    }
    xdcr_problems_free(&probs);
    if (rc != 0) {
        *err = e;
        return rc;
    }
    rc = cons_source_subscribe(c->source, c->cfg->topics, c->cfg->norigins, err);
    if (rc != 0)
        return rc;

    while (!*c->env.stop) {
        int64_t now = mono_ms();
        cpart_t *p;

        touch(c);
        publish(c, now);
        if ((c->iterations++ & 31) == 0 || c->b.p == NULL)
            cons_source_poll(c->source, 0);
        if (all_halted(c)) {
            XDCR_LOG(c->lg, XDCR_LOG_INFO, "every assigned origin is halted; exiting");
            cons_notify_stopping(&c->notify);
            rollback_batch(c, false);
            cons_source_close(c->source);
            return xdcr_error_set(err, c->last_halt_code, false,
                                  "every assigned origin is halted (see the error above)");
        }
        if (now < c->retry_at_ms) {
            int64_t wait = c->retry_at_ms - now;

            cons_source_poll(c->source, (int)(wait < 50 ? wait : 50));
            continue;
        }
        xdcr_error_clear(&e);
        if (!maintain(c, now, &e)) {
            if (e.code != 0) {
                *err = e;
                return e.code;
            }
            continue;
        }
        if (c->b.p != NULL) {
            p = c->b.p;
            if (consume_one(c, p))
                continue;
            if (cons_source_done(c->source))
                return replay_finished(c, err);
            if (!p->stream.in_txn && !p->discarding &&
                now - c->b.opened_ms >= c->cfg->batch_max_delay_ms) {
                (void)try_commit(c);
                continue;
            }
            cons_source_poll(c->source, 1);
            continue;
        }
        if (c->cfg->mode == CONS_MODE_ACTIVE_ACTIVE && now >= c->next_purge_ms) {
            purge_tombstones(c);
            c->next_purge_ms = now + (c->cfg->tombstone_retention_ms / 10 < 60000
                                          ? c->cfg->tombstone_retention_ms / 10
                                          : 60000);
        }
        p = next_ready(c);
        if (p == NULL) {
            if (cons_source_done(c->source))
                return replay_finished(c, err);
            cons_source_poll(c->source, 10);
            continue;
        }
        (void)consume_one(c, p);
    }
    drain(c);
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

cons_t *cons_new(const cons_env_t *env, xdcr_error_t *err)
{
    cons_t *c = calloc(1, sizeof(*c));
    cons_pg_opts_t po;

    if (c == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    c->env = *env;
    c->cfg = env->cfg;
    c->lg = env->lg;
    c->st = env->status;
    cons_notify_init(&c->notify);
    c->view = calloc(c->cfg->norigins > 0 ? c->cfg->norigins : 1, sizeof(*c->view));
    if (c->view == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    c->backoff_ms = c->cfg->backoff_initial_ms;
    c->last_halt_code = XDCR_EHALTED;
    if (register_metrics(c, err) != 0)
        goto fail;
    memset(&po, 0, sizeof(po));
    po.conninfo = c->cfg->pg_conninfo;
    po.password = env->password;
    po.schema = c->cfg->schema;
    po.replica_role = c->cfg->replication_role == CONS_ROLE_REPLICA;
    po.truncate_ignore = c->cfg->truncate == CONS_TRUNCATE_IGNORE;
    po.own_origin = c->cfg->origin;
    po.active_active = c->cfg->mode == CONS_MODE_ACTIVE_ACTIVE;
    po.conflict_policy = cons_policy_names[c->cfg->conflict_policy];
    po.table_policies = c->cfg->table_policies;
    po.multi_row = c->cfg->multi_row;
    po.copy_min_rows = c->cfg->multi_row ? (uint32_t)c->cfg->copy_min_rows : 0;
    /* auto = off: positions commit with the rows, so a commit lost in a target crash is
       applied again (PostgreSQL's subscriptions default to off too) */
    po.async_commit = c->cfg->synchronous_commit != CONS_SYNC_ON;
    po.tick = pg_tick;
    po.tick_ctx = c;
    c->pg = cons_pg_new(&po, c->lg);
    if (c->pg == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    c->source = c->cfg->replay_file != NULL
                    ? cons_replay_open(c->cfg->replay_file, on_assign, on_revoke, c, c->lg, err)
                    : cons_kafka_new(&c->cfg->kafka, c->cfg->group_id,
                                     c->cfg->assignment == CONS_ASSIGN_STATIC, on_assign, on_revoke,
                                     c, c->lg, err);
    if (c->source == NULL)
        goto fail;
    return c;
fail:
    cons_free(c);
    return NULL;
}

void cons_free(cons_t *c)
{
    if (c == NULL)
        return;
    /* leaving the group calls on_revoke, which may roll back through pg */
    cons_source_free(c->source);
    cons_pg_free(c->pg);
    for (size_t i = 0; i < c->nparts; i++)
        part_free(c->parts[i]);
    free(c->parts);
    free(c->om);
    free(c->view);
    free(c->txn_times);
    free(c);
}
