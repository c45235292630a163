/*
 * cmd_gen: see cmd_gen.h. Ownership: cmd_gen_main creates the generator, seals memory for the
 * run (so any allocation while generating shows up as churn), destroys the generator before the
 * final snapshot, and reports. Snapshots are static so the report itself allocates nothing.
 */
#include "cli/cmd_gen.h"

#include "base/jbuf.h"
#include "cli/args.h"
#include "mem/mem.h"
#include "sim/gen.h"

#include <errno.h>
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
            "                    [--no-truth] [--latent] [--json] [--verbose] [--strict]\n"
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
            "  --latent      also write FILE.latent.csv: each symbol's latent log mid and the\n"
            "                generator's quote at the minute ends (a diagnostic for\n"
            "                bench/estimator_oracle.py; needs the truth matrix)\n"
            "  --json        one JSON object instead of the text summary\n"
            "  --verbose     add the memory report\n"
            "  --strict      exit 3 if anything allocated while generating or leaked\n"
            "exit status: 0 ok, 1 runtime error, 2 usage error, 3 churn or leak (--strict)\n");
}

enum {
    O_MESSAGES = 1,
    O_SYMBOLS,
    O_SECTORS,
    O_SEED,
    O_OUT,
    O_GZIP,
    O_MAX_LIVE,
    O_STEP_MS,
    O_NO_TRUTH,
    O_LATENT,
    O_JSON,
    O_VERBOSE,
    O_STRICT
};

static const args_opt_t OPTS[] = {
    {"messages", true, O_MESSAGES, NULL},
    {"symbols", true, O_SYMBOLS, NULL},
    {"sectors", true, O_SECTORS, NULL},
    {"seed", true, O_SEED, NULL},
    {"out", true, O_OUT, NULL},
    {"gzip", false, O_GZIP, NULL},
    {"max-live", true, O_MAX_LIVE, NULL},
    {"step-ms", true, O_STEP_MS, NULL},
    {"no-truth", false, O_NO_TRUTH, NULL},
    {"latent", false, O_LATENT, NULL},
    {"json", false, O_JSON, NULL},
    {"verbose", false, O_VERBOSE, NULL},
    {"strict", false, O_STRICT, NULL},
    {NULL, false, 0, NULL},
};

typedef struct gen_opts {
    gen_cfg_t cfg;
    bool json, verbose;
} gen_opts_t;

static int on_opt(void *ctx, int id, const char *val)
{
    gen_opts_t *o = ctx;
    uint64_t v = 0;
    switch (id) {
    case O_MESSAGES:
        if (args_count("gen", "--messages", val, 1, UINT64_MAX,
                       "a positive whole number (1e6, 10M, 500k)", &v))
            return 2;
        o->cfg.messages = v;
        break;
    case O_SYMBOLS:
        if (args_count("gen", "--symbols", val, 1, GEN_MAX_SYMBOLS, "1..65535", &v))
            return 2;
        o->cfg.symbols = (uint32_t)v;
        break;
    case O_SECTORS:
        if (args_count("gen", "--sectors", val, 1, GEN_MAX_SYMBOLS, "1..symbols", &v))
            return 2;
        o->cfg.sectors = (uint32_t)v;
        break;
    case O_SEED:
        if (args_parse_u64(val, &v))
            return args_bad("gen", "--seed", val, "an unsigned 64-bit integer");
        o->cfg.seed = v;
        break;
    case O_OUT:
        if (val[0] == '\0')
            return args_bad("gen", "--out", val, "a file name");
        o->cfg.out = val;
        break;
    case O_GZIP:
        o->cfg.gzip = true;
        break;
    case O_MAX_LIVE:
        if (args_count("gen", "--max-live", val, 1, 65536, "1..65536", &v))
            return 2;
        o->cfg.max_live = (uint32_t)v;
        break;
    case O_STEP_MS:
        if (args_count("gen", "--step-ms", val, 1, 23400000, "1..23400000 (milliseconds)", &v))
            return 2;
        o->cfg.step_ns = v * 1000000ull;
        break;
    case O_NO_TRUTH:
        o->cfg.truth = false;
        break;
    case O_LATENT:
        o->cfg.latent = true;
        break;
    case O_JSON:
        o->json = true;
        break;
    case O_VERBOSE:
        o->verbose = true;
        break;
    case O_STRICT:
        mem_set_strict(true);
        break;
    }
    return 0;
}

int cmd_gen_main(int argc, char **argv)
{
    gen_opts_t o = {.json = false};
    gen_cfg_default(&o.cfg);
    const args_spec_t spec = {
        .command = "gen", .opts = OPTS, .on_opt = on_opt, .ctx = &o, .usage = usage};
    int npos, prc = args_parse(&spec, argc, argv, &npos);
    if (prc != ARGS_RUN)
        return prc;
    gen_cfg_t cfg = o.cfg;
    bool json = o.json, verbose = o.verbose;
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
