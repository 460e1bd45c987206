/*
 * fuzz_pgoutput.c - libFuzzer target for the pgoutput decoder and the CopyData parser.
 * The input is a sequence of messages, each prefixed by a 2-byte big-endian length (the last
 * one may be short), fed to one decoder so the relation and type caches and the transaction
 * framing carry state from message to message. Messages starting with 'w' or 'k' go through
 * fwd_pgo_parse_copydata() first, and an XLogData's payload then through the decoder.
 */
#include "pgoutput.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read every byte a successful decode points at, so ASan checks the pointers it returned. */
static unsigned touch_values(const xdcr_value_t *vals, uint32_t n)
{
    unsigned sum = 0;

    for (uint32_t i = 0; vals != NULL && i < n; i++) {
        if (vals[i].kind == XDCR_VAL_TEXT)
            for (uint32_t j = 0; j < vals[i].len; j++)
                sum += (unsigned char)vals[i].data[j];
        else if (vals[i].kind != XDCR_VAL_NULL && vals[i].kind != XDCR_VAL_UNCHANGED)
            abort();
    }
    return sum;
}

static unsigned touch_rel(const fwd_pgo_rel_t *rel)
{
    unsigned sum = (unsigned)strlen(rel->rel.schema) + (unsigned)strlen(rel->rel.table);

    if (rel->key == 0)
        abort();
    for (uint32_t i = 0; i < rel->rel.ncols; i++)
        sum += (unsigned)strlen(rel->rel.cols[i].name) + (unsigned)strlen(rel->rel.cols[i].type);
    return sum;
}

static unsigned touch(const fwd_pgo_t *d, const fwd_pgo_msg_t *m)
{
    unsigned sum = 0;

    switch (m->type) {
    case FWD_PGO_RELATION:
        if (fwd_pgo_relation(d, m->relation.rel->relid) != m->relation.rel)
            abort();
        sum += touch_rel(m->relation.rel);
        break;
    case FWD_PGO_INSERT:
    case FWD_PGO_UPDATE:
    case FWD_PGO_DELETE:
        sum += touch_rel(m->change.rel);
        sum += touch_values(m->change.old_vals, m->change.rel->rel.ncols);
        sum += touch_values(m->change.new_vals, m->change.rel->rel.ncols);
        if ((m->type == FWD_PGO_DELETE) != (m->change.new_vals == NULL))
            abort();
        break;
    case FWD_PGO_TRUNCATE:
        for (uint32_t i = 0; i < m->truncate.nrels; i++)
            sum += touch_rel(m->truncate.rels[i]);
        break;
    case FWD_PGO_MESSAGE:
        sum += (unsigned)strlen(m->message.prefix);
        for (uint32_t i = 0; i < m->message.content_len; i++)
            sum += (unsigned char)m->message.content[i];
        break;
    case FWD_PGO_ORIGIN:
        sum += (unsigned)strlen(m->origin.name);
        break;
    case FWD_PGO_TYPE:
        sum += (unsigned)strlen(m->pgtype.nspname) + (unsigned)strlen(m->pgtype.name);
        break;
    default:
        break;
    }
    return sum;
}

static void decode_one(fwd_pgo_t *d, const char *buf, size_t len, volatile unsigned *sink)
{
    fwd_pgo_msg_t m;
    xdcr_error_t err;
    bool in_txn = fwd_pgo_in_txn(d);
    size_t nrels = fwd_pgo_nrelations(d);
    int rc = fwd_pgo_decode(d, buf, len, &m, &err);

    if (rc == 0) {
        *sink += touch(d, &m);
        return;
    }
    /* failures are parse errors (or memory), carry a message, and change no state */
    if ((rc != XDCR_EPARSE && rc != XDCR_ENOMEM) || err.code != rc || err.message[0] == '\0' ||
        fwd_pgo_in_txn(d) != in_txn || fwd_pgo_nrelations(d) != nrels)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwd_pgo_t *d = fwd_pgo_new();
    volatile unsigned sink = 0;
    size_t pos = 0;

    if (d == NULL)
        return 0;
    while (pos < size) {
        size_t len = size - pos; /* a last byte without a full prefix is a message itself */
        char *msg;

        if (size - pos >= 2) {
            len = (size_t)data[pos] << 8 | data[pos + 1];
            pos += 2;
            if (len > size - pos)
                len = size - pos;
        }
        /* an exact-size heap copy, so any read past the end is caught */
        msg = malloc(len ? len : 1);
        if (msg == NULL)
            break;
        if (len > 0)
            memcpy(msg, data + pos, len);
        pos += len;
        if (len > 0 && (msg[0] == 'w' || msg[0] == 'k')) {
            fwd_pgo_copydata_t c;
            xdcr_error_t err;

            if (fwd_pgo_parse_copydata(msg, len, &c, &err) == 0 && c.type == FWD_PGO_XLOGDATA) {
                if (c.data != msg + 25 || c.len != len - 25)
                    abort();
                decode_one(d, c.data, c.len, &sink);
            }
        } else {
            decode_one(d, msg, len, &sink);
        }
        free(msg);
    }
    fwd_pgo_free(d);
    (void)sink;
    return 0;
}
