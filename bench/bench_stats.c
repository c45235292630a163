/*
 * bench_stats: trades applied per second by analytics/stats for 500 symbols with 1-minute bars
 * (and, for comparison, 1-second bars), over a synthetic 6.5-hour session of ITCH-like trades
 * (E with the book's price, C printable and not, P, Q) and a few breaks. Events are made before
 * the clock starts; each run applies them to a fresh stats_t, with a bar callback that fetches
 * one row of log returns for all 500 symbols per closed bar, as the covariance module will.
 * Figures are medians of several runs; the machine is shared, so absolute numbers are for the
 * record only. Environment: TICKCORE_BENCH_RUNS (default 7), TICKCORE_BENCH_EVENTS (default
 * 1,000,000).
 */
#include "analytics/stats.h"
#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/mem.h"
#include "tests/support/xorshift.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NSYM = 500 };

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    return xorshift64_next(&rng);
}

typedef struct row_ctx {
    uint16_t locs[NSYM];
    double row[NSYM];
    double sink;
    uint64_t rows;
} row_ctx_t;

static void on_bar(void *ctx, const stats_t *st, uint64_t k)
{
    row_ctx_t *c = ctx;
    if (stats_bar_row(st, k, STATS_ROW_LOGRET, c->locs, NSYM, c->row) == 0) {
        double v = c->row[k % NSYM];
        if (v == v)
            c->sink += v;
        c->rows++;
    }
}

static double run_once(const ev_t *ev, const int64_t *xp, size_t n, uint64_t bar_ns, uint32_t mcap,
                       row_ctx_t *rc, uint64_t *bars, double *cpu_rate)
{
    stats_t st;
    stats_cfg_t cfg = {.max_locate = NSYM,
                       .max_symbols = NSYM,
                       .bar_ns = bar_ns,
                       .bar_history = 512,
                       .match_capacity = mcap,
                       .on_bar = on_bar,
                       .on_bar_ctx = rc};
    if (stats_init(&st, &cfg)) {
        fprintf(stderr, "bench_stats: stats_init failed\n");
        exit(1);
    }
    double t0 = clock_mono_s(), c0 = clock_thread_cpu_s();
    for (size_t i = 0; i < n; i++)
        stats_apply(&st, &ev[i], xp[i]);
    double dt = clock_mono_s() - t0;
    *cpu_rate = (double)n / (clock_thread_cpu_s() - c0);
    *bars = st.bars_closed;
    stats_fini(&st);
    return (double)n / dt;
}

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(7, 64);
    size_t n = bench_env_count("TICKCORE_BENCH_EVENTS", 1000000);
    ev_t *ev = mem_alloc(MEM_TAG_BENCH, n * sizeof(ev_t));
    int64_t *xp = mem_alloc(MEM_TAG_BENCH, n * sizeof(int64_t));
    row_ctx_t *rc = mem_zalloc(MEM_TAG_BENCH, sizeof(row_ctx_t));
    if (!ev || !xp || !rc) {
        fprintf(stderr, "bench_stats: out of memory\n");
        return 1;
    }
    for (int i = 0; i < NSYM; i++)
        rc->locs[i] = (uint16_t)(i + 1);
    int64_t px[NSYM];
    for (int i = 0; i < NSYM; i++)
        px[i] = 50000 + (int64_t)(rnd() % 2000000);
    uint64_t ts = 34200ull * 1000000000ull, span = 23400ull * 1000000000ull; /* 9:30-16:00 */
    uint64_t step = 2 * span / n;
    for (size_t i = 0; i < n; i++) {
        ts += rnd() % step;
        int s = (int)(rnd() % NSYM);
        int64_t d = (int64_t)(rnd() % 21) - 10;
        if (px[s] + d > 100)
            px[s] += d;
        ev_t *e = &ev[i];
        memset(e, 0, sizeof(*e));
        e->ts = ts;
        e->locate = (uint16_t)(s + 1);
        e->shares = 1 + rnd() % 500;
        e->match = i + 1;
        e->price = px[s];
        xp[i] = 0;
        unsigned r = (unsigned)(rnd() % 1000);
        if (r < 400) {
            e->type = 'E';
            e->price = 0;
            xp[i] = px[s];
        } else if (r < 600) {
            e->type = 'C';
            e->aux = r < 580 ? 'Y' : 'N';
        } else if (r < 998) {
            e->type = 'P';
        } else if (r < 999) {
            e->type = 'Q';
            e->aux = 'C';
        } else {
            e->type = 'B';
            e->match = i > 100 ? i - rnd() % 100 : 1;
        }
    }
    printf("stats_apply: %d symbols, %zu events over 6.5 h (40%% E, 20%% C of which 10%% "
           "non-printable, 40%% P, 0.1%% Q, 0.1%% B);\nbar callback reads a %d-symbol row of "
           "log returns per closed bar; median of %d runs\n",
           NSYM, n, NSYM, runs);
    printf("  %-24s %12s %10s %14s %12s\n", "bars, break map", "events/s", "ns/event",
           "CPU ns/event", "bars closed");
    const uint64_t bar_ns[3] = {60ull * 1000000000ull, 1000000000ull, 60ull * 1000000000ull};
    const uint32_t mcap[3] = {1u << 16, 1u << 16, 0};
    const char *names[3] = {"1 min, 65536 trades", "1 s, 65536 trades", "1 min, none"};
    for (int b = 0; b < 3; b++) {
        double r[64], c[64];
        uint64_t bars = 0;
        run_once(ev, xp, n / 10 + 1, bar_ns[b], mcap[b], rc, &bars, &c[0]); /* warm-up */
        for (int i = 0; i < runs; i++)
            r[i] = run_once(ev, xp, n, bar_ns[b], mcap[b], rc, &bars, &c[i]);
        double med = bench_median(r, (size_t)runs), cmed = bench_median(c, (size_t)runs);
        printf("  %-24s %10.2f M %10.1f %14.1f %12llu\n", names[b], med / 1e6, 1e9 / med,
               1e9 / cmed, (unsigned long long)bars);
    }
    printf("(rows read by the callback: %llu, checksum %.6g)\n", (unsigned long long)rc->rows,
           rc->sink);
    mem_free(MEM_TAG_BENCH, ev, n * sizeof(ev_t));
    mem_free(MEM_TAG_BENCH, xp, n * sizeof(int64_t));
    mem_free(MEM_TAG_BENCH, rc, sizeof(row_ctx_t));
    mem_snapshot_t s;
    mem_snapshot(&s);
    printf("mem accounting after teardown: %lld live bytes in tags stats+bench (must be 0)\n",
           (long long)(s.tag[MEM_TAG_STATS].live + s.tag[MEM_TAG_BENCH].live));
    return s.tag[MEM_TAG_STATS].live != 0 || s.tag[MEM_TAG_BENCH].live != 0;
}
