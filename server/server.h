/*
 * server: the engine as a long-running server, as an object a command or a test embeds (the way
 * Redis has initServer/aeMain). server_open sizes everything from the configuration (symbol
 * table, pipeline, snapshots, journal buffers, feed buffers, HTTP response buffers), rebuilds
 * books, stats and matrices by replaying the journal through the pipeline, and binds the feeds
 * and the HTTP server. server_run is the live loop: feed completions -> ITCH decode into a
 * pipeline batch -> journal append -> journal commit (fsync policy) -> publish to the shard
 * workers; workers publish per-symbol snapshots and the cross-section thread publishes
 * correlation, PCA, MST and clusters; the HTTP thread (libmicrohttpd) answers from those
 * snapshots and from atomics, never taking a lock that ingest holds. When asked to stop it
 * drains: stop accepting, apply and journal what arrived, fsync the journal, stop HTTP, finish
 * the pipeline. server_close tears everything down and returns every byte.
 *
 * Ownership: server_open allocates the server_t and everything it holds (MEM_TAG_SERVER and the
 * tags of the modules below); server_close gives it all back, so a caller that sealed after open
 * (mem_seal) sees 0 live bytes per tag after close. The configuration is copied. The process-wide
 * pieces stay the caller's: the log (base/log: log_open before server_open, log_close after
 * server_close), signal handlers, mem_seal and strict mode.
 *
 * Threads: server_open, server_run, server_report and server_close one after the other, from
 * one thread or from threads ordered by a join (the live loop runs on server_run's); server_stop
 * and server_reopen_log from any thread or a signal handler (each stores one lock-free atomic);
 * server_stats and the port accessors from any thread. The server starts its own threads (shard
 * workers, cross-section, HTTP) and joins them before server_run returns.
 */
#ifndef TICKCORE_SERVER_SERVER_H
#define TICKCORE_SERVER_SERVER_H

#include "config/config.h"
#include "engine/report.h"
#include "server/live.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVER_VERSION "0.6"

typedef struct server server_t;

typedef void server_progress_fn(void *ctx, uint16_t http_port, uint64_t done, uint64_t total);

typedef struct server_opts {
    /* Bind every enabled listener (live.tcp_port, live.udp_port, http.port not 0) to a port the
     * kernel chooses instead of the configured one; server_*_port give the bound ports. For
     * tests that embed a server: no port races. */
    bool ephemeral_ports;
    /* Called by server_open on its thread once HTTP answers (done = total = 0), then after each
     * batch the journal rebuild applies (done messages of total): /healthz says "recovering"
     * meanwhile. A test holds the rebuild here to look at it; NULL: none. */
    server_progress_fn *progress;
    void *progress_ctx;
} server_opts_t;

/* What the report shows: a copy, consistent per field (relaxed loads). */
typedef struct server_stats {
    double seconds;     /* since server_open started */
    double loop_cpu_s;  /* CPU time of the live loop's thread (server_run) */
    uint64_t recovered; /* messages replayed from the journal by server_open */
    double rebuild_s;
    /* feeds (live_counters_t) */
    uint64_t delivered, next_seq, tcp_messages, udp_messages, duplicates;
    uint64_t tcp_accepted, tcp_logins, tcp_rejected, tcp_refused, drops[LIVE_DROP_COUNT];
    uint64_t udp_datagrams, udp_bad, udp_wrong_session, udp_gaps, udp_recovered;
    uint64_t udp_lost_messages, udp_lost_gaps;
    /* journal (refreshed by the live loop every 100 ms and at the end of server_run) */
    bool journal;
    uint64_t journal_messages, journal_writes, journal_fsyncs, journal_waits, journal_errors;
    /* HTTP */
    uint64_t http_requests, http_2xx, http_4xx, http_5xx;
    /* a failure that stopped ingest (journal write, io_uring): failed and its message */
    bool failed;
    char error[600];
} server_stats_t;

/* Start-up phases, as /healthz names them. The HTTP server starts first, so that while the
 * journal is checked and replayed (which takes seconds for a day) /healthz answers 503
 * {"status":"recovering: N of M","phase":"rebuild","done":N,"total":M,...} (phase "journal" and
 * status "recovering: checking the journal" before that) and every other endpoint but the live
 * page's files answers 503 {"error":"recovering: ..."}, not a partial state. */
/* Start a server from cfg (checked with config_check by the caller; opts may be NULL). On
 * success *out is the server, every feed and the HTTP server are listening, and nothing more is
 * allocated until server_close (the caller may seal). Returns 0, or -errno with a message in err
 * naming what failed and its path, address:port or key (-EINVAL for a configuration the modules
 * refuse, -EADDRINUSE, -ENOMEM, -EIO for a journal that cannot be replayed, ...); on failure
 * nothing stays allocated and *out is NULL. */
int server_open(server_t **out, const config_t *cfg, const server_opts_t *opts, char *err,
                size_t errlen);

/* The live loop, until server_stop (or a failure), then the drain: no new connections or
 * datagrams, what has arrived is applied and journalled, the journal fsynced, the HTTP server
 * stopped (queries end here), the pipeline finished and the last cross-section computed.
 * Returns 0, or -EIO when a failure stopped ingest (server_stats: failed, error). Allocates
 * nothing. Call once. */
int server_run(server_t *s);

/* Ask server_run to stop at its next turn (within ~5 ms). Async-signal-safe, any thread, any
 * number of times; before server_run it makes server_run drain at once. A cluster shard waits
 * at most 5 s more for its NATS server (the last bar rows' parts): a server gone for good
 * leaves them unacknowledged, said in the log, and server_run returns -EIO (exit status 1). */
void server_stop(server_t *s);
/* Ask the live loop to reopen the log file (SIGHUP, log rotation). Async-signal-safe. */
void server_reopen_log(server_t *s);

/* Bound ports; 0 for a feed or HTTP that is off. Any thread. */
uint16_t server_tcp_port(const server_t *s);
uint16_t server_udp_port(const server_t *s);
uint16_t server_http_port(const server_t *s);

/* Copy the counters (any thread; final once server_run returned). */
void server_stats(const server_t *s, server_stats_t *out);

/* The analytics report (books, stats, matrices, top symbols; engine/report) with the live loop's
 * busy and wall times. Only after server_run returned and before server_close. */
void server_report(const server_t *s, report_t *out);

/* Drain if server_run did not, then stop every thread, close the feeds and the journal (fsynced)
 * and free everything. NULL is a no-op. */
void server_close(server_t *s);

#endif
