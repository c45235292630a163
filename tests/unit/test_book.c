/*
 * test_book: the order book against independent oracles. (1) Hand-computed books: adds,
 * executions, cancels, deletes, replaces, best and depth, fills, anomalies, unknown and
 * duplicate references, bad fields. (2) Real NASDAQ order flow (AAPL, 30 Jan 2020, read with a
 * small naive ITCH reader of this file, not ingest/): after 1,001 messages the AAPL book holds
 * 80 live orders on 64 levels (runk/itch's published test), and the whole file replays with no
 * unknown reference or anomaly, level for level equal to the naive book. (3) A naive reference
 * book (per side a sorted array of levels, the live orders in a plain array searched linearly)
 * fed the same random but referentially valid stream of 10^6 events over 50 symbols, with a few
 * bad events mixed in: every result and fill equal, and at >= 100 checkpoints every level of
 * every symbol, the best prices, the counts, the counters and the checksum equal. (4) The same
 * with tiny capacities: drops are counted with the same policy and the book stays equal to the
 * model. (5) Adversarial references (multiples of 2^32 and 2^40). (6) No allocation while
 * applying 10^5 events (malloc_count and mem/'s churn counter). Under valgrind or with
 * TICKCORE_TEST_SMALL set, the random streams are shorter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/book.h"
#include "tests/support/malloc_count.h"
#include "tests/support/testdata.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static int check_no_leak(void **state)
{
    (void)state;
    mem_unseal();
    mem_snapshot_t s;
    mem_snapshot(&s);
    if (s.tag[MEM_TAG_BOOK].live != 0 || s.tag[MEM_TAG_TEST].live != 0) {
        print_error("leak: book %lld bytes, test %lld bytes\n", (long long)s.tag[MEM_TAG_BOOK].live,
                    (long long)s.tag[MEM_TAG_TEST].live);
        return -1;
    }
    return 0;
}

static bool small_run(void)
{
    const char *e = getenv("TICKCORE_TEST_SMALL");
    return RUNNING_ON_VALGRIND || (e && *e && strcmp(e, "0") != 0);
}

/* ---- events ------------------------------------------------------------------------------- */

static ev_t ev_add(uint64_t ref, uint16_t locate, uint8_t side, int64_t price, uint64_t shares)
{
    return (ev_t){
        .type = 'A', .ref = ref, .locate = locate, .side = side, .price = price, .shares = shares};
}

static ev_t ev_ref(uint8_t type, uint64_t ref, uint64_t shares, int64_t price)
{
    return (ev_t){.type = type, .ref = ref, .shares = shares, .price = price};
}

static ev_t ev_replace(uint64_t ref, uint64_t new_ref, int64_t price, uint64_t shares)
{
    return (ev_t){.type = 'U', .ref = ref, .new_ref = new_ref, .price = price, .shares = shares};
}

static book_t *new_book(uint32_t max_orders, uint32_t max_levels, uint32_t max_locate)
{
    book_t *b = mem_alloc(MEM_TAG_TEST, sizeof *b);
    assert_non_null(b);
    book_config_t cfg = {
        .max_orders = max_orders, .max_levels = max_levels, .max_locate = max_locate};
    assert_int_equal(book_init(b, &cfg), 0);
    return b;
}

static void free_book(book_t *b)
{
    book_fini(b);
    mem_free(MEM_TAG_TEST, b, sizeof *b);
}

/* ---- checksum, as book.h defines it ------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- the naive reference book ------------------------------------------------------------- */

#define NMAXLV 2048 /* levels per side the model holds */

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
    uint64_t ref;
    int64_t price;
    uint64_t shares;
    uint16_t locate;
    uint8_t side;
} norder_t;

typedef struct naive {
    nside_t *side; /* [(max_locate + 1) * 2] */
    norder_t *ord; /* live orders, in no order */
    uint32_t nord, max_orders, max_levels, max_locate, nlevels;
    uint64_t unknown, dup, exh_orders, exh_levels, anomalies, invalid, ignored, applied;
} naive_t;

static void naive_init(naive_t *m, uint32_t max_orders, uint32_t max_levels, uint32_t max_locate)
{
    memset(m, 0, sizeof *m);
    m->side = mem_calloc(MEM_TAG_TEST, ((size_t)max_locate + 1) * 2, sizeof(nside_t));
    m->ord = mem_calloc(MEM_TAG_TEST, max_orders, sizeof(norder_t));
    assert_non_null(m->side);
    assert_non_null(m->ord);
    m->max_orders = max_orders;
    m->max_levels = max_levels;
    m->max_locate = max_locate;
}

static void naive_fini(naive_t *m)
{
    mem_free(MEM_TAG_TEST, m->side, ((size_t)m->max_locate + 1) * 2 * sizeof(nside_t));
    mem_free(MEM_TAG_TEST, m->ord, (size_t)m->max_orders * sizeof(norder_t));
}

static nside_t *naive_side(naive_t *m, uint16_t locate, uint8_t side)
{
    return &m->side[(size_t)locate * 2 + (side == 'S')];
}

static int naive_find(const naive_t *m, uint64_t ref)
{
    for (uint32_t i = 0; i < m->nord; i++)
        if (m->ord[i].ref == ref)
            return (int)i;
    return -1;
}

/* Index of the level at price, or -1. */
static int naive_level(const nside_t *s, int64_t price)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->lv[i].price == price)
            return (int)i;
    return -1;
}

/* Add shares at price on a side (a new level in sorted place if needed). */
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
    if (gone) {
        s->lv[i].count--;
        if (s->lv[i].count == 0) {
            assert_int_equal(s->lv[i].shares, 0);
            memmove(&s->lv[i], &s->lv[i + 1], (s->n - (uint32_t)i - 1) * sizeof(nlevel_t));
            s->n--;
            m->nlevels--;
        }
    }
}

static void naive_remove(naive_t *m, int i)
{
    norder_t *o = &m->ord[i];
    naive_level_sub(m, naive_side(m, o->locate, o->side), o->price, o->shares, true);
    m->ord[i] = m->ord[--m->nord];
}

static bool naive_fields_ok(const naive_t *m, uint16_t locate, uint64_t shares, int64_t price)
{
    return locate >= 1 && locate <= m->max_locate && shares >= 1 && shares <= UINT32_MAX &&
           price >= 0 && price <= BOOK_PRICE_MAX;
}

/* Add a new order with the book's policy: capacity checks after the field and duplicate ones. */
static book_result_t naive_add(naive_t *m, uint64_t ref, uint16_t locate, uint8_t side,
                               int64_t price, uint64_t shares)
{
    if (naive_find(m, ref) >= 0) {
        m->dup++;
        return BOOK_DUP_REF;
    }
    if (m->nord == m->max_orders) {
        m->exh_orders++;
        return BOOK_NO_ORDER;
    }
    nside_t *s = naive_side(m, locate, side);
    if (naive_level(s, price) < 0 && m->nlevels == m->max_levels) {
        m->exh_levels++;
        return BOOK_NO_LEVEL;
    }
    naive_level_add(m, s, side, price, shares);
    m->ord[m->nord++] =
        (norder_t){.ref = ref, .price = price, .shares = shares, .locate = locate, .side = side};
    m->applied++;
    return BOOK_OK;
}

static book_result_t naive_apply(naive_t *m, const ev_t *e, book_fill_t *f)
{
    memset(f, 0, sizeof *f);
    switch (e->type) {
    case 'A':
    case 'F':
        if (!naive_fields_ok(m, e->locate, e->shares, e->price) ||
            (e->side != 'B' && e->side != 'S')) {
            m->invalid++;
            return BOOK_INVALID;
        }
        return naive_add(m, e->ref, e->locate, e->side, e->price, e->shares);
    case 'E':
    case 'C':
    case 'X':
    case 'D':
    case 'U': {
        int i = naive_find(m, e->ref);
        if (i < 0) {
            m->unknown++;
            return BOOK_UNKNOWN_REF;
        }
        norder_t o = m->ord[i];
        f->ref = o.ref;
        f->price = o.price;
        f->locate = o.locate;
        f->side = o.side;
        if (e->type == 'E')
            f->exec_price = o.price;
        if (e->type == 'C')
            f->exec_price = e->price;
        if (e->type == 'D' || e->type == 'U' || e->shares >= o.shares) {
            f->shares = o.shares;
            f->remaining = 0;
            naive_remove(m, i);
        } else {
            f->shares = e->shares;
            f->remaining = o.shares - e->shares;
            m->ord[i].shares -= e->shares;
            naive_level_sub(m, naive_side(m, o.locate, o.side), o.price, e->shares, false);
        }
        if (e->type == 'U') {
            if (!naive_fields_ok(m, o.locate, e->shares, e->price)) {
                m->invalid++;
                return BOOK_INVALID;
            }
            return naive_add(m, e->new_ref, o.locate, o.side, e->price, e->shares);
        }
        m->applied++;
        if (e->type != 'D' && e->shares > o.shares) {
            m->anomalies++;
            return BOOK_ANOMALY;
        }
        return BOOK_OK;
    }
    default:
        m->ignored++;
        return BOOK_IGNORED;
    }
}

static uint64_t naive_checksum(naive_t *m, uint16_t locate)
{
    uint64_t h = 0x6a09e667f3bcc908ull ^ locate;
    for (int s = 0; s < 2; s++) {
        uint8_t side = s ? 'S' : 'B';
        nside_t *ns = naive_side(m, locate, side);
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

/* The book equals the model: every level of every symbol, best prices, counts, counters,
 * checksum, and a sample of orders. */
static void compare(const book_t *b, naive_t *m, uint64_t *rng)
{
    uint32_t total_orders = 0;
    for (uint32_t loc = 0; loc <= m->max_locate; loc++) {
        book_symbol_t sy;
        assert_int_equal(book_symbol(b, (uint16_t)loc, &sy), 0);
        int64_t px[2];
        uint64_t sz[2];
        int mask = book_best(b, (uint16_t)loc, &px[0], &sz[0], &px[1], &sz[1]);
        for (int s = 0; s < 2; s++) {
            uint8_t side = s ? 'S' : 'B';
            nside_t *ns = naive_side(m, (uint16_t)loc, side);
            int n = book_depth(b, (uint16_t)loc, side, NMAXLV + 1, g_depth);
            assert_int_equal(n, ns->n);
            assert_int_equal(sy.levels[s], ns->n);
            uint32_t cnt = 0;
            for (uint32_t i = 0; i < ns->n; i++) {
                assert_int_equal(g_depth[i].price, ns->lv[i].price);
                assert_int_equal(g_depth[i].shares, ns->lv[i].shares);
                assert_int_equal(g_depth[i].orders, ns->lv[i].count);
                cnt += ns->lv[i].count;
            }
            assert_int_equal(sy.orders[s], cnt);
            total_orders += cnt;
            assert_int_equal(!!(mask & (1 << s)), ns->n > 0);
            assert_int_equal(px[s], ns->n ? ns->lv[0].price : 0);
            assert_int_equal(sz[s], ns->n ? ns->lv[0].shares : 0);
        }
        assert_int_equal(book_checksum(b, (uint16_t)loc), naive_checksum(m, (uint16_t)loc));
    }
    assert_int_equal(total_orders, m->nord);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.orders, m->nord);
    assert_int_equal(st.levels, m->nlevels);
    assert_int_equal(st.unknown_refs, m->unknown);
    assert_int_equal(st.dup_refs, m->dup);
    assert_int_equal(st.orders_exhausted, m->exh_orders);
    assert_int_equal(st.levels_exhausted, m->exh_levels);
    assert_int_equal(st.anomalies, m->anomalies);
    assert_int_equal(st.invalid, m->invalid);
    assert_int_equal(st.ignored, m->ignored);
    assert_int_equal(st.applied, m->applied);
    for (int k = 0; k < 64 && m->nord > 0; k++) {
        *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
        const norder_t *o = &m->ord[*rng % m->nord];
        book_order_t bo;
        assert_int_equal(book_order(b, o->ref, &bo), 0);
        assert_int_equal(bo.ref, o->ref);
        assert_int_equal(bo.price, o->price);
        assert_int_equal(bo.shares, o->shares);
        assert_int_equal(bo.locate, o->locate);
        assert_int_equal(bo.side, o->side);
    }
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

/* ---- hand-computed books ------------------------------------------------------------------ */

static void test_book_hand_computed(void **state)
{
    (void)state;
    book_t *b = new_book(16, 16, 10);
    book_fill_t f;
    /* AAA (locate 3): bids 100 x 10.00, 200 x 10.00, 50 x 9.99; asks 300 x 10.02, 10 x 10.05 */
    assert_int_equal(
        book_apply(
            b,
            &(ev_t){
                .type = 'A', .ref = 1, .locate = 3, .side = 'B', .price = 100000, .shares = 100},
            &f),
        BOOK_OK);
    assert_int_equal(f.side, 0); /* an add touches no existing order */
    ev_t e = ev_add(2, 3, 'B', 100000, 200);
    e.type = 'F';
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(3, 3, 'B', 99900, 50);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(4, 3, 'S', 100500, 10);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(5, 3, 'S', 100200, 300);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    int64_t bp, ap;
    uint64_t bs, as;
    assert_int_equal(book_best(b, 3, &bp, &bs, &ap, &as), 3);
    assert_int_equal(bp, 100000);
    assert_int_equal(bs, 300);
    assert_int_equal(ap, 100200);
    assert_int_equal(as, 300);
    book_level_t lv[4];
    assert_int_equal(book_depth(b, 3, 'B', 4, lv), 2);
    assert_int_equal(lv[0].price, 100000);
    assert_int_equal(lv[0].shares, 300);
    assert_int_equal(lv[0].orders, 2);
    assert_int_equal(lv[1].price, 99900);
    assert_int_equal(lv[1].shares, 50);
    assert_int_equal(lv[1].orders, 1);
    assert_int_equal(book_depth(b, 3, 'S', 1, lv), 1); /* n limits the answer */
    assert_int_equal(lv[0].price, 100200);
    assert_int_equal(book_depth(b, 3, 'S', 4, lv), 2);
    assert_int_equal(lv[1].price, 100500);
    assert_int_equal(lv[1].shares, 10);
    /* E 30 of order 2: the bid level drops to 270, fill says price 10.00, side B */
    e = ev_ref('E', 2, 30, 0);
    assert_int_equal(book_apply(b, &e, &f), BOOK_OK);
    assert_int_equal(f.ref, 2);
    assert_int_equal(f.price, 100000);
    assert_int_equal(f.exec_price, 100000);
    assert_int_equal(f.shares, 30);
    assert_int_equal(f.remaining, 170);
    assert_int_equal(f.locate, 3);
    assert_int_equal(f.side, 'B');
    /* C 300 of order 5 at 10.03: the whole order, the best ask becomes 10.05 */
    e = ev_ref('C', 5, 300, 100300);
    assert_int_equal(book_apply(b, &e, &f), BOOK_OK);
    assert_int_equal(f.exec_price, 100300);
    assert_int_equal(f.price, 100200);
    assert_int_equal(f.remaining, 0);
    assert_int_equal(f.side, 'S');
    assert_int_equal(book_best(b, 3, NULL, NULL, &ap, &as), 3);
    assert_int_equal(ap, 100500);
    assert_int_equal(as, 10);
    assert_int_equal(book_order(b, 5, &(book_order_t){0}), -ENOENT);
    /* X 20 of order 3 (50 left 30); then X 40 of order 3: more than it has -> anomaly, gone */
    e = ev_ref('X', 3, 20, 0);
    assert_int_equal(book_apply(b, &e, &f), BOOK_OK);
    assert_int_equal(f.remaining, 30);
    assert_int_equal(f.exec_price, 0);
    e = ev_ref('X', 3, 40, 0);
    assert_int_equal(book_apply(b, &e, &f), BOOK_ANOMALY);
    assert_int_equal(f.shares, 30); /* what it had */
    assert_int_equal(f.remaining, 0);
    assert_int_equal(book_depth(b, 3, 'B', 4, lv), 1);
    /* U order 1 (100 @ 10.00) -> ref 7, 60 @ 10.01: new best bid, level 10.00 keeps order 2 */
    e = ev_replace(1, 7, 100100, 60);
    e.locate = 3;
    assert_int_equal(book_apply(b, &e, &f), BOOK_OK);
    assert_int_equal(f.ref, 1);
    assert_int_equal(f.shares, 100);
    assert_int_equal(f.price, 100000);
    assert_int_equal(book_depth(b, 3, 'B', 4, lv), 2);
    assert_int_equal(lv[0].price, 100100);
    assert_int_equal(lv[0].shares, 60);
    assert_int_equal(lv[1].price, 100000);
    assert_int_equal(lv[1].shares, 170);
    assert_int_equal(lv[1].orders, 1);
    book_order_t o;
    assert_int_equal(book_order(b, 7, &o), 0);
    assert_int_equal(o.price, 100100);
    assert_int_equal(o.shares, 60);
    assert_int_equal(o.side, 'B');
    assert_int_equal(o.locate, 3);
    assert_int_equal(book_order(b, 1, &o), -ENOENT);
    /* U at the same price: the level stays, shares change */
    e = ev_replace(7, 8, 100100, 65);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    assert_int_equal(book_depth(b, 3, 'B', 4, lv), 2);
    assert_int_equal(lv[0].shares, 65);
    assert_int_equal(lv[0].orders, 1);
    /* D order 4: no asks left */
    e = ev_ref('D', 4, 0, 0);
    assert_int_equal(book_apply(b, &e, &f), BOOK_OK);
    assert_int_equal(f.shares, 10);
    assert_int_equal(book_best(b, 3, &bp, &bs, &ap, &as), 1);
    assert_int_equal(ap, 0);
    assert_int_equal(as, 0);
    assert_int_equal(bp, 100100);
    /* P, S, R, t, q do not touch the book */
    const uint8_t other[] = {'P', 'Q', 'S', 'R', 'H', 'B', 't', 'q', 0};
    for (size_t i = 0; i < sizeof other; i++) {
        e = ev_add(2, 3, 'B', 1, 1);
        e.type = other[i];
        assert_int_equal(book_apply(b, &e, &f), BOOK_IGNORED);
        assert_int_equal(f.side, 0);
    }
    /* unknown references: nothing changes */
    const uint8_t refd[] = {'E', 'C', 'X', 'D', 'U'};
    for (size_t i = 0; i < sizeof refd; i++) {
        e = ev_replace(999, 1000, 100000, 10);
        e.type = refd[i];
        assert_int_equal(book_apply(b, &e, &f), BOOK_UNKNOWN_REF);
        assert_int_equal(f.side, 0);
    }
    assert_int_equal(book_order(b, 1000, &o), -ENOENT);
    /* duplicate add, and U onto a live reference: the original still goes */
    e = ev_add(2, 3, 'S', 100000, 5);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_DUP_REF);
    e = ev_replace(8, 2, 100100, 10);
    assert_int_equal(book_apply(b, &e, &f), BOOK_DUP_REF);
    assert_int_equal(f.ref, 8);
    assert_int_equal(book_order(b, 8, &o), -ENOENT);
    assert_int_equal(book_order(b, 2, &o), 0);
    assert_int_equal(o.shares, 170);
    assert_int_equal(o.side, 'B'); /* the live order 2 is untouched */
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.orders, 1);
    assert_int_equal(st.levels, 1);
    assert_int_equal(st.orders_peak, 5);
    assert_int_equal(st.levels_peak, 4);
    assert_int_equal(st.anomalies, 1);
    assert_int_equal(st.unknown_refs, 5);
    assert_int_equal(st.dup_refs, 2);
    assert_int_equal(st.ignored, sizeof other);
    assert_int_equal(st.events, 12 + sizeof other + sizeof refd + 2);
    assert_int_equal(st.invalid, 0);
    free_book(b);
}

static void test_book_invalid_fields(void **state)
{
    (void)state;
    book_t *b = new_book(16, 16, 10);
    const ev_t bad[] = {
        ev_add(1, 0, 'B', 100, 10),                /* locate 0 */
        ev_add(1, 11, 'B', 100, 10),               /* above max_locate */
        ev_add(1, 3, 'X', 100, 10),                /* side */
        ev_add(1, 3, 0, 100, 10),                  /* side */
        ev_add(1, 3, 'B', 100, 0),                 /* no shares */
        ev_add(1, 3, 'B', 100, 1ull << 32),        /* shares above 32 bits */
        ev_add(1, 3, 'B', -1, 10),                 /* negative price */
        ev_add(1, 3, 'B', BOOK_PRICE_MAX + 1, 10), /* price too large */
        ev_add(1, 3, 'S', INT64_MIN, 10),          /* price */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(book_apply(b, &bad[i], NULL), BOOK_INVALID);
    ev_t e = ev_add(1, 10, 'S', BOOK_PRICE_MAX, UINT32_MAX); /* the extremes are fine */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(2, 10, 'S', 0, 1);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    book_level_t lv[3];
    assert_int_equal(book_depth(b, 10, 'S', 3, lv), 2);
    assert_int_equal(lv[0].price, 0);
    assert_int_equal(lv[1].price, BOOK_PRICE_MAX);
    assert_int_equal(lv[1].shares, UINT32_MAX);
    /* U with a bad new price: the original is removed, the new one dropped */
    e = ev_replace(1, 3, -5, 10);
    book_fill_t f;
    assert_int_equal(book_apply(b, &e, &f), BOOK_INVALID);
    assert_int_equal(f.ref, 1);
    assert_int_equal(book_order(b, 1, &(book_order_t){0}), -ENOENT);
    assert_int_equal(book_order(b, 3, &(book_order_t){0}), -ENOENT);
    e = ev_replace(2, 3, 5, 0); /* no shares */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_INVALID);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.invalid, sizeof bad / sizeof bad[0] + 2);
    assert_int_equal(st.orders, 0);
    assert_int_equal(st.levels, 0);
    /* queries refuse bad arguments */
    assert_int_equal(book_best(b, 11, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(book_depth(b, 11, 'B', 3, lv), -EINVAL);
    assert_int_equal(book_depth(b, 3, 'x', 3, lv), -EINVAL);
    assert_int_equal(book_symbol(b, 11, &(book_symbol_t){0}), -EINVAL);
    assert_int_equal(book_checksum(b, 11), 0);
    assert_int_equal(book_best(b, 0, NULL, NULL, NULL, NULL), 0); /* locate 0: empty */
    assert_string_equal(book_result_name(BOOK_NO_LEVEL), "no-level");
    assert_string_equal(book_result_name((book_result_t)99), "?");
    free_book(b);
}

static void test_book_init_refuses_bad_config(void **state)
{
    (void)state;
    book_t b;
    const book_config_t bad[] = {{0, 10, 10},
                                 {10, 0, 10},
                                 {10, 10, 0},
                                 {10, 10, BOOK_MAX_LOCATE + 1},
                                 {BOOK_MAX_CAPACITY + 1, 10, 10},
                                 {10, BOOK_MAX_CAPACITY + 1, 10}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(book_init(&b, &bad[i]), -EINVAL);
    book_fini(&b); /* a zeroed book */
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_BOOK].live, 0);
}

/* The default config holds a NASDAQ day; both pools show in the memory report. */
static void test_book_default_config(void **state)
{
    (void)state;
    book_config_t cfg;
    book_config_default(&cfg);
    assert_true(cfg.max_orders >= 2000000);
    assert_true(cfg.max_locate >= 8400);
    assert_true(cfg.max_levels >= 2422 * 100);
    if (RUNNING_ON_VALGRIND) /* 130 MB of prefaulted tables: too slow under memcheck */
        cfg.max_orders = 1u << 16, cfg.max_levels = 1u << 14;
    book_t *b = mem_alloc(MEM_TAG_TEST, sizeof *b);
    assert_non_null(b);
    assert_int_equal(book_init(b, &cfg), 0);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_true(s.tag[MEM_TAG_BOOK].live > (int64_t)cfg.max_orders * 16);
    int pools = 0;
    for (unsigned i = 0; i < s.nobjs; i++)
        if (s.objs[i].kind == MEM_OBJ_POOL && s.objs[i].tag == MEM_TAG_BOOK &&
            (strcmp(s.objs[i].name, "book.orders") == 0 ||
             strcmp(s.objs[i].name, "book.levels") == 0))
            pools++;
    assert_int_equal(pools, 2);
    ev_t e = ev_add(1, 8371, 'B', 100, 10);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(2, 65535, 'S', 100, 10);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.max_orders, cfg.max_orders);
    assert_int_equal(st.orders, 2);
    book_fini(b);
    book_fini(b); /* twice is fine */
    mem_free(MEM_TAG_TEST, b, sizeof *b);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_BOOK].live, 0);
}

/* Same levels, built in different orders (and through replaces), give the same checksum;
 * a different book gives a different one. book_reset empties everything. */
static void test_book_checksum_and_reset(void **state)
{
    (void)state;
    book_t *a = new_book(64, 64, 4), *c = new_book(64, 64, 4);
    uint64_t empty2 = book_checksum(a, 2);
    for (int i = 0; i < 10; i++) {
        ev_t e = ev_add((uint64_t)i + 1, 2, i % 2 ? 'S' : 'B', 1000 + (i % 2 ? 10 : -10) * i, 5);
        assert_int_equal(book_apply(a, &e, NULL), BOOK_OK);
    }
    for (int i = 9; i >= 0; i--) {
        ev_t e = ev_add((uint64_t)i + 100, 2, i % 2 ? 'S' : 'B', 1, 7);
        assert_int_equal(book_apply(c, &e, NULL), BOOK_OK);
        e = ev_replace((uint64_t)i + 100, (uint64_t)i + 200, 1000 + (i % 2 ? 10 : -10) * i, 5);
        assert_int_equal(book_apply(c, &e, NULL), BOOK_OK);
    }
    assert_int_equal(book_checksum(a, 2), book_checksum(c, 2));
    assert_int_equal(book_checksum(a, 1), book_checksum(c, 1)); /* both empty */
    assert_int_not_equal(book_checksum(a, 1), book_checksum(a, 2));
    ev_t e = ev_ref('X', 1, 1, 0);
    assert_int_equal(book_apply(a, &e, NULL), BOOK_OK);
    assert_int_not_equal(book_checksum(a, 2), book_checksum(c, 2));
    book_reset(a);
    assert_int_equal(book_checksum(a, 2), empty2);
    book_stats_t st;
    book_stats(a, &st);
    assert_int_equal(st.orders, 0);
    assert_int_equal(st.levels, 0);
    assert_int_equal(st.applied, 11); /* counters are kept */
    for (uint16_t loc = 0; loc <= 4; loc++)
        assert_int_equal(book_best(a, loc, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(book_order(a, 2, &(book_order_t){0}), -ENOENT);
    e = ev_add(2, 2, 'B', 990, 5); /* usable again */
    assert_int_equal(book_apply(a, &e, NULL), BOOK_OK);
    free_book(a);
    free_book(c);
}

/* ---- real order flow: AAPL on 30 January 2020 --------------------------------------------- */

typedef testdata_t file_buf_t;

static bool load(const char *name, file_buf_t *f)
{
    return testdata_load(name, f);
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A naive ITCH 5.0 reader: the message at *off (2-byte big-endian length, then the message)
 * into e; the offset moves past it. false at the end or on a truncated message. */
static bool itch_next(const file_buf_t *f, size_t *off, ev_t *e)
{
    if (*off + 2 > f->len)
        return false;
    size_t n = (size_t)be(f->p + *off, 2);
    if (n == 0 || *off + 2 + n > f->len)
        return false;
    const uint8_t *m = f->p + *off + 2;
    *off += 2 + n;
    memset(e, 0, sizeof *e);
    e->type = m[0];
    e->raw = m;
    e->raw_len = (uint8_t)n;
    if (n < 11)
        return true;
    e->locate = (uint16_t)be(m + 1, 2);
    e->tracking = (uint16_t)be(m + 3, 2);
    e->ts = be(m + 5, 6);
    switch (m[0]) {
    case 'A':
    case 'F':
        assert_true(n >= 36);
        e->ref = be(m + 11, 8);
        e->side = m[19];
        e->shares = be(m + 20, 4);
        e->price = (int64_t)be(m + 32, 4);
        break;
    case 'E':
        assert_int_equal(n, 31);
        e->ref = be(m + 11, 8);
        e->shares = be(m + 19, 4);
        e->match = be(m + 23, 8);
        break;
    case 'C':
        assert_int_equal(n, 36);
        e->ref = be(m + 11, 8);
        e->shares = be(m + 19, 4);
        e->match = be(m + 23, 8);
        e->aux = m[31];
        e->price = (int64_t)be(m + 32, 4);
        break;
    case 'X':
        assert_int_equal(n, 23);
        e->ref = be(m + 11, 8);
        e->shares = be(m + 19, 4);
        break;
    case 'D':
        assert_int_equal(n, 19);
        e->ref = be(m + 11, 8);
        break;
    case 'U':
        assert_int_equal(n, 35);
        e->ref = be(m + 11, 8);
        e->new_ref = be(m + 19, 8);
        e->shares = be(m + 27, 4);
        e->price = (int64_t)be(m + 31, 4);
        break;
    case 'P':
        assert_int_equal(n, 44);
        e->ref = be(m + 11, 8);
        e->side = m[19];
        e->shares = be(m + 20, 4);
        e->price = (int64_t)be(m + 32, 4);
        e->match = be(m + 36, 8);
        break;
    default:
        break;
    }
    return true;
}

static void test_book_nasdaq_aapl(void **state)
{
    (void)state;
    file_buf_t f = {0};
    if (!load("nasdaq-20200130-aapl-10k.itch", &f)) {
        print_message("data file nasdaq-20200130-aapl-10k.itch not found (set TICKCORE_DATA)\n");
        skip();
    }
    book_t *b = new_book(1u << 14, 1u << 12, 100);
    naive_t *m = mem_alloc(MEM_TAG_TEST, sizeof *m);
    assert_non_null(m);
    naive_init(m, 1u << 14, 1u << 12, 100);
    uint64_t types[256] = {0}, rng = 88172645463325252ull;
    uint16_t aapl = 0;
    size_t off = 0, n = 0;
    ev_t e;
    while (itch_next(&f, &off, &e)) {
        types[e.type]++;
        if (e.type == 'R' && memcmp(e.raw + 11, "AAPL    ", 8) == 0)
            aapl = e.locate;
        book_fill_t fb, fm;
        book_result_t r = book_apply(b, &e, &fb);
        assert_int_equal(r, naive_apply(m, &e, &fm));
        assert_fill_equal(&fb, &fm);
        n++;
        if (n == 1001) {
            assert_int_equal(aapl, 13); /* the R message names AAPL's locate */
            book_symbol_t sy;
            assert_int_equal(book_symbol(b, aapl, &sy), 0);
            assert_int_equal(sy.orders[0] + sy.orders[1], 80); /* runk/itch's test */
            assert_int_equal(sy.levels[0] + sy.levels[1], 64);
            compare(b, m, &rng);
        }
        if (n % 1000 == 0)
            compare(b, m, &rng);
    }
    assert_int_equal(off, f.len); /* the reader consumed the whole file */
    assert_int_equal(n, 10000);
    /* the reader agrees with the file's published message counts */
    assert_int_equal(types['A'], 4758);
    assert_int_equal(types['D'], 4083);
    assert_int_equal(types['E'], 849);
    assert_int_equal(types['P'], 240);
    assert_int_equal(types['U'], 7);
    assert_int_equal(types['X'], 6);
    assert_int_equal(types['F'], 2);
    compare(b, m, &rng);
    book_stats_t st;
    book_stats(b, &st);
    /* the file starts with the day, so every reference is known and nothing is odd */
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(st.anomalies, 0);
    assert_int_equal(st.dup_refs, 0);
    assert_int_equal(st.invalid, 0);
    assert_int_equal(st.orders_exhausted + st.levels_exhausted, 0);
    assert_int_equal(st.events, 10000);
    assert_int_equal(st.ignored, 10000 - 4758 - 4083 - 849 - 7 - 6 - 2);
    int64_t bp, ap;
    uint64_t bs, as;
    assert_int_equal(book_best(b, aapl, &bp, &bs, &ap, &as), 3);
    print_message("AAPL at 07:59:30: %llu live orders on %llu levels, best %lld x %llu / "
                  "%lld x %llu\n",
                  (unsigned long long)st.orders, (unsigned long long)st.levels, (long long)bp,
                  (unsigned long long)bs, (long long)ap, (unsigned long long)as);
    assert_true(bp < ap); /* not crossed */
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    free_book(b);
    testdata_unload(&f);
}

/* ---- random streams against the model ----------------------------------------------------- */

typedef struct gorder {
    uint64_t ref;
    int64_t price;
    uint64_t shares;
    uint16_t locate;
    uint8_t side;
} gorder_t;

/* The stream generator: it keeps its own idea of the live orders (it knows nothing of
 * capacity drops, so with tiny capacities some of its events name dropped references). */
typedef struct gen {
    uint64_t rng;
    gorder_t *live;
    uint32_t nlive, cap, nsym, target;
    uint64_t next_ref;
    int64_t mid[64];
    bool rough; /* off-grid prices, far-off prices, mids that jump many ticks at once */
} gen_t;

static uint64_t rnd(gen_t *g)
{
    uint64_t x = g->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return g->rng = x;
}

static void gen_init(gen_t *g, uint64_t seed, uint32_t nsym, uint32_t target)
{
    memset(g, 0, sizeof *g);
    g->rng = seed;
    g->nsym = nsym;
    g->target = target;
    g->cap = target * 4;
    g->live = mem_calloc(MEM_TAG_TEST, g->cap, sizeof(gorder_t));
    assert_non_null(g->live);
    g->next_ref = 1000;
    for (uint32_t s = 0; s <= nsym; s++)
        g->mid[s] = 100000 + (int64_t)(rnd(g) % 2000) * 100;
}

static void gen_fini(gen_t *g)
{
    mem_free(MEM_TAG_TEST, g->live, (size_t)g->cap * sizeof(gorder_t));
}

/* A price for a new order on a side: near the symbol's mid, sometimes deep. */
static int64_t gen_price(gen_t *g, uint16_t loc, uint8_t side)
{
    uint64_t r = rnd(g);
    int64_t ticks = r % 10 < 8 ? (int64_t)(r >> 8) % 12 : (int64_t)(r >> 8) % 400;
    int64_t p = side == 'B' ? g->mid[loc] - 100 * ticks : g->mid[loc] + 100 + 100 * ticks;
    if (g->rough) {
        uint64_t q = rnd(g) % 100;
        if (q < 10) /* off the $0.01 grid */
            p += side == 'B' ? -(int64_t)(1 + q) : (int64_t)(1 + q);
        else if (q < 13) /* far off, either way: through the other side's window too */
            p += (int64_t)(rnd(g) % 20000) * (rnd(g) % 2 ? 1 : -1);
        else if (q < 15) /* sub-dollar prices on the $0.0001 grid */
            p = (int64_t)(rnd(g) % 9999);
    }
    return p < 0 ? 0 : p;
}

static uint64_t gen_new_ref(gen_t *g)
{
    g->next_ref += 1 + rnd(g) % 5; /* unique, increasing, with gaps */
    return g->next_ref;
}

static ev_t gen_next(gen_t *g)
{
    uint64_t r = rnd(g);
    uint32_t pct = (uint32_t)(r % 1000);
    ev_t e = {0};
    /* bad events first: about 2.5% */
    if (pct < 5) { /* unknown reference */
        e.type = "ECXDU"[r % 5];
        e.ref = (1ull << 63) | (rnd(g) % 1000);
        e.new_ref = gen_new_ref(g);
        e.shares = 100;
        e.price = 100000;
        return e;
    }
    if (pct < 10) { /* ignored types */
        e.type = "PQSRIt"[r % 6];
        e.ref = g->nlive ? g->live[rnd(g) % g->nlive].ref : 1;
        e.shares = 1;
        return e;
    }
    if (pct < 13) { /* bad fields on an add */
        e = (ev_t){.type = 'A',
                   .ref = gen_new_ref(g),
                   .locate = 1,
                   .side = 'B',
                   .price = 1000,
                   .shares = 10};
        switch (rnd(g) % 4) {
        case 0:
            e.locate = 0;
            break;
        case 1:
            e.side = 'Z';
            break;
        case 2:
            e.shares = 0;
            break;
        default:
            e.price = -100;
            break;
        }
        return e;
    }
    if (pct < 16 && g->nlive) { /* duplicate add */
        gorder_t *o = &g->live[rnd(g) % g->nlive];
        e = (ev_t){.type = 'A',
                   .ref = o->ref,
                   .locate = o->locate,
                   .side = o->side,
                   .price = o->price,
                   .shares = 10};
        return e;
    }
    uint32_t add_pct = g->nlive < g->target ? 560 : 330;
    if (g->nlive == 0 || pct < add_pct || g->nlive == g->cap) {
        if (g->nlive == g->cap)
            goto remove;
        uint16_t loc = (uint16_t)(1 + rnd(g) % g->nsym);
        if (rnd(g) % 16 == 0) /* the mid drifts */
            g->mid[loc] += rnd(g) % 2 ? 100 : -100;
        if (g->rough && rnd(g) % 64 == 0) /* or jumps, by more than a window */
            g->mid[loc] += (int64_t)(rnd(g) % 160 - 80) * 100;
        if (g->mid[loc] < 20000)
            g->mid[loc] = 20000;
        uint8_t side = rnd(g) % 2 ? 'B' : 'S';
        gorder_t o = {.ref = gen_new_ref(g),
                      .locate = loc,
                      .side = side,
                      .price = gen_price(g, loc, side),
                      .shares = 1 + rnd(g) % 900};
        g->live[g->nlive++] = o;
        e = (ev_t){.type = rnd(g) % 10 ? 'A' : 'F',
                   .ref = o.ref,
                   .locate = loc,
                   .side = side,
                   .price = o.price,
                   .shares = o.shares};
        return e;
    }
remove:;
    uint32_t i = (uint32_t)(rnd(g) % g->nlive);
    gorder_t *o = &g->live[i];
    uint32_t k = (uint32_t)(rnd(g) % 100);
    e.ref = o->ref;
    e.locate = o->locate;
    bool gone = false;
    if (k < 50) {
        e.type = 'D';
        gone = true;
    } else if (k < 65) { /* U: new price near the mid, same side */
        e.type = 'U';
        e.new_ref = gen_new_ref(g);
        e.price = gen_price(g, o->locate, o->side);
        e.shares = 1 + rnd(g) % 900;
        o->ref = e.new_ref;
        o->price = e.price;
        o->shares = e.shares;
    } else {
        e.type = k < 80 ? 'E' : k < 85 ? 'C' : 'X';
        uint32_t how = (uint32_t)(rnd(g) % 100);
        if (how < 35) /* all of it */
            e.shares = o->shares;
        else if (how < 37) /* more than it has: an anomaly */
            e.shares = o->shares + 1 + rnd(g) % 50;
        else if (o->shares > 1)
            e.shares = 1 + rnd(g) % (o->shares - 1);
        else
            e.shares = 1;
        if (e.type == 'C')
            e.price = o->price + 100 * (int64_t)(rnd(g) % 3);
        gone = e.shares >= o->shares;
        o->shares -= gone ? o->shares : e.shares;
    }
    if (gone)
        g->live[i] = g->live[--g->nlive];
    return e;
}

/* Apply nev events of a stream to a book and the model; compare every result and fill, and
 * everything at ncheck evenly spaced checkpoints. */
static void run_stream(book_t *b, naive_t *m, gen_t *g, uint64_t nev, uint64_t ncheck)
{
    uint64_t rng = 0x2545f4914f6cdd1dull, every = nev / ncheck, checks = 0;
    for (uint64_t i = 1; i <= nev; i++) {
        ev_t e = gen_next(g);
        book_fill_t fb, fm;
        book_result_t rb = book_apply(b, &e, &fb);
        book_result_t rm = naive_apply(m, &e, &fm);
        if (rb != rm)
            fail_msg("event %llu (%c ref %llu): book %s, model %s", (unsigned long long)i, e.type,
                     (unsigned long long)e.ref, book_result_name(rb), book_result_name(rm));
        assert_fill_equal(&fb, &fm);
        if (i % every == 0) {
            compare(b, m, &rng);
            checks++;
        }
    }
    assert_true(checks >= ncheck);
}

static void test_book_random_against_model(void **state)
{
    (void)state;
    const uint32_t NSYM = 50, MAXO = 1u << 14, MAXL = 1u << 13;
    uint64_t nev = small_run() ? 200000 : 1000000;
    book_t *b = new_book(MAXO, MAXL, NSYM + 2);
    naive_t *m = mem_alloc(MEM_TAG_TEST, sizeof *m);
    assert_non_null(m);
    naive_init(m, MAXO, MAXL, NSYM + 2);
    gen_t g;
    gen_init(&g, 0x9e3779b97f4a7c15ull, NSYM, 2500);
    run_stream(b, m, &g, nev, 128);
    book_stats_t st;
    book_stats(b, &st);
    print_message("%llu events: %llu live orders (peak %llu), %llu levels (peak %llu); "
                  "unknown %llu, dup %llu, anomalies %llu, invalid %llu, ignored %llu\n",
                  (unsigned long long)st.events, (unsigned long long)st.orders,
                  (unsigned long long)st.orders_peak, (unsigned long long)st.levels,
                  (unsigned long long)st.levels_peak, (unsigned long long)st.unknown_refs,
                  (unsigned long long)st.dup_refs, (unsigned long long)st.anomalies,
                  (unsigned long long)st.invalid, (unsigned long long)st.ignored);
    /* the stream really exercised the book, within capacity */
    assert_int_equal(st.events, nev);
    assert_int_equal(st.orders_exhausted + st.levels_exhausted, 0);
    assert_true(st.orders_peak > 2000);
    assert_true(st.levels_peak > 500);
    assert_true(st.anomalies > 100 && st.unknown_refs > 100 && st.dup_refs > 100 &&
                st.invalid > 100);
    gen_fini(&g);
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    free_book(b);
}

/* The same against prices that test the book's price windows: off the $0.01 grid (they live in
 * the level table among window levels), far from the best, sub-dollar, and mids that jump by
 * more than a window so that windows move all the time. */
static void test_book_rough_prices_against_model(void **state)
{
    (void)state;
    const uint32_t NSYM = 20, MAXO = 1u << 14, MAXL = 1u << 13;
    uint64_t nev = small_run() ? 100000 : 500000;
    book_t *b = new_book(MAXO, MAXL, NSYM + 2);
    naive_t *m = mem_alloc(MEM_TAG_TEST, sizeof *m);
    assert_non_null(m);
    naive_init(m, MAXO, MAXL, NSYM + 2);
    gen_t g;
    gen_init(&g, 0x51ed27a5c3b1e0f7ull, NSYM, 1500);
    g.rough = true;
    run_stream(b, m, &g, nev, 128);
    book_stats_t st;
    book_stats(b, &st);
    print_message("rough prices: %llu levels (peak %llu), %u of %u windows in use\n",
                  (unsigned long long)st.levels, (unsigned long long)st.levels_peak, b->wused,
                  b->nwin);
    assert_int_equal(st.orders_exhausted + st.levels_exhausted, 0);
    assert_true(st.levels_peak > 1000);
    assert_int_equal(b->wused, 2 * NSYM); /* every side got a window */
    gen_fini(&g);
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    free_book(b);
}

/* More symbol sides than price windows (a book has at most 32,768): the sides that find none
 * left keep all their levels in the level table, and every side's book is still right. Per
 * locate, bids at 5.00, 4.99, 4.985 (off the grid) and 4.90, asks at 5.01, 5.015 (off the grid),
 * 5.02 and 9.00; then the 4.99 bid and the 5.02 ask go. */
static void test_book_windows_run_out(void **state)
{
    (void)state;
    const uint32_t NLOC = small_run() ? 17000 : 20000;
    book_t *b = new_book(NLOC * 8, NLOC * 8, NLOC);
    const int64_t bid_px[] = {49000, 50000, 49850, 49900}, ask_px[] = {90000, 50150, 50100, 50200};
    uint64_t ref = 1;
    for (uint32_t loc = 1; loc <= NLOC; loc++)
        for (int k = 0; k < 4; k++) {
            ev_t e = ev_add(ref++, (uint16_t)loc, 'B', bid_px[k], 100 + (uint64_t)k);
            assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
            e = ev_add(ref++, (uint16_t)loc, 'S', ask_px[k], 200 + (uint64_t)k);
            assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
        }
    assert_true(b->nwin < 2 * NLOC);
    assert_int_equal(b->wused, b->nwin);
    /* the 4.99 bid is the 4th event of a locate's block (ref 8 * (loc - 1) + 7), the 5.02 ask
     * the 8th (ref 8 * (loc - 1) + 8) */
    for (uint32_t loc = 1; loc <= NLOC; loc += 2) {
        ev_t e = ev_ref('D', 8 * (uint64_t)(loc - 1) + 7, 0, 0);
        assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
        e = ev_ref('D', 8 * (uint64_t)(loc - 1) + 8, 0, 0);
        assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    }
    book_level_t lv[5];
    for (uint32_t loc = 1; loc <= NLOC; loc++) {
        bool cut = loc % 2 == 1;
        const int64_t want_b[] = {50000, 49900, 49850, 49000},
                      want_a[] = {50100, 50150, 50200, 90000};
        const uint64_t sz_b[] = {101, 103, 102, 100}, sz_a[] = {202, 201, 203, 200};
        int n = book_depth(b, (uint16_t)loc, 'B', 5, lv);
        assert_int_equal(n, cut ? 3 : 4);
        for (int i = 0, j = 0; i < 4; i++) {
            if (cut && want_b[i] == 49900)
                continue;
            assert_int_equal(lv[j].price, want_b[i]);
            assert_int_equal(lv[j].shares, sz_b[i]);
            j++;
        }
        n = book_depth(b, (uint16_t)loc, 'S', 5, lv);
        assert_int_equal(n, cut ? 3 : 4);
        for (int i = 0, j = 0; i < 4; i++) {
            if (cut && want_a[i] == 50200)
                continue;
            assert_int_equal(lv[j].price, want_a[i]);
            assert_int_equal(lv[j].shares, sz_a[i]);
            j++;
        }
    }
    book_reset(b); /* windows are handed out afresh */
    assert_int_equal(b->wused, 0);
    ev_t e = ev_add(1, (uint16_t)NLOC, 'B', 100, 1);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    assert_int_equal(b->wused, 1);
    free_book(b);
}

/* Tiny capacities: adds are dropped and counted exactly as the model's policy says (order pool
 * first, then a new level), later events for dropped references count as unknown, and the book
 * stays equal to the model throughout. */
static void test_book_exhaustion_counted(void **state)
{
    (void)state;
    const uint32_t MAXO = 40, MAXL = 34, MAXLOC = 6;
    book_t *b = new_book(MAXO, MAXL, MAXLOC);
    naive_t *m = mem_alloc(MEM_TAG_TEST, sizeof *m);
    assert_non_null(m);
    naive_init(m, MAXO, MAXL, MAXLOC);
    gen_t g;
    gen_init(&g, 12345, 8, 120); /* locates 7 and 8 are above max_locate: invalid */
    run_stream(b, m, &g, small_run() ? 50000 : 200000, 200);
    book_stats_t st;
    book_stats(b, &st);
    print_message("tiny book: %llu adds dropped for orders, %llu for levels, %llu unknown\n",
                  (unsigned long long)st.orders_exhausted, (unsigned long long)st.levels_exhausted,
                  (unsigned long long)st.unknown_refs);
    assert_true(st.orders_exhausted > 100);
    assert_true(st.levels_exhausted > 100);
    assert_int_equal(st.orders_peak, MAXO);
    assert_int_equal(st.levels_peak, MAXL);
    mem_snapshot_t snap; /* the memory report saw the same */
    mem_snapshot(&snap);
    int seen = 0;
    for (unsigned i = 0; i < snap.nobjs; i++)
        if (strcmp(snap.objs[i].name, "book.orders") == 0) {
            assert_int_equal(snap.objs[i].st.exhausted, st.orders_exhausted);
            assert_int_equal(snap.objs[i].st.capacity, MAXO);
            assert_int_equal(snap.objs[i].st.high_water, MAXO);
            assert_int_equal(snap.objs[i].st.used, st.orders);
            seen++;
        }
    assert_int_equal(seen, 1);
    mem_obj_stats_t ps;
    pool_stats(&b->levels, &ps);
    assert_int_equal(ps.exhausted, st.levels_exhausted);
    assert_int_equal(ps.refused_puts, 0);
    /* drain: delete every live order of the model, then the book is empty */
    while (m->nord) {
        ev_t e = ev_ref('D', m->ord[0].ref, 0, 0);
        assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
        book_fill_t fm;
        assert_int_equal(naive_apply(m, &e, &fm), BOOK_OK);
    }
    book_stats(b, &st);
    assert_int_equal(st.orders, 0);
    assert_int_equal(st.levels, 0);
    uint64_t rng = 1;
    compare(b, m, &rng);
    gen_fini(&g);
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    free_book(b);
}

/* A full pool of one order and one level, by hand. */
static void test_book_exhaustion_by_hand(void **state)
{
    (void)state;
    book_t *b = new_book(2, 1, 4);
    ev_t e = ev_add(1, 1, 'B', 100, 10);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(2, 1, 'B', 101, 10); /* needs a second level */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_NO_LEVEL);
    e = ev_add(3, 1, 'B', 100, 5); /* same level: fine */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    e = ev_add(4, 1, 'B', 100, 5); /* no order left */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_NO_ORDER);
    e = ev_ref('D', 2, 0, 0); /* dropped: unknown later */
    assert_int_equal(book_apply(b, &e, NULL), BOOK_UNKNOWN_REF);
    e = ev_ref('E', 4, 5, 0);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_UNKNOWN_REF);
    /* U to a new price while the only level is shared: no level for it, the original goes */
    e = ev_replace(3, 5, 102, 5);
    book_fill_t f;
    assert_int_equal(book_apply(b, &e, &f), BOOK_NO_LEVEL);
    assert_int_equal(f.ref, 3);
    /* U of the last order on the level to a new price: the freed level is reused */
    e = ev_replace(1, 6, 103, 7);
    assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    book_level_t lv[2];
    assert_int_equal(book_depth(b, 1, 'B', 2, lv), 1);
    assert_int_equal(lv[0].price, 103);
    assert_int_equal(lv[0].shares, 7);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.orders, 1);
    assert_int_equal(st.levels_exhausted, 2);
    assert_int_equal(st.orders_exhausted, 1);
    assert_int_equal(st.unknown_refs, 2);
    free_book(b);
}

/* References that share their low bits (multiples of 2^32 and 2^40) and a dense block of
 * small ones: every one is found, and deleting in random order keeps the rest findable. */
static void test_book_adversarial_refs(void **state)
{
    (void)state;
    enum { N = 3000 };
    book_t *b = new_book(N, 64, 4);
    static uint64_t refs[N];
    for (uint32_t i = 0; i < N; i++)
        refs[i] = i < 1000 ? (uint64_t)(i + 1) << 32 : i < 2000 ? (uint64_t)(i + 1) << 40 : i;
    for (uint32_t i = 0; i < N; i++) {
        ev_t e = ev_add(refs[i], 1 + i % 4, i % 2 ? 'S' : 'B', 1000 + i % 16, 1 + i);
        assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
    }
    uint64_t x = 7;
    for (uint32_t i = N - 1; i > 0; i--) { /* shuffle */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t j = (uint32_t)(x % (i + 1));
        uint64_t t = refs[i];
        refs[i] = refs[j];
        refs[j] = t;
    }
    for (uint32_t i = 0; i < N; i++) {
        ev_t e = ev_ref('D', refs[i], 0, 0);
        assert_int_equal(book_apply(b, &e, NULL), BOOK_OK);
        if (i % 97 == 0)
            for (uint32_t j = i + 1; j < N; j++)
                assert_int_equal(book_order(b, refs[j], &(book_order_t){0}), 0);
        assert_int_equal(book_order(b, refs[i], &(book_order_t){0}), -ENOENT);
    }
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.orders, 0);
    assert_int_equal(st.levels, 0);
    free_book(b);
}

/* ---- no allocation on the hot path -------------------------------------------------------- */

static void test_book_apply_allocates_nothing(void **state)
{
    (void)state;
    enum { N = 100000 };
    book_t *b = new_book(1u << 14, 1u << 12, 60);
    ev_t *evs = mem_calloc(MEM_TAG_TEST, N, sizeof(ev_t));
    assert_non_null(evs);
    gen_t g;
    gen_init(&g, 4242, 50, 3000);
    for (int i = 0; i < N; i++)
        evs[i] = gen_next(&g);
    mem_seal();
    malloc_count_t before;
    malloc_count_get(&before);
    uint64_t fills = 0;
    book_fill_t f;
    for (int i = 0; i < N; i++) {
        book_result_t r = book_apply(b, &evs[i], &f);
        fills += r == BOOK_OK && f.side != 0;
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.total.churn_allocs, 0);
    mem_unseal();
    assert_true(fills > N / 4);
    book_stats_t st;
    book_stats(b, &st);
    assert_int_equal(st.events, N);
    assert_int_equal(st.orders_exhausted + st.levels_exhausted, 0);
    gen_fini(&g);
    mem_free(MEM_TAG_TEST, evs, (size_t)N * sizeof(ev_t));
    free_book(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_book_hand_computed, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_invalid_fields, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_init_refuses_bad_config, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_default_config, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_checksum_and_reset, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_nasdaq_aapl, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_random_against_model, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_rough_prices_against_model, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_windows_run_out, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_exhaustion_counted, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_exhaustion_by_hand, reset_counters,
                                        check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_adversarial_refs, reset_counters, check_no_leak),
        cmocka_unit_test_setup_teardown(test_book_apply_allocates_nothing, reset_counters,
                                        check_no_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
