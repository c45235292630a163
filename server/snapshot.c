/*
 * snapshot: see snapshot.h. The seqlock protocol, on every record and on each cross-section
 * buffer: the writer (the record's only one) stores seq + 1 (odd), then every data word with a
 * release store, then seq + 2 with a release store. A reader loads seq with acquire (odd: the
 * writer is inside, try again), loads the data words with acquire, then loads seq again: equal
 * means no store of the next write reached it (a data word read from a later write would carry,
 * through its release, the odd sequence store before it, which the second load would then see).
 * On x86 all of these are plain moves. Data is copied through memcpy into and out of words, so
 * the structs themselves are never shared.
 */
#include "server/snapshot.h"

#include "base/clock.h"
#include "base/hints.h"
#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#define NLOC           65536u
#define LVL_W          3u /* words per book_level_t */
#define NODE_W         5u /* name, locate, cluster << 32 | degree, betweenness, next */
#define EDGE_W         3u /* u << 32 | v, rho, d */
#define NIL            UINT32_MAX
#define RELAXED        memory_order_relaxed
#define ACQUIRE        memory_order_acquire
#define RELEASE        memory_order_release
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

static_assert(sizeof(book_level_t) == LVL_W * 8, "a book level is three words");
static_assert(offsetof(snapshot_sym_t, bids) % 8 == 0, "levels start on a word");
static_assert(offsetof(snapshot_sym_t, asks) ==
                  offsetof(snapshot_sym_t, bids) + SNAPSHOT_DEPTH_MAX * sizeof(book_level_t),
              "asks follow bids");

/* Cross-section header words (word 0 is the sequence). */
enum {
    H_GEN = 1,
    H_PUBNS,
    H_N,
    H_K,
    H_NEDGES,
    H_NCL,
    H_PCARC,
    H_GRAPHRC,
    H_ROWSWIN,
    H_ROWS,
    H_BARS,
    H_IDLE,
    H_FIRSTK,
    H_LASTK,
    H_BARNS,
    H_MSTTOTAL,
    H_END
};

/* ---- words ------------------------------------------------------------------------------- */

static inline void store_words(_Atomic uint64_t *dst, const void *src, size_t nw)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, p + i * 8, 8);
        atomic_store_explicit(&dst[i], w, RELEASE);
    }
}

static inline void load_words(void *dst, const _Atomic uint64_t *src, size_t nw)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w = atomic_load_explicit(&src[i], ACQUIRE);
        memcpy(p + i * 8, &w, 8);
    }
}

static inline void st(_Atomic uint64_t *b, size_t i, uint64_t v)
{
    atomic_store_explicit(&b[i], v, RELEASE);
}

static inline uint64_t ld(const _Atomic uint64_t *b, size_t i)
{
    return atomic_load_explicit(&b[i], ACQUIRE);
}

static inline uint64_t dbits(double d)
{
    uint64_t w;
    memcpy(&w, &d, 8);
    return w;
}

static inline double bitsd(uint64_t w)
{
    double d;
    memcpy(&d, &w, 8);
    return d;
}

static void relax(unsigned tries)
{
    if (tries >= SNAPSHOT_READ_TRIES / 4) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

uint64_t snapshot_pack_name(const char *name)
{
    size_t len = strnlen(name, SYMTAB_SYM_MAX + 1);
    if (len == 0 || len > SYMTAB_SYM_MAX)
        return 0;
    uint64_t w = 0;
    memcpy(&w, name, len);
    return w;
}

static void unpack_name(uint64_t w, char out[SYMTAB_SYM_MAX + 1])
{
    memcpy(out, &w, 8);
    out[SYMTAB_SYM_MAX] = '\0';
}

/* ---- set-up ------------------------------------------------------------------------------ */

static void *alloc_words(size_t nw, size_t *bytes)
{
    *bytes = nw * sizeof(uint64_t);
    return mem_alloc_at(MEM_TAG_SERVER, *bytes, 64, MEM_ZERO | MEM_PREFAULT, __FILE__, __LINE__);
}

int snapshot_init(snapshot_t *s, const config_t *cfg, unsigned nworkers)
{
    memset(s, 0, sizeof *s);
    if (!cfg || nworkers == 0 || nworkers > SNAPSHOT_WORKERS_MAX || cfg->snapshot_depth == 0 ||
        cfg->snapshot_depth > SNAPSHOT_DEPTH_MAX || cfg->max_symbols == 0 ||
        cfg->max_symbols > SYMTAB_MAX_SYMBOLS || cfg->matrix_symbols < 2 ||
        cfg->matrix_symbols > (1u << 16) || cfg->pca_components == 0 ||
        cfg->pca_components > SNAPSHOT_PC_MAX)
        return -EINVAL;
    s->depth = cfg->snapshot_depth;
    s->max_symbols = cfg->max_symbols;
    s->nworkers = nworkers;
    s->interval_ns = cfg->snapshot_interval_ns;
    s->hdr_words = offsetof(snapshot_sym_t, bids) / 8;
    s->rec_words = ALIGN_UP(1 + s->hdr_words + 2 * LVL_W * s->depth, 8);
    s->recs = alloc_words((size_t)s->max_symbols * s->rec_words, &s->recs_bytes);
    s->slot_of = mem_calloc(MEM_TAG_SERVER, NLOC, sizeof *s->slot_of);
    s->slot_loc = mem_calloc(MEM_TAG_SERVER, s->max_symbols, sizeof *s->slot_loc);
    s->slot_name = mem_calloc(MEM_TAG_SERVER, s->max_symbols, sizeof *s->slot_name);
    s->last_ts = mem_calloc(MEM_TAG_SERVER, NLOC, sizeof *s->last_ts);
    s->w = mem_zalloc_aligned(MEM_TAG_SERVER, nworkers * sizeof *s->w, 64);
    int rc = 0;
    if (!s->recs || !s->slot_of || !s->slot_loc || !s->slot_name || !s->last_ts || !s->w)
        rc = -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < nworkers; i++) {
        snapshot_worker_t *wk = &s->w[i];
        wk->dirty = mem_calloc(MEM_TAG_SERVER, NLOC / 64, sizeof(uint64_t));
        wk->list = mem_calloc(MEM_TAG_SERVER, NLOC, sizeof(uint16_t));
        wk->tmp = mem_zalloc_aligned(MEM_TAG_SERVER, sizeof *wk->tmp, 64);
        wk->bar_k = UINT64_MAX;
        if (!wk->dirty || !wk->list || !wk->tmp)
            rc = -ENOMEM;
    }
    /* cross-section buffers */
    s->max_n = cfg->matrix_symbols;
    s->max_k = cfg->pca_components;
    s->bar_ns = cfg->bar_interval_ns;
    size_t N = s->max_n, K = s->max_k;
    s->off_pcr = H_END;
    s->off_pcv = s->off_pcr + K;
    s->off_node = s->off_pcv + K;
    s->off_cl = s->off_node + NODE_W * N;
    s->off_edge = s->off_cl + N;
    s->off_load = s->off_edge + EDGE_W * N;
    s->off_corr = s->off_load + K * N;
    s->xs_words = ALIGN_UP(s->off_corr + N * N, 8);
    for (int i = 0; rc == 0 && i < 2; i++) {
        s->xs[i] = alloc_words(s->xs_words, &s->xs_bytes);
        if (!s->xs[i])
            rc = -ENOMEM;
    }
    if (rc < 0)
        snapshot_fini(s);
    return rc;
}

void snapshot_fini(snapshot_t *s)
{
    if (s->recs)
        mem_free(MEM_TAG_SERVER, (void *)s->recs, s->recs_bytes);
    if (s->slot_of)
        mem_free(MEM_TAG_SERVER, (void *)s->slot_of, NLOC * sizeof *s->slot_of);
    if (s->slot_loc)
        mem_free(MEM_TAG_SERVER, (void *)s->slot_loc, s->max_symbols * sizeof *s->slot_loc);
    if (s->slot_name)
        mem_free(MEM_TAG_SERVER, (void *)s->slot_name, s->max_symbols * sizeof *s->slot_name);
    if (s->last_ts)
        mem_free(MEM_TAG_SERVER, s->last_ts, NLOC * sizeof *s->last_ts);
    if (s->w) {
        for (unsigned i = 0; i < s->nworkers; i++) {
            snapshot_worker_t *wk = &s->w[i];
            if (wk->dirty)
                mem_free(MEM_TAG_SERVER, wk->dirty, NLOC / 64 * sizeof(uint64_t));
            if (wk->list)
                mem_free(MEM_TAG_SERVER, wk->list, NLOC * sizeof(uint16_t));
            if (wk->tmp)
                mem_free(MEM_TAG_SERVER, wk->tmp, sizeof *wk->tmp);
        }
        mem_free(MEM_TAG_SERVER, s->w, s->nworkers * sizeof *s->w);
    }
    for (int i = 0; i < 2; i++)
        if (s->xs[i])
            mem_free(MEM_TAG_SERVER, (void *)s->xs[i], s->xs_bytes);
    memset(s, 0, sizeof *s);
}

/* ---- symbol records: writer --------------------------------------------------------------- */

static inline void mark(snapshot_worker_t *wk, uint16_t loc)
{
    uint64_t bit = UINT64_C(1) << (loc & 63);
    if (!(wk->dirty[loc >> 6] & bit)) {
        wk->dirty[loc >> 6] |= bit;
        wk->list[wk->nlist++] = loc;
    }
}

static void build(const snapshot_t *s, snapshot_sym_t *t, const shard_t *sh, const symtab_t *names,
                  uint16_t loc, uint64_t now_ns)
{
    memset(t, 0, offsetof(snapshot_sym_t, bids));
    memset(t->bids, 0, s->depth * sizeof t->bids[0]);
    memset(t->asks, 0, s->depth * sizeof t->asks[0]);
    t->locate = loc;
    if (names) {
        const char *nm = symtab_name(names, loc);
        memcpy(t->symbol, nm, strnlen(nm, SYMTAB_SYM_MAX));
    }
    t->ts = s->last_ts[loc];
    t->publish_ns = now_ns;
    if (book_best(&sh->book, loc, &t->bid, &t->bid_size, &t->ask, &t->ask_size) >= 0) {
        t->flags |= SNAPSHOT_HAS_BOOK;
        book_symbol(&sh->book, loc, &t->book);
        int nb = book_depth(&sh->book, loc, 'B', s->depth, t->bids);
        int na = book_depth(&sh->book, loc, 'S', s->depth, t->asks);
        t->nbid = (uint16_t)(nb > 0 ? nb : 0);
        t->nask = (uint16_t)(na > 0 ? na : 0);
    }
    const stats_t *stt = &sh->stats;
    if (stats_get(stt, loc, &t->stats) == 0) {
        t->flags |= SNAPSHOT_HAS_STATS;
        uint64_t k = stats_open_k(stt);
        if (k != UINT64_MAX && stats_open_bar(stt, loc, &t->open_bar) == 0)
            t->flags |= SNAPSHOT_HAS_OPEN_BAR;
        if (k != UINT64_MAX && k > 0 && stats_bar(stt, loc, k - 1, &t->last_bar) == 0)
            t->flags |= SNAPSHOT_HAS_LAST_BAR;
    }
}

static void publish_one(snapshot_t *s, snapshot_worker_t *wk, const shard_t *sh,
                        const symtab_t *names, uint16_t loc, uint64_t now_ns)
{
    uint32_t slot1 = atomic_load_explicit(&s->slot_of[loc], RELAXED); /* we are its writer */
    uint32_t slot;
    if (slot1) {
        slot = slot1 - 1;
    } else {
        if (atomic_load_explicit(&s->claimed, RELAXED) >= s->max_symbols) {
            MEM_INC(wk->no_slot);
            return;
        }
        slot = atomic_fetch_add_explicit(&s->claimed, 1, RELAXED);
        if (slot >= s->max_symbols) {
            MEM_INC(wk->no_slot);
            return;
        }
    }
    snapshot_sym_t *t = wk->tmp;
    build(s, t, sh, names, loc, now_ns);
    uint64_t nm = snapshot_pack_name(t->symbol);
    if (atomic_load_explicit(&s->slot_name[slot], RELAXED) != nm)
        atomic_store_explicit(&s->slot_name[slot], nm, RELEASE);
    if (!slot1)
        atomic_store_explicit(&s->slot_loc[slot], loc, RELEASE);
    _Atomic uint64_t *r = s->recs + (size_t)slot * s->rec_words;
    uint64_t seq = atomic_load_explicit(&r[0], RELAXED);
    t->version = seq / 2 + 1;
    atomic_store_explicit(&r[0], seq + 1, RELAXED);
    size_t lw = LVL_W * s->depth;
    store_words(r + 1, t, s->hdr_words);
    store_words(r + 1 + s->hdr_words, t->bids, lw);
    store_words(r + 1 + s->hdr_words + lw, t->asks, lw);
    atomic_store_explicit(&r[0], seq + 2, RELEASE);
    if (!slot1)
        atomic_store_explicit(&s->slot_of[loc], slot + 1, RELEASE);
    MEM_INC(wk->records);
}

void snapshot_after_batch(snapshot_t *s, unsigned w, const shard_t *sh, const symtab_t *names,
                          const ev_t *ev, const uint32_t *own, size_t n, const uint8_t *owner,
                          uint64_t now_ns, bool force)
{
    if (unlikely(w >= s->nworkers))
        return;
    snapshot_worker_t *wk = &s->w[w];
    if (own) {
        /* the routed positions: every one is w's */
        for (size_t i = 0; i < n; i++) {
            const ev_t *e = &ev[own[i]];
            if (e->locate == 0)
                continue;
            s->last_ts[e->locate] = e->ts;
            mark(wk, e->locate);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t loc = ev[i].locate;
            if (loc == 0 || (owner && owner[loc] != w))
                continue;
            s->last_ts[loc] = ev[i].ts;
            mark(wk, loc);
        }
    }
    if (!force && MEM_LD(wk->publishes) > 0 && now_ns >= wk->last_pub_ns &&
        now_ns - wk->last_pub_ns < s->interval_ns)
        return;
    uint64_t k = stats_open_k(&sh->stats);
    if (k != wk->bar_k) {
        /* the bars moved on: every record of ours has a new open and last closed bar */
        uint32_t nslots = snapshot_slots(s);
        for (uint32_t i = 0; i < nslots; i++) {
            uint16_t loc = atomic_load_explicit(&s->slot_loc[i], RELAXED);
            if (loc && (!owner || owner[loc] == w) &&
                atomic_load_explicit(&s->slot_of[loc], RELAXED) == i + 1)
                mark(wk, loc);
        }
        wk->bar_k = k;
    }
    for (uint32_t i = 0; i < wk->nlist; i++) {
        uint16_t loc = wk->list[i];
        wk->dirty[loc >> 6] &= ~(UINT64_C(1) << (loc & 63));
        publish_one(s, wk, sh, names, loc, now_ns);
    }
    wk->nlist = 0;
    wk->last_pub_ns = now_ns;
    MEM_INC(wk->publishes);
}

/* ---- symbol records: readers -------------------------------------------------------------- */

uint32_t snapshot_slots(const snapshot_t *s)
{
    uint32_t c = atomic_load_explicit(&((snapshot_t *)s)->claimed, ACQUIRE);
    return c < s->max_symbols ? c : s->max_symbols;
}

int snapshot_read_slot(const snapshot_t *s, uint32_t slot, snapshot_sym_t *out, uint32_t depth)
{
    if (!s->recs || slot >= s->max_symbols)
        return -EINVAL;
    uint32_t d = depth < s->depth ? depth : s->depth;
    size_t lw = LVL_W * s->depth;
    const _Atomic uint64_t *r = s->recs + (size_t)slot * s->rec_words;
    for (unsigned t = 0; t < SNAPSHOT_READ_TRIES; t++) {
        uint64_t s1 = atomic_load_explicit(&r[0], ACQUIRE);
        if (s1 == 0)
            return -ENOENT;
        if (s1 & 1) {
            relax(t);
            continue;
        }
        load_words(out, r + 1, s->hdr_words);
        load_words(out->bids, r + 1 + s->hdr_words, LVL_W * d);
        load_words(out->asks, r + 1 + s->hdr_words + lw, LVL_W * d);
        if (atomic_load_explicit(&r[0], RELAXED) == s1) {
            out->symbol[SYMTAB_SYM_MAX] = '\0';
            if (out->nbid > d)
                out->nbid = (uint16_t)d;
            if (out->nask > d)
                out->nask = (uint16_t)d;
            return 0;
        }
        relax(t);
    }
    return -EAGAIN;
}

int snapshot_get(const snapshot_t *s, uint16_t locate, snapshot_sym_t *out, uint32_t depth)
{
    if (!s->slot_of || locate == 0)
        return -ENOENT;
    uint32_t slot1 = atomic_load_explicit(&s->slot_of[locate], ACQUIRE);
    if (slot1 == 0)
        return -ENOENT;
    int rc = snapshot_read_slot(s, slot1 - 1, out, depth);
    if (rc == 0 && out->locate != locate)
        return -ENOENT; /* cannot happen: a slot keeps its locate */
    return rc;
}

int snapshot_find(const snapshot_t *s, const char *name, snapshot_sym_t *out, uint32_t depth)
{
    uint64_t want = snapshot_pack_name(name);
    if (!s->slot_name || want == 0)
        return -ENOENT;
    uint32_t nslots = snapshot_slots(s);
    int rc = -ENOENT;
    for (uint32_t i = 0; i < nslots; i++) {
        if (atomic_load_explicit(&s->slot_name[i], ACQUIRE) != want)
            continue;
        int r = snapshot_read_slot(s, i, out, depth);
        if (r == 0 && snapshot_pack_name(out->symbol) == want)
            return 0;
        if (r == -EAGAIN)
            rc = -EAGAIN;
    }
    return rc;
}

void snapshot_counters(const snapshot_t *s, snapshot_counters_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s->w)
        return;
    out->slots = snapshot_slots(s);
    for (unsigned i = 0; i < s->nworkers; i++) {
        out->no_slot += MEM_LD(s->w[i].no_slot);
        out->publishes += MEM_LD(s->w[i].publishes);
        out->records += MEM_LD(s->w[i].records);
    }
    out->xs_publishes = MEM_LD(((snapshot_t *)s)->xs_pubs);
}

/* ---- cross-section: writer ---------------------------------------------------------------- */

int snapshot_publish_xs(snapshot_t *s, const xsection_t *x)
{
    if (!x->have_result || !x->compact || x->n < 1)
        return -EAGAIN;
    if (x->n > s->max_n)
        return -ENOSPC;
    uint32_t n = (uint32_t)x->n;
    const graph_t *g = &x->graph;
    bool graph_ok = x->graph_rc == 0 && g->n == n;
    uint32_t k = 0;
    if (x->pca_rc == 0)
        k = (uint32_t)(x->pca.k < s->max_k ? x->pca.k : s->max_k);
    uint32_t nedges = graph_ok ? (uint32_t)g->nedges : 0;
    uint32_t ncl = graph_ok ? (uint32_t)x->nclusters : 0;
    if (ncl > n)
        ncl = n;

    uint64_t gen = atomic_load_explicit(&s->xs_gen, RELAXED) + 1;
    _Atomic uint64_t *b = s->xs[gen & 1];
    uint64_t seq = atomic_load_explicit(&b[0], RELAXED);
    atomic_store_explicit(&b[0], seq + 1, RELAXED);

    st(b, H_GEN, gen);
    st(b, H_PUBNS, clock_wall_ns());
    st(b, H_N, n);
    st(b, H_K, k);
    st(b, H_NEDGES, nedges);
    st(b, H_NCL, ncl);
    st(b, H_PCARC, (uint64_t)(int64_t)x->pca_rc);
    st(b, H_GRAPHRC, (uint64_t)(int64_t)x->graph_rc);
    st(b, H_ROWSWIN, x->rows_window);
    st(b, H_ROWS, x->rows);
    st(b, H_BARS, x->bars);
    st(b, H_IDLE, x->idle_bars);
    st(b, H_FIRSTK, x->first_k);
    st(b, H_LASTK, x->last_k);
    st(b, H_BARNS, s->bar_ns);
    st(b, H_MSTTOTAL, dbits(graph_ok ? g->total : 0.0));
    for (uint32_t c = 0; c < k; c++) {
        st(b, s->off_pcr + c, dbits(x->pca.ratio[c]));
        st(b, s->off_pcv + c, dbits(x->pca.values[c]));
    }
    /* nodes, and each cluster as a list through the nodes (built backwards: node order) */
    for (uint32_t c = 0; c < ncl; c++)
        st(b, s->off_cl + c, (uint64_t)NIL << 32);
    for (uint32_t i = n; i-- > 0;) {
        size_t o = s->off_node + (size_t)NODE_W * i;
        uint16_t loc = x->locs[i];
        uint32_t label = ncl ? g->label[i] : 0;
        uint64_t next = NIL;
        if (ncl && label < ncl) {
            uint64_t cw = atomic_load_explicit(&b[s->off_cl + label], RELAXED);
            next = cw >> 32;
            st(b, s->off_cl + label, (uint64_t)i << 32 | ((cw & 0xffffffffu) + 1));
        }
        st(b, o, snapshot_pack_name(x->symbols ? symtab_name(x->symbols, loc) : ""));
        st(b, o + 1, loc);
        st(b, o + 2, (uint64_t)label << 32 | (graph_ok ? g->degree[i] : 0));
        st(b, o + 3, dbits(graph_ok ? graph_between_norm(g, i) : 0.0));
        st(b, o + 4, next);
    }
    for (uint32_t e = 0; e < nedges; e++) {
        size_t o = s->off_edge + (size_t)EDGE_W * e;
        st(b, o, (uint64_t)g->edges[e].u << 32 | g->edges[e].v);
        st(b, o + 1, dbits(g->edges[e].rho));
        st(b, o + 2, dbits(g->edges[e].d));
    }
    for (uint32_t c = 0; c < k; c++) {
        const double *vec = x->pca.vectors + (size_t)c * x->pca.n;
        for (uint32_t i = 0; i < n; i++) {
            size_t col = x->locs[i] - 1u;
            st(b, s->off_load + (size_t)c * n + i, dbits(col < x->pca.n ? vec[col] : NAN));
        }
    }
    size_t nn = (size_t)n * n;
    for (size_t i = 0; i < nn; i++)
        st(b, s->off_corr + i, dbits(x->compact[i]));

    atomic_store_explicit(&b[0], seq + 2, RELEASE);
    atomic_store_explicit(&s->xs_gen, gen, RELEASE);
    MEM_ST(s->xs_pubs, gen);
    return 0;
}

/* ---- cross-section: readers --------------------------------------------------------------- */

static inline uint32_t clampu(uint64_t v, uint32_t max)
{
    return v < max ? (uint32_t)v : max;
}

uint64_t snapshot_xs_gen(const snapshot_t *s)
{
    return atomic_load_explicit(&((snapshot_t *)s)->xs_gen, ACQUIRE);
}

int snapshot_xs_begin(const snapshot_t *s, snapshot_xs_tx_t *tx, snapshot_xs_head_t *head)
{
    if (!s->xs[0])
        return -ENODATA;
    for (unsigned t = 0; t < SNAPSHOT_READ_TRIES; t++) {
        uint64_t gen = atomic_load_explicit(&((snapshot_t *)s)->xs_gen, ACQUIRE);
        if (gen == 0)
            return -ENODATA;
        const _Atomic uint64_t *b = s->xs[gen & 1];
        uint64_t s1 = atomic_load_explicit(&b[0], ACQUIRE);
        if ((s1 & 1) || ld(b, H_GEN) != gen) {
            relax(t);
            continue;
        }
        snapshot_xs_head_t h;
        memset(&h, 0, sizeof h);
        h.gen = gen;
        h.publish_ns = ld(b, H_PUBNS);
        h.n = clampu(ld(b, H_N), s->max_n);
        h.k = clampu(ld(b, H_K), s->max_k);
        h.nedges = clampu(ld(b, H_NEDGES), h.n ? h.n - 1 : 0);
        h.nclusters = clampu(ld(b, H_NCL), h.n);
        h.pca_rc = (int32_t)(int64_t)ld(b, H_PCARC);
        h.graph_rc = (int32_t)(int64_t)ld(b, H_GRAPHRC);
        h.rows_window = ld(b, H_ROWSWIN);
        h.rows = ld(b, H_ROWS);
        h.bars = ld(b, H_BARS);
        h.idle_bars = ld(b, H_IDLE);
        h.first_k = ld(b, H_FIRSTK);
        h.last_k = ld(b, H_LASTK);
        h.bar_ns = ld(b, H_BARNS);
        h.mst_total = bitsd(ld(b, H_MSTTOTAL));
        for (uint32_t c = 0; c < h.k; c++) {
            h.pc_ratio[c] = bitsd(ld(b, s->off_pcr + c));
            h.pc_value[c] = bitsd(ld(b, s->off_pcv + c));
        }
        if (atomic_load_explicit(&b[0], RELAXED) != s1) {
            relax(t);
            continue;
        }
        tx->s = s;
        tx->b = b;
        tx->seq = s1;
        tx->n = h.n;
        tx->k = h.k;
        tx->nedges = h.nedges;
        tx->nclusters = h.nclusters;
        if (head)
            *head = h;
        return 0;
    }
    return -EAGAIN;
}

bool snapshot_xs_valid(const snapshot_xs_tx_t *tx)
{
    return atomic_load_explicit(&tx->b[0], RELAXED) == tx->seq;
}

static inline uint32_t node_ix(const snapshot_xs_tx_t *tx, uint32_t i)
{
    return i < tx->n ? i : (tx->n ? tx->n - 1 : 0);
}

void snapshot_xs_node(const snapshot_xs_tx_t *tx, uint32_t i, snapshot_xs_node_t *out)
{
    size_t o = tx->s->off_node + (size_t)NODE_W * node_ix(tx, i);
    memset(out, 0, sizeof *out);
    unpack_name(ld(tx->b, o), out->symbol);
    out->locate = (uint16_t)ld(tx->b, o + 1);
    uint64_t cd = ld(tx->b, o + 2);
    out->cluster = (uint32_t)(cd >> 32);
    out->degree = (uint32_t)cd;
    out->betweenness = bitsd(ld(tx->b, o + 3));
}

uint32_t snapshot_xs_find(const snapshot_xs_tx_t *tx, const char *name)
{
    uint64_t want = snapshot_pack_name(name);
    if (want == 0)
        return NIL;
    for (uint32_t i = 0; i < tx->n; i++)
        if (ld(tx->b, tx->s->off_node + (size_t)NODE_W * i) == want)
            return i;
    return NIL;
}

double snapshot_xs_corr(const snapshot_xs_tx_t *tx, uint32_t i, uint32_t j)
{
    if (tx->n == 0)
        return NAN;
    i = node_ix(tx, i);
    j = node_ix(tx, j);
    return bitsd(ld(tx->b, tx->s->off_corr + (size_t)i * tx->n + j));
}

double snapshot_xs_loading(const snapshot_xs_tx_t *tx, uint32_t comp, uint32_t i)
{
    if (tx->n == 0 || comp >= tx->k)
        return NAN;
    return bitsd(ld(tx->b, tx->s->off_load + (size_t)comp * tx->n + node_ix(tx, i)));
}

void snapshot_xs_edge(const snapshot_xs_tx_t *tx, uint32_t e, snapshot_xs_edge_t *out)
{
    uint32_t max = tx->s->max_n - 1;
    size_t o = tx->s->off_edge + (size_t)EDGE_W * (e < max ? e : max);
    uint64_t uv = ld(tx->b, o);
    out->u = node_ix(tx, (uint32_t)(uv >> 32));
    out->v = node_ix(tx, (uint32_t)uv);
    out->rho = bitsd(ld(tx->b, o + 1));
    out->d = bitsd(ld(tx->b, o + 2));
}

uint32_t snapshot_xs_cluster_first(const snapshot_xs_tx_t *tx, uint32_t c, uint32_t *size)
{
    if (c >= tx->nclusters) {
        if (size)
            *size = 0;
        return NIL;
    }
    uint64_t w = ld(tx->b, tx->s->off_cl + c);
    if (size)
        *size = (uint32_t)w;
    uint32_t first = (uint32_t)(w >> 32);
    return first < tx->n ? first : NIL;
}

uint32_t snapshot_xs_next(const snapshot_xs_tx_t *tx, uint32_t i)
{
    uint64_t next = ld(tx->b, tx->s->off_node + (size_t)NODE_W * node_ix(tx, i) + 4);
    return next < tx->n ? (uint32_t)next : NIL;
}

int snapshot_xs_read(const snapshot_t *s, snapshot_xs_copy_t *c)
{
    for (unsigned t = 0; t < SNAPSHOT_READ_TRIES; t++) {
        snapshot_xs_tx_t tx;
        int rc = snapshot_xs_begin(s, &tx, &c->head);
        if (rc < 0)
            return rc;
        uint32_t n = tx.n;
        if ((c->nodes && c->nodes_cap < n) || (c->edges && c->edges_cap < tx.nedges) ||
            (c->corr && c->corr_cap < (size_t)n * n) ||
            (c->loadings && c->loadings_cap < (size_t)tx.k * n)) {
            if (snapshot_xs_valid(&tx))
                return -ENOSPC;
            continue;
        }
        if (c->nodes)
            for (uint32_t i = 0; i < n; i++)
                snapshot_xs_node(&tx, i, &c->nodes[i]);
        if (c->edges)
            for (uint32_t e = 0; e < tx.nedges; e++)
                snapshot_xs_edge(&tx, e, &c->edges[e]);
        if (c->corr)
            for (size_t i = 0; i < (size_t)n * n; i++)
                c->corr[i] = bitsd(ld(tx.b, s->off_corr + i));
        if (c->loadings)
            for (size_t i = 0; i < (size_t)tx.k * n; i++)
                c->loadings[i] = bitsd(ld(tx.b, s->off_load + i));
        if (snapshot_xs_valid(&tx))
            return 0;
        relax(t);
    }
    return -EAGAIN;
}
