/*
 * leftover: the check a test binary makes after its last test, that the memory charged to the
 * tags it exercised (MEM_TAG_TEST and MEM_TAG_INGEST) all came back. It reads mem/'s counters
 * (mem_snapshot), so it sees only what went through mem_alloc; the process-wide counter is
 * malloc_count's. Call it from main with cmocka's result.
 */
#ifndef TICKCORE_TESTS_LEFTOVER_H
#define TICKCORE_TESTS_LEFTOVER_H

/* rc when no byte of MEM_TAG_TEST or MEM_TAG_INGEST is live; otherwise prints "<prog>: memory
 * left: test N, ingest M bytes" to stderr and returns rc, or 1 if rc was 0. */
int leftover_check(const char *prog, int rc);

#endif
