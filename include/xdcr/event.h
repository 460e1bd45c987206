/*
 * event.h - the change-event model and its Kafka message codec (format version 1).
 * Encoder and decoder live side by side in common/event.c so the daemons cannot drift.
 * The wire format is documented in docs/message-format.md. Pure: no I/O.
 */
#ifndef XDCR_EVENT_H
#define XDCR_EVENT_H

#include "xdcr/error.h"
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XDCR_FORMAT_VERSION 1
#define XDCR_ORIGIN_MAX 64 /* origin names: 1..63 chars of [A-Za-z0-9._-] */

/* Kafka header names carried by every message. */
#define XDCR_HDR_ORIGIN "xdcr-origin" /* origin name */
#define XDCR_HDR_SEQ "xdcr-seq"       /* seq; commit_lsn on a non-last part; LSN string */
#define XDCR_HDR_FORMAT "xdcr-format" /* format version, decimal */
#define XDCR_HDR_CRC "xdcr-crc32c"    /* CRC-32C of the payload, 8 lower-case hex digits */
#define XDCR_HDR_TYPE "xdcr-type"     /* "txn" or "mark" */

typedef enum xdcr_msg_type {
    XDCR_MSG_TXN = 1, /* one part of a source transaction */
    XDCR_MSG_MARK = 2 /* progress mark (heartbeat) */
} xdcr_msg_type_t;

typedef enum xdcr_op {
    XDCR_OP_INSERT = 'I',
    XDCR_OP_UPDATE = 'U',
    XDCR_OP_DELETE = 'D',
    XDCR_OP_TRUNCATE = 'T',
    XDCR_OP_MESSAGE = 'M' /* transactional logical decoding message (pg_logical_emit_message) */
} xdcr_op_t;

typedef enum xdcr_val_kind {
    XDCR_VAL_NULL = 0,
    XDCR_VAL_TEXT = 1,     /* PostgreSQL text representation in data[0..len) */
    XDCR_VAL_UNCHANGED = 2 /* unchanged TOAST value: the target must keep what it has */
} xdcr_val_kind_t;

typedef struct xdcr_value {
    xdcr_val_kind_t kind;
    uint32_t len;     /* bytes in data, TEXT only */
    const char *data; /* not NUL-terminated in general; owned by whoever owns the change */
} xdcr_value_t;

typedef struct xdcr_column {
    const char *name;
    const char *type; /* type name as format_type() without modifiers, e.g. "numeric" */
    uint32_t type_oid;
    int32_t typmod; /* -1 when none */
    bool key;       /* part of the replica identity at the source */
} xdcr_column_t;

typedef struct xdcr_relation {
    const char *schema;
    const char *table;
    uint32_t ncols;
    const xdcr_column_t *cols;
} xdcr_relation_t;

typedef struct xdcr_change {
    xdcr_op_t op;
    uint32_t ordinal;             /* position of the change within its source transaction */
    uint32_t rel;                 /* index into the message's relations (not TRUNCATE/MESSAGE) */
    const xdcr_value_t *old_vals; /* rel's ncols values of the old key or tuple, or NULL */
    const xdcr_value_t *new_vals; /* rel's ncols values (INSERT, UPDATE), else NULL */
    /* TRUNCATE */
    uint32_t ntrunc;
    const uint32_t *trunc_rels; /* indexes into the message's relations */
    bool cascade, restart_identity;
    /* MESSAGE */
    const char *prefix;
    const char *content;
    uint32_t content_len;
} xdcr_change_t;

/* Where a stream comes from (IDENTIFY_SYSTEM). */
typedef struct xdcr_source {
    char origin[XDCR_ORIGIN_MAX];
    uint64_t sysid; /* PostgreSQL system identifier */
    uint32_t timeline;
} xdcr_source_t;

/* A decoded message. All pointers are owned by the message and live until xdcr_message_free. */
typedef struct xdcr_message {
    int version;
    xdcr_msg_type_t type;
    xdcr_source_t src;
    xdcr_lsn_t seq;      /* TXN: commit end LSN (last part only, else 0); MARK: every
                            transaction with seq <= this is published */
    xdcr_lsn_t prev_seq; /* seq of the previous message of the same forwarder stream, 0 on
                            the first message of a stream (see docs/design-notes.md) */
    /* TXN */
    xdcr_lsn_t commit_lsn; /* start of the commit record (pgoutput Begin final_lsn), on every
                              part; a transaction is already applied iff commit_lsn < A */
    uint32_t xid;
    int64_t commit_time_us; /* source commit time, microseconds since the Unix epoch */
    uint32_t part;          /* 0, 1, ... within the transaction */
    bool last;              /* true on the transaction's final part */
    uint32_t nrels;
    const xdcr_relation_t *rels;
    uint32_t nchanges;
    const xdcr_change_t *changes;
    /* MARK */
    xdcr_lsn_t wal_lsn; /* source's current WAL insert position when the mark was made */
    int64_t time_us;    /* source wall clock when the mark was made */
    void *priv_;        /* decoder internals */
} xdcr_message_t;

/* True for a valid origin name: 1..63 chars of [A-Za-z0-9._-]. */
bool xdcr_origin_is_valid(const char *origin);

/*
 * Format/parse "2026-11-22T04:07:57.123456Z" (always 6 fraction digits, UTC). buf >= 32 bytes.
 * Years 0001..9999 only: format returns NULL when unix_us is outside them or len < 28; parse
 * rejects any other shape or an out-of-range field with XDCR_EPARSE.
 */
char *xdcr_time_format_us(int64_t unix_us, char *buf, size_t len);
int xdcr_time_parse_us(const char *s, int64_t *out_us, xdcr_error_t *err);

/* ---- encoder ----------------------------------------------------------------------------- */

/*
 * Streaming encoder for one message at a time. Typical use for a transaction:
 *   xdcr_encoder_txn_begin(); while (changes) { xdcr_encoder_add_change(); if
 *   (xdcr_encoder_size() >= limit) { xdcr_encoder_txn_finish(false, 0); send;
 *   txn_begin(part+1) } } xdcr_encoder_txn_finish(true, end_lsn); send.
 * Relations are identified by a caller-chosen relkey (e.g. the source relation OID); each one
 * used in a message is written once into that message's "relations" array (again when the
 * definition given for a relkey changes within the message).
 * An open part must be finished before the next begin or mark (XDCR_ESTATE otherwise). A change
 * that fails (XDCR_EINVAL: invalid UTF-8 or a NUL byte in a value, missing old/new values,
 * ordinal not increasing, ...) leaves the message as it was. Strings are not retained: the
 * encoder copies what it needs.
 */
typedef struct xdcr_encoder xdcr_encoder_t;

xdcr_encoder_t *xdcr_encoder_new(void);
void xdcr_encoder_free(xdcr_encoder_t *enc);

/*
 * Open part `part` of the transaction whose commit record starts at commit_lsn (pgoutput Begin
 * final_lsn; not 0/0). prev_seq is the seq of the previous message of this forwarder stream, or
 * 0 on the first one (then "prev" is omitted); it must not be above commit_lsn. XDCR_EINVAL
 * for those, an invalid source or a commit time outside years 0001..9999.
 */
int xdcr_encoder_txn_begin(xdcr_encoder_t *enc, const xdcr_source_t *src, xdcr_lsn_t commit_lsn,
                           xdcr_lsn_t prev_seq, uint32_t xid, int64_t commit_time_us, uint32_t part,
                           xdcr_error_t *err);
/*
 * Append one change. For INSERT/UPDATE/DELETE, rel describes the change's relation (copied into
 * the message the first time relkey is seen in it) and ch->rel is ignored. For TRUNCATE, rels
 * and relkeys give ch->ntrunc relations. Values must be valid UTF-8 (XDCR_EINVAL otherwise).
 */
int xdcr_encoder_add_change(xdcr_encoder_t *enc, uint32_t relkey, const xdcr_relation_t *rel,
                            const xdcr_change_t *ch, xdcr_error_t *err);
int xdcr_encoder_add_truncate(xdcr_encoder_t *enc, uint32_t ordinal, uint32_t nrels,
                              const uint32_t *relkeys, const xdcr_relation_t *const *rels,
                              bool cascade, bool restart_identity, xdcr_error_t *err);
/*
 * Bytes the message would have if finished now with last=false (payload size, for splitting).
 * A last part is longer by its "seq" field less one byte ("false" becomes "true"): 11..25 bytes.
 */
size_t xdcr_encoder_size(const xdcr_encoder_t *enc);
/* Number of changes in the current message. */
uint32_t xdcr_encoder_nchanges(const xdcr_encoder_t *enc);
/*
 * Finish the current transaction part; payload valid until the next begin/mark/free. The last
 * part carries seq, the commit's end LSN, which must be above commit_lsn; earlier parts have no
 * seq and take 0. A wrong seq (XDCR_EINVAL) or XDCR_ENOMEM leaves the part open and unchanged.
 */
int xdcr_encoder_txn_finish(xdcr_encoder_t *enc, bool last, xdcr_lsn_t seq, const char **payload,
                            size_t *len, xdcr_error_t *err);

/*
 * Encode a progress mark at seq; prev_seq as for xdcr_encoder_txn_begin (0: omitted; else not
 * above seq, XDCR_EINVAL otherwise). Payload valid until the next call on enc.
 */
int xdcr_encoder_mark(xdcr_encoder_t *enc, const xdcr_source_t *src, xdcr_lsn_t prev_seq,
                      xdcr_lsn_t seq, xdcr_lsn_t wal_lsn, int64_t time_us, const char **payload,
                      size_t *len, xdcr_error_t *err);

/* ---- headers ----------------------------------------------------------------------------- */

/* Header values as text, for the producer to attach. */
typedef struct xdcr_headers {
    char origin[XDCR_ORIGIN_MAX];
    char seq[XDCR_LSN_STRLEN];
    char format[8];
    char crc[9];
    char type[8];
} xdcr_headers_t;

/*
 * Fill header values for a payload produced by the encoder. seq is the message's seq (marks and
 * last parts) or, on a part that is not the last, its commit_lsn.
 */
void xdcr_headers_fill(xdcr_headers_t *h, const xdcr_source_t *src, xdcr_msg_type_t type,
                       xdcr_lsn_t seq, const void *payload, size_t len);

/*
 * Check received header values (each may be NULL when absent; lengths are given because Kafka
 * header values are not NUL-terminated) against the payload: format version supported
 * (XDCR_EVERSION), CRC matches (XDCR_ECRC), all present (XDCR_EPARSE).
 */
int xdcr_headers_verify(const char *format, size_t format_len, const char *crc, size_t crc_len,
                        const void *payload, size_t len, xdcr_error_t *err);

/* ---- decoder ----------------------------------------------------------------------------- */

/*
 * Decode and validate a payload. Every malformed input (bad JSON, wrong types, missing fields,
 * indexes out of range, value counts not matching the relation, invalid origin/LSN/time, unknown
 * version) gives an error, never a crash. On success *out is owned by the caller.
 */
int xdcr_message_decode(const void *payload, size_t len, xdcr_message_t **out, xdcr_error_t *err);
void xdcr_message_free(xdcr_message_t *msg);

/* Text name of an op ("insert") and of a message type ("txn"). */
const char *xdcr_op_name(xdcr_op_t op);
const char *xdcr_msg_type_name(xdcr_msg_type_t type);

#endif
