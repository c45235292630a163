/*
 * report: see report.h.
 */
#include "engine/report.h"

#include "base/jbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

void report_set_times(report_t *r, double reader_busy, double wall)
{
    r->reader_busy = reader_busy;
    r->wall = wall;
}

void report_collect(report_t *r, const pipeline_t *p, const symtab_t *symbols, uint32_t top)
{
    memset(r, 0, sizeof *r);
    r->truth_rc = 1;
    if (!p)
        return;
    r->analytics = true;
    r->workers = p->k;
    static uint16_t cand[PIPE_MAX_WORKERS * REPORT_TOP_MAX];
    static uint8_t cand_shard[PIPE_MAX_WORKERS * REPORT_TOP_MAX];
    size_t ncand = 0;
    if (top > REPORT_TOP_MAX)
        top = REPORT_TOP_MAX;
    histo_t *lat = &r->lat_scratch;
    histo_reset(lat);
    for (unsigned w = 0; w < p->k; w++) {
        const shard_t *s = &p->w[w].shard;
        book_stats_t bs;
        book_stats(&s->book, &bs);
        if (w == 0) {
            r->book = bs;
        } else {
            r->book.max_orders += bs.max_orders;
            r->book.max_levels += bs.max_levels;
            r->book.orders += bs.orders;
            r->book.levels += bs.levels;
            r->book.orders_peak += bs.orders_peak; /* sum of per-shard peaks: an upper bound */
            r->book.levels_peak += bs.levels_peak;
            r->book.unknown_refs += bs.unknown_refs;
            r->book.dup_refs += bs.dup_refs;
            r->book.anomalies += bs.anomalies;
            r->book.orders_exhausted += bs.orders_exhausted;
            r->book.levels_exhausted += bs.levels_exhausted;
            r->book.invalid += bs.invalid;
        }
        uint64_t by_result[BOOK_RESULT_COUNT];
        shard_by_result(s, by_result);
        for (int i = 0; i < BOOK_RESULT_COUNT; i++)
            r->by_result[i] += by_result[i];
        const stats_t *st = &s->stats;
        r->bar_ns = st->cfg.bar_ns;
        r->trades += st->trades;
        r->bars_closed = st->bars_closed; /* every shard closes the same bars */
        r->unpriced += st->unpriced;
        r->breaks += st->breaks;
        r->breaks_unknown += st->breaks_unknown;
        r->sym_full += st->sym_full;
        r->late += st->late;
        size_t got = stats_top_by_volume(st, top, cand + ncand);
        for (size_t i = 0; i < got; i++)
            cand_shard[ncand + i] = (uint8_t)w;
        ncand += got;
        for (uint32_t loc = 1; loc <= SYMTAB_MAX_SYMBOLS; loc++) {
            stats_sym_t ss;
            if (p->owner[loc] == w && stats_get(st, (uint16_t)loc, &ss) == 0 && ss.trades > 0)
                r->symbols_traded++;
        }
        r->worker_busy[w] = p->w[w].busy;
        r->worker_wall[w] = p->w[w].wall;
        r->worker_wait[w] = p->w[w].row_wait;
        r->worker_cpu[w] = p->w[w].cpu;
        r->worker_owned[w] = p->w[w].owned;
        r->row_waits += p->w[w].row_waits;
        histo_merge(lat, &p->w[w].latency);
    }
    r->batches_published = p->published;
    r->acquire_waits = p->acquire_waits;
    r->acquire_wait_s = p->acquire_wait_s;
    r->xs_waits = p->xs_waits;
    r->xs_busy = p->xs_busy;
    r->xs_wait = p->xs_wait;
    r->xs_cpu = p->xs_cpu;
    r->route_s = p->route_s;
    r->lat_n = lat->n;
    r->lat_p50 = histo_quantile(lat, 0.50);
    r->lat_p99 = histo_quantile(lat, 0.99);
    r->lat_p999 = histo_quantile(lat, 0.999);
    r->lat_max = lat->max;
    /* the top symbols over all shards: a selection over the candidates (K * top at most) */
    for (size_t i = 0; i < top && ncand > 0; i++) {
        size_t best = 0;
        uint64_t bv = 0;
        for (size_t c = 0; c < ncand; c++) {
            stats_sym_t ss;
            stats_get(&p->w[cand_shard[c]].shard.stats, cand[c], &ss);
            if (c == 0 || ss.volume > bv || (ss.volume == bv && cand[c] < cand[best])) {
                best = c;
                bv = ss.volume;
            }
        }
        const shard_t *s = &p->w[cand_shard[best]].shard;
        uint16_t loc = cand[best];
        cand[best] = cand[ncand - 1];
        cand_shard[best] = cand_shard[ncand - 1];
        ncand--;
        report_sym_t *t = &r->top[r->ntop++];
        stats_sym_t ss;
        stats_get(&s->stats, loc, &ss);
        t->locate = loc;
        snprintf(t->name, sizeof t->name, "%s", symtab_name(symbols, loc));
        t->trades = ss.trades;
        t->volume = ss.volume;
        t->notional = ss.notional;
        t->vwap = ss.vwap;
        t->last = (double)ss.last / EV_PRICE_SCALE;
        t->open = (double)ss.open / EV_PRICE_SCALE;
        t->high = (double)ss.high / EV_PRICE_SCALE;
        t->low = (double)ss.low / EV_PRICE_SCALE;
        /* no bid (ask) yet: NaN, null in the JSON, as /v1/symbols says it (0 is not a price) */
        t->bid = ss.bid > 0 ? (double)ss.bid / EV_PRICE_SCALE : NAN;
        t->ask = ss.ask > 0 ? (double)ss.ask / EV_PRICE_SCALE : NAN;
        t->spread = ss.spread;
        t->vol = ss.vol;
        book_symbol_t bsym;
        if (book_symbol(&s->book, loc, &bsym) == 0) {
            t->orders = bsym.orders[0] + bsym.orders[1];
            t->levels = bsym.levels[0] + bsym.levels[1];
        }
    }
    const xsection_t *x = &p->xs;
    r->n = x->n;
    r->window = x->est.cfg.cov.window;
    static const char *const est_names[] = {"close", "refresh", "subsample", "twoscale"};
    if (x->est.cfg.kind >= ESTIMATOR_SUBSAMPLE)
        snprintf(r->estimator, sizeof r->estimator, "%s K=%u", est_names[x->est.cfg.kind],
                 x->est.k);
    else
        snprintf(r->estimator, sizeof r->estimator, "%s", est_names[x->est.cfg.kind]);
    r->est_auto = x->est_auto;
    r->shrinkage = x->est.cfg.shrink;
    r->shrink_block = x->est.cfg.block;
    r->lw_delta = x->est.lw_delta;
    r->lw_rbar = x->est.lw_rbar;
    r->est_rows = x->rows_window;
    r->rows = x->rows;
    r->idle_bars = x->idle_bars;
    r->partial_rows = x->partial_rows;
    r->restarts = x->restarts;
    r->discarded_rows = x->discarded_rows;
    r->rejected = x->rejected + x->est.rejected;
    r->recomputes = 0;
    for (unsigned g = 0; g < x->est.k; g++)
        r->recomputes += x->est.grid[g].recomputes;
    r->xs_ok = x->have_result;
    if (!x->have_result)
        return;
    r->npc = x->pc_count;
    memcpy(r->pc, x->pc_ratio, sizeof r->pc);
    if (x->graph_rc == 0) {
        r->mst_total = x->graph.total;
        r->nclusters = x->nclusters;
        /* largest clusters first: a selection over the sizes, no sort needed for 10 */
        static bool taken[65536];
        size_t nc = r->nclusters < 65536 ? r->nclusters : 65536;
        memset(taken, 0, nc);
        for (size_t k = 0; k < REPORT_CLUSTERS_SHOWN && k < nc; k++) {
            size_t best = SIZE_MAX;
            for (size_t c = 0; c < nc; c++)
                if (!taken[c] &&
                    (best == SIZE_MAX || x->graph.cluster_size[c] > x->graph.cluster_size[best]))
                    best = c;
            taken[best] = true;
            r->cluster_size[k] = x->graph.cluster_size[best];
        }
        size_t hub = 0;
        for (size_t i = 1; i < x->graph.n; i++)
            if (x->graph.between[i] > x->graph.between[hub])
                hub = i;
        if (x->graph.n) {
            snprintf(r->hub, sizeof r->hub, "%s", symtab_name(symbols, x->locs[hub]));
            r->hub_degree = x->graph.degree[hub];
        }
    }
}

static const char *dur(uint64_t ns, char *buf, size_t n)
{
    if (ns % 86400000000000ull == 0)
        snprintf(buf, n, "%llud", (unsigned long long)(ns / 86400000000000ull));
    else if (ns % 3600000000000ull == 0)
        snprintf(buf, n, "%lluh", (unsigned long long)(ns / 3600000000000ull));
    else if (ns % 60000000000ull == 0)
        snprintf(buf, n, "%llum", (unsigned long long)(ns / 60000000000ull));
    else
        snprintf(buf, n, "%gs", (double)ns / 1e9);
    return buf;
}

static void report_pipeline_text(FILE *f, const report_t *r)
{
    if (r->workers == 0)
        return;
    fprintf(f,
            "  pipeline: %u worker%s, %" PRIu64 " batches; the reader waited %" PRIu64
            " times (%.3f s) for a free batch (backpressure)\n",
            r->workers, r->workers == 1 ? "" : "s", r->batches_published, r->acquire_waits,
            r->acquire_wait_s);
    /* busy: working; wait: blocked on another stage (not work); the busiest stage is the
     * bottleneck */
    fprintf(f, "    %-30s %9s %9s %9s %9s %7s\n", "stage", "busy s", "wait s", "cpu s", "wall s",
            "busy");
    double wall = r->wall > 0 ? r->wall : 1;
    const char *worst = "reader (read + decode + route)";
    double worst_f = r->reader_busy / wall;
    fprintf(f, "    %-30s %9.3f %9.3f %9s %9.3f %6.1f%%\n", worst, r->reader_busy,
            r->acquire_wait_s, "-", r->wall, 100 * r->reader_busy / wall);
    static char names[PIPE_MAX_WORKERS][48];
    for (unsigned w = 0; w < r->workers; w++) {
        snprintf(names[w], sizeof names[w], "worker %u (books + stats)", w);
        double fr = r->worker_busy[w] / wall;
        fprintf(f, "    %-30s %9.3f %9.3f %9.3f %9.3f %6.1f%%  %" PRIu64 " events applied\n",
                names[w], r->worker_busy[w], r->worker_wait[w], r->worker_cpu[w], r->worker_wall[w],
                100 * fr, r->worker_owned[w]);
        if (fr > worst_f) {
            worst_f = fr;
            worst = names[w];
        }
    }
    const char *xs = "cross-section (bar rows)";
    fprintf(f, "    %-30s %9.3f %9.3f %9.3f %9.3f %6.1f%%\n", xs, r->xs_busy, r->xs_wait, r->xs_cpu,
            r->wall, 100 * r->xs_busy / wall);
    if (r->xs_busy / wall > worst_f) {
        worst_f = r->xs_busy / wall;
        worst = xs;
    }
    fprintf(f, "    bottleneck: %s (%.0f%% busy)\n", worst, 100 * worst_f);
    fprintf(f,
            "    latency, batch published -> applied: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
            "max %.3f ms over %" PRIu64 " events\n",
            (double)r->lat_p50 / 1e6, (double)r->lat_p99 / 1e6, (double)r->lat_p999 / 1e6,
            (double)r->lat_max / 1e6, r->lat_n);
}

void report_text(FILE *f, const report_t *r)
{
    if (!r->analytics)
        return;
    const book_stats_t *b = &r->book;
    fprintf(f,
            "  order books: %" PRIu64 " live orders on %" PRIu64 " levels at the end (peak %" PRIu64
            " orders, %" PRIu64 " levels; capacity %u, %u)\n",
            b->orders, b->levels, b->orders_peak, b->levels_peak, b->max_orders, b->max_levels);
    fprintf(f,
            "    unknown references %" PRIu64 ", duplicate adds %" PRIu64 ", anomalies %" PRIu64
            ", dropped for capacity %" PRIu64 " orders / %" PRIu64 " levels, invalid %" PRIu64 "\n",
            b->unknown_refs, b->dup_refs, b->anomalies, b->orders_exhausted, b->levels_exhausted,
            b->invalid);
    char d[32];
    fprintf(f,
            "  trades: %" PRIu64 " in %u symbols; %" PRIu64 " bars of %s closed; executions "
            "without a book price %" PRIu64 "; breaks %" PRIu64 " applied, %" PRIu64 " unknown\n",
            r->trades, r->symbols_traded, r->bars_closed, dur(r->bar_ns, d, sizeof d), r->unpriced,
            r->breaks, r->breaks_unknown);
    if (r->ntop) {
        fprintf(f, "  top %zu symbols by volume:\n", r->ntop);
        fprintf(f, "    %-8s %8s %11s %10s %10s %10s %10s %10s %8s %8s %7s\n", "symbol", "trades",
                "volume", "VWAP", "open", "high", "low", "close", "spread", "bar vol", "orders");
        for (size_t i = 0; i < r->ntop; i++) {
            const report_sym_t *t = &r->top[i];
            fprintf(f,
                    "    %-8s %8" PRIu64 " %11" PRIu64
                    " %10.4f %10.4f %10.4f %10.4f %10.4f %8.4f %7.4f%% %7u\n",
                    t->name, t->trades, t->volume, t->vwap, t->open, t->high, t->low, t->last,
                    t->spread, t->vol * 100, t->orders);
        }
    }
    fprintf(f,
            "  cross-section: %zu symbols, %" PRIu64 " bar rows (window %zu, %" PRIu64
            " idle bars skipped, %" PRIu64 " partial rows skipped, %" PRIu64
            " rows before a late starter's first return dropped, %" PRIu64 " rejected, %" PRIu64
            " full recomputes)\n",
            r->n, r->rows, r->window, r->idle_bars, r->partial_rows, r->discarded_rows, r->rejected,
            r->recomputes);
    fprintf(f, "    estimator: %s", r->estimator);
    if (r->est_auto) {
        char bd[32];
        fprintf(f, " (matrix.estimator = auto, for %s bars)", dur(r->bar_ns, bd, sizeof bd));
    }
    fprintf(f, " over %" PRIu64 " rows", r->est_rows);
    if (r->shrinkage)
        fprintf(f, ", Ledoit-Wolf shrinkage to %s correlation (mean %.3f): intensity %.4f",
                r->shrink_block ? "block-constant" : "constant", r->lw_rbar, r->lw_delta);
    fputc('\n', f);
    if (!r->xs_ok) {
        fprintf(f, "    no correlation: %s\n",
                r->n < 2 ? "it needs at least 2 symbols" : "fewer than 2 bars with trades");
        return;
    }
    if (r->npc) {
        fprintf(f, "    PC1 explains %.1f%% of the variance (the market factor)", r->pc[0] * 100);
        for (size_t i = 1; i < r->npc && i < 5; i++)
            fprintf(f, "%s PC%zu %.1f%%", i == 1 ? ";" : ",", i + 1, r->pc[i] * 100);
        fputc('\n', f);
    }
    fprintf(f, "    MST: total distance %.3f; hub %s (degree %u); %zu clusters, largest:",
            r->mst_total, r->hub, r->hub_degree, r->nclusters);
    for (size_t k = 0; k < REPORT_CLUSTERS_SHOWN && k < r->nclusters; k++)
        fprintf(f, " %u", r->cluster_size[k]);
    fprintf(f, "\n    computed in %.1f ms\n", r->xs_seconds * 1e3);
    report_pipeline_text(f, r);
    if (r->truth_rc == 0)
        fprintf(f,
                "    vs truth (%s): mean |rho - true rho| %.3f over %zu pairs (max %.3f; mean rho "
                "%.3f, true %.3f); clusters vs %zu sectors: adjusted Rand index %.3f\n",
                r->truth_path, r->truth.mae, r->truth.pairs, r->truth.max_err, r->truth.mean_est,
                r->truth.mean_true, r->truth.sectors, r->truth.ari);
    if (r->truth_rc == 0 && r->truth.floor_pairs)
        fprintf(f,
                "    estimator %s: bias %+.4f, mean |error| %.4f; floor (latent one-minute "
                "sample correlation, %s): bias %+.4f, mean |error| %.4f; ratio %.2f\n",
                r->estimator, r->truth.bias, r->truth.mae, r->truth.floor_path, r->truth.floor_bias,
                r->truth.floor_mae, r->truth.mae / r->truth.floor_mae);
    else if (r->truth_rc == 0)
        fprintf(f, "    estimator %s: bias %+.4f, mean |error| %.4f (no floor file)\n",
                r->estimator, r->truth.bias, r->truth.mae);
    else if (r->truth_rc < 0)
        fprintf(f, "    vs truth: %s\n", r->truth.err);
}

static void num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* ,"key":v */
static void key_num(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":", key);
    num(f, v);
}

void report_json(FILE *f, const report_t *r)
{
    if (!r->analytics) {
        fputs("null", f);
        return;
    }
    const book_stats_t *b = &r->book;
    fprintf(f,
            "{\"book\":{\"orders\":%" PRIu64 ",\"levels\":%" PRIu64 ",\"orders_peak\":%" PRIu64
            ",\"levels_peak\":%" PRIu64 ",\"unknown_refs\":%" PRIu64 ",\"dup_refs\":%" PRIu64
            ",\"anomalies\":%" PRIu64 ",\"orders_exhausted\":%" PRIu64
            ",\"levels_exhausted\":%" PRIu64 ",\"invalid\":%" PRIu64 "}",
            b->orders, b->levels, b->orders_peak, b->levels_peak, b->unknown_refs, b->dup_refs,
            b->anomalies, b->orders_exhausted, b->levels_exhausted, b->invalid);
    fprintf(f,
            ",\"stats\":{\"bar_ns\":%" PRIu64 ",\"trades\":%" PRIu64 ",\"symbols_traded\":%u"
            ",\"bars_closed\":%" PRIu64 ",\"unpriced\":%" PRIu64 ",\"breaks\":%" PRIu64
            ",\"breaks_unknown\":%" PRIu64 "},\"top\":[",
            r->bar_ns, r->trades, r->symbols_traded, r->bars_closed, r->unpriced, r->breaks,
            r->breaks_unknown);
    for (size_t i = 0; i < r->ntop; i++) {
        const report_sym_t *t = &r->top[i];
        fprintf(f, "%s{\"symbol\":\"%s\",\"locate\":%u,\"trades\":%" PRIu64 ",\"volume\":%" PRIu64,
                i ? "," : "", t->name, t->locate, t->trades, t->volume);
        const struct {
            const char *key;
            double v;
        } nums[] = {{"notional", t->notional}, {"vwap", t->vwap}, {"open", t->open},
                    {"high", t->high},         {"low", t->low},   {"last", t->last},
                    {"bid", t->bid},           {"ask", t->ask},   {"spread", t->spread},
                    {"bar_vol", t->vol}};
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
            key_num(f, nums[k].key, nums[k].v);
        fprintf(f, ",\"orders\":%u,\"levels\":%u}", t->orders, t->levels);
    }
    fprintf(f,
            "],\"xsection\":{\"symbols\":%zu,\"rows\":%" PRIu64
            ",\"window\":%zu,\"idle_bars\":%" PRIu64 ",\"partial_rows\":%" PRIu64
            ",\"restarts\":%" PRIu64 ",\"discarded_rows\":%" PRIu64 ",\"ok\":%s,",
            r->n, r->rows, r->window, r->idle_bars, r->partial_rows, r->restarts, r->discarded_rows,
            r->xs_ok ? "true" : "false");
    fputs("\"estimator\":", f);
    jbuf_fput_str(f, r->estimator);
    fprintf(f, ",\"estimator_auto\":%s", r->est_auto ? "true" : "false");
    fprintf(f, ",\"estimator_rows\":%" PRIu64 ",\"shrinkage\":", r->est_rows);
    jbuf_fput_str(f, !r->shrinkage     ? "none"
                     : r->shrink_block ? "ledoit-wolf-block"
                                       : "ledoit-wolf");
    key_num(f, "lw_intensity", r->shrinkage ? r->lw_delta : NAN);
    key_num(f, "lw_target_rho", r->shrinkage ? r->lw_rbar : NAN);
    fputs(",\"pc_explained\":[", f);
    for (size_t i = 0; i < r->npc; i++) {
        if (i)
            fputc(',', f);
        num(f, r->pc[i]);
    }
    fputs("],\"mst_total\":", f);
    num(f, r->xs_ok ? r->mst_total : NAN);
    fprintf(f, ",\"clusters\":%zu,\"seconds\":%.6f}", r->nclusters, r->xs_seconds);
    fprintf(f,
            ",\"pipeline\":{\"workers\":%u,\"batches\":%" PRIu64 ",\"acquire_waits\":%" PRIu64
            ",\"acquire_wait_s\":%.6f,\"reader_busy_s\":%.6f,\"route_s\":%.6f,"
            "\"xsection_busy_s\":%.6f,\"xsection_wait_s\":%.6f,\"xsection_cpu_s\":%.6f,"
            "\"wall_s\":%.6f,\"worker_busy_s\":[",
            r->workers, r->batches_published, r->acquire_waits, r->acquire_wait_s, r->reader_busy,
            r->route_s, r->xs_busy, r->xs_wait, r->xs_cpu, r->wall);
    for (unsigned w = 0; w < r->workers; w++)
        fprintf(f, "%s%.6f", w ? "," : "", r->worker_busy[w]);
    fputs("],\"worker_cpu_s\":[", f);
    for (unsigned w = 0; w < r->workers; w++)
        fprintf(f, "%s%.6f", w ? "," : "", r->worker_cpu[w]);
    fprintf(f,
            "],\"latency_ns\":{\"n\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
            ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}",
            r->lat_n, r->lat_p50, r->lat_p99, r->lat_p999, r->lat_max);
    fputs(",\"truth\":", f);
    if (r->truth_rc == 0) {
        fprintf(f, "{\"pairs\":%zu", r->truth.pairs);
        key_num(f, "mae", r->truth.mae);
        key_num(f, "max_err", r->truth.max_err);
        key_num(f, "ari", r->truth.ari);
        key_num(f, "mean_est", r->truth.mean_est);
        key_num(f, "mean_true", r->truth.mean_true);
        key_num(f, "bias", r->truth.bias);
        fprintf(f, ",\"floor_pairs\":%zu", r->truth.floor_pairs);
        key_num(f, "floor_mae", r->truth.floor_mae);
        key_num(f, "floor_bias", r->truth.floor_bias);
        key_num(f, "mae_over_floor",
                r->truth.floor_pairs ? r->truth.mae / r->truth.floor_mae : NAN);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs("}", f);
}

int report_write_file(const char *path, int (*fn)(const xsection_t *, FILE *), const xsection_t *x)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "tickcore replay: %s: cannot write: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = fn(x, f);
    if (fclose(f) != 0 || rc < 0) {
        fprintf(stderr, "tickcore replay: %s: write failed\n", path);
        return 1;
    }
    return 0;
}

void report_memory_text(FILE *f, const mem_snapshot_t *s, bool verbose)
{
    if (verbose) {
        mem_report_text(f, s, MEM_REPORT_LEAKS);
        return;
    }
    fprintf(f, "  memory: allocations after the seal: %" PRIu64 " churn (%" PRIu64 " bytes)%s",
            s->total.churn_allocs, s->total.churn_bytes, s->strict ? ", strict" : "");
    fprintf(f, "; peak RSS: %.1f MiB (--verbose: the table by tag)\n",
            (double)s->peak_rss / (1024.0 * 1024.0));
    for (unsigned i = 0; i < s->nsites; i++)
        fprintf(f, "    churn site %s:%d [%s]: %" PRIu64 " allocations, %" PRIu64 " bytes\n",
                s->sites[i].file, s->sites[i].line, mem_tag_name(s->sites[i].tag),
                s->sites[i].count, s->sites[i].bytes);
    if (mem_leak_count(s) == 0) {
        fprintf(f, "  leak check: OK, 0 live bytes in every tag\n");
        return;
    }
    for (unsigned t = 0; t < MEM_TAG_COUNT; t++)
        if (s->tag[t].live != 0 || s->tag[t].live_blocks != 0)
            fprintf(f, "  LEAK: tag %s holds %" PRId64 " B in %" PRId64 " blocks\n",
                    mem_tag_name((mem_tag_t)t), s->tag[t].live, s->tag[t].live_blocks);
}
