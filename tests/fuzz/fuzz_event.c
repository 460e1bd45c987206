/*
 * fuzz_event.c - libFuzzer target for the message codec: decode arbitrary bytes; whatever decodes
 * must re-encode, decode again to the same content, and re-encode to the very same bytes.
 */
#include "xdcr/event.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const xdcr_error_t *err)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_event: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    abort();
}

static bool values_equal(const xdcr_value_t *a, const xdcr_value_t *b, uint32_t n)
{
    if ((a == NULL) != (b == NULL))
        return false;
    for (uint32_t i = 0; a != NULL && i < n; i++) {
        if (a[i].kind != b[i].kind)
            return false;
        if (a[i].kind == XDCR_VAL_TEXT &&
            (a[i].len != b[i].len || memcmp(a[i].data, b[i].data, a[i].len) != 0))
            return false;
    }
    return true;
}

static bool rels_equal(const xdcr_relation_t *a, const xdcr_relation_t *b)
{
    if (strcmp(a->schema, b->schema) != 0 || strcmp(a->table, b->table) != 0 ||
        a->ncols != b->ncols)
        return false;
    for (uint32_t i = 0; i < a->ncols; i++) {
        const xdcr_column_t *x = &a->cols[i], *y = &b->cols[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->type, y->type) != 0 ||
            x->type_oid != y->type_oid || x->typmod != y->typmod || x->key != y->key)
            return false;
    }
    return true;
}

/* Same content; relation indexes may differ (the encoder renumbers in first-use order). */
static void compare(const xdcr_message_t *a, const xdcr_message_t *b)
{
    check(a->version == b->version && a->type == b->type, "type differs", NULL);
    check(strcmp(a->src.origin, b->src.origin) == 0 && a->src.sysid == b->src.sysid &&
              a->src.timeline == b->src.timeline && a->seq == b->seq &&
              a->prev_seq == b->prev_seq && a->commit_lsn == b->commit_lsn,
          "source or stream position differs", NULL);
    if (a->type == XDCR_MSG_MARK) {
        check(a->wal_lsn == b->wal_lsn && a->time_us == b->time_us, "mark differs", NULL);
        return;
    }
    check(a->xid == b->xid && a->commit_time_us == b->commit_time_us && a->part == b->part &&
              a->last == b->last && a->nchanges == b->nchanges,
          "transaction head differs", NULL);
    for (uint32_t i = 0; i < a->nchanges; i++) {
        const xdcr_change_t *x = &a->changes[i], *y = &b->changes[i];

        check(x->op == y->op && x->ordinal == y->ordinal, "change op or ordinal differs", NULL);
        switch (x->op) {
        case XDCR_OP_INSERT:
        case XDCR_OP_UPDATE:
        case XDCR_OP_DELETE: {
            const xdcr_relation_t *rx = &a->rels[x->rel], *ry = &b->rels[y->rel];
            check(rels_equal(rx, ry), "change relation differs", NULL);
            check(values_equal(x->old_vals, y->old_vals, rx->ncols), "old values differ", NULL);
            check(values_equal(x->new_vals, y->new_vals, rx->ncols), "new values differ", NULL);
            break;
        }
        case XDCR_OP_TRUNCATE:
            check(x->ntrunc == y->ntrunc && x->cascade == y->cascade &&
                      x->restart_identity == y->restart_identity,
                  "truncate differs", NULL);
            for (uint32_t k = 0; k < x->ntrunc; k++)
                check(rels_equal(&a->rels[x->trunc_rels[k]], &b->rels[y->trunc_rels[k]]),
                      "truncated relation differs", NULL);
            break;
        case XDCR_OP_MESSAGE:
            check(strcmp(x->prefix, y->prefix) == 0 && x->content_len == y->content_len &&
                      (x->content_len == 0 || memcmp(x->content, y->content, x->content_len) == 0),
                  "logical message differs", NULL);
            break;
        }
    }
}

/* Encode m again; the payload lives in enc. */
static void encode(xdcr_encoder_t *enc, const xdcr_message_t *m, const char **payload, size_t *len)
{
    xdcr_error_t err;
    size_t size;

    if (m->type == XDCR_MSG_MARK) {
        check(xdcr_encoder_mark(enc, &m->src, m->prev_seq, m->seq, m->wal_lsn, m->time_us, payload,
                                len, &err) == 0,
              "mark does not re-encode", &err);
        return;
    }
    check(xdcr_encoder_txn_begin(enc, &m->src, m->commit_lsn, m->prev_seq, m->xid,
                                 m->commit_time_us, m->part, &err) == 0,
          "transaction does not re-encode", &err);
    for (uint32_t i = 0; i < m->nchanges; i++) {
        const xdcr_change_t *c = &m->changes[i];
        int rc;

        if (c->op == XDCR_OP_TRUNCATE) {
            const xdcr_relation_t **rels = malloc(sizeof(*rels) * c->ntrunc);
            check(rels != NULL, "out of memory", NULL);
            for (uint32_t k = 0; k < c->ntrunc; k++)
                rels[k] = &m->rels[c->trunc_rels[k]];
            rc = xdcr_encoder_add_truncate(enc, c->ordinal, c->ntrunc, c->trunc_rels, rels,
                                           c->cascade, c->restart_identity, &err);
            free(rels);
        } else if (c->op == XDCR_OP_MESSAGE) {
            rc = xdcr_encoder_add_change(enc, 0, NULL, c, &err);
        } else {
            rc = xdcr_encoder_add_change(enc, c->rel, &m->rels[c->rel], c, &err);
        }
        check(rc == 0, "change does not re-encode", &err);
    }
    check(xdcr_encoder_nchanges(enc) == m->nchanges, "change count differs", NULL);
    size = xdcr_encoder_size(enc);
    check(xdcr_encoder_txn_finish(enc, m->last, m->seq, payload, len, &err) == 0,
          "transaction does not finish", &err);
    /* exact; a last part adds ,"seq":"X/Y" and "true" is one byte shorter than "false" */
    if (m->last) {
        char lsn[XDCR_LSN_STRLEN];
        size += sizeof(",\"seq\":\"\"") - 1 + strlen(xdcr_lsn_format(m->seq, lsn)) - 1;
    }
    check(size == *len, "xdcr_encoder_size is not exact", NULL);
}

/* Times: whatever parses formats back to the same text. */
static void fuzz_time(const uint8_t *data, size_t size)
{
    char in[40], out[32];
    int64_t us;

    if (size >= sizeof(in))
        return;
    memcpy(in, data, size);
    in[size] = '\0';
    if (xdcr_time_parse_us(in, &us, NULL) != 0)
        return;
    check(xdcr_time_format_us(us, out, sizeof(out)) != NULL, "parsed time does not format", NULL);
    check(strcmp(in, out) == 0, "time does not round-trip", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xdcr_message_t *m1 = NULL, *m2 = NULL, *m3 = NULL;
    xdcr_encoder_t *enc1, *enc2;
    xdcr_headers_t h;
    xdcr_error_t err;
    const char *p1, *p2;
    size_t n1, n2;
    int rc;

    fuzz_time(data, size);
    rc = xdcr_message_decode(data, size, &m1, &err);
    check((rc == 0) == (m1 != NULL), "decode result and output disagree", NULL);
    check(rc == 0 || err.code == rc, "error code not set", NULL);
    if (rc != 0)
        return 0;

    enc1 = xdcr_encoder_new();
    enc2 = xdcr_encoder_new();
    check(enc1 != NULL && enc2 != NULL, "out of memory", NULL);
    encode(enc1, m1, &p1, &n1);
    check(xdcr_message_decode(p1, n1, &m2, &err) == 0, "re-encoded message does not decode", &err);
    compare(m1, m2);

    /* the encoder's output is canonical: a second round gives the same bytes */
    encode(enc2, m2, &p2, &n2);
    check(n1 == n2 && memcmp(p1, p2, n1) == 0, "re-encoding is not stable", NULL);
    check(xdcr_message_decode(p2, n2, &m3, &err) == 0, "second re-encoding does not decode", &err);
    compare(m1, m3);

    xdcr_headers_fill(&h, &m2->src, m2->type, m2->seq, p1, n1);
    check(xdcr_headers_verify(h.format, strlen(h.format), h.crc, strlen(h.crc), p1, n1, &err) == 0,
          "filled headers do not verify", &err);

    xdcr_message_free(m3);
    xdcr_message_free(m2);
    xdcr_message_free(m1);
    xdcr_encoder_free(enc2);
    xdcr_encoder_free(enc1);
    return 0;
}
