/*
 * event.c - the change-event model and its Kafka message codec, format version 1: a streaming
 * JSON encoder and a validating jansson decoder side by side, so the daemons cannot drift.
 * Pure: no I/O. The wire format is documented in docs/message-format.md.
 */
#include "xdcr/event.h"

#include "xdcr/crc32c.h"
#include "xdcr/json_lite.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits shared by encoder and decoder, so whatever one writes the other reads. */
#define MAX_COLUMNS 1664                  /* PostgreSQL's MaxTupleAttributeNumber */
#define MAX_CHANGES (UINT32_C(1) << 24)   /* changes in one message */
#define MAX_RELATIONS (UINT32_C(1) << 20) /* relations in one message, and in one TRUNCATE */

#define TIME_LEN 27 /* "2026-11-22T04:07:57.123456Z" */
#define US_PER_SEC INT64_C(1000000)
#define SECS_PER_DAY INT64_C(86400)
#define DAY_MIN INT64_C(-719162) /* 0001-01-01 */
#define DAY_END INT64_C(2932897) /* 10000-01-01, first day out of range */
#define TIME_MIN_US (DAY_MIN * SECS_PER_DAY * US_PER_SEC)
#define TIME_MAX_US (DAY_END * SECS_PER_DAY * US_PER_SEC - 1)

#define SHOW_MAX 48 /* bytes of untrusted input quoted in an error message */

/* ---- small helpers -------------------------------------------------------------------------- */

/* Copy untrusted bytes for an error message: bounded, non-printable bytes as '?'. */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t i, m = n < cap - 4 ? n : cap - 4;

    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (m < n) {
        memcpy(buf + m, "...", 3);
        m += 3;
    }
    buf[m] = '\0';
    return buf;
}

/* Replace control and non-ASCII bytes in place, for text from other libraries. */
static char *scrub(char *s)
{
    for (char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return s;
}

static const char *show_z(const char *s, char *buf, size_t cap)
{
    return show(s, strnlen(s, cap), buf, cap);
}

bool xdcr_origin_is_valid(const char *origin)
{
    size_t i;

    if (origin == NULL)
        return false;
    for (i = 0; origin[i] != '\0'; i++) {
        char c = origin[i];
        if (i >= XDCR_ORIGIN_MAX - 1)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return i > 0;
}

const char *xdcr_op_name(xdcr_op_t op)
{
    switch (op) {
    case XDCR_OP_INSERT:
        return "insert";
    case XDCR_OP_UPDATE:
        return "update";
    case XDCR_OP_DELETE:
        return "delete";
    case XDCR_OP_TRUNCATE:
        return "truncate";
    case XDCR_OP_MESSAGE:
        return "message";
    }
    return "unknown";
}

const char *xdcr_msg_type_name(xdcr_msg_type_t type)
{
    switch (type) {
    case XDCR_MSG_TXN:
        return "txn";
    case XDCR_MSG_MARK:
        return "mark";
    }
    return "unknown";
}

/*
 * Length of the valid UTF-8 sequence at s (n bytes available), or 0 when it is not valid:
 * no overlong forms, no surrogates, nothing above U+10FFFF (the same rules jansson applies).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0;
    if (c < 0xe0)
        return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* ---- time ----------------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (m == 2 && is_leap(y)) ? 29 : dim[m - 1];
}

static void put_digits(char *p, uint64_t v, int width)
{
    while (width-- > 0) {
        p[width] = (char)('0' + v % 10);
        v /= 10;
    }
}

char *xdcr_time_format_us(int64_t unix_us, char *buf, size_t len)
{
    int64_t secs, days, sod, frac, y;
    unsigned m, d;

    if (buf == NULL || len < TIME_LEN + 1)
        return NULL;
    if (unix_us < TIME_MIN_US || unix_us > TIME_MAX_US) {
        buf[0] = '\0';
        return NULL;
    }
    secs = floor_div(unix_us, US_PER_SEC);
    frac = unix_us - secs * US_PER_SEC;
    days = floor_div(secs, SECS_PER_DAY);
    sod = secs - days * SECS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    memcpy(buf, "0000-00-00T00:00:00.000000Z", TIME_LEN + 1);
    put_digits(buf, (uint64_t)y, 4);
    put_digits(buf + 5, m, 2);
    put_digits(buf + 8, d, 2);
    put_digits(buf + 11, (uint64_t)(sod / 3600), 2);
    put_digits(buf + 14, (uint64_t)(sod / 60 % 60), 2);
    put_digits(buf + 17, (uint64_t)(sod % 60), 2);
    put_digits(buf + 20, (uint64_t)frac, 6);
    return buf;
}

/* Value of width decimal digits at p, already checked to be digits. */
static unsigned get_digits(const char *p, int width)
{
    unsigned v = 0;

    for (int i = 0; i < width; i++)
        v = v * 10 + (unsigned)(p[i] - '0');
    return v;
}

int xdcr_time_parse_us(const char *s, int64_t *out_us, xdcr_error_t *err)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    char shown[SHOW_MAX];
    unsigned y, mo, d, h, mi, sec, us;

    if (s == NULL || out_us == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no time string given");
    if (strnlen(s, TIME_LEN + 1) != TIME_LEN)
        goto shape_error;
    for (int i = 0; i < TIME_LEN; i++)
        if (shape[i] != 'd' ? s[i] != shape[i] : (s[i] < '0' || s[i] > '9'))
            goto shape_error;
    y = get_digits(s, 4);
    mo = get_digits(s + 5, 2);
    d = get_digits(s + 8, 2);
    h = get_digits(s + 11, 2);
    mi = get_digits(s + 14, 2);
    sec = get_digits(s + 17, 2);
    us = get_digits(s + 20, 6);
    if (y < 1)
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "invalid time \"%s\": year 0000 is out of range",
                              show_z(s, shown, sizeof(shown)));
    if (mo < 1 || mo > 12)
        return xdcr_error_set(err, XDCR_EPARSE, false, "invalid time \"%s\": month out of range",
                              show_z(s, shown, sizeof(shown)));
    if (d < 1 || d > days_in_month(y, mo))
        return xdcr_error_set(err, XDCR_EPARSE, false, "invalid time \"%s\": day out of range",
                              show_z(s, shown, sizeof(shown)));
    if (h > 23 || mi > 59 || sec > 59)
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "invalid time \"%s\": time of day out of range",
                              show_z(s, shown, sizeof(shown)));
    *out_us =
        ((days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + sec) * US_PER_SEC) + us;
    return 0;

shape_error:
    return xdcr_error_set(err, XDCR_EPARSE, false,
                          "invalid time \"%s\": expected YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC)",
                          show_z(s, shown, sizeof(shown)));
}

/* ---- growable output buffer ----------------------------------------------------------------- */

typedef struct buf {
    char *data;
    size_t len, cap;
    bool oom; /* sticky: a write failed for lack of memory */
} buf_t;

/* Make room for a total of `total` bytes. */
static bool buf_ensure(buf_t *b, size_t total)
{
    size_t cap;
    char *p;

    if (total <= b->cap)
        return true;
    if (b->oom)
        return false;
    cap = b->cap ? b->cap : 1024;
    while (cap < total) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static inline void put(buf_t *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (n <= b->cap - b->len) { /* the common case, in every token written */
        memcpy(b->data + b->len, s, n);
        b->len += n;
        return;
    }
    if (n > SIZE_MAX - b->len || !buf_ensure(b, b->len + n)) {
        b->oom = true;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

#define PUT_LIT(b, lit) put((b), "" lit, sizeof(lit) - 1) /* "" lit: literals only */

static void put_u64(buf_t *b, uint64_t v)
{
    char tmp[20];
    int n = 0;

    do {
        tmp[19 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(b, tmp + 20 - n, (size_t)n);
}

static void put_i64(buf_t *b, int64_t v)
{
    if (v < 0) {
        PUT_LIT(b, "-");
        put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(b, (uint64_t)v);
    }
}

static void put_bool(buf_t *b, bool v)
{
    if (v)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
}

/* 0: copied as is; 1: escaped; 2: start of a multi-byte UTF-8 sequence (or invalid). */
static const unsigned char char_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x90 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xa0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xb0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xc0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xd0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xe0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xf0 */
};

enum { STR_OK = 0, STR_BAD_UTF8 = 1, STR_NUL = 2 };

/*
 * Append s[0..n) as a JSON string. Valid UTF-8 passes through unchanged; '"', '\\' and control
 * characters are escaped. Returns STR_OK, or STR_BAD_UTF8/STR_NUL with nothing appended.
 * Invariant in the loop: cap - pos >= (n - i) + 1, room for the rest and the closing quote.
 */
static int put_str(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, pos, run;

    if (n > SIZE_MAX - 8 - b->len || !buf_ensure(b, b->len + n + 2)) {
        b->oom = true;
        return STR_OK;
    }
    pos = b->len;
    b->data[pos++] = '"';
    while (i < n) {
        unsigned c;

        run = i;
        while (i < n && char_class[u[i]] == 0)
            i++;
        memcpy(b->data + pos, u + run, i - run);
        pos += i - run;
        if (i == n)
            break;
        c = u[i];
        if (char_class[c] == 2) {
            size_t k = utf8_seq_len(u + i, n - i);
            if (k == 0)
                return STR_BAD_UTF8;
            memcpy(b->data + pos, u + i, k);
            pos += k;
            i += k;
            continue;
        }
        if (c == 0)
            return STR_NUL;
        if (b->cap - pos < n - i + 6 && !buf_ensure(b, pos + (n - i) + 6)) {
            b->oom = true;
            return STR_OK;
        }
        b->data[pos++] = '\\';
        switch (c) {
        case '"':
        case '\\':
            b->data[pos++] = (char)c;
            break;
        case '\b':
            b->data[pos++] = 'b';
            break;
        case '\f':
            b->data[pos++] = 'f';
            break;
        case '\n':
            b->data[pos++] = 'n';
            break;
        case '\r':
            b->data[pos++] = 'r';
            break;
        case '\t':
            b->data[pos++] = 't';
            break;
        default:
            memcpy(b->data + pos, "u00", 3);
            b->data[pos + 3] = hex[c >> 4];
            b->data[pos + 4] = hex[c & 15];
            pos += 5;
            break;
        }
        i++;
    }
    b->data[pos++] = '"';
    b->len = pos;
    return STR_OK;
}

static void put_base64(buf_t *b, const unsigned char *s, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out = (n + 2) / 3 * 4, i;
    char *p;

    if (!buf_ensure(b, b->len + out + 2)) {
        b->oom = true;
        return;
    }
    p = b->data + b->len;
    *p++ = '"';
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *p++ = tbl[v >> 18];
        *p++ = tbl[(v >> 12) & 63];
        *p++ = tbl[(v >> 6) & 63];
        *p++ = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *p++ = tbl[v >> 18];
        *p++ = tbl[(v >> 12) & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *p++ = tbl[v >> 18];
        *p++ = tbl[(v >> 12) & 63];
        *p++ = tbl[(v >> 6) & 63];
        *p++ = '=';
    }
    *p++ = '"';
    b->len = (size_t)(p - b->data);
}

/* ---- encoder -------------------------------------------------------------------------------- */

typedef struct enc_col {
    size_t name, type; /* offsets into strs */
    uint32_t oid;
    int32_t typmod;
    bool key;
} enc_col_t;

typedef struct enc_rel {
    uint32_t relkey;
    uint32_t ncols;
    size_t col0;          /* first column in cols */
    size_t schema, table; /* offsets into strs */
} enc_rel_t;

typedef struct enc_slot {
    uint32_t gen; /* slot is in use when gen == encoder's gen */
    uint32_t relkey;
    uint32_t idx; /* index into rels */
} enc_slot_t;

enum enc_state { ENC_IDLE, ENC_OPEN };

/*
 * A last part's "seq" is only known when it is finished, so a part's head is written after
 * SEQ_FIELD_MAX slack bytes: finishing a last part moves the head left to make room for the
 * "seq" field (and right by one byte where "false" shrinks to "true"), never the changes.
 */
#define SEQ_FIELD_MAX (sizeof(",\"seq\":\"\"") - 1 + XDCR_LSN_STRLEN - 1)

struct xdcr_encoder {
    buf_t out;       /* payload, after SEQ_FIELD_MAX slack bytes for a txn (see above) */
    buf_t rels_json; /* this message's relations, rendered, comma separated */
    buf_t strs;      /* NUL-terminated copies of relation strings, to compare with later uses */
    enc_rel_t *rels;
    uint32_t nrels, rels_cap;
    enc_col_t *cols;
    size_t ncols, cols_cap;
    enc_slot_t *map; /* relkey -> latest rels index, open addressing, power-of-two size */
    uint32_t map_cap, gen;
    uint32_t *unchanged; /* scratch: unchanged columns of the update being written */
    uint32_t unchanged_cap;
    enum enc_state state;
    uint32_t nchanges;
    uint32_t last_ord;
    uint32_t last_rel;     /* rels index used by the previous change, UINT32_MAX when none */
    xdcr_lsn_t commit_lsn; /* of the open part */
    size_t seq_at;         /* offset in out where a last part's "seq" field goes */
    size_t last_at;        /* offset in out of the "false" literal of "last" */
};

/* Where to roll back to when a change cannot be added. */
typedef struct enc_undo {
    size_t out_len, rels_json_len, strs_len, ncols;
    uint32_t nrels, last_rel;
} enc_undo_t;

#define CLOSE_CHANGES "],\"relations\":["
#define CLOSE_MESSAGE "]}"

xdcr_encoder_t *xdcr_encoder_new(void)
{
    xdcr_encoder_t *enc = calloc(1, sizeof(*enc));

    if (enc == NULL)
        return NULL;
    enc->gen = 1;
    enc->last_rel = UINT32_MAX;
    return enc;
}

void xdcr_encoder_free(xdcr_encoder_t *enc)
{
    if (enc == NULL)
        return;
    free(enc->out.data);
    free(enc->rels_json.data);
    free(enc->strs.data);
    free(enc->rels);
    free(enc->cols);
    free(enc->map);
    free(enc->unchanged);
    free(enc);
}

static int enc_validate_source(const xdcr_source_t *src, xdcr_error_t *err)
{
    char shown[SHOW_MAX];

    if (src == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no source given");
    if (!xdcr_origin_is_valid(src->origin))
        return xdcr_error_set(
            err, XDCR_EINVAL, false,
            "invalid origin name \"%s\": expected 1..63 chars of [A-Za-z0-9._-]",
            show(src->origin, strnlen(src->origin, XDCR_ORIGIN_MAX), shown, sizeof(shown)));
    if (src->timeline == 0)
        return xdcr_error_set(err, XDCR_EINVAL, false, "invalid timeline 0");
    return 0;
}

static void put_time(buf_t *b, int64_t us)
{
    char t[TIME_LEN + 1];

    xdcr_time_format_us(us, t, sizeof(t));
    PUT_LIT(b, "\"");
    put(b, t, TIME_LEN);
    PUT_LIT(b, "\"");
}

static void put_lsn(buf_t *b, xdcr_lsn_t lsn)
{
    char s[XDCR_LSN_STRLEN];

    xdcr_lsn_format(lsn, s);
    PUT_LIT(b, "\"");
    put(b, s, strlen(s));
    PUT_LIT(b, "\"");
}

/* Common head of both message types, up to and including "prev" (omitted when 0). */
static void put_head(buf_t *b, const char *type, const xdcr_source_t *src, xdcr_lsn_t prev_seq)
{
    PUT_LIT(b, "{\"v\":1,\"type\":\"");
    put(b, type, strlen(type));
    PUT_LIT(b, "\",\"origin\":\"");
    put(b, src->origin, strlen(src->origin)); /* validated: nothing to escape */
    PUT_LIT(b, "\",\"sysid\":\"");
    put_u64(b, src->sysid);
    PUT_LIT(b, "\",\"timeline\":");
    put_u64(b, src->timeline);
    if (prev_seq != XDCR_LSN_INVALID) {
        PUT_LIT(b, ",\"prev\":");
        put_lsn(b, prev_seq);
    }
}

/* ",\"seq\":\"X/Y\"" into out (SEQ_FIELD_MAX + 1 bytes); returns its length. */
static size_t seq_field(xdcr_lsn_t seq, char *out)
{
    char s[XDCR_LSN_STRLEN];
    int n = snprintf(out, SEQ_FIELD_MAX + 1, ",\"seq\":\"%s\"", xdcr_lsn_format(seq, s));

    return (size_t)n;
}

int xdcr_encoder_txn_begin(xdcr_encoder_t *enc, const xdcr_source_t *src, xdcr_lsn_t commit_lsn,
                           xdcr_lsn_t prev_seq, uint32_t xid, int64_t commit_time_us, uint32_t part,
                           xdcr_error_t *err)
{
    char a[XDCR_LSN_STRLEN], c[XDCR_LSN_STRLEN];
    int rc;
    buf_t *b;

    if (enc == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no encoder given");
    if (enc->state == ENC_OPEN)
        return xdcr_error_set(err, XDCR_ESTATE, false,
                              "a transaction part is still open: finish it before the next begin");
    if ((rc = enc_validate_source(src, err)) != 0)
        return rc;
    if (commit_lsn == XDCR_LSN_INVALID)
        return xdcr_error_set(err, XDCR_EINVAL, false, "invalid commit LSN 0/0");
    if (prev_seq > commit_lsn)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "previous seq %s of the stream is above commit LSN %s",
                              xdcr_lsn_format(prev_seq, a), xdcr_lsn_format(commit_lsn, c));
    if (commit_time_us < TIME_MIN_US || commit_time_us > TIME_MAX_US)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "commit time %" PRId64 " us is outside years 0001..9999",
                              commit_time_us);

    b = &enc->out;
    b->len = 0;
    b->oom = false;
    if (!buf_ensure(b, SEQ_FIELD_MAX))
        return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
    memset(b->data, ' ', SEQ_FIELD_MAX);
    b->len = SEQ_FIELD_MAX;
    put_head(b, "txn", src, prev_seq);
    PUT_LIT(b, ",\"commit_lsn\":");
    put_lsn(b, commit_lsn);
    enc->seq_at = b->len;
    PUT_LIT(b, ",\"xid\":");
    put_u64(b, xid);
    PUT_LIT(b, ",\"commit_time\":");
    put_time(b, commit_time_us);
    PUT_LIT(b, ",\"part\":");
    put_u64(b, part);
    PUT_LIT(b, ",\"last\":");
    enc->last_at = b->len;
    PUT_LIT(b, "false,\"changes\":[");
    if (b->oom)
        return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");

    enc->rels_json.len = 0;
    enc->rels_json.oom = false;
    enc->strs.len = 0;
    enc->strs.oom = false;
    enc->nrels = 0;
    enc->ncols = 0;
    enc->nchanges = 0;
    enc->last_ord = 0;
    enc->last_rel = UINT32_MAX;
    enc->commit_lsn = commit_lsn;
    if (++enc->gen == 0) { /* wrapped: forget every slot explicitly */
        if (enc->map != NULL)
            memset(enc->map, 0, sizeof(*enc->map) * enc->map_cap);
        enc->gen = 1;
    }
    enc->state = ENC_OPEN;
    return 0;
}

static uint32_t hash_u32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* The slot holding relkey, or the free (or stale) slot where it belongs. */
static enc_slot_t *map_slot(const xdcr_encoder_t *enc, uint32_t relkey)
{
    uint32_t mask = enc->map_cap - 1, i = hash_u32(relkey) & mask;

    for (;;) {
        enc_slot_t *s = &enc->map[i];
        if (s->gen != enc->gen || s->relkey == relkey)
            return s;
        i = (i + 1) & mask;
    }
}

/* Forget every slot and map the relkeys of rels[0..nrels); later definitions win. */
static void map_fill(xdcr_encoder_t *enc)
{
    if (++enc->gen == 0) {
        memset(enc->map, 0, sizeof(*enc->map) * enc->map_cap);
        enc->gen = 1;
    }
    for (uint32_t i = 0; i < enc->nrels; i++) {
        enc_slot_t *s = map_slot(enc, enc->rels[i].relkey);
        s->gen = enc->gen;
        s->relkey = enc->rels[i].relkey;
        s->idx = i;
    }
}

/* Grow the map so it stays at most half full with one more relation. */
static bool map_reserve(xdcr_encoder_t *enc)
{
    uint32_t cap = enc->map_cap ? enc->map_cap : 16;
    enc_slot_t *map;

    if (enc->map != NULL && (enc->nrels + 1) * 2 <= enc->map_cap)
        return true;
    while ((enc->nrels + 1) * 2 > cap)
        cap *= 2;
    map = calloc(cap, sizeof(*map));
    if (map == NULL)
        return false;
    free(enc->map);
    enc->map = map;
    enc->map_cap = cap;
    enc->gen = 0;
    map_fill(enc);
    return true;
}

static bool rel_equal(const xdcr_encoder_t *enc, const enc_rel_t *r, const xdcr_relation_t *rel)
{
    const char *strs = enc->strs.data;

    if (r->ncols != rel->ncols || strcmp(strs + r->schema, rel->schema) != 0 ||
        strcmp(strs + r->table, rel->table) != 0)
        return false;
    for (uint32_t i = 0; i < rel->ncols; i++) {
        const enc_col_t *a = &enc->cols[r->col0 + i];
        const xdcr_column_t *c = &rel->cols[i];
        if (a->oid != c->type_oid || a->typmod != c->typmod || a->key != c->key ||
            strcmp(strs + a->name, c->name) != 0 || strcmp(strs + a->type, c->type) != 0)
            return false;
    }
    return true;
}

static size_t strs_add(buf_t *strs, const char *s)
{
    size_t at = strs->len;
    put(strs, s, strlen(s) + 1);
    return at;
}

static int bad_str(xdcr_error_t *err, int rc, const char *what, const char *s)
{
    char shown[SHOW_MAX];
    return xdcr_error_set(err, XDCR_EINVAL, false, "%s \"%s\" %s", what,
                          show_z(s, shown, sizeof(shown)),
                          rc == STR_NUL ? "contains a NUL byte" : "is not valid UTF-8");
}

static int check_rel(const xdcr_relation_t *rel, xdcr_error_t *err)
{
    if (rel == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no relation given");
    if (rel->schema == NULL || rel->schema[0] == '\0' || rel->table == NULL ||
        rel->table[0] == '\0')
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "relation has an empty schema or table name");
    if (rel->ncols > MAX_COLUMNS)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "relation \"%s\".\"%s\" has %" PRIu32 " columns (at most %d)",
                              rel->schema, rel->table, rel->ncols, MAX_COLUMNS);
    if (rel->ncols > 0 && rel->cols == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "relation \"%s\".\"%s\" has no columns array", rel->schema,
                              rel->table);
    for (uint32_t i = 0; i < rel->ncols; i++)
        if (rel->cols[i].name == NULL || rel->cols[i].name[0] == '\0' || rel->cols[i].type == NULL)
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "relation \"%s\".\"%s\" column %" PRIu32 " has no name or type",
                                  rel->schema, rel->table, i);
    return 0;
}

/* Render rel into rels_json and remember it as the message's next relation. */
static int rel_register(xdcr_encoder_t *enc, uint32_t relkey, const xdcr_relation_t *rel,
                        uint32_t *idx, xdcr_error_t *err)
{
    buf_t *b = &enc->rels_json;
    enc_slot_t *slot;
    enc_rel_t *r;
    int rc;

    if (enc->nrels >= MAX_RELATIONS)
        return xdcr_error_set(err, XDCR_ERANGE, false,
                              "more than %" PRIu32 " relations in a message", MAX_RELATIONS);
    if (enc->nrels == enc->rels_cap) {
        uint32_t cap = enc->rels_cap ? enc->rels_cap * 2 : 8;
        enc_rel_t *p = realloc(enc->rels, sizeof(*p) * cap);
        if (p == NULL)
            goto oom;
        enc->rels = p;
        enc->rels_cap = cap;
    }
    if (enc->ncols + rel->ncols > enc->cols_cap) {
        size_t cap = enc->cols_cap ? enc->cols_cap : 64;
        enc_col_t *p;
        while (cap < enc->ncols + rel->ncols)
            cap *= 2;
        p = realloc(enc->cols, sizeof(*p) * cap);
        if (p == NULL)
            goto oom;
        enc->cols = p;
        enc->cols_cap = cap;
    }
    if (!map_reserve(enc))
        goto oom;

    if (enc->nrels > 0)
        PUT_LIT(b, ",");
    PUT_LIT(b, "{\"schema\":");
    if ((rc = put_str(b, rel->schema, strlen(rel->schema))) != STR_OK)
        return bad_str(err, rc, "schema name", rel->schema);
    PUT_LIT(b, ",\"table\":");
    if ((rc = put_str(b, rel->table, strlen(rel->table))) != STR_OK)
        return bad_str(err, rc, "table name", rel->table);
    PUT_LIT(b, ",\"columns\":[");
    for (uint32_t i = 0; i < rel->ncols; i++) {
        const xdcr_column_t *c = &rel->cols[i];
        enc_col_t *ec = &enc->cols[enc->ncols + i];

        if (i > 0)
            PUT_LIT(b, ",");
        PUT_LIT(b, "{\"name\":");
        if ((rc = put_str(b, c->name, strlen(c->name))) != STR_OK)
            return bad_str(err, rc, "column name", c->name);
        PUT_LIT(b, ",\"type\":");
        if ((rc = put_str(b, c->type, strlen(c->type))) != STR_OK)
            return bad_str(err, rc, "type name", c->type);
        PUT_LIT(b, ",\"oid\":");
        put_u64(b, c->type_oid);
        PUT_LIT(b, ",\"typmod\":");
        put_i64(b, c->typmod);
        PUT_LIT(b, ",\"key\":");
        put_bool(b, c->key);
        PUT_LIT(b, "}");
        ec->name = strs_add(&enc->strs, c->name);
        ec->type = strs_add(&enc->strs, c->type);
        ec->oid = c->type_oid;
        ec->typmod = c->typmod;
        ec->key = c->key;
    }
    PUT_LIT(b, "]}");

    r = &enc->rels[enc->nrels];
    r->relkey = relkey;
    r->ncols = rel->ncols;
    r->col0 = enc->ncols;
    r->schema = strs_add(&enc->strs, rel->schema);
    r->table = strs_add(&enc->strs, rel->table);
    if (b->oom || enc->strs.oom)
        goto oom;
    slot = map_slot(enc, relkey);
    slot->gen = enc->gen;
    slot->relkey = relkey;
    slot->idx = enc->nrels;
    *idx = enc->nrels++;
    enc->ncols += rel->ncols;
    return 0;
oom:
    return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
}

/* Index of rel (checked) in the current message, registering it when new or changed. */
static int rel_index(xdcr_encoder_t *enc, uint32_t relkey, const xdcr_relation_t *rel,
                     uint32_t *idx, xdcr_error_t *err)
{
    int rc;

    if (enc->last_rel < enc->nrels && enc->rels[enc->last_rel].relkey == relkey &&
        rel_equal(enc, &enc->rels[enc->last_rel], rel)) {
        *idx = enc->last_rel;
        return 0;
    }
    if (enc->map != NULL) {
        const enc_slot_t *slot = map_slot(enc, relkey);
        /* a slot may point past nrels after a rolled-back change: then it is stale */
        if (slot->gen == enc->gen && slot->idx < enc->nrels &&
            enc->rels[slot->idx].relkey == relkey && rel_equal(enc, &enc->rels[slot->idx], rel)) {
            *idx = enc->last_rel = slot->idx;
            return 0;
        }
    }
    if ((rc = rel_register(enc, relkey, rel, idx, err)) != 0)
        return rc;
    enc->last_rel = *idx;
    return 0;
}

static void undo_mark(const xdcr_encoder_t *enc, enc_undo_t *u)
{
    u->out_len = enc->out.len;
    u->rels_json_len = enc->rels_json.len;
    u->strs_len = enc->strs.len;
    u->ncols = enc->ncols;
    u->nrels = enc->nrels;
    u->last_rel = enc->last_rel;
}

static int undo(xdcr_encoder_t *enc, const enc_undo_t *u, int rc)
{
    enc->out.len = u->out_len;
    enc->out.oom = false;
    enc->rels_json.len = u->rels_json_len;
    enc->rels_json.oom = false;
    enc->strs.len = u->strs_len;
    enc->strs.oom = false;
    enc->ncols = u->ncols;
    enc->last_rel = u->last_rel;
    if (enc->nrels != u->nrels) {
        /* drop the slots of relations this change registered, so they cannot fill the map */
        enc->nrels = u->nrels;
        map_fill(enc);
    }
    return rc;
}

static int check_open(const xdcr_encoder_t *enc, uint32_t ordinal, xdcr_error_t *err)
{
    if (enc == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no encoder given");
    if (enc->state != ENC_OPEN)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no transaction part is open");
    if (enc->nchanges >= MAX_CHANGES)
        return xdcr_error_set(err, XDCR_ERANGE, false, "more than %" PRIu32 " changes in a message",
                              MAX_CHANGES);
    if (enc->nchanges > 0 && ordinal <= enc->last_ord)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "change ordinal %" PRIu32 " does not follow %" PRIu32, ordinal,
                              enc->last_ord);
    return 0;
}

static void put_change_head(xdcr_encoder_t *enc, uint32_t ordinal, char op)
{
    buf_t *b = &enc->out;
    char ops[2] = {op, '\0'};

    if (enc->nchanges > 0)
        PUT_LIT(b, ",");
    PUT_LIT(b, "{\"ord\":");
    put_u64(b, ordinal);
    PUT_LIT(b, ",\"op\":\"");
    put(b, ops, 1);
    PUT_LIT(b, "\"");
}

/* Write "key":[values]; for new values of an update, collect unchanged columns. */
static int put_values(xdcr_encoder_t *enc, const char *key, const xdcr_relation_t *rel,
                      const xdcr_value_t *vals, bool allow_unchanged, uint32_t *nunchanged,
                      xdcr_error_t *err)
{
    buf_t *b = &enc->out;
    int rc;

    PUT_LIT(b, ",\"");
    put(b, key, strlen(key));
    PUT_LIT(b, "\":[");
    for (uint32_t i = 0; i < rel->ncols; i++) {
        const xdcr_value_t *v = &vals[i];

        if (i > 0)
            PUT_LIT(b, ",");
        switch (v->kind) {
        case XDCR_VAL_NULL:
            PUT_LIT(b, "null");
            break;
        case XDCR_VAL_TEXT:
            if (v->data == NULL && v->len > 0)
                return xdcr_error_set(err, XDCR_EINVAL, false,
                                      "%s value of column \"%s\" of \"%s\".\"%s\" has no data", key,
                                      rel->cols[i].name, rel->schema, rel->table);
            rc = put_str(b, v->len ? v->data : "", v->len);
            if (rc != STR_OK)
                return xdcr_error_set(err, XDCR_EINVAL, false,
                                      "%s value of column \"%s\" of \"%s\".\"%s\" %s", key,
                                      rel->cols[i].name, rel->schema, rel->table,
                                      rc == STR_NUL ? "contains a NUL byte" : "is not valid UTF-8");
            break;
        case XDCR_VAL_UNCHANGED:
            if (!allow_unchanged)
                return xdcr_error_set(err, XDCR_EINVAL, false,
                                      "%s value of column \"%s\" of \"%s\".\"%s\" is an unchanged "
                                      "TOAST value, which only new values of an update can be",
                                      key, rel->cols[i].name, rel->schema, rel->table);
            PUT_LIT(b, "null");
            enc->unchanged[(*nunchanged)++] = i;
            break;
        default:
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "%s value of column \"%s\" of \"%s\".\"%s\" has unknown kind %d",
                                  key, rel->cols[i].name, rel->schema, rel->table, (int)v->kind);
        }
    }
    PUT_LIT(b, "]");
    return 0;
}

static int add_row_change(xdcr_encoder_t *enc, uint32_t relkey, const xdcr_relation_t *rel,
                          const xdcr_change_t *ch, xdcr_error_t *err)
{
    buf_t *b = &enc->out;
    uint32_t idx, nunchanged = 0;
    bool want_old = ch->op != XDCR_OP_INSERT, need_old = ch->op == XDCR_OP_DELETE;
    bool want_new = ch->op != XDCR_OP_DELETE;
    int rc;

    if ((rc = check_rel(rel, err)) != 0)
        return rc;
    if (need_old && ch->old_vals == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "delete on \"%s\".\"%s\" has no old values",
                              rel->schema, rel->table);
    if (!want_old && ch->old_vals != NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "insert on \"%s\".\"%s\" has old values",
                              rel->schema, rel->table);
    if (want_new && ch->new_vals == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "%s on \"%s\".\"%s\" has no new values",
                              xdcr_op_name(ch->op), rel->schema, rel->table);
    if (!want_new && ch->new_vals != NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "delete on \"%s\".\"%s\" has new values",
                              rel->schema, rel->table);
    if (ch->op == XDCR_OP_UPDATE && rel->ncols > enc->unchanged_cap) {
        uint32_t *p = realloc(enc->unchanged, sizeof(*p) * MAX_COLUMNS);
        if (p == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
        enc->unchanged = p;
        enc->unchanged_cap = MAX_COLUMNS;
    }
    if ((rc = rel_index(enc, relkey, rel, &idx, err)) != 0)
        return rc;
    put_change_head(enc, ch->ordinal, (char)ch->op);
    PUT_LIT(b, ",\"r\":");
    put_u64(b, idx);
    if (ch->old_vals != NULL &&
        (rc = put_values(enc, "old", rel, ch->old_vals, false, NULL, err)) != 0)
        return rc;
    if (ch->new_vals != NULL && (rc = put_values(enc, "new", rel, ch->new_vals,
                                                 ch->op == XDCR_OP_UPDATE, &nunchanged, err)) != 0)
        return rc;
    if (nunchanged > 0) {
        PUT_LIT(b, ",\"unchanged\":[");
        for (uint32_t i = 0; i < nunchanged; i++) {
            if (i > 0)
                PUT_LIT(b, ",");
            put_u64(b, enc->unchanged[i]);
        }
        PUT_LIT(b, "]");
    }
    PUT_LIT(b, "}");
    return 0;
}

static int add_message_change(xdcr_encoder_t *enc, const xdcr_change_t *ch, xdcr_error_t *err)
{
    buf_t *b = &enc->out;
    int rc;

    if (ch->prefix == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "logical message has no prefix");
    if (ch->content == NULL && ch->content_len > 0)
        return xdcr_error_set(err, XDCR_EINVAL, false, "logical message has no content");
    put_change_head(enc, ch->ordinal, 'M');
    PUT_LIT(b, ",\"prefix\":");
    if ((rc = put_str(b, ch->prefix, strlen(ch->prefix))) != STR_OK)
        return bad_str(err, rc, "logical message prefix", ch->prefix);
    PUT_LIT(b, ",\"content\":");
    put_base64(b, (const unsigned char *)ch->content, ch->content_len);
    PUT_LIT(b, "}");
    return 0;
}

static int finish_change(xdcr_encoder_t *enc, const enc_undo_t *u, uint32_t ordinal, int rc,
                         xdcr_error_t *err)
{
    if (rc == 0 && (enc->out.oom || enc->rels_json.oom || enc->strs.oom))
        rc = xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
    if (rc != 0)
        return undo(enc, u, rc);
    enc->nchanges++;
    enc->last_ord = ordinal;
    return 0;
}

int xdcr_encoder_add_change(xdcr_encoder_t *enc, uint32_t relkey, const xdcr_relation_t *rel,
                            const xdcr_change_t *ch, xdcr_error_t *err)
{
    enc_undo_t u;
    int rc;

    if (ch == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no change given");
    if ((rc = check_open(enc, ch->ordinal, err)) != 0)
        return rc;
    undo_mark(enc, &u);
    switch (ch->op) {
    case XDCR_OP_INSERT:
    case XDCR_OP_UPDATE:
    case XDCR_OP_DELETE:
        rc = add_row_change(enc, relkey, rel, ch, err);
        break;
    case XDCR_OP_MESSAGE:
        rc = add_message_change(enc, ch, err);
        break;
    case XDCR_OP_TRUNCATE:
        rc = xdcr_error_set(err, XDCR_EINVAL, false,
                            "truncate changes are added with xdcr_encoder_add_truncate");
        break;
    default:
        rc = xdcr_error_set(err, XDCR_EINVAL, false, "unknown change op %d", (int)ch->op);
        break;
    }
    return finish_change(enc, &u, ch->ordinal, rc, err);
}

int xdcr_encoder_add_truncate(xdcr_encoder_t *enc, uint32_t ordinal, uint32_t nrels,
                              const uint32_t *relkeys, const xdcr_relation_t *const *rels,
                              bool cascade, bool restart_identity, xdcr_error_t *err)
{
    enc_undo_t u;
    buf_t *b;
    uint32_t idx;
    int rc = 0;

    if ((rc = check_open(enc, ordinal, err)) != 0)
        return rc;
    if (nrels == 0 || nrels > MAX_RELATIONS || relkeys == NULL || rels == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "truncate needs 1..%" PRIu32 " relations, got %" PRIu32,
                              MAX_RELATIONS, nrels);
    undo_mark(enc, &u);
    b = &enc->out;
    put_change_head(enc, ordinal, 'T');
    PUT_LIT(b, ",\"rels\":[");
    for (uint32_t i = 0; i < nrels && rc == 0; i++) {
        if ((rc = check_rel(rels[i], err)) != 0 ||
            (rc = rel_index(enc, relkeys[i], rels[i], &idx, err)) != 0)
            break;
        if (i > 0)
            PUT_LIT(b, ",");
        put_u64(b, idx);
    }
    PUT_LIT(b, "],\"cascade\":");
    put_bool(b, cascade);
    PUT_LIT(b, ",\"restart_identity\":");
    put_bool(b, restart_identity);
    PUT_LIT(b, "}");
    return finish_change(enc, &u, ordinal, rc, err);
}

size_t xdcr_encoder_size(const xdcr_encoder_t *enc)
{
    if (enc == NULL || enc->state != ENC_OPEN)
        return 0;
    /* exact with "last":false; a last part adds its "seq" field and loses one byte */
    return enc->out.len - SEQ_FIELD_MAX + sizeof(CLOSE_CHANGES) - 1 + enc->rels_json.len +
           sizeof(CLOSE_MESSAGE) - 1;
}

uint32_t xdcr_encoder_nchanges(const xdcr_encoder_t *enc)
{
    return (enc != NULL && enc->state == ENC_OPEN) ? enc->nchanges : 0;
}

int xdcr_encoder_txn_finish(xdcr_encoder_t *enc, bool last, xdcr_lsn_t seq, const char **payload,
                            size_t *len, xdcr_error_t *err)
{
    char a[XDCR_LSN_STRLEN], c[XDCR_LSN_STRLEN], field[SEQ_FIELD_MAX + 1];
    buf_t *b;
    char *start;
    size_t body_len, flen, head_len;

    if (enc == NULL || payload == NULL || len == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no encoder or output given");
    if (enc->state != ENC_OPEN)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no transaction part is open");
    if (last && seq <= enc->commit_lsn)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "last part's seq %s is not above its commit LSN %s",
                              xdcr_lsn_format(seq, a), xdcr_lsn_format(enc->commit_lsn, c));
    if (!last && seq != XDCR_LSN_INVALID)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "a part that is not the last has no seq (got %s)",
                              xdcr_lsn_format(seq, a));
    b = &enc->out;
    b->oom = false;
    body_len = b->len;
    PUT_LIT(b, CLOSE_CHANGES);
    put(b, enc->rels_json.data, enc->rels_json.len);
    PUT_LIT(b, CLOSE_MESSAGE);
    if (b->oom) {
        /* the part stays open and unchanged: the caller may retry the finish */
        b->len = body_len;
        b->oom = false;
        return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
    }
    start = b->data + SEQ_FIELD_MAX;
    if (last) {
        /*
         * [slack][head to commit_lsn][xid..."last":]false  becomes
         * [head to commit_lsn][,"seq":"X/Y"][xid..."last":]true  ending at the same byte.
         */
        flen = seq_field(seq, field);
        head_len = enc->seq_at - SEQ_FIELD_MAX;
        memmove(b->data + enc->seq_at + 1, b->data + enc->seq_at, enc->last_at - enc->seq_at);
        start = b->data + enc->seq_at + 1 - flen - head_len;
        memmove(start, b->data + SEQ_FIELD_MAX, head_len);
        memcpy(b->data + enc->seq_at + 1 - flen, field, flen);
        memcpy(b->data + enc->last_at + 1, "true", 4);
    }
    *payload = start;
    *len = b->len - (size_t)(start - b->data);
    enc->state = ENC_IDLE;
    return 0;
}

int xdcr_encoder_mark(xdcr_encoder_t *enc, const xdcr_source_t *src, xdcr_lsn_t prev_seq,
                      xdcr_lsn_t seq, xdcr_lsn_t wal_lsn, int64_t time_us, const char **payload,
                      size_t *len, xdcr_error_t *err)
{
    char a[XDCR_LSN_STRLEN], c[XDCR_LSN_STRLEN];
    buf_t *b;
    int rc;

    if (enc == NULL || payload == NULL || len == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no encoder or output given");
    if (enc->state == ENC_OPEN)
        return xdcr_error_set(err, XDCR_ESTATE, false,
                              "a transaction part is open: finish it before encoding a mark");
    if ((rc = enc_validate_source(src, err)) != 0)
        return rc;
    if (time_us < TIME_MIN_US || time_us > TIME_MAX_US)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "mark time %" PRId64 " us is outside years 0001..9999", time_us);
    if (prev_seq > seq)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "previous seq %s of the stream is above mark seq %s",
                              xdcr_lsn_format(prev_seq, a), xdcr_lsn_format(seq, c));
    b = &enc->out;
    b->len = 0;
    b->oom = false;
    put_head(b, "mark", src, prev_seq);
    PUT_LIT(b, ",\"seq\":");
    put_lsn(b, seq);
    PUT_LIT(b, ",\"wal_lsn\":");
    put_lsn(b, wal_lsn);
    PUT_LIT(b, ",\"time\":");
    put_time(b, time_us);
    PUT_LIT(b, "}");
    if (b->oom)
        return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory encoding a message");
    *payload = b->data;
    *len = b->len;
    return 0;
}

/* ---- headers -------------------------------------------------------------------------------- */

static void crc_hex(uint32_t crc, char out[9])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 7; i >= 0; i--) {
        out[i] = hex[crc & 15];
        crc >>= 4;
    }
    out[8] = '\0';
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define FORMAT_VERSION_STR STRINGIFY(XDCR_FORMAT_VERSION)

/* NUL-terminated copy of s into dst of size bytes, cut if longer (no printf: per message). */
static void copy_cut(char *dst, size_t size, const char *s)
{
    size_t n = strnlen(s, size - 1);

    memcpy(dst, s, n);
    dst[n] = '\0';
}

void xdcr_headers_fill(xdcr_headers_t *h, const xdcr_source_t *src, xdcr_msg_type_t type,
                       xdcr_lsn_t seq, const void *payload, size_t len)
{
    copy_cut(h->origin, sizeof(h->origin), src->origin);
    xdcr_lsn_format(seq, h->seq);
    copy_cut(h->format, sizeof(h->format), FORMAT_VERSION_STR);
    crc_hex(xdcr_crc32c(0, len ? payload : "", len), h->crc);
    copy_cut(h->type, sizeof(h->type), xdcr_msg_type_name(type));
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int xdcr_headers_verify(const char *format, size_t format_len, const char *crc, size_t crc_len,
                        const void *payload, size_t len, xdcr_error_t *err)
{
    char shown[SHOW_MAX];
    uint32_t want = 0, have;
    unsigned long version = 0;

    if (format == NULL)
        return xdcr_error_set(err, XDCR_EPARSE, false, "message has no " XDCR_HDR_FORMAT " header");
    if (format_len == 0 || format_len > 9)
        goto bad_format;
    for (size_t i = 0; i < format_len; i++) {
        if (format[i] < '0' || format[i] > '9')
            goto bad_format;
        version = version * 10 + (unsigned long)(format[i] - '0');
    }
    if (version != XDCR_FORMAT_VERSION)
        return xdcr_error_set(err, XDCR_EVERSION, false,
                              "unsupported message format version %lu in header " XDCR_HDR_FORMAT
                              " (this build reads version %d)",
                              version, XDCR_FORMAT_VERSION);
    if (crc == NULL)
        return xdcr_error_set(err, XDCR_EPARSE, false, "message has no " XDCR_HDR_CRC " header");
    if (crc_len != 8)
        goto bad_crc;
    for (size_t i = 0; i < 8; i++) {
        int d = hex_digit(crc[i]);
        if (d < 0)
            goto bad_crc;
        want = want << 4 | (uint32_t)d;
    }
    if (payload == NULL && len > 0)
        return xdcr_error_set(err, XDCR_EINVAL, false, "no payload given");
    have = xdcr_crc32c(0, len ? payload : "", len);
    if (have != want)
        return xdcr_error_set(err, XDCR_ECRC, false,
                              "payload checksum mismatch: header " XDCR_HDR_CRC " is %08" PRIx32
                              ", the %zu payload bytes have %08" PRIx32,
                              want, len, have);
    return 0;

bad_format:
    return xdcr_error_set(err, XDCR_EPARSE, false,
                          "invalid header " XDCR_HDR_FORMAT " \"%s\": expected a decimal version",
                          show(format, format_len, shown, sizeof(shown)));
bad_crc:
    return xdcr_error_set(err, XDCR_EPARSE, false,
                          "invalid header " XDCR_HDR_CRC " \"%s\": expected 8 hex digits",
                          show(crc, crc_len, shown, sizeof(shown)));
}

/* ---- decoder -------------------------------------------------------------------------------- */

/*
 * A decoded message and everything it points to: one block, plus the parsed JSON document in its
 * arena (json_lite: one pass, no allocation per value), which holds the strings the message
 * points to.
 */
typedef struct msg_block {
    xdcr_message_t msg;
    jl_arena_t tree;
    size_t arena_len;
    _Alignas(16) unsigned char arena[]; /* relations, columns, changes, values, indexes, bytes */
} msg_block_t;

/* One region of the arena, filled front to back. */
typedef struct region {
    unsigned char *base;
    size_t used, cap; /* in elements */
} region_t;

typedef struct decoder {
    xdcr_error_t *err;
    region_t rels, cols, changes, vals, idx, bytes;
    uint32_t nrels;
    xdcr_relation_t *relv;
} decoder_t;

/* Counts from the sizing pass; arrays are sized by what the JSON holds, validated later. */
typedef struct counts {
    size_t rels, cols, changes, vals, idx, bytes;
} counts_t;

static int bad(decoder_t *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(decoder_t *d, const char *path, const char *fmt, ...)
{
    char what[XDCR_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    for (char *p = what; *p != '\0'; p++) /* input quoted by other modules' messages */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return xdcr_error_set(d->err, XDCR_EPARSE, false, "invalid message: %s%s%s", path,
                          path[0] ? ": " : "", what);
}

static bool jl_is(const jl_value_t *v, jl_type_t t)
{
    return v != NULL && v->type == t;
}

static const char *json_kind(const jl_value_t *v)
{
    switch ((v)->type) {
    case JL_OBJECT:
        return "an object";
    case JL_ARRAY:
        return "an array";
    case JL_STRING:
        return "a string";
    case JL_INTEGER:
        return "an integer";
    case JL_REAL:
        return "a real number";
    case JL_TRUE:
    case JL_FALSE:
        return "a boolean";
    case JL_NULL:
        return "null";
    }
    return "unknown";
}

/* Field key of obj; *out is NULL when absent and !required. */
static int field(decoder_t *d, const jl_value_t *obj, const char *path, const char *key,
                 jl_type_t type, bool required, const jl_value_t **out)
{
    const jl_value_t *v = jl_object_get(obj, key);
    const char *want = "a boolean";

    *out = NULL;
    if (v == NULL) {
        if (required)
            return bad(d, path, "missing field \"%s\"", key);
        return 0;
    }
    if (type == JL_TRUE ? !(jl_is(v, JL_TRUE) || jl_is(v, JL_FALSE)) : (v)->type != type) {
        switch (type) {
        case JL_OBJECT:
            want = "an object";
            break;
        case JL_ARRAY:
            want = "an array";
            break;
        case JL_STRING:
            want = "a string";
            break;
        case JL_INTEGER:
            want = "an integer";
            break;
        default:
            break;
        }
        return bad(d, path, "field \"%s\" must be %s, not %s", key, want, json_kind(v));
    }
    *out = v;
    return 0;
}

static int get_int(decoder_t *d, const jl_value_t *obj, const char *path, const char *key,
                   int64_t min, int64_t max, int64_t *out)
{
    const jl_value_t *v;
    int rc;

    if ((rc = field(d, obj, path, key, JL_INTEGER, true, &v)) != 0)
        return rc;
    *out = (v)->u.i;
    if (*out < min || *out > max)
        return bad(d, path, "field \"%s\" is %lld, out of range %lld..%lld", key, (long long)*out,
                   (long long)min, (long long)max);
    return 0;
}

static int get_u32(decoder_t *d, const jl_value_t *obj, const char *path, const char *key,
                   uint32_t min, uint32_t *out)
{
    int64_t v;
    int rc = get_int(d, obj, path, key, min, UINT32_MAX, &v);

    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

static int get_bool(decoder_t *d, const jl_value_t *obj, const char *path, const char *key,
                    bool *out)
{
    const jl_value_t *v;
    int rc = field(d, obj, path, key, JL_TRUE, true, &v);

    if (rc == 0)
        *out = jl_is(v, JL_TRUE);
    return rc;
}

/* A string field without NUL bytes; what names it in errors. */
static int get_str(decoder_t *d, const jl_value_t *obj, const char *path, const char *key,
                   bool nonempty, const char **out, size_t *len)
{
    const jl_value_t *v;
    int rc;

    if ((rc = field(d, obj, path, key, JL_STRING, true, &v)) != 0)
        return rc;
    *out = (v)->u.s;
    *len = (v)->n;
    if (memchr(*out, '\0', *len) != NULL)
        return bad(d, path, "field \"%s\" contains a NUL character (\\u0000)", key);
    if (nonempty && *len == 0)
        return bad(d, path, "field \"%s\" is empty", key);
    return 0;
}

static int get_lsn(decoder_t *d, const jl_value_t *obj, const char *key, xdcr_lsn_t *out)
{
    xdcr_error_t e;
    const char *s;
    size_t n;
    int rc;

    if ((rc = get_str(d, obj, "", key, false, &s, &n)) != 0)
        return rc;
    if (xdcr_lsn_parse(s, out, &e) != 0)
        return bad(d, "", "field \"%s\": %s", key, e.message);
    return 0;
}

/* An optional LSN field: *out is 0 when absent; present, it must not be 0/0. */
static int get_opt_lsn(decoder_t *d, const jl_value_t *obj, const char *key, const char *absent,
                       xdcr_lsn_t *out)
{
    int rc;

    *out = XDCR_LSN_INVALID;
    if (jl_object_get(obj, key) == NULL)
        return 0;
    if ((rc = get_lsn(d, obj, key, out)) != 0)
        return rc;
    if (*out == XDCR_LSN_INVALID)
        return bad(d, "", "field \"%s\" is 0/0 (%s is written by leaving it out)", key, absent);
    return 0;
}

static int get_time(decoder_t *d, const jl_value_t *obj, const char *key, int64_t *out)
{
    xdcr_error_t e;
    const char *s;
    size_t n;
    int rc;

    if ((rc = get_str(d, obj, "", key, false, &s, &n)) != 0)
        return rc;
    if (xdcr_time_parse_us(s, out, &e) != 0)
        return bad(d, "", "field \"%s\": %s", key, e.message);
    return 0;
}

static int get_sysid(decoder_t *d, const jl_value_t *obj, uint64_t *out)
{
    char shown[SHOW_MAX];
    const char *s;
    size_t n;
    uint64_t v = 0;
    int rc;

    if ((rc = get_str(d, obj, "", "sysid", true, &s, &n)) != 0)
        return rc;
    if (n > 20 || (n > 1 && s[0] == '0'))
        goto invalid;
    for (size_t i = 0; i < n; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - digit) / 10)
            goto invalid;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
invalid:
    return bad(d, "", "field \"sysid\" is \"%s\", not a decimal 64-bit unsigned number",
               show(s, n, shown, sizeof(shown)));
}

static void *take(region_t *r, size_t n, size_t elem)
{
    void *p;

    if (n > r->cap - r->used)
        return NULL;
    p = r->base + r->used * elem;
    r->used += n;
    return p;
}

static int internal(decoder_t *d)
{
    return xdcr_error_set(d->err, XDCR_EPARSE, false, "invalid message: inconsistent sizes");
}

/*
 * "<prefix>[<i>]" at buf, which has room for prefix and 12 more bytes. Error paths are built
 * for every element decoded, so by hand rather than with snprintf.
 */
static void index_path(char *buf, const char *prefix, uint32_t i)
{
    char digits[10];
    size_t n = strlen(prefix), k = 0;

    memcpy(buf, prefix, n);
    do {
        digits[k++] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0);
    buf[n++] = '[';
    while (k > 0)
        buf[n++] = digits[--k];
    buf[n++] = ']';
    buf[n] = '\0';
}

static int decode_relations(decoder_t *d, const jl_value_t *arr)
{
    char path[64], cpath[96];
    size_t plen;
    int rc;

    d->nrels = (uint32_t)jl_array_size(arr);
    d->relv = take(&d->rels, d->nrels, sizeof(xdcr_relation_t));
    if (d->relv == NULL && d->nrels > 0)
        return internal(d);
    for (uint32_t i = 0; i < d->nrels; i++) {
        const jl_value_t *robj = jl_array_get(arr, i);
        xdcr_relation_t *rel = &d->relv[i];
        xdcr_column_t *cols;
        const jl_value_t *carr;
        size_t n;

        index_path(path, "relations", i);
        if (!jl_is(robj, JL_OBJECT))
            return bad(d, path, "must be an object, not %s", json_kind(robj));
        if ((rc = get_str(d, robj, path, "schema", true, &rel->schema, &n)) != 0 ||
            (rc = get_str(d, robj, path, "table", true, &rel->table, &n)) != 0 ||
            (rc = field(d, robj, path, "columns", JL_ARRAY, true, &carr)) != 0)
            return rc;
        if (jl_array_size(carr) > MAX_COLUMNS)
            return bad(d, path, "has %zu columns, more than %d", jl_array_size(carr), MAX_COLUMNS);
        rel->ncols = (uint32_t)jl_array_size(carr);
        plen = strlen(path);
        cols = take(&d->cols, rel->ncols, sizeof(xdcr_column_t));
        if (cols == NULL && rel->ncols > 0)
            return internal(d);
        rel->cols = cols;
        for (uint32_t j = 0; j < rel->ncols; j++) {
            const jl_value_t *cobj = jl_array_get(carr, j);
            xdcr_column_t *c = &cols[j];
            int64_t typmod;

            memcpy(cpath, path, plen);
            index_path(cpath + plen, ".columns", j);
            if (!jl_is(cobj, JL_OBJECT))
                return bad(d, cpath, "must be an object, not %s", json_kind(cobj));
            if ((rc = get_str(d, cobj, cpath, "name", true, &c->name, &n)) != 0 ||
                (rc = get_str(d, cobj, cpath, "type", false, &c->type, &n)) != 0 ||
                (rc = get_u32(d, cobj, cpath, "oid", 0, &c->type_oid)) != 0 ||
                (rc = get_int(d, cobj, cpath, "typmod", INT32_MIN, INT32_MAX, &typmod)) != 0 ||
                (rc = get_bool(d, cobj, cpath, "key", &c->key)) != 0)
                return rc;
            c->typmod = (int32_t)typmod;
        }
    }
    return 0;
}

/* Decode "key":[...] of a row change into rel's ncols values. */
static int decode_values(decoder_t *d, const jl_value_t *cobj, const char *path, const char *key,
                         const xdcr_relation_t *rel, bool required, xdcr_value_t **out)
{
    const jl_value_t *arr;
    xdcr_value_t *vals;
    int rc;

    *out = NULL;
    if ((rc = field(d, cobj, path, key, JL_ARRAY, required, &arr)) != 0 || arr == NULL)
        return rc;
    if (jl_array_size(arr) != rel->ncols)
        return bad(d, path,
                   "field \"%s\" has %zu values but relation \"%s\".\"%s\" has %" PRIu32 " columns",
                   key, jl_array_size(arr), rel->schema, rel->table, rel->ncols);
    vals = take(&d->vals, rel->ncols, sizeof(xdcr_value_t));
    if (vals == NULL && rel->ncols > 0)
        return internal(d);
    for (uint32_t i = 0; i < rel->ncols; i++) {
        const jl_value_t *v = jl_array_get(arr, i);

        if (jl_is(v, JL_NULL)) {
            vals[i].kind = XDCR_VAL_NULL;
        } else if (jl_is(v, JL_STRING)) {
            size_t n = (v)->n;
            vals[i].kind = XDCR_VAL_TEXT;
            vals[i].data = (v)->u.s;
            if (memchr(vals[i].data, '\0', n) != NULL)
                return bad(d, path,
                           "%s[%" PRIu32 "] (column \"%s\") contains a NUL character (\\u0000), "
                           "which PostgreSQL text cannot hold",
                           key, i, rel->cols[i].name);
            if (n > UINT32_MAX)
                return bad(d, path, "%s[%" PRIu32 "] (column \"%s\") is too long", key, i,
                           rel->cols[i].name);
            vals[i].len = (uint32_t)n;
        } else {
            return bad(d, path, "%s[%" PRIu32 "] (column \"%s\") must be a string or null, not %s",
                       key, i, rel->cols[i].name, json_kind(v));
        }
    }
    *out = vals;
    return 0;
}

static int decode_unchanged(decoder_t *d, const jl_value_t *cobj, const char *path,
                            const xdcr_relation_t *rel, xdcr_value_t *new_vals)
{
    const jl_value_t *arr;
    int rc;

    if ((rc = field(d, cobj, path, "unchanged", JL_ARRAY, false, &arr)) != 0 || arr == NULL)
        return rc;
    for (size_t i = 0; i < jl_array_size(arr); i++) {
        const jl_value_t *v = jl_array_get(arr, i);
        int64_t col;

        if (!jl_is(v, JL_INTEGER))
            return bad(d, path, "unchanged[%zu] must be an integer, not %s", i, json_kind(v));
        col = (v)->u.i;
        if (col < 0 || col >= (int64_t)rel->ncols)
            return bad(d, path, "unchanged[%zu] is %lld, out of range for %" PRIu32 " columns", i,
                       (long long)col, rel->ncols);
        if (new_vals[col].kind != XDCR_VAL_NULL)
            return bad(d, path, "unchanged[%zu] names column %lld (\"%s\"), whose new value is %s",
                       i, (long long)col, rel->cols[col].name,
                       new_vals[col].kind == XDCR_VAL_UNCHANGED ? "already listed" : "not null");
        new_vals[col].kind = XDCR_VAL_UNCHANGED;
    }
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 (padded, canonical); returns the decoded length or -1. */
static long long b64_decode(const char *s, size_t n, unsigned char *out)
{
    size_t o = 0;

    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;

        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad > 0 || (v[k] = b64_value(c)) < 0) {
                return -1;
            }
        }
        if (pad == 1 && (v[2] & 3) != 0)
            return -1;
        if (pad == 2 && (v[1] & 15) != 0)
            return -1;
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long long)o;
}

static int rel_ref(decoder_t *d, const jl_value_t *v, const char *path, const char *what,
                   uint32_t *out)
{
    int64_t r;

    if (!jl_is(v, JL_INTEGER))
        return bad(d, path, "%s must be an integer, not %s", what, json_kind(v));
    r = (v)->u.i;
    if (r < 0 || r >= (int64_t)d->nrels)
        return bad(d, path, "%s is %lld, out of range for %" PRIu32 " relations", what,
                   (long long)r, d->nrels);
    *out = (uint32_t)r;
    return 0;
}

static int decode_change(decoder_t *d, const jl_value_t *cobj, uint32_t i, xdcr_change_t *ch,
                         const xdcr_change_t *prev)
{
    char path[40], shown[SHOW_MAX];
    const char *op, *content;
    size_t n;
    const jl_value_t *v, *arr;
    int rc;

    index_path(path, "changes", i);
    if (!jl_is(cobj, JL_OBJECT))
        return bad(d, path, "must be an object, not %s", json_kind(cobj));
    if ((rc = get_u32(d, cobj, path, "ord", 0, &ch->ordinal)) != 0 ||
        (rc = get_str(d, cobj, path, "op", true, &op, &n)) != 0)
        return rc;
    if (prev != NULL && ch->ordinal <= prev->ordinal)
        return bad(d, path, "ord %" PRIu32 " does not follow %" PRIu32, ch->ordinal, prev->ordinal);
    if (n != 1 || strchr("IUDTM", op[0]) == NULL)
        return bad(d, path, "unknown op \"%s\"", show(op, n, shown, sizeof(shown)));
    ch->op = (xdcr_op_t)op[0];

    switch (ch->op) {
    case XDCR_OP_INSERT:
    case XDCR_OP_UPDATE:
    case XDCR_OP_DELETE: {
        const xdcr_relation_t *rel;
        xdcr_value_t *old_vals, *new_vals;

        if ((rc = field(d, cobj, path, "r", JL_INTEGER, true, &v)) != 0 ||
            (rc = rel_ref(d, v, path, "field \"r\"", &ch->rel)) != 0)
            return rc;
        rel = &d->relv[ch->rel];
        if (ch->op == XDCR_OP_INSERT && jl_object_get(cobj, "old") != NULL)
            return bad(d, path, "an insert has no field \"old\"");
        if (ch->op == XDCR_OP_DELETE && jl_object_get(cobj, "new") != NULL)
            return bad(d, path, "a delete has no field \"new\"");
        if (ch->op != XDCR_OP_UPDATE && jl_object_get(cobj, "unchanged") != NULL)
            return bad(d, path, "only an update has field \"unchanged\"");
        if ((rc = decode_values(d, cobj, path, "old", rel, ch->op == XDCR_OP_DELETE, &old_vals)) !=
                0 ||
            (rc = decode_values(d, cobj, path, "new", rel, ch->op != XDCR_OP_DELETE, &new_vals)) !=
                0)
            return rc;
        if (ch->op == XDCR_OP_UPDATE && (rc = decode_unchanged(d, cobj, path, rel, new_vals)) != 0)
            return rc;
        ch->old_vals = old_vals;
        ch->new_vals = new_vals;
        return 0;
    }
    case XDCR_OP_TRUNCATE: {
        uint32_t *rels;
        size_t nt;
        char what[40];

        if ((rc = field(d, cobj, path, "rels", JL_ARRAY, true, &arr)) != 0 ||
            (rc = get_bool(d, cobj, path, "cascade", &ch->cascade)) != 0 ||
            (rc = get_bool(d, cobj, path, "restart_identity", &ch->restart_identity)) != 0)
            return rc;
        nt = jl_array_size(arr);
        if (nt == 0 || nt > MAX_RELATIONS)
            return bad(d, path, "field \"rels\" has %zu relations, expected 1..%" PRIu32, nt,
                       MAX_RELATIONS);
        rels = take(&d->idx, nt, sizeof(uint32_t));
        if (rels == NULL)
            return internal(d);
        for (size_t k = 0; k < nt; k++) {
            snprintf(what, sizeof(what), "rels[%zu]", k);
            if ((rc = rel_ref(d, jl_array_get(arr, k), path, what, &rels[k])) != 0)
                return rc;
        }
        ch->ntrunc = (uint32_t)nt;
        ch->trunc_rels = rels;
        return 0;
    }
    case XDCR_OP_MESSAGE: {
        unsigned char *bytes;
        long long got;

        if ((rc = get_str(d, cobj, path, "prefix", false, &ch->prefix, &n)) != 0 ||
            (rc = get_str(d, cobj, path, "content", false, &content, &n)) != 0)
            return rc;
        bytes = take(&d->bytes, n / 4 * 3, 1);
        if (bytes == NULL)
            return internal(d);
        got = b64_decode(content, n, bytes);
        if (got < 0)
            return bad(d, path, "field \"content\" is not valid padded base64");
        if ((unsigned long long)got > UINT32_MAX)
            return bad(d, path, "field \"content\" is too long");
        ch->content = (const char *)bytes;
        ch->content_len = (uint32_t)got;
        return 0;
    }
    }
    return internal(d);
}

/* Sizing pass: how many of each thing the arena must hold (upper bounds). */
static void count(const jl_value_t *rels, const jl_value_t *changes, counts_t *c)
{
    memset(c, 0, sizeof(*c));
    c->rels = jl_array_size(rels);
    for (size_t i = 0; i < c->rels; i++)
        c->cols += jl_array_size(jl_object_get(jl_array_get(rels, i), "columns"));
    c->changes = jl_array_size(changes);
    for (size_t i = 0; i < c->changes; i++) {
        const jl_value_t *ch = jl_array_get(changes, i), *content;
        c->vals += jl_array_size(jl_object_get(ch, "old"));
        c->vals += jl_array_size(jl_object_get(ch, "new"));
        c->idx += jl_array_size(jl_object_get(ch, "rels"));
        content = jl_object_get(ch, "content");
        if (jl_is(content, JL_STRING))
            c->bytes += (content)->n / 4 * 3;
    }
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void region_init(region_t *r, unsigned char **at, size_t n, size_t elem)
{
    r->base = *at;
    r->used = 0;
    r->cap = n;
    *at += align16(n * elem);
}

/* Header fields common to both types, into m. */
static int decode_head(decoder_t *d, const jl_value_t *root, xdcr_message_t *m)
{
    char shown[SHOW_MAX], a[XDCR_LSN_STRLEN], b[XDCR_LSN_STRLEN];
    const jl_value_t *v;
    const char *s;
    size_t n;
    int rc;

    if ((rc = field(d, root, "", "v", JL_INTEGER, true, &v)) != 0)
        return rc;
    if ((v)->u.i != XDCR_FORMAT_VERSION)
        return xdcr_error_set(d->err, XDCR_EVERSION, false,
                              "unsupported message format version %lld (this build reads "
                              "version %d)",
                              (long long)(v)->u.i, XDCR_FORMAT_VERSION);
    m->version = XDCR_FORMAT_VERSION;
    if ((rc = get_str(d, root, "", "type", true, &s, &n)) != 0)
        return rc;
    if (strcmp(s, "txn") == 0)
        m->type = XDCR_MSG_TXN;
    else if (strcmp(s, "mark") == 0)
        m->type = XDCR_MSG_MARK;
    else
        return bad(d, "", "unknown message type \"%s\"", show(s, n, shown, sizeof(shown)));
    if ((rc = get_str(d, root, "", "origin", true, &s, &n)) != 0)
        return rc;
    if (!xdcr_origin_is_valid(s))
        return bad(d, "", "invalid origin name \"%s\"", show(s, n, shown, sizeof(shown)));
    memcpy(m->src.origin, s, n + 1);
    if ((rc = get_sysid(d, root, &m->src.sysid)) != 0 ||
        (rc = get_u32(d, root, "", "timeline", 1, &m->src.timeline)) != 0 ||
        (rc = get_opt_lsn(d, root, "prev", "a stream start", &m->prev_seq)) != 0)
        return rc;
    if (m->type == XDCR_MSG_MARK) {
        if (jl_object_get(root, "changes") != NULL || jl_object_get(root, "relations") != NULL)
            return bad(d, "", "a mark has no changes or relations");
        if ((rc = get_lsn(d, root, "seq", &m->seq)) != 0 ||
            (rc = get_lsn(d, root, "wal_lsn", &m->wal_lsn)) != 0 ||
            (rc = get_time(d, root, "time", &m->time_us)) != 0)
            return rc;
        if (m->prev_seq > m->seq)
            return bad(d, "", "field \"prev\" %s is above field \"seq\" %s",
                       xdcr_lsn_format(m->prev_seq, a), xdcr_lsn_format(m->seq, b));
        return 0;
    }
    if ((rc = get_lsn(d, root, "commit_lsn", &m->commit_lsn)) != 0)
        return rc;
    if (m->commit_lsn == XDCR_LSN_INVALID)
        return bad(d, "", "field \"commit_lsn\" is 0/0, not a commit position");
    if (m->prev_seq > m->commit_lsn)
        return bad(d, "", "field \"prev\" %s is above field \"commit_lsn\" %s",
                   xdcr_lsn_format(m->prev_seq, a), xdcr_lsn_format(m->commit_lsn, b));
    if ((rc = get_u32(d, root, "", "xid", 0, &m->xid)) != 0 ||
        (rc = get_time(d, root, "commit_time", &m->commit_time_us)) != 0 ||
        (rc = get_u32(d, root, "", "part", 0, &m->part)) != 0 ||
        (rc = get_bool(d, root, "", "last", &m->last)) != 0)
        return rc;
    if (!m->last) {
        if (jl_object_get(root, "seq") != NULL)
            return bad(d, "", "a part that is not the last has no field \"seq\"");
        return 0;
    }
    if ((rc = get_lsn(d, root, "seq", &m->seq)) != 0)
        return rc;
    if (m->seq <= m->commit_lsn)
        return bad(d, "", "field \"seq\" %s is not above field \"commit_lsn\" %s",
                   xdcr_lsn_format(m->seq, a), xdcr_lsn_format(m->commit_lsn, b));
    return 0;
}

int xdcr_message_decode(const void *payload, size_t len, xdcr_message_t **out, xdcr_error_t *err)
{
    decoder_t d = {.err = err};
    xdcr_message_t head = {0};
    jl_error_t jerr;
    const jl_value_t *root, *rels = NULL, *changes = NULL;
    msg_block_t *blk = NULL;
    jl_arena_t tree;
    counts_t c;
    unsigned char *at;
    size_t arena;
    int rc;

    if (out == NULL || (payload == NULL && len > 0))
        return xdcr_error_set(err, XDCR_EINVAL, false, "no payload or output given");
    *out = NULL;
    /* the document takes about twice the payload: start there, grow by doubling */
    jl_arena_init(&tree, len < 8192 ? 16384 : (len * 2 + 4095) & ~(size_t)4095);
    root = jl_parse(len ? payload : "", len, &tree, &jerr);
    if (root == NULL) {
        jl_arena_free(&tree);
        if (jerr.out_of_memory)
            return xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory decoding a message");
        return xdcr_error_set(err, XDCR_EPARSE, false,
                              "invalid message: malformed JSON at byte %zu: %s", jerr.position,
                              scrub(jerr.text));
    }
    if (!jl_is(root, JL_OBJECT)) {
        rc = bad(&d, "", "the payload must be a JSON object, not %s", json_kind(root));
        goto fail;
    }
    if ((rc = decode_head(&d, root, &head)) != 0)
        goto fail;
    if (head.type == XDCR_MSG_TXN) {
        if ((rc = field(&d, root, "", "relations", JL_ARRAY, true, &rels)) != 0 ||
            (rc = field(&d, root, "", "changes", JL_ARRAY, true, &changes)) != 0)
            goto fail;
        if (jl_array_size(rels) > MAX_RELATIONS) {
            rc = bad(&d, "", "%zu relations, more than %" PRIu32, jl_array_size(rels),
                     MAX_RELATIONS);
            goto fail;
        }
        if (jl_array_size(changes) > MAX_CHANGES) {
            rc =
                bad(&d, "", "%zu changes, more than %" PRIu32, jl_array_size(changes), MAX_CHANGES);
            goto fail;
        }
    }

    count(rels, changes, &c);
    arena = align16(c.rels * sizeof(xdcr_relation_t)) + align16(c.cols * sizeof(xdcr_column_t)) +
            align16(c.changes * sizeof(xdcr_change_t)) + align16(c.vals * sizeof(xdcr_value_t)) +
            align16(c.idx * sizeof(uint32_t)) + align16(c.bytes);
    blk = calloc(1, sizeof(*blk) + arena);
    if (blk == NULL) {
        rc = xdcr_error_set(err, XDCR_ENOMEM, true, "out of memory decoding a message");
        goto fail;
    }
    blk->tree = tree;
    blk->arena_len = arena;
    at = blk->arena;
    region_init(&d.rels, &at, c.rels, sizeof(xdcr_relation_t));
    region_init(&d.cols, &at, c.cols, sizeof(xdcr_column_t));
    region_init(&d.changes, &at, c.changes, sizeof(xdcr_change_t));
    region_init(&d.vals, &at, c.vals, sizeof(xdcr_value_t));
    region_init(&d.idx, &at, c.idx, sizeof(uint32_t));
    region_init(&d.bytes, &at, c.bytes, 1);

    blk->msg = head;
    blk->msg.priv_ = blk;
    if (head.type == XDCR_MSG_TXN) {
        xdcr_change_t *chv;

        if ((rc = decode_relations(&d, rels)) != 0)
            goto fail;
        blk->msg.nrels = d.nrels;
        blk->msg.rels = d.nrels ? d.relv : NULL;
        blk->msg.nchanges = (uint32_t)jl_array_size(changes);
        chv = take(&d.changes, blk->msg.nchanges, sizeof(xdcr_change_t));
        if (chv == NULL && blk->msg.nchanges > 0) {
            rc = internal(&d);
            goto fail;
        }
        for (uint32_t i = 0; i < blk->msg.nchanges; i++)
            if ((rc = decode_change(&d, jl_array_get(changes, i), i, &chv[i],
                                    i ? &chv[i - 1] : NULL)) != 0)
                goto fail;
        blk->msg.changes = blk->msg.nchanges ? chv : NULL;
    }
    *out = &blk->msg;
    return 0;

fail:
    free(blk);
    jl_arena_free(&tree);
    return rc;
}

void xdcr_message_free(xdcr_message_t *msg)
{
    msg_block_t *blk;

    if (msg == NULL)
        return;
    blk = msg->priv_;
    jl_arena_free(&blk->tree);
    free(blk);
}
