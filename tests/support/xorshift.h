/*
 * xorshift: the deterministic pseudo-random numbers of tests and benchmarks, so a failure or a
 * figure reproduces from the seed alone. One step of Marsaglia's xorshift64 (shifts 13, 7, 17)
 * on a state the caller owns and seeds (any value but 0); it returns the new state. Header-only
 * on purpose: bench/ programs include it without linking tests/support/'s objects (whose malloc
 * interposer must stay out of the benchmarks). Not for the product: sim/gen has its own streams.
 */
#ifndef TICKCORE_TESTS_XORSHIFT_H
#define TICKCORE_TESTS_XORSHIFT_H

#include <stdint.h>

static inline uint64_t xorshift64_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

#endif
