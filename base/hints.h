/*
 * hints: the compiler hints of the fast path / slow path shape (STYLE.md, 7), one spelling for
 * the tree. likely/unlikely mark the branch the hot loop takes; HINT_COLD goes on the rare slow
 * path a hot inline function calls (never inlined, laid out away from the hot code);
 * HINT_NOINLINE keeps a function out of line (to keep it out of a caller's loop or visible in
 * a profile); HINT_INLINE forces a small helper into its caller; prefetch_read/prefetch_write
 * ask for the cache line at p ahead of a dependent access. GCC and clang; plain C elsewhere.
 */
#ifndef TICKCORE_BASE_HINTS_H
#define TICKCORE_BASE_HINTS_H

#if defined(__GNUC__)
#define likely(x)         __builtin_expect(!!(x), 1)
#define unlikely(x)       __builtin_expect(!!(x), 0)
#define HINT_COLD         __attribute__((cold, noinline))
#define HINT_NOINLINE     __attribute__((noinline))
#define HINT_INLINE       inline __attribute__((always_inline))
#define prefetch_read(p)  __builtin_prefetch((p), 0)
#define prefetch_write(p) __builtin_prefetch((p), 1)
#else
#define likely(x)   (x)
#define unlikely(x) (x)
#define HINT_COLD
#define HINT_NOINLINE
#define HINT_INLINE       inline
#define prefetch_read(p)  ((void)(p))
#define prefetch_write(p) ((void)(p))
#endif

#endif
