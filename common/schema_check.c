/*
 * schema_check.c - the target table model and the preflight rules that compare a source relation
 * with its target table and map columns by name. Pure: no I/O.
 */
#include "xdcr/schema_check.h"

#include "xdcr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the shared catalog query ------------------------------------------------------------- */

const char xdcr_schema_check_target_sql[] =
    "SELECT c.oid, c.relkind, a.attname, a.atttypid, " XDCR_SCHEMA_CHECK_TYPE_NAME_SQL ","
    " a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attgenerated <> '',"
    " COALESCE((SELECT k.n FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[])"
    " WITH ORDINALITY k(att, n) WHERE k.att OPERATOR(pg_catalog.=) a.attnum), 0),"
    " CASE WHEN ty.typcategory OPERATOR(pg_catalog.<>) 'A'"
    " AND ty.typdelim OPERATOR(pg_catalog.=) ',' THEN ty.typarray ELSE 0 END,"
    " (SELECT " XDCR_SCHEMA_CHECK_TYPE_NAME_OF(
        "b", "bn") " FROM pg_catalog.pg_type b JOIN pg_catalog.pg_namespace bn"
                   " ON bn.oid OPERATOR(pg_catalog.=) b.typnamespace"
                   " WHERE ty.typtype OPERATOR(pg_catalog.=) 'd' AND b.oid OPERATOR(pg_catalog.=) "
                   "ty.typbasetype)"
                   " FROM pg_catalog.pg_class c"
                   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                   " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
                   " AND NOT a.attisdropped"
                   " LEFT JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid"
                   " LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace"
                   " LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
                   " WHERE n.nspname = $1 AND c.relname = $2"
                   " ORDER BY a.attnum";

/* ---- table model ---------------------------------------------------------------------------- */

xdcr_table_t *xdcr_table_new(const char *schema, const char *name, uint32_t relid, char relkind)
{
    xdcr_table_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->schema = strdup(schema);
    t->name = strdup(name);
    t->relid = relid;
    t->relkind = relkind;
    if (t->schema == NULL || t->name == NULL) {
        xdcr_table_free(t);
        return NULL;
    }
    return t;
}

int xdcr_table_add_column(xdcr_table_t *t, const xdcr_tcol_t *col)
{
    xdcr_tcol_t *cols = realloc(t->cols, (t->ncols + 1) * sizeof(*cols));
    xdcr_tcol_t *c;

    if (cols == NULL)
        return XDCR_ENOMEM;
    t->cols = cols;
    c = &cols[t->ncols];
    *c = *col;
    c->name = strdup(col->name);
    c->type_name = strdup(col->type_name != NULL ? col->type_name : "");
    c->base_type_name = col->base_type_name != NULL ? strdup(col->base_type_name) : NULL;
    if (c->name == NULL || c->type_name == NULL ||
        (col->base_type_name != NULL && c->base_type_name == NULL)) {
        free(c->name);
        free(c->type_name);
        free(c->base_type_name);
        return XDCR_ENOMEM;
    }
    t->ncols++;
    return 0;
}

int xdcr_table_add_catalog_row(xdcr_table_t *t, const char *const *v)
{
    xdcr_tcol_t c;

    if (v[2] == NULL)
        return 0; /* a table without columns */
    memset(&c, 0, sizeof(c));
    c.name = (char *)(uintptr_t)v[2];
    c.type_oid = v[3] != NULL ? (uint32_t)strtoul(v[3], NULL, 10) : 0;
    c.type_name = (char *)(uintptr_t)v[4];
    c.not_null = v[5] != NULL && v[5][0] == 't';
    c.has_default = v[6] != NULL && v[6][0] == 't';
    c.generated = v[7] != NULL && v[7][0] == 't';
    c.pk_pos = v[8] != NULL ? (uint32_t)strtoul(v[8], NULL, 10) : 0;
    c.array_oid = v[9] != NULL ? (uint32_t)strtoul(v[9], NULL, 10) : 0;
    c.base_type_name = (char *)(uintptr_t)v[10];
    return xdcr_table_add_column(t, &c);
}

int xdcr_table_finish(xdcr_table_t *t)
{
    uint32_t n = 0;

    free(t->pk);
    t->pk = NULL;
    t->npk = 0;
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].pk_pos > 0)
            n++;
    if (n == 0)
        return 0;
    t->pk = calloc(n, sizeof(*t->pk));
    if (t->pk == NULL)
        return XDCR_ENOMEM;
    for (uint32_t k = 1; k <= n; k++) {
        bool found = false;

        for (uint32_t i = 0; i < t->ncols; i++)
            if (t->cols[i].pk_pos == k) {
                if (found)
                    return XDCR_EINVAL;
                t->pk[k - 1] = i;
                found = true;
            }
        if (!found)
            return XDCR_EINVAL;
    }
    t->npk = n;
    return 0;
}

void xdcr_table_free(xdcr_table_t *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->ncols; i++) {
        free(t->cols[i].name);
        free(t->cols[i].type_name);
        free(t->cols[i].base_type_name);
    }
    free(t->cols);
    free(t->pk);
    free(t->schema);
    free(t->name);
    free(t);
}

int xdcr_table_find_column(const xdcr_table_t *t, const char *name)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- problem lists -------------------------------------------------------------------------- */

void xdcr_problems_init(xdcr_problems_t *p)
{
    memset(p, 0, sizeof(*p));
}

void xdcr_problems_free(xdcr_problems_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->items[i]);
    free(p->items);
    memset(p, 0, sizeof(*p));
}

void xdcr_problems_add(xdcr_problems_t *p, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        char **items = realloc(p->items, cap * sizeof(*items));

        if (items == NULL) {
            p->oom = true;
            return;
        }
        p->items = items;
        p->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s == NULL) {
        p->oom = true;
        return;
    }
    p->items[p->count++] = s;
}

char *xdcr_problems_join(const xdcr_problems_t *p, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < p->count && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i > 0 ? "; " : "", p->items[i]);

        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (p->oom && used < len)
        snprintf(buf + used, len - used, "%s(more problems: out of memory)", used ? "; " : "");
    return buf;
}

/* ---- type compatibility ---------------------------------------------------------------------- */

static bool is_text_like(const char *t)
{
    return strcmp(t, "text") == 0 || strcmp(t, "character varying") == 0 ||
           strcmp(t, "bpchar") == 0 || strcmp(t, "character") == 0 || strcmp(t, "name") == 0;
}

/* Target types that take every value of the source type (source first). */
static const char *const widenings[][2] = {
    {"smallint", "integer"},
    {"smallint", "bigint"},
    {"smallint", "numeric"},
    {"smallint", "real"},
    {"smallint", "double precision"},
    {"integer", "bigint"},
    {"integer", "numeric"},
    {"integer", "double precision"},
    {"bigint", "numeric"},
    {"real", "double precision"},
    {"real", "numeric"},
    {"double precision", "numeric"},
    {"json", "jsonb"},
    {"jsonb", "json"},
    {"\"char\"", "text"},
};

static bool has_array_suffix(const char *t, size_t *base_len)
{
    size_t n = strlen(t);

    if (n > 2 && strcmp(t + n - 2, "[]") == 0) {
        *base_len = n - 2;
        return true;
    }
    return false;
}

/* pg_catalog types whose internal name (typname) differs from their format_type() name */
static const char *const internal_names[][2] = {
    {"bool", "boolean"},
    {"int2", "smallint"},
    {"int4", "integer"},
    {"int8", "bigint"},
    {"float4", "real"},
    {"float8", "double precision"},
    {"varchar", "character varying"},
    {"timestamp", "timestamp without time zone"},
    {"timestamptz", "timestamp with time zone"},
    {"time", "time without time zone"},
    {"timetz", "time with time zone"},
    {"varbit", "bit varying"},
    {"bit", "\"bit\""},
    {"char", "\"char\""},
};

const char *xdcr_type_canonical(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(internal_names) / sizeof(internal_names[0]); i++)
        if (strcmp(name, internal_names[i][0]) == 0)
            return internal_names[i][1];
    return name;
}

bool xdcr_types_compatible(const char *src_type, const char *tgt_type)
{
    size_t sb, tb;

    if (src_type == NULL || src_type[0] == '\0')
        return true; /* unknown at the source: the target's input function decides */
    src_type = xdcr_type_canonical(src_type); /* as an older forwarder named a domain's type */
    if (strcmp(src_type, tgt_type) == 0)
        return true;
    if (is_text_like(tgt_type))
        return true;
    for (size_t i = 0; i < sizeof(widenings) / sizeof(widenings[0]); i++)
        if (strcmp(src_type, widenings[i][0]) == 0 && strcmp(tgt_type, widenings[i][1]) == 0)
            return true;
    if (has_array_suffix(src_type, &sb) && has_array_suffix(tgt_type, &tb)) {
        char s[256], t[256];
        bool ok;

        if (sb >= sizeof(s) || tb >= sizeof(t))
            return false;
        memcpy(s, src_type, sb);
        s[sb] = '\0';
        memcpy(t, tgt_type, tb);
        t[tb] = '\0';
        ok = xdcr_types_compatible(s, t);
        return ok;
    }
    return false;
}

/* ---- checks ---------------------------------------------------------------------------------- */

static size_t check_table_shape(const char *schema, const char *table, const xdcr_table_t *t,
                                xdcr_problems_t *out)
{
    if (t == NULL) {
        xdcr_problems_add(out, "table %s.%s does not exist at the target", schema, table);
        return 1;
    }
    if (t->relkind != 'r' && t->relkind != 'p') {
        xdcr_problems_add(out, "%s.%s at the target is not a table (relkind %c)", schema, table,
                          t->relkind);
        return 1;
    }
    if (t->npk == 0) {
        xdcr_problems_add(out, "table %s.%s has no primary key at the target", schema, table);
        return 1;
    }
    return 0;
}

size_t xdcr_check_table(const char *schema, const char *table, const xdcr_table_t *t,
                        xdcr_problems_t *out)
{
    return check_table_shape(schema, table, t, out);
}

size_t xdcr_check_relation(const xdcr_relation_t *src, const xdcr_table_t *t, int32_t *map,
                           xdcr_problems_t *out)
{
    size_t before = out->count;
    bool src_has_keys = false;

    for (uint32_t i = 0; i < src->ncols; i++) {
        map[i] = -1;
        if (src->cols[i].key)
            src_has_keys = true;
    }
    if (t == NULL) {
        xdcr_problems_add(out, "table %s.%s does not exist at the target", src->schema, src->table);
        return out->count - before;
    }
    if (t->relkind != 'r' && t->relkind != 'p') {
        xdcr_problems_add(out, "%s.%s at the target is not a table (relkind %c)", src->schema,
                          src->table, t->relkind);
        return out->count - before;
    }
    if (t->npk == 0)
        xdcr_problems_add(out, "table %s.%s has no primary key at the target", src->schema,
                          src->table);
    for (uint32_t i = 0; i < src->ncols; i++) {
        const xdcr_column_t *sc = &src->cols[i];
        int j = xdcr_table_find_column(t, sc->name);

        if (j < 0) {
            xdcr_problems_add(out, "column %s.%s.%s (%s) is missing at the target", src->schema,
                              src->table, sc->name, sc->type != NULL ? sc->type : "?");
            continue;
        }
        if (t->cols[j].generated) {
            xdcr_problems_add(out,
                              "column %s.%s.%s is generated at the target and cannot be written",
                              src->schema, src->table, sc->name);
            continue;
        }
        if (!xdcr_types_compatible(sc->type, t->cols[j].type_name) &&
            (t->cols[j].base_type_name == NULL ||
             !xdcr_types_compatible(sc->type, t->cols[j].base_type_name))) {
            xdcr_problems_add(out, "column %s.%s.%s has type %s at the source but %s at the target",
                              src->schema, src->table, sc->name, sc->type, t->cols[j].type_name);
            continue;
        }
        map[i] = j;
    }
    for (uint32_t k = 0; k < t->npk; k++) {
        const xdcr_tcol_t *pc = &t->cols[t->pk[k]];
        int found = -1;

        for (uint32_t i = 0; i < src->ncols; i++)
            if (strcmp(src->cols[i].name, pc->name) == 0)
                found = (int)i;
        if (found < 0) {
            xdcr_problems_add(out,
                              "primary key column %s of %s.%s at the target is not sent by the "
                              "source",
                              pc->name, src->schema, src->table);
        } else if (src_has_keys && !src->cols[found].key) {
            xdcr_problems_add(out,
                              "primary key column %s of %s.%s at the target is not part of the "
                              "source's replica identity: updates of the key and deletes cannot "
                              "be matched",
                              pc->name, src->schema, src->table);
        }
    }
    for (uint32_t j = 0; j < t->ncols; j++) {
        const xdcr_tcol_t *tc = &t->cols[j];
        bool sent = false;

        if (!tc->not_null || tc->has_default || tc->generated || tc->pk_pos > 0)
            continue;
        for (uint32_t i = 0; i < src->ncols; i++)
            if (map[i] == (int32_t)j)
                sent = true;
        if (!sent)
            xdcr_problems_add(out,
                              "column %s.%s.%s is NOT NULL without a default at the target and "
                              "not sent by the source: inserts would fail",
                              src->schema, src->table, tc->name);
    }
    return out->count - before;
}
