/*
 * test_truth: truth_parse_double against the C library's strtod (the oracle), bit for bit, on
 * hand-picked decimals (the fast path's edges: 2^53, 22 fractional digits, signs, zeros, forms
 * it hands to strtod) and on random decimals of 1-20 digits written the way the generator writes
 * its truth files and otherwise; and truth_ari on hand-computed labelings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "engine/truth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_same(const char *s)
{
    double want = strtod(s, NULL), got = truth_parse_double(s);
    uint64_t a, b;
    memcpy(&a, &want, sizeof a);
    memcpy(&b, &got, sizeof b);
    if (a != b && !(isnan(want) && isnan(got)))
        fail_msg("'%s': strtod %.17g, truth_parse_double %.17g", s, want, got);
}

static void test_truth_parse_double_edges_match_strtod(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0",
        "-0",
        "+0",
        "0.0",
        "-0.0",
        "1",
        "-1",
        "1.",
        ".5",
        "-.5",
        "0.362801446044",
        "0.0096538063002844544",
        "0.00840034126122448",
        "1",
        "-0.999999999999",
        "9007199254740992",
        "9007199254740993",
        "90071992547409.93",
        "900719925474099.3",
        "0.1",
        "0.2",
        "0.3",
        "123456789012345.6",
        "0.0000000000000000000001",
        "0.00000000000000000000001",
        "1e5",
        "1E-3",
        "2.5e+10",
        "-1.5e-300",
        "inf",
        "-inf",
        "nan",
        "",
        "-",
        ".",
        "1.2.3",
        "12abc",
        " 1",
        "0x1p3",
        "00000000000000000000000001.5",
        "4.9406564584124654e-324",
        "1.7976931348623157e308",
        "0.30000000000000004",
        "99999999999999999999",
        "0.99999999999999999999",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_same(cases[i]);
}

static void test_truth_parse_double_random_match_strtod(void **state)
{
    (void)state;
    srand(13);
    char buf[64];
    for (int it = 0; it < 300000; it++) {
        char *p = buf;
        if (rand() % 4 == 0)
            *p++ = '-';
        int nd = 1 + rand() % 20, point = rand() % (nd + 2) - 1; /* -1: no point */
        for (int d = 0; d < nd; d++) {
            if (d == point)
                *p++ = '.';
            *p++ = (char)('0' + rand() % 10);
        }
        if (rand() % 16 == 0)
            p += sprintf(p, "e%d", rand() % 40 - 20);
        *p = '\0';
        expect_same(buf);
        /* the generator's own form: %.12g of a correlation */
        snprintf(buf, sizeof buf, "%.12g", (double)rand() / RAND_MAX * 2 - 1);
        expect_same(buf);
    }
}

static void test_truth_ari_hand_computed(void **state)
{
    (void)state;
    double scratch[64];
    const uint32_t a[] = {0, 0, 1, 1}, same[] = {1, 1, 0, 0}, cross[] = {0, 1, 0, 1};
    assert_true(fabs(truth_ari(a, 2, same, 2, 4, scratch) - 1.0) < 1e-12); /* relabelled */
    /* a = {0,0,1,1}, b = {0,1,0,1}: sum C(n_ij,2) = 0, sum C(a,2) = sum C(b,2) = 2, C(4,2) = 6:
     * expected 4/6, max 2, ARI = (0 - 2/3) / (2 - 2/3) = -0.5 */
    assert_true(fabs(truth_ari(a, 2, cross, 2, 4, scratch) + 0.5) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truth_parse_double_edges_match_strtod),
        cmocka_unit_test(test_truth_parse_double_random_match_strtod),
        cmocka_unit_test(test_truth_ari_hand_computed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
