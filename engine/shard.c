/*
 * shard: see shard.h. The stats get a quote only when an event changed a best price: the book
 * says which side of which symbol in the event's fill (bbo_side, bbo_px), and that side goes to
 * stats_quote_side, so the stats' bid and ask are always the book's best bid and offer as it
 * stands after the event (0 for an empty side), at about a fifth of the calls of a quote per
 * book change. shard_apply works in runs of SHARD_RUN events: the book applies a run with its
 * batch loop (book_apply_run: its two-stage prefetch inline, hints running on into the next run),
 * writing one fill per event into the shard's fills, then the stats take the run's events in
 * order with their fills (stats_run: a branch-free pass marks the events that need more than a
 * tick of the stats' event counter, about one in six, and only those are visited; the per-result
 * counts are the book's own counters, shard_by_result). Nothing the stats do reads the book (the
 * bar callback reads the stats only), so the stats see exactly what event-at-a-time application
 * would give them; a book snapshot due before an event cuts the run there, so it sees the book
 * and stats of the events before it and no more.
 */
#include "engine/shard.h"

#include "base/hints.h"
#include "mem/mem.h"

#include <string.h>

static_assert(SHARD_RUN <= 64, "stats_run marks a run's events in one 64-bit mask");

/* The stats' bar callback: the caller's first (the cross-section row), then the export. */
static void shard_on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    shard_t *s = ctx;
    if (s->on_bar)
        s->on_bar(s->on_bar_ctx, st, k);
    if (s->xw)
        export_bar(s->xw, st, k);
}

int shard_init(shard_t *s, const config_t *cfg, unsigned nshards, stats_bar_fn *on_bar, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->snap_next = UINT64_MAX;
    s->on_bar = on_bar;
    s->on_bar_ctx = ctx;
    book_config_t bc;
    book_config_default(&bc);
    /* one shard's share of the capacities, with a quarter spare for uneven symbols */
    uint64_t orders = nshards > 1 ? (uint64_t)cfg->max_orders * 5 / 4 / nshards : cfg->max_orders;
    uint64_t levels = nshards > 1 ? (uint64_t)cfg->max_levels * 5 / 4 / nshards : cfg->max_levels;
    bc.max_orders = (uint32_t)(orders < 16 ? 16 : orders);
    bc.max_levels = (uint32_t)(levels < 16 ? 16 : levels);
    bc.max_locate = BOOK_MAX_LOCATE;
    int rc = book_init(&s->book, &bc);
    if (rc < 0)
        return rc;
    stats_cfg_t sc = {
        .max_locate = 65535,
        .max_symbols = cfg->max_symbols,
        .bar_ns = cfg->bar_interval_ns,
        .bar_history = cfg->bar_history,
        .match_capacity = cfg->break_window,
        .on_bar = shard_on_bar,
        .on_bar_ctx = s,
    };
    rc = stats_init(&s->stats, &sc);
    if (rc < 0) {
        book_fini(&s->book);
        return rc;
    }
    return 0;
}

void shard_fini(shard_t *s)
{
    stats_fini(&s->stats);
    book_fini(&s->book);
}

void shard_by_result(const shard_t *s, uint64_t out[BOOK_RESULT_COUNT])
{
    book_stats_t bs;
    book_stats(&s->book, &bs);
    out[BOOK_OK] = bs.applied - bs.anomalies; /* the book counts an anomaly in both */
    out[BOOK_IGNORED] = bs.ignored;
    out[BOOK_ANOMALY] = bs.anomalies;
    out[BOOK_UNKNOWN_REF] = bs.unknown_refs;
    out[BOOK_DUP_REF] = bs.dup_refs;
    out[BOOK_NO_ORDER] = bs.orders_exhausted;
    out[BOOK_NO_LEVEL] = bs.levels_exhausted;
    out[BOOK_INVALID] = bs.invalid;
}

void shard_set_trades_out(shard_t *s, csvout_t *w, const symtab_t *t)
{
    s->trades_out = w;
    s->symbols = t;
}

void shard_set_export(shard_t *s, export_worker_t *xw)
{
    s->xw = xw;
    s->snap_next = xw && xw->part[EXPORT_KIND_BOOK].buf ? 0 : UINT64_MAX;
}

void shard_new_session(shard_t *s)
{
    book_reset(&s->book);
    stats_new_session(&s->stats);
    if (s->xw) {
        export_new_session(s->xw);
        s->snap_next = s->xw->part[EXPORT_KIND_BOOK].buf ? 0 : UINT64_MAX;
    }
}

/* Cold: the book snapshot due before the event at ts. */
static HINT_COLD void snapshot(shard_t *s, uint64_t ts)
{
    export_book(s->xw, &s->book, &s->stats, ts);
    s->snap_next = s->xw->snap_next;
}

/* The trade an event makes, as the stats count it (see analytics/stats.h). */
static void export_trade(shard_t *s, const ev_t *e, int64_t exec_price, uint8_t book_side)
{
    int64_t px;
    uint8_t side = e->side;
    switch (e->type) {
    case 'E':
        px = exec_price;
        side = book_side;
        break;
    case 'C':
        if (e->aux == 'N')
            return;
        px = e->price;
        side = book_side;
        break;
    case 'P':
    case EV_CSV_TRADE:
        px = e->price;
        break;
    case 'Q':
        if (e->shares == 0)
            return;
        px = e->price;
        side = 0;
        break;
    default:
        return;
    }
    if (px <= 0 || e->shares == 0 || e->locate == 0)
        return;
    csvout_trade(s->trades_out, e->ts, symtab_name(s->symbols, e->locate), px, e->shares,
                 side == 'B' || side == 'S' ? side : 0);
}

/* book_prefetch's stage 0 reads the event it hints for, so the event's line is asked for this
 * far ahead first. Routed events are scattered over the batch (a worker reads 1/K of its lines)
 * and the hardware prefetcher cannot follow them; the whole batch of shard_apply is sequential,
 * but it was written by the reader on the other core and the first read of each line stalled
 * there (a third of book_prefetch's samples in perf, on the load of e->ref). */
#define ROUTED_PREFETCH_EVENT (2 * BOOK_PREFETCH_FAR)
#define SHARD_PREFETCH_EVENT  (2 * BOOK_PREFETCH_FAR)

static inline void prefetch_event(const ev_t *e)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)e)); /* kept, like book.c's */
#else
    __builtin_prefetch(e, 0);
#endif
}

/* The stats' part of one event the book has applied (f: its fill). */
static inline void stats_one(shard_t *s, const ev_t *e, const book_fill_t *f)
{
    stats_step(&s->stats, e, f->exec_price);
    if (unlikely(s->trades_out != NULL))
        export_trade(s, e, f->exec_price, f->side);
    if (f->bbo_side)
        (void)stats_quote_side(&s->stats, f->bbo_locate, f->bbo_side, f->bbo_px);
}

/* The stats' part of a run the book has just applied (ev[0..m), fills[0..m), m <= 64): what
 * stats_one per event gives, at less cost. About five events in six (an add, a delete or a
 * replace inside the open bar that changes no best price) only count in the stats' events. A
 * first pass marks the others in a mask, without a branch: a type the stats count (E C P Q t q B;
 * every trade the export writes is one), a timestamp at or past end (the open bar's end as the
 * run starts; 0 without an origin, so every event), a best price changed. The second walks the
 * mask's set bits in feed order and counts the plain events before each. The open bar's end only
 * moves forward, so an event inside the open bar when the run starts is still inside it when its
 * turn comes. The first pass also asks for the event lines the next run's book hints will read
 * (pf[0..pf_n)). */
static inline void stats_run(shard_t *s, const ev_t *ev, size_t m, const book_fill_t *fills,
                             const ev_t *pf, size_t pf_n)
{
    stats_t *st = &s->stats;
    uint64_t end = st->has_origin ? st->open_end : 0, need = 0;
    for (size_t j = 0; j < m; j++) {
        if (j < pf_n)
            prefetch_event(&pf[j]);
        uint64_t x = stats_type_tab[ev[j].type] | (ev[j].ts >= end) | (fills[j].bbo_side != 0);
        need = need >> 1 | x << 63; /* shifted in from the top: no shift by a variable */
    }
    if (m < 64)
        need >>= 64 - m; /* event j at bit j */
    size_t next = 0;     /* the first event not yet counted */
    while (need) {
        size_t j = (size_t)__builtin_ctzll(need);
        need &= need - 1;
        st->events += j - next;
        next = j + 1;
        const ev_t *e = &ev[j];
        const book_fill_t *f = &fills[j];
        stats_step(st, e, f->exec_price);
        if (unlikely(s->trades_out != NULL))
            export_trade(s, e, f->exec_price, f->side);
        if (f->bbo_side)
            (void)stats_quote_side(st, f->bbo_locate, f->bbo_side, f->bbo_px);
    }
    st->events += m - next;
}

/* One event, book then stats (the part and routed paths). Every event goes to the book, which
 * ignores (and counts) the types it has no use for, as in shard_apply's runs. */
static inline void apply_one(shard_t *s, const ev_t *e)
{
    book_fill_t fill;
    book_apply(&s->book, e, &fill);
    stats_one(s, e, &fill);
}

/* The book's prefetch hints for the events FAR and NEAR places after i (see book_prefetch). */
static inline void prefetch_ahead(const shard_t *s, const ev_t *ev, size_t i, size_t n)
{
    if (i + BOOK_PREFETCH_FAR < n)
        book_prefetch(&s->book, &ev[i + BOOK_PREFETCH_FAR], 0);
    if (i + BOOK_PREFETCH_NEAR < n)
        book_prefetch(&s->book, &ev[i + BOOK_PREFETCH_NEAR], 1);
}

void shard_apply(shard_t *s, const ev_t *ev, size_t n)
{
    for (size_t i = 0; i < n && i < SHARD_PREFETCH_EVENT; i++)
        prefetch_event(&ev[i]);
    for (size_t i = 0; i < n;) {
        size_t m = n - i < SHARD_RUN ? n - i : SHARD_RUN;
        if (unlikely(s->snap_next != UINT64_MAX)) { /* cut the run at the next snapshot */
            size_t j = 0;
            if (ev[i].ts >= s->snap_next) {
                snapshot(s, ev[i].ts);
                j = 1;
            }
            while (j < m && ev[i + j].ts < s->snap_next)
                j++;
            m = j;
        }
        book_apply_run(&s->book, &ev[i], m, n - i - m, i == 0, s->fills);
        /* while the stats run, the event lines the next run's book hints will read */
        size_t next = i + m + BOOK_PREFETCH_FAR;
        stats_run(s, &ev[i], m, s->fills, &ev[next < n ? next : n], next < n ? n - next : 0);
        i += m;
    }
    s->events += n;
}

size_t shard_apply_part(shard_t *s, const ev_t *ev, size_t n, const uint8_t *owner, uint8_t id)
{
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &ev[i];
        if (unlikely(e->ts >= s->snap_next))
            snapshot(s, e->ts);
        if (owner[e->locate] == id) {
            prefetch_ahead(s, ev, i, n); /* another shard's event only costs a hint */
            apply_one(s, e);
            mine++;
        } else {
            stats_advance(&s->stats, e->ts); /* the clock is everyone's */
        }
    }
    s->events += mine;
    return mine;
}

/* Another shard's event that moves the clock or crosses a book snapshot boundary. */
static inline void advance_mark(shard_t *s, uint64_t ts)
{
    if (unlikely(ts >= s->snap_next))
        snapshot(s, ts);
    stats_advance(&s->stats, ts);
}

void shard_apply_routed(shard_t *s, const ev_t *ev, const uint32_t *own, size_t n,
                        const uint32_t *marks, size_t nmarks)
{
    for (size_t i = 0; i < n && i < ROUTED_PREFETCH_EVENT; i++)
        prefetch_event(&ev[own[i]]);
    size_t i = 0;
    for (size_t j = 0; j <= nmarks; j++) {
        /* the run of own events up to mark j (a mark at an own event's position is that
         * event's own advance; re-advancing to it afterwards is a no-op), then the mark */
        uint32_t end = j < nmarks ? marks[j] : UINT32_MAX;
        for (; i < n && own[i] <= end; i++) {
            uint32_t pos = own[i];
            if (i + ROUTED_PREFETCH_EVENT < n)
                prefetch_event(&ev[own[i + ROUTED_PREFETCH_EVENT]]);
            if (i + BOOK_PREFETCH_FAR < n)
                book_prefetch(&s->book, &ev[own[i + BOOK_PREFETCH_FAR]], 0);
            if (i + BOOK_PREFETCH_NEAR < n)
                book_prefetch(&s->book, &ev[own[i + BOOK_PREFETCH_NEAR]], 1);
            if (unlikely(ev[pos].ts >= s->snap_next))
                snapshot(s, ev[pos].ts);
            apply_one(s, &ev[pos]);
        }
        if (j < nmarks)
            advance_mark(s, ev[end].ts);
    }
    s->events += n;
}
