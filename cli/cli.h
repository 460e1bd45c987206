/*
 * cli.h - the subcommands of the xdcr command line tool. Each one lives in its own file and is
 * `int cli_<name>(int argc, char **argv)`: argv[0] is the subcommand name, the rest are its own
 * arguments; it returns a process exit status (XDCR_EXIT_*) and never calls exit() itself.
 * Every subcommand accepts --help (usage on stdout, exit 0).
 */
#ifndef XDCR_CLI_H
#define XDCR_CLI_H

/* One entry of the dispatch table in main.c. */
typedef struct cli_command {
    const char *name;                  /* subcommand as typed: "dev-broker" */
    const char *help;                  /* one line for `xdcr help` */
    int (*run)(int argc, char **argv); /* returns an exit status */
} cli_command_t;

/* xdcr dev-broker: the embedded Kafka-protocol broker for dev and tests (dev_broker.c). */
int cli_dev_broker(int argc, char **argv);

/* xdcr broker-ctl: send one control command to a running dev broker (broker_ctl.c). */
int cli_broker_ctl(int argc, char **argv);

/* xdcr tail: print a topic's messages decoded and verified (tail.c). */
int cli_tail(int argc, char **argv);

/* xdcr wait: read-your-writes across datacenters (wait.c). */
int cli_wait(int argc, char **argv);

/* xdcr status: state and lag across consumers, forwarders and target databases (status.c). */
int cli_status(int argc, char **argv);

/* xdcr check: every published table exists at the target and fits it (check.c). */
int cli_check(int argc, char **argv);

/* xdcr skip / xdcr accept-gap: audited operator actions on a target (operator.c). */
int cli_skip(int argc, char **argv);
int cli_accept_gap(int argc, char **argv);

#endif
