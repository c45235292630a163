/*
 * test_soup: SoupBinTCP 3.0 framing against hand-built bytes written out from the spec (every
 * packet type, and the builders must produce exactly those bytes), builder -> parser round trips,
 * every way a packet can be bad (with its message), the login field rules (padding, digits,
 * printable ASCII, UINT64_MAX), partial packets (every prefix says "need more"; a stream split at
 * every offset and fed one byte at a time gives the same packets), a long random stream cut at
 * random points checked against the list it was generated from, builder refusals (too-long or
 * non-printable fields, too-small cap, writing nothing), and that parsing allocates nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "net/soup.h"
#include "tests/support/malloc_count.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/valgrind.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Parse buf[0..n) as exactly one whole packet. */
static soup_packet_t parse_one(const uint8_t *buf, size_t n)
{
    soup_packet_t p;
    char err[128] = "";
    assert_int_equal(soup_parse(buf, n, SOUP_MAX_PACKET, &p, err, sizeof err), (int)n);
    assert_string_equal(err, "");
    assert_ptr_equal(p.payload, buf + 3);
    assert_int_equal(p.len, n - 3);
    return p;
}

/* Parse buf[0..n) expecting -1 and exactly the message want. */
static void expect_bad(const uint8_t *buf, size_t n, size_t max, const char *want)
{
    soup_packet_t p;
    char err[128] = "";
    assert_int_equal(soup_parse(buf, n, max, &p, err, sizeof err), -1);
    assert_string_equal(err, want);
}

/* ---- hand-built packets ----------------------------------------------------------------- */

static void test_soup_hand_built_login_request(void **state)
{
    (void)state;
    /* length 47 = 'L' + 46; username "bob" padded right to 6; password "secret" padded right to
     * 10; session "SESS12" padded left to 10; sequence number 427 padded left to 20. */
    static const uint8_t pkt[] = {0x00, 0x2f, 'L', 'b', 'o', 'b', ' ', ' ', ' ', 's', 'e', 'c', 'r',
                                  'e',  't',  ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'S', 'E', 'S',
                                  'S',  '1',  '2', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
                                  ' ',  ' ',  ' ', ' ', ' ', ' ', ' ', '4', '2', '7'};
    assert_int_equal(sizeof pkt, 49);
    const soup_packet_t p = parse_one(pkt, sizeof pkt);
    assert_int_equal(p.type, SOUP_LOGIN_REQUEST);
    assert_int_equal(p.len, SOUP_LOGIN_REQUEST_LEN);
    soup_login_t l;
    char err[128] = "";
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_string_equal(l.username, "bob");
    assert_string_equal(l.password, "secret");
    assert_string_equal(l.session, "SESS12");
    assert_int_equal(l.seq, 427);
    uint8_t out[64];
    memset(out, 0xee, sizeof out);
    assert_int_equal(soup_put_login(out, sizeof out, "bob", "secret", "SESS12", 427), 49);
    assert_memory_equal(out, pkt, 49);
    assert_int_equal(out[49], 0xee);

    /* Blank session, sequence number 0: "tell me where to start" in the current session. */
    static const uint8_t blank[] = {
        0x00, 0x2f, 'L', 'u', 's', 'e', 'r', '1', '2', 'p', 'w', ' ', ' ', ' ', ' ', ' ', ' ',
        ' ',  ' ',  ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
        ' ',  ' ',  ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', '0'};
    const soup_packet_t q = parse_one(blank, sizeof blank);
    assert_int_equal(soup_login_parse(&q, &l, err, sizeof err), 0);
    assert_string_equal(l.username, "user12");
    assert_string_equal(l.password, "pw");
    assert_string_equal(l.session, "");
    assert_int_equal(l.seq, 0);
    assert_int_equal(soup_put_login(out, sizeof out, "user12", "pw", "", 0), 49);
    assert_memory_equal(out, blank, 49);
    assert_int_equal(soup_put_login(out, sizeof out, "user12", "pw", NULL, 0), 49);
    assert_memory_equal(out, blank, 49);
}

static void test_soup_hand_built_login_accepted(void **state)
{
    (void)state;
    /* length 31 = 'A' + 30; session "0000000042" fills its 10; sequence number
     * 18446744073709551615 (UINT64_MAX) fills its 20. */
    static const uint8_t full[] = {0x00, 0x1f, 'A', '0', '0', '0', '0', '0', '0', '0', '0',
                                   '4',  '2',  '1', '8', '4', '4', '6', '7', '4', '4', '0',
                                   '7',  '3',  '7', '0', '9', '5', '5', '1', '6', '1', '5'};
    assert_int_equal(sizeof full, 33);
    soup_packet_t p = parse_one(full, sizeof full);
    assert_int_equal(p.type, SOUP_LOGIN_ACCEPTED);
    char session[11];
    uint64_t seq = 0;
    char err[128] = "";
    assert_int_equal(soup_accepted_parse(&p, session, &seq, err, sizeof err), 0);
    assert_string_equal(session, "0000000042");
    assert_true(seq == UINT64_MAX);
    uint8_t out[40];
    assert_int_equal(soup_put_accepted(out, sizeof out, "0000000042", UINT64_MAX), 33);
    assert_memory_equal(out, full, 33);

    /* session "T1" padded left, next sequence number 1 padded left. */
    static const uint8_t small[] = {0x00, 0x1f, 'A', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
                                    'T',  '1',  ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
                                    ' ',  ' ',  ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', '1'};
    p = parse_one(small, sizeof small);
    assert_int_equal(soup_accepted_parse(&p, session, &seq, err, sizeof err), 0);
    assert_string_equal(session, "T1");
    assert_int_equal(seq, 1);
    assert_int_equal(soup_put_accepted(out, sizeof out, "T1", 1), 33);
    assert_memory_equal(out, small, 33);
}

static void test_soup_hand_built_other_types(void **state)
{
    (void)state;
    uint8_t out[64];
    static const uint8_t rej_a[] = {0x00, 0x02, 'J', 'A'}, rej_s[] = {0x00, 0x02, 'J', 'S'};
    soup_packet_t p = parse_one(rej_a, sizeof rej_a);
    assert_int_equal(p.type, SOUP_LOGIN_REJECTED);
    assert_int_equal(p.payload[0], 'A');
    assert_int_equal(soup_put_rejected(out, sizeof out, SOUP_REJECT_NOT_AUTHORIZED), 4);
    assert_memory_equal(out, rej_a, 4);
    p = parse_one(rej_s, sizeof rej_s);
    assert_int_equal(p.payload[0], 'S');
    assert_int_equal(soup_put_rejected(out, sizeof out, SOUP_REJECT_NO_SESSION), 4);
    assert_memory_equal(out, rej_s, 4);

    /* Sequenced data carrying an ITCH 5.0 System Event ('S', 12 bytes: locate 0, tracking 0,
     * timestamp 0x0000_0102_0304, event 'O'), no ITCH length prefix inside. */
    static const uint8_t seq[] = {0x00, 0x0d, 'S',  'S',  0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 'O'};
    p = parse_one(seq, sizeof seq);
    assert_int_equal(p.type, SOUP_SEQUENCED);
    assert_int_equal(p.len, 12);
    assert_int_equal(p.payload[0], 'S');
    assert_int_equal(p.payload[11], 'O');
    assert_int_equal(soup_put_sequenced(out, sizeof out, seq + 3, 12), sizeof seq);
    assert_memory_equal(out, seq, sizeof seq);

    static const uint8_t seq0[] = {0x00, 0x01, 'S'};
    p = parse_one(seq0, sizeof seq0);
    assert_int_equal(p.len, 0);
    assert_int_equal(soup_put_sequenced(out, sizeof out, NULL, 0), 3);
    assert_memory_equal(out, seq0, 3);

    static const uint8_t dbg[] = {0x00, 0x06, '+', 'h', 'e', 'l', 'l', 'o'};
    p = parse_one(dbg, sizeof dbg);
    assert_int_equal(p.type, SOUP_DEBUG);
    assert_memory_equal(p.payload, "hello", 5);
    assert_int_equal(soup_put_packet(out, sizeof out, '+', (const uint8_t *)"hello", 5), 8);
    assert_memory_equal(out, dbg, 8);

    static const uint8_t uns[] = {0x00, 0x04, 'U', 0x00, 0xff, 0x0a};
    p = parse_one(uns, sizeof uns);
    assert_int_equal(p.type, SOUP_UNSEQUENCED);
    assert_int_equal(p.len, 3);
    assert_int_equal(p.payload[1], 0xff);

    const uint8_t empties[] = {'H', 'Z', 'R', 'O'};
    for (size_t i = 0; i < sizeof empties; i++) {
        const uint8_t pkt[] = {0x00, 0x01, empties[i]};
        p = parse_one(pkt, 3);
        assert_int_equal(p.type, empties[i]);
        assert_int_equal(p.len, 0);
        assert_int_equal(soup_put_empty(out, sizeof out, empties[i]), 3);
        assert_memory_equal(out, pkt, 3);
    }

    /* A 65535-byte body (the largest length prefix): 'S' + 65534 bytes. */
    static uint8_t big[SOUP_MAX_PACKET];
    memset(big, 0x5a, sizeof big);
    big[0] = 0xff;
    big[1] = 0xff;
    big[2] = 'S';
    p = parse_one(big, sizeof big);
    assert_int_equal(p.len, 65534);
    static uint8_t big2[SOUP_MAX_PACKET];
    assert_int_equal(soup_put_sequenced(big2, sizeof big2, big + 3, 65534), SOUP_MAX_PACKET);
    assert_memory_equal(big2, big, sizeof big);
}

static void test_soup_type_names(void **state)
{
    (void)state;
    static const struct {
        uint8_t t;
        const char *name;
    } names[] = {{'+', "debug"},          {'A', "login accepted"},   {'J', "login rejected"},
                 {'S', "sequenced data"}, {'H', "server heartbeat"}, {'Z', "end of session"},
                 {'L', "login request"},  {'U', "unsequenced data"}, {'R', "client heartbeat"},
                 {'O', "logout request"}};
    unsigned known = 0;
    for (unsigned t = 0; t < 256; t++) {
        const char *want = "unknown";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].t == t)
                want = names[i].name;
        assert_string_equal(soup_type_name((uint8_t)t), want);
        known += strcmp(want, "unknown") != 0;
    }
    assert_int_equal(known, 10);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void rand_string(char *s, size_t maxlen, bool spaces_inside)
{
    const size_t k = rnd_below(maxlen + 1);
    for (size_t i = 0; i < k; i++)
        s[i] = (char)(0x21 + rnd_below(0x7e - 0x21 + 1));
    if (spaces_inside && k > 2)
        s[1 + rnd_below(k - 2)] = ' ';
    s[k] = '\0';
}

static uint64_t rand_seq(void)
{
    switch (rnd_below(4)) {
    case 0:
        return rnd_below(3);
    case 1:
        return rnd() >> rnd_below(64);
    case 2:
        return UINT64_MAX - rnd_below(3);
    default:
        return rnd();
    }
}

static void test_soup_round_trip_builders(void **state)
{
    (void)state;
    rng_state = 1;
    uint8_t buf[64];
    char err[128];
    for (int it = 0; it < 20000; it++) {
        char user[7], pass[11], sess[11];
        rand_string(user, 6, true); /* username and password keep inner spaces */
        rand_string(pass, 10, true);
        rand_string(sess, 10, true);
        const uint64_t seq = rand_seq();
        const size_t n = soup_put_login(buf, sizeof buf, user, pass, sess, seq);
        assert_int_equal(n, 49);
        soup_packet_t p = parse_one(buf, n);
        soup_login_t l;
        assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
        assert_string_equal(l.username, user);
        assert_string_equal(l.password, pass);
        assert_string_equal(l.session, sess);
        assert_true(l.seq == seq);

        assert_int_equal(soup_put_accepted(buf, sizeof buf, sess, seq), 33);
        p = parse_one(buf, 33);
        char s2[11];
        uint64_t q2 = 1;
        assert_int_equal(soup_accepted_parse(&p, s2, &q2, err, sizeof err), 0);
        assert_string_equal(s2, sess);
        assert_true(q2 == seq);

        const char reason = (char)rnd();
        assert_int_equal(soup_put_rejected(buf, sizeof buf, reason), 4);
        p = parse_one(buf, 4);
        assert_int_equal(p.type, 'J');
        assert_int_equal(p.payload[0], (uint8_t)reason);

        uint8_t msg[50];
        const size_t ml = rnd_below(sizeof msg + 1);
        for (size_t i = 0; i < ml; i++)
            msg[i] = (uint8_t)rnd();
        assert_int_equal(soup_put_sequenced(buf, sizeof buf, msg, ml), 3 + ml);
        p = parse_one(buf, 3 + ml);
        assert_int_equal(p.type, 'S');
        if (ml)
            assert_memory_equal(p.payload, msg, ml);
    }
}

/* ---- bad packets ------------------------------------------------------------------------ */

static void test_soup_bad_packets(void **state)
{
    (void)state;
    static const uint8_t zero[] = {0x00, 0x00};
    expect_bad(zero, 2, SOUP_MAX_PACKET, "length 0");
    static const uint8_t zero3[] = {0x00, 0x00, 'S', 'x'};
    expect_bad(zero3, 4, SOUP_MAX_PACKET, "length 0");

    static const uint8_t unk[] = {0x00, 0x01, 0x3f};
    expect_bad(unk, 3, SOUP_MAX_PACKET, "unknown packet type 0x3f");
    static const uint8_t unk0[] = {0x00, 0x05, 0x00};
    expect_bad(unk0, 3, SOUP_MAX_PACKET, "unknown packet type 0x00");
    static const uint8_t lower[] = {0x00, 0x01, 's'};
    expect_bad(lower, 3, SOUP_MAX_PACKET, "unknown packet type 0x73");

    /* The spec's example messages, each detected from the bytes present so far. */
    static const uint8_t login12[] = {0x00, 0x0d, 'L'};
    expect_bad(login12, 3, SOUP_MAX_PACKET, "login request payload is 12 bytes, expected 46");
    static const uint8_t over[] = {0x23, 0x26}; /* 8998 + 2 = 9000 */
    expect_bad(over, 2, 4096, "packet of 9000 bytes over the limit of 4096");

    /* Limit boundaries: a 64-byte packet under a limit of 64 passes, 65 does not. */
    uint8_t b[70] = {0x00, 62, 'S'};
    assert_int_equal(soup_parse(b, 64, 64, &(soup_packet_t){0}, NULL, 0), 64);
    b[1] = 63;
    expect_bad(b, 2, 64, "packet of 65 bytes over the limit of 64");
    expect_bad(b, 65, 64, "packet of 65 bytes over the limit of 64");
    /* A limit under 3 refuses everything; the length check comes before the type check. */
    static const uint8_t hb[] = {0x00, 0x01, 'H'};
    expect_bad(hb, 3, 2, "packet of 3 bytes over the limit of 2");
    static const uint8_t unk_over[] = {0x10, 0x00, 0x3f};
    expect_bad(unk_over, 3, 4096, "packet of 4098 bytes over the limit of 4096");

    /* Every fixed-size type with one byte more and one less (where possible). */
    static const struct {
        uint8_t t;
        unsigned len;
        const char *name;
    } fixed[] = {{'A', 30, "login accepted"}, {'J', 1, "login rejected"},
                 {'L', 46, "login request"},  {'H', 0, "server heartbeat"},
                 {'Z', 0, "end of session"},  {'R', 0, "client heartbeat"},
                 {'O', 0, "logout request"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        for (int d = -1; d <= 1; d += 2) {
            if (d < 0 && fixed[i].len == 0)
                continue;
            const unsigned pl = fixed[i].len + (unsigned)d;
            const uint8_t pkt[3] = {0, (uint8_t)(pl + 1), fixed[i].t};
            char want[128];
            snprintf(want, sizeof want, "%s payload is %u bytes, expected %u", fixed[i].name, pl,
                     fixed[i].len);
            expect_bad(pkt, 3, SOUP_MAX_PACKET, want);
        }
    }

    /* Every type byte: the ten known ones frame, the other 246 are refused. */
    unsigned ok = 0;
    for (unsigned t = 0; t < 256; t++) {
        uint8_t pkt[3 + 46] = {0};
        size_t pl = t == 'A' ? 30 : t == 'J' ? 1 : t == 'L' ? 46 : 0;
        pkt[1] = (uint8_t)(pl + 1);
        pkt[2] = (uint8_t)t;
        soup_packet_t p;
        char err[64] = "";
        const int r = soup_parse(pkt, 3 + pl, SOUP_MAX_PACKET, &p, err, sizeof err);
        if (strcmp(soup_type_name((uint8_t)t), "unknown") == 0) {
            char want[64];
            snprintf(want, sizeof want, "unknown packet type 0x%02x", t);
            assert_int_equal(r, -1);
            assert_string_equal(err, want);
        } else {
            assert_int_equal(r, (int)(3 + pl));
            ok++;
        }
    }
    assert_int_equal(ok, 10);

    /* err may be NULL; a short err buffer is truncated and terminated. */
    soup_packet_t p;
    assert_int_equal(soup_parse(unk, 3, SOUP_MAX_PACKET, &p, NULL, 0), -1);
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_int_equal(soup_parse(unk, 3, SOUP_MAX_PACKET, &p, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "unknown");
}

/* A login request payload from its four raw fields (exact widths). */
static soup_packet_t login_raw(uint8_t pkt[49], const char *u6, const char *p10, const char *s10,
                               const char *q20)
{
    pkt[0] = 0;
    pkt[1] = 47;
    pkt[2] = 'L';
    memcpy(pkt + 3, u6, 6);
    memcpy(pkt + 9, p10, 10);
    memcpy(pkt + 19, s10, 10);
    memcpy(pkt + 29, q20, 20);
    return parse_one(pkt, 49);
}

static void expect_login(const soup_packet_t *p, int rc, const char *want_err)
{
    soup_login_t l;
    char err[128] = "";
    assert_int_equal(soup_login_parse(p, &l, err, sizeof err), rc);
    assert_string_equal(err, want_err);
}

static void test_soup_login_fields(void **state)
{
    (void)state;
    uint8_t pkt[49];
    soup_login_t l;
    char err[128];
    const char *u = "ab    ", *pw = "pw        ", *s = "      SESS";
    soup_packet_t p;

    /* Sequence numbers: spaces and one run of digits. */
    p = login_raw(pkt, u, pw, s, "                    ");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_int_equal(l.seq, 0);
    p = login_raw(pkt, u, pw, s, "00000000000000000007");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_int_equal(l.seq, 7);
    p = login_raw(pkt, u, pw, s, "12                  "); /* left-justified is tolerated */
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_int_equal(l.seq, 12);
    p = login_raw(pkt, u, pw, s, "18446744073709551615");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_true(l.seq == UINT64_MAX);
    p = login_raw(pkt, u, pw, s, "18446744073709551616");
    expect_login(&p, -1, "sequence number over 18446744073709551615");
    p = login_raw(pkt, u, pw, s, "99999999999999999999");
    expect_login(&p, -1, "sequence number over 18446744073709551615");
    p = login_raw(pkt, u, pw, s, "                 12a");
    expect_login(&p, -1, "sequence number byte 19 is 0x61, not a digit or space");
    p = login_raw(pkt, u, pw, s, "               1 2  ");
    expect_login(&p, -1, "sequence number byte 17 is 0x32, not a digit or space");
    p = login_raw(pkt, u, pw, s, "                  -1");
    expect_login(&p, -1, "sequence number byte 18 is 0x2d, not a digit or space");
    p = login_raw(pkt, u, pw, s, "                 +12");
    expect_login(&p, -1, "sequence number byte 17 is 0x2b, not a digit or space");
    p = login_raw(pkt, u, pw, s, "                  1\t");
    expect_login(&p, -1, "sequence number byte 19 is 0x09, not a digit or space");

    /* Padding: username/password keep leading and inner spaces; the session loses both ends. */
    p = login_raw(pkt, " a b  ", " p w      ", "  S E S   ", "                   5");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_string_equal(l.username, " a b");
    assert_string_equal(l.password, " p w");
    assert_string_equal(l.session, "S E S");
    p = login_raw(pkt, "abcdef", "0123456789", "ABCDEFGHIJ", "                   5");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_string_equal(l.username, "abcdef");
    assert_string_equal(l.password, "0123456789");
    assert_string_equal(l.session, "ABCDEFGHIJ");
    p = login_raw(pkt, "~     ", "          ", "         !", "                   5");
    assert_int_equal(soup_login_parse(&p, &l, err, sizeof err), 0);
    assert_string_equal(l.username, "~");
    assert_string_equal(l.password, "");
    assert_string_equal(l.session, "!");

    /* Bytes outside printable ASCII, in each field. */
    p = login_raw(pkt, "ab\001   ", pw, s, "                   1");
    expect_login(&p, -1, "username byte 2 is 0x01, not printable ASCII");
    p = login_raw(pkt, "\177     ", pw, s, "                   1");
    expect_login(&p, -1, "username byte 0 is 0x7f, not printable ASCII");
    p = login_raw(pkt, "ab    ", "pw\200       ", s, "                   1");
    expect_login(&p, -1, "password byte 2 is 0x80, not printable ASCII");
    p = login_raw(pkt, u, pw, s, "                   1");
    pkt[3 + 6 + 9] = 0; /* a C string cannot carry the NUL: poke it in */
    expect_login(&p, -1, "password byte 9 is 0x00, not printable ASCII");
    p = login_raw(pkt, u, "pw        ", "      SES\377", "                   1");
    expect_login(&p, -1, "session byte 9 is 0xff, not printable ASCII");
    p = login_raw(pkt, u, pw, s, "                   1");
    pkt[3 + 16] = 0;
    expect_login(&p, -1, "session byte 0 is 0x00, not printable ASCII");

    /* Not a login request. */
    static const uint8_t hb[] = {0x00, 0x01, 'R'};
    p = parse_one(hb, 3);
    expect_login(&p, -1,
                 "client heartbeat packet of 0 payload bytes is not a 46-byte login request");
    char sess[11];
    uint64_t seq;
    assert_int_equal(soup_accepted_parse(&p, sess, &seq, err, sizeof err), -1);
    assert_string_equal(
        err, "client heartbeat packet of 0 payload bytes is not a 30-byte login accepted");

    /* Login accepted fields follow the same rules. */
    uint8_t acc[33] = {0, 31, 'A'};
    memcpy(acc + 3, "    ABC   ", 10);
    memcpy(acc + 13, "                 x01", 20);
    p = parse_one(acc, 33);
    assert_int_equal(soup_accepted_parse(&p, sess, &seq, err, sizeof err), -1);
    assert_string_equal(err, "sequence number byte 17 is 0x78, not a digit or space");
    acc[3] = '\n';
    assert_int_equal(soup_accepted_parse(&p, sess, &seq, err, sizeof err), -1);
    assert_string_equal(err, "session byte 0 is 0x0a, not printable ASCII");
    acc[3] = ' ';
    memcpy(acc + 13, "                 001", 20);
    assert_int_equal(soup_accepted_parse(&p, sess, &seq, err, sizeof err), 0);
    assert_string_equal(sess, "ABC");
    assert_int_equal(seq, 1);
}

/* ---- builder refusals ------------------------------------------------------------------- */

static void all_ee(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b[i], 0xee);
}

static void test_soup_builder_refusals(void **state)
{
    (void)state;
    uint8_t out[80];
    memset(out, 0xee, sizeof out);
    /* Too-long fields. */
    assert_int_equal(soup_put_login(out, sizeof out, "abcdefg", "p", "s", 1), 0);
    assert_int_equal(soup_put_login(out, sizeof out, "a", "0123456789A", "s", 1), 0);
    assert_int_equal(soup_put_login(out, sizeof out, "a", "p", "0123456789A", 1), 0);
    assert_int_equal(soup_put_accepted(out, sizeof out, "0123456789A", 1), 0);
    /* Bytes the parser would refuse. */
    assert_int_equal(soup_put_login(out, sizeof out, "a\tb", "p", "s", 1), 0);
    assert_int_equal(soup_put_login(out, sizeof out, "a", "p\177", "s", 1), 0);
    assert_int_equal(soup_put_login(out, sizeof out, "a", "p", "\xc3\xa9", 1), 0);
    assert_int_equal(soup_put_accepted(out, sizeof out, "\x1b", 1), 0);
    all_ee(out, sizeof out);
    /* Exact fit works, one byte less does not (and writes nothing). */
    assert_int_equal(soup_put_login(out, 48, "a", "p", "s", 1), 0);
    assert_int_equal(soup_put_accepted(out, 32, "s", 1), 0);
    assert_int_equal(soup_put_rejected(out, 3, 'A'), 0);
    assert_int_equal(soup_put_sequenced(out, 12, (const uint8_t *)"0123456789", 10), 0);
    assert_int_equal(soup_put_empty(out, 2, 'H'), 0);
    assert_int_equal(soup_put_empty(out, 0, 'H'), 0);
    assert_int_equal(soup_put_packet(out, 7, '+', (const uint8_t *)"hello", 5), 0);
    all_ee(out, sizeof out);
    assert_int_equal(soup_put_login(out, 49, "abcdef", "0123456789", "0123456789", 1), 49);
    assert_int_equal(soup_put_accepted(out, 33, "0123456789", 1), 33);
    assert_int_equal(soup_put_rejected(out, 4, 'A'), 4);
    assert_int_equal(soup_put_sequenced(out, 13, (const uint8_t *)"0123456789", 10), 13);
    assert_int_equal(soup_put_empty(out, 3, 'Z'), 3);
    /* Types a builder does not make that way. */
    memset(out, 0xee, sizeof out);
    assert_int_equal(soup_put_empty(out, sizeof out, 'S'), 0);
    assert_int_equal(soup_put_empty(out, sizeof out, 'L'), 0);
    assert_int_equal(soup_put_empty(out, sizeof out, 'A'), 0);
    assert_int_equal(soup_put_empty(out, sizeof out, 0x3f), 0);
    assert_int_equal(soup_put_packet(out, sizeof out, 0x3f, NULL, 0), 0);
    assert_int_equal(soup_put_packet(out, sizeof out, 'J', (const uint8_t *)"AB", 2), 0);
    assert_int_equal(soup_put_packet(out, sizeof out, 'H', (const uint8_t *)"A", 1), 0);
    all_ee(out, sizeof out);
    /* A message too long for the 2-byte length. */
    static uint8_t big[SOUP_MAX_PACKET + 8];
    assert_int_equal(soup_put_sequenced(big, sizeof big, big, 65535), 0);
    assert_int_equal(soup_put_sequenced(big, sizeof big, big + 3, 65534), SOUP_MAX_PACKET);
    assert_int_equal(soup_put_sequenced(big, SOUP_MAX_PACKET - 1, big + 3, 65534), 0);
}

/* ---- streams ---------------------------------------------------------------------------- */

typedef struct rec {
    size_t off; /* where the packet starts in the stream */
    uint8_t type;
    uint16_t len;
} rec_t;

/* Append one random valid packet (framing only: payload bytes are random) by hand. */
static size_t gen_packet(uint8_t *dst, rec_t *r, size_t off, size_t big_every)
{
    static const uint8_t types[] = {'+', 'A', 'J', 'S', 'H', 'Z', 'L', 'U', 'R', 'O'};
    uint8_t t = rnd_below(3) ? 'S' : types[rnd_below(sizeof types)];
    size_t len;
    switch (t) {
    case 'A':
        len = 30;
        break;
    case 'J':
        len = 1;
        break;
    case 'L':
        len = 46;
        break;
    case 'H':
    case 'Z':
    case 'R':
    case 'O':
        len = 0;
        break;
    default:
        len = big_every && rnd_below(big_every) == 0 ? 65534 - rnd_below(2000) : rnd_below(60);
    }
    dst[0] = (uint8_t)((len + 1) >> 8);
    dst[1] = (uint8_t)((len + 1) & 0xff);
    dst[2] = t;
    for (size_t i = 0; i < len; i++)
        dst[3 + i] = (uint8_t)rnd();
    r->off = off;
    r->type = t;
    r->len = (uint16_t)len;
    return 3 + len;
}

/* A receiver as a socket reader would be: append what arrived, take whole packets, keep the tail
 * at the front. Each packet is checked against the next expected record. */
enum { RX_CHUNK_MAX = 8192 };
typedef struct rx {
    uint8_t buf[SOUP_MAX_PACKET + RX_CHUNK_MAX];
    size_t have, next, max_packet;
    const uint8_t *stream;
    const rec_t *exp;
    size_t nexp;
} rx_t;

static void rx_reset(rx_t *rx, const uint8_t *stream, const rec_t *exp, size_t nexp, size_t max)
{
    rx->have = rx->next = 0;
    rx->stream = stream;
    rx->exp = exp;
    rx->nexp = nexp;
    rx->max_packet = max;
}

static void rx_feed(rx_t *rx, const uint8_t *data, size_t n)
{
    assert_true(n <= RX_CHUNK_MAX);
    memcpy(rx->buf + rx->have, data, n);
    rx->have += n;
    size_t off = 0;
    for (;;) {
        soup_packet_t p;
        char err[128] = "";
        const int r =
            soup_parse(rx->buf + off, rx->have - off, rx->max_packet, &p, err, sizeof err);
        if (r < 0)
            fail_msg("parse error after %zu packets: %s", rx->next, err);
        if (r == 0)
            break;
        assert_true(rx->next < rx->nexp);
        const rec_t *e = &rx->exp[rx->next++];
        assert_int_equal(r, 3 + e->len);
        assert_int_equal(p.type, e->type);
        assert_int_equal(p.len, e->len);
        assert_ptr_equal(p.payload, rx->buf + off + 3);
        if (e->len)
            assert_memory_equal(p.payload, rx->stream + e->off + 3, e->len);
        off += (size_t)r;
    }
    memmove(rx->buf, rx->buf + off, rx->have - off);
    rx->have -= off;
    assert_true(rx->have < rx->max_packet);
}

static void test_soup_partial_packets(void **state)
{
    (void)state;
    rng_state = 7;
    enum { N = 40 };
    static uint8_t stream[N * 64];
    static rec_t exp[N];
    size_t total = 0;
    for (size_t i = 0; i < N; i++)
        total += gen_packet(stream + total, &exp[i], total, 0);
    assert_true(total <= sizeof stream);

    /* Every strict prefix of each packet is "need more". */
    for (size_t i = 0; i < N; i++) {
        const size_t size = 3u + exp[i].len;
        for (size_t m = 0; m < size; m++)
            assert_int_equal(
                soup_parse(stream + exp[i].off, m, SOUP_MAX_PACKET, &(soup_packet_t){0}, NULL, 0),
                0);
    }
    static rx_t rx;
    /* Split at every offset. */
    for (size_t s = 0; s <= total; s++) {
        rx_reset(&rx, stream, exp, N, SOUP_MAX_PACKET);
        rx_feed(&rx, stream, s);
        rx_feed(&rx, stream + s, total - s);
        assert_int_equal(rx.next, N);
        assert_int_equal(rx.have, 0);
    }
    /* One byte at a time. */
    rx_reset(&rx, stream, exp, N, SOUP_MAX_PACKET);
    for (size_t i = 0; i < total; i++)
        rx_feed(&rx, stream + i, 1);
    assert_int_equal(rx.next, N);
    assert_int_equal(rx.have, 0);
    /* Three pieces at random cut points, with a small packet limit (the largest packet is 63). */
    for (int it = 0; it < 2000; it++) {
        size_t a = rnd_below(total + 1), b = rnd_below(total + 1);
        if (a > b) {
            const size_t t = a;
            a = b;
            b = t;
        }
        rx_reset(&rx, stream, exp, N, 63);
        rx_feed(&rx, stream, a);
        rx_feed(&rx, stream + a, b - a);
        rx_feed(&rx, stream + b, total - b);
        assert_int_equal(rx.next, N);
    }
}

static void test_soup_random_stream(void **state)
{
    (void)state;
    rng_state = 42;
    const size_t n = RUNNING_ON_VALGRIND ? 20000 : 200000;
    const size_t cap = n * 70 + 40 * (size_t)SOUP_MAX_PACKET;
    uint8_t *stream = malloc(cap);
    rec_t *exp = malloc(n * sizeof *exp);
    assert_non_null(stream);
    assert_non_null(exp);
    size_t total = 0, nbig = 0;
    for (size_t i = 0; i < n; i++) {
        /* At most 30 big packets, so the stream fits cap. */
        total += gen_packet(stream + total, &exp[i], total, nbig < 30 ? n / 20 : 0);
        nbig += exp[i].len > 60;
    }
    assert_true(total <= cap);
    assert_true(nbig > 0);
    static rx_t rx;
    rx_reset(&rx, stream, exp, n, SOUP_MAX_PACKET);
    size_t off = 0;
    while (off < total) {
        size_t c = rnd_below(4) == 0 ? 1 + rnd_below(8) : 1 + rnd_below(RX_CHUNK_MAX);
        if (c > total - off)
            c = total - off;
        rx_feed(&rx, stream + off, c);
        off += c;
    }
    assert_int_equal(rx.next, n);
    assert_int_equal(rx.have, 0);
    free(stream);
    free(exp);
}

/* More bytes never change a verdict: on random bytes (mostly plausible headers), each prefix
 * length gives 0 until the verdict, then the same verdict (and message) for every longer prefix. */
static void test_soup_verdict_is_stable(void **state)
{
    (void)state;
    rng_state = 3;
    static const uint8_t types[] = {'+', 'A', 'J', 'S', 'H', 'Z', 'L', 'U', 'R', 'O', '?', 0};
    for (int it = 0; it < 5000; it++) {
        uint8_t b[64];
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rnd();
        b[0] = rnd_below(8) ? 0 : b[0];
        b[1] = (uint8_t)rnd_below(64);
        b[2] = types[rnd_below(sizeof types)];
        const size_t max = 1 + rnd_below(80);
        int verdict = 0;
        char first[128] = "";
        for (size_t m = 0; m <= sizeof b; m++) {
            soup_packet_t p;
            char err[128] = "";
            const int r = soup_parse(b, m, max, &p, err, sizeof err);
            if (verdict == 0) {
                verdict = r;
                strcpy(first, err);
                if (r > 0)
                    assert_true((size_t)r <= m && (size_t)r <= max);
            } else {
                assert_int_equal(r, verdict);
                assert_string_equal(err, first);
            }
        }
    }
}

static void test_soup_parse_allocates_nothing(void **state)
{
    (void)state;
    rng_state = 11;
    enum { N = 5000 };
    static uint8_t stream[N * 64];
    static rec_t exp[N];
    size_t total = 0;
    for (size_t i = 0; i < N; i++)
        total += gen_packet(stream + total, &exp[i], total, 0);
    uint8_t login[49], acc[33];
    assert_int_equal(soup_put_login(login, sizeof login, "u", "p", "s", 9), 49);
    assert_int_equal(soup_put_accepted(acc, sizeof acc, "s", 9), 33);
    static const uint8_t bad[] = {0x00, 0x01, 0x3f};

    malloc_count_t before;
    malloc_count_get(&before);
    size_t off = 0, count = 0;
    char err[128];
    soup_packet_t p;
    while (off < total) {
        const int r = soup_parse(stream + off, total - off, SOUP_MAX_PACKET, &p, err, sizeof err);
        if (r <= 0)
            break;
        off += (size_t)r;
        count++;
    }
    soup_login_t l;
    char sess[11];
    uint64_t seq;
    int rc = soup_login_parse(&(soup_packet_t){'L', 46, login + 3}, &l, err, sizeof err);
    rc |= soup_accepted_parse(&(soup_packet_t){'A', 30, acc + 3}, sess, &seq, err, sizeof err);
    const int bad_rc = soup_parse(bad, 3, SOUP_MAX_PACKET, &p, err, sizeof err);
    const uint64_t allocs = malloc_count_allocs_since(&before);
    assert_int_equal(allocs, 0);
    assert_int_equal(count, N);
    assert_int_equal(rc, 0);
    assert_int_equal(bad_rc, -1);
    assert_int_equal(l.seq, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soup_hand_built_login_request),
        cmocka_unit_test(test_soup_hand_built_login_accepted),
        cmocka_unit_test(test_soup_hand_built_other_types),
        cmocka_unit_test(test_soup_type_names),
        cmocka_unit_test(test_soup_round_trip_builders),
        cmocka_unit_test(test_soup_bad_packets),
        cmocka_unit_test(test_soup_login_fields),
        cmocka_unit_test(test_soup_builder_refusals),
        cmocka_unit_test(test_soup_partial_packets),
        cmocka_unit_test(test_soup_random_stream),
        cmocka_unit_test(test_soup_verdict_is_stable),
        cmocka_unit_test(test_soup_parse_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
