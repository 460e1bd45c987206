/*
 * test_event.c - unit tests of common/event.c: the change-event model, its format-v1 encoder and
 * decoder, Kafka headers and the time format. No services needed.
 */
#include "xdcr/crc32c.h"
#include "xdcr/event.h"
#include "xdcr_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ------------------------------------------------------------------------------- */

#define COMMIT_US INT64_C(1795320477123456) /* 2026-11-22T04:07:57.123456Z */
#define SEQ UINT64_C(0x16B3748)             /* 0/16B3748: end of the commit record */
#define CLSN UINT64_C(0x16B3718)            /* 0/16B3718: start of the commit record */
#define PREV UINT64_C(0x16B2F10)            /* 0/16B2F10: seq of the stream's previous message */
#define SEQ_FIELD_LEN (sizeof(",\"seq\":\"0/16B3748\"") - 1) /* what a last part adds */

static const xdcr_source_t east = {"east", UINT64_C(7301234567890123456), 1};

static const xdcr_column_t items_cols[] = {
    {"id", "bigint", 20, -1, true},
    {"name", "text", 25, -1, false},
    {"note", "text", 25, -1, false},
};
static const xdcr_relation_t items = {"public", "items", 3, items_cols};

static const xdcr_column_t orders_cols[] = {{"id", "bigint", 20, -1, true}};
static const xdcr_relation_t orders = {"public", "orders", 1, orders_cols};

static xdcr_value_t txt(const char *s)
{
    xdcr_value_t v = {XDCR_VAL_TEXT, (uint32_t)strlen(s), s};
    return v;
}

static const xdcr_value_t null_v = {XDCR_VAL_NULL, 0, NULL};
static const xdcr_value_t unchanged_v = {XDCR_VAL_UNCHANGED, 0, NULL};

static xdcr_change_t row(xdcr_op_t op, uint32_t ord, const xdcr_value_t *old_vals,
                         const xdcr_value_t *new_vals)
{
    xdcr_change_t ch;

    memset(&ch, 0, sizeof(ch));
    ch.op = op;
    ch.ordinal = ord;
    ch.old_vals = old_vals;
    ch.new_vals = new_vals;
    return ch;
}

static xdcr_change_t logical_msg(uint32_t ord, const char *prefix, const char *content,
                                 uint32_t len)
{
    xdcr_change_t ch;

    memset(&ch, 0, sizeof(ch));
    ch.op = XDCR_OP_MESSAGE;
    ch.ordinal = ord;
    ch.prefix = prefix;
    ch.content = content;
    ch.content_len = len;
    return ch;
}

/* The example message of docs/message-format.md, byte for byte. */
static const char golden_txn[] =
    "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"7301234567890123456\","
    "\"timeline\":1,\"prev\":\"0/16B2F10\",\"commit_lsn\":\"0/16B3718\",\"seq\":\"0/16B3748\","
    "\"xid\":734,\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":0,\"last\":true,"
    "\"changes\":["
    "{\"ord\":0,\"op\":\"I\",\"r\":0,\"new\":[\"1\",\"h\xc3\xa9llo\",null]},"
    "{\"ord\":1,\"op\":\"U\",\"r\":0,\"old\":[\"1\",null,null],\"new\":[\"1\",null,null],"
    "\"unchanged\":[2]},"
    "{\"ord\":2,\"op\":\"D\",\"r\":0,\"old\":[\"1\",null,null]},"
    "{\"ord\":3,\"op\":\"T\",\"rels\":[0,1],\"cascade\":false,\"restart_identity\":false},"
    "{\"ord\":4,\"op\":\"M\",\"prefix\":\"app\",\"content\":\"aGVsbG8=\"}],"
    "\"relations\":["
    "{\"schema\":\"public\",\"table\":\"items\",\"columns\":["
    "{\"name\":\"id\",\"type\":\"bigint\",\"oid\":20,\"typmod\":-1,\"key\":true},"
    "{\"name\":\"name\",\"type\":\"text\",\"oid\":25,\"typmod\":-1,\"key\":false},"
    "{\"name\":\"note\",\"type\":\"text\",\"oid\":25,\"typmod\":-1,\"key\":false}]},"
    "{\"schema\":\"public\",\"table\":\"orders\",\"columns\":["
    "{\"name\":\"id\",\"type\":\"bigint\",\"oid\":20,\"typmod\":-1,\"key\":true}]}]}";

static const char golden_mark[] =
    "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"7301234567890123456\","
    "\"timeline\":1,\"prev\":\"0/16B2F10\",\"seq\":\"0/16B3748\",\"wal_lsn\":\"0/16B4000\","
    "\"time\":\"2026-11-22T04:07:57.123456Z\"}";

/* Encode the golden transaction; payload valid while enc lives. */
static void encode_golden(xdcr_encoder_t *enc, const char **payload, size_t *len)
{
    xdcr_error_t err;
    xdcr_value_t ins[3] = {txt("1"), txt("h\xc3\xa9llo"), null_v};
    xdcr_value_t key[3] = {txt("1"), null_v, null_v};
    xdcr_value_t upd[3] = {txt("1"), null_v, unchanged_v};
    xdcr_change_t ch;
    const uint32_t relkeys[2] = {16384, 16390};
    const xdcr_relation_t *trels[2] = {&items, &orders};

    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_begin(enc, &east, CLSN, PREV, 734, COMMIT_US, 0, &err),
                          0);
    ch = row(XDCR_OP_INSERT, 0, NULL, ins);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 16384, &items, &ch, &err), 0);
    ch = row(XDCR_OP_UPDATE, 1, key, upd);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 16384, &items, &ch, &err), 0);
    ch = row(XDCR_OP_DELETE, 2, key, NULL);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 16384, &items, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_truncate(enc, 3, 2, relkeys, trels, false, false, &err),
                          0);
    ch = logical_msg(4, "app", "hello", 5);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_nchanges(enc), 5);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, payload, len, &err), 0);
}

/* Decode and expect success. */
static xdcr_message_t *decode_ok(const char *payload, size_t len)
{
    xdcr_message_t *msg = NULL;
    xdcr_error_t err = {0};
    int rc = xdcr_message_decode(payload, len, &msg, &err);

    if (rc != 0)
        fprintf(stderr, "\nunexpected decode error %d: %s\n", rc, err.message);
    CU_ASSERT_EQUAL(rc, 0);
    return msg;
}

static bool value_is(const xdcr_value_t *v, xdcr_val_kind_t kind, const char *text)
{
    if (v->kind != kind)
        return false;
    if (kind != XDCR_VAL_TEXT)
        return true;
    return v->len == strlen(text) && memcmp(v->data, text, v->len) == 0;
}

static bool contains(const char *payload, size_t len, const char *needle)
{
    return memmem(payload, len, needle, strlen(needle)) != NULL;
}

/* ---- encoder: golden bytes ------------------------------------------------------------------ */

static void test_encoder_writes_golden_txn_bytes(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    const char *payload;
    size_t len;

    CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
    encode_golden(enc, &payload, &len);
    CU_ASSERT_EQUAL(len, strlen(golden_txn));
    if (len != strlen(golden_txn) || memcmp(payload, golden_txn, len) != 0)
        fprintf(stderr, "\ngot:  %.*s\nwant: %s\n", (int)len, payload, golden_txn);
    CU_ASSERT_NSTRING_EQUAL(payload, golden_txn, strlen(golden_txn));
    xdcr_encoder_free(enc);
}

static void test_encoder_writes_golden_mark_bytes(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_mark(enc, &east, PREV, SEQ, UINT64_C(0x16B4000), COMMIT_US,
                                            &payload, &len, &err),
                          0);
    CU_ASSERT_EQUAL(len, strlen(golden_mark));
    CU_ASSERT_NSTRING_EQUAL(payload, golden_mark, strlen(golden_mark));
    xdcr_encoder_free(enc);
}

/* A transaction split in two parts at a stream start: no "prev"; "seq" on the last part only. */
static const char golden_part0[] =
    "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"7301234567890123456\","
    "\"timeline\":1,\"commit_lsn\":\"0/16B3718\",\"xid\":734,"
    "\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":0,\"last\":false,"
    "\"changes\":[{\"ord\":0,\"op\":\"M\",\"prefix\":\"app\",\"content\":\"aGVsbG8=\"}],"
    "\"relations\":[]}";
static const char golden_part1[] =
    "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"7301234567890123456\","
    "\"timeline\":1,\"commit_lsn\":\"0/16B3718\",\"seq\":\"0/16B3748\",\"xid\":734,"
    "\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":1,\"last\":true,"
    "\"changes\":[{\"ord\":1,\"op\":\"M\",\"prefix\":\"app\",\"content\":\"\"}],"
    "\"relations\":[]}";

static void test_encoder_writes_golden_split_part_bytes(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_change_t ch;
    xdcr_error_t err;
    const char *payload;
    size_t len, size;

    CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 734, COMMIT_US, 0, &err), 0);
    ch = logical_msg(0, "app", "hello", 5);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), 0);
    size = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, false, 0, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(size, len);
    CU_ASSERT_EQUAL(len, strlen(golden_part0));
    CU_ASSERT_NSTRING_EQUAL(payload, golden_part0, strlen(golden_part0));

    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 734, COMMIT_US, 1, &err), 0);
    ch = logical_msg(1, "app", "", 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), 0);
    size = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(size + SEQ_FIELD_LEN - 1, len);
    CU_ASSERT_EQUAL(len, strlen(golden_part1));
    if (len != strlen(golden_part1) || memcmp(payload, golden_part1, len) != 0)
        fprintf(stderr, "\ngot:  %.*s\nwant: %s\n", (int)len, payload, golden_part1);
    CU_ASSERT_NSTRING_EQUAL(payload, golden_part1, strlen(golden_part1));
    xdcr_encoder_free(enc);
}

static void test_golden_split_parts_decode_commit_lsn_and_seq(void)
{
    xdcr_message_t *m = decode_ok(golden_part0, strlen(golden_part0));

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->prev_seq, 0);
    CU_ASSERT_EQUAL(m->commit_lsn, CLSN);
    CU_ASSERT_EQUAL(m->seq, 0);
    CU_ASSERT_FALSE(m->last);
    xdcr_message_free(m);
    m = decode_ok(golden_part1, strlen(golden_part1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->prev_seq, 0);
    CU_ASSERT_EQUAL(m->commit_lsn, CLSN);
    CU_ASSERT_EQUAL(m->seq, SEQ);
    CU_ASSERT_TRUE(m->last);
    CU_ASSERT_EQUAL(m->part, 1);
    xdcr_message_free(m);
}

static void test_golden_txn_decodes_to_every_field(void)
{
    xdcr_message_t *m = decode_ok(golden_txn, strlen(golden_txn));
    const xdcr_change_t *c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->version, 1);
    CU_ASSERT_EQUAL(m->type, XDCR_MSG_TXN);
    CU_ASSERT_STRING_EQUAL(m->src.origin, "east");
    CU_ASSERT_EQUAL(m->src.sysid, UINT64_C(7301234567890123456));
    CU_ASSERT_EQUAL(m->src.timeline, 1);
    CU_ASSERT_EQUAL(m->prev_seq, PREV);
    CU_ASSERT_EQUAL(m->commit_lsn, CLSN);
    CU_ASSERT_EQUAL(m->seq, SEQ);
    CU_ASSERT_EQUAL(m->xid, 734);
    CU_ASSERT_EQUAL(m->commit_time_us, COMMIT_US);
    CU_ASSERT_EQUAL(m->part, 0);
    CU_ASSERT_TRUE(m->last);
    CU_ASSERT_EQUAL_FATAL(m->nrels, 2);
    CU_ASSERT_STRING_EQUAL(m->rels[0].schema, "public");
    CU_ASSERT_STRING_EQUAL(m->rels[0].table, "items");
    CU_ASSERT_EQUAL_FATAL(m->rels[0].ncols, 3);
    CU_ASSERT_STRING_EQUAL(m->rels[0].cols[0].name, "id");
    CU_ASSERT_STRING_EQUAL(m->rels[0].cols[0].type, "bigint");
    CU_ASSERT_EQUAL(m->rels[0].cols[0].type_oid, 20);
    CU_ASSERT_EQUAL(m->rels[0].cols[0].typmod, -1);
    CU_ASSERT_TRUE(m->rels[0].cols[0].key);
    CU_ASSERT_FALSE(m->rels[0].cols[1].key);
    CU_ASSERT_STRING_EQUAL(m->rels[1].table, "orders");
    CU_ASSERT_EQUAL_FATAL(m->nchanges, 5);

    c = &m->changes[0];
    CU_ASSERT_EQUAL(c->op, XDCR_OP_INSERT);
    CU_ASSERT_EQUAL(c->ordinal, 0);
    CU_ASSERT_EQUAL(c->rel, 0);
    CU_ASSERT_PTR_NULL(c->old_vals);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->new_vals);
    CU_ASSERT_TRUE(value_is(&c->new_vals[0], XDCR_VAL_TEXT, "1"));
    CU_ASSERT_TRUE(value_is(&c->new_vals[1], XDCR_VAL_TEXT, "h\xc3\xa9llo"));
    CU_ASSERT_TRUE(value_is(&c->new_vals[2], XDCR_VAL_NULL, NULL));

    c = &m->changes[1];
    CU_ASSERT_EQUAL(c->op, XDCR_OP_UPDATE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->old_vals);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->new_vals);
    CU_ASSERT_TRUE(value_is(&c->old_vals[0], XDCR_VAL_TEXT, "1"));
    CU_ASSERT_TRUE(value_is(&c->old_vals[2], XDCR_VAL_NULL, NULL));
    CU_ASSERT_TRUE(value_is(&c->new_vals[1], XDCR_VAL_NULL, NULL));
    CU_ASSERT_TRUE(value_is(&c->new_vals[2], XDCR_VAL_UNCHANGED, NULL));

    c = &m->changes[2];
    CU_ASSERT_EQUAL(c->op, XDCR_OP_DELETE);
    CU_ASSERT_PTR_NOT_NULL(c->old_vals);
    CU_ASSERT_PTR_NULL(c->new_vals);

    c = &m->changes[3];
    CU_ASSERT_EQUAL(c->op, XDCR_OP_TRUNCATE);
    CU_ASSERT_EQUAL_FATAL(c->ntrunc, 2);
    CU_ASSERT_EQUAL(c->trunc_rels[0], 0);
    CU_ASSERT_EQUAL(c->trunc_rels[1], 1);
    CU_ASSERT_FALSE(c->cascade);
    CU_ASSERT_FALSE(c->restart_identity);

    c = &m->changes[4];
    CU_ASSERT_EQUAL(c->op, XDCR_OP_MESSAGE);
    CU_ASSERT_STRING_EQUAL(c->prefix, "app");
    CU_ASSERT_EQUAL(c->content_len, 5);
    CU_ASSERT_NSTRING_EQUAL(c->content, "hello", 5);
    xdcr_message_free(m);
}

static void test_golden_mark_decodes_to_every_field(void)
{
    xdcr_message_t *m = decode_ok(golden_mark, strlen(golden_mark));

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->type, XDCR_MSG_MARK);
    CU_ASSERT_STRING_EQUAL(m->src.origin, "east");
    CU_ASSERT_EQUAL(m->src.sysid, UINT64_C(7301234567890123456));
    CU_ASSERT_EQUAL(m->prev_seq, PREV);
    CU_ASSERT_EQUAL(m->seq, SEQ);
    CU_ASSERT_EQUAL(m->commit_lsn, 0);
    CU_ASSERT_EQUAL(m->wal_lsn, UINT64_C(0x16B4000));
    CU_ASSERT_EQUAL(m->time_us, COMMIT_US);
    CU_ASSERT_EQUAL(m->nchanges, 0);
    CU_ASSERT_PTR_NULL(m->changes);
    CU_ASSERT_EQUAL(m->nrels, 0);
    xdcr_message_free(m);
}

/* ---- encoder/decoder round trips ------------------------------------------------------------ */

/* Encode one insert of (id, name, note) values and decode it again. */
static xdcr_message_t *round_trip_insert(const xdcr_value_t vals[3])
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_change_t ch = row(XDCR_OP_INSERT, 7, NULL, vals);
    xdcr_message_t *m = NULL;
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    if (xdcr_encoder_add_change(enc, 1, &items, &ch, &err) != 0)
        fprintf(stderr, "\nadd_change: %s\n", err.message);
    else if (xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err) == 0)
        m = decode_ok(payload, len);
    xdcr_encoder_free(enc);
    return m;
}

static void test_round_trip_keeps_nulls_empty_strings_and_text(void)
{
    xdcr_value_t vals[3] = {txt("42"), txt(""), null_v};
    xdcr_message_t *m = round_trip_insert(vals);

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->changes[0].ordinal, 7);
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[0], XDCR_VAL_TEXT, "42"));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[1], XDCR_VAL_TEXT, ""));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[2], XDCR_VAL_NULL, NULL));
    xdcr_message_free(m);
}

static void test_round_trip_keeps_unicode_and_escaped_characters(void)
{
    char controls[32];
    const char *texts[] = {
        "\"quoted\" \\back\\slash/ and \x7f",
        "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 \xef\xbf\xbf",
        controls,
        "{\"json\": [1, 2]}\n\ttabbed\r\n",
    };

    for (int i = 1; i < 32; i++)
        controls[i - 1] = (char)i;
    controls[31] = '\0';
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        xdcr_value_t vals[3] = {txt("1"), txt(texts[t]), txt(texts[t])};
        xdcr_message_t *m = round_trip_insert(vals);

        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[1], XDCR_VAL_TEXT, texts[t]));
        CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[2], XDCR_VAL_TEXT, texts[t]));
        xdcr_message_free(m);
    }
}

static void test_encoder_escapes_control_characters_as_json_escapes(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), txt("a\"b\\c\nd\x01\x1f\x7f/"), null_v};
    xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, false, 0, &payload, &len, &err), 0);
    CU_ASSERT_TRUE(contains(payload, len, "\"a\\\"b\\\\c\\nd\\u0001\\u001f\x7f/\""));
    xdcr_encoder_free(enc);
}

static void test_round_trip_keeps_large_values(void)
{
    size_t n = (size_t)4 << 20;
    char *big = malloc(n + 1);
    xdcr_message_t *m;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 1000 == 999) ? '\n' : (i % 7 == 0 ? '"' : (char)('a' + i % 26));
    big[n] = '\0';
    {
        xdcr_value_t vals[3] = {txt("1"), txt(big), txt("\xc3\xa9")};
        m = round_trip_insert(vals);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->changes[0].new_vals[1].len, n);
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[1], XDCR_VAL_TEXT, big));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[2], XDCR_VAL_TEXT, "\xc3\xa9"));
    xdcr_message_free(m);
    free(big);
}

static void test_round_trip_marks_unchanged_toast_only_in_new_values(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t old_vals[3] = {txt("1"), txt("old"), null_v};
    xdcr_value_t new_vals[3] = {txt("1"), unchanged_v, unchanged_v};
    xdcr_change_t ch = row(XDCR_OP_UPDATE, 0, old_vals, new_vals);
    xdcr_message_t *m;
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    ch = row(XDCR_OP_UPDATE, 1, NULL, new_vals); /* no old key: the key did not change */
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    CU_ASSERT_TRUE(contains(payload, len, "\"unchanged\":[1,2]"));
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(m->nchanges, 2);
    CU_ASSERT_TRUE(value_is(&m->changes[0].old_vals[1], XDCR_VAL_TEXT, "old"));
    CU_ASSERT_TRUE(value_is(&m->changes[0].old_vals[2], XDCR_VAL_NULL, NULL));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[0], XDCR_VAL_TEXT, "1"));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[1], XDCR_VAL_UNCHANGED, NULL));
    CU_ASSERT_TRUE(value_is(&m->changes[0].new_vals[2], XDCR_VAL_UNCHANGED, NULL));
    CU_ASSERT_PTR_NULL(m->changes[1].old_vals);
    CU_ASSERT_TRUE(value_is(&m->changes[1].new_vals[2], XDCR_VAL_UNCHANGED, NULL));
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

static void test_round_trip_keeps_binary_message_content_of_every_length(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    char bytes[256];
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;

    for (int i = 0; i < 256; i++)
        bytes[i] = (char)(255 - i);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    for (uint32_t n = 0; n <= 256; n++) {
        xdcr_change_t ch = logical_msg(n, n % 2 ? "pre\xc3\xa9" : "", bytes, n);
        CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), 0);
    }
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(m->nchanges, 257);
    CU_ASSERT_EQUAL(m->nrels, 0);
    for (uint32_t n = 0; n <= 256; n++) {
        CU_ASSERT_EQUAL(m->changes[n].content_len, n);
        CU_ASSERT_TRUE(n == 0 || memcmp(m->changes[n].content, bytes, n) == 0);
        CU_ASSERT_STRING_EQUAL(m->changes[n].prefix, n % 2 ? "pre\xc3\xa9" : "");
    }
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

static void test_round_trip_truncate_flags_and_relations(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    const uint32_t keys[3] = {2, 1, 2};
    const xdcr_relation_t *rels[3] = {&orders, &items, &orders};
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_truncate(enc, 0, 3, keys, rels, true, true, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_truncate(enc, 1, 1, keys + 1, rels + 1, false, true, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(m->nrels, 2);
    CU_ASSERT_STRING_EQUAL(m->rels[0].table, "orders"); /* first-use order */
    CU_ASSERT_STRING_EQUAL(m->rels[1].table, "items");
    CU_ASSERT_EQUAL_FATAL(m->changes[0].ntrunc, 3);
    CU_ASSERT_EQUAL(m->changes[0].trunc_rels[0], 0);
    CU_ASSERT_EQUAL(m->changes[0].trunc_rels[1], 1);
    CU_ASSERT_EQUAL(m->changes[0].trunc_rels[2], 0);
    CU_ASSERT_TRUE(m->changes[0].cascade);
    CU_ASSERT_TRUE(m->changes[0].restart_identity);
    CU_ASSERT_EQUAL_FATAL(m->changes[1].ntrunc, 1);
    CU_ASSERT_EQUAL(m->changes[1].trunc_rels[0], 1);
    CU_ASSERT_FALSE(m->changes[1].cascade);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* Many relations (grows the relkey map), each used twice, decoded with the right indexes. */
static void test_round_trip_many_relations_written_once_each(void)
{
    enum { NREL = 700 };
    static char names[NREL][16];
    static xdcr_relation_t rels[NREL];
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[1];
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;
    uint32_t ord = 0;

    for (int i = 0; i < NREL; i++) {
        snprintf(names[i], sizeof(names[i]), "t%d", i);
        rels[i] = (xdcr_relation_t){"s", names[i], 1, orders_cols};
    }
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NREL; i++) {
            xdcr_change_t ch = row(XDCR_OP_INSERT, ord++, NULL, vals);
            vals[0] = txt(names[i]);
            CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, (uint32_t)i * 7919u, &rels[i], &ch, &err),
                            0);
        }
    }
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(m->nrels, NREL);
    CU_ASSERT_EQUAL_FATAL(m->nchanges, 2 * NREL);
    for (uint32_t i = 0; i < m->nchanges; i++) {
        const xdcr_change_t *c = &m->changes[i];
        CU_ASSERT_EQUAL(c->rel, i % NREL);
        CU_ASSERT_STRING_EQUAL(m->rels[c->rel].table, names[i % NREL]);
        CU_ASSERT_TRUE(value_is(&c->new_vals[0], XDCR_VAL_TEXT, names[i % NREL]));
    }
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* A relation redefined within a transaction (ALTER TABLE) gets a second entry. */
static void test_relation_redefined_mid_message_gets_a_new_entry(void)
{
    static const xdcr_column_t wide_cols[] = {{"id", "bigint", 20, -1, true},
                                              {"extra", "text", 25, -1, false}};
    xdcr_relation_t wide = {"public", "orders", 2, wide_cols};
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t one[1] = {txt("1")}, two[2] = {txt("2"), txt("x")};
    xdcr_change_t ch;
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    ch = row(XDCR_OP_INSERT, 0, NULL, one);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 5, &orders, &ch, &err), 0);
    ch = row(XDCR_OP_INSERT, 1, NULL, two);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 5, &wide, &ch, &err), 0);
    ch = row(XDCR_OP_INSERT, 2, NULL, two);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 5, &wide, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(m->nrels, 2);
    CU_ASSERT_EQUAL(m->rels[0].ncols, 1);
    CU_ASSERT_EQUAL(m->rels[1].ncols, 2);
    CU_ASSERT_EQUAL(m->changes[0].rel, 0);
    CU_ASSERT_EQUAL(m->changes[1].rel, 1);
    CU_ASSERT_EQUAL(m->changes[2].rel, 1);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* Split a big transaction by size: every part decodes, relations repeat, only the last is last. */
static void test_split_parts_decode_in_order_with_own_relations(void)
{
    enum { NCH = 2000, LIMIT = 4096 };
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_error_t err;
    const char *payload;
    size_t len, size;
    uint32_t part = 0, seen = 0;
    char id[16];
    xdcr_value_t vals[3];

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, PREV, 9, COMMIT_US, part, &err), 0);
    for (uint32_t i = 0; i <= NCH; i++) {
        bool last = i == NCH;
        if (!last) {
            xdcr_change_t ch = row(XDCR_OP_INSERT, i, NULL, vals);
            snprintf(id, sizeof(id), "%" PRIu32, i);
            vals[0] = txt(id);
            vals[1] = txt("some text value");
            vals[2] = null_v;
            CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
        }
        if (last || xdcr_encoder_size(enc) >= LIMIT) {
            xdcr_message_t *m;

            size = xdcr_encoder_size(enc);
            CU_ASSERT_EQUAL_FATAL(
                xdcr_encoder_txn_finish(enc, last, last ? SEQ : 0, &payload, &len, &err), 0);
            /* size is exact; a last part adds its "seq" field and "true" is one byte shorter */
            CU_ASSERT_EQUAL(size + (last ? SEQ_FIELD_LEN - 1 : 0), len);
            m = decode_ok(payload, len);
            CU_ASSERT_PTR_NOT_NULL_FATAL(m);
            CU_ASSERT_EQUAL(m->part, part);
            CU_ASSERT_EQUAL(m->last, last);
            /* every part names the commit and the stream's previous message; only the last
               has the seq */
            CU_ASSERT_EQUAL(m->commit_lsn, CLSN);
            CU_ASSERT_EQUAL(m->prev_seq, PREV);
            CU_ASSERT_EQUAL(m->seq, last ? SEQ : 0);
            CU_ASSERT_EQUAL(contains(payload, len, "\"seq\":"), last);
            CU_ASSERT_EQUAL(m->xid, 9);
            CU_ASSERT_EQUAL(m->nrels, 1);
            for (uint32_t k = 0; k < m->nchanges; k++) {
                snprintf(id, sizeof(id), "%" PRIu32, seen);
                CU_ASSERT_EQUAL(m->changes[k].ordinal, seen);
                CU_ASSERT_TRUE(value_is(&m->changes[k].new_vals[0], XDCR_VAL_TEXT, id));
                seen++;
            }
            xdcr_message_free(m);
            if (!last)
                CU_ASSERT_EQUAL(
                    xdcr_encoder_txn_begin(enc, &east, CLSN, PREV, 9, COMMIT_US, ++part, &err), 0);
        }
    }
    CU_ASSERT_EQUAL(seen, NCH);
    CU_ASSERT_TRUE(part > 10);
    xdcr_encoder_free(enc);
}

static void test_encoder_size_counts_changes_and_relations(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), null_v, null_v};
    xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
    xdcr_error_t err;
    const char *payload;
    size_t len, before, after;

    CU_ASSERT_EQUAL(xdcr_encoder_size(enc), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    before = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL(xdcr_encoder_nchanges(enc), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    after = xdcr_encoder_size(enc);
    CU_ASSERT_TRUE(after > before + 150); /* the change and the relation */
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, false, 0, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(after, len);
    /* an empty part is valid too */
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 1, &err), 0);
    before = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(before + SEQ_FIELD_LEN - 1, len);
    xdcr_message_free(decode_ok(payload, len));
    xdcr_encoder_free(enc);
}

static void test_mark_round_trip_keeps_positions_and_time(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_source_t src = {"west-billing.2", UINT64_MAX, UINT32_MAX};
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;

    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_mark(enc, &src, 0, 0, UINT64_MAX, -1, &payload, &len, &err),
                          0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->type, XDCR_MSG_MARK);
    CU_ASSERT_STRING_EQUAL(m->src.origin, "west-billing.2");
    CU_ASSERT_EQUAL(m->src.sysid, UINT64_MAX);
    CU_ASSERT_EQUAL(m->src.timeline, UINT32_MAX);
    CU_ASSERT_EQUAL(m->seq, 0);
    CU_ASSERT_EQUAL(m->wal_lsn, UINT64_MAX);
    CU_ASSERT_EQUAL(m->time_us, -1);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* "prev" is written only when given; prev equal to commit_lsn (txn) or seq (mark) is valid. */
static void test_round_trip_prev_absent_and_present(void)
{
    static const xdcr_lsn_t prevs[] = {0, 1, PREV, CLSN};
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_error_t err;
    const char *payload;
    size_t len;

    for (size_t i = 0; i < sizeof(prevs) / sizeof(prevs[0]); i++) {
        xdcr_message_t *m;

        CU_ASSERT_EQUAL_FATAL(
            xdcr_encoder_txn_begin(enc, &east, CLSN, prevs[i], 1, COMMIT_US, 0, &err), 0);
        CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
        CU_ASSERT_EQUAL(contains(payload, len, "\"prev\""), prevs[i] != 0);
        m = decode_ok(payload, len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL(m->prev_seq, prevs[i]);
        CU_ASSERT_EQUAL(m->commit_lsn, CLSN);
        CU_ASSERT_EQUAL(m->seq, SEQ);
        xdcr_message_free(m);

        CU_ASSERT_EQUAL_FATAL(
            xdcr_encoder_mark(enc, &east, prevs[i], CLSN, SEQ, COMMIT_US, &payload, &len, &err), 0);
        CU_ASSERT_EQUAL(contains(payload, len, "\"prev\""), prevs[i] != 0);
        m = decode_ok(payload, len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL(m->prev_seq, prevs[i]);
        CU_ASSERT_EQUAL(m->seq, CLSN);
        CU_ASSERT_EQUAL(m->commit_lsn, 0);
        xdcr_message_free(m);
    }
    xdcr_encoder_free(enc);
}

/* The largest LSNs make the longest "seq" field: the head moves furthest, nothing overflows. */
static void test_split_part_with_largest_lsns_round_trips(void)
{
    const xdcr_lsn_t clsn = UINT64_MAX - 1, seq = UINT64_MAX;
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), null_v, null_v};
    xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
    xdcr_message_t *m;
    xdcr_error_t err;
    const char *payload;
    size_t len, size;

    CU_ASSERT_EQUAL_FATAL(
        xdcr_encoder_txn_begin(enc, &east, clsn, clsn - 1, UINT32_MAX, COMMIT_US, 3, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    size = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, seq, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(size + sizeof(",\"seq\":\"FFFFFFFF/FFFFFFFF\"") - 2, len);
    CU_ASSERT_TRUE(contains(payload, len,
                            "\"commit_lsn\":\"FFFFFFFF/FFFFFFFE\",\"seq\":\"FFFFFFFF/FFFFFFFF\","
                            "\"xid\":4294967295"));
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->commit_lsn, clsn);
    CU_ASSERT_EQUAL(m->prev_seq, clsn - 1);
    CU_ASSERT_EQUAL(m->seq, seq);
    CU_ASSERT_EQUAL(m->nchanges, 1);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* ---- encoder: rejected input ---------------------------------------------------------------- */

/* Stream positions that contradict each other are refused; a refused finish leaves the part open.
 */
static void test_encoder_rejects_inconsistent_stream_positions(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_error_t err;
    const char *payload;
    size_t len, size;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, 0, 0, 1, COMMIT_US, 0, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "commit LSN 0/0"));
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, CLSN + 1, 1, COMMIT_US, 0, &err),
                    XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "above commit LSN 0/16B3718"));
    CU_ASSERT_EQUAL(xdcr_encoder_nchanges(enc), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_size(enc), 0); /* nothing was opened */

    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_begin(enc, &east, CLSN, PREV, 1, COMMIT_US, 0, &err), 0);
    size = xdcr_encoder_size(enc);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, CLSN, &payload, &len, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not above its commit LSN"));
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, CLSN - 1, &payload, &len, &err),
                    XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, 0, &payload, &len, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, false, SEQ, &payload, &len, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not the last has no seq"));
    CU_ASSERT_EQUAL(xdcr_encoder_size(enc), size); /* still open, unchanged */
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, CLSN + 1, &payload, &len, &err), 0);
    xdcr_message_free(decode_ok(payload, len));

    CU_ASSERT_EQUAL(
        xdcr_encoder_mark(enc, &east, SEQ + 1, SEQ, SEQ, COMMIT_US, &payload, &len, &err),
        XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "above mark seq 0/16B3748"));
    xdcr_encoder_free(enc);
}

static void test_encoder_rejects_invalid_utf8_naming_the_column(void)
{
    const char *bad[] = {
        "\xff", "\xc0\xaf", "\xed\xa0\x80",         "\xf4\x90\x80\x80", "ok\xe2\x82",
        "\x80", "a\xc3",    "\xf8\x88\x80\x80\x80", "\xe0\x80\xaf",     "\xf0\x80\x80\xaf"};
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xdcr_value_t vals[3] = {txt("1"), null_v, txt(bad[i])};
        xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
        CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\"note\""));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "UTF-8"));
    }
    xdcr_encoder_free(enc);
}

static void test_encoder_rejects_nul_byte_in_value(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), {XDCR_VAL_TEXT, 3, "a\0b"}, null_v};
    xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "NUL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\"name\""));
    xdcr_encoder_free(enc);
}

/* A failed change leaves no trace: neither its bytes nor the relation it introduced. */
static void test_encoder_failed_change_leaves_message_unchanged(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t good[3] = {txt("1"), null_v, null_v};
    xdcr_value_t bad_vals[1] = {txt("\xff")};
    xdcr_change_t ch;
    xdcr_error_t err;
    const char *payload;
    size_t len, size;
    xdcr_message_t *m;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    ch = row(XDCR_OP_INSERT, 0, NULL, good);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    size = xdcr_encoder_size(enc);
    ch = row(XDCR_OP_INSERT, 1, NULL, bad_vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, &orders, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_size(enc), size);
    CU_ASSERT_EQUAL(xdcr_encoder_nchanges(enc), 1);
    ch = row(XDCR_OP_INSERT, 1, NULL, good);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->nchanges, 2);
    CU_ASSERT_EQUAL(m->nrels, 1);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

/* Regression: rolled-back relations once stayed in the relkey map until it filled up and hung. */
static void test_encoder_many_failed_changes_on_new_relations_do_not_clog_the_map(void)
{
    static const xdcr_column_t wide_cols[] = {{"id", "bigint", 20, -1, true},
                                              {"extra", "text", 25, -1, false}};
    xdcr_relation_t wide = {"public", "orders", 2, wide_cols};
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t good[1] = {txt("1")}, bad_vals[2] = {txt("1"), txt("\xff")};
    xdcr_change_t ch;
    xdcr_error_t err;
    const char *payload;
    size_t len;
    xdcr_message_t *m;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    ch = row(XDCR_OP_INSERT, 0, NULL, good);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &orders, &ch, &err), 0);
    for (uint32_t i = 0; i < 1000; i++) {
        ch = row(XDCR_OP_INSERT, 1, NULL, bad_vals);
        CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1000 + i, &wide, &ch, &err), XDCR_EINVAL);
    }
    /* a failed redefinition of relkey 1 must not forget its first definition */
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &wide, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_INSERT, 1, NULL, good);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &orders, &ch, &err), 0);
    ch = row(XDCR_OP_INSERT, 2, NULL, good);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 7, &orders, &ch, &err), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    m = decode_ok(payload, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->nrels, 2);
    CU_ASSERT_EQUAL(m->nchanges, 3);
    CU_ASSERT_EQUAL(m->changes[1].rel, 0);
    CU_ASSERT_EQUAL(m->changes[2].rel, 1);
    xdcr_message_free(m);
    xdcr_encoder_free(enc);
}

static void test_encoder_rejects_calls_out_of_order(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), null_v, null_v};
    xdcr_change_t ch = row(XDCR_OP_INSERT, 0, NULL, vals);
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_ESTATE);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), XDCR_ESTATE);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err),
                    XDCR_ESTATE);
    CU_ASSERT_EQUAL(xdcr_encoder_mark(enc, &east, PREV, SEQ, SEQ, COMMIT_US, &payload, &len, &err),
                    XDCR_ESTATE);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), 0);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_finish(enc, true, SEQ, &payload, &len, &err), XDCR_ESTATE);
    CU_ASSERT_EQUAL(xdcr_encoder_mark(enc, &east, PREV, SEQ, SEQ, COMMIT_US, &payload, &len, &err),
                    0);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_ESTATE);
    xdcr_encoder_free(enc);
    xdcr_encoder_free(NULL);
}

static void test_encoder_rejects_invalid_changes(void)
{
    static const xdcr_column_t noname_cols[] = {{"", "int", 23, -1, true}};
    xdcr_relation_t notable = {"public", "", 1, orders_cols};
    xdcr_relation_t noname = {"public", "t", 1, noname_cols};
    xdcr_relation_t badname = {"public", "t\xff", 1, orders_cols};
    xdcr_relation_t toowide = {"public", "t", 1665, orders_cols};
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_value_t vals[3] = {txt("1"), null_v, null_v};
    xdcr_value_t unch[3] = {txt("1"), unchanged_v, null_v};
    xdcr_value_t odd[3] = {txt("1"), {(xdcr_val_kind_t)9, 0, NULL}, null_v};
    xdcr_change_t ch;
    xdcr_error_t err;
    const uint32_t keys[1] = {1};
    const xdcr_relation_t *rels[1] = {&items};

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, COMMIT_US, 0, &err), 0);
    ch = row(XDCR_OP_INSERT, 5, NULL, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), 0);
    /* ordinals must increase */
    ch = row(XDCR_OP_INSERT, 5, NULL, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    /* values that do not fit the op */
    ch = row(XDCR_OP_INSERT, 6, vals, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_INSERT, 6, NULL, NULL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_DELETE, 6, NULL, NULL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_DELETE, 6, vals, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_UPDATE, 6, NULL, NULL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    /* unchanged TOAST only in new values of an update */
    ch = row(XDCR_OP_INSERT, 6, NULL, unch);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "TOAST"));
    ch = row(XDCR_OP_UPDATE, 6, unch, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row(XDCR_OP_UPDATE, 6, NULL, odd);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    /* bad relations */
    ch = row(XDCR_OP_INSERT, 6, NULL, vals);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, NULL, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, &notable, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, &noname, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, &badname, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 2, &toowide, &ch, &err), XDCR_EINVAL);
    /* truncate goes through its own function; unknown ops are refused */
    ch = row(XDCR_OP_TRUNCATE, 6, NULL, NULL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    ch = row((xdcr_op_t)'X', 6, NULL, NULL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 1, &items, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_add_truncate(enc, 6, 0, keys, rels, false, false, &err),
                    XDCR_EINVAL);
    /* logical messages need a prefix and content bytes */
    ch = logical_msg(6, NULL, "x", 1);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), XDCR_EINVAL);
    ch = logical_msg(6, "p", NULL, 1);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), XDCR_EINVAL);
    ch = logical_msg(6, "p\xff", "x", 1);
    CU_ASSERT_EQUAL(xdcr_encoder_add_change(enc, 0, NULL, &ch, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_nchanges(enc), 1);
    xdcr_encoder_free(enc);
}

static void test_encoder_rejects_invalid_source_and_positions(void)
{
    xdcr_encoder_t *enc = xdcr_encoder_new();
    xdcr_source_t bad_origin = {"ea st", 1, 1}, bad_tli = {"east", 1, 0};
    xdcr_error_t err;
    const char *payload;
    size_t len;

    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, NULL, CLSN, 0, 1, COMMIT_US, 0, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &bad_origin, CLSN, 0, 1, COMMIT_US, 0, &err),
                    XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "origin"));
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &bad_tli, CLSN, 0, 1, COMMIT_US, 0, &err),
                    XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_txn_begin(enc, &east, 0, 0, 1, COMMIT_US, 0, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(
        xdcr_encoder_txn_begin(enc, &east, CLSN, 0, 1, INT64_C(253402300800000000), 0, &err),
        XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_mark(enc, &bad_origin, 0, SEQ, SEQ, 0, &payload, &len, &err),
                    XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_encoder_mark(enc, &east, PREV, SEQ, SEQ, INT64_MIN, &payload, &len, &err),
                    XDCR_EINVAL);
    xdcr_encoder_free(enc);
}

/* ---- headers -------------------------------------------------------------------------------- */

static void test_headers_fill_gives_origin_seq_format_crc_and_type(void)
{
    xdcr_headers_t h;
    char want_crc[9];

    xdcr_headers_fill(&h, &east, XDCR_MSG_TXN, UINT64_C(0x16B374D848), golden_txn,
                      strlen(golden_txn));
    CU_ASSERT_STRING_EQUAL(h.origin, "east");
    CU_ASSERT_STRING_EQUAL(h.seq, "16/B374D848");
    CU_ASSERT_STRING_EQUAL(h.format, "1");
    CU_ASSERT_STRING_EQUAL(h.type, "txn");
    snprintf(want_crc, sizeof(want_crc), "%08" PRIx32,
             xdcr_crc32c(0, golden_txn, strlen(golden_txn)));
    CU_ASSERT_STRING_EQUAL(h.crc, want_crc);
    CU_ASSERT_EQUAL(strlen(h.crc), 8);

    xdcr_headers_fill(&h, &east, XDCR_MSG_MARK, SEQ, "123456789", 9);
    CU_ASSERT_STRING_EQUAL(h.crc, "e3069283");
    CU_ASSERT_STRING_EQUAL(h.type, "mark");
    CU_ASSERT_STRING_EQUAL(h.seq, "0/16B3748");
}

static void test_headers_verify_accepts_filled_headers(void)
{
    xdcr_headers_t h;
    xdcr_error_t err;

    xdcr_headers_fill(&h, &east, XDCR_MSG_TXN, SEQ, golden_txn, strlen(golden_txn));
    CU_ASSERT_EQUAL(xdcr_headers_verify(h.format, strlen(h.format), h.crc, strlen(h.crc),
                                        golden_txn, strlen(golden_txn), &err),
                    0);
    /* header values are not NUL-terminated on the wire */
    CU_ASSERT_EQUAL(xdcr_headers_verify("1xx", 1, "E3069283zz", 8, "123456789", 9, &err), 0);
    xdcr_headers_fill(&h, &east, XDCR_MSG_MARK, SEQ, NULL, 0);
    CU_ASSERT_EQUAL(xdcr_headers_verify(h.format, 1, h.crc, 8, NULL, 0, &err), 0);
}

static void test_headers_verify_rejects_crc_mismatch(void)
{
    xdcr_headers_t h;
    xdcr_error_t err;
    char copy[sizeof(golden_txn)];

    memcpy(copy, golden_txn, sizeof(copy));
    xdcr_headers_fill(&h, &east, XDCR_MSG_TXN, SEQ, copy, strlen(copy));
    copy[100] ^= 1; /* one flipped bit */
    CU_ASSERT_EQUAL(xdcr_headers_verify(h.format, 1, h.crc, 8, copy, strlen(copy), &err),
                    XDCR_ECRC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, h.crc));
    CU_ASSERT_EQUAL(xdcr_headers_verify(h.format, 1, h.crc, 8, copy, strlen(copy) - 1, &err),
                    XDCR_ECRC);
}

static void test_headers_verify_rejects_unknown_version_before_crc(void)
{
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_headers_verify("2", 1, "00000000", 8, "x", 1, &err), XDCR_EVERSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "version 2"));
    CU_ASSERT_EQUAL(xdcr_headers_verify("0", 1, "00000000", 8, "x", 1, &err), XDCR_EVERSION);
    CU_ASSERT_EQUAL(xdcr_headers_verify("10", 2, NULL, 0, "x", 1, &err), XDCR_EVERSION);
}

static void test_headers_verify_rejects_missing_or_malformed_headers(void)
{
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_headers_verify(NULL, 0, "e3069283", 8, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1", 1, NULL, 0, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("", 0, "e3069283", 8, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("v1", 2, "e3069283", 8, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1.0", 3, "e3069283", 8, "123456789", 9, &err),
                    XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1", 1, "e306928", 7, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1", 1, "e306928g", 8, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1", 1, "0xe30692", 8, "123456789", 9, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(xdcr_headers_verify("1\n", 2, "e3069283", 8, "123456789", 9, &err),
                    XDCR_EPARSE);
    CU_ASSERT_PTR_NULL(strchr(err.message, '\n'));
}

/* ---- decoder: malformed input --------------------------------------------------------------- */

/* A small valid message; each malformed case below replaces one piece of it. */
static const char base_txn[] =
    "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"7301234567890123456\","
    "\"timeline\":1,\"prev\":\"0/16B2F10\",\"commit_lsn\":\"0/16B3718\",\"seq\":\"0/16B3748\","
    "\"xid\":734,"
    "\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":0,\"last\":true,\"changes\":["
    "{\"ord\":0,\"op\":\"I\",\"r\":0,\"new\":[\"1\",\"a\",null]},"
    "{\"ord\":1,\"op\":\"U\",\"r\":0,\"old\":[\"1\",null,null],\"new\":[\"1\",null,null],"
    "\"unchanged\":[2]},"
    "{\"ord\":2,\"op\":\"D\",\"r\":0,\"old\":[\"1\",null,null]},"
    "{\"ord\":3,\"op\":\"T\",\"rels\":[0],\"cascade\":false,\"restart_identity\":false},"
    "{\"ord\":4,\"op\":\"M\",\"prefix\":\"app\",\"content\":\"aGVsbG8=\"}],"
    "\"relations\":[{\"schema\":\"public\",\"table\":\"items\",\"columns\":["
    "{\"name\":\"id\",\"type\":\"bigint\",\"oid\":20,\"typmod\":-1,\"key\":true},"
    "{\"name\":\"name\",\"type\":\"text\",\"oid\":25,\"typmod\":-1,\"key\":false},"
    "{\"name\":\"note\",\"type\":\"text\",\"oid\":25,\"typmod\":-1,\"key\":false}]}]}";

typedef struct bad_case {
    const char *name;
    const char *from; /* replaced in base_txn (first occurrence); NULL: use `to` as the payload */
    const char *to;
    int code;
    const char *says; /* expected in the error message */
} bad_case_t;

/* ten valid column objects, each followed by a comma (an error path past one digit) */
#define ONE_COLUMN "{\"name\":\"c\",\"type\":\"integer\",\"oid\":23,\"typmod\":-1,\"key\":false},"
#define TEN_COLUMNS                                                                                \
    ONE_COLUMN ONE_COLUMN ONE_COLUMN ONE_COLUMN ONE_COLUMN ONE_COLUMN ONE_COLUMN ONE_COLUMN        \
        ONE_COLUMN ONE_COLUMN

static const bad_case_t bad_cases[] = {
    {"empty payload", NULL, "", XDCR_EPARSE, "malformed JSON"},
    {"truncated JSON", NULL, "{\"v\":1,\"type\":\"txn\"", XDCR_EPARSE, "malformed JSON"},
    {"not an object", NULL, "[1,2]", XDCR_EPARSE, "must be a JSON object"},
    {"trailing garbage", "]}]}", "]}]}x", XDCR_EPARSE, "malformed JSON"},
    {"two objects", "]}]}", "]}]}{}", XDCR_EPARSE, "malformed JSON"},
    {"invalid UTF-8 in a string", "\"a\",null", "\"a\xff\",null", XDCR_EPARSE, "malformed JSON"},
    {"overlong UTF-8", "\"a\",null", "\"\xc0\xaf\",null", XDCR_EPARSE, "malformed JSON"},
    {"escaped lone surrogate", "\"a\",null", "\"\\ud800\",null", XDCR_EPARSE, "malformed JSON"},
    {"raw control character in a string", "\"a\",null", "\"a\tb\",null", XDCR_EPARSE,
     "malformed JSON"},
    {"escaped NUL in a value", "\"a\",null", "\"a\\u0000b\",null", XDCR_EPARSE,
     "changes[0]: new[1] (column \"name\") contains a NUL"},
    {"escaped NUL in a table name", "\"items\"", "\"it\\u0000ems\"", XDCR_EPARSE,
     "relations[0]: field \"table\" contains a NUL"},
    {"escaped NUL in a prefix", "\"app\"", "\"a\\u0000\"", XDCR_EPARSE,
     "\"prefix\" contains a NUL"},
    {"escaped NUL in the origin", "\"east\"", "\"ea\\u0000\"", XDCR_EPARSE,
     "\"origin\" contains a NUL"},
    {"duplicate key", "\"xid\":734,", "\"xid\":734,\"xid\":735,", XDCR_EPARSE, "duplicate"},
    {"huge integer", "\"xid\":734", "\"xid\":99999999999999999999999", XDCR_EPARSE,
     "malformed JSON"},
    {"huge real", "\"xid\":734", "\"xid\":1e999", XDCR_EPARSE, "malformed JSON"},
    {"unknown version", "\"v\":1", "\"v\":2", XDCR_EVERSION, "version 2"},
    {"unknown version with another shape", NULL, "{\"v\":3,\"whatever\":[]}", XDCR_EVERSION,
     "version 3"},
    {"version as string", "\"v\":1", "\"v\":\"1\"", XDCR_EPARSE, "\"v\" must be an integer"},
    {"version as real", "\"v\":1", "\"v\":1.0", XDCR_EPARSE, "\"v\" must be an integer"},
    {"missing version", "\"v\":1,", "", XDCR_EPARSE, "missing field \"v\""},
    {"unknown type", "\"type\":\"txn\"", "\"type\":\"ddl\"", XDCR_EPARSE, "unknown message type"},
    {"missing type", "\"type\":\"txn\",", "", XDCR_EPARSE, "missing field \"type\""},
    {"invalid origin", "\"east\"", "\"ea st\"", XDCR_EPARSE, "invalid origin name"},
    {"empty origin", "\"east\"", "\"\"", XDCR_EPARSE, "\"origin\" is empty"},
    {"origin too long", "\"east\"",
     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", XDCR_EPARSE,
     "invalid origin name"},
    {"sysid as number", "\"7301234567890123456\"", "7301234567890123456", XDCR_EPARSE,
     "\"sysid\" must be a string"},
    {"sysid overflow", "\"7301234567890123456\"", "\"18446744073709551616\"", XDCR_EPARSE,
     "\"sysid\""},
    {"sysid with sign", "\"7301234567890123456\"", "\"-1\"", XDCR_EPARSE, "\"sysid\""},
    {"sysid with leading zero", "\"7301234567890123456\"", "\"07\"", XDCR_EPARSE, "\"sysid\""},
    {"timeline zero", "\"timeline\":1", "\"timeline\":0", XDCR_EPARSE, "\"timeline\" is 0"},
    {"timeline above 32 bits", "\"timeline\":1", "\"timeline\":4294967296", XDCR_EPARSE,
     "\"timeline\""},
    {"timeline negative", "\"timeline\":1", "\"timeline\":-1", XDCR_EPARSE, "\"timeline\""},
    {"seq not an LSN", "\"0/16B3748\"", "\"16B3748\"", XDCR_EPARSE, "field \"seq\""},
    {"seq zero", "\"0/16B3748\"", "\"0/0\"", XDCR_EPARSE,
     "field \"seq\" 0/0 is not above field \"commit_lsn\" 0/16B3718"},
    {"seq with spaces", "\"0/16B3748\"", "\" 0/16B3748\"", XDCR_EPARSE, "field \"seq\""},
    {"seq equal to commit_lsn", "\"0/16B3748\"", "\"0/16B3718\"", XDCR_EPARSE,
     "field \"seq\" 0/16B3718 is not above field \"commit_lsn\" 0/16B3718"},
    {"seq below commit_lsn", "\"0/16B3748\"", "\"0/16B3700\"", XDCR_EPARSE, "is not above"},
    {"seq missing on the last part", "\"seq\":\"0/16B3748\",", "", XDCR_EPARSE,
     "missing field \"seq\""},
    {"seq on a part that is not the last", "\"last\":true", "\"last\":false", XDCR_EPARSE,
     "a part that is not the last has no field \"seq\""},
    {"seq as number", "\"0/16B3748\"", "23803720", XDCR_EPARSE, "\"seq\" must be a string"},
    {"missing commit_lsn", "\"commit_lsn\":\"0/16B3718\",", "", XDCR_EPARSE,
     "missing field \"commit_lsn\""},
    {"commit_lsn zero", "\"0/16B3718\"", "\"0/0\"", XDCR_EPARSE, "\"commit_lsn\" is 0/0"},
    {"commit_lsn not an LSN", "\"0/16B3718\"", "\"0-16B3718\"", XDCR_EPARSE,
     "field \"commit_lsn\""},
    {"commit_lsn as null", "\"0/16B3718\"", "null", XDCR_EPARSE, "\"commit_lsn\" must be a string"},
    {"prev zero", "\"0/16B2F10\"", "\"0/0\"", XDCR_EPARSE,
     "field \"prev\" is 0/0 (a stream start is written by leaving it out)"},
    {"prev not an LSN", "\"0/16B2F10\"", "\"0/16B2F10/\"", XDCR_EPARSE, "field \"prev\""},
    {"prev as null", "\"0/16B2F10\"", "null", XDCR_EPARSE, "\"prev\" must be a string"},
    {"prev above commit_lsn", "\"0/16B2F10\"", "\"0/16B3719\"", XDCR_EPARSE,
     "field \"prev\" 0/16B3719 is above field \"commit_lsn\" 0/16B3718"},
    {"xid negative", "\"xid\":734", "\"xid\":-1", XDCR_EPARSE, "\"xid\""},
    {"xid above 32 bits", "\"xid\":734", "\"xid\":4294967296", XDCR_EPARSE, "\"xid\""},
    {"commit_time month 13", "2026-11-22T", "2026-13-22T", XDCR_EPARSE, "\"commit_time\""},
    {"commit_time without zone", "57.123456Z", "57.123456", XDCR_EPARSE, "\"commit_time\""},
    {"commit_time as number", "\"2026-11-22T04:07:57.123456Z\"", "1795320477", XDCR_EPARSE,
     "\"commit_time\" must be a string"},
    {"part negative", "\"part\":0", "\"part\":-1", XDCR_EPARSE, "\"part\""},
    {"missing part", "\"part\":0,", "", XDCR_EPARSE, "missing field \"part\""},
    {"last as integer", "\"last\":true", "\"last\":1", XDCR_EPARSE, "\"last\" must be a boolean"},
    {"changes not an array", NULL,
     "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,"
     "\"commit_lsn\":\"0/1\",\"seq\":\"0/"
     "2\",\"xid\":1,\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":0,\"last\":true,"
     "\"changes\":{},\"relations\":[]}",
     XDCR_EPARSE, "field \"changes\" must be an array, not an object"},
    {"missing relations", ",\"relations\":[", ",\"relationz\":[", XDCR_EPARSE,
     "missing field \"relations\""},
    {"change not an object", "{\"ord\":0,\"op\":\"I\",\"r\":0,\"new\":[\"1\",\"a\",null]}", "7",
     XDCR_EPARSE, "changes[0]: must be an object"},
    {"missing ord", "\"ord\":0,", "", XDCR_EPARSE, "changes[0]: missing field \"ord\""},
    {"ord not increasing", "\"ord\":2", "\"ord\":1", XDCR_EPARSE, "changes[2]: ord 1"},
    {"unknown op", "\"op\":\"I\"", "\"op\":\"X\"", XDCR_EPARSE, "changes[0]: unknown op"},
    {"op too long", "\"op\":\"I\"", "\"op\":\"II\"", XDCR_EPARSE, "unknown op"},
    {"op empty", "\"op\":\"I\"", "\"op\":\"\"", XDCR_EPARSE, "\"op\" is empty"},
    {"relation index out of range", "\"r\":0", "\"r\":1", XDCR_EPARSE,
     "changes[0]: field \"r\" is 1, out of range"},
    {"relation index negative", "\"r\":0", "\"r\":-1", XDCR_EPARSE, "out of range"},
    {"relation index as string", "\"r\":0", "\"r\":\"0\"", XDCR_EPARSE, "\"r\" must be an integer"},
    {"missing relation index", "\"r\":0,", "", XDCR_EPARSE, "missing field \"r\""},
    {"too few values", "[\"1\",\"a\",null]", "[\"1\",\"a\"]", XDCR_EPARSE,
     "\"new\" has 2 values but relation \"public\".\"items\" has 3 columns"},
    {"too many values", "[\"1\",\"a\",null]", "[\"1\",\"a\",null,null]", XDCR_EPARSE,
     "has 4 values"},
    {"value as number", "[\"1\",\"a\",null]", "[1,\"a\",null]", XDCR_EPARSE,
     "new[0] (column \"id\") must be a string or null"},
    {"value as object", "[\"1\",\"a\",null]", "[\"1\",{},null]", XDCR_EPARSE,
     "must be a string or null"},
    {"insert without new", "\"r\":0,\"new\":[\"1\",\"a\",null]", "\"r\":0", XDCR_EPARSE,
     "changes[0]: missing field \"new\""},
    {"insert with old", "\"r\":0,\"new\":[\"1\",\"a\",null]",
     "\"r\":0,\"old\":[\"1\",\"a\",null],\"new\":[\"1\",\"a\",null]", XDCR_EPARSE,
     "an insert has no field \"old\""},
    {"delete without old", "\"op\":\"D\",\"r\":0,\"old\"", "\"op\":\"D\",\"r\":0,\"olt\"",
     XDCR_EPARSE, "changes[2]: missing field \"old\""},
    {"delete with new", "\"op\":\"D\",\"r\":0,\"old\"", "\"op\":\"D\",\"r\":0,\"new\":[],\"old\"",
     XDCR_EPARSE, "a delete has no field \"new\""},
    {"unchanged on insert", "\"new\":[\"1\",\"a\",null]}",
     "\"new\":[\"1\",\"a\",null],"
     "\"unchanged\":[2]}",
     XDCR_EPARSE, "only an update"},
    {"unchanged out of range", "\"unchanged\":[2]", "\"unchanged\":[3]", XDCR_EPARSE,
     "changes[1]: unchanged[0] is 3, out of range"},
    {"unchanged negative", "\"unchanged\":[2]", "\"unchanged\":[-1]", XDCR_EPARSE, "out of range"},
    {"unchanged pointing at a value", "\"unchanged\":[2]", "\"unchanged\":[0]", XDCR_EPARSE,
     "not null"},
    {"unchanged listed twice", "\"unchanged\":[2]", "\"unchanged\":[2,2]", XDCR_EPARSE,
     "already listed"},
    {"unchanged not an array", "\"unchanged\":[2]", "\"unchanged\":2", XDCR_EPARSE,
     "\"unchanged\" must be an array"},
    {"unchanged as string", "\"unchanged\":[2]", "\"unchanged\":[\"2\"]", XDCR_EPARSE,
     "unchanged[0] must be an integer"},
    {"truncate without relations", "\"rels\":[0]", "\"rels\":[]", XDCR_EPARSE,
     "changes[3]: field \"rels\" has 0 relations"},
    {"truncate relation out of range", "\"rels\":[0]", "\"rels\":[0,1]", XDCR_EPARSE,
     "changes[3]: rels[1] is 1, out of range"},
    {"truncate without cascade", "\"cascade\":false,", "", XDCR_EPARSE,
     "missing field \"cascade\""},
    {"message content not base64", "\"aGVsbG8=\"", "\"aGVsbG8\"", XDCR_EPARSE, "base64"},
    {"message content with bad character", "\"aGVsbG8=\"", "\"aGVs*G8=\"", XDCR_EPARSE, "base64"},
    {"message content with padding inside", "\"aGVsbG8=\"", "\"aG=sbG8=\"", XDCR_EPARSE, "base64"},
    {"message content not canonical", "\"aGVsbG8=\"", "\"aGVsbG9=\"", XDCR_EPARSE, "base64"},
    {"message without prefix", "\"prefix\":\"app\",", "", XDCR_EPARSE, "missing field \"prefix\""},
    {"relation not an object", "\"relations\":[{", "\"relations\":[7,{", XDCR_EPARSE,
     "relations[0]: must be an object"},
    {"empty schema name", "\"public\"", "\"\"", XDCR_EPARSE,
     "relations[0]: field \"schema\" is empty"},
    {"empty table name", "\"items\"", "\"\"", XDCR_EPARSE, "field \"table\" is empty"},
    {"column not an object", "\"columns\":[", "\"columns\":[1,", XDCR_EPARSE,
     "relations[0].columns[0]: must be an object"},
    {"empty column name", "\"name\":\"id\"", "\"name\":\"\"", XDCR_EPARSE,
     "relations[0].columns[0]: field \"name\" is empty"},
    {"eleventh column not an object", "\"columns\":[", "\"columns\":[" TEN_COLUMNS "1,",
     XDCR_EPARSE, "relations[0].columns[10]: must be an object"},
    {"missing column type", "\"type\":\"bigint\",", "", XDCR_EPARSE, "missing field \"type\""},
    {"typmod out of range", "\"typmod\":-1", "\"typmod\":2147483648", XDCR_EPARSE, "\"typmod\""},
    {"oid negative", "\"oid\":20", "\"oid\":-20", XDCR_EPARSE, "\"oid\""},
    {"key as string", "\"key\":true", "\"key\":\"true\"", XDCR_EPARSE, "\"key\" must be a boolean"},
    {"mark with changes", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,\"seq\":\"0/"
     "1\","
     "\"wal_lsn\":\"0/2\",\"time\":\"2026-11-22T04:07:57.123456Z\",\"changes\":[]}",
     XDCR_EPARSE, "a mark has no changes"},
    {"mark without wal_lsn", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,\"seq\":\"0/"
     "1\","
     "\"time\":\"2026-11-22T04:07:57.123456Z\"}",
     XDCR_EPARSE, "missing field \"wal_lsn\""},
    {"mark with bad time", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,\"seq\":\"0/"
     "1\","
     "\"wal_lsn\":\"0/2\",\"time\":\"2026-11-22 04:07:57.123456Z\"}",
     XDCR_EPARSE, "field \"time\""},
    {"mark without seq", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,"
     "\"wal_lsn\":\"0/2\",\"time\":\"2026-11-22T04:07:57.123456Z\"}",
     XDCR_EPARSE, "missing field \"seq\""},
    {"mark with prev above seq", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,"
     "\"prev\":\"0/2\",\"seq\":\"0/1\",\"wal_lsn\":\"0/"
     "2\",\"time\":\"2026-11-22T04:07:57.123456Z\"}",
     XDCR_EPARSE, "field \"prev\" 0/2 is above field \"seq\" 0/1"},
    {"mark with prev zero", NULL,
     "{\"v\":1,\"type\":\"mark\",\"origin\":\"east\",\"sysid\":\"1\",\"timeline\":1,"
     "\"prev\":\"0/0\",\"seq\":\"0/1\",\"wal_lsn\":\"0/"
     "2\",\"time\":\"2026-11-22T04:07:57.123456Z\"}",
     XDCR_EPARSE, "field \"prev\" is 0/0"},
};

/* Build the payload of a case into buf; returns its length. */
static size_t build_case(const bad_case_t *c, char *buf, size_t cap)
{
    const char *at;
    size_t pre, n;

    if (c->from == NULL) {
        n = strlen(c->to);
        memcpy(buf, c->to, n);
        return n;
    }
    at = strstr(base_txn, c->from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    pre = (size_t)(at - base_txn);
    n = (size_t)snprintf(buf, cap, "%.*s%s%s", (int)pre, base_txn, c->to, at + strlen(c->from));
    CU_ASSERT_FATAL(n < cap);
    return n;
}

static void test_decoder_accepts_the_base_of_the_malformed_cases(void)
{
    xdcr_message_free(decode_ok(base_txn, strlen(base_txn)));
}

static void test_decoder_rejects_each_malformed_payload_with_a_clear_error(void)
{
    char buf[4096];

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        size_t n = build_case(c, buf, sizeof(buf));
        xdcr_message_t *m = (xdcr_message_t *)&m; /* must be reset to NULL */
        xdcr_error_t err = {0};
        int rc = xdcr_message_decode(buf, n, &m, &err);

        if (rc != c->code || strstr(err.message, c->says) == NULL)
            fprintf(stderr, "\ncase \"%s\": rc %d (want %d), message: %s\n", c->name, rc, c->code,
                    err.message);
        CU_ASSERT_EQUAL(rc, c->code);
        CU_ASSERT_EQUAL(err.code, c->code);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, c->says));
        CU_ASSERT_PTR_NULL(m);
        xdcr_message_free(m);
    }
}

static void test_decoder_rejects_raw_nul_bytes(void)
{
    char buf[sizeof(base_txn)];
    xdcr_message_t *m = NULL;
    xdcr_error_t err;
    const char *at = strstr(base_txn, "\"a\"");

    memcpy(buf, base_txn, sizeof(buf));
    buf[at - base_txn + 1] = '\0'; /* inside a string */
    CU_ASSERT_EQUAL(xdcr_message_decode(buf, sizeof(buf) - 1, &m, &err), XDCR_EPARSE);
    memcpy(buf, base_txn, sizeof(buf));
    CU_ASSERT_EQUAL(xdcr_message_decode(buf, sizeof(buf), &m, &err), XDCR_EPARSE); /* NUL after */
    CU_ASSERT_PTR_NULL(m);
}

static void test_decoder_rejects_deep_nesting_without_crashing(void)
{
    size_t depth = 100000, n = 0;
    char *buf = malloc(depth * 2 + 64);
    xdcr_message_t *m = NULL;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    n += (size_t)sprintf(buf, "{\"v\":1,\"x\":");
    memset(buf + n, '[', depth);
    n += depth;
    memset(buf + n, ']', depth);
    n += depth;
    buf[n++] = '}';
    CU_ASSERT_EQUAL(xdcr_message_decode(buf, n, &m, &err), XDCR_EPARSE);
    CU_ASSERT_PTR_NULL(m);
    free(buf);
}

static void test_decoder_rejects_relation_wider_than_postgresql_allows(void)
{
    size_t cap = 1700 * 80 + 1024, n;
    char *buf = malloc(cap);
    xdcr_message_t *m = NULL;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    n = (size_t)snprintf(buf, cap,
                         "{\"v\":1,\"type\":\"txn\",\"origin\":\"east\",\"sysid\":\"1\","
                         "\"timeline\":1,\"commit_lsn\":\"0/1\",\"seq\":\"0/2\",\"xid\":1,"
                         "\"commit_time\":\"2026-11-22T04:07:57.123456Z\",\"part\":0,"
                         "\"last\":true,\"changes\":[],\"relations\":[{\"schema\":\"s\","
                         "\"table\":\"t\",\"columns\":[");
    for (int i = 0; i < 1665; i++)
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s{\"name\":\"c%d\",\"type\":\"int\",\"oid\":23,\"typmod\":-1,"
                              "\"key\":false}",
                              i ? "," : "", i);
    n += (size_t)snprintf(buf + n, cap - n, "]}]}");
    CU_ASSERT_EQUAL(xdcr_message_decode(buf, n, &m, &err), XDCR_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "1665 columns"));
    free(buf);
}

static void test_decoder_rejects_every_truncation_of_a_valid_message(void)
{
    size_t len = strlen(golden_txn);

    for (size_t n = 0; n < len; n++) {
        xdcr_message_t *m = NULL;
        xdcr_error_t err;
        char *copy = malloc(n + 1); /* exact size so ASan sees any overread */

        CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
        memcpy(copy, golden_txn, n);
        CU_ASSERT_EQUAL(xdcr_message_decode(n ? copy : NULL, n, &m, &err), XDCR_EPARSE);
        CU_ASSERT_PTR_NULL(m);
        free(copy);
    }
}

/* Every single-byte change of a valid message decodes or fails cleanly (ASan/valgrind watch). */
static void test_decoder_survives_every_single_byte_corruption(void)
{
    static const char subst[] = {'0', '9', '"', '\\', '{', ']', ',', 'x', '\0', '\x80'};
    size_t len = strlen(golden_txn), ok = 0;
    char *copy = malloc(len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(subst); k++) {
            xdcr_message_t *m = NULL;
            xdcr_error_t err;
            int rc;

            memcpy(copy, golden_txn, len);
            copy[i] = subst[k];
            rc = xdcr_message_decode(copy, len, &m, &err);
            CU_ASSERT_TRUE(rc == 0 || rc == XDCR_EPARSE || rc == XDCR_EVERSION);
            CU_ASSERT_TRUE((rc == 0) == (m != NULL));
            if (rc == 0)
                ok++;
            xdcr_message_free(m);
        }
    }
    CU_ASSERT_TRUE(ok > 0); /* some substitutions keep it valid, e.g. digits in values */
    free(copy);
}

static void test_decoder_ignores_unknown_fields(void)
{
    char buf[4096];
    bad_case_t extra[] = {
        {"", "\"v\":1,", "\"v\":1,\"future\":{\"x\":[1,2.5,null]},", 0, ""},
        {"", "\"ord\":0,", "\"ord\":0,\"lsn\":\"0/1\",", 0, ""},
        {"", "\"key\":true", "\"key\":true,\"collation\":\"C\"", 0, ""},
        {"", "\"table\":\"items\"", "\"table\":\"items\",\"kind\":\"p\"", 0, ""},
    };

    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        size_t n = build_case(&extra[i], buf, sizeof(buf));
        xdcr_message_t *m = decode_ok(buf, n);
        CU_ASSERT_PTR_NOT_NULL(m);
        if (m != NULL)
            CU_ASSERT_EQUAL(m->nchanges, 5);
        xdcr_message_free(m);
    }
}

static void test_decoder_accepts_lower_case_lsn_and_empty_changes(void)
{
    const char *s = "{\"v\":1,\"type\":\"txn\",\"origin\":\"a\",\"sysid\":\"0\",\"timeline\":1,"
                    "\"prev\":\"ff/abcdef00\",\"commit_lsn\":\"ff/abcdef01\",\"xid\":0,"
                    "\"commit_time\":\"0001-01-01T00:00:00.000000Z\",\"part\":4294967295,"
                    "\"last\":false,\"changes\":[],\"relations\":[]}";
    xdcr_message_t *m = decode_ok(s, strlen(s));

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->commit_lsn, UINT64_C(0xffabcdef01));
    CU_ASSERT_EQUAL(m->prev_seq, UINT64_C(0xffabcdef00));
    CU_ASSERT_EQUAL(m->seq, 0);
    CU_ASSERT_FALSE(m->last);
    CU_ASSERT_EQUAL(m->src.sysid, 0);
    CU_ASSERT_EQUAL(m->part, UINT32_MAX);
    CU_ASSERT_EQUAL(m->commit_time_us, INT64_C(-62135596800000000));
    CU_ASSERT_EQUAL(m->nchanges, 0);
    CU_ASSERT_PTR_NULL(m->changes);
    CU_ASSERT_PTR_NULL(m->rels);
    xdcr_message_free(m);
    xdcr_message_free(NULL);
}

static void test_decoder_rejects_null_arguments(void)
{
    xdcr_message_t *m = NULL;
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_message_decode(golden_txn, strlen(golden_txn), NULL, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_message_decode(NULL, 5, &m, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_message_decode(NULL, 0, &m, &err), XDCR_EPARSE);
}

/* ---- time ----------------------------------------------------------------------------------- */

typedef struct time_case {
    const char *text;
    int64_t us;
} time_case_t;

static const time_case_t time_cases[] = {
    {"1970-01-01T00:00:00.000000Z", 0},
    {"1969-12-31T23:59:59.999999Z", -1},
    {"1970-01-01T00:00:00.000001Z", 1},
    {"2026-11-22T04:07:57.123456Z", COMMIT_US},
    {"1969-07-20T20:17:40.000000Z", INT64_C(-14182940000000)},
    {"1900-03-01T00:00:00.000000Z", INT64_C(-2203891200000000)},
    {"2000-02-29T00:00:00.000000Z", INT64_C(951782400000000)},
    {"1600-02-29T12:00:00.500000Z", INT64_C(-11670955199500000)},
    {"0001-01-01T00:00:00.000000Z", INT64_C(-62135596800000000)},
    {"9999-12-31T23:59:59.999999Z", INT64_C(253402300799999999)},
};

static void test_time_format_and_parse_known_instants_before_and_after_1970(void)
{
    for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
        char buf[32];
        int64_t us = 0;
        xdcr_error_t err;

        CU_ASSERT_PTR_EQUAL(xdcr_time_format_us(time_cases[i].us, buf, sizeof(buf)), buf);
        CU_ASSERT_STRING_EQUAL(buf, time_cases[i].text);
        CU_ASSERT_EQUAL(xdcr_time_parse_us(time_cases[i].text, &us, &err), 0);
        CU_ASSERT_EQUAL(us, time_cases[i].us);
    }
}

static void test_time_round_trips_across_the_whole_range(void)
{
    const int64_t lo = INT64_C(-62135596800000000), hi = INT64_C(253402300799999999);
    uint64_t x = 88172645463325252u;

    for (int i = 0; i < 200000; i++) {
        char buf[32];
        int64_t us, back = 0;
        xdcr_error_t err;

        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        us = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        CU_ASSERT_PTR_NOT_NULL_FATAL(xdcr_time_format_us(us, buf, sizeof(buf)));
        CU_ASSERT_EQUAL_FATAL(xdcr_time_parse_us(buf, &back, &err), 0);
        CU_ASSERT_EQUAL_FATAL(back, us);
    }
}

static void test_time_format_refuses_out_of_range_and_small_buffers(void)
{
    char buf[32];

    CU_ASSERT_PTR_NULL(xdcr_time_format_us(INT64_C(-62135596800000001), buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(xdcr_time_format_us(INT64_C(253402300800000000), buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(xdcr_time_format_us(INT64_MIN, buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(xdcr_time_format_us(INT64_MAX, buf, sizeof(buf)));
    CU_ASSERT_PTR_NULL(xdcr_time_format_us(0, buf, 27));
    CU_ASSERT_PTR_NOT_NULL(xdcr_time_format_us(0, buf, 28));
    CU_ASSERT_PTR_NULL(xdcr_time_format_us(0, NULL, 32));
}

static void test_time_parse_rejects_malformed_and_out_of_range_fields(void)
{
    static const char *const bad[] = {
        "",
        "2026-11-22T04:07:57Z",
        "2026-11-22T04:07:57.12345Z",
        "2026-11-22T04:07:57.1234567Z",
        "2026-11-22T04:07:57.123456",
        "2026-11-22T04:07:57.123456+00:00",
        "2026-11-22 04:07:57.123456Z",
        "2026-11-22t04:07:57.123456Z",
        "2026-11-22T04:07:57.123456z",
        "+026-11-22T04:07:57.123456Z",
        "2026-1-22T04:07:57.123456Z ",
        "2026-11-22T04:07:57.123456Z ",
        " 2026-11-22T04:07:57.123456Z",
        "2026-00-22T04:07:57.123456Z",
        "2026-13-22T04:07:57.123456Z",
        "2026-11-00T04:07:57.123456Z",
        "2026-11-31T04:07:57.123456Z",
        "2023-02-29T04:07:57.123456Z",
        "1900-02-29T04:07:57.123456Z",
        "2026-11-22T24:00:00.000000Z",
        "2026-11-22T04:60:57.123456Z",
        "2026-11-22T04:07:60.000000Z",
        "0000-01-01T00:00:00.000000Z",
        "2026-11-22T04:07:57.12345aZ",
        "2026-11-22T04:07:5\x01.123456Z",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 42;
        xdcr_error_t err = {0};
        int rc = xdcr_time_parse_us(bad[i], &us, &err);

        if (rc != XDCR_EPARSE)
            fprintf(stderr, "\naccepted bad time \"%s\"\n", bad[i]);
        CU_ASSERT_EQUAL(rc, XDCR_EPARSE);
        CU_ASSERT_EQUAL(us, 42);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "invalid time"));
    }
    CU_ASSERT_EQUAL(xdcr_time_parse_us(NULL, NULL, NULL), XDCR_EINVAL);
}

static void test_time_parse_accepts_leap_days_of_leap_years_only(void)
{
    int64_t us;
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_time_parse_us("2024-02-29T00:00:00.000000Z", &us, &err), 0);
    CU_ASSERT_EQUAL(xdcr_time_parse_us("2000-02-29T00:00:00.000000Z", &us, &err), 0);
    CU_ASSERT_EQUAL(xdcr_time_parse_us("0004-02-29T00:00:00.000000Z", &us, &err), 0);
    CU_ASSERT_EQUAL(xdcr_time_parse_us("2100-02-29T00:00:00.000000Z", &us, &err), XDCR_EPARSE);
}

/* ---- names ---------------------------------------------------------------------------------- */

static void test_origin_is_valid_accepts_only_short_safe_names(void)
{
    char long_name[80];

    CU_ASSERT_TRUE(xdcr_origin_is_valid("east"));
    CU_ASSERT_TRUE(xdcr_origin_is_valid("east-billing_2.x"));
    CU_ASSERT_TRUE(xdcr_origin_is_valid("A"));
    CU_ASSERT_FALSE(xdcr_origin_is_valid(""));
    CU_ASSERT_FALSE(xdcr_origin_is_valid(NULL));
    CU_ASSERT_FALSE(xdcr_origin_is_valid("east west"));
    CU_ASSERT_FALSE(xdcr_origin_is_valid("east/west"));
    CU_ASSERT_FALSE(xdcr_origin_is_valid("\"east\""));
    CU_ASSERT_FALSE(xdcr_origin_is_valid("\xc3\xa9st"));
    memset(long_name, 'a', sizeof(long_name));
    long_name[63] = '\0';
    CU_ASSERT_TRUE(xdcr_origin_is_valid(long_name));
    long_name[63] = 'a';
    long_name[64] = '\0';
    CU_ASSERT_FALSE(xdcr_origin_is_valid(long_name));
}

static void test_op_and_type_names_are_stable(void)
{
    CU_ASSERT_STRING_EQUAL(xdcr_op_name(XDCR_OP_INSERT), "insert");
    CU_ASSERT_STRING_EQUAL(xdcr_op_name(XDCR_OP_UPDATE), "update");
    CU_ASSERT_STRING_EQUAL(xdcr_op_name(XDCR_OP_DELETE), "delete");
    CU_ASSERT_STRING_EQUAL(xdcr_op_name(XDCR_OP_TRUNCATE), "truncate");
    CU_ASSERT_STRING_EQUAL(xdcr_op_name(XDCR_OP_MESSAGE), "message");
    CU_ASSERT_STRING_EQUAL(xdcr_op_name((xdcr_op_t)'Z'), "unknown");
    CU_ASSERT_STRING_EQUAL(xdcr_msg_type_name(XDCR_MSG_TXN), "txn");
    CU_ASSERT_STRING_EQUAL(xdcr_msg_type_name(XDCR_MSG_MARK), "mark");
    CU_ASSERT_STRING_EQUAL(xdcr_msg_type_name((xdcr_msg_type_t)0), "unknown");
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_encoder_writes_golden_txn_bytes),
        XDCR_TEST(test_encoder_writes_golden_mark_bytes),
        XDCR_TEST(test_encoder_writes_golden_split_part_bytes),
        XDCR_TEST(test_golden_split_parts_decode_commit_lsn_and_seq),
        XDCR_TEST(test_golden_txn_decodes_to_every_field),
        XDCR_TEST(test_golden_mark_decodes_to_every_field),
        XDCR_TEST(test_round_trip_keeps_nulls_empty_strings_and_text),
        XDCR_TEST(test_round_trip_keeps_unicode_and_escaped_characters),
        XDCR_TEST(test_encoder_escapes_control_characters_as_json_escapes),
        XDCR_TEST(test_round_trip_keeps_large_values),
        XDCR_TEST(test_round_trip_marks_unchanged_toast_only_in_new_values),
        XDCR_TEST(test_round_trip_keeps_binary_message_content_of_every_length),
        XDCR_TEST(test_round_trip_truncate_flags_and_relations),
        XDCR_TEST(test_round_trip_many_relations_written_once_each),
        XDCR_TEST(test_relation_redefined_mid_message_gets_a_new_entry),
        XDCR_TEST(test_split_parts_decode_in_order_with_own_relations),
        XDCR_TEST(test_encoder_size_counts_changes_and_relations),
        XDCR_TEST(test_mark_round_trip_keeps_positions_and_time),
        XDCR_TEST(test_round_trip_prev_absent_and_present),
        XDCR_TEST(test_split_part_with_largest_lsns_round_trips),
        XDCR_TEST(test_encoder_rejects_inconsistent_stream_positions),
        XDCR_TEST(test_encoder_rejects_invalid_utf8_naming_the_column),
        XDCR_TEST(test_encoder_rejects_nul_byte_in_value),
        XDCR_TEST(test_encoder_failed_change_leaves_message_unchanged),
        XDCR_TEST(test_encoder_many_failed_changes_on_new_relations_do_not_clog_the_map),
        XDCR_TEST(test_encoder_rejects_calls_out_of_order),
        XDCR_TEST(test_encoder_rejects_invalid_changes),
        XDCR_TEST(test_encoder_rejects_invalid_source_and_positions),
        XDCR_TEST(test_headers_fill_gives_origin_seq_format_crc_and_type),
        XDCR_TEST(test_headers_verify_accepts_filled_headers),
        XDCR_TEST(test_headers_verify_rejects_crc_mismatch),
        XDCR_TEST(test_headers_verify_rejects_unknown_version_before_crc),
        XDCR_TEST(test_headers_verify_rejects_missing_or_malformed_headers),
        XDCR_TEST(test_decoder_accepts_the_base_of_the_malformed_cases),
        XDCR_TEST(test_decoder_rejects_each_malformed_payload_with_a_clear_error),
        XDCR_TEST(test_decoder_rejects_raw_nul_bytes),
        XDCR_TEST(test_decoder_rejects_deep_nesting_without_crashing),
        XDCR_TEST(test_decoder_rejects_relation_wider_than_postgresql_allows),
        XDCR_TEST(test_decoder_rejects_every_truncation_of_a_valid_message),
        XDCR_TEST(test_decoder_survives_every_single_byte_corruption),
        XDCR_TEST(test_decoder_ignores_unknown_fields),
        XDCR_TEST(test_decoder_accepts_lower_case_lsn_and_empty_changes),
        XDCR_TEST(test_decoder_rejects_null_arguments),
        XDCR_TEST(test_time_format_and_parse_known_instants_before_and_after_1970),
        XDCR_TEST(test_time_round_trips_across_the_whole_range),
        XDCR_TEST(test_time_format_refuses_out_of_range_and_small_buffers),
        XDCR_TEST(test_time_parse_rejects_malformed_and_out_of_range_fields),
        XDCR_TEST(test_time_parse_accepts_leap_days_of_leap_years_only),
        XDCR_TEST(test_origin_is_valid_accepts_only_short_safe_names),
        XDCR_TEST(test_op_and_type_names_are_stable),
        XDCR_TEST_END,
    };
    return xdcr_test_run("event", cases);
}
