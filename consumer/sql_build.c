/*
 * sql_build.c - SQL text for applying changes (upsert, update with missing-row upsert, delete,
 * truncate) and the DDL of the consumer's own schema. Pure: no I/O.
 */
#include "sql_build.h"

#include "xdcr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer -----------------------------------------------------------------------------------
 */

void sql_buf_init(sql_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void sql_buf_free(sql_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void sql_buf_reset(sql_buf_t *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int sql_buf_status(const sql_buf_t *b)
{
    return b->failed || b->data == NULL ? XDCR_ENOMEM : 0;
}

static bool reserve(sql_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    char *d;
    size_t cap;

    if (b->failed)
        return false;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

static void append_n(sql_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sql_append(sql_buf_t *b, const char *s)
{
    append_n(b, s, strlen(s));
}

void sql_append_n(sql_buf_t *b, const char *s, size_t n)
{
    append_n(b, s, n);
}

void sql_appendf(sql_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void append_quoted(sql_buf_t *b, const char *s, char q)
{
    append_n(b, &q, 1);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == q)
            append_n(b, &q, 1);
        append_n(b, p, 1);
    }
    append_n(b, &q, 1);
}

void sql_append_ident(sql_buf_t *b, const char *name)
{
    append_quoted(b, name, '"');
}

void sql_append_qualified(sql_buf_t *b, const char *schema, const char *name)
{
    sql_append_ident(b, schema);
    sql_append(b, ".");
    sql_append_ident(b, name);
}

void sql_append_literal(sql_buf_t *b, const char *s)
{
    append_quoted(b, s, '\'');
}

/* ---- statements -------------------------------------------------------------------------------
 */

static bool in_list(const uint32_t *cols, uint32_t n, uint32_t c)
{
    for (uint32_t i = 0; i < n; i++)
        if (cols[i] == c)
            return true;
    return false;
}

/* ("a", "b", ...) of the key */
static void append_pk_list(sql_buf_t *b, const xdcr_table_t *t)
{
    sql_append(b, "(");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
    sql_append(b, ")");
}

/* "a" = $first AND "b" = $first+1 ... over the key */
static void append_key_match(sql_buf_t *b, const xdcr_table_t *t, uint32_t first)
{
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, " AND ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
        sql_appendf(b, " = $%u", first + k);
    }
}

/* ON CONFLICT (pk) DO UPDATE SET c = EXCLUDED.c ... for the non-key columns, or DO NOTHING */
static void append_on_conflict(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols,
                               uint32_t n)
{
    bool any = false;

    sql_append(b, " ON CONFLICT ");
    append_pk_list(b, t);
    for (uint32_t i = 0; i < n; i++) {
        const char *name = t->cols[cols[i]].name;

        if (t->cols[cols[i]].pk_pos > 0)
            continue;
        sql_append(b, any ? ", " : " DO UPDATE SET ");
        sql_append_ident(b, name);
        sql_append(b, " = EXCLUDED.");
        sql_append_ident(b, name);
        any = true;
    }
    if (!any)
        sql_append(b, " DO NOTHING");
}

static bool key_covered(const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    for (uint32_t k = 0; k < t->npk; k++)
        if (!in_list(cols, n, t->pk[k]))
            return false;
    return true;
}

/* "a", "b", ... over cols */
static void append_col_list(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[cols[i]].name);
    }
}

/* INSERT INTO "s"."t" ("a", ...) */
static void append_insert_into(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols,
                               uint32_t n)
{
    sql_append(b, "INSERT INTO ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " (");
    append_col_list(b, t, cols, n);
}

int sql_build_upsert(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    if (t->npk == 0 || n == 0 || !key_covered(t, cols, n))
        return XDCR_EINVAL;
    append_insert_into(b, t, cols, n);
    sql_append(b, ") VALUES (");
    for (uint32_t i = 0; i < n; i++)
        sql_appendf(b, "%s$%u", i > 0 ? ", " : "", i + 1);
    sql_append(b, ")");
    append_on_conflict(b, t, cols, n);
    return sql_buf_status(b);
}

int sql_build_update(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols, uint32_t nset,
                     bool key_changed)
{
    uint32_t key_first = nset + 1;
    bool any_key = false;

    if (t->npk == 0)
        return XDCR_EINVAL;
    for (uint32_t i = 0; i < nset; i++)
        if (t->cols[set_cols[i]].pk_pos > 0)
            any_key = true;
    if (key_changed ? !key_covered(t, set_cols, nset) : any_key)
        return XDCR_EINVAL;

    sql_append(b, "WITH upd AS (");
    if (nset == 0) {
        /* nothing to change in an existing row: only find out whether it is there */
        sql_append(b, "SELECT 1 FROM ");
        sql_append_qualified(b, t->schema, t->name);
        sql_append(b, " WHERE ");
        append_key_match(b, t, key_first);
    } else {
        sql_append(b, "UPDATE ");
        sql_append_qualified(b, t->schema, t->name);
        sql_append(b, " SET ");
        for (uint32_t i = 0; i < nset; i++) {
            if (i > 0)
                sql_append(b, ", ");
            sql_append_ident(b, t->cols[set_cols[i]].name);
            sql_appendf(b, " = $%u", i + 1);
        }
        sql_append(b, " WHERE ");
        append_key_match(b, t, key_first);
        sql_append(b, " RETURNING 1");
    }
    sql_append(b, ") INSERT INTO ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " (");
    for (uint32_t i = 0; i < nset; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[set_cols[i]].name);
    }
    if (!key_changed)
        for (uint32_t k = 0; k < t->npk; k++) {
            if (nset > 0 || k > 0)
                sql_append(b, ", ");
            sql_append_ident(b, t->cols[t->pk[k]].name);
        }
    sql_append(b, ") SELECT ");
    for (uint32_t i = 0; i < nset; i++)
        sql_appendf(b, "%s$%u", i > 0 ? ", " : "", i + 1);
    if (!key_changed)
        for (uint32_t k = 0; k < t->npk; k++)
            sql_appendf(b, "%s$%u", nset > 0 || k > 0 ? ", " : "", key_first + k);
    sql_append(b, " WHERE NOT EXISTS (SELECT 1 FROM upd)");
    append_on_conflict(b, t, set_cols, nset);
    return sql_buf_status(b);
}

int sql_build_delete(sql_buf_t *b, const xdcr_table_t *t)
{
    if (t->npk == 0)
        return XDCR_EINVAL;
    sql_append(b, "DELETE FROM ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " WHERE ");
    append_key_match(b, t, 1);
    return sql_buf_status(b);
}

/* ---- multi-row statements ------------------------------------------------------------------ */

/*
 * ROWS FROM (unnest($1), unnest($2::text[]), ...) AS u("a", "b", ...) over cols, then the key
 * when with_key. A column whose type has a usable array type (array_oid) arrives as an array of
 * that type (the parameter's type, see sql_multi_param_type): PostgreSQL reads each element
 * with the type's input function, once. Any other column arrives as text[] and is cast where it
 * is used (append_typed). On W3 (multi-row updates) typed arrays made the statement about 12%
 * faster than text[] and a cast per value.
 */
static void append_unnest(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n,
                          bool with_key)
{
    uint32_t total = n + (with_key ? t->npk : 0);

    sql_append(b, "ROWS FROM (");
    for (uint32_t i = 0; i < total; i++) {
        uint32_t c = i < n ? cols[i] : t->pk[i - n];

        sql_appendf(b, "%spg_catalog.unnest($%u%s)", i > 0 ? ", " : "", i + 1,
                    t->cols[c].array_oid != 0 ? "" : "::pg_catalog.text[]");
    }
    sql_append(b, ") AS u(");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[cols[i]].name);
    }
    for (uint32_t k = 0; with_key && k < t->npk; k++) {
        if (n + k > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
    sql_append(b, ")");
}

/* u."c", cast to its type when it arrived as text (see append_unnest) */
static void append_typed(sql_buf_t *b, const xdcr_table_t *t, uint32_t c)
{
    sql_append(b, "u.");
    sql_append_ident(b, t->cols[c].name);
    if (t->cols[c].array_oid == 0)
        sql_appendf(b, "::%s", t->cols[c].type_name);
}

uint32_t sql_multi_param_type(const xdcr_table_t *t, uint32_t c)
{
    return t->cols[c].array_oid != 0 ? t->cols[c].array_oid : 1009; /* text[] */
}

/* x."a" = u."a"::type AND ... over the key */
static void append_key_typed(sql_buf_t *b, const xdcr_table_t *t, const char *x)
{
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, " AND ");
        sql_appendf(b, "%s.", x);
        sql_append_ident(b, t->cols[t->pk[k]].name);
        sql_append(b, " = ");
        append_typed(b, t, t->pk[k]);
    }
}

static bool types_known(const xdcr_table_t *t)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].type_name == NULL || t->cols[i].type_name[0] == '\0')
            return false;
    return true;
}

int sql_build_multi_upsert(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    if (t->npk == 0 || n == 0 || !key_covered(t, cols, n) || !types_known(t))
        return XDCR_EINVAL;
    append_insert_into(b, t, cols, n);
    sql_append(b, ") SELECT ");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        append_typed(b, t, cols[i]);
    }
    sql_append(b, " FROM ");
    append_unnest(b, t, cols, n, false);
    append_on_conflict(b, t, cols, n);
    return sql_buf_status(b);
}

/* Can the multi-row update set these columns: a key, known types, no key column among them? */
static bool multi_update_ok(const xdcr_table_t *t, const uint32_t *set_cols, uint32_t nset)
{
    if (t->npk == 0 || !types_known(t))
        return false;
    for (uint32_t i = 0; i < nset; i++)
        if (t->cols[set_cols[i]].pk_pos > 0)
            return false;
    return true;
}

/* UPDATE "s"."t" x SET "a" = u."a", ... (from the unnest rows u) */
static void append_update_set(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols,
                              uint32_t nset)
{
    sql_append(b, "UPDATE ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " x SET ");
    for (uint32_t i = 0; i < nset; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[set_cols[i]].name);
        sql_append(b, " = ");
        append_typed(b, t, set_cols[i]);
    }
}

int sql_build_multi_update(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols,
                           uint32_t nset)
{
    if (!multi_update_ok(t, set_cols, nset))
        return XDCR_EINVAL;
    sql_append(b, "WITH u AS (SELECT * FROM ");
    append_unnest(b, t, set_cols, nset, true);
    sql_append(b, "), upd AS (");
    if (nset == 0) {
        sql_append(b, "SELECT x.* FROM ");
        sql_append_qualified(b, t->schema, t->name);
        sql_append(b, " x, u WHERE ");
        append_key_typed(b, t, "x");
    } else {
        append_update_set(b, t, set_cols, nset);
        sql_append(b, " FROM u WHERE ");
        append_key_typed(b, t, "x");
        /* only the key: what the anti-join below needs (whole rows cost about 5% on W3) */
        sql_append(b, " RETURNING ");
        for (uint32_t k = 0; k < t->npk; k++) {
            if (k > 0)
                sql_append(b, ", ");
            sql_append(b, "x.");
            sql_append_ident(b, t->cols[t->pk[k]].name);
        }
    }
    /* the rows that were missing: inserted from the known columns */
    sql_append(b, ") INSERT INTO ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " (");
    for (uint32_t i = 0; i < nset; i++) {
        sql_append_ident(b, t->cols[set_cols[i]].name);
        sql_append(b, ", ");
    }
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
    sql_append(b, ") SELECT ");
    for (uint32_t i = 0; i < nset; i++) {
        append_typed(b, t, set_cols[i]);
        sql_append(b, ", ");
    }
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, ", ");
        append_typed(b, t, t->pk[k]);
    }
    /* The anti-join runs only when the update missed a row: a gate that PostgreSQL evaluates
     * once (a one-time filter over two counts of tuplestores). Without it the hash anti-join
     * cost about 5% on W3, where no row is ever missing. */
    sql_append(b, " FROM u WHERE (SELECT pg_catalog.count(*) FROM upd) OPERATOR(pg_catalog.<)"
                  " (SELECT pg_catalog.count(*) FROM u) AND NOT EXISTS (SELECT 1 FROM upd WHERE ");
    append_key_typed(b, t, "upd");
    sql_append(b, ")");
    append_on_conflict(b, t, set_cols, nset);
    return sql_buf_status(b);
}

int sql_build_multi_update_fast(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols,
                                uint32_t nset)
{
    if (nset == 0 || !multi_update_ok(t, set_cols, nset))
        return XDCR_EINVAL;
    append_update_set(b, t, set_cols, nset);
    sql_append(b, " FROM ");
    append_unnest(b, t, set_cols, nset, true);
    sql_append(b, " WHERE ");
    append_key_typed(b, t, "x");
    return sql_buf_status(b);
}

int sql_build_multi_delete(sql_buf_t *b, const xdcr_table_t *t)
{
    if (t->npk == 0 || !types_known(t))
        return XDCR_EINVAL;
    sql_append(b, "DELETE FROM ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " x USING ");
    append_unnest(b, t, NULL, 0, true);
    sql_append(b, " WHERE ");
    append_key_typed(b, t, "x");
    return sql_buf_status(b);
}

void sql_append_array_elem(sql_buf_t *b, const char *s, size_t len, bool first)
{
    if (!first)
        append_n(b, ",", 1);
    if (s == NULL) {
        append_n(b, "NULL", 4);
        return;
    }
    append_n(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            append_n(b, "\\", 1);
        append_n(b, s + i, 1);
    }
    append_n(b, "\"", 1);
}

/* ---- conflict-resolving statements (active-active) ----------------------------------------- */

/* Parameter number of key column k of a resolved statement (see sql_build.h). */
static uint32_t key_param(const xdcr_table_t *t, char op, const uint32_t *cols, uint32_t n,
                          uint32_t k)
{
    if (op == 'I') {
        for (uint32_t i = 0; i < n; i++)
            if (cols[i] == t->pk[k])
                return i + 1;
        return 0; /* not reached: key_covered() was checked */
    }
    return n + k + 1;
}

/* jsonb_build_object('a', format('%s', $i), ...) over the key: each value in its type's output
 * form, as record_tombstone() builds it (the session has the same settings) */
static void append_key_json(sql_buf_t *b, const xdcr_table_t *t, char op, const uint32_t *cols,
                            uint32_t n)
{
    sql_append(b, "pg_catalog.jsonb_build_object(");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, ", ");
        sql_append_literal(b, t->cols[t->pk[k]].name);
        sql_appendf(b, ", pg_catalog.format('%%s', $%u)", key_param(t, op, cols, n, k));
    }
    sql_append(b, ")");
}

/* the table's tombstone relation: the root of its partition tree, or itself */
static void append_root(sql_buf_t *b, const char *rel)
{
    sql_append(b, "COALESCE(pg_catalog.pg_partition_root(");
    sql_append_literal(b, rel);
    sql_append(b, "::pg_catalog.regclass), ");
    sql_append_literal(b, rel);
    sql_append(b, "::pg_catalog.regclass)");
}

/* ONLY for a plain table (its inheritance children are not replicated with it); a partitioned
 * table is written through its partitions */
static const char *only(const xdcr_table_t *t)
{
    return t->relkind == 'p' ? "" : "ONLY ";
}

/* x."a" = r."a" AND ... over the key */
static void append_key_join(sql_buf_t *b, const xdcr_table_t *t, const char *l, const char *r)
{
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, " AND ");
        sql_appendf(b, "%s.", l);
        sql_append_ident(b, t->cols[t->pk[k]].name);
        sql_appendf(b, " = %s.", r);
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
}

/* the columns of the CTE r: cols, then (for U and D) the key */
static void append_r_cols(sql_buf_t *b, const xdcr_table_t *t, char op, const uint32_t *cols,
                          uint32_t n, bool with_params)
{
    uint32_t i = 0;

    for (; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        if (with_params)
            sql_appendf(b, "$%u AS ", i + 1);
        sql_append_ident(b, t->cols[cols[i]].name);
    }
    if (op == 'I')
        return;
    for (uint32_t k = 0; k < t->npk; k++) {
        if (i + k > 0)
            sql_append(b, ", ");
        if (with_params)
            sql_appendf(b, "$%u AS ", key_param(t, op, cols, n, k));
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
}

int sql_build_resolved(sql_buf_t *b, const xdcr_table_t *t, char op, const uint32_t *cols,
                       uint32_t n, const sql_resolve_t *rs)
{
    uint32_t extra, nonkey = 0;
    sql_buf_t rel;

    if (t->npk == 0 || (op != 'I' && op != 'U' && op != 'D') || rs == NULL || rs->schema == NULL ||
        rs->policy == NULL || rs->own_origin == NULL)
        return XDCR_EINVAL;
    if (op == 'I' && (n == 0 || !key_covered(t, cols, n)))
        return XDCR_EINVAL;
    if (op == 'D' && n != 0)
        return XDCR_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (t->cols[cols[i]].pk_pos == 0)
            nonkey++;
        else if (op == 'U')
            return XDCR_EINVAL; /* a key change is applied without resolution */
    }
    extra = op == 'I' ? n : n + t->npk; /* $extra+1: commit time, +2: origin, +3: seq */

    sql_buf_init(&rel);
    sql_append_qualified(&rel, t->schema, t->name);
    if (sql_buf_status(&rel) != 0) {
        sql_buf_free(&rel);
        b->failed = true;
        return XDCR_ENOMEM;
    }

    /* r: the remote row (typed by the prepared parameter types) */
    sql_append(b, "WITH r AS MATERIALIZED (SELECT ");
    append_r_cols(b, t, op, cols, n, true);
    /* cur: the local row, locked */
    sql_append(b, "), cur AS MATERIALIZED (SELECT x.xmin AS xmin FROM ");
    sql_append(b, only(t));
    sql_append(b, rel.data);
    sql_append(b, " x, r WHERE ");
    append_key_join(b, t, "x", "r");
    sql_append(b, " FOR UPDATE OF x), ");
    /* d: the decision */
    sql_append(b, "d AS MATERIALIZED (SELECT * FROM ");
    sql_append_ident(b, rs->schema);
    sql_append(b, ".resolve(");
    sql_append_literal(b, rs->policy);
    sql_appendf(b, ", '%c', ", op);
    append_root(b, rel.data);
    sql_append(b, ", ");
    append_key_json(b, t, op, cols, n);
    sql_append(b, ", EXISTS (SELECT 1 FROM cur), (SELECT xmin FROM cur), ");
    sql_appendf(b, "$%u, $%u, ", extra + 1, extra + 2);
    sql_append_literal(b, rs->own_origin);
    sql_append(b, ")), ");
    /* lg: the conflict, with both versions */
    sql_append(b, "lg AS (INSERT INTO ");
    sql_append_qualified(b, rs->schema, "conflicts");
    sql_append(
        b, " (table_name, key, kind, policy, resolution, remote_origin, "
           "remote_commit_time, remote_commit_lsn, remote_row, local_origin, local_commit_time, "
           "local_row) SELECT ");
    sql_append_literal(b, rel.data);
    sql_append(b, ", ");
    append_key_json(b, t, op, cols, n);
    sql_append(b, ", d.kind, ");
    sql_append_literal(b, rs->policy);
    sql_appendf(b,
                ", CASE WHEN d.apply THEN 'apply_remote' ELSE 'keep_local' END, $%u, $%u, $%u, "
                "(SELECT pg_catalog.to_jsonb(r) FROM r), d.local_origin, d.local_time, "
                "(SELECT pg_catalog.to_jsonb(x) FROM %s",
                extra + 2, extra + 1, extra + 3, only(t));
    sql_append(b, rel.data);
    sql_append(b, " x, r WHERE ");
    append_key_join(b, t, "x", "r");
    sql_append(b, ") FROM d WHERE d.kind IS NOT NULL), ");

    if (op == 'D') {
        sql_append(b, "w AS (DELETE FROM ");
        sql_append(b, only(t));
        sql_append(b, rel.data);
        sql_append(b, " x USING r WHERE ");
        append_key_join(b, t, "x", "r");
        sql_append(b, " AND (SELECT apply FROM d)), ");
        sql_append(b, "tomb AS (INSERT INTO ");
        sql_append_qualified(b, rs->schema, "tombstones");
        sql_append(b, " (relid, key, origin, commit_time) SELECT ");
        append_root(b, rel.data);
        sql_append(b, ", ");
        append_key_json(b, t, op, cols, n);
        sql_appendf(b,
                    ", $%u, $%u WHERE (SELECT apply FROM d) ON CONFLICT (relid, key) DO UPDATE "
                    "SET origin = EXCLUDED.origin, commit_time = EXCLUDED.commit_time, "
                    "local_xid = NULL, deleted_at = pg_catalog.now()) ",
                    extra + 2, extra + 1);
    } else {
        bool any = false;

        /* an existing row: set the columns sent (unchanged TOAST is not among them); with
           nothing else to set, the key to itself, so that the row takes the change's version */
        sql_append(b, "u AS (UPDATE ");
        sql_append(b, only(t));
        sql_append(b, rel.data);
        sql_append(b, " x SET ");
        for (uint32_t i = 0; i < n; i++) {
            const char *name = t->cols[cols[i]].name;

            if (t->cols[cols[i]].pk_pos > 0)
                continue;
            if (any)
                sql_append(b, ", ");
            sql_append_ident(b, name);
            sql_append(b, " = r.");
            sql_append_ident(b, name);
            any = true;
        }
        if (nonkey == 0) {
            sql_append_ident(b, t->cols[t->pk[0]].name);
            sql_append(b, " = r.");
            sql_append_ident(b, t->cols[t->pk[0]].name);
        }
        sql_append(b, " FROM r WHERE ");
        append_key_join(b, t, "x", "r");
        sql_append(b, " AND (SELECT apply FROM d) AND EXISTS (SELECT 1 FROM cur)), ");
        /* a missing row: insert it from what is known; one that appeared since the snapshot
           (a concurrent local insert) is judged by its own version */
        sql_append(b, "i AS (INSERT INTO ");
        sql_append(b, rel.data);
        sql_append(b, " AS x (");
        append_r_cols(b, t, op, cols, n, false);
        sql_append(b, ") SELECT ");
        append_r_cols(b, t, op, cols, n, false);
        sql_append(b, " FROM r WHERE (SELECT apply FROM d) AND NOT EXISTS (SELECT 1 FROM cur)");
        append_on_conflict(b, t, cols, n); /* DO NOTHING without non-key columns */
        if (nonkey > 0) {
            sql_append(b, " WHERE NOT ");
            sql_append_ident(b, rs->schema);
            sql_append(b, ".late_row_loses(");
            sql_append_literal(b, rs->policy);
            sql_appendf(b, ", x.xmin, $%u, $%u, ", extra + 1, extra + 2);
            sql_append_literal(b, rs->own_origin);
            sql_append(b, ")");
        }
        sql_append(b, " RETURNING (x.xmax = 0) AS ins) ");
    }
    if (op == 'D') {
        sql_append(b, "SELECT d.kind, d.apply FROM d");
    } else {
        /* no row at the snapshot, but one at the insert: a concurrent local insert */
        sql_append(b, "SELECT COALESCE(d.kind, CASE WHEN d.apply AND NOT EXISTS (SELECT 1 FROM "
                      "cur) AND NOT EXISTS (SELECT 1 FROM i WHERE i.ins) THEN 'insert_exists' "
                      "END), CASE WHEN d.kind IS NULL AND d.apply AND NOT EXISTS (SELECT 1 FROM "
                      "cur) THEN EXISTS (SELECT 1 FROM i) ELSE d.apply END FROM d");
    }
    sql_buf_free(&rel);
    return sql_buf_status(b);
}

int sql_build_truncate(sql_buf_t *b, const xdcr_table_t *const *ts, uint32_t n,
                       bool restart_identity, bool cascade)
{
    if (n == 0)
        return XDCR_EINVAL;
    sql_append(b, "TRUNCATE ");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_qualified(b, ts[i]->schema, ts[i]->name);
    }
    if (restart_identity)
        sql_append(b, " RESTART IDENTITY");
    if (cascade)
        sql_append(b, " CASCADE");
    return sql_buf_status(b);
}

/* ---- the consumer's own schema ------------------------------------------------------------- */

/*
 * The DDL as a template: every "@" is replaced by the quoted schema name. Functions run with
 * search_path = pg_catalog and name every object with its schema.
 */
static const char *const schema_ddl[] = {
    "CREATE SCHEMA IF NOT EXISTS @;\n",
    "CREATE TABLE IF NOT EXISTS @.meta (\n"
    "    key text PRIMARY KEY,\n"
    "    value text NOT NULL);\n",
    "CREATE TABLE IF NOT EXISTS @.positions (\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    seq pg_lsn NOT NULL,\n"
    "    commit_time timestamptz,\n"
    "    kafka_offset bigint NOT NULL,\n"
    "    sysid text,\n"
    "    timeline integer,\n"
    "    mark_time timestamptz,\n"
    "    source_wal_lsn pg_lsn,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now(),\n"
    "    version bigint NOT NULL DEFAULT 1,\n"
    "    resync boolean NOT NULL DEFAULT false,\n"
    "    wait_gen bigint NOT NULL DEFAULT 0,\n"
    "    kafka_high_watermark bigint,\n"
    "    PRIMARY KEY (origin, topic, partition));\n",
    /* columns added after the first release of the table */
    "ALTER TABLE @.positions ADD COLUMN IF NOT EXISTS wait_gen bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN IF NOT EXISTS kafka_high_watermark bigint;\n",
    "CREATE TABLE IF NOT EXISTS @.dead_letters (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    kafka_offset bigint NOT NULL,\n"
    "    seq pg_lsn,\n"
    "    commit_lsn pg_lsn,\n"
    "    table_name text,\n"
    "    error text NOT NULL,\n"
    "    payload text,\n"
    "    payload_encoding text NOT NULL DEFAULT 'json',\n"
    "    created_at timestamptz NOT NULL DEFAULT now());\n",
    "CREATE TABLE IF NOT EXISTS @.audit (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    at timestamptz NOT NULL DEFAULT now(),\n"
    "    actor text NOT NULL DEFAULT current_user,\n"
    "    action text NOT NULL,\n"
    "    origin text,\n"
    "    detail jsonb);\n",
    "CREATE TABLE IF NOT EXISTS @.halts (\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    kind text NOT NULL,\n"
    "    kafka_offset bigint,\n"
    "    seq pg_lsn,\n"
    "    commit_lsn pg_lsn,\n"
    "    table_name text,\n"
    "    error text NOT NULL,\n"
    "    halted_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (origin, topic, partition));\n",
    "CREATE TABLE IF NOT EXISTS @.skip_requests (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    origin text NOT NULL,\n"
    "    lsn pg_lsn NOT NULL,\n"
    "    reason text,\n"
    "    requested_by text NOT NULL DEFAULT current_user,\n"
    "    requested_at timestamptz NOT NULL DEFAULT now(),\n"
    "    done_at timestamptz,\n"
    "    done_seq pg_lsn,\n"
    "    done_offset bigint);\n",
    "CREATE OR REPLACE FUNCTION @.fence_failed(p_what text) RETURNS bigint\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "BEGIN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'XD001',\n"
    "        MESSAGE = 'the stored position of origin ' || p_what || ' was changed concurrently';\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.skip_transaction(p_origin text, p_lsn pg_lsn,\n"
    "        p_reason text DEFAULT NULL) RETURNS bigint\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "DECLARE\n"
    "    v_id bigint;\n"
    "BEGIN\n"
    "    IF p_origin IS NULL OR p_lsn IS NULL THEN\n"
    "        RAISE EXCEPTION 'origin and lsn are required';\n"
    "    END IF;\n"
    "    INSERT INTO @.skip_requests (origin, lsn, reason) VALUES (p_origin, p_lsn, p_reason)\n"
    "        RETURNING id INTO v_id;\n"
    "    UPDATE @.positions SET version = version + 1 WHERE origin = p_origin;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('skip_requested', p_origin,\n"
    "        jsonb_build_object('request_id', v_id, 'lsn', p_lsn::text, 'reason', p_reason));\n"
    "    RETURN v_id;\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.accept_gap(p_origin text, p_topic text, p_partition integer,\n"
    "        p_new_offset bigint, p_reason text DEFAULT NULL) RETURNS void\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "DECLARE\n"
    "    v_old bigint;\n"
    "BEGIN\n"
    "    IF p_new_offset IS NULL OR p_new_offset < 0 THEN\n"
    "        RAISE EXCEPTION 'new offset must be 0 or more';\n"
    "    END IF;\n"
    "    SELECT kafka_offset INTO v_old FROM @.positions\n"
    "        WHERE origin = p_origin AND topic = p_topic AND partition = p_partition FOR UPDATE;\n"
    "    IF FOUND THEN\n"
    "        UPDATE @.positions SET kafka_offset = p_new_offset, resync = true,\n"
    "                version = version + 1\n"
    "            WHERE origin = p_origin AND topic = p_topic AND partition = p_partition;\n"
    "    ELSE\n"
    "        INSERT INTO @.positions (origin, topic, partition, seq, kafka_offset, resync)\n"
    "            VALUES (p_origin, p_topic, p_partition, '0/0', p_new_offset, true);\n"
    "    END IF;\n"
    "    DELETE FROM @.halts\n"
    "        WHERE origin = p_origin AND topic = p_topic AND partition = p_partition;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('accept_gap', p_origin,\n"
    "        jsonb_build_object('topic', p_topic, 'partition', p_partition, 'old_offset', v_old,\n"
    "                           'new_offset', p_new_offset, 'reason', p_reason));\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.accept_source_identity(p_origin text,\n"
    "        p_reset_seq pg_lsn DEFAULT NULL, p_reason text DEFAULT NULL) RETURNS void\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "BEGIN\n"
    "    UPDATE @.positions SET sysid = NULL, timeline = NULL,\n"
    "            seq = COALESCE(p_reset_seq, seq), resync = resync OR p_reset_seq IS NOT NULL,\n"
    "            version = version + 1\n"
    "        WHERE origin = p_origin;\n"
    "    IF NOT FOUND THEN\n"
    "        RAISE EXCEPTION 'no stored position for origin %', p_origin;\n"
    "    END IF;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('accept_source_identity',\n"
    "        p_origin, jsonb_build_object('reset_seq', p_reset_seq::text, 'reason', p_reason));\n"
    "END\n"
    "$xdcr$;\n",
    /* docs/lag.md defines every column; new columns go at the end (CREATE OR REPLACE VIEW) */
    "CREATE OR REPLACE VIEW @.lag AS\n"
    "SELECT p.origin, p.topic, p.partition, p.seq AS applied_seq, p.commit_time, p.mark_time,\n"
    "       p.applied_at, p.kafka_offset,\n"
    "       GREATEST(EXTRACT(epoch FROM now() - GREATEST(p.commit_time, p.mark_time)), 0)\n"
    "           ::double precision AS lag_seconds,\n"
    "       GREATEST(p.source_wal_lsn - p.seq, 0) AS lag_bytes,\n"
    "       h.kind AS halted, h.error AS halt_error,\n"
    "       GREATEST(p.kafka_high_watermark - p.kafka_offset, 0) AS lag_messages,\n"
    "       p.source_wal_lsn, GREATEST(p.commit_time, p.mark_time) AS last_source_time,\n"
    "       p.kafka_high_watermark\n"
    "FROM @.positions p LEFT JOIN @.halts h USING (origin, topic, partition);\n",
    /*
     * Read-your-writes from SQL (docs/lag.md). The consumer's apply session holds the session
     * advisory lock (hashtext('xdcr:' || origin), wait_gen % 2) of every origin it applies; a
     * commit that advances the origin first takes the lock of the next parity, writes wait_gen
     * + 1 with the position, commits, then releases the old one. A waiter blocks on a shared
     * lock of the parity it read, so the release wakes it right after the commit. The shared
     * lock is a transaction lock taken inside a subtransaction that is then rolled back, which
     * releases it at once, also when the statement is cancelled.
     */
    "CREATE OR REPLACE FUNCTION @.wait_for(p_origin text, p_lsn pg_lsn,\n"
    "        p_timeout interval DEFAULT '5s') RETURNS boolean\n"
    "    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog SET lock_timeout = 0\n"
    "    AS $xdcr$\n"
    "DECLARE\n"
    "    v_deadline timestamptz := clock_timestamp() + p_timeout;\n"
    "    v_key integer := hashtext('xdcr:' || p_origin);\n"
    "    v_seq pg_lsn;\n"
    "    v_gen bigint;\n"
    "    v_gen2 bigint;\n"
    "    v_left_ms double precision;\n"
    "    v_free boolean;\n"
    "BEGIN\n"
    "    IF p_origin IS NULL OR p_lsn IS NULL OR p_timeout IS NULL THEN\n"
    "        RAISE EXCEPTION 'origin, lsn and timeout are required';\n"
    "    END IF;\n"
    "    IF current_setting('transaction_isolation') <> 'read committed' THEN\n"
    "        RAISE EXCEPTION USING ERRCODE = 'invalid_transaction_state',\n"
    "            MESSAGE = 'wait_for needs a READ COMMITTED transaction, not '\n"
    "                || upper(current_setting('transaction_isolation')),\n"
    "            HINT = 'A REPEATABLE READ or SERIALIZABLE snapshot never sees the consumer''s '\n"
    "                || 'later commits: call it outside such a transaction.';\n"
    "    END IF;\n"
    "    LOOP\n"
    "        -- each statement takes a new snapshot (READ COMMITTED, VOLATILE)\n"
    "        SELECT p.seq, p.wait_gen INTO v_seq, v_gen FROM @.positions p\n"
    "            WHERE p.origin = p_origin ORDER BY p.seq DESC LIMIT 1;\n"
    "        IF v_seq >= p_lsn THEN\n"
    "            RETURN true;\n"
    "        END IF;\n"
    "        v_gen := COALESCE(v_gen, 0);\n"
    "        v_left_ms := EXTRACT(epoch FROM v_deadline - clock_timestamp()) * 1000;\n"
    "        IF v_left_ms <= 0 THEN\n"
    "            RETURN false;\n"
    "        END IF;\n"
    "        PERFORM set_config('lock_timeout', ceil(v_left_ms)::bigint || 'ms', true);\n"
    "        BEGIN\n"
    "            v_free := pg_try_advisory_xact_lock_shared(v_key, (v_gen % 2)::integer);\n"
    "            IF NOT v_free THEN\n"
    "                PERFORM pg_advisory_xact_lock_shared(v_key, (v_gen % 2)::integer);\n"
    "            END IF;\n"
    "            RAISE SQLSTATE 'XD002'; -- roll the subtransaction back: releases the lock\n"
    "        EXCEPTION\n"
    "            WHEN SQLSTATE 'XD002' THEN NULL;\n"
    "            WHEN lock_not_available THEN NULL; -- timed out: the next check decides\n"
    "        END;\n"
    "        IF v_free THEN\n"
    "            -- nobody holds the turnstile: the consumer is down or reconnecting\n"
    "            SELECT p.wait_gen INTO v_gen2 FROM @.positions p\n"
    "                WHERE p.origin = p_origin ORDER BY p.seq DESC LIMIT 1;\n"
    "            IF COALESCE(v_gen2, 0) = v_gen THEN\n"
    "                PERFORM pg_sleep(LEAST(0.05, GREATEST(EXTRACT(epoch FROM\n"
    "                    v_deadline - clock_timestamp()), 0)));\n"
    "            END IF;\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "END\n"
    "$xdcr$;\n",
    /*
     * Active-active conflict handling (docs/active-active.md). Conflicts found while applying are
     * written here with both versions; tombstones remember deleted keys so that an older change
     * arriving later does not bring a row back.
     */
    "CREATE TABLE IF NOT EXISTS @.conflicts (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    detected_at timestamptz NOT NULL DEFAULT now(),\n"
    "    table_name text NOT NULL,\n"
    "    key jsonb NOT NULL,\n"
    "    kind text NOT NULL,\n"
    "    policy text NOT NULL,\n"
    "    resolution text NOT NULL,\n"
    "    remote_origin text NOT NULL,\n"
    "    remote_commit_time timestamptz NOT NULL,\n"
    "    remote_commit_lsn pg_lsn,\n"
    "    remote_row jsonb,\n"
    "    local_origin text,\n"
    "    local_commit_time timestamptz,\n"
    "    local_row jsonb);\n",
    "CREATE INDEX IF NOT EXISTS conflicts_detected_at ON @.conflicts (detected_at);\n",
    "CREATE TABLE IF NOT EXISTS @.tombstones (\n"
    "    relid oid NOT NULL,\n"
    "    key jsonb NOT NULL,\n"
    "    origin text,\n"
    "    commit_time timestamptz,\n"
    "    local_xid xid8,\n"
    "    deleted_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (relid, key));\n",
    "CREATE INDEX IF NOT EXISTS tombstones_deleted_at ON @.tombstones (deleted_at);\n",
    /*
     * A local delete (not the consumer's: it sets xdcr.applying) leaves a tombstone whose version
     * is its transaction's commit timestamp, read when it is needed. It runs as its owner (the
     * application may not write the consumer's schema), so it runs no code a user could supply:
     * the key is built from the key columns' output functions (format %s, never casts or
     * to_jsonb), under fixed settings so that the consumer (same settings) builds the same key;
     * the column names come from the trigger arguments and are quoted. EXECUTE on it is revoked
     * from PUBLIC, so only its owner can attach it to a table. Tables of a partition tree share
     * their root's tombstones.
     */
    "CREATE OR REPLACE FUNCTION @.record_tombstone() RETURNS trigger\n"
    "    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog SET TimeZone = 'UTC'\n"
    "    SET DateStyle = 'ISO, MDY' SET IntervalStyle = 'postgres' SET bytea_output = 'hex'\n"
    "    SET extra_float_digits = 1 AS $xdcr$\n"
    "DECLARE\n"
    "    v_sql text;\n"
    "    v_key jsonb;\n"
    "BEGIN\n"
    "    IF current_setting('xdcr.applying', true) = 'on' THEN\n"
    "        RETURN NULL;\n"
    "    END IF;\n"
    "    SELECT 'SELECT pg_catalog.jsonb_build_object(' || string_agg(\n"
    "               format('%L, pg_catalog.format(''%%s'', $1.%I)', a, a), ', ') || ')'\n"
    "        INTO v_sql FROM unnest(TG_ARGV) a;\n"
    "    EXECUTE v_sql INTO v_key USING OLD;\n"
    "    INSERT INTO @.tombstones AS t (relid, key, origin, commit_time, local_xid)\n"
    "        VALUES (COALESCE(pg_partition_root(TG_RELID), TG_RELID), v_key, NULL, NULL,\n"
    "                pg_current_xact_id())\n"
    "        ON CONFLICT (relid, key) DO UPDATE SET origin = NULL, commit_time = NULL,\n"
    "            local_xid = EXCLUDED.local_xid, deleted_at = now();\n"
    "    RETURN NULL;\n"
    "END\n"
    "$xdcr$;\n",
    "REVOKE ALL ON FUNCTION @.record_tombstone() FROM PUBLIC;\n",
    "CREATE OR REPLACE FUNCTION @.track_deletes(p_table regclass) RETURNS boolean\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "DECLARE\n"
    "    v_cols text;\n"
    "    v_args text;\n"
    "BEGIN\n"
    "    SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.n),\n"
    "           string_agg(replace(a.attname, '\\', '\\\\') || '\\000', '' ORDER BY k.n)\n"
    "        INTO v_cols, v_args\n"
    "        FROM pg_index i\n"
    "        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)\n"
    "        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum\n"
    "        WHERE i.indrelid = p_table AND i.indisprimary;\n"
    "    IF v_cols IS NULL THEN\n"
    "        RAISE EXCEPTION 'table % has no primary key', p_table;\n"
    "    END IF;\n"
    "    -- in place for this key, or inherited from a partitioned parent (managed there)\n"
    "    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = p_table\n"
    "               AND tgname = 'xdcr_tombstone'\n"
    "               AND (encode(tgargs, 'escape') = v_args OR tgparentid <> 0)) THEN\n"
    "        RETURN false;\n"
    "    END IF;\n"
    "    -- missing, or made for another key (a key column renamed, the key changed)\n"
    "    EXECUTE 'DROP TRIGGER IF EXISTS xdcr_tombstone ON ' || p_table::text;\n"
    "    EXECUTE 'CREATE TRIGGER xdcr_tombstone AFTER DELETE ON ' || p_table::text\n"
    "        || ' FOR EACH ROW EXECUTE FUNCTION @.record_tombstone(' || v_cols || ')';\n"
    "    RETURN true;\n"
    "END\n"
    "$xdcr$;\n",
    /*
     * The version (commit time, origin name) of the local row whose xmin is p_xmin. The
     * functions on the apply path have no SET clause (it would cost a configuration save and
     * restore per row, and prevent inlining): every name in them is schema-qualified.
     */
    "CREATE OR REPLACE FUNCTION @.row_version(p_xmin xid, p_own text,\n"
    "        OUT commit_time timestamptz, OUT origin text)\n"
    "    LANGUAGE sql STABLE AS $xdcr$\n"
    "    SELECT c.timestamp,\n"
    "           CASE WHEN c.roident IS NULL OR c.roident = 0 THEN p_own\n"
    "                WHEN o.roname LIKE 'xdcr\\_%' THEN pg_catalog.substr(o.roname, 6)\n"
    "                ELSE o.roname END\n"
    "    FROM pg_catalog.pg_xact_commit_timestamp_origin(p_xmin) c\n"
    "    LEFT JOIN pg_catalog.pg_replication_origin o ON o.roident = c.roident\n"
    "$xdcr$;\n",
    /*
     * The decision for one remote change (docs/active-active.md): kind is NULL when there is no
     * conflict. A change conflicts when the row (or its tombstone) was last written by another
     * origin than the change's, or when the row it changes is missing.
     */
    "CREATE OR REPLACE FUNCTION @.resolve(p_policy text, p_op text, p_table regclass,\n"
    "        p_key jsonb, p_has_row boolean, p_xmin xid, p_remote_time timestamptz,\n"
    "        p_remote_origin text, p_own text,\n"
    "        OUT kind text, OUT apply boolean, OUT local_time timestamptz, OUT local_origin text)\n"
    "    LANGUAGE plpgsql AS $xdcr$\n"
    "DECLARE\n"
    "    v_xid xid8;\n"
    "    v_roident oid;\n"
    "    v_name text;\n"
    "BEGIN\n"
    "    IF p_has_row AND p_xmin = pg_catalog.xid(pg_catalog.pg_current_xact_id_if_assigned())\n"
    "    THEN\n"
    "        apply := true; -- written by this transaction: the same origin, in order\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_has_row THEN\n"
    "        SELECT c.timestamp, c.roident INTO local_time, v_roident\n"
    "            FROM pg_catalog.pg_xact_commit_timestamp_origin(p_xmin) c;\n"
    "        IF v_roident IS NULL OR v_roident = 0 THEN\n"
    "            local_origin := p_own;\n"
    "        ELSE\n"
    "            SELECT CASE WHEN o.roname LIKE 'xdcr\\_%' THEN pg_catalog.substr(o.roname, 6)\n"
    "                        ELSE o.roname END INTO local_origin\n"
    "                FROM pg_catalog.pg_replication_origin o WHERE o.roident = v_roident;\n"
    "        END IF;\n"
    "        kind := CASE p_op WHEN 'I' THEN 'insert_exists' WHEN 'U' THEN 'update_exists'\n"
    "                ELSE 'delete_exists' END;\n"
    "    ELSE\n"
    "        SELECT t.commit_time, t.origin, t.local_xid INTO local_time, local_origin, v_xid\n"
    "            FROM @.tombstones t WHERE t.relid = p_table AND t.key = p_key;\n"
    "        IF FOUND THEN\n"
    "            IF v_xid IS NOT NULL THEN\n"
    "                local_time := pg_catalog.pg_xact_commit_timestamp(pg_catalog.xid(v_xid));\n"
    "                local_origin := p_own;\n"
    "            END IF;\n"
    "            kind := CASE p_op WHEN 'I' THEN 'insert_deleted' WHEN 'U' THEN 'update_deleted'\n"
    "                    ELSE 'delete_deleted' END;\n"
    "        ELSIF p_op = 'I' THEN\n"
    "            apply := true;\n"
    "            RETURN;\n"
    "        ELSE\n"
    "            kind := CASE p_op WHEN 'U' THEN 'update_missing' ELSE 'delete_missing' END;\n"
    "        END IF;\n"
    "    END IF;\n"
    "    IF local_origin IS NOT DISTINCT FROM p_remote_origin AND kind NOT LIKE '%_missing' THEN\n"
    "        kind := NULL; -- the origin's own earlier change: in order, no conflict\n"
    "        apply := true;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_policy = 'error' THEN\n"
    "        SELECT n.nspname || '.' || c.relname INTO v_name FROM pg_catalog.pg_class c\n"
    "            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;\n"
    "        RAISE EXCEPTION USING ERRCODE = 'XD003',\n"
    "            MESSAGE = pg_catalog.format('conflict %s on %s key %s: remote change of %s at '\n"
    "                '%s, local version of %s at %s', kind, v_name, p_key, p_remote_origin,\n"
    "                p_remote_time, local_origin, local_time),\n"
    "            HINT = 'conflict.policy = error: resolve the row by hand, then skip or retry';\n"
    "    END IF;\n"
    "    apply := CASE\n"
    "        WHEN kind = 'delete_missing' THEN true -- nothing to keep; the tombstone is recorded\n"
    "        WHEN p_policy = 'apply_remote' THEN true\n"
    "        WHEN p_policy = 'keep_local' THEN false\n"
    "        ELSE local_time IS NULL\n"
    "             OR (p_remote_time, p_remote_origin COLLATE \"C\")\n"
    "                > (local_time, local_origin COLLATE \"C\") END;\n"
    "END\n"
    "$xdcr$;\n",
    /* a row that appeared after the statement's snapshot (a concurrent local insert): does it
       stay? (resolve() saw no row; the statement reports the conflict as insert_exists) */
    "CREATE OR REPLACE FUNCTION @.late_row_loses(p_policy text, p_xmin xid,\n"
    "        p_remote_time timestamptz, p_remote_origin text, p_own text) RETURNS boolean\n"
    "    LANGUAGE plpgsql AS $xdcr$\n"
    "DECLARE\n"
    "    v_time timestamptz;\n"
    "    v_origin text;\n"
    "BEGIN\n"
    "    IF p_policy = 'apply_remote' THEN\n"
    "        RETURN false;\n"
    "    ELSIF p_policy = 'keep_local' THEN\n"
    "        RETURN true;\n"
    "    ELSIF p_policy = 'error' THEN\n"
    "        RAISE EXCEPTION USING ERRCODE = 'XD003',\n"
    "            MESSAGE = 'conflict insert_exists: a local insert of the same key committed '\n"
    "                || 'while the remote change of ' || p_remote_origin || ' was applied';\n"
    "    END IF;\n"
    "    SELECT v.commit_time, v.origin INTO v_time, v_origin\n"
    "        FROM @.row_version(p_xmin, p_own) v;\n"
    "    RETURN v_time IS NOT NULL AND (v_time, v_origin COLLATE \"C\")\n"
    "        >= (p_remote_time, p_remote_origin COLLATE \"C\");\n"
    "END\n"
    "$xdcr$;\n",
    "INSERT INTO @.meta (key, value) VALUES ('schema_version', '1')\n"
    "    ON CONFLICT (key) DO NOTHING;\n",
};

int sql_build_schema_ddl(sql_buf_t *b, const char *schema)
{
    sql_buf_t q;

    sql_buf_init(&q);
    sql_append_ident(&q, schema);
    if (q.failed) {
        sql_buf_free(&q);
        b->failed = true;
        return XDCR_ENOMEM;
    }
    for (size_t i = 0; i < sizeof(schema_ddl) / sizeof(schema_ddl[0]); i++)
        for (const char *p = schema_ddl[i]; *p != '\0'; p++) {
            if (*p == '@')
                append_n(b, q.data, q.len);
            else
                append_n(b, p, 1);
        }
    sql_buf_free(&q);
    return sql_buf_status(b);
}
