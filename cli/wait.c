/*
 * wait.c - `xdcr wait`: read-your-writes across datacenters. Exits 0 as soon as the target
 * database has applied the given seq of an origin (or anything later), 1 on timeout. Woken by
 * the consumer's NOTIFY on channel xdcr_applied after each commit, not by polling.
 */
#include "cli.h"
#include "xdcr/config.h"
#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_EXIT_APPLIED 0
#define WAIT_EXIT_TIMEOUT 1
#define WAIT_EXIT_ERROR 7 /* could not connect or query */

static void usage(FILE *out)
{
    fprintf(out, "usage: xdcr wait --target CONNINFO --origin NAME --seq LSN [--timeout 5s]\n"
                 "                 [--schema xdcr]\n"
                 "Wait until the target database has applied seq LSN of origin NAME (or anything\n"
                 "later). Exit status: 0 applied, 1 timed out, 2 usage, 7 could not check.\n"
                 "The seq is what the writer read with pg_current_wal_lsn() after its COMMIT.\n");
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 applied, 0 not yet, -1 error (printed). */
static int check_applied(PGconn *conn, const char *schema, const char *origin, const char *lsn)
{
    char sql[512];
    char *ident = PQescapeIdentifier(conn, schema, strlen(schema));
    const char *params[2] = {origin, lsn};
    PGresult *res;
    int rc;

    if (ident == NULL)
        return -1;
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(max(seq) >= $2::pg_lsn, false) FROM %s.positions WHERE origin = $1",
             ident);
    PQfreemem(ident);
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "xdcr wait: could not read the applied position: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    rc = PQgetvalue(res, 0, 0)[0] == 't' ? 1 : 0;
    PQclear(res);
    return rc;
}

int cli_wait(int argc, char **argv)
{
    static const struct option longopts[] = {{"target", required_argument, NULL, 't'},
                                             {"origin", required_argument, NULL, 'o'},
                                             {"seq", required_argument, NULL, 's'},
                                             {"timeout", required_argument, NULL, 'T'},
                                             {"schema", required_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *target = NULL, *origin = NULL, *seq = NULL, *schema = "xdcr";
    int64_t timeout_ms = 5000;
    xdcr_lsn_t lsn;
    xdcr_error_t err;
    char lsnbuf[XDCR_LSN_STRLEN];
    PGconn *conn = NULL;
    PGresult *res;
    long long deadline;
    int c, status = WAIT_EXIT_ERROR;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            target = optarg;
            break;
        case 'o':
            origin = optarg;
            break;
        case 's':
            seq = optarg;
            break;
        case 'S':
            schema = optarg;
            break;
        case 'T':
            if (xdcr_parse_duration_ms(optarg, &timeout_ms, &err) != 0) {
                fprintf(stderr, "xdcr wait: invalid --timeout: %s\n", err.message);
                return XDCR_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return XDCR_EXIT_OK;
        default:
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
    }
    if (target == NULL || origin == NULL || seq == NULL || optind != argc) {
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    if (!xdcr_origin_is_valid(origin)) {
        fprintf(stderr, "xdcr wait: invalid origin \"%s\"\n", origin);
        return XDCR_EXIT_USAGE;
    }
    if (xdcr_lsn_parse(seq, &lsn, &err) != 0) {
        fprintf(stderr, "xdcr wait: invalid --seq: %s\n", err.message);
        return XDCR_EXIT_USAGE;
    }
    xdcr_lsn_format(lsn, lsnbuf);
    deadline = mono_ms() + timeout_ms;

    conn = PQconnectdb(target);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "xdcr wait: could not connect to the target: %s", PQerrorMessage(conn));
        goto out;
    }
    /* LISTEN first, then check: a commit between the two is seen by the check or notified. */
    res = PQexec(conn, "LISTEN xdcr_applied");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "xdcr wait: LISTEN failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        goto out;
    }
    PQclear(res);
    for (;;) {
        PGnotify *n;
        struct pollfd pfd;
        long long left;
        int rc = check_applied(conn, schema, origin, lsnbuf);

        if (rc < 0)
            goto out;
        if (rc == 1) {
            status = WAIT_EXIT_APPLIED;
            goto out;
        }
        left = deadline - mono_ms();
        if (left <= 0) {
            fprintf(stderr, "xdcr wait: timed out: origin %s has not applied %s yet\n", origin,
                    lsnbuf);
            status = WAIT_EXIT_TIMEOUT;
            goto out;
        }
        pfd.fd = PQsocket(conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            goto out;
        if (PQconsumeInput(conn) == 0) {
            fprintf(stderr, "xdcr wait: lost the connection: %s", PQerrorMessage(conn));
            goto out;
        }
        while ((n = PQnotifies(conn)) != NULL)
            PQfreemem(n); /* any commit may have moved our origin: check again */
    }
out:
    PQfinish(conn);
    return status;
}
