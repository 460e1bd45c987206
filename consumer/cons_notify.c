/*
 * cons_notify.c - sd_notify adapter (see cons_notify.h). Compiled against libsystemd only with
 * XDCR_HAVE_SYSTEMD; otherwise every function does nothing.
 */
#include "cons_notify.h"

#include <stdio.h>
#include <string.h>

#ifdef XDCR_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void cons_notify_init(cons_notify_t *n)
{
    memset(n, 0, sizeof(*n));
#ifdef XDCR_HAVE_SYSTEMD
    {
        uint64_t usec = 0;

        /* unset_environment = 0: a child process has no business with our watchdog anyway */
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
            n->watchdog_ms = (int64_t)(usec / 1000) > 0 ? (int64_t)(usec / 1000) : 1;
    }
#endif
}

void cons_notify_ready(cons_notify_t *n, const char *status)
{
    snprintf(n->status, sizeof(n->status), "%s", status);
#ifdef XDCR_HAVE_SYSTEMD
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
#endif
}

void cons_notify_status(cons_notify_t *n, const char *status)
{
    if (strcmp(n->status, status) == 0)
        return;
    snprintf(n->status, sizeof(n->status), "%s", status);
#ifdef XDCR_HAVE_SYSTEMD
    sd_notifyf(0, "STATUS=%s", status);
#endif
}

void cons_notify_stopping(cons_notify_t *n)
{
    snprintf(n->status, sizeof(n->status), "stopping");
#ifdef XDCR_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
#endif
}

void cons_notify_watchdog(cons_notify_t *n, int64_t mono_ms)
{
    if (n->watchdog_ms <= 0 || mono_ms < n->next_watchdog_ms)
        return;
    n->next_watchdog_ms = mono_ms + (n->watchdog_ms / 4 > 0 ? n->watchdog_ms / 4 : 1);
#ifdef XDCR_HAVE_SYSTEMD
    sd_notify(0, "WATCHDOG=1");
#endif
}
