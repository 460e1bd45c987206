/*
 * json_lite.c - a one-pass JSON reader into an arena (see xdcr/json_lite.h). Recursive descent
 * over the bytes; children of an array or object collect on a shared stack and are copied into
 * the arena when it closes.
 */
#include "xdcr/json_lite.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048 /* as jansson: the depth of every value, the top one being 1 */

struct jl_chunk {
    jl_chunk_t *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void jl_arena_init(jl_arena_t *a, size_t first_chunk)
{
    a->head = NULL;
    a->next_cap = first_chunk < 4096 ? 4096 : first_chunk;
}

void jl_arena_free(jl_arena_t *a)
{
    jl_chunk_t *c = a->head;

    while (c != NULL) {
        jl_chunk_t *next = c->next;

        free(c);
        c = next;
    }
    a->head = NULL;
}

static void *arena_alloc(jl_arena_t *a, size_t n)
{
    jl_chunk_t *c = a->head;

    n = (n + 15) & ~(size_t)15;
    if (c != NULL && c->cap - c->used >= n) {
        c->used += n;
        return c->data + c->used - n;
    }
    if (n > a->next_cap / 4) {
        /* a big one: a chunk of its own, behind the one that serves the small ones */
        c = malloc(sizeof(*c) + n);
        if (c == NULL)
            return NULL;
        c->cap = c->used = n;
        if (a->head != NULL) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = NULL;
            a->head = c;
        }
        return c->data;
    }
    c = malloc(sizeof(*c) + a->next_cap);
    if (c == NULL)
        return NULL;
    c->cap = a->next_cap;
    c->used = n;
    c->next = a->head;
    a->head = c;
    if (a->next_cap < ((size_t)8 << 20))
        a->next_cap *= 2;
    return c->data;
}

/* ---- parser ------------------------------------------------------------------------------- */

typedef struct slot {
    const char *key; /* object members: the key (NULL for array items) */
    size_t key_len;
    jl_value_t *value;
} slot_t;

typedef struct parser {
    const unsigned char *p, *start, *end;
    jl_arena_t *a;
    jl_error_t *err;
    slot_t *stack; /* children of the open arrays and objects */
    size_t sp, cap;
    bool failed;
} parser_t;

static void *fail(parser_t *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *fail(parser_t *ps, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;

    if (ps->failed)
        return NULL;
    ps->failed = true;
    ps->err->position = (size_t)(at - ps->start);
    va_start(ap, fmt);
    vsnprintf(ps->err->text, sizeof(ps->err->text), fmt, ap);
    va_end(ap);
    return NULL;
}

static void *oom(parser_t *ps)
{
    if (!ps->failed)
        ps->err->out_of_memory = true;
    return fail(ps, ps->p, "out of memory");
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool push(parser_t *ps, const char *key, size_t key_len, jl_value_t *v)
{
    if (ps->sp == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        slot_t *s = realloc(ps->stack, cap * sizeof(*s));

        if (s == NULL)
            return false;
        ps->stack = s;
        ps->cap = cap;
    }
    ps->stack[ps->sp].key = key;
    ps->stack[ps->sp].key_len = key_len;
    ps->stack[ps->sp].value = v;
    ps->sp++;
    return true;
}

static jl_value_t *new_value(parser_t *ps, jl_type_t t)
{
    jl_value_t *v = arena_alloc(ps->a, sizeof(*v));

    if (v == NULL)
        return oom(ps);
    v->type = t;
    v->n = 0;
    return v;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 when invalid (overlong, surrogate, > U+10FFFF,
 * truncated). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if ((size_t)(end - p) < n)
        return 0;
    cp = c & (0xff >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    uint32_t v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at ps->p (the opening quote): its bytes, NUL-terminated, into the arena. */
static const char *parse_string(parser_t *ps, size_t *len)
{
    const unsigned char *s = ps->p + 1, *q = s;
    unsigned char *out, *o;

    /* fast path: no escapes */
    while (q < ps->end && *q != '"' && *q != '\\' && *q >= 0x20) {
        if (*q < 0x80) {
            q++;
        } else {
            size_t n = utf8_len(q, ps->end);

            if (n == 0)
                return fail(ps, q, "unable to decode byte 0x%x", *q);
            q += n;
        }
    }
    if (q < ps->end && *q == '"') {
        out = arena_alloc(ps->a, (size_t)(q - s) + 1);
        if (out == NULL)
            return oom(ps);
        memcpy(out, s, (size_t)(q - s));
        out[q - s] = '\0';
        *len = (size_t)(q - s);
        ps->p = q + 1;
        return (const char *)out;
    }
    /* with escapes: the result is never longer than the source */
    {
        const unsigned char *e = q;

        while (e < ps->end && *e != '"') {
            if (*e == '\\' && e + 1 < ps->end)
                e++;
            e++;
        }
        out = arena_alloc(ps->a, (size_t)(e - s) + 1);
    }
    if (out == NULL)
        return oom(ps);
    memcpy(out, s, (size_t)(q - s));
    o = out + (q - s);
    while (q < ps->end && *q != '"') {
        unsigned c = *q;

        if (c < 0x20)
            return fail(ps, q, "control character 0x%x", c);
        if (c >= 0x80) {
            size_t n = utf8_len(q, ps->end);

            if (n == 0)
                return fail(ps, q, "unable to decode byte 0x%x", c);
            memcpy(o, q, n);
            o += n;
            q += n;
            continue;
        }
        if (c != '\\') {
            *o++ = (unsigned char)c;
            q++;
            continue;
        }
        if (q + 1 >= ps->end)
            return fail(ps, q, "premature end of input");
        switch (q[1]) {
        case '"':
        case '\\':
        case '/':
            *o++ = q[1];
            q += 2;
            break;
        case 'b':
            *o++ = '\b';
            q += 2;
            break;
        case 'f':
            *o++ = '\f';
            q += 2;
            break;
        case 'n':
            *o++ = '\n';
            q += 2;
            break;
        case 'r':
            *o++ = '\r';
            q += 2;
            break;
        case 't':
            *o++ = '\t';
            q += 2;
            break;
        case 'u': {
            uint32_t cp, lo;

            if (hex4(q + 2, ps->end, &cp) != 0)
                return fail(ps, q, "invalid escape");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, q, "invalid Unicode '\\u%04X'", (unsigned)cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->end - q < 12 || q[6] != '\\' || q[7] != 'u' ||
                    hex4(q + 8, ps->end, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, q, "invalid Unicode '\\u%04X'", (unsigned)cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                q += 6;
            }
            o += put_utf8(o, cp);
            q += 6;
            break;
        }
        default:
            return fail(ps, q, "invalid escape");
        }
    }
    if (q >= ps->end)
        return fail(ps, q, "premature end of input");
    *o = '\0';
    *len = (size_t)(o - out);
    ps->p = q + 1;
    return (const char *)out;
}

static jl_value_t *parse_number(parser_t *ps)
{
    const unsigned char *s = ps->p, *q = s;
    bool real = false;
    char buf[64], *num = buf, *endp;
    size_t n;
    jl_value_t *v;

    if (q < ps->end && *q == '-')
        q++;
    if (q < ps->end && *q == '0') {
        q++;
        if (q < ps->end && *q >= '0' && *q <= '9')
            return fail(ps, s, "invalid token");
    } else if (q < ps->end && *q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    } else {
        return fail(ps, s, "invalid token");
    }
    if (q < ps->end && *q == '.') {
        real = true;
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, s, "invalid token");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            return fail(ps, s, "invalid token");
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    n = (size_t)(q - s);
    if (n >= sizeof(buf)) {
        num = malloc(n + 1);
        if (num == NULL)
            return oom(ps);
    }
    memcpy(num, s, n);
    num[n] = '\0';
    v = new_value(ps, real ? JL_REAL : JL_INTEGER);
    errno = 0;
    if (v == NULL) {
        /* oom reported */
    } else if (real) {
        v->u.r = strtod(num, &endp);
        if (errno == ERANGE && (v->u.r == HUGE_VAL || v->u.r == -HUGE_VAL)) /* not underflow */
            v = fail(ps, s, "real number overflow");
    } else {
        v->u.i = strtoll(num, &endp, 10);
        if (errno == ERANGE)
            v = fail(ps, s, v->u.i < 0 ? "too big negative integer" : "too big integer");
    }
    if (num != buf)
        free(num);
    ps->p = q;
    return v;
}

static jl_value_t *parse_value(parser_t *ps, int depth);

/* Move the top k stack slots into the arena. */
static bool take_children(parser_t *ps, jl_value_t *v, size_t base)
{
    size_t k = ps->sp - base;

    v->n = k;
    if (v->type == JL_ARRAY) {
        jl_value_t **items = k ? arena_alloc(ps->a, k * sizeof(*items)) : NULL;

        if (k && items == NULL)
            return oom(ps), false;
        for (size_t i = 0; i < k; i++)
            items[i] = ps->stack[base + i].value;
        v->u.items = items;
    } else {
        jl_member_t *m = k ? arena_alloc(ps->a, k * sizeof(*m)) : NULL;

        if (k && m == NULL)
            return oom(ps), false;
        for (size_t i = 0; i < k; i++) {
            m[i].key = ps->stack[base + i].key;
            m[i].key_len = ps->stack[base + i].key_len;
            m[i].value = ps->stack[base + i].value;
        }
        v->u.members = m;
    }
    ps->sp = base;
    return true;
}

static int cmp_slot_key(const void *a, const void *b)
{
    const slot_t *x = *(const slot_t *const *)a, *y = *(const slot_t *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Large objects: sort pointers to find duplicates in n log n (first duplicate by position). */
static const slot_t *large_duplicate(parser_t *ps, size_t base)
{
    size_t k = ps->sp - base;
    const slot_t **v = malloc(k * sizeof(*v));
    const slot_t *dup = NULL;

    if (v == NULL)
        return oom(ps), &ps->stack[base];
    for (size_t i = 0; i < k; i++)
        v[i] = &ps->stack[base + i];
    qsort(v, k, sizeof(*v), cmp_slot_key);
    for (size_t i = 1; i < k; i++) {
        if (cmp_slot_key(&v[i - 1], &v[i]) == 0) {
            const slot_t *later = v[i] > v[i - 1] ? v[i] : v[i - 1];

            if (dup == NULL || later < dup)
                dup = later;
        }
    }
    free(v);
    return dup;
}

static jl_value_t *parse_container(parser_t *ps, int depth, bool object)
{
    jl_value_t *v = new_value(ps, object ? JL_OBJECT : JL_ARRAY);
    size_t base = ps->sp;

    if (v == NULL)
        return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
        ps->p++;
        return take_children(ps, v, base) ? v : NULL;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        jl_value_t *item;

        if (object) {
            const unsigned char *at;

            skip_ws(ps);
            at = ps->p;
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, ps->p, "string or '}' expected");
            key = parse_string(ps, &key_len);
            if (key == NULL)
                return NULL;
            if (memchr(key, '\0', key_len) != NULL)
                return fail(ps, at, "NUL byte in object key not supported");
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, ps->p, "':' expected");
            ps->p++;
            if (ps->sp - base < 16) {
                /* small objects: check as we go (larger ones once complete, sorted) */
                for (size_t j = base; j < ps->sp; j++)
                    if (ps->stack[j].key_len == key_len &&
                        memcmp(ps->stack[j].key, key, key_len) == 0)
                        return fail(ps, at, "duplicate object key");
            }
        }
        skip_ws(ps);
        item = parse_value(ps, depth + 1);
        if (item == NULL)
            return NULL;
        if (!push(ps, key, key_len, item))
            return oom(ps);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
            ps->p++;
            break;
        }
        return fail(ps, ps->p, object ? "'}' expected" : "']' expected");
    }
    if (object && ps->sp - base > 16) {
        const slot_t *dup = large_duplicate(ps, base);

        if (ps->failed)
            return NULL;
        if (dup != NULL)
            return fail(ps, ps->p - 1, "duplicate object key \"%.40s\"", dup->key);
    }
    return take_children(ps, v, base) ? v : NULL;
}

static jl_value_t *literal(parser_t *ps, const char *word, jl_type_t t)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid token");
    ps->p += n;
    return new_value(ps, t);
}

static jl_value_t *parse_value(parser_t *ps, int depth)
{
    jl_value_t *v;

    if (depth > MAX_DEPTH)
        return fail(ps, ps->p, "maximum parsing depth reached");
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "premature end of input");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, depth, true);
    case '[':
        return parse_container(ps, depth, false);
    case '"': {
        size_t len;
        const char *s = parse_string(ps, &len);

        if (s == NULL)
            return NULL;
        v = new_value(ps, JL_STRING);
        if (v != NULL) {
            v->u.s = s;
            v->n = len;
        }
        return v;
    }
    case 't':
        return literal(ps, "true", JL_TRUE);
    case 'f':
        return literal(ps, "false", JL_FALSE);
    case 'n':
        return literal(ps, "null", JL_NULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps);
        if (*ps->p >= 0x80 && utf8_len(ps->p, ps->end) == 0)
            return fail(ps, ps->p, "unable to decode byte 0x%x", *ps->p);
        return fail(ps, ps->p, "invalid token");
    }
}

jl_value_t *jl_parse(const char *data, size_t len, jl_arena_t *a, jl_error_t *err)
{
    parser_t ps;
    jl_value_t *root = NULL;

    memset(err, 0, sizeof(*err));
    memset(&ps, 0, sizeof(ps));
    ps.start = ps.p = (const unsigned char *)data;
    ps.end = ps.p + len;
    ps.a = a;
    ps.err = err;
    skip_ws(&ps);
    if (ps.p >= ps.end)
        fail(&ps, ps.p, "'[' or '{' expected");
    else if (*ps.p != '[' && *ps.p != '{')
        fail(&ps, ps.p, "'[' or '{' expected");
    else
        root = parse_value(&ps, 1);
    if (root != NULL) {
        skip_ws(&ps);
        if (ps.p < ps.end)
            root = fail(&ps, ps.p, "end of file expected");
    }
    free(ps.stack);
    return ps.failed ? NULL : root;
}

const jl_value_t *jl_object_get(const jl_value_t *o, const char *key)
{
    size_t n;

    if (o == NULL || o->type != JL_OBJECT)
        return NULL;
    n = strlen(key);
    for (size_t i = 0; i < o->n; i++)
        if (o->u.members[i].key_len == n && memcmp(o->u.members[i].key, key, n) == 0)
            return o->u.members[i].value;
    return NULL;
}
