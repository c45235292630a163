/*
 * shard: see shard.h. The quote handed to the stats after a book change is the book's best
 * bid and offer for that symbol (0 for an empty side), so mid and spread always describe the
 * book as it stands after the event.
 */
#include "engine/shard.h"

#include "base/hints.h"
#include "mem/mem.h"

#include <string.h>

int shard_init(shard_t *s, const config_t *cfg, unsigned nshards, stats_bar_fn *on_bar, void *ctx)
{
    memset(s, 0, sizeof *s);
    book_config_t bc;
    book_config_default(&bc);
    /* one shard's share of the capacities, with a quarter spare for uneven symbols */
    uint64_t orders = nshards > 1 ? (uint64_t)cfg->max_orders * 5 / 4 / nshards : cfg->max_orders;
    uint64_t levels = nshards > 1 ? (uint64_t)cfg->max_levels * 5 / 4 / nshards : cfg->max_levels;
    bc.max_orders = (uint32_t)(orders < 16 ? 16 : orders);
    bc.max_levels = (uint32_t)(levels < 16 ? 16 : levels);
    bc.max_locate = BOOK_MAX_LOCATE;
    int rc = book_init(&s->book, &bc);
    if (rc < 0)
        return rc;
    stats_cfg_t sc = {
        .max_locate = 65535,
        .max_symbols = cfg->max_symbols,
        .bar_ns = cfg->bar_interval_ns,
        .bar_history = cfg->bar_history,
        .match_capacity = cfg->break_window,
        .on_bar = on_bar,
        .on_bar_ctx = ctx,
    };
    rc = stats_init(&s->stats, &sc);
    if (rc < 0) {
        book_fini(&s->book);
        return rc;
    }
    return 0;
}

void shard_fini(shard_t *s)
{
    stats_fini(&s->stats);
    book_fini(&s->book);
}

static inline int is_book_event(uint8_t t)
{
    return t == 'A' || t == 'F' || t == 'E' || t == 'C' || t == 'X' || t == 'D' || t == 'U';
}

void shard_set_trades_out(shard_t *s, csvout_t *w, const symtab_t *t)
{
    s->trades_out = w;
    s->symbols = t;
}

/* The trade an event makes, as the stats count it (see analytics/stats.h). */
static void export_trade(shard_t *s, const ev_t *e, int64_t exec_price, uint8_t book_side)
{
    int64_t px;
    uint8_t side = e->side;
    switch (e->type) {
    case 'E':
        px = exec_price;
        side = book_side;
        break;
    case 'C':
        if (e->aux == 'N')
            return;
        px = e->price;
        side = book_side;
        break;
    case 'P':
    case EV_CSV_TRADE:
        px = e->price;
        break;
    case 'Q':
        if (e->shares == 0)
            return;
        px = e->price;
        side = 0;
        break;
    default:
        return;
    }
    if (px <= 0 || e->shares == 0 || e->locate == 0)
        return;
    csvout_trade(s->trades_out, e->ts, symtab_name(s->symbols, e->locate), px, e->shares,
                 side == 'B' || side == 'S' ? side : 0);
}

static inline void apply_one(shard_t *s, const ev_t *e)
{
    int64_t exec_price = 0;
    uint16_t touched = 0; /* the locate whose book changed */
    uint8_t book_side = 0;
    if (is_book_event(e->type)) {
        book_fill_t fill;
        book_result_t r = book_apply(&s->book, e, &fill);
        s->by_result[r]++;
        exec_price = fill.exec_price;
        book_side = fill.side;
        if (r == BOOK_OK || r == BOOK_ANOMALY)
            touched = fill.locate ? fill.locate : e->locate;
    }
    stats_apply(&s->stats, e, exec_price);
    if (unlikely(s->trades_out != NULL))
        export_trade(s, e, exec_price, book_side);
    if (touched) {
        int64_t bid, ask;
        if (book_best(&s->book, touched, &bid, NULL, &ask, NULL) >= 0)
            stats_quote(&s->stats, touched, bid, ask);
    }
}

void shard_apply(shard_t *s, const ev_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        apply_one(s, &ev[i]);
    s->events += n;
}

size_t shard_apply_part(shard_t *s, const ev_t *ev, size_t n, const uint8_t *owner, uint8_t id)
{
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &ev[i];
        if (owner[e->locate] == id) {
            apply_one(s, e);
            mine++;
        } else {
            stats_advance(&s->stats, e->ts); /* the clock is everyone's */
        }
    }
    s->events += mine;
    return mine;
}

void shard_apply_routed(shard_t *s, const ev_t *ev, const uint32_t *own, size_t n,
                        const uint32_t *marks, size_t nmarks)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t pos = own[i];
        /* a mark at pos itself is the event's own advance; re-advancing to it later is a no-op */
        while (j < nmarks && marks[j] < pos)
            stats_advance(&s->stats, ev[marks[j++]].ts);
        apply_one(s, &ev[pos]);
    }
    while (j < nmarks)
        stats_advance(&s->stats, ev[marks[j++]].ts);
    s->events += n;
}
