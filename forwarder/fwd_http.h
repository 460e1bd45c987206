/*
 * fwd_http.h - the forwarder's observability endpoints on the shared HTTP server (xdcr_http):
 * /metrics, /livez, /readyz and /status. The handler runs on the server's thread and reads only
 * the loop's status snapshot and the metrics registry, both thread-safe, so the endpoints
 * answer while PostgreSQL and Kafka are down.
 */
#ifndef FWD_HTTP_H
#define FWD_HTTP_H

#include "forwarder.h"
#include "fwd_config.h"
#include "xdcr/error.h"
#include "xdcr/metrics.h"

typedef struct fwd_http fwd_http_t;

/* /livez fails when the loop has not ticked for this long. */
#define FWD_HTTP_LIVE_MAX_AGE_MS 30000

/* fwd, cfg and metrics are borrowed and must outlive the server. bearer_token may be NULL. */
fwd_http_t *fwd_http_start(const char *listen, const char *bearer_token, fwd_t *fwd,
                           const fwd_config_t *cfg, xdcr_metrics_t *metrics, xdcr_error_t *err);
void fwd_http_stop(fwd_http_t *h);

/* The status document served on /status (docs/status.md); malloc'd JSON text. */
char *fwd_status_json(const fwd_status_t *st, const fwd_config_t *cfg, size_t *len);

#endif
