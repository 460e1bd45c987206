/*
 * cons_status.h - what the consumer tells the outside world: a snapshot of its state and of
 * every configured origin, published by the loop and read by the HTTP thread under a mutex; the
 * liveness tick; the lag of each origin in seconds, bytes and messages (docs/lag.md); readiness;
 * and the /status JSON (docs/status.md). Pure apart from the mutex: time comes in as arguments.
 */
#ifndef CONS_STATUS_H
#define CONS_STATUS_H

#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an origin is doing here (docs/status.md). */
typedef enum cons_ostate {
    CONS_OSTATE_IDLE = 0, /* no partition of it is assigned to this consumer */
    CONS_OSTATE_WAITING,  /* assigned, but cannot apply now: target or Kafka down, positioning */
    CONS_OSTATE_APPLYING, /* assigned, positioned, target connected */
    CONS_OSTATE_HALTED    /* stopped on an error; needs an operator */
} cons_ostate_t;

/* One configured origin, as the loop last saw it. */
typedef struct cons_origin_status {
    char origin[XDCR_ORIGIN_MAX];
    char topic[256];
    int32_t partition; /* -1: none assigned */
    cons_ostate_t state;
    bool has_position;         /* applied_seq and the times below are known */
    xdcr_lsn_t applied_seq;    /* committed position */
    int64_t commit_time_us;    /* source commit time of the newest applied transaction, or 0 */
    int64_t mark_time_us;      /* source time of the newest applied progress mark, or 0 */
    xdcr_lsn_t source_wal_lsn; /* source WAL position carried by the newest applied mark, or 0 */
    int64_t kafka_offset;      /* next offset to read (the stored one), -1 unknown */
    int64_t high_watermark;    /* the partition's, -1 unknown */
    bool halted;
    char halt_kind[16];
    char halt_error[XDCR_ERROR_MSG_MAX];
    xdcr_lsn_t halt_seq; /* 0 unknown */
    int64_t halt_offset; /* -1 unknown */
} cons_origin_status_t;

/* The consumer as a whole. */
typedef struct cons_status_view {
    bool started;                        /* the target schema is installed and the loop runs */
    bool stopping;                       /* SIGTERM seen: draining */
    bool target_connected;               /* the apply session is up */
    bool kafka_up;                       /* at least one broker reachable (librdkafka statistics) */
    size_t assigned;                     /* partitions assigned to this consumer */
    char last_error[XDCR_ERROR_MSG_MAX]; /* "" when none yet */
    int64_t last_error_us;               /* wall clock of last_error, 0 none */
    size_t norigins;
    cons_origin_status_t *origins; /* norigins entries */
} cons_status_view_t;

typedef struct cons_status {
    pthread_mutex_t lock;
    _Atomic int64_t tick_ms; /* CLOCK_MONOTONIC ms of the loop's last sign of life */
    char service_origin[XDCR_ORIGIN_MAX];
    cons_status_view_t v; /* guarded by lock */
} cons_status_t;

/* Allocate the snapshot for norigins origins (names copied). NULL on OOM. */
cons_status_t *cons_status_new(const char *own_origin, char *const *origins, size_t norigins);
void cons_status_free(cons_status_t *st);

/* Liveness: the loop (and every wait inside it) calls tick; livez compares with now. */
void cons_status_tick(cons_status_t *st, int64_t mono_ms);
bool cons_status_is_alive(cons_status_t *st, int64_t mono_ms, int64_t max_age_ms);
/* A cons_pg/ticker-shaped callback: ctx is the cons_status_t; reads CLOCK_MONOTONIC. */
void cons_status_tick_now(void *ctx);

/* Publish a view (copied under the lock; at most the norigins given at creation). */
void cons_status_publish(cons_status_t *st, const cons_status_view_t *in);
/* Copy the current view out; out->origins is malloc'd (free with cons_status_view_free). */
int cons_status_copy(cons_status_t *st, cons_status_view_t *out);
void cons_status_view_free(cons_status_view_t *v);

/* Lag of an origin (docs/lag.md); negative when unknown. Seconds never below 0. */
double cons_lag_seconds(const cons_origin_status_t *o, int64_t now_us);
int64_t cons_lag_bytes(const cons_origin_status_t *o);
int64_t cons_lag_messages(const cons_origin_status_t *o);
/* Newest source time applied (mark or transaction), unix microseconds, 0 unknown. */
int64_t cons_last_source_time_us(const cons_origin_status_t *o);

/* Ready = target connected, partitions assigned, at least one origin applying; else a reason. */
bool cons_status_is_ready(const cons_status_view_t *v, char *reason, size_t len);
/* "starting", "running", "degraded", "halted" or "stopping". */
const char *cons_status_state(const cons_status_view_t *v);
const char *cons_ostate_name(cons_ostate_t s);

/* The /status document (docs/status.md), malloc'd NUL-terminated JSON. */
int cons_status_json(const cons_status_view_t *v, const char *own_origin, int64_t now_us,
                     char **out, size_t *len, xdcr_error_t *err);

#endif
