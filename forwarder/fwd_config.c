/*
 * fwd_config.c - the forwarder's option table and the validation of derived settings.
 * The table is the single source of --help and docs/configuration.md.
 */
#include "fwd_config.h"

#include "xdcr/event.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

#define OPT(n, t, d, lo, hi, field, fl, en, h)                                                     \
    {                                                                                              \
        n, t, d, lo, hi, offsetof(fwd_config_t, field), fl, en, h                                  \
    }

static const xdcr_option_t fwd_options[] = {
    OPT("origin", XDCR_OPT_STRING, NULL, 0, -1, origin, XDCR_OPT_F_REQUIRED, NULL,
        "stable name of this source stream, unique in the deployment ([A-Za-z0-9._-], 1-63)"),
    OPT("pg.conninfo", XDCR_OPT_STRING, NULL, 0, -1, pg_conninfo, XDCR_OPT_F_REQUIRED, NULL,
        "libpq connection string of the source database (TLS via sslmode/sslrootcert)"),
    OPT("pg.password_file", XDCR_OPT_STRING, NULL, 0, -1, pg_password_file, XDCR_OPT_F_FILE, NULL,
        "file holding the PostgreSQL password (e.g. a mounted Kubernetes Secret)"),
    OPT("slot.name", XDCR_OPT_STRING, NULL, 0, -1, slot_name, 0, NULL,
        "logical replication slot (default xdcr_<origin>)"),
    OPT("slot.create", XDCR_OPT_BOOL, "false", 0, -1, slot_create, 0, NULL,
        "create the slot when it does not exist; a lost slot is never recreated silently"),
    OPT("publication.name", XDCR_OPT_STRING, NULL, 0, -1, publication, 0, NULL,
        "publication to stream (default xdcr_<origin>)"),
    OPT("publication.create", XDCR_OPT_BOOL, "false", 0, -1, publication_create, 0, NULL,
        "create the publication when it does not exist"),
    OPT("publication.tables", XDCR_OPT_LIST, "", 0, -1, publication_tables, 0, NULL,
        "tables for a created publication (schema.table, comma separated); empty = all tables"),
    OPT("topic", XDCR_OPT_STRING, NULL, 0, -1, topic, 0, NULL,
        "Kafka topic of this origin (default xdcr.<origin>.changes)"),
    OPT("message.max_bytes", XDCR_OPT_SIZE, "512kB", 4096, 64 * 1024 * 1024, message_max_bytes, 0,
        NULL, "largest payload of one Kafka message; larger transactions are split"),
    OPT("heartbeat.interval", XDCR_OPT_DURATION, "1s", 50, 3600000, heartbeat_ms, 0, NULL,
        "interval of progress marks published in order with the data"),
    OPT("status.interval", XDCR_OPT_DURATION, "1s", 50, 30000, status_ms, 0, NULL,
        "interval of standby status updates to PostgreSQL (keep below wal_sender_timeout)"),
    OPT("forward_origins", XDCR_OPT_BOOL, "false", 0, -1, forward_origins, 0, NULL,
        "also forward transactions applied under a replication origin (breaks loop prevention)"),
    OPT("exclude.schemas", XDCR_OPT_LIST, "xdcr", 0, -1, exclude_schemas, 0, NULL,
        "schemas whose changes are never forwarded (the consumer's bookkeeping schema)"),
    OPT("inflight.max_messages", XDCR_OPT_INT, "20000", 1, 10000000, inflight_max_messages, 0, NULL,
        "Kafka messages in flight before the forwarder stops reading WAL"),
    OPT("inflight.max_bytes", XDCR_OPT_SIZE, "64MB", 65536, (int64_t)1 << 40, inflight_max_bytes, 0,
        NULL, "payload bytes in flight before the forwarder stops reading WAL"),
    OPT("drain.timeout", XDCR_OPT_DURATION, "10s", 0, 600000, drain_timeout_ms, 0, NULL,
        "on SIGTERM, how long to wait for Kafka deliveries before exiting"),
    OPT("retry.backoff_initial", XDCR_OPT_DURATION, "250ms", 10, 60000, backoff_initial_ms, 0, NULL,
        "first delay before reconnecting after an error"),
    OPT("retry.backoff_max", XDCR_OPT_DURATION, "30s", 100, 600000, backoff_max_ms, 0, NULL,
        "largest delay between reconnect attempts"),
    OPT("log.level", XDCR_OPT_ENUM, "info", 0, -1, log_level, 0, log_levels,
        "error, warn, info or debug"),
    OPT("http.listen", XDCR_OPT_STRING, "127.0.0.1:9187", 0, -1, http_listen, 0, NULL,
        "address of /metrics, /livez, /readyz, /status; empty disables"),
    OPT("http.token_file", XDCR_OPT_STRING, NULL, 0, -1, http_token_file, XDCR_OPT_F_FILE, NULL,
        "file holding a bearer token required by the HTTP endpoints"),
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

const xdcr_config_spec_t fwd_config_spec = {
    .program = "xdcr-forwarder",
    .summary = "capture PostgreSQL writes by logical decoding and publish them to Kafka",
    .options = fwd_options,
    .passthrough_prefix = "kafka.",
    .env_prefix = "XDCR_",
};

/*
 * prefix + origin + suffix; with ident, dots and dashes become underscores and letters lower
 * case ("east-1.b" -> "xdcr_east_1_b"): slot and publication names are plain identifiers.
 */
static char *derive_name(const char *prefix, const char *origin, const char *suffix, bool ident)
{
    size_t len = strlen(prefix) + strlen(origin) + strlen(suffix) + 1;
    char *s = malloc(len);

    if (s == NULL)
        return NULL;
    snprintf(s, len, "%s%s%s", prefix, origin, suffix);
    if (!ident)
        return s;
    for (char *p = s; *p; p++) {
        if (*p == '.' || *p == '-')
            *p = '_';
        else if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return s;
}

int fwd_config_load(fwd_config_t *cfg, char *const *envp, int argc, char *const *argv,
                    xdcr_config_cli_t *cli, xdcr_error_t *err)
{
    const char *bootstrap;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    rc = xdcr_config_load(&fwd_config_spec, cfg, &cfg->kafka, envp, argc, argv, cli, err);
    if (rc != 0 || cli->help || cli->version)
        return rc;
    if (!xdcr_origin_is_valid(cfg->origin))
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "invalid origin \"%s\": use 1-63 characters of [A-Za-z0-9._-]",
                              cfg->origin);
    if (cfg->slot_name == NULL &&
        (cfg->slot_name = derive_name("xdcr_", cfg->origin, "", true)) == NULL)
        goto nomem;
    if (cfg->publication == NULL &&
        (cfg->publication = derive_name("xdcr_", cfg->origin, "", true)) == NULL)
        goto nomem;
    if (cfg->topic == NULL &&
        (cfg->topic = derive_name("xdcr.", cfg->origin, ".changes", false)) == NULL)
        goto nomem;
    if (cfg->backoff_initial_ms > cfg->backoff_max_ms)
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "retry.backoff_initial must not exceed retry.backoff_max");
    bootstrap = xdcr_kv_list_get(&cfg->kafka, "bootstrap.servers");
    if (bootstrap == NULL || bootstrap[0] == '\0') /* empty: a producer that never delivers */
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "missing required configuration key \"kafka.bootstrap.servers\"");
    return 0;
nomem:
    return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
}

void fwd_config_free(fwd_config_t *cfg)
{
    if (cfg == NULL)
        return;
    xdcr_config_free(&fwd_config_spec, cfg);
    xdcr_kv_list_free(&cfg->kafka);
}
