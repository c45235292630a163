/*
 * test_book_diff: a randomized differential test of the order book against a naive reference
 * book written plainly here: the live orders in a hash map keyed by reference (linear probing
 * with tombstones, rebuilt when they pile up), and per symbol side a sorted array of price
 * aggregates (binary search, memmove to insert or remove). The stream is hostile on purpose:
 * references mostly in sequence (ITCH's habit) but some random 64-bit ones, some a multiple of
 * the book's direct table away from a live one, and old orders that outlive many newer ones (so
 * orders move to the far table and are found and removed there); prices near a drifting mid,
 * far from it, off the $0.01 grid, below $1, with jumps that move the price windows; duplicate
 * and unknown references, executions larger than the order, invalid fields, and capacity
 * exhaustion (the reference applies the policy of book.h: an add is dropped when max_orders are
 * live or its price needs a level and max_levels are in use). Every event's result and fill
 * must equal the reference's (the first book gets them one by one, with the prefetch hints of
 * book_prefetch as engine/shard gives them); a second book gets the same events through
 * book_apply_batch and must return the same results and fills; at >= 1,000 checkpoints both books
 * must agree with the reference on the best bid and offer and the top 10 levels of every symbol,
 * the full depth and book_checksum of one symbol in turn, per-symbol counts, 64 order lookups and
 * every counter of book_stats. The apply loops allocate nothing (malloc_count and mem/'s churn
 * counter). Events: 10^7 over a big book, then 10^6 over a small one that runs out of orders and
 * levels; a tenth of that under valgrind or ASan (the normal stage runs the full count; the
 * sanitizer stages look for memory errors, which the first 10^6 events reach as well) or with
 * TICKCORE_TEST_SMALL, or $TICKCORE_BOOK_DIFF_EVENTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "analytics/book.h"
#include "mem/mem.h"
#include "mem/sanitize.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

enum {
    NSYM = 48,          /* locates 1..NSYM, plus HIGH_LOC */
    HIGH_LOC = 60000,   /* a symbol near the top of the locate range */
    MAX_LOCATE = 60001, /* the book's max_locate: HIGH_LOC + 1 is valid, above is not */
    CHUNK_MAX = 10000,  /* events between checkpoints at most */
    MAXLV = 8192,       /* levels on one naive side at most */
    DEPTH = 10,
    LOOKUPS = 64,
};

static uint64_t g_rng;

static uint64_t rnd(void)
{
    uint64_t x = g_rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return g_rng = x;
}

static uint64_t below(uint64_t n)
{
    return rnd() % n;
}

static size_t events_wanted(size_t normal)
{
    const char *e = getenv("TICKCORE_BOOK_DIFF_EVENTS");
    if (e && atol(e) > 0)
        return (size_t)atol(e);
    const char *s = getenv("TICKCORE_TEST_SMALL");
    if (RUNNING_ON_VALGRIND || MEM_ASAN_ON || (s && *s && strcmp(s, "0") != 0))
        return normal / 10;
    return normal;
}

/* ---- the naive reference book ------------------------------------------------------------- */

typedef struct nord {
    uint64_t ref;
    int64_t price;
    uint32_t shares;
    uint16_t locate;
    uint8_t side;  /* 'B' or 'S' */
    uint8_t state; /* 0 empty, 1 live, 2 tombstone */
} nord_t;

typedef struct nlevel {
    int64_t price;
    uint64_t shares;
    uint32_t orders;
} nlevel_t;

typedef struct nside {
    nlevel_t *lv; /* sorted best first */
    uint32_t n;
} nside_t;

typedef struct naive {
    nord_t *map, *spare; /* spare: the rebuild target */
    size_t cap, used, dead;
    nside_t side[2][NSYM + 2]; /* [ask][symbol index] */
    uint64_t max_orders, max_levels, orders, levels;
    book_stats_t c; /* the counters book_stats must report */
} naive_t;

static size_t sym_index(uint16_t locate)
{
    return locate == HIGH_LOC ? NSYM + 1 : locate;
}

static nside_t *nside(naive_t *m, uint16_t locate, uint8_t side)
{
    return &m->side[side == 'S'][sym_index(locate)];
}

static size_t nhash(uint64_t ref, size_t cap)
{
    return (size_t)((ref * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static nord_t *nfind(naive_t *m, uint64_t ref)
{
    for (size_t i = nhash(ref, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->map[i].state == 0)
            return NULL;
        if (m->map[i].state == 1 && m->map[i].ref == ref)
            return &m->map[i];
    }
}

static void nput(nord_t *map, size_t cap, const nord_t *o)
{
    size_t i = nhash(o->ref, cap);
    while (map[i].state == 1)
        i = (i + 1) & (cap - 1);
    map[i] = *o;
    map[i].state = 1;
}

/* Rebuild the map without tombstones once they fill a quarter of it. */
static void nmaybe_rebuild(naive_t *m)
{
    if (m->used + m->dead < m->cap / 2)
        return;
    memset(m->spare, 0, m->cap * sizeof(nord_t));
    for (size_t i = 0; i < m->cap; i++)
        if (m->map[i].state == 1)
            nput(m->spare, m->cap, &m->map[i]);
    nord_t *t = m->map;
    m->map = m->spare;
    m->spare = t;
    m->dead = 0;
}

static void naive_init(naive_t *m, uint64_t max_orders, uint64_t max_levels)
{
    memset(m, 0, sizeof *m);
    m->cap = 1;
    while (m->cap < 4 * max_orders + 1024)
        m->cap <<= 1;
    m->map = mem_calloc(MEM_TAG_TEST, m->cap, sizeof(nord_t));
    m->spare = mem_calloc(MEM_TAG_TEST, m->cap, sizeof(nord_t));
    assert_non_null(m->map);
    assert_non_null(m->spare);
    for (int a = 0; a < 2; a++)
        for (size_t s = 0; s < NSYM + 2; s++) {
            m->side[a][s].lv = mem_calloc(MEM_TAG_TEST, MAXLV, sizeof(nlevel_t));
            assert_non_null(m->side[a][s].lv);
        }
    m->max_orders = max_orders;
    m->max_levels = max_levels;
}

static void naive_fini(naive_t *m)
{
    mem_free(MEM_TAG_TEST, m->map, m->cap * sizeof(nord_t));
    mem_free(MEM_TAG_TEST, m->spare, m->cap * sizeof(nord_t));
    for (int a = 0; a < 2; a++)
        for (size_t s = 0; s < NSYM + 2; s++)
            mem_free(MEM_TAG_TEST, m->side[a][s].lv, MAXLV * sizeof(nlevel_t));
}

/* Index of price on the side, or -(insertion point) - 1. */
static long nlevel_find(const nside_t *s, uint8_t side, int64_t price)
{
    long lo = 0, hi = (long)s->n;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        int64_t p = s->lv[mid].price;
        if (p == price)
            return mid;
        bool before = side == 'B' ? p > price : p < price; /* p is better */
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -lo - 1;
}

static void nlevel_add(naive_t *m, nside_t *s, uint8_t side, int64_t price, uint32_t shares)
{
    long i = nlevel_find(s, side, price);
    if (i < 0) {
        i = -i - 1;
        assert_true(s->n < MAXLV);
        memmove(&s->lv[i + 1], &s->lv[i], (s->n - (size_t)i) * sizeof(nlevel_t));
        s->lv[i] = (nlevel_t){.price = price};
        s->n++;
        m->levels++;
    }
    s->lv[i].shares += shares;
    s->lv[i].orders++;
}

/* Take shares off the level of order o; the order leaves it if gone. */
static void nlevel_sub(naive_t *m, const nord_t *o, uint32_t shares, bool gone)
{
    nside_t *s = nside(m, o->locate, o->side);
    long i = nlevel_find(s, o->side, o->price);
    assert_true(i >= 0);
    s->lv[i].shares -= shares;
    if (gone && --s->lv[i].orders == 0) {
        assert_int_equal(s->lv[i].shares, 0);
        memmove(&s->lv[i], &s->lv[i + 1], (s->n - (size_t)i - 1) * sizeof(nlevel_t));
        s->n--;
        m->levels--;
    }
}

static void nremove(naive_t *m, nord_t *o)
{
    o->state = 2;
    m->used--;
    m->dead++;
    m->orders--;
}

static bool add_fields_ok(uint16_t locate, uint64_t shares, int64_t price)
{
    return locate >= 1 && locate <= MAX_LOCATE && shares >= 1 && shares <= UINT32_MAX &&
           price >= 0 && price <= BOOK_PRICE_MAX;
}

/* The add rules of book.h, in its order: duplicate, orders full, level needed but none left. */
static book_result_t nadd(naive_t *m, uint64_t ref, uint16_t locate, uint8_t side, int64_t price,
                          uint64_t shares)
{
    if (nfind(m, ref) != NULL) {
        m->c.dup_refs++;
        return BOOK_DUP_REF;
    }
    if (m->orders == m->max_orders) {
        m->c.orders_exhausted++;
        return BOOK_NO_ORDER;
    }
    nside_t *s = nside(m, locate, side);
    if (nlevel_find(s, side, price) < 0 && m->levels == m->max_levels) {
        m->c.levels_exhausted++;
        return BOOK_NO_LEVEL;
    }
    nlevel_add(m, s, side, price, (uint32_t)shares);
    nord_t o = {
        .ref = ref, .price = price, .shares = (uint32_t)shares, .locate = locate, .side = side};
    nmaybe_rebuild(m);
    nput(m->map, m->cap, &o);
    m->used++;
    m->orders++;
    if (m->orders > m->c.orders_peak)
        m->c.orders_peak = m->orders;
    if (m->levels > m->c.levels_peak)
        m->c.levels_peak = m->levels;
    m->c.applied++;
    return BOOK_OK;
}

static book_result_t naive_apply_core(naive_t *m, const ev_t *e, book_fill_t *f)
{
    memset(f, 0, sizeof *f);
    m->c.events++;
    switch (e->type) {
    case 'A':
    case 'F':
        if (!add_fields_ok(e->locate, e->shares, e->price) || (e->side != 'B' && e->side != 'S')) {
            m->c.invalid++;
            return BOOK_INVALID;
        }
        return nadd(m, e->ref, e->locate, e->side, e->price, e->shares);
    case 'E':
    case 'C':
    case 'X':
    case 'D':
    case 'U': {
        nord_t *p = nfind(m, e->ref);
        if (p == NULL) {
            m->c.unknown_refs++;
            return BOOK_UNKNOWN_REF;
        }
        nord_t o = *p;
        f->ref = o.ref;
        f->price = o.price;
        f->locate = o.locate;
        f->side = o.side;
        f->exec_price = e->type == 'E' ? o.price : e->type == 'C' ? e->price : 0;
        book_result_t r = BOOK_OK;
        if (e->type != 'D' && e->type != 'U' && e->shares < o.shares) {
            f->shares = e->shares;
            f->remaining = o.shares - e->shares;
            p->shares -= (uint32_t)e->shares;
            nlevel_sub(m, &o, (uint32_t)e->shares, false);
            m->c.applied++;
            return BOOK_OK;
        }
        if (e->type != 'D' && e->type != 'U' && e->shares > o.shares) {
            m->c.anomalies++;
            r = BOOK_ANOMALY;
        }
        f->shares = o.shares;
        nlevel_sub(m, &o, o.shares, true);
        nremove(m, p);
        if (e->type != 'U') {
            m->c.applied++;
            return r;
        }
        if (!add_fields_ok(o.locate, e->shares, e->price)) {
            m->c.invalid++;
            return BOOK_INVALID;
        }
        return nadd(m, e->new_ref, o.locate, o.side, e->price, e->shares);
    }
    default:
        m->c.ignored++;
        return BOOK_IGNORED;
    }
}

/* The best price of a side, and whether it has a level. */
static int64_t nbest(naive_t *m, uint16_t loc, uint8_t side, bool *any)
{
    const nside_t *s = nside(m, loc, side);
    *any = s->n > 0;
    return s->n ? s->lv[0].price : 0;
}

/* naive_apply_core, and the fill's result and quote change: the one side an event can change
 * (an add's own; the order's for the others), its best price and emptiness compared before and
 * after the event. */
static book_result_t naive_apply(naive_t *m, const ev_t *e, book_fill_t *f)
{
    uint16_t loc = 0;
    uint8_t side = 0;
    if (e->type == 'A' || e->type == 'F') {
        if (add_fields_ok(e->locate, e->shares, e->price) && (e->side == 'B' || e->side == 'S')) {
            loc = e->locate;
            side = e->side;
        }
    } else if (e->type == 'E' || e->type == 'C' || e->type == 'X' || e->type == 'D' ||
               e->type == 'U') {
        const nord_t *p = nfind(m, e->ref);
        if (p != NULL) {
            loc = p->locate;
            side = p->side;
        }
    }
    bool any0 = false, any1 = false;
    int64_t px0 = loc ? nbest(m, loc, side, &any0) : 0;
    book_result_t r = naive_apply_core(m, e, f);
    f->result = (uint8_t)r;
    if (loc) {
        int64_t px1 = nbest(m, loc, side, &any1);
        if (px1 != px0 || any1 != any0) {
            f->bbo_side = side;
            f->bbo_locate = loc;
            f->bbo_px = px1;
        }
    }
    return r;
}

/* ---- the hostile stream ------------------------------------------------------------------- */

typedef struct gen {
    uint64_t *refs; /* references added and not (as far as the generator knows) removed */
    size_t nrefs, cap;
    uint64_t next_ref, dir_span; /* the book's direct table size (for colliding references) */
    int64_t mid[NSYM + 2];       /* per symbol: mid in $0.01 ticks (sub-$1 symbols: 1e-4 $) */
    uint32_t target;             /* live orders the stream aims at */
    bool surge;                  /* adding faster, past the book's capacity */
    size_t pick;                 /* the refs entry the last event named, or SIZE_MAX */
} gen_t;

static uint16_t gen_locate(void)
{
    return below(50) == 0 ? HIGH_LOC : (uint16_t)(1 + below(NSYM));
}

static bool sub_dollar(uint16_t locate)
{
    return locate <= 3; /* prices in 1e-4 $ steps, under $1 */
}

static int64_t gen_price(gen_t *g, uint16_t locate, uint8_t side)
{
    size_t s = sym_index(locate);
    if (below(64) == 0)
        g->mid[s] += below(2) ? 1 : -1;
    if (below(20000) == 0)
        g->mid[s] += below(2) ? 150 : -150; /* a jump: the windows must follow */
    if (sub_dollar(locate)) {
        if (g->mid[s] < 500 || g->mid[s] > 9000)
            g->mid[s] = 5000;
        int64_t off = (int64_t)(below(5) ? below(30) : below(2000));
        int64_t p = side == 'B' ? g->mid[s] - off : g->mid[s] + 1 + off;
        return p < 1 ? 1 : p;
    }
    if (g->mid[s] < 400)
        g->mid[s] = 400;
    uint64_t k = below(100);
    int64_t off = (int64_t)(k < 80 ? below(12) : k < 96 ? below(400) : below(20));
    int64_t t = side == 'B' ? g->mid[s] - off : g->mid[s] + 1 + off;
    int64_t p = (t < 100 ? 100 : t) * 100;
    if (k >= 96) /* off the $0.01 grid */
        p += side == 'B' ? -(int64_t)(1 + below(99)) : (int64_t)(1 + below(99));
    return p;
}

static uint64_t gen_new_ref(gen_t *g)
{
    uint64_t k = below(1000);
    if (k < 8) /* anywhere */
        return rnd() >> (below(2) ? 0 : 16);
    if (k < 14 && g->nrefs) /* the direct slot of a live order */
        return g->refs[below(g->nrefs)] + g->dir_span * (1 + below(3));
    if (k == 14)
        return 0;
    return g->next_ref++;
}

static void gen_keep(gen_t *g, uint64_t ref)
{
    if (g->nrefs < g->cap)
        g->refs[g->nrefs++] = ref;
}

/* An index into refs: mostly recent orders, some anywhere (they outlive many newer ones). */
static size_t gen_pick(const gen_t *g)
{
    size_t w = g->nrefs < 1024 ? g->nrefs : 1024;
    return below(10) < 7 ? g->nrefs - 1 - below(w) : below(g->nrefs);
}

/* The next event; gen_after() then updates refs from what the reference book did with it. */
static void gen_event(gen_t *g, ev_t *e, uint64_t ts)
{
    memset(e, 0, sizeof *e);
    e->ts = ts;
    g->pick = SIZE_MAX;
    uint64_t k = below(1000);
    if (g->nrefs == 0 || (k < (g->surge ? 650u : 440u) && g->nrefs < g->target) || k < 300) {
        uint16_t loc = gen_locate();
        e->type = below(40) ? 'A' : 'F';
        e->side = below(2) ? 'B' : 'S';
        e->locate = loc;
        e->ref = gen_new_ref(g);
        e->price = gen_price(g, loc, e->side);
        e->shares = 1 + below(below(4) ? 900 : 100000);
        uint64_t bad = below(400);
        if (bad == 0)
            e->locate = below(2) ? 0 : (uint16_t)(MAX_LOCATE + 1 + below(100));
        else if (bad == 1)
            e->side = below(2) ? 0 : 'X';
        else if (bad == 2)
            e->shares = below(2) ? 0 : (uint64_t)UINT32_MAX + 1 + below(1000);
        else if (bad == 3)
            e->price = below(2) ? -100 : BOOK_PRICE_MAX + 1;
        else if (bad == 4 && g->nrefs)
            e->ref = g->refs[gen_pick(g)]; /* a duplicate, most likely */
        return;
    }
    if (k >= 990) { /* types the book ignores */
        static const uint8_t other[] = {'P', 'Q', 'B', 'S', 'R', 'H', 'I'};
        e->type = other[below(sizeof other)];
        e->locate = gen_locate();
        e->ref = g->next_ref - 1;
        e->shares = 100;
        e->price = 10000;
        return;
    }
    if (k >= 980) { /* an unknown reference, most likely */
        static const uint8_t t[] = {'D', 'E', 'C', 'X', 'U'};
        e->type = t[below(5)];
        e->ref = below(2) ? g->next_ref + 1 + below(1000) : rnd();
        e->new_ref = g->next_ref++;
        e->shares = 1 + below(100);
        e->price = 10000;
        return;
    }
    size_t j = gen_pick(g);
    g->pick = j;
    e->ref = g->refs[j];
    e->locate = gen_locate(); /* the book keys removals by reference alone */
    if (k < 760) {
        e->type = 'D';
    } else if (k < 830) {
        e->type = 'U';
        e->new_ref = gen_new_ref(g);
        e->price = gen_price(g, e->locate, below(2) ? 'B' : 'S');
        e->shares = 1 + below(900);
        uint64_t bad = below(300);
        if (bad == 0)
            e->shares = 0;
        else if (bad == 1)
            e->price = -1;
        else if (bad == 2 && g->nrefs > 1)
            e->new_ref = g->refs[below(g->nrefs)];
    } else {
        e->type = k < 880 ? 'E' : k < 920 ? 'C' : 'X';
        e->price = 1000 + (int64_t)below(100000);
        uint64_t m = below(100);
        e->shares = m < 50 ? 1 + below(300) : m < 95 ? 1 + below(1000) : 100000 + below(10);
    }
}

/* Keep refs to the orders the reference book holds: a new order joins, a removed one leaves. */
static void gen_after(gen_t *g, const ev_t *e, book_result_t r, naive_t *m)
{
    if ((e->type == 'A' || e->type == 'F') && r == BOOK_OK) {
        gen_keep(g, e->ref);
        return;
    }
    if (g->pick == SIZE_MAX)
        return;
    uint64_t live = e->type == 'U' ? e->new_ref : e->ref;
    if (nfind(m, live) != NULL)
        g->refs[g->pick] = live;
    else
        g->refs[g->pick] = g->refs[--g->nrefs];
}

/* ---- comparisons -------------------------------------------------------------------------- */

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
    for (int a = 0; a < 2; a++) {
        uint8_t side = a ? 'S' : 'B';
        const nside_t *s = nside(m, locate, side);
        for (uint32_t i = 0; i < s->n; i++) {
            h = mix(h ^ (uint64_t)s->lv[i].price);
            h = mix(h ^ s->lv[i].shares);
            h = mix(h ^ ((uint64_t)s->lv[i].orders << 8 | side));
        }
        h = mix(h ^ s->n);
    }
    return h;
}

static void assert_fill_equal(const book_fill_t *a, const book_fill_t *b, size_t i)
{
    if (a->ref != b->ref || a->price != b->price || a->exec_price != b->exec_price ||
        a->shares != b->shares || a->remaining != b->remaining || a->locate != b->locate ||
        a->side != b->side || a->result != b->result)
        fail_msg("event %zu: fill ref %llu px %lld exec %lld shares %llu rem %llu loc %u side %d "
                 "vs ref %llu px %lld exec %lld shares %llu rem %llu loc %u side %d",
                 i, (unsigned long long)a->ref, (long long)a->price, (long long)a->exec_price,
                 (unsigned long long)a->shares, (unsigned long long)a->remaining, a->locate,
                 a->side, (unsigned long long)b->ref, (long long)b->price, (long long)b->exec_price,
                 (unsigned long long)b->shares, (unsigned long long)b->remaining, b->locate,
                 b->side);
    if (a->bbo_side != b->bbo_side || a->bbo_locate != b->bbo_locate || a->bbo_px != b->bbo_px)
        fail_msg(
            "event %zu: fill quote change side %d loc %u px %lld vs ref side %d loc %u px %lld", i,
            a->bbo_side, a->bbo_locate, (long long)a->bbo_px, b->bbo_side, b->bbo_locate,
            (long long)b->bbo_px);
}

static book_level_t g_depth[MAXLV + 1];

static void compare_side(const book_t *b, naive_t *m, uint16_t loc, uint8_t side, uint32_t n)
{
    const nside_t *s = nside(m, loc, side);
    int got = book_depth(b, loc, side, n, g_depth);
    uint32_t want = s->n < n ? s->n : n;
    assert_int_equal(got, want);
    for (uint32_t i = 0; i < want; i++)
        if (g_depth[i].price != s->lv[i].price || g_depth[i].shares != s->lv[i].shares ||
            g_depth[i].orders != s->lv[i].orders)
            fail_msg("locate %u side %c level %u: book %lld x %llu (%u), naive %lld x %llu (%u)",
                     loc, side, i, (long long)g_depth[i].price,
                     (unsigned long long)g_depth[i].shares, g_depth[i].orders,
                     (long long)s->lv[i].price, (unsigned long long)s->lv[i].shares,
                     s->lv[i].orders);
}

static void compare_symbol(const book_t *b, naive_t *m, uint16_t loc, bool full)
{
    int64_t px[2];
    uint64_t sz[2];
    int mask = book_best(b, loc, &px[0], &sz[0], &px[1], &sz[1]);
    book_symbol_t sy;
    assert_int_equal(book_symbol(b, loc, &sy), 0);
    for (int a = 0; a < 2; a++) {
        uint8_t side = a ? 'S' : 'B';
        const nside_t *s = nside(m, loc, side);
        assert_int_equal(!!(mask & (1 << a)), s->n > 0);
        assert_int_equal(px[a], s->n ? s->lv[0].price : 0);
        assert_int_equal(sz[a], s->n ? s->lv[0].shares : 0);
        assert_int_equal(sy.levels[a], s->n);
        uint32_t orders = 0;
        for (uint32_t i = 0; i < s->n; i++)
            orders += s->lv[i].orders;
        assert_int_equal(sy.orders[a], orders);
        compare_side(b, m, loc, side, full ? MAXLV + 1 : DEPTH);
    }
    if (full)
        assert_int_equal(book_checksum(b, loc), naive_checksum(m, loc));
}

static void compare_stats(const book_t *b, const naive_t *m)
{
    book_stats_t st;
    book_stats(b, &st);
    const book_stats_t *c = &m->c;
    assert_int_equal(st.orders, m->orders);
    assert_int_equal(st.levels, m->levels);
    assert_int_equal(st.orders_peak, c->orders_peak);
    assert_int_equal(st.levels_peak, c->levels_peak);
    assert_int_equal(st.events, c->events);
    assert_int_equal(st.applied, c->applied);
    assert_int_equal(st.ignored, c->ignored);
    assert_int_equal(st.unknown_refs, c->unknown_refs);
    assert_int_equal(st.dup_refs, c->dup_refs);
    assert_int_equal(st.orders_exhausted, c->orders_exhausted);
    assert_int_equal(st.levels_exhausted, c->levels_exhausted);
    assert_int_equal(st.anomalies, c->anomalies);
    assert_int_equal(st.invalid, c->invalid);
    assert_true(st.far_orders <= st.orders);
}

static void compare_lookups(const book_t *b, naive_t *m, const gen_t *g)
{
    for (int i = 0; i < LOOKUPS; i++) {
        uint64_t ref = i % 8 == 7 || g->nrefs == 0 ? rnd() : g->refs[below(g->nrefs)];
        book_order_t o;
        int rc = book_order(b, ref, &o);
        const nord_t *n = nfind(m, ref);
        if (n == NULL) {
            assert_int_equal(rc, -ENOENT);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(o.ref, ref);
        assert_int_equal(o.price, n->price);
        assert_int_equal(o.shares, n->shares);
        assert_int_equal(o.locate, n->locate);
        assert_int_equal(o.side, n->side);
    }
}

static ev_t g_ev[CHUNK_MAX];
static book_fill_t g_fill[CHUNK_MAX], g_bfill[CHUNK_MAX], g_wfill[CHUNK_MAX];
static book_result_t g_res[CHUNK_MAX], g_want[CHUNK_MAX];

typedef struct run_cfg {
    uint32_t max_orders, max_levels;
    size_t events;
    uint32_t target_lo, target_hi; /* live orders the stream aims at (a surge goes above) */
    uint64_t seed;
} run_cfg_t;

/* Returns the most orders that were in the far table at once. */
static uint64_t run(const run_cfg_t *rc, book_stats_t *end)
{
    book_config_t cfg = {
        .max_orders = rc->max_orders, .max_levels = rc->max_levels, .max_locate = MAX_LOCATE};
    book_t b1, b2;
    assert_int_equal(book_init(&b1, &cfg), 0);
    assert_int_equal(book_init(&b2, &cfg), 0);
    naive_t *m = mem_calloc(MEM_TAG_TEST, 1, sizeof *m);
    assert_non_null(m);
    naive_init(m, rc->max_orders, rc->max_levels);
    gen_t g = {.next_ref = 1, .cap = 8u * rc->max_orders + 4096, .target = rc->target_lo};
    g.refs = mem_calloc(MEM_TAG_TEST, g.cap, sizeof(uint64_t));
    assert_non_null(g.refs);
    g.dir_span = 1;
    while (g.dir_span < rc->max_orders) /* the direct table's size (see book.c) */
        g.dir_span <<= 1;
    g_rng = rc->seed;
    for (size_t s = 0; s < NSYM + 2; s++)
        g.mid[s] = 500 + (int64_t)below(20000);
    size_t chunk = rc->events / 1000 < CHUNK_MAX ? rc->events / 1000 : CHUNK_MAX;
    if (chunk == 0)
        chunk = 1;

    malloc_count_t before;
    malloc_count_get(&before);
    mem_seal();
    uint64_t far_peak = 0;
    size_t done = 0, checks = 0;
    uint16_t turn = 1;
    while (done < rc->events) {
        size_t n = rc->events - done < chunk ? rc->events - done : chunk;
        if (below(50) == 0) { /* a surge past the capacity, or back to normal */
            g.surge = below(3) == 0;
            g.target = g.surge ? rc->max_orders + 1000
                               : rc->target_lo + (uint32_t)below(rc->target_hi - rc->target_lo);
        }
        for (size_t i = 0; i < n; i++) {
            gen_event(&g, &g_ev[i], done + i);
            g_want[i] = naive_apply(m, &g_ev[i], &g_wfill[i]);
            gen_after(&g, &g_ev[i], g_want[i], m);
        }
        for (size_t i = 0; i < n; i++) {
            /* the hints engine/shard gives (they read the book: valgrind and ASan see them) */
            if (i + BOOK_PREFETCH_FAR < n)
                book_prefetch(&b1, &g_ev[i + BOOK_PREFETCH_FAR], 0);
            if (i + BOOK_PREFETCH_NEAR < n)
                book_prefetch(&b1, &g_ev[i + BOOK_PREFETCH_NEAR], 1);
            g_res[i] = book_apply(&b1, &g_ev[i], &g_fill[i]);
            if (g_res[i] != g_want[i])
                fail_msg("event %zu (%c ref %llu): book says %s, reference %s", done + i,
                         g_ev[i].type, (unsigned long long)g_ev[i].ref, book_result_name(g_res[i]),
                         book_result_name(g_want[i]));
            assert_fill_equal(&g_fill[i], &g_wfill[i], done + i);
        }
        size_t changed = book_apply_batch(&b2, g_ev, n, g_bfill);
        size_t want_changed = 0;
        for (size_t i = 0; i < n; i++) {
            want_changed += g_res[i] == BOOK_OK || g_res[i] == BOOK_ANOMALY;
            assert_fill_equal(&g_bfill[i], &g_fill[i], done + i);
        }
        assert_int_equal(changed, want_changed);
        done += n;
        checks++;
        /* the checkpoint */
        for (uint16_t loc = 1; loc <= NSYM; loc++) {
            compare_symbol(&b1, m, loc, loc == turn);
            compare_symbol(&b2, m, loc, loc == turn);
        }
        compare_symbol(&b1, m, HIGH_LOC, checks % 8 == 0);
        compare_symbol(&b2, m, HIGH_LOC, checks % 8 == 0);
        turn = turn % NSYM + 1;
        compare_stats(&b1, m);
        compare_stats(&b2, m);
        compare_lookups(&b1, m, &g);
        compare_lookups(&b2, m, &g);
        book_stats_t st;
        book_stats(&b1, &st);
        if (st.far_orders > far_peak)
            far_peak = st.far_orders;
    }
    mem_snapshot_t snap;
    mem_snapshot(&snap);
    mem_unseal();
    assert_int_equal(snap.total.churn_allocs, 0);
    if (malloc_count_libc_seen())
        assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_true(checks >= 1000 || rc->events < 1000);
    book_stats(&b1, end);
    /* the end state, every symbol in full */
    for (uint16_t loc = 1; loc <= NSYM; loc++)
        compare_symbol(&b1, m, loc, true);
    book_fini(&b1);
    book_fini(&b2);
    naive_fini(m);
    mem_free(MEM_TAG_TEST, m, sizeof *m);
    mem_free(MEM_TAG_TEST, g.refs, g.cap * sizeof(uint64_t));
    return far_peak;
}

static void print_run(const char *what, const book_stats_t *st, uint64_t far_peak)
{
    printf("  %s: %llu events: %llu applied, %llu ignored, %llu unknown, %llu dup, %llu anomalies, "
           "%llu invalid, %llu/%llu dropped (orders/levels); peaks %llu orders, %llu levels; "
           "%llu orders moved far (%llu there at a checkpoint at most)\n",
           what, (unsigned long long)st->events, (unsigned long long)st->applied,
           (unsigned long long)st->ignored, (unsigned long long)st->unknown_refs,
           (unsigned long long)st->dup_refs, (unsigned long long)st->anomalies,
           (unsigned long long)st->invalid, (unsigned long long)st->orders_exhausted,
           (unsigned long long)st->levels_exhausted, (unsigned long long)st->orders_peak,
           (unsigned long long)st->levels_peak, (unsigned long long)st->far_moves,
           (unsigned long long)far_peak);
}

/* A big book and a long stream: every path but exhaustion of levels is taken many times. */
static void test_book_diff_big(void **state)
{
    (void)state;
    size_t n = events_wanted(10000000);
    uint32_t max_orders = 4096; /* 2^17 for 10^7 events: the surges reach it */
    while (max_orders * 2 <= n / 64)
        max_orders *= 2;
    run_cfg_t rc = {.max_orders = max_orders,
                    .max_levels = max_orders / 2,
                    .events = n,
                    .target_lo = 2000,
                    .target_hi = max_orders / 4 * 3,
                    .seed = 0x243f6a8885a308d3ull};
    book_stats_t st;
    uint64_t far_peak = run(&rc, &st);
    print_run("big", &st, far_peak);
    /* the stream reached what it is for */
    assert_true(st.far_moves > 1000);
    assert_true(far_peak > 10);
    assert_true(st.orders_exhausted > 0);
    assert_true(st.unknown_refs > 0 && st.dup_refs > 0 && st.anomalies > 0 && st.invalid > 0);
}

/* A small book: orders and levels run out again and again. */
static void test_book_diff_small(void **state)
{
    (void)state;
    run_cfg_t rc = {.max_orders = 1500,
                    .max_levels = 1100,
                    .events = events_wanted(1000000),
                    .target_lo = 200,
                    .target_hi = 1400,
                    .seed = 0x13198a2e03707344ull};
    book_stats_t st;
    uint64_t far_peak = run(&rc, &st);
    print_run("small", &st, far_peak);
    assert_true(st.orders_exhausted > 0);
    assert_true(st.levels_exhausted > 0);
    assert_true(st.far_moves > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_book_diff_big),
        cmocka_unit_test(test_book_diff_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
