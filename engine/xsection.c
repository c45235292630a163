/*
 * xsection: see xsection.h. xsection_on_bar runs inside the shard's stats_advance on the thread
 * that owns the stats (replay: the only thread); it reads the closed bar of each tracked symbol
 * and pushes one row. xsection_compute turns the window into results.
 */
#include "engine/xsection.h"

#include "base/npy.h"

#include "mem/arena.h"
#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int xsection_init(xsection_t *x, const config_t *cfg, const symtab_t *symbols)
{
    memset(x, 0, sizeof *x);
    x->symbols = symbols;
    x->max_n = cfg->matrix_symbols;
    x->clusters = cfg->clusters;
    x->cut_distance = cfg->cluster_distance;
    x->min_cluster = cfg->min_cluster;
    x->row_kind = cfg->matrix_returns == CFG_RETURNS_TRADE ? STATS_ROW_LOGRET : STATS_ROW_MIDRET;
    cfg_estimator_choice_t ch; /* auto resolved against the bar interval and the window */
    config_estimator(cfg, &ch);
    x->est_auto = ch.automatic;
    bool ewma = cfg->ewma_lambda > 0;
    estimator_config_t ec = {.kind = (estimator_kind_t)ch.estimator,
                             .grids = ch.grids,
                             .shrink = ch.shrinkage != CFG_SHRINK_NONE && !ewma,
                             .block = ch.shrinkage == CFG_SHRINK_LW_BLOCK && !ewma,
                             .clusters = cfg->clusters,
                             .min_cluster = cfg->min_cluster};
    covariance_config_default(&ec.cov, x->max_n, cfg->window);
    ec.cov.batch = cfg->update_batch < cfg->window ? cfg->update_batch : cfg->window;
    ec.cov.recompute_every = cfg->recompute_every;
    ec.cov.blas_threads = (int)cfg->blas_threads;
    if (ewma) {
        ec.cov.mode = COVARIANCE_EWMA;
        ec.cov.lambda = cfg->ewma_lambda;
    }
    int rc = estimator_init(&x->est, &ec);
    if (rc == 0)
        rc = pca_init(&x->pca, x->max_n, cfg->pca_components);
    if (rc == 0)
        rc = graph_init(&x->graph, x->max_n);
    size_t nn = x->max_n * x->max_n;
    x->locs = mem_calloc(MEM_TAG_ANALYTICS, x->max_n, sizeof *x->locs);
    x->row = mem_calloc(MEM_TAG_ANALYTICS, x->max_n, sizeof *x->row);
    x->started = mem_calloc(MEM_TAG_ANALYTICS, x->max_n, 1);
    x->full = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn * sizeof(double), 64);
    if (rc == 0)
        rc = arena_init(&x->scratch, "xsection.cycle", MEM_TAG_ANALYTICS,
                        nn * sizeof(double) + 4096, ARENA_FIXED);
    if (rc == 0 && (!x->locs || !x->row || !x->started || !x->full))
        rc = -ENOMEM;
    if (rc < 0)
        xsection_fini(x);
    return rc;
}

void xsection_fini(xsection_t *x)
{
    estimator_fini(&x->est);
    pca_fini(&x->pca);
    graph_fini(&x->graph);
    size_t nn = x->max_n * x->max_n;
    if (x->locs)
        mem_free(MEM_TAG_ANALYTICS, x->locs, x->max_n * sizeof *x->locs);
    if (x->row)
        mem_free(MEM_TAG_ANALYTICS, x->row, x->max_n * sizeof *x->row);
    if (x->started)
        mem_free(MEM_TAG_ANALYTICS, x->started, x->max_n);
    if (x->full)
        mem_free(MEM_TAG_ANALYTICS, x->full, nn * sizeof(double));
    arena_fini(&x->scratch);
    memset(x, 0, sizeof *x);
}

static void fill_col(const stats_t *st, uint64_t k, int kind, size_t c, double *row, bool *traded)
{
    uint16_t loc = (uint16_t)(c + 1);
    double v = NAN;
    if (stats_bar_row(st, k, (stats_row_kind_t)kind, &loc, 1, &v) < 0 || !isfinite(v))
        v = NAN; /* not priced yet, or no previous close: missing, decided in push */
    row[c] = v;
    if (!*traded) {
        stats_bar_t b;
        if (stats_bar(st, loc, k, &b) == 0 && b.trades > 0)
            *traded = true;
    }
}

void xsection_fill_row(const stats_t *st, uint64_t k, int kind, unsigned nparts, unsigned part,
                       double *row, size_t m, bool *traded)
{
    /* columns c of this part: locate c + 1 with (c + 1) % nparts == part */
    for (size_t c = (part + nparts - 1) % nparts; c < m; c += nparts)
        fill_col(st, k, kind, c, row, traded);
}

void xsection_fill_row_owned(const stats_t *st, uint64_t k, int kind, const uint8_t *owner,
                             unsigned part, double *row, size_t m, bool *traded)
{
    for (size_t c = 0; c < m; c++)
        if (owner[c + 1] == part)
            fill_col(st, k, kind, c, row, traded);
}

void xsection_push(xsection_t *x, uint64_t k, double *row, bool traded)
{
    x->bars++;
    /* complete cases over the symbols that have had a return (started); decided from the row
     * alone (the stats' state at the bar), so it does not depend on thread timing */
    size_t have = 0, missing = 0, fresh = 0;
    for (size_t c = 0; c < x->max_n; c++) {
        if (isnan(row[c])) {
            row[c] = 0.0;
            missing += x->started[c];
        } else {
            have++;
            if (!x->started[c]) {
                x->started[c] = 1;
                fresh++;
            }
        }
    }
    if (fresh && x->rows) { /* the rows so far lack a symbol's returns: not complete cases */
        estimator_reset(&x->est);
        x->restarts++;
        x->discarded_rows += x->rows;
        x->rows = 0;
    }
    if (!traded || have == 0) {
        x->idle_bars++;
        return;
    }
    if (missing) {
        x->partial_rows++;
        return;
    }
    if (estimator_push(&x->est, row, x->started) < 0) {
        x->rejected++;
        return;
    }
    if (x->rows == 0)
        x->first_k = k;
    x->last_k = k;
    x->rows++;
}

void xsection_on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    xsection_t *x = ctx;
    bool traded = false;
    xsection_fill_row(st, k, x->row_kind, 1, 0, x->row, x->max_n, &traded);
    xsection_push(x, k, x->row, traded);
}

int xsection_compute(xsection_t *x)
{
    x->have_result = false;
    estimator_flush(&x->est);
    x->rows_window = estimator_rows(&x->est);
    /* the tracked symbols: locates 1..max_n that name a symbol */
    x->n = 0;
    for (size_t c = 0; c < x->max_n; c++)
        if (symtab_name(x->symbols, (uint16_t)(c + 1))[0])
            x->locs[x->n++] = (uint16_t)(c + 1);
    if (x->n < 2 || estimator_correlation(&x->est, x->full, true) < 0)
        return -EAGAIN;
    size_t N = x->max_n, n = x->n;
    /* this cycle's scratch: the tracked block, valid until the next compute */
    arena_reset(&x->scratch);
    x->compact = arena_new(&x->scratch, double, n *n);
    if (!x->compact)
        return -ENOMEM; /* cannot happen: the arena holds max_n^2 doubles */
    for (size_t i = 0; i < n; i++) {
        size_t ci = x->locs[i] - 1u;
        for (size_t j = 0; j < n; j++)
            x->compact[i * n + j] = x->full[ci * N + (x->locs[j] - 1u)];
    }
    /* columns of no symbol add no eigenvalue */
    for (size_t c = 0; c < N; c++)
        if (!symtab_name(x->symbols, (uint16_t)(c + 1))[0])
            x->full[c * N + c] = 0.0;
    x->pca_rc = pca_compute(&x->pca, x->full);
    x->pc_count = 0;
    if (x->pca_rc == 0) {
        x->pc_count = x->pca.k < 8 ? x->pca.k : 8;
        for (size_t i = 0; i < x->pc_count; i++)
            x->pc_ratio[i] = x->pca.ratio[i];
    }
    x->graph_rc = graph_mst(&x->graph, x->compact, n);
    x->nclusters = 0;
    if (x->graph_rc == 0) {
        int c = x->cut_distance > 0 ? graph_cut_threshold(&x->graph, x->cut_distance)
                                    : graph_cut_k_min(&x->graph, x->clusters < n ? x->clusters : n,
                                                      x->min_cluster ? x->min_cluster : 1);
        x->nclusters = c > 0 ? (size_t)c : 0;
    }
    x->have_result = true;
    arena_publish(&x->scratch);
    return 0;
}

static const char *name(const xsection_t *x, size_t i)
{
    return symtab_name(x->symbols, x->locs[i]);
}

int xsection_write_corr(const xsection_t *x, FILE *f)
{
    if (!x->have_result)
        return -EAGAIN;
    fputs("symbol", f);
    for (size_t j = 0; j < x->n; j++)
        fprintf(f, ",%s", name(x, j));
    fputc('\n', f);
    for (size_t i = 0; i < x->n; i++) {
        fputs(name(x, i), f);
        for (size_t j = 0; j < x->n; j++)
            fprintf(f, ",%.17g", x->compact[i * x->n + j]);
        fputc('\n', f);
    }
    return ferror(f) ? -EIO : 0;
}

int xsection_write_corr_npy(const xsection_t *x, FILE *f)
{
    if (!x->have_result)
        return -EAGAIN;
    return npy_write_f64(f, x->compact, x->n, x->n);
}

int xsection_write_mst(const xsection_t *x, FILE *f)
{
    if (!x->have_result || x->graph_rc < 0)
        return -EAGAIN;
    fputs("from,to,rho,distance\n", f);
    for (size_t i = 0; i < x->graph.nedges; i++) {
        const graph_edge_t *e = &x->graph.edges[i];
        fprintf(f, "%s,%s,%.17g,%.17g\n", name(x, e->u), name(x, e->v), e->rho, e->d);
    }
    return ferror(f) ? -EIO : 0;
}

int xsection_write_clusters(const xsection_t *x, FILE *f)
{
    if (!x->have_result || x->graph_rc < 0)
        return -EAGAIN;
    fputs("symbol,cluster,degree,betweenness\n", f);
    for (size_t i = 0; i < x->graph.n; i++)
        fprintf(f, "%s,%u,%u,%.6g\n", name(x, i), x->nclusters ? x->graph.label[i] : 0,
                x->graph.degree[i], graph_between_norm(&x->graph, i));
    return ferror(f) ? -EIO : 0;
}
