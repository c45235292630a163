/*
 * covariance: rolling (or exponentially weighted) covariance and correlation of the returns of
 * N symbols, one row of returns per bar close, with OpenBLAS cblas_dsyrk.
 *
 * The caller builds each row: the log return of every tracked symbol over the bar that just
 * closed. Missing-data policy (applied by the caller, assumed here): a symbol without a trade
 * in a bar carries its last price, so its return for that bar is exactly 0; a symbol not yet
 * priced also enters 0. A row holding NaN or an infinity is refused (-EINVAL, counted), never
 * stored. Rolling mode keeps the last T rows in a ring of about T + b rows (T rounded up to
 * whole batches, plus one batch) allocated at init. Rows
 * are buffered into batches of b: when a batch is complete, one dsyrk with alpha = +1 adds the
 * incoming rows to S = sum x x^T (upper triangle only, half the work of dgemm) and one with
 * alpha = -1 removes the rows leaving the window; column sums are kept alongside, and the
 * covariance is (S - n mu mu^T) / (n - 1). The matrices therefore describe the window as of the
 * last complete batch (up to b - 1 newer rows wait in the batch; covariance_flush() commits
 * them early). Every R batches (config) S and the sums are recomputed from the window rows
 * with one dsyrk instead, which bounds rounding drift. The sample formula cancels when a
 * column's mean is large against its spread: fine for returns, not meant for prices. A column
 * with no nonzero entry in the window, or whose centred sum of squares is at most 1e-12 of its
 * raw sum of squares (a constant column, up to rounding), is reported with variance and
 * covariances exactly 0. EWMA mode (RiskMetrics) keeps C_t = lambda C_{t-1} + (1 - lambda)
 * x_t x_t^T from C_0 = 0, returns taken as zero-mean, no bias correction (the weights sum to
 * 1 - lambda^t, see covariance_ewma_weight()); a batch of k rows x_0..x_{k-1} is applied as
 * C <- lambda^k C + sum_j (1 - lambda) lambda^(k-1-j) x_j x_j^T, one dsyrk with beta = lambda^k
 * on the rows scaled by sqrt((1 - lambda) lambda^(k-1-j)), which equals k single-row steps.
 * Correlation is D^-1/2 C D^-1/2 clamped to [-1, 1]; a zero-variance column gets correlation 0
 * off the diagonal and 1 on it. Matrices are n x n row-major doubles; the upper triangle is the
 * result, the lower one is filled (mirrored) only when asked for. Memory: everything is
 * allocated by covariance_init (MEM_TAG_ANALYTICS, prefaulted) and owned by the covariance_t;
 * init also pins OpenBLAS's thread count (process-wide) and makes a warm-up dsyrk of the real
 * shapes so that OpenBLAS's buffer pool is set up before the seal; nothing here allocates
 * afterwards. One thread (the cross-section thread) owns a covariance_t; nothing is
 * thread-safe.
 */
#ifndef TICKCORE_ANALYTICS_COVARIANCE_H
#define TICKCORE_ANALYTICS_COVARIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum covariance_mode {
    COVARIANCE_ROLLING = 0, /* sample covariance of the last T rows */
    COVARIANCE_EWMA = 1,    /* exponentially weighted (RiskMetrics), no window */
} covariance_mode_t;

typedef struct covariance_config {
    size_t nsym;              /* N: columns (tracked symbols), >= 1 */
    size_t window;            /* T: rows in the rolling window, >= 2 (ROLLING only) */
    size_t batch;             /* b: rows per rank-b update, 1..T (EWMA: >= 1) */
    unsigned recompute_every; /* R: full recompute every R batches, 0 = never (ROLLING) */
    double lambda;            /* EWMA decay, 0 < lambda < 1 (EWMA only) */
    covariance_mode_t mode;
    int blas_threads; /* config key blas_threads: OpenBLAS threads, process-wide; 0 = leave */
} covariance_config_t;

/* Defaults: ROLLING, batch min(64, window), recompute every 64 batches, lambda 0.94,
 * blas_threads 1. */
void covariance_config_default(covariance_config_t *cfg, size_t nsym, size_t window);

typedef struct covariance {
    covariance_config_t cfg;
    size_t n;          /* N */
    size_t cap;        /* ring rows: roundup(T, b) + b (ROLLING), b (EWMA) */
    double *rows;      /* cap x n, row-major ring of return rows */
    double *s;         /* n x n row-major, upper: sum x x^T over the window, or the EWMA C */
    double *colsum;    /* n: column sums over the window (ROLLING) */
    double *scratch;   /* n (ROLLING: column means) or b x n (EWMA: scaled rows) */
    double *ewma_sc;   /* b: sqrt((1 - lambda) lambda^(b-1-j)) (EWMA) */
    uint32_t *nnz;     /* n: nonzero entries per column in the window (ROLLING) */
    unsigned char *zc; /* n: column reported with zero variance (scratch of covariance_matrix) */
    size_t head;       /* ring index of the oldest window row */
    size_t nwin;       /* rows in the window (committed) */
    size_t npend;      /* rows waiting in the batch */
    double ewma_w;     /* EWMA: 1 - lambda^t, t = rows committed */
    /* Counters (owner thread). */
    uint64_t pushed;     /* rows accepted */
    uint64_t rejected;   /* rows refused (non-finite value) */
    uint64_t batches;    /* batches committed */
    uint64_t recomputes; /* full recomputes from the window */
    uint64_t evicted;    /* rows that left the window */
} covariance_t;

/* Validate cfg, allocate everything (MEM_TAG_ANALYTICS), set OpenBLAS to cfg->blas_threads
 * threads when > 0, and warm OpenBLAS up with dsyrk calls of the shapes used later. Returns 0,
 * -EINVAL (bad config: N = 0, T < 2, b = 0 or b > T, lambda outside (0, 1), sizes beyond int or
 * size_t) or -ENOMEM (nothing is left allocated). Call before the seal. */
int covariance_init(covariance_t *c, const covariance_config_t *cfg);
/* Free everything. A zeroed, never-initialised covariance_t is accepted (no-op). */
void covariance_fini(covariance_t *c);
/* Empty the window, the batch and the EWMA state; counters are kept. Owner thread. */
void covariance_reset(covariance_t *c);

/* Copy one row of N returns in (row is not kept). Returns 1 if the row completed a batch and
 * the matrix was updated, 0 if it waits in the batch, -EINVAL if the row holds NaN or an
 * infinity (the row is dropped and counted in rejected). Owner thread; allocates nothing. */
int covariance_push(covariance_t *c, const double *row);
/* Commit the rows waiting in the batch now (a short batch). Returns how many. Owner thread. */
size_t covariance_flush(covariance_t *c);
/* Recompute S and the column sums from the window rows (ROLLING; EWMA: no-op). Owner. */
void covariance_recompute(covariance_t *c);

/* Rows behind the matrix: the committed window (ROLLING) or rows committed so far (EWMA,
 * saturating at SIZE_MAX). */
size_t covariance_rows(const covariance_t *c);
/* EWMA: total weight 1 - lambda^t of the rows committed so far (0 before any; ROLLING: 0). */
double covariance_ewma_weight(const covariance_t *c);

/* Write the covariance into out (n x n row-major, upper triangle; the lower one too if full,
 * otherwise it is left as it was). ROLLING: sample covariance, divisor n - 1; EWMA: C.
 * Returns 0, or -EAGAIN (out untouched) with fewer than 2 rows in the window (ROLLING) or no
 * row committed yet (EWMA). out must not alias the covariance_t's buffers. Owner thread. */
int covariance_matrix(covariance_t *c, double *out, bool full);
/* The same for the correlation matrix (via covariance_to_correlation). */
int covariance_correlation(covariance_t *c, double *out, bool full);

/* Correlation from a covariance matrix: corr_ij = cov_ij / sqrt(cov_ii cov_jj), clamped to
 * [-1, 1]; a column with cov_ii <= 0 (or not finite) gets 0 off the diagonal and 1 on it.
 * Reads the upper triangle of cov (n x n row-major), writes the upper triangle of corr, and the
 * lower one too if full; otherwise corr's strictly lower triangle is used as scratch and left
 * unspecified. corr may be cov (in place). Any thread; allocates nothing. */
void covariance_to_correlation(const double *cov, double *corr, size_t n, bool full);
/* Copy the upper triangle of the n x n row-major matrix m into its lower triangle. */
void covariance_mirror(double *m, size_t n);

/* Pin OpenBLAS to n threads (process-wide; n >= 1), settling the pool first (below). Returns
 * the count OpenBLAS reports. */
int covariance_blas_threads(int n);
/* Make every OpenBLAS worker thread take its buffer now (one dgemv split over the pool, once
 * per pool width), so that a worker starting late cannot take the buffer a warm-up mapped and
 * leave the steady state to map another. Called by covariance_init and pca_init before their
 * warm-ups; returns 0 or -ENOMEM. Call before the seal (it allocates a scratch matrix). */
int covariance_blas_settle(void);

#endif
