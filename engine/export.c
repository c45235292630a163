/*
 * export: see export.h. A part is written with write(2) whenever its buffer cannot take another
 * record; at the merge, each part is rewound and read back through the same buffer, a buffer's
 * worth at a time, and the smallest key of the K heads goes out next (a linear scan: K <= 64).
 * Rows are formatted by hand (ingest/csvout's number formatting) except the two doubles of a bar
 * (vwap, return: %.10g), into the output buffer, written with write(2) when nearly full.
 */
#include "engine/export.h"
#include "base/fdio.h"

#include "base/hints.h"
#include "ingest/csvout.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REC_PER_BUF (EXPORT_PART_BUF / sizeof(export_rec_t))
#define ROW_MAX     256u /* the longest CSV row, rounded up */

static const char *const HEADER[EXPORT_KINDS] = {
    "bar,end_ns,symbol,open,high,low,close,volume,vwap,trades,return\n",
    "time_ns,symbol,side,level,price,shares,orders\n",
};

/* An unlinked temporary file in the directory of path (same file system as the output). */
static int open_part(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    int fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char tmpl[4200];
    snprintf(tmpl, sizeof tmpl, "%s/.tickcore-part-XXXXXX", d);
    fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(tmpl);
    return fd;
}

static HINT_COLD void part_drain(export_part_t *p)
{
    if (!p->err) {
        int rc = fdio_write_all(p->fd, p->buf, p->len, NULL);
        if (rc < 0)
            p->err = rc;
    }
    p->len = 0;
}

static inline export_rec_t *part_claim(export_part_t *p)
{
    if (unlikely(p->len + sizeof(export_rec_t) > EXPORT_PART_BUF))
        part_drain(p);
    export_rec_t *r = (export_rec_t *)(void *)(p->buf + p->len);
    p->len += sizeof(export_rec_t);
    p->records++;
    return r;
}

int export_init(export_t *x, const export_cfg_t *cfg, unsigned nworkers, const symtab_t *symbols,
                char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    x->out_fd[0] = x->out_fd[1] = -1;
    if (!cfg->bars_out && !cfg->book_out && !cfg->day_bars)
        return 0;
    x->cfg = *cfg;
    x->symbols = symbols;
    if (cfg->book_out && (cfg->depth < 1 || cfg->depth > EXPORT_MAX_DEPTH || !cfg->book_every_ns)) {
        snprintf(err, errlen, "--book-out needs --depth 1..%u and --book-every > 0",
                 EXPORT_MAX_DEPTH);
        return -EINVAL;
    }
    for (const char *s = cfg->book_symbols; s && *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || n > SYMTAB_SYM_MAX || x->nnamed == EXPORT_MAX_NAMED) {
            snprintf(err, errlen, "--book-symbols: '%.*s': want up to %u names of 1..%d characters",
                     (int)n, s, EXPORT_MAX_NAMED, SYMTAB_SYM_MAX);
            return -EINVAL;
        }
        memcpy(x->named[x->nnamed++], s, n);
        s = e ? e + 1 : s + n;
    }
    const char *paths[EXPORT_KINDS] = {cfg->bars_out, cfg->book_out};
    int rc = 0;
    const char *what = "export buffers";
    x->nworkers = nworkers;
    x->w = mem_zalloc(MEM_TAG_ENGINE, nworkers * sizeof *x->w);
    if (cfg->bars_out || cfg->book_out)
        x->out = mem_alloc_prefault(MEM_TAG_ENGINE, EXPORT_OUT_BUF, MEM_CACHE_LINE);
    if (!x->w || (!x->out && (cfg->bars_out || cfg->book_out))) {
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->day_bars) {
        what = "the day store (stats.day_bars x stats.day_symbols)";
        export_day_t *d = &x->day;
        d->bars_bytes = (size_t)cfg->day_bars * cfg->day_symbols * sizeof(stats_bar_t);
        d->bars = mem_alloc_prefault(MEM_TAG_ENGINE, d->bars_bytes, MEM_CACHE_LINE);
        d->slot = mem_calloc(MEM_TAG_ENGINE, 65536, sizeof *d->slot);
        d->count = mem_calloc(MEM_TAG_ENGINE, cfg->day_symbols, sizeof *d->count);
        d->loc = mem_calloc(MEM_TAG_ENGINE, cfg->day_symbols, sizeof *d->loc);
        if (!d->bars || !d->slot || !d->count || !d->loc) {
            rc = -ENOMEM;
            goto fail;
        }
        what = "export buffers";
    }
    for (unsigned i = 0; i < nworkers; i++)
        for (int k = 0; k < EXPORT_KINDS; k++)
            x->w[i].part[k].fd = -1;
    for (int k = 0; k < EXPORT_KINDS; k++) {
        if (!paths[k])
            continue;
        what = paths[k];
        x->out_fd[k] = open(paths[k], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (x->out_fd[k] < 0) {
            rc = -errno;
            goto fail;
        }
        for (unsigned i = 0; i < nworkers; i++) {
            export_part_t *p = &x->w[i].part[k];
            p->fd = open_part(paths[k]);
            if (p->fd < 0) {
                rc = p->fd;
                goto fail;
            }
            p->buf = mem_alloc_prefault(MEM_TAG_ENGINE, EXPORT_PART_BUF, MEM_CACHE_LINE);
            if (!p->buf) {
                rc = -ENOMEM;
                goto fail;
            }
        }
    }
    what = "export buffers";
    for (unsigned i = 0; i < nworkers; i++) {
        export_worker_t *w = &x->w[i];
        w->x = x;
        w->locs = mem_alloc(MEM_TAG_ENGINE, (cfg->max_symbols + 1) * sizeof *w->locs);
        w->lv = mem_alloc(MEM_TAG_ENGINE, EXPORT_MAX_DEPTH * sizeof *w->lv);
        if (!w->locs || !w->lv) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", what, strerror(-rc));
    export_fini(x);
    return rc;
}

void export_fini(export_t *x)
{
    if (x->w) {
        for (unsigned i = 0; i < x->nworkers; i++) {
            export_worker_t *w = &x->w[i];
            for (int k = 0; k < EXPORT_KINDS; k++) {
                if (w->part[k].fd >= 0)
                    close(w->part[k].fd);
                if (w->part[k].buf)
                    mem_free(MEM_TAG_ENGINE, w->part[k].buf, EXPORT_PART_BUF);
            }
            if (w->locs)
                mem_free(MEM_TAG_ENGINE, w->locs, (x->cfg.max_symbols + 1) * sizeof *w->locs);
            if (w->lv)
                mem_free(MEM_TAG_ENGINE, w->lv, EXPORT_MAX_DEPTH * sizeof *w->lv);
        }
        mem_free(MEM_TAG_ENGINE, x->w, x->nworkers * sizeof *x->w);
    }
    if (x->out)
        mem_free(MEM_TAG_ENGINE, x->out, EXPORT_OUT_BUF);
    export_day_t *d = &x->day;
    if (d->bars)
        mem_free(MEM_TAG_ENGINE, d->bars, d->bars_bytes);
    if (d->slot)
        mem_free(MEM_TAG_ENGINE, d->slot, 65536 * sizeof *d->slot);
    if (d->count)
        mem_free(MEM_TAG_ENGINE, d->count, x->cfg.day_symbols * sizeof *d->count);
    if (d->loc)
        mem_free(MEM_TAG_ENGINE, d->loc, x->cfg.day_symbols * sizeof *d->loc);
    for (int k = 0; k < EXPORT_KINDS; k++)
        if (x->out_fd[k] >= 0)
            close(x->out_fd[k]);
    memset(x, 0, sizeof *x);
    x->out_fd[0] = x->out_fd[1] = -1;
}

/* The worker's symbols in locate order: the stats' new slots inserted (each once; a new session
 * starts the list again). */
static void sync_locs(export_worker_t *w, const stats_t *st)
{
    if (st->sessions != w->session) {
        w->session = st->sessions;
        w->nlocs = w->seen = 0;
    }
    for (; w->seen < st->nsyms && w->nlocs <= w->x->cfg.max_symbols; w->seen++) {
        uint16_t loc = st->syms[w->seen + 1].locate;
        uint32_t i = w->nlocs;
        while (i > 0 && w->locs[i - 1] > loc) {
            w->locs[i] = w->locs[i - 1];
            i--;
        }
        w->locs[i] = loc;
        w->nlocs++;
    }
}

/* One row into the day store (the worker that owns loc). */
static void day_put(export_worker_t *w, uint16_t loc, const stats_bar_t *bar)
{
    export_t *x = w->x;
    export_day_t *d = &x->day;
    uint32_t sl = d->slot[loc];
    if (unlikely(sl == 0)) {
        uint32_t i = atomic_fetch_add_explicit(&d->used, 1, memory_order_relaxed);
        if (i >= x->cfg.day_symbols) {
            atomic_store_explicit(&d->used, x->cfg.day_symbols, memory_order_relaxed);
            d->slot[loc] = UINT32_MAX; /* refused for the session: counted from now on */
        } else {
            d->loc[i] = loc;
            d->count[i] = 0;
            d->slot[loc] = i + 1;
        }
        sl = d->slot[loc];
    }
    if (sl == UINT32_MAX || d->count[sl - 1] == x->cfg.day_bars) {
        w->day_dropped++;
        return;
    }
    d->bars[(size_t)(sl - 1) * x->cfg.day_bars + d->count[sl - 1]++] = *bar;
}

void export_bar(export_worker_t *w, const stats_t *st, uint64_t k)
{
    export_part_t *p = &w->part[EXPORT_KIND_BARS];
    bool day = w->x->day.bars != NULL;
    if (!p->buf && !day)
        return;
    sync_locs(w, st);
    for (uint32_t i = 0; i < w->nlocs; i++) {
        stats_bar_t bar;
        if (stats_bar(st, w->locs[i], k, &bar) < 0 || (bar.flags & STATS_BAR_NOPRICE))
            continue;
        if (day)
            day_put(w, w->locs[i], &bar);
        if (!p->buf)
            continue;
        export_rec_t *r = part_claim(p);
        memset(r, 0, sizeof *r); /* padding too: the part file is written as it is */
        r->session = (uint32_t)st->sessions;
        r->locate = w->locs[i];
        r->t = k;
        r->u.bar = bar;
    }
}

static void snap_one(export_worker_t *w, export_part_t *p, const book_t *b, uint32_t session,
                     uint16_t loc, uint64_t t)
{
    uint32_t depth = w->x->cfg.depth;
    for (int s = 0; s < 2; s++) {
        uint8_t side = s ? 'S' : 'B';
        int n = book_depth(b, loc, side, depth, w->lv);
        for (int i = 0; i < n; i++) {
            export_rec_t *r = part_claim(p);
            memset(r, 0, sizeof *r);
            r->session = session;
            r->locate = loc;
            r->side = side;
            r->level = (uint8_t)(i + 1);
            r->t = t;
            r->u.lvl.price = w->lv[i].price;
            r->u.lvl.shares = w->lv[i].shares;
            r->u.lvl.orders = w->lv[i].orders;
        }
    }
}

void export_book(export_worker_t *w, const book_t *b, const stats_t *st, uint64_t ts)
{
    const export_t *x = w->x;
    uint64_t every = x->cfg.book_every_ns;
    uint64_t t = ts / every * every;
    bool first = w->snap_next == 0;
    w->snap_next = t + every;
    export_part_t *p = &w->part[EXPORT_KIND_BOOK];
    if (first || !p->buf)
        return;
    uint32_t session = (uint32_t)st->sessions;
    if (x->nnamed) {
        /* named symbols: in locate order (few: insertion into a small stack array) */
        uint16_t locs[EXPORT_MAX_NAMED];
        uint32_t n = 0;
        for (uint32_t i = 0; i < x->nnamed; i++) {
            uint16_t loc = symtab_find(x->symbols, x->named[i], strlen(x->named[i]));
            if (!loc)
                continue;
            uint32_t j = n++;
            while (j > 0 && locs[j - 1] > loc) {
                locs[j] = locs[j - 1];
                j--;
            }
            locs[j] = loc;
        }
        for (uint32_t i = 0; i < n; i++)
            if (i == 0 || locs[i] != locs[i - 1])
                snap_one(w, p, b, session, locs[i], t);
        return;
    }
    sync_locs(w, st);
    for (uint32_t i = 0; i < w->nlocs; i++)
        snap_one(w, p, b, session, w->locs[i], t);
}

void export_new_session(export_worker_t *w)
{
    w->snap_next = 0;
    export_t *x = w->x;
    export_day_t *d = &x->day;
    if (w == &x->w[0] && d->bars) { /* once per session: the store starts empty */
        memset(d->slot, 0, 65536 * sizeof *d->slot);
        memset(d->count, 0, x->cfg.day_symbols * sizeof *d->count);
        atomic_store_explicit(&d->used, 0, memory_order_relaxed);
    }
}

uint32_t export_day_bars(const export_t *x, uint16_t locate, const stats_bar_t **out)
{
    const export_day_t *d = &x->day;
    uint32_t sl = d->bars ? d->slot[locate] : 0;
    if (sl == 0 || sl == UINT32_MAX)
        return 0;
    *out = d->bars + (size_t)(sl - 1) * x->cfg.day_bars;
    return d->count[sl - 1];
}

uint64_t export_day_kept(const export_t *x)
{
    const export_day_t *d = &x->day;
    if (!d->bars)
        return 0;
    uint32_t n = atomic_load_explicit(&d->used, memory_order_relaxed);
    uint64_t kept = 0;
    for (uint32_t i = 0; i < n && i < x->cfg.day_symbols; i++)
        kept += d->count[i];
    return kept;
}

uint64_t export_day_dropped(const export_t *x)
{
    uint64_t n = 0;
    for (unsigned i = 0; x->w && i < x->nworkers; i++)
        n += x->w[i].day_dropped;
    return n;
}

/* ---- the merge ---------------------------------------------------------------------------- */

typedef struct head {
    export_part_t *p;
    size_t pos, n; /* records in the buffer, the next one */
} head_t;

static int key_cmp(const export_rec_t *a, const export_rec_t *b)
{
    if (a->session != b->session)
        return a->session < b->session ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    if (a->locate != b->locate)
        return a->locate < b->locate ? -1 : 1;
    if (a->side != b->side)
        return a->side < b->side ? -1 : 1;
    return a->level < b->level ? -1 : a->level > b->level;
}

/* Refill a head's buffer from its part: 0 (h->n may be 0 at the end) or -errno. */
static int refill(head_t *h)
{
    size_t got = 0;
    while (got < REC_PER_BUF * sizeof(export_rec_t)) {
        ssize_t k = read(h->p->fd, h->p->buf + got, REC_PER_BUF * sizeof(export_rec_t) - got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if (got % sizeof(export_rec_t))
        return -EIO;
    h->n = got / sizeof(export_rec_t);
    h->pos = 0;
    return 0;
}

static size_t put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return n;
}

/* A double with 10 significant digits; nothing for NaN. */
static size_t put_dbl(char *o, double v)
{
    if (isnan(v))
        return 0;
    return (size_t)snprintf(o, 32, "%.10g", v);
}

static size_t format_row(const export_t *x, int kind, const export_rec_t *r, char *o)
{
    char *p = o;
    const char *sym = symtab_name(x->symbols, r->locate);
    if (kind == EXPORT_KIND_BARS) {
        const stats_bar_t *b = &r->u.bar;
        p += csvout_format_u64(p, b->k);
        *p++ = ',';
        p += csvout_format_u64(p, (b->k + 1) * x->cfg.bar_ns);
        *p++ = ',';
        p += put_str(p, sym);
        const int64_t px[4] = {b->open, b->high, b->low, b->close};
        for (int i = 0; i < 4; i++) {
            *p++ = ',';
            p += csvout_format_price(p, px[i]);
        }
        *p++ = ',';
        p += csvout_format_u64(p, b->volume);
        *p++ = ',';
        p += put_dbl(p, b->vwap);
        *p++ = ',';
        p += csvout_format_u64(p, b->trades);
        *p++ = ',';
        p += put_dbl(p, b->ret);
    } else {
        const book_level_t *l = &r->u.lvl;
        p += csvout_format_u64(p, r->t);
        *p++ = ',';
        p += put_str(p, sym);
        *p++ = ',';
        *p++ = (char)r->side;
        *p++ = ',';
        p += csvout_format_u64(p, r->level);
        *p++ = ',';
        p += csvout_format_price(p, l->price);
        *p++ = ',';
        p += csvout_format_u64(p, l->shares);
        *p++ = ',';
        p += csvout_format_u64(p, l->orders);
    }
    *p++ = '\n';
    return (size_t)(p - o);
}

static int merge(export_t *x, int kind)
{
    head_t heads[64];
    unsigned nh = 0;
    int rc = 0;
    for (unsigned i = 0; i < x->nworkers; i++) {
        export_part_t *p = &x->w[i].part[kind];
        part_drain(p);
        if (p->err)
            return p->err;
        if (lseek(p->fd, 0, SEEK_SET) < 0)
            return -errno;
        heads[nh] = (head_t){.p = p};
        if ((rc = refill(&heads[nh])) < 0)
            return rc;
        if (heads[nh].n)
            nh++;
    }
    int fd = x->out_fd[kind];
    size_t len = put_str(x->out, HEADER[kind]);
    while (nh > 0) {
        unsigned best = 0;
        for (unsigned i = 1; i < nh; i++)
            if (key_cmp((const export_rec_t *)(void *)heads[i].p->buf + heads[i].pos,
                        (const export_rec_t *)(void *)heads[best].p->buf + heads[best].pos) < 0)
                best = i;
        head_t *h = &heads[best];
        if (EXPORT_OUT_BUF - len < ROW_MAX) {
            if ((rc = fdio_write_all(fd, x->out, len, NULL)) < 0)
                return rc;
            len = 0;
        }
        len += format_row(x, kind, (const export_rec_t *)(void *)h->p->buf + h->pos, x->out + len);
        x->rows[kind]++;
        if (++h->pos == h->n) {
            if ((rc = refill(h)) < 0)
                return rc;
            if (h->n == 0)
                heads[best] = heads[--nh];
        }
    }
    return fdio_write_all(fd, x->out, len, NULL);
}

int export_finish(export_t *x, char *err, size_t errlen)
{
    if (!x->w)
        return 0;
    const char *paths[EXPORT_KINDS] = {x->cfg.bars_out, x->cfg.book_out};
    int first = 0;
    for (int k = 0; k < EXPORT_KINDS; k++) {
        if (x->out_fd[k] < 0)
            continue;
        int rc = merge(x, k);
        if (close(x->out_fd[k]) < 0 && rc == 0 && errno != EINTR)
            rc = -errno;
        x->out_fd[k] = -1;
        if (rc < 0 && first == 0) {
            first = rc;
            snprintf(err, errlen, "%s: %s", paths[k], strerror(-rc));
        }
    }
    return first;
}
