/*
 * cmd_serve: `tickcore serve`, the command-line face of server/server: parses the options,
 * installs the signal handlers (SIGTERM/SIGINT stop, SIGHUP reopens the log), opens the server,
 * seals memory, runs the live loop, closes the server and prints the report (text or --json)
 * with the memory and leak check.
 */
#ifndef TICKCORE_CLI_CMD_SERVE_H
#define TICKCORE_CLI_CMD_SERVE_H

/* argv[0] is "serve". Returns the process exit status: 0 ok, 1 runtime error, 2 usage or config
 * error, 3 leak or churn with --strict. Main thread only (getopt, signal handlers). */
int serve_main(int argc, char **argv);

#endif
