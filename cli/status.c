/*
 * status.c - `xdcr status`: one table of replication state across several consumers and
 * forwarders, read from their /status endpoints (libcurl) and from target databases (the
 * <schema>.lag view, libpq). --json prints the merged document, --watch refreshes in place.
 * Exit status: 0 all well, 1 a lag over a given threshold or an origin halted, 7 a source could
 * not be read (docs/status.md).
 */
#include "cli.h"
#include "xdcr/config.h"
#include "xdcr/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATUS_EXIT_PROBLEM 1    /* a threshold exceeded or an origin halted */
#define STATUS_EXIT_UNREADABLE 7 /* a source could not be read */
#define HTTP_TIMEOUT_MS 2000L
#define HTTP_MAX_BODY (4L << 20)

typedef struct status_opts {
    const char **http; /* addresses or URLs */
    size_t nhttp;
    const char **db; /* conninfos */
    size_t ndb;
    const char *schema;
    char *token;            /* bearer token, or NULL */
    double max_lag_seconds; /* < 0: no threshold */
    double max_lag_bytes;
    double max_lag_messages;
    bool json;
    bool watch;
    double watch_seconds;
} status_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr status [--http HOST:PORT|URL]... [--db CONNINFO]... [--schema xdcr]\n"
            "                   [--token-file FILE] [--max-lag-seconds N] [--max-lag-bytes N]\n"
            "                   [--max-lag-messages N] [--json] [--watch [SECONDS]]\n"
            "Show replication state and lag per origin and datacenter, read from the /status\n"
            "endpoints of consumers and forwarders (--http, repeatable) and from the lag view\n"
            "of target databases (--db, repeatable). --watch refreshes every SECONDS (2).\n"
            "Exit status: 0 ok, 1 a lag above a threshold or an origin halted, 2 usage,\n"
            "7 a source could not be read.\n");
}

static bool parse_number(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

static bool push(const char ***list, size_t *n, const char *v)
{
    const char **l = realloc(*list, (*n + 1) * sizeof(*l));

    if (l == NULL)
        return false;
    l[(*n)++] = v;
    *list = l;
    return true;
}

/* ---- reading sources ------------------------------------------------------------------------ */

typedef struct body {
    char *data;
    size_t len;
} body_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    body_t *b = ctx;
    size_t n = size * nmemb;
    char *d;

    if (b->len + n > (size_t)HTTP_MAX_BODY)
        return 0; /* aborts the transfer */
    d = realloc(b->data, b->len + n + 1);
    if (d == NULL)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->data = d;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* "127.0.0.1:9188" -> "http://127.0.0.1:9188/status"; a URL gets /status unless it has it. */
static char *status_url(const char *addr)
{
    const char *scheme = strstr(addr, "://") != NULL ? "" : "http://";
    size_t n = strlen(addr);
    const char *suffix = n >= 7 && strcmp(addr + n - 7, "/status") == 0 ? ""
                         : n > 0 && addr[n - 1] == '/'                  ? "status"
                                                                        : "/status";
    size_t len = strlen(scheme) + n + strlen(suffix) + 1;
    char *url = malloc(len);

    if (url != NULL)
        snprintf(url, len, "%s%s%s", scheme, addr, suffix);
    return url;
}

/* GET the /status document of one daemon; NULL with *error set (malloc'd) on failure. */
static json_t *fetch_http(const char *url, const char *token, char **error)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    body_t b = {NULL, 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    json_t *doc = NULL;
    json_error_t jerr;
    long code = 0;
    CURLcode rc;
    char msg[512];

    *error = NULL;
    if (curl == NULL) {
        *error = strdup("could not initialise libcurl");
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "xdcr-status/" XDCR_VERSION);
    if (token != NULL) {
        size_t len = strlen(token) + 32;
        char *h = malloc(len);

        if (h != NULL) {
            snprintf(h, len, "Authorization: Bearer %s", token);
            hdrs = curl_slist_append(hdrs, h);
            memset(h, 0, len);
            free(h);
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    }
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK) {
        snprintf(msg, sizeof(msg), "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    } else if (code != 200) {
        snprintf(msg, sizeof(msg), "HTTP %ld%s", code,
                 code == 401 ? " (a bearer token is needed: --token-file)" : "");
    } else if ((doc = json_loadb(b.data != NULL ? b.data : "", b.len, 0, &jerr)) == NULL ||
               !json_is_object(doc)) {
        snprintf(msg, sizeof(msg), "not a JSON object: %s", jerr.text);
        json_decref(doc);
        doc = NULL;
    }
    if (doc == NULL)
        *error = strdup(msg);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    free(b.data);
    return doc;
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* One column as JSON: 's' string, 'i' integer, 'r' real; SQL NULL as null. */
static json_t *col_json(const PGresult *res, int r, int c, char type)
{
    const char *v;

    if (PQgetisnull(res, r, c))
        return json_null();
    v = PQgetvalue(res, r, c);
    if (type == 'i')
        return json_integer(strtoll(v, NULL, 10));
    if (type == 'r')
        return json_real(strtod(v, NULL));
    return json_string(v);
}

/* Rows of one target database's lag view, as /status origin entries; NULL on failure. */
static json_t *fetch_db(const char *conninfo, const char *schema, char **dc, char **error)
{
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"2", "xdcr-status", conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    PGresult *res = NULL;
    json_t *rows = NULL;
    char *ident = NULL, *sql = NULL, msg[700];
    size_t len;

    *dc = NULL;
    *error = NULL;
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(msg, sizeof(msg), "could not connect to the target database: %s",
                 PQerrorMessage(conn));
        goto fail;
    }
    PQclear(PQexec(conn, "SET statement_timeout = '2s'"));
    ident = PQescapeIdentifier(conn, schema, strlen(schema));
    if (ident == NULL) {
        snprintf(msg, sizeof(msg), "invalid schema name");
        goto fail;
    }
    len = 4 * strlen(ident) + 600;
    sql = malloc(len);
    if (sql == NULL) {
        snprintf(msg, sizeof(msg), "out of memory");
        goto fail;
    }
    snprintf(sql, len,
             "SELECT l.origin, l.topic, l.partition, l.applied_seq::text, l.lag_seconds, "
             "l.lag_bytes, l.lag_messages, l.halted, l.halt_error, "
             "(SELECT value FROM %s.meta WHERE key = 'consumer_origin'), "
             "l.kafka_offset, l.kafka_high_watermark, l.source_wal_lsn::text, "
             "to_char(l.last_source_time AT TIME ZONE 'UTC', "
             "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
             "FROM %s.lag l ORDER BY l.origin, l.topic, l.partition",
             ident, ident);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(msg, sizeof(msg), "could not read %s.lag: %s", schema, PQresultErrorMessage(res));
        goto fail;
    }
    rows = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *o = json_object(), *h = json_null();
        bool halted = !PQgetisnull(res, r, 7);

        if (*dc == NULL && !PQgetisnull(res, r, 9))
            *dc = strdup(PQgetvalue(res, r, 9));
        json_object_set_new(o, "origin", col_json(res, r, 0, 's'));
        json_object_set_new(o, "topic", col_json(res, r, 1, 's'));
        json_object_set_new(o, "partition", col_json(res, r, 2, 'i'));
        json_object_set_new(o, "state", json_string(halted ? "halted" : "stored"));
        json_object_set_new(o, "applied_seq", col_json(res, r, 3, 's'));
        json_object_set_new(o, "last_source_time", col_json(res, r, 13, 's'));
        json_object_set_new(o, "source_wal_lsn", col_json(res, r, 12, 's'));
        json_object_set_new(o, "lag_seconds", col_json(res, r, 4, 'r'));
        json_object_set_new(o, "lag_bytes", col_json(res, r, 5, 'i'));
        json_object_set_new(o, "lag_messages", col_json(res, r, 6, 'i'));
        json_object_set_new(o, "kafka_offset", col_json(res, r, 10, 'i'));
        json_object_set_new(o, "high_watermark", col_json(res, r, 11, 'i'));
        if (halted) {
            h = json_object();
            json_object_set_new(h, "kind", col_json(res, r, 7, 's'));
            json_object_set_new(h, "error", col_json(res, r, 8, 's'));
        }
        json_object_set_new(o, "halt", h);
        json_array_append_new(rows, o);
    }
    PQclear(res);
    PQfreemem(ident);
    free(sql);
    PQfinish(conn);
    return rows;
fail:
    /* libpq messages end in a newline */
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    *error = strdup(msg);
    PQclear(res);
    if (ident != NULL)
        PQfreemem(ident);
    free(sql);
    PQfinish(conn);
    return NULL;
}

/* ---- the merged document ------------------------------------------------------------------ */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool num(const json_t *o, const char *key, double *v)
{
    json_t *j = json_object_get(o, key);

    if (!json_is_number(j))
        return false;
    *v = json_number_value(j);
    return true;
}

static void add_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(json_t *problems, const char *fmt, ...)
{
    char buf[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

/* One origin row at one DC, from a consumer's /status entry (or a lag view row). */
static void add_origin(json_t *doc, const status_opts_t *o, const char *dc, const char *source,
                       const json_t *e, const char *consumer_error)
{
    json_t *row = json_object(), *problems = json_object_get(doc, "problems");
    json_t *halt = json_object_get(e, "halt");
    const char *origin = jstr(e, "origin") != NULL ? jstr(e, "origin") : "?";
    const char *err = json_is_object(halt) ? jstr(halt, "error") : consumer_error;
    double v;

    json_object_set_new(row, "dc", str_or_null(dc));
    json_object_set_new(row, "origin", json_string(origin));
    json_object_set_new(row, "source", json_string(source));
    json_object_set_new(row, "state", str_or_null(jstr(e, "state")));
    json_object_set(row, "lag_seconds",
                    json_object_get(e, "lag_seconds") != NULL ? json_object_get(e, "lag_seconds")
                                                              : json_null());
    json_object_set(row, "lag_bytes",
                    json_object_get(e, "lag_bytes") != NULL ? json_object_get(e, "lag_bytes")
                                                            : json_null());
    json_object_set(row, "lag_messages",
                    json_object_get(e, "lag_messages") != NULL ? json_object_get(e, "lag_messages")
                                                               : json_null());
    json_object_set_new(row, "applied_seq", str_or_null(jstr(e, "applied_seq")));
    json_object_set_new(row, "last_source_time", str_or_null(jstr(e, "last_source_time")));
    json_object_set_new(row, "halted", json_boolean(json_is_object(halt)));
    json_object_set_new(row, "last_error", str_or_null(err));
    json_array_append_new(json_object_get(doc, "origins"), row);

    if (json_is_object(halt))
        add_problem(problems, "origin %s at %s is halted (%s): %s", origin, dc ? dc : "?",
                    jstr(halt, "kind") ? jstr(halt, "kind") : "?", err ? err : "");
    /* a threshold cannot be met by an origin that applies here but has no lag yet */
    if ((o->max_lag_seconds >= 0 || o->max_lag_bytes >= 0 || o->max_lag_messages >= 0) &&
        !num(e, "lag_seconds", &v) && jstr(e, "state") != NULL &&
        strcmp(jstr(e, "state"), "idle") != 0)
        add_problem(problems, "origin %s at %s: lag unknown (nothing applied yet)", origin,
                    dc ? dc : "?");
    if (o->max_lag_seconds >= 0 && num(e, "lag_seconds", &v) && v > o->max_lag_seconds)
        add_problem(problems, "origin %s at %s: lag %.3f s exceeds %g s", origin, dc ? dc : "?", v,
                    o->max_lag_seconds);
    if (o->max_lag_bytes >= 0 && num(e, "lag_bytes", &v) && v > o->max_lag_bytes)
        add_problem(problems, "origin %s at %s: lag %.0f bytes exceeds %.0f", origin, dc ? dc : "?",
                    v, o->max_lag_bytes);
    if (o->max_lag_messages >= 0 && num(e, "lag_messages", &v) && v > o->max_lag_messages)
        add_problem(problems, "origin %s at %s: lag %.0f messages exceeds %.0f", origin,
                    dc ? dc : "?", v, o->max_lag_messages);
}

static void add_forwarder(json_t *doc, const char *source, const json_t *s)
{
    static const char *const keys[] = {"origin",
                                       "role",
                                       "state",
                                       "ready",
                                       "confirmed_lsn",
                                       "source_wal_lsn",
                                       "slot_retained_wal_bytes",
                                       "inflight_messages",
                                       "last_error"};
    json_t *row = json_object();

    json_object_set_new(row, "source", json_string(source));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(s, keys[i]);

        json_object_set(row, keys[i], v != NULL ? v : json_null());
    }
    json_array_append_new(json_object_get(doc, "forwarders"), row);
}

static void add_source(json_t *doc, const char *kind, const char *source, const char *service,
                       const char *error)
{
    json_t *s = json_object();

    json_object_set_new(s, "kind", json_string(kind));
    json_object_set_new(s, "source", json_string(source));
    json_object_set_new(s, "ok", json_boolean(error == NULL));
    json_object_set_new(s, "service", str_or_null(service));
    json_object_set_new(s, "error", str_or_null(error));
    json_array_append_new(json_object_get(doc, "sources"), s);
}

static void add_http(json_t *doc, const status_opts_t *o, const char *addr)
{
    char *url = status_url(addr), *error = NULL;
    json_t *s = url != NULL ? fetch_http(url, o->token, &error) : NULL;
    const char *service = s != NULL ? jstr(s, "service") : NULL;

    if (url == NULL)
        error = strdup("out of memory");
    if (s != NULL && (service == NULL ||
                      (strcmp(service, "consumer") != 0 && strcmp(service, "forwarder") != 0))) {
        char msg[512];

        snprintf(msg, sizeof(msg), "not an xdcr /status document (service \"%s\")",
                 service != NULL ? service : "");
        error = strdup(msg);
    }
    add_source(doc, "http", url != NULL ? url : addr, error == NULL ? service : NULL, error);
    if (error == NULL && strcmp(service, "consumer") == 0) {
        const char *state = jstr(s, "state");
        /* a consumer-wide error matters for its origins only while it is not running well */
        const char *cerr =
            state != NULL && strcmp(state, "running") != 0 ? jstr(s, "last_error") : NULL;
        json_t *origins = json_object_get(s, "origins"), *e;
        size_t i;

        json_array_foreach(origins, i, e) add_origin(doc, o, jstr(s, "origin"), url, e, cerr);
    } else if (error == NULL) {
        add_forwarder(doc, url, s);
    }
    json_decref(s);
    free(error);
    free(url);
}

static void add_db(json_t *doc, const status_opts_t *o, const char *conninfo)
{
    char *error = NULL, *dc = NULL, source[300];
    json_t *rows = fetch_db(conninfo, o->schema, &dc, &error), *e;
    size_t i;

    /* the conninfo may hold a password: name the source by host and database only */
    {
        PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
        const char *host = NULL, *port = NULL, *dbname = NULL;

        for (PQconninfoOption *p = opts; p != NULL && p->keyword != NULL; p++) {
            if (strcmp(p->keyword, "host") == 0)
                host = p->val;
            else if (strcmp(p->keyword, "port") == 0)
                port = p->val;
            else if (strcmp(p->keyword, "dbname") == 0)
                dbname = p->val;
        }
        snprintf(source, sizeof(source), "db:%s%s%s/%s", host ? host : "local", port ? ":" : "",
                 port ? port : "", dbname ? dbname : "");
        PQconninfoFree(opts);
    }
    add_source(doc, "db", source, error == NULL ? "database" : NULL, error);
    json_array_foreach(rows, i, e) add_origin(doc, o, dc, source, e, NULL);
    json_decref(rows);
    free(error);
    free(dc);
}

static json_t *collect(const status_opts_t *o, int *exit_status)
{
    json_t *doc = json_object(), *sources, *s;
    char now[40];
    time_t t = time(NULL);
    size_t i;
    bool unreadable = false;

    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_object_set_new(doc, "version", json_integer(1));
    json_object_set_new(doc, "time", json_string(now));
    json_object_set_new(doc, "sources", json_array());
    json_object_set_new(doc, "origins", json_array());
    json_object_set_new(doc, "forwarders", json_array());
    json_object_set_new(doc, "problems", json_array());
    for (i = 0; i < o->nhttp; i++)
        add_http(doc, o, o->http[i]);
    for (i = 0; i < o->ndb; i++)
        add_db(doc, o, o->db[i]);
    sources = json_object_get(doc, "sources");
    json_array_foreach(sources, i, s) if (!json_is_true(json_object_get(s, "ok"))) unreadable =
        true;
    *exit_status = unreadable                                              ? STATUS_EXIT_UNREADABLE
                   : json_array_size(json_object_get(doc, "problems")) > 0 ? STATUS_EXIT_PROBLEM
                                                                           : XDCR_EXIT_OK;
    json_object_set_new(doc, "status", json_integer(*exit_status));
    return doc;
}

/* ---- the table ------------------------------------------------------------------------------ */

/* A cell: strings as they are, numbers compact, null as "-". */
static void cell(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.3f", json_real_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "yes");
    else if (json_is_false(v))
        snprintf(buf, len, "no");
    else
        snprintf(buf, len, "-");
    /* one line per row */
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

typedef struct col {
    const char *title;
    const char *key;
    size_t max; /* display width cap */
} col_t;

static void print_table(FILE *out, const json_t *rows, const col_t *cols, size_t ncols)
{
    size_t width[16] = {0}, i;
    const json_t *r;
    char buf[600];

    for (size_t c = 0; c < ncols; c++)
        width[c] = strlen(cols[c].title);
    json_array_foreach(rows, i, r) for (size_t c = 0; c < ncols; c++)
    {
        size_t n;

        cell(json_object_get(r, cols[c].key), buf, sizeof(buf));
        n = strlen(buf) < cols[c].max ? strlen(buf) : cols[c].max;
        if (n > width[c])
            width[c] = n;
    }
    for (size_t c = 0; c < ncols; c++)
        fprintf(out, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, cols[c].title,
                c + 1 < ncols ? "  " : "\n");
    json_array_foreach(rows, i, r) for (size_t c = 0; c < ncols; c++)
    {
        cell(json_object_get(r, cols[c].key), buf, sizeof(buf));
        if (strlen(buf) > cols[c].max && cols[c].max > 3)
            snprintf(buf + cols[c].max - 3, 4, "...");
        fprintf(out, "%-*s%s", c + 1 < ncols ? (int)width[c] : 0, buf, c + 1 < ncols ? "  " : "\n");
    }
}

static void print_text(FILE *out, const json_t *doc)
{
    static const col_t ocols[] = {
        {"DC", "dc", 20},
        {"ORIGIN", "origin", 30},
        {"STATE", "state", 10},
        {"LAG_S", "lag_seconds", 14},
        {"LAG_BYTES", "lag_bytes", 20},
        {"LAG_MSGS", "lag_messages", 14},
        {"APPLIED_SEQ", "applied_seq", 20},
        {"SOURCE", "source", 40},
        {"LAST_ERROR", "last_error", 100},
    };
    static const col_t fcols[] = {
        {"ORIGIN", "origin", 30},
        {"ROLE", "role", 10},
        {"STATE", "state", 12},
        {"READY", "ready", 5},
        {"CONFIRMED_LSN", "confirmed_lsn", 20},
        {"SOURCE_WAL_LSN", "source_wal_lsn", 20},
        {"SLOT_RETAINED", "slot_retained_wal_bytes", 20},
        {"INFLIGHT", "inflight_messages", 12},
        {"SOURCE", "source", 40},
        {"LAST_ERROR", "last_error", 100},
    };
    const json_t *origins = json_object_get(doc, "origins");
    const json_t *fwds = json_object_get(doc, "forwarders");
    const json_t *sources = json_object_get(doc, "sources");
    const json_t *problems = json_object_get(doc, "problems");
    const json_t *v;
    size_t i;

    fprintf(out, "xdcr status at %s\n\n", json_string_value(json_object_get(doc, "time")));
    if (json_array_size(origins) > 0) {
        print_table(out, origins, ocols, sizeof(ocols) / sizeof(ocols[0]));
        fputc('\n', out);
    }
    if (json_array_size(fwds) > 0) {
        fprintf(out, "FORWARDERS\n");
        print_table(out, fwds, fcols, sizeof(fcols) / sizeof(fcols[0]));
        fputc('\n', out);
    }
    json_array_foreach(sources, i, v) if (!json_is_true(json_object_get(v, "ok")))
        fprintf(out, "UNREADABLE %s: %s\n", json_string_value(json_object_get(v, "source")),
                json_string_value(json_object_get(v, "error")));
    json_array_foreach(problems, i, v) fprintf(out, "PROBLEM %s\n", json_string_value(v));
}

/* ---- command ----------------------------------------------------------------------------------
 */

static int run_once(const status_opts_t *o, bool clear)
{
    int status;
    json_t *doc = collect(o, &status);

    if (clear)
        fputs("\033[H\033[2J", stdout);
    if (o->json) {
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
    } else {
        print_text(stdout, doc);
    }
    fflush(stdout);
    json_decref(doc);
    return status;
}

/*
 * --watch: SIGINT and SIGTERM stay blocked and are taken with sigtimedwait() between rounds, so a
 * signal that arrives during a round, or was already pending (blocked) when we started, ends the
 * loop without a handler/flag race. Returns true when a stop signal arrived within SECONDS.
 */
static bool wait_for_stop(const sigset_t *stop, double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};

    for (;;) {
        int sig = sigtimedwait(stop, NULL, &ts);

        if (sig > 0)
            return true;
        if (errno != EINTR)
            return false; /* EAGAIN: the interval is over */
        /* another signal interrupted the wait: wait the interval again, it is only a refresh */
    }
}

int cli_status(int argc, char **argv)
{
    static const struct option longopts[] = {{"http", required_argument, NULL, 'H'},
                                             {"db", required_argument, NULL, 'd'},
                                             {"schema", required_argument, NULL, 'S'},
                                             {"token-file", required_argument, NULL, 't'},
                                             {"max-lag-seconds", required_argument, NULL, 's'},
                                             {"max-lag-bytes", required_argument, NULL, 'b'},
                                             {"max-lag-messages", required_argument, NULL, 'm'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"watch", optional_argument, NULL, 'w'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    status_opts_t o;
    const char *token_file = NULL;
    xdcr_error_t err;
    int c, status = XDCR_EXIT_USAGE;

    memset(&o, 0, sizeof(o));
    o.schema = "xdcr";
    o.max_lag_seconds = o.max_lag_bytes = o.max_lag_messages = -1;
    o.watch_seconds = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        double *target = NULL;

        switch (c) {
        case 'H':
            if (!push(&o.http, &o.nhttp, optarg))
                goto oom;
            break;
        case 'd':
            if (!push(&o.db, &o.ndb, optarg))
                goto oom;
            break;
        case 'S':
            o.schema = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 's':
            target = &o.max_lag_seconds;
            break;
        case 'b':
            target = &o.max_lag_bytes;
            break;
        case 'm':
            target = &o.max_lag_messages;
            break;
        case 'j':
            o.json = true;
            break;
        case 'w':
            o.watch = true;
            if (optarg != NULL &&
                (!parse_number(optarg, &o.watch_seconds) || o.watch_seconds < 0.1)) {
                fprintf(stderr, "xdcr status: invalid --watch interval \"%s\"\n", optarg);
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            status = XDCR_EXIT_OK;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
        if (target != NULL && !parse_number(optarg, target)) {
            fprintf(stderr, "xdcr status: invalid threshold \"%s\": use a number >= 0\n", optarg);
            goto out;
        }
    }
    /* `--watch 5`: the interval as a separate word */
    if (o.watch && optind + 1 == argc && parse_number(argv[optind], &o.watch_seconds) &&
        o.watch_seconds >= 0.1)
        optind++;
    if (optind != argc || o.nhttp + o.ndb == 0) {
        if (optind != argc)
            fprintf(stderr, "xdcr status: unexpected argument \"%s\"\n", argv[optind]);
        else
            fprintf(stderr, "xdcr status: give at least one --http or --db source\n");
        usage(stderr);
        goto out;
    }
    if (token_file != NULL && xdcr_read_secret_file(token_file, &o.token, &err) != 0) {
        fprintf(stderr, "xdcr status: --token-file: %s\n", err.message);
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "xdcr status: could not initialise libcurl\n");
        status = STATUS_EXIT_UNREADABLE;
        goto out;
    }
    if (!o.watch) {
        status = run_once(&o, false);
    } else {
        sigset_t stop;

        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop, NULL); /* left blocked: the command ends after the loop */
        do {
            status = run_once(&o, !o.json && isatty(STDOUT_FILENO));
            if (!o.json && !isatty(STDOUT_FILENO))
                fputs("\n", stdout);
            fflush(stdout);
        } while (!wait_for_stop(&stop, o.watch_seconds));
    }
    curl_global_cleanup();
    goto out;
oom:
    fprintf(stderr, "xdcr status: out of memory\n");
    status = XDCR_EXIT_RUNTIME;
out:
    if (o.token != NULL) {
        memset(o.token, 0, strlen(o.token));
        free(o.token);
    }
    free(o.http);
    free(o.db);
    return status;
}
