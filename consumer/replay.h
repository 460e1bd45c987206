/*
 * replay.h - the consumer's message source when replay.file is set: a recorded message stream
 * (xdcr/record.h, written by `xdcr tail --record`) instead of Kafka. The file is mapped and
 * checked completely before anything is handed out (every CRC, offsets increasing per
 * partition), so a damaged file is refused before a single change is applied. The partitions of
 * the subscribed topics are "assigned" through the same callback a Kafka rebalance uses, so the
 * stored positions, the stream rules and the gap check work exactly as they do with Kafka: what
 * the target already holds is skipped, a file that starts after the stored position is a gap.
 *
 * Used by kafka_consumer.c only (cons_kafka_new_replay); memory: the mapping (page cache) and 16
 * bytes per message for the index.
 */
#ifndef CONS_REPLAY_H
#define CONS_REPLAY_H

#include "kafka_consumer.h"

typedef struct cons_replay cons_replay_t;

cons_replay_t *cons_replay_open(const char *path, cons_assign_fn on_assign,
                                cons_revoke_fn on_revoke, void *ctx, const xdcr_log_t *lg,
                                xdcr_error_t *err);
void cons_replay_free(cons_replay_t *r);
void cons_replay_close(cons_replay_t *r);
int cons_replay_subscribe(cons_replay_t *r, char *const *topics, size_t n, xdcr_error_t *err);
void cons_replay_poll(cons_replay_t *r);
bool cons_replay_has_data(cons_replay_t *r, const char *topic, int32_t partition);
int cons_replay_consume(cons_replay_t *r, const char *topic, int32_t partition, cons_kmsg_t *m);
int cons_replay_seek(cons_replay_t *r, const char *topic, int32_t partition, int64_t offset,
                     xdcr_error_t *err);
int cons_replay_pause(cons_replay_t *r, const char *topic, int32_t partition, bool pause,
                      xdcr_error_t *err);
int cons_replay_watermarks(cons_replay_t *r, const char *topic, int32_t partition, int64_t *low,
                           int64_t *high, xdcr_error_t *err);
/* True once every assigned partition is paused or read to its end. */
bool cons_replay_done(const cons_replay_t *r);

#endif
