/*
 * test_pipeline: the multi-core pipeline against its single-worker self and against the input.
 *  - K-invariance: one generated day through K = 1, 2 and 4 workers gives identical books
 *    (every symbol's level checksum and order count), identical per-symbol stats (trades,
 *    volume, notional, VWAP, last, volatility) and a bit-identical correlation matrix.
 *  - Backpressure loses nothing: 2 batches in flight, tiny batches and a slow worker: every event
 *    is applied exactly once (the workers' applied counts add up to the file's messages) and the
 *    results still equal the K = 1 run.
 *  - The steady state allocates nothing in the whole process (malloc_count) with threads running.
 * The oracle for the K = 1 run itself is the single-shard path (engine/shard, tested with the
 * generator's truth in test_xsection) applied directly on this thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "sim/gen.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    gc.messages = RUNNING_ON_VALGRIND ? 150000 : 1000000;
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
} run_result_t;

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
            if (first && pass > 0)
                pipeline_new_session(&p, 1); /* the same day again: a new session */
            first = false;
            pipeline_publish(&p, b);
            if (rc <= 0)
                break;
        }
        assert_int_equal(rc, 0);
    }
    pipeline_finish(&p);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_results_do_not_depend_on_workers),
        cmocka_unit_test(test_pipeline_backpressure_loses_nothing),
        cmocka_unit_test(test_pipeline_new_session_starts_clean),
        cmocka_unit_test(test_pipeline_steady_state_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
