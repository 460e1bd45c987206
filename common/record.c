/*
 * record.c - the recorded message stream (see xdcr/record.h): one record per Kafka message,
 * length-prefixed and CRC-32C-checked, big-endian.
 */
#include "xdcr/record.h"

#include "xdcr/crc32c.h"

#include <string.h>

/* length + CRC, in front of the checked body */
#define PREFIX 8u

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t len)
{
    if (len > 0)
        memcpy(p, src, len);
    return p + len;
}

static size_t body_size(const xdcr_record_t *r)
{
    size_t n = 2 + r->topic_len + 4 + 8 + 8 + 2 + 4 + (r->payload != NULL ? r->payload_len : 0);

    for (size_t i = 0; i < r->nheaders && i < XDCR_RECORD_MAX_HEADERS; i++)
        n += 2 + r->headers[i].name_len + 4 +
             (r->headers[i].value != NULL ? r->headers[i].value_len : 0);
    return n;
}

size_t xdcr_record_size(const xdcr_record_t *r)
{
    return PREFIX + body_size(r);
}

size_t xdcr_record_encode(const xdcr_record_t *r, void *out, xdcr_error_t *err)
{
    size_t body = body_size(r);
    uint8_t *start = out, *p = start + PREFIX;

    if (r->nheaders > XDCR_RECORD_MAX_HEADERS) {
        xdcr_error_set(err, XDCR_ERANGE, false, "a record holds at most %d headers, not %zu",
                       XDCR_RECORD_MAX_HEADERS, r->nheaders);
        return 0;
    }
    if (r->topic_len > UINT16_MAX || body > XDCR_RECORD_MAX_LEN) {
        xdcr_error_set(err, XDCR_ERANGE, false,
                       "message too large to record (topic %zu bytes, record %zu bytes)",
                       r->topic_len, body);
        return 0;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name_len > UINT16_MAX) {
            xdcr_error_set(err, XDCR_ERANGE, false, "header name of %zu bytes is too long",
                           r->headers[i].name_len);
            return 0;
        }
    }
    p = put16(p, (uint16_t)r->topic_len);
    p = put_bytes(p, r->topic, r->topic_len);
    p = put32(p, (uint32_t)r->partition);
    p = put64(p, (uint64_t)r->offset);
    p = put64(p, (uint64_t)r->timestamp_ms);
    p = put16(p, (uint16_t)r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++) {
        const xdcr_record_header_t *h = &r->headers[i];

        p = put16(p, (uint16_t)h->name_len);
        p = put_bytes(p, h->name, h->name_len);
        p = put32(p, h->value != NULL ? (uint32_t)h->value_len : UINT32_MAX);
        if (h->value != NULL)
            p = put_bytes(p, h->value, h->value_len);
    }
    p = put32(p, r->payload != NULL ? (uint32_t)r->payload_len : UINT32_MAX);
    if (r->payload != NULL)
        p = put_bytes(p, r->payload, r->payload_len);
    put32(start, (uint32_t)body);
    put32(start + 4, xdcr_crc32c(0, start + PREFIX, body));
    return PREFIX + body;
}

bool xdcr_record_is_stream(const void *data, size_t len)
{
    return len >= XDCR_RECORD_MAGIC_LEN &&
           memcmp(data, XDCR_RECORD_MAGIC, XDCR_RECORD_MAGIC_LEN) == 0;
}

/* A bounds-checked reader over one record's body. */
typedef struct rd {
    const uint8_t *p, *end;
    bool short_read;
} rd_t;

static uint64_t get_n(rd_t *r, int n)
{
    uint64_t v = 0;

    if (r->end - r->p < n) {
        r->short_read = true;
        r->p = r->end;
        return 0;
    }
    for (int i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    return v;
}

/* len bytes, or NULL (and short_read) when fewer remain */
static const void *get_bytes(rd_t *r, size_t len)
{
    const void *v = r->p;

    if ((size_t)(r->end - r->p) < len) {
        r->short_read = true;
        r->p = r->end;
        return NULL;
    }
    r->p += len;
    return v;
}

/* A length field: -1 (all ones) for null */
static const void *get_sized(rd_t *r, size_t *len, bool *is_null)
{
    uint32_t n = (uint32_t)get_n(r, 4);

    *is_null = n == UINT32_MAX && !r->short_read;
    *len = *is_null ? 0 : n;
    return *is_null ? NULL : get_bytes(r, *len);
}

int64_t xdcr_record_decode(const void *data, size_t len, xdcr_record_t *r, xdcr_error_t *err)
{
    const uint8_t *d = data;
    uint32_t body, crc;
    rd_t b;
    bool is_null;

    memset(r, 0, sizeof(*r));
    if (len < PREFIX)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "truncated record: %zu bytes left, a record needs at least %u", len,
                              PREFIX);
    body = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    crc = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
    if (body > XDCR_RECORD_MAX_LEN)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "bad record length %u (more than the %u a record may have)", body,
                              XDCR_RECORD_MAX_LEN);
    if (body > len - PREFIX)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "truncated record: it needs %u bytes, %zu are left", body,
                              len - PREFIX);
    if (xdcr_crc32c(0, d + PREFIX, body) != crc)
        return xdcr_error_set(err, XDCR_EINVAL, false, "record CRC mismatch");
    b.p = d + PREFIX;
    b.end = b.p + body;
    b.short_read = false;
    r->topic_len = (size_t)get_n(&b, 2);
    r->topic = get_bytes(&b, r->topic_len);
    r->partition = (int32_t)(uint32_t)get_n(&b, 4);
    r->offset = (int64_t)get_n(&b, 8);
    r->timestamp_ms = (int64_t)get_n(&b, 8);
    r->nheaders = (size_t)get_n(&b, 2);
    if (r->nheaders > XDCR_RECORD_MAX_HEADERS)
        return xdcr_error_set(err, XDCR_EINVAL, false, "record with %zu headers (at most %d)",
                              r->nheaders, XDCR_RECORD_MAX_HEADERS);
    for (size_t i = 0; i < r->nheaders && !b.short_read; i++) {
        xdcr_record_header_t *h = &r->headers[i];

        h->name_len = (size_t)get_n(&b, 2);
        h->name = get_bytes(&b, h->name_len);
        h->value = get_sized(&b, &h->value_len, &is_null);
    }
    r->payload = get_sized(&b, &r->payload_len, &is_null);
    if (b.short_read)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "malformed record: its fields run past its length (%u bytes)", body);
    if (b.p != b.end)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "malformed record: %zu bytes after its payload",
                              (size_t)(b.end - b.p));
    if (r->partition < 0 || r->offset < 0)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "malformed record: partition %d, offset %lld", (int)r->partition,
                              (long long)r->offset);
    return (int64_t)(PREFIX + body);
}
