/*
 * log.c - logfmt logger: builds one whole line per record and writes it with a single fwrite,
 * so records of concurrent threads never interleave. Redacts secrets (values of secret-looking
 * keys, conninfo and URI passwords, also inside messages) before anything is written.
 * Holds no state of its own: the context lives in xdcr_log_t.
 */
#include "xdcr/log.h"

#include "xdcr/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REDACTED "[redacted]"

/* A growable (or, with fixed, caller-owned and truncating) NUL-terminated string. */
typedef struct sbuf {
    char *p;
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes available at p, including the NUL */
    bool fixed; /* p is the caller's buffer: never grows */
    bool truncated;
    char inline_buf[512];
} sbuf_t;

static void sb_init(sbuf_t *sb)
{
    sb->p = sb->inline_buf;
    sb->len = 0;
    sb->cap = sizeof(sb->inline_buf);
    sb->fixed = false;
    sb->truncated = false;
    sb->p[0] = '\0';
}

static void sb_init_fixed(sbuf_t *sb, char *out, size_t out_len)
{
    sb->p = out;
    sb->len = 0;
    sb->cap = out_len;
    sb->fixed = true;
    sb->truncated = false;
    if (out_len > 0)
        out[0] = '\0';
}

static void sb_free(sbuf_t *sb)
{
    if (!sb->fixed && sb->p != sb->inline_buf)
        free(sb->p);
    sb->p = NULL;
}

/* Make room for n more bytes plus the NUL; false when that is not possible. */
static bool sb_reserve(sbuf_t *sb, size_t n)
{
    size_t need, cap;
    char *np;

    if (sb->cap > sb->len && sb->cap - sb->len > n)
        return true;
    if (sb->fixed || n > SIZE_MAX / 2 - sb->len)
        return false;
    need = sb->len + n + 1;
    cap = sb->cap * 2;
    if (cap < need)
        cap = need;
    if (sb->p == sb->inline_buf) {
        np = malloc(cap);
        if (np != NULL)
            memcpy(np, sb->p, sb->len + 1);
    } else {
        np = realloc(sb->p, cap);
    }
    if (np == NULL)
        return false;
    sb->p = np;
    sb->cap = cap;
    return true;
}

static void sb_putn(sbuf_t *sb, const char *s, size_t n)
{
    if (!sb_reserve(sb, n)) {
        sb->truncated = true;
        if (sb->cap <= sb->len + 1)
            return;
        n = sb->cap - sb->len - 1;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_puts(sbuf_t *sb, const char *s)
{
    sb_putn(sb, s, strlen(s));
}

static void sb_putc(sbuf_t *sb, char c)
{
    sb_putn(sb, &c, 1);
}

static void sb_vprintf(sbuf_t *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void sb_vprintf(sbuf_t *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if (!sb_reserve(sb, (size_t)n)) {
        sb->truncated = true;
        if (sb->cap <= sb->len + 1)
            return;
    }
    /* vsnprintf truncates to what fits when the reservation failed. */
    vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
    sb->len += (size_t)n < sb->cap - sb->len ? (size_t)n : sb->cap - sb->len - 1;
}

static void sb_printf(sbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

/* ---- redaction ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool ci_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool ci_contains(const char *s, const char *needle)
{
    size_t n = strlen(needle);

    for (; *s != '\0'; s++)
        if (strncasecmp(s, needle, n) == 0)
            return true;
    return false;
}

bool xdcr_log_is_secret_key(const char *key)
{
    /*
     * Substrings, case-insensitive: covers sasl.password, ssl.key.password,
     * ssl.keystore.password, sasl.oauthbearer.client.secret, pg.password and friends. The last
     * three are the other properties librdkafka itself marks sensitive.
     */
    static const char *const needles[] = {
        "password",
        "passwd",
        "secret",
        "token",
        "ssl.key.pem",
        "ssl_key",
        "sasl.oauthbearer.config",
    };

    if (key == NULL)
        return false;
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (ci_contains(key, needles[i]))
            return true;
    return false;
}

/*
 * "postgres[ql]://user:pw@host...": copy up to and including the ':' of the userinfo, then
 * "[redacted]", and continue at the '@'. Returns the number of input bytes consumed, 0 if s
 * does not start such a URI with a password.
 */
static size_t redact_uri_userinfo(sbuf_t *sb, const char *s)
{
    size_t scheme, end, at = 0, colon = 0;
    bool have_at = false, have_colon = false;

    if (ci_prefix(s, "postgresql://"))
        scheme = strlen("postgresql://");
    else if (ci_prefix(s, "postgres://"))
        scheme = strlen("postgres://");
    else
        return 0;
    /* The authority ends at the path, query or fragment; take the last '@' before it. */
    for (end = scheme; s[end] != '\0' && s[end] != '/' && s[end] != '?' && s[end] != '#' &&
                       !is_space(s[end]) && s[end] != '"' && s[end] != '\'';
         end++)
        if (s[end] == '@') {
            at = end;
            have_at = true;
        }
    if (!have_at)
        return 0;
    for (size_t i = scheme; i < at; i++)
        if (s[i] == ':') {
            colon = i;
            have_colon = true;
            break;
        }
    if (!have_colon)
        return 0;
    sb_putn(sb, s, colon + 1);
    sb_puts(sb, REDACTED);
    return at;
}

/*
 * "[ssl]password = value" where value is bare, 'single quoted' (backslash escapes, libpq) or
 * "double quoted"; in a URI query (keyword after '?' or '&') the value ends at '&' or '#'.
 * start is the beginning of the whole input, s points at "password". Returns the input bytes
 * consumed, 0 if this is not a password assignment.
 */
static size_t redact_password_kw(sbuf_t *sb, const char *start, const char *s)
{
    const char *p = s + strlen("password");
    const char *kw = s;
    bool uri_query;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=')
        return 0;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    while (kw > start && is_word(kw[-1]))
        kw--;
    uri_query = kw > start && (kw[-1] == '?' || kw[-1] == '&');
    sb_putn(sb, s, (size_t)(p - s));
    if (*p == '\'' || *p == '"') {
        char q = *p++;

        while (*p != '\0' && *p != q) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            p++;
        }
        if (*p == q)
            p++;
    } else {
        while (*p != '\0' && !is_space(*p)) {
            if (uri_query && (*p == '&' || *p == '#'))
                break;
            if (!uri_query && *p == '\\' && p[1] != '\0')
                p++;
            p++;
        }
    }
    sb_puts(sb, REDACTED);
    return (size_t)(p - s);
}

static void redact_into(sbuf_t *sb, const char *in)
{
    const char *s = in;

    while (*s != '\0') {
        size_t n = 0;

        if (*s == 'p' || *s == 'P') {
            n = redact_uri_userinfo(sb, s);
            if (n == 0 && ci_prefix(s, "password"))
                n = redact_password_kw(sb, in, s);
        }
        if (n > 0) {
            s += n;
            continue;
        }
        sb_putc(sb, *s++);
    }
}

char *xdcr_redact_conninfo(const char *in, char *out, size_t out_len)
{
    sbuf_t sb;

    if (out == NULL || out_len == 0)
        return out;
    sb_init_fixed(&sb, out, out_len);
    if (in != NULL)
        redact_into(&sb, in);
    return out;
}

/* ---- logfmt ---- */

static bool needs_quote(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == 0x7F)
            return true;
    return false;
}

static void put_escaped(sbuf_t *sb, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            sb_puts(sb, "\\\"");
            break;
        case '\\':
            sb_puts(sb, "\\\\");
            break;
        case '\n':
            sb_puts(sb, "\\n");
            break;
        case '\t':
            sb_puts(sb, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                sb_printf(sb, "\\u%04x", (unsigned)*p);
            else
                sb_putc(sb, (char)*p);
        }
    }
}

static void put_value(sbuf_t *sb, const char *v, bool force_quote)
{
    if (force_quote || needs_quote(v)) {
        sb_putc(sb, '"');
        put_escaped(sb, v);
        sb_putc(sb, '"');
    } else {
        sb_puts(sb, v);
    }
}

/* Keys come from code, but never let one break the line format. */
static void put_key(sbuf_t *sb, const char *k)
{
    if (k == NULL || *k == '\0') {
        sb_putc(sb, '_');
        return;
    }
    for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++)
        sb_putc(sb, (*p <= ' ' || *p == '=' || *p == '"' || *p == 0x7F) ? '_' : (char)*p);
}

/* key=value with the value redacted as xdcr_log_kv documents. */
static void put_field(sbuf_t *sb, const char *key, const char *value)
{
    put_key(sb, key);
    sb_putc(sb, '=');
    if (value == NULL) {
        put_value(sb, "", false);
    } else if (xdcr_log_is_secret_key(key)) {
        put_value(sb, REDACTED, false);
    } else {
        sbuf_t red;

        sb_init(&red);
        redact_into(&red, value);
        put_value(sb, red.p, false);
        sb_free(&red);
    }
}

void xdcr_log_init(xdcr_log_t *lg, xdcr_log_level_t level, const char *comp, FILE *out)
{
    sbuf_t sb;

    if (lg == NULL)
        return;
    lg->level = level;
    lg->out = out;
    lg->context[0] = '\0';
    if (comp != NULL) {
        sb_init_fixed(&sb, lg->context, sizeof(lg->context));
        put_field(&sb, "comp", comp);
        if (sb.truncated)
            lg->context[0] = '\0';
    }
}

void xdcr_log_add_context(xdcr_log_t *lg, const char *key, const char *value)
{
    size_t used;
    sbuf_t sb;

    if (lg == NULL)
        return;
    used = strnlen(lg->context, sizeof(lg->context));
    sb_init(&sb);
    if (used > 0)
        sb_putc(&sb, ' ');
    put_field(&sb, key, value);
    /* A field that does not fit whole is dropped rather than cut in the middle. */
    if (!sb.truncated && used + sb.len < sizeof(lg->context))
        memcpy(lg->context + used, sb.p, sb.len + 1);
    sb_free(&sb);
}

int xdcr_log_level_parse(const char *s, xdcr_log_level_t *out)
{
    static const struct {
        const char *name;
        xdcr_log_level_t level;
    } names[] = {
        {"error", XDCR_LOG_ERROR}, {"warn", XDCR_LOG_WARN},   {"warning", XDCR_LOG_WARN},
        {"info", XDCR_LOG_INFO},   {"debug", XDCR_LOG_DEBUG},
    };

    if (s == NULL || out == NULL)
        return XDCR_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    return XDCR_EINVAL;
}

const char *xdcr_log_level_name(xdcr_log_level_t level)
{
    switch (level) {
    case XDCR_LOG_ERROR:
        return "error";
    case XDCR_LOG_WARN:
        return "warn";
    case XDCR_LOG_INFO:
        return "info";
    case XDCR_LOG_DEBUG:
        return "debug";
    }
    return "unknown";
}

static bool enabled(const xdcr_log_t *lg, xdcr_log_level_t level)
{
    return lg != NULL && (int)level >= (int)XDCR_LOG_ERROR && level <= XDCR_LOG_DEBUG &&
           level <= lg->level;
}

/* "ts=... level=... <context> " */
static void put_header(sbuf_t *sb, const xdcr_log_t *lg, xdcr_log_level_t level)
{
    struct timespec now;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        now.tv_sec = time(NULL);
        now.tv_nsec = 0;
    }
    if (gmtime_r(&now.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    sb_printf(sb, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int)(now.tv_nsec / 1000000), xdcr_log_level_name(level));
    if (lg->context[0] != '\0') {
        sb_putn(sb, lg->context, strnlen(lg->context, sizeof(lg->context)));
        sb_putc(sb, ' ');
    }
}

static void put_msg(sbuf_t *sb, const char *msg)
{
    sbuf_t red;

    sb_puts(sb, "msg=");
    sb_init(&red);
    redact_into(&red, msg != NULL ? msg : "");
    put_value(sb, red.p, true);
    sb_free(&red);
}

static void emit(const xdcr_log_t *lg, sbuf_t *sb)
{
    FILE *out = lg->out != NULL ? lg->out : stderr;

    sb_putc(sb, '\n');
    if (sb->truncated && sb->len > 0)
        sb->p[sb->len - 1] = '\n'; /* out of memory: still one whole line */
    /* One fwrite per record: stdio locks the stream per call, so lines never interleave. */
    fwrite(sb->p, 1, sb->len, out);
    fflush(out);
}

void xdcr_log_write(const xdcr_log_t *lg, xdcr_log_level_t level, const char *fmt, ...)
{
    sbuf_t line, msg;
    va_list ap;

    if (!enabled(lg, level))
        return;
    sb_init(&msg);
    if (fmt != NULL) {
        va_start(ap, fmt);
        sb_vprintf(&msg, fmt, ap);
        va_end(ap);
    }
    sb_init(&line);
    put_header(&line, lg, level);
    put_msg(&line, msg.p);
    emit(lg, &line);
    sb_free(&line);
    sb_free(&msg);
}

void xdcr_log_kv(const xdcr_log_t *lg, xdcr_log_level_t level, const char *msg, ...)
{
    const char *key;
    sbuf_t line;
    va_list ap;

    if (!enabled(lg, level))
        return;
    sb_init(&line);
    put_header(&line, lg, level);
    put_msg(&line, msg);
    va_start(ap, msg);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        sb_putc(&line, ' ');
        put_field(&line, key, value);
    }
    va_end(ap);
    emit(lg, &line);
    sb_free(&line);
}
