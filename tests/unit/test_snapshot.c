/*
 * test_snapshot: published snapshots against values computed by hand and against the structures
 * they copy. A shard applies a hand-made stream (adds, executions, a cancel, a cross, a hidden
 * trade) and the records must show the best bid and offer, depth, VWAP, OHLC and bars worked out
 * here; the interval, the owner filter, the routed positions (only the listed events are marked),
 * the bar-roll republish and the slot limit behave as
 * documented. The cross-section snapshot of a real xsection, fed rows from a two-sector factor
 * model, must equal the xsection's own arrays and a naive Pearson correlation computed here.
 * Concurrency: a writer publishes records (through the real shard and after_batch) and
 * cross-sections whose every field derives from one counter while two readers check that no
 * copy ever mixes two publishes (also run under TSan). Publishing allocates nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config/config.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "mem/mem.h"
#include "server/snapshot.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static bool small_run(void)
{
#ifdef UNDER_TSAN
    return true;
#else
    return RUNNING_ON_VALGRIND || getenv("TICKCORE_TEST_SMALL") != NULL;
#endif
}

#define T0     (34200ull * 1000000000ull) /* 9:30:00, since midnight */
#define BAR_NS (60ull * 1000000000ull)
#define PX(d)  ((int64_t)llround((d)*EV_PRICE_SCALE))

/* ---- events ------------------------------------------------------------------------------- */

static ev_t ev_add(uint64_t ts, uint16_t loc, uint64_t ref, uint8_t side, int64_t px, uint64_t sh)
{
    return (ev_t){
        .ts = ts, .type = 'A', .locate = loc, .ref = ref, .side = side, .price = px, .shares = sh};
}

static ev_t ev_exec(uint64_t ts, uint16_t loc, uint64_t ref, uint64_t sh, uint64_t match)
{
    return (ev_t){.ts = ts, .type = 'E', .locate = loc, .ref = ref, .shares = sh, .match = match};
}

static ev_t ev_xcl(uint64_t ts, uint16_t loc, uint64_t ref, uint64_t sh)
{
    return (ev_t){.ts = ts, .type = 'X', .locate = loc, .ref = ref, .shares = sh};
}

static ev_t ev_del(uint64_t ts, uint16_t loc, uint64_t ref)
{
    return (ev_t){.ts = ts, .type = 'D', .locate = loc, .ref = ref};
}

static ev_t ev_cexec(uint64_t ts, uint16_t loc, uint64_t ref, uint64_t sh, int64_t px,
                     uint64_t match)
{
    return (ev_t){.ts = ts,
                  .type = 'C',
                  .locate = loc,
                  .ref = ref,
                  .shares = sh,
                  .price = px,
                  .match = match,
                  .aux = 'Y'};
}

static ev_t ev_hidden(uint64_t ts, uint16_t loc, int64_t px, uint64_t sh, uint64_t match)
{
    return (ev_t){.ts = ts,
                  .type = 'P',
                  .locate = loc,
                  .price = px,
                  .shares = sh,
                  .match = match,
                  .side = 'B'};
}

static ev_t ev_sys(uint64_t ts)
{
    return (ev_t){.ts = ts, .type = 'S', .aux = 'Q'};
}

static void small_config(config_t *cfg)
{
    config_default(cfg);
    cfg->max_orders = 4096;
    cfg->max_levels = 4096;
    cfg->max_symbols = 64;
    cfg->bar_history = 8;
    cfg->break_window = 64;
    cfg->snapshot_depth = 3;
    cfg->snapshot_interval_ns = 1000000; /* 1 ms */
    cfg->matrix_symbols = 8;
    cfg->pca_components = 3;
    cfg->clusters = 2;
    cfg->min_cluster = 2;
}

static void name_symbols(symtab_t *sy)
{
    static const char *names[] = {"AAPL", "MSFT", "IBM", "GE", "F", "T"};
    assert_int_equal(symtab_init(sy, 256), 0);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(symtab_set(sy, (uint16_t)(i + 1), names[i], strlen(names[i])), 0);
    assert_int_equal(symtab_set(sy, 20, "XOM", 3), 0);
}

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static void assert_no_server_bytes(void)
{
    mem_snapshot_t ms;
    mem_snapshot(&ms);
    assert_int_equal(ms.tag[MEM_TAG_SERVER].live, 0);
}

/* The day of AAPL (locate 1) and MSFT (locate 2) used below; IBM (3) never trades. */
static size_t day_one(ev_t *ev)
{
    size_t n = 0;
    uint64_t t = T0 + 1000;
    ev[n++] = ev_add(t++, 1, 1, 'B', PX(150.00), 100);
    ev[n++] = ev_add(t++, 1, 2, 'B', PX(150.01), 200);
    ev[n++] = ev_add(t++, 1, 3, 'B', PX(149.99), 50);
    ev[n++] = ev_add(t++, 1, 4, 'B', PX(150.01), 30);
    ev[n++] = ev_add(t++, 1, 5, 'S', PX(150.05), 100);
    ev[n++] = ev_add(t++, 1, 6, 'S', PX(150.03), 70);
    ev[n++] = ev_add(t++, 1, 7, 'S', PX(150.10), 10);
    ev[n++] = ev_add(t++, 1, 8, 'S', PX(150.05), 25);
    ev[n++] = ev_exec(t++, 1, 6, 20, 1);             /* 20 @ 150.03, order 6 keeps 50 */
    ev[n++] = ev_exec(t++, 1, 2, 200, 2);            /* 200 @ 150.01, order 2 gone */
    ev[n++] = ev_xcl(t++, 1, 3, 50);                 /* 149.99 level gone */
    ev[n++] = ev_hidden(t++, 1, PX(150.02), 100, 3); /* 100 @ 150.02 */
    ev[n++] = ev_add(t++, 2, 10, 'S', PX(300.00), 10);
    ev[n++] = ev_cexec(t++, 2, 10, 5, PX(299.50), 4); /* 5 @ 299.50 */
    ev[n++] = ev_del(t++, 2, 10);
    return n;
}

/* ---- records against hand-computed values -------------------------------------------------- */

static void test_snapshot_records_match_hand_computed_values(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    symtab_t sy;
    name_symbols(&sy);
    static shard_t sh;
    assert_int_equal(shard_init(&sh, &cfg, 1, NULL, NULL), 0);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 1), 0);

    ev_t ev[32];
    size_t n = day_one(ev);
    shard_apply(&sh, ev, n);
    snapshot_after_batch(&s, 0, &sh, &sy, ev, NULL, n, NULL, 5000000, false); /* first: publishes */

    snapshot_sym_t r;
    assert_int_equal(snapshot_find(&s, "AAPL", &r, 3), 0);
    assert_int_equal(r.locate, 1);
    assert_string_equal(r.symbol, "AAPL");
    assert_int_equal(r.version, 1);
    assert_int_equal(r.ts, T0 + 1000 + 11); /* AAPL's last event: the hidden trade */
    assert_int_equal(r.publish_ns, 5000000);
    /* book: bids 150.01 x 30 (order 4), 150.00 x 100; asks 150.03 x 50, 150.05 x 125 (two
     * orders), 150.10 x 10 */
    assert_true(r.flags & SNAPSHOT_HAS_BOOK);
    assert_int_equal(r.bid, PX(150.01));
    assert_int_equal(r.bid_size, 30);
    assert_int_equal(r.ask, PX(150.03));
    assert_int_equal(r.ask_size, 50);
    assert_int_equal(r.nbid, 2);
    assert_int_equal(r.nask, 3);
    const book_level_t bids[] = {{PX(150.01), 30, 1}, {PX(150.00), 100, 1}};
    const book_level_t asks[] = {{PX(150.03), 50, 1}, {PX(150.05), 125, 2}, {PX(150.10), 10, 1}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.bids[i].price, bids[i].price);
        assert_int_equal(r.bids[i].shares, bids[i].shares);
        assert_int_equal(r.bids[i].orders, bids[i].orders);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.asks[i].price, asks[i].price);
        assert_int_equal(r.asks[i].shares, asks[i].shares);
        assert_int_equal(r.asks[i].orders, asks[i].orders);
    }
    assert_int_equal(r.book.orders[0], 2);
    assert_int_equal(r.book.levels[0], 2);
    assert_int_equal(r.book.orders[1], 4);
    assert_int_equal(r.book.levels[1], 3);
    /* stats: 20 @ 150.03 + 200 @ 150.01 + 100 @ 150.02 */
    assert_true(r.flags & SNAPSHOT_HAS_STATS);
    double notional = 20 * 150.03 + 200 * 150.01 + 100 * 150.02;
    assert_int_equal(r.stats.trades, 3);
    assert_int_equal(r.stats.volume, 320);
    assert_true(fabs(r.stats.notional - notional) < 1e-6);
    assert_true(fabs(r.stats.vwap - notional / 320) < 1e-9);
    assert_int_equal(r.stats.last, PX(150.02));
    assert_int_equal(r.stats.open, PX(150.03));
    assert_int_equal(r.stats.high, PX(150.03));
    assert_int_equal(r.stats.low, PX(150.01));
    assert_int_equal(r.stats.bid, PX(150.01));
    assert_int_equal(r.stats.ask, PX(150.03));
    /* bars: the first bar is open, none closed */
    assert_true(r.flags & SNAPSHOT_HAS_OPEN_BAR);
    assert_false(r.flags & SNAPSHOT_HAS_LAST_BAR);
    uint64_t k0 = T0 / BAR_NS;
    assert_int_equal(r.open_bar.k, k0);
    assert_int_equal(r.open_bar.open, PX(150.03));
    assert_int_equal(r.open_bar.close, PX(150.02));
    assert_int_equal(r.open_bar.volume, 320);
    assert_int_equal(r.open_bar.trades, 3);

    /* depth asked below the configured depth; above it is clamped */
    assert_int_equal(snapshot_get(&s, 1, &r, 1), 0);
    assert_int_equal(r.nbid, 1);
    assert_int_equal(r.nask, 1);
    assert_int_equal(r.asks[0].price, PX(150.03));
    assert_int_equal(snapshot_get(&s, 1, &r, 64), 0);
    assert_int_equal(r.nask, 3);

    /* MSFT: the book is empty again, one trade of 5 @ 299.50 */
    assert_int_equal(snapshot_get(&s, 2, &r, 3), 0);
    assert_string_equal(r.symbol, "MSFT");
    assert_int_equal(r.bid_size + r.ask_size, 0);
    assert_int_equal(r.nbid + r.nask, 0);
    assert_int_equal(r.stats.trades, 1);
    assert_int_equal(r.stats.volume, 5);
    assert_int_equal(r.stats.last, PX(299.50));
    assert_true(fabs(r.stats.vwap - 299.50) < 1e-9);

    /* never touched, unknown, bad */
    assert_int_equal(snapshot_get(&s, 3, &r, 3), -ENOENT);
    assert_int_equal(snapshot_find(&s, "IBM", &r, 3), -ENOENT);
    assert_int_equal(snapshot_find(&s, "", &r, 3), -ENOENT);
    assert_int_equal(snapshot_find(&s, "WAYTOOLONG", &r, 3), -ENOENT);
    assert_int_equal(snapshot_get(&s, 0, &r, 3), -ENOENT);
    assert_int_equal(snapshot_read_slot(&s, 64, &r, 3), -EINVAL);
    assert_int_equal(snapshot_slots(&s), 2);

    /* within the interval: marked, not published; after it: published */
    ev_t more[2] = {ev_add(T0 + 2000, 1, 20, 'B', PX(150.02), 7)};
    shard_apply(&sh, more, 1);
    snapshot_after_batch(&s, 0, &sh, &sy, more, NULL, 1, NULL, 5500000, false);
    assert_int_equal(snapshot_get(&s, 1, &r, 3), 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.bid, PX(150.01));
    snapshot_after_batch(&s, 0, &sh, &sy, NULL, NULL, 0, NULL, 6000000, false); /* 1 ms later */
    assert_int_equal(snapshot_get(&s, 1, &r, 3), 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.bid, PX(150.02));
    assert_int_equal(r.bid_size, 7);
    assert_int_equal(r.ts, T0 + 2000);
    assert_int_equal(snapshot_get(&s, 2, &r, 3), 0);
    assert_int_equal(r.version, 1); /* MSFT was not touched */

    /* the bar clock moves (an event of no symbol): every record gets its closed bar */
    ev_t roll = ev_sys(T0 + BAR_NS + 5);
    shard_apply(&sh, &roll, 1);
    snapshot_after_batch(&s, 0, &sh, &sy, &roll, NULL, 1, NULL, 6000001, true);
    assert_int_equal(snapshot_find(&s, "AAPL", &r, 3), 0);
    assert_int_equal(r.version, 3);
    assert_true(r.flags & SNAPSHOT_HAS_LAST_BAR);
    assert_int_equal(r.last_bar.k, k0);
    assert_int_equal(r.last_bar.open, PX(150.03));
    assert_int_equal(r.last_bar.high, PX(150.03));
    assert_int_equal(r.last_bar.low, PX(150.01));
    assert_int_equal(r.last_bar.close, PX(150.02));
    assert_int_equal(r.last_bar.volume, 320);
    assert_true(fabs(r.last_bar.vwap - notional / 320) < 1e-9);
    assert_int_equal(r.open_bar.k, k0 + 1);
    assert_true(r.open_bar.flags & STATS_BAR_CARRIED);
    assert_int_equal(r.open_bar.close, PX(150.02));
    assert_int_equal(snapshot_get(&s, 2, &r, 3), 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.last_bar.close, PX(299.50));

    snapshot_counters_t c;
    snapshot_counters(&s, &c);
    assert_int_equal(c.slots, 2);
    assert_int_equal(c.no_slot, 0);
    assert_int_equal(c.publishes, 3);
    assert_int_equal(c.records, 2 + 1 + 2);

    snapshot_fini(&s);
    snapshot_fini(&s); /* twice is fine */
    shard_fini(&sh);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

/* ---- routed positions (serve with K > 1) ----------------------------------------------------- */

/* A worker hands the positions of its own events (the pipeline's routed list): only those are
 * marked, with the last one's feed time; events outside the list are not looked at, whoever owns
 * them (the cost is the list's, not the batch's). Values by hand. */
static void test_snapshot_routed_positions_mark_only_the_listed_events(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    cfg.snapshot_interval_ns = 0;
    symtab_t sy;
    name_symbols(&sy);
    static shard_t sh0, sh1;
    assert_int_equal(shard_init(&sh0, &cfg, 2, NULL, NULL), 0);
    assert_int_equal(shard_init(&sh1, &cfg, 2, NULL, NULL), 0);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 2), 0);
    static uint8_t owner[65536];
    for (unsigned i = 0; i < 65536; i++)
        owner[i] = (uint8_t)(i % 2);

    /* AAPL (1) and IBM (3) are worker 1's, MSFT (2) worker 0's; position 2 has no symbol */
    ev_t ev[6] = {ev_add(T0, 1, 1, 'B', PX(10), 1),
                  ev_add(T0 + 1, 2, 2, 'B', PX(20), 2),
                  ev_sys(T0 + 2),
                  ev_add(T0 + 3, 1, 3, 'B', PX(11), 4),
                  ev_add(T0 + 4, 3, 4, 'B', PX(30), 3),
                  ev_add(T0 + 5, 2, 5, 'B', PX(21), 6)};
    const uint32_t own0[] = {1, 5}, own1[] = {0, 2, 3}; /* 4 (IBM) left out on purpose */
    shard_apply_part(&sh0, ev, 6, owner, 0);
    shard_apply_part(&sh1, ev, 6, owner, 1);
    snapshot_after_batch(&s, 0, &sh0, &sy, ev, own0, 2, owner, 7, false);
    snapshot_after_batch(&s, 1, &sh1, &sy, ev, own1, 3, owner, 8, false);
    snapshot_sym_t r;
    assert_int_equal(snapshot_find(&s, "MSFT", &r, 3), 0);
    assert_int_equal(r.ts, T0 + 5);
    assert_int_equal(r.bid, PX(21));
    assert_int_equal(r.bid_size, 6);
    assert_int_equal(r.publish_ns, 7);
    assert_int_equal(snapshot_find(&s, "AAPL", &r, 3), 0);
    assert_int_equal(r.ts, T0 + 3);
    assert_int_equal(r.bid, PX(11));
    assert_int_equal(r.bid_size, 4);
    assert_int_equal(r.nbid, 2);
    assert_int_equal(r.publish_ns, 8);
    /* not in worker 1's list: not marked, so not published */
    assert_int_equal(snapshot_find(&s, "IBM", &r, 3), -ENOENT);
    snapshot_counters_t c;
    snapshot_counters(&s, &c);
    assert_int_equal(c.records, 2);
    snapshot_fini(&s);
    shard_fini(&sh0);
    shard_fini(&sh1);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

/* ---- owners, slot limit, bad configuration ------------------------------------------------- */

static void test_snapshot_owner_filter_and_slot_limit(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    cfg.max_symbols = 2;
    cfg.snapshot_interval_ns = 0;
    symtab_t sy;
    name_symbols(&sy);
    static shard_t sh0, sh1;
    assert_int_equal(shard_init(&sh0, &cfg, 2, NULL, NULL), 0);
    assert_int_equal(shard_init(&sh1, &cfg, 2, NULL, NULL), 0);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 2), 0);
    static uint8_t owner[65536];
    for (unsigned i = 0; i < 65536; i++)
        owner[i] = (uint8_t)(i % 2);

    ev_t ev[3] = {ev_add(T0, 1, 1, 'B', PX(10), 1), ev_add(T0 + 1, 2, 2, 'B', PX(20), 2),
                  ev_add(T0 + 2, 3, 3, 'B', PX(30), 3)};
    shard_apply_part(&sh0, ev, 3, owner, 0);
    shard_apply_part(&sh1, ev, 3, owner, 1);
    snapshot_after_batch(&s, 0, &sh0, &sy, ev, NULL, 3, owner, 1, false); /* MSFT only */
    snapshot_sym_t r;
    assert_int_equal(snapshot_slots(&s), 1);
    assert_int_equal(snapshot_find(&s, "MSFT", &r, 3), 0);
    assert_int_equal(r.bid, PX(20));
    assert_int_equal(snapshot_find(&s, "AAPL", &r, 3), -ENOENT);
    snapshot_after_batch(&s, 1, &sh1, &sy, ev, NULL, 3, owner, 1, false); /* AAPL, then IBM: full */
    assert_int_equal(snapshot_find(&s, "AAPL", &r, 3), 0);
    assert_int_equal(r.bid, PX(10));
    assert_int_equal(r.bid_size, 1);
    assert_int_equal(snapshot_find(&s, "IBM", &r, 3), -ENOENT);
    assert_int_equal(snapshot_get(&s, 3, &r, 3), -ENOENT);
    snapshot_after_batch(&s, 1, &sh1, &sy, ev, NULL, 3, owner, 2, false); /* still full: counted */
    snapshot_counters_t c;
    snapshot_counters(&s, &c);
    assert_int_equal(c.slots, 2);
    assert_int_equal(c.no_slot, 2);
    assert_int_equal(c.records, 1 + 1 + 1);
    /* a worker number out of range is ignored */
    snapshot_after_batch(&s, 7, &sh1, &sy, ev, NULL, 3, owner, 3, true);
    snapshot_fini(&s);

    /* bad configurations */
    config_t bad = cfg;
    bad.snapshot_depth = 0;
    assert_int_equal(snapshot_init(&s, &bad, 1), -EINVAL);
    bad = cfg;
    bad.snapshot_depth = SNAPSHOT_DEPTH_MAX + 1;
    assert_int_equal(snapshot_init(&s, &bad, 1), -EINVAL);
    bad = cfg;
    bad.pca_components = 0;
    assert_int_equal(snapshot_init(&s, &bad, 1), -EINVAL);
    assert_int_equal(snapshot_init(&s, &cfg, 0), -EINVAL);
    assert_int_equal(snapshot_init(&s, &cfg, SNAPSHOT_WORKERS_MAX + 1), -EINVAL);
    snapshot_fini(&s);
    shard_fini(&sh0);
    shard_fini(&sh1);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

/* ---- cross-section against the xsection and a naive correlation ----------------------------- */

enum { NROWS = 200, NTRACK = 6, MAXN = 8 };

static uint64_t g_rng = 88172645463325252ull;

static double unif(void)
{
    return (double)(xorshift64_next(&g_rng) >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
    double u = unif(), v = unif();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* Rows of a two-sector model: locates 1-3 share factor a, 4-6 factor b, all the market. */
static void make_rows(double rows[NROWS][MAXN])
{
    for (int t = 0; t < NROWS; t++) {
        double m = gauss(), a = gauss(), b = gauss();
        for (int c = 0; c < MAXN; c++)
            rows[t][c] = c < NTRACK ? 0.01 * (0.4 * m + (c < 3 ? a : b) + 0.5 * gauss()) : 0.0;
    }
}

static double naive_corr(double rows[NROWS][MAXN], int i, int j)
{
    double mi = 0, mj = 0;
    for (int t = 0; t < NROWS; t++) {
        mi += rows[t][i];
        mj += rows[t][j];
    }
    mi /= NROWS;
    mj /= NROWS;
    double sij = 0, sii = 0, sjj = 0;
    for (int t = 0; t < NROWS; t++) {
        sij += (rows[t][i] - mi) * (rows[t][j] - mj);
        sii += (rows[t][i] - mi) * (rows[t][i] - mi);
        sjj += (rows[t][j] - mj) * (rows[t][j] - mj);
    }
    return sij / sqrt(sii * sjj);
}

static void test_snapshot_xs_equals_xsection_and_naive_correlation(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    cfg.matrix_estimator = CFG_EST_CLOSE; /* the textbook correlation the test computes */
    symtab_t sy;
    name_symbols(&sy);
    static xsection_t x;
    assert_int_equal(xsection_init(&x, &cfg, &sy), 0);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 1), 0);

    snapshot_xs_head_t head;
    snapshot_xs_tx_t tx;
    assert_int_equal(snapshot_xs_begin(&s, &tx, &head), -ENODATA);
    snapshot_xs_copy_t cp = {0};
    assert_int_equal(snapshot_xs_read(&s, &cp), -ENODATA);
    assert_int_equal(snapshot_publish_xs(&s, &x), -EAGAIN); /* nothing computed yet */

    static double rows[NROWS][MAXN];
    make_rows(rows);
    for (int t = 0; t < NROWS; t++)
        xsection_push(&x, 1000 + (uint64_t)t, rows[t], true);
    assert_int_equal(xsection_compute(&x), 0);
    assert_int_equal(x.n, NTRACK);
    assert_int_equal(x.pca_rc, 0);
    assert_int_equal(x.graph_rc, 0);

    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    int prc = snapshot_publish_xs(&s, &x);
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    assert_int_equal(prc, 0);
    assert_int_equal(allocs, 0);

    snapshot_xs_node_t nodes[MAXN];
    snapshot_xs_edge_t edges[MAXN];
    double corr[MAXN * MAXN], load[3 * MAXN];
    cp = (snapshot_xs_copy_t){.nodes = nodes,
                              .nodes_cap = MAXN,
                              .edges = edges,
                              .edges_cap = MAXN,
                              .corr = corr,
                              .corr_cap = MAXN * MAXN,
                              .loadings = load,
                              .loadings_cap = 3 * MAXN};
    assert_int_equal(snapshot_xs_read(&s, &cp), 0);
    const snapshot_xs_head_t *h = &cp.head;
    assert_int_equal(h->gen, 1);
    assert_int_equal(h->n, NTRACK);
    assert_int_equal(h->k, 3);
    assert_int_equal(h->rows_window, NROWS);
    assert_int_equal(h->rows, NROWS);
    assert_int_equal(h->first_k, 1000);
    assert_int_equal(h->last_k, 1000 + NROWS - 1);
    assert_int_equal(h->bar_ns, BAR_NS);
    assert_int_equal(h->nedges, NTRACK - 1);
    assert_int_equal(h->nclusters, x.nclusters);
    assert_int_equal(h->nclusters, 2);
    assert_true(h->publish_ns > 0);
    assert_true(fabs(h->mst_total - x.graph.total) == 0);
    for (int i = 0; i < NTRACK; i++) {
        assert_int_equal(nodes[i].locate, x.locs[i]);
        assert_string_equal(nodes[i].symbol, symtab_name(&sy, x.locs[i]));
        assert_int_equal(nodes[i].cluster, x.graph.label[i]);
        assert_int_equal(nodes[i].degree, x.graph.degree[i]);
        assert_true(nodes[i].betweenness == graph_between_norm(&x.graph, (size_t)i));
        for (int j = 0; j < NTRACK; j++) {
            double got = corr[i * NTRACK + j];
            assert_true(got == x.compact[i * NTRACK + j]);
            double want = i == j ? 1.0 : naive_corr(rows, x.locs[i] - 1, x.locs[j] - 1);
            assert_true(fabs(got - want) < 1e-9);
        }
    }
    /* the two sectors are two clusters */
    assert_int_equal(nodes[0].cluster, nodes[1].cluster);
    assert_int_equal(nodes[0].cluster, nodes[2].cluster);
    assert_int_equal(nodes[3].cluster, nodes[4].cluster);
    assert_int_equal(nodes[3].cluster, nodes[5].cluster);
    assert_int_not_equal(nodes[0].cluster, nodes[3].cluster);
    for (int e = 0; e < NTRACK - 1; e++) {
        assert_int_equal(edges[e].u, x.graph.edges[e].u);
        assert_int_equal(edges[e].v, x.graph.edges[e].v);
        assert_true(edges[e].rho == x.graph.edges[e].rho);
        assert_true(edges[e].d == x.graph.edges[e].d);
    }
    for (int c = 0; c < 3; c++) {
        assert_true(h->pc_ratio[c] == x.pca.ratio[c]);
        assert_true(h->pc_value[c] == x.pca.values[c]);
        for (int i = 0; i < NTRACK; i++)
            assert_true(load[c * NTRACK + i] ==
                        x.pca.vectors[(size_t)c * x.pca.n + (x.locs[i] - 1u)]);
    }

    /* in place: the same values, cluster lists in node order, find by name */
    assert_int_equal(snapshot_xs_begin(&s, &tx, &head), 0);
    assert_true(snapshot_xs_corr(&tx, 1, 4) == x.compact[1 * NTRACK + 4]);
    assert_true(snapshot_xs_corr(&tx, 99, 99) == x.compact[NTRACK * NTRACK - 1]); /* clamped */
    assert_true(isnan(snapshot_xs_loading(&tx, 3, 0)));
    assert_int_equal(snapshot_xs_find(&tx, "GE"), 3);
    assert_int_equal(snapshot_xs_find(&tx, "XOM"), UINT32_MAX); /* locate 20: untracked */
    assert_int_equal(snapshot_xs_find(&tx, "NOPE"), UINT32_MAX);
    uint32_t seen = 0;
    for (uint32_t c = 0; c < head.nclusters; c++) {
        uint32_t size, cnt = 0, prev = 0;
        for (uint32_t i = snapshot_xs_cluster_first(&tx, c, &size); i != UINT32_MAX;
             i = snapshot_xs_next(&tx, i)) {
            assert_int_equal(x.graph.label[i], c);
            assert_true(cnt == 0 || i > prev);
            prev = i;
            cnt++;
        }
        assert_int_equal(cnt, size);
        assert_int_equal(size, x.graph.cluster_size[c]);
        seen += cnt;
    }
    assert_int_equal(seen, NTRACK);
    assert_int_equal(snapshot_xs_cluster_first(&tx, 5, NULL), UINT32_MAX);
    assert_true(snapshot_xs_valid(&tx));

    /* a second publish goes to the other buffer; a transaction on the first stays valid until
     * the writer comes round to it again */
    assert_int_equal(snapshot_publish_xs(&s, &x), 0);
    assert_true(snapshot_xs_valid(&tx));
    assert_int_equal(snapshot_publish_xs(&s, &x), 0);
    assert_false(snapshot_xs_valid(&tx));
    assert_int_equal(snapshot_xs_begin(&s, &tx, &head), 0);
    assert_int_equal(head.gen, 3);

    /* arrays too small */
    cp.corr_cap = 10;
    assert_int_equal(snapshot_xs_read(&s, &cp), -ENOSPC);
    snapshot_counters_t cn;
    snapshot_counters(&s, &cn);
    assert_int_equal(cn.xs_publishes, 3);

    snapshot_fini(&s);
    xsection_fini(&x);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

/* ---- no allocation ------------------------------------------------------------------------ */

static void test_snapshot_publishing_and_reading_allocate_nothing(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    cfg.snapshot_interval_ns = 0;
    symtab_t sy;
    name_symbols(&sy);
    static shard_t sh;
    assert_int_equal(shard_init(&sh, &cfg, 1, NULL, NULL), 0);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 1), 0);
    static xsection_t x;
    assert_int_equal(xsection_init(&x, &cfg, &sy), 0);
    static double rows[NROWS][MAXN];
    make_rows(rows);
    for (int t = 0; t < NROWS; t++)
        xsection_push(&x, (uint64_t)t, rows[t], true);
    assert_int_equal(xsection_compute(&x), 0);

    ev_t ev[32];
    size_t n = day_one(ev);
    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    uint64_t bad = 0;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < n; i++)
            ev[i].ts += BAR_NS / 4; /* bars roll now and then */
        /* re-adds of live references are counted duplicates: the book copes */
        shard_apply(&sh, ev, n);
        snapshot_after_batch(&s, 0, &sh, &sy, ev, NULL, n, NULL, (uint64_t)round + 1,
                             round % 3 == 0);
        bad += snapshot_publish_xs(&s, &x) != 0;
        snapshot_sym_t r;
        bad += snapshot_find(&s, "AAPL", &r, 3) != 0;
        bad += snapshot_get(&s, 2, &r, 3) != 0;
        snapshot_xs_node_t nodes[MAXN];
        snapshot_xs_copy_t cp = {.nodes = nodes, .nodes_cap = MAXN};
        bad += snapshot_xs_read(&s, &cp) != 0;
    }
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    assert_int_equal(bad, 0);
    assert_int_equal(allocs, 0);
    snapshot_fini(&s);
    xsection_fini(&x);
    shard_fini(&sh);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

/* ---- concurrency -------------------------------------------------------------------------- */

enum { CSYM = 4, READERS = 2 };

typedef struct race {
    snapshot_t *s;
    const symtab_t *sy;
    uint64_t iters;
    _Atomic int done;
    _Atomic uint64_t reads, mid_reads, busy, absent, torn, xs_reads, xs_busy, xs_torn;
} race_t;

/* Iteration c of the writer: every symbol gets a bid at 1.0000 + c ticks and an ask at 100.0000
 * - c ticks, both of c shares, and loses the orders of iteration c - 3, so its record must show
 * exactly: ts = c, version = c, depth min(c, 3) with level i at c - i, ... */
static bool record_ok(const snapshot_sym_t *r, const symtab_t *sy)
{
    uint64_t c = r->ts;
    uint64_t lv = c < 3 ? c : 3;
    bool ok = c >= 1 && r->version == c && r->publish_ns == c &&
              strcmp(r->symbol, symtab_name(sy, r->locate)) == 0 && r->bid == 10000 + (int64_t)c &&
              r->bid_size == c && r->ask == 1000000 - (int64_t)c && r->ask_size == c &&
              r->book.orders[0] == lv && r->book.orders[1] == lv && r->book.levels[0] == lv &&
              r->nbid == lv && r->nask == lv && r->stats.bid == r->bid && r->stats.ask == r->ask;
    for (uint64_t i = 0; ok && i < lv; i++)
        ok = r->bids[i].price == 10000 + (int64_t)(c - i) && r->bids[i].shares == c - i &&
             r->asks[i].price == 1000000 - (int64_t)(c - i) && r->asks[i].shares == c - i &&
             r->bids[i].orders == 1;
    return ok;
}

static void *reader_main(void *arg)
{
    race_t *rc = arg;
    uint64_t last_version[CSYM + 1] = {0};
    uint64_t i = 0;
    static const char *names[] = {"AAPL", "MSFT", "IBM", "GE"};
    while (!atomic_load(&rc->done)) {
        snapshot_sym_t r;
        unsigned k = (unsigned)(i++ % CSYM);
        int e = (i & 1) ? snapshot_get(rc->s, (uint16_t)(k + 1), &r, 3)
                        : snapshot_find(rc->s, names[k], &r, 3);
        if (e == -ENOENT && last_version[k + 1] > 0) { /* once there, a record stays */
            atomic_fetch_add(&rc->torn, 1);
            continue;
        }
        if (e == -EAGAIN || e == -ENOENT) {
            atomic_fetch_add(e == -EAGAIN ? &rc->busy : &rc->absent, 1);
            sched_yield();
            continue;
        }
        if (e != 0 || r.locate != k + 1 || !record_ok(&r, rc->sy) ||
            r.version < last_version[k + 1]) {
            atomic_fetch_add(&rc->torn, 1);
            continue;
        }
        last_version[k + 1] = r.version;
        atomic_fetch_add(&rc->reads, 1);
        if (r.version < rc->iters)
            atomic_fetch_add(&rc->mid_reads, 1);
    }
    return NULL;
}

static void *writer_main(void *arg)
{
    race_t *rc = arg;
    config_t cfg;
    small_config(&cfg);
    cfg.snapshot_interval_ns = 0;
    shard_t *sh = calloc(1, sizeof *sh);
    if (!sh || shard_init(sh, &cfg, 1, NULL, NULL) != 0) {
        atomic_fetch_add(&rc->torn, 1000000);
        free(sh);
        atomic_store(&rc->done, 1);
        return NULL;
    }
    for (uint64_t c = 1; c <= rc->iters; c++) {
        ev_t ev[4 * CSYM];
        size_t n = 0;
        for (uint16_t loc = 1; loc <= CSYM; loc++) {
            uint64_t ref = c * 16 + loc * 2;
            ev[n++] = ev_add(c, loc, ref, 'B', 10000 + (int64_t)c, c);
            ev[n++] = ev_add(c, loc, ref + 1, 'S', 1000000 - (int64_t)c, c);
            if (c > 3) {
                ev[n++] = ev_del(c, loc, ref - 48);
                ev[n++] = ev_del(c, loc, ref - 47);
            }
        }
        shard_apply(sh, ev, n);
        snapshot_after_batch(rc->s, 0, sh, rc->sy, ev, NULL, n, NULL, c, false);
    }
    shard_fini(sh);
    free(sh);
    return NULL;
}

/* A hand-made xsection of FN symbols whose every published figure is the counter c (large
 * enough that a slow reader can be lapped twice by the writer). */
enum { FN = 48, FMAXN = 64 };

typedef struct fake_xs {
    xsection_t x;
    double compact[FN * FN];
    uint16_t locs[FN];
    graph_edge_t edges[FN - 1];
    uint32_t degree[FN], label[FN];
    uint64_t between[FN];
    double ratio[2], values[2], vectors[2 * FMAXN];
} fake_xs_t;

static void fake_set(fake_xs_t *f, uint64_t c)
{
    double v = (double)c;
    for (int i = 0; i < FN * FN; i++)
        f->compact[i] = v;
    for (int e = 0; e < FN - 1; e++)
        f->edges[e] = (graph_edge_t){(uint32_t)e, (uint32_t)e + 1, v, v};
    for (int i = 0; i < FN; i++) {
        f->degree[i] = (uint32_t)c;
        f->label[i] = (uint32_t)((i + c) % 2);
        f->between[i] = (FN - 1) * (FN - 2) / 2 * c; /* normalised: c */
    }
    for (int i = 0; i < 2; i++)
        f->ratio[i] = f->values[i] = v;
    for (int i = 0; i < 2 * FMAXN; i++)
        f->vectors[i] = v;
    f->x.rows = f->x.first_k = f->x.last_k = c;
    f->x.rows_window = c;
}

static void fake_init(fake_xs_t *f, const symtab_t *sy)
{
    memset(f, 0, sizeof *f);
    xsection_t *x = &f->x;
    x->symbols = sy;
    x->have_result = true;
    x->max_n = FMAXN;
    x->n = FN;
    x->locs = f->locs;
    for (int i = 0; i < FN; i++)
        f->locs[i] = (uint16_t)(i + 1);
    x->compact = f->compact;
    x->graph.n = FN;
    x->graph.nedges = FN - 1;
    x->graph.edges = f->edges;
    x->graph.degree = f->degree;
    x->graph.between = f->between;
    x->graph.label = f->label;
    x->nclusters = 2;
    x->pca.k = 2;
    x->pca.n = FMAXN;
    x->pca.ratio = f->ratio;
    x->pca.values = f->values;
    x->pca.vectors = f->vectors;
}

typedef struct xs_race {
    race_t *rc;
    fake_xs_t *f;
} xs_race_t;

static void *xs_writer_main(void *arg)
{
    xs_race_t *xr = arg;
    for (uint64_t c = 1; c <= xr->rc->iters; c++) {
        fake_set(xr->f, c);
        if (snapshot_publish_xs(xr->rc->s, &xr->f->x) != 0)
            atomic_fetch_add(&xr->rc->xs_torn, 1);
    }
    return NULL;
}

typedef struct xs_buf {
    snapshot_xs_node_t nodes[FN];
    snapshot_xs_edge_t edges[FN];
    double corr[FN * FN], load[2 * FN];
} xs_buf_t;

static bool xs_ok(const snapshot_xs_head_t *h, const xs_buf_t *b)
{
    uint64_t c = h->rows;
    double v = (double)c;
    bool ok = c >= 1 && h->gen == c && h->first_k == c && h->last_k == c && h->rows_window == c &&
              h->n == FN && h->k == 2 && h->nedges == FN - 1 && h->nclusters == 2 &&
              h->pc_ratio[0] == v && h->pc_ratio[1] == v && h->pc_value[1] == v;
    for (int i = 0; ok && i < FN * FN; i++)
        ok = b->corr[i] == v;
    for (int i = 0; ok && i < 2 * FN; i++)
        ok = b->load[i] == v;
    for (int e = 0; ok && e < FN - 1; e++)
        ok = b->edges[e].rho == v && b->edges[e].d == v && b->edges[e].u == (uint32_t)e;
    for (int i = 0; ok && i < FN; i++)
        ok = b->nodes[i].degree == c && b->nodes[i].betweenness == v &&
             b->nodes[i].cluster == (uint32_t)((i + c) % 2) && b->nodes[i].locate == i + 1;
    return ok;
}

static void *xs_reader_main(void *arg)
{
    race_t *rc = arg;
    uint64_t last = 0;
    uint64_t i = 0;
    xs_buf_t *b = malloc(sizeof *b);
    while (b && !atomic_load(&rc->done)) {
        snapshot_xs_copy_t cp = {.nodes = b->nodes,
                                 .nodes_cap = FN,
                                 .edges = b->edges,
                                 .edges_cap = FN,
                                 .corr = b->corr,
                                 .corr_cap = FN * FN,
                                 .loadings = b->load,
                                 .loadings_cap = 2 * FN};
        int e;
        if (i++ & 1) {
            e = snapshot_xs_read(rc->s, &cp);
        } else { /* in place, with the cluster lists */
            snapshot_xs_tx_t tx;
            e = snapshot_xs_begin(rc->s, &tx, &cp.head);
            if (e == 0) {
                for (uint32_t k = 0; k < FN; k++)
                    snapshot_xs_node(&tx, k, &b->nodes[k]);
                for (uint32_t k = 0; k < FN - 1; k++)
                    snapshot_xs_edge(&tx, k, &b->edges[k]);
                for (uint32_t k = 0; k < FN * FN; k++)
                    b->corr[k] = snapshot_xs_corr(&tx, k / FN, k % FN);
                for (uint32_t k = 0; k < 2 * FN; k++)
                    b->load[k] = snapshot_xs_loading(&tx, k / FN, k % FN);
                uint32_t first0 = snapshot_xs_cluster_first(&tx, 0, NULL);
                uint32_t second0 = snapshot_xs_next(&tx, first0);
                if (!snapshot_xs_valid(&tx))
                    e = -EAGAIN;
                /* cluster 0 holds the nodes i with (i + c) % 2 == 0 */
                else if (first0 != (uint32_t)(cp.head.rows % 2) || second0 != first0 + 2)
                    e = -EPROTO;
            }
        }
        if (e == -EAGAIN || e == -ENODATA) {
            atomic_fetch_add(&rc->xs_busy, 1);
            sched_yield();
            continue;
        }
        if (e != 0 || !xs_ok(&cp.head, b) || cp.head.gen < last) {
            atomic_fetch_add(&rc->xs_torn, 1);
            continue;
        }
        last = cp.head.gen;
        atomic_fetch_add(&rc->xs_reads, 1);
    }
    free(b);
    return NULL;
}

static void test_snapshot_readers_never_see_a_mix_of_publishes(void **state)
{
    (void)state;
    config_t cfg;
    small_config(&cfg);
    cfg.snapshot_interval_ns = 0; /* the writer's clock is its counter: publish every batch */
    cfg.matrix_symbols = FMAXN;
    symtab_t sy;
    name_symbols(&sy);
    static snapshot_t s;
    assert_int_equal(snapshot_init(&s, &cfg, 1), 0);
    static fake_xs_t f;
    fake_init(&f, &sy);
    static race_t rc;
    memset(&rc, 0, sizeof rc);
    rc.s = &s;
    rc.sy = &sy;
    rc.iters = small_run() ? 3000 : 30000;
    xs_race_t xr = {&rc, &f};
    pthread_t w, xw, rd[READERS], xrd;
    assert_int_equal(pthread_create(&w, NULL, writer_main, &rc), 0);
    assert_int_equal(pthread_create(&xw, NULL, xs_writer_main, &xr), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, reader_main, &rc), 0);
    assert_int_equal(pthread_create(&xrd, NULL, xs_reader_main, &rc), 0);
    pthread_join(w, NULL);
    pthread_join(xw, NULL);
    /* the readers go on until they have read the final state */
    snapshot_sym_t r;
    assert_int_equal(snapshot_get(&s, 1, &r, 3), 0);
    while (atomic_load(&rc.reads) < 100 || atomic_load(&rc.xs_reads) < 100)
        sched_yield();
    atomic_store(&rc.done, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(rd[i], NULL);
    pthread_join(xrd, NULL);
    print_message("records: %llu reads (%llu while the writer ran), %llu busy (-EAGAIN), %llu not "
                  "yet there; cross-section: %llu reads, %llu busy or not yet there\n",
                  (unsigned long long)rc.reads, (unsigned long long)rc.mid_reads,
                  (unsigned long long)rc.busy, (unsigned long long)rc.absent,
                  (unsigned long long)rc.xs_reads, (unsigned long long)rc.xs_busy);
    assert_int_equal(atomic_load(&rc.torn), 0);
    assert_int_equal(atomic_load(&rc.xs_torn), 0);
    /* the final state, read after the writers stopped */
    for (uint16_t loc = 1; loc <= CSYM; loc++) {
        assert_int_equal(snapshot_get(&s, loc, &r, 3), 0);
        assert_int_equal(r.ts, rc.iters);
        assert_true(record_ok(&r, &sy));
    }
    snapshot_xs_head_t h;
    snapshot_xs_tx_t tx;
    assert_int_equal(snapshot_xs_begin(&s, &tx, &h), 0);
    assert_int_equal(h.gen, rc.iters);
    snapshot_fini(&s);
    symtab_fini(&sy);
    assert_no_server_bytes();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_snapshot_records_match_hand_computed_values, reset_counters),
        cmocka_unit_test_setup(test_snapshot_owner_filter_and_slot_limit, reset_counters),
        cmocka_unit_test_setup(test_snapshot_routed_positions_mark_only_the_listed_events,
                               reset_counters),
        cmocka_unit_test_setup(test_snapshot_xs_equals_xsection_and_naive_correlation,
                               reset_counters),
        cmocka_unit_test_setup(test_snapshot_publishing_and_reading_allocate_nothing,
                               reset_counters),
        cmocka_unit_test_setup(test_snapshot_readers_never_see_a_mix_of_publishes, reset_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
