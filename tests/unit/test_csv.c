/*
 * test_csv: the CSV decoder against hand-computed timestamps (978393600 s for 2001-01-02, leap
 * days, fractions, zones) and prices (rounding half-up past 4 decimals), every error reason
 * with its line number and column, strict versus lenient, CRLF, BOM, headers, empty and binary
 * input, symbol interning and a full table, over-long lines, buffer-boundary independence
 * (every buffer size from 8 to 4096 bytes with the unconsumed tail carried over gives the same
 * events, counters and error records), a random 10^4-row file checked against a naive
 * reference parser built on libc (sscanf, strtod, strtoull, timegm), and a process-wide
 * malloc count proving that decoding allocates nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "event/symtab.h"
#include "ingest/csv.h"
#include "mem/mem.h"
#include "tests/support/malloc_count.h"
#include "tests/support/xorshift.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

#define MAXEV 20000
static ev_t evs[MAXEV], evs2[MAXEV];

/* Decode all of data[0..len) in one buffer (handling CSV_FULL with an event array of max). */
static csv_status_t decode_all(csv_t *c, const void *data, size_t len, size_t max, ev_t *out,
                               size_t cap, size_t *nev)
{
    const uint8_t *d = data;
    size_t pos = 0, n = 0;
    ev_t tmp[64];
    assert_true(max <= 64);
    for (;;) {
        csv_result_t r;
        csv_status_t st = csv_decode_block(c, d + pos, len - pos, true, tmp, max, &r);
        assert_int_equal(r.status, st);
        assert_true(r.consumed <= len - pos);
        assert_true(r.n <= max);
        assert_true(n + r.n <= cap);
        memcpy(out + n, tmp, r.n * sizeof *tmp);
        n += r.n;
        pos += r.consumed;
        if (st != CSV_FULL) {
            if (st == CSV_OK)
                assert_int_equal(pos, len);
            *nev = n;
            return st;
        }
    }
}

static uint8_t chunk_buf[8192 + 4096];

/* Decode data[0..len) as a replay loop would: chunk new bytes appended after the carried-over
 * tail. Event raw pointers are rebased into data so runs can be compared byte for byte. Checks
 * that the carried tail stays below max_line. Returns the final status; *stop_off = the input
 * offset of the unconsumed bytes when decoding stops with an error. */
static csv_status_t decode_chunked(csv_t *c, const uint8_t *data, size_t len, size_t chunk,
                                   size_t max, ev_t *out, size_t cap, size_t *nev, size_t *stop_off)
{
    size_t carry = 0, off = 0, n = 0;
    ev_t tmp[64];
    assert_true(max <= 64);
    assert_true(c->cfg.max_line + chunk <= sizeof chunk_buf);
    for (;;) {
        size_t take = len - off < chunk ? len - off : chunk;
        memcpy(chunk_buf + carry, data + off, take);
        off += take;
        const size_t blen = carry + take;
        const size_t base = off - blen; /* input offset of chunk_buf[0] */
        const bool eof = off == len;
        size_t pos = 0;
        csv_status_t st;
        for (;;) {
            csv_result_t r;
            st = csv_decode_block(c, chunk_buf + pos, blen - pos, eof, tmp, max, &r);
            assert_true(r.consumed <= blen - pos);
            for (size_t i = 0; i < r.n; i++) {
                assert_true(tmp[i].raw >= chunk_buf + pos && tmp[i].raw < chunk_buf + blen);
                tmp[i].raw = data + base + (size_t)(tmp[i].raw - chunk_buf);
            }
            assert_true(n + r.n <= cap);
            memcpy(out + n, tmp, r.n * sizeof *tmp);
            n += r.n;
            pos += r.consumed;
            if (st != CSV_FULL)
                break;
        }
        *nev = n;
        if (st != CSV_OK) {
            *stop_off = base + pos;
            return st;
        }
        carry = blen - pos;
        assert_true(carry < c->cfg.max_line);
        memmove(chunk_buf, chunk_buf + pos, carry);
        if (eof) {
            assert_int_equal(carry, 0);
            return st;
        }
    }
}

static void assert_same_decoder(const csv_t *a, const csv_t *b)
{
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->stop_status, b->stop_status);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->line, b->line);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->last_ts, b->last_ts);
    assert_int_equal(a->rows_ok, b->rows_ok);
    assert_int_equal(a->rows_bad, b->rows_bad);
    assert_memory_equal(a->bad, b->bad, sizeof a->bad);
    assert_int_equal(a->blank_lines, b->blank_lines);
    assert_int_equal(a->rounded, b->rounded);
    assert_int_equal(a->out_of_order, b->out_of_order);
    assert_int_equal(a->nreported, b->nreported);
    assert_memory_equal(a->errors, b->errors, a->nreported * sizeof a->errors[0]);
    if (a->state == CSV_ST_STOPPED)
        assert_memory_equal(&a->fatal, &b->fatal, sizeof a->fatal);
}

static const csv_cfg_t LENIENT = {.strict = false, .max_reported = CSV_MAX_REPORTED};

/* ---- timestamps ---------------------------------------------------------------------------- */

static int64_t ts_of(const char *s)
{
    int64_t ns = -1;
    int rc = csv_parse_ts(s, strlen(s), &ns);
    if (rc != 0) {
        print_error("timestamp '%s' refused\n", s);
        fail();
    }
    return ns;
}

static void test_csv_timestamps_hand_computed(void **state)
{
    (void)state;
    const int64_t S = 1000000000;
    /* 2001-01-02: 31 years after 1970 with 8 leap days (72..00): 11323 + 1 days = 978393600 s */
    assert_int_equal(ts_of("2001-01-02"), 978393600 * S);
    assert_int_equal(ts_of("1970-01-01"), 0);
    assert_int_equal(ts_of("1970-01-01T00:00:00.000000001Z"), 1);
    /* 2000-02-29: 10957 days to 2000-01-01, + 31 + 28 = 11016 days */
    assert_int_equal(ts_of("2000-02-29"), 11016 * 86400 * S);
    assert_int_equal(ts_of("2000-03-01"), 11017 * 86400 * S);
    assert_int_equal(ts_of("2024-02-29"), 1709164800 * S);
    assert_int_equal(ts_of("2038-01-19T03:14:08Z"), 2147483648 * S); /* 2^31 */
    /* 16:00 = 57600 s */
    assert_int_equal(ts_of("2001-01-02T16:00:00.123Z"), (978393600 + 57600) * S + 123000000);
    assert_int_equal(ts_of("2001-01-02t16:00:00.123z"), (978393600 + 57600) * S + 123000000);
    assert_int_equal(ts_of("2001-01-02 16:00:00"), (978393600 + 57600) * S);
    assert_int_equal(ts_of("2001-01-02T16:00"), (978393600 + 57600) * S);
    assert_int_equal(ts_of("2001-01-02T16:00Z"), (978393600 + 57600) * S);
    assert_int_equal(ts_of("2001-01-02T16:00:00+01:00"), (978393600 + 57600 - 3600) * S);
    assert_int_equal(ts_of("2001-01-02T16:00:00-0500"), (978393600 + 57600 + 18000) * S);
    assert_int_equal(ts_of("2001-01-02T16:00:00-05"), (978393600 + 57600 + 18000) * S);
    assert_int_equal(ts_of("2001-01-02T16:00:00.5+05:30"),
                     (978393600 + 57600 - 19800) * S + 500000000);
    assert_int_equal(ts_of("2001-01-02T16:00:00.123456789"), (978393600 + 57600) * S + 123456789);
    assert_int_equal(ts_of("2001-01-02T16:00:00.000001"), (978393600 + 57600) * S + 1000);
    assert_int_equal(ts_of("2001-01-02T00:30:00+01:00"), (978393600 - 1800) * S); /* day before */
    assert_int_equal(ts_of("2000-12-31T23:59:59Z"), (978220800 + 86399) * S);
    assert_int_equal(ts_of("1234567890123456789"), 1234567890123456789);
    assert_int_equal(ts_of("0"), 0);
    assert_int_equal(ts_of("9223372036854775807"), INT64_MAX);
    assert_int_equal(ts_of("2262-04-11T23:47:16.854775807Z"), INT64_MAX);

    static const char *const bad[] = {
        "",
        "9223372036854775808",
        "12345678901234567890",
        "2262-04-11T23:47:16.854775808Z",
        "2262-04-12",
        "9999-12-31",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:01",
        "2001-02-29",
        "2100-02-29",
        "1900-02-29",
        "2000-02-30",
        "2001-04-31",
        "2001-00-10",
        "2001-13-10",
        "2001-01-00",
        "2001-1-02",
        "01-01-2001",
        "2001/01/02",
        "2001-01-02T",
        "2001-01-02T16",
        "2001-01-02T16:0",
        "2001-01-02T24:00:00",
        "2001-01-02T16:60:00",
        "2001-01-02T16:00:60",
        "2001-01-02T16:00:00.",
        "2001-01-02T16:00:00.1234567890",
        "2001-01-02T16:00.5",
        "2001-01-02T16:00:00Z ",
        "2001-01-02T16:00:00ZZ",
        "2001-01-02Z",
        "2001-01-02X16:00:00",
        "2001-01-02T16:00:00+1",
        "2001-01-02T16:00:00+01:0",
        "2001-01-02T16:00:00+0100x",
        "2001-01-02T16:00:00+24:00",
        "2001-01-02T16:00:00+01:60",
        "2001-01-02T16:00:00 +01:00",
        "abc",
        "-5",
        "+5",
        "12a",
        "1.5",
        " 12",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = 42;
        if (csv_parse_ts(bad[i], strlen(bad[i]), &ns) != -EINVAL) {
            print_error("timestamp '%s' accepted as %lld\n", bad[i], (long long)ns);
            fail();
        }
        assert_int_equal(ns, 42); /* untouched on error */
    }
}

/* ---- prices -------------------------------------------------------------------------------- */

static void check_price(const char *s, int64_t want, bool want_rounded)
{
    int64_t p = 0;
    bool r = !want_rounded;
    int rc = csv_parse_price(s, strlen(s), &p, &r);
    if (rc != 0 || p != want || r != want_rounded) {
        print_error("price '%s': rc %d, %lld (want %lld), rounded %d\n", s, rc, (long long)p,
                    (long long)want, r);
        fail();
    }
}

static void test_csv_prices(void **state)
{
    (void)state;
    check_price("123.4567", 1234567, false);
    check_price("0.0001", 1, false);
    check_price("5", 50000, false);
    check_price("5.", 50000, false);
    check_price(".5", 5000, false);
    check_price("0", 0, false);
    check_price("-0", 0, false);
    check_price("-1.25", -12500, false);
    check_price("007.10", 71000, false);
    check_price("1.00000000", 10000, false); /* extra zeros: exact, not rounded */
    /* half-up on the fifth decimal */
    check_price("123.45675", 1234568, true);
    check_price("123.45674999", 1234567, true);
    check_price("123.45665", 1234567, true);
    check_price("0.00005", 1, true);
    check_price("0.00004999", 0, true);
    check_price("-0.00005", -1, true);
    check_price("-2.00015", -20002, true);
    check_price("99999.99995", 1000000000, true); /* carry into the integer part */
    check_price("0.30000000000000004", 3000, true);
    check_price("922337203685477.5807", INT64_MAX, false);
    check_price("-922337203685477.5807", -INT64_MAX, false);

    static const char *const bad[] = {"",    "-",   ".",  "-.",  "1e5",  "1.2.3",
                                      "+1",  "1,5", " 1", "1 ",  "0x10", "1.5a",
                                      "--1", "1-",  "$1", "NaN", "inf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t p = 42;
        bool r = false;
        if (csv_parse_price(bad[i], strlen(bad[i]), &p, &r) != -EINVAL) {
            print_error("price '%s' accepted\n", bad[i]);
            fail();
        }
        assert_int_equal(p, 42);
    }
    static const char *const big[] = {"922337203685477.5808", "922337203685478",
                                      "922337203685477.58075", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        int64_t p = 42;
        bool r = false;
        assert_int_equal(csv_parse_price(big[i], strlen(big[i]), &p, &r), -ERANGE);
    }
}

/* ---- whole files --------------------------------------------------------------------------- */

static void test_csv_trades_bom_crlf(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 16), 0);
    static const char in[] = "\xEF\xBB\xBF Timestamp , SYMBOL,\tPrice,size , Side\r\n"
                             "2001-01-02T16:00:00.123Z,AAPL,123.4567,100,B\r\n"
                             "2001-01-02 16:00:01-05:00, MSFT ,0.5,0,sell\r\n"
                             "\r\n"
                             "978393600000000001,AAPL,7,18446744073709551615,\r\n"
                             "2001-01-02,IBM,1.23456,5,buy"; /* no final newline */
    csv_t c;
    csv_init(&c, &t, &LENIENT);
    size_t n;
    assert_int_equal(decode_all(&c, in, sizeof in - 1, 64, evs, MAXEV, &n), CSV_OK);
    assert_int_equal(c.kind, CSV_KIND_TRADES);
    assert_int_equal(c.ncols, 5);
    assert_int_equal(n, 4);
    assert_int_equal(c.rows_ok, 4);
    assert_int_equal(c.rows_bad, 0);
    assert_int_equal(c.blank_lines, 1);
    assert_int_equal(c.rounded, 1);
    assert_int_equal(c.out_of_order, 2); /* rows 4 and 5 are before row 3 */
    assert_int_equal(c.line, 7);
    assert_int_equal(c.offset, sizeof in - 1);

    const int64_t S = 1000000000;
    assert_int_equal(evs[0].type, EV_CSV_TRADE);
    assert_int_equal(evs[0].ts, (978393600 + 57600) * S + 123000000);
    assert_int_equal(evs[0].locate, 1);
    assert_string_equal(symtab_name(&t, 1), "AAPL");
    assert_int_equal(evs[0].price, 1234567);
    assert_int_equal(evs[0].shares, 100);
    assert_int_equal(evs[0].side, 'B');
    assert_int_equal(evs[0].raw_len, 0);
    assert_memory_equal(evs[0].raw, "2001-01-02T16:00:00.123Z,", 25);
    assert_int_equal(evs[0].ref, 0);
    assert_int_equal(evs[0].new_ref, 0);
    assert_int_equal(evs[0].match, 0);

    assert_int_equal(evs[1].ts, (978393600 + 57601 + 18000) * S);
    assert_int_equal(evs[1].locate, 2);
    assert_string_equal(symtab_name(&t, 2), "MSFT");
    assert_int_equal(evs[1].price, 5000);
    assert_int_equal(evs[1].shares, 0);
    assert_int_equal(evs[1].side, 'S');

    assert_int_equal(evs[2].ts, 978393600000000001);
    assert_int_equal(evs[2].locate, 1);
    assert_int_equal(evs[2].price, 70000);
    assert_int_equal(evs[2].shares, UINT64_MAX);
    assert_int_equal(evs[2].side, 0);

    assert_int_equal(evs[3].ts, 978393600 * S);
    assert_int_equal(evs[3].locate, 3);
    assert_int_equal(evs[3].price, 12346); /* 1.23456 -> 1.2346 */
    assert_int_equal(evs[3].side, 'B');
    assert_int_equal(symtab_count(&t), 3);

    /* Without at_eof, the last line (no '\n') stays unconsumed. */
    symtab_clear(&t);
    csv_init(&c, &t, &LENIENT);
    csv_result_t r;
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)in, sizeof in - 1, false, evs, 64, &r),
                     CSV_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(sizeof in - 1 - r.consumed, strlen("2001-01-02,IBM,1.23456,5,buy"));
    symtab_fini(&t);
}

static void test_csv_quotes(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 16), 0);
    static const char in[] = "timestamp,symbol,bid,bid_size,ask,ask_size\n"
                             "2001-01-02T14:30:00Z,SPY,131.25,300,131.2600,500\n"
                             "2001-01-02T14:30:00.000000500Z,SPY,131.25,200,131.26,-5\n"
                             "2001-01-02T14:30:01Z,SPY,131.25,200\n"
                             "2001-01-02T14:30:02Z,QQQ,0,0,99.99999,1\n";
    csv_t c;
    csv_init(&c, &t, &LENIENT);
    size_t n;
    assert_int_equal(decode_all(&c, in, sizeof in - 1, 2, evs, MAXEV, &n), CSV_OK);
    assert_int_equal(c.kind, CSV_KIND_QUOTES);
    assert_int_equal(n, 2);
    const int64_t ts0 = (978393600LL + 14 * 3600 + 1800) * 1000000000LL;
    assert_int_equal(evs[0].type, EV_CSV_QUOTE);
    assert_int_equal(evs[0].ts, ts0);
    assert_int_equal(evs[0].price, 1312500);
    assert_int_equal(evs[0].shares, 300);
    assert_int_equal(ev_quote_ask(&evs[0]), 1312600);
    assert_int_equal(ev_quote_ask_size(&evs[0]), 500);
    assert_int_equal(evs[0].side, 0);
    assert_int_equal(evs[1].locate, 2);
    assert_int_equal(evs[1].price, 0);
    assert_int_equal(ev_quote_ask(&evs[1]), 1000000); /* 99.99999 rounds to 100.0000 */
    assert_int_equal(c.rounded, 1);
    assert_int_equal(c.bad[CSV_E_NEGATIVE], 1);
    assert_int_equal(c.errors[0].line, 3);
    assert_int_equal(c.errors[0].column, 6);
    assert_int_equal(c.bad[CSV_E_MISSING_FIELD], 1);
    assert_int_equal(c.errors[1].line, 4);
    assert_int_equal(c.errors[1].column, 5);
    symtab_fini(&t);
}

/* One bad row per reason, lenient, with order required and a table of 3 symbols. */
static const char REASONS[] =
    "timestamp,symbol,price,size,side\n"          /* 1 */
    "2001-01-02T16:00:00Z,AAPL,1.5,100,B\n"       /* 2 ok */
    "2001-01-02T16:00:01Z,MSFT,2.5,200\n"         /* 3 missing field, col 5 */
    "2001-01-02T16:00:01Z,MSFT,2.5,200,S,x\n"     /* 4 extra field, col 6 */
    "2001-13-02T16:00:01Z,MSFT,2.5,200,S\n"       /* 5 bad timestamp */
    "2001-01-02T16:00:01Z,MSFT,2.5x,200,S\n"      /* 6 bad number, col 3 */
    "2001-01-02T16:00:01Z,MSFT,2.5,-200,S\n"      /* 7 negative size */
    "2001-01-02T16:00:01Z,MSFT,2.5,200,X\n"       /* 8 bad side */
    "2001-01-02T16:00:01Z,TOOLONGSYM,2.5,200,S\n" /* 9 bad symbol */
    "2001-01-02T15:00:00Z,MSFT,2.5,200,S\n"       /* 10 out of order */
    "2001-01-02T16:00:01Z,MSFT,2.5,200,S,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n" /* 11 over-long */
    "2001-01-02T16:00:02Z,MSFT,2.5,200,S\n"                               /* 12 ok */
    "2001-01-02T16:00:02Z,IBM,2.5,200,\n"                                 /* 13 ok, no side */
    "2001-01-02T16:00:03Z,GE,2.5,200,sell\n"                              /* 14 symbol table full */
    "\n"                                                                  /* 15 blank */
    "2001-01-02T16:00:04Z,AAPL,1.5,1x,B\n"                                /* 16 bad number, col 4 */
    "2001-01-02T16:00:05Z,IBM,3,7,buy"; /* 17 ok, no final newline */

static void test_csv_every_reason_with_line(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 3), 0);
    csv_cfg_t cfg = {.require_order = true, .max_line = 64, .max_reported = 8};
    csv_t c;
    csv_init(&c, &t, &cfg);
    size_t n;
    assert_int_equal(decode_all(&c, REASONS, sizeof REASONS - 1, 64, evs, MAXEV, &n), CSV_OK);
    assert_int_equal(n, 4);
    assert_int_equal(c.rows_ok, 4);
    assert_int_equal(c.rows_bad, 11);
    assert_int_equal(c.blank_lines, 1);
    assert_int_equal(c.line, 18);
    static const struct {
        unsigned line;
        csv_reason_t reason;
        unsigned column;
        const char *excerpt;
    } want[] = {
        {3, CSV_E_MISSING_FIELD, 5, "2001-01-02T16:00:01Z,MSFT,2.5,200"},
        {4, CSV_E_EXTRA_FIELD, 6, "2001-01-02T16:00:01Z,MSFT,2.5,200,S,x"},
        {5, CSV_E_TIMESTAMP, 1, "2001-13-02T16:00:01Z"},
        {6, CSV_E_NUMBER, 3, "2.5x"},
        {7, CSV_E_NEGATIVE, 4, "-200"},
        {8, CSV_E_SIDE, 5, "X"},
        {9, CSV_E_SYMBOL, 2, "TOOLONGSYM"},
        {10, CSV_E_ORDER, 1, "2001-01-02T15:00:00Z"},
        {11, CSV_E_LONG_LINE, 0, "2001-01-02T16:00:01Z,MSFT,2.5,200,S,,,,,"}, /* 40 bytes, cut */
        {14, CSV_E_SYMTAB_FULL, 2, "GE"},
        {16, CSV_E_NUMBER, 4, "1x"},
    };
    for (int r = 0; r < CSV_E_COUNT; r++)
        assert_int_equal(c.bad[r], r == CSV_E_NUMBER ? 2 : 1);
    assert_int_equal(c.nreported, 8); /* max_reported */
    for (unsigned i = 0; i < c.nreported; i++) {
        const csv_error_t *e = &c.errors[i];
        assert_int_equal(e->line, want[i].line);
        assert_int_equal(e->reason, want[i].reason);
        assert_int_equal(e->column, want[i].column);
        assert_int_equal(e->excerpt_len, strlen(want[i].excerpt));
        assert_memory_equal(e->excerpt, want[i].excerpt, e->excerpt_len);
        assert_int_equal(e->excerpt_cut, want[i].reason == CSV_E_LONG_LINE);
    }
    /* offsets: line 3 starts after lines 1 and 2 */
    assert_int_equal(c.errors[0].offset, strlen("timestamp,symbol,price,size,side\n"
                                                "2001-01-02T16:00:00Z,AAPL,1.5,100,B\n"));
    assert_int_equal(evs[1].locate, 2); /* MSFT: refused rows took no locate */
    assert_int_equal(evs[2].locate, 3);
    assert_int_equal(evs[2].side, 0);
    assert_int_equal(evs[3].side, 'B');
    assert_int_equal(t.full, 1);

    /* Each reason again, one at a time with max_reported large, in strict mode: every strict
     * run stops at the first bad line, keeps the events before it, and is sticky. */
    static const unsigned bad_lines[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 16};
    size_t line_start[20] = {0};
    unsigned ln = 1;
    for (size_t i = 0; i < sizeof REASONS - 1; i++)
        if (REASONS[i] == '\n')
            line_start[++ln] = i + 1;
    line_start[1] = 0;
    for (size_t k = 0; k < sizeof bad_lines / sizeof bad_lines[0]; k++) {
        /* a file: header, line 2, then the bad line, then line 17 */
        static char one[512];
        const unsigned bl = bad_lines[k];
        size_t o = 0;
        memcpy(one + o, REASONS, line_start[3]);
        o += line_start[3];
        if (bl == 14) { /* fill the table first */
            memcpy(one + o, REASONS + line_start[12], line_start[14] - line_start[12]);
            o += line_start[14] - line_start[12];
        }
        const size_t bad_off = o;
        memcpy(one + o, REASONS + line_start[bl], line_start[bl + 1] - line_start[bl]);
        o += line_start[bl + 1] - line_start[bl];
        memcpy(one + o, REASONS + line_start[17], sizeof REASONS - 1 - line_start[17]);
        o += sizeof REASONS - 1 - line_start[17];

        symtab_clear(&t);
        cfg.strict = true;
        cfg.max_reported = CSV_MAX_REPORTED;
        csv_init(&c, &t, &cfg);
        csv_result_t r;
        csv_status_t st = csv_decode_block(&c, (const uint8_t *)one, o, true, evs, 64, &r);
        assert_int_equal(st, CSV_ERR_ROW);
        assert_int_equal(r.status, CSV_ERR_ROW);
        assert_int_equal(r.consumed, bad_off);
        assert_int_equal(r.n, bl == 14 ? 3 : 1); /* the valid prefix */
        assert_int_equal(c.rows_bad, 1);
        assert_int_equal(c.bad[want[k].reason], 1);
        assert_int_equal(c.fatal.line, bl == 14 ? 5 : 3);
        assert_int_equal(c.fatal.reason, want[k].reason);
        assert_int_equal(c.fatal.column, want[k].column);
        assert_int_equal(c.fatal.offset, bad_off);
        /* sticky: the same status, nothing consumed */
        st = csv_decode_block(&c, (const uint8_t *)one + r.consumed, o - r.consumed, true, evs, 64,
                              &r);
        assert_int_equal(st, CSV_ERR_ROW);
        assert_int_equal(r.consumed, 0);
        assert_int_equal(r.n, 0);
        assert_int_equal(c.rows_bad, 1);

        /* lenient: the same file decodes to the end, the bad row counted */
        symtab_clear(&t);
        cfg.strict = false;
        csv_init(&c, &t, &cfg);
        assert_int_equal(csv_decode_block(&c, (const uint8_t *)one, o, true, evs, 64, &r), CSV_OK);
        assert_int_equal(r.consumed, o);
        assert_int_equal(r.n, bl == 14 ? 4 : 2);
        assert_int_equal(c.rows_bad, 1);
        assert_int_equal(c.bad[want[k].reason], 1);
    }

    /* The messages. */
    symtab_clear(&t);
    cfg.strict = true;
    csv_init(&c, &t, &cfg);
    char msg[512];
    assert_int_equal(csv_format_error(&c, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    csv_result_t r;
    static const char full[] = "timestamp,symbol,price,size\n"
                               "1,A,1,1\n2,B,1,1\n3,C,1,1\n4,D,1,1\n";
    assert_int_equal(
        csv_decode_block(&c, (const uint8_t *)full, sizeof full - 1, true, evs, 64, &r),
        CSV_ERR_ROW);
    assert_int_equal(r.n, 3);
    csv_format_error(&c, msg, sizeof msg);
    assert_string_equal(msg, "line 5: symbol table full (capacity 3) (column 2 'D')");
    symtab_fini(&t);
}

static void test_csv_report_text(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 3), 0);
    csv_cfg_t cfg = {.require_order = true, .max_line = 64, .max_reported = 3};
    csv_t c;
    csv_init(&c, &t, &cfg);
    size_t n;
    assert_int_equal(decode_all(&c, REASONS, sizeof REASONS - 1, 64, evs, MAXEV, &n), CSV_OK);
    static char out[4096];
    FILE *f = fmemopen(out, sizeof out, "w");
    assert_non_null(f);
    csv_report(&c, f, "r.csv");
    fclose(f);
    assert_string_equal(out,
                        "r.csv:3: missing field (column 5 '2001-01-02T16:00:01Z,MSFT,2.5,200')\n"
                        "r.csv:4: extra field (column 6 '2001-01-02T16:00:01Z,MSFT,2.5,200,S,x')\n"
                        "r.csv:5: bad timestamp (column 1 '2001-13-02T16:00:01Z')\n"
                        "r.csv: 8 more bad rows not listed\n"
                        "r.csv: trades CSV, 17 lines: 4 rows ok, 11 bad, 1 blank lines, 0 prices "
                        "rounded, 1 out of order\n"
                        "r.csv:   missing field            1\n"
                        "r.csv:   extra field              1\n"
                        "r.csv:   bad timestamp            1\n"
                        "r.csv:   bad number               2\n"
                        "r.csv:   negative size            1\n"
                        "r.csv:   bad side                 1\n"
                        "r.csv:   bad symbol               1\n"
                        "r.csv:   out-of-order timestamp   1\n"
                        "r.csv:   over-long line           1\n"
                        "r.csv:   symbol table full        1\n");
    /* Binary bytes in an excerpt are escaped. */
    symtab_clear(&t);
    cfg.max_reported = 3;
    csv_init(&c, &t, &cfg);
    static const char bin[] = "timestamp,symbol,price,size\n1,A\x01',1\\,2\n";
    assert_int_equal(decode_all(&c, bin, sizeof bin - 1, 64, evs, MAXEV, &n), CSV_OK);
    f = fmemopen(out, sizeof out, "w");
    csv_report(&c, f, "b.csv");
    fclose(f);
    assert_non_null(strstr(out, "b.csv:2: bad symbol (column 2 'A\\x01\\'')\n"));
    symtab_fini(&t);
}

static void test_csv_headers(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 4), 0);
    csv_t c;
    csv_result_t r;
    char msg[512];

    /* unknown header */
    static const char h1[] = "time,sym,px,qty\n1,A,1,1\n";
    csv_init(&c, &t, &LENIENT);
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)h1, sizeof h1 - 1, true, evs, 8, &r),
                     CSV_ERR_HEADER);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.consumed, 0);
    csv_format_error(&c, msg, sizeof msg);
    assert_string_equal(msg, "line 1: expected header 'timestamp,symbol,price,size[,side]' or "
                             "'timestamp,symbol,bid,bid_size,ask,ask_size', got 'time,sym,px,qty'");
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)h1, sizeof h1 - 1, true, evs, 8, &r),
                     CSV_ERR_HEADER); /* sticky */
    static char out[2048];
    FILE *f = fmemopen(out, sizeof out, "w");
    csv_report(&c, f, "h.csv");
    fclose(f);
    assert_non_null(strstr(out, "h.csv: error: line 1: expected header"));

    /* no header at all: the first data row is line 1 */
    static const char h2[] = "2001-01-02,AAPL,1,1\n";
    csv_init(&c, &t, &LENIENT);
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)h2, sizeof h2 - 1, true, evs, 8, &r),
                     CSV_ERR_HEADER);
    csv_format_error(&c, msg, sizeof msg);
    assert_non_null(strstr(msg, "got '2001-01-02,AAPL,1,1'"));

    /* near misses */
    static const char *const wrong[] = {
        "timestamp,symbol,price\n",
        "timestamp,symbol,price,size,side,extra\n",
        "timestamp,symbol,price,size,\n",
        "timestamp,symbol,bid,bid_size,ask\n",
        "timestamp,symbol,bid,ask,bid_size,ask_size\n",
        "symbol,timestamp,price,size\n",
        "timestamp;symbol;price;size\n",
        "\"timestamp\",\"symbol\",\"price\",\"size\"\n",
        "\n",
        "\xEF\xBB\xBF\r\n",
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        csv_init(&c, &t, &LENIENT);
        assert_int_equal(
            csv_decode_block(&c, (const uint8_t *)wrong[i], strlen(wrong[i]), true, evs, 8, &r),
            CSV_ERR_HEADER);
        assert_false(csv_probe((const uint8_t *)wrong[i], strlen(wrong[i])));
    }

    /* good headers; header only = no rows, no error */
    static const char *const good[] = {
        "timestamp,symbol,price,size",
        "TIMESTAMP,Symbol,PRICE,Size,SIDE\r\n",
        "\xEF\xBB\xBFtimestamp,symbol,bid,bid_size,ask,ask_size\r\n",
        "  timestamp\t,symbol ,price,size\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        csv_init(&c, &t, &LENIENT);
        assert_int_equal(
            csv_decode_block(&c, (const uint8_t *)good[i], strlen(good[i]), true, evs, 8, &r),
            CSV_OK);
        assert_int_equal(r.consumed, strlen(good[i]));
        assert_int_equal(c.rows_ok + c.rows_bad, 0);
        assert_true(c.kind != CSV_KIND_NONE);
        assert_true(csv_probe((const uint8_t *)good[i], strlen(good[i])));
    }
#define PROBE(s) csv_probe((const uint8_t *)(s), strlen(s))
    assert_true(PROBE("timestamp,symbol,price,size\nxx"));
    assert_true(PROBE("timestamp,symbol,price,size"));
    assert_false(PROBE("timestamp,symbol,pri"));
    assert_false(csv_probe(NULL, 0));
    assert_false(csv_probe((const uint8_t *)"\x1f\x8b\x08\x00", 4)); /* gzip magic */

    /* empty file */
    csv_init(&c, &t, &LENIENT);
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)"", 0, false, evs, 8, &r), CSV_OK);
    assert_int_equal(csv_decode_block(&c, NULL, 0, true, evs, 8, &r), CSV_ERR_EMPTY);
    csv_format_error(&c, msg, sizeof msg);
    assert_string_equal(msg, "empty file: expected header 'timestamp,symbol,price,size[,side]' "
                             "or 'timestamp,symbol,bid,bid_size,ask,ask_size'");
    /* cut output, like snprintf */
    char tiny[8];
    assert_true(csv_format_error(&c, tiny, sizeof tiny) > 8);
    assert_string_equal(tiny, "empty f");

    /* a header that never ends: over-long, a header error, no unbounded carry */
    static uint8_t junk[300];
    memset(junk, 'x', sizeof junk);
    csv_cfg_t cfg = {.max_line = 100};
    csv_init(&c, &t, &cfg);
    assert_int_equal(csv_decode_block(&c, junk, 99, false, evs, 8, &r), CSV_OK);
    assert_int_equal(r.consumed, 0);
    assert_int_equal(csv_decode_block(&c, junk, 100, false, evs, 8, &r), CSV_ERR_HEADER);
    csv_format_error(&c, msg, sizeof msg);
    assert_non_null(strstr(msg, "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"));
    symtab_fini(&t);
}

static void test_csv_garbage(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 4), 0);
    csv_t c;
    csv_result_t r;
    static uint8_t bin[4096];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof bin; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        bin[i] = (uint8_t)x;
    }
    csv_init(&c, &t, &LENIENT);
    csv_status_t st = csv_decode_block(&c, bin, sizeof bin, true, evs, 8, &r);
    assert_int_equal(st, CSV_ERR_HEADER);
    assert_int_equal(r.n, 0);
    char msg[512];
    csv_format_error(&c, msg, sizeof msg);
    for (const char *p = msg; *p; p++) /* printable */
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_false(csv_probe(bin, sizeof bin));

    /* binary rows after a good header: every row refused, nothing crashes, nothing interned */
    static uint8_t mixed[8192];
    static const char hdr[] = "timestamp,symbol,price,size,side\n";
    memcpy(mixed, hdr, sizeof hdr - 1);
    memcpy(mixed + sizeof hdr - 1, bin, sizeof bin);
    for (size_t i = sizeof hdr - 1; i < sizeof hdr - 1 + sizeof bin; i++)
        if (mixed[i] == ',' && (i % 3) == 0)
            mixed[i] = '\n'; /* more lines */
    csv_init(&c, &t, &LENIENT);
    size_t n;
    st = decode_all(&c, mixed, sizeof hdr - 1 + sizeof bin, 8, evs, MAXEV, &n);
    assert_int_equal(st, CSV_OK);
    assert_int_equal(n, 0);
    assert_true(c.rows_bad > 0);
    assert_int_equal(symtab_count(&t), 0);
    symtab_fini(&t);
}

static void test_csv_symbols_interned(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 2), 0);
    assert_int_equal(symtab_set(&t, 7, "PRE", 3), 0); /* an existing symbol keeps its locate */
    static const char in[] = "timestamp,symbol,price,size\n"
                             "1,AAPL,1,1\n2,PRE,1,1\n3,AAPL,1,1\n4,BRK.A,1,1\n5,PRE,1,1\n"
                             "6,12345678,1,1\n7,123456789,1,1\n8,AAPL,1,1\n";
    csv_t c;
    csv_init(&c, &t, &LENIENT);
    size_t n;
    assert_int_equal(decode_all(&c, in, sizeof in - 1, 64, evs, MAXEV, &n), CSV_OK);
    assert_int_equal(n, 5);
    static const uint16_t loc[] = {1, 7, 1, 7, 1};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(evs[i].locate, loc[i]);
    assert_int_equal(c.bad[CSV_E_SYMTAB_FULL], 2); /* BRK.A and 12345678 */
    assert_int_equal(c.bad[CSV_E_SYMBOL], 1);      /* 9 bytes */
    assert_int_equal(c.errors[0].line, 5);
    assert_int_equal(c.errors[1].line, 7);
    assert_int_equal(c.errors[2].line, 8);
    assert_int_equal(symtab_count(&t), 2);
    symtab_fini(&t);
}

/* The decoder's symbol cache must follow the table when the caller clears or refills it. */
static void test_csv_symbol_cache_follows_table(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 8), 0);
    csv_t c;
    csv_init(&c, &t, &LENIENT);
    csv_result_t r;
    static const char a[] = "timestamp,symbol,price,size\n1,AAPL,1,1\n2,MSFT,1,1\n";
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)a, sizeof a - 1, false, evs, 8, &r),
                     CSV_OK);
    assert_int_equal(evs[0].locate, 1);
    assert_int_equal(evs[1].locate, 2);
    symtab_clear(&t); /* a new day: AAPL's old locate now names another symbol */
    assert_int_equal(symtab_intern(&t, "MSFT", 4), 1);
    assert_int_equal(symtab_set(&t, 5, "IBM", 3), 0);
    static const char b[] = "3,AAPL,1,1\n4,MSFT,1,1\n5,IBM,1,1\n6,AAPL,1,1\n";
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)b, sizeof b - 1, true, evs, 8, &r),
                     CSV_OK);
    assert_int_equal(r.n, 4);
    assert_int_equal(evs[0].locate, 2);
    assert_string_equal(symtab_name(&t, 2), "AAPL");
    assert_int_equal(evs[1].locate, 1);
    assert_int_equal(evs[2].locate, 5);
    assert_int_equal(evs[3].locate, 2);
    for (size_t i = 0; i < r.n; i++) /* every locate names the row's symbol */
        assert_memory_equal(symtab_name(&t, evs[i].locate), evs[i].raw + 2,
                            strlen(symtab_name(&t, evs[i].locate)));
    symtab_fini(&t);
}

static void test_csv_over_long_lines(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 4), 0);
    /* max_line 32: a 31-byte line is fine, a 32-byte line is over-long, so is a 500-byte one */
    static char in[2048];
    size_t o = (size_t)sprintf(in, "timestamp,symbol,price,size\n");
    o += (size_t)sprintf(in + o, "1,A,1,%025d\n", 1);   /* 6 + 25 = 31 bytes */
    o += (size_t)sprintf(in + o, "2,A,1,%026d\n", 2);   /* 32 bytes */
    o += (size_t)sprintf(in + o, "3,A,1,%025d\r\n", 3); /* 32 with the '\r' */
    o += (size_t)sprintf(in + o, "4,A,1,");
    memset(in + o, '9', 500);
    o += 500;
    in[o++] = '\n';
    o += (size_t)sprintf(in + o, "5,A,1,5\n");
    o += (size_t)sprintf(in + o, "6,A,1,");
    memset(in + o, '9', 100);
    o += 100; /* ends over-long without a newline */

    csv_cfg_t cfg = {.max_line = 32, .max_reported = 8};
    csv_t whole, c;
    csv_init(&whole, &t, &cfg);
    size_t n;
    assert_int_equal(decode_all(&whole, in, o, 64, evs, MAXEV, &n), CSV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(evs[0].shares, 1);
    assert_int_equal(evs[1].shares, 5);
    assert_int_equal(whole.bad[CSV_E_LONG_LINE], 4);
    assert_int_equal(whole.errors[0].line, 3);
    assert_int_equal(whole.errors[1].line, 4);
    assert_int_equal(whole.errors[2].line, 5);
    assert_int_equal(whole.errors[3].line, 7);

    /* fed 8 bytes at a time: the carry stays below 32 (checked in decode_chunked) */
    for (size_t chunk = 1; chunk <= 64; chunk++) {
        csv_init(&c, &t, &cfg);
        size_t stop_off = 0;
        assert_int_equal(
            decode_chunked(&c, (const uint8_t *)in, o, chunk, 64, evs2, MAXEV, &n, &stop_off),
            CSV_OK);
        assert_int_equal(n, 2);
        assert_memory_equal(evs, evs2, 2 * sizeof *evs);
        assert_same_decoder(&whole, &c);
    }
    /* a consumer that never sees more than 40 bytes at once: the decoder consumes the long line
     * itself */
    csv_init(&c, &t, &cfg);
    csv_result_t r;
    size_t pos = 0;
    while (pos < o) {
        size_t take = o - pos < 40 ? o - pos : 40;
        csv_decode_block(&c, (const uint8_t *)in + pos, take, pos + take == o, evs2, 64, &r);
        assert_true(take - r.consumed < 32);
        pos += r.consumed;
    }
    assert_same_decoder(&whole, &c);

    /* strict: stops at the start of line 3 */
    cfg.strict = true;
    csv_init(&c, &t, &cfg);
    assert_int_equal(csv_decode_block(&c, (const uint8_t *)in, o, true, evs2, 64, &r), CSV_ERR_ROW);
    assert_int_equal(r.n, 1);
    assert_int_equal(c.fatal.line, 3);
    assert_int_equal(r.consumed, strlen("timestamp,symbol,price,size\n") + 32);
    char msg[256];
    csv_format_error(&c, msg, sizeof msg);
    assert_string_equal(
        msg, "line 3: over-long line (32 bytes or more) ('2,A,1,00000000000000000000000002...')");
    symtab_fini(&t);
}

/* ---- buffer-boundary independence -------------------------------------------------------- */

static size_t build_mixed(char *out, size_t cap, bool quotes)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "%s",
                          quotes ? "\xEF\xBB\xBFtimestamp,symbol,bid,bid_size,ask,ask_size\r\n"
                                 : "\xEF\xBB\xBFtimestamp,symbol,price,size,side\r\n");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 120; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const unsigned k = (unsigned)(x % 23);
        const unsigned s = (unsigned)(x >> 20) % 9;
        const char *eol = (x >> 40) & 1 ? "\r\n" : "\n";
        char sym[16];
        snprintf(sym, sizeof sym, "S%u", s);
        if (k == 0)
            o += (size_t)snprintf(out + o, cap - o, "%s", eol); /* blank */
        else if (k == 1) {                                      /* over-long */
            o += (size_t)snprintf(out + o, cap - o, "2001-01-02,%s,", sym);
            for (unsigned j = 0; j < 30 + (x >> 50) % 200; j++)
                out[o++] = (char)('0' + j % 10);
            o += (size_t)snprintf(out + o, cap - o, "%s", eol);
        } else if (k == 2)
            o += (size_t)snprintf(out + o, cap - o, "2001-02-30,%s,1,1%s%s", sym,
                                  quotes ? ",1,1" : ",B", eol);
        else if (k == 3)
            o += (size_t)snprintf(out + o, cap - o, "2001-01-02,%s,1%s", sym, eol);
        else if (k == 4)
            o += (size_t)snprintf(out + o, cap - o, "2001-01-02,%s,x,1%s%s", sym,
                                  quotes ? ",1,1" : ",B", eol);
        else if (k == 5)
            o += (size_t)snprintf(out + o, cap - o, "1%09u,%s,1,-1%s%s", (unsigned)i, sym,
                                  quotes ? ",1,1" : ",B", eol);
        else if (quotes)
            o += (size_t)snprintf(
                out + o, cap - o, "2001-01-02T%02u:%02u:%02u.%03u-05:00, %s ,%u.%05u,%u,%u.%u,%u%s",
                (unsigned)(x >> 8) % 24, (unsigned)i % 60, (unsigned)(x >> 16) % 60,
                (unsigned)(x >> 24) % 1000, sym, (unsigned)(x >> 32) % 500,
                (unsigned)(x >> 12) % 100000, (unsigned)(x >> 28) % 1000, (unsigned)(x >> 36) % 500,
                (unsigned)(x >> 44) % 10000, (unsigned)(x >> 52) % 1000, eol);
        else
            o += (size_t)snprintf(
                out + o, cap - o, "2001-01-02 %02u:%02u:%02u.%06uZ,%s,%u.%02u,%u,%s%s",
                (unsigned)(x >> 8) % 24, (unsigned)i % 60, (unsigned)(x >> 16) % 60,
                (unsigned)(x >> 24) % 1000000, sym, (unsigned)(x >> 32) % 500,
                (unsigned)(x >> 12) % 100, (unsigned)(x >> 28) % 1000,
                (x >> 45) % 3 == 0   ? "sell"
                : (x >> 45) % 3 == 1 ? "b"
                                     : "",
                eol);
        assert_true(o < cap - 400);
    }
    o += (size_t)snprintf(out + o, cap - o, "2001-01-03,S1,1,2%s", quotes ? ",3,4" : ",S");
    return o;
}

static void boundary_case(bool quotes, bool strict)
{
    static char in[40000];
    const size_t len = build_mixed(in, sizeof in, quotes);
    symtab_t t;
    assert_int_equal(symtab_init(&t, 6), 0); /* 9 symbols: some rows hit a full table */
    csv_cfg_t cfg = {.strict = strict, .max_line = 96, .max_reported = CSV_MAX_REPORTED};
    csv_t whole, c;
    csv_init(&whole, &t, &cfg);
    size_t n_whole = 0, n = 0;
    csv_result_t r;
    csv_status_t st_whole =
        csv_decode_block(&whole, (const uint8_t *)in, len, true, evs, MAXEV, &r);
    (void)r; /* MAXEV > 64: decode_all is not used here on purpose (one call, one buffer) */
    n_whole = r.n;
    const size_t stop_whole = r.consumed;
    assert_int_equal(st_whole, strict ? CSV_ERR_ROW : CSV_OK);
    if (!strict) {
        assert_true(whole.rows_ok > 50);
        assert_true(whole.rows_bad > 10);
        assert_true(whole.bad[CSV_E_LONG_LINE] > 0);
        assert_true(whole.bad[CSV_E_SYMTAB_FULL] > 0);
        assert_true(whole.blank_lines > 0);
        assert_int_equal(stop_whole, len);
    }
    const size_t step = small_run() ? 37 : 1;
    for (size_t chunk = 8; chunk <= 4096; chunk += step) {
        symtab_clear(&t);
        csv_init(&c, &t, &cfg);
        const size_t max = 1 + chunk % 64; /* also exercises CSV_FULL */
        size_t stop_off = 0;
        csv_status_t st =
            decode_chunked(&c, (const uint8_t *)in, len, chunk, max, evs2, MAXEV, &n, &stop_off);
        assert_int_equal(st, st_whole);
        assert_int_equal(n, n_whole);
        assert_memory_equal(evs, evs2, n * sizeof *evs);
        assert_same_decoder(&whole, &c);
        if (strict)
            assert_int_equal(stop_off, stop_whole);
    }
    symtab_fini(&t);
}

static void test_csv_buffer_boundaries(void **state)
{
    (void)state;
    boundary_case(false, false);
    boundary_case(true, false);
    boundary_case(false, true);
    boundary_case(true, true);
}

/* ---- random file against a naive reference parser --------------------------------------- */

typedef struct gen {
    uint64_t x;
} gen_t;

static uint64_t rnd(gen_t *g)
{
    return xorshift64_next(&g->x);
}

/* The reference: libc parsing of one NUL-terminated field. */
static int64_t ref_ts(const char *s)
{
    if (strspn(s, "0123456789") == strlen(s))
        return (int64_t)strtoull(s, NULL, 10);
    int y, mo, d, hh = 0, mi = 0, ss = 0, used = 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_int_equal(sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used), 3);
    const char *p = s + used;
    int64_t frac = 0, zone = 0;
    if (*p) {
        p++; /* T or space */
        assert_int_equal(sscanf(p, "%2d:%2d:%2d%n", &hh, &mi, &ss, &used), 3);
        p += used;
        if (*p == '.') {
            char digs[16] = {0};
            assert_int_equal(sscanf(p + 1, "%9[0-9]%n", digs, &used), 1);
            p += 1 + used;
            frac = strtoll(digs, NULL, 10);
            for (size_t k = strlen(digs); k < 9; k++)
                frac *= 10;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int zh, zm;
            if (p[3] == ':')
                assert_int_equal(sscanf(p + 1, "%2d:%2d", &zh, &zm), 2);
            else
                assert_int_equal(sscanf(p + 1, "%2d%2d", &zh, &zm), 2);
            zone = (*p == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
        }
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    return ((int64_t)timegm(&tm) - zone) * 1000000000 + frac;
}

static int64_t ref_price(const char *s)
{
    const char *dot = strchr(s, '.');
    size_t decimals = dot ? strlen(dot + 1) : 0;
    if (decimals <= 4)
        return llround(strtod(s, NULL) * 10000.0);
    /* more than 4 decimals: round half-up on the string */
    long long ip = 0;
    char frac[32] = {0};
    assert_true(sscanf(s, "%lld.%31[0-9]", &ip, frac) >= 1);
    long long f4 = 0;
    for (int k = 0; k < 4; k++)
        f4 = f4 * 10 + (frac[k] - '0');
    return ip * 10000 + f4 + (frac[4] >= '5');
}

static char *ref_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r'))
        s[--l] = '\0';
    return s;
}

#define NROWS 10000
static char big[NROWS * 96 + 64];

static void test_csv_random_vs_reference(void **state)
{
    (void)state;
    static const char *const syms[] = {
        "AAPL", "MSFT", "A",   "BRK.B", "ZZZZZZZZ", "GOOGL", "T",   "SPY",  "QQQ",  "IWM",
        "X1",   "F",    "GE",  "IBM",   "ORCL",     "INTC",  "AMD", "NVDA", "TSLA", "META",
        "NFLX", "KO",   "PEP", "JPM",   "BAC",      "C",     "WFC", "XOM",  "CVX",  "BP"};
    enum { NSYM = sizeof syms / sizeof syms[0] };
    gen_t g = {0x2545F4914F6CDD1Dull};
    size_t o = (size_t)sprintf(big, "timestamp,symbol,price,size,side\n");
    for (int i = 0; i < NROWS; i++) {
        /* timestamp: one of several forms, any date 1970..2200 */
        const uint64_t days = rnd(&g) % (230 * 365);
        const int64_t secs = (int64_t)days * 86400 + (int64_t)(rnd(&g) % 86400);
        time_t tt = (time_t)secs;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char ts[64];
        const unsigned form = (unsigned)(rnd(&g) % 6);
        const char sep = rnd(&g) & 1 ? 'T' : ' ';
        const unsigned nd = 1 + (unsigned)(rnd(&g) % 9);
        char fr[16];
        snprintf(fr, sizeof fr, "%09llu", (unsigned long long)(rnd(&g) % 1000000000));
        fr[nd] = '\0';
        const int zh = (int)(rnd(&g) % 15), zm = (int)(rnd(&g) % 4) * 15;
        switch (form) {
        case 0:
            strftime(ts, sizeof ts, "%Y-%m-%d", &tm);
            break;
        case 1:
            snprintf(ts, sizeof ts, "%04d-%02d-%02d%c%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, sep, tm.tm_hour, tm.tm_min, tm.tm_sec);
            break;
        case 2:
            snprintf(ts, sizeof ts, "%04d-%02d-%02d%c%02d:%02d:%02d.%sZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, sep, tm.tm_hour, tm.tm_min, tm.tm_sec, fr);
            break;
        case 3:
            snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%s%c%02d:%02d",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     fr, rnd(&g) & 1 ? '+' : '-', zh, zm);
            break;
        case 4:
            snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     rnd(&g) & 1 ? '+' : '-', zh, zm);
            break;
        default:
            snprintf(ts, sizeof ts, "%lld%09llu", (long long)secs,
                     (unsigned long long)(rnd(&g) % 1000000000));
            break;
        }
        if (days == 0 && form >= 3)
            snprintf(ts, sizeof ts, "%lld", (long long)secs); /* no negative times */
        /* price: 0..6 decimals */
        char px[48];
        const unsigned dec = (unsigned)(rnd(&g) % 7);
        const unsigned long long ip = rnd(&g) % (rnd(&g) & 1 ? 100000ull : 10000000000ull);
        if (dec == 0)
            snprintf(px, sizeof px, "%llu", ip);
        else {
            char f[16];
            snprintf(f, sizeof f, "%06llu", (unsigned long long)(rnd(&g) % 1000000));
            f[dec] = '\0';
            snprintf(px, sizeof px, "%llu.%s", ip, f);
        }
        static const char *const sides[] = {"", "B", "S", "buy", "sell", "b", "SELL", "Buy"};
        const char *sp = rnd(&g) % 5 == 0 ? " " : "";
        o += (size_t)sprintf(big + o, "%s%s,%s%s,%s,%llu,%s%s%s", sp, ts, syms[rnd(&g) % NSYM], sp,
                             px, (unsigned long long)(rnd(&g) % 5000000000ull), sides[rnd(&g) % 8],
                             sp, rnd(&g) % 7 == 0 ? "\r\n" : "\n");
    }
    assert_true(o < sizeof big);

    symtab_t t;
    assert_int_equal(symtab_init(&t, 64), 0);
    csv_t c;
    csv_init(&c, &t, &LENIENT);
    size_t n = 0;
    csv_result_t r;
    malloc_count_t before;
    malloc_count_get(&before);
    size_t pos = 0;
    for (;;) { /* 97-event slices: many CSV_FULL returns */
        csv_status_t st =
            csv_decode_block(&c, (const uint8_t *)big + pos, o - pos, true, evs + n, 97, &r);
        n += r.n;
        pos += r.consumed;
        if (st != CSV_FULL) {
            assert_int_equal(st, CSV_OK);
            break;
        }
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    assert_int_equal(pos, o);
    assert_int_equal(n, NROWS);
    assert_int_equal(c.rows_bad, 0);

    /* the reference, line by line */
    const char *known[NSYM];
    unsigned nknown = 0;
    char line[256];
    const char *p = strchr(big, '\n') + 1;
    uint64_t rounded = 0;
    for (int i = 0; i < NROWS; i++) {
        const char *e = strchr(p, '\n');
        memcpy(line, p, (size_t)(e - p));
        line[e - p] = '\0';
        char *f[5];
        char *q = line;
        for (int k = 0; k < 5; k++) {
            char *comma = strchr(q, ',');
            if (comma)
                *comma = '\0';
            f[k] = ref_trim(q);
            q = comma ? comma + 1 : q + strlen(q);
        }
        const ev_t *ev = &evs[i];
        assert_int_equal(ev->type, EV_CSV_TRADE);
        if ((int64_t)ev->ts != ref_ts(f[0])) {
            print_error("row %d '%s': ts %llu, reference %lld\n", i + 2, f[0],
                        (unsigned long long)ev->ts, (long long)ref_ts(f[0]));
            fail();
        }
        if (ev->price != ref_price(f[2])) {
            print_error("row %d '%s': price %lld, reference %lld\n", i + 2, f[2],
                        (long long)ev->price, (long long)ref_price(f[2]));
            fail();
        }
        const char *dot = strchr(f[2], '.');
        if (dot && strlen(dot + 1) > 4 && strspn(dot + 5, "0") != strlen(dot + 5))
            rounded++;
        assert_int_equal(ev->shares, strtoull(f[3], NULL, 10));
        const int side = f[4][0] == 0 ? 0 : (f[4][0] | 0x20) == 'b' ? 'B' : 'S';
        assert_int_equal(ev->side, side);
        unsigned k = 0;
        while (k < nknown && strcmp(known[k], f[1]) != 0)
            k++;
        if (k == nknown) {
            unsigned j = 0;
            while (j < NSYM && strcmp(syms[j], f[1]) != 0)
                j++;
            assert_true(j < NSYM);
            known[nknown++] = syms[j];
        }
        assert_int_equal(ev->locate, k + 1); /* first appearance order */
        assert_ptr_equal(ev->raw, (const uint8_t *)p);
        p = e + 1;
    }
    assert_int_equal(c.rounded, rounded);
    assert_int_equal(symtab_count(&t), nknown);
    symtab_fini(&t);
}

/* ---- zero allocations -------------------------------------------------------------------- */

static void test_csv_decode_allocates_nothing(void **state)
{
    (void)state;
    symtab_t t;
    assert_int_equal(symtab_init(&t, 4), 0);
    csv_cfg_t cfg = {.max_line = 64, .max_reported = 4, .require_order = true};
    static char in[40000];
    const size_t len = build_mixed(in, sizeof in, false);
    csv_t c;
    size_t n;
    malloc_count_t before;
    mem_seal();
    malloc_count_get(&before);
    for (size_t chunk = 8; chunk < 4096; chunk += 509) {
        symtab_clear(&t);
        csv_init(&c, &t, &cfg);
        size_t stop_off;
        decode_chunked(&c, (const uint8_t *)in, len, chunk, 7, evs, MAXEV, &n, &stop_off);
        assert_true(c.rows_bad > 0);
    }
    csv_init(&c, &t, &cfg);
    decode_all(&c, REASONS, sizeof REASONS - 1, 3, evs, MAXEV, &n);
    assert_int_equal(malloc_count_allocs_since(&before), 0);
    mem_snapshot_t s;
    mem_snapshot(&s);
    assert_int_equal(s.total.churn_allocs, 0);
    mem_unseal();
    symtab_fini(&t);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_csv_timestamps_hand_computed, reset_counters),
        cmocka_unit_test_setup(test_csv_prices, reset_counters),
        cmocka_unit_test_setup(test_csv_trades_bom_crlf, reset_counters),
        cmocka_unit_test_setup(test_csv_quotes, reset_counters),
        cmocka_unit_test_setup(test_csv_every_reason_with_line, reset_counters),
        cmocka_unit_test_setup(test_csv_report_text, reset_counters),
        cmocka_unit_test_setup(test_csv_headers, reset_counters),
        cmocka_unit_test_setup(test_csv_garbage, reset_counters),
        cmocka_unit_test_setup(test_csv_symbols_interned, reset_counters),
        cmocka_unit_test_setup(test_csv_symbol_cache_follows_table, reset_counters),
        cmocka_unit_test_setup(test_csv_over_long_lines, reset_counters),
        cmocka_unit_test_setup(test_csv_buffer_boundaries, reset_counters),
        cmocka_unit_test_setup(test_csv_random_vs_reference, reset_counters),
        cmocka_unit_test_setup(test_csv_decode_allocates_nothing, reset_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
