/*
 * fuzz_mold: libFuzzer target for MoldUDP64 framing and mold_rx. The input is a few parameter
 * bytes, then records: a 2-byte big-endian length L, a control byte, and L bytes taken as one
 * datagram (L = 0: the control byte asks for mold_rx_set_next instead). Control bits 0-2 advance
 * the simulated clock, bit 3 rewrites the datagram's sequence number to next - 4 + (ctl >> 4) so
 * that packets land near the receiver's window. Every datagram goes through mold_parse; a good one
 * must iterate to exactly its count of non-empty blocks that tile it, and rebuild byte for byte
 * with the builder (or mold_put_heartbeat / mold_put_end); a bad one must say "byte offset N:"
 * with N inside it, and mold_iter over it must stay inside it. mold_request_parse must agree with
 * mold_put_request. Good datagrams feed one mold_rx with a tiny store (0..255 bytes), then tick
 * and want. Invariants, checked with abort(): deliveries and losses come in sequence order,
 * contiguous from the receiver's start, each message once; each delivered message carries the
 * bytes of the first copy that arrived while it was still wanted (a shadow table); every message
 * fed is delivered, a duplicate or held; held bytes stay within the store; a re-request names the
 * next sequence number. Build (ASan and UBSan included):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE tests/fuzz/fuzz_mold.c
 *     net/mold.c mem/[a-z]*.c -lmimalloc -lm -lpthread -o fuzz_mold
 */
#include "net/mold.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

enum { SHADOW = 1 << 12 };

typedef struct fz {
    uint64_t cursor; /* next sequence number the callbacks expect */
    uint64_t delivered, lost;
    /* shadow: the first copy of each sequence number that arrived while wanted */
    uint64_t seq[SHADOW], hash[SHADOW];
    uint8_t used[SHADOW];
    size_t shadow_n;
    bool shadow_full;
} fz_t;

static fz_t F;
static uint8_t dgram[MOLD_MAX_DATAGRAM + 64];
static uint8_t rebuilt[MOLD_MAX_DATAGRAM + 64];

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ n;
}

static size_t slot_of(uint64_t seq)
{
    return (size_t)((seq * 0x9e3779b97f4a7c15ull) >> 52) & (SHADOW - 1);
}

/* The slot holding seq, or the empty slot where it would go; SHADOW if the table is full. */
static size_t shadow_find(uint64_t seq)
{
    size_t i = slot_of(seq);
    for (size_t k = 0; k < SHADOW; k++, i = (i + 1) & (SHADOW - 1))
        if (!F.used[i] || F.seq[i] == seq)
            return i;
    return SHADOW;
}

static void shadow_note(uint64_t seq, const uint8_t *msg, uint16_t len)
{
    if (F.shadow_full)
        return;
    if (F.shadow_n >= SHADOW * 3 / 4) {
        F.shadow_full = true; /* stop checking contents; the rest still holds */
        return;
    }
    const size_t i = shadow_find(seq);
    if (F.used[i])
        return; /* an earlier copy is the one that counts */
    F.used[i] = 1;
    F.seq[i] = seq;
    F.hash[i] = hash_bytes(msg, len);
    F.shadow_n++;
}

static void on_deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    (void)ctx;
    CHECK(seq == F.cursor);
    CHECK(len >= 1);
    if (!F.shadow_full) {
        const size_t i = shadow_find(seq);
        CHECK(i < SHADOW && F.used[i] && F.hash[i] == hash_bytes(msg, len));
    }
    F.cursor++;
    F.delivered++;
}

static void on_lost(void *ctx, uint64_t from, uint64_t count)
{
    (void)ctx;
    CHECK(from == F.cursor && count >= 1);
    CHECK(F.cursor + count > F.cursor); /* no wrap */
    F.cursor += count;
    F.lost += count;
}

static void check_framing(const uint8_t *p, size_t n, int rc, const mold_header_t *h,
                          const char *err)
{
    mold_iter_t it;
    const uint8_t *m;
    uint16_t len;
    mold_iter_init(&it, p, n);
    if (rc != 0) {
        CHECK(strncmp(err, "byte offset ", 12) == 0);
        const unsigned long off = strtoul(err + 12, NULL, 10);
        CHECK(off <= n);
        while (mold_next(&it, &m, &len)) /* must stay inside, whatever it finds */
            CHECK(m >= p + MOLD_HEADER_LEN && m + len <= p + n);
        return;
    }
    size_t r;
    if (h->count == 0 || h->count == MOLD_END_OF_SESSION) {
        CHECK(n == MOLD_HEADER_LEN);
        CHECK(!mold_next(&it, &m, &len));
        r = h->count == 0 ? mold_put_heartbeat(rebuilt, sizeof rebuilt, h->session, h->seq)
                          : mold_put_end(rebuilt, sizeof rebuilt, h->session, h->seq);
    } else {
        mold_builder_t b;
        mold_begin(&b, rebuilt, n, h->session, h->seq);
        const uint8_t *at = p + MOLD_HEADER_LEN;
        unsigned k = 0;
        while (mold_next(&it, &m, &len)) {
            CHECK(m == at + 2 && len >= 1 && m + len <= p + n);
            CHECK(mold_add(&b, m, len));
            at = m + len;
            k++;
        }
        CHECK(k == h->count && at == p + n);
        r = mold_finish(&b);
    }
    CHECK(r == n && memcmp(rebuilt, p, n) == 0);
}

static void check_request(const uint8_t *p, size_t n)
{
    char session[11], err[128];
    uint64_t seq;
    uint16_t count;
    if (mold_request_parse(p, n, session, &seq, &count, err, sizeof err) == 0) {
        CHECK(n == MOLD_REQUEST_LEN && count >= 1);
        CHECK(mold_put_request(rebuilt, sizeof rebuilt, session, seq, count) == n);
        CHECK(memcmp(rebuilt, p, n) == 0);
    } else {
        CHECK(strncmp(err, "byte offset ", 12) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    memset(&F, 0, sizeof F);
    const uint64_t start = 1 + data[3];
    const mold_rx_cfg_t cfg = {
        .store_bytes = data[0], .gap_timeout_ns = data[1] & 31u, .rerequest_ns = data[2] & 7u};
    mold_rx_t rx;
    CHECK(mold_rx_init(&rx, &cfg, start) == 0);
    F.cursor = start;
    uint64_t now = 0, fed = 0;
    size_t off = 4;
    while (size - off >= 3) {
        const size_t len = (size_t)data[off] << 8 | data[off + 1];
        const uint8_t ctl = data[off + 2];
        off += 3;
        now += ctl & 7u;
        if (len == 0) {
            const uint64_t to = mold_rx_next(&rx) + (ctl >> 4);
            const uint64_t dup0 = rx.duplicates, held0 = mold_rx_held(&rx);
            mold_rx_set_next(&rx, to);
            if (to > F.cursor) {
                CHECK(rx.duplicates - dup0 == held0 - mold_rx_held(&rx));
                F.cursor = to; /* the other source delivered up to here */
            }
            CHECK(mold_rx_next(&rx) == F.cursor);
        } else {
            const size_t n = len < size - off ? len : size - off;
            memcpy(dgram, data + off, n);
            off += n;
            if ((ctl & 8u) && n >= MOLD_HEADER_LEN) {
                const uint64_t seq = mold_rx_next(&rx) - 4 + (ctl >> 4);
                for (int i = 0; i < 8; i++)
                    dgram[10 + i] = (uint8_t)(seq >> (56 - 8 * i));
            }
            mold_header_t h;
            char err[160] = "";
            const int rc = mold_parse(dgram, n, &h, err, sizeof err);
            CHECK(rc == 0 || rc == -1);
            check_framing(dgram, n, rc, &h, err);
            check_request(dgram, n);
            if (rc == 0) {
                const bool data_pkt = h.count != 0 && h.count != MOLD_END_OF_SESSION;
                const bool ok = !data_pkt || h.seq <= UINT64_MAX - h.count;
                if (data_pkt && ok) {
                    mold_iter_t it;
                    const uint8_t *m;
                    uint16_t ml;
                    mold_iter_init(&it, dgram, n);
                    for (uint64_t q = h.seq; mold_next(&it, &m, &ml); q++) {
                        if (q >= F.cursor)
                            shadow_note(q, m, ml);
                        fed++;
                    }
                }
                const uint64_t rej0 = rx.rejected;
                mold_rx_packet(&rx, &h, dgram, n, now, on_deliver, on_lost, NULL);
                CHECK((rx.rejected - rej0 == 1) == !ok);
            }
        }
        mold_rx_tick(&rx, now, on_deliver, on_lost, NULL);
        uint64_t ws;
        uint16_t wc;
        if (mold_rx_want(&rx, now, &ws, &wc))
            CHECK(ws == mold_rx_next(&rx) && wc >= 1);
        CHECK(mold_rx_next(&rx) == F.cursor);
        CHECK(rx.known_end >= rx.next);
        CHECK(rx.messages == F.delivered && rx.lost_messages == F.lost);
        CHECK(rx.messages + rx.duplicates + mold_rx_held(&rx) == fed);
        CHECK(rx.held_bytes <= rx.store_cap && rx.held_peak_bytes <= rx.store_cap);
        CHECK(rx.head <= rx.store_cap && rx.held_bytes <= rx.head);
        CHECK(mold_rx_held(&rx) <= rx.idx_cap);
        CHECK(rx.lost_gaps <= rx.lost_messages);
    }
    mold_rx_fini(&rx);
    return 0;
}
