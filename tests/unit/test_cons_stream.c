/*
 * test_cons_stream.c - the consumer's per-origin stream rules (consumer/cons_stream.c):
 * duplicates, stream starts, chaining with prev, ahead-of-gap skips, marks, and split
 * transactions with missing, duplicated and re-streamed parts.
 */
#include "cons_stream.h"
#include "xdcr_test.h"

#include <string.h>

static cons_stream_msg_t txn(xdcr_lsn_t prev, xdcr_lsn_t commit_lsn, xdcr_lsn_t seq)
{
    cons_stream_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = XDCR_MSG_TXN;
    m.prev = prev;
    m.commit_lsn = commit_lsn;
    m.seq = seq;
    m.part = 0;
    m.last = true;
    return m;
}

static cons_stream_msg_t part(xdcr_lsn_t prev, xdcr_lsn_t commit_lsn, uint32_t n, bool last,
                              xdcr_lsn_t seq)
{
    cons_stream_msg_t m = txn(prev, commit_lsn, last ? seq : 0);

    m.part = n;
    m.last = last;
    return m;
}

static cons_stream_msg_t mark(xdcr_lsn_t prev, xdcr_lsn_t seq)
{
    cons_stream_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = XDCR_MSG_MARK;
    m.prev = prev;
    m.seq = seq;
    return m;
}

/* Decide and advance, as the consumer does after acting on the verdict. */
static cons_stream_verdict_t step(cons_stream_t *s, cons_stream_msg_t m)
{
    cons_stream_verdict_t v = cons_stream_decide(s, &m);

    cons_stream_advance(s, &m, &v);
    return v;
}

static void test_stream_duplicate_single_part_at_or_below_applied(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x2000, false);
    v = step(&s, txn(0x1000, 0x1fe0, 0x2000)); /* the applied one itself */
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    v = step(&s, txn(0x500, 0x0fe0, 0x1000));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    /* without commit_lsn the seq decides */
    v = step(&s, txn(0x500, 0, 0x2000));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    CU_ASSERT_EQUAL(s.applied, 0x2000);
}

static void test_stream_next_in_chain_is_applied(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x2000, false);
    v = step(&s, txn(0x2000, 0x2100, 0x2150));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.txn_begins);
    CU_ASSERT_TRUE(v.completes);
    CU_ASSERT_FALSE(v.abort_open);
    CU_ASSERT_EQUAL(s.applied, 0x2150);
    /* prev below A is fine too (A was moved by a mark of the same stream) */
    cons_stream_init(&s, 0x3000, false);
    v = step(&s, txn(0x2150, 0x3000, 0x3050));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x3050);
}

static void test_stream_commit_lsn_equal_to_applied_is_not_duplicate(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    /* A came from a mark at a WAL end; the next commit record may start exactly there */
    cons_stream_init(&s, 0x4000, false);
    v = step(&s, txn(0x4000, 0x4000, 0x4040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x4040);
}

static void test_stream_start_without_prev_is_applied(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x2000, false);
    v = step(&s, txn(0, 0x5000, 0x5050));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x5050);
}

static void test_stream_prev_above_applied_is_skipped_ahead(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x2000, false);
    v = step(&s, txn(0x2100, 0x2200, 0x2250));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_AHEAD);
    CU_ASSERT_FALSE(v.completes);
    CU_ASSERT_EQUAL(s.applied, 0x2000);
}

/* The case of docs/design-notes.md: N fails, N+1 lands, then both are re-streamed. */
static void test_stream_lost_message_then_restream_applies_everything_once(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    /* N = (prev 0x1000, seq 0x1100) was lost; N+1 = (prev 0x1100, seq 0x1200) arrives */
    v = step(&s, txn(0x1100, 0x11c0, 0x1200));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_AHEAD);
    /* re-stream from the confirmed position: N is a stream start, then N+1 */
    v = step(&s, txn(0, 0x10c0, 0x1100));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    v = step(&s, txn(0x1100, 0x11c0, 0x1200));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x1200);
    /* and a second copy of either is a duplicate */
    v = step(&s, txn(0x1100, 0x11c0, 0x1200));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    v = step(&s, txn(0, 0x10c0, 0x1100));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
}

static void test_stream_resync_accepts_any_prev_once(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0, true);
    v = step(&s, txn(0x9000, 0x9100, 0x9150));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_FALSE(s.resync);
    v = step(&s, txn(0x9900, 0x9a00, 0x9a50));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_AHEAD);
    /* resync after an accepted gap keeps the duplicate rule */
    cons_stream_init(&s, 0x9150, true);
    v = step(&s, txn(0x9000, 0x9100, 0x9150));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    CU_ASSERT_TRUE(s.resync);
    v = step(&s, mark(0x9900, 0x9990));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_FALSE(s.resync);
    CU_ASSERT_EQUAL(s.applied, 0x9990);
}

static void test_stream_marks(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x2000, false);
    v = step(&s, mark(0x1000, 0x1800));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    /* a mark at exactly A refreshes the lag fields: applied, A unchanged */
    v = step(&s, mark(0x2000, 0x2000));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.completes);
    CU_ASSERT_FALSE(v.txn_begins);
    CU_ASSERT_EQUAL(s.applied, 0x2000);
    v = step(&s, mark(0x2000, 0x2800));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x2800);
    v = step(&s, mark(0x3000, 0x3800));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_AHEAD);
    CU_ASSERT_EQUAL(s.applied, 0x2800);
    v = step(&s, mark(0, 0x3000));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x3000);
    /* a transaction chained to a mark */
    v = step(&s, txn(0x3000, 0x3100, 0x3140));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
}

static void test_stream_split_transaction_applied_part_by_part(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    v = step(&s, part(0x1000, 0x5000, 0, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.txn_begins);
    CU_ASSERT_FALSE(v.completes);
    CU_ASSERT_TRUE(s.in_txn);
    CU_ASSERT_EQUAL(s.applied, 0x1000);
    v = step(&s, part(0x1000, 0x5000, 1, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_FALSE(v.txn_begins);
    CU_ASSERT_FALSE(v.completes);
    v = step(&s, part(0x1000, 0x5000, 2, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.completes);
    CU_ASSERT_FALSE(s.in_txn);
    CU_ASSERT_EQUAL(s.applied, 0x5040);
}

static void test_stream_split_transaction_duplicate_decided_at_part_zero(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x5040, false);
    v = step(&s, part(0x1000, 0x5000, 0, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    v = step(&s, part(0x1000, 0x5000, 1, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    v = step(&s, part(0x1000, 0x5000, 2, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    CU_ASSERT_FALSE(s.in_txn);
}

static void test_stream_split_transaction_missing_part_abandons_it(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    v = step(&s, part(0x1000, 0x5000, 2, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_ORPHAN_PART);
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_FALSE(s.in_txn);
    v = step(&s, part(0x1000, 0x5000, 3, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_ORPHAN_PART);
    CU_ASSERT_FALSE(v.abort_open);
    CU_ASSERT_EQUAL(s.applied, 0x1000);
    /* the re-stream brings it whole */
    v = step(&s, part(0, 0x5000, 0, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    step(&s, part(0, 0x5000, 1, false, 0));
    step(&s, part(0, 0x5000, 2, false, 0));
    v = step(&s, part(0, 0x5000, 3, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.completes);
    CU_ASSERT_EQUAL(s.applied, 0x5040);
}

static void test_stream_split_transaction_duplicated_part_is_skipped(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    step(&s, part(0x1000, 0x5000, 1, false, 0));
    v = step(&s, part(0x1000, 0x5000, 1, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    CU_ASSERT_FALSE(v.abort_open);
    CU_ASSERT_TRUE(s.in_txn);
    v = step(&s, part(0x1000, 0x5000, 2, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x5040);
}

static void test_stream_split_transaction_restarted_by_restream(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    step(&s, part(0x1000, 0x5000, 1, false, 0));
    /* part 2 was lost; the re-stream starts the transaction again */
    v = step(&s, part(0, 0x5000, 0, false, 0));
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_TRUE(v.txn_begins);
    CU_ASSERT_TRUE(s.in_txn);
    CU_ASSERT_EQUAL(s.txn_next_part, 1);
    step(&s, part(0, 0x5000, 1, false, 0));
    step(&s, part(0, 0x5000, 2, false, 0));
    v = step(&s, part(0, 0x5000, 3, true, 0x5040));
    CU_ASSERT_TRUE(v.completes);
    CU_ASSERT_EQUAL(s.applied, 0x5040);
}

static void test_stream_split_transaction_interrupted_by_other_message(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x1000, false);
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    /* a stream start of an earlier transaction: duplicate, and the open one is abandoned */
    v = step(&s, txn(0, 0x0f00, 0x0f40));
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    CU_ASSERT_FALSE(s.in_txn);
    /* a mark in the middle of a transaction cannot come from the same stream either */
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    v = step(&s, mark(0, 0x1000));
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.applied, 0x1000);
    /* another split transaction's part 0 */
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    v = step(&s, part(0, 0x6000, 0, false, 0));
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_APPLY);
    CU_ASSERT_EQUAL(s.txn_commit_lsn, 0x6000);
    /* a later part of another transaction */
    v = step(&s, part(0, 0x7000, 1, false, 0));
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_ORPHAN_PART);
    CU_ASSERT_FALSE(s.in_txn);
}

static void test_stream_orphan_parts_without_open_transaction(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;

    cons_stream_init(&s, 0x3000, false);
    v = step(&s, part(0x1000, 0x5000, 1, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_ORPHAN_PART);
    CU_ASSERT_FALSE(v.abort_open);
    v = step(&s, part(0x1000, 0x2000, 1, true, 0x2040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_DUPLICATE);
    /* the first part of a transaction skipped as ahead leaves its later parts orphans */
    v = step(&s, part(0x4000, 0x5000, 0, false, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_AHEAD);
    v = step(&s, part(0x4000, 0x5000, 1, true, 0x5040));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_ORPHAN_PART);
    CU_ASSERT_EQUAL(s.applied, 0x3000);
}

static void test_stream_invalid_messages(void)
{
    cons_stream_t s;
    cons_stream_verdict_t v;
    cons_stream_msg_t m;

    cons_stream_init(&s, 0x1000, false);
    v = step(&s, txn(0x1000, 0x2000, 0)); /* last part without seq */
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    v = step(&s, txn(0x1000, 0x2000, 0x2000)); /* seq not above commit_lsn */
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    v = step(&s, mark(0x1000, 0));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    v = step(&s, part(0x1000, 0, 0, false, 0)); /* split without commit_lsn */
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    m = txn(0x1000, 0x2000, 0x2040);
    m.type = (xdcr_msg_type_t)7;
    v = step(&s, m);
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    CU_ASSERT_EQUAL(s.applied, 0x1000);
    /* an invalid next part abandons the open transaction */
    step(&s, part(0x1000, 0x5000, 0, false, 0));
    v = step(&s, part(0x1000, 0x5000, 1, true, 0x4000));
    CU_ASSERT_EQUAL(v.action, CONS_STREAM_INVALID);
    CU_ASSERT_TRUE(v.abort_open);
    CU_ASSERT_FALSE(s.in_txn);
}

static void test_stream_decide_changes_nothing(void)
{
    cons_stream_t s, before;
    cons_stream_msg_t m = part(0x1000, 0x5000, 0, false, 0);

    cons_stream_init(&s, 0x1000, true);
    before = s;
    (void)cons_stream_decide(&s, &m);
    CU_ASSERT_EQUAL(memcmp(&s, &before, sizeof(s)), 0);
    CU_ASSERT_STRING_EQUAL(cons_stream_action_name(CONS_STREAM_AHEAD), "ahead");
    CU_ASSERT_STRING_EQUAL(cons_stream_action_name(CONS_STREAM_ORPHAN_PART), "orphan_part");
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_stream_duplicate_single_part_at_or_below_applied),
        XDCR_TEST(test_stream_next_in_chain_is_applied),
        XDCR_TEST(test_stream_commit_lsn_equal_to_applied_is_not_duplicate),
        XDCR_TEST(test_stream_start_without_prev_is_applied),
        XDCR_TEST(test_stream_prev_above_applied_is_skipped_ahead),
        XDCR_TEST(test_stream_lost_message_then_restream_applies_everything_once),
        XDCR_TEST(test_stream_resync_accepts_any_prev_once),
        XDCR_TEST(test_stream_marks),
        XDCR_TEST(test_stream_split_transaction_applied_part_by_part),
        XDCR_TEST(test_stream_split_transaction_duplicate_decided_at_part_zero),
        XDCR_TEST(test_stream_split_transaction_missing_part_abandons_it),
        XDCR_TEST(test_stream_split_transaction_duplicated_part_is_skipped),
        XDCR_TEST(test_stream_split_transaction_restarted_by_restream),
        XDCR_TEST(test_stream_split_transaction_interrupted_by_other_message),
        XDCR_TEST(test_stream_orphan_parts_without_open_transaction),
        XDCR_TEST(test_stream_invalid_messages),
        XDCR_TEST(test_stream_decide_changes_nothing),
        XDCR_TEST_END};

    return xdcr_test_run("cons_stream", cases);
}
