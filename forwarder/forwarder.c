/*
 * forwarder.c - the forwarder's main loop and its state machine: connect, stream, produce,
 * confirm, re-stream after a failed delivery, drain on SIGTERM. Single-threaded: libpq and the
 * delivery reports are both served here, so no lock guards the stream state (only the status
 * snapshot read by the HTTP thread).
 */
#include "forwarder.h"

#include "kafka_producer.h"
#include "pg_stream.h"
#include "pgoutput.h"
#include "xdcr/ack_tracker.h"
#include "xdcr/event.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fwd_metrics {
    xdcr_series_t *txn_captured, *txn_published, *txn_skipped, *rows_captured;
    xdcr_series_t *msgs_produced, *msgs_delivered, *bytes_produced, *delivery_errors;
    xdcr_series_t *marks, *inflight_msgs, *inflight_bytes, *confirmed_lsn, *wal_lsn;
    xdcr_series_t *retained_bytes, *producer_recreations, *restreams, *role_active, *role_standby,
        *backpressure;
} fwd_metrics_t;

struct fwd {
    fwd_env_t env;
    const fwd_config_t *cfg;
    const xdcr_log_t *lg;
    fwd_metrics_t m;

    fwd_pg_t *pg;
    fwd_kafka_t *kafka;
    xdcr_ack_tracker_t *tracker;
    xdcr_encoder_t *enc;
    fwd_pgo_t *dec;
    xdcr_source_t src;
    bool have_source; /* src identity known from a previous connection */

    fwd_role_t role;
    bool streaming;
    bool standby_logged;
    int64_t backoff_ms;
    int64_t retry_at_ms; /* monotonic: do not reconnect before */

    /* the open source transaction */
    bool in_txn, skip_txn, txn_started;
    xdcr_lsn_t txn_commit_lsn;
    uint32_t txn_xid, txn_part, txn_ordinal, txn_rows;
    int64_t txn_commit_us;

    xdcr_lsn_t stream_prev;    /* seq of the last message published in this stream, 0 at start */
    xdcr_lsn_t mark_pos;       /* every transaction <= this is published or skipped */
    xdcr_lsn_t received_lsn;   /* highest WAL position received */
    xdcr_lsn_t sent_confirmed; /* flush position last reported to PostgreSQL */
    xdcr_lsn_t wal_lsn;        /* source's current WAL position (monitoring connection) */
    int64_t retained_bytes;    /* WAL the slot keeps at the source, -1 unknown */
    int64_t inflight_bytes;
    bool delivery_failed_logged;

    int64_t next_status_ms, next_mark_ms;
    int crash_hits;

    pthread_mutex_t status_lock;
    fwd_status_t status;
    atomic_llong last_tick_ms; /* monotonic ms of the last loop or wait-loop iteration */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The loop is alive: /livez reads this, independent of PostgreSQL and Kafka. */
static void tick(fwd_t *f)
{
    atomic_store(&f->last_tick_ms, (long long)mono_ms());
}

/* Serve Kafka delivery reports (waiting at most ms) and count as a loop iteration. */
static void kpoll(fwd_t *f, int ms)
{
    fwd_kafka_poll(f->kafka, ms);
    tick(f);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *fwd_role_name(fwd_role_t role)
{
    switch (role) {
    case FWD_ROLE_STANDBY:
        return "standby";
    case FWD_ROLE_ACTIVE:
        return "active";
    default:
        return "starting";
    }
}

/* Test builds stop dead at a named point ("name" or "name:N" for the N-th time). */
static void crash_point(fwd_t *f, const char *name)
{
    const char *cp = f->env.crash_point;
    size_t n = strlen(name);

    if (cp == NULL || strncmp(cp, name, n) != 0 || (cp[n] != '\0' && cp[n] != ':'))
        return;
    if (cp[n] == ':' && ++f->crash_hits < atoi(cp + n + 1))
        return;
    fprintf(stderr, "crash point %s reached\n", name);
    _exit(99);
}

static int register_metrics(fwd_t *f, xdcr_error_t *err)
{
    static const char *const origin_label[] = {"origin", NULL};
    static const char *const role_label[] = {"origin", "role", NULL};
    const char *lv[] = {f->cfg->origin, NULL, NULL};
    xdcr_metrics_t *m = f->env.metrics;
    struct {
        xdcr_series_t **slot;
        const char *name, *help;
        xdcr_metric_type_t type;
    } defs[] = {
        {&f->m.txn_captured, "xdcr_forwarder_transactions_captured_total",
         "Source transactions decoded from the slot (including skipped ones).",
         XDCR_METRIC_COUNTER},
        {&f->m.txn_published, "xdcr_forwarder_transactions_published_total",
         "Source transactions fully acknowledged by Kafka.", XDCR_METRIC_COUNTER},
        {&f->m.txn_skipped, "xdcr_forwarder_transactions_skipped_total",
         "Transactions not forwarded because they carry a replication origin (loop prevention).",
         XDCR_METRIC_COUNTER},
        {&f->m.rows_captured, "xdcr_forwarder_rows_captured_total",
         "Row changes decoded and encoded for Kafka.", XDCR_METRIC_COUNTER},
        {&f->m.msgs_produced, "xdcr_forwarder_messages_produced_total",
         "Kafka messages handed to the producer.", XDCR_METRIC_COUNTER},
        {&f->m.msgs_delivered, "xdcr_forwarder_messages_delivered_total",
         "Kafka messages acknowledged by the brokers (acks=all).", XDCR_METRIC_COUNTER},
        {&f->m.bytes_produced, "xdcr_forwarder_produced_bytes_total",
         "Payload bytes handed to the producer.", XDCR_METRIC_COUNTER},
        {&f->m.delivery_errors, "xdcr_forwarder_delivery_errors_total",
         "Kafka deliveries that failed or were only possibly persisted.", XDCR_METRIC_COUNTER},
        {&f->m.marks, "xdcr_forwarder_progress_marks_total", "Progress marks produced.",
         XDCR_METRIC_COUNTER},
        {&f->m.inflight_msgs, "xdcr_forwarder_inflight_messages",
         "Kafka messages produced and not yet acknowledged.", XDCR_METRIC_GAUGE},
        {&f->m.inflight_bytes, "xdcr_forwarder_inflight_bytes",
         "Payload bytes produced and not yet acknowledged.", XDCR_METRIC_GAUGE},
        {&f->m.confirmed_lsn, "xdcr_forwarder_confirmed_lsn",
         "Source LSN confirmed to PostgreSQL as flushed (as a number).", XDCR_METRIC_GAUGE},
        {&f->m.wal_lsn, "xdcr_forwarder_source_wal_lsn",
         "Current WAL insert position of the source (as a number).", XDCR_METRIC_GAUGE},
        {&f->m.retained_bytes, "xdcr_forwarder_slot_retained_wal_bytes",
         "WAL bytes the slot keeps on the source (current WAL minus restart_lsn).",
         XDCR_METRIC_GAUGE},
        {&f->m.producer_recreations, "xdcr_forwarder_producer_recreations_total",
         "Kafka producers recreated after a fatal error.", XDCR_METRIC_COUNTER},
        {&f->m.restreams, "xdcr_forwarder_restreams_total",
         "Times the forwarder re-streamed from the slot after a failed delivery.",
         XDCR_METRIC_COUNTER},
        {&f->m.backpressure, "xdcr_forwarder_backpressure_seconds_total",
         "Time spent not reading WAL because Kafka deliveries were outstanding.",
         XDCR_METRIC_COUNTER},
    };

    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        xdcr_metric_t *fam = xdcr_metrics_register(m, defs[i].name, defs[i].help, defs[i].type,
                                                   origin_label, NULL, 0, err);
        if (fam == NULL || (*defs[i].slot = xdcr_metric_series(fam, lv)) == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "could not register %s", defs[i].name);
    }
    {
        xdcr_metric_t *fam = xdcr_metrics_register(
            m, "xdcr_forwarder_role", "1 for the role this forwarder has (active or standby).",
            XDCR_METRIC_GAUGE, role_label, NULL, 0, err);
        if (fam == NULL)
            return err->code;
        lv[1] = "active";
        f->m.role_active = xdcr_metric_series(fam, lv);
        lv[1] = "standby";
        f->m.role_standby = xdcr_metric_series(fam, lv);
        if (f->m.role_active == NULL || f->m.role_standby == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    }
    return 0;
}

static void publish_status(fwd_t *f, const xdcr_error_t *last)
{
    pthread_mutex_lock(&f->status_lock);
    f->status.role = f->role;
    f->status.streaming = f->streaming;
    f->status.confirmed_lsn = xdcr_ack_tracker_confirmed(f->tracker);
    f->status.received_lsn = f->received_lsn;
    f->status.wal_lsn = f->wal_lsn;
    f->status.inflight_messages = (unsigned long)xdcr_ack_tracker_in_flight(f->tracker);
    f->status.retained_bytes = f->retained_bytes;
    tick(f);
    if (last != NULL)
        snprintf(f->status.last_error, sizeof(f->status.last_error), "%s", last->message);
    pthread_mutex_unlock(&f->status_lock);
}

void fwd_get_status(fwd_t *f, fwd_status_t *st)
{
    pthread_mutex_lock(&f->status_lock);
    *st = f->status;
    pthread_mutex_unlock(&f->status_lock);
    st->last_loop_us = (unsigned long long)atomic_load(&f->last_tick_ms) * 1000ULL;
}

static void set_role(fwd_t *f, fwd_role_t role)
{
    if (f->role == role)
        return;
    f->role = role;
    xdcr_series_set(f->m.role_active, role == FWD_ROLE_ACTIVE ? 1 : 0);
    xdcr_series_set(f->m.role_standby, role == FWD_ROLE_STANDBY ? 1 : 0);
    XDCR_LOG_KV(f->lg, XDCR_LOG_INFO, "role changed", "role", fwd_role_name(role));
}

/* ---- delivery reports ------------------------------------------------------------------ */

/*
 * The opaque handed to the producer is the tracker's ticket with this bit set on a
 * transaction's last part, so the delivery report can count published transactions.
 */
#define TICKET_TXN_END (UINT64_C(1) << 63)

static void on_delivery(void *ctx, const fwd_delivery_t *d)
{
    fwd_t *f = ctx;
    xdcr_error_t err;
    uint64_t ticket = d->ticket & ~TICKET_TXN_END;

    f->inflight_bytes -= (int64_t)d->bytes;
    if (f->inflight_bytes < 0)
        f->inflight_bytes = 0;
    if (d->ok) {
        if (xdcr_ack_tracker_ack(f->tracker, ticket, &err) == 0) {
            xdcr_series_inc(f->m.msgs_delivered, 1);
            if (d->ticket & TICKET_TXN_END)
                xdcr_series_inc(f->m.txn_published, 1);
        }
        /* a report for a ticket from before a reset is ignored: its stream was abandoned */
        return;
    }
    xdcr_series_inc(f->m.delivery_errors, 1);
    if (xdcr_ack_tracker_fail(f->tracker, ticket, &err) == 0 && !f->delivery_failed_logged) {
        f->delivery_failed_logged = true;
        XDCR_LOG_KV(f->lg, XDCR_LOG_ERROR,
                    "kafka delivery failed; will re-stream from the last confirmed position",
                    "error", d->errstr, "possibly_persisted",
                    d->possibly_persisted ? "true" : "false");
    }
}

/* ---- producing ------------------------------------------------------------------------- */

static bool is_backpressured(const fwd_t *f)
{
    return xdcr_ack_tracker_is_full(f->tracker) || f->inflight_bytes >= f->cfg->inflight_max_bytes;
}

static void maybe_send_status(fwd_t *f, bool force);

/*
 * Produce one encoded payload with a confirm point; waits (serving Kafka and keepalives) while
 * the in-flight limits are reached, so memory stays bounded.
 */
static int produce(fwd_t *f, xdcr_msg_type_t type, xdcr_lsn_t header_seq, xdcr_lsn_t confirm,
                   const char *payload, size_t len, xdcr_error_t *err)
{
    xdcr_headers_t h;
    uint64_t ticket;
    int rc;
    int64_t t0 = 0;

    while (xdcr_ack_tracker_is_full(f->tracker) ||
           f->inflight_bytes + (int64_t)len > f->cfg->inflight_max_bytes) {
        if (xdcr_ack_tracker_in_flight(f->tracker) == 0)
            break; /* a single message larger than the byte limit still goes */
        if (t0 == 0)
            t0 = mono_ms();
        kpoll(f, 50);
        maybe_send_status(f, false);
        if (xdcr_ack_tracker_is_failed(f->tracker) || fwd_kafka_is_fatal(f->kafka, NULL))
            return xdcr_error_set(err, XDCR_EKAFKA, true, "delivery failed while waiting");
    }
    if (t0 != 0)
        xdcr_series_inc(f->m.backpressure, (double)(mono_ms() - t0) / 1000.0);
    rc = xdcr_ack_tracker_push(f->tracker, confirm, &ticket, err);
    if (rc != 0)
        return rc;
    xdcr_headers_fill(&h, &f->src, type, header_seq, payload, len);
    for (;;) {
        rc = fwd_kafka_produce(f->kafka, f->src.origin, payload, len, &h,
                               ticket | (type == XDCR_MSG_TXN && confirm != 0 ? TICKET_TXN_END : 0),
                               err);
        if (rc != XDCR_EFULL)
            break;
        kpoll(f, 50);
        maybe_send_status(f, false);
    }
    if (rc != 0) {
        char s[XDCR_LSN_STRLEN];

        (void)xdcr_ack_tracker_fail(f->tracker, ticket, NULL);
        /* name the position: the operator must know which transaction could not be published */
        return xdcr_error_prefix(err, "%s at %s",
                                 type == XDCR_MSG_MARK ? "progress mark" : "transaction",
                                 xdcr_lsn_format(header_seq, s));
    }
    f->inflight_bytes += (int64_t)len;
    xdcr_series_inc(f->m.msgs_produced, 1);
    xdcr_series_inc(f->m.bytes_produced, (double)len);
    crash_point(f, "after_produce");
    return 0;
}

static int begin_part(fwd_t *f, xdcr_error_t *err)
{
    return xdcr_encoder_txn_begin(f->enc, &f->src, f->txn_commit_lsn, f->stream_prev, f->txn_xid,
                                  f->txn_commit_us, f->txn_part, err);
}

/* Finish and produce the current part; last parts carry the commit's end LSN as confirm point. */
static int flush_part(fwd_t *f, bool last, xdcr_lsn_t end_lsn, xdcr_error_t *err)
{
    const char *payload;
    size_t len;
    int rc = xdcr_encoder_txn_finish(f->enc, last, end_lsn, &payload, &len, err);

    if (rc != 0)
        return rc;
    return produce(f, XDCR_MSG_TXN, last ? end_lsn : f->txn_commit_lsn, last ? end_lsn : 0, payload,
                   len, err);
}

static int publish_mark(fwd_t *f, xdcr_error_t *err)
{
    const char *payload;
    size_t len;
    xdcr_lsn_t seq = f->mark_pos > f->stream_prev ? f->mark_pos : f->stream_prev;
    xdcr_lsn_t wal = f->wal_lsn > seq ? f->wal_lsn : seq;
    int rc;

    if (seq == 0)
        return 0; /* nothing known yet */
    rc =
        xdcr_encoder_mark(f->enc, &f->src, f->stream_prev, seq, wal, now_us(), &payload, &len, err);
    if (rc != 0)
        return rc;
    rc = produce(f, XDCR_MSG_MARK, seq, seq, payload, len, err);
    if (rc != 0)
        return rc;
    f->stream_prev = seq;
    xdcr_series_inc(f->m.marks, 1);
    return 0;
}

/* ---- pgoutput handling ------------------------------------------------------------------ */

/* Is schema in exclude.schemas (the consumer's own bookkeeping, never replicated)? */
static bool is_excluded(const fwd_t *f, const char *schema)
{
    const char *p = f->cfg->exclude_schemas;
    size_t n = strlen(schema);

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == n && strncmp(p, schema, n) == 0)
            return true;
        p = end != NULL ? end + 1 : p + len;
    }
    return false;
}

static int add_change(fwd_t *f, const fwd_pgo_msg_t *m, xdcr_error_t *err)
{
    xdcr_change_t ch;
    uint32_t included = 0;
    int rc;

    memset(&ch, 0, sizeof(ch));
    if ((m->type == FWD_PGO_INSERT || m->type == FWD_PGO_UPDATE || m->type == FWD_PGO_DELETE) &&
        is_excluded(f, m->change.rel->rel.schema))
        return 0;
    if (m->type == FWD_PGO_TRUNCATE) {
        for (uint32_t i = 0; i < m->truncate.nrels; i++)
            included += !is_excluded(f, m->truncate.rels[i]->rel.schema);
        if (included == 0)
            return 0;
    }
    if (!f->txn_started) {
        rc = begin_part(f, err);
        if (rc != 0)
            return rc;
        f->txn_started = true;
    }
    ch.ordinal = f->txn_ordinal++;
    if (m->type == FWD_PGO_TRUNCATE) {
        uint32_t n = m->truncate.nrels;
        uint32_t *keys = calloc(n ? n : 1, sizeof(*keys));
        const xdcr_relation_t **rels = calloc(n ? n : 1, sizeof(*rels));

        if (keys == NULL || rels == NULL) {
            free(keys);
            free(rels);
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        }
        n = 0;
        for (uint32_t i = 0; i < m->truncate.nrels; i++) {
            if (is_excluded(f, m->truncate.rels[i]->rel.schema))
                continue;
            keys[n] = m->truncate.rels[i]->key;
            rels[n++] = &m->truncate.rels[i]->rel;
        }
        rc = xdcr_encoder_add_truncate(f->enc, ch.ordinal, n, keys, rels, m->truncate.cascade,
                                       m->truncate.restart_identity, err);
        free(keys);
        free(rels);
    } else if (m->type == FWD_PGO_MESSAGE) {
        ch.op = XDCR_OP_MESSAGE;
        ch.prefix = m->message.prefix;
        ch.content = m->message.content;
        ch.content_len = m->message.content_len;
        rc = xdcr_encoder_add_change(f->enc, 0, NULL, &ch, err);
    } else {
        ch.op = m->type == FWD_PGO_INSERT   ? XDCR_OP_INSERT
                : m->type == FWD_PGO_UPDATE ? XDCR_OP_UPDATE
                                            : XDCR_OP_DELETE;
        ch.old_vals = m->change.old_vals;
        ch.new_vals = m->change.new_vals;
        rc = xdcr_encoder_add_change(f->enc, m->change.rel->key, &m->change.rel->rel, &ch, err);
        if (rc != 0) {
            xdcr_error_prefix(err, "table %s.%s", m->change.rel->rel.schema,
                              m->change.rel->rel.table);
        }
    }
    if (rc != 0)
        return rc;
    f->txn_rows++;
    xdcr_series_inc(f->m.rows_captured, 1);
    if (xdcr_encoder_size(f->enc) >= (size_t)f->cfg->message_max_bytes) {
        rc = flush_part(f, false, 0, err);
        if (rc != 0)
            return rc;
        f->txn_part++;
        rc = begin_part(f, err);
    }
    return rc;
}

static int handle_pgoutput(fwd_t *f, const char *data, size_t len, xdcr_error_t *err)
{
    fwd_pgo_msg_t m;
    int rc = fwd_pgo_decode(f->dec, data, len, &m, err);

    if (rc != 0)
        return rc;
    switch (m.type) {
    case FWD_PGO_BEGIN:
        f->in_txn = true;
        f->skip_txn = false;
        f->txn_started = false;
        f->txn_commit_lsn = m.begin.final_lsn;
        f->txn_xid = m.begin.xid;
        f->txn_commit_us = m.begin.commit_time_us;
        f->txn_part = 0;
        f->txn_ordinal = 0;
        f->txn_rows = 0;
        return 0;
    case FWD_PGO_ORIGIN:
        if (!f->cfg->forward_origins)
            f->skip_txn = true;
        return 0;
    case FWD_PGO_RELATION:
    case FWD_PGO_TYPE:
        return 0;
    case FWD_PGO_MESSAGE:
        if (!m.message.transactional || !f->in_txn)
            return 0; /* non-transactional messages have no place in the ordered stream */
        /* fall through */
    case FWD_PGO_INSERT:
    case FWD_PGO_UPDATE:
    case FWD_PGO_DELETE:
    case FWD_PGO_TRUNCATE:
        if (f->skip_txn)
            return 0;
        return add_change(f, &m, err);
    case FWD_PGO_COMMIT:
        f->in_txn = false;
        xdcr_series_inc(f->m.txn_captured, 1);
        if (m.commit.end_lsn > f->mark_pos)
            f->mark_pos = m.commit.end_lsn;
        if (f->skip_txn || !f->txn_started) {
            if (f->skip_txn)
                xdcr_series_inc(f->m.txn_skipped, 1);
            xdcr_ack_tracker_advance(f->tracker, m.commit.end_lsn);
            return 0;
        }
        rc = flush_part(f, true, m.commit.end_lsn, err);
        if (rc != 0)
            return rc;
        f->stream_prev = m.commit.end_lsn;
        return 0;
    }
    return 0;
}

static int handle_copydata(fwd_t *f, const char *buf, size_t len, xdcr_error_t *err)
{
    fwd_pgo_copydata_t cd;
    int rc = fwd_pgo_parse_copydata(buf, len, &cd, err);

    if (rc != 0)
        return rc;
    if (cd.type == FWD_PGO_KEEPALIVE) {
        if (cd.wal_end > f->received_lsn)
            f->received_lsn = cd.wal_end;
        if (!f->in_txn) {
            /* everything up to the sender's position has been sent to us */
            if (cd.wal_end > f->mark_pos)
                f->mark_pos = cd.wal_end;
            xdcr_ack_tracker_advance(f->tracker, cd.wal_end);
        }
        if (cd.reply_requested)
            maybe_send_status(f, true);
        return 0;
    }
    if (cd.wal_start > f->received_lsn)
        f->received_lsn = cd.wal_start;
    return handle_pgoutput(f, cd.data, cd.len, err);
}

/* ---- status, positions, marks ----------------------------------------------------------- */

static void maybe_send_status(fwd_t *f, bool force)
{
    int64_t now = mono_ms();
    xdcr_lsn_t confirmed;
    xdcr_error_t err;

    if (!f->streaming || (!force && now < f->next_status_ms))
        return;
    confirmed = xdcr_ack_tracker_confirmed(f->tracker);
    if (confirmed > f->sent_confirmed)
        crash_point(f, "before_confirm");
    if (fwd_pg_send_status(f->pg, f->received_lsn, confirmed, !force, now_us(), &err) != 0) {
        XDCR_LOG_KV(f->lg, XDCR_LOG_WARN, "could not send a status update", "error", err.message);
        return;
    }
    f->sent_confirmed = confirmed;
    f->next_status_ms = now + f->cfg->status_ms;
    xdcr_series_set(f->m.confirmed_lsn, (double)confirmed);
}

static void refresh_positions(fwd_t *f)
{
    fwd_pg_positions_t pos;
    xdcr_error_t err;

    if (fwd_pg_positions(f->pg, f->cfg->slot_name, &pos, &err) != 0) {
        XDCR_LOG_KV(f->lg, XDCR_LOG_DEBUG, "could not read source positions", "error", err.message);
        return;
    }
    f->wal_lsn = pos.wal_lsn;
    xdcr_series_set(f->m.wal_lsn, (double)pos.wal_lsn);
    f->retained_bytes = pos.retained_bytes;
    if (pos.retained_bytes >= 0)
        xdcr_series_set(f->m.retained_bytes, (double)pos.retained_bytes);
}

/* ---- connection management -------------------------------------------------------------- */

static void backoff(fwd_t *f)
{
    f->retry_at_ms = mono_ms() + f->backoff_ms;
    f->backoff_ms *= 2;
    if (f->backoff_ms > f->cfg->backoff_max_ms)
        f->backoff_ms = f->cfg->backoff_max_ms;
}

static int check_slot(fwd_t *f, xdcr_error_t *err)
{
    fwd_slot_info_t slot;
    int rc = fwd_pg_slot_info(f->pg, f->cfg->slot_name, &slot, err);

    if (rc != 0)
        return rc;
    if (slot.exists) {
        if (slot.lost)
            return xdcr_error_set(err, XDCR_ESLOT, false,
                                  "replication slot \"%s\" was invalidated (wal_status lost, "
                                  "max_slot_wal_keep_size exceeded): changes were lost at the "
                                  "source; see the runbook \"slot lost\"",
                                  f->cfg->slot_name);
        if (strcmp(slot.plugin, "pgoutput") != 0)
            return xdcr_error_set(err, XDCR_ESLOT, false,
                                  "replication slot \"%s\" uses plugin \"%s\", not pgoutput",
                                  f->cfg->slot_name, slot.plugin);
        return 0;
    }
    if (!f->cfg->slot_create)
        return xdcr_error_set(err, XDCR_ESLOT, false,
                              "replication slot \"%s\" does not exist: set slot.create = true to "
                              "create it on first start",
                              f->cfg->slot_name);
    {
        int64_t hw = 0;

        rc = fwd_kafka_high_watermark(f->kafka, 10000, &hw, err);
        if (rc != 0)
            return rc;
        if (hw > 0)
            return xdcr_error_set(
                err, XDCR_ESLOT, false,
                "replication slot \"%s\" does not exist but topic \"%s\" already holds %" PRId64
                " messages: the slot was dropped or lost, and creating a new one would skip "
                "changes silently; see the runbook \"slot lost\"",
                f->cfg->slot_name, f->cfg->topic, hw);
    }
    {
        xdcr_lsn_t start = 0;
        char s[XDCR_LSN_STRLEN];

        rc = fwd_pg_create_slot(f->pg, f->cfg->slot_name, &start, err);
        if (rc != 0)
            return rc;
        XDCR_LOG_KV(f->lg, XDCR_LOG_INFO, "created replication slot", "slot", f->cfg->slot_name,
                    "lsn", xdcr_lsn_format(start, s));
    }
    return 0;
}

static int start_stream(fwd_t *f, xdcr_error_t *err)
{
    fwd_pg_ident_t ident;
    char s[XDCR_LSN_STRLEN];
    xdcr_lsn_t start;
    int rc = fwd_pg_connect(f->pg, &ident, err);

    if (rc != 0)
        return rc;
    if (f->have_source && (ident.sysid != f->src.sysid || ident.timeline != f->src.timeline)) {
        XDCR_LOG_KV(f->lg, XDCR_LOG_WARN,
                    "source system identifier or timeline changed (failover?); positions carry "
                    "the new identity and consumers decide how to handle it",
                    "slot", f->cfg->slot_name);
    }
    f->src.sysid = ident.sysid;
    f->src.timeline = ident.timeline;
    f->have_source = true;
    rc = fwd_pg_ensure_publication(f->pg, f->cfg->publication, f->cfg->publication_create,
                                   f->cfg->publication_tables, err);
    if (rc != 0)
        goto fail;
    rc = fwd_pg_check_published_tables(f->pg, f->cfg->publication, err);
    if (rc < 0)
        goto fail;
    rc = check_slot(f, err);
    if (rc != 0)
        goto fail;
    start = xdcr_ack_tracker_confirmed(f->tracker);
    rc = fwd_pg_start_replication(f->pg, f->cfg->slot_name, f->cfg->publication, start, err);
    if (rc != 0)
        goto fail;
    fwd_pgo_reset(f->dec);
    f->streaming = true;
    f->in_txn = false;
    f->stream_prev = 0;
    /*
     * A new stream re-sends everything after start: what the previous stream saw beyond it
     * (keepalives, commits whose delivery then failed) is not published in this one yet. A mark
     * carrying the old position would tell consumers those transactions are done (and skip them
     * when they come) and confirm them to PostgreSQL.
     */
    f->mark_pos = start;
    f->standby_logged = false;
    f->backoff_ms = f->cfg->backoff_initial_ms;
    f->next_mark_ms = mono_ms() + f->cfg->heartbeat_ms;
    set_role(f, FWD_ROLE_ACTIVE);
    XDCR_LOG_KV(f->lg, XDCR_LOG_INFO, "streaming", "slot", f->cfg->slot_name, "publication",
                f->cfg->publication, "start_lsn", xdcr_lsn_format(start, s), "topic",
                f->cfg->topic);
    refresh_positions(f);
    return 0;
fail:
    fwd_pg_disconnect(f->pg);
    return rc;
}

/*
 * Stop the current stream: a delivery failed, the producer hit a fatal error, or the
 * replication connection broke. In-flight messages are allowed to finish (their confirm points
 * are still true), the producer is recreated if it is fatal or could not drain, and the tracker
 * starts again at the confirmed LSN, which is where the next stream begins: what was produced
 * after it is produced again (duplicates with the same seq, never gaps).
 */
/*
 * Forget the transaction part the stopped stream was building (read_stream returns mid-transaction
 * under backpressure or after a failed delivery): the next stream sends that transaction again,
 * and a part left open would make its first begin fail.
 */
static void abandon_part(fwd_t *f)
{
    const char *payload;
    size_t len;

    if (xdcr_encoder_size(f->enc) > 0 &&
        xdcr_encoder_txn_finish(f->enc, false, 0, &payload, &len, NULL) != 0) {
        /* out of memory closing it: start over with a fresh encoder */
        xdcr_encoder_free(f->enc);
        f->enc = xdcr_encoder_new();
    }
    f->txn_started = false;
}

static int end_stream(fwd_t *f, const char *why, xdcr_error_t *err)
{
    xdcr_error_t ferr;
    char s[XDCR_LSN_STRLEN];
    bool fatal = fwd_kafka_is_fatal(f->kafka, &ferr);
    bool failed = xdcr_ack_tracker_is_failed(f->tracker);
    int64_t deadline;

    if (f->streaming)
        maybe_send_status(f, true);
    fwd_pg_disconnect(f->pg);
    f->streaming = false;
    f->in_txn = false;
    abandon_part(f);
    if (failed || fatal)
        fwd_kafka_purge_queued(f->kafka);
    deadline = mono_ms() + 120000;
    while (!fatal && fwd_kafka_outq_len(f->kafka) > 0 && mono_ms() < deadline && !*f->env.stop)
        kpoll(f, 100);
    if (fatal || fwd_kafka_outq_len(f->kafka) > 0) {
        fwd_kafka_free(f->kafka);
        f->kafka = NULL;
        xdcr_series_inc(f->m.producer_recreations, 1);
        f->kafka = fwd_kafka_new(&f->cfg->kafka, f->cfg->topic, on_delivery, f, f->lg, err);
    }
    xdcr_ack_tracker_reset(f->tracker);
    f->inflight_bytes = 0;
    f->delivery_failed_logged = false;
    if (failed || fatal)
        xdcr_series_inc(f->m.restreams, 1);
    XDCR_LOG_KV(f->lg, XDCR_LOG_WARN, "stream stopped; will resume from the slot", "reason", why,
                "from_lsn", xdcr_lsn_format(xdcr_ack_tracker_confirmed(f->tracker), s),
                "producer_recreated", (fatal || f->kafka == NULL) ? "true" : "false");
    backoff(f);
    return f->kafka == NULL ? err->code : 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

fwd_t *fwd_new(const fwd_env_t *env, xdcr_error_t *err)
{
    fwd_t *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->status_lock, NULL);
    f->env = *env;
    f->cfg = env->cfg;
    f->lg = env->lg;
    snprintf(f->src.origin, sizeof(f->src.origin), "%s", f->cfg->origin);
    f->backoff_ms = f->cfg->backoff_initial_ms;
    f->retained_bytes = -1;
    tick(f);
    if (register_metrics(f, err) != 0)
        goto fail;
    f->tracker = xdcr_ack_tracker_new((size_t)f->cfg->inflight_max_messages, 0);
    f->enc = xdcr_encoder_new();
    f->dec = fwd_pgo_new();
    f->pg = fwd_pg_new(f->cfg->pg_conninfo, env->password, f->lg);
    if (f->tracker == NULL || f->enc == NULL || f->dec == NULL || f->pg == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    f->kafka = fwd_kafka_new(&f->cfg->kafka, f->cfg->topic, on_delivery, f, f->lg, err);
    if (f->kafka == NULL)
        goto fail;
    publish_status(f, NULL);
    return f;
fail:
    fwd_free(f);
    return NULL;
}

void fwd_free(fwd_t *f)
{
    if (f == NULL)
        return;
    fwd_pg_free(f->pg);
    fwd_kafka_free(f->kafka);
    xdcr_ack_tracker_free(f->tracker);
    xdcr_encoder_free(f->enc);
    fwd_pgo_free(f->dec);
    pthread_mutex_destroy(&f->status_lock);
    free(f);
}

/* Read what PostgreSQL has sent, up to a batch, unless backpressure says stop. */
static int read_stream(fwd_t *f, bool draining, xdcr_error_t *err)
{
    for (int i = 0; i < 4096; i++) {
        const char *buf;
        size_t len;
        int rc;

        if (is_backpressured(f) || xdcr_ack_tracker_is_failed(f->tracker))
            return 0;
        if (draining && !f->in_txn)
            return 0; /* finish the open transaction, then take nothing new */
        rc = fwd_pg_read(f->pg, &buf, &len, err);
        if (rc <= 0)
            return rc;
        rc = handle_copydata(f, buf, len, err);
        if (rc != 0)
            return rc;
        if (xdcr_ack_tracker_in_flight(f->tracker) > 0 && (i & 63) == 63)
            kpoll(f, 0);
    }
    return 0;
}

/* SIGTERM: finish the open transaction, wait for Kafka, confirm, stop. */
static int drain(fwd_t *f, xdcr_error_t *err)
{
    int64_t deadline = mono_ms() + f->cfg->drain_timeout_ms;
    char s[XDCR_LSN_STRLEN];

    XDCR_LOG(f->lg, XDCR_LOG_INFO, "draining");
    if (f->kafka == NULL) {
        fwd_pg_disconnect(f->pg);
        f->streaming = false;
        return 0;
    }
    while (f->streaming && f->in_txn && mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fwd_pg_socket(f->pg), .events = POLLIN};
        int rc;

        (void)poll(&pfd, 1, 50);
        kpoll(f, 0);
        rc = read_stream(f, true, err);
        if (rc < 0) {
            f->streaming = false;
            break;
        }
        maybe_send_status(f, false);
    }
    while (xdcr_ack_tracker_in_flight(f->tracker) > 0 && mono_ms() < deadline &&
           !xdcr_ack_tracker_is_failed(f->tracker)) {
        kpoll(f, 50);
        maybe_send_status(f, false); /* confirm as deliveries arrive; keep the walsender alive */
    }
    if (f->streaming)
        maybe_send_status(f, true);
    fwd_pg_disconnect(f->pg);
    f->streaming = false;
    XDCR_LOG_KV(f->lg, XDCR_LOG_INFO, "stopped", "confirmed_lsn",
                xdcr_lsn_format(xdcr_ack_tracker_confirmed(f->tracker), s), "inflight",
                xdcr_ack_tracker_in_flight(f->tracker) == 0 ? "0" : "abandoned");
    return 0;
}

int fwd_run(fwd_t *f, xdcr_error_t *err)
{
    xdcr_error_t e;

    while (!*f->env.stop) {
        int64_t now = mono_ms();
        int rc;

        publish_status(f, NULL);
        if (f->kafka == NULL) {
            if (now < f->retry_at_ms) {
                usleep(20000);
                tick(f);
                continue;
            }
            f->kafka = fwd_kafka_new(&f->cfg->kafka, f->cfg->topic, on_delivery, f, f->lg, &e);
            if (f->kafka == NULL) {
                publish_status(f, &e);
                XDCR_LOG_KV(f->lg, XDCR_LOG_ERROR, "could not create the Kafka producer", "error",
                            e.message);
                backoff(f);
                continue;
            }
        }
        if (xdcr_ack_tracker_is_failed(f->tracker) || fwd_kafka_is_fatal(f->kafka, NULL)) {
            (void)end_stream(f, "kafka delivery failed", &e);
            continue;
        }
        if (!f->streaming) {
            if (now < f->retry_at_ms) {
                kpoll(f, (int)(f->retry_at_ms - now < 100 ? f->retry_at_ms - now : 100));
                continue;
            }
            rc = start_stream(f, &e);
            if (rc == XDCR_EEXISTS) {
                set_role(f, FWD_ROLE_STANDBY);
                if (!f->standby_logged) {
                    XDCR_LOG_KV(f->lg, XDCR_LOG_INFO,
                                "slot is active in another forwarder; waiting as a standby", "slot",
                                f->cfg->slot_name);
                    f->standby_logged = true;
                }
                f->retry_at_ms =
                    mono_ms() +
                    (f->cfg->backoff_initial_ms * 4 < 2000 ? f->cfg->backoff_initial_ms * 4 : 2000);
                continue;
            }
            if (rc != 0) {
                publish_status(f, &e);
                if (!e.retriable) {
                    *err = e;
                    return rc;
                }
                XDCR_LOG_KV(f->lg, XDCR_LOG_WARN, "could not start streaming; retrying", "error",
                            e.message);
                backoff(f);
                continue;
            }
        }
        {
            struct pollfd pfd = {.fd = fwd_pg_socket(f->pg), .events = POLLIN};
            int timeout = is_backpressured(f) ? 0 : 20;

            if (is_backpressured(f))
                kpoll(f, 20);
            else
                (void)poll(&pfd, 1, timeout);
        }
        kpoll(f, 0);
        rc = read_stream(f, false, &e);
        if (rc < 0) {
            publish_status(f, &e);
            if (!e.retriable) {
                *err = e;
                return rc;
            }
            XDCR_LOG_KV(f->lg, XDCR_LOG_WARN, "replication stream interrupted", "error", e.message);
            (void)end_stream(f, "replication stream interrupted", &e);
            continue;
        }
        now = mono_ms();
        if (f->streaming && !f->in_txn && now >= f->next_mark_ms) {
            refresh_positions(f);
            rc = publish_mark(f, &e);
            if (rc != 0 && rc != XDCR_EKAFKA)
                XDCR_LOG_KV(f->lg, XDCR_LOG_WARN, "could not publish a progress mark", "error",
                            e.message);
            f->next_mark_ms = now + f->cfg->heartbeat_ms;
        }
        maybe_send_status(f, false);
        xdcr_series_set(f->m.inflight_msgs, (double)xdcr_ack_tracker_in_flight(f->tracker));
        xdcr_series_set(f->m.inflight_bytes, (double)f->inflight_bytes);
    }
    return drain(f, err);
}
