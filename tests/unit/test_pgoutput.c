/*
 * test_pgoutput.c - the pgoutput decoder on a stream captured from PostgreSQL 15 and on
 * hand-built messages: every message type, the relation and type caches, tuple value kinds,
 * transaction framing, CopyData wrappers, and malformed input of every kind.
 */
#include "pgoutput.h"
#include "xdcr_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a stream captured from PostgreSQL 15 -------------------------------------------------- */

/*
 * The data column of pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '1',
 * 'publication_names', 'p', 'messages', 'true'), one message per row, after this workload:
 *   create type mood as enum (...); create schema "Order"; create type "Order"."Weird Type" ...;
 *   t1 (id int primary key, name text, big text (storage external), m mood,
 *       w "Order"."Weird Type", arr int[], b bytea, c char(3), n numeric);
 *   t2 (a int, b text) replica identity full; t3 (k bigint primary key);
 *   inserts, updates (unchanged TOAST, key change, full identity), deletes, a transactional
 *   and a non-transactional logical message, truncates, ALTER TABLE t2 ADD COLUMN c int, and
 *   a transaction under replication origin "remote1" (0/ABCDEF, 2024-01-02 03:04:05.678901Z).
 * proto_version 2 gave identical bytes. "(78*10000)" stands for 10000 bytes 0x78 ('x').
 */
static const char *const pg15_stream[] = {
    /* 0/198C8E8 xid 752 */
    "42000000000198ca18000303d47ba1bd17000002f0",
    /* 0/198C8E8 xid 752 */
    "59000040217075626c6963006d6f6f6400",
    /* 0/198C8E8 xid 752 */
    "59000040274f72646572005765697264205479706500",
    /* 0/198C8E8 xid 752 */
    ("52000040297075626c6963007431006400090169640000000017ffffffff006e616d650000000019"
     "ffffffff006269670000000019ffffffff006d0000004021ffffffff00770000004027ffffffff00"
     "61727200000003efffffffff00620000000011ffffffff0063000000041200000007006e00000006"
     "a4ffffffff"),
    /* 0/198C8E8 xid 752 */
    ("49000040294e000974000000013174000000036f6e657400002710(78*10000)7400000005686170"
     "7079740000000178740000000a7b312c4e554c4c2c337d74000000065c7830306666740000000361"
     "622074000000034e614e"),
    /* 0/198CA48 xid 752 */
    "4300000000000198ca18000000000198ca48000303d47ba1bd17",
    /* 0/198CA48 xid 753 */
    "42000000000198cad0000303d47ba1be9c000002f1",
    /* 0/198CA48 xid 753 */
    "49000040294e00097400000001326e6e6e6e6e6e6e6e",
    /* 0/198CB00 xid 753 */
    "4300000000000198cad0000000000198cb00000303d47ba1be9c",
    /* 0/198CB38 xid 754 */
    "42000000000198cbd0000303d47ba1c088000002f2",
    /* 0/198CB38 xid 754 */
    ("55000040294e00097400000001317400000003756e6f757400000005686170707974000000017874"
     "0000000a7b312c4e554c4c2c337d74000000065c7830306666740000000361622074000000034e61"
     "4e"),
    /* 0/198CC00 xid 754 */
    "4300000000000198cbd0000000000198cc00000303d47ba1c088",
    /* 0/198CC00 xid 755 */
    "42000000000198cca0000303d47ba1c1a6000002f3",
    /* 0/198CC00 xid 755 */
    "55000040294b00097400000001326e6e6e6e6e6e6e6e4e0009740000000231306e6e6e6e6e6e6e6e",
    /* 0/198CCD0 xid 755 */
    "4300000000000198cca0000000000198ccd0000303d47ba1c1a6",
    /* 0/198CCD0 xid 756 */
    "42000000000198cd18000303d47ba1c290000002f4",
    /* 0/198CCD0 xid 756 */
    "44000040294b0009740000000231306e6e6e6e6e6e6e6e",
    /* 0/198CD48 xid 756 */
    "4300000000000198cd18000000000198cd48000303d47ba1c290",
    /* 0/198CD48 xid 757 */
    "42000000000198cdc0000303d47ba1c3ee000002f5",
    /* 0/198CD48 xid 757 */
    "52000040307075626c69630074320066000201610000000017ffffffff01620000000019ffffffff",
    /* 0/198CD48 xid 757 */
    "49000040304e0002740000000131740000000161",
    /* 0/198CD88 xid 757 */
    "49000040304e00026e6e",
    /* 0/198CDF0 xid 757 */
    "4300000000000198cdc0000000000198cdf0000303d47ba1c3ee",
    /* 0/198CDF0 xid 758 */
    "42000000000198ce48000303d47ba1c4fe000002f6",
    /* 0/198CDF0 xid 758 */
    "55000040304f00027400000001317400000001614e0002740000000131740000000162",
    /* 0/198CE78 xid 758 */
    "4300000000000198ce48000000000198ce78000303d47ba1c4fe",
    /* 0/198CE78 xid 759 */
    "42000000000198cec0000303d47ba1c5e1000002f7",
    /* 0/198CE78 xid 759 */
    "44000040304f0002740000000131740000000162",
    /* 0/198CEF0 xid 759 */
    "4300000000000198cec0000000000198cef0000303d47ba1c5e1",
    /* 0/198CEF0 xid 760 */
    "42000000000198d010000303d47ba1c8d8000002f8",
    /* 0/198CEF0 xid 760 */
    "52000040357075626c696300743300640001016b0000000014ffffffff",
    /* 0/198CEF0 xid 760 */
    "49000040354e0001740000000137",
    /* 0/198D010 xid 760 */
    "4d01000000000198d010706678000000000568656c6c6f",
    /* 0/198D040 xid 760 */
    "4300000000000198d010000000000198d040000303d47ba1c8d8",
    /* 0/198D080 xid 0 */
    "4d00000000000198d0806e6f6e747800000000020001",
    /* 0/198D618 xid 761 */
    "42000000000198d648000303d47ba1cc63000002f9",
    /* 0/198D618 xid 761 */
    "52000040357075626c696300743300640001016b0000000014ffffffff",
    /* 0/198D618 xid 761 */
    "54000000010000004035",
    /* 0/198D718 xid 761 */
    "4300000000000198d648000000000198d718000303d47ba1cc63",
    /* 0/198E4E0 xid 762 */
    "42000000000198e510000303d47ba1d2b6000002fa",
    /* 0/198E4E0 xid 762 */
    "52000040307075626c69630074320066000201610000000017ffffffff01620000000019ffffffff",
    /* 0/198E4E0 xid 762 */
    "52000040357075626c696300743300640001016b0000000014ffffffff",
    /* 0/198E4E0 xid 762 */
    "5400000002030000403000004035",
    /* 0/198E6B8 xid 762 */
    "4300000000000198e510000000000198e6b8000303d47ba1d2b6",
    /* 0/198EA58 xid 764 */
    "42000000000198eaa0000303d47ba1d6cc000002fc",
    /* 0/198EA58 xid 764 */
    ("52000040307075626c69630074320066000301610000000017ffffffff01620000000019ffffffff"
     "01630000000017ffffffff"),
    /* 0/198EA58 xid 764 */
    "49000040304e0003740000000135740000000165740000000136",
    /* 0/198EAD0 xid 764 */
    "4300000000000198eaa0000000000198ead0000303d47ba1d6cc",
    /* 0/198ED30 xid 766 */
    "42000000000198ee180002b0ec85204f35000002fe",
    /* 0/198ED30 xid 766 */
    "4f0000000000abcdef72656d6f74653100",
    /* 0/198ED30 xid 766 */
    "52000040357075626c696300743300640001016b0000000014ffffffff",
    /* 0/198ED30 xid 766 */
    "49000040354e000174000000023939",
    /* 0/198EE60 xid 766 */
    "4300000000000198ee18000000000198ee600002b0ec85204f35",
};

#define NSTREAM (sizeof(pg15_stream) / sizeof(pg15_stream[0]))

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes_t;

static void b_put(bytes_t *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b->p);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void b_u8(bytes_t *b, unsigned v)
{
    unsigned char c = (unsigned char)v;

    b_put(b, &c, 1);
}

static void b_u16(bytes_t *b, unsigned v)
{
    b_u8(b, v >> 8 & 0xff);
    b_u8(b, v & 0xff);
}

static void b_u32(bytes_t *b, uint32_t v)
{
    b_u16(b, v >> 16);
    b_u16(b, v & 0xffff);
}

static void b_u64(bytes_t *b, uint64_t v)
{
    b_u32(b, (uint32_t)(v >> 32));
    b_u32(b, (uint32_t)v);
}

static void b_str(bytes_t *b, const char *s)
{
    b_put(b, s, strlen(s) + 1);
}

static void b_text(bytes_t *b, const char *s)
{
    b_u8(b, 't');
    b_u32(b, (uint32_t)strlen(s));
    b_put(b, s, strlen(s));
}

static void b_free(bytes_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Decode hex with "(hh*count)" runs. */
static bytes_t from_hex(const char *h)
{
    bytes_t b = {0};

    while (*h != '\0') {
        unsigned v;
        int used;

        if (*h == '(') {
            unsigned count;

            CU_ASSERT_FATAL(sscanf(h, "(%2x*%u)%n", &v, &count, &used) == 2);
            for (unsigned i = 0; i < count; i++)
                b_u8(&b, v);
            h += used;
            continue;
        }
        CU_ASSERT_FATAL(sscanf(h, "%2x", &v) == 1);
        b_u8(&b, v);
        h += 2;
    }
    return b;
}

/* Decode exactly the bytes of b from a heap copy of that size, so ASan sees any overread. */
static int decode(fwd_pgo_t *d, const bytes_t *b, size_t len, fwd_pgo_msg_t *m, xdcr_error_t *err)
{
    char *copy = malloc(len ? len : 1);
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    if (len > 0)
        memcpy(copy, b->p, len);
    rc = fwd_pgo_decode(d, copy, len, m, err);
    free(copy);
    return rc;
}

static void decode_ok(fwd_pgo_t *d, const bytes_t *b, fwd_pgo_msg_t *m)
{
    xdcr_error_t err = {0};
    int rc = fwd_pgo_decode(d, (const char *)b->p, b->n, m, &err);

    if (rc != 0)
        fprintf(stderr, "\nunexpected error: %s\n", err.message);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void decode_fails(fwd_pgo_t *d, const bytes_t *b, const char *needle)
{
    xdcr_error_t err = {0};
    fwd_pgo_msg_t m;

    CU_ASSERT_EQUAL(decode(d, b, b->n, &m, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(err.code, XDCR_EPARSE);
    CU_ASSERT_FALSE(err.retriable);
    if (needle != NULL && strstr(err.message, needle) == NULL) {
        fprintf(stderr, "\nerror \"%s\" lacks \"%s\"\n", err.message, needle);
        CU_FAIL("error message lacks the expected text");
    }
}

static bool val_is(const xdcr_value_t *v, const char *text)
{
    return v->kind == XDCR_VAL_TEXT && v->len == strlen(text) && memcmp(v->data, text, v->len) == 0;
}

/* Message builders. */
static bytes_t m_begin(xdcr_lsn_t final_lsn, int64_t pg_time, uint32_t xid)
{
    bytes_t b = {0};

    b_u8(&b, 'B');
    b_u64(&b, final_lsn);
    b_u64(&b, (uint64_t)pg_time);
    b_u32(&b, xid);
    return b;
}

static bytes_t m_commit(xdcr_lsn_t commit_lsn, xdcr_lsn_t end_lsn, int64_t pg_time)
{
    bytes_t b = {0};

    b_u8(&b, 'C');
    b_u8(&b, 0);
    b_u64(&b, commit_lsn);
    b_u64(&b, end_lsn);
    b_u64(&b, (uint64_t)pg_time);
    return b;
}

typedef struct col_spec {
    unsigned flags;
    const char *name;
    uint32_t type;
    int32_t typmod;
} col_spec_t;

static bytes_t m_relation(uint32_t relid, const char *ns, const char *name, char replident,
                          int ncols, const col_spec_t *cols)
{
    bytes_t b = {0};

    b_u8(&b, 'R');
    b_u32(&b, relid);
    b_str(&b, ns);
    b_str(&b, name);
    b_u8(&b, (unsigned char)replident);
    b_u16(&b, (unsigned)ncols);
    for (int i = 0; i < ncols; i++) {
        b_u8(&b, cols[i].flags);
        b_str(&b, cols[i].name);
        b_u32(&b, cols[i].type);
        b_u32(&b, (uint32_t)cols[i].typmod);
    }
    return b;
}

static bytes_t m_type(uint32_t oid, const char *ns, const char *name)
{
    bytes_t b = {0};

    b_u8(&b, 'Y');
    b_u32(&b, oid);
    b_str(&b, ns);
    b_str(&b, name);
    return b;
}

/* Relation 1000 "public"."acct" (id bigint key, note text, blob bytea) in a decoder. */
static const col_spec_t acct_cols[] = {
    {1, "id", 20, -1},
    {0, "note", 25, -1},
    {0, "blob", 17, -1},
};

static fwd_pgo_t *decoder_with_acct_in_txn(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m;
    bytes_t b;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    b = m_begin(0x100, 0, 7);
    decode_ok(d, &b, &m);
    b_free(&b);
    b = m_relation(1000, "public", "acct", 'd', 3, acct_cols);
    decode_ok(d, &b, &m);
    b_free(&b);
    return d;
}

/* ---- the captured stream ------------------------------------------------------------------- */

static void test_pg15_stream_decodes_every_message_with_exact_values(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m[NSTREAM];
    bytes_t b[NSTREAM];
    const xdcr_column_t *c;
    uint32_t key_t2 = 0, key_t2_again = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    /* Value pointers go into the input buffers, so keep every buffer until the checks. */
    for (size_t i = 0; i < NSTREAM; i++) {
        b[i] = from_hex(pg15_stream[i]);
        decode_ok(d, &b[i], &m[i]);
        /* relation pointers and value arrays are checked right away: they are short-lived */
        if (i == 3) {
            CU_ASSERT_EQUAL(m[i].type, FWD_PGO_RELATION);
            CU_ASSERT_EQUAL(m[i].relation.rel->relid, 16425);
            CU_ASSERT_STRING_EQUAL(m[i].relation.rel->rel.schema, "public");
            CU_ASSERT_STRING_EQUAL(m[i].relation.rel->rel.table, "t1");
            CU_ASSERT_EQUAL(m[i].relation.rel->replident, 'd');
            CU_ASSERT_EQUAL_FATAL(m[i].relation.rel->rel.ncols, 9);
            c = m[i].relation.rel->rel.cols;
            CU_ASSERT_STRING_EQUAL(c[0].name, "id");
            CU_ASSERT_STRING_EQUAL(c[0].type, "integer");
            CU_ASSERT_EQUAL(c[0].type_oid, 23);
            CU_ASSERT_EQUAL(c[0].typmod, -1);
            CU_ASSERT_TRUE(c[0].key);
            CU_ASSERT_FALSE(c[1].key);
            CU_ASSERT_STRING_EQUAL(c[1].type, "text");
            CU_ASSERT_STRING_EQUAL(c[3].type, "public.mood");
            CU_ASSERT_STRING_EQUAL(c[4].type, "\"Order\".\"Weird Type\"");
            CU_ASSERT_STRING_EQUAL(c[5].type, "integer[]");
            CU_ASSERT_STRING_EQUAL(c[6].type, "bytea");
            CU_ASSERT_STRING_EQUAL(c[7].name, "c");
            CU_ASSERT_STRING_EQUAL(c[7].type, "bpchar");
            CU_ASSERT_EQUAL(c[7].typmod, 7);
            CU_ASSERT_STRING_EQUAL(c[8].type, "numeric");
        }
        if (i == 4) {
            const xdcr_value_t *v = m[i].change.new_vals;

            CU_ASSERT_EQUAL(m[i].type, FWD_PGO_INSERT);
            CU_ASSERT_PTR_NULL(m[i].change.old_vals);
            CU_ASSERT_TRUE(val_is(&v[0], "1"));
            CU_ASSERT_TRUE(val_is(&v[1], "one"));
            CU_ASSERT_EQUAL(v[2].kind, XDCR_VAL_TEXT);
            CU_ASSERT_EQUAL(v[2].len, 10000);
            CU_ASSERT_TRUE(val_is(&v[3], "happy"));
            CU_ASSERT_TRUE(val_is(&v[4], "x"));
            CU_ASSERT_TRUE(val_is(&v[5], "{1,NULL,3}"));
            CU_ASSERT_TRUE(val_is(&v[6], "\\x00ff"));
            CU_ASSERT_TRUE(val_is(&v[7], "ab "));
            CU_ASSERT_TRUE(val_is(&v[8], "NaN"));
        }
        if (i == 7) {
            CU_ASSERT_EQUAL(m[i].change.new_vals[1].kind, XDCR_VAL_NULL);
            CU_ASSERT_EQUAL(m[i].change.new_vals[8].kind, XDCR_VAL_NULL);
        }
        if (i == 10) { /* update name where id = 1: big is an unchanged TOAST value */
            const xdcr_value_t *v = m[i].change.new_vals;

            CU_ASSERT_EQUAL(m[i].type, FWD_PGO_UPDATE);
            CU_ASSERT_EQUAL(m[i].change.old_kind, 0);
            CU_ASSERT_PTR_NULL(m[i].change.old_vals);
            CU_ASSERT_TRUE(val_is(&v[1], "uno"));
            CU_ASSERT_EQUAL(v[2].kind, XDCR_VAL_UNCHANGED);
            CU_ASSERT_TRUE(val_is(&v[3], "happy"));
        }
        if (i == 13) { /* update set id = 10 where id = 2: old key */
            const xdcr_value_t *o = m[i].change.old_vals;

            CU_ASSERT_EQUAL(m[i].change.old_kind, 'K');
            CU_ASSERT_TRUE(val_is(&o[0], "2"));
            for (int k = 1; k < 9; k++)
                CU_ASSERT_EQUAL(o[k].kind, XDCR_VAL_NULL);
            CU_ASSERT_TRUE(val_is(&m[i].change.new_vals[0], "10"));
        }
        if (i == 16) {
            CU_ASSERT_EQUAL(m[i].type, FWD_PGO_DELETE);
            CU_ASSERT_EQUAL(m[i].change.old_kind, 'K');
            CU_ASSERT_TRUE(val_is(&m[i].change.old_vals[0], "10"));
            CU_ASSERT_PTR_NULL(m[i].change.new_vals);
        }
        if (i == 19) {
            CU_ASSERT_EQUAL(m[i].relation.rel->replident, 'f');
            CU_ASSERT_TRUE(m[i].relation.rel->rel.cols[0].key); /* FULL: every column */
            key_t2 = m[i].relation.rel->key;
        }
        if (i == 24) { /* replica identity full: the whole old row */
            CU_ASSERT_EQUAL(m[i].change.old_kind, 'O');
            CU_ASSERT_TRUE(val_is(&m[i].change.old_vals[0], "1"));
            CU_ASSERT_TRUE(val_is(&m[i].change.old_vals[1], "a"));
            CU_ASSERT_TRUE(val_is(&m[i].change.new_vals[1], "b"));
        }
        if (i == 27) {
            CU_ASSERT_EQUAL(m[i].change.old_kind, 'O');
            CU_ASSERT_TRUE(val_is(&m[i].change.old_vals[1], "b"));
        }
        if (i == 37) {
            CU_ASSERT_EQUAL(m[i].type, FWD_PGO_TRUNCATE);
            CU_ASSERT_EQUAL_FATAL(m[i].truncate.nrels, 1);
            CU_ASSERT_STRING_EQUAL(m[i].truncate.rels[0]->rel.table, "t3");
            CU_ASSERT_FALSE(m[i].truncate.cascade);
            CU_ASSERT_FALSE(m[i].truncate.restart_identity);
        }
        if (i == 42) {
            CU_ASSERT_EQUAL_FATAL(m[i].truncate.nrels, 2);
            CU_ASSERT_STRING_EQUAL(m[i].truncate.rels[0]->rel.table, "t2");
            CU_ASSERT_STRING_EQUAL(m[i].truncate.rels[1]->rel.table, "t3");
            CU_ASSERT_TRUE(m[i].truncate.cascade);
            CU_ASSERT_TRUE(m[i].truncate.restart_identity);
        }
        if (i == 40) /* t2 sent again, same shape: still a new key */
            key_t2_again = m[i].relation.rel->key;
        if (i == 45) { /* t2 after ALTER TABLE ADD COLUMN */
            CU_ASSERT_EQUAL(m[i].relation.rel->rel.ncols, 3);
            CU_ASSERT_TRUE(key_t2 < key_t2_again);
            CU_ASSERT_TRUE(key_t2_again < m[i].relation.rel->key);
        }
        if (i == 46)
            CU_ASSERT_TRUE(val_is(&m[i].change.new_vals[2], "6"));
    }
    /* Messages whose fields point into the input only. */
    CU_ASSERT_EQUAL(m[0].type, FWD_PGO_BEGIN);
    CU_ASSERT_EQUAL(m[0].begin.final_lsn, 0x198CA18);
    CU_ASSERT_EQUAL(m[0].begin.xid, 752);
    CU_ASSERT_EQUAL(m[0].begin.commit_time_us, INT64_C(1795320872279319));
    CU_ASSERT_EQUAL(m[1].type, FWD_PGO_TYPE);
    CU_ASSERT_EQUAL(m[1].pgtype.oid, 16417);
    CU_ASSERT_STRING_EQUAL(m[1].pgtype.nspname, "public");
    CU_ASSERT_STRING_EQUAL(m[1].pgtype.name, "mood");
    CU_ASSERT_STRING_EQUAL(m[2].pgtype.name, "Weird Type");
    CU_ASSERT_EQUAL(m[5].type, FWD_PGO_COMMIT);
    CU_ASSERT_EQUAL(m[5].commit.flags, 0);
    CU_ASSERT_EQUAL(m[5].commit.commit_lsn, 0x198CA18);
    CU_ASSERT_EQUAL(m[5].commit.end_lsn, 0x198CA48);
    CU_ASSERT_EQUAL(m[5].commit.commit_time_us, m[0].begin.commit_time_us);
    CU_ASSERT_EQUAL(m[32].type, FWD_PGO_MESSAGE);
    CU_ASSERT_TRUE(m[32].message.transactional);
    CU_ASSERT_EQUAL(m[32].message.lsn, 0x198D010);
    CU_ASSERT_STRING_EQUAL(m[32].message.prefix, "pfx");
    CU_ASSERT_EQUAL(m[32].message.content_len, 5);
    CU_ASSERT_EQUAL(memcmp(m[32].message.content, "hello", 5), 0);
    CU_ASSERT_EQUAL(m[34].type, FWD_PGO_MESSAGE); /* outside any transaction */
    CU_ASSERT_FALSE(m[34].message.transactional);
    CU_ASSERT_STRING_EQUAL(m[34].message.prefix, "nontx");
    CU_ASSERT_EQUAL(m[34].message.content_len, 2);
    CU_ASSERT_EQUAL(memcmp(m[34].message.content, "\0\1", 2), 0);
    CU_ASSERT_EQUAL(m[48].begin.commit_time_us, INT64_C(1704164645678901));
    CU_ASSERT_EQUAL(m[49].type, FWD_PGO_ORIGIN);
    CU_ASSERT_EQUAL(m[49].origin.commit_lsn, 0xABCDEF);
    CU_ASSERT_STRING_EQUAL(m[49].origin.name, "remote1");
    CU_ASSERT_EQUAL(m[52].commit.end_lsn, 0x198EE60);
    CU_ASSERT_FALSE(fwd_pgo_in_txn(d));
    CU_ASSERT_EQUAL(fwd_pgo_nrelations(d), 3);
    for (size_t i = 0; i < NSTREAM; i++)
        b_free(&b[i]);
    fwd_pgo_free(d);
}

/* Set up a decoder by decoding msgs[0..upto) of a stream. */
static fwd_pgo_t *decoder_after(bytes_t *msgs, size_t upto)
{
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < upto; i++)
        decode_ok(d, &msgs[i], &m);
    return d;
}

static void test_every_truncation_of_every_pg15_message_is_eparse_and_changes_nothing(void)
{
    bytes_t b[NSTREAM];
    fwd_pgo_t *d;

    for (size_t i = 0; i < NSTREAM; i++)
        b[i] = from_hex(pg15_stream[i]);
    d = fwd_pgo_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (size_t i = 0; i < NSTREAM; i++) {
        fwd_pgo_msg_t m;

        for (size_t len = 0; len < b[i].n; len++) {
            xdcr_error_t err = {0};
            bool in_txn = fwd_pgo_in_txn(d);
            size_t nrels = fwd_pgo_nrelations(d);

            /* the long TOAST value: every 97th cut is plenty inside it */
            if (len > 64 && len + 64 < b[i].n && len % 97 != 0)
                continue;
            if (len == 0)
                continue; /* "empty pgoutput message", tested elsewhere */
            CU_ASSERT_EQUAL_FATAL(decode(d, &b[i], len, &m, &err), XDCR_EPARSE);
            CU_ASSERT_FATAL(strstr(err.message, "offset") != NULL);
            CU_ASSERT_EQUAL_FATAL(fwd_pgo_in_txn(d), in_txn);
            CU_ASSERT_EQUAL_FATAL(fwd_pgo_nrelations(d), nrels);
        }
        /* one extra byte is rejected too */
        {
            bytes_t longer = {0};
            xdcr_error_t err = {0};

            b_put(&longer, b[i].p, b[i].n);
            b_u8(&longer, 0);
            CU_ASSERT_EQUAL_FATAL(decode(d, &longer, longer.n, &m, &err), XDCR_EPARSE);
            b_free(&longer);
        }
        /* and the failures left the decoder able to take the real message */
        decode_ok(d, &b[i], &m);
    }
    fwd_pgo_free(d);
    for (size_t i = 0; i < NSTREAM; i++)
        b_free(&b[i]);
}

static void test_corrupting_any_byte_of_the_pg15_stream_never_crashes(void)
{
    static const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 'n', 'u', 't', 'b', 'K'};
    bytes_t b[NSTREAM];

    for (size_t i = 0; i < NSTREAM; i++)
        b[i] = from_hex(pg15_stream[i]);
    for (size_t i = 0; i < NSTREAM; i++) {
        if (b[i].n > 1000)
            continue; /* the TOAST insert: its value bytes are opaque anyway */
        for (size_t pos = 0; pos < b[i].n; pos++) {
            for (size_t v = 0; v < sizeof(values); v++) {
                fwd_pgo_t *d = decoder_after(b, i);
                unsigned char saved = b[i].p[pos];
                fwd_pgo_msg_t m;
                xdcr_error_t err = {0};
                int rc;

                b[i].p[pos] = values[v];
                rc = decode(d, &b[i], b[i].n, &m, &err);
                CU_ASSERT_FATAL(rc == 0 || rc == XDCR_EPARSE);
                b[i].p[pos] = saved;
                fwd_pgo_free(d);
            }
        }
    }
    for (size_t i = 0; i < NSTREAM; i++)
        b_free(&b[i]);
}

/* ---- Begin, Commit, Origin, framing -------------------------------------------------------- */

static void test_begin_and_commit_give_lsns_xid_and_unix_times(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t b = m_begin(0x16B374D848, 1000000, 4242);
    fwd_pgo_msg_t m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_BEGIN);
    CU_ASSERT_EQUAL(m.begin.final_lsn, 0x16B374D848);
    CU_ASSERT_EQUAL(m.begin.xid, 4242);
    CU_ASSERT_EQUAL(m.begin.commit_time_us, FWD_PG_EPOCH_UNIX_US + 1000000);
    CU_ASSERT_TRUE(fwd_pgo_in_txn(d));
    b_free(&b);
    b = m_commit(0x16B374D848, 0x16B374D878, -5);
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_COMMIT);
    CU_ASSERT_EQUAL(m.commit.commit_lsn, 0x16B374D848);
    CU_ASSERT_EQUAL(m.commit.end_lsn, 0x16B374D878);
    CU_ASSERT_EQUAL(m.commit.commit_time_us, FWD_PG_EPOCH_UNIX_US - 5);
    CU_ASSERT_FALSE(fwd_pgo_in_txn(d));
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_begin_rejects_a_time_beyond_the_unix_range(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t b = m_begin(1, INT64_MAX, 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_fails(d, &b, "commit timestamp out of range");
    CU_ASSERT_FALSE(fwd_pgo_in_txn(d));
    b_free(&b);
    b = m_begin(1, INT64_MIN, 1); /* -infinity in PostgreSQL terms still fits */
    fwd_pgo_msg_t m;
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.begin.commit_time_us, INT64_MIN + FWD_PG_EPOCH_UNIX_US);
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_transaction_framing_violations_are_eparse(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m;
    bytes_t begin = m_begin(0x200, 0, 1), commit = m_commit(0x200, 0x230, 0);
    bytes_t wrong = m_commit(0x1FF, 0x230, 0), backwards = m_commit(0x200, 0x200, 0);
    bytes_t ins = {0}, origin = {0}, trunc = {0}, txmsg = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    b_u8(&ins, 'I');
    b_u32(&ins, 1);
    b_u8(&ins, 'N');
    b_u16(&ins, 0);
    b_u8(&origin, 'O');
    b_u64(&origin, 1);
    b_str(&origin, "x");
    b_u8(&trunc, 'T');
    b_u32(&trunc, 0);
    b_u8(&trunc, 0);
    b_u8(&txmsg, 'M');
    b_u8(&txmsg, 1);
    b_u64(&txmsg, 5);
    b_str(&txmsg, "p");
    b_u32(&txmsg, 0);

    decode_fails(d, &commit, "outside of a transaction");
    decode_fails(d, &ins, "Insert message at offset 0: outside of a transaction");
    decode_fails(d, &origin, "outside of a transaction");
    decode_fails(d, &trunc, "outside of a transaction");
    decode_fails(d, &txmsg, "outside of a transaction");
    decode_ok(d, &begin, &m);
    decode_fails(d, &begin, "Begin without Commit");
    decode_fails(d, &wrong, "differs from the Begin message's final LSN 0/200");
    decode_fails(d, &backwards, "is not after the commit LSN");
    decode_ok(d, &origin, &m);
    decode_ok(d, &trunc, &m);
    CU_ASSERT_EQUAL(m.truncate.nrels, 0);
    decode_ok(d, &txmsg, &m);
    decode_ok(d, &commit, &m);
    fwd_pgo_reset(d);
    decode_ok(d, &begin, &m);
    fwd_pgo_reset(d);
    CU_ASSERT_FALSE(fwd_pgo_in_txn(d));
    b_free(&begin);
    b_free(&commit);
    b_free(&wrong);
    b_free(&backwards);
    b_free(&ins);
    b_free(&origin);
    b_free(&trunc);
    b_free(&txmsg);
    fwd_pgo_free(d);
}

static void test_origin_gives_lsn_and_name(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t b = {0};
    fwd_pgo_msg_t m;

    b_u8(&b, 'O');
    b_u64(&b, 0x1122334455667788);
    b_str(&b, "west");
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_ORIGIN);
    CU_ASSERT_EQUAL(m.origin.commit_lsn, 0x1122334455667788);
    CU_ASSERT_STRING_EQUAL(m.origin.name, "west");
    b_free(&b);
    fwd_pgo_free(d);
}

/* ---- Relation and Type --------------------------------------------------------------------- */

static void test_relation_resolves_builtin_custom_and_unknown_type_names(void)
{
    static const col_spec_t cols[] = {
        {1, "k", 1043, 14},          {0, "ts", 1184, -1},   {0, "e", 70000, -1},
        {0, "odd", 9999, -1},        {0, "tags", 1009, -1}, {0, "j", 3802, -1},
        {0, "Mixed Case", 2950, -1},
    };
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t t = m_type(70000, "shop", "status"), r = m_relation(5, "", "rel", 'i', 7, cols);
    fwd_pgo_msg_t m;
    const xdcr_column_t *c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_ok(d, &t, &m); /* Type and Relation need no transaction */
    CU_ASSERT_EQUAL(m.type, FWD_PGO_TYPE);
    decode_ok(d, &r, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_RELATION);
    CU_ASSERT_PTR_EQUAL(m.relation.rel, fwd_pgo_relation(d, 5));
    CU_ASSERT_STRING_EQUAL(m.relation.rel->rel.schema, "pg_catalog");
    CU_ASSERT_STRING_EQUAL(m.relation.rel->rel.table, "rel");
    CU_ASSERT_EQUAL(m.relation.rel->replident, 'i');
    c = m.relation.rel->rel.cols;
    CU_ASSERT_STRING_EQUAL(c[0].type, "character varying");
    CU_ASSERT_EQUAL(c[0].typmod, 14);
    CU_ASSERT_TRUE(c[0].key);
    CU_ASSERT_STRING_EQUAL(c[1].type, "timestamp with time zone");
    CU_ASSERT_STRING_EQUAL(c[2].type, "shop.status");
    CU_ASSERT_EQUAL(c[2].type_oid, 70000);
    CU_ASSERT_STRING_EQUAL(c[3].type, ""); /* neither built in nor announced */
    CU_ASSERT_STRING_EQUAL(c[4].type, "text[]");
    CU_ASSERT_STRING_EQUAL(c[5].type, "jsonb");
    CU_ASSERT_STRING_EQUAL(c[6].name, "Mixed Case");
    CU_ASSERT_STRING_EQUAL(c[6].type, "uuid");
    CU_ASSERT_PTR_NULL(fwd_pgo_relation(d, 6));
    b_free(&t);
    b_free(&r);
    fwd_pgo_free(d);
}

static void test_relation_for_a_known_relid_replaces_the_cached_one(void)
{
    static const col_spec_t two[] = {{1, "id", 20, -1}, {0, "note", 25, -1}};
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    const fwd_pgo_rel_t *before = fwd_pgo_relation(d, 1000);
    uint32_t key_before = before->key;
    bytes_t r = m_relation(1000, "public", "account", 'f', 2, two), ins3 = {0}, ins2 = {0};
    fwd_pgo_msg_t m;

    b_u8(&ins3, 'I');
    b_u32(&ins3, 1000);
    b_u8(&ins3, 'N');
    b_u16(&ins3, 3);
    b_text(&ins3, "1");
    b_text(&ins3, "a");
    b_u8(&ins3, 'n');
    b_u8(&ins2, 'I');
    b_u32(&ins2, 1000);
    b_u8(&ins2, 'N');
    b_u16(&ins2, 2);
    b_text(&ins2, "1");
    b_text(&ins2, "a");

    decode_ok(d, &ins3, &m);
    decode_fails(d, &ins2, "tuple has 2 columns but relation 1000 (public.acct) has 3");
    decode_ok(d, &r, &m);
    CU_ASSERT_EQUAL(fwd_pgo_nrelations(d), 1);
    CU_ASSERT_STRING_EQUAL(fwd_pgo_relation(d, 1000)->rel.table, "account");
    CU_ASSERT_EQUAL(fwd_pgo_relation(d, 1000)->rel.ncols, 2);
    CU_ASSERT_EQUAL(fwd_pgo_relation(d, 1000)->replident, 'f');
    CU_ASSERT_NOT_EQUAL(fwd_pgo_relation(d, 1000)->key, key_before);
    decode_fails(d, &ins3, "tuple has 3 columns but relation 1000 (public.account) has 2");
    decode_ok(d, &ins2, &m);
    CU_ASSERT_STRING_EQUAL(m.change.rel->rel.table, "account");
    b_free(&r);
    b_free(&ins3);
    b_free(&ins2);
    fwd_pgo_free(d);
}

static void test_type_for_a_known_oid_replaces_the_name_for_later_relations(void)
{
    static const col_spec_t cols[] = {{0, "s", 80000, -1}};
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t t1 = m_type(80000, "public", "state"), t2 = m_type(80000, "user", "State\"s");
    bytes_t r1 = m_relation(9, "public", "x", 'd', 1, cols),
            r2 = m_relation(10, "a", "y", 'd', 1, cols);
    fwd_pgo_msg_t m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_ok(d, &t1, &m);
    decode_ok(d, &r1, &m);
    decode_ok(d, &t2, &m);
    decode_ok(d, &r2, &m);
    CU_ASSERT_STRING_EQUAL(fwd_pgo_relation(d, 9)->rel.cols[0].type, "public.state");
    CU_ASSERT_STRING_EQUAL(fwd_pgo_relation(d, 10)->rel.cols[0].type, "\"user\".\"State\"\"s\"");
    b_free(&t1);
    b_free(&t2);
    b_free(&r1);
    b_free(&r2);
    fwd_pgo_free(d);
}

static void test_relation_with_no_columns_is_accepted(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t r = m_relation(3, "public", "empty", 'n', 0, NULL);
    fwd_pgo_msg_t m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_ok(d, &r, &m);
    CU_ASSERT_EQUAL(m.relation.rel->rel.ncols, 0);
    CU_ASSERT_PTR_NULL(m.relation.rel->rel.cols);
    b_free(&r);
    fwd_pgo_free(d);
}

static void test_relation_with_bad_replica_identity_or_negative_count_is_eparse(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t r = m_relation(3, "public", "t", 'x', 0, NULL), neg = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_fails(d, &r, "unknown replica identity setting 0x78");
    b_u8(&neg, 'R');
    b_u32(&neg, 3);
    b_str(&neg, "public");
    b_str(&neg, "t");
    b_u8(&neg, 'd');
    b_u16(&neg, 0xFFFF);
    decode_fails(d, &neg, "Relation message at offset 15: negative column count -1");
    CU_ASSERT_EQUAL(fwd_pgo_nrelations(d), 0);
    b_free(&r);
    b_free(&neg);
    fwd_pgo_free(d);
}

/* ---- Insert, Update, Delete ---------------------------------------------------------------- */

static void test_insert_gives_text_null_and_empty_values(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t b = {0};
    fwd_pgo_msg_t m;

    b_u8(&b, 'I');
    b_u32(&b, 1000);
    b_u8(&b, 'N');
    b_u16(&b, 3);
    b_text(&b, "42");
    b_text(&b, "");
    b_u8(&b, 'n');
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_INSERT);
    CU_ASSERT_EQUAL(m.change.rel->relid, 1000);
    CU_ASSERT_STRING_EQUAL(m.change.rel->rel.table, "acct");
    CU_ASSERT_EQUAL(m.change.old_kind, 0);
    CU_ASSERT_PTR_NULL(m.change.old_vals);
    CU_ASSERT_TRUE(val_is(&m.change.new_vals[0], "42"));
    CU_ASSERT_EQUAL(m.change.new_vals[1].kind, XDCR_VAL_TEXT);
    CU_ASSERT_EQUAL(m.change.new_vals[1].len, 0);
    CU_ASSERT_EQUAL(m.change.new_vals[2].kind, XDCR_VAL_NULL);
    /* zero copy: the value points into the input */
    CU_ASSERT_PTR_EQUAL(m.change.new_vals[0].data, (const char *)b.p + 13);
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_update_without_old_with_old_key_and_with_old_row(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    fwd_pgo_msg_t m;

    for (int variant = 0; variant < 3; variant++) {
        bytes_t b = {0};

        b_u8(&b, 'U');
        b_u32(&b, 1000);
        if (variant > 0) {
            b_u8(&b, variant == 1 ? 'K' : 'O');
            b_u16(&b, 3);
            b_text(&b, "1");
            if (variant == 1) {
                b_u8(&b, 'n');
                b_u8(&b, 'n');
            } else {
                b_text(&b, "old note");
                b_text(&b, "\\xdead");
            }
        }
        b_u8(&b, 'N');
        b_u16(&b, 3);
        b_text(&b, "2");
        b_text(&b, "new note");
        b_u8(&b, 'u');
        decode_ok(d, &b, &m);
        CU_ASSERT_EQUAL(m.type, FWD_PGO_UPDATE);
        CU_ASSERT_EQUAL(m.change.old_kind, variant == 0 ? 0 : variant == 1 ? 'K' : 'O');
        if (variant == 0) {
            CU_ASSERT_PTR_NULL(m.change.old_vals);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(m.change.old_vals);
            CU_ASSERT_TRUE(val_is(&m.change.old_vals[0], "1"));
            if (variant == 1) {
                CU_ASSERT_EQUAL(m.change.old_vals[1].kind, XDCR_VAL_NULL);
            } else {
                CU_ASSERT_TRUE(val_is(&m.change.old_vals[2], "\\xdead"));
            }
        }
        CU_ASSERT_TRUE(val_is(&m.change.new_vals[0], "2"));
        CU_ASSERT_TRUE(val_is(&m.change.new_vals[1], "new note"));
        CU_ASSERT_EQUAL(m.change.new_vals[2].kind, XDCR_VAL_UNCHANGED);
        b_free(&b);
    }
    fwd_pgo_free(d);
}

static void test_update_with_a_bad_tuple_tag_is_eparse(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t b = {0}, twice = {0};

    b_u8(&b, 'U');
    b_u32(&b, 1000);
    b_u8(&b, 'X');
    decode_fails(d, &b, "Update message at offset 5: expected tuple tag 'K', 'O' or 'N', got 0x58");
    /* two old tuples in a row */
    b_u8(&twice, 'U');
    b_u32(&twice, 1000);
    for (int i = 0; i < 2; i++) {
        b_u8(&twice, 'K');
        b_u16(&twice, 3);
        b_text(&twice, "1");
        b_u8(&twice, 'n');
        b_u8(&twice, 'n');
    }
    decode_fails(d, &twice, "expected tuple tag");
    b_free(&b);
    b_free(&twice);
    fwd_pgo_free(d);
}

static void test_delete_with_old_key_or_old_row_and_nothing_else(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    fwd_pgo_msg_t m;

    for (int variant = 0; variant < 3; variant++) {
        bytes_t b = {0};

        b_u8(&b, 'D');
        b_u32(&b, 1000);
        b_u8(&b, variant == 0 ? 'K' : variant == 1 ? 'O' : 'N');
        b_u16(&b, 3);
        b_text(&b, "9");
        b_u8(&b, 'n');
        b_u8(&b, 'n');
        if (variant == 2) {
            decode_fails(d, &b, "Delete message at offset 5: expected old tuple tag 'K' or 'O'");
        } else {
            decode_ok(d, &b, &m);
            CU_ASSERT_EQUAL(m.type, FWD_PGO_DELETE);
            CU_ASSERT_EQUAL(m.change.old_kind, variant == 0 ? 'K' : 'O');
            CU_ASSERT_TRUE(val_is(&m.change.old_vals[0], "9"));
            CU_ASSERT_PTR_NULL(m.change.new_vals);
        }
        b_free(&b);
    }
    fwd_pgo_free(d);
}

static void test_change_for_unknown_relid_is_eparse(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t b = {0};

    b_u8(&b, 'I');
    b_u32(&b, 1001);
    b_u8(&b, 'N');
    b_u16(&b, 0);
    decode_fails(d, &b, "Insert message at offset 1: unknown relation id 1001");
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_binary_tuple_value_is_eparse_naming_text_format(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t b = {0};

    b_u8(&b, 'I');
    b_u32(&b, 1000);
    b_u8(&b, 'N');
    b_u16(&b, 3);
    b_text(&b, "1");
    b_u8(&b, 'b');
    b_u32(&b, 1);
    b_u8(&b, 'x');
    b_u8(&b, 'n');
    decode_fails(d, &b,
                 "offset 14: column \"note\" has a binary value, but text format was "
                 "requested");
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_bad_tuple_contents_are_eparse(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    struct {
        const char *needle;
        int build;
    } cases[] = {
        {"unknown tuple value kind 0x3f for column \"id\"", 0},
        {"negative value length -1", 1},
        {"truncated value (needs 2147483647 bytes", 2},
        {"negative tuple column count -2", 3},
        {"tuple has 4 columns but relation 1000 (public.acct) has 3", 4},
        {"2 unexpected trailing bytes", 5},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bytes_t b = {0};

        b_u8(&b, 'I');
        b_u32(&b, 1000);
        b_u8(&b, 'N');
        switch (cases[i].build) {
        case 0:
            b_u16(&b, 3);
            b_u8(&b, '?');
            break;
        case 1:
            b_u16(&b, 3);
            b_u8(&b, 't');
            b_u32(&b, 0xFFFFFFFF);
            break;
        case 2:
            b_u16(&b, 3);
            b_u8(&b, 't');
            b_u32(&b, 0x7FFFFFFF);
            b_put(&b, "ab", 2);
            break;
        case 3:
            b_u16(&b, 0xFFFE);
            break;
        case 4:
            b_u16(&b, 4);
            break;
        case 5:
            b_u16(&b, 3);
            b_u8(&b, 'n');
            b_u8(&b, 'n');
            b_u8(&b, 'n');
            b_u16(&b, 0);
            break;
        }
        decode_fails(d, &b, cases[i].needle);
        b_free(&b);
    }
    fwd_pgo_free(d);
}

/* ---- Truncate and Message ------------------------------------------------------------------ */

static void test_truncate_gives_relations_and_every_option_combination(void)
{
    static const col_spec_t one[] = {{1, "id", 23, -1}};
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t r = m_relation(2000, "s", "other", 'd', 1, one);
    fwd_pgo_msg_t m;

    decode_ok(d, &r, &m);
    for (unsigned opts = 0; opts < 4; opts++) {
        bytes_t b = {0};

        b_u8(&b, 'T');
        b_u32(&b, 2);
        b_u8(&b, opts);
        b_u32(&b, 2000);
        b_u32(&b, 1000);
        decode_ok(d, &b, &m);
        CU_ASSERT_EQUAL(m.type, FWD_PGO_TRUNCATE);
        CU_ASSERT_EQUAL_FATAL(m.truncate.nrels, 2);
        CU_ASSERT_PTR_EQUAL(m.truncate.rels[0], fwd_pgo_relation(d, 2000));
        CU_ASSERT_PTR_EQUAL(m.truncate.rels[1], fwd_pgo_relation(d, 1000));
        CU_ASSERT_EQUAL(m.truncate.cascade, (opts & 1) != 0);
        CU_ASSERT_EQUAL(m.truncate.restart_identity, (opts & 2) != 0);
        b_free(&b);
    }
    b_free(&r);
    fwd_pgo_free(d);
}

static void test_truncate_with_unknown_relid_or_impossible_count_is_eparse(void)
{
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t unknown = {0}, huge = {0}, neg = {0};

    b_u8(&unknown, 'T');
    b_u32(&unknown, 2);
    b_u8(&unknown, 0);
    b_u32(&unknown, 1000);
    b_u32(&unknown, 77);
    decode_fails(d, &unknown, "Truncate message at offset 10: unknown relation id 77");
    b_u8(&huge, 'T');
    b_u32(&huge, 0x7FFFFFFF); /* must not allocate 8 GiB before noticing */
    b_u8(&huge, 0);
    b_u32(&huge, 1000);
    decode_fails(d, &huge, "relation count 2147483647 does not fit in the 4 bytes left");
    b_u8(&neg, 'T');
    b_u32(&neg, 0x80000000);
    b_u8(&neg, 0);
    decode_fails(d, &neg, "negative relation count -2147483648");
    b_free(&unknown);
    b_free(&huge);
    b_free(&neg);
    fwd_pgo_free(d);
}

static void test_message_gives_flags_lsn_prefix_and_binary_content(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t b = {0}, neg = {0};
    fwd_pgo_msg_t m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    b_u8(&b, 'M');
    b_u8(&b, 0);
    b_u64(&b, 0xABC);
    b_str(&b, "xdcr.skip");
    b_u32(&b, 3);
    b_put(&b, "a\0b", 3);
    decode_ok(d, &b, &m);
    CU_ASSERT_EQUAL(m.type, FWD_PGO_MESSAGE);
    CU_ASSERT_FALSE(m.message.transactional);
    CU_ASSERT_EQUAL(m.message.lsn, 0xABC);
    CU_ASSERT_STRING_EQUAL(m.message.prefix, "xdcr.skip");
    CU_ASSERT_EQUAL(m.message.content_len, 3);
    CU_ASSERT_EQUAL(memcmp(m.message.content, "a\0b", 3), 0);
    b_u8(&neg, 'M');
    b_u8(&neg, 0);
    b_u64(&neg, 0xABC);
    b_str(&neg, "p");
    b_u32(&neg, 0xFFFFFFF0);
    decode_fails(d, &neg, "Message message at offset 12: negative content length -16");
    b_free(&b);
    b_free(&neg);
    fwd_pgo_free(d);
}

/* ---- unknown and unsupported message types ------------------------------------------------- */

static void test_unknown_unsupported_and_empty_messages_are_eparse(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t b = {0};
    static const struct {
        unsigned char type;
        const char *needle;
    } cases[] = {
        {'S', "unexpected pgoutput Stream Start message"},
        {'E', "Stream Stop"},
        {'c', "Stream Commit"},
        {'A', "Stream Abort"},
        {'b', "Begin Prepare"},
        {'P', "Prepare"},
        {'K', "Commit Prepared"},
        {'r', "Rollback Prepared"},
        {'p', "Stream Prepare"},
        {'Z', "unknown pgoutput message type 0x5a at offset 0"},
        {0xFF, "unknown pgoutput message type 0xff"},
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    decode_fails(d, &b, "empty pgoutput message");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b.n = 0;
        b_u8(&b, cases[i].type);
        b_u32(&b, 0);
        decode_fails(d, &b, cases[i].needle);
    }
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_unterminated_string_is_eparse_naming_the_field(void)
{
    fwd_pgo_t *d = fwd_pgo_new();
    bytes_t b = {0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    b_u8(&b, 'Y');
    b_u32(&b, 1);
    b_str(&b, "ns");
    b_put(&b, "name", 4);
    decode_fails(d, &b, "malformed pgoutput Type message at offset 8: unterminated type name");
    b_free(&b);
    fwd_pgo_free(d);
}

static void test_reset_forgets_relations_types_and_transaction(void)
{
    static const col_spec_t cols[] = {{0, "s", 80000, -1}};
    fwd_pgo_t *d = decoder_with_acct_in_txn();
    bytes_t t = m_type(80000, "public", "state"), r = m_relation(9, "public", "x", 'd', 1, cols);
    fwd_pgo_msg_t m;

    decode_ok(d, &t, &m);
    fwd_pgo_reset(d);
    CU_ASSERT_EQUAL(fwd_pgo_nrelations(d), 0);
    CU_ASSERT_PTR_NULL(fwd_pgo_relation(d, 1000));
    CU_ASSERT_FALSE(fwd_pgo_in_txn(d));
    decode_ok(d, &r, &m);
    CU_ASSERT_STRING_EQUAL(m.relation.rel->rel.cols[0].type, "");
    b_free(&t);
    b_free(&r);
    fwd_pgo_free(d);
}

static void test_many_relations_stay_reachable(void)
{
    static const col_spec_t one[] = {{1, "id", 23, -1}};
    fwd_pgo_t *d = fwd_pgo_new();
    fwd_pgo_msg_t m;
    char name[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (uint32_t i = 0; i < 5000; i++) {
        bytes_t r;

        snprintf(name, sizeof(name), "t%u", i);
        r = m_relation(i * 7919u, "public", name, 'd', 1, one); /* includes relid 0 */
        decode_ok(d, &r, &m);
        b_free(&r);
    }
    CU_ASSERT_EQUAL(fwd_pgo_nrelations(d), 5000);
    for (uint32_t i = 0; i < 5000; i++) {
        const fwd_pgo_rel_t *rel = fwd_pgo_relation(d, i * 7919u);

        snprintf(name, sizeof(name), "t%u", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rel);
        CU_ASSERT_STRING_EQUAL(rel->rel.table, name);
    }
    CU_ASSERT_PTR_NULL(fwd_pgo_relation(d, 1));
    fwd_pgo_free(d);
}

static void test_free_accepts_null(void)
{
    fwd_pgo_free(NULL);
}

static void test_message_type_names(void)
{
    CU_ASSERT_STRING_EQUAL(fwd_pgo_type_name(FWD_PGO_INSERT), "Insert");
    CU_ASSERT_STRING_EQUAL(fwd_pgo_type_name(FWD_PGO_TYPE), "Type");
    CU_ASSERT_STRING_EQUAL(fwd_pgo_type_name('?'), "unknown");
}

/* ---- CopyData ------------------------------------------------------------------------------ */

static void test_xlogdata_gives_positions_time_and_payload(void)
{
    bytes_t b = {0};
    fwd_pgo_copydata_t c;
    xdcr_error_t err;

    b_u8(&b, 'w');
    b_u64(&b, 0x10);
    b_u64(&b, 0x20);
    b_u64(&b, 3);
    b_put(&b, "BEGIN", 5);
    CU_ASSERT_EQUAL(fwd_pgo_parse_copydata((const char *)b.p, b.n, &c, &err), 0);
    CU_ASSERT_EQUAL(c.type, FWD_PGO_XLOGDATA);
    CU_ASSERT_EQUAL(c.wal_start, 0x10);
    CU_ASSERT_EQUAL(c.wal_end, 0x20);
    CU_ASSERT_EQUAL(c.send_time_us, FWD_PG_EPOCH_UNIX_US + 3);
    CU_ASSERT_PTR_EQUAL(c.data, (const char *)b.p + 25);
    CU_ASSERT_EQUAL(c.len, 5);
    /* an XLogData with no payload is well-formed; the pgoutput decoder rejects it */
    CU_ASSERT_EQUAL(fwd_pgo_parse_copydata((const char *)b.p, 25, &c, &err), 0);
    CU_ASSERT_EQUAL(c.len, 0);
    for (size_t len = 0; len < 25; len++) {
        char *copy = malloc(len ? len : 1);

        CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
        if (len > 0)
            memcpy(copy, b.p, len);
        CU_ASSERT_EQUAL(fwd_pgo_parse_copydata(copy, len, &c, &err), XDCR_EPARSE);
        free(copy);
    }
    b_free(&b);
}

static void test_keepalive_gives_wal_end_time_and_reply_flag(void)
{
    for (unsigned reply = 0; reply < 2; reply++) {
        bytes_t b = {0};
        fwd_pgo_copydata_t c;
        xdcr_error_t err;

        b_u8(&b, 'k');
        b_u64(&b, 0x16B374D848);
        b_u64(&b, (uint64_t)-1);
        b_u8(&b, reply);
        CU_ASSERT_EQUAL(fwd_pgo_parse_copydata((const char *)b.p, b.n, &c, &err), 0);
        CU_ASSERT_EQUAL(c.type, FWD_PGO_KEEPALIVE);
        CU_ASSERT_EQUAL(c.wal_end, 0x16B374D848);
        CU_ASSERT_EQUAL(c.wal_start, 0);
        CU_ASSERT_EQUAL(c.send_time_us, FWD_PG_EPOCH_UNIX_US - 1);
        CU_ASSERT_EQUAL(c.reply_requested, reply == 1);
        CU_ASSERT_PTR_NULL(c.data);
        for (size_t len = 0; len < b.n; len++) {
            char *copy = malloc(len ? len : 1);

            CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
            if (len > 0)
                memcpy(copy, b.p, len);
            CU_ASSERT_EQUAL(fwd_pgo_parse_copydata(copy, len, &c, &err), XDCR_EPARSE);
            free(copy);
        }
        b_u8(&b, 0);
        CU_ASSERT_EQUAL(fwd_pgo_parse_copydata((const char *)b.p, b.n, &c, &err), XDCR_EPARSE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "primary keepalive message at offset 18"));
        b_free(&b);
    }
}

static void test_unknown_or_empty_copydata_is_eparse(void)
{
    fwd_pgo_copydata_t c;
    xdcr_error_t err;

    CU_ASSERT_EQUAL(fwd_pgo_parse_copydata("x", 1, &c, &err), XDCR_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "unknown replication CopyData message type 0x78"));
    CU_ASSERT_EQUAL(fwd_pgo_parse_copydata("", 0, &c, &err), XDCR_EPARSE);
}

static void test_xlogdata_with_time_beyond_unix_range_is_eparse(void)
{
    bytes_t b = {0};
    fwd_pgo_copydata_t c;
    xdcr_error_t err;

    b_u8(&b, 'w');
    b_u64(&b, 0);
    b_u64(&b, 0);
    b_u64(&b, (uint64_t)INT64_MAX);
    CU_ASSERT_EQUAL(fwd_pgo_parse_copydata((const char *)b.p, b.n, &c, &err), XDCR_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "send time out of range"));
    b_free(&b);
}

static void test_status_update_has_the_documented_layout(void)
{
    static const unsigned char want[FWD_PGO_STATUS_LEN] = {
        'r',                                            /* standby status update */
        0x00, 0x00, 0x00, 0x16, 0xB3, 0x74, 0xD8, 0x48, /* written */
        0x00, 0x00, 0x00, 0x16, 0xB3, 0x74, 0xD8, 0x00, /* flushed */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* applied */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8, /* clock: 1000 µs after 2000-01-01 */
        0x01,                                           /* reply requested */
    };
    char buf[FWD_PGO_STATUS_LEN];

    CU_ASSERT_EQUAL(
        fwd_pgo_write_status(buf, 0x16B374D848, 0x16B374D800, 0, FWD_PG_EPOCH_UNIX_US + 1000, true),
        FWD_PGO_STATUS_LEN);
    CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
    fwd_pgo_write_status(buf, 0, 0, 0, 0, false);
    CU_ASSERT_EQUAL(buf[33], 0);
    /* the Unix epoch is before PostgreSQL's: a negative PostgreSQL time */
    CU_ASSERT_EQUAL((unsigned char)buf[25], 0xFF);
}

/* ---- type names ---------------------------------------------------------------------------- */

static void test_builtin_type_names_match_format_type(void)
{
    static const struct {
        uint32_t oid;
        const char *name;
    } cases[] = {
        {16, "boolean"},
        {17, "bytea"},
        {20, "bigint"},
        {21, "smallint"},
        {23, "integer"},
        {25, "text"},
        {26, "oid"},
        {114, "json"},
        {142, "xml"},
        {700, "real"},
        {701, "double precision"},
        {790, "money"},
        {869, "inet"},
        {1000, "boolean[]"},
        {1007, "integer[]"},
        {1009, "text[]"},
        {1016, "bigint[]"},
        {1042, "bpchar"},
        {1043, "character varying"},
        {1082, "date"},
        {1083, "time without time zone"},
        {1114, "timestamp without time zone"},
        {1184, "timestamp with time zone"},
        {1186, "interval"},
        {1266, "time with time zone"},
        {1560, "\"bit\""},
        {1562, "bit varying"},
        {1700, "numeric"},
        {2950, "uuid"},
        {3220, "pg_lsn"},
        {3614, "tsvector"},
        {3802, "jsonb"},
        {3807, "jsonb[]"},
        {3904, "int4range"},
        {4451, "int4multirange"},
        {5069, "xid8"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = fwd_pg_type_name(cases[i].oid);

        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_STRING_EQUAL(got, cases[i].name);
    }
    CU_ASSERT_PTR_NULL(fwd_pg_type_name(0));
    CU_ASSERT_PTR_NULL(fwd_pg_type_name(15));
    CU_ASSERT_PTR_NULL(fwd_pg_type_name(10000));
    CU_ASSERT_PTR_NULL(fwd_pg_type_name(UINT32_MAX));
}

static void test_custom_type_names_are_quoted_like_quote_ident(void)
{
    static const struct {
        const char *ns, *name, *want;
    } cases[] = {
        {"public", "mood", "public.mood"},
        {"", "mood", "mood"},
        {"pg_catalog", "x", "x"},
        {"Order", "Weird Type", "\"Order\".\"Weird Type\""},
        {"user", "int", "\"user\".\"int\""}, /* non-unreserved keywords */
        {"s", "_arr1", "s._arr1"},
        {"s", "1st", "s.\"1st\""},
        {"s", "a$b", "s.\"a$b\""},
        {"s", "\xc3\xa9t\xc3\xa9", "s.\"\xc3\xa9t\xc3\xa9\""},
        {"s", "q\"t", "s.\"q\"\"t\""},
        {"s", "", "s.\"\""},
        {"abort", "zone", "abort.zone"}, /* unreserved keywords stay bare */
        /* a domain's base type, by its internal name: as format_type() names it */
        {"", "int4", "integer"},
        {"pg_catalog", "timestamptz", "timestamp with time zone"},
        {"", "_timestamptz", "timestamp with time zone[]"},
        {"", "_text", "text[]"},
        {"", "char", "\"char\""},
        {"", "bpchar", "bpchar"},
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = fwd_pg_format_type(buf, sizeof(buf), cases[i].ns, cases[i].name);

        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
        CU_ASSERT_EQUAL(n, strlen(cases[i].want));
        CU_ASSERT_EQUAL(fwd_pg_format_type(NULL, 0, cases[i].ns, cases[i].name), n);
    }
}

static void test_format_type_truncates_like_snprintf(void)
{
    char buf[8];

    memset(buf, 'Z', sizeof(buf));
    CU_ASSERT_EQUAL(fwd_pg_format_type(buf, 6, "public", "mood"), 11);
    CU_ASSERT_STRING_EQUAL(buf, "publi");
    CU_ASSERT_EQUAL(buf[6], 'Z');
    CU_ASSERT_EQUAL(fwd_pg_format_type(buf, 1, "public", "mood"), 11);
    CU_ASSERT_STRING_EQUAL(buf, "");
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_pg15_stream_decodes_every_message_with_exact_values),
        XDCR_TEST(test_every_truncation_of_every_pg15_message_is_eparse_and_changes_nothing),
        XDCR_TEST(test_corrupting_any_byte_of_the_pg15_stream_never_crashes),
        XDCR_TEST(test_begin_and_commit_give_lsns_xid_and_unix_times),
        XDCR_TEST(test_begin_rejects_a_time_beyond_the_unix_range),
        XDCR_TEST(test_transaction_framing_violations_are_eparse),
        XDCR_TEST(test_origin_gives_lsn_and_name),
        XDCR_TEST(test_relation_resolves_builtin_custom_and_unknown_type_names),
        XDCR_TEST(test_relation_for_a_known_relid_replaces_the_cached_one),
        XDCR_TEST(test_type_for_a_known_oid_replaces_the_name_for_later_relations),
        XDCR_TEST(test_relation_with_no_columns_is_accepted),
        XDCR_TEST(test_relation_with_bad_replica_identity_or_negative_count_is_eparse),
        XDCR_TEST(test_insert_gives_text_null_and_empty_values),
        XDCR_TEST(test_update_without_old_with_old_key_and_with_old_row),
        XDCR_TEST(test_update_with_a_bad_tuple_tag_is_eparse),
        XDCR_TEST(test_delete_with_old_key_or_old_row_and_nothing_else),
        XDCR_TEST(test_change_for_unknown_relid_is_eparse),
        XDCR_TEST(test_binary_tuple_value_is_eparse_naming_text_format),
        XDCR_TEST(test_bad_tuple_contents_are_eparse),
        XDCR_TEST(test_truncate_gives_relations_and_every_option_combination),
        XDCR_TEST(test_truncate_with_unknown_relid_or_impossible_count_is_eparse),
        XDCR_TEST(test_message_gives_flags_lsn_prefix_and_binary_content),
        XDCR_TEST(test_unknown_unsupported_and_empty_messages_are_eparse),
        XDCR_TEST(test_unterminated_string_is_eparse_naming_the_field),
        XDCR_TEST(test_reset_forgets_relations_types_and_transaction),
        XDCR_TEST(test_many_relations_stay_reachable),
        XDCR_TEST(test_free_accepts_null),
        XDCR_TEST(test_message_type_names),
        XDCR_TEST(test_xlogdata_gives_positions_time_and_payload),
        XDCR_TEST(test_keepalive_gives_wal_end_time_and_reply_flag),
        XDCR_TEST(test_unknown_or_empty_copydata_is_eparse),
        XDCR_TEST(test_xlogdata_with_time_beyond_unix_range_is_eparse),
        XDCR_TEST(test_status_update_has_the_documented_layout),
        XDCR_TEST(test_builtin_type_names_match_format_type),
        XDCR_TEST(test_custom_type_names_are_quoted_like_quote_ident),
        XDCR_TEST(test_format_type_truncates_like_snprintf),
        XDCR_TEST_END,
    };

    return xdcr_test_run("pgoutput", cases);
}
