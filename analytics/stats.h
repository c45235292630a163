/*
 * stats: per-symbol trade statistics and OHLCV bars, fed by normalized events (event/event.h).
 *
 * What is a trade (NASDAQ TotalView-ITCH 5.0): E (order executed; its price is the resting
 * order's, which the caller takes from its book and passes as exec_price), C (executed with
 * its own price; printable 'N' is ignored entirely, as the specification recommends, so that
 * cross volume is not counted twice), P (non-displayed match), Q (cross: its shares at the
 * cross price count as one trade; Q with 0 shares, no cross, is not a trade), and CSV 't'.
 * CSV 'q' and stats_quote() (the caller's book BBO) give bid/ask, mid and spread. B (broken
 * trade) reverses a trade found by its match number in a bounded map of the last
 * match_capacity trades (a FIFO sorted by match number, which ITCH assigns in rising order; a
 * trade whose match number is not above the last stored is counted in match_unordered and
 * cannot be reversed; CSV trades have none): its shares, notional and count are taken off
 * the symbol's totals and off the open bar if the trade is in it; a bar already closed is not
 * rewritten, and a break never undoes the trade's effect on open/high/low/close or on the last
 * price. A break whose trade fell out of the map (or was never seen) is counted, not applied.
 *
 * Bars: bar k covers [k * bar_ns, (k + 1) * bar_ns) on the event timestamp scale (since
 * midnight for ITCH, since the epoch for CSV). Time drives closing: stats_advance(ts) (and
 * stats_apply, with each event's ts) closes every bar that ended at or before ts, for every
 * tracked symbol at once. A trade older than the open bar (out-of-order input) is counted
 * late and goes into the open bar. Missing data: a bar without trades of a symbol that has
 * traded before is carried (open = high = low = close = previous close, volume 0, flag
 * STATS_BAR_CARRIED, log return 0); a symbol with no trade yet has no price (flag
 * STATS_BAR_NOPRICE, prices 0, return NaN); a bar's log return is ln(close / previous close),
 * NaN on a symbol's first priced bar (no previous close: the return is missing, not 0). The bar
 * open when the input ends is closed by stats_close_open (end of input / of the session), so the
 * last close counts: T daily closes give T - 1 returns, as log returns of consecutive closes do.
 * Rows for the covariance module (stats_bar_row) carry NaN for no price, so the consumer decides
 * whether to drop or fill. Each symbol keeps its last bar_history closed bars in a ring. After one
 * advance that jumps more than bar_history bars, the bars that fell out are closed in closed form
 * (carried, returns of 0 merged into the variance at once) without being stored or reported to the
 * callback (counted in bars_skipped), so a gap costs O(symbols * bar_history), not O(gap).
 *
 * Volatility: for each symbol, the sample variance (n - 1) of its per-bar log returns over
 * every closed bar after its first priced bar, carried bars included (return 0), by Welford's
 * update on values shifted by the first one; vol = its square root, per bar and not
 * annualized (multiply by sqrt(bars per year) for that).
 *
 * Memory: stats_init allocates everything (tag MEM_TAG_STATS): a locate -> slot map, max_symbols
 * symbol slots (given on a symbol's first trade or quote; when all are taken, the new symbol's
 * events are dropped and counted in sym_full), their bar rings (a ring is marked empty when its
 * slot is given, so start-up and a new session write no ring of a slot not in use), the match
 * map. Nothing is
 * allocated afterwards. One thread owns a stats_t (a shard worker): nothing here is
 * thread-safe, and the counters are plain fields that thread reads.
 */
#ifndef TICKCORE_ANALYTICS_STATS_H
#define TICKCORE_ANALYTICS_STATS_H

#include "event/event.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_BAR_NS_MIN  1000000000ull     /* 1 s */
#define STATS_BAR_NS_MAX  86400000000000ull /* 1 d */
#define STATS_HISTORY_MAX (1u << 20)        /* bars kept per symbol */
#define STATS_MATCH_MAX   (1u << 28)        /* match map entries */

typedef struct stats stats_t;

/* Called once per closed bar k (ascending), after every symbol has closed it, from inside
 * stats_advance/stats_apply on the owner thread. The callback may read bars and rows (e.g.
 * stats_bar_row(st, k, ...)) but must not apply events or advance. */
typedef void stats_bar_fn(void *ctx, const stats_t *st, uint64_t k);

typedef struct stats_cfg {
    uint32_t max_locate;     /* locates 1..max_locate are accepted (<= 65535) */
    uint32_t max_symbols;    /* symbols tracked at once, 1..max_locate */
    uint64_t bar_ns;         /* bar interval, STATS_BAR_NS_MIN..STATS_BAR_NS_MAX */
    uint32_t bar_history;    /* closed bars kept per symbol, 1..STATS_HISTORY_MAX */
    uint32_t match_capacity; /* recent trades kept for breaks, 0..STATS_MATCH_MAX */
    stats_bar_fn *on_bar;    /* optional */
    void *on_bar_ctx;
} stats_cfg_t;

enum {
    STATS_BAR_CARRIED = 1u << 0, /* no trade in the bar: prices are the previous close */
    STATS_BAR_NOPRICE = 1u << 1, /* the symbol had not traded yet: prices 0, ret NaN */
};

/* One bar; prices in 1/EV_PRICE_SCALE dollars. 64 bytes. */
typedef struct stats_bar {
    uint64_t k; /* bar number: the bar starts at k * bar_ns */
    int64_t open, high, low, close;
    uint64_t volume; /* net of breaks applied while the bar was open */
    double vwap;     /* dollars, NaN when the bar has no volume */
    double ret;      /* ln(close / previous close); 0 when carried; NaN without both */
    double mid_ret;  /* ln(mid at the bar's end / mid at the previous bar's end), from the
                        quotes (book BBO or CSV q); NaN unless both mids are known */
    uint32_t trades;
    uint32_t flags;
} stats_bar_t;

/* A symbol's figures, computed by stats_get. */
typedef struct stats_sym {
    uint64_t trades;         /* trades counted, net of breaks */
    uint64_t volume;         /* shares, net of breaks */
    double notional;         /* dollars, net of breaks */
    double vwap;             /* notional / volume, dollars; NaN when volume is 0 */
    int64_t last;            /* last trade price (1/EV_PRICE_SCALE $); 0 = no trade yet */
    int64_t open, high, low; /* the session's first, highest and lowest trade price; 0 = none
                                (breaks do not undo them, as for bars) */
    uint64_t last_ts;        /* timestamp of the last trade */
    int64_t bid, ask;        /* last BBO given (1/EV_PRICE_SCALE $); 0 = side absent */
    double mid;              /* dollars, NaN unless both sides are present */
    double spread;   /* ask - bid in dollars, NaN unless both sides (may be <= 0: crossed) */
    uint64_t ret_n;  /* bar returns in the variance */
    double ret_mean; /* mean bar log return */
    double ret_var;  /* sample variance of bar log returns; NaN when ret_n < 2 */
    double vol;      /* sqrt(ret_var): per-bar realized volatility, not annualized */
    uint64_t breaks; /* trades of this symbol reversed by B */
} stats_sym_t;

/* Welford's running mean and variance, on values shifted by the first one (so a large common
 * offset costs no precision). Exposed for tests and other modules. */
typedef struct stats_welford {
    uint64_t n;
    double shift; /* the first value */
    double mean;  /* mean of (x - shift) */
    double m2;    /* sum of squared deviations from the mean */
} stats_welford_t;

static inline void stats_welford_add(stats_welford_t *w, double x)
{
    if (w->n == 0)
        w->shift = x;
    double y = x - w->shift;
    w->n++;
    double d = y - w->mean;
    w->mean += d / (double)w->n;
    w->m2 += d * (y - w->mean);
}

/* Add m copies of x at once (Chan et al.'s merge of two sets). */
static inline void stats_welford_add_n(stats_welford_t *w, double x, uint64_t m)
{
    if (m == 0)
        return;
    if (w->n == 0)
        w->shift = x;
    double y = x - w->shift;
    uint64_t n = w->n + m;
    double d = y - w->mean;
    w->mean += d * ((double)m / (double)n);
    w->m2 += d * d * ((double)w->n * (double)m / (double)n);
    w->n = n;
}

static inline double stats_welford_mean(const stats_welford_t *w)
{
    return w->n ? w->shift + w->mean : NAN;
}

/* Sample variance (divides by n - 1); NaN when n < 2. */
static inline double stats_welford_var(const stats_welford_t *w)
{
    return w->n < 2 ? NAN : w->m2 / (double)(w->n - 1);
}

/* 128-bit accumulator for price * shares sums (GCC/Clang extension). */
__extension__ typedef __int128 stats_i128;

typedef struct stats_match_entry {
    uint64_t match;
    int64_t price;
    uint64_t shares;
    uint64_t k; /* bar the trade went into */
    uint16_t locate;
    uint8_t flags;
} stats_match_entry_t;

/* Per-symbol state (internal; use stats_get). */
typedef struct stats_slot {
    uint64_t trades, volume;
    stats_i128 notional; /* price units * shares */
    int64_t last;
    uint64_t last_ts;
    int64_t bid, ask;
    int64_t prev_close;                  /* close of the last closed priced bar; 0 = none */
    int64_t day_open, day_high, day_low; /* the session's trades; 0 = none */
    int64_t prev_mid2; /* bid + ask at the end of the last closed bar; 0 = no two-sided quote */
    /* open bar */
    int64_t o, h, l, c;
    uint64_t bv;
    stats_i128 bnotional;
    uint32_t bn;
    uint8_t bpx; /* the open bar has seen a trade (OHLC valid) */
    uint16_t locate;
    stats_welford_t ret;
    uint64_t breaks;
} stats_slot_t;

struct stats {
    stats_cfg_t cfg;
    uint16_t *dense;    /* [max_locate + 1]: locate -> slot index (1-based), 0 = none */
    stats_slot_t *syms; /* [max_symbols + 1], slot 0 unused */
    stats_bar_t *bars;  /* [max_symbols * bar_history], symbol i at (i - 1) * H */
    uint32_t nsyms;
    int has_origin;
    uint64_t origin;   /* first bar number */
    uint64_t cur;      /* the open bar */
    uint64_t open_end; /* (cur + 1) * bar_ns, saturated */
    /* match map: FIFO of the last match_capacity trades, match numbers increasing */
    stats_match_entry_t *ment;
    uint32_t mhead, mcount;
    uint64_t mlast; /* the last match number stored */
    size_t dense_bytes, syms_bytes, bars_bytes, ment_bytes;
    /* counters (owner thread) */
    uint64_t events;        /* events given to stats_apply */
    uint64_t trades;        /* trades counted (before breaks) */
    uint64_t nonprintable;  /* C with printable 'N' */
    uint64_t empty_crosses; /* Q with 0 shares */
    uint64_t unpriced;      /* E without a price from the book (exec_price <= 0) */
    uint64_t bad;      /* trades or quotes with locate 0 / out of range, price <= 0 or 0 shares */
    uint64_t sym_full; /* events dropped because every symbol slot was taken */
    uint64_t late;     /* trades older than the open bar, put into it */
    uint64_t breaks;   /* B applied */
    uint64_t breaks_unknown;  /* B whose match is not in the map (too old, or never seen) */
    uint64_t breaks_repeated; /* B of a trade already broken */
    uint64_t breaks_noop;     /* B of a trade that was not counted (non-printable C) */
    uint64_t matches_evicted; /* trades pushed out of the map (no longer reversible) */
    uint64_t match_unordered; /* trades whose match number was not above the last stored one:
                                 not stored, so not reversible */
    uint64_t quotes;
    uint64_t bars_closed;  /* bar intervals closed */
    uint64_t bars_skipped; /* closed by a jump, never stored nor reported */
    uint64_t sessions;     /* stats_new_session calls */
};

/* Allocate everything from cfg (copied). 0, -EINVAL (bad config; st is zeroed, so fini is
 * safe), -ENOMEM. Control path, any thread; the owner thread uses it afterwards. */
int stats_init(stats_t *st, const stats_cfg_t *cfg);
/* Free everything. Safe on a zeroed or already finished stats_t. */
void stats_fini(stats_t *st);
/* A new trading session (the next day's file): forget every symbol, bar, quote, the clock and
 * the break map; the counters carry on. Allocates nothing. Owner thread. */
void stats_new_session(stats_t *st);

/* Apply one event: advances time to e->ts, then counts a trade (E, C, P, Q, t), a quote (q)
 * or a break (B); other types only advance time. exec_price is used for E only: the price of
 * the executed order from the caller's book (<= 0 when unknown: counted in unpriced, not a
 * trade). Returns the bars closed by the advance (>= 0). Owner thread; allocates nothing. */
int stats_apply(stats_t *st, const ev_t *e, int64_t exec_price);

/* Best bid and ask of a symbol from the caller's book (0 or less = side absent). 0, -EINVAL
 * (bad locate, counted in bad), -ENOSPC (no symbol slot, counted in sym_full). */
int stats_quote(stats_t *st, uint16_t locate, int64_t bid, int64_t ask);
/* One side of it: side 'B' sets the bid, anything else the ask. A caller whose book reports
 * which side's best price an event changed (analytics/book's fill: bbo_side) calls this for
 * those events only, and the symbol's bid and ask stay what stats_quote after every book change
 * would have left (one call per change, not per event; so quotes and sym_full count changes).
 * Same returns as stats_quote. Inline: a symbol that has its slot costs a load and a store. */
static inline int stats_quote_side(stats_t *st, uint16_t locate, uint8_t side, int64_t px);
/* stats_quote_side's slow path: a locate out of range or without a slot yet. */
int stats_quote_side_slow(stats_t *st, uint16_t locate, uint8_t side, int64_t px);

/* 1 for the event types stats_apply does more with than move the clock (E C P Q t q B), else 0:
 * one load, where the hot loops test every event's type. */
extern const uint8_t stats_type_tab[256];

static inline int stats_type_counts(uint8_t t)
{
    return stats_type_tab[t];
}

/* stats_apply, with the common case inline: an event of a type that only moves the clock, inside
 * the open bar, is counted and nothing else happens. Same result as stats_apply. */
static inline int stats_step(stats_t *st, const ev_t *e, int64_t exec_price)
{
    if (__builtin_expect(e->ts < st->open_end && st->has_origin && !stats_type_counts(e->type),
                         1)) {
        st->events++;
        return 0;
    }
    return stats_apply(st, e, exec_price);
}

static inline int stats_quote_side(stats_t *st, uint16_t locate, uint8_t side, int64_t px)
{
    uint32_t d = locate <= st->cfg.max_locate ? st->dense[locate] : 0; /* dense[0] stays 0 */
    if (__builtin_expect(d == 0, 0))
        return stats_quote_side_slow(st, locate, side, px);
    int64_t *q = side == 'B' ? &st->syms[d].bid : &st->syms[d].ask;
    *q = px > 0 ? px : 0;
    st->quotes++;
    return 0;
}

/* Close every bar that ended at or before ts, for every symbol; the first call (or first
 * event) sets the origin. Returns the number of bars closed (>= 0; capped at INT32_MAX in the
 * return value, the counters are exact). Owner thread; allocates nothing. */
int stats_advance(stats_t *st, uint64_t ts);

/* End of input (or of the session): close the open bar now, as if time had reached its end,
 * so the last bar's close and return count like any other (the on_bar callback runs for it).
 * Without it the bar still open when the data stops would never close and every symbol would
 * lose its last return (a daily-close file its last day). Call it once, when no more events of
 * the session follow: an event timestamped inside the bar just closed would count as late.
 * Returns the bars closed (0 before the first event, else 1). Owner thread; allocates nothing. */
int stats_close_open(stats_t *st);

/* The figures of one symbol. 0, -EINVAL (locate out of range), -ENOENT (never seen). */
int stats_get(const stats_t *st, uint16_t locate, stats_sym_t *out);

/* Closed bar k of a symbol. 0, -EINVAL, -ERANGE (k not among the last bar_history closed
 * bars), -ENOENT (symbol never seen). A symbol first seen after bar k gets a NOPRICE bar. */
int stats_bar(const stats_t *st, uint16_t locate, uint64_t k, stats_bar_t *out);
/* The open (not yet closed) bar of a symbol, as it stands; ret NaN. Same errors. */
int stats_open_bar(const stats_t *st, uint16_t locate, stats_bar_t *out);

/* The bar that is open now; -1 as unsigned before the first event (no origin). */
static inline uint64_t stats_open_k(const stats_t *st)
{
    return st->has_origin ? st->cur : UINT64_MAX;
}

typedef enum stats_row_kind {
    STATS_ROW_CLOSE,   /* closing price in dollars; NaN without a price */
    STATS_ROW_LOGRET,  /* the bar's log return; NaN without one */
    STATS_ROW_LOGRET0, /* the same with 0 where there is none (no price yet, first priced bar,
                          symbol never seen): analytics/covariance refuses NaN and enters 0 */
    STATS_ROW_MIDRET,  /* the mid-quote log return, or the trade log return where the symbol
                          has no two-sided quote at both ends; NaN without either. Mid returns
                          are free of bid-ask bounce, which attenuates trade-price correlations
                          when a bar holds few trades */
} stats_row_kind_t;

/* One row across symbols for closed bar k: out[i] for locs[i], or, with locs NULL, for locate
 * i + 1 (n <= max_locate). Symbols never seen give NaN. 0, -EINVAL, -ERANGE. */
int stats_bar_row(const stats_t *st, uint64_t k, stats_row_kind_t kind, const uint16_t *locs,
                  size_t n, double *out);

/* The n symbols with the largest volume (ties: lower locate first), best first, among symbols
 * with volume > 0. Returns how many were written to out (<= n). Partial selection with a heap
 * in out itself: O(symbols * log n), no allocation, no qsort. */
size_t stats_top_by_volume(const stats_t *st, size_t n, uint16_t *out);

#endif
