/*
 * reader: see reader.h. Two sets of buffers go through the same read queue code: the output
 * buffers (read into directly for plain files) and the compressed-input ring (gzip files). Each
 * buffer carries its own stream offset, so completions may come back in any order; hand-out is
 * strictly sequential by offset. Errors met after some output was produced are kept in `failed`
 * and returned by the next call, so every byte before the error reaches the consumer.
 */
#include "ingest/reader.h"

#include "mem/mem.h"

#include <valgrind/memcheck.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define KIND_OUT 0u
#define KIND_GZ  1u

void reader_cfg_default(reader_cfg_t *cfg)
{
    *cfg = (reader_cfg_t){
        .nbufs = 8,
        .buf_size = 1u << 20,
        .headroom = 64u << 10,
        .queue_depth = 4,
        .gz_bufs = 4,
        .gz_buf_size = 256u << 10,
    };
}

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

static size_t buf_stride(const reader_t *r)
{
    return r->cfg.headroom + r->cfg.buf_size;
}

int reader_init(reader_t *r, const reader_cfg_t *cfg)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->gz_cur = -1;
    r->cfg = *cfg;
    reader_cfg_t *c = &r->cfg;
    if (c->nbufs < 2 || c->buf_size < 64 || c->gz_bufs < 2 || c->gz_buf_size < 64) {
        snprintf(r->err, sizeof r->err, "reader: need at least 2 buffers of 64 bytes");
        return -EINVAL;
    }
    c->headroom = (uint32_t)round_up(c->headroom ? c->headroom : 64, 64);
    c->buf_size = (uint32_t)round_up(c->buf_size, 64);
    if (c->queue_depth == 0 || c->queue_depth > c->nbufs - 1)
        c->queue_depth = c->nbufs - 1; /* one buffer stays with the consumer */
    if (c->queue_depth > c->gz_bufs - 1)
        c->queue_depth = c->gz_bufs - 1;

    r->out = mem_calloc(MEM_TAG_INGEST, c->nbufs, sizeof *r->out);
    r->gz = mem_calloc(MEM_TAG_INGEST, c->gz_bufs, sizeof *r->gz);
    uint8_t *slab = mem_alloc_prefault(MEM_TAG_INGEST, (size_t)c->nbufs * buf_stride(r), 4096);
    uint8_t *gzslab = mem_alloc_prefault(MEM_TAG_INGEST, (size_t)c->gz_bufs * c->gz_buf_size, 4096);
    r->inflate = mem_zalloc_aligned(MEM_TAG_INGEST, sizeof *r->inflate, 64);
    if (!r->out || !r->gz || !slab || !gzslab || !r->inflate) {
        if (slab)
            mem_free(MEM_TAG_INGEST, slab, (size_t)c->nbufs * buf_stride(r));
        if (gzslab)
            mem_free(MEM_TAG_INGEST, gzslab, (size_t)c->gz_bufs * c->gz_buf_size);
        r->out[0].base = NULL;
        reader_fini(r);
        snprintf(r->err, sizeof r->err, "reader: out of memory for I/O buffers");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->nbufs; i++)
        r->out[i].base = slab + (size_t)i * buf_stride(r);
    for (uint32_t i = 0; i < c->gz_bufs; i++)
        r->gz[i].base = gzslab + (size_t)i * c->gz_buf_size;

    if (c->force_pread)
        return 0;
    unsigned entries = 8;
    while (entries < 2 * c->queue_depth)
        entries <<= 1;
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) {
        r->uring_err = rc;
        return 0; /* pread fallback; reader_mode() says so */
    }
    r->uring_ok = true;
    /* Register every buffer that is read into: output buffers, then the gzip input ring. */
    uint32_t n = c->nbufs + c->gz_bufs;
    struct iovec *iov = mem_calloc(MEM_TAG_INGEST, n, sizeof *iov);
    if (iov) {
        for (uint32_t i = 0; i < c->nbufs; i++)
            iov[i] = (struct iovec){r->out[i].base + c->headroom, c->buf_size};
        for (uint32_t i = 0; i < c->gz_bufs; i++)
            iov[c->nbufs + i] = (struct iovec){r->gz[i].base, c->gz_buf_size};
        r->registered = io_uring_register_buffers(&r->ring, iov, n) == 0;
        mem_free(MEM_TAG_INGEST, iov, (size_t)n * sizeof *iov);
    }
    return 0;
}

void reader_close(reader_t *r)
{
    if (r->fd < 0)
        return;
    /* Reap reads still in flight before their buffers can be reused. */
    while (r->uring_ok && r->inflight > 0) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&r->ring, &cqe) < 0)
            break;
        io_uring_cqe_seen(&r->ring, cqe);
        r->inflight--;
    }
    close(r->fd);
    r->fd = -1;
}

void reader_fini(reader_t *r)
{
    reader_close(r);
    const reader_cfg_t *c = &r->cfg;
    if (r->uring_ok) {
        if (r->registered)
            io_uring_unregister_buffers(&r->ring);
        io_uring_queue_exit(&r->ring);
    }
    if (r->out && r->out[0].base)
        mem_free(MEM_TAG_INGEST, r->out[0].base, (size_t)c->nbufs * buf_stride(r));
    if (r->gz && r->gz[0].base)
        mem_free(MEM_TAG_INGEST, r->gz[0].base, (size_t)c->gz_bufs * c->gz_buf_size);
    if (r->out)
        mem_free(MEM_TAG_INGEST, r->out, c->nbufs * sizeof *r->out);
    if (r->gz)
        mem_free(MEM_TAG_INGEST, r->gz, c->gz_bufs * sizeof *r->gz);
    if (r->inflate)
        mem_free(MEM_TAG_INGEST, r->inflate, sizeof *r->inflate);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

const char *reader_mode(const reader_t *r)
{
    if (!r->uring_ok)
        return r->cfg.force_pread ? "pread (requested)" : "pread (io_uring unavailable)";
    return r->registered ? "io_uring, registered buffers" : "io_uring, unregistered buffers";
}

bool reader_is_gzip(const reader_t *r)
{
    return r->is_gzip;
}

static void fail(reader_t *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(reader_t *r, int err, const char *fmt, ...)
{
    if (r->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->failed = true;
    r->error = err > 0 ? -err : err;
}

int reader_open(reader_t *r, const char *path)
{
    reader_close(r);
    r->at_eof = r->failed = false;
    r->error = 0;
    r->bytes_read = r->reads = r->short_reads = r->chunks = 0; /* figures are per file */
    r->is_gzip = false;
    r->next_read_off = r->next_seq_off = r->stream_off = 0;
    r->inflight = 0;
    r->gz_cur = -1;
    r->gz_pos = 0;
    r->gz_in_off = 0;
    r->gz_members = 0;
    r->gz_member_done = false;
    r->err[0] = '\0';
    for (uint32_t i = 0; i < r->cfg.nbufs; i++)
        r->out[i].state = RB_FREE;
    for (uint32_t i = 0; i < r->cfg.gz_bufs; i++)
        r->gz[i].state = RB_FREE;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(r->err, sizeof r->err, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        snprintf(r->err, sizeof r->err, "%s: cannot read: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    r->fd = fd;
    r->regular = S_ISREG(st.st_mode);
    r->file_size = r->regular ? (uint64_t)st.st_size : 0;
    uint8_t magic[2];
    if (r->regular && pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        r->is_gzip = true;
        isal_inflate_init(r->inflate);
        r->inflate->crc_flag = ISAL_GZIP;
    }
    return 0;
}

/* ---- the read queue, shared by both buffer sets ----------------------------------------- */

static reader_buf_t *set_bufs(reader_t *r, unsigned kind)
{
    return kind == KIND_OUT ? r->out : r->gz;
}
static uint32_t set_n(const reader_t *r, unsigned kind)
{
    return kind == KIND_OUT ? r->cfg.nbufs : r->cfg.gz_bufs;
}
static uint32_t set_size(const reader_t *r, unsigned kind)
{
    return kind == KIND_OUT ? r->cfg.buf_size : r->cfg.gz_buf_size;
}
static uint8_t *buf_data(const reader_t *r, unsigned kind, const reader_buf_t *b)
{
    return kind == KIND_OUT ? b->base + r->cfg.headroom : b->base;
}

/* Read (the rest of) buffer i synchronously or queue it on the ring. */
static void issue(reader_t *r, unsigned kind, uint32_t i)
{
    reader_buf_t *b = &set_bufs(r, kind)[i];
    uint8_t *dst = buf_data(r, kind, b) + b->got;
    uint32_t len = b->want - b->got;
    uint64_t off = b->offset + b->got;
    r->reads++;
    if (!r->uring_ok) {
        ssize_t n = pread(r->fd, dst, len, (off_t)off);
        if (n < 0) {
            b->err = -errno;
            b->state = RB_READY;
        } else if (n == 0 || (uint32_t)n == len || !r->regular) {
            b->got += (uint32_t)n;
            r->bytes_read += (uint64_t)n;
            b->state = RB_READY;
        } else {
            b->got += (uint32_t)n;
            r->bytes_read += (uint64_t)n;
            r->short_reads++;
            issue(r, kind, i);
        }
        return;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) { /* cannot happen: the ring has twice queue_depth entries */
        b->err = -EBUSY;
        b->state = RB_READY;
        return;
    }
    if (r->registered) {
        int idx = (int)(kind == KIND_OUT ? i : r->cfg.nbufs + i);
        io_uring_prep_read_fixed(sqe, r->fd, dst, len, off, idx);
    } else {
        io_uring_prep_read(sqe, r->fd, dst, len, off);
    }
    io_uring_sqe_set_data64(sqe, ((uint64_t)kind << 32) | i);
    io_uring_submit(&r->ring);
    b->state = RB_INFLIGHT;
    r->inflight++;
}

/* Start reads into free buffers of a set, in file order, up to the queue depth. */
static void fill_queue(reader_t *r, unsigned kind)
{
    reader_buf_t *bufs = set_bufs(r, kind);
    uint32_t n = set_n(r, kind), size = set_size(r, kind);
    for (uint32_t i = 0; i < n; i++) {
        if (r->inflight >= (r->regular ? r->cfg.queue_depth : 1u))
            return;
        if (r->regular && r->next_read_off >= r->file_size)
            return;
        if (!r->regular && r->at_eof)
            return;
        if (bufs[i].state != RB_FREE)
            continue;
        reader_buf_t *b = &bufs[i];
        b->offset = r->next_read_off;
        b->want = r->regular ? (uint32_t)(r->file_size - r->next_read_off < size
                                              ? r->file_size - r->next_read_off
                                              : size)
                             : size;
        b->got = 0;
        b->err = 0;
        if (r->regular)
            r->next_read_off += b->want;
        issue(r, kind, i);
        if (!r->uring_ok && !r->regular)
            return; /* one synchronous read at a time from a pipe */
    }
}

static void reap_one(reader_t *r)
{
    struct io_uring_cqe *cqe;
    int rc = io_uring_wait_cqe(&r->ring, &cqe);
    if (rc < 0) {
        fail(r, rc, "io_uring wait: %s", strerror(-rc));
        return;
    }
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    r->inflight--;
    unsigned kind = (unsigned)(ud >> 32);
    uint32_t i = (uint32_t)ud;
    reader_buf_t *b = &set_bufs(r, kind)[i];
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN) {
            issue(r, kind, i);
            return;
        }
        b->err = res;
        b->state = RB_READY;
        return;
    }
    /* The kernel wrote these bytes behind valgrind's back (it does not model io_uring
     * completions): tell memcheck they are defined. A few no-op instructions otherwise. */
    (void)VALGRIND_MAKE_MEM_DEFINED(buf_data(r, kind, b) + b->got, (size_t)res);
    b->got += (uint32_t)res;
    r->bytes_read += (uint64_t)res;
    if (res > 0 && b->got < b->want && r->regular) {
        r->short_reads++;
        issue(r, kind, i); /* the rest of a short read */
        return;
    }
    b->state = RB_READY;
}

/* The next buffer of a set in stream order, filled; NULL at the end or on error. */
static reader_buf_t *next_in_order(reader_t *r, unsigned kind, uint32_t *idx)
{
    reader_buf_t *bufs = set_bufs(r, kind);
    uint32_t n = set_n(r, kind);
    for (;;) {
        if (r->failed)
            return NULL;
        fill_queue(r, kind);
        reader_buf_t *want = NULL;
        for (uint32_t i = 0; i < n; i++) {
            if ((bufs[i].state == RB_INFLIGHT || bufs[i].state == RB_READY) &&
                bufs[i].offset == r->next_seq_off) {
                want = &bufs[i];
                *idx = i;
                break;
            }
        }
        if (!want)
            return NULL; /* nothing more to read */
        if (want->state == RB_INFLIGHT) {
            reap_one(r);
            continue;
        }
        if (want->err) {
            fail(r, want->err, "read error at byte %llu: %s", (unsigned long long)want->offset,
                 strerror(-want->err));
            want->state = RB_FREE;
            return NULL;
        }
        if (want->got == 0) { /* end of file (pipe), or a file that shrank */
            want->state = RB_FREE;
            r->at_eof = true;
            if (r->regular)
                r->next_read_off = r->file_size = r->next_seq_off;
            return NULL;
        }
        if (!r->regular) {
            /* a pipe: offsets are assigned as bytes arrive */
            r->next_read_off = want->offset + want->got;
        } else if (want->got < want->want) {
            /* the file shrank under us: stop at what was read */
            r->file_size = want->offset + want->got;
            r->next_read_off = r->file_size;
        }
        r->next_seq_off = want->offset + want->got;
        want->state = RB_HELD;
        return want;
    }
}

/* ---- hand-out ---------------------------------------------------------------------------- */

static int take_free_out(reader_t *r)
{
    for (uint32_t i = 0; i < r->cfg.nbufs; i++)
        if (r->out[i].state == RB_FREE)
            return (int)i;
    return -1;
}

/* gzip: inflate into output buffer i until it is full or the compressed stream ends. */
static size_t inflate_into(reader_t *r, uint32_t i)
{
    struct inflate_state *st = r->inflate;
    uint8_t *dst = r->out[i].base + r->cfg.headroom;
    uint32_t avail = r->cfg.buf_size;
    while (avail > 0 && !r->failed) {
        if (r->gz_cur < 0 || r->gz_pos >= r->gz[r->gz_cur].got) {
            if (r->gz_cur >= 0)
                r->gz[r->gz_cur].state = RB_FREE;
            uint32_t gi;
            reader_buf_t *g = next_in_order(r, KIND_GZ, &gi);
            if (!g) {
                r->gz_cur = -1;
                if (!r->failed && !r->gz_member_done)
                    fail(r, EPROTO,
                         "truncated gzip stream: compressed input ends at byte %llu inside "
                         "member %llu",
                         (unsigned long long)r->next_seq_off,
                         (unsigned long long)r->gz_members + 1);
                break;
            }
            r->gz_cur = (int)gi;
            r->gz_pos = 0;
            r->gz_in_off = g->offset;
        }
        reader_buf_t *g = &r->gz[r->gz_cur];
        if (r->gz_member_done) { /* more input after a finished member: the next member */
            const uint8_t *m = g->base + r->gz_pos;
            if (g->got - r->gz_pos >= 2 && (m[0] != 0x1f || m[1] != 0x8b)) {
                fail(r, EPROTO,
                     "trailing data at compressed byte %llu after gzip member %llu: not a gzip "
                     "member header (1f 8b)",
                     (unsigned long long)(r->gz_in_off + r->gz_pos),
                     (unsigned long long)r->gz_members);
                break;
            }
            isal_inflate_reset(st);
            st->crc_flag = ISAL_GZIP;
            r->gz_member_done = false;
        }
        st->next_in = g->base + r->gz_pos;
        st->avail_in = g->got - r->gz_pos;
        st->next_out = dst;
        st->avail_out = avail;
        int rc = isal_inflate(st);
        uint32_t used = (g->got - r->gz_pos) - st->avail_in;
        uint32_t made = avail - st->avail_out;
        if (rc < 0) {
            const char *why = rc == ISAL_INVALID_WRAPPER      ? "not a gzip member header"
                              : rc == ISAL_UNSUPPORTED_METHOD ? "unsupported compression method"
                              : rc == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch"
                              : rc == ISAL_INVALID_BLOCK      ? "invalid deflate block"
                              : rc == ISAL_INVALID_SYMBOL     ? "invalid deflate symbol"
                              : rc == ISAL_INVALID_LOOKBACK   ? "invalid lookback distance"
                                                              : "inflate error";
            fail(r, EPROTO, "corrupt gzip data near compressed byte %llu (member %llu): %s",
                 (unsigned long long)(r->gz_in_off + r->gz_pos + used),
                 (unsigned long long)r->gz_members + 1, why);
            break;
        }
        r->gz_pos += used;
        dst += made;
        avail -= made;
        if (st->block_state == ISAL_BLOCK_FINISH) {
            r->gz_member_done = true;
            r->gz_members++;
        } else if (used == 0 && made == 0 && st->avail_in > 0) {
            fail(r, EPROTO, "gzip inflate made no progress at compressed byte %llu",
                 (unsigned long long)(r->gz_in_off + r->gz_pos));
            break;
        }
    }
    return r->cfg.buf_size - avail;
}

int reader_next(reader_t *r, reader_chunk_t *out, const uint8_t *carry, size_t carry_len)
{
    if (r->fd < 0) {
        snprintf(r->err, sizeof r->err, "reader: no file open");
        return -EBADF;
    }
    if (carry_len > r->cfg.headroom) {
        fail(r, E2BIG, "a record of more than %u bytes (the carry-over headroom) at byte %llu",
             r->cfg.headroom, (unsigned long long)(r->stream_off - carry_len));
        return -E2BIG;
    }
    if (r->failed)
        return r->error;
    reader_buf_t *b;
    uint32_t idx;
    size_t got;
    if (!r->is_gzip) {
        b = next_in_order(r, KIND_OUT, &idx);
        if (!b)
            return r->failed ? r->error : 0;
        got = b->got;
    } else {
        int i = take_free_out(r);
        if (i < 0) {
            fail(r, ENOBUFS, "reader: every buffer is held by the consumer");
            return -ENOBUFS;
        }
        idx = (uint32_t)i;
        b = &r->out[idx];
        got = inflate_into(r, idx);
        if (got == 0)
            return r->failed ? r->error : 0;
        b->state = RB_HELD;
    }
    uint8_t *data = b->base + r->cfg.headroom;
    if (carry_len)
        memmove(data - carry_len, carry, carry_len);
    out->data = data - carry_len;
    out->len = carry_len + got;
    out->offset = r->stream_off - carry_len;
    out->buf = idx;
    r->stream_off += got;
    r->chunks++;
    return 1;
}

void reader_release(reader_t *r, uint32_t buf)
{
    if (buf < r->cfg.nbufs && r->out[buf].state == RB_HELD)
        r->out[buf].state = RB_FREE;
}
