/*
 * csvout: a buffered writer of trades CSV, for exporting what the engine saw (`tickcore replay
 * --trades-out FILE.csv`) in the format ingest/csv reads back: the header
 * `timestamp,symbol,price,size,side`, then one row per trade with the timestamp as integer
 * nanoseconds, the price with exactly 4 decimals from its 1/10000-dollar integer (1 -> 0.0001,
 * -1 -> -0.0001, 1234500 -> 123.4500), the size as decimal digits and the side as B, S or empty.
 * Rows are formatted by hand (no printf, no locale) into one buffer that csvout_open allocates
 * (tag MEM_TAG_INGEST, prefaulted, before the seal) and that is written with write(2) whenever
 * less than a longest row (CSVOUT_MAX_ROW bytes) is left in it, so a row is never split across
 * two fill levels and the steady state allocates nothing. Errors: a row the reader could not take
 * back (bad symbol or side, timestamp past INT64_MAX, price INT64_MIN) is refused with
 * -EINVAL/-ERANGE and counted, nothing written; an I/O error is kept (sticky -errno): every later
 * call returns it and writes nothing, and csvout_close reports it. Ownership: csvout_t lives in
 * caller memory and owns the buffer and the file descriptor from open to close. One thread uses a
 * csvout_t at a time.
 */
#ifndef TICKCORE_INGEST_CSVOUT_H
#define TICKCORE_INGEST_CSVOUT_H

#include <stddef.h>
#include <stdint.h>

#define CSVOUT_HEADER      "timestamp,symbol,price,size,side\n"
#define CSVOUT_MAX_ROW     80u        /* 19 + 1 + 8 + 1 + 21 + 1 + 20 + 1 + 1 + 1 = 74, rounded */
#define CSVOUT_MIN_BUF     128u       /* smallest buffer csvout_open takes */
#define CSVOUT_MAX_BUF     (1u << 30) /* largest */
#define CSVOUT_DEFAULT_BUF (1u << 20) /* buf_bytes 0 */
#define CSVOUT_SYM_MAX     8u         /* symbols: 1..8 bytes, as ingest/csv and ITCH allow */

typedef struct csvout {
    int fd;           /* -1 when not open */
    int err;          /* the first I/O error (-errno), sticky; 0 = none */
    char *buf;        /* [cap], MEM_TAG_INGEST */
    size_t cap;       /* buffer bytes */
    size_t len;       /* bytes waiting in buf */
    uint64_t rows;    /* trade rows accepted (header not counted) */
    uint64_t refused; /* rows refused (-EINVAL, -ERANGE) */
    uint64_t bytes;   /* bytes handed to write(2) successfully, header included */
    uint64_t writes;  /* write(2) calls that wrote something */
} csvout_t;

/* Create or truncate path (mode 0644), allocate a buffer of buf_bytes (0 = CSVOUT_DEFAULT_BUF;
 * CSVOUT_MIN_BUF..CSVOUT_MAX_BUF, else -EINVAL) with mem_alloc tag MEM_TAG_INGEST, and put the
 * header in it. 0, -EINVAL, -ENOMEM or the -errno of open(2); on failure w is left closed
 * (csvout_close on it is a harmless no-op). Control path (before the seal); any thread. */
int csvout_open(csvout_t *w, const char *path, size_t buf_bytes);

/* Append one trade row. symbol: NUL-terminated, 1..CSVOUT_SYM_MAX bytes of printable ASCII
 * other than space and ',' (what ingest/csv accepts: 0x21..0x7e, the field split at ',');
 * side: 'B', 'S' or 0 (empty field); ts_ns <= INT64_MAX and price_e4 > INT64_MIN (the reader's
 * limits; negative and zero prices are written as given, in 1/10000 dollars). Returns 0; -EINVAL
 * (bad symbol or side) or -ERANGE (ts_ns, price_e4) for a refused row, counted in refused, nothing
 * written; the sticky I/O error if there is one (or -EBADF when not open). Writes the buffer with
 * write(2) when it is nearly full. Allocates nothing; the owner thread only. */
int csvout_trade(csvout_t *w, uint64_t ts_ns, const char *symbol, int64_t price_e4, uint64_t size,
                 uint8_t side);

/* Write out whatever is buffered. 0 or the sticky -errno. */
int csvout_flush(csvout_t *w);

/* Flush, close the file, free the buffer. Returns 0, or the first error: the sticky one, the
 * flush's, or close(2)'s. Always releases everything; safe on a closed or zeroed csvout_t
 * (returns 0 then). Control path. */
int csvout_close(csvout_t *w);

/* Format one price in 1/10000 dollars with exactly 4 decimals into out (at least 22 bytes; no
 * NUL). Returns the length. Exposed for tests and other writers. Pure. */
size_t csvout_format_price(char *out, int64_t price_e4);

/* Format an unsigned integer in decimal into out (at least 20 bytes; no NUL). Returns the
 * length. Pure. */
size_t csvout_format_u64(char *out, uint64_t v);

#endif
