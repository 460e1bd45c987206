/*
 * consumer.h - the consumer's main loop: reads the remote origins' partitions through
 * kafka_consumer, decodes and judges each message with the stream rules (cons_stream), applies
 * batches through pg_apply with their position in the same target transaction, halts an origin
 * on a gap or a poison message (or dead-letters it), retries what a retry can fix, and drains on
 * SIGTERM.
 *
 * Exit rule: while at least one assigned partition can apply, the consumer keeps running and
 * halted origins wait for an operator (checked every halt.check_interval). When every assigned
 * partition is halted, cons_run() returns the halt's code (XDCR_EGAP, XDCR_EHALTED or
 * XDCR_ESYSID), so the process exits with a distinct status.
 */
#ifndef CONS_CONSUMER_H
#define CONS_CONSUMER_H

#include "cons_config.h"
#include "cons_status.h"
#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr/metrics.h"

#include <signal.h>

typedef struct cons cons_t;

/* Everything main() hands to the loop; the loop owns none of it. */
typedef struct cons_env {
    const cons_config_t *cfg;
    const xdcr_log_t *lg;
    xdcr_metrics_t *metrics;
    cons_status_t *status;       /* the loop publishes here; the HTTP thread reads it */
    const char *password;        /* from pg.password_file, or NULL */
    volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    const char *crash_point;     /* test builds: _exit(99) at this named point, or NULL */
} cons_env_t;

cons_t *cons_new(const cons_env_t *env, xdcr_error_t *err);
void cons_free(cons_t *c);

/*
 * Run until *env->stop is set (then drain: finish or roll back the open batch within
 * drain.timeout, commit offsets, return 0), every assigned origin is halted (the halt's code),
 * or an unrecoverable error (bad configuration found at run time, failed preflight).
 */
int cons_run(cons_t *c, xdcr_error_t *err);

#endif
