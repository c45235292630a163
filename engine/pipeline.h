/*
 * pipeline: the engine on all cores. The thread that reads the input (the caller: replay's main
 * thread) decodes each input buffer into a batch of events and publishes the batch to K shard
 * workers; each worker owns the order books and stats of the symbols whose stock locate maps to
 * it (locate % K) and applies them in feed order; a cross-section thread turns the bar closes
 * into rows of the rolling covariance. Results do not depend on K: a symbol's events reach one
 * worker in feed order, and every worker advances its bar clock with every event of every batch,
 * so bars close at the same feed positions whatever K is.
 *
 * Routing without copying: a batch is published to every worker by index (SPSC rings of batch
 * indices, one per worker) and each worker applies the events it owns and only reads the clock
 * of the others. This replaces DESIGN.md's router thread: no event is copied or moved, at the
 * price of each worker scanning every event (64 bytes, sequential) - cheap next to a book update.
 * A batch carries a reference count set to K; the worker that drops it to 0 returns the batch to
 * the reader through its own return ring.
 *
 * Backpressure: there are pipeline.batches batches; when all are in flight, pipeline_acquire
 * waits (and counts the wait) until a worker returns one. Nothing is dropped in replay, and
 * nothing grows: every ring is sized so it can hold every batch.
 *
 * Bars: when a worker closes bar k it writes its columns of the bar's row into a row slot
 * (k % 64) and counts itself done; worker 0 announces k to the cross-section thread, which waits
 * for all K parts, pushes the row, and frees the slot. A worker that finds its slot still held by
 * an older bar waits for the cross-section thread (counted).
 *
 * Memory: everything is sized by pipeline_init from the config (tags ENGINE, RING, BOOK, STATS,
 * ANALYTICS); running allocates nothing. Book capacities are split across shards with a quarter
 * spare (a shard's share of max_orders * 5/4). Threads: pipeline_start starts them; the caller
 * then acquires and publishes batches; pipeline_finish closes the rings and joins every thread.
 */
#ifndef TICKCORE_ENGINE_PIPELINE_H
#define TICKCORE_ENGINE_PIPELINE_H

#include "base/histo.h"
#include "config/config.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "event/event.h"
#include "event/symtab.h"
#include "ingest/stream.h"
#include "mem/ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PIPE_MAX_WORKERS 64
#define PIPE_ROW_SLOTS   64

typedef struct pipe_batch {
    ev_t *ev;
    uint32_t n;
    uint32_t index;
    _Atomic uint32_t refs;
    uint64_t t_publish; /* ns, monotonic clock */
    bool force;         /* publish even when empty (pipeline_publish_tick) */
} pipe_batch_t;

typedef struct pipe_rowslot {
    _Atomic uint64_t k1; /* bar + 1 held by the slot; 0 = free */
    _Atomic uint32_t done;
    _Atomic uint32_t traded;
    double *row;
} pipe_rowslot_t;

struct pipeline;

typedef struct pipe_worker {
    ring_t in;   /* batch indices from the reader */
    ring_t back; /* batch indices returned to the reader */
    ring_t bars; /* worker 0 only: closed bar numbers to the cross-section thread */
    struct pipeline *p;
    unsigned id;
    pthread_t thread;
    shard_t shard;
    histo_t latency; /* publish -> applied, ns, one sample per event of the batch */
    _Atomic uint64_t batches, events, owned; /* read by /metrics while running */
    uint64_t row_waits;
    double busy; /* seconds applying */
    double wall; /* seconds alive */
} pipe_worker_t;

typedef struct pipeline {
    config_t cfg;
    unsigned k;
    uint32_t nbatches, batch_cap;
    pipe_batch_t *batches;
    ev_t *events; /* nbatches * batch_cap */
    uint32_t *free_stack;
    uint32_t nfree;
    uint8_t *owner; /* [65536] locate -> worker */
    pipe_worker_t *w;
    pipe_rowslot_t rows[PIPE_ROW_SLOTS];
    double *row_mem;
    size_t m; /* matrix columns */
    xsection_t xs;
    pthread_t xs_thread;
    double xs_busy, xs_wall;
    uint64_t xs_waits;
    bool started;
    /* serve: hooks (NULL in replay). on_batch runs on worker w after it applied a batch (force:
     * an idle tick, pipeline_publish_tick); on_xs on the cross-section thread after a periodic
     * xsection_compute, at most every xs_interval_ns and only when new rows came. */
    void (*on_batch)(void *ctx, unsigned w, const shard_t *sh, const ev_t *ev, size_t n,
                     const uint8_t *owner, bool force);
    void (*on_xs)(void *ctx, const xsection_t *x);
    void *hook_ctx;
    uint64_t xs_interval_ns;
    _Atomic uint64_t xs_computes;
    /* reader side */
    _Atomic uint64_t published, acquire_waits;
    uint64_t sessions;
    double acquire_wait_s;
    uint64_t worker_delay_ns; /* tests: each worker sleeps this long per batch (a slow consumer) */
} pipeline_t;

/* workers: 0 = one per spare core (at least 1). 0 or -errno. */
int pipeline_init(pipeline_t *p, const config_t *cfg, const symtab_t *symbols);
int pipeline_start(pipeline_t *p);
/* Before pipeline_start: every trade the stats count goes to w (not owned; the caller closes it
 * after pipeline_finish), symbols named from t. Feed order needs one worker: -EINVAL otherwise. */
int pipeline_set_trades_out(pipeline_t *p, csvout_t *w, const symtab_t *t);
/* Before pipeline_start: closed bars and book snapshots of worker i go to x->w[i] (x sized for
 * p->k workers by export_init; not owned: the caller merges with export_finish after
 * pipeline_finish). -EINVAL if started or sized for another K. */
int pipeline_set_export(pipeline_t *p, export_t *x);
/* Reader thread: a free batch to decode into, waiting for one if all are in flight. */
pipe_batch_t *pipeline_acquire(pipeline_t *p);
/* Reader thread: hand b (b->n events) to every worker; n == 0 gives it back unused. */
void pipeline_publish(pipeline_t *p, pipe_batch_t *b);
/* Reader thread: an empty batch that still reaches every worker (so on_batch can publish what
 * it held back while the feed is idle). */
void pipeline_publish_tick(pipeline_t *p);
/* Reader thread: a new trading session starts (the next day's file): wait until the workers
 * have applied every batch but the `held` ones the caller has acquired and not yet published,
 * then clear every book and the stats' symbols, bars and clock (counters carry on; the rolling
 * covariance window carries on across days). Allocates nothing. */
void pipeline_new_session(pipeline_t *p, uint32_t held);
/* Reader thread: no more batches; wait for the workers and the cross-section thread. */
void pipeline_finish(pipeline_t *p);
void pipeline_fini(pipeline_t *p);

/* The input stream's settings (reader buffers, batch size, CSV limits, bad-input policy) from the
 * configuration: replay reads its files and serve rebuilds from its journal with these. */
void pipeline_stream_cfg(stream_cfg_t *s, const config_t *c);

#endif
