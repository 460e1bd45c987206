/*
 * cons_config.h - the consumer's configuration: one struct, filled once from the option table in
 * cons_config.c (file + environment + flags), validated before anything connects, then const.
 */
#ifndef CONS_CONFIG_H
#define CONS_CONFIG_H

#include "xdcr/config.h"
#include "xdcr/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CONS_ON_ERROR_HALT = 0, CONS_ON_ERROR_DEAD_LETTER = 1 };
enum { CONS_TRUNCATE_APPLY = 0, CONS_TRUNCATE_IGNORE = 1 };
enum { CONS_INITIAL_EARLIEST = 0, CONS_INITIAL_LATEST = 1 };
enum { CONS_ROLE_REPLICA = 0, CONS_ROLE_ORIGIN = 1 };
enum { CONS_MODE_ACTIVE_ACTIVE = 0, CONS_MODE_ONE_WAY = 1 };
enum { CONS_SYNC_AUTO = 0, CONS_SYNC_ON = 1, CONS_SYNC_OFF = 2 };
enum { CONS_ASSIGN_GROUP = 0, CONS_ASSIGN_STATIC = 1 };
enum {
    CONS_POLICY_LWW = 0,
    CONS_POLICY_APPLY_REMOTE = 1,
    CONS_POLICY_KEEP_LOCAL = 2,
    CONS_POLICY_ERROR = 3
};
extern const char *const cons_policy_names[]; /* by CONS_POLICY_*, NULL-terminated */

typedef struct cons_config {
    char *origin;            /* this DC's own origin: its topic is never subscribed */
    char *origins;           /* comma list of remote origins to apply */
    char *topic_template;    /* "xdcr.{origin}.changes" */
    char *group_id;          /* default xdcr-<origin> */
    int assignment;          /* CONS_ASSIGN_*: partitions from the group, or all of them */
    char *pg_conninfo;       /* libpq conninfo of the target database */
    char *pg_password_file;  /* optional file holding the password */
    char *schema;            /* the consumer's own schema in the target, default xdcr */
    char *tables;            /* comma list of schema.table checked at start (may be empty) */
    int64_t batch_max_rows;  /* rows per target transaction (a source transaction is never split) */
    int64_t batch_max_bytes; /* payload bytes per target transaction */
    int64_t batch_max_delay_ms;     /* how long a batch stays open waiting for more */
    int on_error;                   /* CONS_ON_ERROR_* */
    int truncate;                   /* CONS_TRUNCATE_* */
    int initial_position;           /* CONS_INITIAL_*: where to start without a stored position */
    int replication_role;           /* CONS_ROLE_*: session_replication_role of the apply session */
    int mode;                       /* CONS_MODE_* */
    int conflict_policy;            /* CONS_POLICY_*: default in active-active mode */
    char *table_policies;           /* "schema.table=policy,..." overrides (validated) */
    int64_t tombstone_retention_ms; /* how long deleted keys are remembered */
    int synchronous_commit;         /* CONS_SYNC_*: of the apply session */
    bool multi_row;                 /* multi-row statements */
    char *replay_file;              /* apply this recording instead of Kafka, then exit */
    int64_t copy_min_rows;          /* insert groups at least this big go by COPY; 0 never */
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    int64_t drain_timeout_ms;
    int64_t halt_check_ms; /* how often a halted origin looks for operator actions */
    int log_level;
    char *http_listen;     /* host:port of /metrics, /livez, /readyz, /status; "" disables */
    char *http_token_file; /* bearer token for the HTTP endpoints (not /livez, /readyz), or NULL */
    char *push_url;        /* status feed: POST /status JSON here, empty = off */
    int64_t push_interval_ms;
    int64_t push_timeout_ms;
    int64_t push_retries;
    char *push_token_file; /* bearer token for the receiver, or NULL */
    xdcr_kv_list_t kafka;  /* kafka.* pass-through, prefix removed */

    /* derived */
    char **origin_list; /* split origins, norigins entries */
    size_t norigins;
    char **topics;       /* topic of each origin_list entry */
    bool per_txn_commit; /* last_writer_wins anywhere: one target transaction per source one */
} cons_config_t;

extern const xdcr_config_spec_t cons_config_spec;

/*
 * Load and validate: origin names, the topic template, derived defaults (group id, topics).
 * Returns 0 or an XDCR_ECONFIG error naming the key.
 */
int cons_config_load(cons_config_t *cfg, char *const *envp, int argc, char *const *argv,
                     xdcr_config_cli_t *cli, xdcr_error_t *err);
void cons_config_free(cons_config_t *cfg);

/* Topic name for origin from the template ("{origin}" replaced); malloc'd, NULL on OOM. */
char *cons_config_topic_for(const char *template_, const char *origin);

#endif
