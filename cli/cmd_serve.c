/*
 * cmd_serve: see cmd_serve.h. The server is server/server's object; this file holds what only
 * the command has: argument parsing, the signal handlers (they call the async-signal-safe
 * server_stop and server_reopen_log), the log file, the seal, and the report. Main thread.
 */
#include "cli/cmd_serve.h"

#include "base/log.h"
#include "cli/args.h"
#include "config/config.h"
#include "engine/report.h"
#include "mem/mem.h"
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct serve_args {
    config_t cfg;
    bool strict, json;
} serve_args_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tickcore serve [options]\n"
            "  Run the engine as a server: take ITCH 5.0 from SoupBinTCP publishers (TCP) and\n"
            "  MoldUDP64 datagrams (UDP), journal every message, and answer HTTP queries.\n"
            "  Publish a file with `tickcore feed FILE --to tcp://127.0.0.1:7001`.\n"
            "  With cluster.nats=nats://HOST:PORT it also consumes shard cluster.shard of\n"
            "  cluster.shards from NATS JetStream (`tickcore feed FILE --to nats://HOST:PORT`);\n"
            "  live.tcp_port=0 live.udp_port=0 turn the listeners off.\n"
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

enum { O_STRICT = 1, O_JSON };

static const args_opt_t OPTS[] = {
    {"strict", false, O_STRICT, NULL},
    {"json", false, O_JSON, NULL},
    {NULL, false, 0, NULL},
};

static int on_opt(void *ctx, int id, const char *val)
{
    (void)val;
    serve_args_t *a = ctx;
    if (id == O_STRICT)
        a->strict = true;
    else if (id == O_JSON)
        a->json = true;
    return 0;
}

/* ARGS_RUN to go on, else the exit status (--help, --print-config, a usage error). */
static int parse_args(serve_args_t *a, int argc, char **argv)
{
    config_default(&a->cfg);
    const args_spec_t spec = {
        .command = "serve",
        .opts = OPTS,
        .on_opt = on_opt,
        .ctx = a,
        .usage = usage,
        .cfg = &a->cfg,
        .what = "argument",
        .min_pos = 0,
        .max_pos = 0,
    };
    int npos, rc = args_parse(&spec, argc, argv, &npos);
    if (rc != ARGS_RUN)
        return rc;
    if (!a->cfg.tcp_port && !a->cfg.udp_port && !a->cfg.cluster_nats[0])
        return args_error("serve", "live.tcp_port and live.udp_port are both 0 and cluster.nats "
                                   "is empty: no feed");
    return ARGS_RUN;
}

/* Signals: a stop that arrives during start-up is kept in g_stop and applied once the server
 * exists. The pointer is a lock-free atomic, so the handlers may read it. */
static _Atomic(server_t *) g_server;
static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
    server_t *s = atomic_load(&g_server);
    if (s)
        server_stop(s);
}

static void on_hup(int sig)
{
    (void)sig;
    server_t *s = atomic_load(&g_server);
    if (s)
        server_reopen_log(s);
}

static const char *fsync_name(const config_t *c)
{
    return c->journal_fsync == CFG_FSYNC_BATCH      ? "every batch"
           : c->journal_fsync == CFG_FSYNC_INTERVAL ? "interval"
                                                    : "off";
}

static void print_json(const server_stats_t *st, const report_t *rep, const mem_snapshot_t *end,
                       int status)
{
    printf("{\"command\":\"serve\",\"seconds\":%.3f,\"recovered\":%" PRIu64 ",\"messages\":%" PRIu64
           ",\"tcp_messages\":%" PRIu64 ",\"udp_messages\":%" PRIu64 ",\"duplicates\":%" PRIu64
           ",\"next_sequence\":%" PRIu64 ",\"udp_gaps\":%" PRIu64 ",\"udp_lost_messages\":%" PRIu64
           ",\"tcp_logins\":%" PRIu64 ",\"journal_messages\":%" PRIu64 ",\"http_requests\":%" PRIu64
           ",\"analytics\":",
           st->seconds, st->recovered, st->delivered, st->tcp_messages, st->udp_messages,
           st->duplicates, st->next_seq, st->udp_gaps, st->udp_lost_messages, st->tcp_logins,
           st->journal_messages, st->http_requests);
    report_json(stdout, rep);
    printf(",\"memory\":");
    mem_report_json(stdout, end, MEM_REPORT_LEAKS);
    printf(",\"exit_status\":%d}\n", status);
}

static void print_text(const config_t *cfg, const server_stats_t *st, const report_t *rep,
                       const mem_snapshot_t *end, uint64_t churn)
{
    printf("tickcore serve: %.1f s; %" PRIu64 " messages recovered from the journal, %" PRIu64
           " taken live (tcp %" PRIu64 ", udp %" PRIu64 "), %" PRIu64
           " duplicates ignored; next sequence number %" PRIu64 "\n",
           st->seconds, st->recovered, st->delivered, st->tcp_messages, st->udp_messages,
           st->duplicates, st->next_seq);
    printf("  tcp: %" PRIu64 " connections, %" PRIu64 " logins, %" PRIu64 " rejected, %" PRIu64
           " refused at accept; ended:",
           st->tcp_accepted, st->tcp_logins, st->tcp_rejected, st->tcp_refused);
    for (int r = 0; r < LIVE_DROP_COUNT; r++)
        if (st->drops[r])
            printf(" %s %" PRIu64, live_drop_name((live_drop_t)r), st->drops[r]);
    printf("\n  udp: %" PRIu64 " datagrams (%" PRIu64 " bad, %" PRIu64 " other session), %" PRIu64
           " gaps, %" PRIu64 " messages recovered by re-request, %" PRIu64 " lost in %" PRIu64
           " gaps\n",
           st->udp_datagrams, st->udp_bad, st->udp_wrong_session, st->udp_gaps, st->udp_recovered,
           st->udp_lost_messages, st->udp_lost_gaps);
    if (st->journal)
        printf("  journal %s: %" PRIu64 " messages, %" PRIu64 " writes, %" PRIu64
               " fsyncs (%s), %" PRIu64 " buffer waits%s%s\n",
               cfg->journal_path, st->journal_messages, st->journal_writes, st->journal_fsyncs,
               fsync_name(cfg), st->journal_waits, st->failed ? "; FAILED: " : "", st->error);
    printf("  http: %" PRIu64 " requests (%" PRIu64 " 2xx, %" PRIu64 " 4xx, %" PRIu64 " 5xx)\n",
           st->http_requests, st->http_2xx, st->http_4xx, st->http_5xx);
    report_text(stdout, rep);
    mem_report_text(stdout, end, MEM_REPORT_LEAKS);
    printf("  allocations while serving (after the seal): %" PRIu64 "%s\n", churn,
           churn ? "  <-- churn" : " (steady state allocates nothing)");
}

int serve_main(int argc, char **argv)
{
    static serve_args_t a;
    memset(&a, 0, sizeof a);
    int prc = parse_args(&a, argc, argv);
    if (prc != ARGS_RUN)
        return prc;
    if (a.strict)
        mem_set_strict(true);
    int lrc = log_open(a.cfg.log_path);
    if (lrc < 0) {
        fprintf(stderr, "tickcore serve: log %s: %s\n", a.cfg.log_path, strerror(-lrc));
        return 1;
    }
    g_stop = 0;
    struct sigaction sa = {.sa_handler = on_stop}, sh = {.sa_handler = on_hup};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sh, NULL);
    signal(SIGPIPE, SIG_IGN);

    server_t *s;
    char err[800];
    int rc = server_open(&s, &a.cfg, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "tickcore serve: start-up failed: %s\n", err);
        log_close();
        return rc == -EINVAL ? 2 : 1;
    }
    atomic_store(&g_server, s);
    if (g_stop)
        server_stop(s);
    static mem_snapshot_t before, after, end;
    mem_seal();
    mem_snapshot(&before);
    server_run(s);
    mem_snapshot(&after);
    static server_stats_t st;
    static report_t rep;
    server_stats(s, &st);
    server_report(s, &rep);
    atomic_store(&g_server, NULL);
    server_close(s);

    mem_snapshot(&end);
    memcpy(end.objs, after.objs, sizeof end.objs); /* the objects as they ended, not unregistered */
    end.nobjs = after.nobjs;
    int status = mem_exit_status(&end);
    if (st.failed && status == 0)
        status = 1;
    uint64_t churn = after.total.churn_allocs - before.total.churn_allocs;
    if (a.json)
        print_json(&st, &rep, &end, status);
    else
        print_text(&a.cfg, &st, &rep, &end, churn);
    log_msg("serve: exit status %d", status);
    log_close();
    fflush(stdout);
    return status;
}
