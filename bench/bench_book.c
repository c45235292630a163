/*
 * bench_book: order book messages per second on one core. A realistic ITCH-like stream is built
 * in memory before any timing: 500 symbols, about 45% adds (A, a few F), 40% deletes, 6%
 * replaces, 3% cancels, 5% executions (a third of them the whole order) and 1% P, prices
 * clustered near a drifting mid (a fifth up to 2 dollars away), references increasing as ITCH
 * assigns them, and removals biased to recent orders (most of a real day's orders live for well
 * under a second) with one in five anywhere in the book. Each run resets the book (default config:
 * the NASDAQ-day sizing) and applies the whole stream, in turn with book_apply one event at a
 * time, with book_apply_batch on batches of 4,096, and with shard_apply on the same batches (book
 * and stats, as one pipeline worker runs them: the stats see every event, and the best bid and
 * offer after each book change; its book is sized by config_default); each figure is the median of
 * its runs.
 * The stream is applied after mem_seal(), and the mem/ churn counters are printed: they
 * must be 0. N = $TICKCORE_BENCH_EVENTS (default 10^7), runs = $TICKCORE_BENCH_RUNS (default 5).
 */
#include "analytics/book.h"
#include "base/clock.h"
#include "bench/bench_util.h"
#include "config/config.h"
#include "engine/shard.h"
#include "mem/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSYM   500
#define RECENT 2048 /* removals mostly pick among the newest this many live orders */
#define BATCH  4096 /* events per book_apply_batch call (the stream's default batch) */

static book_fill_t g_fills[BATCH];

typedef struct gorder {
    uint64_t ref;
    int64_t price;
    uint32_t shares;
    uint16_t locate;
    uint8_t side;
} gorder_t;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd(void)
{
    uint64_t x = g_rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return g_rng = x;
}

static int64_t g_mid[NSYM + 1];

static int64_t gen_price(uint16_t loc, uint8_t side)
{
    uint64_t r = rnd();
    int64_t ticks = r % 5 ? (int64_t)(r >> 8) % 10 : (int64_t)(r >> 8) % 200;
    int64_t p = side == 'B' ? g_mid[loc] - 100 * ticks : g_mid[loc] + 100 + 100 * ticks;
    return p > 0 ? p : 100;
}

/* Fill evs[0..n) and return the most orders live at once in the stream. */
static size_t build_stream(ev_t *evs, size_t n, gorder_t *live, size_t cap)
{
    size_t nlive = 0, peak = 0;
    uint64_t next_ref = 1;
    for (uint32_t s = 1; s <= NSYM; s++)
        g_mid[s] = 50000 + (int64_t)(rnd() % 5000) * 100;
    for (size_t i = 0; i < n; i++) {
        ev_t *e = &evs[i];
        memset(e, 0, sizeof *e);
        e->ts = i;
        uint32_t k = (uint32_t)(rnd() % 100);
        if (nlive == 0 || (k < 45 && nlive < cap)) {
            uint16_t loc = (uint16_t)(1 + rnd() % NSYM);
            if (rnd() % 32 == 0)
                g_mid[loc] += rnd() % 2 ? 100 : -100;
            uint8_t side = rnd() % 2 ? 'B' : 'S';
            gorder_t o = {.ref = next_ref++,
                          .locate = loc,
                          .side = side,
                          .price = gen_price(loc, side),
                          .shares = 100 * (1 + rnd() % 10)};
            live[nlive++] = o;
            if (nlive > peak)
                peak = nlive;
            *e = (ev_t){.type = rnd() % 50 ? 'A' : 'F',
                        .ref = o.ref,
                        .locate = loc,
                        .side = side,
                        .price = o.price,
                        .shares = o.shares,
                        .ts = i};
            continue;
        }
        if (k == 99) { /* a non-displayable trade: the book ignores it */
            *e = (ev_t){.type = 'P',
                        .ref = 0,
                        .locate = (uint16_t)(1 + rnd() % NSYM),
                        .side = 'B',
                        .price = g_mid[1],
                        .shares = 100,
                        .ts = i};
            continue;
        }
        size_t w = nlive < RECENT ? nlive : RECENT;
        size_t j = rnd() % 5 ? nlive - 1 - rnd() % w : rnd() % nlive;
        gorder_t *o = &live[j];
        e->ref = o->ref;
        e->locate = o->locate;
        bool gone = true;
        if (k < 85) {
            e->type = 'D';
        } else if (k < 91) {
            e->type = 'U';
            e->new_ref = next_ref++;
            e->price = gen_price(o->locate, o->side);
            e->shares = 100 * (1 + rnd() % 10);
            o->ref = e->new_ref;
            o->price = e->price;
            o->shares = (uint32_t)e->shares;
            gone = false;
        } else {
            e->type = k < 94 ? 'X' : 'E'; /* 3% X, 5% E */
            if (o->shares <= 100 || rnd() % 3 == 0) {
                e->shares = o->shares;
            } else {
                e->shares = 100 * (1 + rnd() % (o->shares / 100 - 1));
                o->shares -= (uint32_t)e->shares;
                gone = false;
            }
        }
        if (gone)
            live[j] = live[--nlive];
    }
    return peak;
}

int main(void)
{
    bench_print_machine(stdout);
    size_t n = bench_env_count("TICKCORE_BENCH_EVENTS", 10000000);
    int runs = bench_runs_max(5, 64);
    book_config_t cfg;
    book_config_default(&cfg);
    book_t b;
    if (book_init(&b, &cfg) != 0) {
        fprintf(stderr, "bench_book: book_init failed\n");
        return 1;
    }
    config_t ccfg;
    config_default(&ccfg);
    shard_t sh;
    if (shard_init(&sh, &ccfg, 1, NULL, NULL) != 0) {
        fprintf(stderr, "bench_book: shard_init failed\n");
        return 1;
    }
    size_t cap = cfg.max_orders;
    ev_t *evs = mem_alloc_prefault(MEM_TAG_BENCH, n * sizeof(ev_t), 64);
    gorder_t *live = mem_alloc(MEM_TAG_BENCH, cap * sizeof(gorder_t));
    if (evs == NULL || live == NULL) {
        fprintf(stderr, "bench_book: cannot allocate %zu events\n", n);
        return 1;
    }
    size_t peak = build_stream(evs, n, live, cap);
    mem_free(MEM_TAG_BENCH, live, cap * sizeof(gorder_t));
    size_t types[256] = {0};
    for (size_t i = 0; i < n; i++)
        types[evs[i].type]++;
    printf("stream: %zu events, %d symbols: A %.1f%% F %.1f%% D %.1f%% U %.1f%% X %.1f%% "
           "E %.1f%%; up to %zu live orders\n",
           n, NSYM, 100.0 * types['A'] / n, 100.0 * types['F'] / n, 100.0 * types['D'] / n,
           100.0 * types['U'] / n, 100.0 * types['X'] / n, 100.0 * types['E'] / n, peak);
    printf("book: max_orders %u, max_levels %u, max_locate %u\n", cfg.max_orders, cfg.max_levels,
           cfg.max_locate);

    mem_seal();
    mem_snapshot_t s0, s1;
    mem_snapshot(&s0);
    /* Runs take turns: book_apply one event at a time, book_apply_batch on batches of BATCH
     * events (the stream's default), shard_apply on the same batches; so all see the same
     * machine. */
    enum { MODES = 3 };
    double rate[MODES][64], cpu_rate[MODES][64];
    uint64_t sink = 0, csum[MODES] = {0, 0, 0};
    for (int r = 0; r < MODES * runs; r++) {
        int batched = r % MODES;
        if (batched == 2) { /* b keeps the last batched run's book for the report below */
            book_reset(&sh.book);
            stats_new_session(&sh.stats);
        } else {
            book_reset(&b);
        }
        double t0 = clock_mono_s(), c0 = clock_thread_cpu_s();
        if (batched == 2) {
            for (size_t i = 0; i < n; i += BATCH)
                shard_apply(&sh, &evs[i], n - i < BATCH ? n - i : BATCH);
        } else if (batched) {
            for (size_t i = 0; i < n; i += BATCH) {
                size_t k = n - i < BATCH ? n - i : BATCH;
                sink += book_apply_batch(&b, &evs[i], k, g_fills);
                sink += g_fills[k - 1].shares;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                book_fill_t f;
                sink += (uint64_t)book_apply(&b, &evs[i], &f) + f.shares;
            }
        }
        rate[batched][r / MODES] = (double)n / (clock_mono_s() - t0);
        cpu_rate[batched][r / MODES] = (double)n / (clock_thread_cpu_s() - c0);
        const book_t *bk = batched == 2 ? &sh.book : &b;
        csum[batched] = book_checksum(bk, 1) ^ book_checksum(bk, NSYM);
    }
    mem_snapshot(&s1);
    mem_unseal();
    book_stats_t st;
    book_stats(&b, &st);
    const char *what[MODES] = {"book_apply", "book_apply_batch", "shard_apply"};
    for (int k = 0; k < MODES; k++) {
        double med = bench_median(rate[k], (size_t)runs);
        double cmed = bench_median(cpu_rate[k], (size_t)runs);
        printf("%-16s: %.2f M msgs/s wall (%.1f ns/msg), %.2f M msgs per CPU second; medians of "
               "%d runs  [check %llu]\n",
               what[k], med / 1e6, 1e9 / med, cmed / 1e6, runs, (unsigned long long)(sink & 0xff));
    }
    if (csum[0] != csum[1] || csum[0] != csum[2]) {
        fprintf(stderr, "bench_book: the batched or shard book differs from the one-by-one book\n");
        return 1;
    }
    printf("last run: %llu live orders at the end (peak %llu), %llu levels (peak %llu); "
           "unknown %llu, anomalies %llu, dropped %llu\n",
           (unsigned long long)st.orders, (unsigned long long)st.orders_peak,
           (unsigned long long)st.levels, (unsigned long long)st.levels_peak,
           (unsigned long long)st.unknown_refs, (unsigned long long)st.anomalies,
           (unsigned long long)(st.orders_exhausted + st.levels_exhausted));
    uint64_t allocs = s1.total.allocs - s0.total.allocs;
    printf("allocations during the timed loops: %llu (churn after seal: %llu; must be 0)\n",
           (unsigned long long)allocs,
           (unsigned long long)(s1.total.churn_allocs - s0.total.churn_allocs));
    mem_free(MEM_TAG_BENCH, evs, n * sizeof(ev_t));
    book_fini(&b);
    shard_fini(&sh);
    mem_snapshot(&s1);
    printf("mem after teardown: %lld live bytes in tag book, %lld in stats, %lld in bench (must "
           "be 0)\n",
           (long long)s1.tag[MEM_TAG_BOOK].live, (long long)s1.tag[MEM_TAG_STATS].live,
           (long long)s1.tag[MEM_TAG_BENCH].live);
    return allocs != 0 || s1.tag[MEM_TAG_BOOK].live != 0 || s1.tag[MEM_TAG_STATS].live != 0 ||
           s1.tag[MEM_TAG_BENCH].live != 0;
}
