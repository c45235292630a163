/*
 * csv: see csv.h for the accepted formats and the buffer contract. The decoder is a small
 * state machine (header, rows, skipping an over-long line, stopped) driven line by line: it
 * looks for the '\n' with memchr limited to max_line bytes, so a line never costs more than
 * max_line bytes of scanning before it is known to be over-long, and it never keeps a pointer
 * into a buffer between calls. Each row is split at ',' into at most ncols + 1 fields and every
 * field is parsed by a bounded hand-written routine (no strtol, strtod, sscanf, locale or time
 * library): ISO dates go through days-from-civil arithmetic. A row is checked completely before
 * its symbol is interned, so refused rows never take a slot in the symbol table. Nothing here
 * allocates; the report functions use stdio and belong to the control path.
 */
#include "ingest/csv.h"

#include <errno.h>
#include <string.h>

#define NS_PER_S 1000000000LL

static const char HDR_TRADES[] = "timestamp,symbol,price,size[,side]";
static const char HDR_QUOTES[] = "timestamp,symbol,bid,bid_size,ask,ask_size";

static inline bool is_blank(uint8_t ch)
{
    return ch == ' ' || ch == '\t';
}

static inline bool is_digit(uint8_t ch)
{
    return (unsigned)(ch - '0') < 10u;
}

static inline uint8_t lower(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch | 0x20) : ch;
}

/* A field: [p, p + len) after trimming spaces and tabs. */
typedef struct field {
    const uint8_t *p;
    size_t len;
} field_t;

static field_t trim(const uint8_t *p, size_t len)
{
    while (len > 0 && is_blank(p[0]))
        p++, len--;
    while (len > 0 && is_blank(p[len - 1]))
        len--;
    return (field_t){p, len};
}

/* Split line[0..len) at ',' into f[0..max); returns the number of fields, or max + 1 if there
 * are more (those are not stored). */
static size_t split(const uint8_t *line, size_t len, field_t *f, size_t max)
{
    size_t n = 0;
    const uint8_t *p = line, *end = line + len;
    for (;;) {
        const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
        if (n == max)
            return n + 1;
        f[n++] = trim(p, (size_t)((comma ? comma : end) - p));
        if (!comma)
            return n;
        p = comma + 1;
    }
}

static bool eq_ci(field_t f, const char *name)
{
    size_t n = strlen(name);
    if (f.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(f.p[i]) != (uint8_t)name[i])
            return false;
    return true;
}

/* The kind a header line names (CSV_KIND_NONE if neither), and its column count. */
static csv_kind_t header_kind(const uint8_t *line, size_t len, uint8_t *ncols)
{
    static const char *const trades[] = {"timestamp", "symbol", "price", "size", "side"};
    static const char *const quotes[] = {"timestamp", "symbol", "bid",
                                         "bid_size",  "ask",    "ask_size"};
    field_t f[7];
    size_t n = split(line, len, f, 7);
    if (n == 4 || n == 5) {
        for (size_t i = 0; i < n; i++)
            if (!eq_ci(f[i], trades[i]))
                return CSV_KIND_NONE;
        *ncols = (uint8_t)n;
        return CSV_KIND_TRADES;
    }
    if (n == 6) {
        for (size_t i = 0; i < n; i++)
            if (!eq_ci(f[i], quotes[i]))
                return CSV_KIND_NONE;
        *ncols = 6;
        return CSV_KIND_QUOTES;
    }
    return CSV_KIND_NONE;
}

/* ---- numbers and timestamps ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const uint8_t dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return dim[m - 1];
}

/* n digits at s as an unsigned number; false if any is not a digit. */
static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((uint8_t)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* See csv_parse_ts. dc (may be NULL) remembers the last valid date prefix: rows of one day
 * skip the date arithmetic. */
static int parse_ts(const char *s, size_t len, int64_t *ns, csv_date_cache_t *dc)
{
    if (len == 0)
        return -EINVAL;
    /* Integer nanoseconds. */
    size_t i = 0;
    while (i < len && is_digit((uint8_t)s[i]))
        i++;
    if (i == len) {
        if (len > 19)
            return -EINVAL;
        uint64_t v = 0;
        for (i = 0; i < len; i++)
            v = v * 10 + (uint64_t)(s[i] - '0'); /* <= 19 digits: fits in uint64 */
        if (v > (uint64_t)INT64_MAX)
            return -EINVAL;
        *ns = (int64_t)v;
        return 0;
    }
    /* ISO-8601: YYYY-MM-DD */
    unsigned hh = 0, mi = 0, ss = 0, frac = 0;
    if (len < 10)
        return -EINVAL;
    int64_t days;
    if (dc && dc->valid && memcmp(s, dc->key, 10) == 0) {
        days = dc->days;
    } else {
        unsigned y, mo, d;
        if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
            !digits(s + 8, 2, &d))
            return -EINVAL;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
            return -EINVAL;
        days = days_from_civil(y, mo, d);
        if (dc) {
            memcpy(dc->key, s, 10);
            dc->days = days;
            dc->valid = true;
        }
    }
    size_t p = 10;
    int64_t zone = 0; /* seconds east of UTC */
    if (p < len) {
        /* [T or space]HH:MM[:SS[.f{1,9}]] */
        if (!(s[p] == 'T' || s[p] == 't' || s[p] == ' ') || len - p < 6)
            return -EINVAL;
        p++;
        if (!digits(s + p, 2, &hh) || s[p + 2] != ':' || !digits(s + p + 3, 2, &mi))
            return -EINVAL;
        p += 5;
        if (p < len && s[p] == ':') {
            if (len - p < 3 || !digits(s + p + 1, 2, &ss))
                return -EINVAL;
            p += 3;
            if (p < len && s[p] == '.') {
                p++;
                size_t nd = 0;
                while (p < len && is_digit((uint8_t)s[p]) && nd < 10)
                    frac = frac * 10 + (unsigned)(s[p++] - '0'), nd++;
                if (nd == 0 || nd > 9)
                    return -EINVAL;
                for (; nd < 9; nd++)
                    frac *= 10;
            }
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return -EINVAL;
        /* zone: Z | +HH:MM | +HHMM | +HH (or '-') */
        if (p < len) {
            if (s[p] == 'Z' || s[p] == 'z') {
                p++;
            } else if (s[p] == '+' || s[p] == '-') {
                const int sign = s[p] == '-' ? -1 : 1;
                unsigned zh, zm = 0;
                p++;
                if (len - p < 2 || !digits(s + p, 2, &zh))
                    return -EINVAL;
                p += 2;
                if (p < len) {
                    if (s[p] == ':')
                        p++;
                    if (len - p != 2 || !digits(s + p, 2, &zm))
                        return -EINVAL;
                    p += 2;
                }
                if (zh > 23 || zm > 59)
                    return -EINVAL;
                zone = sign * (int64_t)(zh * 3600 + zm * 60);
            }
            if (p != len)
                return -EINVAL;
        }
    }
    const int64_t secs = days * 86400 + (int64_t)(hh * 3600 + mi * 60 + ss) - zone;
    if (secs < 0 || secs > INT64_MAX / NS_PER_S)
        return -EINVAL;
    const int64_t base = secs * NS_PER_S;
    if (base > INT64_MAX - (int64_t)frac)
        return -EINVAL;
    *ns = base + (int64_t)frac;
    return 0;
}

int csv_parse_ts(const char *s, size_t len, int64_t *ns)
{
    return parse_ts(s, len, ns, NULL);
}

int csv_parse_price(const char *s, size_t len, int64_t *price, bool *rounded)
{
    size_t p = 0;
    const bool neg = len > 0 && s[0] == '-';
    p += neg;
    /* integer part: at most INT64_MAX / 10000 = 922337203685477 */
    uint64_t ip = 0;
    size_t nd = 0;
    for (; p < len && is_digit((uint8_t)s[p]); p++, nd++) {
        ip = ip * 10 + (uint64_t)(s[p] - '0');
        if (ip > (uint64_t)INT64_MAX / EV_PRICE_SCALE)
            return -ERANGE;
    }
    uint64_t fr = 0;
    unsigned nf = 0;
    bool up = false, dropped = false;
    if (p < len && s[p] == '.') {
        for (p++; p < len && is_digit((uint8_t)s[p]); p++, nd++) {
            const unsigned dg = (unsigned)(s[p] - '0');
            if (nf < 4)
                fr = fr * 10 + dg;
            else if (nf == 4)
                up = dg >= 5;
            if (nf >= 4 && dg != 0)
                dropped = true;
            nf += nf < 5;
        }
    }
    if (nd == 0 || p != len)
        return -EINVAL;
    for (; nf < 4; nf++)
        fr *= 10;
    uint64_t v = ip * EV_PRICE_SCALE + fr + up;
    if (v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *price = neg ? -(int64_t)v : (int64_t)v;
    *rounded = dropped;
    return 0;
}

/* Non-negative integer. 0, -EINVAL, -ERANGE, or 1 for "negative" ('-' then digits). */
static int parse_size(const uint8_t *s, size_t len, uint64_t *out)
{
    const size_t p = len > 0 && s[0] == '-' ? 1 : 0;
    if (len == p)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = p; i < len; i++) {
        if (!is_digit(s[i]))
            return -EINVAL;
        const uint64_t dg = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - dg) / 10)
            return p ? 1 : -ERANGE;
        v = v * 10 + dg;
    }
    if (p)
        return 1;
    *out = v;
    return 0;
}

/* 'B', 'S', 0 (empty), or -1. */
static int parse_side(field_t f)
{
    if (f.len == 0)
        return 0;
    if (f.len == 1) {
        const uint8_t ch = lower(f.p[0]);
        return ch == 'b' ? 'B' : ch == 's' ? 'S' : -1;
    }
    if (eq_ci(f, "buy"))
        return 'B';
    if (eq_ci(f, "sell"))
        return 'S';
    return -1;
}

static bool symbol_ok(field_t f)
{
    if (f.len == 0 || f.len > SYMTAB_SYM_MAX)
        return false;
    for (size_t i = 0; i < f.len; i++)
        if (f.p[i] < 0x21 || f.p[i] > 0x7e)
            return false;
    return true;
}

/* ---- state and errors ------------------------------------------------------------------- */

void csv_init(csv_t *c, symtab_t *symbols, const csv_cfg_t *cfg)
{
    memset(c, 0, sizeof *c);
    c->symbols = symbols;
    if (cfg)
        c->cfg = *cfg;
    if (c->cfg.max_line == 0)
        c->cfg.max_line = CSV_DEFAULT_MAX_LINE;
    if (c->cfg.max_line < CSV_MIN_MAX_LINE)
        c->cfg.max_line = CSV_MIN_MAX_LINE;
    if (c->cfg.max_line > CSV_MAX_MAX_LINE)
        c->cfg.max_line = CSV_MAX_MAX_LINE;
    if (c->cfg.max_reported > CSV_MAX_REPORTED)
        c->cfg.max_reported = CSV_MAX_REPORTED;
    c->state = CSV_ST_HEADER;
    c->line = 1;
}

static void fill_record(csv_error_t *e, uint64_t line, uint64_t offset, csv_reason_t reason,
                        unsigned column, const uint8_t *ex, size_t exlen, size_t excap)
{
    memset(e, 0, sizeof *e);
    e->line = line;
    e->offset = offset;
    e->reason = reason;
    e->column = (uint16_t)column;
    const size_t cap = excap < CSV_EXCERPT_MAX ? excap : CSV_EXCERPT_MAX;
    e->excerpt_cut = exlen > cap;
    e->excerpt_len = (uint8_t)(exlen > cap ? cap : exlen);
    if (e->excerpt_len)
        memcpy(e->excerpt, ex, e->excerpt_len);
}

/* Count a refused row; true if decoding stops (strict). */
static bool row_error(csv_t *c, csv_reason_t reason, unsigned column, const uint8_t *ex,
                      size_t exlen)
{
    c->rows_bad++;
    c->bad[reason]++;
    csv_error_t e;
    fill_record(&e, c->line, c->offset, reason, column, ex, exlen, c->cfg.max_line);
    if (c->nreported < c->cfg.max_reported)
        c->errors[c->nreported++] = e;
    if (!c->cfg.strict)
        return false;
    c->fatal = e;
    c->state = CSV_ST_STOPPED;
    c->stop_status = CSV_ERR_ROW;
    return true;
}

static void stop(csv_t *c, csv_status_t st, const uint8_t *ex, size_t exlen)
{
    fill_record(&c->fatal, c->line, c->offset, CSV_E_COUNT, 0, ex, exlen, c->cfg.max_line);
    c->state = CSV_ST_STOPPED;
    c->stop_status = st;
}

/* Up to 8 bytes as a little number, zero-padded: a symbol's cache key. */
static inline uint64_t sym_key(const uint8_t *p, size_t len)
{
    uint64_t k = 0;
    memcpy(&k, p, len);
    return k;
}

/* symtab_intern with a direct-mapped cache in front. A hit is checked against the table's own
 * name for the locate, so a cleared or reused table can never return a stale locate. */
static int intern(csv_t *c, field_t sym)
{
    const uint64_t key = sym_key(sym.p, sym.len);
    csv_sym_cache_t *e = &c->sym_cache[(key * 0x9E3779B97F4A7C15ull) >> (64 - CSV_SYM_CACHE_BITS)];
    if (e->locate != 0 && e->key == key) {
        const char *name = symtab_name(c->symbols, e->locate);
        if (memcmp(name, sym.p, sym.len) == 0 && name[sym.len] == '\0')
            return e->locate;
    }
    const int loc = symtab_intern(c->symbols, (const char *)sym.p, sym.len);
    if (loc > 0) {
        e->key = key;
        e->locate = (uint16_t)loc;
    }
    return loc;
}

#define FIELD_ERR(reason, col) row_error(c, (reason), (col), f[(col)-1].p, f[(col)-1].len)

/* Decode one row (line[0..len), '\r' stripped) into *e. True: e filled. False: refused (counted);
 * *stopped says whether decoding stops. */
static bool decode_row(csv_t *c, const uint8_t *line, size_t len, ev_t *e, bool *stopped)
{
    field_t f[6];
    const size_t ncols = c->ncols;
    const size_t nf = split(line, len, f, ncols);
    if (nf < ncols) {
        *stopped = row_error(c, CSV_E_MISSING_FIELD, (unsigned)nf + 1, line, len);
        return false;
    }
    if (nf > ncols) {
        *stopped = row_error(c, CSV_E_EXTRA_FIELD, (unsigned)ncols + 1, line, len);
        return false;
    }
    int64_t ts;
    if (parse_ts((const char *)f[0].p, f[0].len, &ts, &c->date_cache) < 0) {
        *stopped = FIELD_ERR(CSV_E_TIMESTAMP, 1);
        return false;
    }
    if (!symbol_ok(f[1])) {
        *stopped = FIELD_ERR(CSV_E_SYMBOL, 2);
        return false;
    }
    int64_t price, ask = 0;
    uint64_t size, ask_size = 0;
    bool rounded, rounded_ask = false;
    int side = 0;
    if (csv_parse_price((const char *)f[2].p, f[2].len, &price, &rounded) < 0) {
        *stopped = FIELD_ERR(CSV_E_NUMBER, 3);
        return false;
    }
    int rc = parse_size(f[3].p, f[3].len, &size);
    if (rc != 0) {
        *stopped = FIELD_ERR(rc > 0 ? CSV_E_NEGATIVE : CSV_E_NUMBER, 4);
        return false;
    }
    if (c->kind == CSV_KIND_TRADES) {
        if (ncols == 5 && (side = parse_side(f[4])) < 0) {
            *stopped = FIELD_ERR(CSV_E_SIDE, 5);
            return false;
        }
    } else {
        if (csv_parse_price((const char *)f[4].p, f[4].len, &ask, &rounded_ask) < 0) {
            *stopped = FIELD_ERR(CSV_E_NUMBER, 5);
            return false;
        }
        rc = parse_size(f[5].p, f[5].len, &ask_size);
        if (rc != 0) {
            *stopped = FIELD_ERR(rc > 0 ? CSV_E_NEGATIVE : CSV_E_NUMBER, 6);
            return false;
        }
    }
    if ((uint64_t)ts < c->last_ts) {
        c->out_of_order++;
        if (c->cfg.require_order) {
            *stopped = FIELD_ERR(CSV_E_ORDER, 1);
            return false;
        }
    }
    const int loc = intern(c, f[1]);
    if (loc <= 0) {
        *stopped = FIELD_ERR(loc == -ENOSPC ? CSV_E_SYMTAB_FULL : CSV_E_SYMBOL, 2);
        return false;
    }
    c->rounded += (uint64_t)rounded + (uint64_t)rounded_ask;
    if ((uint64_t)ts > c->last_ts)
        c->last_ts = (uint64_t)ts;
    c->rows_ok++;
    *e = (ev_t){
        .ts = (uint64_t)ts,
        .ref = (uint64_t)ask,
        .new_ref = ask_size,
        .price = price,
        .shares = size,
        .raw = line,
        .locate = (uint16_t)loc,
        .type = c->kind == CSV_KIND_TRADES ? EV_CSV_TRADE : EV_CSV_QUOTE,
        .side = (uint8_t)side,
    };
    return true;
}

csv_status_t csv_decode_block(csv_t *c, const uint8_t *buf, size_t len, bool at_eof, ev_t *out,
                              size_t max, csv_result_t *res)
{
    size_t pos = 0, n = 0;
    csv_status_t st = CSV_OK;
    const size_t max_line = c->cfg.max_line;

    while (c->state != CSV_ST_STOPPED) {
        if (c->state == CSV_ST_SKIP) { /* the rest of an over-long line */
            const size_t avail = len - pos;
            const uint8_t *nl = avail ? memchr(buf + pos, '\n', avail) : NULL;
            const size_t adv = nl ? (size_t)(nl - (buf + pos)) + 1 : avail;
            pos += adv;
            c->offset += adv;
            if (!nl && !at_eof)
                break;
            c->line++;
            c->state = CSV_ST_ROWS;
            continue;
        }
        const size_t avail = len - pos;
        if (avail == 0) {
            if (at_eof && c->state == CSV_ST_HEADER)
                stop(c, CSV_ERR_EMPTY, NULL, 0);
            break;
        }
        const uint8_t *line = buf + pos;
        const uint8_t *nl = memchr(line, '\n', avail < max_line ? avail : max_line);
        size_t llen; /* bytes before '\n' (or to the end of the visible line) */
        if (nl)
            llen = (size_t)(nl - line);
        else if (avail >= max_line || at_eof)
            llen = avail;
        else
            break; /* an incomplete line: the caller carries it over */
        if (c->state == CSV_ST_ROWS && n == max) {
            st = CSV_FULL;
            break;
        }
        if (llen >= max_line) { /* over-long: no '\n' within max_line bytes */
            if (c->state == CSV_ST_HEADER) {
                stop(c, CSV_ERR_HEADER, line, llen + 1); /* +1: excerpt marked cut */
                break;
            }
            if (row_error(c, CSV_E_LONG_LINE, 0, line, llen + 1))
                break;
            c->state = CSV_ST_SKIP; /* consumes through the next '\n', line++ */
            continue;
        }
        size_t clen = llen;
        if (clen > 0 && line[clen - 1] == '\r')
            clen--;
        if (c->state == CSV_ST_HEADER) {
            const uint8_t *h = line;
            if (clen >= 3 && h[0] == 0xEF && h[1] == 0xBB && h[2] == 0xBF)
                h += 3, clen -= 3;
            c->kind = header_kind(h, clen, &c->ncols);
            if (c->kind == CSV_KIND_NONE) {
                stop(c, CSV_ERR_HEADER, h, clen);
                break;
            }
            c->state = CSV_ST_ROWS;
        } else if (clen == 0) {
            c->blank_lines++;
        } else {
            bool stopped = false;
            if (decode_row(c, line, clen, &out[n], &stopped))
                n++;
            else if (stopped)
                break;
        }
        const size_t adv = nl ? llen + 1 : llen;
        pos += adv;
        c->offset += adv;
        c->line++;
    }
    if (c->state == CSV_ST_STOPPED)
        st = c->stop_status;
    res->consumed = pos;
    res->n = n;
    res->status = st;
    return st;
}

bool csv_probe(const uint8_t *buf, size_t len)
{
    if (!buf || len == 0)
        return false;
    if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
        buf += 3, len -= 3;
    if (len > CSV_DEFAULT_MAX_LINE)
        len = CSV_DEFAULT_MAX_LINE;
    const uint8_t *nl = memchr(buf, '\n', len);
    size_t l = nl ? (size_t)(nl - buf) : len;
    if (l > 0 && buf[l - 1] == '\r')
        l--;
    uint8_t ncols;
    return header_kind(buf, l, &ncols) != CSV_KIND_NONE;
}

/* ---- names and reports ------------------------------------------------------------------ */

const char *csv_reason_str(csv_reason_t r)
{
    static const char *const names[CSV_E_COUNT] = {
        [CSV_E_MISSING_FIELD] = "missing field", [CSV_E_EXTRA_FIELD] = "extra field",
        [CSV_E_TIMESTAMP] = "bad timestamp",     [CSV_E_NUMBER] = "bad number",
        [CSV_E_NEGATIVE] = "negative size",      [CSV_E_SIDE] = "bad side",
        [CSV_E_SYMBOL] = "bad symbol",           [CSV_E_ORDER] = "out-of-order timestamp",
        [CSV_E_LONG_LINE] = "over-long line",    [CSV_E_SYMTAB_FULL] = "symbol table full",
    };
    return (unsigned)r < CSV_E_COUNT ? names[r] : "?";
}

const char *csv_status_str(csv_status_t s)
{
    switch (s) {
    case CSV_OK:
        return "ok";
    case CSV_FULL:
        return "event array full";
    case CSV_ERR_EMPTY:
        return "empty file";
    case CSV_ERR_HEADER:
        return "bad header";
    case CSV_ERR_ROW:
        return "bad row (strict)";
    }
    return "?";
}

const char *csv_kind_str(csv_kind_t k)
{
    return k == CSV_KIND_TRADES ? "trades" : k == CSV_KIND_QUOTES ? "quotes" : "unknown";
}

/* The excerpt, printable: bytes outside ' '..'~', the quote and the backslash as escapes. */
static void escape(char *dst, size_t n, const csv_error_t *e)
{
    size_t o = 0;
    for (size_t i = 0; i < e->excerpt_len && o + 5 < n; i++) {
        const uint8_t ch = (uint8_t)e->excerpt[i];
        if (ch == '\'' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            dst[o++] = (char)ch;
        } else {
            static const char hex[] = "0123456789abcdef";
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[ch >> 4];
            dst[o++] = hex[ch & 15];
        }
    }
    if (e->excerpt_cut && o + 3 < n) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

/* "reason (column N 'excerpt')" or "reason ('excerpt')" for whole-line reasons. */
static int format_row(const csv_t *c, const csv_error_t *e, char *buf, size_t n)
{
    char ex[4 * CSV_EXCERPT_MAX + 8];
    escape(ex, sizeof ex, e);
    char why[64];
    if (e->reason == CSV_E_SYMTAB_FULL)
        snprintf(why, sizeof why, "symbol table full (capacity %u)",
                 c->symbols ? c->symbols->capacity : 0u);
    else if (e->reason == CSV_E_LONG_LINE)
        snprintf(why, sizeof why, "over-long line (%u bytes or more)", c->cfg.max_line);
    else
        snprintf(why, sizeof why, "%s", csv_reason_str(e->reason));
    if (e->column)
        return snprintf(buf, n, "%s (column %u '%s')", why, (unsigned)e->column, ex);
    return snprintf(buf, n, "%s ('%s')", why, ex);
}

int csv_format_error(const csv_t *c, char *buf, size_t n)
{
    if (n > 0)
        buf[0] = '\0';
    if (c->state != CSV_ST_STOPPED)
        return 0;
    const csv_error_t *e = &c->fatal;
    char ex[4 * CSV_EXCERPT_MAX + 8];
    escape(ex, sizeof ex, e);
    switch (c->stop_status) {
    case CSV_ERR_EMPTY:
        return snprintf(buf, n, "empty file: expected header '%s' or '%s'", HDR_TRADES, HDR_QUOTES);
    case CSV_ERR_HEADER:
        return snprintf(buf, n, "line 1: expected header '%s' or '%s', got '%s'", HDR_TRADES,
                        HDR_QUOTES, ex);
    case CSV_ERR_ROW: {
        char row[4 * CSV_EXCERPT_MAX + 128];
        format_row(c, e, row, sizeof row);
        return snprintf(buf, n, "line %llu: %s", (unsigned long long)e->line, row);
    }
    case CSV_OK:
    case CSV_FULL:
        break;
    }
    return 0;
}

void csv_report(const csv_t *c, FILE *f, const char *path)
{
    char msg[4 * CSV_EXCERPT_MAX + 256];
    if (!path)
        path = "csv";
    if (c->state == CSV_ST_STOPPED) {
        csv_format_error(c, msg, sizeof msg);
        fprintf(f, "%s: error: %s\n", path, msg);
    }
    for (uint32_t i = 0; i < c->nreported; i++) {
        format_row(c, &c->errors[i], msg, sizeof msg);
        fprintf(f, "%s:%llu: %s\n", path, (unsigned long long)c->errors[i].line, msg);
    }
    if (c->rows_bad > c->nreported)
        fprintf(f, "%s: %llu more bad rows not listed\n", path,
                (unsigned long long)(c->rows_bad - c->nreported));
    fprintf(f,
            "%s: %s CSV, %llu lines: %llu rows ok, %llu bad, %llu blank lines, %llu prices "
            "rounded, %llu out of order\n",
            path, csv_kind_str(c->kind), (unsigned long long)(c->line - 1),
            (unsigned long long)c->rows_ok, (unsigned long long)c->rows_bad,
            (unsigned long long)c->blank_lines, (unsigned long long)c->rounded,
            (unsigned long long)c->out_of_order);
    for (int r = 0; r < CSV_E_COUNT; r++)
        if (c->bad[r])
            fprintf(f, "%s:   %-24s %llu\n", path, csv_reason_str((csv_reason_t)r),
                    (unsigned long long)c->bad[r]);
}
