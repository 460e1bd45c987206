/*
 * fwd_config.h - the forwarder's configuration: one struct, filled once from the option table in
 * fwd_config.c (file + environment + flags), validated before anything connects, then const.
 */
#ifndef FWD_CONFIG_H
#define FWD_CONFIG_H

#include "xdcr/config.h"
#include "xdcr/log.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct fwd_config {
    char *origin;              /* stable origin name, [A-Za-z0-9._-]{1,63} */
    char *pg_conninfo;         /* libpq conninfo of the source database */
    char *pg_password_file;    /* optional file holding the password */
    char *slot_name;           /* default xdcr_<origin> (dots/dashes to underscores) */
    bool slot_create;          /* create the slot when missing (never recreate a lost one) */
    char *publication;         /* default xdcr_<origin> */
    bool publication_create;   /* create the publication when missing */
    char *publication_tables;  /* comma list of schema.table; empty = all tables */
    char *topic;               /* default xdcr.<origin>.changes */
    int64_t message_max_bytes; /* bytes per Kafka message payload */
    int64_t heartbeat_ms;      /* progress mark interval */
    int64_t status_ms;         /* standby status update interval */
    bool forward_origins;      /* forward transactions that carry a replication origin */
    char *exclude_schemas;     /* comma list of schemas never forwarded (the consumer's own) */
    int64_t inflight_max_messages;
    int64_t inflight_max_bytes;
    int64_t drain_timeout_ms;
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    int log_level;         /* index into the level names */
    char *http_listen;     /* host:port for /metrics etc., empty = off */
    char *http_token_file; /* optional bearer token file */
    char *push_url;        /* status feed: POST /status JSON here, empty = off */
    int64_t push_interval_ms;
    int64_t push_timeout_ms;
    int64_t push_retries;
    char *push_token_file; /* bearer token for the receiver */
    xdcr_kv_list_t kafka;  /* kafka.* pass-through, prefix removed */
} fwd_config_t;

extern const xdcr_config_spec_t fwd_config_spec;

/*
 * Load and validate: fills derived defaults (slot, publication, topic from origin), checks the
 * origin name, reads no secrets yet. Returns 0 or an XDCR_ECONFIG error naming the key.
 */
int fwd_config_load(fwd_config_t *cfg, char *const *envp, int argc, char *const *argv,
                    xdcr_config_cli_t *cli, xdcr_error_t *err);
void fwd_config_free(fwd_config_t *cfg);

#endif
