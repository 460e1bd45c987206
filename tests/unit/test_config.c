/*
 * test_config.c - unit tests for common/config.c: a sample option table with every type, the
 * file format, environment and flag mapping, precedence, errors naming key and source, bounds,
 * secrets kept out of messages and help, pass-through keys applied to a real librdkafka conf.
 */
#include "xdcr/config.h"
#include "xdcr_test.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the sample configuration ---- */

typedef struct sample_cfg {
    char *conninfo;
    char *origin;
    int64_t batch_rows;
    int64_t offset;
    bool dry_run;
    int64_t flush_ms;
    int64_t max_bytes;
    int on_error;
    char *tables;
    char *pg_password;
    char *ca_file;
    char *password_file;
    int64_t pin;
    char *kafka_topic;
} sample_cfg_t;

#define PIN_DEFAULT "7351" /* a secret default: must never be printed */

static const char *const on_error_values[] = {"halt", "skip", "dead-letter", NULL};

static const xdcr_option_t sample_options[] = {
    {"pg.conninfo", XDCR_OPT_STRING, NULL, 0, -1, offsetof(sample_cfg_t, conninfo),
     XDCR_OPT_F_REQUIRED, NULL, "libpq connection string of the source"},
    {"origin", XDCR_OPT_STRING, "east", 0, -1, offsetof(sample_cfg_t, origin), 0, NULL,
     "origin name"},
    {"batch.rows", XDCR_OPT_INT, "100", 1, 10000, offsetof(sample_cfg_t, batch_rows), 0, NULL,
     "rows per batch"},
    {"offset", XDCR_OPT_INT, "-5", 1, 0, offsetof(sample_cfg_t, offset), 0, NULL,
     "a signed number without bounds"},
    {"dry.run", XDCR_OPT_BOOL, "false", 0, -1, offsetof(sample_cfg_t, dry_run), 0, NULL,
     "do not write anything"},
    {"flush.interval", XDCR_OPT_DURATION, "1s", 10, 3600000, offsetof(sample_cfg_t, flush_ms), 0,
     NULL, "how often to flush"},
    {"max.bytes", XDCR_OPT_SIZE, "16MB", 1024, INT64_C(1) << 30, offsetof(sample_cfg_t, max_bytes),
     0, NULL, "memory limit"},
    {"on.error", XDCR_OPT_ENUM, "halt", 0, -1, offsetof(sample_cfg_t, on_error), 0, on_error_values,
     "what to do with a bad message"},
    {"tables", XDCR_OPT_LIST, "public.a, public.b", 0, -1, offsetof(sample_cfg_t, tables), 0, NULL,
     "tables to replicate"},
    {"pg.password", XDCR_OPT_STRING, NULL, 0, -1, offsetof(sample_cfg_t, pg_password),
     XDCR_OPT_F_SECRET, NULL, "password for the source"},
    {"tls.ca-file", XDCR_OPT_STRING, NULL, 0, -1, offsetof(sample_cfg_t, ca_file), XDCR_OPT_F_FILE,
     NULL, "CA bundle"},
    {"pg.password.file", XDCR_OPT_STRING, NULL, 0, -1, offsetof(sample_cfg_t, password_file),
     XDCR_OPT_F_FILE, NULL, "file holding the password"},
    {"auth.pin", XDCR_OPT_INT, PIN_DEFAULT, 1000, 9999, offsetof(sample_cfg_t, pin),
     XDCR_OPT_F_SECRET, NULL, "a numeric secret"},
    {"kafka.topic", XDCR_OPT_STRING, "xdcr.east.changes", 0, -1,
     offsetof(sample_cfg_t, kafka_topic), 0, NULL, "topic (an option under the kafka. prefix)"},
    {0},
};

static const xdcr_config_spec_t spec = {
    .program = "xdcr-test",
    .summary = "exercise the configuration loader",
    .options = sample_options,
    .passthrough_prefix = "kafka.",
    .env_prefix = "XDCR_",
};

/* ---- harness ---- */

#define VEC(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ENV VEC(NULL)

typedef struct loaded {
    sample_cfg_t cfg;
    xdcr_kv_list_t pt;
    xdcr_config_cli_t cli;
    xdcr_error_t err;
    int rc;
    char **argv; /* cli.config_path points into it */
    char **envp;
    int argc;
} loaded_t;

static char **dup_vec(const char *first, const char *const *v, int *count)
{
    size_t n = 0, k = 0;
    char **out;

    while (v[n] != NULL)
        n++;
    out = calloc(n + 2, sizeof(*out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    if (first != NULL)
        out[k++] = strdup(first);
    for (size_t i = 0; i < n; i++)
        out[k++] = strdup(v[i]);
    if (count != NULL)
        *count = (int)k;
    return out;
}

static void free_vec(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

static int load(loaded_t *l, const char *const *args, const char *const *env)
{
    memset(l, 0, sizeof(*l));
    l->argv = dup_vec("xdcr-test", args, &l->argc);
    l->envp = dup_vec(NULL, env, NULL);
    l->rc = xdcr_config_load(&spec, &l->cfg, &l->pt, l->envp, l->argc, l->argv, &l->cli, &l->err);
    if (l->rc != 0)
        CU_ASSERT_EQUAL(l->rc, l->err.code);
    return l->rc;
}

static void unload(loaded_t *l)
{
    xdcr_config_free(&spec, &l->cfg);
    xdcr_kv_list_free(&l->pt);
    free_vec(l->argv);
    free_vec(l->envp);
}

static void assert_msg(const char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  message: %s\n  wanted:  %s\n", got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

/* Load args that must fail with ECONFIG and exactly this message. */
static void assert_load_error(const char *const *args, const char *const *env, const char *want)
{
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, args, env), XDCR_ECONFIG);
    assert_msg(l.err.message, want);
    unload(&l);
}

static char *write_temp(const char *content, size_t len)
{
    char tmpl[] = "/tmp/xdcr_test_config_XXXXXX";
    int fd = mkstemp(tmpl);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(write(fd, content, len), (ssize_t)len);
    close(fd);
    return strdup(tmpl);
}

static char *write_temp_str(const char *content)
{
    return write_temp(content, strlen(content));
}

static void remove_temp(char *path)
{
    unlink(path);
    free(path);
}

static char *capture_help(bool markdown)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (markdown)
        xdcr_config_print_markdown(&spec, f);
    else
        xdcr_config_print_help(&spec, f);
    fclose(f);
    return buf;
}

/* ---- defaults and precedence ---- */

static void test_config_defaults_apply_when_no_source_sets_a_key(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=host=db"), NO_ENV), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "host=db");
    CU_ASSERT_STRING_EQUAL(l.cfg.origin, "east");
    CU_ASSERT_EQUAL(l.cfg.batch_rows, 100);
    CU_ASSERT_EQUAL(l.cfg.offset, -5);
    CU_ASSERT_FALSE(l.cfg.dry_run);
    CU_ASSERT_EQUAL(l.cfg.flush_ms, 1000);
    CU_ASSERT_EQUAL(l.cfg.max_bytes, 16 * 1024 * 1024);
    CU_ASSERT_EQUAL(l.cfg.on_error, 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.tables, "public.a,public.b");
    CU_ASSERT_PTR_NULL(l.cfg.pg_password);
    CU_ASSERT_PTR_NULL(l.cfg.ca_file);
    CU_ASSERT_EQUAL(l.cfg.pin, 7351);
    CU_ASSERT_STRING_EQUAL(l.cfg.kafka_topic, "xdcr.east.changes");
    CU_ASSERT_EQUAL(l.pt.count, 0);
    CU_ASSERT_FALSE(l.cli.help || l.cli.version || l.cli.check_config);
    CU_ASSERT_PTR_NULL(l.cli.config_path);
    unload(&l);
}

static void test_config_precedence_is_default_file_env_flag(void)
{
    char *path = write_temp_str("pg.conninfo = host=file\n"
                                "origin = from-file\n"
                                "batch.rows = 200\n"
                                "flush.interval = 2s\n"
                                "kafka.acks = 1\n"
                                "kafka.linger.ms = 5\n");
    char cflag[256];
    loaded_t l;

    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    CU_ASSERT_EQUAL(load(&l, VEC(cflag, "--flush.interval", "4s", "--kafka.acks=0"),
                         VEC("XDCR_BATCH_ROWS=300", "XDCR_FLUSH_INTERVAL=3s", "XDCR_KAFKA_ACKS=all",
                             "XDCR_KAFKA_LINGER_MS=7")),
                    0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "host=file"); /* file only */
    CU_ASSERT_STRING_EQUAL(l.cfg.origin, "from-file");   /* file over default */
    CU_ASSERT_EQUAL(l.cfg.batch_rows, 300);              /* env over file */
    CU_ASSERT_EQUAL(l.cfg.flush_ms, 4000);               /* flag over env */
    CU_ASSERT_EQUAL(l.cfg.max_bytes, 16 << 20);          /* default */
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "acks"), "0");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "linger.ms"), "7");
    CU_ASSERT_EQUAL(l.pt.count, 2);
    CU_ASSERT_STRING_EQUAL(l.cli.config_path, path);
    unload(&l);
    remove_temp(path);
}

static void test_config_file_comes_from_flag_or_config_env(void)
{
    char *a = write_temp_str("pg.conninfo = a\n");
    char *b = write_temp_str("pg.conninfo = b\n");
    char env[256], shortflag[256];
    loaded_t l;

    snprintf(env, sizeof(env), "XDCR_CONFIG=%s", a);
    CU_ASSERT_EQUAL(load(&l, VEC(NULL), VEC(env)), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "a");
    unload(&l);

    CU_ASSERT_EQUAL(load(&l, VEC("-c", b), VEC(env)), 0); /* the flag wins */
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "b");
    CU_ASSERT_STRING_EQUAL(l.cli.config_path, b);
    unload(&l);

    CU_ASSERT_EQUAL(load(&l, VEC("--config", a), NO_ENV), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "a");
    unload(&l);

    snprintf(shortflag, sizeof(shortflag), "-c%s", b);
    CU_ASSERT_EQUAL(load(&l, VEC(shortflag), NO_ENV), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "b");
    unload(&l);

    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x"), VEC("XDCR_CONFIG=")), 0); /* empty = none */
    unload(&l);
    remove_temp(a);
    remove_temp(b);
}

/* ---- file format ---- */

static void test_config_file_accepts_comments_quotes_and_blank_lines(void)
{
    char *path = write_temp_str("\xEF\xBB\xBF# a comment\n"
                                "   # an indented comment\n"
                                "\n"
                                "   \t \n"
                                "pg.conninfo = \"host=db password=\\\"q\\\\x\\\" app=a#b\"\n"
                                "origin='west # not a comment'\r\n"
                                "tables = a , b,c   # trailing comment\n"
                                "dry.run=yes\n"
                                "kafka.client.id = my#id\n"
                                "\tbatch.rows\t=\t42\t\t\n"
                                "on.error = \"dead-letter\"   # quoted, then a comment\n"
                                "tls.ca-file =\n"
                                "kafka.sasl.username = \"C:\\dir\\x\"\n"
                                "flush.interval = 250ms");
    char cflag[256];
    loaded_t l;

    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    CU_ASSERT_EQUAL(load(&l, VEC(cflag), NO_ENV), 0);
    if (l.rc != 0)
        fprintf(stderr, "\n  %s\n", l.err.message);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "host=db password=\"q\\x\" app=a#b");
    CU_ASSERT_STRING_EQUAL(l.cfg.origin, "west # not a comment");
    CU_ASSERT_STRING_EQUAL(l.cfg.tables, "a,b,c");
    CU_ASSERT_TRUE(l.cfg.dry_run);
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "client.id"), "my#id");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "sasl.username"), "C:\\dir\\x");
    CU_ASSERT_EQUAL(l.cfg.batch_rows, 42);
    CU_ASSERT_EQUAL(l.cfg.on_error, 2);
    CU_ASSERT_STRING_EQUAL(l.cfg.ca_file, ""); /* empty FILE option: not checked */
    CU_ASSERT_EQUAL(l.cfg.flush_ms, 250);      /* last line without newline */
    unload(&l);
    remove_temp(path);
}

static void test_config_file_later_line_wins(void)
{
    char *path = write_temp_str("pg.conninfo = x\nbatch.rows = 1\nbatch.rows = 2\n");
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("-c", path), NO_ENV), 0);
    CU_ASSERT_EQUAL(l.cfg.batch_rows, 2);
    unload(&l);
    remove_temp(path);
}

static void test_config_file_unknown_key_names_key_and_file_line(void)
{
    char *path = write_temp_str("pg.conninfo = x\n# comment\nbogus.key = 1\n");
    char want[512];

    snprintf(want, sizeof(want), "unknown configuration key \"bogus.key\" (file %s:3)", path);
    assert_load_error(VEC("-c", path), NO_ENV, want);
    remove_temp(path);
}

static void test_config_file_syntax_errors_name_file_and_line(void)
{
    static const struct {
        const char *text;
        int line;
        const char *why;
    } cases[] = {
        {"pg.conninfo = x\nno equals here\n", 2, "expected \"=\" after the key"},
        {"= value\n", 1, "expected a line of the form key = value"},
        {"origin = \"unterminated\n", 1, "unterminated quoted value"},
        {"\n\norigin = 'unterminated\n", 3, "unterminated quoted value"},
        {"origin = \"a\" b\n", 1, "unexpected text after the quoted value"},
        {"origin = 'a'b\n", 1, "unexpected text after the quoted value"},
        {"ori gin = a\n", 1, "expected \"=\" after the key"},
        {"origin: a\n", 1, "expected \"=\" after the key"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_temp_str(cases[i].text);
        char want[512];

        snprintf(want, sizeof(want), "invalid line (file %s:%d): %s", path, cases[i].line,
                 cases[i].why);
        assert_load_error(VEC("-c", path), NO_ENV, want);
        remove_temp(path);
    }
}

static void test_config_file_rejects_nul_bytes(void)
{
    char *path = write_temp("origin = a\0b\n", 13);
    char want[512];

    snprintf(want, sizeof(want), "invalid line (file %s:1): contains a NUL byte", path);
    assert_load_error(VEC("-c", path), NO_ENV, want);
    remove_temp(path);
}

static void test_config_file_bad_value_names_file_and_line(void)
{
    char *path = write_temp_str("pg.conninfo = x\n\nbatch.rows = many\n");
    char want[512];

    snprintf(want, sizeof(want),
             "invalid value \"many\" for \"batch.rows\" (file %s:3): expected an integer", path);
    assert_load_error(VEC("-c", path), NO_ENV, want);
    remove_temp(path);
}

static void test_config_missing_or_unreadable_file_is_a_config_error(void)
{
    char dir[] = "/tmp/xdcr_test_config_dir_XXXXXX";
    char want[512];
    loaded_t l;

    assert_load_error(VEC("-c", "/nonexistent/xdcr.conf"), NO_ENV,
                      "could not open configuration file \"/nonexistent/xdcr.conf\": No such "
                      "file or directory");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL(load(&l, VEC("-c", dir), NO_ENV), XDCR_ECONFIG);
    snprintf(want, sizeof(want), "\"%s\"", dir);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.err.message, want));
    unload(&l);
    rmdir(dir);
}

/* ---- environment ---- */

static void test_config_env_maps_dots_and_dashes_to_upper_underscores(void)
{
    char *ca = write_temp_str("cert");
    char caenv[256];
    loaded_t l;

    snprintf(caenv, sizeof(caenv), "XDCR_TLS_CA_FILE=%s", ca);
    CU_ASSERT_EQUAL(load(&l, VEC(NULL),
                         VEC("XDCR_PG_CONNINFO=host=env", caenv, "XDCR_DRY_RUN=on",
                             "XDCR_ON_ERROR=SKIP", "XDCR_UNRELATED=1", "xdcr_origin=lower",
                             "XDCR_ORIGINX=no", "XDCR_ORIGIN", "PATH=/bin")),
                    0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "host=env");
    CU_ASSERT_STRING_EQUAL(l.cfg.ca_file, ca);
    CU_ASSERT_TRUE(l.cfg.dry_run);
    CU_ASSERT_EQUAL(l.cfg.on_error, 1);
    CU_ASSERT_STRING_EQUAL(l.cfg.origin, "east"); /* unrelated and malformed entries ignored */
    unload(&l);
    remove_temp(ca);
}

static void test_config_env_bad_value_names_the_variable(void)
{
    assert_load_error(VEC("--pg.conninfo=x"), VEC("XDCR_BATCH_ROWS=1.5"),
                      "invalid value \"1.5\" for \"batch.rows\" (env XDCR_BATCH_ROWS): expected "
                      "an integer");
}

/* ---- flags ---- */

static void test_config_flags_accept_equals_and_separate_value(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l,
                         VEC("--pg.conninfo=host=a port=5", "--origin", "west", "--tables", " x ,y",
                             "--offset", "-7", "--on.error=Dead-Letter"),
                         NO_ENV),
                    0);
    CU_ASSERT_STRING_EQUAL(l.cfg.conninfo, "host=a port=5");
    CU_ASSERT_STRING_EQUAL(l.cfg.origin, "west");
    CU_ASSERT_STRING_EQUAL(l.cfg.tables, "x,y");
    CU_ASSERT_EQUAL(l.cfg.offset, -7); /* a value may start with '-' */
    CU_ASSERT_EQUAL(l.cfg.on_error, 2);
    unload(&l);
}

static void test_config_bool_flag_alone_means_true(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("--dry.run", "--pg.conninfo=x"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cfg.dry_run);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--dry.run"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cfg.dry_run);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--dry.run", "off"), VEC("XDCR_DRY_RUN=1")), 0);
    CU_ASSERT_FALSE(l.cfg.dry_run);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--dry.run=no"), NO_ENV), 0);
    CU_ASSERT_FALSE(l.cfg.dry_run);
    unload(&l);
}

static void test_config_double_dash_ends_options(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--"), NO_ENV), 0);
    unload(&l);
    assert_load_error(VEC("--pg.conninfo=x", "--", "--origin=y"), NO_ENV,
                      "unexpected argument \"--origin=y\"");
}

static void test_config_rejects_bad_arguments(void)
{
    assert_load_error(VEC("--pg.conninfo=x", "stray"), NO_ENV, "unexpected argument \"stray\"");
    assert_load_error(VEC("-"), NO_ENV, "unexpected argument \"-\"");
    assert_load_error(VEC("--nope=1"), NO_ENV, "unknown configuration key \"nope\" (flag --nope)");
    assert_load_error(VEC("--nope"), NO_ENV, "unknown configuration key \"nope\" (flag --nope)");
    assert_load_error(VEC("-x"), NO_ENV, "unknown option \"-x\"");
    assert_load_error(VEC("--origin"), NO_ENV, "option --origin requires a value");
    assert_load_error(VEC("--kafka.acks"), NO_ENV, "option --kafka.acks requires a value");
    assert_load_error(VEC("-c"), NO_ENV, "option -c requires a value");
    assert_load_error(VEC("--config"), NO_ENV, "option --config requires a value");
    assert_load_error(VEC("--config="), NO_ENV, "option --config requires a value");
    assert_load_error(VEC("--help=yes"), NO_ENV, "option --help takes no value or \"markdown\"");
    assert_load_error(VEC("--version=1"), NO_ENV, "option --version does not take a value");
    assert_load_error(VEC("--=x"), NO_ENV, "missing option name after \"--\"");
    assert_load_error(VEC("--kafka."), NO_ENV,
                      "unknown configuration key \"kafka.\" (flag --kafka.)");
}

static void test_config_cli_reports_help_version_and_check_config(void)
{
    loaded_t l;

    /* --help and --version need no valid configuration: required keys are not checked. */
    CU_ASSERT_EQUAL(load(&l, VEC("--help"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cli.help);
    CU_ASSERT_FALSE(l.cli.help_markdown);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--help=markdown"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cli.help);
    CU_ASSERT_TRUE(l.cli.help_markdown);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("-h"), VEC("XDCR_BATCH_ROWS=bad")), 0);
    CU_ASSERT_TRUE(l.cli.help);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--version"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cli.version);
    CU_ASSERT_FALSE(l.cli.help);
    unload(&l);
    /* --check-config validates everything. */
    CU_ASSERT_EQUAL(load(&l, VEC("--check-config"), NO_ENV), XDCR_ECONFIG);
    CU_ASSERT_TRUE(l.cli.check_config);
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--check-config", "--pg.conninfo=x"), NO_ENV), 0);
    CU_ASSERT_TRUE(l.cli.check_config);
    unload(&l);
}

static void test_config_load_with_null_cli_and_no_args(void)
{
    sample_cfg_t cfg = {0};
    char *const env[] = {NULL};
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_config_load(&spec, &cfg, NULL, env, 0, NULL, NULL, &err), XDCR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\"pg.conninfo\""));
    xdcr_config_free(&spec, &cfg);
    CU_ASSERT_EQUAL(xdcr_config_load(NULL, &cfg, NULL, NULL, 0, NULL, NULL, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_config_load(&spec, NULL, NULL, NULL, 0, NULL, NULL, &err), XDCR_EINVAL);
}

/* ---- values, bounds, required ---- */

static void test_config_bad_values_name_key_source_and_reason(void)
{
    assert_load_error(VEC("--pg.conninfo=x", "--batch.rows=abc"), NO_ENV,
                      "invalid value \"abc\" for \"batch.rows\" (flag --batch.rows): expected an "
                      "integer");
    assert_load_error(VEC("--pg.conninfo=x", "--dry.run=maybe"), NO_ENV,
                      "invalid value \"maybe\" for \"dry.run\" (flag --dry.run): expected true, "
                      "false, on, off, yes, no, 1 or 0");
    assert_load_error(VEC("--pg.conninfo=x", "--flush.interval=5x"), NO_ENV,
                      "invalid value \"5x\" for \"flush.interval\" (flag --flush.interval): "
                      "expected a non-negative integer with an optional unit ms, s, m, h or d "
                      "(default ms)");
    assert_load_error(VEC("--pg.conninfo=x", "--max.bytes=12XB"), NO_ENV,
                      "invalid value \"12XB\" for \"max.bytes\" (flag --max.bytes): expected a "
                      "non-negative integer with an optional unit B, kB, MB, GB or TB (default "
                      "bytes, 1 kB = 1024 B)");
    assert_load_error(VEC("--pg.conninfo=x", "--on.error=ignore"), NO_ENV,
                      "invalid value \"ignore\" for \"on.error\" (flag --on.error): expected one "
                      "of: halt, skip, dead-letter");
    assert_load_error(VEC("--pg.conninfo=x", "--tables=a,,b"), NO_ENV,
                      "invalid value \"a,,b\" for \"tables\" (flag --tables): empty element in a "
                      "comma separated list");
    assert_load_error(VEC("--pg.conninfo=x", "--tables=a,"), NO_ENV,
                      "invalid value \"a,\" for \"tables\" (flag --tables): empty element in a "
                      "comma separated list");
}

static void test_config_long_bad_value_is_shortened_in_message(void)
{
    char flag[400] = "--batch.rows=";
    loaded_t l;

    memset(flag + strlen(flag), '9', 300);
    flag[sizeof(flag) - 1] = '\0';
    memset(flag + 13, 'z', 1); /* not a number */
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", flag), NO_ENV), XDCR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.err.message, "...\" for \"batch.rows\""));
    CU_ASSERT(strlen(l.err.message) < 250);
    unload(&l);
}

static void test_config_bounds_are_inclusive_and_checked(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(
        load(&l,
             VEC("--pg.conninfo=x", "--batch.rows=1", "--flush.interval=10ms", "--max.bytes=1kB"),
             NO_ENV),
        0);
    CU_ASSERT_EQUAL(l.cfg.batch_rows, 1);
    CU_ASSERT_EQUAL(l.cfg.flush_ms, 10);
    CU_ASSERT_EQUAL(l.cfg.max_bytes, 1024);
    unload(&l);
    CU_ASSERT_EQUAL(
        load(&l,
             VEC("--pg.conninfo=x", "--batch.rows=10000", "--flush.interval=1h", "--max.bytes=1GB"),
             NO_ENV),
        0);
    CU_ASSERT_EQUAL(l.cfg.flush_ms, 3600000);
    CU_ASSERT_EQUAL(l.cfg.max_bytes, INT64_C(1) << 30);
    unload(&l);
    assert_load_error(VEC("--pg.conninfo=x", "--batch.rows=0"), NO_ENV,
                      "invalid value for \"batch.rows\" (flag --batch.rows): 0 is outside the "
                      "valid range 1..10000");
    assert_load_error(VEC("--pg.conninfo=x", "--batch.rows=10001"), NO_ENV,
                      "invalid value for \"batch.rows\" (flag --batch.rows): 10001 is outside the "
                      "valid range 1..10000");
    assert_load_error(VEC("--pg.conninfo=x", "--flush.interval=9"), NO_ENV,
                      "invalid value for \"flush.interval\" (flag --flush.interval): 9ms is "
                      "outside the valid range 10ms..1h");
    assert_load_error(VEC("--pg.conninfo=x", "--flush.interval=61m"), NO_ENV,
                      "invalid value for \"flush.interval\" (flag --flush.interval): 61m is "
                      "outside the valid range 10ms..1h");
    assert_load_error(VEC("--pg.conninfo=x", "--max.bytes=2GB"), NO_ENV,
                      "invalid value for \"max.bytes\" (flag --max.bytes): 2GB is outside the "
                      "valid range 1kB..1GB");
    assert_load_error(VEC("--pg.conninfo=x", "--max.bytes=1023"), NO_ENV,
                      "invalid value for \"max.bytes\" (flag --max.bytes): 1023B is outside the "
                      "valid range 1kB..1GB");
}

static void test_config_overflow_is_rejected(void)
{
    loaded_t l;

    assert_load_error(VEC("--pg.conninfo=x", "--offset=9223372036854775808"), NO_ENV,
                      "invalid value \"9223372036854775808\" for \"offset\" (flag --offset): "
                      "integer out of range");
    assert_load_error(VEC("--pg.conninfo=x", "--flush.interval=9223372036854775807h"), NO_ENV,
                      "invalid value \"9223372036854775807h\" for \"flush.interval\" (flag "
                      "--flush.interval): value is too large");
    assert_load_error(VEC("--pg.conninfo=x", "--max.bytes=99999999999999999999"), NO_ENV,
                      "invalid value \"99999999999999999999\" for \"max.bytes\" (flag "
                      "--max.bytes): number is too large");
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--offset=-9223372036854775808"), NO_ENV), 0);
    CU_ASSERT_EQUAL(l.cfg.offset, INT64_MIN); /* min > max: no bounds */
    unload(&l);
}

static void test_config_required_key_missing_or_empty_is_an_error(void)
{
    static const char want[] = "missing required configuration key \"pg.conninfo\": set it in "
                               "the configuration file, with XDCR_PG_CONNINFO or with "
                               "--pg.conninfo";

    assert_load_error(VEC(NULL), NO_ENV, want);
    assert_load_error(VEC("--pg.conninfo="), NO_ENV, want);
    assert_load_error(VEC(NULL), VEC("XDCR_PG_CONNINFO="), want);
}

static void test_config_bad_default_is_reported(void)
{
    static const xdcr_option_t opts[] = {
        {"n", XDCR_OPT_INT, "ten", 0, -1, 0, 0, NULL, "n"},
        {0},
    };
    static const xdcr_config_spec_t bad = {"p", "s", opts, NULL, "XDCR_"};
    int64_t cfg = 0;
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_config_load(&bad, &cfg, NULL, NULL, 0, NULL, NULL, &err), XDCR_ECONFIG);
    assert_msg(err.message, "invalid value \"ten\" for \"n\" (default): expected an integer");
}

/* ---- FILE options ---- */

static void test_config_file_option_must_name_a_readable_file(void)
{
    char *ok = write_temp_str("pem");
    char dir[] = "/tmp/xdcr_test_config_dir_XXXXXX";
    char flag[256], want[512];
    loaded_t l;

    snprintf(flag, sizeof(flag), "--tls.ca-file=%s", ok);
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", flag), NO_ENV), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.ca_file, ok);
    unload(&l);

    assert_load_error(VEC("--pg.conninfo=x", "--tls.ca-file=/nonexistent/ca.pem"), NO_ENV,
                      "could not read file \"/nonexistent/ca.pem\" named by \"tls.ca-file\" "
                      "(flag --tls.ca-file): No such file or directory");
    /* a path is not a secret even when the key says "password" */
    assert_load_error(VEC("--pg.conninfo=x"), VEC("XDCR_PG_PASSWORD_FILE=/nonexistent/pw"),
                      "could not read file \"/nonexistent/pw\" named by \"pg.password.file\" "
                      "(env XDCR_PG_PASSWORD_FILE): No such file or directory");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(flag, sizeof(flag), "--tls.ca-file=%s", dir);
    snprintf(want, sizeof(want),
             "could not read file \"%s\" named by \"tls.ca-file\" (flag --tls.ca-file): is a "
             "directory",
             dir);
    assert_load_error(VEC("--pg.conninfo=x", flag), NO_ENV, want);
    rmdir(dir);
    if (geteuid() != 0) { /* root reads anything */
        chmod(ok, 0);
        snprintf(flag, sizeof(flag), "--tls.ca-file=%s", ok);
        snprintf(want, sizeof(want),
                 "could not read file \"%s\" named by \"tls.ca-file\" (flag --tls.ca-file): "
                 "Permission denied",
                 ok);
        assert_load_error(VEC("--pg.conninfo=x", flag), NO_ENV, want);
    }
    remove_temp(ok);
}

static void test_config_file_option_is_checked_only_for_the_final_value(void)
{
    char *ok = write_temp_str("pem");
    char *conf = write_temp_str("pg.conninfo = x\ntls.ca-file = /nonexistent/old.pem\n");
    char flag[256];
    loaded_t l;

    snprintf(flag, sizeof(flag), "--tls.ca-file=%s", ok);
    CU_ASSERT_EQUAL(load(&l, VEC("-c", conf, flag), NO_ENV), 0);
    unload(&l);
    remove_temp(ok);
    remove_temp(conf);
}

/* ---- secrets ---- */

static void test_config_secret_values_never_appear_in_errors(void)
{
    char *unterminated = write_temp_str("pg.password = \"hunter2\n");
    char *noeq = write_temp_str("pg.password \"hunter2\"\n");
    char *unknown = write_temp_str("pg.passwrd = hunter2\n");
    char *const files[] = {unterminated, noeq, unknown};
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--auth.pin=hunter2"), NO_ENV), XDCR_ECONFIG);
    assert_msg(l.err.message, "invalid value for \"auth.pin\" (flag --auth.pin): expected an "
                              "integer");
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x"), VEC("XDCR_AUTH_PIN=98765")), XDCR_ECONFIG);
    assert_msg(l.err.message, "invalid value for \"auth.pin\" (env XDCR_AUTH_PIN): outside the "
                              "valid range 1000..9999");
    unload(&l);
    CU_ASSERT_EQUAL(load(&l, VEC("--nope=hunter2"), NO_ENV), XDCR_ECONFIG);
    CU_ASSERT_PTR_NULL(strstr(l.err.message, "hunter2"));
    unload(&l);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "-c", files[i]), NO_ENV), XDCR_ECONFIG);
        CU_ASSERT_PTR_NULL(strstr(l.err.message, "hunter2"));
        CU_ASSERT_PTR_NOT_NULL(strstr(l.err.message, ":1)"));
        unload(&l);
        remove_temp(files[i]);
    }
}

static void test_config_secret_values_are_loaded(void)
{
    loaded_t l;

    CU_ASSERT_EQUAL(
        load(&l, VEC("--pg.conninfo=x", "--auth.pin", "4242"), VEC("XDCR_PG_PASSWORD=hunter2")), 0);
    CU_ASSERT_STRING_EQUAL(l.cfg.pg_password, "hunter2");
    CU_ASSERT_EQUAL(l.cfg.pin, 4242);
    unload(&l);
}

/* ---- help and docs ---- */

static void test_config_help_lists_every_option_with_type_default_env_and_help(void)
{
    char *h = capture_help(false);

    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(strncmp(h, "usage: xdcr-test [options]", 26), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "exercise the configuration loader"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "--check-config"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "--version"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "-c, --config FILE"));
    for (const xdcr_option_t *o = sample_options; o->name != NULL; o++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(h, o->name));
        CU_ASSERT_PTR_NOT_NULL(strstr(h, o->help));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "XDCR_PG_CONNINFO"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "XDCR_TLS_CA_FILE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "duration"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "16MB"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(required)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(secret)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(one of: halt, skip, dead-letter)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(range 10ms..1h)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(range 1kB..1GB)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "XDCR_KAFKA_BOOTSTRAP_SERVERS"));
    CU_ASSERT_PTR_NULL(strstr(h, PIN_DEFAULT));
    free(h);
}

static void test_config_help_rows_are_aligned(void)
{
    char *h = capture_help(false);
    const char *hdr = strstr(h, "  KEY  ");
    const char *row = strstr(h, "\n  batch.rows ");
    const char *ty_hdr, *ty_row;

    CU_ASSERT_PTR_NOT_NULL_FATAL(hdr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    row++;
    ty_hdr = strstr(hdr, "TYPE");
    ty_row = strstr(row, "int ");
    CU_ASSERT_EQUAL(ty_hdr - hdr, ty_row - row);
    free(h);
}

static void test_config_markdown_has_table_and_passthrough_note(void)
{
    char *md = capture_help(true);

    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| key | type | default | env | description |\n"
                                      "|---|---|---|---|---|\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| `batch.rows` | int | `100` | `XDCR_BATCH_ROWS` | rows "
                                      "per batch (range 1..10000) |\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| `pg.conninfo` | string | (required) | "
                                      "`XDCR_PG_CONNINFO` | libpq connection string of the "
                                      "source |\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| `auth.pin` | int | (secret) | `XDCR_AUTH_PIN` |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| `pg.password` | string | - | `XDCR_PG_PASSWORD` |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "Pass-through keys"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "`kafka.`"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "`XDCR_KAFKA_ACKS`"));
    CU_ASSERT_PTR_NULL(strstr(md, PIN_DEFAULT));
    /* every table row has exactly six pipes */
    for (const char *p = strstr(md, "| `"); p != NULL; p = strstr(p + 1, "\n| `")) {
        const char *q = *p == '\n' ? p + 1 : p;
        int pipes = 0;

        for (; *q != '\n' && *q != '\0'; q++)
            pipes += *q == '|';
        CU_ASSERT_EQUAL(pipes, 6);
    }
    free(md);
}

/* ---- pass-through ---- */

static void test_config_passthrough_collected_from_file_env_and_flags(void)
{
    char *path = write_temp_str("pg.conninfo = x\n"
                                "kafka.bootstrap.servers = f:9092\n"
                                "kafka.acks = 1\n");
    char src[300];
    loaded_t l;

    CU_ASSERT_EQUAL(
        load(&l, VEC("-c", path, "--kafka.linger.ms", "20", "--kafka.client.id=cli"),
             VEC("XDCR_KAFKA_ACKS=all", "XDCR_KAFKA_SASL_PASSWORD=pw", "XDCR_KAFKA_TOPIC=t.env",
                 "XDCR_KAFKA_SERVICE_HOST=10.0.0.1", "XDCR_KAFKA_SERVICE_PORT_BROKER=9092",
                 "XDCR_KAFKA_PORT=tcp://10.0.0.1:9092", "XDCR_KAFKA_PORT_9092_TCP_ADDR=10.0.0.1",
                 "XDCR_KAFKA_=x")),
        0);
    CU_ASSERT_EQUAL(l.pt.count, 5);
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "bootstrap.servers"), "f:9092");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "acks"), "all");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "sasl.password"), "pw");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "linger.ms"), "20");
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&l.pt, "client.id"), "cli");
    CU_ASSERT_PTR_NULL(xdcr_kv_list_get(&l.pt, "topic")); /* an option, not pass-through */
    CU_ASSERT_STRING_EQUAL(l.cfg.kafka_topic, "t.env");
    for (size_t i = 0; i < l.pt.count; i++) {
        const xdcr_kv_t *kv = &l.pt.items[i];

        if (strcmp(kv->key, "bootstrap.servers") == 0) {
            snprintf(src, sizeof(src), "file %s:2", path);
            CU_ASSERT_STRING_EQUAL(kv->source, src);
        } else if (strcmp(kv->key, "acks") == 0) {
            CU_ASSERT_STRING_EQUAL(kv->source, "env XDCR_KAFKA_ACKS");
        } else if (strcmp(kv->key, "linger.ms") == 0) {
            CU_ASSERT_STRING_EQUAL(kv->source, "flag --kafka.linger.ms");
        }
    }
    unload(&l);
    remove_temp(path);
}

static void test_config_without_passthrough_prefix_kafka_keys_are_unknown(void)
{
    static const xdcr_option_t opts[] = {
        {"origin", XDCR_OPT_STRING, NULL, 0, -1, 0, 0, NULL, "origin"},
        {0},
    };
    static const xdcr_config_spec_t nopt = {"p", "s", opts, NULL, "XDCR_"};
    char a0[] = "p", a1[] = "--kafka.acks=1", e0[] = "XDCR_KAFKA_ACKS=1";
    char *const argv[] = {a0, a1, NULL};
    char *const env[] = {e0, NULL};
    char *origin = NULL;
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_config_load(&nopt, &origin, NULL, env, 1, argv, NULL, &err), 0);
    CU_ASSERT_EQUAL(xdcr_config_load(&nopt, &origin, NULL, env, 2, argv, NULL, &err), XDCR_ECONFIG);
    assert_msg(err.message, "unknown configuration key \"kafka.acks\" (flag --kafka.acks)");
    xdcr_config_free(&nopt, &origin);
}

static int rdkafka_setter(void *ctx, const char *key, const char *value, char *errbuf,
                          size_t errlen)
{
    return rd_kafka_conf_set(ctx, key, value, errbuf, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static void test_kv_list_apply_sets_real_librdkafka_properties(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    xdcr_kv_list_t list = {0};
    char val[128];
    size_t len = sizeof(val);
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, "bootstrap.servers", "127.0.0.1:9092", "flag", &err),
                    0);
    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, "client.id", "xdcr-east", "env", &err), 0);
    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, "acks", "all", "file /x:1", &err), 0);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "kafka.", rdkafka_setter, conf, &err), 0);
    CU_ASSERT_EQUAL(rd_kafka_conf_get(conf, "client.id", val, &len), RD_KAFKA_CONF_OK);
    CU_ASSERT_STRING_EQUAL(val, "xdcr-east");
    xdcr_kv_list_free(&list);
    rd_kafka_conf_destroy(conf);
}

static void test_kv_list_apply_reports_rejected_librdkafka_property(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    xdcr_kv_list_t list = {0};
    xdcr_error_t err;
    const char *prefix;

    xdcr_kv_list_set(&list, "bootstrap.servers", "127.0.0.1:9092", "flag", &err);
    xdcr_kv_list_set(&list, "acks", "bogus", "file /etc/xdcr/forwarder.conf:7", &err);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "kafka.", rdkafka_setter, conf, &err), XDCR_ECONFIG);
    CU_ASSERT_EQUAL(err.code, XDCR_ECONFIG);
    prefix = "invalid kafka.acks (file /etc/xdcr/forwarder.conf:7): ";
    CU_ASSERT_EQUAL(strncmp(err.message, prefix, strlen(prefix)), 0);
    CU_ASSERT(strlen(err.message) > strlen(prefix));              /* librdkafka's reason follows */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "Invalid value")); /* librdkafka's reason */
    xdcr_kv_list_free(&list);

    xdcr_kv_list_set(&list, "no.such.prop", "1", "flag --kafka.no.such.prop", &err);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "kafka.", rdkafka_setter, conf, &err), XDCR_ECONFIG);
    prefix = "invalid kafka.no.such.prop (flag --kafka.no.such.prop): ";
    CU_ASSERT_EQUAL(strncmp(err.message, prefix, strlen(prefix)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "no.such.prop\""));
    xdcr_kv_list_free(&list);
    rd_kafka_conf_destroy(conf);
}

static void test_kv_list_apply_from_loaded_config_names_the_flag(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    xdcr_error_t err;
    loaded_t l;

    CU_ASSERT_EQUAL(load(&l, VEC("--pg.conninfo=x", "--kafka.acks=bogus"), NO_ENV), 0);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&l.pt, "kafka.", rdkafka_setter, conf, &err), XDCR_ECONFIG);
    CU_ASSERT_EQUAL(strncmp(err.message, "invalid kafka.acks (flag --kafka.acks): ", 40), 0);
    unload(&l);
    rd_kafka_conf_destroy(conf);
}

static int echoing_setter(void *ctx, const char *key, const char *value, char *errbuf,
                          size_t errlen)
{
    int *calls = ctx;

    (*calls)++;
    snprintf(errbuf, errlen, "Invalid value \"%s\" for configuration property \"%s\"", value, key);
    return -1;
}

static void test_kv_list_apply_redacts_secret_values_in_library_errors(void)
{
    xdcr_kv_list_t list = {0};
    xdcr_error_t err;
    int calls = 0;

    xdcr_kv_list_set(&list, "sasl.password", "hunter2", "env XDCR_KAFKA_SASL_PASSWORD", &err);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "kafka.", echoing_setter, &calls, &err),
                    XDCR_ECONFIG);
    assert_msg(err.message, "invalid kafka.sasl.password (env XDCR_KAFKA_SASL_PASSWORD): Invalid "
                            "value \"[redacted]\" for configuration property \"sasl.password\"");
    xdcr_kv_list_free(&list);
    CU_ASSERT_EQUAL(calls, 1);
}

static int failing_silently(void *ctx, const char *key, const char *value, char *errbuf,
                            size_t errlen)
{
    return 1;
}

static void test_kv_list_apply_stops_at_first_failure_and_handles_empty_reason(void)
{
    xdcr_kv_list_t list = {0};
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "kafka.", failing_silently, NULL, &err), 0);
    xdcr_kv_list_set(&list, "a", "1", NULL, &err);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, NULL, failing_silently, NULL, &err), XDCR_ECONFIG);
    assert_msg(err.message, "invalid a (set): rejected");
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(&list, "k.", NULL, NULL, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_kv_list_apply(NULL, "k.", failing_silently, NULL, &err), 0);
    xdcr_kv_list_free(&list);
}

static void test_kv_list_set_replaces_and_get_finds(void)
{
    xdcr_kv_list_t list = {0};
    xdcr_error_t err;

    for (int i = 0; i < 40; i++) {
        char k[16];

        snprintf(k, sizeof(k), "k%d", i);
        CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, k, "v", "s", &err), 0);
    }
    CU_ASSERT_EQUAL(list.count, 40);
    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, "k7", "new", "later", &err), 0);
    CU_ASSERT_EQUAL(list.count, 40);
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&list, "k7"), "new");
    CU_ASSERT_STRING_EQUAL(list.items[7].source, "later");
    CU_ASSERT_PTR_NULL(xdcr_kv_list_get(&list, "k40"));
    CU_ASSERT_PTR_NULL(xdcr_kv_list_get(NULL, "k1"));
    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, "", "v", "s", &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_kv_list_set(&list, NULL, "v", "s", &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_kv_list_set(NULL, "k", "v", "s", &err), XDCR_EINVAL);
    xdcr_kv_list_free(&list);
    CU_ASSERT_EQUAL(list.count, 0);
    CU_ASSERT_PTR_NULL(list.items);
    xdcr_kv_list_free(&list);
    xdcr_kv_list_free(NULL);
}

/* ---- xdcr_config_set and free ---- */

static void test_config_set_sets_options_and_passthrough_keys(void)
{
    sample_cfg_t cfg = {0};
    xdcr_kv_list_t pt = {0};
    xdcr_error_t err;

    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "origin", "a", "test", &err), 0);
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "origin", "b", "test", &err), 0);
    CU_ASSERT_STRING_EQUAL(cfg.origin, "b");
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "kafka.acks", "all", NULL, &err), 0);
    CU_ASSERT_STRING_EQUAL(xdcr_kv_list_get(&pt, "acks"), "all");
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "nope", "1", "cli", &err), XDCR_ECONFIG);
    assert_msg(err.message, "unknown configuration key \"nope\" (cli)");
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, NULL, "kafka.acks", "1", "cli", &err),
                    XDCR_ECONFIG);
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "tls.ca-file", "/nonexistent", "cli", &err),
                    XDCR_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\"/nonexistent\""));
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "batch.rows", "0", "cli", &err),
                    XDCR_ECONFIG);
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, NULL, "1", "cli", &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_config_set(&spec, &cfg, &pt, "origin", NULL, "cli", &err), XDCR_EINVAL);
    xdcr_config_free(&spec, &cfg);
    CU_ASSERT_PTR_NULL(cfg.origin);
    xdcr_config_free(&spec, &cfg); /* twice is fine */
    xdcr_config_free(&spec, NULL);
    xdcr_config_free(NULL, &cfg);
    xdcr_kv_list_free(&pt);
}

/* ---- parse helpers ---- */

static void test_parse_duration_accepts_units_and_bare_milliseconds(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"250ms", 250},   {"5s", 5000},   {"2m", 120000}, {"1h", 3600000},
        {"1d", 86400000}, {"42", 42},     {"0", 0},       {" 5 s ", 5000},
        {"3min", 180000}, {"007s", 7000}, {"0ms", 0},     {"9223372036854775807", INT64_MAX},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        xdcr_error_t err;

        CU_ASSERT_EQUAL(xdcr_parse_duration_ms(ok[i].s, &v, &err), 0);
        CU_ASSERT_EQUAL(v, ok[i].ms);
    }
}

static void test_parse_duration_rejects_garbage_negative_and_overflow(void)
{
    static const struct {
        const char *s;
        int code;
    } bad[] = {
        {"", XDCR_EPARSE},
        {"s", XDCR_EPARSE},
        {"-1s", XDCR_EPARSE},
        {"1.5s", XDCR_EPARSE},
        {"5x", XDCR_EPARSE},
        {"5 ms x", XDCR_EPARSE},
        {"1S", XDCR_EPARSE},
        {"1 h 2", XDCR_EPARSE},
        {"+1s", XDCR_EPARSE},
        {"9223372036854775807s", XDCR_ERANGE},
        {"99999999999999999999", XDCR_ERANGE},
        {"106751991167301d", XDCR_ERANGE},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -1;
        xdcr_error_t err;

        CU_ASSERT_EQUAL(xdcr_parse_duration_ms(bad[i].s, &v, &err), bad[i].code);
        CU_ASSERT_EQUAL(err.code, bad[i].code);
        CU_ASSERT_EQUAL(v, -1);
        CU_ASSERT_EQUAL(strncmp(err.message, "invalid duration \"", 18), 0);
    }
}

static void test_parse_size_accepts_units_in_powers_of_1024(void)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } ok[] = {
        {"512", 512},
        {"64kB", 64 << 10},
        {"64KB", 64 << 10},
        {"64kb", 64 << 10},
        {"16MB", 16 << 20},
        {"1GB", INT64_C(1) << 30},
        {"2TB", INT64_C(2) << 40},
        {"10B", 10},
        {"3 MiB", 3 << 20},
        {"0", 0},
        {"8388607TB", INT64_C(8388607) << 40},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        xdcr_error_t err;

        CU_ASSERT_EQUAL(xdcr_parse_size_bytes(ok[i].s, &v, &err), 0);
        CU_ASSERT_EQUAL(v, ok[i].bytes);
    }
}

static void test_parse_size_rejects_garbage_negative_and_overflow(void)
{
    static const struct {
        const char *s;
        int code;
    } bad[] = {
        {"", XDCR_EPARSE},          {"MB", XDCR_EPARSE},
        {"-1", XDCR_EPARSE},        {"1.5MB", XDCR_EPARSE},
        {"12XB", XDCR_EPARSE},      {"1 PB", XDCR_EPARSE},
        {"8388608TB", XDCR_ERANGE}, {"9223372036854775808", XDCR_ERANGE},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -1;
        xdcr_error_t err;

        CU_ASSERT_EQUAL(xdcr_parse_size_bytes(bad[i].s, &v, &err), bad[i].code);
        CU_ASSERT_EQUAL(v, -1);
        CU_ASSERT_EQUAL(strncmp(err.message, "invalid size \"", 14), 0);
    }
}

static void test_parse_bool_accepts_common_spellings(void)
{
    static const char *const yes[] = {"true", "TRUE", "on", "On", "yes", "1", " yes "};
    static const char *const no[] = {"false", "False", "off", "OFF", "no", "0"};
    static const char *const bad[] = {"maybe", "", "2", "tru", "y", "n", "onn"};
    xdcr_error_t err;
    bool b;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        CU_ASSERT_EQUAL(xdcr_parse_bool(yes[i], &b, &err), 0);
        CU_ASSERT_TRUE(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        CU_ASSERT_EQUAL(xdcr_parse_bool(no[i], &b, &err), 0);
        CU_ASSERT_FALSE(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(xdcr_parse_bool(bad[i], &b, &err), XDCR_EPARSE);
        CU_ASSERT_EQUAL(strncmp(err.message, "invalid boolean \"", 17), 0);
    }
    CU_ASSERT_EQUAL(xdcr_parse_bool(NULL, &b, &err), XDCR_EINVAL);
}

static void test_parse_int64_accepts_full_range_and_rejects_the_rest(void)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},
        {"-1", -1},
        {"+7", 7},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {" 12 ", 12},
    };
    static const struct {
        const char *s;
        int code;
    } bad[] = {
        {"", XDCR_EPARSE},
        {"-", XDCR_EPARSE},
        {"1e3", XDCR_EPARSE},
        {"0x10", XDCR_EPARSE},
        {"12abc", XDCR_EPARSE},
        {"1 2", XDCR_EPARSE},
        {"9223372036854775808", XDCR_ERANGE},
        {"-9223372036854775809", XDCR_ERANGE},
        {"99999999999999999999999", XDCR_ERANGE},
    };
    xdcr_error_t err;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = 99;

        CU_ASSERT_EQUAL(xdcr_parse_int64(ok[i].s, &v, &err), 0);
        CU_ASSERT_EQUAL(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 99;

        CU_ASSERT_EQUAL(xdcr_parse_int64(bad[i].s, &v, &err), bad[i].code);
        CU_ASSERT_EQUAL(v, 99);
        CU_ASSERT_EQUAL(strncmp(err.message, "invalid integer \"", 17), 0);
    }
}

/* ---- secret files ---- */

static void test_read_secret_file_strips_trailing_newlines(void)
{
    static const struct {
        const char *content;
        const char *want;
    } cases[] = {
        {"s3cret\n", "s3cret"},
        {"s3cret\r\n", "s3cret"},
        {"s3cret", "s3cret"},
        {"s3cret\n\n", "s3cret"},
        {" spaced secret \n", " spaced secret "},
        {"multi\nline\n", "multi\nline"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_temp_str(cases[i].content);
        char *s = NULL;
        xdcr_error_t err;

        CU_ASSERT_EQUAL(xdcr_read_secret_file(path, &s, &err), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        CU_ASSERT_STRING_EQUAL(s, cases[i].want);
        free(s);
        remove_temp(path);
    }
}

static void test_read_secret_file_errors_name_path_never_content(void)
{
    static const struct {
        const char *content;
        size_t len;
        const char *why;
    } cases[] = {
        {"", 0, "is empty"},
        {"\r\n", 2, "is empty"},
        {"TOP\0SECRET\n", 11, "contains a NUL byte"},
    };
    char want[512];
    char *s = NULL;
    xdcr_error_t err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_temp(cases[i].content, cases[i].len);

        CU_ASSERT_EQUAL(xdcr_read_secret_file(path, &s, &err), XDCR_ECONFIG);
        CU_ASSERT_PTR_NULL(s);
        snprintf(want, sizeof(want), "secret file \"%s\" %s", path, cases[i].why);
        assert_msg(err.message, want);
        CU_ASSERT_PTR_NULL(strstr(err.message, "TOP"));
        remove_temp(path);
    }
    CU_ASSERT_EQUAL(xdcr_read_secret_file("/nonexistent/pw", &s, &err), XDCR_ECONFIG);
    assert_msg(err.message,
               "could not open secret file \"/nonexistent/pw\": No such file or directory");
    CU_ASSERT_EQUAL(xdcr_read_secret_file(NULL, &s, &err), XDCR_EINVAL);
    CU_ASSERT_EQUAL(xdcr_read_secret_file("/x", NULL, &err), XDCR_EINVAL);
}

static void test_read_secret_file_limit_is_64_kib(void)
{
    enum { MAX = 64 * 1024 };
    char *buf = malloc(MAX + 2);
    char *path, *s = NULL;
    char want[512];
    xdcr_error_t err;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memset(buf, 'k', MAX + 1);
    path = write_temp(buf, MAX);
    CU_ASSERT_EQUAL(xdcr_read_secret_file(path, &s, &err), 0);
    CU_ASSERT_EQUAL(s != NULL ? strlen(s) : 0, MAX);
    free(s);
    s = NULL;
    remove_temp(path);

    path = write_temp(buf, MAX + 1);
    CU_ASSERT_EQUAL(xdcr_read_secret_file(path, &s, &err), XDCR_ECONFIG);
    CU_ASSERT_PTR_NULL(s);
    snprintf(want, sizeof(want), "secret file \"%s\" is larger than 64 kB", path);
    assert_msg(err.message, want);
    remove_temp(path);
    free(buf);
}

int main(void)
{
    static const xdcr_test_case_t cases[] = {
        XDCR_TEST(test_config_defaults_apply_when_no_source_sets_a_key),
        XDCR_TEST(test_config_precedence_is_default_file_env_flag),
        XDCR_TEST(test_config_file_comes_from_flag_or_config_env),
        XDCR_TEST(test_config_file_accepts_comments_quotes_and_blank_lines),
        XDCR_TEST(test_config_file_later_line_wins),
        XDCR_TEST(test_config_file_unknown_key_names_key_and_file_line),
        XDCR_TEST(test_config_file_syntax_errors_name_file_and_line),
        XDCR_TEST(test_config_file_rejects_nul_bytes),
        XDCR_TEST(test_config_file_bad_value_names_file_and_line),
        XDCR_TEST(test_config_missing_or_unreadable_file_is_a_config_error),
        XDCR_TEST(test_config_env_maps_dots_and_dashes_to_upper_underscores),
        XDCR_TEST(test_config_env_bad_value_names_the_variable),
        XDCR_TEST(test_config_flags_accept_equals_and_separate_value),
        XDCR_TEST(test_config_bool_flag_alone_means_true),
        XDCR_TEST(test_config_double_dash_ends_options),
        XDCR_TEST(test_config_rejects_bad_arguments),
        XDCR_TEST(test_config_cli_reports_help_version_and_check_config),
        XDCR_TEST(test_config_load_with_null_cli_and_no_args),
        XDCR_TEST(test_config_bad_values_name_key_source_and_reason),
        XDCR_TEST(test_config_long_bad_value_is_shortened_in_message),
        XDCR_TEST(test_config_bounds_are_inclusive_and_checked),
        XDCR_TEST(test_config_overflow_is_rejected),
        XDCR_TEST(test_config_required_key_missing_or_empty_is_an_error),
        XDCR_TEST(test_config_bad_default_is_reported),
        XDCR_TEST(test_config_file_option_must_name_a_readable_file),
        XDCR_TEST(test_config_file_option_is_checked_only_for_the_final_value),
        XDCR_TEST(test_config_secret_values_never_appear_in_errors),
        XDCR_TEST(test_config_secret_values_are_loaded),
        XDCR_TEST(test_config_help_lists_every_option_with_type_default_env_and_help),
        XDCR_TEST(test_config_help_rows_are_aligned),
        XDCR_TEST(test_config_markdown_has_table_and_passthrough_note),
        XDCR_TEST(test_config_passthrough_collected_from_file_env_and_flags),
        XDCR_TEST(test_config_without_passthrough_prefix_kafka_keys_are_unknown),
        XDCR_TEST(test_kv_list_apply_sets_real_librdkafka_properties),
        XDCR_TEST(test_kv_list_apply_reports_rejected_librdkafka_property),
        XDCR_TEST(test_kv_list_apply_from_loaded_config_names_the_flag),
        XDCR_TEST(test_kv_list_apply_redacts_secret_values_in_library_errors),
        XDCR_TEST(test_kv_list_apply_stops_at_first_failure_and_handles_empty_reason),
        XDCR_TEST(test_kv_list_set_replaces_and_get_finds),
        XDCR_TEST(test_config_set_sets_options_and_passthrough_keys),
        XDCR_TEST(test_parse_duration_accepts_units_and_bare_milliseconds),
        XDCR_TEST(test_parse_duration_rejects_garbage_negative_and_overflow),
        XDCR_TEST(test_parse_size_accepts_units_in_powers_of_1024),
        XDCR_TEST(test_parse_size_rejects_garbage_negative_and_overflow),
        XDCR_TEST(test_parse_bool_accepts_common_spellings),
        XDCR_TEST(test_parse_int64_accepts_full_range_and_rejects_the_rest),
        XDCR_TEST(test_read_secret_file_strips_trailing_newlines),
        XDCR_TEST(test_read_secret_file_errors_name_path_never_content),
        XDCR_TEST(test_read_secret_file_limit_is_64_kib),
        XDCR_TEST_END,
    };

    return xdcr_test_run("config", cases);
}
