/*
 * kafka_tool.c - xdcr-test-kafka: a small, strict Kafka client for integration tests (produce
 * with the idempotent producer and wait for delivery, consume as JSON lines, watermarks,
 * metadata). Every run is bounded in time and exits non-zero on any failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define MAX_HEADERS 64
#define MAX_PROPS 64
#define MAX_VALUE_FILE_BYTES (64 * 1024 * 1024)
#define SAFETY_MARGIN_S 30 /* SIGALRM kills a run stuck this long after its deadline */

typedef struct tool_opts {
    const char *bootstrap;
    const char *topic;
    const char *key;
    const char *value;
    const char *value_file;
    bool null_value;
    const char *group;
    const char *headers[MAX_HEADERS]; /* "k=v" or "k" (NULL value) */
    int header_cnt;
    const char *props[MAX_PROPS]; /* "k=v" for rd_kafka_conf_set() */
    int prop_cnt;
    long count;
    bool count_set;
    long partition; /* -1: any / all */
    long timeout_ms;
    bool timeout_set;
    bool from_beginning;
    bool quiet;
} tool_opts_t;

typedef struct produce_state {
    long delivered;
    long failed;
    bool quiet;
} produce_state_t;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xdcr-test-kafka produce --bootstrap B --topic T [--key K] [--header K=V]...\n"
            "                       (--value V | --value-file PATH | --null-value) [--count N]\n"
            "                       [--partition P] [--timeout-ms MS] [--quiet]\n"
            "       xdcr-test-kafka consume --bootstrap B --topic T [--group G] --count N\n"
            "                       --timeout-ms MS [--from-beginning] [--partition P]\n"
            "       xdcr-test-kafka watermarks --bootstrap B --topic T --partition P\n"
            "                       [--timeout-ms MS]\n"
            "       xdcr-test-kafka metadata --bootstrap B [--topic T] [--timeout-ms MS]\n"
            "common: -X PROP=VALUE (librdkafka property, repeatable, applied last)\n\n"
            "produce: idempotent producer; \"{n}\" in key and value is replaced by the message\n"
            "  index (0..N-1); prints one JSON line per delivery (topic, partition, offset);\n"
            "  exits 1 unless every message is delivered. message.timeout.ms defaults to 30000,\n"
            "  --timeout-ms (default 60000) bounds the whole run.\n"
            "consume: prints one JSON line per message: topic, partition, offset, timestamp,\n"
            "  key, headers ([{key, value}]), value; bytes that are not UTF-8 come as null plus\n"
            "  <field>_base64. Without --group, reads all partitions (or --partition) from the\n"
            "  end, or from the beginning with --from-beginning; with --group, subscribes and\n"
            "  commits what it printed (--from-beginning = auto.offset.reset=earliest).\n"
            "  Exits 1 when fewer than N messages arrive in time; --count 0 reads until the\n"
            "  timeout and exits 0.\n"
            "watermarks: prints \"LOW HIGH\".\n"
            "metadata: prints one JSON line per partition (topic, partition, leader, replicas,\n"
            "  isrs) or per topic error.\n");
}

static int parse_num(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "xdcr-test-kafka: invalid %s \"%s\": must be an integer %ld..%ld\n", opt, s,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0, -1 on a usage error (message printed) or 1 after --help. */
static int parse_args(int argc, char **argv, tool_opts_t *o)
{
    static const struct option long_opts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},
        {"value", required_argument, NULL, 'v'},
        {"value-file", required_argument, NULL, 'V'},
        {"null-value", no_argument, NULL, 'N'},
        {"header", required_argument, NULL, 'H'},
        {"group", required_argument, NULL, 'g'},
        {"count", required_argument, NULL, 'c'},
        {"partition", required_argument, NULL, 'p'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"from-beginning", no_argument, NULL, 'B'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->partition = -1;
    o->count = 1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+X:q", long_opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'v':
            o->value = optarg;
            break;
        case 'V':
            o->value_file = optarg;
            break;
        case 'N':
            o->null_value = true;
            break;
        case 'H':
            if (o->header_cnt == MAX_HEADERS || optarg[0] == '\0' || optarg[0] == '=') {
                fprintf(stderr, "xdcr-test-kafka: invalid --header \"%s\" (K=V, max %d)\n", optarg,
                        MAX_HEADERS);
                return -1;
            }
            o->headers[o->header_cnt++] = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'c':
            if (parse_num("--count", optarg, 0, 10000000, &o->count) != 0)
                return -1;
            o->count_set = true;
            break;
        case 'p':
            if (parse_num("--partition", optarg, 0, INT32_MAX, &o->partition) != 0)
                return -1;
            break;
        case 'T':
            if (parse_num("--timeout-ms", optarg, 1, 86400000, &o->timeout_ms) != 0)
                return -1;
            o->timeout_set = true;
            break;
        case 'B':
            o->from_beginning = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'X':
            if (o->prop_cnt == MAX_PROPS || strchr(optarg, '=') == NULL) {
                fprintf(stderr, "xdcr-test-kafka: invalid -X \"%s\" (PROP=VALUE, max %d)\n", optarg,
                        MAX_PROPS);
                return -1;
            }
            o->props[o->prop_cnt++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            fprintf(stderr, "xdcr-test-kafka: option \"%s\" is unknown or needs a value\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xdcr-test-kafka: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (o->bootstrap == NULL) {
        fprintf(stderr, "xdcr-test-kafka: --bootstrap is required\n");
        return -1;
    }
    return 0;
}

/* librdkafka's log lines as usual, minus the warning that the dev broker ignores
   allow.auto.create.topics (docs/dev-broker.md), which would drown test output. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "AUTOCREATE") == 0)
        return;
    fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac, rd_kafka_name(rk), buf);
}

/* Apply defaults, then -X properties. Returns NULL (message printed) on a bad property. */
static rd_kafka_conf_t *make_conf(const tool_opts_t *o, const char *const *defaults)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto bad;
    if (rd_kafka_conf_set(conf, "client.id", "xdcr-test-kafka", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto bad;
    for (int i = 0; defaults != NULL && defaults[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto bad;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    for (int i = 0; i < o->prop_cnt; i++) {
        char name[256];
        const char *eq = strchr(o->props[i], '=');

        snprintf(name, sizeof(name), "%.*s", (int)(eq - o->props[i]), o->props[i]);
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto bad;
    }
    return conf;
bad:
    fprintf(stderr, "xdcr-test-kafka: invalid librdkafka property: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    fprintf(stderr, "xdcr-test-kafka: kafka error: %s: %s\n",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Replace every "{n}" in s by index; returns a malloc'd string or NULL. */
static char *substitute(const char *s, size_t len, long index, size_t *out_len)
{
    char num[24];
    size_t num_len = (size_t)snprintf(num, sizeof(num), "%ld", index);
    size_t cap = len + 1;
    size_t n = 0;
    char *out;

    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(s + i, "{n}", 3) == 0)
            cap += num_len;
    out = malloc(cap);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (i + 3 <= len && memcmp(s + i, "{n}", 3) == 0) {
            memcpy(out + n, num, num_len);
            n += num_len;
            i += 3;
        } else {
            out[n++] = s[i++];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    size_t n = 0;

    if (f == NULL) {
        fprintf(stderr, "xdcr-test-kafka: could not open \"%s\": %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t r;

        if (n == cap) {
            char *nb;
            cap = cap == 0 ? 65536 : cap * 2;
            if (cap > MAX_VALUE_FILE_BYTES + 1)
                cap = MAX_VALUE_FILE_BYTES + 1;
            if (n == cap) {
                fprintf(stderr, "xdcr-test-kafka: \"%s\" is larger than %d bytes\n", path,
                        MAX_VALUE_FILE_BYTES);
                goto fail;
            }
            nb = realloc(buf, cap);
            if (nb == NULL)
                goto fail;
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                fprintf(stderr, "xdcr-test-kafka: could not read \"%s\"\n", path);
                goto fail;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    if (buf == NULL)
        buf = malloc(1);
    return buf;
fail:
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produce_state_t *st = opaque;

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->failed++;
        fprintf(stderr, "xdcr-test-kafka: delivery failed: %s: %s\n", rd_kafka_err2name(m->err),
                rd_kafka_err2str(m->err));
        return;
    }
    st->delivered++;
    if (!st->quiet) {
        printf("{\"topic\":\"%s\",\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}\n",
               rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        fflush(stdout);
    }
}

static rd_kafka_headers_t *make_headers(const tool_opts_t *o)
{
    rd_kafka_headers_t *hdrs;

    if (o->header_cnt == 0)
        return NULL;
    hdrs = rd_kafka_headers_new((size_t)o->header_cnt);
    for (int i = 0; i < o->header_cnt; i++) {
        const char *eq = strchr(o->headers[i], '=');
        if (eq == NULL)
            rd_kafka_header_add(hdrs, o->headers[i], -1, NULL, 0);
        else
            rd_kafka_header_add(hdrs, o->headers[i], (ssize_t)(eq - o->headers[i]), eq + 1, -1);
    }
    return hdrs;
}

static int cmd_produce(const tool_opts_t *o)
{
    static const char *const defaults[] = {"enable.idempotence", "true", "message.timeout.ms",
                                           "30000", NULL};
    produce_state_t st = {0, 0, o->quiet};
    long timeout_ms = o->timeout_set ? o->timeout_ms : 60000;
    long long deadline = now_ms() + timeout_ms;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    char *file_value = NULL;
    size_t file_len = 0;
    const char *value_src;
    size_t value_len;
    char errstr[512];
    char fatal[512];
    long produced = 0;
    int rc = 1;

    if (o->topic == NULL || (o->value == NULL && o->value_file == NULL && !o->null_value) ||
        (o->value != NULL) + (o->value_file != NULL) + o->null_value > 1 || o->group != NULL) {
        fprintf(stderr, "xdcr-test-kafka produce: needs --topic and exactly one of --value, "
                        "--value-file, --null-value (and no --group)\n");
        return EXIT_USAGE;
    }
    alarm((unsigned)(timeout_ms / 1000 + SAFETY_MARGIN_S));
    if (o->value_file != NULL) {
        file_value = read_file(o->value_file, &file_len);
        if (file_value == NULL)
            return 1;
    }
    value_src = o->value_file != NULL ? file_value : o->value;
    value_len = o->value_file != NULL ? file_len : (o->value != NULL ? strlen(o->value) : 0);

    conf = make_conf(o, defaults);
    if (conf == NULL) {
        free(file_value);
        return EXIT_USAGE;
    }
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "xdcr-test-kafka: could not create producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        free(file_value);
        return 1;
    }

    for (long i = 0; i < o->count; i++) {
        size_t key_len = 0;
        size_t val_len = 0;
        char *key = o->key != NULL ? substitute(o->key, strlen(o->key), i, &key_len) : NULL;
        char *val = (!o->null_value && o->value_file == NULL)
                        ? substitute(value_src, value_len, i, &val_len)
                        : NULL;
        rd_kafka_headers_t *hdrs = make_headers(o);
        rd_kafka_resp_err_t err;

        if (o->value_file != NULL) {
            val = malloc(value_len + 1);
            if (val != NULL)
                memcpy(val, value_src, value_len);
            val_len = value_len;
        }
        if ((o->key != NULL && key == NULL) || (!o->null_value && val == NULL)) {
            fprintf(stderr, "xdcr-test-kafka: out of memory\n");
            free(key);
            free(val);
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            goto out;
        }
        for (;;) {
            err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->topic),
                                    RD_KAFKA_V_PARTITION(o->partition >= 0 ? (int32_t)o->partition
                                                                           : RD_KAFKA_PARTITION_UA),
                                    RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(val, val_len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || now_ms() >= deadline)
                break;
            rd_kafka_poll(rk, 100);
        }
        free(key);
        free(val);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Headers are owned by the message only when producev succeeds. */
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            fprintf(stderr, "xdcr-test-kafka: could not produce message %ld: %s: %s\n", i,
                    rd_kafka_err2name(err), rd_kafka_err2str(err));
            goto out;
        }
        produced++;
        rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0 && now_ms() < deadline) {
        long long left = deadline - now_ms();
        rd_kafka_flush(rk, (int)(left < 100 ? left : 100));
        if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
    }
out:
    if (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "xdcr-test-kafka: fatal producer error: %s\n", fatal);
    else if (st.delivered == o->count && produced == o->count)
        rc = 0;
    if (rc != 0)
        fprintf(stderr, "xdcr-test-kafka: delivered %ld of %ld messages (%ld failed)\n",
                st.delivered, o->count, st.failed);
    rd_kafka_destroy(rk);
    free(file_value);
    return rc;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_json(const unsigned char *p, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = malloc(out_len + 1);
    size_t o = 0;
    json_t *j;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    j = json_string(out);
    free(out);
    return j;
}

/* Set obj[field] to the bytes as a string, or null plus obj[field_base64] if not UTF-8. */
static int set_bytes(json_t *obj, const char *field, const void *p, size_t len)
{
    json_t *s;
    char b64_field[64];

    if (p == NULL)
        return json_object_set_new(obj, field, json_null());
    s = json_stringn((const char *)p, len);
    if (s != NULL)
        return json_object_set_new(obj, field, s);
    snprintf(b64_field, sizeof(b64_field), "%s_base64", field);
    if (json_object_set_new(obj, field, json_null()) != 0)
        return -1;
    return json_object_set_new(obj, b64_field, base64_json(p, len));
}

static int print_message(const rd_kafka_message_t *m)
{
    json_t *obj = json_object();
    json_t *hdr_arr = json_array();
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
    int rc = -1;

    if (obj == NULL || hdr_arr == NULL)
        goto out;
    if (json_object_set_new(obj, "topic", json_string(rd_kafka_topic_name(m->rkt))) != 0 ||
        json_object_set_new(obj, "partition", json_integer(m->partition)) != 0 ||
        json_object_set_new(obj, "offset", json_integer(m->offset)) != 0 ||
        json_object_set_new(obj, "timestamp",
                            ts_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? json_null()
                                                                        : json_integer(ts)) != 0 ||
        set_bytes(obj, "key", m->key, m->key_len) != 0)
        goto out;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t val_len;

        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &val_len) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            json_t *h = json_object();
            if (h == NULL || json_object_set_new(h, "key", json_string(name)) != 0 ||
                set_bytes(h, "value", val, val_len) != 0 || json_array_append_new(hdr_arr, h) != 0)
                goto out;
        }
    }
    if (json_object_set(obj, "headers", hdr_arr) != 0 ||
        set_bytes(obj, "value", m->payload, m->len) != 0)
        goto out;
    if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
        goto out;
    fputc('\n', stdout);
    fflush(stdout);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "xdcr-test-kafka: could not format message at offset %" PRId64 "\n",
                m->offset);
    json_decref(hdr_arr);
    json_decref(obj);
    return rc;
}

/* Partition count of topic via metadata, or -1 (message printed). */
static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int cnt = -1;

    if (rkt == NULL) {
        fprintf(stderr, "xdcr-test-kafka: invalid topic \"%s\"\n", topic);
        return -1;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "xdcr-test-kafka: could not get metadata for \"%s\": %s: %s\n", topic,
                rd_kafka_err2name(err), rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "xdcr-test-kafka: topic \"%s\": %s\n", topic,
                md->topic_cnt == 1 ? rd_kafka_err2name(md->topics[0].err) : "not found");
    else
        cnt = md->topics[0].partition_cnt;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return cnt;
}

static int cmd_consume(const tool_opts_t *o)
{
    char anon_group[96];
    const char *defaults[] = {
        /* clang-format off */
        "enable.auto.commit", "false",
        "auto.offset.reset", o->from_beginning ? "earliest" : "latest",
        "enable.partition.eof", "false",
        /* The mock group waits a whole session timeout for a member that left before it lets
           the next one join: keep it short. */
        "session.timeout.ms", "6000",
        "heartbeat.interval.ms", "1000",
        /* librdkafka wants a group.id even for assign(); without --group nothing is committed */
        "group.id", o->group != NULL ? o->group : anon_group,
        NULL,
        /* clang-format on */
    };
    long long deadline;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;
    char errstr[512];
    char fatal[512];
    long got = 0;
    int rc = 1;

    if (o->topic == NULL || !o->count_set || !o->timeout_set || o->key != NULL ||
        o->value != NULL || o->value_file != NULL || o->header_cnt > 0) {
        fprintf(stderr, "xdcr-test-kafka consume: needs --topic, --count and --timeout-ms\n");
        return EXIT_USAGE;
    }
    if (o->group != NULL && o->partition >= 0) {
        fprintf(stderr, "xdcr-test-kafka consume: --partition and --group exclude each other\n");
        return EXIT_USAGE;
    }
    alarm((unsigned)(o->timeout_ms / 1000 + SAFETY_MARGIN_S));
    deadline = now_ms() + o->timeout_ms;
    snprintf(anon_group, sizeof(anon_group), "xdcr-test-kafka-%ld-%lld", (long)getpid(), now_ms());
    conf = make_conf(o, defaults);
    if (conf == NULL)
        return EXIT_USAGE;
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "xdcr-test-kafka: could not create consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    if (o->group != NULL) {
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, parts);
    } else {
        int cnt = o->partition >= 0 ? 1 : partition_count(rk, o->topic, (int)o->timeout_ms);

        if (cnt < 0)
            goto out;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++) {
            int32_t p = o->partition >= 0 ? (int32_t)o->partition : i;
            rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
                o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        }
        err = rd_kafka_assign(rk, parts);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "xdcr-test-kafka: could not subscribe/assign \"%s\": %s\n", o->topic,
                rd_kafka_err2str(err));
        goto out;
    }
    while (o->count == 0 || got < o->count) {
        long long left = deadline - now_ms();
        rd_kafka_message_t *m;

        if (left <= 0)
            break;
        m = rd_kafka_consumer_poll(rk, (int)(left < 200 ? left : 200));
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (print_message(m) != 0) {
                rd_kafka_message_destroy(m);
                goto out;
            }
            got++;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "xdcr-test-kafka: consume error: %s: %s\n", rd_kafka_err2name(m->err),
                    rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        if (rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "xdcr-test-kafka: fatal consumer error: %s\n", fatal);
            goto out;
        }
    }
    if (o->count > 0 && got < o->count) {
        fprintf(stderr, "xdcr-test-kafka: timed out after %ld ms: received %ld of %ld messages\n",
                o->timeout_ms, got, o->count);
        goto out;
    }
    if (o->group != NULL && got > 0) {
        err = rd_kafka_commit(rk, NULL, 0);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "xdcr-test-kafka: could not commit offsets: %s: %s\n",
                    rd_kafka_err2name(err), rd_kafka_err2str(err));
            goto out;
        }
    }
    rc = 0;
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmd_watermarks(const tool_opts_t *o)
{
    long timeout_ms = o->timeout_set ? o->timeout_ms : 10000;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int64_t lo = -1;
    int64_t hi = -1;

    if (o->topic == NULL || o->partition < 0) {
        fprintf(stderr, "xdcr-test-kafka watermarks: needs --topic and --partition\n");
        return EXIT_USAGE;
    }
    alarm((unsigned)(timeout_ms / 1000 + SAFETY_MARGIN_S));
    conf = make_conf(o, NULL);
    if (conf == NULL)
        return EXIT_USAGE;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "xdcr-test-kafka: could not create client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    err = rd_kafka_query_watermark_offsets(rk, o->topic, (int32_t)o->partition, &lo, &hi,
                                           (int)timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        printf("%" PRId64 " %" PRId64 "\n", lo, hi);
    else
        fprintf(stderr, "xdcr-test-kafka: could not query watermarks of %s [%ld]: %s: %s\n",
                o->topic, o->partition, rd_kafka_err2name(err), rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
}

static json_t *int32_array(const int32_t *v, int n)
{
    json_t *a = json_array();

    for (int i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static int cmd_metadata(const tool_opts_t *o)
{
    long timeout_ms = o->timeout_set ? o->timeout_ms : 10000;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int rc = 0;

    alarm((unsigned)(timeout_ms / 1000 + SAFETY_MARGIN_S));
    /* A consumer handle: it does not ask for auto-creation (the dev broker creates topics on
       any metadata request anyway, see docs/dev-broker.md). */
    conf = make_conf(o, NULL);
    if (conf == NULL)
        return EXIT_USAGE;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "xdcr-test-kafka: could not create client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    if (o->topic != NULL)
        rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    err = rd_kafka_metadata(rk, rkt == NULL, rkt, &md, (int)timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "xdcr-test-kafka: could not get metadata: %s: %s\n", rd_kafka_err2name(err),
                rd_kafka_err2str(err));
        rc = 1;
        goto out;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];

        if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_t *j =
                json_pack("{s:s, s:s}", "topic", mt->topic, "error", rd_kafka_err2name(mt->err));
            if (j == NULL || json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
                fprintf(stderr, "xdcr-test-kafka: could not format metadata\n");
            fputc('\n', stdout);
            json_decref(j);
            rc = 1;
            continue;
        }
        for (int p = 0; p < mt->partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
            json_t *j = json_pack("{s:s, s:i, s:i, s:o, s:o}", "topic", mt->topic, "partition",
                                  (int)mp->id, "leader", (int)mp->leader, "replicas",
                                  int32_array(mp->replicas, mp->replica_cnt), "isrs",
                                  int32_array(mp->isrs, mp->isr_cnt));
            if (j == NULL || json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
                fprintf(stderr, "xdcr-test-kafka: could not format metadata\n");
                rc = 1;
            }
            fputc('\n', stdout);
            json_decref(j);
        }
    }
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    tool_opts_t o;
    int rc;

    memset(&o, 0, sizeof(o));
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    rc = parse_args(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc < 0 ? EXIT_USAGE : 0;
    if (strcmp(argv[1], "produce") == 0)
        return cmd_produce(&o);
    if (strcmp(argv[1], "consume") == 0)
        return cmd_consume(&o);
    if (strcmp(argv[1], "watermarks") == 0)
        return cmd_watermarks(&o);
    if (strcmp(argv[1], "metadata") == 0)
        return cmd_metadata(&o);
    fprintf(stderr, "xdcr-test-kafka: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
