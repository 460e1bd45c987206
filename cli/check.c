/*
 * check.c - `xdcr check`: the consumer's preflight as a command. Reads a publication's tables and
 * columns from the source and each of those tables from the target, judges them with the shared
 * rules (xdcr/schema_check.h) and reports every mismatch at once, not the first only. Read only.
 */
#include "cli.h"
#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/schema_check.h"

#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_EXIT_UNREADABLE 7 /* a database could not be read */

typedef struct check_opts {
    const char *source, *publication, *target;
    bool json;
} check_opts_t;

/* Every problem found, with the table it belongs to (same index in both lists). */
typedef struct check_report {
    xdcr_problems_t tables;   /* "schema.table" */
    xdcr_problems_t problems; /* the problem, as the consumer words it */
    size_t ntables;           /* tables checked */
    size_t nbad;              /* tables with at least one problem */
} check_report_t;

/*
 * The publication's tables and the columns it sends, named and flagged as pgoutput does (a
 * domain column by its base type): no
 * generated columns, only the publication's column list (PostgreSQL 15+), key = part of the
 * replica identity (every column with REPLICA IDENTITY FULL). One row per column, ordered by
 * table; attname is NULL for a table without columns.
 */
#define SOURCE_SQL(COLUMN_LIST)                                                                    \
    "SELECT pt.schemaname, pt.tablename, a.attname, " XDCR_SCHEMA_CHECK_TYPE_NAME_SQL ","          \
    " CASE c.relreplident WHEN 'f' THEN true"                                                      \
    " WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"          \
    " AND i.indisprimary AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]))"   \
    " WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"          \
    " AND i.indisreplident AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]))" \
    " ELSE false END"                                                                              \
    " FROM pg_catalog.pg_publication_tables pt"                                                    \
    " JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname"                                 \
    " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"           \
    " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"                  \
    " AND NOT a.attisdropped AND a.attgenerated = ''" COLUMN_LIST /* a domain by its base type, as \
                                                                     pgoutput names it */          \
    " LEFT JOIN pg_catalog.pg_type dt ON dt.oid = a.atttypid"                                      \
    " LEFT JOIN pg_catalog.pg_type ty ON ty.oid = CASE WHEN dt.typtype = 'd'"                      \
    " THEN dt.typbasetype ELSE dt.oid END"                                                         \
    " LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace"                            \
    " WHERE pt.pubname = $1"                                                                       \
    " ORDER BY pt.schemaname, pt.tablename, a.attnum"

static const char source_sql_15[] =
    SOURCE_SQL(" AND (pt.attnames IS NULL OR a.attname OPERATOR(pg_catalog.=) ANY (pt.attnames))");
static const char source_sql_old[] = SOURCE_SQL("");

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr check --source CONNINFO --publication NAME --target CONNINFO [--json]\n"
            "\n"
            "Verify that every table of the source's publication exists at the target with a\n"
            "primary key and compatible columns (the consumer's preflight). Every mismatch is\n"
            "listed, one line each, then a summary.\n"
            "\n"
            "  --source CONNINFO    libpq conninfo of the source database\n"
            "  --publication NAME   the publication the forwarder reads\n"
            "  --target CONNINFO    libpq conninfo of the target database\n"
            "  --json               one JSON object on stdout instead of text\n"
            "\n"
            "exit status: 0 every table fits, 1 mismatches found, 2 usage or unknown publication,\n"
            "7 a database could not be read\n");
}

static int parse(int argc, char **argv, check_opts_t *o)
{
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'}, {"publication", required_argument, NULL, 'p'},
        {"target", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->source = optarg;
            break;
        case 'p':
            o->publication = optarg;
            break;
        case 't':
            o->target = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
    }
    if (optind != argc || o->source == NULL || o->publication == NULL || o->target == NULL ||
        o->publication[0] == '\0') {
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    return 0;
}

static PGconn *connect_to(const char *conninfo, const char *what)
{
    PGconn *conn = PQconnectdb(conninfo);

    if (conn == NULL) {
        fprintf(stderr, "xdcr: could not connect to the %s: out of memory\n", what);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        /* PQerrorMessage never contains the password */
        fprintf(stderr, "xdcr: could not connect to the %s: %s", what, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Run a read-only query; NULL (and the error printed) when it fails. */
static PGresult *query(PGconn *conn, const char *sql, int nparams, const char *const *vals,
                       const char *what)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, vals, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "xdcr: could not read %s: %s", what,
                res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

/*
 * Read schema.table from the target into *out (NULL when it does not exist), with the query the
 * consumer uses. Returns an exit status: 0, CHECK_EXIT_UNREADABLE or XDCR_EXIT_RUNTIME (memory).
 */
static int load_target(PGconn *conn, const char *schema, const char *table, xdcr_table_t **out)
{
    const char *vals[2] = {schema, table};
    PGresult *res = query(conn, xdcr_schema_check_target_sql, 2, vals, "the target catalog");
    xdcr_table_t *t = NULL;

    *out = NULL;
    if (res == NULL)
        return CHECK_EXIT_UNREADABLE;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    t = xdcr_table_new(schema, table, (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10),
                       PQgetvalue(res, 0, 1)[0]);
    if (t == NULL)
        goto nomem;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *v[XDCR_SCHEMA_CHECK_TARGET_NCOLS];

        for (int k = 0; k < XDCR_SCHEMA_CHECK_TARGET_NCOLS; k++)
            v[k] = PQgetisnull(res, r, k) ? NULL : PQgetvalue(res, r, k);
        if (xdcr_table_add_catalog_row(t, v) != 0)
            goto nomem;
    }
    if (xdcr_table_finish(t) != 0) {
        fprintf(stderr, "xdcr: could not read the primary key of %s.%s at the target\n", schema,
                table);
        PQclear(res);
        xdcr_table_free(t);
        return CHECK_EXIT_UNREADABLE;
    }
    PQclear(res);
    *out = t;
    return 0;
nomem:
    fprintf(stderr, "xdcr: out of memory\n");
    PQclear(res);
    xdcr_table_free(t);
    return XDCR_EXIT_RUNTIME;
}

/*
 * Judge one source table (rows first..last-1 of the source result) against the target and add
 * its problems to the report. Returns an exit status: 0 (problems or not) or a failure.
 */
static int check_one(PGconn *target, PGresult *src, int first, int last, check_report_t *rep)
{
    const char *schema = PQgetvalue(src, first, 0), *table = PQgetvalue(src, first, 1);
    uint32_t ncols = 0;
    xdcr_column_t *cols = calloc((size_t)(last - first) + 1, sizeof(*cols));
    int32_t *map = calloc((size_t)(last - first) + 1, sizeof(*map));
    xdcr_table_t *t = NULL;
    xdcr_problems_t probs;
    xdcr_relation_t rel;
    int status;

    xdcr_problems_init(&probs);
    if (cols == NULL || map == NULL) {
        fprintf(stderr, "xdcr: out of memory\n");
        status = XDCR_EXIT_RUNTIME;
        goto out;
    }
    for (int r = first; r < last; r++) {
        if (PQgetisnull(src, r, 2))
            continue; /* a table without columns */
        cols[ncols].name = PQgetvalue(src, r, 2);
        cols[ncols].type = PQgetvalue(src, r, 3);
        cols[ncols].typmod = -1;
        cols[ncols].key = PQgetvalue(src, r, 4)[0] == 't';
        ncols++;
    }
    rel.schema = schema;
    rel.table = table;
    rel.ncols = ncols;
    rel.cols = cols;
    status = load_target(target, schema, table, &t);
    if (status != 0)
        goto out;
    xdcr_check_relation(&rel, t, map, &probs);
    if (probs.oom) {
        fprintf(stderr, "xdcr: out of memory\n");
        status = XDCR_EXIT_RUNTIME;
        goto out;
    }
    rep->ntables++;
    if (probs.count > 0)
        rep->nbad++;
    for (size_t i = 0; i < probs.count; i++) {
        xdcr_problems_add(&rep->tables, "%s.%s", schema, table);
        xdcr_problems_add(&rep->problems, "%s", probs.items[i]);
    }
    if (rep->tables.oom || rep->problems.oom) {
        fprintf(stderr, "xdcr: out of memory\n");
        status = XDCR_EXIT_RUNTIME;
    }
out:
    xdcr_problems_free(&probs);
    xdcr_table_free(t);
    free(map);
    free(cols);
    return status;
}

static void print_text(const check_opts_t *o, const check_report_t *rep)
{
    for (size_t i = 0; i < rep->problems.count; i++)
        printf("table %s: %s\n", rep->tables.items[i], rep->problems.items[i]);
    if (rep->problems.count == 0)
        printf("publication %s: all %zu table(s) fit the target\n", o->publication, rep->ntables);
    else
        printf("publication %s: %zu problem(s) in %zu of %zu table(s)\n", o->publication,
               rep->problems.count, rep->nbad, rep->ntables);
}

static int print_json(const check_opts_t *o, const check_report_t *rep)
{
    json_t *root = json_object(), *list = json_array();
    char *text = NULL;
    int status = XDCR_EXIT_RUNTIME;

    if (root == NULL || list == NULL)
        goto out;
    for (size_t i = 0; i < rep->problems.count; i++) {
        json_t *item = json_pack("{s:s, s:s}", "table", rep->tables.items[i], "problem",
                                 rep->problems.items[i]);

        if (item == NULL || json_array_append_new(list, item) != 0)
            goto out;
    }
    if (json_object_set_new(root, "publication", json_string(o->publication)) != 0 ||
        json_object_set_new(root, "ok", json_boolean(rep->problems.count == 0)) != 0 ||
        json_object_set_new(root, "tables", json_integer((json_int_t)rep->ntables)) != 0 ||
        json_object_set_new(root, "tables_with_problems", json_integer((json_int_t)rep->nbad)) !=
            0 ||
        json_object_set(root, "problems", list) != 0)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL)
        goto out;
    printf("%s\n", text);
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "xdcr: out of memory\n");
    free(text);
    json_decref(list);
    json_decref(root);
    return status;
}

int cli_check(int argc, char **argv)
{
    check_opts_t o = {0};
    check_report_t rep;
    PGconn *source = NULL, *target = NULL;
    PGresult *pub = NULL, *src = NULL;
    const char *vals[1];
    int status, first;

    status = parse(argc, argv, &o);
    if (status != 0)
        return status < 0 ? XDCR_EXIT_OK : status;
    xdcr_problems_init(&rep.tables);
    xdcr_problems_init(&rep.problems);
    rep.ntables = rep.nbad = 0;
    vals[0] = o.publication;

    status = CHECK_EXIT_UNREADABLE;
    source = connect_to(o.source, "source");
    if (source == NULL)
        goto out;
    pub = query(source, "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1", 1, vals,
                "the source's publications");
    if (pub == NULL)
        goto out;
    if (PQntuples(pub) == 0) {
        fprintf(stderr, "xdcr: publication \"%s\" does not exist at the source\n", o.publication);
        status = XDCR_EXIT_USAGE;
        goto out;
    }
    src = query(source, PQserverVersion(source) >= 150000 ? source_sql_15 : source_sql_old, 1, vals,
                "the source's published tables");
    if (src == NULL)
        goto out;
    target = connect_to(o.target, "target");
    if (target == NULL)
        goto out;

    status = 0;
    first = 0;
    for (int r = 1; r <= PQntuples(src) && status == 0; r++) {
        if (r < PQntuples(src) && strcmp(PQgetvalue(src, r, 0), PQgetvalue(src, first, 0)) == 0 &&
            strcmp(PQgetvalue(src, r, 1), PQgetvalue(src, first, 1)) == 0)
            continue;
        status = check_one(target, src, first, r, &rep);
        first = r;
    }
    if (status != 0)
        goto out;
    status = o.json ? print_json(&o, &rep) : (print_text(&o, &rep), 0);
    if (status == 0 && rep.problems.count > 0)
        status = XDCR_EXIT_RUNTIME;
out:
    PQclear(src);
    PQclear(pub);
    PQfinish(target);
    PQfinish(source);
    xdcr_problems_free(&rep.problems);
    xdcr_problems_free(&rep.tables);
    return status;
}
