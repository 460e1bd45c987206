/*
 * ack_tracker.c - which source LSN is safe to confirm, from produce order and delivery reports.
 * A fixed ring of in-flight messages indexed by ticket; the confirmed prefix only grows.
 * Pure: no I/O, no clocks, no allocation after xdcr_ack_tracker_new().
 */
#include "xdcr/ack_tracker.h"

#include <stdlib.h>

/*
 * Entry states. An entry leaves the ring only when it and every earlier entry are ACKED; a
 * FAILED entry therefore stays until reset and blocks everything after it.
 */
enum { SLOT_PENDING = 0, SLOT_ACKED = 1, SLOT_FAILED = 2 };

struct xdcr_ack_tracker {
    size_t capacity;
    uint64_t head;         /* ticket of the oldest entry still in the ring */
    uint64_t next;         /* ticket the next push gets; next - head <= capacity */
    xdcr_lsn_t confirmed;  /* highest confirm point of the released prefix; never decreases */
    xdcr_lsn_t last_point; /* highest confirm point pushed since new/reset, for validation */
    bool failed;           /* a delivery failed since new/reset */
    /*
     * Per slot (ticket % capacity): the LSN that becomes safe once this entry and all earlier
     * ones are acknowledged. It is the message's confirm point raised by any advance() that
     * arrived while this entry was the newest one, so advance() never needs a slot of its own.
     */
    xdcr_lsn_t *point;
    unsigned char *state;
};

xdcr_ack_tracker_t *xdcr_ack_tracker_new(size_t capacity, xdcr_lsn_t start)
{
    xdcr_ack_tracker_t *t;

    if (capacity == 0 || capacity > SIZE_MAX / sizeof(xdcr_lsn_t))
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->point = calloc(capacity, sizeof(*t->point));
    t->state = calloc(capacity, sizeof(*t->state));
    if (t->point == NULL || t->state == NULL)
        goto fail_free;
    t->capacity = capacity;
    /* Tickets start at 1 so that a zeroed ticket variable is never valid. */
    t->head = 1;
    t->next = 1;
    t->confirmed = start;
    return t;

fail_free:
    xdcr_ack_tracker_free(t);
    return NULL;
}

void xdcr_ack_tracker_free(xdcr_ack_tracker_t *t)
{
    if (t == NULL)
        return;
    free(t->point);
    free(t->state);
    free(t);
}

static size_t slot_of(const xdcr_ack_tracker_t *t, uint64_t ticket)
{
    return (size_t)(ticket % t->capacity);
}

/* Release the acknowledged prefix. Each entry is released once: amortised O(1) per message. */
static void release_prefix(xdcr_ack_tracker_t *t)
{
    while (t->head < t->next) {
        size_t s = slot_of(t, t->head);

        if (t->state[s] != SLOT_ACKED)
            break;
        if (t->point[s] > t->confirmed)
            t->confirmed = t->point[s];
        t->head++;
    }
}

int xdcr_ack_tracker_push(xdcr_ack_tracker_t *t, xdcr_lsn_t confirm_lsn, uint64_t *ticket,
                          xdcr_error_t *err)
{
    char a[XDCR_LSN_STRLEN], b[XDCR_LSN_STRLEN];
    size_t s;

    if (confirm_lsn != 0 && confirm_lsn < t->last_point)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "confirm point %s is lower than the earlier confirm point %s",
                              xdcr_lsn_format(confirm_lsn, a), xdcr_lsn_format(t->last_point, b));
    if (t->next - t->head >= t->capacity)
        return xdcr_error_set(err, XDCR_EFULL, true, "%zu messages in flight, the limit",
                              t->capacity);
    s = slot_of(t, t->next);
    t->point[s] = confirm_lsn;
    t->state[s] = SLOT_PENDING;
    if (confirm_lsn != 0)
        t->last_point = confirm_lsn;
    *ticket = t->next++;
    return 0;
}

/* Common checks of ack/fail: the ticket is in the ring and has no report yet. */
static int check_report(const xdcr_ack_tracker_t *t, uint64_t ticket, const char *what,
                        xdcr_error_t *err)
{
    if (ticket < t->head || ticket >= t->next)
        return xdcr_error_set(
            err, XDCR_EINVAL, false, "%s for unknown ticket %llu (in flight: %llu..%llu)", what,
            (unsigned long long)ticket, (unsigned long long)t->head, (unsigned long long)t->next);
    if (t->state[slot_of(t, ticket)] != SLOT_PENDING)
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "%s for ticket %llu which already had a delivery report", what,
                              (unsigned long long)ticket);
    return 0;
}

int xdcr_ack_tracker_ack(xdcr_ack_tracker_t *t, uint64_t ticket, xdcr_error_t *err)
{
    int rc = check_report(t, ticket, "ack", err);

    if (rc != 0)
        return rc;
    t->state[slot_of(t, ticket)] = SLOT_ACKED;
    if (ticket == t->head)
        release_prefix(t);
    return 0;
}

/*
 * An unknown ticket (issued before a reset, or never) does not poison: everything after the
 * confirmed LSN is re-streamed after a reset anyway, and poisoning on a stale report would make
 * the forwarder restart once more for nothing.
 */
int xdcr_ack_tracker_fail(xdcr_ack_tracker_t *t, uint64_t ticket, xdcr_error_t *err)
{
    int rc = check_report(t, ticket, "delivery failure", err);

    if (rc != 0)
        return rc;
    t->state[slot_of(t, ticket)] = SLOT_FAILED;
    t->failed = true;
    return 0;
}

void xdcr_ack_tracker_advance(xdcr_ack_tracker_t *t, xdcr_lsn_t lsn)
{
    size_t s;

    if (lsn <= t->confirmed)
        return;
    if (t->head == t->next) {
        /* Nothing in flight. The ring is never empty while failed (the failed entry stays). */
        t->confirmed = lsn;
        return;
    }
    /* Safe once every registered message is acknowledged: attach to the newest one. */
    s = slot_of(t, t->next - 1);
    if (lsn > t->point[s])
        t->point[s] = lsn;
}

xdcr_lsn_t xdcr_ack_tracker_confirmed(const xdcr_ack_tracker_t *t)
{
    return t->confirmed;
}

size_t xdcr_ack_tracker_in_flight(const xdcr_ack_tracker_t *t)
{
    return (size_t)(t->next - t->head);
}

bool xdcr_ack_tracker_is_full(const xdcr_ack_tracker_t *t)
{
    return t->next - t->head >= t->capacity;
}

bool xdcr_ack_tracker_is_failed(const xdcr_ack_tracker_t *t)
{
    return t->failed;
}

void xdcr_ack_tracker_reset(xdcr_ack_tracker_t *t)
{
    /* Tickets keep counting up, so every ticket issued before now is unknown from here on. */
    t->head = t->next;
    t->failed = false;
    t->last_point = 0;
}
