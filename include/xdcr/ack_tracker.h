/*
 * ack_tracker.h - which source LSN is safe to report to PostgreSQL as flushed, given the Kafka
 * messages produced so far and the delivery reports received (in any order). This is the logic
 * that loses data if it is wrong. Pure: no I/O, no clocks.
 *
 * Every produced message gets a ticket in produce order. A message may carry a confirm point:
 * the LSN that becomes safe once it and every earlier message are acknowledged (the commit LSN
 * on a transaction's last part, the mark's position on a progress mark, 0 for other parts).
 * The confirmed LSN is the highest confirm point in the longest fully-acknowledged prefix.
 * Any failed delivery poisons the tracker: nothing after it is ever confirmed until reset.
 */
#ifndef XDCR_ACK_TRACKER_H
#define XDCR_ACK_TRACKER_H

#include "xdcr/error.h"
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xdcr_ack_tracker xdcr_ack_tracker_t;

/* capacity: maximum messages in flight (>= 1). start: LSN already confirmed. */
xdcr_ack_tracker_t *xdcr_ack_tracker_new(size_t capacity, xdcr_lsn_t start);
void xdcr_ack_tracker_free(xdcr_ack_tracker_t *t);

/*
 * Register the next produced message; *ticket receives its ticket. confirm_lsn is 0 or an LSN
 * not lower than any earlier confirm point (XDCR_EINVAL otherwise). XDCR_EFULL when capacity
 * messages are in flight (the caller must stop reading and wait for deliveries).
 */
int xdcr_ack_tracker_push(xdcr_ack_tracker_t *t, xdcr_lsn_t confirm_lsn, uint64_t *ticket,
                          xdcr_error_t *err);

/* Delivery succeeded. Unknown or repeated tickets give XDCR_EINVAL and change nothing. */
int xdcr_ack_tracker_ack(xdcr_ack_tracker_t *t, uint64_t ticket, xdcr_error_t *err);

/* Delivery failed (or was only "possibly persisted"): the tracker is poisoned. */
int xdcr_ack_tracker_fail(xdcr_ack_tracker_t *t, uint64_t ticket, xdcr_error_t *err);

/*
 * Nothing up to lsn needs publishing beyond what is already registered (a keepalive's WAL end
 * with no transaction open, or the commit of a skipped transaction). Becomes confirmed once every
 * earlier message is acknowledged. Lower or equal LSNs are ignored.
 */
void xdcr_ack_tracker_advance(xdcr_ack_tracker_t *t, xdcr_lsn_t lsn);

/* Highest LSN safe to report as flushed. Never decreases between resets. */
xdcr_lsn_t xdcr_ack_tracker_confirmed(const xdcr_ack_tracker_t *t);

size_t xdcr_ack_tracker_in_flight(const xdcr_ack_tracker_t *t);
bool xdcr_ack_tracker_is_full(const xdcr_ack_tracker_t *t);
bool xdcr_ack_tracker_is_failed(const xdcr_ack_tracker_t *t);

/*
 * Forget everything in flight (after the forwarder decided to re-stream from the slot) and start
 * again at the confirmed LSN. Tickets issued before the reset are unknown afterwards.
 */
void xdcr_ack_tracker_reset(xdcr_ack_tracker_t *t);

#endif
