/*
 * serve: `tickcore serve`, the engine as a long-running server. Start-up sizes everything from
 * the configuration (symbol table, pipeline, snapshots, journal buffers, feed buffers, HTTP
 * response buffers), rebuilds books, stats and matrices by replaying the journal through the
 * pipeline, binds the feeds and the HTTP server, and seals. Then one thread (the caller's) runs
 * the live loop: feed completions -> ITCH decode into a pipeline batch -> journal append ->
 * journal commit (fsync policy) -> publish to the shard workers; workers publish per-symbol
 * snapshots and the cross-section thread publishes correlation, PCA, MST and clusters; the HTTP
 * thread (libmicrohttpd) answers from those snapshots and from atomics, never taking a lock that
 * ingest holds. SIGTERM/SIGINT: stop accepting, drain what arrived, fsync the journal, stop the
 * threads, print the report with the memory and leak check, exit 0 (3 in --strict mode if
 * anything leaked or allocated after the seal). SIGHUP reopens the log file.
 */
#ifndef TICKCORE_SERVER_SERVER_H
#define TICKCORE_SERVER_SERVER_H

/* argv[0] is "serve". Returns the process exit status. */
int serve_main(int argc, char **argv);

#endif
