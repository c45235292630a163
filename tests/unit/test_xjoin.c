/*
 * test_xjoin: the cluster's bar-row join (engine/xrow, engine/xjoin) against one process.
 *  - The oracle: one generated day through the single-process pipeline (K = 2 workers): the rows
 *    its cross-section thread pushes (on_row, before xsection_push) and its correlation matrix.
 *  - The cluster: the same day split into N = 2 and 3 shards (each shard's pipeline sees only
 *    the events of its locates, owner = locate % N, plus the system and directory messages, as
 *    the NATS publisher routes them); each shard encodes its part of every row (xrow_encode).
 *  - Joined by xjoin in order, interleaved at random across shards, with duplicates (single
 *    re-sends and a restarted shard re-sending everything from its first part), and through a
 *    window of 4 bars with one shard far ahead (FULL, offered again): the rows handed out equal,
 *    bit for bit, both the single-process rows and a naive join (a linear search for each bar's
 *    part of every shard, the columns taken by owner[] directly), and an xsection fed with them
 *    gives the single-process correlation matrix bit for bit. The join, the pushes and the
 *    compute allocate nothing after the seal (malloc_count).
 *  - A shard that misses bars: the bars past the deadline are dropped and counted (incomplete,
 *    missing per shard), the other rows still come out in order, equal to the oracle's; the
 *    missing parts arriving afterwards are counted late, not joined.
 *  - Bad parts: truncated, long, bad magic, version, shard, CRC, flags; a part of another
 *    configuration (other shard function): each refused with a message naming the byte or
 *    what differs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/xjoin.h"
#include "engine/xrow.h"
#include "engine/xsection.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

enum { NSYM = 60, M = 64, MAXBARS = 2048, MAXN = 3, PART_MAX = XROW_HEADER + 16 * M };

static char g_dir[64], g_path[128];

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-xjoin-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/day.itch", g_dir);
    gen_cfg_t gc;
    gen_cfg_default(&gc);
    gc.out = g_path;
    gc.symbols = NSYM;
    gc.sectors = 4;
    gc.messages = RUNNING_ON_VALGRIND ? 120000 : 400000;
    gc.truth = false;
    gc.seed = 7;
    gen_stats_t gs;
    if (gen_run(&gc, &gs) != 0)
        return -1;
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

static void test_config(config_t *cfg, unsigned workers)
{
    config_default(cfg);
    cfg->workers = workers;
    cfg->batches = 8;
    cfg->batch_events = 4096;
    cfg->max_orders = 1u << 17;
    cfg->max_levels = 1u << 16;
    cfg->max_symbols = 256;
    cfg->matrix_symbols = M;
    cfg->ring_slots = 64;
    cfg->bar_interval_ns = 30000000000ull; /* 30 s: hundreds of bars */
    cfg->window = 200;
}

/* ---- rows: what a cross-section is fed -------------------------------------------------- */

typedef struct rows {
    uint64_t session[MAXBARS], k[MAXBARS];
    uint8_t traded[MAXBARS];
    double v[MAXBARS][M];
    size_t n;
} rows_t;

static void rows_add(rows_t *r, uint64_t session, uint64_t k, const double *row, bool traded)
{
    assert_true(r->n < MAXBARS);
    r->session[r->n] = session;
    r->k[r->n] = k;
    r->traded[r->n] = traded;
    memcpy(r->v[r->n], row, sizeof r->v[0]);
    r->n++;
}

static void on_row_record(void *ctx, uint64_t session, uint64_t k, const double *row, bool traded)
{
    rows_add(ctx, session, k, row, traded);
}

/* Same bars, same traded flags, same bits (NaN included). */
static void rows_same(const rows_t *a, const rows_t *b, const char *what)
{
    if (a->n != b->n)
        fail_msg("%s: %zu rows against %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        if (a->session[i] != b->session[i] || a->k[i] != b->k[i] || a->traded[i] != b->traded[i])
            fail_msg("%s: row %zu: bar %llu/%llu traded %u, against bar %llu/%llu traded %u", what,
                     i, (unsigned long long)a->session[i], (unsigned long long)a->k[i],
                     a->traded[i], (unsigned long long)b->session[i], (unsigned long long)b->k[i],
                     b->traded[i]);
        if (memcmp(a->v[i], b->v[i], sizeof a->v[i]) != 0)
            for (int c = 0; c < M; c++)
                if (memcmp(&a->v[i][c], &b->v[i][c], sizeof(double)))
                    fail_msg("%s: bar %llu column %d: %.17g against %.17g", what,
                             (unsigned long long)a->k[i], c, a->v[i][c], b->v[i][c]);
    }
}

/* ---- the single process and the shards -------------------------------------------------- */

static rows_t g_single;
static double g_single_corr[NSYM * NSYM];
static uint8_t g_owner[MAXN + 1][65536]; /* [N]: locate % N */

/* One shard's parts, as it would publish them. */
typedef struct shard_out {
    xrow_layout_t l;
    const symtab_t *names;
    uint8_t part[MAXBARS][PART_MAX];
    size_t n;
} shard_out_t;

static shard_out_t g_parts[MAXN + 1][MAXN]; /* [N][shard] */

static void on_row_encode(void *ctx, uint64_t session, uint64_t k, const double *row, bool traded)
{
    shard_out_t *o = ctx;
    assert_true(o->n < MAXBARS);
    size_t b =
        xrow_encode(&o->l, session, k, o->n, 1000 + o->n, row, traded, o->names, o->part[o->n]);
    assert_int_equal(b, o->l.bytes);
    o->n++;
}

/* Everyone's message (system, directory, market-wide with locate 0) or the shard's. */
static bool routed_to(const ev_t *e, unsigned shard, unsigned nshards)
{
    return e->type == 'S' || e->type == 'R' || e->locate == 0 ||
           g_owner[nshards][e->locate] == shard;
}

/* Run the day through one pipeline. nshards 0: the single process (every event); else only the
 * events routed to `shard`. */
static void run_day(unsigned workers, unsigned nshards, unsigned shard, void *hook_ctx,
                    void (*on_row)(void *, uint64_t, uint64_t, const double *, bool),
                    double *corr_out)
{
    config_t cfg;
    test_config(&cfg, workers);
    symtab_t sy;
    static stream_t s;
    stream_cfg_t sc;
    stream_cfg_default(&sc);
    sc.batch_events = cfg.batch_events;
    static pipeline_t p;
    static ev_t tmp[4096];
    assert_int_equal(symtab_init(&sy, cfg.max_symbols), 0);
    assert_int_equal(stream_init(&s, &sc, &sy), 0);
    assert_int_equal(pipeline_init(&p, &cfg, &sy), 0);
    if (nshards) {
        shard_out_t *o = hook_ctx;
        assert_int_equal(xrow_layout_init(&o->l, shard, nshards, M, g_owner[nshards]), 0);
        o->names = &sy;
        o->n = 0;
    }
    p.on_row = on_row;
    p.hook_ctx = hook_ctx;
    assert_int_equal(pipeline_start(&p), 0);
    assert_int_equal(stream_open(&s, g_path), 0);
    int rc;
    for (;;) {
        size_t n = 0;
        rc = stream_next_into(&s, tmp, 4096, &n);
        if (rc <= 0)
            break;
        pipe_batch_t *b = pipeline_acquire(&p);
        for (size_t i = 0; i < n; i++) {
            tmp[i].raw = NULL;
            if (!nshards || routed_to(&tmp[i], shard, nshards))
                b->ev[b->n++] = tmp[i];
        }
        pipeline_publish(&p, b);
    }
    assert_int_equal(rc, 0);
    pipeline_close_bars(&p);
    pipeline_finish(&p);
    if (corr_out) {
        assert_int_equal(xsection_compute(&p.xs), 0);
        assert_int_equal(p.xs.n, NSYM);
        memcpy(corr_out, p.xs.compact, NSYM * NSYM * sizeof(double));
    }
    pipeline_fini(&p);
    stream_fini(&s);
    if (nshards)
        ((shard_out_t *)hook_ctx)->names = NULL;
    symtab_fini(&sy);
}

static int setup_runs(void **state)
{
    if (setup_all(state))
        return -1;
    for (unsigned n = 1; n <= MAXN; n++)
        for (uint32_t loc = 0; loc < 65536; loc++)
            g_owner[n][loc] = (uint8_t)(loc % n);
    return 0;
}

static bool g_ran;

static void run_all(void)
{
    if (g_ran)
        return;
    g_ran = true;
    g_single.n = 0;
    run_day(2, 0, 0, &g_single, on_row_record, g_single_corr);
    assert_true(g_single.n > 100);
    for (unsigned n = 2; n <= MAXN; n++)
        for (unsigned s = 0; s < n; s++)
            run_day(s == 0 ? 2 : 1, n, s, &g_parts[n][s], on_row_encode, NULL);
}

/* ---- the naive join ------------------------------------------------------------------------ */

/* For each bar of shard 0 (in its order), every shard's part of that bar by a linear search; the
 * columns c with owner[c + 1] == s from shard s's part, in its column order. */
static void naive_join(unsigned nshards, rows_t *out)
{
    out->n = 0;
    const shard_out_t *s0 = &g_parts[nshards][0];
    for (size_t i = 0; i < s0->n; i++) {
        xrow_part_t p0;
        char err[256];
        assert_int_equal(xrow_decode(s0->part[i], s0->l.bytes, &p0, err, sizeof err), 0);
        double row[M];
        bool traded = false, all = true;
        for (unsigned s = 0; s < nshards && all; s++) {
            const shard_out_t *o = &g_parts[nshards][s];
            bool found = false;
            for (size_t j = 0; j < o->n && !found; j++) {
                xrow_part_t p;
                assert_int_equal(xrow_decode(o->part[j], o->l.bytes, &p, err, sizeof err), 0);
                if (p.session != p0.session || p.k != p0.k)
                    continue;
                found = true;
                traded |= (p.flags & XROW_TRADED) != 0;
                uint32_t idx = 0;
                for (uint32_t c = 0; c < M; c++)
                    if (g_owner[nshards][c + 1] == s)
                        row[c] = xrow_value(&p, idx++);
                assert_int_equal(idx, p.ncols);
            }
            all = found;
        }
        if (all)
            rows_add(out, p0.session, p0.k, row, traded);
    }
}

/* ---- joining ------------------------------------------------------------------------------- */

typedef struct sink {
    rows_t *rows;
    xsection_t *xs;
} sink_t;

static void sink_row(void *ctx, uint64_t session, uint64_t k, double *row, bool traded)
{
    sink_t *s = ctx;
    if (s->rows)
        rows_add(s->rows, session, k, row, traded);
    if (s->xs)
        xsection_push(s->xs, k, row, traded);
}

/* A delivery: shard s's part i. */
typedef struct msg {
    uint8_t s;
    uint32_t i;
} msg_t;

static msg_t g_order[MAXN * MAXBARS * 3];
static rows_t g_joined, g_naive;

static uint64_t rng(uint64_t *x)
{
    return xorshift64_next(x);
}

/* Deliveries: every part of every shard, each shard's in its order; interleave 0: shard after
 * shard in rounds (one part each), else random; dups: that many random re-sends of a part already
 * sent, plus a restart of shard 1 re-sending its first `restart` parts halfway. */
static size_t make_order(unsigned nshards, int interleave, unsigned dups, unsigned restart,
                         uint64_t seed)
{
    size_t next[MAXN] = {0}, n = 0, total = 0;
    for (unsigned s = 0; s < nshards; s++)
        total += g_parts[nshards][s].n;
    uint64_t x = seed;
    bool restarted = false;
    (void)total;
    for (;;) {
        unsigned s;
        if (interleave) {
            s = (unsigned)(rng(&x) % nshards);
        } else {
            s = (unsigned)(n % nshards);
        }
        if (next[s] >= g_parts[nshards][s].n) {
            bool any = false;
            for (unsigned t = 0; t < nshards; t++)
                any |= next[t] < g_parts[nshards][t].n;
            if (!any)
                break;
            continue;
        }
        g_order[n++] = (msg_t){(uint8_t)s, (uint32_t)next[s]++};
        if (dups && next[s] > 1 && rng(&x) % 16 == 0) {
            g_order[n++] = (msg_t){(uint8_t)s, (uint32_t)(rng(&x) % next[s])};
            dups--;
        }
        if (restart && !restarted && s == 1 && next[1] == g_parts[nshards][1].n / 2) {
            restarted = true;
            for (uint32_t i = 0; i < restart && i < next[1]; i++)
                g_order[n++] = (msg_t){1, i};
        }
    }
    return n;
}

typedef struct join_stats {
    uint64_t taken, dup, late, full_retries;
} join_stats_t;

/* Deliver g_order[0..n) into a join of `window` bars. A FULL part is held and offered again
 * after each poll, and its shard's later parts wait behind it (a consumer that stops fetching
 * from that shard), while the other shards' parts go on in g_order's order. The clock advances
 * 1 ms per delivery; deadline 10 s: nothing expires unless parts are missing. */
static uint8_t g_done[MAXN * MAXBARS * 3];

static void count_rc(join_stats_t *st, int rc)
{
    st->taken += rc == XJOIN_TAKEN;
    st->dup += rc == XJOIN_DUPLICATE;
    st->late += rc == XJOIN_LATE;
}

static void deliver(xjoin_t *j, size_t n, sink_t *sk, join_stats_t *st, uint64_t *clock)
{
    char err[256];
    memset(st, 0, sizeof *st);
    memset(g_done, 0, n);
    msg_t held[MAXN];
    bool holding[MAXN] = {false};
    unsigned nshards = j->cfg.nshards;
    size_t first = 0, left = n;
    while (left) {
        for (unsigned s = 0; s < nshards; s++) {
            if (!holding[s])
                continue;
            const shard_out_t *o = &g_parts[nshards][s];
            int rc = xjoin_put(j, o->part[held[s].i], o->l.bytes, *clock, err, sizeof err);
            assert_true(rc >= 0);
            if (rc != XJOIN_FULL) {
                holding[s] = false;
                count_rc(st, rc);
            }
        }
        while (first < n && g_done[first])
            first++;
        size_t i = first;
        while (i < n && (g_done[i] || holding[g_order[i].s]))
            i++;
        if (i == n) { /* every shard with parts left is held: wait for the join */
            st->full_retries++;
            xjoin_poll(j, *clock += 1000000, 0, sink_row, sk);
            continue;
        }
        msg_t m = g_order[i];
        g_done[i] = 1;
        left--;
        const shard_out_t *o = &g_parts[nshards][m.s];
        int rc = xjoin_put(j, o->part[m.i], o->l.bytes, *clock += 1000000, err, sizeof err);
        if (rc < 0)
            fail_msg("part %u of shard %u refused: %s", m.i, m.s, err);
        if (rc == XJOIN_FULL) {
            held[m.s] = m;
            holding[m.s] = true;
        }
        count_rc(st, rc);
        xjoin_poll(j, *clock, 0, sink_row, sk);
    }
    for (bool any = true; any;) {
        any = false;
        for (unsigned s = 0; s < nshards; s++) {
            if (!holding[s])
                continue;
            const shard_out_t *o = &g_parts[nshards][s];
            int rc = xjoin_put(j, o->part[held[s].i], o->l.bytes, *clock, err, sizeof err);
            if (rc == XJOIN_FULL) {
                any = true;
            } else {
                holding[s] = false;
                count_rc(st, rc);
            }
        }
        xjoin_poll(j, *clock += 1000000, 0, sink_row, sk);
    }
}

static void join_case(unsigned nshards, int interleave, unsigned dups, unsigned restart,
                      uint32_t window, uint64_t seed)
{
    run_all();
    size_t n = make_order(nshards, interleave, dups, restart, seed);
    config_t cfg;
    test_config(&cfg, 1);
    symtab_t names;
    assert_int_equal(symtab_init(&names, cfg.max_symbols), 0);
    static xsection_t xs;
    assert_int_equal(xsection_init(&xs, &cfg, &names), 0);
    xjoin_t j;
    xjoin_cfg_t jc = {.nshards = nshards,
                      .m = M,
                      .window = window,
                      .deadline_ns = 10000000000ull,
                      .owner = g_owner[nshards],
                      .names = &names};
    assert_int_equal(xjoin_init(&j, &jc), 0);
    g_joined.n = 0;
    sink_t sk = {&g_joined, &xs};

    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    uint64_t clock = 1;
    join_stats_t st;
    deliver(&j, n, &sk, &st, &clock);
    xjoin_poll(&j, clock, 0, sink_row, &sk);
    int crc = xsection_compute(&xs);
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();

    if (crc != 0 || j.incomplete || j.inflight)
        fail_msg("compute %d; rows %llu, incomplete %llu, in flight %u, full %llu, dup %llu", crc,
                 (unsigned long long)j.rows, (unsigned long long)j.incomplete, j.inflight,
                 (unsigned long long)j.full, (unsigned long long)j.duplicates);
    assert_int_equal(allocs, 0);
    assert_int_equal(j.incomplete, 0);
    assert_int_equal(j.inflight, 0);
    assert_int_equal(st.dup, j.duplicates);
    assert_true(j.duplicates >= (uint64_t)(dups ? 1 : 0) + restart);
    assert_int_equal(st.late, 0);
    if (window < 8)
        assert_true(j.full > 0);
    assert_int_equal(j.rows, g_single.n);
    naive_join(nshards, &g_naive);
    rows_same(&g_joined, &g_naive, "xjoin against the naive join");
    rows_same(&g_joined, &g_single, "xjoin against the single process");
    assert_int_equal(xs.n, NSYM);
    assert_memory_equal(xs.compact, g_single_corr, sizeof g_single_corr);
    xjoin_fini(&j);
    xsection_fini(&xs);
    symtab_fini(&names);
}

static void test_xjoin_in_order_two_shards_equals_single_process(void **state)
{
    (void)state;
    join_case(2, 0, 0, 0, 64, 1);
}

static void test_xjoin_any_order_three_shards_with_duplicates(void **state)
{
    (void)state;
    join_case(3, 1, 40, 0, 64, 12345);
    join_case(2, 1, 10, 0, 256, 777);
}

static void test_xjoin_restarted_shard_resends_are_dropped(void **state)
{
    (void)state;
    join_case(3, 1, 0, 50, 64, 4242);
}

static void test_xjoin_small_window_backpressure(void **state)
{
    (void)state;
    /* random interleaving lets a shard run ahead by many bars: a 4-bar window fills */
    join_case(2, 1, 0, 0, 4, 99);
}

static void test_xjoin_missing_parts_past_deadline(void **state)
{
    (void)state;
    run_all();
    const unsigned N = 2;
    config_t cfg;
    test_config(&cfg, 1);
    symtab_t names;
    assert_int_equal(symtab_init(&names, cfg.max_symbols), 0);
    xjoin_t j;
    xjoin_cfg_t jc = {.nshards = N,
                      .m = M,
                      .window = 32,
                      .deadline_ns = 5000000000ull,
                      .owner = g_owner[N],
                      .names = &names};
    assert_int_equal(xjoin_init(&j, &jc), 0);
    g_joined.n = 0;
    sink_t sk = {&g_joined, NULL};
    /* shard 1 loses its parts 100..109 (a slow shard whose parts come after the deadline) */
    const shard_out_t *o0 = &g_parts[N][0], *o1 = &g_parts[N][1];
    assert_int_equal(o0->n, o1->n);
    char err[256];
    uint64_t clock = 1;
    for (size_t i = 0; i < o0->n; i++) {
        assert_int_equal(xjoin_put(&j, o0->part[i], o0->l.bytes, clock, err, sizeof err),
                         XJOIN_TAKEN);
        if (i < 100 || i >= 110)
            assert_int_equal(xjoin_put(&j, o1->part[i], o1->l.bytes, clock, err, sizeof err),
                             XJOIN_TAKEN);
        clock += 1000000000ull; /* one part per second: bar 100 falls due at part 105 */
        xjoin_poll(&j, clock, 0, sink_row, &sk);
        if (i == 120) /* the lost parts arrive now: late, not joined */
            for (size_t l = 100; l < 110; l++)
                assert_int_equal(xjoin_put(&j, o1->part[l], o1->l.bytes, clock, err, sizeof err),
                                 XJOIN_LATE);
    }
    xjoin_poll(&j, UINT64_MAX, 0, sink_row, &sk);
    assert_int_equal(j.incomplete, 10);
    assert_int_equal(j.missing[1], 10);
    assert_int_equal(j.missing[0], 0);
    assert_int_equal(j.rows, o0->n - 10);
    /* the rows that came out are the oracle's without bars 100..109, in order */
    static rows_t want;
    want.n = 0;
    for (size_t i = 0; i < g_single.n; i++)
        if (i < 100 || i >= 110)
            rows_add(&want, g_single.session[i], g_single.k[i], g_single.v[i], g_single.traded[i]);
    rows_same(&g_joined, &want, "rows around the dropped bars");
    assert_int_equal(j.late, 10);
    /* and a re-sent part of a joined bar is a duplicate */
    assert_int_equal(xjoin_put(&j, o1->part[5], o1->l.bytes, clock, err, sizeof err),
                     XJOIN_DUPLICATE);
    assert_int_equal(xjoin_next_deadline(&j), UINT64_MAX);
    xjoin_fini(&j);
    symtab_fini(&names);
}

static void expect_bad(const uint8_t *buf, size_t len, const char *want)
{
    xrow_part_t p;
    char err[256] = "";
    assert_int_equal(xrow_decode(buf, len, &p, err, sizeof err), -EBADMSG);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

static void test_xrow_bad_parts_named(void **state)
{
    (void)state;
    uint8_t owner[65536];
    for (uint32_t i = 0; i < 65536; i++)
        owner[i] = (uint8_t)(i % 2);
    xrow_layout_t l;
    assert_int_equal(xrow_layout_init(&l, 1, 2, 8, owner), 0);
    assert_int_equal(l.ncols, 4); /* columns 0, 2, 4, 6: locates 1, 3, 5, 7 */
    assert_int_equal(l.bytes, XROW_HEADER + 64);
    double row[8] = {0.5, -1, NAN, 2, -0.0, 3, 1e-300, 4};
    uint8_t buf[256], b2[256];
    assert_int_equal(xrow_encode(&l, 3, 77, 9, 123, row, true, NULL, buf), l.bytes);
    xrow_part_t p;
    char err[256];
    assert_int_equal(xrow_decode(buf, l.bytes, &p, err, sizeof err), 0);
    assert_int_equal(p.shard, 1);
    assert_int_equal(p.session, 3);
    assert_int_equal(p.k, 77);
    assert_int_equal(p.seq, 9);
    assert_int_equal(p.closed_ns, 123);
    assert_int_equal(p.flags, XROW_TRADED);
    double got[4] = {xrow_value(&p, 0), xrow_value(&p, 1), xrow_value(&p, 2), xrow_value(&p, 3)};
    assert_memory_equal(&got[0], &row[0], 8);
    assert_memory_equal(&got[1], &row[2], 8); /* NaN bits kept */
    assert_memory_equal(&got[2], &row[4], 8); /* -0.0 kept */
    assert_memory_equal(&got[3], &row[6], 8);

    expect_bad(buf, 10, "10 bytes, expected at least the 72-byte header");
    expect_bad(buf, l.bytes - 1, "expected 136");
    memcpy(b2, buf, l.bytes);
    b2[l.bytes] = 0;
    expect_bad(b2, l.bytes + 1, "extra bytes");
    memcpy(b2, buf, l.bytes);
    b2[0] = 'X';
    expect_bad(b2, l.bytes, "byte 0: expected the magic");
    memcpy(b2, buf, l.bytes);
    b2[5] = 9;
    expect_bad(b2, l.bytes, "byte 4: expected version 1, got 9");
    memcpy(b2, buf, l.bytes);
    b2[9] = 5;
    expect_bad(b2, l.bytes, "byte 8: expected a shard 0..1, got 5");
    memcpy(b2, buf, l.bytes);
    b2[23] = 6;
    expect_bad(b2, l.bytes, "byte 20: unknown flag bits");
    memcpy(b2, buf, l.bytes);
    b2[XROW_HEADER + 3] ^= 1; /* one bit of a value */
    expect_bad(b2, l.bytes, "byte 68: CRC32C");

    /* another configuration: shard function locate % 3 against this node's % 2 */
    uint8_t other[65536];
    for (uint32_t i = 0; i < 65536; i++)
        other[i] = (uint8_t)(i / 3 % 2);
    xrow_layout_t l3;
    assert_int_equal(xrow_layout_init(&l3, 1, 2, 8, other), 0);
    assert_int_equal(xrow_encode(&l3, 0, 1, 0, 0, row, false, NULL, b2), l3.bytes);
    xjoin_t j;
    xjoin_cfg_t jc = {.nshards = 2, .m = 8, .window = 4, .deadline_ns = 1, .owner = owner};
    assert_int_equal(xjoin_init(&j, &jc), 0);
    assert_int_equal(xjoin_put(&j, b2, l3.bytes, 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "expects"));
    assert_int_equal(j.foreign, 1);
    assert_int_equal(xjoin_put(&j, buf, 10, 1, err, sizeof err), -EBADMSG);
    assert_int_equal(j.bad, 1);
    assert_int_equal(xjoin_put(&j, buf, l.bytes, 1, err, sizeof err), XJOIN_TAKEN);
    assert_int_equal(xjoin_put(&j, buf, l.bytes, 1, err, sizeof err), XJOIN_DUPLICATE);
    xjoin_fini(&j);
    xrow_layout_fini(&l3);
    xrow_layout_fini(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xrow_bad_parts_named),
        cmocka_unit_test(test_xjoin_in_order_two_shards_equals_single_process),
        cmocka_unit_test(test_xjoin_any_order_three_shards_with_duplicates),
        cmocka_unit_test(test_xjoin_restarted_shard_resends_are_dropped),
        cmocka_unit_test(test_xjoin_small_window_backpressure),
        cmocka_unit_test(test_xjoin_missing_parts_past_deadline),
    };
    return cmocka_run_group_tests(tests, setup_runs, teardown_all);
}
