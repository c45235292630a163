/*
 * byteorder: big-endian (network order) loads and stores of 2, 4, 6 and 8 bytes at any address,
 * the one copy for every wire and file format in the tree (ITCH, SoupBinTCP, MoldUDP64, the
 * journal, the generator). Each is a memcpy of the whole width plus a byte swap, which the
 * compiler turns into one unaligned load or store and a bswap/movbe: no alignment is assumed and
 * no strict-aliasing rule is broken. The 6-byte field (ITCH timestamps) is a 2-byte and a 4-byte
 * access. Pure functions, any thread; the caller checks the bounds.
 */
#ifndef TICKCORE_BASE_BYTEORDER_H
#define TICKCORE_BASE_BYTEORDER_H

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ && __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
#error "byteorder.h: unknown byte order"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BYTEORDER_SWAP16(v) __builtin_bswap16(v)
#define BYTEORDER_SWAP32(v) __builtin_bswap32(v)
#define BYTEORDER_SWAP64(v) __builtin_bswap64(v)
#else
#define BYTEORDER_SWAP16(v) (v)
#define BYTEORDER_SWAP32(v) (v)
#define BYTEORDER_SWAP64(v) (v)
#endif

static inline uint16_t be16_get(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return BYTEORDER_SWAP16(v);
}

static inline uint32_t be32_get(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return BYTEORDER_SWAP32(v);
}

/* The low 48 bits of the result; the top 16 are 0. */
static inline uint64_t be48_get(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)be16_get(b) << 32 | be32_get(b + 2);
}

static inline uint64_t be64_get(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return BYTEORDER_SWAP64(v);
}

static inline void be16_put(void *p, uint16_t v)
{
    v = BYTEORDER_SWAP16(v);
    memcpy(p, &v, sizeof v);
}

static inline void be32_put(void *p, uint32_t v)
{
    v = BYTEORDER_SWAP32(v);
    memcpy(p, &v, sizeof v);
}

/* Stores the low 48 bits of v; the top 16 are ignored. */
static inline void be48_put(void *p, uint64_t v)
{
    uint8_t *b = p;
    be16_put(b, (uint16_t)(v >> 32));
    be32_put(b + 2, (uint32_t)v);
}

static inline void be64_put(void *p, uint64_t v)
{
    v = BYTEORDER_SWAP64(v);
    memcpy(p, &v, sizeof v);
}

#endif
