/*
 * bench_covariance: the matrix work of the cross-section thread, on one OpenBLAS thread:
 * (1) full recompute of S from a window of T = 1000 rows of N = 1000 symbols (covariance_
 * recompute, and a bare cblas_dsyrk on a contiguous block for reference), reported as
 * GFLOPS = N * N * T / time (the multiply-adds of the upper triangle, twice, halved); (2) the
 * rolling update for N = 500 in batches of 64, per sample, without the periodic recompute and
 * with the default one (every 64 batches); (3) correlation from a covariance for N = 3000;
 * (4) PCA top 5 for N = 500 (dsyevr); (5) allocations per update after mem_seal(), from
 * mem_snapshot (mem/'s counters) and the process's virtual size (OpenBLAS maps its buffers
 * with mmap, which no malloc counter sees). Figures are medians of bench_runs() runs; the
 * machine is shared, so they are for the record.
 */
#include "analytics/covariance.h"
#include "analytics/pca.h"
#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/mem.h"

#include <cblas.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state = 12345;

static double rng_normal(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        u[i] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* m rows of n returns from a one-factor model. */
static void make_rows(double *rows, size_t m, size_t n)
{
    for (size_t r = 0; r < m; r++) {
        double f = 0.01 * rng_normal();
        for (size_t j = 0; j < n; j++)
            rows[r * n + j] = (0.5 + (double)(j % 7) / 7.0) * f + 0.008 * rng_normal();
    }
}

static double *balloc(size_t count)
{
    double *p =
        mem_alloc_at(MEM_TAG_BENCH, count * sizeof(double), 64, MEM_PREFAULT, __FILE__, __LINE__);
    if (!p) {
        fprintf(stderr, "bench_covariance: out of memory\n");
        exit(1);
    }
    return p;
}

static void bfree(double *p, size_t count)
{
    mem_free(MEM_TAG_BENCH, p, count * sizeof(double));
}

static long vm_size_kb(void)
{
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t got;
    while (len < sizeof buf - 1 && (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    buf[len] = 0;
    const char *v = strstr(buf, "VmSize:");
    return v ? strtol(v + 7, NULL, 10) : -1;
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench_covariance: %s failed (%d)\n", what, rc);
        exit(1);
    }
}

static void bench_full_recompute(int runs)
{
    enum { N = 1000, T = 1000 };
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    covariance_t c;
    check(covariance_init(&c, &cfg), "covariance_init");
    double *rows = balloc((size_t)T * N);
    make_rows(rows, T, N);
    for (size_t r = 0; r < T; r++)
        covariance_push(&c, rows + r * N);
    double *t_mod = balloc((size_t)runs), *t_raw = balloc((size_t)runs);
    double *c_mod = balloc((size_t)runs), *c_raw = balloc((size_t)runs);
    double *s = balloc((size_t)N * N);
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        covariance_recompute(&c);
        t_mod[i] = clock_mono_s() - t0;
        c_mod[i] = clock_thread_cpu_s() - u0;
        t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, N, T, 1.0, rows, N, 0.0, s, N);
        t_raw[i] = clock_mono_s() - t0;
        c_raw[i] = clock_thread_cpu_s() - u0;
    }
    double tm = bench_median(t_mod, (size_t)runs), tr = bench_median(t_raw, (size_t)runs);
    double cm = bench_median(c_mod, (size_t)runs), cr = bench_median(c_raw, (size_t)runs);
    double flops = (double)N * N * T;
    printf("full recompute N=%d T=%d (covariance_recompute): wall %6.2f ms %5.1f GFLOPS, cpu "
           "%6.2f ms %5.1f GFLOPS (target <= 25 ms, >= 45 GFLOPS)\n",
           N, T, tm * 1e3, flops / tm * 1e-9, cm * 1e3, flops / cm * 1e-9);
    printf("  bare cblas_dsyrk on a contiguous %dx%d block:   wall %6.2f ms %5.1f GFLOPS, cpu "
           "%6.2f ms %5.1f GFLOPS\n",
           T, N, tr * 1e3, flops / tr * 1e-9, cr * 1e3, flops / cr * 1e-9);
    bfree(c_mod, (size_t)runs);
    bfree(c_raw, (size_t)runs);
    bfree(s, (size_t)N * N);
    bfree(t_mod, (size_t)runs);
    bfree(t_raw, (size_t)runs);
    bfree(rows, (size_t)T * N);
    covariance_fini(&c);
}

/* Per-sample cost of the rolling update; also the allocation witness over the timed loop. */
static void bench_rolling(int runs, unsigned recompute_every, uint64_t *allocs, uint64_t *churn,
                          long *vm_delta, size_t *updates)
{
    enum { N = 500, T = 1000, B = 64, ROWS = 64 * 48 };
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = B;
    cfg.recompute_every = recompute_every;
    covariance_t c;
    check(covariance_init(&c, &cfg), "covariance_init");
    double *rows = balloc((size_t)ROWS * N);
    make_rows(rows, ROWS, N);
    for (size_t r = 0; r < T; r++) /* fill the window */
        covariance_push(&c, rows + r * N);
    double *t = balloc((size_t)runs), *u = balloc((size_t)runs);
    mem_seal();
    mem_snapshot_t before, after;
    mem_snapshot(&before);
    long vm0 = vm_size_kb();
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        for (size_t r = 0; r < ROWS; r++)
            covariance_push(&c, rows + r * N);
        t[i] = (clock_mono_s() - t0) / ROWS;
        u[i] = (clock_thread_cpu_s() - u0) / ROWS;
    }
    long vm1 = vm_size_kb();
    mem_snapshot(&after);
    mem_unseal();
    *allocs = after.total.allocs - before.total.allocs;
    *churn = after.total.churn_allocs - before.total.churn_allocs;
    *vm_delta = vm1 - vm0;
    *updates = (size_t)runs * ROWS;
    double m = bench_median(t, (size_t)runs), mc = bench_median(u, (size_t)runs);
    if (recompute_every)
        printf("rolling update N=%d T=%d b=%d, full recompute every %u batches:  wall %6.2f "
               "us/sample, cpu %6.2f us/sample\n",
               N, T, B, recompute_every, m * 1e6, mc * 1e6);
    else /* per sample: two dsyrk of N x N x b per b samples, N * N * b "flops" each */
        printf("rolling update N=%d T=%d b=%d, no recompute: wall %6.2f us/sample %5.1f GFLOPS, "
               "cpu %6.2f us/sample %5.1f GFLOPS (target <= 10 us/sample)\n",
               N, T, B, m * 1e6, 2.0 * N * N / m * 1e-9, mc * 1e6, 2.0 * N * N / mc * 1e-9);
    bfree(t, (size_t)runs);
    bfree(u, (size_t)runs);
    bfree(rows, (size_t)ROWS * N);
    covariance_fini(&c);
}

static void bench_correlation(int runs)
{
    enum { N = 3000 };
    double *cov = balloc((size_t)N * N), *corr = balloc((size_t)N * N);
    for (size_t i = 0; i < N; i++) /* any symmetric matrix with a positive diagonal */
        for (size_t j = i; j < N; j++)
            cov[i * N + j] = i == j ? 1e-4 * (1.0 + (double)(i % 13)) : 1e-6 * rng_normal();
    double *t_up = balloc((size_t)runs), *t_full = balloc((size_t)runs);
    double *u_up = balloc((size_t)runs), *u_full = balloc((size_t)runs);
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        covariance_to_correlation(cov, corr, N, false);
        t_up[i] = clock_mono_s() - t0;
        u_up[i] = clock_thread_cpu_s() - u0;
        t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        covariance_to_correlation(cov, corr, N, true);
        t_full[i] = clock_mono_s() - t0;
        u_full[i] = clock_thread_cpu_s() - u0;
    }
    printf("correlation from covariance N=%d: upper wall %6.2f ms (cpu %6.2f), full (mirrored) "
           "wall %6.2f ms (cpu %6.2f)\n",
           N, bench_median(t_up, (size_t)runs) * 1e3, bench_median(u_up, (size_t)runs) * 1e3,
           bench_median(t_full, (size_t)runs) * 1e3, bench_median(u_full, (size_t)runs) * 1e3);
    bfree(u_up, (size_t)runs);
    bfree(u_full, (size_t)runs);
    bfree(t_up, (size_t)runs);
    bfree(t_full, (size_t)runs);
    bfree(cov, (size_t)N * N);
    bfree(corr, (size_t)N * N);
}

static void bench_pca(int runs)
{
    enum { N = 500, T = 1000, K = 5 };
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    covariance_t c;
    check(covariance_init(&c, &cfg), "covariance_init");
    double *rows = balloc((size_t)T * N), *corr = balloc((size_t)N * N);
    make_rows(rows, T, N);
    for (size_t r = 0; r < T; r++)
        covariance_push(&c, rows + r * N);
    check(covariance_correlation(&c, corr, false), "covariance_correlation");
    pca_t p;
    check(pca_init(&p, N, K), "pca_init");
    double *t = balloc((size_t)runs), *u = balloc((size_t)runs);
    mem_seal();
    mem_snapshot_t before, after;
    mem_snapshot(&before);
    long vm0 = vm_size_kb();
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s(), u0 = clock_thread_cpu_s();
        check(pca_compute(&p, corr), "pca_compute");
        t[i] = clock_mono_s() - t0;
        u[i] = clock_thread_cpu_s() - u0;
    }
    long vm1 = vm_size_kb();
    mem_snapshot(&after);
    mem_unseal();
    printf("PCA top %d of N=%d correlation (dsyevr): wall %6.2f ms (cpu %6.2f); first component "
           "explains %.1f%%; allocations %llu, virtual size change %ld kB\n",
           K, N, bench_median(t, (size_t)runs) * 1e3, bench_median(u, (size_t)runs) * 1e3,
           100.0 * p.ratio[0], (unsigned long long)(after.total.allocs - before.total.allocs),
           vm1 - vm0);
    bfree(t, (size_t)runs);
    bfree(u, (size_t)runs);
    pca_fini(&p);
    bfree(rows, (size_t)T * N);
    bfree(corr, (size_t)N * N);
    covariance_fini(&c);
}

int main(void)
{
    bench_print_machine(stdout);
    int threads = covariance_blas_threads(1);
    printf("OpenBLAS: %s, core %s, %d thread(s)\n", openblas_get_config(), openblas_get_corename(),
           threads);
    int runs = bench_runs(5);
    bench_full_recompute(runs);
    uint64_t allocs, churn;
    long vm;
    size_t updates;
    bench_rolling(runs, 0, &allocs, &churn, &vm, &updates);
    printf("  after mem_seal: %llu allocations, %llu churn over %zu updates (%.3g per update); "
           "virtual size change %ld kB\n",
           (unsigned long long)allocs, (unsigned long long)churn, updates,
           (double)allocs / (double)updates, vm);
    bench_rolling(runs, 64, &allocs, &churn, &vm, &updates);
    bench_correlation(runs);
    bench_pca(runs);
    mem_snapshot_t s;
    mem_snapshot(&s);
    int leaks = (int)mem_leak_count(&s);
    printf("teardown: %d tag(s) with live bytes\n", leaks);
    return leaks ? 3 : 0;
}
