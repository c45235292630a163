/*
 * mold: MoldUDP64 framing (pure functions: no I/O, no allocation, no state; any thread) and
 * mold_rx, the receive-side sequencing of one MoldUDP64 session. Spec: Nasdaq, "MoldUDP64
 * Protocol Specification V 1.00", 07/07/2009 (nasdaqtrader.com, .../dataproducts/moldudp64.pdf).
 * A downstream packet is a 20-byte header: session (10 ASCII, padded on the right with spaces),
 * sequence number (8, big-endian: the number of the first message in the packet; for a heartbeat
 * or end of session the next one), message count (2, big-endian: 0 = heartbeat, 0xFFFF = end of
 * session), then `count` message blocks, each a 2-byte big-endian length and that many bytes (here
 * one ITCH 5.0 message, type byte first). A request packet (to the re-request server) is session
 * (10), sequence number (8), requested message count (2) = 20 bytes; the answer is ordinary
 * downstream packets sent to the requester. Deviations, all stricter than the spec: a message
 * block of length 0 is an error (every ITCH message has a type byte), bytes after the last block
 * are an error, the session must be printable ASCII, and a request for 0 messages is an error.
 * mold_parse() checks a whole datagram up front (every block inside it, the count exact) so that
 * mold_iter and mold_rx never meet a bad one; errors name the byte offset and what was expected.
 *
 * How tickcore uses it (push mode): `tickcore serve` LISTENS; the publisher (`tickcore feed FILE
 * --to udp://127.0.0.1:PORT`) sends downstream packets to the server; the server sends request
 * packets back to the packet's source address and the publisher answers them from a retained
 * window of its recent messages. The TCP side (SoupBinTCP, net/soup.h) can carry the same
 * session: whichever source brings message `next` first delivers it (mold_rx_set_next).
 *
 * mold_rx: one session's receiver, owned and used by one thread. It delivers every message in
 * sequence order exactly once, counts duplicates, holds messages that arrive past a gap, names the
 * first gap to re-request (rate-limited), and declares a gap lost after gap_timeout_ns, or at once
 * when the store cannot hold a message (store full: the oldest gap is given up, never the store
 * grown). Design: the store is one preallocated byte arena in which held messages are appended in
 * arrival order (a 10-byte block header, sequence number and length, then the message), plus an
 * index of held messages sorted by sequence number (seq, offset, length, gap age), a window
 * [lo, hi) of one preallocated array. Delivery pops the front of the index while its seq is the
 * next expected; insertion finds its place by binary search (in-order arrival appends, a
 * retransmission filling a later gap shifts index entries, never message bytes); duplicates are
 * found by the same search. Message bytes of delivered entries become dead space; when the arena
 * end is reached, live blocks are slid down (compaction, in arrival order, each found in the index
 * by its sequence number), and the arena is rewound whenever nothing is held. Compaction runs only
 * if it reclaims more than 1/8 of the arena (so it moves at most ~8 bytes per byte stored);
 * otherwise the store counts as full, as it does when the index is full or the held bytes plus
 * the new block would exceed store_bytes. A gap's age is the age of its oldest missing message:
 * gaps below a newer gap were always known missing at least as long, so only the first gap's age
 * needs checking. Memory: store_bytes of arena plus an index of
 * store_bytes / MOLD_RX_MIN_SLOT entries (24 bytes each), both from mem_alloc (tag INGEST) in
 * mold_rx_init and nothing after it. Callbacks run inside mold_rx_packet/mold_rx_tick and must
 * not call back into the same mold_rx; a delivered msg pointer is valid only during the call. A
 * sequence number far ahead (a bad or restarted publisher) opens a gap like any other, re-requested
 * and then lost after the timeout; a new session needs a new mold_rx (or mold_rx_init again).
 */
#ifndef TICKCORE_NET_MOLD_H
#define TICKCORE_NET_MOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOLD_HEADER_LEN     20
#define MOLD_SESSION_LEN    10
#define MOLD_REQUEST_LEN    20
#define MOLD_END_OF_SESSION 0xFFFF
#define MOLD_MAX_MESSAGES   0xFFFE /* messages in one downstream packet */
#define MOLD_MAX_DATAGRAM   65507  /* the largest UDP payload over IPv4 */

typedef struct mold_header {
    char session[11]; /* trailing spaces removed, NUL-terminated */
    uint64_t seq;
    uint16_t count; /* 0: heartbeat; MOLD_END_OF_SESSION; else messages */
} mold_header_t;

/* Check a downstream datagram pkt[0..n): header, then exactly `count` blocks that lie wholly
 * inside it and fill it (trailing bytes are an error), no block of length 0. Heartbeats and end
 * of session must have no bytes after the header. Returns 0, or -1 with err naming the byte
 * offset and what was expected ("message 3 at byte offset 58: length 40 runs past the end of the
 * 90-byte datagram"). *h is filled whenever the 20-byte header is present and valid, even if a
 * block is bad. Never reads outside pkt[0..n). */
int mold_parse(const uint8_t *pkt, size_t n, mold_header_t *h, char *err, size_t errlen);

/* Walk the messages of a datagram that mold_parse accepted (pkt and n as given to it). Zero copy:
 * *msg points into pkt. mold_next returns false after the last one (at once for heartbeats and
 * end of session); it also stops rather than read outside pkt[0..n) if given a bad datagram. */
typedef struct mold_iter {
    const uint8_t *p, *end;
    uint16_t left;
} mold_iter_t;
void mold_iter_init(mold_iter_t *it, const uint8_t *pkt, size_t n);
bool mold_next(mold_iter_t *it, const uint8_t **msg, uint16_t *len);

/* Building a downstream packet in place: begin, add messages while they fit in cap (the MTU
 * budget), finish. mold_begin writes the header (a session longer than 10 bytes or not printable
 * ASCII, or cap < 20, leaves the builder refusing everything and mold_finish returning 0).
 * mold_add returns false, leaving the packet unchanged, if the block (2 + len bytes) does not fit
 * in cap, if len is 0, or if the packet already holds MOLD_MAX_MESSAGES. mold_finish writes the
 * count and returns the datagram size; with no message added the datagram is a heartbeat. */
typedef struct mold_builder {
    uint8_t *buf;
    size_t cap, len;
    uint16_t count;
} mold_builder_t;
void mold_begin(mold_builder_t *b, uint8_t *buf, size_t cap, const char *session, uint64_t seq);
bool mold_add(mold_builder_t *b, const uint8_t *msg, uint16_t len);
size_t mold_finish(mold_builder_t *b);

/* Whole 20-byte packets into out[0..cap): the size (20), or 0 if cap < 20 or the session is
 * longer than 10 bytes or not printable ASCII (NULL = blank). A heartbeat and an end of session
 * carry the next sequence number; a request names the first message wanted and how many. */
size_t mold_put_heartbeat(uint8_t *out, size_t cap, const char *session, uint64_t next_seq);
size_t mold_put_end(uint8_t *out, size_t cap, const char *session, uint64_t next_seq);
size_t mold_put_request(uint8_t *out, size_t cap, const char *session, uint64_t seq,
                        uint16_t count);
/* A request packet: exactly 20 bytes, printable session (trailing spaces removed), count >= 1.
 * 0, or -1 with err. */
int mold_request_parse(const uint8_t *pkt, size_t n, char session[11], uint64_t *seq,
                       uint16_t *count, char *err, size_t errlen);

/* ---- mold_rx: receive-side sequencing of one session ---------------------------------- */

#define MOLD_RX_BLOCK_HDR 10 /* per held message in the arena: sequence number 8, length 2 */
#define MOLD_RX_MIN_SLOT                                                                           \
    22 /* index entries = store_bytes / this: the shortest ITCH message                            \
          (12 bytes) plus its block header, so with ITCH the byte budget,                          \
          not the index, is what fills */

typedef struct mold_rx_cfg {
    size_t store_bytes;      /* arena for held out-of-order messages, preallocated; each takes
                                MOLD_RX_BLOCK_HDR + len bytes. 0: nothing is ever held (every gap
                                is lost as soon as a later message arrives). At most 4 GiB. */
    uint64_t gap_timeout_ns; /* a gap not filled this long after it was seen is lost */
    uint64_t rerequest_ns;   /* at most one re-request per this interval */
    const char *session;     /* NULL: no check (the caller's job); else packets of another
                                session are counted (other_session) and ignored */
} mold_rx_cfg_t;

typedef void mold_deliver_fn(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len);
typedef void mold_lost_fn(void *ctx, uint64_t from, uint64_t count);

struct mold_rx_slot;

typedef struct mold_rx {
    /* counters: plain fields written by the owning thread (copy them out for other threads) */
    uint64_t packets;         /* datagrams given to mold_rx_packet (of our session) */
    uint64_t messages;        /* delivered */
    uint64_t duplicates;      /* message copies dropped: already delivered, held, or given up
                                 (lost, or passed by mold_rx_set_next) */
    uint64_t heartbeats;      /* heartbeat packets */
    uint64_t gaps;            /* gaps opened: missing messages newly revealed (by a message or
                                 heartbeat past the highest sequence seen) */
    uint64_t recovered;       /* messages that arrived after being known missing */
    uint64_t lost_gaps;       /* lost() calls */
    uint64_t lost_messages;   /* messages in them */
    uint64_t held_peak_bytes; /* most arena bytes in use at once (block headers included) */
    uint64_t store_full;      /* messages that could not be held (each forced a gap lost) */
    uint64_t end_of_session;  /* end-of-session packets seen */
    uint64_t other_session;   /* packets of another session, ignored (cfg.session set) */
    uint64_t rejected;        /* packets whose sequence numbers would pass 2^64 - 1, ignored */
    uint64_t requests;        /* re-requests handed out by mold_rx_want */
    /* state (read-only for callers) */
    uint64_t next;        /* the next sequence number to deliver */
    uint64_t known_end;   /* 1 + the highest sequence number known to exist (>= next) */
    uint64_t tail_gap_ns; /* when [last held + 1, known_end) was first seen missing */
    uint64_t last_request_ns;
    bool requested; /* last_request_ns is set */
    bool check_session;
    char session[11];
    uint64_t gap_timeout_ns, rerequest_ns;
    uint8_t *store;           /* the arena */
    size_t store_cap, head;   /* bytes; blocks live in [0, head) */
    size_t held_bytes;        /* live bytes in the arena (block headers included) */
    struct mold_rx_slot *idx; /* held messages sorted by seq, in [lo, hi) */
    size_t idx_cap, lo, hi;
} mold_rx_t;

/* Allocate the store (mem_alloc, MEM_TAG_INGEST) and start expecting next_seq (>= 1; MoldUDP64
 * sessions start at 1). 0, or -EINVAL (store_bytes over 4 GiB, next_seq 0, a session longer
 * than 10 bytes) or -ENOMEM. */
int mold_rx_init(mold_rx_t *rx, const mold_rx_cfg_t *cfg, uint64_t next_seq);
/* Free the store. Safe on a zeroed or already finished mold_rx. */
void mold_rx_fini(mold_rx_t *rx);

/* One datagram that mold_parse accepted (h, pkt[0..n)), received at now_ns (any monotonic
 * clock, the same for every call). deliver is required; lost may be NULL (losses are still
 * counted). Delivers, in sequence order and exactly once, every message
 * that is next (from the packet, then the held ones it lets through); drops (counts) duplicates;
 * a message past the next expected is copied into the store and held. A heartbeat or end of
 * session whose sequence number is past the highest known reveals a gap too (messages were sent
 * that we never saw); neither delivers anything from the packet. If a message cannot be held
 * (store full), the first gap below it is declared lost at once (lost() called, store_full
 * counted) and delivery goes on. Returns messages delivered. Allocates nothing. */
size_t mold_rx_packet(mold_rx_t *rx, const mold_header_t *h, const uint8_t *pkt, size_t n,
                      uint64_t now_ns, mold_deliver_fn *deliver, mold_lost_fn *lost, void *ctx);
/* Timers: delivers what became next (after mold_rx_set_next), then declares the first gap lost
 * while its age is >= gap_timeout_ns: lost(ctx, from, count) with the missing range, counted, and
 * delivery goes on from the held messages. Returns messages delivered. Allocates nothing. */
size_t mold_rx_tick(mold_rx_t *rx, uint64_t now_ns, mold_deliver_fn *deliver, mold_lost_fn *lost,
                    void *ctx);
/* The range to re-request now: the first gap, [*seq, *seq + *count), count capped at 65535;
 * false if there is no gap or the last request was less than rerequest_ns ago. */
bool mold_rx_want(mold_rx_t *rx, uint64_t now_ns, uint64_t *seq, uint16_t *count);
/* Every gap at once, in sequence order (up to max ranges of at most 65535 messages each), with
 * the same rate limit: a receiver that loses a packet every few milliseconds re-requests all of
 * them each rerequest_ns, not only the oldest. Returns the ranges written. */
size_t mold_rx_wants(mold_rx_t *rx, uint64_t now_ns, uint64_t *seq, uint16_t *count, size_t max);
/* Another source (the TCP feed of the same session) delivered up to next_seq - 1: held
 * messages below it are dropped (counted as duplicates), gaps below it are closed (not lost).
 * Held messages from next_seq on are delivered by the next mold_rx_packet or mold_rx_tick.
 * A next_seq at or below the current one changes nothing. */
void mold_rx_set_next(mold_rx_t *rx, uint64_t next_seq);
uint64_t mold_rx_next(const mold_rx_t *rx);
/* Messages held now. */
size_t mold_rx_held(const mold_rx_t *rx);

#endif
