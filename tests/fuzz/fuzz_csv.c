/*
 * fuzz_csv: libFuzzer target for the CSV decoder. The first four input bytes choose the
 * configuration (strict, require_order, max_line 16..271, max_reported, the event slice size),
 * a seed for buffer cuts, and a header put in front of the rest (none, trades, trades with side,
 * quotes: so the fuzzer reaches the row parser without a corpus). It is decoded twice: in one
 * buffer, and as a replay loop would, in random chunks with the unconsumed tail carried over. Both
 * runs must agree exactly (events, counters, error records, stop offset), and every contract of
 * csv.h is checked on every call: consumed <= len, n <= max, a carried tail shorter than max_line,
 * at_eof consumes everything unless stopped, sticky errors, counters that add up, events with a
 * valid type, side and locate whose raw pointer lies in the buffer. Any violation calls abort().
 * The symbol table (capacity 8, so "table full" is reached) is allocated once and cleared per
 * input.
 */
#include "event/symtab.h"
#include "ingest/csv.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1u << 16)
#define SLICE     64

static symtab_t table;
static bool table_ready;
static ev_t ev_whole[MAX_INPUT + 1], ev_split[MAX_INPUT + 1];
static uint8_t carry_buf[MAX_INPUT + 3 * 512];
static uint8_t file[MAX_INPUT + 64];

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Check one call's result and append its events (raw rebased to input offset base). */
static void take(const csv_t *c, const csv_result_t *r, csv_status_t st, const uint8_t *buf,
                 size_t len, bool at_eof, size_t max, const ev_t *tmp, ev_t *all, size_t *nall,
                 const uint8_t *input, size_t base)
{
    CHECK(r->status == st);
    CHECK(r->consumed <= len);
    CHECK(r->n <= max);
    switch (st) {
    case CSV_OK:
        CHECK(len - r->consumed < c->cfg.max_line);
        if (at_eof)
            CHECK(r->consumed == len);
        break;
    case CSV_FULL:
        CHECK(r->n == max);
        break;
    case CSV_ERR_EMPTY:
    case CSV_ERR_HEADER:
    case CSV_ERR_ROW:
        CHECK(c->state == CSV_ST_STOPPED && c->stop_status == st);
        break;
    default:
        abort();
    }
    for (size_t i = 0; i < r->n; i++) {
        ev_t e = tmp[i];
        CHECK(e.type == (c->kind == CSV_KIND_TRADES ? EV_CSV_TRADE : EV_CSV_QUOTE));
        CHECK(e.side == 0 || e.side == 'B' || e.side == 'S');
        CHECK(e.locate >= 1 && e.locate <= table.capacity);
        CHECK(symtab_name(&table, e.locate)[0] != '\0');
        CHECK(e.raw >= buf && e.raw < buf + r->consumed);
        CHECK(e.raw_len == 0 && e.match == 0 && e.tracking == 0 && e.aux == 0);
        if (e.type == EV_CSV_TRADE)
            CHECK(e.ref == 0 && e.new_ref == 0);
        CHECK(e.ts <= (uint64_t)INT64_MAX);
        e.raw = input + base + (size_t)(e.raw - buf);
        CHECK(*nall <= MAX_INPUT);
        all[(*nall)++] = e;
    }
    /* counters add up */
    uint64_t sum = 0;
    for (int k = 0; k < CSV_E_COUNT; k++)
        sum += c->bad[k];
    CHECK(sum == c->rows_bad);
    CHECK(c->nreported <= c->cfg.max_reported && c->nreported <= c->rows_bad);
    CHECK(c->rows_ok + c->rows_bad + c->blank_lines <= c->line);
    CHECK(c->rows_ok == *nall);
}

static void same(const csv_t *a, const csv_t *b)
{
    CHECK(a->state == b->state && a->stop_status == b->stop_status && a->kind == b->kind);
    CHECK(a->line == b->line && a->offset == b->offset && a->last_ts == b->last_ts);
    CHECK(a->rows_ok == b->rows_ok && a->rows_bad == b->rows_bad);
    CHECK(memcmp(a->bad, b->bad, sizeof a->bad) == 0);
    CHECK(a->blank_lines == b->blank_lines && a->rounded == b->rounded);
    CHECK(a->out_of_order == b->out_of_order && a->nreported == b->nreported);
    CHECK(memcmp(a->errors, b->errors, a->nreported * sizeof a->errors[0]) == 0);
    if (a->state == CSV_ST_STOPPED)
        CHECK(memcmp(&a->fatal, &b->fatal, sizeof a->fatal) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!table_ready) {
        if (symtab_init(&table, 8) != 0)
            abort();
        table_ready = true;
    }
    if (size < 4 || size - 4 > MAX_INPUT)
        return 0;
    csv_cfg_t cfg = {
        .strict = data[0] & 1,
        .require_order = (data[0] >> 1) & 1,
        .max_line = 16u + data[1],
        .max_reported = (uint32_t)(data[0] >> 4) * 3,
    };
    const size_t max = 1 + ((data[0] >> 2) & 3) * 21; /* 1, 22, 43, 64 events per call */
    uint64_t seed = data[2] * 0x9E3779B97F4A7C15ull + 1;
    static const char *const headers[4] = {
        "", "timestamp,symbol,price,size\n", "Timestamp, Symbol, Price, Size, Side\r\n",
        "\xEF\xBB\xBFtimestamp,symbol,bid,bid_size,ask,ask_size\n"};
    const char *hdr = headers[data[3] & 3];
    const size_t hlen = strlen(hdr);
    memcpy(file, hdr, hlen);
    memcpy(file + hlen, data + 4, size - 4);
    const uint8_t *in = file;
    const size_t len = hlen + size - 4;
    ev_t tmp[SLICE];
    csv_result_t r;
    csv_status_t st;

    /* 1. the whole input in one buffer */
    symtab_clear(&table);
    csv_t whole;
    csv_init(&whole, &table, &cfg);
    size_t pos = 0, nw = 0;
    do {
        st = csv_decode_block(&whole, in + pos, len - pos, true, tmp, max, &r);
        take(&whole, &r, st, in + pos, len - pos, true, max, tmp, ev_whole, &nw, in, pos);
        pos += r.consumed;
    } while (st == CSV_FULL);
    const size_t stop_whole = pos;
    const csv_status_t st_whole = st;
    if (st >= CSV_ERR_EMPTY) { /* sticky */
        csv_status_t again = csv_decode_block(&whole, in + pos, len - pos, true, tmp, max, &r);
        CHECK(again == st && r.consumed == 0 && r.n == 0);
    }
    CHECK(st != CSV_ERR_EMPTY || len == 0);

    /* 2. random chunks, the tail carried over */
    symtab_clear(&table);
    csv_t c;
    csv_init(&c, &table, &cfg);
    size_t carry = 0, off = 0, ns = 0, stop_split = len;
    for (;;) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t chunk = 1 + (size_t)(seed % (2 * c.cfg.max_line));
        if (chunk > len - off)
            chunk = len - off;
        memcpy(carry_buf + carry, in + off, chunk);
        off += chunk;
        const size_t blen = carry + chunk, base = off - blen;
        const bool eof = off == len;
        size_t p = 0;
        do {
            st = csv_decode_block(&c, carry_buf + p, blen - p, eof, tmp, max, &r);
            take(&c, &r, st, carry_buf + p, blen - p, eof, max, tmp, ev_split, &ns, in, base + p);
            p += r.consumed;
        } while (st == CSV_FULL);
        if (st != CSV_OK) {
            stop_split = base + p;
            break;
        }
        carry = blen - p;
        CHECK(carry < c.cfg.max_line);
        memmove(carry_buf, carry_buf + p, carry);
        if (eof)
            break;
    }
    /* 3. the same outcome */
    CHECK(st == st_whole);
    CHECK(stop_split == stop_whole);
    CHECK(ns == nw);
    CHECK(memcmp(ev_whole, ev_split, nw * sizeof ev_whole[0]) == 0);
    same(&whole, &c);
    return 0;
}
