/*
 * error.h - the xdcr error type, the one table of error codes, and exit statuses.
 * Pure: no I/O.
 */
#ifndef XDCR_ERROR_H
#define XDCR_ERROR_H

#include <stdbool.h>
#include <stddef.h>

/* Every fallible function returns 0 or one of these (negative) codes. */
enum {
    XDCR_OK = 0,
    XDCR_EINVAL = -1,     /* invalid argument or input value */
    XDCR_ENOMEM = -2,     /* out of memory */
    XDCR_ECONFIG = -3,    /* bad configuration: unknown key, bad value, missing secret */
    XDCR_EPARSE = -4,     /* malformed input: JSON, pgoutput, LSN, number */
    XDCR_ECRC = -5,       /* checksum mismatch */
    XDCR_EVERSION = -6,   /* unsupported format or protocol version */
    XDCR_EIO = -7,        /* local I/O error (file, socket) */
    XDCR_EPG = -8,        /* PostgreSQL reported an error */
    XDCR_EPGCONN = -9,    /* PostgreSQL connection failed or was lost */
    XDCR_EKAFKA = -10,    /* Kafka reported an error */
    XDCR_ETIMEOUT = -11,  /* an operation timed out */
    XDCR_ERANGE = -12,    /* value out of range, too large */
    XDCR_ESLOT = -13,     /* replication slot missing, invalidated or unusable */
    XDCR_EGAP = -14,      /* Kafka no longer holds the data we need (retention gap) */
    XDCR_ESTATE = -15,    /* operation not valid in the current state */
    XDCR_EFULL = -16,     /* queue full: back off and retry (backpressure) */
    XDCR_ESCHEMA = -17,   /* target schema does not match (missing table/column/key) */
    XDCR_EAPPLY = -18,    /* a change could not be applied (type error, constraint) */
    XDCR_EHALTED = -19,   /* an origin is halted and needs an operator */
    XDCR_ENOTFOUND = -20, /* a named thing does not exist */
    XDCR_EEXISTS = -21,   /* a named thing already exists / is held by someone else */
    XDCR_ESYSID = -22,    /* source system identifier or timeline changed */
    XDCR_EUNKNOWN = -23   /* keep last */
};

/* Process exit statuses; only main() maps errors to these. Documented in docs/. */
enum {
    XDCR_EXIT_OK = 0,
    XDCR_EXIT_RUNTIME = 1, /* runtime failure: retry may help */
    XDCR_EXIT_USAGE = 2,   /* bad command line or configuration */
    XDCR_EXIT_SLOT = 3,    /* replication slot missing or invalidated */
    XDCR_EXIT_GAP = 4,     /* Kafka retention gap or recreated topic */
    XDCR_EXIT_SOURCE = 5,  /* source identity changed (system id / timeline) */
    XDCR_EXIT_HALTED = 6   /* halted on a message that cannot be applied */
};

#define XDCR_ERROR_MSG_MAX 512

typedef struct xdcr_error {
    int code;                         /* 0 or a negative XDCR_E* code */
    bool retriable;                   /* true when the same call may succeed later */
    char message[XDCR_ERROR_MSG_MAX]; /* lower case, no final period, no secrets */
} xdcr_error_t;

/* Short, stable description of a code ("invalid argument"); never NULL. */
const char *xdcr_strerror(int code);

/* Stable symbolic name of a code ("EINVAL"), for metrics labels and logs; never NULL. */
const char *xdcr_error_name(int code);

/* Clear err to {0, false, ""}. err may be NULL. */
void xdcr_error_clear(xdcr_error_t *err);

/*
 * Fill err (which may be NULL) and return code, so callers can write
 * `return xdcr_error_set(err, XDCR_EPARSE, false, "bad lsn \"%s\"", s);`.
 * The message is truncated to fit.
 */
int xdcr_error_set(xdcr_error_t *err, int code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix err->message with "context: " (e.g. the option name or position). Returns err->code. */
int xdcr_error_prefix(xdcr_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit status main() uses for an error code. */
int xdcr_error_exit_status(int code);

#endif
