/*
 * sql_build.c - SQL text for applying changes (upsert, update with missing-row upsert, delete,
 * truncate) and the DDL of the consumer's own schema. Pure: no I/O.
 */
#include "sql_build.h"

#include "xdcr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer -----------------------------------------------------------------------------------
 */

void sql_buf_init(sql_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void sql_buf_free(sql_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void sql_buf_reset(sql_buf_t *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int sql_buf_status(const sql_buf_t *b)
{
    return b->failed || b->data == NULL ? XDCR_ENOMEM : 0;
}

static bool reserve(sql_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    char *d;
    size_t cap;

    if (b->failed)
        return false;
    if (need <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

static void append_n(sql_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sql_append(sql_buf_t *b, const char *s)
{
    append_n(b, s, strlen(s));
}

void sql_appendf(sql_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void append_quoted(sql_buf_t *b, const char *s, char q)
{
    append_n(b, &q, 1);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == q)
            append_n(b, &q, 1);
        append_n(b, p, 1);
    }
    append_n(b, &q, 1);
}

void sql_append_ident(sql_buf_t *b, const char *name)
{
    append_quoted(b, name, '"');
}

void sql_append_qualified(sql_buf_t *b, const char *schema, const char *name)
{
    sql_append_ident(b, schema);
    sql_append(b, ".");
    sql_append_ident(b, name);
}

void sql_append_literal(sql_buf_t *b, const char *s)
{
    append_quoted(b, s, '\'');
}

/* ---- statements -------------------------------------------------------------------------------
 */

static bool in_list(const uint32_t *cols, uint32_t n, uint32_t c)
{
    for (uint32_t i = 0; i < n; i++)
        if (cols[i] == c)
            return true;
    return false;
}

/* ("a", "b", ...) of the key */
static void append_pk_list(sql_buf_t *b, const xdcr_table_t *t)
{
    sql_append(b, "(");
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
    }
    sql_append(b, ")");
}

/* "a" = $first AND "b" = $first+1 ... over the key */
static void append_key_match(sql_buf_t *b, const xdcr_table_t *t, uint32_t first)
{
    for (uint32_t k = 0; k < t->npk; k++) {
        if (k > 0)
            sql_append(b, " AND ");
        sql_append_ident(b, t->cols[t->pk[k]].name);
        sql_appendf(b, " = $%u", first + k);
    }
}

/* ON CONFLICT (pk) DO UPDATE SET c = EXCLUDED.c ... for the non-key columns, or DO NOTHING */
static void append_on_conflict(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols,
                               uint32_t n)
{
    bool any = false;

    sql_append(b, " ON CONFLICT ");
    append_pk_list(b, t);
    for (uint32_t i = 0; i < n; i++) {
        const char *name = t->cols[cols[i]].name;

        if (t->cols[cols[i]].pk_pos > 0)
            continue;
        sql_append(b, any ? ", " : " DO UPDATE SET ");
        sql_append_ident(b, name);
        sql_append(b, " = EXCLUDED.");
        sql_append_ident(b, name);
        any = true;
    }
    if (!any)
        sql_append(b, " DO NOTHING");
}

static bool key_covered(const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    for (uint32_t k = 0; k < t->npk; k++)
        if (!in_list(cols, n, t->pk[k]))
            return false;
    return true;
}

int sql_build_upsert(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *cols, uint32_t n)
{
    if (t->npk == 0 || n == 0 || !key_covered(t, cols, n))
        return XDCR_EINVAL;
    sql_append(b, "INSERT INTO ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " (");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[cols[i]].name);
    }
    sql_append(b, ") VALUES (");
    for (uint32_t i = 0; i < n; i++)
        sql_appendf(b, "%s$%u", i > 0 ? ", " : "", i + 1);
    sql_append(b, ")");
    append_on_conflict(b, t, cols, n);
    return sql_buf_status(b);
}

int sql_build_update(sql_buf_t *b, const xdcr_table_t *t, const uint32_t *set_cols, uint32_t nset,
                     bool key_changed)
{
    uint32_t key_first = nset + 1;
    bool any_key = false;

    if (t->npk == 0)
        return XDCR_EINVAL;
    for (uint32_t i = 0; i < nset; i++)
        if (t->cols[set_cols[i]].pk_pos > 0)
            any_key = true;
    if (key_changed ? !key_covered(t, set_cols, nset) : any_key)
        return XDCR_EINVAL;

    sql_append(b, "WITH upd AS (");
    if (nset == 0) {
        /* nothing to change in an existing row: only find out whether it is there */
        sql_append(b, "SELECT 1 FROM ");
        sql_append_qualified(b, t->schema, t->name);
        sql_append(b, " WHERE ");
        append_key_match(b, t, key_first);
    } else {
        sql_append(b, "UPDATE ");
        sql_append_qualified(b, t->schema, t->name);
        sql_append(b, " SET ");
        for (uint32_t i = 0; i < nset; i++) {
            if (i > 0)
                sql_append(b, ", ");
            sql_append_ident(b, t->cols[set_cols[i]].name);
            sql_appendf(b, " = $%u", i + 1);
        }
        sql_append(b, " WHERE ");
        append_key_match(b, t, key_first);
        sql_append(b, " RETURNING 1");
    }
    sql_append(b, ") INSERT INTO ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " (");
    for (uint32_t i = 0; i < nset; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_ident(b, t->cols[set_cols[i]].name);
    }
    if (!key_changed)
        for (uint32_t k = 0; k < t->npk; k++) {
            if (nset > 0 || k > 0)
                sql_append(b, ", ");
            sql_append_ident(b, t->cols[t->pk[k]].name);
        }
    sql_append(b, ") SELECT ");
    for (uint32_t i = 0; i < nset; i++)
        sql_appendf(b, "%s$%u", i > 0 ? ", " : "", i + 1);
    if (!key_changed)
        for (uint32_t k = 0; k < t->npk; k++)
            sql_appendf(b, "%s$%u", nset > 0 || k > 0 ? ", " : "", key_first + k);
    sql_append(b, " WHERE NOT EXISTS (SELECT 1 FROM upd)");
    append_on_conflict(b, t, set_cols, nset);
    return sql_buf_status(b);
}

int sql_build_delete(sql_buf_t *b, const xdcr_table_t *t)
{
    if (t->npk == 0)
        return XDCR_EINVAL;
    sql_append(b, "DELETE FROM ");
    sql_append_qualified(b, t->schema, t->name);
    sql_append(b, " WHERE ");
    append_key_match(b, t, 1);
    return sql_buf_status(b);
}

int sql_build_truncate(sql_buf_t *b, const xdcr_table_t *const *ts, uint32_t n,
                       bool restart_identity, bool cascade)
{
    if (n == 0)
        return XDCR_EINVAL;
    sql_append(b, "TRUNCATE ");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            sql_append(b, ", ");
        sql_append_qualified(b, ts[i]->schema, ts[i]->name);
    }
    if (restart_identity)
        sql_append(b, " RESTART IDENTITY");
    if (cascade)
        sql_append(b, " CASCADE");
    return sql_buf_status(b);
}

/* ---- the consumer's own schema ------------------------------------------------------------- */

/*
 * The DDL as a template: every "@" is replaced by the quoted schema name. Functions run with
 * search_path = pg_catalog and name every object with its schema.
 */
static const char *const schema_ddl[] = {
    "CREATE SCHEMA IF NOT EXISTS @;\n",
    "CREATE TABLE IF NOT EXISTS @.meta (\n"
    "    key text PRIMARY KEY,\n"
    "    value text NOT NULL);\n",
    "CREATE TABLE IF NOT EXISTS @.positions (\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    seq pg_lsn NOT NULL,\n"
    "    commit_time timestamptz,\n"
    "    kafka_offset bigint NOT NULL,\n"
    "    sysid text,\n"
    "    timeline integer,\n"
    "    mark_time timestamptz,\n"
    "    source_wal_lsn pg_lsn,\n"
    "    applied_at timestamptz NOT NULL DEFAULT now(),\n"
    "    version bigint NOT NULL DEFAULT 1,\n"
    "    resync boolean NOT NULL DEFAULT false,\n"
    "    wait_gen bigint NOT NULL DEFAULT 0,\n"
    "    kafka_high_watermark bigint,\n"
    "    PRIMARY KEY (origin, topic, partition));\n",
    /* columns added after the first release of the table */
    "ALTER TABLE @.positions ADD COLUMN IF NOT EXISTS wait_gen bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN IF NOT EXISTS kafka_high_watermark bigint;\n",
    "CREATE TABLE IF NOT EXISTS @.dead_letters (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    kafka_offset bigint NOT NULL,\n"
    "    seq pg_lsn,\n"
    "    commit_lsn pg_lsn,\n"
    "    table_name text,\n"
    "    error text NOT NULL,\n"
    "    payload text,\n"
    "    payload_encoding text NOT NULL DEFAULT 'json',\n"
    "    created_at timestamptz NOT NULL DEFAULT now());\n",
    "CREATE TABLE IF NOT EXISTS @.audit (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    at timestamptz NOT NULL DEFAULT now(),\n"
    "    actor text NOT NULL DEFAULT current_user,\n"
    "    action text NOT NULL,\n"
    "    origin text,\n"
    "    detail jsonb);\n",
    "CREATE TABLE IF NOT EXISTS @.halts (\n"
    "    origin text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    kind text NOT NULL,\n"
    "    kafka_offset bigint,\n"
    "    seq pg_lsn,\n"
    "    commit_lsn pg_lsn,\n"
    "    table_name text,\n"
    "    error text NOT NULL,\n"
    "    halted_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (origin, topic, partition));\n",
    "CREATE TABLE IF NOT EXISTS @.skip_requests (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    origin text NOT NULL,\n"
    "    lsn pg_lsn NOT NULL,\n"
    "    reason text,\n"
    "    requested_by text NOT NULL DEFAULT current_user,\n"
    "    requested_at timestamptz NOT NULL DEFAULT now(),\n"
    "    done_at timestamptz,\n"
    "    done_seq pg_lsn,\n"
    "    done_offset bigint);\n",
    "CREATE OR REPLACE FUNCTION @.fence_failed(p_what text) RETURNS bigint\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "BEGIN\n"
    "    RAISE EXCEPTION USING ERRCODE = 'XD001',\n"
    "        MESSAGE = 'the stored position of origin ' || p_what || ' was changed concurrently';\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.skip_transaction(p_origin text, p_lsn pg_lsn,\n"
    "        p_reason text DEFAULT NULL) RETURNS bigint\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "DECLARE\n"
    "    v_id bigint;\n"
    "BEGIN\n"
    "    IF p_origin IS NULL OR p_lsn IS NULL THEN\n"
    "        RAISE EXCEPTION 'origin and lsn are required';\n"
    "    END IF;\n"
    "    INSERT INTO @.skip_requests (origin, lsn, reason) VALUES (p_origin, p_lsn, p_reason)\n"
    "        RETURNING id INTO v_id;\n"
    "    UPDATE @.positions SET version = version + 1 WHERE origin = p_origin;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('skip_requested', p_origin,\n"
    "        jsonb_build_object('request_id', v_id, 'lsn', p_lsn::text, 'reason', p_reason));\n"
    "    RETURN v_id;\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.accept_gap(p_origin text, p_topic text, p_partition integer,\n"
    "        p_new_offset bigint, p_reason text DEFAULT NULL) RETURNS void\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "DECLARE\n"
    "    v_old bigint;\n"
    "BEGIN\n"
    "    IF p_new_offset IS NULL OR p_new_offset < 0 THEN\n"
    "        RAISE EXCEPTION 'new offset must be 0 or more';\n"
    "    END IF;\n"
    "    SELECT kafka_offset INTO v_old FROM @.positions\n"
    "        WHERE origin = p_origin AND topic = p_topic AND partition = p_partition FOR UPDATE;\n"
    "    IF FOUND THEN\n"
    "        UPDATE @.positions SET kafka_offset = p_new_offset, resync = true,\n"
    "                version = version + 1\n"
    "            WHERE origin = p_origin AND topic = p_topic AND partition = p_partition;\n"
    "    ELSE\n"
    "        INSERT INTO @.positions (origin, topic, partition, seq, kafka_offset, resync)\n"
    "            VALUES (p_origin, p_topic, p_partition, '0/0', p_new_offset, true);\n"
    "    END IF;\n"
    "    DELETE FROM @.halts\n"
    "        WHERE origin = p_origin AND topic = p_topic AND partition = p_partition;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('accept_gap', p_origin,\n"
    "        jsonb_build_object('topic', p_topic, 'partition', p_partition, 'old_offset', v_old,\n"
    "                           'new_offset', p_new_offset, 'reason', p_reason));\n"
    "END\n"
    "$xdcr$;\n",
    "CREATE OR REPLACE FUNCTION @.accept_source_identity(p_origin text,\n"
    "        p_reset_seq pg_lsn DEFAULT NULL, p_reason text DEFAULT NULL) RETURNS void\n"
    "    LANGUAGE plpgsql SET search_path = pg_catalog AS $xdcr$\n"
    "BEGIN\n"
    "    UPDATE @.positions SET sysid = NULL, timeline = NULL,\n"
    "            seq = COALESCE(p_reset_seq, seq), resync = resync OR p_reset_seq IS NOT NULL,\n"
    "            version = version + 1\n"
    "        WHERE origin = p_origin;\n"
    "    IF NOT FOUND THEN\n"
    "        RAISE EXCEPTION 'no stored position for origin %', p_origin;\n"
    "    END IF;\n"
    "    INSERT INTO @.audit (action, origin, detail) VALUES ('accept_source_identity',\n"
    "        p_origin, jsonb_build_object('reset_seq', p_reset_seq::text, 'reason', p_reason));\n"
    "END\n"
    "$xdcr$;\n",
    /* docs/lag.md defines every column; new columns go at the end (CREATE OR REPLACE VIEW) */
    "CREATE OR REPLACE VIEW @.lag AS\n"
    "SELECT p.origin, p.topic, p.partition, p.seq AS applied_seq, p.commit_time, p.mark_time,\n"
    "       p.applied_at, p.kafka_offset,\n"
    "       GREATEST(EXTRACT(epoch FROM now() - GREATEST(p.commit_time, p.mark_time)), 0)\n"
    "           ::double precision AS lag_seconds,\n"
    "       GREATEST(p.source_wal_lsn - p.seq, 0) AS lag_bytes,\n"
    "       h.kind AS halted, h.error AS halt_error,\n"
    "       GREATEST(p.kafka_high_watermark - p.kafka_offset, 0) AS lag_messages,\n"
    "       p.source_wal_lsn, GREATEST(p.commit_time, p.mark_time) AS last_source_time,\n"
    "       p.kafka_high_watermark\n"
    "FROM @.positions p LEFT JOIN @.halts h USING (origin, topic, partition);\n",
    /*
     * Read-your-writes from SQL (docs/lag.md). The consumer's apply session holds the session
     * advisory lock (hashtext('xdcr:' || origin), wait_gen % 2) of every origin it applies; a
     * commit that advances the origin first takes the lock of the next parity, writes wait_gen
     * + 1 with the position, commits, then releases the old one. A waiter blocks on a shared
     * lock of the parity it read, so the release wakes it right after the commit. The shared
     * lock is a transaction lock taken inside a subtransaction that is then rolled back, which
     * releases it at once, also when the statement is cancelled.
     */
    "CREATE OR REPLACE FUNCTION @.wait_for(p_origin text, p_lsn pg_lsn,\n"
    "        p_timeout interval DEFAULT '5s') RETURNS boolean\n"
    "    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog SET lock_timeout = 0\n"
    "    AS $xdcr$\n"
    "DECLARE\n"
    "    v_deadline timestamptz := clock_timestamp() + p_timeout;\n"
    "    v_key integer := hashtext('xdcr:' || p_origin);\n"
    "    v_seq pg_lsn;\n"
    "    v_gen bigint;\n"
    "    v_gen2 bigint;\n"
    "    v_left_ms double precision;\n"
    "    v_free boolean;\n"
    "BEGIN\n"
    "    IF p_origin IS NULL OR p_lsn IS NULL OR p_timeout IS NULL THEN\n"
    "        RAISE EXCEPTION 'origin, lsn and timeout are required';\n"
    "    END IF;\n"
    "    IF current_setting('transaction_isolation') <> 'read committed' THEN\n"
    "        RAISE EXCEPTION USING ERRCODE = 'invalid_transaction_state',\n"
    "            MESSAGE = 'wait_for needs a READ COMMITTED transaction, not '\n"
    "                || upper(current_setting('transaction_isolation')),\n"
    "            HINT = 'A REPEATABLE READ or SERIALIZABLE snapshot never sees the consumer''s '\n"
    "                || 'later commits: call it outside such a transaction.';\n"
    "    END IF;\n"
    "    LOOP\n"
    "        -- each statement takes a new snapshot (READ COMMITTED, VOLATILE)\n"
    "        SELECT p.seq, p.wait_gen INTO v_seq, v_gen FROM @.positions p\n"
    "            WHERE p.origin = p_origin ORDER BY p.seq DESC LIMIT 1;\n"
    "        IF v_seq >= p_lsn THEN\n"
    "            RETURN true;\n"
    "        END IF;\n"
    "        v_gen := COALESCE(v_gen, 0);\n"
    "        v_left_ms := EXTRACT(epoch FROM v_deadline - clock_timestamp()) * 1000;\n"
    "        IF v_left_ms <= 0 THEN\n"
    "            RETURN false;\n"
    "        END IF;\n"
    "        PERFORM set_config('lock_timeout', ceil(v_left_ms)::bigint || 'ms', true);\n"
    "        BEGIN\n"
    "            v_free := pg_try_advisory_xact_lock_shared(v_key, (v_gen % 2)::integer);\n"
    "            IF NOT v_free THEN\n"
    "                PERFORM pg_advisory_xact_lock_shared(v_key, (v_gen % 2)::integer);\n"
    "            END IF;\n"
    "            RAISE SQLSTATE 'XD002'; -- roll the subtransaction back: releases the lock\n"
    "        EXCEPTION\n"
    "            WHEN SQLSTATE 'XD002' THEN NULL;\n"
    "            WHEN lock_not_available THEN NULL; -- timed out: the next check decides\n"
    "        END;\n"
    "        IF v_free THEN\n"
    "            -- nobody holds the turnstile: the consumer is down or reconnecting\n"
    "            SELECT p.wait_gen INTO v_gen2 FROM @.positions p\n"
    "                WHERE p.origin = p_origin ORDER BY p.seq DESC LIMIT 1;\n"
    "            IF COALESCE(v_gen2, 0) = v_gen THEN\n"
    "                PERFORM pg_sleep(LEAST(0.05, GREATEST(EXTRACT(epoch FROM\n"
    "                    v_deadline - clock_timestamp()), 0)));\n"
    "            END IF;\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "END\n"
    "$xdcr$;\n",
    "INSERT INTO @.meta (key, value) VALUES ('schema_version', '1')\n"
    "    ON CONFLICT (key) DO NOTHING;\n",
};

int sql_build_schema_ddl(sql_buf_t *b, const char *schema)
{
    sql_buf_t q;

    sql_buf_init(&q);
    sql_append_ident(&q, schema);
    if (q.failed) {
        sql_buf_free(&q);
        b->failed = true;
        return XDCR_ENOMEM;
    }
    for (size_t i = 0; i < sizeof(schema_ddl) / sizeof(schema_ddl[0]); i++)
        for (const char *p = schema_ddl[i]; *p != '\0'; p++) {
            if (*p == '@')
                append_n(b, q.data, q.len);
            else
                append_n(b, p, 1);
        }
    sql_buf_free(&q);
    return sql_buf_status(b);
}
