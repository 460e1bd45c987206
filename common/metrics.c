/*
 * metrics.c - the metrics registry: families and labelled series, lock-free updates, Prometheus
 * text exposition (format 0.0.4) and histogram quantiles. Pure: no I/O, no global state.
 */
#include "xdcr/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Locking: the registry mutex guards the family list and every family's series list (lookup,
 * creation, render). Family fields are immutable after registration and series values are
 * atomics, so updates never take the lock. A double is kept as its bit pattern in an atomic
 * uint64; additions use a compare-and-swap loop.
 */
struct xdcr_series {
    xdcr_series_t *next; /* creation order within the family */
    const xdcr_metric_t *family;
    char **label_values;        /* family->nlabels entries, valid UTF-8, owned */
    _Atomic uint64_t value;     /* bits of a double: counter/gauge value, histogram sum */
    _Atomic uint64_t buckets[]; /* histograms: nbuckets + 1 per-bucket (not cumulative) counts,
                                   the last one for +Inf */
};

struct xdcr_metric {
    xdcr_metric_t *next; /* registration order */
    xdcr_metrics_t *registry;
    char *name;
    char *help; /* valid UTF-8 */
    xdcr_metric_type_t type;
    char **label_names;
    size_t nlabels;
    double *bounds; /* histograms: nbuckets finite upper bounds, strictly ascending */
    size_t nbuckets;
    xdcr_series_t *series_head; /* under registry->lock */
    xdcr_series_t *series_tail;
};

struct xdcr_metrics {
    pthread_mutex_t lock;
    xdcr_metric_t *head;
    xdcr_metric_t *tail;
};

static uint64_t double_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double delta)
{
    uint64_t old = atomic_load(p);

    while (!atomic_compare_exchange_weak(p, &old, double_bits(bits_double(old) + delta)))
        ;
}

/* Length of the well-formed UTF-8 sequence starting at s, or 0 if there is none (RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0], lo, hi;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

static bool is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    while (*p != '\0') {
        n = utf8_seq_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

/*
 * Copy s, replacing every byte that is not part of well-formed UTF-8 with U+FFFD: label values
 * may come from databases in other encodings, and one bad byte would make Prometheus reject the
 * whole scrape.
 */
static char *dup_utf8(const char *s)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *p;
    size_t len = 0, n = 0;
    char *out, *w;

    for (p = (const unsigned char *)s; *p != '\0'; p += n ? n : 1)
        len += (n = utf8_seq_len(p)) ? n : sizeof(replacement) - 1;
    out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    w = out;
    for (p = (const unsigned char *)s; *p != '\0'; p += n ? n : 1) {
        n = utf8_seq_len(p);
        if (n == 0) {
            memcpy(w, replacement, sizeof(replacement) - 1);
            w += sizeof(replacement) - 1;
        } else {
            memcpy(w, p, n);
            w += n;
        }
    }
    *w = '\0';
    return out;
}

static void free_strings(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool is_metric_name(const char *s)
{
    if (!is_alpha_(s[0]) && s[0] != ':')
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!is_alpha_(*p) && !is_digit(*p) && *p != ':')
            return false;
    return true;
}

/* [a-zA-Z_][a-zA-Z0-9_]* */
static bool is_label_name(const char *s)
{
    if (!is_alpha_(s[0]))
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!is_alpha_(*p) && !is_digit(*p))
            return false;
    return true;
}

static int check_name(const char *name, const char *help, xdcr_metric_type_t type,
                      xdcr_error_t *err)
{
    static const char *const reserved[] = {"_bucket", "_sum", "_count"};

    if (!is_metric_name(name))
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "invalid metric name \"%s\": must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                              name);
    if (type == XDCR_METRIC_COUNTER && !has_suffix(name, "_total"))
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "invalid metric name \"%s\": counter names must end in _total", name);
    if (type != XDCR_METRIC_COUNTER && has_suffix(name, "_total"))
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "invalid metric name \"%s\": only counter names end in _total", name);
    /* Histograms render these suffixes; on a family name they would collide or confuse. */
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (has_suffix(name, reserved[i]))
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "invalid metric name \"%s\": suffix %s is reserved", name,
                                  reserved[i]);
    if (help == NULL || help[0] == '\0')
        return xdcr_error_set(err, XDCR_EINVAL, false, "metric \"%s\" has no help text", name);
    return 0;
}

static int check_labels(const char *name, const char *const *label_names, xdcr_error_t *err)
{
    const char *l;

    for (size_t i = 0; label_names != NULL && label_names[i] != NULL; i++) {
        l = label_names[i];
        if (!is_label_name(l))
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "invalid label name \"%s\" on metric \"%s\": must match "
                                  "[a-zA-Z_][a-zA-Z0-9_]*",
                                  l, name);
        /* __ is Prometheus-internal; le and quantile belong to histograms and summaries. */
        if (strncmp(l, "__", 2) == 0 || strcmp(l, "le") == 0 || strcmp(l, "quantile") == 0)
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "label name \"%s\" on metric \"%s\" is reserved", l, name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[j], l) == 0)
                return xdcr_error_set(err, XDCR_EINVAL, false,
                                      "label name \"%s\" appears twice on metric \"%s\"", l, name);
    }
    return 0;
}

/* Number of bounds to keep: a trailing +Inf is accepted and dropped, since it is implied. */
static int check_buckets(const char *name, xdcr_metric_type_t type, const double *buckets,
                         size_t nbuckets, size_t *nkeep, xdcr_error_t *err)
{
    *nkeep = nbuckets;
    if (type != XDCR_METRIC_HISTOGRAM) {
        if (nbuckets > 0)
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "metric \"%s\" has buckets but is not a histogram", name);
        return 0;
    }
    if (nbuckets > 0 && buckets == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "histogram \"%s\" has no bucket array",
                              name);
    if (nbuckets > 0 && buckets[nbuckets - 1] == INFINITY)
        (*nkeep)--;
    for (size_t i = 0; i < *nkeep; i++) {
        if (!isfinite(buckets[i]))
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "histogram \"%s\": bucket bound %zu is not finite", name, i);
        if (i > 0 && !(buckets[i] > buckets[i - 1]))
            return xdcr_error_set(err, XDCR_EINVAL, false,
                                  "histogram \"%s\": bucket bounds are not strictly ascending",
                                  name);
    }
    return 0;
}

static void family_free(xdcr_metric_t *f)
{
    xdcr_series_t *s, *next;

    if (f == NULL)
        return;
    for (s = f->series_head; s != NULL; s = next) {
        next = s->next;
        free_strings(s->label_values, f->nlabels);
        free(s);
    }
    free_strings(f->label_names, f->nlabels);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

static xdcr_metric_t *family_new(xdcr_metrics_t *m, const char *name, const char *help,
                                 xdcr_metric_type_t type, const char *const *label_names,
                                 const double *buckets, size_t nbuckets)
{
    xdcr_metric_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->registry = m;
    f->type = type;
    f->name = strdup(name);
    f->help = dup_utf8(help);
    if (f->name == NULL || f->help == NULL)
        goto fail_family;
    while (label_names != NULL && label_names[f->nlabels] != NULL)
        f->nlabels++;
    if (f->nlabels > 0) {
        f->label_names = calloc(f->nlabels, sizeof(*f->label_names));
        if (f->label_names == NULL)
            goto fail_family;
        for (size_t i = 0; i < f->nlabels; i++)
            if ((f->label_names[i] = strdup(label_names[i])) == NULL)
                goto fail_family;
    }
    if (nbuckets > 0) {
        f->bounds = malloc(nbuckets * sizeof(*f->bounds));
        if (f->bounds == NULL)
            goto fail_family;
        memcpy(f->bounds, buckets, nbuckets * sizeof(*f->bounds));
        f->nbuckets = nbuckets;
    }
    return f;
fail_family:
    family_free(f);
    return NULL;
}

xdcr_metrics_t *xdcr_metrics_new(void)
{
    xdcr_metrics_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void xdcr_metrics_free(xdcr_metrics_t *m)
{
    xdcr_metric_t *f, *next;

    if (m == NULL)
        return;
    for (f = m->head; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

xdcr_metric_t *xdcr_metrics_register(xdcr_metrics_t *m, const char *name, const char *help,
                                     xdcr_metric_type_t type, const char *const *label_names,
                                     const double *buckets, size_t nbuckets, xdcr_error_t *err)
{
    xdcr_metric_t *f, *other;
    size_t nkeep;

    if (m == NULL || name == NULL) {
        xdcr_error_set(err, XDCR_EINVAL, false, "metric registration needs a registry and a name");
        return NULL;
    }
    if (type != XDCR_METRIC_COUNTER && type != XDCR_METRIC_GAUGE && type != XDCR_METRIC_HISTOGRAM) {
        xdcr_error_set(err, XDCR_EINVAL, false, "metric \"%s\" has an unknown type %d", name,
                       (int)type);
        return NULL;
    }
    if (check_name(name, help, type, err) != 0 || check_labels(name, label_names, err) != 0 ||
        check_buckets(name, type, buckets, nbuckets, &nkeep, err) != 0)
        return NULL;
    f = family_new(m, name, help, type, label_names, buckets, nkeep);
    if (f == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, true, "could not allocate metric \"%s\"", name);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    for (other = m->head; other != NULL; other = other->next)
        if (strcmp(other->name, name) == 0)
            break;
    if (other == NULL) {
        if (m->tail != NULL)
            m->tail->next = f;
        else
            m->head = f;
        m->tail = f;
    }
    pthread_mutex_unlock(&m->lock);
    if (other != NULL) {
        family_free(f);
        xdcr_error_set(err, XDCR_EEXISTS, false, "metric \"%s\" is already registered", name);
        return NULL;
    }
    return f;
}

/* Caller holds the registry lock. */
static xdcr_series_t *find_series(const xdcr_metric_t *f, const char *const *values)
{
    xdcr_series_t *s;
    size_t i;

    for (s = f->series_head; s != NULL; s = s->next) {
        for (i = 0; i < f->nlabels; i++)
            if (strcmp(s->label_values[i], values[i]) != 0)
                break;
        if (i == f->nlabels)
            return s;
    }
    return NULL;
}

/* Caller holds the registry lock. The series takes ownership of values (even on failure). */
static xdcr_series_t *add_series(xdcr_metric_t *f, char **values)
{
    size_t nslots = f->type == XDCR_METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
    xdcr_series_t *s = malloc(sizeof(*s) + nslots * sizeof(s->buckets[0]));

    if (s == NULL) {
        free_strings(values, f->nlabels);
        return NULL;
    }
    s->next = NULL;
    s->family = f;
    s->label_values = values;
    atomic_init(&s->value, double_bits(0.0));
    for (size_t i = 0; i < nslots; i++)
        atomic_init(&s->buckets[i], 0);
    if (f->series_tail != NULL)
        f->series_tail->next = s;
    else
        f->series_head = s;
    f->series_tail = s;
    return s;
}

xdcr_series_t *xdcr_metric_series(xdcr_metric_t *f, const char *const *label_values)
{
    xdcr_series_t *s = NULL;
    char **owned = NULL;
    bool clean = true;
    size_t i;

    if (f == NULL || (f->nlabels > 0 && label_values == NULL))
        return NULL;
    for (i = 0; i < f->nlabels; i++) {
        if (label_values[i] == NULL)
            return NULL; /* fewer values than label names */
        clean = clean && is_utf8(label_values[i]);
    }
    /* Stored values are valid UTF-8: well-formed input can be looked up without copying. */
    if (clean) {
        pthread_mutex_lock(&f->registry->lock);
        s = find_series(f, label_values);
        pthread_mutex_unlock(&f->registry->lock);
        if (s != NULL)
            return s;
    }
    if (f->nlabels > 0) {
        owned = calloc(f->nlabels, sizeof(*owned));
        if (owned == NULL)
            return NULL;
        for (i = 0; i < f->nlabels; i++)
            if ((owned[i] = dup_utf8(label_values[i])) == NULL)
                goto free_owned;
    }
    /* Look up again under the lock: another thread may have created it meanwhile. */
    pthread_mutex_lock(&f->registry->lock);
    s = find_series(f, owned != NULL ? (const char *const *)owned : label_values);
    if (s == NULL) {
        s = add_series(f, owned); /* takes owned, even on failure */
        owned = NULL;
    }
    pthread_mutex_unlock(&f->registry->lock);
free_owned:
    free_strings(owned, f->nlabels);
    return s;
}

xdcr_series_t *xdcr_metric_series0(xdcr_metric_t *f)
{
    static const char *const none[] = {NULL};

    return xdcr_metric_series(f, none);
}

/*
 * Updates accept a NULL series (a failed series lookup) as a no-op, so instrumentation never
 * crashes a daemon. Using the wrong update for the family type is a programmer error.
 */
void xdcr_series_inc(xdcr_series_t *s, double delta)
{
    if (s == NULL)
        return;
    assert(s->family->type != XDCR_METRIC_HISTOGRAM);
    if (s->family->type == XDCR_METRIC_HISTOGRAM)
        return;
    /* Counters only go up: a negative or NaN delta would break rate() and is dropped. */
    if (s->family->type == XDCR_METRIC_COUNTER && !(delta >= 0))
        return;
    atomic_add_double(&s->value, delta);
}

/* Also allowed on counters, to mirror a total kept elsewhere (e.g. librdkafka statistics). */
void xdcr_series_set(xdcr_series_t *s, double value)
{
    if (s == NULL)
        return;
    assert(s->family->type != XDCR_METRIC_HISTOGRAM);
    if (s->family->type == XDCR_METRIC_HISTOGRAM)
        return;
    atomic_store(&s->value, double_bits(value));
}

void xdcr_series_observe(xdcr_series_t *s, double value)
{
    const xdcr_metric_t *f;
    size_t lo = 0, hi, mid;

    if (s == NULL)
        return;
    f = s->family;
    assert(f->type == XDCR_METRIC_HISTOGRAM);
    if (f->type != XDCR_METRIC_HISTOGRAM)
        return;
    /* First bound >= value (le is inclusive); NaN compares false and lands in +Inf. */
    hi = f->nbuckets;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (value <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add(&s->buckets[lo], 1);
    atomic_add_double(&s->value, value);
}

double xdcr_series_value(const xdcr_series_t *s)
{
    if (s == NULL)
        return NAN;
    return bits_double(atomic_load(&s->value));
}

/* Snapshot cumulative bucket counts into cum[0..nbuckets]; cum[nbuckets] is the total. */
static void snapshot_cumulative(const xdcr_series_t *s, uint64_t *cum)
{
    uint64_t total = 0;

    for (size_t i = 0; i <= s->family->nbuckets; i++) {
        total += atomic_load(&s->buckets[i]);
        cum[i] = total;
    }
}

/* The count is the sum of the buckets, so it always equals the +Inf bucket. */
uint64_t xdcr_series_count(const xdcr_series_t *s)
{
    uint64_t total = 0;

    if (s == NULL || s->family->type != XDCR_METRIC_HISTOGRAM)
        return 0;
    for (size_t i = 0; i <= s->family->nbuckets; i++)
        total += atomic_load(&s->buckets[i]);
    return total;
}

/*
 * As PromQL histogram_quantile(): the first bucket's lower bound is 0 unless its upper bound is
 * <= 0, a rank in the +Inf bucket gives the highest finite bound, NaN when there are no
 * observations or no finite buckets. One deliberate difference: q = 0 skips leading empty buckets
 * (Prometheus divides 0 by 0 there and returns NaN).
 */
double xdcr_series_quantile(const xdcr_series_t *s, double q)
{
    const xdcr_metric_t *f;
    uint64_t *cum;
    double rank, start, count, result;
    size_t b, nb;

    if (s == NULL || s->family->type != XDCR_METRIC_HISTOGRAM || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    f = s->family;
    nb = f->nbuckets;
    if (nb == 0)
        return NAN;
    cum = malloc((nb + 1) * sizeof(*cum));
    if (cum == NULL)
        return NAN;
    snapshot_cumulative(s, cum);
    if (cum[nb] == 0) {
        result = NAN;
        goto out_cum;
    }
    rank = q * (double)cum[nb];
    for (b = 0; b < nb; b++)
        if (cum[b] > 0 && (double)cum[b] >= rank)
            break;
    if (b == nb) {
        result = f->bounds[nb - 1];
        goto out_cum;
    }
    if (b == 0 && f->bounds[0] <= 0) {
        result = f->bounds[0];
        goto out_cum;
    }
    start = 0;
    count = (double)cum[b];
    if (b > 0) {
        start = f->bounds[b - 1];
        count -= (double)cum[b - 1]; /* > 0: otherwise bucket b - 1 would have matched */
        rank -= (double)cum[b - 1];
    }
    result = start + (f->bounds[b] - start) * (rank / count);
out_cum:
    free(cum);
    return result;
}

/* Render buffer: on allocation failure it stops growing and remembers the failure. */
typedef struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} sbuf_t;

static void sb_put(sbuf_t *sb, const char *s, size_t n)
{
    size_t cap;
    char *data;

    if (sb->failed)
        return;
    if (sb->len + n + 1 > sb->cap) {
        cap = sb->cap ? sb->cap : 4096;
        while (sb->len + n + 1 > cap)
            cap *= 2;
        data = realloc(sb->data, cap);
        if (data == NULL) {
            sb->failed = true;
            return;
        }
        sb->data = data;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void sb_puts(sbuf_t *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

/* Escape backslash and newline, plus the double quote when in_quotes (label values). */
static void sb_put_escaped(sbuf_t *sb, const char *s, bool in_quotes)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        if (*s != '\\' && *s != '\n' && !(in_quotes && *s == '"'))
            continue;
        sb_put(sb, run, (size_t)(s - run));
        sb_puts(sb, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
        run = s + 1;
    }
    sb_put(sb, run, (size_t)(s - run));
}

/*
 * Format a sample value or bucket bound the way Prometheus parses and prints them: +Inf, -Inf,
 * NaN; exact integers in plain digits; otherwise the shortest %g form that reads back exactly.
 */
static void format_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(buf, size, "0"); /* also -0 */
    } else if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(int64_t)v) {
        /* |v| <= 2^53, so the cast is exact and needs no libm */
        snprintf(buf, size, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void sb_put_double(sbuf_t *sb, double v)
{
    char buf[64];

    format_double(buf, sizeof(buf), v);
    sb_puts(sb, buf);
}

static void sb_put_u64(sbuf_t *sb, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    sb_puts(sb, buf);
}

/* "name{a="x",b="y",le="0.5"} " (braces only when there are labels) */
static void sb_put_sample_start(sbuf_t *sb, const xdcr_series_t *s, const char *suffix,
                                const char *le)
{
    const xdcr_metric_t *f = s->family;

    sb_puts(sb, f->name);
    sb_puts(sb, suffix);
    if (f->nlabels > 0 || le != NULL) {
        sb_puts(sb, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i > 0)
                sb_puts(sb, ",");
            sb_puts(sb, f->label_names[i]);
            sb_puts(sb, "=\"");
            sb_put_escaped(sb, s->label_values[i], true);
            sb_puts(sb, "\"");
        }
        if (le != NULL) {
            if (f->nlabels > 0)
                sb_puts(sb, ",");
            sb_puts(sb, "le=\"");
            sb_puts(sb, le);
            sb_puts(sb, "\"");
        }
        sb_puts(sb, "}");
    }
    sb_puts(sb, " ");
}

static void render_histogram(sbuf_t *sb, const xdcr_series_t *s, uint64_t *cum)
{
    const xdcr_metric_t *f = s->family;
    char le[64];

    /* One snapshot, so the buckets are cumulative and the +Inf bucket equals _count. */
    snapshot_cumulative(s, cum);
    for (size_t i = 0; i <= f->nbuckets; i++) {
        if (i < f->nbuckets)
            format_double(le, sizeof(le), f->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        sb_put_sample_start(sb, s, "_bucket", le);
        sb_put_u64(sb, cum[i]);
        sb_puts(sb, "\n");
    }
    sb_put_sample_start(sb, s, "_sum", NULL);
    sb_put_double(sb, xdcr_series_value(s));
    sb_puts(sb, "\n");
    sb_put_sample_start(sb, s, "_count", NULL);
    sb_put_u64(sb, cum[f->nbuckets]);
    sb_puts(sb, "\n");
}

/* Caller holds the registry lock. */
static void render_family(sbuf_t *sb, const xdcr_metric_t *f)
{
    static const char *const type_names[] = {
        [XDCR_METRIC_COUNTER] = "counter",
        [XDCR_METRIC_GAUGE] = "gauge",
        [XDCR_METRIC_HISTOGRAM] = "histogram",
    };
    uint64_t *cum = NULL;

    sb_puts(sb, "# HELP ");
    sb_puts(sb, f->name);
    sb_puts(sb, " ");
    sb_put_escaped(sb, f->help, false);
    sb_puts(sb, "\n# TYPE ");
    sb_puts(sb, f->name);
    sb_puts(sb, " ");
    sb_puts(sb, type_names[f->type]);
    sb_puts(sb, "\n");
    if (f->type == XDCR_METRIC_HISTOGRAM && f->series_head != NULL) {
        cum = malloc((f->nbuckets + 1) * sizeof(*cum));
        if (cum == NULL) {
            sb->failed = true;
            return;
        }
    }
    for (const xdcr_series_t *s = f->series_head; s != NULL; s = s->next) {
        if (f->type == XDCR_METRIC_HISTOGRAM) {
            render_histogram(sb, s, cum);
            continue;
        }
        sb_put_sample_start(sb, s, "", NULL);
        sb_put_double(sb, xdcr_series_value(s));
        sb_puts(sb, "\n");
    }
    free(cum);
}

int xdcr_metrics_render(xdcr_metrics_t *m, char **out, size_t *out_len, xdcr_error_t *err)
{
    sbuf_t sb = {NULL, 0, 0, false};

    if (m == NULL || out == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "metrics render needs a registry and out");
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    pthread_mutex_lock(&m->lock);
    for (const xdcr_metric_t *f = m->head; f != NULL; f = f->next)
        render_family(&sb, f);
    pthread_mutex_unlock(&m->lock);
    sb_put(&sb, "", 0); /* an empty registry still yields a NUL-terminated string */
    if (sb.failed) {
        free(sb.data);
        return xdcr_error_set(err, XDCR_ENOMEM, true, "could not allocate the metrics text");
    }
    *out = sb.data;
    if (out_len != NULL)
        *out_len = sb.len;
    return 0;
}
