/*
 * lsn.h - PostgreSQL log sequence numbers: parse, format, arithmetic. Pure: no I/O.
 */
#ifndef XDCR_LSN_H
#define XDCR_LSN_H

#include "xdcr/error.h"

#include <stdint.h>

typedef uint64_t xdcr_lsn_t;

#define XDCR_LSN_INVALID ((xdcr_lsn_t)0)
#define XDCR_LSN_STRLEN 18 /* "FFFFFFFF/FFFFFFFF" plus NUL */

/*
 * Parse "16/B374D848" (hex, each half 1..8 digits, upper or lower case) as PostgreSQL prints it.
 * Rejects empty halves, missing slash, signs, spaces, trailing garbage and overflow.
 */
int xdcr_lsn_parse(const char *s, xdcr_lsn_t *out, xdcr_error_t *err);

/* Format as PostgreSQL does ("%X/%X", upper case). buf must hold XDCR_LSN_STRLEN bytes. */
char *xdcr_lsn_format(xdcr_lsn_t lsn, char buf[XDCR_LSN_STRLEN]);

/* -1, 0, 1 */
int xdcr_lsn_cmp(xdcr_lsn_t a, xdcr_lsn_t b);

/* a - b in bytes, or 0 when b >= a (a lag is never negative). */
uint64_t xdcr_lsn_diff(xdcr_lsn_t a, xdcr_lsn_t b);

#endif
