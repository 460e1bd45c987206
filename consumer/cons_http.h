/*
 * cons_http.h - the consumer's observability endpoints on the shared HTTP server (xdcr_http):
 * /metrics, /livez, /readyz and /status. The handler runs on the server's thread and reads only
 * the status snapshot (cons_status) and the metrics registry, both thread-safe; lag in seconds
 * is computed at request time, so it keeps growing when nothing arrives.
 */
#ifndef CONS_HTTP_H
#define CONS_HTTP_H

#include "cons_status.h"
#include "xdcr/error.h"
#include "xdcr/metrics.h"

typedef struct cons_http cons_http_t;

/* /livez fails when the loop has not ticked for this long. */
#define CONS_HTTP_LIVE_MAX_AGE_MS 30000

/*
 * Register the scrape-time gauges (lag, last source time, ready) in metrics and serve on
 * listen ("host:port"); bearer_token (may be NULL) guards everything but /livez and /readyz.
 * st and metrics are borrowed and must outlive the server.
 */
cons_http_t *cons_http_start(const char *listen, const char *bearer_token, cons_status_t *st,
                             xdcr_metrics_t *metrics, xdcr_error_t *err);
/* Stop serving; NULL-safe. */
void cons_http_stop(cons_http_t *h);
/* The bound port (for listen port 0). */
int cons_http_port(const cons_http_t *h);

#endif
