/*
 * selfcheck: `tickcore selfcheck`, the memory self-check that `make run` shows until the
 * ingest and analytics issues give the engine real work. It exercises every mem/ building
 * block the way the pipeline will: start-up sizes an arena, a pool and a ring, seals, then a
 * producer thread fills batch descriptors in place in the ring while a consumer thread takes
 * per-batch scratch from its arena and order-like objects from its pool; at the end it checks
 * the checksum of every item, tears down, and prints the memory report with the churn count
 * and the leak check. --inject-churn and --inject-leak make it allocate after the seal or skip
 * a free, to show (and test) that the detectors fire.
 */
#ifndef TICKCORE_CLI_CMD_SELFCHECK_H
#define TICKCORE_CLI_CMD_SELFCHECK_H

/* Run the self-check with command-line arguments argv[0..argc) (argv[0] is "selfcheck").
 * Returns the process exit status: 0, 1 (checksum mismatch or start-up failure), 2 (usage),
 * 3 (strict mode and churn or leak). */
int selfcheck_main(int argc, char **argv);

#endif
