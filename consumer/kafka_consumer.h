/*
 * kafka_consumer.h - the consumer's only librdkafka user, a message source (cons_source.h): a
 * group (or statically assigned) consumer of the remote origins' topics with manual offsets
 * (never auto-commit, never auto-reset), one local queue per assigned partition so the loop
 * can read one origin at a time, pause/resume, seek, watermarks, and offset commits for external
 * tools. librdkafka's errors are mapped here.
 */
#ifndef CONS_KAFKA_CONSUMER_H
#define CONS_KAFKA_CONSUMER_H

#include "cons_source.h"
#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Validate kafka.* (each pair goes to rd_kafka_conf_set unchanged; a rejected one is reported
 * naming kafka.<key>) without connecting. Settings that would let Kafka decide positions
 * (enable.auto.commit, enable.auto.offset.store, auto.offset.reset other than error) are
 * rejected.
 */
int cons_kafka_check_config(const xdcr_kv_list_t *kafka, const char *group_id, xdcr_error_t *err);

/*
 * The Kafka message source, subscribed by cons_source_subscribe(): a member of group group_id,
 * or with static_assign every partition of the topics (found through metadata, at start and
 * every 10 s; new partitions are added), with no group membership. group_id still names
 * the informational offset commits.
 */
cons_source_t *cons_kafka_new(const xdcr_kv_list_t *kafka, const char *group_id, bool static_assign,
                              cons_assign_fn on_assign, cons_revoke_fn on_revoke, void *ctx,
                              const xdcr_log_t *lg, xdcr_error_t *err);

#endif
