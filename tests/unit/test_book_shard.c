/*
 * test_book_shard: engine/shard's apply loop (the book over runs of events with its prefetch
 * hints, then the stats with the fills; a quote only for the side whose best price an event
 * changed) against a plain one written here: each event to a book and to stats of its own,
 * book_apply, stats_apply with the fill's execution price, then, after every event, stats_quote
 * with book_best_px of the symbol the event names (once that symbol has a level or a stats slot),
 * one event at a time. After each batch every symbol's bid and ask in the shard's stats must be
 * the reference book's best prices (a quote missed or stale fails here: so would the old rule of
 * quoting only after BOOK_OK and BOOK_ANOMALY, on a U whose new reference is refused).
 * A generated stream (adds, deletes, replaces, some with a live new reference, cancels,
 * executions of resting orders, cross trades, unknown references, over 40 symbols, the clock
 * crossing a bar every ~1,000
 * events) goes to both in batches of random sizes (1 to 5,000 events, so batches end at
 * every place); at every closed bar both must give the same statistics of every symbol (bid, ask,
 * mid and the returns taken at the close included, compared bit for bit), and at the end the same
 * book checksum of every symbol, the same per-result counts and the same book counters. The
 * shard allocates nothing after the seal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/book.h"
#include "analytics/stats.h"
#include "config/config.h"
#include "engine/shard.h"
#include "mem/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { NSYM = 40, EVENTS = 200000, MAXBARS = 4096 };

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    uint64_t x = g_rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return g_rng = x;
}

/* A hash of every symbol's statistics, taken at each closed bar. */
typedef struct bars {
    uint64_t h[MAXBARS];
    uint64_t k[MAXBARS];
    size_t n;
} bars_t;

static uint64_t stats_hash(const stats_t *st)
{
    uint64_t h = 1469598103934665603ull;
    for (uint16_t loc = 1; loc <= NSYM; loc++) {
        stats_sym_t s;
        memset(&s, 0, sizeof s);
        if (stats_get(st, loc, &s) != 0)
            continue;
        const unsigned char *p = (const unsigned char *)&s;
        for (size_t i = 0; i < sizeof s; i++)
            h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static void on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    bars_t *b = ctx;
    if (b->n < MAXBARS) {
        b->h[b->n] = stats_hash(st);
        b->k[b->n] = k;
        b->n++;
    }
}

static bars_t g_shard_bars, g_ref_bars;

typedef struct live {
    uint64_t ref;
    uint16_t locate;
} live_t;

static ev_t g_ev[EVENTS];
static live_t g_live[EVENTS];

static void gen(void)
{
    size_t nlive = 0;
    uint64_t next_ref = 1, ts = 34200000000000ull; /* 9:30 */
    int64_t mid[NSYM + 1];
    for (int s = 1; s <= NSYM; s++)
        mid[s] = 100000 + (int64_t)(rnd() % 2000) * 100;
    for (size_t i = 0; i < EVENTS; i++) {
        ev_t *e = &g_ev[i];
        memset(e, 0, sizeof *e);
        ts += rnd() % 2000000; /* ~1 ms apart: a 1 s bar every ~1,000 events */
        e->ts = ts;
        unsigned k = (unsigned)(rnd() % 100);
        if (nlive == 0 || k < 45) {
            uint16_t loc = (uint16_t)(1 + rnd() % NSYM);
            if (rnd() % 16 == 0)
                mid[loc] += rnd() % 2 ? 100 : -100;
            uint8_t side = rnd() % 2 ? 'B' : 'S';
            int64_t off = 100 * (int64_t)(rnd() % 5 ? rnd() % 8 : rnd() % 150);
            *e = (ev_t){.type = 'A',
                        .ts = ts,
                        .ref = next_ref,
                        .locate = loc,
                        .side = side,
                        .price = side == 'B' ? mid[loc] - off : mid[loc] + 100 + off,
                        .shares = 100 * (1 + rnd() % 5)};
            g_live[nlive++] = (live_t){.ref = next_ref++, .locate = loc};
            continue;
        }
        if (k >= 97) { /* a cross trade, or an unknown reference */
            uint16_t loc = (uint16_t)(1 + rnd() % NSYM);
            if (k == 99)
                *e = (ev_t){.type = 'D', .ts = ts, .ref = next_ref + 1000000, .locate = loc};
            else
                *e = (ev_t){.type = 'P',
                            .ts = ts,
                            .locate = loc,
                            .side = 'B',
                            .price = mid[loc],
                            .shares = 100,
                            .match = i};
            continue;
        }
        size_t j = rnd() % 4 ? nlive - 1 - rnd() % (nlive < 64 ? nlive : 64) : rnd() % nlive;
        e->ref = g_live[j].ref;
        e->locate = g_live[j].locate;
        if (k < 80) {
            e->type = 'D';
            g_live[j] = g_live[--nlive];
        } else if (k < 86) {
            e->type = 'U';
            e->new_ref = next_ref;
            e->price = mid[e->locate] + 100 * ((int64_t)(rnd() % 20) - 10);
            e->shares = 100 * (1 + rnd() % 5);
            size_t other = rnd() % nlive;
            if (rnd() % 16 == 0 && other != j) {
                /* the new reference is live: the original goes, the new order is refused */
                e->new_ref = g_live[other].ref;
                g_live[j] = g_live[--nlive];
            } else {
                g_live[j].ref = next_ref++;
            }
        } else { /* C, X, E: a part, or (when it is more than is left) the rest */
            e->type = k < 90 ? 'X' : k < 93 ? 'C' : 'E';
            e->shares = 100 * (1 + rnd() % 4);
            e->price = mid[e->locate];
            e->aux = 'Y';
            e->match = i;
        }
    }
}

static void test_book_shard_matches_one_by_one(void **state)
{
    (void)state;
    gen();
    config_t cfg;
    config_default(&cfg);
    cfg.bar_interval_ns = 1000000000ull;
    shard_t *sh = mem_alloc(MEM_TAG_TEST, sizeof *sh);
    assert_non_null(sh);
    assert_int_equal(shard_init(sh, &cfg, 1, on_bar, &g_shard_bars), 0);
    /* the reference: a book and stats sized as shard_init sizes them */
    book_config_t bc;
    book_config_default(&bc);
    bc.max_orders = cfg.max_orders < 16 ? 16 : cfg.max_orders;
    bc.max_levels = cfg.max_levels < 16 ? 16 : cfg.max_levels;
    bc.max_locate = BOOK_MAX_LOCATE;
    book_t *bk = mem_alloc(MEM_TAG_TEST, sizeof *bk);
    stats_t *st = mem_alloc(MEM_TAG_TEST, sizeof *st);
    assert_non_null(bk);
    assert_non_null(st);
    assert_int_equal(book_init(bk, &bc), 0);
    stats_cfg_t sc = {.max_locate = 65535,
                      .max_symbols = cfg.max_symbols,
                      .bar_ns = cfg.bar_interval_ns,
                      .bar_history = cfg.bar_history,
                      .match_capacity = cfg.break_window,
                      .on_bar = on_bar,
                      .on_bar_ctx = &g_ref_bars};
    assert_int_equal(stats_init(st, &sc), 0);
    uint64_t by_result[BOOK_RESULT_COUNT] = {0};

    mem_seal();
    mem_snapshot_t s0, s1;
    uint64_t allocs = 0, quote_checks = 0;
    for (size_t i = 0; i < EVENTS;) {
        size_t n = 1 + rnd() % 5000;
        if (n > EVENTS - i)
            n = EVENTS - i;
        mem_snapshot(&s0);
        shard_apply(sh, &g_ev[i], n);
        mem_snapshot(&s1);
        allocs += s1.total.allocs - s0.total.allocs;
        for (size_t j = i; j < i + n; j++) {
            const ev_t *e = &g_ev[j];
            book_fill_t f;
            book_result_t r = book_apply(bk, e, &f);
            by_result[r]++;
            stats_apply(st, e, f.exec_price);
            /* the naive quote: after every event, the book's best bid and offer of the symbol it
             * names, once that symbol has had a level (or a stats slot) */
            uint16_t loc = f.locate ? f.locate : e->locate;
            int64_t bid, ask;
            stats_sym_t y;
            int mask = loc != 0 ? book_best_px(bk, loc, &bid, &ask) : -EINVAL;
            if (mask > 0 || (mask == 0 && stats_get(st, loc, &y) == 0))
                stats_quote(st, loc, bid, ask);
        }
        i += n;
        /* at the batch's end: every symbol's bid and ask in the shard's stats are its book's
         * best prices, and the reference's */
        for (uint16_t loc = 1; loc <= NSYM; loc++) {
            stats_sym_t a, b;
            int ra = stats_get(&sh->stats, loc, &a), rb = stats_get(st, loc, &b);
            assert_int_equal(ra, rb);
            if (ra != 0)
                continue;
            int64_t bid, ask;
            assert_true(book_best_px(bk, loc, &bid, &ask) >= 0);
            if (a.bid != bid || a.ask != ask || b.bid != bid || b.ask != ask)
                fail_msg("after event %zu, locate %u: shard stats %lld/%lld, reference %lld/%lld, "
                         "book %lld/%lld",
                         i, loc, (long long)a.bid, (long long)a.ask, (long long)b.bid,
                         (long long)b.ask, (long long)bid, (long long)ask);
            quote_checks++;
        }
    }
    mem_unseal();
    assert_int_equal(allocs, 0);
    assert_true(quote_checks > 1000);

    printf("  %zu events, %zu bars closed; results: ok %llu, ignored %llu, unknown %llu, "
           "anomaly %llu\n",
           (size_t)EVENTS, g_ref_bars.n, (unsigned long long)by_result[BOOK_OK],
           (unsigned long long)by_result[BOOK_IGNORED],
           (unsigned long long)by_result[BOOK_UNKNOWN_REF],
           (unsigned long long)by_result[BOOK_ANOMALY]);
    /* the stream did what it is for */
    assert_true(g_ref_bars.n > 100);
    assert_true(by_result[BOOK_UNKNOWN_REF] > 0 && by_result[BOOK_ANOMALY] > 0 &&
                by_result[BOOK_DUP_REF] > 0);
    assert_int_equal(g_shard_bars.n, g_ref_bars.n);
    for (size_t b = 0; b < g_ref_bars.n; b++) {
        assert_int_equal(g_shard_bars.k[b], g_ref_bars.k[b]);
        if (g_shard_bars.h[b] != g_ref_bars.h[b])
            fail_msg("bar %zu (k %llu): the shard's statistics differ from the reference's", b,
                     (unsigned long long)g_ref_bars.k[b]);
    }
    assert_int_equal(stats_hash(&sh->stats), stats_hash(st));
    for (uint16_t loc = 1; loc <= NSYM; loc++)
        assert_int_equal(book_checksum(&sh->book, loc), book_checksum(bk, loc));
    uint64_t sh_by_result[BOOK_RESULT_COUNT];
    shard_by_result(sh, sh_by_result);
    for (int r = 0; r < BOOK_RESULT_COUNT; r++)
        assert_int_equal(sh_by_result[r], by_result[r]);
    book_stats_t a, b;
    book_stats(&sh->book, &a);
    book_stats(bk, &b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(sh->events, EVENTS);

    stats_fini(st);
    book_fini(bk);
    shard_fini(sh);
    mem_free(MEM_TAG_TEST, st, sizeof *st);
    mem_free(MEM_TAG_TEST, bk, sizeof *bk);
    mem_free(MEM_TAG_TEST, sh, sizeof *sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_book_shard_matches_one_by_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
