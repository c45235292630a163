/*
 * capture: ITCH 5.0 out of a packet capture (pcap or pcapng, read by libpcap) of a MoldUDP64
 * feed, for `tickcore replay capture.pcap`. libpcap reads the file and its records (both formats,
 * either byte order, micro- or nanosecond timestamps); this module takes each packet's link layer
 * (Ethernet with any 802.1Q tags, Linux cooked SLL, BSD loopback, raw IP), IPv4 and UDP headers
 * off by hand, checks the payload as a MoldUDP64 downstream packet (net/mold: mold_parse), and
 * decodes its messages (ingest/itch: itch_decode) in sequence-number order: the first packet's
 * sequence number starts the count; a message below the next expected one is a duplicate
 * (dropped, counted: a retransmission or the B side of an A/B capture); one above it opens a gap
 * [next, seq) (counted, the first CAPTURE_GAPS_KEPT ranges kept for the report) and decoding goes
 * on from it; a capture has no one to re-request from. Packets that are not IPv4/UDP, are IP
 * fragments, are cut short by the snap length, or are not valid MoldUDP64 are skipped and counted
 * by reason; none of them is an error. An ITCH message inside a valid packet that does not decode
 * (unknown type, wrong length) ends the file with an error naming the packet and the message
 * (with skip_bad it is counted and skipped).
 *
 * Ownership: capture_t lives in caller memory. libpcap allocates its read buffer and handle when
 * a file is opened (a few blocks per file, outside mem/ and so outside the churn count; nothing
 * per packet) and frees them in capture_close. Each packet of a batch is copied into the caller's
 * buffer, so events' raw pointers stay valid until the next capture_next (a batch ends early when
 * the buffer cannot take the next packet). One thread uses a capture_t.
 */
#ifndef TICKCORE_INGEST_CAPTURE_H
#define TICKCORE_INGEST_CAPTURE_H

#include "event/event.h"
#include "net/mold.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPTURE_GAPS_KEPT 8

typedef struct capture_gap {
    uint64_t from, count; /* messages [from, from + count) never seen */
} capture_gap_t;

typedef struct capture {
    struct pcap *pc; /* libpcap's handle; NULL when closed */
    int linktype;
    bool skip_bad;
    /* the packet being decoded */
    mold_iter_t it;
    bool in_packet;
    bool failed; /* an error was met: the next call returns it */
    /* packets are copied here, so a batch's events (their raw pointers) outlive libpcap's next
     * read: the caller's buffer (at least MOLD_MAX_DATAGRAM bytes), refilled from 0 each call */
    uint8_t *copy;
    size_t copy_cap, copy_len;
    const uint8_t *pend; /* a packet read and checked but not yet copied (libpcap's memory) */
    size_t pend_len;
    uint64_t pend_seq;
    uint64_t seq;  /* sequence number of the next message of the packet */
    uint64_t next; /* the next sequence number expected; 0 before the first message */
    uint64_t pos;  /* file offset after the last packet read (input bytes) */
    /* figures */
    uint64_t packets;      /* records in the capture */
    uint64_t mold_packets; /* valid MoldUDP64 packets */
    uint64_t heartbeats;   /* of them, heartbeats and end of session */
    uint64_t not_udp;      /* not IPv4/UDP (ARP, IPv6, TCP, ...) */
    uint64_t fragments;    /* IPv4 fragments */
    uint64_t truncated;    /* cut short by the capture's snap length */
    uint64_t not_mold;     /* UDP payloads that are not MoldUDP64 */
    uint64_t messages;     /* delivered */
    uint64_t duplicates;   /* messages dropped: already delivered */
    uint64_t gaps;         /* gaps opened */
    uint64_t gap_messages; /* messages in them */
    uint64_t bad_messages; /* ITCH messages that did not decode (skipped with skip_bad) */
    capture_gap_t gap[CAPTURE_GAPS_KEPT];
    char err[256];
} capture_t;

/* True if p[0..n) starts like a pcap (a1b2c3d4 / a1b23c4d, either byte order) or pcapng
 * (0a0d0d0a) file. */
bool capture_magic(const uint8_t *p, size_t n);

/* Open a capture file; copy[0..copy_cap) (copy_cap >= MOLD_MAX_DATAGRAM, the caller's, allocated
 * before the seal) holds the packets of one batch. 0, or -EINVAL / -EPROTONOSUPPORT (a link type
 * without IP) with err set. */
int capture_open(capture_t *c, const char *path, bool skip_bad, uint8_t *copy, size_t copy_cap);
/* Close (and free libpcap's memory). Safe on a closed or zeroed capture_t. */
void capture_close(capture_t *c);

/* The next events into out[0..max): 1 with *n >= 1, 0 at the end of the capture, -1 on an error
 * (c->err; every event before it was delivered). */
int capture_next(capture_t *c, ev_t *out, size_t max, size_t *n);

#endif
