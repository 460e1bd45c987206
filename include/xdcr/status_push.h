/*
 * status_push.h - the dashboard feed: every interval, POST the daemon's /status JSON to a
 * configured URL (libcurl) with timeouts, a bounded number of retries with backoff, and an
 * optional bearer token. Runs on its own thread; a slow or dead receiver never blocks the
 * daemon's loop. Lives in xdcr_http (network I/O), not in xdcr_common.
 */
#ifndef XDCR_STATUS_PUSH_H
#define XDCR_STATUS_PUSH_H

#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr/metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct xdcr_push xdcr_push_t;

/* Produce the current status document: malloc'd JSON, *len set; NULL when unavailable. */
typedef char *(*xdcr_push_body_fn)(void *ctx, size_t *len);

/* Outcome of one push (after retries), for metrics and logs; called on the push thread. */
typedef void (*xdcr_push_result_fn)(void *ctx, int ok, long http_status, const char *error);

typedef struct xdcr_push_config {
    const char *url;     /* http:// or https:// */
    const char *token;   /* bearer token or NULL; copied */
    int64_t interval_ms; /* time between pushes */
    int64_t timeout_ms;  /* per attempt (connect + transfer) */
    int retries;         /* extra attempts per push after a failure */
    int64_t backoff_ms;  /* first delay between attempts, doubled each retry */
} xdcr_push_config_t;

/*
 * Start the push thread. body must be thread-safe. Each push's outcome (after retries) is
 * counted in xdcr_status_pushes_total{result="ok"|"error"}, registered in metrics, and a failed
 * push is logged as a warning on lg (both borrowed; they must outlive the push).
 */
xdcr_push_t *xdcr_push_start(const xdcr_push_config_t *cfg, xdcr_push_body_fn body, void *ctx,
                             const xdcr_log_t *lg, xdcr_metrics_t *metrics, xdcr_error_t *err);

/* Stop the thread (interrupting a wait; an attempt in flight ends within its timeout). NULL-safe.
 */
void xdcr_push_stop(xdcr_push_t *p);

#endif
