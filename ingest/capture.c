/*
 * capture: see capture.h. Header offsets from the standards: Ethernet II (6 + 6 + EtherType 2;
 * 802.1Q/802.1ad tags 4 bytes each, TPID 0x8100/0x88a8), Linux SLL (16 bytes, protocol at 14),
 * BSD loopback (4-byte address family in host order: 2 = IPv4), IPv4 (RFC 791: IHL in 32-bit
 * words, flags+fragment offset at 6, protocol at 9), UDP (RFC 768: length at 4, 8-byte header).
 */
#include "ingest/capture.h"

#include "base/byteorder.h"
#include "base/err.h"
#include "ingest/itch.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

bool capture_magic(const uint8_t *p, size_t n)
{
    if (n < 4)
        return false;
    static const uint8_t magics[5][4] = {
        {0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, /* pcap, microseconds */
        {0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}, /* pcap, nanoseconds */
        {0x0a, 0x0d, 0x0d, 0x0a},                           /* pcapng section header block */
    };
    for (int i = 0; i < 5; i++)
        if (memcmp(p, magics[i], 4) == 0)
            return true;
    return false;
}

int capture_open(capture_t *c, const char *path, bool skip_bad, uint8_t *copy, size_t copy_cap)
{
    memset(c, 0, sizeof *c);
    c->skip_bad = skip_bad;
    c->copy = copy;
    c->copy_cap = copy_cap;
    if (!copy || copy_cap < MOLD_MAX_DATAGRAM) {
        err_set(c->err, sizeof c->err, "%s: capture buffer of %zu bytes, need %u", path, copy_cap,
                MOLD_MAX_DATAGRAM);
        return -EINVAL;
    }
    char perr[PCAP_ERRBUF_SIZE] = "";
    c->pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (!c->pc) {
        err_set(c->err, sizeof c->err, "%s: not a readable pcap/pcapng capture: %s", path, perr);
        return -EINVAL;
    }
    c->linktype = pcap_datalink(c->pc);
    switch (c->linktype) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_NULL:
    case DLT_RAW:
    case DLT_IPV4:
        return 0;
    default:
        err_set(c->err, sizeof c->err,
                "%s: link type %d (%s) is not supported: expected Ethernet, Linux SLL, "
                "loopback or raw IPv4",
                path, c->linktype, pcap_datalink_val_to_name(c->linktype));
        capture_close(c);
        return -EPROTONOSUPPORT;
    }
}

void capture_close(capture_t *c)
{
    if (c->pc)
        pcap_close(c->pc);
    c->pc = NULL;
    c->in_packet = false;
}

/* The UDP payload of a packet, or NULL (counted by reason). */
static const uint8_t *udp_payload(capture_t *c, const uint8_t *p, size_t caplen, size_t wirelen,
                                  size_t *len)
{
    if (caplen < wirelen) {
        c->truncated++;
        return NULL;
    }
    size_t off = 0;
    unsigned proto = 0x0800;
    switch (c->linktype) {
    case DLT_EN10MB:
        off = 12;
        while (off + 2 <= caplen) {
            proto = be16_get(p + off);
            if (proto != 0x8100 && proto != 0x88a8)
                break;
            off += 4;
        }
        off += 2;
        break;
    case DLT_LINUX_SLL:
        if (caplen < 16) {
            c->not_udp++;
            return NULL;
        }
        proto = be16_get(p + 14);
        off = 16;
        break;
    case DLT_NULL: {
        if (caplen < 4) {
            c->not_udp++;
            return NULL;
        }
        uint32_t fam;
        memcpy(&fam, p, 4);
        proto = fam == 2 || fam == 0x02000000 ? 0x0800 : 0;
        off = 4;
        break;
    }
    default: /* raw IP */
        break;
    }
    if (proto != 0x0800 || off + 20 > caplen || (p[off] >> 4) != 4) {
        c->not_udp++;
        return NULL;
    }
    size_t ihl = (size_t)(p[off] & 0x0f) * 4;
    if (ihl < 20 || off + ihl + 8 > caplen || p[off + 9] != 17) {
        c->not_udp++;
        return NULL;
    }
    if (be16_get(p + off + 6) & 0x3fff) { /* MF set or an offset: a fragment */
        c->fragments++;
        return NULL;
    }
    const uint8_t *udp = p + off + ihl;
    size_t ulen = be16_get(udp + 4);
    if (ulen < 8 || off + ihl + ulen > caplen) {
        c->not_udp++;
        return NULL;
    }
    *len = ulen - 8;
    return udp + 8;
}

/* Read packets until one holds MoldUDP64 messages (left pending): 1, 0 at the end, -1 on a read
 * error. */
static int next_packet(capture_t *c)
{
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *data;
        int rc = pcap_next_ex(c->pc, &h, &data);
        if (rc == PCAP_ERROR_BREAK)
            return 0;
        if (rc != 1) {
            err_set(c->err, sizeof c->err, "packet %llu: %s", (unsigned long long)c->packets + 1,
                    pcap_geterr(c->pc));
            return -1;
        }
        c->packets++;
        FILE *f = pcap_file(c->pc);
        if (f)
            c->pos = (uint64_t)ftell(f);
        size_t len;
        const uint8_t *pl = udp_payload(c, data, h->caplen, h->len, &len);
        if (!pl)
            continue;
        mold_header_t mh;
        char merr[160];
        if (mold_parse(pl, len, &mh, merr, sizeof merr) < 0) {
            c->not_mold++;
            continue;
        }
        c->mold_packets++;
        if (mh.count == 0 || mh.count == MOLD_END_OF_SESSION) {
            c->heartbeats++;
            continue;
        }
        c->pend = pl;
        c->pend_len = len;
        c->pend_seq = mh.seq;
        return 1;
    }
}

int capture_next(capture_t *c, ev_t *out, size_t max, size_t *n)
{
    size_t k = 0;
    if (c->failed)
        return -1;
    c->copy_len = 0;
    while (k < max) {
        if (!c->in_packet) {
            if (!c->pend) {
                int rc = next_packet(c);
                if (rc <= 0) {
                    c->failed = rc < 0;
                    *n = k;
                    return k ? 1 : rc;
                }
            }
            if (c->copy_len + c->pend_len > c->copy_cap)
                break; /* k > 0 here: the packet waits for the next call, read but not copied */
            uint8_t *p = c->copy + c->copy_len;
            memcpy(p, c->pend, c->pend_len);
            c->copy_len += c->pend_len;
            mold_iter_init(&c->it, p, c->pend_len);
            c->seq = c->pend_seq;
            c->in_packet = true;
            c->pend = NULL;
        }
        const uint8_t *msg;
        uint16_t len;
        if (!mold_next(&c->it, &msg, &len)) {
            c->in_packet = false;
            continue;
        }
        uint64_t seq = c->seq++;
        if (c->next == 0)
            c->next = seq;
        if (seq < c->next) {
            c->duplicates++;
            continue;
        }
        if (seq > c->next) {
            if (c->gaps < CAPTURE_GAPS_KEPT)
                c->gap[c->gaps] = (capture_gap_t){c->next, seq - c->next};
            c->gaps++;
            c->gap_messages += seq - c->next;
        }
        c->next = seq + 1;
        int st = itch_decode(msg, len, &out[k]);
        if (st != ITCH_OK) {
            c->bad_messages++;
            if (c->skip_bad)
                continue;
            err_set(c->err, sizeof c->err,
                    "packet %llu, MoldUDP64 message %llu: type 0x%02x, length %u: %s",
                    (unsigned long long)c->packets, (unsigned long long)seq, msg[0], len,
                    itch_status_str((itch_status_t)st));
            c->failed = true;
            *n = k;
            return k ? 1 : -1; /* after the events before it; the next call returns it */
        }
        k++;
        c->messages++;
    }
    *n = k;
    return 1;
}
