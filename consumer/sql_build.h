/*
 * sql_build.h - the SQL text the consumer sends: quoted identifiers and literals, the upsert,
 * update (unchanged-TOAST columns left out, a missing row upserted) and delete statements per
 * target table and column set, TRUNCATE, and the DDL of the consumer's own schema (positions,
 * dead letters, audit, halts, operator functions, lag view). Pure: builds text, runs nothing.
 *
 * Statements take their values as parameters $1..$n in text form; the caller prepares them with
 * the target columns' type OIDs, so every PostgreSQL type is parsed by its own input function.
 */
#ifndef SQL_BUILD_H
#define SQL_BUILD_H

#include "xdcr/schema_check.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growing NUL-terminated string; after an allocation failure it stays failed and short. */
typedef struct sql_buf {
    char *data;
    size_t len, cap;
    bool failed;
} sql_buf_t;

void sql_buf_init(sql_buf_t *b);
void sql_buf_free(sql_buf_t *b);
void sql_buf_reset(sql_buf_t *b);
void sql_append(sql_buf_t *b, const char *s);
void sql_append_n(sql_buf_t *b, const char *s, size_t n); /* n bytes of s, NULs included */
void sql_appendf(sql_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "name" with embedded double quotes doubled; always quoted, so case and keywords survive. */
void sql_append_ident(sql_buf_t *b, const char *name);
/* "schema"."name" */
void sql_append_qualified(sql_buf_t *b, const char *schema, const char *name);
/* 'text' with embedded single quotes doubled (standard_conforming_strings = on). */
void sql_append_literal(sql_buf_t *b, const char *s);

/*
 * INSERT INTO t (c...) VALUES ($1..$n) ON CONFLICT (pk) DO UPDATE SET every non-key column of
 * cols = EXCLUDED (DO NOTHING when cols holds key columns only). cols are target column indexes;
 * parameter $i is cols[i-1]. The primary key columns must be among cols (XDCR_EINVAL).
 */
int sql_build_upsert(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n);

/*
 * Update by key, and upsert the row from the known columns when it is missing, in one statement:
 *   WITH upd AS (UPDATE t SET c = $i ... WHERE pk = $k ... RETURNING 1)
 *   INSERT INTO t (...) SELECT ... WHERE NOT EXISTS (SELECT 1 FROM upd)
 *   ON CONFLICT (pk) DO UPDATE SET ... = EXCLUDED...
 * The statement's row count is 1 when the row was missing (and inserted), 0 when updated.
 * Parameters: $1..$nset are set_cols; $nset+1..$nset+npk are the key that finds the row (the old
 * key when key_changed, else the current key). Without key_changed, set_cols must not contain
 * key columns; with it, set_cols must contain all of them (the new key). Columns whose values
 * are unchanged TOAST are simply not in set_cols, so the target keeps its value.
 */
int sql_build_update(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols, uint32_t nset,
                     bool key_changed);

/* DELETE FROM t WHERE pk = $1 AND ...; row count 0 means the row was missing. */
int sql_build_delete(sql_buf_t *b, const xdcr_table_t *t);

/*
 * Multi-row forms of the three statements above, for many rows of one table, operation and
 * column set in one statement: every parameter is an array holding one column's values in
 * array text form (row i of the statement is element i of every array), of the parameter type
 * sql_multi_param_type() gives: the column type's array type, or text[] cast to the column's
 * type by its name (xdcr_tcol_t.type_name). Same parameter order as the single-row forms. The
 * caller never puts two rows with the same key into one statement.
 *   upsert: INSERT ... SELECT FROM unnest(...) ON CONFLICT (pk) DO UPDATE ...
 *   update: rows found are updated, missing ones inserted from the known columns; the row count
 *           is the number of rows that were missing.
 *   delete: the row count is the number of rows deleted.
 */
int sql_build_multi_upsert(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n);
int sql_build_multi_update(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols,
                           uint32_t nset);
int sql_build_multi_delete(sql_buf_t *b, const xdcr_table_t *t);
/*
 * The update alone, for large groups: UPDATE ... FROM unnest(...) WHERE pk matches; the row
 * count is the number of rows found. Missing rows are not inserted: the caller checks the count
 * before it commits and applies the batch again with sql_build_multi_update() when it falls
 * short. nset > 0.
 */
int sql_build_multi_update_fast(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols,
                                uint32_t nset);

/* The parameter type of column c in the multi-row statements: its array type, or text[]. */
uint32_t sql_multi_param_type(const xdcr_table_t *t, uint32_t c);
/* Append one element of a text[] literal ("..." with " and \ escaped, or NULL for s == NULL);
 * first: no comma before it. The caller adds the braces. */
void sql_append_array_elem(sql_buf_t *b, const char *s, size_t len, bool first);

/* What a conflict-resolving statement needs besides the table (docs/active-active.md). */
typedef struct sql_resolve {
    const char *schema;     /* the consumer's schema (resolve(), conflicts, tombstones) */
    const char *policy;     /* last_writer_wins, apply_remote, keep_local or error */
    const char *own_origin; /* this DC's origin: the origin of local writes */
} sql_resolve_t;

/*
 * One remote change, applied under a conflict policy in a single statement: lock the local row,
 * decide with <schema>.resolve() (the local version is the commit timestamp and replication
 * origin of the row's xmin, or a tombstone), write a conflict row with both versions, then
 * change the row only when the decision says so. The statement returns one row (kind, apply):
 * kind is NULL when there was no conflict.
 *   op 'I': cols hold every column sent, key included; $1..$n.
 *   op 'U': cols are the non-key columns to set ($1..$n), the key follows ($n+1..$n+npk); a
 *           missing row is inserted from what is known. Key changes are not resolved (EINVAL).
 *   op 'D': n = 0; the key is $1..$npk; a tombstone records the delete.
 * After those: $e+1 the source commit time (timestamptz), $e+2 the source origin (text), $e+3
 * the source seq (pg_lsn), where e = n for 'I' and n + npk otherwise.
 */
int sql_build_resolved(sql_buf_t *b, const xdcr_table_t *t, char op, const uint32_t *cols,
                       uint32_t n, const sql_resolve_t *rs);

/* TRUNCATE t1, t2 [RESTART IDENTITY] [CASCADE] */
int sql_build_truncate(sql_buf_t *b, const xdcr_table_t *const *ts, uint32_t n,
                       bool restart_identity, bool cascade);

/* Version of the schema the DDL below creates (stored in <schema>.meta). */
#define SQL_SCHEMA_VERSION 1

/*
 * The consumer's own schema, idempotent (IF NOT EXISTS / OR REPLACE), as one script for a single
 * transaction: meta, positions, dead_letters, audit, halts, skip_requests, the operator
 * functions skip_transaction(), accept_gap(), accept_source_identity() and the lag view.
 * Run it after taking an advisory lock so concurrent starts do not race.
 */
int sql_build_schema_ddl(sql_buf_t *b, const char *schema);

/* Returns 0, or XDCR_ENOMEM when the buffer failed. */
int sql_buf_status(const sql_buf_t *b);

#endif
