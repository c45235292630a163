/*
 * bench_mem: allocation rate of the four ways tickcore could get scratch memory, in the same
 * loop with the same sizes: a bump arena (reset per round), a fixed-size pool (put back per
 * round), mimalloc directly, glibc malloc (called as __libc_malloc: Debian's libmimalloc
 * overrides malloc itself in any process that links it), and mem_alloc (mimalloc plus tickcore's
 * per-thread accounting, to show what the counters cost). Each round allocates K objects, writes
 * one byte of each, then releases them all (reset, K puts, or K frees). Figures are medians of
 * several runs; ratios are against glibc malloc in the same run, since the machine is shared.
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/arena.h"
#include "mem/mem.h"
#include "mem/pool.h"

#include <mimalloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *__libc_malloc(size_t);
void __libc_free(void *);

enum { K = 1024 };
static void *ptrs[K];
static size_t sizes[K];

/* Keep the compiler from proving the allocations useless. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

typedef enum { V_ARENA, V_POOL, V_MIMALLOC, V_GLIBC, V_MEM, V_COUNT } variant_t;
static const char *const names[V_COUNT] = {"arena", "pool", "mi_malloc", "glibc malloc",
                                           "mem_alloc (mimalloc + counters)"};

static double run_once(variant_t v, size_t rounds, arena_t *a, pool_t *p)
{
    double t0 = clock_mono_s();
    for (size_t r = 0; r < rounds; r++) {
        switch (v) {
        case V_ARENA:
            for (size_t i = 0; i < K; i++) {
                char *m = arena_alloc(a, sizes[i], 16);
                m[0] = (char)i;
                escape(m);
            }
            arena_reset(a);
            break;
        case V_POOL:
            for (size_t i = 0; i < K; i++) {
                char *m = pool_get(p);
                m[0] = (char)i;
                ptrs[i] = m;
                escape(m);
            }
            for (size_t i = 0; i < K; i++)
                pool_put(p, ptrs[i]);
            break;
        case V_MIMALLOC:
            for (size_t i = 0; i < K; i++) {
                char *m = mi_malloc(sizes[i]);
                m[0] = (char)i;
                ptrs[i] = m;
                escape(m);
            }
            for (size_t i = 0; i < K; i++)
                mi_free(ptrs[i]);
            break;
        case V_GLIBC:
            for (size_t i = 0; i < K; i++) {
                char *m = __libc_malloc(sizes[i]);
                m[0] = (char)i;
                ptrs[i] = m;
                escape(m);
            }
            for (size_t i = 0; i < K; i++)
                __libc_free(ptrs[i]);
            break;
        case V_MEM:
            for (size_t i = 0; i < K; i++) {
                char *m = mem_alloc(MEM_TAG_BENCH, sizes[i]);
                m[0] = (char)i;
                ptrs[i] = m;
                escape(m);
            }
            for (size_t i = 0; i < K; i++)
                mem_free(MEM_TAG_BENCH, ptrs[i], sizes[i]);
            break;
        case V_COUNT:
            break;
        }
    }
    return (double)(rounds * K) / (clock_mono_s() - t0);
}

static void run_table(const char *title, size_t max_size, size_t rounds, int runs)
{
    arena_t a;
    pool_t p;
    if (arena_init(&a, "bench", MEM_TAG_BENCH, K * (max_size + 16) + 4096, ARENA_FIXED) ||
        pool_init(&p, "bench", MEM_TAG_BENCH, max_size, 16, K)) {
        fprintf(stderr, "bench_mem: cannot set up arena and pool\n");
        exit(1);
    }
    double med[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        double r[64];
        run_once((variant_t)v, rounds / 10 + 1, &a, &p); /* warm-up */
        for (int i = 0; i < runs; i++)
            r[i] = run_once((variant_t)v, rounds, &a, &p);
        med[v] = bench_median(r, (size_t)runs);
    }
    printf("%s (%d objects per round, median of %d runs of %zu rounds)\n", title, K, runs, rounds);
    printf("  %-34s %14s %10s %12s\n", "allocator", "allocs/s", "ns/alloc", "vs glibc");
    for (int v = 0; v < V_COUNT; v++)
        printf("  %-34s %12.1f M %10.2f %11.2fx\n", names[v], med[v] / 1e6, 1e9 / med[v],
               med[v] / med[V_GLIBC]);
    pool_fini(&p);
    arena_fini(&a);
}

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(7, 64);
    size_t rounds = bench_env_count("TICKCORE_BENCH_ROUNDS", 4000);
    printf("allocation + release, same loop for every allocator; ratios within this run\n\n");
    for (size_t i = 0; i < K; i++)
        sizes[i] = 64;
    run_table("fixed 64-byte objects", 64, rounds, runs);
    uint64_t x = 12345;
    for (size_t i = 0; i < K; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sizes[i] = 16 + x % 241; /* 16..256 bytes */
    }
    printf("\n");
    run_table("mixed 16..256-byte objects (pool slots are 256 bytes)", 256, rounds, runs);
    mem_snapshot_t s;
    mem_snapshot(&s);
    printf("\nmem accounting after teardown: %lld live bytes in tag bench (must be 0)\n",
           (long long)s.tag[MEM_TAG_BENCH].live);
    return s.tag[MEM_TAG_BENCH].live != 0;
}
