/*
 * test_covariance: the rolling covariance against a naive two-pass double loop over the window
 * rows kept by the test (1e-9 relative to sqrt(C_ii C_jj)), for several batch sizes, while the
 * window fills and after it is full; after 10^4 rows with the periodic recompute off (drift)
 * and on; the EWMA variant against the naive one-row recursion; correlation properties
 * (diagonal 1, symmetric, in [-1, 1], equal to cov_ij / sqrt(cov_ii cov_jj)), the zero-variance
 * policy (a column of zeros, a constant column, a column whose nonzero returns left the
 * window); bad rows and bad configurations refused; and a steady state of push + correlation
 * + PCA that performs no allocation at all (malloc_count, mem/ churn counters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/covariance.h"
#include "analytics/pca.h"
#include "mem/mem.h"
#include "mem/sanitize.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static int check_no_leak(void **state)
{
    (void)state;
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live, 0);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    return 0;
}

/* ---- random data: splitmix64 + Box-Muller -------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
    return sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit());
}

/* Returns of n symbols: a market factor with betas in [0.5, 1.5], idiosyncratic noise of
 * varying size, a small drift per symbol: like a bar's log returns. */
static void make_rows(double *rows, size_t m, size_t n, uint64_t seed)
{
    rng_state = seed;
    double beta[256], sig[256], drift[256];
    assert_true(n <= 256);
    for (size_t j = 0; j < n; j++) {
        beta[j] = 0.5 + rng_unit();
        sig[j] = 0.002 + 0.01 * rng_unit();
        drift[j] = 2e-4 * (rng_unit() - 0.5);
    }
    for (size_t r = 0; r < m; r++) {
        double f = 0.01 * rng_normal();
        for (size_t j = 0; j < n; j++)
            rows[r * n + j] = drift[j] + beta[j] * f + sig[j] * rng_normal();
    }
}

static double *talloc(size_t count)
{
    double *p = mem_calloc(MEM_TAG_TEST, count, sizeof(double));
    assert_non_null(p);
    return p;
}

static void tfree(double *p, size_t count)
{
    mem_free(MEM_TAG_TEST, p, count * sizeof(double));
}

/* ---- naive oracles -------------------------------------------------------------------------- */

/* Sample covariance of rows[0..m) (m x n), two passes, full matrix. */
static void naive_cov(const double *rows, size_t m, size_t n, double *out)
{
    double mu[256];
    for (size_t j = 0; j < n; j++) {
        double s = 0.0;
        for (size_t r = 0; r < m; r++)
            s += rows[r * n + j];
        mu[j] = s / (double)m;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t r = 0; r < m; r++)
                s += (rows[r * n + i] - mu[i]) * (rows[r * n + j] - mu[j]);
            out[i * n + j] = s / (double)(m - 1);
        }
}

/* Largest |got_ij - want_ij| / sqrt(want_ii want_jj) over the upper triangle (absolute where
 * a variance is 0). */
static double rel_err(const double *got, const double *want, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++) {
            double scale = sqrt(want[i * n + i] * want[j * n + j]);
            double e = fabs(got[i * n + j] - want[i * n + j]);
            if (scale > 0.0)
                e /= scale;
            if (e > worst)
                worst = e;
        }
    return worst;
}

/* Compare c's covariance with the naive one over the last min(T, committed) rows of hist. */
static double check_window(covariance_t *c, const double *hist, size_t committed, double tol)
{
    size_t n = c->n, T = c->cfg.window;
    size_t m = committed < T ? committed : T;
    assert_int_equal(covariance_rows(c), m);
    double *got = talloc(n * n), *want = talloc(n * n);
    assert_int_equal(covariance_matrix(c, got, true), 0);
    naive_cov(hist + (committed - m) * n, m, n, want);
    double e = rel_err(got, want, n);
    for (size_t i = 0; i < n; i++) /* full = true: the lower triangle mirrors the upper */
        for (size_t j = 0; j < i; j++)
            assert_true(got[i * n + j] == got[j * n + i]);
    tfree(got, n * n);
    tfree(want, n * n);
    if (e > tol)
        fail_msg("covariance off by %.3g relative (tolerance %.3g) after %zu rows", e, tol,
                 committed);
    return e;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_covariance_matches_naive_for_batch_sizes(void **state)
{
    (void)state;
    enum { N = 24, T = 100, M = 430 };
    static const size_t batches[] = {1, 7, 64, T};
    double *hist = talloc(M * N);
    make_rows(hist, M, N, 42);
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        covariance_config_t cfg;
        covariance_config_default(&cfg, N, T);
        cfg.batch = batches[bi];
        cfg.recompute_every = 0;
        covariance_t c;
        assert_int_equal(covariance_init(&c, &cfg), 0);
        size_t checks = 0;
        for (size_t r = 0; r < M; r++) {
            int rc = covariance_push(&c, hist + r * N);
            assert_int_equal(rc, (r + 1) % cfg.batch == 0 ? 1 : 0);
            size_t committed = r + 1 - c.npend;
            if (rc == 1 && committed >= 2) {
                check_window(&c, hist, committed, 1e-9);
                checks++;
            }
        }
        assert_true(checks >= 3);
        assert_int_equal(c.pushed, M);
        assert_int_equal(c.batches, M / cfg.batch);
        assert_int_equal(covariance_flush(&c), M % cfg.batch);
        check_window(&c, hist, M, 1e-9);
        assert_int_equal(c.evicted, M - T);
        covariance_fini(&c);
    }
    tfree(hist, M * N);
}

static void run_long(unsigned recompute_every, double *err_out, uint64_t *recomputes)
{
    enum { N = 32, T = 256, B = 16 };
    size_t m = 10000;
    double *hist = talloc(m * N);
    make_rows(hist, m, N, 7 + recompute_every);
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = B;
    cfg.recompute_every = recompute_every;
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    for (size_t r = 0; r < m; r++)
        assert_true(covariance_push(&c, hist + r * N) >= 0);
    *err_out = check_window(&c, hist, m, 1e-9);
    *recomputes = c.recomputes;
    covariance_fini(&c);
    tfree(hist, m * N);
}

static void test_covariance_drift_after_10k_rows_without_recompute(void **state)
{
    (void)state;
    double err;
    uint64_t rec;
    run_long(0, &err, &rec);
    assert_int_equal(rec, 0);
    print_message("    drift after 10^4 rows, no recompute: %.3g relative\n", err);
}

static void test_covariance_10k_rows_with_periodic_recompute(void **state)
{
    (void)state;
    double err;
    uint64_t rec;
    run_long(5, &err, &rec);
    assert_int_equal(rec, 10000 / 16 / 5);
    print_message("    error after 10^4 rows, recompute every 5 batches: %.3g relative\n", err);
}

static void test_covariance_window_not_full(void **state)
{
    (void)state;
    enum { N = 10, T = 50, M = 40 };
    double *hist = talloc(M * N);
    make_rows(hist, M, N, 3);
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = 8;
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    double *out = talloc(N * N);
    out[0] = 123.0;
    assert_int_equal(covariance_matrix(&c, out, true), -EAGAIN); /* empty */
    assert_int_equal(covariance_push(&c, hist), 0);
    assert_int_equal(covariance_rows(&c), 0); /* still in the batch */
    assert_int_equal(covariance_flush(&c), 1);
    assert_int_equal(covariance_rows(&c), 1);
    assert_int_equal(covariance_matrix(&c, out, true), -EAGAIN); /* one row: no sample cov */
    assert_int_equal(covariance_correlation(&c, out, true), -EAGAIN);
    assert_true(out[0] == 123.0); /* untouched */
    for (size_t r = 1; r < 8; r++)
        assert_int_equal(covariance_push(&c, hist + r * N), 0);
    assert_int_equal(covariance_push(&c, hist + 8 * N), 1); /* 1 flushed + 8 = a batch */
    check_window(&c, hist, 9, 1e-9);
    for (size_t r = 9; r < 29; r++)
        covariance_push(&c, hist + r * N);
    check_window(&c, hist, 25, 1e-9); /* 4 rows wait in the batch */
    assert_int_equal(covariance_flush(&c), 4);
    check_window(&c, hist, 29, 1e-9);
    assert_int_equal(c.evicted, 0);
    covariance_reset(&c);
    assert_int_equal(covariance_rows(&c), 0);
    assert_int_equal(covariance_matrix(&c, out, true), -EAGAIN);
    for (size_t r = 0; r < M; r++)
        covariance_push(&c, hist + r * N);
    check_window(&c, hist, 40, 1e-9); /* after a reset: the same as from scratch */
    tfree(out, N * N);
    covariance_fini(&c);
    tfree(hist, M * N);
}

static void test_covariance_ewma_matches_naive_recursion(void **state)
{
    (void)state;
    enum { N = 16, M = 203, B = 8 };
    const double lambda = 0.97;
    double *hist = talloc(M * N);
    make_rows(hist, M, N, 11);
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, 0);
    cfg.mode = COVARIANCE_EWMA;
    cfg.batch = B;
    cfg.lambda = lambda;
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    double *got = talloc(N * N), *want = talloc(N * N);
    assert_int_equal(covariance_matrix(&c, got, true), -EAGAIN);
    for (size_t r = 0; r < M; r++) {
        /* the naive recursion, one row at a time */
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                want[i * N + j] =
                    lambda * want[i * N + j] + (1.0 - lambda) * hist[r * N + i] * hist[r * N + j];
        int rc = covariance_push(&c, hist + r * N);
        if (r == 100) { /* a short batch in the middle */
            assert_int_equal(rc, 0);
            assert_int_equal(covariance_flush(&c), 5);
        }
        if (c.npend == 0) {
            assert_int_equal(covariance_matrix(&c, got, true), 0);
            double e = rel_err(got, want, N);
            if (e > 1e-9)
                fail_msg("EWMA off by %.3g after %zu rows", e, r + 1);
        }
    }
    covariance_flush(&c);
    assert_int_equal(covariance_rows(&c), M);
    assert_int_equal(covariance_matrix(&c, got, true), 0);
    assert_true(rel_err(got, want, N) <= 1e-9);
    assert_true(fabs(covariance_ewma_weight(&c) - (1.0 - pow(lambda, M))) < 1e-12);
    tfree(got, N * N);
    tfree(want, N * N);
    covariance_fini(&c);
    tfree(hist, M * N);
}

static void check_corr_properties(const double *corr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(corr[i * n + i] == 1.0);
        for (size_t j = 0; j < n; j++) {
            assert_true(corr[i * n + j] == corr[j * n + i]);
            assert_true(corr[i * n + j] >= -1.0 && corr[i * n + j] <= 1.0);
        }
    }
}

static void correlation_case(size_t batch)
{
    enum { N = 20, T = 60, M = 150 };
    double *hist = talloc(M * N);
    make_rows(hist, M, N, 5);
    /* Column 3: carried prices all the way (returns 0). Column 7: constant 0.001. Columns 11,
     * 12, 13, 14, 16: scaled copies of columns 0, 0, 1, 2, 4 (correlation +-1 exactly, where
     * rounding alone would step past 1 without the clamp). Column 15: active in the first 60
     * rows only, with magnitudes over six decades so that removals leave rounding residue in
     * S; returns 0 afterwards: its nonzero rows leave the window. */
    for (size_t r = 0; r < M; r++) {
        hist[r * N + 3] = 0.0;
        hist[r * N + 7] = 0.001;
        hist[r * N + 11] = hist[r * N + 0];
        hist[r * N + 12] = -hist[r * N + 0];
        hist[r * N + 13] = 3.0 * hist[r * N + 1];
        hist[r * N + 14] = 0.7 * hist[r * N + 2];
        hist[r * N + 16] = -2.5 * hist[r * N + 4];
        hist[r * N + 15] = r >= 60 ? 0.0 : hist[r * N + 15] * pow(10.0, (double)(r % 7) - 3.0);
    }
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = batch;
    cfg.recompute_every = 0;
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    for (size_t r = 0; r < M; r++)
        covariance_push(&c, hist + r * N);
    assert_int_equal(c.npend, 0);
    double *cov = talloc(N * N), *corr = talloc(N * N), *want = talloc(N * N);
    assert_int_equal(covariance_matrix(&c, cov, true), 0);
    for (size_t j = 0; j < N; j++) { /* the zero-variance columns are exactly 0 */
        assert_true(cov[3 * N + j] == 0.0 && cov[j * N + 3] == 0.0);
        assert_true(cov[7 * N + j] == 0.0 && cov[j * N + 7] == 0.0);
        assert_true(cov[15 * N + j] == 0.0 && cov[j * N + 15] == 0.0);
    }
    assert_int_equal(covariance_correlation(&c, corr, true), 0);
    check_corr_properties(corr, N);
    naive_cov(hist + (M - T) * N, T, N, want);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            bool zero = i == 3 || i == 7 || i == 15 || j == 3 || j == 7 || j == 15;
            double r = zero ? (i == j ? 1.0 : 0.0)
                            : want[i * N + j] / sqrt(want[i * N + i] * want[j * N + j]);
            if (fabs(corr[i * N + j] - r) > 1e-9)
                fail_msg("corr[%zu][%zu] = %.17g, naive %.17g", i, j, corr[i * N + j], r);
        }
    assert_true(fabs(corr[0 * N + 11] - 1.0) < 1e-12);
    assert_true(fabs(corr[0 * N + 12] + 1.0) < 1e-12);
    assert_true(fabs(corr[1 * N + 13] - 1.0) < 1e-12);
    assert_true(fabs(corr[2 * N + 14] - 1.0) < 1e-12);
    assert_true(fabs(corr[4 * N + 16] + 1.0) < 1e-12);
    /* Standalone, in place and out of place agree; upper only when not full. */
    double *copy = talloc(N * N);
    memcpy(copy, cov, N * N * sizeof(double));
    covariance_to_correlation(copy, copy, N, false);
    for (size_t i = 0; i < N; i++)
        for (size_t j = i; j < N; j++)
            assert_true(copy[i * N + j] == corr[i * N + j]);
    /* A negative or NaN variance on the diagonal counts as zero variance. */
    memcpy(copy, cov, N * N * sizeof(double));
    copy[1 * N + 1] = -1e-30;
    copy[2 * N + 2] = NAN;
    covariance_to_correlation(copy, want, N, true);
    check_corr_properties(want, N);
    for (size_t j = 0; j < N; j++)
        if (j != 1 && j != 2) {
            assert_true(want[1 * N + j] == 0.0);
            assert_true(want[2 * N + j] == 0.0);
        }
    tfree(copy, N * N);
    tfree(cov, N * N);
    tfree(corr, N * N);
    tfree(want, N * N);
    covariance_fini(&c);
    tfree(hist, M * N);
}

/* Several batch sizes: removals leave rounding residue of either sign in S for column 15 (for
 * b = 1 a positive one, which only the nonzero counts recognise as a zero column). */
static void test_covariance_correlation_properties(void **state)
{
    (void)state;
    static const size_t batches[] = {6, 5, 3, 1};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++)
        correlation_case(batches[i]);
}

static void test_covariance_refuses_bad_rows_and_configs(void **state)
{
    (void)state;
    enum { N = 6, T = 20 };
    double *hist = talloc(40 * N);
    make_rows(hist, 40, N, 9);
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = 4;
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    double bad[N];
    for (size_t r = 0; r < 40; r++) {
        assert_true(covariance_push(&c, hist + r * N) >= 0);
        if (r % 5 == 0) {
            memcpy(bad, hist + r * N, sizeof bad);
            bad[r % N] = (r % 3 == 0) ? NAN : (r % 3 == 1 ? INFINITY : -INFINITY);
            assert_int_equal(covariance_push(&c, bad), -EINVAL);
        }
    }
    assert_int_equal(c.rejected, 8);
    assert_int_equal(c.pushed, 40);
    check_window(&c, hist, 40, 1e-9); /* refused rows left no trace */
    covariance_fini(&c);
    covariance_fini(&c); /* twice: no-op */

    const covariance_config_t good = cfg;
    covariance_config_t b;
    b = good, b.nsym = 0;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.window = 1;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.batch = 0;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.batch = T + 1;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.blas_threads = -1;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.mode = (covariance_mode_t)7;
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.nsym = (size_t)1 << 40; /* N * N * 8 overflows or exceeds int */
    assert_int_equal(covariance_init(&c, &b), -EINVAL);
    b = good, b.mode = COVARIANCE_EWMA;
    const double lambdas[] = {0.0, 1.0, -0.5, 1.5, NAN};
    for (size_t i = 0; i < 5; i++) {
        b.lambda = lambdas[i];
        assert_int_equal(covariance_init(&c, &b), -EINVAL);
    }
    covariance_t z;
    memset(&z, 0, sizeof z);
    covariance_fini(&z); /* never initialised: no-op */
    tfree(hist, 40 * N);
}

/* Virtual size of the process in kB, from /proc/self/status with open/read (no malloc), or -1.
 * OpenBLAS takes its buffer pool with mmap, which malloc_count cannot see: an unchanged
 * virtual size across the steady state shows that no mapping was added either. */
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

static void test_covariance_steady_state_allocates_nothing(void **state)
{
    (void)state;
    enum { N = 48, T = 128, B = 16, K = 5 };
    size_t m = RUNNING_ON_VALGRIND ? 300 : 1200;
    double *hist = talloc(m * N);
    make_rows(hist, m, N, 21);
    double *corr = talloc(N * N);
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    cfg.batch = B;
    cfg.recompute_every = 3; /* recomputes happen inside the measured loop */
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    pca_t p;
    assert_int_equal(pca_init(&p, N, K), 0);
    covariance_config_t ecfg = cfg;
    ecfg.mode = COVARIANCE_EWMA;
    covariance_t e;
    assert_int_equal(covariance_init(&e, &ecfg), 0);
    mem_seal();
    long vm_before = vm_size_kb();
    malloc_count_t before;
    malloc_count_get(&before);
    for (size_t r = 0; r < m; r++) {
        if (covariance_push(&c, hist + r * N) == 1 && covariance_rows(&c) >= 2) {
            assert_int_equal(covariance_correlation(&c, corr, false), 0);
            assert_int_equal(pca_compute(&p, corr), 0);
        }
        if (covariance_push(&e, hist + r * N) == 1)
            assert_int_equal(covariance_correlation(&e, corr, true), 0);
    }
    covariance_flush(&c);
    uint64_t allocs = malloc_count_allocs_since(&before);
    long vm_after = vm_size_kb();
    mem_snapshot_t s;
    mem_snapshot(&s);
    mem_unseal();
    assert_true(c.recomputes > 0);
    assert_true(p.computes > 10);
    assert_int_equal(allocs, 0);
    assert_true(vm_before > 0);
    /* valgrind maps its own memory as it goes. The 128 MiB that VmSize once grew by here with 0
     * allocations counted (first seen under ASan at load 15, then in a normal CI) was an
     * OpenBLAS pool slot mapped after the seal: a worker thread that first ran after the
     * warm-up took the warm-up's slot; covariance_blas_settle makes every worker take its own
     * first (old code: 15/120 and, under ASan, 12/150 runs failed with 2 busy loops; new 0) */
    if (!RUNNING_ON_VALGRIND)
        assert_int_equal(vm_after, vm_before);
    assert_int_equal(s.total.churn_allocs, 0);
    print_message("    steady state: %llu allocations (libc interposer %s)\n",
                  (unsigned long long)allocs, malloc_count_libc_seen() ? "on" : "off");
    covariance_fini(&e);
    pca_fini(&p);
    covariance_fini(&c);
    tfree(corr, N * N);
    tfree(hist, m * N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: the process's first OpenBLAS calls are the ones in its init, so this test
         * also shows that the init warm-up leaves nothing for the steady state to set up. */
        cmocka_unit_test_setup_teardown(test_covariance_steady_state_allocates_nothing,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_matches_naive_for_batch_sizes,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_drift_after_10k_rows_without_recompute,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_10k_rows_with_periodic_recompute,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_window_not_full, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_ewma_matches_naive_recursion,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_correlation_properties, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_covariance_refuses_bad_rows_and_configs,
                                        reset_counters, check_no_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
