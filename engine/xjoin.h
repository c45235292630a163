/*
 * xjoin: the cluster's cross-section join. N shard processes each publish their part of every
 * closed bar row (engine/xrow); the cross-section node puts the parts in here in whatever order
 * they arrive, and takes back complete rows in bar order, which it pushes into its xsection
 * exactly as the single-process pipeline's cross-section thread pushes the row its K workers
 * wrote (the same join, across processes instead of threads).
 *
 * Window: `window` slots, each one bar in flight: its key (session, bar k), the mask of the
 * shards whose part it has, the OR of their traded flags, the time its first part came, and the
 * row (m values, NaN until a part writes its columns). A part for a bar not in flight takes a
 * free slot; with none free it is refused (XJOIN_FULL: the caller keeps it, e.g. leaves the
 * JetStream message unacknowledged and stops fetching from that shard, and offers it again after
 * xjoin_poll made room). xjoin_poll hands out the bar with the smallest key while it is complete;
 * an incomplete one whose first part is older than the deadline is dropped and counted
 * (incomplete, and per shard the parts it lacked), so a dead or slow shard delays the join by at
 * most the deadline and never stops it. Order: rows come out in key order provided each shard's
 * own parts arrive in its bar order (a JetStream subject keeps it); parts of different shards
 * may interleave in any way.
 *
 * Duplicates: a restarted shard publishes again the parts of the bars it rebuilds. A part whose
 * shard bit is set in its bar in flight, or whose bar was already handed out, is dropped and
 * counted (duplicates); a part for a bar already dropped as incomplete, which lacked it, is a
 * late part (late). Resolved bars are remembered in a ring of 4 x window keys to tell the two
 * apart; a part older than that ring is counted as a duplicate. Parts of another configuration
 * (nshards, m, or a column set that is not the one this node derives from the shard function)
 * are refused with a message (foreign); malformed ones too (bad; xrow_decode names the byte).
 *
 * Names: each part names its owned locates; the join writes a name into the caller's symbol
 * table the first time it sees it (symtab_set), so xsection_compute names and selects columns
 * as the shards' tables do.
 *
 * Memory: xjoin_init allocates the slots' rows, the history and the expected layouts (tag
 * ENGINE); put and poll allocate nothing. One thread owns a join (the cross-section node's
 * consumer thread); the counters are plain fields read by that thread, or _Atomic where noted
 * for /metrics.
 */
#ifndef TICKCORE_ENGINE_XJOIN_H
#define TICKCORE_ENGINE_XJOIN_H

#include "base/histo.h"
#include "engine/xrow.h"
#include "event/symtab.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xjoin_cfg {
    unsigned nshards;     /* 1..XROW_MAX_SHARDS */
    uint32_t m;           /* matrix columns (matrix.symbols) */
    uint32_t window;      /* bars in flight, >= 1 */
    uint64_t deadline_ns; /* an incomplete bar is dropped this long after its first part */
    const uint8_t *owner; /* [65536] locate -> shard: the cluster's shard function */
    symtab_t *names;      /* where the parts' names go (NULL: nowhere) */
} xjoin_cfg_t;

typedef struct xjoin_slot {
    uint64_t session, k;
    uint64_t have;                 /* shards whose part is in */
    uint64_t first_ns, last_ns;    /* monotonic arrival of the first and last part */
    uint64_t closed_lo, closed_hi; /* earliest and latest closed_ns of the parts (wall) */
    bool used, traded;
    double *row;
} xjoin_slot_t;

typedef struct xjoin_hist {
    uint64_t session, k, have;
    bool complete;
} xjoin_hist_t;

typedef enum xjoin_result {
    XJOIN_TAKEN = 0,     /* the part is in its bar */
    XJOIN_DUPLICATE = 1, /* dropped: already had it (counted) */
    XJOIN_LATE = 2,      /* dropped: its bar went out incomplete without it (counted) */
    XJOIN_FULL = 3,      /* not taken: every slot holds a bar in flight; offer it again later */
} xjoin_result_t;

typedef struct xjoin {
    xjoin_cfg_t cfg;
    uint64_t all;          /* mask of every shard */
    xrow_layout_t *layout; /* [nshards] what each shard's parts must look like */
    xjoin_slot_t *slots;   /* [window] */
    double *row_mem;
    uint32_t inflight;
    xjoin_hist_t *hist; /* [4 x window] resolved bars, a ring */
    uint32_t nhist, hist_head;
    bool have_out;
    uint64_t out_session, out_k; /* the last bar handed out or dropped */
    /* counters (owner thread writes; _Atomic ones may be read by any thread) */
    _Atomic uint64_t parts, rows, incomplete, duplicates, late, full, bad, foreign;
    uint64_t missing[XROW_MAX_SHARDS]; /* parts each shard failed to give to dropped bars */
    histo_t wait;    /* ns: first part's arrival -> the row handed out (waiting for all shards) */
    histo_t latency; /* ns: the last shard's closed_ns -> the row handed out (wall clock) */
} xjoin_t;

/* 0, -EINVAL (a bad cfg), -ENOMEM. Start-up (before the seal). */
int xjoin_init(xjoin_t *j, const xjoin_cfg_t *cfg);
void xjoin_fini(xjoin_t *j);

/* Offer one part (len bytes at buf; any alignment) that arrived at now_ns (monotonic). Returns
 * an xjoin_result_t (>= 0), or -EBADMSG (malformed) / -EINVAL (another configuration), each with
 * a message in err and counted. Allocates nothing. */
int xjoin_put(xjoin_t *j, const void *buf, size_t len, uint64_t now_ns, char *err, size_t errlen);

/* A complete row, in bar order: row holds m values (NaN where a symbol has no return) and is the
 * join's until the callback returns (xsection_push may write into it). */
typedef void xjoin_row_fn(void *ctx, uint64_t session, uint64_t k, double *row, bool traded);

/* Hand out every row that is ready at now_ns (monotonic) and drop the incomplete bars past
 * their deadline, in key order; wall_ns (the wall clock) stamps the latency. Returns the rows
 * handed out. now_ns = UINT64_MAX: every bar in flight is due (the input ended for good).
 * Allocates nothing. */
size_t xjoin_poll(xjoin_t *j, uint64_t now_ns, uint64_t wall_ns, xjoin_row_fn *fn, void *ctx);

/* When the oldest bar in flight falls due (monotonic ns), or UINT64_MAX with none in flight:
 * the caller may sleep until then. */
uint64_t xjoin_next_deadline(const xjoin_t *j);

#endif
