/*
 * truth: compare the cross-section with the ground truth the generator wrote next to its data
 * (FILE.truth.csv, format in sim/gen.h): the mean and largest absolute difference between the
 * estimated and the true correlation over every tracked pair, and the adjusted Rand index of the
 * MST clusters against the generator's sectors; and the same errors of the generator's floor (the
 * latent one-minute sample correlation, FILE.floor.csv) over the same pairs. Control path, after
 * the replay: it reads a file and allocates (inside a mem control scope, freed before it returns).
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
    double bias;        /* mean_est - mean_true */
    size_t floor_pairs; /* pairs also in the floor file (0: none found) */
    double floor_mae;   /* mean |latent one-minute sample rho - true rho| over those pairs */
    double floor_bias;  /* mean (latent sample rho - true rho) */
    char floor_path[320];
    double ari; /* clusters vs sectors; NaN without clusters */
    size_t sectors;
    char err[256];
} truth_result_t;

/* 0, or -1 with a message in r->err (file missing, malformed, no matrix in it). When the
 * generator's floor file (FILE.floor.csv beside FILE.truth.csv, sim/gen.h) is there and readable,
 * the floor figures are filled too (otherwise floor_pairs is 0 and they are NaN). */
int truth_compare(const char *path, const xsection_t *x, truth_result_t *r);

/* The floor file beside a truth file: ".truth.csv" replaced by ".floor.csv". 0, -EINVAL (the
 * path does not end in .truth.csv), -ENAMETOOLONG. */
int truth_floor_path(char *dst, size_t cap, const char *truth_path);

/* The double a NUL-terminated decimal stands for, as strtod(s, NULL) gives it, bit for bit:
 * plain decimals of up to 2^53 as an integer and up to 22 digits after the point (the truth
 * files' 12-digit correlations) without strtod (one division by an exact power of ten), the
 * rest by strtod. Any thread, no allocation. */
double truth_parse_double(const char *s);

/* Adjusted Rand index of two labelings a, b of n items (labels < na, < nb), Hubert-Arabie.
 * scratch: na * nb + na + nb doubles. NaN when undefined (n < 2). */
double truth_ari(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb, size_t n,
                 double *scratch);

/* The truth file's correlations and sectors for the tracked symbols of x: rho (n x n) the true
 * correlations (NaN where the file has none), sector (n) their sectors (TRUTH_NO_SECTOR where the
 * file does not name the symbol). 0, or -1 with a message in err. Control path: allocates scratch
 * through mem_control_enter. */
#define TRUTH_NO_SECTOR UINT32_MAX
int truth_load(const char *path, const xsection_t *x, double *rho, uint32_t *sector, char *err,
               size_t errlen);

#endif
