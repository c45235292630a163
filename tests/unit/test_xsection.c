/*
 * test_xsection: the analytics chain end to end against ground truth. The generator writes a
 * day whose returns follow a factor model with K sectors and knows the true correlation of
 * every pair; the file goes through the real ingest path (reader, decoder), the shard (books,
 * stats, 1-minute bars) and the cross-section (rolling covariance, correlation, PCA, MST,
 * clusters). The estimated correlation must be close to the truth, the clusters must recover
 * the sectors (adjusted Rand index computed here from the contingency table), and PC1 must
 * explain about the share of variance the model gives the market factor. Also: the whole chain
 * allocates nothing after the seal; issue 14's rules (the last bar counts, a first close gives
 * no return, complete rows only) against a naive Pearson correlation; K-invariance of the books is
 * checked in the pipeline tests (issue #5).
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
#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

enum { NSYM = 40, NSECT = 4 };

static char g_dir[64];

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-xsection-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Adjusted Rand index of two labelings of n items (Hubert and Arabie), from the contingency
 * table; labels < 64. */
static double ari(const uint32_t *a, const uint32_t *b, size_t n)
{
    static double t[64][64];
    double ra[64] = {0}, rb[64] = {0};
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < n; i++) {
        assert_true(a[i] < 64 && b[i] < 64);
        t[a[i]][b[i]]++;
        ra[a[i]]++;
        rb[b[i]]++;
    }
    double sij = 0, sa = 0, sb = 0;
    for (int i = 0; i < 64; i++) {
        sa += ra[i] * (ra[i] - 1) / 2;
        sb += rb[i] * (rb[i] - 1) / 2;
        for (int j = 0; j < 64; j++)
            sij += t[i][j] * (t[i][j] - 1) / 2;
    }
    double total = (double)n * (double)(n - 1) / 2;
    double expect = sa * sb / total;
    double maxi = (sa + sb) / 2;
    return (sij - expect) / (maxi - expect);
}

static void test_xsection_recovers_the_generator_truth(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/day.itch", g_dir);
    gen_cfg_t gc;
    gen_cfg_default(&gc);
    gc.out = path;
    gc.symbols = NSYM;
    gc.sectors = NSECT;
    gc.messages = RUNNING_ON_VALGRIND ? 400000 : 2000000;
    gc.seed = 7;
    gc.truth = false;
    char err[256];
    gen_t *g;
    assert_int_equal(gen_create(&g, &gc, err, sizeof err), 0);
    gen_stats_t gs;
    assert_int_equal(gen_generate(g, &gs), 0);

    config_t cfg;
    config_default(&cfg);
    cfg.max_orders = 1u << 18;
    cfg.max_levels = 1u << 16;
    cfg.max_symbols = 1000;
    cfg.matrix_symbols = 64;
    cfg.clusters = NSECT;
    cfg.bar_history = 16;
    symtab_t sy;
    stream_t s;
    stream_cfg_t sc;
    stream_cfg_default(&sc);
    static shard_t sh;
    static xsection_t xs;
    assert_int_equal(symtab_init(&sy, cfg.max_symbols), 0);
    assert_int_equal(stream_init(&s, &sc, &sy), 0);
    assert_int_equal(xsection_init(&xs, &cfg, &sy), 0);
    assert_int_equal(shard_init(&sh, &cfg, 1, xsection_on_bar, &xs), 0);
    assert_int_equal(stream_open(&s, path), 0);

    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    ev_t *ev;
    size_t n;
    int rc;
    while ((rc = stream_next(&s, &ev, &n)) > 0)
        shard_apply(&sh, ev, n);
    assert_int_equal(rc, 0);
    assert_int_equal(xsection_compute(&xs), 0);
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    assert_int_equal(allocs, 0);

    /* books: every reference the generator used was known (it only names live orders) */
    book_stats_t bs;
    book_stats(&sh.book, &bs);
    assert_int_equal(bs.unknown_refs, 0);
    assert_int_equal(bs.anomalies, 0);
    assert_int_equal(bs.orders, gs.live_at_end);

    /* the symbols tracked are the generator's locates 1..NSYM */
    assert_int_equal(xs.n, NSYM);
    assert_true(xs.rows >= 300); /* 390 one-minute bars in the session */

    /* estimated vs true correlation */
    double sum_abs = 0, max_abs = 0, sum_true = 0, sum_est = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < NSYM; i++) {
        for (size_t j = i + 1; j < NSYM; j++) {
            double est = xs.compact[i * NSYM + j];
            double tru = gen_truth_corr(g, xs.locs[i], xs.locs[j]);
            double d = fabs(est - tru);
            sum_abs += d;
            max_abs = d > max_abs ? d : max_abs;
            sum_true += tru;
            sum_est += est;
            pairs++;
        }
    }
    double mae = sum_abs / (double)pairs;
    print_message("correlation vs truth: mean |error| %.3f, max %.3f, mean rho est %.3f true "
                  "%.3f over %zu pairs, %llu bar rows\n",
                  mae, max_abs, sum_est / (double)pairs, sum_true / (double)pairs, pairs,
                  (unsigned long long)xs.rows);
    assert_true(mae < (RUNNING_ON_VALGRIND ? 0.2 : 0.12));

    /* clusters vs sectors */
    uint32_t sector[NSYM], label[NSYM];
    for (size_t i = 0; i < NSYM; i++) {
        sector[i] = gen_symbol(g, xs.locs[i])->sector;
        label[i] = xs.graph.label[i];
    }
    double a = ari(sector, label, NSYM);
    print_message("clusters vs sectors: adjusted Rand index %.3f (%zu clusters); PC1 %.1f%%\n", a,
                  xs.nclusters, xs.pc_ratio[0] * 100);
    if (!RUNNING_ON_VALGRIND)
        assert_true(a >= 0.9);
    /* PC1: the market factor explains a large share of a factor-model cross-section */
    assert_true(xs.pc_ratio[0] > 0.2 && xs.pc_ratio[0] < 0.9);

    shard_fini(&sh);
    xsection_fini(&xs);
    stream_fini(&s);
    symtab_fini(&sy);
    gen_destroy(g);
}

/* Issue 14's rules, end to end through stats bars and xsection rows, against a naive Pearson
 * correlation computed here: closes of 3 named symbols over T one-minute bars (locate 3 starts
 * at bar LATE, locate 2 has no trade in bar 10 and carries its close); locate 4 names no
 * symbol. Expected, by the textbook: returns are ln of consecutive closes, the last bar counts
 * (closed by stats_close_open), a first close gives no return, and only rows where every
 * symbol with returns has one count (bar 0: no return at all, idle; bars 1..LATE lack locate
 * 3's return: emptied from the window at its first return). */
enum { T = 40, LATE = 5, NNAMED = 3 };

static void test_xsection_rows_every_return_none_invented(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    cfg.matrix_estimator = CFG_EST_CLOSE; /* the textbook computation this test checks */
    cfg.matrix_shrinkage = CFG_SHRINK_NONE;
    cfg.matrix_symbols = 4;
    cfg.max_symbols = 16;
    cfg.clusters = 2;
    cfg.min_cluster = 1;
    cfg.pca_components = 2;
    symtab_t sy;
    assert_int_equal(symtab_init(&sy, 16), 0);
    assert_int_equal(symtab_set(&sy, 1, "AAA", 3), 0);
    assert_int_equal(symtab_set(&sy, 2, "BBB", 3), 0);
    assert_int_equal(symtab_set(&sy, 3, "CCC", 3), 0);
    static xsection_t xs;
    int xrc = xsection_init(&xs, &cfg, &sy);
    if (xrc)
        fail_msg("xsection_init %d", xrc);
    stats_t st;
    stats_cfg_t sc = {.max_locate = 16,
                      .max_symbols = 16,
                      .bar_ns = 60000000000ull,
                      .bar_history = 4,
                      .on_bar = xsection_on_bar,
                      .on_bar_ctx = &xs};
    assert_int_equal(stats_init(&st, &sc), 0);

    int64_t px[T][NNAMED];
    int traded[T][NNAMED];
    uint64_t r = 12345;
    double lp[NNAMED] = {4.6, 3.9, 5.3};
    for (int k = 0; k < T; k++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        double f = ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 0.02;
        for (int j = 0; j < NNAMED; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            lp[j] += f * (1.0 + 0.5 * j) + ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 0.02;
            px[k][j] = (int64_t)llround(exp(lp[j]) * 10000.0);
            traded[k][j] = !(j == 2 && k < LATE) && !(j == 1 && k == 10);
        }
    }
    for (int k = 0; k < T; k++)
        for (int j = 0; j < NNAMED; j++)
            if (traded[k][j]) {
                ev_t e;
                memset(&e, 0, sizeof e);
                e.type = EV_CSV_TRADE;
                e.ts = (uint64_t)k * 60000000000ull + 30000000000ull + (uint64_t)j;
                e.locate = (uint16_t)(j + 1);
                e.price = px[k][j];
                e.shares = 100;
                stats_apply(&st, &e, 0);
            }
    assert_int_equal(xs.bars, T - 1); /* the last bar is still open */
    assert_int_equal(stats_close_open(&st), 1);
    assert_int_equal(xs.bars, T);

    /* the oracle: carried closes, log returns of consecutive closes, complete rows */
    double ret[T][NNAMED];
    size_t nrows = 0;
    int64_t last[NNAMED] = {0};
    for (int k = 0; k < T; k++) {
        int complete = 1;
        double row[NNAMED];
        for (int j = 0; j < NNAMED; j++) {
            int64_t c = traded[k][j] ? px[k][j] : last[j];
            row[j] = c > 0 && last[j] > 0 ? log((double)c / (double)last[j]) : NAN;
            complete &= !isnan(row[j]);
            last[j] = c;
        }
        if (complete)
            memcpy(ret[nrows++], row, sizeof row);
    }
    assert_int_equal(nrows, T - 1 - LATE);
    assert_int_equal(xs.rows, nrows);
    assert_int_equal(xs.idle_bars, 1); /* bar 0: nobody has a return */
    /* bars 1..LATE went in without CCC (it had no return yet); its first return (bar LATE + 1)
     * emptied them: complete cases over every symbol with returns */
    assert_int_equal(xs.restarts, 1);
    assert_int_equal(xs.discarded_rows, LATE);
    assert_int_equal(xs.partial_rows, 0);
    assert_int_equal(xs.rejected, 0);
    /* a started symbol without a return: a partial row, skipped */
    double part[4] = {0.01, NAN, 0.02, NAN};
    xsection_push(&xs, T, part, true);
    assert_int_equal(xs.partial_rows, 1);
    assert_int_equal(xs.rows, nrows);

    assert_int_equal(xsection_compute(&xs), 0);
    assert_int_equal(xs.n, NNAMED);
    double mean[NNAMED] = {0};
    for (size_t t = 0; t < nrows; t++)
        for (int j = 0; j < NNAMED; j++)
            mean[j] += ret[t][j] / (double)nrows;
    for (int a = 0; a < NNAMED; a++)
        for (int b = 0; b < NNAMED; b++) {
            double sab = 0, saa = 0, sbb = 0;
            for (size_t t = 0; t < nrows; t++) {
                double da = ret[t][a] - mean[a], db = ret[t][b] - mean[b];
                sab += da * db;
                saa += da * da;
                sbb += db * db;
            }
            double want = sab / sqrt(saa * sbb);
            double got = xs.compact[a * NNAMED + b];
            if (fabs(got - want) > 1e-12)
                fail_msg("rho[%d][%d] = %.17g, naive %.17g", a, b, got, want);
        }
    stats_fini(&st);
    xsection_fini(&xs);
    symtab_fini(&sy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xsection_recovers_the_generator_truth),
        cmocka_unit_test(test_xsection_rows_every_return_none_invented),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
