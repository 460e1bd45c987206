/*
 * fuzz_record.c - libFuzzer target for the recorded message stream: decode arbitrary bytes as a
 * sequence of records, the way the consumer's replay source checks a file; every record that
 * decodes must re-encode to exactly the bytes it came from.
 */
#include "xdcr/record.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = xdcr_record_is_stream(data, size) ? XDCR_RECORD_MAGIC_LEN : 0;

    while (pos < size) {
        xdcr_record_t r;
        xdcr_error_t err;
        int64_t n = xdcr_record_decode(data + pos, size - pos, &r, &err);
        uint8_t *again;
        size_t len;

        if (n < 0) {
            if (err.message[0] == '\0')
                abort(); /* every refusal says why */
            return 0;
        }
        if (n <= 0 || (size_t)n > size - pos)
            abort();
        again = malloc(xdcr_record_size(&r));
        if (again == NULL)
            return 0;
        len = xdcr_record_encode(&r, again, &err);
        if (len != (size_t)n || memcmp(again, data + pos, len) != 0) {
            fprintf(stderr, "fuzz_record: re-encoding differs at byte %zu\n", pos);
            abort();
        }
        free(again);
        pos += (size_t)n;
    }
    return 0;
}
