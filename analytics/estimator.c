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
    if (rc == 0 && two)
        rc = covariance_init(&e->one, &cfg->cov);
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
    if (e->cfg.kind == ESTIMATOR_TWOSCALE)
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
        if (e->cfg.kind == ESTIMATOR_TWOSCALE) {
            int rc = covariance_push(&e->one, row);
            if (rc < 0)
                return rc;
        }
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
    if (e->cfg.kind == ESTIMATOR_TWOSCALE)
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

static void shrink_apply(double *s, size_t n, double delta, double rbar);

/* The mean correlation of the covariance s (upper) over the columns with a positive variance;
 * NaN without a pair. */
static double mean_correlation(const double *s, size_t n)
{
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
            rsum += s[i * n + j] / sqrt(sii * sjj);
            pairs++;
        }
    }
    return pairs ? rsum / (double)pairs : NAN;
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
    double rbar = mean_correlation(s, n);
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
            rho += rbar * (sqrt(sjj / sii) * th_i + sqrt(sii / sjj) * th_j);
            double d = rbar * sqrt(sii * sjj) - sij;
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
    shrink_apply(s, n, delta, rbar);
}

/* s <- delta rbar sqrt(s_ii s_jj) + (1 - delta) s, over the columns with a positive variance. */
static void shrink_apply(double *s, size_t n, double delta, double rbar)
{
    for (size_t i = 0; i < n; i++) {
        double sii = s[i * n + i];
        if (!(sii > 0))
            continue;
        for (size_t j = i + 1; j < n; j++) {
            double sjj = s[j * n + j];
            if (sjj > 0)
                s[i * n + j] = delta * rbar * sqrt(sii * sjj) + (1 - delta) * s[i * n + j];
        }
    }
}

int estimator_covariance(estimator_t *e, double *out, bool full)
{
    estimator_flush(e);
    size_t n = e->n;
    int rc = -EAGAIN;
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
        e->lw_rbar = mean_correlation(out, n);
        if (!isnan(e->lw_rbar))
            shrink_apply(out, n, e->lw_delta, e->lw_rbar);
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
