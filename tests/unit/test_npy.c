/*
 * test_npy: the .npy preamble against bytes written by hand from the NumPy format specification
 * (numpy.lib.format, version 1.0): magic \x93NUMPY, version 1 0, HEADER_LEN little-endian, the
 * dict literal, spaces, '\n', the total a multiple of 64; a 1-D and a wide shape; refused shapes
 * and short buffers; and a whole 2 x 2 file whose data bytes are the IEEE 754 encodings written
 * out by hand (1.0 = 00 00 00 00 00 00 f0 3f, -2.5 = 00 00 00 00 00 00 04 c0, ...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "base/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), } is 59 characters: 10 + 59 + '\n'
 * = 70 bytes, rounded up to 128: HEADER_LEN = 118 = 0x76, 58 spaces of padding. */
static void test_npy_header_3x3(void **state)
{
    (void)state;
    static const char want[] = "\x93NUMPY\x01\x00\x76\x00"
                               "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }"
                               "                                                          "
                               "\n";
    assert_int_equal(sizeof want - 1, 128);
    char out[NPY_HEADER_MAX];
    size_t shape[2] = {3, 3};
    size_t n = npy_header_f64(out, sizeof out, shape, 2);
    assert_int_equal(n, 128);
    assert_memory_equal(out, want, 128);
}

/* (7,) -> the dict is 57 characters: 10 + 57 + 1 = 68 -> 128, HEADER_LEN 118, 60 spaces. A
 * 500 x 500 shape: 63 characters, 10 + 63 + 1 = 74 -> 128 as well. */
static void test_npy_header_1d_and_wide(void **state)
{
    (void)state;
    char out[NPY_HEADER_MAX];
    size_t s1[1] = {7};
    assert_int_equal(npy_header_f64(out, sizeof out, s1, 1), 128);
    const char *d1 = "{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }";
    assert_int_equal(strlen(d1), 57);
    assert_memory_equal(out + 10, d1, 57);
    for (size_t i = 10 + 57; i < 127; i++)
        assert_int_equal(out[i], ' ');
    assert_int_equal(out[127], '\n');
    assert_int_equal((unsigned char)out[8], 118);
    assert_int_equal((unsigned char)out[9], 0);

    size_t s2[2] = {500, 500};
    assert_int_equal(npy_header_f64(out, sizeof out, s2, 2), 128);
    assert_memory_equal(out + 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (500, 500), }",
                        63);
    /* the widest 2-D shape: 19 + 19 digits instead of 1 + 1, a dict of 59 + 36 = 95 characters,
     * 10 + 95 + 1 = 106 -> still 128 (so NPY_HEADER_MAX is ample), ending "), }" then spaces */
    size_t s3[2] = {9999999999999999999u, 9999999999999999999u};
    assert_int_equal(npy_header_f64(out, sizeof out, s3, 2), 128);
    assert_memory_equal(out + 10 + 95 - 4, "), }", 4);
    assert_int_equal(out[10 + 95], ' ');
}

static void test_npy_refused(void **state)
{
    (void)state;
    char out[NPY_HEADER_MAX];
    size_t s[3] = {1, 2, 3};
    assert_int_equal(npy_header_f64(out, sizeof out, s, 3), 0);
    assert_int_equal(npy_header_f64(out, sizeof out, s, 0), 0);
    assert_int_equal(npy_header_f64(out, 127, s, 2), 0); /* needs 128 */
    assert_true(npy_path("corr.npy"));
    assert_false(npy_path("corr.csv"));
    assert_false(npy_path("npy"));
    assert_false(npy_path(NULL));
}

static void test_npy_file_bytes(void **state)
{
    (void)state;
    double a[4] = {1.0, -2.5, 0.0, 0.5};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(npy_write_f64(f, a, 2, 2), 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(len, 128 + 32);
    assert_memory_equal(buf + 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
                        59);
    static const unsigned char data[32] = {
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, /* 1.0: exponent 1023 = 0x3ff, mantissa 0 */
        0, 0, 0, 0, 0, 0, 0x04, 0xc0, /* -2.5 = -1.25 * 2^1: sign, 0x400, mantissa 0x4000... */
        0, 0, 0, 0, 0, 0, 0,    0,    /* 0.0 */
        0, 0, 0, 0, 0, 0, 0xe0, 0x3f, /* 0.5: exponent 1022 = 0x3fe */
    };
    assert_memory_equal(buf + 128, data, 32);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_header_3x3),
        cmocka_unit_test(test_npy_header_1d_and_wide),
        cmocka_unit_test(test_npy_refused),
        cmocka_unit_test(test_npy_file_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
