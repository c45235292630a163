/*
 * serve: see serve.h. Ownership: serve_main owns one serve_t (static: it is large) holding the
 * symbol table, the pipeline, the snapshots, the journal, the feeds and the HTTP server, and
 * tears them down in reverse order before the leak check. Threads: the caller runs the live loop
 * and owns the batch being filled, the journal and the feeds; the pipeline's workers and
 * cross-section thread write the snapshots; the HTTP thread reads snapshots and atomics only
 * (the gauges below are refreshed by the live loop every 100 ms, single writer, relaxed).
 */
#include "server/server.h"

#include "base/clock.h"
#include "config/config.h"
#include "server/http.h"
#include "base/jbuf.h"
#include "server/journal.h"
#include "server/live.h"
#include "base/log.h"
#include "engine/pipeline.h"
#include "server/prom.h"
#include "server/query.h"
#include "engine/report.h"
#include "server/snapshot.h"
#include "event/symtab.h"
#include "ingest/itch.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "server/web.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVE_VERSION "0.6"

static volatile sig_atomic_t g_stop, g_hup;
static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}
static void on_hup(int sig)
{
    (void)sig;
    g_hup = 1;
}

#define GSET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define GGET(field)    atomic_load_explicit(&(field), memory_order_relaxed)

typedef struct serve {
    config_t cfg;
    bool strict, json, draining;
    symtab_t symbols;
    pipeline_t pl;
    bool pl_ok;
    snapshot_t snap;
    bool snap_ok;
    journal_t journal;
    bool have_journal;
    live_t live;
    bool live_ok;
    http_t http;
    bool http_ok;
    /* the batch being filled (live thread) */
    pipe_batch_t *batch;
    uint64_t last_ts;
    bool have_ts, dirty;
    uint64_t last_tick, bad_messages, sessions;
    int fatal; /* a journal error: stop taking data */
    char fatal_msg[600];
    /* start-up figures */
    uint64_t recovered, recovered_torn;
    double rebuild_s;
    uint64_t t_start;
    /* gauges for /metrics, written by the live loop */
    _Atomic uint64_t g_journal_messages, g_journal_bytes, g_journal_writes, g_journal_fsyncs;
    _Atomic uint64_t g_journal_waits, g_journal_errors, g_journal_lost;
    _Atomic uint64_t g_rate_milli; /* messages per second over the last second, x1000 */
    _Atomic uint64_t g_batches, g_symbols;
    uint64_t rate_t, rate_n;
    /* /v1/memory: a stdio stream over a buffer made at start-up (HTTP thread only) */
    FILE *memf;
    char *membuf;
    size_t memcap;
    mem_snapshot_t msnap;
    int statm_fd;
} serve_t;

/* ---- the live path ------------------------------------------------------------------------ */

static void flush(serve_t *s)
{
    if (!s->batch)
        return;
    if (s->batch->n && s->have_journal && !s->fatal) {
        int rc = journal_commit(&s->journal, clock_mono_ns());
        if (rc < 0) {
            s->fatal = 1;
            snprintf(s->fatal_msg, sizeof s->fatal_msg, "journal %s: %s", s->cfg.journal_path,
                     strerror(-rc));
            log_msg("serve: %s: no more data is taken (nothing could be kept)", s->fatal_msg);
        }
    }
    pipeline_publish(&s->pl, s->batch);
    s->batch = NULL;
    s->dirty = true;
}

static void deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    serve_t *s = ctx;
    (void)seq;
    if (s->fatal)
        return;
    if (s->have_journal) {
        int rc = journal_append(&s->journal, msg, len);
        if (rc < 0) {
            s->fatal = 1;
            snprintf(s->fatal_msg, sizeof s->fatal_msg, "journal %s: %s", s->cfg.journal_path,
                     strerror(-rc));
            log_msg("serve: %s: no more data is taken (nothing could be kept)", s->fatal_msg);
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
    serve_t *s = ctx;
    if (!s->have_journal)
        return;
    /* the gap is recorded after the messages before it are in the journal's buffers */
    int rc = journal_note_gap(&s->journal, from, count);
    if (rc < 0)
        log_msg("serve: journal: cannot record the lost range %llu+%llu: %s",
                (unsigned long long)from, (unsigned long long)count, strerror(-rc));
}

/* Snapshot hooks (worker and cross-section threads). */
static void on_batch(void *ctx, unsigned w, const shard_t *sh, const ev_t *ev, size_t n,
                     const uint8_t *owner, bool force)
{
    serve_t *s = ctx;
    snapshot_after_batch(&s->snap, w, sh, &s->symbols, ev, n, owner, clock_mono_ns(), force);
}

static void on_xs(void *ctx, const xsection_t *x)
{
    serve_t *s = ctx;
    snapshot_publish_xs(&s->snap, x);
}

static void refresh_gauges(serve_t *s, uint64_t t)
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
    }
    uint64_t d = GGET(s->live.c.delivered);
    if (t - s->rate_t >= 1000000000ull) {
        GSET(s->g_rate_milli, (uint64_t)((double)(d - s->rate_n) * 1e12 / (double)(t - s->rate_t)));
        s->rate_t = t;
        s->rate_n = d;
    }
    GSET(s->g_batches, s->pl.published);
    GSET(s->g_symbols, symtab_count(&s->symbols));
}

/* ---- HTTP handlers (HTTP thread) ---------------------------------------------------------- */

static int h_healthz(void *ctx, const http_request_t *req, jbuf_t *out)
{
    serve_t *s = ctx;
    (void)req;
    jbuf_printf(out,
                "{\"status\":\"%s\",\"version\":\"" SERVE_VERSION "\",\"next_sequence\":%" PRIu64
                ",\"messages\":%" PRIu64 ",\"uptime_s\":%.3f}",
                s->draining ? "draining" : (s->fatal ? "failed" : "ok"), GGET(s->live.c.next_seq),
                GGET(s->live.c.delivered), (double)(clock_mono_ns() - s->t_start) * 1e-9);
    return s->fatal || s->draining ? 503 : 200;
}

/* Endpoints that answer from the snapshots alone (no parameters): one handler, the query in the
 * route's context. */
typedef struct snap_route {
    const snapshot_t *snap;
    int (*query)(const snapshot_t *s, jbuf_t *out);
} snap_route_t;

static int h_snap(void *ctx, const http_request_t *req, jbuf_t *out)
{
    const snap_route_t *r = ctx;
    (void)req;
    return r->query(r->snap, out);
}

static int h_symbol(void *ctx, const http_request_t *req, jbuf_t *out)
{
    serve_t *s = ctx;
    const char *name = req->path + strlen("/v1/symbols/");
    return query_symbol(&s->snap, name, http_param(req, "depth"), out);
}

static int h_correlation(void *ctx, const http_request_t *req, jbuf_t *out)
{
    serve_t *s = ctx;
    return query_correlation(&s->snap, http_param(req, "symbols"), out);
}

static int h_memory(void *ctx, const http_request_t *req, jbuf_t *out)
{
    serve_t *s = ctx;
    (void)req;
    if (!s->memf)
        return http_error(out, 500, "the memory report stream is not available");
    mem_snapshot(&s->msnap);
    rewind(s->memf);
    mem_report_json(s->memf, &s->msnap, 0);
    fflush(s->memf);
    long n = ftell(s->memf);
    if (n < 0 || (size_t)n >= s->memcap)
        return http_error(out, 500, "the memory report is larger than its buffer");
    jbuf_printf(out, "%.*s", (int)n, s->membuf);
    return 200;
}

static uint64_t rss_bytes(serve_t *s)
{
    char b[128];
    if (s->statm_fd < 0)
        return 0;
    ssize_t n = pread(s->statm_fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    unsigned long long size = 0, rss = 0;
    if (sscanf(b, "%llu %llu", &size, &rss) != 2)
        return 0;
    return rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void counter(jbuf_t *jb, const char *name, const char *help, uint64_t v)
{
    prom_family(jb, name, "counter", help);
    prom_sample_u64(jb, name, NULL, v);
}

static void gauge(jbuf_t *jb, const char *name, const char *help, double v)
{
    prom_family(jb, name, "gauge", help);
    prom_sample(jb, name, NULL, v);
}

static int h_metrics(void *ctx, const http_request_t *req, jbuf_t *jb)
{
    serve_t *s = ctx;
    (void)req;
    const live_counters_t *c = &s->live.c;
    char lab[96];
    /* feeds */
    prom_family(jb, "tickcore_feed_messages_total", "counter",
                "messages taken from each live feed (first arrival of each sequence number)");
    prom_sample_u64(jb, "tickcore_feed_messages_total", "feed=\"tcp\"", GGET(c->tcp_messages));
    prom_sample_u64(jb, "tickcore_feed_messages_total", "feed=\"udp\"", GGET(c->udp_messages));
    prom_family(jb, "tickcore_feed_bytes_total", "counter", "bytes received on each live feed");
    prom_sample_u64(jb, "tickcore_feed_bytes_total", "feed=\"tcp\"", GGET(c->tcp_bytes));
    prom_sample_u64(jb, "tickcore_feed_bytes_total", "feed=\"udp\"", GGET(c->udp_bytes));
    prom_family(jb, "tickcore_feed_duplicates_total", "counter",
                "messages whose sequence number had already been taken (ignored)");
    prom_sample_u64(jb, "tickcore_feed_duplicates_total", "feed=\"tcp\"", GGET(c->tcp_duplicates));
    prom_sample_u64(jb, "tickcore_feed_duplicates_total", "feed=\"udp\"", GGET(c->udp_duplicates));
    counter(jb, "tickcore_messages_total", "messages taken from the live feeds since start",
            GGET(c->delivered));
    gauge(jb, "tickcore_next_sequence", "sequence number of the next message expected",
          (double)GGET(c->next_seq));
    gauge(jb, "tickcore_message_rate", "messages per second taken over the last second",
          (double)GGET(s->g_rate_milli) / 1000.0);
    counter(jb, "tickcore_recovered_messages_total",
            "messages replayed from the journal at start-up", s->recovered);
    /* TCP */
    gauge(jb, "tickcore_tcp_clients", "SoupBinTCP connections open now",
          (double)GGET(c->tcp_active));
    counter(jb, "tickcore_tcp_connections_total", "SoupBinTCP connections accepted",
            GGET(c->tcp_accepted));
    counter(jb, "tickcore_tcp_refused_total", "connections closed at accept (live.max_clients)",
            GGET(c->tcp_refused));
    counter(jb, "tickcore_tcp_logins_total", "SoupBinTCP logins accepted", GGET(c->tcp_logins));
    counter(jb, "tickcore_tcp_logins_rejected_total",
            "SoupBinTCP logins rejected (credentials or session)", GGET(c->tcp_rejected));
    counter(jb, "tickcore_tcp_heartbeats_sent_total", "server heartbeats sent",
            GGET(c->tcp_heartbeats_out));
    prom_family(jb, "tickcore_tcp_disconnects_total", "counter",
                "SoupBinTCP sessions ended, by reason (logout is the normal end)");
    for (int r = 0; r < LIVE_DROP_COUNT; r++) {
        snprintf(lab, sizeof lab, "reason=\"%s\"", live_drop_name((live_drop_t)r));
        prom_sample_u64(jb, "tickcore_tcp_disconnects_total", lab, GGET(c->drops[r]));
    }
    /* UDP */
    counter(jb, "tickcore_udp_datagrams_total", "MoldUDP64 datagrams received",
            GGET(c->udp_datagrams));
    counter(jb, "tickcore_udp_bad_datagrams_total", "datagrams that are not MoldUDP64 packets",
            GGET(c->udp_bad));
    counter(jb, "tickcore_udp_truncated_total", "datagrams larger than live.udp_buffer_size",
            GGET(c->udp_truncated));
    counter(jb, "tickcore_udp_wrong_session_total", "packets of another session",
            GGET(c->udp_wrong_session));
    counter(jb, "tickcore_udp_gaps_total", "sequence gaps detected", GGET(c->udp_gaps));
    counter(jb, "tickcore_udp_recovered_messages_total",
            "missing messages that arrived later (retransmission)", GGET(c->udp_recovered));
    counter(jb, "tickcore_udp_lost_gaps_total", "gaps that could not be filled (declared lost)",
            GGET(c->udp_lost_gaps));
    counter(jb, "tickcore_udp_lost_messages_total", "messages in gaps declared lost",
            GGET(c->udp_lost_messages));
    counter(jb, "tickcore_udp_rerequests_total", "retransmission requests sent",
            GGET(c->udp_rerequests));
    gauge(jb, "tickcore_udp_reorder_peak_bytes", "most bytes held past a gap at once",
          (double)GGET(c->udp_held_peak));
    counter(jb, "tickcore_udp_reorder_full_total", "messages that found the reorder store full",
            GGET(c->udp_store_full));
    /* journal */
    counter(jb, "tickcore_journal_messages_total", "messages in the journal",
            GGET(s->g_journal_messages));
    counter(jb, "tickcore_journal_bytes_total", "bytes written to the journal",
            GGET(s->g_journal_bytes));
    counter(jb, "tickcore_journal_writes_total", "io_uring writes to the journal",
            GGET(s->g_journal_writes));
    counter(jb, "tickcore_journal_fsyncs_total", "journal fsyncs", GGET(s->g_journal_fsyncs));
    counter(jb, "tickcore_journal_buffer_waits_total",
            "appends that waited for a journal buffer (disk slower than the feed)",
            GGET(s->g_journal_waits));
    counter(jb, "tickcore_journal_errors_total", "journal write errors (ingest stops)",
            GGET(s->g_journal_errors));
    /* pipeline */
    counter(jb, "tickcore_pipeline_batches_total", "event batches published to the workers",
            GGET(s->g_batches));
    counter(jb, "tickcore_pipeline_full_waits_total",
            "times the live loop waited for a free batch (backpressure)",
            GGET(s->pl.acquire_waits));
    prom_family(jb, "tickcore_worker_events_total", "counter",
                "events each shard worker has scanned");
    for (unsigned w = 0; w < s->pl.k; w++) {
        snprintf(lab, sizeof lab, "worker=\"%u\"", w);
        prom_sample_u64(jb, "tickcore_worker_events_total", lab, GGET(s->pl.w[w].events));
    }
    counter(jb, "tickcore_xsection_computes_total", "correlation/PCA/MST recomputations published",
            GGET(s->pl.xs_computes));
    gauge(jb, "tickcore_symbols", "symbols in the symbol table", (double)GGET(s->g_symbols));
    /* memory */
    mem_snapshot(&s->msnap);
    const mem_snapshot_t *m = &s->msnap;
    static const struct {
        const char *name, *type, *help;
        size_t off; /* of the int64_t or uint64_t field in mem_tag_stats_t */
    } per_tag[] = {
        {"tickcore_memory_live_bytes", "gauge", "bytes allocated now, by tag",
         offsetof(mem_tag_stats_t, live)},
        {"tickcore_memory_peak_bytes", "gauge", "most bytes allocated at once, by tag",
         offsetof(mem_tag_stats_t, peak)},
        {"tickcore_memory_allocations_total", "counter", "allocations, by tag",
         offsetof(mem_tag_stats_t, allocs)},
        {"tickcore_memory_churn_total", "counter",
         "allocations after the seal (steady state must show 0), by tag",
         offsetof(mem_tag_stats_t, churn_allocs)},
    };
    for (size_t k = 0; k < sizeof per_tag / sizeof per_tag[0]; k++) {
        prom_family(jb, per_tag[k].name, per_tag[k].type, per_tag[k].help);
        for (int t = 0; t < MEM_TAG_COUNT; t++) {
            uint64_t v;
            memcpy(&v, (const char *)&m->tag[t] + per_tag[k].off, sizeof v); /* 64-bit fields */
            snprintf(lab, sizeof lab, "tag=\"%s\"", mem_tag_name((mem_tag_t)t));
            prom_sample(jb, per_tag[k].name, lab, (double)(int64_t)v);
        }
    }
    gauge(jb, "tickcore_memory_sealed", "1 once start-up is over", m->sealed ? 1 : 0);
    static const char *const kind_metric[] = {"tickcore_arena", "tickcore_pool", "tickcore_ring"};
    static const char *const kind_help[] = {"arena (bytes)", "pool (objects)", "ring (slots)"};
    for (int kind = 0; kind < 3; kind++) {
        char name[64], help[160];
        const char *fields[] = {"capacity", "used", "high_water", "exhausted"};
        for (int f = 0; f < 4; f++) {
            bool any = false;
            for (unsigned i = 0; i < m->nobjs; i++)
                any |= (int)m->objs[i].kind == kind;
            if (!any)
                break;
            snprintf(name, sizeof name, "%s_%s%s", kind_metric[kind], fields[f],
                     f == 3 ? "_total" : "");
            snprintf(help, sizeof help, "%s of each registered %s%s", fields[f], kind_help[kind],
                     f == 3 ? (kind == 2 ? ": producer waits on a full ring" : ": refusals") : "");
            prom_family(jb, name, f == 3 ? "counter" : "gauge", help);
            for (unsigned i = 0; i < m->nobjs; i++) {
                const mem_obj_row_t *o = &m->objs[i];
                if ((int)o->kind != kind)
                    continue;
                uint64_t v = f == 0   ? o->st.capacity
                             : f == 1 ? o->st.used
                             : f == 2 ? o->st.high_water
                                      : o->st.exhausted;
                jbuf_t lb;
                jbuf_init(&lb, lab, sizeof lab);
                prom_label(&lb, "name", o->name);
                prom_sample_u64(jb, name, lab, v);
            }
        }
    }
    gauge(jb, "tickcore_resident_bytes", "resident set size of the process", (double)rss_bytes(s));
    gauge(jb, "tickcore_uptime_seconds", "seconds since start",
          (double)(clock_mono_ns() - s->t_start) * 1e-9);
    /* HTTP: the module's own families (requests by class, refusals, the latency summary) */
    http_metrics_prom(&s->http, jb, "tickcore");
    return 200;
}

/* ---- start-up, loop, teardown ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tickcore serve [options]\n"
            "  Run the engine as a server: take ITCH 5.0 from SoupBinTCP publishers (TCP) and\n"
            "  MoldUDP64 datagrams (UDP), journal every message, and answer HTTP queries.\n"
            "  Publish a file with `tickcore feed FILE --to tcp://127.0.0.1:7001`.\n"
            "options:\n"
            "  --config FILE      configuration (default: built-in; see config/tickcore.ini)\n"
            "  --set S.KEY=VALUE  override one key (e.g. --set http.port=9090)\n"
            "  --print-config     print the effective configuration and exit\n"
            "  --strict           exit 3 if anything allocated after start-up or leaked\n"
            "  --json             the final report as JSON\n"
            "  --help             this text\n"
            "endpoints: / (the live page) /healthz /metrics /v1/symbols /v1/symbols/{SYM}?depth=N\n"
            "           /v1/correlation?symbols=A,B,C /v1/pca /v1/mst /v1/clusters /v1/memory\n"
            "signals: SIGTERM/SIGINT drain, fsync the journal and exit; SIGHUP reopens the log\n");
}

/* Replay the journal through the pipeline (before the seal): books, stats and matrices as they
 * were. 0, or -1 with a message. */
static int rebuild(serve_t *s, char *err, size_t errlen)
{
    uint64_t want = journal_messages(&s->journal);
    if (want == 0)
        return 0;
    double t0 = (double)clock_mono_ns();
    static stream_t st;
    stream_cfg_t scfg;
    pipeline_stream_cfg(&scfg, &s->cfg);
    scfg.format = STREAM_ITCH;
    scfg.skip_bad = false;
    int rc = stream_init(&st, &scfg, &s->symbols);
    if (rc == 0)
        rc = stream_open(&st, s->cfg.journal_path);
    if (rc < 0) {
        snprintf(err, errlen, "rebuilding from the journal: %s",
                 st.err[0] ? st.err : strerror(-rc));
        stream_fini(&st);
        return -1;
    }
    int r;
    for (;;) {
        pipe_batch_t *b = pipeline_acquire(&s->pl);
        size_t n = 0;
        r = stream_next_into(&st, b->ev, s->pl.batch_cap, &n);
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
        }
        pipeline_publish(&s->pl, b);
        if (r <= 0)
            break;
    }
    uint64_t got = st.messages;
    if (r < 0)
        snprintf(err, errlen, "rebuilding from the journal: %s", st.err);
    stream_close(&st);
    stream_fini(&st);
    if (r < 0)
        return -1;
    if (got != want) {
        snprintf(err, errlen,
                 "rebuilding from the journal: read %" PRIu64
                 " messages, the journal holds %" PRIu64,
                 got, want);
        return -1;
    }
    s->recovered = got;
    s->rebuild_s = ((double)clock_mono_ns() - t0) * 1e-9;
    return 0;
}

static int parse_args(serve_t *s, int argc, char **argv, bool *print_config)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'S'},
        {"print-config", no_argument, NULL, 'C'},
        {"strict", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[600];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (c == 'c' && config_load(&s->cfg, optarg, err, sizeof err) < 0) {
            fprintf(stderr, "tickcore serve: %s\n", err);
            return 2;
        }
    opterr = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            break;
        case 'S':
            if (config_set(&s->cfg, optarg, NULL, err, sizeof err) < 0) {
                fprintf(stderr, "tickcore serve: %s\n", err);
                return 2;
            }
            break;
        case 'C':
            *print_config = true;
            break;
        case 's':
            s->strict = true;
            break;
        case 'j':
            s->json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (config_check(&s->cfg, err, sizeof err) < 0) {
        fprintf(stderr, "tickcore serve: %s\n", err);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "tickcore serve: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!s->cfg.tcp_port && !s->cfg.udp_port) {
        fprintf(stderr, "tickcore serve: live.tcp_port and live.udp_port are both 0: no feed\n");
        return 2;
    }
    return -1;
}

static void print_report(serve_t *s, const report_t *rep, const mem_snapshot_t *end, double secs,
                         int status)
{
    const live_counters_t *c = &s->live.c;
    if (s->json) {
        printf("{\"command\":\"serve\",\"seconds\":%.3f,\"recovered\":%" PRIu64
               ",\"messages\":%" PRIu64 ",\"tcp_messages\":%" PRIu64 ",\"udp_messages\":%" PRIu64
               ",\"duplicates\":%" PRIu64 ",\"next_sequence\":%" PRIu64 ",\"udp_gaps\":%" PRIu64
               ",\"udp_lost_messages\":%" PRIu64 ",\"tcp_logins\":%" PRIu64
               ",\"journal_messages\":%" PRIu64 ",\"http_requests\":%" PRIu64 ",\"analytics\":",
               secs, s->recovered, GGET(c->delivered), GGET(c->tcp_messages), GGET(c->udp_messages),
               GGET(c->tcp_duplicates) + GGET(c->udp_duplicates), GGET(c->next_seq),
               GGET(c->udp_gaps), GGET(c->udp_lost_messages), GGET(c->tcp_logins),
               GGET(s->g_journal_messages), GGET(s->http.requests));
        report_json(stdout, rep);
        printf(",\"memory\":");
        mem_report_json(stdout, end, MEM_REPORT_LEAKS);
        printf(",\"exit_status\":%d}\n", status);
        return;
    }
    printf("tickcore serve: %.1f s; %" PRIu64 " messages recovered from the journal, %" PRIu64
           " taken live (tcp %" PRIu64 ", udp %" PRIu64 "), %" PRIu64
           " duplicates ignored; next sequence number %" PRIu64 "\n",
           secs, s->recovered, GGET(c->delivered), GGET(c->tcp_messages), GGET(c->udp_messages),
           GGET(c->tcp_duplicates) + GGET(c->udp_duplicates), GGET(c->next_seq));
    printf("  tcp: %" PRIu64 " connections, %" PRIu64 " logins, %" PRIu64 " rejected, %" PRIu64
           " refused at accept; ended:",
           GGET(c->tcp_accepted), GGET(c->tcp_logins), GGET(c->tcp_rejected), GGET(c->tcp_refused));
    for (int r = 0; r < LIVE_DROP_COUNT; r++)
        if (GGET(c->drops[r]))
            printf(" %s %" PRIu64, live_drop_name((live_drop_t)r), GGET(c->drops[r]));
    printf("\n  udp: %" PRIu64 " datagrams (%" PRIu64 " bad, %" PRIu64 " other session), %" PRIu64
           " gaps, %" PRIu64 " messages recovered by re-request, %" PRIu64 " lost in %" PRIu64
           " gaps\n",
           GGET(c->udp_datagrams), GGET(c->udp_bad), GGET(c->udp_wrong_session), GGET(c->udp_gaps),
           GGET(c->udp_recovered), GGET(c->udp_lost_messages), GGET(c->udp_lost_gaps));
    if (s->have_journal)
        printf("  journal %s: %" PRIu64 " messages, %" PRIu64 " writes, %" PRIu64
               " fsyncs (%s), %" PRIu64 " buffer waits%s%s\n",
               s->cfg.journal_path, GGET(s->g_journal_messages), GGET(s->g_journal_writes),
               GGET(s->g_journal_fsyncs),
               s->cfg.journal_fsync == CFG_FSYNC_BATCH      ? "every batch"
               : s->cfg.journal_fsync == CFG_FSYNC_INTERVAL ? "interval"
                                                            : "off",
               GGET(s->g_journal_waits), s->fatal ? "; FAILED: " : "",
               s->fatal ? s->fatal_msg : "");
    printf("  http: %" PRIu64 " requests (%" PRIu64 " 2xx, %" PRIu64 " 4xx, %" PRIu64 " 5xx)\n",
           GGET(s->http.requests), GGET(s->http.responses_2xx), GGET(s->http.responses_4xx),
           GGET(s->http.responses_5xx));
    report_text(stdout, rep);
    mem_report_text(stdout, end, MEM_REPORT_LEAKS);
}

int serve_main(int argc, char **argv)
{
    static serve_t sv;
    serve_t *s = &sv;
    memset(s, 0, sizeof *s);
    config_default(&s->cfg);
    s->statm_fd = -1;
    bool print_config = false;
    int prc = parse_args(s, argc, argv, &print_config);
    if (prc >= 0)
        return prc;
    if (print_config) {
        config_print(stdout, &s->cfg);
        return 0;
    }
    if (s->strict)
        mem_set_strict(true);
    int lrc = log_open(s->cfg.log_path);
    if (lrc < 0) {
        fprintf(stderr, "tickcore serve: log %s: %s\n", s->cfg.log_path, strerror(-lrc));
        return 1;
    }
    g_stop = g_hup = 0;
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction sh = {.sa_handler = on_hup};
    sigaction(SIGHUP, &sh, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->t_start = clock_mono_ns();

    char err[600] = "";
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
        what = "pipeline threads";
        rc = pipeline_start(&s->pl);
    }
    if (rc == 0 && s->cfg.journal_path[0]) {
        journal_cfg_t jc = {.path = s->cfg.journal_path,
                            .buffer_size = s->cfg.journal_buffer_size,
                            .buffers = s->cfg.journal_buffers,
                            .fsync = (journal_fsync_t)s->cfg.journal_fsync,
                            .fsync_interval_ns = s->cfg.journal_fsync_interval_ns};
        what = "journal";
        rc = journal_open(&s->journal, &jc, err, sizeof err);
        s->have_journal = rc == 0;
        if (rc == 0) {
            if (s->journal.torn_bytes)
                log_msg("serve: journal %s: a torn last record (%llu bytes at offset %llu, a "
                        "crash mid-write) was cut off",
                        s->cfg.journal_path, (unsigned long long)s->journal.torn_bytes,
                        (unsigned long long)s->journal.torn_offset);
            what = "journal replay";
            rc = rebuild(s, err, sizeof err) < 0 ? -EIO : 0;
            if (rc == 0 && s->recovered)
                log_msg("serve: rebuilt from the journal: %llu messages in %.2f s; next sequence "
                        "number %llu",
                        (unsigned long long)s->recovered, s->rebuild_s,
                        (unsigned long long)journal_next_seq(&s->journal));
        }
    }
    if (rc == 0) {
        what = "feeds";
        rc = live_init(&s->live, &s->cfg, s->have_journal ? journal_next_seq(&s->journal) : 1,
                       deliver, lost, s, err, sizeof err);
        s->live_ok = rc == 0;
    }
    if (rc == 0 && s->cfg.http_port) {
        http_cfg_t hc;
        memset(&hc, 0, sizeof hc);
        snprintf(hc.addr, sizeof hc.addr, "%.15s", s->cfg.http_addr);
        hc.port = (uint16_t)s->cfg.http_port;
        hc.max_connections = s->cfg.http_max_connections;
        hc.max_request_bytes = s->cfg.http_max_request;
        hc.response_bytes = s->cfg.http_response_buffer;
        snprintf(hc.token, sizeof hc.token, "%.127s", s->cfg.http_token);
        hc.timeout_s = (unsigned)(s->cfg.http_timeout_ns / 1000000000ull);
        static snap_route_t q_symbols = {.query = query_symbols}, q_pca = {.query = query_pca},
                            q_mst = {.query = query_mst}, q_clusters = {.query = query_clusters};
        q_symbols.snap = q_pca.snap = q_mst.snap = q_clusters.snap = &s->snap;
        static const http_route_t routes_tmpl[] = {
            {"/healthz", false, true, "application/json", h_healthz, NULL},
            {"/metrics", false, false, "text/plain; version=0.0.4; charset=utf-8", h_metrics, NULL},
            {"/v1/symbols", false, false, "application/json", h_snap, &q_symbols},
            {"/v1/symbols/", true, false, "application/json", h_symbol, NULL},
            {"/v1/correlation", false, false, "application/json", h_correlation, NULL},
            {"/v1/pca", false, false, "application/json", h_snap, &q_pca},
            {"/v1/mst", false, false, "application/json", h_snap, &q_mst},
            {"/v1/clusters", false, false, "application/json", h_snap, &q_clusters},
            {"/v1/memory", false, false, "application/json", h_memory, NULL},
        };
        enum { NTMPL = sizeof routes_tmpl / sizeof routes_tmpl[0], NWEB_MAX = 8 };
        static http_route_t routes[NTMPL + NWEB_MAX];
        size_t nroutes = 0, nweb;
        for (; nroutes < NTMPL; nroutes++) {
            routes[nroutes] = routes_tmpl[nroutes];
            if (!routes[nroutes].ctx)
                routes[nroutes].ctx = s;
        }
        /* the live page (server/web): public files, the data behind the token */
        const web_file_t *web = web_files(&nweb);
        for (size_t i = 0; i < nweb && i < NWEB_MAX; i++)
            routes[nroutes++] = (http_route_t){web[i].path,         false,     true,
                                               web[i].content_type, web_serve, (void *)&web[i]};
        s->memcap = 256 << 10;
        s->membuf = mem_alloc(MEM_TAG_SERVER, s->memcap);
        s->memf = s->membuf ? fmemopen(s->membuf, s->memcap, "w") : NULL;
        if (s->memf)
            setvbuf(s->memf, NULL, _IONBF, 0);
        s->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        what = "HTTP server";
        rc = http_start(&s->http, &hc, routes, nroutes, err, sizeof err);
        s->http_ok = rc == 0;
    }
    if (rc < 0) {
        fprintf(stderr, "tickcore serve: start-up failed: %s: %s\n", what,
                err[0] ? err : strerror(-rc));
        log_msg("serve: start-up failed: %s: %s", what, err[0] ? err : strerror(-rc));
        if (s->http_ok)
            http_stop(&s->http);
        if (s->live_ok)
            live_fini(&s->live);
        if (s->have_journal)
            journal_close(&s->journal);
        if (s->pl_ok)
            pipeline_fini(&s->pl);
        if (s->snap_ok)
            snapshot_fini(&s->snap);
        if (s->memf)
            fclose(s->memf);
        if (s->membuf)
            mem_free(MEM_TAG_SERVER, s->membuf, s->memcap);
        if (s->statm_fd >= 0)
            close(s->statm_fd);
        symtab_fini(&s->symbols);
        log_close();
        return rc == -EINVAL ? 2 : 1;
    }
    log_msg("serve: listening: soupbintcp %s:%u, moldudp64 %s:%u, http %s:%u; session %s; next "
            "sequence number %llu; journal %s (fsync %s)",
            s->cfg.tcp_addr, s->live.tcp_port, s->cfg.udp_addr, s->live.udp_port, s->cfg.http_addr,
            s->http_ok ? http_port(&s->http) : 0, s->cfg.session,
            (unsigned long long)s->live.next_seq, s->have_journal ? s->cfg.journal_path : "(none)",
            s->cfg.journal_fsync == CFG_FSYNC_BATCH      ? "every batch"
            : s->cfg.journal_fsync == CFG_FSYNC_INTERVAL ? "interval"
                                                         : "off");
    static mem_snapshot_t before, after, end;
    mem_seal();
    mem_snapshot(&before);

    uint64_t t_gauges = 0;
    /* the live loop's busy time: its thread's CPU time (waiting for the ring costs none) */
    const uint64_t cpu0 = clock_thread_cpu_ns();
    s->rate_t = clock_mono_ns();
    while (!g_stop && !s->fatal) {
        int n = live_poll(&s->live, 5000000ull);
        if (n < 0) {
            snprintf(s->fatal_msg, sizeof s->fatal_msg, "io_uring: %s", strerror(-n));
            log_msg("serve: %s", s->fatal_msg);
            s->fatal = 1;
            break;
        }
        flush(s);
        uint64_t t = clock_mono_ns();
        if (s->have_journal)
            journal_commit(&s->journal, t); /* the interval fsync, also when idle */
        if (n == 0 && s->dirty && t - s->last_tick >= s->cfg.snapshot_interval_ns) {
            pipeline_publish_tick(&s->pl); /* workers publish what they held back */
            s->dirty = false;
            s->last_tick = t;
        }
        if (g_hup) {
            g_hup = 0;
            int r = log_reopen();
            log_msg("serve: SIGHUP: log reopened%s%s", r < 0 ? ": " : "",
                    r < 0 ? strerror(-r) : "");
        }
        if (t - t_gauges >= 100000000ull) {
            refresh_gauges(s, t);
            t_gauges = t;
        }
    }
    /* Drain: no new connections or datagrams; what has arrived is applied and journalled. */
    s->draining = true;
    log_msg("serve: %s: draining", s->fatal ? "stopping after an error" : "signal received");
    live_stop(&s->live);
    for (int i = 0; i < 200 && !live_idle(&s->live); i++) {
        if (live_poll(&s->live, 10000000ull) < 0)
            break;
        flush(s);
    }
    flush(s);
    if (s->have_journal) {
        int r = journal_sync(&s->journal);
        if (r < 0)
            log_msg("serve: journal %s: final fsync: %s", s->cfg.journal_path, strerror(-r));
    }
    refresh_gauges(s, clock_mono_ns());
    if (s->http_ok)
        http_stop(&s->http); /* no query reads the snapshots from here on */
    /* shutdown: the bar still open closes and counts */
    pipeline_close_bars(&s->pl);
    pipeline_finish(&s->pl);
    double secs = (double)(clock_mono_ns() - s->t_start) * 1e-9;
    int xs_rc = xsection_compute(&s->pl.xs);
    (void)xs_rc;
    mem_snapshot(&after);
    static report_t rep;
    report_collect(&rep, &s->pl, &s->symbols, s->cfg.top_symbols);
    report_set_times(&rep, (double)(clock_thread_cpu_ns() - cpu0) * 1e-9, secs);

    live_fini(&s->live);
    if (s->have_journal)
        journal_close(&s->journal);
    pipeline_fini(&s->pl);
    snapshot_fini(&s->snap);
    if (s->memf)
        fclose(s->memf);
    if (s->membuf)
        mem_free(MEM_TAG_SERVER, s->membuf, s->memcap);
    if (s->statm_fd >= 0)
        close(s->statm_fd);
    symtab_fini(&s->symbols);
    mem_snapshot(&end);
    memcpy(end.objs, after.objs, sizeof end.objs);
    end.nobjs = after.nobjs;
    int status = mem_exit_status(&end);
    if (s->fatal && status == 0)
        status = 1;
    uint64_t churn = after.total.churn_allocs - before.total.churn_allocs;
    print_report(s, &rep, &end, secs, status);
    if (!s->json)
        printf("  allocations while serving (after the seal): %" PRIu64 "%s\n", churn,
               churn ? "  <-- churn" : " (steady state allocates nothing)");
    log_msg("serve: stopped: %llu messages taken, exit status %d",
            (unsigned long long)GGET(s->live.c.delivered), status);
    log_close();
    fflush(stdout);
    return status;
}
