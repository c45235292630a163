/*
 * test_config: the key table against itself and against the shipped config/tickcore.ini:
 * defaults print and parse back to the same values; the shipped file sets every key to its
 * default; every kind of bad input is an error naming the file, line and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[64];

static int setup(void **state)
{
    (void)state;
    strcpy(g_path, "/tmp/tickcore-test-config-XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_path);
    return 0;
}

static void write_text(const char *text)
{
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_defaults_round_trip(void **state)
{
    (void)state;
    config_t def, back;
    config_default(&def);
    assert_int_equal(def.io_buffers, 8);
    assert_int_equal(def.io_buffer_size, 1u << 20);
    assert_int_equal(def.max_orders, 2000000);
    assert_int_equal(def.bar_interval_ns, 60000000000ull);
    assert_int_equal(def.ring_slots, 1024);
    FILE *f = fopen(g_path, "w");
    config_print(f, &def);
    fclose(f);
    /* every key is in the printed file: load it over a struct of garbage, so a key that the
     * file lacks keeps 0xA5 bytes and fails the comparison */
    memset(&back, 0xA5, sizeof back);
    char err[300] = "";
    assert_int_equal(config_load(&back, g_path, err, sizeof err), 0);
    assert_int_equal(back.io_buffers, def.io_buffers);
    assert_int_equal(back.io_buffer_size, def.io_buffer_size);
    assert_int_equal(back.gz_buffer_size, def.gz_buffer_size);
    assert_int_equal(back.max_line, def.max_line);
    assert_int_equal(back.on_bad_input, def.on_bad_input);
    assert_int_equal(back.csv_require_order, def.csv_require_order);
    assert_int_equal(back.max_symbols, def.max_symbols);
    assert_int_equal(back.max_orders, def.max_orders);
    assert_int_equal(back.max_levels, def.max_levels);
    assert_int_equal(back.bar_interval_ns, def.bar_interval_ns);
    assert_int_equal(back.window, def.window);
    assert_true(back.ewma_lambda == def.ewma_lambda);
    assert_true(back.cluster_distance == def.cluster_distance);
    assert_int_equal(back.workers, def.workers);
    assert_int_equal(back.pin_cpus, def.pin_cpus);
    assert_int_equal(back.live_overflow, def.live_overflow);
    assert_int_equal(back.top_symbols, def.top_symbols);
}

static void test_config_shipped_file_is_the_defaults(void **state)
{
    (void)state;
    config_t def, got;
    config_default(&def);
    config_default(&got);
    /* garbage first, so a key missing from the file shows */
    memset(&got, 0x5A, sizeof got);
    char err[300] = "";
    if (config_load(&got, "config/tickcore.ini", err, sizeof err) != 0)
        fail_msg("%s", err);
    config_t a = def, b = got;
    /* compare as printed text: padding bytes do not matter */
    char *ta = NULL, *tb = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&ta, &la), *fb = open_memstream(&tb, &lb);
    config_print(fa, &a);
    config_print(fb, &b);
    fclose(fa);
    fclose(fb);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void expect_error(const char *text, const char *want)
{
    write_text(text);
    config_t c;
    config_default(&c);
    char err[300] = "";
    assert_int_equal(config_load(&c, g_path, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
    assert_non_null(strstr(err, g_path));
}

static void test_config_errors_name_file_line_key(void **state)
{
    (void)state;
    expect_error("[input]\nio_buffers = 4\nno_such_key = 1\n", ":3: unknown key 'no_such_key'");
    expect_error("; comment\n[nowhere]\nx = 1\n", ":3: unknown section [nowhere]");
    expect_error("[book]\n\nmax_orders = lots\n", ":3: book.max_orders: 'lots' is not a number");
    expect_error("[book]\nmax_orders = -5\n", ":2: book.max_orders: '-5' is negative");
    expect_error("[input]\nio_buffers = 100000\n",
                 ":2: input.io_buffers: '100000' is out of range");
    expect_error("[stats]\nbar_interval = 10\n", "needs a unit");
    expect_error("[stats]\nbar_interval = 1y\n", "needs a unit");
    expect_error("[stats]\nbar_interval = 2d\n", "out of range");
    expect_error("[pipeline]\npin_cpus = maybe\n", "'maybe' is not a boolean");
    expect_error("[pipeline]\nlive_overflow = explode\n", "'explode' is not one of block|drop");
    expect_error("[pipeline]\nring_slots = 1000\n", "ring_slots must be a power of two");
    expect_error("[input]\nthis line is not ini\n", ":2: not an INI line");
    expect_error("[matrix]\nwindow = 1.5\n", "not a whole number");
}

static void test_config_values_and_set(void **state)
{
    (void)state;
    write_text("[stats]\nbar_interval = 1d\n[input]\nio_buffer_size = 64K\non_bad_input = skip\n"
               "[matrix]\newma_lambda = 0.94\n[book]\nmax_orders = 3M\n");
    config_t c;
    config_default(&c);
    char err[300] = "";
    assert_int_equal(config_load(&c, g_path, err, sizeof err), 0);
    assert_int_equal(c.bar_interval_ns, 86400000000000ull);
    assert_int_equal(c.io_buffer_size, 65536);
    assert_int_equal(c.on_bad_input, CFG_BAD_SKIP);
    assert_true(c.ewma_lambda == 0.94);
    assert_int_equal(c.max_orders, 3000000);
    assert_int_equal(config_set(&c, "stats.bar_interval=1s", NULL, err, sizeof err), 0);
    assert_int_equal(c.bar_interval_ns, 1000000000ull);
    assert_int_equal(config_set(&c, "pipeline.workers", "2", err, sizeof err), 0);
    assert_int_equal(c.workers, 2);
    assert_int_equal(config_set(&c, "pipeline.nope=2", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key 'pipeline.nope'"));
    assert_int_equal(config_set(&c, "novalue", NULL, err, sizeof err), -1);
    assert_int_equal(config_load(&c, "/nonexistent/x.ini", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.ini: cannot open"));
    /* Rules between keys are checked after all flags: their order does not matter. */
    config_default(&c);
    assert_int_equal(config_set(&c, "symbols.max_symbols=100", NULL, err, sizeof err), 0);
    assert_int_equal(config_check(&c, err, sizeof err), -1); /* matrix.symbols is still 512 */
    assert_non_null(strstr(err, "matrix.symbols (512) exceeds symbols.max_symbols (100)"));
    assert_int_equal(config_set(&c, "matrix.symbols=16", NULL, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "graph.clusters=2", NULL, err, sizeof err), 0);
    assert_int_equal(config_check(&c, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "live.session=TOOLONGNAME1", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 10 characters"));
    assert_int_equal(config_set(&c, "http.addr=localhost", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an IPv4 address"));
    assert_int_equal(config_set(&c, "http.token=", NULL, err, sizeof err), 0);
    assert_string_equal(c.http_token, "");
    assert_int_equal(config_set(&c, "live.username=ab1", NULL, err, sizeof err), 0);
    assert_string_equal(c.username, "ab1");
    /* live.udp_allow: a CIDR; networks worked by hand (host byte order) */
    uint32_t net, mask;
    assert_string_equal(c.udp_allow, "127.0.0.0/8");
    assert_int_equal(config_cidr(c.udp_allow, &net, &mask, err, sizeof err), 0);
    assert_int_equal(net, 0x7f000000u);
    assert_int_equal(mask, 0xff000000u);
    assert_int_equal(config_cidr("10.1.2.3", &net, &mask, err, sizeof err), 0);
    assert_int_equal(net, 0x0a010203u);
    assert_int_equal(mask, 0xffffffffu);
    assert_int_equal(config_cidr("0.0.0.0/0", &net, &mask, err, sizeof err), 0);
    assert_int_equal(net, 0);
    assert_int_equal(mask, 0);
    assert_int_equal(config_cidr("192.168.4.0/22", &net, &mask, err, sizeof err), 0);
    assert_int_equal(mask, 0xfffffc00u);
    assert_int_equal(config_set(&c, "live.udp_allow=10.0.0.1/8", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "host bits set past /8 (the network is 10.0.0.0/8)"));
    static const char *const bad[] = {"127.0.0.0/33", "127.0.0.0/",   "127.0.0.0/-1",
                                      "localhost",    "127.0.0.0/8x", "1.2.3.4/ 8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(config_set(&c, "live.udp_allow", bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "is not an IPv4 network"));
    }
    assert_int_equal(config_set(&c, "live.udp_allow=127.0.0.1/32", NULL, err, sizeof err), 0);
    assert_string_equal(c.udp_allow, "127.0.0.1/32");
}

/* config_estimator against the rule worked by hand: bars under 5 minutes get twoscale with K =
 * the bars in the horizon (rounded, at least 2, at most window / 30) and ledoit-wolf-block;
 * longer bars, EWMA or a window under 60 get close without shrinkage; a key set by hand is kept. */
static void choose(const char *bar, const char *est, const char *k, const char *shr,
                   const char *extra, uint32_t want_est, uint32_t want_k, uint32_t want_shr)
{
    config_t c;
    config_default(&c);
    char err[300] = "";
    assert_int_equal(config_set(&c, "stats.bar_interval", bar, err, sizeof err), 0);
    if (est)
        assert_int_equal(config_set(&c, "matrix.estimator", est, err, sizeof err), 0);
    if (k)
        assert_int_equal(config_set(&c, "matrix.subsample_grids", k, err, sizeof err), 0);
    if (shr)
        assert_int_equal(config_set(&c, "matrix.shrinkage", shr, err, sizeof err), 0);
    if (extra)
        assert_int_equal(config_set(&c, extra, NULL, err, sizeof err), 0);
    cfg_estimator_choice_t ch;
    config_estimator(&c, &ch);
    assert_int_equal(ch.estimator, want_est);
    assert_int_equal(ch.grids, want_k);
    assert_int_equal(ch.shrinkage, want_shr);
    assert_int_equal(ch.automatic, !est || !strcmp(est, "auto"));
    assert_int_equal(config_check(&c, err, sizeof err), 0);
}

static void test_config_estimator_auto(void **state)
{
    (void)state;
    config_t c;
    config_default(&c);
    assert_int_equal(c.matrix_estimator, CFG_EST_AUTO);
    assert_int_equal(c.subsample_grids, 0);
    assert_int_equal(c.matrix_shrinkage, CFG_SHRINK_AUTO);
    const uint32_t TS = CFG_EST_TWOSCALE, CL = CFG_EST_CLOSE, LWB = CFG_SHRINK_LW_BLOCK,
                   NONE = CFG_SHRINK_NONE;
    /* horizon 2 minutes: 1 m -> 2, 30 s -> 4, 45 s -> 3 (2.67), 20 s -> 6, 4 m -> 2 (0.5: 1, 2) */
    choose("1m", NULL, NULL, NULL, NULL, TS, 2, LWB);
    choose("30s", NULL, NULL, NULL, NULL, TS, 4, LWB);
    choose("45s", NULL, NULL, NULL, NULL, TS, 3, LWB);
    choose("20s", NULL, NULL, NULL, NULL, TS, 6, LWB);
    choose("4m", NULL, NULL, NULL, NULL, TS, 2, LWB);
    choose("5m", NULL, NULL, NULL, NULL, CL, 1, NONE);
    choose("1d", NULL, NULL, NULL, NULL, CL, 1, NONE);
    /* 1 s bars: 120 bars, capped at window / 30 = 13, and at 64 with a long window */
    choose("1s", NULL, NULL, NULL, NULL, TS, 13, LWB);
    choose("1s", NULL, NULL, NULL, "matrix.window=3000", TS, 64, LWB);
    choose("1s", NULL, NULL, NULL, "matrix.window=60", TS, 2, LWB);
    choose("1s", NULL, NULL, NULL, "matrix.window=59", CL, 1, NONE); /* no room for K = 2 */
    choose("1m", NULL, NULL, NULL, "matrix.ewma_lambda=0.94", CL, 1, NONE);
    /* keys set by hand win; auto shrinkage follows the estimator */
    choose("1m", NULL, "5", NULL, NULL, TS, 5, LWB);
    choose("1m", NULL, NULL, "none", NULL, TS, 2, NONE);
    choose("1m", "close", NULL, NULL, NULL, CL, 1, NONE);
    choose("1m", "refresh", NULL, NULL, NULL, CFG_EST_REFRESH, 1, NONE);
    choose("1m", "subsample", NULL, NULL, NULL, CFG_EST_SUBSAMPLE, 2, LWB);
    choose("1d", "twoscale", NULL, NULL, NULL, TS, 2, LWB);
    choose("1m", "close", NULL, "ledoit-wolf", NULL, CL, 1, CFG_SHRINK_LW);
    choose("1m", "auto", "8", "ledoit-wolf", NULL, TS, 8, CFG_SHRINK_LW);
    /* the window rule sees the resolved estimator and K (auto would take close here) */
    char err[300] = "";
    config_default(&c);
    assert_int_equal(config_set(&c, "matrix.estimator=twoscale", NULL, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "matrix.subsample_grids=20", NULL, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "matrix.window=39", NULL, err, sizeof err), 0);
    assert_int_equal(config_check(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "matrix.window (39) must hold at least 2 rows per grid"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_round_trip),
        cmocka_unit_test(test_config_shipped_file_is_the_defaults),
        cmocka_unit_test(test_config_errors_name_file_line_key),
        cmocka_unit_test(test_config_values_and_set),
        cmocka_unit_test(test_config_estimator_auto),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
