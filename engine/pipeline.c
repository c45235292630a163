/*
 * pipeline: see pipeline.h. Thread roles: the reader (the caller) owns the free-batch stack and
 * the producing ends of the `in` rings and the consuming ends of the `back` rings; worker i owns
 * its shard, the consuming end of its `in` ring and the producing end of its `back` ring (and,
 * for worker 0, of the `bars` ring); the cross-section thread owns the xsection and consumes
 * `bars`. Row slots are handed between workers and the cross-section thread by their atomics.
 */
#include "engine/pipeline.h"

#include "base/clock.h"
#include "mem/mem.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
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

static void on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    pipe_worker_t *w = ctx;
    pipeline_t *p = w->p;
    pipe_rowslot_t *slot = &p->rows[k % PIPE_ROW_SLOTS];
    for (;;) {
        uint64_t cur = atomic_load_explicit(&slot->k1, memory_order_acquire);
        if (cur == k + 1)
            break;
        uint64_t zero = 0;
        if (cur == 0 && atomic_compare_exchange_strong_explicit(
                            &slot->k1, &zero, k + 1, memory_order_acq_rel, memory_order_acquire))
            break;
        w->row_waits++; /* the slot still holds an older bar: the cross-section is behind */
        sched_yield();
    }
    bool traded = false;
    xsection_fill_row(st, k, p->xs.row_kind, p->k, w->id, slot->row, p->m, &traded);
    if (traded)
        atomic_store_explicit(&slot->traded, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->done, 1, memory_order_release);
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
            if (p->k == 1)
                shard_apply(&w->shard, b->ev, b->n);
            else
                mine = shard_apply_part(&w->shard, b->ev, b->n, p->owner, (uint8_t)w->id);
            w->owned += mine;
            uint64_t t2 = clock_mono_ns();
            if (p->on_batch)
                p->on_batch(p->hook_ctx, w->id, &w->shard, b->ev, b->n, p->k == 1 ? NULL : p->owner,
                            b->force);
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
            }
        }
        ring_release(&w->in, n);
    }
    if (w->id == 0)
        ring_close(&w->bars);
    w->busy = (double)busy * 1e-9;
    w->wall = (double)(clock_mono_ns() - t0) * 1e-9;
    return NULL;
}

static void *xsection_main(void *arg)
{
    pipeline_t *p = arg;
    ring_t *bars = &p->w[0].bars;
    uint64_t t0 = clock_mono_ns(), busy = 0, last_compute = t0, rows_computed = 0;
    size_t first, n;
    while ((n = ring_wait_peek(bars, 16, &first)) > 0) {
        for (size_t i = 0; i < n; i++) {
            uint64_t k = *(uint64_t *)ring_slot(bars, first + i);
            pipe_rowslot_t *slot = &p->rows[k % PIPE_ROW_SLOTS];
            while (atomic_load_explicit(&slot->done, memory_order_acquire) < p->k) {
                p->xs_waits++;
                sched_yield();
            }
            uint64_t t1 = clock_mono_ns();
            xsection_push(&p->xs, k, slot->row,
                          atomic_load_explicit(&slot->traded, memory_order_relaxed) != 0);
            busy += clock_mono_ns() - t1;
            atomic_store_explicit(&slot->traded, 0, memory_order_relaxed);
            atomic_store_explicit(&slot->done, 0, memory_order_relaxed);
            atomic_store_explicit(&slot->k1, 0, memory_order_release);
        }
        ring_release(bars, n);
        if (p->on_xs && p->xs_interval_ns && p->xs.rows > rows_computed) {
            uint64_t t = clock_mono_ns();
            if (t - last_compute >= p->xs_interval_ns) {
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
    p->xs_wall = (double)(clock_mono_ns() - t0) * 1e-9;
    return NULL;
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
    for (uint32_t i = 0; i < p->nbatches; i++) {
        p->batches[i].ev = p->events + (size_t)i * p->batch_cap;
        p->batches[i].index = i;
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
            snprintf(name, sizeof name, "worker%u.back", i);
            rc = ring_init(&w->back, name, MEM_TAG_RING, sizeof(uint32_t), cap, RING_WAIT_BLOCK);
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

pipe_batch_t *pipeline_acquire(pipeline_t *p)
{
    if (p->nfree == 0)
        reclaim(p);
    if (p->nfree == 0) {
        /* every batch is in flight: wait for the slowest worker (backpressure, counted) */
        p->acquire_waits++;
        uint64_t t0 = clock_mono_ns();
        unsigned spins = 0;
        while (p->nfree == 0) {
            if (++spins < 64) {
                sched_yield();
            } else {
                struct timespec d = {0, 20000};
                nanosleep(&d, NULL);
            }
            reclaim(p);
        }
        p->acquire_wait_s += (double)(clock_mono_ns() - t0) * 1e-9;
    }
    pipe_batch_t *b = &p->batches[p->free_stack[--p->nfree]];
    b->n = 0;
    b->force = false;
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

void pipeline_new_session(pipeline_t *p, uint32_t held)
{
    /* every batch but the ones the caller holds must be back: then no worker touches its shard */
    while (p->nfree + held < p->nbatches) {
        reclaim(p);
        if (p->nfree + held < p->nbatches)
            sched_yield();
    }
    for (unsigned i = 0; i < p->k; i++)
        shard_new_session(&p->w[i].shard);
    p->sessions++;
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
    return 0;
}

int pipeline_set_trades_out(pipeline_t *p, csvout_t *w, const symtab_t *t)
{
    if (p->k != 1 || p->started)
        return -EINVAL;
    shard_set_trades_out(&p->w[0].shard, w, t);
    return 0;
}
