/*
 * kafka_producer.c - the forwarder's librdkafka adapter: configuration pass-through, the
 * idempotent producer, delivery reports and fatal-error detection.
 */
#include "kafka_producer.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fwd_kafka {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    char *topic;
    fwd_delivery_fn fn;
    void *ctx;
    const xdcr_log_t *lg;
    atomic_int brokers_up; /* from error callbacks: ALL_BROKERS_DOWN resets to 0 */
};

/* Defaults that make the producer safe; the user may override everything but these two. */
static const char *const defaults[][2] = {
    {"enable.idempotence", "true"},  {"acks", "all"},
    {"compression.type", "lz4"},     {"linger.ms", "5"},
    {"message.timeout.ms", "60000"}, {"queue.buffering.max.kbytes", "262144"},
    {"client.id", "xdcr-forwarder"}, {"socket.keepalive.enable", "true"},
};

static int conf_setter(void *ctx, const char *key, const char *value, char *errbuf, size_t errlen)
{
    return rd_kafka_conf_set(ctx, key, value, errbuf, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static rd_kafka_conf_t *build_conf(const xdcr_kv_list_t *kafka, xdcr_error_t *err)
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
    if (xdcr_kv_list_apply(kafka, "kafka.", conf_setter, conf, err) != 0)
        goto fail;
    v = xdcr_kv_list_get(kafka, "enable.idempotence");
    if (v != NULL && strcmp(v, "true") != 0) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "kafka.enable.idempotence must stay true: without it a retry can reorder "
                       "or duplicate transactions");
        goto fail;
    }
    v = xdcr_kv_list_get(kafka, "acks");
    if (v != NULL && strcmp(v, "all") != 0 && strcmp(v, "-1") != 0) {
        xdcr_error_set(err, XDCR_ECONFIG, false,
                       "kafka.acks must be all: a change is confirmed to PostgreSQL only when "
                       "every in-sync replica has it");
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int fwd_kafka_check_config(const xdcr_kv_list_t *kafka, xdcr_error_t *err)
{
    rd_kafka_conf_t *conf = build_conf(kafka, err);

    if (conf == NULL)
        return err != NULL ? err->code : XDCR_ECONFIG;
    rd_kafka_conf_destroy(conf);
    return 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    fwd_kafka_t *k = opaque;
    fwd_delivery_t d;

    (void)rk;
    memset(&d, 0, sizeof(d));
    d.ticket = (uint64_t)(uintptr_t)m->_private;
    d.bytes = m->len;
    d.ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (d.ok)
        atomic_store(&k->brokers_up, 1);
    d.offset = m->offset;
    d.partition = m->partition;
    if (!d.ok) {
        d.possibly_persisted = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
        snprintf(d.errstr, sizeof(d.errstr), "%s (%s)", rd_kafka_err2str(m->err),
                 rd_kafka_err2name(m->err));
    }
    k->fn(k->ctx, &d);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    fwd_kafka_t *k = opaque;

    (void)rk;
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&k->brokers_up, 0);
    XDCR_LOG_KV(k->lg, code == RD_KAFKA_RESP_ERR__FATAL ? XDCR_LOG_ERROR : XDCR_LOG_WARN,
                "kafka error", "error", rd_kafka_err2name((rd_kafka_resp_err_t)code), "reason",
                reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fwd_kafka_t *k = rd_kafka_opaque(rk);

    if (k == NULL)
        return;
    if (level <= 3)
        XDCR_LOG_KV(k->lg, XDCR_LOG_ERROR, "librdkafka", "facility", fac, "detail", buf);
    else if (level <= 4)
        XDCR_LOG_KV(k->lg, XDCR_LOG_WARN, "librdkafka", "facility", fac, "detail", buf);
    else
        XDCR_LOG_KV(k->lg, XDCR_LOG_DEBUG, "librdkafka", "facility", fac, "detail", buf);
}

fwd_kafka_t *fwd_kafka_new(const xdcr_kv_list_t *kafka, const char *topic, fwd_delivery_fn fn,
                           void *ctx, const xdcr_log_t *lg, xdcr_error_t *err)
{
    fwd_kafka_t *k = calloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = NULL;
    char errbuf[512];

    if (k == NULL || (k->topic = strdup(topic)) == NULL) {
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        goto fail;
    }
    k->fn = fn;
    k->ctx = ctx;
    k->lg = lg;
    atomic_store(&k->brokers_up, 1);
    conf = build_conf(kafka, err);
    if (conf == NULL)
        goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, sizeof(errbuf));
    if (k->rk == NULL) {
        xdcr_error_set(err, XDCR_ECONFIG, false, "could not create the Kafka producer: %s", errbuf);
        goto fail; /* conf is still ours on failure */
    }
    conf = NULL;
    k->rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    if (k->rkt == NULL) {
        xdcr_error_set(err, XDCR_EKAFKA, false, "could not create topic handle \"%s\": %s", topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    return k;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    fwd_kafka_free(k);
    return NULL;
}

void fwd_kafka_free(fwd_kafka_t *k)
{
    if (k == NULL)
        return;
    if (k->rk != NULL) {
        rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->rk, 0); /* report the purged messages as failed */
    }
    if (k->rkt != NULL)
        rd_kafka_topic_destroy(k->rkt);
    if (k->rk != NULL)
        rd_kafka_destroy(k->rk);
    free(k->topic);
    free(k);
}

int fwd_kafka_produce(fwd_kafka_t *k, const char *key, const void *payload, size_t len,
                      const xdcr_headers_t *h, uint64_t ticket, xdcr_error_t *err)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(5);
    rd_kafka_resp_err_t rc;

    if (hdrs == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    rd_kafka_header_add(hdrs, XDCR_HDR_ORIGIN, -1, h->origin, -1);
    rd_kafka_header_add(hdrs, XDCR_HDR_SEQ, -1, h->seq, -1);
    rd_kafka_header_add(hdrs, XDCR_HDR_FORMAT, -1, h->format, -1);
    rd_kafka_header_add(hdrs, XDCR_HDR_CRC, -1, h->crc, -1);
    rd_kafka_header_add(hdrs, XDCR_HDR_TYPE, -1, h->type, -1);
    rc = rd_kafka_producev(
        k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)(uintptr_t)payload, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)ticket), RD_KAFKA_V_END);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0; /* headers now belong to librdkafka */
    rd_kafka_headers_destroy(hdrs);
    if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return xdcr_error_set(err, XDCR_EFULL, true, "kafka producer queue is full");
    if (rc == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        return xdcr_error_set(err, XDCR_ERANGE, false,
                              "message of %zu bytes is larger than kafka.message.max.bytes: raise "
                              "it (and the topic's max.message.bytes), or lower message.max_bytes "
                              "if it is above",
                              len);
    return xdcr_error_set(err, XDCR_EKAFKA, rc != RD_KAFKA_RESP_ERR__FATAL,
                          "could not produce to \"%s\": %s", k->topic, rd_kafka_err2str(rc));
}

void fwd_kafka_poll(fwd_kafka_t *k, int timeout_ms)
{
    rd_kafka_poll(k->rk, timeout_ms);
}

int fwd_kafka_flush(fwd_kafka_t *k, int timeout_ms)
{
    rd_kafka_flush(k->rk, timeout_ms);
    return rd_kafka_outq_len(k->rk);
}

void fwd_kafka_purge_queued(fwd_kafka_t *k)
{
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE);
}

int fwd_kafka_outq_len(fwd_kafka_t *k)
{
    return rd_kafka_outq_len(k->rk);
}

bool fwd_kafka_is_fatal(fwd_kafka_t *k, xdcr_error_t *err)
{
    char buf[256];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(k->rk, buf, sizeof(buf));

    if (code == RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    xdcr_error_set(err, XDCR_EKAFKA, true, "fatal Kafka producer error %s: %s",
                   rd_kafka_err2name(code), buf);
    return true;
}

bool fwd_kafka_is_connected(fwd_kafka_t *k)
{
    return atomic_load(&k->brokers_up) != 0;
}

int fwd_kafka_high_watermark(fwd_kafka_t *k, int timeout_ms, int64_t *hw, xdcr_error_t *err)
{
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t rc =
        rd_kafka_query_watermark_offsets(k->rk, k->topic, 0, &low, &high, timeout_ms);

    if (rc == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || rc == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        rc == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
        *hw = 0;
        return 0;
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return xdcr_error_set(err, XDCR_EKAFKA, true,
                              "could not read the high watermark of \"%s\": %s", k->topic,
                              rd_kafka_err2str(rc));
    *hw = high;
    return 0;
}
