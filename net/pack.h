/*
 * pack: many ITCH 5.0 messages in one NATS message, self-checking. The publisher (feed/natspub)
 * packs the messages of one shard's subject in file order; the shard's consumer
 * (server/natsin) checks and unpacks them. Pure functions over caller memory: no I/O, no
 * allocation.
 *
 * Layout (little-endian): a 40-byte header
 *     u32 magic "TCK2" | u32 count | u64 first_index | u64 first_local | u32 bytes | u32 0 |
 *     u64 XXH3-64 of the records, seeded with the XXH3-64 of the header's first 32 bytes
 * then count records: delta (LEB128, 1..5 bytes, a u32) | u8 len | len bytes of one ITCH message
 * (type byte first). ("TCK1" spent a u32 delta and a u16 length on every record: 6 bytes
 * beside a 29-byte average message; the deltas are small (about the shard count), so the record
 * is 2 bytes of overhead, 11% fewer bytes through nats-server, whose CPU is per byte.)
 * first_index is the file index (1-based: message N of the file) of the first message; a
 * record's delta is its index minus the previous record's (0 for the first), so every
 * message's file index is known. first_local is the shard-local index (1-based: the k-th
 * message put on this subject) of the first message: the consumer's sequence number, which is
 * what its journal counts, so a restarted shard skips exactly what it already has. pack_check
 * verifies everything (magic, sizes, that the records fill `bytes` exactly, count, each length
 * 1..PACK_MAX_MSG, the checksum) before any message is used, and names what is wrong and where.
 */
#ifndef TICKCORE_NET_PACK_H
#define TICKCORE_NET_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_MAGIC   0x324b4354u /* "TCK2" */
#define PACK_HEADER  40u
#define PACK_RECORD  6u   /* at most: a 5-byte delta + u8 len before each message */
#define PACK_MAX_MSG 255u /* ITCH 5.0 messages are at most 50 bytes */

typedef struct pack_builder {
    uint8_t *buf; /* the caller's, cap bytes (>= PACK_HEADER + PACK_RECORD + PACK_MAX_MSG) */
    size_t cap;
    size_t len; /* bytes used, header included */
    uint32_t count;
    uint64_t first_index, last_index, first_local;
} pack_builder_t;

/* Start an empty packet in buf (cap bytes) whose first message will be local index first_local. */
void pack_begin(pack_builder_t *b, uint8_t *buf, size_t cap, uint64_t first_local);
/* Append message `index` (> the previous one's) of len bytes (1..PACK_MAX_MSG). false when it
 * does not fit (the packet is unchanged: finish it and begin another). */
static inline bool pack_fits(const pack_builder_t *b, size_t len)
{
    return b->len + PACK_RECORD + len <= b->cap;
}
bool pack_add(pack_builder_t *b, uint64_t index, const uint8_t *msg, size_t len);
/* Write the header (count, sizes, checksum). Returns the packet's length (b->len). */
size_t pack_finish(pack_builder_t *b);

typedef struct pack_view {
    const uint8_t *p; /* the packet */
    size_t len;
    uint32_t count;
    uint64_t first_index, first_local, last_index;
    /* iteration */
    size_t off;
    uint32_t i;
    uint64_t index;
} pack_view_t;

/* Check a whole packet of len bytes. 0 with *v ready to iterate, or -EBADMSG with what is wrong
 * (and at which byte offset of the packet) in err. */
int pack_check(const uint8_t *p, size_t len, pack_view_t *v, char *err, size_t errlen);
/* The header alone (magic and fields, not the records: p may be the first PACK_HEADER bytes of
 * a longer packet): count, first_index and first_local in *v. 0 or -EBADMSG. */
int pack_peek(const uint8_t *p, size_t len, pack_view_t *v);
/* The next message of a checked packet: true with its file index, local index, bytes. */
bool pack_next(pack_view_t *v, uint64_t *index, uint64_t *local, const uint8_t **msg,
               uint16_t *len);

#endif
