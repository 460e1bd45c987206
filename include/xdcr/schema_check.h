/*
 * schema_check.h - the target table model (columns, types and primary key as read from
 * pg_catalog) and the preflight rules: does a source relation fit its target table, and how do
 * its columns map. Every mismatch is reported, not only the first. Pure: no I/O; the consumer
 * (consumer/pg_apply.c) and `xdcr check` (cli/check.c) read the catalog rows, this module
 * judges them.
 */
#ifndef XDCR_SCHEMA_CHECK_H
#define XDCR_SCHEMA_CHECK_H

#include "xdcr/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * SQL text only (this module runs no queries): how both readers of a catalog name a type, the
 * way the forwarder names source types: format_type(oid, -1) for pg_catalog types,
 * quote_ident(nspname).quote_ident(typname) else. TY is the alias of the pg_type row, TN of its
 * pg_namespace row (string literals).
 */
#define XDCR_SCHEMA_CHECK_TYPE_NAME_OF(TY, TN)                                                     \
    "CASE WHEN " TN ".nspname = 'pg_catalog' THEN pg_catalog.format_type(" TY ".oid, -1)"          \
    " ELSE pg_catalog.quote_ident(" TN ".nspname) OPERATOR(pg_catalog.||) '.'"                     \
    " OPERATOR(pg_catalog.||) pg_catalog.quote_ident(" TY ".typname) END"

/* A column's type: the aliases ty (pg_type: the column's type, or what the reader names it by)
 * and tn (its pg_namespace). */
#define XDCR_SCHEMA_CHECK_TYPE_NAME_SQL XDCR_SCHEMA_CHECK_TYPE_NAME_OF("ty", "tn")

/*
 * The query that reads one target table ($1 schema, $2 table name) for xdcr_table_t, shared by
 * the consumer and `xdcr check`. No rows when the table does not exist; else one row per column
 * (attname NULL when it has none): relid, relkind, attname, atttypid, type name, not null, has
 * default, generated, position in the primary key (0 when none), the OID of the type's array
 * type when a column of many rows can be sent as one (0 when not: see xdcr_tcol_t.array_oid),
 * a domain's base type name (NULL when not a domain). Read a row with
 * xdcr_table_add_catalog_row().
 */
extern const char xdcr_schema_check_target_sql[];
#define XDCR_SCHEMA_CHECK_TARGET_NCOLS 11

/* One target column as read from pg_attribute (dropped columns excluded). */
typedef struct xdcr_tcol {
    char *name;
    char *type_name;   /* named as the source names types: format_type(oid, -1) for
                          pg_catalog types, quote_ident(nspname).quote_ident(typname) else */
    uint32_t type_oid; /* the target's type OID, sent as the parameter type */
    bool not_null;
    bool has_default; /* a DEFAULT, identity or serial: may be left out of an INSERT */
    bool generated;   /* GENERATED ALWAYS AS (...) STORED: cannot be written */
    uint32_t pk_pos;  /* 1-based position in the primary key, 0 when not a key column */
    /* The type's array type, for multi-row statements: their parameters are arrays of this
     * type, read by the type's own input function per element. 0 when the type is itself an
     * array (unnest would flatten it), has no array type, or separates array elements by
     * something other than a comma (box): such columns travel as text[] and are cast. */
    uint32_t array_oid;
    /* A domain's base type, named like type_name: pgoutput describes a domain column by its
     * base type, so that is what the source names. NULL when the column is not a domain. */
    char *base_type_name;
} xdcr_tcol_t;

typedef struct xdcr_table {
    char *schema;
    char *name;
    uint32_t relid;
    char relkind; /* 'r' table, 'p' partitioned table, others are rejected */
    uint32_t ncols;
    xdcr_tcol_t *cols;
    uint32_t npk;
    uint32_t *pk; /* column indexes in key order, npk entries */
} xdcr_table_t;

/*
 * Add the column of one row of xdcr_schema_check_target_sql: v[i] is the text of result column
 * i (XDCR_SCHEMA_CHECK_TARGET_NCOLS of them), NULL for SQL NULL. A row without a column (a
 * table that has none) adds nothing. 0, or XDCR_ENOMEM.
 */
int xdcr_table_add_catalog_row(xdcr_table_t *t, const char *const *v);

/* An empty table description; add columns, then xdcr_table_finish(). NULL when out of memory. */
xdcr_table_t *xdcr_table_new(const char *schema, const char *name, uint32_t relid, char relkind);
/* Copies its strings. Returns 0 or XDCR_ENOMEM. */
int xdcr_table_add_column(xdcr_table_t *t, const xdcr_tcol_t *col);
/* Build the primary key index from pk_pos; XDCR_EINVAL when the positions have holes. */
int xdcr_table_finish(xdcr_table_t *t);
void xdcr_table_free(xdcr_table_t *t);
/* Index of the column named name, or -1. */
int xdcr_table_find_column(const xdcr_table_t *t, const char *name);

/* A growing list of problem descriptions (lower case, no final period). */
typedef struct xdcr_problems {
    char **items;
    size_t count, cap;
    bool oom; /* an item could not be stored */
} xdcr_problems_t;

void xdcr_problems_init(xdcr_problems_t *p);
void xdcr_problems_free(xdcr_problems_t *p);
void xdcr_problems_add(xdcr_problems_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* All items joined with "; " into buf (truncated to fit, always NUL-terminated). */
char *xdcr_problems_join(const xdcr_problems_t *p, char *buf, size_t len);

/*
 * May a value of source type src_type (text representation) be stored in a target column of
 * type tgt_type without loss or error for every value? Equal names, text-like targets and the
 * usual widenings (smallint -> integer -> bigint -> numeric, real -> double precision,
 * json <-> jsonb, varchar <-> text) are compatible; an empty src_type (unknown) is accepted.
 */
bool xdcr_types_compatible(const char *src_type, const char *tgt_type);

/*
 * The format_type() name of a pg_catalog type known by its internal name ("int4" -> "integer",
 * "timestamptz" -> "timestamp with time zone"); any other name is returned as it is. pgoutput's
 * Type messages (sent for domains) carry internal names.
 */
const char *xdcr_type_canonical(const char *name);

/*
 * Check a table for the `tables` preflight (no source description): exists, is a table, has a
 * primary key. t is NULL when the table does not exist. Returns the number of problems added.
 */
size_t xdcr_check_table(const char *schema, const char *table, const xdcr_table_t *t,
                        xdcr_problems_t *out);

/*
 * Check a source relation against its target table t (NULL when missing) and fill map[i] with
 * the target column index of source column i (src->ncols entries; -1 when it has none).
 * Reports: missing table, not a table, no primary key, every source column missing at the
 * target or generated there, every incompatible type, primary key columns the source does not
 * send or that are not in the source's replica identity, NOT NULL target columns without a
 * default that the source does not send. Returns the number of problems added (0 = usable).
 */
size_t xdcr_check_relation(const xdcr_relation_t *src, const xdcr_table_t *t, int32_t *map,
                           xdcr_problems_t *out);

#endif
