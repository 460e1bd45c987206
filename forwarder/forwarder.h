/*
 * forwarder.h - the forwarder's main loop: reads the slot through pg_stream, decodes pgoutput,
 * encodes xdcr messages, produces them through kafka_producer and confirms to PostgreSQL only
 * what the ack tracker says Kafka holds.
 */
#ifndef FWD_FORWARDER_H
#define FWD_FORWARDER_H

#include "fwd_config.h"
#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr/metrics.h"

#include <signal.h>
#include <stdbool.h>

typedef struct fwd fwd_t;

typedef enum fwd_role {
    FWD_ROLE_STARTING = 0,
    FWD_ROLE_STANDBY = 1, /* another forwarder holds the slot; we wait to take over */
    FWD_ROLE_ACTIVE = 2   /* streaming */
} fwd_role_t;

/* Everything main() hands to the loop; the loop owns none of it. */
typedef struct fwd_env {
    const fwd_config_t *cfg;
    const xdcr_log_t *lg;
    xdcr_metrics_t *metrics;
    const char *password;        /* from pg.password_file, or NULL */
    volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    const char *crash_point;     /* test builds: _exit(99) at this named point, or NULL */
} fwd_env_t;

fwd_t *fwd_new(const fwd_env_t *env, xdcr_error_t *err);
void fwd_free(fwd_t *f);

/*
 * Run until *env->stop is set (then drain: finish the open transaction, wait for deliveries up to
 * drain.timeout, confirm, return 0) or an unrecoverable error (slot lost, source identity
 * changed, bad configuration found at run time), returned as a negative code with err filled.
 */
int fwd_run(fwd_t *f, xdcr_error_t *err);

/* Snapshot of the state for /status and /readyz (safe to call from another thread). */
typedef struct fwd_status {
    fwd_role_t role;
    bool streaming;
    unsigned long long confirmed_lsn, wal_lsn, received_lsn;
    long long retained_bytes;
    unsigned long inflight_messages;
    unsigned long long last_loop_us; /* monotonic µs of the last loop iteration */
    char last_error[XDCR_ERROR_MSG_MAX];
} fwd_status_t;
void fwd_get_status(fwd_t *f, fwd_status_t *st);
const char *fwd_role_name(fwd_role_t role);

#endif
