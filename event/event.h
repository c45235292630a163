/*
 * event: the normalized market event, the one contract between ingest/ (which produces events)
 * and analytics/ (which consumes them). Neither includes the other; both include this header.
 * DESIGN.md asks for "a small shared event header"; it lives in its own folder, event/, with
 * the symbol table both sides name symbols through (event/symtab.h), so that the dependency
 * arrows stay engine -> {ingest, analytics} -> event -> mem.
 *
 * One event is one 64-byte cache line. The decoders fill it field by field straight from the
 * input buffer (zero copy: no intermediate message struct), and keep a pointer to the raw
 * message for the rare fields that have no slot here (a stock directory's flags, an imbalance
 * message's reference prices); that pointer is valid while the input buffer is held, that is,
 * for the batch. Units: prices are integers in 1/10,000 of a dollar (ITCH's 4 implied
 * decimals; MWCB levels, which ITCH gives with 8, are scaled to 4 by the decoder and the exact
 * value stays in the raw message); timestamps are nanoseconds (since midnight for ITCH, since
 * the Unix epoch for CSV); shares are whole shares.
 *
 * Types: ITCH 5.0 events keep their message type byte ('A', 'E', ...). CSV rows have their
 * own lower-case types, which ITCH does not use ('t' trade, 'q' quote). Field use per type:
 *
 *   type    ref           new_ref    match      price           shares      side  aux
 *   A, F    order ref     -          -          limit price     shares      B/S   (F: raw has MPID)
 *   E       order ref     -          match no.  -               executed    -     -
 *   C       order ref     -          match no.  execution price executed    -     printable Y/N
 *   X       order ref     -          -          -               cancelled   -     -
 *   D       order ref     -          -          -               -           -     -
 *   U       original ref  new ref    -          new price       new shares  -     -
 *   P       order ref     -          match no.  price           shares      B/S   -
 *   Q       -             -          match no.  cross price     shares      -     cross type
 *   B       -             -          match no.  -               -           -     -
 *   S       -             -          -          -               -           -     event code
 *   R       -             -          -          -               round lot   -     market category
 *   H       -             -          -          -               -           -     trading state
 *   Y       -             -          -          -               -           -     Reg SHO action
 *   L       -             -          -          -               -           -     primary MM
 *   V       -             -          -          level 1 (1e-4)  -           -     -
 *   W       -             -          -          -               -           -     breached level
 *   K       -             -          -          IPO price       -           -     qualifier
 *   J       -             -          -          ref price       -           -     -
 *   h       -             -          -          -               -           -     halt action
 *   I       -             -          -          ref price       paired      -     imbalance dir.
 *   N       -             -          -          -               -           -     RPI interest
 *   O       -             -          -          -               -           -     open eligibility
 *   t       -             -          -          trade price     size        B/S/0 -
 *   q       -             -          -          bid price       bid size    -     -
 *           (q: ref holds the ask price and new_ref the ask size; see ev_quote_ask*)
 */
#ifndef TICKCORE_EVENT_EVENT_H
#define TICKCORE_EVENT_EVENT_H

#include <assert.h>
#include <stdint.h>

/* Event types beyond ITCH's own message type bytes. */
enum {
    EV_CSV_TRADE = 't',
    EV_CSV_QUOTE = 'q',
};

/* Price scale: integer prices are in units of 1/EV_PRICE_SCALE dollars. */
#define EV_PRICE_SCALE 10000

typedef struct ev {
    uint64_t ts;        /* nanoseconds: since midnight (ITCH) or since the epoch (CSV) */
    uint64_t ref;       /* order reference number (see the table above) */
    uint64_t new_ref;   /* U: the new order reference number */
    uint64_t match;     /* match number (E, C, P, Q, B) */
    int64_t price;      /* 1/10,000 dollars */
    uint64_t shares;    /* whole shares */
    const uint8_t *raw; /* the message in the input buffer (type byte first); batch lifetime */
    uint16_t locate;    /* stock locate: the symbol's index in the symbol table; 0 = none */
    uint16_t tracking;  /* ITCH tracking number */
    uint8_t type;       /* ITCH message type byte, or EV_CSV_TRADE / EV_CSV_QUOTE */
    uint8_t side;       /* 'B' buy, 'S' sell, 0 unknown or not applicable */
    uint8_t aux;        /* per-type code byte, see the table */
    uint8_t raw_len;    /* length of the raw message (ITCH: <= 50), 0 for CSV */
} ev_t;

static_assert(sizeof(ev_t) == 64, "an event is one cache line");

/* CSV quotes: the ask side rides in ref/new_ref. */
static inline int64_t ev_quote_ask(const ev_t *e)
{
    return (int64_t)e->ref;
}
static inline uint64_t ev_quote_ask_size(const ev_t *e)
{
    return e->new_ref;
}

#endif
