/*
 * status_push.c - the dashboard feed's libcurl adapter: a thread that POSTs the status JSON to a
 * URL every interval, with per-attempt timeouts and a bounded number of retries with backoff.
 */
#include "xdcr/status_push.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct xdcr_push {
    xdcr_push_config_t cfg;
    char *url;
    char *auth; /* "Authorization: Bearer ..." or NULL */
    xdcr_push_body_fn body;
    void *ctx;
    const xdcr_log_t *lg;
    xdcr_series_t *ok, *failed; /* xdcr_status_pushes_total{result} */
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Sleep up to ms or until stop; returns true when stopping. */
static bool wait_or_stop(xdcr_push_t *p, int64_t ms)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        int rc = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    return stop;
}

/* One POST; returns 1 on a 2xx answer. */
static int post_once(xdcr_push_t *p, CURL *curl, const char *body, size_t len, long *status,
                     char *errbuf)
{
    struct curl_slist *hdrs = NULL;
    CURLcode rc;

    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (p->auth != NULL)
        hdrs = curl_slist_append(hdrs, p->auth);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, p->url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)p->cfg.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)p->cfg.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "xdcr/" XDCR_VERSION);
    errbuf[0] = '\0';
    *status = 0;
    rc = curl_easy_perform(curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        if (errbuf[0] == '\0')
            snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (*status < 200 || *status > 299) {
        snprintf(errbuf, CURL_ERROR_SIZE, "the receiver answered HTTP %ld", *status);
        return 0;
    }
    return 1;
}

static void *run(void *arg)
{
    xdcr_push_t *p = arg;
    CURL *curl = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE];

    if (curl == NULL) {
        XDCR_LOG(p->lg, XDCR_LOG_ERROR, "could not initialise libcurl: no status feed");
        return NULL;
    }
    while (!wait_or_stop(p, p->cfg.interval_ms)) {
        size_t len = 0;
        char *body = p->body(p->ctx, &len);
        int64_t backoff = p->cfg.backoff_ms;
        long status = 0;
        int ok = 0;

        if (body == NULL)
            continue;
        for (int attempt = 0; attempt <= p->cfg.retries; attempt++) {
            ok = post_once(p, curl, body, len, &status, errbuf);
            if (ok || attempt == p->cfg.retries || wait_or_stop(p, backoff))
                break;
            backoff *= 2;
        }
        free(body);
        xdcr_series_inc(ok ? p->ok : p->failed, 1);
        if (!ok)
            XDCR_LOG_KV(p->lg, XDCR_LOG_WARN, "could not push the status feed", "error", errbuf);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

xdcr_push_t *xdcr_push_start(const xdcr_push_config_t *cfg, xdcr_push_body_fn body, void *ctx,
                             const xdcr_log_t *lg, xdcr_metrics_t *metrics, xdcr_error_t *err)
{
    static const char *const result_label[] = {"result", NULL};
    static const char *const ok_v[] = {"ok", NULL}, *const err_v[] = {"error", NULL};
    xdcr_push_t *p = calloc(1, sizeof(*p));
    xdcr_metric_t *fam;

    if (p == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->cfg = *cfg;
    p->body = body;
    p->ctx = ctx;
    p->lg = lg;
    fam = xdcr_metrics_register(metrics, "xdcr_status_pushes_total",
                                "Status feed pushes by outcome (after retries).",
                                XDCR_METRIC_COUNTER, result_label, NULL, 0, err);
    if (fam == NULL)
        goto fail;
    p->ok = xdcr_metric_series(fam, ok_v);
    p->failed = xdcr_metric_series(fam, err_v);
    if (p->ok == NULL || p->failed == NULL)
        goto nomem;
    if (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "status push URL must start with http:// or https://");
        goto fail;
    }
    p->url = strdup(cfg->url);
    if (p->url == NULL)
        goto nomem;
    if (cfg->token != NULL) {
        size_t n = strlen(cfg->token) + sizeof("Authorization: Bearer ");
        p->auth = malloc(n);
        if (p->auth == NULL)
            goto nomem;
        snprintf(p->auth, n, "Authorization: Bearer %s", cfg->token);
    }
    p->cfg.url = p->url;
    p->cfg.token = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        xdcr_error_set(err, XDCR_EIO, false, "could not initialise libcurl");
        goto fail;
    }
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        xdcr_error_set(err, XDCR_EIO, false, "could not start the status push thread");
        goto fail;
    }
    p->started = true;
    return p;
nomem:
    xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
fail:
    xdcr_push_stop(p);
    return NULL;
}

void xdcr_push_stop(xdcr_push_t *p)
{
    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->url);
    if (p->auth != NULL) {
        memset(p->auth, 0, strlen(p->auth));
        free(p->auth);
    }
    free(p);
}
