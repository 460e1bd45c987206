/*
 * test_error.c - unit tests for common/error.c: the code table, filling and prefixing errors,
 * and the exit status map.
 */
#include "xdcr/error.h"
#include "xdcr_test.h"

#include <string.h>

static void test_error_every_code_has_distinct_name_and_text(void)
{
    for (int c = XDCR_OK; c >= XDCR_EUNKNOWN; c--) {
        const char *name = xdcr_error_name(c);
        const char *text = xdcr_strerror(c);

        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT(strlen(name) > 0);
        CU_ASSERT(strlen(text) > 0);
        for (int d = c - 1; d >= XDCR_EUNKNOWN; d--) {
            CU_ASSERT(strcmp(name, xdcr_error_name(d)) != 0);
            CU_ASSERT(strcmp(text, xdcr_strerror(d)) != 0);
        }
    }
}

static void test_error_names_match_enum(void)
{
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_OK), "OK");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_EINVAL), "EINVAL");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_ECONFIG), "ECONFIG");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_ESLOT), "ESLOT");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_EGAP), "EGAP");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_ESYSID), "ESYSID");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_EUNKNOWN), "EUNKNOWN");
    CU_ASSERT_STRING_EQUAL(xdcr_strerror(XDCR_EINVAL), "invalid argument");
    CU_ASSERT_STRING_EQUAL(xdcr_strerror(XDCR_ENOMEM), "out of memory");
}

static void test_error_out_of_range_codes_are_unknown_not_null(void)
{
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(1), "EUNKNOWN");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(XDCR_EUNKNOWN - 1), "EUNKNOWN");
    CU_ASSERT_STRING_EQUAL(xdcr_error_name(-1000000), "EUNKNOWN");
    CU_ASSERT_STRING_EQUAL(xdcr_strerror(12345), "unknown error");
    CU_ASSERT_STRING_EQUAL(xdcr_strerror(-12345), "unknown error");
}

static void test_error_set_fills_and_returns_code(void)
{
    xdcr_error_t err;

    memset(&err, 0x55, sizeof(err));
    CU_ASSERT_EQUAL(xdcr_error_set(&err, XDCR_EPARSE, true, "bad lsn \"%s\" at %d", "x/y", 7),
                    XDCR_EPARSE);
    CU_ASSERT_EQUAL(err.code, XDCR_EPARSE);
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_STRING_EQUAL(err.message, "bad lsn \"x/y\" at 7");
}

static void test_error_set_accepts_null_err(void)
{
    CU_ASSERT_EQUAL(xdcr_error_set(NULL, XDCR_EIO, false, "x %d", 1), XDCR_EIO);
    CU_ASSERT_EQUAL(xdcr_error_prefix(NULL, "ctx"), XDCR_EUNKNOWN);
    xdcr_error_clear(NULL);
}

static void test_error_clear_resets_everything(void)
{
    xdcr_error_t err;

    xdcr_error_set(&err, XDCR_EKAFKA, true, "boom");
    xdcr_error_clear(&err);
    CU_ASSERT_EQUAL(err.code, XDCR_OK);
    CU_ASSERT_FALSE(err.retriable);
    CU_ASSERT_STRING_EQUAL(err.message, "");
}

static void test_error_set_truncates_long_message_safely(void)
{
    char big[3 * XDCR_ERROR_MSG_MAX];
    xdcr_error_t err;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xdcr_error_set(&err, XDCR_EINVAL, false, "%s", big);
    CU_ASSERT_EQUAL(strlen(err.message), XDCR_ERROR_MSG_MAX - 1);
    CU_ASSERT_EQUAL(err.message[XDCR_ERROR_MSG_MAX - 1], '\0');
    CU_ASSERT_EQUAL(err.message[0], 'a');
}

static void test_error_set_may_reuse_own_message_as_argument(void)
{
    xdcr_error_t err;

    xdcr_error_set(&err, XDCR_EPG, false, "relation missing");
    xdcr_error_set(&err, XDCR_EAPPLY, false, "apply failed: %s", err.message);
    CU_ASSERT_EQUAL(err.code, XDCR_EAPPLY);
    CU_ASSERT_STRING_EQUAL(err.message, "apply failed: relation missing");
}

static void test_error_prefix_prepends_context_and_keeps_code(void)
{
    xdcr_error_t err;

    xdcr_error_set(&err, XDCR_EPARSE, true, "invalid lsn \"zz\"");
    CU_ASSERT_EQUAL(xdcr_error_prefix(&err, "origin %s", "east"), XDCR_EPARSE);
    CU_ASSERT_STRING_EQUAL(err.message, "origin east: invalid lsn \"zz\"");
    CU_ASSERT_TRUE(err.retriable);
    CU_ASSERT_EQUAL(xdcr_error_prefix(&err, "message %d", 3), XDCR_EPARSE);
    CU_ASSERT_STRING_EQUAL(err.message, "message 3: origin east: invalid lsn \"zz\"");
}

static void test_error_prefix_on_empty_message_has_no_separator(void)
{
    xdcr_error_t err;

    xdcr_error_set(&err, XDCR_EIO, false, "%s", "");
    xdcr_error_prefix(&err, "file %s", "/x");
    CU_ASSERT_STRING_EQUAL(err.message, "file /x");
}

static void test_error_prefix_truncates_when_too_long(void)
{
    char big[XDCR_ERROR_MSG_MAX];
    xdcr_error_t err;

    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xdcr_error_set(&err, XDCR_EIO, false, "%s", big);
    CU_ASSERT_EQUAL(xdcr_error_prefix(&err, "ctx"), XDCR_EIO);
    CU_ASSERT_EQUAL(strlen(err.message), XDCR_ERROR_MSG_MAX - 1);
    CU_ASSERT_EQUAL(strncmp(err.message, "ctx: bbb", 8), 0);

    xdcr_error_set(&err, XDCR_EIO, false, "tail");
    xdcr_error_prefix(&err, "%s", big);
    CU_ASSERT_EQUAL(strlen(err.message), XDCR_ERROR_MSG_MAX - 1);
    CU_ASSERT_EQUAL(err.message[0], 'b');
}

static void test_error_exit_status_maps_unrecoverable_codes(void)
{
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_OK), XDCR_EXIT_OK);
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_ESLOT), XDCR_EXIT_SLOT);
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_EGAP), XDCR_EXIT_GAP);
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_ESYSID), XDCR_EXIT_SOURCE);
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_EHALTED), XDCR_EXIT_HALTED);
    CU_ASSERT_EQUAL(xdcr_error_exit_status(XDCR_ECONFIG), XDCR_EXIT_USAGE);
}

static void test_error_exit_status_is_runtime_for_everything_else(void)
{
    static const int others[] = {XDCR_EINVAL,   XDCR_ENOMEM,   XDCR_EPARSE, XDCR_ECRC,
                                 XDCR_EVERSION, XDCR_EIO,      XDCR_EPG,    XDCR_EPGCONN,
                                 XDCR_EKAFKA,   XDCR_ETIMEOUT, XDCR_ERANGE, XDCR_ESTATE,
                                 XDCR_EFULL,    XDCR_ESCHEMA,  XDCR_EAPPLY, XDCR_ENOTFOUND,
                                 XDCR_EEXISTS,  XDCR_EUNKNOWN, -999};

    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        CU_ASSERT_EQUAL(xdcr_error_exit_status(others[i]), XDCR_EXIT_RUNTIME);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_error_every_code_has_distinct_name_and_text),
        XDCR_TEST(test_error_names_match_enum),
        XDCR_TEST(test_error_out_of_range_codes_are_unknown_not_null),
        XDCR_TEST(test_error_set_fills_and_returns_code),
        XDCR_TEST(test_error_set_accepts_null_err),
        XDCR_TEST(test_error_clear_resets_everything),
        XDCR_TEST(test_error_set_truncates_long_message_safely),
        XDCR_TEST(test_error_set_may_reuse_own_message_as_argument),
        XDCR_TEST(test_error_prefix_prepends_context_and_keeps_code),
        XDCR_TEST(test_error_prefix_on_empty_message_has_no_separator),
        XDCR_TEST(test_error_prefix_truncates_when_too_long),
        XDCR_TEST(test_error_exit_status_maps_unrecoverable_codes),
        XDCR_TEST(test_error_exit_status_is_runtime_for_everything_else),
        XDCR_TEST_END,
    };

    return xdcr_test_run("error", cases);
}
