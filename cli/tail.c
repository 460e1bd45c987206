/*
 * tail.c - `xdcr tail`: read an origin's topic and print every message decoded and verified
 * (headers, CRC, format) as one JSON line, for operators and for the integration tests that
 * check what the forwarder captured. Exit status 1 when any message failed verification.
 * With --record FILE it writes the messages byte for byte as a recorded message stream
 * (xdcr/record.h) instead, for `xdcr-consumer --replay.file=FILE`.
 */
#include "cli.h"
#include "xdcr/error.h"
#include "xdcr/event.h"
#include "xdcr/lsn.h"
#include "xdcr/record.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct tail_opts {
    const char *bootstrap;
    const char *topic;
    long count;         /* stop after this many messages, 0 = no limit */
    long idle_ms;       /* stop after this long without a message */
    bool raw_values;    /* also print the raw payload */
    bool follow;        /* keep reading after the end of every partition */
    const char *record; /* write a recorded message stream here instead of JSON lines */
} tail_opts_t;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr tail --bootstrap SERVERS --topic TOPIC [--count N] [--follow]\n"
            "                 [--idle-ms MS] [--raw | --record FILE] [-X kafka.property=value]...\n"
            "Print every message of TOPIC (from the beginning) decoded, one JSON line each.\n"
            "Stops at the end of the topic, after N messages, or (with --follow) when no\n"
            "message arrived for MS milliseconds (default 5000).\n"
            "--record FILE: write the messages unchanged (headers, offsets) to FILE as a\n"
            "recorded message stream instead, for xdcr-consumer --replay.file=FILE.\n");
}

static json_t *lsn_json(xdcr_lsn_t lsn)
{
    char buf[XDCR_LSN_STRLEN];

    return lsn == 0 ? json_null() : json_string(xdcr_lsn_format(lsn, buf));
}

static json_t *value_json(const xdcr_value_t *v)
{
    if (v->kind == XDCR_VAL_NULL)
        return json_null();
    if (v->kind == XDCR_VAL_UNCHANGED)
        return json_pack("{s:b}", "unchanged", 1);
    return json_stringn(v->data, v->len);
}

static json_t *hex_json(const char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *buf = malloc(len * 2 + 1);
    json_t *j;

    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        buf[2 * i] = digits[(unsigned char)data[i] >> 4];
        buf[2 * i + 1] = digits[(unsigned char)data[i] & 15];
    }
    j = json_stringn(buf, len * 2);
    free(buf);
    return j;
}

static json_t *row_json(const xdcr_relation_t *rel, const xdcr_value_t *vals)
{
    json_t *o = json_object();

    for (uint32_t i = 0; i < rel->ncols; i++)
        json_object_set_new(o, rel->cols[i].name, value_json(&vals[i]));
    return o;
}

static json_t *change_json(const xdcr_message_t *m, const xdcr_change_t *c)
{
    char op[2] = {(char)c->op, 0};
    json_t *o = json_pack("{s:i,s:s}", "ord", (json_int_t)c->ordinal, "op", op);

    if (c->op == XDCR_OP_TRUNCATE) {
        json_t *rels = json_array();

        for (uint32_t i = 0; i < c->ntrunc; i++) {
            const xdcr_relation_t *r = &m->rels[c->trunc_rels[i]];
            char name[512];

            snprintf(name, sizeof(name), "%s.%s", r->schema, r->table);
            json_array_append_new(rels, json_string(name));
        }
        json_object_set_new(o, "tables", rels);
        json_object_set_new(o, "cascade", json_boolean(c->cascade));
        json_object_set_new(o, "restart_identity", json_boolean(c->restart_identity));
    } else if (c->op == XDCR_OP_MESSAGE) {
        json_t *text = NULL;

        json_object_set_new(o, "prefix", json_string(c->prefix));
        /* the bytes may be anything: as text only when they are valid UTF-8 without NUL */
        if (c->content_len == 0)
            text = json_string("");
        else if (memchr(c->content, '\0', c->content_len) == NULL)
            text = json_stringn(c->content, c->content_len);
        if (text != NULL)
            json_object_set_new(o, "content", text);
        json_object_set_new(o, "content_hex", hex_json(c->content, c->content_len));
    } else {
        const xdcr_relation_t *r = &m->rels[c->rel];
        json_t *types = json_object();
        json_t *keys = json_array();

        json_object_set_new(o, "schema", json_string(r->schema));
        json_object_set_new(o, "table", json_string(r->table));
        for (uint32_t i = 0; i < r->ncols; i++) {
            json_object_set_new(types, r->cols[i].name, json_string(r->cols[i].type));
            if (r->cols[i].key)
                json_array_append_new(keys, json_string(r->cols[i].name));
        }
        json_object_set_new(o, "types", types);
        json_object_set_new(o, "key", keys);
        if (c->new_vals != NULL)
            json_object_set_new(o, "new", row_json(r, c->new_vals));
        if (c->old_vals != NULL)
            json_object_set_new(o, "old", row_json(r, c->old_vals));
    }
    return o;
}

static json_t *message_json(const xdcr_message_t *m)
{
    char tbuf[40];
    json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "type", xdcr_msg_type_name(m->type), "origin",
                          m->src.origin, "sysid", "", "timeline", (json_int_t)m->src.timeline);
    char sysid[24];

    snprintf(sysid, sizeof(sysid), "%" PRIu64, m->src.sysid);
    json_object_set_new(o, "sysid", json_string(sysid));
    json_object_set_new(o, "seq", lsn_json(m->seq));
    json_object_set_new(o, "prev", lsn_json(m->prev_seq));
    if (m->type == XDCR_MSG_MARK) {
        json_object_set_new(o, "wal_lsn", lsn_json(m->wal_lsn));
        json_object_set_new(o, "time",
                            json_string(xdcr_time_format_us(m->time_us, tbuf, sizeof(tbuf))));
        return o;
    }
    json_t *changes = json_array();

    json_object_set_new(o, "commit_lsn", lsn_json(m->commit_lsn));
    json_object_set_new(o, "xid", json_integer(m->xid));
    json_object_set_new(o, "commit_time",
                        json_string(xdcr_time_format_us(m->commit_time_us, tbuf, sizeof(tbuf))));
    json_object_set_new(o, "part", json_integer(m->part));
    json_object_set_new(o, "last", json_boolean(m->last));
    for (uint32_t i = 0; i < m->nchanges; i++)
        json_array_append_new(changes, change_json(m, &m->changes[i]));
    json_object_set_new(o, "changes", changes);
    return o;
}

static const void *header(const rd_kafka_message_t *rm, const char *name, size_t *len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;

    *len = 0;
    if (rd_kafka_message_headers(rm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (rd_kafka_header_get_last(h, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return v;
}

/* Print one message; returns 0 when it verified and decoded. */
static int print_message(const rd_kafka_message_t *rm, bool raw)
{
    size_t flen, clen;
    const char *fmt = header(rm, XDCR_HDR_FORMAT, &flen);
    const char *crc = header(rm, XDCR_HDR_CRC, &clen);
    xdcr_message_t *msg = NULL;
    xdcr_error_t err;
    json_t *o;
    int rc;
    char *line;

    xdcr_error_clear(&err);
    rc = xdcr_headers_verify(fmt, flen, crc, clen, rm->payload, rm->len, &err);
    if (rc == 0)
        rc = xdcr_message_decode(rm->payload, rm->len, &msg, &err);
    if (rc == 0) {
        o = message_json(msg);
    } else {
        o = json_pack("{s:s,s:s}", "error", err.message, "code", xdcr_error_name(err.code));
    }
    json_object_set_new(o, "topic", json_string(rd_kafka_topic_name(rm->rkt)));
    json_object_set_new(o, "partition", json_integer(rm->partition));
    json_object_set_new(o, "offset", json_integer(rm->offset));
    if (raw)
        json_object_set_new(o, "payload", json_stringn(rm->payload, rm->len));
    line = json_dumps(o, JSON_COMPACT);
    if (line != NULL)
        printf("%s\n", line);
    free(line);
    json_decref(o);
    xdcr_message_free(msg);
    return rc;
}

/* Append one message to the recording; 0, or -1 with a message on stderr. */
static int record_message(FILE *f, const char *path, const rd_kafka_message_t *rm)
{
    xdcr_record_t r;
    rd_kafka_headers_t *hdrs = NULL;
    xdcr_error_t err;
    size_t size, n;
    void *buf;

    memset(&r, 0, sizeof(r));
    r.topic = rd_kafka_topic_name(rm->rkt);
    r.topic_len = strlen(r.topic);
    r.partition = rm->partition;
    r.offset = rm->offset;
    r.timestamp_ms = rd_kafka_message_timestamp(rm, NULL);
    r.payload = rm->payload;
    r.payload_len = rm->len;
    if (rd_kafka_message_headers(rm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL) {
        const char *name;
        const void *value;
        size_t len;

        while (r.nheaders < XDCR_RECORD_MAX_HEADERS &&
               rd_kafka_header_get_all(hdrs, r.nheaders, &name, &value, &len) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR) {
            r.headers[r.nheaders].name = name;
            r.headers[r.nheaders].name_len = strlen(name);
            r.headers[r.nheaders].value = value;
            r.headers[r.nheaders].value_len = len;
            r.nheaders++;
        }
        if (rd_kafka_header_cnt(hdrs) > XDCR_RECORD_MAX_HEADERS) {
            fprintf(stderr, "xdcr tail: offset %lld has more than %d headers; not recordable\n",
                    (long long)rm->offset, XDCR_RECORD_MAX_HEADERS);
            return -1;
        }
    }
    size = xdcr_record_size(&r);
    buf = malloc(size);
    if (buf == NULL) {
        fprintf(stderr, "xdcr tail: out of memory\n");
        return -1;
    }
    n = xdcr_record_encode(&r, buf, &err);
    if (n == 0) {
        fprintf(stderr, "xdcr tail: offset %lld: %s\n", (long long)rm->offset, err.message);
        free(buf);
        return -1;
    }
    if (fwrite(buf, 1, n, f) != n) {
        fprintf(stderr, "xdcr tail: cannot write %s: %s\n", path, strerror(errno));
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

static int parse_args(int argc, char **argv, tail_opts_t *o, rd_kafka_conf_t *conf)
{
    static const struct option longopts[] = {{"bootstrap", required_argument, NULL, 'b'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"count", required_argument, NULL, 'c'},
                                             {"idle-ms", required_argument, NULL, 'i'},
                                             {"raw", no_argument, NULL, 'r'},
                                             {"follow", no_argument, NULL, 'f'},
                                             {"record", required_argument, NULL, 'R'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char errbuf[256];
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'c':
            o->count = strtol(optarg, NULL, 10);
            break;
        case 'i':
            o->idle_ms = strtol(optarg, NULL, 10);
            break;
        case 'r':
            o->raw_values = true;
            break;
        case 'f':
            o->follow = true;
            break;
        case 'R':
            o->record = optarg;
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            const char *key = optarg;

            if (eq == NULL) {
                fprintf(stderr, "xdcr tail: -X needs kafka.property=value\n");
                return XDCR_EXIT_USAGE;
            }
            *eq = '\0';
            if (strncmp(key, "kafka.", 6) == 0)
                key += 6;
            if (rd_kafka_conf_set(conf, key, eq + 1, errbuf, sizeof(errbuf)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "xdcr tail: invalid kafka.%s: %s\n", key, errbuf);
                return XDCR_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
    }
    if (o->bootstrap == NULL || o->topic == NULL || optind != argc || o->idle_ms <= 0 ||
        (o->record != NULL && o->raw_values)) {
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    return 0;
}

int cli_tail(int argc, char **argv)
{
    tail_opts_t o = {.idle_ms = 5000};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    char errbuf[512];
    long seen = 0;
    int eofs = 0, nparts = 0;
    int bad = 0, status = XDCR_EXIT_RUNTIME;
    long long last = 0;
    FILE *rec = NULL;
    int rc = parse_args(argc, argv, &o, conf);

    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return rc < 0 ? XDCR_EXIT_OK : rc;
    }
    if (o.record != NULL) {
        rec = fopen(o.record, "wbx"); /* never overwrite a recording */
        if (rec == NULL ||
            fwrite(XDCR_RECORD_MAGIC, 1, XDCR_RECORD_MAGIC_LEN, rec) != XDCR_RECORD_MAGIC_LEN) {
            fprintf(stderr, "xdcr tail: cannot create %s: %s\n", o.record,
                    errno == EEXIST ? "it exists (a recording is never overwritten)"
                                    : strerror(errno));
            if (rec != NULL)
                fclose(rec);
            rd_kafka_conf_destroy(conf);
            return XDCR_EXIT_USAGE;
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o.bootstrap, errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "xdcr-tail", errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK ||
        /* recording: a message that retention removed under us is an error, never skipped */
        (o.record != NULL && rd_kafka_conf_set(conf, "auto.offset.reset", "error", errbuf,
                                               sizeof(errbuf)) != RD_KAFKA_CONF_OK)) {
        fprintf(stderr, "xdcr tail: %s\n", errbuf);
        rd_kafka_conf_destroy(conf);
        return XDCR_EXIT_USAGE;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, sizeof(errbuf));
    if (rk == NULL) {
        fprintf(stderr, "xdcr tail: could not create a Kafka consumer: %s\n", errbuf);
        rd_kafka_conf_destroy(conf);
        return XDCR_EXIT_USAGE;
    }
    rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "xdcr tail: could not read metadata of topic \"%s\"\n", o.topic);
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, o.topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "xdcr tail: could not assign the partitions of \"%s\"\n", o.topic);
        goto out;
    }
    last = mono_ms();
    while (o.count == 0 || seen < o.count) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(rk, 100);

        if (rm == NULL) {
            if (mono_ms() - last >= o.idle_ms)
                break;
            if (rec != NULL)
                fflush(rec); /* idle: what is recorded so far is in the file */
            continue;
        }
        if (rm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            bool eof = rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;

            if (!eof)
                fprintf(stderr, "xdcr tail: %s\n", rd_kafka_message_errstr(rm));
            if (!eof && rec != NULL) {
                /* a recording with a hole would replay as if complete up to it */
                fprintf(stderr, "xdcr tail: the recording %s is incomplete (%s)\n", o.record,
                        rd_kafka_err2name(rm->err));
                rd_kafka_message_destroy(rm);
                goto out;
            }
            rd_kafka_message_destroy(rm);
            if (eof && !o.follow && ++eofs >= nparts)
                break;
            continue;
        }
        last = mono_ms();
        seen++;
        if (rec != NULL) {
            if (record_message(rec, o.record, rm) != 0) {
                rd_kafka_message_destroy(rm);
                goto out;
            }
        } else if (print_message(rm, o.raw_values) != 0) {
            bad++;
        }
        rd_kafka_message_destroy(rm);
    }
    fflush(stdout);
    if (rec != NULL) {
        if (fflush(rec) != 0 || fsync(fileno(rec)) != 0) {
            fprintf(stderr, "xdcr tail: cannot write %s: %s\n", o.record, strerror(errno));
            goto out;
        }
        fprintf(stderr, "xdcr tail: recorded %ld messages of %s in %s\n", seen, o.topic, o.record);
    }
    status = bad == 0 ? XDCR_EXIT_OK : XDCR_EXIT_RUNTIME;
    if (bad != 0)
        fprintf(stderr, "xdcr tail: %d of %ld messages failed verification\n", bad, seen);
out:
    if (rec != NULL)
        fclose(rec);
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return status;
}
