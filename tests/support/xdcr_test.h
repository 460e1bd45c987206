/*
 * xdcr_test.h - a small CUnit runner shared by the unit tests: one suite per executable,
 * exit status 0 only when every test ran and passed.
 */
#ifndef XDCR_TEST_H
#define XDCR_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>

typedef struct xdcr_test_case {
    const char *name;
    void (*fn)(void);
} xdcr_test_case_t;

static inline int xdcr_test_run(const char *suite_name, const xdcr_test_case_t *cases)
{
    unsigned failed;
    int ran;
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite(suite_name, NULL, NULL);
    if (suite == NULL)
        goto fail;
    for (const xdcr_test_case_t *c = cases; c->name != NULL; c++)
        if (CU_add_test(suite, c->name, c->fn) == NULL)
            goto fail;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto fail;
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    ran = (int)CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed == 0 && ran > 0) ? 0 : 1;
fail:
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
}

#define XDCR_TEST(fn)                                                                              \
    {                                                                                              \
#fn, fn                                                                                    \
    }
#define XDCR_TEST_END                                                                              \
    {                                                                                              \
        NULL, NULL                                                                                 \
    }

#endif
