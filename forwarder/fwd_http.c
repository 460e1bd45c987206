/*
 * fwd_http.c - routes of the forwarder's HTTP endpoints. Every request works on a copy of the
 * status snapshot; nothing here touches PostgreSQL or Kafka.
 */
#include "fwd_http.h"

#include "xdcr/event.h"
#include "xdcr/http_server.h"
#include "xdcr/lsn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fwd_http {
    xdcr_http_t *server;
    fwd_t *fwd;
    const fwd_config_t *cfg;
    xdcr_metrics_t *metrics;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *state_name(const fwd_status_t *st)
{
    if (st->streaming)
        return "streaming";
    if (st->role == FWD_ROLE_STANDBY)
        return "standby";
    return "connecting";
}

static json_t *lsn_json(unsigned long long lsn)
{
    char buf[XDCR_LSN_STRLEN];

    return json_string(xdcr_lsn_format((xdcr_lsn_t)lsn, buf));
}

char *fwd_status_json(const fwd_status_t *st, const fwd_config_t *cfg, size_t *len)
{
    char tbuf[40];
    json_t *o = json_object();
    char *out;

    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "service", json_string("forwarder"));
    json_object_set_new(o, "service_version", json_string(XDCR_VERSION));
    json_object_set_new(o, "origin", json_string(cfg->origin));
    json_object_set_new(o, "state", json_string(state_name(st)));
    json_object_set_new(o, "ready", json_boolean(st->streaming));
    json_object_set_new(o, "time", json_string(xdcr_time_format_us(now_us(), tbuf, sizeof(tbuf))));
    json_object_set_new(o, "role", json_string(fwd_role_name(st->role)));
    json_object_set_new(o, "slot", json_string(cfg->slot_name));
    json_object_set_new(o, "publication", json_string(cfg->publication));
    json_object_set_new(o, "topic", json_string(cfg->topic));
    json_object_set_new(o, "confirmed_lsn", lsn_json(st->confirmed_lsn));
    json_object_set_new(o, "received_lsn", lsn_json(st->received_lsn));
    json_object_set_new(o, "source_wal_lsn", lsn_json(st->wal_lsn));
    json_object_set_new(o, "slot_retained_wal_bytes",
                        st->retained_bytes >= 0 ? json_integer(st->retained_bytes) : json_null());
    json_object_set_new(o, "inflight_messages", json_integer((json_int_t)st->inflight_messages));
    json_object_set_new(o, "last_error",
                        st->last_error[0] ? json_string(st->last_error) : json_null());
    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (out != NULL && len != NULL)
        *len = strlen(out);
    return out;
}

static void handle(void *ctx, const char *path, xdcr_http_response_t *resp)
{
    fwd_http_t *h = ctx;
    fwd_status_t st;
    xdcr_error_t err;

    fwd_get_status(h->fwd, &st);
    if (strcmp(path, "/livez") == 0) {
        if (mono_us() - (int64_t)st.last_loop_us <= (int64_t)FWD_HTTP_LIVE_MAX_AGE_MS * 1000)
            xdcr_http_text(resp, 200, "ok");
        else
            xdcr_http_text(resp, 503, "the main loop has not run for 30 s");
    } else if (strcmp(path, "/readyz") == 0) {
        if (st.streaming)
            xdcr_http_text(resp, 200, "ok");
        else if (st.role == FWD_ROLE_STANDBY)
            xdcr_http_text(resp, 503, "standby: another forwarder holds the slot");
        else
            xdcr_http_text(resp, 503, st.last_error[0] ? st.last_error : "not streaming yet");
    } else if (strcmp(path, "/metrics") == 0) {
        if (xdcr_metrics_render(h->metrics, &resp->body, &resp->len, &err) == 0) {
            resp->status = 200;
            resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        } else {
            resp->status = 500;
        }
    } else if (strcmp(path, "/status") == 0) {
        resp->body = fwd_status_json(&st, h->cfg, &resp->len);
        resp->status = resp->body != NULL ? 200 : 500;
        resp->content_type = "application/json";
    }
    /* anything else: 404 */
}

fwd_http_t *fwd_http_start(const char *listen, const char *bearer_token, fwd_t *fwd,
                           const fwd_config_t *cfg, xdcr_metrics_t *metrics, xdcr_error_t *err)
{
    fwd_http_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    h->fwd = fwd;
    h->cfg = cfg;
    h->metrics = metrics;
    h->server = xdcr_http_start(listen, bearer_token, handle, h, err);
    if (h->server == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void fwd_http_stop(fwd_http_t *h)
{
    if (h == NULL)
        return;
    xdcr_http_stop(h->server);
    free(h);
}
