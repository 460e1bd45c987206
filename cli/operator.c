/*
 * operator.c - audited operator actions on a consumer's target database: `xdcr skip` (skip one
 * poison transaction of an origin) and `xdcr accept-gap` (accept a Kafka retention gap after the
 * data was resynchronised). Both call the functions the consumer installs in its schema, which
 * record every action in <schema>.audit; the running consumer picks them up.
 */
#include "cli.h"
#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct op_opts {
    const char *target, *origin, *seq, *topic, *partition, *offset, *reason;
    const char *schema;
} op_opts_t;

static int parse(int argc, char **argv, op_opts_t *o, void (*usage)(FILE *))
{
    static const struct option longopts[] = {{"target", required_argument, NULL, 't'},
                                             {"origin", required_argument, NULL, 'o'},
                                             {"seq", required_argument, NULL, 's'},
                                             {"topic", required_argument, NULL, 'T'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"offset", required_argument, NULL, 'O'},
                                             {"reason", required_argument, NULL, 'r'},
                                             {"schema", required_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;

    o->schema = "xdcr";
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->target = optarg;
            break;
        case 'o':
            o->origin = optarg;
            break;
        case 's':
            o->seq = optarg;
            break;
        case 'T':
            o->topic = optarg;
            break;
        case 'p':
            o->partition = optarg;
            break;
        case 'O':
            o->offset = optarg;
            break;
        case 'r':
            o->reason = optarg;
            break;
        case 'S':
            o->schema = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
    }
    if (optind != argc || o->target == NULL || o->origin == NULL || o->reason == NULL ||
        o->reason[0] == '\0') {
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    if (!xdcr_origin_is_valid(o->origin)) {
        fprintf(stderr, "xdcr: invalid origin \"%s\"\n", o->origin);
        return XDCR_EXIT_USAGE;
    }
    return 0;
}

/* Run one parameterised statement and print its single value; returns an exit status. */
static int run(const char *target, const char *schema, const char *call, int nparams,
               const char *const *params, const char *what)
{
    PGconn *conn = PQconnectdb(target);
    PGresult *res = NULL;
    char sql[1024];
    char *ident;
    int status = XDCR_EXIT_RUNTIME;

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "xdcr: could not connect to the target: %s", PQerrorMessage(conn));
        goto out;
    }
    ident = PQescapeIdentifier(conn, schema, strlen(schema));
    if (ident == NULL)
        goto out;
    snprintf(sql, sizeof(sql), "SELECT %s.%s", ident, call);
    PQfreemem(ident);
    res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "xdcr: %s failed: %s", what, PQresultErrorMessage(res));
        goto out;
    }
    printf("%s: %s\n", what, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "done");
    status = XDCR_EXIT_OK;
out:
    PQclear(res);
    PQfinish(conn);
    return status;
}

static void skip_usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr skip --target CONNINFO --origin NAME --seq LSN --reason TEXT\n"
            "                 [--schema xdcr]\n"
            "Skip exactly one source transaction of NAME that the consumer cannot apply: LSN is\n"
            "its seq or commit_lsn as the consumer's error and <schema>.halts show it. Recorded\n"
            "in <schema>.audit; the consumer skips it when it reaches it and goes on.\n");
}

int cli_skip(int argc, char **argv)
{
    op_opts_t o = {0};
    xdcr_lsn_t lsn;
    xdcr_error_t err;
    char lsnbuf[XDCR_LSN_STRLEN];
    int rc = parse(argc, argv, &o, skip_usage);

    if (rc != 0)
        return rc < 0 ? XDCR_EXIT_OK : rc;
    if (o.seq == NULL || xdcr_lsn_parse(o.seq, &lsn, &err) != 0) {
        fprintf(stderr, "xdcr skip: --seq must be an LSN like 0/16B3748\n");
        return XDCR_EXIT_USAGE;
    }
    {
        const char *params[3] = {o.origin, xdcr_lsn_format(lsn, lsnbuf), o.reason};

        return run(o.target, "SELECT %s.skip_transaction($1, $2::pg_lsn, $3)", o.schema, 3, params,
                   "skip request");
    }
}

static void gap_usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr accept-gap --target CONNINFO --origin NAME --topic TOPIC --partition N\n"
            "                       --offset OFFSET --reason TEXT [--schema xdcr]\n"
            "Accept a Kafka retention gap of origin NAME after its data was resynchronised:\n"
            "the consumer resumes at OFFSET (usually the partition's low watermark) and accepts\n"
            "the next message whatever came before. Recorded in <schema>.audit.\n");
}

int cli_accept_gap(int argc, char **argv)
{
    op_opts_t o = {0};
    char *end;
    int rc = parse(argc, argv, &o, gap_usage);

    if (rc != 0)
        return rc < 0 ? XDCR_EXIT_OK : rc;
    if (o.topic == NULL || o.partition == NULL || o.offset == NULL) {
        gap_usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    if (strtol(o.partition, &end, 10) < 0 || *end != '\0' || strtoll(o.offset, &end, 10) < 0 ||
        *end != '\0') {
        fprintf(stderr, "xdcr accept-gap: --partition and --offset must be numbers >= 0\n");
        return XDCR_EXIT_USAGE;
    }
    {
        const char *params[5] = {o.origin, o.topic, o.partition, o.offset, o.reason};

        return run(o.target, "SELECT %s.accept_gap($1, $2, $3::integer, $4::bigint, $5)", o.schema,
                   5, params, "gap accepted");
    }
}
