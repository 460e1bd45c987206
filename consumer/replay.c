/*
 * replay.c - a recorded message stream as the consumer's message source (see replay.h).
 */
#include "replay.h"

#include "xdcr/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct rentry {
    int64_t offset;
    size_t pos; /* of the record in the file */
} rentry_t;

typedef struct rpart {
    char *topic;
    int32_t partition;
    rentry_t *e; /* by increasing offset */
    size_t n, cap;
    size_t next;     /* index of the next record to hand out */
    bool subscribed; /* its topic is one of ours */
    bool assigned;
    bool paused;
} rpart_t;

typedef struct cons_replay {
    cons_source_t base; /* first: a cons_replay_t is a cons_source_t */
    char *path;
    uint8_t *data; /* the mapping */
    size_t len;
    const xdcr_log_t *lg;
    cons_assign_fn on_assign;
    cons_revoke_fn on_revoke;
    void *ctx;
    rpart_t *parts;
    size_t nparts;
    bool subscribed, assigned, closed;
    size_t released; /* the mapping before this is given back to the page cache */
} cons_replay_t;

/* give back what every partition has read past, so the file does not sit in our RSS */
#define RELEASE_STEP ((size_t)8 << 20)

static rpart_t *find(const cons_replay_t *r, const char *topic, size_t topic_len, int32_t partition)
{
    for (size_t i = 0; i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];

        if (p->partition == partition && strlen(p->topic) == topic_len &&
            memcmp(p->topic, topic, topic_len) == 0)
            return p;
    }
    return NULL;
}

static rpart_t *find_sz(const cons_replay_t *r, const char *topic, int32_t partition)
{
    return find(r, topic, strlen(topic), partition);
}

/* Index one decoded record; err on an offset that does not increase within its partition. */
static int index_record(cons_replay_t *r, const xdcr_record_t *rec, size_t pos, size_t nrec,
                        xdcr_error_t *err)
{
    rpart_t *p = find(r, rec->topic, rec->topic_len, rec->partition);

    if (p == NULL) {
        rpart_t *grown = realloc(r->parts, (r->nparts + 1) * sizeof(*grown));

        if (grown == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        r->parts = grown;
        p = &r->parts[r->nparts];
        memset(p, 0, sizeof(*p));
        p->topic = strndup(rec->topic, rec->topic_len);
        if (p->topic == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        p->partition = rec->partition;
        r->nparts++;
    }
    if (p->n > 0 && rec->offset <= p->e[p->n - 1].offset)
        return xdcr_error_set(
            err, XDCR_ECONFIG, false,
            "%s: record %zu (byte %zu): offset %" PRId64 " of %s/%d does not "
            "follow offset %" PRId64 " (a recording keeps each partition in order)",
            r->path, nrec, pos, rec->offset, p->topic, (int)p->partition, p->e[p->n - 1].offset);
    if (p->n == p->cap) {
        size_t cap = p->cap == 0 ? 256 : p->cap * 2;
        rentry_t *grown = realloc(p->e, cap * sizeof(*grown));

        if (grown == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        p->e = grown;
        p->cap = cap;
    }
    p->e[p->n].offset = rec->offset;
    p->e[p->n].pos = pos;
    p->n++;
    return 0;
}

/*
 * Map the file and check every record before anything is handed out. A file that cannot be used
 * is a configuration error (exit status 2): restarting would not help.
 */
static int load(cons_replay_t *r, xdcr_error_t *err)
{
    struct stat st;
    size_t pos = XDCR_RECORD_MAGIC_LEN, nrec = 0;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return xdcr_error_set(err, XDCR_ECONFIG, false, "cannot open replay.file %s: %s", r->path,
                              strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return xdcr_error_set(err, XDCR_ECONFIG, false, "replay.file %s is not a regular file",
                              r->path);
    }
    r->len = (size_t)st.st_size;
    if (r->len > 0) {
        void *m = mmap(NULL, r->len, PROT_READ, MAP_PRIVATE, fd, 0);

        if (m == MAP_FAILED) {
            close(fd);
            return xdcr_error_set(err, XDCR_ECONFIG, false, "cannot map replay.file %s: %s",
                                  r->path, strerror(errno));
        }
        (void)madvise(m, r->len, MADV_SEQUENTIAL);
        r->data = m;
    }
    close(fd);
    if (!xdcr_record_is_stream(r->data, r->len))
        return xdcr_error_set(err, XDCR_ECONFIG, false,
                              "%s is not a recorded message stream (no " XDCR_RECORD_MAGIC
                              " header; record one with `xdcr tail --record`)",
                              r->path);
    while (pos < r->len) {
        xdcr_record_t rec;
        xdcr_error_t e;
        int64_t n = xdcr_record_decode(r->data + pos, r->len - pos, &rec, &e);

        if (n < 0)
            return xdcr_error_set(err, XDCR_ECONFIG, false,
                                  "%s: record %zu (byte %zu): %s; nothing was applied", r->path,
                                  nrec + 1, pos, e.message);
        nrec++;
        if (index_record(r, &rec, pos, nrec, err) != 0)
            return err->code;
        pos += (size_t)n;
        if (pos - r->released >= RELEASE_STEP) {
            /* checked: out of our RSS (it stays in the page cache for the apply) */
            size_t upto = pos - pos % (size_t)sysconf(_SC_PAGESIZE);

            (void)madvise(r->data + r->released, upto - r->released, MADV_DONTNEED);
            r->released = upto;
        }
    }
    if (r->len > 0)
        (void)madvise(r->data, r->len, MADV_DONTNEED);
    r->released = 0;
    {
        char recs[24], parts[24];

        snprintf(recs, sizeof(recs), "%zu", nrec);
        snprintf(parts, sizeof(parts), "%zu", r->nparts);
        XDCR_LOG_KV(r->lg, XDCR_LOG_INFO, "replay file checked", "file", r->path, "records", recs,
                    "partitions", parts);
    }
    return 0;
}

static void replay_close(cons_source_t *s)
{
    cons_replay_t *r = (cons_replay_t *)s;
    cons_tp_t *tps;
    size_t n = 0;

    if (r == NULL || r->closed)
        return;
    r->closed = true;
    if (!r->assigned)
        return;
    tps = calloc(r->nparts > 0 ? r->nparts : 1, sizeof(*tps));
    if (tps == NULL)
        return;
    for (size_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].assigned)
            continue;
        tps[n].topic = r->parts[i].topic;
        tps[n].partition = r->parts[i].partition;
        tps[n].offset = CONS_KAFKA_OFFSET_NONE;
        n++;
    }
    r->on_revoke(r->ctx, tps, n);
    for (size_t i = 0; i < r->nparts; i++)
        r->parts[i].assigned = false;
    free(tps);
}

static void replay_free(cons_source_t *s)
{
    cons_replay_t *r = (cons_replay_t *)s;

    if (r == NULL)
        return;
    replay_close(s);
    for (size_t i = 0; i < r->nparts; i++) {
        free(r->parts[i].topic);
        free(r->parts[i].e);
    }
    free(r->parts);
    if (r->data != NULL)
        munmap(r->data, r->len);
    free(r->path);
    free(r);
}

static int replay_subscribe(cons_source_t *s, char *const *topics, size_t n, xdcr_error_t *err)
{
    cons_replay_t *r = (cons_replay_t *)s;
    size_t theirs = 0, ours = 0;

    (void)err;
    for (size_t i = 0; i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];

        for (size_t t = 0; t < n && !p->subscribed; t++)
            p->subscribed = strcmp(p->topic, topics[t]) == 0;
        if (p->subscribed)
            ours += p->n;
        else
            theirs += p->n;
    }
    if (theirs > 0) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%zu", theirs);
        XDCR_LOG_KV(r->lg, XDCR_LOG_WARN,
                    "the replay file holds messages of topics this consumer does not apply "
                    "(origins); they are left alone",
                    "file", r->path, "messages", buf);
    }
    {
        char buf[24];

        snprintf(buf, sizeof(buf), "%zu", ours);
        XDCR_LOG_KV(r->lg, XDCR_LOG_INFO, "replaying", "file", r->path, "messages", buf);
    }
    r->subscribed = true;
    return 0;
}

static int replay_seek(cons_source_t *s, const char *topic, int32_t partition, int64_t offset,
                       xdcr_error_t *err);
static int replay_pause(cons_source_t *s, const char *topic, int32_t partition, bool pause,
                        xdcr_error_t *err);
static bool replay_done(const cons_source_t *s);

/*
 * The first poll after subscribe assigns every subscribed partition of the file; later ones
 * only keep a caller that waits for a retry from spinning (the file has no news).
 */
static void replay_poll(cons_source_t *s, int timeout_ms)
{
    cons_replay_t *r = (cons_replay_t *)s;
    cons_tp_t *tps;
    size_t n = 0;
    xdcr_error_t e;

    if (!r->subscribed || r->assigned || r->closed) {
        if (timeout_ms > 0 && !replay_done(s)) {
            struct timespec ts = {0, (long)(timeout_ms < 50 ? timeout_ms : 50) * 1000000L};

            (void)nanosleep(&ts, NULL);
        }
        return;
    }
    r->assigned = true;
    tps = calloc(r->nparts > 0 ? r->nparts : 1, sizeof(*tps));
    if (tps == NULL) {
        XDCR_LOG(r->lg, XDCR_LOG_ERROR, "out of memory assigning the replay partitions");
        return;
    }
    for (size_t i = 0; i < r->nparts; i++) {
        if (!r->parts[i].subscribed)
            continue;
        r->parts[i].assigned = true;
        tps[n].topic = r->parts[i].topic;
        tps[n].partition = r->parts[i].partition;
        tps[n].offset = CONS_KAFKA_OFFSET_NONE;
        n++;
    }
    if (n > 0)
        r->on_assign(r->ctx, tps, n);
    for (size_t i = 0; i < n; i++) {
        (void)replay_pause(s, tps[i].topic, tps[i].partition, true, &e);
        if (tps[i].offset != CONS_KAFKA_OFFSET_NONE &&
            replay_seek(s, tps[i].topic, tps[i].partition, tps[i].offset, &e) == 0)
            (void)replay_pause(s, tps[i].topic, tps[i].partition, tps[i].pause, &e);
    }
    free(tps);
}

static bool replay_has_data(cons_source_t *s, const char *topic, int32_t partition)
{
    rpart_t *p = find_sz((cons_replay_t *)s, topic, partition);

    return p != NULL && p->assigned && !p->paused && p->next < p->n;
}

/*
 * Drop the pages every partition has read past (MADV_DONTNEED on a read-only private file
 * mapping: a later access, e.g. a seek back after a failed batch, reads them from the file
 * again). The message handed out last stays mapped.
 */
static void release_read(cons_replay_t *r)
{
    size_t low = r->len, page = (size_t)sysconf(_SC_PAGESIZE);

    for (size_t i = 0; i < r->nparts; i++) {
        const rpart_t *p = &r->parts[i];

        if (p->assigned && p->next < p->n && p->next > 0 && p->e[p->next - 1].pos < low)
            low = p->e[p->next - 1].pos;
        else if (p->assigned && p->next == 0 && p->n > 0 && p->e[0].pos < low)
            low = p->e[0].pos;
    }
    if (low == r->len || low < r->released + RELEASE_STEP)
        return;
    low -= low % page;
    if (low > r->released && madvise(r->data + r->released, low - r->released, MADV_DONTNEED) == 0)
        r->released = low;
}

static int replay_consume(cons_source_t *s, const char *topic, int32_t partition, cons_kmsg_t *m)
{
    cons_replay_t *r = (cons_replay_t *)s;
    rpart_t *p = find_sz(r, topic, partition);
    xdcr_record_t rec;
    xdcr_error_t e;

    memset(m, 0, sizeof(*m));
    if (p == NULL || !p->assigned)
        return XDCR_ENOTFOUND;
    if (p->paused || p->next >= p->n)
        return 0;
    /* checked when the file was loaded: cannot fail here */
    if (xdcr_record_decode(r->data + p->e[p->next].pos, r->len - p->e[p->next].pos, &rec, &e) < 0)
        return 0;
    p->next++;
    release_read(r);
    m->topic = p->topic;
    m->partition = p->partition;
    m->offset = rec.offset;
    m->timestamp_ms = -1;
    m->payload = rec.payload;
    m->len = rec.payload_len;
    for (size_t h = 0; h < rec.nheaders; h++) {
        for (int i = 0; i < CONS_HDR_N; i++) {
            /* the last value wins, as with Kafka */
            if (rec.headers[h].value != NULL &&
                strlen(cons_hdr_names[i]) == rec.headers[h].name_len &&
                memcmp(cons_hdr_names[i], rec.headers[h].name, rec.headers[h].name_len) == 0) {
                m->hdr[i] = rec.headers[h].value;
                m->hdr_len[i] = rec.headers[h].value_len;
            }
        }
    }
    return 1;
}

/* messages point into the mapping, which lives as long as the source */
static void replay_release(cons_source_t *s, cons_kmsg_t *m)
{
    (void)s;
    if (m != NULL)
        memset(m, 0, sizeof(*m));
}

static int replay_seek(cons_source_t *s, const char *topic, int32_t partition, int64_t offset,
                       xdcr_error_t *err)
{
    rpart_t *p = find_sz((cons_replay_t *)s, topic, partition);
    size_t lo = 0, hi;

    if (p == NULL)
        return xdcr_error_set(err, XDCR_ENOTFOUND, false, "%s/%d is not in the replay file", topic,
                              (int)partition);
    hi = p->n;
    if (offset == CONS_KAFKA_OFFSET_BEGINNING) {
        p->next = 0;
        return 0;
    }
    if (offset == CONS_KAFKA_OFFSET_END || offset < 0) {
        p->next = p->n;
        return 0;
    }
    /* the first record at or after offset */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (p->e[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    p->next = lo;
    return 0;
}

static int replay_pause(cons_source_t *s, const char *topic, int32_t partition, bool pause,
                        xdcr_error_t *err)
{
    rpart_t *p = find_sz((cons_replay_t *)s, topic, partition);

    if (p == NULL)
        return xdcr_error_set(err, XDCR_ENOTFOUND, false, "%s/%d is not in the replay file", topic,
                              (int)partition);
    p->paused = pause;
    return 0;
}

static int replay_watermarks(cons_source_t *s, const char *topic, int32_t partition, int timeout_ms,
                             int64_t *low, int64_t *high, xdcr_error_t *err)
{
    rpart_t *p = find_sz((cons_replay_t *)s, topic, partition);

    (void)timeout_ms;

    if (p == NULL || p->n == 0)
        return xdcr_error_set(err, XDCR_ENOTFOUND, false, "%s/%d is not in the replay file", topic,
                              (int)partition);
    *low = p->e[0].offset;
    *high = p->e[p->n - 1].offset + 1;
    return 0;
}

static bool replay_done(const cons_source_t *s)
{
    const cons_replay_t *r = (const cons_replay_t *)s;

    if (!r->assigned)
        return false;
    for (size_t i = 0; i < r->nparts; i++) {
        const rpart_t *p = &r->parts[i];

        if (p->assigned && !p->paused && p->next < p->n)
            return false;
    }
    return true;
}

static int64_t replay_high_watermark(cons_source_t *s, const char *topic, int32_t partition,
                                     int64_t now_ms)
{
    int64_t lo, hi;
    xdcr_error_t e;

    (void)now_ms;
    return replay_watermarks(s, topic, partition, 0, &lo, &hi, &e) == 0 ? hi : -1;
}

static void replay_commit(cons_source_t *s, const char *topic, int32_t partition,
                          int64_t next_offset, bool async)
{
    (void)s, (void)topic, (void)partition, (void)next_offset, (void)async; /* nowhere to */
}

static bool replay_is_up(const cons_source_t *s)
{
    (void)s;
    return true;
}

static const char *replay_last_error(const cons_source_t *s)
{
    (void)s;
    return "";
}

static const cons_source_ops_t replay_ops = {
    .close = replay_close,
    .free = replay_free,
    .subscribe = replay_subscribe,
    .poll = replay_poll,
    .has_data = replay_has_data,
    .consume = replay_consume,
    .release = replay_release,
    .seek = replay_seek,
    .pause = replay_pause,
    .watermarks = replay_watermarks,
    .high_watermark = replay_high_watermark,
    .commit = replay_commit,
    .done = replay_done,
    .is_up = replay_is_up,
    .last_error = replay_last_error,
};

cons_source_t *cons_replay_open(const char *path, cons_assign_fn on_assign,
                                cons_revoke_fn on_revoke, void *ctx, const xdcr_log_t *lg,
                                xdcr_error_t *err)
{
    cons_replay_t *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        return NULL;
    }
    r->base.ops = &replay_ops;
    r->lg = lg;
    r->on_assign = on_assign;
    r->on_revoke = on_revoke;
    r->ctx = ctx;
    if (load(r, err) != 0) {
        replay_free(&r->base);
        return NULL;
    }
    return &r->base;
}
