/*
 * cons_stream.h - the per-origin stream rules of docs/design-notes.md ("stream chaining"): given
 * the applied position A of an origin, decide for each received transaction part or progress
 * mark whether it is applied, skipped as a duplicate, or skipped because an earlier message of
 * its forwarder stream is missing. Also keeps split transactions contiguous. Pure: no I/O.
 *
 * Rules (A = applied):
 *   transaction, first part: commit_lsn < A (or seq <= A without commit_lsn) -> duplicate;
 *     else prev absent (stream start), prev <= A or resync -> apply; else -> ahead (skip).
 *   transaction, later part: the next part of the open transaction -> apply; an earlier part
 *     of it -> duplicate; anything else means the open transaction's stream broke: it is
 *     abandoned (abort_open) and the message is judged on its own (a later part without its
 *     first part is an orphan, or a duplicate when commit_lsn < A).
 *   mark: seq < A -> duplicate; seq >= A with prev absent, prev <= A or resync -> apply
 *     (a mark at exactly A changes nothing but refreshes the lag fields, so it is applied, not
 *     counted as a duplicate); else -> ahead.
 *   Any message other than the next part of an open transaction abandons that transaction.
 */
#ifndef CONS_STREAM_H
#define CONS_STREAM_H

#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct cons_stream {
    xdcr_lsn_t applied;        /* A: every transaction with seq <= applied is applied */
    bool resync;               /* no chain known (fresh position, accepted gap): the next
                                  transaction or mark is accepted whatever its prev */
    bool in_txn;               /* a split transaction is partly applied */
    xdcr_lsn_t txn_commit_lsn; /* its commit_lsn */
    uint32_t txn_next_part;    /* the part expected next */
} cons_stream_t;

/* What the rules need of a message. */
typedef struct cons_stream_msg {
    xdcr_msg_type_t type;
    xdcr_lsn_t seq;        /* transaction: on the last part only (else 0); mark: its position */
    xdcr_lsn_t prev;       /* 0 when absent (stream start) */
    xdcr_lsn_t commit_lsn; /* transaction: on every part; 0 when unknown (single part only) */
    uint32_t part;
    bool last;
} cons_stream_msg_t;

typedef enum cons_stream_action {
    CONS_STREAM_APPLY = 0,   /* apply the message */
    CONS_STREAM_DUPLICATE,   /* already applied: skip and count */
    CONS_STREAM_AHEAD,       /* prev > A: a message before it is missing from its stream; skip
                                and count, the forwarder's re-stream delivers both again */
    CONS_STREAM_ORPHAN_PART, /* a later part of a transaction whose first part was not applied
                                in this stream: skip and count */
    CONS_STREAM_INVALID      /* inconsistent fields (last part without seq, seq not above
                                commit_lsn, mark without seq): a poison message */
} cons_stream_action_t;

typedef struct cons_stream_verdict {
    cons_stream_action_t action;
    bool abort_open; /* the open split transaction can no longer complete: roll back what was
                        applied of it (before acting on this message) */
    bool txn_begins; /* APPLY of a transaction's first part */
    bool completes;  /* APPLY of a last part or a mark: A becomes the message's seq */
} cons_stream_verdict_t;

/* Start at applied position A; resync when no chain is known (no stored position). */
void cons_stream_init(cons_stream_t *s, xdcr_lsn_t applied, bool resync);

/* Judge one message against the state; changes nothing. */
cons_stream_verdict_t cons_stream_decide(const cons_stream_t *s, const cons_stream_msg_t *m);

/* Record the verdict once the caller acted on it (rolled back, applied or skipped). */
void cons_stream_advance(cons_stream_t *s, const cons_stream_msg_t *m,
                         const cons_stream_verdict_t *v);

/* "apply", "duplicate", "ahead", "orphan_part", "invalid". */
const char *cons_stream_action_name(cons_stream_action_t a);

#endif
