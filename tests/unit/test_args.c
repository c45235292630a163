/*
 * test_args: the shared argument parser against hand-written expectations. Counts in every form
 * the commands document and the forms they must refuse; the --config pass (a flag overrides the
 * file before or after it; a directory and a missing file are refused with the errno text); --set
 * and table keys; options handed to the callback in order; positional arguments; and the exact
 * one-line errors on stderr (captured through a temporary file) with nothing on stdout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "cli/args.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64], g_ini[96], g_err[96], g_out[96];

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-args-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_ini, sizeof g_ini, "%s/t.ini", g_dir);
    snprintf(g_err, sizeof g_err, "%s/stderr", g_dir);
    snprintf(g_out, sizeof g_out, "%s/stdout", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_ini);
    unlink(g_err);
    unlink(g_out);
    rmdir(g_dir);
    return 0;
}

static void test_args_parse_count(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"100000000", 100000000},
        {"1e6", 1000000},
        {"2.5e6", 2500000},
        {"10M", 10000000},
        {"10m", 10000000},
        {"500k", 500000},
        {"1k", 1000},
        {"2e7", 20000000},
        {"1G", 1000000000},
        {"0", 0},
        {"1.5k", 1500},
        {"0.5M", 500000},
        {"9007199254740992", 9007199254740992ull},
        {"1E3", 1000},
        {"007", 7},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        assert_int_equal(args_parse_count(good[i].s, &v), 0);
        assert_int_equal(v, good[i].v);
    }
    const char *bad[] = {"",    "-1",    "+5",     "1.5", "abc",   "10X",
                         "inf", "nan",   "0x10",   " 5",  "1e300", "5 ",
                         "M",   "1.5k5", "1.25k5", "1kk", "1e-3",  "9007199254740993",
                         "k1",  "1..2",  NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t v = 777;
        assert_int_equal(args_parse_count(bad[i], &v), -EINVAL);
        assert_int_equal(v, 777); /* untouched on error */
    }
    assert_int_equal(args_parse_count(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_args_count_bounds(void **state)
{
    (void)state;
    uint64_t v = 5;
    fflush(stderr);
    int save = dup(2), fe = open("/dev/null", O_WRONLY);
    dup2(fe, 2);
    assert_int_equal(args_count("demo", "--n", "2k", 1, 2000, "1..2000", &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(args_count("demo", "--n", "2001", 1, 2000, "1..2000", &v), 2);
    assert_int_equal(args_count("demo", "--n", "0", 1, 2000, "1..2000", &v), 2);
    assert_int_equal(args_count("demo", "--n", "x", 1, 2000, "1..2000", &v), 2);
    assert_int_equal(v, 2000); /* untouched on error */
    fflush(stderr);
    dup2(save, 2);
    close(fe);
    close(save);
}

static void test_args_parse_u64(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(args_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(args_parse_u64("0x10", &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(args_parse_u64("18446744073709551616", &v), -EINVAL);
    assert_int_equal(args_parse_u64("-1", &v), -EINVAL);
    assert_int_equal(args_parse_u64("12a", &v), -EINVAL);
    assert_int_equal(args_parse_u64("", &v), -EINVAL);
}

/* ---- args_parse ----------------------------------------------------------------------------- */

enum { O_JSON = 1, O_TOP, O_NAME };

typedef struct seen {
    int n;
    int id[8];
    const char *val[8];
    int fail_id; /* the callback refuses this id */
} seen_t;

static int on_opt(void *ctx, int id, const char *val)
{
    seen_t *s = ctx;
    if (id == s->fail_id)
        return args_bad("demo", "--name", val, "something else");
    if (s->n < 8) {
        s->id[s->n] = id;
        s->val[s->n] = val;
    }
    s->n++;
    return 0;
}

static int g_usage_calls;
static void usage(FILE *f)
{
    g_usage_calls++;
    fputs("usage: tickcore demo\n", f);
}

static const args_opt_t OPTS[] = {
    {"json", false, O_JSON, NULL},
    {"name", true, O_NAME, NULL},
    {"symbols", true, 0, "symbols.max_symbols"},
    {"bar", true, 0, "stats.bar_interval"},
    {NULL, false, 0, NULL},
};

typedef struct run {
    int rc, npos;
    char err[1024], out[32768];
    char *argv[32];
} run_t;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t k = fread(buf, 1, cap - 1, f);
    buf[k] = '\0';
    fclose(f);
}

/* args_parse with "demo" + the NULL-ended arguments; stdout and stderr captured. */
static void run(run_t *r, config_t *cfg, seen_t *s, ...)
{
    memset(r, 0, sizeof *r);
    int argc = 0;
    r->argv[argc++] = "demo";
    va_list ap;
    va_start(ap, s);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        r->argv[argc++] = (char *)a;
    va_end(ap);
    args_spec_t spec = {.command = "demo",
                        .opts = OPTS,
                        .on_opt = on_opt,
                        .ctx = s,
                        .usage = usage,
                        .cfg = cfg,
                        .what = "input file",
                        .min_pos = 0,
                        .max_pos = 3};
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    int fo = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    r->rc = args_parse(&spec, argc, r->argv, &r->npos);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(fo);
    close(fe);
    close(save_out);
    close(save_err);
    slurp(g_out, r->out, sizeof r->out);
    slurp(g_err, r->err, sizeof r->err);
}

static void write_ini(const char *text)
{
    FILE *f = fopen(g_ini, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_args_options_in_order_and_positionals(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    seen_t s = {0};
    run_t r;
    run(&r, &cfg, &s, "a.itch", "--name", "x", "b.itch", "--json", "--name=y=z", "--", "--json",
        NULL);
    assert_int_equal(r.rc, ARGS_RUN);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, "");
    assert_int_equal(s.n, 3);
    assert_int_equal(s.id[0], O_NAME);
    assert_string_equal(s.val[0], "x");
    assert_int_equal(s.id[1], O_JSON);
    assert_null(s.val[1]);
    assert_int_equal(s.id[2], O_NAME);
    assert_string_equal(s.val[2], "y=z");
    /* positionals moved to argv[1..], "--json" after "--" is one of them */
    assert_int_equal(r.npos, 3);
    assert_string_equal(r.argv[1], "a.itch");
    assert_string_equal(r.argv[2], "b.itch");
    assert_string_equal(r.argv[3], "--json");
    assert_null(r.argv[4]);
}

static void test_args_flags_override_config_wherever(void **state)
{
    (void)state;
    write_ini("[symbols]\nmax_symbols = 3000\n[stats]\nbar_interval = 5s\n");
    seen_t s = {0};
    run_t r;
    config_t cfg;
    /* the flag before the file still wins; the file's other key stays */
    config_default(&cfg);
    run(&r, &cfg, &s, "--symbols", "600", "--config", g_ini, NULL);
    assert_int_equal(r.rc, ARGS_RUN);
    assert_int_equal(cfg.max_symbols, 600);
    assert_int_equal(cfg.bar_interval_ns, 5000000000ull);
    /* --set after the file */
    config_default(&cfg);
    run(&r, &cfg, &s, "--config", g_ini, "--set", "symbols.max_symbols=1000", NULL);
    assert_int_equal(r.rc, ARGS_RUN);
    assert_int_equal(cfg.max_symbols, 1000);
    /* only the file */
    config_default(&cfg);
    run(&r, &cfg, &s,
        "--config="
        "/nonexistent-not-this-one",
        NULL);
    assert_int_equal(r.rc, 2);
    config_default(&cfg);
    run(&r, &cfg, &s, "--config", g_ini, NULL);
    assert_int_equal(cfg.max_symbols, 3000);
    /* two flags: the last wins */
    config_default(&cfg);
    run(&r, &cfg, &s, "--bar", "1s", "--set", "stats.bar_interval=2s", NULL);
    assert_int_equal(cfg.bar_interval_ns, 2000000000ull);
}

static void test_args_config_paths_refused(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    seen_t s = {0};
    run_t r;
    char want[256];
    run(&r, &cfg, &s, "--config", g_dir, NULL);
    assert_int_equal(r.rc, 2);
    snprintf(want, sizeof want, "tickcore: demo: config %s: Is a directory\n", g_dir);
    assert_string_equal(r.err, want);
    assert_string_equal(r.out, "");
    run(&r, &cfg, &s, "--config", "/nonexistent/x.ini", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err,
                        "tickcore: demo: config /nonexistent/x.ini: No such file or directory\n");
    write_ini("[book]\nmystery = 1\n");
    run(&r, &cfg, &s, "--config", g_ini, NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "t.ini:2: unknown key"));
    assert_non_null(strstr(r.err, "mystery"));
}

static void test_args_errors_one_line(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    seen_t s = {0};
    run_t r;
    run(&r, &cfg, &s, "--x", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "tickcore: demo: unknown option --x (see tickcore demo --help)\n");
    assert_string_equal(r.out, "");
    assert_int_equal(s.n, 0);
    run(&r, &cfg, &s, "--jso", NULL); /* no abbreviations */
    assert_string_equal(r.err, "tickcore: demo: unknown option --jso (see tickcore demo --help)\n");
    run(&r, &cfg, &s, "--x=5", NULL);
    assert_string_equal(r.err, "tickcore: demo: unknown option --x (see tickcore demo --help)\n");
    run(&r, &cfg, &s, "-q", NULL);
    assert_string_equal(r.err, "tickcore: demo: unknown option -q (see tickcore demo --help)\n");
    run(&r, &cfg, &s, "--name", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err,
                        "tickcore: demo: option --name needs a value (see tickcore demo --help)\n");
    run(&r, &cfg, &s, "--json=1", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(
        r.err, "tickcore: demo: option --json takes no value (see tickcore demo --help)\n");
    run(&r, &cfg, &s, "a", "b", "c", "d", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err,
                        "tickcore: demo: unexpected argument 'd' (see tickcore demo --help)\n");
    s.fail_id = O_NAME;
    run(&r, &cfg, &s, "--name", "q", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(
        r.err, "tickcore: demo: --name wants something else, got 'q' (see tickcore demo --help)\n");
    s.fail_id = 0;
    run(&r, &cfg, &s, "--set", "book.nope=1", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "tickcore: demo: --set book.nope=1: "));
    run(&r, &cfg, &s, "--symbols", "zero", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "tickcore: demo: --symbols zero: "));
    /* the rules between keys, once everything is in */
    run(&r, &cfg, &s, "--symbols", "10", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "matrix.symbols"));
    assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1); /* one line */
}

static void test_args_help_and_print_config(void **state)
{
    (void)state;
    config_t cfg;
    config_default(&cfg);
    seen_t s = {0};
    run_t r;
    g_usage_calls = 0;
    run(&r, &cfg, &s, "--json", "--help", "--bogus", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(g_usage_calls, 1);
    assert_string_equal(r.out, "usage: tickcore demo\n");
    assert_string_equal(r.err, "");
    run(&r, &cfg, &s, "-h", NULL);
    assert_int_equal(r.rc, 0);
    run(&r, &cfg, &s, "--symbols", "700", "--print-config", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\nmax_symbols = 700\n"));
    assert_string_equal(r.err, "");
    /* without a config: no --config, --set or --print-config */
    run_t r2;
    run(&r2, NULL, &s, "--print-config", NULL);
    assert_int_equal(r2.rc, 2);
    assert_string_equal(
        r2.err, "tickcore: demo: unknown option --print-config (see tickcore demo --help)\n");
}

static void test_args_check_inputs(void **state)
{
    (void)state;
    write_ini("x");
    assert_int_equal(args_check_input("demo", g_ini), 0);
    fflush(stderr);
    int save = dup(2), fe = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fe, 2);
    int rc = args_check_input("demo", g_dir);
    fflush(stderr);
    dup2(save, 2);
    close(fe);
    close(save);
    assert_int_equal(rc, -EISDIR);
    char err[256], want[256];
    slurp(g_err, err, sizeof err);
    snprintf(want, sizeof want, "tickcore: demo: %s: Is a directory\n", g_dir);
    assert_string_equal(err, want);
    if (geteuid() != 0) { /* root reads anything */
        chmod(g_ini, 0);
        fe = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        save = dup(2);
        dup2(fe, 2);
        rc = args_check_input("demo", g_ini);
        fflush(stderr);
        dup2(save, 2);
        close(fe);
        close(save);
        assert_int_equal(rc, -EACCES);
        slurp(g_err, err, sizeof err);
        snprintf(want, sizeof want, "tickcore: demo: %s: Permission denied\n", g_ini);
        assert_string_equal(err, want);
        chmod(g_ini, 0600);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_parse_count),
        cmocka_unit_test(test_args_count_bounds),
        cmocka_unit_test(test_args_parse_u64),
        cmocka_unit_test(test_args_options_in_order_and_positionals),
        cmocka_unit_test(test_args_flags_override_config_wherever),
        cmocka_unit_test(test_args_config_paths_refused),
        cmocka_unit_test(test_args_errors_one_line),
        cmocka_unit_test(test_args_help_and_print_config),
        cmocka_unit_test(test_args_check_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
