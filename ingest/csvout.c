/*
 * csvout: see csvout.h. Numbers are formatted two digits at a time from a 200-byte table,
 * right to left into a small stack array, then copied; a row is built directly in the buffer
 * once the buffer is known to have room for the longest row, so the only branch on the hot path
 * that leaves it is the flush. write(2) is retried on EINTR and on short writes.
 */
#include "ingest/csvout.h"
#include "base/fdio.h"

#include "base/hints.h"
#include "event/event.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const char DIGITS2[201] = "00010203040506070809"
                                 "10111213141516171819"
                                 "20212223242526272829"
                                 "30313233343536373839"
                                 "40414243444546474849"
                                 "50515253545556575859"
                                 "60616263646566676869"
                                 "70717273747576777879"
                                 "80818283848586878889"
                                 "90919293949596979899";

/* Digits of v, right-aligned so that they end at end; returns the first one. */
static inline char *u64_rev(char *end, uint64_t v)
{
    char *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, DIGITS2 + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, DIGITS2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

size_t csvout_format_u64(char *out, uint64_t v)
{
    char tmp[20];
    char *p = u64_rev(tmp + sizeof tmp, v);
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    return n;
}

size_t csvout_format_price(char *out, int64_t price_e4)
{
    /* magnitude without overflow for INT64_MIN */
    uint64_t m = price_e4 < 0 ? 0 - (uint64_t)price_e4 : (uint64_t)price_e4;
    uint64_t whole = m / (uint64_t)EV_PRICE_SCALE, frac = m % (uint64_t)EV_PRICE_SCALE;
    char tmp[22];
    char *end = tmp + sizeof tmp;
    end -= 4;
    memcpy(end, DIGITS2 + 2 * (frac / 100), 2);
    memcpy(end + 2, DIGITS2 + 2 * (frac % 100), 2);
    *--end = '.';
    char *p = u64_rev(end, whole);
    if (price_e4 < 0)
        *--p = '-';
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    return n;
}

/* write(2) all of buf[0..n): 0 or -errno (-EIO if the kernel wrote nothing and said no error). */
static int write_all(csvout_t *w, const char *buf, size_t n)
{
    int rc = fdio_write_all(w->fd, buf, n, &w->writes);
    if (rc == 0)
        w->bytes += n;
    return rc;
}

/* Cold: empty the buffer. Keeps the first error. */
static HINT_COLD int drain(csvout_t *w)
{
    if (w->err)
        return w->err;
    int rc = write_all(w, w->buf, w->len);
    w->len = 0; /* on error the bytes are lost either way: the error says so, and stays */
    if (rc < 0)
        w->err = rc;
    return rc;
}

int csvout_open(csvout_t *w, const char *path, size_t buf_bytes)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (!path || !path[0])
        return -EINVAL;
    if (buf_bytes == 0)
        buf_bytes = CSVOUT_DEFAULT_BUF;
    if (buf_bytes < CSVOUT_MIN_BUF || buf_bytes > CSVOUT_MAX_BUF)
        return -EINVAL;
    char *buf = mem_alloc_prefault(MEM_TAG_INGEST, buf_bytes, MEM_CACHE_LINE);
    if (!buf)
        return -ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = -errno;
        mem_free(MEM_TAG_INGEST, buf, buf_bytes);
        return rc;
    }
    w->fd = fd;
    w->buf = buf;
    w->cap = buf_bytes;
    w->len = sizeof CSVOUT_HEADER - 1;
    memcpy(w->buf, CSVOUT_HEADER, w->len);
    return 0;
}

/* 1..8 bytes of printable ASCII other than space and ','; returns the length or 0. */
static inline size_t symbol_len(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    while (n <= CSVOUT_SYM_MAX && s[n]) {
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c > 0x7e || c == ',')
            return 0;
        n++;
    }
    if (n == 0 || n > CSVOUT_SYM_MAX)
        return 0;
    return n;
}

int csvout_trade(csvout_t *w, uint64_t ts_ns, const char *symbol, int64_t price_e4, uint64_t size,
                 uint8_t side)
{
    if (unlikely(!w->buf))
        return -EBADF;
    if (unlikely(w->err))
        return w->err;
    size_t slen = symbol_len(symbol);
    if (unlikely(slen == 0 || (side != 0 && side != 'B' && side != 'S'))) {
        w->refused++;
        return -EINVAL;
    }
    if (unlikely(ts_ns > (uint64_t)INT64_MAX || price_e4 == INT64_MIN)) {
        w->refused++;
        return -ERANGE;
    }
    if (unlikely(w->cap - w->len < CSVOUT_MAX_ROW)) {
        int rc = drain(w);
        if (rc < 0)
            return rc;
    }
    char *p = w->buf + w->len;
    p += csvout_format_u64(p, ts_ns);
    *p++ = ',';
    memcpy(p, symbol, slen);
    p += slen;
    *p++ = ',';
    p += csvout_format_price(p, price_e4);
    *p++ = ',';
    p += csvout_format_u64(p, size);
    *p++ = ',';
    if (side)
        *p++ = (char)side;
    *p++ = '\n';
    w->len = (size_t)(p - w->buf);
    w->rows++;
    return 0;
}

int csvout_flush(csvout_t *w)
{
    if (!w->buf)
        return -EBADF;
    if (w->err)
        return w->err;
    return w->len ? drain(w) : 0;
}

int csvout_close(csvout_t *w)
{
    if (!w->buf)
        return 0;
    int rc = csvout_flush(w);
    if (close(w->fd) < 0 && rc == 0)
        rc = errno == EINTR ? 0 : -errno; /* EINTR: the descriptor is gone on Linux */
    mem_free(MEM_TAG_INGEST, w->buf, w->cap);
    w->buf = NULL;
    w->fd = -1;
    w->cap = w->len = 0;
    return rc;
}
