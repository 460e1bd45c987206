/*
 * test_metrics.c - unit tests for common/metrics.c: registration rules, exact Prometheus text,
 * escaping, histogram buckets and quantiles, concurrent updates, and promtool acceptance.
 */
#include "xdcr/metrics.h"
#include "xdcr_test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *render(xdcr_metrics_t *m)
{
    xdcr_error_t err;
    char *text = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(xdcr_metrics_render(m, &text, &len, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(len, strlen(text));
    return text;
}

/* True when text contains line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = strstr(text, line); p != NULL; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void test_metrics_render_matches_golden_text(void)
{
    static const char *const origin_kind[] = {"origin", "kind", NULL};
    static const char *const origin[] = {"origin", NULL};
    static const char *const code[] = {"code", NULL};
    static const double bounds[] = {0.25, 0.5, 1};
    static const char golden[] =
        "# HELP xdcr_events_total Change events forwarded, by origin and kind.\n"
        "# TYPE xdcr_events_total counter\n"
        "xdcr_events_total{origin=\"east\",kind=\"insert\"} 3\n"
        "xdcr_events_total{origin=\"east\",kind=\"delete\"} 1.5\n"
        "# HELP xdcr_lag_seconds Replication lag in seconds.\n"
        "# TYPE xdcr_lag_seconds gauge\n"
        "xdcr_lag_seconds 0.25\n"
        "# HELP xdcr_apply_duration_seconds Time to apply one transaction, in seconds.\n"
        "# TYPE xdcr_apply_duration_seconds histogram\n"
        "xdcr_apply_duration_seconds_bucket{origin=\"east\",le=\"0.25\"} 1\n"
        "xdcr_apply_duration_seconds_bucket{origin=\"east\",le=\"0.5\"} 2\n"
        "xdcr_apply_duration_seconds_bucket{origin=\"east\",le=\"1\"} 2\n"
        "xdcr_apply_duration_seconds_bucket{origin=\"east\",le=\"+Inf\"} 3\n"
        "xdcr_apply_duration_seconds_sum{origin=\"east\"} 4.625\n"
        "xdcr_apply_duration_seconds_count{origin=\"east\"} 3\n"
        "# HELP xdcr_errors_total Errors, by code.\n"
        "# TYPE xdcr_errors_total counter\n";
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *events, *lag, *apply, *errors;
    xdcr_series_t *s;
    xdcr_error_t err;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    events = xdcr_metrics_register(m, "xdcr_events_total",
                                   "Change events forwarded, by origin and kind.",
                                   XDCR_METRIC_COUNTER, origin_kind, NULL, 0, &err);
    lag = xdcr_metrics_register(m, "xdcr_lag_seconds", "Replication lag in seconds.",
                                XDCR_METRIC_GAUGE, NULL, NULL, 0, &err);
    apply = xdcr_metrics_register(m, "xdcr_apply_duration_seconds",
                                  "Time to apply one transaction, in seconds.",
                                  XDCR_METRIC_HISTOGRAM, origin, bounds, 3, &err);
    errors = xdcr_metrics_register(m, "xdcr_errors_total", "Errors, by code.", XDCR_METRIC_COUNTER,
                                   code, NULL, 0, &err);
    CU_ASSERT_FATAL(events != NULL && lag != NULL && apply != NULL && errors != NULL);

    xdcr_series_inc(xdcr_metric_series(events, (const char *const[]){"east", "insert"}), 3);
    s = xdcr_metric_series(events, (const char *const[]){"east", "delete"});
    xdcr_series_inc(s, 1);
    xdcr_series_inc(s, 0.5);
    xdcr_series_set(xdcr_metric_series0(lag), 0.25);
    s = xdcr_metric_series(apply, (const char *const[]){"east"});
    xdcr_series_observe(s, 0.25); /* on a bound: le is inclusive */
    xdcr_series_observe(s, 0.375);
    xdcr_series_observe(s, 4);

    text = render(m);
    CU_ASSERT_STRING_EQUAL(text, golden);
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_render_empty_registry_is_empty_string(void)
{
    xdcr_metrics_t *m = xdcr_metrics_new();
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    text = render(m);
    CU_ASSERT_STRING_EQUAL(text, "");
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_render_escapes_label_values_and_help(void)
{
    static const char *const table[] = {"table", NULL};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *f;
    xdcr_error_t err;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_rows_total", "Rows \"applied\"\nper table \\ origin",
                              XDCR_METRIC_COUNTER, table, NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){"a\"b\\c\nd"}), 2);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){""}), 1);
    text = render(m);
    /* HELP escapes only backslash and newline; label values also escape the double quote. */
    CU_ASSERT_STRING_EQUAL(text, "# HELP xdcr_rows_total Rows \"applied\"\\nper table \\\\ origin\n"
                                 "# TYPE xdcr_rows_total counter\n"
                                 "xdcr_rows_total{table=\"a\\\"b\\\\c\\nd\"} 2\n"
                                 "xdcr_rows_total{table=\"\"} 1\n");
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_invalid_utf8_label_value_is_replaced(void)
{
    static const char *const table[] = {"table", NULL};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_series_t *raw, *again, *clean;
    xdcr_metric_t *f;
    xdcr_error_t err;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_tables", "Tables.", XDCR_METRIC_GAUGE, table, NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    raw = xdcr_metric_series(f, (const char *const[]){"caf\xE9"}); /* LATIN1 e-acute */
    again = xdcr_metric_series(f, (const char *const[]){"caf\xE9"});
    clean = xdcr_metric_series(f, (const char *const[]){"caf\xEF\xBF\xBD"});
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    CU_ASSERT_PTR_EQUAL(raw, again);
    CU_ASSERT_PTR_EQUAL(raw, clean);
    /* Well-formed multi-byte UTF-8 is kept as is; a truncated sequence is replaced. */
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"caf\xC3\xA9"}), 2);
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"x\xE2\x82"}), 3);
    xdcr_series_set(raw, 1);
    text = render(m);
    CU_ASSERT(has_line(text, "xdcr_tables{table=\"caf\xEF\xBF\xBD\"} 1"));
    CU_ASSERT(has_line(text, "xdcr_tables{table=\"caf\xC3\xA9\"} 2"));
    CU_ASSERT(has_line(text, "xdcr_tables{table=\"x\xEF\xBF\xBD\xEF\xBF\xBD\"} 3"));
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_render_formats_floats_for_prometheus(void)
{
    static const char *const v[] = {"v", NULL};
    static const struct {
        const char *label;
        double value;
        const char *text;
    } cases[] = {
        {"a", 0.1, "0.1"},
        {"b", -2.5, "-2.5"},
        {"c", 123456789012.0, "123456789012"},
        {"d", 9007199254740992.0, "9007199254740992"},
        {"e", 18014398509481984.0, "18014398509481984"}, /* 2^54 */
        {"m", 1.5e300, "1.5e+300"},
        {"n", 0.1 + 0.2, "0.30000000000000004"},
        {"f", 1e20, "1e+20"},
        {"g", 1e-7, "1e-07"},
        {"h", 1.0 / 3.0, "0.3333333333333333"},
        {"i", -0.0, "0"},
        {"j", INFINITY, "+Inf"},
        {"k", -INFINITY, "-Inf"},
        {"l", NAN, "NaN"},
    };
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *f;
    xdcr_error_t err;
    char line[128], *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_values", "Values.", XDCR_METRIC_GAUGE, v, NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        xdcr_series_set(xdcr_metric_series(f, (const char *const[]){cases[i].label}),
                        cases[i].value);
    text = render(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(line, sizeof(line), "xdcr_values{v=\"%s\"} %s", cases[i].label, cases[i].text);
        if (!has_line(text, line))
            fprintf(stderr, "missing line: %s\n", line);
        CU_ASSERT(has_line(text, line));
    }
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_histogram_buckets_are_cumulative(void)
{
    static const double bounds[] = {1, 2, 5, INFINITY}; /* a trailing +Inf is accepted */
    static const char *const golden = "# HELP xdcr_batch_size Rows per batch.\n"
                                      "# TYPE xdcr_batch_size histogram\n"
                                      "xdcr_batch_size_bucket{le=\"1\"} 2\n"
                                      "xdcr_batch_size_bucket{le=\"2\"} 2\n"
                                      "xdcr_batch_size_bucket{le=\"5\"} 5\n"
                                      "xdcr_batch_size_bucket{le=\"+Inf\"} 7\n"
                                      "xdcr_batch_size_sum NaN\n"
                                      "xdcr_batch_size_count 7\n";
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *f;
    xdcr_series_t *s;
    xdcr_error_t err;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_batch_size", "Rows per batch.", XDCR_METRIC_HISTOGRAM, NULL,
                              bounds, 4, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    s = xdcr_metric_series0(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_EQUAL(xdcr_metric_series0(f), s);
    xdcr_series_observe(s, -3); /* below the first bound still counts in it */
    xdcr_series_observe(s, 1);
    xdcr_series_observe(s, 3);
    xdcr_series_observe(s, 5);
    xdcr_series_observe(s, 2.5);
    xdcr_series_observe(s, 100);
    CU_ASSERT_EQUAL(xdcr_series_count(s), 6);
    CU_ASSERT(xdcr_series_value(s) == 108.5);
    xdcr_series_observe(s, NAN); /* counted in +Inf; makes the sum NaN as in Prometheus */
    CU_ASSERT_EQUAL(xdcr_series_count(s), 7);
    text = render(m);
    CU_ASSERT_STRING_EQUAL(text, golden);
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_counter_ignores_negative_delta(void)
{
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *c, *g;
    xdcr_series_t *cs, *gs;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    c = xdcr_metrics_register(m, "xdcr_sent_bytes_total", "Bytes sent.", XDCR_METRIC_COUNTER, NULL,
                              NULL, 0, &err);
    g = xdcr_metrics_register(m, "xdcr_in_flight", "In flight.", XDCR_METRIC_GAUGE, NULL, NULL, 0,
                              &err);
    cs = xdcr_metric_series0(c);
    gs = xdcr_metric_series0(g);
    CU_ASSERT_FATAL(cs != NULL && gs != NULL);
    xdcr_series_inc(cs, 5);
    xdcr_series_inc(cs, -2);
    xdcr_series_inc(cs, NAN);
    CU_ASSERT(xdcr_series_value(cs) == 5);
    xdcr_series_set(cs, 42); /* mirroring a total counted elsewhere */
    CU_ASSERT(xdcr_series_value(cs) == 42);
    xdcr_series_inc(gs, 3); /* gauges go both ways */
    xdcr_series_inc(gs, -1);
    CU_ASSERT(xdcr_series_value(gs) == 2);
    CU_ASSERT_EQUAL(xdcr_series_count(gs), 0);
    /* A failed series lookup must not crash instrumentation. */
    xdcr_series_inc(NULL, 1);
    xdcr_series_set(NULL, 1);
    xdcr_series_observe(NULL, 1);
    CU_ASSERT(isnan(xdcr_series_value(NULL)));
    CU_ASSERT_EQUAL(xdcr_series_count(NULL), 0);
    xdcr_metrics_free(m);
}

static void test_metrics_quantile_interpolates_like_prometheus(void)
{
    static const double bounds[] = {1, 2, 4};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *f;
    xdcr_series_t *s;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_wait_seconds", "Wait.", XDCR_METRIC_HISTOGRAM, NULL, bounds,
                              3, &err);
    s = xdcr_metric_series0(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(isnan(xdcr_series_quantile(s, 0.5))); /* no observations */
    for (int i = 0; i < 10; i++) {
        xdcr_series_observe(s, 0.5); /* (0, 1] */
        xdcr_series_observe(s, 1.5); /* (1, 2] */
    }
    CU_ASSERT(xdcr_series_quantile(s, 0.5) == 1.0);
    CU_ASSERT(xdcr_series_quantile(s, 0.25) == 0.5);
    CU_ASSERT(xdcr_series_quantile(s, 0.75) == 1.5);
    CU_ASSERT(xdcr_series_quantile(s, 1) == 2.0);
    CU_ASSERT(xdcr_series_quantile(s, 0) == 0.0);
    for (int i = 0; i < 5; i++)
        xdcr_series_observe(s, 10); /* +Inf */
    /* 25 observations: rank 18.75 lies 8.75 into the 10 of (1, 2]. */
    CU_ASSERT(xdcr_series_quantile(s, 0.75) == 1.875);
    /* A rank in the +Inf bucket gives the highest finite bound. */
    CU_ASSERT(xdcr_series_quantile(s, 0.99) == 4.0);
    CU_ASSERT(xdcr_series_quantile(s, -0.1) == -INFINITY);
    CU_ASSERT(xdcr_series_quantile(s, 1.1) == INFINITY);
    CU_ASSERT(isnan(xdcr_series_quantile(s, NAN)));
    xdcr_metrics_free(m);
}

static void test_metrics_quantile_edge_cases(void)
{
    static const double negative[] = {-1, 0, 1};
    static const double bounds[] = {1, 2, 4};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *neg, *inf_only, *sparse, *gauge;
    xdcr_series_t *s;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    neg = xdcr_metrics_register(m, "xdcr_skew_seconds", "Skew.", XDCR_METRIC_HISTOGRAM, NULL,
                                negative, 3, &err);
    inf_only = xdcr_metrics_register(m, "xdcr_any_seconds", "Any.", XDCR_METRIC_HISTOGRAM, NULL,
                                     NULL, 0, &err);
    sparse = xdcr_metrics_register(m, "xdcr_sparse_seconds", "Sparse.", XDCR_METRIC_HISTOGRAM, NULL,
                                   bounds, 3, &err);
    gauge =
        xdcr_metrics_register(m, "xdcr_level", "Level.", XDCR_METRIC_GAUGE, NULL, NULL, 0, &err);
    CU_ASSERT_FATAL(neg != NULL && inf_only != NULL && sparse != NULL && gauge != NULL);

    /* The first bucket has no lower bound when its upper bound is <= 0. */
    s = xdcr_metric_series0(neg);
    xdcr_series_observe(s, -5);
    xdcr_series_observe(s, 0.5);
    CU_ASSERT(xdcr_series_quantile(s, 0.25) == -1.0);
    CU_ASSERT(xdcr_series_quantile(s, 1) == 1.0);

    /* No finite buckets: nothing to interpolate. */
    s = xdcr_metric_series0(inf_only);
    xdcr_series_observe(s, 3);
    CU_ASSERT(isnan(xdcr_series_quantile(s, 0.5)));
    CU_ASSERT_EQUAL(xdcr_series_count(s), 1);

    /* Empty buckets are skipped: everything is in (2, 4]. */
    s = xdcr_metric_series0(sparse);
    xdcr_series_observe(s, 3);
    xdcr_series_observe(s, 3);
    CU_ASSERT(xdcr_series_quantile(s, 0) == 2.0);
    CU_ASSERT(xdcr_series_quantile(s, 0.5) == 3.0);
    CU_ASSERT(xdcr_series_quantile(s, 1) == 4.0);

    CU_ASSERT(isnan(xdcr_series_quantile(xdcr_metric_series0(gauge), 0.5)));
    CU_ASSERT(isnan(xdcr_series_quantile(NULL, 0.5)));
    xdcr_metrics_free(m);
}

static void expect_rejected(xdcr_metrics_t *m, const char *name, const char *help,
                            xdcr_metric_type_t type, const char *const *labels,
                            const double *buckets, size_t nbuckets, int code)
{
    xdcr_error_t err;

    xdcr_error_clear(&err);
    if (xdcr_metrics_register(m, name, help, type, labels, buckets, nbuckets, &err) != NULL) {
        fprintf(stderr, "accepted: %s\n", name ? name : "(null)");
        CU_FAIL("invalid metric accepted");
        return;
    }
    CU_ASSERT_EQUAL(err.code, code);
    CU_ASSERT(err.message[0] != '\0');
}

static void test_metrics_register_rejects_invalid_names(void)
{
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *ok;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_rejected(m, "", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "1xdcr", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr-lag", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr lag", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_l\xC3\xA4g", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, NULL, "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(NULL, "xdcr_lag", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    /* Counters end in _total, nothing else does. */
    expect_rejected(m, "xdcr_events", "h", XDCR_METRIC_COUNTER, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_events_total", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_events_total", "h", XDCR_METRIC_HISTOGRAM, NULL, NULL, 0, XDCR_EINVAL);
    /* Suffixes a histogram renders. */
    expect_rejected(m, "xdcr_rows_count", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_rows_sum", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_rows_bucket", "h", XDCR_METRIC_HISTOGRAM, NULL, NULL, 0, XDCR_EINVAL);
    /* promtool wants help text. */
    expect_rejected(m, "xdcr_lag", NULL, XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_lag", "", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_lag", "h", (xdcr_metric_type_t)42, NULL, NULL, 0, XDCR_EINVAL);

    ok =
        xdcr_metrics_register(m, "_xdcr:lag_seconds2", "h", XDCR_METRIC_GAUGE, NULL, NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL(ok);
    xdcr_metrics_free(m);
}

static void test_metrics_register_rejects_invalid_labels(void)
{
    static const char *const dunder[] = {"__name__", NULL};
    static const char *const le[] = {"origin", "le", NULL};
    static const char *const quantile[] = {"quantile", NULL};
    static const char *const dash[] = {"table-name", NULL};
    static const char *const digit[] = {"1table", NULL};
    static const char *const colon[] = {"a:b", NULL};
    static const char *const empty[] = {"", NULL};
    static const char *const twice[] = {"origin", "table", "origin", NULL};
    static const double bounds[] = {1};
    xdcr_metrics_t *m = xdcr_metrics_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, dunder, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_HISTOGRAM, le, bounds, 1, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, le, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, quantile, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, dash, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, digit, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, colon, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, empty, NULL, 0, XDCR_EINVAL);
    expect_rejected(m, "xdcr_a", "h", XDCR_METRIC_GAUGE, twice, NULL, 0, XDCR_EINVAL);
    xdcr_metrics_free(m);
}

static void test_metrics_register_rejects_bad_buckets(void)
{
    static const double descending[] = {1, 0.5};
    static const double equal[] = {1, 1};
    static const double nan[] = {1, NAN};
    static const double minus_inf[] = {-INFINITY, 1};
    static const double inf_inside[] = {1, INFINITY, 2};
    static const double one[] = {1};
    xdcr_metrics_t *m = xdcr_metrics_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, descending, 2, XDCR_EINVAL);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, equal, 2, XDCR_EINVAL);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, nan, 2, XDCR_EINVAL);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, minus_inf, 2, XDCR_EINVAL);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, inf_inside, 3, XDCR_EINVAL);
    expect_rejected(m, "xdcr_h", "h", XDCR_METRIC_HISTOGRAM, NULL, NULL, 2, XDCR_EINVAL);
    expect_rejected(m, "xdcr_g", "h", XDCR_METRIC_GAUGE, NULL, one, 1, XDCR_EINVAL);
    xdcr_metrics_free(m);
}

static void test_metrics_register_rejects_duplicate_family(void)
{
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *first;
    xdcr_error_t err;
    char *text;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    first = xdcr_metrics_register(m, "xdcr_up", "Up.", XDCR_METRIC_GAUGE, NULL, NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    expect_rejected(m, "xdcr_up", "Up again.", XDCR_METRIC_GAUGE, NULL, NULL, 0, XDCR_EEXISTS);
    expect_rejected(m, "xdcr_up", "Up again.", XDCR_METRIC_HISTOGRAM, NULL, NULL, 0, XDCR_EEXISTS);
    text = render(m);
    CU_ASSERT_STRING_EQUAL(text, "# HELP xdcr_up Up.\n# TYPE xdcr_up gauge\n");
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_series_needs_every_label_value(void)
{
    static const char *const labels[] = {"origin", "table", NULL};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_series_t *a, *b;
    xdcr_metric_t *f;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    f = xdcr_metrics_register(m, "xdcr_applied_rows_total", "Rows.", XDCR_METRIC_COUNTER, labels,
                              NULL, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NULL(xdcr_metric_series0(f));
    CU_ASSERT_PTR_NULL(xdcr_metric_series(f, NULL));
    CU_ASSERT_PTR_NULL(xdcr_metric_series(f, (const char *const[]){"east", NULL}));
    CU_ASSERT_PTR_NULL(xdcr_metric_series(NULL, (const char *const[]){"east", "t"}));
    a = xdcr_metric_series(f, (const char *const[]){"east", "t"});
    b = xdcr_metric_series(f, (const char *const[]){"east", "t"});
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_EQUAL(a, b);
    CU_ASSERT_PTR_NOT_EQUAL(a, xdcr_metric_series(f, (const char *const[]){"west", "t"}));
    CU_ASSERT_PTR_NOT_EQUAL(a, xdcr_metric_series(f, (const char *const[]){"east", "u"}));
    xdcr_metrics_free(m);
}

#define WORKER_ITERATIONS 100000

typedef struct worker {
    xdcr_metric_t *labelled;
    xdcr_series_t *counter;
    xdcr_series_t *hist;
    xdcr_series_t *first_lookup;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    xdcr_series_t *s;

    for (int i = 0; i < WORKER_ITERATIONS; i++) {
        xdcr_series_inc(w->counter, 1);
        xdcr_series_observe(w->hist, 0.5);
        if (i % 100 == 0) {
            s = xdcr_metric_series(w->labelled, (const char *const[]){"shared"});
            if (w->first_lookup == NULL)
                w->first_lookup = s;
            xdcr_series_inc(s, 1);
        }
    }
    return NULL;
}

static void test_metrics_concurrent_updates_are_exact(void)
{
    static const char *const labels[] = {"name", NULL};
    static const double bounds[] = {0.25, 1};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *c, *h, *l;
    worker_t w[2];
    pthread_t t[2];
    xdcr_error_t err;
    char *text;
    int renders = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    c = xdcr_metrics_register(m, "xdcr_ops_total", "Ops.", XDCR_METRIC_COUNTER, NULL, NULL, 0,
                              &err);
    h = xdcr_metrics_register(m, "xdcr_op_seconds", "Op time.", XDCR_METRIC_HISTOGRAM, NULL, bounds,
                              2, &err);
    l = xdcr_metrics_register(m, "xdcr_named_ops_total", "Named ops.", XDCR_METRIC_COUNTER, labels,
                              NULL, 0, &err);
    CU_ASSERT_FATAL(c != NULL && h != NULL && l != NULL);
    for (int i = 0; i < 2; i++) {
        w[i] = (worker_t){l, xdcr_metric_series0(c), xdcr_metric_series0(h), NULL};
        CU_ASSERT_FATAL(w[i].counter != NULL && w[i].hist != NULL);
    }
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    /* The HTTP thread's part: render while the workers update. */
    for (; renders < 50; renders++) {
        text = render(m);
        CU_ASSERT(strstr(text, "# TYPE xdcr_ops_total counter\n") != NULL);
        free(text);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    CU_ASSERT(xdcr_series_value(w[0].counter) == 2.0 * WORKER_ITERATIONS);
    CU_ASSERT_EQUAL(xdcr_series_count(w[0].hist), 2 * WORKER_ITERATIONS);
    CU_ASSERT(xdcr_series_value(w[0].hist) == 0.5 * 2 * WORKER_ITERATIONS);
    CU_ASSERT_PTR_NOT_NULL(w[0].first_lookup);
    CU_ASSERT_PTR_EQUAL(w[0].first_lookup, w[1].first_lookup);
    CU_ASSERT(xdcr_series_value(w[0].first_lookup) == 2.0 * WORKER_ITERATIONS / 100);
    text = render(m);
    CU_ASSERT(has_line(text, "xdcr_ops_total 200000"));
    CU_ASSERT(has_line(text, "xdcr_op_seconds_bucket{le=\"0.25\"} 0"));
    CU_ASSERT(has_line(text, "xdcr_op_seconds_bucket{le=\"1\"} 200000"));
    CU_ASSERT(has_line(text, "xdcr_op_seconds_bucket{le=\"+Inf\"} 200000"));
    CU_ASSERT(has_line(text, "xdcr_op_seconds_count 200000"));
    CU_ASSERT(has_line(text, "xdcr_named_ops_total{name=\"shared\"} 2000"));
    free(text);
    xdcr_metrics_free(m);
}

static void test_metrics_free_accepts_null(void)
{
    char *text = NULL;
    xdcr_error_t err;

    xdcr_metrics_free(NULL);
    CU_ASSERT_EQUAL(xdcr_metrics_render(NULL, &text, NULL, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(err.code, XDCR_EINVAL);
}

/*
 * Run promtool check metrics on text; returns its exit status (or -1) and its combined output in
 * *complaints (malloc'd).
 */
static int promtool_check(const char *promtool, const char *text, char **complaints)
{
    char path[] = "/tmp/xdcr_test_metrics_XXXXXX";
    char cmd[512], buf[1024];
    size_t len = 0, n;
    FILE *out, *p;
    int fd, status;

    *complaints = calloc(1, 1);
    fd = mkstemp(path);
    if (fd < 0 || *complaints == NULL)
        return -1;
    out = fdopen(fd, "w");
    if (out == NULL) {
        close(fd);
        unlink(path);
        return -1;
    }
    fputs(text, out);
    fclose(out);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", promtool, path);
    p = popen(cmd, "r");
    if (p == NULL) {
        unlink(path);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
        char *grown = realloc(*complaints, len + n + 1);

        if (grown == NULL)
            break;
        memcpy(grown + len, buf, n);
        len += n;
        grown[len] = '\0';
        *complaints = grown;
    }
    status = pclose(p);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A registry shaped like the daemons' own: every type, labels, escaping, special values. */
static xdcr_metrics_t *representative_registry(void)
{
    static const char *const origin[] = {"origin", NULL};
    static const char *const origin_table[] = {"origin", "table", NULL};
    static const char *const code[] = {"code", NULL};
    static const double seconds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
    static const double rows[] = {1, 10, 100, 1000};
    xdcr_metrics_t *m = xdcr_metrics_new();
    xdcr_metric_t *f;
    xdcr_series_t *s;
    xdcr_error_t err;

    if (m == NULL)
        return NULL;
    f = xdcr_metrics_register(m, "xdcr_events_forwarded_total",
                              "Change events produced to Kafka, by origin.", XDCR_METRIC_COUNTER,
                              origin, NULL, 0, &err);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){"east"}), 12345);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){"west"}), 0.5);
    f = xdcr_metrics_register(m, "xdcr_applied_rows_total",
                              "Rows applied to the target, by origin and table.\nTable names are "
                              "quoted as in \"schema\".\"table\"; a \\ is kept.",
                              XDCR_METRIC_COUNTER, origin_table, NULL, 0, &err);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){"east", "public.orders"}), 7);
    xdcr_series_inc(
        xdcr_metric_series(f, (const char *const[]){"east", "\"Odd\\Schema\".\"multi\nline\""}), 1);
    xdcr_series_inc(xdcr_metric_series(f, (const char *const[]){"west", "caf\xE9"}), 2);
    f = xdcr_metrics_register(m, "xdcr_errors_total", "Errors, by code.", XDCR_METRIC_COUNTER, code,
                              NULL, 0, &err); /* no series yet */
    f = xdcr_metrics_register(m, "xdcr_restarts_total", "Restarts.", XDCR_METRIC_COUNTER, NULL,
                              NULL, 0, &err);
    xdcr_metric_series0(f);
    f = xdcr_metrics_register(m, "xdcr_lag_seconds", "Replication lag, by origin.",
                              XDCR_METRIC_GAUGE, origin, NULL, 0, &err);
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"east"}), 0.125);
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"west"}), INFINITY);
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"north"}), NAN);
    xdcr_series_set(xdcr_metric_series(f, (const char *const[]){"south"}), -INFINITY);
    f = xdcr_metrics_register(m, "xdcr_lag_bytes", "Replication lag in WAL bytes.",
                              XDCR_METRIC_GAUGE, NULL, NULL, 0, &err);
    xdcr_series_set(xdcr_metric_series0(f), 1e20);
    f = xdcr_metrics_register(m, "xdcr_apply_duration_seconds", "Time to apply a transaction.",
                              XDCR_METRIC_HISTOGRAM, origin, seconds, 9, &err);
    s = xdcr_metric_series(f, (const char *const[]){"east"});
    for (int i = 0; i < 100; i++)
        xdcr_series_observe(s, i * 0.0137);
    xdcr_metric_series(f, (const char *const[]){"west"}); /* no observations */
    f = xdcr_metrics_register(m, "xdcr_batch_rows", "Rows per batch.", XDCR_METRIC_HISTOGRAM, NULL,
                              rows, 4, &err);
    s = xdcr_metric_series0(f);
    xdcr_series_observe(s, 3);
    xdcr_series_observe(s, 5000);
    return m;
}

static void test_metrics_render_passes_promtool_check(void)
{
    const char *promtool = getenv("PROMTOOL") ? getenv("PROMTOOL") : "/usr/bin/promtool";
    xdcr_metrics_t *m;
    char *text, *complaints;
    int status;

    if (access(promtool, X_OK) != 0) {
        printf("\n  skipped: %s not found (install Debian's prometheus package)\n", promtool);
        CU_PASS("promtool not installed");
        return;
    }
    m = representative_registry();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    text = render(m);
    CU_ASSERT(strstr(text, "xdcr_apply_duration_seconds_bucket{origin=\"east\",le=\"+Inf\"} 100") !=
              NULL);
    status = promtool_check(promtool, text, &complaints);
    if (status != 0 || (complaints != NULL && complaints[0] != '\0'))
        fprintf(stderr, "\npromtool status %d:\n%s\n--- input ---\n%s", status,
                complaints ? complaints : "", text);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(complaints);
    if (complaints != NULL)
        CU_ASSERT_STRING_EQUAL(complaints, "");
    free(complaints);
    free(text);
    xdcr_metrics_free(m);

    /* The check can fail: promtool complains about a family without help text. */
    status = promtool_check(promtool, "# TYPE xdcr_x_total counter\nxdcr_x_total 1\n", &complaints);
    CU_ASSERT_NOT_EQUAL(status, 0);
    CU_ASSERT(complaints != NULL && strstr(complaints, "no help text") != NULL);
    free(complaints);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_metrics_render_matches_golden_text),
        XDCR_TEST(test_metrics_render_empty_registry_is_empty_string),
        XDCR_TEST(test_metrics_render_escapes_label_values_and_help),
        XDCR_TEST(test_metrics_invalid_utf8_label_value_is_replaced),
        XDCR_TEST(test_metrics_render_formats_floats_for_prometheus),
        XDCR_TEST(test_metrics_histogram_buckets_are_cumulative),
        XDCR_TEST(test_metrics_counter_ignores_negative_delta),
        XDCR_TEST(test_metrics_quantile_interpolates_like_prometheus),
        XDCR_TEST(test_metrics_quantile_edge_cases),
        XDCR_TEST(test_metrics_register_rejects_invalid_names),
        XDCR_TEST(test_metrics_register_rejects_invalid_labels),
        XDCR_TEST(test_metrics_register_rejects_bad_buckets),
        XDCR_TEST(test_metrics_register_rejects_duplicate_family),
        XDCR_TEST(test_metrics_series_needs_every_label_value),
        XDCR_TEST(test_metrics_concurrent_updates_are_exact),
        XDCR_TEST(test_metrics_free_accepts_null),
        XDCR_TEST(test_metrics_render_passes_promtool_check),
        XDCR_TEST_END,
    };

    return xdcr_test_run("metrics", cases);
}
