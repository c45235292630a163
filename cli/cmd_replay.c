/*
 * replay: see cmd_replay.h. Ownership: the options and the result (static: the analytics report
 * is a few hundred KB) are this file's; everything the run allocates belongs to engine/replay,
 * created after the arguments and the inputs are checked and destroyed before the leak check.
 * This file parses (cli/args), installs the signal handlers, shows the progress line and the
 * --rss-log samples from the engine's progress callback, and prints the report.
 */
#include "cli/cmd_replay.h"

#include "base/clock.h"
#include "base/jbuf.h"
#include "cli/args.h"
#include "engine/plots.h"
#include "engine/replay.h"
#include "engine/report.h"
#include "ingest/itch.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Message types in display order: the specification's (names from ingest/itch's table), then
 * the CSV rows. */
static const unsigned char TYPES[] = "SRHYLVWKJhAFECXDUPQBINO"
                                     "\0\0";
#define NTYPES (sizeof TYPES - 1)

static unsigned char type_at(size_t t)
{
    return t < NTYPES - 2 ? TYPES[t] : t == NTYPES - 2 ? EV_CSV_TRADE : EV_CSV_QUOTE;
}

static const char *type_name(unsigned char type)
{
    return type == EV_CSV_TRADE   ? "CSV trade"
           : type == EV_CSV_QUOTE ? "CSV quote"
                                  : itch_msg_name(type);
}

/* The process's start (its exec) on CLOCK_MONOTONIC, in seconds: the kernel's start time of the
 * process (/proc/self/stat field 22, clock ticks since boot) against CLOCK_BOOTTIME now. The
 * kernel keeps it in ticks of 1/sysconf(_SC_CLK_TCK) s (10 ms), truncated: the exec is up to one
 * tick later than this, so a span measured from it is up to 10 ms long. 0 if /proc cannot say. */
static double process_start_mono(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p)
        return 0;
    /* after ") ": field 3 (state) ... field 22 (starttime) */
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    long hz = sysconf(_SC_CLK_TCK);
    if (!p || hz <= 0)
        return 0;
    unsigned long long ticks = strtoull(p + 1, NULL, 10);
    struct timespec boot, mono;
    clock_gettime(CLOCK_BOOTTIME, &boot);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    double age = (double)boot.tv_sec + (double)boot.tv_nsec * 1e-9 - (double)ticks / (double)hz;
    return (double)mono.tv_sec + (double)mono.tv_nsec * 1e-9 - age;
}

/* Where the whole process's time went, in seconds (see print_timeline). */
typedef struct timeline {
    double exec_to_main, startup, init, finish, teardown, whole;
} timeline_t;

typedef struct replay_opts {
    config_t cfg;
    replay_cfg_t rc;
    bool json, progress, progress_forced, verbose;
    const char *rss_log;
    int rss_fd, statm_fd;
    double t_exec, t_main; /* clock_mono_s(): the process's start (process_start_mono), main */
    timeline_t tl;
} replay_opts_t;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tickcore replay [options] FILE...\n"
        "\n"
        "Replays ITCH 5.0 BinaryFILEs (plain or gzip, detected by content), pcap/pcapng\n"
        "captures of MoldUDP64 (ITCH inside; gaps reported by sequence number) and trades/quotes\n"
        "CSV files, in the order given: order books, trade statistics and bars per symbol, the\n"
        "rolling correlation of bar returns with its PCA, MST and clusters; then a report with\n"
        "the memory check.\n"
        "\n"
        "input:\n"
        "  --format auto|itch|csv  decoder (default: chosen by the file's content)\n"
        "  --skip-bad              resynchronise after a bad ITCH frame, skip bad CSV rows,\n"
        "                          count what was skipped, and go on (default: stop at the\n"
        "                          first ITCH framing error, exit 1)\n"
        "  --strict                stop at the first bad CSV row too; churn or a leak -> exit 3\n"
        "  --speed max|1x|10x|N    pace by message timestamps (default max: no pacing)\n"
        "  --repeat N              replay the inputs N times in one process (soak); a file whose\n"
        "                          clock starts before the last one ended starts a new session:\n"
        "                          books and per-symbol stats are cleared, counters carry on\n"
        "  --rss-log FILE          every 0.1 s append 'seconds rss_bytes messages allocs' (soak\n"
        "                          plots; allocs: allocations after the seal so far)\n");
    fprintf(
        f,
        "analytics:\n"
        "  --decode-only           decode and count only (no books, stats or matrices)\n"
        "  --bar DURATION          bar interval, 1s..1d (= --set stats.bar_interval=DURATION)\n"
        "  --top N                 symbols in the report, by volume (default 10)\n"
        "  --corr-out FILE.csv     write the correlation matrix (symbols as header); a name\n"
        "                          ending in .npy writes NumPy format (numpy.load), same order\n"
        "  --mst-out FILE.csv      write the MST edges: from,to,rho,distance\n"
        "  --clusters-out FILE.csv write symbol,cluster,degree,betweenness\n"
        "  --trades-out FILE.csv   write every trade counted (timestamp,symbol,price,size,side);\n"
        "                          runs one worker so the file is in feed order\n"
        "  --bars-out FILE.csv     write every closed bar of every symbol: bar,end_ns,symbol,\n"
        "                          open,high,low,close,volume,vwap,trades,return (bar by bar,\n"
        "                          then by stock locate; the same for any number of workers)\n"
        "  --book-out FILE.csv     write book snapshots every --book-every of market time:\n"
        "                          time_ns,symbol,side,level,price,shares,orders\n"
        "  --book-every DURATION   snapshot interval, 1s..1d (default 1m)\n"
        "  --depth N               levels per side in a snapshot, 1..100 (default 10)\n"
        "  --book-symbols A,B      snapshot only these symbols (default: every symbol)\n"
        "  --truth FILE.truth.csv  compare with the generator's true correlations and sectors\n"
        "                          (default: FILE.truth.csv next to a single input, if present)\n"
        "output:\n"
        "  --plots DIR             PNGs in DIR after the run: correlation heatmap in cluster "
        "order\n"
        "                          (beside the true matrix when the truth file is known), MST,\n"
        "                          PCA scree and loadings, batch latency, stage busy/wait, and\n"
        "                          with --rss-log the memory over time; their data files and\n"
        "                          gnuplot scripts stay beside them (needs gnuplot and graphviz;\n"
        "                          without them the data is written and a message says so)\n"
        "  --json                  one JSON object on stdout instead of the text report\n"
        "  --no-progress           no progress line (default: on when stderr is a terminal)\n"
        "  --progress              progress line even when stderr is not a terminal\n"
        "  --verbose               the memory table by tag, arenas, pools and rings in the report\n"
        "                          (default: one line of churn and peak RSS, and the leak check)\n"
        "settings (config/tickcore.ini lists every key with its default):\n"
        "  --config FILE           read settings from an INI file\n"
        "  --set SECTION.KEY=VALUE override one setting (repeatable)\n"
        "  --print-config          print the effective settings as an INI file and exit\n"
        "  --buf-size BYTES        = --set input.io_buffer_size=BYTES\n"
        "  --bufs N                = --set input.io_buffers=N\n"
        "  --queue-depth N         = --set input.io_queue_depth=N\n"
        "  --symbols N             = --set symbols.max_symbols=N\n"
        "  --max-line BYTES        = --set input.max_line=BYTES\n"
        "  flags override the --config file wherever they appear\n"
        "\n"
        "exit status: 0 ok, 1 an input file cannot be read (said before start-up) or ended\n"
        "with an error, 2 usage or config error (an unreadable --config included), 3 churn or\n"
        "leak (--strict)\n");
}

static int parse_speed(const char *s, double *out)
{
    if (strcmp(s, "max") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0) || v > 1e9)
        return -1;
    if (*end == 'x' || *end == 'X')
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

enum {
    O_FORMAT = 1,
    O_SKIP_BAD,
    O_STRICT,
    O_SPEED,
    O_JSON,
    O_NO_PROGRESS,
    O_PROGRESS,
    O_VERBOSE,
    O_DECODE_ONLY,
    O_CORR_OUT,
    O_MST_OUT,
    O_CLUSTERS_OUT,
    O_TRUTH,
    O_REPEAT,
    O_RSS_LOG,
    O_TRADES_OUT,
    O_BARS_OUT,
    O_BOOK_OUT,
    O_BOOK_EVERY,
    O_DEPTH,
    O_BOOK_SYMBOLS,
    O_PLOTS,
};

static const args_opt_t OPTS[] = {
    {"format", true, O_FORMAT, NULL},
    {"skip-bad", false, O_SKIP_BAD, NULL},
    {"strict", false, O_STRICT, NULL},
    {"speed", true, O_SPEED, NULL},
    {"json", false, O_JSON, NULL},
    {"no-progress", false, O_NO_PROGRESS, NULL},
    {"progress", false, O_PROGRESS, NULL},
    {"verbose", false, O_VERBOSE, NULL},
    {"decode-only", false, O_DECODE_ONLY, NULL},
    {"corr-out", true, O_CORR_OUT, NULL},
    {"mst-out", true, O_MST_OUT, NULL},
    {"clusters-out", true, O_CLUSTERS_OUT, NULL},
    {"truth", true, O_TRUTH, NULL},
    {"repeat", true, O_REPEAT, NULL},
    {"rss-log", true, O_RSS_LOG, NULL},
    {"trades-out", true, O_TRADES_OUT, NULL},
    {"bars-out", true, O_BARS_OUT, NULL},
    {"book-out", true, O_BOOK_OUT, NULL},
    {"book-every", true, O_BOOK_EVERY, NULL},
    {"depth", true, O_DEPTH, NULL},
    {"book-symbols", true, O_BOOK_SYMBOLS, NULL},
    {"plots", true, O_PLOTS, NULL},
    {"buf-size", true, 0, "input.io_buffer_size"},
    {"bufs", true, 0, "input.io_buffers"},
    {"queue-depth", true, 0, "input.io_queue_depth"},
    {"symbols", true, 0, "symbols.max_symbols"},
    {"max-line", true, 0, "input.max_line"},
    {"bar", true, 0, "stats.bar_interval"},
    {"top", true, 0, "report.top_symbols"},
    {NULL, false, 0, NULL},
};

static int on_opt(void *ctx, int id, const char *val)
{
    replay_opts_t *o = ctx;
    replay_cfg_t *rc = &o->rc;
    uint64_t v;
    switch (id) {
    case O_FORMAT:
        if (strcmp(val, "auto") == 0)
            rc->format = STREAM_AUTO;
        else if (strcmp(val, "itch") == 0)
            rc->format = STREAM_ITCH;
        else if (strcmp(val, "csv") == 0)
            rc->format = STREAM_CSV;
        else
            return args_bad("replay", "--format", val, "auto, itch or csv");
        break;
    case O_SKIP_BAD:
        rc->skip_bad = true;
        break;
    case O_STRICT:
        rc->strict = true;
        break;
    case O_SPEED:
        if (parse_speed(val, &rc->speed) < 0)
            return args_bad("replay", "--speed", val, "max, 1x, 10x or a positive factor");
        break;
    case O_JSON:
        o->json = true;
        break;
    case O_NO_PROGRESS:
        o->progress = false;
        break;
    case O_PROGRESS:
        o->progress = o->progress_forced = true;
        break;
    case O_VERBOSE:
        o->verbose = true;
        break;
    case O_DECODE_ONLY:
        rc->decode_only = true;
        break;
    case O_CORR_OUT:
        rc->corr_out = val;
        break;
    case O_MST_OUT:
        rc->mst_out = val;
        break;
    case O_CLUSTERS_OUT:
        rc->clusters_out = val;
        break;
    case O_TRUTH:
        rc->truth = val;
        break;
    case O_REPEAT:
        if (args_count("replay", "--repeat", val, 1, 1000000, "1..1000000", &v))
            return 2;
        rc->repeat = (unsigned)v;
        break;
    case O_RSS_LOG:
        o->rss_log = val;
        break;
    case O_TRADES_OUT:
        rc->trades_out = val;
        break;
    case O_BARS_OUT:
        rc->bars_out = val;
        break;
    case O_BOOK_OUT:
        rc->book_out = val;
        break;
    case O_BOOK_EVERY: {
        /* the config's duration parser, through a scratch copy (same 1s..1d bounds as bars) */
        config_t tmp = o->cfg;
        char err[200];
        if (config_set(&tmp, "stats.bar_interval", val, err, sizeof err) < 0)
            return args_bad("replay", "--book-every", val, "a duration 1s..1d (30s, 1m, 1h)");
        rc->book_every_ns = tmp.bar_interval_ns;
        break;
    }
    case O_DEPTH:
        if (args_count("replay", "--depth", val, 1, 100, "1..100", &v))
            return 2;
        rc->book_depth = (uint32_t)v;
        break;
    case O_BOOK_SYMBOLS:
        rc->book_symbols = val;
        break;
    case O_PLOTS:
        rc->plots_dir = val;
        break;
    }
    return 0;
}

/* One line of the soak log: seconds, resident bytes (from /proc/self/statm), messages,
 * allocations after the seal (churn) so far. No allocation: a stack buffer and write(2). */
static void rss_sample(const replay_opts_t *o, double t, uint64_t msgs)
{
    char buf[128];
    long rss_pages = 0;
    if (o->statm_fd >= 0) {
        ssize_t k = pread(o->statm_fd, buf, sizeof buf - 1, 0);
        if (k > 0) {
            buf[k] = '\0';
            const char *p = strchr(buf, ' ');
            rss_pages = p ? strtol(p + 1, NULL, 10) : 0;
        }
    }
    static mem_snapshot_t ms; /* large; the reader thread is the only caller */
    mem_snapshot(&ms);
    int len = snprintf(buf, sizeof buf, "%.3f %lld %llu %llu\n", t,
                       (long long)rss_pages * sysconf(_SC_PAGESIZE), (unsigned long long)msgs,
                       (unsigned long long)ms.total.churn_allocs);
    if (len > 0 && write(o->rss_fd, buf, (size_t)len) < 0)
        return;
}

/* The engine's progress callback: the progress line on stderr and the soak log. The total is
 * the files' bytes times --repeat, so the percentage and the ETA hold across passes. */
static void on_progress(void *ctx, const replay_progress_t *p)
{
    const replay_opts_t *o = ctx;
    if (o->rss_fd >= 0)
        rss_sample(o, p->elapsed, p->messages);
    if (!o->progress)
        return;
    double rate = p->elapsed > 0 ? (double)p->messages / p->elapsed : 0;
    double brate = p->elapsed > 0 ? (double)p->done_bytes / p->elapsed : 0;
    uint64_t left = p->total_bytes > p->done_bytes ? p->total_bytes - p->done_bytes : 0;
    double pct =
        p->total_bytes ? 100.0 * (double)(p->total_bytes - left) / (double)p->total_bytes : 0;
    fprintf(stderr, "\r  %8.1f / %.1f MB %5.1f%%", (double)p->done_bytes / 1e6,
            (double)p->total_bytes / 1e6, pct);
    if (o->rc.repeat > 1)
        fprintf(stderr, "  pass %u/%u", p->final ? o->rc.repeat : p->pass + 1, o->rc.repeat);
    fprintf(stderr, "  %12" PRIu64 " msgs  %7.2f M msg/s  ETA %5.0f s ", p->messages, rate / 1e6,
            brate > 0 ? (double)left / brate : 0);
    if (p->final)
        fputc('\n', stderr);
}

/* A capture's packets, duplicates and gaps (by sequence number): "capture":{...} or nothing. */
static void print_capture_json(const replay_file_t *fr)
{
    if (fr->format != STREAM_PCAP)
        return;
    printf(",\"capture\":{\"packets\":%" PRIu64 ",\"mold_packets\":%" PRIu64
           ",\"skipped_packets\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"gaps\":%" PRIu64
           ",\"gap_messages\":%" PRIu64 ",\"gap_ranges\":[",
           fr->cap_packets, fr->cap_mold_packets, fr->cap_skipped, fr->cap_duplicates, fr->cap_gaps,
           fr->cap_gap_messages);
    for (uint64_t i = 0; i < fr->cap_gaps && i < CAPTURE_GAPS_KEPT; i++)
        printf("%s{\"from\":%" PRIu64 ",\"to\":%" PRIu64 ",\"count\":%" PRIu64 "}", i ? "," : "",
               fr->cap_gap[i].from, fr->cap_gap[i].from + fr->cap_gap[i].count - 1,
               fr->cap_gap[i].count);
    printf("]}");
}

static void print_capture_text(const replay_file_t *fr)
{
    if (fr->format != STREAM_PCAP)
        return;
    printf("    capture: %" PRIu64 " packets (%" PRIu64 " MoldUDP64, %" PRIu64 " skipped), %" PRIu64
           " duplicate messages dropped, %" PRIu64 " gaps (%" PRIu64 " messages missing)",
           fr->cap_packets, fr->cap_mold_packets, fr->cap_skipped, fr->cap_duplicates, fr->cap_gaps,
           fr->cap_gap_messages);
    for (uint64_t i = 0; i < fr->cap_gaps && i < CAPTURE_GAPS_KEPT; i++)
        printf("%s%" PRIu64 "-%" PRIu64, i ? ", " : ": sequence ", fr->cap_gap[i].from,
               fr->cap_gap[i].from + fr->cap_gap[i].count - 1);
    printf("%s\n", fr->cap_gaps > CAPTURE_GAPS_KEPT ? ", ..." : "");
}

/* The whole process's time from the run's timeline: exec to replay_main (loader, library
 * constructors), start-up (exec to the first message decoded: the figure of issue 13's target),
 * init (replay_create to the seal: sizing, mapping, populating, threads), finish (the input
 * drained to the report ready: cross-section, truth comparison, output files), teardown
 * (replay_destroy and the leak check). whole is filled by print_report, just before it prints. */
static void timeline_set(replay_opts_t *o, const replay_result_t *res, double t_torn)
{
    timeline_t *tl = &o->tl;
    double t_exec = o->t_exec > 0 ? o->t_exec : o->t_main;
    tl->exec_to_main = o->t_main - t_exec;
    tl->startup = (res->t_first > 0 ? res->t_first : res->t_seal) - t_exec;
    tl->init = res->t_seal - res->t_create;
    tl->finish = res->t_finished - res->t_drained;
    tl->teardown = t_torn - res->t_finished;
}

static void print_timeline_json(const timeline_t *tl)
{
    printf(",\"startup_s\":%.6f,\"teardown_s\":%.6f,\"timeline\":{\"exec_to_main_s\":%.6f"
           ",\"startup_s\":%.6f,\"init_s\":%.6f,\"finish_s\":%.6f,\"teardown_s\":%.6f"
           ",\"whole_s\":%.6f}",
           tl->startup, tl->teardown, tl->exec_to_main, tl->startup, tl->init, tl->finish,
           tl->teardown, tl->whole);
}

static void print_report(replay_opts_t *o, const replay_result_t *res, int status)
{
    o->tl.whole = clock_mono_s() - (o->t_exec > 0 ? o->t_exec : o->t_main);
    const unsigned nfiles = res->nfiles;
    const double secs = res->seconds;
    const uint64_t total_msgs = res->messages, total_bytes = res->bytes;
    const double rate = secs > 0 ? (double)total_msgs / secs : 0;
    if (o->json) {
        printf("{\"command\":\"replay\",\"files\":[");
        for (unsigned i = 0; i < nfiles; i++) {
            const replay_file_t *fr = &res->files[i];
            if (!fr->path)
                continue;
            printf("%s{\"path\":", i ? "," : "");
            jbuf_fput_str(stdout, fr->path);
            printf(",\"format\":\"%s\",\"gzip\":%s,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64
                   ",\"bad_frames\":%" PRIu64 ",\"skipped_bytes\":%" PRIu64
                   ",\"csv_rows_bad\":%" PRIu64 ",\"ok\":%s,\"error\":",
                   stream_format_name(fr->format), fr->gzip ? "true" : "false", fr->messages,
                   fr->bytes, fr->bad_frames, fr->skipped_bytes, fr->csv_rows_bad,
                   fr->status ? "false" : "true");
            if (fr->err[0])
                jbuf_fput_str(stdout, fr->err);
            else
                printf("null");
            print_capture_json(fr);
            printf("}");
        }
        printf("],\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
               ",\"messages_per_s\":%.0f,\"by_type\":{",
               total_msgs, total_bytes, secs, rate);
        bool first = true;
        for (size_t t = 0; t < NTYPES; t++) {
            uint64_t k = res->by_type[type_at(t)];
            if (!k)
                continue;
            printf("%s\"%c\":%" PRIu64, first ? "" : ",", type_at(t), k);
            first = false;
        }
        printf("},\"analytics\":");
        report_json(stdout, &res->report);
        printf(",\"symbols\":%u,\"symbols_refused\":%" PRIu64 ",\"io\":\"%s\""
               ",\"interrupted\":%s,\"allocs_after_seal\":%" PRIu64 ",\"memory\":",
               res->symbols, res->symbols_refused, res->io_mode,
               res->interrupted ? "true" : "false", res->allocs_after_seal);
        mem_report_json(stdout, &res->end, MEM_REPORT_LEAKS);
        print_timeline_json(&o->tl);
        printf(",\"exit_status\":%d}\n", status);
    } else {
        printf("tickcore replay: %d file%s, %" PRIu64 " messages, %.1f MB in %.3f s: "
               "%.2f M msg/s, %.0f MB/s%s\n",
               nfiles, nfiles == 1 ? "" : "s", total_msgs, (double)total_bytes / 1e6, secs,
               rate / 1e6, secs > 0 ? (double)total_bytes / 1e6 / secs : 0.0,
               res->interrupted ? " (interrupted)" : "");
        for (unsigned i = 0; i < nfiles; i++) {
            const replay_file_t *fr = &res->files[i];
            if (!fr->path)
                continue;
            printf("  %s: %s%s, %" PRIu64 " messages, %" PRIu64 " bytes%s\n", fr->path,
                   stream_format_name(fr->format), fr->gzip ? " (gzip)" : "", fr->messages,
                   fr->bytes, fr->status ? ", ENDED BY AN ERROR" : "");
            if (res->skip_bad && (fr->bad_frames || fr->skipped_bytes))
                printf("    skipped (--skip-bad): %" PRIu64 " bad regions, %" PRIu64 " bytes\n",
                       fr->bad_frames, fr->skipped_bytes);
            print_capture_text(fr);
            if (fr->csv_rows_bad)
                printf("    bad CSV rows: %" PRIu64 " (listed on stderr)\n", fr->csv_rows_bad);
            if (fr->err[0])
                printf("    %s: %s\n", fr->status ? "error" : "first skipped", fr->err);
        }
        printf("  messages by type:\n");
        for (size_t t = 0; t < NTYPES; t++) {
            uint64_t k = res->by_type[type_at(t)];
            if (k)
                printf("    %c  %-34s %12" PRIu64 "\n", type_at(t), type_name(type_at(t)), k);
        }
        printf("  symbols: %u in the table%s\n", res->symbols,
               res->symbols_refused ? " (some refused: table full)" : "");
        printf("  input: %s\n", res->io_mode);
        printf("  whole process: %.3f s: start-up %.3f s (exec to the first message; init %.3f "
               "s), finish %.3f s (cross-section, truth, outputs), teardown %.3f s\n",
               o->tl.whole, o->tl.startup, o->tl.init, o->tl.finish, o->tl.teardown);
        report_text(stdout, &res->report);
        printf("  allocations while replaying (after the seal): %" PRIu64 "%s\n",
               res->allocs_after_seal,
               res->allocs_after_seal ? "  <-- churn" : " (steady state allocates nothing)");
        report_memory_text(stdout, &res->end, o->verbose);
    }
    fflush(stdout);
}

int replay_main(int argc, char **argv)
{
    static replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.t_main = clock_mono_s();
    o.t_exec = process_start_mono();
    config_default(&o.cfg);
    o.rc = (replay_cfg_t){.cfg = &o.cfg,
                          .repeat = 1,
                          .format = STREAM_AUTO,
                          .book_every_ns = 60000000000ull,
                          .book_depth = 10};
    o.progress = isatty(2);
    o.rss_fd = o.statm_fd = -1;
    const args_spec_t spec = {.command = "replay",
                              .opts = OPTS,
                              .on_opt = on_opt,
                              .ctx = &o,
                              .usage = usage,
                              .cfg = &o.cfg,
                              .what = "input file",
                              .min_pos = 1,
                              .max_pos = REPLAY_MAX_FILES};
    int nfiles, prc = args_parse(&spec, argc, argv, &nfiles);
    if (prc != ARGS_RUN)
        return prc;
    /* Every input readable before anything is sized. */
    for (int i = 1; i <= nfiles; i++)
        if (args_check_input("replay", argv[i]) < 0)
            return 1;
    if (o.json && !o.progress_forced)
        o.progress = false;
    if (o.rc.strict)
        mem_set_strict(true);
    o.rc.files = argv + 1;
    o.rc.nfiles = (unsigned)nfiles;
    o.rc.diag = o.json ? NULL : stderr;
    o.rc.stop = &g_stop;
    if (o.progress || o.rss_log) {
        o.rc.progress = on_progress;
        o.rc.progress_ctx = &o;
    }

    /* From here a signal stops the replay cleanly (start-up finishes first, then nothing is
     * read and the report still comes). */
    g_stop = 0;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    replay_t *rp;
    char err[700];
    if (replay_create(&rp, &o.rc, err, sizeof err) < 0) {
        fprintf(stderr, "tickcore replay: %s\n", err);
        return 1;
    }
    if (o.rss_log) {
        o.rss_fd = open(o.rss_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        o.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (o.rss_fd < 0)
            fprintf(stderr, "tickcore replay: %s: cannot write: %s\n", o.rss_log, strerror(errno));
    }
    static replay_result_t res;
    replay_run(rp, &res);
    replay_destroy(rp);
    int status = replay_end(&res);
    timeline_set(&o, &res, clock_mono_s());
    if (o.rss_fd >= 0)
        close(o.rss_fd);
    if (o.statm_fd >= 0)
        close(o.statm_fd);
    if (o.rc.plots_dir && plots_render(o.rc.plots_dir, &res, o.rss_log, stderr) && status == 0)
        status = 1;
    print_report(&o, &res, status);
    return status;
}
