/*
 * test_pca: top-k eigenpairs from dsyevr against a naive cyclic Jacobi eigenvalue method
 * written here (eigenvalues 1e-8 relative, eigenvectors up to sign) on a matrix with a planted
 * spectrum (also checked against the planted values) and on a sample covariance and
 * correlation built by analytics/covariance; residuals |A v - lambda v|; the analytic first
 * component of one-factor matrices (sigma_m^2 beta beta^T + sigma^2 I: lambda_1 = sigma_m^2
 * |beta|^2 + sigma^2, v_1 = beta / |beta|; equicorrelation rho: lambda_1 = 1 + (n - 1) rho,
 * ratio (1 + (n - 1) rho) / n); the sign convention; the lower triangle never read; bad input
 * refused; and pca_compute allocating nothing after the seal.
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

/* ---- the oracle: cyclic Jacobi ---------------------------------------------------------------
 * a: n x n symmetric (destroyed). vals: n eigenvalues, descending. vecs: n x n, eigenvector i
 * in row i (vecs + i * n). */
static void jacobi_eig(double *a, size_t n, double *vals, double *vecs)
{
    double *v = talloc(n * n);
    for (size_t i = 0; i < n; i++)
        v[i * n + i] = 1.0;
    double norm = 0.0;
    for (size_t i = 0; i < n * n; i++)
        norm += a[i] * a[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0;
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++)
                off += a[p * n + q] * a[p * n + q];
        if (off <= 1e-34 * norm)
            break;
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0.0)
                    continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                double t = (theta >= 0.0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < n; k++) { /* A <- A J */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < n; k++) { /* A <- J^T A */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < n; k++) { /* V <- V J */
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    /* selection sort by eigenvalue, descending; eigenvector i = column i of V */
    size_t *ord = mem_calloc(MEM_TAG_TEST, n, sizeof(size_t));
    assert_non_null(ord);
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    for (size_t i = 0; i < n; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++)
            if (a[ord[j] * n + ord[j]] > a[ord[best] * n + ord[best]])
                best = j;
        size_t t = ord[i];
        ord[i] = ord[best];
        ord[best] = t;
        vals[i] = a[ord[i] * n + ord[i]];
        for (size_t k = 0; k < n; k++)
            vecs[i * n + k] = v[k * n + ord[i]];
    }
    mem_free(MEM_TAG_TEST, ord, n * sizeof(size_t));
    tfree(v, n * n);
}

/* |A v - lambda v| for the full symmetric matrix a. */
static double residual(const double *a, size_t n, const double *v, double lambda)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < n; j++)
            s += a[i * n + j] * v[j];
        double e = fabs(s - lambda * v[i]);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static double dot(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* The sign rule of pca.h holds for v. */
static void check_sign(const double *v, size_t n)
{
    double sum = 0.0, big = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (fabs(v[i]) > big)
            big = fabs(v[i]), at = i;
    }
    if (fabs(sum) > 1e-6)
        assert_true(sum > 0.0);
    else
        assert_true(v[at] > 0.0);
}

/* Compare the pca result for the full symmetric matrix a with Jacobi: eigenvalues 1e-8
 * relative; eigenvectors up to sign, for components whose eigenvalue is separated from its
 * neighbours by at least gap_min relative. */
static void compare_with_jacobi(const pca_t *p, const double *a, double gap_min)
{
    size_t n = p->n, k = p->k;
    double *copy = talloc(n * n), *vals = talloc(n), *vecs = talloc(n * n);
    memcpy(copy, a, n * n * sizeof(double));
    jacobi_eig(copy, n, vals, vecs);
    double scale = fabs(vals[0]);
    double trace = 0.0;
    for (size_t i = 0; i < n; i++)
        trace += a[i * n + i];
    assert_true(fabs(p->trace - trace) <= 1e-12 * fabs(trace));
    for (size_t i = 0; i < k; i++) {
        const double *v = p->vectors + i * n;
        assert_true(residual(a, n, vecs + i * n, vals[i]) <= 1e-10 * scale); /* oracle sane */
        if (fabs(p->values[i] - vals[i]) > 1e-8 * fabs(vals[i]))
            fail_msg("eigenvalue %zu: %.17g, Jacobi %.17g", i, p->values[i], vals[i]);
        assert_true(fabs(dot(v, v, n) - 1.0) < 1e-12);
        assert_true(residual(a, n, v, p->values[i]) <= 1e-10 * scale);
        assert_true(fabs(p->ratio[i] - p->values[i] / trace) <= 1e-15);
        check_sign(v, n);
        double gap = INFINITY;
        if (i > 0)
            gap = fabs(vals[i - 1] - vals[i]);
        if (i + 1 < n && fabs(vals[i] - vals[i + 1]) < gap)
            gap = fabs(vals[i] - vals[i + 1]);
        if (gap >= gap_min * scale) {
            double d = dot(v, vecs + i * n, n);
            double sign = d < 0.0 ? -1.0 : 1.0;
            for (size_t j = 0; j < n; j++)
                if (fabs(v[j] - sign * vecs[i * n + j]) > 1e-8)
                    fail_msg("eigenvector %zu component %zu: %.17g, Jacobi %.17g", i, j, v[j],
                             sign * vecs[i * n + j]);
        }
    }
    for (size_t i = 1; i < k; i++)
        assert_true(p->values[i - 1] >= p->values[i]);
    tfree(copy, n * n);
    tfree(vals, n);
    tfree(vecs, n * n);
}

/* Random orthogonal n x n (rows), Gram-Schmidt twice on Gaussian rows. */
static void random_orthogonal(double *q, size_t n)
{
    for (size_t i = 0; i < n * n; i++)
        q[i] = rng_normal();
    for (size_t i = 0; i < n; i++)
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = 0; j < i; j++) {
                double d = dot(q + i * n, q + j * n, n);
                for (size_t k = 0; k < n; k++)
                    q[i * n + k] -= d * q[j * n + k];
            }
            double nr = sqrt(dot(q + i * n, q + i * n, n));
            for (size_t k = 0; k < n; k++)
                q[i * n + k] /= nr;
        }
}

static void test_pca_planted_spectrum_matches_jacobi(void **state)
{
    (void)state;
    enum { N = 40, K = 5 };
    rng_state = 1;
    double *q = talloc(N * N), *a = talloc(N * N), lam[N];
    random_orthogonal(q, N);
    static const double top[K] = {10.0, 7.0, 5.0, 3.0, 2.0};
    for (size_t i = 0; i < N; i++)
        lam[i] = i < K ? top[i] : 0.05 + 0.9 * rng_unit();
    for (size_t i = 0; i < N; i++) /* A = sum lam_k q_k q_k^T */
        for (size_t j = 0; j < N; j++) {
            double s = 0.0;
            for (size_t k = 0; k < N; k++)
                s += lam[k] * q[k * N + i] * q[k * N + j];
            a[i * N + j] = s;
        }
    for (size_t i = 0; i < N; i++) /* exactly symmetric */
        for (size_t j = 0; j < i; j++)
            a[i * N + j] = a[j * N + i];
    pca_t p;
    assert_int_equal(pca_init(&p, N, K), 0);
    assert_int_equal(pca_compute(&p, a), 0);
    compare_with_jacobi(&p, a, 1e-3);
    for (size_t i = 0; i < K; i++) {
        assert_true(fabs(p.values[i] - top[i]) <= 1e-12 * top[i] * 10);
        assert_true(fabs(fabs(dot(p.vectors + i * N, q + i * N, N)) - 1.0) < 1e-10);
    }
    assert_int_equal(p.computes, 1);
    pca_fini(&p);
    pca_fini(&p); /* twice: no-op */
    tfree(q, N * N);
    tfree(a, N * N);
}

static void test_pca_sample_covariance_and_correlation_match_jacobi(void **state)
{
    (void)state;
    enum { N = 30, T = 200, K = 4 };
    rng_state = 2;
    covariance_config_t cfg;
    covariance_config_default(&cfg, N, T);
    covariance_t c;
    assert_int_equal(covariance_init(&c, &cfg), 0);
    double row[N], beta[N];
    for (size_t j = 0; j < N; j++)
        beta[j] = 0.5 + rng_unit();
    for (size_t r = 0; r < 3 * T; r++) { /* a market factor and a sector factor */
        double f = 0.01 * rng_normal(), g = 0.006 * rng_normal();
        for (size_t j = 0; j < N; j++)
            row[j] = beta[j] * f + (j < N / 3 ? g : 0.0) + 0.008 * rng_normal();
        covariance_push(&c, row);
    }
    double *cov = talloc(N * N), *corr = talloc(N * N);
    assert_int_equal(covariance_matrix(&c, cov, true), 0);
    assert_int_equal(covariance_correlation(&c, corr, true), 0);
    pca_t p;
    assert_int_equal(pca_init(&p, N, K), 0);
    assert_int_equal(pca_compute(&p, cov), 0);
    compare_with_jacobi(&p, cov, 1e-3);
    assert_true(p.ratio[0] > 0.3); /* the market factor dominates */
    for (size_t j = 0; j < N; j++)
        assert_true(p.vectors[j] > 0.0); /* and loads positively everywhere */
    assert_int_equal(pca_compute(&p, corr), 0);
    compare_with_jacobi(&p, corr, 1e-3);
    assert_true(fabs(p.trace - N) < 1e-12);
    pca_fini(&p);
    covariance_fini(&c);
    tfree(cov, N * N);
    tfree(corr, N * N);
}

static void test_pca_one_factor_explained_variance_is_analytic(void **state)
{
    (void)state;
    enum { N = 50, K = 3 };
    rng_state = 3;
    double *a = talloc(N * N), beta[N];
    const double sm2 = 2.5e-4, s2 = 1e-4; /* market and idiosyncratic variance */
    double bb = 0.0;
    for (size_t j = 0; j < N; j++) {
        beta[j] = 0.3 + 1.4 * rng_unit();
        bb += beta[j] * beta[j];
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            a[i * N + j] = sm2 * beta[i] * beta[j] + (i == j ? s2 : 0.0);
    pca_t p;
    assert_int_equal(pca_init(&p, N, K), 0);
    assert_int_equal(pca_compute(&p, a), 0);
    double l1 = sm2 * bb + s2, trace = sm2 * bb + N * s2;
    assert_true(fabs(p.values[0] - l1) <= 1e-12 * l1);
    assert_true(fabs(p.ratio[0] - l1 / trace) <= 1e-12);
    for (size_t j = 0; j < N; j++)
        assert_true(fabs(p.vectors[j] - beta[j] / sqrt(bb)) < 1e-10);
    for (size_t i = 1; i < K; i++) /* the rest is idiosyncratic */
        assert_true(fabs(p.values[i] - s2) <= 1e-10 * l1);
    pca_fini(&p);

    /* Equicorrelation rho: lambda_1 = 1 + (n - 1) rho, v_1 = 1 / sqrt(n), ratio (1+(n-1)rho)/n. */
    const double rho = 0.35;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            a[i * N + j] = i == j ? 1.0 : rho;
    assert_int_equal(pca_init(&p, N, 1), 0);
    assert_int_equal(pca_compute(&p, a), 0);
    assert_true(fabs(p.values[0] - (1.0 + (N - 1) * rho)) <= 1e-12 * N);
    assert_true(fabs(p.ratio[0] - (1.0 + (N - 1) * rho) / N) <= 1e-12);
    for (size_t j = 0; j < N; j++)
        assert_true(fabs(p.vectors[j] - 1.0 / sqrt((double)N)) < 1e-10);
    pca_fini(&p);
    tfree(a, N * N);
}

static void test_pca_reads_upper_triangle_only_and_k_equals_n(void **state)
{
    (void)state;
    enum { N = 12 };
    rng_state = 4;
    double *a = talloc(N * N), *u = talloc(N * N);
    for (size_t i = 0; i < N; i++)
        for (size_t j = i; j < N; j++)
            a[i * N + j] = a[j * N + i] = rng_normal() + (i == j ? 4.0 : 0.0);
    memcpy(u, a, N * N * sizeof(double));
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < i; j++)
            u[i * N + j] = NAN; /* the lower triangle is not read */
    pca_t p, q;
    assert_int_equal(pca_init(&p, N, N), 0); /* every eigenpair */
    assert_int_equal(pca_init(&q, N, N), 0);
    assert_int_equal(pca_compute(&p, a), 0);
    assert_int_equal(pca_compute(&q, u), 0);
    for (size_t i = 0; i < N; i++)
        assert_true(p.values[i] == q.values[i]);
    for (size_t i = 0; i < N * N; i++)
        assert_true(p.vectors[i] == q.vectors[i]);
    compare_with_jacobi(&p, a, 1e-3);
    double sum = 0.0; /* all eigenvalues: their sum is the trace, ratios sum to 1 */
    for (size_t i = 0; i < N; i++)
        sum += p.ratio[i];
    assert_true(fabs(sum - 1.0) < 1e-12);
    pca_fini(&p);
    pca_fini(&q);
    tfree(a, N * N);
    tfree(u, N * N);
}

static void test_pca_refuses_bad_input(void **state)
{
    (void)state;
    enum { N = 8 };
    pca_t p;
    assert_int_equal(pca_init(&p, N, 0), -EINVAL);
    assert_int_equal(pca_init(&p, N, N + 1), -EINVAL);
    assert_int_equal(pca_init(&p, 0, 0), -EINVAL);
    assert_int_equal(pca_init(&p, 100000, 1), -EINVAL);
    pca_fini(&p); /* after a refused init: zeroed, no-op */
    double *a = talloc(N * N);
    for (size_t i = 0; i < N; i++)
        a[i * N + i] = (double)(i + 1);
    assert_int_equal(pca_init(&p, N, 2), 0);
    a[1 * N + 5] = NAN;
    assert_int_equal(pca_compute(&p, a), -EINVAL);
    a[1 * N + 5] = INFINITY;
    assert_int_equal(pca_compute(&p, a), -EINVAL);
    assert_int_equal(p.failures, 2);
    a[1 * N + 5] = 0.0;
    assert_int_equal(pca_compute(&p, a), 0); /* usable after a refusal */
    assert_true(fabs(p.values[0] - 8.0) < 1e-12 && fabs(p.values[1] - 7.0) < 1e-12);
    assert_true(fabs(p.vectors[7] - 1.0) < 1e-12 && fabs(p.vectors[N + 6] - 1.0) < 1e-12);
    for (size_t i = 0; i < N * N; i++) /* all-zero matrix: ratios 0, not NaN */
        a[i] = 0.0;
    assert_int_equal(pca_compute(&p, a), 0);
    assert_true(p.ratio[0] == 0.0 && p.values[0] == 0.0);
    pca_fini(&p);
    tfree(a, N * N);
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

static void test_pca_compute_allocates_nothing_after_seal(void **state)
{
    (void)state;
    enum { N = 64, K = 5 };
    rng_state = 5;
    double *a = talloc(N * N);
    pca_t p;
    assert_int_equal(pca_init(&p, N, K), 0);
    mem_seal();
    long vm_before = vm_size_kb();
    malloc_count_t before;
    malloc_count_get(&before);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < N; i++)
            for (size_t j = i; j < N; j++)
                a[i * N + j] = a[j * N + i] = rng_normal() + (i == j ? N : 0.0);
        assert_int_equal(pca_compute(&p, a), 0);
    }
    uint64_t allocs = malloc_count_allocs_since(&before);
    long vm_after = vm_size_kb();
    mem_snapshot_t s;
    mem_snapshot(&s);
    mem_unseal();
    assert_int_equal(allocs, 0);
    assert_true(vm_before > 0);
    /* valgrind maps its own memory as it goes; ASan included since covariance_blas_settle (see
     * test_covariance_steady_state_allocates_nothing: an OpenBLAS slot mapped after the seal) */
    if (!RUNNING_ON_VALGRIND)
        assert_int_equal(vm_after, vm_before);
    assert_int_equal(s.total.churn_allocs, 0);
    pca_fini(&p);
    tfree(a, N * N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: the process's first OpenBLAS calls are the ones in its init, so this test
         * also shows that the init warm-up leaves nothing for the steady state to set up. */
        cmocka_unit_test_setup_teardown(test_pca_compute_allocates_nothing_after_seal,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_pca_planted_spectrum_matches_jacobi, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_pca_sample_covariance_and_correlation_match_jacobi,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_pca_one_factor_explained_variance_is_analytic,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_pca_reads_upper_triangle_only_and_k_equals_n,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_pca_refuses_bad_input, reset_counters, check_no_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
