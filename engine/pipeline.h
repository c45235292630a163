/*
 * pipeline: the engine on all cores. The thread that reads the input (the caller: replay's main
 * thread) decodes each input buffer into a batch of events and publishes the batch to K shard
 * workers; each worker owns the order books and stats of the symbols whose stock locate maps to
 * it (owner[locate]) and applies them in feed order; a cross-section thread turns the bar closes
 * into rows of the rolling covariance. Results do not depend on K nor on which shard owns which
 * locate: a symbol's events reach one worker in feed order, and every worker's bar clock sees
 * the same sequence of advances, so bars close at the same feed positions whatever K is.
 *
 * Routing (K > 1): at publication the reader sorts the batch's event positions by shard (a
 * counting sort: one pass to count, one to place; `idx`, with shard s's run at
 * idx[off[s]..off[s+1])), so a worker reads only its own events: its cost is proportional to
 * its share. Nothing is copied: events stay where the decoder wrote them. The clock: a bar
 * closes when an event's timestamp reaches the end of the open bar, whoever owns the event. The
 * reader keeps a mirror of that clock (same origin, same bar arithmetic as analytics/stats) and
 * lists the positions of the batch's events that move it (`marks`: the session's first event
 * and each event that crosses a bar end: a handful per batch); every worker advances its clock
 * to those, in feed order between its own events. Every other event's advance is a no-op in
 * stats, so the workers' clocks move exactly as a single shard's would.
 *
 * Balance: shards are balanced by message count, not symbol count (a few symbols carry most
 * messages). The reader counts each locate's messages in the routing pass; at each session
 * boundary (pipeline_new_session, when no batch is in flight and every book and stats symbol is
 * cleared, so no state has to move) the locates are re-assigned by greedy bin-packing (largest
 * count first, to the least loaded shard) of the counts of the session that ended. The first
 * session starts from locate % K (or from the counts a caller gives pipeline_balance).
 *
 * Batches are published to every worker by index (SPSC rings, one per worker); a batch carries a
 * reference count set to K; the worker that drops it to 0 returns it to the reader through its
 * own return ring and signals the reader.
 *
 * Waiting blocks, it does not spin: the reader waiting for a free batch (backpressure), the
 * cross-section thread waiting for the K parts of a row, and a worker waiting for a row slot
 * spin briefly, then sleep on a futex (ring_signal_t, mem/ring.h) until the thread that changes
 * the condition wakes them. Time spent waiting is counted apart from work: a worker's busy time
 * excludes its row waits, so the stage table names the stage that works the most.
 *
 * Backpressure: there are pipeline.batches batches; when all are in flight, pipeline_acquire
 * waits (and counts the wait) until a worker returns one. Nothing is dropped in replay, and
 * nothing grows: every ring is sized so it can hold every batch.
 *
 * Bars: when a worker closes bar k it writes its columns of the bar's row (those of the locates
 * it owns) into a row slot (k % 64) and counts itself done; the last one signals the
 * cross-section thread; worker 0 announces k to it through the `bars` ring. The cross-section
 * thread waits for all K parts, pushes the row, frees the slot and signals workers waiting for it.
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
#define PIPE_XS_TICK     UINT64_MAX /* in the bars ring: a forced batch (idle tick), not a bar */

typedef struct pipe_batch {
    ev_t *ev;
    uint32_t n;
    uint32_t index;
    /* routing (K > 1), written by the reader at publication: */
    uint32_t *idx;   /* [batch_cap] positions of the events, grouped by shard, in feed order */
    uint32_t *off;   /* [K + 1] shard s's positions are idx[off[s] .. off[s + 1]) */
    uint32_t *marks; /* [batch_cap] positions of the events that move the bar clock */
    uint32_t nmarks;
    _Atomic uint32_t refs;
    uint64_t t_publish; /* ns, monotonic clock */
    bool force;         /* publish even when empty (pipeline_publish_tick) */
    bool close_bars;    /* after the events: close the open bar (pipeline_close_bars) */
} pipe_batch_t;

typedef struct pipe_rowslot {
    _Atomic uint64_t k1; /* bar + 1 held by the slot; 0 = free */
    _Atomic uint32_t done;
    _Atomic uint32_t traded;
    _Atomic uint64_t session; /* the stats' session number of the bar (every part writes it) */
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
    uint64_t row_waits;   /* bars whose row slot was still held by an older bar */
    uint64_t row_wait_ns; /* time spent waiting for those slots */
    double busy;          /* seconds applying, waits excluded */
    double row_wait;      /* seconds waiting for a row slot (the cross-section is behind) */
    double wall;          /* seconds alive */
    double cpu;           /* seconds of CPU time of the thread (CLOCK_THREAD_CPUTIME_ID) */
    double cpu_sys;       /* of which in the kernel (getrusage RUSAGE_THREAD) */
    uint64_t csw_vol;     /* voluntary context switches (it slept: its ring was empty) */
    uint64_t csw_invol;   /* involuntary ones (preempted: the cores were shared) */
} pipe_worker_t;

typedef struct pipeline {
    config_t cfg;
    unsigned k;
    uint32_t nbatches, batch_cap;
    pipe_batch_t *batches;
    ev_t *events; /* nbatches * batch_cap */
    uint32_t *free_stack;
    uint32_t nfree;
    uint8_t *owner; /* [65536] locate -> worker; changed only while no batch is in flight */
    /* routing (reader side; K > 1) */
    uint32_t *route_mem;                   /* idx and marks of every batch */
    uint32_t *off_mem;                     /* off of every batch */
    uint8_t *sid;                          /* [batch_cap] scratch: each event's shard */
    uint32_t *loc_count;                   /* [65536] messages per locate this session */
    uint64_t *sort_keys;                   /* [65536] scratch for pipeline_balance */
    uint64_t bar_ns;                       /* the stats' bar interval, for the clock mirror */
    uint64_t snap_ns, snap_end;            /* book snapshot interval (0: none), next boundary */
    uint64_t clk_end;                      /* mirror of the stats clock: end of the open bar */
    bool clk_origin;                       /* the mirror has seen the session's first event */
    uint64_t marks_total;                  /* clock marks handed to the workers */
    uint64_t rebalances;                   /* times the owner table was re-packed from counts */
    uint64_t shard_load[PIPE_MAX_WORKERS]; /* messages routed to each shard */
    ring_signal_t back_sig; /* a worker returned a batch (the reader may sleep on it) */
    ring_signal_t xs_sig;   /* a row got its last part (the cross-section thread) */
    ring_signal_t slot_sig; /* a row slot was freed (workers) */
    ring_signal_t sync_sig; /* the cross-section thread released bars (pipeline_sync) */
    pipe_worker_t *w;
    pipe_rowslot_t rows[PIPE_ROW_SLOTS];
    double *row_mem;
    size_t m; /* matrix columns */
    xsection_t xs;
    pthread_t xs_thread;
    double xs_busy, xs_wall, xs_wait, xs_cpu; /* seconds: working, alive, waiting for parts, CPU */
    uint64_t xs_waits;
    bool started;
    /* serve: hooks (NULL in replay). on_batch runs on worker w after it applied a batch (force:
     * an idle tick, pipeline_publish_tick): the events it owns are ev[own[0..n)] (K > 1: its
     * routed positions, in feed order) or, own NULL, ev[0..n) (K = 1: all of them); owner is
     * the locate -> worker table (NULL with K = 1). on_xs on the cross-section thread after a
     * periodic xsection_compute, at most every xs_interval_ns and only when new rows came, and
     * at once on a forced batch (an idle tick: the rows a fast feed left behind get computed). */
    void (*on_batch)(void *ctx, unsigned w, const shard_t *sh, const ev_t *ev, const uint32_t *own,
                     size_t n, const uint8_t *owner, bool force);
    void (*on_xs)(void *ctx, const xsection_t *x);
    /* on_row: on the cross-section thread, each complete row as the K parts made it (m values,
     * NaN where a symbol has no return; session is the stats' session number, bars restart each
     * day), in bar order, before xsection_push: what a cluster shard publishes (engine/xrow).
     * It must not keep row nor wait long (the workers wait for the slot). NULL: none. */
    void (*on_row)(void *ctx, uint64_t session, uint64_t k, const double *row, bool traded);
    /* serve, a cluster shard (cluster.rows_only): the cross-section thread hands each row to
     * on_row and nothing else: no xsection_push, no compute (set before pipeline_start). */
    bool xs_rows_only;
    void *hook_ctx;
    uint64_t xs_interval_ns;
    _Atomic uint64_t xs_computes;
    /* reader side */
    _Atomic uint64_t published, acquire_waits;
    uint64_t sessions;
    double acquire_wait_s;
    double route_s;    /* reader seconds spent routing (inside pipeline_publish) */
    double reader_cpu; /* CPU seconds of the thread that called start and finish, in between */
    double reader_cpu0;
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
/* Reader thread, while no batch is in flight (before pipeline_start, or from a session boundary
 * on): assign locates to shards by greedy bin-packing of counts[65536] (messages per locate;
 * locates with none: locate % K). pipeline_new_session does it with the ended session's counts.
 * Allocates nothing. */
void pipeline_balance(pipeline_t *p, const uint32_t *counts);
/* Reader thread: the input (or the session) ends: an empty batch after which every worker closes
 * its open bar (stats_close_open), so the last bar's row reaches the cross-section like any
 * other; call it once before pipeline_finish (or pipeline_new_session) when no event of the
 * session follows. */
void pipeline_close_bars(pipeline_t *p);
/* Reader thread: wait until the workers have applied every published batch and the
 * cross-section thread has pushed every row they closed. Until the next publish, the reader may
 * then read the shards and the cross-section and run xsection_compute itself (the library's
 * readers between steps). Allocates nothing; no-op before pipeline_start. */
void pipeline_sync(pipeline_t *p);
/* Reader thread: no more batches; wait for the workers and the cross-section thread. */
void pipeline_finish(pipeline_t *p);
void pipeline_fini(pipeline_t *p);

/* The input stream's settings (reader buffers, batch size, CSV limits, bad-input policy) from the
 * configuration: replay reads its files and serve rebuilds from its journal with these. */
void pipeline_stream_cfg(stream_cfg_t *s, const config_t *c);

#endif
