/*
 * testdata: where the tests find the real market data (tests/data/, see its README), in one
 * place. A file is looked up under $TICKCORE_DATA/itch/, then $TICKCORE_DATA/, then
 * tests/data/itch/ (the tests run from the repository root). testdata_load reads a whole file
 * into memory charged to MEM_TAG_TEST; testdata_unload gives it back.
 */
#ifndef TICKCORE_TESTS_TESTDATA_H
#define TICKCORE_TESTS_TESTDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct testdata {
    uint8_t *p;
    size_t len;
} testdata_t;

/* The path of data file `name` in dst; false if no such file is readable. */
bool testdata_path(char *dst, size_t cap, const char *name);
/* Read data file `name`; false if it is missing, empty or unreadable (f is then zeroed). */
bool testdata_load(const char *name, testdata_t *f);
void testdata_unload(testdata_t *f);

#endif
