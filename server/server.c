/*
 * server: see server.h. Ownership: server_open allocates one server_t (MEM_TAG_SERVER) holding
 * the symbol table, the pipeline, the snapshots, the journal, the feeds, the HTTP server with its
 * route table, and the /v1/memory stream; server_close tears them down in reverse order. Threads:
 * the caller of server_run owns the batch being filled, the journal and the feeds; the pipeline's
 * workers and cross-section thread write the snapshots; the HTTP thread reads snapshots and
 * atomics only (the gauges below are refreshed by the live loop every 100 ms, single writer,
 * relaxed). The stop and log-reopen requests are lock-free atomics any thread or a signal handler
 * may store. Clocks: the monotonic clock times intervals (fsync, snapshot ticks, rates, uptime);
 * every time an endpoint returns (published_ns) is the wall clock, nanoseconds since the epoch.
 */
#include "server/server.h"
#include "base/clock.h"

#include "base/jbuf.h"
#include "base/log.h"
#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/report.h"
#include "event/symtab.h"
#include "ingest/itch.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "server/http.h"
#include "server/journal.h"
#include "server/live.h"
#include "server/natsin.h"
#include "server/prom.h"
#include "server/query.h"
#include "server/snapshot.h"
#include "server/web.h"
#include "server/xrowpub.h"
#include "server/xsnode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GSET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define GGET(field)    atomic_load_explicit(&(field), memory_order_relaxed)

/* Endpoints that answer from the snapshots alone (no parameters): one handler, the query in the
 * route's context. */
typedef struct snap_route {
    struct server *srv;
    const snapshot_t *snap;
    int (*query)(const snapshot_t *s, jbuf_t *out);
    query_cache_t *cache; /* the pre-serialised answer of a parameterless cross-section route */
} snap_route_t;

#define NROUTES  9
#define NWEB_MAX 8 /* files of the live page (server/web) */
/* A stop request (or the drain after a failure): how long a cluster shard still waits for its
 * NATS server to take the last bar rows' parts (a reconnect, acknowledgements) */
#define SERVER_NATS_STOP_MS 5000

struct server {
    config_t cfg;
    server_opts_t opts;
    symtab_t symbols;
    pipeline_t pl;
    bool pl_ok;
    /* the cluster's cross-section: a shard publishes its bar rows (cluster.role = shard), the
     * cross-section node joins them (cluster.role = xsection) */
    xrowpub_t xpub;
    bool xpub_ok;
    xsnode_t xsn;
    bool xsn_ok;
    snapshot_t snap;
    bool snap_ok;
    journal_t journal;
    bool have_journal;
    live_t live;
    bool live_ok;
    natsin_t nin;         /* cluster.nats: this shard's NATS JetStream input */
    uint64_t nin_unacked; /* packets applied whose acknowledgement failed, since the last one
                             that succeeded (serve thread) */
    bool nin_ok;
    http_t http;
    bool http_ok;
    http_route_t routes[NROUTES + NWEB_MAX]; /* the API, then the live page's files */
    snap_route_t snap_routes[NROUTES];
    /* requests (any thread, signal handlers) */
    atomic_bool stop, hup;
    /* the batch being filled (live thread) */
    pipe_batch_t *batch;
    uint64_t last_ts;
    bool have_ts, dirty, drained;
    uint64_t last_tick, bad_messages, sessions;
    atomic_bool draining;
    atomic_int fatal; /* a journal or io_uring error: stop taking data (release after fatal_msg) */
    atomic_bool degraded;       /* the error is the journal's: queries go on, read-only */
    _Atomic uint64_t g_ack_seq; /* next sequence acknowledged: never past the journal's writes */
    char fatal_msg[600];        /* written once, before fatal */
    /* start-up: the phase (PHASE_*; PHASE_READY stored with release once the feeds are set up,
     * so the HTTP thread reads nothing of them before) and the rebuild's progress */
    atomic_int phase;
    _Atomic uint64_t g_rebuild_done, g_rebuild_total;
    /* start-up and final figures */
    uint64_t recovered;
    double rebuild_s;
    uint64_t t_start;
    _Atomic uint64_t wall_ns;     /* server_open to the end of the drain; 0 while running */
    _Atomic uint64_t loop_cpu_ns; /* CPU time of server_run's thread, set when it returns */
    /* gauges for /metrics, written by the live loop */
    _Atomic uint64_t g_journal_messages, g_journal_bytes, g_journal_writes, g_journal_fsyncs;
    _Atomic uint64_t g_journal_waits, g_journal_errors, g_journal_lost;
    _Atomic uint64_t g_rate_milli; /* messages per second over the last second, x1000 */
    _Atomic uint64_t g_batches, g_symbols;
    _Atomic uint64_t g_rss; /* resident bytes (/proc/self/statm), sampled with the gauges */
    uint64_t rate_t, rate_n;
    /* /v1/memory and /metrics: a stdio stream over a buffer made at start-up (HTTP thread) */
    FILE *memf;
    char *membuf;
    size_t memcap;
    mem_snapshot_t msnap;
    int statm_fd;
    /* pre-serialised /v1/pca, /v1/mst, /v1/clusters (HTTP thread), response_buffer bytes each */
    query_cache_t xs_cache[3];
    char *xs_cache_buf;
    size_t xs_cache_bytes;
    /* /v1/correlation?format=csv: two buffers of the whole matrix (HTTP thread) */
    query_csv_t corr_csv;
    char *corr_csv_buf;
    size_t corr_csv_bytes;
    const char *http_sched; /* the scheduling the HTTP thread got (start-up log) */
    /* http.boost's real-time step (live loop; boost_step) */
    int boost_nice;           /* the fair boost to fall back to: nice and ... */
    uint64_t boost_runtime;   /* ... slice (0: the default) */
    bool boost_rt, boost_off; /* SCHED_FIFO now; real time refused (or no thread clock) */
    clockid_t boost_clock;    /* the HTTP thread's CPU clock */
    uint64_t boost_t, boost_cpu, boost_trouble, boost_calm_until;
    _Atomic uint64_t g_http_rt, g_http_demotions;
};

/* ---- the live path ------------------------------------------------------------------------ */

/* The first failure stops ingest; later ones only log. */
__attribute__((format(printf, 2, 3))) static void fail(server_t *s, const char *fmt, ...)
{
    if (atomic_load_explicit(&s->fatal, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fatal_msg, sizeof s->fatal_msg, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&s->fatal, 1, memory_order_release);
    log_msg("serve: %s: no more data is taken", s->fatal_msg);
}

static bool failed(server_t *s)
{
    return atomic_load_explicit(&s->fatal, memory_order_relaxed) != 0;
}

static void flush(server_t *s);

/* A journal error (issue 15): no more data, and the publisher is told why (live_refuse); every
 * query goes on being served read-only; /healthz answers 503 "degraded: journal" from now on;
 * server_run returns -EIO when stopped. */
static void journal_failed(server_t *s, int rc)
{
    if (failed(s))
        return;
    atomic_store_explicit(&s->degraded, true, memory_order_relaxed);
    fail(s, "journal %s: %s", s->cfg.journal_path, strerror(-rc));
    /* what the file holds once the writes in flight land or fail: journal_next_seq here counted
     * them (and after a failed gap record, messages never handed to a write), so /healthz ran
     * ahead of the journal until the next gauge refresh, up to 100 ms */
    GSET(s->g_ack_seq, journal_ack_seq(&s->journal, true));
    live_refuse(&s->live, s->fatal_msg);
}

/* The next sequence number a login may be told: what the journal has written (waiting for the
 * writes in flight; a login is rare), + 1 + the lost ones. */
static uint64_t ack_seq(void *ctx)
{
    server_t *s = ctx;
    if (!s->have_journal)
        return GGET(s->live.c.next_seq);
    flush(s);
    uint64_t a = journal_ack_seq(&s->journal, true);
    GSET(s->g_ack_seq, a);
    return a;
}

/* A publisher logs out (rare): what it sent is written and, unless journal.fsync is off,
 * fsynced before the orderly close answers it; a failure refuses it with the reason. */
static int logout_sync(void *ctx)
{
    server_t *s = ctx;
    if (!s->have_journal)
        return 0;
    flush(s);
    if (failed(s))
        return -EIO;
    int rc;
    if (s->cfg.journal_fsync == CFG_FSYNC_OFF) {
        journal_written(&s->journal, true);
        rc = journal_error(&s->journal);
    } else {
        rc = journal_sync(&s->journal);
    }
    if (rc < 0)
        journal_failed(s, rc);
    return rc;
}

static void flush(server_t *s)
{
    if (!s->batch)
        return;
    if (s->batch->n && s->have_journal && !failed(s)) {
        int rc = journal_commit(&s->journal, clock_mono_ns());
        if (rc < 0)
            journal_failed(s, rc);
    }
    pipeline_publish(&s->pl, s->batch);
    s->batch = NULL;
    s->dirty = true;
}

static void deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    server_t *s = ctx;
    (void)seq;
    if (failed(s))
        return;
    if (s->have_journal) {
        int rc = journal_append(&s->journal, msg, len);
        if (rc < 0) {
            journal_failed(s, rc);
            return;
        }
    }
    ev_t e;
    if (itch_decode(msg, len, &e) != ITCH_OK) { /* live checked the length: cannot happen */
        s->bad_messages++;
        return;
    }
    if (e.type == 'R')
        itch_directory_apply(&s->symbols, &e);
    e.raw = NULL; /* msg lives in a receive buffer: no pointer into it goes on */
    /* the clock went back by more than a second: the next day's session */
    if (s->have_ts && e.ts + 1000000000ull < s->last_ts) {
        flush(s);
        pipeline_close_bars(&s->pl); /* the last bar of the day counts */
        pipeline_new_session(&s->pl, 0);
        s->sessions++;
        log_msg("serve: the feed's clock went back: a new session (books and bars cleared)");
    }
    s->last_ts = e.ts;
    s->have_ts = true;
    if (!s->batch)
        s->batch = pipeline_acquire(&s->pl);
    s->batch->ev[s->batch->n++] = e;
    if (s->batch->n == s->pl.batch_cap)
        flush(s);
    if (e.type == 'S' && e.aux == 'C') { /* End of Messages: the day's last bar closes now */
        flush(s);
        pipeline_close_bars(&s->pl);
    }
}

static void lost(void *ctx, uint64_t from, uint64_t count)
{
    server_t *s = ctx;
    if (!s->have_journal)
        return;
    /* the gap is recorded after the messages before it are in the journal's buffers */
    int rc = journal_note_gap(&s->journal, from, count);
    if (rc < 0) { /* the stream goes past the gap, the journal's numbering cannot: stop taking */
        log_msg("serve: journal: cannot record the lost range %llu+%llu: %s",
                (unsigned long long)from, (unsigned long long)count, strerror(-rc));
        journal_failed(s, rc);
    }
}

/* A message of the NATS shard (natsin): the live feeds' path, and their counters (one writer:
 * this thread), so rates, /metrics and the drain's count include it. */
static void nats_deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    server_t *s = ctx;
    deliver(ctx, seq, msg, len);
    GSET(s->live.c.delivered, GGET(s->live.c.delivered) + 1);
    GSET(s->live.c.next_seq, seq + 1);
    s->live.next_seq = seq + 1;
}

/* One batch of the NATS shard: applied (into the pipeline), journalled (written, with a
 * journal), then acknowledged. */
static void nats_step(server_t *s)
{
    char err[600];
    /* with live listeners, a short wait keeps them served; alone, a longer one: fewer empty
     * pull requests while the stream is idle (a request returns at its first packets) */
    int n = natsin_poll(&s->nin, s->cfg.tcp_port || s->cfg.udp_port ? 5 : 100, err, sizeof err);
    if (n < 0) {
        fail(s, "%s", err);
        return;
    }
    if (!s->nin.pending)
        return;
    flush(s);
    if (s->have_journal && !failed(s))
        (void)ack_seq(s); /* waits for the journal writes in flight */
    if (!failed(s)) {
        int k = s->nin.pending;
        if (natsin_ack(&s->nin) < 0) /* a failed ack: the batch comes again and is skipped */
            s->nin_unacked += (uint64_t)k;
        else
            s->nin_unacked = 0;
    }
}

/* Snapshot hooks (worker and cross-section threads). The records' publish time is the wall
 * clock: the one clock of every *_ns an endpoint returns. */
static void on_batch(void *ctx, unsigned w, const shard_t *sh, const ev_t *ev, const uint32_t *own,
                     size_t n, const uint8_t *owner, bool force)
{
    server_t *s = ctx;
    snapshot_after_batch(&s->snap, w, sh, &s->symbols, ev, own, n, owner, clock_wall_ns(), force);
}

static void on_xs(void *ctx, const xsection_t *x)
{
    server_t *s = ctx;
    snapshot_publish_xs(&s->snap, x);
}

/* A shard's complete row (cross-section thread): its part into the rows stream. */
static void on_row(void *ctx, uint64_t session, uint64_t k, const double *row, bool traded)
{
    server_t *s = ctx;
    xrowpub_row(&s->xpub, session, k, row, traded);
}

/* The cross-section node computed (serve thread): publish like the pipeline's thread does. */
static void on_xs_node(void *ctx, const xsection_t *x)
{
    server_t *s = ctx;
    snapshot_publish_xs(&s->snap, x);
    atomic_fetch_add_explicit(&s->pl.xs_computes, 1, memory_order_relaxed);
}

/* cluster.nats with cluster.role: the row publisher of a shard, or the cross-section node.
 * Before the pipeline starts (on_row is read by its cross-section thread) and before the
 * journal rebuild (rows rebuilt are published again). 0 or -errno with err. */
static int open_cluster(server_t *s, char *err, size_t errlen)
{
    if (!s->cfg.cluster_nats[0])
        return 0;
    if (s->cfg.cluster_role == CFG_ROLE_XSECTION) {
        int rc = xsnode_init(&s->xsn, &s->cfg, &s->pl.xs, &s->symbols, on_xs_node, s, err, errlen);
        s->xsn_ok = rc == 0;
        return rc;
    }
    int rc = xrowpub_init(&s->xpub, &s->cfg, &s->symbols, err, errlen);
    s->xpub_ok = rc == 0;
    if (rc == 0) {
        s->pl.on_row = on_row;
        /* the cross-section node computes the cluster's: this shard's own was 40% of its CPU */
        s->pl.xs_rows_only = s->cfg.cluster_rows_only;
        if (s->cfg.cluster_rows_only)
            log_msg("serve: cluster shard %u of %u: bar rows only (cluster.rows_only=true): no "
                    "cross-section here; /v1/correlation, /v1/pca, /v1/mst and /v1/clusters "
                    "answer 421",
                    s->cfg.cluster_shard, s->cfg.cluster_shards);
    }
    return rc;
}

/* The resident set, read here every 100 ms by the live loop and not per request: a /metrics
 * that read /proc per answer paid its system calls (and the kernel's walk of the process's
 * memory counters) on the HTTP thread, at 1,000 queries/s under load. */
static void sample_rss(server_t *s)
{
    char b[128];
    if (s->statm_fd < 0)
        return;
    ssize_t n = pread(s->statm_fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return;
    b[n] = '\0';
    unsigned long long size = 0, rss = 0;
    if (sscanf(b, "%llu %llu", &size, &rss) != 2)
        return;
    GSET(s->g_rss, rss * (uint64_t)sysconf(_SC_PAGESIZE));
}

static void refresh_gauges(server_t *s, uint64_t t)
{
    if (s->have_journal) {
        const journal_t *j = &s->journal;
        GSET(s->g_journal_messages, journal_messages(j));
        GSET(s->g_journal_bytes, j->bytes);
        GSET(s->g_journal_writes, j->writes);
        GSET(s->g_journal_fsyncs, j->fsyncs);
        GSET(s->g_journal_waits, j->write_waits);
        GSET(s->g_journal_errors, j->errors);
        GSET(s->g_journal_lost, j->lost_messages);
        GSET(s->g_ack_seq, journal_ack_seq(&s->journal, false));
    } else {
        GSET(s->g_ack_seq, GGET(s->live.c.next_seq));
    }
    uint64_t d = GGET(s->live.c.delivered);
    if (t - s->rate_t >= 1000000000ull) {
        GSET(s->g_rate_milli, (uint64_t)((double)(d - s->rate_n) * 1e12 / (double)(t - s->rate_t)));
        s->rate_t = t;
        s->rate_n = d;
    }
    GSET(s->g_batches, s->pl.published);
    GSET(s->g_symbols, symtab_count(&s->symbols));
    sample_rss(s);
}

/* ---- HTTP handlers (HTTP thread) ---------------------------------------------------------- */

enum { PHASE_JOURNAL = 0, PHASE_REBUILD, PHASE_READY };

/* Before the feeds are set up: the 503 body every endpoint answers (/healthz: healthz true), and
 * true. Once ready: false (and the handler reads everything it reads as before). */
static bool recovering(server_t *s, jbuf_t *out, bool healthz)
{
    int ph = atomic_load_explicit(&s->phase, memory_order_acquire);
    if (ph == PHASE_READY)
        return false;
    uint64_t done = GGET(s->g_rebuild_done), total = GGET(s->g_rebuild_total);
    char what[96];
    if (ph == PHASE_JOURNAL)
        snprintf(what, sizeof what, "recovering: checking the journal");
    else
        snprintf(what, sizeof what, "recovering: %" PRIu64 " of %" PRIu64, done, total);
    jbuf_printf(out, "{\"%s\":\"%s\",\"phase\":\"%s\",\"done\":%" PRIu64 ",\"total\":%" PRIu64,
                healthz ? "status" : "error", what, ph == PHASE_JOURNAL ? "journal" : "rebuild",
                done, total);
    if (healthz)
        jbuf_printf(out, ",\"version\":\"" SERVER_VERSION "\",\"uptime_s\":%.3f",
                    (double)(clock_mono_ns() - s->t_start) * 1e-9);
    jbuf_putc(out, '}');
    return true;
}

static double m_rate(const server_t *s);
static double m_rss(const server_t *s);

static int h_healthz(void *ctx, const http_request_t *req, jbuf_t *out)
{
    server_t *s = ctx;
    (void)req;
    if (recovering(s, out, true))
        return 503;
    bool draining = atomic_load_explicit(&s->draining, memory_order_relaxed);
    bool degraded = atomic_load_explicit(&s->degraded, memory_order_relaxed);
    /* next_sequence: what the journal has written + 1, never what is still in a buffer;
     * messages: rebuilt from the journal at start-up + taken since (survives a restart) */
    jbuf_printf(out,
                "{\"status\":\"%s\",\"version\":\"" SERVER_VERSION "\",\"next_sequence\":%" PRIu64
                ",\"messages\":%" PRIu64 ",\"uptime_s\":%.3f",
                degraded   ? "degraded: journal"
                : draining ? "draining"
                           : (failed(s) ? "failed" : "ok"),
                GGET(s->g_ack_seq), s->recovered + GGET(s->live.c.delivered),
                (double)(clock_mono_ns() - s->t_start) * 1e-9);
    /* the session panel of the live page: the ingest rate of the last gauge refresh, MoldUDP64
     * gaps (detected, and messages declared lost), the journal's state and what it has written */
    jbuf_printf(out,
                ",\"msg_per_s\":%.1f,\"gaps\":%" PRIu64 ",\"lost_messages\":%" PRIu64
                ",\"journal\":{\"state\":\"%s\",\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                m_rate(s), GGET(s->live.c.udp_gaps), GGET(s->live.c.udp_lost_messages),
                !s->have_journal ? "off"
                : degraded       ? "failed"
                                 : "ok",
                GGET(s->g_journal_messages), GGET(s->g_journal_bytes));
    if (atomic_load_explicit(&s->fatal, memory_order_acquire)) { /* fatal_msg is written */
        jbuf_puts(out, ",\"error\":");
        jbuf_str(out, s->fatal_msg);
    }
    jbuf_putc(out, '}');
    return failed(s) || draining ? 503 : 200;
}

/* A rows-only cluster shard has no cross-section: 421 (Misdirected Request), naming where the
 * cluster's is, instead of an empty or stale matrix. True when it answered. */
static bool rows_only_answer(const server_t *s, jbuf_t *out)
{
    if (!s->pl.xs_rows_only)
        return false;
    http_error(out, 421,
               "this node is cluster shard %u of %u and computes no cross-section "
               "(cluster.rows_only=true): it publishes its bar rows on %s.%u of stream %s; ask "
               "the cluster's cross-section node (cluster.role=xsection)",
               s->cfg.cluster_shard, s->cfg.cluster_shards, s->cfg.cluster_rows_subject,
               s->cfg.cluster_shard, s->cfg.cluster_rows_stream);
    return true;
}

static int h_snap(void *ctx, const http_request_t *req, jbuf_t *out)
{
    const snap_route_t *r = ctx;
    (void)req;
    if (recovering(r->srv, out, false))
        return 503;
    if (r->cache && rows_only_answer(r->srv, out))
        return 421;
    return r->cache ? query_cached(r->cache, r->snap, out) : r->query(r->snap, out);
}

static int h_symbol(void *ctx, const http_request_t *req, jbuf_t *out)
{
    server_t *s = ctx;
    if (recovering(s, out, false))
        return 503;
    const char *name = req->path + strlen("/v1/symbols/");
    return query_symbol(&s->snap, name, http_param(req, "depth"), out);
}

static int h_correlation(void *ctx, const http_request_t *req, jbuf_t *out)
{
    server_t *s = ctx;
    if (recovering(s, out, false))
        return 503;
    if (rows_only_answer(s, out))
        return 421;
    const char *fmt = http_param(req, "format");
    if (fmt && strcmp(fmt, "csv") == 0)
        return s->corr_csv_buf ? query_corr_csv(&s->corr_csv, &s->snap, req->body, out)
                               : http_error(out, 404,
                                            "the whole matrix as CSV is off on this node "
                                            "(http.correlation_csv=false)");
    if (fmt && strcmp(fmt, "json") != 0)
        return http_error(out, 400, "format must be csv (the whole matrix) or json, got \"%.32s\"",
                          fmt);
    return query_correlation(&s->snap, http_param(req, "symbols"), out);
}

static int h_memory(void *ctx, const http_request_t *req, jbuf_t *out)
{
    server_t *s = ctx;
    (void)req;
    if (recovering(s, out, false))
        return 503;
    if (!s->memf)
        return http_error(out, 500, "the memory report stream is not available");
    mem_snapshot(&s->msnap);
    rewind(s->memf);
    mem_report_json(s->memf, &s->msnap, 0);
    fflush(s->memf);
    long n = ftell(s->memf);
    if (n < 0 || (size_t)n >= s->memcap)
        return http_error(out, 500, "the memory report is larger than its buffer");
    /* the report is one JSON object: the RSS (/proc/self/statm, sampled every 100 ms by the live
     * loop) goes in before its '}' */
    while (n > 0 && (s->membuf[n - 1] == '\n' || s->membuf[n - 1] == ' '))
        n--;
    if (n < 2 || s->membuf[n - 1] != '}')
        return http_error(out, 500, "the memory report is not a JSON object");
    jbuf_printf(out, "%.*s,\"rss\":%.0f}", (int)(n - 1), s->membuf, m_rss(s));
    return 200;
}

/* ---- /metrics: one table, one loop -------------------------------------------------------- */

static double m_rate(const server_t *s)
{
    return (double)GGET(((server_t *)s)->g_rate_milli) / 1000.0;
}

static double m_sealed(const server_t *s)
{
    return s->msnap.sealed ? 1 : 0;
}

static double m_rss(const server_t *s)
{
    return (double)GGET(((server_t *)s)->g_rss);
}

/* the pre-serialised answers (HTTP thread: /metrics runs there too) */
static double m_cache_hits(const server_t *s)
{
    return (double)(s->xs_cache[0].hits + s->xs_cache[1].hits + s->xs_cache[2].hits);
}

static double m_cache_fills(const server_t *s)
{
    return (double)(s->xs_cache[0].fills + s->xs_cache[1].fills + s->xs_cache[2].fills);
}

/* the cluster's bar rows: the cross-section node's join, a shard's publisher (0 otherwise) */
#define XJ(f)                                                                                      \
    static double m_xjoin_##f(const server_t *s)                                                   \
    {                                                                                              \
        return s->xsn_ok ? (double)GGET(((server_t *)s)->xsn.join.f) : 0;                          \
    }
XJ(parts)
XJ(rows)
XJ(incomplete)
XJ(duplicates)
XJ(late)
XJ(full)
XJ(bad)
XJ(foreign)
#undef XJ

static double m_xsnode_resent(const server_t *s)
{
    return s->xsn_ok ? (double)GGET(((server_t *)s)->xsn.resent) : 0;
}

static double m_xrows_published(const server_t *s)
{
    return s->xpub_ok ? (double)GGET(((server_t *)s)->xpub.published) : 0;
}

static double m_xrows_errors(const server_t *s)
{
    return s->xpub_ok ? (double)GGET(((server_t *)s)->xpub.errors) : 0;
}

static double m_csv_fills(const server_t *s)
{
    return (double)s->corr_csv.fills;
}

static double m_uptime(const server_t *s)
{
    return (double)(clock_mono_ns() - s->t_start) * 1e-9;
}

/* Where a metric's samples come from. Single values: an _Atomic uint64_t at `off` in the live
 * counters, this server, the HTTP server or the pipeline, or a function. Families with one
 * sample per label value: the disconnect reasons, the workers, the memory tags (off into
 * mem_tag_stats_t), and the registered arenas, pools and rings (off into mem_obj_stats_t; the
 * family is left out when no object of that kind is registered). */
typedef enum metric_src {
    M_LIVE,
    M_SERVER,
    M_HTTP,
    M_PIPE,
    M_FN,
    M_DROPS,
    M_WORKERS,
    M_TAGS,
    M_ARENAS,
    M_POOLS,
    M_RINGS,
} metric_src_t;

typedef struct metric {
    const char *name;
    const char *type;   /* "counter" or "gauge" */
    const char *help;   /* NULL: one more sample of the family above */
    const char *labels; /* a fixed label set, or NULL */
    metric_src_t src;
    size_t off;
    double (*fn)(const server_t *s); /* M_FN */
} metric_t;

#define C                "counter"
#define G                "gauge"
#define LIVE(f)          M_LIVE, offsetof(live_counters_t, f), NULL
#define SRV(f)           M_SERVER, offsetof(server_t, f), NULL
#define PIPE(f)          M_PIPE, offsetof(pipeline_t, f), NULL
#define FN(f)            M_FN, 0, f
#define EACH(src, st, f) src, offsetof(st, f), NULL
#define OBJ(src, f)      EACH(src, mem_obj_stats_t, f)

static const metric_t metrics[] = {
    /* feeds */
    {"tickcore_feed_messages_total", C,
     "messages taken from each live feed (first arrival of each sequence number)", "feed=\"tcp\"",
     LIVE(tcp_messages)},
    {"tickcore_feed_messages_total", C, NULL, "feed=\"udp\"", LIVE(udp_messages)},
    {"tickcore_feed_bytes_total", C, "bytes received on each live feed", "feed=\"tcp\"",
     LIVE(tcp_bytes)},
    {"tickcore_feed_bytes_total", C, NULL, "feed=\"udp\"", LIVE(udp_bytes)},
    {"tickcore_feed_duplicates_total", C,
     "messages whose sequence number had already been taken (ignored)", "feed=\"tcp\"",
     LIVE(tcp_duplicates)},
    {"tickcore_feed_duplicates_total", C, NULL, "feed=\"udp\"", LIVE(udp_duplicates)},
    {"tickcore_messages_total", C, "messages taken from the live feeds since start", NULL,
     LIVE(delivered)},
    {"tickcore_next_sequence", G, "sequence number of the next message expected", NULL,
     LIVE(next_seq)},
    {"tickcore_message_rate", G, "messages per second taken over the last second", NULL,
     FN(m_rate)},
    {"tickcore_recovered_messages_total", C, "messages replayed from the journal at start-up", NULL,
     SRV(recovered)},
    /* TCP */
    {"tickcore_tcp_clients", G, "SoupBinTCP connections open now", NULL, LIVE(tcp_active)},
    {"tickcore_tcp_connections_total", C, "SoupBinTCP connections accepted", NULL,
     LIVE(tcp_accepted)},
    {"tickcore_tcp_refused_total", C, "connections closed at accept (live.max_clients)", NULL,
     LIVE(tcp_refused)},
    {"tickcore_tcp_logins_total", C, "SoupBinTCP logins accepted", NULL, LIVE(tcp_logins)},
    {"tickcore_tcp_logins_rejected_total", C, "SoupBinTCP logins rejected (credentials or session)",
     NULL, LIVE(tcp_rejected)},
    {"tickcore_tcp_heartbeats_sent_total", C, "server heartbeats sent", NULL,
     LIVE(tcp_heartbeats_out)},
    {"tickcore_tcp_disconnects_total", C,
     "SoupBinTCP sessions ended, by reason (logout is the normal end)", NULL,
     EACH(M_DROPS, live_counters_t, drops)},
    /* UDP */
    {"tickcore_udp_datagrams_total", C, "MoldUDP64 datagrams received", NULL, LIVE(udp_datagrams)},
    {"tickcore_udp_bad_datagrams_total", C, "datagrams that are not MoldUDP64 packets", NULL,
     LIVE(udp_bad)},
    {"tickcore_udp_truncated_total", C, "datagrams larger than live.udp_buffer_size", NULL,
     LIVE(udp_truncated)},
    {"tickcore_udp_wrong_session_total", C, "packets of another session", NULL,
     LIVE(udp_wrong_session)},
    {"tickcore_udp_foreign_total", C,
     "datagrams from senders outside live.udp_allow (dropped unparsed)", NULL, LIVE(udp_foreign)},
    {"tickcore_udp_gaps_total", C, "sequence gaps detected", NULL, LIVE(udp_gaps)},
    {"tickcore_udp_recovered_messages_total", C,
     "missing messages that arrived later (retransmission)", NULL, LIVE(udp_recovered)},
    {"tickcore_udp_lost_gaps_total", C, "gaps that could not be filled (declared lost)", NULL,
     LIVE(udp_lost_gaps)},
    {"tickcore_udp_lost_messages_total", C, "messages in gaps declared lost", NULL,
     LIVE(udp_lost_messages)},
    {"tickcore_udp_rerequests_total", C, "retransmission requests sent", NULL,
     LIVE(udp_rerequests)},
    {"tickcore_udp_reorder_peak_bytes", G, "most bytes held past a gap at once", NULL,
     LIVE(udp_held_peak)},
    {"tickcore_udp_reorder_full_total", C, "messages that found the reorder store full", NULL,
     LIVE(udp_store_full)},
    /* journal */
    {"tickcore_journal_messages_total", C, "messages in the journal", NULL,
     SRV(g_journal_messages)},
    {"tickcore_journal_bytes_total", C, "bytes written to the journal", NULL, SRV(g_journal_bytes)},
    {"tickcore_journal_writes_total", C, "io_uring writes to the journal", NULL,
     SRV(g_journal_writes)},
    {"tickcore_journal_fsyncs_total", C, "journal fsyncs", NULL, SRV(g_journal_fsyncs)},
    {"tickcore_journal_buffer_waits_total", C,
     "appends that waited for a journal buffer (disk slower than the feed)", NULL,
     SRV(g_journal_waits)},
    {"tickcore_journal_errors_total", C, "journal write errors (ingest stops)", NULL,
     SRV(g_journal_errors)},
    /* pipeline */
    {"tickcore_pipeline_batches_total", C, "event batches published to the workers", NULL,
     SRV(g_batches)},
    {"tickcore_pipeline_full_waits_total", C,
     "times the live loop waited for a free batch (backpressure)", NULL, PIPE(acquire_waits)},
    {"tickcore_worker_events_total", C, "events each shard worker has scanned", NULL,
     EACH(M_WORKERS, pipe_worker_t, events)},
    {"tickcore_xsection_computes_total", C, "correlation/PCA/MST recomputations published", NULL,
     PIPE(xs_computes)},
    {"tickcore_symbols", G, "symbols in the symbol table", NULL, SRV(g_symbols)},
    /* memory */
    {"tickcore_memory_live_bytes", G, "bytes allocated now, by tag", NULL,
     EACH(M_TAGS, mem_tag_stats_t, live)},
    {"tickcore_memory_peak_bytes", G, "most bytes allocated at once, by tag", NULL,
     EACH(M_TAGS, mem_tag_stats_t, peak)},
    {"tickcore_memory_allocations_total", C, "allocations, by tag", NULL,
     EACH(M_TAGS, mem_tag_stats_t, allocs)},
    {"tickcore_memory_churn_total", C,
     "allocations after the seal (steady state must show 0), by tag", NULL,
     EACH(M_TAGS, mem_tag_stats_t, churn_allocs)},
    {"tickcore_memory_sealed", G, "1 once start-up is over", NULL, FN(m_sealed)},
    {"tickcore_arena_capacity", G, "capacity of each registered arena (bytes)", NULL,
     OBJ(M_ARENAS, capacity)},
    {"tickcore_arena_used", G, "used of each registered arena (bytes)", NULL, OBJ(M_ARENAS, used)},
    {"tickcore_arena_high_water", G, "high_water of each registered arena (bytes)", NULL,
     OBJ(M_ARENAS, high_water)},
    {"tickcore_arena_exhausted_total", C, "exhausted of each registered arena (bytes): refusals",
     NULL, OBJ(M_ARENAS, exhausted)},
    {"tickcore_pool_capacity", G, "capacity of each registered pool (objects)", NULL,
     OBJ(M_POOLS, capacity)},
    {"tickcore_pool_used", G, "used of each registered pool (objects)", NULL, OBJ(M_POOLS, used)},
    {"tickcore_pool_high_water", G, "high_water of each registered pool (objects)", NULL,
     OBJ(M_POOLS, high_water)},
    {"tickcore_pool_exhausted_total", C, "exhausted of each registered pool (objects): refusals",
     NULL, OBJ(M_POOLS, exhausted)},
    {"tickcore_ring_capacity", G, "capacity of each registered ring (slots)", NULL,
     OBJ(M_RINGS, capacity)},
    {"tickcore_ring_used", G, "used of each registered ring (slots)", NULL, OBJ(M_RINGS, used)},
    {"tickcore_ring_high_water", G, "high_water of each registered ring (slots)", NULL,
     OBJ(M_RINGS, high_water)},
    {"tickcore_ring_exhausted_total", C,
     "exhausted of each registered ring (slots): producer waits on a full ring", NULL,
     OBJ(M_RINGS, exhausted)},
    {"tickcore_resident_bytes", G, "resident set size of the process", NULL, FN(m_rss)},
    {"tickcore_query_cache_hits_total", C,
     "/v1/pca, /v1/mst, /v1/clusters answers copied from the body written for their publish", NULL,
     FN(m_cache_hits)},
    {"tickcore_query_cache_fills_total", C,
     "/v1/pca, /v1/mst, /v1/clusters bodies written (at most one per endpoint and publish)", NULL,
     FN(m_cache_fills)},
    {"tickcore_correlation_csv_fills_total", C,
     "/v1/correlation?format=csv bodies written (at most one per publish)", NULL, FN(m_csv_fills)},
    /* the cluster (cluster.role): a shard's bar rows out, the cross-section node's join */
    {"tickcore_xrows_published_total", C, "bar row parts this shard published", NULL,
     FN(m_xrows_published)},
    {"tickcore_xrows_publish_errors_total", C, "bar row parts the NATS client refused", NULL,
     FN(m_xrows_errors)},
    {"tickcore_xjoin_parts_total", C, "bar row parts joined (cross-section node)", NULL,
     FN(m_xjoin_parts)},
    {"tickcore_xjoin_rows_total", C, "complete rows pushed into the cross-section", NULL,
     FN(m_xjoin_rows)},
    {"tickcore_xjoin_incomplete_total", C,
     "bars dropped because a shard's part missed cluster.join_deadline", NULL,
     FN(m_xjoin_incomplete)},
    {"tickcore_xjoin_duplicates_total", C, "parts dropped: their bar already had them", NULL,
     FN(m_xjoin_duplicates)},
    {"tickcore_xjoin_late_total", C, "parts dropped: their bar went out incomplete without them",
     NULL, FN(m_xjoin_late)},
    {"tickcore_xjoin_window_full_total", C,
     "parts that found the join window full (held; the shard waits)", NULL, FN(m_xjoin_full)},
    {"tickcore_xjoin_bad_total", C, "parts refused: malformed", NULL, FN(m_xjoin_bad)},
    {"tickcore_xjoin_foreign_total", C,
     "parts refused: another shard count, matrix.symbols or shard function", NULL,
     FN(m_xjoin_foreign)},
    {"tickcore_xjoin_resent_total", C,
     "parts a restarted shard published again (already joined: dropped)", NULL,
     FN(m_xsnode_resent)},
    {"tickcore_uptime_seconds", G, "seconds since start", NULL, FN(m_uptime)},
    {"tickcore_http_realtime", G,
     "1 while the HTTP thread runs at SCHED_FIFO (http.boost and the feed keeping up)", NULL,
     SRV(g_http_rt)},
    {"tickcore_http_boost_demotions_total", C,
     "times the HTTP thread went back from SCHED_FIFO to the fair boost (busy, or UDP trouble)",
     NULL, SRV(g_http_demotions)},
    /* HTTP: the module's own families (http_metrics_prom), after this table */
};

static uint64_t load_u64(const void *base, size_t off)
{
    return atomic_load_explicit((_Atomic uint64_t *)((char *)(uintptr_t)base + off),
                                memory_order_relaxed);
}

static void sample(jbuf_t *jb, const metric_t *m, const char *labels, uint64_t v)
{
    if (m->type[0] == 'c')
        prom_sample_u64(jb, m->name, labels, v);
    else
        prom_sample(jb, m->name, labels, (double)v);
}

static int h_metrics(void *ctx, const http_request_t *req, jbuf_t *jb)
{
    server_t *s = ctx;
    (void)req;
    if (recovering(s, jb, false))
        return 503;
    mem_snapshot_counters(&s->msnap); /* no peak RSS or fault count here: no system call */
    const mem_snapshot_t *ms = &s->msnap;
    const void *base[] = {
        [M_LIVE] = &s->live.c, [M_SERVER] = s, [M_HTTP] = &s->http, [M_PIPE] = &s->pl};
    char lab[96];
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        const metric_t *m = &metrics[i];
        mem_obj_kind_t kind = (mem_obj_kind_t)(m->src - M_ARENAS);
        if (m->src >= M_ARENAS) {
            unsigned n = 0;
            for (unsigned o = 0; o < ms->nobjs; o++)
                n += ms->objs[o].kind == kind;
            if (n == 0)
                continue;
        }
        if (m->help)
            prom_family(jb, m->name, m->type, m->help);
        switch (m->src) {
        case M_LIVE:
        case M_SERVER:
        case M_HTTP:
        case M_PIPE:
            sample(jb, m, m->labels, load_u64(base[m->src], m->off));
            break;
        case M_FN:
            prom_sample(jb, m->name, m->labels, m->fn(s));
            break;
        case M_DROPS:
            for (int r = 0; r < LIVE_DROP_COUNT; r++) {
                snprintf(lab, sizeof lab, "reason=\"%s\"", live_drop_name((live_drop_t)r));
                sample(jb, m, lab, load_u64(&s->live.c, m->off + (size_t)r * sizeof(uint64_t)));
            }
            break;
        case M_WORKERS:
            for (unsigned w = 0; w < s->pl.k; w++) {
                snprintf(lab, sizeof lab, "worker=\"%u\"", w);
                sample(jb, m, lab, load_u64(&s->pl.w[w], m->off));
            }
            break;
        case M_TAGS:
            for (int t = 0; t < MEM_TAG_COUNT; t++) {
                int64_t v; /* the fields are int64_t or uint64_t; the counters stay below 2^63 */
                memcpy(&v, (const char *)&ms->tag[t] + m->off, sizeof v);
                snprintf(lab, sizeof lab, "tag=\"%s\"", mem_tag_name((mem_tag_t)t));
                prom_sample(jb, m->name, lab, (double)v);
            }
            break;
        case M_ARENAS:
        case M_POOLS:
        case M_RINGS:
            for (unsigned o = 0; o < ms->nobjs; o++) {
                const mem_obj_row_t *row = &ms->objs[o];
                if (row->kind != kind)
                    continue;
                uint64_t v;
                memcpy(&v, (const char *)&row->st + m->off, sizeof v);
                jbuf_t lb;
                jbuf_init(&lb, lab, sizeof lab);
                prom_label(&lb, "name", row->name);
                prom_sample_u64(jb, m->name, lab, v);
            }
            break;
        }
    }
    http_metrics_prom(&s->http, jb, "tickcore");
    return 200;
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* Replay the journal through the pipeline (before the seal): books, stats and matrices as they
 * were. Then a forced publish, so that the snapshots show the end of the journal and not its last
 * periodic publish (queries would otherwise show an early part of the replay until new live data
 * touched each symbol). 0, or -EIO with a message. */
static int rebuild(server_t *s, char *err, size_t errlen)
{
    uint64_t want = journal_messages(&s->journal);
    if (want == 0)
        return 0;
    uint64_t t0 = clock_mono_ns();
    GSET(s->g_rebuild_total, want);
    atomic_store_explicit(&s->phase, PHASE_REBUILD, memory_order_relaxed);
    if (s->opts.progress)
        s->opts.progress(s->opts.progress_ctx, server_http_port(s), 0, want);
    stream_t *st = mem_calloc(MEM_TAG_SERVER, 1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "rebuilding from the journal %s: out of memory", s->cfg.journal_path);
        return -ENOMEM;
    }
    stream_cfg_t scfg;
    pipeline_stream_cfg(&scfg, &s->cfg);
    scfg.format = STREAM_ITCH;
    scfg.skip_bad = false;
    int r = stream_init(st, &scfg, &s->symbols);
    if (r == 0)
        r = stream_open(st, s->cfg.journal_path);
    while (r == 0) {
        pipe_batch_t *b = pipeline_acquire(&s->pl);
        size_t n = 0;
        r = stream_next_into(st, b->ev, s->pl.batch_cap, &n);
        b->n = r > 0 ? (uint32_t)n : 0;
        if (r > 0) {
            if (s->have_ts && b->ev[0].ts + 1000000000ull < s->last_ts) {
                pipeline_close_bars(&s->pl);
                pipeline_new_session(&s->pl, 1);
            }
            s->last_ts = b->ev[n - 1].ts;
            s->have_ts = true;
            for (size_t i = 0; i < n; i++)
                b->ev[i].raw = NULL;
            r = 0;
        } else if (r == 0) {
            r = 1; /* the end */
        }
        pipeline_publish(&s->pl, b);
        GSET(s->g_rebuild_done, st->messages);
        if (s->opts.progress)
            s->opts.progress(s->opts.progress_ctx, server_http_port(s), st->messages, want);
    }
    uint64_t got = st->messages;
    if (r < 0)
        snprintf(err, errlen, "rebuilding from the journal %s: %s", s->cfg.journal_path,
                 st->err[0] ? st->err : strerror(-r));
    else if (got != want)
        snprintf(err, errlen,
                 "rebuilding from the journal %s: read %" PRIu64 " messages, it holds %" PRIu64,
                 s->cfg.journal_path, got, want);
    stream_close(st);
    stream_fini(st);
    mem_free(MEM_TAG_SERVER, st, sizeof *st);
    if (r < 0 || got != want)
        return -EIO;
    pipeline_publish_tick(&s->pl);
    s->recovered = got;
    s->rebuild_s = (double)(clock_mono_ns() - t0) * 1e-9;
    return 0;
}

static int open_journal(server_t *s, char *err, size_t errlen)
{
    journal_cfg_t jc = {.path = s->cfg.journal_path,
                        .buffer_size = s->cfg.journal_buffer_size,
                        .buffers = s->cfg.journal_buffers,
                        .fsync = (journal_fsync_t)s->cfg.journal_fsync,
                        .fsync_interval_ns = s->cfg.journal_fsync_interval_ns};
    int rc = journal_open(&s->journal, &jc, err, errlen);
    s->have_journal = rc == 0;
    if (rc < 0)
        return rc;
    if (s->journal.torn_bytes)
        log_msg("serve: journal %s: a torn last record (%llu bytes at offset %llu, a crash "
                "mid-write) was cut off",
                s->cfg.journal_path, (unsigned long long)s->journal.torn_bytes,
                (unsigned long long)s->journal.torn_offset);
    if (journal_note(&s->journal)[0])
        log_msg("serve: warning: %s", journal_note(&s->journal));
    rc = rebuild(s, err, errlen);
    if (rc == 0 && s->recovered)
        log_msg("serve: rebuilt from the journal: %llu messages in %.2f s; next sequence number "
                "%llu",
                (unsigned long long)s->recovered, s->rebuild_s,
                (unsigned long long)journal_next_seq(&s->journal));
    return rc;
}

/* ---- the HTTP thread ahead of the ingest threads in the scheduler -------------------------- */

/* The ingest threads (workers, cross-section, the live loop and its io_uring workers) can use
 * both cores at full rate; a query that waits for one of them to use up its slice waits
 * milliseconds. The HTTP thread is idle between requests and handles one in ~0.1 ms, so it is
 * given precedence: libmicrohttpd creates its thread inside http_start and a new thread inherits
 * its creator's scheduling (PTHREAD_INHERIT_SCHED; nice and the slice are per thread on Linux),
 * so the caller takes the boost for the duration of http_start and gives it back. The boost is
 * the EEVDF scheduler's short slice (sched_setattr sched_runtime, 100 us, Linux 6.12 and later:
 * a woken thread with a shorter slice has the earlier deadline and preempts the running one)
 * with nice -10 where permitted (CAP_SYS_NICE or RLIMIT_NICE; else the slice alone), so the HTTP
 * thread runs first when it wakes but stays a fair-class thread. That is the fallback; on top of
 * it boost_step (below) makes the thread real-time while the feed keeps up. On by default
 * (http.boost = false turns it off): on this 2-core machine shared with other jobs (load 9-12)
 * the unboosted HTTP thread waits behind them and behind the ingest threads: bench/serve_ab.sh,
 * 5 interleaved rounds, query p99 at maximum TCP rate 39.8 ms unboosted against 4.5 ms, at 1 M
 * msg/s paced 35.7 against 3.5 ms; bench/hostile_clients.py, a good client beside 1,000 slow
 * ones, 88 against 3.0 ms. The price is maximum-rate ingest: TCP 2.20 against 1.60 M msg/s,
 * MoldUDP64 1.48 against 0.80 (medians; paced ingest the same), with the same server CPU time
 * (perf sched: what changes is the share of the cores the other jobs leave the ingest threads).
 * MoldUDP64 at maximum rate lost gaps in 2 of 13 unboosted runs and 1 of 13 boosted ones (an
 * earlier set, 1 of 4 boosted and 0 of 4 not, had made it opt-in; SCHED_FIFO with no demotion
 * lost gaps in 6 of 8). */
typedef struct sched_saved {
    int policy, nice, boost_nice;
    struct sched_param param;
    bool slice;
} sched_saved_t;

/* struct sched_attr of <linux/sched/types.h> (SCHED_ATTR_SIZE_VER0); glibc 2.36 has no wrapper */
typedef struct sched_attr0 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
} sched_attr0_t;

#define HTTP_SLICE_NS      100000ull
#define HTTP_DL_RUNTIME_NS 400000ull  /* the HTTP thread's reserved slice ... */
#define HTTP_DL_PERIOD_NS  1000000ull /* ... per period: 40% of one core at most */

/* sched_setattr of thread tid (0: the caller): policy, its nice (fair) or priority (FIFO), and
 * the fair slice (runtime; 0: the default). */
static int set_sched(int tid, int policy, int nice, uint32_t priority, uint64_t runtime)
{
#ifdef SYS_sched_setattr
    sched_attr0_t a = {.size = sizeof a,
                       .policy = (uint32_t)policy,
                       .nice = nice,
                       .priority = priority,
                       .runtime = runtime};
    return syscall(SYS_sched_setattr, tid, &a, 0) == 0 ? 0 : -errno;
#else
    (void)tid;
    (void)policy;
    (void)nice;
    (void)priority;
    (void)runtime;
    return -ENOSYS;
#endif
}

static int set_slice(int nice, uint64_t runtime)
{
    return set_sched(0, SCHED_OTHER, nice, 0, runtime);
}

static const char *sched_boost(sched_saved_t *sv)
{
    pthread_getschedparam(pthread_self(), &sv->policy, &sv->param);
    errno = 0;
    sv->nice = getpriority(PRIO_PROCESS, 0);
    if (errno)
        sv->nice = 0;
    sv->slice = false;
    sv->boost_nice = sv->nice;
    if (sv->policy != SCHED_OTHER) /* the caller chose a policy: leave it to the caller */
        return "inherited";
    if (set_slice(-10, HTTP_SLICE_NS) == 0) {
        sv->slice = true;
        sv->boost_nice = -10;
        return "SCHED_FIFO 1 while the feed keeps up, else nice -10, 100 us slice";
    }
    if (set_slice(sv->nice, HTTP_SLICE_NS) == 0) {
        sv->slice = true;
        return "SCHED_FIFO 1 while the feed keeps up, else a 100 us slice";
    }
    return "SCHED_FIFO 1 while the feed keeps up, else default";
}

/* The real-time step of http.boost, run by the live loop every 100 ms. The fair boost above cut
 * the HTTP thread's wait, not enough: with other processes on both cores (load average 12-18)
 * perf sched timehist showed it runnable for 1-7 ms behind a compiler or valgrind in 4% of its
 * wake-ups, and every endpoint had the same p99 (the wait, not the work). At SCHED_FIFO 1 it
 * runs as soon as a request arrives: bench_serve tcp-1m, server-side p99 2.5 -> 0.89 ms
 * (bench/serve_ab.sh, 5 interleaved rounds). But real time costs the fair-class threads:
 * at maximum MoldUDP64 rate, with the thread at SCHED_FIFO throughout, 2 of 4 runs lost gaps for
 * good (0 of 4 without). So it is real time only while the feed keeps up: it goes back to the
 * fair boost for a second after any 100 ms in which it used more than a quarter of a core, or
 * the UDP feed opened a gap, re-requested, lost or overflowed its reorder store (counted in
 * tickcore_http_boost_demotions_total; tickcore_http_realtime is 1 while it runs at
 * SCHED_FIFO). Refused real time (no CAP_SYS_NICE, no RLIMIT_RTPRIO) leaves the fair boost. */
#define BOOST_BUSY_MAX 0.25          /* of one core, over the last 100 ms */
#define BOOST_CALM_NS  1000000000ull /* fair for this long after any sign of trouble */

static void boost_step(server_t *s, uint64_t t)
{
    pthread_t th;
    int tid = s->http_sched && !s->boost_off ? http_thread_id(&s->http, &th) : 0;
    if (tid == 0)
        return;
    const live_counters_t *c = &s->live.c;
    uint64_t trouble = GGET(c->udp_gaps) + GGET(c->udp_rerequests) + GGET(c->udp_lost_messages) +
                       GGET(c->udp_store_full);
    struct timespec ts;
    if (s->boost_t == 0 && pthread_getcpuclockid(th, &s->boost_clock) != 0) {
        s->boost_off = true;
        return;
    }
    if (clock_gettime(s->boost_clock, &ts) != 0) {
        s->boost_off = s->boost_t == 0; /* later: the thread has ended (shutdown) */
        return;
    }
    uint64_t cpu = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (s->boost_t == 0) { /* the thread's first connection: start measuring, fair */
        s->boost_t = t;
        s->boost_cpu = cpu;
        s->boost_trouble = trouble;
        s->boost_calm_until = t;
        return;
    }
    double busy = t > s->boost_t ? (double)(cpu - s->boost_cpu) / (double)(t - s->boost_t) : 0;
    bool stress = busy > BOOST_BUSY_MAX || trouble != s->boost_trouble;
    s->boost_t = t;
    s->boost_cpu = cpu;
    s->boost_trouble = trouble;
    if (stress) {
        s->boost_calm_until = t + BOOST_CALM_NS;
        if (s->boost_rt && set_sched(tid, SCHED_OTHER, s->boost_nice, 0, s->boost_runtime) == 0) {
            s->boost_rt = false;
            GSET(s->g_http_rt, 0);
            atomic_fetch_add_explicit(&s->g_http_demotions, 1, memory_order_relaxed);
        }
        return;
    }
    if (!s->boost_rt && t >= s->boost_calm_until) {
        if (set_sched(tid, SCHED_FIFO, 0, 1, 0) == 0) {
            s->boost_rt = true;
            GSET(s->g_http_rt, 1);
        } else {
            s->boost_off = true; /* not permitted: the fair boost stays */
        }
    }
}

static void sched_restore(const sched_saved_t *sv)
{
    if (sv->slice)
        (void)set_slice(sv->nice, 0); /* runtime 0: the default slice again */
}

static int start_http(server_t *s, char *err, size_t errlen)
{
    static const struct {
        const char *path;
        bool prefix, public_;
        const char *type;
        http_handler_fn *fn;
        int (*query)(const snapshot_t *s, jbuf_t *out); /* h_snap routes */
        int cached; /* 1 + query_xs_t of a pre-serialised answer, 0: none */
    } table[NROUTES] = {
        {"/healthz", false, true, HTTP_CONTENT_JSON, h_healthz, NULL, 0},
        {"/metrics", false, false, PROM_CONTENT_TYPE, h_metrics, NULL, 0},
        {"/v1/symbols", false, false, HTTP_CONTENT_JSON, h_snap, query_symbols, 0},
        {"/v1/symbols/", true, false, HTTP_CONTENT_JSON, h_symbol, NULL, 0},
        {"/v1/correlation", false, false, HTTP_CONTENT_JSON, h_correlation, NULL, 0},
        {"/v1/pca", false, false, HTTP_CONTENT_JSON, h_snap, query_pca, 1 + QUERY_XS_PCA},
        {"/v1/mst", false, false, HTTP_CONTENT_JSON, h_snap, query_mst, 1 + QUERY_XS_MST},
        {"/v1/clusters", false, false, HTTP_CONTENT_JSON, h_snap, query_clusters,
         1 + QUERY_XS_CLUSTERS},
        {"/v1/memory", false, false, HTTP_CONTENT_JSON, h_memory, NULL, 0},
    };
    /* the caches' buffers, touched now so that no request takes their page faults */
    size_t cb = s->cfg.http_response_buffer;
    s->xs_cache_bytes = 3 * cb;
    s->xs_cache_buf = mem_alloc(MEM_TAG_SERVER, s->xs_cache_bytes);
    if (!s->xs_cache_buf) {
        snprintf(err, errlen, "cannot allocate the pre-serialised answers (3 x %zu bytes)", cb);
        return -ENOMEM;
    }
    memset(s->xs_cache_buf, 0, s->xs_cache_bytes);
    for (int k = 0; k < 3; k++)
        query_cache_init(&s->xs_cache[k], (query_xs_t)k, s->xs_cache_buf + (size_t)k * cb, cb);
    size_t csvb = s->cfg.http_correlation_csv && !s->pl.xs_rows_only
                      ? query_csv_bytes(s->cfg.matrix_symbols)
                      : 0;
    if (csvb) {
        s->corr_csv_bytes = 2 * csvb;
        s->corr_csv_buf = mem_alloc_prefault(MEM_TAG_SERVER, s->corr_csv_bytes, 64);
        if (!s->corr_csv_buf) {
            snprintf(err, errlen,
                     "cannot allocate the correlation CSV buffers (2 x %zu bytes; "
                     "http.correlation_csv=false turns them off)",
                     csvb);
            return -ENOMEM;
        }
        query_csv_init(&s->corr_csv, s->corr_csv_buf, csvb);
    }
    for (size_t i = 0; i < NROUTES; i++) {
        s->snap_routes[i] =
            (snap_route_t){.srv = s,
                           .snap = &s->snap,
                           .query = table[i].query,
                           .cache = table[i].cached ? &s->xs_cache[table[i].cached - 1] : NULL};
        s->routes[i] = (http_route_t){.path = table[i].path,
                                      .prefix = table[i].prefix,
                                      .public_ = table[i].public_,
                                      .content_type = table[i].type,
                                      .fn = table[i].fn,
                                      .ctx = table[i].query ? (void *)&s->snap_routes[i] : s};
    }
    s->memcap = 256 << 10;
    s->membuf = mem_alloc(MEM_TAG_SERVER, s->memcap);
    s->memf = s->membuf ? fmemopen(s->membuf, s->memcap, "w") : NULL;
    if (s->memf)
        setvbuf(s->memf, NULL, _IONBF, 0);
    s->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    sample_rss(s); /* the first figure before the first query; the live loop refreshes it */
    http_cfg_t hc;
    memset(&hc, 0, sizeof hc);
    snprintf(hc.addr, sizeof hc.addr, "%.15s", s->cfg.http_addr);
    hc.port = s->opts.ephemeral_ports ? 0 : (uint16_t)s->cfg.http_port;
    hc.max_connections = s->cfg.http_max_connections;
    hc.max_request_bytes = s->cfg.http_max_request;
    hc.response_bytes = s->cfg.http_response_buffer;
    snprintf(hc.token, sizeof hc.token, "%.127s", s->cfg.http_token);
    hc.timeout_s = (unsigned)(s->cfg.http_timeout_ns / 1000000000ull);
    hc.header_timeout_s = (unsigned)(s->cfg.http_header_timeout_ns / 1000000000ull);
    hc.response_buffers = s->cfg.http_response_buffers;
    hc.per_ip_connections = s->cfg.http_per_ip;
    /* the live page (server/web): public files; the data it reads stays behind the token */
    size_t nroutes = NROUTES, nweb;
    const web_file_t *web = web_files(&nweb);
    for (size_t i = 0; i < nweb && i < NWEB_MAX; i++)
        s->routes[nroutes++] = (http_route_t){.path = web[i].path,
                                              .public_ = true,
                                              .content_type = web[i].content_type,
                                              .fn = web_serve,
                                              .ctx = (void *)&web[i]};
    sched_saved_t sv;
    s->http_sched = s->cfg.http_boost ? sched_boost(&sv) : NULL;
    int rc = http_start(&s->http, &hc, s->routes, nroutes, err, errlen);
    if (s->http_sched) {
        s->boost_nice = sv.boost_nice;
        s->boost_runtime = sv.slice ? HTTP_SLICE_NS : 0;
        s->boost_off = sv.policy != SCHED_OTHER; /* the caller chose a policy: left alone */
        sched_restore(&sv);
    }
    s->http_ok = rc == 0;
    return rc;
}

static void teardown(server_t *s)
{
    if (s->http_ok)
        http_stop(&s->http);
    if (s->nin_ok)
        natsin_fini(&s->nin);
    if (s->live_ok)
        live_fini(&s->live);
    if (s->have_journal)
        journal_close(&s->journal);
    if (s->pl_ok)
        pipeline_fini(&s->pl);
    if (s->xpub_ok) /* after the pipeline: its cross-section thread published the last rows */
        xrowpub_fini(&s->xpub); /* flushed by drain (bounded) */
    if (s->xsn_ok)
        xsnode_fini(&s->xsn);
    if (s->snap_ok)
        snapshot_fini(&s->snap);
    if (s->memf)
        fclose(s->memf);
    if (s->membuf)
        mem_free(MEM_TAG_SERVER, s->membuf, s->memcap);
    if (s->xs_cache_buf)
        mem_free(MEM_TAG_SERVER, s->xs_cache_buf, s->xs_cache_bytes);
    if (s->corr_csv_buf)
        mem_free(MEM_TAG_SERVER, s->corr_csv_buf, s->corr_csv_bytes);
    if (s->statm_fd >= 0)
        close(s->statm_fd);
    symtab_fini(&s->symbols);
    mem_free(MEM_TAG_SERVER, s, sizeof *s);
}

/* HTTP on an address outside 127.0.0.0/8 with no http.token: every query and /metrics open to
 * whoever can reach the port. Said in the log and, when the log is a file, on stderr too. */
static void warn_public_http(const server_t *s)
{
    struct in_addr a;
    if (!s->cfg.http_port || s->cfg.http_token[0] ||
        inet_pton(AF_INET, s->cfg.http_addr, &a) != 1 || (ntohl(a.s_addr) >> 24) == 127)
        return;
    char w[300];
    snprintf(w, sizeof w,
             "warning: HTTP listens on %s:%u (not loopback) without http.token: anyone who "
             "reaches the port reads every query and /metrics; set http.token, or "
             "http.addr=127.0.0.1",
             s->cfg.http_addr, server_http_port(s));
    log_msg("serve: %s", w);
    if (s->cfg.log_path[0])
        fprintf(stderr, "tickcore serve: %s\n", w);
}

int server_open(server_t **out, const config_t *cfg, const server_opts_t *opts, char *err,
                size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    server_t *s = mem_calloc(MEM_TAG_SERVER, 1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory for the server");
        return -ENOMEM;
    }
    s->cfg = *cfg;
    if (opts)
        s->opts = *opts;
    s->statm_fd = -1;
    s->t_start = clock_mono_ns();
    const char *what = "symbol table";
    int rc = symtab_init(&s->symbols, s->cfg.max_symbols);
    if (rc == 0) {
        what = "pipeline (books, stats, covariance, PCA, graph)";
        rc = pipeline_init(&s->pl, &s->cfg, &s->symbols);
        s->pl_ok = rc == 0;
    }
    if (rc == 0) {
        what = "snapshots";
        rc = snapshot_init(&s->snap, &s->cfg, s->pl.k);
        s->snap_ok = rc == 0;
    }
    if (rc == 0) {
        s->pl.on_batch = on_batch;
        s->pl.on_xs = on_xs;
        s->pl.hook_ctx = s;
        s->pl.xs_interval_ns = s->cfg.analytics_interval_ns;
        what = s->cfg.cluster_role == CFG_ROLE_XSECTION ? "cross-section node" : "bar rows";
        rc = open_cluster(s, err, errlen);
    }
    if (rc == 0) {
        what = "pipeline threads";
        rc = pipeline_start(&s->pl);
    }
    /* HTTP first: /healthz says "recovering" while the journal is checked and replayed */
    if (rc == 0 && s->cfg.http_port) {
        what = "HTTP server";
        rc = start_http(s, err, errlen);
        if (rc == 0 && s->cfg.journal_path[0])
            log_msg("serve: http %s:%u answers 503 \"recovering\" until the journal %s is checked "
                    "and replayed",
                    s->cfg.http_addr, server_http_port(s), s->cfg.journal_path);
    }
    if (rc == 0 && s->opts.progress)
        s->opts.progress(s->opts.progress_ctx, server_http_port(s), 0, 0);
    if (rc == 0 && s->cfg.journal_path[0]) {
        what = "journal";
        rc = open_journal(s, err, errlen);
    }
    if (rc == 0) {
        config_t lc = s->cfg;
        if (s->opts.ephemeral_ports) {
            lc.tcp_port = lc.tcp_port ? LIVE_PORT_ANY : 0;
            lc.udp_port = lc.udp_port ? LIVE_PORT_ANY : 0;
        }
        what = "feeds";
        rc = live_init(&s->live, &lc, s->have_journal ? journal_next_seq(&s->journal) : 1, deliver,
                       lost, s, err, errlen);
        s->live_ok = rc == 0;
        s->live.ack = ack_seq;
        s->live.sync = logout_sync;
        if (rc == 0 && s->have_journal) { /* the gaps of earlier runs, from the .gaps sidecar */
            journal_stats_t js;
            journal_stats(&s->journal, &js);
            live_restore_lost(&s->live, js.gaps, js.lost_messages);
        }
        GSET(s->g_ack_seq, s->live.next_seq);
        if (rc == 0 && s->cfg.cluster_nats[0] && s->cfg.cluster_role == CFG_ROLE_SHARD) {
            what = "NATS input";
            rc = natsin_init(&s->nin, &s->cfg, s->live.next_seq, nats_deliver, s, err, errlen);
            s->nin_ok = rc == 0;
        }
        atomic_store_explicit(&s->phase, PHASE_READY, memory_order_release);
    }
    if (rc < 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", what, err[0] ? err : strerror(-rc));
        snprintf(err, errlen, "%s", msg);
        log_msg("serve: start-up failed: %s", msg);
        teardown(s);
        return rc;
    }
    warn_public_http(s); /* before "listening", which scripts wait for */
    log_msg("serve: listening: soupbintcp %s:%u, moldudp64 %s:%u, http %s:%u (thread: %s); "
            "session %s; next sequence number %llu; journal %s (fsync %s)",
            s->cfg.tcp_addr, s->live.tcp_port, s->cfg.udp_addr, s->live.udp_port, s->cfg.http_addr,
            server_http_port(s), s->http_sched ? s->http_sched : "off", s->cfg.session,
            (unsigned long long)s->live.next_seq, s->have_journal ? s->cfg.journal_path : "(none)",
            s->cfg.journal_fsync == CFG_FSYNC_BATCH      ? "every batch"
            : s->cfg.journal_fsync == CFG_FSYNC_INTERVAL ? "interval"
                                                         : "off");
    *out = s;
    return 0;
}

/* ---- the loop, the drain, teardown -------------------------------------------------------- */

/* No new connections or datagrams; what has arrived is applied and journalled; the journal
 * fsynced; queries end; the workers finish and the last cross-section is computed. */
static void drain(server_t *s)
{
    if (s->drained)
        return;
    s->drained = true;
    atomic_store_explicit(&s->draining, true, memory_order_relaxed);
    log_msg("serve: %s: draining", failed(s) ? "stopping after an error" : "stop requested");
    live_stop(&s->live);
    for (int i = 0; i < 200 && !live_idle(&s->live); i++) {
        if (live_poll(&s->live, 10000000ull) < 0)
            break;
        flush(s);
    }
    flush(s);
    if (s->have_journal) {
        int r = journal_sync(&s->journal);
        if (r < 0) { /* what was taken is not all on disk: degraded, and the exit status 1 */
            log_msg("serve: journal %s: final fsync: %s", s->cfg.journal_path, strerror(-r));
            journal_failed(s, r);
        }
    }
    refresh_gauges(s, clock_mono_ns());
    if (s->http_ok)
        http_stop(&s->http); /* no query reads the snapshots from here on */
    if (s->xsn_ok)           /* the cross-section node: the bars in flight, the last compute */
        xsnode_finish(&s->xsn);
    /* shutdown: the bar still open closes and counts */
    if (s->xpub_ok) /* the last rows' parts: not waiting for a NATS server gone for good */
        xrowpub_give_up_after(&s->xpub, SERVER_NATS_STOP_MS);
    pipeline_close_bars(&s->pl);
    pipeline_finish(&s->pl);
    (void)xsection_compute(&s->pl.xs); /* the report's matrices: as of the last row */
    if (s->xpub_ok) { /* every part acknowledged, or the exit status says it was not */
        char err[800];
        if (xrowpub_flush(&s->xpub, SERVER_NATS_STOP_MS, err, sizeof err) < 0)
            fail(s, "%s", err);
    }
    if (s->nin_ok && s->nin_unacked)
        log_msg("serve: nats: the last %llu packets applied were not acknowledged (%s): the "
                "stream delivers them again after a restart, which skips them",
                (unsigned long long)s->nin_unacked,
                nats_connected(s->nin.n) ? "acknowledgement failed" : "the connection is down");
    GSET(s->wall_ns, clock_mono_ns() - s->t_start);
    log_msg("serve: stopped: %llu messages taken", (unsigned long long)GGET(s->live.c.delivered));
}

int server_run(server_t *s)
{
    uint64_t t_gauges = 0;
    /* the live loop's busy time: its thread's CPU time (waiting for the ring costs none) */
    uint64_t cpu0 = clock_thread_cpu_ns();
    s->rate_t = clock_mono_ns();
    /* a journal failure (degraded) keeps the loop, and so the queries, going until stopped */
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
           (!failed(s) || atomic_load_explicit(&s->degraded, memory_order_relaxed))) {
        /* 0 would wait forever */
        int n = live_poll(&s->live, s->nin_ok || s->xsn_ok ? 1000ull : 5000000ull);
        if (n < 0) {
            fail(s, "io_uring: %s", strerror(-n));
            break;
        }
        flush(s);
        if (s->nin_ok && !failed(s))
            nats_step(s);
        if (s->xsn_ok && !failed(s)) {
            char err[600];
            if (xsnode_step(&s->xsn, 20, err, sizeof err) < 0)
                fail(s, "%s", err);
        }
        uint64_t t = clock_mono_ns();
        if (s->have_journal && !failed(s)) { /* the interval fsync, also when idle */
            int rc = journal_commit(&s->journal, t);
            if (rc < 0)
                journal_failed(s, rc); /* at once, not at the next message */
        }
        if (n == 0 && s->dirty && t - s->last_tick >= s->cfg.snapshot_interval_ns) {
            pipeline_publish_tick(&s->pl); /* workers publish what they held back */
            s->dirty = false;
            s->last_tick = t;
        }
        if (atomic_exchange_explicit(&s->hup, false, memory_order_relaxed)) {
            int r = log_reopen();
            log_msg("serve: SIGHUP: log reopened%s%s", r < 0 ? ": " : "",
                    r < 0 ? strerror(-r) : "");
        }
        if (t - t_gauges >= 100000000ull) {
            refresh_gauges(s, t);
            boost_step(s, t);
            t_gauges = t;
        }
    }
    drain(s);
    GSET(s->loop_cpu_ns, clock_thread_cpu_ns() - cpu0);
    return failed(s) ? -EIO : 0;
}

void server_stop(server_t *s)
{
    atomic_store_explicit(&s->stop, true, memory_order_relaxed);
    /* a shard's cross-section thread may be waiting for its NATS server (a reconnect, the
     * in-flight bound), and the workers and this loop behind it: bounded from now on */
    if (s->xpub_ok)
        xrowpub_give_up_after(&s->xpub, SERVER_NATS_STOP_MS);
}

void server_reopen_log(server_t *s)
{
    atomic_store_explicit(&s->hup, true, memory_order_relaxed);
}

uint16_t server_tcp_port(const server_t *s)
{
    return s->live.tcp_port;
}

uint16_t server_udp_port(const server_t *s)
{
    return s->live.udp_port;
}

uint16_t server_http_port(const server_t *s)
{
    return s->http_ok ? http_port(&s->http) : 0;
}

void server_stats(const server_t *cs, server_stats_t *o)
{
    server_t *s = (server_t *)cs; /* atomic loads take non-const pointers in C17 */
    live_counters_t *c = &s->live.c;
    memset(o, 0, sizeof *o);
    uint64_t wall = GGET(s->wall_ns);
    o->seconds = (double)(wall ? wall : clock_mono_ns() - s->t_start) * 1e-9;
    o->loop_cpu_s = (double)GGET(s->loop_cpu_ns) * 1e-9;
    o->recovered = s->recovered;
    o->rebuild_s = s->rebuild_s;
    o->delivered = GGET(c->delivered);
    o->next_seq = GGET(c->next_seq);
    o->tcp_messages = GGET(c->tcp_messages);
    o->udp_messages = GGET(c->udp_messages);
    o->duplicates = GGET(c->tcp_duplicates) + GGET(c->udp_duplicates);
    o->tcp_accepted = GGET(c->tcp_accepted);
    o->tcp_logins = GGET(c->tcp_logins);
    o->tcp_rejected = GGET(c->tcp_rejected);
    o->tcp_refused = GGET(c->tcp_refused);
    for (int r = 0; r < LIVE_DROP_COUNT; r++)
        o->drops[r] = GGET(c->drops[r]);
    o->udp_datagrams = GGET(c->udp_datagrams);
    o->udp_bad = GGET(c->udp_bad);
    o->udp_wrong_session = GGET(c->udp_wrong_session);
    o->udp_gaps = GGET(c->udp_gaps);
    o->udp_recovered = GGET(c->udp_recovered);
    o->udp_lost_messages = GGET(c->udp_lost_messages);
    o->udp_lost_gaps = GGET(c->udp_lost_gaps);
    o->journal = s->have_journal;
    o->journal_messages = GGET(s->g_journal_messages);
    o->journal_writes = GGET(s->g_journal_writes);
    o->journal_fsyncs = GGET(s->g_journal_fsyncs);
    o->journal_waits = GGET(s->g_journal_waits);
    o->journal_errors = GGET(s->g_journal_errors);
    http_stats_t h;
    http_stats(&s->http, &h);
    o->http_requests = h.requests;
    o->http_2xx = h.responses_2xx;
    o->http_4xx = h.responses_4xx;
    o->http_5xx = h.responses_5xx;
    if (atomic_load_explicit(&s->fatal, memory_order_acquire)) {
        o->failed = true;
        snprintf(o->error, sizeof o->error, "%s", s->fatal_msg);
    }
}

void server_report(const server_t *s, report_t *out)
{
    report_collect(out, &s->pl, &s->symbols, s->cfg.top_symbols);
    server_stats_t st;
    server_stats(s, &st);
    report_set_times(out, st.loop_cpu_s, st.seconds);
}

void server_close(server_t *s)
{
    if (!s)
        return;
    drain(s);
    teardown(s);
}
