/*
 * pgoutput.h - decoding of PostgreSQL's pgoutput logical replication protocol (PostgreSQL 15,
 * proto_version 1 and 2 without streaming of in-progress transactions, text tuples) and of the
 * CopyData messages around it (XLogData, primary keepalive, standby status update).
 * Pure: no I/O, no libpq. Bytes in, tagged structs out; every read is bounds-checked.
 */
#ifndef XDCR_FWD_PGOUTPUT_H
#define XDCR_FWD_PGOUTPUT_H

#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL timestamps count microseconds from 2000-01-01; this is that instant in Unix µs. */
#define FWD_PG_EPOCH_UNIX_US INT64_C(946684800000000)

/* ---- CopyData of a replication stream ---------------------------------------------------- */

typedef enum fwd_pgo_copy_type {
    FWD_PGO_XLOGDATA = 'w', /* carries one pgoutput message */
    FWD_PGO_KEEPALIVE = 'k' /* primary keepalive */
} fwd_pgo_copy_type_t;

typedef struct fwd_pgo_copydata {
    fwd_pgo_copy_type_t type;
    xdcr_lsn_t wal_start; /* XLogData: WAL position of the data; keepalive: 0 */
    xdcr_lsn_t wal_end;   /* server's current end of WAL */
    int64_t send_time_us; /* server clock when sent, Unix µs */
    bool reply_requested; /* keepalive: answer with a status update now or be disconnected */
    const char *data;     /* XLogData: the pgoutput message, points into the input buffer */
    size_t len;           /* bytes at data; 0 for keepalive */
} fwd_pgo_copydata_t;

/*
 * Parse one CopyData message of START_REPLICATION. Pointers in *out point into buf and live as
 * long as buf. Truncated input, extra bytes, an unknown type or a time beyond the Unix µs range
 * give XDCR_EPARSE.
 */
int fwd_pgo_parse_copydata(const char *buf, size_t len, fwd_pgo_copydata_t *out, xdcr_error_t *err);

#define FWD_PGO_STATUS_LEN 34 /* bytes of a standby status update */

/*
 * Write a standby status update ('r') into buf for PQputCopyData: written, flushed and applied
 * positions, the client clock (Unix µs) and whether the server should reply at once.
 * Returns FWD_PGO_STATUS_LEN.
 */
size_t fwd_pgo_write_status(char buf[FWD_PGO_STATUS_LEN], xdcr_lsn_t written, xdcr_lsn_t flushed,
                            xdcr_lsn_t applied, int64_t now_unix_us, bool reply_requested);

/* ---- pgoutput messages ------------------------------------------------------------------- */

typedef enum fwd_pgo_type {
    FWD_PGO_BEGIN = 'B',
    FWD_PGO_COMMIT = 'C',
    FWD_PGO_ORIGIN = 'O',
    FWD_PGO_RELATION = 'R',
    FWD_PGO_TYPE = 'Y',
    FWD_PGO_INSERT = 'I',
    FWD_PGO_UPDATE = 'U',
    FWD_PGO_DELETE = 'D',
    FWD_PGO_TRUNCATE = 'T',
    FWD_PGO_MESSAGE = 'M'
} fwd_pgo_type_t;

/*
 * A relation as the last Relation message for its OID described it. Owned by the decoder; valid
 * until the next Relation message for the same relid (which replaces it), fwd_pgo_reset() or
 * fwd_pgo_free(). All strings are NUL-terminated copies.
 */
typedef struct fwd_pgo_rel {
    uint32_t relid;      /* source relation OID */
    uint32_t key;        /* unique (>= 1) per decoded Relation message in this decoder: use it
                            as the encoder's relkey, so a changed shape is a new relation */
    char replident;      /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    xdcr_relation_t rel; /* schema ("pg_catalog" when sent as ""), table, columns; each
                            column's type is a built-in name, "namespace.name" from a Type
                            message (quoted as needed), or "" when neither is known */
} fwd_pgo_rel_t;

/*
 * One decoded message. Pointers point into the input buffer (strings of Origin, Type and
 * Message; tuple value data), into the decoder (relations: see fwd_pgo_rel_t; value arrays and
 * truncate lists: valid until the next fwd_pgo_decode() call) - never owned by the caller.
 */
typedef struct fwd_pgo_msg {
    fwd_pgo_type_t type;
    union {
        struct {
            xdcr_lsn_t final_lsn;   /* LSN of the commit record */
            int64_t commit_time_us; /* Unix µs */
            uint32_t xid;
        } begin;
        struct {
            uint8_t flags;          /* unused by PostgreSQL 15, always 0 */
            xdcr_lsn_t commit_lsn;  /* LSN of the commit record (= Begin's final_lsn) */
            xdcr_lsn_t end_lsn;     /* end of the commit record: the xdcr seq */
            int64_t commit_time_us; /* Unix µs */
        } commit;
        struct {
            xdcr_lsn_t commit_lsn; /* commit LSN on the origin server */
            const char *name;      /* replication origin name */
        } origin;
        struct {
            const fwd_pgo_rel_t *rel; /* the cache entry just created or replaced */
        } relation;
        struct {
            uint32_t oid;
            const char *nspname; /* as sent: "" means pg_catalog */
            const char *name;    /* as sent (pg_type.typname) */
        } pgtype;
        struct {                          /* INSERT, UPDATE, DELETE */
            const fwd_pgo_rel_t *rel;     /* the relation the row belongs to */
            char old_kind;                /* 0 none, 'K' replica identity columns (others NULL),
                                             'O' whole old row (REPLICA IDENTITY FULL) */
            const xdcr_value_t *old_vals; /* rel->rel.ncols values or NULL; always set on DELETE */
            const xdcr_value_t *new_vals; /* rel->rel.ncols values on INSERT/UPDATE, else NULL */
        } change;
        struct {
            uint32_t nrels;
            const fwd_pgo_rel_t *const *rels; /* nrels cached relations, in message order */
            bool cascade;
            bool restart_identity;
        } truncate;
        struct {
            bool transactional; /* false: emitted outside any transaction ordering */
            xdcr_lsn_t lsn;     /* LSN of the message record */
            const char *prefix;
            const char *content; /* not NUL-terminated */
            uint32_t content_len;
        } message;
    };
} fwd_pgo_msg_t;

typedef struct fwd_pgo fwd_pgo_t;

/* A decoder with empty relation and type caches; NULL when out of memory. */
fwd_pgo_t *fwd_pgo_new(void);
/* Frees the decoder and every cached relation; accepts NULL. */
void fwd_pgo_free(fwd_pgo_t *d);

/*
 * Decode one pgoutput message (the data of one XLogData). Relation and Type messages update the
 * caches; changes are resolved against them. The decoder also checks transaction framing:
 * Begin only outside a transaction; Commit (with Begin's LSN), Origin, Insert, Update, Delete,
 * Truncate and transactional Messages only inside one.
 * Errors (the decoder state is unchanged on error):
 *   XDCR_EPARSE  truncated or trailing bytes, unknown or unsupported message type (streaming,
 *                two-phase), unknown relation id, column count not matching the relation,
 *                binary or unknown tuple value kinds, negative lengths or counts, framing;
 *                the message names the message type and the byte offset
 *   XDCR_ENOMEM  out of memory
 */
int fwd_pgo_decode(fwd_pgo_t *d, const char *buf, size_t len, fwd_pgo_msg_t *out,
                   xdcr_error_t *err);

/* The cached relation for relid, or NULL. */
const fwd_pgo_rel_t *fwd_pgo_relation(const fwd_pgo_t *d, uint32_t relid);
size_t fwd_pgo_nrelations(const fwd_pgo_t *d);

/* Inside Begin..Commit? */
bool fwd_pgo_in_txn(const fwd_pgo_t *d);

/*
 * Forget cached relations and types and any open transaction: call when a new
 * START_REPLICATION begins (the server sends Relation and Type messages again).
 */
void fwd_pgo_reset(fwd_pgo_t *d);

/* Name of a message type for logs ("Insert"); "unknown" for others. */
const char *fwd_pgo_type_name(int type);

/* ---- type names (pg_types.c) ------------------------------------------------------------- */

/*
 * Name of a built-in type (OID below 10000) as format_type() prints it without modifiers, in
 * the form that is safe to cast to: "integer", "timestamp with time zone", "text[]"; "bpchar"
 * and "\"bit\"" rather than "character" and "bit", which would mean length 1. NULL when unknown.
 */
const char *fwd_pg_type_name(uint32_t oid);

/*
 * Format a type from a Type message as format_type() would when it is not on the search path:
 * quote_ident(nspname) "." quote_ident(name); when nspname is "" or "pg_catalog" (a domain over
 * a built-in type: pgoutput names its base type, by the internal name) the format_type() name
 * of the built-in type, so "int4" becomes integer and "_timestamptz" timestamp with time zone[].
 * Writes at most len bytes including the NUL (like snprintf) and returns the length the full
 * result needs, excluding the NUL.
 */
size_t fwd_pg_format_type(char *buf, size_t len, const char *nspname, const char *name);

#endif
