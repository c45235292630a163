/*
 * pca: see pca.h. The row-major upper triangle the caller gives is, read column-major, a lower
 * triangle, so dsyevr is called column-major with uplo 'L' and no transposition (LAPACKE's
 * row-major path would allocate a transposed copy per call). dsyevr returns the k largest
 * eigenvalues ascending and their eigenvectors as the columns of z; they are copied out in
 * descending order, sign-normalized. abstol is the safe minimum, which LAPACK recommends for
 * the most accurate eigenvalues. All memory belongs to the pca_t.
 */
#include "analytics/pca.h"

#include "analytics/covariance.h"
#include "mem/mem.h"

#include <errno.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(sizeof(lapack_int) == sizeof(int), "LAPACKE built with 32-bit integers expected");

enum {
    PCA_BUF_A,
    PCA_BUF_W,
    PCA_BUF_Z,
    PCA_BUF_ISUPPZ,
    PCA_BUF_VALUES,
    PCA_BUF_VECTORS,
    PCA_BUF_RATIO,
    PCA_BUF_WORK,
    PCA_BUF_IWORK,
    PCA_BUF_COUNT
};

/* Sum of the components within this of 0: fall back to the largest-magnitude component. */
#define PCA_SIGN_SUM_EPS 1e-6

/* The buffer of each PCA_BUF_ index. */
static void buf_slots(pca_t *p, void **out[PCA_BUF_COUNT])
{
    out[PCA_BUF_A] = (void **)&p->a;
    out[PCA_BUF_W] = (void **)&p->w;
    out[PCA_BUF_Z] = (void **)&p->z;
    out[PCA_BUF_ISUPPZ] = (void **)&p->isuppz;
    out[PCA_BUF_VALUES] = (void **)&p->values;
    out[PCA_BUF_VECTORS] = (void **)&p->vectors;
    out[PCA_BUF_RATIO] = (void **)&p->ratio;
    out[PCA_BUF_WORK] = (void **)&p->work;
    out[PCA_BUF_IWORK] = (void **)&p->iwork;
}

/* Byte sizes from n, k, lwork, liwork (validated by pca_init against overflow). */
static void buf_sizes(const pca_t *p, size_t out[PCA_BUF_COUNT])
{
    out[PCA_BUF_A] = p->n * p->n * sizeof(double);
    out[PCA_BUF_W] = p->n * sizeof(double);
    out[PCA_BUF_Z] = p->n * p->k * sizeof(double);
    out[PCA_BUF_ISUPPZ] = 2 * p->k * sizeof(int);
    out[PCA_BUF_VALUES] = p->k * sizeof(double);
    out[PCA_BUF_VECTORS] = p->n * p->k * sizeof(double);
    out[PCA_BUF_RATIO] = p->k * sizeof(double);
    out[PCA_BUF_WORK] = p->lwork * sizeof(double);
    out[PCA_BUF_IWORK] = p->liwork * sizeof(int);
}

void pca_fini(pca_t *p)
{
    if (!p->a)
        return;
    size_t sz[PCA_BUF_COUNT];
    void **slots[PCA_BUF_COUNT];
    buf_sizes(p, sz);
    buf_slots(p, slots);
    mem_free_group(MEM_TAG_ANALYTICS, slots, sz, PCA_BUF_COUNT);
    memset(p, 0, sizeof *p);
}

/* Run dsyevr on p->a (already filled). Returns and records LAPACK's info, or PCA_INFO_SHORT if
 * it found fewer eigenvalues than asked. */
static int run_dsyevr(pca_t *p)
{
    int n = (int)p->n, m = 0;
    int info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', 'I', 'L', n, p->a, n, 0.0, 0.0,
                                   n - (int)p->k + 1, n, LAPACKE_dlamch('S'), &m, p->w, p->z, n,
                                   p->isuppz, p->work, (int)p->lwork, p->iwork, (int)p->liwork);
    if (info == 0 && m != (int)p->k)
        info = PCA_INFO_SHORT;
    p->last_info = info;
    return info;
}

/* Flip v (length n) per the sign convention of pca.h. */
static void sign_normalize(double *v, size_t n)
{
    double sum = 0.0, big = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (fabs(v[i]) > big) {
            big = fabs(v[i]);
            at = i;
        }
    }
    bool flip = fabs(sum) > PCA_SIGN_SUM_EPS ? sum < 0.0 : v[at] < 0.0;
    if (flip)
        for (size_t i = 0; i < n; i++)
            v[i] = -v[i];
}

int pca_compute(pca_t *p, const double *sym)
{
    size_t n = p->n, k = p->k;
    double probe = 0.0, trace = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *row = sym + i * n + i;
        /* Row-major upper row i = column-major lower column i: contiguous either way. */
        memcpy(p->a + i * n + i, row, (n - i) * sizeof(double));
        for (size_t j = 0; j < n - i; j++)
            probe += row[j] * 0.0;
        trace += row[0];
    }
    if (isnan(probe)) {
        p->failures++;
        return -EINVAL;
    }
    if (run_dsyevr(p) != 0) {
        p->failures++;
        return -EDOM;
    }
    for (size_t i = 0; i < k; i++) {
        size_t col = k - 1 - i; /* dsyevr: ascending */
        p->values[i] = p->w[col];
        double *v = p->vectors + i * n;
        memcpy(v, p->z + col * n, n * sizeof(double));
        sign_normalize(v, n);
        p->ratio[i] = trace > 0.0 ? p->values[i] / trace : 0.0;
    }
    p->trace = trace;
    p->computes++;
    return 0;
}

int pca_init(pca_t *p, size_t n, size_t k)
{
    memset(p, 0, sizeof *p);
    if (k == 0 || k > n || n > 46340 /* n * n fits an int */)
        return -EINVAL;
    p->n = n;
    p->k = k;
    /* Workspace query: lwork = liwork = -1 returns the optimal sizes in wq and iwq. */
    double wq = 0.0, dummy = 0.0;
    int iwq = 0, m = 0, isz[2];
    int info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', 'I', 'L', (int)n, &dummy, (int)n, 0.0,
                                   0.0, (int)(n - k + 1), (int)n, LAPACKE_dlamch('S'), &m, &dummy,
                                   &dummy, (int)n, isz, &wq, -1, &iwq, -1);
    if (info != 0 || !(wq >= 1.0) || iwq < 1) {
        memset(p, 0, sizeof *p);
        return -EIO;
    }
    if (covariance_blas_settle() != 0) { /* every OpenBLAS worker holds its buffer first */
        memset(p, 0, sizeof *p);
        return -ENOMEM;
    }
    p->lwork = (size_t)wq;
    p->liwork = (size_t)iwq;
    size_t sz[PCA_BUF_COUNT];
    void **slots[PCA_BUF_COUNT];
    buf_sizes(p, sz);
    buf_slots(p, slots);
    if (mem_alloc_group(MEM_TAG_ANALYTICS, slots, sz, PCA_BUF_COUNT, MEM_CACHE_LINE,
                        MEM_ZERO | MEM_PREFAULT) != 0) {
        memset(p, 0, sizeof *p);
        return -ENOMEM;
    }
    /* Warm-up on a fixed full matrix of the real size (1 / (1 + i + j), a Hilbert-like matrix
     * with distinct top eigenvalues), so every BLAS path of the steady state runs once now. */
    for (size_t j = 0; j < n; j++)
        for (size_t i = j; i < n; i++)
            p->a[j * n + i] = 1.0 / (double)(1 + i + j);
    if (run_dsyevr(p) != 0) {
        pca_fini(p);
        return -EIO;
    }
    return 0;
}
