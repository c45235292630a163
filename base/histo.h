/*
 * histo: a latency histogram in the HDR style: values (nanoseconds) fall into buckets whose
 * width grows with the value, 16 sub-buckets per power of two, so any percentile is known to
 * within 1/16 (6.25%) of its value over the whole uint64 range, in a fixed 8 KiB array that is
 * allocated with its owner (no allocation when recording). One thread records into a histo;
 * histo_merge adds one into another once its writer has stopped.
 */
#ifndef TICKCORE_BASE_HISTO_H
#define TICKCORE_BASE_HISTO_H

#include <stdint.h>

#define HISTO_SUB_BITS 4
#define HISTO_SUB      (1u << HISTO_SUB_BITS)
#define HISTO_BUCKETS  (64u * HISTO_SUB)

typedef struct histo {
    uint64_t count[HISTO_BUCKETS];
    uint64_t n, max, sum;
} histo_t;

static inline unsigned histo_index(uint64_t v)
{
    if (v < HISTO_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HISTO_SUB_BITS */
    return (e - HISTO_SUB_BITS + 1) * HISTO_SUB +
           (unsigned)((v >> (e - HISTO_SUB_BITS)) & (HISTO_SUB - 1));
}

/* The smallest value of bucket i. */
static inline uint64_t histo_bucket_low(unsigned i)
{
    if (i < HISTO_SUB)
        return i;
    unsigned e = i / HISTO_SUB + HISTO_SUB_BITS - 1;
    return ((uint64_t)HISTO_SUB + (i % HISTO_SUB)) << (e - HISTO_SUB_BITS);
}

static inline void histo_record(histo_t *h, uint64_t v)
{
    h->count[histo_index(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void histo_reset(histo_t *h);
void histo_merge(histo_t *into, const histo_t *from);
/* The value at quantile q (0..1): the upper edge of the bucket holding it, capped at max. */
uint64_t histo_quantile(const histo_t *h, double q);

#endif
