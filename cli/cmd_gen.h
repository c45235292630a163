/*
 * cmd_gen: `tickcore gen`, the command-line face of ingest/gen: parses the options, sizes the
 * generator, seals memory, writes the synthetic ITCH day and its truth file, and prints a short
 * summary (messages by type, bytes, seconds, messages/s, allocations after the seal); the full
 * memory report with --verbose.
 */
#ifndef TICKCORE_CLI_CMD_GEN_H
#define TICKCORE_CLI_CMD_GEN_H

/* Run `tickcore gen` with argv[0..argc) (argv[0] is "gen"). Returns the process exit status:
 * 0 ok, 1 runtime error (cannot create or write a file), 2 usage error, 3 leak or churn with
 * --strict. Main thread only (uses getopt). */
int cmd_gen_main(int argc, char **argv);

#endif
