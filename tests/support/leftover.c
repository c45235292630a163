/*
 * leftover: see leftover.h.
 */
#include "tests/support/leftover.h"

#include "mem/mem.h"

#include <stdio.h>

int leftover_check(const char *prog, int rc)
{
    mem_snapshot_t s;
    mem_snapshot(&s);
    if (s.tag[MEM_TAG_TEST].live != 0 || s.tag[MEM_TAG_INGEST].live != 0) {
        fprintf(stderr, "%s: memory left: test %lld, ingest %lld bytes\n", prog,
                (long long)s.tag[MEM_TAG_TEST].live, (long long)s.tag[MEM_TAG_INGEST].live);
        rc = rc ? rc : 1;
    }
    return rc;
}
