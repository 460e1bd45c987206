/*
 * test_json_lite.c - unit tests for common/json_lite.c: the edges of the JSON language, each
 * checked against jansson's json_loadb(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL) (same verdict,
 * same values), plus value access and errors. tests/fuzz/fuzz_json.c does the same on random
 * inputs.
 */
#include "xdcr/json_lite.h"
#include "xdcr_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Parse with both; the verdicts must agree. Returns the json_lite verdict. */
static bool both(const char *s, size_t n)
{
    jl_arena_t a;
    jl_error_t err;
    json_error_t jerr;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    jl_value_t *v;

    jl_arena_init(&a, 0);
    v = jl_parse(s, n, &a, &err);
    if ((v != NULL) != (j != NULL))
        fprintf(stderr, "verdicts differ for %.*s: json_lite %s, jansson %s\n", (int)n, s,
                v ? "accepts" : err.text, j ? "accepts" : jerr.text);
    CU_ASSERT_EQUAL(v != NULL, j != NULL);
    if (v == NULL)
        CU_ASSERT(err.text[0] != '\0' && err.position <= n);
    json_decref(j);
    jl_arena_free(&a);
    return v != NULL;
}

static bool ok(const char *s)
{
    return both(s, strlen(s));
}

static char *nested(int depth, const char *inner)
{
    size_t n = strlen(inner);
    char *s = malloc(2 * (size_t)depth + n + 1);

    memset(s, '[', (size_t)depth);
    memcpy(s + depth, inner, n);
    memset(s + depth + n, ']', (size_t)depth);
    s[2 * depth + n] = '\0';
    return s;
}

static void test_json_lite_depth_limit(void)
{
    /* every value counts, the top one being 1: 2048 arrays may hold nothing, 2047 a scalar */
    char *a = nested(2048, ""), *b = nested(2049, ""), *c = nested(2047, "1"),
         *d = nested(2048, "1");

    CU_ASSERT_TRUE(ok(a));
    CU_ASSERT_FALSE(ok(b));
    CU_ASSERT_TRUE(ok(c));
    CU_ASSERT_FALSE(ok(d));
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_json_lite_utf8(void)
{
    CU_ASSERT_TRUE(ok("[\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"]"));
    CU_ASSERT_FALSE(ok("[\"\xc0\x80\"]"));         /* overlong NUL */
    CU_ASSERT_FALSE(ok("[\"\xe0\x80\x80\"]"));     /* overlong */
    CU_ASSERT_FALSE(ok("[\"\xed\xa0\x80\"]"));     /* a surrogate, encoded */
    CU_ASSERT_FALSE(ok("[\"\xf4\x90\x80\x80\"]")); /* above U+10FFFF */
    CU_ASSERT_FALSE(ok("[\"\xc3\"]"));             /* truncated */
    CU_ASSERT_FALSE(ok("[\"\x80\"]"));             /* a continuation byte */
    CU_ASSERT_FALSE(ok("\xef\xbb\xbf[]"));         /* a BOM */
    CU_ASSERT_FALSE(ok("[\xc3\xa9]"));             /* outside a string */
    CU_ASSERT_TRUE(ok("[\"\xf4\x8f\xbf\xbf\"]"));  /* U+10FFFF */
}

static void test_json_lite_escapes(void)
{
    CU_ASSERT_TRUE(ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"));
    CU_ASSERT_TRUE(ok("[\"\\u00e9\\u4E2D\\ud83d\\ude00\"]"));
    CU_ASSERT_TRUE(ok("[\"a\\u0000b\"]"));       /* allowed in values */
    CU_ASSERT_FALSE(ok("{\"a\\u0000b\": 1}"));   /* not in keys */
    CU_ASSERT_FALSE(ok("[\"\\ud83d\"]"));        /* a lone high surrogate */
    CU_ASSERT_FALSE(ok("[\"\\ude00\"]"));        /* a lone low one */
    CU_ASSERT_FALSE(ok("[\"\\ud83d\\u0041\"]")); /* high, then no low */
    CU_ASSERT_FALSE(ok("[\"\\ude00\\ud83d\"]")); /* reversed */
    CU_ASSERT_FALSE(ok("[\"\\x41\"]"));
    CU_ASSERT_FALSE(ok("[\"\\u00g1\"]"));
    CU_ASSERT_FALSE(ok("[\"\\u00e\"]"));
    CU_ASSERT_FALSE(ok("[\"tab\there\"]")); /* a raw control character */
    CU_ASSERT_FALSE(ok("[\"line\nbreak\"]"));
    CU_ASSERT_FALSE(both("[\"a\0b\"]", 6)); /* a raw NUL */
    CU_ASSERT_FALSE(ok("[\"unterminated]"));
    CU_ASSERT_FALSE(ok("[\"ends in escape\\"));
}

static void test_json_lite_numbers(void)
{
    CU_ASSERT_TRUE(ok("[0, -0, 1, -1, 9223372036854775807, -9223372036854775808]"));
    CU_ASSERT_FALSE(ok("[9223372036854775808]"));
    CU_ASSERT_FALSE(ok("[-9223372036854775809]"));
    CU_ASSERT_TRUE(ok("[1.5, -0.0, 1e5, 1E+5, 1e-5, 2.5e-3, 1e308, 1e-320, 1e-400]"));
    CU_ASSERT_FALSE(ok("[1e309]"));
    CU_ASSERT_FALSE(ok("[-1e309]"));
    CU_ASSERT_FALSE(ok("[01]"));
    CU_ASSERT_FALSE(ok("[-01]"));
    CU_ASSERT_FALSE(ok("[1.]"));
    CU_ASSERT_FALSE(ok("[.5]"));
    CU_ASSERT_FALSE(ok("[1e]"));
    CU_ASSERT_FALSE(ok("[1e+]"));
    CU_ASSERT_FALSE(ok("[-]"));
    CU_ASSERT_FALSE(ok("[+1]"));
    CU_ASSERT_FALSE(ok("[0x10]"));
    CU_ASSERT_FALSE(ok("[1a]"));
    CU_ASSERT_FALSE(ok("[NaN]"));
    CU_ASSERT_FALSE(ok("[Infinity]"));
}

static void test_json_lite_structure(void)
{
    char big[2048];
    size_t n = 0;

    CU_ASSERT_TRUE(ok(" \t\r\n{ \"a\" : [ ] , \"b\" : { } , \"c\":[true,false,null] } \n"));
    CU_ASSERT_FALSE(ok(""));
    CU_ASSERT_FALSE(ok("   "));
    CU_ASSERT_FALSE(ok("1"));
    CU_ASSERT_FALSE(ok("\"top-level string\""));
    CU_ASSERT_FALSE(ok("null"));
    CU_ASSERT_FALSE(ok("[] []"));
    CU_ASSERT_FALSE(ok("[1,]"));
    CU_ASSERT_FALSE(ok("[,1]"));
    CU_ASSERT_FALSE(ok("{\"a\":1,}"));
    CU_ASSERT_FALSE(ok("{\"a\"}"));
    CU_ASSERT_FALSE(ok("{\"a\" 1}"));
    CU_ASSERT_FALSE(ok("{1:1}"));
    CU_ASSERT_FALSE(ok("{'a':1}"));
    CU_ASSERT_FALSE(ok("[tru]"));
    CU_ASSERT_FALSE(ok("[truex]"));
    CU_ASSERT_FALSE(ok("[nulll]"));
    CU_ASSERT_FALSE(ok("[[]"));
    CU_ASSERT_FALSE(ok("[]]"));
    CU_ASSERT_FALSE(ok("{\"a\":1,\"a\":2}"));
    CU_ASSERT_TRUE(ok("{\"a\":1,\"A\":2,\"a \":3}"));
    /* a large object: duplicates are found after sorting */
    n += (size_t)snprintf(big + n, sizeof(big) - n, "{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(big + n, sizeof(big) - n, "}");
    CU_ASSERT_TRUE(ok(big));
    snprintf(big + n, sizeof(big) - n, ",\"k17\":0}");
    CU_ASSERT_FALSE(ok(big));
    snprintf(big + n, sizeof(big) - n, ",\"k40\":0}");
    CU_ASSERT_TRUE(ok(big));
}

static void test_json_lite_values(void)
{
    const char *s = "{\"name\":\"x\\u0000y\",\"n\":-42,\"r\":0.25,\"list\":[1,\"two\",null],"
                    "\"t\":true}";
    jl_arena_t a;
    jl_error_t err;
    const jl_value_t *v, *root;

    jl_arena_init(&a, 0);
    root = jl_parse(s, strlen(s), &a, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(root->type, JL_OBJECT);
    CU_ASSERT_EQUAL(root->n, 5);
    v = jl_object_get(root, "name");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(v->type, JL_STRING);
    CU_ASSERT_EQUAL(v->n, 3);
    CU_ASSERT_EQUAL(memcmp(v->u.s, "x\0y", 4), 0);
    CU_ASSERT_EQUAL(jl_object_get(root, "n")->u.i, -42);
    CU_ASSERT_EQUAL(jl_object_get(root, "r")->u.r, 0.25);
    CU_ASSERT_EQUAL(jl_object_get(root, "t")->type, JL_TRUE);
    v = jl_object_get(root, "list");
    CU_ASSERT_EQUAL(jl_array_size(v), 3);
    CU_ASSERT_EQUAL(jl_array_get(v, 0)->u.i, 1);
    CU_ASSERT_STRING_EQUAL(jl_array_get(v, 1)->u.s, "two");
    CU_ASSERT_EQUAL(jl_array_get(v, 2)->type, JL_NULL);
    CU_ASSERT_PTR_NULL(jl_array_get(v, 3));
    CU_ASSERT_PTR_NULL(jl_object_get(root, "missing"));
    CU_ASSERT_PTR_NULL(jl_object_get(v, "name")); /* not an object */
    CU_ASSERT_EQUAL(jl_array_size(root), 0);
    jl_arena_free(&a);

    jl_arena_init(&a, 0);
    CU_ASSERT_PTR_NULL(jl_parse("{\"a\":[1,2,}", 11, &a, &err));
    CU_ASSERT_EQUAL(err.position, 10);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "expected") ? err.text : strstr(err.text, "token"));
    jl_arena_free(&a);
}

/* Strings and arrays bigger than a chunk, many chunks. */
static void test_json_lite_large(void)
{
    size_t n = 3 * 1024 * 1024, k = 0;
    char *s = malloc(n + 64);
    jl_arena_t a;
    jl_error_t err;
    const jl_value_t *v;

    k += (size_t)sprintf(s, "[\"");
    memset(s + k, 'x', 1024 * 1024);
    k += 1024 * 1024;
    k += (size_t)sprintf(s + k, "\"");
    while (k < n - 8)
        k += (size_t)sprintf(s + k, ",%zu", k % 1000);
    k += (size_t)sprintf(s + k, "]");
    CU_ASSERT_TRUE(both(s, k));
    jl_arena_init(&a, 0);
    v = jl_parse(s, k, &a, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(jl_array_get(v, 0)->n, 1024 * 1024);
    CU_ASSERT(jl_array_size(v) > 100000);
    jl_arena_free(&a);
    free(s);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_json_lite_depth_limit), XDCR_TEST(test_json_lite_utf8),
        XDCR_TEST(test_json_lite_escapes),     XDCR_TEST(test_json_lite_numbers),
        XDCR_TEST(test_json_lite_structure),   XDCR_TEST(test_json_lite_values),
        XDCR_TEST(test_json_lite_large),       XDCR_TEST_END,
    };

    return xdcr_test_run("json_lite", cases);
}
