/*
 * record.h - the recorded message stream: Kafka messages (topic, partition, offset, timestamp,
 * headers, payload) kept byte for byte in a file, so the consumer can apply them again without
 * a broker (`xdcr-consumer --replay FILE`) and benchmarks can measure the apply engine alone.
 * `xdcr tail --record FILE` writes such a file. Pure: encodes and decodes buffers, no I/O.
 *
 * Format (docs/message-format.md, "Recorded streams"): the 8-byte magic "XDCRREC1", then records,
 * each
 *   u32 length of the rest of the record, u32 CRC-32C of the rest of the record,
 *   u16 topic length, topic, i32 partition, i64 offset, i64 timestamp (ms since the epoch, -1
 *   unknown), u16 header count, per header: u16 name length, name, i32 value length (-1 for a
 *   null value), value; then i32 payload length (-1 for a null payload), payload.
 * Integers are big-endian. A reader rejects a record whose CRC or lengths do not add up.
 */
#ifndef XDCR_RECORD_H
#define XDCR_RECORD_H

#include "xdcr/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XDCR_RECORD_MAGIC "XDCRREC1"
#define XDCR_RECORD_MAGIC_LEN 8
#define XDCR_RECORD_MAX_HEADERS 32
/* a record's length field is checked against this before anything is read */
#define XDCR_RECORD_MAX_LEN (256u * 1024 * 1024)

typedef struct xdcr_record_header {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    const void *value; /* NULL for a null value */
    size_t value_len;
} xdcr_record_header_t;

/* One message. Decoding fills the pointers into the decoded buffer (nothing is copied). */
typedef struct xdcr_record {
    const char *topic; /* not NUL-terminated */
    size_t topic_len;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when unknown */
    size_t nheaders;
    xdcr_record_header_t headers[XDCR_RECORD_MAX_HEADERS];
    const void *payload; /* NULL for a null payload */
    size_t payload_len;
} xdcr_record_t;

/* Bytes xdcr_record_encode() writes for r. */
size_t xdcr_record_size(const xdcr_record_t *r);

/*
 * Write r into out (at least xdcr_record_size(r) bytes). Returns the bytes written, or 0 with
 * err set when a field does not fit the format (topic or header name over 65535 bytes, too many
 * headers, a record over XDCR_RECORD_MAX_LEN).
 */
size_t xdcr_record_encode(const xdcr_record_t *r, void *out, xdcr_error_t *err);

/* True when data starts with the magic. */
bool xdcr_record_is_stream(const void *data, size_t len);

/*
 * Decode the record at data[0, len). Returns the bytes it takes (> 0) with *r filled, or a
 * negative error code with err set (XDCR_EINVAL): truncated (the stream ends inside the record),
 * a bad length, a CRC mismatch, more than XDCR_RECORD_MAX_HEADERS headers, or trailing bytes
 * inside the record. len must be > 0.
 */
int64_t xdcr_record_decode(const void *data, size_t len, xdcr_record_t *r, xdcr_error_t *err);

#endif
