/*
 * pg_apply.c - the consumer's libpq adapter: session setup, the consumer's schema, positions,
 * the target catalog cache, prepared statements, and batches sent in pipeline mode. Every libpq
 * error and SQLSTATE is mapped to an xdcr error here and nowhere else.
 *
 * A batch is one pipeline: BEGIN, the changes (Parse/Bind/Execute of prepared statements), the
 * position write, pg_replication_origin_xact_setup(), COMMIT, Sync. Results are read while
 * sending (the connection is non-blocking, so neither side can fill its buffers and wait for
 * the other), and every queued statement remembers which Kafka offset and table it came from,
 * so an error names them.
 */
#include "pg_apply.h"

#include "sql_build.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IO_TIMEOUT_MS 60000 /* no byte moving for this long on an open batch: connection lost */

/* ---- caches ---------------------------------------------------------------------------------- */

/* A statement's form: one row, many rows (arrays), or many rows' update alone (see group_flush) */
enum { FORM_SINGLE, FORM_MULTI, FORM_FAST };

typedef struct stmt {
    char op;          /* 'I', 'U', 'D' */
    bool key_changed; /* 'U' only */
    bool resolved;    /* a conflict-resolving statement (returns kind, apply) */
    uint8_t form;     /* FORM_*: single-row, multi-row, or the multi-row update alone */
    uint8_t *sig;     /* bitmap over the target's columns: the column set */
    size_t siglen;
    char name[32];
    uint32_t nparams;
    bool prepared; /* Parse sent (and not known to have failed) */
} stmt_t;

typedef struct tbl {
    char *schema, *name;
    xdcr_table_t *t; /* NULL until loaded */
    /* the source shape last mapped, and its mapping */
    uint32_t src_ncols;
    char **src_names;
    int32_t *map; /* src_ncols entries: target column index */
    bool mapped;
    stmt_t **stmts;
    size_t nstmts;
    const char *policy; /* conflict policy (active-active), or NULL */
    bool tracked;       /* the tombstone trigger is known to be in place */
    bool track_pending; /* ... installed by the open batch: undone by its rollback */
} tbl_t;

/* ---- pipeline ------------------------------------------------------------------------------ */

typedef enum px_kind {
    PX_OTHER = 0, /* BEGIN, origin setup, dead letter, audit: only errors matter */
    PX_PREPARE,
    PX_STMT,
    PX_QUERY, /* a query whose result the caller waits for */
    PX_POSITION,
    PX_COMMIT,
    PX_SYNC,
    PX_WAITLOCK,  /* pg_try_advisory_lock of the next wait generation's parity */
    PX_WAITUNLOCK /* pg_advisory_unlock of the old parity, after COMMIT */
} px_kind_t;

typedef struct px {
    px_kind_t kind;
    char op;
    int64_t offset; /* Kafka offset of the change, -1 */
    tbl_t *tbl;     /* for errors and prepares */
    stmt_t *stmt;   /* PX_PREPARE of a row statement */
    int fixed;      /* PX_PREPARE of a fixed statement: its fixed_stmt_t + 1, else 0 */
    PGresult *res;  /* PX_QUERY: kept for the caller */
    bool resolved;  /* PX_STMT: returns (kind, apply) */
    uint32_t rows;  /* PX_STMT: rows of a multi-row statement (0: single row) */
    bool fast;      /* PX_STMT: a FORM_FAST update, whose row count must be rows */
    int64_t expect; /* PX_POSITION: the version written before */
    bool done;      /* PX_QUERY: finished */
    uint64_t id;    /* PX_QUERY: to find it */
} px_t;

/*
 * The statements every batch sends, whose text never changes within a session: prepared once
 * per session under these names, then only bound and executed. Sent as unnamed statements,
 * their parsing and planning were about half of the target backend's CPU on W2 (one row per
 * source transaction, so many small batches).
 */
typedef enum fixed_stmt {
    FX_POSITION,   /* the position upsert with its version fence (cons_pg_put_position) */
    FX_NOTIFY,     /* pg_notify('xdcr_applied', origin) */
    FX_TRYLOCK,    /* pg_try_advisory_lock of a wait generation */
    FX_UNLOCK,     /* pg_advisory_unlock of the old one */
    FX_XACT_SETUP, /* pg_replication_origin_xact_setup */
    FX_N
} fixed_stmt_t;

static const char *const fixed_names[FX_N] = {"xdcr_position", "xdcr_notify", "xdcr_trylock",
                                              "xdcr_unlock", "xdcr_xact_setup"};

/*
 * Consecutive row changes of one table, operation and column set, not yet sent: applied by one
 * multi-row statement (or the single-row one when there is only one). Values are copied into
 * an arena; a key seen twice ends the group first, so no statement touches a row twice.
 */
#define GROUP_MAX_ROWS 5000
/* one-way updates of this many rows or more go by FORM_FAST */
#define FAST_MIN_ROWS 100
#define GROUP_KEY_SLOTS 16384 /* a power of two, at least twice GROUP_MAX_ROWS */
_Static_assert(GROUP_KEY_SLOTS >= 2 * GROUP_MAX_ROWS &&
                   (GROUP_KEY_SLOTS & (GROUP_KEY_SLOTS - 1)) == 0,
               "group key table too small");

typedef struct gval {
    size_t off, len;
    bool null;
} gval_t;

typedef struct group {
    tbl_t *tb; /* NULL: empty */
    char op;
    uint32_t ncols; /* the statement's column set (target indexes, sorted) */
    uint32_t *cols;
    size_t colcap;
    uint32_t nvals; /* values per row (parameters of the single-row statement) */
    uint32_t rows;
    gval_t *vals; /* rows * nvals */
    size_t vcap;
    char *arena;
    size_t alen, acap;
    uint64_t *keys; /* open addressing: key hash + 1 (0 = free), keycap entries */
    size_t *keyrow; /* the row of each slot, to compare the key values */
    size_t keycap;
    const uint32_t *keyidx; /* positions of the key values within a row */
    int64_t offset;         /* Kafka offset of the last row */
} group_t;

/* The read-your-writes turnstile of one origin (see sql_build.c, wait_for): which of the two
 * session advisory locks (hashtext('xdcr:' || origin), parity) this session holds. */
typedef struct turn {
    char *origin;
    char key[XDCR_ORIGIN_MAX + 8]; /* "xdcr:<origin>", hashed by the server */
    bool held[2];
} turn_t;

struct cons_pg {
    char *conninfo, *password, *schema, *own_origin;
    bool replica_role, truncate_ignore, async_commit;
    bool multi_row;         /* group rows into multi-row statements */
    bool fast_sent;         /* a FORM_FAST update was sent in this batch: check before COMMIT */
    bool fast_off;          /* one fell short: no FORM_FAST until the next commit succeeds */
    uint32_t copy_min_rows; /* insert groups at least this big go by COPY; 0: never */
    uint32_t copies_in_txn; /* COPY savepoints in the open target transaction */
    sql_buf_t copybuf;      /* COPY data being sent */
    bool active_active;     /* resolve conflicts (policy per table) */
    char *policy;           /* the default conflict policy */
    char *table_policies;   /* "schema.table=policy,..." */
    char rtime[40];         /* the change being applied: source commit time, origin, seq */
    char rorigin[XDCR_ORIGIN_MAX];
    char rseq[XDCR_LSN_STRLEN];
    void (*tick)(void *ctx);
    void *tick_ctx;
    const xdcr_log_t *lg;
    PGconn *conn;
    char *session_origin; /* replication origin set up in this session */
    bool in_batch;
    bool in_call; /* run() is waiting (the tick callback may call us back) */

    px_t *q; /* ring of expected results */
    size_t qhead, qlen, qcap;
    uint64_t next_query_id;
    px_t query_done; /* the last finished PX_QUERY, moved out of the ring */

    bool failed; /* an error result was seen in this batch */
    xdcr_error_t first_err;
    cons_pg_failure_t failure;
    bool committed;
    bool sync_sent; /* the batch's pipeline has been closed with a Sync */
    int64_t expect_version;
    cons_pg_stats_t stats;

    turn_t *turns; /* one per origin positioned in this session */
    size_t nturns;
    turn_t *adv_turn;  /* the batch advances this origin's wait generation, or NULL */
    int adv_parity;    /* parity of the new generation */
    bool adv_locked;   /* the batch's try-lock of adv_parity succeeded (held even after ROLLBACK) */
    bool adv_unlocked; /* the old parity was released after COMMIT */

    tbl_t **tables;
    size_t ntables, tcap;
    uint64_t stmt_counter;
    bool fixed[FX_N]; /* prepared in this session (see fixed_stmt_t) */
    sql_buf_t sql;

    group_t g;
    uint32_t gkeyidx[64];
    sql_buf_t *garr; /* text[] literals of a flushed group, one per parameter */
    size_t ngarr;

    char *arena; /* NUL-terminated copies of parameter values */
    size_t arena_cap;
    const char **vals;
    Oid *types;
    uint32_t *cols;
    const xdcr_value_t **srcv;
    size_t vcap;
};

const char *const cons_conflict_kind_names[CONS_CONFLICT_KINDS] = {
    "insert_exists",  "insert_deleted", "update_exists",  "update_missing",
    "update_deleted", "delete_exists",  "delete_missing", "delete_deleted"};

bool cons_conflict_policy_valid(const char *name)
{
    static const char *const policies[] = {"last_writer_wins", "apply_remote", "keep_local",
                                           "error"};

    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
        if (strcmp(name, policies[i]) == 0)
            return true;
    return false;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static int group_flush(cons_pg_t *pg, xdcr_error_t *err);
static void group_reset(cons_pg_t *pg);
static void group_free(cons_pg_t *pg);

static const char *conn_error(PGconn *conn, char *buf, size_t len)
{
    const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    size_t n;

    snprintf(buf, len, "%s", msg);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return buf;
}

/*
 * SQLSTATE classes: what a retry can fix (the same batch is applied again after a back-off)
 * and what it cannot (the origin halts, or the message goes to the dead letters).
 */
static int classify(const char *state, bool *retriable)
{
    *retriable = true;
    if (state == NULL || state[0] == '\0')
        return XDCR_EPG;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        return XDCR_EPGCONN; /* connection problems, admin/crash shutdown, starting up */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "55006") == 0 || strcmp(state, "57014") == 0 ||
        strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0 ||
        strncmp(state, "XX", 2) == 0 || strcmp(state, "25P02") == 0)
        return XDCR_EPG; /* serialization, deadlock, locks, cancel, resources, system */
    if (strcmp(state, "XD001") == 0)
        return XDCR_ESTATE; /* the position fence: someone else moved the position */
    *retriable = false;
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 || strcmp(state, "3F000") == 0)
        return XDCR_ESCHEMA; /* undefined table, column, schema */
    return XDCR_EAPPLY;      /* data, constraint, type and other deterministic errors */
}

static int result_error(cons_pg_t *pg, const PGresult *res, const char *what, xdcr_error_t *err)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char ebuf[400];
    bool retriable;
    int code;

    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        code = XDCR_EPGCONN;
        retriable = true;
    } else {
        code = classify(state, &retriable);
    }
    if (msg == NULL)
        msg = conn_error(pg->conn, ebuf, sizeof(ebuf));
    return xdcr_error_set(err, code, retriable, "%s: %s%s%s%s", what, msg,
                          state != NULL ? " (SQLSTATE " : "", state != NULL ? state : "",
                          state != NULL ? ")" : "");
}

static int oom(xdcr_error_t *err)
{
    return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
}

static int not_connected(xdcr_error_t *err)
{
    return xdcr_error_set(err, XDCR_EPGCONN, true, "not connected to the target PostgreSQL");
}

static void tick(cons_pg_t *pg)
{
    if (pg->tick != NULL)
        pg->tick(pg->tick_ctx);
}

/*
 * Wait for the socket in slices of 250 ms, calling the tick between them, so the daemon's
 * liveness never depends on how long PostgreSQL takes. 1 ready, 0 no byte moved for
 * IO_TIMEOUT_MS, -1 error.
 */
static int poll_io(cons_pg_t *pg, short events)
{
    struct pollfd pfd = {.fd = PQsocket(pg->conn), .events = events};
    int waited = 0;

    if (pfd.fd < 0)
        return -1;
    for (;;) {
        int slice = IO_TIMEOUT_MS - waited < 250 ? IO_TIMEOUT_MS - waited : 250;
        int n = poll(&pfd, 1, slice);

        tick(pg);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 0)
            return n > 0 ? 1 : -1;
        waited += slice;
        if (waited >= IO_TIMEOUT_MS)
            return 0;
    }
}

static PGresult *run_wait(cons_pg_t *pg);

/*
 * Run SQL outside a batch and return its result: with parameters one statement, without
 * (n < 0) a script of several. Sends and waits through poll_io(), so a hung server costs at
 * most IO_TIMEOUT_MS (then the session is closed). Of several results the first failed one is
 * returned, else the last. NULL when the connection failed.
 */
static PGresult *run(cons_pg_t *pg, const char *sql, int n, const char *const *vals)
{
    PGresult *res;
    int ok = n < 0 ? PQsendQuery(pg->conn, sql)
                   : PQsendQueryParams(pg->conn, sql, n, NULL, vals, NULL, NULL, 0);

    if (ok == 0)
        return NULL;
    pg->in_call = true;
    res = run_wait(pg);
    pg->in_call = false;
    return res;
}

/* Flush what is queued, then wait until a result can be read without blocking. */
static bool await_result(cons_pg_t *pg)
{
    for (;;) {
        int f = PQflush(pg->conn);

        if (f == 0)
            break;
        if (f < 0 || poll_io(pg, POLLIN | POLLOUT) <= 0 || PQconsumeInput(pg->conn) == 0)
            return false;
    }
    while (PQisBusy(pg->conn))
        if (poll_io(pg, POLLIN) <= 0 || PQconsumeInput(pg->conn) == 0)
            return false;
    return true;
}

/* The waiting half of run(): collect every result. */
static PGresult *run_wait(cons_pg_t *pg)
{
    PGresult *keep = NULL, *res;

    for (;;) {
        if (!await_result(pg))
            goto lost;
        res = PQgetResult(pg->conn);
        if (res == NULL)
            return keep;
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(keep);
            keep = res;
        }
    }
lost:
    PQclear(keep);
    if (PQstatus(pg->conn) == CONNECTION_OK) {
        /* no answer within IO_TIMEOUT_MS: give up on the session */
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    return NULL;
}

/* Run one statement outside a batch; *out gets the result when wanted (caller clears). */
static int exec_params(cons_pg_t *pg, const char *sql, int n, const char *const *vals,
                       PGresult **out, const char *what, xdcr_error_t *err)
{
    PGresult *res;
    ExecStatusType st;

    if (pg->conn == NULL)
        return not_connected(err);
    res = run(pg, sql, n, vals);
    if (res == NULL && pg->conn == NULL)
        return xdcr_error_set(err, XDCR_EPGCONN, true,
                              "%s: the target PostgreSQL did not answer for %d s", what,
                              IO_TIMEOUT_MS / 1000);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = result_error(pg, res, what, err);

        PQclear(res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* ---- table cache --------------------------------------------------------------------------- */

static void stmt_free(stmt_t *s)
{
    if (s == NULL)
        return;
    free(s->sig);
    free(s);
}

static void tbl_forget(tbl_t *tb)
{
    for (size_t i = 0; i < tb->nstmts; i++)
        stmt_free(tb->stmts[i]);
    free(tb->stmts);
    tb->stmts = NULL;
    tb->nstmts = 0;
    for (uint32_t i = 0; i < tb->src_ncols; i++)
        free(tb->src_names[i]);
    free(tb->src_names);
    free(tb->map);
    tb->src_names = NULL;
    tb->map = NULL;
    tb->src_ncols = 0;
    tb->mapped = false;
    xdcr_table_free(tb->t);
    tb->t = NULL;
    tb->tracked = tb->track_pending = false;
}

static void tbl_free(tbl_t *tb)
{
    if (tb == NULL)
        return;
    tbl_forget(tb);
    free(tb->schema);
    free(tb->name);
    free(tb);
}

static void forget_all_tables(cons_pg_t *pg)
{
    for (size_t i = 0; i < pg->ntables; i++)
        tbl_free(pg->tables[i]);
    pg->ntables = 0;
}

static tbl_t *tbl_get(cons_pg_t *pg, const char *schema, const char *name)
{
    tbl_t *tb;

    for (size_t i = 0; i < pg->ntables; i++)
        if (strcmp(pg->tables[i]->name, name) == 0 && strcmp(pg->tables[i]->schema, schema) == 0)
            return pg->tables[i];
    if (pg->ntables == pg->tcap) {
        size_t cap = pg->tcap ? pg->tcap * 2 : 16;
        tbl_t **t = realloc(pg->tables, cap * sizeof(*t));

        if (t == NULL)
            return NULL;
        pg->tables = t;
        pg->tcap = cap;
    }
    tb = calloc(1, sizeof(*tb));
    if (tb == NULL)
        return NULL;
    tb->schema = strdup(schema);
    tb->name = strdup(name);
    if (tb->schema == NULL || tb->name == NULL) {
        tbl_free(tb);
        return NULL;
    }
    pg->tables[pg->ntables++] = tb;
    return tb;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

cons_pg_t *cons_pg_new(const cons_pg_opts_t *opts, const xdcr_log_t *lg)
{
    cons_pg_t *pg = calloc(1, sizeof(*pg));

    if (pg == NULL)
        return NULL;
    pg->lg = lg;
    pg->tick = opts->tick;
    pg->tick_ctx = opts->tick_ctx;
    pg->replica_role = opts->replica_role;
    pg->truncate_ignore = opts->truncate_ignore;
    pg->active_active = opts->active_active;
    pg->async_commit = opts->async_commit;
    pg->multi_row = opts->multi_row;
    pg->copy_min_rows = opts->copy_min_rows;
    sql_buf_init(&pg->copybuf);
    pg->conninfo = strdup(opts->conninfo);
    pg->schema = strdup(opts->schema);
    sql_buf_init(&pg->sql);
    if (pg->conninfo == NULL || pg->schema == NULL)
        goto fail;
    if (opts->own_origin != NULL && (pg->own_origin = strdup(opts->own_origin)) == NULL)
        goto fail;
    if (opts->password != NULL && (pg->password = strdup(opts->password)) == NULL)
        goto fail;
    if (pg->active_active) {
        pg->policy =
            strdup(opts->conflict_policy != NULL ? opts->conflict_policy : "last_writer_wins");
        pg->table_policies = strdup(opts->table_policies != NULL ? opts->table_policies : "");
        if (pg->policy == NULL || pg->table_policies == NULL || pg->own_origin == NULL)
            goto fail;
    }
    return pg;
fail:
    cons_pg_free(pg);
    return NULL;
}

static void clear_queue(cons_pg_t *pg)
{
    for (size_t i = 0; i < pg->qlen; i++)
        PQclear(pg->q[(pg->qhead + i) % pg->qcap].res);
    pg->qhead = pg->qlen = 0;
    PQclear(pg->query_done.res);
    memset(&pg->query_done, 0, sizeof(pg->query_done));
}

void cons_pg_disconnect(cons_pg_t *pg)
{
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->in_batch = false;
    free(pg->session_origin);
    pg->session_origin = NULL;
    clear_queue(pg);
    group_reset(pg);
    /* prepared statements die with the session; table shapes may have changed meanwhile */
    forget_all_tables(pg);
    memset(pg->fixed, 0, sizeof(pg->fixed));
    /* and so do its advisory locks */
    for (size_t i = 0; i < pg->nturns; i++)
        pg->turns[i].held[0] = pg->turns[i].held[1] = false;
    pg->adv_turn = NULL;
}

void cons_pg_free(cons_pg_t *pg)
{
    if (pg == NULL)
        return;
    cons_pg_disconnect(pg);
    free(pg->tables);
    free(pg->q);
    free(pg->conninfo);
    free(pg->schema);
    free(pg->own_origin);
    free(pg->policy);
    free(pg->table_policies);
    for (size_t i = 0; i < pg->nturns; i++)
        free(pg->turns[i].origin);
    free(pg->turns);
    if (pg->password != NULL) {
        memset(pg->password, 0, strlen(pg->password));
        free(pg->password);
    }
    sql_buf_free(&pg->sql);
    sql_buf_free(&pg->copybuf);
    group_free(pg);
    free(pg->arena);
    free(pg->vals);
    free(pg->types);
    free(pg->cols);
    free(pg->srcv);
    free(pg);
}

bool cons_pg_is_connected(const cons_pg_t *pg)
{
    return pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

bool cons_pg_check_alive(cons_pg_t *pg)
{
    struct pollfd pfd;

    if (!cons_pg_is_connected(pg))
        return false;
    if (pg->in_batch || pg->in_call)
        return true;
    pfd.fd = PQsocket(pg->conn);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0)
        return false;
    /* an idle session only gets bytes when the server is going away (or a notice) */
    if (poll(&pfd, 1, 0) > 0 && (PQconsumeInput(pg->conn) == 0 || !cons_pg_is_connected(pg))) {
        char ebuf[400];

        XDCR_LOG_KV(pg->lg, XDCR_LOG_DEBUG, "the idle target session was closed", "error",
                    conn_error(pg->conn, ebuf, sizeof(ebuf)));
        cons_pg_disconnect(pg);
        return false;
    }
    return true;
}

bool cons_pg_in_batch(const cons_pg_t *pg)
{
    return pg->in_batch;
}

const cons_pg_failure_t *cons_pg_failure(const cons_pg_t *pg)
{
    return &pg->failure;
}

/* Server notices ("relation already exists, skipping") are not errors: debug log only. */
static void on_notice(void *arg, const char *message)
{
    cons_pg_t *pg = arg;
    char buf[512];
    size_t n;

    snprintf(buf, sizeof(buf), "%s", message);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    XDCR_LOG_KV(pg->lg, XDCR_LOG_DEBUG, "postgres notice", "detail", buf);
}

int cons_pg_connect(cons_pg_t *pg, xdcr_error_t *err)
{
    const char *keys[6], *vals[6];
    int n = 0, rc;
    char ebuf[400];

    cons_pg_disconnect(pg);
    keys[n] = "connect_timeout", vals[n++] = "10";
    keys[n] = "fallback_application_name", vals[n++] = "xdcr-consumer";
    keys[n] = "dbname", vals[n++] = pg->conninfo;
    if (pg->password != NULL)
        keys[n] = "password", vals[n++] = pg->password;
    keys[n] = NULL, vals[n] = NULL;
    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        xdcr_error_set(err, XDCR_EPGCONN, true, "could not connect to the target PostgreSQL: %s",
                       conn_error(pg->conn, ebuf, sizeof(ebuf)));
        cons_pg_disconnect(pg);
        return XDCR_EPGCONN;
    }
    PQsetNoticeProcessor(pg->conn, on_notice, pg);
    /* values arrive in the source's text forms: make the ambiguous ones parse the same way */
    rc = exec_params(pg, "SET DateStyle = 'ISO, MDY'", 0, NULL, NULL, "could not set DateStyle",
                     err);
    if (rc == 0)
        rc = exec_params(pg, "SET IntervalStyle = 'postgres'", 0, NULL, NULL,
                         "could not set IntervalStyle", err);
    if (rc == 0) /* our own deletes leave no trigger-made tombstone (see record_tombstone) */
        rc = exec_params(pg, "SET xdcr.applying = on", 0, NULL, NULL, "could not set xdcr.applying",
                         err);
    /*
     * Generic plans for every prepared statement. A multi-row statement's custom plan knows its
     * arrays' lengths, so for the small groups of OLTP traffic PostgreSQL judged it cheaper
     * than the generic one and planned it again at every execution: about 60% of the target
     * backend's CPU on W2. The generic plan (an index lookup per row) is the right one at any
     * group size. Triggers fire on this session only when ENABLE REPLICA or ALWAYS.
     */
    if (rc == 0)
        rc = exec_params(pg, "SET plan_cache_mode = force_generic_plan", 0, NULL, NULL,
                         "could not set plan_cache_mode", err);
    if (rc == 0 && pg->async_commit)
        rc = exec_params(pg, "SET synchronous_commit = off", 0, NULL, NULL,
                         "could not set synchronous_commit", err);
    if (pg->active_active) {
        /* tombstone keys are the key values' output forms: built as record_tombstone() does */
        static const char *const formats[] = {"SET TimeZone = 'UTC'", "SET bytea_output = 'hex'",
                                              "SET extra_float_digits = 1"};

        for (size_t i = 0; rc == 0 && i < sizeof(formats) / sizeof(formats[0]); i++)
            rc = exec_params(pg, formats[i], 0, NULL, NULL,
                             "could not set the session's output formats", err);
    }
    if (rc == 0 && pg->active_active) {
        PGresult *res = NULL;

        rc = exec_params(pg, "SELECT pg_catalog.current_setting('track_commit_timestamp')", 0, NULL,
                         &res, "could not read track_commit_timestamp", err);
        if (rc == 0 && strcmp(PQgetvalue(res, 0, 0), "on") != 0)
            rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                                "active-active conflict resolution needs track_commit_timestamp "
                                "= on in the target PostgreSQL (it knows each row's last "
                                "writer and time from it): set it and restart PostgreSQL");
        PQclear(res);
    }
    if (rc == 0 && pg->replica_role) {
        rc = exec_params(pg, "SET session_replication_role = replica", 0, NULL, NULL,
                         "could not set session_replication_role = replica", err);
        if (rc != 0 && !err->retriable) {
            xdcr_error_prefix(err, "the apply role must be allowed to set it (superuser), or "
                                   "configure session_replication_role = origin");
            err->code = rc = XDCR_ECONFIG;
        }
    }
    if (rc != 0) {
        cons_pg_disconnect(pg);
        return rc;
    }
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        cons_pg_disconnect(pg);
        return xdcr_error_set(err, XDCR_EPGCONN, true,
                              "could not make the connection non-blocking");
    }
    return 0;
}

/* ---- schema -------------------------------------------------------------------------------- */

int cons_pg_ensure_schema(cons_pg_t *pg, xdcr_error_t *err)
{
    sql_buf_t b;
    PGresult *res = NULL;
    const char *vals[1];
    int rc;

    sql_buf_init(&b);
    rc = exec_params(pg, "BEGIN", 0, NULL, NULL, "could not begin", err);
    if (rc != 0)
        goto out;
    rc = exec_params(pg, "SELECT pg_catalog.pg_advisory_xact_lock(7839204751)", 0, NULL, NULL,
                     "could not lock the consumer schema", err);
    if (rc != 0)
        goto rollback;
    sql_append_qualified(&b, pg->schema, "meta");
    if (sql_buf_status(&b) != 0) {
        rc = oom(err);
        goto rollback;
    }
    vals[0] = b.data;
    rc = exec_params(pg, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, vals, &res,
                     "could not look for the consumer schema", err);
    if (rc != 0)
        goto rollback;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        PQclear(res);
        res = NULL;
        sql_buf_reset(&b);
        sql_append(&b, "SELECT value FROM ");
        sql_append_qualified(&b, pg->schema, "meta");
        sql_append(&b, " WHERE key = 'schema_version'");
        rc = exec_params(pg, b.data, 0, NULL, &res, "could not read the schema version", err);
        if (rc != 0)
            goto rollback;
        if (PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) > SQL_SCHEMA_VERSION) {
            rc = xdcr_error_set(err, XDCR_ESTATE, false,
                                "schema \"%s\" has version %s, newer than this consumer "
                                "supports (%d): upgrade the consumer",
                                pg->schema, PQgetvalue(res, 0, 0), SQL_SCHEMA_VERSION);
            goto rollback;
        }
    }
    PQclear(res);
    res = NULL;
    sql_buf_reset(&b);
    rc = sql_build_schema_ddl(&b, pg->schema);
    if (rc != 0) {
        rc = oom(err);
        goto rollback;
    }
    rc = exec_params(pg, b.data, -1, NULL, NULL, "could not create the consumer schema", err);
    if (rc != 0)
        goto rollback;
    if (pg->own_origin != NULL) {
        /* which DC this database is, for `xdcr status --db` */
        sql_buf_reset(&b);
        sql_append(&b, "INSERT INTO ");
        sql_append_qualified(&b, pg->schema, "meta");
        sql_append(&b, " (key, value) VALUES ('consumer_origin', $1) ON CONFLICT (key) DO UPDATE "
                       "SET value = EXCLUDED.value");
        vals[0] = pg->own_origin;
        rc = sql_buf_status(&b) != 0 ? oom(err)
                                     : exec_params(pg, b.data, 1, vals, NULL,
                                                   "could not record the consumer's origin", err);
        if (rc != 0)
            goto rollback;
    }
    rc = exec_params(pg, "COMMIT", 0, NULL, NULL, "could not commit the consumer schema", err);
    goto out;
rollback:
    PQclear(res);
    res = NULL;
    if (cons_pg_is_connected(pg))
        PQclear(run(pg, "ROLLBACK", 0, NULL));
out:
    PQclear(res);
    sql_buf_free(&b);
    return rc;
}

/* ---- pipeline machinery -------------------------------------------------------------------- */

/* A prepare that failed or was skipped: the statement is not there, prepare it again. */
static void forget_prepare(cons_pg_t *pg, const px_t *x)
{
    if (x->kind != PX_PREPARE)
        return;
    if (x->stmt != NULL)
        x->stmt->prepared = false;
    if (x->fixed > 0)
        pg->fixed[x->fixed - 1] = false;
}

static px_t *push_px(cons_pg_t *pg, px_kind_t kind, xdcr_error_t *err)
{
    px_t *x;

    if (pg->qlen == pg->qcap) {
        size_t cap = pg->qcap ? pg->qcap * 2 : 256;
        px_t *q = malloc(cap * sizeof(*q));

        if (q == NULL) {
            oom(err);
            return NULL;
        }
        for (size_t i = 0; i < pg->qlen; i++)
            q[i] = pg->q[(pg->qhead + i) % pg->qcap];
        free(pg->q);
        pg->q = q;
        pg->qcap = cap;
        pg->qhead = 0;
    }
    x = &pg->q[(pg->qhead + pg->qlen) % pg->qcap];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->offset = -1;
    pg->qlen++;
    return x;
}

/* Remember the first error of the batch, with the statement's context. */
/* The batch's failure is x's: its offset, operation and table. */
static void failure_at(cons_pg_t *pg, const px_t *x)
{
    memset(&pg->failure, 0, sizeof(pg->failure));
    pg->failure.offset = x->offset;
    pg->failure.op = x->op;
    if (x->tbl != NULL)
        snprintf(pg->failure.table, sizeof(pg->failure.table), "%s.%s", x->tbl->schema,
                 x->tbl->name);
}

static void record_failure(cons_pg_t *pg, const px_t *x, const PGresult *res)
{
    const char *state;

    if (pg->failed)
        return;
    pg->failed = true;
    result_error(pg, res, "could not apply", &pg->first_err);
    failure_at(pg, x);
    state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL)
        snprintf(pg->failure.sqlstate, sizeof(pg->failure.sqlstate), "%s", state);
    if (x->tbl != NULL && x->op != 0)
        xdcr_error_prefix(&pg->first_err, "%s on %s.%s",
                          x->op == 'I'   ? "insert"
                          : x->op == 'U' ? "update"
                          : x->op == 'D' ? "delete"
                                         : "truncate",
                          x->tbl->schema, x->tbl->name);
}

/*
 * A FORM_FAST update found fewer rows than it had: the batch must not commit. It fails as a
 * retriable error, and until a commit succeeds the updates go by the statement that inserts
 * missing rows (and counts them).
 */
static void fast_short(cons_pg_t *pg, const px_t *x, uint64_t missing)
{
    pg->fast_off = true;
    if (pg->failed)
        return;
    pg->failed = true;
    failure_at(pg, x);
    xdcr_error_set(&pg->first_err, XDCR_EPG, true,
                   "update of %s.%s: %" PRIu64 " of %u rows are missing at the target; applying "
                   "the batch again with the statement that inserts them",
                   x->tbl->schema, x->tbl->name, missing, (unsigned)x->rows);
}

/* Account for a conflict-resolving statement's (kind, apply). */
static void count_resolved(cons_pg_t *pg, char op, const PGresult *res)
{
    const char *kind;
    bool apply;

    if (op == 'I')
        pg->stats.inserts++;
    else if (op == 'U')
        pg->stats.updates++;
    else
        pg->stats.deletes++;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        return;
    kind = PQgetvalue(res, 0, 0);
    apply = PQgetvalue(res, 0, 1)[0] == 't';
    for (int k = 0; k < CONS_CONFLICT_KINDS; k++)
        if (strcmp(kind, cons_conflict_kind_names[k]) == 0) {
            pg->stats.conflicts[k][apply ? 1 : 0]++;
            break;
        }
    if (strcmp(kind, "update_missing") == 0 && apply)
        pg->stats.missing_updates++;
    else if (strcmp(kind, "delete_missing") == 0)
        pg->stats.missing_deletes++;
}

/* A result for the head of the queue. */
static void handle_result(cons_pg_t *pg, PGresult *res)
{
    px_t *x = &pg->q[pg->qhead];
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        pg->qhead = (pg->qhead + 1) % pg->qcap;
        pg->qlen--;
        return;
    }
    if (st == PGRES_FATAL_ERROR) {
        record_failure(pg, x, res);
        forget_prepare(pg, x);
    } else if (st == PGRES_PIPELINE_ABORTED) {
        forget_prepare(pg, x);
    } else if (x->kind == PX_STMT && x->resolved) {
        count_resolved(pg, x->op, res);
    } else if (x->kind == PX_STMT) {
        const char *n = PQcmdTuples(res);

        uint64_t rows = x->rows > 0 ? x->rows : 1;
        uint64_t done = n != NULL ? strtoull(n, NULL, 10) : 0;

        switch (x->op) {
        case 'I':
            pg->stats.inserts += rows;
            break;
        case 'U':
            pg->stats.updates += rows;
            if (x->fast && done < rows)
                fast_short(pg, x, rows - done);
            else if (!x->fast)
                pg->stats.missing_updates += done; /* the statement inserted the missing rows */
            break;
        case 'D':
            pg->stats.deletes += rows;
            pg->stats.missing_deletes += done < rows ? rows - done : 0;
            break;
        case 'T':
            pg->stats.truncates++;
            break;
        default:
            break;
        }
    } else if (x->kind == PX_POSITION) {
        int64_t v = -1;

        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (v != x->expect + 1 && !pg->failed) {
            pg->failed = true;
            memset(&pg->failure, 0, sizeof(pg->failure));
            pg->failure.offset = -1;
            xdcr_error_set(&pg->first_err, XDCR_ESTATE, true,
                           "the stored position was changed by someone else (an operator "
                           "command or another consumer): re-reading it");
        }
    } else if (x->kind == PX_COMMIT) {
        if (st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0)
            pg->committed = true;
    } else if (x->kind == PX_WAITLOCK || x->kind == PX_WAITUNLOCK) {
        bool t = st == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';

        if (x->kind == PX_WAITLOCK)
            pg->adv_locked = t;
        else
            pg->adv_unlocked = t;
    }
    if (x->kind == PX_QUERY) {
        PQclear(x->res);
        x->res = res; /* kept for the caller */
    } else {
        PQclear(res);
    }
}

/* The end of the head query's results (PQgetResult returned NULL). */
static void finish_head(cons_pg_t *pg)
{
    px_t *x = &pg->q[pg->qhead];

    if (x->kind == PX_QUERY) {
        PQclear(pg->query_done.res);
        pg->query_done = *x;
        pg->query_done.done = true;
    }
    pg->qhead = (pg->qhead + 1) % pg->qcap;
    pg->qlen--;
}

static int conn_lost(cons_pg_t *pg, xdcr_error_t *err)
{
    char ebuf[400];

    if (!pg->failed) {
        pg->failed = true;
        memset(&pg->failure, 0, sizeof(pg->failure));
        pg->failure.offset = -1;
        xdcr_error_set(&pg->first_err, XDCR_EPGCONN, true,
                       "lost the connection to the target PostgreSQL: %s",
                       conn_error(pg->conn, ebuf, sizeof(ebuf)));
    }
    *err = pg->first_err;
    return err->code;
}

/* Read every result that is available without waiting. */
static int read_ready(cons_pg_t *pg, xdcr_error_t *err)
{
    if (PQconsumeInput(pg->conn) == 0)
        return conn_lost(pg, err);
    while (pg->qlen > 0 && !PQisBusy(pg->conn)) {
        PGresult *res = PQgetResult(pg->conn);

        if (res == NULL) {
            finish_head(pg);
            continue;
        }
        handle_result(pg, res);
        if (PQstatus(pg->conn) != CONNECTION_OK)
            return conn_lost(pg, err);
    }
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return conn_lost(pg, err);
    return 0;
}

static int wait_socket(cons_pg_t *pg, short events, xdcr_error_t *err)
{
    int n = poll_io(pg, events);

    if (n < 0)
        return conn_lost(pg, err);
    if (n == 0) {
        PQfinish(pg->conn);
        pg->conn = NULL;
        if (!pg->failed) {
            pg->failed = true;
            memset(&pg->failure, 0, sizeof(pg->failure));
            pg->failure.offset = -1;
            xdcr_error_set(&pg->first_err, XDCR_EPGCONN, true,
                           "the target PostgreSQL did not answer for %d s", IO_TIMEOUT_MS / 1000);
        }
        *err = pg->first_err;
        return err->code;
    }
    return 0;
}

/* Send what libpq buffered, reading results meanwhile so the server never blocks on us. */
static int flush_out(cons_pg_t *pg, xdcr_error_t *err)
{
    for (;;) {
        int f = PQflush(pg->conn);
        int rc;

        if (f == 0)
            return 0;
        if (f < 0)
            return conn_lost(pg, err);
        rc = wait_socket(pg, POLLIN | POLLOUT, err);
        if (rc != 0)
            return rc;
        rc = read_ready(pg, err);
        if (rc != 0)
            return rc;
    }
}

/* Wait until at most keep results are outstanding. */
static int drain(cons_pg_t *pg, size_t keep, xdcr_error_t *err)
{
    int rc;

    if (pg->conn == NULL)
        return not_connected(err);
    if (pg->qlen > keep && PQpipelineStatus(pg->conn) == PQ_PIPELINE_ON &&
        pg->q[(pg->qhead + pg->qlen - 1) % pg->qcap].kind != PX_SYNC)
        (void)PQsendFlushRequest(pg->conn); /* make the server send what it holds */
    rc = flush_out(pg, err);
    if (rc != 0)
        return rc;
    for (;;) {
        rc = read_ready(pg, err);
        if (rc != 0 || pg->qlen <= keep)
            return rc;
        rc = wait_socket(pg, POLLIN, err);
        if (rc != 0)
            return rc;
    }
}

/* After queueing: send, read what is ready, and report a failure of the batch so far. */
static int after_send(cons_pg_t *pg, xdcr_error_t *err)
{
    int rc = flush_out(pg, err);

    if (rc == 0)
        rc = read_ready(pg, err);
    if (rc != 0)
        return rc;
    if (pg->failed) {
        *err = pg->first_err;
        return err->code;
    }
    return 0;
}

static int send_failed(cons_pg_t *pg, xdcr_error_t *err)
{
    char ebuf[400];

    /* the px was queued but nothing was sent: take it back */
    pg->qlen--;
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return conn_lost(pg, err);
    return xdcr_error_set(err, XDCR_EPG, true, "could not send a statement: %s",
                          conn_error(pg->conn, ebuf, sizeof(ebuf)));
}

/*
 * Queue the result of fixed statement `which` (text sql, n parameters), preparing it first
 * when this session has not; then set up the returned px and call send_fixed().
 */
static px_t *push_fixed(cons_pg_t *pg, px_kind_t kind, fixed_stmt_t which, const char *sql, int n,
                        xdcr_error_t *err)
{
    if (!pg->fixed[which]) {
        px_t *p = push_px(pg, PX_PREPARE, err);

        if (p == NULL)
            return NULL;
        p->fixed = (int)which + 1;
        if (PQsendPrepare(pg->conn, fixed_names[which], sql, n, NULL) == 0) {
            send_failed(pg, err);
            return NULL;
        }
        pg->fixed[which] = true;
    }
    return push_px(pg, kind, err);
}

static int send_fixed(cons_pg_t *pg, fixed_stmt_t which, int n, const char *const *vals,
                      xdcr_error_t *err)
{
    if (PQsendQueryPrepared(pg->conn, fixed_names[which], n, vals, NULL, NULL, 0) == 0)
        return send_failed(pg, err);
    return after_send(pg, err);
}

/* Queue a statement with text parameters; its result is handled by kind. */
static int send_params(cons_pg_t *pg, px_t *x, const char *sql, int n, const char *const *vals,
                       xdcr_error_t *err)
{
    (void)x;
    if (PQsendQueryParams(pg->conn, sql, n, NULL, vals, NULL, NULL, 0) == 0)
        return send_failed(pg, err);
    return after_send(pg, err);
}

/*
 * Run a query and return its result (caller clears), inside a batch (through the pipeline) or
 * outside one.
 */
static int query(cons_pg_t *pg, const char *sql, int n, const char *const *vals, PGresult **out,
                 const char *what, xdcr_error_t *err)
{
    px_t *x;
    uint64_t id;
    int rc;

    *out = NULL;
    if (!pg->in_batch)
        return exec_params(pg, sql, n, vals, out, what, err);
    x = push_px(pg, PX_QUERY, err);
    if (x == NULL)
        return err->code;
    id = x->id = ++pg->next_query_id;
    if (PQsendQueryParams(pg->conn, sql, n, NULL, vals, NULL, NULL, 0) == 0)
        return send_failed(pg, err);
    rc = drain(pg, 0, err);
    if (rc != 0)
        return rc;
    if (pg->failed) {
        *err = pg->first_err;
        return err->code;
    }
    if (!pg->query_done.done || pg->query_done.id != id || pg->query_done.res == NULL ||
        PQresultStatus(pg->query_done.res) != PGRES_TUPLES_OK)
        return xdcr_error_set(err, XDCR_EPG, true, "%s: no result", what);
    *out = pg->query_done.res;
    pg->query_done.res = NULL;
    pg->query_done.done = false;
    return 0;
}

/* An open batch without a failure so far: 0, or the error to return. */
static int batch_usable(cons_pg_t *pg, xdcr_error_t *err)
{
    if (!pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no batch is open");
    if (pg->failed) {
        *err = pg->first_err;
        return err->code;
    }
    return 0;
}

/* ---- catalog -------------------------------------------------------------------------------- */

/* The catalog query is shared with `xdcr check`: xdcr_schema_check_target_sql. */

/* Read the table from pg_catalog into tb->t (NULL when it does not exist). */
static int load_table(cons_pg_t *pg, tbl_t *tb, xdcr_error_t *err)
{
    const char *vals[2] = {tb->schema, tb->name};
    PGresult *res;
    xdcr_table_t *t = NULL;
    int rc;

    rc = query(pg, xdcr_schema_check_target_sql, 2, vals, &res, "could not read the target catalog",
               err);
    if (rc != 0)
        return rc;
    tbl_forget(tb);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    t = xdcr_table_new(tb->schema, tb->name, (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10),
                       PQgetvalue(res, 0, 1)[0]);
    if (t == NULL)
        goto nomem;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *v[XDCR_SCHEMA_CHECK_TARGET_NCOLS];

        for (int k = 0; k < XDCR_SCHEMA_CHECK_TARGET_NCOLS; k++)
            v[k] = PQgetisnull(res, r, k) ? NULL : PQgetvalue(res, r, k);
        if (xdcr_table_add_catalog_row(t, v) != 0)
            goto nomem;
    }
    if (xdcr_table_finish(t) != 0) {
        PQclear(res);
        xdcr_table_free(t);
        return xdcr_error_set(err, XDCR_ESCHEMA, false, "could not read the primary key of %s.%s",
                              tb->schema, tb->name);
    }
    PQclear(res);
    tb->t = t;
    return 0;
nomem:
    PQclear(res);
    xdcr_table_free(t);
    return oom(err);
}

static int track_table(cons_pg_t *pg, tbl_t *tb, xdcr_error_t *err);

int cons_pg_check_tables(cons_pg_t *pg, const char *tables_csv, xdcr_problems_t *out,
                         xdcr_error_t *err)
{
    const char *p = tables_csv;

    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        char *item = strndup(p, len);
        char *dot, *schema, *name;
        tbl_t *tb;
        int rc;

        if (item == NULL)
            return oom(err);
        dot = strchr(item, '.');
        if (dot != NULL) {
            *dot = '\0';
            schema = item;
            name = dot + 1;
        } else {
            schema = (char *)(uintptr_t) "public";
            name = item;
        }
        tb = tbl_get(pg, schema, name);
        if (tb == NULL) {
            free(item);
            return oom(err);
        }
        rc = load_table(pg, tb, err);
        if (rc != 0) {
            free(item);
            return rc;
        }
        xdcr_check_table(schema, name, tb->t, out);
        free(item);
        if (tb->t != NULL && tb->t->npk > 0 && (rc = track_table(pg, tb, err)) != 0)
            return rc;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Does the relation have the shape tb was last mapped for? */
static bool same_shape(const tbl_t *tb, const xdcr_relation_t *rel)
{
    if (!tb->mapped || tb->src_ncols != rel->ncols)
        return false;
    for (uint32_t i = 0; i < rel->ncols; i++)
        if (strcmp(tb->src_names[i], rel->cols[i].name) != 0)
            return false;
    return true;
}

static int remember_shape(tbl_t *tb, const xdcr_relation_t *rel, int32_t *map)
{
    char **names = calloc(rel->ncols ? rel->ncols : 1, sizeof(*names));

    if (names == NULL)
        return XDCR_ENOMEM;
    for (uint32_t i = 0; i < rel->ncols; i++)
        if ((names[i] = strdup(rel->cols[i].name)) == NULL) {
            for (uint32_t j = 0; j < i; j++)
                free(names[j]);
            free(names);
            return XDCR_ENOMEM;
        }
    for (uint32_t i = 0; i < tb->src_ncols; i++)
        free(tb->src_names[i]);
    free(tb->src_names);
    free(tb->map);
    tb->src_names = names;
    tb->map = map;
    tb->src_ncols = rel->ncols;
    tb->mapped = true;
    return 0;
}

/* The conflict policy of schema.name: its entry in table_policies, else the default. */
static const char *policy_for(const cons_pg_t *pg, const char *schema, const char *name)
{
    size_t ls = strlen(schema), ln = strlen(name);

    for (const char *p = pg->table_policies; p != NULL && *p != '\0';) {
        const char *e = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        const char *dot = memchr(p, '.', len);

        if (eq != NULL && eq < p + len) {
            bool match;

            if (dot != NULL && dot < eq)
                match = (size_t)(dot - p) == ls && memcmp(p, schema, ls) == 0 &&
                        (size_t)(eq - dot - 1) == ln && memcmp(dot + 1, name, ln) == 0;
            else
                match = strcmp(schema, "public") == 0 && (size_t)(eq - p) == ln &&
                        memcmp(p, name, ln) == 0;
            if (match) {
                static const char *const known[] = {"last_writer_wins", "apply_remote",
                                                    "keep_local", "error"};
                size_t plen = len - (size_t)(eq + 1 - p);

                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                    if (strlen(known[i]) == plen && memcmp(eq + 1, known[i], plen) == 0)
                        return known[i];
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return pg->policy;
}

/*
 * Active-active: make sure local deletes of the table leave tombstones (the trigger is created
 * once; inside a batch it commits or rolls back with it).
 */
static int track_table(cons_pg_t *pg, tbl_t *tb, xdcr_error_t *err)
{
    sql_buf_t name, q;
    const char *vals[1];
    PGresult *res = NULL;
    int rc;

    if (!pg->active_active || tb->t == NULL || tb->tracked || tb->track_pending)
        return 0;
    tb->policy = policy_for(pg, tb->schema, tb->name);
    sql_buf_init(&name);
    sql_buf_init(&q);
    sql_append_qualified(&name, tb->schema, tb->name);
    sql_append(&q, "SELECT ");
    sql_append_ident(&q, pg->schema);
    sql_append(&q, ".track_deletes($1::pg_catalog.regclass)");
    if (sql_buf_status(&name) != 0 || sql_buf_status(&q) != 0) {
        sql_buf_free(&name);
        sql_buf_free(&q);
        return oom(err);
    }
    vals[0] = name.data;
    rc = query(pg, q.data, 1, vals, &res, "could not create the tombstone trigger", err);
    PQclear(res);
    sql_buf_free(&name);
    sql_buf_free(&q);
    if (rc != 0) {
        if (strstr(err->message, "42501") != NULL) {
            err->retriable = false;
            xdcr_error_prefix(
                err,
                "active-active: the apply role needs the TRIGGER privilege on "
                "%s.%s (it adds the trigger xdcr_tombstone that records local deletes)",
                tb->schema, tb->name);
        }
        return rc;
    }
    if (pg->in_batch)
        tb->track_pending = true;
    else
        tb->tracked = true;
    return 0;
}

/*
 * The target table of a source relation, checked and mapped. A mismatch with a cached table is
 * checked again against a fresh catalog read before it is reported (the target may have been
 * altered since).
 */
static int table_for(cons_pg_t *pg, const xdcr_relation_t *rel, tbl_t **out, xdcr_error_t *err)
{
    tbl_t *tb = tbl_get(pg, rel->schema, rel->table);
    int32_t *map;
    bool fresh = false, reload = false;
    int rc;

    if (tb == NULL)
        return oom(err);
    if (tb->t != NULL && same_shape(tb, rel)) {
        *out = tb;
        return track_table(pg, tb, err);
    }
    map = calloc(rel->ncols ? rel->ncols : 1, sizeof(*map));
    if (map == NULL)
        return oom(err);
    for (;;) {
        xdcr_problems_t probs;
        char buf[XDCR_ERROR_MSG_MAX];

        if (tb->t == NULL || reload) {
            /* unknown, or the cached table does not fit: read the catalog (sending the grouped
               rows and draining first, since they may use the cached table) */
            if (pg->in_batch && ((rc = group_flush(pg, err)) != 0 || (rc = drain(pg, 0, err)) != 0))
                goto fail;
            if (pg->in_batch && pg->failed) {
                *err = pg->first_err;
                rc = err->code;
                goto fail;
            }
            rc = load_table(pg, tb, err);
            if (rc != 0)
                goto fail;
            fresh = true;
            reload = false;
        }
        xdcr_problems_init(&probs);
        if (xdcr_check_relation(rel, tb->t, map, &probs) == 0 && !probs.oom) {
            xdcr_problems_free(&probs);
            break;
        }
        if (!fresh) {
            xdcr_problems_free(&probs);
            reload = true;
            continue;
        }
        xdcr_problems_join(&probs, buf, sizeof(buf));
        xdcr_problems_free(&probs);
        memset(&pg->failure, 0, sizeof(pg->failure));
        snprintf(pg->failure.table, sizeof(pg->failure.table), "%s.%s", rel->schema, rel->table);
        rc = xdcr_error_set(err, XDCR_ESCHEMA, false, "%s", buf);
        goto fail;
    }
    if (remember_shape(tb, rel, map) != 0) {
        rc = oom(err);
        goto fail;
    }
    *out = tb;
    return track_table(pg, tb, err);
fail:
    free(map);
    return rc;
}

/* ---- statements ------------------------------------------------------------------------------ */

static int reserve_params(cons_pg_t *pg, size_t n, xdcr_error_t *err)
{
    if (n <= pg->vcap)
        return 0;
    free(pg->vals);
    free(pg->types);
    free(pg->cols);
    free(pg->srcv);
    pg->vals = calloc(n, sizeof(*pg->vals));
    pg->types = calloc(n, sizeof(*pg->types));
    pg->cols = calloc(n, sizeof(*pg->cols));
    pg->srcv = calloc(n, sizeof(*pg->srcv));
    if (pg->vals == NULL || pg->types == NULL || pg->cols == NULL || pg->srcv == NULL) {
        pg->vcap = 0;
        return oom(err);
    }
    pg->vcap = n;
    return 0;
}

/* Point pg->vals at NUL-terminated copies of the n source values in pg->srcv. */
static int fill_values(cons_pg_t *pg, uint32_t n, xdcr_error_t *err)
{
    size_t need = 0, at = 0;

    for (uint32_t i = 0; i < n; i++)
        if (pg->srcv[i] != NULL && pg->srcv[i]->kind == XDCR_VAL_TEXT)
            need += pg->srcv[i]->len + 1;
    if (need > pg->arena_cap) {
        char *a = realloc(pg->arena, need);

        if (a == NULL)
            return oom(err);
        pg->arena = a;
        pg->arena_cap = need;
    }
    for (uint32_t i = 0; i < n; i++) {
        const xdcr_value_t *v = pg->srcv[i];

        if (v == NULL || v->kind != XDCR_VAL_TEXT) {
            pg->vals[i] = NULL;
            continue;
        }
        memcpy(pg->arena + at, v->data, v->len);
        pg->arena[at + v->len] = '\0';
        pg->vals[i] = pg->arena + at;
        at += v->len + 1;
    }
    return 0;
}

/* Sort the first n (cols, srcv) pairs by target column index. */
static void sort_cols(cons_pg_t *pg, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t c = pg->cols[i];
        const xdcr_value_t *v = pg->srcv[i];
        uint32_t j = i;

        while (j > 0 && pg->cols[j - 1] > c) {
            pg->cols[j] = pg->cols[j - 1];
            pg->srcv[j] = pg->srcv[j - 1];
            j--;
        }
        pg->cols[j] = c;
        pg->srcv[j] = v;
    }
}

/* Find or create (and prepare, in the pipeline) the statement for op and column set; resolved:
 * the conflict-resolving form (sql_build_resolved). */
static int get_stmt_for(cons_pg_t *pg, tbl_t *tb, char op, bool key_changed, bool resolved,
                        int form, const uint32_t *cols, uint32_t n, stmt_t **out, xdcr_error_t *err)
{
    const xdcr_table_t *t = tb->t;
    size_t siglen = (t->ncols + 7) / 8;
    uint8_t *sig = calloc(siglen ? siglen : 1, 1);
    stmt_t *s = NULL, **stmts;
    uint32_t nparams;
    Oid *types = NULL;
    px_t *x;
    int rc;

    if (sig == NULL)
        return oom(err);
    for (uint32_t i = 0; i < n; i++)
        sig[cols[i] / 8] |= (uint8_t)(1u << (cols[i] % 8));
    for (size_t i = 0; i < tb->nstmts; i++) {
        stmt_t *c = tb->stmts[i];

        if (c->op == op && c->key_changed == key_changed && c->resolved == resolved &&
            c->form == form && c->prepared && memcmp(c->sig, sig, siglen) == 0) {
            free(sig);
            *out = c;
            return 0;
        }
    }
    sql_buf_reset(&pg->sql);
    if (resolved) {
        sql_resolve_t rs = {pg->schema, tb->policy, pg->own_origin};

        rc = sql_build_resolved(&pg->sql, t, op, cols, n, &rs);
        nparams = (op == 'I' ? n : n + t->npk) + 3;
        goto built;
    }
    if (form != FORM_SINGLE) {
        rc = op == 'I'                        ? sql_build_multi_upsert(&pg->sql, t, cols, n)
             : op == 'U' && form == FORM_FAST ? sql_build_multi_update_fast(&pg->sql, t, cols, n)
             : op == 'U'                      ? sql_build_multi_update(&pg->sql, t, cols, n)
                                              : sql_build_multi_delete(&pg->sql, t);
        nparams = op == 'I' ? n : op == 'U' ? n + t->npk : t->npk;
        goto built;
    }
    switch (op) {
    case 'I':
        rc = sql_build_upsert(&pg->sql, t, cols, n);
        nparams = n;
        break;
    case 'U':
        rc = sql_build_update(&pg->sql, t, cols, n, key_changed);
        nparams = n + t->npk;
        break;
    default:
        rc = sql_build_delete(&pg->sql, t);
        nparams = t->npk;
        break;
    }
built:
    if (rc != 0) {
        free(sig);
        return rc == XDCR_ENOMEM ? oom(err)
                                 : xdcr_error_set(err, XDCR_EAPPLY, false,
                                                  "cannot build the %c statement for %s.%s", op,
                                                  t->schema, t->name);
    }
    types = calloc(nparams ? nparams : 1, sizeof(*types));
    s = calloc(1, sizeof(*s));
    stmts = realloc(tb->stmts, (tb->nstmts + 1) * sizeof(*stmts));
    if (stmts != NULL)
        tb->stmts = stmts;
    if (types == NULL || s == NULL || stmts == NULL) {
        free(sig);
        free(types);
        free(s);
        return oom(err);
    }
    for (uint32_t i = 0; i < n && op != 'D'; i++)
        types[i] = t->cols[cols[i]].type_oid;
    for (uint32_t k = 0; k < t->npk && op != 'I'; k++)
        types[(op == 'U' ? n : 0) + k] = t->cols[t->pk[k]].type_oid;
    for (uint32_t i = 0; form != FORM_SINGLE && i < nparams; i++) { /* a column of many rows */
        uint32_t c = op == 'D' ? t->pk[i] : i < n ? cols[i] : t->pk[i - n];

        types[i] = sql_multi_param_type(t, c);
    }
    if (resolved) {
        types[nparams - 3] = 1184; /* timestamptz: the source commit time */
        types[nparams - 2] = 25;   /* text: the source origin */
        types[nparams - 1] = 3220; /* pg_lsn: the source seq */
    }
    s->op = op;
    s->key_changed = key_changed;
    s->resolved = resolved;
    s->form = (uint8_t)form;
    s->sig = sig;
    s->siglen = siglen;
    s->nparams = nparams;
    snprintf(s->name, sizeof(s->name), "xdcr_%" PRIu64, ++pg->stmt_counter);
    x = push_px(pg, PX_PREPARE, err);
    if (x == NULL) {
        free(types);
        stmt_free(s);
        return err->code;
    }
    x->stmt = s;
    x->tbl = tb;
    x->op = op;
    if (PQsendPrepare(pg->conn, s->name, pg->sql.data, (int)nparams, types) == 0) {
        free(types);
        stmt_free(s);
        return send_failed(pg, err);
    }
    free(types);
    s->prepared = true;
    tb->stmts[tb->nstmts++] = s;
    *out = s;
    return 0;
}

/* The statement for a change to tb: conflict-resolving in active-active mode (key changes
 * excepted: they are applied as they come, see docs/active-active.md). */
static int get_stmt(cons_pg_t *pg, tbl_t *tb, char op, bool key_changed, const uint32_t *cols,
                    uint32_t n, stmt_t **out, xdcr_error_t *err)
{
    bool resolved = tb->policy != NULL && !key_changed;

    return get_stmt_for(pg, tb, op, key_changed, resolved, FORM_SINGLE, cols, n, out, err);
}

static int exec_stmt(cons_pg_t *pg, tbl_t *tb, stmt_t *s, int64_t offset, uint32_t rows,
                     xdcr_error_t *err)
{
    px_t *x = push_px(pg, PX_STMT, err);

    if (x == NULL)
        return err->code;
    x->rows = rows;
    x->op = s->op;
    x->tbl = tb;
    x->offset = offset;
    x->resolved = s->resolved;
    x->fast = s->form == FORM_FAST;
    if (x->fast)
        pg->fast_sent = true;
    if (s->resolved) {
        /* after the row's values: the change's source commit time, origin and seq */
        pg->vals[s->nparams - 3] = pg->rtime;
        pg->vals[s->nparams - 2] = pg->rorigin;
        pg->vals[s->nparams - 1] = pg->rseq;
    }
    if (PQsendQueryPrepared(pg->conn, s->name, (int)s->nparams, pg->vals, NULL, NULL, 0) == 0)
        return send_failed(pg, err);
    return after_send(pg, err);
}

static bool same_value(const xdcr_value_t *a, const xdcr_value_t *b)
{
    if (a->kind != b->kind)
        return false;
    return a->kind != XDCR_VAL_TEXT || (a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

static int change_error(cons_pg_t *pg, const tbl_t *tb, char op, int64_t offset, xdcr_error_t *err,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A change that cannot be turned into a statement: an apply error naming its table. */
static int change_error(cons_pg_t *pg, const tbl_t *tb, char op, int64_t offset, xdcr_error_t *err,
                        const char *fmt, ...)
{
    char buf[XDCR_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memset(&pg->failure, 0, sizeof(pg->failure));
    pg->failure.offset = offset;
    pg->failure.op = op;
    snprintf(pg->failure.table, sizeof(pg->failure.table), "%s.%s", tb->schema, tb->name);
    return xdcr_error_set(err, XDCR_EAPPLY, false, "%s", buf);
}

/* Source index of target column j, or -1. */
static int src_of(const tbl_t *tb, uint32_t j)
{
    for (uint32_t i = 0; i < tb->src_ncols; i++)
        if (tb->map[i] == (int32_t)j)
            return (int)i;
    return -1;
}

/* ---- multi-row groups ---------------------------------------------------------------------- */

static void group_reset(cons_pg_t *pg)
{
    group_t *g = &pg->g;

    g->tb = NULL;
    g->rows = 0;
    g->alen = 0;
    if (g->keys != NULL)
        memset(g->keys, 0, g->keycap * sizeof(*g->keys));
}

static void group_free(cons_pg_t *pg)
{
    group_t *g = &pg->g;

    free(g->cols);
    free(g->vals);
    free(g->arena);
    free(g->keys);
    free(g->keyrow);
    memset(g, 0, sizeof(*g));
    for (size_t i = 0; i < pg->ngarr; i++)
        sql_buf_free(&pg->garr[i]);
    free(pg->garr);
    pg->garr = NULL;
    pg->ngarr = 0;
}

/* FNV-1a over the key values of pg->srcv (length-prefixed, NULLs distinct). */
static uint64_t key_hash(const cons_pg_t *pg)
{
    uint64_t h = 1469598103934665603ULL;

    for (uint32_t k = 0; k < pg->g.tb->t->npk; k++) {
        const xdcr_value_t *v = pg->srcv[pg->gkeyidx[k]];
        size_t len = v != NULL && v->kind == XDCR_VAL_TEXT ? v->len : (size_t)-1;

        for (size_t i = 0; i < sizeof(len); i++)
            h = (h ^ ((len >> (8 * i)) & 0xff)) * 1099511628211ULL;
        for (size_t i = 0; len != (size_t)-1 && i < len; i++)
            h = (h ^ (unsigned char)v->data[i]) * 1099511628211ULL;
    }
    return h | 1; /* never 0: 0 marks a free slot */
}

/* Does row r of the group have the key of pg->srcv? */
static bool same_key(const cons_pg_t *pg, size_t r)
{
    const group_t *g = &pg->g;

    for (uint32_t k = 0; k < g->tb->t->npk; k++) {
        const xdcr_value_t *v = pg->srcv[pg->gkeyidx[k]];
        const gval_t *s = &g->vals[r * g->nvals + pg->gkeyidx[k]];
        bool vnull = v == NULL || v->kind != XDCR_VAL_TEXT;

        if (vnull != s->null)
            return false;
        if (!vnull && (v->len != s->len || memcmp(v->data, g->arena + s->off, s->len) != 0))
            return false;
    }
    return true;
}

/* Find the key of pg->srcv; with insert, remember it for row (the next row) when absent. */
static bool group_key(cons_pg_t *pg, bool insert)
{
    group_t *g = &pg->g;
    uint64_t h = key_hash(pg);
    size_t i = (size_t)h & (g->keycap - 1);

    while (g->keys[i] != 0) {
        if (g->keys[i] == h && same_key(pg, g->keyrow[i]))
            return true;
        i = (i + 1) & (g->keycap - 1);
    }
    if (insert) {
        g->keys[i] = h;
        g->keyrow[i] = g->rows;
    }
    return false;
}

/* ---- COPY for big insert groups ---------------------------------------------------------------
 *
 * COPY cannot run in pipeline mode: the pipeline is synced (every result read, the transaction
 * stays open), left, the rows go by COPY under a savepoint, and the pipeline is entered again.
 * A row that exists already (unique_violation) rolls back to the savepoint and the group goes by
 * the upsert statement instead, so the effect is always the upsert's. Three round trips per
 * group, worth it from a few hundred rows (apply.copy_min_rows).
 */

/*
 * Each COPY runs in a subtransaction. PostgreSQL keeps the subtransaction ids of a transaction in
 * a 64-entry cache per backend; past it, every snapshot taken on the target (by any session)
 * becomes "suboverflowed" and slower. A target transaction uses at most this many COPYs; later
 * groups go by the statement.
 */
#define COPY_MAX_PER_TXN 48

/* Sync the pipeline, read everything and leave pipeline mode; the batch's error if it failed. */
static int pipeline_pause(cons_pg_t *pg, xdcr_error_t *err)
{
    px_t *x = push_px(pg, PX_SYNC, err);
    int rc;

    if (x == NULL)
        return err->code;
    if (PQpipelineSync(pg->conn) == 0) {
        pg->qlen--;
        return conn_lost(pg, err);
    }
    rc = drain(pg, 0, err);
    if (rc == 0 && pg->failed) {
        *err = pg->first_err;
        rc = err->code;
    }
    if (rc == 0 && PQexitPipelineMode(pg->conn) != 1)
        rc = conn_lost(pg, err);
    return rc;
}

static int pipeline_resume(cons_pg_t *pg, xdcr_error_t *err)
{
    if (PQenterPipelineMode(pg->conn) == 0)
        return conn_lost(pg, err);
    pg->sync_sent = false;
    return 0;
}

/* One value in COPY's text format. */
static void copy_value(sql_buf_t *b, const char *s, size_t len, bool null)
{
    size_t from = 0;

    if (null) {
        sql_append(b, "\\N");
        return;
    }
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;

        switch (s[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            continue;
        }
        sql_append_n(b, s + from, i - from);
        sql_append(b, esc);
        from = i + 1;
    }
    sql_append_n(b, s + from, len - from);
}

static int copy_put(cons_pg_t *pg, const char *data, size_t len)
{
    for (;;) {
        int r = PQputCopyData(pg->conn, data, (int)len);

        if (r == 1)
            return 0;
        if (r < 0 || poll_io(pg, POLLOUT) <= 0 || PQflush(pg->conn) < 0)
            return -1;
    }
}

/*
 * Apply the insert group by COPY. 0 done, 1 a row exists already (rolled back: use the upsert
 * statement), or the batch's error.
 */
static int group_copy(cons_pg_t *pg, xdcr_error_t *err)
{
    group_t *g = &pg->g;
    const xdcr_table_t *t = g->tb->t;
    sql_buf_t *b = &pg->copybuf;
    PGresult *res = NULL;
    const char *state;
    px_t fx, *x;
    int rc;

    if ((rc = pipeline_pause(pg, err)) != 0)
        return rc;
    pg->copies_in_txn++;
    res = run(pg, "SAVEPOINT xdcr_copy", 0, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        goto failed;
    PQclear(res);
    sql_buf_reset(b);
    sql_append(b, "COPY ");
    sql_append_qualified(b, g->tb->schema, g->tb->name);
    sql_append(b, " (");
    for (uint32_t i = 0; i < g->ncols; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[g->cols[i]].name);
    }
    sql_append(b, ") FROM STDIN");
    if (sql_buf_status(b) != 0) {
        rc = oom(err);
        goto resume;
    }
    if (PQsendQuery(pg->conn, b->data) == 0) {
        res = NULL;
        goto failed;
    }
    res = await_result(pg) ? PQgetResult(pg->conn) : NULL;
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        PGresult *more;

        /* e.g. no INSERT privilege: read the rest, report the error */
        while (res != NULL && (more = PQgetResult(pg->conn)) != NULL)
            PQclear(more);
        goto failed;
    }
    PQclear(res);
    res = NULL;
    sql_buf_reset(b);
    for (uint32_t r = 0; r < g->rows; r++) {
        for (uint32_t c = 0; c < g->ncols; c++) {
            const gval_t *v = &g->vals[(size_t)r * g->nvals + c];

            if (c > 0)
                sql_append(b, "\t");
            copy_value(b, g->arena + v->off, v->len, v->null);
        }
        sql_append(b, "\n");
        if (b->len >= 65536 || r + 1 == g->rows) {
            if (sql_buf_status(b) != 0) {
                (void)PQputCopyEnd(pg->conn, "out of memory");
                rc = oom(err);
                res = run_wait(pg);
                PQclear(res);
                goto resume;
            }
            if (copy_put(pg, b->data, b->len) != 0)
                goto failed;
            sql_buf_reset(b);
        }
    }
    for (;;) {
        int r = PQputCopyEnd(pg->conn, NULL);

        if (r == 1)
            break;
        if (r < 0 || poll_io(pg, POLLOUT) <= 0 || PQflush(pg->conn) < 0)
            goto failed;
    }
    res = run_wait(pg);
    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        pg->stats.inserts += g->rows;
        pg->stats.copies++;
        if ((rc = pipeline_resume(pg, err)) != 0)
            return rc;
        x = push_px(pg, PX_OTHER, err);
        if (x == NULL)
            return err->code;
        return send_params(pg, x, "RELEASE SAVEPOINT xdcr_copy", 0, NULL, err);
    }
    state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL && strcmp(state, "23505") == 0) {
        /* a row is there already: the upsert decides, as for any insert */
        PQclear(res);
        res = run(pg, "ROLLBACK TO SAVEPOINT xdcr_copy", 0, NULL);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
            goto failed;
        PQclear(res);
        pg->stats.copy_fallbacks++;
        if ((rc = pipeline_resume(pg, err)) != 0)
            return rc;
        x = push_px(pg, PX_OTHER, err);
        if (x == NULL)
            return err->code;
        rc = send_params(pg, x, "RELEASE SAVEPOINT xdcr_copy", 0, NULL, err);
        return rc != 0 ? rc : 1;
    }
failed:
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        PQclear(res);
        if (pg->conn == NULL)
            return xdcr_error_set(err, XDCR_EPGCONN, true,
                                  "the target PostgreSQL did not answer during COPY");
        return conn_lost(pg, err);
    }
    /* the batch failed here, as a failed statement of the group would have */
    memset(&fx, 0, sizeof(fx));
    fx.kind = PX_STMT;
    fx.op = 'I';
    fx.tbl = g->tb;
    fx.offset = g->offset;
    record_failure(pg, &fx, res);
    PQclear(res);
    rc = pg->first_err.code != 0 ? pg->first_err.code : XDCR_EPG;
    *err = pg->first_err;
resume:
    if (pipeline_resume(pg, err) != 0 && rc == 0)
        rc = err->code;
    return rc;
}

static int group_flush(cons_pg_t *pg, xdcr_error_t *err)
{
    group_t *g = &pg->g;
    stmt_t *s;
    uint32_t rows = g->rows;
    int rc, form;

    if (g->tb == NULL || rows == 0) {
        group_reset(pg);
        return 0;
    }
    if (g->op == 'I' && pg->copy_min_rows > 0 && rows >= pg->copy_min_rows &&
        pg->copies_in_txn < COPY_MAX_PER_TXN && (rc = group_copy(pg, err)) != 1) {
        group_reset(pg);
        return rc;
    }
    if ((rc = reserve_params(pg, g->nvals, err)) != 0)
        return rc;
    if (rows == 1) {
        /* the single-row statement (the arena holds NUL-terminated copies) */
        rc = get_stmt_for(pg, g->tb, g->op, false, false, FORM_SINGLE, g->cols, g->ncols, &s, err);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < g->nvals; i++)
            pg->vals[i] = g->vals[i].null ? NULL : g->arena + g->vals[i].off;
        rc = exec_stmt(pg, g->tb, s, g->offset, 0, err);
        group_reset(pg);
        return rc;
    }
    if (pg->ngarr < g->nvals) {
        sql_buf_t *a = realloc(pg->garr, g->nvals * sizeof(*a));

        if (a == NULL)
            return oom(err);
        pg->garr = a;
        for (size_t i = pg->ngarr; i < g->nvals; i++)
            sql_buf_init(&pg->garr[i]);
        pg->ngarr = g->nvals;
    }
    for (uint32_t c = 0; c < g->nvals; c++) {
        sql_buf_t *a = &pg->garr[c];

        sql_buf_reset(a);
        sql_append(a, "{");
        for (uint32_t r = 0; r < rows; r++) {
            const gval_t *v = &g->vals[r * g->nvals + c];

            sql_append_array_elem(a, v->null ? NULL : g->arena + v->off, v->len, r == 0);
        }
        sql_append(a, "}");
        if (sql_buf_status(a) != 0)
            return oom(err);
        pg->vals[c] = a->data;
    }
    /*
     * A large one-way update goes without the anti-join for missing rows (5-7% faster on W3):
     * its row count is checked before COMMIT, and a shortfall applies the batch again with the
     * full statement (fast_off).
     */
    form =
        g->op == 'U' && !pg->active_active && !pg->fast_off && rows >= FAST_MIN_ROWS && g->ncols > 0
            ? FORM_FAST
            : FORM_MULTI;
    rc = get_stmt_for(pg, g->tb, g->op, false, false, form, g->cols, g->ncols, &s, err);
    if (rc == 0)
        rc = exec_stmt(pg, g->tb, s, g->offset, rows, err);
    group_reset(pg);
    return rc;
}

/* Add the change in pg->cols[0..n) / pg->srcv[0..nvals) to the group (flushing it first when
 * the change does not fit). */
static int group_add(cons_pg_t *pg, tbl_t *tb, char op, uint32_t n, uint32_t nvals, int64_t offset,
                     xdcr_error_t *err)
{
    group_t *g = &pg->g;
    size_t need = 0;
    int rc;

    if (g->tb != NULL &&
        (g->tb != tb || g->op != op || g->ncols != n || g->nvals != nvals ||
         g->rows >= GROUP_MAX_ROWS || memcmp(g->cols, pg->cols, n * sizeof(*g->cols)) != 0 ||
         group_key(pg, false)) &&
        (rc = group_flush(pg, err)) != 0)
        return rc;
    if (g->tb == NULL) {
        if (g->keys == NULL) {
            g->keycap = GROUP_KEY_SLOTS;
            g->keys = calloc(g->keycap, sizeof(*g->keys));
            g->keyrow = calloc(g->keycap, sizeof(*g->keyrow));
            if (g->keys == NULL || g->keyrow == NULL)
                return oom(err);
        }
        if (n > g->colcap) {
            uint32_t *c = realloc(g->cols, n * sizeof(*c));

            if (c == NULL)
                return oom(err);
            g->cols = c;
            g->colcap = n;
        }
        memcpy(g->cols, pg->cols, n * sizeof(*g->cols));
        g->tb = tb;
        g->op = op;
        g->ncols = n;
        g->nvals = nvals;
        g->rows = 0;
    }
    if ((size_t)(g->rows + 1) * nvals > g->vcap) {
        size_t cap = (size_t)GROUP_MAX_ROWS * nvals;
        gval_t *v = realloc(g->vals, cap * sizeof(*v));

        if (v == NULL)
            return oom(err);
        g->vals = v;
        g->vcap = cap;
    }
    for (uint32_t i = 0; i < nvals; i++)
        if (pg->srcv[i] != NULL && pg->srcv[i]->kind == XDCR_VAL_TEXT)
            need += pg->srcv[i]->len + 1;
    if (g->alen + need > g->acap) {
        size_t cap = g->acap ? g->acap : 65536;
        char *a;

        while (cap < g->alen + need)
            cap *= 2;
        a = realloc(g->arena, cap);
        if (a == NULL)
            return oom(err);
        g->arena = a;
        g->acap = cap;
    }
    (void)group_key(pg, true);
    for (uint32_t i = 0; i < nvals; i++) {
        const xdcr_value_t *v = pg->srcv[i];
        gval_t *d = &g->vals[(size_t)g->rows * nvals + i];

        d->null = v == NULL || v->kind != XDCR_VAL_TEXT;
        d->off = g->alen;
        d->len = d->null ? 0 : v->len;
        if (!d->null) {
            memcpy(g->arena + g->alen, v->data, v->len);
            g->arena[g->alen + v->len] = '\0';
            g->alen += v->len + 1;
        }
    }
    g->rows++;
    g->offset = offset;
    return 0;
}

/*
 * Apply the change prepared in pg->cols[0..n) / pg->srcv[0..nvals): grouped with its neighbours
 * into a multi-row statement when it can be, else (conflict resolution, a key change) at once.
 */
static int emit(cons_pg_t *pg, tbl_t *tb, char op, bool key_changed, uint32_t n, uint32_t nvals,
                int64_t offset, xdcr_error_t *err)
{
    const xdcr_table_t *t = tb->t;
    stmt_t *s;
    int rc;

    if (tb->policy == NULL && !key_changed && pg->multi_row && t->npk <= 64) {
        for (uint32_t k = 0; k < t->npk; k++) {
            if (op == 'I') {
                for (uint32_t i = 0; i < n; i++)
                    if (pg->cols[i] == t->pk[k])
                        pg->gkeyidx[k] = i;
            } else {
                pg->gkeyidx[k] = (op == 'U' ? n : 0) + k;
            }
        }
        return group_add(pg, tb, op, n, nvals, offset, err);
    }
    if ((rc = group_flush(pg, err)) != 0)
        return rc;
    if ((rc = get_stmt(pg, tb, op, key_changed, pg->cols, n, &s, err)) != 0)
        return rc;
    if ((rc = fill_values(pg, nvals, err)) != 0)
        return rc;
    return exec_stmt(pg, tb, s, offset, 0, err);
}

static int apply_insert(cons_pg_t *pg, tbl_t *tb, const xdcr_change_t *ch, int64_t offset,
                        xdcr_error_t *err)
{
    const xdcr_table_t *t = tb->t;
    uint32_t n = 0;
    int rc;

    if (ch->new_vals == NULL)
        return change_error(pg, tb, 'I', offset, err, "insert without new values into %s.%s",
                            tb->schema, tb->name);
    if ((rc = reserve_params(pg, tb->src_ncols + t->npk + 3, err)) != 0)
        return rc;
    for (uint32_t i = 0; i < tb->src_ncols; i++) {
        if (ch->new_vals[i].kind == XDCR_VAL_UNCHANGED)
            continue;
        pg->cols[n] = (uint32_t)tb->map[i];
        pg->srcv[n] = &ch->new_vals[i];
        n++;
    }
    sort_cols(pg, n);
    for (uint32_t k = 0; k < t->npk; k++) {
        int si = src_of(tb, t->pk[k]);

        if (si < 0 || ch->new_vals[si].kind != XDCR_VAL_TEXT)
            return change_error(pg, tb, 'I', offset, err,
                                "insert without a value for primary key column %s of %s.%s",
                                t->cols[t->pk[k]].name, tb->schema, tb->name);
    }
    return emit(pg, tb, 'I', false, n, n, offset, err);
}

static int apply_update(cons_pg_t *pg, tbl_t *tb, const xdcr_change_t *ch, int64_t offset,
                        xdcr_error_t *err)
{
    const xdcr_table_t *t = tb->t;
    const xdcr_value_t *keyv[64];
    bool key_changed = false;
    uint32_t n = 0;
    int rc;

    if (ch->new_vals == NULL)
        return change_error(pg, tb, 'U', offset, err, "update without new values of %s.%s",
                            tb->schema, tb->name);
    if (t->npk > sizeof(keyv) / sizeof(keyv[0]))
        return change_error(pg, tb, 'U', offset, err, "primary key too wide on %s.%s", tb->schema,
                            tb->name);
    for (uint32_t k = 0; k < t->npk; k++) {
        int si = src_of(tb, t->pk[k]);
        const xdcr_value_t *nv, *ov;

        if (si < 0)
            return change_error(pg, tb, 'U', offset, err,
                                "primary key column %s of %s.%s is not sent by the source",
                                t->cols[t->pk[k]].name, tb->schema, tb->name);
        nv = &ch->new_vals[si];
        ov = ch->old_vals != NULL ? &ch->old_vals[si] : NULL;
        if (ov != NULL && ov->kind == XDCR_VAL_TEXT && nv->kind != XDCR_VAL_UNCHANGED &&
            !same_value(ov, nv))
            key_changed = true;
        keyv[k] = nv->kind == XDCR_VAL_TEXT ? nv : ov;
    }
    if (key_changed)
        for (uint32_t k = 0; k < t->npk; k++)
            keyv[k] = &ch->old_vals[src_of(tb, t->pk[k])];
    for (uint32_t k = 0; k < t->npk; k++)
        if (keyv[k] == NULL || keyv[k]->kind != XDCR_VAL_TEXT)
            return change_error(pg, tb, 'U', offset, err,
                                "update without a value for primary key column %s of %s.%s",
                                t->cols[t->pk[k]].name, tb->schema, tb->name);
    if ((rc = reserve_params(pg, tb->src_ncols + t->npk + 3, err)) != 0)
        return rc;
    for (uint32_t i = 0; i < tb->src_ncols; i++) {
        uint32_t j = (uint32_t)tb->map[i];

        if (ch->new_vals[i].kind == XDCR_VAL_UNCHANGED)
            continue; /* unchanged TOAST: the target keeps its value */
        if (!key_changed && t->cols[j].pk_pos > 0)
            continue;
        pg->cols[n] = j;
        pg->srcv[n] = &ch->new_vals[i];
        n++;
    }
    sort_cols(pg, n);
    for (uint32_t k = 0; k < t->npk; k++)
        pg->srcv[n + k] = keyv[k];
    return emit(pg, tb, 'U', key_changed, n, n + t->npk, offset, err);
}

static int apply_delete(cons_pg_t *pg, tbl_t *tb, const xdcr_change_t *ch, int64_t offset,
                        xdcr_error_t *err)
{
    const xdcr_table_t *t = tb->t;
    const xdcr_value_t *vals = ch->old_vals != NULL ? ch->old_vals : ch->new_vals;
    int rc;

    if (vals == NULL)
        return change_error(pg, tb, 'D', offset, err, "delete without a key from %s.%s", tb->schema,
                            tb->name);
    if ((rc = reserve_params(pg, t->npk + 3, err)) != 0)
        return rc;
    for (uint32_t k = 0; k < t->npk; k++) {
        int si = src_of(tb, t->pk[k]);

        if (si < 0 || vals[si].kind != XDCR_VAL_TEXT)
            return change_error(pg, tb, 'D', offset, err,
                                "delete without a value for primary key column %s of %s.%s",
                                t->cols[t->pk[k]].name, tb->schema, tb->name);
        pg->srcv[k] = &vals[si];
    }
    return emit(pg, tb, 'D', false, 0, t->npk, offset, err);
}

static int apply_truncate(cons_pg_t *pg, const xdcr_message_t *msg, const xdcr_change_t *ch,
                          int64_t offset, xdcr_error_t *err)
{
    const xdcr_table_t **ts;
    tbl_t *last = NULL;
    uint32_t n = 0;
    px_t *x;
    int rc = 0;

    if (pg->truncate_ignore || ch->ntrunc == 0)
        return 0;
    if (group_flush(pg, err) != 0)
        return err->code;
    ts = calloc(ch->ntrunc, sizeof(*ts));
    if (ts == NULL)
        return oom(err);
    for (uint32_t i = 0; i < ch->ntrunc; i++) {
        const xdcr_relation_t *rel = &msg->rels[ch->trunc_rels[i]];
        tbl_t *tb;

        if (strcmp(rel->schema, pg->schema) == 0)
            continue;
        tb = tbl_get(pg, rel->schema, rel->table);
        if (tb == NULL) {
            rc = oom(err);
            goto out;
        }
        if (tb->t == NULL) {
            if (pg->in_batch && (rc = drain(pg, 0, err)) != 0)
                goto out;
            if ((rc = load_table(pg, tb, err)) != 0)
                goto out;
            if (tb->t == NULL) {
                memset(&pg->failure, 0, sizeof(pg->failure));
                pg->failure.offset = offset;
                pg->failure.op = 'T';
                snprintf(pg->failure.table, sizeof(pg->failure.table), "%s.%s", rel->schema,
                         rel->table);
                rc = xdcr_error_set(err, XDCR_ESCHEMA, false,
                                    "table %s.%s does not exist at the target", rel->schema,
                                    rel->table);
                goto out;
            }
        }
        ts[n++] = tb->t;
        last = tb;
    }
    if (n == 0)
        goto out;
    sql_buf_reset(&pg->sql);
    if (sql_build_truncate(&pg->sql, ts, n, ch->restart_identity, ch->cascade) != 0) {
        rc = oom(err);
        goto out;
    }
    x = push_px(pg, PX_STMT, err);
    if (x == NULL) {
        rc = err->code;
        goto out;
    }
    x->op = 'T';
    x->tbl = last;
    x->offset = offset;
    rc = send_params(pg, x, pg->sql.data, 0, NULL, err);
out:
    free(ts);
    return rc;
}

int cons_pg_apply_change(cons_pg_t *pg, const xdcr_message_t *msg, const xdcr_change_t *ch,
                         int64_t offset, xdcr_error_t *err)
{
    const xdcr_relation_t *rel;
    tbl_t *tb;
    int rc;

    if ((rc = batch_usable(pg, err)) != 0)
        return rc;
    switch (ch->op) {
    case XDCR_OP_MESSAGE:
        return 0;
    case XDCR_OP_TRUNCATE:
        return apply_truncate(pg, msg, ch, offset, err);
    case XDCR_OP_INSERT:
    case XDCR_OP_UPDATE:
    case XDCR_OP_DELETE:
        break;
    default:
        return xdcr_error_set(err, XDCR_EAPPLY, false, "unknown change type %d", (int)ch->op);
    }
    rel = &msg->rels[ch->rel];
    if (strcmp(rel->schema, pg->schema) == 0)
        return 0; /* the consumer's own state is never replicated */
    if (pg->active_active) {
        /* the version of the change, for resolve() */
        if (xdcr_time_format_us(msg->commit_time_us, pg->rtime, sizeof(pg->rtime)) == NULL)
            return xdcr_error_set(err, XDCR_EAPPLY, false,
                                  "source commit time out of range in the message at offset "
                                  "%" PRId64,
                                  offset);
        snprintf(pg->rorigin, sizeof(pg->rorigin), "%s", msg->src.origin);
        xdcr_lsn_format(msg->commit_lsn, pg->rseq);
    }
    rc = table_for(pg, rel, &tb, err);
    if (rc != 0) {
        if (pg->failure.table[0] == '\0')
            snprintf(pg->failure.table, sizeof(pg->failure.table), "%s.%s", rel->schema,
                     rel->table);
        pg->failure.offset = offset;
        pg->failure.op = (char)ch->op;
        return rc;
    }
    switch (ch->op) {
    case XDCR_OP_INSERT:
        return apply_insert(pg, tb, ch, offset, err);
    case XDCR_OP_UPDATE:
        return apply_update(pg, tb, ch, offset, err);
    default:
        return apply_delete(pg, tb, ch, offset, err);
    }
}

/* ---- batches --------------------------------------------------------------------------------- */

static int ensure_origin(cons_pg_t *pg, const char *origin, xdcr_error_t *err)
{
    char name[XDCR_ORIGIN_MAX + 8];
    const char *vals[1] = {name};
    PGresult *res = NULL;
    int rc;

    snprintf(name, sizeof(name), "xdcr_%s", origin);
    if (pg->session_origin != NULL && strcmp(pg->session_origin, name) == 0)
        return 0;
    if (pg->session_origin != NULL) {
        rc = exec_params(pg, "SELECT pg_catalog.pg_replication_origin_session_reset()", 0, NULL,
                         NULL, "could not reset the replication origin", err);
        if (rc != 0)
            return rc;
        free(pg->session_origin);
        pg->session_origin = NULL;
    }
    rc = exec_params(pg, "SELECT pg_catalog.pg_replication_origin_oid($1)", 1, vals, &res,
                     "could not look up the replication origin", err);
    if (rc != 0)
        goto privileges;
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        res = NULL;
        rc = exec_params(pg, "SELECT pg_catalog.pg_replication_origin_create($1)", 1, vals, NULL,
                         "could not create the replication origin", err);
        if (rc != 0 && strstr(err->message, "23505") == NULL)
            goto privileges; /* 23505: created by another session just now */
    }
    PQclear(res);
    res = NULL;
    rc = exec_params(pg, "SELECT pg_catalog.pg_replication_origin_session_setup($1)", 1, vals, NULL,
                     "could not set up the replication origin", err);
    if (rc != 0)
        goto privileges;
    pg->session_origin = strdup(name);
    if (pg->session_origin == NULL)
        return oom(err);
    return 0;
privileges:
    PQclear(res);
    if (strstr(err->message, "42501") != NULL) {
        err->code = XDCR_ECONFIG;
        err->retriable = false;
        xdcr_error_prefix(err, "the apply role needs superuser or EXECUTE on the "
                               "pg_replication_origin_* functions");
    } else if (strstr(err->message, "55006") != NULL) {
        err->code = XDCR_EEXISTS; /* it waits for its turn */
        err->retriable = true;
        xdcr_error_prefix(err, "another session (another consumer?) is applying this origin "
                               "into the target: it holds the origin's replication origin");
    }
    return err->code;
}

/* ---- read-your-writes turnstile ------------------------------------------------------------ */

static turn_t *turn_get(cons_pg_t *pg, const char *origin)
{
    turn_t *t;

    for (size_t i = 0; i < pg->nturns; i++)
        if (strcmp(pg->turns[i].origin, origin) == 0)
            return &pg->turns[i];
    t = realloc(pg->turns, (pg->nturns + 1) * sizeof(*t));
    if (t == NULL)
        return NULL;
    pg->turns = t;
    t = &pg->turns[pg->nturns];
    memset(t, 0, sizeof(*t));
    t->origin = strdup(origin);
    if (t->origin == NULL)
        return NULL;
    snprintf(t->key, sizeof(t->key), "xdcr:%s", origin);
    pg->nturns++;
    return t;
}

/* Take (try) or release one parity's session lock outside a batch; true when it succeeded. */
static bool turn_lock(cons_pg_t *pg, turn_t *t, int parity, bool lock)
{
    char par[16];
    const char *vals[2] = {t->key, par};
    PGresult *res = NULL;
    xdcr_error_t e;
    bool ok;

    snprintf(par, sizeof(par), "%d", parity);
    if (exec_params(pg,
                    lock ? "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1), "
                           "$2::integer)"
                         : "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1), "
                           "$2::integer)",
                    2, vals, &res, "could not use the wait turnstile", &e) != 0)
        return false;
    ok = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (ok)
        t->held[parity] = lock;
    return ok;
}

int cons_pg_turnstile_hold(cons_pg_t *pg, const char *origin, int64_t gen, xdcr_error_t *err)
{
    turn_t *t;
    int want = (int)(gen & 1);

    if (pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "a batch is open");
    if (!cons_pg_is_connected(pg))
        return not_connected(err);
    t = turn_get(pg, origin);
    if (t == NULL)
        return oom(err);
    if (t->held[1 - want])
        (void)turn_lock(pg, t, 1 - want, false);
    if (!t->held[want] && !turn_lock(pg, t, want, true))
        XDCR_LOG_KV(pg->lg, XDCR_LOG_DEBUG,
                    "wait turnstile lock not available; SQL waiters poll until the next commit",
                    "origin", origin);
    return 0;
}

void cons_pg_turnstile_release(cons_pg_t *pg, const char *origin)
{
    if (pg->in_batch || !cons_pg_is_connected(pg))
        return;
    for (size_t i = 0; i < pg->nturns; i++) {
        turn_t *t = &pg->turns[i];

        if (strcmp(t->origin, origin) != 0)
            continue;
        for (int k = 0; k < 2; k++)
            if (t->held[k])
                (void)turn_lock(pg, t, k, false);
        t->held[0] = t->held[1] = false;
    }
}

int cons_pg_begin(cons_pg_t *pg, const char *origin, xdcr_error_t *err)
{
    px_t *x;
    int rc;

    if (pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "a batch is already open");
    if (!cons_pg_is_connected(pg))
        return not_connected(err);
    rc = ensure_origin(pg, origin, err);
    if (rc != 0)
        return rc;
    clear_queue(pg);
    group_reset(pg);
    pg->failed = false;
    pg->committed = false;
    pg->sync_sent = false;
    pg->expect_version = -1;
    pg->adv_turn = NULL;
    pg->adv_locked = pg->adv_unlocked = false;
    xdcr_error_clear(&pg->first_err);
    memset(&pg->failure, 0, sizeof(pg->failure));
    pg->failure.offset = -1;
    memset(&pg->stats, 0, sizeof(pg->stats));
    if (PQenterPipelineMode(pg->conn) == 0)
        return conn_lost(pg, err);
    pg->in_batch = true;
    pg->copies_in_txn = 0;
    pg->fast_sent = false;
    x = push_px(pg, PX_OTHER, err);
    if (x == NULL)
        return err->code;
    return send_params(pg, x, "BEGIN", 0, NULL, err);
}

static char *fmt_time(int64_t us, char *buf, size_t len)
{
    if (us == 0 || xdcr_time_format_us(us, buf, len) == NULL)
        return NULL;
    return buf;
}

/* The position upsert with its version fence, into pg->sql (sent once per session: FX_POSITION). */
static int build_position_sql(cons_pg_t *pg)
{
    sql_buf_reset(&pg->sql);
    sql_append(&pg->sql, "WITH w AS (INSERT INTO ");
    sql_append_qualified(&pg->sql, pg->schema, "positions");
    sql_append(&pg->sql,
               " AS p (origin, topic, partition, seq, commit_time, kafka_offset, sysid, "
               "timeline, mark_time, source_wal_lsn, applied_at, version, resync, wait_gen, "
               "kafka_high_watermark) VALUES ($1, $2, "
               "$3::integer, $4::pg_lsn, $5::timestamptz, $6::bigint, $7, $8::integer, "
               "$9::timestamptz, $10::pg_lsn, now(), 1, $11::boolean, $13::bigint, $14::bigint) "
               "ON CONFLICT (origin, "
               "topic, partition) DO UPDATE SET seq = EXCLUDED.seq, commit_time = "
               "COALESCE(EXCLUDED.commit_time, p.commit_time), kafka_offset = "
               "EXCLUDED.kafka_offset, sysid = COALESCE(EXCLUDED.sysid, p.sysid), timeline = "
               "COALESCE(EXCLUDED.timeline, p.timeline), mark_time = GREATEST(EXCLUDED.mark_time, "
               "p.mark_time), source_wal_lsn = GREATEST(EXCLUDED.source_wal_lsn, "
               "p.source_wal_lsn), applied_at = now(), version = p.version + 1, resync = "
               "EXCLUDED.resync, wait_gen = EXCLUDED.wait_gen, kafka_high_watermark = "
               "COALESCE(EXCLUDED.kafka_high_watermark, p.kafka_high_watermark) "
               "WHERE p.version = $12::bigint RETURNING version) "
               "SELECT CASE WHEN v = $12::bigint + 1 THEN v ELSE ");
    /* an error, not an empty result, so that the COMMIT queued behind it cannot run */
    sql_append_qualified(&pg->sql, pg->schema, "fence_failed");
    sql_append(&pg->sql, "($1) END FROM (SELECT (SELECT version FROM w) AS v) s");
    return sql_buf_status(&pg->sql);
}

/* pg_notify('xdcr_applied', vals[0]): `xdcr wait` listeners look at the position again */
static int send_notify(cons_pg_t *pg, const char *const *vals, xdcr_error_t *err)
{
    if (push_fixed(pg, PX_OTHER, FX_NOTIFY, "SELECT pg_catalog.pg_notify('xdcr_applied', $1)", 1,
                   err) == NULL)
        return err->code;
    return send_fixed(pg, FX_NOTIFY, 1, vals, err);
}

int cons_pg_put_position(cons_pg_t *pg, const cons_pos_write_t *w, xdcr_error_t *err)
{
    char part[16], seq[XDCR_LSN_STRLEN], ct[40], off[24], sysid[24], tli[16], mt[40];
    char wal[XDCR_LSN_STRLEN], ver[24], gen[24], hw[24], par[16];
    const char *vals[14];
    px_t *x;
    int rc;

    if (!pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no batch is open");
    if (group_flush(pg, err) != 0)
        return err->code;
    pg->adv_turn = NULL;
    if (w->advance) {
        /* the next generation's lock first, so a waiter that reads it finds it held */
        turn_t *t = turn_get(pg, w->origin);

        if (t == NULL)
            return oom(err);
        pg->adv_turn = t;
        pg->adv_parity = (int)(w->wait_gen & 1);
        pg->adv_locked = false;
        if (!t->held[pg->adv_parity]) {
            vals[0] = t->key;
            snprintf(par, sizeof(par), "%d", pg->adv_parity);
            vals[1] = par;
            x = push_fixed(pg, PX_WAITLOCK, FX_TRYLOCK,
                           "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1), "
                           "$2::integer)",
                           2, err);
            if (x == NULL || (rc = send_fixed(pg, FX_TRYLOCK, 2, vals, err)) != 0)
                return err->code;
        }
        vals[0] = w->origin;
        if ((rc = send_notify(pg, vals, err)) != 0)
            return rc;
    } else if (w->notify) {
        vals[0] = w->origin;
        if ((rc = send_notify(pg, vals, err)) != 0)
            return rc;
    }
    if (!pg->fixed[FX_POSITION] && build_position_sql(pg) != 0)
        return oom(err);
    snprintf(part, sizeof(part), "%d", (int)w->partition);
    snprintf(off, sizeof(off), "%" PRId64, w->kafka_offset);
    snprintf(sysid, sizeof(sysid), "%" PRIu64, w->sysid);
    snprintf(tli, sizeof(tli), "%u", w->timeline);
    snprintf(ver, sizeof(ver), "%" PRId64, w->expect_version);
    snprintf(gen, sizeof(gen), "%" PRId64, w->wait_gen);
    snprintf(hw, sizeof(hw), "%" PRId64, w->high_watermark);
    vals[0] = w->origin;
    vals[1] = w->topic;
    vals[2] = part;
    vals[3] = xdcr_lsn_format(w->seq, seq);
    vals[4] = fmt_time(w->commit_time_us, ct, sizeof(ct));
    vals[5] = off;
    vals[6] = w->has_identity ? sysid : NULL;
    vals[7] = w->has_identity ? tli : NULL;
    vals[8] = fmt_time(w->mark_time_us, mt, sizeof(mt));
    vals[9] = w->source_wal_lsn != 0 ? xdcr_lsn_format(w->source_wal_lsn, wal) : NULL;
    vals[10] = w->resync ? "true" : "false";
    vals[11] = ver;
    vals[12] = gen;
    vals[13] = w->high_watermark >= 0 ? hw : NULL;
    pg->expect_version = w->expect_version;
    x = push_fixed(pg, PX_POSITION, FX_POSITION, pg->sql.data, 14, err);
    if (x == NULL)
        return err->code;
    x->expect = w->expect_version;
    return send_fixed(pg, FX_POSITION, 14, vals, err);
}

static bool is_text_payload(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i + len > n)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
            (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
            return false; /* overlong, surrogate, above U+10FFFF */
        i += len;
    }
    return true;
}

static char *base64(const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

int cons_pg_put_dead_letter(cons_pg_t *pg, const cons_dead_letter_t *d, xdcr_error_t *err)
{
    char part[16], off[24], seq[XDCR_LSN_STRLEN], clsn[XDCR_LSN_STRLEN];
    const char *vals[10];
    char *payload = NULL;
    bool text = d->payload != NULL && is_text_payload(d->payload, d->len);
    px_t *x;
    int rc;

    if (!pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no batch is open");
    if (group_flush(pg, err) != 0)
        return err->code;
    if (d->payload != NULL) {
        if (text) {
            /* not strndup: the payload is not NUL-terminated */
            payload = malloc(d->len + 1);
            if (payload != NULL) {
                memcpy(payload, d->payload, d->len);
                payload[d->len] = '\0';
            }
        } else {
            payload = base64(d->payload, d->len);
        }
        if (payload == NULL)
            return oom(err);
    }
    sql_buf_reset(&pg->sql);
    sql_append(&pg->sql, "INSERT INTO ");
    sql_append_qualified(&pg->sql, pg->schema, "dead_letters");
    sql_append(&pg->sql, " (origin, topic, partition, kafka_offset, seq, commit_lsn, table_name, "
                         "error, payload, payload_encoding) VALUES ($1, $2, $3::integer, "
                         "$4::bigint, $5::pg_lsn, $6::pg_lsn, $7, $8, $9, $10)");
    snprintf(part, sizeof(part), "%d", (int)d->partition);
    snprintf(off, sizeof(off), "%" PRId64, d->kafka_offset);
    vals[0] = d->origin;
    vals[1] = d->topic;
    vals[2] = part;
    vals[3] = off;
    vals[4] = d->seq != 0 ? xdcr_lsn_format(d->seq, seq) : NULL;
    vals[5] = d->commit_lsn != 0 ? xdcr_lsn_format(d->commit_lsn, clsn) : NULL;
    vals[6] = d->table_name;
    vals[7] = d->error;
    vals[8] = payload;
    vals[9] = text ? "json" : "base64";
    if (sql_buf_status(&pg->sql) != 0) {
        free(payload);
        return oom(err);
    }
    x = push_px(pg, PX_OTHER, err);
    if (x == NULL) {
        free(payload);
        return err->code;
    }
    x->offset = d->kafka_offset;
    rc = send_params(pg, x, pg->sql.data, 10, vals, err);
    free(payload);
    return rc;
}

int cons_pg_put_skip_done(cons_pg_t *pg, const cons_skip_done_t *s, xdcr_error_t *err)
{
    char id[24], part[16], off[24], seq[XDCR_LSN_STRLEN], clsn[XDCR_LSN_STRLEN];
    const char *vals[7];
    px_t *x;

    if (!pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no batch is open");
    if (group_flush(pg, err) != 0)
        return err->code;
    sql_buf_reset(&pg->sql);
    sql_append(&pg->sql, "WITH done AS (UPDATE ");
    sql_append_qualified(&pg->sql, pg->schema, "skip_requests");
    sql_append(&pg->sql, " SET done_at = now(), done_seq = $5::pg_lsn, done_offset = $4::bigint "
                         "WHERE id = $1::bigint RETURNING id) INSERT INTO ");
    sql_append_qualified(&pg->sql, pg->schema, "audit");
    sql_append(&pg->sql, " (action, origin, detail) SELECT 'transaction_skipped', $2::text, "
                         "pg_catalog.jsonb_build_object('request_id', $1::bigint, 'topic', "
                         "$3::text, 'partition', $7::integer, 'kafka_offset', $4::bigint, 'seq', "
                         "$5::pg_lsn::text, 'commit_lsn', $6::text) FROM done");
    if (sql_buf_status(&pg->sql) != 0)
        return oom(err);
    snprintf(id, sizeof(id), "%" PRId64, s->request_id);
    snprintf(part, sizeof(part), "%d", (int)s->partition);
    snprintf(off, sizeof(off), "%" PRId64, s->kafka_offset);
    vals[0] = id;
    vals[1] = s->origin;
    vals[2] = s->topic;
    vals[3] = off;
    vals[4] = s->seq != 0 ? xdcr_lsn_format(s->seq, seq) : NULL;
    vals[5] = s->commit_lsn != 0 ? xdcr_lsn_format(s->commit_lsn, clsn) : NULL;
    vals[6] = part;
    x = push_px(pg, PX_OTHER, err);
    if (x == NULL)
        return err->code;
    return send_params(pg, x, pg->sql.data, 7, vals, err);
}

int cons_pg_wait_results(cons_pg_t *pg, xdcr_error_t *err)
{
    int rc;

    if (!pg->in_batch)
        return 0;
    rc = group_flush(pg, err);
    if (rc == 0)
        rc = drain(pg, 0, err);
    if (rc == 0 && pg->failed) {
        *err = pg->first_err;
        rc = err->code;
    }
    return rc;
}

/* Tombstone triggers created by the batch are in place once it committed, gone otherwise. */
static void settle_tracking(cons_pg_t *pg, bool committed)
{
    for (size_t i = 0; i < pg->ntables; i++) {
        tbl_t *tb = pg->tables[i];

        if (tb->track_pending) {
            tb->track_pending = false;
            tb->tracked = committed;
        }
    }
}

/* Stamp the open target transaction with the source's commit LSN and time (the replication
 * origin's progress, and the commit timestamp PostgreSQL records for its rows). */
static int send_xact_setup(cons_pg_t *pg, xdcr_lsn_t origin_lsn, int64_t origin_time_us,
                           xdcr_error_t *err)
{
    char lsn[XDCR_LSN_STRLEN], ts[40];
    const char *vals[2];

    if (push_fixed(pg, PX_OTHER, FX_XACT_SETUP,
                   "SELECT pg_catalog.pg_replication_origin_xact_setup($1::pg_lsn, "
                   "COALESCE($2::timestamptz, now()))",
                   2, err) == NULL)
        return err->code;
    vals[0] = xdcr_lsn_format(origin_lsn, lsn);
    vals[1] = fmt_time(origin_time_us, ts, sizeof(ts));
    return send_fixed(pg, FX_XACT_SETUP, 2, vals, err);
}

int cons_pg_subcommit(cons_pg_t *pg, xdcr_lsn_t origin_lsn, int64_t origin_time_us,
                      xdcr_error_t *err)
{
    px_t *x;
    int rc;

    if ((rc = batch_usable(pg, err)) != 0)
        return rc;
    if ((rc = group_flush(pg, err)) != 0)
        return rc;
    if (origin_lsn != 0 && (rc = send_xact_setup(pg, origin_lsn, origin_time_us, err)) != 0)
        return rc;
    /* an aborted transaction never gets here: the pipeline skips all up to the next Sync */
    x = push_px(pg, PX_OTHER, err);
    if (x == NULL)
        return err->code;
    if ((rc = send_params(pg, x, "COMMIT", 0, NULL, err)) != 0)
        return rc;
    pg->copies_in_txn = 0;
    x = push_px(pg, PX_OTHER, err);
    if (x == NULL)
        return err->code;
    return send_params(pg, x, "BEGIN", 0, NULL, err);
}

/* Leave pipeline mode after every result has been read; false when the session is unusable. */
static bool end_pipeline(cons_pg_t *pg)
{
    xdcr_error_t e;
    px_t *x;

    pg->in_batch = false;
    if (!cons_pg_is_connected(pg))
        return false;
    if (!pg->sync_sent) {
        /* also after an error: the server skips everything up to the next Sync */
        x = push_px(pg, PX_SYNC, &e);
        if (x == NULL || PQpipelineSync(pg->conn) == 0)
            return false;
        pg->sync_sent = true;
    }
    if (drain(pg, 0, &e) != 0)
        return false;
    return PQexitPipelineMode(pg->conn) == 1;
}

int cons_pg_commit(cons_pg_t *pg, xdcr_lsn_t origin_lsn, int64_t origin_time_us,
                   cons_pg_stats_t *stats, xdcr_error_t *err)
{
    px_t *x;
    int rc = 0;

    if (!pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "no batch is open");
    if (group_flush(pg, err) != 0)
        return err->code;
    /* every FORM_FAST update's row count is known before COMMIT can be sent */
    if (pg->fast_sent && !pg->failed && (rc = drain(pg, 0, err)) != 0)
        goto failed;
    if (pg->failed)
        goto failed;
    if (origin_lsn != 0 && (rc = send_xact_setup(pg, origin_lsn, origin_time_us, err)) != 0)
        goto failed;
    x = push_px(pg, PX_COMMIT, err);
    if (x == NULL)
        return err->code;
    if (PQsendQueryParams(pg->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 0) {
        rc = send_failed(pg, err);
        goto failed;
    }
    if (pg->adv_turn != NULL && pg->adv_turn->held[1 - pg->adv_parity]) {
        /* after COMMIT (skipped if it failed): wakes the waiters of the old generation */
        char par[16];
        const char *vals[2] = {pg->adv_turn->key, par};

        snprintf(par, sizeof(par), "%d", 1 - pg->adv_parity);
        x = push_fixed(pg, PX_WAITUNLOCK, FX_UNLOCK,
                       "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext($1), "
                       "$2::integer)",
                       2, err);
        if (x == NULL)
            return err->code;
        if (PQsendQueryPrepared(pg->conn, fixed_names[FX_UNLOCK], 2, vals, NULL, NULL, 0) == 0) {
            rc = send_failed(pg, err);
            goto failed;
        }
    }
    x = push_px(pg, PX_SYNC, err);
    if (x == NULL)
        return err->code;
    if (PQpipelineSync(pg->conn) == 0) {
        pg->qlen--;
        rc = conn_lost(pg, err);
        goto failed;
    }
    pg->sync_sent = true;
    rc = drain(pg, 0, err);
    if (rc != 0 || pg->failed || !pg->committed)
        goto failed;
    pg->fast_off = false;
    settle_tracking(pg, true);
    if (pg->adv_turn != NULL) {
        turn_t *t = pg->adv_turn;
        bool unknown = false;

        if (pg->adv_locked)
            t->held[pg->adv_parity] = true;
        if (t->held[1 - pg->adv_parity]) {
            if (pg->adv_unlocked)
                t->held[1 - pg->adv_parity] = false;
            else
                unknown = true;
        }
        pg->adv_turn = NULL;
        if (unknown) {
            /* which locks the session holds is unclear: a new session starts clean */
            cons_pg_disconnect(pg);
        }
    }
    if (pg->conn != NULL && !end_pipeline(pg)) {
        /* committed, but the session is unusable: start a new one next time */
        cons_pg_disconnect(pg);
    }
    if (stats != NULL)
        *stats = pg->stats;
    return 0;
failed:
    if (pg->failed)
        *err = pg->first_err;
    else if (rc == 0)
        rc = xdcr_error_set(err, XDCR_EPG, true, "the target did not confirm COMMIT");
    cons_pg_rollback(pg);
    return err->code != 0 ? err->code : rc;
}

void cons_pg_rollback(cons_pg_t *pg)
{
    settle_tracking(pg, false);
    group_reset(pg);
    if (pg->conn == NULL) {
        pg->in_batch = false;
        return;
    }
    if (pg->in_batch && !end_pipeline(pg)) {
        cons_pg_disconnect(pg);
        return;
    }
    pg->in_batch = false;
    if (strcmp(pg->failure.sqlstate, "42P01") == 0 || strcmp(pg->failure.sqlstate, "42703") == 0 ||
        strcmp(pg->failure.sqlstate, "42804") == 0)
        forget_all_tables(pg); /* the target's tables changed under us: read them again */
    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        PGresult *res = run(pg, "ROLLBACK", 0, NULL);

        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            cons_pg_disconnect(pg);
            return;
        }
        PQclear(res);
    }
    if (pg->adv_turn != NULL && pg->adv_locked &&
        !turn_lock(pg, pg->adv_turn, pg->adv_parity, false)) {
        /* session locks survive ROLLBACK; one that cannot be given back goes with the session */
        cons_pg_disconnect(pg);
        return;
    }
    pg->adv_turn = NULL;
    pg->adv_locked = false;
}

/* ---- outside batches ------------------------------------------------------------------------ */

int cons_pg_purge_tombstones(cons_pg_t *pg, int64_t retention_ms, int64_t *removed,
                             xdcr_error_t *err)
{
    char ms[24];
    const char *vals[1] = {ms};
    PGresult *res = NULL;
    sql_buf_t b;
    int rc;

    *removed = 0;
    if (pg->in_batch)
        return xdcr_error_set(err, XDCR_ESTATE, false, "a batch is open");
    if (!cons_pg_is_connected(pg))
        return not_connected(err);
    snprintf(ms, sizeof(ms), "%" PRId64, retention_ms);
    sql_buf_init(&b);
    sql_append(&b, "WITH d AS (DELETE FROM ");
    sql_append_qualified(&b, pg->schema, "tombstones");
    sql_append(&b, " WHERE deleted_at < pg_catalog.now() - $1::bigint * interval '1 millisecond' "
                   "RETURNING 1) SELECT count(*) FROM d");
    rc = sql_buf_status(&b) != 0
             ? oom(err)
             : exec_params(pg, b.data, 1, vals, &res, "could not remove expired tombstones", err);
    if (rc == 0)
        *removed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    sql_buf_free(&b);
    return rc;
}

int cons_pg_read_position(cons_pg_t *pg, const char *origin, const char *topic, int32_t partition,
                          cons_position_t *pos, xdcr_error_t *err)
{
    char part[16];
    const char *vals[3] = {origin, topic, part};
    PGresult *res = NULL;
    sql_buf_t b;
    int rc;

    memset(pos, 0, sizeof(*pos));
    snprintf(part, sizeof(part), "%d", (int)partition);
    sql_buf_init(&b);
    sql_append(&b, "SELECT seq::text, kafka_offset, sysid, timeline, version, resync, wait_gen, "
                   "(EXTRACT(epoch FROM commit_time) * 1000000)::bigint, "
                   "(EXTRACT(epoch FROM mark_time) * 1000000)::bigint, source_wal_lsn::text, "
                   "kafka_high_watermark FROM ");
    sql_append_qualified(&b, pg->schema, "positions");
    sql_append(&b, " WHERE origin = $1 AND topic = $2 AND partition = $3::integer");
    if (sql_buf_status(&b) != 0) {
        sql_buf_free(&b);
        return oom(err);
    }
    rc = exec_params(pg, b.data, 3, vals, &res, "could not read the stored position", err);
    sql_buf_free(&b);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        pos->exists = true;
        if (xdcr_lsn_parse(PQgetvalue(res, 0, 0), &pos->seq, err) != 0) {
            PQclear(res);
            return err->code;
        }
        pos->kafka_offset = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (!PQgetisnull(res, 0, 2) && !PQgetisnull(res, 0, 3)) {
            pos->has_identity = true;
            pos->sysid = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
            pos->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
        }
        pos->version = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        pos->resync = PQgetvalue(res, 0, 5)[0] == 't';
        pos->wait_gen = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        if (!PQgetisnull(res, 0, 7))
            pos->commit_time_us = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
        if (!PQgetisnull(res, 0, 8))
            pos->mark_time_us = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
        if (!PQgetisnull(res, 0, 9))
            (void)xdcr_lsn_parse(PQgetvalue(res, 0, 9), &pos->source_wal_lsn, NULL);
        pos->high_watermark =
            PQgetisnull(res, 0, 10) ? -1 : strtoll(PQgetvalue(res, 0, 10), NULL, 10);
    }
    PQclear(res);
    return 0;
}

int cons_pg_read_skips(cons_pg_t *pg, const char *origin, int64_t **ids, xdcr_lsn_t **lsns,
                       size_t *n, xdcr_error_t *err)
{
    const char *vals[1] = {origin};
    PGresult *res = NULL;
    sql_buf_t b;
    int rc, rows;

    *ids = NULL;
    *lsns = NULL;
    *n = 0;
    sql_buf_init(&b);
    sql_append(&b, "SELECT id, lsn::text FROM ");
    sql_append_qualified(&b, pg->schema, "skip_requests");
    sql_append(&b, " WHERE origin = $1 AND done_at IS NULL ORDER BY id");
    if (sql_buf_status(&b) != 0) {
        sql_buf_free(&b);
        return oom(err);
    }
    rc = exec_params(pg, b.data, 1, vals, &res, "could not read skip requests", err);
    sql_buf_free(&b);
    if (rc != 0)
        return rc;
    rows = PQntuples(res);
    if (rows > 0) {
        *ids = calloc((size_t)rows, sizeof(**ids));
        *lsns = calloc((size_t)rows, sizeof(**lsns));
        if (*ids == NULL || *lsns == NULL) {
            free(*ids);
            free(*lsns);
            *ids = NULL;
            *lsns = NULL;
            PQclear(res);
            return oom(err);
        }
    }
    for (int r = 0; r < rows; r++) {
        (*ids)[*n] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        if (xdcr_lsn_parse(PQgetvalue(res, r, 1), &(*lsns)[*n], NULL) == 0)
            (*n)++;
    }
    PQclear(res);
    return 0;
}

int cons_pg_record_halt(cons_pg_t *pg, const cons_halt_row_t *h, xdcr_error_t *err)
{
    char part[16], off[24], seq[XDCR_LSN_STRLEN], clsn[XDCR_LSN_STRLEN];
    const char *vals[9];
    sql_buf_t b;
    int rc;

    sql_buf_init(&b);
    sql_append(&b, "INSERT INTO ");
    sql_append_qualified(&b, pg->schema, "halts");
    sql_append(&b, " (origin, topic, partition, kind, kafka_offset, seq, commit_lsn, table_name, "
                   "error) VALUES ($1, $2, $3::integer, $4, $5::bigint, $6::pg_lsn, $7::pg_lsn, "
                   "$8, $9) ON CONFLICT (origin, topic, partition) DO UPDATE SET kind = "
                   "EXCLUDED.kind, kafka_offset = EXCLUDED.kafka_offset, seq = EXCLUDED.seq, "
                   "commit_lsn = EXCLUDED.commit_lsn, table_name = EXCLUDED.table_name, error = "
                   "EXCLUDED.error, halted_at = now()");
    if (sql_buf_status(&b) != 0) {
        sql_buf_free(&b);
        return oom(err);
    }
    snprintf(part, sizeof(part), "%d", (int)h->partition);
    snprintf(off, sizeof(off), "%" PRId64, h->kafka_offset);
    vals[0] = h->origin;
    vals[1] = h->topic;
    vals[2] = part;
    vals[3] = h->kind;
    vals[4] = h->kafka_offset >= 0 ? off : NULL;
    vals[5] = h->seq != 0 ? xdcr_lsn_format(h->seq, seq) : NULL;
    vals[6] = h->commit_lsn != 0 ? xdcr_lsn_format(h->commit_lsn, clsn) : NULL;
    vals[7] = h->table_name;
    vals[8] = h->error;
    rc = exec_params(pg, b.data, 9, vals, NULL, "could not record the halt", err);
    sql_buf_free(&b);
    return rc;
}

int cons_pg_clear_halt(cons_pg_t *pg, const char *origin, const char *topic, int32_t partition,
                       xdcr_error_t *err)
{
    char part[16];
    const char *vals[3] = {origin, topic, part};
    sql_buf_t b;
    int rc;

    snprintf(part, sizeof(part), "%d", (int)partition);
    sql_buf_init(&b);
    sql_append(&b, "DELETE FROM ");
    sql_append_qualified(&b, pg->schema, "halts");
    sql_append(&b, " WHERE origin = $1 AND topic = $2 AND partition = $3::integer");
    if (sql_buf_status(&b) != 0) {
        sql_buf_free(&b);
        return oom(err);
    }
    rc = exec_params(pg, b.data, 3, vals, NULL, "could not clear the halt", err);
    sql_buf_free(&b);
    return rc;
}
