/*
 * histo: see histo.h.
 */
#include "base/histo.h"

#include <string.h>

void histo_reset(histo_t *h)
{
    memset(h, 0, sizeof *h);
}

void histo_merge(histo_t *into, const histo_t *from)
{
    for (unsigned i = 0; i < HISTO_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->n += from->n;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t histo_quantile(const histo_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n)
        rank = h->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HISTO_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank) {
            uint64_t hi = i + 1 < HISTO_BUCKETS ? histo_bucket_low(i + 1) - 1 : UINT64_MAX;
            return hi < h->max ? hi : h->max;
        }
    }
    return h->max;
}
