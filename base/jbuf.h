/*
 * jbuf: a bounded text writer over a buffer the caller owns, for HTTP responses (JSON,
 * Prometheus text). It never allocates and never writes past cap: a write that does not fit is
 * dropped whole, the overflow flag is set and stays set (every later write is a no-op), so the
 * buffer always holds a clean prefix of what was asked, NUL-terminated when cap > 0. The caller
 * checks jbuf_overflow() once at the end instead of after every write. JSON strings are escaped
 * ("\\", "\"", \n \r \t, other control bytes as \u00XX) and must be UTF-8: invalid bytes become
 * U+FFFD, so any input (a URL, a symbol from a feed) gives valid JSON. Numbers use the C locale
 * (the engine never calls setlocale). One thread at a time per jbuf.
 */
#ifndef TICKCORE_BASE_JBUF_H
#define TICKCORE_BASE_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct jbuf {
    char *buf;
    size_t cap; /* bytes of buf, including the terminating NUL */
    size_t len; /* bytes written, excluding the NUL */
    bool overflow;
} jbuf_t;

/* Write into buf[0..cap). cap may be 0 (buf may then be NULL): every write overflows. */
void jbuf_init(jbuf_t *jb, char *buf, size_t cap);
/* Empty the buffer and clear the overflow flag. */
void jbuf_reset(jbuf_t *jb);

/* printf-style (vsnprintf). On overflow nothing of this call is kept. */
void jbuf_printf(jbuf_t *jb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raw bytes, no escaping. */
void jbuf_puts(jbuf_t *jb, const char *s);
void jbuf_putn(jbuf_t *jb, const char *s, size_t n);
void jbuf_putc(jbuf_t *jb, char c);

/* A JSON string: quotes, escaping, invalid UTF-8 replaced by U+FFFD. NULL writes null. */
void jbuf_str(jbuf_t *jb, const char *s);
void jbuf_strn(jbuf_t *jb, const char *s, size_t n);
/* The same JSON string (quoted, escaped) written to a stdio stream: the reports' --json output.
 * A string whose escaped form exceeds 8 KiB is cut (control path; no allocation). */
void jbuf_fput_str(FILE *f, const char *s);
/* A JSON number with %.10g; NaN and infinities (not JSON) write null. */
void jbuf_num(jbuf_t *jb, double v);
void jbuf_u64(jbuf_t *jb, uint64_t v);
void jbuf_i64(jbuf_t *jb, int64_t v);

/* Length of the valid UTF-8 sequence that starts at s (n >= 1 bytes available), or 0 if it is
 * not valid (overlong forms, surrogates and code points above U+10FFFF are not). */
size_t jbuf_utf8_seq(const unsigned char *s, size_t n);

static inline size_t jbuf_len(const jbuf_t *jb)
{
    return jb->len;
}

static inline bool jbuf_overflow(const jbuf_t *jb)
{
    return jb->overflow;
}

#endif
