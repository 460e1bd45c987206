/*
 * dev_broker_commands.c - the control protocol of `xdcr dev-broker`: parses one command line
 * ("broker-down 2", "push-errors Produce NOT_LEADER_OR_FOLLOWER") and applies it to the mock
 * cluster through rdkafka_mock.h. No I/O: the socket server lives in dev_broker.c.
 */
#include "dev_broker.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TOPICS 1000
#define MAX_ARGS 257 /* command name + up to 256 arguments */
#define MAX_RTT_MS 3600000

/* Reply buffer with bounded appends; `truncated` is set instead of overflowing. */
typedef struct reply_buf {
    char *data;
    size_t cap;
    size_t len;
    bool truncated;
} reply_buf_t;

static void reply_append(reply_buf_t *rb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply_append(reply_buf_t *rb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (rb->truncated || rb->len >= rb->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(rb->data + rb->len, rb->cap - rb->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= rb->cap - rb->len) {
        rb->data[rb->len] = '\0';
        rb->truncated = true;
        return;
    }
    rb->len += (size_t)n;
}

int cli_broker_parse_long(const char *s, long min, long max, long *out, const char *what,
                          xdcr_error_t *err)
{
    char *end;
    long v;

    errno = 0;
    if (s == NULL || *s == '\0')
        return xdcr_error_set(err, XDCR_EINVAL, false, "missing %s", what);
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return xdcr_error_set(err, XDCR_EINVAL, false, "invalid %s \"%s\": not an integer", what,
                              s);
    if (v < min || v > max)
        return xdcr_error_set(err, XDCR_ERANGE, false, "invalid %s %ld: must be %ld..%ld", what, v,
                              min, max);
    *out = v;
    return 0;
}

bool cli_broker_is_valid_topic_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CLI_BROKER_MAX_TOPIC_NAME || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int check_topic_name(const char *s, xdcr_error_t *err)
{
    if (!cli_broker_is_valid_topic_name(s))
        return xdcr_error_set(err, XDCR_EINVAL, false,
                              "invalid topic name \"%.64s\": use 1..%d of [a-zA-Z0-9._-]", s,
                              CLI_BROKER_MAX_TOPIC_NAME);
    return 0;
}

/* Kafka protocol request types (ApiKey), as named in the Kafka protocol guide. */
static const struct api_key_name {
    int16_t key;
    const char *name;
} api_key_names[] = {
    {0, "Produce"},
    {1, "Fetch"},
    {2, "ListOffsets"},
    {3, "Metadata"},
    {4, "LeaderAndIsr"},
    {5, "StopReplica"},
    {6, "UpdateMetadata"},
    {7, "ControlledShutdown"},
    {8, "OffsetCommit"},
    {9, "OffsetFetch"},
    {10, "FindCoordinator"},
    {10, "GroupCoordinator"},
    {11, "JoinGroup"},
    {12, "Heartbeat"},
    {13, "LeaveGroup"},
    {14, "SyncGroup"},
    {15, "DescribeGroups"},
    {16, "ListGroups"},
    {17, "SaslHandshake"},
    {18, "ApiVersions"},
    {19, "CreateTopics"},
    {20, "DeleteTopics"},
    {21, "DeleteRecords"},
    {22, "InitProducerId"},
    {23, "OffsetForLeaderEpoch"},
    {24, "AddPartitionsToTxn"},
    {25, "AddOffsetsToTxn"},
    {26, "EndTxn"},
    {27, "WriteTxnMarkers"},
    {28, "TxnOffsetCommit"},
    {29, "DescribeAcls"},
    {30, "CreateAcls"},
    {31, "DeleteAcls"},
    {32, "DescribeConfigs"},
    {33, "AlterConfigs"},
    {34, "AlterReplicaLogDirs"},
    {35, "DescribeLogDirs"},
    {36, "SaslAuthenticate"},
    {37, "CreatePartitions"},
    {38, "CreateDelegationToken"},
    {39, "RenewDelegationToken"},
    {40, "ExpireDelegationToken"},
    {41, "DescribeDelegationToken"},
    {42, "DeleteGroups"},
    {43, "ElectLeaders"},
    {44, "IncrementalAlterConfigs"},
    {45, "AlterPartitionReassignments"},
    {46, "ListPartitionReassignments"},
    {47, "OffsetDelete"},
};

#define N_API_KEY_NAMES (sizeof(api_key_names) / sizeof(api_key_names[0]))
#define MAX_API_KEY 1000

static const char *api_key_name(int16_t key)
{
    for (size_t i = 0; i < N_API_KEY_NAMES; i++)
        if (api_key_names[i].key == key)
            return api_key_names[i].name;
    return "unknown";
}

/* ApiKey by number (0..1000) or by name, case-insensitive, "Request" suffix allowed. */
static int parse_api_key(const char *s, int16_t *out, xdcr_error_t *err)
{
    size_t n = strlen(s);
    long v;

    if (n > 0 && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-')) {
        if (cli_broker_parse_long(s, 0, MAX_API_KEY, &v, "ApiKey", err) != 0)
            return err->code;
        *out = (int16_t)v;
        return 0;
    }
    if (n > 7 && strcasecmp(s + n - 7, "Request") == 0)
        n -= 7;
    for (size_t i = 0; i < N_API_KEY_NAMES; i++) {
        if (strlen(api_key_names[i].name) == n && strncasecmp(api_key_names[i].name, s, n) == 0) {
            *out = api_key_names[i].key;
            return 0;
        }
    }
    return xdcr_error_set(err, XDCR_EINVAL, false,
                          "unknown ApiKey \"%.64s\": use a number or a name like Produce, Fetch, "
                          "Metadata, InitProducerId, OffsetCommit, FindCoordinator",
                          s);
}

/* Kafka (Java) error names that librdkafka spells differently. */
static const struct error_alias {
    const char *name;
    rd_kafka_resp_err_t code;
} error_aliases[] = {
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"CORRUPT_MESSAGE", RD_KAFKA_RESP_ERR_INVALID_MSG},
    {"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
    {"INVALID_FETCH_SIZE", RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE},
    {"MESSAGE_TOO_LARGE", RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE},
    {"GROUP_COORDINATOR_NOT_AVAILABLE", RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    {"NOT_COORDINATOR_FOR_GROUP", RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
    {"GROUP_LOAD_IN_PROGRESS", RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
};

#define N_ERROR_ALIASES (sizeof(error_aliases) / sizeof(error_aliases[0]))

/*
 * Kafka error by number or by name: rd_kafka_err2name() names (NOT_LEADER_FOR_PARTITION,
 * _TRANSPORT), Kafka's own names (NOT_LEADER_OR_FOLLOWER), case-insensitive, with an optional
 * RD_KAFKA_RESP_ERR_ or ERR_ prefix.
 */
static int parse_kafka_error(const char *s, rd_kafka_resp_err_t *out, xdcr_error_t *err)
{
    const struct rd_kafka_err_desc *descs;
    size_t desc_cnt;
    long v;

    rd_kafka_get_err_descs(&descs, &desc_cnt);
    if ((s[0] >= '0' && s[0] <= '9') || s[0] == '-') {
        if (cli_broker_parse_long(s, INT_MIN, INT_MAX, &v, "error code", err) != 0)
            return err->code;
        for (size_t i = 0; i < desc_cnt; i++) {
            if (descs[i].name != NULL && descs[i].code == (int)v) {
                *out = descs[i].code;
                return 0;
            }
        }
        return xdcr_error_set(err, XDCR_EINVAL, false, "unknown Kafka error code %ld", v);
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
        s += 18;
    else if (strncasecmp(s, "ERR_", 4) == 0)
        s += 4;
    for (size_t i = 0; i < desc_cnt; i++) {
        if (descs[i].name != NULL && strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    for (size_t i = 0; i < N_ERROR_ALIASES; i++) {
        if (strcasecmp(error_aliases[i].name, s) == 0) {
            *out = error_aliases[i].code;
            return 0;
        }
    }
    return xdcr_error_set(err, XDCR_EINVAL, false,
                          "unknown Kafka error \"%.64s\": use a number or a name like "
                          "NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, _TRANSPORT",
                          s);
}

/* Broker id 1..N, or -1 / "all" for every broker when allow_all. */
static int parse_broker_id(const cli_broker_t *db, const char *s, bool allow_all, int32_t *out,
                           xdcr_error_t *err)
{
    long v;

    if (allow_all && (strcasecmp(s, "all") == 0 || strcmp(s, "-1") == 0)) {
        *out = -1;
        return 0;
    }
    if (cli_broker_parse_long(s, INT32_MIN, INT32_MAX, &v, "broker id", err) != 0)
        return err->code;
    if (v < 1 || v > db->broker_cnt)
        return xdcr_error_set(err, XDCR_ENOTFOUND, false,
                              "unknown broker id %ld: brokers are 1..%d%s", v, db->broker_cnt,
                              allow_all ? " or all" : "");
    *out = (int32_t)v;
    return 0;
}

static int mock_result(rd_kafka_resp_err_t kerr, const char *what, xdcr_error_t *err)
{
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return xdcr_error_set(err, XDCR_EKAFKA, false, "%s failed: %s: %s", what,
                          rd_kafka_err2name(kerr), rd_kafka_err2str(kerr));
}

static cli_broker_topic_t *find_topic(cli_broker_t *db, const char *name)
{
    for (size_t i = 0; i < db->topic_cnt; i++)
        if (strcmp(db->topics[i].name, name) == 0)
            return &db->topics[i];
    return NULL;
}

int cli_broker_create_topic(cli_broker_t *db, const char *name, int partitions, xdcr_error_t *err)
{
    rd_kafka_resp_err_t kerr;
    cli_broker_topic_t *t;

    if (check_topic_name(name, err) != 0)
        return err->code;
    if (partitions < 1 || partitions > CLI_BROKER_MAX_PARTITIONS)
        return xdcr_error_set(err, XDCR_ERANGE, false,
                              "invalid partition count %d for topic \"%s\": must be 1..%d",
                              partitions, name, CLI_BROKER_MAX_PARTITIONS);
    if (db->topic_cnt >= MAX_TOPICS)
        return xdcr_error_set(err, XDCR_EFULL, false, "too many topics (max %d)", MAX_TOPICS);
    if (db->topic_cnt == db->topic_cap) {
        size_t cap = db->topic_cap == 0 ? 8 : db->topic_cap * 2;
        cli_broker_topic_t *n = realloc(db->topics, cap * sizeof(*n));
        if (n == NULL)
            return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
        db->topics = n;
        db->topic_cap = cap;
    }
    t = &db->topics[db->topic_cnt];
    t->name = strdup(name);
    if (t->name == NULL)
        return xdcr_error_set(err, XDCR_ENOMEM, false, "out of memory");
    kerr = rd_kafka_mock_topic_create(db->mcluster, name, partitions, db->replication_factor);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(t->name);
        t->name = NULL;
        return xdcr_error_set(err, XDCR_EKAFKA, false, "could not create topic \"%s\": %s: %s",
                              name, rd_kafka_err2name(kerr), rd_kafka_err2str(kerr));
    }
    t->partitions = partitions;
    db->topic_cnt++;
    return 0;
}

/* A control command: argv[0] is its name; output goes to `out`, after "ok ". */
typedef int (*control_fn)(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                          xdcr_error_t *err);

static int cmd_ping(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err)
{
    reply_append(out, "pong");
    return 0;
}

static int cmd_help(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err);

static int cmd_info(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err)
{
    const char *sep = "";

    reply_append(out, "bootstrap=%s brokers=", db->bootstraps);
    for (int id = 1; id <= db->broker_cnt; id++)
        reply_append(out, "%s%d", id > 1 ? "," : "", id);
    reply_append(out, " down=");
    for (int id = 1; id <= db->broker_cnt; id++) {
        if (db->down[id]) {
            reply_append(out, "%s%d", sep, id);
            sep = ",";
        }
    }
    reply_append(out, " rtt_ms=");
    for (int id = 1; id <= db->broker_cnt; id++)
        reply_append(out, "%s%d:%d", id > 1 ? "," : "", id, db->rtt_ms[id]);
    reply_append(out, " topics=");
    for (size_t i = 0; i < db->topic_cnt; i++)
        reply_append(out, "%s%s:%d", i > 0 ? "," : "", db->topics[i].name,
                     db->topics[i].partitions);
    return 0;
}

static int set_broker_updown(cli_broker_t *db, const char *arg, bool up, xdcr_error_t *err)
{
    int32_t id;
    rd_kafka_resp_err_t kerr;

    if (parse_broker_id(db, arg, true, &id, err) != 0)
        return err->code;
    kerr = up ? rd_kafka_mock_broker_set_up(db->mcluster, id)
              : rd_kafka_mock_broker_set_down(db->mcluster, id);
    if (mock_result(kerr, up ? "broker-up" : "broker-down", err) != 0)
        return err->code;
    for (int i = 1; i <= db->broker_cnt; i++)
        if (id == -1 || id == i)
            db->down[i] = !up;
    return 0;
}

static int cmd_broker_down(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                           xdcr_error_t *err)
{
    return set_broker_updown(db, argv[1], false, err);
}

static int cmd_broker_up(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                         xdcr_error_t *err)
{
    return set_broker_updown(db, argv[1], true, err);
}

static int cmd_broker_rtt(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                          xdcr_error_t *err)
{
    int32_t id;
    long rtt;

    if (parse_broker_id(db, argv[1], true, &id, err) != 0 ||
        cli_broker_parse_long(argv[2], 0, MAX_RTT_MS, &rtt, "rtt in ms", err) != 0)
        return err->code;
    if (mock_result(rd_kafka_mock_broker_set_rtt(db->mcluster, id, (int)rtt), "broker-rtt", err) !=
        0)
        return err->code;
    for (int i = 1; i <= db->broker_cnt; i++)
        if (id == -1 || id == i)
            db->rtt_ms[i] = (int)rtt;
    return 0;
}

static int cmd_push_errors(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                           xdcr_error_t *err)
{
    rd_kafka_resp_err_t errs[MAX_ARGS];
    int16_t api_key;
    size_t cnt = 0;

    if (parse_api_key(argv[1], &api_key, err) != 0)
        return err->code;
    for (int i = 2; i < argc; i++)
        if (parse_kafka_error(argv[i], &errs[cnt++], err) != 0)
            return err->code;
    rd_kafka_mock_push_request_errors_array(db->mcluster, api_key, cnt, errs);
    reply_append(out, "pushed=%zu api=%s", cnt, api_key_name(api_key));
    return 0;
}

static int cmd_push_broker_errors(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                                  xdcr_error_t *err)
{
    rd_kafka_resp_err_t errs[MAX_ARGS];
    int rtts[MAX_ARGS];
    int16_t api_key;
    int32_t id;
    size_t cnt = 0;

    if (parse_broker_id(db, argv[1], false, &id, err) != 0 ||
        parse_api_key(argv[2], &api_key, err) != 0)
        return err->code;
    /* Parse everything before pushing anything, so a bad entry pushes nothing. */
    for (int i = 3; i < argc; i++) {
        char tok[128];
        char *colon;
        long rtt = 0;

        if (strlen(argv[i]) >= sizeof(tok))
            return xdcr_error_set(err, XDCR_EINVAL, false, "invalid error entry \"%.64s...\"",
                                  argv[i]);
        snprintf(tok, sizeof(tok), "%s", argv[i]);
        colon = strchr(tok, ':');
        if (colon != NULL) {
            *colon = '\0';
            if (cli_broker_parse_long(colon + 1, 0, MAX_RTT_MS, &rtt, "rtt in ms", err) != 0)
                return err->code;
        }
        if (parse_kafka_error(tok, &errs[cnt], err) != 0)
            return err->code;
        rtts[cnt++] = (int)rtt;
    }
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t kerr = rd_kafka_mock_broker_push_request_error_rtts(
            db->mcluster, id, api_key, 1, errs[i], rtts[i]);
        if (mock_result(kerr, "push-broker-errors", err) != 0)
            return err->code;
    }
    reply_append(out, "pushed=%zu broker=%d api=%s", cnt, (int)id, api_key_name(api_key));
    return 0;
}

static int cmd_pending_errors(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                              xdcr_error_t *err)
{
    int16_t api_key;
    int32_t id;
    size_t cnt = 0;

    if (parse_broker_id(db, argv[1], false, &id, err) != 0 ||
        parse_api_key(argv[2], &api_key, err) != 0)
        return err->code;
    if (mock_result(rd_kafka_mock_broker_error_stack_cnt(db->mcluster, id, api_key, &cnt),
                    "pending-errors", err) != 0)
        return err->code;
    reply_append(out, "%zu", cnt);
    return 0;
}

static int cmd_clear_errors(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                            xdcr_error_t *err)
{
    int16_t api_key;

    if (parse_api_key(argv[1], &api_key, err) != 0)
        return err->code;
    rd_kafka_mock_clear_request_errors(db->mcluster, api_key);
    return 0;
}

static int cmd_leader(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err)
{
    const cli_broker_topic_t *t;
    int32_t id;
    long partition;

    if (check_topic_name(argv[1], err) != 0 ||
        cli_broker_parse_long(argv[2], 0, CLI_BROKER_MAX_PARTITIONS - 1, &partition, "partition",
                              err) != 0)
        return err->code;
    if (strcasecmp(argv[3], "none") == 0 || strcmp(argv[3], "-1") == 0)
        id = -1;
    else if (parse_broker_id(db, argv[3], false, &id, err) != 0)
        return err->code;
    t = find_topic(db, argv[1]);
    if (t != NULL && partition >= t->partitions)
        return xdcr_error_set(err, XDCR_ENOTFOUND, false,
                              "topic \"%s\" has no partition %ld: partitions are 0..%d", argv[1],
                              partition, t->partitions - 1);
    if (mock_result(
            rd_kafka_mock_partition_set_leader(db->mcluster, argv[1], (int32_t)partition, id),
            "leader", err) != 0)
        return err->code;
    return 0;
}

static int cmd_create_topic(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                            xdcr_error_t *err)
{
    long partitions;

    if (check_topic_name(argv[1], err) != 0 ||
        cli_broker_parse_long(argv[2], 1, CLI_BROKER_MAX_PARTITIONS, &partitions, "partition count",
                              err) != 0)
        return err->code;
    if (find_topic(db, argv[1]) != NULL)
        return xdcr_error_set(err, XDCR_EEXISTS, false, "topic \"%s\" already exists", argv[1]);
    return cli_broker_create_topic(db, argv[1], (int)partitions, err);
}

static int cmd_topic_error(cli_broker_t *db, int argc, char **argv, reply_buf_t *out,
                           xdcr_error_t *err)
{
    rd_kafka_resp_err_t kerr;

    if (check_topic_name(argv[1], err) != 0 || parse_kafka_error(argv[2], &kerr, err) != 0)
        return err->code;
    rd_kafka_mock_topic_set_error(db->mcluster, argv[1], kerr);
    return 0;
}

static int cmd_quit(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err)
{
    return 0;
}

static const struct control_cmd {
    const char *name;
    int min_args; /* not counting the command itself */
    int max_args;
    const char *usage;
    control_fn fn;
} control_cmds[] = {
    {"ping", 0, 0, "ping", cmd_ping},
    {"help", 0, 0, "help", cmd_help},
    {"info", 0, 0, "info", cmd_info},
    {"broker-down", 1, 1, "broker-down ID|all", cmd_broker_down},
    {"broker-up", 1, 1, "broker-up ID|all", cmd_broker_up},
    {"broker-rtt", 2, 2, "broker-rtt ID|all MS", cmd_broker_rtt},
    {"push-errors", 2, MAX_ARGS - 2, "push-errors APIKEY ERR...", cmd_push_errors},
    {"push-broker-errors", 3, MAX_ARGS - 3, "push-broker-errors ID APIKEY ERR[:RTT_MS]...",
     cmd_push_broker_errors},
    {"pending-errors", 2, 2, "pending-errors ID APIKEY", cmd_pending_errors},
    {"clear-errors", 1, 1, "clear-errors APIKEY", cmd_clear_errors},
    {"leader", 3, 3, "leader TOPIC PARTITION BROKERID|none", cmd_leader},
    {"create-topic", 2, 2, "create-topic NAME PARTITIONS", cmd_create_topic},
    {"topic-error", 2, 2, "topic-error TOPIC ERR", cmd_topic_error},
    {"quit", 0, 0, "quit", cmd_quit},
};

#define N_CONTROL_CMDS (sizeof(control_cmds) / sizeof(control_cmds[0]))

static int cmd_help(cli_broker_t *db, int argc, char **argv, reply_buf_t *out, xdcr_error_t *err)
{
    for (size_t i = 0; i < N_CONTROL_CMDS; i++)
        reply_append(out, "%s%s", i > 0 ? " " : "", control_cmds[i].name);
    return 0;
}

bool cli_broker_execute(cli_broker_t *db, char *line, char *reply, size_t reply_len)
{
    char *argv[MAX_ARGS + 1];
    char *save = NULL;
    char *tok;
    int argc = 0;
    char data[CLI_BROKER_REPLY_MAX];
    reply_buf_t out = {data, sizeof(data), 0, false};
    const struct control_cmd *cmd = NULL;
    xdcr_error_t err;
    bool quit = false;

    xdcr_error_clear(&err);
    data[0] = '\0';
    for (tok = strtok_r(line, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == MAX_ARGS) {
            xdcr_error_set(&err, XDCR_EINVAL, false, "too many arguments (max %d)", MAX_ARGS - 1);
            goto reply;
        }
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        xdcr_error_set(&err, XDCR_EINVAL, false, "empty command: try help");
        goto reply;
    }
    for (size_t i = 0; i < N_CONTROL_CMDS; i++)
        if (strcmp(control_cmds[i].name, argv[0]) == 0)
            cmd = &control_cmds[i];
    if (cmd == NULL) {
        xdcr_error_set(&err, XDCR_EINVAL, false, "unknown command \"%.64s\": try help", argv[0]);
        goto reply;
    }
    if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
        xdcr_error_set(&err, XDCR_EINVAL, false, "wrong number of arguments: usage: %s",
                       cmd->usage);
        goto reply;
    }
    if (cmd->fn(db, argc, argv, &out, &err) == 0 && out.truncated)
        xdcr_error_set(&err, XDCR_ERANGE, false, "reply too long");
    quit = cmd->fn == cmd_quit;
reply:
    if (err.code != 0)
        snprintf(reply, reply_len, "error %s\n", err.message);
    else if (data[0] != '\0')
        snprintf(reply, reply_len, "ok %s\n", data);
    else
        snprintf(reply, reply_len, "ok\n");
    return quit;
}

void cli_broker_fini(cli_broker_t *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->topic_cnt; i++)
        free(db->topics[i].name);
    free(db->topics);
    db->topics = NULL;
    db->topic_cnt = db->topic_cap = 0;
}
