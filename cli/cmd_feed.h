/*
 * cmd_feed: `tickcore feed FILE --to tcp://IP:PORT | udp://IP:PORT`, the publisher side of the
 * live feeds: an ITCH 5.0 BinaryFILE replayed as a live feed into `tickcore serve`. The command
 * parses its arguments with cli/args, checks that the file is readable, runs feed/publish (which
 * describes the protocols, pacing and memory) and prints the report (text or --json).
 */
#ifndef TICKCORE_CLI_CMD_FEED_H
#define TICKCORE_CLI_CMD_FEED_H

#include "feed/publish.h"

/* Run `tickcore feed` with argv[0..argc) (argv[0] is "feed"). Returns the process exit status:
 * 0 ok, 1 runtime error (file error, connection refused or lost, login rejected), 2 usage.
 * Prints the report on stdout (text or --json) and errors on stderr. Installs SIGINT/SIGTERM
 * handlers for the run (restored before it returns): one call at a time. */
int feed_main(int argc, char **argv);
/* The same, and fills *res (may be NULL) with what the run did (tests, callers that embed it). */
int feed_main_result(int argc, char **argv, publish_result_t *res);

#endif
