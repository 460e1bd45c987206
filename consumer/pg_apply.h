/*
 * pg_apply.h - the consumer's only libpq user: the apply session on the target database.
 * Creates the consumer's schema, reads and writes positions, looks up target tables in
 * pg_catalog (cached; refreshed when a message names a column the cache does not know), and
 * applies batches in pipeline mode with statements prepared per table, operation and column set,
 * under a replication origin named after the source origin. Maps libpq errors and SQLSTATEs to
 * xdcr errors (retriable or not); knows nothing about Kafka.
 */
#ifndef CONS_PG_APPLY_H
#define CONS_PG_APPLY_H

#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/log.h"
#include "xdcr/lsn.h"
#include "xdcr/schema_check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cons_pg cons_pg_t;

typedef struct cons_pg_opts {
    const char *conninfo;
    const char *password;   /* may be NULL */
    const char *schema;     /* the consumer's own schema */
    bool replica_role;      /* SET session_replication_role = replica */
    bool truncate_ignore;   /* TRUNCATE messages are not applied */
    const char *own_origin; /* this DC's origin, recorded in <schema>.meta; may be NULL */
    /* active-active: every change is applied by a conflict-resolving statement (own_origin is
       then required), and local deletes of applied tables leave tombstones */
    bool active_active;
    bool multi_row;              /* consecutive rows of one table and operation: one statement */
    uint32_t copy_min_rows;      /* a group of at least this many inserts goes by COPY (0: never) */
    bool async_commit;           /* SET synchronous_commit = off (positions are re-read after any
                                    reconnection, so a commit lost in a target crash is applied again) */
    const char *conflict_policy; /* default policy; NULL: last_writer_wins */
    const char *table_policies;  /* "schema.table=policy,..." overrides, or NULL */
    void (*tick)(void *ctx);     /* called every 250 ms at least while waiting for the server */
    void *tick_ctx;
} cons_pg_opts_t;

/* A stored position (one row of <schema>.positions). */
typedef struct cons_position {
    bool exists;
    xdcr_lsn_t seq;
    int64_t kafka_offset; /* next offset to read */
    bool has_identity;    /* sysid/timeline known */
    uint64_t sysid;
    uint32_t timeline;
    int64_t version;           /* bumped by every writer; 0 when there is no row */
    bool resync;               /* set by accept_gap: the next message starts a new chain */
    int64_t wait_gen;          /* read-your-writes generation (see wait_for) */
    int64_t commit_time_us;    /* source commit time of the last applied transaction, or 0 */
    int64_t mark_time_us;      /* source time of the last applied progress mark, or 0 */
    xdcr_lsn_t source_wal_lsn; /* source WAL position of the last applied mark, or 0 */
    int64_t high_watermark;    /* partition high watermark at the last commit, or -1 */
} cons_position_t;

/* The position written at the end of a batch, fenced on the version read before. */
typedef struct cons_pos_write {
    const char *origin, *topic;
    int32_t partition;
    xdcr_lsn_t seq;
    int64_t commit_time_us; /* 0: keep the stored one */
    int64_t kafka_offset;   /* next offset to read */
    bool has_identity;
    uint64_t sysid;
    uint32_t timeline;
    int64_t mark_time_us;      /* 0: keep */
    xdcr_lsn_t source_wal_lsn; /* 0: keep */
    bool resync;
    int64_t expect_version; /* the version read or last written; 0 = no row expected */
    bool advance;           /* seq moved: notify xdcr_applied, move the wait turnstile */
    bool notify;            /* without advance: notify xdcr_applied only (a sub-commit) */
    int64_t wait_gen;       /* generation to store: the stored one, + 1 when advance */
    int64_t high_watermark; /* partition high watermark known now, or -1 (keep) */
} cons_pos_write_t;

typedef struct cons_dead_letter {
    const char *origin, *topic;
    int32_t partition;
    int64_t kafka_offset;
    xdcr_lsn_t seq, commit_lsn; /* 0 when unknown */
    const char *table_name;     /* or NULL */
    const char *error;
    const void *payload; /* stored as text when valid UTF-8 without NUL, else base64 */
    size_t len;
} cons_dead_letter_t;

typedef struct cons_skip_done {
    int64_t request_id;
    const char *origin, *topic;
    int32_t partition;
    int64_t kafka_offset;
    xdcr_lsn_t seq, commit_lsn;
} cons_skip_done_t;

typedef struct cons_halt_row {
    const char *origin, *topic;
    int32_t partition;
    const char *kind;     /* "gap", "apply", "decode", "schema", "identity" */
    int64_t kafka_offset; /* -1 when unknown */
    xdcr_lsn_t seq, commit_lsn;
    const char *table_name; /* or NULL */
    const char *error;
} cons_halt_row_t;

/* Counters of one batch, valid after a successful commit. */
/* Conflict kinds, in the order of cons_conflict_kind_names (docs/active-active.md). */
#define CONS_CONFLICT_KINDS 8
extern const char *const cons_conflict_kind_names[CONS_CONFLICT_KINDS];

/* The conflict policies accepted by resolve(); true for a known name. */
bool cons_conflict_policy_valid(const char *name);

typedef struct cons_pg_stats {
    uint64_t inserts, updates, deletes, truncates;
    uint64_t missing_updates; /* updates of a missing row, upserted from the known columns */
    uint64_t missing_deletes; /* deletes of a missing row */
    uint64_t copies;          /* insert groups applied by COPY */
    uint64_t copy_fallbacks;  /* ... that found a row there already and went by upsert instead */
    uint64_t conflicts[CONS_CONFLICT_KINDS][2]; /* by kind, [0] kept local, [1] applied remote */
} cons_pg_stats_t;

/* Where a failed batch failed. */
typedef struct cons_pg_failure {
    int64_t offset;   /* Kafka offset of the message whose statement failed; -1 when the
                         failure belongs to no message (COMMIT, position, connection) */
    char table[256];  /* "schema.table" or "" */
    char op;          /* 'I', 'U', 'D', 'T' or 0 */
    char sqlstate[6]; /* "" when none */
} cons_pg_failure_t;

cons_pg_t *cons_pg_new(const cons_pg_opts_t *opts, const xdcr_log_t *lg);

/* Outside a batch: delete tombstones older than retention_ms; *removed is their number. */
int cons_pg_purge_tombstones(cons_pg_t *pg, int64_t retention_ms, int64_t *removed,
                             xdcr_error_t *err);
void cons_pg_free(cons_pg_t *pg);

/* Connect and prepare the session (settings, role). Failures are retriable XDCR_EPGCONN, or
 * non-retriable XDCR_ECONFIG when the role lacks a needed privilege. */
int cons_pg_connect(cons_pg_t *pg, xdcr_error_t *err);
void cons_pg_disconnect(cons_pg_t *pg);
bool cons_pg_is_connected(const cons_pg_t *pg);
/* Without blocking: has the server closed the idle session (stopped, restarted, terminated)?
 * Disconnects then and returns false; true while the session looks usable. */
bool cons_pg_check_alive(cons_pg_t *pg);

/* Create or upgrade the consumer's schema in one transaction (XDCR_ESTATE when the stored
 * schema version is newer than this consumer). */
int cons_pg_ensure_schema(cons_pg_t *pg, xdcr_error_t *err);

/* Check the `tables` option (comma list of schema.table): every problem goes to out. */
int cons_pg_check_tables(cons_pg_t *pg, const char *tables_csv, xdcr_problems_t *out,
                         xdcr_error_t *err);

/* Read one position row (pos->exists false when there is none). Outside a batch. */
int cons_pg_read_position(cons_pg_t *pg, const char *origin, const char *topic, int32_t partition,
                          cons_position_t *pos, xdcr_error_t *err);

/* Pending skip requests of an origin: *ids and *lsns malloc'd (n entries), caller frees. */
int cons_pg_read_skips(cons_pg_t *pg, const char *origin, int64_t **ids, xdcr_lsn_t **lsns,
                       size_t *n, xdcr_error_t *err);

/*
 * The read-your-writes turnstile (docs/lag.md): hold the session advisory lock
 * (hashtext('xdcr:' || origin), gen % 2) and not the other parity, outside a batch. Never
 * blocks: a lock held elsewhere is left alone (SQL waiters then poll until the next commit).
 * Release drops both when the origin is no longer applied here. Commits with advance set move
 * the lock to the next parity: try-lock before, unlock of the old one after COMMIT.
 */
int cons_pg_turnstile_hold(cons_pg_t *pg, const char *origin, int64_t gen, xdcr_error_t *err);
void cons_pg_turnstile_release(cons_pg_t *pg, const char *origin);

/* Record or clear a halted partition in <schema>.halts (outside a batch). */
int cons_pg_record_halt(cons_pg_t *pg, const cons_halt_row_t *h, xdcr_error_t *err);
int cons_pg_clear_halt(cons_pg_t *pg, const char *origin, const char *topic, int32_t partition,
                       xdcr_error_t *err);

/* ---- batches: one target transaction, one origin ------------------------------------------ */

/* Set the session's replication origin to xdcr_<origin> (created when missing), enter pipeline
 * mode and open the transaction. */
int cons_pg_begin(cons_pg_t *pg, const char *origin, xdcr_error_t *err);
bool cons_pg_in_batch(const cons_pg_t *pg);

/*
 * Queue one change of msg (offset: its Kafka offset, for error attribution). Looks the table up
 * (XDCR_ESCHEMA listing every mismatch), builds and prepares the statement on first use.
 * Changes to tables of the consumer's own schema and MESSAGE changes are ignored; TRUNCATE
 * follows the policy. A failure of an earlier statement may surface here.
 */
int cons_pg_apply_change(cons_pg_t *pg, const xdcr_message_t *msg, const xdcr_change_t *ch,
                         int64_t offset, xdcr_error_t *err);

/* Queue the position write (with advance: also NOTIFY xdcr_applied, payload the origin, and
 * the turnstile's next lock), a dead letter, or a finished skip request with its audit row. */
int cons_pg_put_position(cons_pg_t *pg, const cons_pos_write_t *w, xdcr_error_t *err);
int cons_pg_put_dead_letter(cons_pg_t *pg, const cons_dead_letter_t *d, xdcr_error_t *err);
int cons_pg_put_skip_done(cons_pg_t *pg, const cons_skip_done_t *s, xdcr_error_t *err);

/* Wait until every queued statement has been executed (results read), e.g. at a crash point. */
int cons_pg_wait_results(cons_pg_t *pg, xdcr_error_t *err);

/*
 * Inside a batch: commit the target transaction so far (stamped with origin_lsn and
 * origin_time_us, unless origin_lsn is 0) and begin the next one, in the same pipeline, without
 * waiting: several source transactions per round trip, each its own target transaction. The
 * caller has written the position first. A later failure of the batch leaves what was
 * sub-committed committed: the caller reads its positions again.
 */
int cons_pg_subcommit(cons_pg_t *pg, xdcr_lsn_t origin_lsn, int64_t origin_time_us,
                      xdcr_error_t *err);

/*
 * pg_replication_origin_xact_setup(origin_lsn, origin_time) when origin_lsn != 0, COMMIT, and
 * wait for every result. On failure the batch is rolled back (nothing committed) and
 * cons_pg_failure() says where it failed; XDCR_ESTATE (retriable) when the position row was
 * changed by someone else (operator action, another consumer).
 */
int cons_pg_commit(cons_pg_t *pg, xdcr_lsn_t origin_lsn, int64_t origin_time_us,
                   cons_pg_stats_t *stats, xdcr_error_t *err);

/* Abandon the open batch (ROLLBACK). Disconnects when the session is unusable. */
void cons_pg_rollback(cons_pg_t *pg);

/* Details of the last failed batch. */
const cons_pg_failure_t *cons_pg_failure(const cons_pg_t *pg);

#endif
