/*
 * test_mold: MoldUDP64 framing against packets written out byte by byte (downstream packet,
 * heartbeat, end of session, request), every malformed case with the byte offset its error must
 * name, the builder filling to its cap; and mold_rx, first in small hand-traced scenarios (gaps,
 * retransmission, duplicates, heartbeat gaps, gap ages, set_next, store full, compaction), then
 * against a naive model: 10^5 messages (2 * 10^4 with TICKCORE_TEST_SMALL) split into
 * packets and sent through a simulated network (drops, duplicates, reordering, re-requests
 * answered after a round trip and themselves lost, heartbeats, a TCP source passing the
 * receiver), in simulated time. The model checks, as the callbacks happen, that the stream is the
 * original minus exactly the ranges reported lost (or passed to set_next), in order, each message
 * once with its bytes, and that nothing reported lost had ever arrived; at the end it checks the
 * counters against its own count of duplicates, recovered messages and gaps opened, and that the
 * hot loop allocated nothing (malloc_count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "mem/mem.h"
#include "net/mold.h"
#include "tests/support/malloc_count.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int reset_counters(void **state)
{
    (void)state;
    mem_unseal();
    mem_debug_reset();
    return 0;
}

static bool small_run(void)
{
    const char *e = getenv("TICKCORE_TEST_SMALL");
    return e && *e && strcmp(e, "0") != 0;
}

/* ---- framing -------------------------------------------------------------------------- */

/* Session "SESSION01", sequence number 258, two messages: "Abc" and 'S' 1 2 3 4. */
static const uint8_t PKT[] = {
    'S', 'E', 'S', 'S', 'I', 'O', 'N', '0', '1', ' ', /* session, padded on the right */
    0,   0,   0,   0,   0,   0,   1,   2,             /* sequence number 258 */
    0,   2,                                           /* message count */
    0,   3,   'A', 'b', 'c',                          /* block 1 at offset 20 */
    0,   5,   'S', 1,   2,   3,   4,                  /* block 2 at offset 25 */
};

static const uint8_t HEARTBEAT[] = {
    ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', /* blank session */
    0,   0,   0,   0,   0,   0,   0,   1,             /* next sequence number 1 */
    0,   0,                                           /* count 0: heartbeat */
};

static const uint8_t END[] = {
    'A',  'B',  'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', /* all 10 bytes used */
    1,    2,    3,   4,   5,   6,   7,   8,             /* 0x0102030405060708 */
    0xff, 0xff,                                         /* end of session */
};

static const uint8_t REQUEST[] = {
    'S', 'E', 'S', 'S', 'I', 'O', 'N', '0', '1', ' ', 0, 0, 0, 0, 0, 0, 1, 2, 0, 3,
};

static void test_mold_parse_packet(void **state)
{
    (void)state;
    mold_header_t h;
    char err[160] = "";
    assert_int_equal(mold_parse(PKT, sizeof PKT, &h, err, sizeof err), 0);
    assert_string_equal(h.session, "SESSION01");
    assert_int_equal(h.seq, 258);
    assert_int_equal(h.count, 2);
    mold_iter_t it;
    mold_iter_init(&it, PKT, sizeof PKT);
    const uint8_t *m;
    uint16_t len;
    assert_true(mold_next(&it, &m, &len));
    assert_int_equal(len, 3);
    assert_ptr_equal(m, PKT + 22);
    assert_memory_equal(m, "Abc", 3);
    assert_true(mold_next(&it, &m, &len));
    assert_int_equal(len, 5);
    assert_ptr_equal(m, PKT + 27);
    assert_false(mold_next(&it, &m, &len));
    assert_false(mold_next(&it, &m, &len));
}

static void test_mold_parse_heartbeat_end_request(void **state)
{
    (void)state;
    mold_header_t h;
    char err[160];
    assert_int_equal(mold_parse(HEARTBEAT, sizeof HEARTBEAT, &h, err, sizeof err), 0);
    assert_string_equal(h.session, "");
    assert_int_equal(h.seq, 1);
    assert_int_equal(h.count, 0);
    mold_iter_t it;
    const uint8_t *m;
    uint16_t len;
    mold_iter_init(&it, HEARTBEAT, sizeof HEARTBEAT);
    assert_false(mold_next(&it, &m, &len));

    assert_int_equal(mold_parse(END, sizeof END, &h, err, sizeof err), 0);
    assert_string_equal(h.session, "ABCDEFGHIJ");
    assert_true(h.seq == 0x0102030405060708ull);
    assert_int_equal(h.count, MOLD_END_OF_SESSION);
    mold_iter_init(&it, END, sizeof END);
    assert_false(mold_next(&it, &m, &len));

    char session[11];
    uint64_t seq = 0;
    uint16_t count = 0;
    assert_int_equal(
        mold_request_parse(REQUEST, sizeof REQUEST, session, &seq, &count, err, sizeof err), 0);
    assert_string_equal(session, "SESSION01");
    assert_int_equal(seq, 258);
    assert_int_equal(count, 3);
}

static void test_mold_builders_match_literal_bytes(void **state)
{
    (void)state;
    uint8_t out[64];
    mold_builder_t b;
    mold_begin(&b, out, sizeof out, "SESSION01", 258);
    assert_true(mold_add(&b, (const uint8_t *)"Abc", 3));
    assert_true(mold_add(&b, (const uint8_t[]){'S', 1, 2, 3, 4}, 5));
    assert_int_equal(mold_finish(&b), sizeof PKT);
    assert_memory_equal(out, PKT, sizeof PKT);

    assert_int_equal(mold_put_heartbeat(out, sizeof out, NULL, 1), 20);
    assert_memory_equal(out, HEARTBEAT, 20);
    assert_int_equal(mold_put_heartbeat(out, sizeof out, "", 1), 20);
    assert_memory_equal(out, HEARTBEAT, 20);
    assert_int_equal(mold_put_end(out, sizeof out, "ABCDEFGHIJ", 0x0102030405060708ull), 20);
    assert_memory_equal(out, END, 20);
    assert_int_equal(mold_put_request(out, sizeof out, "SESSION01", 258, 3), 20);
    assert_memory_equal(out, REQUEST, 20);

    /* A builder with no message is a heartbeat. */
    mold_begin(&b, out, sizeof out, NULL, 1);
    assert_int_equal(mold_finish(&b), 20);
    assert_memory_equal(out, HEARTBEAT, 20);

    /* Refusals: session too long or not printable, cap too small. */
    assert_int_equal(mold_put_heartbeat(out, sizeof out, "ABCDEFGHIJK", 1), 0);
    assert_int_equal(mold_put_end(out, sizeof out, "A\nB", 1), 0);
    assert_int_equal(mold_put_request(out, 19, "S", 1, 1), 0);
    mold_begin(&b, out, sizeof out, "ABCDEFGHIJK", 1);
    assert_false(mold_add(&b, (const uint8_t *)"x", 1));
    assert_int_equal(mold_finish(&b), 0);
    mold_begin(&b, out, 19, "S", 1);
    assert_false(mold_add(&b, (const uint8_t *)"x", 1));
    assert_int_equal(mold_finish(&b), 0);
}

static void test_mold_builder_fills_to_cap(void **state)
{
    (void)state;
    uint8_t out[64], msg[10];
    memset(out, 0xee, sizeof out);
    memset(msg, 'm', sizeof msg);
    mold_builder_t b;
    const size_t cap = 20 + 3 * 12 + 4; /* three 10-byte messages, then 4 bytes left */
    mold_begin(&b, out, cap, "S", 7);
    for (int i = 0; i < 3; i++)
        assert_true(mold_add(&b, msg, 10));
    assert_false(mold_add(&b, msg, 10)); /* needs 12 */
    assert_false(mold_add(&b, msg, 3));  /* needs 5 */
    assert_false(mold_add(&b, msg, 0));  /* a zero-length block is never valid */
    assert_int_equal(b.len, 56);
    assert_true(mold_add(&b, msg, 2)); /* exactly fills the cap */
    assert_false(mold_add(&b, msg, 1));
    assert_int_equal(mold_finish(&b), cap);
    assert_int_equal(out[cap], 0xee); /* nothing written past cap */
    mold_header_t h;
    char err[160];
    assert_int_equal(mold_parse(out, cap, &h, err, sizeof err), 0);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.seq, 7);
    assert_int_equal(out[18], 0);
    assert_int_equal(out[19], 4);

    /* At most 0xFFFE messages: the count never becomes the end-of-session mark. */
    const size_t big = 20 + (size_t)MOLD_MAX_MESSAGES * 3 + 3;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    mold_begin(&b, buf, big, "S", 1);
    for (unsigned i = 0; i < MOLD_MAX_MESSAGES; i++)
        assert_true(mold_add(&b, msg, 1));
    assert_false(mold_add(&b, msg, 1)); /* room for it, but the count is full */
    assert_int_equal(mold_finish(&b), big - 3);
    assert_int_equal(mold_parse(buf, big - 3, &h, err, sizeof err), 0);
    assert_int_equal(h.count, MOLD_MAX_MESSAGES);
    free(buf);
}

static void expect_bad(const uint8_t *p, size_t n, const char *offset, const char *what)
{
    mold_header_t h;
    char err[160] = "";
    assert_int_equal(mold_parse(p, n, &h, err, sizeof err), -1);
    if (strstr(err, offset) != err || strstr(err, what) == NULL)
        fail_msg("error \"%s\" does not start with \"%s\" and name \"%s\"", err, offset, what);
    assert_int_equal(mold_parse(p, n, &h, NULL, 0), -1); /* no message wanted */
    char tiny[8];
    assert_int_equal(mold_parse(p, n, &h, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1); /* truncated, terminated */
}

static void test_mold_parse_malformed(void **state)
{
    (void)state;
    uint8_t b[64];
    memset(b, 0, sizeof b);
    expect_bad(PKT, 0, "byte offset 0:", "ends inside the 20-byte header");
    expect_bad(PKT, 19, "byte offset 19:", "datagram of 19 bytes");
    memcpy(b, PKT, sizeof PKT);
    b[3] = 0x01;
    expect_bad(b, sizeof PKT, "byte offset 3:", "session byte 0x01");
    memcpy(b, HEARTBEAT, 20);
    b[20] = 'x';
    expect_bad(b, 21, "byte offset 20:", "heartbeat followed by 1 byte, expected none");
    memcpy(b, END, 20);
    expect_bad(b, 22, "byte offset 20:", "end of session followed by 2 bytes");
    /* Block 2 (offset 25, length 5) cut short. */
    expect_bad(PKT, sizeof PKT - 1, "byte offset 25:",
               "message 2 of 2 of length 5 runs past the end of the 31-byte datagram");
    expect_bad(PKT, 26, "byte offset 25:", "message 2 of 2: 1 byte left, expected a 2-byte length");
    expect_bad(PKT, 25, "byte offset 25:", "message 2 of 2: 0 bytes left");
    /* Trailing bytes: after the last block, or because the count is smaller than the blocks. */
    memcpy(b, PKT, sizeof PKT);
    b[sizeof PKT] = 0;
    expect_bad(b, sizeof PKT + 1,
               "byte offset 32:", "1 trailing byte after the last of 2 messages");
    b[19] = 1;
    expect_bad(b, sizeof PKT, "byte offset 25:", "7 trailing bytes after the last of 1 message");
    /* Zero-length blocks, first and second. */
    memcpy(b, PKT, 20);
    b[19] = 1;
    b[20] = 0;
    b[21] = 0;
    expect_bad(b, 22, "byte offset 20:", "message 1 of 1 has length 0");
    memcpy(b, PKT, sizeof PKT);
    b[25] = 0;
    b[26] = 0;
    expect_bad(b, 27, "byte offset 25:", "message 2 of 2 has length 0");
    /* A block whose length is 0xFFFF. */
    memcpy(b, PKT, sizeof PKT);
    b[20] = 0xff;
    b[21] = 0xff;
    expect_bad(b, sizeof PKT, "byte offset 20:", "length 65535 runs past");

    /* The header is reported even when a block is bad. */
    mold_header_t h;
    assert_int_equal(mold_parse(PKT, 26, &h, NULL, 0), -1);
    assert_int_equal(h.seq, 258);
    assert_int_equal(h.count, 2);
}

static void test_mold_request_malformed(void **state)
{
    (void)state;
    char err[160] = "", s[11];
    uint64_t seq;
    uint16_t count;
    uint8_t b[32];
    memcpy(b, REQUEST, 20);
    assert_int_equal(mold_request_parse(b, 19, s, &seq, &count, err, sizeof err), -1);
    assert_string_equal(err, "byte offset 19: request of 19 bytes, expected 20");
    b[20] = 0;
    assert_int_equal(mold_request_parse(b, 21, s, &seq, &count, err, sizeof err), -1);
    assert_string_equal(err, "byte offset 20: request of 21 bytes, expected 20");
    b[19] = 0;
    assert_int_equal(mold_request_parse(b, 20, s, &seq, &count, err, sizeof err), -1);
    assert_string_equal(err, "byte offset 18: requested message count 0, expected at least 1");
    b[19] = 3;
    b[9] = 0x80;
    assert_int_equal(mold_request_parse(b, 20, s, &seq, &count, err, sizeof err), -1);
    assert_string_equal(err, "byte offset 9: session byte 0x80, expected printable ASCII");
}

/* ---- mold_rx, hand-traced ------------------------------------------------------------- */

static uint8_t msg_byte(uint64_t seq, size_t j)
{
    return (uint8_t)(seq * 31 + j * 7 + 1);
}

static void msg_fill(uint8_t *p, uint64_t seq, size_t len)
{
    for (size_t j = 0; j < len; j++)
        p[j] = msg_byte(seq, j);
}

typedef struct rec {
    uint64_t seq[256];
    size_t n;
    uint64_t lost_from[32], lost_count[32];
    size_t nl;
} rec_t;

static void rec_deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    rec_t *r = ctx;
    for (size_t j = 0; j < len; j++)
        if (msg[j] != msg_byte(seq, j))
            fail_msg("message %llu byte %zu differs", (unsigned long long)seq, j);
    assert_true(r->n < 256);
    r->seq[r->n++] = seq;
}

static void rec_lost(void *ctx, uint64_t from, uint64_t count)
{
    rec_t *r = ctx;
    assert_true(r->nl < 32);
    r->lost_from[r->nl] = from;
    r->lost_count[r->nl++] = count;
}

/* Feed a packet of count messages from seq, each of length len (count 0: heartbeat). */
static size_t feed(mold_rx_t *rx, rec_t *r, uint64_t seq, unsigned count, uint16_t len,
                   uint64_t now)
{
    uint8_t buf[2048], m[256];
    mold_builder_t b;
    mold_begin(&b, buf, sizeof buf, "S", seq);
    for (unsigned i = 0; i < count; i++) {
        msg_fill(m, seq + i, len);
        assert_true(mold_add(&b, m, len));
    }
    const size_t n = mold_finish(&b);
    mold_header_t h;
    assert_int_equal(mold_parse(buf, n, &h, NULL, 0), 0);
    return mold_rx_packet(rx, &h, buf, n, now, rec_deliver, rec_lost, r);
}

static void expect_seqs(const rec_t *r, uint64_t from, uint64_t to)
{
    assert_int_equal(r->n, to - from);
    for (size_t i = 0; i < r->n; i++)
        assert_int_equal(r->seq[i], from + i);
}

static void test_mold_rx_gap_and_retransmission(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 4096, .gap_timeout_ns = 1000, .rerequest_ns = 100};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    uint64_t s;
    uint16_t c;
    assert_false(mold_rx_want(&rx, 0, &s, &c));
    assert_int_equal(feed(&rx, &r, 4, 2, 8, 10), 0); /* 4, 5: held, gap [1, 4) */
    assert_int_equal(mold_rx_held(&rx), 2);
    assert_int_equal(rx.gaps, 1);
    assert_int_equal(rx.held_peak_bytes, 2 * (MOLD_RX_BLOCK_HDR + 8));
    assert_true(mold_rx_want(&rx, 20, &s, &c));
    assert_int_equal(s, 1);
    assert_int_equal(c, 3);
    assert_false(mold_rx_want(&rx, 119, &s, &c)); /* rate limit */
    assert_true(mold_rx_want(&rx, 120, &s, &c));
    assert_int_equal(feed(&rx, &r, 2, 1, 8, 30), 0); /* 2: held, gap [1, 2) and [3, 4) */
    assert_true(mold_rx_want(&rx, 220, &s, &c));
    assert_int_equal(s, 1);
    assert_int_equal(c, 1);
    assert_int_equal(feed(&rx, &r, 1, 3, 8, 40), 5); /* 1 .. 3 (2 is a duplicate), then 4, 5 */
    expect_seqs(&r, 1, 6);
    assert_int_equal(mold_rx_next(&rx), 6);
    assert_int_equal(mold_rx_held(&rx), 0);
    assert_false(mold_rx_want(&rx, 10000, &s, &c));
    assert_int_equal(mold_rx_tick(&rx, 100000, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(r.nl, 0);
    assert_int_equal(rx.messages, 5);
    assert_int_equal(rx.duplicates, 1);
    assert_int_equal(rx.recovered, 3); /* 2, 1, 3 arrived after 4 */
    assert_int_equal(rx.gaps, 1);
    assert_int_equal(rx.packets, 3);
    assert_int_equal(rx.requests, 3);
    /* Duplicates of delivered messages. */
    assert_int_equal(feed(&rx, &r, 3, 3, 8, 50), 0);
    assert_int_equal(rx.duplicates, 4);
    assert_int_equal(feed(&rx, &r, 5, 3, 8, 60), 2); /* 5 dup, 6 and 7 new */
    assert_int_equal(rx.duplicates, 5);
    expect_seqs(&r, 1, 8);
    mold_rx_fini(&rx);
    mold_rx_fini(&rx); /* twice is harmless */
    mem_snapshot_t snap;
    mem_snapshot(&snap);
    assert_int_equal(snap.tag[MEM_TAG_INGEST].live, 0);
}

static void test_mold_rx_wants_every_gap(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 4096, .gap_timeout_ns = 100000, .rerequest_ns = 100};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    uint64_t ws[4];
    uint16_t wc[4];
    assert_int_equal(mold_rx_wants(&rx, 0, ws, wc, 4), 0); /* no gap */
    assert_int_equal(feed(&rx, &r, 3, 1, 8, 10), 0);       /* 3 held: [1, 3) */
    assert_int_equal(feed(&rx, &r, 6, 2, 8, 10), 0);       /* 6, 7 held: [4, 6) */
    assert_int_equal(feed(&rx, &r, 10, 1, 8, 10), 0);      /* 10 held: [8, 10) */
    assert_int_equal(mold_rx_wants(&rx, 20, ws, wc, 4), 3);
    assert_int_equal(ws[0], 1);
    assert_int_equal(wc[0], 2);
    assert_int_equal(ws[1], 4);
    assert_int_equal(wc[1], 2);
    assert_int_equal(ws[2], 8);
    assert_int_equal(wc[2], 2);
    assert_int_equal(mold_rx_wants(&rx, 119, ws, wc, 4), 0); /* rate limit */
    assert_int_equal(mold_rx_wants(&rx, 120, ws, wc, 2), 2); /* max 2: the oldest two */
    assert_int_equal(ws[1], 4);
    assert_int_equal(feed(&rx, &r, 1, 2, 8, 130), 3); /* 1, 2, then the held 3 */
    assert_int_equal(mold_rx_wants(&rx, 220, ws, wc, 4), 2);
    assert_int_equal(ws[0], 4);
    assert_int_equal(ws[1], 8);
    assert_int_equal(rx.requests, 7);
    expect_seqs(&r, 1, 4);
    mold_rx_fini(&rx);
}

static void test_mold_rx_heartbeat_end_and_timeouts(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 4096, .gap_timeout_ns = 10, .rerequest_ns = 0};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(feed(&rx, &r, 1, 0, 0, 0), 0); /* heartbeat, nothing missing */
    assert_int_equal(rx.gaps, 0);
    assert_int_equal(feed(&rx, &r, 1, 2, 4, 0), 2);
    assert_int_equal(feed(&rx, &r, 6, 0, 0, 100), 0); /* heartbeat: 3, 4, 5 were sent */
    assert_int_equal(rx.heartbeats, 2);
    assert_int_equal(rx.gaps, 1);
    uint64_t s;
    uint16_t c;
    assert_true(mold_rx_want(&rx, 100, &s, &c));
    assert_int_equal(s, 3);
    assert_int_equal(c, 3);
    assert_true(mold_rx_want(&rx, 100, &s, &c));      /* rerequest_ns 0: no limit */
    assert_int_equal(feed(&rx, &r, 8, 0, 0, 105), 0); /* the tail gap grows, same age */
    assert_int_equal(rx.gaps, 1);
    assert_int_equal(mold_rx_tick(&rx, 109, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(r.nl, 0);
    assert_int_equal(mold_rx_tick(&rx, 110, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(r.nl, 1);
    assert_int_equal(r.lost_from[0], 3);
    assert_int_equal(r.lost_count[0], 5);
    assert_int_equal(mold_rx_next(&rx), 8);
    /* Two gaps of different ages: each is lost at its own time. */
    assert_int_equal(feed(&rx, &r, 10, 1, 4, 200), 0); /* gap [8, 10) seen at 200 */
    assert_int_equal(feed(&rx, &r, 13, 1, 4, 205), 0); /* gap [11, 13) seen at 205 */
    assert_int_equal(rx.gaps, 3);
    assert_int_equal(mold_rx_tick(&rx, 209, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(mold_rx_tick(&rx, 210, rec_deliver, rec_lost, &r), 1); /* 10 */
    assert_int_equal(r.nl, 2);
    assert_int_equal(r.lost_from[1], 8);
    assert_int_equal(r.lost_count[1], 2);
    assert_true(mold_rx_want(&rx, 210, &s, &c));
    assert_int_equal(s, 11);
    assert_int_equal(c, 2);
    assert_int_equal(mold_rx_tick(&rx, 214, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(mold_rx_tick(&rx, 215, rec_deliver, rec_lost, &r), 1); /* 13 */
    assert_int_equal(r.lost_from[2], 11);
    assert_int_equal(r.lost_count[2], 2);
    /* A gap split by a retransmission keeps its age in both parts, not the age of a newer gap. */
    assert_int_equal(feed(&rx, &r, 20, 1, 4, 300), 0); /* [14, 20) at 300 */
    assert_int_equal(feed(&rx, &r, 23, 1, 4, 303), 0); /* [21, 23) at 303 */
    assert_int_equal(feed(&rx, &r, 16, 1, 4, 305), 0); /* [14, 16) and [17, 20), still 300 */
    assert_int_equal(rx.gaps, 5);
    assert_int_equal(rx.recovered, 1);
    assert_int_equal(mold_rx_tick(&rx, 309, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(mold_rx_tick(&rx, 310, rec_deliver, rec_lost, &r), 2); /* 16, 20 */
    assert_int_equal(r.nl, 5);
    assert_int_equal(r.lost_from[3], 14);
    assert_int_equal(r.lost_count[3], 2);
    assert_int_equal(r.lost_from[4], 17);
    assert_int_equal(r.lost_count[4], 3);
    assert_int_equal(mold_rx_tick(&rx, 312, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(mold_rx_tick(&rx, 313, rec_deliver, rec_lost, &r), 1); /* 23 */
    assert_int_equal(r.lost_from[5], 21);
    assert_int_equal(r.lost_count[5], 2);
    assert_int_equal(rx.lost_gaps, 6);
    assert_int_equal(rx.lost_messages, 5 + 2 + 2 + 2 + 3 + 2);
    /* End of session: counted, delivers nothing, a gap it reveals is a gap. */
    uint8_t eos[20];
    mold_header_t h;
    assert_int_equal(mold_put_end(eos, sizeof eos, "S", 24), 20);
    assert_int_equal(mold_parse(eos, 20, &h, NULL, 0), 0);
    assert_int_equal(mold_rx_packet(&rx, &h, eos, 20, 400, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(rx.end_of_session, 1);
    assert_int_equal(rx.gaps, 5);
    assert_int_equal(mold_put_end(eos, sizeof eos, "S", 26), 20);
    assert_int_equal(mold_parse(eos, 20, &h, NULL, 0), 0);
    assert_int_equal(mold_rx_packet(&rx, &h, eos, 20, 401, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(rx.end_of_session, 2);
    assert_int_equal(rx.gaps, 6);
    assert_true(mold_rx_want(&rx, 401, &s, &c));
    assert_int_equal(s, 24);
    assert_int_equal(c, 2);
    const uint64_t want[] = {1, 2, 10, 13, 16, 20, 23};
    assert_int_equal(r.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(r.seq[i], want[i]);
    assert_int_equal(rx.messages, 7);
    mold_rx_fini(&rx);
}

static void test_mold_rx_set_next_and_session(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    mold_rx_cfg_t cfg = {.store_bytes = 4096, .gap_timeout_ns = 10, .session = "S "};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(feed(&rx, &r, 5, 3, 4, 0), 0); /* 5 6 7 held */
    mold_rx_set_next(&rx, 6);                       /* 1..5 came over TCP */
    assert_int_equal(rx.duplicates, 1);             /* held 5 */
    assert_int_equal(mold_rx_next(&rx), 6);
    uint64_t s;
    uint16_t c;
    assert_false(mold_rx_want(&rx, 0, &s, &c)); /* 6 is ready, not missing */
    assert_int_equal(mold_rx_tick(&rx, 1000, rec_deliver, rec_lost, &r), 2);
    expect_seqs(&r, 6, 8);
    assert_int_equal(r.nl, 0);
    mold_rx_set_next(&rx, 3); /* backwards: nothing */
    assert_int_equal(mold_rx_next(&rx), 8);
    mold_rx_set_next(&rx, 12); /* past everything known */
    assert_int_equal(rx.known_end, 12);
    assert_int_equal(feed(&rx, &r, 11, 2, 4, 1001), 1); /* 11 dup, 12 */
    assert_int_equal(rx.gaps, 1);
    /* Another session is ignored. */
    uint8_t hb[20];
    assert_int_equal(mold_put_heartbeat(hb, sizeof hb, "T", 100), 20);
    mold_header_t h;
    assert_int_equal(mold_parse(hb, 20, &h, NULL, 0), 0);
    assert_int_equal(mold_rx_packet(&rx, &h, hb, 20, 1002, rec_deliver, rec_lost, &r), 0);
    assert_int_equal(rx.other_session, 1);
    assert_int_equal(rx.heartbeats, 0);
    assert_int_equal(rx.known_end, 13);
    mold_rx_fini(&rx);
    /* Bad configurations. */
    cfg.session = "ABCDEFGHIJK";
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), -EINVAL);
    cfg.session = NULL;
    cfg.store_bytes = (size_t)UINT32_MAX + 1;
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), -EINVAL);
    assert_int_equal(mold_rx_init(&rx, NULL, 1), -EINVAL);
    mold_rx_fini(&rx);
}

static void test_mold_rx_sequence_overflow_rejected(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 256, .gap_timeout_ns = 10};
    assert_int_equal(mold_rx_init(&rx, &cfg, UINT64_MAX - 2), 0);
    assert_int_equal(feed(&rx, &r, UINT64_MAX - 1, 2, 4, 0), 0); /* last seq would be 2^64 */
    assert_int_equal(rx.rejected, 1);
    assert_int_equal(feed(&rx, &r, UINT64_MAX - 2, 2, 4, 0), 2);
    assert_true(mold_rx_next(&rx) == UINT64_MAX);
    mold_rx_fini(&rx);
}

/* Store full: the index holds 4 messages (88 / 22); the 5th forces the first gap lost. */
static void test_mold_rx_store_full(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 88, .gap_timeout_ns = 1000000};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(rx.idx_cap, 4);
    for (uint64_t s = 3; s <= 6; s++)
        assert_int_equal(feed(&rx, &r, s, 1, 10, 0), 0);
    assert_int_equal(rx.held_bytes, 80);
    assert_int_equal(feed(&rx, &r, 7, 1, 10, 1), 5); /* lost [1, 3), then 3..7 */
    expect_seqs(&r, 3, 8);
    assert_int_equal(r.nl, 1);
    assert_int_equal(r.lost_from[0], 1);
    assert_int_equal(r.lost_count[0], 2);
    assert_int_equal(rx.store_full, 1);
    assert_int_equal(rx.held_peak_bytes, 80);
    /* Full again, and the new message falls inside the first gap: only what is below it is lost. */
    r.n = 0;
    for (uint64_t s = 12; s <= 15; s++)
        assert_int_equal(feed(&rx, &r, s, 1, 10, 2), 0);
    assert_int_equal(feed(&rx, &r, 9, 1, 10, 3), 1); /* lost [8, 9), 9 delivered */
    assert_int_equal(r.lost_from[1], 8);
    assert_int_equal(r.lost_count[1], 1);
    assert_int_equal(mold_rx_next(&rx), 10);
    assert_int_equal(mold_rx_held(&rx), 4);
    assert_int_equal(rx.store_full, 2);
    /* Bytes rather than index slots: 40-byte messages take 50; the second does not fit. */
    mold_rx_fini(&rx);
    r = (rec_t){0};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(feed(&rx, &r, 3, 1, 40, 0), 0);
    assert_int_equal(feed(&rx, &r, 5, 1, 40, 0), 1); /* lost [1, 3), 3 out; 5 is then held */
    assert_int_equal(r.lost_count[0], 2);
    assert_int_equal(mold_rx_held(&rx), 1);
    assert_int_equal(rx.store_full, 1);
    /* A message larger than the whole store: every gap below it is given up. */
    assert_int_equal(feed(&rx, &r, 7, 1, 100, 0), 2); /* lost [4, 5), 5; lost [6, 7), 7 */
    assert_int_equal(r.nl, 3);
    assert_int_equal(r.lost_from[1], 4);
    assert_int_equal(r.lost_from[2], 6);
    assert_int_equal(r.lost_count[1], 1);
    assert_int_equal(r.lost_count[2], 1);
    assert_int_equal(rx.store_full, 2); /* counted once per message */
    assert_int_equal(r.n, 3);
    assert_int_equal(r.seq[0], 3);
    assert_int_equal(r.seq[1], 5);
    assert_int_equal(r.seq[2], 7);
    assert_int_equal(mold_rx_held(&rx), 0);
    mold_rx_fini(&rx);
}

/* Compaction: delivered blocks in the middle of the arena are reclaimed, held ones keep their
 * bytes. Store 200 bytes, 9 index slots, 20-byte blocks. */
static void test_mold_rx_compaction(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 200, .gap_timeout_ns = 1000000};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(rx.idx_cap, 9);
    assert_int_equal(feed(&rx, &r, 3, 2, 10, 0), 0);  /* 3 4 at 0, 20 */
    assert_int_equal(feed(&rx, &r, 7, 5, 10, 0), 0);  /* 7..11 at 40..120 */
    assert_int_equal(feed(&rx, &r, 1, 2, 10, 0), 4);  /* 1 2 3 4: 3 4 dead, head 140 */
    assert_int_equal(feed(&rx, &r, 12, 3, 10, 0), 0); /* 12 13 14: head 200 */
    assert_int_equal(rx.head, 200);
    assert_int_equal(rx.held_bytes, 160);
    assert_int_equal(feed(&rx, &r, 15, 1, 10, 0), 0); /* compacts (40 dead >= 26), then holds */
    assert_int_equal(rx.head, 180);
    assert_int_equal(rx.store_full, 0);
    assert_int_equal(mold_rx_held(&rx), 9);
    assert_int_equal(feed(&rx, &r, 5, 2, 10, 0), 11); /* 5..15, bytes checked */
    expect_seqs(&r, 1, 16);
    assert_int_equal(rx.head, 0); /* rewound */
    assert_int_equal(r.nl, 0);
    mold_rx_fini(&rx);
}

static void test_mold_rx_store_zero(void **state)
{
    (void)state;
    mold_rx_t rx;
    rec_t r = {0};
    const mold_rx_cfg_t cfg = {.store_bytes = 0, .gap_timeout_ns = 1000000};
    assert_int_equal(mold_rx_init(&rx, &cfg, 1), 0);
    assert_int_equal(feed(&rx, &r, 3, 2, 10, 0), 2); /* nothing can wait: [1, 3) lost at once */
    assert_int_equal(r.lost_from[0], 1);
    assert_int_equal(r.lost_count[0], 2);
    assert_int_equal(rx.store_full, 1);
    expect_seqs(&r, 3, 5);
    mold_rx_fini(&rx);
}

/* ---- mold_rx against a naive model ---------------------------------------------------- */

typedef struct sim_cfg {
    uint64_t seed;
    size_t store_bytes;
    unsigned drop, dup, reorder, hb, rdrop, set_next; /* per mille */
    unsigned reorder_steps, rtt_min, rtt_max;         /* in steps of STEP_NS */
    bool retrans, end_with_eos, expect_no_loss, expect_exact_loss, expect_store_full;
    uint64_t timeout_ns, rerequest_ns;
} sim_cfg_t;

enum { STEP_NS = 10000, MAX_PER_PACKET = 16, MAX_LEN = 40, HEAP_CAP = 1 << 16 };
enum { EV_DATA, EV_HB, EV_EOS };

typedef struct sim_ev {
    uint64_t t, ord, seq;
    uint32_t count;
    uint8_t kind;
} sim_ev_t;

typedef struct sim {
    uint64_t n; /* messages 1..n */
    uint64_t rng;
    uint64_t cursor; /* the model's next: delivered, lost or passed below it */
    uint8_t *got;    /* arrived (held or delivered) */
    uint8_t *sent;   /* copies of the original scheduled to arrive */
    uint64_t delivered, lost_calls, lost_msgs, passed;
    uint64_t dup, recovered, gaps, nke, fed_packets, fed_msgs, fed_hb, fed_eos;
    uint64_t *lost_from, *lost_count;
    size_t lost_cap;
    sim_ev_t *heap;
    size_t heap_n;
    uint64_t ord;
} sim_t;

static uint64_t rnd(sim_t *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool chance(sim_t *s, unsigned per_mille)
{
    return rnd(s) % 1000 < per_mille;
}

static uint16_t msg_len(uint64_t seq)
{
    uint64_t z = seq * 0x9e3779b97f4a7c15ull;
    return (uint16_t)(1 + (z >> 40) % MAX_LEN);
}

static bool ev_less(const sim_ev_t *a, const sim_ev_t *b)
{
    return a->t < b->t || (a->t == b->t && a->ord < b->ord);
}

static void heap_push(sim_t *s, uint64_t t, uint8_t kind, uint64_t seq, uint32_t count)
{
    assert_true(s->heap_n < HEAP_CAP);
    size_t i = s->heap_n++;
    s->heap[i] = (sim_ev_t){.t = t, .ord = s->ord++, .seq = seq, .count = count, .kind = kind};
    while (i > 0 && ev_less(&s->heap[i], &s->heap[(i - 1) / 2])) {
        const sim_ev_t tmp = s->heap[i];
        s->heap[i] = s->heap[(i - 1) / 2];
        s->heap[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static sim_ev_t heap_pop(sim_t *s)
{
    const sim_ev_t top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t m = i;
        const size_t l = 2 * i + 1, r = l + 1;
        if (l < s->heap_n && ev_less(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->heap_n && ev_less(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        const sim_ev_t tmp = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = tmp;
        i = m;
    }
    return top;
}

static void sim_deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    sim_t *s = ctx;
    if (seq != s->cursor)
        fail_msg("delivered %llu, expected %llu", (unsigned long long)seq,
                 (unsigned long long)s->cursor);
    if (!s->got[seq])
        fail_msg("delivered %llu, which never arrived", (unsigned long long)seq);
    if (len != msg_len(seq))
        fail_msg("message %llu has %u bytes, sent %u", (unsigned long long)seq, len, msg_len(seq));
    for (size_t j = 0; j < len; j++)
        if (msg[j] != msg_byte(seq, j))
            fail_msg("message %llu byte %zu differs", (unsigned long long)seq, j);
    s->cursor++;
    s->delivered++;
}

static void sim_lost(void *ctx, uint64_t from, uint64_t count)
{
    sim_t *s = ctx;
    if (from != s->cursor || count == 0 || from + count > s->n + 1)
        fail_msg("lost [%llu, +%llu), expected from %llu", (unsigned long long)from,
                 (unsigned long long)count, (unsigned long long)s->cursor);
    for (uint64_t q = from; q < from + count; q++)
        if (s->got[q])
            fail_msg("%llu reported lost but it arrived", (unsigned long long)q);
    if (s->lost_calls < s->lost_cap) {
        s->lost_from[s->lost_calls] = from;
        s->lost_count[s->lost_calls] = count;
    }
    s->lost_calls++;
    s->lost_msgs += count;
    s->cursor += count;
}

static bool present(const sim_t *s, uint64_t x)
{
    return x < s->cursor || s->got[x];
}

/* The model's view of a packet, before mold_rx sees it. */
static void model_reveal(sim_t *s, uint64_t upto)
{
    if (upto > s->nke && present(s, s->nke - 1))
        s->gaps++;
    if (upto > s->nke)
        s->nke = upto;
}

static void model_message(sim_t *s, uint64_t seq)
{
    s->fed_msgs++;
    if (seq < s->cursor || s->got[seq]) {
        s->dup++;
        return;
    }
    if (seq < s->nke)
        s->recovered++;
    else
        model_reveal(s, seq);
    s->got[seq] = 1;
    if (s->nke <= seq)
        s->nke = seq + 1;
}

static void sim_feed(sim_t *s, mold_rx_t *rx, const sim_ev_t *e, uint64_t now)
{
    uint8_t buf[20 + MAX_PER_PACKET * (2 + MAX_LEN)], m[MAX_LEN];
    size_t n;
    if (e->kind == EV_DATA) {
        mold_builder_t b;
        mold_begin(&b, buf, sizeof buf, "SIM", e->seq);
        for (uint64_t q = e->seq; q < e->seq + e->count; q++) {
            msg_fill(m, q, msg_len(q));
            assert_true(mold_add(&b, m, msg_len(q)));
        }
        n = mold_finish(&b);
    } else if (e->kind == EV_HB) {
        n = mold_put_heartbeat(buf, sizeof buf, "SIM", e->seq);
    } else {
        n = mold_put_end(buf, sizeof buf, "SIM", e->seq);
    }
    mold_header_t h;
    assert_int_equal(mold_parse(buf, n, &h, NULL, 0), 0);
    if (e->kind == EV_DATA) {
        s->fed_packets++;
        for (uint64_t q = e->seq; q < e->seq + e->count; q++)
            model_message(s, q);
    } else {
        if (e->kind == EV_HB)
            s->fed_hb++;
        else
            s->fed_eos++;
        model_reveal(s, e->seq);
    }
    mold_rx_packet(rx, &h, buf, n, now, sim_deliver, sim_lost, s);
}

static void sim_set_next(sim_t *s, mold_rx_t *rx, uint64_t to)
{
    if (to > s->n + 1)
        to = s->n + 1;
    if (to <= s->cursor)
        return;
    for (uint64_t q = s->cursor; q < to; q++) {
        if (s->got[q])
            s->dup++; /* held copy dropped */
        else
            s->got[q] = 1; /* the other source brought it */
    }
    s->passed += to - s->cursor;
    s->cursor = to;
    if (s->nke < to)
        s->nke = to;
    mold_rx_set_next(rx, to);
}

static void run_sim(const sim_cfg_t *c)
{
    sim_t s = {0};
    s.n = small_run() ? 20000 : 100000;
    s.rng = c->seed;
    s.cursor = 1;
    s.nke = 1;
    s.got = calloc(s.n + 2, 1);
    s.sent = calloc(s.n + 2, 1);
    s.lost_cap = s.n;
    s.lost_from = calloc(s.lost_cap, sizeof *s.lost_from);
    s.lost_count = calloc(s.lost_cap, sizeof *s.lost_count);
    s.heap = calloc(HEAP_CAP, sizeof *s.heap);
    assert_true(s.got && s.sent && s.lost_from && s.lost_count && s.heap);
    s.got[0] = 1;

    mold_rx_t rx;
    const mold_rx_cfg_t rcfg = {.store_bytes = c->store_bytes,
                                .gap_timeout_ns = c->timeout_ns,
                                .rerequest_ns = c->rerequest_ns,
                                .session = "SIM"};
    assert_int_equal(mold_rx_init(&rx, &rcfg, 1), 0);

    malloc_count_t before;
    malloc_count_get(&before);
    uint64_t next_send = 1, step = 0, requests = 0;
    const uint64_t max_steps = s.n + 4 * (c->timeout_ns / STEP_NS) + 100000;
    while (next_send <= s.n || s.heap_n > 0 || s.cursor <= s.n) {
        assert_true(++step < max_steps);
        const uint64_t now = step * STEP_NS;
        if (next_send <= s.n) { /* the publisher sends one packet per step */
            uint64_t k = 1 + rnd(&s) % MAX_PER_PACKET;
            if (k > s.n + 1 - next_send)
                k = s.n + 1 - next_send;
            const int copies = chance(&s, c->drop) ? 0 : chance(&s, c->dup) ? 2 : 1;
            for (int i = 0; i < copies; i++) {
                const uint64_t delay = chance(&s, c->reorder) ? 1 + rnd(&s) % c->reorder_steps : 0;
                heap_push(&s, now + delay * STEP_NS, EV_DATA, next_send, (uint32_t)k);
                for (uint64_t q = next_send; q < next_send + k; q++)
                    s.sent[q] = 1;
            }
            next_send += k;
            if (chance(&s, c->hb)) {
                const uint64_t delay = chance(&s, c->reorder) ? 1 + rnd(&s) % c->reorder_steps : 0;
                heap_push(&s, now + delay * STEP_NS, EV_HB, next_send, 0);
            }
        } else if (step % 100 == 0) { /* idle: heartbeats (or end of session) every 100 steps */
            heap_push(&s, now, c->end_with_eos ? EV_EOS : EV_HB, s.n + 1, 0);
        }
        while (s.heap_n > 0 && s.heap[0].t <= now) {
            const sim_ev_t e = heap_pop(&s);
            sim_feed(&s, &rx, &e, now);
        }
        if (chance(&s, c->set_next))
            sim_set_next(&s, &rx, s.cursor + rnd(&s) % 20);
        mold_rx_tick(&rx, now, sim_deliver, sim_lost, &s);
        uint64_t rs;
        uint16_t rc;
        if (mold_rx_want(&rx, now, &rs, &rc)) {
            requests++;
            assert_true(rs == s.cursor && rc >= 1);
            assert_false(present(&s, rs));
            if (c->retrans) { /* the publisher answers up to 64 messages, 16 per packet */
                const uint64_t end = rs + (rc < 64 ? rc : 64);
                for (uint64_t q = rs; q < end && q <= s.n; q += MAX_PER_PACKET) {
                    uint64_t k = end - q < MAX_PER_PACKET ? end - q : MAX_PER_PACKET;
                    if (k > s.n + 1 - q)
                        k = s.n + 1 - q;
                    if (chance(&s, c->rdrop))
                        continue;
                    const uint64_t rtt = c->rtt_min + rnd(&s) % (c->rtt_max - c->rtt_min + 1);
                    heap_push(&s, now + rtt * STEP_NS, EV_DATA, q, (uint32_t)k);
                }
            }
        }
    }
    assert_int_equal(malloc_count_allocs_since(&before), 0);

    /* The stream: every message delivered, lost or passed, exactly once, in order. */
    assert_int_equal(s.cursor, s.n + 1);
    assert_int_equal(s.delivered + s.lost_msgs + s.passed, s.n);
    assert_int_equal(mold_rx_next(&rx), s.n + 1);
    assert_int_equal(mold_rx_held(&rx), 0);
    assert_int_equal(rx.held_bytes, 0);
    /* Counters against the model. */
    assert_int_equal(rx.messages, s.delivered);
    assert_int_equal(rx.lost_gaps, s.lost_calls);
    assert_int_equal(rx.lost_messages, s.lost_msgs);
    assert_int_equal(rx.duplicates, s.dup);
    assert_int_equal(rx.recovered, s.recovered);
    assert_int_equal(rx.gaps, s.gaps);
    assert_int_equal(rx.packets, s.fed_packets + s.fed_hb + s.fed_eos);
    assert_int_equal(rx.heartbeats, s.fed_hb);
    assert_int_equal(rx.end_of_session, s.fed_eos);
    assert_int_equal(rx.requests, requests);
    assert_int_equal(rx.other_session, 0);
    assert_true(rx.held_peak_bytes <= c->store_bytes);
    assert_int_equal(s.fed_msgs, rx.messages + rx.duplicates); /* nothing held now */
    if (c->expect_no_loss) {
        assert_int_equal(s.lost_msgs, 0);
        assert_true(rx.recovered > 0 || c->drop == 0);
    }
    if (c->expect_exact_loss) { /* lost = the maximal runs of messages never sent */
        size_t k = 0;
        for (uint64_t q = 1; q <= s.n;) {
            if (s.sent[q]) {
                q++;
                continue;
            }
            uint64_t e = q;
            while (e <= s.n && !s.sent[e])
                e++;
            assert_true(k < s.lost_calls);
            assert_int_equal(s.lost_from[k], q);
            assert_int_equal(s.lost_count[k], e - q);
            k++;
            q = e;
        }
        assert_int_equal(k, s.lost_calls);
        assert_true(k > 0);
    }
    if (c->expect_store_full)
        assert_true(rx.store_full > 0 && s.lost_calls > 0);
    else
        assert_int_equal(rx.store_full, 0);
    if (getenv("MOLD_SIM_PRINT"))
        print_message("sim seed %llu: n %llu delivered %llu lost %llu/%llu passed %llu dup %llu "
                      "recovered %llu gaps %llu store_full %llu requests %llu peak %llu packets "
                      "%llu steps %llu\n",
                      (unsigned long long)c->seed, (unsigned long long)s.n,
                      (unsigned long long)s.delivered, (unsigned long long)s.lost_calls,
                      (unsigned long long)s.lost_msgs, (unsigned long long)s.passed,
                      (unsigned long long)s.dup, (unsigned long long)s.recovered,
                      (unsigned long long)s.gaps, (unsigned long long)rx.store_full,
                      (unsigned long long)requests, (unsigned long long)rx.held_peak_bytes,
                      (unsigned long long)s.fed_packets, (unsigned long long)step);
    mold_rx_fini(&rx);
    free(s.got);
    free(s.sent);
    free(s.lost_from);
    free(s.lost_count);
    free(s.heap);
}

/* Reordering and duplicates only: everything arrives, nothing is lost. */
static void test_mold_rx_model_reorder(void **state)
{
    (void)state;
    const sim_cfg_t c = {.seed = 1,
                         .store_bytes = 1 << 20,
                         .dup = 100,
                         .reorder = 200,
                         .reorder_steps = 30,
                         .hb = 50,
                         .timeout_ns = 100 * STEP_NS,
                         .rerequest_ns = 5 * STEP_NS,
                         .expect_no_loss = true};
    run_sim(&c);
}

/* Drops recovered by re-requests that always arrive within the timeout. */
static void test_mold_rx_model_recovery(void **state)
{
    (void)state;
    const sim_cfg_t c = {.seed = 2,
                         .store_bytes = 1 << 20,
                         .drop = 30,
                         .dup = 20,
                         .reorder = 50,
                         .reorder_steps = 5,
                         .hb = 20,
                         .retrans = true,
                         .rtt_min = 2,
                         .rtt_max = 8,
                         .timeout_ns = 2000 * STEP_NS,
                         .rerequest_ns = 1 * STEP_NS,
                         .expect_no_loss = true};
    run_sim(&c);
}

/* Drops, in order, nothing re-sent: lost ranges are exactly the runs never sent. */
static void test_mold_rx_model_exact_loss(void **state)
{
    (void)state;
    const sim_cfg_t c = {.seed = 3,
                         .store_bytes = 1 << 20,
                         .drop = 50,
                         .timeout_ns = 50 * STEP_NS,
                         .rerequest_ns = 10 * STEP_NS,
                         .end_with_eos = true,
                         .expect_exact_loss = true};
    run_sim(&c);
}

/* Everything at once: drops, duplicates, reordering, lossy slow re-requests, heartbeats out of
 * order, a TCP source passing the receiver, gaps timing out. */
static void test_mold_rx_model_chaos(void **state)
{
    (void)state;
    for (uint64_t seed = 10; seed < 13; seed++) {
        const sim_cfg_t c = {.seed = seed,
                             .store_bytes = 64 << 10,
                             .drop = 40,
                             .dup = 40,
                             .reorder = 100,
                             .reorder_steps = 40,
                             .hb = 30,
                             .rdrop = 300,
                             .set_next = 2,
                             .retrans = true,
                             .rtt_min = 1,
                             .rtt_max = 60,
                             .timeout_ns = 40 * STEP_NS,
                             .rerequest_ns = 3 * STEP_NS};
        run_sim(&c);
    }
}

/* A tiny store: gaps are given up as soon as it fills, delivery goes on. */
static void test_mold_rx_model_tiny_store(void **state)
{
    (void)state;
    for (uint64_t seed = 20; seed < 22; seed++) {
        const sim_cfg_t c = {.seed = seed,
                             .store_bytes = 300,
                             .drop = 40,
                             .dup = 40,
                             .reorder = 100,
                             .reorder_steps = 10,
                             .hb = 30,
                             .rdrop = 200,
                             .retrans = true,
                             .rtt_min = 1,
                             .rtt_max = 30,
                             .timeout_ns = 1000 * STEP_NS,
                             .rerequest_ns = 2 * STEP_NS,
                             .expect_store_full = true};
        run_sim(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mold_parse_packet, reset_counters),
        cmocka_unit_test_setup(test_mold_parse_heartbeat_end_request, reset_counters),
        cmocka_unit_test_setup(test_mold_builders_match_literal_bytes, reset_counters),
        cmocka_unit_test_setup(test_mold_builder_fills_to_cap, reset_counters),
        cmocka_unit_test_setup(test_mold_parse_malformed, reset_counters),
        cmocka_unit_test_setup(test_mold_request_malformed, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_gap_and_retransmission, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_wants_every_gap, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_heartbeat_end_and_timeouts, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_set_next_and_session, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_sequence_overflow_rejected, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_store_full, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_compaction, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_store_zero, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_model_reorder, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_model_recovery, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_model_exact_loss, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_model_chaos, reset_counters),
        cmocka_unit_test_setup(test_mold_rx_model_tiny_store, reset_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
