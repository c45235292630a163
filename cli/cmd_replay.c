/*
 * replay: see replay.h. Ownership: replay_main owns the symbol table and the stream (and so
 * the reader's buffers and the event array) for the whole run, and frees them before the leak
 * check. Files are replayed one after another through the same buffers; the symbol table is
 * shared by all of them, so ITCH and CSV inputs name symbols the same way.
 */
#include "cli/cmd_replay.h"

#include "config/config.h"
#include "base/jbuf.h"
#include "engine/pipeline.h"
#include "engine/report.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "ingest/stream.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 256

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case 'S':
        return "system event";
    case 'R':
        return "stock directory";
    case 'H':
        return "stock trading action";
    case 'Y':
        return "Reg SHO restriction";
    case 'L':
        return "market participant position";
    case 'V':
        return "MWCB decline level";
    case 'W':
        return "MWCB status";
    case 'K':
        return "IPO quoting period update";
    case 'J':
        return "LULD auction collar";
    case 'h':
        return "operational halt";
    case 'A':
        return "add order";
    case 'F':
        return "add order with MPID";
    case 'E':
        return "order executed";
    case 'C':
        return "order executed with price";
    case 'X':
        return "order cancel";
    case 'D':
        return "order delete";
    case 'U':
        return "order replace";
    case 'P':
        return "trade (non-cross)";
    case 'Q':
        return "cross trade";
    case 'B':
        return "broken trade";
    case 'I':
        return "NOII";
    case 'N':
        return "retail price improvement";
    case 'O':
        return "direct listing with capital raise";
    case EV_CSV_TRADE:
        return "CSV trade";
    case EV_CSV_QUOTE:
        return "CSV quote";
    default:
        return "?";
    }
}

/* Display order: the specification's, then CSV. */
static const char TYPE_ORDER[] = "SRHYLVWKJhAFECXDUPQBINOtq";

typedef struct file_result {
    const char *path;
    stream_format_t format;
    bool gzip;
    uint64_t messages, bytes, file_bytes, bad_frames, skipped_bytes;
    uint64_t csv_rows_bad;
    int status; /* 0 clean, 1 ended by an error */
    char err[512];
} file_result_t;

typedef struct replay_opts {
    config_t cfg;
    stream_cfg_t scfg;
    bool json, progress, progress_forced, strict, print_config, decode_only;
    const char *corr_out, *mst_out, *clusters_out, *truth, *rss_log, *trades_out;
    unsigned repeat;
    double speed; /* 0 = max */
} replay_opts_t;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tickcore replay [options] FILE...\n"
        "\n"
        "Replays ITCH 5.0 BinaryFILEs (plain or gzip, detected by content) and trades/quotes\n"
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
        "  --rss-log FILE          every 0.1 s append 'seconds rss_bytes messages' (soak plots)\n"
        "analytics:\n"
        "  --decode-only           decode and count only (no books, stats or matrices)\n"
        "  --bar DURATION          bar interval, 1s..1d (= --set stats.bar_interval=DURATION)\n"
        "  --top N                 symbols in the report, by volume (default 10)\n"
        "  --corr-out FILE.csv     write the correlation matrix (symbols as header)\n"
        "  --mst-out FILE.csv      write the MST edges: from,to,rho,distance\n"
        "  --clusters-out FILE.csv write symbol,cluster,degree,betweenness\n"
        "  --trades-out FILE.csv   write every trade counted (timestamp,symbol,price,size,side);\n"
        "                          runs one worker so the file is in feed order\n"
        "  --truth FILE.truth.csv  compare with the generator's true correlations and sectors\n"
        "                          (default: FILE.truth.csv next to a single input, if present)\n"
        "output:\n"
        "  --json                  one JSON object on stdout instead of the text report\n"
        "  --no-progress           no progress line (default: on when stderr is a terminal)\n"
        "  --progress              progress line even when stderr is not a terminal\n"
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
        "exit status: 0 ok, 1 a file ended with an error, 2 usage or config error,\n"
        "3 churn or leak (--strict)\n");
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

static void progress_line(const replay_opts_t *o, double t0, uint64_t msgs, uint64_t done_bytes,
                          uint64_t total_bytes, bool final)
{
    if (!o->progress)
        return;
    double el = now_s() - t0;
    double rate = el > 0 ? (double)msgs / el : 0;
    double brate = el > 0 ? (double)done_bytes / el : 0;
    double eta =
        brate > 0 && total_bytes > done_bytes ? (double)(total_bytes - done_bytes) / brate : 0;
    fprintf(stderr, "\r  %8.1f / %.1f MB  %12" PRIu64 " msgs  %7.2f M msg/s  ETA %5.0f s ",
            (double)done_bytes / 1e6, (double)total_bytes / 1e6, msgs, rate / 1e6, eta);
    if (final)
        fputc('\n', stderr);
}

/* Market pace: hold back until wall time since the first message, times speed, reaches the
 * message's timestamp distance from it. */
typedef struct pacer {
    double speed, wall0;
    uint64_t ts0;
    bool started;
} pacer_t;

static void pace(pacer_t *p, uint64_t ts)
{
    if (!p->started) {
        p->started = true;
        p->ts0 = ts;
        p->wall0 = now_s();
        return;
    }
    if (ts <= p->ts0)
        return;
    double due = p->wall0 + (double)(ts - p->ts0) * 1e-9 / p->speed;
    double wait = due - now_s();
    if (wait > 0.0005 && !g_stop) {
        struct timespec d = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&d, NULL);
    }
}

/* One line of the soak log: seconds, resident bytes (from /proc/self/statm), messages. No
 * allocation: a stack buffer and write(2). */
static void rss_sample(int fd, int statm, double t, uint64_t msgs)
{
    if (fd < 0)
        return;
    char buf[128];
    long rss_pages = 0;
    if (statm >= 0) {
        ssize_t k = pread(statm, buf, sizeof buf - 1, 0);
        if (k > 0) {
            buf[k] = '\0';
            const char *p = strchr(buf, ' ');
            rss_pages = p ? strtol(p + 1, NULL, 10) : 0;
        }
    }
    int len = snprintf(buf, sizeof buf, "%.3f %lld %llu\n", t,
                       (long long)rss_pages * sysconf(_SC_PAGESIZE), (unsigned long long)msgs);
    if (len > 0 && write(fd, buf, (size_t)len) < 0)
        return;
}

int replay_main(int argc, char **argv)
{
    replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.repeat = 1;
    config_default(&o.cfg);
    o.progress = isatty(2);
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"skip-bad", no_argument, NULL, 'k'},
        {"strict", no_argument, NULL, 's'},
        {"speed", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"no-progress", no_argument, NULL, 'n'},
        {"progress", no_argument, NULL, 'P'},
        {"buf-size", required_argument, NULL, 'b'},
        {"bufs", required_argument, NULL, 'B'},
        {"queue-depth", required_argument, NULL, 'q'},
        {"symbols", required_argument, NULL, 'y'},
        {"max-line", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'S'},
        {"print-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"decode-only", no_argument, NULL, 'd'},
        {"bar", required_argument, NULL, 'r'},
        {"top", required_argument, NULL, 't'},
        {"corr-out", required_argument, NULL, 'o'},
        {"mst-out", required_argument, NULL, 'm'},
        {"clusters-out", required_argument, NULL, 'u'},
        {"truth", required_argument, NULL, 'T'},
        {"repeat", required_argument, NULL, 'R'},
        {"rss-log", required_argument, NULL, 'L'},
        {"trades-out", required_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    char err[600];
    /* First pass: the config file, so that flags override it wherever they appear. */
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'c' && config_load(&o.cfg, optarg, err, sizeof err) < 0) {
            fprintf(stderr, "tickcore replay: %s\n", err);
            return 2;
        }
    }
    opterr = 1;
    optind = 1;
    stream_format_t format = STREAM_AUTO;
    bool skip_bad = false;
    const char *setkey = NULL, *setval = NULL;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        setkey = NULL;
        switch (c) {
        case 'c':
            break;
        case 'f':
            if (strcmp(optarg, "auto") == 0)
                format = STREAM_AUTO;
            else if (strcmp(optarg, "itch") == 0)
                format = STREAM_ITCH;
            else if (strcmp(optarg, "csv") == 0)
                format = STREAM_CSV;
            else {
                fprintf(stderr, "tickcore replay: --format wants auto, itch or csv, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'k':
            skip_bad = true;
            break;
        case 's':
            o.strict = true;
            break;
        case 'p':
            if (parse_speed(optarg, &o.speed)) {
                fprintf(stderr,
                        "tickcore replay: --speed wants max, 1x, 10x or a number, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'j':
            o.json = true;
            break;
        case 'n':
            o.progress = false;
            break;
        case 'P':
            o.progress = o.progress_forced = true;
            break;
        case 'b':
            setkey = "input.io_buffer_size";
            break;
        case 'B':
            setkey = "input.io_buffers";
            break;
        case 'q':
            setkey = "input.io_queue_depth";
            break;
        case 'y':
            setkey = "symbols.max_symbols";
            break;
        case 'l':
            setkey = "input.max_line";
            break;
        case 'S':
            setkey = optarg;
            break;
        case 'C':
            o.print_config = true;
            break;
        case 'd':
            o.decode_only = true;
            break;
        case 'r':
            setkey = "stats.bar_interval";
            break;
        case 't':
            setkey = "report.top_symbols";
            break;
        case 'o':
            o.corr_out = optarg;
            break;
        case 'm':
            o.mst_out = optarg;
            break;
        case 'u':
            o.clusters_out = optarg;
            break;
        case 'T':
            o.truth = optarg;
            break;
        case 'R': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "tickcore replay: --repeat wants 1..1000000, got '%s'\n", optarg);
                return 2;
            }
            o.repeat = (unsigned)v;
            break;
        }
        case 'L':
            o.rss_log = optarg;
            break;
        case 'X':
            o.trades_out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (setkey) {
            setval = c == 'S' ? NULL : optarg;
            if (config_set(&o.cfg, setkey, setval, err, sizeof err) < 0) {
                fprintf(stderr, "tickcore replay: %s\n", err);
                return 2;
            }
        }
    }
    if (config_check(&o.cfg, err, sizeof err) < 0) {
        fprintf(stderr, "tickcore replay: %s\n", err);
        return 2;
    }
    if (o.print_config) {
        config_print(stdout, &o.cfg);
        return 0;
    }
    if (o.trades_out)
        o.cfg.workers = 1; /* one writer, in feed order */
    pipeline_stream_cfg(&o.scfg, &o.cfg);
    o.scfg.format = format;
    if (skip_bad)
        o.scfg.skip_bad = true;
    int nfiles = argc - optind;
    if (nfiles <= 0) {
        fprintf(stderr, "tickcore replay: no input file\n");
        usage(stderr);
        return 2;
    }
    if (nfiles > MAX_FILES) {
        fprintf(stderr, "tickcore replay: at most %d files at once\n", MAX_FILES);
        return 2;
    }
    if (o.json && !o.progress_forced)
        o.progress = false;
    o.scfg.csv.strict = o.strict;
    if (o.strict)
        mem_set_strict(true);

    uint64_t total_file_bytes = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(argv[optind + i], &st) == 0 && S_ISREG(st.st_mode))
            total_file_bytes += (uint64_t)st.st_size;
    }

    /* From here a signal stops the replay cleanly (start-up finishes first, then nothing is
     * read and the report still comes). */
    g_stop = 0;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Start-up: everything sized here, then the seal. */
    static symtab_t symbols;
    static stream_t stream;
    static file_result_t results[MAX_FILES];
    memset(results, 0, sizeof results);
    static pipeline_t pl;
    int rc = symtab_init(&symbols, o.cfg.max_symbols);
    const char *what = "symbol table";
    if (rc == 0) {
        what = "input";
        rc = stream_init(&stream, &o.scfg, &symbols);
    }
    if (rc == 0 && !o.decode_only) {
        what = "pipeline (books, stats, covariance, PCA, graph)";
        rc = pipeline_init(&pl, &o.cfg, &symbols);
        static csvout_t trades;
        if (rc == 0 && o.trades_out) {
            what = o.trades_out;
            rc = csvout_open(&trades, o.trades_out, 0);
            if (rc == 0)
                shard_set_trades_out(&pl.w[0].shard, &trades, &symbols);
        }
        if (rc == 0) {
            what = "pipeline threads";
            rc = pipeline_start(&pl);
            if (rc < 0)
                pipeline_fini(&pl);
        }
        if (rc < 0)
            stream_fini(&stream);
    }
    if (rc < 0) {
        fprintf(stderr, "tickcore replay: start-up failed: %s: %s\n", what,
                stream.err[0] ? stream.err : strerror(-rc));
        symtab_fini(&symbols);
        return 1;
    }

    int rss_fd = -1, statm_fd = -1;
    if (o.rss_log) {
        rss_fd = open(o.rss_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (rss_fd < 0)
            fprintf(stderr, "tickcore replay: %s: cannot write: %s\n", o.rss_log, strerror(errno));
    }
    static mem_snapshot_t before, after, end;
    mem_seal();
    mem_snapshot(&before);

    uint64_t by_type[256] = {0};
    uint64_t total_msgs = 0, total_bytes = 0, done_file_bytes = 0;
    int failed = 0;
    double t0 = now_s(), last_progress = 0, reader_busy = 0;
    uint64_t last_ts = 0;
    bool have_ts = false;
    for (unsigned pass = 0; pass < o.repeat && !g_stop; pass++)
        for (int i = 0; i < nfiles && !g_stop; i++) {
            file_result_t *fr = &results[i];
            fr->path = argv[optind + i];
            if (stream_open(&stream, fr->path) < 0) {
                fr->status = 1;
                snprintf(fr->err, sizeof fr->err, "%s", stream.err);
                failed++;
                continue;
            }
            fr->gzip = reader_is_gzip(&stream.reader);
            fr->file_bytes = stream.reader.file_size;
            pacer_t pacer = {.speed = o.speed};
            ev_t *ev;
            size_t n;
            int r = 0;
            /* When pacing, small batches: an event waits for at most its batch-mates' pacing. */
            size_t cap = o.speed > 0 ? 64 : (o.decode_only ? 0 : pl.batch_cap);
            bool first_batch = true;
            for (;;) {
                if (g_stop)
                    break;
                pipe_batch_t *b = NULL;
                if (o.decode_only) {
                    r = stream_next(&stream, &ev, &n);
                } else {
                    b = pipeline_acquire(&pl);
                    double td = now_s();
                    r = stream_next_into(&stream, b->ev, cap, &n);
                    reader_busy += now_s() - td;
                    ev = b->ev;
                    b->n = r > 0 ? (uint32_t)n : 0;
                    /* the clock went back: the next day's file, a new session */
                    if (r > 0 && first_batch && have_ts && ev[0].ts < last_ts) {
                        pipeline_close_bars(&pl); /* the last bar of the day counts */
                        pipeline_new_session(&pl, 1);
                    }
                }
                if (r > 0) {
                    first_batch = false;
                    last_ts = ev[n - 1].ts;
                    have_ts = true;
                }
                if (r > 0 && o.speed > 0)
                    for (size_t k = 0; k < n && !g_stop; k++)
                        pace(&pacer, ev[k].ts);
                if (b)
                    pipeline_publish(&pl, b);
                if (r <= 0)
                    break;
                if (o.progress || rss_fd >= 0) {
                    double t = now_s();
                    if (t - last_progress >= 0.1) {
                        last_progress = t;
                        progress_line(&o, t0, total_msgs + stream.messages,
                                      done_file_bytes + stream.reader.bytes_read, total_file_bytes,
                                      false);
                        rss_sample(rss_fd, statm_fd, t - t0, total_msgs + stream.messages);
                    }
                }
            }
            fr->format = stream.format;
            fr->messages += stream.messages;
            fr->bytes += stream.bytes;
            fr->bad_frames += stream.bad_frames;
            fr->skipped_bytes += stream.skipped_bytes;
            if (stream.format == STREAM_CSV)
                fr->csv_rows_bad += stream.csv.rows_bad;
            if (!g_stop && r < 0 && !fr->status) {
                fr->status = 1;
                failed++;
            }
            if (stream.err[0])
                snprintf(fr->err, sizeof fr->err, "%s", stream.err);
            for (int t = 0; t < 256; t++)
                by_type[t] += stream.by_type[t];
            total_msgs += stream.messages;
            total_bytes += stream.bytes;
            done_file_bytes += stream.reader.bytes_read;
            if (stream.format == STREAM_CSV && !o.json &&
                (stream.csv.rows_bad || stream.csv.state == CSV_ST_STOPPED))
                csv_report(&stream.csv, stderr, fr->path);
            stream_close(&stream);
        }
    if (!o.decode_only) {
        pipeline_close_bars(&pl); /* end of input: the bar still open closes and counts */
        pipeline_finish(&pl);     /* drain: every published batch is applied */
    }
    int trades_rc = 0;
    if (!o.decode_only && pl.w[0].shard.trades_out) {
        trades_rc = csvout_close(pl.w[0].shard.trades_out);
        if (trades_rc < 0)
            fprintf(stderr, "tickcore replay: %s: %s\n", o.trades_out, strerror(-trades_rc));
    }
    if (rss_fd >= 0) {
        rss_sample(rss_fd, statm_fd, now_s() - t0, total_msgs);
        close(rss_fd);
    }
    if (statm_fd >= 0)
        close(statm_fd);
    double secs = now_s() - t0;
    progress_line(&o, t0, total_msgs, done_file_bytes, total_file_bytes, true);
    xsection_t *xs = &pl.xs;
    double t_xs = now_s();
    int xs_rc = o.decode_only ? -EAGAIN : xsection_compute(xs);
    t_xs = now_s() - t_xs;
    mem_snapshot(&after);
    uint64_t steady_allocs = after.total.allocs - before.total.allocs;
    /* Results that outlive the teardown, and the files asked for (stdio: after the count). */
    static report_t rep;
    report_collect(&rep, o.decode_only ? NULL : &pl, &symbols, o.cfg.top_symbols);
    report_set_times(&rep, reader_busy, secs);
    rep.xs_seconds = t_xs;
    /* The generator's ground truth: asked for, or found next to a single input file. */
    char truth_auto[300];
    const char *truth = o.truth;
    if (!truth && nfiles == 1 &&
        snprintf(truth_auto, sizeof truth_auto, "%s.truth.csv", argv[optind]) <
            (int)sizeof truth_auto &&
        access(truth_auto, R_OK) == 0)
        truth = truth_auto;
    if (truth && xs_rc == 0) {
        snprintf(rep.truth_path, sizeof rep.truth_path, "%s", truth);
        rep.truth_rc = truth_compare(truth, xs, &rep.truth);
    }
    int out_failed = 0;
    if (xs_rc == 0) {
        out_failed |= report_write_file(o.corr_out, xsection_write_corr, xs);
        out_failed |= report_write_file(o.mst_out, xsection_write_mst, xs);
        out_failed |= report_write_file(o.clusters_out, xsection_write_clusters, xs);
    } else if (o.corr_out || o.mst_out || o.clusters_out) {
        fprintf(stderr, "tickcore replay: no correlation to write: %s\n",
                o.decode_only ? "--decode-only"
                : xs->n < 2   ? "it needs at least 2 symbols"
                              : "fewer than 2 bars with trades");
        out_failed = 1;
    }
    const char *mode = reader_mode(&stream.reader);
    uint32_t nsym = symtab_count(&symbols);
    uint64_t sym_full = symbols.full;

    /* Teardown, then the leak check. */
    if (!o.decode_only) {
        pipeline_fini(&pl);
    }
    stream_fini(&stream);
    symtab_fini(&symbols);
    mem_snapshot(&end);
    memcpy(end.objs, after.objs, sizeof end.objs);
    end.nobjs = after.nobjs;
    int status = mem_exit_status(&end);
    if ((failed || out_failed || trades_rc < 0) && status == 0)
        status = 1;

    double rate = secs > 0 ? (double)total_msgs / secs : 0;
    if (o.json) {
        printf("{\"command\":\"replay\",\"files\":[");
        for (int i = 0; i < nfiles; i++) {
            const file_result_t *fr = &results[i];
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
            printf("}");
        }
        printf("],\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
               ",\"messages_per_s\":%.0f,\"by_type\":{",
               total_msgs, total_bytes, secs, rate);
        bool first = true;
        for (const char *t = TYPE_ORDER; *t; t++) {
            if (!by_type[(unsigned char)*t])
                continue;
            printf("%s\"%c\":%" PRIu64, first ? "" : ",", *t, by_type[(unsigned char)*t]);
            first = false;
        }
        printf("},\"analytics\":");
        report_json(stdout, &rep);
        printf(",\"symbols\":%u,\"symbols_refused\":%" PRIu64 ",\"io\":\"%s\""
               ",\"interrupted\":%s,\"allocs_after_seal\":%" PRIu64 ",\"memory\":",
               nsym, sym_full, mode, g_stop ? "true" : "false", steady_allocs);
        mem_report_json(stdout, &end, MEM_REPORT_LEAKS);
        printf(",\"exit_status\":%d}\n", status);
    } else {
        printf("tickcore replay: %d file%s, %" PRIu64 " messages, %.1f MB in %.3f s: "
               "%.2f M msg/s, %.0f MB/s%s\n",
               nfiles, nfiles == 1 ? "" : "s", total_msgs, (double)total_bytes / 1e6, secs,
               rate / 1e6, secs > 0 ? (double)total_bytes / 1e6 / secs : 0.0,
               g_stop ? " (interrupted)" : "");
        for (int i = 0; i < nfiles; i++) {
            const file_result_t *fr = &results[i];
            if (!fr->path)
                continue;
            printf("  %s: %s%s, %" PRIu64 " messages, %" PRIu64 " bytes%s\n", fr->path,
                   stream_format_name(fr->format), fr->gzip ? " (gzip)" : "", fr->messages,
                   fr->bytes, fr->status ? ", ENDED BY AN ERROR" : "");
            if (o.scfg.skip_bad && (fr->bad_frames || fr->skipped_bytes))
                printf("    skipped (--skip-bad): %" PRIu64 " bad regions, %" PRIu64 " bytes\n",
                       fr->bad_frames, fr->skipped_bytes);
            if (fr->csv_rows_bad)
                printf("    bad CSV rows: %" PRIu64 " (listed on stderr)\n", fr->csv_rows_bad);
            if (fr->err[0])
                printf("    %s: %s\n", fr->status ? "error" : "first skipped", fr->err);
        }
        printf("  messages by type:\n");
        for (const char *t = TYPE_ORDER; *t; t++) {
            uint64_t k = by_type[(unsigned char)*t];
            if (k)
                printf("    %c  %-34s %12" PRIu64 "\n", *t, type_name((unsigned char)*t), k);
        }
        printf("  symbols: %u in the table%s\n", nsym,
               sym_full ? " (some refused: table full)" : "");
        printf("  input: %s\n", mode);
        report_text(stdout, &rep);
        printf("  allocations while replaying (after the seal): %" PRIu64 "%s\n", steady_allocs,
               steady_allocs ? "  <-- churn" : " (steady state allocates nothing)");
        mem_report_text(stdout, &end, MEM_REPORT_LEAKS);
    }
    fflush(stdout);
    return status;
}
