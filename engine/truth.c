/*
 * truth: see truth.h. The truth file is read with getline (its rows hold one column per symbol),
 * its correlation rows are kept only for the tracked symbols, and everything is freed before the
 * function returns. Allocation happens inside mem_control_enter/leave: it is a control command,
 * not churn. The correlations (n^2 numbers: 250,000 per file for 500 symbols, two files) are read
 * by truth_parse_double, strtod's exact fast path for the file's plain decimals.
 */
#include "engine/truth.h"

#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double truth_ari(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb, size_t n,
                 double *scratch)
{
    if (n < 2)
        return NAN;
    double *t = scratch, *ra = scratch + (size_t)na * nb, *rb = ra + na;
    memset(scratch, 0, ((size_t)na * nb + na + nb) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        t[(size_t)a[i] * nb + b[i]] += 1;
        ra[a[i]] += 1;
        rb[b[i]] += 1;
    }
    double sij = 0, sa = 0, sb = 0;
    for (size_t i = 0; i < (size_t)na * nb; i++)
        sij += t[i] * (t[i] - 1) / 2;
    for (uint32_t i = 0; i < na; i++)
        sa += ra[i] * (ra[i] - 1) / 2;
    for (uint32_t j = 0; j < nb; j++)
        sb += rb[j] * (rb[j] - 1) / 2;
    double total = (double)n * (double)(n - 1) / 2;
    double expect = sa * sb / total, maxi = (sa + sb) / 2;
    return maxi == expect ? 1.0 : (sij - expect) / (maxi - expect);
}

/* Exact powers of ten: every one up to 1e22 is a double without rounding. */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

double truth_parse_double(const char *s)
{
    /* Clinger's fast path: [-+]digits[.digits] with the digits, read as an integer m, at most
     * 2^53 and at most 22 after the point: m and 10^k are exact doubles, so m / 10^k is one
     * correctly rounded division, the value strtod returns. Anything else (an exponent, more
     * digits, inf/nan, trailing bytes) goes to strtod. */
    const char *p = s;
    bool neg = *p == '-';
    p += *p == '-' || *p == '+';
    uint64_t m = 0;
    int frac = -1, digits = 0;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            m = m * 10 + (uint64_t)(*p - '0');
            digits++;
            if (frac >= 0)
                frac++;
            if (m > (1ull << 53))
                return strtod(s, NULL);
        } else if (*p == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (*p != '\0' || digits == 0 || frac > 22)
        return strtod(s, NULL);
    double v = frac > 0 ? (double)m / POW10[frac] : (double)m;
    return neg ? -v : v;
}

/* Split line at commas in place; returns the field count (at most max). */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    char *nl = strpbrk(f[n - 1], "\r\n");
    if (nl)
        *nl = '\0';
    return n;
}

/* Read the matrix file path (the truth file's format) for the tracked symbols of x into rho
 * (n x n, NaN where absent), have[i] and sector[i]. 0, or -1 with a message in err. */
static int load_matrix(const char *path, const xsection_t *x, int32_t *row_of_loc, int32_t *tcol,
                       char **hfld, char **fld, size_t cap, double *rho, bool *have,
                       uint32_t *sector, uint32_t *max_sector, char *err, size_t errlen)
{
    const size_t n = x->n;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *hdr = NULL, *line = NULL;
    size_t hdrcap = 0, linecap = 0, ncols = 0, lineno = 0;
    int rc = -1;
    memset(have, 0, n * sizeof(bool));
    for (size_t i = 0; i < n * n; i++)
        rho[i] = NAN;
    bool got = false;
    while (getline(&hdr, &hdrcap, f) > 0) {
        lineno++;
        if (hdr[0] != '#' && hdr[0] != '\n') {
            got = true;
            break;
        }
    }
    if (!got) {
        snprintf(err, errlen, "%s: no header line", path);
        goto out;
    }
    ncols = split(hdr, hfld, cap);
    if (ncols < 7 || strcmp(hfld[0], "symbol") || strcmp(hfld[1], "locate")) {
        snprintf(err, errlen,
                 "%s:%zu: expected the header symbol,locate,sector,beta,gamma,sigma,SYM... "
                 "(a truth file with its correlation matrix)",
                 path, lineno);
        goto out;
    }
    for (size_t j = 0; j < n; j++) {
        tcol[j] = -1;
        const char *name = symtab_name(x->symbols, x->locs[j]);
        for (size_t c = 6; c < ncols; c++)
            if (strcmp(hfld[c], name) == 0) {
                tcol[j] = (int32_t)c;
                break;
            }
    }
    *max_sector = 0;
    while (getline(&line, &linecap, f) > 0) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        size_t k = split(line, fld, cap);
        if (k != ncols) {
            snprintf(err, errlen, "%s:%zu: %zu fields, the header has %zu", path, lineno, k, ncols);
            goto out;
        }
        long loc = strtol(fld[1], NULL, 10);
        if (loc <= 0 || loc > 65535) {
            snprintf(err, errlen, "%s:%zu: bad locate '%s'", path, lineno, fld[1]);
            goto out;
        }
        int32_t i = row_of_loc[loc];
        if (i < 0 || strcmp(fld[0], symtab_name(x->symbols, (uint16_t)loc)) != 0)
            continue; /* not tracked, or another symbol under that locate */
        have[i] = true;
        sector[i] = (uint32_t)strtoul(fld[2], NULL, 10);
        if (sector[i] > *max_sector)
            *max_sector = sector[i];
        for (size_t j = 0; j < n; j++)
            rho[(size_t)i * n + j] = tcol[j] >= 0 ? truth_parse_double(fld[tcol[j]]) : NAN;
    }
    rc = 0;
out:
    free(hdr);
    free(line);
    fclose(f);
    return rc;
}

/* The parser's scratch for one comparison (control path): the locate -> row map, the column of
 * each tracked symbol in the file, and the header and line fields. */
typedef struct parse_scratch {
    int32_t *row_of_loc, *tcol;
    char **hfld, **fld;
    size_t n, cap;
} parse_scratch_t;

#define SCRATCH_SLOTS(ps)                                                                          \
    {                                                                                              \
        (void **)&(ps)->row_of_loc, (void **)&(ps)->tcol, (void **)&(ps)->hfld,                    \
            (void **)&(ps)->fld                                                                    \
    }
#define SCRATCH_SIZES(ps)                                                                          \
    {                                                                                              \
        65536 * sizeof(int32_t), (ps)->n * sizeof(int32_t), (ps)->cap * sizeof(char *),            \
            (ps)->cap * sizeof(char *)                                                             \
    }

/* 0, or -1 with "out of memory" in err. */
static int scratch_open(parse_scratch_t *ps, const xsection_t *x, char *err, size_t errlen)
{
    ps->n = x->n;
    ps->cap = 70000;
    void **const slots[] = SCRATCH_SLOTS(ps);
    const size_t sizes[] = SCRATCH_SIZES(ps);
    if (mem_alloc_group(MEM_TAG_ANALYTICS, slots, sizes, 4, 0, 0) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < 65536; i++)
        ps->row_of_loc[i] = -1;
    for (size_t i = 0; i < ps->n; i++)
        ps->row_of_loc[x->locs[i]] = (int32_t)i;
    return 0;
}

static void scratch_close(parse_scratch_t *ps)
{
    if (!ps->row_of_loc)
        return;
    void **const slots[] = SCRATCH_SLOTS(ps);
    const size_t sizes[] = SCRATCH_SIZES(ps);
    mem_free_group(MEM_TAG_ANALYTICS, slots, sizes, 4);
}

/* load_matrix through a scratch. */
static int scratch_load(parse_scratch_t *ps, const char *path, const xsection_t *x, double *rho,
                        bool *have, uint32_t *sector, uint32_t *max_sector, char *err,
                        size_t errlen)
{
    return load_matrix(path, x, ps->row_of_loc, ps->tcol, ps->hfld, ps->fld, ps->cap, rho, have,
                       sector, max_sector, err, errlen);
}

int truth_load(const char *path, const xsection_t *x, double *rho, uint32_t *sector, char *err,
               size_t errlen)
{
    const size_t n = x->n;
    mem_control_enter();
    parse_scratch_t ps = {0};
    bool *have = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof(bool));
    uint32_t max_sector = 0;
    int rc = -1;
    if (!have)
        snprintf(err, errlen, "out of memory");
    else if (scratch_open(&ps, x, err, errlen) == 0)
        rc = scratch_load(&ps, path, x, rho, have, sector, &max_sector, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!have[i])
            sector[i] = TRUTH_NO_SECTOR;
    scratch_close(&ps);
    if (have)
        mem_free(MEM_TAG_ANALYTICS, have, n * sizeof(bool));
    mem_control_leave();
    return rc;
}

int truth_floor_path(char *dst, size_t cap, const char *truth_path)
{
    size_t len = strlen(truth_path), sl = strlen(".truth.csv");
    if (len < sl || strcmp(truth_path + len - sl, ".truth.csv") != 0)
        return -EINVAL;
    if (len - sl + sizeof ".floor.csv" > cap)
        return -ENAMETOOLONG;
    memcpy(dst, truth_path, len - sl);
    memcpy(dst + len - sl, ".floor.csv", sizeof ".floor.csv");
    return 0;
}

int truth_compare(const char *path, const xsection_t *x, truth_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->ari = r->floor_mae = r->floor_bias = NAN;
    if (!x->have_result || x->n < 2) {
        snprintf(r->err, sizeof r->err, "no correlation to compare");
        return -1;
    }
    mem_control_enter();
    const size_t n = x->n;
    parse_scratch_t ps = {0};
    bool *have = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof(bool));
    bool *fhave = mem_calloc(MEM_TAG_ANALYTICS, n, sizeof(bool));
    double *rho = mem_alloc(MEM_TAG_ANALYTICS, n * n * sizeof(double));
    double *frho = mem_alloc(MEM_TAG_ANALYTICS, n * n * sizeof(double));
    uint32_t *sector = mem_alloc(MEM_TAG_ANALYTICS, n * sizeof(uint32_t));
    uint32_t *fsector = mem_alloc(MEM_TAG_ANALYTICS, n * sizeof(uint32_t));
    int rc = -1;
    if (!have || !fhave || !rho || !frho || !sector || !fsector) {
        snprintf(r->err, sizeof r->err, "out of memory");
        goto out;
    }
    if (scratch_open(&ps, x, r->err, sizeof r->err) < 0)
        goto out;
    uint32_t max_sector = 0, fmax = 0;
    if (scratch_load(&ps, path, x, rho, have, sector, &max_sector, r->err, sizeof r->err) < 0)
        goto out;
    /* the floor next to the truth, when the generator wrote one */
    char fpath[sizeof r->floor_path];
    char ferr[sizeof r->err];
    bool floor = truth_floor_path(fpath, sizeof fpath, path) == 0 && access(fpath, R_OK) == 0 &&
                 scratch_load(&ps, fpath, x, frho, fhave, fsector, &fmax, ferr, sizeof ferr) == 0;
    if (floor)
        snprintf(r->floor_path, sizeof r->floor_path, "%s", fpath);
    double sum = 0, mx = 0, se = 0, st = 0, fsum = 0, fbias = 0;
    size_t pairs = 0, fpairs = 0;
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        all = all && have[i];
        for (size_t j = i + 1; j < n && have[i]; j++) {
            double tv = rho[i * n + j];
            if (!have[j] || !isfinite(tv))
                continue;
            double ev = x->compact[i * n + j];
            double d = fabs(ev - tv);
            sum += d;
            mx = d > mx ? d : mx;
            se += ev;
            st += tv;
            pairs++;
            double fv = floor && fhave[i] && fhave[j] ? frho[i * n + j] : NAN;
            if (isfinite(fv)) {
                fsum += fabs(fv - tv);
                fbias += fv - tv;
                fpairs++;
            }
        }
    }
    if (pairs == 0) {
        snprintf(r->err, sizeof r->err, "%s: no tracked symbol pair is in the truth matrix", path);
        goto out;
    }
    r->pairs = pairs;
    r->mae = sum / (double)pairs;
    r->max_err = mx;
    r->mean_est = se / (double)pairs;
    r->mean_true = st / (double)pairs;
    r->bias = r->mean_est - r->mean_true;
    r->floor_pairs = fpairs;
    if (fpairs) {
        r->floor_mae = fsum / (double)fpairs;
        r->floor_bias = fbias / (double)fpairs;
    }
    r->sectors = max_sector + 1;
    if (all && x->nclusters > 0 && x->graph.n == n) {
        uint32_t nb = (uint32_t)x->nclusters, na = max_sector + 1;
        size_t ns = (size_t)na * nb + na + nb;
        double *scratch = mem_alloc(MEM_TAG_ANALYTICS, ns * sizeof(double));
        if (scratch) {
            r->ari = truth_ari(sector, na, x->graph.label, nb, n, scratch);
            mem_free(MEM_TAG_ANALYTICS, scratch, ns * sizeof(double));
        }
    }
    rc = 0;
out:
    scratch_close(&ps);
    if (have)
        mem_free(MEM_TAG_ANALYTICS, have, n * sizeof(bool));
    if (fhave)
        mem_free(MEM_TAG_ANALYTICS, fhave, n * sizeof(bool));
    if (rho)
        mem_free(MEM_TAG_ANALYTICS, rho, n * n * sizeof(double));
    if (frho)
        mem_free(MEM_TAG_ANALYTICS, frho, n * n * sizeof(double));
    if (sector)
        mem_free(MEM_TAG_ANALYTICS, sector, n * sizeof(uint32_t));
    if (fsector)
        mem_free(MEM_TAG_ANALYTICS, fsector, n * sizeof(uint32_t));
    mem_control_leave();
    return rc;
}
