/*
 * http_server.h - the small HTTP server both daemons use for /metrics, /livez, /readyz and
 * /status (libmicrohttpd, one internal thread). It lives in its own library (xdcr_http), apart
 * from the pure xdcr_common, and is the only user of libmicrohttpd.
 */
#ifndef XDCR_HTTP_SERVER_H
#define XDCR_HTTP_SERVER_H

#include "xdcr/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct xdcr_http xdcr_http_t;

typedef struct xdcr_http_response {
    int status;               /* HTTP status code */
    const char *content_type; /* static string */
    char *body;               /* malloc'd; the server frees it */
    size_t len;
} xdcr_http_response_t;

/* Fill resp with a text/plain answer: line and a newline (500 when out of memory). */
void xdcr_http_text(xdcr_http_response_t *resp, int status, const char *line);

/*
 * Called on the server thread for every GET/HEAD request that passed authentication; fills resp
 * (status 404 when the path is unknown). Must be thread-safe with respect to the daemon loop.
 */
typedef void (*xdcr_http_handler_fn)(void *ctx, const char *path, xdcr_http_response_t *resp);

/*
 * Listen on "host:port" ("127.0.0.1:9187", "[::1]:9187", "0.0.0.0:9187"). When bearer_token
 * is not NULL, every path except /livez and /readyz (probes carry no credentials and these
 * expose nothing) needs "Authorization: Bearer <token>" (compared in constant time); the token
 * is copied. Errors name the address.
 */
xdcr_http_t *xdcr_http_start(const char *listen, const char *bearer_token,
                             xdcr_http_handler_fn handler, void *ctx, xdcr_error_t *err);

/* Stop serving and free; NULL-safe. */
void xdcr_http_stop(xdcr_http_t *http);

/* The port actually bound (useful with port 0). */
int xdcr_http_port(const xdcr_http_t *http);

/* Split "host:port" / "[v6]:port"; returns 0 or XDCR_ECONFIG. host gets at most hostlen-1 chars. */
int xdcr_http_parse_listen(const char *listen, char *host, size_t hostlen, int *port,
                           xdcr_error_t *err);

#endif
