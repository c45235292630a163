/*
 * test_csvout: the trades CSV writer against hand-written expected bytes (zero, negative,
 * 0.0001, 123.4500, the int64 and uint64 limits, 8-byte symbols), its number formatting against
 * snprintf on random values, refused rows (bad symbol, side, timestamp) that leave the output
 * untouched, buffer-size independence (every buffer from the 128-byte minimum up writes the same
 * bytes, with many more write(2) calls), a sticky I/O error (/dev/full), open errors and close
 * on a closed writer, a process-wide malloc count proving that writing trades allocates nothing
 * after the seal, and a round trip: the file read back by ingest/csv gives the same values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "event/symtab.h"
#include "ingest/csv.h"
#include "ingest/csvout.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static bool small_run(void)
{
    return RUNNING_ON_VALGRIND || getenv("TICKCORE_TEST_SMALL") != NULL;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* A fresh temporary path (the file exists, empty); the caller unlinks it. */
static void temp_path(char *path, size_t n)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, n, "%s/test_csvout.XXXXXX", dir && dir[0] ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* The whole file into a malloc'd buffer (test side, not under a malloc count). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long sz = ftell(f);
    assert_true(sz >= 0);
    rewind(f);
    char *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    b[sz] = 0;
    fclose(f);
    *len = (size_t)sz;
    return b;
}

static void assert_no_live_ingest(void)
{
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, 0);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live_blocks, 0);
}

/* xorshift64*, deterministic */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

typedef struct trade {
    uint64_t ts;
    char sym[9];
    int64_t price;
    uint64_t size;
    uint8_t side;
} trade_t;

static const char *const SYMS[] = {"A", "AAPL", "MSFT", "BRK.B", "ZZZZZZZZ", "BRK/A", "X-Y", "QQQ"};
#define NSYMS (sizeof SYMS / sizeof SYMS[0])

/* Random trades: rising timestamps, prices and sizes over every magnitude (small ones often),
 * including negative and zero prices and the extremes. */
static void random_trades(trade_t *t, size_t n)
{
    uint64_t ts = 1700000000000000000ull;
    for (size_t i = 0; i < n; i++) {
        ts += rnd() % 1000000000ull;
        t[i].ts = ts;
        snprintf(t[i].sym, sizeof t[i].sym, "%s", SYMS[rnd() % NSYMS]);
        uint64_t r = rnd();
        int shift = (int)(rnd() % 64);
        int64_t p = (int64_t)(r >> shift);
        if (rnd() % 4 == 0)
            p = -p;
        if (i % 97 == 0)
            p = -INT64_MAX; /* INT64_MIN is refused: the reader cannot take it back */
        else if (i % 89 == 0)
            p = INT64_MAX;
        else if (i % 83 == 0)
            p = 0;
        t[i].price = p;
        t[i].size = rnd() >> (rnd() % 64);
        if (i % 79 == 0)
            t[i].size = UINT64_MAX;
        static const uint8_t sides[3] = {'B', 'S', 0};
        t[i].side = sides[rnd() % 3];
    }
}

static void write_trades(const char *path, size_t buf, const trade_t *t, size_t n, csvout_t *w)
{
    assert_int_equal(csvout_open(w, path, buf), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(csvout_trade(w, t[i].ts, t[i].sym, t[i].price, t[i].size, t[i].side), 0);
    assert_int_equal(w->rows, n);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_csvout_header_only(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    assert_int_equal(csvout_open(&w, path, 0), 0);
    assert_int_equal(w.cap, CSVOUT_DEFAULT_BUF);
    assert_int_equal(csvout_close(&w), 0);
    size_t len;
    char *b = slurp(path, &len);
    assert_string_equal(b, "timestamp,symbol,price,size,side\n");
    assert_int_equal(w.bytes, len);
    free(b);
    unlink(path);
    assert_no_live_ingest();
}

static void test_csvout_exact_bytes(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    assert_int_equal(csvout_open(&w, path, 4096), 0);
    assert_int_equal(csvout_trade(&w, 0, "A", 0, 0, 0), 0);
    assert_int_equal(csvout_trade(&w, 1, "AAPL", 1, 100, 'B'), 0);
    assert_int_equal(csvout_trade(&w, 34200000000000ull, "MSFT", 1234500, 1, 'S'), 0);
    assert_int_equal(csvout_trade(&w, 9, "X", -1, 7, 0), 0);
    assert_int_equal(csvout_trade(&w, 10, "X", -12345, 7, 'S'), 0);
    assert_int_equal(csvout_trade(&w, 11, "X", 10000, 10, 'B'), 0);
    assert_int_equal(csvout_trade(&w, 12, "X", 99, 10, 'B'), 0);
    assert_int_equal(csvout_trade(&w, 13, "X", -10000, 10, 'B'), 0);
    assert_int_equal(csvout_trade(&w, 14, "X", 1000000000, 10, 'B'), 0);
    assert_int_equal(csvout_trade(&w, (uint64_t)INT64_MAX, "ABCDEFGH", INT64_MAX, UINT64_MAX, 'S'),
                     0);
    assert_int_equal(csvout_trade(&w, 1700000000123456789ull, "BRK/A", -INT64_MAX, 12, 'B'), 0);
    assert_int_equal(csvout_trade(&w, 100, "BRK.B", 5000, 1000000, 0), 0);
    assert_int_equal(w.rows, 12);
    assert_int_equal(w.writes, 0); /* all still buffered */
    assert_int_equal(csvout_close(&w), 0);
    static const char expect[] = "timestamp,symbol,price,size,side\n"
                                 "0,A,0.0000,0,\n"
                                 "1,AAPL,0.0001,100,B\n"
                                 "34200000000000,MSFT,123.4500,1,S\n"
                                 "9,X,-0.0001,7,\n"
                                 "10,X,-1.2345,7,S\n"
                                 "11,X,1.0000,10,B\n"
                                 "12,X,0.0099,10,B\n"
                                 "13,X,-1.0000,10,B\n"
                                 "14,X,100000.0000,10,B\n"
                                 "9223372036854775807,ABCDEFGH,922337203685477.5807,"
                                 "18446744073709551615,S\n"
                                 "1700000000123456789,BRK/A,-922337203685477.5807,12,B\n"
                                 "100,BRK.B,0.5000,1000000,\n";
    size_t len;
    char *b = slurp(path, &len);
    assert_int_equal(len, sizeof expect - 1);
    assert_memory_equal(b, expect, len);
    assert_int_equal(w.bytes, len);
    assert_int_equal(w.writes, 1);
    free(b);
    unlink(path);
    assert_no_live_ingest();
}

/* csvout_format_* against snprintf (an independent formatter) on random values. */
static void test_csvout_format_matches_snprintf(void **state)
{
    (void)state;
    char got[32], want[48];
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rnd() >> (rnd() % 64);
        if (i < 3)
            v = i == 0 ? 0 : i == 1 ? UINT64_MAX : 10;
        size_t n = csvout_format_u64(got, v);
        int m = snprintf(want, sizeof want, "%" PRIu64, v);
        assert_int_equal(n, (size_t)m);
        assert_memory_equal(got, want, n);

        int64_t p = (int64_t)(rnd() >> (rnd() % 64));
        if (rnd() & 1)
            p = -p;
        if (i < 4)
            p = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : i == 2 ? -9999 : 9999;
        uint64_t mag = p < 0 ? 0 - (uint64_t)p : (uint64_t)p;
        n = csvout_format_price(got, p);
        m = snprintf(want, sizeof want, "%s%" PRIu64 ".%04" PRIu64, p < 0 ? "-" : "", mag / 10000,
                     mag % 10000);
        assert_int_equal(n, (size_t)m);
        assert_memory_equal(got, want, n);
    }
}

static void test_csvout_refuses_bad_rows(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    assert_int_equal(csvout_open(&w, path, 256), 0);
    assert_int_equal(csvout_trade(&w, 1, NULL, 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "ABCDEFGHI", 1, 1, 'B'), -EINVAL); /* 9 bytes */
    assert_int_equal(csvout_trade(&w, 1, "A,B", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, " AB", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "AB ", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "BRK A", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "A\tB", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "A\nB", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "A\x80", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "A\x7f", 1, 1, 'B'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "AB", 1, 1, 'X'), -EINVAL);
    assert_int_equal(csvout_trade(&w, 1, "AB", 1, 1, 'b'), -EINVAL);
    assert_int_equal(csvout_trade(&w, (uint64_t)INT64_MAX + 1, "AB", 1, 1, 'B'), -ERANGE);
    assert_int_equal(csvout_trade(&w, UINT64_MAX, "AB", 1, 1, 'B'), -ERANGE);
    assert_int_equal(csvout_trade(&w, 1, "AB", INT64_MIN, 1, 'B'), -ERANGE);
    assert_int_equal(w.refused, 16);
    assert_int_equal(w.rows, 0);
    assert_int_equal(csvout_trade(&w, 5, "AB", 2, 3, 'S'), 0); /* still usable */
    assert_int_equal(csvout_close(&w), 0);
    size_t len;
    char *b = slurp(path, &len);
    assert_string_equal(b, "timestamp,symbol,price,size,side\n5,AB,0.0002,3,S\n");
    free(b);
    unlink(path);
    assert_no_live_ingest();
}

/* The bytes do not depend on the buffer size; small buffers make many writes. */
static void test_csvout_buffer_size_independent(void **state)
{
    (void)state;
    size_t n = small_run() ? 3000 : 20000;
    trade_t *t = malloc(n * sizeof *t);
    assert_non_null(t);
    random_trades(t, n);
    char ref_path[256], path[256];
    temp_path(ref_path, sizeof ref_path);
    temp_path(path, sizeof path);
    csvout_t w;
    write_trades(ref_path, 1u << 24, t, n, &w);
    assert_int_equal(csvout_close(&w), 0);
    assert_int_equal(w.writes, 1);
    size_t ref_len;
    char *ref = slurp(ref_path, &ref_len);
    assert_int_equal(w.bytes, ref_len);
    static const size_t sizes[] = {
        CSVOUT_MIN_BUF, CSVOUT_MIN_BUF + 1, 150, 157, 200, 255, 256, 1000, 4096, 65537};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        write_trades(path, sizes[s], t, n, &w);
        assert_int_equal(csvout_flush(&w), 0);
        assert_int_equal(w.len, 0);
        uint64_t writes = w.writes;
        assert_int_equal(csvout_close(&w), 0);
        assert_int_equal(w.writes, writes); /* nothing left for close */
        size_t len;
        char *b = slurp(path, &len);
        assert_int_equal(len, ref_len);
        assert_memory_equal(b, ref, len);
        assert_int_equal(w.bytes, len);
        /* each write but the last leaves less than a longest row free */
        assert_true(w.writes >= len / sizes[s]);
        assert_true(w.writes <= len / (sizes[s] - CSVOUT_MAX_ROW + 1) + 1);
        free(b);
    }
    free(ref);
    free(t);
    unlink(ref_path);
    unlink(path);
    assert_no_live_ingest();
}

/* Read the file back with ingest/csv: every row gives the trade that was written. */
static void test_csvout_round_trip_through_csv_decoder(void **state)
{
    (void)state;
    size_t n = small_run() ? 3000 : 20000;
    trade_t *t = malloc(n * sizeof *t);
    assert_non_null(t);
    random_trades(t, n);
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    write_trades(path, 1000, t, n, &w);
    assert_int_equal(csvout_close(&w), 0);
    size_t len;
    char *b = slurp(path, &len);

    static symtab_t symbols;
    assert_int_equal(symtab_init(&symbols, 64), 0);
    static csv_t c;
    csv_init(&c, &symbols, NULL);
    ev_t ev[256];
    size_t pos = 0, got = 0;
    for (;;) {
        csv_result_t r;
        csv_status_t st =
            csv_decode_block(&c, (const uint8_t *)b + pos, len - pos, true, ev, 256, &r);
        for (size_t i = 0; i < r.n; i++, got++) {
            assert_true(got < n);
            const trade_t *x = &t[got];
            assert_int_equal(ev[i].type, EV_CSV_TRADE);
            assert_int_equal(ev[i].ts, x->ts);
            assert_string_equal(symtab_name(&symbols, ev[i].locate), x->sym);
            assert_true(ev[i].price == x->price);
            assert_true(ev[i].shares == x->size);
            assert_int_equal(ev[i].side, x->side);
        }
        pos += r.consumed;
        if (st != CSV_FULL) {
            assert_int_equal(st, CSV_OK);
            break;
        }
    }
    assert_int_equal(pos, len);
    assert_int_equal(got, n);
    assert_int_equal(c.kind, CSV_KIND_TRADES);
    assert_int_equal(c.rows_ok, n);
    assert_int_equal(c.rows_bad, 0);
    assert_int_equal(c.rounded, 0);
    /* locates in first-seen order, as the engine's CSV path assigns them */
    assert_string_equal(symtab_name(&symbols, 1), t[0].sym);
    symtab_fini(&symbols);
    free(b);
    free(t);
    unlink(path);
    assert_no_live_ingest();
}

/* After the seal, writing trades (with many flushes) allocates nothing, by an outside count. */
static void test_csvout_trades_allocate_nothing(void **state)
{
    (void)state;
    enum { NT = 4096 };
    static trade_t t[NT];
    random_trades(t, NT);
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    assert_int_equal(csvout_open(&w, path, 4096), 0);
    size_t rounds = small_run() ? 5 : 50;
    mem_seal();
    malloc_count_t before;
    malloc_count_get(&before);
    for (size_t r = 0; r < rounds; r++)
        for (size_t i = 0; i < NT; i++)
            if (csvout_trade(&w, t[i].ts, t[i].sym, t[i].price, t[i].size, t[i].side) != 0)
                fail();
    assert_int_equal(csvout_flush(&w), 0);
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.total.churn_allocs, 0);
    mem_unseal();
    assert_int_equal(w.rows, rounds * NT);
    assert_true(w.writes > rounds * 10); /* the flush path was exercised */
    assert_int_equal(csvout_close(&w), 0);
    unlink(path);
    assert_no_live_ingest();
}

/* An I/O error is kept: later calls return it and write nothing; close reports it and frees. */
static void test_csvout_io_error_is_sticky(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    csvout_t w;
    assert_int_equal(csvout_open(&w, "/dev/full", CSVOUT_MIN_BUF), 0);
    int rc = 0;
    int i;
    for (i = 0; i < 100 && rc == 0; i++)
        rc = csvout_trade(&w, (uint64_t)i, "AAPL", 1234500, 100, 'B');
    assert_int_equal(rc, -ENOSPC);
    assert_true(i > 1); /* the first rows fitted in the buffer */
    assert_int_equal(w.err, -ENOSPC);
    uint64_t rows = w.rows;
    assert_int_equal(csvout_trade(&w, 1, "AAPL", 1, 1, 'B'), -ENOSPC);
    assert_int_equal(csvout_flush(&w), -ENOSPC);
    assert_int_equal(w.rows, rows);
    assert_int_equal(csvout_close(&w), -ENOSPC);
    assert_int_equal(csvout_close(&w), 0); /* already closed */
    assert_no_live_ingest();

    /* an error on the final flush is reported by close */
    assert_int_equal(csvout_open(&w, "/dev/full", 0), 0);
    assert_int_equal(csvout_trade(&w, 1, "AAPL", 1, 1, 'B'), 0);
    assert_int_equal(csvout_close(&w), -ENOSPC);
    assert_no_live_ingest();
}

static void test_csvout_open_errors_and_closed_writer(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path);
    csvout_t w;
    assert_int_equal(csvout_open(&w, path, CSVOUT_MIN_BUF - 1), -EINVAL);
    assert_int_equal(csvout_open(&w, path, (size_t)CSVOUT_MAX_BUF + 1), -EINVAL);
    assert_int_equal(csvout_open(&w, "", 0), -EINVAL);
    assert_int_equal(csvout_open(&w, NULL, 0), -EINVAL);
    assert_int_equal(csvout_open(&w, "/nonexistent-dir-tickcore/x.csv", 0), -ENOENT);
    assert_int_equal(csvout_open(&w, "/tmp", 0), -EISDIR);
    assert_null(w.buf);
    assert_int_equal(w.fd, -1);
    assert_int_equal(csvout_trade(&w, 1, "A", 1, 1, 'B'), -EBADF);
    assert_int_equal(csvout_flush(&w), -EBADF);
    assert_int_equal(csvout_close(&w), 0);
    csvout_t z;
    memset(&z, 0, sizeof z); /* zeroed: close must not touch fd 0 */
    int fd0 = fcntl(0, F_GETFD);
    assert_int_equal(csvout_close(&z), 0);
    assert_int_equal(fcntl(0, F_GETFD) >= 0, fd0 >= 0);
    assert_no_live_ingest();
    /* the file is truncated on open */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("old contents that are longer than the header, much longer, really\n", f);
    fclose(f);
    assert_int_equal(csvout_open(&w, path, 0), 0);
    assert_int_equal(csvout_close(&w), 0);
    size_t len;
    char *b = slurp(path, &len);
    assert_string_equal(b, CSVOUT_HEADER);
    free(b);
    unlink(path);
    assert_no_live_ingest();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_csvout_header_only, reset_counters),
        cmocka_unit_test_setup(test_csvout_exact_bytes, reset_counters),
        cmocka_unit_test_setup(test_csvout_format_matches_snprintf, reset_counters),
        cmocka_unit_test_setup(test_csvout_refuses_bad_rows, reset_counters),
        cmocka_unit_test_setup(test_csvout_buffer_size_independent, reset_counters),
        cmocka_unit_test_setup(test_csvout_round_trip_through_csv_decoder, reset_counters),
        cmocka_unit_test_setup(test_csvout_trades_allocate_nothing, reset_counters),
        cmocka_unit_test_setup(test_csvout_io_error_is_sticky, reset_counters),
        cmocka_unit_test_setup(test_csvout_open_errors_and_closed_writer, reset_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
