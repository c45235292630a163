/*
 * arena: blocks, the slow path of arena_alloc, reset and the report hook. The fast path is
 * inline in arena.h. Blocks come from mem_alloc_prefault (backed by RAM at init, so the
 * steady state takes no page faults) with the arena's tag; a block's header
 * sits at the start of its allocation and its data follows on the next cache line. The chain
 * is walked only on reset and when the current block is full.
 */
#include "mem/arena.h"

#include "base/hints.h"

#include <errno.h>
#include <string.h>

#define HDR_SIZE ((sizeof(arena_block_t) + MEM_CACHE_LINE - 1) & ~(size_t)(MEM_CACHE_LINE - 1))

static arena_block_t *block_new(arena_t *a, size_t size)
{
    size_t alloc = HDR_SIZE + size;
    if (alloc < size)
        return NULL;
    char *m = mem_alloc_prefault(a->tag, alloc, MEM_CACHE_LINE);
    if (m == NULL)
        return NULL;
    arena_block_t *b = (arena_block_t *)m;
    b->next = NULL;
    b->size = size;
    b->alloc = alloc;
    b->data = m + HDR_SIZE;
    mem_poison(b->data, size);
    MEM_ST(a->capacity, MEM_LD(a->capacity) + size);
    return b;
}

static void stats_fn(const void *obj, mem_obj_stats_t *out)
{
    arena_stats(obj, out);
}

int arena_init(arena_t *a, const char *name, mem_tag_t tag, size_t capacity, arena_policy_t policy)
{
    memset(a, 0, sizeof *a);
    if (capacity == 0)
        return -EINVAL;
    a->tag = tag;
    a->policy = policy;
    a->block_size = capacity;
    arena_block_t *b = block_new(a, capacity);
    if (b == NULL)
        return -ENOMEM;
    a->first = a->block = b;
    a->cur = b->data;
    a->end = b->data + b->size;
    mem_obj_register(&a->obj, MEM_OBJ_ARENA, tag, name, a, stats_fn);
    return 0;
}

void arena_fini(arena_t *a)
{
    if (a->first == NULL)
        return;
    mem_obj_unregister(&a->obj);
    arena_block_t *b = a->first;
    while (b) {
        arena_block_t *next = b->next;
        mem_unpoison(b->data, b->size);
        mem_free(a->tag, b, b->alloc);
        b = next;
    }
    memset(a, 0, sizeof *a);
}

size_t arena_used(const arena_t *a)
{
    return a->block ? a->used_before + (size_t)(a->cur - a->block->data) : 0;
}

static size_t note_high_water(arena_t *a)
{
    size_t used = arena_used(a);
    if (used > MEM_LD(a->high_water))
        MEM_ST(a->high_water, used);
    return used;
}

void arena_publish(arena_t *a)
{
    if (a->first != NULL)
        MEM_ST(a->last_used, note_high_water(a));
}

void arena_reset(arena_t *a)
{
    if (a->first == NULL)
        return;
    MEM_ST(a->last_used, note_high_water(a));
    /* Poison what was handed out since the last reset: every block up to the current one. */
    for (arena_block_t *b = a->first; b; b = b->next) {
        size_t n = b == a->block ? (size_t)(a->cur - b->data) : b->size;
        mem_poison(b->data, n);
        if (b == a->block)
            break;
    }
    a->block = a->first;
    a->cur = a->first->data;
    a->end = a->first->data + a->first->size;
    a->used_before = 0;
    MEM_INC(a->resets);
}

/* Room for size bytes at align, plus the ASan gap, at the start of block b? */
static bool fits_fresh(const arena_block_t *b, size_t size, size_t align)
{
    uintptr_t p = ((uintptr_t)b->data + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t pad = (size_t)(p - (uintptr_t)b->data);
    return pad <= b->size && mem_room_fits(b->size - pad, size);
}

HINT_NOINLINE void *arena_alloc_slow(arena_t *a, size_t size, size_t align)
{
    if (a->first == NULL || (align & (align - 1)) != 0 || size > SIZE_MAX / 2) {
        MEM_INC(a->refused);
        return NULL;
    }
    /* Move on through blocks kept from earlier growth; a block too small is skipped whole. */
    for (arena_block_t *b = a->block->next; b; b = b->next) {
        note_high_water(a);
        a->used_before += a->block->size;
        a->block = b;
        a->cur = b->data;
        a->end = b->data + b->size;
        if (fits_fresh(b, size, align))
            return arena_alloc(a, size, align);
    }
    if (a->policy != ARENA_GROW) {
        MEM_INC(a->refused);
        return NULL;
    }
    size_t want = size + align + MEM_ASAN_REDZONE;
    arena_block_t *b = block_new(a, want > a->block_size ? want : a->block_size);
    if (b == NULL) {
        MEM_INC(a->refused);
        return NULL;
    }
    MEM_INC(a->grows);
    note_high_water(a);
    a->used_before += a->block->size;
    a->block->next = b; /* the current block is the last one here */
    a->block = b;
    a->cur = b->data;
    a->end = b->data + b->size;
    return arena_alloc(a, size, align);
}

void arena_stats(const arena_t *a, mem_obj_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->capacity = MEM_LD(a->capacity);
    out->used = MEM_LD(a->last_used);
    out->high_water = MEM_LD(a->high_water);
    out->grows = MEM_LD(a->grows);
    out->exhausted = MEM_LD(a->refused);
}
