/*
 * fuzz_config.c - libFuzzer target for the configuration loader: arbitrary bytes as a config
 * file (through a memfd) against an option table with every option type. Whatever happens, the
 * loader must return 0 or an error with a message, never crash or leak, and never put the
 * secret's value into an error message.
 */
#include "xdcr/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_cfg {
    char *name;
    int64_t count;
    bool flag;
    int64_t wait_ms;
    int64_t bytes;
    int mode;
    char *list;
    char *secret;
} fuzz_cfg_t;

static const char *const modes[] = {"halt", "dead_letter", NULL};

static const xdcr_option_t options[] = {
    {"name", XDCR_OPT_STRING, "x", 0, -1, offsetof(fuzz_cfg_t, name), 0, NULL, "a string"},
    {"count", XDCR_OPT_INT, "1", 0, 1000000, offsetof(fuzz_cfg_t, count), 0, NULL, "an int"},
    {"flag", XDCR_OPT_BOOL, "false", 0, -1, offsetof(fuzz_cfg_t, flag), 0, NULL, "a bool"},
    {"wait", XDCR_OPT_DURATION, "1s", 0, 3600000, offsetof(fuzz_cfg_t, wait_ms), 0, NULL,
     "a duration"},
    {"size", XDCR_OPT_SIZE, "1MB", 0, INT64_MAX, offsetof(fuzz_cfg_t, bytes), 0, NULL, "a size"},
    {"mode", XDCR_OPT_ENUM, "halt", 0, -1, offsetof(fuzz_cfg_t, mode), 0, modes, "an enum"},
    {"list", XDCR_OPT_LIST, "", 0, -1, offsetof(fuzz_cfg_t, list), 0, NULL, "a list"},
    {"pg.password", XDCR_OPT_STRING, NULL, 0, -1, offsetof(fuzz_cfg_t, secret), XDCR_OPT_F_SECRET,
     NULL, "a secret"},
    {NULL, 0, NULL, 0, 0, 0, 0, NULL, NULL}};

static const xdcr_config_spec_t spec = {.program = "fuzz",
                                        .summary = "fuzz",
                                        .options = options,
                                        .passthrough_prefix = "kafka.",
                                        .env_prefix = "XDCR_FUZZ_"};

/*
 * Does needle occur in a line of data that does not set pg.password (a coincidence: another
 * key has the same value, and its error quotes it)? Also when that line writes it with escapes.
 */
static bool in_other_line(const uint8_t *data, size_t size, const char *needle)
{
    size_t n = strlen(needle), line = 0;

    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        const uint8_t *l = data + line;
        size_t len = i - line;
        size_t k = 0;
        bool is_secret_line;

        while (k < len && (l[k] == ' ' || l[k] == '\t'))
            k++;
        is_secret_line = len - k >= 11 && memcmp(l + k, "pg.password", 11) == 0;
        for (size_t j = k + (is_secret_line ? 11 : 0); is_secret_line && j < len && l[j] != '=';
             j++)
            if (l[j] != ' ' && l[j] != '\t')
                is_secret_line = false; /* a longer key, not pg.password */

        if (!is_secret_line && n > 0 && memmem(l, len, needle, n) != NULL)
            return true;
        if (!is_secret_line && n > 0 && len > 0) {
            /* the same value written with escapes ("s4cr\"et" is s4cr"et): drop backslashes */
            char *plain = malloc(len);
            size_t m = 0;
            bool found;

            if (plain == NULL)
                return true;
            for (size_t j = 0; j < len; j++) {
                if (l[j] == '\\' && j + 1 < len)
                    j++;
                plain[m++] = (char)l[j];
            }
            found = memmem(plain, m, needle, n) != NULL;
            free(plain);
            if (found)
                return true;
        }
        line = i + 1;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    char prog[] = "fuzz", opt[] = "--config";
    char *argv[4];
    char *envp[] = {NULL};
    fuzz_cfg_t cfg;
    xdcr_kv_list_t kafka;
    xdcr_config_cli_t cli;
    xdcr_error_t err;
    int fd = memfd_create("fuzz-config", 0);

    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    argv[0] = prog;
    argv[1] = opt;
    argv[2] = path;
    argv[3] = NULL;
    memset(&cfg, 0, sizeof(cfg));
    memset(&kafka, 0, sizeof(kafka));
    memset(&cli, 0, sizeof(cli));
    xdcr_error_clear(&err);
    if (xdcr_config_load(&spec, &cfg, &kafka, envp, 3, argv, &cli, &err) != 0) {
        if (err.code >= 0 || err.message[0] == '\0')
            abort(); /* an error must say what went wrong */
        /* never print a secret (unless the same bytes are also another key's value) */
        if (cfg.secret != NULL && strlen(cfg.secret) >= 4 && strstr(err.message, cfg.secret) &&
            !in_other_line(data, size, cfg.secret))
            abort();
    }
    xdcr_config_free(&spec, &cfg);
    xdcr_kv_list_free(&kafka);
    close(fd);
    return 0;
}
