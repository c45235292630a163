/*
 * book: full-depth, per-order limit order books for every symbol, rebuilt from ITCH events.
 *
 * Orders are 16 bytes (reference, shares left, level index) in a direct table indexed by the
 * reference itself: order ref lives in slot ref & (slots - 1), slots = max_orders rounded up to a
 * power of two, and the slot keeps the whole reference, so one compare validates it. ITCH hands
 * out references in sequence and most orders die young, so the live orders are a dense run of
 * recent slots: an add is a store into the line after the previous add's, a delete clears a
 * slot (no probe, no shifting), and the batch path can prefetch an event's slot from its
 * reference alone. An order still live when a newer reference needs its slot (it outlived a
 * table's worth of later references, or the references are not sequential) moves to the far
 * table, an open-addressing hash (linear probing, backward-shift deletion) of twice max_orders
 * slots; a lookup goes there only for a reference no newer than the newest it holds, so the
 * common path never touches it. Price levels live in a pool of 32-byte objects (a packed key of
 * price, locate and side; aggregate shares; order count; links). Each symbol side gets (while any
 * are left: at most 32,768 per book) a price window: its levels at $0.01 prices within 64 ticks of
 * a base that follows the best price are found by direct index, ordered by the window's occupancy
 * bitmap and linked to nothing, so making or removing one is a slot and a bit and touches no
 * other level. Every other level of the side (deep, off the $0.01 grid, better than the window
 * until it moves, or on a side without a window) is on the side's list, doubly linked from best
 * to worst, and in a level table keyed by (price, locate, side), hashed so that 8 consecutive
 * ticks of a side share a line; a new list level is linked in by a short walk from the nearer end
 * of the list or from a level a tick or two away. The side keeps its best price (the better of the
 * window's first bit and the list's head) and its counts, so the best bid and offer are O(1) and
 * depth N merges the window and the list for N levels. When a new level leaves the best outside
 * its window's comfort zone, the window moves (at most 128 levels change hands between the
 * window and the list). book_apply_batch (and book_prefetch, for callers that apply one event at
 * a time) prefetches in two stages: an event's order slot and side 16 events ahead, then the
 * level its order points at (for an add, the window slot, found from the side's line alone) 8
 * ahead, so an event rarely waits on memory. Each event's fill also says which side's best price it
 * changed (the only places a best price changes are a new level better than the best, the best
 * level going, a side emptied or given its first level), so a caller that keeps quotes needs no
 * read of the book per event. Per-order time
 * priority within a level is not kept (aggregate depth does not need it); U moves the order to
 * the back of its new level by construction.
 * Everything (both order tables, level pool, level table, sides, windows) is allocated by
 * book_init from a config, charged to MEM_TAG_BOOK and backed by RAM at once; book_apply never
 * allocates. Capacity policy: an add that finds max_orders orders live or the level pool empty is
 * dropped and counted, and later events for that reference count as unknown references; nothing
 * crashes and the book stays consistent. Other bad input (unknown references, executions or
 * cancels larger than the order, duplicate references, fields out of range) is counted and never
 * fatal. One thread owns a book: every function except book_stats() must be called by it;
 * book_stats() may be called from any thread (its counters are single-writer relaxed atomics).
 */
#ifndef TICKCORE_ANALYTICS_BOOK_H
#define TICKCORE_ANALYTICS_BOOK_H

#include "event/event.h"
#include "mem/pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BOOK_MAX_LOCATE   65535u                   /* stock locates are 16-bit; 0 is "none" */
#define BOOK_MAX_CAPACITY (1u << 30)               /* most orders or levels a book can hold */
#define BOOK_PRICE_MAX    ((INT64_C(1) << 46) - 1) /* prices are 0..BOOK_PRICE_MAX (1e-4 $) */
#define BOOK_SHARES_MAX   UINT32_MAX               /* shares of one order (ITCH: 32 bits) */

/* Capacities, fixed at init. */
typedef struct book_config {
    uint32_t max_orders; /* live orders at once, all symbols (1..BOOK_MAX_CAPACITY) */
    uint32_t max_levels; /* price levels in use at once, all symbols, both sides */
    uint32_t max_locate; /* highest stock locate accepted (1..BOOK_MAX_LOCATE) */
} book_config_t;

/* Sized for a full NASDAQ day (published peaks: 1.65 M live orders, 8,371 symbols, 2,422 levels
 * in one book): 2^21 = 2,097,152 orders, 2^20 levels, every locate; about 160 MB (the direct
 * order table 32 MB, the far table 64 MB). */
void book_config_default(book_config_t *cfg);

/* What book_apply did with an event. Every outcome but BOOK_OK and BOOK_IGNORED is counted. */
typedef enum book_result {
    BOOK_OK = 0,      /* applied as given */
    BOOK_IGNORED,     /* a type that does not change the book (P, Q, R, S, ..., CSV t, q) */
    BOOK_ANOMALY,     /* E, C or X for more shares than the order had left: order removed */
    BOOK_UNKNOWN_REF, /* E, C, X, D or U of a reference that is not live: nothing changed */
    BOOK_DUP_REF,     /* A, F (or U's new reference) already live: the add is dropped */
    BOOK_NO_ORDER,    /* order pool empty: the add is dropped */
    BOOK_NO_LEVEL,    /* level pool empty and the price needs a new level: add dropped */
    BOOK_INVALID,     /* A, F or U with locate, side, shares or price out of range: dropped */
    BOOK_RESULT_COUNT
} book_result_t;

/* "ok", "ignored", "anomaly", "unknown-ref", "dup-ref", "no-order", "no-level", "invalid". */
const char *book_result_name(book_result_t r);

/* The live order an event touched (E, C, X, D, U), as it was found. */
typedef struct book_fill {
    uint64_t ref;       /* the order (U: the original reference) */
    int64_t price;      /* its limit price */
    int64_t exec_price; /* E: the order's price; C: the message's price; others 0 */
    uint64_t shares;    /* E, C executed, X cancelled, D and U removed; never more than the
                           order had (in an anomaly, what it had; the message's figure is in
                           the event) */
    uint64_t remaining; /* shares left on the order afterwards (0: it is gone) */
    int64_t bbo_px;     /* when bbo_side is set: that side's best price after the event (0: the
                           side is empty), as book_best_px gives it */
    uint16_t locate;
    uint8_t side;        /* 'B' or 'S'; 0 when the event touched no live order */
    uint8_t bbo_side;    /* 'B' or 'S' when the event changed that side's best price, emptied the
                            side or gave it its first level (so every change of book_best_px of
                            bbo_locate is reported; an event changes at most one side); 0: the
                            best prices of every symbol are as they were. Any result, not only
                            BOOK_OK and BOOK_ANOMALY: a U whose new order is refused has still
                            removed the original */
    uint16_t bbo_locate; /* the symbol of bbo_side */
    uint8_t result;      /* the book_result_t returned for the event */
} book_fill_t;

/* One price level, as book_depth() reports it. */
typedef struct book_level {
    int64_t price;
    uint64_t shares; /* sum of the shares left on its orders */
    uint32_t orders; /* live orders at this price */
} book_level_t;

/* One live order, as book_order() reports it. */
typedef struct book_order {
    uint64_t ref;
    int64_t price;
    uint64_t shares; /* left */
    uint16_t locate;
    uint8_t side; /* 'B' or 'S' */
} book_order_t;

/* Per-symbol counts; index 0 is the bid side, 1 the ask side. */
typedef struct book_symbol {
    uint32_t orders[2];
    uint32_t levels[2];
} book_symbol_t;

typedef struct book_stats {
    uint32_t max_orders, max_levels, max_locate; /* the config */
    uint64_t orders, levels;                     /* live now */
    uint64_t orders_peak, levels_peak;           /* most at once */
    uint64_t far_orders, far_peak; /* live orders in the far table (see book.h): now, most */
    uint64_t far_moves;            /* orders moved there since init */
    uint64_t events;               /* events given to book_apply */
    uint64_t applied;              /* BOOK_OK or BOOK_ANOMALY */
    uint64_t ignored;              /* BOOK_IGNORED */
    uint64_t unknown_refs, dup_refs;
    uint64_t orders_exhausted, levels_exhausted; /* adds dropped for want of capacity */
    uint64_t anomalies, invalid;
} book_stats_t;

/* Internal: one symbol side (levels from best to worst). 32 bytes, so a locate's two sides
 * share one cache line of the 64-byte aligned side array. */
typedef struct book_side {
    uint32_t head, tail;     /* the list of levels not in the window, best to worst: level indices,
                                UINT32_MAX when it is empty */
    uint32_t levels, orders; /* all levels (window and list), orders */
    uint32_t win;            /* its price window (index in wins), UINT32_MAX: none yet */
    uint32_t wbase;  /* the window's base tick, low 32 bits: the prefetch finds the window slot
                        from this line alone (a wrong guess only costs a useless hint) */
    int64_t best_px; /* the best level's price, 0 when the side is empty */
} book_side_t;

typedef struct book {
    struct book_ord *odir; /* the direct order table: order ref in slot ref & dmask */
    struct book_ord *ofar; /* the far table: open addressing, orders moved out of odir */
    pool_t levels;         /* struct book_lvl (32 bytes) */
    struct book_lvl *lvl;  /* the pool's objects, so level i is lvl + i */
    uint64_t *lhash;       /* (price, locate, side) -> level: (hash >> 32) << 32 | (index + 1) */
    book_side_t *sides;    /* [(max_locate + 1) * 2]: locate * 2 + (side == 'S') */
    struct book_win *wins; /* [nwin] price windows, given to sides as they first need one */
    uint32_t nwin, wused;
    uint32_t dmask, fmask, lmask; /* slots - 1 */
    uint32_t fshift, lshift;      /* home slot = (hash >> 32) >> shift */
    uint64_t far_max;             /* highest reference in ofar since it was last empty */
    book_config_t cfg;
    mem_obj_t oobj; /* the order table in the memory report ("book.orders") */
    /* Counters: written by the owner with MEM_ST, read by book_stats() from any thread. */
    _Atomic uint32_t olive, opeak;       /* live orders now, most at once */
    _Atomic uint32_t far_live, far_peak; /* the same in the far table */
    _Atomic uint64_t far_moves;          /* orders moved to the far table */
    _Atomic uint64_t events, applied, ignored, unknown_refs, dup_refs, orders_exhausted,
        levels_exhausted, anomalies, invalid;
} book_t;

/* Allocate everything for cfg (MEM_TAG_BOOK, backed by RAM now) and register both pools with
 * the memory report. 0, -EINVAL (a capacity of 0, above BOOK_MAX_CAPACITY, or max_locate out of
 * range) or -ENOMEM; on failure nothing stays allocated. Call before mem_seal(). */
int book_init(book_t *b, const book_config_t *cfg);
/* Free everything. A zeroed or already finished book is accepted. */
void book_fini(book_t *b);
/* Empty every book at once (a new trading day); counters are kept. Allocates nothing. */
void book_reset(book_t *b);

/* Apply one event. Returns what happened (see book_result_t); never fails otherwise. If fill is
 * not NULL it is always written: the live order the event touched (E, C, X, D, and for U the
 * original, which is gone whatever happens to the new order), or all zeros when none was. A
 * and F need locate 1..max_locate, side 'B' or 'S', shares 1..BOOK_SHARES_MAX and price
 * 0..BOOK_PRICE_MAX; U's new order gets the original's locate and side. Events other than A and
 * F are keyed by reference alone (ITCH references are unique for the day). Allocates nothing. */
book_result_t book_apply(book_t *b, const ev_t *e, book_fill_t *fill);
/* Apply ev[0..n) in order, exactly as n calls of book_apply would, with fills[i] written for
 * ev[i] (fills, when not NULL, holds n entries); while applying one event it prefetches the
 * table lines that a later one will need. Returns how many events changed the book (BOOK_OK or
 * BOOK_ANOMALY). Allocates nothing. */
size_t book_apply_batch(book_t *b, const ev_t *ev, size_t n, book_fill_t *fills);
/* book_apply_batch over one run of a longer batch, for a caller that works on each run's fills
 * before the next (engine/shard): ev[0..n) are applied; ev[n..n + ahead), the events that follow
 * in the batch, are only read for prefetch hints, so the hints run on across runs as in one
 * batch. first: nonzero for a batch's first run (its first events are hinted here; a later run's
 * were hinted by the run before, given the same ahead). Allocates nothing. */
size_t book_apply_run(book_t *b, const ev_t *ev, size_t n, size_t ahead, int first,
                      book_fill_t *fills);

/* Prefetch hints for an event that will be applied soon (nothing changes): stage 0 about
 * BOOK_PREFETCH_FAR events ahead of it, stage 1 about BOOK_PREFETCH_NEAR ahead (stage 1 reads the
 * lines stage 0 asked for). book_apply_batch does this itself; a caller that applies events one
 * by one (engine/shard) calls it. Owner thread only. */
#define BOOK_PREFETCH_FAR  16
#define BOOK_PREFETCH_NEAR 8
void book_prefetch(const book_t *b, const ev_t *e, int stage);

/* Best bid and offer of a symbol. Returns -EINVAL for a locate above max_locate, else a mask:
 * 1 if there is a bid, 2 if there is an offer; an empty side reports price 0 and size 0. Any
 * out pointer may be NULL. */
int book_best(const book_t *b, uint16_t locate, int64_t *bid_px, uint64_t *bid_sz, int64_t *ask_px,
              uint64_t *ask_sz);
/* Best bid and offer prices only, as book_best gives them (same mask, 0 for an empty side), from
 * the one cache line that holds the locate's two sides: no level is read. Inline for the
 * worker's per-event quote; owner thread. */
static inline int book_best_px(const book_t *b, uint16_t locate, int64_t *bid_px, int64_t *ask_px)
{
    if (locate > b->cfg.max_locate)
        return -EINVAL;
    const book_side_t *sd = &b->sides[(size_t)locate * 2];
    *bid_px = sd[0].best_px;
    *ask_px = sd[1].best_px;
    return (sd[0].levels != 0) | (sd[1].levels != 0) << 1;
}

/* The best n levels of one side ('B' or 'S'), best first, into out[0..n). Returns how many
 * were written (fewer when the side has fewer levels), or -EINVAL (locate or side). */
int book_depth(const book_t *b, uint16_t locate, uint8_t side, uint32_t n, book_level_t *out);
/* A live order by reference: 0, or -ENOENT. */
int book_order(const book_t *b, uint64_t ref, book_order_t *out);
/* Live order and level counts of a symbol: 0, or -EINVAL (locate). */
int book_symbol(const book_t *b, uint16_t locate, book_symbol_t *out);
/* Counters and capacities. Any thread (figures of one moment, not a consistent cut). */
void book_stats(const book_t *b, book_stats_t *out);

/* A checksum of a symbol's levels that depends only on their contents, so two books that agree
 * level for level agree here (for invariance tests). With mix() the splitmix64 finalizer
 * (x ^= x >> 30; x *= 0xbf58476d1ce4e5b9; x ^= x >> 27; x *= 0x94d049bb133111eb;
 * x ^= x >> 31), starting from h = 0x6a09e667f3bcc908 ^ locate, for the bid side then the ask
 * side, each level from best to worst: h = mix(h ^ price); h = mix(h ^ shares);
 * h = mix(h ^ (orders << 8 | side byte)); then after each side: h = mix(h ^ levels on the side).
 * Returns 0 for a locate above max_locate. */
uint64_t book_checksum(const book_t *b, uint16_t locate);

#endif
