/*
 * crc32c.h - CRC-32C (Castagnoli), as Kafka and iSCSI use it. Pure: no I/O.
 * Uses the SSE4.2 instruction when the CPU has it, a table-driven fallback otherwise.
 */
#ifndef XDCR_CRC32C_H
#define XDCR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc with len bytes of buf. Start with crc = 0; xdcr_crc32c(0, "123456789", 9) is
 * 0xE3069283. Chaining calls over pieces gives the same result as one call over the whole.
 */
uint32_t xdcr_crc32c(uint32_t crc, const void *buf, size_t len);

/* Software implementation, exposed so tests can compare it with the hardware path. */
uint32_t xdcr_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
