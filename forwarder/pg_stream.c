/*
 * pg_stream.c - the forwarder's libpq adapter: replication connection, slot and publication
 * checks, CopyData streaming, standby status updates, and a monitoring connection.
 * Every libpq error is mapped to an xdcr error here and nowhere else.
 */
#include "pg_stream.h"

#include "pgoutput.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fwd_pg {
    char *conninfo;
    char *password;
    const xdcr_log_t *lg;
    PGconn *conn;  /* replication connection */
    PGconn *mon;   /* monitoring connection */
    char *copybuf; /* last buffer from PQgetCopyData, freed on the next read */
    bool streaming;
};

fwd_pg_t *fwd_pg_new(const char *conninfo, const char *password, const xdcr_log_t *lg)
{
    fwd_pg_t *pg = calloc(1, sizeof(*pg));

    if (pg == NULL)
        return NULL;
    pg->lg = lg;
    pg->conninfo = strdup(conninfo);
    if (pg->conninfo == NULL)
        goto fail;
    if (password != NULL && (pg->password = strdup(password)) == NULL)
        goto fail;
    return pg;
fail:
    fwd_pg_free(pg);
    return NULL;
}

void fwd_pg_free(fwd_pg_t *pg)
{
    if (pg == NULL)
        return;
    fwd_pg_disconnect(pg);
    if (pg->mon != NULL)
        PQfinish(pg->mon);
    free(pg->conninfo);
    if (pg->password != NULL) {
        memset(pg->password, 0, strlen(pg->password));
        free(pg->password);
    }
    free(pg);
}

/* One line of libpq's error message, without the trailing newline. */
static const char *conn_error(PGconn *conn, char *buf, size_t len)
{
    const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    size_t n;

    snprintf(buf, len, "%s", msg);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return buf;
}

static PGconn *open_conn(fwd_pg_t *pg, bool replication, xdcr_error_t *err)
{
    const char *keys[6];
    const char *vals[6];
    int n = 0;
    PGconn *conn;
    char ebuf[400];

    keys[n] = "connect_timeout", vals[n++] = "10";
    keys[n] = "fallback_application_name", vals[n++] = "xdcr-forwarder";
    keys[n] = "dbname", vals[n++] = pg->conninfo;
    if (pg->password != NULL)
        keys[n] = "password", vals[n++] = pg->password;
    if (replication)
        keys[n] = "replication", vals[n++] = "database";
    keys[n] = NULL, vals[n] = NULL;

    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        xdcr_error_set(err, XDCR_EPGCONN, true, "could not connect to PostgreSQL: %s",
                       conn_error(conn, ebuf, sizeof(ebuf)));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Map a failed result to an error; SQLSTATEs that mean something to us get their own code. */
static int result_error(PGconn *conn, PGresult *res, const char *what, xdcr_error_t *err)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char ebuf[400];
    int code = XDCR_EPG;
    bool retriable = false;

    if (msg == NULL)
        msg = conn_error(conn, ebuf, sizeof(ebuf));
    if (PQstatus(conn) != CONNECTION_OK) {
        code = XDCR_EPGCONN;
        retriable = true;
    } else if (state != NULL) {
        if (strcmp(state, "55006") == 0) { /* object_in_use: slot active elsewhere */
            code = XDCR_EEXISTS;
            retriable = true;
        } else if (strcmp(state, "42704") == 0) { /* undefined_object: no such slot */
            code = XDCR_ESLOT;
        } else if (strcmp(state, "55000") == 0 && strstr(msg, "slot") != NULL) {
            code = XDCR_ESLOT; /* object_not_in_prerequisite_state: invalidated slot */
        } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                   strcmp(state, "53300") == 0) {
            code = XDCR_EPGCONN; /* connection exception, shutdown, too many connections */
            retriable = true;
        }
    }
    return xdcr_error_set(err, code, retriable, "%s failed: %s%s%s%s", what, msg,
                          state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

/* Run a query expecting tuples or a command OK; *out gets the result on success. */
static int exec(PGconn *conn, const char *sql, const char *what, PGresult **out, xdcr_error_t *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int rc = result_error(conn, res, what, err);
        PQclear(res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

bool fwd_pg_is_connected(const fwd_pg_t *pg)
{
    return pg != NULL && pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

void fwd_pg_disconnect(fwd_pg_t *pg)
{
    if (pg == NULL)
        return;
    if (pg->copybuf != NULL) {
        PQfreemem(pg->copybuf);
        pg->copybuf = NULL;
    }
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    pg->streaming = false;
}

int fwd_pg_connect(fwd_pg_t *pg, fwd_pg_ident_t *ident, xdcr_error_t *err)
{
    PGresult *res = NULL;
    int rc;

    fwd_pg_disconnect(pg);
    pg->conn = open_conn(pg, true, err);
    if (pg->conn == NULL)
        return err != NULL ? err->code : XDCR_EPGCONN;
    memset(ident, 0, sizeof(*ident));
    ident->server_version = PQserverVersion(pg->conn);
    if (ident->server_version < 140000) {
        rc = xdcr_error_set(err, XDCR_EVERSION, false,
                            "PostgreSQL %d is not supported: xdcr needs PostgreSQL 14 or later",
                            ident->server_version / 10000);
        goto fail;
    }
    rc = exec(pg->conn, "SHOW wal_level", "SHOW wal_level", &res, err);
    if (rc != 0)
        goto fail;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
        rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                            "wal_level is \"%s\" but logical decoding needs \"logical\": run "
                            "ALTER SYSTEM SET wal_level = logical and restart PostgreSQL",
                            PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
        goto fail;
    }
    PQclear(res);
    res = NULL;
    /*
     * pgoutput prints values with this session's output settings and converts them to its
     * client_encoding: pin the settings a server's defaults could make lossy (extra_float_digits
     * = 0), ambiguous for the target to read back (DateStyle SQL/German with zone abbreviations,
     * DMY vs MDY) or not UTF-8 (a LATIN1 database), so every value travels as canonical,
     * lossless UTF-8 text.
     */
    rc = exec(pg->conn,
              "SET client_encoding = 'UTF8'; SET DateStyle = 'ISO, YMD'; "
              "SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
              "SET bytea_output = 'hex'",
              "setting the output format", NULL, err);
    if (rc != 0)
        goto fail;
    rc = exec(pg->conn, "IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM", &res, err);
    if (rc != 0)
        goto fail;
    if (PQntuples(res) != 1 || PQnfields(res) < 4) {
        rc = xdcr_error_set(err, XDCR_EPG, false, "IDENTIFY_SYSTEM returned an unexpected result");
        goto fail;
    }
    ident->sysid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    ident->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    rc = xdcr_lsn_parse(PQgetvalue(res, 0, 2), &ident->xlogpos, err);
    if (rc != 0)
        goto fail;
    snprintf(ident->dbname, sizeof(ident->dbname), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    return 0;
fail:
    PQclear(res);
    fwd_pg_disconnect(pg);
    return rc;
}

/* Append the quoted identifier for "schema.table" or "table" to buf. */
static int append_table(PGconn *conn, const char *name, size_t len, char *buf, size_t buflen,
                        xdcr_error_t *err)
{
    char part[2][256];
    const char *dot = memchr(name, '.', len);
    int nparts = 0;

    if (dot != NULL) {
        snprintf(part[0], sizeof(part[0]), "%.*s", (int)(dot - name), name);
        snprintf(part[1], sizeof(part[1]), "%.*s", (int)(len - (size_t)(dot - name) - 1), dot + 1);
        nparts = 2;
    } else {
        snprintf(part[0], sizeof(part[0]), "%.*s", (int)len, name);
        nparts = 1;
    }
    for (int i = 0; i < nparts; i++) {
        char *q = PQescapeIdentifier(conn, part[i], strlen(part[i]));
        if (q == NULL || part[i][0] == '\0') {
            PQfreemem(q);
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "invalid table name \"%.*s\" in publication.tables", (int)len,
                                  name);
        }
        if (i > 0)
            strncat(buf, ".", buflen - strlen(buf) - 1);
        strncat(buf, q, buflen - strlen(buf) - 1);
        PQfreemem(q);
    }
    return 0;
}

int fwd_pg_ensure_publication(fwd_pg_t *pg, const char *pub, bool create, const char *tables_csv,
                              xdcr_error_t *err)
{
    char sql[8192];
    char *lit = PQescapeLiteral(pg->conn, pub, strlen(pub));
    char *ident = PQescapeIdentifier(pg->conn, pub, strlen(pub));
    PGresult *res = NULL;
    int rc = 0;

    if (lit == NULL || ident == NULL) {
        rc = xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto done;
    }
    snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %s", lit);
    rc = exec(pg->conn, sql, "looking up the publication", &res, err);
    if (rc != 0)
        goto done;
    if (PQntuples(res) == 1)
        goto done;
    if (!create) {
        rc = xdcr_error_set(err, XDCR_ECONFIG, false,
                            "publication \"%s\" does not exist: create it (CREATE PUBLICATION %s "
                            "FOR ALL TABLES) or set publication.create = true",
                            pub, ident);
        goto done;
    }
    if (tables_csv == NULL || tables_csv[0] == '\0') {
        snprintf(sql, sizeof(sql), "CREATE PUBLICATION %s FOR ALL TABLES", ident);
    } else {
        const char *p = tables_csv;

        snprintf(sql, sizeof(sql), "CREATE PUBLICATION %s FOR TABLE ", ident);
        while (*p) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);

            while (len > 0 && *p == ' ')
                p++, len--;
            while (len > 0 && p[len - 1] == ' ')
                len--;
            if (p != tables_csv && sql[strlen(sql) - 1] != ' ')
                strncat(sql, ", ", sizeof(sql) - strlen(sql) - 1);
            rc = append_table(pg->conn, p, len, sql, sizeof(sql), err);
            if (rc != 0)
                goto done;
            p = end ? end + 1 : p + len;
        }
    }
    PQclear(res);
    res = NULL;
    rc = exec(pg->conn, sql, "creating the publication", NULL, err);
    if (rc == 0)
        XDCR_LOG_KV(pg->lg, XDCR_LOG_INFO, "created publication", "publication", pub);
done:
    PQclear(res);
    PQfreemem(lit);
    PQfreemem(ident);
    return rc;
}

int fwd_pg_check_published_tables(fwd_pg_t *pg, const char *pub, xdcr_error_t *err)
{
    char sql[1024];
    char *lit = PQescapeLiteral(pg->conn, pub, strlen(pub));
    PGresult *res = NULL;
    int rc, bad = 0;

    if (lit == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    snprintf(sql, sizeof(sql),
             "SELECT pt.schemaname, pt.tablename, c.relreplident::text,"
             " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"
             " AND i.indisprimary)"
             " FROM pg_catalog.pg_publication_tables pt"
             " JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname"
             " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
             " WHERE pt.pubname = %s ORDER BY 1, 2",
             lit);
    PQfreemem(lit);
    rc = exec(pg->conn, sql, "checking published tables", &res, err);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *ident = PQgetvalue(res, i, 2);
        bool has_pk = PQgetvalue(res, i, 3)[0] == 't';
        char table[300];

        snprintf(table, sizeof(table), "%s.%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        if (ident[0] == 'n' || (ident[0] == 'd' && !has_pk)) {
            bad++;
            XDCR_LOG_KV(pg->lg, XDCR_LOG_WARN,
                        "published table has no primary key or replica identity: its UPDATEs "
                        "and DELETEs fail at the source and cannot be replicated; add a primary "
                        "key or remove it from the publication",
                        "table", table);
        } else if (ident[0] == 'f' && !has_pk) {
            XDCR_LOG_KV(pg->lg, XDCR_LOG_WARN,
                        "published table uses REPLICA IDENTITY FULL without a primary key: the "
                        "target needs a primary key to apply its changes",
                        "table", table);
        }
    }
    PQclear(res);
    return bad;
}

int fwd_pg_slot_info(fwd_pg_t *pg, const char *slot, fwd_slot_info_t *info, xdcr_error_t *err)
{
    char sql[1024];
    char *lit = PQescapeLiteral(pg->conn, slot, strlen(slot));
    PGresult *res = NULL;
    int rc;

    memset(info, 0, sizeof(*info));
    if (lit == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(plugin, ''), coalesce(database, ''), coalesce(wal_status, ''),"
             " coalesce(active_pid, 0), coalesce(confirmed_flush_lsn, '0/0'),"
             " coalesce(restart_lsn, '0/0'), slot_type"
             " FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
             lit);
    PQfreemem(lit);
    rc = exec(pg->conn, sql, "looking up the replication slot", &res, err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        info->exists = true;
        snprintf(info->plugin, sizeof(info->plugin), "%s", PQgetvalue(res, 0, 0));
        snprintf(info->database, sizeof(info->database), "%s", PQgetvalue(res, 0, 1));
        info->lost = strcmp(PQgetvalue(res, 0, 2), "lost") == 0;
        info->active_pid = atoi(PQgetvalue(res, 0, 3));
        (void)xdcr_lsn_parse(PQgetvalue(res, 0, 4), &info->confirmed, NULL);
        (void)xdcr_lsn_parse(PQgetvalue(res, 0, 5), &info->restart, NULL);
        if (strcmp(PQgetvalue(res, 0, 6), "logical") != 0) {
            PQclear(res);
            return xdcr_error_set(err, XDCR_ESLOT, false,
                                  "replication slot \"%s\" is a physical slot", slot);
        }
    }
    PQclear(res);
    return 0;
}

int fwd_pg_create_slot(fwd_pg_t *pg, const char *slot, xdcr_lsn_t *consistent_lsn,
                       xdcr_error_t *err)
{
    char sql[512];
    char *ident = PQescapeIdentifier(pg->conn, slot, strlen(slot));
    PGresult *res = NULL;
    int rc;

    if (ident == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput NOEXPORT_SNAPSHOT",
             ident);
    PQfreemem(ident);
    rc = exec(pg->conn, sql, "CREATE_REPLICATION_SLOT", &res, err);
    if (rc != 0)
        return rc;
    *consistent_lsn = 0;
    if (PQntuples(res) == 1 && PQnfields(res) >= 2)
        (void)xdcr_lsn_parse(PQgetvalue(res, 0, 1), consistent_lsn, NULL);
    PQclear(res);
    return 0;
}

int fwd_pg_start_replication(fwd_pg_t *pg, const char *slot, const char *pub, xdcr_lsn_t start,
                             xdcr_error_t *err)
{
    char sql[1024], lsn[XDCR_LSN_STRLEN];
    char *ident = PQescapeIdentifier(pg->conn, slot, strlen(slot));
    char *pubident = PQescapeIdentifier(pg->conn, pub, strlen(pub));
    char *publit = NULL;
    PGresult *res;
    int rc = 0;

    if (ident == NULL || pubident == NULL ||
        (publit = PQescapeLiteral(pg->conn, pubident, strlen(pubident))) == NULL) {
        rc = xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto done;
    }
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names %s, "
             "messages 'true')",
             ident, xdcr_lsn_format(start, lsn), publit);
    res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        rc = result_error(pg->conn, res, "START_REPLICATION", err);
        PQclear(res);
        goto done;
    }
    PQclear(res);
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        rc = xdcr_error_set(err, XDCR_EPGCONN, true, "could not set the connection non-blocking");
        goto done;
    }
    pg->streaming = true;
done:
    PQfreemem(ident);
    PQfreemem(pubident);
    PQfreemem(publit);
    return rc;
}

int fwd_pg_read(fwd_pg_t *pg, const char **buf, size_t *len, xdcr_error_t *err)
{
    int n;
    char ebuf[400];

    if (pg->copybuf != NULL) {
        PQfreemem(pg->copybuf);
        pg->copybuf = NULL;
    }
    if (!pg->streaming)
        return xdcr_error_set(err, XDCR_ESTATE, false, "not streaming");
    n = PQgetCopyData(pg->conn, &pg->copybuf, 1);
    if (n == 0) {
        if (PQconsumeInput(pg->conn) == 0)
            return xdcr_error_set(err, XDCR_EPGCONN, true, "lost the replication connection: %s",
                                  conn_error(pg->conn, ebuf, sizeof(ebuf)));
        n = PQgetCopyData(pg->conn, &pg->copybuf, 1);
        if (n == 0)
            return 0;
    }
    if (n > 0) {
        *buf = pg->copybuf;
        *len = (size_t)n;
        return 1;
    }
    pg->streaming = false;
    if (n == -1) {
        /* The server ended the COPY: fetch the final result, which may be an error. */
        PGresult *res = PQgetResult(pg->conn);
        int rc;

        if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
            rc = result_error(pg->conn, res, "replication stream", err);
        else
            rc = xdcr_error_set(err, XDCR_EPGCONN, true, "the server ended replication");
        PQclear(res);
        return rc;
    }
    return xdcr_error_set(err, XDCR_EPGCONN, true, "lost the replication connection: %s",
                          conn_error(pg->conn, ebuf, sizeof(ebuf)));
}

int fwd_pg_send_status(fwd_pg_t *pg, xdcr_lsn_t write, xdcr_lsn_t flush, bool reply_requested,
                       int64_t now_unix_us, xdcr_error_t *err)
{
    char msg[FWD_PGO_STATUS_LEN];
    char ebuf[400];
    size_t len;

    if (!pg->streaming)
        return 0;
    /* applied = flushed: Kafka is our "disk" */
    len = fwd_pgo_write_status(msg, write, flush, flush, now_unix_us, reply_requested);
    if (PQputCopyData(pg->conn, msg, (int)len) != 1 || PQflush(pg->conn) < 0)
        return xdcr_error_set(err, XDCR_EPGCONN, true, "could not send a status update: %s",
                              conn_error(pg->conn, ebuf, sizeof(ebuf)));
    return 0;
}

int fwd_pg_socket(const fwd_pg_t *pg)
{
    return (pg != NULL && pg->conn != NULL) ? PQsocket(pg->conn) : -1;
}

int fwd_pg_positions(fwd_pg_t *pg, const char *slot, fwd_pg_positions_t *pos, xdcr_error_t *err)
{
    char sql[1024];
    char *lit;
    PGresult *res = NULL;
    int rc;

    memset(pos, 0, sizeof(*pos));
    pos->retained_bytes = -1;
    if (pg->mon != NULL && PQstatus(pg->mon) != CONNECTION_OK) {
        PQfinish(pg->mon);
        pg->mon = NULL;
    }
    if (pg->mon == NULL && (pg->mon = open_conn(pg, false, err)) == NULL)
        return err != NULL ? err->code : XDCR_EPGCONN;
    lit = PQescapeLiteral(pg->mon, slot, strlen(slot));
    if (lit == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    snprintf(sql, sizeof(sql),
             "SELECT pg_catalog.pg_current_wal_lsn(),"
             " (SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)"
             "  FROM pg_catalog.pg_replication_slots WHERE slot_name = %s),"
             " (SELECT confirmed_flush_lsn FROM pg_catalog.pg_replication_slots"
             "  WHERE slot_name = %s),"
             " (SELECT wal_status FROM pg_catalog.pg_replication_slots WHERE slot_name = %s)",
             lit, lit, lit);
    PQfreemem(lit);
    rc = exec(pg->mon, sql, "reading WAL positions", &res, err);
    if (rc != 0) {
        PQfinish(pg->mon);
        pg->mon = NULL;
        return rc;
    }
    (void)xdcr_lsn_parse(PQgetvalue(res, 0, 0), &pos->wal_lsn, NULL);
    if (!PQgetisnull(res, 0, 1))
        pos->retained_bytes = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (!PQgetisnull(res, 0, 2))
        (void)xdcr_lsn_parse(PQgetvalue(res, 0, 2), &pos->slot_confirmed, NULL);
    pos->slot_lost = !PQgetisnull(res, 0, 3) && strcmp(PQgetvalue(res, 0, 3), "lost") == 0;
    PQclear(res);
    return 0;
}
