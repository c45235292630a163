/*
 * shard: the per-symbol state one worker owns: full-depth order books (analytics/book) and
 * trade statistics and bars (analytics/stats), fed in feed order. For each event the book is
 * applied first, so that an execution (E) gets its price from the resting order, then the stats
 * see the trade, and when the event changed a best price that side goes to the stats for mid and
 * spread (so the stats' bid and ask are the book's after every event). Every event advances the
 * stats clock, which closes bars; closed bars are reported through the stats callback (the
 * cross-section consumes them).
 *
 * Everything is allocated by shard_init from the configuration (tags BOOK and STATS); applying
 * events allocates nothing. One thread owns a shard. The pipeline (issue #5) runs K of them on
 * disjoint symbols; replay today runs one.
 */
#ifndef TICKCORE_ENGINE_SHARD_H
#define TICKCORE_ENGINE_SHARD_H

#include "analytics/book.h"
#include "analytics/stats.h"
#include "config/config.h"
#include "engine/export.h"
#include "event/event.h"
#include "event/symtab.h"
#include "ingest/csvout.h"

#include <stddef.h>
#include <stdint.h>

#define SHARD_RUN 64 /* events the book applies before the stats take them (see shard.c) */

typedef struct shard {
    book_t book;
    stats_t stats;
    uint64_t events;
    csvout_t *trades_out; /* optional: every trade the stats count, as CSV (replay --trades-out) */
    const symtab_t *symbols;
    export_worker_t *xw;  /* optional: bars and book snapshots (replay --bars-out, --book-out) */
    uint64_t snap_next;   /* the next book snapshot boundary (UINT64_MAX: none) */
    stats_bar_fn *on_bar; /* the caller's bar callback, called before the export */
    void *on_bar_ctx;
    book_fill_t fills[SHARD_RUN]; /* shard_apply's fills of one run (3.5 KiB: with the run's 4 KiB
                                     of events it stays in L1 while the book runs; 256 doubled the
                                     stats' D1 misses in callgrind) */
} shard_t;

/* One of nshards shards (its share of the book capacities: see pipeline.h). on_bar: called for
 * each closed bar (see stats.h), may be NULL. 0 or -errno. */
int shard_init(shard_t *s, const config_t *cfg, unsigned nshards, stats_bar_fn *on_bar, void *ctx);
void shard_fini(shard_t *s);
/* Every event's book result since init, counted (BOOK_IGNORED: the types the book has no use
 * for). From the book's own counters (each event counts once in one of them, an anomaly also
 * in applied), so the apply loops count nothing per event for it. Any thread, like book_stats. */
void shard_by_result(const shard_t *s, uint64_t out[BOOK_RESULT_COUNT]);
/* Export every trade the stats count (E at the resting order's price, C printable, P, Q with
 * shares, CSV t) to w, naming symbols from t. The writer is the caller's, opened before the seal.
 */
void shard_set_trades_out(shard_t *s, csvout_t *w, const symtab_t *t);

/* Export this shard's closed bars and book snapshots through xw (engine/export; the caller's,
 * set up before the seal). */
void shard_set_export(shard_t *s, export_worker_t *xw);
/* A new trading session: every book emptied, the stats' symbols, bars and clock forgotten
 * (counters carry on), the snapshot clock restarted. Allocates nothing. Owner thread (or any
 * thread while the owner is idle). */
void shard_new_session(shard_t *s);

/* Apply a batch of events in order. Allocates nothing. */
void shard_apply(shard_t *s, const ev_t *ev, size_t n);
/* Apply the events whose locate this shard owns (owner[locate] == id) and advance the bar clock
 * with the others. Returns the events applied. Allocates nothing. */
size_t shard_apply_part(shard_t *s, const ev_t *ev, size_t n, const uint8_t *owner, uint8_t id);
/* Apply ev[own[0]], ev[own[1]], ... (n positions, increasing) and, in feed order between them,
 * advance the bar clock to ev[marks[j]].ts (nmarks positions, increasing): the events of the
 * batch that move the clock (see pipeline.h). The result equals shard_apply_part over the whole
 * batch, at a cost proportional to n + nmarks. Allocates nothing. */
void shard_apply_routed(shard_t *s, const ev_t *ev, const uint32_t *own, size_t n,
                        const uint32_t *marks, size_t nmarks);

#endif
