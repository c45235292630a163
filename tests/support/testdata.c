/*
 * testdata: see testdata.h.
 */
#include "tests/support/testdata.h"

#include "mem/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool testdata_path(char *dst, size_t cap, const char *name)
{
    const char *root = getenv("TICKCORE_DATA");
    if (root) {
        snprintf(dst, cap, "%s/itch/%s", root, name);
        if (access(dst, R_OK) == 0)
            return true;
        snprintf(dst, cap, "%s/%s", root, name);
        if (access(dst, R_OK) == 0)
            return true;
    }
    snprintf(dst, cap, "tests/data/itch/%s", name);
    return access(dst, R_OK) == 0;
}

bool testdata_load(const char *name, testdata_t *f)
{
    memset(f, 0, sizeof *f);
    char path[4096];
    if (!testdata_path(path, sizeof path, name))
        return false;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    long sz = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (sz <= 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return false;
    }
    f->p = mem_alloc(MEM_TAG_TEST, (size_t)sz);
    if (f->p && fread(f->p, 1, (size_t)sz, fp) == (size_t)sz) {
        f->len = (size_t)sz;
    } else if (f->p) {
        mem_free(MEM_TAG_TEST, f->p, (size_t)sz);
        f->p = NULL;
    }
    fclose(fp);
    return f->p != NULL;
}

void testdata_unload(testdata_t *f)
{
    if (f->p)
        mem_free(MEM_TAG_TEST, f->p, f->len);
    memset(f, 0, sizeof *f);
}
