/*
 * http_server.c - libmicrohttpd adapter for the daemons' observability endpoints: binding,
 * bearer-token authentication, method checks and response plumbing. Route logic stays in the
 * daemons' handlers. Built into xdcr_http, not xdcr_common: this is network I/O.
 */
#include "xdcr/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#if MHD_VERSION < 0x00097002
typedef int mhd_result_t;
#else
typedef enum MHD_Result mhd_result_t;
#endif

struct xdcr_http {
    struct MHD_Daemon *mhd;
    xdcr_http_handler_fn handler;
    void *ctx;
    char *token;
    int port;
};

int xdcr_http_parse_listen(const char *listen, char *host, size_t hostlen, int *port,
                           xdcr_error_t *err)
{
    const char *colon;
    const char *h = listen;
    size_t hl;
    char *end;
    long p;

    if (listen == NULL || *listen == '\0')
        return xdcr_error_set(err, XDCR_ECONFIG, false, "empty listen address");
    if (*listen == '[') {
        const char *rb = strchr(listen, ']');
        if (rb == NULL || rb[1] != ':')
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "invalid listen address \"%s\": use [v6addr]:port", listen);
        h = listen + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "invalid listen address \"%s\": use host:port", listen);
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= hostlen)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "invalid listen address \"%s\": missing or too long host", listen);
    memcpy(host, h, hl);
    host[hl] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "invalid port in listen address \"%s\"",
                              listen);
    *port = (int)p;
    return 0;
}

static bool token_ok(const char *want, const char *header)
{
    const char *prefix = "Bearer ";
    size_t wl, hl;
    unsigned char diff = 0;

    if (header == NULL || strncmp(header, prefix, strlen(prefix)) != 0)
        return false;
    header += strlen(prefix);
    wl = strlen(want);
    hl = strlen(header);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < hl ? header[i] : 0));
    return diff == 0 && wl == hl;
}

static mhd_result_t send_simple(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_PERSISTENT);
    mhd_result_t rc;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static mhd_result_t on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **state)
{
    xdcr_http_t *http = cls;
    xdcr_http_response_t resp = {.status = 404, .content_type = "text/plain; charset=utf-8"};
    struct MHD_Response *r;
    mhd_result_t rc;

    (void)version;
    (void)upload;
    if (*state == NULL) { /* first call: headers only */
        *state = http;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* ignore request bodies */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_simple(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (http->token != NULL && strcmp(url, "/livez") != 0 && strcmp(url, "/readyz") != 0 &&
        !token_ok(http->token, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization")))
        return send_simple(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized\n");
    http->handler(http->ctx, url, &resp);
    if (resp.body == NULL) {
        const char *text = resp.status == 404 ? "not found\n" : "";
        return send_simple(conn, (unsigned)resp.status, text);
    }
    r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(resp.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", resp.content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    rc = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    return rc;
}

xdcr_http_t *xdcr_http_start(const char *listen, const char *bearer_token,
                             xdcr_http_handler_fn handler, void *ctx, xdcr_error_t *err)
{
    xdcr_http_t *http = calloc(1, sizeof(*http));
    char host[256];
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    if (http == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    http->handler = handler;
    http->ctx = ctx;
    if (bearer_token != NULL && (http->token = strdup(bearer_token)) == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    if (xdcr_http_parse_listen(listen, host, sizeof(host), &http->port, err) != 0)
        goto fail;
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)http->port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            goto badhost;
        sslen = sizeof(*a6);
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)http->port);
        if (strcmp(host, "localhost") == 0)
            snprintf(host, sizeof(host), "127.0.0.1");
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            goto badhost;
        sslen = sizeof(*a4);
    }
    (void)sslen;
    http->mhd = MHD_start_daemon(flags, (uint16_t)http->port, NULL, NULL, on_request, http,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (http->mhd == NULL) {
        xdcr_error_set(err, XDCR_EIO, true,
                       "could not listen on \"%s\" for HTTP (address in use or not local?)",
                       listen);
        goto fail;
    }
    info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0)
        http->port = info->port;
    return http;
badhost:
    xdcr_error_set(err, XDCR_ECONFIG, false,
                   "invalid listen address \"%s\": the host must be an IP address", listen);
fail:
    xdcr_http_stop(http);
    return NULL;
}

void xdcr_http_stop(xdcr_http_t *http)
{
    if (http == NULL)
        return;
    if (http->mhd != NULL)
        MHD_stop_daemon(http->mhd);
    if (http->token != NULL) {
        memset(http->token, 0, strlen(http->token));
        free(http->token);
    }
    free(http);
}

int xdcr_http_port(const xdcr_http_t *http)
{
    return http != NULL ? http->port : 0;
}

void xdcr_http_text(xdcr_http_response_t *resp, int status, const char *line)
{
    size_t n = strlen(line);

    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = malloc(n + 2);
    if (resp->body == NULL) {
        resp->status = 500;
        return;
    }
    memcpy(resp->body, line, n);
    resp->body[n] = '\n';
    resp->body[n + 1] = '\0';
    resp->len = n + 1;
}
