/*
 * ring: a bounded single-producer single-consumer queue of fixed-size slots.
 *
 * The slot array is allocated once by ring_init (mem_alloc_aligned, cache-line aligned, slot
 * stride = slot size rounded up to 8 bytes) and freed by ring_fini; nothing in between
 * allocates. Positions are 64-bit counters that only grow (slot index = position & (capacity
 * - 1), capacity a power of two), so full and empty are never ambiguous and never wrap in
 * practice. Exactly one producer thread and one consumer thread use a ring at a time; the
 * caller owns the ring_t and must place it on a 64-byte boundary (static, automatic, or
 * mem_alloc_aligned(..., MEM_CACHE_LINE)). The producer owns `tail` and the consumer owns
 * `head`, each alone on its cache line and published with a release store; each side keeps,
 * on a private line, its own position and a cached copy of the other side's position, and
 * reloads the shared one (acquire) only when the cached copy says there is not enough room
 * or data (Lamport's queue with FastForward-style caching). Zero copy: try_claim/commit and
 * peek/release hand out runs of contiguous slots (a run stops at the wrap point) by slot
 * index; try_push and try_pop are single-slot copying conveniences. Statistics are written
 * only by the side that owns them (relaxed load + store, no read-modify-write) and read by
 * mem_snapshot through the registry. Fast paths are static inline here; waiting and the
 * futex calls are cold functions in ring.c.
 *
 * Waiting. RING_WAIT_SPIN: poll with a CPU pause and sched_yield() every RING_SPIN_YIELD polls
 * (on a 2-core machine a pure spin against a descheduled peer burns its whole slice).
 * RING_WAIT_BLOCK: poll briefly, then sleep on a futex. Each direction has its own 32-bit event
 * word (`cons_event`: the consumer sleeps on it waiting for data; `prod_event`: the producer
 * sleeps on it waiting for room) and a flag saying that waiter is (about to be) asleep. The
 * protocol, a Dekker handshake with seq_cst fences so no wake-up is lost:
 *   waiter:  e = load(event); store(sleeping, 1); fence(seq_cst);
 *            re-check the peer's position (and `closed`); if progress: store(sleeping, 0), go on;
 *            else futex_wait(&event, e)   -- returns at once if event != e -- and loop.
 *   peer:    store(position, release) (commit/release); fence(seq_cst);
 *            if load(sleeping) && exchange(sleeping, 0): event += 1; futex_wake(&event).
 * The two fences are in one total order: either the peer sees sleeping == 1 and bumps the
 * event (so the waiter's futex_wait(e) fails or is woken), or the waiter's re-check sees the
 * new position and does not sleep. The wake syscall is made only when the peer has flagged
 * itself, and only once per sleep (the waker clears the flag). The price: in BLOCK mode each
 * commit and release executes a full fence, which waits for the position store to own its
 * (contended) line; batches amortize it, single-slot traffic pays it per item. In SPIN mode
 * commit and release are a plain release store. ring_close stores `closed` (release, after the
 * final tail) and always bumps and wakes the consumer's event.
 *
 * Statistics. high_water is the most slots found filled just after a commit. The producer's
 * cached head can only overstate the fill, so a commit reloads head (acquire; it also serves
 * as the head cache) only when the cached figure exceeds the mark, and the mark never reports
 * a fill that did not happen. (bench_ring shows no cost for this within its noise.) Waits are
 * counted, not polls: each ring_claim that finds the ring full adds one to `full_waits` (reported
 * as exhausted), each ring_wait_peek that finds it empty adds one to `empty_waits` (reported as
 * waits); try_* calls that fail count nothing.
 */
#ifndef TICKCORE_MEM_RING_H
#define TICKCORE_MEM_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mem/mem.h"

typedef enum ring_wait { RING_WAIT_SPIN, RING_WAIT_BLOCK } ring_wait_t;

/* Polls between sched_yield() calls while spinning. */
#define RING_SPIN_YIELD 1024

/* Memory orders of the sleep/wake handshake. ThreadSanitizer does not model
 * atomic_thread_fence (GCC rejects it under -fsanitize=thread with -Wtsan), so a TSan build
 * drops the two fences and makes the four accesses of the handshake (position store, position
 * reload, flag store, flag load) seq_cst instead: one total order over them gives the same
 * guarantee in the C11 model, and TSan understands it. */
#if defined(__SANITIZE_THREAD__)
#define RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RING_TSAN 1
#endif
#endif
#ifdef RING_TSAN
#define RING_ORDER_PUBLISH memory_order_seq_cst /* tail/head store */
#define RING_ORDER_OBSERVE memory_order_seq_cst /* reload of the peer's position */
#define RING_ORDER_FLAG    memory_order_seq_cst /* sleeping flag store and load */
#define RING_FENCE()       ((void)0)
#else
#define RING_ORDER_PUBLISH memory_order_release
#define RING_ORDER_OBSERVE memory_order_acquire
#define RING_ORDER_FLAG    memory_order_relaxed
#define RING_FENCE()       atomic_thread_fence(memory_order_seq_cst)
#endif

typedef struct ring {
    /* Read-only after init (shared by both sides, never written on the hot path). */
    unsigned char *slots;
    size_t slot_size; /* bytes copied by try_push/try_pop */
    size_t stride;    /* slot_size rounded up to 8 */
    size_t capacity;  /* slots, a power of two */
    size_t mask;      /* capacity - 1 */
    size_t bytes;     /* capacity * stride, what was allocated */
    mem_tag_t tag;
    ring_wait_t wait;

    /* Written by the producer, read by the consumer. */
    _Alignas(MEM_CACHE_LINE) _Atomic uint64_t tail;
    _Atomic uint32_t closed;

    /* Producer private (statistics also read by observers). */
    _Alignas(MEM_CACHE_LINE) uint64_t prod_tail; /* == tail, without touching the shared line */
    uint64_t prod_head_cache;                    /* last head seen by the producer */
    _Atomic uint64_t high_water;                 /* most filled slots seen at a commit */
    _Atomic uint64_t full_waits;                 /* ring_claim calls that had to wait */

    /* Written by the consumer, read by the producer. */
    _Alignas(MEM_CACHE_LINE) _Atomic uint64_t head;

    /* Consumer private (statistics also read by observers). */
    _Alignas(MEM_CACHE_LINE) uint64_t cons_head; /* == head */
    uint64_t cons_tail_cache;                    /* last tail seen by the consumer */
    _Atomic uint64_t empty_waits;                /* ring_wait_peek calls that had to wait */

    /* Consumer's sleep: it sets cons_sleeping, the producer bumps cons_event. */
    _Alignas(MEM_CACHE_LINE) _Atomic uint32_t cons_event;
    _Atomic uint32_t cons_sleeping;

    /* Producer's sleep: it sets prod_sleeping, the consumer bumps prod_event. */
    _Alignas(MEM_CACHE_LINE) _Atomic uint32_t prod_event;
    _Atomic uint32_t prod_sleeping;

    /* Registry node (its `next` is written by other registrations: keep it off the hot lines). */
    _Alignas(MEM_CACHE_LINE) mem_obj_t obj;
} ring_t;

/* Set up r (caller memory, 64-byte aligned) with capacity slots of slot_size bytes each,
 * allocated for tag, and register it as `name` (not copied: a literal or memory that outlives
 * the ring; NULL means "ring") for the memory report. Returns 0, -EINVAL if slot_size is 0,
 * capacity is not a power of two, or the size overflows, -ENOMEM if the allocation fails; on
 * error r is left zeroed (ring_fini is a no-op). Control path, before either side runs. */
int ring_init(ring_t *r, const char *name, mem_tag_t tag, size_t slot_size, size_t capacity,
              ring_wait_t wait);
/* Unregister and free the slots; r is left zeroed. A zeroed ring (never inited, failed init,
 * already finished) is a no-op. Control path, after both sides have stopped. */
void ring_fini(ring_t *r);

/* Slot idx (any position or index; it is masked). Either side, for slots it holds. */
static inline void *ring_slot(const ring_t *r, size_t idx)
{
    return r->slots + (idx & r->mask) * r->stride;
}

/* Cold paths, for the inline functions below only. */
void ring_wake_consumer(ring_t *r);
void ring_wake_producer(ring_t *r);
size_t ring_claim_wait(ring_t *r, size_t want, size_t *first);
size_t ring_peek_wait(ring_t *r, size_t max, size_t *first);

/* Producer: number of free slots (at most want, contiguous: the run stops at the wrap point)
 * starting at slot index *first; 0 if the ring is full or want is 0. Claiming publishes
 * nothing: the slots belong to the producer until ring_commit. Producer thread only. */
static inline size_t ring_try_claim(ring_t *r, size_t want, size_t *first)
{
    uint64_t tail = r->prod_tail;
    size_t idx = (size_t)tail & r->mask;
    size_t n = r->capacity - idx;
    if (want < n)
        n = want;
    *first = idx;
    uint64_t room = r->capacity - (tail - r->prod_head_cache);
    if (room < n) {
        r->prod_head_cache = atomic_load_explicit(&r->head, RING_ORDER_OBSERVE);
        room = r->capacity - (tail - r->prod_head_cache);
        if (room < n)
            n = (size_t)room;
    }
    return n;
}

/* Producer: like ring_try_claim, but waits (per the ring's wait mode) until at least one slot
 * is free; counts one full-wait when it has to wait. Returns 0 only if want is 0. Producer
 * thread only. */
static inline size_t ring_claim(ring_t *r, size_t want, size_t *first)
{
    size_t n = ring_try_claim(r, want, first);
    if (mem_likely(n > 0) || want == 0)
        return n;
    return ring_claim_wait(r, want, first);
}

/* Producer: publish the first n slots claimed (n <= what the last claim returned), waking the
 * consumer if it sleeps. Producer thread only. */
static inline void ring_commit(ring_t *r, size_t n)
{
    uint64_t tail = r->prod_tail + n;
    r->prod_tail = tail;
    atomic_store_explicit(&r->tail, tail, RING_ORDER_PUBLISH);
    /* The cached head can only overstate the fill: reload it only when that overstatement
     * would raise the high-water mark (the reload doubles as a head-cache refresh). */
    uint64_t hw = atomic_load_explicit(&r->high_water, memory_order_relaxed);
    if (tail - r->prod_head_cache > hw) {
        r->prod_head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t used = tail - r->prod_head_cache;
        if (used > hw)
            atomic_store_explicit(&r->high_water, used, memory_order_relaxed);
    }
    if (r->wait == RING_WAIT_BLOCK) {
        RING_FENCE();
        if (mem_unlikely(atomic_load_explicit(&r->cons_sleeping, RING_ORDER_FLAG)))
            ring_wake_consumer(r);
    }
}

/* Producer: no more items will be committed. The consumer drains what is there, then
 * ring_wait_peek returns 0. Producer thread only (or any thread once the producer stopped). */
void ring_close(ring_t *r);

/* Consumer: number of filled slots (at most max, contiguous) starting at slot index *first;
 * 0 if the ring is empty or max is 0. The slots belong to the consumer until ring_release.
 * Consumer thread only. */
static inline size_t ring_peek(ring_t *r, size_t max, size_t *first)
{
    uint64_t head = r->cons_head;
    size_t idx = (size_t)head & r->mask;
    size_t n = r->capacity - idx;
    if (max < n)
        n = max;
    *first = idx;
    uint64_t avail = r->cons_tail_cache - head;
    if (avail < n) {
        r->cons_tail_cache = atomic_load_explicit(&r->tail, RING_ORDER_OBSERVE);
        avail = r->cons_tail_cache - head;
        if (avail < n)
            n = (size_t)avail;
    }
    return n;
}

/* Consumer: like ring_peek, but waits (per the ring's wait mode) until at least one slot is
 * filled; counts one empty-wait when it has to wait. Returns 0 only when the producer has
 * closed the ring and it is drained (or max is 0). Consumer thread only. */
static inline size_t ring_wait_peek(ring_t *r, size_t max, size_t *first)
{
    size_t n = ring_peek(r, max, first);
    if (mem_likely(n > 0) || max == 0)
        return n;
    return ring_peek_wait(r, max, first);
}

/* Consumer: hand the first n peeked slots back to the producer, waking it if it sleeps.
 * Consumer thread only. */
static inline void ring_release(ring_t *r, size_t n)
{
    uint64_t head = r->cons_head + n;
    r->cons_head = head;
    atomic_store_explicit(&r->head, head, RING_ORDER_PUBLISH);
    if (r->wait == RING_WAIT_BLOCK) {
        RING_FENCE();
        if (mem_unlikely(atomic_load_explicit(&r->prod_sleeping, RING_ORDER_FLAG)))
            ring_wake_producer(r);
    }
}

/* Producer: copy slot_size bytes from item into the next slot and publish it. Returns false
 * (nothing copied, nothing counted) if the ring is full. Producer thread only. */
static inline bool ring_try_push(ring_t *r, const void *item)
{
    size_t idx;
    if (!ring_try_claim(r, 1, &idx))
        return false;
    memcpy(ring_slot(r, idx), item, r->slot_size);
    ring_commit(r, 1);
    return true;
}

/* Consumer: copy the oldest slot's slot_size bytes into item and release it. Returns false
 * (item untouched) if the ring is empty. Consumer thread only. */
static inline bool ring_try_pop(ring_t *r, void *item)
{
    size_t idx;
    if (!ring_peek(r, 1, &idx))
        return false;
    memcpy(item, ring_slot(r, idx), r->slot_size);
    ring_release(r, 1);
    return true;
}

/* Filled slots right now, approximate while both sides run (0..capacity). Any thread. */
static inline size_t ring_count(const ring_t *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t n = tail - head;
    return n > r->capacity ? r->capacity : (size_t)n;
}

/* ---- signal: sleep until a condition holds ----------------------------------------------
 * For waits that are not one ring's full or empty: a reader waiting for a batch to come back on
 * any of K rings, the cross-section thread waiting for the K parts of a row, a worker waiting
 * for a row slot. The waiter spins briefly on ready(ctx), then sleeps on the futex word `seq`;
 * whoever makes the condition true (a release store, or a ring commit) calls ring_signal_notify,
 * which costs a fence and a load unless someone sleeps. Same handshake as the rings: waiter
 * `sleepers += 1; fence; ready()?` against notifier `store; fence; sleepers?`, so no wake-up is
 * lost; several waiters may sleep at once (all are woken, each re-checks). The stores that make
 * the condition true must be RING_ORDER_PUBLISH or stronger and ready() must load with
 * RING_ORDER_OBSERVE or stronger (ThreadSanitizer builds have no fence, see above). */
typedef struct ring_signal {
    _Alignas(MEM_CACHE_LINE) _Atomic uint32_t seq;
    _Atomic uint32_t sleepers;
} ring_signal_t;

typedef bool ring_ready_fn(void *ctx);

/* Waiter: return once ready(ctx) returned true (it may have side effects: it is called until it
 * says true, on the waiting thread). Returns the times it slept (0: the condition came during
 * the spin). Any thread; allocates nothing. */
unsigned ring_signal_wait(ring_signal_t *s, ring_ready_fn *ready, void *ctx);
void ring_signal_wake(ring_signal_t *s);

/* Notifier: after making a waiter's condition true. Any thread. */
static inline void ring_signal_notify(ring_signal_t *s)
{
    RING_FENCE();
    if (mem_unlikely(atomic_load_explicit(&s->sleepers, RING_ORDER_FLAG) != 0))
        ring_signal_wake(s);
}

#endif
