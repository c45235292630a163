/*
 * replay: `tickcore replay FILE...`, files as fast as the disk allows or at market pace.
 * Reads each file through ingest/stream (io_uring, gzip, ITCH or CSV by content), counts
 * messages by type, keeps the symbol table, paces by message timestamps on request, shows a
 * progress line on a terminal, and ends with a report (text or --json) that includes the memory
 * report and the leak check. Everything is sized before the seal; decoding allocates nothing.
 */
#ifndef TICKCORE_CLI_CMD_REPLAY_H
#define TICKCORE_CLI_CMD_REPLAY_H

#include "config/config.h"
#include "ingest/stream.h"

/* argv[0] is "replay". Returns the process exit status. */
int replay_main(int argc, char **argv);

#endif
