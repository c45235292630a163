/*
 * bench_pipeline: end-to-end replay throughput of the engine and how it scales with shard
 * workers. A generated day (default 10^8 ITCH messages, 500 symbols in 10 sectors, lognormal
 * activity; TICKCORE_BENCH_MESSAGES overrides) is read through the io_uring reader and the
 * decoder into the pipeline (full per-order books, trade stats, one-minute bars, rolling
 * correlation of 500 symbols) for K = 1, 2, 4 and 8 workers, the K interleaved within each of
 * TICKCORE_BENCH_RUNS rounds (default 3) so that the machine's drift hits every K alike; every
 * figure is the median over the rounds. Per K: wall messages/s, and the CPU seconds per 10^6
 * messages of each stage from per-thread CPU clocks (reader: read + decode + route; workers:
 * summed; cross-section), which do not depend on how many cores the run had. The worker CPU per
 * message at K = 4 and 8 is compared with K = 1 (the routing promise: each worker pays for its
 * share only; > 10% more is flagged). Then a projection to 16 cores from the measured stage
 * costs, printed with its assumptions. The file is generated once into TICKCORE_BENCH_DAY
 * (default /tmp/tickcore-bench-day.itch) and kept. bench/scaling.sh runs this on any machine.
 * Exit status 1 if the steady state allocated.
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "config/config.h"
#include "engine/pipeline.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NK      4
#define MAXRUNS 16
static const unsigned g_ks[NK] = {1, 2, 4, 8};

typedef struct result {
    double secs, reader_cpu, worker_cpu, xs_cpu, worker_busy, worker_wait, xs_busy;
    double max_share; /* heaviest shard's share of the messages */
    double far_moves; /* orders the books moved to their far tables, all shards */
    double worker_sys, csw_vol, csw_invol; /* workers: kernel CPU s, context switches */
    uint64_t msgs, waits, churn, faults;
} result_t;

static uint32_t g_counts[65536]; /* messages per locate of the last run (reader's counts) */

static void run(const char *path, unsigned k, result_t *r)
{
    memset(r, 0, sizeof *r);
    config_t cfg;
    config_default(&cfg);
    cfg.workers = k;
    cfg.max_symbols = 1000;
    cfg.matrix_symbols = 512;
    symtab_t sy;
    stream_t s;
    stream_cfg_t sc;
    static pipeline_t p;
    if (symtab_init(&sy, cfg.max_symbols) || pipeline_init(&p, &cfg, &sy)) {
        fprintf(stderr, "bench_pipeline: start-up failed\n");
        exit(1);
    }
    pipeline_stream_cfg(&sc, &cfg);
    if (stream_init(&s, &sc, &sy) || pipeline_start(&p)) {
        fprintf(stderr, "bench_pipeline: start-up failed\n");
        exit(1);
    }
    mem_snapshot_t *s0 = malloc(sizeof *s0), *s1 = malloc(sizeof *s1);
    mem_seal();
    mem_snapshot(s0);
    double t0 = clock_mono_s();
    if (stream_open(&s, path) < 0) {
        fprintf(stderr, "bench_pipeline: %s\n", s.err);
        exit(1);
    }
    int rc;
    for (;;) {
        pipe_batch_t *b = pipeline_acquire(&p);
        size_t n = 0;
        rc = stream_next_into(&s, b->ev, p.batch_cap, &n);
        b->n = rc > 0 ? (uint32_t)n : 0;
        pipeline_publish(&p, b);
        if (rc <= 0)
            break;
    }
    pipeline_finish(&p);
    r->secs = clock_mono_s() - t0;
    mem_snapshot(s1);
    mem_unseal();
    if (rc < 0) {
        fprintf(stderr, "bench_pipeline: %s\n", s.err);
        exit(1);
    }
    r->msgs = s.messages;
    r->waits = p.acquire_waits;
    r->churn = s1->total.churn_allocs - s0->total.churn_allocs;
    r->faults = (uint64_t)(s1->faults_after_seal > 0 ? s1->faults_after_seal : 0);
    r->reader_cpu = p.reader_cpu;
    r->xs_cpu = p.xs_cpu;
    r->xs_busy = p.xs_busy;
    uint64_t maxload = 0, total = 0;
    for (unsigned i = 0; i < p.k; i++) {
        r->worker_cpu += p.w[i].cpu;
        r->worker_busy += p.w[i].busy;
        r->worker_wait += p.w[i].row_wait;
        r->worker_sys += p.w[i].cpu_sys;
        r->csw_vol += (double)p.w[i].csw_vol;
        r->csw_invol += (double)p.w[i].csw_invol;
        book_stats_t bs;
        book_stats(&p.w[i].shard.book, &bs);
        r->far_moves += (double)bs.far_moves;
        if (p.w[i].owned > maxload)
            maxload = p.w[i].owned;
        total += p.w[i].owned;
    }
    r->max_share = total ? (double)maxload / (double)total : 1;
    if (p.loc_count)
        memcpy(g_counts, p.loc_count, sizeof g_counts);
    free(s0);
    free(s1);
    pipeline_fini(&p);
    stream_fini(&s);
    symtab_fini(&sy);
}

/* Heaviest shard's share of the messages for k shards: locate % k, and greedy largest-first
 * packing (what pipeline_balance does at a session boundary). */
static void shares(unsigned k, double *modulo, double *lpt)
{
    static uint64_t load[256];
    static uint32_t order[65536];
    uint64_t total = 0;
    size_t n = 0;
    memset(load, 0, sizeof load);
    for (uint32_t loc = 0; loc < 65536; loc++) {
        load[loc % k] += g_counts[loc];
        total += g_counts[loc];
        if (g_counts[loc])
            order[n++] = loc;
    }
    uint64_t mx = 0;
    for (unsigned i = 0; i < k; i++)
        mx = load[i] > mx ? load[i] : mx;
    *modulo = total ? (double)mx / (double)total : 1;
    /* selection of the next largest: n is a few hundred */
    memset(load, 0, sizeof load);
    for (size_t i = 0; i < n; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++)
            if (g_counts[order[j]] > g_counts[order[best]])
                best = j;
        uint32_t t = order[i];
        order[i] = order[best];
        order[best] = t;
        unsigned s = 0;
        for (unsigned q = 1; q < k; q++)
            if (load[q] < load[s])
                s = q;
        load[s] += g_counts[order[i]];
    }
    mx = 0;
    for (unsigned i = 0; i < k; i++)
        mx = load[i] > mx ? load[i] : mx;
    *lpt = total ? (double)mx / (double)total : 1;
}

static double med(result_t rs[][NK], int runs, int ki, size_t off)
{
    double v[MAXRUNS];
    for (int i = 0; i < runs; i++)
        v[i] = *(const double *)((const char *)&rs[i][ki] + off);
    return bench_median(v, (size_t)runs);
}

int main(void)
{
    const char *path = getenv("TICKCORE_BENCH_DAY");
    if (!path)
        path = "/tmp/tickcore-bench-day.itch";
    uint64_t messages = bench_env_count("TICKCORE_BENCH_MESSAGES", 100000000);
    bench_print_machine(stdout);
    struct stat st;
    if (stat(path, &st) != 0) {
        gen_cfg_t gc;
        gen_cfg_default(&gc);
        gc.out = path;
        gc.messages = messages;
        gc.symbols = 500;
        gc.sectors = 10;
        gc.truth = false;
        gen_stats_t gs;
        fprintf(stderr, "bench_pipeline: generating %s (%llu messages)...\n", path,
                (unsigned long long)messages);
        if (gen_run(&gc, &gs) != 0) {
            fprintf(stderr, "bench_pipeline: gen: %s\n", gs.error);
            return 1;
        }
    }
    int runs = bench_runs_max(3, MAXRUNS);
    static result_t rs[MAXRUNS][NK];
    for (int i = 0; i < runs; i++)
        for (int ki = 0; ki < NK; ki++) {
            /* rotate the order each round so no K always runs first (cache, page cache) */
            int kk = (ki + i) % NK;
            run(path, g_ks[kk], &rs[i][kk]);
        }
    uint64_t msgs = rs[0][0].msgs, churn = 0, faults = 0;
    printf("day: %s, %llu messages, 500 symbols, 1-minute bars, rolling correlation of 500; "
           "%d interleaved rounds, medians\n",
           path, (unsigned long long)msgs, runs);
    printf("%-8s %9s %7s | %-33s | %8s %8s %8s %9s\n", "workers", "M msg/s", "ratio",
           "CPU s per 10^6 msg: reader worker xsect", "wkr/K=1", "busy s", "wait s", "max share");
    double wall[NK], rcpu[NK], wcpu[NK], xcpu[NK], share[NK];
    for (int ki = 0; ki < NK; ki++) {
        wall[ki] = med(rs, runs, ki, offsetof(result_t, secs));
        rcpu[ki] = med(rs, runs, ki, offsetof(result_t, reader_cpu)) * 1e6 / (double)msgs;
        wcpu[ki] = med(rs, runs, ki, offsetof(result_t, worker_cpu)) * 1e6 / (double)msgs;
        xcpu[ki] = med(rs, runs, ki, offsetof(result_t, xs_cpu)) * 1e6 / (double)msgs;
        share[ki] = med(rs, runs, ki, offsetof(result_t, max_share));
        for (int i = 0; i < runs; i++) {
            churn += rs[i][ki].churn;
            faults += rs[i][ki].faults;
        }
        printf("%-8u %9.2f %7.2f | %10.4f %10.4f %11.4f | %7.2fx %8.3f %8.3f %9.3f\n", g_ks[ki],
               (double)msgs / wall[ki] / 1e6, wall[0] / wall[ki], rcpu[ki], wcpu[ki], xcpu[ki],
               wcpu[ki] / wcpu[0], med(rs, runs, ki, offsetof(result_t, worker_busy)),
               med(rs, runs, ki, offsetof(result_t, worker_wait)), share[ki]);
    }
    printf("(ratio: wall time of K=1 / K; with %ld cores online the reader, the workers and the "
           "cross-section share them. wkr/K=1: worker CPU per message against K=1; busy and "
           "wait summed over the workers)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("orders moved to the books' far tables per 10^6 messages (a shard's order table is "
           "its share of book.max_orders, indexed by reference):");
    for (int ki = 0; ki < NK; ki++)
        printf(" K=%u %.0f", g_ks[ki],
               med(rs, runs, ki, offsetof(result_t, far_moves)) * 1e6 / (double)msgs);
    printf("\n");
    printf("workers, per 10^6 messages: kernel CPU s / voluntary / involuntary context switches:");
    for (int ki = 0; ki < NK; ki++)
        printf(" K=%u %.4f/%.0f/%.0f", g_ks[ki],
               med(rs, runs, ki, offsetof(result_t, worker_sys)) * 1e6 / (double)msgs,
               med(rs, runs, ki, offsetof(result_t, csw_vol)) * 1e6 / (double)msgs,
               med(rs, runs, ki, offsetof(result_t, csw_invol)) * 1e6 / (double)msgs);
    printf("\n");
    for (int ki = 2; ki < NK; ki++)
        printf("worker CPU per message at K=%u: %+.1f%% against K=1 (%s)\n", g_ks[ki],
               100 * (wcpu[ki] / wcpu[0] - 1),
               wcpu[ki] <= 1.10 * wcpu[0] ? "within 10%" : "MORE THAN 10%");
    printf("allocations after the seal: %llu; page faults after the seal: %llu (all runs)\n",
           (unsigned long long)churn, (unsigned long long)faults);

    /* Projection to C cores from the K=8 costs (the most routing work measured). */
    const unsigned C = 16, kw = C - 1;
    double reader_cap = 1e6 / rcpu[NK - 1];
    double worker_cap = 1e6 / wcpu[NK - 1]; /* per core, all workers' CPU per message */
    double xs_cap = xcpu[NK - 1] > 0 ? 1e6 / xcpu[NK - 1] : 1e12;
    double sh_mod, sh_lpt;
    shares(kw, &sh_mod, &sh_lpt);
    /* K workers on their own cores finish when the heaviest shard does: a shard's CPU is its
     * share of the messages at the per-message cost */
    double wk_mod = worker_cap / sh_mod, wk_lpt = worker_cap / sh_lpt;
    double proj_mod = reader_cap, proj_lpt = reader_cap;
    if (wk_mod < proj_mod)
        proj_mod = wk_mod;
    if (wk_lpt < proj_lpt)
        proj_lpt = wk_lpt;
    if (xs_cap < proj_mod)
        proj_mod = xs_cap;
    if (xs_cap < proj_lpt)
        proj_lpt = xs_cap;
    printf("\nprojection to %u cores (1 reader + %u workers; the cross-section shares a core, "
           "it needs %.2f%% of one):\n",
           C, kw, 100 * xcpu[NK - 1] / 1e6 * (proj_lpt));
    printf("  reader capacity           %8.2f M msg/s  (1 / reader CPU per message at K=8)\n",
           reader_cap / 1e6);
    printf("  worker capacity per core  %8.2f M msg/s  (1 / worker CPU per message at K=8)\n",
           worker_cap / 1e6);
    printf("  cross-section capacity    %8.2f M msg/s\n", xs_cap / 1e6);
    printf("  %u workers, locate %% K   heaviest shard %.1f%% -> %8.2f M msg/s\n", kw, 100 * sh_mod,
           wk_mod / 1e6);
    printf("  %u workers, re-packed    heaviest shard %.1f%% -> %8.2f M msg/s\n", kw, 100 * sh_lpt,
           wk_lpt / 1e6);
    printf("  projected: %.2f M msg/s first session (locate %% K), %.2f M msg/s after a session "
           "boundary (re-packed); %.1fx / %.1fx one worker's capacity at K=1 (%.2f M msg/s)\n",
           proj_mod / 1e6, proj_lpt / 1e6, proj_mod * wcpu[0] / 1e6, proj_lpt * wcpu[0] / 1e6,
           1 / wcpu[0]);
    printf("  assumptions: one core per thread, no SMT; per-message costs as measured here (no "
           "memory-bandwidth or cache limit as shards multiply); the reader does not slow down "
           "(one input file, one decoder; its CPU excludes the kernel's io_uring work); shard "
           "loads from this day's per-locate message "
           "counts; the bottleneck is min(reader, workers, cross-section).\n");
    return churn ? 1 : 0;
}
