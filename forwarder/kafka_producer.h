/*
 * kafka_producer.h - the forwarder's only librdkafka user: an idempotent producer (acks=all)
 * for one origin topic. Delivery reports come back through a callback on the thread that calls
 * fwd_kafka_poll(), with librdkafka's errors mapped to xdcr's.
 */
#ifndef FWD_KAFKA_PRODUCER_H
#define FWD_KAFKA_PRODUCER_H

#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fwd_kafka fwd_kafka_t;

typedef struct fwd_delivery {
    uint64_t ticket;
    size_t bytes;            /* payload bytes */
    bool ok;                 /* acknowledged by every in-sync replica (acks=all) */
    bool possibly_persisted; /* failed, but may be in the log: never counted as success */
    int64_t offset;          /* when ok */
    int32_t partition;
    char errstr[256]; /* when !ok */
} fwd_delivery_t;

typedef void (*fwd_delivery_fn)(void *ctx, const fwd_delivery_t *d);

/*
 * Validate the kafka.* settings (every pair goes to rd_kafka_conf_set unchanged; a rejected one is
 * reported naming kafka.<key>) without connecting. Settings that would break the delivery
 * guarantee (enable.idempotence=false, acks other than all/-1) are rejected.
 */
int fwd_kafka_check_config(const xdcr_kv_list_t *kafka, xdcr_error_t *err);

fwd_kafka_t *fwd_kafka_new(const xdcr_kv_list_t *kafka, const char *topic, fwd_delivery_fn fn,
                           void *ctx, const xdcr_log_t *lg, xdcr_error_t *err);
/* Destroys the producer; undelivered messages are dropped (the caller re-streams them). */
void fwd_kafka_free(fwd_kafka_t *k);

/*
 * Enqueue one message keyed by key. The payload is copied. XDCR_EFULL (retriable) when
 * librdkafka's queue is full; a fatal producer error gives XDCR_EKAFKA.
 */
int fwd_kafka_produce(fwd_kafka_t *k, const char *key, const void *payload, size_t len,
                      const xdcr_headers_t *h, uint64_t ticket, xdcr_error_t *err);

/* Serve delivery reports and errors, waiting at most timeout_ms. */
void fwd_kafka_poll(fwd_kafka_t *k, int timeout_ms);

/* Wait until every message is delivered or failed, at most timeout_ms; returns messages left. */
int fwd_kafka_flush(fwd_kafka_t *k, int timeout_ms);

/* Drop messages not yet sent (they are reported as failed); in-flight ones still complete. */
void fwd_kafka_purge_queued(fwd_kafka_t *k);

/* Messages waiting in librdkafka (queued or in flight). */
int fwd_kafka_outq_len(fwd_kafka_t *k);

/* True after an unrecoverable producer error (e.g. idempotence fencing): recreate it. */
bool fwd_kafka_is_fatal(fwd_kafka_t *k, xdcr_error_t *err);

/* True while at least one broker connection is up (from librdkafka's statistics of brokers). */
bool fwd_kafka_is_connected(fwd_kafka_t *k);

/* High watermark of the topic's partition 0, or 0 when the topic does not exist yet. */
int fwd_kafka_high_watermark(fwd_kafka_t *k, int timeout_ms, int64_t *hw, xdcr_error_t *err);

#endif
