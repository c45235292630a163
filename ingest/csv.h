/*
 * csv: trades and quotes CSV decoder, hand-written, bounded and allocation-free.
 *
 * The header row (line 1) decides the kind: trades `timestamp,symbol,price,size[,side]` or
 * quotes `timestamp,symbol,bid,bid_size,ask,ask_size` (names case-insensitive, spaces and tabs
 * around them ignored, a UTF-8 BOM before it and CRLF line ends accepted). Each later line
 * becomes one event (event/event.h): EV_CSV_TRADE or EV_CSV_QUOTE, e->raw pointing at the line
 * in the caller's buffer (batch lifetime), raw_len 0. Fields are split at ',' with no quoting;
 * spaces and tabs around a field are ignored. Timestamps: an integer of nanoseconds since the
 * Unix epoch (digits only; so "20010102" is 20,010,102 ns, not a date), or ISO-8601
 * `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DD[T or space]HH:MM[:SS[.f{1,9}]][Z|+HH:MM|+HHMM|+HH]`
 * (no zone = UTC), from 1970-01-01 up to the int64 limit (2262-04-11). Prices: `[-]digits[.digits]`
 * (".5" and "5." accepted, no exponent) in 1/10000 dollars; digits past the fourth fractional
 * one are rounded half-up on the magnitude (123.45675 -> 1234568, -0.00005 -> -1), never an
 * error, and counted in `rounded`. Sizes: decimal digits, no sign (a leading '-' is the
 * "negative size" error), at most UINT64_MAX. Side: B, S, buy, sell (any case) or empty (0).
 * Symbols: 1..8 bytes of printable ASCII, interned into the caller's symtab_t (e->locate).
 * Lines that are empty (or only "\r") are skipped and counted, never an error.
 *
 * Ownership and memory: csv_t lives in caller memory and holds fixed arrays only (counters, the
 * first CSV_MAX_REPORTED error records, a date cache and a 256-entry symbol -> locate cache
 * checked against the table on every hit); csv_init and csv_decode_block allocate nothing. The
 * symbol table is the caller's and must outlive the decoder. One thread uses a csv_t at a time.
 *
 * Buffers: csv_decode_block decodes whole lines; the caller keeps the unconsumed tail and
 * presents it again at the start of the next buffer. The tail is always shorter than max_line:
 * a line of max_line bytes or more (not counting its '\n') is an "over-long line" error, and
 * when no '\n' is in sight the decoder consumes the line itself and skips to the next newline
 * on later calls. Every outcome (events, counters, error records) is independent of where the
 * buffers are cut. Bad rows are skipped and counted by reason; with cfg.strict the decoder stops
 * at the first bad row. Errors that end decoding (bad header, empty file, strict row error) are
 * sticky: later calls return the same status and consume nothing.
 */
#ifndef TICKCORE_INGEST_CSV_H
#define TICKCORE_INGEST_CSV_H

#include "event/event.h"
#include "event/symtab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CSV_DEFAULT_MAX_LINE 1024u
#define CSV_MIN_MAX_LINE     16u        /* cfg.max_line is clamped to [min, max] */
#define CSV_MAX_MAX_LINE     (1u << 24) /* 16 MiB */
#define CSV_MAX_REPORTED     32u        /* cfg.max_reported is clamped to this */
#define CSV_EXCERPT_MAX      40u        /* bytes of a bad field or line kept in a record */

typedef struct csv_cfg {
    bool strict;           /* stop at the first bad row (status CSV_ERR_ROW) */
    bool require_order;    /* a timestamp below an earlier row's is an error (else counted) */
    uint32_t max_line;     /* a line of max_line bytes or more ('\n' not counted, a '\r' counted)
                              is over-long; 0 = CSV_DEFAULT_MAX_LINE */
    uint32_t max_reported; /* error records kept (0 = none) */
} csv_cfg_t;

typedef enum csv_kind { CSV_KIND_NONE = 0, CSV_KIND_TRADES, CSV_KIND_QUOTES } csv_kind_t;

typedef enum csv_status {
    CSV_OK = 0,     /* every whole line decoded; a tail shorter than max_line may remain */
    CSV_FULL,       /* out[] is full; call again from buf + consumed */
    CSV_ERR_EMPTY,  /* at_eof before any byte: the file is empty */
    CSV_ERR_HEADER, /* line 1 is not one of the two headers (see csv_format_error) */
    CSV_ERR_ROW,    /* strict: a bad row; buf + consumed is the start of its line */
} csv_status_t;

/* Why a row was refused. Keep csv_reason_str() in csv.c in the same order. */
typedef enum csv_reason {
    CSV_E_MISSING_FIELD = 0,
    CSV_E_EXTRA_FIELD,
    CSV_E_TIMESTAMP,   /* not a timestamp of the forms above, or out of range */
    CSV_E_NUMBER,      /* a price or size that is not a number, or overflows */
    CSV_E_NEGATIVE,    /* a size with a leading '-' */
    CSV_E_SIDE,        /* side not B, S, buy, sell or empty */
    CSV_E_SYMBOL,      /* empty, longer than 8 bytes, or not printable ASCII */
    CSV_E_ORDER,       /* timestamp below the latest so far (only with require_order) */
    CSV_E_LONG_LINE,   /* max_line bytes or more before the '\n' */
    CSV_E_SYMTAB_FULL, /* a new symbol and the symbol table is full */
    CSV_E_COUNT
} csv_reason_t;

/* One refused row. */
typedef struct csv_error {
    uint64_t line;   /* 1-based; the header is line 1 */
    uint64_t offset; /* byte offset of the line's start in the input */
    csv_reason_t reason;
    uint16_t column;               /* 1-based field number; 0 for a whole-line reason */
    uint8_t excerpt_len;           /* bytes in excerpt */
    bool excerpt_cut;              /* the field or line was longer than the excerpt */
    char excerpt[CSV_EXCERPT_MAX]; /* the bad field (or the line's start), not NUL-terminated */
} csv_error_t;

typedef struct csv_result {
    size_t consumed; /* bytes the caller may drop */
    size_t n;        /* events written to out[] */
    csv_status_t status;
} csv_result_t;

typedef enum csv_state { CSV_ST_HEADER = 0, CSV_ST_ROWS, CSV_ST_SKIP, CSV_ST_STOPPED } csv_state_t;

#define CSV_SYM_CACHE_BITS 8

/* Decoder-private caches (pure speed: outcomes never depend on them). */
typedef struct csv_date_cache {
    char key[10]; /* the last valid "YYYY-MM-DD" */
    bool valid;
    int64_t days; /* its days since the epoch */
} csv_date_cache_t;

typedef struct csv_sym_cache {
    uint64_t key;    /* the symbol's bytes, zero-padded */
    uint16_t locate; /* 0 = empty */
} csv_sym_cache_t;

typedef struct csv {
    symtab_t *symbols;
    csv_cfg_t cfg; /* clamped copy */
    csv_state_t state;
    csv_status_t stop_status; /* the sticky status once state is CSV_ST_STOPPED */
    csv_kind_t kind;
    uint8_t ncols;    /* columns of the header: 4 or 5 (trades), 6 (quotes) */
    uint64_t line;    /* the line the next unconsumed byte belongs to (1-based) */
    uint64_t offset;  /* bytes consumed so far */
    uint64_t last_ts; /* the latest timestamp accepted so far */
    /* counters */
    uint64_t rows_ok;
    uint64_t rows_bad;
    uint64_t bad[CSV_E_COUNT];
    uint64_t blank_lines;
    uint64_t rounded;      /* prices with more than 4 fractional digits (rounded half-up) */
    uint64_t out_of_order; /* rows below the latest timestamp (errors only with require_order) */
    /* the first cfg.max_reported refused rows, and the error that stopped decoding */
    uint32_t nreported;
    csv_error_t errors[CSV_MAX_REPORTED];
    csv_error_t fatal; /* valid when state is CSV_ST_STOPPED */
    csv_date_cache_t date_cache;
    csv_sym_cache_t sym_cache[1u << CSV_SYM_CACHE_BITS];
} csv_t;

/* Set up c on caller memory for one input (a file or stream). symbols: the shared table (not
 * owned). cfg NULL = defaults (lenient, no order check). Allocates nothing; no fini needed. */
void csv_init(csv_t *c, symtab_t *symbols, const csv_cfg_t *cfg);

/* Decode whole lines of buf[0..len) into out[0..max). A final line without '\n' is decoded only
 * when at_eof. res->consumed: bytes the caller may drop; the unconsumed tail (< max_line bytes
 * unless the status is CSV_FULL or an error) is carried over by the caller and presented again at
 * the start of the next buffer. Returns res->status. CSV_ERR_EMPTY needs at_eof with len 0 and no
 * byte ever consumed. Allocates nothing; the ingest thread only. */
csv_status_t csv_decode_block(csv_t *c, const uint8_t *buf, size_t len, bool at_eof, ev_t *out,
                              size_t max, csv_result_t *res);

/* Does buf (the start of a file) look like one of our CSV headers? True when its first line
 * (after an optional BOM, ending at '\n' or at len) is a trades or quotes header. Pure. */
bool csv_probe(const uint8_t *buf, size_t len);

/* Parse one timestamp field (exactly len bytes, no surrounding spaces) into ns since the
 * epoch. 0 or -EINVAL. Exposed for tests and other tools. */
int csv_parse_ts(const char *s, size_t len, int64_t *ns);
/* Parse one price field into 1/10000 dollars (rounded half-up past 4 decimals: *rounded set).
 * 0 or -EINVAL (not a number) or -ERANGE (overflow). */
int csv_parse_price(const char *s, size_t len, int64_t *price, bool *rounded);

const char *csv_reason_str(csv_reason_t r);
const char *csv_status_str(csv_status_t s);
const char *csv_kind_str(csv_kind_t k);

/* Format the error that stopped decoding (header, empty file, strict row error) into buf, NUL
 * terminated and cut to n bytes, e.g. "line 1: expected header 'timestamp,symbol,price,size
 * [,side]' or 'timestamp,symbol,bid,bid_size,ask,ask_size', got '...'". Returns the length it
 * wanted (like snprintf); "" and 0 when decoding has not stopped. */
int csv_format_error(const csv_t *c, char *buf, size_t n);

/* Human report to f: the fatal error if any, the first reported errors with line numbers
 * ("path:LINE: reason (column N 'excerpt')"), then a summary: rows ok, rows bad by reason,
 * blank lines, rounded prices, out-of-order rows. Control path (uses stdio). */
void csv_report(const csv_t *c, FILE *f, const char *path);

#endif
