/*
 * shard: see shard.h. The quote handed to the stats after a book change is the book's best
 * bid and offer for that symbol (0 for an empty side), so mid and spread always describe the
 * book as it stands after the event.
 */
#include "engine/shard.h"

#include <string.h>

int shard_init(shard_t *s, const config_t *cfg, stats_bar_fn *on_bar, void *ctx)
{
    memset(s, 0, sizeof *s);
    book_config_t bc;
    book_config_default(&bc);
    bc.max_orders = cfg->max_orders;
    bc.max_levels = cfg->max_levels;
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

void shard_apply(shard_t *s, const ev_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &ev[i];
        int64_t exec_price = 0;
        uint16_t touched = 0; /* the locate whose book changed */
        if (is_book_event(e->type)) {
            book_fill_t fill;
            book_result_t r = book_apply(&s->book, e, &fill);
            s->by_result[r]++;
            exec_price = fill.exec_price;
            if (r == BOOK_OK || r == BOOK_ANOMALY)
                touched = fill.locate ? fill.locate : e->locate;
        }
        stats_apply(&s->stats, e, exec_price);
        if (touched) {
            int64_t bid, ask;
            if (book_best(&s->book, touched, &bid, NULL, &ask, NULL) >= 0)
                stats_quote(&s->stats, touched, bid, ask);
        }
    }
    s->events += n;
}
