/*
 * kafka_consumer.h - the consumer's only librdkafka user: a group consumer of the remote
 * origins' topics with manual offsets (never auto-commit, never auto-reset), one local queue
 * per assigned partition so the loop can read one origin at a time, pause/resume, seek,
 * watermarks, and offset commits for external tools. librdkafka's errors are mapped here.
 */
#ifndef CONS_KAFKA_CONSUMER_H
#define CONS_KAFKA_CONSUMER_H

#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cons_kafka cons_kafka_t;

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
 * Called from cons_kafka_poll() when partitions are assigned: fill offset and pause for each.
 * May block (it reads positions from the target).
 */
typedef void (*cons_assign_fn)(void *ctx, cons_tp_t *tps, size_t n);
/* Called from cons_kafka_poll() (or close) before partitions are taken away. */
typedef void (*cons_revoke_fn)(void *ctx, const cons_tp_t *tps, size_t n);

enum { CONS_HDR_ORIGIN, CONS_HDR_SEQ, CONS_HDR_FORMAT, CONS_HDR_CRC, CONS_HDR_TYPE, CONS_HDR_N };
/* The header name of each CONS_HDR_* (XDCR_HDR_* of xdcr/event.h). */
extern const char *const cons_hdr_names[CONS_HDR_N];

/* One received message or partition error; borrowed until cons_kafka_release(). */
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
    void *rkm_;           /* the librdkafka message */
    int64_t timestamp_ms; /* the message's Kafka timestamp (ms since the epoch), -1 when unknown
                             or replayed (a recording's timestamps are not of this run) */
} cons_kmsg_t;

/*
 * Validate kafka.* (each pair goes to rd_kafka_conf_set unchanged; a rejected one is reported
 * naming kafka.<key>) without connecting. Settings that would let Kafka decide positions
 * (enable.auto.commit, enable.auto.offset.store, auto.offset.reset other than error) are
 * rejected.
 */
int cons_kafka_check_config(const xdcr_kv_list_t *kafka, const char *group_id, xdcr_error_t *err);

cons_kafka_t *cons_kafka_new(const xdcr_kv_list_t *kafka, const char *group_id,
                             cons_assign_fn on_assign, cons_revoke_fn on_revoke, void *ctx,
                             const xdcr_log_t *lg, xdcr_error_t *err);
/*
 * The same interface over a recorded message stream (replay.file, see replay.h): no broker,
 * every subscribed partition of the file is assigned at the first poll, commits go nowhere.
 */
cons_kafka_t *cons_kafka_new_replay(const char *path, cons_assign_fn on_assign,
                                    cons_revoke_fn on_revoke, void *ctx, const xdcr_log_t *lg,
                                    xdcr_error_t *err);
/* Replay only: every assigned partition is paused or read to its end (always false for Kafka). */
bool cons_kafka_done(const cons_kafka_t *k);

/* Leaves the group (revoking partitions through the callback) and destroys. NULL-safe. */
void cons_kafka_free(cons_kafka_t *k);
/* Leave the group now; the callbacks run from here. */
void cons_kafka_close(cons_kafka_t *k);

int cons_kafka_subscribe(cons_kafka_t *k, char *const *topics, size_t n, xdcr_error_t *err);

/* Serve group events (rebalances, errors), waiting at most timeout_ms. */
void cons_kafka_poll(cons_kafka_t *k, int timeout_ms);

/* True when the partition's local queue has something to read. */
bool cons_kafka_has_data(cons_kafka_t *k, const char *topic, int32_t partition);

/*
 * Take the next message of one assigned partition without waiting: 1 with *m filled, 0 when
 * nothing is queued, XDCR_ENOTFOUND when the partition is not assigned.
 */
int cons_kafka_consume(cons_kafka_t *k, const char *topic, int32_t partition, cons_kmsg_t *m);
void cons_kafka_release(cons_kmsg_t *m);

/* Read from offset next, exact or logical (the partition's queued messages are discarded). */
int cons_kafka_seek(cons_kafka_t *k, const char *topic, int32_t partition, int64_t offset,
                    xdcr_error_t *err);
int cons_kafka_pause(cons_kafka_t *k, const char *topic, int32_t partition, bool pause,
                     xdcr_error_t *err);

/* Low (first held) and high (next to be written) watermarks from the partition leader. */
int cons_kafka_watermarks(cons_kafka_t *k, const char *topic, int32_t partition, int timeout_ms,
                          int64_t *low, int64_t *high, xdcr_error_t *err);

/*
 * High watermark of an assigned partition for lag in messages, or -1 when unknown: the value
 * the last fetch response carried (no I/O), or for a paused partition the leader's answer,
 * asked at most once a second (blocking for at most 250 ms).
 */
int64_t cons_kafka_high_watermark(cons_kafka_t *k, const char *topic, int32_t partition,
                                  int64_t now_ms);

/* False when the last statistics (or an all-brokers-down error) showed no broker UP. */
bool cons_kafka_is_up(const cons_kafka_t *k);

/* The last error librdkafka reported ("" when none); valid until the next poll. */
const char *cons_kafka_last_error(const cons_kafka_t *k);

/* Commit next_offset for external tools (lag dashboards); never read back. */
void cons_kafka_commit(cons_kafka_t *k, const char *topic, int32_t partition, int64_t next_offset,
                       bool async);

#endif
