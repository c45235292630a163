/*
 * test_itch_diff: the ITCH 5.0 decoder (ingest/itch) against a naive reference decoder written
 * here from the NASDAQ TotalView-ITCH 5.0 specification, on real NASDAQ data, on a generated day
 * and on hostile framing. The reference reads each message the textbook way: a cursor walks the
 * specification's field list of the message type in order, one big-endian field at a time, into
 * a struct with one named member per specification field; the message length of a type is where
 * that walk ends (no length table is written down, and none is taken from the engine). A second
 * step maps the specification fields to the event as the table in event/event.h asks, every
 * event field (unused ones 0). A reference framer walks the BinaryFILE (2-byte big-endian
 * length, then the message) and says where a stream ends: clean, in an incomplete final message,
 * or at a bad frame (zero length, unknown type, length not the type's), with its byte offset.
 * The engine is driven as a reader drives it: the stream fed in chunks (split at every byte
 * position, fixed sizes, random sizes) with the incomplete tail carried over, event arrays of
 * 1..many slots (ITCH_FULL), the counting and the plain entry points; bytes past each buffer
 * poisoned for ASan and valgrind. Every event must equal the reference's, field by field, with
 * raw pointing at its message in the buffer handed in; the decoder must stop at the reference's
 * byte offset with the error the bytes it was shown call for. The generated day is written by
 * sim/gen into a temporary file and removed. Runs in about a second; smaller under valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "ingest/itch.h"
#include "mem/mem.h"
#include "mem/sanitize.h"
#include "sim/gen.h"
#include "tests/support/leftover.h"
#include "tests/support/testdata.h"
#include "tests/support/xorshift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

static bool small_mode(void)
{
    return RUNNING_ON_VALGRIND || getenv("TICKCORE_TEST_SMALL") != NULL;
}

/* ---- the reference: the specification's messages, field by field ------------------------- */

/* Every field of every ITCH 5.0 message, by its specification name. Prices are the spec's
 * Price(4) (4 implied decimals) except the MWCB levels, Price(8) (8 implied decimals). */
typedef struct spec_msg {
    uint8_t message_type;
    uint16_t stock_locate, tracking_number;
    uint64_t timestamp; /* 6 bytes, ns since midnight */
    uint8_t event_code;
    char stock[8];
    uint8_t market_category, financial_status_indicator;
    uint32_t round_lot_size;
    uint8_t round_lots_only, issue_classification;
    char issue_sub_type[2];
    uint8_t authenticity, short_sale_threshold_indicator, ipo_flag, luld_reference_price_tier;
    uint8_t etp_flag;
    uint32_t etp_leverage_factor;
    uint8_t inverse_indicator;
    uint8_t trading_state, reserved;
    char reason[4];
    uint8_t reg_sho_action;
    char mpid[4];
    uint8_t primary_market_maker, market_maker_mode, market_participant_state;
    uint64_t level_1, level_2, level_3; /* Price(8) */
    uint8_t breached_level;
    uint32_t ipo_quotation_release_time;
    uint8_t ipo_quotation_release_qualifier;
    uint32_t ipo_price;
    uint32_t auction_collar_reference_price, upper_auction_collar_price;
    uint32_t lower_auction_collar_price, auction_collar_extension;
    uint8_t market_code, operational_halt_action;
    uint64_t order_reference_number;
    uint8_t buy_sell_indicator;
    uint32_t shares; /* A, F, U, P */
    uint32_t price;  /* A, F, U, P */
    char attribution[4];
    uint32_t executed_shares;
    uint64_t match_number;
    uint8_t printable;
    uint32_t execution_price;
    uint32_t cancelled_shares;
    uint64_t original_order_reference_number, new_order_reference_number;
    uint64_t cross_shares; /* Q: 8 bytes */
    uint32_t cross_price;
    uint8_t cross_type;
    uint64_t paired_shares, imbalance_shares;
    uint8_t imbalance_direction;
    uint32_t far_price, near_price, current_reference_price;
    uint8_t price_variation_indicator;
    uint8_t interest_flag;
    uint8_t open_eligibility_status;
    uint32_t minimum_allowable_price, maximum_allowable_price, near_execution_price;
    uint64_t near_execution_time;
    uint32_t lower_price_range_collar, upper_price_range_collar;
} spec_msg_t;

static const char all_types[] = "SRHYLVWKJhAFECXDUPQBINO"; /* the 23 of the specification */
#define N_TYPES (sizeof all_types - 1)

/* A cursor over one message: reads a field and moves past it. */
typedef struct cursor {
    const uint8_t *p;
    size_t pos;
} cursor_t;

static uint64_t be(cursor_t *c, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 256 + c->p[c->pos + i];
    c->pos += n;
    return v;
}
static uint8_t u8(cursor_t *c)
{
    return (uint8_t)be(c, 1);
}
static uint16_t u16(cursor_t *c)
{
    return (uint16_t)be(c, 2);
}
static uint32_t u32(cursor_t *c)
{
    return (uint32_t)be(c, 4);
}
static uint64_t u48(cursor_t *c)
{
    return be(c, 6);
}
static uint64_t u64(cursor_t *c)
{
    return be(c, 8);
}
static void alpha(cursor_t *c, char *dst, size_t n)
{
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
}

/* Parse the message at p (type byte first; p must hold the whole message: callers give at
 * least 64 readable bytes or a checked length) into m. Returns the message's length by the
 * specification (where the walk ends), or 0 for a type the specification does not have. */
static size_t spec_parse(const uint8_t *p, spec_msg_t *m)
{
    memset(m, 0, sizeof *m);
    cursor_t c = {p, 0};
    m->message_type = u8(&c);
    if (m->message_type == 0 || strchr(all_types, m->message_type) == NULL)
        return 0;
    m->stock_locate = u16(&c);
    m->tracking_number = u16(&c);
    m->timestamp = u48(&c);
    switch (m->message_type) {
    case 'S': /* 1.1 System Event */
        m->event_code = u8(&c);
        break;
    case 'R': /* 1.2.1 Stock Directory */
        alpha(&c, m->stock, 8);
        m->market_category = u8(&c);
        m->financial_status_indicator = u8(&c);
        m->round_lot_size = u32(&c);
        m->round_lots_only = u8(&c);
        m->issue_classification = u8(&c);
        alpha(&c, m->issue_sub_type, 2);
        m->authenticity = u8(&c);
        m->short_sale_threshold_indicator = u8(&c);
        m->ipo_flag = u8(&c);
        m->luld_reference_price_tier = u8(&c);
        m->etp_flag = u8(&c);
        m->etp_leverage_factor = u32(&c);
        m->inverse_indicator = u8(&c);
        break;
    case 'H': /* 1.2.2 Stock Trading Action */
        alpha(&c, m->stock, 8);
        m->trading_state = u8(&c);
        m->reserved = u8(&c);
        alpha(&c, m->reason, 4);
        break;
    case 'Y': /* 1.2.3 Reg SHO Short Sale Price Test Restricted Indicator */
        alpha(&c, m->stock, 8);
        m->reg_sho_action = u8(&c);
        break;
    case 'L': /* 1.2.4 Market Participant Position */
        alpha(&c, m->mpid, 4);
        alpha(&c, m->stock, 8);
        m->primary_market_maker = u8(&c);
        m->market_maker_mode = u8(&c);
        m->market_participant_state = u8(&c);
        break;
    case 'V': /* 1.2.5.1 MWCB Decline Level */
        m->level_1 = u64(&c);
        m->level_2 = u64(&c);
        m->level_3 = u64(&c);
        break;
    case 'W': /* 1.2.5.2 MWCB Status */
        m->breached_level = u8(&c);
        break;
    case 'K': /* 1.2.6 IPO Quoting Period Update */
        alpha(&c, m->stock, 8);
        m->ipo_quotation_release_time = u32(&c);
        m->ipo_quotation_release_qualifier = u8(&c);
        m->ipo_price = u32(&c);
        break;
    case 'J': /* 1.2.7 LULD Auction Collar */
        alpha(&c, m->stock, 8);
        m->auction_collar_reference_price = u32(&c);
        m->upper_auction_collar_price = u32(&c);
        m->lower_auction_collar_price = u32(&c);
        m->auction_collar_extension = u32(&c);
        break;
    case 'h': /* 1.2.8 Operational Halt */
        alpha(&c, m->stock, 8);
        m->market_code = u8(&c);
        m->operational_halt_action = u8(&c);
        break;
    case 'A': /* 1.3.1 Add Order, no MPID attribution */
    case 'F': /* 1.3.2 Add Order with MPID attribution */
        m->order_reference_number = u64(&c);
        m->buy_sell_indicator = u8(&c);
        m->shares = u32(&c);
        alpha(&c, m->stock, 8);
        m->price = u32(&c);
        if (m->message_type == 'F')
            alpha(&c, m->attribution, 4);
        break;
    case 'E': /* 1.4.1 Order Executed */
        m->order_reference_number = u64(&c);
        m->executed_shares = u32(&c);
        m->match_number = u64(&c);
        break;
    case 'C': /* 1.4.2 Order Executed With Price */
        m->order_reference_number = u64(&c);
        m->executed_shares = u32(&c);
        m->match_number = u64(&c);
        m->printable = u8(&c);
        m->execution_price = u32(&c);
        break;
    case 'X': /* 1.4.3 Order Cancel */
        m->order_reference_number = u64(&c);
        m->cancelled_shares = u32(&c);
        break;
    case 'D': /* 1.4.4 Order Delete */
        m->order_reference_number = u64(&c);
        break;
    case 'U': /* 1.4.5 Order Replace */
        m->original_order_reference_number = u64(&c);
        m->new_order_reference_number = u64(&c);
        m->shares = u32(&c);
        m->price = u32(&c);
        break;
    case 'P': /* 1.5.1 Trade Message (Non-Cross) */
        m->order_reference_number = u64(&c);
        m->buy_sell_indicator = u8(&c);
        m->shares = u32(&c);
        alpha(&c, m->stock, 8);
        m->price = u32(&c);
        m->match_number = u64(&c);
        break;
    case 'Q': /* 1.5.2 Cross Trade */
        m->cross_shares = u64(&c);
        alpha(&c, m->stock, 8);
        m->cross_price = u32(&c);
        m->match_number = u64(&c);
        m->cross_type = u8(&c);
        break;
    case 'B': /* 1.5.3 Broken Trade / Order Execution */
        m->match_number = u64(&c);
        break;
    case 'I': /* 1.6 Net Order Imbalance Indicator (NOII) */
        m->paired_shares = u64(&c);
        m->imbalance_shares = u64(&c);
        m->imbalance_direction = u8(&c);
        alpha(&c, m->stock, 8);
        m->far_price = u32(&c);
        m->near_price = u32(&c);
        m->current_reference_price = u32(&c);
        m->cross_type = u8(&c);
        m->price_variation_indicator = u8(&c);
        break;
    case 'N': /* 1.7 Retail Price Improvement Indicator (RPII) */
        alpha(&c, m->stock, 8);
        m->interest_flag = u8(&c);
        break;
    case 'O': /* 1.8 Direct Listing with Capital Raise Price Discovery */
        alpha(&c, m->stock, 8);
        m->open_eligibility_status = u8(&c);
        m->minimum_allowable_price = u32(&c);
        m->maximum_allowable_price = u32(&c);
        m->near_execution_price = u32(&c);
        m->near_execution_time = u64(&c);
        m->lower_price_range_collar = u32(&c);
        m->upper_price_range_collar = u32(&c);
        break;
    }
    return c.pos;
}

static size_t g_spec_len[256]; /* by type byte: where spec_parse's walk ends; 0 unknown */
static size_t g_spec_max;      /* the longest message */

static void spec_lengths(void)
{
    uint8_t zero[64] = {0};
    spec_msg_t m;
    g_spec_max = 0;
    for (unsigned t = 0; t < 256; t++) {
        zero[0] = (uint8_t)t;
        g_spec_len[t] = spec_parse(zero, &m);
        if (g_spec_len[t] > g_spec_max)
            g_spec_max = g_spec_len[t];
    }
}

/* Price(8) to the event's 4 decimals, rounded half up (event/event.h, ingest/itch.h). */
static int64_t price8_to_4(uint64_t v)
{
    uint64_t q = v / 10000, r = v % 10000;
    return (int64_t)(r >= 5000 ? q + 1 : q);
}

/* The event of a parsed message, from the table in event/event.h. raw: the message. */
static void spec_event(const spec_msg_t *m, const uint8_t *raw, size_t len, ev_t *e)
{
    memset(e, 0, sizeof *e);
    e->type = m->message_type;
    e->locate = m->stock_locate;
    e->tracking = m->tracking_number;
    e->ts = m->timestamp;
    e->raw = raw;
    e->raw_len = (uint8_t)len;
    switch (m->message_type) {
    case 'A':
    case 'F':
        e->ref = m->order_reference_number;
        e->price = m->price;
        e->shares = m->shares;
        e->side = m->buy_sell_indicator;
        break;
    case 'E':
        e->ref = m->order_reference_number;
        e->match = m->match_number;
        e->shares = m->executed_shares;
        break;
    case 'C':
        e->ref = m->order_reference_number;
        e->match = m->match_number;
        e->price = m->execution_price;
        e->shares = m->executed_shares;
        e->aux = m->printable;
        break;
    case 'X':
        e->ref = m->order_reference_number;
        e->shares = m->cancelled_shares;
        break;
    case 'D':
        e->ref = m->order_reference_number;
        break;
    case 'U':
        e->ref = m->original_order_reference_number;
        e->new_ref = m->new_order_reference_number;
        e->price = m->price;
        e->shares = m->shares;
        break;
    case 'P':
        e->ref = m->order_reference_number;
        e->match = m->match_number;
        e->price = m->price;
        e->shares = m->shares;
        e->side = m->buy_sell_indicator;
        break;
    case 'Q':
        e->match = m->match_number;
        e->price = m->cross_price;
        e->shares = m->cross_shares;
        e->aux = m->cross_type;
        break;
    case 'B':
        e->match = m->match_number;
        break;
    case 'S':
        e->aux = m->event_code;
        break;
    case 'R':
        e->shares = m->round_lot_size;
        e->aux = m->market_category;
        break;
    case 'H':
        e->aux = m->trading_state;
        break;
    case 'Y':
        e->aux = m->reg_sho_action;
        break;
    case 'L':
        e->aux = m->primary_market_maker;
        break;
    case 'V':
        e->price = price8_to_4(m->level_1);
        break;
    case 'W':
        e->aux = m->breached_level;
        break;
    case 'K':
        e->price = m->ipo_price;
        e->aux = m->ipo_quotation_release_qualifier;
        break;
    case 'J':
        e->price = m->auction_collar_reference_price;
        break;
    case 'h':
        e->aux = m->operational_halt_action;
        break;
    case 'I':
        e->price = m->current_reference_price;
        e->shares = m->paired_shares;
        e->aux = m->imbalance_direction;
        break;
    case 'N':
        e->aux = m->interest_flag;
        break;
    case 'O':
        e->aux = m->open_eligibility_status;
        break;
    }
}

/* ---- the reference framer ------------------------------------------------------------------ */

enum { J_PENDING, J_GOOD, J_BAD }; /* judgement of a frame from the bytes shown */

typedef struct judge {
    int verdict;
    itch_status_t status; /* J_BAD */
    unsigned len, type, expected;
} judge_t;

/* Judge the frame at p from the avail bytes shown (the BinaryFILE rules and the error contract
 * of ingest/itch.h: a prefix of 0 is bad whatever follows; a prefix longer than any message is
 * bad as soon as it is seen; otherwise the type byte decides). */
static judge_t frame_judge(const uint8_t *p, size_t avail)
{
    judge_t j = {J_PENDING, ITCH_OK, 0, 0, 0};
    if (avail < 2)
        return j;
    unsigned len = (unsigned)p[0] << 8 | p[1];
    if (avail == 2) {
        if (len == 0 || len > g_spec_max)
            j = (judge_t){J_BAD, len == 0 ? ITCH_ERR_ZERO_LENGTH : ITCH_ERR_BAD_LENGTH, len, 0, 0};
        return j;
    }
    unsigned t = p[2], want = (unsigned)g_spec_len[t];
    j.len = len, j.type = t, j.expected = want;
    if (len == 0)
        j.verdict = J_BAD, j.status = ITCH_ERR_ZERO_LENGTH;
    else if (want == 0)
        j.verdict = J_BAD, j.status = ITCH_ERR_UNKNOWN_TYPE;
    else if (len != want)
        j.verdict = J_BAD, j.status = ITCH_ERR_BAD_LENGTH;
    else if (avail >= 2 + (size_t)len)
        j.verdict = J_GOOD;
    return j;
}

enum { END_CLEAN, END_TAIL, END_BAD };

/* What the reference makes of a whole stream. */
typedef struct ref {
    ev_t *ev;    /* [cap] events, raw into the stream */
    size_t *off; /* [cap] byte offset of each event's frame */
    size_t n, cap;
    int end;     /* END_* */
    size_t at;   /* END_TAIL, END_BAD: offset of the incomplete or bad frame; else len */
    judge_t bad; /* END_BAD: judged with every byte to the end of the stream */
    uint64_t by_type[256];
} ref_t;

static void ref_init(ref_t *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->ev = mem_alloc(MEM_TAG_TEST, cap * sizeof *r->ev);
    r->off = mem_alloc(MEM_TAG_TEST, cap * sizeof *r->off);
    assert_non_null(r->ev);
    assert_non_null(r->off);
}

static void ref_fini(ref_t *r)
{
    mem_free(MEM_TAG_TEST, r->ev, r->cap * sizeof *r->ev);
    mem_free(MEM_TAG_TEST, r->off, r->cap * sizeof *r->off);
}

static void ref_decode(ref_t *r, const uint8_t *s, size_t len)
{
    r->n = 0;
    memset(r->by_type, 0, sizeof r->by_type);
    size_t off = 0;
    for (;;) {
        if (off == len) {
            r->end = END_CLEAN, r->at = len;
            return;
        }
        judge_t j = frame_judge(s + off, len - off);
        if (j.verdict == J_BAD) {
            r->end = END_BAD, r->at = off, r->bad = j;
            return;
        }
        if (j.verdict == J_PENDING) {
            r->end = END_TAIL, r->at = off;
            return;
        }
        assert_true(r->n < r->cap);
        spec_msg_t m;
        size_t l = spec_parse(s + off + 2, &m);
        assert_int_equal(l, j.len);
        spec_event(&m, s + off + 2, l, &r->ev[r->n]);
        r->off[r->n++] = off;
        r->by_type[s[off + 2]]++;
        off += 2 + l;
    }
}

/* ---- driving the engine as a reader does --------------------------------------------------- */

#define FAILF(...) fail_msg(__VA_ARGS__)

/* got (from the engine) against want (the reference) for message k at stream offset off. */
static void ev_check(const ev_t *got, const ev_t *want, size_t k, size_t off)
{
#define CHECK_FIELD(f)                                                                             \
    if ((uint64_t)got->f != (uint64_t)want->f)                                                     \
    FAILF("message %zu (type '%c', stream offset %zu): " #f " %llu, reference %llu", k,            \
          want->type, off, (unsigned long long)got->f, (unsigned long long)want->f)
    CHECK_FIELD(type);
    CHECK_FIELD(ts);
    CHECK_FIELD(ref);
    CHECK_FIELD(new_ref);
    CHECK_FIELD(match);
    CHECK_FIELD(price);
    CHECK_FIELD(shares);
    CHECK_FIELD(locate);
    CHECK_FIELD(tracking);
    CHECK_FIELD(side);
    CHECK_FIELD(aux);
    CHECK_FIELD(raw_len);
#undef CHECK_FIELD
}

/* Chunk sizes of a drive: fixed, split once at a byte, or pseudo-random. */
typedef struct chunker {
    enum { CH_FIXED, CH_SPLIT, CH_RANDOM } kind;
    size_t size;   /* CH_FIXED: bytes per chunk; CH_SPLIT: the first chunk; CH_RANDOM: max */
    uint64_t seed; /* CH_RANDOM */
} chunker_t;

static size_t chunk_next(chunker_t *c, size_t i, size_t left)
{
    size_t want;
    if (c->kind == CH_FIXED)
        want = c->size;
    else if (c->kind == CH_SPLIT)
        want = i == 0 ? c->size : left;
    else {
        c->seed = c->seed * 6364136223846793005ull + 1442695040888963407ull;
        want = 1 + (size_t)(c->seed >> 33) % c->size;
    }
    return want < left ? want : left;
}

#define SCRATCH_CAP (1u << 20) /* the largest chunk plus a carried tail */
#define GUARD       64         /* poisoned bytes after the data handed to the decoder */
#define EV_CAP      4096

static uint8_t *g_scratch; /* [SCRATCH_CAP + GUARD] */
static ev_t g_ev[EV_CAP];

/* Feed s[0..len) to the decoder in the chunker's chunks, at most max events per call, with
 * the incomplete tail carried over to the front of the next buffer; check every event, the
 * counts, and how and where the stream ends, against the reference r. */
static void drive(const uint8_t *s, size_t len, chunker_t ch, size_t max, bool count,
                  const ref_t *r)
{
    assert_true(max >= 1 && max <= EV_CAP);
    size_t base = 0, have = 0, fed = 0, n = 0, calls = 0;
    uint64_t by_type[256] = {0};
    int end = END_CLEAN;
    itch_result_t res = {0};
    size_t avail_at_error = 0;
    for (size_t i = 0;; i++) {
        size_t c = chunk_next(&ch, i, len - fed);
        assert_true(have + c <= SCRATCH_CAP);
        memcpy(g_scratch + have, s + fed, c);
        have += c, fed += c;
        size_t pos = 0;
        for (;;) {
            /* Nothing past the data may be read (ASan and valgrind see it). */
            mem_poison(g_scratch + have, GUARD);
            assert_int_not_equal(mem_poisoned(g_scratch + have), 0); /* -1: no tool watching */
            if (count)
                itch_decode_block_count(g_scratch + pos, have - pos, g_ev, max, &res, by_type);
            else
                itch_decode_block(g_scratch + pos, have - pos, g_ev, max, &res);
            mem_unpoison(g_scratch + have, GUARD);
            calls++;
            assert_true(res.n <= max);
            assert_true(res.consumed <= have - pos);
            for (size_t k = 0; k < res.n; k++, n++) {
                if (n >= r->n)
                    FAILF("event %zu beyond the reference's %zu (stream offset %zu)", n, r->n,
                          base + pos);
                size_t at = r->off[n] - base; /* the frame's place in the scratch buffer */
                ev_check(&g_ev[k], &r->ev[n], n, r->off[n]);
                if (g_ev[k].raw != g_scratch + at + 2)
                    FAILF("message %zu: raw at buffer offset %td, expected %zu", n,
                          g_ev[k].raw - g_scratch, at + 2);
            }
            pos += res.consumed;
            if (n < r->n && r->off[n] != base + pos)
                FAILF("after %zu events the decoder stands at stream offset %zu, the next "
                      "frame is at %zu",
                      n, base + pos, r->off[n]);
            if (res.status == ITCH_FULL) {
                assert_int_equal(res.n, max);
                assert_true(have - pos >= 2);
                continue;
            }
            break;
        }
        if (res.status != ITCH_OK) {
            end = END_BAD;
            base += pos;
            avail_at_error = have - pos;
            break;
        }
        memmove(g_scratch, g_scratch + pos, have - pos);
        base += pos, have -= pos;
        if (have >= ITCH_MAX_FRAME)
            FAILF("a tail of %zu bytes left at stream offset %zu", have, base);
        if (fed == len) {
            end = have == 0 ? END_CLEAN : END_TAIL;
            break;
        }
    }
    if (n != r->n)
        FAILF("%zu events, the reference %zu", n, r->n);
    if (end != r->end)
        FAILF("stream ends %s at offset %zu, the reference %s at %zu",
              end == END_BAD    ? "bad"
              : end == END_TAIL ? "in a tail"
                                : "clean",
              base,
              r->end == END_BAD    ? "bad"
              : r->end == END_TAIL ? "in a tail"
                                   : "clean",
              r->at);
    if (base != r->at)
        FAILF("stream ends at offset %zu, the reference at %zu", base, r->at);
    if (end == END_BAD) {
        /* The error the bytes shown to the decoder call for (all of them when the frame was
         * whole in the buffer; a read may have ended after its prefix). */
        judge_t j = frame_judge(s + base, avail_at_error);
        assert_int_equal(j.verdict, J_BAD);
        if (res.status != j.status || res.err_len != j.len || res.err_type != j.type ||
            res.err_expected != j.expected)
            FAILF("bad frame at offset %zu (%zu bytes shown): status %d len %u type 0x%02x "
                  "expected %u; reference status %d len %u type 0x%02x expected %u",
                  base, avail_at_error, (int)res.status, res.err_len, res.err_type,
                  res.err_expected, (int)j.status, j.len, j.type, j.expected);
        if (avail_at_error >= 3)
            assert_int_equal(j.status, r->bad.status);
        /* The description names the prefix it refused. */
        char msg[160], num[16];
        itch_describe(&res, msg, sizeof msg);
        snprintf(num, sizeof num, "%u", res.err_len);
        if (strstr(msg, num) == NULL)
            FAILF("itch_describe says \"%s\" for prefix %s", msg, num);
    }
    if (count)
        for (unsigned t = 0; t < 256; t++)
            if (by_type[t] != r->by_type[t])
                FAILF("type 0x%02x counted %llu times, the reference %llu", t,
                      (unsigned long long)by_type[t], (unsigned long long)r->by_type[t]);
}

/* The whole stream in one buffer and in a few chunkings, event arrays of several sizes. */
static void drive_some(const uint8_t *s, size_t len, const ref_t *r, uint64_t seed)
{
    drive(s, len, (chunker_t){CH_FIXED, SCRATCH_CAP - ITCH_MAX_FRAME, 0}, EV_CAP, false, r);
    drive(s, len, (chunker_t){CH_FIXED, 4096, 0}, 1 + seed % 7, true, r);
    drive(s, len, (chunker_t){CH_FIXED, 2 * ITCH_MAX_FRAME + 1 + seed % 53, 0}, EV_CAP, true, r);
    drive(s, len, (chunker_t){CH_RANDOM, 300, seed}, 1 + seed % 300, seed & 1, r);
}

/* ---- inputs -------------------------------------------------------------------------------- */

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    return xorshift64_next(&g_rng);
}

/* One frame of type t with random field bytes; V levels sometimes at a rounding edge. */
static size_t make_frame(uint8_t *f, uint8_t t)
{
    size_t l = g_spec_len[t];
    f[0] = (uint8_t)(l >> 8), f[1] = (uint8_t)l, f[2] = t;
    for (size_t i = 3; i < 2 + l; i++)
        f[i] = (uint8_t)rnd();
    if (t == 'V' && rnd() % 2) {
        static const uint64_t edge[] = {0,
                                        4999,
                                        5000,
                                        5001,
                                        9999,
                                        10000,
                                        14999,
                                        15000,
                                        UINT64_MAX,
                                        UINT64_MAX - 4999,
                                        UINT64_MAX - 5000,
                                        100000000ull * 3000 + 5000};
        uint64_t v = edge[rnd() % (sizeof edge / sizeof edge[0])];
        for (int i = 0; i < 8; i++)
            f[2 + 11 + i] = (uint8_t)(v >> (56 - 8 * i));
    }
    return 2 + l;
}

/* reps rounds of all 23 types in a shuffled order: the adversarial base stream. */
static size_t make_all_types(uint8_t *s, size_t cap, int reps)
{
    size_t len = 0;
    for (int r = 0; r < reps; r++) {
        char order[N_TYPES];
        memcpy(order, all_types, N_TYPES);
        for (size_t i = N_TYPES - 1; i > 0; i--) {
            size_t k = rnd() % (i + 1);
            char x = order[i];
            order[i] = order[k], order[k] = x;
        }
        for (size_t i = 0; i < N_TYPES; i++) {
            assert_true(len + ITCH_MAX_FRAME <= cap);
            len += make_frame(s + len, (uint8_t)order[i]);
        }
    }
    return len;
}

static int setup(void **state)
{
    (void)state;
    spec_lengths();
    g_scratch = mem_alloc(MEM_TAG_TEST, SCRATCH_CAP + GUARD);
    return g_scratch ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mem_free(MEM_TAG_TEST, g_scratch, SCRATCH_CAP + GUARD);
    return 0;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* The reference's own lengths against the specification's published message sizes and the
 * engine's constants, and each type alone through itch_decode. */
static void test_itch_diff_lengths_and_single_messages(void **state)
{
    (void)state;
    /* The specification's "total length" column, as published, for the cursor walk. */
    static const struct {
        char t;
        unsigned len;
    } published[] = {{'S', 12}, {'R', 39}, {'H', 25}, {'Y', 20}, {'L', 26}, {'V', 35},
                     {'W', 12}, {'K', 28}, {'J', 35}, {'h', 21}, {'A', 36}, {'F', 40},
                     {'E', 31}, {'C', 36}, {'X', 23}, {'D', 19}, {'U', 35}, {'P', 44},
                     {'Q', 40}, {'B', 19}, {'I', 50}, {'N', 20}, {'O', 48}};
    size_t known = 0;
    for (unsigned t = 0; t < 256; t++)
        known += g_spec_len[t] != 0;
    assert_int_equal(known, N_TYPES);
    for (size_t i = 0; i < N_TYPES; i++) {
        assert_int_equal(g_spec_len[(uint8_t)published[i].t], published[i].len);
        assert_int_equal(itch_msg_len[(uint8_t)published[i].t], published[i].len);
    }
    assert_int_equal(g_spec_max, ITCH_MAX_MSG);
    for (unsigned t = 0; t < 256; t++)
        assert_int_equal(itch_msg_len[t], g_spec_len[t]);

    /* itch_decode: every type, with random fields, many times; wrong lengths refused. */
    uint8_t f[ITCH_MAX_FRAME + 8];
    for (int rep = 0; rep < 400; rep++) {
        for (size_t i = 0; i < N_TYPES; i++) {
            uint8_t t = (uint8_t)all_types[i];
            size_t l = make_frame(f, t) - 2;
            spec_msg_t m;
            ev_t want, got;
            memset(&got, 0xa5, sizeof got); /* every field must be written */
            spec_parse(f + 2, &m);
            spec_event(&m, f + 2, l, &want);
            assert_int_equal(itch_decode(f + 2, l, &got), ITCH_OK);
            ev_check(&got, &want, (size_t)rep, 0);
            assert_ptr_equal(got.raw, f + 2);
            assert_int_equal(itch_decode(f + 2, l - 1, &got), ITCH_ERR_BAD_LENGTH);
            assert_int_equal(itch_decode(f + 2, l + 1, &got), ITCH_ERR_BAD_LENGTH);
            assert_int_equal(itch_decode(f + 2, 0, &got), ITCH_ERR_ZERO_LENGTH);
        }
    }
    for (unsigned t = 0; t < 256; t++) {
        if (g_spec_len[t])
            continue;
        f[2] = (uint8_t)t;
        ev_t got;
        assert_int_equal(itch_decode(f + 2, 36, &got), ITCH_ERR_UNKNOWN_TYPE);
    }
}

/* (a) Real NASDAQ data: the AAPL excerpt whole and in many chunkings, every split position of
 * its first 4 KiB, and the directory excerpt; the RITCH file (every prefix 0) stops at 0. */
static void test_itch_diff_real_nasdaq(void **state)
{
    (void)state;
    testdata_t f;
    if (!testdata_load("nasdaq-20200130-aapl-10k.itch", &f)) {
        print_message("nasdaq-20200130-aapl-10k.itch not found (set TICKCORE_DATA)\n");
        skip();
    }
    ref_t r;
    ref_init(&r, 10016);
    ref_decode(&r, f.p, f.len);
    assert_int_equal(r.end, END_CLEAN);
    assert_int_equal(r.n, 10000); /* published: 10,000 messages */
    assert_int_equal(r.by_type['A'], 4758);
    assert_int_equal(r.by_type['D'], 4083);
    assert_int_equal(r.by_type['E'], 849);
    assert_int_equal(r.by_type['P'], 240);
    assert_int_equal(r.by_type['L'], 52);
    for (uint64_t seed = 1; seed <= (small_mode() ? 2u : 12u); seed++)
        drive_some(f.p, f.len, &r, seed);
    drive(f.p, f.len, (chunker_t){CH_FIXED, 1, 0}, 3, true, &r);

    /* Every split position of a 64 KiB prefix's first 4 KiB (the prefix ends mid-message). */
    const size_t plen = 65536 + 17, step = small_mode() ? 61 : 1;
    ref_t rp;
    ref_init(&rp, 10016);
    ref_decode(&rp, f.p, plen);
    assert_int_equal(rp.end, END_TAIL);
    for (size_t at = 0; at <= 4096; at += step)
        drive(f.p, plen, (chunker_t){CH_SPLIT, at, 0}, at % 3 ? EV_CAP : 1 + at % 64, at & 1, &rp);
    ref_fini(&rp);
    ref_fini(&r);
    testdata_unload(&f);

    if (testdata_load("nasdaq-20191230-directory-1k.itch", &f)) {
        ref_init(&r, 1016);
        ref_decode(&r, f.p, f.len);
        assert_int_equal(r.end, END_CLEAN);
        assert_int_equal(r.n, 1000);
        assert_int_equal(r.by_type['R'], 993);
        drive_some(f.p, f.len, &r, 5);
        ref_fini(&r);
        testdata_unload(&f);
    }
    if (testdata_load("ritch-obfuscated-zero-length.itch", &f)) {
        ref_init(&r, 16);
        ref_decode(&r, f.p, f.len);
        assert_int_equal(r.end, END_BAD);
        assert_int_equal(r.at, 0);
        assert_int_equal(r.bad.status, ITCH_ERR_ZERO_LENGTH);
        drive_some(f.p, f.len, &r, 3);
        ref_fini(&r);
        testdata_unload(&f);
    }
}

/* (b) A generated day (sim/gen): several symbols, every message type the generator writes. */
static void test_itch_diff_generated_day(void **state)
{
    (void)state;
    char path[] = "/tmp/test_itch_diff_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gen_cfg_t cfg;
    gen_cfg_default(&cfg);
    cfg.out = path;
    cfg.messages = small_mode() ? 30000 : 300000;
    cfg.symbols = 40;
    cfg.sectors = 4;
    cfg.seed = 13;
    cfg.truth = false;
    gen_stats_t st;
    int rc = gen_run(&cfg, &st);
    if (rc != 0) {
        unlink(path);
        fail_msg("gen_run: %s", st.error);
    }
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t len = (size_t)st.bytes;
    uint8_t *s = mem_alloc(MEM_TAG_TEST, len + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, len + 1, fp);
    fclose(fp);
    unlink(path);
    assert_int_equal(got, len);

    ref_t r;
    ref_init(&r, (size_t)cfg.messages + 16);
    ref_decode(&r, s, len);
    assert_int_equal(r.end, END_CLEAN);
    assert_int_equal(r.n, cfg.messages);
    /* Every type the generator wrote, in the numbers it wrote them. */
    static const char gen_types[] = "SRHAFDUXECP";
    for (size_t i = 0; i < sizeof gen_types - 1; i++)
        assert_true(st.by_type[(uint8_t)gen_types[i]] > 0);
    for (unsigned t = 0; t < 256; t++)
        assert_int_equal(r.by_type[t], st.by_type[t]);
    for (uint64_t seed = 1; seed <= (small_mode() ? 1u : 4u); seed++)
        drive_some(s, len, &r, seed);
    ref_fini(&r);
    mem_free(MEM_TAG_TEST, s, len + 1);
}

/* (c) An all-types stream split at every byte position, with event arrays from 1 slot up (runs
 * end at every place), and read in fixed chunks of 1 to 3 frames and more. */
static void test_itch_diff_split_every_byte(void **state)
{
    (void)state;
    static uint8_t s[8 * N_TYPES * ITCH_MAX_FRAME];
    size_t len = make_all_types(s, sizeof s, 3);
    ref_t r;
    ref_init(&r, 8 * N_TYPES);
    ref_decode(&r, s, len);
    assert_int_equal(r.end, END_CLEAN);
    assert_int_equal(r.n, 3 * N_TYPES);
    for (size_t at = 0; at <= len; at++) {
        drive(s, len, (chunker_t){CH_SPLIT, at, 0}, EV_CAP, at & 1, &r);
        drive(s, len, (chunker_t){CH_SPLIT, at, 0}, 1 + at % 9, !(at & 1), &r);
    }
    for (size_t sz = 1; sz <= 4 * ITCH_MAX_FRAME; sz++)
        for (size_t max = 1; max <= 5; max += small_mode() ? 4 : 1)
            drive(s, len, (chunker_t){CH_FIXED, sz, 0}, max == 5 ? EV_CAP : max, sz & 1, &r);
    ref_fini(&r);
}

/* (c) Truncated final message: the stream cut at every byte gives the events before the cut
 * frame and a tail at its offset (or, when only a 0 or oversized prefix is left, an error). */
static void test_itch_diff_truncated_final(void **state)
{
    (void)state;
    static uint8_t s[4 * N_TYPES * ITCH_MAX_FRAME];
    size_t len = make_all_types(s, sizeof s, 2);
    ref_t r;
    ref_init(&r, 4 * N_TYPES);
    size_t tails = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        ref_decode(&r, s, cut);
        assert_true(r.end != END_BAD);
        tails += r.end == END_TAIL;
        drive(s, cut, (chunker_t){CH_FIXED, SCRATCH_CAP / 2, 0}, EV_CAP, false, &r);
        drive(s, cut, (chunker_t){CH_SPLIT, cut / 2, 0}, 1 + cut % 4, true, &r);
        drive(s, cut, (chunker_t){CH_FIXED, 1 + cut % 61, 0}, EV_CAP, cut & 1, &r);
    }
    assert_int_equal(tails, len + 1 - (2 * N_TYPES + 1));
    ref_fini(&r);
}

/* s has a bad frame at offset at: every event before it, and the error at its offset, whole
 * and with reads that end after its prefix, after its type byte, or anywhere. */
static size_t g_bad_checked;
static void drive_bad(const uint8_t *s, size_t len, size_t at, ref_t *r)
{
    ref_decode(r, s, len);
    assert_int_equal(r->end, END_BAD);
    assert_int_equal(r->at, at);
    drive(s, len, (chunker_t){CH_FIXED, SCRATCH_CAP / 2, 0}, EV_CAP, at & 1, r);
    drive(s, len, (chunker_t){CH_SPLIT, at + 2, 0}, EV_CAP, true, r); /* read ends at prefix */
    drive(s, len, (chunker_t){CH_SPLIT, at + 3, 0}, 1 + at % 5, false, r);
    drive(s, len, (chunker_t){CH_FIXED, 1 + at % 113, 0}, 1 + at % 3, true, r);
    g_bad_checked++;
}

/* (c) Unknown type bytes (every one), zero-length, oversize and wrong length prefixes, at every
 * frame of an all-types stream (so inside runs, at their ends and in the checked step). */
static void test_itch_diff_bad_frames(void **state)
{
    (void)state;
    static uint8_t s[4 * N_TYPES * ITCH_MAX_FRAME], c[sizeof s];
    size_t len = make_all_types(s, sizeof s, 2);
    ref_t r, clean;
    ref_init(&r, 4 * N_TYPES);
    ref_init(&clean, 4 * N_TYPES);
    ref_decode(&clean, s, len);
    assert_int_equal(clean.end, END_CLEAN);
    const unsigned tstep = small_mode() ? 17 : 1;
    g_bad_checked = 0;
    for (size_t k = 0; k < clean.n; k++) {
        const size_t at = clean.off[k];
        const unsigned l = s[at] << 8 | s[at + 1];
        /* Unknown type bytes. */
        for (unsigned t = k % tstep; t < 256; t += tstep) {
            if (g_spec_len[t])
                continue;
            memcpy(c, s, len);
            c[at + 2] = (uint8_t)t;
            drive_bad(c, len, at, &r);
            assert_int_equal(r.bad.status, ITCH_ERR_UNKNOWN_TYPE);
        }
        /* Length prefixes: zero, off by one, oversize, the high byte set (a prefix whose low
         * byte is right), and every other type's length. */
        const unsigned lens[] = {0, l - 1, l + 1, 51, 52, 255, 256, 256 + l, 0x8000 + l, 0xffff};
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            memcpy(c, s, len);
            c[at] = (uint8_t)(lens[i] >> 8), c[at + 1] = (uint8_t)lens[i];
            drive_bad(c, len, at, &r);
            assert_int_equal(r.bad.status, lens[i] ? ITCH_ERR_BAD_LENGTH : ITCH_ERR_ZERO_LENGTH);
        }
        for (size_t i = 0; i < N_TYPES; i += small_mode() ? 5 : 1) {
            unsigned other = (unsigned)g_spec_len[(uint8_t)all_types[i]];
            if (other == l)
                continue;
            memcpy(c, s, len);
            c[at] = 0, c[at + 1] = (uint8_t)other;
            drive_bad(c, len, at, &r);
            assert_int_equal(r.bad.status, ITCH_ERR_BAD_LENGTH);
        }
    }
    print_message("%zu corrupted streams checked\n", g_bad_checked);
    ref_fini(&clean);
    ref_fini(&r);
}

/* Random byte changes and cuts of all-types streams, in random chunks: whatever the bytes, the
 * engine says what the reference says. */
static void test_itch_diff_random_mutations(void **state)
{
    (void)state;
    static uint8_t s[12 * N_TYPES * ITCH_MAX_FRAME];
    ref_t r;
    ref_init(&r, 12 * N_TYPES);
    const int rounds = small_mode() ? 300 : 6000;
    for (int i = 0; i < rounds; i++) {
        size_t len = make_all_types(s, sizeof s, 1 + (int)(rnd() % 10));
        int muts = (int)(rnd() % 4);
        for (int m = 0; m < muts; m++) {
            size_t at = rnd() % len;
            s[at] = rnd() % 3 ? (uint8_t)rnd() : (uint8_t)(s[at] ^ (1u << rnd() % 8));
        }
        len -= rnd() % 2 ? rnd() % 60 : 0;
        ref_decode(&r, s, len);
        drive(s, len, (chunker_t){CH_RANDOM, 1 + rnd() % 200, rnd()}, 1 + rnd() % 40, rnd() & 1,
              &r);
        drive(s, len, (chunker_t){CH_FIXED, SCRATCH_CAP / 2, 0}, EV_CAP, false, &r);
    }
    ref_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itch_diff_lengths_and_single_messages),
        cmocka_unit_test(test_itch_diff_real_nasdaq),
        cmocka_unit_test(test_itch_diff_generated_day),
        cmocka_unit_test(test_itch_diff_split_every_byte),
        cmocka_unit_test(test_itch_diff_truncated_final),
        cmocka_unit_test(test_itch_diff_bad_frames),
        cmocka_unit_test(test_itch_diff_random_mutations),
    };
    return leftover_check("test_itch_diff", cmocka_run_group_tests(tests, setup, teardown));
}
