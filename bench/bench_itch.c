/*
 * bench_itch: decode speed of the ITCH 5.0 decoder on one core. A naive encoder builds an
 * in-memory ITCH BinaryFILE stream of $TICKCORE_BENCH_MB MiB (default 256) with a realistic
 * message mix (about 40% A, 38% D, 8% U, 5% E, 3% X, 2% P, and 4% F, C, L, I, Q, S, H, B in
 * small shares), types drawn at random so the type switch sees real branch misses; fields are
 * random but plausible. Each run decodes the whole stream with itch_decode_block into one
 * 4096-event array (L2 sized, as the engine's batch), calling again on ITCH_FULL, exactly as
 * replay does. Figures: messages/s, input GB/s and ns per message, median of bench_runs(5)
 * runs after one warm-up run, by the wall clock and by the thread's CPU time (which leaves
 * out the time other processes held the core). The stream and the events are allocated once, before
 * timing; the timed loop allocates nothing. The target is >= 50 M messages/s.
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "ingest/itch.h"
#include "mem/mem.h"
#include "tests/support/xorshift.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EVENTS = 4096 };

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
    return xorshift64_next(&rng_state);
}

/* Naive big-endian writer, one byte at a time. */
static void put(uint8_t *m, size_t off, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        m[off + (size_t)i] = (uint8_t)v;
}

/* Message type for a draw r in [0, 1000): the mix described above. */
static char pick_type(unsigned r)
{
    static const struct {
        unsigned upto;
        char type;
    } mix[] = {
        {400, 'A'}, {780, 'D'}, {860, 'U'}, {910, 'E'}, {940, 'X'}, {960, 'P'}, {975, 'F'},
        {985, 'C'}, {990, 'L'}, {994, 'I'}, {996, 'Q'}, {998, 'H'}, {999, 'S'}, {1000, 'B'},
    };
    for (size_t i = 0; i < sizeof mix / sizeof mix[0]; i++)
        if (r < mix[i].upto)
            return mix[i].type;
    return 'A';
}

/* Encode one message of type t at s (prefix included); returns the frame length. */
static size_t encode(uint8_t *s, char t, uint64_t ts, uint64_t *next_ref)
{
    const unsigned len = itch_msg_len[(uint8_t)t];
    uint8_t *m = s + 2;
    put(s, 0, len, 2);
    memset(m, ' ', len);
    m[0] = (uint8_t)t;
    put(m, 1, 1 + rng() % 8000, 2); /* locate */
    put(m, 3, 0, 2);
    put(m, 5, ts, 6);
    const uint64_t ref = *next_ref - 1 - rng() % 1024; /* a recent order */
    const uint64_t price = 10000 + rng() % 5000000;    /* $1 .. $500 */
    switch (t) {
    case 'A':
    case 'F':
        put(m, 11, (*next_ref)++, 8);
        m[19] = rng() & 1 ? 'B' : 'S';
        put(m, 20, 1 + rng() % 1000, 4);
        memcpy(m + 24, "SYMB    ", 8);
        put(m, 32, price, 4);
        break;
    case 'D':
        put(m, 11, ref, 8);
        break;
    case 'U':
        put(m, 11, ref, 8);
        put(m, 19, (*next_ref)++, 8);
        put(m, 27, 1 + rng() % 1000, 4);
        put(m, 31, price, 4);
        break;
    case 'E':
    case 'C':
        put(m, 11, ref, 8);
        put(m, 19, 1 + rng() % 500, 4);
        put(m, 23, rng() % (1ull << 40), 8);
        if (t == 'C') {
            m[31] = 'Y';
            put(m, 32, price, 4);
        }
        break;
    case 'X':
        put(m, 11, ref, 8);
        put(m, 19, 1 + rng() % 100, 4);
        break;
    case 'P':
        put(m, 11, 0, 8);
        m[19] = 'B';
        put(m, 20, 1 + rng() % 1000, 4);
        put(m, 32, price, 4);
        put(m, 36, rng() % (1ull << 40), 8);
        break;
    case 'Q':
        put(m, 11, rng() % 100000, 8);
        put(m, 27, price, 4);
        put(m, 31, rng() % (1ull << 40), 8);
        m[39] = 'O';
        break;
    case 'I':
        put(m, 11, rng() % 100000, 8);
        put(m, 19, rng() % 100000, 8);
        m[27] = 'B';
        put(m, 36, price, 4);
        put(m, 40, price, 4);
        put(m, 44, price, 4);
        break;
    case 'B':
        put(m, 11, rng() % (1ull << 40), 8);
        break;
    default: /* S, H, L: codes stay spaces */
        break;
    }
    return 2 + len;
}

/* One pass over the stream; returns the number of events. */
static size_t decode_pass(const uint8_t *s, size_t len, ev_t *ev, uint64_t *check)
{
    size_t off = 0, total = 0;
    itch_result_t r;
    do {
        itch_decode_block(s + off, len - off, ev, EVENTS, &r);
        off += r.consumed;
        total += r.n;
        if (r.n)
            *check += ev[r.n - 1].ts ^ ev[0].price; /* read back what was written */
    } while (r.status == ITCH_FULL);
    if (r.status != ITCH_OK || off != len) {
        fprintf(stderr, "bench_itch: decode stopped at %zu: %s\n", off, itch_status_str(r.status));
        exit(1);
    }
    return total;
}

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(5, 64);
    const size_t mb = bench_env_count("TICKCORE_BENCH_MB", 256);
    const size_t cap = mb << 20;
    uint8_t *s = mem_alloc_prefault(MEM_TAG_BENCH, cap, 64);
    ev_t *ev = mem_alloc_aligned(MEM_TAG_BENCH, EVENTS * sizeof(ev_t), 64);
    if (!s || !ev) {
        fprintf(stderr, "bench_itch: cannot allocate %zu MiB\n", mb);
        return 1;
    }
    size_t len = 0, msgs = 0, count[256] = {0};
    uint64_t ts = 4ull * 3600 * 1000000000, next_ref = 1 << 20;
    while (len + ITCH_MAX_FRAME <= cap) {
        char t = pick_type((unsigned)(rng() % 1000));
        ts += rng() % 2000;
        len += encode(s + len, t, ts, &next_ref);
        count[(uint8_t)t]++;
        msgs++;
    }
    printf("stream: %zu messages, %.1f MiB, %.1f bytes per frame; mix:", msgs,
           (double)len / (1 << 20), (double)len / (double)msgs);
    for (int t = 0; t < 256; t++)
        if (count[t])
            printf(" %c %.1f%%", t, 100.0 * (double)count[t] / (double)msgs);
    printf("\n");

    uint64_t check = 0;
    if (decode_pass(s, len, ev, &check) != msgs) { /* warm-up, and a correctness check */
        fprintf(stderr, "bench_itch: message count differs\n");
        return 1;
    }
    double wall[64], cpu[64];
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s(), c0 = clock_thread_cpu_s();
        decode_pass(s, len, ev, &check);
        cpu[i] = clock_thread_cpu_s() - c0;
        wall[i] = clock_mono_s() - t0;
    }
    const double med_wall = bench_median(wall, (size_t)runs);
    const double med_cpu = bench_median(cpu, (size_t)runs);
    printf("itch_decode_block into %d events, median of %d runs (checksum %llx):\n", EVENTS, runs,
           (unsigned long long)(check & 0xffff));
    printf("  wall clock: %6.1f M messages/s, %.2f GB/s input, %.2f ns/message\n",
           (double)msgs / med_wall / 1e6, (double)len / med_wall / 1e9,
           med_wall * 1e9 / (double)msgs);
    printf("  CPU time:   %6.1f M messages/s, %.2f GB/s input, %.2f ns/message\n",
           (double)msgs / med_cpu / 1e6, (double)len / med_cpu / 1e9, med_cpu * 1e9 / (double)msgs);
    printf("  target >= 50 M messages/s on one core: %s (wall clock)\n",
           (double)msgs / med_wall >= 50e6 ? "met" : "NOT met");

    mem_free(MEM_TAG_BENCH, ev, EVENTS * sizeof(ev_t));
    mem_free(MEM_TAG_BENCH, s, cap);
    mem_snapshot_t snap;
    mem_snapshot(&snap);
    printf("mem accounting after teardown: %lld live bytes in tag bench (must be 0)\n",
           (long long)snap.tag[MEM_TAG_BENCH].live);
    return snap.tag[MEM_TAG_BENCH].live != 0;
}
