/*
 * dev_broker.c - `xdcr dev-broker`: runs librdkafka's mock cluster (rdkafka_mock.h) as the
 * dev/test Kafka broker, writes the bootstrap file, and serves the control (fault-injection)
 * protocol on a unix socket; the commands themselves are in dev_broker_commands.c.
 * DEV/TEST ONLY: in memory, loopback, no TLS/SASL. See docs/dev-broker.md.
 */
#include "dev_broker.h"

#include "cli.h"
#include "xdcr/error.h"
#include "xdcr/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define SEND_TIMEOUT_MS 2000

typedef struct control_client {
    int fd; /* -1 when the slot is free */
    size_t len;
    char buf[CLI_BROKER_LINE_MAX];
} control_client_t;

typedef struct dev_broker {
    xdcr_log_t log;
    rd_kafka_t *rk; /* hosts the mock cluster; never produces */
    cli_broker_t br;
    const char *control_path;   /* NULL: no control channel */
    const char *bootstrap_path; /* NULL: no bootstrap file */
    bool control_bound;         /* we created control_path and must unlink it */
    bool bootstrap_written;     /* we created bootstrap_path and must unlink it */
    int listen_fd;
    int signal_fd;
    control_client_t clients[MAX_CLIENTS];
} dev_broker_t;

typedef struct dev_broker_opts {
    int broker_cnt;
    const char *bootstrap_path;
    const char *control_path;
    const char *debug;
    const char *log_level;
    char **topic_specs; /* argv strings, NAME:PARTITIONS */
    size_t topic_spec_cnt;
} dev_broker_opts_t;

static int control_listen(dev_broker_t *db, xdcr_error_t *err)
{
    struct sockaddr_un addr;
    struct stat st;
    mode_t old_umask;
    int fd;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(db->control_path) >= sizeof(addr.sun_path))
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "control socket path \"%s\" is too long (max %zu bytes)",
                              db->control_path, sizeof(addr.sun_path) - 1);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", db->control_path);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return xdcr_error_set(err, XDCR_EIO, false, "could not create control socket: %s",
                              strerror(errno));
    if (lstat(db->control_path, &st) == 0) {
        /* Replace a stale socket left by a killed broker, never a live one or another file. */
        int probe;

        if (!S_ISSOCK(st.st_mode)) {
            close(fd);
            return xdcr_error_set(err, XDCR_EEXISTS, false,
                                  "control socket path \"%s\" exists and is not a socket",
                                  db->control_path);
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            close(probe);
            close(fd);
            return xdcr_error_set(err, XDCR_EEXISTS, false,
                                  "control socket \"%s\" is in use by a running broker",
                                  db->control_path);
        }
        if (probe >= 0)
            close(probe);
        if (unlink(db->control_path) != 0 && errno != ENOENT) {
            close(fd);
            return xdcr_error_set(err, XDCR_EIO, false,
                                  "could not remove stale control socket \"%s\": %s",
                                  db->control_path, strerror(errno));
        }
    }
    old_umask = umask(0077);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int e = errno;
        umask(old_umask);
        close(fd);
        return xdcr_error_set(err, XDCR_EIO, false, "could not bind control socket \"%s\": %s",
                              db->control_path, strerror(e));
    }
    umask(old_umask);
    db->control_bound = true;
    if (listen(fd, MAX_CLIENTS) != 0) {
        int e = errno;
        close(fd);
        return xdcr_error_set(err, XDCR_EIO, false, "could not listen on control socket \"%s\": %s",
                              db->control_path, strerror(e));
    }
    db->listen_fd = fd;
    return 0;
}

static void client_close(control_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* Send all of s, waiting at most SEND_TIMEOUT_MS for a slow reader. */
static bool send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, SEND_TIMEOUT_MS) <= 0)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void control_accept(dev_broker_t *db)
{
    static const char busy[] = "error too many control clients\n";
    control_client_t *slot = NULL;
    int fd;

    fd = accept4(db->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            XDCR_LOG(&db->log, XDCR_LOG_WARN, "could not accept control connection: %s",
                     strerror(errno));
        return;
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (db->clients[i].fd < 0) {
            slot = &db->clients[i];
            break;
        }
    }
    if (slot == NULL) {
        (void)send_all(fd, busy, sizeof(busy) - 1);
        close(fd);
        return;
    }
    slot->fd = fd;
    slot->len = 0;
}

/* The protocol is printable ASCII; tabs separate words like spaces. */
static bool is_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Handle one line; returns false when the client must be closed. */
static bool control_line(dev_broker_t *db, control_client_t *c, char *line, size_t len)
{
    char reply[CLI_BROKER_REPLY_MAX + 64];
    char logged[256];
    char logged_reply[512];
    bool quit;

    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (!is_printable(line, len)) {
        snprintf(reply, sizeof(reply),
                 "error command contains a non-printable or non-ASCII byte\n");
        XDCR_LOG(&db->log, XDCR_LOG_WARN, "control command with non-printable bytes rejected");
        quit = false;
    } else {
        snprintf(logged, sizeof(logged), "%s", line);
        quit = cli_broker_execute(&db->br, line, reply, sizeof(reply));
        snprintf(logged_reply, sizeof(logged_reply), "%.*s", (int)strcspn(reply, "\n"), reply);
        XDCR_LOG_KV(&db->log, strncmp(reply, "ok", 2) == 0 ? XDCR_LOG_INFO : XDCR_LOG_WARN,
                    "control command", "command", logged, "reply", logged_reply);
    }
    if (!send_all(c->fd, reply, strlen(reply)))
        return false;
    return !quit;
}

static void control_read(dev_broker_t *db, control_client_t *c)
{
    static const char too_long[] = "error command line too long\n";
    ssize_t n;
    bool eof = false;
    size_t start = 0;

    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        client_close(c);
        return;
    }
    if (n == 0)
        eof = true;
    c->len += (size_t)n;
    for (;;) {
        char *nl = memchr(c->buf + start, '\n', c->len - start);
        size_t line_len;

        if (nl == NULL)
            break;
        line_len = (size_t)(nl - (c->buf + start));
        *nl = '\0';
        if (!control_line(db, c, c->buf + start, line_len)) {
            client_close(c);
            return;
        }
        start += line_len + 1;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
    if (eof) {
        /* A last command without a newline still gets its reply. */
        if (c->len > 0 && c->len < sizeof(c->buf)) {
            c->buf[c->len] = '\0';
            (void)control_line(db, c, c->buf, c->len);
        }
        client_close(c);
        return;
    }
    if (c->len == sizeof(c->buf)) {
        (void)send_all(c->fd, too_long, sizeof(too_long) - 1);
        XDCR_LOG(&db->log, XDCR_LOG_WARN, "control command longer than %d bytes rejected",
                 CLI_BROKER_LINE_MAX - 1);
        client_close(c);
    }
}

static int write_bootstrap_file(dev_broker_t *db, xdcr_error_t *err)
{
    char tmp[PATH_MAX];
    FILE *f;
    int fd;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", db->bootstrap_path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return xdcr_error_set(err, XDCR_EINVAL, false, "bootstrap file path \"%s\" is too long",
                              db->bootstrap_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return xdcr_error_set(err, XDCR_EIO, false, "could not create \"%s\": %s", tmp,
                              strerror(errno));
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return xdcr_error_set(err, XDCR_EIO, false, "could not open \"%s\": %s", tmp,
                              strerror(errno));
    }
    if (fprintf(f, "%s\n", db->br.bootstraps) < 0 || fflush(f) != 0 || fsync(fd) != 0) {
        int e = errno;
        fclose(f);
        unlink(tmp);
        return xdcr_error_set(err, XDCR_EIO, false, "could not write \"%s\": %s", tmp, strerror(e));
    }
    if (fclose(f) != 0) {
        int e = errno;
        unlink(tmp);
        return xdcr_error_set(err, XDCR_EIO, false, "could not write \"%s\": %s", tmp, strerror(e));
    }
    if (rename(tmp, db->bootstrap_path) != 0) {
        int e = errno;
        unlink(tmp);
        return xdcr_error_set(err, XDCR_EIO, false, "could not rename \"%s\" to \"%s\": %s", tmp,
                              db->bootstrap_path, strerror(e));
    }
    db->bootstrap_written = true;
    return 0;
}

static void rdkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const dev_broker_t *db = rd_kafka_opaque(rk);
    xdcr_log_level_t l = level <= 3   ? XDCR_LOG_ERROR
                         : level == 4 ? XDCR_LOG_WARN
                         : level <= 6 ? XDCR_LOG_INFO
                                      : XDCR_LOG_DEBUG;

    /* The hosting handle has no bootstrap.servers on purpose: not worth a warning. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers") != NULL)
        l = XDCR_LOG_DEBUG;
    if (db != NULL && l <= db->log.level)
        xdcr_log_kv(&db->log, l, "librdkafka", "facility", fac, "detail", buf, (const char *)NULL);
}

static int cluster_start(dev_broker_t *db, const dev_broker_opts_t *opts, xdcr_error_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (conf == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    rd_kafka_conf_set_opaque(conf, db);
    rd_kafka_conf_set_log_cb(conf, rdkafka_log_cb);
    if (rd_kafka_conf_set(conf, "client.id", "xdcr-dev-broker", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        (opts->debug != NULL && rd_kafka_conf_set(conf, "debug", opts->debug, errstr,
                                                  sizeof(errstr)) != RD_KAFKA_CONF_OK)) {
        rd_kafka_conf_destroy(conf);
        return xdcr_error_set(err, XDCR_ECONFIG, false, "invalid librdkafka setting: %s", errstr);
    }
    /* rd_kafka_new() owns conf on success only. */
    db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (db->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return xdcr_error_set(err, XDCR_EKAFKA, false, "could not create librdkafka handle: %s",
                              errstr);
    }
    db->br.mcluster = rd_kafka_mock_cluster_new(db->rk, db->br.broker_cnt);
    if (db->br.mcluster == NULL)
        return xdcr_error_set(err, XDCR_EKAFKA, false,
                              "could not create the mock cluster with %d brokers",
                              db->br.broker_cnt);
    db->br.bootstraps = rd_kafka_mock_cluster_bootstraps(db->br.mcluster);
    for (size_t i = 0; i < opts->topic_spec_cnt; i++) {
        char name[CLI_BROKER_MAX_TOPIC_NAME + 1];
        const char *spec = opts->topic_specs[i];
        const char *colon = strrchr(spec, ':');
        long partitions;

        /* Specs were validated in parse_options(). */
        snprintf(name, sizeof(name), "%.*s", (int)(colon - spec), spec);
        partitions = strtol(colon + 1, NULL, 10);
        if (cli_broker_create_topic(&db->br, name, (int)partitions, err) != 0)
            return err->code;
    }
    return 0;
}

static void dev_broker_fini(dev_broker_t *db)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        client_close(&db->clients[i]);
    if (db->listen_fd >= 0)
        close(db->listen_fd);
    db->listen_fd = -1;
    if (db->control_bound)
        unlink(db->control_path);
    db->control_bound = false;
    if (db->bootstrap_written)
        unlink(db->bootstrap_path);
    db->bootstrap_written = false;
    if (db->br.mcluster != NULL)
        rd_kafka_mock_cluster_destroy(db->br.mcluster);
    db->br.mcluster = NULL;
    if (db->rk != NULL) {
        rd_kafka_destroy(db->rk);
        rd_kafka_wait_destroyed(5000);
    }
    db->rk = NULL;
    cli_broker_fini(&db->br);
    if (db->signal_fd >= 0)
        close(db->signal_fd);
    db->signal_fd = -1;
}

/* Serve control clients until a signal arrives. Returns 0 or a negative code. */
static int serve(dev_broker_t *db, xdcr_error_t *err)
{
    for (;;) {
        struct pollfd fds[2 + MAX_CLIENTS];
        int client_of[2 + MAX_CLIENTS];
        nfds_t nfds = 0;
        int r;

        fds[nfds].fd = db->signal_fd;
        fds[nfds].events = POLLIN;
        client_of[nfds++] = -1;
        if (db->listen_fd >= 0) {
            fds[nfds].fd = db->listen_fd;
            fds[nfds].events = POLLIN;
            client_of[nfds++] = -1;
        }
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (db->clients[i].fd >= 0) {
                fds[nfds].fd = db->clients[i].fd;
                fds[nfds].events = POLLIN;
                client_of[nfds++] = i;
            }
        }
        r = poll(fds, nfds, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return xdcr_error_set(err, XDCR_EIO, false, "poll failed: %s", strerror(errno));
        }
        if (fds[0].revents != 0) {
            struct signalfd_siginfo si;
            ssize_t n = read(db->signal_fd, &si, sizeof(si));
            if (n == (ssize_t)sizeof(si)) {
                XDCR_LOG(&db->log, XDCR_LOG_INFO, "received %s, shutting down",
                         strsignal((int)si.ssi_signo));
                return 0;
            }
        }
        for (nfds_t i = 1; i < nfds; i++) {
            if (fds[i].revents == 0)
                continue;
            if (client_of[i] < 0)
                control_accept(db);
            else if (db->clients[client_of[i]].fd == fds[i].fd)
                control_read(db, &db->clients[client_of[i]]);
        }
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr dev-broker [options]\n\n"
            "Run librdkafka's mock Kafka cluster as a dev/test broker: real Kafka protocol on\n"
            "127.0.0.1 (random ports), in memory, no TLS/SASL, about 5 MiB kept per partition.\n"
            "DEV/TEST ONLY. Serves until SIGTERM or SIGINT.\n\n"
            "options:\n"
            "  --brokers N              number of brokers, ids 1..N (default 3, max %d)\n"
            "  --topic NAME:PARTITIONS  create a topic (repeatable); replication factor is\n"
            "                           min(N, 3)\n"
            "  --bootstrap-file PATH    write the bootstrap server list to PATH (atomically)\n"
            "  --control PATH           serve the control protocol on unix socket PATH\n"
            "  --log-level LEVEL        error|warn|info|debug (default info)\n"
            "  --debug CONTEXTS         librdkafka debug contexts, e.g. mock,protocol\n"
            "  --help                   show this help\n\n"
            "Prints `bootstrap=<list>` on stdout when ready. Control commands: see\n"
            "docs/dev-broker.md or `xdcr broker-ctl --control PATH help`.\n",
            CLI_BROKER_MAX_BROKERS);
}

/* Returns 0, or XDCR_EXIT_USAGE with a message on stderr, or -1 after --help. */
static int parse_options(int argc, char **argv, dev_broker_opts_t *opts)
{
    static const struct option long_opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"control", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"debug", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    xdcr_error_t err;
    xdcr_log_level_t level;
    long v;
    int c;

    opts->broker_cnt = 3;
    opts->topic_specs = calloc((size_t)argc + 1, sizeof(char *));
    if (opts->topic_specs == NULL) {
        fprintf(stderr, "xdcr dev-broker: out of memory\n");
        return XDCR_EXIT_RUNTIME;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (cli_broker_parse_long(optarg, 1, CLI_BROKER_MAX_BROKERS, &v, "--brokers", &err) !=
                0)
                goto bad;
            opts->broker_cnt = (int)v;
            break;
        case 't': {
            const char *colon = strrchr(optarg, ':');
            char name[CLI_BROKER_MAX_TOPIC_NAME + 2];

            if (colon == NULL || colon == optarg) {
                xdcr_error_set(&err, XDCR_EINVAL, false,
                               "invalid --topic \"%s\": expected NAME:PARTITIONS", optarg);
                goto bad;
            }
            snprintf(name, sizeof(name), "%.*s", (int)(colon - optarg), optarg);
            if ((size_t)(colon - optarg) > CLI_BROKER_MAX_TOPIC_NAME ||
                !cli_broker_is_valid_topic_name(name)) {
                xdcr_error_set(&err, XDCR_EINVAL, false,
                               "invalid --topic \"%s\": topic names are 1..%d of [a-zA-Z0-9._-]",
                               optarg, CLI_BROKER_MAX_TOPIC_NAME);
                goto bad;
            }
            if (cli_broker_parse_long(colon + 1, 1, CLI_BROKER_MAX_PARTITIONS, &v,
                                      "--topic partition count", &err) != 0)
                goto bad;
            for (size_t i = 0; i < opts->topic_spec_cnt; i++) {
                const char *o = opts->topic_specs[i];
                if (strrchr(o, ':') - o == colon - optarg &&
                    strncmp(o, optarg, (size_t)(colon - optarg)) == 0) {
                    xdcr_error_set(&err, XDCR_EINVAL, false, "topic \"%s\" given twice", name);
                    goto bad;
                }
            }
            opts->topic_specs[opts->topic_spec_cnt++] = optarg;
            break;
        }
        case 'f':
            opts->bootstrap_path = optarg;
            break;
        case 'c':
            opts->control_path = optarg;
            break;
        case 'l':
            if (xdcr_log_level_parse(optarg, &level) != 0) {
                xdcr_error_set(&err, XDCR_EINVAL, false,
                               "invalid --log-level \"%s\": use error, warn, info or debug",
                               optarg);
                goto bad;
            }
            opts->log_level = optarg;
            break;
        case 'd':
            opts->debug = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            if (optopt != 0)
                xdcr_error_set(&err, XDCR_EINVAL, false, "option -%c is unknown or needs a value",
                               optopt);
            else
                xdcr_error_set(&err, XDCR_EINVAL, false,
                               "option \"%s\" is unknown or needs a value", argv[optind - 1]);
            goto bad;
        }
    }
    if (optind < argc) {
        xdcr_error_set(&err, XDCR_EINVAL, false, "unexpected argument \"%s\"", argv[optind]);
        goto bad;
    }
    return 0;
bad:
    fprintf(stderr, "xdcr dev-broker: %s\n(see xdcr dev-broker --help)\n", err.message);
    return XDCR_EXIT_USAGE;
}

int cli_dev_broker(int argc, char **argv)
{
    dev_broker_opts_t opts;
    dev_broker_t db;
    xdcr_error_t err;
    xdcr_log_level_t level = XDCR_LOG_INFO;
    sigset_t mask;
    sigset_t old_mask;
    struct sigaction ign;
    struct sigaction old_pipe;
    int status = XDCR_EXIT_RUNTIME;
    int r;

    memset(&opts, 0, sizeof(opts));
    r = parse_options(argc, argv, &opts);
    if (r != 0) {
        free(opts.topic_specs);
        return r < 0 ? XDCR_EXIT_OK : r;
    }

    memset(&db, 0, sizeof(db));
    xdcr_error_clear(&err);
    db.br.broker_cnt = opts.broker_cnt;
    db.br.replication_factor = opts.broker_cnt < 3 ? opts.broker_cnt : 3;
    db.control_path = opts.control_path;
    db.bootstrap_path = opts.bootstrap_path;
    db.listen_fd = -1;
    db.signal_fd = -1;
    for (int i = 0; i < MAX_CLIENTS; i++)
        db.clients[i].fd = -1;
    if (opts.log_level != NULL)
        (void)xdcr_log_level_parse(opts.log_level, &level);
    else if (opts.debug != NULL)
        level = XDCR_LOG_DEBUG; /* --debug output is logged at debug level */
    xdcr_log_init(&db.log, level, "dev-broker", NULL);

    /*
     * Block the stop signals before librdkafka starts its threads (they inherit the mask), and
     * receive them through a signalfd in the serve loop: no handler, no global flag.
     */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old_mask);
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
    db.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (db.signal_fd < 0) {
        xdcr_error_set(&err, XDCR_EIO, false, "could not create signalfd: %s", strerror(errno));
        goto out;
    }

    if (cluster_start(&db, &opts, &err) != 0)
        goto out;
    if (db.control_path != NULL && control_listen(&db, &err) != 0)
        goto out;
    if (db.bootstrap_path != NULL && write_bootstrap_file(&db, &err) != 0)
        goto out;

    printf("bootstrap=%s\n", db.br.bootstraps);
    fflush(stdout);
    XDCR_LOG_KV(&db.log, XDCR_LOG_INFO, "dev broker ready", "bootstrap", db.br.bootstraps,
                "control", db.control_path != NULL ? db.control_path : "", "bootstrap_file",
                db.bootstrap_path != NULL ? db.bootstrap_path : "");

    if (serve(&db, &err) == 0)
        status = XDCR_EXIT_OK;
out:
    if (err.code != 0)
        XDCR_LOG(&db.log, XDCR_LOG_ERROR, "%s", err.message);
    dev_broker_fini(&db);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    free(opts.topic_specs);
    if (status == XDCR_EXIT_OK)
        XDCR_LOG(&db.log, XDCR_LOG_INFO, "dev broker stopped");
    return status;
}
