/*
 * reader: see reader.h. Plain files go through the read queue on the consumer's thread: each
 * output buffer carries its own file offset, so completions may come back in any order; hand-out
 * is strictly sequential by offset. gzip files go through the inflate threads (the second half of
 * this file): the consumer only waits for the next piece in (claim, piece) order. Errors met after
 * some output was produced are kept in `failed` and returned by the next call, so every byte
 * before the error reaches the consumer.
 */
#include "ingest/reader.h"

#include "mem/mem.h"

#include <isa-l.h>
#include <valgrind/memcheck.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* A claim holds consecutive sized members until it has at least this much compressed input
 * (BGZF's 64 KiB blocks are grouped; gen's members of a few MiB are one claim each). */
#define GZ_CLAIM_MIN  (1u << 20)
#define GZ_MSG        192
#define GZ_HDR_PEEK   64
#define GZ_NO_LIMIT   UINT32_MAX
#define GZ_STACK_SIZE (256u << 10)

/* ---- gzip state shared by the consumer and the inflate threads -------------------------- */

typedef struct gz_claim {
    uint32_t id;
    bool seq;              /* no size fields: inflate member after member to the end of the file */
    bool final;            /* the stream ends with this claim */
    uint64_t start, end;   /* compressed bytes [start, end) (seq: end = file size) */
    uint64_t first_member; /* members before this claim */
} gz_claim_t;

typedef struct gz_piece { /* per output buffer, gzip only */
    uint32_t claim, piece, len;
    bool last;  /* the claim's last piece */
    bool final; /* the stream's last piece */
    int err;    /* -errno: the stream fails after this piece's bytes (message in msg) */
    char msg[GZ_MSG];
} gz_piece_t;

typedef struct gz_worker {
    struct reader_gz *g;
    reader_t *r;
    pthread_t tid;
    bool started;
    struct inflate_state *st;
    uint8_t *in;
    /* the claim being inflated (this thread only) */
    gz_claim_t c;
    uint64_t gen;
    uint64_t in_off; /* file offset of in[0] */
    uint32_t in_len, in_pos;
    uint64_t read_limit; /* reads stop here: the claim's end, or the file's end */
    uint64_t reads, bytes;
} gz_worker_t;

struct reader_gz {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* inflate threads: a file, a free buffer, a new head, stop */
    pthread_cond_t ready_cv; /* consumer: a piece; closer: threads idle */
    uint32_t nworkers;
    gz_worker_t *w;
    gz_piece_t *piece; /* nbufs */
    /* everything below: under mu */
    bool quit;
    bool open;    /* a gzip file is being served */
    uint64_t gen; /* bumped at every open and close: a thread's claim of another gen is void */
    int fd;
    uint64_t file_size;
    uint64_t claim_off, claim_member;
    uint32_t next_claim;
    bool claims_done;
    uint32_t valid_limit; /* claims above it were dropped (a size field lied) */
    uint32_t want_claim, want_piece;
    uint32_t nfree;
    bool head_starved;
    uint32_t active; /* threads inside a claim of the open file */
    uint64_t reads, bytes_in, members, claims, mismatches;
};

/* ---- configuration, lifecycle ----------------------------------------------------------- */

#define KIND_OUT 0u

void reader_cfg_default(reader_cfg_t *cfg)
{
    *cfg = (reader_cfg_t){
        .nbufs = 8,
        .buf_size = 1u << 20,
        .headroom = 64u << 10,
        .queue_depth = 4,
        .gz_bufs = 4,
        .gz_buf_size = 256u << 10,
        .inflate_threads = 0,
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

static void *gz_worker_main(void *arg);

static void gz_destroy(reader_t *r)
{
    struct reader_gz *g = r->gz;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->quit = true;
    pthread_cond_broadcast(&g->work_cv);
    pthread_mutex_unlock(&g->mu);
    for (uint32_t i = 0; i < g->nworkers; i++) {
        gz_worker_t *w = &g->w[i];
        if (w->started)
            pthread_join(w->tid, NULL);
        if (w->st)
            mem_free(MEM_TAG_INGEST, w->st, sizeof *w->st);
        if (w->in)
            mem_free(MEM_TAG_INGEST, w->in, r->cfg.gz_buf_size);
    }
    pthread_cond_destroy(&g->work_cv);
    pthread_cond_destroy(&g->ready_cv);
    pthread_mutex_destroy(&g->mu);
    if (g->w)
        mem_free(MEM_TAG_INGEST, g->w, g->nworkers * sizeof *g->w);
    if (g->piece)
        mem_free(MEM_TAG_INGEST, g->piece, r->cfg.nbufs * sizeof *g->piece);
    mem_free(MEM_TAG_INGEST, g, sizeof *g);
    r->gz = NULL;
}

/* The inflate threads and their memory; 0 or -errno. */
static int gz_create(reader_t *r)
{
    uint32_t n = r->cfg.inflate_threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus >= 2 ? 2 : 1;
    }
    struct reader_gz *g = mem_zalloc(MEM_TAG_INGEST, sizeof *g);
    if (!g)
        return -ENOMEM;
    r->gz = g;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work_cv, NULL);
    pthread_cond_init(&g->ready_cv, NULL);
    g->fd = -1;
    g->nworkers = n;
    g->w = mem_calloc(MEM_TAG_INGEST, n, sizeof *g->w);
    g->piece = mem_calloc(MEM_TAG_INGEST, r->cfg.nbufs, sizeof *g->piece);
    if (!g->w || !g->piece) {
        g->nworkers = g->w ? n : 0;
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        gz_worker_t *w = &g->w[i];
        w->g = g;
        w->r = r;
        w->st = mem_zalloc_aligned(MEM_TAG_INGEST, sizeof *w->st, 64);
        w->in = mem_alloc_prefault(MEM_TAG_INGEST, r->cfg.gz_buf_size, 4096);
        if (!w->st || !w->in)
            return -ENOMEM;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, GZ_STACK_SIZE);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        rc = -pthread_create(&g->w[i].tid, &attr, gz_worker_main, &g->w[i]);
        g->w[i].started = rc == 0;
    }
    pthread_attr_destroy(&attr);
    return rc;
}

int reader_init(reader_t *r, const reader_cfg_t *cfg)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->cfg = *cfg;
    reader_cfg_t *c = &r->cfg;
    if (c->nbufs < 2 || c->buf_size < 64 || c->gz_buf_size < 64) {
        snprintf(r->err, sizeof r->err, "reader: need at least 2 buffers of 64 bytes");
        return -EINVAL;
    }
    c->headroom = (uint32_t)round_up(c->headroom ? c->headroom : 64, 64);
    c->buf_size = (uint32_t)round_up(c->buf_size, 64);
    if (c->queue_depth == 0 || c->queue_depth > c->nbufs - 1)
        c->queue_depth = c->nbufs - 1; /* one buffer stays with the consumer */

    r->out = mem_calloc(MEM_TAG_INGEST, c->nbufs, sizeof *r->out);
    uint8_t *slab = mem_alloc_prefault(MEM_TAG_INGEST, (size_t)c->nbufs * buf_stride(r), 4096);
    if (!r->out || !slab) {
        if (slab)
            mem_free(MEM_TAG_INGEST, slab, (size_t)c->nbufs * buf_stride(r));
        reader_fini(r);
        snprintf(r->err, sizeof r->err, "reader: out of memory for I/O buffers");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->nbufs; i++)
        r->out[i].base = slab + (size_t)i * buf_stride(r);
    int rc = gz_create(r);
    if (rc < 0) {
        reader_fini(r);
        snprintf(r->err, sizeof r->err, "reader: cannot start the inflate threads: %s",
                 strerror(-rc));
        return rc;
    }

    if (c->force_pread)
        return 0;
    unsigned entries = 8;
    while (entries < 2 * c->queue_depth)
        entries <<= 1;
    rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) {
        r->uring_err = rc;
        return 0; /* pread fallback; reader_mode() says so */
    }
    r->uring_ok = true;
    /* Register the output buffers: plain files are read straight into them. */
    struct iovec *iov = mem_calloc(MEM_TAG_INGEST, c->nbufs, sizeof *iov);
    if (iov) {
        for (uint32_t i = 0; i < c->nbufs; i++)
            iov[i] = (struct iovec){r->out[i].base + c->headroom, c->buf_size};
        r->registered = io_uring_register_buffers(&r->ring, iov, c->nbufs) == 0;
        mem_free(MEM_TAG_INGEST, iov, (size_t)c->nbufs * sizeof *iov);
    }
    return 0;
}

/* Stop the inflate threads' work on the open file and wait until none is inside a claim. */
static void gz_stop(reader_t *r)
{
    struct reader_gz *g = r->gz;
    pthread_mutex_lock(&g->mu);
    if (g->open) {
        g->open = false;
        g->gen++;
        pthread_cond_broadcast(&g->work_cv);
        while (g->active > 0)
            pthread_cond_wait(&g->ready_cv, &g->mu);
        g->fd = -1;
    }
    pthread_mutex_unlock(&g->mu);
}

void reader_close(reader_t *r)
{
    if (r->fd < 0)
        return;
    if (r->is_gzip)
        gz_stop(r);
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
    gz_destroy(r);
    if (r->uring_ok) {
        if (r->registered)
            io_uring_unregister_buffers(&r->ring);
        io_uring_queue_exit(&r->ring);
    }
    if (r->out && r->out[0].base)
        mem_free(MEM_TAG_INGEST, r->out[0].base, (size_t)c->nbufs * buf_stride(r));
    if (r->out)
        mem_free(MEM_TAG_INGEST, r->out, c->nbufs * sizeof *r->out);
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

uint32_t reader_inflate_threads(const reader_t *r)
{
    return r->gz ? r->gz->nworkers : 0;
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

static void gz_start(reader_t *r);

int reader_open(reader_t *r, const char *path)
{
    reader_close(r);
    r->at_eof = r->failed = false;
    r->error = 0;
    r->bytes_read = r->reads = r->short_reads = r->chunks = 0; /* figures are per file */
    r->gz_members = r->gz_claims = r->gz_bsize_mismatches = 0;
    r->is_gzip = false;
    r->next_read_off = r->next_seq_off = r->stream_off = 0;
    r->inflight = 0;
    r->held = 0;
    r->err[0] = '\0';
    for (uint32_t i = 0; i < r->cfg.nbufs; i++)
        r->out[i].state = RB_FREE;

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
        gz_start(r);
    }
    return 0;
}

/* ---- the read queue (plain files) --------------------------------------------------------- */

static uint8_t *buf_data(const reader_t *r, const reader_buf_t *b)
{
    return b->base + r->cfg.headroom;
}

/* Read (the rest of) buffer i synchronously or queue it on the ring. */
static void issue(reader_t *r, uint32_t i)
{
    reader_buf_t *b = &r->out[i];
    uint8_t *dst = buf_data(r, b) + b->got;
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
            issue(r, i);
        }
        return;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) { /* cannot happen: the ring has twice queue_depth entries */
        b->err = -EBUSY;
        b->state = RB_READY;
        return;
    }
    if (r->registered)
        io_uring_prep_read_fixed(sqe, r->fd, dst, len, off, (int)i);
    else
        io_uring_prep_read(sqe, r->fd, dst, len, off);
    /* A plain file's read goes to the kernel's io-wq worker at once (IOSQE_ASYNC): the copy
     * out of the page cache then runs on another core while this thread decodes the previous
     * buffer, instead of inside io_uring_submit on this one. */
    if (r->regular)
        sqe->flags |= IOSQE_ASYNC;
    io_uring_sqe_set_data64(sqe, ((uint64_t)KIND_OUT << 32) | i);
    io_uring_submit(&r->ring);
    b->state = RB_INFLIGHT;
    r->inflight++;
}

/* Start reads into free buffers, in file order, up to the queue depth. */
static void fill_queue(reader_t *r)
{
    reader_buf_t *bufs = r->out;
    uint32_t n = r->cfg.nbufs, size = r->cfg.buf_size;
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
        issue(r, i);
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
    uint32_t i = (uint32_t)ud;
    reader_buf_t *b = &r->out[i];
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN) {
            issue(r, i);
            return;
        }
        b->err = res;
        b->state = RB_READY;
        return;
    }
    /* The kernel wrote these bytes behind valgrind's back (it does not model io_uring
     * completions): tell memcheck they are defined. A few no-op instructions otherwise. */
    (void)VALGRIND_MAKE_MEM_DEFINED(buf_data(r, b) + b->got, (size_t)res);
    b->got += (uint32_t)res;
    r->bytes_read += (uint64_t)res;
    if (res > 0 && b->got < b->want && r->regular) {
        r->short_reads++;
        issue(r, i); /* the rest of a short read */
        return;
    }
    b->state = RB_READY;
}

/* The next buffer in stream order, filled; NULL at the end or on error. */
static reader_buf_t *next_in_order(reader_t *r, uint32_t *idx)
{
    reader_buf_t *bufs = r->out;
    uint32_t n = r->cfg.nbufs;
    for (;;) {
        if (r->failed)
            return NULL;
        fill_queue(r);
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

/* ---- gzip: claims ------------------------------------------------------------------------- */

/* The compressed length of the member whose header starts at off, from a BGZF 'BC' (16-bit) or
 * tickcore 'TK' (32-bit) extra subfield (both store length - 1); 0 if the header has neither or
 * cannot be read. */
static uint64_t member_size_field(int fd, uint64_t off)
{
    uint8_t h[GZ_HDR_PEEK];
    ssize_t n = pread(fd, h, sizeof h, (off_t)off);
    if (n < 12 || h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || !(h[3] & 4))
        return 0;
    size_t xlen = (size_t)h[10] | (size_t)h[11] << 8;
    size_t end = 12 + xlen < (size_t)n ? 12 + xlen : (size_t)n;
    for (size_t p = 12; p + 4 <= end;) {
        size_t slen = (size_t)h[p + 2] | (size_t)h[p + 3] << 8;
        if (p + 4 + slen > end)
            break;
        const uint8_t *d = h + p + 4;
        if (h[p] == 'B' && h[p + 1] == 'C' && slen == 2)
            return ((uint64_t)d[0] | (uint64_t)d[1] << 8) + 1;
        if (h[p] == 'T' && h[p + 1] == 'K' && slen == 4)
            return ((uint64_t)d[0] | (uint64_t)d[1] << 8 | (uint64_t)d[2] << 16 |
                    (uint64_t)d[3] << 24) +
                   1;
        p += 4 + slen;
    }
    return 0;
}

/* The next claim (under mu): sized members from claim_off while they fit the file, at least
 * GZ_CLAIM_MIN bytes of them; or, where the first member has no size field, the rest of the file
 * as one sequential claim. */
static void make_claim(struct reader_gz *g, gz_claim_t *c)
{
    uint64_t off = g->claim_off;
    *c = (gz_claim_t){.id = g->next_claim++, .start = off, .first_member = g->claim_member};
    uint64_t members = 0;
    while (off < g->file_size && off - c->start < GZ_CLAIM_MIN) {
        uint64_t size = member_size_field(g->fd, off);
        if (size == 0 || size > g->file_size - off)
            break;
        off += size;
        members++;
    }
    if (members == 0) {
        c->seq = true;
        off = g->file_size;
    }
    c->end = off;
    g->claim_off = off;
    g->claim_member += members;
    g->claims++;
    if (off >= g->file_size) {
        c->final = true;
        g->claims_done = true;
    }
#ifdef POSIX_FADV_WILLNEED
    posix_fadvise(g->fd, (off_t)c->start, (off_t)(c->end - c->start), POSIX_FADV_WILLNEED);
#endif
}

/* Is w's claim void (file closed, or dropped after a size field lied)? Under mu. */
static bool claim_void(const gz_worker_t *w)
{
    const struct reader_gz *g = w->g;
    return g->quit || !g->open || g->gen != w->gen || w->c.id > g->valid_limit;
}

/* A free output buffer for w (blocking); -1 if the claim became void. Under mu. */
static int take_buf(gz_worker_t *w)
{
    struct reader_gz *g = w->g;
    reader_t *r = w->r;
    for (;;) {
        if (claim_void(w))
            return -1;
        bool head = w->c.id == g->want_claim;
        if (g->nfree > (head ? 0u : 2u)) {
            for (uint32_t i = 0; i < r->cfg.nbufs; i++) {
                if (r->out[i].state == RB_FREE) {
                    r->out[i].state = RB_INFLIGHT;
                    g->nfree--;
                    return (int)i;
                }
            }
        }
        if (head) {
            g->head_starved = true;
            pthread_cond_broadcast(&g->ready_cv);
        }
        pthread_cond_wait(&g->work_cv, &g->mu);
        if (head)
            g->head_starved = false;
    }
}

static void put_free(reader_t *r, uint32_t i)
{
    r->out[i].state = RB_FREE;
    r->gz->nfree++;
    pthread_cond_broadcast(&r->gz->work_cv);
}

/* Publish buffer i as w's next piece (under mu); a void claim's buffer goes back free. */
static void publish(gz_worker_t *w, uint32_t i, gz_piece_t *p)
{
    struct reader_gz *g = w->g;
    reader_t *r = w->r;
    if (claim_void(w)) {
        put_free(r, i);
        return;
    }
    g->piece[i] = *p;
    g->piece[i].claim = w->c.id;
    r->out[i].state = RB_READY;
    if (p->err)
        g->claims_done = true; /* nothing after an error is needed */
    pthread_cond_broadcast(&g->ready_cv);
}

/* A size field lied about the member that ends at `end` in w's claim: the rest of the file is
 * inflated sequentially by w; later claims are dropped, with what they published. Under mu. */
static void claim_went_wrong(gz_worker_t *w)
{
    struct reader_gz *g = w->g;
    reader_t *r = w->r;
    g->valid_limit = w->c.id;
    g->claims_done = true;
    g->mismatches++;
    for (uint32_t i = 0; i < r->cfg.nbufs; i++)
        if (r->out[i].state == RB_READY && g->piece[i].claim > w->c.id)
            put_free(r, i);
    w->c.seq = true;
    w->c.final = true;
    w->c.end = g->file_size;
    w->read_limit = g->file_size;
    pthread_cond_broadcast(&g->work_cv);
}

static const char *inflate_why(int rc)
{
    switch (rc) {
    case ISAL_INVALID_WRAPPER:
        return "not a gzip member header";
    case ISAL_UNSUPPORTED_METHOD:
        return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
        return "checksum mismatch";
    case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid lookback distance";
    default:
        return "inflate error";
    }
}

/* Refill w's input at the next unread offset; bytes read (0 at the read limit or the end of the
 * file), or -errno. Outside mu. */
static ssize_t refill(gz_worker_t *w)
{
    uint64_t off = w->in_off + w->in_len;
    uint64_t limit = w->read_limit;
    if (off >= limit)
        limit = w->g->file_size; /* a member runs past its claim: its size field lied */
    if (off >= limit)
        return 0;
    uint64_t want = limit - off < w->r->cfg.gz_buf_size ? limit - off : w->r->cfg.gz_buf_size;
    ssize_t n;
    do
        n = pread(w->g->fd, w->in, (size_t)want, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    w->in_off = off;
    w->in_len = (uint32_t)n;
    w->in_pos = 0;
    w->reads++;
    w->bytes += (uint64_t)n;
    return n;
}

/* Inflate w's claim into output pieces. Outside mu except where it takes it. */
static void run_claim(gz_worker_t *w)
{
    struct reader_gz *g = w->g;
    reader_t *r = w->r;
    struct inflate_state *st = w->st;
    w->in_off = w->c.start;
    w->in_len = w->in_pos = 0;
    w->read_limit = w->c.end;
    uint64_t member = w->c.first_member; /* members finished before the current one */
    uint64_t claimed_end = 0;            /* where the current member's size field says it ends */
    bool at_start = true;
    gz_piece_t p = {0};
    uint32_t piece = 0;

    pthread_mutex_lock(&g->mu);
    int b = take_buf(w);
    pthread_mutex_unlock(&g->mu);
    if (b < 0)
        return;
    uint8_t *dst = buf_data(r, &r->out[b]);
    uint32_t avail = r->cfg.buf_size;
    for (;;) {
        uint64_t pos = w->in_off + w->in_pos; /* the next compressed byte */
        if (at_start) {
            if (pos >= w->c.end)
                break; /* the claim is done */
            if (w->in_pos == w->in_len) {
                ssize_t n = refill(w);
                if (n <= 0) {
                    p.err = n < 0 ? (int)n : -EPROTO;
                    snprintf(p.msg, sizeof p.msg, "read error at compressed byte %llu: %s",
                             (unsigned long long)pos, strerror(n < 0 ? (int)-n : EIO));
                    break;
                }
            }
            if (w->c.seq) {
                const uint8_t *m = w->in + w->in_pos;
                if (member > 0 && w->in_len - w->in_pos >= 2 && (m[0] != 0x1f || m[1] != 0x8b)) {
                    p.err = -EPROTO;
                    snprintf(p.msg, sizeof p.msg,
                             "trailing data at compressed byte %llu after gzip member %llu: not a "
                             "gzip member header (1f 8b)",
                             (unsigned long long)pos, (unsigned long long)member);
                    break;
                }
            } else {
                claimed_end = pos + member_size_field(g->fd, pos);
            }
            isal_inflate_reset(st);
            st->crc_flag = ISAL_GZIP;
            at_start = false;
        }
        if (avail == 0) { /* publish the full buffer, take the next */
            p.piece = piece++;
            p.len = r->cfg.buf_size;
            pthread_mutex_lock(&g->mu);
            publish(w, (uint32_t)b, &p);
            b = take_buf(w);
            pthread_mutex_unlock(&g->mu);
            if (b < 0)
                return;
            dst = buf_data(r, &r->out[b]);
            avail = r->cfg.buf_size;
        }
        bool in_eof = false;
        if (w->in_pos == w->in_len) {
            ssize_t n = refill(w);
            if (n < 0) {
                p.err = (int)n;
                snprintf(p.msg, sizeof p.msg, "read error at compressed byte %llu: %s",
                         (unsigned long long)pos, strerror((int)-n));
                break;
            }
            in_eof = n == 0; /* inflate once more: ISA-L may still hold the member's end */
        }
        st->next_in = w->in + w->in_pos;
        st->avail_in = w->in_len - w->in_pos;
        st->next_out = dst;
        st->avail_out = avail;
        int rc = isal_inflate(st);
        uint32_t used = (w->in_len - w->in_pos) - st->avail_in;
        uint32_t made = avail - st->avail_out;
        dst += made;
        avail -= made;
        w->in_pos += used;
        if (rc < 0) {
            /* a checksum is checked once the 8-byte trailer has been read: name the trailer */
            uint64_t at = w->in_off + w->in_pos;
            if (rc == ISAL_INCORRECT_CHECKSUM && at >= 8)
                at -= 8;
            p.err = -EPROTO;
            snprintf(p.msg, sizeof p.msg,
                     "corrupt gzip data near compressed byte %llu (member %llu): %s",
                     (unsigned long long)at, (unsigned long long)member + 1, inflate_why(rc));
            break;
        }
        if (st->block_state == ISAL_BLOCK_FINISH) {
            member++;
            at_start = true;
            uint64_t end = w->in_off + w->in_pos;
            if (!w->c.seq && end != claimed_end) {
                pthread_mutex_lock(&g->mu);
                if (!claim_void(w))
                    claim_went_wrong(w);
                pthread_mutex_unlock(&g->mu);
            }
        } else if (used == 0 && made == 0 && in_eof) {
            p.err = -EPROTO;
            snprintf(p.msg, sizeof p.msg,
                     "truncated gzip stream: compressed input ends at byte %llu inside member "
                     "%llu",
                     (unsigned long long)pos, (unsigned long long)member + 1);
            break;
        } else if (used == 0 && made == 0) {
            p.err = -EPROTO;
            snprintf(p.msg, sizeof p.msg, "gzip inflate made no progress at compressed byte %llu",
                     (unsigned long long)pos);
            break;
        }
    }
    p.piece = piece;
    p.len = r->cfg.buf_size - avail;
    p.last = true;
    p.final = w->c.final || p.err;
    pthread_mutex_lock(&g->mu);
    if (!claim_void(w))
        g->members += member - w->c.first_member;
    publish(w, (uint32_t)b, &p);
    pthread_mutex_unlock(&g->mu);
}

static void *gz_worker_main(void *arg)
{
    gz_worker_t *w = arg;
    struct reader_gz *g = w->g;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->quit && !(g->open && !g->claims_done))
            pthread_cond_wait(&g->work_cv, &g->mu);
        if (g->quit)
            break;
        make_claim(g, &w->c);
        w->gen = g->gen;
        w->reads = w->bytes = 0;
        g->active++;
        pthread_mutex_unlock(&g->mu);
        run_claim(w);
        pthread_mutex_lock(&g->mu);
        if (g->gen == w->gen) {
            g->reads += w->reads;
            g->bytes_in += w->bytes;
        }
        g->active--;
        pthread_cond_broadcast(&g->ready_cv);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Hand the open gzip file to the inflate threads. */
static void gz_start(reader_t *r)
{
    struct reader_gz *g = r->gz;
    pthread_mutex_lock(&g->mu);
    g->fd = r->fd;
    g->file_size = r->file_size;
    g->claim_off = g->claim_member = 0;
    g->next_claim = 0;
    g->claims_done = false;
    g->valid_limit = GZ_NO_LIMIT;
    g->want_claim = g->want_piece = 0;
    g->nfree = r->cfg.nbufs;
    g->head_starved = false;
    g->reads = g->bytes_in = g->members = g->claims = g->mismatches = 0;
    g->gen++;
    g->open = true;
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    pthread_cond_broadcast(&g->work_cv);
    pthread_mutex_unlock(&g->mu);
}

/* The next gzip piece in order (consumer): 1 with *idx set, 0 at the end, <0 on error. */
static int gz_next(reader_t *r, uint32_t *idx)
{
    struct reader_gz *g = r->gz;
    int ret = 0;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        int found = -1;
        for (uint32_t i = 0; i < r->cfg.nbufs; i++) {
            if (r->out[i].state == RB_READY && g->piece[i].claim == g->want_claim &&
                g->piece[i].piece == g->want_piece) {
                found = (int)i;
                break;
            }
        }
        if (found >= 0) {
            gz_piece_t *p = &g->piece[found];
            if (p->last) {
                g->want_claim++;
                g->want_piece = 0;
                pthread_cond_broadcast(&g->work_cv); /* a new head */
            } else {
                g->want_piece++;
            }
            if (p->err)
                fail(r, p->err, "%s", p->msg);
            else if (p->final)
                r->at_eof = true;
            if (p->len == 0) {
                put_free(r, (uint32_t)found);
                if (r->failed || r->at_eof)
                    break;
                continue;
            }
            r->out[found].state = RB_HELD;
            r->out[found].got = p->len;
            *idx = (uint32_t)found;
            ret = 1;
            break;
        }
        if (g->head_starved && g->nfree == 0) {
            fail(r, ENOBUFS, "reader: every buffer is held by the consumer");
            break;
        }
        pthread_cond_wait(&g->ready_cv, &g->mu);
    }
    r->bytes_read = g->bytes_in;
    r->reads = g->reads;
    r->gz_members = g->members;
    r->gz_claims = g->claims;
    r->gz_bsize_mismatches = g->mismatches;
    pthread_mutex_unlock(&g->mu);
    if (ret == 0 && r->failed)
        return r->error;
    return ret;
}

/* ---- hand-out ---------------------------------------------------------------------------- */

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
    uint32_t idx = 0;
    if (!r->is_gzip) {
        b = next_in_order(r, &idx);
        if (!b)
            return r->failed ? r->error : 0;
    } else {
        if (r->at_eof)
            return 0;
        int rc = gz_next(r, &idx);
        if (rc <= 0)
            return rc;
        b = &r->out[idx];
        r->held++;
    }
    size_t got = b->got;
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
    if (buf >= r->cfg.nbufs || r->out[buf].state != RB_HELD)
        return;
    if (!r->is_gzip) {
        r->out[buf].state = RB_FREE;
        return;
    }
    struct reader_gz *g = r->gz;
    pthread_mutex_lock(&g->mu);
    put_free(r, buf);
    pthread_mutex_unlock(&g->mu);
    r->held--;
}
