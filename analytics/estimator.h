/*
 * estimator: the covariance estimator of the cross-section, chosen by config (matrix.estimator,
 * matrix.shrinkage), fed one row of bar returns at a time (the "fine" rows: one per bar) and
 * built on analytics/covariance (dsyrk) for the storage and the sample formula.
 *
 * close: the sample covariance of the fine rows (the textbook computation on bar closes).
 * refresh: refresh-time sampling (Barndorff-Nielsen, Hansen, Lunde and Shephard 2011) at bar
 *   resolution: the fine returns are summed per column since the last sampled row, and a row is
 *   sampled (the sums pushed, then cleared) as soon as every needed column has moved (a nonzero
 *   fine return) since the last one: the price of every symbol has been refreshed. A bar is the
 *   finest time the engine's rows see, so refresh times are bar ends; a price "observation" is a
 *   change of the price the row is built from (mid-quote or trade), which the row alone tells,
 *   so the sampling does not depend on which thread built which column.
 * subsample: the average of the sample covariances of K offset grids (Zhang, Mykland and
 *   Ait-Sahalia 2005): grid g holds the returns over K consecutive fine rows that end at rows
 *   g + K - 1, g + 2K - 1, ... (log returns add, so the sum of K bar returns is the return over
 *   K bars). Each fine row from the K-th on closes one K-bar return, for grid (t - K + 1) mod K.
 *   Longer returns shrink the share of microstructure noise and of stale quotes (the Epps
 *   effect); averaging the K grids wins back most of the rows a single coarse grid loses.
 *   Each grid is a rolling window of window / K rows, so the estimate spans `window` fine rows.
 * twoscale: the subsample grids with the two-scales correction (Zhang, Mykland and Ait-Sahalia
 *   2005, applied to each entry): (C_K - C_1) / (K - 1), C_K the K-grid average of the K-bar
 *   returns' covariance and C_1 the covariance of the fine rows over the same window. If the
 *   noise adds a constant to each return's variance (bid-ask, ticks) and staleness removes a
 *   constant from each return's covariance (a move seen by one symbol a bar before the other
 *   lands in one return only at the return's ends), both constants are the same for a 1-bar and
 *   a K-bar return and cancel, leaving one bar's covariance. The result need not be positive
 *   semi-definite; the correlation is clipped to [-1, 1] (covariance_to_correlation).
 * Hayashi-Yoshida and pre-averaging are not offered: both need each symbol's own observation
 *   times, below the bar, and the cross-section only sees bar rows (the shards own the ticks).
 *
 * Shrinkage (ledoit-wolf): Ledoit and Wolf (2004, "Honey, I shrunk the sample covariance
 * matrix") toward the constant-correlation target F (f_ii = s_ii, f_ij = rbar sqrt(s_ii s_jj),
 * rbar the mean sample correlation): Sigma = delta F + (1 - delta) S with delta =
 * max(0, min(1, kappa / T)), kappa = (pi - rho) / gamma, where, over the P rows y_t of the
 * grids' windows (each centred by its own grid's mean), s the estimate and
 * m_ij = (1/P) sum_t y_it y_jt:
 *     pi_ij = (1/P) sum_t (y_it y_jt - s_ij)^2,  pi = sum_ij pi_ij
 *     theta_ii,ij = (1/P) sum_t (y_it^2 - s_ii)(y_it y_jt - s_ij)
 *     rho = sum_i pi_ii + sum_{i != j} rbar/2 (sqrt(s_jj/s_ii) theta_ii,ij +
 *                                               sqrt(s_ii/s_jj) theta_jj,ij)
 *     gamma = sum_{i != j} (f_ij - s_ij)^2
 * T is P for one grid; for K >= 2 overlapping grids it is 1.5 P / K, the large-sample variance
 * ratio of the K-grid average to one grid (2/3, Zhang et al. 2005) applied to the P / K rows of a
 * grid. Only columns with a positive variance take part. In correlation terms the result is
 * corr_ij = delta rbar + (1 - delta) r_ij: the intensity and rbar are reported.
 * Block target (block set, matrix.shrinkage = ledoit-wolf-block): the same formulas with rbar
 *   replaced, pair by pair, by the mean sample correlation over the pairs of the two columns'
 *   blocks (f_ij = rbar_{b(i)b(j)} sqrt(s_ii s_jj)); the constant target is the one-block case.
 *   The blocks are `clusters` clusters cut (graph_cut_k_min with `min_cluster`, as the
 *   cross-section cuts) from the MST of the correlation of the fine rows (a covariance_t of its
 *   own, `one`, unless the estimator is close) over the columns with a positive variance: the
 *   1-bar correlation keeps the clusters where the K-bar estimates, noisier, do not. For
 *   twoscale the intensity is the K-grid average's (its moments are those rows') and the target
 *   the two-scales matrix's own block means.
 *
 * Memory: estimator_init allocates everything (MEM_TAG_ANALYTICS): K covariance_t, the K-row
 * ring (subsample) or the running sums (refresh), the fine rows' covariance_t (twoscale, block),
 * with shrinkage the centred rows, three n x n moment matrices and the block labels and means,
 * and with block a graph_t and one more n x n matrix; it warms OpenBLAS up in the shapes used
 * later. Nothing is allocated afterwards. One thread (the cross-section thread) owns an
 * estimator_t.
 */
#ifndef TICKCORE_ANALYTICS_ESTIMATOR_H
#define TICKCORE_ANALYTICS_ESTIMATOR_H

#include "analytics/covariance.h"
#include "analytics/graph.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ESTIMATOR_GRIDS_MAX 64

typedef enum estimator_kind {
    ESTIMATOR_CLOSE = 0,
    ESTIMATOR_REFRESH = 1,
    ESTIMATOR_SUBSAMPLE = 2,
    ESTIMATOR_TWOSCALE = 3,
} estimator_kind_t;

typedef struct estimator_config {
    covariance_config_t cov; /* nsym, batch, ...; window = fine rows of the whole estimate
                                (subsample: split into K grids of window / K rows) */
    estimator_kind_t kind;
    unsigned grids;    /* subsample: K, 1..ESTIMATOR_GRIDS_MAX; twoscale: 2.. (others: ignored) */
    bool shrink;       /* Ledoit-Wolf toward constant correlation (ROLLING only) */
    bool block;        /* with shrink: toward block-constant correlation over estimated clusters */
    unsigned clusters; /* block: clusters cut from the MST of the fine rows' correlation */
    unsigned min_cluster; /* block: an MST edge is cut only if both sides keep this many */
} estimator_config_t;

typedef struct estimator {
    estimator_config_t cfg;
    size_t n;
    unsigned k;            /* grids (1 unless subsample) */
    covariance_t *grid;    /* [k] */
    covariance_t one;      /* twoscale, block: the fine rows' covariance (window rows) */
    graph_t graph;         /* block: the clusters of the fine rows' correlation */
    double *blk;           /* block: [n * n] that correlation, compacted */
    uint32_t *lab;         /* [n] target block of each column (0 for all: constant target) */
    uint32_t *col;         /* block: [n] compacted index -> column */
    double *bm, *bc;       /* [nb_max * nb_max] block sums of correlations, pair counts */
    uint32_t nb, nb_max;   /* blocks of the last target, capacity */
    bool has_one;          /* one is in use */
    double *acc;           /* subsample: [k * n] ring of the last k fine rows; refresh: [n] sums */
    uint8_t *seen;         /* refresh: [n] the column moved since the last sampled row */
    double *sum;           /* [n] the K-bar return being pushed */
    double *tmp;           /* [n * n] one grid's covariance (k > 1) */
    double *ya, *yb;       /* shrink: [rows_cap * n] centred rows and their powers */
    double *m2, *m4, *m31; /* shrink: [n * n] sum y y^T, sum y^2 (y^2)^T, sum y^3 y^T */
    size_t rows_cap;       /* rows of a grid's ring */
    uint64_t fine;         /* fine rows since the last reset */
    /* figures (owner thread) */
    uint64_t rows_in;  /* fine rows accepted */
    uint64_t rows_out; /* rows pushed into the grids (sampled / K-bar returns) */
    uint64_t rejected; /* rows refused (non-finite) */
    double lw_delta;   /* last shrinkage intensity (NaN before one is computed) */
    double lw_rbar;    /* its target's mean correlation */
} estimator_t;

/* Validate and allocate. 0, -EINVAL (bad config: see covariance_init, K outside
 * 1..ESTIMATOR_GRIDS_MAX, window < 2K for subsample, shrink with EWMA), -ENOMEM (nothing left
 * allocated). Call before the seal. */
int estimator_init(estimator_t *e, const estimator_config_t *cfg);
/* Free everything; a zeroed estimator_t is accepted. */
void estimator_fini(estimator_t *e);
/* Empty every grid and the pending sums; counters are kept. Owner thread. */
void estimator_reset(estimator_t *e);

/* One fine row of n returns (copied). need (refresh only; NULL = every column): the columns
 * that must have moved before a row is sampled. Returns 1 if a row went into a grid, 0 if not,
 * -EINVAL if row holds a NaN or infinity (dropped, counted). Owner thread; allocates nothing. */
int estimator_push(estimator_t *e, const double *row, const uint8_t *need);

/* Rows behind the estimate: the sum of the grids' committed windows (call estimator_flush
 * first for the rows waiting in batches). */
size_t estimator_rows(const estimator_t *e);
/* Commit the rows waiting in every grid's batch. */
void estimator_flush(estimator_t *e);

/* The estimate (after the shrinkage when configured; the grids are flushed first) as a
 * covariance or correlation matrix, n x n row-major, upper triangle (and lower too if full).
 * 0, or -EAGAIN (no grid has 2 rows). out must not alias the estimator's buffers. Owner thread;
 * allocates nothing. */
int estimator_covariance(estimator_t *e, double *out, bool full);
int estimator_correlation(estimator_t *e, double *out, bool full);

#endif
