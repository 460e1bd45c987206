/*
 * replay.h - the consumer's message source when replay.file is set: a recorded message stream
 * (xdcr/record.h, written by `xdcr tail --record`) instead of Kafka. The file is mapped and
 * checked completely before anything is handed out (every CRC, offsets increasing per
 * partition), so a damaged file is refused before a single change is applied. The partitions of
 * the subscribed topics are "assigned" through the same callback a Kafka rebalance uses, so the
 * stored positions, the stream rules and the gap check work exactly as they do with Kafka: what
 * the target already holds is skipped, a file that starts after the stored position is a gap.
 *
 * Done (cons_source_done) once every assigned partition is paused or read to its end; commits
 * go nowhere. Memory: the mapping (page cache) and 16 bytes per message for the index.
 */
#ifndef CONS_REPLAY_H
#define CONS_REPLAY_H

#include "cons_source.h"
#include "xdcr/log.h"

/* The message source of replay.file; NULL with err set when the file cannot be used. */
cons_source_t *cons_replay_open(const char *path, cons_assign_fn on_assign,
                                cons_revoke_fn on_revoke, void *ctx, const xdcr_log_t *lg,
                                xdcr_error_t *err);

#endif
