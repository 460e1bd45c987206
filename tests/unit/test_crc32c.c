/*
 * test_crc32c.c - unit tests for common/crc32c.c: published check values, agreement of the
 * software and hardware paths over all lengths and alignments, and chaining.
 */
#include "xdcr/crc32c.h"
#include "xdcr_test.h"

#include <stdlib.h>
#include <string.h>

/* Bit-at-a-time reference: the definition, independent of the tables under test. */
static uint32_t crc32c_ref(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    crc = ~crc;
    while (len-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill_random(unsigned char *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(rng_next(&seed) >> 56);
}

static void test_crc32c_check_value(void)
{
    CU_ASSERT_EQUAL(xdcr_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(crc32c_ref(0, "123456789", 9), 0xE3069283u);
}

static void test_crc32c_empty_input_keeps_crc(void)
{
    CU_ASSERT_EQUAL(xdcr_crc32c(0, "", 0), 0);
    CU_ASSERT_EQUAL(xdcr_crc32c(0, NULL, 0), 0);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, NULL, 0), 0);
    CU_ASSERT_EQUAL(xdcr_crc32c(0xDEADBEEFu, NULL, 0), 0xDEADBEEFu);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0xDEADBEEFu, NULL, 0), 0xDEADBEEFu);
}

/* RFC 3720 (iSCSI) appendix B.4 test vectors. */
static void test_crc32c_rfc3720_vectors(void)
{
    unsigned char buf[32];

    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(xdcr_crc32c(0, buf, 32), 0x8A9136AAu);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    CU_ASSERT_EQUAL(xdcr_crc32c(0, buf, 32), 0x62A8AB43u);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CU_ASSERT_EQUAL(xdcr_crc32c(0, buf, 32), 0x46DD794Eu);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CU_ASSERT_EQUAL(xdcr_crc32c(0, buf, 32), 0x113FDB5Cu);
    CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, buf, 32), 0x113FDB5Cu);
}

static void test_crc32c_other_known_vectors(void)
{
    CU_ASSERT_EQUAL(xdcr_crc32c(0, "a", 1), 0xC1D04330u);
    CU_ASSERT_EQUAL(xdcr_crc32c(0, "abc", 3), 0x364B3FB7u);
    CU_ASSERT_EQUAL(xdcr_crc32c(0, "The quick brown fox jumps over the lazy dog", 43), 0x22620404u);
}

static void test_crc32c_sw_matches_bitwise_reference(void)
{
    enum { N = 4096 };
    unsigned char *buf = malloc(N + 16);
    uint64_t seed = 42;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    fill_random(buf, N + 16, 7);
    for (size_t len = 0; len <= 300; len++)
        for (size_t off = 0; off < 8; off++)
            CU_ASSERT_EQUAL(xdcr_crc32c_sw(0, buf + off, len), crc32c_ref(0, buf + off, len));
    for (int i = 0; i < 200; i++) {
        size_t off = rng_next(&seed) % 16, len = rng_next(&seed) % N;
        uint32_t init = (uint32_t)rng_next(&seed);

        CU_ASSERT_EQUAL(xdcr_crc32c_sw(init, buf + off, len), crc32c_ref(init, buf + off, len));
    }
    free(buf);
}

static void test_crc32c_sw_and_dispatch_agree_over_random_lengths_and_offsets(void)
{
    enum { N = 1 << 16 };
    unsigned char *buf = malloc(N + 64);
    uint64_t seed = 0x1234567890ABCDEFu;
    int mismatches = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    fill_random(buf, N + 64, 99);
    for (size_t len = 0; len <= 130; len++)
        for (size_t off = 0; off < 16; off++)
            if (xdcr_crc32c(0, buf + off, len) != xdcr_crc32c_sw(0, buf + off, len))
                mismatches++;
    for (int i = 0; i < 2000; i++) {
        size_t off = rng_next(&seed) % 64, len = rng_next(&seed) % N;
        uint32_t init = (uint32_t)rng_next(&seed);

        if (xdcr_crc32c(init, buf + off, len) != xdcr_crc32c_sw(init, buf + off, len))
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    free(buf);
}

static void test_crc32c_chaining_equals_one_call(void)
{
    enum { N = 10000 };
    unsigned char *buf = malloc(N);
    uint64_t seed = 5;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    fill_random(buf, N, 3);
    uint32_t whole = xdcr_crc32c(0, buf, N);

    CU_ASSERT_EQUAL(whole, xdcr_crc32c_sw(0, buf, N));
    for (int round = 0; round < 100; round++) {
        uint32_t hw = 0, sw = 0;
        size_t pos = 0;

        while (pos < N) {
            size_t n = rng_next(&seed) % 100;

            if (n > N - pos)
                n = N - pos;
            hw = xdcr_crc32c(hw, buf + pos, n);
            sw = xdcr_crc32c_sw(sw, buf + pos, n);
            pos += n;
        }
        CU_ASSERT_EQUAL(hw, whole);
        CU_ASSERT_EQUAL(sw, whole);
    }
    /* The check string in two pieces. */
    CU_ASSERT_EQUAL(xdcr_crc32c(xdcr_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    free(buf);
}

static void test_crc32c_detects_single_bit_flips(void)
{
    unsigned char buf[256];
    uint32_t base;

    fill_random(buf, sizeof(buf), 11);
    base = xdcr_crc32c(0, buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (unsigned char)(1u << b);
            CU_ASSERT_NOT_EQUAL(xdcr_crc32c(0, buf, sizeof(buf)), base);
            buf[i] ^= (unsigned char)(1u << b);
        }
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_crc32c_check_value),
        XDCR_TEST(test_crc32c_empty_input_keeps_crc),
        XDCR_TEST(test_crc32c_rfc3720_vectors),
        XDCR_TEST(test_crc32c_other_known_vectors),
        XDCR_TEST(test_crc32c_sw_matches_bitwise_reference),
        XDCR_TEST(test_crc32c_sw_and_dispatch_agree_over_random_lengths_and_offsets),
        XDCR_TEST(test_crc32c_chaining_equals_one_call),
        XDCR_TEST(test_crc32c_detects_single_bit_flips),
        XDCR_TEST_END,
    };

    return xdcr_test_run("crc32c", cases);
}
