/*
 * cons_stream.c - the per-origin dedup, chaining and part-contiguity rules (see cons_stream.h
 * and docs/design-notes.md). Pure: no I/O. This is the logic that applies something twice or
 * skips something for good if it is wrong: every branch has a unit test.
 */
#include "cons_stream.h"

#include <string.h>

void cons_stream_init(cons_stream_t *s, xdcr_lsn_t applied, bool resync)
{
    memset(s, 0, sizeof(*s));
    s->applied = applied;
    s->resync = resync;
}

const char *cons_stream_action_name(cons_stream_action_t a)
{
    switch (a) {
    case CONS_STREAM_APPLY:
        return "apply";
    case CONS_STREAM_DUPLICATE:
        return "duplicate";
    case CONS_STREAM_AHEAD:
        return "ahead";
    case CONS_STREAM_ORPHAN_PART:
        return "orphan_part";
    case CONS_STREAM_INVALID:
        return "invalid";
    }
    return "unknown";
}

static bool is_invalid(const cons_stream_msg_t *m)
{
    if (m->type == XDCR_MSG_MARK)
        return m->seq == 0;
    if (m->type != XDCR_MSG_TXN)
        return true;
    if (m->last && m->seq == 0)
        return true;
    if (m->last && m->commit_lsn != 0 && m->seq <= m->commit_lsn)
        return true;
    if ((!m->last || m->part > 0) && m->commit_lsn == 0)
        return true; /* split transactions are identified by commit_lsn */
    return false;
}

/* May the stream continue with a message whose predecessor in its stream was prev? */
static bool chain_ok(const cons_stream_t *s, xdcr_lsn_t prev)
{
    return s->resync || prev == 0 || prev <= s->applied;
}

cons_stream_verdict_t cons_stream_decide(const cons_stream_t *s, const cons_stream_msg_t *m)
{
    cons_stream_verdict_t v;

    memset(&v, 0, sizeof(v));
    if (s->in_txn && m->type == XDCR_MSG_TXN && m->part > 0 && m->commit_lsn == s->txn_commit_lsn) {
        if (m->part < s->txn_next_part) {
            v.action = CONS_STREAM_DUPLICATE; /* a part we have: content is deterministic */
            return v;
        }
        if (m->part == s->txn_next_part) {
            if (is_invalid(m)) {
                v.abort_open = true;
                v.action = CONS_STREAM_INVALID;
                return v;
            }
            v.action = CONS_STREAM_APPLY;
            v.completes = m->last;
            return v;
        }
        /* a part went missing: the forwarder re-streams the whole transaction */
        v.abort_open = true;
        v.action = CONS_STREAM_ORPHAN_PART;
        return v;
    }
    if (s->in_txn)
        v.abort_open = true; /* anything else: the open transaction's stream broke */
    if (is_invalid(m)) {
        v.action = CONS_STREAM_INVALID;
        return v;
    }
    if (m->type == XDCR_MSG_MARK) {
        if (m->seq < s->applied)
            v.action = CONS_STREAM_DUPLICATE;
        else if (chain_ok(s, m->prev)) {
            v.action = CONS_STREAM_APPLY;
            v.completes = true;
        } else
            v.action = CONS_STREAM_AHEAD;
        return v;
    }
    if (m->part > 0) {
        v.action = m->commit_lsn < s->applied ? CONS_STREAM_DUPLICATE : CONS_STREAM_ORPHAN_PART;
        return v;
    }
    /* commit records do not overlap: seq <= A is the same as commit_lsn < A */
    if (m->commit_lsn != 0 ? m->commit_lsn < s->applied : m->seq <= s->applied) {
        v.action = CONS_STREAM_DUPLICATE;
        return v;
    }
    if (!chain_ok(s, m->prev)) {
        v.action = CONS_STREAM_AHEAD;
        return v;
    }
    v.action = CONS_STREAM_APPLY;
    v.txn_begins = true;
    v.completes = m->last;
    return v;
}

void cons_stream_advance(cons_stream_t *s, const cons_stream_msg_t *m,
                         const cons_stream_verdict_t *v)
{
    if (v->abort_open)
        s->in_txn = false;
    if (v->action != CONS_STREAM_APPLY)
        return;
    s->resync = false;
    if (m->type == XDCR_MSG_MARK) {
        if (m->seq > s->applied)
            s->applied = m->seq;
        return;
    }
    if (m->last) {
        s->applied = m->seq;
        s->in_txn = false;
        return;
    }
    s->in_txn = true;
    s->txn_commit_lsn = m->commit_lsn;
    s->txn_next_part = m->part + 1;
}
