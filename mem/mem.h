/*
 * mem: allocation accounting for all of tickcore.
 *
 * Every byte the engine owns is obtained here, tagged with the subsystem that owns it, and
 * backed by mimalloc. Counters live in per-thread slots (a fixed static table, so accounting
 * itself never allocates); each slot is written only by the thread that owns it, with relaxed
 * atomic loads and stores and no read-modify-write, so the allocation path takes no shared
 * lock and no shared atomic. A snapshot sums the slots. Start-up sizes everything, then calls
 * mem_seal(); any allocation after the seal that is not inside a control scope is churn,
 * counted per tag and per call site (file:line through the macros below). At teardown every
 * tag must show 0 live bytes; mem_report() names the tags that do not. Arenas, pools and rings
 * register themselves (mem_obj_register) so the report can show their high-water marks and
 * exhaustion counts. Peak live bytes are exact when a tag's memory is allocated and freed by
 * one thread at a time (start-up, teardown); with several threads at once the summed per-slot
 * peaks are an upper bound of the true peak. Under valgrind, or with TICKCORE_MEM_BACKEND=libc,
 * the backing allocator is glibc malloc so that memcheck, massif and heaptrack see every block.
 */
#ifndef TICKCORE_MEM_MEM_H
#define TICKCORE_MEM_MEM_H

#include "base/hints.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Subsystems that own memory. Keep mem_tag_name() in mem.c in the same order. */
typedef enum mem_tag {
    MEM_TAG_CORE = 0, /* mem/ itself and anything without a better owner */
    MEM_TAG_INGEST,
    MEM_TAG_BOOK,
    MEM_TAG_STATS,
    MEM_TAG_ANALYTICS,
    MEM_TAG_ENGINE,
    MEM_TAG_RING,
    MEM_TAG_SERVER,
    MEM_TAG_JOURNAL,
    MEM_TAG_CONFIG,
    MEM_TAG_BENCH,
    MEM_TAG_TEST,
    MEM_TAG_NET, /* net/nats: our side of the NATS client (connections, consumers) */
    MEM_TAG_COUNT
} mem_tag_t;

enum {
    MEM_ZERO = 1u << 0,     /* flag for mem_alloc_at: zero the memory */
    MEM_PREFAULT = 1u << 1, /* touch every page now, so the steady state takes no page faults
                               and RSS does not creep up after start-up (contents undefined
                               unless MEM_ZERO is given too) */
};

#define MEM_CACHE_LINE       64
#define MEM_MAX_THREADS      128 /* per-thread counter slots; more threads share one slot */
#define MEM_SITES_PER_THREAD 64
#define MEM_REPORT_SITES     10 /* churn sites listed in a report */

/* Counters with one writer that other threads may read (memory report, metrics): relaxed
 * atomic load and store, no read-modify-write. On x86 these are plain moves; TSan sees them. */
#define MEM_LD(x)    atomic_load_explicit(&(x), memory_order_relaxed)
#define MEM_ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define MEM_INC(x)   MEM_ST((x), MEM_LD(x) + 1)

/* Allocate size bytes for tag, aligned to align (0 = malloc's alignment, else a power of
 * two), zeroed if flags has MEM_ZERO. Returns NULL on failure (counted, never aborts).
 * Any thread. file/line name the call site for churn reports: use the macros. */
void *mem_alloc_at(mem_tag_t tag, size_t size, size_t align, unsigned flags, const char *file,
                   int line);
/* Resize a block obtained from mem_alloc_at; counted as one free and one allocation. On
 * failure returns NULL and the old block stays valid and owned by the caller. */
void *mem_realloc_at(mem_tag_t tag, void *p, size_t old_size, size_t new_size, const char *file,
                     int line);
/* Return a block. size must be the size it was allocated with (checked in debug builds);
 * tag must be the tag it was allocated with. NULL is a no-op. Any thread. */
void mem_free(mem_tag_t tag, void *p, size_t size);

/* The buffers of one object, allocated together, all or nothing: *slots[i] receives a block of
 * sizes[i] bytes aligned to align, flags as mem_alloc_at. Returns 0, or -ENOMEM with every block
 * made so far freed and every *slots[i] NULL. mem_free_group returns such a group (the same
 * sizes) and sets every slot to NULL. Any thread. */
int mem_alloc_group_at(mem_tag_t tag, void **const slots[], const size_t sizes[], size_t n,
                       size_t align, unsigned flags, const char *file, int line);
void mem_free_group(mem_tag_t tag, void **const slots[], const size_t sizes[], size_t n);

#define mem_alloc(tag, size)  mem_alloc_at((tag), (size), 0, 0, __FILE__, __LINE__)
#define mem_zalloc(tag, size) mem_alloc_at((tag), (size), 0, MEM_ZERO, __FILE__, __LINE__)
#define mem_alloc_aligned(tag, size, align)                                                        \
    mem_alloc_at((tag), (size), (align), 0, __FILE__, __LINE__)
#define mem_zalloc_aligned(tag, size, align)                                                       \
    mem_alloc_at((tag), (size), (align), MEM_ZERO, __FILE__, __LINE__)
#define mem_alloc_group(tag, slots, sizes, n, align, flags)                                        \
    mem_alloc_group_at((tag), (slots), (sizes), (n), (align), (flags), __FILE__, __LINE__)
/* Start-up buffers that the steady state will fill: aligned and already backed by RAM. */
#define mem_alloc_prefault(tag, size, align)                                                       \
    mem_alloc_at((tag), (size), (align), MEM_PREFAULT, __FILE__, __LINE__)
/* n * size zeroed bytes; NULL (counted as a failure) if n * size overflows. */
#define mem_calloc(tag, n, size) mem_calloc_at((tag), (n), (size), __FILE__, __LINE__)
#define mem_realloc(tag, p, old_size, new_size)                                                    \
    mem_realloc_at((tag), (p), (old_size), (new_size), __FILE__, __LINE__)
void *mem_calloc_at(mem_tag_t tag, size_t n, size_t size, const char *file, int line);

/* "mimalloc", or "glibc malloc" under valgrind or with TICKCORE_MEM_BACKEND=libc. */
const char *mem_backend_name(void);

/* End of start-up: from now on, allocations outside a control scope are churn. Any thread.
 * Records each tag's allocation count and live bytes at this moment (seal_allocs, seal_live in
 * every later snapshot), so a report can show what start-up cost; a later seal overwrites them. */
void mem_seal(void);
/* Back to start-up (tests; reconfiguration). Churn counted so far is kept. */
void mem_unseal(void);
bool mem_is_sealed(void);
/* Strict mode: the caller treats churn or a leak as failure (exit code 3). If the environment
 * variable TICKCORE_CHURN_ABORT=1 is set when mem_seal() is called, the first churn allocation
 * aborts instead, so a debugger shows its stack. */
void mem_set_strict(bool strict);
bool mem_is_strict(void);

/* Control scope (calling thread only, nestable): allocations made while handling a control
 * command (reconfigure, add a feed, a new client) are counted as control allocations, not
 * churn. Every enter needs its leave. */
void mem_control_enter(void);
void mem_control_leave(void);

/* Counters of one tag, summed over all threads. */
typedef struct mem_tag_stats {
    uint64_t allocs;       /* successful allocations (realloc counts one) */
    uint64_t frees;        /* frees (realloc counts one) */
    uint64_t bytes_alloc;  /* bytes handed out in total */
    uint64_t bytes_freed;  /* bytes returned in total */
    int64_t live;          /* bytes_alloc - bytes_freed */
    int64_t live_blocks;   /* allocs - frees */
    int64_t peak;          /* peak live bytes (see the header note on threads) */
    uint64_t churn_allocs; /* allocations after the seal, outside control scopes */
    uint64_t churn_bytes;
    uint64_t control_allocs; /* allocations after the seal inside control scopes */
    uint64_t failed;         /* allocations that returned NULL */
    uint64_t seal_allocs;    /* allocations made before the last mem_seal(): start-up calls */
    int64_t seal_live;       /* bytes held at the last mem_seal(): what start-up sized */
} mem_tag_stats_t;

/* One call site that allocated after the seal. */
typedef struct mem_site {
    const char *file;
    int line;
    mem_tag_t tag;
    uint64_t count;
    uint64_t bytes;
} mem_site_t;

/* Kinds of objects that register for the report. */
typedef enum mem_obj_kind { MEM_OBJ_ARENA, MEM_OBJ_POOL, MEM_OBJ_RING } mem_obj_kind_t;

/* What a registered object tells the report (fields that do not apply are 0). */
typedef struct mem_obj_stats {
    uint64_t capacity;     /* bytes (arena), objects (pool), slots (ring) */
    uint64_t used;         /* now: bytes used, objects in use, slots filled */
    uint64_t high_water;   /* most ever used at once */
    uint64_t grows;        /* arena blocks added after init (each one also churn if sealed) */
    uint64_t exhausted;    /* requests refused: arena out of space, pool empty, ring full waits */
    uint64_t waits;        /* ring: times the consumer found it empty */
    uint64_t refused_puts; /* pool: puts refused (double put, not an object of the pool) */
} mem_obj_stats_t;

typedef void mem_obj_stats_fn(const void *obj, mem_obj_stats_t *out);

/* Registry node, embedded in the object that registers (no allocation). */
typedef struct mem_obj {
    mem_obj_kind_t kind;
    mem_tag_t tag;
    char name[32]; /* copied at registration (cut to 31 bytes), so any string will do */
    const void *obj;
    mem_obj_stats_fn *stats;
    struct mem_obj *next;
} mem_obj_t;

/* Add/remove an object to/from the report's registry (control path; takes a mutex). The stats
 * function is called by mem_snapshot() from any thread, so it may read only fields that the
 * owner writes with MEM_ST (or other atomics). */
void mem_obj_register(mem_obj_t *node, mem_obj_kind_t kind, mem_tag_t tag, const char *name,
                      const void *obj, mem_obj_stats_fn *stats);
void mem_obj_unregister(mem_obj_t *node);

#define MEM_REPORT_OBJS 64 /* registered objects listed in a snapshot */

typedef struct mem_obj_row {
    mem_obj_kind_t kind;
    mem_tag_t tag;
    char name[32];
    mem_obj_stats_t st;
} mem_obj_row_t;

/* A consistent-enough sum of every thread's counters (exact once other threads are idle). */
typedef struct mem_snapshot {
    mem_tag_stats_t tag[MEM_TAG_COUNT];
    mem_tag_stats_t total;
    bool sealed;
    bool strict;
    unsigned threads_seen;              /* counter slots ever claimed */
    mem_site_t sites[MEM_REPORT_SITES]; /* top churn sites by count */
    unsigned nsites;
    uint64_t sites_dropped; /* churn allocations at sites not listed (past the top sites, or
                               past a thread's site table) */
    mem_obj_row_t objs[MEM_REPORT_OBJS];
    unsigned nobjs;
    uint64_t objs_dropped;
    uint64_t peak_rss; /* bytes, from getrusage */
    /* Page faults (minor + major) of the whole process since the last mem_seal(), -1 before any
     * seal, less the background populator's own (populate_faults_after_seal): sizing at
     * start-up prefaults everything, so the steady state should take none. */
    int64_t faults_after_seal, populate_faults_after_seal;
    /* Background populate (mem_populate_background): bytes of large blocks queued to the
     * populator and populated by it, over the process. */
    uint64_t populate_queued, populate_done;
    /* Bytes of large blocks (1 MiB and up, their own mappings) on reserved huge pages
     * (MAP_HUGETLB) and on mappings advised for transparent huge pages, over the run. */
    uint64_t large_huge_bytes, large_thp_bytes;
} mem_snapshot_t;

void mem_snapshot(mem_snapshot_t *out);

/* Background populate: with on, every later large block (1 MiB and up, mem_alloc_at's own
 * mappings) that asks to be populated (MEM_ZERO or MEM_PREFAULT) is mapped now and populated
 * by one populator thread, 2 MiB at a time, first chunks first: start-up does not wait for the
 * kernel to zero it. A page touched before the populator reaches it faults in the toucher's
 * thread (counted in faults_after_seal; the populator's own faults are not). off: stop the
 * populator after its current chunk and join it (call before tearing down: what is left
 * unpopulated stays so); later blocks are populated at allocation again. Any thread, control
 * path. Without large blocks (valgrind, TICKCORE_MEM_BACKEND=libc) nothing changes. */
void mem_populate_background(bool on);
/* Wait until every queued block is populated, taking chunks in the calling thread too (so two
 * threads populate at once): call before mem_seal() and the steady state takes no page fault,
 * while the populating overlapped whatever start-up did since the blocks were allocated. Call
 * it from the thread that allocates and frees the large blocks. */
void mem_populate_wait(void);
/* lazy: the populator drops to SCHED_IDLE at its next chunk (for a run that goes on without
 * mem_populate_wait: it then takes only a core nobody else wants, and the engine's threads
 * fault, counted, on pages it has not reached). */
void mem_populate_lazy(bool lazy);
/* Bytes queued to the populator and populated by it (or by mem_populate_wait) so far. */
void mem_populate_stats(uint64_t *queued, uint64_t *done);
/* The same without asking the kernel: the counters, sites and objects only; peak_rss is 0 and
 * faults_after_seal -1. No system call (mem_snapshot opens /proc/self/status and calls
 * getrusage): for a caller that answers often, such as the server's /metrics. */
void mem_snapshot_counters(mem_snapshot_t *out);

const char *mem_tag_name(mem_tag_t tag);
const char *mem_obj_kind_name(mem_obj_kind_t kind);

/* Tags with live bytes != 0 or live blocks != 0. 0 means no leak. */
unsigned mem_leak_count(const mem_snapshot_t *s);
/* Exit status the snapshot calls for: 0, or 3 in strict mode when there is churn or a leak. */
int mem_exit_status(const mem_snapshot_t *s);

enum { MEM_REPORT_LEAKS = 1u << 0 }; /* include the leak verdict (only meaningful at teardown) */
/* Human report: per-tag table, churn sites, registered objects, peak RSS, leak verdict. */
void mem_report_text(FILE *f, const mem_snapshot_t *s, unsigned flags);
/* The same as one JSON object (no trailing newline). */
void mem_report_json(FILE *f, const mem_snapshot_t *s, unsigned flags);

/* Tests only: zero every counter and site table and empty the object registry. Call with no
 * other thread allocating and no registered object still in use. */
void mem_debug_reset(void);

#endif
