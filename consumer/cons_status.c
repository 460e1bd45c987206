/*
 * cons_status.c - the consumer's published state: snapshot under a mutex, liveness tick, lag
 * arithmetic, readiness and the /status JSON. No I/O; times are passed in (except the
 * CLOCK_MONOTONIC read of cons_status_tick_now, a callback for the adapters).
 */
#include "cons_status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cons_status_t *cons_status_new(const char *own_origin, char *const *origins, size_t norigins)
{
    cons_status_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return NULL;
    }
    atomic_init(&st->tick_ms, 0);
    snprintf(st->service_origin, sizeof(st->service_origin), "%s", own_origin);
    st->v.norigins = norigins;
    st->v.origins = calloc(norigins > 0 ? norigins : 1, sizeof(*st->v.origins));
    if (st->v.origins == NULL) {
        cons_status_free(st);
        return NULL;
    }
    for (size_t i = 0; i < norigins; i++) {
        cons_origin_status_t *o = &st->v.origins[i];

        snprintf(o->origin, sizeof(o->origin), "%s", origins[i]);
        o->partition = -1;
        o->kafka_offset = -1;
        o->high_watermark = -1;
        o->halt_offset = -1;
    }
    st->v.kafka_up = true;
    return st;
}

void cons_status_free(cons_status_t *st)
{
    if (st == NULL)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st->v.origins);
    free(st);
}

void cons_status_tick(cons_status_t *st, int64_t mono_ms)
{
    atomic_store(&st->tick_ms, mono_ms);
}

void cons_status_tick_now(void *ctx)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    cons_status_tick(ctx, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

bool cons_status_is_alive(cons_status_t *st, int64_t mono_ms, int64_t max_age_ms)
{
    int64_t t = atomic_load(&st->tick_ms);

    return t > 0 && mono_ms - t <= max_age_ms;
}

void cons_status_publish(cons_status_t *st, const cons_status_view_t *in)
{
    cons_origin_status_t *keep;
    size_t n;

    pthread_mutex_lock(&st->lock);
    keep = st->v.origins;
    n = st->v.norigins; /* fixed at creation */
    memcpy(keep, in->origins, (in->norigins < n ? in->norigins : n) * sizeof(*keep));
    st->v = *in;
    st->v.origins = keep;
    st->v.norigins = n;
    pthread_mutex_unlock(&st->lock);
}

int cons_status_copy(cons_status_t *st, cons_status_view_t *out)
{
    cons_origin_status_t *o;

    pthread_mutex_lock(&st->lock);
    o = malloc((st->v.norigins > 0 ? st->v.norigins : 1) * sizeof(*o));
    if (o == NULL) {
        pthread_mutex_unlock(&st->lock);
        memset(out, 0, sizeof(*out));
        return XDCR_ENOMEM;
    }
    memcpy(o, st->v.origins, st->v.norigins * sizeof(*o));
    *out = st->v;
    out->origins = o;
    pthread_mutex_unlock(&st->lock);
    return 0;
}

void cons_status_view_free(cons_status_view_t *v)
{
    if (v == NULL)
        return;
    free(v->origins);
    v->origins = NULL;
    v->norigins = 0;
}

/* ---- lag ----------------------------------------------------------------------------------- */

int64_t cons_last_source_time_us(const cons_origin_status_t *o)
{
    if (!o->has_position)
        return 0;
    return o->commit_time_us > o->mark_time_us ? o->commit_time_us : o->mark_time_us;
}

double cons_lag_seconds(const cons_origin_status_t *o, int64_t now_us)
{
    int64_t t = cons_last_source_time_us(o);

    if (t <= 0)
        return -1;
    /* a source clock ahead of ours must not show as negative lag */
    return now_us > t ? (double)(now_us - t) / 1e6 : 0.0;
}

int64_t cons_lag_bytes(const cons_origin_status_t *o)
{
    if (!o->has_position || o->source_wal_lsn == 0)
        return -1;
    return o->source_wal_lsn > o->applied_seq ? (int64_t)(o->source_wal_lsn - o->applied_seq) : 0;
}

int64_t cons_lag_messages(const cons_origin_status_t *o)
{
    if (o->high_watermark < 0 || o->kafka_offset < 0)
        return -1;
    return o->high_watermark > o->kafka_offset ? o->high_watermark - o->kafka_offset : 0;
}

/* ---- readiness and state ------------------------------------------------------------------- */

const char *cons_ostate_name(cons_ostate_t s)
{
    switch (s) {
    case CONS_OSTATE_WAITING:
        return "waiting";
    case CONS_OSTATE_APPLYING:
        return "applying";
    case CONS_OSTATE_HALTED:
        return "halted";
    default:
        return "idle";
    }
}

bool cons_status_is_ready(const cons_status_view_t *v, char *reason, size_t len)
{
    size_t applying = 0, halted = 0;

    for (size_t i = 0; i < v->norigins; i++) {
        if (v->origins[i].state == CONS_OSTATE_APPLYING)
            applying++;
        else if (v->origins[i].state == CONS_OSTATE_HALTED)
            halted++;
    }
    if (v->stopping)
        snprintf(reason, len, "stopping");
    else if (!v->started)
        snprintf(reason, len, "starting: the target schema is not installed yet");
    else if (!v->target_connected)
        snprintf(reason, len, "not connected to the target PostgreSQL");
    else if (!v->kafka_up)
        snprintf(reason, len, "no Kafka broker reachable");
    else if (v->assigned == 0)
        snprintf(reason, len, "no partitions assigned");
    else if (applying == 0)
        snprintf(reason, len, "no origin applying (%zu halted)", halted);
    else
        return true;
    return false;
}

const char *cons_status_state(const cons_status_view_t *v)
{
    size_t assigned = 0, halted = 0;
    char reason[128];

    if (v->stopping)
        return "stopping";
    if (!v->started)
        return "starting";
    for (size_t i = 0; i < v->norigins; i++) {
        if (v->origins[i].state == CONS_OSTATE_IDLE)
            continue;
        assigned++;
        if (v->origins[i].state == CONS_OSTATE_HALTED)
            halted++;
    }
    if (assigned > 0 && halted == assigned)
        return "halted";
    return cons_status_is_ready(v, reason, sizeof(reason)) ? "running" : "degraded";
}

/* ---- JSON -------------------------------------------------------------------------------- */

static json_t *time_json(int64_t us)
{
    char buf[40];

    if (us <= 0 || xdcr_time_format_us(us, buf, sizeof(buf)) == NULL)
        return json_null();
    return json_string(buf);
}

static json_t *lsn_json(xdcr_lsn_t lsn, bool known)
{
    char buf[XDCR_LSN_STRLEN];

    return known ? json_string(xdcr_lsn_format(lsn, buf)) : json_null();
}

static json_t *int_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *origin_json(const cons_origin_status_t *o, int64_t now_us)
{
    json_t *j = json_object(), *h;
    double secs = cons_lag_seconds(o, now_us);

    if (j == NULL)
        return NULL;
    json_object_set_new(j, "origin", json_string(o->origin));
    json_object_set_new(j, "topic", o->topic[0] != '\0' ? json_string(o->topic) : json_null());
    json_object_set_new(j, "partition",
                        o->partition >= 0 ? json_integer(o->partition) : json_null());
    json_object_set_new(j, "state", json_string(cons_ostate_name(o->state)));
    json_object_set_new(j, "applied_seq", lsn_json(o->applied_seq, o->has_position));
    json_object_set_new(j, "commit_time", time_json(o->has_position ? o->commit_time_us : 0));
    json_object_set_new(j, "mark_time", time_json(o->has_position ? o->mark_time_us : 0));
    json_object_set_new(j, "last_source_time", time_json(cons_last_source_time_us(o)));
    json_object_set_new(j, "source_wal_lsn",
                        lsn_json(o->source_wal_lsn, o->has_position && o->source_wal_lsn != 0));
    /* milliseconds are plenty, and keep the document short */
    json_object_set_new(j, "lag_seconds",
                        secs >= 0 ? json_real((double)(int64_t)(secs * 1000 + 0.5) / 1000)
                                  : json_null());
    json_object_set_new(j, "lag_bytes", int_or_null(cons_lag_bytes(o)));
    json_object_set_new(j, "lag_messages", int_or_null(cons_lag_messages(o)));
    json_object_set_new(j, "kafka_offset", int_or_null(o->kafka_offset));
    json_object_set_new(j, "high_watermark", int_or_null(o->high_watermark));
    if (o->halted) {
        h = json_object();
        json_object_set_new(h, "kind", json_string(o->halt_kind));
        json_object_set_new(h, "error", json_string(o->halt_error));
        json_object_set_new(h, "seq", lsn_json(o->halt_seq, o->halt_seq != 0));
        json_object_set_new(h, "offset", int_or_null(o->halt_offset));
        json_object_set_new(j, "halt", h);
    } else {
        json_object_set_new(j, "halt", json_null());
    }
    return j;
}

int cons_status_json(const cons_status_view_t *v, const char *own_origin, int64_t now_us,
                     char **out, size_t *len, xdcr_error_t *err)
{
    json_t *root = json_object(), *arr = json_array();
    char reason[256];
    bool ready = cons_status_is_ready(v, reason, sizeof(reason));

    *out = NULL;
    if (root == NULL || arr == NULL)
        goto oom;
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "service", json_string("consumer"));
    json_object_set_new(root, "service_version", json_string(XDCR_VERSION));
    json_object_set_new(root, "origin", json_string(own_origin));
    json_object_set_new(root, "state", json_string(cons_status_state(v)));
    json_object_set_new(root, "ready", json_boolean(ready));
    json_object_set_new(root, "ready_reason", ready ? json_null() : json_string(reason));
    json_object_set_new(root, "time", time_json(now_us));
    json_object_set_new(root, "last_error",
                        v->last_error[0] != '\0' ? json_string(v->last_error) : json_null());
    json_object_set_new(root, "last_error_time", time_json(v->last_error_us));
    json_object_set_new(root, "target_connected", json_boolean(v->target_connected));
    json_object_set_new(root, "kafka_up", json_boolean(v->kafka_up));
    json_object_set_new(root, "assigned_partitions", json_integer((json_int_t)v->assigned));
    for (size_t i = 0; i < v->norigins; i++) {
        json_t *o = origin_json(&v->origins[i], now_us);

        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto oom;
    }
    json_object_set_new(root, "origins", arr);
    arr = NULL;
    *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (*out == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    *len = strlen(*out);
    return 0;
oom:
    json_decref(arr);
    json_decref(root);
    return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
}
