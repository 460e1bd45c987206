/*
 * micro.c - micro-benchmarks of xdcr's pure parts, one thread, no services (issue 8, item 4):
 *
 *   pgoutput_decode   pgoutput Insert messages of a bench_items row (Begin/Commit every 1000
 *                     rows), fwd_pgo_decode                                          events/s
 *   event_encode      the same rows as changes of 1000-row transactions into format-v1 JSON,
 *                     parts of at most 512 kB (the forwarder's default), headers with CRC32C
 *   forwarder_path    both of the above, as the forwarder does per change
 *   event_decode      xdcr_headers_verify + xdcr_message_decode of those payloads
 *   sql_build_*       statement text per change (only when built with consumer/sql_build.h:
 *                     BENCH_HAVE_SQL_BUILD)                                      statements/s
 *
 *   xdcr-bench-micro [--quick] [--seconds S]
 *
 * Each benchmark runs whole 1000-row rounds for about S seconds (default 2, --quick 0.5) and
 * prints "name  events/s  (events, seconds)". A sink checksum keeps the compiler honest.
 */
#include "pgoutput.h"
#include "xdcr/error.h"
#include "xdcr/event.h"

#ifdef BENCH_HAVE_SQL_BUILD
#include "sql_build.h"
#include "xdcr/schema_check.h"
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS 1000               /* rows per source transaction */
#define NCOLS 5                 /* bench_items */
#define PART_LIMIT (512 * 1024) /* message.max_bytes default of the forwarder */
#define RELID 16384u

static volatile uint64_t sink;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const xdcr_error_t *err)
{
    fprintf(stderr, "xdcr-bench-micro: %s: %s\n", what, err != NULL ? err->message : "failed");
    exit(1);
}

/* ---- a byte buffer for pgoutput messages ---------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf_t;

static void b_put(buf_t *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            die("out of memory", NULL);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void b_u8(buf_t *b, unsigned v)
{
    unsigned char c = (unsigned char)v;

    b_put(b, &c, 1);
}

static void b_u16(buf_t *b, unsigned v)
{
    b_u8(b, v >> 8 & 0xff);
    b_u8(b, v & 0xff);
}

static void b_u32(buf_t *b, uint32_t v)
{
    b_u16(b, v >> 16);
    b_u16(b, v & 0xffff);
}

static void b_u64(buf_t *b, uint64_t v)
{
    b_u32(b, (uint32_t)(v >> 32));
    b_u32(b, (uint32_t)v);
}

static void b_str(buf_t *b, const char *s)
{
    b_put(b, s, strlen(s) + 1);
}

static void b_text(buf_t *b, const char *s)
{
    b_u8(b, 't');
    b_u32(b, (uint32_t)strlen(s));
    b_put(b, s, strlen(s));
}

/* ---- the workload's rows -------------------------------------------------------------------- */

typedef struct row {
    char id[24], account[16], amount[24], note[40], updated_at[40];
} row_t;

static row_t rows[ROWS];
static xdcr_value_t row_vals[ROWS][NCOLS];

static void make_rows(void)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < ROWS; i++) {
        row_t *r = &rows[i];
        uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);

        snprintf(r->id, sizeof(r->id), "%d", 100000 + i);
        snprintf(r->account, sizeof(r->account), "%d", i % 1000);
        snprintf(r->amount, sizeof(r->amount), "%d.%02d", (i * 37) % 100000, i % 100);
        for (int k = 0; k < 32; k++) {
            r->note[k] = hex[(x >> ((k * 2) % 64)) & 15];
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        }
        r->note[32] = '\0';
        snprintf(r->updated_at, sizeof(r->updated_at), "2026-11-22 04:07:%02d.%06d+00", i % 60,
                 (i * 7919) % 1000000);
        const char *v[NCOLS] = {r->id, r->account, r->amount, r->note, r->updated_at};
        for (int c = 0; c < NCOLS; c++) {
            row_vals[i][c].kind = XDCR_VAL_TEXT;
            row_vals[i][c].len = (uint32_t)strlen(v[c]);
            row_vals[i][c].data = v[c];
        }
    }
}

static const xdcr_column_t bench_cols[NCOLS] = {
    {"id", "bigint", 20, -1, true},
    {"account", "integer", 23, -1, false},
    {"amount", "numeric", 1700, (12 << 16 | 2) + 4, false},
    {"note", "text", 25, -1, false},
    {"updated_at", "timestamp with time zone", 1184, -1, false},
};
static const xdcr_relation_t bench_rel = {"public", "bench_items", NCOLS, bench_cols};

/* ---- pgoutput messages ------------------------------------------------------------------------
 */

typedef struct pgo_stream {
    buf_t relation, begin, commit;
    buf_t inserts; /* ROWS Insert messages back to back */
    size_t off[ROWS + 1];
} pgo_stream_t;

static void make_pgo(pgo_stream_t *s)
{
    memset(s, 0, sizeof(*s));
    b_u8(&s->relation, 'R');
    b_u32(&s->relation, RELID);
    b_str(&s->relation, "public");
    b_str(&s->relation, "bench_items");
    b_u8(&s->relation, 'd');
    b_u16(&s->relation, NCOLS);
    for (int c = 0; c < NCOLS; c++) {
        b_u8(&s->relation, bench_cols[c].key ? 1 : 0);
        b_str(&s->relation, bench_cols[c].name);
        b_u32(&s->relation, bench_cols[c].type_oid);
        b_u32(&s->relation, (uint32_t)bench_cols[c].typmod);
    }
    b_u8(&s->begin, 'B');
    b_u64(&s->begin, 0x16B3718);
    b_u64(&s->begin, 817013277123456ull);
    b_u32(&s->begin, 734);
    b_u8(&s->commit, 'C');
    b_u8(&s->commit, 0);
    b_u64(&s->commit, 0x16B3718);
    b_u64(&s->commit, 0x16B3748);
    b_u64(&s->commit, 817013277123456ull);
    for (int i = 0; i < ROWS; i++) {
        const row_t *r = &rows[i];

        s->off[i] = s->inserts.n;
        b_u8(&s->inserts, 'I');
        b_u32(&s->inserts, RELID);
        b_u8(&s->inserts, 'N');
        b_u16(&s->inserts, NCOLS);
        b_text(&s->inserts, r->id);
        b_text(&s->inserts, r->account);
        b_text(&s->inserts, r->amount);
        b_text(&s->inserts, r->note);
        b_text(&s->inserts, r->updated_at);
    }
    s->off[ROWS] = s->inserts.n;
}

static void decode_one(fwd_pgo_t *d, const char *p, size_t n, fwd_pgo_msg_t *m)
{
    xdcr_error_t err = {0};

    if (fwd_pgo_decode(d, p, n, m, &err) != 0)
        die("fwd_pgo_decode", &err);
}

/* ---- the encoder side -------------------------------------------------------------------------
 */

static const xdcr_source_t src = {"east", 7301234567890123456ull, 1};

typedef struct payloads {
    char **p;
    size_t *len;
    xdcr_headers_t *hdr;
    size_t n, cap;
} payloads_t;

static void keep(payloads_t *k, const char *p, size_t len, const xdcr_headers_t *h)
{
    if (k == NULL)
        return;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->p = realloc(k->p, k->cap * sizeof(*k->p));
        k->len = realloc(k->len, k->cap * sizeof(*k->len));
        k->hdr = realloc(k->hdr, k->cap * sizeof(*k->hdr));
        if (k->p == NULL || k->len == NULL || k->hdr == NULL)
            die("out of memory", NULL);
    }
    k->p[k->n] = malloc(len);
    if (k->p[k->n] == NULL)
        die("out of memory", NULL);
    memcpy(k->p[k->n], p, len);
    k->len[k->n] = len;
    k->hdr[k->n] = *h;
    k->n++;
}

/* Encoder state of one transaction being built. */
typedef struct txn_enc {
    xdcr_encoder_t *enc;
    xdcr_lsn_t commit_lsn, prev;
    uint32_t part, ordinal;
    uint64_t bytes;
} txn_enc_t;

static void txn_begin(txn_enc_t *t, xdcr_lsn_t commit_lsn, xdcr_lsn_t prev)
{
    xdcr_error_t err = {0};

    t->commit_lsn = commit_lsn;
    t->prev = prev;
    t->part = 0;
    t->ordinal = 0;
    if (xdcr_encoder_txn_begin(t->enc, &src, commit_lsn, prev, 734, 1795320477123456ll, 0, &err) !=
        0)
        die("xdcr_encoder_txn_begin", &err);
}

static void txn_flush(txn_enc_t *t, bool last, payloads_t *k)
{
    xdcr_error_t err = {0};
    const char *p;
    size_t len;
    xdcr_headers_t h;
    xdcr_lsn_t seq = last ? t->commit_lsn + 0x30 : 0;

    if (xdcr_encoder_txn_finish(t->enc, last, seq, &p, &len, &err) != 0)
        die("xdcr_encoder_txn_finish", &err);
    xdcr_headers_fill(&h, &src, XDCR_MSG_TXN, last ? seq : t->commit_lsn, p, len);
    sink += len + (unsigned char)h.crc[0];
    t->bytes += len;
    keep(k, p, len, &h);
    if (!last) {
        t->part++;
        if (xdcr_encoder_txn_begin(t->enc, &src, t->commit_lsn, t->prev, 734, 1795320477123456ll,
                                   t->part, &err) != 0)
            die("xdcr_encoder_txn_begin", &err);
    }
}

static void txn_add(txn_enc_t *t, uint32_t relkey, const xdcr_relation_t *rel,
                    const xdcr_value_t *vals, payloads_t *k)
{
    xdcr_error_t err = {0};
    xdcr_change_t ch;

    memset(&ch, 0, sizeof(ch));
    ch.op = XDCR_OP_INSERT;
    ch.ordinal = t->ordinal++;
    ch.new_vals = vals;
    if (xdcr_encoder_add_change(t->enc, relkey, rel, &ch, &err) != 0)
        die("xdcr_encoder_add_change", &err);
    if (xdcr_encoder_size(t->enc) >= PART_LIMIT)
        txn_flush(t, false, k);
}

/* ---- benchmarks -------------------------------------------------------------------------------
 */

typedef struct result {
    const char *name;
    uint64_t events;
    double seconds;
    const char *unit;
} result_t;

static void report(const result_t *r)
{
    printf("%-22s %12.0f %s/s  (%" PRIu64 " in %.2f s)\n", r->name, (double)r->events / r->seconds,
           r->unit, r->events, r->seconds);
    fflush(stdout);
}

static result_t bench_pgoutput_decode(const pgo_stream_t *s, double budget)
{
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m;
    uint64_t n = 0;
    double t0, t;

    if (d == NULL)
        die("fwd_pgo_new", NULL);
    t0 = now_s();
    do {
        decode_one(d, s->begin.p, s->begin.n, &m);
        if (n == 0)
            decode_one(d, s->relation.p, s->relation.n, &m);
        for (int i = 0; i < ROWS; i++) {
            decode_one(d, s->inserts.p + s->off[i], s->off[i + 1] - s->off[i], &m);
            sink += m.change.new_vals[4].len;
        }
        decode_one(d, s->commit.p, s->commit.n, &m);
        n += ROWS;
        t = now_s() - t0;
    } while (t < budget);
    fwd_pgo_free(d);
    return (result_t){"pgoutput_decode", n, t, "events"};
}

static result_t bench_event_encode(double budget, payloads_t *keep_first)
{
    txn_enc_t t = {.enc = xdcr_encoder_new()};
    uint64_t n = 0, rounds = 0;
    double t0, el;

    if (t.enc == NULL)
        die("xdcr_encoder_new", NULL);
    t0 = now_s();
    do {
        xdcr_lsn_t lsn = 0x1000000 + rounds * 0x100000;

        txn_begin(&t, lsn, rounds ? lsn - 0x100000 + 0x30 : 0);
        for (int i = 0; i < ROWS; i++)
            txn_add(&t, RELID, &bench_rel, row_vals[i], rounds == 0 ? keep_first : NULL);
        txn_flush(&t, true, rounds == 0 ? keep_first : NULL);
        n += ROWS;
        rounds++;
        el = now_s() - t0;
    } while (el < budget);
    xdcr_encoder_free(t.enc);
    return (result_t){"event_encode", n, el, "events"};
}

static result_t bench_forwarder_path(const pgo_stream_t *s, double budget)
{
    fwd_pgo_t *d = fwd_pgo_new();
    txn_enc_t t = {.enc = xdcr_encoder_new()};
    fwd_pgo_msg_t m;
    uint64_t n = 0, rounds = 0;
    double t0, el;

    if (d == NULL || t.enc == NULL)
        die("out of memory", NULL);
    t0 = now_s();
    do {
        xdcr_lsn_t lsn = 0x1000000 + rounds * 0x100000;

        decode_one(d, s->begin.p, s->begin.n, &m);
        if (rounds == 0)
            decode_one(d, s->relation.p, s->relation.n, &m);
        txn_begin(&t, lsn, rounds ? lsn - 0x100000 + 0x30 : 0);
        for (int i = 0; i < ROWS; i++) {
            decode_one(d, s->inserts.p + s->off[i], s->off[i + 1] - s->off[i], &m);
            txn_add(&t, m.change.rel->key, &m.change.rel->rel, m.change.new_vals, NULL);
        }
        decode_one(d, s->commit.p, s->commit.n, &m);
        txn_flush(&t, true, NULL);
        n += ROWS;
        rounds++;
        el = now_s() - t0;
    } while (el < budget);
    fwd_pgo_free(d);
    xdcr_encoder_free(t.enc);
    return (result_t){"forwarder_path", n, el, "events"};
}

static result_t bench_event_decode(const payloads_t *k, double budget)
{
    uint64_t n = 0;
    double t0, el;

    t0 = now_s();
    do {
        for (size_t i = 0; i < k->n; i++) {
            xdcr_error_t err = {0};
            xdcr_message_t *msg = NULL;
            const xdcr_headers_t *h = &k->hdr[i];

            if (xdcr_headers_verify(h->format, strlen(h->format), h->crc, strlen(h->crc), k->p[i],
                                    k->len[i], &err) != 0)
                die("xdcr_headers_verify", &err);
            if (xdcr_message_decode(k->p[i], k->len[i], &msg, &err) != 0)
                die("xdcr_message_decode", &err);
            n += msg->nchanges;
            sink += msg->changes[msg->nchanges - 1].new_vals[0].len;
            xdcr_message_free(msg);
        }
        el = now_s() - t0;
    } while (el < budget);
    return (result_t){"event_decode", n, el, "events"};
}

#ifdef BENCH_HAVE_SQL_BUILD
static xdcr_table_t *bench_table(void)
{
    xdcr_table_t *t = xdcr_table_new("public", "bench_items", RELID, 'r');

    if (t == NULL)
        die("xdcr_table_new", NULL);
    for (int c = 0; c < NCOLS; c++) {
        xdcr_tcol_t col;
        char name[64], type[64]; /* xdcr_table_add_column copies them */

        snprintf(name, sizeof(name), "%s", bench_cols[c].name);
        snprintf(type, sizeof(type), "%s", bench_cols[c].type);
        memset(&col, 0, sizeof(col));
        col.name = name;
        col.type_name = type;
        col.type_oid = bench_cols[c].type_oid;
        col.not_null = true;
        col.has_default = c == 4;
        col.pk_pos = c == 0 ? 1 : 0;
        if (xdcr_table_add_column(t, &col) != 0)
            die("xdcr_table_add_column", NULL);
    }
    if (xdcr_table_finish(t) != 0)
        die("xdcr_table_finish", NULL);
    return t;
}

static result_t bench_sql(const char *name, int kind, double budget)
{
    xdcr_table_t *t = bench_table();
    static const uint32_t all[NCOLS] = {0, 1, 2, 3, 4};
    static const uint32_t nonkey[NCOLS - 1] = {1, 2, 3, 4};
    sql_buf_t b;
    uint64_t n = 0;
    double t0, el;

    sql_buf_init(&b);
    t0 = now_s();
    do {
        for (int i = 0; i < ROWS; i++) {
            int rc;

            sql_buf_reset(&b);
            if (kind == 0)
                rc = sql_build_upsert(&b, t, all, NCOLS);
            else if (kind == 1)
                rc = sql_build_update(&b, t, nonkey, NCOLS - 1, false);
            else
                rc = sql_build_delete(&b, t);
            if (rc != 0 || sql_buf_status(&b) != 0)
                die(name, NULL);
            sink += b.len;
        }
        n += ROWS;
        el = now_s() - t0;
    } while (el < budget);
    sql_buf_free(&b);
    xdcr_table_free(t);
    return (result_t){name, n, el, "statements"};
}
#endif

int main(int argc, char **argv)
{
    double budget = 2.0;
    pgo_stream_t s;
    payloads_t k = {0};
    result_t r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            budget = 0.5;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            budget = atof(argv[++i]);
            if (budget <= 0)
                budget = 2.0;
        } else {
            fprintf(stderr, "usage: xdcr-bench-micro [--quick] [--seconds S]\n");
            return 2;
        }
    }
    make_rows();
    make_pgo(&s);
    printf("micro-benchmarks: bench_items rows (5 columns), %d-row transactions, %.1f s each\n",
           ROWS, budget);
    r = bench_pgoutput_decode(&s, budget);
    report(&r);
    r = bench_event_encode(budget, &k);
    report(&r);
    {
        size_t total = 0;

        for (size_t i = 0; i < k.n; i++)
            total += k.len[i];
        printf("%-22s %12.1f bytes of JSON payload per row (%zu messages per %d-row transaction)\n",
               "event_size", (double)total / ROWS, k.n, ROWS);
    }
    r = bench_forwarder_path(&s, budget);
    report(&r);
    r = bench_event_decode(&k, budget);
    report(&r);
#ifdef BENCH_HAVE_SQL_BUILD
    r = bench_sql("sql_build_upsert", 0, budget);
    report(&r);
    r = bench_sql("sql_build_update", 1, budget);
    report(&r);
    r = bench_sql("sql_build_delete", 2, budget);
    report(&r);
#else
    printf("sql_build_*            not built (consumer/sql_build.h missing)\n");
#endif
    for (size_t i = 0; i < k.n; i++)
        free(k.p[i]);
    free(k.p);
    free(k.len);
    free(k.hdr);
    free(s.relation.p);
    free(s.begin.p);
    free(s.commit.p);
    free(s.inserts.p);
    return sink == 42 ? 1 : 0;
}
