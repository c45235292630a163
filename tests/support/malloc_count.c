/*
 * malloc_count: see malloc_count.h. The interposed libc functions are defined in the test
 * executable, so the dynamic linker binds every library's malloc calls to them; they forward
 * to glibc's __libc_* functions, which never call back into malloc, so there is no recursion
 * and no dlsym at start-up. Under valgrind the __libc_* entry points are themselves replaced
 * by valgrind's allocator, so memcheck still sees every block.
 */
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <valgrind/valgrind.h>

static _Atomic uint64_t c_libc_allocs, c_libc_frees, c_mi_allocs, c_mi_frees;

#define BUMP(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MALLOC_COUNT_NO_LIBC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define MALLOC_COUNT_NO_LIBC 1
#endif
#endif

#ifndef MALLOC_COUNT_NO_LIBC
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);
void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void free(void *p);
int posix_memalign(void **out, size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n);
void *memalign(size_t align, size_t n);
void *valloc(size_t n);

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p)
        BUMP(c_libc_allocs);
    return p;
}

void *calloc(size_t n, size_t m)
{
    void *p = __libc_calloc(n, m);
    if (p)
        BUMP(c_libc_allocs);
    return p;
}

void *realloc(void *p, size_t n)
{
    void *q = __libc_realloc(p, n);
    if (q)
        BUMP(c_libc_allocs);
    return q;
}

void free(void *p)
{
    if (p)
        BUMP(c_libc_frees);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    BUMP(c_libc_allocs);
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (p)
        BUMP(c_libc_allocs);
    return p;
}

void *memalign(size_t align, size_t n)
{
    return aligned_alloc(align, n);
}

void *valloc(size_t n)
{
    return aligned_alloc(4096, n);
}
#endif

bool malloc_count_libc_seen(void)
{
#ifdef MALLOC_COUNT_NO_LIBC
    return false;
#else
    return !RUNNING_ON_VALGRIND; /* valgrind replaces malloc in the executable too */
#endif
}

/* mimalloc, through -Wl,--wrap. */
void *__real_mi_malloc(size_t);
void *__real_mi_zalloc(size_t);
void *__real_mi_calloc(size_t, size_t);
void *__real_mi_realloc(void *, size_t);
void *__real_mi_malloc_aligned(size_t, size_t);
void *__real_mi_zalloc_aligned(size_t, size_t);
void __real_mi_free(void *);
void *__wrap_mi_malloc(size_t a);
void *__wrap_mi_zalloc(size_t a);
void *__wrap_mi_calloc(size_t a, size_t b);
void *__wrap_mi_realloc(void *a, size_t b);
void *__wrap_mi_malloc_aligned(size_t a, size_t b);
void *__wrap_mi_zalloc_aligned(size_t a, size_t b);
void __wrap_mi_free(void *p);

#define MI_WRAP1(name, T1)                                                                         \
    void *__wrap_##name(T1 a)                                                                      \
    {                                                                                              \
        void *p = __real_##name(a);                                                                \
        if (p)                                                                                     \
            BUMP(c_mi_allocs);                                                                     \
        return p;                                                                                  \
    }
#define MI_WRAP2(name, T1, T2)                                                                     \
    void *__wrap_##name(T1 a, T2 b)                                                                \
    {                                                                                              \
        void *p = __real_##name(a, b);                                                             \
        if (p)                                                                                     \
            BUMP(c_mi_allocs);                                                                     \
        return p;                                                                                  \
    }
MI_WRAP1(mi_malloc, size_t)
MI_WRAP1(mi_zalloc, size_t)
MI_WRAP2(mi_calloc, size_t, size_t)
MI_WRAP2(mi_realloc, void *, size_t)
MI_WRAP2(mi_malloc_aligned, size_t, size_t)
MI_WRAP2(mi_zalloc_aligned, size_t, size_t)

void __wrap_mi_free(void *p)
{
    if (p)
        BUMP(c_mi_frees);
    __real_mi_free(p);
}

void malloc_count_get(malloc_count_t *out)
{
    out->libc_allocs = atomic_load(&c_libc_allocs);
    out->libc_frees = atomic_load(&c_libc_frees);
    out->mi_allocs = atomic_load(&c_mi_allocs);
    out->mi_frees = atomic_load(&c_mi_frees);
}

uint64_t malloc_count_allocs_since(const malloc_count_t *before)
{
    malloc_count_t now;
    malloc_count_get(&now);
    return (now.libc_allocs - before->libc_allocs) + (now.mi_allocs - before->mi_allocs);
}
