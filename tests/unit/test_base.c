/*
 * test_base: the shared helpers of base/. byteorder against byte patterns worked out by hand
 * (network order: most significant byte first) at unaligned addresses, and stores that touch
 * exactly their width; the clocks against the kernel's other views of time (time(2), a sleep of
 * known length, a thread that sleeps uses no CPU); err_set and err_fail on NULL, empty and short
 * buffers; the branch hints keep their operand's truth value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "base/byteorder.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/hints.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* 0x01 0x23 0x45 0x67 0x89 0xab 0xcd 0xef 0xfe 0xdc, behind one byte so every load is unaligned. */
static const uint8_t pattern[11] = {0xee, 0x01, 0x23, 0x45, 0x67, 0x89,
                                    0xab, 0xcd, 0xef, 0xfe, 0xdc};

static void test_base_be_get_reads_most_significant_first(void **state)
{
    (void)state;
    const uint8_t *p = pattern + 1;
    assert_int_equal(be16_get(p), 0x0123);
    assert_int_equal(be16_get(p + 1), 0x2345);
    assert_int_equal(be16_get(p + 8), 0xfedc);
    assert_int_equal(be32_get(p), 0x01234567u);
    assert_int_equal(be32_get(p + 3), 0x6789abcdu);
    assert_int_equal(be32_get(p + 6), 0xcdeffedcu);
    assert_int_equal(be48_get(p), 0x0123456789abull);
    assert_int_equal(be48_get(p + 4), 0x89abcdeffedcull);
    assert_int_equal(be64_get(p), 0x0123456789abcdefull);
    assert_int_equal(be64_get(p + 2), 0x456789abcdeffedcull);
    /* An ITCH timestamp: 6 bytes, 34200 s after midnight = 34200000000000 ns = 0x1f1a_ced9_f000 */
    static const uint8_t ts[6] = {0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x00};
    assert_int_equal(be48_get(ts), 34200000000000ull);
}

static void test_base_be_put_writes_exactly_its_width(void **state)
{
    (void)state;
    uint8_t b[12];
    memset(b, 0xaa, sizeof b);
    be16_put(b + 1, 0x0102);
    static const uint8_t want16[12] = {0xaa, 0x01, 0x02, 0xaa, 0xaa, 0xaa,
                                       0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
    assert_memory_equal(b, want16, sizeof b);

    memset(b, 0xaa, sizeof b);
    be32_put(b + 3, 0xdeadbeefu);
    static const uint8_t want32[12] = {0xaa, 0xaa, 0xaa, 0xde, 0xad, 0xbe,
                                       0xef, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
    assert_memory_equal(b, want32, sizeof b);

    memset(b, 0xaa, sizeof b);
    be48_put(b + 1, 0xffff112233445566ull); /* the top 16 bits are not stored */
    static const uint8_t want48[12] = {0xaa, 0x11, 0x22, 0x33, 0x44, 0x55,
                                       0x66, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
    assert_memory_equal(b, want48, sizeof b);

    memset(b, 0xaa, sizeof b);
    be64_put(b + 1, 0x0123456789abcdefull);
    static const uint8_t want64[12] = {0xaa, 0x01, 0x23, 0x45, 0x67, 0x89,
                                       0xab, 0xcd, 0xef, 0xaa, 0xaa, 0xaa};
    assert_memory_equal(b, want64, sizeof b);
}

/* Every value of 16 bits and a sweep of wider ones survive put then get. */
static void test_base_be_round_trip(void **state)
{
    (void)state;
    uint8_t b[9];
    for (uint32_t v = 0; v <= 0xffff; v++) {
        be16_put(b + 1, (uint16_t)v);
        assert_int_equal(b[1], v >> 8);
        assert_int_equal(be16_get(b + 1), v);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        be32_put(b + 1, (uint32_t)x);
        assert_int_equal(be32_get(b + 1), (uint32_t)x);
        assert_int_equal(b[1], (uint8_t)(x >> 24));
        be48_put(b + 1, x);
        assert_int_equal(be48_get(b + 1), x & 0xffffffffffffull);
        assert_int_equal(b[1], (uint8_t)(x >> 40));
        be64_put(b + 1, x);
        assert_int_equal(be64_get(b + 1), x);
        assert_int_equal(b[1], (uint8_t)(x >> 56));
        assert_int_equal(b[8], (uint8_t)x);
    }
}

static void test_base_clock_mono_counts_a_sleep(void **state)
{
    (void)state;
    const uint64_t t0 = clock_mono_ns();
    const uint64_t t1 = clock_mono_ns();
    assert_true(t1 >= t0); /* never goes back */
    struct timespec d = {0, 20 * 1000 * 1000};
    while (nanosleep(&d, &d) == -1 && errno == EINTR)
        ;
    const uint64_t t2 = clock_mono_ns();
    assert_true(t2 - t1 >= 20ull * 1000 * 1000); /* at least the requested sleep */
    const double s = clock_mono_s();
    assert_true(s >= (double)t2 * 1e-9);
}

static void test_base_clock_wall_agrees_with_time(void **state)
{
    (void)state;
    const time_t before = time(NULL);
    const uint64_t wall = clock_wall_ns();
    const time_t after = time(NULL);
    /* time(2) truncates to whole seconds; the same instant lies between the two reads */
    assert_true(wall / CLOCK_NS_PER_S >= (uint64_t)before - 1);
    assert_true(wall / CLOCK_NS_PER_S <= (uint64_t)after + 1);
    assert_true(wall > 1577836800ull * CLOCK_NS_PER_S); /* after 2020-01-01 */
}

static void test_base_clock_thread_cpu_runs_only_when_working(void **state)
{
    (void)state;
    const uint64_t c0 = clock_thread_cpu_ns();
    volatile uint64_t sink = 0;
    uint64_t c1 = c0;
    for (uint64_t i = 0; c1 == c0 && i < 2000000000ull; i++) { /* work until it ticks */
        sink += i;
        if ((i & 0xffff) == 0)
            c1 = clock_thread_cpu_ns();
    }
    assert_true(c1 > c0);
    /* A sleeping thread is not charged the sleep: 50 ms asleep cost far less than 50 ms CPU. */
    const uint64_t m0 = clock_mono_ns(), s0 = clock_thread_cpu_ns();
    struct timespec d = {0, 50 * 1000 * 1000};
    while (nanosleep(&d, &d) == -1 && errno == EINTR)
        ;
    const uint64_t m1 = clock_mono_ns(), s1 = clock_thread_cpu_ns();
    assert_true(m1 - m0 >= 50ull * 1000 * 1000);
    assert_true(s1 - s0 < (m1 - m0) / 2);
    assert_true(clock_thread_cpu_s() >= (double)s1 * 1e-9);
}

static void test_base_err_set_formats_truncates_and_accepts_null(void **state)
{
    (void)state;
    char buf[16];
    err_set(buf, sizeof buf, "file %s line %d", "a.ini", 12);
    assert_string_equal(buf, "file a.ini line");
    /* truncated to errlen - 1 bytes, always terminated */
    memset(buf, 'x', sizeof buf);
    err_set(buf, 6, "%s", "abcdefghij");
    assert_string_equal(buf, "abcde");
    assert_int_equal(buf[6], 'x'); /* nothing past errlen */
    memset(buf, 'x', sizeof buf);
    err_set(buf, 0, "not written");
    assert_int_equal(buf[0], 'x');
    err_set(NULL, 100, "no buffer: %d", 1); /* must not crash */
    assert_int_equal(err_fail(buf, sizeof buf, -EINVAL, "bad key '%s'", "k"), -EINVAL);
    assert_string_equal(buf, "bad key 'k'");
    assert_int_equal(err_fail(NULL, 0, -ENOMEM, "x"), -ENOMEM);
}

static void test_base_hints_keep_truth_values(void **state)
{
    (void)state;
    volatile int two = 2, zero = 0;
    assert_true(likely(two));
    assert_false(likely(zero));
    assert_true(unlikely(two));
    assert_false(unlikely(zero));
    int calls = 0;
    if (unlikely(++calls == 1)) /* the operand is evaluated once */
        calls += 10;
    assert_int_equal(calls, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_be_get_reads_most_significant_first),
        cmocka_unit_test(test_base_be_put_writes_exactly_its_width),
        cmocka_unit_test(test_base_be_round_trip),
        cmocka_unit_test(test_base_clock_mono_counts_a_sleep),
        cmocka_unit_test(test_base_clock_wall_agrees_with_time),
        cmocka_unit_test(test_base_clock_thread_cpu_runs_only_when_working),
        cmocka_unit_test(test_base_err_set_formats_truncates_and_accepts_null),
        cmocka_unit_test(test_base_hints_keep_truth_values),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
