/*
 * replay: `tickcore replay FILE...`, files as fast as the disk allows or at market pace. The
 * command parses its arguments (cli/args), checks that every input can be read, runs
 * engine/replay (which owns the run: start-up, the files loop, the seal, the teardown) and prints
 * the report (text or --json): per file, by message type, the analytics, the memory summary and
 * the leak check (--verbose: the memory table too). A progress line on a terminal.
 */
#ifndef TICKCORE_CLI_CMD_REPLAY_H
#define TICKCORE_CLI_CMD_REPLAY_H

/* argv[0] is "replay". Returns the process exit status. */
int replay_main(int argc, char **argv);

#endif
