/*
 * pool: fixed-size objects with capacity fixed at init (orders, price levels, connections).
 *
 * One slab of capacity objects and a stack of free indices are allocated at init; pool_get()
 * pops an index and pool_put() pushes it back, both O(1) and inline. Reuse is LIFO: the object
 * put last is handed out next (it is the one most likely still in cache). An empty pool makes
 * pool_get() return NULL and counts an exhaustion; the caller's policy decides what happens
 * (the order book counts and drops, say) and the report shows the count. Objects carry no
 * header, and an object can be named by its 32-bit index (pool_index/pool_at) where a pointer
 * is too wide. pool_put() refuses pointers that are not objects of this pool (-EINVAL); in
 * builds without NDEBUG a bitmap of objects in use also catches a double put (-EALREADY, and
 * counted), and under ASan or valgrind a free object is poisoned, so use after put is caught.
 * One thread owns a pool; nothing here is thread-safe.
 */
#ifndef TICKCORE_MEM_POOL_H
#define TICKCORE_MEM_POOL_H

#include "base/hints.h"
#include "mem/mem.h"
#include "mem/sanitize.h"

#include <errno.h>
#include <stdint.h>

#ifndef NDEBUG
#define POOL_CHECK_DOUBLE_PUT 1
#endif

typedef struct pool {
    char *slab;
    uint32_t *free_idx; /* stack of free object indices; free_idx[free_top-1] is next */
    uint64_t *in_use;   /* bitmap, builds without NDEBUG only */
    size_t obj_size;    /* object stride: size rounded up to the alignment */
    uint64_t div_magic; /* ceil(2^64 / obj_size): division-free index and alignment checks */
    uint32_t capacity;
    /* Also read by the memory report from any thread: written by the owner with MEM_ST. */
    _Atomic uint32_t free_top;
    _Atomic uint32_t peak;
    _Atomic uint64_t exhausted, double_puts, bad_puts;
    size_t slab_bytes;
    mem_tag_t tag;
    mem_obj_t obj;
} pool_t;

/* capacity objects of obj_size bytes aligned to align (power of two; 0 = 16), charged to tag
 * and registered under name. Returns 0, -EINVAL (size 0, capacity 0 or > UINT32_MAX - 1, bad
 * align) or -ENOMEM. Call before the seal. */
int pool_init(pool_t *p, const char *name, mem_tag_t tag, size_t obj_size, size_t align,
              size_t capacity);
/* Free the slab. Objects still in use are simply gone; a zeroed pool is accepted. */
void pool_fini(pool_t *p);
/* Every object back at once (like a fresh pool; counters kept). */
void pool_reset(pool_t *p);
void pool_stats(const pool_t *p, mem_obj_stats_t *out);

static inline uint32_t pool_in_use(const pool_t *p)
{
    return p->capacity - MEM_LD(p->free_top);
}

static inline void *pool_at(const pool_t *p, uint32_t idx)
{
    return p->slab + (size_t)idx * p->obj_size;
}

/* An object (contents undefined), or NULL when every object is in use (counted). */
static inline void *pool_get(pool_t *p)
{
    uint32_t top = MEM_LD(p->free_top);
    if (unlikely(top == 0)) {
        MEM_INC(p->exhausted);
        return NULL;
    }
    uint32_t idx = p->free_idx[--top];
    MEM_ST(p->free_top, top);
    uint32_t used = p->capacity - top;
    if (used > MEM_LD(p->peak))
        MEM_ST(p->peak, used);
#ifdef POOL_CHECK_DOUBLE_PUT
    p->in_use[idx >> 6] |= 1ull << (idx & 63);
#endif
    void *obj = pool_at(p, idx);
    mem_unpoison(obj, p->obj_size);
    return obj;
}

int pool_put_refused(pool_t *p, const void *obj);

__extension__ typedef unsigned __int128 pool_u128_t;

/* Index of the object at byte offset off, or UINT32_MAX if off is not an object's start.
 * Lemire's division by multiplication: exact for off < 2^32, which pool_init guarantees for
 * slabs that use it (div_magic != 0); larger slabs divide. */
static inline uint32_t pool_offset_index(const pool_t *p, size_t off)
{
    if (likely(p->div_magic != 0)) {
        uint64_t low = p->div_magic * (uint64_t)off;
        if (low > p->div_magic - 1) /* remainder != 0 */
            return UINT32_MAX;
        return (uint32_t)(((pool_u128_t)p->div_magic * off) >> 64);
    }
    return off % p->obj_size ? UINT32_MAX : (uint32_t)(off / p->obj_size);
}

/* Index of obj, which must be an object of this pool. */
static inline uint32_t pool_index(const pool_t *p, const void *obj)
{
    return pool_offset_index(p, (size_t)((uintptr_t)obj - (uintptr_t)p->slab));
}

/* Return obj to the pool. 0; -EINVAL if obj is not an object of this pool; -EALREADY if it is
 * already free (builds without NDEBUG). Refusals are counted and leave the pool unchanged. */
static inline int pool_put(pool_t *p, void *obj)
{
    size_t off = (size_t)((uintptr_t)obj - (uintptr_t)p->slab); /* wraps if below the slab */
    uint32_t idx = off < p->slab_bytes ? pool_offset_index(p, off) : UINT32_MAX;
    if (unlikely(idx == UINT32_MAX))
        return pool_put_refused(p, obj);
#ifdef POOL_CHECK_DOUBLE_PUT
    uint64_t bit = 1ull << (idx & 63);
    if (unlikely(!(p->in_use[idx >> 6] & bit)))
        return pool_put_refused(p, obj);
    p->in_use[idx >> 6] &= ~bit;
#endif
    mem_poison(obj, p->obj_size);
    uint32_t top = MEM_LD(p->free_top);
    p->free_idx[top] = idx;
    MEM_ST(p->free_top, top + 1);
    return 0;
}

#endif
