/*
 * log.h - logfmt logger: one line per record on a stream (stderr by default), with levels and
 * redaction of secrets. Context (component, origin) lives in the logger, never in globals.
 */
#ifndef XDCR_LOG_H
#define XDCR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum xdcr_log_level {
    XDCR_LOG_ERROR = 0,
    XDCR_LOG_WARN = 1,
    XDCR_LOG_INFO = 2,
    XDCR_LOG_DEBUG = 3
} xdcr_log_level_t;

#define XDCR_LOG_CONTEXT_MAX 256

typedef struct xdcr_log {
    xdcr_log_level_t level;             /* records above this level are dropped */
    FILE *out;                          /* NULL means stderr */
    char context[XDCR_LOG_CONTEXT_MAX]; /* pre-rendered fields, e.g. `comp=forwarder origin=east` */
} xdcr_log_t;

/* Initialise with level and component name (comp=...). out NULL = stderr. */
void xdcr_log_init(xdcr_log_t *lg, xdcr_log_level_t level, const char *comp, FILE *out);

/* Append one key=value pair to the logger's context (value quoted/escaped as needed). */
void xdcr_log_add_context(xdcr_log_t *lg, const char *key, const char *value);

/* Parse "error|warn|info|debug"; returns 0 or XDCR_EINVAL. */
int xdcr_log_level_parse(const char *s, xdcr_log_level_t *out);
const char *xdcr_log_level_name(xdcr_log_level_t level);

/*
 * Write one record: ts=<RFC3339 UTC, ms> level=<l> <context> msg="<formatted>".
 * The message is formatted with printf rules; newlines and quotes are escaped.
 * Use xdcr_log_kv for records with structured fields.
 */
void xdcr_log_write(const xdcr_log_t *lg, xdcr_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Write one record with a fixed message and fields: the variadic arguments are pairs of
 * (const char *key, const char *value) terminated by a NULL key. Values whose key looks like a
 * secret (password, secret, token, sasl.password, ...) are printed as "[redacted]"; values
 * that look like a libpq conninfo or URI have their password redacted.
 */
void xdcr_log_kv(const xdcr_log_t *lg, xdcr_log_level_t level, const char *msg, ...)
    __attribute__((sentinel));

/* Level check happens before the arguments are evaluated. */
#define XDCR_LOG(lg, lvl, ...)                                                                     \
    do {                                                                                           \
        if ((lg) != NULL && (lvl) <= (lg)->level)                                                  \
            xdcr_log_write((lg), (lvl), __VA_ARGS__);                                              \
    } while (0)
#define XDCR_LOG_KV(lg, lvl, ...)                                                                  \
    do {                                                                                           \
        if ((lg) != NULL && (lvl) <= (lg)->level)                                                  \
            xdcr_log_kv((lg), (lvl), __VA_ARGS__, (const char *)NULL);                             \
    } while (0)

/* True when a configuration key names a secret (password, sasl.password, token, ...). */
bool xdcr_log_is_secret_key(const char *key);

/*
 * Copy a libpq conninfo string ("host=x password=y") or URI
 * ("postgresql://u:pw@h/db?password=z") into out with every password replaced by
 * "[redacted]". Always NUL-terminates when out_len > 0. Returns out.
 */
char *xdcr_redact_conninfo(const char *in, char *out, size_t out_len);

#endif
