/*
 * test_mem: the accounting core. Every expected figure here is computed by hand from the
 * allocations the test itself makes; the process-wide counter in tests/support/malloc_count
 * is the independent witness for "performs 0 allocations".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "mem/arena.h"
#include "mem/mem.h"
#include "mem/pool.h"
#include "mem/sanitize.h"
#include "tests/support/malloc_count.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_set_strict(false);
    mem_debug_reset();
    return 0;
}

static const mem_tag_stats_t *tag_of(const mem_snapshot_t *s, mem_tag_t t)
{
    return &s->tag[t];
}

static void test_mem_live_peak_exact(void **state)
{
    (void)state;
    mem_snapshot_t s;
    void *a = mem_alloc(MEM_TAG_TEST, 100);
    void *b = mem_alloc(MEM_TAG_TEST, 200);
    assert_non_null(a);
    assert_non_null(b);
    mem_free(MEM_TAG_TEST, a, 100);
    void *c = mem_alloc(MEM_TAG_TEST, 50);
    assert_non_null(c);
    mem_snapshot(&s);
    const mem_tag_stats_t *t = tag_of(&s, MEM_TAG_TEST);
    assert_int_equal(t->allocs, 3);
    assert_int_equal(t->frees, 1);
    assert_int_equal(t->bytes_alloc, 350);
    assert_int_equal(t->bytes_freed, 100);
    assert_int_equal(t->live, 250);
    assert_int_equal(t->live_blocks, 2);
    assert_int_equal(t->peak, 300);
    assert_int_equal(t->churn_allocs, 0);
    assert_int_equal(s.total.live, 250);
    mem_free(MEM_TAG_TEST, b, 200);
    mem_free(MEM_TAG_TEST, c, 50);
    mem_snapshot(&s);
    assert_int_equal(tag_of(&s, MEM_TAG_TEST)->live, 0);
    assert_int_equal(tag_of(&s, MEM_TAG_TEST)->peak, 300);
    assert_int_equal(mem_leak_count(&s), 0);
}

/* mem_snapshot_counters: the same counters as mem_snapshot, without the figures it asks the kernel
 * for (peak RSS 0, page faults -1, where mem_snapshot has the process's VmHWM). */
static void test_mem_snapshot_counters_match_snapshot(void **state)
{
    (void)state;
    void *a = mem_alloc(MEM_TAG_TEST, 100);
    void *b = mem_alloc(MEM_TAG_BOOK, 4000);
    assert_non_null(a);
    assert_non_null(b);
    mem_free(MEM_TAG_TEST, a, 100);
    static mem_snapshot_t full, fast;
    mem_snapshot(&full);
    mem_snapshot_counters(&fast);
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
        assert_int_equal(fast.tag[t].allocs, full.tag[t].allocs);
        assert_int_equal(fast.tag[t].live, full.tag[t].live);
        assert_int_equal(fast.tag[t].peak, full.tag[t].peak);
    }
    assert_int_equal(tag_of(&fast, MEM_TAG_TEST)->allocs, 1);
    assert_int_equal(tag_of(&fast, MEM_TAG_TEST)->live, 0);
    assert_int_equal(tag_of(&fast, MEM_TAG_BOOK)->live, 4000);
    assert_int_equal(fast.total.live, full.total.live);
    assert_int_equal(fast.nobjs, full.nobjs);
    assert_int_equal(fast.sealed, full.sealed);
    assert_int_equal(fast.peak_rss, 0);
    assert_int_equal(fast.faults_after_seal, -1);
    assert_true(full.peak_rss > 4000);
    mem_free(MEM_TAG_BOOK, b, 4000);
}

static void test_mem_tags_are_separate(void **state)
{
    (void)state;
    void *a = mem_alloc(MEM_TAG_BOOK, 64);
    void *b = mem_alloc(MEM_TAG_INGEST, 128);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_BOOK].live, 64);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, 128);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    assert_string_equal(mem_tag_name(MEM_TAG_BOOK), "book");
    assert_string_equal(mem_tag_name(MEM_TAG_INGEST), "ingest");
    mem_free(MEM_TAG_BOOK, a, 64);
    mem_free(MEM_TAG_INGEST, b, 128);
}

static void test_mem_aligned_and_zeroed(void **state)
{
    (void)state;
    for (size_t align = 32; align <= 4096; align *= 2) {
        unsigned char *p = mem_zalloc_aligned(MEM_TAG_TEST, 1000, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        for (size_t i = 0; i < 1000; i++)
            assert_int_equal(p[i], 0);
        mem_free(MEM_TAG_TEST, p, 1000);
    }
    unsigned char *z = mem_calloc(MEM_TAG_TEST, 10, 100);
    assert_non_null(z);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(z[i], 0);
    mem_free(MEM_TAG_TEST, z, 1000);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, 9); /* 8 alignments and the calloc */
}

/* Fraction of the pages of [p, p+n) that are resident, from mincore(2). */
static double resident_fraction(const void *p, size_t n)
{
    const size_t page = 4096;
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    size_t len = (uintptr_t)p + n - start;
    size_t pages = (len + page - 1) / page;
    static unsigned char vec[(64u << 20) / 4096 + 2];
    assert_true(pages <= sizeof vec);
    assert_int_equal(mincore((void *)start, len, vec), 0);
    size_t in = 0;
    for (size_t i = 0; i < pages; i++)
        in += vec[i] & 1;
    return (double)in / (double)pages;
}

static void test_mem_prefault_backs_every_page(void **state)
{
    (void)state;
    const size_t n = 48u << 20; /* large: fresh pages from the OS, not reused ones */
    void *plain = mem_alloc_aligned(MEM_TAG_TEST, n, 4096);
    void *pre = mem_alloc_prefault(MEM_TAG_TEST, n, 4096);
    assert_non_null(plain);
    assert_non_null(pre);
    assert_true(resident_fraction(pre, n) == 1.0);
    /* The witness: without the flag, fresh memory is mostly not resident yet. */
    assert_true(resident_fraction(plain, n) < 0.5);
    mem_free(MEM_TAG_TEST, plain, n);
    mem_free(MEM_TAG_TEST, pre, n);
}

/* Blocks of 1 MiB and more get their own mappings (mimalloc's otherwise): zeroed without a
 * memset, backed at once when zeroed or prefaulted (mincore says every page is resident, and
 * touching them after the seal takes no page fault), moved correctly by realloc in both
 * directions, and returned by mem_free with the accounting exact. */
static void test_mem_large_blocks_zeroed_resident_and_freed(void **state)
{
    (void)state;
    size_t big = (5u << 20) + 123; /* not a multiple of a page or of 2 MiB */
    unsigned char *z = mem_zalloc(MEM_TAG_TEST, big);
    unsigned char *f = mem_alloc_prefault(MEM_TAG_TEST, big, 64);
    assert_non_null(z);
    assert_non_null(f);
    assert_int_equal((uintptr_t)f % 64, 0);
    for (size_t i = 0; i < big; i += 997)
        assert_int_equal(z[i], 0);
    assert_int_equal(z[big - 1], 0);
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t base = (uintptr_t)z & ~(uintptr_t)(pg - 1);
    size_t npages = ((uintptr_t)z + big - base + (size_t)pg - 1) / (size_t)pg;
    unsigned char *vec = malloc(npages);
    assert_int_equal(mincore((void *)base, (uintptr_t)z + big - base, vec), 0);
    /* glibc's calloc (valgrind, TICKCORE_MEM_BACKEND=libc) leaves fresh pages unbacked */
    if (strcmp(mem_backend_name(), "mimalloc") == 0)
        for (size_t i = 0; i < npages; i++)
            assert_true(vec[i] & 1);
    free(vec);
    mem_seal();
    mem_snapshot_t *s = malloc(sizeof *s);
    mem_snapshot(s);
    int64_t before = s->faults_after_seal;
    assert_true(before >= 0);
    for (size_t i = 0; i < big; i += 4096)
        f[i] = (unsigned char)i;
    mem_snapshot(s);
    /* not one fault per page of f (1280 pages). Tools fault on their own: AddressSanitizer's
     * shadow of f is 1/8 of its pages, valgrind's shadow memory more, ThreadSanitizer's 4x
     * (neither checked there). */
#ifdef __SANITIZE_THREAD__
    const bool tool_faults = true;
#else
    const bool tool_faults = RUNNING_ON_VALGRIND;
#endif
    if (!tool_faults)
        assert_true(s->faults_after_seal - before < (int64_t)(big / 4096 / 4));
    mem_unseal();
    /* realloc: large -> larger (contents kept), -> small (prefix kept) */
    for (size_t i = 0; i < big; i += 4096)
        z[i] = (unsigned char)(i >> 12);
    unsigned char *z2 = mem_realloc(MEM_TAG_TEST, z, big, big * 2);
    assert_non_null(z2);
    for (size_t i = 0; i < big; i += 4096)
        assert_int_equal(z2[i], (unsigned char)(i >> 12));
    unsigned char *z3 = mem_realloc(MEM_TAG_TEST, z2, big * 2, 100);
    assert_non_null(z3);
    assert_int_equal(z3[0], 0);
    mem_free(MEM_TAG_TEST, z3, 100);
    mem_free(MEM_TAG_TEST, f, big);
    mem_snapshot(s);
    assert_int_equal(s->tag[MEM_TAG_TEST].live, 0);
    assert_int_equal(s->tag[MEM_TAG_TEST].live_blocks, 0);
    free(s);
}

/* True where a tool faults pages of its own for every page the test touches: ThreadSanitizer
 * (4x shadow) and valgrind; fault-count bounds are not checked there. */
static bool tool_shadow_faults(void)
{
#ifdef __SANITIZE_THREAD__
    return true;
#else
    return RUNNING_ON_VALGRIND;
#endif
}

/* Pages of [p, p+n) backed by RAM (mincore), the page containing p included. */
static size_t resident_pages(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    size_t npages = ((uintptr_t)p + n - base + (size_t)pg - 1) / (size_t)pg, in = 0;
    unsigned char *vec = malloc(npages);
    assert_non_null(vec);
    assert_int_equal(mincore((void *)base, (uintptr_t)p + n - base, vec), 0);
    for (size_t i = 0; i < npages; i++)
        in += vec[i] & 1;
    free(vec);
    return in;
}

/* Background populate: blocks mapped at once, populated by the populator (and by the waiting
 * thread); after mem_populate_wait every page is resident, zero, and writing them all after the
 * seal takes (almost) no fault. The oracle is the kernel's own: mincore and getrusage. */
static void test_mem_populate_background_then_wait(void **state)
{
    (void)state;
    const size_t big = (size_t)24 << 20;
    uint64_t q0, d0;
    mem_populate_stats(&q0, &d0);
    mem_populate_background(true);
    unsigned char *a = mem_zalloc(MEM_TAG_TEST, big);
    unsigned char *b = mem_alloc_prefault(MEM_TAG_TEST, big / 2, 64);
    unsigned char *c = mem_alloc(MEM_TAG_TEST, big); /* neither zero nor prefault: not queued */
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    mem_populate_wait();
    uint64_t q1, d1;
    mem_populate_stats(&q1, &d1);
    const bool large = strcmp(mem_backend_name(), "mimalloc") == 0;
    if (large) { /* the glibc backend (valgrind) keeps every block: nothing is queued */
        assert_true(q1 - q0 >= big + big / 2);
        assert_int_equal(q1 - q0, d1 - d0); /* all of it populated */
        assert_int_equal(resident_pages(a, big), (big + 4095) / 4096);
        assert_int_equal(resident_pages(b, big / 2), (big / 2 + 4095) / 4096);
    }
    for (size_t i = 0; i < big; i += 4096)
        assert_int_equal(a[i], 0);
    mem_seal();
    mem_snapshot_t *s = malloc(sizeof *s);
    assert_non_null(s);
    mem_snapshot(s);
    int64_t before = s->faults_after_seal;
    for (size_t i = 0; i < big; i += 4096)
        a[i] = (unsigned char)(i >> 12);
    for (size_t i = 0; i < big / 2; i += 4096)
        b[i] = 1;
    mem_snapshot(s);
    /* not one per page (9,216 pages): a few without tools; AddressSanitizer faults its shadow
     * (1/8 of the pages), so a quarter is the bound, as above */
    const int64_t bound = MEM_ASAN_ON ? (int64_t)(big * 3 / 2 / 4096 / 4) : 16;
    if (large && !tool_shadow_faults())
        assert_true(s->faults_after_seal - before < bound);
    mem_unseal();
    mem_populate_background(false);
    mem_free(MEM_TAG_TEST, a, big);
    mem_free(MEM_TAG_TEST, b, big / 2);
    mem_free(MEM_TAG_TEST, c, big);
    mem_snapshot(s);
    assert_int_equal(mem_leak_count(s), 0);
    free(s);
}

/* Stopped early (a short run's teardown): the populator is joined after its current chunk, what
 * it did not reach stays unpopulated, freeing is safe, and later blocks are populated at
 * allocation again. The lazy populator's own faults after the seal are reported apart from
 * faults_after_seal. */
static void test_mem_populate_stops_and_counts_its_faults_apart(void **state)
{
    (void)state;
    const size_t big = (size_t)64 << 20;
    mem_populate_background(true);
    mem_populate_lazy(true);
    mem_seal();
    mem_snapshot_t *s = malloc(sizeof *s);
    assert_non_null(s);
    mem_snapshot(s);
    int64_t before = s->faults_after_seal;
    unsigned char *a = mem_zalloc(MEM_TAG_TEST, big); /* after the seal: churn, fine here */
    assert_non_null(a);
    uint64_t q, d;
    mem_populate_stats(&q, &d);
    for (int i = 0; i < 400 && d < q; i++) { /* let it work (SCHED_IDLE: may be slow) */
        usleep(5000);
        mem_populate_stats(&q, &d);
    }
    mem_snapshot(s);
    if (strcmp(mem_backend_name(), "mimalloc") == 0 && !RUNNING_ON_VALGRIND) {
        assert_true(d > 0);
        assert_true(s->populate_faults_after_seal > 0);
        /* the populator's faults (up to 16,384 without huge pages) are not the engine's */
        if (!tool_shadow_faults())
            assert_true(s->faults_after_seal - before < 64);
    }
    mem_populate_background(false);
    mem_populate_lazy(false);
    mem_unseal();
    mem_free(MEM_TAG_TEST, a, big);
    /* off again: a block is populated at its allocation */
    unsigned char *b = mem_alloc_prefault(MEM_TAG_TEST, (size_t)4 << 20, 64);
    assert_non_null(b);
    if (strcmp(mem_backend_name(), "mimalloc") == 0)
        assert_int_equal(resident_pages(b, (size_t)4 << 20), ((size_t)4 << 20) / 4096);
    mem_free(MEM_TAG_TEST, b, (size_t)4 << 20);
    mem_snapshot(s);
    assert_int_equal(mem_leak_count(s), 0);
    free(s);
}

static void test_mem_failures_counted(void **state)
{
    (void)state;
    assert_null(mem_calloc(MEM_TAG_TEST, SIZE_MAX / 2, 4)); /* n * size overflows */
    assert_null(mem_alloc_aligned(MEM_TAG_TEST, 64, 48));   /* not a power of two */
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].failed, 2);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, 0);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
}

/* A group is all or nothing: every block made, aligned and zeroed, or (one size cannot be had)
 * none left live and every slot NULL; freeing the group returns every byte. */
static void test_mem_group_all_or_nothing(void **state)
{
    (void)state;
    double *a = (double *)1, *c = (double *)1;
    int *b = (int *)1;
    void **slots[3] = {(void **)&a, (void **)&b, (void **)&c};
    size_t sizes[3] = {100, 2000, 30};
    assert_int_equal(mem_alloc_group(MEM_TAG_TEST, slots, sizes, 3, 64, MEM_ZERO), 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal((uintptr_t)a % 64, 0);
    assert_int_equal((uintptr_t)b % 64, 0);
    assert_int_equal(b[499], 0);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 2130);
    assert_int_equal(s.tag[MEM_TAG_TEST].live_blocks, 3);
    mem_free_group(MEM_TAG_TEST, slots, sizes, 3);
    assert_null(a);
    assert_null(b);
    assert_null(c);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);

    /* the third block cannot be had: the first two go back */
    a = (double *)1;
    b = (int *)1;
    c = (double *)1;
    sizes[2] = SIZE_MAX / 2; /* more than any allocator gives */
    assert_int_equal(mem_alloc_group(MEM_TAG_TEST, slots, sizes, 3, 64, 0), -ENOMEM);
    assert_null(a);
    assert_null(b);
    assert_null(c);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    assert_int_equal(s.tag[MEM_TAG_TEST].failed, 1);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, 5); /* 3, then 2 made and freed again */
}

static void test_mem_realloc_counts_free_and_alloc(void **state)
{
    (void)state;
    char *p = mem_alloc(MEM_TAG_TEST, 10);
    memcpy(p, "0123456789", 10);
    p = mem_realloc(MEM_TAG_TEST, p, 10, 1000);
    assert_non_null(p);
    assert_memory_equal(p, "0123456789", 10);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, 2);
    assert_int_equal(s.tag[MEM_TAG_TEST].frees, 1);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 1000);
    assert_int_equal(s.tag[MEM_TAG_TEST].peak, 1000);
    mem_free(MEM_TAG_TEST, p, 1000);
}

static void test_mem_churn_attributed_to_call_site(void **state)
{
    (void)state;
    void *before = mem_alloc(MEM_TAG_TEST, 8); /* start-up: not churn */
    mem_seal();
    assert_true(mem_is_sealed());
    void *p[4];
    int line_a = 0, line_b = 0;
/* One macro call: its mem_alloc and its __LINE__ expand on the same line, whatever the format. */
#define ALLOC_NOTING_LINE(dst, line, tag, n) ((line) = __LINE__, (dst) = mem_alloc((tag), (n)))
    for (int i = 0; i < 3; i++)
        ALLOC_NOTING_LINE(p[i], line_a, MEM_TAG_ANALYTICS, 24);
    ALLOC_NOTING_LINE(p[3], line_b, MEM_TAG_SERVER, 100);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.total.churn_allocs, 4);
    assert_int_equal(s.total.churn_bytes, 3 * 24 + 100);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].churn_allocs, 3);
    assert_int_equal(s.tag[MEM_TAG_SERVER].churn_allocs, 1);
    assert_int_equal(s.tag[MEM_TAG_TEST].churn_allocs, 0);
    assert_int_equal(s.nsites, 2);
    assert_string_equal(s.sites[0].file, __FILE__);
    assert_int_equal(s.sites[0].line, line_a);
    assert_int_equal(s.sites[0].tag, MEM_TAG_ANALYTICS);
    assert_int_equal(s.sites[0].count, 3);
    assert_int_equal(s.sites[0].bytes, 72);
    assert_int_equal(s.sites[1].line, line_b);
    assert_int_equal(s.sites[1].tag, MEM_TAG_SERVER);
    /* The text report names the site as file:line. */
    char *buf = NULL;
    size_t len = 0;
    mem_unseal(); /* open_memstream allocates: keep it out of the figures above */
    FILE *f = open_memstream(&buf, &len);
    mem_report_text(f, &s, 0);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "%s:%d [analytics]: 3 allocations, 72 bytes", __FILE__, line_a);
    assert_non_null(strstr(buf, want));
    free(buf);
    for (int i = 0; i < 3; i++)
        mem_free(MEM_TAG_ANALYTICS, p[i], 24);
    mem_free(MEM_TAG_SERVER, p[3], 100);
    mem_free(MEM_TAG_TEST, before, 8);
}

/* The seal records what start-up made per tag; later allocations do not move those figures. */
static void test_mem_seal_records_startup_figures(void **state)
{
    (void)state;
    void *a = mem_alloc(MEM_TAG_BOOK, 1000);
    void *b = mem_alloc(MEM_TAG_BOOK, 24);
    void *c = mem_alloc(MEM_TAG_STATS, 300);
    mem_free(MEM_TAG_BOOK, b, 24); /* freed before the seal: a call, but no bytes held */
    mem_seal();
    void *d = mem_alloc(MEM_TAG_BOOK, 4096); /* churn: not a start-up figure */
    mem_free(MEM_TAG_STATS, c, 300);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_BOOK].seal_allocs, 2);
    assert_int_equal(s.tag[MEM_TAG_BOOK].seal_live, 1000);
    assert_int_equal(s.tag[MEM_TAG_STATS].seal_allocs, 1);
    assert_int_equal(s.tag[MEM_TAG_STATS].seal_live, 300);
    assert_int_equal(s.tag[MEM_TAG_ENGINE].seal_allocs, 0);
    assert_int_equal(s.total.seal_allocs, 3);
    assert_int_equal(s.total.seal_live, 1300);
    assert_int_equal(s.tag[MEM_TAG_BOOK].allocs, 3);

    mem_unseal(); /* open_memstream allocates: keep it out of the figures */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mem_report_json(f, &s, 0);
    fclose(f);
    assert_non_null(strstr(buf, "\"stats\":{\"allocs\":1,"));
    assert_non_null(strstr(buf, "\"seal_allocs\":2,\"seal_live\":1000}"));
    free(buf);

    /* A second seal takes the figures again. */
    mem_seal();
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_BOOK].seal_allocs, 3);
    assert_int_equal(s.tag[MEM_TAG_BOOK].seal_live, 5096);
    assert_int_equal(s.tag[MEM_TAG_STATS].seal_live, 0);
    mem_free(MEM_TAG_BOOK, a, 1000);
    mem_free(MEM_TAG_BOOK, d, 4096);
}

/* peak_rss is this process's resident high-water mark, in bytes: touching 48 MiB shows, and it is
 * not more than the address space has ever held (VmPeak, read independently here). */
static void test_mem_peak_rss_sees_touched_pages(void **state)
{
    (void)state;
    size_t n = 48u << 20;
    unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)i;
    mem_snapshot_t s;
    mem_snapshot(&s);
    munmap(p, n);
    assert_true(s.peak_rss >= n);
    unsigned long long vmpeak_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmPeak: %llu kB", &vmpeak_kb) == 1)
            break;
    fclose(f);
    assert_true(vmpeak_kb > 0);
    assert_true(s.peak_rss <= vmpeak_kb * 1024u);
}

static void test_mem_control_scope_is_not_churn(void **state)
{
    (void)state;
    mem_seal();
    mem_control_enter();
    void *p = mem_alloc(MEM_TAG_ENGINE, 32);
    mem_control_leave();
    void *q = mem_alloc(MEM_TAG_ENGINE, 16);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_ENGINE].control_allocs, 1);
    assert_int_equal(s.tag[MEM_TAG_ENGINE].churn_allocs, 1);
    assert_int_equal(s.tag[MEM_TAG_ENGINE].churn_bytes, 16);
    mem_free(MEM_TAG_ENGINE, p, 32);
    mem_free(MEM_TAG_ENGINE, q, 16);
}

static void test_mem_strict_exit_status(void **state)
{
    (void)state;
    mem_snapshot_t s;
    mem_set_strict(true);
    mem_snapshot(&s);
    assert_int_equal(mem_exit_status(&s), 0);
    mem_seal();
    void *p = mem_alloc(MEM_TAG_STATS, 8);
    mem_snapshot(&s);
    assert_int_equal(mem_exit_status(&s), 3); /* churn */
    mem_free(MEM_TAG_STATS, p, 8);
    mem_set_strict(false);
    mem_snapshot(&s);
    assert_int_equal(mem_exit_status(&s), 0); /* churn is reported, not fatal, when lenient */
}

static void test_mem_leak_report_names_tag(void **state)
{
    (void)state;
    void *leak = mem_alloc(MEM_TAG_JOURNAL, 4096);
    void *ok = mem_alloc(MEM_TAG_BOOK, 16);
    mem_free(MEM_TAG_BOOK, ok, 16);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(mem_leak_count(&s), 1);
    mem_set_strict(true);
    mem_snapshot(&s);
    assert_int_equal(mem_exit_status(&s), 3);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mem_report_text(f, &s, MEM_REPORT_LEAKS);
    fclose(f);
    assert_non_null(strstr(buf, "LEAK: tag journal holds 4.0 KiB in 1 blocks"));
    assert_null(strstr(buf, "LEAK: tag book"));
    assert_null(strstr(buf, "leak check: OK"));
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    mem_report_json(f, &s, MEM_REPORT_LEAKS);
    fclose(f);
    assert_non_null(strstr(buf, "\"leaks\":{\"journal\":{\"bytes\":4096,\"blocks\":1}}"));
    assert_non_null(strstr(buf, "\"leak_check\":\"failed\""));
    assert_non_null(strstr(buf, "\"exit_status\":3"));
    free(buf);

    mem_free(MEM_TAG_JOURNAL, leak, 4096);
    mem_snapshot(&s);
    assert_int_equal(mem_leak_count(&s), 0);
    assert_int_equal(mem_exit_status(&s), 0);
    buf = NULL;
    f = open_memstream(&buf, &len);
    mem_report_text(f, &s, MEM_REPORT_LEAKS);
    fclose(f);
    assert_non_null(strstr(buf, "leak check: OK, 0 live bytes in every tag"));
    free(buf);
}

static void test_mem_registry_lists_objects(void **state)
{
    (void)state;
    arena_t a;
    pool_t p;
    assert_int_equal(arena_init(&a, "scratch", MEM_TAG_ANALYTICS, 4096, ARENA_FIXED), 0);
    assert_int_equal(pool_init(&p, "orders", MEM_TAG_BOOK, 48, 0, 100), 0);
    assert_non_null(arena_alloc(&a, 1000, 8));
    arena_reset(&a); /* arenas publish their figures at reset */
    void *o = pool_get(&p);
    assert_non_null(o);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.nobjs, 2);
    assert_int_equal(s.objs[0].kind, MEM_OBJ_ARENA);
    assert_string_equal(s.objs[0].name, "scratch");
    assert_int_equal(s.objs[0].st.capacity, 4096);
    assert_int_equal(s.objs[0].st.used, 1000 + MEM_ASAN_REDZONE);
    assert_int_equal(s.objs[0].st.high_water, 1000 + MEM_ASAN_REDZONE);
    assert_int_equal(s.objs[1].kind, MEM_OBJ_POOL);
    assert_string_equal(s.objs[1].name, "orders");
    assert_int_equal(s.objs[1].st.capacity, 100);
    assert_int_equal(s.objs[1].st.used, 1);
    assert_int_equal(pool_put(&p, o), 0);
    pool_fini(&p);
    arena_fini(&a);
    mem_snapshot(&s);
    assert_int_equal(s.nobjs, 0);
    assert_int_equal(s.tag[MEM_TAG_ANALYTICS].live, 0);
    assert_int_equal(s.tag[MEM_TAG_BOOK].live, 0);
}

/* ---- threads ---------------------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 1000 };
static void *handoff[THREADS][PER_THREAD];

static void *alloc_worker(void *arg)
{
    size_t id = (size_t)arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        handoff[id][i] = mem_alloc(MEM_TAG_INGEST, 16 + id); /* freed by another thread */
    return NULL;
}

static void *free_worker(void *arg)
{
    size_t id = (size_t)arg;
    size_t victim = (id + 1) % THREADS;
    for (size_t i = 0; i < PER_THREAD; i++)
        mem_free(MEM_TAG_INGEST, handoff[victim][i], 16 + victim);
    return NULL;
}

static void test_mem_threads_sum_exactly(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, alloc_worker, (void *)i), 0);
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    mem_snapshot_t s;
    mem_snapshot(&s);
    uint64_t bytes = 0;
    for (size_t i = 0; i < THREADS; i++)
        bytes += PER_THREAD * (16 + i);
    assert_int_equal(s.tag[MEM_TAG_INGEST].allocs, THREADS * PER_THREAD);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, (int64_t)bytes);
    /* Each thread allocated alone here, so the summed per-thread peaks are exact. */
    assert_int_equal(s.tag[MEM_TAG_INGEST].peak, (int64_t)bytes);
    for (size_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, free_worker, (void *)i), 0);
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_INGEST].frees, THREADS * PER_THREAD);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, 0);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live_blocks, 0);
    assert_int_equal(mem_leak_count(&s), 0);
}

static void *one_alloc(void *arg)
{
    (void)arg;
    void *p = mem_alloc(MEM_TAG_TEST, 10);
    mem_free(MEM_TAG_TEST, p, 10);
    return NULL;
}

static void test_mem_thread_slots_are_reused(void **state)
{
    (void)state;
    for (int i = 0; i < 3 * MEM_MAX_THREADS; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, one_alloc, NULL), 0);
        pthread_join(t, NULL);
    }
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, 3 * MEM_MAX_THREADS);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    assert_true(s.threads_seen < MEM_MAX_THREADS); /* exited threads gave their slots back */
}

enum { CROWD = MEM_MAX_THREADS + 8 };
static pthread_barrier_t crowd_barrier;

static void *crowd_worker(void *arg)
{
    (void)arg;
    void *p[50];
    pthread_barrier_wait(&crowd_barrier); /* all alive at once: some share slot 0 */
    for (int i = 0; i < 50; i++)
        p[i] = mem_alloc(MEM_TAG_TEST, 8);
    for (int i = 0; i < 50; i++)
        mem_free(MEM_TAG_TEST, p[i], 8);
    void *keep = mem_alloc(MEM_TAG_TEST, 4);
    pthread_barrier_wait(&crowd_barrier);
    return keep;
}

static void test_mem_more_threads_than_slots(void **state)
{
    (void)state;
    pthread_t th[CROWD];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_barrier_init(&crowd_barrier, NULL, CROWD);
    for (int i = 0; i < CROWD; i++)
        assert_int_equal(pthread_create(&th[i], &attr, crowd_worker, NULL), 0);
    void *kept[CROWD];
    for (int i = 0; i < CROWD; i++)
        pthread_join(th[i], &kept[i]);
    pthread_barrier_destroy(&crowd_barrier);
    pthread_attr_destroy(&attr);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].allocs, CROWD * 51);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, CROWD * 4);
    for (int i = 0; i < CROWD; i++)
        mem_free(MEM_TAG_TEST, kept[i], 4);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_TEST].live, 0);
    assert_int_equal(s.tag[MEM_TAG_TEST].live_blocks, 0);
}

/* The report may be taken from any thread while owners work (TSan checks this test). */
typedef struct owner_ctx {
    arena_t arena;
    pool_t pool;
    _Atomic bool done;
    unsigned failures; /* read by the test thread after the join (cmocka is not thread-safe) */
} owner_ctx_t;

static void *owner_worker(void *arg)
{
    owner_ctx_t *c = arg;
    void *held[8];
    for (int round = 0; round < 20000; round++) {
        for (int i = 0; i < 8; i++)
            c->failures += arena_alloc(&c->arena, 64, 16) == NULL;
        for (int i = 0; i < 8; i++)
            c->failures += (held[i] = pool_get(&c->pool)) == NULL;
        for (int i = 0; i < 8; i++)
            c->failures += pool_put(&c->pool, held[i]) != 0;
        arena_reset(&c->arena);
    }
    atomic_store(&c->done, true);
    return NULL;
}

static void test_mem_snapshot_while_owners_work(void **state)
{
    (void)state;
    static owner_ctx_t c;
    assert_int_equal(arena_init(&c.arena, "busy", MEM_TAG_TEST, 4096, ARENA_FIXED), 0);
    assert_int_equal(pool_init(&c.pool, "busy", MEM_TAG_TEST, 32, 0, 16), 0);
    atomic_store(&c.done, false);
    c.failures = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, owner_worker, &c), 0);
    static mem_snapshot_t s;
    unsigned snaps = 0;
    do {
        mem_snapshot(&s);
        snaps++;
    } while (!atomic_load(&c.done));
    pthread_join(t, NULL);
    mem_snapshot(&s);
    assert_true(snaps > 0);
    assert_int_equal(c.failures, 0);
    assert_int_equal(s.nobjs, 2);
    assert_int_equal(s.objs[0].st.used, 8 * 64 + 8 * MEM_ASAN_REDZONE);
    assert_int_equal(s.objs[1].st.high_water, 8);
    assert_int_equal(s.objs[1].st.used, 0);
    pool_fini(&c.pool);
    arena_fini(&c.arena);
}

/* ---- the external witness ---------------------------------------------------------------- */

static void test_mem_process_counter_sees_allocations(void **state)
{
    (void)state;
    /* The witness must be able to fail: one mem_alloc is one allocation it sees. */
    malloc_count_t before;
    malloc_count_get(&before);
    void *p = mem_alloc(MEM_TAG_TEST, 100);
    /* mimalloc calls are always seen; glibc calls (the valgrind backend) when libc is seen. */
    bool seen = malloc_count_libc_seen() || strcmp(mem_backend_name(), "mimalloc") == 0;
    assert_int_equal(malloc_count_allocs_since(&before), seen ? 1 : 0);
    mem_free(MEM_TAG_TEST, p, 100);
    if (malloc_count_libc_seen()) {
        malloc_count_get(&before);
        char *volatile q = strdup("not ours, still seen"); /* libc allocates inside */
        assert_int_equal(malloc_count_allocs_since(&before), 1);
        free(q);
    }
}

static void test_mem_arena_and_pool_loop_allocates_nothing(void **state)
{
    (void)state;
    arena_t a;
    pool_t p;
    assert_int_equal(arena_init(&a, "loop", MEM_TAG_TEST, 64 * 1024, ARENA_GROW), 0);
    assert_int_equal(pool_init(&p, "loop", MEM_TAG_TEST, 64, 0, 1024), 0);
    void *held[256];
    /* Warm-up: one full cycle, so the arena has grown to what the loop needs. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++)
            assert_non_null(arena_alloc(&a, 100 + (size_t)i, 16));
        arena_reset(&a);
    }
    mem_seal();
    mem_snapshot_t s0, s1;
    mem_snapshot(&s0);
    malloc_count_t before;
    malloc_count_get(&before);
    uint64_t sum = 0;
    for (int iter = 0; iter < 10000; iter++) {
        for (int i = 0; i < 200; i++) {
            unsigned char *m = arena_alloc(&a, 100 + (size_t)i, 16);
            m[0] = (unsigned char)i;
            sum += m[0];
        }
        for (int i = 0; i < 256; i++) {
            held[i] = pool_get(&p);
            *(int *)held[i] = i;
        }
        for (int i = 255; i >= 0; i--) {
            sum += (uint64_t) * (int *)held[i];
            assert_int_equal(pool_put(&p, held[i]), 0);
        }
        arena_reset(&a);
    }
    mem_snapshot(&s1);
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_int_equal(s1.total.allocs, s0.total.allocs);
    assert_int_equal(s1.total.churn_allocs, 0);
    assert_int_equal(sum, 10000ull * (199 * 200 / 2 + 255 * 256 / 2));
    mem_unseal();
    pool_fini(&p);
    arena_fini(&a);
    mem_snapshot(&s1);
    assert_int_equal(s1.tag[MEM_TAG_TEST].live, 0);
}

static void test_mem_snapshot_allocates_nothing(void **state)
{
    (void)state;
    mem_seal();
    void *c[20];
    for (int i = 0; i < 20; i++) /* churn for the snapshot to merge and sort */
        c[i] = mem_alloc(MEM_TAG_TEST, (size_t)i + 1);
    static mem_snapshot_t s; /* large: keep it off the stack */
    mem_snapshot(&s);
    malloc_count_t before;
    malloc_count_get(&before);
    for (int i = 0; i < 100; i++)
        mem_snapshot(&s);
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_int_equal(s.total.churn_allocs, 20);
    for (int i = 0; i < 20; i++)
        mem_free(MEM_TAG_TEST, c[i], (size_t)i + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mem_live_peak_exact, reset_counters),
        cmocka_unit_test_setup(test_mem_snapshot_counters_match_snapshot, reset_counters),
        cmocka_unit_test_setup(test_mem_tags_are_separate, reset_counters),
        cmocka_unit_test_setup(test_mem_aligned_and_zeroed, reset_counters),
        cmocka_unit_test_setup(test_mem_group_all_or_nothing, reset_counters),
        cmocka_unit_test_setup(test_mem_prefault_backs_every_page, reset_counters),
        cmocka_unit_test_setup(test_mem_large_blocks_zeroed_resident_and_freed, reset_counters),
        cmocka_unit_test_setup(test_mem_populate_background_then_wait, reset_counters),
        cmocka_unit_test_setup(test_mem_populate_stops_and_counts_its_faults_apart, reset_counters),
        cmocka_unit_test_setup(test_mem_failures_counted, reset_counters),
        cmocka_unit_test_setup(test_mem_realloc_counts_free_and_alloc, reset_counters),
        cmocka_unit_test_setup(test_mem_churn_attributed_to_call_site, reset_counters),
        cmocka_unit_test_setup(test_mem_control_scope_is_not_churn, reset_counters),
        cmocka_unit_test_setup(test_mem_strict_exit_status, reset_counters),
        cmocka_unit_test_setup(test_mem_leak_report_names_tag, reset_counters),
        cmocka_unit_test_setup(test_mem_registry_lists_objects, reset_counters),
        cmocka_unit_test_setup(test_mem_threads_sum_exactly, reset_counters),
        cmocka_unit_test_setup(test_mem_thread_slots_are_reused, reset_counters),
        cmocka_unit_test_setup(test_mem_more_threads_than_slots, reset_counters),
        cmocka_unit_test_setup(test_mem_snapshot_while_owners_work, reset_counters),
        cmocka_unit_test_setup(test_mem_process_counter_sees_allocations, reset_counters),
        cmocka_unit_test_setup(test_mem_arena_and_pool_loop_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_mem_snapshot_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_mem_seal_records_startup_figures, reset_counters),
        cmocka_unit_test_setup(test_mem_peak_rss_sees_touched_pages, reset_counters),
    };
    return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
