/*
 * main.c - xdcr-forwarder entry point: configuration, signals, secrets, the loop, exit status.
 * The only place that exits; the only mutable file-scope state is the stop flag.
 */
#include "forwarder.h"
#include "fwd_config.h"
#include "fwd_http.h"
#include "kafka_producer.h"
#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr/metrics.h"
#include "xdcr/status_push.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef XDCR_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

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
    fwd_t *fwd;
    const fwd_config_t *cfg;
} push_ctx_t;

static char *push_body(void *ctx, size_t *len)
{
    push_ctx_t *pc = ctx;
    fwd_status_t st;

    fwd_get_status(pc->fwd, &st);
    return fwd_status_json(&st, pc->cfg, len);
}

int main(int argc, char **argv)
{
    fwd_config_t cfg;
    xdcr_config_cli_t cli;
    xdcr_error_t err;
    xdcr_log_t lg;
    xdcr_metrics_t *metrics = NULL;
    char *password = NULL;
    fwd_t *fwd = NULL;
    fwd_env_t env;
    fwd_http_t *http = NULL;
    char *token = NULL, *push_token = NULL;
    xdcr_push_t *push = NULL;
    push_ctx_t pc;
    int status = XDCR_EXIT_OK;
    int rc;

    xdcr_error_clear(&err);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "forwarder", NULL);
    memset(&cli, 0, sizeof(cli));
    rc = fwd_config_load(&cfg, environ, argc, argv, &cli, &err);
    if (cli.help_markdown) {
        xdcr_config_print_markdown(&fwd_config_spec, stdout);
        goto out;
    }
    if (cli.help) {
        xdcr_config_print_help(&fwd_config_spec, stdout);
        goto out;
    }
    if (cli.version) {
        printf("xdcr-forwarder %s\n", XDCR_VERSION);
        goto out;
    }
    if (rc == 0)
        rc = fwd_kafka_check_config(&cfg.kafka, &err);
    if (rc == 0 && cfg.pg_password_file != NULL)
        rc = xdcr_read_secret_file(cfg.pg_password_file, &password, &err);
    if (rc == 0 && cfg.http_token_file != NULL)
        rc = xdcr_read_secret_file(cfg.http_token_file, &token, &err);
    if (rc == 0 && cfg.push_token_file != NULL)
        rc = xdcr_read_secret_file(cfg.push_token_file, &push_token, &err);
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
    xdcr_log_add_context(&lg, "origin", cfg.origin);
    install_signals();

    metrics = xdcr_metrics_new();
    if (metrics == NULL) {
        XDCR_LOG(&lg, XDCR_LOG_ERROR, "out of memory");
        status = XDCR_EXIT_RUNTIME;
        goto out;
    }
    memset(&env, 0, sizeof(env));
    env.cfg = &cfg;
    env.lg = &lg;
    env.metrics = metrics;
    env.password = password;
    env.stop = &stop_requested;
    env.crash_point = getenv("XDCR_CRASH_POINT");
    fwd = fwd_new(&env, &err);
    if (fwd == NULL) {
        XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start", "error", err.message);
        status = xdcr_error_exit_status(err.code);
        goto out;
    }
    if (cfg.http_listen != NULL && cfg.http_listen[0] != '\0') {
        http = fwd_http_start(cfg.http_listen, token, fwd, &cfg, metrics, &err);
        if (http == NULL) {
            XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start the HTTP endpoints", "error",
                        err.message);
            status = XDCR_EXIT_USAGE;
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

        pc.fwd = fwd;
        pc.cfg = &cfg;
        push = xdcr_push_start(&pcfg, push_body, &pc, &lg, metrics, &err);
        if (push == NULL) {
            XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "could not start the status feed", "error",
                        err.message);
            status = xdcr_error_exit_status(err.code);
            goto out;
        }
    }
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "starting", "version", XDCR_VERSION, "topic", cfg.topic, "slot",
                cfg.slot_name, "http", cfg.http_listen);
#ifdef XDCR_HAVE_SYSTEMD
    sd_notify(0, "READY=1\nSTATUS=streaming from the slot (or waiting as a standby)");
#endif
    rc = fwd_run(fwd, &err);
#ifdef XDCR_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    if (rc != 0) {
        XDCR_LOG_KV(&lg, XDCR_LOG_ERROR, "stopped on an unrecoverable error", "error", err.message,
                    "code", xdcr_error_name(err.code));
        status = xdcr_error_exit_status(rc);
    }
out:
    xdcr_push_stop(push);
    fwd_http_stop(http);
    fwd_free(fwd);
    if (token != NULL) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (push_token != NULL) {
        memset(push_token, 0, strlen(push_token));
        free(push_token);
    }
    xdcr_metrics_free(metrics);
    if (password != NULL) {
        memset(password, 0, strlen(password));
        free(password);
    }
    fwd_config_free(&cfg);
    return status;
}
