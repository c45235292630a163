/*
 * xrow: see xrow.h. The checks run in the order of the header, so the first thing wrong is the
 * one named; the CRC is checked after the sizes (a part of the wrong size is named as such, not
 * as a bad checksum).
 */
#include "engine/xrow.h"

#include "base/byteorder.h"
#include "mem/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

int xrow_layout_init(xrow_layout_t *l, unsigned shard, unsigned nshards, uint32_t m,
                     const uint8_t *owner)
{
    memset(l, 0, sizeof *l);
    if (nshards == 0 || nshards > XROW_MAX_SHARDS || shard >= nshards || m == 0 || m > 65535)
        return -EINVAL;
    l->shard = (uint16_t)shard;
    l->nshards = (uint16_t)nshards;
    l->m = m;
    for (uint32_t c = 0; c < m; c++)
        l->ncols += owner[c + 1] == shard;
    l->cols = mem_alloc(MEM_TAG_ENGINE, (l->ncols ? l->ncols : 1) * sizeof *l->cols);
    if (!l->cols)
        return -ENOMEM;
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    uint32_t n = 0;
    for (uint32_t c = 0; c < m; c++) {
        if (owner[c + 1] != shard)
            continue;
        l->cols[n++] = c;
        uint8_t b[4];
        be32_put(b, c);
        XXH3_64bits_update(&st, b, sizeof b);
    }
    l->colset = XXH3_64bits_digest(&st);
    l->bytes = XROW_HEADER + 16 * (size_t)l->ncols;
    return 0;
}

void xrow_layout_fini(xrow_layout_t *l)
{
    if (l->cols)
        mem_free(MEM_TAG_ENGINE, l->cols, (l->ncols ? l->ncols : 1) * sizeof *l->cols);
    memset(l, 0, sizeof *l);
}

static uint32_t part_crc(const uint8_t *p, size_t len)
{
    static const uint8_t zero[4];
    uint32_t c = crc32_iscsi((unsigned char *)(uintptr_t)p, 68, 0xFFFFFFFFu);
    c = crc32_iscsi((unsigned char *)(uintptr_t)zero, 4, c);
    return crc32_iscsi((unsigned char *)(uintptr_t)p + XROW_HEADER, (int)(len - XROW_HEADER), c);
}

size_t xrow_encode(const xrow_layout_t *l, uint64_t session, uint64_t k, uint64_t seq,
                   uint64_t closed_ns, const double *row, bool traded, const symtab_t *names,
                   void *out)
{
    uint8_t *p = out;
    memcpy(p, XROW_MAGIC, 4);
    be16_put(p + 4, XROW_VERSION);
    be16_put(p + 6, XROW_HEADER);
    be16_put(p + 8, l->shard);
    be16_put(p + 10, l->nshards);
    be32_put(p + 12, l->m);
    be32_put(p + 16, l->ncols);
    be32_put(p + 20, traded ? XROW_TRADED : 0);
    be64_put(p + 24, session);
    be64_put(p + 32, k);
    be64_put(p + 40, l->colset);
    be64_put(p + 48, seq);
    be64_put(p + 56, closed_ns);
    be32_put(p + 64, (uint32_t)l->bytes);
    be32_put(p + 68, 0);
    uint8_t *v = p + XROW_HEADER, *nm = v + 8 * (size_t)l->ncols;
    for (uint32_t i = 0; i < l->ncols; i++) {
        uint64_t bits;
        memcpy(&bits, &row[l->cols[i]], sizeof bits);
        be64_put(v + 8 * (size_t)i, bits);
        char *dst = (char *)nm + 8 * (size_t)i;
        memset(dst, 0, 8);
        if (names) {
            const char *s = symtab_name(names, (uint16_t)(l->cols[i] + 1));
            size_t n = strnlen(s, 8);
            memcpy(dst, s, n);
        }
    }
    be32_put(p + 68, part_crc(p, l->bytes));
    return l->bytes;
}

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

int xrow_decode(const void *buf, size_t len, xrow_part_t *o, char *err, size_t errlen)
{
    const uint8_t *p = buf;
    if (len < XROW_HEADER)
        return bad(err, errlen,
                   "bar row part: %zu bytes, expected at least the %d-byte header (byte %zu: the "
                   "part ends)",
                   len, XROW_HEADER, len);
    if (memcmp(p, XROW_MAGIC, 4) != 0)
        return bad(err, errlen,
                   "bar row part: byte 0: expected the magic \"TKXR\", got %02x %02x %02x %02x",
                   p[0], p[1], p[2], p[3]);
    memset(o, 0, sizeof *o);
    o->version = be16_get(p + 4);
    if (o->version != XROW_VERSION)
        return bad(err, errlen, "bar row part: byte 4: expected version %d, got %u", XROW_VERSION,
                   o->version);
    uint16_t hdr = be16_get(p + 6);
    if (hdr != XROW_HEADER)
        return bad(err, errlen, "bar row part: byte 6: expected header size %d, got %u",
                   XROW_HEADER, hdr);
    o->shard = be16_get(p + 8);
    o->nshards = be16_get(p + 10);
    if (o->nshards == 0 || o->nshards > XROW_MAX_SHARDS)
        return bad(err, errlen, "bar row part: byte 10: expected a shard count 1..%d, got %u",
                   XROW_MAX_SHARDS, o->nshards);
    if (o->shard >= o->nshards)
        return bad(err, errlen, "bar row part: byte 8: expected a shard 0..%u, got %u",
                   o->nshards - 1u, o->shard);
    o->m = be32_get(p + 12);
    o->ncols = be32_get(p + 16);
    if (o->m == 0 || o->m > 65535)
        return bad(err, errlen, "bar row part: byte 12: expected 1..65535 matrix columns, got %u",
                   o->m);
    if (o->ncols > o->m)
        return bad(err, errlen,
                   "bar row part: byte 16: expected at most %u owned columns (m), got %u", o->m,
                   o->ncols);
    o->flags = be32_get(p + 20);
    if (o->flags & ~(uint32_t)XROW_TRADED)
        return bad(err, errlen, "bar row part: byte 20: unknown flag bits 0x%x (expected 0 or 1)",
                   o->flags);
    o->session = be64_get(p + 24);
    o->k = be64_get(p + 32);
    o->colset = be64_get(p + 40);
    o->seq = be64_get(p + 48);
    o->closed_ns = be64_get(p + 56);
    size_t want = XROW_HEADER + 16 * (size_t)o->ncols;
    uint32_t total = be32_get(p + 64);
    if (total != want)
        return bad(err, errlen,
                   "bar row part: byte 64: expected the total %zu (72 + 16 x %u columns), got %u",
                   want, o->ncols, total);
    if (len != want)
        return bad(err, errlen,
                   "bar row part: %zu bytes, expected %zu (72 + 16 x %u columns; byte %zu: %s)",
                   len, want, o->ncols, len < want ? len : want,
                   len < want ? "the part ends early" : "extra bytes");
    uint32_t crc = be32_get(p + 68), got = part_crc(p, len);
    if (crc != got)
        return bad(err, errlen,
                   "bar row part: byte 68: CRC32C 0x%08x does not match the part's 0x%08x "
                   "(corrupted in transit?)",
                   crc, got);
    o->values = p + XROW_HEADER;
    o->names = o->values + 8 * (size_t)o->ncols;
    return 0;
}

double xrow_value(const xrow_part_t *p, uint32_t i)
{
    uint64_t bits = be64_get(p->values + 8 * (size_t)i);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

const char *xrow_name(const xrow_part_t *p, uint32_t i, size_t *len)
{
    const char *s = (const char *)p->names + 8 * (size_t)i;
    if (len)
        *len = strnlen(s, 8);
    return s;
}
