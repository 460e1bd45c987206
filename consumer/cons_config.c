/*
 * cons_config.c - the consumer's option table and the validation of derived settings.
 * The table is the single source of --help and docs/configuration.md.
 */
#include "cons_config.h"

#include "xdcr/event.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const on_error_values[] = {"halt", "dead_letter", NULL};
static const char *const truncate_values[] = {"apply", "ignore", NULL};
static const char *const initial_values[] = {"earliest", "latest", NULL};
static const char *const role_values[] = {"replica", "origin", NULL};
static const char *const mode_values[] = {"active-active", "one-way", NULL};
static const char *const sync_values[] = {"auto", "on", "off", NULL};
static const char *const assignment_values[] = {"group", "static", NULL};
const char *const cons_policy_names[] = {"last_writer_wins", "apply_remote", "keep_local", "error",
                                         NULL};

#define OPT(n, t, d, lo, hi, field, fl, en, h)                                                     \
    {                                                                                              \
        n, t, d, lo, hi, offsetof(cons_config_t, field), fl, en, h                                 \
    }

static const xdcr_option_t cons_options[] = {
    OPT("origin", XDCR_OPT_STRING, NULL, 0, -1, origin, XDCR_OPT_F_REQUIRED, NULL,
        "this DC's own origin name; its topic is never subscribed"),
    OPT("origins", XDCR_OPT_LIST, NULL, 0, -1, origins, XDCR_OPT_F_REQUIRED, NULL,
        "remote origins to apply, comma separated"),
    OPT("topic.template", XDCR_OPT_STRING, "xdcr.{origin}.changes", 0, -1, topic_template, 0, NULL,
        "Kafka topic of an origin; {origin} is replaced by the origin name"),
    OPT("group.id", XDCR_OPT_STRING, NULL, 0, -1, group_id, 0, NULL,
        "Kafka consumer group (default xdcr-<origin>)"),
    OPT("assignment", XDCR_OPT_ENUM, "group", 0, -1, assignment, 0, assignment_values,
        "how the consumer gets the origins' partitions: group joins group.id, and Kafka hands "
        "them to one of the consumers running with it (a standby takes over when one stops); "
        "static reads every partition of the origins' topics itself, with no group and so no "
        "wait for the group's join on start (group.initial.rebalance.delay.ms on the broker, 3 s "
        "by default): for one consumer per target. Either way one session at a time applies an "
        "origin into the target (it holds the origin's replication origin): a second consumer "
        "waits as a standby"),
    OPT("pg.conninfo", XDCR_OPT_STRING, NULL, 0, -1, pg_conninfo, XDCR_OPT_F_REQUIRED, NULL,
        "libpq connection string of the target database (TLS via sslmode/sslrootcert)"),
    OPT("pg.password_file", XDCR_OPT_STRING, NULL, 0, -1, pg_password_file, XDCR_OPT_F_FILE, NULL,
        "file holding the PostgreSQL password (e.g. a mounted Kubernetes Secret)"),
    OPT("schema", XDCR_OPT_STRING, "xdcr", 0, -1, schema, 0, NULL,
        "schema of the consumer's positions, dead letters and audit in the target database"),
    OPT("tables", XDCR_OPT_LIST, "", 0, -1, tables, 0, NULL,
        "tables (schema.table, comma separated) checked at start; every table is also checked "
        "when first seen"),
    OPT("batch.max_rows", XDCR_OPT_INT, "10000", 1, 10000000, batch_max_rows, 0, NULL,
        "rows per target transaction (a source transaction is never split)"),
    OPT("batch.max_bytes", XDCR_OPT_SIZE, "16MB", 4096, (int64_t)1 << 34, batch_max_bytes, 0, NULL,
        "Kafka payload bytes per target transaction"),
    OPT("batch.max_delay", XDCR_OPT_DURATION, "0ms", 0, 60000, batch_max_delay_ms, 0, NULL,
        "how long a target transaction stays open waiting for more source transactions once "
        "none is waiting; 0: commit as soon as the consumer has nothing more at hand (batches "
        "still grow under load, while the previous commit runs)"),
    OPT("on_error", XDCR_OPT_ENUM, "halt", 0, -1, on_error, 0, on_error_values,
        "a message that cannot be decoded or applied: halt its origin, or store it in "
        "<schema>.dead_letters and go on"),
    OPT("truncate", XDCR_OPT_ENUM, "apply", 0, -1, truncate, 0, truncate_values,
        "TRUNCATE from a source: apply it, or ignore it"),
    OPT("initial_position", XDCR_OPT_ENUM, "earliest", 0, -1, initial_position, 0, initial_values,
        "where to start reading an origin that has no stored position"),
    OPT("session_replication_role", XDCR_OPT_ENUM, "replica", 0, -1, replication_role, 0,
        role_values,
        "of the apply session: replica skips ordinary triggers and foreign-key checks, as "
        "PostgreSQL's own logical replication does"),
    OPT("mode", XDCR_OPT_ENUM, "active-active", 0, -1, mode, 0, mode_values,
        "active-active: the target is also written locally (or by other DCs), every change is "
        "checked for conflicts and resolved by conflict.policy; one-way: the target is a "
        "read-only copy, changes are applied as they come (fastest)"),
    OPT("conflict.policy", XDCR_OPT_ENUM, "last_writer_wins", 0, -1, conflict_policy, 0,
        cons_policy_names,
        "active-active: how a conflict is resolved: last_writer_wins (newest source commit "
        "time, then origin name), apply_remote, keep_local, or error (halt the origin)"),
    OPT("conflict.table_policies", XDCR_OPT_LIST, "", 0, -1, table_policies, 0, NULL,
        "per-table overrides of conflict.policy: schema.table=policy, comma separated"),
    OPT("conflict.tombstone_retention", XDCR_OPT_DURATION, "7d", 60000, (int64_t)366 * 86400000,
        tombstone_retention_ms, 0, NULL,
        "how long deleted keys are remembered, so that an older change arriving later does not "
        "bring a deleted row back; keep it above the longest replication delay you tolerate"),
    OPT("apply.copy_min_rows", XDCR_OPT_INT, "500", 0, 5000, copy_min_rows, 0, NULL,
        "one-way: consecutive inserts into one table, at least this many, go by COPY (under a "
        "savepoint; a row that exists already makes them go by the upsert statement instead, "
        "same effect); 0: never. Rows are grouped up to 5000"),
    OPT("replay.file", XDCR_OPT_STRING, NULL, 0, -1, replay_file, XDCR_OPT_F_FILE, NULL,
        "apply the messages recorded in this file (`xdcr tail --record`) instead of reading "
        "Kafka, then exit; positions, duplicate skipping and gap checks work as with Kafka, and "
        "kafka.* is not used. For re-applying a recording and for measuring the apply engine "
        "alone"),
    OPT("apply.multi_row", XDCR_OPT_BOOL, "true", 0, -1, multi_row, 0, NULL,
        "apply consecutive rows of one table and operation with one statement (arrays of "
        "values); false: one statement per row. Conflict resolution is always per row"),
    OPT("apply.synchronous_commit", XDCR_OPT_ENUM, "auto", 0, -1, synchronous_commit, 0,
        sync_values,
        "synchronous_commit of the apply session: off lets a commit return before its WAL is "
        "flushed (a target crash loses the last commits together with their positions, and they "
        "are applied again from Kafka); auto = off, as PostgreSQL's own subscriptions do (W2: "
        "apply lag p99 24 -> 13 ms); on waits for every batch's flush"),
    OPT("retry.backoff_initial", XDCR_OPT_DURATION, "250ms", 10, 60000, backoff_initial_ms, 0, NULL,
        "first delay before retrying after a retriable error"),
    OPT("retry.backoff_max", XDCR_OPT_DURATION, "30s", 100, 600000, backoff_max_ms, 0, NULL,
        "largest delay between retries"),
    OPT("drain.timeout", XDCR_OPT_DURATION, "10s", 0, 600000, drain_timeout_ms, 0, NULL,
        "on SIGTERM, how long to finish the open source transaction before rolling it back"),
    OPT("halt.check_interval", XDCR_OPT_DURATION, "5s", 100, 600000, halt_check_ms, 0, NULL,
        "how often a halted origin checks the target for an operator's skip or accepted gap"),
    OPT("log.level", XDCR_OPT_ENUM, "info", 0, -1, log_level, 0, log_levels,
        "error, warn, info or debug"),
    OPT("http.listen", XDCR_OPT_STRING, "127.0.0.1:9188", 0, -1, http_listen, 0, NULL,
        "address of /metrics, /livez, /readyz, /status; empty disables"),
    OPT("http.token_file", XDCR_OPT_STRING, NULL, 0, -1, http_token_file, XDCR_OPT_F_FILE, NULL,
        "file holding a bearer token required by /metrics and /status (the probes /livez and "
        "/readyz stay open)"),
    OPT("status.push_url", XDCR_OPT_STRING, "", 0, -1, push_url, 0, NULL,
        "dashboard feed: POST the /status JSON to this http(s) URL every interval; empty = off"),
    OPT("status.push_interval", XDCR_OPT_DURATION, "10s", 1000, 3600000, push_interval_ms, 0, NULL,
        "interval of the status feed"),
    OPT("status.push_timeout", XDCR_OPT_DURATION, "2s", 100, 60000, push_timeout_ms, 0, NULL,
        "timeout of one status feed request"),
    OPT("status.push_retries", XDCR_OPT_INT, "2", 0, 10, push_retries, 0, NULL,
        "retries (with doubling backoff from 250ms) of a failed status feed request"),
    OPT("status.push_token_file", XDCR_OPT_STRING, NULL, 0, -1, push_token_file, XDCR_OPT_F_FILE,
        NULL, "file holding a bearer token sent to the status feed receiver"),
    {NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL}};

const xdcr_config_spec_t cons_config_spec = {
    .program = "xdcr-consumer",
    .summary = "apply the change streams of remote origins from Kafka to PostgreSQL",
    .options = cons_options,
    .passthrough_prefix = "kafka.",
    .env_prefix = "XDCR_",
};

char *cons_config_topic_for(const char *template_, const char *origin)
{
    const char *at = strstr(template_, "{origin}");
    size_t len;
    char *s;

    if (at == NULL)
        return strdup(template_);
    len = strlen(template_) - 8 + strlen(origin) + 1;
    s = malloc(len);
    if (s == NULL)
        return NULL;
    snprintf(s, len, "%.*s%s%s", (int)(at - template_), template_, origin, at + 8);
    return s;
}

static int split_origins(cons_config_t *cfg, xdcr_error_t *err)
{
    const char *p = cfg->origins;
    size_t n = 1;

    for (const char *q = p; *q; q++)
        if (*q == ',')
            n++;
    cfg->origin_list = calloc(n, sizeof(char *));
    cfg->topics = calloc(n, sizeof(char *));
    if (cfg->origin_list == NULL || cfg->topics == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        char *o = strndup(p, len);

        if (o == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        cfg->origin_list[cfg->norigins++] = o;
        if (!xdcr_origin_is_valid(o))
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "invalid origin \"%s\" in origins: use 1-63 characters of "
                                  "[A-Za-z0-9._-]",
                                  o);
        if (strcmp(o, cfg->origin) == 0)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "origins must not contain this DC's own origin \"%s\": its "
                                  "changes would be applied to the database they came from",
                                  o);
        for (size_t i = 0; i + 1 < cfg->norigins; i++)
            if (strcmp(cfg->origin_list[i], o) == 0)
                return xdcr_error_set(err, XDCR_ECONFIG, false,
                                      "origin \"%s\" is listed twice in origins", o);
        cfg->topics[cfg->norigins - 1] = cons_config_topic_for(cfg->topic_template, o);
        if (cfg->topics[cfg->norigins - 1] == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        p += len;
        if (*p == ',')
            p++;
    }
    if (cfg->norigins == 0)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "origins is empty");
    return 0;
}

/* conflict.table_policies: schema.table=policy items; sets per_txn_commit. */
static int check_table_policies(cons_config_t *cfg, xdcr_error_t *err)
{
    const char *p = cfg->table_policies;
    bool lww = cfg->conflict_policy == CONS_POLICY_LWW;

    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, ',');
        int len = (int)(e != NULL ? (size_t)(e - p) : strlen(p));
        const char *eq = memchr(p, '=', (size_t)len);
        bool known = false;

        if (eq == NULL || eq == p)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "conflict.table_policies: \"%.*s\" is not table=policy", len, p);
        for (int i = 0; cons_policy_names[i] != NULL; i++)
            if ((int)strlen(cons_policy_names[i]) == len - (int)(eq + 1 - p) &&
                memcmp(eq + 1, cons_policy_names[i], strlen(cons_policy_names[i])) == 0) {
                known = true;
                lww = lww || i == CONS_POLICY_LWW;
            }
        if (!known)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "conflict.table_policies: unknown policy in \"%.*s\" (use "
                                  "last_writer_wins, apply_remote, keep_local or error)",
                                  len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    cfg->per_txn_commit = cfg->mode == CONS_MODE_ACTIVE_ACTIVE && lww;
    return 0;
}

int cons_config_load(cons_config_t *cfg, char *const *envp, int argc, char *const *argv,
                     xdcr_config_cli_t *cli, xdcr_error_t *err)
{
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    rc = xdcr_config_load(&cons_config_spec, cfg, &cfg->kafka, envp, argc, argv, cli, err);
    if (rc != 0 || cli->help || cli->version)
        return rc;
    if (!xdcr_origin_is_valid(cfg->origin))
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "invalid origin \"%s\": use 1-63 characters of [A-Za-z0-9._-]",
                              cfg->origin);
    if (strstr(cfg->topic_template, "{origin}") == NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "topic.template \"%s\" must contain {origin}", cfg->topic_template);
    if (cfg->schema[0] == '\0' || strlen(cfg->schema) > 63)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "schema must be 1-63 characters long");
    if (strchr(cfg->schema, '\'') != NULL || strchr(cfg->schema, '\\') != NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "schema must not contain a quote or a backslash");
    rc = split_origins(cfg, err);
    if (rc != 0)
        return rc;
    if (cfg->group_id == NULL) {
        size_t len = strlen(cfg->origin) + 6;

        cfg->group_id = malloc(len);
        if (cfg->group_id == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        snprintf(cfg->group_id, len, "xdcr-%s", cfg->origin);
    }
    if (cfg->backoff_initial_ms > cfg->backoff_max_ms)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "retry.backoff_initial must not exceed retry.backoff_max");
    rc = check_table_policies(cfg, err);
    if (rc != 0)
        return rc;
    if (xdcr_kv_list_get(&cfg->kafka, "bootstrap.servers") == NULL && cfg->replay_file == NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "missing required configuration key \"kafka.bootstrap.servers\"");
    if (xdcr_kv_list_get(&cfg->kafka, "group.id") != NULL)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "set the consumer group with group.id, not kafka.group.id");
    return 0;
}

void cons_config_free(cons_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->norigins; i++) {
        free(cfg->origin_list[i]);
        free(cfg->topics[i]);
    }
    free(cfg->origin_list);
    free(cfg->topics);
    xdcr_config_free(&cons_config_spec, cfg);
    xdcr_kv_list_free(&cfg->kafka);
}
