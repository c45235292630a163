/*
 * npy: see npy.h. The dict is formatted with snprintf into the caller's buffer, then padded; the
 * values go out through fwrite as they are in memory on a little-endian host, and byte-swapped
 * one at a time otherwise, so the file always says '<f8' truthfully.
 */
#include "base/npy.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

size_t npy_header_f64(char *out, size_t cap, const size_t *shape, int ndim)
{
    if ((ndim != 1 && ndim != 2) || cap < 10)
        return 0;
    char dict[160];
    int n;
    if (ndim == 1)
        n = snprintf(dict, sizeof dict,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,), }", shape[0]);
    else
        n = snprintf(dict, sizeof dict,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu, %zu), }", shape[0],
                     shape[1]);
    if (n < 0 || (size_t)n >= sizeof dict)
        return 0;
    /* magic 6 + version 2 + HEADER_LEN 2 + dict + at least the '\n', rounded up to the alignment */
    size_t total = (10 + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total > cap)
        return 0;
    size_t hlen = total - 10;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - 10 - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

int npy_write_f64(FILE *f, const double *a, size_t rows, size_t cols)
{
    char hdr[NPY_HEADER_MAX];
    size_t shape[2] = {rows, cols};
    size_t h = npy_header_f64(hdr, sizeof hdr, shape, 2);
    if (h == 0)
        return -EINVAL;
    if (fwrite(hdr, 1, h, f) != h)
        return -EIO;
    size_t n = rows * cols;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n && fwrite(a, sizeof *a, n, f) != n)
        return -EIO;
#else
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, &a[i], sizeof v);
        v = __builtin_bswap64(v);
        if (fwrite(&v, sizeof v, 1, f) != 1)
            return -EIO;
    }
#endif
    return ferror(f) ? -EIO : 0;
}

int npy_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n >= 4 && strcmp(path + n - 4, ".npy") == 0;
}
