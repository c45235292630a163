/*
 * test_estimator: each estimator against a naive reference written here.
 *  - refresh: a hand-made sequence of trades of three symbols (prices per bar, some bars without
 *    a change, one price that moves away and back), sampled by brute force on the prices: a
 *    refresh time is the first bar end at which every symbol's close has changed in some bar since
 *    the last one; the returns are log(price now / price then); the naive sample covariance of
 *    those rows must equal the estimator's, and a column that is not needed never blocks a row.
 *  - subsample: the mean of the naive sample covariances of the K offset grids of K-bar returns
 *    (each built from the prices), with the whole day in the window and with a rolling window.
 *  - twoscale: (the subsample reference - the naive covariance of the window's fine rows) / (K -
 * 1), and with shrinkage subsample's intensity applied with the two-scales matrix's own rbar.
 *  - ledoit-wolf-block: the clusters cut from the fine rows are the generating sectors, and the
 *    intensity and shrunk matrix follow the paper's formulas toward the block means (loops).
 *  - Ledoit-Wolf: the intensity and the shrunk matrix against the paper's formulas written out
 *    with loops (pi_ij, theta, rho, gamma), for close and for subsample (pooled grid rows).
 *  - bad configurations refused; a steady state of push + correlation with every estimator and
 *    shrinkage that allocates nothing (malloc_count, mem/ churn counters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/estimator.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <math.h>
#include <string.h>

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
    return 0;
}

static uint64_t rng_state;

static double unif(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1p-53;
}

static double gauss(void)
{
    return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

/* Naive sample covariance (n - 1) of the m x n row-major rows y into c (full). */
static void naive_cov(const double *y, size_t m, size_t n, double *c)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double mi = 0, mj = 0, s = 0;
            for (size_t t = 0; t < m; t++) {
                mi += y[t * n + i];
                mj += y[t * n + j];
            }
            mi /= (double)m;
            mj /= (double)m;
            for (size_t t = 0; t < m; t++)
                s += (y[t * n + i] - mi) * (y[t * n + j] - mj);
            c[i * n + j] = s / (double)(m - 1);
        }
}

static void close_upper(const double *a, const double *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++) {
            double scale = sqrt(fabs(b[i * n + i] * b[j * n + j])) + 1e-300;
            if (fabs(a[i * n + j] - b[i * n + j]) > tol * scale)
                fail_msg("[%zu][%zu] = %.17g, naive %.17g", i, j, a[i * n + j], b[i * n + j]);
        }
}

static void cfg_for(estimator_config_t *c, size_t n, size_t window, estimator_kind_t kind,
                    unsigned grids, bool shrink)
{
    memset(c, 0, sizeof *c);
    covariance_config_default(&c->cov, n, window);
    c->cov.batch = 3; /* rows wait in batches: the computes must flush them */
    c->kind = kind;
    c->grids = grids;
    c->shrink = shrink;
}

/* ---- refresh ----------------------------------------------------------------------------- */

static void test_estimator_refresh_matches_brute_force(void **state)
{
    (void)state;
    /* Closing prices of 3 symbols over 16 bars (previous-tick: a bar without a trade repeats the
     * price), column 3 never trades (not needed). Symbol B moves away and back (bars 5, 6). */
    enum { B = 16, N = 4, S = 3 };
    static const double px[B][S] = {
        {10.0, 20.0, 30.0}, {10.1, 20.0, 30.0}, {10.1, 20.2, 30.0}, {10.1, 20.2, 30.3},
        {10.0, 20.2, 30.3}, {10.0, 20.4, 30.3}, {10.0, 20.2, 30.3}, {10.2, 20.2, 30.1},
        {10.2, 20.2, 30.1}, {10.2, 20.1, 30.1}, {10.3, 20.1, 30.0}, {10.3, 20.0, 30.0},
        {10.3, 20.0, 29.9}, {10.1, 19.9, 29.9}, {10.1, 19.9, 29.9}, {10.4, 20.3, 30.2}};
    /* brute force on the prices: refresh times at bar resolution */
    double rows[B][N];
    size_t nr = 0, ref = 0;
    bool moved[S] = {false};
    for (size_t b = 1; b < B; b++) {
        bool all = true;
        for (size_t s = 0; s < S; s++) {
            moved[s] = moved[s] || px[b][s] != px[b - 1][s];
            all = all && moved[s];
        }
        if (!all)
            continue;
        for (size_t s = 0; s < S; s++)
            rows[nr][s] = log(px[b][s] / px[ref][s]);
        rows[nr][3] = 0;
        nr++;
        ref = b;
        memset(moved, 0, sizeof moved);
    }
    assert_true(nr >= 4);
    double naive[N * N], got[N * N];
    naive_cov(&rows[0][0], nr, N, naive);

    estimator_config_t cfg;
    cfg_for(&cfg, N, 100, ESTIMATOR_REFRESH, 0, false);
    estimator_t e;
    assert_int_equal(estimator_init(&e, &cfg), 0);
    static const uint8_t need[N] = {1, 1, 1, 0};
    int sampled = 0;
    for (size_t b = 1; b < B; b++) {
        double r[N] = {0};
        for (size_t s = 0; s < S; s++)
            r[s] = log(px[b][s] / px[b - 1][s]);
        int rc = estimator_push(&e, r, need);
        assert_true(rc == 0 || rc == 1);
        sampled += rc;
    }
    assert_int_equal(sampled, (int)nr);
    assert_int_equal(e.rows_out, nr);
    assert_int_equal(estimator_covariance(&e, got, true), 0);
    close_upper(got, naive, N, 1e-12);
    /* every column needed: column 3 never moves, so no row is ever sampled */
    estimator_reset(&e);
    uint64_t before = e.rows_out;
    for (size_t b = 1; b < B; b++) {
        double r[N] = {0};
        for (size_t s = 0; s < S; s++)
            r[s] = log(px[b][s] / px[b - 1][s]);
        assert_int_equal(estimator_push(&e, r, NULL), 0);
    }
    assert_int_equal(e.rows_out, before);
    assert_int_equal(estimator_covariance(&e, got, true), -EAGAIN);
    estimator_fini(&e);
}

/* ---- subsample --------------------------------------------------------------------------- */

/* The mean over the K grids of the naive covariance of the grid's last `keep` K-bar returns
 * (all with keep = 0), each return log(p[t + K] / p[t]) from the price path p (m + 1 points). */
static void naive_subsample(const double *lp, size_t m, size_t n, unsigned K, size_t keep,
                            double *out)
{
    static double y[4096], c[64 * 64];
    memset(out, 0, n * n * sizeof(double));
    for (unsigned g = 0; g < K; g++) {
        size_t cnt = 0;
        for (size_t t = g; t + K <= m; t += K, cnt++)
            for (size_t j = 0; j < n; j++)
                y[cnt * n + j] = lp[(t + K) * n + j] - lp[t * n + j];
        size_t first = keep && cnt > keep ? cnt - keep : 0;
        naive_cov(y + first * n, cnt - first, n, c);
        for (size_t i = 0; i < n * n; i++)
            out[i] += c[i] / K;
    }
}

static void test_estimator_subsample_is_mean_of_grid_covariances(void **state)
{
    (void)state;
    enum { N = 5, M = 103 };
    static double lp[(M + 1) * N], r[M * N];
    rng_state = 42;
    for (size_t j = 0; j < N; j++)
        lp[j] = log(50.0 + 10 * (double)j);
    for (size_t t = 0; t < M; t++) {
        double mkt = gauss();
        for (size_t j = 0; j < N; j++) {
            r[t * N + j] = 0.01 * (0.6 * mkt + 0.8 * gauss());
            lp[(t + 1) * N + j] = lp[t * N + j] + r[t * N + j];
        }
    }
    const unsigned ks[] = {1, 2, 4, 7};
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        unsigned K = ks[q];
        double naive[N * N], got[N * N];
        /* the whole day in the window */
        estimator_config_t cfg;
        cfg_for(&cfg, N, 10000, ESTIMATOR_SUBSAMPLE, K, false);
        estimator_t e;
        assert_int_equal(estimator_init(&e, &cfg), 0);
        for (size_t t = 0; t < M; t++)
            assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
        assert_int_equal(e.rows_out, M - K + 1);
        assert_int_equal(estimator_covariance(&e, got, true), 0);
        naive_subsample(lp, M, N, K, 0, naive);
        close_upper(got, naive, N, 1e-10);
        estimator_fini(&e);
        /* a rolling window of 28 fine rows: 28 / K K-bar returns per grid */
        cfg_for(&cfg, N, 28, ESTIMATOR_SUBSAMPLE, K, false);
        assert_int_equal(estimator_init(&e, &cfg), 0);
        for (size_t t = 0; t < M; t++)
            assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
        assert_int_equal(estimator_covariance(&e, got, true), 0);
        naive_subsample(lp, M, N, K, 28 / K, naive);
        close_upper(got, naive, N, 1e-10);
        estimator_fini(&e);
    }
}

/* ---- two-scales ---------------------------------------------------------------------------- */

/* twoscale = (the K-grid average - the naive covariance of the fine rows in the window) / (K - 1),
 * whole day and rolling window; with shrinkage, the intensity is the K-grid average's (the same
 * as subsample's) and the target's rbar the mean correlation of the two-scales matrix. */
static void test_estimator_twoscale_matches_naive(void **state)
{
    (void)state;
    enum { N = 5, M = 103 };
    static double lp[(M + 1) * N], r[M * N];
    rng_state = 7;
    for (size_t j = 0; j < N; j++)
        lp[j] = log(40.0 + 10 * (double)j);
    for (size_t t = 0; t < M; t++) {
        double mkt = gauss();
        for (size_t j = 0; j < N; j++) {
            r[t * N + j] = 0.01 * (0.6 * mkt + 0.8 * gauss());
            lp[(t + 1) * N + j] = lp[t * N + j] + r[t * N + j];
        }
    }
    const unsigned ks[] = {2, 3, 5};
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        unsigned K = ks[q];
        const size_t windows[] = {10000, 28};
        for (size_t w = 0; w < 2; w++) {
            size_t W = windows[w], fine = W < M ? W : M;
            double sub[N * N], one[N * N], naive[N * N], got[N * N];
            estimator_config_t cfg;
            cfg_for(&cfg, N, W, ESTIMATOR_TWOSCALE, K, false);
            estimator_t e;
            assert_int_equal(estimator_init(&e, &cfg), 0);
            for (size_t t = 0; t < M; t++)
                assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
            assert_int_equal(estimator_covariance(&e, got, true), 0);
            naive_subsample(lp, M, N, K, W < M ? W / K : 0, sub);
            naive_cov(r + (M - fine) * N, fine, N, one);
            for (size_t i = 0; i < N * N; i++)
                naive[i] = (sub[i] - one[i]) / (K - 1);
            close_upper(got, naive, N, 1e-10);
            estimator_fini(&e);
            /* with shrinkage: subsample's intensity, the two-scales matrix's rbar */
            estimator_t s;
            cfg_for(&cfg, N, W, ESTIMATOR_SUBSAMPLE, K, true);
            assert_int_equal(estimator_init(&s, &cfg), 0);
            cfg_for(&cfg, N, W, ESTIMATOR_TWOSCALE, K, true);
            assert_int_equal(estimator_init(&e, &cfg), 0);
            for (size_t t = 0; t < M; t++) {
                assert_true(estimator_push(&s, r + t * N, NULL) >= 0);
                assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
            }
            assert_int_equal(estimator_covariance(&s, got, true), 0);
            assert_int_equal(estimator_covariance(&e, got, true), 0);
            assert_true(s.lw_delta >= 0 && s.lw_delta <= 1);
            assert_true(fabs(e.lw_delta - s.lw_delta) < 1e-12);
            print_message("    K = %u, window %zu: intensity %.4f\n", K, W, e.lw_delta);
            double rbar = 0;
            for (size_t i = 0; i < N; i++)
                for (size_t j = i + 1; j < N; j++)
                    rbar += naive[i * N + j] / sqrt(naive[i * N + i] * naive[j * N + j]);
            rbar /= N * (N - 1) / 2;
            assert_true(fabs(e.lw_rbar - rbar) < 1e-10);
            for (size_t i = 0; i < N; i++)
                for (size_t j = i + 1; j < N; j++)
                    naive[i * N + j] =
                        e.lw_delta * rbar * sqrt(naive[i * N + i] * naive[j * N + j]) +
                        (1 - e.lw_delta) * naive[i * N + j];
            close_upper(got, naive, N, 1e-10);
            estimator_fini(&e);
            estimator_fini(&s);
        }
    }
}

/* ---- Ledoit-Wolf ------------------------------------------------------------------------- */

/* The paper's formulas with loops over pooled rows y (P x n, each centred by its own grid's
 * mean) and the estimate s (full n x n); T the sample size of the intensity. Returns delta and
 * writes rbar. */
static double naive_lw(const double *y, size_t P, size_t n, const double *s, double T,
                       double *rbar_out)
{
    double rbar = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++, pairs++)
            rbar += s[i * n + j] / sqrt(s[i * n + i] * s[j * n + j]);
    rbar /= (double)pairs;
    double pi = 0, rho = 0, gamma = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double pij = 0, tii = 0, tjj = 0;
            for (size_t t = 0; t < P; t++) {
                double yi = y[t * n + i], yj = y[t * n + j];
                double d = yi * yj - s[i * n + j];
                pij += d * d;
                tii += (yi * yi - s[i * n + i]) * d;
                tjj += (yj * yj - s[j * n + j]) * d;
            }
            pij /= (double)P;
            tii /= (double)P;
            tjj /= (double)P;
            pi += pij;
            if (i == j) {
                rho += pij;
                continue;
            }
            double sii = s[i * n + i], sjj = s[j * n + j];
            rho += rbar / 2 * (sqrt(sjj / sii) * tii + sqrt(sii / sjj) * tjj);
            double f = rbar * sqrt(sii * sjj);
            gamma += (f - s[i * n + j]) * (f - s[i * n + j]);
        }
    double d = (pi - rho) / gamma / T;
    *rbar_out = rbar;
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

static void test_estimator_ledoit_wolf_matches_formula(void **state)
{
    (void)state;
    enum { N = 6, M = 40 };
    static double lp[(M + 1) * N], r[M * N], y[M * N];
    rng_state = 7;
    for (size_t t = 0; t < M; t++) {
        double mkt = gauss(), sec[2] = {gauss(), gauss()};
        for (size_t j = 0; j < N; j++) {
            r[t * N + j] = 0.01 * (0.5 * mkt + 0.5 * sec[j % 2] + 0.7 * gauss()) * (1 + 0.2 * j);
            lp[(t + 1) * N + j] = lp[t * N + j] + r[t * N + j];
        }
    }
    const unsigned ks[] = {1, 3};
    for (size_t q = 0; q < 2; q++) {
        unsigned K = ks[q];
        /* the plain estimate and the pooled, grid-centred rows */
        double s[N * N], want[N * N], got[N * N];
        naive_subsample(lp, M, N, K, 0, s);
        size_t P = 0;
        for (unsigned g = 0; g < K; g++) {
            size_t first = P;
            for (size_t t = g; t + K <= M; t += K, P++)
                for (size_t j = 0; j < N; j++)
                    y[P * N + j] = lp[(t + K) * N + j] - lp[t * N + j];
            for (size_t j = 0; j < N; j++) {
                double mu = 0;
                for (size_t t = first; t < P; t++)
                    mu += y[t * N + j];
                mu /= (double)(P - first);
                for (size_t t = first; t < P; t++)
                    y[t * N + j] -= mu;
            }
        }
        double T = K == 1 ? (double)P : 1.5 * (double)P / K, rbar;
        double delta = naive_lw(y, P, N, s, T, &rbar);
        print_message("    K = %u: Ledoit-Wolf intensity %.4f toward rbar %.4f (%zu rows)\n", K,
                      delta, rbar, P);
        assert_true(delta > 0.01 && delta < 0.99); /* not clamped: the formula is exercised */
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                want[i * N + j] = i == j ? s[i * N + i]
                                         : delta * rbar * sqrt(s[i * N + i] * s[j * N + j]) +
                                               (1 - delta) * s[i * N + j];
        estimator_config_t cfg;
        cfg_for(&cfg, N, 1000, K == 1 ? ESTIMATOR_CLOSE : ESTIMATOR_SUBSAMPLE, K, true);
        estimator_t e;
        assert_int_equal(estimator_init(&e, &cfg), 0);
        for (size_t t = 0; t < M; t++)
            assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
        assert_int_equal(estimator_covariance(&e, got, true), 0);
        assert_true(fabs(e.lw_delta - delta) < 1e-9);
        assert_true(fabs(e.lw_rbar - rbar) < 1e-12);
        close_upper(got, want, N, 1e-10);
        /* in correlation terms: delta rbar + (1 - delta) r_ij */
        double corr[N * N];
        assert_int_equal(estimator_correlation(&e, corr, true), 0);
        for (size_t i = 0; i < N; i++)
            for (size_t j = i + 1; j < N; j++) {
                double rij = s[i * N + j] / sqrt(s[i * N + i] * s[j * N + j]);
                assert_true(fabs(corr[i * N + j] - (delta * rbar + (1 - delta) * rij)) < 1e-12);
            }
        estimator_fini(&e);
    }
}

/* The paper's formulas again, toward a block-constant target: tc[a][b] the mean sample
 * correlation over the pairs of blocks a and b (lab), written out with loops. Returns delta. */
static double naive_lw_block(const double *y, size_t P, size_t n, const double *s, double T,
                             const unsigned *lab, unsigned nb, double *tc)
{
    double cnt[16 * 16] = {0};
    for (unsigned a = 0; a < nb * nb; a++)
        tc[a] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j) {
                tc[lab[i] * nb + lab[j]] += s[i * n + j] / sqrt(s[i * n + i] * s[j * n + j]);
                cnt[lab[i] * nb + lab[j]] += 1;
            }
    for (unsigned a = 0; a < nb * nb; a++)
        tc[a] /= cnt[a];
    double pi = 0, rho = 0, gamma = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double pij = 0, tii = 0, tjj = 0;
            for (size_t t = 0; t < P; t++) {
                double yi = y[t * n + i], yj = y[t * n + j];
                double d = yi * yj - s[i * n + j];
                pij += d * d;
                tii += (yi * yi - s[i * n + i]) * d;
                tjj += (yj * yj - s[j * n + j]) * d;
            }
            pi += pij / (double)P;
            if (i == j) {
                rho += pij / (double)P;
                continue;
            }
            double sii = s[i * n + i], sjj = s[j * n + j], t = tc[lab[i] * nb + lab[j]];
            rho += t / 2 * (sqrt(sjj / sii) * tii + sqrt(sii / sjj) * tjj) / (double)P;
            double f = t * sqrt(sii * sjj);
            gamma += (f - s[i * n + j]) * (f - s[i * n + j]);
        }
    double d = (pi - rho) / gamma / T;
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

/* ledoit-wolf-block: three sectors (column j in sector j % 3, loadings unequal), the clusters the
 * estimator cuts from the fine rows' MST are the sectors (same partition), and the shrunk matrix
 * is the paper's formula toward the block means, for close and for subsample (K = 2). */
static void test_estimator_ledoit_wolf_block_matches_formula(void **state)
{
    (void)state;
    enum { N = 12, M = 240, NB = 3 };
    static double lp[(M + 1) * N], r[M * N], y[M * N];
    rng_state = 11;
    for (size_t t = 0; t < M; t++) {
        double mkt = gauss(), sec[NB] = {gauss(), gauss(), gauss()};
        for (size_t j = 0; j < N; j++) {
            r[t * N + j] =
                0.01 * (0.4 * mkt + (0.3 + 0.12 * (double)j) * sec[j % NB] + 0.5 * gauss());
            lp[(t + 1) * N + j] = lp[t * N + j] + r[t * N + j];
        }
    }
    unsigned sector[N];
    for (size_t j = 0; j < N; j++)
        sector[j] = (unsigned)(j % NB);
    const unsigned ks[] = {1, 2};
    for (size_t q = 0; q < 2; q++) {
        unsigned K = ks[q];
        double s[N * N], want[N * N], got[N * N], tc[NB * NB];
        naive_subsample(lp, M, N, K, 0, s);
        size_t P = 0;
        for (unsigned g = 0; g < K; g++) {
            size_t first = P;
            for (size_t t = g; t + K <= M; t += K, P++)
                for (size_t j = 0; j < N; j++)
                    y[P * N + j] = lp[(t + K) * N + j] - lp[t * N + j];
            for (size_t j = 0; j < N; j++) {
                double mu = 0;
                for (size_t t = first; t < P; t++)
                    mu += y[t * N + j];
                mu /= (double)(P - first);
                for (size_t t = first; t < P; t++)
                    y[t * N + j] -= mu;
            }
        }
        double T = K == 1 ? (double)P : 1.5 * (double)P / K;
        double delta = naive_lw_block(y, P, N, s, T, sector, NB, tc);
        print_message("    K = %u: block Ledoit-Wolf intensity %.4f (%zu rows)\n", K, delta, P);
        assert_true(delta > 0.01 && delta < 0.99); /* not clamped: the formula is exercised */
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                want[i * N + j] = i == j ? s[i * N + i]
                                         : delta * tc[sector[i] * NB + sector[j]] *
                                                   sqrt(s[i * N + i] * s[j * N + j]) +
                                               (1 - delta) * s[i * N + j];
        estimator_config_t cfg;
        cfg_for(&cfg, N, 1000, K == 1 ? ESTIMATOR_CLOSE : ESTIMATOR_SUBSAMPLE, K, true);
        cfg.block = true;
        cfg.clusters = NB;
        cfg.min_cluster = 2;
        estimator_t e;
        assert_int_equal(estimator_init(&e, &cfg), 0);
        for (size_t t = 0; t < M; t++)
            assert_true(estimator_push(&e, r + t * N, NULL) >= 0);
        assert_int_equal(estimator_covariance(&e, got, true), 0);
        /* the same partition as the sectors */
        assert_int_equal(e.nb, NB);
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++)
                assert_int_equal(e.lab[i] == e.lab[j], sector[i] == sector[j]);
        assert_true(fabs(e.lw_delta - delta) < 1e-9);
        close_upper(got, want, N, 1e-10);
        estimator_fini(&e);
    }
    /* block without shrinkage, or with no cluster, is refused */
    estimator_config_t cfg;
    estimator_t e;
    cfg_for(&cfg, N, 100, ESTIMATOR_CLOSE, 1, false);
    cfg.block = true;
    cfg.clusters = NB;
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, N, 100, ESTIMATOR_CLOSE, 1, true);
    cfg.block = true;
    cfg.clusters = 0;
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
}

/* ---- configuration and steady state ------------------------------------------------------ */

static void test_estimator_bad_config_refused(void **state)
{
    (void)state;
    estimator_config_t cfg;
    estimator_t e;
    cfg_for(&cfg, 4, 20, ESTIMATOR_SUBSAMPLE, 0, false);
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, 4, 20, ESTIMATOR_SUBSAMPLE, ESTIMATOR_GRIDS_MAX + 1, false);
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, 4, 20, ESTIMATOR_SUBSAMPLE, 11, false); /* window < 2K */
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, 4, 20, ESTIMATOR_TWOSCALE, 1, false); /* two scales need K >= 2 */
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, 4, 20, ESTIMATOR_CLOSE, 0, true);
    cfg.cov.mode = COVARIANCE_EWMA;
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    cfg_for(&cfg, 4, 20, (estimator_kind_t)7, 0, false);
    assert_int_equal(estimator_init(&e, &cfg), -EINVAL);
    estimator_fini(&e); /* zeroed by the failed init: a no-op */
    cfg_for(&cfg, 4, 20, ESTIMATOR_CLOSE, 0, false);
    assert_int_equal(estimator_init(&e, &cfg), 0);
    double bad[4] = {0, NAN, 0, 0};
    assert_int_equal(estimator_push(&e, bad, NULL), -EINVAL);
    assert_int_equal(e.rejected, 1);
    estimator_fini(&e);
}

static void test_estimator_steady_state_allocates_nothing(void **state)
{
    (void)state;
    enum { N = 40, W = 120, M = 900 };
    static double rows[M * N], corr[N * N];
    rng_state = 99;
    for (size_t i = 0; i < M * N; i++)
        rows[i] = 0.001 * gauss();
    static const struct {
        estimator_kind_t kind;
        unsigned k;
        bool shrink, block;
    } kinds[] = {{ESTIMATOR_CLOSE, 1, false, false},    {ESTIMATOR_CLOSE, 1, true, false},
                 {ESTIMATOR_REFRESH, 1, false, false},  {ESTIMATOR_REFRESH, 1, true, false},
                 {ESTIMATOR_SUBSAMPLE, 5, true, false}, {ESTIMATOR_SUBSAMPLE, 4, false, false},
                 {ESTIMATOR_TWOSCALE, 5, true, false},  {ESTIMATOR_TWOSCALE, 3, false, false},
                 {ESTIMATOR_TWOSCALE, 4, true, true},   {ESTIMATOR_CLOSE, 1, true, true},
                 {ESTIMATOR_REFRESH, 1, true, true}};
    enum { NK = sizeof kinds / sizeof kinds[0] };
    estimator_t e[NK];
    for (size_t q = 0; q < NK; q++) {
        estimator_config_t cfg;
        cfg_for(&cfg, N, W, kinds[q].kind, kinds[q].k, kinds[q].shrink);
        cfg.cov.batch = 16;
        cfg.block = kinds[q].block;
        cfg.clusters = 4;
        cfg.min_cluster = 3;
        assert_int_equal(estimator_init(&e[q], &cfg), 0);
    }
    mem_seal();
    malloc_count_t before;
    malloc_count_get(&before);
    size_t computes = 0;
    for (size_t t = 0; t < M; t++)
        for (size_t q = 0; q < NK; q++) {
            assert_true(estimator_push(&e[q], rows + t * N, NULL) >= 0);
            if (t % 50 == 49 && estimator_correlation(&e[q], corr, true) == 0)
                computes++;
            if (t == M / 2)
                estimator_reset(&e[q]);
        }
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_snapshot_t s;
    mem_snapshot(&s);
    mem_unseal();
    assert_true(computes > 50);
    assert_int_equal(allocs, 0);
    assert_int_equal(s.total.churn_allocs, 0);
    for (size_t q = 0; q < NK; q++) {
        if (kinds[q].shrink)
            assert_true(e[q].lw_delta >= 0 && e[q].lw_delta <= 1);
        estimator_fini(&e[q]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_estimator_steady_state_allocates_nothing,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_refresh_matches_brute_force, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_subsample_is_mean_of_grid_covariances,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_twoscale_matches_naive, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_ledoit_wolf_matches_formula, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_ledoit_wolf_block_matches_formula,
                                        reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_estimator_bad_config_refused, reset_counters,
                                        check_no_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
