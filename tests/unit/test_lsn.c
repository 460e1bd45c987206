/*
 * test_lsn.c - unit tests for common/lsn.c: parsing and formatting LSNs exactly as PostgreSQL
 * prints them, comparison and lag arithmetic.
 */
#include "xdcr/lsn.h"
#include "xdcr_test.h"

#include <string.h>

static xdcr_lsn_t parse_ok(const char *s)
{
    xdcr_error_t err;
    xdcr_lsn_t lsn = 12345;

    xdcr_error_clear(&err);
    CU_ASSERT_EQUAL(xdcr_lsn_parse(s, &lsn, &err), 0);
    CU_ASSERT_EQUAL(err.code, 0);
    return lsn;
}

static void assert_rejected(const char *s)
{
    xdcr_error_t err;
    xdcr_lsn_t lsn = 777;

    CU_ASSERT_EQUAL(xdcr_lsn_parse(s, &lsn, &err), XDCR_EPARSE);
    CU_ASSERT_EQUAL(err.code, XDCR_EPARSE);
    CU_ASSERT_FALSE(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "invalid lsn"));
    CU_ASSERT_EQUAL(lsn, 777); /* untouched on error */
}

static void test_lsn_parse_accepts_postgres_format(void)
{
    CU_ASSERT_EQUAL(parse_ok("16/B374D848"), UINT64_C(0x16B374D848));
    CU_ASSERT_EQUAL(parse_ok("0/0"), 0);
    CU_ASSERT_EQUAL(parse_ok("0/16B3748"), UINT64_C(0x16B3748));
    CU_ASSERT_EQUAL(parse_ok("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
    CU_ASSERT_EQUAL(parse_ok("1/0"), UINT64_C(0x100000000));
}

static void test_lsn_parse_accepts_lower_case_and_leading_zeros(void)
{
    CU_ASSERT_EQUAL(parse_ok("16/b374d848"), UINT64_C(0x16B374D848));
    CU_ASSERT_EQUAL(parse_ok("00000016/0000ABCD"), UINT64_C(0x160000ABCD));
    CU_ASSERT_EQUAL(parse_ok("aB/Cd"), UINT64_C(0xAB000000CD));
}

static void test_lsn_parse_rejects_missing_slash(void)
{
    assert_rejected("16B374D848");
    assert_rejected("");
}

static void test_lsn_parse_rejects_empty_halves(void)
{
    assert_rejected("/B374D848");
    assert_rejected("16/");
    assert_rejected("/");
}

static void test_lsn_parse_rejects_signs_spaces_and_prefixes(void)
{
    assert_rejected("-1/0");
    assert_rejected("+1/0");
    assert_rejected("1/-0");
    assert_rejected(" 1/0");
    assert_rejected("1/0 ");
    assert_rejected("1 /0");
    assert_rejected("1/ 0");
    assert_rejected("0x1/0");
    assert_rejected("1/0x0");
}

static void test_lsn_parse_rejects_trailing_garbage(void)
{
    assert_rejected("16/B374D848/1");
    assert_rejected("16/B374D848g");
    assert_rejected("16/B374D848\n");
    assert_rejected("1//2");
}

static void test_lsn_parse_rejects_overflowing_halves(void)
{
    assert_rejected("100000000/0");
    assert_rejected("0/100000000");
    assert_rejected("000000001/0"); /* more than 8 digits even if the value fits */
}

static void test_lsn_parse_rejects_non_hex(void)
{
    assert_rejected("G/0");
    assert_rejected("1/Z");
    assert_rejected("1.5/0");
}

static void test_lsn_parse_null_is_einval(void)
{
    xdcr_error_t err;
    xdcr_lsn_t lsn;

    CU_ASSERT_EQUAL(xdcr_lsn_parse(NULL, &lsn, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_lsn_parse("0/1", NULL, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_lsn_parse("zz", &lsn, NULL), XDCR_EPARSE);
}

static void test_lsn_parse_error_quotes_input_bounded(void)
{
    char big[2000];
    xdcr_error_t err;
    xdcr_lsn_t lsn;

    xdcr_lsn_parse("nope", &lsn, &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\"nope\""));
    memset(big, '7', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_EQUAL(xdcr_lsn_parse(big, &lsn, &err), XDCR_EPARSE);
    CU_ASSERT(strlen(err.message) < XDCR_ERROR_MSG_MAX);
}

static void test_lsn_format_matches_postgres(void)
{
    char buf[XDCR_LSN_STRLEN];

    CU_ASSERT_STRING_EQUAL(xdcr_lsn_format(UINT64_C(0x16B374D848), buf), "16/B374D848");
    CU_ASSERT_STRING_EQUAL(xdcr_lsn_format(0, buf), "0/0");
    CU_ASSERT_STRING_EQUAL(xdcr_lsn_format(UINT64_C(0x16B3748), buf), "0/16B3748");
    CU_ASSERT_STRING_EQUAL(xdcr_lsn_format(UINT64_C(0x100000000), buf), "1/0");
    CU_ASSERT_STRING_EQUAL(xdcr_lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
    CU_ASSERT_EQUAL(strlen(buf), XDCR_LSN_STRLEN - 1);
    CU_ASSERT_PTR_EQUAL(xdcr_lsn_format(1, buf), buf);
}

static void test_lsn_format_then_parse_round_trips(void)
{
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);

    for (int i = 0; i < 2000; i++) {
        char buf[XDCR_LSN_STRLEN];
        xdcr_lsn_t lsn;

        /* xorshift64: deterministic spread over all bit patterns */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lsn = (i % 3 == 0) ? (x >> (i % 64)) : x;
        xdcr_lsn_format(lsn, buf);
        CU_ASSERT_EQUAL(parse_ok(buf), lsn);
    }
}

static void test_lsn_cmp_orders_as_unsigned(void)
{
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(1, 2), -1);
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(2, 1), 1);
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(5, 5), 0);
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(0, UINT64_MAX), -1);
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(UINT64_MAX, UINT64_C(0x7FFFFFFFFFFFFFFF)), 1);
    CU_ASSERT_EQUAL(xdcr_lsn_cmp(UINT64_C(0x100000000), UINT64_C(0xFFFFFFFF)), 1);
}

static void test_lsn_diff_is_never_negative(void)
{
    CU_ASSERT_EQUAL(xdcr_lsn_diff(100, 40), 60);
    CU_ASSERT_EQUAL(xdcr_lsn_diff(40, 100), 0);
    CU_ASSERT_EQUAL(xdcr_lsn_diff(7, 7), 0);
    CU_ASSERT_EQUAL(xdcr_lsn_diff(UINT64_MAX, 0), UINT64_MAX);
    CU_ASSERT_EQUAL(xdcr_lsn_diff(0, UINT64_MAX), 0);
    CU_ASSERT_EQUAL(xdcr_lsn_diff(UINT64_C(0x200000000), UINT64_C(0x1FFFFFFFF)), 1);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_lsn_parse_accepts_postgres_format),
        XDCR_TEST(test_lsn_parse_accepts_lower_case_and_leading_zeros),
        XDCR_TEST(test_lsn_parse_rejects_missing_slash),
        XDCR_TEST(test_lsn_parse_rejects_empty_halves),
        XDCR_TEST(test_lsn_parse_rejects_signs_spaces_and_prefixes),
        XDCR_TEST(test_lsn_parse_rejects_trailing_garbage),
        XDCR_TEST(test_lsn_parse_rejects_overflowing_halves),
        XDCR_TEST(test_lsn_parse_rejects_non_hex),
        XDCR_TEST(test_lsn_parse_null_is_einval),
        XDCR_TEST(test_lsn_parse_error_quotes_input_bounded),
        XDCR_TEST(test_lsn_format_matches_postgres),
        XDCR_TEST(test_lsn_format_then_parse_round_trips),
        XDCR_TEST(test_lsn_cmp_orders_as_unsigned),
        XDCR_TEST(test_lsn_diff_is_never_negative),
        XDCR_TEST_END,
    };

    return xdcr_test_run("lsn", cases);
}
