/*
 * arena: bump allocation for per-batch and per-cycle scratch.
 *
 * An arena owns a chain of blocks allocated at init (one block of the configured capacity).
 * arena_alloc() bumps a pointer inside the current block (inline fast path); arena_reset()
 * drops everything at once by rewinding to the first block. Nothing is freed piecemeal. When
 * a request does not fit, the policy decides: ARENA_FIXED refuses (returns NULL and counts a
 * refusal), ARENA_GROW chains a new block (allocated through mem/, so after the seal it is
 * counted as churn at arena.c; the arena also counts its grows). Grown blocks are kept across
 * resets, so an arena that grew once has the room it needed and stops growing. The high-water
 * mark is the most bytes in use between two resets (alignment padding and abandoned block
 * tails included), kept across resets, so the report says how big the arena should be; the
 * report's figures are those of the last reset (the fast path publishes nothing). Under
 * ASan every byte not handed out is poisoned, with a poisoned gap after each allocation; under
 * valgrind the same bytes are marked inaccessible; so use after reset is caught by both.
 * One thread owns an arena; nothing here is thread-safe.
 */
#ifndef TICKCORE_MEM_ARENA_H
#define TICKCORE_MEM_ARENA_H

#include "base/hints.h"
#include "mem/mem.h"
#include "mem/sanitize.h"

#include <stdint.h>

typedef enum arena_policy {
    ARENA_FIXED, /* out of space: return NULL, count a refusal */
    ARENA_GROW,  /* out of space: chain a new block (counted; churn if sealed) */
} arena_policy_t;

typedef struct arena_block {
    struct arena_block *next;
    size_t size;  /* usable bytes after the header */
    size_t alloc; /* bytes obtained from mem_alloc (for mem_free) */
    char *data;
} arena_block_t;

typedef struct arena {
    char *cur;            /* next free byte in the current block */
    char *end;            /* end of the current block */
    arena_block_t *block; /* current block */
    arena_block_t *first;
    size_t used_before; /* bytes consumed in blocks before the current one since the reset */
    size_t block_size;  /* size of blocks added by ARENA_GROW (at least) */
    arena_policy_t policy;
    /* Read by the memory report from any thread: written by the owner with MEM_ST, never on the
     * fast path (at reset, growth and refusal only). */
    _Atomic size_t capacity;   /* sum of block sizes */
    _Atomic size_t high_water; /* most bytes used between two resets, as of the last reset */
    _Atomic size_t last_used;  /* bytes used in the cycle that the last reset ended */
    _Atomic uint64_t grows, refused, resets;
    mem_tag_t tag;
    mem_obj_t obj;
} arena_t;

/* Set up an arena with one block of capacity bytes, charged to tag, registered under name
 * for the memory report. Returns 0, -EINVAL (capacity 0) or -ENOMEM. Call before the seal. */
int arena_init(arena_t *a, const char *name, mem_tag_t tag, size_t capacity, arena_policy_t policy);
/* Free every block. A zeroed, never-initialised arena is accepted (no-op). */
void arena_fini(arena_t *a);
/* Drop every allocation at once; blocks are kept. Owner thread. */
void arena_reset(arena_t *a);
/* Publish the current cycle's usage and high-water mark to the report without resetting (for
 * an owner whose cycle ends without a reset, such as the last one). Owner thread. */
void arena_publish(arena_t *a);
/* Bytes in use since the last reset (padding included). Owner thread. */
size_t arena_used(const arena_t *a);
/* Fill the report row: capacity, bytes used in the last cycle, high water, grows, refusals.
 * Any thread (reads only the published fields). */
void arena_stats(const arena_t *a, mem_obj_stats_t *out);

void *arena_alloc_slow(arena_t *a, size_t size, size_t align);

/* size bytes aligned to align (a power of two; 0 means 16). NULL if the arena refuses or
 * align is not a power of two. The memory is valid until the next arena_reset. */
static inline void *arena_alloc(arena_t *a, size_t size, size_t align)
{
    if (align == 0)
        align = 16;
    uintptr_t p = ((uintptr_t)a->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (likely((align & (align - 1)) == 0 && p >= (uintptr_t)a->cur && p <= (uintptr_t)a->end &&
               mem_room_fits((uintptr_t)a->end - p, size))) {
        a->cur = (char *)(p + size + MEM_ASAN_REDZONE);
        mem_unpoison((void *)p, size);
        return (void *)p;
    }
    return arena_alloc_slow(a, size, align);
}

/* Typed helper: n objects of type T, aligned for T. */
#define arena_new(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (n), _Alignof(T)))

#endif
