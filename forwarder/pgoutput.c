/*
 * pgoutput.c - decoder of the pgoutput logical replication protocol and its CopyData wrappers,
 * with the relation and type caches the protocol relies on. Pure: no I/O, no libpq.
 * Layouts: PostgreSQL 15 docs, "Logical Replication Message Formats" and "Streaming
 * Replication Protocol"; all integers in network byte order.
 */
#include "pgoutput.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small map from OID to pointer (open addressing, never shrinks) --------------------- */

typedef struct oidmap {
    uint32_t *keys;
    void **vals; /* NULL marks a free slot */
    size_t cap;  /* power of two, or 0 */
    size_t count;
} oidmap_t;

static size_t oid_hash(uint32_t key, size_t cap)
{
    return (size_t)((key * UINT32_C(2654435761)) & (uint32_t)(cap - 1));
}

static void *oidmap_get(const oidmap_t *m, uint32_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = oid_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == NULL)
            return NULL;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

/* Make room for one more entry; false when out of memory (map unchanged). */
static bool oidmap_reserve(oidmap_t *m)
{
    size_t ncap;
    uint32_t *nkeys;
    void **nvals;

    if ((m->count + 1) * 2 <= m->cap)
        return true;
    ncap = m->cap ? m->cap * 2 : 16;
    nkeys = calloc(ncap, sizeof(*nkeys));
    nvals = calloc(ncap, sizeof(*nvals));
    if (nkeys == NULL || nvals == NULL) {
        free(nkeys);
        free(nvals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        size_t j;

        if (m->vals[i] == NULL)
            continue;
        for (j = oid_hash(m->keys[i], ncap); nvals[j] != NULL; j = (j + 1) & (ncap - 1))
            ;
        nkeys[j] = m->keys[i];
        nvals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nkeys;
    m->vals = nvals;
    m->cap = ncap;
    return true;
}

/* Store val (non-NULL) under key after oidmap_reserve(); returns the replaced value or NULL. */
static void *oidmap_put(oidmap_t *m, uint32_t key, void *val)
{
    size_t i;

    for (i = oid_hash(key, m->cap); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            void *old = m->vals[i];

            m->vals[i] = val;
            return old;
        }
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return NULL;
}

static void oidmap_clear(oidmap_t *m, bool free_vals)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (free_vals)
            free(m->vals[i]);
        m->vals[i] = NULL;
    }
    m->count = 0;
}

static void oidmap_fini(oidmap_t *m)
{
    oidmap_clear(m, true);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- decoder ----------------------------------------------------------------------------- */

/* One column of a Relation message while it is parsed; strings point into the input. */
typedef struct pending_col {
    uint8_t flags;
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
    const char *type; /* resolved type name (cache, built-in or "") */
} pending_col_t;

struct fwd_pgo {
    oidmap_t rels;  /* relid -> fwd_pgo_rel_t * (one allocation each) */
    oidmap_t types; /* type oid -> char * formatted type name */
    uint32_t next_key;
    bool in_txn;
    xdcr_lsn_t txn_final_lsn; /* Begin's final_lsn while in_txn */
    /* scratch, reused across calls: valid until the next decode */
    xdcr_value_t *old_vals, *new_vals;
    size_t vals_cap;
    const fwd_pgo_rel_t **trunc_rels;
    size_t trunc_cap;
    pending_col_t *cols;
    size_t cols_cap;
};

fwd_pgo_t *fwd_pgo_new(void)
{
    fwd_pgo_t *d = calloc(1, sizeof(*d));

    if (d != NULL)
        d->next_key = 1;
    return d;
}

void fwd_pgo_free(fwd_pgo_t *d)
{
    if (d == NULL)
        return;
    oidmap_fini(&d->rels);
    oidmap_fini(&d->types);
    free(d->old_vals);
    free(d->new_vals);
    free(d->trunc_rels);
    free(d->cols);
    free(d);
}

void fwd_pgo_reset(fwd_pgo_t *d)
{
    oidmap_clear(&d->rels, true);
    oidmap_clear(&d->types, true);
    d->in_txn = false;
    d->txn_final_lsn = 0;
}

const fwd_pgo_rel_t *fwd_pgo_relation(const fwd_pgo_t *d, uint32_t relid)
{
    return oidmap_get(&d->rels, relid);
}

size_t fwd_pgo_nrelations(const fwd_pgo_t *d)
{
    return d->rels.count;
}

bool fwd_pgo_in_txn(const fwd_pgo_t *d)
{
    return d->in_txn;
}

const char *fwd_pgo_type_name(int type)
{
    switch (type) {
    case FWD_PGO_BEGIN:
        return "Begin";
    case FWD_PGO_COMMIT:
        return "Commit";
    case FWD_PGO_ORIGIN:
        return "Origin";
    case FWD_PGO_RELATION:
        return "Relation";
    case FWD_PGO_TYPE:
        return "Type";
    case FWD_PGO_INSERT:
        return "Insert";
    case FWD_PGO_UPDATE:
        return "Update";
    case FWD_PGO_DELETE:
        return "Delete";
    case FWD_PGO_TRUNCATE:
        return "Truncate";
    case FWD_PGO_MESSAGE:
        return "Message";
    default:
        return "unknown";
    }
}

/* ---- bounds-checked reader --------------------------------------------------------------- */

typedef struct rd {
    const unsigned char *p;
    size_t len;
    size_t pos;
    const char *what; /* "pgoutput Insert", "XLogData", ... */
    xdcr_error_t *err;
} rd_t;

__attribute__((format(printf, 3, 4))) static int rd_fail(rd_t *r, size_t at, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    xdcr_error_set(r->err, XDCR_EPARSE, false, "malformed %s message at offset %zu: %s", r->what,
                   at, reason);
    return XDCR_EPARSE; /* a constant, so the compiler sees every failure path return nonzero */
}

static int rd_need(rd_t *r, size_t n, const char *field)
{
    if (r->len - r->pos < n)
        return rd_fail(r, r->pos, "truncated %s (needs %zu bytes, %zu left)", field, n,
                       r->len - r->pos);
    return 0;
}

static int rd_u8(rd_t *r, const char *field, uint8_t *out)
{
    if (rd_need(r, 1, field) != 0)
        return XDCR_EPARSE;
    *out = r->p[r->pos++];
    return 0;
}

static int rd_u16(rd_t *r, const char *field, uint16_t *out)
{
    if (rd_need(r, 2, field) != 0)
        return XDCR_EPARSE;
    *out = (uint16_t)((unsigned)r->p[r->pos] << 8 | r->p[r->pos + 1]);
    r->pos += 2;
    return 0;
}

static int rd_u32(rd_t *r, const char *field, uint32_t *out)
{
    const unsigned char *b = r->p + r->pos;

    if (rd_need(r, 4, field) != 0)
        return XDCR_EPARSE;
    *out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
    r->pos += 4;
    return 0;
}

static int rd_u64(rd_t *r, const char *field, uint64_t *out)
{
    uint64_t v = 0;

    if (rd_need(r, 8, field) != 0)
        return XDCR_EPARSE;
    for (int i = 0; i < 8; i++)
        v = v << 8 | r->p[r->pos + (size_t)i];
    r->pos += 8;
    *out = v;
    return 0;
}

/* A non-negative Int16 count. */
static int rd_count16(rd_t *r, const char *field, uint32_t *out)
{
    size_t at = r->pos;
    uint16_t v;

    if (rd_u16(r, field, &v) != 0)
        return XDCR_EPARSE;
    if (v & 0x8000u)
        return rd_fail(r, at, "negative %s %d", field, (int)v - 65536);
    *out = v;
    return 0;
}

/* A non-negative Int32 count or length. */
static int rd_count32(rd_t *r, const char *field, uint32_t *out)
{
    size_t at = r->pos;
    uint32_t v;

    if (rd_u32(r, field, &v) != 0)
        return XDCR_EPARSE;
    if (v & UINT32_C(0x80000000))
        return rd_fail(r, at, "negative %s %lld", field, (long long)v - 4294967296LL);
    *out = v;
    return 0;
}

/* A PostgreSQL timestamp (µs since 2000-01-01), converted to Unix µs. */
static int rd_time(rd_t *r, const char *field, int64_t *out)
{
    size_t at = r->pos;
    uint64_t v;
    int64_t pg;

    if (rd_u64(r, field, &v) != 0)
        return XDCR_EPARSE;
    /* two's complement reinterpretation without implementation-defined conversion */
    pg = v <= INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
    if (pg > INT64_MAX - FWD_PG_EPOCH_UNIX_US)
        return rd_fail(r, at, "%s out of range", field);
    *out = pg + FWD_PG_EPOCH_UNIX_US;
    return 0;
}

/* A NUL-terminated string; *out points into the input. */
static int rd_str(rd_t *r, const char *field, const char **out)
{
    const unsigned char *nul = memchr(r->p + r->pos, '\0', r->len - r->pos);

    if (nul == NULL)
        return rd_fail(r, r->pos, "unterminated %s", field);
    *out = (const char *)(r->p + r->pos);
    r->pos = (size_t)(nul - r->p) + 1;
    return 0;
}

static int rd_bytes(rd_t *r, size_t n, const char *field, const char **out)
{
    if (rd_need(r, n, field) != 0)
        return XDCR_EPARSE;
    *out = (const char *)(r->p + r->pos);
    r->pos += n;
    return 0;
}

static int rd_end(rd_t *r)
{
    if (r->pos != r->len)
        return rd_fail(r, r->pos, "%zu unexpected trailing bytes", r->len - r->pos);
    return 0;
}

/* ---- scratch space ------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem, xdcr_error_t *err)
{
    size_t ncap;
    void *np;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    np = realloc(*p, ncap * elem);
    if (np == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory decoding pgoutput");
    *p = np;
    *cap = ncap;
    return 0;
}

static int reserve_vals(fwd_pgo_t *d, size_t n, xdcr_error_t *err)
{
    size_t cap = d->vals_cap;
    int rc;

    if (n <= cap)
        return 0;
    rc = grow((void **)&d->old_vals, &cap, n, sizeof(xdcr_value_t), err);
    if (rc != 0)
        return rc;
    cap = d->vals_cap;
    rc = grow((void **)&d->new_vals, &cap, n, sizeof(xdcr_value_t), err);
    if (rc != 0)
        return rc;
    d->vals_cap = cap;
    return 0;
}

/* ---- message bodies ----------------------------------------------------------------------- */

/* TupleData: Int16 column count, then per column 'n' | 'u' | 't' Int32 len, bytes | 'b' ... */
static int rd_tuple(rd_t *r, const fwd_pgo_rel_t *rel, xdcr_value_t *vals)
{
    size_t at = r->pos;
    uint32_t natts;

    if (rd_count16(r, "tuple column count", &natts) != 0)
        return XDCR_EPARSE;
    if (natts != rel->rel.ncols)
        return rd_fail(r, at, "tuple has %u columns but relation %u (%s.%s) has %u", natts,
                       rel->relid, rel->rel.schema, rel->rel.table, rel->rel.ncols);
    for (uint32_t i = 0; i < natts; i++) {
        uint8_t kind;
        uint32_t n = 0;

        at = r->pos;
        if (rd_u8(r, "tuple value kind", &kind) != 0)
            return XDCR_EPARSE;
        switch (kind) {
        case 'n':
            vals[i] = (xdcr_value_t){.kind = XDCR_VAL_NULL};
            break;
        case 'u':
            vals[i] = (xdcr_value_t){.kind = XDCR_VAL_UNCHANGED};
            break;
        case 't':
            vals[i] = (xdcr_value_t){.kind = XDCR_VAL_TEXT};
            if (rd_count32(r, "value length", &n) != 0 ||
                rd_bytes(r, n, "value", &vals[i].data) != 0)
                return XDCR_EPARSE;
            vals[i].len = n;
            break;
        case 'b':
            return rd_fail(r, at, "column \"%s\" has a binary value, but text format was requested",
                           rel->rel.cols[i].name);
        default:
            return rd_fail(r, at, "unknown tuple value kind 0x%02x for column \"%s\"", kind,
                           rel->rel.cols[i].name);
        }
    }
    return 0;
}

static int rd_relid(fwd_pgo_t *d, rd_t *r, const fwd_pgo_rel_t **out)
{
    size_t at = r->pos;
    uint32_t relid;

    if (rd_u32(r, "relation id", &relid) != 0)
        return XDCR_EPARSE;
    *out = oidmap_get(&d->rels, relid);
    if (*out == NULL)
        return rd_fail(r, at, "unknown relation id %u (no Relation message seen for it)", relid);
    return 0;
}

static int need_txn(fwd_pgo_t *d, rd_t *r)
{
    if (!d->in_txn)
        return rd_fail(r, 0, "outside of a transaction (no Begin)");
    return 0;
}

static int dec_begin(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    if (d->in_txn)
        return rd_fail(r, 0, "inside a transaction (Begin without Commit)");
    if (rd_u64(r, "final LSN", &m->begin.final_lsn) != 0 ||
        rd_time(r, "commit timestamp", &m->begin.commit_time_us) != 0 ||
        rd_u32(r, "xid", &m->begin.xid) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    d->in_txn = true;
    d->txn_final_lsn = m->begin.final_lsn;
    return 0;
}

static int dec_commit(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    char a[XDCR_LSN_STRLEN], b[XDCR_LSN_STRLEN];

    if (need_txn(d, r) != 0 || rd_u8(r, "flags", &m->commit.flags) != 0 ||
        rd_u64(r, "commit LSN", &m->commit.commit_lsn) != 0 ||
        rd_u64(r, "end LSN", &m->commit.end_lsn) != 0 ||
        rd_time(r, "commit timestamp", &m->commit.commit_time_us) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    if (m->commit.commit_lsn != d->txn_final_lsn)
        return rd_fail(r, 2, "commit LSN %s differs from the Begin message's final LSN %s",
                       xdcr_lsn_format(m->commit.commit_lsn, a),
                       xdcr_lsn_format(d->txn_final_lsn, b));
    if (m->commit.end_lsn <= m->commit.commit_lsn)
        return rd_fail(r, 10, "end LSN %s is not after the commit LSN %s",
                       xdcr_lsn_format(m->commit.end_lsn, a),
                       xdcr_lsn_format(m->commit.commit_lsn, b));
    d->in_txn = false;
    return 0;
}

static int dec_origin(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    if (need_txn(d, r) != 0 || rd_u64(r, "origin commit LSN", &m->origin.commit_lsn) != 0 ||
        rd_str(r, "origin name", &m->origin.name) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    return 0;
}

static int dec_type(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    size_t n;
    char *name, *old;

    if (rd_u32(r, "type id", &m->pgtype.oid) != 0 ||
        rd_str(r, "namespace", &m->pgtype.nspname) != 0 ||
        rd_str(r, "type name", &m->pgtype.name) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    n = fwd_pg_format_type(NULL, 0, m->pgtype.nspname, m->pgtype.name);
    name = malloc(n + 1);
    if (name == NULL || !oidmap_reserve(&d->types)) {
        free(name);
        return xdcr_error_set(r->err, XDCR_ENOMEM, true, "out of memory decoding pgoutput");
    }
    fwd_pg_format_type(name, n + 1, m->pgtype.nspname, m->pgtype.name);
    old = oidmap_put(&d->types, m->pgtype.oid, name);
    free(old);
    return 0;
}

static bool replident_is_valid(uint8_t c)
{
    return c == 'd' || c == 'n' || c == 'f' || c == 'i';
}

static int dec_relation(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    const char *nspname = "", *relname = "";
    uint32_t relid, natts;
    uint8_t replident;
    size_t at, size, cols_off, str_off;
    fwd_pgo_rel_t *rel, *old;
    xdcr_column_t *cols;
    char *s;
    int rc;

    if (rd_u32(r, "relation id", &relid) != 0 || rd_str(r, "namespace", &nspname) != 0 ||
        rd_str(r, "relation name", &relname) != 0)
        return XDCR_EPARSE;
    at = r->pos;
    if (rd_u8(r, "replica identity", &replident) != 0)
        return XDCR_EPARSE;
    if (!replident_is_valid(replident))
        return rd_fail(r, at, "unknown replica identity setting 0x%02x", replident);
    if (rd_count16(r, "column count", &natts) != 0)
        return XDCR_EPARSE;
    if (*nspname == '\0')
        nspname = "pg_catalog";

    rc = grow((void **)&d->cols, &d->cols_cap, natts ? natts : 1, sizeof(*d->cols), r->err);
    if (rc != 0)
        return rc;
    size = strlen(nspname) + 1 + strlen(relname) + 1;
    for (uint32_t i = 0; i < natts; i++) {
        pending_col_t *c = &d->cols[i];
        const char *type;
        uint32_t typmod;

        if (rd_u8(r, "column flags", &c->flags) != 0 || rd_str(r, "column name", &c->name) != 0 ||
            rd_u32(r, "column type", &c->type_oid) != 0 ||
            rd_u32(r, "column type modifier", &typmod) != 0)
            return XDCR_EPARSE;
        /* two's complement reinterpretation without implementation-defined conversion */
        c->typmod = typmod <= INT32_MAX ? (int32_t)typmod : -(int32_t)(UINT32_MAX - typmod) - 1;
        type = oidmap_get(&d->types, c->type_oid);
        if (type == NULL)
            type = fwd_pg_type_name(c->type_oid);
        c->type = type != NULL ? type : "";
        size += strlen(c->name) + 1 + strlen(c->type) + 1;
    }
    if (rd_end(r) != 0)
        return XDCR_EPARSE;

    /* One allocation: the entry, its column array, then every string. */
    cols_off = sizeof(fwd_pgo_rel_t);
    str_off = cols_off + (size_t)natts * sizeof(xdcr_column_t);
    rel = malloc(str_off + size);
    if (rel == NULL || !oidmap_reserve(&d->rels)) {
        free(rel);
        return xdcr_error_set(r->err, XDCR_ENOMEM, true, "out of memory decoding pgoutput");
    }
    cols = (xdcr_column_t *)(void *)((char *)rel + cols_off);
    s = (char *)rel + str_off;
#define COPY_STR(dst, src)                                                                         \
    do {                                                                                           \
        size_t n_ = strlen(src) + 1;                                                               \
        memcpy(s, (src), n_);                                                                      \
        (dst) = s;                                                                                 \
        s += n_;                                                                                   \
    } while (0)
    COPY_STR(rel->rel.schema, nspname);
    COPY_STR(rel->rel.table, relname);
    for (uint32_t i = 0; i < natts; i++) {
        const pending_col_t *c = &d->cols[i];

        COPY_STR(cols[i].name, c->name);
        COPY_STR(cols[i].type, c->type);
        cols[i].type_oid = c->type_oid;
        cols[i].typmod = c->typmod;
        cols[i].key = (c->flags & 1) != 0;
    }
#undef COPY_STR
    rel->relid = relid;
    rel->key = d->next_key++;
    if (d->next_key == 0)
        d->next_key = 1;
    rel->replident = (char)replident;
    rel->rel.ncols = natts;
    rel->rel.cols = natts ? cols : NULL;
    old = oidmap_put(&d->rels, relid, rel);
    free(old);
    m->relation.rel = rel;
    return 0;
}

static int dec_insert(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    const fwd_pgo_rel_t *rel;
    size_t at;
    uint8_t tag;
    int rc;

    if (need_txn(d, r) != 0 || rd_relid(d, r, &rel) != 0)
        return XDCR_EPARSE;
    rc = reserve_vals(d, rel->rel.ncols, r->err);
    if (rc != 0)
        return rc;
    at = r->pos;
    if (rd_u8(r, "tuple tag", &tag) != 0)
        return XDCR_EPARSE;
    if (tag != 'N')
        return rd_fail(r, at, "expected new tuple 'N', got 0x%02x", tag);
    if (rd_tuple(r, rel, d->new_vals) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    m->change.rel = rel;
    m->change.old_kind = 0;
    m->change.old_vals = NULL;
    m->change.new_vals = d->new_vals;
    return 0;
}

static int dec_update(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    const fwd_pgo_rel_t *rel;
    size_t at;
    uint8_t tag;
    int rc;

    if (need_txn(d, r) != 0 || rd_relid(d, r, &rel) != 0)
        return XDCR_EPARSE;
    rc = reserve_vals(d, rel->rel.ncols, r->err);
    if (rc != 0)
        return rc;
    m->change.rel = rel;
    m->change.old_kind = 0;
    m->change.old_vals = NULL;
    at = r->pos;
    if (rd_u8(r, "tuple tag", &tag) != 0)
        return XDCR_EPARSE;
    if (tag == 'K' || tag == 'O') {
        if (rd_tuple(r, rel, d->old_vals) != 0)
            return XDCR_EPARSE;
        m->change.old_kind = (char)tag;
        m->change.old_vals = d->old_vals;
        at = r->pos;
        if (rd_u8(r, "tuple tag", &tag) != 0)
            return XDCR_EPARSE;
    }
    if (tag != 'N')
        return rd_fail(r, at, "expected tuple tag 'K', 'O' or 'N', got 0x%02x", tag);
    if (rd_tuple(r, rel, d->new_vals) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    m->change.new_vals = d->new_vals;
    return 0;
}

static int dec_delete(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    const fwd_pgo_rel_t *rel;
    size_t at;
    uint8_t tag;
    int rc;

    if (need_txn(d, r) != 0 || rd_relid(d, r, &rel) != 0)
        return XDCR_EPARSE;
    rc = reserve_vals(d, rel->rel.ncols, r->err);
    if (rc != 0)
        return rc;
    at = r->pos;
    if (rd_u8(r, "tuple tag", &tag) != 0)
        return XDCR_EPARSE;
    if (tag != 'K' && tag != 'O')
        return rd_fail(r, at, "expected old tuple tag 'K' or 'O', got 0x%02x", tag);
    if (rd_tuple(r, rel, d->old_vals) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    m->change.rel = rel;
    m->change.old_kind = (char)tag;
    m->change.old_vals = d->old_vals;
    m->change.new_vals = NULL;
    return 0;
}

static int dec_truncate(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    uint32_t nrels;
    uint8_t options;
    size_t at;
    int rc;

    if (need_txn(d, r) != 0)
        return XDCR_EPARSE;
    at = r->pos;
    if (rd_count32(r, "relation count", &nrels) != 0 || rd_u8(r, "options", &options) != 0)
        return XDCR_EPARSE;
    /* Check the length before allocating for a count that came off the wire. */
    if ((r->len - r->pos) / 4 < nrels)
        return rd_fail(r, at, "relation count %u does not fit in the %zu bytes left", nrels,
                       r->len - r->pos);
    rc = grow((void **)&d->trunc_rels, &d->trunc_cap, nrels ? nrels : 1, sizeof(*d->trunc_rels),
              r->err);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < nrels; i++)
        if (rd_relid(d, r, &d->trunc_rels[i]) != 0)
            return XDCR_EPARSE;
    if (rd_end(r) != 0)
        return XDCR_EPARSE;
    m->truncate.nrels = nrels;
    m->truncate.rels = d->trunc_rels;
    m->truncate.cascade = (options & 1) != 0;
    m->truncate.restart_identity = (options & 2) != 0;
    return 0;
}

static int dec_message(fwd_pgo_t *d, rd_t *r, fwd_pgo_msg_t *m)
{
    uint8_t flags;

    if (rd_u8(r, "flags", &flags) != 0)
        return XDCR_EPARSE;
    m->message.transactional = (flags & 1) != 0;
    if (m->message.transactional && need_txn(d, r) != 0)
        return XDCR_EPARSE;
    if (rd_u64(r, "message LSN", &m->message.lsn) != 0 ||
        rd_str(r, "prefix", &m->message.prefix) != 0 ||
        rd_count32(r, "content length", &m->message.content_len) != 0 ||
        rd_bytes(r, m->message.content_len, "content", &m->message.content) != 0 || rd_end(r) != 0)
        return XDCR_EPARSE;
    return 0;
}

/* Message types of features we never request: named, so the error says what happened. */
static const char *unsupported_name(uint8_t type)
{
    switch (type) {
    case 'S':
        return "Stream Start";
    case 'E':
        return "Stream Stop";
    case 'c':
        return "Stream Commit";
    case 'A':
        return "Stream Abort";
    case 'b':
        return "Begin Prepare";
    case 'P':
        return "Prepare";
    case 'K':
        return "Commit Prepared";
    case 'r':
        return "Rollback Prepared";
    case 'p':
        return "Stream Prepare";
    default:
        return NULL;
    }
}

int fwd_pgo_decode(fwd_pgo_t *d, const char *buf, size_t len, fwd_pgo_msg_t *out, xdcr_error_t *err)
{
    char what[32];
    rd_t r = {.p = (const unsigned char *)buf, .len = len, .pos = 1, .err = err};
    const char *unsupported;
    uint8_t type;

    if (len == 0)
        return xdcr_error_set(err, XDCR_EPARSE, false, "empty pgoutput message");
    type = r.p[0];
    unsupported = unsupported_name(type);
    if (unsupported != NULL)
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "unexpected pgoutput %s message at offset 0: streaming and "
                              "two-phase decoding were not requested",
                              unsupported);
    snprintf(what, sizeof(what), "pgoutput %s", fwd_pgo_type_name(type));
    r.what = what;
    memset(out, 0, sizeof(*out));
    out->type = (fwd_pgo_type_t)type;
    switch (type) {
    case FWD_PGO_BEGIN:
        return dec_begin(d, &r, out);
    case FWD_PGO_COMMIT:
        return dec_commit(d, &r, out);
    case FWD_PGO_ORIGIN:
        return dec_origin(d, &r, out);
    case FWD_PGO_RELATION:
        return dec_relation(d, &r, out);
    case FWD_PGO_TYPE:
        return dec_type(d, &r, out);
    case FWD_PGO_INSERT:
        return dec_insert(d, &r, out);
    case FWD_PGO_UPDATE:
        return dec_update(d, &r, out);
    case FWD_PGO_DELETE:
        return dec_delete(d, &r, out);
    case FWD_PGO_TRUNCATE:
        return dec_truncate(d, &r, out);
    case FWD_PGO_MESSAGE:
        return dec_message(d, &r, out);
    default:
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "unknown pgoutput message type 0x%02x at offset 0", type);
    }
}

/* ---- CopyData ----------------------------------------------------------------------------- */

int fwd_pgo_parse_copydata(const char *buf, size_t len, fwd_pgo_copydata_t *out, xdcr_error_t *err)
{
    rd_t r = {.p = (const unsigned char *)buf, .len = len, .pos = 1, .err = err};
    uint8_t reply;

    if (len == 0)
        return xdcr_error_set(err, XDCR_EPARSE, false, "empty replication CopyData message");
    memset(out, 0, sizeof(*out));
    switch (r.p[0]) {
    case 'w':
        r.what = "XLogData";
        out->type = FWD_PGO_XLOGDATA;
        if (rd_u64(&r, "WAL start", &out->wal_start) != 0 ||
            rd_u64(&r, "WAL end", &out->wal_end) != 0 ||
            rd_time(&r, "send time", &out->send_time_us) != 0)
            return XDCR_EPARSE;
        out->data = buf + r.pos;
        out->len = len - r.pos;
        return 0;
    case 'k':
        r.what = "primary keepalive";
        out->type = FWD_PGO_KEEPALIVE;
        if (rd_u64(&r, "WAL end", &out->wal_end) != 0 ||
            rd_time(&r, "send time", &out->send_time_us) != 0 ||
            rd_u8(&r, "reply flag", &reply) != 0 || rd_end(&r) != 0)
            return XDCR_EPARSE;
        out->reply_requested = reply != 0;
        return 0;
    default:
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "unknown replication CopyData message type 0x%02x at offset 0",
                              (unsigned char)buf[0]);
    }
}

static char *put_u64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (char)(unsigned char)(v >> (8 * i));
    return p;
}

size_t fwd_pgo_write_status(char buf[FWD_PGO_STATUS_LEN], xdcr_lsn_t written, xdcr_lsn_t flushed,
                            xdcr_lsn_t applied, int64_t now_unix_us, bool reply_requested)
{
    char *p = buf;

    *p++ = 'r';
    p = put_u64(p, written);
    p = put_u64(p, flushed);
    p = put_u64(p, applied);
    /* Unsigned arithmetic: wraps like two's complement instead of overflowing. */
    p = put_u64(p, (uint64_t)now_unix_us - (uint64_t)FWD_PG_EPOCH_UNIX_US);
    *p++ = reply_requested ? 1 : 0;
    return (size_t)(p - buf);
}
