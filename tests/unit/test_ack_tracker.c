/*
 * test_ack_tracker.c - the ack tracker against a deliberately simple reference model: every
 * order of delivery reports for small sequences, failures and advances at every position,
 * capacity limits, resets, and a long randomized run.
 */
#include "xdcr/ack_tracker.h"
#include "xdcr_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference model ------------------------------------------------------------------- */

/*
 * The model keeps every message since the last reset in plain arrays and recomputes the
 * confirmed LSN from scratch by the definition in ack_tracker.h: the highest confirm point in
 * the longest fully-acknowledged prefix, plus advances registered when only that prefix existed.
 */
enum { M_PENDING, M_ACKED, M_FAILED };

typedef struct model {
    size_t capacity;
    xdcr_lsn_t confirmed;
    xdcr_lsn_t last_point; /* highest confirm point pushed since reset */
    size_t n, cap;         /* messages since reset */
    xdcr_lsn_t *point;
    int *state;
    uint64_t *ticket;
    size_t nadv, adv_cap;
    xdcr_lsn_t *adv_lsn;
    size_t *adv_after; /* number of messages registered when advance() was called */
} model_t;

static void model_init(model_t *m, size_t capacity, xdcr_lsn_t start)
{
    memset(m, 0, sizeof(*m));
    m->capacity = capacity;
    m->confirmed = start;
}

static void model_fini(model_t *m)
{
    free(m->point);
    free(m->state);
    free(m->ticket);
    free(m->adv_lsn);
    free(m->adv_after);
}

static size_t model_prefix(const model_t *m)
{
    size_t k = 0;

    while (k < m->n && m->state[k] == M_ACKED)
        k++;
    return k;
}

static void model_update(model_t *m)
{
    size_t k = model_prefix(m);

    for (size_t i = 0; i < k; i++)
        if (m->point[i] > m->confirmed)
            m->confirmed = m->point[i];
    for (size_t i = 0; i < m->nadv; i++)
        if (m->adv_after[i] <= k && m->adv_lsn[i] > m->confirmed)
            m->confirmed = m->adv_lsn[i];
}

static size_t model_in_flight(const model_t *m)
{
    return m->n - model_prefix(m);
}

static bool model_failed(const model_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->state[i] == M_FAILED)
            return true;
    return false;
}

static int model_push(model_t *m, xdcr_lsn_t point, uint64_t ticket)
{
    if (point != 0 && point < m->last_point)
        return XDCR_EINVAL;
    if (model_in_flight(m) >= m->capacity)
        return XDCR_EFULL;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->point = realloc(m->point, m->cap * sizeof(*m->point));
        m->state = realloc(m->state, m->cap * sizeof(*m->state));
        m->ticket = realloc(m->ticket, m->cap * sizeof(*m->ticket));
        CU_ASSERT_FATAL(m->point != NULL && m->state != NULL && m->ticket != NULL);
    }
    m->point[m->n] = point;
    m->state[m->n] = M_PENDING;
    m->ticket[m->n] = ticket;
    m->n++;
    if (point != 0)
        m->last_point = point;
    return 0;
}

static int model_report(model_t *m, uint64_t ticket, int new_state)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->ticket[i] != ticket)
            continue;
        if (m->state[i] != M_PENDING)
            return XDCR_EINVAL;
        m->state[i] = new_state;
        model_update(m);
        return 0;
    }
    return XDCR_EINVAL;
}

static void model_advance(model_t *m, xdcr_lsn_t lsn)
{
    if (m->nadv == m->adv_cap) {
        m->adv_cap = m->adv_cap ? m->adv_cap * 2 : 16;
        m->adv_lsn = realloc(m->adv_lsn, m->adv_cap * sizeof(*m->adv_lsn));
        m->adv_after = realloc(m->adv_after, m->adv_cap * sizeof(*m->adv_after));
        CU_ASSERT_FATAL(m->adv_lsn != NULL && m->adv_after != NULL);
    }
    m->adv_lsn[m->nadv] = lsn;
    m->adv_after[m->nadv] = m->n;
    m->nadv++;
    model_update(m);
}

static void model_reset(model_t *m)
{
    m->n = 0;
    m->nadv = 0;
    m->last_point = 0;
}

/* Compare every observable of the tracker with the model; returns false on the first mismatch. */
static bool matches(const xdcr_ack_tracker_t *t, const model_t *m)
{
    bool ok = xdcr_ack_tracker_confirmed(t) == m->confirmed &&
              xdcr_ack_tracker_in_flight(t) == model_in_flight(m) &&
              xdcr_ack_tracker_is_full(t) == (model_in_flight(m) >= m->capacity) &&
              xdcr_ack_tracker_is_failed(t) == model_failed(m);

    if (!ok)
        fprintf(stderr,
                "\nmismatch: confirmed %llu/%llu in_flight %zu/%zu failed %d/%d full %d/%d\n",
                (unsigned long long)xdcr_ack_tracker_confirmed(t), (unsigned long long)m->confirmed,
                xdcr_ack_tracker_in_flight(t), model_in_flight(m), xdcr_ack_tracker_is_failed(t),
                model_failed(m), xdcr_ack_tracker_is_full(t), model_in_flight(m) >= m->capacity);
    return ok;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t push_ok(xdcr_ack_tracker_t *t, xdcr_lsn_t point)
{
    uint64_t ticket = 0;
    xdcr_error_t err;

    CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_push(t, point, &ticket, &err), 0);
    return ticket;
}

static bool next_permutation(int *a, int n)
{
    int i = n - 2, j = n - 1, tmp;

    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return false;
    while (a[j] <= a[i])
        j--;
    tmp = a[i], a[i] = a[j], a[j] = tmp;
    for (int l = i + 1, r = n - 1; l < r; l++, r--)
        tmp = a[l], a[l] = a[r], a[r] = tmp;
    return true;
}

/* Message i's confirm point under mask: 100 * (i + 1) when bit i is set, else 0. */
static xdcr_lsn_t point_of(unsigned mask, int i)
{
    return (mask >> i & 1u) ? (xdcr_lsn_t)(100 * (i + 1)) : 0;
}

/* ---- construction ------------------------------------------------------------------------ */

static void test_new_rejects_zero_capacity(void)
{
    CU_ASSERT_PTR_NULL(xdcr_ack_tracker_new(0, 0));
}

static void test_new_rejects_capacity_whose_size_overflows(void)
{
    CU_ASSERT_PTR_NULL(xdcr_ack_tracker_new(SIZE_MAX, 0));
}

static void test_new_confirms_start_lsn_with_nothing_in_flight(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(4, 0x16B374D848);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0x16B374D848);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 0);
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_full(t));
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_failed(t));
    xdcr_ack_tracker_free(t);
}

static void test_free_accepts_null(void)
{
    xdcr_ack_tracker_free(NULL);
}

/* ---- exhaustive orders ------------------------------------------------------------------- */

static void test_every_ack_order_matches_model(void)
{
    int order[7];

    for (int n = 1; n <= 7; n++) {
        for (unsigned mask = 0; mask < (1u << n); mask++) {
            for (int i = 0; i < n; i++)
                order[i] = i;
            do {
                xdcr_ack_tracker_t *t = xdcr_ack_tracker_new((size_t)n, 7);
                uint64_t tickets[7];
                model_t m;
                xdcr_error_t err;

                CU_ASSERT_PTR_NOT_NULL_FATAL(t);
                model_init(&m, (size_t)n, 7);
                for (int i = 0; i < n; i++) {
                    tickets[i] = push_ok(t, point_of(mask, i));
                    CU_ASSERT_EQUAL_FATAL(model_push(&m, point_of(mask, i), tickets[i]), 0);
                }
                CU_ASSERT_FATAL(matches(t, &m));
                for (int s = 0; s < n; s++) {
                    CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_ack(t, tickets[order[s]], &err), 0);
                    CU_ASSERT_EQUAL_FATAL(model_report(&m, tickets[order[s]], M_ACKED), 0);
                    CU_ASSERT_FATAL(matches(t, &m));
                }
                /* All acknowledged: the highest confirm point (or the start) is confirmed. */
                CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_confirmed(t),
                                      mask ? (xdcr_lsn_t)(100 * (32 - __builtin_clz(mask))) : 7);
                CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_in_flight(t), 0);
                model_fini(&m);
                xdcr_ack_tracker_free(t);
            } while (next_permutation(order, n));
        }
    }
}

static void test_failure_at_every_position_blocks_everything_after_it(void)
{
    int order[6];

    for (int n = 1; n <= 6; n++) {
        for (int f = 0; f < n; f++) {
            unsigned mask = (1u << n) - 1; /* every message carries a confirm point */

            for (int i = 0; i < n; i++)
                order[i] = i;
            do {
                xdcr_ack_tracker_t *t = xdcr_ack_tracker_new((size_t)n, 0);
                uint64_t tickets[6];
                model_t m;
                xdcr_error_t err;

                CU_ASSERT_PTR_NOT_NULL_FATAL(t);
                model_init(&m, (size_t)n, 0);
                for (int i = 0; i < n; i++) {
                    tickets[i] = push_ok(t, point_of(mask, i));
                    model_push(&m, point_of(mask, i), tickets[i]);
                }
                for (int s = 0; s < n; s++) {
                    int i = order[s];

                    if (i == f) {
                        CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_fail(t, tickets[i], &err), 0);
                        model_report(&m, tickets[i], M_FAILED);
                        CU_ASSERT_TRUE_FATAL(xdcr_ack_tracker_is_failed(t));
                    } else {
                        CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_ack(t, tickets[i], &err), 0);
                        model_report(&m, tickets[i], M_ACKED);
                    }
                    CU_ASSERT_FATAL(matches(t, &m));
                    /* Never anything at or after the failed message. */
                    CU_ASSERT_FATAL(xdcr_ack_tracker_confirmed(t) < point_of(mask, f));
                }
                /* Everything before the failure was acknowledged and is confirmed. */
                CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_confirmed(t), f ? point_of(mask, f - 1) : 0);
                CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_in_flight(t), (size_t)(n - f));
                /* Advances after a failure never confirm either. */
                xdcr_ack_tracker_advance(t, 100000);
                CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_confirmed(t), f ? point_of(mask, f - 1) : 0);
                model_fini(&m);
                xdcr_ack_tracker_free(t);
            } while (next_permutation(order, n));
        }
    }
}

/*
 * Depth-first over every interleaving of: push the next message, ack or fail any message without
 * a report, advance to a new LSN. Pushes happen in order with the confirm points of mask;
 * at most max_adv advances and max_fail failures per sequence. Checks after every step.
 */
typedef struct dfs {
    int n, max_adv, max_fail;
    unsigned mask;
    long sequences;
} dfs_t;

typedef struct dfs_state {
    int pushed, advs, fails;
    int reported[8];
    uint64_t tickets[8];
} dfs_state_t;

static void replay(const dfs_t *d, const int *ops, int nops);

static void dfs_walk(dfs_t *d, dfs_state_t st, int *ops, int nops)
{
    bool any = false;

    replay(d, ops, nops);
    if (st.pushed < d->n) {
        ops[nops] = 0; /* push */
        dfs_state_t s2 = st;
        s2.pushed++;
        dfs_walk(d, s2, ops, nops + 1);
        any = true;
    }
    for (int i = 0; i < st.pushed; i++) {
        if (st.reported[i])
            continue;
        dfs_state_t s2 = st;
        s2.reported[i] = 1;
        ops[nops] = 100 + i; /* ack i */
        dfs_walk(d, s2, ops, nops + 1);
        if (st.fails < d->max_fail) {
            dfs_state_t s3 = st;
            s3.reported[i] = 1;
            s3.fails++;
            ops[nops] = 200 + i; /* fail i */
            dfs_walk(d, s3, ops, nops + 1);
        }
        any = true;
    }
    if (st.advs < d->max_adv) {
        dfs_state_t s2 = st;
        s2.advs++;
        ops[nops] = 1; /* advance */
        dfs_walk(d, s2, ops, nops + 1);
    }
    if (!any)
        d->sequences++;
}

/* Run ops from scratch on a fresh tracker and model, comparing after every step. */
static void replay(const dfs_t *d, const int *ops, int nops)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new((size_t)d->n, 50);
    uint64_t tickets[8];
    int pushed = 0;
    xdcr_lsn_t prev = 50;
    model_t m;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    model_init(&m, (size_t)d->n, 50);
    for (int s = 0; s < nops; s++) {
        int op = ops[s];

        if (op == 0) {
            xdcr_lsn_t p = point_of(d->mask, pushed);

            tickets[pushed] = push_ok(t, p);
            CU_ASSERT_EQUAL_FATAL(model_push(&m, p, tickets[pushed]), 0);
            pushed++;
        } else if (op == 1) {
            /* An advance just above what has been pushed so far. */
            xdcr_lsn_t lsn = (xdcr_lsn_t)(100 * pushed + 50 + s);

            xdcr_ack_tracker_advance(t, lsn);
            model_advance(&m, lsn);
        } else if (op < 200) {
            CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_ack(t, tickets[op - 100], &err), 0);
            model_report(&m, tickets[op - 100], M_ACKED);
        } else {
            CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_fail(t, tickets[op - 200], &err), 0);
            model_report(&m, tickets[op - 200], M_FAILED);
        }
        CU_ASSERT_FATAL(matches(t, &m));
        CU_ASSERT_FATAL(xdcr_ack_tracker_confirmed(t) >= prev);
        prev = xdcr_ack_tracker_confirmed(t);
    }
    model_fini(&m);
    xdcr_ack_tracker_free(t);
}

static void test_every_interleaving_of_push_ack_fail_advance_matches_model(void)
{
    int ops[32];
    long total = 0;

    for (int n = 1; n <= 4; n++) {
        for (unsigned mask = 0; mask < (1u << n); mask++) {
            dfs_t d = {.n = n, .max_adv = 2, .max_fail = 1, .mask = mask};
            dfs_state_t st;

            memset(&st, 0, sizeof(st));
            dfs_walk(&d, st, ops, 0);
            total += d.sequences;
        }
    }
    CU_ASSERT(total > 100000);
}

/* ---- capacity ---------------------------------------------------------------------------- */

static void test_push_beyond_capacity_gives_retriable_efull(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(3, 0);
    uint64_t a, b, c, d = 0;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    b = push_ok(t, 20);
    c = push_ok(t, 30);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_full(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_push(t, 40, &d, &err), XDCR_EFULL);
    CU_ASSERT_EQUAL(err.code, XDCR_EFULL);
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 3);
    /* An ack behind an unacknowledged message frees no slot. */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, c, &err), 0);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_full(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_push(t, 40, &d, &err), XDCR_EFULL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    /* The head's ack releases the whole acknowledged prefix. */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 30);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_push(t, 40, &d, &err), 0);
    CU_ASSERT_TRUE(d > c);
    xdcr_ack_tracker_free(t);
}

static void test_ring_wraps_around_many_times_with_capacity_one_and_two(void)
{
    for (size_t cap = 1; cap <= 2; cap++) {
        xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(cap, 0);
        xdcr_error_t err;

        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        for (xdcr_lsn_t i = 1; i <= 10000; i++) {
            uint64_t tk = push_ok(t, i);

            CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_ack(t, tk, &err), 0);
            CU_ASSERT_EQUAL_FATAL(xdcr_ack_tracker_confirmed(t), i);
        }
        xdcr_ack_tracker_free(t);
    }
}

/* ---- advance ----------------------------------------------------------------------------- */

static void test_advance_with_nothing_in_flight_confirms_immediately(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(2, 100);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    xdcr_ack_tracker_advance(t, 150);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 150);
    xdcr_ack_tracker_free(t);
}

static void test_advance_to_lower_or_equal_lsn_is_ignored(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(2, 100);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    xdcr_ack_tracker_advance(t, 100);
    xdcr_ack_tracker_advance(t, 50);
    xdcr_ack_tracker_advance(t, 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 100);
    xdcr_ack_tracker_free(t);
}

static void test_advance_with_messages_in_flight_waits_for_their_acks(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(4, 0);
    uint64_t a, b;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 0);
    b = push_ok(t, 0);
    xdcr_ack_tracker_advance(t, 500);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 2); /* no slot used by the advance */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 500);
    xdcr_ack_tracker_free(t);
}

static void test_advance_when_ring_is_full_is_kept_without_a_slot(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(2, 0);
    uint64_t a, b, c;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    b = push_ok(t, 0);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_full(t));
    xdcr_ack_tracker_advance(t, 70);
    xdcr_ack_tracker_advance(t, 60); /* lower than the pending one: changes nothing */
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_full(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10);
    c = push_ok(t, 80); /* after the advance: not needed for it */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 70);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, c, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 80);
    xdcr_ack_tracker_free(t);
}

static void test_advance_after_a_failure_is_never_confirmed(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(2, 0);
    uint64_t a;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, a, &err), 0);
    xdcr_ack_tracker_advance(t, 90);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_failed(t));
    xdcr_ack_tracker_free(t);
}

/* ---- bad reports and bad pushes ---------------------------------------------------------- */

static void test_duplicate_and_unknown_tickets_give_einval_and_change_nothing(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(4, 0);
    uint64_t a, b;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    b = push_ok(t, 20);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, 0, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(err.code, XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b + 1, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, b + 1, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, UINT64_MAX, &err), XDCR_EINVAL);
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_failed(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, b, &err), XDCR_EINVAL);  /* repeated, in ring */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, b, &err), XDCR_EINVAL); /* report after ack */
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_failed(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 20);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), XDCR_EINVAL); /* repeated, released */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 20);
    xdcr_ack_tracker_free(t);
}

static void test_ack_after_failure_of_same_ticket_gives_einval(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(4, 0);
    uint64_t a;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, a, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_failed(t));
    xdcr_ack_tracker_free(t);
}

static void test_push_with_lower_confirm_point_gives_einval_and_registers_nothing(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(4, 0);
    uint64_t ticket = 0;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    push_ok(t, 100);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_push(t, 99, &ticket, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(err.code, XDCR_EINVAL);
    CU_ASSERT_EQUAL(ticket, 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 1);
    push_ok(t, 0);   /* parts without a confirm point are always fine */
    push_ok(t, 100); /* equal is fine */
    push_ok(t, 101);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 4);
    xdcr_ack_tracker_free(t);
}

/* ---- reset ------------------------------------------------------------------------------- */

static void test_reset_forgets_tickets_and_keeps_confirmed(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(3, 0);
    uint64_t a, b, c, d;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    b = push_ok(t, 20);
    c = push_ok(t, 30);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, b, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10);
    CU_ASSERT_TRUE(xdcr_ack_tracker_is_failed(t));
    xdcr_ack_tracker_reset(t);
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_failed(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_in_flight(t), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10);
    /* Late reports for tickets from before the reset are unknown and do not poison. */
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, c, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_fail(t, c, &err), XDCR_EINVAL);
    CU_ASSERT_FALSE(xdcr_ack_tracker_is_failed(t));
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10);
    /* Re-streaming from the slot may push confirm points again, even lower ones. */
    d = push_ok(t, 5);
    CU_ASSERT_TRUE(d > c);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, d, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 10); /* never decreases */
    d = push_ok(t, 20);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, d, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 20);
    xdcr_ack_tracker_free(t);
}

static void test_reset_drops_a_pending_advance(void)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(3, 0);
    uint64_t a;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    a = push_ok(t, 10);
    xdcr_ack_tracker_advance(t, 40);
    xdcr_ack_tracker_reset(t);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    a = push_ok(t, 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_ack(t, a, &err), 0);
    CU_ASSERT_EQUAL(xdcr_ack_tracker_confirmed(t), 0);
    xdcr_ack_tracker_free(t);
}

/* ---- randomized ---------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, seeded, good enough to pick operations */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void run_random(uint64_t seed, size_t capacity, long steps)
{
    xdcr_ack_tracker_t *t = xdcr_ack_tracker_new(capacity, 1000);
    xdcr_lsn_t lsn = 1000, prev = 1000;
    uint64_t all_tickets[4096];
    size_t nall = 0;
    model_t m;
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    model_init(&m, capacity, 1000);
    for (long step = 0; step < steps; step++) {
        uint64_t r = rng_next(&seed) % 100;
        int rc, mrc;

        if (r < 40) {
            /* push: mostly increasing confirm points, some 0, a few too low */
            uint64_t kind = rng_next(&seed) % 10;
            xdcr_lsn_t p = kind < 4 ? 0 : kind < 9 ? (lsn += 1 + rng_next(&seed) % 5) : lsn / 2;
            uint64_t tk = 0;

            rc = xdcr_ack_tracker_push(t, p, &tk, &err);
            mrc = model_push(&m, p, tk);
            CU_ASSERT_EQUAL_FATAL(rc, mrc);
            if (rc == 0)
                all_tickets[nall++ % 4096] = tk;
        } else if (r < 80 && m.n > 0) {
            /* report for a random message since reset (may repeat) or an old ticket */
            uint64_t tk = rng_next(&seed) % 8 == 0
                              ? all_tickets[rng_next(&seed) % (nall < 4096 ? nall : 4096)]
                              : m.ticket[rng_next(&seed) % m.n];
            bool fail = rng_next(&seed) % 200 == 0;

            rc = fail ? xdcr_ack_tracker_fail(t, tk, &err) : xdcr_ack_tracker_ack(t, tk, &err);
            mrc = model_report(&m, tk, fail ? M_FAILED : M_ACKED);
            CU_ASSERT_EQUAL_FATAL(rc, mrc);
        } else if (r < 90) {
            xdcr_lsn_t a = rng_next(&seed) % 4 == 0 ? lsn / 2 : (lsn += rng_next(&seed) % 5);

            xdcr_ack_tracker_advance(t, a);
            model_advance(&m, a);
        } else if (r < 91 || (m.n > 0 && model_failed(&m) && r < 95)) {
            xdcr_ack_tracker_reset(t);
            model_reset(&m);
        }
        CU_ASSERT_FATAL(matches(t, &m));
        CU_ASSERT_FATAL(xdcr_ack_tracker_confirmed(t) >= prev);
        prev = xdcr_ack_tracker_confirmed(t);
        /* keep the model's arrays short: a reset is always allowed once all is released */
        if (m.n > 256 && model_in_flight(&m) == 0) {
            xdcr_ack_tracker_reset(t);
            model_reset(&m);
        }
    }
    model_fini(&m);
    xdcr_ack_tracker_free(t);
}

static void test_random_long_run_matches_model(void)
{
    for (uint64_t seed = 1; seed <= 16; seed++)
        run_random(seed * UINT64_C(0x9E3779B97F4A7C15), 1 + (size_t)(seed % 9), 20000);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_new_rejects_zero_capacity),
        XDCR_TEST(test_new_rejects_capacity_whose_size_overflows),
        XDCR_TEST(test_new_confirms_start_lsn_with_nothing_in_flight),
        XDCR_TEST(test_free_accepts_null),
        XDCR_TEST(test_every_ack_order_matches_model),
        XDCR_TEST(test_failure_at_every_position_blocks_everything_after_it),
        XDCR_TEST(test_every_interleaving_of_push_ack_fail_advance_matches_model),
        XDCR_TEST(test_push_beyond_capacity_gives_retriable_efull),
        XDCR_TEST(test_ring_wraps_around_many_times_with_capacity_one_and_two),
        XDCR_TEST(test_advance_with_nothing_in_flight_confirms_immediately),
        XDCR_TEST(test_advance_to_lower_or_equal_lsn_is_ignored),
        XDCR_TEST(test_advance_with_messages_in_flight_waits_for_their_acks),
        XDCR_TEST(test_advance_when_ring_is_full_is_kept_without_a_slot),
        XDCR_TEST(test_advance_after_a_failure_is_never_confirmed),
        XDCR_TEST(test_duplicate_and_unknown_tickets_give_einval_and_change_nothing),
        XDCR_TEST(test_ack_after_failure_of_same_ticket_gives_einval),
        XDCR_TEST(test_push_with_lower_confirm_point_gives_einval_and_registers_nothing),
        XDCR_TEST(test_reset_forgets_tickets_and_keeps_confirmed),
        XDCR_TEST(test_reset_drops_a_pending_advance),
        XDCR_TEST(test_random_long_run_matches_model),
        XDCR_TEST_END,
    };

    return xdcr_test_run("ack_tracker", cases);
}
