/*
 * test_pool: capacity, exhaustion, reuse order, refusals (foreign pointers, double puts),
 * index round trips, poisoning, and a long random sequence checked against a naive model
 * (an array of in-use flags).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "mem/pool.h"
#include "tests/support/malloc_count.h"

#include <stdlib.h>
#include <string.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static void test_pool_fill_to_capacity_then_exhausted(void **state)
{
    (void)state;
    enum { CAP = 1000 };
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 40, 8, CAP), 0);
    static void *got[CAP];
    for (int i = 0; i < CAP; i++) {
        got[i] = pool_get(&p);
        assert_non_null(got[i]);
        assert_int_equal((uintptr_t)got[i] % 8, 0);
        memset(got[i], i & 0xff, 40);
        assert_int_equal(pool_index(&p, got[i]), (uint32_t)i); /* fresh pool: slab order */
        assert_ptr_equal(pool_at(&p, (uint32_t)i), got[i]);
    }
    for (int i = 1; i < CAP; i++) /* distinct, non-overlapping */
        assert_true((char *)got[i] >= (char *)got[i - 1] + 40);
    assert_int_equal(pool_in_use(&p), CAP);
    assert_null(pool_get(&p));
    assert_null(pool_get(&p));
    assert_int_equal(p.exhausted, 2);
    mem_obj_stats_t st;
    pool_stats(&p, &st);
    assert_int_equal(st.capacity, CAP);
    assert_int_equal(st.used, CAP);
    assert_int_equal(st.high_water, CAP);
    assert_int_equal(st.exhausted, 2);
    for (int i = 0; i < CAP; i++)
        assert_int_equal(pool_put(&p, got[i]), 0);
    assert_int_equal(pool_in_use(&p), 0);
    assert_non_null(pool_get(&p)); /* usable again after exhaustion */
    pool_fini(&p);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
}

static void test_pool_reuse_is_lifo(void **state)
{
    (void)state;
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 16, 0, 8), 0);
    void *a = pool_get(&p), *b = pool_get(&p), *c = pool_get(&p);
    assert_int_equal(pool_put(&p, a), 0);
    assert_int_equal(pool_put(&p, c), 0);
    assert_ptr_equal(pool_get(&p), c); /* last put, first out */
    assert_ptr_equal(pool_get(&p), a);
    assert_int_equal(pool_index(&p, b), 1);
    void *d = pool_get(&p); /* then the untouched ones, in slab order */
    assert_int_equal(pool_index(&p, d), 3);
    pool_fini(&p);
}

static void test_pool_refuses_foreign_pointers(void **state)
{
    (void)state;
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 32, 0, 4), 0);
    char *o = pool_get(&p);
    int local;
    assert_int_equal(pool_put(&p, &local), -EINVAL);
    assert_int_equal(pool_put(&p, o + 1), -EINVAL);              /* inside an object */
    assert_int_equal(pool_put(&p, (char *)o + 32 * 4), -EINVAL); /* one past the slab */
    assert_int_equal(p.bad_puts, 3);
    assert_int_equal(pool_in_use(&p), 1); /* unchanged by refusals */
    assert_int_equal(pool_put(&p, o), 0);
    pool_fini(&p);
}

static void test_pool_double_put_detected(void **state)
{
    (void)state;
#ifndef POOL_CHECK_DOUBLE_PUT
    skip(); /* NDEBUG build: no in-use bitmap */
#else
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 24, 0, 4), 0);
    void *a = pool_get(&p);
    void *b = pool_get(&p);
    assert_int_equal(pool_put(&p, a), 0);
    assert_int_equal(pool_put(&p, a), -EALREADY);
    assert_int_equal(p.double_puts, 1);
    /* The refused put did not push a second copy: two gets give two different objects. */
    void *x = pool_get(&p), *y = pool_get(&p);
    assert_ptr_not_equal(x, y);
    assert_int_equal(pool_in_use(&p), 3);
    void *never = pool_at(&p, 3); /* never handed out: putting it is a double put too */
    assert_int_equal(pool_put(&p, never), -EALREADY);
    assert_int_equal(p.double_puts, 2);
    assert_int_equal(pool_put(&p, b), 0);
    pool_fini(&p);
#endif
}

static void test_pool_init_rejects_bad_arguments(void **state)
{
    (void)state;
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 0, 0, 10), -EINVAL);
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 10, 0, 0), -EINVAL);
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 10, 12, 10), -EINVAL);
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, SIZE_MAX / 2, 0, 4), -EINVAL);
    pool_fini(&p);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
}

static void test_pool_alignment_rounds_stride(void **state)
{
    (void)state;
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 65, 64, 10), 0);
    assert_int_equal(p.obj_size, 128);
    for (int i = 0; i < 10; i++)
        assert_int_equal((uintptr_t)pool_get(&p) % 64, 0);
    pool_reset(&p);
    assert_int_equal(pool_in_use(&p), 0);
    assert_int_equal(pool_index(&p, pool_get(&p)), 0);
    pool_fini(&p);
}

static void test_pool_random_ops_match_model(void **state)
{
    (void)state;
    enum { CAP = 512, OPS = 200000 };
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, sizeof(uint64_t), 0, CAP), 0);
    static bool model_used[CAP];
    static void *held[CAP];
    memset(model_used, 0, sizeof model_used);
    unsigned nheld = 0;
    uint64_t rng = 88172645463325252ull;
    malloc_count_t before;
    malloc_count_get(&before);
    for (int op = 0; op < OPS; op++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (rng % 3 != 0 || nheld == 0) { /* gets outnumber puts: the pool runs dry often */
            uint64_t *o = pool_get(&p);
            if (nheld == CAP) {
                assert_null(o);
                continue;
            }
            assert_non_null(o);
            uint32_t idx = pool_index(&p, o);
            assert_false(model_used[idx]);
            model_used[idx] = true;
            *o = idx;
            held[nheld++] = o;
        } else {
            unsigned k = (unsigned)(rng >> 32) % nheld;
            uint64_t *o = held[k];
            assert_int_equal(*o, pool_index(&p, o)); /* nobody else wrote it */
            model_used[*o] = false;
            assert_int_equal(pool_put(&p, o), 0);
            held[k] = held[--nheld];
        }
        assert_int_equal(pool_in_use(&p), nheld);
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    pool_fini(&p);
}

static void test_pool_poisons_free_objects(void **state)
{
    (void)state;
    pool_t p;
    assert_int_equal(pool_init(&p, "t", MEM_TAG_TEST, 32, 0, 4), 0);
    char *o = pool_get(&p);
    if (mem_poisoned(o) < 0) {
        pool_fini(&p);
        skip();
    }
    assert_int_equal(mem_poisoned(o), 0);
    assert_int_equal(mem_poisoned(o + 31), 0);
    assert_int_equal(mem_poisoned(pool_at(&p, 1)), 1); /* not handed out yet */
    assert_int_equal(pool_put(&p, o), 0);
    assert_int_equal(mem_poisoned(o), 1); /* use after put would be reported */
    pool_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pool_fill_to_capacity_then_exhausted, reset_counters),
        cmocka_unit_test_setup(test_pool_reuse_is_lifo, reset_counters),
        cmocka_unit_test_setup(test_pool_refuses_foreign_pointers, reset_counters),
        cmocka_unit_test_setup(test_pool_double_put_detected, reset_counters),
        cmocka_unit_test_setup(test_pool_init_rejects_bad_arguments, reset_counters),
        cmocka_unit_test_setup(test_pool_alignment_rounds_stride, reset_counters),
        cmocka_unit_test_setup(test_pool_random_ops_match_model, reset_counters),
        cmocka_unit_test_setup(test_pool_poisons_free_objects, reset_counters),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
