/*
 * itch: see itch.h. Framing and decoding are one pass over the buffer, and the hot loop has
 * no branch that depends on the message type, because a branch per type (a switch) is
 * mispredicted on most messages of a real, mixed feed. Bounds are checked once per run of
 * frames, not per frame (no frame is longer than ITCH_MAX_FRAME, see decode_frames); inside a
 * run each frame costs one compare of its raw 2-byte prefix with its type's expected prefix
 * (zero, unknown and mismatched lengths fail the same compare), then a fixed sequence of
 * unaligned big-endian loads (memcpy + __builtin_bswap) whose offsets and masks come from a
 * per-type field map (ev_map below, the field table of event/event.h in the offsets of the
 * ITCH 5.0 specification: type byte at 0, stock locate at 1, tracking number at 3, 6-byte
 * timestamp at 5, message fields from 11), and eight 8-byte stores: the event's last word
 * (locate, tracking, type, side or aux, raw_len) is assembled in a register. Every event is
 * written whole, so fields a type does not use are 0 and events are reproducible byte for
 * byte (apart from raw). The MWCB decline level (V), whose 8-decimal price is rescaled, is
 * the one type with its own code: it fails the run loop's prefix compare (run_prefix) and goes
 * through the checked one-frame step, so the run loop has no per-type branch at all.
 * callgrind, bench_itch: 51 instructions per message (96 before the run loop and the
 * assembled last word). Nothing here allocates or keeps state: the caller owns buffers,
 * events, offsets and error policy.
 */
#include "ingest/itch.h"

#include "base/byteorder.h"
#include "base/hints.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Every message type of the ITCH 5.0 specification: type byte, length with the type byte,
 * the name the reports print. The one list; the tables below are built from it. */
#define ITCH_MESSAGES(X)                                                                           \
    X('S', 12, "system event")                                                                     \
    X('R', 39, "stock directory")                                                                  \
    X('H', 25, "stock trading action")                                                             \
    X('Y', 20, "Reg SHO restriction")                                                              \
    X('L', 26, "market participant position")                                                      \
    X('V', 35, "MWCB decline level")                                                               \
    X('W', 12, "MWCB status")                                                                      \
    X('K', 28, "IPO quoting period update")                                                        \
    X('J', 35, "LULD auction collar")                                                              \
    X('h', 21, "operational halt")                                                                 \
    X('A', 36, "add order")                                                                        \
    X('F', 40, "add order with MPID")                                                              \
    X('E', 31, "order executed")                                                                   \
    X('C', 36, "order executed with price")                                                        \
    X('X', 23, "order cancel")                                                                     \
    X('D', 19, "order delete")                                                                     \
    X('U', 35, "order replace")                                                                    \
    X('P', 44, "trade (non-cross)")                                                                \
    X('Q', 40, "cross trade")                                                                      \
    X('B', 19, "broken trade")                                                                     \
    X('I', 50, "NOII")                                                                             \
    X('N', 20, "retail price improvement")                                                         \
    X('O', 48, "direct listing with capital raise")

#define MSG_LEN(type, len, name) [type] = len,
const uint8_t itch_msg_len[256] = {ITCH_MESSAGES(MSG_LEN)};
#undef MSG_LEN

#define MSG_NAME(type, len, name) [type] = name,
static const char *const msg_name[256] = {ITCH_MESSAGES(MSG_NAME)};
#undef MSG_NAME

const char *itch_msg_name(unsigned type)
{
    return type < 256 ? msg_name[type] : NULL;
}

/* MWCB levels have 8 implied decimals; events carry 4. Rounded half up. */
static inline int64_t price8_to_4(uint64_t v)
{
    return (int64_t)(v / 10000u + (v % 10000u >= 5000u));
}

/* Where each event field comes from, per message type (the table in event/event.h), and the
 * frame check. The numeric fields are read without a branch on the type: an 8-byte big-endian
 * load of the window that ENDS at the field's last byte, masked to the field's width. Every
 * field starts at offset >= 11 and ends inside its message, so the window [end - 8, end) never
 * leaves the message; a field a type does not have reads p[0..8) with mask 0. No type has
 * both a side and an aux byte, so the one byte field is a byte load times byte_mul, which puts
 * it at its place in the event's last word (or makes it 0). `prefix` is the frame's 2-byte
 * length prefix as a native 16-bit load reads it (a valid prefix is 00 len, len <= 50), and
 * UINT32_MAX, which no 16-bit load equals, for a type the specification does not have: one
 * compare checks zero, unknown and wrong lengths at once. `tail` holds the constant part of
 * the event's last word (type byte and raw_len); locate, tracking and the byte field are or-ed
 * in. Entries are 128 bytes (the index is a shift) and the table is indexed by the whole type
 * byte. */
enum { F_REF, F_NEW_REF, F_MATCH, F_PRICE, F_SHARES, F_N };

typedef struct ev_map {
    _Alignas(128) uint64_t mask[F_N];
    uint64_t tail;       /* type and raw_len at their places in the event's last word */
    uint64_t byte_mul;   /* 0, or 1 << the byte's place in that word (side or aux) */
    uint32_t prefix;     /* see above */
    uint32_t run_prefix; /* the same, except UINT32_MAX for V: runs leave V to the checked step */
    uint8_t at[F_N];     /* offset of the 8-byte window */
    uint8_t byte_at;     /* offset of the byte field */
} ev_map_t;

static_assert(sizeof(ev_map_t) == 128, "a power of two: the index is a shift");

/* The event's last 8 bytes, read as one little-endian word: locate (16 bits), tracking (16),
 * type, side, aux, raw_len. */
static_assert(offsetof(ev_t, tracking) == offsetof(ev_t, locate) + 2 &&
                  offsetof(ev_t, type) == offsetof(ev_t, locate) + 4 &&
                  offsetof(ev_t, side) == offsetof(ev_t, locate) + 5 &&
                  offsetof(ev_t, aux) == offsetof(ev_t, locate) + 6 &&
                  offsetof(ev_t, raw_len) == offsetof(ev_t, locate) + 7,
              "locate..raw_len are 8 contiguous bytes");
#define TAIL_side    40 /* bit of each byte field in the event's last word */
#define TAIL_aux     48
#define TAIL(t, len) ((uint64_t)(t) << 32 | (uint64_t)(len) << 56)

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PREFIX(len) ((uint32_t)(len) << 8)
#else
#define PREFIX(len) ((uint32_t)(len))
#endif

#define WMASK(w)         (~0ull >> (64 - 8 * (w))) /* w = 4 or 8 bytes */
#define FIELD(i, off, w) .at[i] = (off) + (w)-8, .mask[i] = WMASK(w)
#define BYTE(f, off)     .byte_at = (off), .byte_mul = 1ull << TAIL_##f

/* Per-type fields; the prefixes and the tail are added from ITCH_MESSAGES (ev_map_build). */
static const ev_map_t map_fields['z'] = {
    ['A'] = {FIELD(F_REF, 11, 8), BYTE(side, 19), FIELD(F_SHARES, 20, 4), FIELD(F_PRICE, 32, 4)},
    ['F'] = {FIELD(F_REF, 11, 8), BYTE(side, 19), FIELD(F_SHARES, 20, 4), FIELD(F_PRICE, 32, 4)},
    ['E'] = {FIELD(F_REF, 11, 8), FIELD(F_SHARES, 19, 4), FIELD(F_MATCH, 23, 8)},
    ['C'] = {FIELD(F_REF, 11, 8), FIELD(F_SHARES, 19, 4), FIELD(F_MATCH, 23, 8), BYTE(aux, 31),
             FIELD(F_PRICE, 32, 4)},
    ['X'] = {FIELD(F_REF, 11, 8), FIELD(F_SHARES, 19, 4)},
    ['D'] = {FIELD(F_REF, 11, 8)},
    ['U'] = {FIELD(F_REF, 11, 8), FIELD(F_NEW_REF, 19, 8), FIELD(F_SHARES, 27, 4),
             FIELD(F_PRICE, 31, 4)},
    ['P'] = {FIELD(F_REF, 11, 8), BYTE(side, 19), FIELD(F_SHARES, 20, 4), FIELD(F_PRICE, 32, 4),
             FIELD(F_MATCH, 36, 8)},
    ['Q'] = {FIELD(F_SHARES, 11, 8), FIELD(F_PRICE, 27, 4), FIELD(F_MATCH, 31, 8), BYTE(aux, 39)},
    ['B'] = {FIELD(F_MATCH, 11, 8)},
    ['S'] = {BYTE(aux, 11)},                         /* event code */
    ['R'] = {BYTE(aux, 19), FIELD(F_SHARES, 21, 4)}, /* market category, round lot */
    ['H'] = {BYTE(aux, 19)},                         /* trading state */
    ['Y'] = {BYTE(aux, 19)},                         /* Reg SHO action */
    ['L'] = {BYTE(aux, 23)},                         /* primary market maker */
    ['V'] = {.byte_at = 0},                          /* price: see decode_body */
    ['W'] = {BYTE(aux, 11)},                         /* breached level */
    ['K'] = {BYTE(aux, 23), FIELD(F_PRICE, 24, 4)},  /* qualifier, IPO price */
    ['J'] = {FIELD(F_PRICE, 19, 4)},                 /* auction collar reference price */
    ['h'] = {BYTE(aux, 20)},                         /* operational halt action */
    ['I'] = {FIELD(F_SHARES, 11, 8), BYTE(aux, 27), FIELD(F_PRICE, 44, 4)}, /* paired, dir. */
    ['N'] = {BYTE(aux, 19)},                                                /* interest flag */
    ['O'] = {BYTE(aux, 19)}, /* open eligibility status */
};

/* The table the decoder reads: filled once from map_fields and ITCH_MESSAGES (a constructor,
 * before main: C has no constant expression that copies a struct and sets two members). */
static ev_map_t ev_map[256];

__attribute__((constructor)) static void ev_map_build(void)
{
    for (unsigned t = 0; t < 256; t++)
        ev_map[t].prefix = ev_map[t].run_prefix = UINT32_MAX;
#define MAP_SET(type, len, name)                                                                   \
    ev_map[type] = map_fields[type];                                                               \
    ev_map[type].prefix = PREFIX(len);                                                             \
    ev_map[type].run_prefix = (type) == 'V' ? UINT32_MAX : PREFIX(len);                            \
    ev_map[type].tail = TAIL(type, len);
    ITCH_MESSAGES(MAP_SET)
#undef MAP_SET
}

/* Decode one message of a known type whose length has been checked (len == itch_msg_len[*p],
 * d == &ev_map[*p], so every read below lies inside the message; the shortest message is 12
 * bytes, which covers the shared header's 8-byte load at offset 3). */
static HINT_INLINE void decode_body(const uint8_t *restrict p, const ev_map_t *restrict d,
                                    ev_t *restrict e, const bool run)
{
    /* All loads first, then the stores: e may alias p as far as C knows (uint8_t). */
    /* In a run the buffer holds ITCH_MAX_FRAME bytes from the frame, so the timestamp's window
     * may end a byte past a 12-byte message: one shift instead of a 48-bit mask. */
    const uint64_t ts = run ? be64_get(p + 5) >> 16 : be64_get(p + 3) & 0xffffffffffffull;
    const uint32_t lt = be32_get(p + 1); /* locate(2), tracking(2) */
    uint64_t f[F_N];
#pragma GCC unroll 8 /* F_N fixed loads, no loop */
    for (int i = 0; i < F_N; i++)
        f[i] = be64_get(p + d->at[i]) & d->mask[i];
    const uint64_t byte = p[d->byte_at] * d->byte_mul;        /* side or aux: no type has both */
    if (!run && unlikely(p[0] == 'V'))                        /* never in a run: see run_prefix */
        f[F_PRICE] = (uint64_t)price8_to_4(be64_get(p + 11)); /* MWCB level 1 */
    e->ts = ts;
    e->ref = f[F_REF];
    e->new_ref = f[F_NEW_REF];
    e->match = f[F_MATCH];
    e->price = (int64_t)f[F_PRICE];
    e->shares = f[F_SHARES];
    e->raw = p;
    const uint64_t tail = d->tail | (lt >> 16 | lt << 16) | byte; /* locate low */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy((uint8_t *)e + offsetof(ev_t, locate), &tail, sizeof tail); /* one store */
#else
    e->locate = (uint16_t)tail;
    e->tracking = (uint16_t)(tail >> 16);
    e->type = (uint8_t)(tail >> 32);
    e->side = (uint8_t)(tail >> TAIL_side);
    e->aux = (uint8_t)(tail >> TAIL_aux);
    e->raw_len = (uint8_t)(tail >> 56);
#endif
}

/* A frame failed the length check: say why. p is the frame (prefix first); avail >= 3. */
static HINT_COLD void frame_error(const uint8_t *p, uint16_t len, itch_result_t *res)
{
    const uint8_t t = p[2];
    res->err_len = len;
    res->err_type = t;
    res->err_expected = itch_msg_len[t];
    if (len == 0)
        res->status = ITCH_ERR_ZERO_LENGTH;
    else if (itch_msg_len[t] == 0)
        res->status = ITCH_ERR_UNKNOWN_TYPE;
    else
        res->status = ITCH_ERR_BAD_LENGTH;
}

/* The native 16-bit load the prefix check compares with ev_map[t].prefix. */
static inline uint32_t prefix_get(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The frame loop, shared by itch_decode_block and itch_decode_block_count: with count false
 * (a constant after inlining) the count store is compiled out. Counting here, while the type
 * byte is in a register, saves the caller a second pass over the events it just got.
 *
 * Bounds are checked per run, not per frame: no frame is longer than ITCH_MAX_FRAME, so the
 * next k = min(events left, bytes left / ITCH_MAX_FRAME) frames lie wholly inside the buffer
 * whatever their types, and the run loop checks only each frame's prefix against its type.
 * Runs repeat while a frame's worth of bytes is left; the last few frames, a V, a bad frame and
 * the incomplete tail go through the checked step below it, one frame at a time, and a run
 * starts again after it. The loop-carried
 * dependency is the next frame's address: p + 2 + p[1] (a valid prefix's high byte is 0), one
 * byte load and an add, without the byte swap. */
static HINT_INLINE void decode_frames(const uint8_t *restrict buf, size_t len, ev_t *restrict out,
                                      size_t max, itch_result_t *restrict res,
                                      uint64_t *restrict by_type, const bool count)
{
    size_t off = 0, n = 0;
    memset(res, 0, sizeof *res);
    res->status = ITCH_OK;
    for (;;) {
        size_t k = (len - off) / ITCH_MAX_FRAME;
        if (k > max - n)
            k = max - n;
        if (k > 0) {
            const uint8_t *p = buf + off;
            ev_t *e = out + n, *const stop = e + k;
            do {
                const unsigned t = p[2];
                const ev_map_t *d = &ev_map[t];
                if (unlikely(prefix_get(p) != d->run_prefix))
                    break; /* a bad frame, or a V: the checked step below */
                decode_body(p + 2, d, e, true);
                if (count)
                    by_type[t]++;
                p += 2 + (size_t)p[1];
                e++;
            } while (e != stop);
            off = (size_t)(p - buf);
            const size_t done = (size_t)(e - (out + n));
            n += done;
            if (done == k)
                continue;
        }
        /* One frame, every bound checked: the tail of the buffer, a V, or a bad frame. */
        if (n == max)
            break;
        const size_t rem = len - off;
        const uint8_t *p = buf + off;
        if (unlikely(rem < 3)) {
            /* A prefix alone can still be judged: 0 or longer than any message is bad. */
            if (rem == 2 && (be16_get(p) == 0 || be16_get(p) > ITCH_MAX_MSG)) {
                res->err_len = be16_get(p);
                res->status = be16_get(p) == 0 ? ITCH_ERR_ZERO_LENGTH : ITCH_ERR_BAD_LENGTH;
            }
            goto done;
        }
        const unsigned ml = be16_get(p);
        if (unlikely(prefix_get(p) != ev_map[p[2]].prefix)) {
            frame_error(p, (uint16_t)ml, res);
            goto done;
        }
        if (unlikely(rem - 2 < ml))
            goto done; /* incomplete tail: the caller carries it over */
        if (count)
            by_type[p[2]]++;
        decode_body(p + 2, &ev_map[p[2]], &out[n++], false);
        off += 2 + ml;
    }
    if (len - off >= 2)
        res->status = ITCH_FULL;
done:
    res->consumed = off;
    res->n = n;
}

void itch_decode_block(const uint8_t *buf, size_t len, ev_t *out, size_t max, itch_result_t *res)
{
    decode_frames(buf, len, out, max, res, NULL, false);
}

void itch_decode_block_count(const uint8_t *buf, size_t len, ev_t *out, size_t max,
                             itch_result_t *res, uint64_t by_type[256])
{
    decode_frames(buf, len, out, max, res, by_type, true);
}

int itch_decode(const uint8_t *msg, size_t len, ev_t *e)
{
    if (len == 0)
        return ITCH_ERR_ZERO_LENGTH;
    if (itch_msg_len[msg[0]] == 0)
        return ITCH_ERR_UNKNOWN_TYPE;
    if (len != itch_msg_len[msg[0]])
        return ITCH_ERR_BAD_LENGTH;
    decode_body(msg, &ev_map[msg[0]], e, false);
    return ITCH_OK;
}

/* Does buf[pos..len) start a frame whose length matches its type? 1 yes, and the whole frame
 * is in the buffer; 0 no; -1 cannot tell (fewer than 3 bytes left); -2 the prefix and type
 * agree but the frame ends past the buffer. */
static int frame_check(const uint8_t *buf, size_t len, size_t pos)
{
    if (len - pos < 3)
        return -1;
    const unsigned ml = be16_get(buf + pos);
    if (ml == 0 || ml != itch_msg_len[buf[pos + 2]])
        return 0;
    return len - pos - 2 < ml ? -2 : 1;
}

size_t itch_resync(const uint8_t *buf, size_t len, bool at_eof)
{
    for (size_t o = 1; o < len; o++) {
        int r = frame_check(buf, len, o);
        if (r == 0)
            continue;
        if (r == -1) /* the last one or two bytes: a frame can only start here if more come */
            return at_eof ? len : o;
        /* Follow the chain: accept unless a frame within ITCH_RESYNC_DEPTH is bad; a chain
         * that runs into the end of the buffer has shown nothing against it. */
        size_t pos = o;
        for (int depth = 0; r == 1 && depth < ITCH_RESYNC_DEPTH; depth++) {
            pos += 2 + (size_t)itch_msg_len[buf[pos + 2]];
            r = frame_check(buf, len, pos);
        }
        if (r != 0)
            return o;
    }
    return at_eof || len == 0 ? len : 1; /* len <= 1 */
}

const char *itch_status_str(itch_status_t s)
{
    switch (s) {
    case ITCH_OK:
        return "ok";
    case ITCH_FULL:
        return "event array full";
    case ITCH_ERR_ZERO_LENGTH:
        return "zero length prefix";
    case ITCH_ERR_UNKNOWN_TYPE:
        return "unknown message type";
    case ITCH_ERR_BAD_LENGTH:
        return "length prefix does not match the message type";
    }
    return "unknown status";
}

void itch_describe(const itch_result_t *r, char *buf, size_t len)
{
    unsigned t = r->err_type;
    char c = t >= 0x20 && t < 0x7f ? (char)t : '?';
    switch (r->status) {
    case ITCH_ERR_ZERO_LENGTH:
        snprintf(buf, len, "zero-length message (length prefix 0)");
        break;
    case ITCH_ERR_UNKNOWN_TYPE:
        snprintf(buf, len,
                 "unknown message type 0x%02x ('%c') with length prefix %u; expected one of "
                 "the ITCH 5.0 types SRHYLVWKJhAFECXDUPQBINO",
                 t, c, r->err_len);
        break;
    default:
        snprintf(buf, len, "message type '%c' has length prefix %u, expected %u", c, r->err_len,
                 r->err_expected);
        break;
    }
}

int itch_directory_apply(symtab_t *t, const ev_t *e)
{
    if (e->type != 'R')
        return 0;
    if (e->raw == NULL || e->raw_len < 19)
        return -EINVAL;
    return symtab_set(t, e->locate, (const char *)e->raw + 11, 8);
}
