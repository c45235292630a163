/*
 * bench_graph: the correlation-graph stage of the cross-section cycle: Mantegna distance + Prim
 * MST + degrees and betweenness (graph_mst), then a k-cut and a threshold cut, for N = 500 and
 * N = 3000 symbols. The input is the sample correlation of simulated factor-model returns
 * (market + 10 sectors + noise, T = 500), computed once with a naive O(N^2 T) loop whose time is
 * printed for context only (the real correlation is analytics/covariance's job, with dsyrk).
 * Figures are medians of several runs; the timed loop runs after mem_seal() and the report
 * says how many allocations it made (must be 0). The design target for correlation + MST at
 * N = 3000 is 250 ms.
 */
#include "analytics/graph.h"
#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/mem.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { T = 500, SECTORS = 10 };

static uint64_t rng_state = 12345;

static double rng_unit(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(void)
{
    return sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}

/* Factor-model returns x[i*T + t], then their sample correlation the naive way (z-scores and a
 * dot product per pair). Returns the correlation time in seconds. */
static double make_corr(size_t n, double *x, double *corr)
{
    double f[T], s[SECTORS][T];
    for (size_t t = 0; t < T; t++) {
        f[t] = rng_gauss();
        for (size_t k = 0; k < SECTORS; k++)
            s[k][t] = rng_gauss();
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(rng_unit() * SECTORS);
        double bm = 0.3 + 0.5 * rng_unit(), bs = 0.3 + 0.7 * rng_unit();
        for (size_t t = 0; t < T; t++)
            x[i * T + t] = bm * f[t] + bs * s[k][t] + rng_gauss();
    }
    double t0 = clock_mono_s();
    for (size_t i = 0; i < n; i++) {
        double *r = x + i * T, m = 0, ss = 0;
        for (size_t t = 0; t < T; t++)
            m += r[t];
        m /= T;
        for (size_t t = 0; t < T; t++)
            ss += (r[t] - m) * (r[t] - m);
        double sd = sqrt(ss);
        for (size_t t = 0; t < T; t++)
            r[t] = (r[t] - m) / sd;
    }
    for (size_t i = 0; i < n; i++) {
        corr[i * n + i] = 1.0;
        for (size_t j = i + 1; j < n; j++) {
            double c = 0;
            for (size_t t = 0; t < T; t++)
                c += x[i * T + t] * x[j * T + t];
            corr[i * n + j] = corr[j * n + i] = c;
        }
    }
    return clock_mono_s() - t0;
}

static int run(size_t n, int runs)
{
    size_t xbytes = n * T * sizeof(double), cbytes = n * n * sizeof(double);
    double *x = mem_alloc(MEM_TAG_BENCH, xbytes), *corr = mem_alloc(MEM_TAG_BENCH, cbytes);
    graph_t g;
    if (!x || !corr || graph_init(&g, n)) {
        fprintf(stderr, "bench_graph: out of memory for N=%zu\n", n);
        exit(1);
    }
    double tcorr = make_corr(n, x, corr);
    if (graph_mst(&g, corr, n)) { /* warm-up, and a check of the input */
        fprintf(stderr, "bench_graph: graph_mst refused the matrix\n");
        exit(1);
    }
    double tmst[64], tcut[64], tall[64];
    double med_d = g.edges[g.nedges / 2].d;
    mem_seal();
    mem_snapshot_t s0, s1;
    mem_snapshot(&s0);
    size_t nthr = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = clock_mono_s();
        graph_mst(&g, corr, n);
        double t1 = clock_mono_s();
        graph_cut_k(&g, SECTORS);
        graph_cut_threshold(&g, med_d);
        nthr = g.nclusters;
        double t2 = clock_mono_s();
        tmst[r] = t1 - t0;
        tcut[r] = t2 - t1;
        tall[r] = t2 - t0;
    }
    mem_snapshot(&s1);
    mem_unseal();
    uint64_t allocs = s1.total.allocs - s0.total.allocs;
    uint64_t churn = s1.total.churn_allocs - s0.total.churn_allocs;
    double mst = bench_median(tmst, (size_t)runs), cut = bench_median(tcut, (size_t)runs);
    double all = bench_median(tall, (size_t)runs);
    printf("N=%zu (T=%d, %d sectors), median of %d runs\n", n, T, SECTORS, runs);
    printf("  naive correlation (context, once)   %10.1f ms\n", tcorr * 1e3);
    printf("  distance + MST + degree/betweenness %10.2f ms\n", mst * 1e3);
    printf("  k-cut (k=%d) + threshold cut        %10.3f ms (threshold at median edge d %.4f: "
           "%zu clusters)\n",
           SECTORS, cut * 1e3, med_d, nthr);
    printf("  MST + clusters                      %10.2f ms; tree weight %.4f\n", all * 1e3,
           g.total);
    printf("  allocations in the timed loop after mem_seal(): %llu (churn %llu)\n\n",
           (unsigned long long)allocs, (unsigned long long)churn);
    graph_fini(&g);
    mem_free(MEM_TAG_BENCH, x, xbytes);
    mem_free(MEM_TAG_BENCH, corr, cbytes);
    return allocs != 0 || churn != 0;
}

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(7, 64);
    int bad = run(500, runs);
    bad |= run(3000, runs);
    mem_snapshot_t s;
    mem_snapshot(&s);
    int64_t live = s.tag[MEM_TAG_BENCH].live + s.tag[MEM_TAG_ANALYTICS].live;
    printf("live bytes after teardown (bench + analytics, must be 0): %lld\n", (long long)live);
    return bad || live != 0;
}
