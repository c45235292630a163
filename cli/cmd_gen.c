/*
 * cmd_gen: see cmd_gen.h. Ownership: cmd_gen_main creates the generator, seals memory for the
 * run (so any allocation while generating shows up as churn), destroys the generator before the
 * final snapshot, and reports. Snapshots are static so the report itself allocates nothing.
 */
#include "cli/cmd_gen.h"

#include "base/jbuf.h"

#include "mem/mem.h"
#include "sim/gen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tickcore gen [--messages N] [--symbols N] [--sectors K] [--seed S]\n"
            "                    [--out FILE] [--gzip] [--max-live N] [--step-ms MS]\n"
            "                    [--no-truth] [--json] [--verbose] [--strict]\n"
            "Writes a synthetic NASDAQ TotalView-ITCH 5.0 day (BinaryFILE: 2-byte big-endian\n"
            "length + message) and FILE.truth.csv, the true correlation of its returns.\n"
            "  --messages N  total messages, system events and directory included (default\n"
            "                1000000; 1e6, 10M, 500k and 100000000 forms are accepted)\n"
            "  --symbols N   stock directory size, 1..65535 (default 500)\n"
            "  --sectors K   sectors of the factor model, 1..symbols (default 10)\n"
            "  --seed S      PRNG seed (default 1); the same options and seed give the same bytes\n"
            "  --out FILE    data file (default market.itch, market.itch.gz with --gzip)\n"
            "  --gzip        gzip the data file (ISA-L level 1): independent members of 4 MiB\n"
            "                input, each with its compressed size in the header (a BGZF-style\n"
            "                'TK' field), so replay inflates them in parallel; gzip -dc reads it\n"
            "  --max-live N  live orders per symbol the generator tracks (default 128)\n"
            "  --step-ms MS  factor time step (default: automatic, 1-10 s)\n"
            "  --no-truth    do not write FILE.truth.csv\n"
            "  --json        one JSON object instead of the text summary\n"
            "  --verbose     add the memory report\n"
            "  --strict      exit 3 if anything allocated while generating or leaked\n"
            "exit status: 0 ok, 1 runtime error, 2 usage error, 3 churn or leak (--strict)\n");
}

static int bad(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "tickcore gen: %s wants %s, got '%s'\n", opt, want, val);
    fprintf(stderr, "try 'tickcore gen --help'\n");
    return 2;
}

/* s as a JSON string body: quotes, backslashes and control characters escaped. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] == '-' || s[0] == '+' || s[0] == ' ' || s[0] == '\0')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int cmd_gen_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"messages", required_argument, NULL, 'n'}, {"symbols", required_argument, NULL, 'y'},
        {"sectors", required_argument, NULL, 'k'},  {"seed", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},      {"gzip", no_argument, NULL, 'z'},
        {"max-live", required_argument, NULL, 'l'}, {"step-ms", required_argument, NULL, 't'},
        {"no-truth", no_argument, NULL, 'T'},       {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},        {"strict", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    gen_cfg_t cfg;
    gen_cfg_default(&cfg);
    bool json = false, verbose = false;
    uint64_t v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (gen_parse_count(optarg, &v) || v == 0)
                return bad("--messages", optarg, "a positive whole number (1e6, 10M, 500k)");
            cfg.messages = v;
            break;
        case 'y':
            if (gen_parse_count(optarg, &v) || v < 1 || v > GEN_MAX_SYMBOLS)
                return bad("--symbols", optarg, "1..65535");
            cfg.symbols = (uint32_t)v;
            break;
        case 'k':
            if (gen_parse_count(optarg, &v) || v < 1 || v > GEN_MAX_SYMBOLS)
                return bad("--sectors", optarg, "1..symbols");
            cfg.sectors = (uint32_t)v;
            break;
        case 's':
            if (parse_u64(optarg, &v))
                return bad("--seed", optarg, "an unsigned 64-bit integer");
            cfg.seed = v;
            break;
        case 'o':
            if (optarg[0] == '\0')
                return bad("--out", optarg, "a file name");
            cfg.out = optarg;
            break;
        case 'z':
            cfg.gzip = true;
            break;
        case 'l':
            if (gen_parse_count(optarg, &v) || v < 1 || v > 65536)
                return bad("--max-live", optarg, "1..65536");
            cfg.max_live = (uint32_t)v;
            break;
        case 't':
            if (gen_parse_count(optarg, &v) || v < 1 || v > 23400000)
                return bad("--step-ms", optarg, "1..23400000 (milliseconds)");
            cfg.step_ns = v * 1000000ull;
            break;
        case 'T':
            cfg.truth = false;
            break;
        case 'j':
            json = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'S':
            mem_set_strict(true);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (optopt)
                fprintf(stderr, "tickcore gen: option '%s' needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, "tickcore gen: unknown option '%s'\n", argv[optind - 1]);
            fprintf(stderr, "try 'tickcore gen --help'\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tickcore gen: unexpected argument '%s'\ntry 'tickcore gen --help'\n",
                argv[optind]);
        return 2;
    }
    if (cfg.out == NULL)
        cfg.out = cfg.gzip ? "market.itch.gz" : "market.itch";

    gen_t *g;
    char err[256];
    int rc = gen_create(&g, &cfg, err, sizeof err);
    if (rc) {
        fprintf(stderr, "tickcore gen: %s\n", err);
        return rc == -EINVAL ? 2 : 1;
    }
    static mem_snapshot_t before_s, after_s, end_s;
    static gen_stats_t st;
    mem_seal();
    mem_snapshot(&before_s);
    rc = gen_generate(g, &st);
    mem_snapshot(&after_s);
    uint64_t step_ns = cfg.step_ns ? cfg.step_ns : gen_auto_step(cfg.messages, cfg.symbols);
    gen_destroy(g);
    mem_snapshot(&end_s);
    uint64_t allocs = after_s.total.allocs - before_s.total.allocs;
    if (rc) {
        fprintf(stderr, "tickcore gen: %s\n", st.error);
        return 1;
    }
    int status = mem_exit_status(&end_s);
    double mps = st.seconds > 0 ? (double)st.messages / st.seconds : 0;
    static const char types[] = "SRHAFEcXDUPC";
    char truth[4096] = "";
    if (cfg.truth && gen_truth_path(truth, sizeof truth, cfg.out) != 0)
        truth[0] = '\0';

    if (json) {
        printf("{\"command\":\"gen\",\"out\":");
        jbuf_fput_str(stdout, cfg.out);
        printf(",\"truth\":");
        jbuf_fput_str(stdout, truth);
        printf(",\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"bytes_written\":%" PRIu64
               ",\"seconds\":%.6f,"
               "\"messages_per_s\":%.0f,\"symbols\":%u,\"sectors\":%u,\"seed\":%" PRIu64
               ",\"step_ns\":%" PRIu64 ",\"by_type\":{",
               st.messages, st.bytes, st.bytes_written, st.seconds, mps, cfg.symbols, cfg.sectors,
               cfg.seed, step_ns);
        bool first = true;
        for (const char *t = types; *t; t++) {
            if (*t == 'c')
                continue;
            printf("%s\"%c\":%" PRIu64, first ? "" : ",", *t, st.by_type[(uint8_t)*t]);
            first = false;
        }
        printf("},\"swept\":%" PRIu64 ",\"add_on_full\":%" PRIu64 ",\"empty_book\":%" PRIu64
               ",\"live_at_end\":%" PRIu64 ",\"allocs_after_seal\":%" PRIu64,
               st.swept, st.add_on_full, st.empty_book, st.live_at_end, allocs);
        if (verbose) {
            printf(",\"memory\":");
            mem_report_json(stdout, &end_s, MEM_REPORT_LEAKS);
        }
        printf(",\"exit_status\":%d}\n", status);
    } else {
        printf("tickcore gen: %s: %" PRIu64 " messages, %" PRIu64 " bytes%s", cfg.out, st.messages,
               st.bytes_written, cfg.gzip ? " gzip" : "");
        if (cfg.gzip)
            printf(" (%" PRIu64 " uncompressed)", st.bytes);
        printf("\n");
        if (truth[0])
            printf("  truth: %s (%u symbols, %u sectors, seed %" PRIu64 ")\n", truth, cfg.symbols,
                   cfg.sectors, cfg.seed);
        printf("  time: %.3f s, %.1f M messages/s, %.0f MB/s of ITCH\n", st.seconds, mps / 1e6,
               st.seconds > 0 ? (double)st.bytes / st.seconds / 1e6 : 0);
        printf("  by type:");
        for (const char *t = types; *t; t++)
            if (*t != 'c')
                printf(" %c %" PRIu64, *t, st.by_type[(uint8_t)*t]);
        printf("\n");
        printf("  book: %" PRIu64 " orders swept by the mid, %" PRIu64 " adds on a full book (sent "
               "as D), %" PRIu64 " removals on an empty book (sent as A), %" PRIu64
               " live at the close\n",
               st.swept, st.add_on_full, st.empty_book, st.live_at_end);
        printf("  factor step: %.3f s; allocations while generating: %" PRIu64 "%s\n",
               (double)step_ns / 1e9, allocs, allocs ? "  <-- churn" : "");
        if (verbose)
            mem_report_text(stdout, &end_s, MEM_REPORT_LEAKS);
    }
    fflush(stdout);
    return status;
}
