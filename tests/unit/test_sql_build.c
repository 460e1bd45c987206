/*
 * test_sql_build.c - the consumer's SQL text (consumer/sql_build.c): identifier and literal
 * quoting, upserts, updates that leave unchanged-TOAST columns alone and upsert a missing row,
 * composite and changed keys, deletes, truncate, and the schema DDL.
 */
#include "sql_build.h"
#include "xdcr/error.h"
#include "xdcr_test.h"

#include <stdlib.h>
#include <string.h>

static void add_col(xdcr_table_t *t, const char *name, const char *type, uint32_t pk_pos)
{
    xdcr_tcol_t c;

    memset(&c, 0, sizeof(c));
    c.name = (char *)(uintptr_t)name;
    c.type_name = (char *)(uintptr_t)type;
    c.type_oid = 25;
    c.pk_pos = pk_pos;
    CU_ASSERT_EQUAL_FATAL(xdcr_table_add_column(t, &c), 0);
}

/* public.items (id integer PRIMARY KEY, name text, doc text) */
static xdcr_table_t *simple_table(void)
{
    xdcr_table_t *t = xdcr_table_new("public", "items", 16384, 'r');

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    add_col(t, "id", "integer", 1);
    add_col(t, "name", "text", 0);
    add_col(t, "doc", "text", 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_table_finish(t), 0);
    return t;
}

/*
 * "Sales"."Order ""Lines""" ("Qty" integer, "order" bigint, "tenant-id" text, "note" text,
 * PRIMARY KEY ("tenant-id", "order")): key order differs from column order.
 */
static xdcr_table_t *tricky_table(void)
{
    xdcr_table_t *t = xdcr_table_new("Sales", "Order \"Lines\"", 16385, 'r');

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    add_col(t, "Qty", "integer", 0);
    add_col(t, "order", "bigint", 2);
    add_col(t, "tenant-id", "text", 1);
    add_col(t, "note", "text", 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_table_finish(t), 0);
    return t;
}

static void test_sql_quote_ident_and_literal(void)
{
    sql_buf_t b;

    sql_buf_init(&b);
    sql_append_ident(&b, "simple");
    sql_append(&b, " ");
    sql_append_ident(&b, "Mixed Case");
    sql_append(&b, " ");
    sql_append_ident(&b, "a\"b\"\"c");
    sql_append(&b, " ");
    sql_append_ident(&b, "select");
    sql_append(&b, " ");
    sql_append_qualified(&b, "my.schema",
                         "t\xc3\xa4"
                         "ble");
    sql_append(&b, " ");
    sql_append_literal(&b, "it's \\ \"ok\"");
    CU_ASSERT_EQUAL(sql_buf_status(&b), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "\"simple\" \"Mixed Case\" \"a\"\"b\"\"\"\"c\" \"select\" "
                                   "\"my.schema\".\"t\xc3\xa4"
                                   "ble\" 'it''s \\ \"ok\"'");
    sql_buf_free(&b);
}

static void test_sql_upsert_simple(void)
{
    xdcr_table_t *t = simple_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 2};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 3), 0);
    CU_ASSERT_STRING_EQUAL(b.data,
                           "INSERT INTO \"public\".\"items\" (\"id\", \"name\", \"doc\") VALUES "
                           "($1, $2, $3) ON CONFLICT (\"id\") DO UPDATE SET \"name\" = "
                           "EXCLUDED.\"name\", \"doc\" = EXCLUDED.\"doc\"");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_upsert_key_only_does_nothing_on_conflict(void)
{
    xdcr_table_t *t = simple_table();
    sql_buf_t b;
    uint32_t cols[] = {0};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 1), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "INSERT INTO \"public\".\"items\" (\"id\") VALUES ($1) ON "
                                   "CONFLICT (\"id\") DO NOTHING");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_upsert_composite_key_and_tricky_names(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 2, 3};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 4), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "INSERT INTO \"Sales\".\"Order \"\"Lines\"\"\" (\"Qty\", \"order\", "
                "\"tenant-id\", \"note\") VALUES ($1, $2, $3, $4) ON CONFLICT (\"tenant-id\", "
                "\"order\") DO UPDATE SET \"Qty\" = EXCLUDED.\"Qty\", \"note\" = "
                "EXCLUDED.\"note\"");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_upsert_rejects_missing_key_column(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 3}; /* no "tenant-id" */

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 3), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 0), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_update_leaves_unchanged_toast_out(void)
{
    xdcr_table_t *t = simple_table();
    sql_buf_t b;
    uint32_t set[] = {1}; /* "doc" was unchanged TOAST: not in the SET list */

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_update(&b, t, set, 1, false), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "WITH upd AS (UPDATE \"public\".\"items\" SET \"name\" = $1 WHERE \"id\" = $2 "
                "RETURNING 1) INSERT INTO \"public\".\"items\" (\"name\", \"id\") SELECT $1, $2 "
                "WHERE NOT EXISTS (SELECT 1 FROM upd) ON CONFLICT (\"id\") DO UPDATE SET "
                "\"name\" = EXCLUDED.\"name\"");
    CU_ASSERT_PTR_NULL(strstr(b.data, "doc"));
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_update_composite_key(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t set[] = {0, 3};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_update(&b, t, set, 2, false), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "WITH upd AS (UPDATE \"Sales\".\"Order \"\"Lines\"\"\" SET \"Qty\" = $1, "
                "\"note\" = $2 WHERE \"tenant-id\" = $3 AND \"order\" = $4 RETURNING 1) INSERT "
                "INTO \"Sales\".\"Order \"\"Lines\"\"\" (\"Qty\", \"note\", \"tenant-id\", "
                "\"order\") SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM upd) ON "
                "CONFLICT (\"tenant-id\", \"order\") DO UPDATE SET \"Qty\" = EXCLUDED.\"Qty\", "
                "\"note\" = EXCLUDED.\"note\"");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_update_changed_key_matches_old_key(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t set[] = {1, 2, 3}; /* new key plus "note"; "Qty" unchanged TOAST */

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_update(&b, t, set, 3, true), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "WITH upd AS (UPDATE \"Sales\".\"Order \"\"Lines\"\"\" SET \"order\" = $1, "
                "\"tenant-id\" = $2, \"note\" = $3 WHERE \"tenant-id\" = $4 AND \"order\" = $5 "
                "RETURNING 1) INSERT INTO \"Sales\".\"Order \"\"Lines\"\"\" (\"order\", "
                "\"tenant-id\", \"note\") SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM upd) "
                "ON CONFLICT (\"tenant-id\", \"order\") DO UPDATE SET \"note\" = "
                "EXCLUDED.\"note\"");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_update_with_nothing_to_set(void)
{
    xdcr_table_t *t = simple_table();
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_update(&b, t, NULL, 0, false), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "WITH upd AS (SELECT 1 FROM \"public\".\"items\" WHERE \"id\" = $1) INSERT INTO "
                "\"public\".\"items\" (\"id\") SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM upd) ON "
                "CONFLICT (\"id\") DO NOTHING");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_update_rejects_inconsistent_key_sets(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t with_key[] = {0, 1};
    uint32_t partial_key[] = {1, 3};

    sql_buf_init(&b);
    /* key columns in SET although the key did not change */
    CU_ASSERT_EQUAL(sql_build_update(&b, t, with_key, 2, false), XDCR_EINVAL);
    /* a changed key must set every key column */
    CU_ASSERT_EQUAL(sql_build_update(&b, t, partial_key, 2, true), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_delete_by_composite_key(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_delete(&b, t), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "DELETE FROM \"Sales\".\"Order \"\"Lines\"\"\" WHERE "
                                   "\"tenant-id\" = $1 AND \"order\" = $2");
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_no_primary_key_is_rejected(void)
{
    xdcr_table_t *t = xdcr_table_new("public", "nokey", 1, 'r');
    sql_buf_t b;
    uint32_t cols[] = {0};

    add_col(t, "a", "text", 0);
    CU_ASSERT_EQUAL(xdcr_table_finish(t), 0);
    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_upsert(&b, t, cols, 1), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_update(&b, t, cols, 1, false), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_delete(&b, t), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_truncate(void)
{
    xdcr_table_t *a = simple_table();
    xdcr_table_t *c = tricky_table();
    const xdcr_table_t *ts[] = {a, c};
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_truncate(&b, ts, 1, false, false), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "TRUNCATE \"public\".\"items\"");
    sql_buf_reset(&b);
    CU_ASSERT_EQUAL(sql_build_truncate(&b, ts, 2, true, true), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "TRUNCATE \"public\".\"items\", \"Sales\".\"Order "
                                   "\"\"Lines\"\"\" RESTART IDENTITY CASCADE");
    CU_ASSERT_EQUAL(sql_build_truncate(&b, ts, 0, false, false), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(a);
    xdcr_table_free(c);
}

static void test_sql_schema_ddl_quotes_schema_everywhere(void)
{
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_schema_ddl(&b, "My\"Xdcr"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "CREATE SCHEMA IF NOT EXISTS \"My\"\"Xdcr\";"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "CREATE TABLE IF NOT EXISTS \"My\"\"Xdcr\".positions"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FUNCTION \"My\"\"Xdcr\".skip_transaction("));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FUNCTION \"My\"\"Xdcr\".accept_gap("));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "VIEW \"My\"\"Xdcr\".lag"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "PRIMARY KEY (origin, topic, partition)"));
    CU_ASSERT_PTR_NULL(strchr(b.data, '@'));
    sql_buf_free(&b);
}

/* the highest $n in a statement */
static unsigned max_param(const char *sql)
{
    unsigned max = 0;

    for (const char *p = strchr(sql, '$'); p != NULL; p = strchr(p + 1, '$')) {
        unsigned n = (unsigned)strtoul(p + 1, NULL, 10);

        if (n > max)
            max = n;
    }
    return max;
}

static const sql_resolve_t lww = {"xdcr", "last_writer_wins", "west"};

static void test_sql_resolved_insert(void)
{
    xdcr_table_t *t = simple_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 2};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'I', cols, 3, &lww), 0);
    CU_ASSERT_EQUAL(max_param(b.data), 6); /* 3 values, then time, origin, commit LSN */
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "WITH r AS MATERIALIZED (SELECT $1 AS \"id\", $2 AS "
                                          "\"name\", $3 AS \"doc\")"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FROM ONLY \"public\".\"items\" x, r WHERE x.\"id\" = "
                                          "r.\"id\" FOR UPDATE OF x"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.data, "\"xdcr\".resolve('last_writer_wins', 'I', "
                       "COALESCE(pg_catalog.pg_partition_root('\"public\".\"items\"'::pg_catalog."
                       "regclass), '\"public\".\"items\"'::pg_catalog.regclass), "
                       "pg_catalog.jsonb_build_object('id', pg_catalog.format('%s', $1)), "
                       "EXISTS (SELECT 1 FROM cur), "
                       "(SELECT xmin FROM cur), $4, $5, 'west')"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "INSERT INTO \"xdcr\".\"conflicts\""));
    /* an existing row is updated, a missing one inserted; a late one judged by its version */
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "u AS (UPDATE ONLY \"public\".\"items\" x SET \"name\" "
                                          "= r.\"name\", \"doc\" = r.\"doc\" FROM r WHERE "
                                          "x.\"id\" = r.\"id\" AND (SELECT apply FROM d) AND "
                                          "EXISTS (SELECT 1 FROM cur))"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = "
                                          "EXCLUDED.\"name\", \"doc\" = EXCLUDED.\"doc\" WHERE "
                                          "NOT \"xdcr\".late_row_loses('last_writer_wins', "
                                          "x.xmin, $4, $5, 'west')"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "RETURNING (x.xmax = 0) AS ins)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "THEN 'insert_exists' END)"));
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_resolved_update_composite_key(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t set[] = {0}; /* "Qty"; "note" unchanged TOAST */

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'U', set, 1, &lww), 0);
    /* $1 Qty, key $2 tenant-id $3 order (key order), then $4..$6 */
    CU_ASSERT_EQUAL(max_param(b.data), 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "SELECT $1 AS \"Qty\", $2 AS \"tenant-id\", $3 AS "
                                          "\"order\")"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "pg_catalog.jsonb_build_object('tenant-id', "
                                          "pg_catalog.format('%s', $2), 'order', "
                                          "pg_catalog.format('%s', $3))"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "pg_partition_root('\"Sales\".\"Order \"\"Lines\"\"\"'"
                                          "::pg_catalog.regclass)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "UPDATE ONLY \"Sales\".\"Order \"\"Lines\"\"\" x SET "
                                          "\"Qty\" = r.\"Qty\" FROM r WHERE x.\"tenant-id\" = "
                                          "r.\"tenant-id\" AND x.\"order\" = r.\"order\""));
    CU_ASSERT_PTR_NULL(strstr(b.data, "note"));
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_resolved_delete_leaves_tombstone(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'D', NULL, 0, &lww), 0);
    CU_ASSERT_EQUAL(max_param(b.data), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "w AS (DELETE FROM ONLY \"Sales\".\"Order "
                                          "\"\"Lines\"\"\" x USING r WHERE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "INSERT INTO \"xdcr\".\"tombstones\" (relid, key, "
                                          "origin, commit_time) SELECT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, ", $4, $3 WHERE (SELECT apply FROM d) ON CONFLICT "
                                          "(relid, key) DO UPDATE"));
    CU_ASSERT_PTR_NULL(strstr(b.data, "late_row_loses"));
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_resolved_rejects_bad_input(void)
{
    xdcr_table_t *t = simple_table();
    sql_resolve_t no_origin = {"xdcr", "last_writer_wins", NULL};
    uint32_t with_key[] = {0, 1};
    uint32_t no_key[] = {1};
    sql_buf_t b;

    sql_buf_init(&b);
    /* a key change is not resolved; a delete takes no columns; an insert needs its key */
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'U', with_key, 2, &lww), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'D', no_key, 1, &lww), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'I', no_key, 1, &lww), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'T', NULL, 0, &lww), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'I', with_key, 2, &no_origin), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_resolved(&b, t, 'I', with_key, 2, NULL), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_schema_ddl_has_conflict_objects(void)
{
    sql_buf_t b;

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_schema_ddl(&b, "xdcr"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "CREATE TABLE IF NOT EXISTS \"xdcr\".conflicts"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "CREATE TABLE IF NOT EXISTS \"xdcr\".tombstones"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FUNCTION \"xdcr\".resolve("));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FUNCTION \"xdcr\".track_deletes("));
    /* the trigger function runs as its owner, with a fixed search_path */
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "SECURITY DEFINER SET search_path = pg_catalog"));
    sql_buf_free(&b);
}

static void test_sql_multi_statements(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 2};
    uint32_t set[] = {3};

    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_multi_upsert(&b, t, cols, 3), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "INSERT INTO \"Sales\".\"Order \"\"Lines\"\"\" (\"Qty\", \"order\", \"tenant-id\") "
                "SELECT u.\"Qty\"::integer, u.\"order\"::bigint, u.\"tenant-id\"::text FROM ROWS "
                "FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog."
                "text[]), pg_catalog.unnest($3::pg_catalog.text[])) AS u(\"Qty\", \"order\", "
                "\"tenant-id\") ON CONFLICT (\"tenant-id\", \"order\") DO UPDATE SET \"Qty\" = "
                "EXCLUDED.\"Qty\"");
    sql_buf_reset(&b);
    /* set "note"; the key follows as $2, $3; missing rows are inserted */
    CU_ASSERT_EQUAL(sql_build_multi_update(&b, t, set, 1), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "UPDATE \"Sales\".\"Order \"\"Lines\"\"\" x SET "
                                          "\"note\" = u.\"note\"::text FROM u WHERE "
                                          "x.\"tenant-id\" = u.\"tenant-id\"::text AND x.\"order\" "
                                          "= u.\"order\"::bigint RETURNING x.\"tenant-id\", "
                                          "x.\"order\""));
    /* the anti-join only when the update missed a row */
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "FROM u WHERE (SELECT pg_catalog.count(*) FROM upd) "
                                          "OPERATOR(pg_catalog.<) (SELECT pg_catalog.count(*) "
                                          "FROM u) AND NOT EXISTS (SELECT 1 FROM upd WHERE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "unnest($3::pg_catalog.text[])) AS u(\"note\", "
                                          "\"tenant-id\", \"order\")"));
    sql_buf_reset(&b);
    CU_ASSERT_EQUAL(sql_build_multi_delete(&b, t), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "DELETE FROM \"Sales\".\"Order \"\"Lines\"\"\" x USING ROWS "
                                   "FROM (pg_catalog.unnest($1::pg_catalog.text[]), "
                                   "pg_catalog.unnest($2::pg_catalog.text[])) AS u(\"tenant-id\", "
                                   "\"order\") WHERE x.\"tenant-id\" = u.\"tenant-id\"::text AND "
                                   "x.\"order\" = u.\"order\"::bigint");
    sql_buf_reset(&b);
    /* a key column among the columns to set is a key change: not for the multi-row form */
    CU_ASSERT_EQUAL(sql_build_multi_update(&b, t, cols, 3), XDCR_EINVAL);
    sql_buf_free(&b);
    xdcr_table_free(t);
}

/* Columns with a usable array type arrive as arrays of their type, the rest as text[] + cast. */
static void test_sql_multi_statements_typed_arrays(void)
{
    xdcr_table_t *t = tricky_table();
    sql_buf_t b;
    uint32_t cols[] = {0, 1, 2};
    uint32_t set[] = {0, 3};

    t->cols[0].array_oid = 1007; /* "Qty" integer[] */
    t->cols[1].array_oid = 1016; /* "order" bigint[] */
    /* "tenant-id" and "note" stay text[]: as for a type without a usable array type */
    CU_ASSERT_EQUAL(sql_multi_param_type(t, 0), 1007);
    CU_ASSERT_EQUAL(sql_multi_param_type(t, 1), 1016);
    CU_ASSERT_EQUAL(sql_multi_param_type(t, 2), 1009);
    sql_buf_init(&b);
    CU_ASSERT_EQUAL(sql_build_multi_upsert(&b, t, cols, 3), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data, "INSERT INTO \"Sales\".\"Order \"\"Lines\"\"\" (\"Qty\", \"order\", \"tenant-id\") "
                "SELECT u.\"Qty\", u.\"order\", u.\"tenant-id\"::text FROM ROWS FROM "
                "(pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3::pg_catalog."
                "text[])) AS u(\"Qty\", \"order\", \"tenant-id\") ON CONFLICT (\"tenant-id\", "
                "\"order\") DO UPDATE SET \"Qty\" = EXCLUDED.\"Qty\"");
    sql_buf_reset(&b);
    CU_ASSERT_EQUAL(sql_build_multi_update(&b, t, set, 2), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2:"
                                          ":pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog."
                                          "text[]), pg_catalog.unnest($4)) AS u(\"Qty\", \"note\", "
                                          "\"tenant-id\", \"order\")"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "SET \"Qty\" = u.\"Qty\", \"note\" = u.\"note\"::text "
                                          "FROM u WHERE x.\"tenant-id\" = u.\"tenant-id\"::text "
                                          "AND x.\"order\" = u.\"order\" RETURNING"));
    sql_buf_reset(&b);
    /* the update alone: no RETURNING, no insert of missing rows */
    CU_ASSERT_EQUAL(sql_build_multi_update_fast(&b, t, set, 2), 0);
    CU_ASSERT_STRING_EQUAL(
        b.data,
        "UPDATE \"Sales\".\"Order \"\"Lines\"\"\" x SET \"Qty\" = u.\"Qty\", \"note\" = "
        "u.\"note\"::text FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2::"
        "pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4)) "
        "AS u(\"Qty\", \"note\", \"tenant-id\", \"order\") WHERE x.\"tenant-id\" = "
        "u.\"tenant-id\"::text AND x.\"order\" = u.\"order\"");
    sql_buf_reset(&b);
    CU_ASSERT_EQUAL(sql_build_multi_update_fast(&b, t, set, 0), XDCR_EINVAL);
    CU_ASSERT_EQUAL(sql_build_multi_update_fast(&b, t, cols, 3), XDCR_EINVAL); /* a key column */
    sql_buf_reset(&b);
    CU_ASSERT_EQUAL(sql_build_multi_delete(&b, t), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "USING ROWS FROM (pg_catalog.unnest($1::pg_catalog."
                                          "text[]), pg_catalog.unnest($2)) AS u"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "AND x.\"order\" = u.\"order\""));
    sql_buf_free(&b);
    xdcr_table_free(t);
}

static void test_sql_array_elements_are_escaped(void)
{
    sql_buf_t b;

    sql_buf_init(&b);
    sql_append(&b, "{");
    sql_append_array_elem(&b, "plain", 5, true);
    sql_append_array_elem(&b, NULL, 0, false);
    sql_append_array_elem(&b, "q\"uo\\te, {x}", 12, false);
    sql_append_array_elem(&b, "NULL", 4, false);
    sql_append_array_elem(&b, "", 0, false);
    sql_append(&b, "}");
    CU_ASSERT_STRING_EQUAL(b.data, "{\"plain\",NULL,\"q\\\"uo\\\\te, {x}\",\"NULL\",\"\"}");
    sql_buf_free(&b);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_sql_quote_ident_and_literal),
        XDCR_TEST(test_sql_upsert_simple),
        XDCR_TEST(test_sql_upsert_key_only_does_nothing_on_conflict),
        XDCR_TEST(test_sql_upsert_composite_key_and_tricky_names),
        XDCR_TEST(test_sql_upsert_rejects_missing_key_column),
        XDCR_TEST(test_sql_update_leaves_unchanged_toast_out),
        XDCR_TEST(test_sql_update_composite_key),
        XDCR_TEST(test_sql_update_changed_key_matches_old_key),
        XDCR_TEST(test_sql_update_with_nothing_to_set),
        XDCR_TEST(test_sql_update_rejects_inconsistent_key_sets),
        XDCR_TEST(test_sql_delete_by_composite_key),
        XDCR_TEST(test_sql_no_primary_key_is_rejected),
        XDCR_TEST(test_sql_truncate),
        XDCR_TEST(test_sql_schema_ddl_quotes_schema_everywhere),
        XDCR_TEST(test_sql_resolved_insert),
        XDCR_TEST(test_sql_resolved_update_composite_key),
        XDCR_TEST(test_sql_resolved_delete_leaves_tombstone),
        XDCR_TEST(test_sql_resolved_rejects_bad_input),
        XDCR_TEST(test_sql_schema_ddl_has_conflict_objects),
        XDCR_TEST(test_sql_multi_statements),
        XDCR_TEST(test_sql_multi_statements_typed_arrays),
        XDCR_TEST(test_sql_array_elements_are_escaped),
        XDCR_TEST_END};

    return xdcr_test_run("sql_build", cases);
}
