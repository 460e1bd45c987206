/*
 * broker_ctl.c - `xdcr broker-ctl`: sends one command to a running dev broker's control socket
 * (see dev_broker.c and docs/dev-broker.md) and prints the reply. Exit 0 on "ok", 1 on "error"
 * or when the broker cannot be reached, 2 on usage errors.
 */
#include "cli.h"
#include "xdcr/error.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_LINE_MAX 4096
#define CTL_REPLY_MAX 16384
#define CTL_DEFAULT_TIMEOUT_MS 10000

static void usage(FILE *out)
{
    fprintf(out, "usage: xdcr broker-ctl [--control PATH] [--timeout-ms MS] COMMAND [ARGS...]\n\n"
                 "Send one control command to a running `xdcr dev-broker` and print its reply.\n"
                 "PATH defaults to $XDCR_BROKER_CONTROL. Exit status: 0 on \"ok\", 1 on \"error\"\n"
                 "or when the broker cannot be reached, 2 on usage errors.\n\n"
                 "commands (see docs/dev-broker.md):\n"
                 "  ping | help | info\n"
                 "  broker-down ID|all            broker-up ID|all\n"
                 "  broker-rtt ID|all MS\n"
                 "  push-errors APIKEY ERR...      push-broker-errors ID APIKEY ERR[:RTT_MS]...\n"
                 "  pending-errors ID APIKEY       clear-errors APIKEY\n"
                 "  leader TOPIC PARTITION BROKERID|none\n"
                 "  create-topic NAME PARTITIONS   topic-error TOPIC ERR\n");
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Build "CMD ARG...\n" into line; arguments must not contain whitespace or control chars. */
static int build_line(int argc, char **argv, char *line, size_t line_len, xdcr_error_t *err)
{
    size_t len = 0;

    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);

        if (n == 0)
            return xdcr_error_set(err, XDCR_EINVAL, false, "argument %d is empty", i + 1);
        for (const char *p = argv[i]; *p != '\0'; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return xdcr_error_set(err, XDCR_EINVAL, false,
                                      "argument \"%s\" contains whitespace or a control character",
                                      argv[i]);
        if (len + n + 2 > line_len)
            return xdcr_error_set(err, XDCR_EINVAL, false, "command too long (max %zu bytes)",
                                  line_len - 1);
        if (i > 0)
            line[len++] = ' ';
        memcpy(line + len, argv[i], n);
        len += n;
    }
    line[len++] = '\n';
    line[len] = '\0';
    return 0;
}

/* Send line and read one reply line into reply (newline stripped), within timeout_ms. */
static int exchange(const char *path, const char *line, int timeout_ms, char *reply,
                    size_t reply_len, xdcr_error_t *err)
{
    struct sockaddr_un addr;
    long long deadline = now_ms() + timeout_ms;
    size_t sent = 0;
    size_t len = strlen(line);
    size_t got = 0;
    int fd;
    int rc = 0;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path))
        return xdcr_error_set(err, XDCR_EINVAL, false, "control socket path \"%s\" is too long",
                              path);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return xdcr_error_set(err, XDCR_EIO, false, "could not create socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        rc = xdcr_error_set(err, XDCR_EIO, true,
                            "could not connect to dev broker control socket \"%s\": %s", path,
                            strerror(errno));
        goto out;
    }
    while (sent < len) {
        struct pollfd p = {fd, POLLOUT, 0};
        long long left = deadline - now_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            rc = xdcr_error_set(err, XDCR_ETIMEOUT, true, "timed out sending to \"%s\"", path);
            goto out;
        }
        n = send(fd, line + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = xdcr_error_set(err, XDCR_EIO, true, "could not send to \"%s\": %s", path,
                                strerror(errno));
            goto out;
        }
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = deadline - now_ms();
        ssize_t n;
        char *nl;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            rc = xdcr_error_set(err, XDCR_ETIMEOUT, true,
                                "timed out after %d ms waiting for the reply from \"%s\"",
                                timeout_ms, path);
            goto out;
        }
        n = recv(fd, reply + got, reply_len - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = xdcr_error_set(err, XDCR_EIO, true, "could not read from \"%s\": %s", path,
                                strerror(errno));
            goto out;
        }
        got += (size_t)n;
        reply[got] = '\0';
        nl = memchr(reply, '\n', got);
        if (nl != NULL) {
            *nl = '\0';
            break;
        }
        if (n == 0) {
            rc = xdcr_error_set(err, XDCR_EIO, true,
                                "dev broker at \"%s\" closed the connection without a reply", path);
            goto out;
        }
        if (got == reply_len - 1) {
            rc = xdcr_error_set(err, XDCR_ERANGE, false, "reply from \"%s\" is too long", path);
            goto out;
        }
    }
out:
    close(fd);
    return rc;
}

int cli_broker_ctl(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"control", required_argument, NULL, 'c'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("XDCR_BROKER_CONTROL");
    long timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    char line[CTL_LINE_MAX];
    char *reply;
    xdcr_error_t err;
    int status;
    int c;

    xdcr_error_clear(&err);
    optind = 1;
    opterr = 0;
    /* "+": stop at the command, so its arguments (e.g. "-1") are never taken as options. */
    while ((c = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't': {
            char *end;
            errno = 0;
            timeout_ms = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || timeout_ms < 1 || timeout_ms > 3600000) {
                fprintf(stderr,
                        "xdcr broker-ctl: invalid --timeout-ms \"%s\": must be "
                        "1..3600000\n",
                        optarg);
                return XDCR_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return XDCR_EXIT_OK;
        default:
            fprintf(stderr, "xdcr broker-ctl: option \"%s\" is unknown or needs a value\n",
                    argv[optind - 1]);
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
    }
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "xdcr broker-ctl: no control socket: use --control PATH or set "
                        "XDCR_BROKER_CONTROL\n");
        return XDCR_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "xdcr broker-ctl: missing command\n");
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    if (build_line(argc - optind, argv + optind, line, sizeof(line), &err) != 0) {
        fprintf(stderr, "xdcr broker-ctl: %s\n", err.message);
        return XDCR_EXIT_USAGE;
    }
    reply = malloc(CTL_REPLY_MAX);
    if (reply == NULL) {
        fprintf(stderr, "xdcr broker-ctl: out of memory\n");
        return XDCR_EXIT_RUNTIME;
    }
    if (exchange(path, line, (int)timeout_ms, reply, CTL_REPLY_MAX, &err) != 0) {
        fprintf(stderr, "xdcr broker-ctl: %s\n", err.message);
        status = XDCR_EXIT_RUNTIME;
    } else if (strcmp(reply, "ok") == 0 || strncmp(reply, "ok ", 3) == 0) {
        printf("%s\n", reply);
        status = XDCR_EXIT_OK;
    } else {
        fprintf(stderr, "%s\n", reply);
        status = XDCR_EXIT_RUNTIME;
    }
    free(reply);
    return status;
}
