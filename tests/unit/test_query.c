/*
 * test_query: the JSON bodies of the HTTP endpoints. A shard applies a hand-made stream, a real
 * xsection gets rows from a two-sector factor model, both are published, and every answer is
 * compared byte for byte with a string built here from hand-computed values (prices, VWAP,
 * depth) or from the xsection's own arrays (correlation, PCA, MST, clusters, with a naive
 * grouping of the cluster labels); every body also goes through a small JSON validator written
 * here. Every 4xx and 503 case is checked, a body too large for its buffer is a 500, and no
 * query allocates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "base/jbuf.h"
#include "config/config.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "mem/mem.h"
#include "server/query.h"
#include "server/snapshot.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0     (34200ull * 1000000000ull)
#define BAR_NS (60ull * 1000000000ull)
#define PX(d)  ((int64_t)llround((d)*EV_PRICE_SCALE))
#define NOW    7777u

/* ---- a JSON validator (RFC 8259 grammar, no semantics) ------------------------------------ */

static const char *j_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *j_value(const char *p, int depth);

static const char *j_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *j_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *j_value(const char *p, int depth)
{
    if (depth > 64)
        return NULL;
    p = j_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = j_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = j_string(j_ws(p));
                if (!p)
                    return NULL;
                p = j_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            p = j_value(p, depth + 1);
            if (!p)
                return NULL;
            p = j_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '"')
        return j_string(p);
    if (!strncmp(p, "true", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    if (!strncmp(p, "null", 4))
        return p + 4;
    return j_number(p);
}

static bool json_valid(const char *s)
{
    const char *p = j_value(s, 0);
    return p && *j_ws(p) == '\0';
}

static void test_query_json_validator_itself(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\":[1,-2.5e3,true,null,\"x\\\"\\u00e9\"],\"b\":{}}"));
    assert_true(json_valid("[]"));
    assert_false(json_valid("{\"a\":}"));
    assert_false(json_valid("[1,]"));
    assert_false(json_valid("{\"a\":1"));
    assert_false(json_valid("[01]"));
    assert_false(json_valid("[nan]"));
    assert_false(json_valid("\"a\nb\""));
    assert_false(json_valid("[1] x"));
}

/* ---- fixture ------------------------------------------------------------------------------ */

enum { NROWS = 200, NTRACK = 6, MAXN = 8 };

typedef struct fix {
    config_t cfg;
    symtab_t sy;
    shard_t sh;
    xsection_t x;
    snapshot_t s;
    double rows[NROWS][MAXN];
    char buf[1 << 18];
    jbuf_t jb;
    char want[1 << 18];
} fix_t;

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

static ev_t ev_add(uint64_t ts, uint16_t loc, uint64_t ref, uint8_t side, int64_t px, uint64_t sh)
{
    return (ev_t){
        .ts = ts, .type = 'A', .locate = loc, .ref = ref, .side = side, .price = px, .shares = sh};
}

static int setup(void **state)
{
    mem_unseal();
    mem_debug_reset();
    fix_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    config_t *cfg = &f->cfg;
    config_default(cfg);
    cfg->matrix_estimator = CFG_EST_CLOSE; /* the textbook figures the queries are checked on */
    cfg->max_orders = 4096;
    cfg->max_levels = 4096;
    cfg->max_symbols = 64;
    cfg->bar_history = 8;
    cfg->break_window = 64;
    cfg->snapshot_depth = 3;
    cfg->matrix_symbols = MAXN;
    cfg->pca_components = 3;
    cfg->clusters = 2;
    cfg->min_cluster = 2;
    static const char *names[] = {"AAPL", "MSFT", "IBM", "GE", "F", "T"};
    if (symtab_init(&f->sy, 256) != 0)
        return -1;
    for (unsigned i = 0; i < 6; i++)
        symtab_set(&f->sy, (uint16_t)(i + 1), names[i], strlen(names[i]));
    symtab_set(&f->sy, 20, "XOM", 3);
    if (shard_init(&f->sh, cfg, 1, NULL, NULL) != 0 || xsection_init(&f->x, cfg, &f->sy) != 0 ||
        snapshot_init(&f->s, cfg, 1) != 0)
        return -1;
    jbuf_init(&f->jb, f->buf, sizeof f->buf);

    /* AAPL: bids 150.01 x 30, 150.00 x 100; asks 150.03 x 50, 150.05 x 125 (2), 150.10 x 10;
     * trades 20 @ 150.03, 200 @ 150.01, 100 @ 150.02. MSFT: 5 @ 299.50, book empty again.
     * XOM: one bid, 60.50 x 100. */
    ev_t ev[32];
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
    ev[n++] = (ev_t){.ts = t++, .type = 'E', .locate = 1, .ref = 6, .shares = 20, .match = 1};
    ev[n++] = (ev_t){.ts = t++, .type = 'E', .locate = 1, .ref = 2, .shares = 200, .match = 2};
    ev[n++] = (ev_t){.ts = t++, .type = 'X', .locate = 1, .ref = 3, .shares = 50};
    ev[n++] = (ev_t){.ts = t++,
                     .type = 'P',
                     .locate = 1,
                     .price = PX(150.02),
                     .shares = 100,
                     .match = 3,
                     .side = 'B'};
    ev[n++] = ev_add(t++, 2, 10, 'S', PX(300.00), 10);
    ev[n++] = (ev_t){.ts = t++,
                     .type = 'C',
                     .locate = 2,
                     .ref = 10,
                     .shares = 5,
                     .price = PX(299.50),
                     .match = 4,
                     .aux = 'Y'};
    ev[n++] = (ev_t){.ts = t++, .type = 'D', .locate = 2, .ref = 10};
    ev[n++] = ev_add(t++, 20, 11, 'B', PX(60.50), 100);
    shard_apply(&f->sh, ev, n);
    snapshot_after_batch(&f->s, 0, &f->sh, &f->sy, ev, NULL, n, NULL, NOW, true);

    for (int r = 0; r < NROWS; r++) {
        double m = gauss(), a = gauss(), b = gauss();
        for (int c = 0; c < MAXN; c++)
            f->rows[r][c] = c < NTRACK ? 0.01 * (0.4 * m + (c < 3 ? a : b) + 0.5 * gauss()) : 0;
        xsection_push(&f->x, 1000 + (uint64_t)r, f->rows[r], true);
    }
    if (xsection_compute(&f->x) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    snapshot_fini(&f->s);
    xsection_fini(&f->x);
    shard_fini(&f->sh);
    symtab_fini(&f->sy);
    free(f);
    mem_snapshot_t ms;
    mem_snapshot(&ms);
    return ms.tag[MEM_TAG_SERVER].live == 0 ? 0 : -1;
}

/* Append to the expected string. */
static void wp(fix_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wp(fix_t *f, const char *fmt, ...)
{
    size_t len = strlen(f->want);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->want + len, sizeof f->want - len, fmt, ap);
    va_end(ap);
}

static void wnum(fix_t *f, double v)
{
    if (isfinite(v))
        wp(f, "%.10g", v);
    else
        wp(f, "null");
}

static void expect_body(fix_t *f, int status, int want_status)
{
    if (status != want_status || strcmp(f->buf, f->want) != 0) {
        print_message("status %d (want %d)\n got: %s\nwant: %s\n", status, want_status, f->buf,
                      f->want);
        fail();
    }
    assert_true(json_valid(f->buf));
}

static void expect_error(fix_t *f, int status, int want_status, const char *needle)
{
    char head[64];
    snprintf(head, sizeof head, "{\"error\":{\"status\":%d,\"message\":\"", want_status);
    if (status != want_status || strncmp(f->buf, head, strlen(head)) != 0 ||
        (needle && !strstr(f->buf, needle))) {
        print_message("status %d (want %d): %s\n", status, want_status, f->buf);
        fail();
    }
    assert_true(json_valid(f->buf));
}

/* ---- symbols ------------------------------------------------------------------------------ */

static void test_query_symbols_list(void **state)
{
    fix_t *f = *state;
    int st = query_symbols(&f->s, &f->jb);
    f->want[0] = '\0';
    wp(f,
       "{\"symbols\":["
       "{\"symbol\":\"AAPL\",\"locate\":1,\"last\":150.02,\"volume\":320,\"trades\":3,"
       "\"vwap\":150.014375,\"bid\":150.01,\"ask\":150.03,\"return\":null,\"ts\":%llu},"
       "{\"symbol\":\"MSFT\",\"locate\":2,\"last\":299.5,\"volume\":5,\"trades\":1,"
       "\"vwap\":299.5,\"bid\":null,\"ask\":null,\"return\":null,\"ts\":%llu},"
       "{\"symbol\":\"XOM\",\"locate\":20,\"last\":null,\"volume\":0,\"trades\":0,"
       "\"vwap\":null,\"bid\":60.5,\"ask\":null,\"return\":null,\"ts\":%llu}"
       "],\"count\":3}",
       (unsigned long long)(T0 + 1011), (unsigned long long)(T0 + 1014),
       (unsigned long long)(T0 + 1015));
    expect_body(f, st, 200);
}

/* The list's "return" is the last closed bar's log return: AAPL's first bar (minute 570) closed
 * at 150.02 in setup; a trade at 150.50 in minute 571 and one in minute 572 close bar 571, whose
 * return is then log(150.50 / 150.02), computed here by hand. MSFT has no closed bar: null. */
static void test_query_symbols_return_of_last_closed_bar(void **state)
{
    fix_t *f = *state;
    const uint64_t min = 60ull * 1000000000ull;
    ev_t ev[2] = {
        {.ts = T0 + min + 5,
         .type = 'P',
         .locate = 1,
         .price = PX(150.50),
         .shares = 10,
         .match = 5,
         .side = 'B'},
        {.ts = T0 + 2 * min + 5,
         .type = 'P',
         .locate = 1,
         .price = PX(151.00),
         .shares = 10,
         .match = 6,
         .side = 'B'},
    };
    shard_apply(&f->sh, ev, 2);
    snapshot_after_batch(&f->s, 0, &f->sh, &f->sy, ev, NULL, 2, NULL, NOW + 1, true);
    assert_int_equal(query_symbols(&f->s, &f->jb), 200);
    assert_true(json_valid(f->buf));
    const char *a = strstr(f->buf, "{\"symbol\":\"AAPL\"");
    const char *m = strstr(f->buf, "{\"symbol\":\"MSFT\"");
    assert_non_null(a);
    assert_non_null(m);
    const char *ra = strstr(a, "\"return\":");
    assert_true(ra && ra < m);
    double got = strtod(ra + strlen("\"return\":"), NULL), want = log(150.50 / 150.02);
    if (fabs(got - want) > 1e-9 * fabs(want)) {
        print_message("AAPL return %.12g, want %.12g: %s\n", got, want, f->buf);
        fail();
    }
    assert_non_null(strstr(m, "\"return\":null"));
}

static void test_query_symbol_detail(void **state)
{
    fix_t *f = *state;
    int st = query_symbol(&f->s, "AAPL", "2", &f->jb);
    f->want[0] = '\0';
    wp(f,
       "{\"symbol\":\"AAPL\",\"locate\":1,\"ts\":%llu,\"published_ns\":%u,\"version\":1,"
       "\"bid\":{\"price\":150.01,\"size\":30},\"ask\":{\"price\":150.03,\"size\":50},"
       "\"mid\":150.02,\"spread\":0.02,\"last\":150.02,\"vwap\":150.014375,"
       "\"depth\":{\"levels\":2,"
       "\"bids\":[{\"price\":150.01,\"shares\":30,\"orders\":1},"
       "{\"price\":150,\"shares\":100,\"orders\":1}],"
       "\"asks\":[{\"price\":150.03,\"shares\":50,\"orders\":1},"
       "{\"price\":150.05,\"shares\":125,\"orders\":2}]},"
       "\"book\":{\"bid_orders\":2,\"bid_levels\":2,\"ask_orders\":4,\"ask_levels\":3},"
       "\"stats\":{\"trades\":3,\"volume\":320,\"notional\":48004.6,\"vwap\":150.014375,"
       "\"last\":150.02,\"last_ts\":%llu,\"open\":150.03,\"high\":150.03,\"low\":150.01,"
       "\"bid\":150.01,\"ask\":150.03,\"mid\":150.02,\"spread\":0.02,\"bar_returns\":0,"
       "\"return_mean\":null,\"volatility\":null,\"breaks\":0},"
       "\"last_bar\":null,"
       "\"open_bar\":{\"k\":570,\"start_ns\":%llu,\"open\":150.03,\"high\":150.03,"
       "\"low\":150.01,\"close\":150.02,\"volume\":320,\"trades\":3,\"vwap\":150.014375,"
       "\"return\":null,\"mid_return\":null,\"carried\":false,\"priced\":true}}",
       (unsigned long long)(T0 + 1011), NOW, (unsigned long long)(T0 + 1011),
       (unsigned long long)T0);
    expect_body(f, st, 200);

    /* default depth: min(5, configured 3); 0 levels is allowed */
    st = query_symbol(&f->s, "AAPL", NULL, &f->jb);
    assert_int_equal(st, 200);
    assert_non_null(strstr(f->buf, "\"depth\":{\"levels\":3,"));
    assert_non_null(strstr(f->buf, "{\"price\":150.1,\"shares\":10,\"orders\":1}]}"));
    assert_true(json_valid(f->buf));
    st = query_symbol(&f->s, "AAPL", "0", &f->jb);
    assert_int_equal(st, 200);
    assert_non_null(strstr(f->buf, "\"depth\":{\"levels\":0,\"bids\":[],\"asks\":[]}"));
    /* an empty book, a symbol with no trade */
    st = query_symbol(&f->s, "MSFT", "3", &f->jb);
    assert_int_equal(st, 200);
    assert_non_null(strstr(f->buf, "\"bid\":null,\"ask\":null,\"mid\":null,\"spread\":null,"
                                   "\"last\":299.5,\"vwap\":299.5,"));
    st = query_symbol(&f->s, "XOM", "1", &f->jb);
    assert_int_equal(st, 200);
    assert_non_null(strstr(f->buf, "\"bid\":{\"price\":60.5,\"size\":100},\"ask\":null,"));
    assert_non_null(strstr(f->buf, "\"last\":null,\"vwap\":null,"));
    assert_true(json_valid(f->buf));
}

static void test_query_symbol_errors(void **state)
{
    fix_t *f = *state;
    const char *bad_names[] = {"",      "TOOLONGXX", "AA\"PL", "A,B",
                               " AAPL", "AAPL\n",    "A\\B",   "AA\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        expect_error(f, query_symbol(&f->s, bad_names[i], NULL, &f->jb), 400, "bad symbol");
    expect_error(f, query_symbol(&f->s, NULL, NULL, &f->jb), 400, "bad symbol");
    const char *bad_depths[] = {"", "abc", "-1", "4", "999999999", "1x", "+1", " 1"};
    for (size_t i = 0; i < sizeof bad_depths / sizeof *bad_depths; i++)
        expect_error(f, query_symbol(&f->s, "AAPL", bad_depths[i], &f->jb), 400, "bad depth \\\"");
    expect_error(f, query_symbol(&f->s, "AAPL", "4", &f->jb), 400, "from 0 to 3");
    expect_error(f, query_symbol(&f->s, "ZZZZ", NULL, &f->jb), 404, "unknown symbol \\\"ZZZZ\\\"");
    expect_error(f, query_symbol(&f->s, "aapl", NULL, &f->jb), 404, "aapl");
    expect_error(f, query_symbol(&f->s, "IBM", NULL, &f->jb), 404, "IBM"); /* never published */
}

static void test_query_body_too_large_is_500(void **state)
{
    fix_t *f = *state;
    char small[100];
    jbuf_t jb;
    jbuf_init(&jb, small, sizeof small);
    assert_int_equal(query_symbols(&f->s, &jb), 500);
    assert_false(jbuf_overflow(&jb));
    assert_true(json_valid(small));
    assert_non_null(strstr(small, "\"status\":500"));
    char big[400];
    jbuf_init(&jb, big, sizeof big);
    assert_int_equal(query_symbol(&f->s, "AAPL", "3", &jb), 500);
    assert_true(json_valid(big));
    assert_non_null(strstr(big, "does not fit the response buffer (400 bytes)"));
}

/* ---- cross-section ------------------------------------------------------------------------ */

static void test_query_xs_before_first_compute_is_503(void **state)
{
    fix_t *f = *state;
    expect_error(f, query_correlation(&f->s, "AAPL,MSFT", &f->jb), 503, "no cross-section");
    expect_error(f, query_pca(&f->s, &f->jb), 503, "no cross-section");
    expect_error(f, query_mst(&f->s, &f->jb), 503, "no cross-section");
    expect_error(f, query_clusters(&f->s, &f->jb), 503, "no cross-section");
    /* a bad request is a 400 whatever the state */
    expect_error(f, query_correlation(&f->s, NULL, &f->jb), 400, "missing symbols");
}

static void put_meta(fix_t *f)
{
    snapshot_xs_tx_t tx;
    snapshot_xs_head_t h;
    assert_int_equal(snapshot_xs_begin(&f->s, &tx, &h), 0);
    wp(f,
       "\"n\":6,\"n_rows\":200,\"rows_total\":200,\"bars\":{\"first\":1000,\"last\":1199,"
       "\"interval_ns\":60000000000},\"generation\":%llu,\"published_ns\":%llu",
       (unsigned long long)h.gen, (unsigned long long)h.publish_ns);
}

static const char *nm(fix_t *f, size_t i)
{
    return symtab_name(&f->sy, f->x.locs[i]);
}

static void test_query_correlation(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    const xsection_t *x = &f->x;
    int st = query_correlation(&f->s, "AAPL,MSFT,AAPL,T", &f->jb);
    const int ix[] = {0, 1, 0, 5};
    f->want[0] = '\0';
    wp(f, "{\"symbols\":[\"AAPL\",\"MSFT\",\"AAPL\",\"T\"],\"matrix\":[");
    for (int i = 0; i < 4; i++) {
        wp(f, i ? ",[" : "[");
        for (int j = 0; j < 4; j++) {
            wp(f, j ? "," : "");
            wnum(f, x->compact[ix[i] * NTRACK + ix[j]]);
        }
        wp(f, "]");
    }
    wp(f, "],");
    put_meta(f);
    wp(f, "}");
    expect_body(f, st, 200);
    /* the values are the naive correlation of the rows (to the printed precision) */
    double rho = 0, mi = 0, mj = 0, sij = 0, sii = 0, sjj = 0;
    for (int r = 0; r < NROWS; r++) {
        mi += f->rows[r][0] / NROWS;
        mj += f->rows[r][1] / NROWS;
    }
    for (int r = 0; r < NROWS; r++) {
        sij += (f->rows[r][0] - mi) * (f->rows[r][1] - mj);
        sii += (f->rows[r][0] - mi) * (f->rows[r][0] - mi);
        sjj += (f->rows[r][1] - mj) * (f->rows[r][1] - mj);
    }
    rho = sij / sqrt(sii * sjj);
    const char *p = strstr(f->buf, "\"matrix\":[[");
    assert_non_null(p);
    double v00, v01;
    assert_int_equal(sscanf(p + strlen("\"matrix\":[["), "%lf,%lf", &v00, &v01), 2);
    assert_true(fabs(v01 - rho) < 1e-9);
    assert_true(fabs(v00 - 1.0) < 1e-12);

    /* spaces around names; one name; IBM is tracked though it has no symbol record */
    assert_int_equal(query_correlation(&f->s, " AAPL , IBM", &f->jb), 200);
    assert_non_null(strstr(f->buf, "{\"symbols\":[\"AAPL\",\"IBM\"],\"matrix\":[["));
    assert_int_equal(query_correlation(&f->s, "GE", &f->jb), 200);
    assert_non_null(strstr(f->buf, "{\"symbols\":[\"GE\"],\"matrix\":[["));

    /* 4xx */
    expect_error(f, query_correlation(&f->s, NULL, &f->jb), 400, "missing symbols");
    expect_error(f, query_correlation(&f->s, "", &f->jb), 400, "missing symbols");
    expect_error(f, query_correlation(&f->s, "AAPL,,MSFT", &f->jb), 400, "empty symbol");
    expect_error(f, query_correlation(&f->s, ",AAPL", &f->jb), 400, "empty symbol");
    expect_error(f, query_correlation(&f->s, "AAPL,", &f->jb), 400, "empty symbol");
    expect_error(f, query_correlation(&f->s, "AAPL,BAD!", &f->jb), 400, "bad symbol \\\"BAD!\\\"");
    expect_error(f, query_correlation(&f->s, "AAPL,TOOLONGXX", &f->jb), 400, "bad symbol");
    char many[65 * 5 + 1] = "";
    for (int i = 0; i < 64; i++)
        strcat(many, i ? ",AAPL" : "AAPL");
    assert_int_equal(query_correlation(&f->s, many, &f->jb), 200); /* 64 is the limit */
    assert_true(json_valid(f->buf));
    strcat(many, ",MSFT");
    expect_error(f, query_correlation(&f->s, many, &f->jb), 400, "at most 64");
    expect_error(f, query_correlation(&f->s, "AAPL,ZZZZ", &f->jb), 404,
                 "unknown symbol \\\"ZZZZ\\\"");
    expect_error(f, query_correlation(&f->s, "XOM,AAPL", &f->jb), 404,
                 "symbol \\\"XOM\\\" is not in the cross-section");
}

static void test_query_pca(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    const pca_t *p = &f->x.pca;
    int st = query_pca(&f->s, &f->jb);
    f->want[0] = '\0';
    wp(f, "{");
    put_meta(f);
    wp(f, ",\"k\":3,\"explained_variance_ratio\":[");
    double cum = 0;
    for (int c = 0; c < 3; c++) {
        wp(f, c ? "," : "");
        wnum(f, p->ratio[c]);
        cum += p->ratio[c];
    }
    wp(f, "],\"cumulative_ratio\":");
    wnum(f, cum);
    wp(f, ",\"symbols\":[");
    for (size_t i = 0; i < NTRACK; i++)
        wp(f, "%s\"%s\"", i ? "," : "", nm(f, i));
    wp(f, "],\"components\":[");
    for (int c = 0; c < 3; c++) {
        wp(f, "%s{\"component\":%d,\"eigenvalue\":", c ? "," : "", c + 1);
        wnum(f, p->values[c]);
        wp(f, ",\"explained_variance_ratio\":");
        wnum(f, p->ratio[c]);
        wp(f, ",\"loadings\":[");
        for (size_t i = 0; i < NTRACK; i++) {
            wp(f, i ? "," : "");
            wnum(f, p->vectors[(size_t)c * p->n + (f->x.locs[i] - 1u)]);
        }
        wp(f, "]}");
    }
    wp(f, "]}");
    expect_body(f, st, 200);
    assert_true(p->ratio[0] > 0.3); /* the market plus one sector: a big first component */
}

static void test_query_mst(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    const graph_t *g = &f->x.graph;
    int st = query_mst(&f->s, &f->jb);
    f->want[0] = '\0';
    wp(f, "{");
    put_meta(f);
    wp(f, ",\"total_distance\":");
    wnum(f, g->total);
    wp(f, ",\"edges\":[");
    for (size_t e = 0; e < g->nedges; e++) {
        wp(f, "%s{\"from\":\"%s\",\"to\":\"%s\",\"rho\":", e ? "," : "", nm(f, g->edges[e].u),
           nm(f, g->edges[e].v));
        wnum(f, g->edges[e].rho);
        wp(f, ",\"distance\":");
        wnum(f, g->edges[e].d);
        wp(f, "}");
    }
    wp(f, "],\"count\":5}");
    expect_body(f, st, 200);
}

static void test_query_clusters(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    const graph_t *g = &f->x.graph;
    int st = query_clusters(&f->s, &f->jb);
    f->want[0] = '\0';
    wp(f, "{");
    put_meta(f);
    wp(f, ",\"count\":%zu,\"clusters\":[", f->x.nclusters);
    for (size_t c = 0; c < f->x.nclusters; c++) { /* naive: scan the labels per cluster */
        wp(f, c ? ",[" : "[");
        bool first = true;
        for (size_t i = 0; i < NTRACK; i++)
            if (g->label[i] == c) {
                wp(f, "%s\"%s\"", first ? "" : ",", nm(f, i));
                first = false;
            }
        wp(f, "]");
    }
    wp(f, "],\"nodes\":[");
    for (size_t i = 0; i < NTRACK; i++) {
        wp(f, "%s{\"symbol\":\"%s\",\"locate\":%u,\"cluster\":%u,\"degree\":%u,\"betweenness\":",
           i ? "," : "", nm(f, i), f->x.locs[i], g->label[i], g->degree[i]);
        wnum(f, graph_between_norm(g, i));
        wp(f, "}");
    }
    wp(f, "]}");
    expect_body(f, st, 200);
    /* the two sectors */
    assert_int_equal(f->x.nclusters, 2);
    assert_non_null(
        strstr(f->buf, "\"clusters\":[[\"AAPL\",\"MSFT\",\"IBM\"],[\"GE\",\"F\",\"T\"]]"));
}

/* ---- no allocation ------------------------------------------------------------------------ */

static void test_query_allocates_nothing(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    int sum = 0;
    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    for (int r = 0; r < 20; r++) {
        sum += query_symbols(&f->s, &f->jb);
        sum += query_symbol(&f->s, "AAPL", "3", &f->jb);
        sum += query_symbol(&f->s, "AAPL", NULL, &f->jb);
        sum += query_symbol(&f->s, "ZZZZ", NULL, &f->jb);
        sum += query_symbol(&f->s, "BAD!", NULL, &f->jb);
        sum += query_symbol(&f->s, "AAPL", "x", &f->jb);
        sum += query_correlation(&f->s, "AAPL,MSFT,GE", &f->jb);
        sum += query_correlation(&f->s, "AAPL,ZZZZ", &f->jb);
        sum += query_correlation(&f->s, "", &f->jb);
        sum += query_pca(&f->s, &f->jb);
        sum += query_mst(&f->s, &f->jb);
        sum += query_clusters(&f->s, &f->jb);
    }
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    assert_int_equal(allocs, 0);
    assert_int_equal(sum, 20 * (200 * 3 + 404 + 400 + 400 + 200 + 404 + 400 + 200 * 3));
}

/* ---- the retry loop under a writer ------------------------------------------------------- */

typedef struct republisher {
    fix_t *f;
    atomic_bool stop;
    unsigned long published;
} republisher_t;

static void *republish_main(void *arg)
{
    republisher_t *r = arg;
    while (!atomic_load(&r->stop))
        if (snapshot_publish_xs(&r->f->s, &r->f->x) == 0)
            r->published++;
    return NULL;
}

/* The body of a cross-section answer without its generation and publication time (they change
 * with every publication), or NULL if it has no meta. */
static const char *after_meta(const char *body)
{
    const char *p = strstr(body, "\"published_ns\":");
    if (!p)
        return NULL;
    p += strlen("\"published_ns\":");
    while (*p >= '0' && *p <= '9')
        p++;
    return p;
}

/* While another thread republishes the same cross-section as fast as it can, every answer is
 * either the whole body of a quiet read (apart from generation and time: so no torn read was
 * sent and no retry left a partial body in front) or the 503 of a read that changed every time. */
static void test_query_retries_while_republished(void **state)
{
    fix_t *f = *state;
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    enum { Q_CORR, Q_PCA, Q_MST, Q_CLUSTERS, Q_N };
    static char want[Q_N][1 << 16];
    for (int q = 0; q < Q_N; q++) {
        int st = q == Q_CORR  ? query_correlation(&f->s, "AAPL,MSFT,GE", &f->jb)
                 : q == Q_PCA ? query_pca(&f->s, &f->jb)
                 : q == Q_MST ? query_mst(&f->s, &f->jb)
                              : query_clusters(&f->s, &f->jb);
        assert_int_equal(st, 200);
        assert_non_null(after_meta(f->buf));
        assert_true(strlen(f->buf) < sizeof want[q]);
        strcpy(want[q], f->buf);
    }
    republisher_t r = {.f = f};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, republish_main, &r), 0);
    unsigned ok = 0, busy = 0;
    for (int i = 0; i < 4000; i++) {
        int q = i % Q_N;
        int st = q == Q_CORR  ? query_correlation(&f->s, "AAPL,MSFT,GE", &f->jb)
                 : q == Q_PCA ? query_pca(&f->s, &f->jb)
                 : q == Q_MST ? query_mst(&f->s, &f->jb)
                              : query_clusters(&f->s, &f->jb);
        if (st == 503) {
            assert_non_null(strstr(f->buf, "changed during every read"));
            busy++;
            continue;
        }
        assert_int_equal(st, 200);
        const char *got = after_meta(f->buf), *exp = after_meta(want[q]);
        assert_non_null(got);
        assert_string_equal(got, exp);
        /* the same start up to the generation */
        const char *g = strstr(f->buf, "\"generation\":");
        assert_non_null(g);
        assert_int_equal(strncmp(f->buf, want[q], (size_t)(g - f->buf)), 0);
        assert_true(json_valid(f->buf));
        ok++;
    }
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    print_message("    %u answers, %u busy, %lu publications meanwhile\n", ok, busy, r.published);
    assert_true(ok + busy == 4000);
}

/* ---- pre-serialised answers --------------------------------------------------------------- */

static char g_cache_buf[3][1 << 18];

static int fresh(fix_t *f, query_xs_t k, jbuf_t *out)
{
    return k == QUERY_XS_PCA   ? query_pca(&f->s, out)
           : k == QUERY_XS_MST ? query_mst(&f->s, out)
                               : query_clusters(&f->s, out);
}

/* One more bar of the factor model and a new cross-section: every number in the bodies moves. */
static void next_xs(fix_t *f, uint64_t k)
{
    double row[MAXN], m = gauss(), a = gauss(), b = gauss();
    for (int c = 0; c < MAXN; c++)
        row[c] = c < NTRACK ? 0.01 * (0.4 * m + (c < 3 ? a : b) + 0.5 * gauss()) : 0;
    xsection_push(&f->x, k, row, true);
    assert_int_equal(xsection_compute(&f->x), 0);
}

/* Before the first publish the cache answers the plain query's 503 and keeps nothing; after
 * every publish each cached answer equals the plain query's body byte for byte, the first
 * request writes it (one fill per publish) and the next ones copy it (hits). A cache too small
 * for the body gives the plain query's 500, as a connection buffer of that size would. */
static void test_query_cache_equals_fresh_after_every_publish(void **state)
{
    fix_t *f = *state;
    static char want[1 << 18];
    query_cache_t c[3];
    for (int k = 0; k < 3; k++)
        query_cache_init(&c[k], (query_xs_t)k, g_cache_buf[k], sizeof g_cache_buf[k]);
    for (int k = 0; k < 3; k++) {
        expect_error(f, query_cached(&c[k], &f->s, &f->jb), 503, "no cross-section");
        assert_int_equal(c[k].fills + c[k].hits, 0);
    }
    enum { ROUNDS = 25, ASKS = 3 };
    for (uint64_t r = 0; r < ROUNDS; r++) {
        if (r)
            next_xs(f, 1200 + r);
        assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
        assert_int_equal(snapshot_xs_gen(&f->s), r + 1);
        for (int k = 0; k < 3; k++) {
            for (int a = 0; a < ASKS; a++) {
                int st = query_cached(&c[k], &f->s, &f->jb);
                assert_int_equal(st, 200);
                assert_true(strlen(f->buf) < sizeof want);
                strcpy(want, f->buf);
                assert_int_equal(fresh(f, (query_xs_t)k, &f->jb), 200);
                if (strcmp(want, f->buf) != 0) {
                    print_message("kind %d round %llu ask %d\ncached: %s\n fresh: %s\n", k,
                                  (unsigned long long)r, a, want, f->buf);
                    fail();
                }
                assert_true(json_valid(want));
            }
            assert_int_equal(c[k].fills, r + 1);
            assert_int_equal(c[k].hits, (r + 1) * (ASKS - 1));
        }
    }
    /* a response buffer smaller than the body: the same 500 as the plain query */
    char small[64], small2[64];
    jbuf_t sj, sj2;
    jbuf_init(&sj, small, sizeof small);
    jbuf_init(&sj2, small2, sizeof small2);
    assert_int_equal(query_cached(&c[QUERY_XS_MST], &f->s, &sj), 500);
    assert_int_equal(query_mst(&f->s, &sj2), 500);
    assert_string_equal(small, small2);
    /* a cache smaller than the body: nothing kept, the plain answer */
    query_cache_t tiny;
    static char tbuf[64];
    query_cache_init(&tiny, QUERY_XS_MST, tbuf, sizeof tbuf);
    assert_int_equal(query_cached(&tiny, &f->s, &f->jb), 200);
    strcpy(want, f->buf);
    assert_int_equal(query_mst(&f->s, &f->jb), 200);
    assert_string_equal(want, f->buf);
    assert_int_equal(tiny.fills + tiny.hits, 0);
}

/* While a writer computes and publishes a new cross-section as fast as it can, every cached
 * answer is whole and of one generation: its MST total is the one published with the
 * generation the body names (no torn body), that generation is at least the one published when
 * the request began (never stale) and at most the one published when it returned; the cache is
 * written at most once per generation. Run under TSan as well (make SAN=thread). */
typedef struct xs_writer {
    fix_t *f;
    atomic_bool stop;
    uint64_t n;
    _Atomic uint64_t total[4096]; /* bits of the MST total published as generation g */
} xs_writer_t;

static void *xs_writer_main(void *arg)
{
    xs_writer_t *w = arg;
    while (!atomic_load(&w->stop)) {
        uint64_t g = snapshot_xs_gen(&w->f->s) + 1;
        if (g >= 4096)
            break;
        next_xs(w->f, 1200 + g);
        uint64_t bits;
        memcpy(&bits, &w->f->x.graph.total, sizeof bits);
        atomic_store_explicit(&w->total[g], bits, memory_order_relaxed);
        if (snapshot_publish_xs(&w->f->s, &w->f->x) == 0)
            w->n++;
    }
    return NULL;
}

static uint64_t body_u64(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    assert_non_null(p);
    return strtoull(p + strlen(key), NULL, 10);
}

static void test_query_cache_never_torn_or_stale_under_publishes(void **state)
{
    fix_t *f = *state;
    static xs_writer_t w;
    memset(&w, 0, sizeof w);
    w.f = f;
    uint64_t bits;
    memcpy(&bits, &f->x.graph.total, sizeof bits);
    atomic_store(&w.total[1], bits);
    assert_int_equal(snapshot_publish_xs(&f->s, &f->x), 0);
    query_cache_t c[3];
    for (int k = 0; k < 3; k++)
        query_cache_init(&c[k], (query_xs_t)k, g_cache_buf[k], sizeof g_cache_buf[k]);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, xs_writer_main, &w), 0);
    unsigned ok = 0, busy = 0, checked = 0;
    for (int i = 0; i < 3000; i++) {
        query_xs_t k = (query_xs_t)(i % 3);
        uint64_t before = snapshot_xs_gen(&f->s);
        int st = query_cached(&c[k], &f->s, &f->jb);
        uint64_t after = snapshot_xs_gen(&f->s);
        if (st == 503) {
            assert_non_null(strstr(f->buf, "changed during every read"));
            busy++;
            continue;
        }
        assert_int_equal(st, 200);
        assert_true(json_valid(f->buf));
        uint64_t g = body_u64(f->buf, "\"generation\":");
        assert_true(g >= before && g <= after);
        if (k == QUERY_XS_MST) {
            double total;
            uint64_t tb = atomic_load_explicit(&w.total[g], memory_order_relaxed);
            memcpy(&total, &tb, sizeof total);
            char want[64];
            snprintf(want, sizeof want, "\"total_distance\":%.10g,", total);
            if (!strstr(f->buf, want)) {
                print_message("generation %llu: want %s in %.300s\n", (unsigned long long)g, want,
                              f->buf);
                fail();
            }
            checked++;
        }
        ok++;
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    uint64_t fills = c[0].fills + c[1].fills + c[2].fills;
    print_message("    %u answers (%u MST totals checked), %u busy, %llu publishes, %llu fills, "
                  "%llu hits\n",
                  ok, checked, busy, (unsigned long long)w.n, (unsigned long long)fills,
                  (unsigned long long)(c[0].hits + c[1].hits + c[2].hits));
    assert_true(ok + busy == 3000);
    for (int k = 0; k < 3; k++)
        assert_true(c[k].fills <= w.n + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_json_validator_itself),
        cmocka_unit_test_setup_teardown(test_query_symbols_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_symbols_return_of_last_closed_bar, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_query_symbol_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_symbol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_body_too_large_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_xs_before_first_compute_is_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_correlation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_pca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_mst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_allocates_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_retries_while_republished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_cache_equals_fresh_after_every_publish, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_query_cache_never_torn_or_stale_under_publishes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
