/*
 * malloc_count: a process-wide allocation counter for tests, independent of mem/'s own
 * counters. It sees (1) every malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and free in the process, from any library, by defining those functions in the test
 * executable and forwarding to glibc's __libc_* entry points; and (2) every mimalloc call made
 * by our objects, through the linker's --wrap (the Makefile passes -Wl,--wrap=mi_malloc,...).
 * Part (1) is compiled out in sanitizer builds, whose runtimes must own malloc, and is bypassed
 * under valgrind, which replaces malloc everywhere (mem/ then uses glibc malloc, which valgrind
 * itself tracks); malloc_count_libc_seen() says whether it is active. Counters are process-wide
 * atomics.
 */
#ifndef TICKCORE_TESTS_MALLOC_COUNT_H
#define TICKCORE_TESTS_MALLOC_COUNT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct malloc_count {
    uint64_t libc_allocs; /* malloc-family calls that returned memory (realloc counts) */
    uint64_t libc_frees;  /* free() of a non-NULL pointer */
    uint64_t mi_allocs;   /* mimalloc allocation calls from our objects */
    uint64_t mi_frees;
} malloc_count_t;

void malloc_count_get(malloc_count_t *out);
/* Allocations of both kinds since the given reading. */
uint64_t malloc_count_allocs_since(const malloc_count_t *before);
/* True when the libc interposer is compiled in (not a sanitizer build). */
bool malloc_count_libc_seen(void);

#endif
