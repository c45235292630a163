/*
 * sanitize: one place for the memory-poisoning hooks that arenas and pools call, so that
 * AddressSanitizer (build with SAN=address) and valgrind memcheck both see memory that was
 * reset or returned as unusable. Without ASan the ASan hooks compile to nothing; the valgrind
 * client requests are a few no-op instructions when not running under valgrind, and are
 * compiled out with NDEBUG.
 */
#ifndef TICKCORE_MEM_SANITIZE_H
#define TICKCORE_MEM_SANITIZE_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif

#ifdef MEM_ASAN
#define MEM_ASAN_ON 1
#else
#define MEM_ASAN_ON 0
#endif

/* MEM_TSAN_ON: 1 in a ThreadSanitizer build (tests size their inputs by it). */
#if defined(__SANITIZE_THREAD__)
#define MEM_TSAN_ON 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEM_TSAN_ON 1
#endif
#endif
#ifndef MEM_TSAN_ON
#define MEM_TSAN_ON 0
#endif

#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define MEM_ASAN_REDZONE 16 /* poisoned gap after each arena allocation */
#else
#define MEM_ASAN_REDZONE 0
#endif

#ifndef NDEBUG
#include <valgrind/memcheck.h>
#endif

#include <stdbool.h>

/* Does a request of size bytes, plus the ASan gap after it, fit in room bytes? */
static inline bool mem_room_fits(size_t room, size_t size)
{
#ifdef MEM_ASAN
    return size <= room && room - size >= MEM_ASAN_REDZONE;
#else
    return size <= room;
#endif
}

/* Memory [p, p+n) may not be touched until unpoisoned. */
static inline void mem_poison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MEM_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
#ifndef NDEBUG
    (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

/* Memory [p, p+n) is handed out: usable, contents undefined. */
static inline void mem_unpoison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MEM_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#ifndef NDEBUG
    (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
}

/* Is the byte at p off limits for the tool watching this process: 1 yes, 0 no, -1 when neither
 * ASan nor valgrind is watching (so nothing can tell). For tests and debug assertions. */
static inline int mem_poisoned(const void *p)
{
#ifdef MEM_ASAN
    return __asan_address_is_poisoned(p);
#else
#ifndef NDEBUG
    if (RUNNING_ON_VALGRIND) {
        /* The check request reports what it finds as an error: silence it for the probe. */
        VALGRIND_DISABLE_ERROR_REPORTING;
        int bad = VALGRIND_CHECK_MEM_IS_ADDRESSABLE(p, 1) != 0;
        VALGRIND_ENABLE_ERROR_REPORTING;
        return bad;
    }
#endif
    (void)p;
    return -1;
#endif
}

#endif
