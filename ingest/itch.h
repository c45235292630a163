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
 * offsets, message indices and error policy (stop, or itch_resync() and skip).
 */
#ifndef TICKCORE_INGEST_ITCH_H
#define TICKCORE_INGEST_ITCH_H

#include "event/event.h"
#include "event/symtab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ITCH_MAX_MSG 50   /* the longest message body (I, imbalance), type byte included */
#define ITCH_MAX_FRAME 52 /* with its 2-byte length prefix */

/* Body length (type byte included) of each ITCH 5.0 message type; 0 for an unknown type. */
extern const uint8_t itch_msg_len[256];

typedef enum itch_status {
    ITCH_OK = 0,          /* every whole message decoded; an incomplete tail may remain */
    ITCH_FULL,            /* the event array is full; call again from buf + consumed */
    ITCH_ERR_ZERO_LENGTH, /* a length prefix of 0 */
    ITCH_ERR_UNKNOWN_TYPE,
    ITCH_ERR_BAD_LENGTH, /* the length prefix differs from the type's fixed size */
} itch_status_t;

typedef struct itch_result {
    size_t consumed;      /* bytes of whole messages decoded, prefixes included */
    size_t n;             /* events written */
    itch_status_t status;
    /* When status is an error: the bad frame starts at buf + consumed. */
    uint16_t err_len;      /* its length prefix */
    uint16_t err_expected; /* the fixed size of its type (0 if the type is unknown) */
    uint8_t err_type;      /* its type byte (0 if the buffer ends before it) */
} itch_result_t;

/* Decode whole messages of buf[0..len) into out[0..max). */
void itch_decode_block(const uint8_t *buf, size_t len, ev_t *out, size_t max, itch_result_t *res);

/* Decode one message body (type byte first, len bytes, no prefix). 0 or an itch_status_t. */
int itch_decode(const uint8_t *msg, size_t len, ev_t *e);

/* --skip-bad: after a bad frame at buf[0], the offset (>= 1) of the next plausible frame
 * start: a prefix that matches its type's size, followed by further valid frames as far as
 * the buffer shows. If none is found, returns the length that can safely be dropped
 * (len - ITCH_MAX_FRAME*4, at least 1) unless at_eof, when it returns len. */
size_t itch_resync(const uint8_t *buf, size_t len, bool at_eof);

const char *itch_status_str(itch_status_t s);

/* Apply a stock directory event ('R') to the symbol table: locate -> symbol from e->raw.
 * Returns what symtab_set returns; 0 for any other event type. */
int itch_directory_apply(symtab_t *t, const ev_t *e);

#endif
