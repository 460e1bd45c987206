/*
 * cons_http.c - routes of the consumer's HTTP endpoints. Every request works on a copy of the
 * status snapshot taken under its mutex; nothing here touches PostgreSQL or Kafka, so the
 * endpoints answer also while both are down. The forwarder's endpoints follow the same shape.
 */
#include "cons_http.h"

#include "xdcr/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per configured origin: the gauges computed at scrape time. */
typedef struct lag_series {
    xdcr_series_t *seconds, *bytes, *messages, *source_time;
} lag_series_t;

struct cons_http {
    xdcr_http_t *server;
    cons_status_t *st;
    xdcr_metrics_t *metrics;
    xdcr_metric_t *f_seconds, *f_bytes, *f_messages, *f_source_time;
    xdcr_series_t *ready;
    lag_series_t *lag; /* st->v.norigins entries; series created when the value is first known */
    size_t nlag;
};

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_gauge(xdcr_metric_t *f, xdcr_series_t **s, const char *origin, double value)
{
    const char *lv[] = {origin, NULL};

    if (*s == NULL)
        *s = xdcr_metric_series(f, lv);
    if (*s != NULL)
        xdcr_series_set(*s, value);
}

/* Bring the scrape-time gauges up to now. */
static void update_gauges(cons_http_t *h, const cons_status_view_t *v, int64_t now)
{
    char reason[128];

    xdcr_series_set(h->ready, cons_status_is_ready(v, reason, sizeof(reason)) ? 1 : 0);
    for (size_t i = 0; i < v->norigins && i < h->nlag; i++) {
        const cons_origin_status_t *o = &v->origins[i];
        lag_series_t *l = &h->lag[i];
        double secs = cons_lag_seconds(o, now);
        int64_t bytes = cons_lag_bytes(o), msgs = cons_lag_messages(o);

        if (secs >= 0) {
            set_gauge(h->f_seconds, &l->seconds, o->origin, secs);
            set_gauge(h->f_source_time, &l->source_time, o->origin,
                      (double)cons_last_source_time_us(o) / 1e6);
        }
        if (bytes >= 0)
            set_gauge(h->f_bytes, &l->bytes, o->origin, (double)bytes);
        if (msgs >= 0)
            set_gauge(h->f_messages, &l->messages, o->origin, (double)msgs);
    }
}

static void handle(void *ctx, const char *path, xdcr_http_response_t *resp)
{
    cons_http_t *h = ctx;
    cons_status_view_t v;
    xdcr_error_t err;
    char reason[256];
    int64_t now = now_us();

    if (strcmp(path, "/livez") == 0) {
        if (cons_status_is_alive(h->st, mono_ms(), CONS_HTTP_LIVE_MAX_AGE_MS))
            xdcr_http_text(resp, 200, "ok");
        else
            xdcr_http_text(resp, 503, "the main loop has not run for 30 s");
        return;
    }
    if (strcmp(path, "/readyz") != 0 && strcmp(path, "/metrics") != 0 &&
        strcmp(path, "/status") != 0)
        return; /* 404 */
    if (cons_status_copy(h->st, &v) != 0) {
        resp->status = 500;
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (cons_status_is_ready(&v, reason, sizeof(reason)))
            xdcr_http_text(resp, 200, "ok");
        else
            xdcr_http_text(resp, 503, reason);
    } else if (strcmp(path, "/metrics") == 0) {
        update_gauges(h, &v, now);
        if (xdcr_metrics_render(h->metrics, &resp->body, &resp->len, &err) == 0) {
            resp->status = 200;
            resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        } else {
            resp->status = 500;
        }
    } else {
        if (cons_status_json(&v, h->st->service_origin, now, &resp->body, &resp->len, &err) == 0) {
            resp->status = 200;
            resp->content_type = "application/json";
        } else {
            resp->status = 500;
        }
    }
    cons_status_view_free(&v);
}

cons_http_t *cons_http_start(const char *listen, const char *bearer_token, cons_status_t *st,
                             xdcr_metrics_t *metrics, xdcr_error_t *err)
{
    static const char *const l_origin[] = {"origin", NULL};
    cons_http_t *h = calloc(1, sizeof(*h));
    xdcr_metric_t *ready;

    if (h == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    h->st = st;
    h->metrics = metrics;
    h->nlag = st->v.norigins;
    h->lag = calloc(h->nlag > 0 ? h->nlag : 1, sizeof(*h->lag));
    if (h->lag == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    h->f_seconds = xdcr_metrics_register(
        metrics, "xdcr_consumer_lag_seconds",
        "Seconds since the source time of the newest applied progress mark or transaction of "
        "the origin (docs/lag.md).",
        XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    h->f_bytes = h->f_seconds == NULL
                     ? NULL
                     : xdcr_metrics_register(metrics, "xdcr_consumer_lag_bytes",
                                             "Source WAL position carried by the newest applied "
                                             "progress mark minus the applied seq, in bytes.",
                                             XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    h->f_messages = h->f_bytes == NULL
                        ? NULL
                        : xdcr_metrics_register(metrics, "xdcr_consumer_lag_messages",
                                                "Kafka messages of the origin's partition not "
                                                "applied yet: high watermark minus next offset.",
                                                XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    h->f_source_time =
        h->f_messages == NULL
            ? NULL
            : xdcr_metrics_register(metrics, "xdcr_consumer_last_source_time_seconds",
                                    "Source time (Unix seconds) of the newest applied progress "
                                    "mark or transaction of the origin.",
                                    XDCR_METRIC_GAUGE, l_origin, NULL, 0, err);
    ready = h->f_source_time == NULL
                ? NULL
                : xdcr_metrics_register(metrics, "xdcr_consumer_ready",
                                        "1 while /readyz answers 200: target connected, "
                                        "partitions assigned, an origin applying.",
                                        XDCR_METRIC_GAUGE, NULL, NULL, 0, err);
    if (ready == NULL)
        goto fail;
    h->ready = xdcr_metric_series0(ready);
    if (h->ready == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    h->server = xdcr_http_start(listen, bearer_token, handle, h, err);
    if (h->server == NULL)
        goto fail;
    return h;
fail:
    cons_http_stop(h);
    return NULL;
}

void cons_http_stop(cons_http_t *h)
{
    if (h == NULL)
        return;
    xdcr_http_stop(h->server);
    free(h->lag);
    free(h);
}

int cons_http_port(const cons_http_t *h)
{
    return h != NULL ? xdcr_http_port(h->server) : 0;
}
