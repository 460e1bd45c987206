/*
 * lsn.c - PostgreSQL log sequence numbers as PostgreSQL prints them ("16/B374D848"): parse,
 * format, compare, subtract. Pure: no I/O.
 */
#include "xdcr/lsn.h"

#include <stdbool.h>
#include <stdio.h>

/* Parse 1..8 hex digits at *p; advance *p past them. */
static bool parse_half(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint32_t v = 0;
    int n = 0;

    for (;; s++, n++) {
        unsigned d;
        char c = *s;

        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        if (n == 8)
            return false; /* more than 32 bits */
        v = (v << 4) | d;
    }
    if (n == 0)
        return false;
    *out = v;
    *p = s;
    return true;
}

int xdcr_lsn_parse(const char *s, xdcr_lsn_t *out, xdcr_error_t *err)
{
    const char *p = s;
    uint32_t hi, lo;

    if (s == NULL || out == NULL)
        return xdcr_error_set(err, XDCR_EINVAL, false, "lsn is missing");
    if (!parse_half(&p, &hi) || *p != '/')
        goto bad;
    p++;
    if (!parse_half(&p, &lo) || *p != '\0')
        goto bad;
    *out = ((xdcr_lsn_t)hi << 32) | lo;
    return 0;
bad:
    return xdcr_error_set(err, XDCR_EPARSE, false,
                          "invalid lsn \"%.40s\": expected two hexadecimal numbers of 1 to 8 "
                          "digits separated by \"/\", like 16/B374D848",
                          s);
}

/* Upper-case hexadecimal of v without leading zeros at p; returns the end. */
static char *put_hex32(char *p, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    int shift = 28;

    while (shift > 0 && (v >> shift) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        *p++ = hex[(v >> shift) & 0xF];
    return p;
}

/* By hand rather than snprintf("%X/%X"): every message formats several. */
char *xdcr_lsn_format(xdcr_lsn_t lsn, char buf[XDCR_LSN_STRLEN])
{
    char *p = put_hex32(buf, (uint32_t)(lsn >> 32));

    *p++ = '/';
    p = put_hex32(p, (uint32_t)lsn);
    *p = '\0';
    return buf;
}

int xdcr_lsn_cmp(xdcr_lsn_t a, xdcr_lsn_t b)
{
    return (a > b) - (a < b);
}

uint64_t xdcr_lsn_diff(xdcr_lsn_t a, xdcr_lsn_t b)
{
    return a > b ? a - b : 0;
}
