/*
 * npy: the NumPy array file format, version 1.0 (numpy.org, "numpy.lib.format"), for matrices of
 * doubles that `numpy.load` reads without any other tool. A file is the magic "\x93NUMPY", the
 * version bytes 1 and 0, a 2-byte little-endian HEADER_LEN, then HEADER_LEN bytes of an ASCII
 * Python dict literal {'descr': '<f8', 'fortran_order': False, 'shape': (R, C), } padded with
 * spaces and ended by '\n' so that the data begins at a multiple of 64 bytes (the format's
 * alignment), then the R * C doubles in C (row-major) order, little-endian. Version 1.0 limits
 * HEADER_LEN to 65535, far above what a 2-D shape needs. Ownership: the caller's buffers and
 * FILE; nothing is allocated. Any thread (no state).
 */
#ifndef TICKCORE_BASE_NPY_H
#define TICKCORE_BASE_NPY_H

#include <stddef.h>
#include <stdio.h>

#define NPY_ALIGN      64u  /* the data starts at a multiple of this */
#define NPY_HEADER_MAX 256u /* the whole preamble for ndim <= 2 fits in this */

/* The preamble (magic, version, HEADER_LEN, dict, padding, '\n') for a '<f8' C-order array of
 * shape[0..ndim) (ndim 1 or 2) into out[0..cap). Returns its length (a multiple of NPY_ALIGN), or
 * 0 if ndim is not 1 or 2 or cap is too small. Pure. */
size_t npy_header_f64(char *out, size_t cap, const size_t *shape, int ndim);

/* Write a rows x cols matrix of doubles (a[i * cols + j]) as a .npy file to f: the preamble,
 * then the values little-endian. 0, or -EIO on a write error, -EINVAL for a bad shape. Control
 * path. */
int npy_write_f64(FILE *f, const double *a, size_t rows, size_t cols);

/* True when path ends in ".npy" (the outputs choose their format by extension). */
int npy_path(const char *path);

#endif
