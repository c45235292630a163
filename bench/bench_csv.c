/*
 * bench_csv: decoding speed of the CSV decoder on an in-memory trades file of about 100 MB
 * (ISO-8601 timestamps with nanosecond fractions and a zone, 500 symbols, 4-decimal prices,
 * sides), the way a replay loop drives it: a window of 1 MiB moved over the file, the decoder
 * consuming whole lines and the tail presented again at the start of the next window, events
 * into a reused array of 4096. Figures are medians of several runs; the same loop with a bare
 * memchr line scan gives the floor to compare against in the same run (the machine is shared).
 * The decode runs after mem_seal(), and the churn counter must stay at 0.
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "event/symtab.h"
#include "ingest/csv.h"
#include "mem/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { WINDOW = 1 << 20, NEV = 4096, NSYM = 500 };

static ev_t events[NEV];

static size_t generate(char *out, size_t cap, size_t *rows)
{
    static char syms[NSYM][8];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < NSYM; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const int len = 1 + (int)(x % 5);
        for (int k = 0; k < len; k++)
            syms[i][k] = (char)('A' + (x >> (8 + 5 * k)) % 26);
        syms[i][len] = '\0';
    }
    size_t o = (size_t)snprintf(out, cap, "timestamp,symbol,price,size,side\n");
    uint64_t ns = 0; /* since 09:30 */
    size_t n = 0;
    while (o + 128 < cap) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ns += x % 10000;
        const unsigned s = (unsigned)(ns / 1000000000u);
        o += (size_t)snprintf(
            out + o, cap - o, "2024-03-15T%02u:%02u:%02u.%09uZ,%s,%u.%04u,%u,%c\n",
            9 + (30 + s / 60) / 60, (30 + s / 60) % 60, s % 60, (unsigned)(ns % 1000000000u),
            syms[(x >> 16) % NSYM], (unsigned)(x >> 24) % 1000, (unsigned)(x >> 34) % 10000,
            1 + (unsigned)(x >> 48) % 1000, (x >> 60) & 1 ? 'B' : 'S');
        n++;
    }
    *rows = n;
    return o;
}

/* One pass over the file, a window at a time. Returns the events decoded. */
static size_t decode_pass(symtab_t *t, const uint8_t *in, size_t len)
{
    csv_t c;
    csv_init(&c, t, NULL);
    size_t pos = 0, n = 0;
    for (;;) {
        const size_t wlen = len - pos < WINDOW ? len - pos : WINDOW;
        const bool eof = pos + wlen == len;
        csv_result_t r;
        const csv_status_t st = csv_decode_block(&c, in + pos, wlen, eof, events, NEV, &r);
        n += r.n;
        pos += r.consumed;
        if (st == CSV_FULL)
            continue; /* the next window starts at the first line not decoded */
        if (st != CSV_OK) {
            fprintf(stderr, "bench_csv: decode failed: %s\n", csv_status_str(st));
            exit(1);
        }
        if (eof)
            break;
    }
    if (c.rows_bad != 0) {
        csv_report(&c, stderr, "bench");
        exit(1);
    }
    return n;
}

/* The floor: find every '\n' with memchr in the same windows. Returns the lines. */
static size_t scan_pass(const uint8_t *in, size_t len)
{
    size_t lines = 0, pos = 0;
    for (;;) {
        const size_t wlen = len - pos < WINDOW ? len - pos : WINDOW;
        const uint8_t *p = in + pos, *end = in + pos + wlen, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p = nl + 1;
        }
        if (pos + wlen == len)
            return lines;
        pos = (size_t)(p - in); /* the tail carried over */
    }
}

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(5, 32);
    const size_t mb = bench_env_count("TICKCORE_BENCH_CSV_MB", 100);
    const size_t cap = mb << 20;
    char *in = mem_alloc(MEM_TAG_BENCH, cap);
    symtab_t t;
    if (!in || symtab_init(&t, 4096) != 0) {
        fprintf(stderr, "bench_csv: out of memory\n");
        return 1;
    }
    size_t rows;
    const size_t len = generate(in, cap, &rows);
    printf("trades CSV in memory: %.1f MB, %zu rows, %.1f bytes/row; windows of %d KiB, "
           "%d events per call\n",
           (double)len / 1e6, rows, (double)len / (double)rows, WINDOW >> 10, NEV);
    printf("sample row: %.*s", (int)(strchr(strchr(in, '\n') + 1, '\n') - strchr(in, '\n')),
           strchr(in, '\n') + 1);

    mem_seal();
    double dec[32], scan[32];
    size_t n = decode_pass(&t, (const uint8_t *)in, len); /* warm-up: symbols interned */
    if (n != rows) {
        fprintf(stderr, "bench_csv: %zu events for %zu rows\n", n, rows);
        return 1;
    }
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s();
        n = decode_pass(&t, (const uint8_t *)in, len);
        dec[i] = clock_mono_s() - t0;
        t0 = clock_mono_s();
        size_t lines = scan_pass((const uint8_t *)in, len);
        scan[i] = clock_mono_s() - t0;
        if (n != rows || lines != rows + 1) {
            fprintf(stderr, "bench_csv: count mismatch\n");
            return 1;
        }
    }
    mem_snapshot_t s;
    mem_snapshot(&s);
    mem_unseal();
    const double d = bench_median(dec, (size_t)runs), sc = bench_median(scan, (size_t)runs);
    printf("median of %d runs:\n", runs);
    printf("  %-28s %8.2f M rows/s %8.1f MB/s %7.1f ns/row\n", "csv_decode_block",
           (double)rows / d / 1e6, (double)len / d / 1e6, d * 1e9 / (double)rows);
    printf("  %-28s %8.2f M rows/s %8.1f MB/s %7.1f ns/row\n", "memchr line scan (floor)",
           (double)rows / sc / 1e6, (double)len / sc / 1e6, sc * 1e9 / (double)rows);
    printf("allocations after the seal during decoding (churn): %llu (must be 0)\n",
           (unsigned long long)s.total.churn_allocs);
    symtab_fini(&t);
    mem_free(MEM_TAG_BENCH, in, cap);
    mem_snapshot(&s);
    printf("mem accounting after teardown: %lld live bytes in tags bench+ingest (must be 0)\n",
           (long long)(s.tag[MEM_TAG_BENCH].live + s.tag[MEM_TAG_INGEST].live));
    return s.total.churn_allocs != 0 || s.tag[MEM_TAG_BENCH].live != 0 ||
           s.tag[MEM_TAG_INGEST].live != 0;
}
