/*
 * dev_broker.h - internals shared by dev_broker.c (process, control socket) and
 * dev_broker_commands.c (the control protocol applied to the mock cluster). Not a public API.
 */
#ifndef XDCR_CLI_DEV_BROKER_H
#define XDCR_CLI_DEV_BROKER_H

#include "xdcr/error.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>

#define CLI_BROKER_MAX_BROKERS 32
#define CLI_BROKER_MAX_PARTITIONS 10000
#define CLI_BROKER_MAX_TOPIC_NAME 249
#define CLI_BROKER_LINE_MAX 4096  /* one control command, newline included */
#define CLI_BROKER_REPLY_MAX 8192 /* one reply line, newline included */

typedef struct cli_broker_topic {
    char *name;     /* owned */
    int partitions; /* >= 1 */
} cli_broker_topic_t;

/* What the control commands act on. Zero-initialise, then set the first four fields. */
typedef struct cli_broker {
    rd_kafka_mock_cluster_t *mcluster;      /* not owned */
    const char *bootstraps;                 /* owned by mcluster */
    int broker_cnt;                         /* broker ids are 1..broker_cnt */
    int replication_factor;                 /* min(broker_cnt, 3), for every topic we create */
    bool down[CLI_BROKER_MAX_BROKERS + 1];  /* by broker id, as set through the control channel */
    int rtt_ms[CLI_BROKER_MAX_BROKERS + 1]; /* by broker id, as set through the control channel */
    cli_broker_topic_t *topics; /* created by us; topics auto-created by clients are not listed */
    size_t topic_cnt;
    size_t topic_cap;
} cli_broker_t;

/*
 * Execute one command line (NUL-terminated, no newline; modified in place) and write the reply
 * line, "ok[ <data>]\n" or "error <message>\n", into reply. Returns true when the client asked
 * to close its connection (quit). Never fails otherwise: bad input gets an error reply.
 */
bool cli_broker_execute(cli_broker_t *db, char *line, char *reply, size_t reply_len);

/* Create a topic on the mock cluster and list it. Returns 0 or a negative XDCR_E* code. */
int cli_broker_create_topic(cli_broker_t *db, const char *name, int partitions, xdcr_error_t *err);

/* Kafka's rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool cli_broker_is_valid_topic_name(const char *s);

/* Strict decimal integer in min..max; `what` names it in the error. Returns 0 or XDCR_E*. */
int cli_broker_parse_long(const char *s, long min, long max, long *out, const char *what,
                          xdcr_error_t *err);

/* Free the topic list. db may be NULL. Does not touch the mock cluster. */
void cli_broker_fini(cli_broker_t *db);

#endif
