/*
 * pg_stream.h - the forwarder's only libpq user: the replication connection (IDENTIFY_SYSTEM,
 * publication and slot checks, START_REPLICATION, CopyData in and standby status out) and a
 * plain monitoring connection (WAL position, slot retention). Maps libpq errors and SQLSTATEs to
 * xdcr error codes; knows nothing about Kafka or the pgoutput format.
 */
#ifndef FWD_PG_STREAM_H
#define FWD_PG_STREAM_H

#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fwd_pg fwd_pg_t;

typedef struct fwd_pg_ident {
    uint64_t sysid;
    uint32_t timeline;
    xdcr_lsn_t xlogpos;
    char dbname[128];
    int server_version; /* e.g. 150018 */
} fwd_pg_ident_t;

typedef struct fwd_slot_info {
    bool exists;
    bool lost;            /* wal_status = 'lost': invalidated */
    int active_pid;       /* 0 when inactive */
    xdcr_lsn_t confirmed; /* confirmed_flush_lsn */
    xdcr_lsn_t restart;   /* restart_lsn */
    char plugin[64];
    char database[128];
} fwd_slot_info_t;

typedef struct fwd_pg_positions {
    xdcr_lsn_t wal_lsn;        /* pg_current_wal_lsn() */
    int64_t retained_bytes;    /* current WAL - slot restart_lsn, -1 if unknown */
    xdcr_lsn_t slot_confirmed; /* slot's confirmed_flush_lsn */
    bool slot_lost;
} fwd_pg_positions_t;

/* conninfo and password (may be NULL) are copied. */
fwd_pg_t *fwd_pg_new(const char *conninfo, const char *password, const xdcr_log_t *lg);
void fwd_pg_free(fwd_pg_t *pg);

/*
 * Open the replication connection (replication=database), run IDENTIFY_SYSTEM and check that
 * wal_level is logical (XDCR_ECONFIG with the fix otherwise). Connection failures are retriable
 * XDCR_EPGCONN.
 */
int fwd_pg_connect(fwd_pg_t *pg, fwd_pg_ident_t *ident, xdcr_error_t *err);
void fwd_pg_disconnect(fwd_pg_t *pg);
bool fwd_pg_is_connected(const fwd_pg_t *pg);

/* Check (and optionally create) the publication; tables_csv empty = FOR ALL TABLES. */
int fwd_pg_ensure_publication(fwd_pg_t *pg, const char *pub, bool create, const char *tables_csv,
                              xdcr_error_t *err);

/* Warn (return count) about published tables without a usable replica identity. */
int fwd_pg_check_published_tables(fwd_pg_t *pg, const char *pub, xdcr_error_t *err);

/* Look up the slot. */
int fwd_pg_slot_info(fwd_pg_t *pg, const char *slot, fwd_slot_info_t *info, xdcr_error_t *err);

/* CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput; *consistent_lsn gets its start point. */
int fwd_pg_create_slot(fwd_pg_t *pg, const char *slot, xdcr_lsn_t *consistent_lsn,
                       xdcr_error_t *err);

/*
 * START_REPLICATION SLOT slot LOGICAL start (proto_version 1, publication_names, messages).
 * A slot held by another walsender gives retriable XDCR_EEXISTS; a missing or invalidated slot
 * gives XDCR_ESLOT.
 */
int fwd_pg_start_replication(fwd_pg_t *pg, const char *slot, const char *pub, xdcr_lsn_t start,
                             xdcr_error_t *err);

/*
 * Read one CopyData message without blocking. Returns 1 with *buf and *len set (valid until the
 * next call), 0 when nothing is available now, or a negative error (stream ended or connection
 * lost: retriable XDCR_EPGCONN; server error: XDCR_EPG / XDCR_ESLOT).
 */
int fwd_pg_read(fwd_pg_t *pg, const char **buf, size_t *len, xdcr_error_t *err);

/* Send a standby status update; flush is what Kafka has durably acknowledged. */
int fwd_pg_send_status(fwd_pg_t *pg, xdcr_lsn_t write, xdcr_lsn_t flush, bool reply_requested,
                       int64_t now_unix_us, xdcr_error_t *err);

/* Socket to poll for input, -1 when not connected. */
int fwd_pg_socket(const fwd_pg_t *pg);

/* Positions from the monitoring connection (opened on demand, closed on error). */
int fwd_pg_positions(fwd_pg_t *pg, const char *slot, fwd_pg_positions_t *pos, xdcr_error_t *err);

#endif
