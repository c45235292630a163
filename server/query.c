/*
 * query: see query.h. Cross-section answers follow one pattern: begin a snapshot transaction,
 * write the whole body from the buffer it pins, then ask whether the buffer stayed unchanged;
 * if not, reset the jbuf and start again (QUERY_TRIES times, then 503). The accessors clamp
 * indices, so even a body written from a torn read is memory-safe; it is simply never sent.
 */
#include "server/query.h"

#include "server/http.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define QUERY_TRIES 8
#define NIL         UINT32_MAX

/* ---- small writers ------------------------------------------------------------------------ */

/* An integer price in 1/EV_PRICE_SCALE dollars as an exact decimal ("123.45", "7", "-0.0001"). */
static void put_px(jbuf_t *jb, int64_t p)
{
    uint64_t a = p < 0 ? (uint64_t)0 - (uint64_t)p : (uint64_t)p;
    uint64_t whole = a / EV_PRICE_SCALE, frac = a % EV_PRICE_SCALE;
    const char *sign = p < 0 ? "-" : "";
    if (frac == 0) {
        jbuf_printf(jb, "%s%" PRIu64, sign, whole);
        return;
    }
    int digits = 4;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    jbuf_printf(jb, "%s%" PRIu64 ".%0*" PRIu64, sign, whole, digits, frac);
}

/* A price where 0 (or less) means "none". */
static void put_px_opt(jbuf_t *jb, int64_t p)
{
    if (p > 0)
        put_px(jb, p);
    else
        jbuf_puts(jb, "null");
}

static int too_large(jbuf_t *out)
{
    return http_error(out, 500,
                      "the answer does not fit the response buffer (%zu bytes): ask for less "
                      "(fewer symbols or levels) or raise http.response_buffer",
                      out->cap);
}

static int finish(jbuf_t *out, int status)
{
    return jbuf_overflow(out) ? too_large(out) : status;
}

bool query_symbol_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > SYMTAB_SYM_MAX || name[0] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (!c || !strchr(" .-/_+^=*#$:", c))
            return false;
    }
    return true;
}

/* For messages: the first bytes of a bad name, made printable. */
static const char *shown(const char *s, size_t len, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len > 0 && n < len && n + 3 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- symbols ------------------------------------------------------------------------------ */

int query_symbols(const snapshot_t *s, jbuf_t *out)
{
    jbuf_reset(out);
    jbuf_puts(out, "{\"symbols\":[");
    uint32_t nslots = snapshot_slots(s), count = 0;
    snapshot_sym_t r;
    for (uint32_t i = 0; i < nslots && !jbuf_overflow(out); i++) {
        if (snapshot_read_slot(s, i, &r, 0) < 0)
            continue; /* not published yet, or busy past every retry */
        const stats_sym_t *st = &r.stats;
        bool has = r.flags & SNAPSHOT_HAS_STATS;
        if (count++)
            jbuf_putc(out, ',');
        jbuf_puts(out, "{\"symbol\":");
        jbuf_str(out, r.symbol);
        jbuf_printf(out, ",\"locate\":%u,\"last\":", r.locate);
        put_px_opt(out, has ? st->last : 0);
        jbuf_puts(out, ",\"volume\":");
        jbuf_u64(out, has ? st->volume : 0);
        jbuf_puts(out, ",\"trades\":");
        jbuf_u64(out, has ? st->trades : 0);
        jbuf_puts(out, ",\"vwap\":");
        jbuf_num(out, has ? st->vwap : NAN);
        jbuf_puts(out, ",\"bid\":");
        put_px_opt(out, r.bid_size ? r.bid : (has ? st->bid : 0));
        jbuf_puts(out, ",\"ask\":");
        put_px_opt(out, r.ask_size ? r.ask : (has ? st->ask : 0));
        jbuf_puts(out, ",\"return\":"); /* the last closed bar's, as in /v1/symbols/SYM */
        jbuf_num(out, (r.flags & SNAPSHOT_HAS_LAST_BAR) ? r.last_bar.ret : NAN);
        jbuf_puts(out, ",\"ts\":");
        jbuf_u64(out, r.ts);
        jbuf_putc(out, '}');
    }
    jbuf_printf(out, "],\"count\":%" PRIu32 "}", count);
    return finish(out, 200);
}

static void put_bar(jbuf_t *jb, const stats_bar_t *b, uint64_t bar_ns)
{
    bool priced = !(b->flags & STATS_BAR_NOPRICE);
    jbuf_puts(jb, "{\"k\":");
    jbuf_u64(jb, b->k);
    jbuf_puts(jb, ",\"start_ns\":");
    jbuf_u64(jb, b->k * bar_ns);
    jbuf_puts(jb, ",\"open\":");
    put_px_opt(jb, priced ? b->open : 0);
    jbuf_puts(jb, ",\"high\":");
    put_px_opt(jb, priced ? b->high : 0);
    jbuf_puts(jb, ",\"low\":");
    put_px_opt(jb, priced ? b->low : 0);
    jbuf_puts(jb, ",\"close\":");
    put_px_opt(jb, priced ? b->close : 0);
    jbuf_puts(jb, ",\"volume\":");
    jbuf_u64(jb, b->volume);
    jbuf_printf(jb, ",\"trades\":%" PRIu32 ",\"vwap\":", b->trades);
    jbuf_num(jb, b->vwap);
    jbuf_puts(jb, ",\"return\":");
    jbuf_num(jb, b->ret);
    jbuf_puts(jb, ",\"mid_return\":");
    jbuf_num(jb, b->mid_ret);
    jbuf_printf(jb, ",\"carried\":%s,\"priced\":%s}",
                (b->flags & STATS_BAR_CARRIED) ? "true" : "false", priced ? "true" : "false");
}

static void put_stats(jbuf_t *jb, const stats_sym_t *st)
{
    jbuf_puts(jb, "{\"trades\":");
    jbuf_u64(jb, st->trades);
    jbuf_puts(jb, ",\"volume\":");
    jbuf_u64(jb, st->volume);
    jbuf_puts(jb, ",\"notional\":");
    jbuf_num(jb, st->notional);
    jbuf_puts(jb, ",\"vwap\":");
    jbuf_num(jb, st->vwap);
    jbuf_puts(jb, ",\"last\":");
    put_px_opt(jb, st->last);
    jbuf_puts(jb, ",\"last_ts\":");
    if (st->last > 0)
        jbuf_u64(jb, st->last_ts);
    else
        jbuf_puts(jb, "null");
    jbuf_puts(jb, ",\"open\":");
    put_px_opt(jb, st->open);
    jbuf_puts(jb, ",\"high\":");
    put_px_opt(jb, st->high);
    jbuf_puts(jb, ",\"low\":");
    put_px_opt(jb, st->low);
    jbuf_puts(jb, ",\"bid\":");
    put_px_opt(jb, st->bid);
    jbuf_puts(jb, ",\"ask\":");
    put_px_opt(jb, st->ask);
    jbuf_puts(jb, ",\"mid\":");
    jbuf_num(jb, st->mid);
    jbuf_puts(jb, ",\"spread\":");
    jbuf_num(jb, st->spread);
    jbuf_puts(jb, ",\"bar_returns\":");
    jbuf_u64(jb, st->ret_n);
    jbuf_puts(jb, ",\"return_mean\":");
    jbuf_num(jb, st->ret_mean);
    jbuf_puts(jb, ",\"volatility\":");
    jbuf_num(jb, st->vol);
    jbuf_puts(jb, ",\"breaks\":");
    jbuf_u64(jb, st->breaks);
    jbuf_putc(jb, '}');
}

static void put_levels(jbuf_t *jb, const book_level_t *lv, unsigned n)
{
    jbuf_putc(jb, '[');
    for (unsigned i = 0; i < n; i++) {
        jbuf_puts(jb, i ? ",{\"price\":" : "{\"price\":");
        put_px(jb, lv[i].price);
        jbuf_puts(jb, ",\"shares\":");
        jbuf_u64(jb, lv[i].shares);
        jbuf_printf(jb, ",\"orders\":%" PRIu32 "}", lv[i].orders);
    }
    jbuf_putc(jb, ']');
}

/* One side of the top of book: the book's level if it has one, else the stats' last quote
 * (CSV quotes carry no size here), else null. */
static void put_top(jbuf_t *jb, int64_t px, uint64_t size, int64_t quote)
{
    if (size > 0) {
        jbuf_puts(jb, "{\"price\":");
        put_px(jb, px);
        jbuf_puts(jb, ",\"size\":");
        jbuf_u64(jb, size);
        jbuf_putc(jb, '}');
    } else if (quote > 0) {
        jbuf_puts(jb, "{\"price\":");
        put_px(jb, quote);
        jbuf_puts(jb, ",\"size\":null}");
    } else {
        jbuf_puts(jb, "null");
    }
}

/* Parse a depth parameter: decimal 0..max. */
static bool parse_depth(const char *p, uint32_t max, uint32_t *out)
{
    if (!*p || strlen(p) > 5)
        return false;
    uint32_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint32_t)(*p - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

int query_symbol(const snapshot_t *s, const char *name, const char *depth, jbuf_t *out)
{
    char tmp[32];
    size_t len = name ? strlen(name) : 0;
    if (!query_symbol_valid(name, len))
        return http_error(out, 400,
                          "bad symbol \"%s\": 1 to 8 characters of A-Z a-z 0-9 and . - / _ + ^ "
                          "= * # $ : or an inner space",
                          shown(name ? name : "", len, tmp, sizeof tmp));
    uint32_t d = s->depth < QUERY_DEPTH_DEFAULT ? s->depth : QUERY_DEPTH_DEFAULT;
    if (depth && !parse_depth(depth, s->depth, &d))
        return http_error(out, 400, "bad depth \"%s\": a whole number from 0 to %u",
                          shown(depth, strlen(depth), tmp, sizeof tmp), s->depth);
    snapshot_sym_t r;
    int rc = snapshot_find(s, name, &r, d);
    if (rc == -ENOENT)
        return http_error(out, 404, "unknown symbol \"%s\"", name);
    if (rc < 0)
        return http_error(out, 503, "symbol \"%s\" is being updated too fast to read; retry", name);
    const stats_sym_t *st = &r.stats;
    bool has = r.flags & SNAPSHOT_HAS_STATS;
    jbuf_reset(out);
    jbuf_puts(out, "{\"symbol\":");
    jbuf_str(out, r.symbol);
    jbuf_printf(out, ",\"locate\":%u,\"ts\":", r.locate);
    jbuf_u64(out, r.ts);
    jbuf_puts(out, ",\"published_ns\":");
    jbuf_u64(out, r.publish_ns);
    jbuf_puts(out, ",\"version\":");
    jbuf_u64(out, r.version);
    jbuf_puts(out, ",\"bid\":");
    put_top(out, r.bid, r.bid_size, has ? st->bid : 0);
    jbuf_puts(out, ",\"ask\":");
    put_top(out, r.ask, r.ask_size, has ? st->ask : 0);
    double mid = NAN, spread = NAN;
    if (r.bid_size && r.ask_size) {
        mid = (double)(r.bid + r.ask) / (2.0 * EV_PRICE_SCALE);
        spread = (double)(r.ask - r.bid) / EV_PRICE_SCALE;
    } else if (has) {
        mid = st->mid;
        spread = st->spread;
    }
    jbuf_puts(out, ",\"mid\":");
    jbuf_num(out, mid);
    jbuf_puts(out, ",\"spread\":");
    jbuf_num(out, spread);
    jbuf_puts(out, ",\"last\":");
    put_px_opt(out, has ? st->last : 0);
    jbuf_puts(out, ",\"vwap\":");
    jbuf_num(out, has ? st->vwap : NAN);
    jbuf_printf(out, ",\"depth\":{\"levels\":%" PRIu32 ",\"bids\":", d);
    put_levels(out, r.bids, r.nbid);
    jbuf_puts(out, ",\"asks\":");
    put_levels(out, r.asks, r.nask);
    jbuf_printf(out,
                "},\"book\":{\"bid_orders\":%" PRIu32 ",\"bid_levels\":%" PRIu32
                ",\"ask_orders\":%" PRIu32 ",\"ask_levels\":%" PRIu32 "},\"stats\":",
                r.book.orders[0], r.book.levels[0], r.book.orders[1], r.book.levels[1]);
    if (has)
        put_stats(out, st);
    else
        jbuf_puts(out, "null");
    jbuf_puts(out, ",\"last_bar\":");
    if (r.flags & SNAPSHOT_HAS_LAST_BAR)
        put_bar(out, &r.last_bar, s->bar_ns);
    else
        jbuf_puts(out, "null");
    jbuf_puts(out, ",\"open_bar\":");
    if (r.flags & SNAPSHOT_HAS_OPEN_BAR)
        put_bar(out, &r.open_bar, s->bar_ns);
    else
        jbuf_puts(out, "null");
    jbuf_putc(out, '}');
    return finish(out, 200);
}

/* ---- cross-section ------------------------------------------------------------------------ */

static int no_xs(jbuf_t *out, int rc)
{
    if (rc == -ENODATA)
        return http_error(out, 503,
                          "no cross-section has been computed yet (it needs at least "
                          "two bar closes with trades); retry later");
    return http_error(out, 503, "the cross-section is being republished too fast to read; retry");
}

static int busy(jbuf_t *out)
{
    return http_error(out, 503, "the cross-section changed during every read; retry");
}

static void put_meta(jbuf_t *jb, const snapshot_xs_head_t *h)
{
    jbuf_printf(jb, "\"n\":%" PRIu32 ",\"n_rows\":", h->n);
    jbuf_u64(jb, h->rows_window);
    jbuf_puts(jb, ",\"rows_total\":");
    jbuf_u64(jb, h->rows);
    jbuf_puts(jb, ",\"bars\":{\"first\":");
    jbuf_u64(jb, h->first_k);
    jbuf_puts(jb, ",\"last\":");
    jbuf_u64(jb, h->last_k);
    jbuf_puts(jb, ",\"interval_ns\":");
    jbuf_u64(jb, h->bar_ns);
    jbuf_puts(jb, "},\"generation\":");
    jbuf_u64(jb, h->gen);
    jbuf_puts(jb, ",\"published_ns\":");
    jbuf_u64(jb, h->publish_ns);
}

static void put_node_name(jbuf_t *jb, const snapshot_xs_tx_t *tx, uint32_t i)
{
    snapshot_xs_node_t nd;
    snapshot_xs_node(tx, i, &nd);
    jbuf_str(jb, nd.symbol);
}

/* The symbols of a correlation query, split and checked. Returns 0 or an HTTP status written. */
typedef struct names {
    char name[QUERY_CORR_MAX][SYMTAB_SYM_MAX + 1];
    uint32_t idx[QUERY_CORR_MAX];
    unsigned n;
} names_t;

static int parse_names(const char *list, names_t *nm, jbuf_t *out)
{
    char tmp[32];
    if (!list || !*list)
        return http_error(out, 400,
                          "missing symbols: give ?symbols=A,B,... (1 to %d names, comma-separated)",
                          QUERY_CORR_MAX);
    nm->n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a = p;
        while (len && *a == ' ') { /* tolerate spaces after commas and at the ends */
            a++;
            len--;
        }
        while (len && a[len - 1] == ' ')
            len--;
        if (len == 0)
            return http_error(out, 400, "empty symbol in the list \"%s\"",
                              shown(list, strlen(list), tmp, sizeof tmp));
        if (!query_symbol_valid(a, len))
            return http_error(out, 400,
                              "bad symbol \"%s\": 1 to 8 characters of A-Z a-z 0-9 and . - / _ "
                              "+ ^ = * # $ : or an inner space",
                              shown(a, len, tmp, sizeof tmp));
        if (nm->n == QUERY_CORR_MAX)
            return http_error(out, 400, "too many symbols: at most %d in one query",
                              QUERY_CORR_MAX);
        memcpy(nm->name[nm->n], a, len);
        nm->name[nm->n][len] = '\0';
        nm->n++;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* One cross-section answer, written from the buffer the transaction pins: the status of an
 * error reply already written into out (one that does not depend on a consistent read), 0 when
 * the body is written (kept if the buffer stayed unchanged), or XS_RETRY when the read was torn
 * before the answer could be decided. out has been reset. */
#define XS_RETRY (-1)
typedef int xs_body_fn(void *ctx, const snapshot_xs_tx_t *tx, const snapshot_xs_head_t *h,
                       jbuf_t *out);

/* The seqlock retry loop of every cross-section query: begin, write, validate; QUERY_TRIES
 * times, then 503. */
static int xs_answer_gen(const snapshot_t *s, jbuf_t *out, xs_body_fn *body, void *ctx,
                         uint64_t *gen)
{
    for (int t = 0; t < QUERY_TRIES; t++) {
        snapshot_xs_tx_t tx;
        snapshot_xs_head_t h;
        int rc = snapshot_xs_begin(s, &tx, &h);
        if (rc < 0)
            return no_xs(out, rc);
        jbuf_reset(out);
        rc = body(ctx, &tx, &h, out);
        if (rc > 0)
            return rc;
        if (rc == 0 && snapshot_xs_valid(&tx)) {
            *gen = h.gen;
            return finish(out, 200);
        }
    }
    return busy(out);
}

static int xs_answer(const snapshot_t *s, jbuf_t *out, xs_body_fn *body, void *ctx)
{
    uint64_t gen;
    return xs_answer_gen(s, out, body, ctx, &gen);
}

/* A comma between the items of a JSON list. */
static void put_sep(jbuf_t *jb, uint32_t i)
{
    if (i)
        jbuf_putc(jb, ',');
}

typedef struct corr_ctx {
    const snapshot_t *s;
    names_t nm;
} corr_ctx_t;

static int corr_body(void *ctx, const snapshot_xs_tx_t *tx, const snapshot_xs_head_t *h,
                     jbuf_t *out)
{
    corr_ctx_t *c = ctx;
    names_t *nm = &c->nm;
    unsigned bad = NIL;
    for (unsigned i = 0; i < nm->n && bad == NIL; i++) {
        nm->idx[i] = snapshot_xs_find(tx, nm->name[i]);
        if (nm->idx[i] == NIL)
            bad = i;
    }
    if (!snapshot_xs_valid(tx))
        return XS_RETRY;
    if (bad != NIL) {
        snapshot_sym_t r;
        if (snapshot_find(c->s, nm->name[bad], &r, 0) == 0)
            return http_error(out, 404,
                              "symbol \"%s\" is not in the cross-section (it tracks %" PRIu32
                              " symbols, stock locates 1..%u)",
                              nm->name[bad], h->n, c->s->max_n);
        return http_error(out, 404, "unknown symbol \"%s\"", nm->name[bad]);
    }
    jbuf_puts(out, "{\"symbols\":[");
    for (unsigned i = 0; i < nm->n; i++) {
        put_sep(out, i);
        jbuf_str(out, nm->name[i]);
    }
    jbuf_puts(out, "],\"matrix\":[");
    for (unsigned i = 0; i < nm->n; i++) {
        jbuf_puts(out, i ? ",[" : "[");
        for (unsigned j = 0; j < nm->n; j++) {
            put_sep(out, j);
            jbuf_num(out, snapshot_xs_corr(tx, nm->idx[i], nm->idx[j]));
        }
        jbuf_putc(out, ']');
    }
    jbuf_puts(out, "],");
    put_meta(out, h);
    jbuf_putc(out, '}');
    return 0;
}

int query_correlation(const snapshot_t *s, const char *symbols, jbuf_t *out)
{
    corr_ctx_t c = {.s = s};
    int rc = parse_names(symbols, &c.nm, out);
    if (rc)
        return rc;
    return xs_answer(s, out, corr_body, &c);
}

static int pca_body(void *ctx, const snapshot_xs_tx_t *tx, const snapshot_xs_head_t *h, jbuf_t *out)
{
    (void)ctx;
    if (h->k == 0)
        return http_error(out, 503,
                          "the last principal component analysis failed (%d); retry after "
                          "the next computation",
                          h->pca_rc);
    jbuf_putc(out, '{');
    put_meta(out, h);
    jbuf_printf(out, ",\"k\":%" PRIu32 ",\"explained_variance_ratio\":[", h->k);
    double cum = 0;
    for (uint32_t c = 0; c < h->k; c++) {
        put_sep(out, c);
        jbuf_num(out, h->pc_ratio[c]);
        cum += h->pc_ratio[c];
    }
    jbuf_puts(out, "],\"cumulative_ratio\":");
    jbuf_num(out, cum);
    jbuf_puts(out, ",\"symbols\":[");
    for (uint32_t i = 0; i < h->n; i++) {
        put_sep(out, i);
        put_node_name(out, tx, i);
    }
    jbuf_puts(out, "],\"components\":[");
    for (uint32_t c = 0; c < h->k; c++) {
        jbuf_printf(out, "%s{\"component\":%" PRIu32 ",\"eigenvalue\":", c ? "," : "", c + 1);
        jbuf_num(out, h->pc_value[c]);
        jbuf_puts(out, ",\"explained_variance_ratio\":");
        jbuf_num(out, h->pc_ratio[c]);
        jbuf_puts(out, ",\"loadings\":[");
        for (uint32_t i = 0; i < h->n; i++) {
            put_sep(out, i);
            jbuf_num(out, snapshot_xs_loading(tx, c, i));
        }
        jbuf_puts(out, "]}");
    }
    jbuf_puts(out, "]}");
    return 0;
}

int query_pca(const snapshot_t *s, jbuf_t *out)
{
    return xs_answer(s, out, pca_body, NULL);
}

static int graph_failed(jbuf_t *out, const snapshot_xs_head_t *h)
{
    return http_error(out, 503,
                      "the last correlation graph could not be built (%d); retry after the next "
                      "computation",
                      h->graph_rc);
}

static int mst_body(void *ctx, const snapshot_xs_tx_t *tx, const snapshot_xs_head_t *h, jbuf_t *out)
{
    (void)ctx;
    if (h->graph_rc != 0)
        return graph_failed(out, h);
    jbuf_putc(out, '{');
    put_meta(out, h);
    jbuf_puts(out, ",\"total_distance\":");
    jbuf_num(out, h->mst_total);
    jbuf_puts(out, ",\"edges\":[");
    for (uint32_t e = 0; e < h->nedges; e++) {
        snapshot_xs_edge_t ed;
        snapshot_xs_edge(tx, e, &ed);
        jbuf_puts(out, e ? ",{\"from\":" : "{\"from\":");
        put_node_name(out, tx, ed.u);
        jbuf_puts(out, ",\"to\":");
        put_node_name(out, tx, ed.v);
        jbuf_puts(out, ",\"rho\":");
        jbuf_num(out, ed.rho);
        jbuf_puts(out, ",\"distance\":");
        jbuf_num(out, ed.d);
        jbuf_putc(out, '}');
    }
    jbuf_printf(out, "],\"count\":%" PRIu32 "}", h->nedges);
    return 0;
}

int query_mst(const snapshot_t *s, jbuf_t *out)
{
    return xs_answer(s, out, mst_body, NULL);
}

static int clusters_body(void *ctx, const snapshot_xs_tx_t *tx, const snapshot_xs_head_t *h,
                         jbuf_t *out)
{
    (void)ctx;
    if (h->graph_rc != 0)
        return graph_failed(out, h);
    jbuf_putc(out, '{');
    put_meta(out, h);
    jbuf_printf(out, ",\"count\":%" PRIu32 ",\"clusters\":[", h->nclusters);
    uint32_t steps = 0; /* a torn read could make a cycle: never walk more than n nodes */
    for (uint32_t c = 0; c < h->nclusters; c++) {
        jbuf_puts(out, c ? ",[" : "[");
        uint32_t i = snapshot_xs_cluster_first(tx, c, NULL);
        for (uint32_t k = 0; i != NIL && steps < h->n; i = snapshot_xs_next(tx, i), k++) {
            put_sep(out, k);
            put_node_name(out, tx, i);
            steps++;
        }
        jbuf_putc(out, ']');
    }
    jbuf_puts(out, "],\"nodes\":[");
    for (uint32_t i = 0; i < h->n; i++) {
        snapshot_xs_node_t nd;
        snapshot_xs_node(tx, i, &nd);
        jbuf_puts(out, i ? ",{\"symbol\":" : "{\"symbol\":");
        jbuf_str(out, nd.symbol);
        jbuf_printf(
            out, ",\"locate\":%u,\"cluster\":%" PRIu32 ",\"degree\":%" PRIu32 ",\"betweenness\":",
            nd.locate, nd.cluster, nd.degree);
        jbuf_num(out, nd.betweenness);
        jbuf_putc(out, '}');
    }
    jbuf_puts(out, "]}");
    return 0;
}

int query_clusters(const snapshot_t *s, jbuf_t *out)
{
    return xs_answer(s, out, clusters_body, NULL);
}

/* ---- pre-serialised answers --------------------------------------------------------------- */

void query_cache_init(query_cache_t *c, query_xs_t kind, char *buf, size_t cap)
{
    *c = (query_cache_t){.kind = kind, .buf = buf, .cap = cap};
}

int query_cached(query_cache_t *c, const snapshot_t *s, jbuf_t *out)
{
    static xs_body_fn *const bodies[] = {
        [QUERY_XS_PCA] = pca_body, [QUERY_XS_MST] = mst_body, [QUERY_XS_CLUSTERS] = clusters_body};
    uint64_t now = snapshot_xs_gen(s);
    if (c->gen == 0 || c->gen != now) {
        jbuf_t cj;
        jbuf_init(&cj, c->buf, c->cap);
        uint64_t gen = 0;
        c->gen = 0;
        int st = xs_answer_gen(s, &cj, bodies[c->kind], NULL, &gen);
        if (st != 200) { /* the error, written for out's size, not kept */
            jbuf_reset(out);
            return xs_answer(s, out, bodies[c->kind], NULL);
        }
        c->gen = gen;
        c->len = jbuf_len(&cj);
        c->fills++;
    } else {
        c->hits++;
    }
    jbuf_reset(out);
    jbuf_putn(out, c->buf, c->len);
    return finish(out, 200);
}

/* ---- the whole matrix as CSV ---------------------------------------------------------------- */

size_t query_csv_bytes(uint32_t max_n)
{
    size_t n = max_n;
    /* header "symbol" + ",NAME" each; per line NAME + ",value" (<= 24) each + '\n' */
    return 16 + n * (SYMTAB_SYM_MAX + 1) + n * (SYMTAB_SYM_MAX + 2 + 24 * n) + 64;
}

void query_csv_init(query_csv_t *c, char *mem, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->b[0].buf = mem;
    c->b[1].buf = mem + cap;
}

/* Write the CSV of the published cross-section into jb: 0 (consistent), XS_RETRY, or an error
 * status written into err. */
static int csv_write(const snapshot_t *s, jbuf_t *jb, uint64_t *gen, jbuf_t *err)
{
    for (int t = 0; t < QUERY_TRIES; t++) {
        snapshot_xs_tx_t tx;
        snapshot_xs_head_t h;
        int rc = snapshot_xs_begin(s, &tx, &h);
        if (rc < 0)
            return no_xs(err, rc);
        jbuf_reset(jb);
        jbuf_puts(jb, "symbol");
        for (uint32_t j = 0; j < h.n; j++) {
            snapshot_xs_node_t nd;
            snapshot_xs_node(&tx, j, &nd);
            jbuf_putc(jb, ',');
            jbuf_puts(jb, nd.symbol);
        }
        jbuf_putc(jb, '\n');
        for (uint32_t i = 0; i < h.n && !jbuf_overflow(jb); i++) {
            snapshot_xs_node_t nd;
            snapshot_xs_node(&tx, i, &nd);
            jbuf_puts(jb, nd.symbol);
            for (uint32_t j = 0; j < h.n; j++)
                jbuf_printf(jb, ",%.17g", snapshot_xs_corr(&tx, i, j));
            jbuf_putc(jb, '\n');
        }
        if (snapshot_xs_valid(&tx)) {
            if (jbuf_overflow(jb))
                return http_error(err, 500,
                                  "the correlation CSV of %u symbols is larger than its buffer "
                                  "(%zu bytes)",
                                  h.n, jb->cap);
            *gen = h.gen;
            return 0;
        }
    }
    return busy(err);
}

int query_corr_csv(query_csv_t *c, const snapshot_t *s, http_body_t *body, jbuf_t *out)
{
    uint64_t now = snapshot_xs_gen(s);
    if (now == 0)
        return no_xs(out, -ENODATA);
    if (!body) { /* no connection (a test's dispatch): into out, if it fits */
        uint64_t gen;
        jbuf_t tmp = *out;
        int rc = csv_write(s, &tmp, &gen, out);
        if (rc)
            return rc;
        out->len = tmp.len;
        out->overflow = tmp.overflow;
        return 200;
    }
    /* the newest buffer already written from the published generation: send it again */
    query_csv_buf_t *newest = c->b[0].gen >= c->b[1].gen ? &c->b[0] : &c->b[1];
    query_csv_buf_t *b = NULL;
    if (newest->gen == now) {
        b = newest;
        c->hits++;
    } else {
        /* write a buffer nobody is being sent from (the older first) */
        query_csv_buf_t *older = newest == &c->b[0] ? &c->b[1] : &c->b[0];
        query_csv_buf_t *w = !older->sending ? older : !newest->sending ? newest : NULL;
        if (w) {
            jbuf_t jb;
            jbuf_init(&jb, w->buf, c->cap);
            w->gen = 0;
            uint64_t gen = 0;
            int rc = csv_write(s, &jb, &gen, out);
            if (rc)
                return rc;
            w->len = jbuf_len(&jb);
            w->gen = gen;
            c->fills++;
            b = w;
        } else if (newest->gen) { /* both being sent: the newer one, one publish behind */
            b = newest;
            c->hits++;
        } else {
            return busy(out);
        }
    }
    b->sending++;
    body->data = b->buf;
    body->len = b->len;
    body->ctype = "text/csv; charset=utf-8";
    body->release = query_csv_release;
    body->ctx = c;
    return 200;
}

void query_csv_release(void *ctx, const char *data)
{
    query_csv_t *c = ctx;
    for (int i = 0; i < 2; i++)
        if (data == c->b[i].buf && c->b[i].sending)
            c->b[i].sending--;
}
