/*
 * cons_source.h - where the consumer's messages come from: the interface the apply loop
 * (consumer.c) reads through, with two implementations: a Kafka group consumer
 * (kafka_consumer.c) and a recorded message stream (replay.c, `replay.file`). Partitions are
 * handed to the loop through the assignment callback and read one at a time, each from its
 * own queue; positions live in the target database, so a source only seeks where it is told.
 */
#ifndef CONS_SOURCE_H
#define CONS_SOURCE_H

#include "xdcr/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Logical offsets (the values librdkafka uses) and "no position known". */
#define CONS_KAFKA_OFFSET_BEGINNING (-2)
#define CONS_KAFKA_OFFSET_END (-1)
#define CONS_KAFKA_OFFSET_NONE (-1001)

/* A partition in an assignment. */
typedef struct cons_tp {
    const char *topic; /* valid during the callback */
    int32_t partition;
    int64_t offset; /* assign: where to start (>= 0 or a logical offset), filled by the
                       callback; CONS_KAFKA_OFFSET_NONE = unknown (assigned paused) */
    bool pause;     /* assign: start paused (the origin is halted) */
} cons_tp_t;

/*
 * Called from cons_source_poll() when partitions are assigned: fill offset and pause for each.
 * May block (it reads positions from the target).
 */
typedef void (*cons_assign_fn)(void *ctx, cons_tp_t *tps, size_t n);
/* Called from cons_source_poll() (or close) before partitions are taken away. */
typedef void (*cons_revoke_fn)(void *ctx, const cons_tp_t *tps, size_t n);

enum { CONS_HDR_ORIGIN, CONS_HDR_SEQ, CONS_HDR_FORMAT, CONS_HDR_CRC, CONS_HDR_TYPE, CONS_HDR_N };
/* The header name of each CONS_HDR_* (XDCR_HDR_* of xdcr/event.h). */
extern const char *const cons_hdr_names[CONS_HDR_N];

/* One received message or partition error; borrowed until cons_source_release(). */
typedef struct cons_kmsg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *payload;
    size_t len;
    const char *hdr[CONS_HDR_N]; /* header values (not NUL-terminated) or NULL when absent */
    size_t hdr_len[CONS_HDR_N];
    int err;              /* 0; XDCR_EGAP: the offset is out of range (retention gap, recreated
                             topic); XDCR_EKAFKA: another partition error */
    char errstr[256];     /* when err != 0 */
    void *rkm_;           /* the source's own handle of the message, or NULL */
    int64_t timestamp_ms; /* the message's Kafka timestamp (ms since the epoch), -1 when unknown
                             or replayed (a recording's timestamps are not of this run) */
} cons_kmsg_t;

typedef struct cons_source cons_source_t;

/* What a source implements; see the cons_source_* wrappers below for each call's contract. */
typedef struct cons_source_ops {
    void (*close)(cons_source_t *s);
    void (*free)(cons_source_t *s);
    int (*subscribe)(cons_source_t *s, char *const *topics, size_t n, xdcr_error_t *err);
    void (*poll)(cons_source_t *s, int timeout_ms);
    bool (*has_data)(cons_source_t *s, const char *topic, int32_t partition);
    int (*consume)(cons_source_t *s, const char *topic, int32_t partition, cons_kmsg_t *m);
    void (*release)(cons_source_t *s, cons_kmsg_t *m);
    int (*seek)(cons_source_t *s, const char *topic, int32_t partition, int64_t offset,
                xdcr_error_t *err);
    int (*pause)(cons_source_t *s, const char *topic, int32_t partition, bool pause,
                 xdcr_error_t *err);
    int (*watermarks)(cons_source_t *s, const char *topic, int32_t partition, int timeout_ms,
                      int64_t *low, int64_t *high, xdcr_error_t *err);
    int64_t (*high_watermark)(cons_source_t *s, const char *topic, int32_t partition,
                              int64_t now_ms);
    void (*commit)(cons_source_t *s, const char *topic, int32_t partition, int64_t next_offset,
                   bool async);
    bool (*done)(const cons_source_t *s);
    bool (*is_up)(const cons_source_t *s);
    const char *(*last_error)(const cons_source_t *s);
} cons_source_ops_t;

/* Every implementation's struct starts with this. */
struct cons_source {
    const cons_source_ops_t *ops;
};

/* Leave the group now (revoking partitions through the callback). */
static inline void cons_source_close(cons_source_t *s)
{
    s->ops->close(s);
}

/* Close and destroy. NULL-safe. */
static inline void cons_source_free(cons_source_t *s)
{
    if (s != NULL)
        s->ops->free(s);
}

static inline int cons_source_subscribe(cons_source_t *s, char *const *topics, size_t n,
                                        xdcr_error_t *err)
{
    return s->ops->subscribe(s, topics, n, err);
}

/* Serve group events (rebalances, errors), waiting at most timeout_ms for anything to arrive. */
static inline void cons_source_poll(cons_source_t *s, int timeout_ms)
{
    s->ops->poll(s, timeout_ms);
}

/* True when the partition's queue has something to read. */
static inline bool cons_source_has_data(cons_source_t *s, const char *topic, int32_t partition)
{
    return s->ops->has_data(s, topic, partition);
}

/*
 * Take the next message of one assigned partition without waiting: 1 with *m filled, 0 when
 * nothing is queued, XDCR_ENOTFOUND when the partition is not assigned.
 */
static inline int cons_source_consume(cons_source_t *s, const char *topic, int32_t partition,
                                      cons_kmsg_t *m)
{
    return s->ops->consume(s, topic, partition, m);
}

static inline void cons_source_release(cons_source_t *s, cons_kmsg_t *m)
{
    s->ops->release(s, m);
}

/* Read from offset next, exact or logical (the partition's queued messages are discarded). */
static inline int cons_source_seek(cons_source_t *s, const char *topic, int32_t partition,
                                   int64_t offset, xdcr_error_t *err)
{
    return s->ops->seek(s, topic, partition, offset, err);
}

static inline int cons_source_pause(cons_source_t *s, const char *topic, int32_t partition,
                                    bool pause, xdcr_error_t *err)
{
    return s->ops->pause(s, topic, partition, pause, err);
}

/* Low (first held) and high (next to be written) watermarks of the partition. */
static inline int cons_source_watermarks(cons_source_t *s, const char *topic, int32_t partition,
                                         int timeout_ms, int64_t *low, int64_t *high,
                                         xdcr_error_t *err)
{
    return s->ops->watermarks(s, topic, partition, timeout_ms, low, high, err);
}

/*
 * High watermark of an assigned partition for lag in messages, or -1 when unknown; may ask
 * the broker (Kafka: at most once a second, blocking for at most 250 ms).
 */
static inline int64_t cons_source_high_watermark(cons_source_t *s, const char *topic,
                                                 int32_t partition, int64_t now_ms)
{
    return s->ops->high_watermark(s, topic, partition, now_ms);
}

/* Commit next_offset for external tools (lag dashboards); never read back. */
static inline void cons_source_commit(cons_source_t *s, const char *topic, int32_t partition,
                                      int64_t next_offset, bool async)
{
    s->ops->commit(s, topic, partition, next_offset, async);
}

/* A finite source (a recording) that every assigned partition has read to its end or paused. */
static inline bool cons_source_done(const cons_source_t *s)
{
    return s->ops->done(s);
}

/* False when the source knows that no broker is reachable. */
static inline bool cons_source_is_up(const cons_source_t *s)
{
    return s->ops->is_up(s);
}

/* The last error the source reported ("" when none); valid until the next poll. */
static inline const char *cons_source_last_error(const cons_source_t *s)
{
    return s->ops->last_error(s);
}

#endif
