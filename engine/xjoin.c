/*
 * xjoin: see xjoin.h. Keys (session, k) compare session first. The window is small (tens to a
 * few hundred bars), so finding a bar's slot and the oldest bar in flight is a scan of the
 * slots: no index to keep in step.
 */
#include "engine/xjoin.h"

#include "mem/mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static inline bool key_lt(uint64_t s1, uint64_t k1, uint64_t s2, uint64_t k2)
{
    return s1 < s2 || (s1 == s2 && k1 < k2);
}

static size_t hist_cap(const xjoin_t *j)
{
    return 4 * (size_t)j->cfg.window;
}

int xjoin_init(xjoin_t *j, const xjoin_cfg_t *cfg)
{
    memset(j, 0, sizeof *j);
    if (!cfg->nshards || cfg->nshards > XROW_MAX_SHARDS || !cfg->m || cfg->m > 65535 ||
        !cfg->window || !cfg->owner)
        return -EINVAL;
    j->cfg = *cfg;
    j->all = cfg->nshards == 64 ? UINT64_MAX : ((uint64_t)1 << cfg->nshards) - 1;
    j->layout = mem_calloc(MEM_TAG_ENGINE, cfg->nshards, sizeof *j->layout);
    j->slots = mem_calloc(MEM_TAG_ENGINE, cfg->window, sizeof *j->slots);
    j->row_mem = mem_alloc(MEM_TAG_ENGINE, (size_t)cfg->window * cfg->m * sizeof(double));
    j->hist = mem_calloc(MEM_TAG_ENGINE, hist_cap(j), sizeof *j->hist);
    if (!j->layout || !j->slots || !j->row_mem || !j->hist) {
        xjoin_fini(j);
        return -ENOMEM;
    }
    for (unsigned s = 0; s < cfg->nshards; s++) {
        int rc = xrow_layout_init(&j->layout[s], s, cfg->nshards, cfg->m, cfg->owner);
        if (rc < 0) {
            xjoin_fini(j);
            return rc;
        }
    }
    for (uint32_t i = 0; i < cfg->window; i++)
        j->slots[i].row = j->row_mem + (size_t)i * cfg->m;
    return 0;
}

void xjoin_fini(xjoin_t *j)
{
    if (j->layout) {
        for (unsigned s = 0; s < j->cfg.nshards; s++)
            xrow_layout_fini(&j->layout[s]);
        mem_free(MEM_TAG_ENGINE, j->layout, j->cfg.nshards * sizeof *j->layout);
    }
    if (j->slots)
        mem_free(MEM_TAG_ENGINE, j->slots, j->cfg.window * sizeof *j->slots);
    if (j->row_mem)
        mem_free(MEM_TAG_ENGINE, j->row_mem, (size_t)j->cfg.window * j->cfg.m * sizeof(double));
    if (j->hist)
        mem_free(MEM_TAG_ENGINE, j->hist, hist_cap(j) * sizeof *j->hist);
    memset(j, 0, sizeof *j);
}

static inline void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* A part of a bar no longer in flight: a duplicate, or a late part of a bar dropped without it. */
static int resolved(xjoin_t *j, const xrow_part_t *p)
{
    size_t cap = hist_cap(j);
    for (uint32_t i = 0; i < j->nhist; i++) {
        const xjoin_hist_t *h = &j->hist[(j->hist_head + cap - 1 - i) % cap];
        if (h->session == p->session && h->k == p->k) {
            if (!h->complete && !(h->have >> p->shard & 1)) {
                count(&j->late);
                return XJOIN_LATE;
            }
            break;
        }
    }
    count(&j->duplicates);
    return XJOIN_DUPLICATE;
}

static void names_in(xjoin_t *j, const xrow_layout_t *l, const xrow_part_t *p)
{
    if (!j->cfg.names)
        return;
    for (uint32_t i = 0; i < p->ncols; i++) {
        uint16_t loc = (uint16_t)(l->cols[i] + 1);
        if (symtab_name(j->cfg.names, loc)[0])
            continue;
        size_t len;
        const char *s = xrow_name(p, i, &len);
        if (len)
            (void)symtab_set(j->cfg.names, loc, s, len); /* a conflict is the table's count */
    }
}

int xjoin_put(xjoin_t *j, const void *buf, size_t len, uint64_t now_ns, char *err, size_t errlen)
{
    xrow_part_t p;
    int rc = xrow_decode(buf, len, &p, err, errlen);
    if (rc < 0) {
        count(&j->bad);
        return rc;
    }
    const xrow_layout_t *l = p.shard < j->cfg.nshards ? &j->layout[p.shard] : NULL;
    if (p.nshards != j->cfg.nshards || p.m != j->cfg.m || !l || p.ncols != l->ncols ||
        p.colset != l->colset) {
        count(&j->foreign);
        snprintf(err, errlen,
                 "bar row part of shard %u/%u, %u of %u columns (set %016llx): this node joins "
                 "%u shards of %u columns (cluster.shards, matrix.symbols) and expects %u "
                 "columns (set %016llx) from that shard",
                 p.shard, p.nshards, p.ncols, p.m, (unsigned long long)p.colset, j->cfg.nshards,
                 j->cfg.m, l ? l->ncols : 0, l ? (unsigned long long)l->colset : 0ull);
        return -EINVAL;
    }
    if (j->have_out && !key_lt(j->out_session, j->out_k, p.session, p.k))
        return resolved(j, &p);
    xjoin_slot_t *slot = NULL, *free_slot = NULL;
    for (uint32_t i = 0; i < j->cfg.window; i++) {
        xjoin_slot_t *s = &j->slots[i];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
        } else if (s->session == p.session && s->k == p.k) {
            slot = s;
            break;
        }
    }
    if (!slot) {
        if (!free_slot) {
            count(&j->full);
            return XJOIN_FULL;
        }
        slot = free_slot;
        slot->used = true;
        slot->session = p.session;
        slot->k = p.k;
        slot->have = 0;
        slot->traded = false;
        slot->first_ns = now_ns;
        slot->closed_lo = UINT64_MAX;
        slot->closed_hi = 0;
        for (uint32_t c = 0; c < j->cfg.m; c++)
            slot->row[c] = NAN;
        j->inflight++;
    }
    uint64_t bit = (uint64_t)1 << p.shard;
    if (slot->have & bit) {
        count(&j->duplicates);
        return XJOIN_DUPLICATE;
    }
    slot->have |= bit;
    slot->traded |= (p.flags & XROW_TRADED) != 0;
    slot->last_ns = now_ns;
    if (p.closed_ns < slot->closed_lo)
        slot->closed_lo = p.closed_ns;
    if (p.closed_ns > slot->closed_hi)
        slot->closed_hi = p.closed_ns;
    for (uint32_t i = 0; i < p.ncols; i++)
        slot->row[l->cols[i]] = xrow_value(&p, i);
    names_in(j, l, &p);
    count(&j->parts);
    return XJOIN_TAKEN;
}

static xjoin_slot_t *oldest(xjoin_t *j)
{
    xjoin_slot_t *o = NULL;
    for (uint32_t i = 0; i < j->cfg.window; i++) {
        xjoin_slot_t *s = &j->slots[i];
        if (s->used && (!o || key_lt(s->session, s->k, o->session, o->k)))
            o = s;
    }
    return o;
}

static void retire(xjoin_t *j, xjoin_slot_t *s, bool complete)
{
    size_t cap = hist_cap(j);
    j->hist[j->hist_head] =
        (xjoin_hist_t){.session = s->session, .k = s->k, .have = s->have, .complete = complete};
    j->hist_head = (uint32_t)((j->hist_head + 1) % cap);
    if (j->nhist < cap)
        j->nhist++;
    j->have_out = true;
    j->out_session = s->session;
    j->out_k = s->k;
    s->used = false;
    j->inflight--;
}

size_t xjoin_poll(xjoin_t *j, uint64_t now_ns, uint64_t wall_ns, xjoin_row_fn *fn, void *ctx)
{
    size_t out = 0;
    xjoin_slot_t *s;
    while ((s = oldest(j)) != NULL) {
        if (s->have == j->all) {
            histo_record(&j->wait, now_ns > s->first_ns ? now_ns - s->first_ns : 0);
            histo_record(&j->latency, wall_ns > s->closed_hi ? wall_ns - s->closed_hi : 0);
            fn(ctx, s->session, s->k, s->row, s->traded);
            count(&j->rows);
            retire(j, s, true);
            out++;
        } else if (now_ns == UINT64_MAX || now_ns - s->first_ns >= j->cfg.deadline_ns) {
            count(&j->incomplete);
            for (unsigned sh = 0; sh < j->cfg.nshards; sh++)
                j->missing[sh] += !(s->have >> sh & 1);
            retire(j, s, false);
        } else {
            break;
        }
    }
    return out;
}

uint64_t xjoin_next_deadline(const xjoin_t *j)
{
    uint64_t d = UINT64_MAX;
    for (uint32_t i = 0; i < j->cfg.window; i++) {
        const xjoin_slot_t *s = &j->slots[i];
        if (s->used && s->first_ns + j->cfg.deadline_ns < d)
            d = s->first_ns + j->cfg.deadline_ns;
    }
    return d;
}
