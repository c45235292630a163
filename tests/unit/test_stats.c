/*
 * test_stats: trade statistics and bars against hand-computed values and naive references:
 * VWAP/volume/notional/OHLC by hand; 1 s and 1 min bars of a random stream of 10^5 trades over
 * 100 symbols against a reference that groups trades by floor(ts / interval), checked bar by
 * bar from the close callback; carry-forward and "no price" bars, long gaps; Welford against a
 * corrected two-pass variance (1e-12 relative), with a large offset that breaks the naive
 * one-pass formula; broken trades (applied, too old, repeated, non-printable); printable 'N';
 * cross trades; CSV trades and quotes; top-by-volume against a naive selection; bad input and
 * capacity policies; the open bar closed at end of input (stats_close_open); zero allocations on
 * the hot path (malloc_count) and zero live bytes after fini.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/stats.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000ull

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static int64_t live_stats_bytes(void)
{
    mem_snapshot_t s;
    mem_snapshot(&s);
    return s.tag[MEM_TAG_STATS].live;
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    return xorshift64_next(&rng_state);
}

static ev_t mk(uint8_t type, uint64_t ts, uint16_t loc, int64_t px, uint64_t sh, uint64_t match,
               uint8_t aux)
{
    ev_t e;
    memset(&e, 0, sizeof(e));
    e.type = type;
    e.ts = ts;
    e.locate = loc;
    e.price = px;
    e.shares = sh;
    e.match = match;
    e.aux = aux;
    return e;
}

static stats_cfg_t cfg_of(uint32_t max_locate, uint32_t max_symbols, uint64_t bar_ns, uint32_t h,
                          uint32_t mcap)
{
    return (stats_cfg_t){.max_locate = max_locate,
                         .max_symbols = max_symbols,
                         .bar_ns = bar_ns,
                         .bar_history = h,
                         .match_capacity = mcap};
}

static void assert_rel(double got, double want, double tol)
{
    double den = fabs(want) > 1e-300 ? fabs(want) : 1.0;
    if (!(fabs(got - want) / den <= tol))
        fail_msg("got %.17g want %.17g (rel %.3g > %.3g)", got, want, fabs(got - want) / den, tol);
}

/* Corrected two-pass variance (Chan, Golub & LeVeque): the reference. */
static double two_pass_var(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double mean = s / (double)n, sd = 0, sd2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        sd += d;
        sd2 += d * d;
    }
    return (sd2 - sd * sd / (double)n) / (double)(n - 1);
}

/* ---- by hand ---- */

static void test_stats_hand_vwap_ohlc(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(100, 10, SEC, 4, 16);
    assert_int_equal(stats_init(&st, &c), 0);
    uint64_t t0 = 34200 * SEC; /* 09:30:00 */
    /* 10.00 x 100 (P), 10.50 x 200 (E at the book's price), 9.90 x 300 (C printable),
     * 10.20 x 400 (t): volume 1000, notional 1000 + 2100 + 2970 + 4080 = 10150, VWAP 10.15 */
    ev_t e = mk('P', t0 + 1, 5, 100000, 100, 1, 0);
    assert_int_equal(stats_apply(&st, &e, 0), 0);
    e = mk('E', t0 + 2, 5, 0, 200, 2, 0);
    stats_apply(&st, &e, 105000);
    e = mk('C', t0 + 3, 5, 99000, 300, 3, 'Y');
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, t0 + 4, 5, 102000, 400, 0, 0);
    stats_apply(&st, &e, 0);
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 5, &s), 0);
    assert_int_equal(s.trades, 4);
    assert_int_equal(s.volume, 1000);
    assert_rel(s.notional, 10150.0, 1e-15);
    assert_rel(s.vwap, 10.15, 1e-15);
    assert_int_equal(s.last, 102000);
    assert_int_equal(s.last_ts, t0 + 4);
    /* the session's OHLC: first 10.00, highest 10.50, lowest 9.90 (close is last) */
    assert_int_equal(s.open, 100000);
    assert_int_equal(s.high, 105000);
    assert_int_equal(s.low, 99000);
    assert_true(isnan(s.mid) && isnan(s.spread));
    assert_int_equal(s.ret_n, 0);
    stats_bar_t b;
    assert_int_equal(stats_open_bar(&st, 5, &b), 0);
    assert_int_equal(b.k, 34200);
    assert_int_equal(b.open, 100000);
    assert_int_equal(b.high, 105000);
    assert_int_equal(b.low, 99000);
    assert_int_equal(b.close, 102000);
    assert_int_equal(b.volume, 1000);
    assert_int_equal(b.trades, 4);
    /* the bar closes when time reaches its end, not before */
    assert_int_equal(stats_advance(&st, t0 + SEC - 1), 0);
    assert_int_equal(stats_bar(&st, 5, 34200, &b), -ERANGE);
    assert_int_equal(stats_advance(&st, t0 + SEC), 1);
    assert_int_equal(stats_bar(&st, 5, 34200, &b), 0);
    assert_int_equal(b.open, 100000);
    assert_int_equal(b.high, 105000);
    assert_int_equal(b.low, 99000);
    assert_int_equal(b.close, 102000);
    assert_int_equal(b.volume, 1000);
    assert_int_equal(b.trades, 4);
    assert_int_equal(b.flags, 0);
    assert_rel(b.vwap, 10.15, 1e-15);
    assert_true(isnan(b.ret)); /* first priced bar */
    /* second bar: one trade at 10.71 = 10.20 * 1.05 */
    e = mk('P', t0 + SEC + 5, 5, 107100, 10, 4, 0);
    stats_apply(&st, &e, 0);
    stats_advance(&st, t0 + 2 * SEC);
    assert_int_equal(stats_bar(&st, 5, 34201, &b), 0);
    assert_rel(b.ret, log(1.05), 1e-15);
    assert_int_equal(stats_get(&st, 5, &s), 0);
    assert_int_equal(s.ret_n, 1);
    assert_rel(s.ret_mean, log(1.05), 1e-15);
    assert_true(isnan(s.ret_var));
    assert_int_equal(st.trades, 5);
    assert_int_equal(st.bars_closed, 2);
    stats_fini(&st);
    assert_int_equal(live_stats_bytes(), 0);
}

/* ---- random stream vs naive reference ---- */

enum { RS_SYMS = 100, RS_TRADES = 100000 };

typedef struct ref_bar {
    int64_t o, h, l, c;
    uint64_t v;
    uint32_t n;
    uint32_t flags;
    double notional;
    double ret;
} ref_bar_t;

typedef struct rs_ctx {
    ref_bar_t *ref; /* [RS_SYMS][nb] */
    uint64_t k0, nb;
    uint64_t calls, next_k;
} rs_ctx_t;

static ref_bar_t *refb(rs_ctx_t *c, int sym, uint64_t idx)
{
    return &c->ref[(size_t)sym * c->nb + idx];
}

static void rs_on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    rs_ctx_t *c = ctx;
    assert_int_equal(k, c->next_k); /* every bar once, ascending */
    c->next_k++;
    c->calls++;
    uint64_t idx = k - c->k0;
    assert_true(idx < c->nb);
    double rets[RS_SYMS], closes[RS_SYMS];
    assert_int_equal(stats_bar_row(st, k, STATS_ROW_LOGRET, NULL, RS_SYMS, rets), 0);
    assert_int_equal(stats_bar_row(st, k, STATS_ROW_CLOSE, NULL, RS_SYMS, closes), 0);
    for (int s = 0; s < RS_SYMS; s++) {
        const ref_bar_t *r = refb(c, s, idx);
        stats_bar_t b;
        int rc = stats_bar(st, (uint16_t)(s + 1), k, &b);
        if (rc == -ENOENT) { /* never seen: the reference must have no price yet */
            assert_true(r->flags & STATS_BAR_NOPRICE);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(b.k, k);
            assert_int_equal(b.flags, r->flags);
            assert_int_equal(b.open, r->o);
            assert_int_equal(b.high, r->h);
            assert_int_equal(b.low, r->l);
            assert_int_equal(b.close, r->c);
            assert_int_equal(b.volume, r->v);
            assert_int_equal(b.trades, r->n);
            if (r->v)
                assert_rel(b.vwap, r->notional / EV_PRICE_SCALE / (double)r->v, 1e-12);
            else
                assert_true(isnan(b.vwap));
            if (isnan(r->ret))
                assert_true(isnan(b.ret));
            else
                assert_rel(b.ret, r->ret, 1e-12);
        }
        if (isnan(r->ret))
            assert_true(isnan(rets[s]));
        else
            assert_rel(rets[s], r->ret, 1e-12);
        if (r->flags & STATS_BAR_NOPRICE)
            assert_true(isnan(closes[s]));
        else
            assert_rel(closes[s], (double)r->c / EV_PRICE_SCALE, 1e-15);
    }
}

static void run_random_stream(uint64_t bar_ns, uint64_t span_s)
{
    rng_state = 0x9e3779b97f4a7c15ull ^ bar_ns;
    uint64_t t0 = 34200 * SEC + 123456789; /* not on a bar boundary */
    uint64_t step_max = 2 * span_s * SEC / RS_TRADES;
    ev_t *evs = calloc(RS_TRADES, sizeof(ev_t));
    int64_t *xp = calloc(RS_TRADES, sizeof(int64_t)); /* E: the book's price */
    assert_non_null(evs);
    assert_non_null(xp);
    int64_t px[RS_SYMS];
    for (int s = 0; s < RS_SYMS; s++)
        px[s] = 10000 + (int64_t)(rnd() % 990000);
    uint64_t ts = t0;
    for (int j = 0; j < RS_TRADES; j++) {
        ts += rnd() % step_max;
        int nsym = 1 + j / 400; /* symbols appear progressively: early bars have no price */
        if (nsym > RS_SYMS)
            nsym = RS_SYMS;
        int s = (int)(rnd() % (uint64_t)nsym);
        int64_t d = (int64_t)(rnd() % 101) - 50;
        if (px[s] + d > 100)
            px[s] += d;
        uint64_t sh = 1 + rnd() % 1000;
        uint64_t match = (uint64_t)j + 1;
        switch (rnd() % 20) {
        case 0: /* non-printable: ignored, wild price */
            evs[j] =
                mk('C', ts, (uint16_t)(s + 1), 1 + (int64_t)(rnd() % 10000000), sh, match, 'N');
            break;
        case 1:
        case 2:
        case 3:
        case 4:
            evs[j] = mk('E', ts, (uint16_t)(s + 1), 0, sh, match, 0);
            xp[j] = px[s];
            break;
        case 5:
        case 6:
        case 7:
            evs[j] = mk('C', ts, (uint16_t)(s + 1), px[s], sh, match, 'Y');
            break;
        case 8:
        case 9:
        case 10:
        case 11:
            evs[j] = mk(EV_CSV_TRADE, ts, (uint16_t)(s + 1), px[s], sh, 0, 0);
            break;
        default:
            evs[j] = mk('P', ts, (uint16_t)(s + 1), px[s], sh, match, 0);
            break;
        }
    }
    /* the reference: group by floor(ts / interval) */
    rs_ctx_t c = {.k0 = evs[0].ts / bar_ns};
    c.nb = evs[RS_TRADES - 1].ts / bar_ns - c.k0 + 1;
    c.next_k = c.k0;
    c.ref = calloc((size_t)RS_SYMS * c.nb, sizeof(ref_bar_t));
    assert_non_null(c.ref);
    uint64_t tot_n[RS_SYMS] = {0}, tot_v[RS_SYMS] = {0};
    double tot_not[RS_SYMS] = {0};
    int64_t last[RS_SYMS] = {0};
    for (int j = 0; j < RS_TRADES; j++) {
        const ev_t *e = &evs[j];
        if (e->type == 'C' && e->aux == 'N')
            continue;
        int64_t p = e->type == 'E' ? xp[j] : e->price;
        int s = e->locate - 1;
        ref_bar_t *r = refb(&c, s, e->ts / bar_ns - c.k0);
        if (r->n == 0) {
            r->o = r->h = r->l = p;
        } else {
            r->h = p > r->h ? p : r->h;
            r->l = p < r->l ? p : r->l;
        }
        r->c = p;
        r->v += e->shares;
        r->n++;
        r->notional += (double)p * (double)e->shares;
        tot_n[s]++;
        tot_v[s] += e->shares;
        tot_not[s] += (double)p * (double)e->shares / EV_PRICE_SCALE;
        last[s] = p;
    }
    /* carry-forward and returns, and the returns for the variance */
    double *rets = calloc(c.nb, sizeof(double));
    assert_non_null(rets);
    double ref_var[RS_SYMS];
    size_t ref_rn[RS_SYMS];
    for (int s = 0; s < RS_SYMS; s++) {
        int64_t prev = 0;
        size_t nr = 0;
        for (uint64_t i = 0; i < c.nb; i++) {
            ref_bar_t *r = refb(&c, s, i);
            if (r->n) {
                r->ret = prev ? log((double)r->c / (double)prev) : NAN;
                prev = r->c;
            } else if (prev) {
                r->o = r->h = r->l = r->c = prev;
                r->flags = STATS_BAR_CARRIED;
                r->ret = 0.0;
            } else {
                r->flags = STATS_BAR_NOPRICE;
                r->ret = NAN;
            }
            if (!isnan(r->ret))
                rets[nr++] = r->ret;
        }
        ref_rn[s] = nr;
        ref_var[s] = nr >= 2 ? two_pass_var(rets, nr) : NAN;
    }

    stats_t st;
    stats_cfg_t cfg = cfg_of(RS_SYMS, RS_SYMS, bar_ns, 4, 1024);
    cfg.on_bar = rs_on_bar;
    cfg.on_bar_ctx = &c;
    assert_int_equal(stats_init(&st, &cfg), 0);
    malloc_count_t before;
    malloc_count_get(&before);
    for (int j = 0; j < RS_TRADES; j++)
        stats_apply(&st, &evs[j], xp[j]);
    stats_advance(&st, (c.k0 + c.nb) * bar_ns); /* close the last bar */
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_int_equal(c.calls, c.nb);
    assert_int_equal(st.bars_closed, c.nb);
    assert_int_equal(st.bars_skipped, 0);
    for (int s = 0; s < RS_SYMS; s++) {
        stats_sym_t g;
        assert_int_equal(stats_get(&st, (uint16_t)(s + 1), &g), 0);
        assert_int_equal(g.trades, tot_n[s]);
        assert_int_equal(g.volume, tot_v[s]);
        assert_rel(g.notional, tot_not[s], 1e-12);
        assert_rel(g.vwap, tot_not[s] / (double)tot_v[s], 1e-12);
        assert_int_equal(g.last, last[s]);
        assert_int_equal(g.ret_n, ref_rn[s]);
        if (ref_rn[s] >= 2) {
            assert_rel(g.ret_var, ref_var[s], 1e-10);
            assert_rel(g.vol, sqrt(ref_var[s]), 1e-10);
        }
    }
    /* history: the last 4 closed bars only */
    stats_bar_t b;
    uint64_t kend = c.k0 + c.nb;
    assert_int_equal(stats_bar(&st, 1, kend - 4, &b), 0);
    assert_int_equal(stats_bar(&st, 1, kend - 5, &b), -ERANGE);
    assert_int_equal(stats_bar(&st, 1, kend, &b), -ERANGE);
    stats_fini(&st);
    free(rets);
    free(c.ref);
    free(evs);
    free(xp);
    assert_int_equal(live_stats_bytes(), 0);
}

static void test_stats_bars_1s_vs_naive(void **state)
{
    (void)state;
    run_random_stream(SEC, 1800);
}

static void test_stats_bars_1min_vs_naive(void **state)
{
    (void)state;
    run_random_stream(60 * SEC, 7200);
}

/* ---- carry-forward, no price, gaps ---- */

static uint64_t cb_calls, cb_last;
static void count_bar(void *ctx, const stats_t *st, uint64_t k)
{
    (void)ctx;
    (void)st;
    cb_calls++;
    cb_last = k;
}

static void test_stats_carry_forward_and_gaps(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 10, SEC, 8, 16);
    c.on_bar = count_bar;
    cb_calls = 0;
    assert_int_equal(stats_init(&st, &c), 0);
    ev_t e = mk(EV_CSV_TRADE, 1000 * SEC + SEC / 5, 1, 1000000, 10, 0, 0);
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, 1000 * SEC + 7 * SEC / 10, 1, 1010000, 5, 0, 0);
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, 1002 * SEC + SEC / 2, 2, 500000, 1, 0, 0);
    assert_int_equal(stats_apply(&st, &e, 0), 2); /* closes 1000 and 1001 */
    e = mk(EV_CSV_TRADE, 1004 * SEC + SEC / 10, 1, 990000, 2, 0, 0);
    assert_int_equal(stats_apply(&st, &e, 0), 2);
    assert_int_equal(stats_advance(&st, 1005 * SEC), 1);
    assert_int_equal(cb_calls, 5);
    assert_int_equal(cb_last, 1004);
    stats_bar_t b;
    assert_int_equal(stats_bar(&st, 1, 1000, &b), 0);
    assert_int_equal(b.flags, 0);
    assert_int_equal(b.open, 1000000);
    assert_int_equal(b.high, 1010000);
    assert_int_equal(b.low, 1000000);
    assert_int_equal(b.close, 1010000);
    assert_int_equal(b.volume, 15);
    assert_true(isnan(b.ret));
    for (uint64_t k = 1001; k <= 1003; k++) {
        assert_int_equal(stats_bar(&st, 1, k, &b), 0);
        assert_int_equal(b.flags, STATS_BAR_CARRIED);
        assert_int_equal(b.open, 1010000);
        assert_int_equal(b.high, 1010000);
        assert_int_equal(b.low, 1010000);
        assert_int_equal(b.close, 1010000);
        assert_int_equal(b.volume, 0);
        assert_int_equal(b.trades, 0);
        assert_true(b.ret == 0.0);
    }
    assert_int_equal(stats_bar(&st, 1, 1004, &b), 0);
    assert_int_equal(b.close, 990000);
    double r4 = log(99.0 / 101.0);
    assert_rel(b.ret, r4, 1e-15);
    /* symbol 2: no price before its first trade, then carried */
    assert_int_equal(stats_bar(&st, 2, 1000, &b), 0);
    assert_int_equal(b.flags, STATS_BAR_NOPRICE);
    assert_true(isnan(b.ret));
    assert_int_equal(stats_bar(&st, 2, 1001, &b), 0);
    assert_int_equal(b.flags, STATS_BAR_NOPRICE);
    assert_int_equal(stats_bar(&st, 2, 1002, &b), 0);
    assert_int_equal(b.flags, 0);
    assert_true(isnan(b.ret));
    assert_int_equal(stats_bar(&st, 2, 1004, &b), 0);
    assert_int_equal(b.flags, STATS_BAR_CARRIED);
    assert_int_equal(b.close, 500000);
    assert_int_equal(stats_bar(&st, 3, 1002, &b), -ENOENT);
    /* rows */
    uint16_t locs[3] = {1, 2, 3};
    double row[3];
    assert_int_equal(stats_bar_row(&st, 1003, STATS_ROW_LOGRET, locs, 3, row), 0);
    assert_true(row[0] == 0.0 && row[1] == 0.0 && isnan(row[2]));
    assert_int_equal(stats_bar_row(&st, 1000, STATS_ROW_LOGRET, locs, 3, row), 0);
    assert_true(isnan(row[0]) && isnan(row[1]) && isnan(row[2]));
    assert_int_equal(stats_bar_row(&st, 1000, STATS_ROW_LOGRET0, locs, 3, row), 0);
    assert_true(row[0] == 0.0 && row[1] == 0.0 && row[2] == 0.0);
    assert_int_equal(stats_bar_row(&st, 1004, STATS_ROW_LOGRET0, locs, 3, row), 0);
    assert_rel(row[0], log(99.0 / 101.0), 1e-15);
    assert_true(row[1] == 0.0 && row[2] == 0.0);
    assert_int_equal(stats_bar_row(&st, 1001, STATS_ROW_CLOSE, locs, 3, row), 0);
    assert_rel(row[0], 101.0, 1e-15);
    assert_true(isnan(row[1]) && isnan(row[2]));
    assert_int_equal(stats_bar_row(&st, 1004, STATS_ROW_LOGRET, locs, 3, row), 0);
    assert_rel(row[0], r4, 1e-15);
    assert_int_equal(stats_bar_row(&st, 1005, STATS_ROW_LOGRET, locs, 3, row), -ERANGE);
    assert_int_equal(stats_bar_row(&st, 999, STATS_ROW_LOGRET, locs, 3, row), -ERANGE);
    /* volatility: returns 0, 0, 0, r4 */
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 1, &s), 0);
    assert_int_equal(s.ret_n, 4);
    double v4[4] = {0, 0, 0, r4};
    assert_rel(s.ret_var, two_pass_var(v4, 4), 1e-12);
    assert_rel(s.ret_mean, r4 / 4, 1e-15);
    /* a gap of 1000 bars with history 8: 992 closed in closed form, the last 8 stored */
    assert_int_equal(stats_advance(&st, 2005 * SEC + 1), 1000);
    assert_int_equal(st.bars_skipped, 992);
    assert_int_equal(st.bars_closed, 1005);
    assert_int_equal(cb_calls, 5 + 8);
    assert_int_equal(cb_last, 2004);
    assert_int_equal(stats_bar(&st, 1, 1996, &b), -ERANGE);
    assert_int_equal(stats_bar(&st, 1, 1997, &b), 0);
    assert_int_equal(b.flags, STATS_BAR_CARRIED);
    assert_int_equal(b.close, 990000);
    assert_int_equal(stats_get(&st, 1, &s), 0);
    assert_int_equal(s.ret_n, 1004);
    static double v[1004];
    memset(v, 0, sizeof(v));
    v[3] = r4;
    assert_rel(s.ret_var, two_pass_var(v, 1004), 1e-12);
    assert_int_equal(stats_get(&st, 2, &s), 0);
    assert_int_equal(s.ret_n, 1002); /* 1003, 1004, then 1000 carried */
    assert_true(s.ret_var == 0.0);
    /* a trade older than the open bar goes into it and is counted late */
    e = mk(EV_CSV_TRADE, 1001 * SEC, 2, 510000, 3, 0, 0);
    assert_int_equal(stats_apply(&st, &e, 0), 0);
    assert_int_equal(st.late, 1);
    assert_int_equal(stats_open_bar(&st, 2, &b), 0);
    assert_int_equal(b.k, 2005);
    assert_int_equal(b.close, 510000);
    assert_int_equal(b.volume, 3);
    /* a jump to the end of time: bounded work, saturated, no crash */
    assert_int_equal(stats_advance(&st, UINT64_MAX), INT32_MAX);
    assert_int_equal(stats_advance(&st, UINT64_MAX), 0);
    assert_int_equal(stats_open_k(&st), UINT64_MAX / SEC);
    stats_fini(&st);
    assert_int_equal(live_stats_bytes(), 0);
}

/* ---- Welford ---- */

/* End of input (issue 14): the bar still open when the data stops closes with
 * stats_close_open, so the last close gives a return like any other; a symbol's first priced
 * bar has no return (NaN, not 0, and not in the variance). Hand-computed: closes 100, 110, 121
 * in bars 0, 1, 2 give returns NaN, ln 1.1, ln 1.1; a symbol first trading in bar 2 has none. */
static int close_calls;
static uint64_t close_last_k;
static void count_close(void *ctx, const stats_t *st, uint64_t k)
{
    (void)ctx;
    (void)st;
    close_calls++;
    close_last_k = k;
}

static void test_stats_close_open_counts_last_bar(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(16, 4, 60 * SEC, 8, 0);
    c.on_bar = count_close;
    assert_int_equal(stats_init(&st, &c), 0);
    close_calls = 0;
    assert_int_equal(stats_close_open(&st), 0); /* nothing seen: nothing to close */
    assert_int_equal(close_calls, 0);
    ev_t e = mk(EV_CSV_TRADE, 0, 1, 1000000, 100, 0, 0);
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, 60 * SEC, 1, 1100000, 100, 0, 0);
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, 125 * SEC, 2, 500000, 100, 0, 0); /* a late starter */
    stats_apply(&st, &e, 0);
    e = mk(EV_CSV_TRADE, 130 * SEC, 1, 1210000, 100, 0, 0);
    stats_apply(&st, &e, 0);
    assert_int_equal(close_calls, 2);
    stats_bar_t b;
    assert_int_equal(stats_bar(&st, 1, 2, &b), -ERANGE); /* bar 2 is still open */
    stats_sym_t sy;
    assert_int_equal(stats_get(&st, 1, &sy), 0);
    assert_int_equal(sy.ret_n, 1);

    assert_int_equal(stats_close_open(&st), 1);
    assert_int_equal(close_calls, 3);
    assert_int_equal(close_last_k, 2);
    assert_int_equal(stats_open_k(&st), 3);
    assert_int_equal(stats_bar(&st, 1, 2, &b), 0);
    assert_int_equal(b.close, 1210000);
    assert_int_equal(b.trades, 1);
    assert_rel(b.ret, log(1.1), 1e-12);
    assert_int_equal(stats_bar(&st, 1, 0, &b), 0);
    assert_true(isnan(b.ret)); /* first priced bar: no previous close, missing (not 0) */
    assert_int_equal(stats_bar(&st, 2, 2, &b), 0);
    assert_int_equal(b.close, 500000);
    assert_true(isnan(b.ret));
    double row[2];
    uint16_t locs[2] = {1, 2};
    assert_int_equal(stats_bar_row(&st, 2, STATS_ROW_LOGRET, locs, 2, row), 0);
    assert_rel(row[0], log(1.1), 1e-12);
    assert_true(isnan(row[1]));
    assert_int_equal(stats_get(&st, 1, &sy), 0);
    assert_int_equal(sy.ret_n, 2); /* ln 1.1 twice: the first bar is not a 0 in the variance */
    assert_rel(sy.ret_mean, log(1.1), 1e-12);
    assert_int_equal(stats_get(&st, 2, &sy), 0);
    assert_int_equal(sy.ret_n, 0);

    stats_new_session(&st);
    assert_int_equal(stats_close_open(&st), 0); /* a new session has no open bar yet */
    assert_int_equal(close_calls, 3);
    stats_fini(&st);
    assert_int_equal(live_stats_bytes(), 0);
}

static void test_stats_welford_vs_two_pass(void **state)
{
    (void)state;
    enum { N = 100000 };
    static double x[N];
    const double offsets[3] = {0.0, 1e3, 1e9};
    rng_state = 42;
    for (int o = 0; o < 3; o++) {
        for (int i = 0; i < N; i++)
            x[i] = offsets[o] + (double)(rnd() >> 11) / 9007199254740992.0; /* + U[0,1) */
        stats_welford_t w = {0};
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++) {
            stats_welford_add(&w, x[i]);
            s += x[i];
            s2 += x[i] * x[i];
        }
        double ref = two_pass_var(x, N);
        assert_true(ref > 0.08 && ref < 0.087); /* U[0,1): 1/12 */
        assert_int_equal(w.n, N);
        assert_rel(stats_welford_var(&w), ref, 1e-12);
        assert_rel(stats_welford_mean(&w), s / N, 1e-12);
        double naive = (s2 - s * s / N) / (N - 1);
        if (o == 2) /* the naive one-pass formula fails here: the case is a real one */
            assert_true(!(fabs(naive - ref) / ref < 1e-3));
    }
    /* bar log returns: small values around 0, many exact zeros */
    for (int i = 0; i < N; i++)
        x[i] = i % 3 ? 0.0 : ((double)(rnd() % 2001) - 1000.0) * 1e-6;
    stats_welford_t w = {0};
    for (int i = 0; i < N; i++)
        stats_welford_add(&w, x[i]);
    assert_rel(stats_welford_var(&w), two_pass_var(x, N), 1e-12);
    /* adding m copies at once equals adding them one by one */
    stats_welford_t a = {0}, b = {0};
    for (int i = 0; i < 100; i++) {
        stats_welford_add(&a, x[i]);
        stats_welford_add(&b, x[i]);
    }
    for (int i = 0; i < 5000; i++)
        stats_welford_add(&a, 0.25);
    stats_welford_add_n(&b, 0.25, 5000);
    assert_int_equal(a.n, b.n);
    assert_rel(stats_welford_var(&b), stats_welford_var(&a), 1e-12);
    assert_rel(stats_welford_mean(&b), stats_welford_mean(&a), 1e-12);
    stats_welford_t z = {0};
    stats_welford_add_n(&z, 3.0, 7); /* from empty */
    assert_int_equal(z.n, 7);
    assert_true(stats_welford_mean(&z) == 3.0 && stats_welford_var(&z) == 0.0);
    stats_welford_t one = {0};
    assert_true(isnan(stats_welford_mean(&one)) && isnan(stats_welford_var(&one)));
    stats_welford_add(&one, 1.0);
    assert_true(isnan(stats_welford_var(&one)));
}

/* ---- broken trades ---- */

static void test_stats_broken_trades(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 10, SEC, 8, 4);
    assert_int_equal(stats_init(&st, &c), 0);
    uint64_t t0 = 1000 * SEC;
    double notional = 0;
    for (uint64_t m = 1; m <= 6; m++) { /* 10.01 .. 10.06, 100 shares each */
        ev_t e = mk('P', t0 + m, 7, 100000 + (int64_t)m * 100, 100, m, 'B');
        stats_apply(&st, &e, 0);
        notional += (10.0 + (double)m / 100) * 100;
    }
    assert_int_equal(st.matches_evicted, 2); /* 1 and 2 fell out of the map */
    ev_t b = mk('B', t0 + 10, 7, 0, 0, 5, 0);
    stats_apply(&st, &b, 0);
    notional -= 10.05 * 100;
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 7, &s), 0);
    assert_int_equal(s.trades, 5);
    assert_int_equal(s.volume, 500);
    assert_rel(s.notional, notional, 1e-14);
    assert_rel(s.vwap, notional / 500, 1e-14);
    assert_int_equal(s.breaks, 1);
    assert_int_equal(st.breaks, 1);
    stats_bar_t bar;
    assert_int_equal(stats_open_bar(&st, 7, &bar), 0); /* the open bar is net of the break */
    assert_int_equal(bar.volume, 500);
    assert_int_equal(bar.trades, 5);
    b.match = 1; /* too old */
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_unknown, 1);
    b.match = 5; /* again */
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_repeated, 1);
    b.match = 999; /* never seen */
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_unknown, 2);
    assert_int_equal(stats_get(&st, 7, &s), 0);
    assert_int_equal(s.volume, 500);
    /* next bar: a trade, then break one in the closed bar and the new one */
    ev_t e = mk('P', t0 + SEC + 1, 7, 101000, 50, 7, 'S');
    stats_apply(&st, &e, 0);
    b = mk('B', t0 + SEC + 2, 7, 0, 0, 6, 0);
    stats_apply(&st, &b, 0);
    b.match = 7;
    stats_apply(&st, &b, 0);
    notional -= 10.06 * 100;
    assert_int_equal(stats_get(&st, 7, &s), 0);
    assert_int_equal(s.trades, 4);
    assert_int_equal(s.volume, 400);
    assert_rel(s.notional, notional, 1e-14);
    assert_int_equal(s.last, 101000);                   /* a break does not undo the last price */
    assert_int_equal(stats_bar(&st, 7, 1000, &bar), 0); /* closed: not rewritten */
    assert_int_equal(bar.volume, 500);
    assert_int_equal(bar.trades, 5);
    assert_int_equal(stats_open_bar(&st, 7, &bar), 0);
    assert_int_equal(bar.volume, 0);
    assert_int_equal(bar.trades, 0);
    /* a non-printable execution is known to the map but has nothing to reverse */
    e = mk('C', t0 + SEC + 3, 7, 999999, 1000, 8, 'N');
    stats_apply(&st, &e, 0);
    b.match = 8;
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_noop, 1);
    assert_int_equal(stats_get(&st, 7, &s), 0);
    assert_int_equal(s.volume, 400);
    stats_fini(&st);

    /* the map under load: cap 37, 5000 rising match numbers with random gaps; breaks of the
     * last 37 at every position of the FIFO, of older ones, of numbers in the gaps */
    enum { CAP = 37, M = 5000 };
    c = cfg_of(10, 10, SEC, 8, CAP);
    assert_int_equal(stats_init(&st, &c), 0);
    static uint64_t ms[M];
    rng_state = 7;
    uint64_t mno = 0, probes = 0;
    for (int i = 0; i < M; i++) {
        mno += 2 + rnd() % 1000; /* gaps of at least 1: mno - 1 is never a trade */
        ms[i] = mno;
        e = mk('P', t0 + (uint64_t)i, 3, 100000, 1, ms[i], 'B');
        stats_apply(&st, &e, 0);
        if (i % 97 == 0 && i >= CAP) { /* probe while the FIFO head moves around */
            probes++;
            b = mk('B', t0 + (uint64_t)i, 3, 0, 0, ms[i - CAP], 0); /* just fell out */
            stats_apply(&st, &b, 0);
            b.match = ms[i] - 1; /* a gap */
            stats_apply(&st, &b, 0);
            b.match = ms[i - CAP + 1 + (int)(rnd() % CAP)]; /* still inside */
            stats_apply(&st, &b, 0);
        }
    }
    assert_int_equal(probes, 51);
    assert_int_equal(st.matches_evicted, M - CAP);
    assert_int_equal(st.breaks, probes);
    assert_int_equal(st.breaks_unknown, 2 * probes);
    uint64_t applied = st.breaks, unknown = st.breaks_unknown, rep = st.breaks_repeated;
    for (int i = 0; i < M - CAP; i += 50) {
        b = mk('B', t0 + M, 3, 0, 0, ms[i], 0);
        stats_apply(&st, &b, 0);
    }
    assert_int_equal(st.breaks, applied);
    assert_true(st.breaks_unknown > unknown);
    unknown = st.breaks_unknown;
    for (int i = M - CAP; i < M; i++) {
        b = mk('B', t0 + M, 3, 0, 0, ms[i], 0);
        stats_apply(&st, &b, 0);
    }
    /* every one of the last CAP is found: applied now, or repeated if a probe broke it */
    assert_int_equal(st.breaks + st.breaks_repeated - applied - rep, CAP);
    assert_int_equal(st.breaks_unknown, unknown);
    assert_int_equal(stats_get(&st, 3, &s), 0);
    assert_int_equal(s.volume, M - st.breaks);
    assert_int_equal(s.trades, M - st.breaks);
    /* a match number not above the last: counted, stored nowhere, not reversible */
    e = mk('P', t0 + M, 3, 100000, 1, ms[M - 1], 'B');
    stats_apply(&st, &e, 0);
    e.match = 5;
    stats_apply(&st, &e, 0);
    assert_int_equal(st.match_unordered, 2);
    b = mk('B', t0 + M, 3, 0, 0, 5, 0);
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_unknown, unknown + 1);
    assert_int_equal(stats_get(&st, 3, &s), 0);
    assert_int_equal(s.volume, M + 2 - st.breaks); /* both were counted as trades */
    stats_fini(&st);

    /* no map at all: every break is unknown */
    c = cfg_of(10, 10, SEC, 8, 0);
    assert_int_equal(stats_init(&st, &c), 0);
    e = mk('P', t0, 3, 100000, 1, 1, 'B');
    stats_apply(&st, &e, 0);
    b = mk('B', t0, 3, 0, 0, 1, 0);
    stats_apply(&st, &b, 0);
    assert_int_equal(st.breaks_unknown, 1);
    stats_fini(&st);
    assert_int_equal(live_stats_bytes(), 0);
}

/* ---- trade types ---- */

static void test_stats_nonprintable_excluded(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 10, SEC, 4, 8);
    assert_int_equal(stats_init(&st, &c), 0);
    ev_t e = mk('C', 5 * SEC, 2, 200000, 300, 1, 'N');
    stats_apply(&st, &e, 0);
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 2, &s), 0);
    assert_int_equal(s.trades, 0);
    assert_int_equal(s.volume, 0);
    assert_int_equal(s.last, 0);
    assert_true(isnan(s.vwap));
    assert_int_equal(st.nonprintable, 1);
    e = mk('C', 5 * SEC + 1, 2, 210000, 100, 2, 'Y');
    stats_apply(&st, &e, 0);
    assert_int_equal(stats_get(&st, 2, &s), 0);
    assert_int_equal(s.trades, 1);
    assert_int_equal(s.volume, 100);
    assert_int_equal(s.last, 210000);
    stats_bar_t b;
    assert_int_equal(stats_open_bar(&st, 2, &b), 0);
    assert_int_equal(b.open, 210000);
    assert_int_equal(b.high, 210000);
    stats_fini(&st);
}

static void test_stats_cross_trades(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 10, SEC, 4, 8);
    assert_int_equal(stats_init(&st, &c), 0);
    ev_t e = mk('Q', 34200 * SEC, 4, 0, 0, 0, 'O'); /* no cross: not a trade */
    stats_apply(&st, &e, 0);
    assert_int_equal(st.empty_crosses, 1);
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 4, &s), -ENOENT);
    e = mk('Q', 34200 * SEC + 1, 4, 200000, 5000, 77, 'O'); /* opening cross: 5000 @ 20.00 */
    stats_apply(&st, &e, 0);
    assert_int_equal(stats_get(&st, 4, &s), 0);
    assert_int_equal(s.trades, 1);
    assert_int_equal(s.volume, 5000);
    assert_rel(s.notional, 100000.0, 1e-15);
    assert_int_equal(s.last, 200000);
    /* the executions that made up the cross come as non-printable C: not counted again */
    e = mk('C', 34200 * SEC + 2, 4, 200000, 3000, 78, 'N');
    stats_apply(&st, &e, 0);
    e = mk('C', 34200 * SEC + 2, 4, 200000, 2000, 79, 'N');
    stats_apply(&st, &e, 0);
    assert_int_equal(stats_get(&st, 4, &s), 0);
    assert_int_equal(s.volume, 5000);
    assert_int_equal(s.trades, 1);
    stats_fini(&st);
}

static void test_stats_csv_trades_and_quotes(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 10, 60 * SEC, 4, 0);
    assert_int_equal(stats_init(&st, &c), 0);
    uint64_t t0 = 1700000000ull * SEC; /* epoch scale */
    ev_t q = mk(EV_CSV_QUOTE, t0, 9, 1500000, 200, 0, 0);
    q.ref = 1500400; /* ask */
    q.new_ref = 300;
    stats_apply(&st, &q, 0);
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 9, &s), 0);
    assert_int_equal(s.bid, 1500000);
    assert_int_equal(s.ask, 1500400);
    assert_rel(s.mid, 150.02, 1e-15);
    assert_rel(s.spread, 0.04, 1e-12);
    assert_int_equal(s.trades, 0);
    assert_int_equal(st.quotes, 1);
    ev_t t = mk(EV_CSV_TRADE, t0 + 1, 9, 1500200, 50, 0, 'B');
    stats_apply(&st, &t, 0);
    t = mk(EV_CSV_TRADE, t0 + 2, 9, 1500400, 150, 0, 0);
    stats_apply(&st, &t, 0);
    assert_int_equal(stats_get(&st, 9, &s), 0);
    assert_int_equal(s.trades, 2);
    assert_int_equal(s.volume, 200);
    assert_rel(s.vwap, (150.02 * 50 + 150.04 * 150) / 200, 1e-14);
    /* the book's BBO, one side absent */
    assert_int_equal(stats_quote(&st, 9, 1500100, 0), 0);
    assert_int_equal(stats_get(&st, 9, &s), 0);
    assert_int_equal(s.bid, 1500100);
    assert_int_equal(s.ask, 0);
    assert_true(isnan(s.mid) && isnan(s.spread));
    /* 1-minute bars on the epoch scale: aligned to whole minutes */
    stats_advance(&st, t0 + 60 * SEC);
    stats_bar_t b;
    assert_int_equal(stats_bar(&st, 9, t0 / (60 * SEC), &b), 0);
    assert_int_equal(b.volume, 200);
    assert_int_equal(b.open, 1500200);
    assert_int_equal(b.close, 1500400);
    stats_fini(&st);
}

/* ---- top by volume ---- */

static void test_stats_top_by_volume(void **state)
{
    (void)state;
    enum { NS = 300 };
    stats_t st;
    stats_cfg_t c = cfg_of(1000, NS + 10, SEC, 2, 0);
    assert_int_equal(stats_init(&st, &c), 0);
    rng_state = 99;
    static uint64_t vol[1001];
    memset(vol, 0, sizeof(vol));
    for (int i = 0; i < 5000; i++) {
        uint16_t loc = (uint16_t)(1 + rnd() % NS * 3 % 1000); /* scattered locates */
        uint64_t sh = 1 + rnd() % 20;                         /* small: many ties */
        ev_t e = mk(EV_CSV_TRADE, 10 * SEC, loc, 10000, sh, 0, 0);
        stats_apply(&st, &e, 0);
        vol[loc] += sh;
    }
    assert_int_equal(stats_quote(&st, 999, 100, 200), 0); /* seen, but no volume */
    size_t have = 0;
    for (int l = 1; l <= 1000; l++)
        have += vol[l] > 0;
    const size_t ns[6] = {1, 7, 50, have - 1, have, have + 100};
    static uint16_t out[NS + 200];
    static unsigned char taken[1001];
    for (int t = 0; t < 6; t++) {
        size_t n = ns[t];
        size_t got = stats_top_by_volume(&st, n, out);
        assert_int_equal(got, n < have ? n : have);
        memset(taken, 0, sizeof(taken));
        for (size_t i = 0; i < got; i++) { /* naive: the best not taken yet */
            int best = 0;
            for (int l = 1; l <= 1000; l++)
                if (vol[l] && !taken[l] && (!best || vol[l] > vol[best]))
                    best = l;
            taken[best] = 1;
            assert_int_equal(out[i], best);
        }
    }
    assert_int_equal(stats_top_by_volume(&st, 0, out), 0);
    stats_fini(&st);
}

/* ---- bad input and policies ---- */

static void test_stats_bad_input_and_capacity(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 2, SEC, 4, 4);
    stats_cfg_t bad[7] = {c, c, c, c, c, c, c};
    bad[0].max_locate = 0;
    bad[1].max_locate = 70000;
    bad[2].max_symbols = 11;
    bad[3].bar_ns = SEC - 1;
    bad[4].bar_ns = 86400 * SEC + 1;
    bad[5].bar_history = 0;
    bad[6].max_symbols = 0;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(stats_init(&st, &bad[i]), -EINVAL);
        stats_fini(&st); /* safe after a refused init */
    }
    assert_int_equal(stats_init(&st, NULL), -EINVAL);
    assert_int_equal(live_stats_bytes(), 0);
    c.bar_ns = 86400 * SEC; /* 1 d is allowed */
    assert_int_equal(stats_init(&st, &c), 0);
    stats_fini(&st);
    c.bar_ns = SEC;
    assert_int_equal(stats_init(&st, &c), 0);
    stats_bar_t b;
    double row[2];
    assert_int_equal(stats_bar_row(&st, 0, STATS_ROW_CLOSE, NULL, 2, row), -ERANGE); /* no origin */
    ev_t e = mk('P', SEC, 0, 100000, 10, 1, 0);                                      /* locate 0 */
    stats_apply(&st, &e, 0);
    e.locate = 11; /* out of range */
    stats_apply(&st, &e, 0);
    e = mk('P', SEC, 1, 0, 10, 2, 0); /* price 0 */
    stats_apply(&st, &e, 0);
    e = mk('P', SEC, 1, -5, 10, 3, 0); /* negative price */
    stats_apply(&st, &e, 0);
    e = mk('P', SEC, 1, 100000, 0, 4, 0); /* 0 shares */
    stats_apply(&st, &e, 0);
    assert_int_equal(st.bad, 5);
    e = mk('E', SEC, 1, 0, 10, 5, 0); /* the book did not know the order */
    stats_apply(&st, &e, 0);
    assert_int_equal(st.unpriced, 1);
    assert_int_equal(st.trades, 0);
    assert_int_equal(stats_quote(&st, 0, 1, 2), -EINVAL);
    /* two symbol slots: the third symbol is refused and counted */
    e = mk('P', SEC, 1, 100000, 10, 6, 0);
    stats_apply(&st, &e, 0);
    e.locate = 2;
    stats_apply(&st, &e, 0);
    e.locate = 3;
    stats_apply(&st, &e, 0);
    assert_int_equal(st.sym_full, 1);
    assert_int_equal(stats_quote(&st, 4, 1, 2), -ENOSPC);
    assert_int_equal(st.sym_full, 2);
    stats_sym_t s;
    assert_int_equal(stats_get(&st, 3, &s), -ENOENT);
    assert_int_equal(stats_get(&st, 0, &s), -EINVAL);
    assert_int_equal(stats_get(&st, 11, &s), -EINVAL);
    assert_int_equal(stats_bar(&st, 11, 1, &b), -EINVAL);
    assert_int_equal(stats_bar_row(&st, 1, (stats_row_kind_t)9, NULL, 2, row), -EINVAL);
    assert_int_equal(stats_bar_row(&st, 1, STATS_ROW_CLOSE, NULL, 11, row), -EINVAL);
    stats_advance(&st, 2 * SEC);
    uint16_t odd[2] = {0, 65535}; /* out-of-range locates in a row: NaN, no crash */
    assert_int_equal(stats_bar_row(&st, 1, STATS_ROW_CLOSE, odd, 2, row), 0);
    assert_true(isnan(row[0]) && isnan(row[1]));
    /* other event types only move time */
    e = mk('A', 3 * SEC, 1, 100000, 10, 0, 'B');
    assert_int_equal(stats_apply(&st, &e, 0), 1);
    assert_int_equal(st.events, 10);
    stats_fini(&st);
    stats_fini(&st); /* twice is harmless */
    assert_int_equal(live_stats_bytes(), 0);
}

/* ---- no allocation on the hot path ---- */

static void test_stats_hot_path_allocates_nothing(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(600, 500, SEC, 32, 4096);
    assert_int_equal(stats_init(&st, &c), 0);
    mem_seal();
    malloc_count_t before;
    malloc_count_get(&before);
    rng_state = 5;
    uint64_t ts = 34200 * SEC;
    double row[600];
    uint16_t top[20];
    stats_sym_t s;
    stats_bar_t b;
    for (uint64_t i = 1; i <= 200000; i++) {
        ts += rnd() % 200000;
        uint16_t loc = (uint16_t)(1 + rnd() % 600); /* more locates than slots: sym_full */
        ev_t e;
        switch (i % 8) {
        case 0:
            e = mk('B', ts, loc, 0, 0, i - 1 - rnd() % 8000, 0);
            break;
        case 1:
            e = mk(EV_CSV_QUOTE, ts, loc, 99000, 10, 0, 0);
            e.ref = 101000;
            break;
        case 2:
            e = mk('C', ts, loc, 100000 + (int64_t)(rnd() % 100), 10, i, i % 16 ? 'Y' : 'N');
            break;
        case 3:
            e = mk('Q', ts, loc, 100000, rnd() % 2 * 100, i, 'C');
            break;
        default:
            e = mk('P', ts, loc, 100000 + (int64_t)(rnd() % 100), 1 + rnd() % 100, i, 'B');
            break;
        }
        stats_apply(&st, &e, 100000);
        if (i % 1000 == 0) {
            stats_quote(&st, loc, 99000, 101000);
            stats_get(&st, loc, &s);
            stats_bar(&st, loc, stats_open_k(&st) - 1, &b);
            stats_bar_row(&st, stats_open_k(&st) - 1, STATS_ROW_LOGRET, NULL, 600, row);
            stats_top_by_volume(&st, 20, top);
        }
        if (i == 100000)
            ts += 3600 * SEC; /* a gap longer than the history */
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_snapshot_t snap;
    mem_snapshot(&snap);
    assert_int_equal(snap.tag[MEM_TAG_STATS].churn_allocs, 0);
    assert_true(st.sym_full > 0);
    assert_true(st.breaks > 0);
    assert_true(st.breaks_unknown > 0);
    assert_true(st.bars_skipped > 0);
    mem_unseal();
    stats_fini(&st);
    assert_int_equal(live_stats_bytes(), 0);
}

/* stats_step (the inline common case) against stats_apply, and stats_quote_side (one side, when
 * it changed) against stats_quote of the whole quote after every change, on one mixed stream: the
 * clock crossing bars and jumping, every type (book types that only move the clock, trades,
 * breaks, CSV quotes), bid and ask kept naively here. Every symbol's figures (bid, ask, mid,
 * returns at every close included), every closed bar's rows and the counters must be equal. */
static void test_stats_step_and_quote_side(void **state)
{
    (void)state;
    enum { NLOC = 30 };
    stats_t a, b;
    stats_cfg_t c = cfg_of(NLOC, 20, SEC, 64, 1000); /* more locates than slots: sym_full */
    assert_int_equal(stats_init(&a, &c), 0);
    assert_int_equal(stats_init(&b, &c), 0);
    static const uint8_t types[] = {'A', 'D', 'X', 'U', 'F',          'E',          'C', 'P',
                                    'Q', 'B', 'S', 'R', EV_CSV_TRADE, EV_CSV_QUOTE, 0,   200};
    int64_t bid[NLOC + 1] = {0}, ask[NLOC + 1] = {0};
    uint64_t ts = 34200 * SEC, side_quotes = 0;
    double ra[NLOC], rb[NLOC];
    for (uint64_t i = 1; i <= 100000; i++) {
        ts += rnd() % (SEC / 100);
        if (i % 20000 == 0)
            ts += 100 * SEC;                           /* a gap longer than the history */
        uint16_t loc = (uint16_t)(rnd() % (NLOC + 2)); /* 0 and NLOC + 1: bad locates */
        uint8_t t = types[rnd() % sizeof types];
        ev_t e = mk(t, ts, loc, 100000 + (int64_t)(rnd() % 100) * 100, rnd() % 5 * 100, i,
                    rnd() % 8 ? 'Y' : 'N');
        if (t == EV_CSV_QUOTE)
            e.ref = (uint64_t)e.price + 100;
        if (t == 'B')
            e.match = i - 1 - rnd() % 50;
        int64_t px = rnd() % 4 ? 0 : e.price;
        assert_int_equal(stats_step(&a, &e, px), stats_apply(&b, &e, px));
        if (t == EV_CSV_QUOTE && loc >= 1 && loc <= NLOC) { /* the quote the stats now hold */
            bid[loc] = e.price;
            ask[loc] = (int64_t)e.ref;
        }
        if (rnd() % 4 == 0 && loc <= NLOC) { /* one side of the book changed */
            uint8_t sd = rnd() % 2 ? 'B' : 'S';
            int64_t q = rnd() % 8 ? 99000 + (int64_t)(rnd() % 50) * 100 : 0;
            if (sd == 'B')
                bid[loc] = q;
            else
                ask[loc] = q;
            assert_int_equal(stats_quote_side(&a, loc, sd, q),
                             stats_quote(&b, loc, bid[loc], ask[loc]));
            side_quotes++;
        }
        if (i % 500 == 0 && stats_open_k(&a) != UINT64_MAX && stats_open_k(&a) > a.origin) {
            uint64_t k = stats_open_k(&a) - 1;
            assert_int_equal(stats_bar_row(&a, k, STATS_ROW_MIDRET, NULL, NLOC, ra), 0);
            assert_int_equal(stats_bar_row(&b, k, STATS_ROW_MIDRET, NULL, NLOC, rb), 0);
            assert_memory_equal(ra, rb, sizeof ra);
        }
    }
    for (uint16_t loc = 1; loc <= NLOC; loc++) {
        stats_sym_t x, y;
        memset(&x, 0, sizeof x);
        memset(&y, 0, sizeof y);
        assert_int_equal(stats_get(&a, loc, &x), stats_get(&b, loc, &y));
        assert_memory_equal(&x, &y, sizeof x);
    }
    assert_int_equal(a.events, b.events);
    assert_int_equal(a.trades, b.trades);
    assert_int_equal(a.bars_closed, b.bars_closed);
    assert_int_equal(a.breaks, b.breaks);
    assert_int_equal(a.bad, b.bad);
    assert_int_equal(a.sym_full, b.sym_full);
    assert_int_equal(a.quotes, b.quotes);
    printf("  %llu side quotes, sym_full %llu, breaks %llu, bars %llu\n",
           (unsigned long long)side_quotes, (unsigned long long)a.sym_full,
           (unsigned long long)a.breaks, (unsigned long long)a.bars_closed);
    assert_true(side_quotes > 10000 && a.sym_full > 0 && a.breaks > 0 && a.bars_closed > 500);
    stats_fini(&a);
    stats_fini(&b);
}

/* Bar rings are marked empty when a slot is given, not at init or per session: bar 0 (a bar
 * number like any other) of a symbol first seen later is NOPRICE, on fresh zeroed memory and on a
 * slot that held another symbol's bar 0 in the session before. */
static void test_stats_bar_rings_marked_when_given(void **state)
{
    (void)state;
    stats_t st;
    stats_cfg_t c = cfg_of(10, 4, SEC, 8, 0);
    assert_int_equal(stats_init(&st, &c), 0);
    stats_bar_t b;
    for (int session = 0; session < 2; session++) {
        if (session)
            stats_new_session(&st);
        /* bar 0: symbols 1 and 2 (session 0) or 3 (session 1) trade; bar 1: 4 first trades */
        ev_t e = mk('P', 1000, session ? 3 : 1, 100000, 100, 0, 'B');
        stats_apply(&st, &e, 0);
        if (!session) {
            e = mk('P', 2000, 2, 200000, 100, 0, 'B');
            stats_apply(&st, &e, 0);
        }
        e = mk('P', SEC + 1000, 4, 300000, 100, 0, 'B');
        stats_apply(&st, &e, 0);
        stats_advance(&st, 2 * SEC);
        assert_int_equal(stats_bar(&st, session ? 3 : 1, 0, &b), 0);
        assert_int_equal(b.close, 100000);
        assert_int_equal(stats_bar(&st, 4, 0, &b), 0); /* slot 3 (session 0) or 2 (session 1) */
        assert_true(b.flags & STATS_BAR_NOPRICE);
        assert_int_equal(b.close, 0);
        assert_int_equal(stats_bar(&st, 4, 1, &b), 0);
        assert_int_equal(b.close, 300000);
    }
    stats_fini(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_stats_hand_vwap_ohlc, reset_counters),
        cmocka_unit_test_setup(test_stats_bars_1s_vs_naive, reset_counters),
        cmocka_unit_test_setup(test_stats_bars_1min_vs_naive, reset_counters),
        cmocka_unit_test_setup(test_stats_carry_forward_and_gaps, reset_counters),
        cmocka_unit_test_setup(test_stats_close_open_counts_last_bar, reset_counters),
        cmocka_unit_test_setup(test_stats_welford_vs_two_pass, reset_counters),
        cmocka_unit_test_setup(test_stats_broken_trades, reset_counters),
        cmocka_unit_test_setup(test_stats_nonprintable_excluded, reset_counters),
        cmocka_unit_test_setup(test_stats_cross_trades, reset_counters),
        cmocka_unit_test_setup(test_stats_csv_trades_and_quotes, reset_counters),
        cmocka_unit_test_setup(test_stats_top_by_volume, reset_counters),
        cmocka_unit_test_setup(test_stats_bad_input_and_capacity, reset_counters),
        cmocka_unit_test_setup(test_stats_hot_path_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_stats_step_and_quote_side, reset_counters),
        cmocka_unit_test_setup(test_stats_bar_rings_marked_when_given, reset_counters),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
