/*
 * truth: compare the cross-section with the ground truth the generator wrote next to its data
 * (FILE.truth.csv, format in sim/gen.h): the mean and largest absolute difference between the
 * estimated and the true correlation over every tracked pair, and the adjusted Rand index of the
 * MST clusters against the generator's sectors. Control path, after the replay: it reads a file
 * and allocates (inside a mem control scope, freed before it returns).
 */
#ifndef TICKCORE_ENGINE_TRUTH_H
#define TICKCORE_ENGINE_TRUTH_H

#include "engine/xsection.h"

#include <stddef.h>
#include <stdint.h>

typedef struct truth_result {
    size_t pairs;        /* tracked pairs found in the truth file */
    double mae, max_err; /* |estimated - true| correlation */
    double mean_est, mean_true;
    double ari; /* clusters vs sectors; NaN without clusters */
    size_t sectors;
    char err[256];
} truth_result_t;

/* 0, or -1 with a message in r->err (file missing, malformed, no matrix in it). */
int truth_compare(const char *path, const xsection_t *x, truth_result_t *r);

/* The truth file's rows for the x->n tracked symbols, in column order: rho (n x n) gets their true
 * correlations (NaN where the file has none), sector (n) their sectors (TRUTH_NO_SECTOR where the
 * file has no row). 0, or -1 with a message in err (file missing, malformed). Control path: it
 * allocates inside a mem control scope and frees before it returns. */
#define TRUTH_NO_SECTOR UINT32_MAX
int truth_load(const char *path, const xsection_t *x, double *rho, uint32_t *sector, char *err,
               size_t errlen);

/* Adjusted Rand index of two labelings a, b of n items (labels < na, < nb), Hubert-Arabie.
 * scratch: na * nb + na + nb doubles. NaN when undefined (n < 2). */
double truth_ari(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb, size_t n,
                 double *scratch);

#endif
