/*
 * covariance: see covariance.h for the model. The ring holds T rounded up to whole batches, plus
 * one batch, so that a batch being filled never overwrites a window row and, while commits are
 * full batches, no batch straddles the end of the ring: window rows run from head for nwin rows,
 * the batch follows them, all modulo cap. A batch or the window may wrap around the end of the
 * ring, so every dsyrk over ring rows is made on at most two contiguous segments (the first one
 * with the caller's beta, the second with beta = 1). S lives in the upper triangle of a row-major
 * n x n matrix (cblas row-major, Upper, Trans: S = alpha A^T A + beta S with A a k x n block of
 * rows). Per-column nonzero counts are exact integers under adds and removals, so a column of
 * carried prices (all returns 0 in the window) is recognised exactly even though S may keep
 * rounding residue from rows that left. All buffers belong to the covariance_t; the only
 * memory OpenBLAS uses is its own buffer pool, set up by the warm-up in covariance_init once
 * covariance_blas_settle has made every OpenBLAS worker take its own buffer.
 */
#include "analytics/covariance.h"

#include "base/hints.h"
#include "mem/mem.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* A column whose centred sum of squares is at most this fraction of its raw sum of squares is
 * treated as constant (zero variance): below it the sample formula is rounding noise. */
#define COV_CONST_REL 1e-12

enum {
    COV_BUF_ROWS,
    COV_BUF_S,
    COV_BUF_COLSUM,
    COV_BUF_SCRATCH,
    COV_BUF_SC,
    COV_BUF_NNZ,
    COV_BUF_ZC,
    COV_BUF_COUNT
};

void covariance_config_default(covariance_config_t *cfg, size_t nsym, size_t window)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->nsym = nsym;
    cfg->window = window;
    cfg->batch = window < 64 ? (window ? window : 1) : 64;
    cfg->recompute_every = 64;
    cfg->lambda = 0.94;
    cfg->mode = COVARIANCE_ROLLING;
    cfg->blas_threads = 1;
}

/* OpenBLAS's pthreads build starts its worker threads from its library constructor. Each worker,
 * when it first runs, takes a buffer from OpenBLAS's shared pool (one 128 MiB mapping per slot,
 * mapped on the slot's first use) and keeps it; every BLAS call of ours takes the lowest free slot
 * for the call's length. A worker that first runs after our warm-up takes the slot the warm-up
 * mapped, and our next call maps a new one: 128 MiB mapped after the seal (test_covariance's VmSize
 * check saw it in 15 of 120 runs beside two busy loops). So before any warm-up one dgemv is split
 * over every pool thread: OpenBLAS returns from a threaded call only when each worker has run its
 * part, so from then on each one holds its buffer and ours is always the same slot. Runs once per
 * pool width (a later wider covariance_blas_threads starts more workers, and settles them too). */
int covariance_blas_settle(void)
{
    static _Atomic int settled; /* widest pool known to hold its buffers */
    const int width = openblas_get_num_threads();
    if (width <= atomic_load(&settled))
        return 0;
    /* dgemv is split over all threads when m * n >= 9216 (OpenBLAS's threshold: 2304 x its
     * multithread threshold 4), each thread getting >= 4 rows: 16 rows a thread, >= 96 x 96 */
    const size_t m = width > 6 ? (size_t)width * 16 : 96;
    const size_t bytes = (m * m + 2 * m) * sizeof(double);
    double *a = mem_zalloc(MEM_TAG_ANALYTICS, bytes);
    if (!a)
        return -ENOMEM;
    cblas_dgemv(CblasColMajor, CblasNoTrans, (int)m, (int)m, 1.0, a, (int)m, a + m * m, 1, 0.0,
                a + m * m + m, 1);
    mem_free(MEM_TAG_ANALYTICS, a, bytes);
    atomic_store(&settled, width);
    return 0;
}

int covariance_blas_threads(int n)
{
    covariance_blas_settle(); /* the pool as the library started it, before narrowing it */
    if (n >= 1) {
        openblas_set_num_threads(n);
        covariance_blas_settle();
    }
    return openblas_get_num_threads();
}

/* Byte sizes of the buffers, from n, cap and b; 0 on overflow of any. */
static int buf_sizes(size_t n, size_t cap, size_t b, bool ewma, size_t out[COV_BUF_COUNT])
{
    size_t nn, rows, scr;
    if (__builtin_mul_overflow(n, n, &nn) || __builtin_mul_overflow(nn, sizeof(double), &nn) ||
        __builtin_mul_overflow(cap, n, &rows) ||
        __builtin_mul_overflow(rows, sizeof(double), &rows) ||
        __builtin_mul_overflow(ewma ? b : 1, n, &scr) ||
        __builtin_mul_overflow(scr, sizeof(double), &scr))
        return -EINVAL;
    out[COV_BUF_ROWS] = rows;
    out[COV_BUF_S] = nn;
    out[COV_BUF_COLSUM] = n * sizeof(double);
    out[COV_BUF_SCRATCH] = scr;
    out[COV_BUF_SC] = b * sizeof(double);
    out[COV_BUF_NNZ] = n * sizeof(uint32_t);
    out[COV_BUF_ZC] = n;
    return 0;
}

/* The buffer of each COV_BUF_ index. */
static void buf_slots(covariance_t *c, void **out[COV_BUF_COUNT])
{
    out[COV_BUF_ROWS] = (void **)&c->rows;
    out[COV_BUF_S] = (void **)&c->s;
    out[COV_BUF_COLSUM] = (void **)&c->colsum;
    out[COV_BUF_SCRATCH] = (void **)&c->scratch;
    out[COV_BUF_SC] = (void **)&c->ewma_sc;
    out[COV_BUF_NNZ] = (void **)&c->nnz;
    out[COV_BUF_ZC] = (void **)&c->zc;
}

void covariance_fini(covariance_t *c)
{
    if (!c->s && !c->rows)
        return;
    size_t sz[COV_BUF_COUNT];
    void **slots[COV_BUF_COUNT];
    buf_slots(c, slots);
    if (buf_sizes(c->n, c->cap, c->cfg.batch, c->cfg.mode == COVARIANCE_EWMA, sz) == 0)
        mem_free_group(MEM_TAG_ANALYTICS, slots, sz, COV_BUF_COUNT);
    memset(c, 0, sizeof *c);
}

/* dsyrk over count ring rows starting at ring index start: S = alpha A^T A + beta S. */
static void syrk_ring(covariance_t *c, size_t start, size_t count, double alpha, double beta)
{
    int n = (int)c->n;
    size_t first = c->cap - start < count ? c->cap - start : count;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, (int)first, alpha, c->rows + start * c->n,
                n, beta, c->s, n);
    if (count > first)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, (int)(count - first), alpha, c->rows,
                    n, 1.0, c->s, n);
}

/* Add (sign = +1) or remove (sign = -1) count ring rows from the column sums and counts. */
static void sums_ring(covariance_t *c, size_t start, size_t count, int sign)
{
    size_t n = c->n;
    for (size_t r = 0; r < count; r++) {
        size_t idx = start + r;
        if (idx >= c->cap)
            idx -= c->cap;
        const double *x = c->rows + idx * n;
        if (sign > 0) {
            for (size_t j = 0; j < n; j++) {
                c->colsum[j] += x[j];
                c->nnz[j] += x[j] != 0.0;
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                c->colsum[j] -= x[j];
                c->nnz[j] -= x[j] != 0.0;
            }
        }
    }
}

void covariance_recompute(covariance_t *c)
{
    if (c->cfg.mode != COVARIANCE_ROLLING)
        return;
    size_t n = c->n;
    memset(c->colsum, 0, n * sizeof(double));
    memset(c->nnz, 0, n * sizeof(uint32_t));
    if (c->nwin == 0) {
        memset(c->s, 0, n * n * sizeof(double));
    } else {
        syrk_ring(c, c->head, c->nwin, 1.0, 0.0);
        sums_ring(c, c->head, c->nwin, +1);
    }
    c->recomputes++;
}

static void commit_ewma(covariance_t *c)
{
    size_t k = c->npend, n = c->n, b = c->cfg.batch;
    /* Row j of a batch of k gets weight (1 - lambda) lambda^(k-1-j) = ewma_sc[b-k+j]^2. */
    for (size_t j = 0; j < k; j++) {
        double w = c->ewma_sc[b - k + j];
        const double *x = c->rows + j * n;
        double *y = c->scratch + j * n;
        for (size_t i = 0; i < n; i++)
            y[i] = w * x[i];
    }
    double lk = pow(c->cfg.lambda, (double)k);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)k, 1.0, c->scratch, (int)n, lk,
                c->s, (int)n);
    c->ewma_w = lk * c->ewma_w + (1.0 - lk);
    c->nwin = c->nwin > SIZE_MAX - k ? SIZE_MAX : c->nwin + k;
}

static void commit_rolling(covariance_t *c)
{
    size_t k = c->npend, T = c->cfg.window;
    size_t start = c->head + c->nwin;
    if (start >= c->cap)
        start -= c->cap;
    size_t evict = c->nwin + k > T ? c->nwin + k - T : 0;
    bool full = c->cfg.recompute_every && (c->batches + 1) % c->cfg.recompute_every == 0;
    if (!full) {
        syrk_ring(c, start, k, 1.0, 1.0);
        sums_ring(c, start, k, +1);
        if (evict) {
            syrk_ring(c, c->head, evict, -1.0, 1.0);
            sums_ring(c, c->head, evict, -1);
        }
    }
    c->head += evict;
    if (c->head >= c->cap)
        c->head -= c->cap;
    c->nwin += k - evict;
    c->evicted += evict;
    if (full) {
        c->npend = 0;
        covariance_recompute(c);
    }
}

size_t covariance_flush(covariance_t *c)
{
    size_t k = c->npend;
    if (k == 0)
        return 0;
    if (c->cfg.mode == COVARIANCE_EWMA)
        commit_ewma(c);
    else
        commit_rolling(c);
    c->npend = 0;
    c->batches++;
    return k;
}

int covariance_push(covariance_t *c, const double *row)
{
    size_t n = c->n;
    /* x * 0 is NaN exactly when x is NaN or infinite; the sum stays 0 otherwise. */
    double probe = 0.0;
    for (size_t j = 0; j < n; j++)
        probe += row[j] * 0.0;
    if (unlikely(isnan(probe))) {
        c->rejected++;
        return -EINVAL;
    }
    size_t slot;
    if (c->cfg.mode == COVARIANCE_EWMA) {
        slot = c->npend;
    } else {
        slot = c->head + c->nwin + c->npend;
        if (slot >= c->cap)
            slot -= c->cap;
    }
    memcpy(c->rows + slot * n, row, n * sizeof(double));
    c->npend++;
    c->pushed++;
    if (c->npend < c->cfg.batch)
        return 0;
    covariance_flush(c);
    return 1;
}

void covariance_reset(covariance_t *c)
{
    size_t n = c->n;
    memset(c->s, 0, n * n * sizeof(double));
    memset(c->colsum, 0, n * sizeof(double));
    memset(c->nnz, 0, n * sizeof(uint32_t));
    c->head = c->nwin = c->npend = 0;
    c->ewma_w = 0.0;
}

size_t covariance_rows(const covariance_t *c)
{
    return c->nwin;
}

double covariance_ewma_weight(const covariance_t *c)
{
    return c->cfg.mode == COVARIANCE_EWMA ? c->ewma_w : 0.0;
}

void covariance_mirror(double *m, size_t n)
{
    enum { TILE = 64 };
    for (size_t ib = 0; ib < n; ib += TILE) {
        size_t ie = ib + TILE < n ? ib + TILE : n;
        for (size_t jb = ib; jb < n; jb += TILE) {
            size_t je = jb + TILE < n ? jb + TILE : n;
            for (size_t i = ib; i < ie; i++)
                for (size_t j = (jb > i + 1 ? jb : i + 1); j < je; j++)
                    m[j * n + i] = m[i * n + j];
        }
    }
}

int covariance_matrix(covariance_t *c, double *out, bool full)
{
    size_t n = c->n;
    if (c->cfg.mode == COVARIANCE_EWMA) {
        if (c->nwin == 0)
            return -EAGAIN;
        for (size_t i = 0; i < n; i++)
            memcpy(out + i * n + i, c->s + i * n + i, (n - i) * sizeof(double));
    } else {
        size_t rows = c->nwin;
        if (rows < 2)
            return -EAGAIN;
        double inv_n = 1.0 / (double)rows, inv_n1 = 1.0 / (double)(rows - 1);
        double *mu = c->scratch;
        for (size_t i = 0; i < n; i++) {
            mu[i] = c->colsum[i] * inv_n;
            double sii = c->s[i * n + i];
            double centred = sii - c->colsum[i] * mu[i];
            c->zc[i] = c->nnz[i] == 0 || centred <= COV_CONST_REL * sii;
        }
        for (size_t i = 0; i < n; i++) {
            const double *srow = c->s + i * n;
            double *orow = out + i * n;
            if (c->zc[i]) {
                memset(orow + i, 0, (n - i) * sizeof(double));
                continue;
            }
            double ci = c->colsum[i];
            for (size_t j = i; j < n; j++)
                orow[j] = (srow[j] - ci * mu[j]) * inv_n1;
            for (size_t j = i; j < n; j++)
                if (c->zc[j])
                    orow[j] = 0.0;
        }
    }
    if (full)
        covariance_mirror(out, n);
    return 0;
}

void covariance_to_correlation(const double *cov, double *corr, size_t n, bool full)
{
    if (n == 0)
        return;
    /* D^-1/2 goes into the last row of corr: its strictly lower part is not part of the upper
     * result, and its diagonal element is the last one read from cov. Contiguous, so the inner
     * loop below streams. */
    double *d = corr + (n - 1) * n;
    for (size_t i = 0; i < n; i++) {
        double v = cov[i * n + i];
        d[i] = (v > 0.0 && isfinite(v)) ? 1.0 / sqrt(v) : 0.0;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const double *crow = cov + i * n;
        double *orow = corr + i * n;
        double di = d[i];
        for (size_t j = i + 1; j < n; j++) {
            double r = crow[j] * di * d[j];
            r = r > 1.0 ? 1.0 : r;
            orow[j] = r < -1.0 ? -1.0 : r;
        }
    }
    for (size_t i = 0; i < n; i++)
        corr[i * n + i] = 1.0;
    if (full)
        covariance_mirror(corr, n);
}

int covariance_correlation(covariance_t *c, double *out, bool full)
{
    int rc = covariance_matrix(c, out, false);
    if (rc == 0)
        covariance_to_correlation(out, out, c->n, full);
    return rc;
}

int covariance_init(covariance_t *c, const covariance_config_t *cfg)
{
    memset(c, 0, sizeof *c);
    bool ewma = cfg->mode == COVARIANCE_EWMA;
    size_t n = cfg->nsym, T = cfg->window, b = cfg->batch;
    if (n == 0 || n > INT_MAX || b == 0 || b > INT_MAX || cfg->blas_threads < 0 ||
        (cfg->mode != COVARIANCE_ROLLING && !ewma))
        return -EINVAL;
    if (ewma && !(cfg->lambda > 0.0 && cfg->lambda < 1.0))
        return -EINVAL;
    if (!ewma && (T < 2 || b > T || T > (size_t)INT_MAX / 2 || T > UINT32_MAX))
        return -EINVAL;
    /* Window rounded up to whole batches, plus one batch: full batches never straddle the end
     * of the ring, so each commit is one dsyrk per direction. */
    size_t cap = ewma ? b : (T + b - 1) / b * b + b;
    size_t sz[COV_BUF_COUNT];
    if (buf_sizes(n, cap, b, ewma, sz) != 0)
        return -EINVAL;
    c->cfg = *cfg;
    c->n = n;
    c->cap = cap;
    void **slots[COV_BUF_COUNT];
    buf_slots(c, slots);
    if (mem_alloc_group(MEM_TAG_ANALYTICS, slots, sz, COV_BUF_COUNT, MEM_CACHE_LINE,
                        MEM_ZERO | MEM_PREFAULT) != 0) {
        memset(c, 0, sizeof *c);
        return -ENOMEM;
    }
    if (ewma) {
        for (size_t j = 0; j < b; j++)
            c->ewma_sc[j] = sqrt((1.0 - cfg->lambda) * pow(cfg->lambda, (double)(b - 1 - j)));
    }
    if (cfg->blas_threads > 0)
        covariance_blas_threads(cfg->blas_threads);
    if (covariance_blas_settle() != 0) {
        covariance_fini(c);
        return -ENOMEM;
    }
    /* Warm-up on the zeroed ring, in the shapes of the steady state (a batch; the whole window,
     * as a recompute and wrapped removals do), so OpenBLAS sets up its buffers now. S stays 0. */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)b, 1.0, c->rows, (int)n, 1.0,
                c->s, (int)n);
    if (!ewma)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)T, -1.0, c->rows, (int)n,
                    1.0, c->s, (int)n);
    return 0;
}
