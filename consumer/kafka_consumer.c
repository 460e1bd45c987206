/*
 * kafka_consumer.c - the consumer's librdkafka adapter: configuration pass-through with the
 * settings that keep positions in our hands, the group subscription and its rebalance
 * callback (or static assignment of every partition, from metadata), per-partition queues,
 * seek/pause, watermarks and offset commits.
 */
#include "kafka_consumer.h"

#include "xdcr/clock.h"
#include "xdcr/event.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct kpart {
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *q; /* the partition's fetch queue, not forwarded to the consumer queue */
    bool paused;         /* by us: fetch responses no longer refresh the high watermark */
    int64_t high;        /* last high watermark asked for while paused, -1 unknown */
    int64_t next_query_ms;
    int64_t consumed_next; /* offset after the last message taken from q, -1 none yet */
    int64_t next_wake_ms;  /* wake_fetcher(): not before (monotonic ms) */
    int wake_interval_ms;  /* wake_fetcher(): doubles while waking brings nothing */
    size_t peak_queued;    /* most messages seen in q since it was last found empty */
    bool found_empty;      /* q was found empty since the last message taken */
    size_t avg_len;        /* running mean of the payload sizes taken from q */
} kpart_t;

typedef struct cons_kafka {
    cons_source_t base; /* first: a cons_kafka_t is a cons_source_t */
    rd_kafka_t *rk;
    const xdcr_log_t *lg;
    cons_assign_fn on_assign;
    cons_revoke_fn on_revoke;
    void *ctx;
    kpart_t *parts;
    size_t nparts, cap;
    bool closed;
    int brokers_up;       /* from the last statistics: brokers in state UP, -1 unknown */
    int wake[2];          /* pipe librdkafka writes to when a watched queue gets a message */
    rd_kafka_queue_t *cq; /* the consumer group queue (rebalances, errors), or NULL */
    char last_error[256]; /* last error reported by librdkafka, "" none */
    /* static assignment: no group; every partition of these topics, found through metadata */
    bool static_assign;
    char **topics;
    size_t ntopics;
    int64_t next_meta_ms; /* next look at the topics' partitions (monotonic ms) */
    bool meta_failing;    /* the last look failed (warned once per failure streak) */
    /* librdkafka's prefetch limits per partition (queued.min.messages, .max.messages.kbytes) */
    size_t prefetch_msgs, prefetch_bytes;
} cons_kafka_t;

/* static assignment: look at the topics' partitions this often, and this often while one of
   them is missing or the cluster does not answer; how long one look may block the loop */
enum { META_INTERVAL_MS = 10000, META_RETRY_MS = 1000, META_TIMEOUT_MS = 1000 };
/* wake_fetcher(): first and longest interval between wake-ups of a partition's fetcher (its
   broker thread looks by itself every second), and how long one may block */
enum { WAKE_MIN_MS = 10, WAKE_MAX_MS = 1000, WAKE_TIMEOUT_MS = 100 };

/*
 * Positions live in the target database: librdkafka must never store, commit or reset them on
 * its own. The user may override anything else.
 */
static const char *const defaults[][2] = {
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
    {"auto.offset.reset", "error"},
    {"enable.partition.eof", "false"},
    {"client.id", "xdcr-consumer"},
    {"socket.keepalive.enable", "true"},
    {"topic.metadata.refresh.interval.ms", "10000"},
    {"isolation.level", "read_committed"},
    /* broker states for readiness; the high watermarks come with every fetch response */
    {"statistics.interval.ms", "1000"},
    /* prefetch: librdkafka's 64 MB of payload, plus its overhead per message, would take a
       consumer catching up on small messages past 100 MB (see also wake_fetcher()) */
    {"queued.max.messages.kbytes", "24576"},
};

static int conf_setter(void *ctx, const char *key, const char *value, char *errbuf, size_t errlen)
{
    return rd_kafka_conf_set(ctx, key, value, errbuf, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static bool is_true(const char *v)
{
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 ||
                         strcmp(v, "on") == 0);
}

static rd_kafka_conf_t *build_conf(const xdcr_kv_list_t *kafka, const char *group_id,
                                   xdcr_error_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *v;
    char errbuf[256];

    if (conf == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK) {
            xdcr_error_set(err, XDCR_ECONFIG, false, "librdkafka rejected default %s: %s",
                           defaults[i][0], errbuf);
            goto fail;
        }
    if (rd_kafka_conf_set(conf, "group.id", group_id, errbuf, sizeof(errbuf)) != RD_KAFKA_CONF_OK) {
        xdcr_error_set(err, XDCR_ECONFIG, false, "invalid group.id: %s", errbuf);
        goto fail;
    }
    if (xdcr_kv_list_apply(kafka, "kafka.", conf_setter, conf, err) != 0)
        goto fail;
    if (is_true(xdcr_kv_list_get(kafka, "enable.auto.commit"))) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "kafka.enable.auto.commit must stay false: positions are kept in the "
                       "target database, in the same transaction as the rows");
        goto fail;
    }
    if (is_true(xdcr_kv_list_get(kafka, "enable.auto.offset.store"))) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "kafka.enable.auto.offset.store must stay false: positions are kept in "
                       "the target database");
        goto fail;
    }
    v = xdcr_kv_list_get(kafka, "auto.offset.reset");
    if (v != NULL && strcmp(v, "error") != 0) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "kafka.auto.offset.reset must stay error: a lost position is a gap that "
                       "an operator accepts, never an automatic jump (use initial_position for "
                       "origins without a stored position)");
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int cons_kafka_check_config(const xdcr_kv_list_t *kafka, const char *group_id, xdcr_error_t *err)
{
    rd_kafka_conf_t *conf = build_conf(kafka, group_id, err);

    if (conf == NULL)
        return err != NULL ? err->code : XDCR_ECONFIG;
    rd_kafka_conf_destroy(conf);
    return 0;
}

/* ---- partitions ------------------------------------------------------------------------------ */

static kpart_t *find_part(cons_kafka_t *k, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < k->nparts; i++)
        if (k->parts[i].partition == partition && strcmp(k->parts[i].topic, topic) == 0)
            return &k->parts[i];
    return NULL;
}

/* Create the partition's own queue and stop it feeding the consumer queue (before assign). */
static int add_part(cons_kafka_t *k, const char *topic, int32_t partition)
{
    kpart_t *p;

    if (find_part(k, topic, partition) != NULL)
        return 0;
    if (k->nparts == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 8;
        kpart_t *parts = realloc(k->parts, cap * sizeof(*parts));

        if (parts == NULL)
            return XDCR_ENOMEM;
        k->parts = parts;
        k->cap = cap;
    }
    p = &k->parts[k->nparts];
    p->topic = strdup(topic);
    p->partition = partition;
    p->paused = false;
    p->high = -1;
    p->next_query_ms = 0;
    p->consumed_next = -1;
    p->next_wake_ms = 0;
    p->wake_interval_ms = WAKE_MIN_MS;
    p->peak_queued = 0;
    p->found_empty = false;
    p->avg_len = 0;
    p->q = rd_kafka_queue_get_partition(k->rk, topic, partition);
    if (p->topic == NULL || p->q == NULL) {
        free(p->topic);
        if (p->q != NULL)
            rd_kafka_queue_destroy(p->q);
        return XDCR_ENOMEM;
    }
    rd_kafka_queue_forward(p->q, NULL);
    /* an idle wait ends as soon as a message arrives for this partition */
    if (k->wake[1] >= 0)
        rd_kafka_queue_io_event_enable(p->q, k->wake[1], "p", 1);
    k->nparts++;
    return 0;
}

static void remove_part(cons_kafka_t *k, const char *topic, int32_t partition)
{
    kpart_t *p = find_part(k, topic, partition);

    if (p == NULL)
        return;
    rd_kafka_queue_destroy(p->q);
    free(p->topic);
    *p = k->parts[--k->nparts];
}

static cons_tp_t *to_tps(const rd_kafka_topic_partition_list_t *parts)
{
    cons_tp_t *tps = calloc(parts->cnt > 0 ? (size_t)parts->cnt : 1, sizeof(*tps));

    if (tps == NULL)
        return NULL;
    for (int i = 0; i < parts->cnt; i++) {
        tps[i].topic = parts->elems[i].topic;
        tps[i].partition = parts->elems[i].partition;
        tps[i].offset = CONS_KAFKA_OFFSET_NONE;
        tps[i].pause = false;
    }
    return tps;
}

static void do_assign(cons_kafka_t *k, rd_kafka_topic_partition_list_t *parts, bool coop)
{
    cons_tp_t *tps = to_tps(parts);
    rd_kafka_topic_partition_list_t *paused = rd_kafka_topic_partition_list_new(parts->cnt);
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (tps == NULL || paused == NULL) {
        XDCR_LOG(k->lg, XDCR_LOG_ERROR, "out of memory in the rebalance callback");
        goto out;
    }
    k->on_assign(k->ctx, tps, (size_t)parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *e = &parts->elems[i];

        if (add_part(k, e->topic, e->partition) != 0)
            XDCR_LOG(k->lg, XDCR_LOG_ERROR, "out of memory creating a partition queue");
        if (tps[i].offset != CONS_KAFKA_OFFSET_NONE) {
            e->offset = tps[i].offset;
        } else {
            e->offset = RD_KAFKA_OFFSET_INVALID;
            tps[i].pause = true;
        }
        if (tps[i].pause)
            rd_kafka_topic_partition_list_add(paused, e->topic, e->partition);
    }
    if (coop)
        error = rd_kafka_incremental_assign(k->rk, parts);
    else
        rc = rd_kafka_assign(k->rk, parts);
    if (error != NULL) {
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR, "could not assign partitions", "error",
                    rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR, "could not assign partitions", "error",
                    rd_kafka_err2str(rc));
    }
    if (paused->cnt > 0)
        (void)rd_kafka_pause_partitions(k->rk, paused);
    for (int i = 0; i < paused->cnt; i++) {
        kpart_t *p = find_part(k, paused->elems[i].topic, paused->elems[i].partition);

        if (p != NULL)
            p->paused = true;
    }
out:
    if (paused != NULL)
        rd_kafka_topic_partition_list_destroy(paused);
    free(tps);
}

static void do_revoke(cons_kafka_t *k, rd_kafka_topic_partition_list_t *parts, bool coop)
{
    cons_tp_t *tps = to_tps(parts);

    if (tps != NULL)
        k->on_revoke(k->ctx, tps, (size_t)parts->cnt);
    free(tps);
    for (int i = 0; i < parts->cnt; i++)
        remove_part(k, parts->elems[i].topic, parts->elems[i].partition);
    if (coop) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(k->rk, parts);

        if (error != NULL)
            rd_kafka_error_destroy(error);
    } else {
        (void)rd_kafka_assign(k->rk, NULL);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cons_kafka_t *k = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        do_assign(k, parts, coop);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        do_revoke(k, parts, coop);
    } else {
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR, "rebalance failed", "error", rd_kafka_err2str(err));
        do_revoke(k, parts, false);
    }
}

/* ---- callbacks ------------------------------------------------------------------------------- */

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    cons_kafka_t *k = opaque;

    (void)rk;
    XDCR_LOG_KV(k->lg, code == RD_KAFKA_RESP_ERR__FATAL ? XDCR_LOG_ERROR : XDCR_LOG_WARN,
                "kafka error", "error", rd_kafka_err2name((rd_kafka_resp_err_t)code), "reason",
                reason);
    snprintf(k->last_error, sizeof(k->last_error), "kafka: %s: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        k->brokers_up = 0;
}

/* Statistics (served by our poll, on the loop's thread): count the brokers that are UP. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    cons_kafka_t *k = opaque;
    json_t *root = json_loadb(json, json_len, 0, NULL);
    json_t *brokers = root != NULL ? json_object_get(root, "brokers") : NULL;
    const char *name;
    json_t *b;
    int up = 0;

    (void)rk;
    if (!json_is_object(brokers)) {
        json_decref(root);
        return 0;
    }
    json_object_foreach(brokers, name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));

        /* bootstrap entries (nodeid -1) only connect; the cluster's brokers do the work */
        if (json_integer_value(json_object_get(b, "nodeid")) >= 0 && state != NULL &&
            strcmp(state, "UP") == 0)
            up++;
    }
    k->brokers_up = up;
    json_decref(root);
    return 0; /* librdkafka frees json */
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cons_kafka_t *k = rd_kafka_opaque(rk);

    if (k == NULL)
        return;
    if (level <= 3)
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR, "librdkafka", "facility", fac, "detail", buf);
    else if (level <= 4)
        XDCR_LOG_KV(k->lg, XDCR_LOG_WARN, "librdkafka", "facility", fac, "detail", buf);
    else
        XDCR_LOG_KV(k->lg, XDCR_LOG_DEBUG, "librdkafka", "facility", fac, "detail", buf);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    cons_kafka_t *k = opaque;

    (void)rk;
    (void)offsets;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        XDCR_LOG_KV(k->lg, XDCR_LOG_DEBUG, "could not commit offsets to Kafka (informational only)",
                    "error", rd_kafka_err2str(err));
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void kafka_close(cons_source_t *s)
{
    cons_kafka_t *k = (cons_kafka_t *)s;

    if (k == NULL || k->rk == NULL || k->closed)
        return;
    k->closed = true;
    (void)rd_kafka_consumer_close(k->rk);
}

static void kafka_free(cons_source_t *s)
{
    cons_kafka_t *k = (cons_kafka_t *)s;

    if (k == NULL)
        return;
    kafka_close(s);
    for (size_t i = 0; i < k->nparts; i++) {
        rd_kafka_queue_destroy(k->parts[i].q);
        free(k->parts[i].topic);
    }
    free(k->parts);
    for (size_t i = 0; i < k->ntopics; i++)
        free(k->topics[i]);
    free(k->topics);
    if (k->cq != NULL)
        rd_kafka_queue_destroy(k->cq);
    if (k->rk != NULL)
        rd_kafka_destroy(k->rk);
    for (int i = 0; i < 2; i++)
        if (k->wake[i] >= 0)
            close(k->wake[i]);
    free(k);
}

/* Static assignment: remember the topics; kafka_poll() assigns their partitions. */
static int static_subscribe(cons_kafka_t *k, char *const *topics, size_t n, xdcr_error_t *err)
{
    k->topics = calloc(n > 0 ? n : 1, sizeof(*k->topics));
    if (k->topics == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    for (size_t i = 0; i < n; i++) {
        k->topics[i] = strdup(topics[i]);
        if (k->topics[i] == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        k->ntopics++;
    }
    k->next_meta_ms = 0;
    XDCR_LOG(k->lg, XDCR_LOG_INFO,
             "static assignment: every partition of the origins' topics, no consumer group");
    return 0;
}

/*
 * One topic's partitions that are not assigned yet go into add. 1 when the topic has none
 * (it does not exist yet: the forwarder creates it), 0 when it has, -1 when the cluster did
 * not answer (why in errbuf).
 */
static int static_topic_parts(cons_kafka_t *k, const char *topic,
                              rd_kafka_topic_partition_list_t *add, char *errbuf, size_t len)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rc;
    int found = 0;

    if (rkt == NULL) {
        snprintf(errbuf, len, "%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    rc = rd_kafka_metadata(k->rk, 0, rkt, &md, META_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errbuf, len, "%s: %s", topic, rd_kafka_err2str(rc));
        return -1;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];

        if (strcmp(mt->topic, topic) != 0 || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        for (int i = 0; i < mt->partition_cnt; i++) {
            found++;
            if (find_part(k, topic, mt->partitions[i].id) == NULL)
                rd_kafka_topic_partition_list_add(add, topic, mt->partitions[i].id);
        }
    }
    rd_kafka_metadata_destroy(md);
    return found > 0 ? 0 : 1;
}

/* Static assignment: assign the partitions of our topics that are new since the last look. */
static void static_refresh(cons_kafka_t *k, int64_t now_ms)
{
    rd_kafka_topic_partition_list_t *add = rd_kafka_topic_partition_list_new(4);
    char errbuf[256] = "";
    bool missing = false, failed = false;

    if (add == NULL) {
        k->next_meta_ms = now_ms + META_RETRY_MS;
        return;
    }
    for (size_t i = 0; i < k->ntopics; i++) {
        int rc = static_topic_parts(k, k->topics[i], add, errbuf, sizeof(errbuf));

        failed |= rc < 0;
        missing |= rc > 0;
    }
    if (failed && !k->meta_failing)
        XDCR_LOG_KV(k->lg, XDCR_LOG_WARN,
                    "could not read the topics' partitions from Kafka; trying again", "error",
                    errbuf);
    else if (!failed && k->meta_failing)
        XDCR_LOG(k->lg, XDCR_LOG_INFO, "read the topics' partitions from Kafka again");
    k->meta_failing = failed;
    if (add->cnt > 0)
        do_assign(k, add, true); /* incremental: the partitions assigned before stay as they are */
    rd_kafka_topic_partition_list_destroy(add);
    /* every second only while there is nothing to apply from one of the topics: each look
       blocks the loop (up to META_TIMEOUT_MS when the cluster does not answer) */
    k->next_meta_ms =
        now_ms + (missing || (failed && k->nparts == 0) ? META_RETRY_MS : META_INTERVAL_MS);
}

static int kafka_subscribe(cons_source_t *s, char *const *topics, size_t n, xdcr_error_t *err)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t rc;

    if (k->static_assign)
        return static_subscribe(k, topics, n, err);
    l = rd_kafka_topic_partition_list_new((int)n);
    if (l == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return xdcr_error_set(err, XDCR_EKAFKA, false, "could not subscribe: %s",
                              rd_kafka_err2str(rc));
    return 0;
}

static void kafka_poll(cons_source_t *s, int timeout_ms)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_message_t *m;

    if (k->static_assign && k->ntopics > 0) {
        int64_t now = xdcr_mono_ms();

        if (now >= k->next_meta_ms)
            static_refresh(k, now);
    }
    /* the main queue: error and statistics callbacks */
    (void)rd_kafka_poll(k->rk, 0);
    m = rd_kafka_consumer_poll(k->rk, 0);
    if (m == NULL && timeout_ms > 0 && k->wake[0] >= 0) {
        /* sleep until a partition queue or the consumer queue gets something, or the timeout
           (partition queues are read directly, so the consumer queue alone would not wake us) */
        struct pollfd pfd = {.fd = k->wake[0], .events = POLLIN};
        char buf[64];

        (void)poll(&pfd, 1, timeout_ms);
        while (read(k->wake[0], buf, sizeof(buf)) > 0) {
        }
        m = rd_kafka_consumer_poll(k->rk, 0);
    }

    if (m == NULL)
        return;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        XDCR_LOG_KV(k->lg, XDCR_LOG_WARN, "kafka consumer error", "error",
                    rd_kafka_err2name(m->err), "detail", rd_kafka_message_errstr(m), "topic",
                    m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "");
    } else {
        /* cannot happen: every assigned partition has its own queue */
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR,
                    "message on the consumer queue ignored; it will be "
                    "read again from its partition",
                    "topic", rd_kafka_topic_name(m->rkt));
    }
    rd_kafka_message_destroy(m);
}

static bool kafka_has_data(cons_source_t *s, const char *topic, int32_t partition)
{
    kpart_t *p = find_part((cons_kafka_t *)s, topic, partition);

    return p != NULL && rd_kafka_queue_length(p->q) > 0;
}

const char *const cons_hdr_names[CONS_HDR_N] = {XDCR_HDR_ORIGIN, XDCR_HDR_SEQ, XDCR_HDR_FORMAT,
                                                XDCR_HDR_CRC, XDCR_HDR_TYPE};

static void fill_headers(rd_kafka_message_t *rkm, cons_kmsg_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL)
        return;
    for (int i = 0; i < CONS_HDR_N; i++) {
        const void *v = NULL;
        size_t len = 0;

        /* the last value wins, as in every other Kafka client */
        if (rd_kafka_header_get_last(hdrs, cons_hdr_names[i], &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            v != NULL) {
            m->hdr[i] = v;
            m->hdr_len[i] = len;
        }
    }
}

/*
 * librdkafka 2.0 stops fetching a partition while its prefetch queue is over
 * queued.min.messages or queued.max.messages.kbytes, and looks again only when the leader's
 * broker thread wakes up: at its next request or response, or a second later (librdkafka 2.1
 * added fetch.queue.backoff.ms for this). A consumer catching up drains the queue and would
 * then wait up to that second with the broker holding more. So when the queue is empty after
 * it came near those limits, while the high watermark of the last fetch lies past what was
 * taken, ask the leader for the watermarks: the request wakes its broker thread, which fetches
 * at once. While that brings nothing (the end of the log is a transaction marker, say) the
 * interval doubles, up to the second after which librdkafka looks by itself anyway. Only after
 * a full queue: in steady state the requests would only get in the fetches' way (W2 with
 * linger.ms 3: p99 lag 180-830 ms with them, 9-10 ms without).
 */
static bool near_prefetch_limit(const cons_kafka_t *k, const kpart_t *p)
{
    return p->peak_queued * 10 >= k->prefetch_msgs * 8 ||
           p->peak_queued * p->avg_len * 10 >= k->prefetch_bytes * 8;
}

static void wake_fetcher(cons_kafka_t *k, kpart_t *p)
{
    int64_t low = -1, high = -1, now;

    if (p->paused || p->consumed_next < 0 || !near_prefetch_limit(k, p) ||
        rd_kafka_get_watermark_offsets(k->rk, p->topic, p->partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high <= p->consumed_next)
        return;
    now = xdcr_mono_ms();
    if (now < p->next_wake_ms)
        return;
    p->next_wake_ms = now + p->wake_interval_ms;
    p->wake_interval_ms =
        p->wake_interval_ms * 2 > WAKE_MAX_MS ? WAKE_MAX_MS : p->wake_interval_ms * 2;
    (void)rd_kafka_query_watermark_offsets(k->rk, p->topic, p->partition, &low, &high,
                                           WAKE_TIMEOUT_MS);
}

static int kafka_consume(cons_source_t *s, const char *topic, int32_t partition, cons_kmsg_t *m)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    kpart_t *p = find_part(k, topic, partition);
    rd_kafka_message_t *rkm;

    memset(m, 0, sizeof(*m));
    if (p == NULL)
        return XDCR_ENOTFOUND;
    rkm = rd_kafka_consume_queue(p->q, 0);
    if (rkm == NULL) {
        wake_fetcher(k, p);
        p->found_empty = true;
        return 0;
    }
    m->rkm_ = rkm;
    m->topic = p->topic;
    m->partition = rkm->partition >= 0 ? rkm->partition : partition;
    m->offset = rkm->offset;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            memset(m, 0, sizeof(*m));
            return 0;
        }
        m->err = (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                  rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                     ? XDCR_EGAP
                     : XDCR_EKAFKA;
        snprintf(m->errstr, sizeof(m->errstr), "%s: %s", rd_kafka_err2name(rkm->err),
                 rd_kafka_message_errstr(rkm));
        return 1;
    }
    {
        size_t queued = rd_kafka_queue_length(p->q) + 1; /* with this one */

        if (p->found_empty) { /* a new fill */
            p->peak_queued = 0;
            p->found_empty = false;
        }
        if (queued > p->peak_queued)
            p->peak_queued = queued;
        p->avg_len = p->avg_len == 0 ? rkm->len : (p->avg_len * 15 + rkm->len) / 16;
    }
    p->consumed_next = rkm->offset + 1;
    p->wake_interval_ms = WAKE_MIN_MS;
    m->payload = rkm->payload;
    m->len = rkm->len;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
    fill_headers(rkm, m);
    if (k->brokers_up == 0)
        k->brokers_up = -1; /* a message arrived: some broker is back (statistics may be off) */
    return 1;
}

static void kafka_release(cons_source_t *s, cons_kmsg_t *m)
{
    (void)s;
    if (m == NULL || m->rkm_ == NULL)
        return;
    rd_kafka_message_destroy(m->rkm_);
    memset(m, 0, sizeof(*m));
}

static int kafka_seek(cons_source_t *s, const char *topic, int32_t partition, int64_t offset,
                      xdcr_error_t *err)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;
    int rc = 0;

    if (l == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    error = rd_kafka_seek_partitions(k->rk, l, 10000);
    if (error != NULL) {
        rc = xdcr_error_set(err, XDCR_EKAFKA, true, "could not seek %s/%d to offset %lld: %s",
                            topic, (int)partition, (long long)offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (l->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc =
            xdcr_error_set(err, XDCR_EKAFKA, true, "could not seek %s/%d to offset %lld: %s", topic,
                           (int)partition, (long long)offset, rd_kafka_err2str(l->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (rc == 0) {
        kpart_t *p = find_part(k, topic, partition);

        if (p != NULL)
            p->consumed_next = -1; /* wake_fetcher() waits for the first message from there */
    }
    return rc;
}

static int kafka_pause(cons_source_t *s, const char *topic, int32_t partition, bool pause,
                       xdcr_error_t *err)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t rc;

    if (l == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rc = pause ? rd_kafka_pause_partitions(k->rk, l) : rd_kafka_resume_partitions(k->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kpart_t *p = find_part(k, topic, partition);

        if (p != NULL) {
            p->paused = pause;
            p->next_query_ms = 0;
        }
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return xdcr_error_set(err, XDCR_EKAFKA, true, "could not %s %s/%d: %s",
                              pause ? "pause" : "resume", topic, (int)partition,
                              rd_kafka_err2str(rc));
    return 0;
}

static int kafka_watermarks(cons_source_t *s, const char *topic, int32_t partition, int timeout_ms,
                            int64_t *low, int64_t *high, xdcr_error_t *err)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_resp_err_t rc =
        rd_kafka_query_watermark_offsets(k->rk, topic, partition, low, high, timeout_ms);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return xdcr_error_set(err, XDCR_EKAFKA, true, "could not read the watermarks of %s/%d: %s",
                              topic, (int)partition, rd_kafka_err2str(rc));
    return 0;
}

static void kafka_commit(cons_source_t *s, const char *topic, int32_t partition,
                         int64_t next_offset, bool async)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t rc;

    if (l == NULL)
        return;
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
    rc = rd_kafka_commit(k->rk, l, async ? 1 : 0);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        XDCR_LOG_KV(k->lg, XDCR_LOG_DEBUG, "could not commit offsets to Kafka", "error",
                    rd_kafka_err2str(rc));
    rd_kafka_topic_partition_list_destroy(l);
}

static int64_t kafka_high_watermark(cons_source_t *s, const char *topic, int32_t partition,
                                    int64_t now_ms)
{
    cons_kafka_t *k = (cons_kafka_t *)s;
    kpart_t *p = find_part(k, topic, partition);
    int64_t low = -1, high = -1;
    rd_kafka_resp_err_t rc;

    if (p == NULL)
        return -1;
    if (!p->paused) {
        /* refreshed by every fetch response (the last stable offset under read_committed) */
        rc = rd_kafka_get_watermark_offsets(k->rk, topic, partition, &low, &high);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            return high;
    }
    /* paused (halted) or nothing fetched yet: ask the leader, at most once a second */
    if (now_ms >= p->next_query_ms) {
        rc = rd_kafka_query_watermark_offsets(k->rk, topic, partition, &low, &high, 250);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->high = high;
            p->next_query_ms = now_ms + 1000;
        } else {
            p->next_query_ms = now_ms + 10000; /* the cluster is not answering: not often */
        }
    }
    return p->high;
}

static bool kafka_done(const cons_source_t *s)
{
    (void)s;
    return false; /* a subscription (or a static assignment) never ends */
}

static bool kafka_is_up(const cons_source_t *s)
{
    return ((const cons_kafka_t *)s)->brokers_up != 0;
}

static const char *kafka_last_error(const cons_source_t *s)
{
    return ((const cons_kafka_t *)s)->last_error;
}

static const cons_source_ops_t kafka_ops = {
    .close = kafka_close,
    .free = kafka_free,
    .subscribe = kafka_subscribe,
    .poll = kafka_poll,
    .has_data = kafka_has_data,
    .consume = kafka_consume,
    .release = kafka_release,
    .seek = kafka_seek,
    .pause = kafka_pause,
    .watermarks = kafka_watermarks,
    .high_watermark = kafka_high_watermark,
    .commit = kafka_commit,
    .done = kafka_done,
    .is_up = kafka_is_up,
    .last_error = kafka_last_error,
};

/* ---- construction ---------------------------------------------------------------------------- */

/* A numeric setting of the client as librdkafka holds it, or dflt. */
static size_t conf_size(rd_kafka_t *rk, const char *name, size_t dflt)
{
    char buf[32];
    size_t len = sizeof(buf);
    char *end;
    unsigned long long v;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &len) != RD_KAFKA_CONF_OK)
        return dflt;
    v = strtoull(buf, &end, 10);
    return end != buf && *end == '\0' ? (size_t)v : dflt;
}

cons_source_t *cons_kafka_new(const xdcr_kv_list_t *kafka, const char *group_id, bool static_assign,
                              cons_assign_fn on_assign, cons_revoke_fn on_revoke, void *ctx,
                              const xdcr_log_t *lg, xdcr_error_t *err)
{
    cons_kafka_t *k = calloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = NULL;
    char errbuf[512];

    if (k == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    k->base.ops = &kafka_ops;
    k->lg = lg;
    k->on_assign = on_assign;
    k->on_revoke = on_revoke;
    k->ctx = ctx;
    k->static_assign = static_assign;
    k->brokers_up = -1;
    k->wake[0] = k->wake[1] = -1;
    if (pipe(k->wake) != 0) {
        k->wake[0] = k->wake[1] = -1;
        xdcr_error_set(err, XDCR_EIO, false, "could not create a pipe: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        (void)fcntl(k->wake[i], F_SETFL, fcntl(k->wake[i], F_GETFL) | O_NONBLOCK);
        (void)fcntl(k->wake[i], F_SETFD, FD_CLOEXEC);
    }
    conf = build_conf(kafka, group_id, err);
    if (conf == NULL)
        goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, sizeof(errbuf));
    if (k->rk == NULL) {
        xdcr_error_set(err, XDCR_ECONFIG, false, "could not create the Kafka consumer: %s", errbuf);
        goto fail; /* conf is still ours on failure */
    }
    conf = NULL;
    k->prefetch_msgs = conf_size(k->rk, "queued.min.messages", 100000);
    k->prefetch_bytes = conf_size(k->rk, "queued.max.messages.kbytes", 65536) * 1024;
    k->cq = rd_kafka_queue_get_consumer(k->rk);
    if (k->cq != NULL)
        rd_kafka_queue_io_event_enable(k->cq, k->wake[1], "c", 1);
    return &k->base;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    kafka_free(&k->base);
    return NULL;
}
