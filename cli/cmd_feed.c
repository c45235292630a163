/*
 * cmd_feed: see cmd_feed.h. Ownership: the options and the result live on the caller's stack;
 * everything the run allocates belongs to feed/publish. This file parses the command line
 * (cli/args), installs the SIGINT/SIGTERM handlers for the run, calls publish_run and prints the
 * report.
 */
#include "cli/cmd_feed.h"

#include "base/jbuf.h"
#include "cli/args.h"
#include "config/config.h"
#include "feed/natspub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

typedef struct feed_opts {
    publish_cfg_t p;
    bool json;
    bool fresh, nats;
    bool from_set, retry_set, retain_set, linger_set, rtx_rate_set;
} feed_opts_t;

/* ---- options ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: tickcore feed FILE --to tcp://IP:PORT|udp://IP:PORT|nats://HOST:PORT [options]\n"
           "\n"
           "Replays an ITCH 5.0 BinaryFILE (plain or gzip) as a live feed into `tickcore serve`:\n"
           "message N of the file is sequence number N. Over TCP (SoupBinTCP 3.0, push mode) it\n"
           "logs in, resumes at the sequence number the server's Login Accepted names, sends one\n"
           "Sequenced Data packet per message and a Logout Request at the end of the file, then\n"
           "waits for the server to close. Over UDP (MoldUDP64) it sends datagrams of up to 1400\n"
           "bytes, answers retransmission requests from the last --retain messages, and ends with\n"
           "3 End of Session packets. Into NATS JetStream (nats://) it publishes every message\n"
           "into the stream cluster.stream (created if absent, file storage) on subject\n"
           "<cluster.subject>.<shard>, shard = stock locate %% cluster.shards (system, directory\n"
           "and locate-0 messages to every shard), packed up to cluster.packet_bytes per NATS\n"
           "message, at most cluster.max_pending unacknowledged; `serve --set cluster.nats=URL\n"
           "--set cluster.shard=I --set cluster.shards=N` consumes one shard.\n"
           "\n"
           "  --to URL              tcp://IPv4:PORT, udp://IPv4:PORT or nats://HOST:PORT\n"
           "                        (required)\n"
           "  --rate N/s|max        messages per second, paced in 1 ms slices (500000/s, 2M/s,\n"
           "                        0.5/s; k, M, G = 1e3, 1e6, 1e9); default max\n"
           "  --count N             send at most N messages, from the first sequence number sent\n"
           "  --user NAME           SoupBinTCP username (default: live.username)\n"
           "  --password WORD       SoupBinTCP password (default: live.password)\n"
           "  --session NAME        TCP: session to log in to (default blank: the server's);\n"
           "                        UDP: session of the datagrams (default: live.session)\n"
           "tcp:\n"
           "  --retry SECONDS       if the connection fails or drops, reconnect every 200 ms for\n"
           "                        up to SECONDS, log in again and resume where the server says\n"
           "                        (default 0: fail, exit 1)\n"
           "udp:\n"
           "  --from N              first sequence number to send (default 1; messages before it\n"
           "                        are skipped)\n"
           "  --retain N            messages kept for retransmission (default 1M, up to 64M;\n"
           "                        50 bytes + 5 bytes of index each)\n"
           "  --linger SECONDS      keep answering retransmission requests this long after the\n"
           "                        End of Session packets (default 1)\n"
           "  --rtx-rate N          retransmitted messages per second at most (default 100000,\n"
           "                        0 = no limit); requests are answered only from the target\n"
           "  --drop-every N        test/demo hook: hold back every N-th data datagram the first\n"
           "                        time, so that the server must re-request it\n"
           "nats:\n"
           "  --fresh               delete the stream first (a stream that already holds\n"
           "                        messages is refused otherwise: one day per stream)\n"
           "output:\n"
           "  --json                the result as one JSON object on stdout\n"
           "  --quiet               no report and no status lines (errors still go to stderr)\n"
           "settings:\n"
           "  --config FILE         read settings from an INI file (live.username, live.password,\n"
           "                        live.session, input.*)\n"
           "  --set SECTION.KEY=VALUE  override one setting (repeatable)\n"
           "  --help                this text\n"
           "\n"
           "exit status: 0 ok, 1 runtime error (file error, connection refused or lost, login\n"
           "rejected, End of Session from the server), 2 usage or config error\n");
}

static int bad_opt(const char *opt, const char *val, const char *want)
{
    return args_bad("feed", opt, val, want);
}

/* "tcp://1.2.3.4:5678" or "udp://...". 0 or -1. */
static int parse_url(const char *s, bool *tcp, struct sockaddr_in *sa)
{
    if (strncmp(s, "tcp://", 6) == 0)
        *tcp = true;
    else if (strncmp(s, "udp://", 6) == 0)
        *tcp = false;
    else
        return -1;
    const char *host = s + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host || (size_t)(colon - host) >= 16)
        return -1;
    char ip[16];
    memcpy(ip, host, (size_t)(colon - host));
    ip[colon - host] = '\0';
    const char *p = colon + 1;
    if (*p < '0' || *p > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long port = strtoul(p, &end, 10);
    if (errno || *end || port < 1 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

/* "500000/s", "2M/s", "1.5k", "0.5/s" or "max". */
static int parse_rate(const char *s, double *out)
{
    if (strcmp(s, "max") == 0) {
        *out = 0;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1e3;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1e6;
        end++;
        break;
    case 'g':
    case 'G':
        v *= 1e9;
        end++;
        break;
    default:
        break;
    }
    if (strcmp(end, "/s") != 0 && *end != '\0')
        return -1;
    if (!(v > 0) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* Seconds: "5", "0.5", "2s". */
static int parse_seconds(const char *s, double max, uint64_t *ns)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return -1;
    if (*end == 's')
        end++;
    if (*end || !(v >= 0) || v > max)
        return -1;
    *ns = (uint64_t)(v * 1e9);
    return 0;
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

enum {
    OPT_TO = 1,
    OPT_RATE,
    OPT_USER,
    OPT_PASSWORD,
    OPT_SESSION,
    OPT_FROM,
    OPT_COUNT,
    OPT_RETRY,
    OPT_RETAIN,
    OPT_LINGER,
    OPT_RTX_RATE,
    OPT_DROP,
    OPT_JSON,
    OPT_QUIET,
    OPT_FRESH,
};

static const args_opt_t OPTS[] = {
    {"to", true, OPT_TO, NULL},           {"rate", true, OPT_RATE, NULL},
    {"user", true, OPT_USER, NULL},       {"password", true, OPT_PASSWORD, NULL},
    {"session", true, OPT_SESSION, NULL}, {"from", true, OPT_FROM, NULL},
    {"count", true, OPT_COUNT, NULL},     {"retry", true, OPT_RETRY, NULL},
    {"retain", true, OPT_RETAIN, NULL},   {"linger", true, OPT_LINGER, NULL},
    {"drop-every", true, OPT_DROP, NULL}, {"json", false, OPT_JSON, NULL},
    {"quiet", false, OPT_QUIET, NULL},    {"rtx-rate", true, OPT_RTX_RATE, NULL},
    {"fresh", false, OPT_FRESH, NULL},    {NULL, false, 0, NULL},
};

static int on_opt(void *ctx, int id, const char *val)
{
    feed_opts_t *fo = ctx;
    publish_cfg_t *o = &fo->p;
    switch (id) {
    case OPT_TO:
        o->to = val;
        break;
    case OPT_RATE:
        if (parse_rate(val, &o->rate))
            return bad_opt("--rate", val, "N/s (500000/s, 2M/s) or max");
        break;
    case OPT_USER:
        if (!printable(val, 6))
            return bad_opt("--user", val, "at most 6 printable characters");
        o->user = val;
        break;
    case OPT_PASSWORD:
        if (!printable(val, 10))
            return bad_opt("--password", val, "at most 10 printable characters");
        o->pass = val;
        break;
    case OPT_SESSION:
        if (!printable(val, 10))
            return bad_opt("--session", val, "at most 10 printable characters");
        o->session = val;
        break;
    case OPT_FROM:
        if (args_count("feed", "--from", val, 1, UINT64_MAX, "a sequence number >= 1", &o->from))
            return 2;
        fo->from_set = true;
        break;
    case OPT_COUNT:
        if (args_count("feed", "--count", val, 1, UINT64_MAX,
                       "a whole number >= 1 (1000, 1e6, 10M)", &o->count))
            return 2;
        break;
    case OPT_RETRY:
        if (parse_seconds(val, 1e6, &o->retry_ns))
            return bad_opt("--retry", val, "seconds (0..1000000)");
        fo->retry_set = true;
        break;
    case OPT_RETAIN:
        if (args_count("feed", "--retain", val, 1, PUBLISH_MAX_RETAIN, "1..64M messages",
                       &o->retain))
            return 2;
        fo->retain_set = true;
        break;
    case OPT_LINGER:
        if (parse_seconds(val, 3600, &o->linger_ns))
            return bad_opt("--linger", val, "seconds (0..3600)");
        fo->linger_set = true;
        break;
    case OPT_RTX_RATE:
        if (args_count("feed", "--rtx-rate", val, 0, PUBLISH_MAX_RTX_RATE,
                       "0..10M messages per second (0 = no limit)", &o->rtx_rate))
            return 2;
        fo->rtx_rate_set = true;
        break;
    case OPT_DROP:
        if (args_count("feed", "--drop-every", val, 1, UINT64_MAX, "a whole number >= 1",
                       &o->drop_every))
            return 2;
        break;
    case OPT_JSON:
        fo->json = true;
        break;
    case OPT_QUIET:
        o->quiet = true;
        break;
    case OPT_FRESH:
        fo->fresh = true;
        break;
    }
    return 0;
}

/* ARGS_RUN to run, or the exit status (0 after --help, 2 after a usage error, reported). */
static int parse_args(int argc, char **argv, feed_opts_t *fo)
{
    memset(fo, 0, sizeof *fo);
    publish_cfg_default(&fo->p);
    publish_cfg_t *o = &fo->p;
    const args_spec_t spec = {.command = "feed",
                              .opts = OPTS,
                              .on_opt = on_opt,
                              .ctx = fo,
                              .usage = usage,
                              .cfg = &o->cfg,
                              .what = "input file",
                              .min_pos = 1,
                              .max_pos = 1};
    int npos, rc = args_parse(&spec, argc, argv, &npos);
    if (rc != ARGS_RUN)
        return rc;
    o->file = argv[1];
    if (!o->to)
        return args_error("feed", "--to tcp://IP:PORT, udp://IP:PORT or nats://HOST:PORT is "
                                  "required");
    if (strncmp(o->to, "nats://", 7) == 0) {
        fo->nats = true;
        if (strlen(o->to) <= 7 || strlen(o->to) >= 256)
            return bad_opt("--to", o->to, "nats://HOST:PORT");
        if (o->user || o->pass || o->session || fo->from_set || fo->retry_set || fo->retain_set ||
            fo->linger_set || o->drop_every || fo->rtx_rate_set)
            return args_error("feed", "nats:// takes --rate, --count, --fresh, --json, --quiet and "
                                      "the settings (cluster.*) only");
        return ARGS_RUN;
    }
    if (fo->fresh)
        return args_error("feed", "--fresh is for nats://");
    if (parse_url(o->to, &o->tcp, &o->addr))
        return bad_opt("--to", o->to, "tcp://IPv4:PORT or udp://IPv4:PORT");
    if (o->tcp &&
        (fo->from_set || fo->retain_set || fo->linger_set || o->drop_every || fo->rtx_rate_set))
        return args_error("feed", "--from, --retain, --linger, --rtx-rate and --drop-every are "
                                  "for udp:// "
                                  "(over TCP the server's Login Accepted names the sequence)");
    if (!o->tcp && fo->retry_set)
        return args_error("feed", "--retry is for tcp://");
    return ARGS_RUN;
}

/* ---- report ------------------------------------------------------------------------------- */

static void report(const feed_opts_t *fo, const publish_result_t *r)
{
    const publish_cfg_t *o = &fo->p;
    uint64_t last = r->next_seq > r->first_seq ? r->next_seq - 1 : 0;
    if (fo->json) {
        printf("{\"command\":\"feed\",\"file\":");
        jbuf_fput_str(stdout, o->file);
        printf(",\"to\":");
        jbuf_fput_str(stdout, o->to);
        printf(",\"protocol\":\"%s\",\"ok\":%s,\"status\":%d,\"error\":", r->tcp ? "tcp" : "udp",
               r->status == 0 ? "true" : "false", r->status);
        if (r->status)
            jbuf_fput_str(stdout, r->error);
        else
            printf("null");
        printf(",\"session\":");
        jbuf_fput_str(stdout, r->session);
        printf(",\"first_seq\":%" PRIu64 ",\"next_seq\":%" PRIu64 ",\"messages\":%" PRIu64
               ",\"bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"packets\":%" PRIu64
               ",\"seconds\":%.6f,\"rate\":%.1f,\"target_rate\":%.1f,\"past_end\":%s"
               ",\"interrupted\":%s,\"heartbeats_sent\":%" PRIu64
               ",\"allocs_after_start\":%" PRIu64,
               r->first_seq, r->next_seq, r->messages, r->bytes, r->wire_bytes, r->packets,
               r->seconds, r->rate, r->target_rate, r->past_end ? "true" : "false",
               r->interrupted ? "true" : "false", r->heartbeats_sent, r->allocs);
        if (r->tcp)
            printf(",\"resumed_from\":%" PRIu64 ",\"last_resume\":%" PRIu64 ",\"logins\":%" PRIu64
                   ",\"reconnects\":%" PRIu64 ",\"heartbeats_received\":%" PRIu64
                   ",\"unexpected_packets\":%" PRIu64 ",\"end_of_session\":%s"
                   ",\"server_closed\":%s",
                   r->resumed_from, r->last_resume, r->logins, r->reconnects,
                   r->heartbeats_received, r->unexpected_packets,
                   r->end_of_session ? "true" : "false", r->server_closed ? "true" : "false");
        else
            printf(",\"retransmission\":{\"requests\":%" PRIu64 ",\"bad_requests\":%" PRIu64
                   ",\"answered\":%" PRIu64 ",\"unanswerable\":%" PRIu64
                   ",\"rate_limited\":%" PRIu64 ",\"packets\":%" PRIu64
                   "},\"test_dropped_packets\":%" PRIu64,
                   r->requests, r->bad_requests, r->answered, r->unanswerable, r->rtx_limited,
                   r->rtx_packets, r->test_dropped);
        printf("}\n");
        fflush(stdout);
        return;
    }
    if (o->quiet)
        return;
    printf("feed %s -> %s (session '%s'): %" PRIu64 " messages, %" PRIu64 " bytes in %.3f s, "
           "%.0f msg/s%s%s\n",
           o->file, o->to, r->session, r->messages, r->bytes, r->seconds, r->rate,
           r->interrupted ? " (interrupted)" : "", r->status ? " (failed)" : "");
    if (r->messages)
        printf("  sequence %" PRIu64 "..%" PRIu64, r->first_seq, last);
    else
        printf("  nothing sent from sequence %" PRIu64 "%s", r->first_seq,
               r->past_end ? " (past the end of the file)" : "");
    if (r->tcp)
        printf(", resumed from %" PRIu64 ", %" PRIu64 " login%s, %" PRIu64 " reconnect%s, %" PRIu64
               " sends, heartbeats %" PRIu64 " sent / %" PRIu64 " received%s\n",
               r->resumed_from, r->logins, r->logins == 1 ? "" : "s", r->reconnects,
               r->reconnects == 1 ? "" : "s", r->packets, r->heartbeats_sent,
               r->heartbeats_received, r->end_of_session ? ", End of Session received" : "");
    else
        printf(" in %" PRIu64 " datagrams; retransmissions: %" PRIu64 " requests, %" PRIu64
               " messages answered in %" PRIu64 " datagrams, %" PRIu64 " unanswerable, %" PRIu64
               " over --rtx-rate, %" PRIu64 " bad requests\n",
               r->packets, r->requests, r->answered, r->rtx_packets, r->unanswerable,
               r->rtx_limited, r->bad_requests);
    if (!r->tcp && o->drop_every)
        printf("  --drop-every %" PRIu64 ": %" PRIu64 " datagrams held back the first time\n",
               o->drop_every, r->test_dropped);
    fflush(stdout);
}
static void report_nats(const feed_opts_t *fo, const natspub_result_t *r)
{
    const publish_cfg_t *o = &fo->p;
    const config_t *c = &o->cfg;
    if (fo->json) {
        printf("{\"command\":\"feed\",\"file\":");
        jbuf_fput_str(stdout, o->file);
        printf(",\"to\":");
        jbuf_fput_str(stdout, o->to);
        printf(",\"protocol\":\"nats\",\"ok\":%s,\"status\":%d,\"error\":",
               r->status == 0 ? "true" : "false", r->status);
        if (r->status)
            jbuf_fput_str(stdout, r->error);
        else
            printf("null");
        printf(",\"stream\":");
        jbuf_fput_str(stdout, c->cluster_stream);
        printf(",\"subject\":");
        jbuf_fput_str(stdout, c->cluster_subject);
        printf(",\"shards\":%u,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"copies\":%" PRIu64
               ",\"broadcast\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
               ",\"seconds\":%.6f,\"rate\":%.1f,\"acked\":%" PRIu64 ",\"duplicates\":%" PRIu64
               ",\"resent\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"stalls\":%" PRIu64
               ",\"reconnects\":%" PRIu64 ",\"stream_msgs\":%" PRIu64 ",\"stream_bytes\":%" PRIu64
               ",\"allocs_after_start\":%" PRIu64 ",\"client_commit_start\":%" PRIu64
               ",\"client_commit_peak\":%" PRIu64 ",\"interrupted\":%s}\n",
               r->shards, r->messages, r->bytes, r->copies, r->broadcast, r->packets, r->wire_bytes,
               r->seconds, r->rate, r->acked, r->duplicates, r->resent, r->rejected, r->stalls,
               r->reconnects, r->stream_msgs, r->stream_bytes, r->allocs, r->client_commit_start,
               r->client_commit_peak, r->interrupted ? "true" : "false");
        fflush(stdout);
        return;
    }
    if (o->quiet)
        return;
    printf("feed %s -> %s stream %s: %" PRIu64 " messages, %" PRIu64 " bytes in %.3f s, %.0f "
           "msg/s%s%s\n",
           o->file, o->to, c->cluster_stream, r->messages, r->bytes, r->seconds, r->rate,
           r->interrupted ? " (interrupted)" : "", r->status ? " (failed)" : "");
    printf("  %u shard%s (%s.0..%u), %" PRIu64 " to every shard, %" PRIu64 " placed in %" PRIu64
           " packets (%" PRIu64 " bytes); acknowledged %" PRIu64 ", resent %" PRIu64
           ", duplicates %" PRIu64 ", refused for order %" PRIu64 ", stalls %" PRIu64
           ", reconnects %" PRIu64 "; stream now %" PRIu64 " messages\n",
           r->shards, r->shards == 1 ? "" : "s", c->cluster_subject, r->shards - 1, r->broadcast,
           r->copies, r->packets, r->wire_bytes, r->acked, r->resent, r->duplicates, r->rejected,
           r->stalls, r->reconnects, r->stream_msgs);
    printf("  memory: %" PRIu64 " allocations of ours after start-up; allocator committed %.1f "
           "MiB at start, %.1f MiB peak (the NATS client's allocations land there)\n",
           r->allocs, (double)r->client_commit_start / 1048576.0,
           (double)r->client_commit_peak / 1048576.0);
    fflush(stdout);
}

/* ---- main --------------------------------------------------------------------------------- */

int feed_main_result(int argc, char **argv, publish_result_t *res)
{
    static publish_result_t dummy;
    publish_result_t *r = res ? res : &dummy;
    memset(r, 0, sizeof *r);
    feed_opts_t o;
    int prc = parse_args(argc, argv, &o);
    if (prc != ARGS_RUN) {
        r->status = prc;
        if (prc)
            snprintf(r->error, sizeof r->error, "usage error");
        return r->status;
    }
    int crc = args_check_input("feed", o.p.file);
    if (crc < 0) {
        r->status = 1;
        snprintf(r->error, sizeof r->error, "%s: %s", o.p.file, strerror(-crc));
        return 1;
    }
    g_stop = 0;
    o.p.stop = &g_stop;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (o.nats) {
        static natspub_result_t nr;
        natspub_cfg_t nc = {.cfg = o.p.cfg,
                            .file = o.p.file,
                            .url = o.p.to,
                            .count = o.p.count,
                            .rate = o.p.rate,
                            .fresh = o.fresh,
                            .quiet = o.p.quiet || o.json,
                            .stop = &g_stop};
        natspub_run(&nc, &nr);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        r->status = nr.status;
        r->messages = nr.messages;
        r->bytes = nr.bytes;
        r->seconds = nr.seconds;
        r->rate = nr.rate;
        r->allocs = nr.allocs;
        snprintf(r->error, sizeof r->error, "%.511s", nr.error);
        if (r->status)
            fprintf(stderr, "tickcore feed: %s\n", r->error);
        report_nats(&o, &nr);
        return r->status;
    }
    publish_run(&o.p, r);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (r->status)
        fprintf(stderr, "tickcore feed: %s\n", r->error);
    report(&o, r);
    return r->status;
}

int feed_main(int argc, char **argv)
{
    return feed_main_result(argc, argv, NULL);
}
