/*
 * jbuf: see jbuf.h. Every write checks room for its whole piece first (JSON strings: the whole
 * escaped string, rolled back if it does not fit), so a failed write leaves the buffer as it
 * was before it and the text stays a clean prefix.
 */
#include "base/jbuf.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void jbuf_init(jbuf_t *jb, char *buf, size_t cap)
{
    jb->buf = buf;
    jb->cap = cap;
    jb->len = 0;
    jb->overflow = cap == 0;
    if (cap)
        buf[0] = '\0';
}

void jbuf_reset(jbuf_t *jb)
{
    jb->len = 0;
    jb->overflow = jb->cap == 0;
    if (jb->cap)
        jb->buf[0] = '\0';
}

/* Bytes that can still be written, keeping one for the NUL. */
static inline size_t room(const jbuf_t *jb)
{
    return jb->overflow ? 0 : jb->cap - 1 - jb->len;
}

static void overflow_at(jbuf_t *jb, size_t len)
{
    jb->overflow = true;
    jb->len = len;
    if (jb->cap)
        jb->buf[len] = '\0';
}

void jbuf_putn(jbuf_t *jb, const char *s, size_t n)
{
    if (jb->overflow)
        return;
    if (n > room(jb)) {
        overflow_at(jb, jb->len);
        return;
    }
    memcpy(jb->buf + jb->len, s, n);
    jb->len += n;
    jb->buf[jb->len] = '\0';
}

void jbuf_puts(jbuf_t *jb, const char *s)
{
    jbuf_putn(jb, s, strlen(s));
}

void jbuf_putc(jbuf_t *jb, char c)
{
    jbuf_putn(jb, &c, 1);
}

void jbuf_printf(jbuf_t *jb, const char *fmt, ...)
{
    if (jb->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    size_t avail = jb->cap - jb->len; /* includes the NUL */
    int n = vsnprintf(jb->buf + jb->len, avail, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= avail) {
        overflow_at(jb, jb->len); /* drop the partial text vsnprintf wrote */
        return;
    }
    jb->len += (size_t)n;
}

size_t jbuf_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

void jbuf_strn(jbuf_t *jb, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (jb->overflow)
        return;
    if (str == NULL) {
        jbuf_putn(jb, "null", 4);
        return;
    }
    const unsigned char *s = (const unsigned char *)str;
    size_t start = jb->len;
    char *out = jb->buf;
    size_t end = jb->cap - 1; /* last usable index + 1 */
    size_t o = start;
#define EMIT(ptr, k)                                                                               \
    do {                                                                                           \
        if ((k) > end - o)                                                                         \
            goto full;                                                                             \
        memcpy(out + o, (ptr), (k));                                                               \
        o += (k);                                                                                  \
    } while (0)
    EMIT("\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            EMIT(&s[i], 1);
            i++;
            continue;
        }
        switch (c) {
        case '"':
            EMIT("\\\"", 2);
            i++;
            continue;
        case '\\':
            EMIT("\\\\", 2);
            i++;
            continue;
        case '\n':
            EMIT("\\n", 2);
            i++;
            continue;
        case '\r':
            EMIT("\\r", 2);
            i++;
            continue;
        case '\t':
            EMIT("\\t", 2);
            i++;
            continue;
        default:
            break;
        }
        if (c < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            EMIT(u, 6);
            i++;
            continue;
        }
        size_t k = jbuf_utf8_seq(s + i, n - i);
        if (k == 0) {
            EMIT("\\ufffd", 6);
            i++;
        } else {
            EMIT(s + i, k);
            i += k;
        }
    }
    EMIT("\"", 1);
#undef EMIT
    jb->len = o;
    out[o] = '\0';
    return;
full:
    overflow_at(jb, start);
}

void jbuf_str(jbuf_t *jb, const char *s)
{
    jbuf_strn(jb, s, s ? strlen(s) : 0);
}

void jbuf_num(jbuf_t *jb, double v)
{
    if (!isfinite(v)) {
        jbuf_putn(jb, "null", 4);
        return;
    }
    jbuf_printf(jb, "%.10g", v);
}

void jbuf_u64(jbuf_t *jb, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jbuf_putn(jb, tmp + i, sizeof tmp - i);
}

void jbuf_i64(jbuf_t *jb, int64_t v)
{
    if (v < 0) {
        size_t start = jb->len;
        jbuf_putc(jb, '-');
        jbuf_u64(jb, (uint64_t)0 - (uint64_t)v);
        if (jb->overflow)
            overflow_at(jb, start);
        return;
    }
    jbuf_u64(jb, (uint64_t)v);
}

void jbuf_fput_str(FILE *f, const char *s)
{
    char buf[8192];
    jbuf_t jb;
    size_t n = strlen(s);
    do { /* a prefix short enough that its escaped form fits */
        jbuf_init(&jb, buf, sizeof buf);
        jbuf_strn(&jb, s, n);
        n /= 2;
    } while (jbuf_overflow(&jb));
    fwrite(buf, 1, jbuf_len(&jb), f);
}
