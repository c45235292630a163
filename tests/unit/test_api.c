/*
 * test_api: the public C API as a user's program sees it: only <tickcore/tickcore.h>, linked
 * against build/libtickcore.so. The inputs are ITCH 5.0 files written here message by message
 * (so every expected figure is computed by hand from the messages: bar OHLCV, the book's levels,
 * the Pearson correlation of the bars' log returns by the textbook formula) and the real NASDAQ
 * AAPL excerpt of tests/data (its README's published fact: 80 live orders on 64 levels after
 * the first 1,001 messages). Also: configuration errors with their messages, readers before the
 * run, a truncated file, and memory: every byte the session took is back after close.
 * In steps (1.1): the file fed in random-sized chunks equals the run of the file (every reader,
 * bytes and bits); bad bytes name their offset, counted here from the length prefixes; between
 * steps the AAPL book matches the published 80 orders on 64 levels and a run over a prefix file
 * of the first 5,000 messages; the correlation between steps is recomputed in place.
 */
#include <tickcore/tickcore.h>

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- a tiny ITCH 5.0 BinaryFILE writer ---- */

typedef struct itchw {
    FILE *f;
    char path[64];
    unsigned count;
} itchw_t;

static void w_open(itchw_t *w)
{
    snprintf(w->path, sizeof w->path, "/tmp/test_api-XXXXXX");
    int fd = mkstemp(w->path);
    assert_true(fd >= 0);
    w->f = fdopen(fd, "wb");
    assert_non_null(w->f);
    w->count = 0;
}

static void put(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void w_msg(itchw_t *w, const uint8_t *m, size_t len)
{
    uint8_t hdr[2];
    put(hdr, len, 2);
    assert_int_equal(fwrite(hdr, 1, 2, w->f), 2);
    assert_int_equal(fwrite(m, 1, len, w->f), len);
    w->count++;
}

static void w_head(uint8_t *m, char type, uint16_t locate, uint64_t ts)
{
    m[0] = (uint8_t)type;
    put(m + 1, locate, 2);
    put(m + 3, 0, 2);
    put(m + 5, ts, 6);
}

static void w_stock(uint8_t *m, const char *sym)
{
    memset(m, ' ', 8);
    memcpy(m, sym, strlen(sym));
}

static void w_directory(itchw_t *w, uint16_t locate, const char *sym)
{
    uint8_t m[39] = {0};
    w_head(m, 'R', locate, 1000);
    w_stock(m + 11, sym);
    m[19] = 'Q';
    m[20] = 'N';
    put(m + 21, 100, 4);
    m[25] = 'N';
    w_msg(w, m, sizeof m);
}

static void w_trade(itchw_t *w, uint16_t locate, const char *sym, uint64_t ts, uint32_t shares,
                    uint32_t price, uint64_t match)
{
    uint8_t m[44] = {0};
    w_head(m, 'P', locate, ts);
    m[19] = 'B';
    put(m + 20, shares, 4);
    w_stock(m + 24, sym);
    put(m + 32, price, 4);
    put(m + 36, match, 8);
    w_msg(w, m, sizeof m);
}

static void w_add(itchw_t *w, uint16_t locate, const char *sym, uint64_t ts, uint64_t ref,
                  char side, uint32_t shares, uint32_t price)
{
    uint8_t m[36] = {0};
    w_head(m, 'A', locate, ts);
    put(m + 11, ref, 8);
    m[19] = (uint8_t)side;
    put(m + 20, shares, 4);
    w_stock(m + 24, sym);
    put(m + 32, price, 4);
    w_msg(w, m, sizeof m);
}

static void w_delete(itchw_t *w, uint16_t locate, uint64_t ts, uint64_t ref)
{
    uint8_t m[19] = {0};
    w_head(m, 'D', locate, ts);
    put(m + 11, ref, 8);
    w_msg(w, m, sizeof m);
}

static void w_system(itchw_t *w, uint64_t ts, char code)
{
    uint8_t m[12] = {0};
    w_head(m, 'S', 0, ts);
    m[11] = (uint8_t)code;
    w_msg(w, m, sizeof m);
}

static void w_close(itchw_t *w)
{
    assert_int_equal(fclose(w->f), 0);
}

/* ---- the hand-made day: 3 symbols, 8 one-minute bars ---- */

#define NSYM  3
#define NBARS 8
static const char *SYMS[NSYM] = {"AAA", "BBB", "CCC"};
/* closing trade price of each bar, 1/10000 dollars */
static const uint32_t CLOSE[NSYM][NBARS] = {
    {100000, 101000, 100500, 102000, 101500, 103000, 102500, 104000},
    {200000, 203000, 201000, 205000, 204000, 209000, 207000, 210000},
    {50000, 49500, 50500, 49000, 50000, 48500, 49500, 48000},
};
static const uint64_t T0 = 34200ull * 1000000000ull; /* 09:30:00 */
static const uint64_t MIN = 60ull * 1000000000ull;

static itchw_t g_day;

static void write_day(itchw_t *w)
{
    w_open(w);
    w_system(w, 500, 'O');
    for (int s = 0; s < NSYM; s++)
        w_directory(w, (uint16_t)(s + 1), SYMS[s]);
    uint64_t match = 1;
    /* AAA's book: two bids at 10.00 (one deleted later), one at 9.99, asks at 10.02, 10.05 */
    w_add(w, 1, "AAA", T0 + 1000, 1, 'B', 100, 100000);
    w_add(w, 1, "AAA", T0 + 2000, 2, 'B', 50, 100000);
    w_add(w, 1, "AAA", T0 + 3000, 3, 'B', 200, 99900);
    w_add(w, 1, "AAA", T0 + 4000, 4, 'S', 300, 100200);
    w_add(w, 1, "AAA", T0 + 5000, 5, 'S', 10, 100500);
    for (int b = 0; b < NBARS; b++) {
        uint64_t t = T0 + (uint64_t)b * MIN + 1000000000ull;
        if (b == 0) { /* AAA's first bar: 4 trades, closing at CLOSE[0][0] */
            w_trade(w, 1, "AAA", t, 100, 100500, match++);
            w_trade(w, 1, "AAA", t + 1000, 200, 101200, match++);
            w_trade(w, 1, "AAA", t + 2000, 100, 99800, match++);
            w_trade(w, 1, "AAA", t + 3000, 50, CLOSE[0][0], match++);
        } else {
            w_trade(w, 1, "AAA", t, 100, CLOSE[0][b], match++);
        }
        w_trade(w, 2, "BBB", t + 5000, 300, CLOSE[1][b], match++);
        w_trade(w, 3, "CCC", t + 6000, 500, CLOSE[2][b], match++);
    }
    w_delete(w, 1, T0 + 7 * MIN + 30000000000ull, 2);
    w_system(w, T0 + NBARS * MIN + 1000, 'C'); /* closes bar NBARS - 1 */
    w_close(w);
}

static int setup(void **state)
{
    (void)state;
    write_day(&g_day);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_day.path);
    return 0;
}

/* Every session here holds a handful of symbols: it is opened with capacities to match (the
 * defaults size ~260 MiB for 10,000 symbols and 2 M orders, which valgrind takes ~15 s per session
 * to map and fill). The results do not depend on the capacities; the defaults are opened by
 * test_api_open_errors (the shipped file) and by every replay of the integration stage. */
static const char *SMALL[] = {"symbols.max_symbols=64", "matrix.symbols=64", "book.max_orders=64K",
                              "book.max_levels=16K"};
enum { NSMALL = sizeof SMALL / sizeof SMALL[0] };

static int open_small(tickcore_t **s, const char *const *set, size_t nset, char *err, size_t errlen)
{
    const char *all[NSMALL + 16];
    assert_true(nset <= 16);
    memcpy(all, SMALL, sizeof SMALL);
    for (size_t i = 0; i < nset; i++)
        all[NSMALL + i] = set[i];
    return tickcore_open(s, NULL, all, NSMALL + nset, err, errlen);
}

static tickcore_t *open_run(const char *path, const char *const *set, size_t nset)
{
    tickcore_t *s = NULL;
    char err[256];
    int rc = open_small(&s, set, nset, err, sizeof err);
    if (rc < 0)
        print_error("tickcore_open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(tickcore_add_file(s, path), 0);
    rc = tickcore_run(s);
    if (rc < 0)
        print_error("tickcore_run: %s\n", tickcore_errmsg(s));
    assert_int_equal(rc, 0);
    return s;
}

/* close: the textbook correlation the hand computation checks (the default, auto, is twoscale
 * at 1-minute bars) */
static const char *TRADE_RETURNS[] = {"matrix.returns=trade", "pipeline.workers=2",
                                      "matrix.estimator=close"};

/* ---- tests ---- */

static void test_api_open_errors(void **state)
{
    (void)state;
    tickcore_t *s = (tickcore_t *)1;
    char err[256];
    const char *bad_value[] = {"matrix.window=abc"};
    assert_int_equal(tickcore_open(&s, NULL, bad_value, 1, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "window"));
    const char *unknown[] = {"matrix.nosuchkey=1"};
    assert_int_equal(tickcore_open(&s, NULL, unknown, 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "nosuchkey"));
    const char *no_eq[] = {"matrix.window"};
    assert_int_equal(tickcore_open(&s, NULL, no_eq, 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "section.key=value"));
    assert_int_equal(tickcore_open(&s, "/nonexistent/tickcore.ini", NULL, 0, err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/tickcore.ini"));
    /* the shipped default file loads */
    assert_int_equal(tickcore_open(&s, "config/tickcore.ini", NULL, 0, err, sizeof err), 0);
    tickcore_close(s);
    tickcore_close(NULL);
}

static void test_api_before_run(void **state)
{
    (void)state;
    tickcore_t *s;
    assert_int_equal(open_small(&s, NULL, 0, NULL, 0), 0);
    const double *c;
    size_t n;
    assert_int_equal(tickcore_correlation(s, &c, &n), -EAGAIN);
    assert_non_null(strstr(tickcore_errmsg(s), "not run"));
    tickcore_bar_t bar;
    assert_int_equal(tickcore_bars(s, "AAA", &bar, 1), -EAGAIN);
    assert_int_equal(tickcore_add_file(s, "/nonexistent.itch"), -ENOENT);
    assert_non_null(strstr(tickcore_errmsg(s), "/nonexistent.itch"));
    assert_int_equal(tickcore_run(s), -ENODATA);
    assert_int_equal(tickcore_add_file(s, g_day.path), 0);
    assert_int_equal(tickcore_run(s), 0);
    assert_int_equal(tickcore_run(s), -EALREADY);
    assert_int_equal(tickcore_add_file(s, g_day.path), -EALREADY);
    tickcore_close(s);
}

/* Pearson correlation of columns a and b of rows r[1..NBARS) (row 0, the first close, has no
 * return), the textbook way. */
static double pearson(double r[NBARS][NSYM], int a, int b)
{
    double ma = 0, mb = 0;
    for (int k = 1; k < NBARS; k++) {
        ma += r[k][a];
        mb += r[k][b];
    }
    ma /= NBARS - 1;
    mb /= NBARS - 1;
    double sab = 0, saa = 0, sbb = 0;
    for (int k = 1; k < NBARS; k++) {
        sab += (r[k][a] - ma) * (r[k][b] - mb);
        saa += (r[k][a] - ma) * (r[k][a] - ma);
        sbb += (r[k][b] - mb) * (r[k][b] - mb);
    }
    return sab / sqrt(saa * sbb);
}

static void test_api_correlation(void **state)
{
    (void)state;
    tickcore_t *s = open_run(g_day.path, TRADE_RETURNS, 3);
    tickcore_summary_t sum;
    assert_int_equal(tickcore_summary(s, &sum), 0);
    assert_int_equal(sum.messages, g_day.count);
    assert_int_equal(sum.symbols, NSYM);
    assert_int_equal(sum.matrix_symbols, NSYM);
    assert_int_equal(sum.workers, 2);
    assert_int_equal(sum.allocs_after_seal, 0);

    const char *names[8];
    assert_int_equal(tickcore_symbols(s, names, 8), NSYM);
    for (int i = 0; i < NSYM; i++)
        assert_string_equal(names[i], SYMS[i]);

    /* rows: one per bar with a return: the first close gives none (no row), the bar that the
     * End of Messages event opens has no trade (idle, no row) */
    double r[NBARS][NSYM];
    for (int k = 0; k < NBARS; k++)
        for (int j = 0; j < NSYM; j++)
            r[k][j] = k == 0 ? NAN : log((double)CLOSE[j][k] / (double)CLOSE[j][k - 1]);
    const double *c;
    size_t n;
    assert_int_equal(tickcore_correlation(s, &c, &n), 0);
    assert_int_equal(n, NSYM);
    for (int i = 0; i < NSYM; i++)
        for (int j = 0; j < NSYM; j++) {
            double want = i == j ? 1.0 : pearson(r, i, j);
            if (fabs(c[i * NSYM + j] - want) > 1e-9)
                fail_msg("corr[%d][%d] = %.12f, hand: %.12f", i, j, c[i * NSYM + j], want);
        }
    /* the pointer is into the engine's own buffer: the cross-section's cycle arena */
    tickcore_buffer_t bufs[16];
    int nb = tickcore_buffers(s, bufs, 16);
    assert_true(nb >= 2 && nb <= 16);
    int found = 0;
    for (int i = 0; i < nb; i++)
        if (strcmp(bufs[i].name, "xsection.scratch") == 0) {
            const char *lo = bufs[i].addr;
            assert_true((const char *)c >= lo);
            assert_true((const char *)(c + n * n) <= lo + bufs[i].bytes);
            found = 1;
        }
    assert_true(found);
    /* the same pointer every time: nothing is copied */
    const double *c2;
    assert_int_equal(tickcore_correlation(s, &c2, &n), 0);
    assert_ptr_equal(c, c2);
    tickcore_close(s);
}

static void test_api_bars(void **state)
{
    (void)state;
    tickcore_t *s = open_run(g_day.path, TRADE_RETURNS, 3);
    /* the clock starts at the first message (00:00:00.0000005, bar 0), and the bar the End of
     * Messages event opens (bar T0 / MIN + 8) closes at the end of the input, so the ring of
     * bar_history = 64 bars holds 55 bars before AAA's first trade (no price yet), its 8
     * trading bars, and that last bar (no trade: the close carried, return 0) */
    assert_int_equal(tickcore_bars(s, "AAA", NULL, 0), 64);
    tickcore_bar_t all[70];
    assert_int_equal(tickcore_bars(s, "AAA", all, 70), 64);
    for (int k = 0; k < 64 - NBARS - 1; k++) {
        assert_int_equal(all[k].k, T0 / MIN + (uint64_t)k - (64 - NBARS - 1));
        assert_int_equal(all[k].flags, TICKCORE_BAR_NOPRICE);
        assert_int_equal(all[k].volume, 0);
    }
    assert_int_equal(all[63].k, T0 / MIN + NBARS);
    assert_int_equal(all[63].volume, 0);
    assert_int_equal(all[63].close, CLOSE[0][NBARS - 1]);
    assert_float_equal(all[63].ret, 0.0, 0);
    const tickcore_bar_t *b = all + 64 - NBARS - 1;
    /* bar 0 of AAA: 10.05 x 100, 10.12 x 200, 9.98 x 100, 10.00 x 50 */
    assert_int_equal(b[0].k, (T0 / MIN));
    assert_int_equal(b[0].flags, 0);
    assert_int_equal(b[0].open, 100500);
    assert_int_equal(b[0].high, 101200);
    assert_int_equal(b[0].low, 99800);
    assert_int_equal(b[0].close, 100000);
    assert_int_equal(b[0].volume, 450);
    assert_int_equal(b[0].trades, 4);
    assert_float_equal(b[0].vwap, (10.05 * 100 + 10.12 * 200 + 9.98 * 100 + 10.00 * 50) / 450,
                       1e-9);
    assert_true(isnan(b[0].ret));
    for (int k = 1; k < NBARS; k++) {
        assert_int_equal(b[k].k, T0 / MIN + (uint64_t)k);
        assert_int_equal(b[k].close, CLOSE[0][k]);
        assert_int_equal(b[k].volume, 100);
        assert_float_equal(b[k].ret, log((double)CLOSE[0][k] / CLOSE[0][k - 1]), 1e-12);
    }
    tickcore_bar_t last[2];
    /* cap: the newest ones */
    assert_int_equal(tickcore_bars(s, "CCC", last, 2), 2);
    assert_int_equal(last[0].close, CLOSE[2][NBARS - 1]);
    assert_int_equal(last[0].volume, 500);
    assert_int_equal(last[1].close, CLOSE[2][NBARS - 1]); /* the carried last bar */
    assert_int_equal(last[1].volume, 0);
    assert_int_equal(tickcore_bars(s, "ZZZ", last, 2), -ENOENT);
    assert_non_null(strstr(tickcore_errmsg(s), "ZZZ"));
    tickcore_close(s);
}

static void test_api_book(void **state)
{
    (void)state;
    tickcore_t *s = open_run(g_day.path, TRADE_RETURNS, 3);
    tickcore_level_t lv[10];
    assert_int_equal(tickcore_book(s, "AAA", 'B', lv, 10), 2);
    assert_int_equal(lv[0].price, 100000);
    assert_int_equal(lv[0].shares, 100); /* order 2 (50) was deleted */
    assert_int_equal(lv[0].orders, 1);
    assert_int_equal(lv[1].price, 99900);
    assert_int_equal(lv[1].shares, 200);
    assert_int_equal(tickcore_book(s, "AAA", 'S', lv, 1), 1);
    assert_int_equal(lv[0].price, 100200);
    assert_int_equal(lv[0].shares, 300);
    assert_int_equal(tickcore_book(s, "AAA", 'S', lv, 10), 2);
    assert_int_equal(lv[1].price, 100500);
    assert_int_equal(tickcore_book(s, "BBB", 'B', lv, 10), 0);
    assert_int_equal(tickcore_book(s, "AAA", 'X', lv, 10), -EINVAL);
    assert_int_equal(tickcore_book(s, "NOPE", 'B', lv, 10), -ENOENT);
    tickcore_close(s);
}

/* The NASDAQ AAPL excerpt, first 1,001 messages: 80 live orders on 64 levels (tests/data). */
static void test_api_real_aapl_book(void **state)
{
    (void)state;
    char src[512];
    const char *dir = getenv("TICKCORE_DATA");
    snprintf(src, sizeof src, "%s/itch/nasdaq-20200130-aapl-10k.itch", dir ? dir : "tests/data");
    FILE *in = fopen(src, "rb");
    if (!in) {
        print_message("no %s\n", src);
        skip();
    }
    itchw_t w;
    w_open(&w);
    uint8_t m[256];
    for (int i = 0; i < 1001; i++) {
        uint8_t h[2];
        assert_int_equal(fread(h, 1, 2, in), 2);
        size_t len = (size_t)h[0] << 8 | h[1];
        assert_true(len > 0 && len <= sizeof m);
        assert_int_equal(fread(m, 1, len, in), len);
        w_msg(&w, m, len);
    }
    fclose(in);
    w_close(&w);
    tickcore_t *s = open_run(w.path, NULL, 0);
    tickcore_level_t lv[100];
    int nb = tickcore_book(s, "AAPL", 'B', lv, 100);
    int orders = 0;
    for (int i = 0; i < nb; i++)
        orders += (int)lv[i].orders;
    int na = tickcore_book(s, "AAPL", 'S', lv, 100);
    for (int i = 0; i < na; i++)
        orders += (int)lv[i].orders;
    assert_int_equal(nb + na, 64);
    assert_int_equal(orders, 80);
    const double *c;
    size_t n;
    assert_int_equal(tickcore_correlation(s, &c, &n), -EAGAIN); /* one symbol: no matrix */
    assert_non_null(strstr(tickcore_errmsg(s), "2 symbols"));
    tickcore_close(s);
    unlink(w.path);
}

static void test_api_truncated_file(void **state)
{
    (void)state;
    itchw_t w;
    w_open(&w);
    w_directory(&w, 1, "AAA");
    w_trade(&w, 1, "AAA", T0, 100, 100000, 1);
    uint8_t half[3] = {0, 44, 'P'}; /* a P message cut after its type byte */
    assert_int_equal(fwrite(half, 1, sizeof half, w.f), sizeof half);
    w_close(&w);
    tickcore_t *s;
    assert_int_equal(open_small(&s, NULL, 0, NULL, 0), 0);
    assert_int_equal(tickcore_add_file(s, w.path), 0);
    assert_int_equal(tickcore_run(s), -EIO);
    assert_non_null(strstr(tickcore_errmsg(s), w.path));
    tickcore_summary_t sum;
    assert_int_equal(tickcore_summary(s, &sum), 0);
    assert_int_equal(sum.messages, 2);
    assert_int_equal(sum.files_failed, 1);
    tickcore_close(s);
    unlink(w.path);
}

static void test_api_memory_returned(void **state)
{
    (void)state;
    tickcore_memory_t before, during, after;
    assert_int_equal(tickcore_memory(NULL, &before), 0);
    tickcore_t *s = open_run(g_day.path, TRADE_RETURNS, 3);
    assert_int_equal(tickcore_memory(s, &during), 0);
    assert_true(during.live_bytes > before.live_bytes + 1000000); /* books, stats, matrices */
    assert_int_equal(during.allocs_after_seal, 0);
    assert_int_equal(during.churn_allocs, before.churn_allocs);
    assert_true(during.ntags >= 5);
    tickcore_close(s);
    assert_int_equal(tickcore_memory(NULL, &after), 0);
    assert_int_equal(after.live_bytes, before.live_bytes);
    for (unsigned t = 0; t < after.ntags; t++)
        assert_int_equal(after.tag[t].live_bytes, before.tag[t].live_bytes);
    assert_int_equal(after.churn_allocs, before.churn_allocs); /* a second session: no churn */
}

/* ---- in steps (1.1): tickcore_step, tickcore_feed, tickcore_finish ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Every reader of a and b gives the same: summary counts, symbols, every symbol's kept bars and
 * both book sides to depth 200 (bytes), and the correlation (bits, when there is one). */
static void same_results(tickcore_t *a, tickcore_t *b)
{
    tickcore_summary_t sa, sb;
    assert_int_equal(tickcore_summary(a, &sa), 0);
    assert_int_equal(tickcore_summary(b, &sb), 0);
    assert_int_equal(sa.messages, sb.messages);
    assert_int_equal(sa.symbols, sb.symbols);
    assert_int_equal(sa.matrix_rows, sb.matrix_rows);
    const char *na[64], *nb[64];
    int n = tickcore_symbols(a, na, 64);
    assert_int_equal(tickcore_symbols(b, nb, 64), n);
    assert_true(n > 0 && n <= 64);
    static tickcore_bar_t ba[1024], bb[1024];
    static tickcore_level_t la[200], lb[200];
    for (int i = 0; i < n; i++) {
        assert_string_equal(na[i], nb[i]);
        int ka = tickcore_bars(a, na[i], ba, 1024), kb = tickcore_bars(b, nb[i], bb, 1024);
        assert_int_equal(ka, kb);
        if (ka > 0)
            assert_memory_equal(ba, bb, (size_t)ka * sizeof *ba);
        for (int side = 0; side < 2; side++) {
            int da = tickcore_book(a, na[i], side ? 'S' : 'B', la, 200);
            assert_int_equal(tickcore_book(b, nb[i], side ? 'S' : 'B', lb, 200), da);
            if (da > 0)
                assert_memory_equal(la, lb, (size_t)da * sizeof *la);
        }
    }
    const double *ca, *cb;
    size_t ma, mb;
    int ra = tickcore_correlation(a, &ca, &ma), rb = tickcore_correlation(b, &cb, &mb);
    assert_int_equal(ra, rb);
    if (ra == 0) {
        assert_int_equal(ma, mb);
        assert_memory_equal(ca, cb, ma * ma * sizeof(double));
    }
}

static tickcore_t *open_empty(const char *const *set, size_t nset)
{
    tickcore_t *s = NULL;
    assert_int_equal(open_small(&s, set, nset, NULL, 0), 0);
    return s;
}

/* The file fed in chunks of random sizes (1 byte up to a few frames, and now and then 64 KiB)
 * gives what replaying the file gives, for several seeds and both worker counts. */
static void feed_chunks_equal_run(const char *path, const char *const *set, size_t nset)
{
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf) {
        print_message("no %s\n", path);
        skip();
    }
    tickcore_t *ref = open_run(path, set, nset);
    for (unsigned seed = 1; seed <= 4; seed++) {
        srand(seed);
        tickcore_t *s = open_empty(set, nset);
        size_t off = 0, calls = 0;
        while (off < len) {
            size_t k = len > 200000 && rand() % 8 == 0 ? 65536 : 1 + (size_t)rand() % 120;
            if (k > len - off)
                k = len - off;
            int rc = tickcore_feed(s, buf + off, k);
            if (rc < 0)
                print_error("feed at %zu: %s\n", off, tickcore_errmsg(s));
            assert_int_equal(rc, 0);
            off += k;
            calls++;
        }
        tickcore_position_t pos;
        assert_int_equal(tickcore_position(s, &pos), 0);
        assert_int_equal(pos.state, TICKCORE_STATE_RUNNING);
        assert_int_equal(pos.carried, 0);
        assert_int_equal(pos.fed_bytes, len);
        assert_int_equal(tickcore_finish(s), 0);
        assert_int_equal(tickcore_position(s, &pos), 0);
        assert_int_equal(pos.state, TICKCORE_STATE_ENDED);
        assert_true(calls > 10);
        same_results(ref, s);
        assert_int_equal(tickcore_feed(s, buf, 2), -EALREADY);
        tickcore_close(s);
    }
    tickcore_close(ref);
    free(buf);
}

static void test_api_feed_random_chunks_equals_run(void **state)
{
    (void)state;
    /* the hand-written day: its bars and correlation are checked by hand above */
    feed_chunks_equal_run(g_day.path, TRADE_RETURNS, 3);
    const char *one[] = {"pipeline.workers=1"};
    feed_chunks_equal_run(g_day.path, one, 1);
    /* the NASDAQ AAPL excerpt (10,000 real messages) */
    char src[512];
    const char *dir = getenv("TICKCORE_DATA");
    snprintf(src, sizeof src, "%s/itch/nasdaq-20200130-aapl-10k.itch", dir ? dir : "tests/data");
    feed_chunks_equal_run(src, TRADE_RETURNS, 3);
}

/* Bad bytes: the error names the byte offset (counted here from the frames fed) and what was
 * expected; the messages before it stand; later feeds and the end fail the same way. */
static void test_api_feed_bad_bytes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = slurp(g_day.path, &len);
    assert_non_null(buf);
    /* the offset of the 10th frame, from the length prefixes */
    size_t off = 0;
    for (int i = 0; i < 9; i++)
        off += 2u + ((size_t)buf[off] << 8 | buf[off + 1]);
    uint8_t bad[64];
    memcpy(bad, buf + off, sizeof bad);
    bad[2] = 'Z'; /* no ITCH 5.0 message type */
    tickcore_t *s = open_empty(NULL, 0);
    /* the good part in two calls that cut a frame, then the bad frame in two calls */
    assert_int_equal(tickcore_feed(s, buf, off - 5), 0);
    assert_int_equal(tickcore_feed(s, buf + off - 5, 5 + 1), 0); /* ends inside the bad prefix */
    int rc = tickcore_feed(s, bad + 1, sizeof bad - 1);
    assert_int_equal(rc, -EBADMSG);
    char want[64];
    snprintf(want, sizeof want, "fed bytes: byte %zu (message 10)", off);
    if (!strstr(tickcore_errmsg(s), want))
        print_error("got '%s', want '%s'\n", tickcore_errmsg(s), want);
    assert_non_null(strstr(tickcore_errmsg(s), want));
    assert_non_null(strstr(tickcore_errmsg(s), "unknown message type 0x5a ('Z')"));
    tickcore_position_t pos;
    assert_int_equal(tickcore_position(s, &pos), 0);
    assert_int_equal(pos.messages, 9);
    assert_int_equal(tickcore_feed(s, buf, len), -EBADMSG); /* sticky */
    assert_non_null(strstr(tickcore_errmsg(s), want));
    assert_int_equal(tickcore_finish(s), -EBADMSG);
    tickcore_summary_t sum;
    assert_int_equal(tickcore_summary(s, &sum), 0);
    assert_int_equal(sum.messages, 9);
    const char *names[8];
    assert_int_equal(tickcore_symbols(s, names, 8), 3); /* the directory came before */
    tickcore_close(s);

    /* a stream that ends inside a frame: the end says where and how far */
    s = open_empty(NULL, 0);
    assert_int_equal(tickcore_feed(s, buf, off + 7), 0);
    assert_int_equal(tickcore_position(s, &pos), 0);
    assert_int_equal(pos.carried, 7);
    assert_int_equal(pos.fed_bytes, off);
    assert_int_equal(tickcore_finish(s), -EBADMSG);
    snprintf(want, sizeof want, "byte %zu (message 10): truncated final message", off);
    assert_non_null(strstr(tickcore_errmsg(s), want));
    assert_non_null(strstr(tickcore_errmsg(s), "7 bytes into a frame of"));
    tickcore_close(s);

    /* feeding a session that reads files */
    s = open_empty(NULL, 0);
    assert_int_equal(tickcore_add_file(s, g_day.path), 0);
    assert_int_equal(tickcore_feed(s, buf, 10), -EINVAL);
    tickcore_close(s);
    free(buf);
}

/* Steps: the readers between steps see every message so far: after N messages the book is
 * that of a file holding the first N messages; the steps add up to the file; the last ends the
 * input and the results equal a run. */
static void test_api_step_results_between_steps(void **state)
{
    (void)state;
    char src[512];
    const char *dir = getenv("TICKCORE_DATA");
    snprintf(src, sizeof src, "%s/itch/nasdaq-20200130-aapl-10k.itch", dir ? dir : "tests/data");
    size_t len;
    uint8_t *buf = slurp(src, &len);
    if (!buf) {
        print_message("no %s\n", src);
        skip();
    }
    tickcore_t *s = open_empty(TRADE_RETURNS, 3);
    assert_int_equal(tickcore_add_file(s, src), 0);
    tickcore_position_t pos;
    assert_int_equal(tickcore_position(s, &pos), 0);
    assert_int_equal(pos.state, TICKCORE_STATE_OPEN);
    assert_int_equal(tickcore_step(s, 1001), 1001);
    /* the README of tests/data: 80 live orders on 64 levels after the first 1,001 messages */
    tickcore_level_t lv[100];
    int nb = tickcore_book(s, "AAPL", 'B', lv, 100), orders = 0;
    for (int i = 0; i < nb; i++)
        orders += (int)lv[i].orders;
    int na = tickcore_book(s, "AAPL", 'S', lv, 100);
    for (int i = 0; i < na; i++)
        orders += (int)lv[i].orders;
    assert_int_equal(nb + na, 64);
    assert_int_equal(orders, 80);
    assert_int_equal(tickcore_position(s, &pos), 0);
    assert_int_equal(pos.state, TICKCORE_STATE_RUNNING);
    assert_int_equal(pos.messages, 1001);
    /* a prefix file of the first 5,000 messages against 3,999 more steps (in odd sizes) */
    size_t off = 0;
    for (int i = 0; i < 5000; i++)
        off += 2u + ((size_t)buf[off] << 8 | buf[off + 1]);
    itchw_t w;
    w_open(&w);
    assert_int_equal(fwrite(buf, 1, off, w.f), off);
    w_close(&w);
    uint64_t total = 1001;
    while (total < 5000) {
        uint64_t want = 5000 - total < 333 ? 5000 - total : 333;
        int64_t got = tickcore_step(s, want);
        assert_int_equal(got, (int64_t)want);
        total += (uint64_t)got;
    }
    tickcore_t *prefix = open_run(w.path, TRADE_RETURNS, 3);
    tickcore_level_t lp[200], ls[200];
    for (int side = 0; side < 2; side++) {
        int a = tickcore_book(prefix, "AAPL", side ? 'S' : 'B', lp, 200);
        assert_int_equal(tickcore_book(s, "AAPL", side ? 'S' : 'B', ls, 200), a);
        assert_true(a > 0);
        assert_memory_equal(lp, ls, (size_t)a * sizeof *lp);
    }
    tickcore_close(prefix);
    unlink(w.path);
    /* the rest, then the end */
    int64_t got;
    while ((got = tickcore_step(s, 777)) > 0)
        total += (uint64_t)got;
    assert_int_equal(got, 0);
    assert_int_equal(total, 10000);
    assert_int_equal(tickcore_position(s, &pos), 0);
    assert_int_equal(pos.state, TICKCORE_STATE_ENDED);
    assert_int_equal(tickcore_step(s, 1), 0);
    assert_int_equal(tickcore_run(s), -EALREADY);
    tickcore_t *ref = open_run(src, TRADE_RETURNS, 3);
    same_results(ref, s);
    tickcore_close(ref);
    tickcore_close(s);
    free(buf);
}

/* The correlation between steps: computed over the rows so far, again (in the same buffer)
 * only when bars closed since; the last step's matrix equals the hand-checked run's. */
static void test_api_correlation_between_steps(void **state)
{
    (void)state;
    tickcore_t *s = open_empty(TRADE_RETURNS, 3);
    assert_int_equal(tickcore_add_file(s, g_day.path), 0);
    const double *c = NULL, *c2 = NULL;
    size_t n = 0;
    int64_t got = tickcore_step(s, 4); /* the directory: no bar yet */
    assert_int_equal(got, 4);
    assert_int_equal(tickcore_correlation(s, &c, &n), -EAGAIN);
    tickcore_position_t pos;
    int computed = 0;
    while ((got = tickcore_step(s, 3)) > 0) {
        assert_int_equal(tickcore_position(s, &pos), 0);
        bool pending = pos.bars != pos.corr_bars;
        if (tickcore_correlation(s, &c2, &n) == 0) {
            if (c)
                assert_ptr_equal(c2, c); /* the same buffer */
            c = c2;
            computed += pending;
            assert_int_equal(tickcore_position(s, &pos), 0);
            assert_int_equal(pos.corr_bars, pos.bars);
        }
    }
    assert_true(computed >= 2);
    tickcore_t *ref = open_run(g_day.path, TRADE_RETURNS, 3);
    same_results(ref, s);
    assert_int_equal(tickcore_correlation(s, &c2, &n), 0);
    assert_ptr_equal(c2, c);
    tickcore_close(ref);
    tickcore_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_open_errors),
        cmocka_unit_test(test_api_before_run),
        cmocka_unit_test(test_api_correlation),
        cmocka_unit_test(test_api_bars),
        cmocka_unit_test(test_api_book),
        cmocka_unit_test(test_api_real_aapl_book),
        cmocka_unit_test(test_api_truncated_file),
        cmocka_unit_test(test_api_memory_returned),
        cmocka_unit_test(test_api_feed_random_chunks_equals_run),
        cmocka_unit_test(test_api_feed_bad_bytes),
        cmocka_unit_test(test_api_step_results_between_steps),
        cmocka_unit_test(test_api_correlation_between_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
