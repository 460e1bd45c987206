/*
 * cons_check.h - the target table model (columns, types and primary key as read from
 * pg_catalog) and the preflight rules: does a source relation fit its target table, and how do
 * its columns map. Every mismatch is reported, not only the first. Pure: no I/O; pg_apply.c
 * reads the catalog rows, this module judges them.
 */
#ifndef CONS_CHECK_H
#define CONS_CHECK_H

#include "xdcr/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One target column as read from pg_attribute (dropped columns excluded). */
typedef struct cons_tcol {
    char *name;
    char *type_name;   /* named as the source names types: format_type(oid, -1) for
                          pg_catalog types, quote_ident(nspname).quote_ident(typname) else */
    uint32_t type_oid; /* the target's type OID, sent as the parameter type */
    bool not_null;
    bool has_default; /* a DEFAULT, identity or serial: may be left out of an INSERT */
    bool generated;   /* GENERATED ALWAYS AS (...) STORED: cannot be written */
    uint32_t pk_pos;  /* 1-based position in the primary key, 0 when not a key column */
} cons_tcol_t;

typedef struct cons_table {
    char *schema;
    char *name;
    uint32_t relid;
    char relkind; /* 'r' table, 'p' partitioned table, others are rejected */
    uint32_t ncols;
    cons_tcol_t *cols;
    uint32_t npk;
    uint32_t *pk; /* column indexes in key order, npk entries */
} cons_table_t;

/* An empty table description; add columns, then cons_table_finish(). NULL when out of memory. */
cons_table_t *cons_table_new(const char *schema, const char *name, uint32_t relid, char relkind);
/* Copies its strings. Returns 0 or XDCR_ENOMEM. */
int cons_table_add_column(cons_table_t *t, const cons_tcol_t *col);
/* Build the primary key index from pk_pos; XDCR_EINVAL when the positions have holes. */
int cons_table_finish(cons_table_t *t);
void cons_table_free(cons_table_t *t);
/* Index of the column named name, or -1. */
int cons_table_find_column(const cons_table_t *t, const char *name);

/* A growing list of problem descriptions (lower case, no final period). */
typedef struct cons_problems {
    char **items;
    size_t count, cap;
    bool oom; /* an item could not be stored */
} cons_problems_t;

void cons_problems_init(cons_problems_t *p);
void cons_problems_free(cons_problems_t *p);
void cons_problems_add(cons_problems_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* All items joined with "; " into buf (truncated to fit, always NUL-terminated). */
char *cons_problems_join(const cons_problems_t *p, char *buf, size_t len);

/*
 * May a value of source type src_type (text representation) be stored in a target column of
 * type tgt_type without loss or error for every value? Equal names, text-like targets and the
 * usual widenings (smallint -> integer -> bigint -> numeric, real -> double precision,
 * json <-> jsonb, varchar <-> text) are compatible; an empty src_type (unknown) is accepted.
 */
bool cons_types_compatible(const char *src_type, const char *tgt_type);

/*
 * Check a table for the `tables` preflight (no source description): exists, is a table, has a
 * primary key. t is NULL when the table does not exist. Returns the number of problems added.
 */
size_t cons_check_table(const char *schema, const char *table, const cons_table_t *t,
                        cons_problems_t *out);

/*
 * Check a source relation against its target table t (NULL when missing) and fill map[i] with
 * the target column index of source column i (src->ncols entries; -1 when it has none).
 * Reports: missing table, not a table, no primary key, every source column missing at the
 * target or generated there, every incompatible type, primary key columns the source does not
 * send or that are not in the source's replica identity, NOT NULL target columns without a
 * default that the source does not send. Returns the number of problems added (0 = usable).
 */
size_t cons_check_relation(const xdcr_relation_t *src, const cons_table_t *t, int32_t *map,
                           cons_problems_t *out);

#endif
