/*
 * config.c - the configuration loader: fills a config struct from an option table through
 * defaults, a `key = value` file, the environment and flags (later wins), collects pass-through
 * keys, and prints --help and the Markdown reference from the same table.
 * Reads only the config file and files named in it; never prints a secret.
 */
#include "xdcr/config.h"

#include "xdcr/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64 * 1024) /* bytes */
#define SHOW_VALUE_MAX 80           /* longest value quoted in an error message, in bytes */
#define REDACTED "[redacted]"

/* ---- small helpers ---- */

static char *xstrfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* malloc'd formatted string, NULL when out of memory. */
static char *xstrfmt(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int oom(xdcr_error_t *err)
{
    return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory while loading the configuration");
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
           c == '_' || c == '-';
}

/* Copy s into buf for an error message, shortened with "..." when long. */
static const char *show_value(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s);

    if (n <= SHOW_VALUE_MAX)
        snprintf(buf, len, "%s", s);
    else
        snprintf(buf, len, "%.*s...", SHOW_VALUE_MAX, s);
    return buf;
}

static void *field_of(void *cfg, const xdcr_option_t *o)
{
    return (char *)cfg + o->offset;
}

static size_t option_count(const xdcr_config_spec_t *spec)
{
    size_t n = 0;

    if (spec->options != NULL)
        while (spec->options[n].name != NULL)
            n++;
    return n;
}

static const xdcr_option_t *find_option(const xdcr_config_spec_t *spec, const char *name,
                                        size_t len)
{
    if (spec->options == NULL)
        return NULL;
    for (const xdcr_option_t *o = spec->options; o->name != NULL; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* True when name (len bytes) is "<prefix><something>". */
static bool is_passthrough(const xdcr_config_spec_t *spec, const char *name, size_t len)
{
    size_t plen;

    if (spec->passthrough_prefix == NULL)
        return false;
    plen = strlen(spec->passthrough_prefix);
    return plen > 0 && len > plen && memcmp(name, spec->passthrough_prefix, plen) == 0;
}

/*
 * A FILE option's value is a path, not a secret, even when its name contains "password"
 * (pg.password.file); XDCR_OPT_F_SECRET always wins.
 */
static bool option_is_secret(const xdcr_option_t *o)
{
    if (o->flags & XDCR_OPT_F_SECRET)
        return true;
    return !(o->flags & XDCR_OPT_F_FILE) && xdcr_log_is_secret_key(o->name);
}

/* "pg.conninfo" -> "<prefix>PG_CONNINFO"; malloc'd; NULL without a prefix or memory. */
static char *env_name(const char *env_prefix, const char *name)
{
    size_t plen;
    char *s;

    if (env_prefix == NULL)
        return NULL;
    s = xstrfmt("%s%s", env_prefix, name);
    if (s == NULL)
        return NULL;
    plen = strlen(env_prefix);
    for (char *p = s + plen; *p != '\0'; p++)
        *p = (*p == '.' || *p == '-') ? '_' : to_upper(*p);
    return s;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    if (envp == NULL)
        return NULL;
    for (char *const *e = envp; *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static const char *type_name(xdcr_opt_type_t t)
{
    switch (t) {
    case XDCR_OPT_STRING:
        return "string";
    case XDCR_OPT_INT:
        return "int";
    case XDCR_OPT_BOOL:
        return "bool";
    case XDCR_OPT_DURATION:
        return "duration";
    case XDCR_OPT_SIZE:
        return "size";
    case XDCR_OPT_ENUM:
        return "enum";
    case XDCR_OPT_LIST:
        return "list";
    }
    return "?";
}

/* ---- value parsers: they report a reason that never contains the value ---- */

/* Trimmed [*b, *e) of s. */
static void trim(const char *s, const char **b, const char **e)
{
    const char *end = s + strlen(s);

    while (is_space(*s))
        s++;
    while (end > s && is_space(end[-1]))
        end--;
    *b = s;
    *e = end;
}

/* Unsigned decimal digits at *p (at least one), <= INT64_MAX; advances *p. */
static int parse_digits(const char **p, const char *e, int64_t *out, const char **why)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s >= e || !is_digit(*s)) {
        *why = "expected a number";
        return XDCR_EPARSE;
    }
    for (; s < e && is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > ((uint64_t)INT64_MAX - d) / 10) {
            *why = "number is too large";
            return XDCR_ERANGE;
        }
        v = v * 10 + d;
    }
    *p = s;
    *out = (int64_t)v;
    return 0;
}

static int parse_int64_raw(const char *s, int64_t *out, const char **why)
{
    const char *p, *e;
    bool neg = false;
    uint64_t v = 0;

    trim(s, &p, &e);
    if (p < e && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (p >= e || !is_digit(*p)) {
        *why = "expected an integer";
        return XDCR_EPARSE;
    }
    for (; p < e; p++) {
        unsigned d;

        if (!is_digit(*p)) {
            *why = "expected an integer";
            return XDCR_EPARSE;
        }
        d = (unsigned)(*p - '0');
        /* The limit is INT64_MAX, or INT64_MAX + 1 for a negative number. */
        if (v > ((uint64_t)INT64_MAX + (neg ? 1u : 0u) - d) / 10) {
            *why = "integer out of range";
            return XDCR_ERANGE;
        }
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

typedef struct unit {
    const char *name;
    int64_t mult;
} unit_t;

/* "<digits>[ ]<unit>" with unit looked up in units (case-sensitive unless ci). */
static int parse_with_unit(const char *s, const unit_t *units, bool ci, int64_t *out,
                           const char *bad_format, const char **why)
{
    const char *p, *e, *u;
    int64_t n;
    size_t ulen;
    int rc;

    trim(s, &p, &e);
    rc = parse_digits(&p, e, &n, why);
    if (rc == XDCR_EPARSE)
        *why = bad_format;
    if (rc != 0)
        return rc;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    u = p;
    ulen = (size_t)(e - u);
    for (const unit_t *x = units; x->name != NULL; x++) {
        if (strlen(x->name) != ulen ||
            (ci ? strncasecmp(x->name, u, ulen) : strncmp(x->name, u, ulen)) != 0)
            continue;
        if (n > INT64_MAX / x->mult) {
            *why = "value is too large";
            return XDCR_ERANGE;
        }
        *out = n * x->mult;
        return 0;
    }
    *why = bad_format;
    return XDCR_EPARSE;
}

static const unit_t duration_units[] = {
    {"", 1},        {"ms", 1},      {"s", 1000},     {"m", 60 * 1000},
    {"min", 60000}, {"h", 3600000}, {"d", 86400000}, {NULL, 0},
};

static const unit_t size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", INT64_C(1) << 10},
    {"kb", INT64_C(1) << 10},
    {"kib", INT64_C(1) << 10},
    {"m", INT64_C(1) << 20},
    {"mb", INT64_C(1) << 20},
    {"mib", INT64_C(1) << 20},
    {"g", INT64_C(1) << 30},
    {"gb", INT64_C(1) << 30},
    {"gib", INT64_C(1) << 30},
    {"t", INT64_C(1) << 40},
    {"tb", INT64_C(1) << 40},
    {"tib", INT64_C(1) << 40},
    {NULL, 0},
};

static int parse_duration_raw(const char *s, int64_t *out, const char **why)
{
    static const char fmt[] =
        "expected a non-negative integer with an optional unit ms, s, m, h or d (default ms)";

    return parse_with_unit(s, duration_units, false, out, fmt, why);
}

static int parse_size_raw(const char *s, int64_t *out, const char **why)
{
    static const char fmt[] = "expected a non-negative integer with an optional unit B, kB, MB, "
                              "GB or TB (default bytes, 1 kB = 1024 B)";

    return parse_with_unit(s, size_units, true, out, fmt, why);
}

static int parse_bool_raw(const char *s, bool *out, const char **why)
{
    static const char *const yes[] = {"true", "on", "yes", "1"};
    static const char *const no[] = {"false", "off", "no", "0"};
    const char *b, *e;
    size_t n;

    trim(s, &b, &e);
    n = (size_t)(e - b);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strlen(yes[i]) == n && strncasecmp(yes[i], b, n) == 0) {
            *out = true;
            return 0;
        }
        if (strlen(no[i]) == n && strncasecmp(no[i], b, n) == 0) {
            *out = false;
            return 0;
        }
    }
    *why = "expected true, false, on, off, yes, no, 1 or 0";
    return XDCR_EPARSE;
}

/* Helpers shared with the CLI: the message quotes the value (they know nothing of secrets). */

int xdcr_parse_duration_ms(const char *s, int64_t *out_ms, xdcr_error_t *err)
{
    char shown[SHOW_VALUE_MAX + 4];
    const char *why = "";
    int rc;

    if (s == NULL || out_ms == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "duration is missing");
    rc = parse_duration_raw(s, out_ms, &why);
    if (rc != 0)
        return xdcr_error_set(err, rc, false, "invalid duration \"%s\": %s",
                              show_value(s, shown, sizeof(shown)), why);
    return 0;
}

int xdcr_parse_size_bytes(const char *s, int64_t *out_bytes, xdcr_error_t *err)
{
    char shown[SHOW_VALUE_MAX + 4];
    const char *why = "";
    int rc;

    if (s == NULL || out_bytes == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "size is missing");
    rc = parse_size_raw(s, out_bytes, &why);
    if (rc != 0)
        return xdcr_error_set(err, rc, false, "invalid size \"%s\": %s",
                              show_value(s, shown, sizeof(shown)), why);
    return 0;
}

int xdcr_parse_bool(const char *s, bool *out, xdcr_error_t *err)
{
    char shown[SHOW_VALUE_MAX + 4];
    const char *why = "";
    int rc;

    if (s == NULL || out == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "boolean is missing");
    rc = parse_bool_raw(s, out, &why);
    if (rc != 0)
        return xdcr_error_set(err, rc, false, "invalid boolean \"%s\": %s",
                              show_value(s, shown, sizeof(shown)), why);
    return 0;
}

int xdcr_parse_int64(const char *s, int64_t *out, xdcr_error_t *err)
{
    char shown[SHOW_VALUE_MAX + 4];
    const char *why = "";
    int rc;

    if (s == NULL || out == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "integer is missing");
    rc = parse_int64_raw(s, out, &why);
    if (rc != 0)
        return xdcr_error_set(err, rc, false, "invalid integer \"%s\": %s",
                              show_value(s, shown, sizeof(shown)), why);
    return 0;
}

/* ---- formatting of values for bounds, help and docs ---- */

static void format_duration(int64_t ms, char *buf, size_t len)
{
    static const unit_t units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {NULL, 0}};

    if (ms > 0)
        for (const unit_t *u = units; u->name != NULL; u++)
            if (ms % u->mult == 0) {
                snprintf(buf, len, "%" PRId64 "%s", ms / u->mult, u->name);
                return;
            }
    snprintf(buf, len, "%" PRId64 "ms", ms);
}

static void format_size(int64_t bytes, char *buf, size_t len)
{
    static const unit_t units[] = {{"TB", INT64_C(1) << 40},
                                   {"GB", INT64_C(1) << 30},
                                   {"MB", INT64_C(1) << 20},
                                   {"kB", INT64_C(1) << 10},
                                   {NULL, 0}};

    if (bytes > 0)
        for (const unit_t *u = units; u->name != NULL; u++)
            if (bytes % u->mult == 0) {
                snprintf(buf, len, "%" PRId64 "%s", bytes / u->mult, u->name);
                return;
            }
    snprintf(buf, len, "%" PRId64 "B", bytes);
}

static void format_number(const xdcr_option_t *o, int64_t v, char *buf, size_t len)
{
    if (o->type == XDCR_OPT_DURATION)
        format_duration(v, buf, len);
    else if (o->type == XDCR_OPT_SIZE)
        format_size(v, buf, len);
    else
        snprintf(buf, len, "%" PRId64, v);
}

static bool has_bounds(const xdcr_option_t *o)
{
    return (o->type == XDCR_OPT_INT || o->type == XDCR_OPT_DURATION || o->type == XDCR_OPT_SIZE) &&
           o->min <= o->max;
}

/* "a, b, c" for an ENUM's accepted names. */
static void format_enum_values(const xdcr_option_t *o, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    if (o->enum_values == NULL)
        return;
    for (const char *const *v = o->enum_values; *v != NULL && used < len; v++) {
        int n = snprintf(buf + used, len - used, "%s%s", v == o->enum_values ? "" : ", ", *v);

        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* "comma separated, spaces trimmed, no empty element" -> "a,b,c"; malloc'd. */
static int normalize_list(const char *s, char **out, const char **why)
{
    size_t n = strlen(s);
    char *dst = malloc(n + 1);
    const char *b, *e;
    size_t used = 0;

    if (dst == NULL)
        return XDCR_ENOMEM;
    trim(s, &b, &e);
    if (b == e) {
        dst[0] = '\0';
        *out = dst;
        return 0;
    }
    for (;;) {
        const char *comma = memchr(b, ',', (size_t)(e - b));
        const char *ie = comma != NULL ? comma : e;
        const char *ib = b;

        while (ib < ie && is_space(*ib))
            ib++;
        while (ie > ib && is_space(ie[-1]))
            ie--;
        if (ib == ie) {
            free(dst);
            *why = "empty element in a comma separated list";
            return XDCR_EPARSE;
        }
        if (used > 0)
            dst[used++] = ',';
        memcpy(dst + used, ib, (size_t)(ie - ib));
        used += (size_t)(ie - ib);
        if (comma == NULL)
            break;
        b = comma + 1;
    }
    dst[used] = '\0';
    *out = dst;
    return 0;
}

/* ---- setting one option ---- */

static int bad_value(const xdcr_option_t *o, const char *value, const char *source, const char *why,
                     xdcr_error_t *err)
{
    char shown[SHOW_VALUE_MAX + 4];

    if (option_is_secret(o))
        return xdcr_error_set(err, XDCR_ECONFIG, false, "invalid value for \"%s\" (%s): %s",
                              o->name, source, why);
    return xdcr_error_set(err, XDCR_ECONFIG, false, "invalid value \"%s\" for \"%s\" (%s): %s",
                          show_value(value, shown, sizeof(shown)), o->name, source, why);
}

static int check_bounds(const xdcr_option_t *o, int64_t v, const char *source, xdcr_error_t *err)
{
    char lo[32], hi[32], shown[32];

    if (!has_bounds(o) || (v >= o->min && v <= o->max))
        return 0;
    format_number(o, o->min, lo, sizeof(lo));
    format_number(o, o->max, hi, sizeof(hi));
    if (option_is_secret(o))
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "invalid value for \"%s\" (%s): outside the valid range %s..%s",
                              o->name, source, lo, hi);
    format_number(o, v, shown, sizeof(shown));
    return xdcr_error_set(err, XDCR_ECONFIG, false,
                          "invalid value for \"%s\" (%s): %s is outside the valid range %s..%s",
                          o->name, source, shown, lo, hi);
}

static int set_value(void *cfg, const xdcr_option_t *o, const char *value, const char *source,
                     xdcr_error_t *err)
{
    void *f = field_of(cfg, o);
    const char *why = "";
    int64_t n = 0;
    char *s = NULL;
    bool b = false;
    int rc;

    switch (o->type) {
    case XDCR_OPT_STRING:
        s = strdup(value);
        if (s == NULL)
            return oom(err);
        free(*(char **)f);
        *(char **)f = s;
        return 0;
    case XDCR_OPT_LIST:
        rc = normalize_list(value, &s, &why);
        if (rc == XDCR_ENOMEM)
            return oom(err);
        if (rc != 0)
            return bad_value(o, value, source, why, err);
        free(*(char **)f);
        *(char **)f = s;
        return 0;
    case XDCR_OPT_BOOL:
        if (parse_bool_raw(value, &b, &why) != 0)
            return bad_value(o, value, source, why, err);
        *(bool *)f = b;
        return 0;
    case XDCR_OPT_INT:
    case XDCR_OPT_DURATION:
    case XDCR_OPT_SIZE:
        if (o->type == XDCR_OPT_INT)
            rc = parse_int64_raw(value, &n, &why);
        else if (o->type == XDCR_OPT_DURATION)
            rc = parse_duration_raw(value, &n, &why);
        else
            rc = parse_size_raw(value, &n, &why);
        if (rc != 0)
            return bad_value(o, value, source, why, err);
        rc = check_bounds(o, n, source, err);
        if (rc != 0)
            return rc;
        *(int64_t *)f = n;
        return 0;
    case XDCR_OPT_ENUM: {
        char names[256], reason[300];
        const char *b0, *e0;

        trim(value, &b0, &e0);
        for (int i = 0; o->enum_values != NULL && o->enum_values[i] != NULL; i++) {
            const char *name = o->enum_values[i];

            if (strlen(name) == (size_t)(e0 - b0) &&
                strncasecmp(name, b0, (size_t)(e0 - b0)) == 0) {
                *(int *)f = i;
                return 0;
            }
        }
        format_enum_values(o, names, sizeof(names));
        snprintf(reason, sizeof(reason), "expected one of: %s", names);
        return bad_value(o, value, source, reason, err);
    }
    }
    return xdcr_error_set(err, XDCR_EINVAL, false, "option \"%s\" has an unknown type", o->name);
}

/* A FILE option must name a readable file (not a directory). */
static int check_file(const xdcr_option_t *o, const char *path, const char *source,
                      xdcr_error_t *err)
{
    struct stat st;
    int fd, rc = 0;

    /* O_NONBLOCK: a FIFO must not hang the check. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "could not read file \"%s\" named by \"%s\" (%s): %s", path, o->name,
                              source, strerror(errno));
    if (fstat(fd, &st) != 0)
        rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                            "could not read file \"%s\" named by \"%s\" (%s): %s", path, o->name,
                            source, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                            "could not read file \"%s\" named by \"%s\" (%s): is a directory", path,
                            o->name, source);
    close(fd);
    return rc;
}

static int unknown_key(const char *key, size_t len, const char *source, xdcr_error_t *err)
{
    if (len > 100)
        len = 100;
    return xdcr_error_set(err, XDCR_ECONFIG, false, "unknown configuration key \"%.*s\" (%s)",
                          (int)len, key, source);
}

static int set_passthrough(const xdcr_config_spec_t *spec, xdcr_kv_list_t *pt, const char *key,
                           const char *value, const char *source, xdcr_error_t *err)
{
    int rc = xdcr_kv_list_set(pt, key + strlen(spec->passthrough_prefix), value, source, err);

    return rc == XDCR_ENOMEM ? oom(err) : rc;
}

int xdcr_config_set(const xdcr_config_spec_t *spec, void *cfg, xdcr_kv_list_t *passthrough,
                    const char *key, const char *value, const char *source, xdcr_error_t *err)
{
    const xdcr_option_t *o;
    int rc;

    if (spec == NULL || cfg == NULL || key == NULL || value == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "configuration key or value is missing");
    if (source == NULL)
        source = "set";
    o = find_option(spec, key, strlen(key));
    if (o != NULL) {
        rc = set_value(cfg, o, value, source, err);
        if (rc == 0 && (o->flags & XDCR_OPT_F_FILE) && o->type == XDCR_OPT_STRING &&
            value[0] != '\0')
            rc = check_file(o, value, source, err);
        return rc;
    }
    if (passthrough != NULL && is_passthrough(spec, key, strlen(key)))
        return set_passthrough(spec, passthrough, key, value, source, err);
    return unknown_key(key, strlen(key), source, err);
}

void xdcr_config_free(const xdcr_config_spec_t *spec, void *cfg)
{
    if (spec == NULL || cfg == NULL || spec->options == NULL)
        return;
    for (const xdcr_option_t *o = spec->options; o->name != NULL; o++) {
        if (o->type == XDCR_OPT_STRING || o->type == XDCR_OPT_LIST) {
            char **p = field_of(cfg, o);

            free(*p);
            *p = NULL;
        }
    }
}

/* ---- the loader ---- */

typedef struct load_state {
    const xdcr_config_spec_t *spec;
    void *cfg;
    xdcr_kv_list_t *pt; /* NULL when the spec has no pass-through prefix */
    size_t nopts;
    bool *set;      /* [nopts]: set by some source, defaults included */
    char **sources; /* [nopts]: where the current value came from (malloc'd) */
} load_state_t;

static int assign(load_state_t *st, const char *key, const char *value, const char *source,
                  xdcr_error_t *err)
{
    const xdcr_option_t *o = find_option(st->spec, key, strlen(key));
    size_t i;
    char *src;
    int rc;

    if (o == NULL) {
        if (st->pt != NULL && is_passthrough(st->spec, key, strlen(key)))
            return set_passthrough(st->spec, st->pt, key, value, source, err);
        return unknown_key(key, strlen(key), source, err);
    }
    i = (size_t)(o - st->spec->options);
    src = strdup(source);
    if (src == NULL)
        return oom(err);
    rc = set_value(st->cfg, o, value, source, err);
    if (rc != 0) {
        free(src);
        return rc;
    }
    free(st->sources[i]);
    st->sources[i] = src;
    st->set[i] = true;
    return 0;
}

static int apply_defaults(load_state_t *st, xdcr_error_t *err)
{
    for (size_t i = 0; i < st->nopts; i++) {
        const xdcr_option_t *o = &st->spec->options[i];
        int rc;

        if (o->default_value == NULL)
            continue;
        rc = assign(st, o->name, o->default_value, "default", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * Split one line in place into key and value. Returns 0 with *key NULL for blank and comment
 * lines, or -1 with *why set. Never puts the value into *why.
 */
static int parse_line(char *p, char **key, char **value, const char **why)
{
    char *k, *kend, *v;

    *key = NULL;
    *value = NULL;
    while (is_space(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    k = p;
    while (is_key_char(*p))
        p++;
    if (p == k) {
        *why = "expected a line of the form key = value";
        return -1;
    }
    kend = p;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=') {
        *why = "expected \"=\" after the key";
        return -1;
    }
    *kend = '\0';
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        char *dst = p;

        v = p;
        for (;;) {
            if (*p == '\0') {
                *why = "unterminated quoted value";
                return -1;
            }
            if (*p == q)
                break;
            if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            *dst++ = *p++;
        }
        *dst = '\0';
        p++;
        while (is_space(*p))
            p++;
        if (*p != '\0' && *p != '#') {
            *why = "unexpected text after the quoted value";
            return -1;
        }
    } else {
        char *end;

        v = p;
        /* A '#' starts a comment only at the start of the value or after whitespace. */
        while (*p != '\0' && !(*p == '#' && (p == v || is_space(p[-1]))))
            p++;
        end = p;
        while (end > v && is_space(end[-1]))
            end--;
        *end = '\0';
    }
    *key = k;
    *value = v;
    return 0;
}

static int load_file(load_state_t *st, const char *path, xdcr_error_t *err)
{
    char *line = NULL, *source = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    ssize_t n;
    FILE *f;
    int rc = 0;

    f = fopen(path, "re");
    if (f == NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "could not open configuration file \"%s\": %s", path,
                              strerror(errno));
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *p = line, *key, *value;
        const char *why = "";

        lineno++;
        free(source);
        source = xstrfmt("file %s:%u", path, lineno);
        if (source == NULL) {
            rc = oom(err);
            goto cleanup;
        }
        if (memchr(line, '\0', (size_t)n) != NULL) {
            rc = xdcr_error_set(err, XDCR_ECONFIG, false, "invalid line (%s): contains a NUL byte",
                                source);
            goto cleanup;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3; /* UTF-8 byte order mark */
        if (parse_line(p, &key, &value, &why) != 0) {
            rc = xdcr_error_set(err, XDCR_ECONFIG, false, "invalid line (%s): %s", source, why);
            goto cleanup;
        }
        if (key == NULL)
            continue;
        rc = assign(st, key, value, source, err);
        if (rc != 0)
            goto cleanup;
    }
    if (ferror(f))
        rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                            "could not read configuration file \"%s\": %s", path, strerror(errno));
cleanup:
    free(source);
    free(line);
    fclose(f);
    return rc;
}

/*
 * Kubernetes injects <SERVICE>_SERVICE_HOST, <SERVICE>_PORT, ... for every service in the
 * namespace; a service named "xdcr-kafka" would otherwise turn into bogus kafka.* properties.
 * No librdkafka property starts with "service." or "port".
 */
static bool is_service_link_env(const char *rest)
{
    return strncmp(rest, "SERVICE_", 8) == 0 || strncmp(rest, "PORT=", 5) == 0 ||
           strncmp(rest, "PORT_", 5) == 0;
}

/* True when the variable name (len bytes) is the environment name of an option. */
static bool is_option_env(const xdcr_config_spec_t *spec, const char *var, size_t len)
{
    for (const xdcr_option_t *o = spec->options; o != NULL && o->name != NULL; o++) {
        char *env = env_name(spec->env_prefix, o->name);
        bool same = env != NULL && strlen(env) == len && memcmp(env, var, len) == 0;

        free(env);
        if (same)
            return true;
    }
    return false;
}

static int apply_env(load_state_t *st, char *const *envp, xdcr_error_t *err)
{
    const xdcr_config_spec_t *spec = st->spec;
    char *pt_env = NULL, *name = NULL, *key = NULL, *source = NULL;
    int rc = 0;

    if (envp == NULL || spec->env_prefix == NULL)
        return 0;
    for (size_t i = 0; i < st->nopts; i++) {
        const char *v;

        name = env_name(spec->env_prefix, spec->options[i].name);
        if (name == NULL) {
            rc = oom(err);
            goto cleanup;
        }
        v = env_get(envp, name);
        if (v != NULL) {
            source = xstrfmt("env %s", name);
            if (source == NULL) {
                rc = oom(err);
                goto cleanup;
            }
            rc = assign(st, spec->options[i].name, v, source, err);
            free(source);
            source = NULL;
            if (rc != 0)
                goto cleanup;
        }
        free(name);
        name = NULL;
    }
    if (st->pt == NULL)
        goto cleanup;
    /* "kafka." -> "XDCR_KAFKA_" */
    pt_env = env_name(spec->env_prefix, spec->passthrough_prefix);
    if (pt_env == NULL) {
        rc = oom(err);
        goto cleanup;
    }
    for (char *const *e = envp; *e != NULL; e++) {
        size_t plen = strlen(pt_env), klen;
        const char *rest, *eq;

        if (strncmp(*e, pt_env, plen) != 0)
            continue;
        rest = *e + plen;
        eq = strchr(rest, '=');
        if (eq == NULL || eq == rest || is_service_link_env(rest) ||
            is_option_env(spec, *e, (size_t)(eq - *e)))
            continue;
        klen = (size_t)(eq - rest);
        key = xstrfmt("%s%.*s", spec->passthrough_prefix, (int)klen, rest);
        source = xstrfmt("env %.*s", (int)(plen + klen), *e);
        if (key == NULL || source == NULL) {
            rc = oom(err);
            goto cleanup;
        }
        for (char *p = key + strlen(spec->passthrough_prefix); *p != '\0'; p++)
            *p = *p == '_' ? '.' : to_lower(*p);
        /* An option under the prefix (kafka.topic) was read from the environment above. */
        if (find_option(spec, key, strlen(key)) == NULL) {
            rc = set_passthrough(spec, st->pt, key, eq + 1, source, err);
            if (rc != 0)
                goto cleanup;
        }
        free(key);
        free(source);
        key = source = NULL;
    }
cleanup:
    free(key);
    free(source);
    free(name);
    free(pt_env);
    return rc;
}

/*
 * --help, -h, --version, --check-config, -c/--config: record them in cli. Returns 1 when a[i]
 * was one of them (and *i moved past its value), 0 when not, or a negative error.
 */
static int builtin_arg(int argc, char *const *argv, int *i, xdcr_config_cli_t *cli,
                       xdcr_error_t *err)
{
    const char *a = argv[*i], *name = a + 2, *eq;
    size_t nlen;

    if (a[1] != '-') {
        if (strcmp(a, "-h") == 0) {
            cli->help = true;
            return 1;
        }
        if (a[1] != 'c')
            return xdcr_error_set(err, XDCR_ECONFIG, false, "unknown option \"%.2s\"", a);
        if (a[2] != '\0')
            cli->config_path = a + 2;
        else if (*i + 1 < argc && argv[*i + 1] != NULL)
            cli->config_path = argv[++*i];
        else
            return xdcr_error_set(err, XDCR_ECONFIG, false, "option -c requires a value");
        return 1;
    }
    eq = strchr(name, '=');
    nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if (nlen == 6 && strncmp(name, "config", 6) == 0) {
        if (eq != NULL)
            cli->config_path = eq + 1;
        else if (*i + 1 < argc && argv[*i + 1] != NULL)
            cli->config_path = argv[++*i];
        else
            cli->config_path = "";
        if (cli->config_path[0] == '\0')
            return xdcr_error_set(err, XDCR_ECONFIG, false, "option --config requires a value");
        return 1;
    }
    if (nlen == 4 && strncmp(name, "help", 4) == 0) {
        cli->help = true;
        if (eq == NULL)
            return 1;
        if (strcmp(eq + 1, "markdown") != 0)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "option --help takes no value or \"markdown\"");
        cli->help_markdown = true;
        return 1;
    } else if (nlen == 7 && strncmp(name, "version", 7) == 0)
        cli->version = true;
    else if (nlen == 12 && strncmp(name, "check-config", 12) == 0)
        cli->check_config = true;
    else
        return 0;
    if (eq != NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "option --%.*s does not take a value",
                              (int)nlen, name);
    return 1;
}

/*
 * Walk argv. Without apply, record the built-in flags in cli and reject malformed or unknown
 * arguments; with apply, set every --name=value / --name value in order.
 */
static int walk_args(load_state_t *st, int argc, char *const *argv, xdcr_config_cli_t *cli,
                     bool apply, xdcr_error_t *err)
{
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        const char *a = argv[i], *name, *eq, *value;
        const xdcr_option_t *o;
        char *key, *source;
        size_t nlen;
        int rc;

        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc && argv[i + 1] != NULL)
                return xdcr_error_set(err, XDCR_ECONFIG, false, "unexpected argument \"%.100s\"",
                                      argv[i + 1]);
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            return xdcr_error_set(err, XDCR_ECONFIG, false, "unexpected argument \"%.100s\"", a);
        rc = builtin_arg(argc, argv, &i, cli, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        name = a + 2;
        eq = strchr(name, '=');
        nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (nlen == 0)
            return xdcr_error_set(err, XDCR_ECONFIG, false, "missing option name after \"--\"");
        o = find_option(st->spec, name, nlen);
        if (o == NULL && (st->pt == NULL || !is_passthrough(st->spec, name, nlen))) {
            char src[128];

            snprintf(src, sizeof(src), "flag --%.*s", (int)(nlen > 100 ? 100 : nlen), name);
            return unknown_key(name, nlen, src, err);
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (o != NULL && o->type == XDCR_OPT_BOOL) {
            /* A bare boolean flag means true; it takes the next argument only if it is one. */
            const char *why;
            bool b;

            value = "true";
            if (i + 1 < argc && argv[i + 1] != NULL && parse_bool_raw(argv[i + 1], &b, &why) == 0)
                value = argv[++i];
        } else if (i + 1 < argc && argv[i + 1] != NULL) {
            value = argv[++i];
        } else {
            return xdcr_error_set(err, XDCR_ECONFIG, false, "option --%.*s requires a value",
                                  (int)(nlen > 100 ? 100 : nlen), name);
        }
        if (!apply)
            continue;
        key = xstrfmt("%.*s", (int)nlen, name);
        source = xstrfmt("flag --%.*s", (int)nlen, name);
        if (key == NULL || source == NULL)
            rc = oom(err);
        else
            rc = assign(st, key, value, source, err);
        free(key);
        free(source);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int validate(load_state_t *st, xdcr_error_t *err)
{
    const xdcr_config_spec_t *spec = st->spec;

    for (size_t i = 0; i < st->nopts; i++) {
        const xdcr_option_t *o = &spec->options[i];
        bool is_str = o->type == XDCR_OPT_STRING || o->type == XDCR_OPT_LIST;
        const char *s = is_str ? *(char **)field_of(st->cfg, o) : NULL;

        if ((o->flags & XDCR_OPT_F_REQUIRED) &&
            (!st->set[i] || (is_str && (s == NULL || s[0] == '\0')))) {
            char *env = env_name(spec->env_prefix, o->name);

            xdcr_error_set(err, XDCR_ECONFIG, false,
                           "missing required configuration key \"%s\": set it in the "
                           "configuration file,%s%s%s with --%s",
                           o->name, env != NULL ? " with " : "", env != NULL ? env : "",
                           env != NULL ? " or" : "", o->name);
            free(env);
            return XDCR_ECONFIG;
        }
        if ((o->flags & XDCR_OPT_F_FILE) && o->type == XDCR_OPT_STRING && s != NULL &&
            s[0] != '\0') {
            int rc = check_file(o, s, st->sources[i] != NULL ? st->sources[i] : "default", err);

            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int xdcr_config_load(const xdcr_config_spec_t *spec, void *cfg, xdcr_kv_list_t *passthrough,
                     char *const *envp, int argc, char *const *argv, xdcr_config_cli_t *cli,
                     xdcr_error_t *err)
{
    xdcr_config_cli_t local_cli = {0};
    load_state_t st = {0};
    const char *path;
    int rc;

    xdcr_error_clear(err);
    if (spec == NULL || cfg == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "configuration spec is missing");
    if (cli == NULL)
        cli = &local_cli;
    memset(cli, 0, sizeof(*cli));
    st.spec = spec;
    st.cfg = cfg;
    st.pt = spec->passthrough_prefix != NULL ? passthrough : NULL;
    st.nopts = option_count(spec);
    st.set = calloc(st.nopts + 1, sizeof(*st.set));
    st.sources = calloc(st.nopts + 1, sizeof(*st.sources));
    if (st.set == NULL || st.sources == NULL) {
        rc = oom(err);
        goto cleanup;
    }
    rc = walk_args(&st, argc, argv, cli, false, err);
    if (rc != 0)
        goto cleanup;
    rc = apply_defaults(&st, err);
    if (rc != 0 || cli->help || cli->version)
        goto cleanup;
    path = cli->config_path;
    if (path == NULL && spec->env_prefix != NULL) {
        char *name = env_name(spec->env_prefix, "config");

        if (name == NULL) {
            rc = oom(err);
            goto cleanup;
        }
        path = env_get(envp, name);
        free(name);
        if (path != NULL && path[0] == '\0')
            path = NULL;
    }
    if (path != NULL) {
        rc = load_file(&st, path, err);
        if (rc != 0)
            goto cleanup;
    }
    rc = apply_env(&st, envp, err);
    if (rc != 0)
        goto cleanup;
    rc = walk_args(&st, argc, argv, cli, true, err);
    if (rc != 0)
        goto cleanup;
    rc = validate(&st, err);
cleanup:
    if (st.sources != NULL)
        for (size_t i = 0; i < st.nopts; i++)
            free(st.sources[i]);
    free(st.sources);
    free(st.set);
    return rc;
}

/* ---- help and docs ---- */

/* What the default column shows; never a secret. */
static const char *default_text(const xdcr_option_t *o)
{
    if (o->default_value != NULL && option_is_secret(o))
        return "(secret)";
    if (o->default_value != NULL)
        return o->default_value[0] != '\0' ? o->default_value : "\"\"";
    if (o->flags & XDCR_OPT_F_REQUIRED)
        return "(required)";
    return "-";
}

/* Help text plus the accepted values or range, e.g. "batch size (range 1..10000)". */
static void describe(const xdcr_option_t *o, char *buf, size_t len)
{
    const char *help = o->help != NULL ? o->help : "";

    if (o->type == XDCR_OPT_ENUM) {
        char names[256];

        format_enum_values(o, names, sizeof(names));
        snprintf(buf, len, "%s%s(one of: %s)", help, help[0] != '\0' ? " " : "", names);
    } else if (has_bounds(o)) {
        char lo[32], hi[32];

        format_number(o, o->min, lo, sizeof(lo));
        format_number(o, o->max, hi, sizeof(hi));
        snprintf(buf, len, "%s%s(range %s..%s)", help, help[0] != '\0' ? " " : "", lo, hi);
    } else {
        snprintf(buf, len, "%s", help);
    }
}

void xdcr_config_print_help(const xdcr_config_spec_t *spec, FILE *out)
{
    size_t w_name = strlen("KEY"), w_type = strlen("TYPE"), w_def = strlen("DEFAULT");
    size_t w_env = strlen("ENVIRONMENT");
    const char *program;

    if (spec == NULL || out == NULL)
        return;
    program = spec->program != NULL ? spec->program : "xdcr";
    fprintf(out, "usage: %s [options] [--KEY=VALUE ...]\n", program);
    if (spec->summary != NULL)
        fprintf(out, "%s\n", spec->summary);
    fprintf(out, "\noptions:\n");
    fprintf(out, "  -c, --config FILE   read configuration from FILE (key = value lines)%s%s%s\n",
            spec->env_prefix != NULL ? "; also " : "",
            spec->env_prefix != NULL ? spec->env_prefix : "",
            spec->env_prefix != NULL ? "CONFIG" : "");
    fprintf(out, "      --check-config  validate the configuration and exit\n");
    fprintf(out, "  -h, --help          print this help and exit\n");
    fprintf(out, "      --version       print the version and exit\n");
    fprintf(out, "      --KEY=VALUE     set a configuration key (also --KEY VALUE)\n");

    for (size_t i = 0; spec->options != NULL && spec->options[i].name != NULL; i++) {
        const xdcr_option_t *o = &spec->options[i];
        char *env = env_name(spec->env_prefix, o->name);

        if (strlen(o->name) > w_name)
            w_name = strlen(o->name);
        if (strlen(type_name(o->type)) > w_type)
            w_type = strlen(type_name(o->type));
        if (strlen(default_text(o)) > w_def)
            w_def = strlen(default_text(o));
        if (env != NULL && strlen(env) > w_env)
            w_env = strlen(env);
        free(env);
    }
    fprintf(out, "\nconfiguration keys (later sources win: default, file, environment, flag):\n");
    fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w_name, "KEY", (int)w_type, "TYPE",
            (int)w_def, "DEFAULT", (int)w_env, "ENVIRONMENT", "DESCRIPTION");
    for (size_t i = 0; spec->options != NULL && spec->options[i].name != NULL; i++) {
        const xdcr_option_t *o = &spec->options[i];
        char *env = env_name(spec->env_prefix, o->name);
        char desc[768];

        describe(o, desc, sizeof(desc));
        fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w_name, o->name, (int)w_type,
                type_name(o->type), (int)w_def, default_text(o), (int)w_env,
                env != NULL ? env : "-", desc);
        free(env);
    }
    fprintf(out, "\ndurations take a unit ms, s, m, h or d (default ms); sizes B, kB, MB, GB or TB "
                 "(1 kB = 1024 B, default bytes)\n");
    if (spec->passthrough_prefix != NULL) {
        char *env = env_name(spec->env_prefix, spec->passthrough_prefix);

        fprintf(out,
                "every key starting with \"%s\" is passed through unchanged without the prefix, "
                "e.g. --%sbootstrap.servers=HOST:PORT",
                spec->passthrough_prefix, spec->passthrough_prefix);
        if (env != NULL)
            fprintf(out, " or %sBOOTSTRAP_SERVERS (underscores become dots)", env);
        fputc('\n', out);
        free(env);
    }
}

/* A Markdown table cell: '|' escaped, newlines flattened. */
static void md_cell(FILE *out, const char *s, bool code)
{
    fputs(code ? " `" : " ", out);
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
    fputs(code ? "` |" : " |", out);
}

void xdcr_config_print_markdown(const xdcr_config_spec_t *spec, FILE *out)
{
    if (spec == NULL || out == NULL)
        return;
    fprintf(out, "## %s\n\n", spec->program != NULL ? spec->program : "xdcr");
    if (spec->summary != NULL)
        fprintf(out, "%s\n\n", spec->summary);
    fprintf(out, "| key | type | default | env | description |\n");
    fprintf(out, "|---|---|---|---|---|\n");
    for (size_t i = 0; spec->options != NULL && spec->options[i].name != NULL; i++) {
        const xdcr_option_t *o = &spec->options[i];
        char *env = env_name(spec->env_prefix, o->name);
        const char *def = default_text(o);
        char desc[768];

        describe(o, desc, sizeof(desc));
        fputc('|', out);
        md_cell(out, o->name, true);
        md_cell(out, type_name(o->type), false);
        /* Placeholders like "(required)" are prose, real defaults are code. */
        md_cell(out, def, o->default_value != NULL && !option_is_secret(o));
        md_cell(out, env != NULL ? env : "-", env != NULL);
        md_cell(out, desc, false);
        fputc('\n', out);
        free(env);
    }
    fprintf(out, "\nSources, later wins: defaults, the configuration file (`-c FILE`");
    if (spec->env_prefix != NULL)
        fprintf(out, " or `%sCONFIG`", spec->env_prefix);
    fprintf(out, "), environment variables, then flags (`--key=value` or `--key value`). "
                 "Unknown keys are errors. Durations take a unit `ms`, `s`, `m`, `h` or `d` "
                 "(default `ms`); sizes `B`, `kB`, `MB`, `GB` or `TB` (1 kB = 1024 B, default "
                 "bytes).\n");
    if (spec->passthrough_prefix != NULL) {
        char *env = env_name(spec->env_prefix, spec->passthrough_prefix);

        fprintf(out,
                "\nPass-through keys: every key starting with `%s` is passed unchanged, without "
                "the prefix, to the client library (`%sacks = all` sets `acks`).",
                spec->passthrough_prefix, spec->passthrough_prefix);
        if (env != NULL)
            fprintf(out,
                    " In the environment use `%sACKS`: the rest of the name is lower-cased and "
                    "underscores become dots.",
                    env);
        fprintf(out, " Values of keys that look secret (password, secret, token) are never "
                     "printed.\n");
        free(env);
    }
}

/* ---- pass-through lists ---- */

int xdcr_kv_list_set(xdcr_kv_list_t *list, const char *key, const char *value, const char *source,
                     xdcr_error_t *err)
{
    char *k = NULL, *v = NULL, *s = NULL;

    if (list == NULL || key == NULL || value == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "pass-through key or value is missing");
    if (key[0] == '\0')
        return xdcr_error_set(err, XDCR_EINVAL, false, "pass-through key is empty");
    v = strdup(value);
    s = strdup(source != NULL ? source : "set");
    if (v == NULL || s == NULL)
        goto nomem;
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].key, key) == 0) {
            free(list->items[i].value);
            free(list->items[i].source);
            list->items[i].value = v;
            list->items[i].source = s;
            return 0;
        }
    }
    k = strdup(key);
    if (k == NULL)
        goto nomem;
    if (list->count == list->cap) {
        size_t cap = list->cap > 0 ? list->cap * 2 : 8;
        xdcr_kv_t *items = realloc(list->items, cap * sizeof(*items));

        if (items == NULL)
            goto nomem;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count].key = k;
    list->items[list->count].value = v;
    list->items[list->count].source = s;
    list->count++;
    return 0;
nomem:
    free(k);
    free(v);
    free(s);
    return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
}

const char *xdcr_kv_list_get(const xdcr_kv_list_t *list, const char *key)
{
    if (list == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i].key, key) == 0)
            return list->items[i].value;
    return NULL;
}

void xdcr_kv_list_free(xdcr_kv_list_t *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].key);
        free(list->items[i].value);
        free(list->items[i].source);
    }
    free(list->items);
    list->items = NULL;
    list->count = list->cap = 0;
}

/* Replace every occurrence of secret in s (in place, truncating) with "[redacted]". */
static void scrub(char *s, size_t len, const char *secret)
{
    size_t n = strlen(secret);
    char tmp[512];
    size_t used = 0;

    if (n == 0)
        return;
    for (const char *p = s; *p != '\0' && used + 1 < sizeof(tmp);) {
        if (strncmp(p, secret, n) == 0) {
            used += (size_t)snprintf(tmp + used, sizeof(tmp) - used, "%s", REDACTED);
            if (used >= sizeof(tmp))
                used = sizeof(tmp) - 1;
            p += n;
        } else {
            tmp[used++] = *p++;
        }
    }
    tmp[used] = '\0';
    snprintf(s, len, "%s", tmp);
}

int xdcr_kv_list_apply(const xdcr_kv_list_t *list, const char *prefix, xdcr_kv_setter_fn setter,
                       void *ctx, xdcr_error_t *err)
{
    if (list == NULL)
        return 0;
    if (setter == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "pass-through setter is missing");
    if (prefix == NULL)
        prefix = "";
    for (size_t i = 0; i < list->count; i++) {
        const xdcr_kv_t *kv = &list->items[i];
        char errbuf[512] = "", clean[512];

        if (setter(ctx, kv->key, kv->value, errbuf, sizeof(errbuf)) == 0)
            continue;
        errbuf[sizeof(errbuf) - 1] = '\0';
        /* Libraries quote the rejected value in their message. */
        if (xdcr_log_is_secret_key(kv->key))
            scrub(errbuf, sizeof(errbuf), kv->value);
        xdcr_redact_conninfo(errbuf, clean, sizeof(clean));
        return xdcr_error_set(err, XDCR_ECONFIG, false, "invalid %s%s (%s): %s", prefix, kv->key,
                              kv->source != NULL ? kv->source : "set",
                              clean[0] != '\0' ? clean : "rejected");
    }
    return 0;
}

/* ---- secret files ---- */

int xdcr_read_secret_file(const char *path, char **out, xdcr_error_t *err)
{
    char *buf = NULL, *s = NULL;
    size_t len = 0;
    int fd = -1, rc = 0;

    if (path == NULL || out == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "secret file path is missing");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "could not open secret file \"%s\": %s",
                              path, strerror(errno));
    buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        rc = xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory reading secret file \"%s\"",
                            path);
        goto cleanup;
    }
    /* Read one byte more than allowed to tell "exactly the limit" from "too large". */
    while (len < SECRET_FILE_MAX + 1) {
        ssize_t n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = xdcr_error_set(err, XDCR_ECONFIG, false, "could not read secret file \"%s\": %s",
                                path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > SECRET_FILE_MAX) {
        rc = xdcr_error_set(err, XDCR_ECONFIG, false, "secret file \"%s\" is larger than %d kB",
                            path, SECRET_FILE_MAX / 1024);
        goto cleanup;
    }
    if (memchr(buf, '\0', len) != NULL) {
        rc = xdcr_error_set(err, XDCR_ECONFIG, false, "secret file \"%s\" contains a NUL byte",
                            path);
        goto cleanup;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        rc = xdcr_error_set(err, XDCR_ECONFIG, false, "secret file \"%s\" is empty", path);
        goto cleanup;
    }
    s = malloc(len + 1);
    if (s == NULL) {
        rc = xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory reading secret file \"%s\"",
                            path);
        goto cleanup;
    }
    memcpy(s, buf, len);
    s[len] = '\0';
    *out = s;
cleanup:
    if (buf != NULL) {
        explicit_bzero(buf, SECRET_FILE_MAX + 1); /* no copy of the secret left in the heap */
        free(buf);
    }
    close(fd);
    return rc;
}
