/*
 * test_book_gen: the order book on a whole generated ITCH day, against a naive book. The
 * generator (ingest/gen) writes 10^6 messages over 100 symbols to a temporary file (2 * 10^5
 * under valgrind or with TICKCORE_TEST_SMALL set); ingest/stream reads it back, and every event
 * goes to the real book and to a naive reference book written here (per side a sorted array of
 * levels, best first; the live orders in a plain array indexed by reference, which the generator
 * hands out from 1 upwards). Every result and fill must be equal, and at >= 128 checkpoints every
 * level of every symbol (both sides), the best prices, the per-symbol counts and book_checksum
 * (recomputed from the naive book with the formula in book.h) must be equal. The generator
 * promises that E/C/X/D/U only name live orders and never take more shares than are left: zero
 * unknown references, anomalies, duplicates and invalid events. The apply loop (reading included)
 * allocates nothing (malloc_count and mem/'s churn counter). A second book fed the same events
 * through book_apply_batch must end identical to the first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/book.h"
#include "event/symtab.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

enum { NSYM = 100, NCHECK = 128, NMAXLV = 4096 };

static char g_dir[64];

static int setup_all(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tickcore-test-book-gen-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/day.itch", g_dir);
    unlink(path);
    return rmdir(g_dir);
}

static bool small_run(void)
{
    const char *e = getenv("TICKCORE_TEST_SMALL");
    return RUNNING_ON_VALGRIND || (e && *e && strcmp(e, "0") != 0);
}

/* ---- the naive reference book ------------------------------------------------------------- */

typedef struct nlevel {
    int64_t price;
    uint64_t shares;
    uint32_t count;
} nlevel_t;

typedef struct nside {
    nlevel_t lv[NMAXLV]; /* best first */
    uint32_t n;
} nside_t;

typedef struct norder {
    int64_t price;
    uint32_t shares;
    uint16_t locate;
    uint8_t side; /* 0: not live */
} norder_t;

typedef struct naive {
    nside_t *side; /* [(NSYM + 1) * 2] */
    norder_t *ord; /* [max_ref + 1], by reference */
    uint64_t max_ref, nord, nlevels;
} naive_t;

static void naive_init(naive_t *m, uint64_t max_ref)
{
    memset(m, 0, sizeof *m);
    m->side = mem_calloc(MEM_TAG_TEST, (NSYM + 1) * 2, sizeof(nside_t));
    m->ord = mem_calloc(MEM_TAG_TEST, max_ref + 1, sizeof(norder_t));
    assert_non_null(m->side);
    assert_non_null(m->ord);
    m->max_ref = max_ref;
}

static void naive_fini(naive_t *m)
{
    mem_free(MEM_TAG_TEST, m->side, (NSYM + 1) * 2 * sizeof(nside_t));
    mem_free(MEM_TAG_TEST, m->ord, (m->max_ref + 1) * sizeof(norder_t));
}

static nside_t *naive_side(naive_t *m, uint16_t locate, uint8_t side)
{
    assert_true(locate >= 1 && locate <= NSYM);
    return &m->side[(size_t)locate * 2 + (side == 'S')];
}

static int naive_level(const nside_t *s, int64_t price)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->lv[i].price == price)
            return (int)i;
    return -1;
}

static void naive_level_add(naive_t *m, nside_t *s, uint8_t side, int64_t price, uint64_t shares)
{
    int i = naive_level(s, price);
    if (i < 0) {
        uint32_t k = 0;
        while (k < s->n && (side == 'B' ? s->lv[k].price > price : s->lv[k].price < price))
            k++;
        assert_true(s->n < NMAXLV);
        memmove(&s->lv[k + 1], &s->lv[k], (s->n - k) * sizeof(nlevel_t));
        s->lv[k] = (nlevel_t){.price = price};
        s->n++;
        m->nlevels++;
        i = (int)k;
    }
    s->lv[i].shares += shares;
    s->lv[i].count++;
}

static void naive_level_sub(naive_t *m, nside_t *s, int64_t price, uint64_t shares, bool gone)
{
    int i = naive_level(s, price);
    assert_true(i >= 0);
    assert_true(s->lv[i].shares >= shares);
    s->lv[i].shares -= shares;
    if (gone && --s->lv[i].count == 0) {
        assert_int_equal(s->lv[i].shares, 0);
        memmove(&s->lv[i], &s->lv[i + 1], (s->n - (uint32_t)i - 1) * sizeof(nlevel_t));
        s->n--;
        m->nlevels--;
    }
}

static norder_t *naive_order(naive_t *m, uint64_t ref)
{
    if (ref == 0 || ref > m->max_ref)
        return NULL;
    return m->ord[ref].side ? &m->ord[ref] : NULL;
}

/* The generator's stream is clean, so the model knows only the clean outcomes; anything else
 * fails the test right here. */
static book_result_t naive_add(naive_t *m, uint64_t ref, uint16_t locate, uint8_t side,
                               int64_t price, uint64_t shares)
{
    assert_true(ref >= 1 && ref <= m->max_ref);
    assert_null(naive_order(m, ref));
    assert_true(side == 'B' || side == 'S');
    assert_true(shares >= 1 && shares <= UINT32_MAX && price >= 0);
    naive_level_add(m, naive_side(m, locate, side), side, price, shares);
    m->ord[ref] =
        (norder_t){.price = price, .shares = (uint32_t)shares, .locate = locate, .side = side};
    m->nord++;
    return BOOK_OK;
}

static book_result_t naive_apply(naive_t *m, const ev_t *e, book_fill_t *f)
{
    memset(f, 0, sizeof *f);
    switch (e->type) {
    case 'A':
    case 'F':
        return naive_add(m, e->ref, e->locate, e->side, e->price, e->shares);
    case 'E':
    case 'C':
    case 'X':
    case 'D':
    case 'U': {
        norder_t *p = naive_order(m, e->ref);
        if (p == NULL)
            fail_msg("%c of reference %llu, which is not live", e->type,
                     (unsigned long long)e->ref);
        norder_t o = *p;
        f->ref = e->ref;
        f->price = o.price;
        f->locate = o.locate;
        f->side = o.side;
        f->exec_price = e->type == 'E' ? o.price : e->type == 'C' ? e->price : 0;
        nside_t *s = naive_side(m, o.locate, o.side);
        if (e->type == 'D' || e->type == 'U' || e->shares >= o.shares) {
            assert_true(e->type == 'D' || e->type == 'U' || e->shares == o.shares);
            f->shares = o.shares;
            naive_level_sub(m, s, o.price, o.shares, true);
            p->side = 0;
            m->nord--;
        } else {
            f->shares = e->shares;
            f->remaining = o.shares - e->shares;
            p->shares -= (uint32_t)e->shares;
            naive_level_sub(m, s, o.price, e->shares, false);
        }
        if (e->type == 'U')
            return naive_add(m, e->new_ref, o.locate, o.side, e->price, e->shares);
        return BOOK_OK;
    }
    default:
        return BOOK_IGNORED;
    }
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* book_checksum's formula (book.h), from the naive book. */
static uint64_t naive_checksum(naive_t *m, uint16_t locate)
{
    uint64_t h = 0x6a09e667f3bcc908ull ^ locate;
    for (int s = 0; s < 2; s++) {
        uint8_t side = s ? 'S' : 'B';
        const nside_t *ns = naive_side(m, locate, side);
        for (uint32_t i = 0; i < ns->n; i++) {
            h = mix(h ^ (uint64_t)ns->lv[i].price);
            h = mix(h ^ ns->lv[i].shares);
            h = mix(h ^ ((uint64_t)ns->lv[i].count << 8 | side));
        }
        h = mix(h ^ ns->n);
    }
    return h;
}

static book_level_t g_depth[NMAXLV + 1];

/* Every level of every symbol, best prices, counts and checksums equal; returns the most levels
 * seen on one side. */
static uint32_t compare(const book_t *b, naive_t *m)
{
    uint64_t total = 0, levels = 0;
    uint32_t deepest = 0;
    for (uint16_t loc = 1; loc <= NSYM; loc++) {
        book_symbol_t sy;
        assert_int_equal(book_symbol(b, loc, &sy), 0);
        int64_t px[2];
        uint64_t sz[2];
        int mask = book_best(b, loc, &px[0], &sz[0], &px[1], &sz[1]);
        for (int s = 0; s < 2; s++) {
            uint8_t side = s ? 'S' : 'B';
            const nside_t *ns = naive_side(m, loc, side);
            int n = book_depth(b, loc, side, NMAXLV + 1, g_depth);
            assert_int_equal(n, ns->n);
            assert_int_equal(sy.levels[s], ns->n);
            uint32_t cnt = 0;
            for (uint32_t i = 0; i < ns->n; i++) {
                if (g_depth[i].price != ns->lv[i].price || g_depth[i].shares != ns->lv[i].shares ||
                    g_depth[i].orders != ns->lv[i].count)
                    fail_msg("locate %u side %c level %u: book %lld x %llu (%u orders), naive "
                             "%lld x %llu (%u)",
                             loc, side, i, (long long)g_depth[i].price,
                             (unsigned long long)g_depth[i].shares, g_depth[i].orders,
                             (long long)ns->lv[i].price, (unsigned long long)ns->lv[i].shares,
                             ns->lv[i].count);
                cnt += ns->lv[i].count;
            }
            assert_int_equal(sy.orders[s], cnt);
            total += cnt;
            levels += ns->n;
            if (ns->n > deepest)
                deepest = ns->n;
            assert_int_equal(!!(mask & (1 << s)), ns->n > 0);
            assert_int_equal(px[s], ns->n ? ns->lv[0].price : 0);
            assert_int_equal(sz[s], ns->n ? ns->lv[0].shares : 0);
        }
        if (px[0] && px[1] && mask == 3)
            assert_true(px[0] < px[1]); /* the generator never crosses the book */
        assert_int_equal(book_checksum(b, loc), naive_checksum(m, loc));
    }
    assert_int_equal(total, m->nord);
    assert_int_equal(levels, m->nlevels);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.orders, m->nord);
    assert_int_equal(st.levels, m->nlevels);
    return deepest;
}

static void assert_fill_equal(const book_fill_t *a, const book_fill_t *b)
{
    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->price, b->price);
    assert_int_equal(a->exec_price, b->exec_price);
    assert_int_equal(a->shares, b->shares);
    assert_int_equal(a->remaining, b->remaining);
    assert_int_equal(a->locate, b->locate);
    assert_int_equal(a->side, b->side);
}

static book_t *new_book(void)
{
    book_t *b = mem_alloc(MEM_TAG_TEST, sizeof *b);
    assert_non_null(b);
    book_config_t cfg = {.max_orders = 1u << 17, .max_levels = 1u << 15, .max_locate = NSYM};
    assert_int_equal(book_init(b, &cfg), 0);
    return b;
}

static void free_book(book_t *b)
{
    book_fini(b);
    mem_free(MEM_TAG_TEST, b, sizeof *b);
}

enum { BATCH_FILLS = 4096 };
static book_fill_t g_fills[BATCH_FILLS];

static void test_book_gen_day_against_naive(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    char path[128];
    snprintf(path, sizeof path, "%s/day.itch", g_dir);
    gen_cfg_t gc;
    gen_cfg_default(&gc);
    gc.out = path;
    gc.messages = small_run() ? 200000 : 1000000;
    gc.symbols = NSYM;
    gc.sectors = 5;
    gc.seed = 20240601;
    gc.truth = false;
    gen_stats_t gs;
    int rc = gen_run(&gc, &gs);
    if (rc != 0)
        fail_msg("gen_run: %d %s", rc, gs.error);
    assert_int_equal(gs.messages, gc.messages);

    symtab_t sy;
    stream_t s;
    stream_cfg_t sc;
    stream_cfg_default(&sc);
    assert_int_equal(symtab_init(&sy, 1000), 0);
    assert_int_equal(stream_init(&s, &sc, &sy), 0);
    assert_int_equal(stream_open(&s, path), 0);
    book_t *b = new_book(), *bb = new_book();
    naive_t *m = mem_alloc(MEM_TAG_TEST, sizeof *m);
    assert_non_null(m);
    naive_init(m, gs.last_ref);
    assert_true(sc.batch_events <= BATCH_FILLS);

    uint64_t every = gc.messages / NCHECK, i = 0, checks = 0, fills = 0;
    uint32_t deepest = 0;
    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    ev_t *ev;
    size_t n;
    while ((rc = stream_next(&s, &ev, &n)) > 0) {
        for (size_t k = 0; k < n; k++) {
            const ev_t *e = &ev[k];
            book_fill_t fb, fm;
            book_result_t rb = book_apply(b, e, &fb);
            book_result_t rm = naive_apply(m, e, &fm);
            if (rb != rm)
                fail_msg("message %llu (%c ref %llu): book %s, naive %s", (unsigned long long)i + 1,
                         e->type, (unsigned long long)e->ref, book_result_name(rb),
                         book_result_name(rm));
            assert_fill_equal(&fb, &fm);
            fills += fb.side != 0;
            if (++i % every == 0) {
                uint32_t d = compare(b, m);
                deepest = d > deepest ? d : deepest;
                checks++;
            }
        }
        book_apply_batch(bb, ev, n, g_fills);
        for (size_t k = 0; k < n; k++)
            if (g_fills[k].side != 0)
                fills--;
    }
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_snapshot_t snap;
    mem_snapshot(&snap);
    mem_unseal();
    assert_int_equal(rc, 0);
    assert_int_equal(allocs, 0);
    assert_int_equal(snap.total.churn_allocs, 0);
    assert_int_equal(fills, 0); /* the batch saw the same fills */
    assert_int_equal(i, gs.messages);
    assert_true(checks >= 100);
    deepest = compare(b, m) > deepest ? compare(b, m) : deepest;

    book_stats_t st, st2;
    book_stats(b, &st);
    book_stats(bb, &st2);
    print_message("%llu messages (%llu A, %llu D, %llu U, %llu E): %llu live orders at the end "
                  "(peak %llu), %llu levels (peak %llu), deepest side %u levels, %llu checks\n",
                  (unsigned long long)i, (unsigned long long)gs.by_type['A'],
                  (unsigned long long)gs.by_type['D'], (unsigned long long)gs.by_type['U'],
                  (unsigned long long)gs.by_type['E'], (unsigned long long)st.orders,
                  (unsigned long long)st.orders_peak, (unsigned long long)st.levels,
                  (unsigned long long)st.levels_peak, deepest, (unsigned long long)checks);
    /* the generator's guarantees */
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(st.anomalies, 0);
    assert_int_equal(st.dup_refs, 0);
    assert_int_equal(st.invalid, 0);
    assert_int_equal(st.orders_exhausted + st.levels_exhausted, 0);
    assert_int_equal(st.orders, gs.live_at_end);
    assert_int_equal(st.events, gs.messages);
    /* the stream was a real workout */
    assert_true(gs.by_type['U'] > 1000 && gs.by_type['E'] > 1000 && gs.by_type['X'] > 1000);
    assert_true(st.orders_peak > 2000 && st.levels_peak > 500);
    /* the batched book is the same book */
    assert_int_equal(st2.events, st.events);
    assert_int_equal(st2.applied, st.applied);
    assert_int_equal(st2.ignored, st.ignored);
    assert_int_equal(st2.orders, st.orders);
    assert_int_equal(st2.levels, st.levels);
    for (uint16_t loc = 1; loc <= NSYM; loc++)
        assert_int_equal(book_checksum(bb, loc), book_checksum(b, loc));

    stream_close(&s);
    stream_fini(&s);
    symtab_fini(&sy);
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    free_book(b);
    free_book(bb);
    mem_snapshot(&snap);
    assert_int_equal(snap.tag[MEM_TAG_BOOK].live, 0);
    assert_int_equal(snap.tag[MEM_TAG_TEST].live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_book_gen_day_against_naive),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
