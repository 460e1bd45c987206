/*
 * config.h - the configuration loader: one option table per binary fills one config struct from
 * defaults, a `key = value` file, environment variables and command-line flags (in that order of
 * precedence, later wins), and prints --help and the docs from the same table.
 * Pass-through prefixes (`kafka.`) are collected unchanged for the adapter that owns the library.
 * Pure apart from reading the config file and secret files named in it.
 */
#ifndef XDCR_CONFIG_H
#define XDCR_CONFIG_H

#include "xdcr/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum xdcr_opt_type {
    XDCR_OPT_STRING,   /* char * (malloc'd, owned by the config struct) */
    XDCR_OPT_INT,      /* int64_t, bounds min..max */
    XDCR_OPT_BOOL,     /* bool: true/false/on/off/yes/no/1/0 */
    XDCR_OPT_DURATION, /* int64_t milliseconds; accepts "250ms", "5s", "2m", "1h", bare = ms */
    XDCR_OPT_SIZE,     /* int64_t bytes; accepts "512", "64kB", "16MB", "1GB" (powers of 1024) */
    XDCR_OPT_ENUM,     /* int: index into enum_values */
    XDCR_OPT_LIST      /* char * holding a validated comma separated list (spaces trimmed) */
} xdcr_opt_type_t;

enum {
    XDCR_OPT_F_REQUIRED = 1u << 0, /* must be set by some source */
    XDCR_OPT_F_SECRET = 1u << 1,   /* never printed (help shows no default, dumps redact) */
    XDCR_OPT_F_FILE = 1u << 2      /* STRING naming a file that must exist and be readable */
};

typedef struct xdcr_option {
    const char *name; /* "pg.conninfo"; lower case, dots */
    xdcr_opt_type_t type;
    const char *default_value;      /* as text, parsed like any other value; NULL = unset */
    int64_t min, max;               /* INT/DURATION/SIZE bounds (inclusive); ignored if min>max */
    size_t offset;                  /* offsetof(config struct, field) */
    unsigned flags;                 /* XDCR_OPT_F_* */
    const char *const *enum_values; /* ENUM: NULL-terminated list of accepted names */
    const char *help;               /* one line, lower case */
} xdcr_option_t;

/* One pass-through key/value, e.g. {"bootstrap.servers", "127.0.0.1:9092", "file:3"}. */
typedef struct xdcr_kv {
    char *key; /* with the prefix removed: "kafka.acks" -> "acks" */
    char *value;
    char *source; /* where it came from, for error messages: "file /etc/x.conf:12", "env", "flag" */
} xdcr_kv_t;

typedef struct xdcr_kv_list {
    xdcr_kv_t *items;
    size_t count, cap;
} xdcr_kv_list_t;

typedef struct xdcr_config_spec {
    const char *program;            /* "xdcr-forwarder", for --help */
    const char *summary;            /* one line */
    const xdcr_option_t *options;   /* terminated by an entry with name == NULL */
    const char *passthrough_prefix; /* "kafka." or NULL */
    const char *env_prefix;         /* "XDCR_" */
} xdcr_config_spec_t;

/* What the command line asked for besides options. */
typedef struct xdcr_config_cli {
    bool help;               /* --help / -h */
    bool help_markdown;      /* --help=markdown: the option reference as Markdown (docs/) */
    bool version;            /* --version */
    bool check_config;       /* --check-config */
    const char *config_path; /* -c FILE / --config FILE / --config=FILE (points into argv) */
} xdcr_config_cli_t;

/*
 * Fill cfg (a zeroed struct of the spec's type) and passthrough:
 * 1. defaults from the table; 2. the file named by --config (or XDCR_CONFIG env);
 * 3. environment: option "pg.conninfo" is read from <env_prefix>PG_CONNINFO (dots and dashes to
 *    underscores, upper case); pass-through keys from <env_prefix>KAFKA_<KEY> with underscores
 *    mapped to dots (XDCR_KAFKA_SASL_PASSWORD -> kafka.sasl.password);
 * 4. flags: --name=value or --name value, for options and pass-through keys alike.
 * envp is a NULL-terminated environment (use `environ`); argv[0] is skipped.
 * Unknown keys, bad values, values out of bounds and missing required options are errors naming
 * the key and its source. Secrets never appear in error messages.
 * On error cfg may be partly filled; call xdcr_config_free() in any case.
 */
int xdcr_config_load(const xdcr_config_spec_t *spec, void *cfg, xdcr_kv_list_t *passthrough,
                     char *const *envp, int argc, char *const *argv, xdcr_config_cli_t *cli,
                     xdcr_error_t *err);

/* Set one option (or pass-through key) from text, as if read from `source`. */
int xdcr_config_set(const xdcr_config_spec_t *spec, void *cfg, xdcr_kv_list_t *passthrough,
                    const char *key, const char *value, const char *source, xdcr_error_t *err);

/* Free the strings the loader allocated in cfg (does not free cfg itself). NULL-safe. */
void xdcr_config_free(const xdcr_config_spec_t *spec, void *cfg);

/* Print usage and every option with type, default, env var and help. */
void xdcr_config_print_help(const xdcr_config_spec_t *spec, FILE *out);

/* Print the option table as a Markdown reference (docs/configuration.md is generated from it). */
void xdcr_config_print_markdown(const xdcr_config_spec_t *spec, FILE *out);

/*
 * Apply every pass-through pair with setter(ctx, key, value, errbuf, errlen); a non-zero return is
 * reported as `invalid kafka.<key> (<source>): <errbuf>` (value redacted if secret).
 */
typedef int (*xdcr_kv_setter_fn)(void *ctx, const char *key, const char *value, char *errbuf,
                                 size_t errlen);
int xdcr_kv_list_apply(const xdcr_kv_list_t *list, const char *prefix, xdcr_kv_setter_fn setter,
                       void *ctx, xdcr_error_t *err);

/* Add or replace a pair (later sources win). Copies its arguments. */
int xdcr_kv_list_set(xdcr_kv_list_t *list, const char *key, const char *value, const char *source,
                     xdcr_error_t *err);
const char *xdcr_kv_list_get(const xdcr_kv_list_t *list, const char *key);
void xdcr_kv_list_free(xdcr_kv_list_t *list);

/* Parse helpers shared with the CLI. */
int xdcr_parse_duration_ms(const char *s, int64_t *out_ms, xdcr_error_t *err);
int xdcr_parse_size_bytes(const char *s, int64_t *out_bytes, xdcr_error_t *err);
int xdcr_parse_bool(const char *s, bool *out, xdcr_error_t *err);
int xdcr_parse_int64(const char *s, int64_t *out, xdcr_error_t *err);

/*
 * Read a secret file (e.g. a password or bearer token) into a malloc'd string with the trailing
 * newline removed. Errors name the file, never its content.
 */
int xdcr_read_secret_file(const char *path, char **out, xdcr_error_t *err);

#endif
