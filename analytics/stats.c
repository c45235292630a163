/*
 * stats: per-symbol trade statistics and OHLCV bars (see stats.h for the rules). Layout: a
 * locate -> slot map (uint16_t per locate) so the hot path indexes directly; dense symbol slots
 * given in order of first appearance, so closing a bar walks only symbols that exist; one ring
 * of bar_history bars per slot, bar k at position k % bar_history, each bar stamped with its k
 * so a stale position reads as "no price"; the match map is a FIFO array of the last
 * match_capacity trades. ITCH match numbers rise through the day (strictly, in NASDAQ's sample
 * in shared/data; a shard sees a rising subsequence), so the FIFO is sorted: an insert is an
 * append (no hashing, no cache miss), a break is a binary search, eviction moves the head. A
 * hashed index, tried first, cost two cache misses per trade: 114 CPU ns per event in
 * bench_stats against 35 now. A match number not above the last one stored is counted and not
 * stored. All memory comes from stats_init with MEM_TAG_STATS, prefaulted; stats_fini returns it.
 * One owner thread.
 */
#include "analytics/stats.h"

#include "base/hints.h"
#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <string.h>

enum {
    ME_COUNTED = 1u << 0, /* the trade was counted (not a non-printable C) */
    ME_BROKEN = 1u << 1,  /* already reversed */
};

#define MATCH_NONE UINT32_MAX

const uint8_t stats_type_tab[256] = {
    ['E'] = 1, ['C'] = 1, ['P'] = 1, ['Q'] = 1, [EV_CSV_TRADE] = 1, [EV_CSV_QUOTE] = 1, ['B'] = 1};

static void *stats_mem(size_t size)
{
    return mem_alloc_at(MEM_TAG_STATS, size, MEM_CACHE_LINE, MEM_ZERO | MEM_PREFAULT, __FILE__,
                        __LINE__);
}

int stats_init(stats_t *st, const stats_cfg_t *cfg)
{
    memset(st, 0, sizeof(*st));
    if (!cfg || cfg->max_locate < 1 || cfg->max_locate > 65535 || cfg->max_symbols < 1 ||
        cfg->max_symbols > cfg->max_locate || cfg->bar_ns < STATS_BAR_NS_MIN ||
        cfg->bar_ns > STATS_BAR_NS_MAX || cfg->bar_history < 1 ||
        cfg->bar_history > STATS_HISTORY_MAX || cfg->match_capacity > STATS_MATCH_MAX)
        return -EINVAL;
    st->cfg = *cfg;
    size_t nsym = cfg->max_symbols, h = cfg->bar_history;
    if (nsym > SIZE_MAX / h / sizeof(stats_bar_t))
        return -EINVAL;
    st->dense_bytes = ((size_t)cfg->max_locate + 1) * sizeof(uint16_t);
    st->syms_bytes = (nsym + 1) * sizeof(stats_slot_t);
    st->bars_bytes = nsym * h * sizeof(stats_bar_t);
    st->dense = stats_mem(st->dense_bytes);
    st->syms = stats_mem(st->syms_bytes);
    st->bars = stats_mem(st->bars_bytes);
    if (!st->dense || !st->syms || !st->bars)
        goto nomem; /* a slot's bar ring is marked empty when the slot is given (slot_of) */
    if (cfg->match_capacity) {
        st->ment_bytes = (size_t)cfg->match_capacity * sizeof(stats_match_entry_t);
        st->ment = stats_mem(st->ment_bytes);
        if (!st->ment)
            goto nomem;
    }
    return 0;
nomem:
    stats_fini(st);
    return -ENOMEM;
}

void stats_new_session(stats_t *st)
{
    if (!st->dense)
        return;
    memset(st->dense, 0, st->dense_bytes);
    memset(st->syms, 0, (st->nsyms + 1) * sizeof(stats_slot_t)); /* the rest were never given */
    st->nsyms = 0; /* the bar rings are marked empty again as their slots are given again */
    st->has_origin = 0;
    st->origin = st->cur = st->open_end = 0;
    st->mhead = st->mcount = 0;
    st->mlast = 0; /* match numbers start again with the new session */
    st->sessions++;
}

void stats_fini(stats_t *st)
{
    mem_free(MEM_TAG_STATS, st->dense, st->dense_bytes);
    mem_free(MEM_TAG_STATS, st->syms, st->syms_bytes);
    mem_free(MEM_TAG_STATS, st->bars, st->bars_bytes);
    mem_free(MEM_TAG_STATS, st->ment, st->ment_bytes);
    memset(st, 0, sizeof(*st));
}

/* ---- match map ---- */

/* Entry of the trade with this match number, or MATCH_NONE: binary search over the FIFO, whose
 * match numbers increase from head to tail. */
static uint32_t match_find(const stats_t *st, uint64_t match)
{
    uint32_t cap = st->cfg.match_capacity, lo = 0, hi = st->mcount;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, e = st->mhead + mid;
        if (e >= cap)
            e -= cap;
        uint64_t m = st->ment[e].match;
        if (m == match)
            return e;
        if (m < match)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MATCH_NONE;
}

static void match_insert(stats_t *st, uint64_t match, uint16_t locate, int64_t price,
                         uint64_t shares, uint8_t flags)
{
    uint32_t cap = st->cfg.match_capacity;
    if (!cap || match == 0)
        return;
    if (unlikely(match <= st->mlast)) { /* out of order or repeated: not reversible */
        st->match_unordered++;
        return;
    }
    st->mlast = match;
    if (st->mcount == cap) { /* the oldest falls out */
        st->mhead = st->mhead + 1 == cap ? 0 : st->mhead + 1;
        st->mcount--;
        st->matches_evicted++;
    }
    uint32_t e = st->mhead + st->mcount;
    if (e >= cap)
        e -= cap;
    st->ment[e] = (stats_match_entry_t){.match = match,
                                        .price = price,
                                        .shares = shares,
                                        .k = st->cur,
                                        .locate = locate,
                                        .flags = flags};
    st->mcount++;
}

/* ---- bars ---- */

static inline stats_bar_t *ring_at(const stats_t *st, uint32_t d, uint64_t k)
{
    return &st->bars[(size_t)(d - 1) * st->cfg.bar_history + (size_t)(k % st->cfg.bar_history)];
}

static void carried_bar(stats_bar_t *b, uint64_t k, int64_t px)
{
    if (px > 0)
        *b = (stats_bar_t){.k = k,
                           .open = px,
                           .high = px,
                           .low = px,
                           .close = px,
                           .vwap = NAN,
                           .ret = 0.0,
                           .mid_ret = NAN,
                           .flags = STATS_BAR_CARRIED};
    else
        *b = (stats_bar_t){
            .k = k, .vwap = NAN, .ret = NAN, .mid_ret = NAN, .flags = STATS_BAR_NOPRICE};
}

static double to_dollars_i128(stats_i128 v)
{
    return (double)v / EV_PRICE_SCALE;
}

/* Bar k as the slot's open bar holds it (it has a price: s->bpx); no returns yet. */
static stats_bar_t open_bar_of(const stats_slot_t *s, uint64_t k)
{
    return (stats_bar_t){.k = k,
                         .open = s->o,
                         .high = s->h,
                         .low = s->l,
                         .close = s->c,
                         .volume = s->bv,
                         .trades = s->bn,
                         .vwap = s->bv ? to_dollars_i128(s->bnotional) / (double)s->bv : NAN,
                         .ret = NAN,
                         .mid_ret = NAN};
}

/* Close bars [k0, k1) of slot d: only k0 may hold trades; the rest are empty. Bars older than
 * k1 - H are not stored. */
static void close_range(stats_t *st, uint32_t d, uint64_t k0, uint64_t k1)
{
    stats_slot_t *s = &st->syms[d];
    uint64_t h = st->cfg.bar_history;
    uint64_t keep_from = k1 - k0 > h ? k1 - h : k0;
    stats_bar_t b;
    if (s->bpx) {
        b = open_bar_of(s, k0);
        if (s->prev_close > 0) {
            b.ret = log((double)s->c / (double)s->prev_close);
            stats_welford_add(&s->ret, b.ret);
        }
        s->prev_close = s->c;
    } else {
        carried_bar(&b, k0, s->prev_close);
        if (s->prev_close > 0)
            stats_welford_add(&s->ret, 0.0);
    }
    /* the mid at the end of bar k0 is the quote as it stands now (time has just passed it) */
    int64_t mid2 = s->bid > 0 && s->ask > 0 ? s->bid + s->ask : 0;
    if (mid2 > 0 && s->prev_mid2 > 0)
        b.mid_ret = log((double)mid2 / (double)s->prev_mid2);
    s->prev_mid2 = mid2;
    if (k0 >= keep_from)
        *ring_at(st, d, k0) = b;
    s->bpx = 0;
    s->bn = 0;
    s->bv = 0;
    s->bnotional = 0;
    uint64_t m = k1 - k0 - 1; /* empty bars after k0 */
    if (m == 0)
        return;
    if (s->prev_close > 0)
        stats_welford_add_n(&s->ret, 0.0, m);
    uint64_t from = k0 + 1 > keep_from ? k0 + 1 : keep_from;
    for (uint64_t k = from; k < k1; k++) {
        stats_bar_t *cb = ring_at(st, d, k);
        carried_bar(cb, k, s->prev_close);
        cb->mid_ret = mid2 > 0 ? 0.0 : NAN; /* no event anywhere: the quote stood still */
    }
}

static void set_open(stats_t *st, uint64_t k)
{
    st->cur = k;
    uint64_t bn = st->cfg.bar_ns;
    st->open_end = k >= UINT64_MAX / bn - 1 ? UINT64_MAX : (k + 1) * bn;
}

static int advance_slow(stats_t *st, uint64_t ts)
{
    uint64_t nk = ts / st->cfg.bar_ns;
    if (!st->has_origin) {
        st->has_origin = 1;
        st->origin = nk;
        set_open(st, nk);
        return 0;
    }
    if (nk <= st->cur)
        return 0;
    uint64_t k0 = st->cur, g = nk - k0, h = st->cfg.bar_history;
    for (uint32_t d = 1; d <= st->nsyms; d++)
        close_range(st, d, k0, nk);
    set_open(st, nk);
    st->bars_closed += g;
    uint64_t first = g > h ? nk - h : k0;
    st->bars_skipped += first - k0;
    if (st->cfg.on_bar)
        for (uint64_t k = first; k < nk; k++)
            st->cfg.on_bar(st->cfg.on_bar_ctx, st, k);
    return g > INT32_MAX ? INT32_MAX : (int)g;
}

int stats_advance(stats_t *st, uint64_t ts)
{
    if (likely(st->has_origin && ts < st->open_end))
        return 0;
    return advance_slow(st, ts);
}

int stats_close_open(stats_t *st)
{
    if (!st->has_origin || st->open_end == UINT64_MAX)
        return 0; /* nothing seen yet, or the clock is at its end (no bar after the open one) */
    return advance_slow(st, st->open_end);
}

/* ---- events ---- */

/* The slot of a locate, taking a new one on first sight. 0 when none (counted). */
static uint32_t slot_of(stats_t *st, uint16_t locate)
{
    if (unlikely(locate == 0 || locate > st->cfg.max_locate)) {
        st->bad++;
        return 0;
    }
    uint32_t d = st->dense[locate];
    if (likely(d != 0))
        return d;
    if (st->nsyms == st->cfg.max_symbols) {
        st->sym_full++;
        return 0;
    }
    d = ++st->nsyms;
    st->dense[locate] = (uint16_t)d;
    st->syms[d].locate = locate;
    stats_bar_t *ring = &st->bars[(size_t)(d - 1) * st->cfg.bar_history];
    for (uint32_t i = 0; i < st->cfg.bar_history; i++)
        ring[i].k = UINT64_MAX; /* no bar stored: not 0, which is a bar number */
    return d;
}

static void trade(stats_t *st, const ev_t *e, int64_t price, uint64_t shares, uint8_t mflags)
{
    if (unlikely(price <= 0 || shares == 0)) {
        st->bad++;
        return;
    }
    uint32_t d = slot_of(st, e->locate);
    if (!d)
        return;
    if (mflags & ME_COUNTED) {
        stats_slot_t *s = &st->syms[d];
        stats_i128 nv = (stats_i128)price * shares;
        if (unlikely(e->ts < st->cur * st->cfg.bar_ns))
            st->late++;
        s->trades++;
        s->volume += shares;
        s->notional += nv;
        s->last = price;
        s->last_ts = e->ts;
        if (s->day_open == 0) /* the session's first trade */
            s->day_open = s->day_high = s->day_low = price;
        else if (price > s->day_high)
            s->day_high = price;
        else if (price < s->day_low)
            s->day_low = price;
        if (!s->bpx) {
            s->bpx = 1;
            s->o = s->h = s->l = price;
        } else {
            if (price > s->h)
                s->h = price;
            if (price < s->l)
                s->l = price;
        }
        s->c = price;
        s->bv += shares;
        s->bn++;
        s->bnotional += nv;
        st->trades++;
    }
    match_insert(st, e->match, e->locate, price, shares, mflags);
}

static void reverse(stats_t *st, uint64_t match)
{
    uint32_t ei = match_find(st, match);
    if (ei == MATCH_NONE) {
        st->breaks_unknown++;
        return;
    }
    stats_match_entry_t *me = &st->ment[ei];
    if (me->flags & ME_BROKEN) {
        st->breaks_repeated++;
        return;
    }
    me->flags |= ME_BROKEN;
    if (!(me->flags & ME_COUNTED)) {
        st->breaks_noop++;
        return;
    }
    uint32_t d = st->dense[me->locate];
    stats_slot_t *s = &st->syms[d];
    stats_i128 nv = (stats_i128)me->price * me->shares;
    s->trades--;
    s->volume -= me->shares;
    s->notional -= nv;
    s->breaks++;
    if (me->k == st->cur && s->bn > 0) {
        s->bn--;
        s->bv -= me->shares;
        s->bnotional -= nv;
    }
    st->breaks++;
}

int stats_quote(stats_t *st, uint16_t locate, int64_t bid, int64_t ask)
{
    uint32_t d = slot_of(st, locate);
    if (!d)
        return locate == 0 || locate > st->cfg.max_locate ? -EINVAL : -ENOSPC;
    st->syms[d].bid = bid > 0 ? bid : 0;
    st->syms[d].ask = ask > 0 ? ask : 0;
    st->quotes++;
    return 0;
}

int stats_quote_side_slow(stats_t *st, uint16_t locate, uint8_t side, int64_t px)
{
    uint32_t d = slot_of(st, locate);
    if (!d)
        return locate == 0 || locate > st->cfg.max_locate ? -EINVAL : -ENOSPC;
    if (side == 'B')
        st->syms[d].bid = px > 0 ? px : 0;
    else
        st->syms[d].ask = px > 0 ? px : 0;
    st->quotes++;
    return 0;
}

int stats_apply(stats_t *st, const ev_t *e, int64_t exec_price)
{
    st->events++;
    int closed = stats_advance(st, e->ts);
    switch (e->type) {
    case 'E':
        if (exec_price <= 0) {
            st->unpriced++;
            break;
        }
        trade(st, e, exec_price, e->shares, ME_COUNTED);
        break;
    case 'C':
        if (e->aux == 'N')
            st->nonprintable++;
        trade(st, e, e->price, e->shares, e->aux == 'N' ? 0 : ME_COUNTED);
        break;
    case 'P':
        trade(st, e, e->price, e->shares, ME_COUNTED);
        break;
    case 'Q':
        if (e->shares == 0) {
            st->empty_crosses++;
            break;
        }
        trade(st, e, e->price, e->shares, ME_COUNTED);
        break;
    case EV_CSV_TRADE:
        trade(st, e, e->price, e->shares, ME_COUNTED);
        break;
    case EV_CSV_QUOTE:
        (void)stats_quote(st, e->locate, e->price, ev_quote_ask(e));
        break;
    case 'B':
        reverse(st, e->match);
        break;
    default:
        break;
    }
    return closed;
}

/* ---- queries ---- */

static int lookup(const stats_t *st, uint16_t locate, uint32_t *d)
{
    if (!st->dense || locate == 0 || locate > st->cfg.max_locate)
        return -EINVAL;
    *d = st->dense[locate];
    return *d ? 0 : -ENOENT;
}

int stats_get(const stats_t *st, uint16_t locate, stats_sym_t *out)
{
    uint32_t d;
    int rc = lookup(st, locate, &d);
    if (rc)
        return rc;
    const stats_slot_t *s = &st->syms[d];
    *out = (stats_sym_t){.trades = s->trades,
                         .volume = s->volume,
                         .notional = to_dollars_i128(s->notional),
                         .vwap = s->volume ? to_dollars_i128(s->notional) / (double)s->volume : NAN,
                         .last = s->last,
                         .last_ts = s->last_ts,
                         .open = s->day_open,
                         .high = s->day_high,
                         .low = s->day_low,
                         .bid = s->bid,
                         .ask = s->ask,
                         .mid = NAN,
                         .spread = NAN,
                         .ret_n = s->ret.n,
                         .ret_mean = stats_welford_mean(&s->ret),
                         .ret_var = stats_welford_var(&s->ret),
                         .breaks = s->breaks};
    out->vol = sqrt(out->ret_var);
    if (s->bid > 0 && s->ask > 0) {
        out->mid = (double)(s->bid + s->ask) / (2.0 * EV_PRICE_SCALE);
        out->spread = (double)(s->ask - s->bid) / EV_PRICE_SCALE;
    }
    return 0;
}

static int closed_k_ok(const stats_t *st, uint64_t k)
{
    return st->has_origin && k >= st->origin && k < st->cur && st->cur - k <= st->cfg.bar_history;
}

static void bar_of(const stats_t *st, uint32_t d, uint64_t k, stats_bar_t *out)
{
    const stats_bar_t *b = d ? ring_at(st, d, k) : NULL;
    if (b && b->k == k)
        *out = *b;
    else /* not seen yet at bar k */
        carried_bar(out, k, 0);
}

int stats_bar(const stats_t *st, uint16_t locate, uint64_t k, stats_bar_t *out)
{
    uint32_t d;
    int rc = lookup(st, locate, &d);
    if (rc)
        return rc;
    if (!closed_k_ok(st, k))
        return -ERANGE;
    bar_of(st, d, k, out);
    return 0;
}

int stats_open_bar(const stats_t *st, uint16_t locate, stats_bar_t *out)
{
    uint32_t d;
    int rc = lookup(st, locate, &d);
    if (rc)
        return rc;
    const stats_slot_t *s = &st->syms[d];
    uint64_t k = stats_open_k(st);
    if (s->bpx)
        *out = open_bar_of(s, k);
    else
        carried_bar(out, k, s->prev_close);
    out->ret = NAN;
    out->mid_ret = NAN;
    return 0;
}

int stats_bar_row(const stats_t *st, uint64_t k, stats_row_kind_t kind, const uint16_t *locs,
                  size_t n, double *out)
{
    if (!st->dense || (unsigned)kind > STATS_ROW_MIDRET || (n && !out) ||
        (!locs && n > st->cfg.max_locate))
        return -EINVAL;
    if (!closed_k_ok(st, k))
        return -ERANGE;
    for (size_t i = 0; i < n; i++) {
        size_t loc = locs ? locs[i] : i + 1;
        uint32_t d = loc >= 1 && loc <= st->cfg.max_locate ? st->dense[loc] : 0;
        stats_bar_t b;
        bar_of(st, d, k, &b);
        if (kind == STATS_ROW_LOGRET)
            out[i] = b.ret;
        else if (kind == STATS_ROW_LOGRET0)
            out[i] = isnan(b.ret) ? 0.0 : b.ret;
        else if (kind == STATS_ROW_MIDRET)
            out[i] = isnan(b.mid_ret) ? b.ret : b.mid_ret;
        else
            out[i] = b.flags & STATS_BAR_NOPRICE ? NAN : (double)b.close / EV_PRICE_SCALE;
    }
    return 0;
}

/* ---- top by volume ---- */

/* a ranks above b */
static inline int better(const stats_t *st, uint16_t a, uint16_t b)
{
    uint64_t va = st->syms[st->dense[a]].volume, vb = st->syms[st->dense[b]].volume;
    return va > vb || (va == vb && a < b);
}

/* Min-heap by rank: the root is the worst kept. */
static void sift_down(const stats_t *st, uint16_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(st, h[w], h[l]))
            w = l;
        if (r < n && better(st, h[w], h[r]))
            w = r;
        if (w == i)
            return;
        uint16_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

size_t stats_top_by_volume(const stats_t *st, size_t n, uint16_t *out)
{
    if (!st->dense || n == 0 || !out)
        return 0;
    size_t m = 0;
    for (uint32_t d = 1; d <= st->nsyms; d++) {
        const stats_slot_t *s = &st->syms[d];
        if (s->volume == 0)
            continue;
        if (m < n) { /* push and sift up */
            size_t i = m++;
            out[i] = s->locate;
            while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!better(st, out[p], out[i]))
                    break;
                uint16_t t = out[p];
                out[p] = out[i];
                out[i] = t;
                i = p;
            }
        } else if (better(st, s->locate, out[0])) {
            out[0] = s->locate;
            sift_down(st, out, m, 0);
        }
    }
    /* heap sort: move the worst to the end, repeatedly, leaving best first */
    for (size_t end = m; end > 1; end--) {
        uint16_t t = out[0];
        out[0] = out[end - 1];
        out[end - 1] = t;
        sift_down(st, out, end - 1, 0);
    }
    return m;
}
