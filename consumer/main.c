/*
 * main.c - xdcr-consumer entry point: configuration, signals, secrets, the loop, exit status.
 * The only place that exits; the only mutable file-scope state is the stop flag.
 */
#include "cons_config.h"
#include "cons_http.h"
#include "cons_status.h"
#include "consumer.h"
#include "kafka_consumer.h"
#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/http_server.h"
#include "xdcr/log.h"
#include "xdcr/metrics.h"
#include "xdcr/status_push.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig; /* configuration is read at start only; SIGHUP must not kill the daemon */
}

static void install_signals(void)
{
    struct sigaction sa;
    sigset_t unblock;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* a supervisor may start us with these blocked (the mask survives exec): take them anyway */
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGTERM);
    sigaddset(&unblock, SIGINT);
    sigaddset(&unblock, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
}

/* The dashboard feed's body callback, on the push thread. */
typedef struct push_ctx {
    cons_status_t *st;
    const char *origin;
} push_ctx_t;

static char *push_body(void *ctx, size_t *len)
{
    push_ctx_t *pc = ctx;
    cons_status_view_t v;
    struct timespec ts;
    char *out = NULL;
    xdcr_error_t err;

    if (cons_status_copy(pc->st, &v) != 0)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (cons_status_json(&v, pc->origin, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, &out,
                         len, &err) != 0)
        out = NULL;
    cons_status_view_free(&v);
    return out;
}

int main(int argc, char **argv)
{
    cons_config_t cfg;
    xdcr_config_cli_t cli;
    xdcr_error_t err;
    xdcr_log_t lg;
    xdcr_metrics_t *metrics = NULL;
    char *password = NULL, *token = NULL;
    cons_status_t *cstatus = NULL;
    cons_http_t *http = NULL;
    xdcr_push_t *push = NULL;
    char *push_token = NULL;
    push_ctx_t pc;
    cons_t *cons = NULL;
    cons_env_t env;
    int status = XDCR_EXIT_OK;
    int rc;

    xdcr_error_clear(&err);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "consumer", NULL);
    memset(&cli, 0, sizeof(cli));
    rc = cons_config_load(&cfg, environ, argc, argv, &cli, &err);
    if (cli.help_markdown) {
        xdcr_config_print_markdown(&cons_config_spec, stdout);
        goto out;
    }
    if (cli.help) {
        xdcr_config_print_help(&cons_config_spec, stdout);
        goto out;
    }
    if (cli.version) {
        printf("xdcr-consumer %s\n", XDCR_VERSION);
        goto out;
    }
    if (rc == 0 && cfg.replay_file == NULL)
        rc = cons_kafka_check_config(&cfg.kafka, cfg.group_id, &err);
    if (rc == 0 && cfg.pg_password_file != NULL)
        rc = xdcr_read_secret_file(cfg.pg_password_file, &password, &err);
    if (rc == 0 && cfg.http_token_file != NULL) {
        rc = xdcr_read_secret_file(cfg.http_token_file, &token, &err);
        if (rc != 0)
            xdcr_error_prefix(&err, "http.token_file");
    }
    if (rc == 0 && cfg.push_token_file != NULL)
        rc = xdcr_read_secret_file(cfg.push_token_file, &push_token, &err);
    if (rc == 0 && cfg.http_listen[0] != '\0') {
        char host[256];
        int port;

        rc = xdcr_http_parse_listen(cfg.http_listen, host, sizeof(host), &port, &err);
    }
    if (rc != 0) {
        XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "invalid configuration", "error", err.message);
        status = XDCR_EXIT_USAGE;
        goto out;
    }
    if (cli.check_config) {
        printf("configuration ok\n");
        goto out;
    }
    lg.level = (xdcr_log_level_t)cfg.log_level;
    xdcr_log_add_context(&lg, "dc", cfg.origin);
    install_signals();

    metrics = xdcr_metrics_new();
    cstatus = cons_status_new(cfg.origin, cfg.origin_list, cfg.norigins);
    if (metrics == NULL || cstatus == NULL) {
        XDCR_LOG(&lg, XDCR_LOG_ERROR, "out of memory");
        status = XDCR_EXIT_RUNTIME;
        goto out;
    }
    memset(&env, 0, sizeof(env));
    env.cfg = &cfg;
    env.lg = &lg;
    env.metrics = metrics;
    env.status = cstatus;
    env.password = password;
    env.stop = &stop_requested;
    env.crash_point = getenv("XDCR_CRASH_POINT");
    cons = cons_new(&env, &err);
    if (cons == NULL) {
        XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start", "error", err.message);
        status = xdcr_error_exit_status(err.code);
        goto out;
    }
    if (cfg.http_listen[0] != '\0') {
        /* after cons_new: the consumer's metric families come first in /metrics */
        http = cons_http_start(cfg.http_listen, token, cstatus, metrics, &err);
        if (http == NULL) {
            XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start the HTTP endpoints", "error",
                        err.message);
            status = xdcr_error_exit_status(err.code);
            goto out;
        }
    }
    if (cfg.push_url != NULL && cfg.push_url[0] != '\0') {
        xdcr_push_config_t pcfg = {.url = cfg.push_url,
                                   .token = push_token,
                                   .interval_ms = cfg.push_interval_ms,
                                   .timeout_ms = cfg.push_timeout_ms,
                                   .retries = (int)cfg.push_retries,
                                   .backoff_ms = 250};

        pc.st = cstatus;
        pc.origin = cfg.origin;
        push = xdcr_push_start(&pcfg, push_body, &pc, &lg, metrics, &err);
        if (push == NULL) {
            XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start the status feed", "error",
                        err.message);
            status = xdcr_error_exit_status(err.code);
            goto out;
        }
    }
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "starting", "version", XDCR_VERSION, "origins", cfg.origins,
                "group", cfg.group_id, "schema", cfg.schema, "http",
                cfg.http_listen[0] != '\0' ? cfg.http_listen : "off");
    rc = cons_run(cons, &err);
    if (rc == XDCR_EGAP || rc == XDCR_EHALTED || rc == XDCR_ESYSID) {
        /* the halt itself was logged once, with its position, where it happened */
        XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "exiting", "reason", err.message, "code",
                    xdcr_error_name(rc));
        status = xdcr_error_exit_status(rc);
    } else if (rc != 0) {
        XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "stopped on an unrecoverable error", "error", err.message,
                    "code", xdcr_error_name(err.code));
        status = xdcr_error_exit_status(rc);
    }
out:
    /* the HTTP and push threads read status and metrics: they stop first */
    xdcr_push_stop(push);
    cons_http_stop(http);
    cons_free(cons);
    cons_status_free(cstatus);
    xdcr_metrics_free(metrics);
    if (token != NULL) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (push_token != NULL) {
        memset(push_token, 0, strlen(push_token));
        free(push_token);
    }
    if (password != NULL) {
        memset(password, 0, strlen(password));
        free(password);
    }
    cons_config_free(&cfg);
    return status;
}
