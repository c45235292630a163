/*
 * xsection: the cross-section of the market at bar closes. Each closed bar gives one row of
 * log returns across the tracked symbols; rows go into the rolling covariance (analytics/
 * covariance, dsyrk); on request the correlation matrix, its principal components (analytics/
 * pca, dsyevr) and the correlation MST with its clusters (analytics/graph) are computed.
 *
 * Tracked symbols: stock locates 1..matrix.symbols, column c holding locate c + 1 (ITCH stock
 * directories number symbols densely from 1; CSV symbols are interned from 1 in order of first
 * appearance). Rows are built from the stats without the symbol table, so shard workers can
 * build their part of a row on their own threads; at compute time the locates that name a
 * symbol are the tracked set (the others are zero columns and drop out).
 * Returns: by default from the mid-quote at each bar's end (matrix.returns = mid), which is
 * free of the bid-ask bounce that attenuates correlations of trade prices when bars hold few
 * trades; a symbol without a two-sided quote falls back to its trade price (trades-only CSV);
 * matrix.returns = trade uses last trade prices throughout.
 * Missing data: a symbol without a trade or quote change in a bar carries its last price
 * (previous-tick carry: return 0, a real observation of "no change"). A return needs two
 * consecutive closes, so a symbol has none (missing, NaN: not 0) on its first priced bar and
 * before it (late starters), and every symbol has none on the first bar of a session (the
 * previous close is forgotten). Missing values enter the covariance by complete cases
 * (listwise deletion), the textbook rule that keeps the matrix a sample covariance of one set
 * of observations (positive semi-definite, so PCA and the MST distances sqrt(2(1 - rho)) stay
 * valid), over the symbols that have had a return: a row where one of them has none is counted
 * as partial and skipped, and when a symbol has its first return (a late starter) the rows
 * before it, which lack it, are emptied from the window (counted in restarts and
 * discarded_rows) and estimation starts again from that row. So at the end the result equals
 * numpy.corrcoef of the log returns of consecutive closes over the rows where every symbol
 * with returns has one (within the window); a symbol that never has a return is a zero column
 * (correlation 0). The decision uses only the row (the stats at the bar), never the symbol
 * table, so it is the same whatever the threads' timing. Bars in which no tracked symbol
 * traded (the feed before the open, after the close, weekends in daily CSV) or no symbol has a
 * return are not rows at all: they are counted as idle and skipped, so they neither dilute nor
 * shift the estimates. The bar open when the input ends is closed (pipeline_close_bars), so the
 * last return counts.
 *
 * Memory: xsection_init sizes everything for matrix.symbols columns (tag ANALYTICS): the
 * covariance state, an N x N matrix, the PCA workspace, the graph arrays, and the per-cycle
 * arena from which each compute takes the tracked block (reset every cycle; its high-water mark
 * is in the memory report). The matrices are
 * computed at full size with the untracked columns at zero (zero variance: correlation 0, and
 * their diagonal is zeroed before PCA so they add no eigenvalue); the graph works on the leading
 * n x n block. Nothing is allocated after init. One thread owns it (the cross-section thread).
 */
#ifndef TICKCORE_ENGINE_XSECTION_H
#define TICKCORE_ENGINE_XSECTION_H

#include "analytics/covariance.h"
#include "analytics/estimator.h"
#include "analytics/graph.h"
#include "analytics/pca.h"
#include "analytics/stats.h"
#include "config/config.h"
#include "event/symtab.h"
#include "mem/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct xsection {
    estimator_t est; /* matrix.estimator and matrix.shrinkage over the rows */
    bool est_auto;   /* matrix.estimator = auto chose est (config_estimator) */
    pca_t pca;
    graph_t graph;
    const symtab_t *symbols;
    size_t max_n, n;  /* capacity, and symbols tracked (0 until the first bar close) */
    uint16_t *locs;   /* [max_n] tracked locates, column order */
    double *row;      /* [max_n] */
    uint8_t *started; /* [max_n] the column has had a return (complete cases are over these) */
    double *full;     /* [max_n^2] covariance / correlation at full size */
    double *compact;  /* n x n tracked block, from the cycle arena; valid until the next
                         xsection_compute */
    arena_t scratch;  /* the per-cycle arena, reset at each compute */
    uint32_t clusters, min_cluster;
    double cut_distance;
    int row_kind; /* stats_row_kind_t: STATS_ROW_MIDRET or STATS_ROW_LOGRET */
    /* figures */
    uint64_t bars, idle_bars, partial_rows, rejected;
    uint64_t rows;           /* rows in the estimate: pushed since the last restart */
    uint64_t rows_window;    /* rows behind the last compute (the estimator's windows) */
    uint64_t restarts;       /* window emptied because a symbol had its first return */
    uint64_t discarded_rows; /* rows those restarts emptied */
    uint64_t first_k, last_k;
    bool have_result;
    int pca_rc, graph_rc;
    double pc_ratio[8];
    size_t pc_count;
    size_t nclusters;
} xsection_t;

/* 0 or -errno. symbols: the shared table (read at the first bar close). */
int xsection_init(xsection_t *x, const config_t *cfg, const symtab_t *symbols);
void xsection_fini(xsection_t *x);

/* Part `part` of nparts of the row of closed bar k: the columns c with (c + 1) % nparts == part
 * (the locates a shard owns), from the stats st that hold them; kind is x->row_kind. Sets
 * *traded if one of them traded in the bar. Any thread (reads only st). */
void xsection_fill_row(const stats_t *st, uint64_t k, int kind, unsigned nparts, unsigned part,
                       double *row, size_t m, bool *traded);
/* The same for the columns c whose locate c + 1 has owner[c + 1] == part (a locate -> shard
 * table, as the pipeline balances them). Any thread (reads only st and owner). */
void xsection_fill_row_owned(const stats_t *st, uint64_t k, int kind, const uint8_t *owner,
                             unsigned part, double *row, size_t m, bool *traded);
/* One complete row (max_n columns) for bar k, NaN where a symbol has no return: bars where
 * nothing traded or no symbol has a return are idle; rows where a started symbol has no return
 * are partial; both are skipped (counted); a symbol's first return restarts the window. NaN
 * entries are set to 0 in place. */
void xsection_push(xsection_t *x, uint64_t k, double *row, bool traded);
/* A stats_bar_fn for one shard holding every symbol (ctx is the xsection): fill and push. */
void xsection_on_bar(void *ctx, const stats_t *st, uint64_t k);

/* Correlation, PCA, MST and clusters over the current window. 0, or -EAGAIN (fewer than 2
 * rows). Allocates nothing. */
int xsection_compute(xsection_t *x);

/* After xsection_compute: write the correlation matrix (symbols as header), the MST edges, and
 * the nodes with their cluster, degree and betweenness, as CSV. 0 or -errno (control path). */
int xsection_write_corr(const xsection_t *x, FILE *f);
/* The same matrix as a NumPy .npy file (base/npy: '<f8', C order, shape (n, n)), in the
 * column order of the CSV's header. 0 or -errno. */
int xsection_write_corr_npy(const xsection_t *x, FILE *f);
int xsection_write_mst(const xsection_t *x, FILE *f);
int xsection_write_clusters(const xsection_t *x, FILE *f);

#endif
