/*
 * book: the order books (see book.h for the design). This file holds the order tables (16-byte
 * orders; the direct table indexed by reference, the far hash for displaced orders; an empty
 * slot has 0 shares), the level table (linear probing, backward-shift deletion, an 8-byte slot of
 * 32 hash bits and index + 1), the per-side price windows, the per-side lists of the levels
 * outside the windows, the event handlers, the two-stage prefetch and the queries (which merge
 * a side's window and list, best first). A level's key packs price << 17 | locate << 1
 * | ask, so one 64-bit compare identifies it and its locate and side need no field of their own.
 * The book owns the level pool, all tables, the side array and the windows, all allocated in
 * book_init and freed in book_fini; the handlers only move orders and levels between them.
 */
#include "analytics/book.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define NIL              UINT32_MAX
#define HASH_MUL         0x9e3779b97f4a7c15ull /* Fibonacci hashing: 2^64 / golden ratio */
#define KEY_PRICE_SHIFT  17
#define MIN_SLOTS_LOG2   4
#define SHORT_WALK       4  /* levels walked from an end before asking the table for a neighbour */
#define NEIGHBOUR_PROBES 2  /* ticks tried on each side of a new price */
#define BOOK_WIN         64 /* ticks in a side's price window */
#define BOOK_WIN_MAX     32768 /* windows in a book at most (16,384 symbols with both sides) */
#define DIR_SCALE_LOG2   0     /* direct order table: 2^this times max_orders (rounded up) */

/* An order: one 16-byte slot of the order table. Its price, locate and side are its level's.
 * shares == 0 marks an empty slot (a live order always has at least one share). */
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
static_assert(sizeof(book_side_t) == 32, "a locate's two sides are one cache line");

static inline book_lvl_t *lvl_at(const book_t *b, uint32_t i)
{
    return &b->lvl[i]; /* pool_at(&b->levels, i), with the size known here */
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

/* ---- the order table ------------------------------------------------------------------------
 * ITCH hands out references in sequence and most orders die young, so the live orders are mostly
 * a dense run of recent references. The direct table holds order ref in slot ref & dmask (the
 * slot keeps the whole reference, so a lookup validates it with one compare): a new order is one
 * store into the slot after the previous order's, and a delete clears a slot with no probe and
 * no shifting. An order whose slot a newer reference needs (it has lived through a whole table's
 * worth of later references, or the references are not sequential) moves to the far table, an
 * open-addressing hash of max_orders capacity. far_max (the highest reference the far table has
 * held since it was last empty) lets a lookup of a newer reference skip the far table, so the
 * hot path never touches it; only old orders pay a probe there.
 *
 * Far-table home slots: a block of 256 consecutive references shares one hashed base and takes
 * consecutive home slots (the orders a stream moves out together sit together), while blocks
 * scatter like any hash. */
#define REF_BLOCK_BITS 8
static inline uint32_t ref_home(const book_t *b, uint64_t ref)
{
    return ((hash_fp(ref >> REF_BLOCK_BITS) >> b->fshift) +
            (uint32_t)(ref & ((1u << REF_BLOCK_BITS) - 1))) &
           b->fmask;
}

static book_ord_t *far_find(const book_t *b, uint64_t ref)
{
    uint32_t i = ref_home(b, ref);
    for (;;) {
        book_ord_t *o = &b->ofar[i];
        if (o->shares == 0)
            return NULL;
        if (o->ref == ref)
            return o;
        i = (i + 1) & b->fmask;
    }
}

/* The live order ref, or NULL. */
static inline book_ord_t *ord_find(const book_t *b, uint64_t ref)
{
    book_ord_t *o = &b->odir[ref & b->dmask];
    if (likely(o->ref == ref && o->shares != 0))
        return o;
    if (likely(ref > b->far_max))
        return NULL;
    return far_find(b, ref);
}

/* Move order o (a live direct slot's occupant) to the far table. Its load stays at most 1/2:
 * it has twice max_orders slots, and no more than max_orders orders are live. */
static __attribute__((noinline)) void far_insert(book_t *b, const book_ord_t *o)
{
    uint32_t i = ref_home(b, o->ref);
    while (b->ofar[i].shares != 0)
        i = (i + 1) & b->fmask;
    b->ofar[i] = *o;
    if (o->ref > b->far_max)
        b->far_max = o->ref;
    uint32_t n = MEM_LD(b->far_live) + 1;
    MEM_ST(b->far_live, n);
    if (n > MEM_LD(b->far_peak))
        MEM_ST(b->far_peak, n);
    MEM_ST(b->far_moves, MEM_LD(b->far_moves) + 1);
}

/* Empty far slot o, then pull back every later entry of its run that may live at or before the
 * hole (its home is not cyclically in (hole, j]), so no lookup ever needs a tombstone. */
static __attribute__((noinline)) void far_delete(book_t *b, book_ord_t *o)
{
    uint32_t mask = b->fmask, i = (uint32_t)(o - b->ofar), j = i;
    for (;;) {
        j = (j + 1) & mask;
        book_ord_t *s = &b->ofar[j];
        if (s->shares == 0)
            break;
        uint32_t home = ref_home(b, s->ref);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            b->ofar[i] = *s;
            i = j;
        }
    }
    b->ofar[i].shares = 0;
    uint32_t n = MEM_LD(b->far_live) - 1;
    MEM_ST(b->far_live, n);
    if (n == 0)
        b->far_max = 0; /* nothing far: every lookup stays in the direct table */
}

static inline bool ord_is_direct(const book_t *b, const book_ord_t *o)
{
    return (uintptr_t)o - (uintptr_t)b->odir < ((uintptr_t)b->dmask + 1) * sizeof *o;
}

/* Remove live order o, found by ord_find. */
static inline void ord_delete(book_t *b, book_ord_t *o)
{
    if (likely(ord_is_direct(b, o)))
        o->shares = 0;
    else
        far_delete(b, o);
    MEM_ST(b->olive, MEM_LD(b->olive) - 1);
}

/* Store new order n (its reference not live) in its direct slot, moving a live occupant far. */
static inline void ord_insert(book_t *b, const book_ord_t *n)
{
    book_ord_t *d = &b->odir[n->ref & b->dmask];
    if (unlikely(d->shares != 0))
        far_insert(b, d);
    *d = *n;
    uint32_t live = MEM_LD(b->olive) + 1;
    MEM_ST(b->olive, live);
    if (live > MEM_LD(b->opeak))
        MEM_ST(b->opeak, live);
}

/* A level key's fingerprint. Activity on a side clusters within a few ticks of its best price,
 * so, as with references, a block of LVL_BLOCK consecutive ticks ($0.01 from $1 up, $0.0001
 * below) of one symbol side shares one hashed base and takes consecutive home slots: the top
 * of a busy book sits in one or two cache lines of the table, and the neighbour probes of
 * side_place land there too. Prices off the grid share a tick's fingerprint; the key compare on
 * the level tells them apart. */
#define LVL_BLOCK_BITS 3
static inline uint32_t lvl_fp(const book_t *b, uint64_t key)
{
    int64_t p = key_price(key);
    uint64_t t = p >= EV_PRICE_SCALE ? (uint64_t)p / 100 : (uint64_t)p;
    uint64_t base =
        (t >> LVL_BLOCK_BITS) << KEY_PRICE_SHIFT | (key & ((1ull << KEY_PRICE_SHIFT) - 1));
    return hash_fp(base) + ((uint32_t)(t & ((1u << LVL_BLOCK_BITS) - 1)) << b->lshift);
}

/* Slot holding a level key (*idx = its level) or the empty slot where it would go (*idx =
 * NIL). The load factor is at most 1/2, so the probe always ends. */
static inline uint32_t lhash_find(const book_t *b, uint64_t key, uint32_t *idx)
{
    uint32_t fp = lvl_fp(b, key);
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
    if (sd->head == NIL)
        return;
    int64_t pb = lvl_price(b, sd->head), pw = lvl_price(b, sd->tail);
    if (better(p, pb, ask)) {
        *down = sd->head;
    } else if (better(pw, p, ask)) {
        *up = sd->tail;
    } else {
        int64_t db = p > pb ? p - pb : pb - p, dw = p > pw ? p - pw : pw - p;
        uint32_t at = db <= dw ? sd->head : sd->tail;
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

/* Link level li into the side's list between up and down (either NIL at an end). */
static inline void side_link(book_t *b, book_side_t *sd, book_lvl_t *lv, uint32_t li, uint32_t up,
                             uint32_t down)
{
    lv->prev = up;
    lv->next = down;
    if (up == NIL)
        sd->head = li;
    else
        lvl_at(b, up)->next = li;
    if (down == NIL)
        sd->tail = li;
    else
        lvl_at(b, down)->prev = li;
}

/* Take level lv off the side's list. */
static inline void side_unlink(book_t *b, book_side_t *sd, const book_lvl_t *lv)
{
    if (lv->prev == NIL)
        sd->head = lv->next;
    else
        lvl_at(b, lv->prev)->next = lv->next;
    if (lv->next == NIL)
        sd->tail = lv->prev;
    else
        lvl_at(b, lv->next)->prev = lv->prev;
}

/* Link level li (key, price p; on the side, not in its window) into the list where it belongs. */
static inline void side_insert(book_t *b, book_side_t *sd, uint32_t li, uint64_t key, int64_t p,
                               unsigned ask)
{
    uint32_t up, down;
    side_place(b, sd, key, p, ask, &up, &down);
    side_link(b, sd, lvl_at(b, li), li, up, down);
}

/* ---- the price window ---------------------------------------------------------------------
 * A side that has a window keeps its levels at on-grid prices ($0.01 multiples) within
 * BOOK_WIN ticks from w->base in w->lvl[tick - base], with bit (tick - base) of w->occ set, and
 * neither in the level table nor on the side's list (their prev and next are NIL); every other
 * level of the side is in the table and on the list. A lookup in range is one load from a line
 * the side touches all the time; the bitmap orders the window's levels, so making or removing
 * one touches no other level (the linked neighbours of the old layout were a third of the add's
 * misses). The window follows the best price: whenever a new level is made and the best has left
 * the window's comfort zone, win_recenter moves it (levels move between the array and the list;
 * at most 2 * BOOK_WIN of them). */
#define WIN_TICK    100 /* $0.01 */
#define WIN_MARGIN  8   /* ticks of room kept on the better side of the best price */
#define WIN_COMFORT (BOOK_WIN / 2)

typedef struct book_win {
    int64_t base; /* tick of lvl[0] */
    uint64_t occ; /* bit k: lvl[k] holds a level */
    uint32_t lvl[BOOK_WIN];
} book_win_t;

static_assert(BOOK_WIN == 64, "the occupancy bitmap is one 64-bit word");

/* The window slot of price p on a side with window w, or -1 (off the grid or out of range). */
static inline int win_slot(const book_win_t *w, int64_t p)
{
    int64_t t = p / WIN_TICK;
    if (t * WIN_TICK != p)
        return -1;
    uint64_t k = (uint64_t)(t - w->base);
    return k < BOOK_WIN ? (int)k : -1;
}

static inline book_win_t *win_of(const book_t *b, const book_side_t *sd)
{
    return sd->win == NIL ? NULL : &b->wins[sd->win];
}

/* Insert level li (key) into the level table; its slot must be free (the key is not there). */
static inline void lhash_insert(book_t *b, uint64_t key, uint32_t li)
{
    uint32_t cur;
    uint32_t pos = lhash_find(b, key, &cur);
    b->lhash[pos] = slot_make(lvl_fp(b, key), li);
}

static inline void lhash_remove(book_t *b, uint64_t key)
{
    uint32_t li;
    uint32_t pos = lhash_find(b, key, &li);
    hash_delete(b->lhash, b->lmask, b->lshift, pos);
}

/* The best level of the window (NIL: none) and its price. */
static inline uint32_t win_best(const book_win_t *w, unsigned ask, int64_t *px)
{
    if (w == NULL || w->occ == 0)
        return NIL;
    int j = ask ? __builtin_ctzll(w->occ) : 63 - __builtin_clzll(w->occ);
    *px = (w->base + j) * WIN_TICK;
    return w->lvl[j];
}

/* The side's best level (NIL when it is empty): the better of its window's best and the head of
 * its list. */
static inline uint32_t side_best(const book_t *b, const book_side_t *sd, unsigned ask)
{
    int64_t wp = 0;
    uint32_t wl = win_best(win_of(b, sd), ask, &wp);
    if (sd->head == NIL)
        return wl;
    if (wl == NIL || better(lvl_price(b, sd->head), wp, ask))
        return sd->head;
    return wl;
}

/* best_px after the best level went: the better of the window's best and the list's head. */
static inline void side_rebest(const book_t *b, book_side_t *sd, unsigned ask)
{
    uint32_t li = side_best(b, sd, ask);
    sd->best_px = li == NIL ? 0 : lvl_price(b, li);
}

/* Is the side's best price where its window wants it? (No window: a window is wanted.) */
static inline bool win_comfortable(const book_t *b, const book_side_t *sd, unsigned ask)
{
    const book_win_t *w = win_of(b, sd);
    if (sd->levels == 0)
        return true;
    int64_t p = sd->best_px;
    int64_t t = p / WIN_TICK;
    if (t * WIN_TICK != p)
        return true; /* an off-grid best: leave the window where it is */
    if (w == NULL)
        return sd->win == NIL && b->wused == b->nwin; /* no window left: nothing to do */
    int64_t k = t - w->base;
    return ask ? k >= 0 && k < WIN_COMFORT : k >= BOOK_WIN - WIN_COMFORT && k < BOOK_WIN;
}

/* Move (or first give) the side's window so that its best price sits WIN_MARGIN ticks from the
 * window's better end, moving levels between the window and the list (and level table) to keep
 * the rule above. */
static __attribute__((noinline)) void win_recenter(book_t *b, book_side_t *sd, unsigned ask)
{
    if (sd->win == NIL) {
        if (b->wused == b->nwin)
            return;
        sd->win = b->wused++;
        b->wins[sd->win].occ = 0;
        b->wins[sd->win].base = INT64_MIN / 2;
    }
    book_win_t *w = &b->wins[sd->win];
    int64_t tb = sd->best_px / WIN_TICK;
    int64_t nb = ask ? tb - WIN_MARGIN : tb - (BOOK_WIN - 1 - WIN_MARGIN);
    int64_t ob = w->base;
    uint64_t occ = w->occ, leave = 0;
    uint32_t old[BOOK_WIN];
    memcpy(old, w->lvl, sizeof old);
    w->base = nb;
    sd->wbase = (uint32_t)nb;
    w->occ = 0;
    /* levels of the old window: into the new one, or (after the loop below) out to the list */
    while (occ) {
        int k = __builtin_ctzll(occ);
        occ &= occ - 1;
        uint64_t nk = (uint64_t)(ob + k - nb);
        if (nk < BOOK_WIN) {
            w->lvl[nk] = old[k];
            w->occ |= 1ull << nk;
        } else {
            leave |= 1ull << k;
        }
    }
    /* on-grid levels of the list in the new range: into the window. The best is in the range,
     * so no level of the list is better than it: walk from the head until past the range. */
    for (uint32_t li = sd->head; li != NIL;) {
        book_lvl_t *lv = lvl_at(b, li);
        uint32_t next = lv->next;
        int64_t p = key_price(lv->key);
        int64_t t = p / WIN_TICK;
        if (ask ? t >= nb + BOOK_WIN : t < nb)
            break;
        if (t * WIN_TICK == p) {
            uint64_t nk = (uint64_t)(t - nb);
            side_unlink(b, sd, lv);
            lhash_remove(b, lv->key);
            lv->prev = lv->next = NIL; /* a window level is on no list */
            w->lvl[nk] = li;
            w->occ |= 1ull << nk;
        }
        li = next;
    }
    while (leave) {
        int k = __builtin_ctzll(leave);
        leave &= leave - 1;
        uint64_t key = lvl_at(b, old[k])->key;
        lhash_insert(b, key, old[k]);
        side_insert(b, sd, old[k], key, key_price(key), ask);
    }
}

/* The event changed the side's best price (or emptied the side, or gave it its first level):
 * say so in the fill, with the price as it stands (a later change in the same event, U's new
 * order, writes again, so the fill ends with the side's final best). */
static inline void fill_bbo(book_fill_t *fill, const book_side_t *sd, uint16_t locate, unsigned ask)
{
    fill->bbo_px = sd->best_px;
    fill->bbo_locate = locate;
    fill->bbo_side = ask ? 'S' : 'B';
}

/* Drop an empty level from the window or the list and level table, return it to the pool. */
static void level_remove(book_t *b, book_side_t *sd, book_lvl_t *lv, unsigned ask,
                         book_fill_t *fill)
{
    int64_t p = key_price(lv->key);
    uint16_t locate = key_locate(lv->key);
    book_win_t *w = win_of(b, sd);
    int k = w ? win_slot(w, p) : -1;
    if (k >= 0) {
        w->occ &= ~(1ull << k);
    } else {
        side_unlink(b, sd, lv);
        lhash_remove(b, lv->key);
    }
    pool_put(&b->levels, lv);
    if (--sd->levels == 0) {
        sd->best_px = 0;
        fill_bbo(fill, sd, locate, ask);
    } else if (p == sd->best_px) {
        side_rebest(b, sd, ask);
        fill_bbo(fill, sd, locate, ask);
    }
}

/* Put order o (shares) on the level for (price, locate, ask), making the level if needed.
 * false when a new level was needed and the level pool is empty (nothing changed). A new level
 * in the window is one bit and one slot: no other level is touched. */
static inline bool order_attach(book_t *b, book_ord_t *o, int64_t price, uint16_t locate,
                                unsigned ask, uint32_t shares, book_fill_t *fill)
{
    uint64_t key = lvl_key(price, locate, ask);
    book_side_t *sd = side_of(b, locate, ask);
    book_win_t *w = win_of(b, sd);
    int k = w ? win_slot(w, price) : -1;
    uint32_t li, pos = 0;
    if (k >= 0)
        li = w->occ >> k & 1 ? w->lvl[k] : NIL;
    else
        pos = lhash_find(b, key, &li);
    book_lvl_t *lv;
    if (likely(li != NIL)) {
        lv = lvl_at(b, li);
    } else {
        lv = pool_get(&b->levels);
        if (unlikely(lv == NULL))
            return false;
        li = (uint32_t)(lv - b->lvl);
        lv->key = key;
        lv->shares = 0;
        lv->orders = 0;
        if (k >= 0) {
            lv->prev = lv->next = NIL; /* a window level is on no list */
            w->lvl[k] = li;
            w->occ |= 1ull << k;
        } else {
            b->lhash[pos] = slot_make(lvl_fp(b, key), li);
            side_insert(b, sd, li, key, price, ask);
        }
        if (sd->levels++ == 0 || better(price, sd->best_px, ask)) {
            sd->best_px = price;
            fill_bbo(fill, sd, locate, ask);
        }
        if (unlikely(!win_comfortable(b, sd, ask)))
            win_recenter(b, sd, ask);
    }
    lv->shares += shares;
    lv->orders++;
    sd->orders++;
    o->shares = shares;
    o->level = li;
    return true;
}

/* Take order o off its level (removing the level if it empties); o itself is untouched. */
static inline void order_detach(book_t *b, const book_ord_t *o, book_fill_t *fill)
{
    book_lvl_t *lv = lvl_at(b, o->level);
    book_side_t *sd = side_of(b, key_locate(lv->key), key_ask(lv->key));
    lv->shares -= o->shares;
    lv->orders--;
    sd->orders--;
    if (lv->orders == 0)
        level_remove(b, sd, lv, key_ask(lv->key), fill);
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

static book_result_t apply_add(book_t *b, const ev_t *e, book_fill_t *fill)
{
    if (unlikely(!add_fields_ok(b, e->locate, e->shares, e->price) ||
                 (e->side != 'B' && e->side != 'S')))
        return count(&b->invalid, BOOK_INVALID);
    if (unlikely(ord_find(b, e->ref) != NULL))
        return count(&b->dup_refs, BOOK_DUP_REF);
    if (unlikely(MEM_LD(b->olive) == b->cfg.max_orders))
        return count(&b->orders_exhausted, BOOK_NO_ORDER);
    book_ord_t o = {.ref = e->ref};
    if (unlikely(
            !order_attach(b, &o, e->price, e->locate, e->side == 'S', (uint32_t)e->shares, fill)))
        return count(&b->levels_exhausted, BOOK_NO_LEVEL);
    ord_insert(b, &o);
    return count(&b->applied, BOOK_OK);
}

/* E, C, X: take shares off the order; all of them (or more: an anomaly) removes it. */
static book_result_t apply_reduce(book_t *b, const ev_t *e, book_fill_t *fill)
{
    book_ord_t *o = ord_find(b, e->ref);
    if (unlikely(o == NULL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
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
    if (unlikely(e->shares > o->shares)) {
        count(&b->anomalies, BOOK_ANOMALY);
        r = BOOK_ANOMALY;
    }
    order_detach(b, o, fill);
    ord_delete(b, o);
    return count(&b->applied, r);
}

static book_result_t apply_delete(book_t *b, const ev_t *e, book_fill_t *fill)
{
    book_ord_t *o = ord_find(b, e->ref);
    if (unlikely(o == NULL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
    fill_order(b, o, fill);
    fill->shares = o->shares;
    order_detach(b, o, fill);
    ord_delete(b, o);
    return count(&b->applied, BOOK_OK);
}

/* U's second half: the new order (the original is gone). */
static inline book_result_t replace_add(book_t *b, const ev_t *e, uint16_t locate, unsigned ask,
                                        book_fill_t *fill)
{
    if (unlikely(!add_fields_ok(b, locate, e->shares, e->price)))
        return count(&b->invalid, BOOK_INVALID);
    if (unlikely(ord_find(b, e->new_ref) != NULL))
        return count(&b->dup_refs, BOOK_DUP_REF);
    book_ord_t n = {.ref = e->new_ref};
    if (unlikely(!order_attach(b, &n, e->price, locate, ask, (uint32_t)e->shares, fill)))
        return count(&b->levels_exhausted, BOOK_NO_LEVEL);
    ord_insert(b, &n);
    return count(&b->applied, BOOK_OK);
}

/* U: the original goes (whatever happens next); the new reference gets the original's locate
 * and side with the new price and shares, at the back of its level. Both halves are on one side:
 * when the new order puts back the best price the removal took away, the fill reports no
 * change. */
static book_result_t apply_replace(book_t *b, const ev_t *e, book_fill_t *fill)
{
    book_ord_t *o = ord_find(b, e->ref);
    if (unlikely(o == NULL))
        return count(&b->unknown_refs, BOOK_UNKNOWN_REF);
    fill_order(b, o, fill);
    fill->shares = o->shares;
    uint16_t locate = fill->locate;
    unsigned ask = fill->side == 'S';
    const book_side_t *sd = side_of(b, locate, ask);
    int64_t px0 = sd->best_px;
    bool empty0 = sd->levels == 0;
    order_detach(b, o, fill);
    ord_delete(b, o);
    book_result_t r = replace_add(b, e, locate, ask, fill);
    if (fill->bbo_side && sd->best_px == px0 && (sd->levels == 0) == empty0) {
        fill->bbo_px = 0;
        fill->bbo_locate = 0;
        fill->bbo_side = 0;
    }
    return r;
}

static inline book_result_t apply_one(book_t *b, const ev_t *e, book_fill_t *fill)
{
    memset(fill, 0, sizeof *fill);
    MEM_ST(b->events, MEM_LD(b->events) + 1);
    book_result_t r;
    switch (e->type) {
    case 'A':
    case 'F':
        r = apply_add(b, e, fill);
        break;
    case 'E':
    case 'C':
    case 'X':
        r = apply_reduce(b, e, fill);
        break;
    case 'D':
        r = apply_delete(b, e, fill);
        break;
    case 'U':
        r = apply_replace(b, e, fill);
        break;
    default:
        r = count(&b->ignored, BOOK_IGNORED);
        break;
    }
    fill->result = (uint8_t)r;
    return r;
}

book_result_t book_apply(book_t *b, const ev_t *e, book_fill_t *fill)
{
    book_fill_t scratch;
    return apply_one(b, e, fill ? fill : &scratch);
}

/* Prefetch in two stages, so that no event waits on a chain of misses. BOOK_PREFETCH_FAR events
 * ahead: the line of the event's direct order slot (for an add, also its side). BOOK_PREFETCH_NEAR
 * ahead, when those have arrived: the level the order points at; for an add, the window's header
 * and the line of its slot (found from the side's wbase, so the window line is not waited for),
 * or the level table's home line. Stage 1 reads only what stage 0 asked for; nothing is written.
 * A third stage (3 events ahead: the add's level through the window slot, the neighbours of a
 * level a removal empties) was measured and dropped: its loads of lines stage 1 had only just
 * asked for stalled, and bench_book's paired rounds ran 15-17% slower with it than without. */
static inline bool is_add(uint8_t t)
{
    return t == 'A' || t == 'F';
}

static inline bool is_ref_keyed(uint8_t t)
{
    return t == 'E' || t == 'C' || t == 'X' || t == 'D' || t == 'U';
}

/* One line into the cache. Not __builtin_prefetch: GCC 12 at -O1 and above dropped every
 * prefetch of these branchy hint functions (book_prefetch compiled to a bare ret, and so did the
 * batch prefetch before it), so on x86 the hint is an asm statement the optimizer must keep. */
static inline void prefetch_line(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1);
#endif
}

/* Stage 0 tests no type: the event types come in no order a predictor can learn, and a branch
 * on them here cost a mispredict per event or so (callgrind --branch-sim). Every event hints its
 * reference's direct slot (an event without one, slot 0 for nothing) and its locate's line of
 * sides: an add needs its side, a removal's order_detach writes its side too (ITCH gives every
 * message its locate). */
static inline void prefetch_far(const book_t *b, const ev_t *e)
{
    prefetch_line(&b->odir[e->ref & b->dmask]);
    uint32_t loc = e->locate <= b->cfg.max_locate ? e->locate : 0;
    prefetch_line(&b->sides[(size_t)loc * 2]); /* both sides share one 64-byte line */
}

/* The level-table home line of an add that is not in its side's window. */
static inline void prefetch_lhash(const book_t *b, const ev_t *e)
{
    uint64_t key = lvl_key(e->price & BOOK_PRICE_MAX, e->locate, e->side == 'S');
    prefetch_line(&b->lhash[lvl_fp(b, key) >> b->lshift]);
}

static inline void prefetch_near(const book_t *b, const ev_t *e)
{
    if (is_ref_keyed(e->type)) {
        const book_ord_t *o = &b->odir[e->ref & b->dmask];
        if (o->ref == e->ref && o->shares != 0)
            prefetch_line(lvl_at(b, o->level));
    } else if (is_add(e->type) && e->locate <= b->cfg.max_locate) {
        const book_side_t *sd = side_of(b, e->locate, e->side == 'S');
        int64_t t = e->price / WIN_TICK;
        uint32_t k = (uint32_t)t - sd->wbase;
        if (sd->win != NIL && t * WIN_TICK == e->price && k < BOOK_WIN) {
            const book_win_t *w = &b->wins[sd->win];
            prefetch_line(&w->base);
            prefetch_line(&w->lvl[k]);
        } else {
            prefetch_lhash(b, e);
        }
    }
}

void book_prefetch(const book_t *b, const ev_t *e, int stage)
{
    if (stage == 0)
        prefetch_far(b, e);
    else
        prefetch_near(b, e);
}

/* ev[0..n) applied; ev[n..lim) only hinted. first: the run starts a batch, so its own first
 * events are hinted here (else the previous run hinted them). */
static inline size_t apply_run(book_t *b, const ev_t *ev, size_t n, size_t lim, bool first,
                               book_fill_t *fills)
{
    size_t changed = 0;
    book_fill_t scratch;
    if (first) {
        for (size_t i = 0; i < lim && i < BOOK_PREFETCH_FAR; i++)
            prefetch_far(b, &ev[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + BOOK_PREFETCH_FAR < lim)
            prefetch_far(b, &ev[i + BOOK_PREFETCH_FAR]);
        if (i + BOOK_PREFETCH_NEAR < lim)
            prefetch_near(b, &ev[i + BOOK_PREFETCH_NEAR]);
        book_result_t r = apply_one(b, &ev[i], fills ? &fills[i] : &scratch);
        changed += r == BOOK_OK || r == BOOK_ANOMALY;
    }
    return changed;
}

size_t book_apply_batch(book_t *b, const ev_t *ev, size_t n, book_fill_t *fills)
{
    return apply_run(b, ev, n, n, true, fills);
}

size_t book_apply_run(book_t *b, const ev_t *ev, size_t n, size_t ahead, int first,
                      book_fill_t *fills)
{
    return apply_run(b, ev, n, n + ahead, first != 0, fills);
}

const char *book_result_name(book_result_t r)
{
    static const char *const names[BOOK_RESULT_COUNT] = {
        "ok", "ignored", "anomaly", "unknown-ref", "dup-ref", "no-order", "no-level", "invalid"};
    return (unsigned)r < BOOK_RESULT_COUNT ? names[r] : "?";
}

/* ---- queries ------------------------------------------------------------------------------ */

/* A side's levels from best to worst: its window's (in bitmap order) merged with its list's. */
typedef struct side_iter {
    const book_t *b;
    const book_win_t *w;
    uint64_t occ;  /* window levels not given yet */
    uint32_t next; /* the list's next level */
    unsigned ask;
} side_iter_t;

static void side_iter_init(side_iter_t *it, const book_t *b, uint16_t locate, unsigned ask)
{
    const book_side_t *sd = side_of(b, locate, ask);
    it->b = b;
    it->w = win_of(b, sd);
    it->occ = it->w ? it->w->occ : 0;
    it->next = sd->head;
    it->ask = ask;
}

/* The next level, NIL at the end. */
static uint32_t side_iter_next(side_iter_t *it)
{
    uint32_t wl = NIL;
    int64_t wp = 0;
    int j = 0;
    if (it->occ) {
        j = it->ask ? __builtin_ctzll(it->occ) : 63 - __builtin_clzll(it->occ);
        wp = (it->w->base + j) * WIN_TICK;
        wl = it->w->lvl[j];
    }
    if (it->next != NIL && (wl == NIL || better(lvl_price(it->b, it->next), wp, it->ask))) {
        uint32_t li = it->next;
        it->next = lvl_at(it->b, li)->next;
        return li;
    }
    if (wl != NIL)
        it->occ &= ~(1ull << j);
    return wl;
}

int book_best(const book_t *b, uint16_t locate, int64_t *bid_px, uint64_t *bid_sz, int64_t *ask_px,
              uint64_t *ask_sz)
{
    if (locate > b->cfg.max_locate)
        return -EINVAL;
    int mask = 0;
    int64_t px[2] = {0, 0};
    uint64_t sz[2] = {0, 0};
    for (unsigned ask = 0; ask < 2; ask++) {
        const book_side_t *sd = side_of(b, locate, ask);
        uint32_t li = side_best(b, sd, ask);
        if (li != NIL) {
            const book_lvl_t *lv = lvl_at(b, li);
            px[ask] = sd->best_px; /* the copy, so the oracle tests check it */
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
    side_iter_t it;
    side_iter_init(&it, b, locate, side == 'S');
    for (uint32_t li; k < n && (li = side_iter_next(&it)) != NIL; k++) {
        const book_lvl_t *lv = lvl_at(b, li);
        out[k].price = key_price(lv->key);
        out[k].shares = lv->shares;
        out[k].orders = lv->orders;
    }
    return (int)k;
}

int book_order(const book_t *b, uint64_t ref, book_order_t *out)
{
    const book_ord_t *o = ord_find(b, ref);
    if (o == NULL)
        return -ENOENT;
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
    if (b->odir == NULL)
        return;
    out->orders = MEM_LD(b->olive);
    out->far_orders = MEM_LD(b->far_live);
    out->far_peak = MEM_LD(b->far_peak);
    out->far_moves = MEM_LD(b->far_moves);
    out->levels = pool_in_use(&b->levels);
    out->orders_peak = MEM_LD(b->opeak);
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
        side_iter_t it;
        side_iter_init(&it, b, locate, ask);
        for (uint32_t li; (li = side_iter_next(&it)) != NIL;) {
            const book_lvl_t *lv = lvl_at(b, li);
            h = mix(h ^ (uint64_t)key_price(lv->key));
            h = mix(h ^ lv->shares);
            h = mix(h ^ ((uint64_t)lv->orders << 8 | sidebyte));
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

static size_t odir_bytes(const book_t *b)
{
    return ((size_t)b->dmask + 1) * sizeof(book_ord_t);
}

static size_t ofar_bytes(const book_t *b)
{
    return ((size_t)b->fmask + 1) * sizeof(book_ord_t);
}

/* The order table in the memory report, as a pool of max_orders objects. Any thread. */
static void orders_stats(const void *obj, mem_obj_stats_t *out)
{
    const book_t *b = obj;
    memset(out, 0, sizeof *out);
    out->capacity = b->cfg.max_orders;
    out->used = MEM_LD(b->olive);
    out->high_water = MEM_LD(b->opeak);
    out->exhausted = MEM_LD(b->orders_exhausted);
}

static void sides_clear(book_t *b)
{
    for (size_t i = 0; i < ((size_t)b->cfg.max_locate + 1) * 2; i++)
        b->sides[i] = (book_side_t){.head = NIL, .tail = NIL, .win = NIL};
    b->wused = 0;
}

static size_t wins_bytes(const book_t *b)
{
    return (size_t)b->nwin * sizeof(book_win_t);
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
    b->dmask = (uint32_t)((1ull << (ok - 1 + DIR_SCALE_LOG2)) - 1);
    b->fmask = (uint32_t)((1ull << ok) - 1);
    b->lmask = (uint32_t)((1ull << lk) - 1);
    b->fshift = 32 - ok;
    b->lshift = 32 - lk;
    int rc =
        pool_init(&b->levels, "book.levels", MEM_TAG_BOOK, sizeof(book_lvl_t), 32, cfg->max_levels);
    if (rc != 0)
        goto fail;
    b->lvl = pool_at(&b->levels, 0);
    rc = -ENOMEM;
    b->odir = mem_alloc_at(MEM_TAG_BOOK, odir_bytes(b), MEM_CACHE_LINE, MEM_ZERO | MEM_PREFAULT,
                           __FILE__, __LINE__);
    b->ofar = mem_alloc_at(MEM_TAG_BOOK, ofar_bytes(b), MEM_CACHE_LINE, MEM_ZERO | MEM_PREFAULT,
                           __FILE__, __LINE__);
    b->lhash = mem_alloc_at(MEM_TAG_BOOK, ((size_t)b->lmask + 1) * sizeof(uint64_t), MEM_CACHE_LINE,
                            MEM_ZERO | MEM_PREFAULT, __FILE__, __LINE__);
    b->sides = mem_alloc_prefault(MEM_TAG_BOOK, side_bytes(cfg), MEM_CACHE_LINE);
    b->nwin = (uint32_t)(((size_t)cfg->max_locate + 1) * 2);
    if (b->nwin > BOOK_WIN_MAX)
        b->nwin = BOOK_WIN_MAX;
    b->wins = mem_alloc_prefault(MEM_TAG_BOOK, wins_bytes(b), MEM_CACHE_LINE);
    if (b->odir == NULL || b->ofar == NULL || b->lhash == NULL || b->sides == NULL ||
        b->wins == NULL)
        goto fail;
    sides_clear(b);
    mem_obj_register(&b->oobj, MEM_OBJ_POOL, MEM_TAG_BOOK, "book.orders", b, orders_stats);
    return 0;
fail:
    book_fini(b);
    memset(b, 0, sizeof *b);
    return rc;
}

void book_fini(book_t *b)
{
    if (b->cfg.max_orders == 0)
        return;              /* zeroed, or finished already */
    if (b->oobj.obj != NULL) /* registered */
        mem_obj_unregister(&b->oobj);
    pool_fini(&b->levels);
    mem_free(MEM_TAG_BOOK, b->odir, odir_bytes(b));
    mem_free(MEM_TAG_BOOK, b->ofar, ofar_bytes(b));
    mem_free(MEM_TAG_BOOK, b->lhash, ((size_t)b->lmask + 1) * sizeof(uint64_t));
    mem_free(MEM_TAG_BOOK, b->sides, side_bytes(&b->cfg));
    mem_free(MEM_TAG_BOOK, b->wins, wins_bytes(b));
    b->wins = NULL;
    b->odir = NULL;
    b->ofar = NULL;
    b->lhash = NULL;
    b->sides = NULL;
    b->cfg.max_orders = 0;
}

void book_reset(book_t *b)
{
    if (b->odir == NULL)
        return;
    memset(b->odir, 0, odir_bytes(b));
    if (MEM_LD(b->far_peak) != 0) /* the far table was used since init */
        memset(b->ofar, 0, ofar_bytes(b));
    MEM_ST(b->olive, 0);
    MEM_ST(b->far_live, 0);
    b->far_max = 0;
    memset(b->lhash, 0, ((size_t)b->lmask + 1) * sizeof(uint64_t));
    sides_clear(b);
    pool_reset(&b->levels);
}
