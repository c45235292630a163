/*
 * pack: see pack.h. The checksum is XXH3-64 (libxxhash) of the records seeded with the XXH3-64 of
 * the header's first 32 bytes, so it covers every byte of the packet but its own.
 */
#include "net/pack.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

static inline void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* little-endian hosts (x86-64, arm64): checked by pack_check's magic */
}
static inline void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
/* LEB128 of v (a u32) at p: its byte count (1..5). */
static inline size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* The LEB128 u32 at p (at most end - p bytes): its byte count, or 0 if it runs past end, is
 * longer than 5 bytes or passes UINT32_MAX. */
static inline size_t get_varint(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    uint64_t x = 0;
    for (size_t n = 0; n < 5 && p + n < end; n++) {
        x |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if (!(p[n] & 0x80))
            return x <= UINT32_MAX ? (*v = (uint32_t)x, n + 1) : 0;
    }
    return 0;
}

void pack_begin(pack_builder_t *b, uint8_t *buf, size_t cap, uint64_t first_local)
{
    b->buf = buf;
    b->cap = cap;
    b->len = PACK_HEADER;
    b->count = 0;
    b->first_index = b->last_index = 0;
    b->first_local = first_local;
}

bool pack_add(pack_builder_t *b, uint64_t index, const uint8_t *msg, size_t len)
{
    if (len == 0 || len > PACK_MAX_MSG || !pack_fits(b, len) ||
        (b->count && (index <= b->last_index || index - b->last_index > UINT32_MAX)))
        return false;
    uint8_t *p = b->buf + b->len;
    size_t h = put_varint(p, b->count ? (uint32_t)(index - b->last_index) : 0);
    p[h++] = (uint8_t)len;
    memcpy(p + h, msg, len);
    b->len += h + len;
    if (!b->count)
        b->first_index = index;
    b->last_index = index;
    b->count++;
    return true;
}

size_t pack_finish(pack_builder_t *b)
{
    uint8_t *h = b->buf;
    put32(h, PACK_MAGIC);
    put32(h + 4, b->count);
    put64(h + 8, b->first_index);
    put64(h + 16, b->first_local);
    put32(h + 24, (uint32_t)(b->len - PACK_HEADER));
    put32(h + 28, 0);
    put64(h + 32, XXH3_64bits_withSeed(h + PACK_HEADER, b->len - PACK_HEADER, XXH3_64bits(h, 32)));
    return b->len;
}

int pack_check(const uint8_t *p, size_t len, pack_view_t *v, char *err, size_t errlen)
{
    if (len < PACK_HEADER) {
        snprintf(err, errlen, "packet of %zu bytes: shorter than the %u-byte header", len,
                 PACK_HEADER);
        return -EBADMSG;
    }
    if (get32(p) != PACK_MAGIC) {
        snprintf(err, errlen, "byte 0: magic 0x%08x, expected 0x%08x (\"TCK2\"%s)", get32(p),
                 PACK_MAGIC,
                 get32(p) == 0x314b4354u ? "; \"TCK1\" is the older packing: publish the day "
                                           "again with this version's feed --fresh"
                                         : "");
        return -EBADMSG;
    }
    uint32_t count = get32(p + 4), bytes = get32(p + 24);
    if ((size_t)bytes != len - PACK_HEADER) {
        snprintf(err, errlen, "byte 24: header says %u bytes of records, the packet has %zu", bytes,
                 len - PACK_HEADER);
        return -EBADMSG;
    }
    uint64_t sum = XXH3_64bits_withSeed(p + PACK_HEADER, bytes, XXH3_64bits(p, 32));
    if (sum != get64(p + 32)) {
        snprintf(err, errlen, "byte 32: checksum 0x%016llx, the packet hashes to 0x%016llx",
                 (unsigned long long)get64(p + 32), (unsigned long long)sum);
        return -EBADMSG;
    }
    uint64_t first = get64(p + 8), local = get64(p + 16);
    if (count && (first == 0 || local == 0)) {
        snprintf(err, errlen, "byte 8: first index %llu, first local index %llu: expected >= 1",
                 (unsigned long long)first, (unsigned long long)local);
        return -EBADMSG;
    }
    size_t off = PACK_HEADER;
    uint64_t index = first;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t d = 0;
        size_t h = get_varint(p + off, p + len, &d);
        if (h == 0 || off + h >= len) {
            snprintf(err, errlen,
                     "byte %zu: record %u of %u: no index delta and length within the packet's "
                     "%zu bytes (a LEB128 u32 of 1..5 bytes, then a length byte)",
                     off, i + 1, count, len);
            return -EBADMSG;
        }
        uint8_t l = p[off + h];
        if ((i == 0) != (d == 0) || l == 0 || off + h + 1 + l > len) {
            snprintf(err, errlen,
                     "byte %zu: record %u of %u: index delta %u, length %u (expected delta %s, "
                     "length 1..%u within the packet's %zu bytes)",
                     off, i + 1, count, d, l, i ? ">= 1" : "0", PACK_MAX_MSG, len);
            return -EBADMSG;
        }
        index += d;
        off += h + 1 + l;
    }
    if (off != len) {
        snprintf(err, errlen, "byte %zu: %zu bytes after the %u records", off, len - off, count);
        return -EBADMSG;
    }
    *v = (pack_view_t){.p = p,
                       .len = len,
                       .count = count,
                       .first_index = first,
                       .first_local = local,
                       .last_index = index,
                       .off = PACK_HEADER,
                       .i = 0,
                       .index = first};
    return 0;
}

int pack_peek(const uint8_t *p, size_t len, pack_view_t *v)
{
    if (len < PACK_HEADER || get32(p) != PACK_MAGIC)
        return -EBADMSG;
    memset(v, 0, sizeof *v);
    v->count = get32(p + 4);
    v->first_index = get64(p + 8);
    v->first_local = get64(p + 16);
    return 0;
}

bool pack_next(pack_view_t *v, uint64_t *index, uint64_t *local, const uint8_t **msg, uint16_t *len)
{
    if (v->i >= v->count)
        return false;
    const uint8_t *r = v->p + v->off;
    uint32_t d = 0;
    size_t h = get_varint(r, v->p + v->len, &d); /* checked by pack_check */
    uint8_t l = r[h];
    v->index += d;
    *index = v->index;
    *local = v->first_local + v->i;
    *msg = r + h + 1;
    *len = l;
    v->off += h + 1 + l;
    v->i++;
    return true;
}
