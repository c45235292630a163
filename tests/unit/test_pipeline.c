/*
 * test_pipeline: the multi-core pipeline against its single-worker self and against the input.
 *  - K-invariance: one generated day through K = 1, 2 and 4 workers gives identical books
 *    (every symbol's level checksum and order count), identical per-symbol stats (trades,
 *    volume, notional, VWAP, last, volatility) and a bit-identical correlation matrix.
 *  - Backpressure loses nothing: 2 batches in flight, tiny batches and a slow worker: every event
 *    is applied exactly once (the workers' applied counts add up to the file's messages) and the
 *    results still equal the K = 1 run.
 *  - The steady state allocates nothing in the whole process (malloc_count) with threads running.
 *  - K = 8 and a skewed day (20 of the 60 symbols merged into locate 1, a third of the messages):
 *    still identical to K = 1; after a session boundary the shards are re-packed by the counts
 *    of the session that ended, and the heaviest shard is within Graham's 4/3 bound of the
 *    lower bound max(largest locate, total / K) computed here from the counts.
 *  - pipeline_balance on a hand-worked example (greedy, largest first).
 *  - A day published faster than the serve hook's analytics interval: pipeline_sync sees every
 *    row pushed, and the idle tick (pipeline_publish_tick) computes them (#16's 503 on /v1/mst).
 *  - The serve hook (on_batch) is handed exactly each worker's own events, K = 1, 3, 8.
 * The oracle for the K = 1 run itself is the single-shard path (engine/shard, tested with the
 * generator's truth in test_xsection) applied directly on this thread.
 * The day: 10^6 messages; 150,000 under valgrind and 250,000 under TSan (both ~10-50x slower;
 * every thread hand-off of the full day happens within the first thousand batches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "mem/sanitize.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/valgrind.h>

enum { NSYM = 60 };

static char g_dir[64], g_path[128];
static uint64_t g_messages;

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-pipeline-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/day.itch", g_dir);
    gen_cfg_t gc;
    gen_cfg_default(&gc);
    gc.out = g_path;
    gc.symbols = NSYM;
    gc.sectors = 4;
    gc.messages = RUNNING_ON_VALGRIND ? 150000 : MEM_TSAN_ON ? 250000 : 1000000;
    gc.truth = false;
    gc.seed = 99;
    gen_stats_t gs;
    if (gen_run(&gc, &gs) != 0)
        return -1;
    g_messages = gs.messages;
    mem_debug_reset();
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct sym_result {
    uint64_t book_sum;
    uint32_t orders, levels;
    uint64_t trades, volume;
    double notional, vwap, vol;
    int64_t last;
} sym_result_t;

typedef struct run_result {
    sym_result_t sym[NSYM + 1];
    double corr[NSYM * NSYM];
    uint64_t applied, allocs_after_seal, acquire_waits;
    size_t n;
    uint64_t pass_load[2][PIPE_MAX_WORKERS]; /* messages routed to each shard, passes 1 and 2 */
    uint64_t loc_msgs[NSYM + 1];             /* messages per locate in one pass */
    uint64_t rebalances;
} run_result_t;

/* Skewed day: locates 1..20 become locate 1 (order references are unique across the day, so
 * the merged book stays consistent): one locate carries about a third of the messages. */
static bool g_skew;

static void skew(ev_t *ev, size_t n)
{
    if (!g_skew)
        return;
    for (size_t i = 0; i < n; i++)
        if (ev[i].locate >= 1 && ev[i].locate <= 20)
            ev[i].locate = 1;
}

/* The serve hook (on_batch) when g_hook: per locate, the events handed to it (each locate is
 * written by the one worker that owns it while the session lasts), and per worker what it saw
 * wrong: positions not increasing, or an event of a locate it does not own. */
static bool g_hook;
static uint64_t g_hook_loc[NSYM + 1];
static uint64_t g_hook_bad[PIPE_MAX_WORKERS];
static uint64_t g_hook_calls[PIPE_MAX_WORKERS];

static void hook(void *ctx, unsigned w, const shard_t *sh, const ev_t *ev, const uint32_t *own,
                 size_t n, const uint8_t *owner, bool force)
{
    (void)ctx;
    (void)sh;
    (void)force;
    g_hook_calls[w]++;
    for (size_t i = 0; i < n; i++) {
        uint32_t pos = own ? own[i] : (uint32_t)i;
        if (own && i > 0 && pos <= own[i - 1]) {
            g_hook_bad[w]++;
            continue;
        }
        uint16_t loc = ev[pos].locate;
        if (owner ? owner[loc] != w : own != NULL)
            g_hook_bad[w]++;
        else if (loc <= NSYM)
            g_hook_loc[loc]++;
    }
}

/* matrix.estimator and matrix.shrinkage of the runs (test_pipeline_every_estimator_...) */
static uint32_t g_estimator = CFG_EST_SUBSAMPLE, g_shrinkage = CFG_SHRINK_NONE;

static void run_passes(unsigned workers, uint32_t batches, uint32_t batch_events, uint64_t delay_ns,
                       unsigned passes, run_result_t *out)
{
    memset(out, 0, sizeof *out);
    config_t cfg;
    config_default(&cfg);
    cfg.workers = workers;
    cfg.batches = batches;
    cfg.batch_events = batch_events;
    cfg.max_orders = 1u << 17;
    cfg.max_levels = 1u << 16;
    cfg.max_symbols = 256;
    cfg.bar_history = 8;
    cfg.matrix_symbols = 64;
    cfg.ring_slots = 64;
    cfg.matrix_estimator = g_estimator;
    cfg.matrix_shrinkage = g_shrinkage;
    cfg.subsample_grids = g_estimator == CFG_EST_AUTO ? 0 : 3; /* auto: the default's own K */
    symtab_t sy;
    stream_t s;
    stream_cfg_t sc;
    stream_cfg_default(&sc);
    sc.batch_events = batch_events;
    static pipeline_t p;
    assert_int_equal(symtab_init(&sy, cfg.max_symbols), 0);
    assert_int_equal(stream_init(&s, &sc, &sy), 0);
    assert_int_equal(pipeline_init(&p, &cfg, &sy), 0);
    p.worker_delay_ns = delay_ns;
    if (g_hook) {
        p.on_batch = hook;
        memset(g_hook_loc, 0, sizeof g_hook_loc);
        memset(g_hook_bad, 0, sizeof g_hook_bad);
        memset(g_hook_calls, 0, sizeof g_hook_calls);
    }
    assert_int_equal(pipeline_start(&p), 0);

    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    int rc = 0;
    for (unsigned pass = 0; pass < passes; pass++) {
        assert_int_equal(stream_open(&s, g_path), 0);
        bool first = true;
        for (;;) {
            pipe_batch_t *b = pipeline_acquire(&p);
            size_t n = 0;
            rc = stream_next_into(&s, b->ev, p.batch_cap, &n);
            b->n = rc > 0 ? (uint32_t)n : 0;
            skew(b->ev, b->n);
            if (pass == 0)
                for (size_t i = 0; i < b->n; i++)
                    if (b->ev[i].locate <= NSYM)
                        out->loc_msgs[b->ev[i].locate]++;
            if (first && pass > 0) {
                for (unsigned w = 0; w < p.k; w++)
                    out->pass_load[0][w] = p.shard_load[w];
                pipeline_new_session(&p, 1); /* the same day again: a new session */
            }
            first = false;
            pipeline_publish(&p, b);
            if (rc <= 0)
                break;
        }
        assert_int_equal(rc, 0);
    }
    pipeline_finish(&p);
    if (passes > 1)
        for (unsigned w = 0; w < p.k; w++)
            out->pass_load[1][w] = p.shard_load[w] - out->pass_load[0][w];
    out->rebalances = p.rebalances;
    assert_int_equal(xsection_compute(&p.xs), 0);
    out->allocs_after_seal = malloc_count_allocs_since(&before);
    mem_unseal();

    for (unsigned w = 0; w < p.k; w++)
        out->applied += p.w[w].owned;
    out->applied /= passes;
    out->acquire_waits = p.acquire_waits;
    for (uint16_t loc = 1; loc <= NSYM; loc++) {
        const shard_t *sh = &p.w[p.owner[loc]].shard;
        sym_result_t *r = &out->sym[loc];
        r->book_sum = book_checksum(&sh->book, loc);
        book_symbol_t bs;
        assert_int_equal(book_symbol(&sh->book, loc, &bs), 0);
        r->orders = bs.orders[0] + bs.orders[1];
        r->levels = bs.levels[0] + bs.levels[1];
        stats_sym_t ss;
        if (stats_get(&sh->stats, loc, &ss) == 0) {
            r->trades = ss.trades;
            r->volume = ss.volume;
            r->notional = ss.notional;
            r->vwap = ss.vwap;
            r->vol = ss.vol;
            r->last = ss.last;
        }
    }
    out->n = p.xs.n;
    assert_int_equal(out->n, NSYM);
    memcpy(out->corr, p.xs.compact, NSYM * NSYM * sizeof(double));
    pipeline_fini(&p);
    stream_fini(&s);
    symtab_fini(&sy);
}

static void run(unsigned workers, uint32_t batches, uint32_t batch_events, uint64_t delay_ns,
                run_result_t *out)
{
    run_passes(workers, batches, batch_events, delay_ns, 1, out);
}

static void same(const run_result_t *a, const run_result_t *b)
{
    for (int loc = 1; loc <= NSYM; loc++) {
        const sym_result_t *x = &a->sym[loc], *y = &b->sym[loc];
        if (x->book_sum != y->book_sum || x->orders != y->orders || x->levels != y->levels)
            fail_msg("locate %d: book differs (checksum %llx/%llx, orders %u/%u, levels %u/%u)",
                     loc, (unsigned long long)x->book_sum, (unsigned long long)y->book_sum,
                     x->orders, y->orders, x->levels, y->levels);
        if (x->trades != y->trades || x->volume != y->volume || x->last != y->last ||
            memcmp(&x->notional, &y->notional, sizeof(double)) ||
            memcmp(&x->vwap, &y->vwap, sizeof(double)) || memcmp(&x->vol, &y->vol, sizeof(double)))
            fail_msg("locate %d: stats differ (trades %llu/%llu, vwap %.10f/%.10f, vol %g/%g)", loc,
                     (unsigned long long)x->trades, (unsigned long long)y->trades, x->vwap, y->vwap,
                     x->vol, y->vol);
    }
    assert_memory_equal(a->corr, b->corr, sizeof a->corr);
}

static run_result_t g_k1;

static void test_pipeline_results_do_not_depend_on_workers(void **state)
{
    (void)state;
    static run_result_t k2, k4;
    run(1, 32, 4096, 0, &g_k1);
    assert_int_equal(g_k1.applied, g_messages);
    /* sanity of the reference: the day traded in every symbol */
    for (int loc = 1; loc <= NSYM; loc++)
        assert_true(g_k1.sym[loc].trades > 0);
    run(2, 32, 4096, 0, &k2);
    same(&g_k1, &k2);
    assert_int_equal(k2.applied, g_messages);
    run(4, 32, 1000, 0, &k4);
    same(&g_k1, &k4);
    assert_int_equal(k4.applied, g_messages);
    run(8, 32, 777, 0, &k4);
    same(&g_k1, &k4);
    assert_int_equal(k4.applied, g_messages);
}

/* Each estimator (with and without shrinkage, and the default: auto, all keys auto) gives the same
 * correlation bit for bit with 1 and 4 workers and allocates nothing after the seal; and the
 * estimators do differ, so the key reaches the cross-section. */
static void test_pipeline_every_estimator_independent_of_workers(void **state)
{
    (void)state;
    static run_result_t one, four, prev;
    const uint32_t kinds[][2] = {
        {CFG_EST_CLOSE, CFG_SHRINK_NONE},        {CFG_EST_REFRESH, CFG_SHRINK_NONE},
        {CFG_EST_SUBSAMPLE, CFG_SHRINK_NONE},    {CFG_EST_SUBSAMPLE, CFG_SHRINK_LW},
        {CFG_EST_CLOSE, CFG_SHRINK_LW},          {CFG_EST_TWOSCALE, CFG_SHRINK_NONE},
        {CFG_EST_TWOSCALE, CFG_SHRINK_LW_BLOCK}, {CFG_EST_SUBSAMPLE, CFG_SHRINK_LW_BLOCK},
        {CFG_EST_AUTO, CFG_SHRINK_AUTO}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        g_estimator = kinds[i][0];
        g_shrinkage = kinds[i][1];
        run(1, 32, 4096, 0, &one);
        run(4, 32, 1000, 0, &four);
        assert_int_equal(four.allocs_after_seal, 0);
        same(&one, &four);
        if (i > 0)
            assert_true(memcmp(one.corr, prev.corr, sizeof one.corr) != 0);
        prev = one;
    }
    g_estimator = CFG_EST_SUBSAMPLE;
    g_shrinkage = CFG_SHRINK_NONE;
}

static void test_pipeline_skewed_day_same_results_and_rebalanced(void **state)
{
    (void)state;
    static run_result_t one, eight, twice;
    g_skew = true;
    run(1, 32, 4096, 0, &one);
    run(8, 32, 1000, 0, &eight);
    same(&one, &eight);
    assert_int_equal(eight.applied, g_messages);
    /* the skew is real: locate 1 carries over a quarter of the messages */
    uint64_t total = 0, largest = 0;
    for (int loc = 0; loc <= NSYM; loc++) {
        total += one.loc_msgs[loc];
        if (one.loc_msgs[loc] > largest)
            largest = one.loc_msgs[loc];
    }
    assert_true(largest * 4 > total);
    /* two sessions on 4 workers: the second is packed from the first's counts */
    const unsigned k = 4;
    run_passes(k, 16, 4096, 0, 2, &twice);
    g_skew = false;
    assert_int_equal(twice.rebalances, 1);
    memcpy(twice.corr, one.corr, sizeof twice.corr);
    same(&one, &twice); /* the second session equals one session alone */
    uint64_t max1 = 0, max2 = 0, sum2 = 0;
    for (unsigned w = 0; w < k; w++) {
        if (twice.pass_load[0][w] > max1)
            max1 = twice.pass_load[0][w];
        if (twice.pass_load[1][w] > max2)
            max2 = twice.pass_load[1][w];
        sum2 += twice.pass_load[1][w];
    }
    assert_int_equal(sum2, g_messages);
    uint64_t lb = largest > (total + k - 1) / k ? largest : (total + k - 1) / k;
    assert_true(max2 * 3 <= lb * 4); /* LPT: within 4/3 of the optimum, hence of this bound */
    assert_true(max2 <= max1);       /* and no worse than locate % K */
}

static void test_pipeline_balance_packs_largest_first(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    cfg.workers = 2;
    cfg.batches = 2;
    cfg.batch_events = 64;
    cfg.max_orders = 1024;
    cfg.max_levels = 1024;
    cfg.max_symbols = 16;
    cfg.bar_history = 2;
    cfg.matrix_symbols = 8;
    cfg.ring_slots = 4;
    symtab_t sy;
    static pipeline_t p;
    static uint32_t counts[65536];
    assert_int_equal(symtab_init(&sy, cfg.max_symbols), 0);
    assert_int_equal(pipeline_init(&p, &cfg, &sy), 0);
    counts[1] = 10;
    counts[2] = 7;
    counts[3] = 6;
    counts[4] = 5;
    counts[5] = 4;
    pipeline_balance(&p, counts);
    /* by hand: 10 -> s0 (10, 0); 7 -> s1 (10, 7); 6 -> s1 (10, 13); 5 -> s0 (15, 13);
     * 4 -> s1 (15, 17). locate % 2 would give s1 = 10 + 6 + 4 = 20. */
    assert_int_equal(p.owner[1], 0);
    assert_int_equal(p.owner[2], 1);
    assert_int_equal(p.owner[3], 1);
    assert_int_equal(p.owner[4], 0);
    assert_int_equal(p.owner[5], 1);
    /* locates without messages keep locate % K */
    assert_int_equal(p.owner[6], 0);
    assert_int_equal(p.owner[7], 1);
    pipeline_fini(&p);
    symtab_fini(&sy);
}

/* The serve hook gets each worker's own events only (serve's snapshots touch no other event):
 * with K = 1, 3 and 8 the events it is handed add up, locate by locate, to what the test itself
 * counted in the batches it decoded; none is another worker's; every worker is called for every
 * batch. */
static void test_pipeline_hook_gets_each_workers_own_events(void **state)
{
    (void)state;
    static run_result_t r;
    static const unsigned ks[] = {1, 3, 8};
    g_hook = true;
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        run(ks[t], 16, 1000, 0, &r);
        assert_int_equal(r.applied, g_messages);
        uint64_t total = 0;
        for (int loc = 0; loc <= NSYM; loc++) {
            if (g_hook_loc[loc] != r.loc_msgs[loc])
                fail_msg("K=%u locate %d: hook saw %llu events, the batches held %llu", ks[t], loc,
                         (unsigned long long)g_hook_loc[loc], (unsigned long long)r.loc_msgs[loc]);
            total += r.loc_msgs[loc];
        }
        assert_true(total > g_messages / 2); /* the check covered most of the day */
        for (unsigned w = 0; w < ks[t]; w++) {
            assert_int_equal(g_hook_bad[w], 0);
            assert_int_equal(g_hook_calls[w], g_hook_calls[0]);
        }
        assert_true(g_hook_calls[0] >= g_messages / 1000);
    }
    g_hook = false;
}

static void test_pipeline_backpressure_loses_nothing(void **state)
{
    (void)state;
    static run_result_t slow;
    if (g_k1.applied == 0)
        run(1, 32, 4096, 0, &g_k1);
    /* two batches in flight, 100-event batches, each worker sleeping 20 us per batch */
    run(2, 2, 100, 20000, &slow);
    assert_int_equal(slow.applied, g_messages);
    assert_true(slow.acquire_waits > 0); /* the reader did wait: the path was exercised */
    same(&g_k1, &slow);
}

static void test_pipeline_new_session_starts_clean(void **state)
{
    (void)state;
    static run_result_t twice;
    if (g_k1.applied == 0)
        run(1, 32, 4096, 0, &g_k1);
    /* the same day twice, a new session in between: books and per-symbol stats are those of
     * one day (the correlation window spans both days, so it is not compared) */
    run_passes(2, 16, 4096, 0, 2, &twice);
    assert_int_equal(twice.applied, g_messages);
    memcpy(twice.corr, g_k1.corr, sizeof twice.corr);
    same(&g_k1, &twice);
}

static void test_pipeline_steady_state_allocates_nothing(void **state)
{
    (void)state;
    static run_result_t r;
    run(2, 8, 4096, 0, &r);
    assert_int_equal(r.allocs_after_seal, 0);
}

/* #16: a day fed faster than server.analytics_interval (serve at max rate, 1 s bars) was never
 * computed: the cross-section thread looked at the interval only when a bar came, and none
 * came after the feed stopped. Here the interval is an hour, so only the idle tick can bring
 * the compute: on_xs must run after it, over every row of the day. */
typedef struct xs_seen {
    _Atomic uint64_t computes, rows;
} xs_seen_t;

static void count_xs(void *ctx, const xsection_t *x)
{
    xs_seen_t *c = ctx;
    atomic_store(&c->rows, x->rows);
    atomic_fetch_add(&c->computes, 1);
}

static void test_pipeline_idle_tick_computes_rows_a_fast_feed_left(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    cfg.workers = 2;
    cfg.batches = 8;
    cfg.max_orders = 1u << 17;
    cfg.max_levels = 1u << 16;
    cfg.max_symbols = 256;
    cfg.matrix_symbols = 64;
    cfg.ring_slots = 64;
    symtab_t sy;
    stream_t s;
    stream_cfg_t sc;
    stream_cfg_default(&sc);
    static pipeline_t p;
    static xs_seen_t seen;
    assert_int_equal(symtab_init(&sy, cfg.max_symbols), 0);
    assert_int_equal(stream_init(&s, &sc, &sy), 0);
    assert_int_equal(pipeline_init(&p, &cfg, &sy), 0);
    p.on_xs = count_xs;
    p.hook_ctx = &seen;
    p.xs_interval_ns = 3600ull * 1000000000ull;
    assert_int_equal(pipeline_start(&p), 0);
    assert_int_equal(stream_open(&s, g_path), 0);
    int rc;
    do {
        pipe_batch_t *b = pipeline_acquire(&p);
        size_t n = 0;
        rc = stream_next_into(&s, b->ev, p.batch_cap, &n);
        b->n = rc > 0 ? (uint32_t)n : 0;
        pipeline_publish(&p, b);
    } while (rc > 0);
    assert_int_equal(rc, 0);
    pipeline_sync(&p); /* every row pushed: nothing computed yet (the interval is an hour) */
    assert_true(p.xs.rows > 10);
    assert_int_equal(atomic_load(&seen.computes), 0);
    pipeline_publish_tick(&p);
    for (int i = 0; i < 10000 && atomic_load(&seen.computes) == 0; i++) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    assert_int_equal(atomic_load(&seen.computes), 1);
    assert_int_equal(atomic_load(&seen.rows), p.xs.rows);
    pipeline_publish_tick(&p); /* no new row since: no second compute */
    pipeline_finish(&p);
    assert_int_equal(atomic_load(&seen.computes), 1);
    pipeline_fini(&p);
    stream_fini(&s);
    symtab_fini(&sy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_results_do_not_depend_on_workers),
        cmocka_unit_test(test_pipeline_every_estimator_independent_of_workers),
        cmocka_unit_test(test_pipeline_skewed_day_same_results_and_rebalanced),
        cmocka_unit_test(test_pipeline_balance_packs_largest_first),
        cmocka_unit_test(test_pipeline_hook_gets_each_workers_own_events),
        cmocka_unit_test(test_pipeline_backpressure_loses_nothing),
        cmocka_unit_test(test_pipeline_new_session_starts_clean),
        cmocka_unit_test(test_pipeline_steady_state_allocates_nothing),
        cmocka_unit_test(test_pipeline_idle_tick_computes_rows_a_fast_feed_left),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
