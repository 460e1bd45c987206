/*
 * main.c - the xdcr command: dispatches to one subcommand from a table. Subcommands live in
 * their own files (see cli.h); this file only parses the first word and maps usage errors.
 */
#include "cli.h"
#include "xdcr/error.h"

#include <stdio.h>
#include <string.h>

static const cli_command_t commands[] = {
    {"dev-broker", "run the embedded Kafka-protocol dev/test broker (in memory, loopback only)",
     cli_dev_broker},
    {"broker-ctl", "send one fault-injection or control command to a running dev broker",
     cli_broker_ctl},
    {"wait", "wait until a datacenter has applied an origin's seq (read-your-writes)", cli_wait},
    {"check", "verify that every published table fits the target (preflight, every mismatch)",
     cli_check},
    {"status", "replication state and lag per origin and DC, across consumers and forwarders",
     cli_status},
    {"skip", "skip one transaction an origin cannot apply (audited)", cli_skip},
    {"accept-gap", "accept a Kafka retention gap after resynchronising (audited)", cli_accept_gap},
    {"tail", "print an origin topic's messages decoded and verified, one JSON line each", cli_tail},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: xdcr <command> [options]\n"
                 "       xdcr help [command]\n"
                 "       xdcr --version\n\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nRun `xdcr <command> --help` for the options of a command.\n");
}

static const cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const cli_command_t *cmd;

    if (argc < 2) {
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("xdcr %s\n", XDCR_VERSION);
        return XDCR_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        char help_flag[] = "--help";
        char *sub_argv[3];

        if (argc < 3) {
            usage(stdout);
            return XDCR_EXIT_OK;
        }
        cmd = find_command(argv[2]);
        if (cmd == NULL) {
            fprintf(stderr, "xdcr: unknown command \"%s\"\n\n", argv[2]);
            usage(stderr);
            return XDCR_EXIT_USAGE;
        }
        sub_argv[0] = argv[2];
        sub_argv[1] = help_flag;
        sub_argv[2] = NULL;
        return cmd->run(2, sub_argv);
    }
    cmd = find_command(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "xdcr: unknown command \"%s\"\n\n", argv[1]);
        usage(stderr);
        return XDCR_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
