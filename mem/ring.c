/*
 * ring: set-up, tear-down and the cold paths of the SPSC ring (see ring.h for the layout and
 * the sleep/wake protocol). ring_init makes the only allocation a ring ever does, the slot
 * array, for the caller's tag; ring_fini returns it. The waits here run on the thread that
 * called ring_claim (producer) or ring_wait_peek (consumer) and touch only that side's fields
 * plus the peer's event word when waking it; nothing here allocates or takes a lock. Futexes
 * are private (the ring is never shared across processes) and waited on without a timeout:
 * the protocol guarantees a wake for every state change the waiter depends on.
 */
#include "mem/ring.h"

#include "base/hints.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Polls before a BLOCK-mode waiter goes to sleep (a few microseconds): long enough to ride out
 * a peer that is mid-batch on the other core, short enough not to hold a core the peer may
 * need. A build may override it with -D. */
#ifndef RING_SPIN_BEFORE_SLEEP
#define RING_SPIN_BEFORE_SLEEP 256
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expect)
{
    /* EAGAIN (word changed) and EINTR both just send the caller round its loop again. */
    (void)syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)(void *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL,
                  0);
}

static void bump_and_wake(_Atomic uint32_t *event)
{
    atomic_fetch_add_explicit(event, 1, memory_order_seq_cst);
    futex_wake(event);
}

static void ring_stats_fn(const void *obj, mem_obj_stats_t *out)
{
    const ring_t *r = obj;
    memset(out, 0, sizeof *out);
    out->capacity = r->capacity;
    out->used = ring_count(r);
    out->high_water = atomic_load_explicit(&r->high_water, memory_order_relaxed);
    out->exhausted = atomic_load_explicit(&r->full_waits, memory_order_relaxed);
    out->waits = atomic_load_explicit(&r->empty_waits, memory_order_relaxed);
}

int ring_init(ring_t *r, const char *name, mem_tag_t tag, size_t slot_size, size_t capacity,
              ring_wait_t wait)
{
    memset(r, 0, sizeof *r);
    if (slot_size == 0 || capacity == 0 || (capacity & (capacity - 1)) != 0)
        return -EINVAL;
    if (wait != RING_WAIT_SPIN && wait != RING_WAIT_BLOCK)
        return -EINVAL;
    if (slot_size > SIZE_MAX - 7)
        return -EINVAL;
    size_t stride = (slot_size + 7) & ~(size_t)7;
    if (capacity > SIZE_MAX / stride)
        return -EINVAL;
    size_t bytes = capacity * stride;
    unsigned char *slots = mem_alloc_prefault(tag, bytes, MEM_CACHE_LINE);
    if (!slots)
        return -ENOMEM;
    r->slots = slots;
    r->slot_size = slot_size;
    r->stride = stride;
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->bytes = bytes;
    r->tag = tag;
    r->wait = wait;
    mem_obj_register(&r->obj, MEM_OBJ_RING, tag, name ? name : "ring", r, ring_stats_fn);
    return 0;
}

void ring_fini(ring_t *r)
{
    if (!r->slots)
        return;
    mem_obj_unregister(&r->obj);
    mem_free(r->tag, r->slots, r->bytes);
    memset(r, 0, sizeof *r);
}

void ring_close(ring_t *r)
{
    atomic_store_explicit(&r->closed, 1, memory_order_release);
    if (r->wait == RING_WAIT_BLOCK)
        bump_and_wake(&r->cons_event);
}

/* The first waker clears the flag, so a peer that takes a while to wake up costs one
 * syscall, not one per commit or release until it runs. */
HINT_COLD void ring_wake_consumer(ring_t *r)
{
    if (atomic_exchange_explicit(&r->cons_sleeping, 0, memory_order_relaxed))
        bump_and_wake(&r->cons_event);
}

HINT_COLD void ring_wake_producer(ring_t *r)
{
    if (atomic_exchange_explicit(&r->prod_sleeping, 0, memory_order_relaxed))
        bump_and_wake(&r->prod_event);
}

static void count_wait(_Atomic uint64_t *ctr)
{
    atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Producer, ring full. */
HINT_COLD size_t ring_claim_wait(ring_t *r, size_t want, size_t *first)
{
    size_t n;
    count_wait(&r->full_waits);
    if (r->wait == RING_WAIT_SPIN) {
        for (unsigned spins = 1;; spins++) {
            cpu_relax();
            if ((n = ring_try_claim(r, want, first)) > 0)
                return n;
            if (spins % RING_SPIN_YIELD == 0)
                sched_yield();
        }
    }
    for (unsigned spins = 0; spins < RING_SPIN_BEFORE_SLEEP; spins++) {
        cpu_relax();
        if ((n = ring_try_claim(r, want, first)) > 0)
            return n;
    }
    for (;;) {
        uint32_t ev = atomic_load_explicit(&r->prod_event, memory_order_acquire);
        atomic_store_explicit(&r->prod_sleeping, 1, RING_ORDER_FLAG);
        RING_FENCE();
        /* The cached head says full, so this reloads head. */
        if ((n = ring_try_claim(r, want, first)) > 0)
            break;
        futex_wait(&r->prod_event, ev);
    }
    atomic_store_explicit(&r->prod_sleeping, 0, memory_order_relaxed);
    return n;
}

/* Consumer, ring empty: 0 only once closed and drained. `closed` is stored after the final
 * tail, so seeing it (acquire) and then peeking once more finds every committed slot. */
static size_t peek_or_closed(ring_t *r, size_t max, size_t *first, bool *closed)
{
    size_t n = ring_peek(r, max, first);
    if (n > 0)
        return n;
    if (atomic_load_explicit(&r->closed, memory_order_acquire)) {
        *closed = true;
        return ring_peek(r, max, first);
    }
    return 0;
}

HINT_COLD size_t ring_peek_wait(ring_t *r, size_t max, size_t *first)
{
    size_t n;
    bool closed = false;
    if ((n = peek_or_closed(r, max, first, &closed)) > 0 || closed)
        return n;
    count_wait(&r->empty_waits);
    if (r->wait == RING_WAIT_SPIN) {
        for (unsigned spins = 1;; spins++) {
            cpu_relax();
            if ((n = peek_or_closed(r, max, first, &closed)) > 0 || closed)
                return n;
            if (spins % RING_SPIN_YIELD == 0)
                sched_yield();
        }
    }
    for (unsigned spins = 0; spins < RING_SPIN_BEFORE_SLEEP; spins++) {
        cpu_relax();
        if ((n = peek_or_closed(r, max, first, &closed)) > 0 || closed)
            return n;
    }
    for (;;) {
        uint32_t ev = atomic_load_explicit(&r->cons_event, memory_order_acquire);
        atomic_store_explicit(&r->cons_sleeping, 1, RING_ORDER_FLAG);
        RING_FENCE();
        if ((n = peek_or_closed(r, max, first, &closed)) > 0 || closed)
            break;
        futex_wait(&r->cons_event, ev);
    }
    atomic_store_explicit(&r->cons_sleeping, 0, memory_order_relaxed);
    return n;
}

/* ---- signal ------------------------------------------------------------------------------- */

HINT_COLD void ring_signal_wake(ring_signal_t *s)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_seq_cst);
    futex_wake_all(&s->seq);
}

HINT_COLD unsigned ring_signal_wait(ring_signal_t *s, ring_ready_fn *ready, void *ctx)
{
    for (unsigned spins = 0; spins < RING_SPIN_BEFORE_SLEEP; spins++) {
        if (ready(ctx))
            return 0;
        cpu_relax();
    }
    unsigned slept = 0;
    for (;;) {
        uint32_t ev = atomic_load_explicit(&s->seq, memory_order_acquire);
        atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
        RING_FENCE();
        if (ready(ctx)) {
            atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
            return slept;
        }
        futex_wait(&s->seq, ev);
        slept++;
        atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
    }
}
