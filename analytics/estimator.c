/*
 * estimator: see estimator.h for the estimators. The grids are plain covariance_t (rolling or
 * EWMA), so the ring, the batched dsyrk updates and the sample formula are covariance's; this
 * file only decides which rows go where and combines the grids at compute time. The shrinkage
 * moments are three BLAS-3 calls per grid over the window's centred rows (dsyrk for sum y y^T and
 * sum y^2 (y^2)^T, dgemm for sum y^3 y^T), made at compute time only; the per-row path stays a
 * copy and a sum of k rows.
 */
#include "analytics/estimator.h"

#include "mem/mem.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <string.h>

static size_t nn_bytes(const estimator_t *e)
{
    return e->n * e->n * sizeof(double);
}

void estimator_fini(estimator_t *e)
{
    if (e->grid) {
        for (unsigned g = 0; g < e->k; g++)
            covariance_fini(&e->grid[g]);
        mem_free(MEM_TAG_ANALYTICS, e->grid, e->k * sizeof *e->grid);
    }
    covariance_fini(&e->one);
    graph_fini(&e->graph);
    if (e->blk)
        mem_free(MEM_TAG_ANALYTICS, e->blk, nn_bytes(e));
    if (e->lab)
        mem_free(MEM_TAG_ANALYTICS, e->lab, e->n * sizeof *e->lab);
    if (e->col)
        mem_free(MEM_TAG_ANALYTICS, e->col, e->n * sizeof *e->col);
    size_t nbb = (size_t)e->nb_max * e->nb_max * sizeof(double);
    if (e->bm)
        mem_free(MEM_TAG_ANALYTICS, e->bm, nbb);
    if (e->bc)
        mem_free(MEM_TAG_ANALYTICS, e->bc, nbb);
    size_t n = e->n, nn = nn_bytes(e), acc = (e->cfg.kind >= ESTIMATOR_SUBSAMPLE ? e->k : 1) * n;
    if (e->acc)
        mem_free(MEM_TAG_ANALYTICS, e->acc, acc * sizeof(double));
    if (e->seen)
        mem_free(MEM_TAG_ANALYTICS, e->seen, n);
    if (e->sum)
        mem_free(MEM_TAG_ANALYTICS, e->sum, n * sizeof(double));
    if (e->tmp)
        mem_free(MEM_TAG_ANALYTICS, e->tmp, nn);
    double **mats[] = {&e->m2, &e->m4, &e->m31};
    for (size_t i = 0; i < 3; i++)
        if (*mats[i])
            mem_free(MEM_TAG_ANALYTICS, *mats[i], nn);
    if (e->ya)
        mem_free(MEM_TAG_ANALYTICS, e->ya, e->rows_cap * n * sizeof(double));
    if (e->yb)
        mem_free(MEM_TAG_ANALYTICS, e->yb, e->rows_cap * n * sizeof(double));
    memset(e, 0, sizeof *e);
}

int estimator_init(estimator_t *e, const estimator_config_t *cfg)
{
    memset(e, 0, sizeof *e);
    e->lw_delta = e->lw_rbar = NAN;
    bool two = cfg->kind == ESTIMATOR_TWOSCALE;
    bool sub = cfg->kind == ESTIMATOR_SUBSAMPLE || two, ewma = cfg->cov.mode == COVARIANCE_EWMA;
    if (cfg->kind > ESTIMATOR_TWOSCALE || (cfg->shrink && ewma) || (two && cfg->grids < 2) ||
        (cfg->block && (!cfg->shrink || cfg->clusters < 1)) ||
        (sub && (cfg->grids < 1 || cfg->grids > ESTIMATOR_GRIDS_MAX ||
                 (!ewma && cfg->cov.window < 2 * (size_t)cfg->grids))))
        return -EINVAL;
    e->cfg = *cfg;
    e->n = cfg->cov.nsym;
    e->k = sub ? cfg->grids : 1;
    covariance_config_t gc = cfg->cov;
    if (!ewma) {
        gc.window = cfg->cov.window / e->k;
        if (gc.batch > gc.window)
            gc.batch = gc.window;
    }
    size_t n = e->n;
    int rc = 0;
    e->grid = mem_calloc(MEM_TAG_ANALYTICS, e->k, sizeof *e->grid);
    if (!e->grid) {
        rc = -ENOMEM;
        goto fail;
    }
    for (unsigned g = 0; g < e->k && rc == 0; g++)
        rc = covariance_init(&e->grid[g], &gc);
    e->has_one = two || (cfg->block && cfg->kind != ESTIMATOR_CLOSE);
    if (rc == 0 && e->has_one)
        rc = covariance_init(&e->one, &cfg->cov);
    if (rc == 0 && cfg->block)
        rc = graph_init(&e->graph, e->n);
    if (rc)
        goto fail;
    e->acc = mem_calloc(MEM_TAG_ANALYTICS, (sub ? e->k : 1) * n, sizeof(double));
    e->seen = mem_calloc(MEM_TAG_ANALYTICS, n, 1);
    e->sum = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof(double));
    if (e->k > 1)
        e->tmp = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn_bytes(e), 64);
    if (!e->acc || !e->seen || !e->sum || (e->k > 1 && !e->tmp)) {
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->shrink) {
        e->nb_max = cfg->block ? cfg->clusters : 1;
        size_t nbb = (size_t)e->nb_max * e->nb_max * sizeof(double);
        e->lab = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof *e->lab);
        e->bm = mem_alloc(MEM_TAG_ANALYTICS, nbb);
        e->bc = mem_alloc(MEM_TAG_ANALYTICS, nbb);
        if (cfg->block) {
            e->col = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof *e->col);
            e->blk = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn_bytes(e), 64);
        }
        if (!e->lab || !e->bm || !e->bc || (cfg->block && (!e->col || !e->blk))) {
            rc = -ENOMEM;
            goto fail;
        }
        e->nb = 1;
        e->rows_cap = e->grid[0].cap;
        size_t yb = e->rows_cap * n * sizeof(double);
        e->ya = mem_alloc_prefault(MEM_TAG_ANALYTICS, yb, 64);
        e->yb = mem_alloc_prefault(MEM_TAG_ANALYTICS, yb, 64);
        e->m2 = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn_bytes(e), 64);
        e->m4 = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn_bytes(e), 64);
        e->m31 = mem_alloc_prefault(MEM_TAG_ANALYTICS, nn_bytes(e), 64);
        if (!e->ya || !e->yb || !e->m2 || !e->m4 || !e->m31) {
            rc = -ENOMEM;
            goto fail;
        }
        memset(e->ya, 0, yb);
        memset(e->yb, 0, yb);
        /* warm-up in the compute shapes, so OpenBLAS sets its buffers up before the seal */
        int ni = (int)n, r = (int)e->rows_cap;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, r, 1.0, e->ya, ni, 0.0, e->m2, ni);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, ni, r, 1.0, e->yb, ni, e->ya, ni,
                    0.0, e->m31, ni);
    }
    return 0;
fail:
    estimator_fini(e);
    return rc;
}

void estimator_reset(estimator_t *e)
{
    for (unsigned g = 0; g < e->k; g++)
        covariance_reset(&e->grid[g]);
    if (e->has_one)
        covariance_reset(&e->one);
    size_t acc = (e->cfg.kind >= ESTIMATOR_SUBSAMPLE ? e->k : 1) * e->n;
    memset(e->acc, 0, acc * sizeof(double));
    memset(e->seen, 0, e->n);
    e->fine = 0;
}

static int push_grid(estimator_t *e, unsigned g, const double *row)
{
    int rc = covariance_push(&e->grid[g], row);
    if (rc < 0)
        return rc;
    e->rows_out++;
    return 1;
}

int estimator_push(estimator_t *e, const double *row, const uint8_t *need)
{
    size_t n = e->n;
    double probe = 0.0; /* x * 0 is NaN exactly when x is NaN or infinite */
    for (size_t j = 0; j < n; j++)
        probe += row[j] * 0.0;
    if (isnan(probe)) {
        e->rejected++;
        return -EINVAL;
    }
    e->rows_in++;
    if (e->has_one) {
        int rc = covariance_push(&e->one, row);
        if (rc < 0)
            return rc;
    }
    switch (e->cfg.kind) {
    case ESTIMATOR_CLOSE:
        return push_grid(e, 0, row);
    case ESTIMATOR_REFRESH: {
        bool all = true;
        for (size_t j = 0; j < n; j++) {
            e->acc[j] += row[j];
            e->seen[j] |= row[j] != 0.0;
            all = all && (e->seen[j] || (need && !need[j]));
        }
        if (!all)
            return 0;
        int rc = push_grid(e, 0, e->acc);
        memset(e->acc, 0, n * sizeof(double));
        memset(e->seen, 0, n);
        return rc;
    }
    case ESTIMATOR_TWOSCALE:
    case ESTIMATOR_SUBSAMPLE: {
        unsigned k = e->k;
        memcpy(e->acc + (size_t)(e->fine % k) * n, row, n * sizeof(double));
        e->fine++;
        if (e->fine < k)
            return 0;
        memcpy(e->sum, e->acc, n * sizeof(double));
        for (unsigned r = 1; r < k; r++) {
            const double *x = e->acc + (size_t)r * n;
            for (size_t j = 0; j < n; j++)
                e->sum[j] += x[j];
        }
        return push_grid(e, (unsigned)((e->fine - k) % k), e->sum);
    }
    }
    return 0;
}

void estimator_flush(estimator_t *e)
{
    for (unsigned g = 0; g < e->k; g++)
        covariance_flush(&e->grid[g]);
    if (e->has_one)
        covariance_flush(&e->one);
}

size_t estimator_rows(const estimator_t *e)
{
    size_t r = 0;
    for (unsigned g = 0; g < e->k; g++)
        r += covariance_rows(&e->grid[g]);
    return r;
}

/* Add the moments of grid c's window rows (centred by the window's mean) to m2, m4, m31.
 * Returns the rows added. */
static size_t add_moments(estimator_t *e, const covariance_t *c)
{
    size_t n = e->n, rows = c->nwin;
    if (rows < 2)
        return 0;
    double inv = 1.0 / (double)rows;
    for (size_t t = 0; t < rows; t++) {
        size_t idx = c->head + t;
        if (idx >= c->cap)
            idx -= c->cap;
        const double *x = c->rows + idx * n;
        double *ya = e->ya + t * n, *yb = e->yb + t * n;
        for (size_t j = 0; j < n; j++) {
            double y = x[j] - c->colsum[j] * inv;
            ya[j] = y;
            yb[j] = y * y;
        }
    }
    int ni = (int)n, r = (int)rows;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, r, 1.0, e->ya, ni, 1.0, e->m2, ni);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, r, 1.0, e->yb, ni, 1.0, e->m4, ni);
    for (size_t i = 0; i < rows * n; i++)
        e->yb[i] *= e->ya[i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, ni, r, 1.0, e->yb, ni, e->ya, ni, 1.0,
                e->m31, ni);
    return rows;
}

static void shrink_apply(estimator_t *e, double *s, double delta);

/* The target's correlations: the mean correlation of the covariance s (upper) over the pairs of
 * each two blocks (e->lab; one block: the constant-correlation target), over the columns with a
 * positive variance, into e->bm (upper block triangle); a block pair without a pair of columns
 * (a one-column block with itself) gets the overall mean. Returns the overall mean, NaN without
 * a pair. */
static double block_means(estimator_t *e, const double *s)
{
    size_t n = e->n, nb = e->nb;
    memset(e->bm, 0, nb * nb * sizeof(double));
    memset(e->bc, 0, nb * nb * sizeof(double));
    double rsum = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < n; i++) {
        double sii = s[i * n + i];
        if (!(sii > 0))
            continue;
        for (size_t j = i + 1; j < n; j++) {
            double sjj = s[j * n + j];
            if (!(sjj > 0))
                continue;
            double r = s[i * n + j] / sqrt(sii * sjj);
            uint32_t a = e->lab[i], b = e->lab[j];
            size_t ab = a < b ? a * nb + b : b * nb + a;
            e->bm[ab] += r;
            e->bc[ab] += 1;
            rsum += r;
            pairs++;
        }
    }
    if (pairs == 0)
        return NAN;
    double mean = rsum / (double)pairs;
    for (size_t a = 0; a < nb * nb; a++)
        e->bm[a] = e->bc[a] > 0 ? e->bm[a] / e->bc[a] : mean;
    return nb == 1 ? e->bm[0] : mean;
}

static inline double target(const estimator_t *e, size_t i, size_t j)
{
    uint32_t a = e->lab[i], b = e->lab[j];
    return e->bm[a < b ? a * e->nb + b : b * e->nb + a];
}

/* The blocks of the block target: clusters cut (as the cross-section cuts them) from the MST of
 * the fine rows' correlation over the columns with a positive variance (e->lab; 0 for all when
 * there is no estimate yet). The fine rows keep the clusters right where longer returns, noisier,
 * do not (README, estimators). */
static void cluster(estimator_t *e)
{
    size_t n = e->n, m = 0;
    memset(e->lab, 0, n * sizeof *e->lab);
    e->nb = 1;
    covariance_t *c1 = e->has_one ? &e->one : &e->grid[0];
    if (covariance_matrix(c1, e->blk, false) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (e->blk[i * n + i] > 0 && isfinite(e->blk[i * n + i]))
            e->col[m++] = (uint32_t)i;
    covariance_to_correlation(e->blk, e->blk, n, true);
    /* compact in place: the destination a*m+b never passes the source col[a]*n+col[b] */
    for (size_t a = 0; a < m; a++)
        for (size_t b = 0; b < m; b++)
            e->blk[a * m + b] = e->blk[(size_t)e->col[a] * n + e->col[b]];
    if (m < 2 || graph_mst(&e->graph, e->blk, m) < 0)
        return;
    size_t k = e->cfg.clusters < m ? e->cfg.clusters : m;
    int c = graph_cut_k_min(&e->graph, k, e->cfg.min_cluster ? e->cfg.min_cluster : 1);
    if (c < 1)
        return;
    for (size_t a = 0; a < m; a++)
        e->lab[e->col[a]] = e->graph.label[a];
    e->nb = (uint32_t)c;
}

/* Ledoit-Wolf toward constant correlation on the covariance s (upper triangle): the intensity
 * and the target's rbar into e->lw_delta and e->lw_rbar, and with apply set, s shrunk in place. */
static void shrink(estimator_t *e, double *s, bool apply)
{
    size_t n = e->n, nn = n * n;
    memset(e->m2, 0, nn * sizeof(double));
    memset(e->m4, 0, nn * sizeof(double));
    memset(e->m31, 0, nn * sizeof(double));
    size_t p = 0;
    for (unsigned g = 0; g < e->k; g++)
        p += add_moments(e, &e->grid[g]);
    e->lw_delta = e->lw_rbar = NAN;
    if (p < 2)
        return;
    double ip = 1.0 / (double)p;
    double rbar = block_means(e, s);
    if (isnan(rbar))
        return;
    double pi = 0, rho = 0, gamma = 0;
    for (size_t i = 0; i < n; i++) {
        double sii = s[i * n + i], mii = e->m2[i * n + i] * ip;
        if (!(sii > 0))
            continue;
        double pii = e->m4[i * n + i] * ip - 2 * sii * mii + sii * sii;
        pi += pii;
        rho += pii;
        for (size_t j = i + 1; j < n; j++) {
            double sjj = s[j * n + j];
            if (!(sjj > 0))
                continue;
            double sij = s[i * n + j], mij = e->m2[i * n + j] * ip, mjj = e->m2[j * n + j] * ip;
            pi += 2 * (e->m4[i * n + j] * ip - 2 * sij * mij + sij * sij);
            double th_i = e->m31[i * n + j] * ip - sij * mii - sii * mij + sii * sij;
            double th_j = e->m31[j * n + i] * ip - sij * mjj - sjj * mij + sjj * sij;
            double t = target(e, i, j);
            rho += t * (sqrt(sjj / sii) * th_i + sqrt(sii / sjj) * th_j);
            double d = t * sqrt(sii * sjj) - sij;
            gamma += 2 * d * d;
        }
    }
    double T = e->k > 1 ? 1.5 * (double)p / (double)e->k : (double)p;
    double delta = gamma > 0 ? (pi - rho) / gamma / T : 0.0;
    delta = delta < 0 ? 0 : delta > 1 ? 1 : delta;
    e->lw_delta = delta;
    e->lw_rbar = rbar;
    if (!apply)
        return;
    shrink_apply(e, s, delta);
}

/* s <- delta rbar sqrt(s_ii s_jj) + (1 - delta) s, over the columns with a positive variance. */
static void shrink_apply(estimator_t *e, double *s, double delta)
{
    size_t n = e->n;
    for (size_t i = 0; i < n; i++) {
        double sii = s[i * n + i];
        if (!(sii > 0))
            continue;
        for (size_t j = i + 1; j < n; j++) {
            double sjj = s[j * n + j];
            if (sjj > 0)
                s[i * n + j] =
                    delta * target(e, i, j) * sqrt(sii * sjj) + (1 - delta) * s[i * n + j];
        }
    }
}

int estimator_covariance(estimator_t *e, double *out, bool full)
{
    estimator_flush(e);
    size_t n = e->n;
    int rc = -EAGAIN;
    if (e->cfg.block)
        cluster(e);
    if (e->k == 1) {
        rc = covariance_matrix(&e->grid[0], out, false);
    } else {
        unsigned used = 0;
        for (unsigned g = 0; g < e->k; g++) {
            if (covariance_matrix(&e->grid[g], used ? e->tmp : out, false) < 0)
                continue;
            if (used)
                for (size_t i = 0; i < n; i++)
                    for (size_t j = i; j < n; j++)
                        out[i * n + j] += e->tmp[i * n + j];
            used++;
        }
        if (used) {
            double w = 1.0 / used;
            for (size_t i = 0; i < n; i++)
                for (size_t j = i; j < n; j++)
                    out[i * n + j] *= w;
            rc = 0;
        }
        if (rc == 0 && e->cfg.kind == ESTIMATOR_TWOSCALE) {
            /* the intensity of the K grids' average (the moments are its rows'), then
             * (C_K - C_1) / (K - 1): the noise and staleness constants cancel */
            if (e->cfg.shrink)
                shrink(e, out, false);
            if (covariance_matrix(&e->one, e->tmp, false) < 0)
                return -EAGAIN;
            double w1 = 1.0 / (double)(e->k - 1);
            for (size_t i = 0; i < n; i++)
                for (size_t j = i; j < n; j++)
                    out[i * n + j] = (out[i * n + j] - e->tmp[i * n + j]) * w1;
        }
    }
    if (rc < 0)
        return rc;
    if (e->cfg.shrink && e->cfg.kind != ESTIMATOR_TWOSCALE) {
        shrink(e, out, true);
    } else if (e->cfg.shrink && !isnan(e->lw_delta)) {
        e->lw_rbar = block_means(e, out);
        if (!isnan(e->lw_rbar))
            shrink_apply(e, out, e->lw_delta);
    }
    if (full)
        covariance_mirror(out, n);
    return 0;
}

int estimator_correlation(estimator_t *e, double *out, bool full)
{
    int rc = estimator_covariance(e, out, false);
    if (rc == 0)
        covariance_to_correlation(out, out, e->n, false);
    if (rc == 0 && full)
        covariance_mirror(out, e->n);
    return rc;
}
