/*
 * test_record.c - unit tests for common/record.c (the recorded message stream): round trips with
 * every kind of field, the exact byte layout of a small record, and refusal of every truncation,
 * every single-byte corruption and every inconsistent length.
 */
#include "xdcr/crc32c.h"
#include "xdcr/record.h"
#include "xdcr_test.h"

#include <stdlib.h>
#include <string.h>

static xdcr_record_t sample(void)
{
    xdcr_record_t r;

    memset(&r, 0, sizeof(r));
    r.topic = "xdcr.east.changes";
    r.topic_len = strlen(r.topic);
    r.partition = 3;
    r.offset = 1234567890123LL;
    r.timestamp_ms = 1790000000000LL;
    r.nheaders = 3;
    r.headers[0] = (xdcr_record_header_t){"xdcr-origin", 11, "east", 4};
    r.headers[1] = (xdcr_record_header_t){"empty", 5, "", 0};
    r.headers[2] = (xdcr_record_header_t){"null", 4, NULL, 0};
    r.payload = "{\"v\":1}\0binary";
    r.payload_len = 14;
    return r;
}

static uint8_t *encode(const xdcr_record_t *r, size_t *len)
{
    xdcr_error_t err;
    size_t size = xdcr_record_size(r);
    uint8_t *buf = malloc(size);

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    *len = xdcr_record_encode(r, buf, &err);
    CU_ASSERT_EQUAL(*len, size);
    return buf;
}

static void test_record_round_trip(void)
{
    xdcr_record_t in = sample(), out;
    xdcr_error_t err;
    size_t len;
    uint8_t *buf = encode(&in, &len);

    CU_ASSERT_EQUAL(xdcr_record_decode(buf, len, &out, &err), (int64_t)len);
    CU_ASSERT_EQUAL(out.topic_len, in.topic_len);
    CU_ASSERT_NSTRING_EQUAL(out.topic, in.topic, in.topic_len);
    CU_ASSERT_EQUAL(out.partition, 3);
    CU_ASSERT_EQUAL(out.offset, 1234567890123LL);
    CU_ASSERT_EQUAL(out.timestamp_ms, 1790000000000LL);
    CU_ASSERT_EQUAL_FATAL(out.nheaders, 3);
    CU_ASSERT_NSTRING_EQUAL(out.headers[0].name, "xdcr-origin", 11);
    CU_ASSERT_EQUAL(out.headers[0].value_len, 4);
    CU_ASSERT_NSTRING_EQUAL(out.headers[0].value, "east", 4);
    CU_ASSERT_PTR_NOT_NULL(out.headers[1].value); /* empty is not null */
    CU_ASSERT_EQUAL(out.headers[1].value_len, 0);
    CU_ASSERT_PTR_NULL(out.headers[2].value);
    CU_ASSERT_EQUAL(out.payload_len, 14);
    CU_ASSERT_EQUAL(memcmp(out.payload, in.payload, 14), 0);
    free(buf);
}

static void test_record_null_payload_no_headers_unknown_time(void)
{
    xdcr_record_t in, out;
    xdcr_error_t err;
    size_t len;
    uint8_t *buf;

    memset(&in, 0, sizeof(in));
    in.topic = "t";
    in.topic_len = 1;
    in.timestamp_ms = -1;
    buf = encode(&in, &len);
    CU_ASSERT_EQUAL(xdcr_record_decode(buf, len, &out, &err), (int64_t)len);
    CU_ASSERT_PTR_NULL(out.payload);
    CU_ASSERT_EQUAL(out.nheaders, 0);
    CU_ASSERT_EQUAL(out.timestamp_ms, -1);
    CU_ASSERT_EQUAL(out.offset, 0);
    free(buf);
}

/* The layout of docs/message-format.md, byte for byte. */
static void test_record_layout(void)
{
    xdcr_record_t in;
    size_t len;
    uint8_t *buf;
    static const uint8_t body[] = {
        0,    1,    't',                                /* topic */
        0,    0,    0,    2,                            /* partition */
        0,    0,    0,    0,    0,    0,    0,    7,    /* offset */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* timestamp -1 */
        0,    1,                                        /* one header */
        0,    1,    'h',  0,    0,    0,    1,    'v',  /* h = v */
        0,    0,    0,    2,    'p',  'q'               /* payload */
    };

    memset(&in, 0, sizeof(in));
    in.topic = "t";
    in.topic_len = 1;
    in.partition = 2;
    in.offset = 7;
    in.timestamp_ms = -1;
    in.nheaders = 1;
    in.headers[0] = (xdcr_record_header_t){"h", 1, "v", 1};
    in.payload = "pq";
    in.payload_len = 2;
    buf = encode(&in, &len);
    CU_ASSERT_EQUAL_FATAL(len, 8 + sizeof(body));
    CU_ASSERT_EQUAL(buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], (int)sizeof(body));
    CU_ASSERT_EQUAL((uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 |
                        buf[7],
                    xdcr_crc32c(0, body, sizeof(body)));
    CU_ASSERT_EQUAL(memcmp(buf + 8, body, sizeof(body)), 0);
    free(buf);
}

static void test_record_every_truncation_refused(void)
{
    xdcr_record_t in = sample(), out;
    xdcr_error_t err;
    size_t len;
    uint8_t *buf = encode(&in, &len);

    for (size_t cut = 1; cut < len; cut++) {
        uint8_t *part = malloc(cut); /* exact size: ASan sees any read past it */

        memcpy(part, buf, cut);
        CU_ASSERT_EQUAL(xdcr_record_decode(part, cut, &out, &err), XDCR_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "truncated"));
        free(part);
    }
    free(buf);
}

static void test_record_every_corruption_refused(void)
{
    xdcr_record_t in = sample(), out;
    xdcr_error_t err;
    size_t len;
    uint8_t *buf = encode(&in, &len);

    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            CU_ASSERT(xdcr_record_decode(buf, len, &out, &err) < 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    CU_ASSERT_EQUAL(xdcr_record_decode(buf, len, &out, &err), (int64_t)len);
    free(buf);
}

/* Fields whose lengths disagree with the record's length, with a valid CRC over the body. */
static void test_record_inconsistent_lengths_refused(void)
{
    xdcr_record_t out;
    xdcr_error_t err;
    uint8_t buf[64];
    /* topic length 200 in a 40-byte body */
    uint8_t body[40] = {0, 200};
    uint32_t crc = xdcr_crc32c(0, body, sizeof(body));

    buf[0] = 0, buf[1] = 0, buf[2] = 0, buf[3] = sizeof(body);
    buf[4] = (uint8_t)(crc >> 24), buf[5] = (uint8_t)(crc >> 16), buf[6] = (uint8_t)(crc >> 8),
    buf[7] = (uint8_t)crc;
    memcpy(buf + 8, body, sizeof(body));
    CU_ASSERT_EQUAL(xdcr_record_decode(buf, 8 + sizeof(body), &out, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "run past"));

    /* a length field beyond the limit is refused before anything is read */
    buf[0] = 0xff;
    CU_ASSERT_EQUAL(xdcr_record_decode(buf, 8 + sizeof(body), &out, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "bad record length"));
}

static void test_record_trailing_bytes_refused(void)
{
    xdcr_record_t in = sample(), out;
    xdcr_error_t err;
    size_t len;
    uint8_t *buf = encode(&in, &len);
    uint8_t *longer = malloc(len + 1);
    uint32_t body = (uint32_t)(len - 8 + 1), crc;

    memcpy(longer, buf, len);
    longer[len] = 0;
    longer[0] = (uint8_t)(body >> 24), longer[1] = (uint8_t)(body >> 16),
    longer[2] = (uint8_t)(body >> 8), longer[3] = (uint8_t)body;
    crc = xdcr_crc32c(0, longer + 8, body);
    longer[4] = (uint8_t)(crc >> 24), longer[5] = (uint8_t)(crc >> 16),
    longer[6] = (uint8_t)(crc >> 8), longer[7] = (uint8_t)crc;
    CU_ASSERT_EQUAL(xdcr_record_decode(longer, len + 1, &out, &err), XDCR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "after its payload"));
    free(longer);
    free(buf);
}

static void test_record_limits(void)
{
    xdcr_record_t in = sample();
    xdcr_error_t err;
    uint8_t buf[256];

    in.nheaders = XDCR_RECORD_MAX_HEADERS + 1;
    CU_ASSERT_EQUAL(xdcr_record_encode(&in, buf, &err), 0);
    CU_ASSERT_EQUAL(err.code, XDCR_ERANGE);
    in = sample();
    in.topic_len = 70000;
    CU_ASSERT_EQUAL(xdcr_record_encode(&in, buf, &err), 0);
    CU_ASSERT_EQUAL(err.code, XDCR_ERANGE);
}

static void test_record_magic(void)
{
    CU_ASSERT_TRUE(xdcr_record_is_stream("XDCRREC1rest", 12));
    CU_ASSERT_TRUE(xdcr_record_is_stream("XDCRREC1", 8));
    CU_ASSERT_FALSE(xdcr_record_is_stream("XDCRREC", 7));
    CU_ASSERT_FALSE(xdcr_record_is_stream("{\"v\":1}\n", 8));
    CU_ASSERT_FALSE(xdcr_record_is_stream(NULL, 0));
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_record_round_trip),
        XDCR_TEST(test_record_null_payload_no_headers_unknown_time),
        XDCR_TEST(test_record_layout),
        XDCR_TEST(test_record_every_truncation_refused),
        XDCR_TEST(test_record_every_corruption_refused),
        XDCR_TEST(test_record_inconsistent_lengths_refused),
        XDCR_TEST(test_record_trailing_bytes_refused),
        XDCR_TEST(test_record_limits),
        XDCR_TEST(test_record_magic),
        XDCR_TEST_END,
    };

    return xdcr_test_run("record", cases);
}
