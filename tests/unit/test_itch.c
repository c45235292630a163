/*
 * test_itch: the ITCH 5.0 decoder against independent oracles. The message lengths and field
 * offsets are written out again here from the specification, and a naive byte-by-byte
 * reference (a framer and a decoder with no shared code) checks the real decoder on real
 * NASDAQ files (published message counts, timestamps of the first and last message, order
 * references that must refer to earlier adds), on every buffer size from 64 bytes with the
 * tail carried over, on hand-built messages of all 23 types with hand-computed fields, and on
 * bad input (zero length, unknown type, wrong length, truncation, random bytes, the RITCH
 * sample whose prefixes are all 0). itch_resync is checked to find the next true frame after
 * corruption, and itch_decode_block to allocate nothing. Data files are read from
 * $TICKCORE_DATA/itch or tests/data/itch; tests that need them are skipped without them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "event/symtab.h"
#include "ingest/itch.h"
#include "mem/mem.h"
#include "tests/support/leftover.h"
#include "tests/support/malloc_count.h"
#include "tests/support/testdata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

/* ---- the oracle: lengths and a naive reader, straight from the specification ---- */

static const struct {
    char type;
    unsigned len;
} spec_len[] = {
    {'S', 12}, {'R', 39}, {'H', 25}, {'Y', 20}, {'L', 26}, {'V', 35}, {'W', 12}, {'K', 28},
    {'J', 35}, {'h', 21}, {'A', 36}, {'F', 40}, {'E', 31}, {'C', 36}, {'X', 23}, {'D', 19},
    {'U', 35}, {'P', 44}, {'Q', 40}, {'B', 19}, {'I', 50}, {'N', 20}, {'O', 48},
};
#define N_TYPES (sizeof spec_len / sizeof spec_len[0])

static unsigned naive_len(uint8_t t)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if ((uint8_t)spec_len[i].type == t)
            return spec_len[i].len;
    return 0;
}

/* Big-endian unsigned of n bytes at p + off, one byte at a time. */
static uint64_t rd(const uint8_t *p, size_t off, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[off + (size_t)i];
    return v;
}

/* Expected event of one message body, field by field from the table in event/event.h. */
static void naive_decode(const uint8_t *p, unsigned len, ev_t *e)
{
    memset(e, 0, sizeof *e);
    e->type = p[0];
    e->locate = (uint16_t)rd(p, 1, 2);
    e->tracking = (uint16_t)rd(p, 3, 2);
    e->ts = rd(p, 5, 6);
    e->raw = p;
    e->raw_len = (uint8_t)len;
    switch (p[0]) {
    case 'A':
    case 'F':
        e->ref = rd(p, 11, 8), e->side = p[19], e->shares = rd(p, 20, 4);
        e->price = (int64_t)rd(p, 32, 4);
        break;
    case 'E':
        e->ref = rd(p, 11, 8), e->shares = rd(p, 19, 4), e->match = rd(p, 23, 8);
        break;
    case 'C':
        e->ref = rd(p, 11, 8), e->shares = rd(p, 19, 4), e->match = rd(p, 23, 8);
        e->aux = p[31], e->price = (int64_t)rd(p, 32, 4);
        break;
    case 'X':
        e->ref = rd(p, 11, 8), e->shares = rd(p, 19, 4);
        break;
    case 'D':
        e->ref = rd(p, 11, 8);
        break;
    case 'U':
        e->ref = rd(p, 11, 8), e->new_ref = rd(p, 19, 8), e->shares = rd(p, 27, 4);
        e->price = (int64_t)rd(p, 31, 4);
        break;
    case 'P':
        e->ref = rd(p, 11, 8), e->side = p[19], e->shares = rd(p, 20, 4);
        e->price = (int64_t)rd(p, 32, 4), e->match = rd(p, 36, 8);
        break;
    case 'Q':
        e->shares = rd(p, 11, 8), e->price = (int64_t)rd(p, 27, 4), e->match = rd(p, 31, 8);
        e->aux = p[39];
        break;
    case 'B':
        e->match = rd(p, 11, 8);
        break;
    case 'S':
    case 'W':
        e->aux = p[11];
        break;
    case 'R':
        e->aux = p[19], e->shares = rd(p, 21, 4);
        break;
    case 'H':
    case 'Y':
    case 'N':
    case 'O':
        e->aux = p[19];
        break;
    case 'L':
        e->aux = p[23];
        break;
    case 'V': {
        /* 8 decimals -> 4, half up: (l1 + 5000) / 10000 without overflow */
        uint64_t l1 = rd(p, 11, 8);
        e->price = (int64_t)((l1 / 2 + 2500) / 5000);
        break;
    }
    case 'K':
        e->aux = p[23], e->price = (int64_t)rd(p, 24, 4);
        break;
    case 'J':
        e->price = (int64_t)rd(p, 19, 4);
        break;
    case 'h':
        e->aux = p[20];
        break;
    case 'I':
        e->shares = rd(p, 11, 8), e->aux = p[27], e->price = (int64_t)rd(p, 44, 4);
        break;
    default:
        fail_msg("naive_decode: type 0x%02x", p[0]);
    }
}

typedef struct naive_res {
    size_t consumed, n;
    itch_status_t status;
    unsigned err_len, err_expected, err_type;
} naive_res_t;

/* The framing rules of itch.h, one frame at a time. */
static void naive_frame(const uint8_t *b, size_t len, size_t max, naive_res_t *r)
{
    memset(r, 0, sizeof *r);
    size_t off = 0;
    for (;;) {
        size_t rem = len - off;
        if (r->n == max) {
            r->status = rem >= 2 ? ITCH_FULL : ITCH_OK;
            break;
        }
        if (rem < 2)
            break;
        unsigned l = (unsigned)rd(b, off, 2);
        if (rem == 2) {
            if (l == 0 || l > ITCH_MAX_MSG) {
                r->status = l == 0 ? ITCH_ERR_ZERO_LENGTH : ITCH_ERR_BAD_LENGTH;
                r->err_len = l;
            }
            break;
        }
        unsigned t = b[off + 2], want = naive_len((uint8_t)t);
        if (l == 0 || want == 0 || l != want) {
            r->status = l == 0      ? ITCH_ERR_ZERO_LENGTH
                        : want == 0 ? ITCH_ERR_UNKNOWN_TYPE
                                    : ITCH_ERR_BAD_LENGTH;
            r->err_len = l, r->err_type = t, r->err_expected = want;
            break;
        }
        if (rem - 2 < l)
            break;
        r->n++;
        off += 2 + l;
    }
    r->consumed = off;
}

/* Equal events; raw pointers may differ (a copy of the buffer), their bytes may not. */
static void assert_ev_equal(const ev_t *a, const ev_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->ts, b->ts);
    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->new_ref, b->new_ref);
    assert_int_equal(a->match, b->match);
    assert_int_equal(a->price, b->price);
    assert_int_equal(a->shares, b->shares);
    assert_int_equal(a->locate, b->locate);
    assert_int_equal(a->tracking, b->tracking);
    assert_int_equal(a->side, b->side);
    assert_int_equal(a->aux, b->aux);
    assert_int_equal(a->raw_len, b->raw_len);
    assert_non_null(a->raw);
    assert_non_null(b->raw);
    assert_memory_equal(a->raw, b->raw, a->raw_len);
}

/* ---- data files ---- */

static bool small_mode(void)
{
    return RUNNING_ON_VALGRIND || getenv("TICKCORE_TEST_SMALL") != NULL;
}

typedef testdata_t file_buf_t;

static bool load(const char *name, file_buf_t *f)
{
    return testdata_load(name, f);
}

static void unload(file_buf_t *f)
{
    testdata_unload(f);
}

#define LOAD_OR_SKIP(name, f)                                                                      \
    do {                                                                                           \
        if (!load((name), (f))) {                                                                  \
            print_message("data file %s not found (set TICKCORE_DATA)\n", (name));                 \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#define AAPL      "nasdaq-20200130-aapl-10k.itch"
#define DIRECTORY "nasdaq-20191230-directory-1k.itch"
#define RITCH     "ritch-obfuscated-zero-length.itch"
#define AAPL_N    10000

static ev_t g_ref[AAPL_N + 16]; /* the whole-buffer decode of AAPL */
static ev_t g_ev[AAPL_N + 16];
static size_t g_off[AAPL_N + 1]; /* frame offsets of AAPL (naive framer) */

/* Decode a whole buffer that must be clean; returns the number of events. */
static size_t decode_all(const uint8_t *b, size_t len, ev_t *out, size_t max)
{
    itch_result_t r;
    itch_decode_block(b, len, out, max, &r);
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.consumed, len);
    return r.n;
}

static void frame_offsets(const uint8_t *b, size_t len, size_t *off, size_t max)
{
    size_t o = 0, k = 0;
    while (o < len && k < max) {
        off[k++] = o;
        o += 2 + rd(b, o, 2);
    }
    off[k] = o;
}

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    return 0;
}

/* ---- tests ---- */

static void test_itch_msg_len_matches_spec(void **state)
{
    (void)state;
    for (unsigned t = 0; t < 256; t++)
        assert_int_equal(itch_msg_len[t], naive_len((uint8_t)t));
    unsigned longest = 0;
    for (size_t i = 0; i < N_TYPES; i++)
        longest = spec_len[i].len > longest ? spec_len[i].len : longest;
    assert_int_equal(ITCH_MAX_MSG, longest);
    assert_int_equal(ITCH_MAX_FRAME, longest + 2);
}

/* A name for exactly the types the specification has (the table of spec_len), each distinct;
 * a few spelled out as the replay report prints them. */
static void test_itch_msg_name_for_every_type(void **state)
{
    (void)state;
    for (unsigned t = 0; t < 256; t++) {
        const char *name = itch_msg_name(t);
        assert_true((name != NULL) == (naive_len((uint8_t)t) != 0));
        if (name == NULL)
            continue;
        assert_true(name[0] != '\0');
        for (unsigned k = 0; k < t; k++)
            if (itch_msg_name(k))
                assert_string_not_equal(itch_msg_name(k), name);
    }
    assert_string_equal(itch_msg_name('A'), "add order");
    assert_string_equal(itch_msg_name('F'), "add order with MPID");
    assert_string_equal(itch_msg_name('h'), "operational halt");
    assert_string_equal(itch_msg_name('I'), "NOII");
    assert_null(itch_msg_name('t')); /* EV_CSV_TRADE: not an ITCH type */
    assert_null(itch_msg_name(0));
    assert_null(itch_msg_name(256));
    assert_null(itch_msg_name(0x141)); /* 'A' + 256 must not alias 'A' */
}

/* Naive writer: n bytes of v at m + off, big-endian, one byte at a time. */
static void put(uint8_t *m, size_t off, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        m[off + (size_t)i] = (uint8_t)(v & 0xff);
}

static void put_alpha(uint8_t *m, size_t off, const char *s, size_t width)
{
    size_t l = strlen(s);
    for (size_t i = 0; i < width; i++)
        m[off + i] = i < l ? (uint8_t)s[i] : ' ';
}

/* 09:30:00.000000123 and 23:59:59.999999999 in ns since midnight, by hand. */
#define TS_OPEN 34200000000123ull
#define TS_LAST 86399999999999ull

static void hdr(uint8_t *m, char type, uint16_t locate, uint16_t tracking, uint64_t ts)
{
    m[0] = (uint8_t)type;
    put(m, 1, locate, 2);
    put(m, 3, tracking, 2);
    put(m, 5, ts, 6);
}

/* Fill m with a message of the given type with fixed hand-chosen fields; returns its length.
 * Every type uses locate 4660, tracking 7 and TS_OPEN except 'B', which uses TS_LAST. */
static unsigned build(uint8_t *m, char type)
{
    memset(m, 0xee, ITCH_MAX_MSG + 8);
    hdr(m, type, 4660, 7, type == 'B' ? TS_LAST : TS_OPEN);
    switch (type) {
    case 'S':
        m[11] = 'O';
        return 12;
    case 'R':
        put_alpha(m, 11, "AAPL", 8);
        m[19] = 'Q', m[20] = 'N';
        put(m, 21, 100, 4);
        m[25] = 'N', m[26] = 'C';
        put_alpha(m, 27, "Z", 2);
        m[29] = 'P', m[30] = 'N', m[31] = 'N', m[32] = '1', m[33] = 'N';
        put(m, 34, 0, 4);
        m[38] = 'N';
        return 39;
    case 'H':
        put_alpha(m, 11, "AAPL", 8);
        m[19] = 'T', m[20] = ' ';
        put_alpha(m, 21, "", 4);
        return 25;
    case 'Y':
        put_alpha(m, 11, "AAPL", 8);
        m[19] = '1';
        return 20;
    case 'L':
        put_alpha(m, 11, "GSCO", 4);
        put_alpha(m, 15, "AAPL", 8);
        m[23] = 'Y', m[24] = 'N', m[25] = 'A';
        return 26;
    case 'V':
        put(m, 11, 300276000000ull, 8); /* 3002.76000000 */
        put(m, 19, 279507000000ull, 8);
        put(m, 27, 238863000000ull, 8);
        return 35;
    case 'W':
        m[11] = '1';
        return 12;
    case 'K':
        put_alpha(m, 11, "NEWCO", 8);
        put(m, 19, 34200, 4);
        m[23] = 'A';
        put(m, 24, 170000, 4); /* $17.00 */
        return 28;
    case 'J':
        put_alpha(m, 11, "AAPL", 8);
        put(m, 19, 1234500, 4);
        put(m, 23, 1358000, 4);
        put(m, 27, 1111000, 4);
        put(m, 31, 2, 4);
        return 35;
    case 'h':
        put_alpha(m, 11, "AAPL", 8);
        m[19] = 'Q', m[20] = 'H';
        return 21;
    case 'A':
    case 'F':
        put(m, 11, 0x0102030405060708ull, 8);
        m[19] = 'B';
        put(m, 20, 100, 4);
        put_alpha(m, 24, "AAPL", 8);
        put(m, 32, 1234500, 4); /* $123.45 */
        if (type == 'A')
            return 36;
        put_alpha(m, 36, "NITE", 4);
        return 40;
    case 'E':
        put(m, 11, 42, 8);
        put(m, 19, 25, 4);
        put(m, 23, 9000000001ull, 8);
        return 31;
    case 'C':
        put(m, 11, 43, 8);
        put(m, 19, 30, 4);
        put(m, 23, 9000000002ull, 8);
        m[31] = 'Y';
        put(m, 32, 1234600, 4);
        return 36;
    case 'X':
        put(m, 11, 44, 8);
        put(m, 19, 10, 4);
        return 23;
    case 'D':
        put(m, 11, 45, 8);
        return 19;
    case 'U':
        put(m, 11, 46, 8);
        put(m, 19, 47, 8);
        put(m, 27, 200, 4);
        put(m, 31, 999900, 4);
        return 35;
    case 'P':
        put(m, 11, 0, 8);
        m[19] = 'S';
        put(m, 20, 300, 4);
        put_alpha(m, 24, "AAPL", 8);
        put(m, 32, 3201234, 4);
        put(m, 36, 77, 8);
        return 44;
    case 'Q':
        put(m, 11, 1000000, 8);
        put_alpha(m, 19, "AAPL", 8);
        put(m, 27, 3250000, 4);
        put(m, 31, 78, 8);
        m[39] = 'O';
        return 40;
    case 'B':
        put(m, 11, 79, 8);
        return 19;
    case 'I':
        put(m, 11, 5000, 8);
        put(m, 19, 1200, 8);
        m[27] = 'B';
        put_alpha(m, 28, "AAPL", 8);
        put(m, 36, 3300000, 4);
        put(m, 40, 3290000, 4);
        put(m, 44, 3280000, 4);
        m[48] = 'C', m[49] = 'L';
        return 50;
    case 'N':
        put_alpha(m, 11, "AAPL", 8);
        m[19] = 'A';
        return 20;
    case 'O':
        put_alpha(m, 11, "NEWCO", 8);
        m[19] = 'Y';
        put(m, 20, 1000000, 4);
        put(m, 24, 2000000, 4);
        put(m, 28, 1500000, 4);
        put(m, 32, 34200000000000ull, 8);
        put(m, 40, 1400000, 4);
        put(m, 44, 1600000, 4);
        return 48;
    default:
        fail_msg("build: type %c", type);
    }
    return 0;
}

/* The hand-computed event of build(type): every field, so unused ones must be 0. */
static ev_t expected(char type)
{
    ev_t e = {.ts = TS_OPEN, .locate = 4660, .tracking = 7, .type = (uint8_t)type};
    switch (type) {
    case 'S':
        e.aux = 'O';
        break;
    case 'R':
        e.aux = 'Q', e.shares = 100;
        break;
    case 'H':
        e.aux = 'T';
        break;
    case 'Y':
        e.aux = '1';
        break;
    case 'L':
        e.aux = 'Y';
        break;
    case 'V':
        e.price = 30027600; /* $3002.76 */
        break;
    case 'W':
        e.aux = '1';
        break;
    case 'K':
        e.aux = 'A', e.price = 170000;
        break;
    case 'J':
        e.price = 1234500;
        break;
    case 'h':
        e.aux = 'H';
        break;
    case 'A':
    case 'F':
        e.ref = 72623859790382856ull, e.side = 'B', e.shares = 100, e.price = 1234500;
        break;
    case 'E':
        e.ref = 42, e.shares = 25, e.match = 9000000001ull;
        break;
    case 'C':
        e.ref = 43, e.shares = 30, e.match = 9000000002ull, e.aux = 'Y', e.price = 1234600;
        break;
    case 'X':
        e.ref = 44, e.shares = 10;
        break;
    case 'D':
        e.ref = 45;
        break;
    case 'U':
        e.ref = 46, e.new_ref = 47, e.shares = 200, e.price = 999900;
        break;
    case 'P':
        e.side = 'S', e.shares = 300, e.price = 3201234, e.match = 77;
        break;
    case 'Q':
        e.shares = 1000000, e.price = 3250000, e.match = 78, e.aux = 'O';
        break;
    case 'B':
        e.match = 79, e.ts = TS_LAST;
        break;
    case 'I':
        e.shares = 5000, e.aux = 'B', e.price = 3280000;
        break;
    case 'N':
        e.aux = 'A';
        break;
    case 'O':
        e.aux = 'Y';
        break;
    default:
        fail_msg("expected: type %c", type);
    }
    return e;
}

static void check_hand(const ev_t *got, char type, const uint8_t *m, unsigned len)
{
    ev_t want = expected(type);
    want.raw = m;
    want.raw_len = (uint8_t)len;
    assert_ptr_equal(got->raw, m);
    assert_ev_equal(got, &want);
}

static void test_itch_hand_built_every_type(void **state)
{
    (void)state;
    uint8_t m[ITCH_MAX_MSG + 8];
    uint8_t stream[N_TYPES * ITCH_MAX_FRAME];
    size_t slen = 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        char t = spec_len[i].type;
        unsigned len = build(m, t);
        assert_int_equal(len, spec_len[i].len);
        ev_t e;
        memset(&e, 0x5a, sizeof e);
        assert_int_equal(itch_decode(m, len, &e), ITCH_OK);
        check_hand(&e, t, m, len);
        put(stream, slen, len, 2);
        memcpy(stream + slen + 2, m, len);
        slen += 2 + len;
    }
    /* The same messages framed, decoded in one call. */
    ev_t ev[N_TYPES];
    itch_result_t r;
    itch_decode_block(stream, slen, ev, N_TYPES, &r);
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.consumed, slen);
    assert_int_equal(r.n, N_TYPES);
    size_t off = 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        check_hand(&ev[i], spec_len[i].type, stream + off + 2, spec_len[i].len);
        off += 2 + spec_len[i].len;
    }
}

static void test_itch_decode_single_refusals(void **state)
{
    (void)state;
    uint8_t m[ITCH_MAX_MSG + 8];
    ev_t e;
    unsigned len = build(m, 'A');
    assert_int_equal(itch_decode(m, 0, &e), ITCH_ERR_ZERO_LENGTH);
    assert_int_equal(itch_decode(m, len - 1, &e), ITCH_ERR_BAD_LENGTH);
    assert_int_equal(itch_decode(m, len + 1, &e), ITCH_ERR_BAD_LENGTH);
    m[0] = 'Z';
    assert_int_equal(itch_decode(m, len, &e), ITCH_ERR_UNKNOWN_TYPE);
    m[0] = 'a'; /* ITCH types are case sensitive: only 'h' is lower case */
    assert_int_equal(itch_decode(m, len, &e), ITCH_ERR_UNKNOWN_TYPE);
}

static void test_itch_field_extremes(void **state)
{
    (void)state;
    uint8_t m[ITCH_MAX_MSG + 8];
    ev_t e;
    unsigned len = build(m, 'A');
    put(m, 32, 0xffffffffu, 4); /* prices are unsigned */
    put(m, 20, 0xffffffffu, 4);
    put(m, 11, UINT64_MAX, 8);
    put(m, 5, 0xffffffffffffull, 6);
    put(m, 1, 0xffff, 2);
    assert_int_equal(itch_decode(m, len, &e), ITCH_OK);
    assert_int_equal(e.price, 4294967295);
    assert_int_equal(e.shares, 4294967295u);
    assert_true(e.ref == UINT64_MAX);
    assert_int_equal(e.ts, 281474976710655ull);
    assert_int_equal(e.locate, 65535);
    /* MWCB level rounding to 4 decimals: 1.23456789 -> 1.2346, 1.23454999 -> 1.2345. */
    len = build(m, 'V');
    put(m, 11, 123456789, 8);
    assert_int_equal(itch_decode(m, len, &e), ITCH_OK);
    assert_int_equal(e.price, 12346);
    put(m, 11, 123454999, 8);
    assert_int_equal(itch_decode(m, len, &e), ITCH_OK);
    assert_int_equal(e.price, 12345);
    put(m, 11, UINT64_MAX, 8);
    assert_int_equal(itch_decode(m, len, &e), ITCH_OK);
    assert_int_equal(e.price, 1844674407370955); /* 18446744073709551615 / 1e4, rounded */
}

static void test_itch_aapl_counts_and_fields(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(AAPL, &f);
    assert_int_equal(f.len, 307643);
    size_t n = decode_all(f.p, f.len, g_ref, AAPL_N + 16);
    assert_int_equal(n, AAPL_N);
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
        count[g_ref[i].type]++;
    /* Published: A=4758 D=4083 E=849 P=240 L=52 U=7 X=6 F=2 R=1 H=1 Y=1. */
    assert_int_equal(count['A'], 4758);
    assert_int_equal(count['D'], 4083);
    assert_int_equal(count['E'], 849);
    assert_int_equal(count['P'], 240);
    assert_int_equal(count['L'], 52);
    assert_int_equal(count['U'], 7);
    assert_int_equal(count['X'], 6);
    assert_int_equal(count['F'], 2);
    assert_int_equal(count['R'], 1);
    assert_int_equal(count['H'], 1);
    assert_int_equal(count['Y'], 1);

    /* Every event equals the naive decode of its frame. */
    frame_offsets(f.p, f.len, g_off, AAPL_N);
    assert_int_equal(g_off[AAPL_N], f.len);
    for (size_t i = 0; i < n; i++) {
        ev_t want;
        naive_decode(f.p + g_off[i] + 2, (unsigned)rd(f.p, g_off[i], 2), &want);
        assert_ptr_equal(g_ref[i].raw, f.p + g_off[i] + 2);
        assert_ev_equal(&g_ref[i], &want);
        assert_int_equal(g_ref[i].locate, 13);
    }

    /* Published span 03:07:14.910 to 07:59:30.517 (ms, rounded), non-decreasing. */
    assert_true(g_ref[0].ts >= 11234909500000ull && g_ref[0].ts < 11234910500000ull);
    assert_true(g_ref[n - 1].ts >= 28770516500000ull && g_ref[n - 1].ts < 28770517500000ull);
    for (size_t i = 1; i < n; i++)
        assert_true(g_ref[i].ts >= g_ref[i - 1].ts);

    /* The directory message: AAPL, Nasdaq Global Select ('Q'), round lot 100. */
    assert_int_equal(g_ref[0].type, 'R');
    assert_int_equal(g_ref[0].aux, 'Q');
    assert_int_equal(g_ref[0].shares, 100);
    assert_memory_equal(g_ref[0].raw + 11, "AAPL    ", 8);

    /* Field offsets against the order flow itself: adds have a side and a valid price, mostly
     * near AAPL's, trades are at AAPL's price of the day, and D/E/X/U name an order added
     * earlier (by A, F or U). */
    static uint64_t live[AAPL_N];
    size_t nlive = 0, near = 0;
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &g_ref[i];
        if (e->type == 'A' || e->type == 'F') {
            assert_true(e->side == 'B' || e->side == 'S');
            /* $0.01 to $199,999.99: the stub quotes at both ends of ITCH's price range */
            assert_true(e->price >= 100 && e->price <= 1999999900);
            near += e->price >= 150 * EV_PRICE_SCALE && e->price <= 500 * EV_PRICE_SCALE;
            assert_true(e->shares > 0);
            assert_memory_equal(e->raw + 24, "AAPL    ", 8);
            live[nlive++] = e->ref;
        } else if (e->type == 'D' || e->type == 'E' || e->type == 'X' || e->type == 'U') {
            bool found = false;
            for (size_t k = nlive; k-- > 0 && !found;)
                found = live[k] == e->ref;
            assert_true(found);
            if (e->type == 'U')
                live[nlive++] = e->new_ref;
        } else if (e->type == 'P') {
            /* AAPL traded between $317 and $328 on 2020-01-30 */
            assert_true(e->price >= 300 * EV_PRICE_SCALE && e->price <= 330 * EV_PRICE_SCALE);
            assert_true(e->side == 'B' || e->side == 'S');
            assert_true(e->match != 0);
        }
    }
    assert_true(near >= (count['A'] + count['F']) * 99 / 100); /* most adds near the market */
    unload(&f);
}

/* Feed the file in chunks of bufsz bytes, carrying the unconsumed tail in a small local
 * buffer, decoding into at most max events per call; compare with g_ref. */
static void feed_chunked(const file_buf_t *f, uint8_t *buf, size_t bufsz, size_t max)
{
    uint8_t carry[ITCH_MAX_FRAME];
    size_t ncarry = 0, fpos = 0, k = 0;
    while (fpos < f->len || ncarry > 0) {
        memcpy(buf, carry, ncarry);
        size_t take = f->len - fpos < bufsz - ncarry ? f->len - fpos : bufsz - ncarry;
        memcpy(buf + ncarry, f->p + fpos, take);
        fpos += take;
        size_t have = ncarry + take, off = 0;
        itch_result_t r;
        do {
            itch_decode_block(buf + off, have - off, g_ev, max, &r);
            assert_true(r.n <= max);
            assert_true(r.consumed <= have - off);
            for (size_t i = 0; i < r.n; i++)
                assert_ev_equal(&g_ev[i], &g_ref[k + i]);
            k += r.n;
            off += r.consumed;
        } while (r.status == ITCH_FULL);
        assert_int_equal(r.status, ITCH_OK);
        ncarry = have - off;
        assert_true(ncarry < ITCH_MAX_FRAME);
        memcpy(carry, buf + off, ncarry);
        if (take == 0)
            break; /* end of file with a tail left: fails below */
    }
    assert_int_equal(ncarry, 0);
    assert_int_equal(k, AAPL_N);
}

static void test_itch_aapl_every_buffer_size(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(AAPL, &f);
    assert_int_equal(decode_all(f.p, f.len, g_ref, AAPL_N + 16), AAPL_N);
    uint8_t *buf = mem_alloc(MEM_TAG_TEST, f.len);
    assert_non_null(buf);
    /* Every size from 64 bytes to 2 KiB (1 in 7 under valgrind), then growing by a
     * factor of ~1.3 (plus one byte, so sizes stay uneven) up to the whole file. The event
     * array size varies too, so ITCH_FULL lands everywhere. */
    const size_t step = small_mode() ? 7 : 1;
    size_t sizes = 0;
    for (size_t sz = 64; sz <= 2048; sz += step, sizes++)
        feed_chunked(&f, buf, sz, 1 + sz % 97);
    for (size_t sz = 2049; sz < f.len; sz = sz * 13 / 10 + 1, sizes++)
        feed_chunked(&f, buf, sz, sz % 2 ? 4096 : 1 + sz % 1000);
    feed_chunked(&f, buf, f.len, AAPL_N);
    print_message("decoded the file with %zu buffer sizes\n", sizes + 1);
    mem_free(MEM_TAG_TEST, buf, f.len);
    unload(&f);
}

static void test_itch_directory_symbols(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(DIRECTORY, &f);
    size_t n = decode_all(f.p, f.len, g_ev, AAPL_N);
    assert_int_equal(n, 1000);
    symtab_t t;
    assert_int_equal(symtab_init(&t, SYMTAB_MAX_SYMBOLS), 0);
    size_t nr = 0, ns = 0, nh = 0, ny = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = itch_directory_apply(&t, &g_ev[i]);
        assert_int_equal(rc, 0);
        nr += g_ev[i].type == 'R', ns += g_ev[i].type == 'S';
        nh += g_ev[i].type == 'H', ny += g_ev[i].type == 'Y';
    }
    assert_int_equal(nr, 993);
    assert_int_equal(ns, 1);
    assert_int_equal(nh, 3);
    assert_int_equal(ny, 3);
    assert_int_equal(symtab_count(&t), 993);
    assert_int_equal(symtab_find(&t, "AAPL", 4), 13);
    assert_string_equal(symtab_name(&t, 13), "AAPL");
    /* Every R event names its locate with the symbol in its raw message. */
    for (size_t i = 0; i < n; i++) {
        if (g_ev[i].type != 'R')
            continue;
        char sym[9];
        memcpy(sym, g_ev[i].raw + 11, 8);
        size_t l = 8;
        while (l > 0 && sym[l - 1] == ' ')
            l--;
        sym[l] = '\0';
        assert_string_equal(symtab_name(&t, g_ev[i].locate), sym);
    }
    /* Applying it again changes nothing; a non-R event is ignored; R without raw refused. */
    assert_int_equal(itch_directory_apply(&t, &g_ev[1]), 0);
    assert_int_equal(symtab_count(&t), 993);
    ev_t e = g_ev[0];
    e.type = 'A';
    assert_int_equal(itch_directory_apply(&t, &e), 0);
    e = g_ev[1];
    assert_int_equal(e.type, 'R');
    e.raw = NULL;
    assert_int_equal(itch_directory_apply(&t, &e), -EINVAL);
    symtab_fini(&t);
    unload(&f);
}

/* A stream of k hand-built messages of the given types; offsets of each frame in off[]. */
static size_t build_stream(uint8_t *s, const char *types, size_t *off)
{
    size_t len = 0, i = 0;
    uint8_t m[ITCH_MAX_MSG + 8];
    for (; types[i]; i++) {
        unsigned l = build(m, types[i]);
        off[i] = len;
        put(s, len, l, 2);
        memcpy(s + len + 2, m, l);
        len += 2 + l;
    }
    off[i] = len;
    return len;
}

/* Decode s[0..len) and check status, offset and the events before the bad frame. */
static void expect_stop(const uint8_t *s, size_t len, const char *types, size_t good, size_t at,
                        itch_status_t st, unsigned err_len, unsigned err_type,
                        unsigned err_expected)
{
    ev_t ev[32];
    itch_result_t r;
    itch_decode_block(s, len, ev, 32, &r);
    assert_int_equal(r.status, st);
    assert_int_equal(r.consumed, at);
    assert_int_equal(r.n, good);
    if (st != ITCH_OK && st != ITCH_FULL) {
        assert_int_equal(r.err_len, err_len);
        assert_int_equal(r.err_type, err_type);
        assert_int_equal(r.err_expected, err_expected);
    }
    size_t off = 0;
    for (size_t i = 0; i < good; i++) {
        unsigned l = naive_len((uint8_t)types[i]);
        check_hand(&ev[i], types[i], s + off + 2, l);
        off += 2 + l;
    }
}

static void test_itch_bad_frames_stop_with_position(void **state)
{
    (void)state;
    static const char types[] = "SRAFEDUXPCAD";
    uint8_t s[16 * ITCH_MAX_FRAME];
    size_t off[16];
    size_t len = build_stream(s, types, off);
    const size_t nt = sizeof types - 1;
    expect_stop(s, len, types, nt, len, ITCH_OK, 0, 0, 0);

    /* Zero length prefix at frame 5 ('D'). */
    put(s, off[5], 0, 2);
    expect_stop(s, len, types, 5, off[5], ITCH_ERR_ZERO_LENGTH, 0, 'D', 19);
    put(s, off[5], 19, 2);
    /* Unknown type at frame 3. */
    s[off[3] + 2] = 'Z';
    expect_stop(s, len, types, 3, off[3], ITCH_ERR_UNKNOWN_TYPE, 40, 'Z', 0);
    s[off[3] + 2] = 'F';
    /* Length mismatch at frame 2 ('A' with 35, then 37). */
    put(s, off[2], 35, 2);
    expect_stop(s, len, types, 2, off[2], ITCH_ERR_BAD_LENGTH, 35, 'A', 36);
    put(s, off[2], 37, 2);
    expect_stop(s, len, types, 2, off[2], ITCH_ERR_BAD_LENGTH, 37, 'A', 36);
    put(s, off[2], 0xffff, 2);
    expect_stop(s, len, types, 2, off[2], ITCH_ERR_BAD_LENGTH, 0xffff, 'A', 36);
    put(s, off[2], 36, 2);
    /* The very first frame bad: nothing decoded, consumed 0. */
    put(s, 0, 0, 2);
    expect_stop(s, len, types, 0, 0, ITCH_ERR_ZERO_LENGTH, 0, 'S', 12);
    put(s, 0, 12, 2);
    expect_stop(s, len, types, nt, len, ITCH_OK, 0, 0, 0);
}

static void test_itch_truncated_tail_is_not_an_error(void **state)
{
    (void)state;
    static const char types[] = "SAPD";
    uint8_t s[8 * ITCH_MAX_FRAME];
    size_t off[8];
    size_t len = build_stream(s, types, off);
    /* Cut the last frame ('D', 21 bytes with its prefix) at every length. */
    for (size_t cut = off[3]; cut < len; cut++)
        expect_stop(s, cut, types, 3, off[3], ITCH_OK, 0, 0, 0);
    expect_stop(s, len, types, 4, len, ITCH_OK, 0, 0, 0);
    /* A bad prefix is judged as soon as it is there, even before its type byte. */
    put(s, off[3], 0, 2);
    expect_stop(s, off[3] + 1, types, 3, off[3], ITCH_OK, 0, 0, 0);
    expect_stop(s, off[3] + 2, types, 3, off[3], ITCH_ERR_ZERO_LENGTH, 0, 0, 0);
    expect_stop(s, off[3] + 3, types, 3, off[3], ITCH_ERR_ZERO_LENGTH, 0, 'D', 19);
    put(s, off[3], ITCH_MAX_MSG + 1, 2);
    expect_stop(s, off[3] + 2, types, 3, off[3], ITCH_ERR_BAD_LENGTH, ITCH_MAX_MSG + 1, 0, 0);
    put(s, off[3], 36, 2); /* 36 is a valid length, but not for 'D' */
    expect_stop(s, off[3] + 2, types, 3, off[3], ITCH_OK, 0, 0, 0);
    expect_stop(s, off[3] + 3, types, 3, off[3], ITCH_ERR_BAD_LENGTH, 36, 'D', 19);
    /* Empty and tiny buffers. */
    ev_t e;
    itch_result_t r;
    itch_decode_block(s, 0, &e, 1, &r);
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.consumed + r.n, 0);
    itch_decode_block(s, 1, &e, 1, &r);
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.consumed + r.n, 0);
}

static void test_itch_full_array(void **state)
{
    (void)state;
    static const char types[] = "SAPD";
    uint8_t s[8 * ITCH_MAX_FRAME];
    size_t off[8];
    size_t len = build_stream(s, types, off);
    ev_t ev[4];
    itch_result_t r;
    itch_decode_block(s, len, ev, 2, &r);
    assert_int_equal(r.status, ITCH_FULL);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.consumed, off[2]);
    itch_decode_block(s, len, ev, 0, &r);
    assert_int_equal(r.status, ITCH_FULL);
    assert_int_equal(r.n + r.consumed, 0);
    itch_decode_block(s, len, ev, 4, &r); /* exactly full at the end: OK */
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.n, 4);
    itch_decode_block(s, len - 1, ev, 3, &r); /* full, then only a tail: still FULL */
    assert_int_equal(r.status, ITCH_FULL);
    itch_decode_block(s + r.consumed, len - 1 - r.consumed, ev, 3, &r);
    assert_int_equal(r.status, ITCH_OK);
    assert_int_equal(r.n, 0);
}

/* Deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void check_against_naive(const uint8_t *b, size_t len, size_t max)
{
    itch_result_t r;
    naive_res_t w;
    itch_decode_block(b, len, g_ev, max, &r);
    naive_frame(b, len, max, &w);
    assert_int_equal(r.status, w.status);
    assert_int_equal(r.consumed, w.consumed);
    assert_int_equal(r.n, w.n);
    if (w.status != ITCH_OK && w.status != ITCH_FULL) {
        assert_int_equal(r.err_len, w.err_len);
        assert_int_equal(r.err_type, w.err_type);
        assert_int_equal(r.err_expected, w.err_expected);
    }
    size_t off = 0;
    for (size_t i = 0; i < r.n; i++) {
        ev_t want;
        unsigned l = (unsigned)rd(b, off, 2);
        naive_decode(b + off + 2, l, &want);
        assert_ev_equal(&g_ev[i], &want);
        off += 2 + l;
    }
}

static void test_itch_random_garbage_and_mutations(void **state)
{
    (void)state;
    enum { CAP = 4096 };
    static uint8_t b[CAP];
    const int rounds = small_mode() ? 300 : 5000;
    /* Pure random bytes. */
    for (int i = 0; i < rounds; i++) {
        size_t len = rng() % CAP;
        for (size_t k = 0; k < len; k++)
            b[k] = (uint8_t)rng();
        check_against_naive(b, len, 1 + rng() % 64);
    }
    /* Valid streams of random messages with a few random byte changes and a random cut. */
    for (int i = 0; i < rounds; i++) {
        size_t len = 0;
        uint8_t m[ITCH_MAX_MSG + 8];
        while (len + ITCH_MAX_FRAME <= CAP) {
            char t = spec_len[rng() % N_TYPES].type;
            unsigned l = build(m, t);
            for (unsigned k = 1; k < l; k++)
                m[k] = (uint8_t)rng();
            put(b, len, l, 2);
            memcpy(b + len + 2, m, l);
            len += 2 + l;
        }
        int muts = (int)(rng() % 4);
        for (int k = 0; k < muts; k++)
            b[rng() % len] = (uint8_t)rng();
        check_against_naive(b, len - rng() % 64, 1 + rng() % 200);
    }
}

static void test_itch_ritch_zero_lengths_refused(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(RITCH, &f);
    assert_int_equal(f.len, 465048);
    /* Its first frame is 00 00 'S' ...: a system event whose prefix is 0. */
    itch_result_t r;
    itch_decode_block(f.p, f.len, g_ev, AAPL_N, &r);
    assert_int_equal(r.status, ITCH_ERR_ZERO_LENGTH);
    assert_int_equal(r.consumed, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.err_len, 0);
    assert_int_equal(r.err_type, 'S');
    assert_int_equal(r.err_expected, 12);
    assert_string_equal(itch_status_str(r.status), "zero length prefix");
    /* With --skip-bad the whole file is walked and ends; every frame accepted on the way is a
     * frame by the naive rules. Each resync drops at least one byte, so calls <= len. */
    size_t off = 0, calls = 0, events = 0, resyncs = 0;
    while (off < f.len) {
        assert_true(++calls <= 2 * f.len);
        check_against_naive(f.p + off, f.len - off, AAPL_N);
        itch_decode_block(f.p + off, f.len - off, g_ev, AAPL_N, &r);
        events += r.n;
        off += r.consumed;
        if (r.status == ITCH_FULL)
            continue;
        if (r.status == ITCH_OK)
            break; /* a tail, at EOF: dropped */
        size_t skip = itch_resync(f.p + off, f.len - off, true);
        assert_true(skip >= 1 && skip <= f.len - off);
        off += skip;
        resyncs++;
    }
    print_message("ritch with skip-bad: %zu resyncs, %zu events, %zu decode calls\n", resyncs,
                  events, calls);
    assert_true(events < 100); /* chance alignments only */
    unload(&f);
}

/* Skip-bad decode of b from off: decode, on error resync, until the end. Events go to
 * out[] (cap AAPL_N + 16) with the buffer offset of each. Returns the number of events. */
static size_t skip_bad_decode(const uint8_t *b, size_t len, ev_t *out, size_t *resyncs)
{
    size_t off = 0, n = 0;
    *resyncs = 0;
    for (;;) {
        itch_result_t r;
        itch_decode_block(b + off, len - off, out + n, AAPL_N + 16 - n, &r);
        n += r.n;
        off += r.consumed;
        if (r.status == ITCH_OK)
            break;
        assert_int_not_equal(r.status, ITCH_FULL);
        size_t skip = itch_resync(b + off, len - off, true);
        assert_true(skip >= 1 && skip <= len - off);
        off += skip;
        ++*resyncs;
    }
    assert_int_equal(off, len);
    return n;
}

static void test_itch_resync_after_corruption(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(AAPL, &f);
    assert_int_equal(decode_all(f.p, f.len, g_ref, AAPL_N + 16), AAPL_N);
    frame_offsets(f.p, f.len, g_off, AAPL_N);
    uint8_t *c = mem_alloc(MEM_TAG_TEST, f.len);
    assert_non_null(c);
    const size_t step = small_mode() ? 211 : 37;
    size_t checked = 0;
    for (size_t k = 1; k < AAPL_N - 1; k += step) {
        /* Three corruptions of frame k's prefix or type byte: the decoder stops at frame k,
         * itch_resync finds frame k + 1, and every event after it matches the clean decode. */
        for (int kind = 0; kind < 3; kind++) {
            memcpy(c, f.p, f.len);
            const size_t at = g_off[k];
            if (kind == 0)
                c[at + 2] = 'Z'; /* unknown type */
            else if (kind == 1)
                c[at] = 0x7f; /* length 0x7fxx */
            else
                c[at] = 0, c[at + 1] = 0; /* zero length */
            itch_result_t r;
            itch_decode_block(c, f.len, g_ev, AAPL_N + 16, &r);
            assert_true(r.status >= ITCH_ERR_ZERO_LENGTH);
            assert_int_equal(r.consumed, at);
            assert_int_equal(r.n, k);
            for (size_t i = 0; i < k; i++)
                assert_ev_equal(&g_ev[i], &g_ref[i]);
            size_t skip = itch_resync(c + at, f.len - at, true);
            assert_int_equal(at + skip, g_off[k + 1]);
            size_t n = decode_all(c + at + skip, f.len - at - skip, g_ev, AAPL_N + 16);
            assert_int_equal(n, AAPL_N - k - 1);
            for (size_t i = 0; i < n; i++)
                assert_ev_equal(&g_ev[i], &g_ref[k + 1 + i]);
            checked++;
        }
        /* A byte lost inside frame k: the stream goes out of step; skip-bad decoding must
         * come back to the clean event sequence (its last events equal the clean ones). */
        size_t del = g_off[k] + 2 + 5;
        memcpy(c, f.p, del);
        memcpy(c + del, f.p + del + 1, f.len - del - 1);
        size_t resyncs;
        size_t n = skip_bad_decode(c, f.len - 1, g_ev, &resyncs);
        assert_true(resyncs >= 1);
        assert_true(n >= AAPL_N - 3 && n <= AAPL_N);
        /* Events before frame k are intact, and the last n - k - 2 match the clean tail. */
        for (size_t i = 0; i < k; i++)
            assert_ev_equal(&g_ev[i], &g_ref[i]);
        size_t tail = AAPL_N - k - 2;
        for (size_t i = 0; i < tail; i++)
            assert_ev_equal(&g_ev[n - tail + i], &g_ref[AAPL_N - tail + i]);
    }
    print_message("resync checked at %zu corruptions\n", checked);
    mem_free(MEM_TAG_TEST, c, f.len);
    unload(&f);
}

static void test_itch_resync_edges(void **state)
{
    (void)state;
    uint8_t s[8 * ITCH_MAX_FRAME];
    size_t off[8];
    size_t len = build_stream(s, "SAPDE", off);
    /* Bad frame at 0 (type 'Z'): the next frame is found, with or without EOF. */
    s[2] = 'Z';
    assert_int_equal(itch_resync(s, len, true), off[1]);
    assert_int_equal(itch_resync(s, len, false), off[1]);
    /* A chain that is cut by the end of the buffer is still accepted. */
    assert_int_equal(itch_resync(s, off[2] + 5, false), off[1]);
    /* ... but one that runs into a bad frame is not: the next good chain is taken. */
    s[off[2] + 2] = 'Z';
    assert_int_equal(itch_resync(s, len, true), off[3]);
    /* Nothing plausible: at EOF all is dropped; otherwise the last two bytes are kept. */
    memset(s, 0xff, sizeof s);
    assert_int_equal(itch_resync(s, 100, true), 100);
    assert_int_equal(itch_resync(s, 100, false), 98);
    assert_int_equal(itch_resync(s, 2, false), 1);
    assert_int_equal(itch_resync(s, 1, false), 1);
    assert_int_equal(itch_resync(s, 1, true), 1);
    assert_int_equal(itch_resync(s, 0, true), 0);
    assert_int_equal(itch_resync(s, 0, false), 0);
    /* Random buffers: the result is always in [1, len] and at EOF a skip-bad loop ends. */
    for (int i = 0; i < 2000; i++) {
        size_t l = 1 + rng() % (sizeof s - 1);
        for (size_t k = 0; k < l; k++)
            s[k] = (uint8_t)(rng() % 4 ? rng() % 64 : rng());
        size_t r = itch_resync(s, l, i & 1);
        assert_true(r >= 1 && r <= l);
    }
}

static void test_itch_decode_allocates_nothing(void **state)
{
    (void)state;
    file_buf_t f;
    LOAD_OR_SKIP(AAPL, &f);
    static uint8_t buf[1000];
    frame_offsets(f.p, f.len, g_off, AAPL_N);
    mem_seal();
    malloc_count_t before;
    malloc_count_get(&before);
    itch_result_t r;
    for (int rep = 0; rep < 3; rep++) {
        itch_decode_block(f.p, f.len, g_ev, AAPL_N + 16, &r);
        assert_int_equal(r.n, AAPL_N);
        /* In small pieces too, through FULL and tails. */
        size_t off = 0;
        while (off < f.len) {
            size_t l = f.len - off < sizeof buf ? f.len - off : sizeof buf;
            memcpy(buf, f.p + off, l);
            itch_decode_block(buf, l, g_ev, 7, &r);
            assert_true(r.consumed > 0);
            off += r.consumed;
        }
        assert_int_equal(itch_resync(f.p + 1, f.len - 1, false), g_off[1] - 1);
    }
    uint64_t allocs = malloc_count_allocs_since(&before);
    mem_unseal();
    assert_int_equal(allocs, 0);
    unload(&f);
}

static void test_itch_status_strings(void **state)
{
    (void)state;
    const char *seen[5];
    for (int s = ITCH_OK; s <= ITCH_ERR_BAD_LENGTH; s++) {
        seen[s] = itch_status_str((itch_status_t)s);
        assert_non_null(seen[s]);
        for (int k = 0; k < s; k++)
            assert_string_not_equal(seen[k], seen[s]);
    }
    assert_non_null(itch_status_str((itch_status_t)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_itch_msg_len_matches_spec, reset_counters),
        cmocka_unit_test_setup(test_itch_msg_name_for_every_type, reset_counters),
        cmocka_unit_test_setup(test_itch_hand_built_every_type, reset_counters),
        cmocka_unit_test_setup(test_itch_decode_single_refusals, reset_counters),
        cmocka_unit_test_setup(test_itch_field_extremes, reset_counters),
        cmocka_unit_test_setup(test_itch_aapl_counts_and_fields, reset_counters),
        cmocka_unit_test_setup(test_itch_aapl_every_buffer_size, reset_counters),
        cmocka_unit_test_setup(test_itch_directory_symbols, reset_counters),
        cmocka_unit_test_setup(test_itch_bad_frames_stop_with_position, reset_counters),
        cmocka_unit_test_setup(test_itch_truncated_tail_is_not_an_error, reset_counters),
        cmocka_unit_test_setup(test_itch_full_array, reset_counters),
        cmocka_unit_test_setup(test_itch_random_garbage_and_mutations, reset_counters),
        cmocka_unit_test_setup(test_itch_ritch_zero_lengths_refused, reset_counters),
        cmocka_unit_test_setup(test_itch_resync_after_corruption, reset_counters),
        cmocka_unit_test_setup(test_itch_resync_edges, reset_counters),
        cmocka_unit_test_setup(test_itch_decode_allocates_nothing, reset_counters),
        cmocka_unit_test_setup(test_itch_status_strings, reset_counters),
    };
    return leftover_check("test_itch", cmocka_run_group_tests(tests, NULL, NULL));
}
