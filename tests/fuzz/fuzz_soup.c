/*
 * fuzz_soup: libFuzzer target for the SoupBinTCP framing. The first input byte picks max_packet
 * (0..199 as is, so that the limit check is hit by short inputs; 200..255 the real
 * SOUP_MAX_PACKET); the rest is parsed as a stream of packets the way a receiver does, skipping
 * one byte after a bad packet so that parsing goes on through the whole input. Invariants,
 * checked with abort(): consumed <= bytes left and <= max_packet, a packet is its 3-byte header
 * plus len payload bytes at buf + 3 with a known type, soup_put_packet rebuilds exactly its bytes,
 * its shorter prefixes say "need more", an error has a message, and an incomplete tail is shorter
 * than its own length prefix says and than the limit. Login requests and login accepted are
 * parsed; whatever they yield the builders write back and the parsers read back equal. Every
 * round moves forward, so the loop ends. Build (ASan and UBSan included):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE tests/fuzz/fuzz_soup.c
 *     net/soup.c -o fuzz_soup
 */
#include "net/soup.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_login(const soup_packet_t *p)
{
    soup_login_t l;
    char err[128] = "";
    if (soup_login_parse(p, &l, err, sizeof err) < 0) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(strlen(l.username) <= 6 && strlen(l.password) <= 10 && strlen(l.session) <= 10);
    uint8_t out[3 + SOUP_LOGIN_REQUEST_LEN];
    CHECK(soup_put_login(out, sizeof out, l.username, l.password, l.session, l.seq) == sizeof out);
    soup_packet_t q;
    CHECK(soup_parse(out, sizeof out, sizeof out, &q, NULL, 0) == (int)sizeof out);
    soup_login_t again;
    CHECK(soup_login_parse(&q, &again, NULL, 0) == 0);
    CHECK(strcmp(again.username, l.username) == 0 && strcmp(again.password, l.password) == 0 &&
          strcmp(again.session, l.session) == 0 && again.seq == l.seq);
}

static void check_accepted(const soup_packet_t *p)
{
    char session[11], again[11];
    uint64_t seq, seq2;
    char err[128] = "";
    if (soup_accepted_parse(p, session, &seq, err, sizeof err) < 0) {
        CHECK(err[0] != '\0');
        return;
    }
    uint8_t out[3 + SOUP_LOGIN_ACCEPTED_LEN];
    CHECK(soup_put_accepted(out, sizeof out, session, seq) == sizeof out);
    soup_packet_t q;
    CHECK(soup_parse(out, sizeof out, sizeof out, &q, NULL, 0) == (int)sizeof out);
    CHECK(soup_accepted_parse(&q, again, &seq2, NULL, 0) == 0);
    CHECK(strcmp(again, session) == 0 && seq2 == seq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const size_t max = data[0] < 200 ? data[0] : SOUP_MAX_PACKET;
    const uint8_t *buf = data + 1;
    const size_t len = size - 1;
    static uint8_t out[SOUP_MAX_PACKET];
    size_t off = 0, rounds = 0;
    while (off < len) {
        CHECK(++rounds <= len);
        const uint8_t *b = buf + off;
        const size_t rem = len - off;
        soup_packet_t p;
        char err[128] = "";
        const int r = soup_parse(b, rem, max, &p, err, sizeof err);
        if (r > 0) {
            const size_t k = (size_t)r;
            CHECK(k <= rem && k <= max && k >= 3);
            CHECK(k == 3u + p.len && p.payload == b + 3 && p.type == b[2]);
            CHECK(((size_t)b[0] << 8 | b[1]) == 1u + p.len);
            CHECK(strcmp(soup_type_name(p.type), "unknown") != 0);
            CHECK(soup_put_packet(out, sizeof out, p.type, p.payload, p.len) == k);
            CHECK(memcmp(out, b, k) == 0);
            CHECK(soup_parse(b, k - 1, max, &p, NULL, 0) == 0);
            CHECK(soup_parse(b, 2, max, &p, NULL, 0) == 0);
            CHECK(soup_parse(b, k, max, &p, NULL, 0) == r);
            if (p.type == SOUP_LOGIN_REQUEST)
                check_login(&p);
            else if (p.type == SOUP_LOGIN_ACCEPTED)
                check_accepted(&p);
            off += k;
        } else if (r == 0) {
            /* An incomplete packet: what its prefix says is more than is here, within the limit. */
            CHECK(rem < 2 || rem < max);
            if (rem >= 2)
                CHECK(((size_t)b[0] << 8 | b[1]) + 2 > rem);
            if (rem >= 3)
                CHECK(strcmp(soup_type_name(b[2]), "unknown") != 0);
            return 0;
        } else {
            CHECK(r == -1 && err[0] != '\0' && rem >= 2);
            CHECK(soup_parse(b, rem, max, &p, NULL, 0) == -1);
            off += 1; /* resync by one byte, so the rest of the input is exercised too */
        }
    }
    return 0;
}
