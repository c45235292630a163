/*
 * itch: NASDAQ TotalView-ITCH 5.0 framing and decoding, zero copy.
 *
 * Input is an ITCH BinaryFILE: each message is a 2-byte big-endian length followed by that many
 * bytes, the first being the message type. itch_decode_block() walks whole messages in a buffer,
 * checks each length against its type's fixed size (itch_msg_len), and fills normalized events
 * (event/event.h) straight from the buffer's big-endian fields; no allocation, no copy of the
 * message. It stops at the first bad frame and says where and what was expected, so the caller
 * keeps every event before it; at an incomplete tail it stops and reports how many bytes it
 * consumed, so the caller carries the tail over to the next buffer. The caller owns file
 * offsets, message indices and error policy (stop, or itch_resync() and skip). Fields follow
 * the table in event/event.h; the MWCB decline level (V, 8 decimals) is rounded half up to
 * 4 decimals. Events point into buf (ev_t.raw): they are valid while buf is.
 */
#ifndef TICKCORE_INGEST_ITCH_H
#define TICKCORE_INGEST_ITCH_H

#include "event/event.h"
#include "event/symtab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ITCH_MAX_MSG      50 /* the longest message body (I, imbalance), type byte included */
#define ITCH_MAX_FRAME    52 /* with its 2-byte length prefix */
#define ITCH_RESYNC_DEPTH 4  /* frames itch_resync checks after a candidate */

/* Body length (type byte included) of each ITCH 5.0 message type; 0 for an unknown type. */
extern const uint8_t itch_msg_len[256];

/* The name of an ITCH 5.0 message type for reports ("add order", "NOII"); NULL for a type the
 * specification does not have. A static string; any thread. */
const char *itch_msg_name(unsigned type);

typedef enum itch_status {
    ITCH_OK = 0,          /* every whole message decoded; an incomplete tail may remain */
    ITCH_FULL,            /* the event array is full; call again from buf + consumed */
    ITCH_ERR_ZERO_LENGTH, /* a length prefix of 0 */
    ITCH_ERR_UNKNOWN_TYPE,
    ITCH_ERR_BAD_LENGTH, /* the length prefix differs from the type's fixed size */
} itch_status_t;

typedef struct itch_result {
    size_t consumed; /* bytes of whole messages decoded, prefixes included */
    size_t n;        /* events written */
    itch_status_t status;
    /* When status is an error: the bad frame starts at buf + consumed. */
    uint16_t err_len;      /* its length prefix */
    uint16_t err_expected; /* the fixed size of its type (0 if the type is unknown) */
    uint8_t err_type;      /* its type byte (0 if the buffer ends before it) */
} itch_result_t;

/* Decode whole messages of buf[0..len) into out[0..max). Never reads outside buf[0..len),
 * never allocates; any thread (no state). res->status:
 *   ITCH_OK    every whole message was decoded; buf[consumed..len) is an incomplete tail whose
 *              prefix and type byte (as far as present) are valid, always < ITCH_MAX_FRAME
 *              bytes: the caller carries it over in front of the next read.
 *   ITCH_FULL  out is full (n == max) and at least 2 bytes remain: call again from
 *              buf + consumed.
 *   ITCH_ERR_* the frame at buf + consumed is bad; out[0..n) hold every message before it.
 *              err_len is its prefix, err_type the byte after the prefix (0 if the buffer
 *              ends first) and err_expected itch_msg_len[err_type]. A prefix of 0 is
 *              ITCH_ERR_ZERO_LENGTH whatever follows; a 2-byte tail whose prefix is 0 or
 *              over ITCH_MAX_MSG is already an error. */
void itch_decode_block(const uint8_t *buf, size_t len, ev_t *out, size_t max, itch_result_t *res);

/* itch_decode_block, and by_type[type byte] += 1 for each event written (the caller's
 * counters, added to, never cleared). */
void itch_decode_block_count(const uint8_t *buf, size_t len, ev_t *out, size_t max,
                             itch_result_t *res, uint64_t by_type[256]);

/* Decode one message body (type byte first, len bytes, no prefix) into *e. Returns ITCH_OK
 * (0) or the ITCH_ERR_* status that itch_decode_block would give the frame. */
int itch_decode(const uint8_t *msg, size_t len, ev_t *e);

/* --skip-bad: after a bad frame at buf[0], the offset (>= 1) of the next plausible frame
 * start: the first offset whose length prefix matches its type's size and whose next
 * ITCH_RESYNC_DEPTH (4) frames match too, as far as the buffer shows. A chain that runs into
 * the end of the buffer without a bad frame is accepted: the decoder stays the judge and
 * stops again if the frames there are bad, and the caller calls itch_resync again, so every
 * call drops at least one byte and a skip-bad loop always ends. Unless at_eof, the last one
 * or two bytes are never dropped (they may begin a frame continued by the next read), so
 * when nothing plausible is found the result is len - 2 (len - 1 when len is 2); at_eof it
 * is len. Returns <= len (1 when len is 1, 0 when len is 0). Reads buf[0..len) only; any
 * thread. */
size_t itch_resync(const uint8_t *buf, size_t len, bool at_eof);

/* What is wrong with the bad frame of r (status ITCH_ERR_*), with its type, prefix and the
 * expected length, into buf ("message type 'A' has length prefix 30, expected 36"). Any
 * thread. */
void itch_describe(const itch_result_t *r, char *buf, size_t len);

/* A static description of s, for messages ("zero length prefix", ...). */
const char *itch_status_str(itch_status_t s);

/* Apply a stock directory event ('R') to the symbol table: locate -> symbol from e->raw (the
 * 8-byte space-padded Stock field at offset 11; e->raw must still be valid). Returns what
 * symtab_set returns (0, -EINVAL, -ENOSPC, -EEXIST); 0 for any other event type; -EINVAL for
 * an 'R' event without its raw message. Ingest thread (it writes the table). */
int itch_directory_apply(symtab_t *t, const ev_t *e);

#endif
