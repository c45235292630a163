/*
 * mold: MoldUDP64 framing and one session's receive sequencing (see mold.h for the protocol and
 * the design). The framing functions are pure (any thread; error messages are written with
 * err_set on the error path only). mold_rx owns its arena and sorted index, both allocated in
 * mold_rx_init; after that it only moves bytes inside them. Invariants kept between calls (except
 * right after mold_rx_set_next, until the next packet or tick): every held message has a sequence
 * number in (next, known_end), the index is sorted and free of duplicates, the front of the index
 * is not `next` (it would have been delivered), each index entry's gap_ns is the time the missing
 * messages just before it were first seen missing (when there are any), tail_gap_ns the same for
 * [last held + 1, known_end), and held_bytes is the sum of the live blocks in the arena [0, head).
 */
#include "net/mold.h"

#include "base/byteorder.h"
#include "base/err.h"
#include "mem/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct mold_rx_slot {
    uint64_t seq;
    uint64_t gap_ns; /* when the messages just before this one were first seen missing */
    uint32_t off;    /* of the block (header, then message) in the arena */
    uint16_t len;    /* message bytes */
};

/* The 10-byte session field at f: printable ASCII, copied to out without trailing spaces. */
static int get_session(const uint8_t *f, char out[11], char *err, size_t errlen)
{
    for (size_t i = 0; i < MOLD_SESSION_LEN; i++) {
        if (f[i] < 0x20 || f[i] > 0x7e) {
            err_set(err, errlen, "byte offset %zu: session byte 0x%02x, expected printable ASCII",
                    i, f[i]);
            return -1;
        }
    }
    size_t k = MOLD_SESSION_LEN;
    while (k > 0 && f[k - 1] == ' ')
        k--;
    memcpy(out, f, k);
    out[k] = '\0';
    return 0;
}

/* Write session (NULL = blank) into the 10-byte field f, padded on the right with spaces; false if
 * it is longer than 10 bytes or holds a byte outside printable ASCII. */
static bool put_session(uint8_t *f, const char *session)
{
    size_t k = 0;
    if (session) {
        while (session[k] != '\0') {
            const unsigned char c = (unsigned char)session[k];
            if (k == MOLD_SESSION_LEN || c < 0x20 || c > 0x7e)
                return false;
            k++;
        }
        memcpy(f, session, k);
    }
    memset(f + k, ' ', MOLD_SESSION_LEN - k);
    return true;
}

int mold_parse(const uint8_t *pkt, size_t n, mold_header_t *h, char *err, size_t errlen)
{
    if (n < MOLD_HEADER_LEN) {
        err_set(err, errlen,
                "byte offset %zu: datagram of %zu bytes ends inside the %d-byte header", n, n,
                MOLD_HEADER_LEN);
        return -1;
    }
    if (get_session(pkt, h->session, err, errlen) < 0)
        return -1;
    h->seq = be64_get(pkt + 10);
    h->count = be16_get(pkt + 18);
    if (h->count == 0 || h->count == MOLD_END_OF_SESSION) {
        if (n > MOLD_HEADER_LEN) {
            err_set(err, errlen, "byte offset %d: %s followed by %zu byte%s, expected none",
                    MOLD_HEADER_LEN, h->count == 0 ? "heartbeat" : "end of session",
                    n - MOLD_HEADER_LEN, n - MOLD_HEADER_LEN == 1 ? "" : "s");
            return -1;
        }
        return 0;
    }
    size_t off = MOLD_HEADER_LEN;
    for (unsigned i = 1; i <= h->count; i++) {
        if (n - off < 2) {
            err_set(err, errlen,
                    "byte offset %zu: message %u of %u: %zu byte%s left, expected a 2-byte "
                    "length",
                    off, i, h->count, n - off, n - off == 1 ? "" : "s");
            return -1;
        }
        const size_t len = be16_get(pkt + off);
        if (len == 0) {
            err_set(err, errlen, "byte offset %zu: message %u of %u has length 0", off, i,
                    h->count);
            return -1;
        }
        if (len > n - off - 2) {
            err_set(err, errlen,
                    "byte offset %zu: message %u of %u of length %zu runs past the end of "
                    "the %zu-byte datagram",
                    off, i, h->count, len, n);
            return -1;
        }
        off += 2 + len;
    }
    if (off != n) {
        err_set(err, errlen, "byte offset %zu: %zu trailing byte%s after the last of %u message%s",
                off, n - off, n - off == 1 ? "" : "s", h->count, h->count == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

void mold_iter_init(mold_iter_t *it, const uint8_t *pkt, size_t n)
{
    it->left = 0;
    it->p = it->end = pkt + n;
    if (n < MOLD_HEADER_LEN)
        return;
    const uint16_t count = be16_get(pkt + 18);
    it->p = pkt + MOLD_HEADER_LEN;
    it->left = count == MOLD_END_OF_SESSION ? 0 : count;
}

bool mold_next(mold_iter_t *it, const uint8_t **msg, uint16_t *len)
{
    if (it->left == 0 || it->end - it->p < 2)
        return false;
    const uint16_t l = be16_get(it->p);
    if ((size_t)(it->end - it->p) - 2 < l) {
        it->left = 0;
        return false;
    }
    *msg = it->p + 2;
    *len = l;
    it->p += 2 + (size_t)l;
    it->left--;
    return true;
}

void mold_begin(mold_builder_t *b, uint8_t *buf, size_t cap, const char *session, uint64_t seq)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->count = 0;
    if (cap < MOLD_HEADER_LEN || !put_session(buf, session)) {
        b->cap = 0; /* refuses everything; mold_finish returns 0 */
        return;
    }
    be64_put(buf + 10, seq);
    be16_put(buf + 18, 0);
    b->len = MOLD_HEADER_LEN;
}

bool mold_add(mold_builder_t *b, const uint8_t *msg, uint16_t len)
{
    if (b->len == 0 || len == 0 || b->count >= MOLD_MAX_MESSAGES || b->cap - b->len < 2 ||
        b->cap - b->len - 2 < len)
        return false;
    be16_put(b->buf + b->len, len);
    memcpy(b->buf + b->len + 2, msg, len);
    b->len += 2 + (size_t)len;
    b->count++;
    return true;
}

size_t mold_finish(mold_builder_t *b)
{
    if (b->len == 0)
        return 0;
    be16_put(b->buf + 18, b->count);
    return b->len;
}

static size_t put_header(uint8_t *out, size_t cap, const char *session, uint64_t seq,
                         uint16_t count)
{
    if (cap < MOLD_HEADER_LEN || !put_session(out, session))
        return 0;
    be64_put(out + 10, seq);
    be16_put(out + 18, count);
    return MOLD_HEADER_LEN;
}

size_t mold_put_heartbeat(uint8_t *out, size_t cap, const char *session, uint64_t next_seq)
{
    return put_header(out, cap, session, next_seq, 0);
}

size_t mold_put_end(uint8_t *out, size_t cap, const char *session, uint64_t next_seq)
{
    return put_header(out, cap, session, next_seq, MOLD_END_OF_SESSION);
}

size_t mold_put_request(uint8_t *out, size_t cap, const char *session, uint64_t seq, uint16_t count)
{
    return put_header(out, cap, session, seq, count);
}

int mold_request_parse(const uint8_t *pkt, size_t n, char session[11], uint64_t *seq,
                       uint16_t *count, char *err, size_t errlen)
{
    if (n != MOLD_REQUEST_LEN) {
        err_set(err, errlen, "byte offset %zu: request of %zu bytes, expected %d",
                n < MOLD_REQUEST_LEN ? n : (size_t)MOLD_REQUEST_LEN, n, MOLD_REQUEST_LEN);
        return -1;
    }
    if (get_session(pkt, session, err, errlen) < 0)
        return -1;
    *seq = be64_get(pkt + 10);
    *count = be16_get(pkt + 18);
    if (*count == 0) {
        err_set(err, errlen, "byte offset 18: requested message count 0, expected at least 1");
        return -1;
    }
    return 0;
}

/* ---- mold_rx ------------------------------------------------------------------------- */

int mold_rx_init(mold_rx_t *rx, const mold_rx_cfg_t *cfg, uint64_t next_seq)
{
    memset(rx, 0, sizeof *rx);
    if (!cfg || cfg->store_bytes > UINT32_MAX)
        return -EINVAL;
    if (cfg->session) {
        const size_t k = strlen(cfg->session);
        if (k > MOLD_SESSION_LEN)
            return -EINVAL;
        memcpy(rx->session, cfg->session, k + 1);
        for (size_t j = k; j > 0 && rx->session[j - 1] == ' '; j--)
            rx->session[j - 1] = '\0'; /* compared with the parsed, trimmed session */
        rx->check_session = true;
    }
    rx->next = rx->known_end = next_seq;
    rx->gap_timeout_ns = cfg->gap_timeout_ns;
    rx->rerequest_ns = cfg->rerequest_ns;
    rx->idx_cap = cfg->store_bytes / MOLD_RX_MIN_SLOT;
    if (rx->idx_cap == 0)
        return 0; /* nothing can be held */
    rx->store_cap = cfg->store_bytes;
    rx->store = mem_alloc_prefault(MEM_TAG_INGEST, rx->store_cap, 64); /* RSS flat from the start */
    rx->idx = mem_calloc(MEM_TAG_INGEST, rx->idx_cap, sizeof *rx->idx);
    if (!rx->store || !rx->idx) {
        mold_rx_fini(rx);
        return -ENOMEM;
    }
    return 0;
}

void mold_rx_fini(mold_rx_t *rx)
{
    if (rx->store)
        mem_free(MEM_TAG_INGEST, rx->store, rx->store_cap);
    if (rx->idx)
        mem_free(MEM_TAG_INGEST, rx->idx, rx->idx_cap * sizeof *rx->idx);
    rx->store = NULL;
    rx->idx = NULL;
    rx->store_cap = rx->idx_cap = rx->lo = rx->hi = rx->head = rx->held_bytes = 0;
}

/* First index position in [lo, hi) whose seq is >= seq. */
static size_t lower_bound(const mold_rx_t *rx, uint64_t seq)
{
    size_t a = rx->lo, b = rx->hi;
    while (a < b) {
        const size_t m = a + (b - a) / 2;
        if (rx->idx[m].seq < seq)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

static void pop_front(mold_rx_t *rx)
{
    rx->held_bytes -= MOLD_RX_BLOCK_HDR + (size_t)rx->idx[rx->lo].len;
    if (++rx->lo == rx->hi)
        rx->lo = rx->hi = rx->head = 0; /* nothing held: rewind the arena */
}

/* Deliver held messages while the front one is next. */
static size_t deliver_ready(mold_rx_t *rx, mold_deliver_fn *deliver, void *ctx)
{
    size_t d = 0;
    while (rx->lo < rx->hi && rx->idx[rx->lo].seq == rx->next) {
        const struct mold_rx_slot *e = &rx->idx[rx->lo];
        deliver(ctx, e->seq, rx->store + e->off + MOLD_RX_BLOCK_HDR, e->len);
        rx->next++;
        rx->messages++;
        d++;
        pop_front(rx);
    }
    return d;
}

/* The first gap [*from, *end), first seen missing at *since; false if none. */
static bool first_gap(const mold_rx_t *rx, uint64_t *from, uint64_t *end, uint64_t *since)
{
    if (rx->next >= rx->known_end)
        return false;
    if (rx->lo < rx->hi) {
        if (rx->idx[rx->lo].seq == rx->next)
            return false; /* ready (after mold_rx_set_next), not missing */
        *end = rx->idx[rx->lo].seq;
        *since = rx->idx[rx->lo].gap_ns;
    } else {
        *end = rx->known_end;
        *since = rx->tail_gap_ns;
    }
    *from = rx->next;
    return true;
}

static void declare_lost(mold_rx_t *rx, uint64_t end, mold_lost_fn *lost, void *ctx)
{
    const uint64_t count = end - rx->next;
    if (lost)
        lost(ctx, rx->next, count);
    rx->lost_gaps++;
    rx->lost_messages += count;
    rx->next = end;
}

/* Messages below upto exist: those past known_end were never seen. */
static void reveal(mold_rx_t *rx, uint64_t upto, uint64_t now)
{
    if (upto <= rx->known_end)
        return;
    const uint64_t tail = rx->lo < rx->hi ? rx->idx[rx->hi - 1].seq + 1 : rx->next;
    if (tail == rx->known_end) { /* no missing tail yet: a new gap */
        rx->tail_gap_ns = now;
        rx->gaps++;
    }
    rx->known_end = upto;
}

/* Slide live blocks down over dead ones, in arena order. */
static void compact(mold_rx_t *rx)
{
    size_t r = 0, w = 0;
    while (r < rx->head) {
        uint64_t seq;
        uint16_t len;
        memcpy(&seq, rx->store + r, sizeof seq);
        memcpy(&len, rx->store + r + 8, sizeof len);
        const size_t size = MOLD_RX_BLOCK_HDR + (size_t)len;
        const size_t pos = lower_bound(rx, seq);
        if (pos < rx->hi && rx->idx[pos].seq == seq && rx->idx[pos].off == r) {
            if (w != r)
                memmove(rx->store + w, rx->store + r, size);
            rx->idx[pos].off = (uint32_t)w;
            w += size;
        }
        r += size;
    }
    rx->head = w;
}

/* Copy message seq into the store at index position pos; false if the store is full. */
static bool hold(mold_rx_t *rx, size_t pos, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    const size_t need = MOLD_RX_BLOCK_HDR + (size_t)len;
    if (rx->hi - rx->lo >= rx->idx_cap || rx->held_bytes + need > rx->store_cap)
        return false;
    if (rx->head + need > rx->store_cap) {
        /* Compact only if it reclaims at least 1/8 of the arena, so that compaction moves at most
         * 8 bytes per byte stored; otherwise (over 7/8 held) the store counts as full. */
        if (rx->head - rx->held_bytes < rx->store_cap / 8 + 1)
            return false;
        compact(rx);
    }
    if (rx->hi == rx->idx_cap) { /* slide the index window to the start */
        memmove(rx->idx, rx->idx + rx->lo, (rx->hi - rx->lo) * sizeof *rx->idx);
        pos -= rx->lo;
        rx->hi -= rx->lo;
        rx->lo = 0;
    }
    memmove(rx->idx + pos + 1, rx->idx + pos, (rx->hi - pos) * sizeof *rx->idx);
    rx->hi++;
    struct mold_rx_slot *e = &rx->idx[pos];
    e->seq = seq;
    e->len = len;
    e->off = (uint32_t)rx->head;
    /* The missing messages just before it are part of the gap it lands in. */
    e->gap_ns = pos + 1 < rx->hi ? rx->idx[pos + 1].gap_ns : rx->tail_gap_ns;
    memcpy(rx->store + rx->head, &seq, sizeof seq);
    memcpy(rx->store + rx->head + 8, &len, sizeof len);
    memcpy(rx->store + rx->head + MOLD_RX_BLOCK_HDR, msg, len);
    rx->head += need;
    rx->held_bytes += need;
    if (rx->held_bytes > rx->held_peak_bytes)
        rx->held_peak_bytes = rx->held_bytes;
    return true;
}

static size_t deliver_now(mold_rx_t *rx, uint64_t seq, const uint8_t *msg, uint16_t len,
                          bool was_missing, mold_deliver_fn *deliver, void *ctx)
{
    deliver(ctx, seq, msg, len);
    rx->next = seq + 1;
    rx->messages++;
    if (was_missing)
        rx->recovered++;
    if (rx->known_end < rx->next)
        rx->known_end = rx->next;
    return 1 + deliver_ready(rx, deliver, ctx);
}

static size_t on_message(mold_rx_t *rx, uint64_t seq, const uint8_t *msg, uint16_t len,
                         uint64_t now, mold_deliver_fn *deliver, mold_lost_fn *lost, void *ctx)
{
    if (seq < rx->next) {
        rx->duplicates++;
        return 0;
    }
    const bool was_missing = seq < rx->known_end;
    if (seq == rx->next)
        return deliver_now(rx, seq, msg, len, was_missing, deliver, ctx);
    size_t pos = lower_bound(rx, seq);
    if (pos < rx->hi && rx->idx[pos].seq == seq) {
        rx->duplicates++;
        return 0;
    }
    reveal(rx, seq, now);
    size_t d = 0;
    bool full = false;
    while (!hold(rx, pos, seq, msg, len)) {
        /* Store full: give up the first gap below this message, deliver what follows it. */
        if (!full)
            rx->store_full++;
        full = true;
        uint64_t from, end, since;
        if (!first_gap(rx, &from, &end, &since))
            end = seq; /* unreachable: seq > next and seq is not held */
        declare_lost(rx, end < seq ? end : seq, lost, ctx);
        d += deliver_ready(rx, deliver, ctx);
        if (seq == rx->next)
            return d + deliver_now(rx, seq, msg, len, was_missing, deliver, ctx);
        pos = lower_bound(rx, seq);
    }
    if (was_missing)
        rx->recovered++;
    if (rx->known_end <= seq)
        rx->known_end = seq + 1;
    return d;
}

size_t mold_rx_packet(mold_rx_t *rx, const mold_header_t *h, const uint8_t *pkt, size_t n,
                      uint64_t now_ns, mold_deliver_fn *deliver, mold_lost_fn *lost, void *ctx)
{
    if (rx->check_session && strcmp(h->session, rx->session) != 0) {
        rx->other_session++;
        return 0;
    }
    rx->packets++;
    size_t d = deliver_ready(rx, deliver, ctx);
    if (h->count == 0 || h->count == MOLD_END_OF_SESSION) {
        if (h->count == 0)
            rx->heartbeats++;
        else
            rx->end_of_session++;
        reveal(rx, h->seq, now_ns);
        return d;
    }
    if (h->seq > UINT64_MAX - h->count) {
        rx->rejected++;
        return d;
    }
    mold_iter_t it;
    mold_iter_init(&it, pkt, n);
    const uint8_t *msg;
    uint16_t len;
    for (uint64_t seq = h->seq; mold_next(&it, &msg, &len); seq++)
        d += on_message(rx, seq, msg, len, now_ns, deliver, lost, ctx);
    return d;
}

size_t mold_rx_tick(mold_rx_t *rx, uint64_t now_ns, mold_deliver_fn *deliver, mold_lost_fn *lost,
                    void *ctx)
{
    size_t d = deliver_ready(rx, deliver, ctx);
    uint64_t from, end, since;
    while (first_gap(rx, &from, &end, &since) &&
           (now_ns > since ? now_ns - since : 0) >= rx->gap_timeout_ns) {
        declare_lost(rx, end, lost, ctx);
        d += deliver_ready(rx, deliver, ctx);
    }
    return d;
}

bool mold_rx_want(mold_rx_t *rx, uint64_t now_ns, uint64_t *seq, uint16_t *count)
{
    uint64_t from, end, since;
    if (!first_gap(rx, &from, &end, &since))
        return false;
    if (rx->requested &&
        (now_ns > rx->last_request_ns ? now_ns - rx->last_request_ns : 0) < rx->rerequest_ns)
        return false;
    rx->requested = true;
    rx->last_request_ns = now_ns;
    rx->requests++;
    *seq = from;
    *count = end - from > UINT16_MAX ? UINT16_MAX : (uint16_t)(end - from);
    return true;
}

size_t mold_rx_wants(mold_rx_t *rx, uint64_t now_ns, uint64_t *seq, uint16_t *count, size_t max)
{
    uint64_t f, e, since;
    if (!max || !first_gap(rx, &f, &e, &since))
        return 0;
    if (rx->requested &&
        (now_ns > rx->last_request_ns ? now_ns - rx->last_request_ns : 0) < rx->rerequest_ns)
        return 0;
    size_t n = 0;
    uint64_t expect = rx->next;
    for (size_t i = rx->lo; i <= rx->hi && n < max; i++) {
        uint64_t upto = i < rx->hi ? rx->idx[i].seq : rx->known_end;
        while (upto > expect && n < max) { /* [expect, upto) is missing: in pieces of 65535 */
            uint64_t c = upto - expect > UINT16_MAX ? UINT16_MAX : upto - expect;
            seq[n] = expect;
            count[n] = (uint16_t)c;
            n++;
            expect += c;
        }
        if (i < rx->hi)
            expect = rx->idx[i].seq + 1;
    }
    rx->requested = true;
    rx->last_request_ns = now_ns;
    rx->requests += n;
    return n;
}

void mold_rx_set_next(mold_rx_t *rx, uint64_t next_seq)
{
    if (next_seq <= rx->next)
        return;
    while (rx->lo < rx->hi && rx->idx[rx->lo].seq < next_seq) {
        rx->duplicates++;
        pop_front(rx);
    }
    rx->next = next_seq;
    if (rx->known_end < next_seq)
        rx->known_end = next_seq;
}

uint64_t mold_rx_next(const mold_rx_t *rx)
{
    return rx->next;
}

size_t mold_rx_held(const mold_rx_t *rx)
{
    return rx->hi - rx->lo;
}
