/*
 * clock: the process's time sources in nanoseconds, one copy for the tree. clock_mono_ns is
 * CLOCK_MONOTONIC (intervals, deadlines, rates: never jumps), clock_wall_ns is CLOCK_REALTIME
 * (timestamps meant for people and other machines), clock_thread_cpu_ns is the calling thread's
 * CPU time (busy time of a loop, benchmarks on a shared machine). These clocks cannot fail on
 * Linux with a valid clock id, so there is no error path; a vDSO call each, no system call, no
 * allocation, any thread.
 */
#ifndef TICKCORE_BASE_CLOCK_H
#define TICKCORE_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_S 1000000000ull

static inline uint64_t clock_ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * CLOCK_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ns(void)
{
    return clock_ns_of(CLOCK_MONOTONIC);
}

static inline uint64_t clock_wall_ns(void)
{
    return clock_ns_of(CLOCK_REALTIME);
}

static inline uint64_t clock_thread_cpu_ns(void)
{
    return clock_ns_of(CLOCK_THREAD_CPUTIME_ID);
}

/* Seconds as a double, for reports and benchmarks. */
static inline double clock_mono_s(void)
{
    return (double)clock_mono_ns() * 1e-9;
}

static inline double clock_thread_cpu_s(void)
{
    return (double)clock_thread_cpu_ns() * 1e-9;
}

#endif
