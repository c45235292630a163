/*
 * replay: `tickcore replay FILE...`, files as fast as the disk allows or at market pace.
 * Reads each file through ingest/stream (io_uring, gzip, ITCH or CSV by content), counts
 * messages by type, keeps the symbol table, paces by message timestamps on request, shows a
 * progress line on a terminal, and ends with a report (text or --json) that includes the memory
 * report and the leak check. Everything is sized before the seal; decoding allocates nothing.
 */
#ifndef TICKCORE_ENGINE_REPLAY_H
#define TICKCORE_ENGINE_REPLAY_H

#include "engine/config.h"
#include "ingest/stream.h"

/* argv[0] is "replay". Returns the process exit status. */
int replay_main(int argc, char **argv);
/* The input stream's settings from the configuration (also `serve`, rebuilding from its journal).
 */
void replay_stream_cfg(stream_cfg_t *s, const config_t *c);

#endif
