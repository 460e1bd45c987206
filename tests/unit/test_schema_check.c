/*
 * test_schema_check.c - the preflight rules (common/schema_check.c): column mapping by
 * name, type compatibility, and that every mismatch of a wrong target table is reported at once.
 */
#include "xdcr/error.h"
#include "xdcr/schema_check.h"
#include "xdcr_test.h"

#include <string.h>

typedef struct tcol_def {
    const char *name, *type;
    uint32_t pk_pos;
    bool not_null, has_default, generated;
} tcol_def_t;

static xdcr_table_t *make_table(const char *name, const tcol_def_t *defs, size_t n)
{
    xdcr_table_t *t = xdcr_table_new("public", name, 1, 'r');

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (size_t i = 0; i < n; i++) {
        xdcr_tcol_t c;

        memset(&c, 0, sizeof(c));
        c.name = (char *)(uintptr_t)defs[i].name;
        c.type_name = (char *)(uintptr_t)defs[i].type;
        c.pk_pos = defs[i].pk_pos;
        c.not_null = defs[i].not_null || defs[i].pk_pos > 0;
        c.has_default = defs[i].has_default;
        c.generated = defs[i].generated;
        CU_ASSERT_EQUAL_FATAL(xdcr_table_add_column(t, &c), 0);
    }
    CU_ASSERT_EQUAL_FATAL(xdcr_table_finish(t), 0);
    return t;
}

static const xdcr_column_t src_cols[] = {
    {"id", "integer", 23, -1, true},
    {"name", "text", 25, -1, false},
    {"amount", "numeric", 1700, -1, false},
    {"tags", "text[]", 1009, -1, false},
};
static const xdcr_relation_t src_rel = {"public", "orders", 4, src_cols};

static bool has_problem(const xdcr_problems_t *p, const char *needle)
{
    for (size_t i = 0; i < p->count; i++)
        if (strstr(p->items[i], needle) != NULL)
            return true;
    return false;
}

static void test_check_maps_columns_by_name(void)
{
    static const tcol_def_t defs[] = {
        {"extra", "text", 0, false, false, false},     {"tags", "text[]", 0, false, false, false},
        {"amount", "numeric", 0, false, false, false}, {"name", "text", 0, false, false, false},
        {"id", "integer", 1, true, false, false},
    };
    xdcr_table_t *t = make_table("orders", defs, 5);
    xdcr_problems_t p;
    int32_t map[4];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 0);
    CU_ASSERT_EQUAL(p.count, 0);
    CU_ASSERT_EQUAL(map[0], 4);
    CU_ASSERT_EQUAL(map[1], 3);
    CU_ASSERT_EQUAL(map[2], 2);
    CU_ASSERT_EQUAL(map[3], 1);
    CU_ASSERT_EQUAL(xdcr_table_find_column(t, "extra"), 0);
    CU_ASSERT_EQUAL(xdcr_table_find_column(t, "nope"), -1);
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_reports_every_mismatch_at_once(void)
{
    static const tcol_def_t defs[] = {
        {"id", "bigint", 1, true, false, false},       /* widening: fine */
        {"amount", "integer", 0, false, false, false}, /* numeric -> integer: narrowing */
        {"tags", "text", 0, false, false, false},      /* text target: fine */
        {"required", "date", 0, true, false, false},   /* NOT NULL, no default, not sent */
        {"total", "numeric", 0, true, false, true},    /* generated, not sent: fine */
    };
    xdcr_table_t *t = make_table("orders", defs, 5);
    xdcr_problems_t p;
    int32_t map[4];
    char buf[2048];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 3);
    CU_ASSERT_TRUE(has_problem(&p, "column public.orders.name (text) is missing at the target"));
    CU_ASSERT_TRUE(has_problem(&p, "amount has type numeric at the source but integer"));
    CU_ASSERT_TRUE(has_problem(&p, "required is NOT NULL without a default"));
    CU_ASSERT_EQUAL(map[0], 0);
    CU_ASSERT_EQUAL(map[1], -1);
    CU_ASSERT_EQUAL(map[2], -1);
    CU_ASSERT_EQUAL(map[3], 2);
    xdcr_problems_join(&p, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "; "));
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_missing_table_and_missing_key(void)
{
    static const tcol_def_t defs[] = {
        {"id", "integer", 0, true, false, false},
        {"name", "text", 0, false, false, false},
        {"amount", "numeric", 0, false, false, false},
        {"tags", "text[]", 0, false, false, false},
    };
    xdcr_table_t *t = make_table("orders", defs, 4);
    xdcr_problems_t p;
    int32_t map[4];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, NULL, map, &p), 1);
    CU_ASSERT_TRUE(has_problem(&p, "table public.orders does not exist at the target"));
    CU_ASSERT_EQUAL(map[0], -1);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 1);
    CU_ASSERT_TRUE(has_problem(&p, "table public.orders has no primary key at the target"));
    CU_ASSERT_EQUAL(xdcr_check_table("public", "x", NULL, &p), 1);
    CU_ASSERT_EQUAL(xdcr_check_table("public", "orders", t, &p), 1);
    CU_ASSERT_EQUAL(p.count, 4);
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_key_not_sent_or_not_replica_identity(void)
{
    static const tcol_def_t defs[] = {
        {"id", "integer", 1, true, false, false},
        {"name", "text", 2, true, false, false},   /* in the key, not in the source's */
        {"region", "text", 3, true, false, false}, /* in the key, not sent at all */
        {"amount", "numeric", 0, false, false, false},
        {"tags", "text[]", 0, false, false, false},
    };
    xdcr_table_t *t = make_table("orders", defs, 5);
    xdcr_problems_t p;
    int32_t map[4];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 2);
    CU_ASSERT_TRUE(has_problem(&p, "primary key column name of public.orders at the target is "
                                   "not part of the source's replica identity"));
    CU_ASSERT_TRUE(has_problem(&p, "primary key column region of public.orders at the target is "
                                   "not sent by the source"));
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_generated_target_column_cannot_be_written(void)
{
    static const tcol_def_t defs[] = {
        {"id", "integer", 1, true, false, false},
        {"name", "text", 0, false, false, true},
        {"amount", "numeric", 0, false, false, false},
        {"tags", "text[]", 0, false, false, false},
    };
    xdcr_table_t *t = make_table("orders", defs, 4);
    xdcr_problems_t p;
    int32_t map[4];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 1);
    CU_ASSERT_TRUE(has_problem(&p, "name is generated at the target"));
    CU_ASSERT_EQUAL(map[1], -1);
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_not_a_table(void)
{
    xdcr_table_t *t = xdcr_table_new("public", "orders", 1, 'v');
    xdcr_problems_t p;
    int32_t map[4];

    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_table_finish(t), 0);
    CU_ASSERT_EQUAL(xdcr_check_relation(&src_rel, t, map, &p), 1);
    CU_ASSERT_TRUE(has_problem(&p, "is not a table"));
    xdcr_problems_free(&p);
    xdcr_table_free(t);
}

static void test_check_type_compatibility(void)
{
    CU_ASSERT_TRUE(xdcr_types_compatible("integer", "integer"));
    CU_ASSERT_TRUE(xdcr_types_compatible("integer", "bigint"));
    CU_ASSERT_TRUE(xdcr_types_compatible("smallint", "numeric"));
    CU_ASSERT_TRUE(xdcr_types_compatible("real", "double precision"));
    CU_ASSERT_TRUE(xdcr_types_compatible("json", "jsonb"));
    CU_ASSERT_TRUE(xdcr_types_compatible("uuid", "text"));
    CU_ASSERT_TRUE(xdcr_types_compatible("text", "character varying"));
    CU_ASSERT_TRUE(xdcr_types_compatible("integer[]", "bigint[]"));
    CU_ASSERT_TRUE(xdcr_types_compatible("public.mood", "public.mood"));
    CU_ASSERT_TRUE(xdcr_types_compatible("", "whatever"));
    CU_ASSERT_FALSE(xdcr_types_compatible("bigint", "integer"));
    CU_ASSERT_FALSE(xdcr_types_compatible("text", "integer"));
    CU_ASSERT_FALSE(
        xdcr_types_compatible("timestamp without time zone", "timestamp with time zone"));
    CU_ASSERT_FALSE(xdcr_types_compatible("integer[]", "integer"));
    CU_ASSERT_FALSE(xdcr_types_compatible("public.mood", "other.mood"));
}

/* pgoutput names a domain column by its base type's internal name; the target's domain takes it */
static void test_check_domain_columns_by_base_type(void)
{
    /* catalog rows as xdcr_schema_check_target_sql returns them */
    static const char *const rows[][XDCR_SCHEMA_CHECK_TARGET_NCOLS] = {
        {"1", "r", "id", "20", "bigint", "t", "f", "f", "1", "1016", NULL},
        {"1", "r", "qty", "16390", "public.posint", "f", "f", "f", "0", "16389", "integer"},
        {"1", "r", "at", "16392", "public.stamp", "f", "f", "f", "0", "16391",
         "timestamp with time zone"},
    };
    static const char *const no_columns[XDCR_SCHEMA_CHECK_TARGET_NCOLS] = {"1", "r"};
    static const xdcr_column_t cols[] = {
        {"id", "bigint", 20, -1, true},
        {"qty", "int4", 16385, -1, false}, /* as an older forwarder named it */
        {"at", "timestamp with time zone", 16386, -1, false},
    };
    static const xdcr_relation_t rel = {"public", "d", 3, cols};
    static const xdcr_column_t bad_cols[] = {
        {"id", "bigint", 20, -1, true},
        {"qty", "text", 25, -1, false},
        {"at", "timestamp with time zone", 16386, -1, false},
    };
    static const xdcr_relation_t bad = {"public", "d", 3, bad_cols};
    xdcr_table_t *t = xdcr_table_new("public", "d", 1, 'r');
    xdcr_problems_t p;
    int32_t map[3];

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(xdcr_table_add_catalog_row(t, no_columns), 0);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(xdcr_table_add_catalog_row(t, rows[i]), 0);
    CU_ASSERT_EQUAL_FATAL(xdcr_table_finish(t), 0);
    CU_ASSERT_EQUAL(t->ncols, 3);
    CU_ASSERT_EQUAL(t->cols[0].array_oid, 1016);
    CU_ASSERT_TRUE(t->cols[0].not_null);
    CU_ASSERT_PTR_NULL(t->cols[0].base_type_name);
    CU_ASSERT_STRING_EQUAL(t->cols[1].base_type_name, "integer");
    xdcr_problems_init(&p);
    CU_ASSERT_EQUAL(xdcr_check_relation(&rel, t, map, &p), 0);
    CU_ASSERT_EQUAL(map[1], 1);
    CU_ASSERT_EQUAL(map[2], 2);
    /* the base type does not widen what the domain takes */
    CU_ASSERT_EQUAL(xdcr_check_relation(&bad, t, map, &p), 1);
    CU_ASSERT_TRUE(has_problem(&p, "qty has type text at the source but public.posint"));
    xdcr_problems_free(&p);
    xdcr_table_free(t);
    CU_ASSERT_STRING_EQUAL(xdcr_type_canonical("int8"), "bigint");
    CU_ASSERT_STRING_EQUAL(xdcr_type_canonical("timestamptz"), "timestamp with time zone");
    CU_ASSERT_STRING_EQUAL(xdcr_type_canonical("char"), "\"char\"");
    CU_ASSERT_STRING_EQUAL(xdcr_type_canonical("numeric"), "numeric");
    CU_ASSERT_TRUE(xdcr_types_compatible("int4", "bigint"));
}

static void test_check_table_finish_rejects_key_holes(void)
{
    static const tcol_def_t ok[] = {
        {"b", "integer", 2, true, false, false},
        {"a", "integer", 1, true, false, false},
    };
    xdcr_table_t *t = make_table("k", ok, 2);
    xdcr_tcol_t c;

    CU_ASSERT_EQUAL(t->npk, 2);
    CU_ASSERT_EQUAL(t->pk[0], 1);
    CU_ASSERT_EQUAL(t->pk[1], 0);
    memset(&c, 0, sizeof(c));
    c.name = (char *)(uintptr_t) "c";
    c.type_name = (char *)(uintptr_t) "integer";
    c.pk_pos = 4;
    CU_ASSERT_EQUAL(xdcr_table_add_column(t, &c), 0);
    CU_ASSERT_EQUAL(xdcr_table_finish(t), XDCR_EINVAL);
    xdcr_table_free(t);
    xdcr_table_free(NULL);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_check_maps_columns_by_name),
        XDCR_TEST(test_check_reports_every_mismatch_at_once),
        XDCR_TEST(test_check_missing_table_and_missing_key),
        XDCR_TEST(test_check_key_not_sent_or_not_replica_identity),
        XDCR_TEST(test_check_generated_target_column_cannot_be_written),
        XDCR_TEST(test_check_not_a_table),
        XDCR_TEST(test_check_type_compatibility),
        XDCR_TEST(test_check_domain_columns_by_base_type),
        XDCR_TEST(test_check_table_finish_rejects_key_holes),
        XDCR_TEST_END};

    return xdcr_test_run("schema_check", cases);
}
