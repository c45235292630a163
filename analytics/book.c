/*
 * book: the order books (see book.h for the design). This file holds the two hash tables
 * (order reference -> order, level key -> level; linear probing, backward-shift deletion, an
 * 8-byte slot of 32 hash bits and index + 1), the per-side level lists, the event handlers and
 * the queries. A level's key packs price << 17 | locate << 1 | ask, so one 64-bit compare
 * identifies it and its locate and side need no field of their own. The book owns both pools,
 * both tables and the side array, all allocated in book_init and freed in book_fini; the
 * handlers only move objects between the pools and the tables.
 */
#include "analytics/book.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define NIL              UINT32_MAX
#define HASH_MUL         0x9e3779b97f4a7c15ull /* Fibonacci hashing: 2^64 / golden ratio */
#define KEY_PRICE_SHIFT  17
#define MIN_SLOTS_LOG2   4
#define SHORT_WALK       4 /* levels walked from an end before asking the table for a neighbour */
#define NEIGHBOUR_PROBES 2 /* ticks tried on each side of a new price */

/* An order: 16 bytes. Its price, locate and side are its level's. */
typedef struct book_ord {
    uint64_t ref;
    uint32_t shares; /* left */
    uint32_t level;  /* index in the level pool */
} book_ord_t;

/* A price level: 32 bytes. */
typedef struct book_lvl {
    uint64_t key;    /* price << 17 | locate << 1 | ask */
    uint64_t shares; /* sum over its orders */
    uint32_t orders;
    uint32_t prev; /* the next better level, NIL at the best */
    uint32_t next; /* the next worse level, NIL at the worst */
    uint32_t unused;
} book_lvl_t;

static_assert(sizeof(book_ord_t) == 16, "an order is 16 bytes");
static_assert(sizeof(book_lvl_t) == 32, "a level is 32 bytes");

static inline book_ord_t *ord_at(const book_t *b, uint32_t i)
{
    return (book_ord_t *)pool_at(&b->orders, i);
}

static inline book_lvl_t *lvl_at(const book_t *b, uint32_t i)
{
    return (book_lvl_t *)pool_at(&b->levels, i);
}

static inline uint64_t lvl_key(int64_t price, uint16_t locate, unsigned ask)
{
    return (uint64_t)price << KEY_PRICE_SHIFT | (uint64_t)locate << 1 | ask;
}

static inline int64_t key_price(uint64_t key)
{
    return (int64_t)(key >> KEY_PRICE_SHIFT);
}

static inline uint16_t key_locate(uint64_t key)
{
    return (uint16_t)(key >> 1);
}

static inline unsigned key_ask(uint64_t key)
{
    return (unsigned)(key & 1);
}

static inline book_side_t *side_of(const book_t *b, uint16_t locate, unsigned ask)
{
    return &b->sides[(size_t)locate * 2 + ask];
}

/* The upper 32 bits of the key's hash: the fingerprint kept in the slot, whose top bits are
 * also the home slot, so backward-shift deletion can find any entry's home from its slot. */
static inline uint32_t hash_fp(uint64_t key)
{
    return (uint32_t)((key * HASH_MUL) >> 32);
}

static inline uint64_t slot_make(uint32_t fp, uint32_t idx)
{
    return (uint64_t)fp << 32 | (uint64_t)(idx + 1);
}

/* An order reference's fingerprint. ITCH hands out references in sequence, and most orders
 * die young, so the live orders a stream touches are mostly recent ones: a block of
 * REF_BLOCK consecutive references shares one hashed base and takes consecutive home slots
 * (two cache lines), while blocks scatter like any hash. The block offset is added above the
 * shift, so the home slot stays fp >> shift and fingerprints within a block stay distinct. */
#define REF_BLOCK_BITS 4
static inline uint32_t ref_fp(const book_t *b, uint64_t ref)
{
    return hash_fp(ref >> REF_BLOCK_BITS) +
           ((uint32_t)(ref & ((1u << REF_BLOCK_BITS) - 1)) << b->oshift);
}

/* Slot holding ref (*idx = its order) or the empty slot where ref would go (*idx = NIL). The
 * load factor is at most 1/2, so the probe always ends. */
static inline uint32_t ohash_find(const book_t *b, uint64_t ref, uint32_t *idx)
{
    uint32_t fp = ref_fp(b, ref);
    uint32_t i = fp >> b->oshift;
    for (;;) {
        uint64_t s = b->ohash[i];
        if (s == 0) {
            *idx = NIL;
            return i;
        }
        if ((uint32_t)(s >> 32) == fp) {
            uint32_t o = (uint32_t)s - 1;
            if (ord_at(b, o)->ref == ref) {
                *idx = o;
                return i;
            }
        }
        i = (i + 1) & b->omask;
    }
}

/* The same for a level key. */
static inline uint32_t lhash_find(const book_t *b, uint64_t key, uint32_t *idx)
{
    uint32_t fp = hash_fp(key);
    uint32_t i = fp >> b->lshift;
    for (;;) {
        uint64_t s = b->lhash[i];
        if (s == 0) {
            *idx = NIL;
            return i;
        }
        if ((uint32_t)(s >> 32) == fp) {
            uint32_t l = (uint32_t)s - 1;
            if (lvl_at(b, l)->key == key) {
                *idx = l;
                return i;
            }
        }
        i = (i + 1) & b->lmask;
    }
}

/* Empty slot i, then pull back every later entry of the run that may live at or before the
 * hole (its home is not cyclically in (hole, j]), so no lookup ever needs a tombstone. */
static inline void hash_delete(uint64_t *t, uint32_t mask, uint32_t shift, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t s = t[j];
        if (s == 0)
            break;
        uint32_t home = (uint32_t)(s >> 32) >> shift;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t[i] = s;
            i = j;
        }
    }
    t[i] = 0;
}

/* Is price a better than price b on this side? */
static inline bool better(int64_t a, int64_t b, unsigned ask)
{
    return ask ? a < b : a > b;
}

static inline int64_t lvl_price(const book_t *b, uint32_t li)
{
    return key_price(lvl_at(b, li)->key);
}

/* The first level worse than p, walking at most max steps from level *at (on the side; p is
 * strictly between the side's best and worst prices, so neither direction runs off the list).
 * NIL if not reached, with *at where the walk stopped. */
static inline uint32_t walk_to(const book_t *b, uint32_t *at, int64_t p, unsigned ask, uint32_t max)
{
    uint32_t cur = *at;
    if (better(lvl_price(b, cur), p, ask)) {
        for (uint32_t k = 0; k < max; k++) {
            uint32_t nx = lvl_at(b, cur)->next;
            if (!better(lvl_price(b, nx), p, ask))
                return nx;
            cur = nx;
        }
    } else {
        for (uint32_t k = 0; k < max; k++) {
            uint32_t pv = lvl_at(b, cur)->prev;
            if (better(lvl_price(b, pv), p, ask))
                return cur;
            cur = pv;
        }
    }
    *at = cur;
    return NIL;
}

/* A level of the same symbol side a few ticks from p, found through the level table, or NIL.
 * The tick guessed is ITCH's grid ($0.01 from $1 up, $0.0001 below); a wrong guess only
 * costs the probes, since the caller walks from whatever it finds. */
static uint32_t neighbour(const book_t *b, uint64_t key, int64_t p)
{
    int64_t tick = p >= EV_PRICE_SCALE ? 100 : 1;
    for (int64_t j = 1; j <= NEIGHBOUR_PROBES; j++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            int64_t q = p + dir * j * tick;
            if (q < 0 || q > BOOK_PRICE_MAX)
                continue;
            uint32_t li;
            uint64_t k = (key & ((1ull << KEY_PRICE_SHIFT) - 1)) | (uint64_t)q << KEY_PRICE_SHIFT;
            lhash_find(b, k, &li);
            if (li != NIL)
                return li;
        }
    }
    return NIL;
}

/* Where a new level at price p (not on the side) goes: *up and *down get its better and worse
 * neighbours (NIL past an end). Beyond either end it goes straight to the end; otherwise a
 * short walk from the end nearer in price, then a walk from a level a few ticks away if the
 * table has one (deep books), else the long walk on. */
static void side_place(const book_t *b, const book_side_t *sd, uint64_t key, int64_t p,
                       unsigned ask, uint32_t *up, uint32_t *down)
{
    *up = *down = NIL;
    if (sd->best == NIL)
        return;
    int64_t pb = lvl_price(b, sd->best), pw = lvl_price(b, sd->worst);
    if (better(p, pb, ask)) {
        *down = sd->best;
    } else if (better(pw, p, ask)) {
        *up = sd->worst;
    } else {
        int64_t db = p > pb ? p - pb : pb - p, dw = p > pw ? p - pw : pw - p;
        uint32_t at = db <= dw ? sd->best : sd->worst;
        uint32_t d = walk_to(b, &at, p, ask, SHORT_WALK);
        if (d == NIL) {
            uint32_t hint = neighbour(b, key, p);
            if (hint != NIL)
                at = hint;
            d = walk_to(b, &at, p, ask, UINT32_MAX);
        }
        *down = d;
        *up = lvl_at(b, d)->prev;
    }
}

/* Link level li between up and down (either NIL at an end). */
static inline void side_link(book_t *b, book_side_t *sd, book_lvl_t *lv, uint32_t li, uint32_t up,
                             uint32_t down)
{
    lv->prev = up;
    lv->next = down;
    if (up == NIL)
        sd->best = li;
    else
        lvl_at(b, up)->next = li;
    if (down == NIL)
        sd->worst = li;
    else
        lvl_at(b, down)->prev = li;
    sd->levels++;
}

/* Unlink an empty level, drop it from the level table and return it to the pool. */
static void level_remove(book_t *b, book_side_t *sd, book_lvl_t *lv)
{
    if (lv->prev == NIL)
        sd->best = lv->next;
    else
        lvl_at(b, lv->prev)->next = lv->next;
    if (lv->next == NIL)
        sd->worst = lv->prev;
    else
        lvl_at(b, lv->next)->prev = lv->prev;
    sd->levels--;
    uint32_t li;
    uint32_t pos = lhash_find(b, lv->key, &li);
    hash_delete(b->lhash, b->lmask, b->lshift, pos);
    pool_put(&b->levels, lv);
}

/* Put order o (shares) on the level for (price, locate, ask), making the level if needed.
 * false when a new level was needed and the level pool is empty (nothing changed). */
static inline bool order_attach(book_t *b, book_ord_t *o, int64_t price, uint16_t locate,
                                unsigned ask, uint32_t shares)
{
    uint64_t key = lvl_key(price, locate, ask);
    book_side_t *sd = side_of(b, locate, ask);
    uint32_t li;
    uint32_t pos = lhash_find(b, key, &li);
    book_lvl_t *lv;
    if (mem_likely(li != NIL)) {
        lv = lvl_at(b, li);
    } else {
        lv = pool_get(&b->levels);
        if (mem_unlikely(lv == NULL))
            return false;
        li = pool_index(&b->levels, lv);
        lv->key = key;
        lv->shares = 0;
        lv->orders = 0;
        b->lhash[pos] = slot_make(hash_fp(key), li);
        uint32_t up, down;
        side_place(b, sd, key, price, ask, &up, &down);
        side_link(b, sd, lv, li, up, down);
    }
    lv->shares += shares;
    lv->orders++;
    sd->orders++;
    o->shares = shares;
    o->level = li;
    return true;
}

/* Take order o off its level (removing the level if it empties); o itself is untouched. */
static inline void order_detach(book_t *b, const book_ord_t *o)
{
    book_lvl_t *lv = lvl_at(b, o->level);
    book_side_t *sd = side_of(b, key_locate(lv->key), key_ask(lv->key));
    lv->shares -= o->shares;
    lv->orders--;
    sd->orders--;
    if (lv->orders == 0)
        level_remove(b, sd, lv);
}

/* Describe order o in fill (shares and remaining are the caller's). */
static inline void fill_order(const book_t *b, const book_ord_t *o, book_fill_t *fill)
{
    uint64_t key = lvl_at(b, o->level)->key;
    fill->ref = o->ref;
    fill->price = key_price(key);
    fill->locate = key_locate(key);
    fill->side = key_ask(key) ? 'S' : 'B';
}

static book_result_t count(_Atomic uint64_t *c, book_result_t r)
{
    MEM_ST(*c, MEM_LD(*c) + 1);
    return r;
}

static inline bool add_fields_ok(const book_t *b, uint16_t locate, uint64_t shares, int64_t price)
{
    return locate != 0 && locate <= b->cfg.max_locate && shares != 0 && shares <= BOOK_SHARES_MAX &&
           price >= 0 && price <= BOOK_PRICE_MAX;
}

static book_result_t apply_add(book_t *b, const ev_t *e)
{
    if (mem_unlikely(!add_fields_ok(b, e->locate, e->shares, e->price) ||
                     (e->side != 'B' && e->side != 'S')))
        return count(&b->invalid, BOOK_INVALID);
    uint32_t oi;
    uint32_t pos = ohash_find(b, e->ref, &oi);
    if (mem_unlikely(oi != NIL))
        return count(&b->dup_refs, BOOK_DUP_REF);
    book_ord_t *o = pool_get(&b->orders);
    if (mem_unlikely(o == NULL))
        return count(&b->orders_exhausted, BOOK_NO_ORDER);
    if (mem_unlikely(
            !order_attach(b, o, e->price, e->locate, e->side == 'S', (uint32_t)e->shares))) {
        pool_put(&b->orders, o);
        return count(&b->levels_exhausted, BOOK_NO_LEVEL);
    }
    o->ref = e->ref;
    b->ohash[pos] = slot_make(ref_fp(b, e->ref), pool_index(&b->orders, o));
    return count(&b->applied, BOOK_OK);
}

/* E, C, X: take shares off the order; all of them (or more: an anomaly) removes it. */
static book_result_t apply_reduce(book_t *b, const ev_t *e, book_fill_t *fill)
{
    uint32_t oi;
    uint32_t pos = ohash_find(b, e->ref, &oi);
    if (mem_unlikely(oi == NIL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
    book_ord_t *o = ord_at(b, oi);
    fill_order(b, o, fill);
    fill->exec_price = e->type == 'E' ? fill->price : e->type == 'C' ? e->price : 0;
    if (e->shares < o->shares) {
        uint32_t n = (uint32_t)e->shares;
        o->shares -= n;
        lvl_at(b, o->level)->shares -= n;
        fill->shares = n;
        fill->remaining = o->shares;
        return count(&b->applied, BOOK_OK);
    }
    fill->shares = o->shares;
    book_result_t r = BOOK_OK;
    if (mem_unlikely(e->shares > o->shares)) {
        count(&b->anomalies, BOOK_ANOMALY);
        r = BOOK_ANOMALY;
    }
    hash_delete(b->ohash, b->omask, b->oshift, pos);
    order_detach(b, o);
    pool_put(&b->orders, o);
    return count(&b->applied, r);
}

static book_result_t apply_delete(book_t *b, const ev_t *e, book_fill_t *fill)
{
    uint32_t oi;
    uint32_t pos = ohash_find(b, e->ref, &oi);
    if (mem_unlikely(oi == NIL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
    book_ord_t *o = ord_at(b, oi);
    fill_order(b, o, fill);
    fill->shares = o->shares;
    hash_delete(b->ohash, b->omask, b->oshift, pos);
    order_detach(b, o);
    pool_put(&b->orders, o);
    return count(&b->applied, BOOK_OK);
}

/* U: the original goes (whatever happens next); the new reference gets the original's order
 * object, locate and side with the new price and shares, at the back of its level. */
static book_result_t apply_replace(book_t *b, const ev_t *e, book_fill_t *fill)
{
    uint32_t oi;
    uint32_t pos = ohash_find(b, e->ref, &oi);
    if (mem_unlikely(oi == NIL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
    book_ord_t *o = ord_at(b, oi);
    fill_order(b, o, fill);
    fill->shares = o->shares;
    uint16_t locate = fill->locate;
    unsigned ask = fill->side == 'S';
    hash_delete(b->ohash, b->omask, b->oshift, pos);
    order_detach(b, o);
    if (mem_unlikely(!add_fields_ok(b, locate, e->shares, e->price))) {
        pool_put(&b->orders, o);
        return count(&b->invalid, BOOK_INVALID);
    }
    uint32_t dup;
    pos = ohash_find(b, e->new_ref, &dup);
    if (mem_unlikely(dup != NIL)) {
        pool_put(&b->orders, o);
        return count(&b->dup_refs, BOOK_DUP_REF);
    }
    if (mem_unlikely(!order_attach(b, o, e->price, locate, ask, (uint32_t)e->shares))) {
        pool_put(&b->orders, o);
        return count(&b->levels_exhausted, BOOK_NO_LEVEL);
    }
    o->ref = e->new_ref;
    b->ohash[pos] = slot_make(ref_fp(b, e->new_ref), oi);
    return count(&b->applied, BOOK_OK);
}

static inline book_result_t apply_one(book_t *b, const ev_t *e, book_fill_t *fill)
{
    memset(fill, 0, sizeof *fill);
    MEM_ST(b->events, MEM_LD(b->events) + 1);
    switch (e->type) {
    case 'A':
    case 'F':
        return apply_add(b, e);
    case 'E':
    case 'C':
    case 'X':
        return apply_reduce(b, e, fill);
    case 'D':
        return apply_delete(b, e, fill);
    case 'U':
        return apply_replace(b, e, fill);
    default:
        return count(&b->ignored, BOOK_IGNORED);
    }
}

book_result_t book_apply(book_t *b, const ev_t *e, book_fill_t *fill)
{
    book_fill_t scratch;
    return apply_one(b, e, fill ? fill : &scratch);
}

const char *book_result_name(book_result_t r)
{
    static const char *const names[BOOK_RESULT_COUNT] = {
        "ok", "ignored", "anomaly", "unknown-ref", "dup-ref", "no-order", "no-level", "invalid"};
    return (unsigned)r < BOOK_RESULT_COUNT ? names[r] : "?";
}

/* ---- queries ------------------------------------------------------------------------------ */

int book_best(const book_t *b, uint16_t locate, int64_t *bid_px, uint64_t *bid_sz, int64_t *ask_px,
              uint64_t *ask_sz)
{
    if (locate > b->cfg.max_locate)
        return -EINVAL;
    int mask = 0;
    int64_t px[2] = {0, 0};
    uint64_t sz[2] = {0, 0};
    for (unsigned ask = 0; ask < 2; ask++) {
        uint32_t li = side_of(b, locate, ask)->best;
        if (li != NIL) {
            const book_lvl_t *lv = lvl_at(b, li);
            px[ask] = key_price(lv->key);
            sz[ask] = lv->shares;
            mask |= 1 << ask;
        }
    }
    if (bid_px)
        *bid_px = px[0];
    if (bid_sz)
        *bid_sz = sz[0];
    if (ask_px)
        *ask_px = px[1];
    if (ask_sz)
        *ask_sz = sz[1];
    return mask;
}

int book_depth(const book_t *b, uint16_t locate, uint8_t side, uint32_t n, book_level_t *out)
{
    if (locate > b->cfg.max_locate || (side != 'B' && side != 'S'))
        return -EINVAL;
    uint32_t k = 0;
    for (uint32_t li = side_of(b, locate, side == 'S')->best; li != NIL && k < n; k++) {
        const book_lvl_t *lv = lvl_at(b, li);
        out[k].price = key_price(lv->key);
        out[k].shares = lv->shares;
        out[k].orders = lv->orders;
        li = lv->next;
    }
    return (int)k;
}

int book_order(const book_t *b, uint64_t ref, book_order_t *out)
{
    uint32_t oi;
    ohash_find(b, ref, &oi);
    if (oi == NIL)
        return -ENOENT;
    const book_ord_t *o = ord_at(b, oi);
    uint64_t key = lvl_at(b, o->level)->key;
    out->ref = ref;
    out->price = key_price(key);
    out->shares = o->shares;
    out->locate = key_locate(key);
    out->side = key_ask(key) ? 'S' : 'B';
    return 0;
}

int book_symbol(const book_t *b, uint16_t locate, book_symbol_t *out)
{
    if (locate > b->cfg.max_locate)
        return -EINVAL;
    for (unsigned ask = 0; ask < 2; ask++) {
        const book_side_t *sd = side_of(b, locate, ask);
        out->orders[ask] = sd->orders;
        out->levels[ask] = sd->levels;
    }
    return 0;
}

void book_stats(const book_t *b, book_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->max_orders = b->cfg.max_orders;
    out->max_levels = b->cfg.max_levels;
    out->max_locate = b->cfg.max_locate;
    if (b->ohash == NULL)
        return;
    out->orders = pool_in_use(&b->orders);
    out->levels = pool_in_use(&b->levels);
    out->orders_peak = MEM_LD(b->orders.peak);
    out->levels_peak = MEM_LD(b->levels.peak);
    out->events = MEM_LD(b->events);
    out->applied = MEM_LD(b->applied);
    out->ignored = MEM_LD(b->ignored);
    out->unknown_refs = MEM_LD(b->unknown_refs);
    out->dup_refs = MEM_LD(b->dup_refs);
    out->orders_exhausted = MEM_LD(b->orders_exhausted);
    out->levels_exhausted = MEM_LD(b->levels_exhausted);
    out->anomalies = MEM_LD(b->anomalies);
    out->invalid = MEM_LD(b->invalid);
}

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t book_checksum(const book_t *b, uint16_t locate)
{
    if (locate > b->cfg.max_locate)
        return 0;
    uint64_t h = 0x6a09e667f3bcc908ull ^ locate;
    for (unsigned ask = 0; ask < 2; ask++) {
        const book_side_t *sd = side_of(b, locate, ask);
        uint64_t sidebyte = ask ? 'S' : 'B';
        for (uint32_t li = sd->best; li != NIL;) {
            const book_lvl_t *lv = lvl_at(b, li);
            h = mix(h ^ (uint64_t)key_price(lv->key));
            h = mix(h ^ lv->shares);
            h = mix(h ^ ((uint64_t)lv->orders << 8 | sidebyte));
            li = lv->next;
        }
        h = mix(h ^ sd->levels);
    }
    return h;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void book_config_default(book_config_t *cfg)
{
    cfg->max_orders = 1u << 21;
    cfg->max_levels = 1u << 20;
    cfg->max_locate = BOOK_MAX_LOCATE;
}

/* log2 of the table size for capacity objects: a power of two >= 2 * capacity. */
static unsigned table_log2(uint32_t capacity)
{
    unsigned k = MIN_SLOTS_LOG2;
    while ((1ull << k) < 2ull * capacity)
        k++;
    return k;
}

static size_t side_bytes(const book_config_t *cfg)
{
    return ((size_t)cfg->max_locate + 1) * 2 * sizeof(book_side_t);
}

static void sides_clear(book_t *b)
{
    for (size_t i = 0; i < ((size_t)b->cfg.max_locate + 1) * 2; i++)
        b->sides[i] = (book_side_t){.best = NIL, .worst = NIL};
}

int book_init(book_t *b, const book_config_t *cfg)
{
    memset(b, 0, sizeof *b);
    if (cfg->max_orders == 0 || cfg->max_orders > BOOK_MAX_CAPACITY || cfg->max_levels == 0 ||
        cfg->max_levels > BOOK_MAX_CAPACITY || cfg->max_locate == 0 ||
        cfg->max_locate > BOOK_MAX_LOCATE)
        return -EINVAL;
    b->cfg = *cfg;
    unsigned ok = table_log2(cfg->max_orders), lk = table_log2(cfg->max_levels);
    b->omask = (uint32_t)((1ull << ok) - 1);
    b->lmask = (uint32_t)((1ull << lk) - 1);
    b->oshift = 32 - ok;
    b->lshift = 32 - lk;
    int rc =
        pool_init(&b->orders, "book.orders", MEM_TAG_BOOK, sizeof(book_ord_t), 16, cfg->max_orders);
    if (rc == 0)
        rc = pool_init(&b->levels, "book.levels", MEM_TAG_BOOK, sizeof(book_lvl_t), 32,
                       cfg->max_levels);
    if (rc != 0)
        goto fail;
    rc = -ENOMEM;
    b->ohash = mem_alloc_at(MEM_TAG_BOOK, ((size_t)b->omask + 1) * sizeof(uint64_t), MEM_CACHE_LINE,
                            MEM_ZERO | MEM_PREFAULT, __FILE__, __LINE__);
    b->lhash = mem_alloc_at(MEM_TAG_BOOK, ((size_t)b->lmask + 1) * sizeof(uint64_t), MEM_CACHE_LINE,
                            MEM_ZERO | MEM_PREFAULT, __FILE__, __LINE__);
    b->sides = mem_alloc_prefault(MEM_TAG_BOOK, side_bytes(cfg), MEM_CACHE_LINE);
    if (b->ohash == NULL || b->lhash == NULL || b->sides == NULL)
        goto fail;
    sides_clear(b);
    return 0;
fail:
    book_fini(b);
    memset(b, 0, sizeof *b);
    return rc;
}

void book_fini(book_t *b)
{
    if (b->cfg.max_orders == 0)
        return; /* zeroed, or finished already */
    pool_fini(&b->orders);
    pool_fini(&b->levels);
    mem_free(MEM_TAG_BOOK, b->ohash, ((size_t)b->omask + 1) * sizeof(uint64_t));
    mem_free(MEM_TAG_BOOK, b->lhash, ((size_t)b->lmask + 1) * sizeof(uint64_t));
    mem_free(MEM_TAG_BOOK, b->sides, side_bytes(&b->cfg));
    b->ohash = b->lhash = NULL;
    b->sides = NULL;
    b->cfg.max_orders = 0;
}

void book_reset(book_t *b)
{
    if (b->ohash == NULL)
        return;
    memset(b->ohash, 0, ((size_t)b->omask + 1) * sizeof(uint64_t));
    memset(b->lhash, 0, ((size_t)b->lmask + 1) * sizeof(uint64_t));
    sides_clear(b);
    pool_reset(&b->orders);
    pool_reset(&b->levels);
}
