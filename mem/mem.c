/*
 * mem: tagged allocation accounting on top of mimalloc.
 *
 * Counters live in a static table of MEM_MAX_THREADS slots. A thread claims a free slot on
 * its first allocation (a CAS on the slot's owner word, once per thread) and releases it when
 * it exits (pthread key destructor); the next thread to claim that slot keeps adding to the
 * same counters, so sums stay right and the table never grows. Within a slot, every counter
 * has one writer: updates are a relaxed load and a relaxed store, which costs what a plain
 * increment costs and lets mem_snapshot() read from another thread without a data race. When
 * more than MEM_MAX_THREADS threads are alive at once, the extra ones share slot 0 with real
 * atomic read-modify-writes (slower, still exact). After mem_seal(), each allocation outside
 * a control scope is churn: counted per tag and recorded per call site in the slot's small
 * open-addressed site table (file pointer + line as key; a full table counts the site as
 * dropped). Nothing here allocates: the registry of arenas, pools and rings is an intrusive
 * list of nodes embedded in those objects, guarded by a mutex (control path only).
 *
 * Backend: mimalloc by default. Tools that watch malloc (valgrind memcheck and massif,
 * heaptrack) cannot see mimalloc's own pages, so the backend switches to glibc malloc when the
 * process runs under valgrind or when TICKCORE_MEM_BACKEND=libc is set (=mimalloc forces
 * mimalloc, e.g. for callgrind instruction counts); it is chosen once,
 * before main, and never changes while blocks are live. Either way the counters are the same,
 * which is what lets those tools check them.
 */
#include "mem/mem.h"

#include "base/hints.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <mimalloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

typedef struct tag_ctr {
    _Atomic uint64_t allocs, frees, bytes_alloc, bytes_freed;
    _Atomic uint64_t churn_allocs, churn_bytes, control_allocs, failed;
    _Atomic int64_t peak; /* of this slot's bytes_alloc - bytes_freed */
} tag_ctr_t;

typedef struct site_ctr {
    _Atomic(const char *) file; /* published last (release) once line and tag are set */
    _Atomic int line;
    _Atomic int tag;
    _Atomic uint64_t count, bytes;
} site_ctr_t;

typedef struct tslot {
    _Alignas(MEM_CACHE_LINE) _Atomic int owner; /* 0 free, 1 owned */
    _Atomic int ever_used;
    tag_ctr_t tag[MEM_TAG_COUNT];
    site_ctr_t site[MEM_SITES_PER_THREAD];
    _Atomic uint64_t sites_dropped;
} tslot_t;

static tslot_t g_slots[MEM_MAX_THREADS];
static _Atomic bool g_sealed;
static _Atomic bool g_strict;
static _Atomic bool g_churn_abort;
/* Each tag's allocations and live bytes at the last mem_seal(): the start-up figures. */
static _Atomic uint64_t g_seal_allocs[MEM_TAG_COUNT];
static _Atomic int64_t g_seal_live[MEM_TAG_COUNT];
static bool g_libc_backend; /* set once by backend_choose(), before main */
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static _Thread_local tslot_t *t_slot;
static _Thread_local int t_control_depth;

/* Slot 0 is shared by the threads that found the table full: it takes atomic RMW updates. */
static inline bool slot_shared(const tslot_t *s)
{
    return s == &g_slots[0];
}

static pthread_mutex_t g_obj_lock = PTHREAD_MUTEX_INITIALIZER;

/* Large blocks (see "large blocks" below): their own mappings, listed here so mem_free knows
 * them. Filled and emptied at start-up and teardown only, under the lock. */
#define LARGE_MIN ((size_t)1 << 20) /* bytes: smaller blocks stay with the backend */
#define LARGE_MAX 256               /* mappings at once; past that, the backend takes them */
#define HUGE_PAGE ((size_t)2 << 20)
typedef struct large_blk {
    void *p;
    size_t len;  /* mapped bytes */
    size_t todo; /* background populate: the next offset to populate (== len: nothing left) */
} large_blk_t;
static pthread_mutex_t g_large_lock = PTHREAD_MUTEX_INITIALIZER;
static large_blk_t g_large[LARGE_MAX];
static _Atomic unsigned g_nlarge;
static _Atomic bool g_hugetlb_off;  /* MAP_HUGETLB failed once (no reserved pages): stop trying */
static _Atomic bool g_populate_off; /* MADV_POPULATE_WRITE unsupported: touch pages instead */
static _Atomic uint64_t g_large_huge_bytes, g_large_thp_bytes; /* how large blocks were backed */
static _Atomic int64_t g_faults_at_seal = -1; /* minor faults of the process at mem_seal() */
/* The background populator (see "background populate" below). g_bg_chunk is held by the
 * populator around each chunk and by whoever reads its fault count against the process's. */
static pthread_mutex_t g_bg_chunk = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool g_bg_on, g_bg_stop;
static bool g_bg_running, g_bg_joinable;                    /* under g_large_lock */
static pthread_cond_t g_bg_idle = PTHREAD_COND_INITIALIZER; /* g_bg_running went false */
static _Atomic bool g_bg_low;                               /* SCHED_IDLE (mem_populate_lazy) */
static pthread_t g_bg_thread;
static _Atomic uint64_t g_bg_queued, g_bg_done; /* bytes handed to it, bytes it populated */
static _Atomic int64_t g_bg_faults;             /* its own faults (getrusage RUSAGE_THREAD) */
static _Atomic int64_t g_bg_faults_at_seal;
static mem_obj_t *g_objs;

static const char *const g_tag_names[] = {
    "core",   "ingest",  "book",   "stats", "analytics", "engine", "ring",
    "server", "journal", "config", "bench", "test",      "net",
};
_Static_assert(sizeof g_tag_names / sizeof g_tag_names[0] == MEM_TAG_COUNT,
               "every mem_tag_t needs its name in g_tag_names");

const char *mem_tag_name(mem_tag_t tag)
{
    return (unsigned)tag < MEM_TAG_COUNT ? g_tag_names[tag] : "?";
}

const char *mem_obj_kind_name(mem_obj_kind_t kind)
{
    switch (kind) {
    case MEM_OBJ_ARENA:
        return "arena";
    case MEM_OBJ_POOL:
        return "pool";
    case MEM_OBJ_RING:
        return "ring";
    }
    return "?";
}

/* ---- per-thread slots ----------------------------------------------------------------------- */

static void slot_release(void *p)
{
    tslot_t *s = p;
    t_slot = NULL; /* runs on the exiting thread: a later call from it claims a slot again */
    atomic_store_explicit(&s->owner, 0, memory_order_release);
}

static void key_create(void)
{
    (void)pthread_key_create(&g_key, slot_release);
}

static HINT_COLD tslot_t *slot_claim(void)
{
    pthread_once(&g_key_once, key_create);
    for (unsigned i = 1; i < MEM_MAX_THREADS; i++) {
        int expect = 0;
        if (atomic_load_explicit(&g_slots[i].owner, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&g_slots[i].owner, &expect, 1,
                                                    memory_order_acquire, memory_order_relaxed)) {
            tslot_t *s = &g_slots[i];
            atomic_store_explicit(&s->ever_used, 1, memory_order_relaxed);
            (void)pthread_setspecific(g_key, s);
            t_slot = s;
            return s;
        }
    }
    /* Table full: share slot 0 with atomic read-modify-write updates. */
    tslot_t *s = &g_slots[0];
    atomic_store_explicit(&s->ever_used, 1, memory_order_relaxed);
    t_slot = s;
    return s;
}

static inline tslot_t *slot_get(void)
{
    tslot_t *s = t_slot;
    return likely(s != NULL) ? s : slot_claim();
}

/* Single-writer update: a load and a store, no RMW; the shared slot 0 uses fetch_add. */
static inline void ctr_add(const tslot_t *s, _Atomic uint64_t *c, uint64_t v)
{
    if (unlikely(slot_shared(s)))
        atomic_fetch_add_explicit(c, v, memory_order_relaxed);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                              memory_order_relaxed);
}

/* ---- churn -------------------------------------------------------------------------------- */

static HINT_COLD void churn_record(tslot_t *s, mem_tag_t tag, size_t size, const char *file,
                                   int line)
{
    tag_ctr_t *t = &s->tag[tag];
    ctr_add(s, &t->churn_allocs, 1);
    ctr_add(s, &t->churn_bytes, size);
    if (atomic_load_explicit(&g_churn_abort, memory_order_relaxed)) {
        fprintf(stderr,
                "tickcore: churn: %zu bytes for tag %s at %s:%d after the seal "
                "(TICKCORE_CHURN_ABORT=1)\n",
                size, mem_tag_name(tag), file, line);
        abort();
    }
    if (slot_shared(s)) { /* slot 0 is shared by many threads: keep its site table untouched */
        atomic_fetch_add_explicit(&s->sites_dropped, 1, memory_order_relaxed);
        return;
    }
    uintptr_t h = ((uintptr_t)file >> 3) * 31u + (unsigned)line * 2654435761u + (unsigned)tag;
    for (unsigned probe = 0; probe < MEM_SITES_PER_THREAD; probe++) {
        site_ctr_t *c = &s->site[(h + probe) % MEM_SITES_PER_THREAD];
        const char *f = atomic_load_explicit(&c->file, memory_order_relaxed);
        if (f == NULL) {
            atomic_store_explicit(&c->line, line, memory_order_relaxed);
            atomic_store_explicit(&c->tag, (int)tag, memory_order_relaxed);
            atomic_store_explicit(&c->count, 1, memory_order_relaxed);
            atomic_store_explicit(&c->bytes, size, memory_order_relaxed);
            atomic_store_explicit(&c->file, file, memory_order_release);
            return;
        }
        if (f == file && atomic_load_explicit(&c->line, memory_order_relaxed) == line &&
            atomic_load_explicit(&c->tag, memory_order_relaxed) == (int)tag) {
            ctr_add(s, &c->count, 1);
            ctr_add(s, &c->bytes, size);
            return;
        }
    }
    ctr_add(s, &s->sites_dropped, 1);
}

/* ---- backend -------------------------------------------------------------------------------- */

__attribute__((constructor)) static void backend_choose(void)
{
    const char *e = getenv("TICKCORE_MEM_BACKEND");
    if (e != NULL && strcmp(e, "libc") == 0)
        g_libc_backend = true;
    else if (e != NULL && strcmp(e, "mimalloc") == 0)
        g_libc_backend = false; /* e.g. callgrind, which needs no view of the blocks */
    else
        g_libc_backend = RUNNING_ON_VALGRIND;
}

const char *mem_backend_name(void)
{
    return g_libc_backend ? "glibc malloc" : "mimalloc";
}

static inline void *backend_alloc(size_t size, size_t align, bool zero)
{
    if (likely(!g_libc_backend)) {
        if (align <= sizeof(void *) * 2)
            return zero ? mi_zalloc(size) : mi_malloc(size);
        return zero ? mi_zalloc_aligned(size, align) : mi_malloc_aligned(size, align);
    }
    if (align <= sizeof(void *) * 2)
        return zero ? calloc(1, size) : malloc(size);
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    if (zero)
        memset(p, 0, size);
    return p;
}

static inline void backend_free(void *p)
{
    if (likely(!g_libc_backend))
        mi_free(p);
    else
        free(p);
}

/* ---- allocation ----------------------------------------------------------------------------- */

/* Write a zero byte in every page of [p, p+n): the kernel backs each page now, not on first
 * use in the steady state (a read alone would map the shared zero page). */
static HINT_COLD HINT_NOINLINE void prefault_touch(void *p, size_t n)
{
    volatile unsigned char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        c[i] = 0;
    if (n)
        c[n - 1] = 0;
}

/* One slice of a parallel populate. */
typedef struct populate_job {
    void *p;
    size_t n;
    int rc;
} populate_job_t;

static void *populate_main(void *arg)
{
    populate_job_t *j = arg;
    j->rc = madvise(j->p, j->n, MADV_POPULATE_WRITE);
    return NULL;
}

/* MADV_POPULATE_WRITE over [p, p+n) (page-aligned): the kernel faults every page in (zeroing
 * it), one system call and no trap per page. Ranges of POPULATE_SPLIT bytes and more are cut
 * in 2 MiB-aligned slices populated by up to POPULATE_THREADS threads at once, since zeroing
 * is what start-up spends its time on. 0 or -1 (not supported: the caller touches pages). */
#define POPULATE_SPLIT   ((size_t)32 << 20)
#define POPULATE_THREADS 4
static int populate(void *p, size_t n)
{
    long ncpu = n >= POPULATE_SPLIT ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    unsigned nt = ncpu > POPULATE_THREADS ? POPULATE_THREADS : ncpu > 1 ? (unsigned)ncpu : 1;
    populate_job_t job[POPULATE_THREADS];
    pthread_t th[POPULATE_THREADS];
    bool started[POPULATE_THREADS] = {false};
    size_t slice = ((n / nt) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), off = 0;
    unsigned used = 0;
    for (unsigned i = 0; i < nt && off < n; i++, used++) {
        size_t len = i + 1 == nt || off + slice > n ? n - off : slice;
        job[i] = (populate_job_t){(unsigned char *)p + off, len, 0};
        off += len;
    }
    for (unsigned i = 1; i < used; i++)
        started[i] = pthread_create(&th[i], NULL, populate_main, &job[i]) == 0;
    populate_main(&job[0]);
    int rc = job[0].rc;
    for (unsigned i = 1; i < used; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            populate_main(&job[i]); /* no thread: do it here */
        if (job[i].rc != 0)
            rc = -1;
    }
    return rc;
}

/* Back [p, p+n) with RAM now: populate() on the whole pages inside, the ends (and everything on
 * kernels before 5.14) by touching. Contents are kept. */
static HINT_COLD HINT_NOINLINE void prefault(void *p, size_t n)
{
    uintptr_t a = (uintptr_t)p, e = a + n;
    uintptr_t pa = (a + 4095) & ~(uintptr_t)4095, pe = e & ~(uintptr_t)4095;
    if (pe > pa && pe - pa >= 16 * 4096 &&
        !atomic_load_explicit(&g_populate_off, memory_order_relaxed)) {
        if (populate((void *)pa, pe - pa) == 0) {
            prefault_touch(p, pa - a);
            prefault_touch((void *)pe, e - pe);
            return;
        }
        atomic_store_explicit(&g_populate_off, true, memory_order_relaxed);
    }
    prefault_touch(p, n);
}

/* ---- large blocks ---------------------------------------------------------------------------
 * A block of LARGE_MIN bytes or more (the books', stats' and batches' start-up tables) gets its
 * own anonymous mapping instead of the backend's: fresh mappings are already zero, so MEM_ZERO
 * costs nothing (mimalloc would memset them, page-faulting every page on the way), and the
 * mapping can use huge pages. Order of preference: MAP_HUGETLB when the system has reserved
 * huge pages (populated by the kernel at mmap), else a 2 MiB-aligned mapping with
 * madvise(MADV_HUGEPAGE) (transparent huge pages, where the system allows them). MEM_ZERO and
 * MEM_PREFAULT blocks are populated at once (so the steady state takes no page faults, as
 * before); plain blocks fault on first use. Under valgrind or TICKCORE_MEM_BACKEND=libc the
 * backend keeps every block, so the tools see them. */

static void *map_anon(size_t len, int extra)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A 2 MiB-aligned mapping of len bytes (len a multiple of 2 MiB), trimmed from a larger one. */
static void *map_aligned(size_t len)
{
    unsigned char *raw = map_anon(len + HUGE_PAGE, MAP_NORESERVE);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    size_t head = a - (uintptr_t)raw, tail = HUGE_PAGE - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((void *)(a + len), tail);
    return (void *)a;
}

/* ---- background populate --------------------------------------------------------------------
 * With mem_populate_background(true), a large block that asks to be populated (MEM_ZERO or
 * MEM_PREFAULT) is mapped at once but populated by one populator thread, in chunks of 2 MiB:
 * first the first chunk of every queued block (where pools hand out their first objects and
 * tables keep their first rows), then the rest in the order the blocks were allocated. Start-up
 * then waits for no zeroing, a short run never pays for memory it does not touch (the populator
 * stops at teardown), and a long run has its pages zeroed on the side. A page the engine touches
 * before the populator reaches it faults in the engine's thread: counted in faults_after_seal,
 * from which the populator's own faults (getrusage RUSAGE_THREAD around each chunk, read under
 * g_bg_chunk so that both counts are of the same instant) are taken out. */

static HINT_COLD void *bg_main(void *arg);

/* Under g_large_lock: len more bytes to populate; the populator started if it is not running. */
static void bg_queue_locked(size_t len)
{
    atomic_fetch_add_explicit(&g_bg_queued, len, memory_order_relaxed);
    if (g_bg_running || atomic_load_explicit(&g_bg_stop, memory_order_relaxed))
        return;
    if (g_bg_joinable) /* it ran out of work and returned: no lock of ours is held by it */
        pthread_join(g_bg_thread, NULL);
    g_bg_joinable = g_bg_running = pthread_create(&g_bg_thread, NULL, bg_main, NULL) == 0;
}

/* Under g_large_lock: the next chunk to populate, false when none is left (the populator then
 * ends: g_bg_running false). */
static bool bg_pick_locked(unsigned char **p, size_t *n)
{
    unsigned nl = atomic_load_explicit(&g_nlarge, memory_order_relaxed);
    large_blk_t *b = NULL;
    for (unsigned i = 0; i < nl && !b; i++) /* first chunks first */
        if (g_large[i].todo == 0)
            b = &g_large[i];
    for (unsigned i = 0; i < nl && !b; i++)
        if (g_large[i].todo < g_large[i].len)
            b = &g_large[i];
    if (!b || atomic_load_explicit(&g_bg_stop, memory_order_relaxed))
        return false;
    size_t end = b->todo + HUGE_PAGE < b->len ? b->todo + HUGE_PAGE : b->len;
    *p = (unsigned char *)b->p + b->todo;
    *n = end - b->todo;
    b->todo = end;
    return true;
}

static int64_t thread_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? (int64_t)ru.ru_minflt + ru.ru_majflt : 0;
}

/* Populate [p, p+n), by MADV_POPULATE_WRITE or (before Linux 5.14) a write per page. */
static void populate_chunk(unsigned char *p, size_t n)
{
    if (atomic_load_explicit(&g_populate_off, memory_order_relaxed) ||
        madvise(p, n, MADV_POPULATE_WRITE) != 0)
        prefault_touch(p, n);
}

static HINT_COLD void *bg_main(void *arg)
{
    (void)arg;
    bool low = false;
    for (;;) {
        if (!low && atomic_load_explicit(&g_bg_low, memory_order_relaxed)) {
            /* after the seal: only on a core nobody else wants (the reader waiting on
             * backpressure), never in place of the engine's threads */
            struct sched_param sp = {0};
            low = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0;
        }
        unsigned char *p;
        size_t n;
        pthread_mutex_lock(&g_bg_chunk);
        pthread_mutex_lock(&g_large_lock);
        bool more = bg_pick_locked(&p, &n);
        if (!more) {
            g_bg_running = false;
            pthread_cond_broadcast(&g_bg_idle);
        }
        pthread_mutex_unlock(&g_large_lock);
        if (!more) {
            pthread_mutex_unlock(&g_bg_chunk);
            return NULL;
        }
        int64_t f0 = thread_faults();
        populate_chunk(p, n);
        atomic_fetch_add_explicit(&g_bg_faults, thread_faults() - f0, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_bg_done, n, memory_order_relaxed);
        pthread_mutex_unlock(&g_bg_chunk);
    }
}

void mem_populate_background(bool on)
{
    if (on) {
        atomic_store(&g_bg_stop, false);
        atomic_store(&g_bg_on, true);
        return;
    }
    atomic_store(&g_bg_on, false);
    atomic_store(&g_bg_stop, true);
    pthread_mutex_lock(&g_large_lock);
    bool join = g_bg_joinable;
    g_bg_joinable = false;
    pthread_mutex_unlock(&g_large_lock);
    if (join) /* it sees g_bg_stop at its next chunk; the blocks left keep their zero pages */
        pthread_join(g_bg_thread, NULL);
}

void mem_populate_wait(void)
{
    /* help: the calling thread takes chunks too (its faults are its own, before the seal) */
    for (;;) {
        unsigned char *p;
        size_t n;
        pthread_mutex_lock(&g_large_lock);
        bool more = bg_pick_locked(&p, &n);
        pthread_mutex_unlock(&g_large_lock);
        if (!more)
            break;
        populate_chunk(p, n);
        atomic_fetch_add_explicit(&g_bg_done, n, memory_order_relaxed);
    }
    pthread_mutex_lock(&g_large_lock);
    while (g_bg_running)
        pthread_cond_wait(&g_bg_idle, &g_large_lock);
    pthread_mutex_unlock(&g_large_lock);
}

void mem_populate_lazy(bool lazy)
{
    atomic_store(&g_bg_low, lazy);
}

void mem_populate_stats(uint64_t *queued, uint64_t *done)
{
    *queued = atomic_load(&g_bg_queued);
    *done = atomic_load(&g_bg_done);
}

/* The process's faults and the populator's, at one instant (between its chunks). */
static void faults_now(int64_t *process, int64_t *populator)
{
    struct rusage ru;
    pthread_mutex_lock(&g_bg_chunk);
    *process = getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_minflt + ru.ru_majflt : -1;
    *populator = atomic_load(&g_bg_faults);
    pthread_mutex_unlock(&g_bg_chunk);
}

static HINT_COLD HINT_NOINLINE void *large_alloc(size_t size, size_t align, unsigned flags)
{
    if (align > 4096)
        return NULL; /* not needed by anyone: the backend takes it */
    size_t len = (size + 4095) & ~(size_t)4095, hlen = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = NULL;
    bool populate = (flags & (MEM_ZERO | MEM_PREFAULT)) != 0;
    /* in the background: mapped now, populated by the populator thread (bg_main) */
    bool defer = populate && atomic_load_explicit(&g_bg_on, memory_order_relaxed);
    if (defer)
        populate = false;
    pthread_mutex_lock(&g_large_lock);
    if (atomic_load_explicit(&g_nlarge, memory_order_relaxed) == LARGE_MAX)
        goto out;
    if (size >= HUGE_PAGE && !atomic_load_explicit(&g_hugetlb_off, memory_order_relaxed)) {
        p = map_anon(hlen, MAP_HUGETLB | (populate ? MAP_POPULATE : 0));
        if (p) {
            len = hlen;
            atomic_fetch_add_explicit(&g_large_huge_bytes, len, memory_order_relaxed);
        } else {
            atomic_store_explicit(&g_hugetlb_off, true, memory_order_relaxed);
        }
    }
    if (!p && size >= HUGE_PAGE) {
        p = map_aligned(hlen);
        if (p) {
            len = hlen;
            if (madvise(p, len, MADV_HUGEPAGE) == 0)
                atomic_fetch_add_explicit(&g_large_thp_bytes, len, memory_order_relaxed);
            if (populate)
                prefault(p, len);
        }
    }
    if (!p) {
        p = map_anon(len, 0);
        if (p && populate)
            prefault(p, len);
    }
    if (p) {
        unsigned n = atomic_load_explicit(&g_nlarge, memory_order_relaxed);
        g_large[n] = (large_blk_t){p, len, defer ? 0 : len};
        atomic_store_explicit(&g_nlarge, n + 1, memory_order_relaxed);
        if (defer)
            bg_queue_locked(len);
    }
out:
    pthread_mutex_unlock(&g_large_lock);
    return p;
}

/* true if p was a large block (now unmapped). */
static HINT_COLD HINT_NOINLINE bool large_free(void *p)
{
    bool found = false;
    size_t len = 0;
    pthread_mutex_lock(&g_large_lock);
    unsigned n = atomic_load_explicit(&g_nlarge, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        if (g_large[i].p == p) {
            len = g_large[i].len;
            g_large[i] = g_large[n - 1];
            atomic_store_explicit(&g_nlarge, n - 1, memory_order_relaxed);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&g_large_lock);
    if (found) {
        /* the populator may be inside this block: wait for its chunk (it picks no other from
         * this block, which has left the list) */
        pthread_mutex_lock(&g_bg_chunk);
        pthread_mutex_unlock(&g_bg_chunk);
        munmap(p, len);
    }
    return found;
}

static bool large_has(const void *p, size_t *len)
{
    bool found = false;
    pthread_mutex_lock(&g_large_lock);
    unsigned n = atomic_load_explicit(&g_nlarge, memory_order_relaxed);
    for (unsigned i = 0; i < n && !found; i++)
        if (g_large[i].p == p) {
            *len = g_large[i].len;
            found = true;
        }
    pthread_mutex_unlock(&g_large_lock);
    return found;
}

/* The shared slot 0: every update a read-modify-write, the peak a CAS loop. */
static HINT_COLD void count_alloc_shared(tag_ctr_t *t, size_t size)
{
    atomic_fetch_add_explicit(&t->allocs, 1, memory_order_relaxed);
    uint64_t in = atomic_fetch_add_explicit(&t->bytes_alloc, size, memory_order_relaxed) + size;
    int64_t live = (int64_t)(in - MEM_LD(t->bytes_freed));
    int64_t p = MEM_LD(t->peak);
    while (live > p && !atomic_compare_exchange_weak_explicit(
                           &t->peak, &p, live, memory_order_relaxed, memory_order_relaxed))
        ;
}

static inline void count_alloc(tslot_t *s, mem_tag_t tag, size_t size, const char *file, int line)
{
    tag_ctr_t *t = &s->tag[tag];
    if (likely(!slot_shared(s))) { /* one writer: plain loads and stores */
        uint64_t in = MEM_LD(t->bytes_alloc) + size;
        MEM_ST(t->allocs, MEM_LD(t->allocs) + 1);
        MEM_ST(t->bytes_alloc, in);
        int64_t live = (int64_t)(in - MEM_LD(t->bytes_freed));
        if (live > MEM_LD(t->peak))
            MEM_ST(t->peak, live);
    } else {
        count_alloc_shared(t, size);
    }
    if (unlikely(atomic_load_explicit(&g_sealed, memory_order_relaxed))) {
        if (t_control_depth > 0)
            ctr_add(s, &t->control_allocs, 1);
        else
            churn_record(s, tag, size, file, line);
    }
}

static inline void count_free(tslot_t *s, mem_tag_t tag, size_t size)
{
    tag_ctr_t *t = &s->tag[tag];
    if (likely(!slot_shared(s))) {
        MEM_ST(t->frees, MEM_LD(t->frees) + 1);
        MEM_ST(t->bytes_freed, MEM_LD(t->bytes_freed) + size);
    } else {
        ctr_add(s, &t->frees, 1);
        ctr_add(s, &t->bytes_freed, size);
    }
}

static HINT_COLD void *alloc_failed(tslot_t *s, mem_tag_t tag)
{
    ctr_add(s, &s->tag[tag].failed, 1);
    return NULL;
}

void *mem_alloc_at(mem_tag_t tag, size_t size, size_t align, unsigned flags, const char *file,
                   int line)
{
    tslot_t *s = slot_get();
    if ((unsigned)tag >= MEM_TAG_COUNT)
        tag = MEM_TAG_CORE;
    if (unlikely(size == 0))
        size = 1; /* a distinct, freeable pointer, counted as 1 byte */
    if (unlikely(align & (align - 1)))
        return alloc_failed(s, tag);
    void *p = NULL;
    if (unlikely(size >= LARGE_MIN) && !g_libc_backend) {
        p = large_alloc(size, align, flags); /* zero and populated as flags ask */
        flags &= ~(unsigned)MEM_PREFAULT;
    }
    if (likely(p == NULL))
        p = backend_alloc(size, align, flags & MEM_ZERO);
    if (unlikely(p == NULL))
        return alloc_failed(s, tag);
    if (flags & MEM_PREFAULT)
        prefault(p, size);
    count_alloc(s, tag, size, file, line);
    return p;
}

void *mem_calloc_at(mem_tag_t tag, size_t n, size_t size, const char *file, int line)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        tslot_t *s = slot_get();
        return alloc_failed(s, (unsigned)tag < MEM_TAG_COUNT ? tag : MEM_TAG_CORE);
    }
    return mem_alloc_at(tag, total, 0, MEM_ZERO, file, line);
}

void *mem_realloc_at(mem_tag_t tag, void *p, size_t old_size, size_t new_size, const char *file,
                     int line)
{
    if (p == NULL)
        return mem_alloc_at(tag, new_size, 0, 0, file, line);
    tslot_t *s = slot_get();
    if ((unsigned)tag >= MEM_TAG_COUNT)
        tag = MEM_TAG_CORE;
    if (new_size == 0)
        new_size = 1;
    void *q;
    size_t len;
    if (!g_libc_backend &&
        (new_size >= LARGE_MIN || (old_size >= LARGE_MIN && large_has(p, &len)))) {
        /* to or from a large block: move it by hand */
        q = new_size >= LARGE_MIN ? large_alloc(new_size, 0, 0) : NULL;
        if (q == NULL)
            q = backend_alloc(new_size, 0, false);
        if (q == NULL)
            return alloc_failed(s, tag);
        memcpy(q, p, old_size < new_size ? old_size : new_size);
        if (!large_free(p))
            backend_free(p);
    } else {
        q = g_libc_backend ? realloc(p, new_size) : mi_realloc(p, new_size);
    }
    if (q == NULL)
        return alloc_failed(s, tag);
    count_free(s, tag, old_size ? old_size : 1);
    count_alloc(s, tag, new_size, file, line);
    return q;
}

void mem_free(mem_tag_t tag, void *p, size_t size)
{
    if (p == NULL)
        return;
    if (unlikely(size >= LARGE_MIN) && !g_libc_backend && large_free(p)) {
        tslot_t *s = slot_get();
        count_free(s, (unsigned)tag < MEM_TAG_COUNT ? tag : MEM_TAG_CORE, size);
        return;
    }
#ifndef NDEBUG
    size_t usable = g_libc_backend ? malloc_usable_size(p) : mi_usable_size(p);
    if (size > usable) {
        fprintf(stderr,
                "tickcore: mem_free(%s, %p, %zu): the block holds only %zu bytes; "
                "the size does not match the allocation\n",
                mem_tag_name(tag), p, size, usable);
        abort();
    }
#endif
    tslot_t *s = slot_get();
    if ((unsigned)tag >= MEM_TAG_COUNT)
        tag = MEM_TAG_CORE;
    if (size == 0)
        size = 1;
    backend_free(p);
    count_free(s, tag, size);
}

int mem_alloc_group_at(mem_tag_t tag, void **const slots[], const size_t sizes[], size_t n,
                       size_t align, unsigned flags, const char *file, int line)
{
    for (size_t i = 0; i < n; i++)
        *slots[i] = NULL;
    for (size_t i = 0; i < n; i++) {
        *slots[i] = mem_alloc_at(tag, sizes[i], align, flags, file, line);
        if (*slots[i] == NULL) {
            mem_free_group(tag, slots, sizes, i);
            return -ENOMEM;
        }
    }
    return 0;
}

void mem_free_group(mem_tag_t tag, void **const slots[], const size_t sizes[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mem_free(tag, *slots[i], sizes[i]);
        *slots[i] = NULL;
    }
}

/* ---- seal, strict, control scopes ---------------------------------------------------------- */

void mem_seal(void)
{
    const char *e = getenv("TICKCORE_CHURN_ABORT");
    atomic_store(&g_churn_abort, e != NULL && strcmp(e, "1") == 0);
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
        uint64_t allocs = 0, bytes_alloc = 0, bytes_freed = 0;
        for (unsigned i = 0; i < MEM_MAX_THREADS; i++) {
            const tag_ctr_t *c = &g_slots[i].tag[t];
            if (!MEM_LD(g_slots[i].ever_used))
                continue;
            allocs += MEM_LD(c->allocs);
            bytes_alloc += MEM_LD(c->bytes_alloc);
            bytes_freed += MEM_LD(c->bytes_freed);
        }
        MEM_ST(g_seal_allocs[t], allocs);
        MEM_ST(g_seal_live[t], (int64_t)(bytes_alloc - bytes_freed));
    }
    /* The fault count last: the scan above reads every slot's first line, up to MEM_MAX_THREADS
     * pages of the static table never touched before (92 read faults on a replay), which are
     * the seal's own, not the steady state's. */
    int64_t proc, pop;
    faults_now(&proc, &pop);
    atomic_store(&g_bg_faults_at_seal, pop);
    atomic_store(&g_faults_at_seal, proc);
    atomic_store(&g_sealed, true);
}

void mem_unseal(void)
{
    atomic_store(&g_sealed, false);
}

bool mem_is_sealed(void)
{
    return atomic_load(&g_sealed);
}

void mem_set_strict(bool strict)
{
    atomic_store(&g_strict, strict);
}

bool mem_is_strict(void)
{
    return atomic_load(&g_strict);
}

void mem_control_enter(void)
{
    t_control_depth++;
}

void mem_control_leave(void)
{
    if (t_control_depth > 0)
        t_control_depth--;
}

/* ---- registry ------------------------------------------------------------------------------- */

void mem_obj_register(mem_obj_t *node, mem_obj_kind_t kind, mem_tag_t tag, const char *name,
                      const void *obj, mem_obj_stats_fn *stats)
{
    node->kind = kind;
    node->tag = tag;
    snprintf(node->name, sizeof node->name, "%s", name ? name : "");
    node->obj = obj;
    node->stats = stats;
    pthread_mutex_lock(&g_obj_lock);
    node->next = g_objs;
    g_objs = node;
    pthread_mutex_unlock(&g_obj_lock);
}

void mem_obj_unregister(mem_obj_t *node)
{
    pthread_mutex_lock(&g_obj_lock);
    for (mem_obj_t **pp = &g_objs; *pp; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            break;
        }
    }
    node->next = NULL;
    pthread_mutex_unlock(&g_obj_lock);
}

/* ---- snapshot ------------------------------------------------------------------------------- */

static void site_merge(mem_snapshot_t *out, mem_site_t *all, unsigned *nall, unsigned cap,
                       const site_ctr_t *c, const char *file)
{
    int line = MEM_LD(c->line);
    mem_tag_t tag = (mem_tag_t)MEM_LD(c->tag);
    for (unsigned i = 0; i < *nall; i++) {
        if (all[i].file == file && all[i].line == line && all[i].tag == tag) {
            all[i].count += MEM_LD(c->count);
            all[i].bytes += MEM_LD(c->bytes);
            return;
        }
    }
    if (*nall == cap) {
        out->sites_dropped += MEM_LD(c->count);
        return;
    }
    all[(*nall)++] = (mem_site_t){file, line, tag, MEM_LD(c->count), MEM_LD(c->bytes)};
}

/* Order of the report: more allocations first, then more bytes, then file and line. */
static bool site_before(const mem_site_t *x, const mem_site_t *y)
{
    if (x->count != y->count)
        return x->count > y->count;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes;
    int f = strcmp(x->file, y->file);
    return f ? f < 0 : x->line < y->line;
}

/* This process's peak resident set: VmHWM, the high-water mark of its own address space. Not
 * getrusage's ru_maxrss: Linux carries that across fork and exec, so a small command started by
 * a large process (a test runner) would report its parent's peak. No allocation (stack buffer). */
static uint64_t peak_rss(void)
{
    char b[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, b, sizeof b - 1);
        close(fd);
        if (n > 0) {
            b[n] = '\0';
            const char *p = strstr(b, "\nVmHWM:");
            if (p)
                return strtoull(p + strlen("\nVmHWM:"), NULL, 10) * 1024u;
        }
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        return (uint64_t)ru.ru_maxrss * 1024u;
    return 0;
}

void mem_snapshot_counters(mem_snapshot_t *out)
{
    memset(out, 0, sizeof *out);
    out->faults_after_seal = -1;
    out->sealed = mem_is_sealed();
    out->strict = mem_is_strict();
    /* Merge buffer for sites: on the stack, bounded (no allocation while reporting). */
    enum { SITE_MERGE = 256 };
    mem_site_t all[SITE_MERGE];
    unsigned nall = 0;
    for (unsigned i = 0; i < MEM_MAX_THREADS; i++) {
        tslot_t *s = &g_slots[i];
        if (!MEM_LD(s->ever_used))
            continue;
        out->threads_seen++;
        for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
            const tag_ctr_t *c = &s->tag[t];
            mem_tag_stats_t *d = &out->tag[t];
            d->allocs += MEM_LD(c->allocs);
            d->frees += MEM_LD(c->frees);
            d->bytes_alloc += MEM_LD(c->bytes_alloc);
            d->bytes_freed += MEM_LD(c->bytes_freed);
            d->peak += MEM_LD(c->peak);
            d->churn_allocs += MEM_LD(c->churn_allocs);
            d->churn_bytes += MEM_LD(c->churn_bytes);
            d->control_allocs += MEM_LD(c->control_allocs);
            d->failed += MEM_LD(c->failed);
        }
        for (unsigned k = 0; k < MEM_SITES_PER_THREAD; k++) {
            const char *f = atomic_load_explicit(&s->site[k].file, memory_order_acquire);
            if (f)
                site_merge(out, all, &nall, SITE_MERGE, &s->site[k], f);
        }
        out->sites_dropped += MEM_LD(s->sites_dropped);
    }
    mem_tag_stats_t *tot = &out->total;
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
        out->tag[t].live = (int64_t)(out->tag[t].bytes_alloc - out->tag[t].bytes_freed);
        out->tag[t].live_blocks = (int64_t)(out->tag[t].allocs - out->tag[t].frees);
        out->tag[t].seal_allocs = MEM_LD(g_seal_allocs[t]);
        out->tag[t].seal_live = MEM_LD(g_seal_live[t]);
        const mem_tag_stats_t *d = &out->tag[t];
        tot->allocs += d->allocs;
        tot->frees += d->frees;
        tot->bytes_alloc += d->bytes_alloc;
        tot->bytes_freed += d->bytes_freed;
        tot->live += d->live;
        tot->live_blocks += d->live_blocks;
        tot->peak += d->peak; /* upper bound: tags peak at different times */
        tot->churn_allocs += d->churn_allocs;
        tot->churn_bytes += d->churn_bytes;
        tot->control_allocs += d->control_allocs;
        tot->failed += d->failed;
        tot->seal_allocs += d->seal_allocs;
        tot->seal_live += d->seal_live;
    }
    /* Top sites by selection (no qsort: glibc's may call malloc, and a snapshot must not). */
    while (out->nsites < MEM_REPORT_SITES && out->nsites < nall) {
        unsigned best = out->nsites;
        for (unsigned i = best + 1; i < nall; i++)
            if (site_before(&all[i], &all[best]))
                best = i;
        mem_site_t tmp = all[out->nsites];
        all[out->nsites] = all[best];
        all[best] = tmp;
        out->sites[out->nsites] = all[out->nsites];
        out->nsites++;
    }
    for (unsigned i = out->nsites; i < nall; i++)
        out->sites_dropped += all[i].count; /* not listed: counted under "sites not listed" */

    pthread_mutex_lock(&g_obj_lock);
    for (const mem_obj_t *o = g_objs; o; o = o->next) {
        if (out->nobjs == MEM_REPORT_OBJS) {
            out->objs_dropped++;
            continue;
        }
        mem_obj_row_t *r = &out->objs[out->nobjs++];
        r->kind = o->kind;
        r->tag = o->tag;
        snprintf(r->name, sizeof r->name, "%s", o->name);
        if (o->stats)
            o->stats(o->obj, &r->st);
    }
    pthread_mutex_unlock(&g_obj_lock);
    /* Registration pushes at the head: list objects in the order they were created. */
    for (unsigned i = 0; i < out->nobjs / 2; i++) {
        mem_obj_row_t tmp = out->objs[i];
        out->objs[i] = out->objs[out->nobjs - 1 - i];
        out->objs[out->nobjs - 1 - i] = tmp;
    }

    out->large_huge_bytes = atomic_load_explicit(&g_large_huge_bytes, memory_order_relaxed);
    out->large_thp_bytes = atomic_load_explicit(&g_large_thp_bytes, memory_order_relaxed);
    mem_populate_stats(&out->populate_queued, &out->populate_done);
}

void mem_snapshot(mem_snapshot_t *out)
{
    mem_snapshot_counters(out);
    int64_t proc, pop, at_seal = atomic_load(&g_faults_at_seal);
    faults_now(&proc, &pop);
    out->populate_faults_after_seal = pop - atomic_load(&g_bg_faults_at_seal);
    if (proc >= 0 && at_seal >= 0)
        out->faults_after_seal = proc - at_seal - out->populate_faults_after_seal;
    out->peak_rss = peak_rss();
}

unsigned mem_leak_count(const mem_snapshot_t *s)
{
    unsigned n = 0;
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++)
        n += s->tag[t].live != 0 || s->tag[t].live_blocks != 0;
    return n;
}

int mem_exit_status(const mem_snapshot_t *s)
{
    if (s->strict && (s->total.churn_allocs > 0 || mem_leak_count(s) > 0))
        return 3;
    return 0;
}

void mem_debug_reset(void)
{
    for (unsigned i = 0; i < MEM_MAX_THREADS; i++) {
        tslot_t *s = &g_slots[i];
        memset(s->tag, 0, sizeof s->tag);
        memset(s->site, 0, sizeof s->site);
        atomic_store(&s->sites_dropped, 0);
    }
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
        atomic_store(&g_seal_allocs[t], 0);
        atomic_store(&g_seal_live[t], 0);
    }
    /* Forget registered objects too: a test that failed half-way left its (stack) objects
     * registered, and the next snapshot must not follow them. */
    pthread_mutex_lock(&g_obj_lock);
    g_objs = NULL;
    pthread_mutex_unlock(&g_obj_lock);
}

/* ---- reports -------------------------------------------------------------------------------- */

static void fmt_bytes(char *buf, size_t n, int64_t b)
{
    double v = (double)(b < 0 ? -b : b);
    const char *sign = b < 0 ? "-" : "";
    if (v >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%s%.2f GiB", sign, v / (1024.0 * 1024 * 1024));
    else if (v >= 1024.0 * 1024)
        snprintf(buf, n, "%s%.2f MiB", sign, v / (1024.0 * 1024));
    else if (v >= 1024.0)
        snprintf(buf, n, "%s%.1f KiB", sign, v / 1024.0);
    else
        snprintf(buf, n, "%s%" PRId64 " B", sign, (int64_t)v);
}

void mem_report_text(FILE *f, const mem_snapshot_t *s, unsigned flags)
{
    char live[32], peak[32], tot[32];
    fprintf(f, "memory (%s%s)\n", s->sealed ? "sealed" : "not sealed", s->strict ? ", strict" : "");
    fprintf(f, "  %-10s %12s %12s %12s %12s %12s %10s\n", "tag", "allocs", "frees", "allocated",
            "live", "peak", "churn");
    for (unsigned t = 0; t <= MEM_TAG_COUNT; t++) {
        const mem_tag_stats_t *d = t < MEM_TAG_COUNT ? &s->tag[t] : &s->total;
        if (t < MEM_TAG_COUNT && d->allocs == 0 && d->frees == 0 && d->failed == 0)
            continue;
        fmt_bytes(tot, sizeof tot, (int64_t)d->bytes_alloc);
        fmt_bytes(live, sizeof live, d->live);
        fmt_bytes(peak, sizeof peak, d->peak);
        fprintf(f, "  %-10s %12" PRIu64 " %12" PRIu64 " %12s %12s %12s %10" PRIu64 "\n",
                t < MEM_TAG_COUNT ? mem_tag_name((mem_tag_t)t) : "total", d->allocs, d->frees, tot,
                live, peak, d->churn_allocs);
    }
    if (s->total.failed)
        fprintf(f, "  failed allocations: %" PRIu64 "\n", s->total.failed);
    fprintf(f,
            "  allocations after the seal: %" PRIu64 " churn (%" PRIu64 " bytes), %" PRIu64
            " in control scopes\n",
            s->total.churn_allocs, s->total.churn_bytes, s->total.control_allocs);
    for (unsigned i = 0; i < s->nsites; i++)
        fprintf(f, "    churn site %s:%d [%s]: %" PRIu64 " allocations, %" PRIu64 " bytes\n",
                s->sites[i].file, s->sites[i].line, mem_tag_name(s->sites[i].tag),
                s->sites[i].count, s->sites[i].bytes);
    if (s->sites_dropped)
        fprintf(f, "    (%" PRIu64 " churn allocations at sites not listed)\n", s->sites_dropped);
    for (unsigned i = 0; i < s->nobjs; i++) {
        const mem_obj_row_t *r = &s->objs[i];
        switch (r->kind) {
        case MEM_OBJ_ARENA:
            fmt_bytes(tot, sizeof tot, (int64_t)r->st.capacity);
            fmt_bytes(peak, sizeof peak, (int64_t)r->st.high_water);
            fmt_bytes(live, sizeof live, (int64_t)r->st.used);
            fprintf(f,
                    "  arena %-16s [%s] capacity %s, last cycle %s, high water %s, grows %" PRIu64
                    ", refused %" PRIu64 "\n",
                    r->name, mem_tag_name(r->tag), tot, live, peak, r->st.grows, r->st.exhausted);
            break;
        case MEM_OBJ_POOL:
            fprintf(f,
                    "  pool  %-16s [%s] %" PRIu64 " objects, in use %" PRIu64 ", peak %" PRIu64
                    ", exhausted %" PRIu64 ", refused puts %" PRIu64 "\n",
                    r->name, mem_tag_name(r->tag), r->st.capacity, r->st.used, r->st.high_water,
                    r->st.exhausted, r->st.refused_puts);
            break;
        case MEM_OBJ_RING:
            fprintf(f,
                    "  ring  %-16s [%s] %" PRIu64 " slots, filled %" PRIu64 ", high water %" PRIu64
                    ", full waits %" PRIu64 ", empty waits %" PRIu64 "\n",
                    r->name, mem_tag_name(r->tag), r->st.capacity, r->st.used, r->st.high_water,
                    r->st.exhausted, r->st.waits);
            break;
        }
    }
    if (s->objs_dropped)
        fprintf(f, "  (%" PRIu64 " more registered objects not listed)\n", s->objs_dropped);
    fmt_bytes(tot, sizeof tot, (int64_t)s->peak_rss);
    fprintf(f, "  peak RSS: %s\n", tot);
    if (s->faults_after_seal >= 0)
        fprintf(f, "  page faults after the seal: %" PRId64 "\n", s->faults_after_seal);
    if (s->large_huge_bytes || s->large_thp_bytes) {
        char h[32], t[32];
        fmt_bytes(h, sizeof h, (int64_t)s->large_huge_bytes);
        fmt_bytes(t, sizeof t, (int64_t)s->large_thp_bytes);
        fprintf(
            f, "  large blocks: %s on reserved huge pages, %s advised for transparent huge pages\n",
            h, t);
    }
    if (s->populate_queued) {
        char q[32], d[32];
        fmt_bytes(q, sizeof q, (int64_t)s->populate_queued);
        fmt_bytes(d, sizeof d, (int64_t)s->populate_done);
        fprintf(f,
                "  populated in the background: %s of %s (its own %" PRId64
                " page faults after the seal not counted above)\n",
                d, q, s->populate_faults_after_seal);
    }
    if (flags & MEM_REPORT_LEAKS) {
        unsigned leaks = mem_leak_count(s);
        if (leaks == 0) {
            fprintf(f, "  leak check: OK, 0 live bytes in every tag\n");
        } else {
            for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
                const mem_tag_stats_t *d = &s->tag[t];
                if (d->live == 0 && d->live_blocks == 0)
                    continue;
                fmt_bytes(live, sizeof live, d->live);
                fprintf(f, "  LEAK: tag %s holds %s in %" PRId64 " blocks\n",
                        mem_tag_name((mem_tag_t)t), live, d->live_blocks);
            }
        }
    }
    if (s->strict && s->total.churn_allocs)
        fprintf(f, "  STRICT: %" PRIu64 " allocations after the seal\n", s->total.churn_allocs);
}

static void json_str(FILE *f, const char *str)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_tag(FILE *f, const mem_tag_stats_t *d)
{
    fprintf(f,
            "{\"allocs\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"bytes_alloc\":%" PRIu64
            ",\"bytes_freed\":%" PRIu64 ",\"live\":%" PRId64 ",\"live_blocks\":%" PRId64
            ",\"peak\":%" PRId64 ",\"churn_allocs\":%" PRIu64 ",\"churn_bytes\":%" PRIu64
            ",\"control_allocs\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"seal_allocs\":%" PRIu64
            ",\"seal_live\":%" PRId64 "}",
            d->allocs, d->frees, d->bytes_alloc, d->bytes_freed, d->live, d->live_blocks, d->peak,
            d->churn_allocs, d->churn_bytes, d->control_allocs, d->failed, d->seal_allocs,
            d->seal_live);
}

void mem_report_json(FILE *f, const mem_snapshot_t *s, unsigned flags)
{
    fprintf(f, "{\"sealed\":%s,\"strict\":%s,\"tags\":{", s->sealed ? "true" : "false",
            s->strict ? "true" : "false");
    bool first = true;
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
        if (s->tag[t].allocs == 0 && s->tag[t].frees == 0 && s->tag[t].failed == 0)
            continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", mem_tag_name((mem_tag_t)t));
        json_tag(f, &s->tag[t]);
        first = false;
    }
    fprintf(f, "},\"total\":");
    json_tag(f, &s->total);
    fprintf(f, ",\"churn_sites\":[");
    for (unsigned i = 0; i < s->nsites; i++) {
        fprintf(f, "%s{\"file\":", i ? "," : "");
        json_str(f, s->sites[i].file);
        fprintf(f, ",\"line\":%d,\"tag\":\"%s\",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                s->sites[i].line, mem_tag_name(s->sites[i].tag), s->sites[i].count,
                s->sites[i].bytes);
    }
    fprintf(f, "],\"churn_sites_dropped\":%" PRIu64 ",\"objects\":[", s->sites_dropped);
    for (unsigned i = 0; i < s->nobjs; i++) {
        const mem_obj_row_t *r = &s->objs[i];
        fprintf(f, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", mem_obj_kind_name(r->kind));
        json_str(f, r->name);
        fprintf(f,
                ",\"tag\":\"%s\",\"capacity\":%" PRIu64 ",\"used\":%" PRIu64
                ",\"high_water\":%" PRIu64 ",\"grows\":%" PRIu64 ",\"exhausted\":%" PRIu64
                ",\"waits\":%" PRIu64 ",\"refused_puts\":%" PRIu64 "}",
                mem_tag_name(r->tag), r->st.capacity, r->st.used, r->st.high_water, r->st.grows,
                r->st.exhausted, r->st.waits, r->st.refused_puts);
    }
    fprintf(f,
            "],\"peak_rss\":%" PRIu64 ",\"faults_after_seal\":%" PRId64
            ",\"large_huge_bytes\":%" PRIu64 ",\"large_thp_bytes\":%" PRIu64
            ",\"populate_queued\":%" PRIu64 ",\"populate_done\":%" PRIu64
            ",\"populate_faults_after_seal\":%" PRId64,
            s->peak_rss, s->faults_after_seal, s->large_huge_bytes, s->large_thp_bytes,
            s->populate_queued, s->populate_done, s->populate_faults_after_seal);
    if (flags & MEM_REPORT_LEAKS) {
        fprintf(f, ",\"leaks\":{");
        first = true;
        for (unsigned t = 0; t < MEM_TAG_COUNT; t++) {
            if (s->tag[t].live == 0 && s->tag[t].live_blocks == 0)
                continue;
            fprintf(f, "%s\"%s\":{\"bytes\":%" PRId64 ",\"blocks\":%" PRId64 "}", first ? "" : ",",
                    mem_tag_name((mem_tag_t)t), s->tag[t].live, s->tag[t].live_blocks);
            first = false;
        }
        fprintf(f, "},\"leak_check\":\"%s\"", mem_leak_count(s) ? "failed" : "ok");
    }
    fprintf(f, ",\"exit_status\":%d}", mem_exit_status(s));
}
