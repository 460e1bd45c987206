/*
 * test_log.c - unit tests for common/log.c: the exact logfmt line, level filtering, quoting and
 * escaping, redaction of secret keys and of conninfo/URI passwords, whole lines under threads.
 */
#include "xdcr/error.h"
#include "xdcr/log.h"
#include "xdcr_test.h"

#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- capture: a memory stream the logger writes to ---- */

typedef struct capture {
    char *buf;
    size_t len;
    FILE *f;
} capture_t;

static void cap_open(capture_t *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->f);
}

static const char *cap_text(capture_t *c)
{
    fflush(c->f);
    return c->buf != NULL ? c->buf : "";
}

static void cap_close(capture_t *c)
{
    fclose(c->f);
    free(c->buf);
}

#define TS_LEN 28 /* "ts=2026-11-22T04:07:57.123Z " */

static bool has_valid_ts(const char *line)
{
    regex_t re;
    bool ok;

    if (regcomp(&re,
                "^ts=[0-9]{4}-(0[1-9]|1[0-2])-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\."
                "[0-9]{3}Z ",
                REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    ok = regexec(&re, line, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* The text of the whole capture after the timestamp of its single line. */
static const char *one_line_after_ts(capture_t *c)
{
    const char *t = cap_text(c);
    const char *nl = strchr(t, '\n');

    CU_ASSERT_TRUE(has_valid_ts(t));
    CU_ASSERT_PTR_NOT_NULL(nl);
    if (nl != NULL)
        CU_ASSERT_EQUAL(nl[1], '\0'); /* exactly one line */
    return strlen(t) >= TS_LEN ? t + TS_LEN : "";
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* ---- format ---- */

static void test_log_write_formats_logfmt_line(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "forwarder", c.f);
    xdcr_log_add_context(&lg, "origin", "east");
    XDCR_LOG(&lg, XDCR_LOG_WARN, "lag is %d bytes at %s", 42, "0/16B3748");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c),
                           "level=warn comp=forwarder origin=east msg=\"lag is 42 bytes at "
                           "0/16B3748\"\n");
    cap_close(&c);
}

static void test_log_timestamp_is_current_utc_with_milliseconds(void)
{
    struct tm tm = {0};
    int ms = -1;
    capture_t c;
    xdcr_log_t lg;
    time_t before, after, logged;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "test", c.f);
    before = time(NULL);
    XDCR_LOG(&lg, XDCR_LOG_INFO, "tick");
    after = time(NULL);
    CU_ASSERT_TRUE(has_valid_ts(cap_text(&c)));
    CU_ASSERT_EQUAL(sscanf(cap_text(&c), "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                    7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    logged = timegm(&tm);
    CU_ASSERT(logged >= before && logged <= after);
    CU_ASSERT(ms >= 0 && ms <= 999);
    cap_close(&c);
}

static void test_log_without_component_has_no_context(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_DEBUG, NULL, c.f);
    XDCR_LOG(&lg, XDCR_LOG_DEBUG, "x");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c), "level=debug msg=\"x\"\n");
    cap_close(&c);
}

static void test_log_level_filtering_drops_records_above_level(void)
{
    capture_t c;
    xdcr_log_t lg;
    const char *t;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG(&lg, XDCR_LOG_DEBUG, "debug-dropped");
    xdcr_log_write(&lg, XDCR_LOG_DEBUG, "direct-debug-dropped");
    xdcr_log_kv(&lg, XDCR_LOG_DEBUG, "kv-debug-dropped", "k", "v", (const char *)NULL);
    XDCR_LOG(&lg, XDCR_LOG_INFO, "info-kept");
    XDCR_LOG(&lg, XDCR_LOG_WARN, "warn-kept");
    XDCR_LOG(&lg, XDCR_LOG_ERROR, "error-kept");
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "kv-kept", "k", "v");
    t = cap_text(&c);
    CU_ASSERT_EQUAL(count_lines(t), 4);
    CU_ASSERT_PTR_NULL(strstr(t, "dropped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "level=info comp=c msg=\"info-kept\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "level=warn comp=c msg=\"warn-kept\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "level=error comp=c msg=\"error-kept\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "level=info comp=c msg=\"kv-kept\" k=v\n"));

    lg.level = XDCR_LOG_ERROR;
    XDCR_LOG(&lg, XDCR_LOG_WARN, "warn-dropped");
    CU_ASSERT_EQUAL(count_lines(cap_text(&c)), 4);
    cap_close(&c);
}

static const char *counted(int *evaluations)
{
    (*evaluations)++;
    return "x";
}

static void test_log_macro_does_not_evaluate_arguments_when_filtered(void)
{
    int evaluations = 0;
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_WARN, "c", c.f);
    XDCR_LOG(&lg, XDCR_LOG_DEBUG, "%s", counted(&evaluations));
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "m", "k", counted(&evaluations));
    CU_ASSERT_EQUAL(evaluations, 0);
    XDCR_LOG(&lg, XDCR_LOG_WARN, "%s", counted(&evaluations));
    CU_ASSERT_EQUAL(evaluations, 1);
    cap_close(&c);
}

static void test_log_null_logger_is_ignored(void)
{
    XDCR_LOG((xdcr_log_t *)NULL, XDCR_LOG_ERROR, "nothing");
    xdcr_log_write(NULL, XDCR_LOG_ERROR, "nothing");
    xdcr_log_kv(NULL, XDCR_LOG_ERROR, "nothing", (const char *)NULL);
    xdcr_log_add_context(NULL, "k", "v");
    xdcr_log_init(NULL, XDCR_LOG_INFO, "c", NULL);
    CU_PASS("no crash");
}

static void test_log_null_out_writes_to_stderr(void)
{
    char buf[512] = "";
    FILE *tmp = tmpfile();
    int saved;
    xdcr_log_t lg;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tmp);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    dup2(fileno(tmp), STDERR_FILENO);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "cli", NULL);
    XDCR_LOG(&lg, XDCR_LOG_ERROR, "to stderr");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    CU_ASSERT_TRUE(has_valid_ts(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, " level=error comp=cli msg=\"to stderr\"\n"));
}

/* ---- quoting and escaping ---- */

static void test_log_escapes_quotes_backslashes_newlines_tabs_and_controls(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG(&lg, XDCR_LOG_INFO, "%s",
             "a\"b\\c\nd\te\x01"
             "f\x7fg\rh\x1b");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c),
                           "level=info comp=c msg=\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007fg\\u000dh"
                           "\\u001b\"\n");
    cap_close(&c);
}

static void test_log_message_is_always_quoted_even_when_empty(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "", "k", "v");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c), "level=info comp=c msg=\"\" k=v\n");
    cap_close(&c);
}

static void test_log_kv_quotes_values_only_when_needed(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "consumer", c.f);
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "applied", "lsn", "0/16B3748", "table", "public.t", "note",
                "two words", "expr", "a=b", "empty", "", "quote", "say \"hi\"", "ctrl", "x\ty",
                "utf8", "gr\xc3\xbc\xc3\x9f", "slash", "C:\\dir");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c),
                           "level=info comp=consumer msg=\"applied\" lsn=0/16B3748 table=public.t "
                           "note=\"two words\" expr=\"a=b\" empty=\"\" quote=\"say \\\"hi\\\"\" "
                           "ctrl=\"x\\ty\" utf8=gr\xc3\xbc\xc3\x9f slash=C:\\dir\n");
    cap_close(&c);
}

static void test_log_kv_null_value_is_empty_and_bad_keys_are_sanitized(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "m", "gone", (const char *)NULL, "bad key=\"x\"", "v", "", "w");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c),
                           "level=info comp=c msg=\"m\" gone=\"\" bad_key__x_=v _=w\n");
    cap_close(&c);
}

static void test_log_add_context_quotes_and_drops_fields_that_do_not_fit(void)
{
    char big[XDCR_LOG_CONTEXT_MAX];
    char before[XDCR_LOG_CONTEXT_MAX];
    xdcr_log_t lg;

    xdcr_log_init(&lg, XDCR_LOG_INFO, "forwarder", NULL);
    xdcr_log_add_context(&lg, "origin", "east billing");
    CU_ASSERT_STRING_EQUAL(lg.context, "comp=forwarder origin=\"east billing\"");
    memcpy(before, lg.context, sizeof(before));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    xdcr_log_add_context(&lg, "huge", big);
    CU_ASSERT_STRING_EQUAL(lg.context, before);
    xdcr_log_add_context(&lg, "slot", "xdcr_east");
    CU_ASSERT_STRING_EQUAL(lg.context, "comp=forwarder origin=\"east billing\" slot=xdcr_east");
}

static void test_log_add_context_redacts_secrets(void)
{
    xdcr_log_t lg;

    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", NULL);
    xdcr_log_add_context(&lg, "sasl.password", "hunter2");
    xdcr_log_add_context(&lg, "dsn", "postgresql://u:pw1@h/db");
    CU_ASSERT_STRING_EQUAL(lg.context,
                           "comp=c sasl.password=[redacted] dsn=postgresql://u:[redacted]@h/db");
}

static void test_log_long_message_is_written_whole(void)
{
    enum { N = 100000 };
    char *big = malloc(N + 1);
    capture_t c;
    xdcr_log_t lg;
    const char *t;

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'q', N);
    big[N] = '\0';
    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG(&lg, XDCR_LOG_INFO, "<%s>", big);
    t = one_line_after_ts(&c);
    CU_ASSERT_EQUAL(strlen(t), strlen("level=info comp=c msg=\"<>\"\n") + N);
    CU_ASSERT_EQUAL(strncmp(t, "level=info comp=c msg=\"<qqq", 27), 0);
    CU_ASSERT_EQUAL(strcmp(t + strlen(t) - 6, "qqq>\"\n"), 0);
    cap_close(&c);
    free(big);
}

/* ---- redaction ---- */

static void test_log_is_secret_key_matches_password_like_keys(void)
{
    static const char *const secret[] = {
        "password",
        "pg.password",
        "PGPASSWORD",
        "passwd",
        "db_Passwd",
        "secret",
        "client_secret",
        "token",
        "api.Token",
        "sasl.password",
        "kafka.sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "kafka.sasl.oauthbearer.client.secret",
        "ssl.key.pem",
        "sasl.oauthbearer.config",
    };
    static const char *const plain[] = {
        "bootstrap.servers",
        "acks",
        "pg.conninfo",
        "origin",
        "sasl.username",
        "ssl.key.location",
        "user",
        "",
    };

    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        CU_ASSERT_TRUE(xdcr_log_is_secret_key(secret[i]));
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        CU_ASSERT_FALSE(xdcr_log_is_secret_key(plain[i]));
    CU_ASSERT_FALSE(xdcr_log_is_secret_key(NULL));
}

static void test_log_kv_redacts_values_of_secret_keys(void)
{
    capture_t c;
    xdcr_log_t lg;
    const char *t;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_DEBUG, "forwarder", c.f);
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "kafka config", "bootstrap.servers", "127.0.0.1:9092",
                "sasl.password", "S1", "ssl.key.password", "S2", "ssl.keystore.password", "S3",
                "sasl.oauthbearer.client.secret", "S4", "PGPASSWORD", "S5", "api_token", "S6",
                "passwd", "S7");
    t = one_line_after_ts(&c);
    CU_ASSERT_STRING_EQUAL(t, "level=info comp=forwarder msg=\"kafka config\" "
                              "bootstrap.servers=127.0.0.1:9092 sasl.password=[redacted] "
                              "ssl.key.password=[redacted] ssl.keystore.password=[redacted] "
                              "sasl.oauthbearer.client.secret=[redacted] PGPASSWORD=[redacted] "
                              "api_token=[redacted] passwd=[redacted]\n");
    for (char s[3] = "S1"; s[1] <= '7'; s[1]++)
        CU_ASSERT_PTR_NULL(strstr(t, s));
    cap_close(&c);
}

static void test_log_kv_redacts_conninfo_and_uri_passwords(void)
{
    capture_t c;
    xdcr_log_t lg;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "forwarder", c.f);
    XDCR_LOG_KV(&lg, XDCR_LOG_INFO, "connecting", "conninfo",
                "host=db1 port=5432 password='p w' user=repl", "uri",
                "postgresql://repl:hunter2@db1:5432/app?sslmode=require");
    CU_ASSERT_STRING_EQUAL(one_line_after_ts(&c),
                           "level=info comp=forwarder msg=\"connecting\" conninfo=\"host=db1 "
                           "port=5432 password=[redacted] user=repl\" "
                           "uri=\"postgresql://repl:[redacted]@db1:5432/app?sslmode=require\"\n");
    cap_close(&c);
}

static void test_log_write_redacts_passwords_inside_messages(void)
{
    capture_t c;
    xdcr_log_t lg;
    const char *t;

    cap_open(&c);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", c.f);
    XDCR_LOG(&lg, XDCR_LOG_ERROR, "could not connect to \"%s\": %s",
             "host=h password=hunter2 dbname=d", "timeout");
    XDCR_LOG(&lg, XDCR_LOG_ERROR, "bad uri %s", "postgres://u:hunter3@h/db");
    t = cap_text(&c);
    CU_ASSERT_PTR_NULL(strstr(t, "hunter"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "msg=\"could not connect to \\\"host=h password=[redacted] "
                                     "dbname=d\\\": timeout\"\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "msg=\"bad uri postgres://u:[redacted]@h/db\"\n"));
    cap_close(&c);
}

typedef struct redact_case {
    const char *in;
    const char *out;
} redact_case_t;

static void check_redactions(const redact_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char out[256];

        CU_ASSERT_PTR_EQUAL(xdcr_redact_conninfo(cases[i].in, out, sizeof(out)), out);
        if (strcmp(out, cases[i].out) != 0)
            fprintf(stderr, "\nredact(%s) = %s, want %s\n", cases[i].in, out, cases[i].out);
        CU_ASSERT_STRING_EQUAL(out, cases[i].out);
    }
}

static void test_redact_conninfo_keyword_value_forms(void)
{
    static const redact_case_t cases[] = {
        {"host=a password=s3cret dbname=x", "host=a password=[redacted] dbname=x"},
        {"password='a b\\'c' host=x", "password=[redacted] host=x"},
        {"password = 'x y' port=5432", "password = [redacted] port=5432"},
        {"password  =  plain user=u", "password  =  [redacted] user=u"},
        {"PASSWORD=abc", "PASSWORD=[redacted]"},
        {"sslpassword=k3y host=h", "sslpassword=[redacted] host=h"},
        {"password=a\\ b host=h", "password=[redacted] host=h"},
        {"password='it\\\\' host=h", "password=[redacted] host=h"},
        {"host=h password=", "host=h password=[redacted]"},
        {"password='' host=h", "password=[redacted] host=h"},
        {"password='unterminated host=h", "password=[redacted]"},
        {"password=a\tuser=u", "password=[redacted]\tuser=u"},
        {"host=a password=x password=y", "host=a password=[redacted] password=[redacted]"},
        {"host=a passfile=/x/.pgpass", "host=a passfile=/x/.pgpass"},
        {"password is wrong", "password is wrong"},
        {"no secrets here", "no secrets here"},
        {"", ""},
    };

    check_redactions(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_redact_conninfo_uri_forms(void)
{
    static const redact_case_t cases[] = {
        {"postgresql://user:pw@host:5432/db", "postgresql://user:[redacted]@host:5432/db"},
        {"postgres://u:p%40ss@h/db?sslmode=require",
         "postgres://u:[redacted]@h/db?sslmode=require"},
        {"POSTGRESQL://u:pw@h", "POSTGRESQL://u:[redacted]@h"},
        {"postgresql://:pw@h", "postgresql://:[redacted]@h"},
        {"postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:[redacted]@h1:5432,h2:5433/db"},
        {"postgresql://u@h/db", "postgresql://u@h/db"},
        {"postgresql://h:5432/db", "postgresql://h:5432/db"},
        {"postgresql://h/db?user=u&password=pw&sslmode=require",
         "postgresql://h/db?user=u&password=[redacted]&sslmode=require"},
        {"postgresql://h/db?password=pw", "postgresql://h/db?password=[redacted]"},
        {"postgresql://h/db?password=pw#frag", "postgresql://h/db?password=[redacted]#frag"},
        {"postgresql://u:a@b@h/db", "postgresql://u:[redacted]@h/db"},
        {"postgresql://u:x@h/db?password=y", "postgresql://u:[redacted]@h/db?password=[redacted]"},
        {"dsn \"postgresql://u:pw@h/db\" failed", "dsn \"postgresql://u:[redacted]@h/db\" failed"},
        {"http://u:pw@h/", "http://u:pw@h/"},
    };

    check_redactions(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_redact_conninfo_truncates_and_always_terminates(void)
{
    char out[12];
    char one[1] = {'z'};

    memset(out, 'Z', sizeof(out));
    xdcr_redact_conninfo("password=hunter2 host=h", out, sizeof(out));
    CU_ASSERT_EQUAL(strlen(out), sizeof(out) - 1);
    CU_ASSERT_STRING_EQUAL(out, "password=[r");
    CU_ASSERT_PTR_NULL(strstr(out, "hunter"));

    xdcr_redact_conninfo("abcdef", one, sizeof(one));
    CU_ASSERT_EQUAL(one[0], '\0');
    CU_ASSERT_PTR_NULL(xdcr_redact_conninfo("abc", NULL, 0));
    CU_ASSERT_PTR_EQUAL(xdcr_redact_conninfo("abc", out, 0), out);

    xdcr_redact_conninfo(NULL, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "");
}

/* ---- levels ---- */

static void test_log_level_parse_accepts_names_case_insensitively(void)
{
    xdcr_log_level_t l = XDCR_LOG_ERROR;

    CU_ASSERT_EQUAL(xdcr_log_level_parse("debug", &l), 0);
    CU_ASSERT_EQUAL(l, XDCR_LOG_DEBUG);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("INFO", &l), 0);
    CU_ASSERT_EQUAL(l, XDCR_LOG_INFO);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("warn", &l), 0);
    CU_ASSERT_EQUAL(l, XDCR_LOG_WARN);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("warning", &l), 0);
    CU_ASSERT_EQUAL(l, XDCR_LOG_WARN);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("Error", &l), 0);
    CU_ASSERT_EQUAL(l, XDCR_LOG_ERROR);
}

static void test_log_level_parse_rejects_unknown(void)
{
    xdcr_log_level_t l = XDCR_LOG_INFO;

    CU_ASSERT_EQUAL(xdcr_log_level_parse("trace", &l), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("", &l), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_log_level_parse(" info", &l), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_log_level_parse(NULL, &l), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_log_level_parse("info", NULL), XDCR_EINVAL);
    CU_ASSERT_EQUAL(l, XDCR_LOG_INFO);
}

static void test_log_level_name_round_trips(void)
{
    for (int i = XDCR_LOG_ERROR; i <= XDCR_LOG_DEBUG; i++) {
        xdcr_log_level_t l;

        CU_ASSERT_EQUAL(xdcr_log_level_parse(xdcr_log_level_name((xdcr_log_level_t)i), &l), 0);
        CU_ASSERT_EQUAL((int)l, i);
    }
    CU_ASSERT_STRING_EQUAL(xdcr_log_level_name((xdcr_log_level_t)42), "unknown");
}

/* ---- threads ---- */

enum { THREADS = 8, LINES_PER_THREAD = 400 };

typedef struct writer_arg {
    const xdcr_log_t *lg;
    int id;
} writer_arg_t;

static void *writer(void *p)
{
    const writer_arg_t *a = p;
    char payload[300];

    memset(payload, 'a' + a->id, sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        XDCR_LOG(a->lg, XDCR_LOG_INFO, "t%d n%d %s", a->id, i, payload);
    return NULL;
}

static void test_log_concurrent_records_never_interleave(void)
{
    pthread_t tid[THREADS];
    writer_arg_t args[THREADS];
    int seen[THREADS] = {0};
    FILE *f = tmpfile();
    char line[1024];
    xdcr_log_t lg;
    int total = 0, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    xdcr_log_init(&lg, XDCR_LOG_INFO, "c", f);
    for (int t = 0; t < THREADS; t++) {
        args[t].lg = &lg;
        args[t].id = t;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[t], NULL, writer, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(tid[t], NULL);
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *m = strstr(line, " msg=\"t");
        int id = -1, n = -1, end = 0;

        total++;
        if (!has_valid_ts(line) || m == NULL || sscanf(m, " msg=\"t%d n%d %n", &id, &n, &end) < 2 ||
            id < 0 || id >= THREADS) {
            bad++;
            continue;
        }
        /* the payload is 299 copies of this thread's letter, then the closing quote */
        for (int k = 0; k < 299; k++)
            if (m[end + k] != 'a' + id) {
                bad++;
                break;
            }
        if (strcmp(m + end + 299, "\"\n") != 0)
            bad++;
        if (n == seen[id])
            seen[id]++; /* each thread's lines appear in its own order */
        else
            bad++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(total, THREADS * LINES_PER_THREAD);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_log_write_formats_logfmt_line),
        XDCR_TEST(test_log_timestamp_is_current_utc_with_milliseconds),
        XDCR_TEST(test_log_without_component_has_no_context),
        XDCR_TEST(test_log_level_filtering_drops_records_above_level),
        XDCR_TEST(test_log_macro_does_not_evaluate_arguments_when_filtered),
        XDCR_TEST(test_log_null_logger_is_ignored),
        XDCR_TEST(test_log_null_out_writes_to_stderr),
        XDCR_TEST(test_log_escapes_quotes_backslashes_newlines_tabs_and_controls),
        XDCR_TEST(test_log_message_is_always_quoted_even_when_empty),
        XDCR_TEST(test_log_kv_quotes_values_only_when_needed),
        XDCR_TEST(test_log_kv_null_value_is_empty_and_bad_keys_are_sanitized),
        XDCR_TEST(test_log_add_context_quotes_and_drops_fields_that_do_not_fit),
        XDCR_TEST(test_log_add_context_redacts_secrets),
        XDCR_TEST(test_log_long_message_is_written_whole),
        XDCR_TEST(test_log_is_secret_key_matches_password_like_keys),
        XDCR_TEST(test_log_kv_redacts_values_of_secret_keys),
        XDCR_TEST(test_log_kv_redacts_conninfo_and_uri_passwords),
        XDCR_TEST(test_log_write_redacts_passwords_inside_messages),
        XDCR_TEST(test_redact_conninfo_keyword_value_forms),
        XDCR_TEST(test_redact_conninfo_uri_forms),
        XDCR_TEST(test_redact_conninfo_truncates_and_always_terminates),
        XDCR_TEST(test_log_level_parse_accepts_names_case_insensitively),
        XDCR_TEST(test_log_level_parse_rejects_unknown),
        XDCR_TEST(test_log_level_name_round_trips),
        XDCR_TEST(test_log_concurrent_records_never_interleave),
        XDCR_TEST_END,
    };

    return xdcr_test_run("log", cases);
}
