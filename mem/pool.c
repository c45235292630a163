/*
 * pool: init, teardown, reset, refusals and the report hook. The get/put fast paths are inline
 * in pool.h. The slab, the free-index stack and (without NDEBUG) the in-use bitmap are three
 * allocations made at init with the pool's tag, freed at fini.
 */
#include "mem/pool.h"

#include "base/hints.h"

#include <string.h>

static void stats_fn(const void *obj, mem_obj_stats_t *out)
{
    pool_stats(obj, out);
}

static void fill_free_stack(pool_t *p)
{
    /* Index 0 on top: a fresh pool hands out objects in slab order. */
    for (uint32_t i = 0; i < p->capacity; i++)
        p->free_idx[i] = p->capacity - 1 - i;
    MEM_ST(p->free_top, p->capacity);
#ifdef POOL_CHECK_DOUBLE_PUT
    memset(p->in_use, 0, ((size_t)p->capacity + 63) / 64 * sizeof(uint64_t));
#endif
    mem_poison(p->slab, p->slab_bytes);
}

int pool_init(pool_t *p, const char *name, mem_tag_t tag, size_t obj_size, size_t align,
              size_t capacity)
{
    memset(p, 0, sizeof *p);
    if (align == 0)
        align = 16;
    if (obj_size == 0 || capacity == 0 || capacity >= UINT32_MAX || (align & (align - 1)))
        return -EINVAL;
    size_t stride = (obj_size + align - 1) & ~(align - 1);
    if (stride < obj_size || stride > SIZE_MAX / capacity)
        return -EINVAL;
    p->tag = tag;
    p->obj_size = stride;
    p->capacity = (uint32_t)capacity;
    p->slab_bytes = stride * capacity;
    /* ceil(2^64 / stride); 0 (plain division) for stride 1 or slabs of 4 GiB and more. */
    p->div_magic = stride > 1 && p->slab_bytes <= UINT32_MAX ? UINT64_MAX / stride + 1 : 0;
    size_t slab_align = align > MEM_CACHE_LINE ? align : MEM_CACHE_LINE;
    p->slab = mem_alloc_prefault(tag, p->slab_bytes, slab_align);
    p->free_idx = mem_alloc(tag, capacity * sizeof(uint32_t));
#ifdef POOL_CHECK_DOUBLE_PUT
    p->in_use = mem_alloc(tag, (capacity + 63) / 64 * sizeof(uint64_t));
    if (p->in_use == NULL)
        goto fail;
#endif
    if (p->slab == NULL || p->free_idx == NULL)
        goto fail;
    fill_free_stack(p);
    mem_obj_register(&p->obj, MEM_OBJ_POOL, tag, name, p, stats_fn);
    return 0;
fail:
    mem_free(tag, p->slab, p->slab_bytes);
    mem_free(tag, p->free_idx, capacity * sizeof(uint32_t));
#ifdef POOL_CHECK_DOUBLE_PUT
    mem_free(tag, p->in_use, (capacity + 63) / 64 * sizeof(uint64_t));
#endif
    memset(p, 0, sizeof *p);
    return -ENOMEM;
}

void pool_fini(pool_t *p)
{
    if (p->slab == NULL)
        return;
    mem_obj_unregister(&p->obj);
    mem_unpoison(p->slab, p->slab_bytes);
    mem_free(p->tag, p->slab, p->slab_bytes);
    mem_free(p->tag, p->free_idx, (size_t)p->capacity * sizeof(uint32_t));
#ifdef POOL_CHECK_DOUBLE_PUT
    mem_free(p->tag, p->in_use, ((size_t)p->capacity + 63) / 64 * sizeof(uint64_t));
#endif
    memset(p, 0, sizeof *p);
}

void pool_reset(pool_t *p)
{
    if (p->slab)
        fill_free_stack(p);
}

HINT_COLD int pool_put_refused(pool_t *p, const void *obj)
{
    size_t off = (size_t)((uintptr_t)obj - (uintptr_t)p->slab);
    if (off >= p->slab_bytes || pool_offset_index(p, off) == UINT32_MAX) {
        MEM_INC(p->bad_puts);
        return -EINVAL;
    }
    MEM_INC(p->double_puts);
    return -EALREADY;
}

void pool_stats(const pool_t *p, mem_obj_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->capacity = p->capacity;
    out->used = pool_in_use(p);
    out->high_water = MEM_LD(p->peak);
    out->exhausted = MEM_LD(p->exhausted);
    out->refused_puts = MEM_LD(p->double_puts) + MEM_LD(p->bad_puts);
}
