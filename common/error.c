/*
 * error.c - the one table of xdcr error codes, filling xdcr_error_t, and the exit status map.
 * Pure: no I/O.
 */
#include "xdcr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct code_info {
    const char *name;
    const char *text;
} code_info_t;

/* Indexed by -code; must list every code from XDCR_OK to XDCR_EUNKNOWN in order. */
static const code_info_t code_table[] = {
    {"OK", "success"},
    {"EINVAL", "invalid argument"},
    {"ENOMEM", "out of memory"},
    {"ECONFIG", "invalid configuration"},
    {"EPARSE", "malformed input"},
    {"ECRC", "checksum mismatch"},
    {"EVERSION", "unsupported format version"},
    {"EIO", "input/output error"},
    {"EPG", "PostgreSQL error"},
    {"EPGCONN", "PostgreSQL connection failed"},
    {"EKAFKA", "Kafka error"},
    {"ETIMEOUT", "operation timed out"},
    {"ERANGE", "value out of range"},
    {"ESLOT", "replication slot missing or unusable"},
    {"EGAP", "data no longer available in Kafka (retention gap)"},
    {"ESTATE", "operation not valid in the current state"},
    {"EFULL", "queue full"},
    {"ESCHEMA", "target schema mismatch"},
    {"EAPPLY", "change could not be applied"},
    {"EHALTED", "origin halted"},
    {"ENOTFOUND", "not found"},
    {"EEXISTS", "already exists"},
    {"ESYSID", "source system identifier or timeline changed"},
    {"EUNKNOWN", "unknown error"},
};

_Static_assert(sizeof(code_table) / sizeof(code_table[0]) == (size_t)(-XDCR_EUNKNOWN) + 1,
               "code_table must have one entry per error code");

static const code_info_t *lookup(int code)
{
    if (code > 0 || code < XDCR_EUNKNOWN)
        return &code_table[-XDCR_EUNKNOWN];
    return &code_table[-code];
}

const char *xdcr_strerror(int code)
{
    return lookup(code)->text;
}

const char *xdcr_error_name(int code)
{
    return lookup(code)->name;
}

void xdcr_error_clear(xdcr_error_t *err)
{
    if (err == NULL)
        return;
    err->code = XDCR_OK;
    err->retriable = false;
    err->message[0] = '\0';
}

/*
 * Format into a local buffer first: callers may pass err->message itself as an argument
 * (`xdcr_error_set(err, c, false, "x: %s", err->message)`), and vsnprintf into an overlapping
 * buffer is undefined.
 */
static void format_message(char *dst, size_t dst_len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void format_message(char *dst, size_t dst_len, const char *fmt, va_list ap)
{
    char tmp[XDCR_ERROR_MSG_MAX];

    if (fmt == NULL || vsnprintf(tmp, sizeof(tmp), fmt, ap) < 0)
        tmp[0] = '\0';
    snprintf(dst, dst_len, "%s", tmp);
}

int xdcr_error_set(xdcr_error_t *err, int code, bool retriable, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    err->retriable = retriable;
    va_start(ap, fmt);
    format_message(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

/* Append s to dst (holding used bytes) as far as it fits; returns the new length. */
static size_t append(char *dst, size_t cap, size_t used, const char *s)
{
    size_t n = strlen(s);

    if (used + 1 >= cap)
        return used;
    if (n > cap - used - 1)
        n = cap - used - 1;
    memcpy(dst + used, s, n);
    dst[used + n] = '\0';
    return used + n;
}

int xdcr_error_prefix(xdcr_error_t *err, const char *fmt, ...)
{
    char prefix[XDCR_ERROR_MSG_MAX];
    char old[XDCR_ERROR_MSG_MAX];
    size_t used;
    va_list ap;

    /* Without err the code is lost: never let that read as success. */
    if (err == NULL)
        return XDCR_EUNKNOWN;
    va_start(ap, fmt);
    format_message(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    used = append(err->message, sizeof(err->message), 0, prefix);
    if (old[0] != '\0') {
        used = append(err->message, sizeof(err->message), used, ": ");
        append(err->message, sizeof(err->message), used, old);
    }
    return err->code;
}

int xdcr_error_exit_status(int code)
{
    switch (code) {
    case XDCR_OK:
        return XDCR_EXIT_OK;
    case XDCR_ESLOT:
        return XDCR_EXIT_SLOT;
    case XDCR_EGAP:
        return XDCR_EXIT_GAP;
    case XDCR_ESYSID:
        return XDCR_EXIT_SOURCE;
    case XDCR_EHALTED:
        return XDCR_EXIT_HALTED;
    case XDCR_ECONFIG:
        return XDCR_EXIT_USAGE;
    default:
        return XDCR_EXIT_RUNTIME;
    }
}
