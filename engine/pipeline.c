/*
 * pipeline: see pipeline.h. Thread roles: the reader (the caller) owns the free-batch stack, the
 * routing state (owner table, counts, clock mirror, each batch's idx/off/marks until it is
 * published), the producing ends of the `in` rings and the consuming ends of the `back` rings;
 * worker i owns its shard, the consuming end of its `in` ring and the producing end of its `back`
 * ring (and, for worker 0, of the `bars` ring); the cross-section thread owns the xsection and
 * consumes `bars`. Row slots are handed between workers and the cross-section thread by their
 * atomics (seq_cst: they pair with the signals' sleep/wake handshake).
 */
#include "engine/pipeline.h"

#include "base/clock.h"
#include "mem/mem.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static size_t pow2_at_least(size_t n)
{
    size_t c = 2;
    while (c < n)
        c <<= 1;
    return c;
}

static void pin(unsigned cpu)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu <= 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % (unsigned)ncpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* ---- bars: worker side ------------------------------------------------------------------- */

typedef struct slot_claim {
    pipe_rowslot_t *slot;
    uint64_t k1;
} slot_claim_t;

/* Take the row slot for bar k1 - 1 (or find it taken by a peer for the same bar). */
static bool slot_claim(void *ctx)
{
    slot_claim_t *c = ctx;
    uint64_t cur = atomic_load_explicit(&c->slot->k1, memory_order_seq_cst);
    if (cur == c->k1)
        return true;
    return cur == 0 && atomic_compare_exchange_strong_explicit(
                           &c->slot->k1, &cur, c->k1, memory_order_seq_cst, memory_order_seq_cst);
}

static void on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    pipe_worker_t *w = ctx;
    pipeline_t *p = w->p;
    pipe_rowslot_t *slot = &p->rows[k % PIPE_ROW_SLOTS];
    slot_claim_t c = {slot, k + 1};
    if (!slot_claim(&c)) {
        /* the slot still holds an older bar: the cross-section is behind; sleep until it frees
         * the slot (counted apart from the worker's busy time) */
        uint64_t t0 = clock_mono_ns();
        w->row_waits++;
        ring_signal_wait(&p->slot_sig, slot_claim, &c);
        w->row_wait_ns += clock_mono_ns() - t0;
    }
    bool traded = false;
    if (p->k == 1)
        xsection_fill_row(st, k, p->xs.row_kind, 1, 0, slot->row, p->m, &traded);
    else
        xsection_fill_row_owned(st, k, p->xs.row_kind, p->owner, w->id, slot->row, p->m, &traded);
    if (traded)
        atomic_store_explicit(&slot->traded, 1, memory_order_relaxed);
    atomic_store_explicit(&slot->session, st->sessions, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&slot->done, 1, memory_order_seq_cst) + 1 == p->k)
        ring_signal_notify(&p->xs_sig); /* the last part: the row is complete */
    if (w->id == 0) {
        size_t first;
        ring_claim(&w->bars, 1, &first);
        *(uint64_t *)ring_slot(&w->bars, first) = k;
        ring_commit(&w->bars, 1);
    }
}

/* ---- threads ------------------------------------------------------------------------------ */

static void *worker_main(void *arg)
{
    pipe_worker_t *w = arg;
    pipeline_t *p = w->p;
    if (p->cfg.pin_cpus)
        pin(w->id + 1);
    uint64_t t0 = clock_mono_ns(), busy = 0;
    size_t first, n;
    while ((n = ring_wait_peek(&w->in, 16, &first)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uint32_t bi = *(uint32_t *)ring_slot(&w->in, first + i);
            pipe_batch_t *b = &p->batches[bi];
            uint64_t t1 = clock_mono_ns();
            size_t mine = b->n;
            const uint32_t *own = NULL;
            if (p->k == 1) {
                shard_apply(&w->shard, b->ev, b->n);
            } else {
                uint32_t lo = b->off[w->id];
                mine = b->off[w->id + 1] - lo;
                own = b->idx + lo;
                shard_apply_routed(&w->shard, b->ev, own, mine, b->marks, b->nmarks);
            }
            w->owned += mine;
            if (b->close_bars) /* end of input: every worker closes the same open bar */
                stats_close_open(&w->shard.stats);
            if (b->force && w->id == 0) {
                /* an idle tick (or the end of input): wake the cross-section thread, so rows
                 * that came faster than xs_interval_ns are computed now, not at the next bar */
                size_t f;
                ring_claim(&w->bars, 1, &f);
                *(uint64_t *)ring_slot(&w->bars, f) = PIPE_XS_TICK;
                ring_commit(&w->bars, 1);
            }
            uint64_t t2 = clock_mono_ns();
            if (p->on_batch)
                p->on_batch(p->hook_ctx, w->id, &w->shard, b->ev, own, mine,
                            p->k == 1 ? NULL : p->owner, b->force);
            busy += t2 - t1;
            /* every event of the batch is applied by now: one sample per event applied */
            uint64_t lat = t2 - b->t_publish;
            unsigned hi = histo_index(lat);
            w->latency.count[hi] += mine;
            w->latency.n += mine;
            w->latency.sum += lat * mine;
            if (lat > w->latency.max)
                w->latency.max = lat;
            w->batches++;
            w->events += b->n;
            if (p->worker_delay_ns) {
                struct timespec d = {0, (long)p->worker_delay_ns};
                nanosleep(&d, NULL);
            }
            if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
                size_t f;
                ring_claim(&w->back, 1, &f);
                *(uint32_t *)ring_slot(&w->back, f) = bi;
                ring_commit(&w->back, 1);
                ring_signal_notify(&p->back_sig);
            }
        }
        ring_release(&w->in, n);
    }
    if (w->id == 0)
        ring_close(&w->bars);
    /* row waits happened inside shard_apply: they are waiting, not work */
    w->busy = (double)(busy > w->row_wait_ns ? busy - w->row_wait_ns : 0) * 1e-9;
    w->row_wait = (double)w->row_wait_ns * 1e-9;
    w->wall = (double)(clock_mono_ns() - t0) * 1e-9;
    w->cpu = clock_thread_cpu_s();
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        w->cpu_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
        w->csw_vol = (uint64_t)ru.ru_nvcsw;
        w->csw_invol = (uint64_t)ru.ru_nivcsw;
    }
    return NULL;
}

typedef struct parts_wait {
    pipe_rowslot_t *slot;
    unsigned k;
} parts_wait_t;

static bool parts_done(void *ctx)
{
    parts_wait_t *c = ctx;
    return atomic_load_explicit(&c->slot->done, memory_order_seq_cst) >= c->k;
}

static void *xsection_main(void *arg)
{
    pipeline_t *p = arg;
    ring_t *bars = &p->w[0].bars;
    uint64_t t0 = clock_mono_ns(), busy = 0, wait = 0, last_compute = t0, rows_computed = 0;
    size_t first, n;
    while ((n = ring_wait_peek(bars, 16, &first)) > 0) {
        bool idle = false;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = *(uint64_t *)ring_slot(bars, first + i);
            if (k == PIPE_XS_TICK) {
                idle = true;
                continue;
            }
            pipe_rowslot_t *slot = &p->rows[k % PIPE_ROW_SLOTS];
            parts_wait_t c = {slot, p->k};
            if (!parts_done(&c)) { /* a worker has not closed this bar yet: sleep until it has */
                uint64_t tw = clock_mono_ns();
                p->xs_waits++;
                ring_signal_wait(&p->xs_sig, parts_done, &c);
                wait += clock_mono_ns() - tw;
            }
            uint64_t t1 = clock_mono_ns();
            bool traded = atomic_load_explicit(&slot->traded, memory_order_relaxed) != 0;
            if (p->on_row)
                p->on_row(p->hook_ctx, atomic_load_explicit(&slot->session, memory_order_relaxed),
                          k, slot->row, traded);
            if (!p->xs_rows_only)
                xsection_push(&p->xs, k, slot->row, traded);
            busy += clock_mono_ns() - t1;
            atomic_store_explicit(&slot->traded, 0, memory_order_relaxed);
            atomic_store_explicit(&slot->done, 0, memory_order_relaxed);
            atomic_store_explicit(&slot->k1, 0, memory_order_seq_cst);
            ring_signal_notify(&p->slot_sig);
        }
        ring_release(bars, n);
        ring_signal_notify(&p->sync_sig); /* pipeline_sync may wait for the rows */
        /* rows_computed is compared for inequality: a restart makes rows smaller */
        if (p->on_xs && p->xs_interval_ns && p->xs.rows != rows_computed) {
            uint64_t t = clock_mono_ns();
            /* at most every xs_interval_ns while bars stream in; at once when the feed idles
             * (without that, a day fed faster than the interval was never computed: #16) */
            if (idle || t - last_compute >= p->xs_interval_ns) {
                if (xsection_compute(&p->xs) == 0) {
                    p->on_xs(p->hook_ctx, &p->xs);
                    p->xs_computes++;
                }
                rows_computed = p->xs.rows;
                last_compute = clock_mono_ns();
                busy += last_compute - t;
            }
        }
    }
    p->xs_busy = (double)busy * 1e-9;
    p->xs_wait = (double)wait * 1e-9;
    p->xs_wall = (double)(clock_mono_ns() - t0) * 1e-9;
    p->xs_cpu = clock_thread_cpu_s();
    return NULL;
}

/* ---- routing (reader thread) -------------------------------------------------------------- */

/* The stats clock's bar end after an advance to ts (analytics/stats.c: set_open). */
static inline uint64_t bar_end(uint64_t ts, uint64_t bn)
{
    uint64_t k = ts / bn;
    return k >= UINT64_MAX / bn - 1 ? UINT64_MAX : (k + 1) * bn;
}

/* Sort b's positions by shard (counting sort) and list the clock marks. */
static void route(pipeline_t *p, pipe_batch_t *b)
{
    uint32_t cnt[PIPE_MAX_WORKERS];
    unsigned k = p->k;
    memset(cnt, 0, k * sizeof cnt[0]);
    const uint8_t *owner = p->owner;
    uint8_t *sid = p->sid;
    uint32_t *lc = p->loc_count, *marks = b->marks, nm = 0;
    uint64_t end = p->clk_end, bn = p->bar_ns, snap = p->snap_end, sn = p->snap_ns;
    bool origin = p->clk_origin;
    const ev_t *ev = b->ev;
    for (uint32_t i = 0; i < b->n; i++) {
        uint16_t loc = ev[i].locate;
        uint8_t sh = owner[loc];
        sid[i] = sh;
        cnt[sh]++;
        lc[loc]++;
        uint64_t ts = ev[i].ts;
        if (unlikely(ts >= end || !origin || ts >= snap)) {
            /* this event moves every shard's clock (a bar end), or crosses a book snapshot
             * boundary (--book-out): every worker must see it */
            marks[nm++] = i;
            end = bar_end(ts, bn);
            origin = true;
            if (sn)
                snap = bar_end(ts, sn);
        }
    }
    p->clk_end = end;
    p->snap_end = snap;
    p->clk_origin = origin;
    b->nmarks = nm;
    p->marks_total += nm;
    uint32_t pos[PIPE_MAX_WORKERS], o = 0;
    for (unsigned s = 0; s < k; s++) {
        b->off[s] = o;
        pos[s] = o;
        o += cnt[s];
        p->shard_load[s] += cnt[s];
    }
    b->off[k] = o;
    uint32_t *idx = b->idx;
    for (uint32_t i = 0; i < b->n; i++)
        idx[pos[sid[i]]++] = i;
}

/* In-place heapsort of n keys, ascending (no allocation: glibc's qsort may call malloc). */
static void sift(uint64_t *a, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[i] >= a[c])
            return;
        uint64_t t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void heapsort_u64(uint64_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (size_t e = n; e-- > 1;) {
        uint64_t t = a[0];
        a[0] = a[e];
        a[e] = t;
        sift(a, 0, e);
    }
}

void pipeline_balance(pipeline_t *p, const uint32_t *counts)
{
    unsigned k = p->k;
    if (k == 1 || !p->sort_keys)
        return;
    /* key: count, then the lower locate first among equal counts (deterministic) */
    size_t n = 0;
    for (uint32_t loc = 0; loc < 65536; loc++) {
        if (counts[loc])
            p->sort_keys[n++] = (uint64_t)counts[loc] << 16 | (0xFFFFu - loc);
        else
            p->owner[loc] = (uint8_t)(loc % k);
    }
    heapsort_u64(p->sort_keys, n);
    uint64_t load[PIPE_MAX_WORKERS] = {0};
    for (size_t i = n; i-- > 0;) {
        uint64_t key = p->sort_keys[i];
        unsigned best = 0;
        for (unsigned s = 1; s < k; s++)
            if (load[s] < load[best])
                best = s;
        p->owner[0xFFFFu - (key & 0xFFFFu)] = (uint8_t)best;
        load[best] += key >> 16;
    }
    p->rebalances++;
}

/* ---- set-up and teardown ------------------------------------------------------------------ */

int pipeline_init(pipeline_t *p, const config_t *cfg, const symtab_t *symbols)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    unsigned k = cfg->workers;
    if (k == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        k = ncpu > 1 ? (unsigned)(ncpu - 1) : 1;
    }
    if (k > PIPE_MAX_WORKERS)
        k = PIPE_MAX_WORKERS;
    p->k = k;
    p->nbatches = cfg->batches;
    p->batch_cap = cfg->batch_events;
    p->m = cfg->matrix_symbols;
    p->bar_ns = cfg->bar_interval_ns ? cfg->bar_interval_ns : 1;
    p->snap_ns = 0;
    p->snap_end = UINT64_MAX; /* no book snapshots until pipeline_set_export asks */
    size_t nev = (size_t)p->nbatches * p->batch_cap;
    p->batches = mem_calloc(MEM_TAG_ENGINE, p->nbatches, sizeof *p->batches);
    p->events = mem_alloc_prefault(MEM_TAG_ENGINE, nev * sizeof(ev_t), 64);
    p->free_stack = mem_calloc(MEM_TAG_ENGINE, p->nbatches, sizeof *p->free_stack);
    p->owner = mem_alloc(MEM_TAG_ENGINE, 65536);
    p->row_mem = mem_calloc(MEM_TAG_ENGINE, PIPE_ROW_SLOTS * p->m, sizeof(double));
    p->w = mem_zalloc_aligned(MEM_TAG_ENGINE, k * sizeof *p->w, MEM_CACHE_LINE);
    if (!p->batches || !p->events || !p->free_stack || !p->owner || !p->row_mem || !p->w) {
        pipeline_fini(p);
        return -ENOMEM;
    }
    if (k > 1) {
        /* idx and marks of every batch, off of every batch, the reader's scratch and counts */
        p->route_mem = mem_alloc_prefault(MEM_TAG_ENGINE, 2 * nev * sizeof(uint32_t), 64);
        p->off_mem = mem_zalloc(MEM_TAG_ENGINE, (size_t)p->nbatches * (k + 1) * sizeof(uint32_t));
        p->sid = mem_alloc_prefault(MEM_TAG_ENGINE, p->batch_cap ? p->batch_cap : 1, 64);
        p->loc_count = mem_calloc(MEM_TAG_ENGINE, 65536, sizeof(uint32_t));
        p->sort_keys = mem_alloc_prefault(MEM_TAG_ENGINE, 65536 * sizeof(uint64_t), 64);
        if (!p->route_mem || !p->off_mem || !p->sid || !p->loc_count || !p->sort_keys) {
            pipeline_fini(p);
            return -ENOMEM;
        }
    }
    for (uint32_t i = 0; i < p->nbatches; i++) {
        pipe_batch_t *b = &p->batches[i];
        b->ev = p->events + (size_t)i * p->batch_cap;
        b->index = i;
        if (k > 1) {
            b->idx = p->route_mem + (size_t)i * 2 * p->batch_cap;
            b->marks = b->idx + p->batch_cap;
            b->off = p->off_mem + (size_t)i * (k + 1);
        }
        p->free_stack[i] = p->nbatches - 1 - i;
    }
    p->nfree = p->nbatches;
    for (uint32_t loc = 0; loc < 65536; loc++)
        p->owner[loc] = (uint8_t)(loc % k);
    for (int i = 0; i < PIPE_ROW_SLOTS; i++)
        p->rows[i].row = p->row_mem + (size_t)i * p->m;
    int rc = xsection_init(&p->xs, cfg, symbols);
    if (rc < 0) {
        pipeline_fini(p);
        return rc;
    }
    size_t cap = pow2_at_least(p->nbatches > cfg->ring_slots ? p->nbatches : cfg->ring_slots);
    for (unsigned i = 0; i < k; i++) {
        pipe_worker_t *w = &p->w[i];
        w->p = p;
        w->id = i;
        char name[32];
        snprintf(name, sizeof name, "worker%u.in", i);
        rc = ring_init(&w->in, name, MEM_TAG_RING, sizeof(uint32_t), cap, RING_WAIT_BLOCK);
        if (rc == 0) {
            /* never waited on through the ring: the reader sleeps on back_sig for all K */
            snprintf(name, sizeof name, "worker%u.back", i);
            rc = ring_init(&w->back, name, MEM_TAG_RING, sizeof(uint32_t), cap, RING_WAIT_SPIN);
        }
        if (rc == 0 && i == 0)
            rc = ring_init(&w->bars, "bars", MEM_TAG_RING, sizeof(uint64_t), PIPE_ROW_SLOTS,
                           RING_WAIT_BLOCK);
        if (rc == 0)
            rc = shard_init(&w->shard, cfg, k, on_bar, w);
        if (rc < 0) {
            pipeline_fini(p);
            return rc;
        }
    }
    return 0;
}

int pipeline_start(pipeline_t *p)
{
    if (p->cfg.pin_cpus)
        pin(0);
    if (pthread_create(&p->xs_thread, NULL, xsection_main, p) != 0)
        return -EAGAIN;
    for (unsigned i = 0; i < p->k; i++) {
        if (pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]) != 0) {
            /* stop what started: close the rings and join */
            for (unsigned j = 0; j < i; j++)
                ring_close(&p->w[j].in);
            for (unsigned j = 0; j < i; j++)
                pthread_join(p->w[j].thread, NULL);
            if (i == 0)
                ring_close(&p->w[0].bars);
            pthread_join(p->xs_thread, NULL);
            return -EAGAIN;
        }
    }
    p->reader_cpu0 = clock_thread_cpu_s();
    p->started = true;
    return 0;
}

/* Take back every batch the workers returned. */
static void reclaim(pipeline_t *p)
{
    for (unsigned i = 0; i < p->k; i++) {
        size_t first, n;
        while ((n = ring_peek(&p->w[i].back, 64, &first)) > 0) {
            for (size_t j = 0; j < n; j++)
                p->free_stack[p->nfree++] = *(uint32_t *)ring_slot(&p->w[i].back, first + j);
            ring_release(&p->w[i].back, n);
        }
    }
}

typedef struct back_wait {
    pipeline_t *p;
    uint32_t want; /* free batches needed */
} back_wait_t;

static bool batches_back(void *ctx)
{
    back_wait_t *c = ctx;
    reclaim(c->p);
    return c->p->nfree >= c->want;
}

pipe_batch_t *pipeline_acquire(pipeline_t *p)
{
    if (p->nfree == 0)
        reclaim(p);
    if (p->nfree == 0) {
        /* every batch is in flight: sleep until a worker returns one (backpressure, counted) */
        p->acquire_waits++;
        uint64_t t0 = clock_mono_ns();
        back_wait_t c = {p, 1};
        ring_signal_wait(&p->back_sig, batches_back, &c);
        p->acquire_wait_s += (double)(clock_mono_ns() - t0) * 1e-9;
    }
    pipe_batch_t *b = &p->batches[p->free_stack[--p->nfree]];
    b->n = 0;
    b->nmarks = 0;
    b->force = false;
    b->close_bars = false;
    return b;
}

void pipeline_publish_tick(pipeline_t *p)
{
    pipe_batch_t *b = pipeline_acquire(p);
    b->force = true;
    pipeline_publish(p, b);
}

void pipeline_publish(pipeline_t *p, pipe_batch_t *b)
{
    if (b->n == 0 && !b->force) {
        p->free_stack[p->nfree++] = b->index;
        return;
    }
    if (p->k > 1) {
        uint64_t t0 = clock_mono_ns();
        route(p, b);
        p->route_s += (double)(clock_mono_ns() - t0) * 1e-9;
    }
    atomic_store_explicit(&b->refs, p->k, memory_order_relaxed);
    b->t_publish = clock_mono_ns();
    for (unsigned i = 0; i < p->k; i++) {
        size_t first;
        ring_claim(&p->w[i].in, 1, &first); /* never full: it holds every batch */
        *(uint32_t *)ring_slot(&p->w[i].in, first) = b->index;
        ring_commit(&p->w[i].in, 1);
    }
    p->published++;
}

void pipeline_close_bars(pipeline_t *p)
{
    pipe_batch_t *b = pipeline_acquire(p);
    b->force = true;
    b->close_bars = true;
    pipeline_publish(p, b);
}

void pipeline_new_session(pipeline_t *p, uint32_t held)
{
    /* every batch but the ones the caller holds must be back: then no worker touches its shard */
    back_wait_t c = {p, p->nbatches - held};
    if (!batches_back(&c))
        ring_signal_wait(&p->back_sig, batches_back, &c);
    for (unsigned i = 0; i < p->k; i++)
        shard_new_session(&p->w[i].shard);
    if (p->k > 1) {
        /* nothing of a symbol survives the reset: re-pack the shards by last session's counts */
        pipeline_balance(p, p->loc_count);
        memset(p->loc_count, 0, 65536 * sizeof(uint32_t));
        p->clk_origin = false;
        p->clk_end = 0;
        p->snap_end = p->snap_ns ? 0 : UINT64_MAX;
    }
    p->sessions++;
}

/* The cross-section thread has taken every bar announced (the bars ring is empty). */
static bool xs_caught_up(void *ctx)
{
    ring_t *bars = &((pipeline_t *)ctx)->w[0].bars;
    return atomic_load_explicit(&bars->head, RING_ORDER_OBSERVE) ==
           atomic_load_explicit(&bars->tail, RING_ORDER_OBSERVE);
}

void pipeline_sync(pipeline_t *p)
{
    if (!p->started)
        return;
    back_wait_t c = {p, p->nbatches};
    if (!batches_back(&c))
        ring_signal_wait(&p->back_sig, batches_back, &c);
    if (!xs_caught_up(p))
        ring_signal_wait(&p->sync_sig, xs_caught_up, p);
}

void pipeline_finish(pipeline_t *p)
{
    if (!p->started)
        return;
    for (unsigned i = 0; i < p->k; i++)
        ring_close(&p->w[i].in);
    for (unsigned i = 0; i < p->k; i++)
        pthread_join(p->w[i].thread, NULL);
    pthread_join(p->xs_thread, NULL);
    reclaim(p);
    p->reader_cpu = clock_thread_cpu_s() - p->reader_cpu0;
    p->started = false;
}

void pipeline_fini(pipeline_t *p)
{
    pipeline_finish(p);
    if (p->w) {
        for (unsigned i = 0; i < p->k; i++) {
            pipe_worker_t *w = &p->w[i];
            shard_fini(&w->shard);
            ring_fini(&w->in);
            ring_fini(&w->back);
            if (i == 0)
                ring_fini(&w->bars);
        }
        mem_free(MEM_TAG_ENGINE, p->w, p->k * sizeof *p->w);
    }
    xsection_fini(&p->xs);
    size_t nev = (size_t)p->nbatches * p->batch_cap;
    if (p->batches)
        mem_free(MEM_TAG_ENGINE, p->batches, p->nbatches * sizeof *p->batches);
    if (p->events)
        mem_free(MEM_TAG_ENGINE, p->events, nev * sizeof(ev_t));
    if (p->free_stack)
        mem_free(MEM_TAG_ENGINE, p->free_stack, p->nbatches * sizeof *p->free_stack);
    if (p->owner)
        mem_free(MEM_TAG_ENGINE, p->owner, 65536);
    if (p->row_mem)
        mem_free(MEM_TAG_ENGINE, p->row_mem, PIPE_ROW_SLOTS * p->m * sizeof(double));
    if (p->route_mem)
        mem_free(MEM_TAG_ENGINE, p->route_mem, 2 * nev * sizeof(uint32_t));
    if (p->off_mem)
        mem_free(MEM_TAG_ENGINE, p->off_mem, (size_t)p->nbatches * (p->k + 1) * sizeof(uint32_t));
    if (p->sid)
        mem_free(MEM_TAG_ENGINE, p->sid, p->batch_cap ? p->batch_cap : 1);
    if (p->loc_count)
        mem_free(MEM_TAG_ENGINE, p->loc_count, 65536 * sizeof(uint32_t));
    if (p->sort_keys)
        mem_free(MEM_TAG_ENGINE, p->sort_keys, 65536 * sizeof(uint64_t));
    memset(p, 0, sizeof *p);
}

void pipeline_stream_cfg(stream_cfg_t *s, const config_t *c)
{
    stream_cfg_default(s);
    s->reader.nbufs = c->io_buffers;
    s->reader.buf_size = (uint32_t)c->io_buffer_size;
    s->reader.queue_depth = c->io_queue_depth;
    s->reader.gz_bufs = c->gz_buffers;
    s->reader.gz_buf_size = (uint32_t)c->gz_buffer_size;
    s->reader.inflate_threads = c->inflate_threads;
    s->batch_events = c->batch_events;
    s->csv.max_line = (uint32_t)c->max_line;
    s->csv.require_order = c->csv_require_order;
    s->skip_bad = c->on_bad_input == CFG_BAD_SKIP;
}

int pipeline_set_export(pipeline_t *p, export_t *x)
{
    if (p->started || (export_enabled(x) && x->nworkers != p->k))
        return -EINVAL;
    for (unsigned i = 0; i < p->k; i++)
        shard_set_export(&p->w[i].shard, export_enabled(x) ? &x->w[i] : NULL);
    /* routed workers see only their events: the reader marks the snapshot crossings too */
    p->snap_ns = export_enabled(x) && x->w[0].part[EXPORT_KIND_BOOK].buf ? x->cfg.book_every_ns : 0;
    p->snap_end = p->snap_ns ? 0 : UINT64_MAX;
    return 0;
}

int pipeline_set_trades_out(pipeline_t *p, csvout_t *w, const symtab_t *t)
{
    if (p->k != 1 || p->started)
        return -EINVAL;
    shard_set_trades_out(&p->w[0].shard, w, t);
    return 0;
}
