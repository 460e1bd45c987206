/*
 * clock.h - the monotonic clock in milliseconds, for deadlines and intervals (never for
 * timestamps that leave the process).
 */
#ifndef XDCR_CLOCK_H
#define XDCR_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t xdcr_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
