/*
 * metrics.h - a small metrics registry (counters, gauges, histograms, with labels) and its
 * Prometheus text exposition (format 0.0.4). Names use the xdcr_ prefix and base units.
 * Thread-safe: values are updated with atomics or under the registry lock, so the HTTP thread can
 * render while the main loop updates. Pure: no I/O (rendering writes into a buffer).
 */
#ifndef XDCR_METRICS_H
#define XDCR_METRICS_H

#include "xdcr/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xdcr_metrics xdcr_metrics_t;
typedef struct xdcr_metric xdcr_metric_t; /* one family: name, help, type, label names */
typedef struct xdcr_series xdcr_series_t; /* one labelled series of a family */

typedef enum xdcr_metric_type {
    XDCR_METRIC_COUNTER,
    XDCR_METRIC_GAUGE,
    XDCR_METRIC_HISTOGRAM
} xdcr_metric_type_t;

xdcr_metrics_t *xdcr_metrics_new(void);
void xdcr_metrics_free(xdcr_metrics_t *m);

/*
 * Register a family. label_names is a NULL-terminated list (may be NULL for none); buckets (for
 * histograms: nbuckets ascending upper bounds, +Inf implied) are copied. Names are validated
 * ([a-zA-Z_:][a-zA-Z0-9_:]*; counters must end in _total). Returns NULL and fills err on error.
 * The registry owns the family.
 */
xdcr_metric_t *xdcr_metrics_register(xdcr_metrics_t *m, const char *name, const char *help,
                                     xdcr_metric_type_t type, const char *const *label_names,
                                     const double *buckets, size_t nbuckets, xdcr_error_t *err);

/*
 * The series for these label values (as many as the family has label names), created on first
 * use. Returned pointers stay valid until the registry is freed; cache them on hot paths.
 * Returns NULL only on allocation failure or a wrong label count.
 */
xdcr_series_t *xdcr_metric_series(xdcr_metric_t *f, const char *const *label_values);
/* Shorthand for a family without labels. */
xdcr_series_t *xdcr_metric_series0(xdcr_metric_t *f);

void xdcr_series_inc(xdcr_series_t *s, double delta);     /* counters: delta >= 0 */
void xdcr_series_set(xdcr_series_t *s, double value);     /* gauges */
void xdcr_series_observe(xdcr_series_t *s, double value); /* histograms */
double xdcr_series_value(const xdcr_series_t *s);         /* counter/gauge value; histogram sum */
uint64_t xdcr_series_count(const xdcr_series_t *s);       /* histogram observation count */
/* Value at quantile q (0..1) estimated from histogram buckets by linear interpolation. */
double xdcr_series_quantile(const xdcr_series_t *s, double q);

/*
 * Render every family in registration order as Prometheus text: # HELP (escaped), # TYPE,
 * samples with escaped label values (\\, \", \n), histogram _bucket{le=..}/_sum/_count.
 * *out is malloc'd and NUL-terminated; the caller frees it.
 */
int xdcr_metrics_render(xdcr_metrics_t *m, char **out, size_t *out_len, xdcr_error_t *err);

#endif
