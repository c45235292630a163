/*
 * pca: the top k principal components of an n x n covariance or correlation matrix, with
 * LAPACK dsyevr (through LAPACKE_dsyevr_work, range 'I': only eigenvalues n-k+1..n and their
 * eigenvectors, by bisection and inverse iteration after the tridiagonal reduction).
 *
 * pca_init sizes everything for one n and k: a working copy of the matrix (dsyevr destroys its
 * input), the eigenvalue and eigenvector outputs, and the real and integer workspaces, whose
 * sizes it asks dsyevr for (lwork = liwork = -1) and then allocates (MEM_TAG_ANALYTICS). It
 * then runs one decomposition of a fixed test matrix of the real size, so that OpenBLAS sets up
 * its buffer pool before the seal; pca_compute allocates nothing. Results: values[i] is the
 * i-th largest eigenvalue (descending), vectors + i * n its unit eigenvector, ratio[i] =
 * values[i] / trace (the explained variance ratio; component 0 of a return covariance or
 * correlation matrix is the market factor). Sign convention: each eigenvector is flipped so
 * that the sum of its components is positive (a market factor has positive loadings); when
 * that sum is within 1e-6 of 0 (long-short components), so that the largest-magnitude
 * component (the first one, on ties) is positive. Input is the upper triangle of a row-major
 * n x n symmetric matrix (what covariance_matrix() writes); the lower triangle is not read.
 * LAPACK's own thread count is OpenBLAS's (see covariance_blas_threads). One thread owns a
 * pca_t; nothing here is thread-safe.
 */
#ifndef TICKCORE_ANALYTICS_PCA_H
#define TICKCORE_ANALYTICS_PCA_H

#include <stddef.h>
#include <stdint.h>

/* last_info when dsyevr returned fewer eigenvalues than asked. */
#define PCA_INFO_SHORT (-1000)

typedef struct pca {
    size_t n;        /* matrix order */
    size_t k;        /* components kept, 1..n */
    double *a;       /* n x n working copy (dsyevr overwrites it) */
    double *w;       /* n: eigenvalues from dsyevr (first k used, ascending) */
    double *z;       /* n x k column-major eigenvectors from dsyevr */
    int *isuppz;     /* 2k: dsyevr support of the eigenvectors */
    double *work;    /* lwork doubles */
    int *iwork;      /* liwork ints */
    size_t lwork;    /* from dsyevr's workspace query */
    size_t liwork;   /* from dsyevr's workspace query */
    double *values;  /* k eigenvalues, largest first */
    double *vectors; /* k x n: component i at vectors + i * n, unit length, sign-normalized */
    double *ratio;   /* k: values[i] / trace (0 if the trace is not > 0) */
    double trace;    /* sum of the diagonal = sum of all n eigenvalues */
    /* Counters (owner thread). */
    uint64_t computes; /* successful decompositions */
    uint64_t failures; /* refused input or LAPACK failures */
    int last_info;     /* info of the last dsyevr call: 0, LAPACK's info, or PCA_INFO_SHORT */
} pca_t;

/* Size for n x n matrices and k components; query and allocate dsyevr's workspace; warm up.
 * Returns 0, -EINVAL (k = 0, k > n, n beyond int), -ENOMEM, or -EIO if the LAPACK workspace
 * query or the warm-up failed (nothing is left allocated). Call before the seal. */
int pca_init(pca_t *p, size_t n, size_t k);
/* Free everything. A zeroed, never-initialised pca_t is accepted (no-op). */
void pca_fini(pca_t *p);
/* Decompose sym (upper triangle of an n x n row-major symmetric matrix; not modified). On
 * success returns 0 and fills values, vectors, ratio, trace. Returns -EINVAL (counted, results
 * untouched) if the upper triangle holds NaN or an infinity, or -EDOM (counted, results
 * undefined) if dsyevr fails (last_info says how). Owner thread; allocates nothing. */
int pca_compute(pca_t *p, const double *sym);

#endif
