/*
 * test_arena: bump allocation, reset, high-water marks, both out-of-space policies, growth as
 * churn after the seal, and poisoning (checked through ASan's or valgrind's own view of the
 * memory when the test runs under one of them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "mem/arena.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <string.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static int64_t live_test_bytes(void)
{
    mem_snapshot_t s;
    mem_snapshot(&s);
    return s.tag[MEM_TAG_TEST].live;
}

static void test_arena_alignment_honoured(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 1 << 20, ARENA_FIXED), 0);
    uintptr_t prev_end = 0;
    for (size_t align = 1; align <= 4096; align *= 2) {
        for (size_t size = 1; size < 300; size += 37) {
            unsigned char *p = arena_alloc(&a, size, align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            assert_true((uintptr_t)p >= prev_end); /* no overlap with the previous block */
            memset(p, 0xAB, size);                 /* writable, whole */
            prev_end = (uintptr_t)p + size;
        }
    }
    assert_null(arena_alloc(&a, 8, 3)); /* not a power of two */
    assert_int_equal(a.refused, 1);
    double *d = arena_new(&a, double, 10);
    assert_int_equal((uintptr_t)d % _Alignof(double), 0);
    arena_fini(&a);
    assert_int_equal(live_test_bytes(), 0);
}

static void test_arena_reset_rewinds(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 4096, ARENA_FIXED), 0);
    void *first = arena_alloc(&a, 100, 16);
    assert_non_null(arena_alloc(&a, 200, 16));
    assert_true(arena_used(&a) >= 300);
    arena_reset(&a);
    assert_int_equal(arena_used(&a), 0);
    assert_ptr_equal(arena_alloc(&a, 100, 16), first);
    assert_int_equal(a.resets, 1);
    arena_fini(&a);
}

static void test_arena_high_water_kept_across_resets(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 8192, ARENA_FIXED), 0);
    assert_non_null(arena_alloc(&a, 3000, 8));
    arena_reset(&a);
    assert_non_null(arena_alloc(&a, 10, 8));
    arena_reset(&a);
    assert_non_null(arena_alloc(&a, 20, 8));
    mem_obj_stats_t st;
    arena_stats(&a, &st);
    assert_int_equal(st.high_water, 3000 + MEM_ASAN_REDZONE);
    assert_int_equal(st.used, 10 + MEM_ASAN_REDZONE); /* the report shows the last full cycle */
    assert_int_equal(arena_used(&a), 20 + MEM_ASAN_REDZONE); /* the owner sees the live figure */
    assert_int_equal(st.capacity, 8192);
    arena_fini(&a);
}

static void test_arena_fixed_refuses_when_full(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 1024, ARENA_FIXED), 0);
    assert_null(arena_alloc(&a, 2000, 8));
    assert_int_equal(a.refused, 1);
    void *p = arena_alloc(&a, 500, 8); /* still usable after a refusal */
    assert_non_null(p);
    assert_non_null(arena_alloc(&a, 400, 8));
    assert_null(arena_alloc(&a, 400, 8)); /* 1300 > 1024 */
    assert_int_equal(a.refused, 2);
    assert_int_equal(a.grows, 0);
    mem_obj_stats_t st;
    arena_stats(&a, &st);
    assert_int_equal(st.exhausted, 2);
    assert_null(arena_alloc(&a, SIZE_MAX - 8, 8)); /* absurd size: refused, no overflow */
    arena_fini(&a);
    assert_int_equal(live_test_bytes(), 0);
}

static void test_arena_grow_is_counted_as_churn_once(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 1024, ARENA_GROW), 0);
    mem_seal();
    unsigned char *p = arena_alloc(&a, 800, 8);
    unsigned char *q = arena_alloc(&a, 800, 8);     /* does not fit: a second block */
    unsigned char *big = arena_alloc(&a, 5000, 64); /* bigger than a block */
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(big);
    memset(q, 1, 800);
    memset(big, 2, 5000);
    assert_int_equal(a.grows, 2);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].churn_allocs, 2);
    assert_int_equal(s.nsites, 1);
    assert_non_null(strstr(s.sites[0].file, "mem/arena.c"));
    /* Same demand after a reset: the kept blocks serve it, no new growth, no new churn. */
    for (int round = 0; round < 5; round++) {
        arena_reset(&a);
        assert_non_null(arena_alloc(&a, 800, 8));
        assert_non_null(arena_alloc(&a, 800, 8));
        assert_non_null(arena_alloc(&a, 5000, 64));
    }
    assert_int_equal(a.grows, 2);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].churn_allocs, 2);
    mem_obj_stats_t st;
    arena_stats(&a, &st);
    assert_true(st.high_water >= 1024 + 1024 + 5000);
    assert_int_equal(st.capacity, 1024 + 1024 + 5000 + 64 + MEM_ASAN_REDZONE);
    mem_unseal();
    arena_fini(&a);
    assert_int_equal(live_test_bytes(), 0);
}

static void test_arena_reset_loop_allocates_nothing(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 1 << 16, ARENA_GROW), 0);
    malloc_count_t before;
    malloc_count_get(&before);
    for (int i = 0; i < 100000; i++) {
        for (size_t k = 1; k <= 16; k++)
            assert_non_null(arena_alloc(&a, k * 24, 8));
        arena_reset(&a);
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_int_equal(a.grows, 0);
    arena_fini(&a);
}

/* Random sizes, alignments and resets against a naive model: the list of blocks handed out since
 * the last reset. Every block is aligned, lies in no other, and keeps the bytes written to it
 * until the reset (an overlap would overwrite a neighbour's pattern). */
static void test_arena_random_ops_match_model(void **state)
{
    (void)state;
    enum { LIVE_MAX = 256 };
    static struct {
        unsigned char *p;
        size_t n;
        unsigned char fill;
    } live[LIVE_MAX];
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 4096, ARENA_GROW), 0);
    unsigned nlive = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int op = 0; op < 50000; op++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (rng % 20 == 0 || nlive == LIVE_MAX) {
            for (unsigned i = 0; i < nlive; i++)
                for (size_t k = 0; k < live[i].n; k++)
                    assert_int_equal(live[i].p[k], live[i].fill);
            arena_reset(&a);
            nlive = 0;
            continue;
        }
        size_t n = (size_t)(rng >> 8) % 3000;
        size_t align = (size_t)1 << ((rng >> 40) % 9); /* 1 .. 256 */
        unsigned char *p = arena_alloc(&a, n, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        for (unsigned i = 0; i < nlive; i++) /* [p, p+n) and [q, q+m) do not intersect */
            assert_true(n == 0 || live[i].n == 0 || p + n <= live[i].p ||
                        live[i].p + live[i].n <= p);
        unsigned char fill = (unsigned char)(op * 7 + 1);
        memset(p, fill, n);
        live[nlive].p = p;
        live[nlive].n = n;
        live[nlive].fill = fill;
        nlive++;
    }
    mem_obj_stats_t st;
    arena_stats(&a, &st);
    assert_true(st.high_water <= st.capacity);
    arena_fini(&a);
    assert_int_equal(live_test_bytes(), 0);
}

static void test_arena_init_rejects_zero(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 0, ARENA_FIXED), -EINVAL);
    arena_fini(&a); /* harmless on a failed init */
    assert_int_equal(live_test_bytes(), 0);
}

static void test_arena_poisons_after_reset(void **state)
{
    (void)state;
    arena_t a;
    assert_int_equal(arena_init(&a, "t", MEM_TAG_TEST, 4096, ARENA_FIXED), 0);
    unsigned char *p = arena_alloc(&a, 64, 16);
    assert_non_null(p);
    if (mem_poisoned(p) < 0) {
        arena_fini(&a);
        skip(); /* neither ASan nor valgrind: nothing can see poisoning */
    }
    assert_int_equal(mem_poisoned(p), 0);
    assert_int_equal(mem_poisoned(p + 63), 0);
    assert_int_equal(mem_poisoned(p + 200), 1); /* never handed out */
#ifdef MEM_ASAN
    assert_int_equal(mem_poisoned(p + 64), 1); /* the red zone after the allocation */
#endif
    arena_reset(&a);
    assert_int_equal(mem_poisoned(p), 1); /* use after reset would be reported */
    assert_int_equal(mem_poisoned(p + 63), 1);
    unsigned char *q = arena_alloc(&a, 32, 16);
    assert_ptr_equal(q, p);
    assert_int_equal(mem_poisoned(q + 31), 0);
    assert_int_equal(mem_poisoned(q + 40), 1);
    arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_arena_alignment_honoured, reset_counters),
        cmocka_unit_test_setup(test_arena_reset_rewinds, reset_counters),
        cmocka_unit_test_setup(test_arena_high_water_kept_across_resets, reset_counters),
        cmocka_unit_test_setup(test_arena_fixed_refuses_when_full, reset_counters),
        cmocka_unit_test_setup(test_arena_grow_is_counted_as_churn_once, reset_counters),
        cmocka_unit_test_setup(test_arena_reset_loop_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_arena_random_ops_match_model, reset_counters),
        cmocka_unit_test_setup(test_arena_init_rejects_zero, reset_counters),
        cmocka_unit_test_setup(test_arena_poisons_after_reset, reset_counters),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
