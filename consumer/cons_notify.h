/*
 * cons_notify.h - systemd service notifications (sd_notify): READY=1 once the target is
 * connected and the schema installed, STATUS= lines when the state changes, STOPPING=1 on
 * SIGTERM, WATCHDOG=1 from the loop when the unit sets WatchdogSec. The only user of
 * libsystemd; every call is a no-op when built without it (XDCR_HAVE_SYSTEMD) or when not run
 * by systemd (no NOTIFY_SOCKET).
 */
#ifndef CONS_NOTIFY_H
#define CONS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cons_notify {
    int64_t watchdog_ms;      /* 0: no watchdog */
    int64_t next_watchdog_ms; /* CLOCK_MONOTONIC */
    char status[256];         /* last STATUS= sent */
} cons_notify_t;

void cons_notify_init(cons_notify_t *n);
void cons_notify_ready(cons_notify_t *n, const char *status);
/* Sends STATUS= only when it differs from the last one. */
void cons_notify_status(cons_notify_t *n, const char *status);
void cons_notify_stopping(cons_notify_t *n);
/* WATCHDOG=1 at a quarter of the watchdog interval at most; call every loop iteration. */
void cons_notify_watchdog(cons_notify_t *n, int64_t mono_ms);

#endif
