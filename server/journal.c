/*
 * journal: see journal.h for the contract. Implementation notes. The buffers are one slab; buffer
 * i is written at the file offset recorded when it was taken, so the file is the buffers'
 * contents in the order they were taken, and a record never straddles two buffers (a buffer
 * that cannot hold the next frame is submitted short). Each io_uring request is one entry of a
 * fixed op table (user_data = its index, a free stack of indices), sized 2 * buffers + 8: an
 * append that finds no free entry waits for a completion, like one that finds its next buffer in
 * flight. Completions are reaped whenever the journal is called (a buffer switch, a commit), never
 * by another thread. The scan at open reads the file through the same slab with pread (a record
 * is at most 52 bytes, carried over between chunks), and so does the sidecar reader; the open
 * path is the only one that allocates or formats messages. journal_note_gap formats one line
 * into a stack buffer. Nothing here is shared with another thread except the counters, which the
 * owner stores with MEM_ST. Checksums: ISA-L's crc32_iscsi carries its register between calls
 * (start 0xffffffff, the CRC32C is its complement), so a block is summed piece by piece as its
 * bytes are submitted; each op index owns JOURNAL_CRC_OP_ENTRIES entries of crc_slab, so a
 * sidecar write's bytes live exactly as long as its op.
 */
#include "server/journal.h"

#include "base/byteorder.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/fdio.h"
#include "base/hints.h"
#include "ingest/itch.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { OP_FREE = 0, OP_WRITE, OP_CRC };

#define MAX_RETRIES 16         /* -EINTR / -EAGAIN resubmissions of one request */
#define SCAN_CHUNK  (4u << 20) /* bytes read at once by the scans at open */
#define MIN_SLAB    4096u      /* the scans need room for a whole sidecar line */
#define ADD(x, v)   MEM_ST((x), MEM_LD(x) + (v))
#define SUB(x, v)   MEM_ST((x), MEM_LD(x) - (v))
#define MAX_ST(x, v)                                                                               \
    do {                                                                                           \
        if ((v) > MEM_LD(x))                                                                       \
            MEM_ST((x), (v));                                                                      \
    } while (0)

/* The first failure is the sticky error; every failure is counted. */
static int fail(journal_t *j, int rc)
{
    if (MEM_LD(j->err) == 0) {
        MEM_ST(j->err, rc);
        /* nothing more is submitted: what was appended but not handed to a write never reaches
         * the file, so it is not counted (a failed write lowers the count further) */
        if (j->submitted_msgs < MEM_LD(j->messages))
            MEM_ST(j->messages, j->submitted_msgs);
    }
    MEM_INC(j->errors);
    return MEM_LD(j->err);
}

void journal_cfg_default(journal_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->buffer_size = JOURNAL_DEFAULT_BUFFER_SIZE;
    cfg->buffers = JOURNAL_DEFAULT_BUFFERS;
    cfg->fsync = JOURNAL_FSYNC_INTERVAL;
    cfg->fsync_interval_ns = JOURNAL_DEFAULT_INTERVAL_NS;
}

static const char *const fsync_names[] = {"batch", "interval", "off"};

const char *journal_fsync_name(journal_fsync_t f)
{
    return (unsigned)f <= JOURNAL_FSYNC_OFF ? fsync_names[f] : "?";
}

int journal_fsync_parse(const char *s, journal_fsync_t *out)
{
    for (unsigned i = 0; s != NULL && i <= JOURNAL_FSYNC_OFF; i++) {
        if (strcmp(s, fsync_names[i]) == 0) {
            *out = (journal_fsync_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* fdatasync through the fault seam, retried on EINTR (it may be: a signal, or the seam).
 * 0 or -errno. */
static int datasync(fault_site_t site, int fd)
{
    int rc;
    do
        rc = fault_fdatasync(site, fd) < 0 ? -errno : 0;
    while (rc == -EINTR);
    return rc;
}

/* Read n bytes at off, retrying EINTR and completing short reads: the bytes read (n, or fewer
 * at the end of the file) or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r =
            fault_pread(FAULT_JOURNAL_READ, fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- io_uring: writes on `ring`, fsyncs on `sring` ---------------------------------------- */

static void reap(journal_t *j);

/* Submit every prepared SQE of r. */
static int flush_ring(journal_t *j, struct io_uring *r)
{
    for (int tries = 0; io_uring_sq_ready(r) > 0; tries++) {
        int rc = io_uring_submit(r);
        if (rc > 0) {
            tries = 0;
            continue;
        }
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return fail(j, rc);
        if (tries >= 1000)
            return fail(j, rc < 0 ? rc : -EBUSY);
        if (r == &j->ring && (rc == -EBUSY || rc == -EAGAIN))
            reap(j); /* make room in the completion queue (cannot fill by design) */
    }
    return 0;
}

static int flush(journal_t *j)
{
    return flush_ring(j, &j->ring);
}

static void op_release(journal_t *j, uint32_t oi)
{
    journal_op_t *o = &j->ops[oi];
    if (o->kind == OP_WRITE) {
        j->bufs[o->buf].ops--;
        SUB(j->inflight_bytes, o->len);
    }
    o->kind = OP_FREE;
    j->free_ops[j->nfree++] = oi;
}

/* The sidecar entries of op oi. */
static uint8_t *crc_entries(journal_t *j, uint32_t oi)
{
    return j->crc_slab + (size_t)oi * JOURNAL_CRC_OP_ENTRIES * JOURNAL_CRC_ENTRY;
}

/* Prepare the SQE of write oi (the part not yet done). Submitted by the next flush(). */
static int op_issue(journal_t *j, uint32_t oi)
{
    journal_op_t *o = &j->ops[oi];
    struct io_uring_sqe *s = io_uring_get_sqe(&j->ring);
    if (s == NULL && flush(j) == 0)
        s = io_uring_get_sqe(&j->ring);
    if (s == NULL) {
        op_release(j, oi);
        return fail(j, -EBUSY);
    }
    uint32_t from = o->start + o->done, n = o->len - o->done;
    if (o->kind == OP_CRC) {
        io_uring_prep_write(s, j->cfd, crc_entries(j, oi) + from, n, o->crc_off + from);
        s->flags |= IOSQE_IO_DRAIN; /* behind the data it describes */
        io_uring_sqe_set_data64(s, oi);
        MEM_INC(j->crc_writes);
        return 0;
    }
    const journal_buf_t *b = &j->bufs[o->buf];
    if (j->registered)
        io_uring_prep_write_fixed(s, j->fd, b->data + from, n, b->off + from, (int)o->buf);
    else
        io_uring_prep_write(s, j->fd, b->data + from, n, b->off + from);
    /* One write at a time, in submission order: a crash leaves a prefix, never a hole. */
    s->flags |= IOSQE_IO_DRAIN;
    io_uring_sqe_set_data64(s, oi);
    MEM_INC(j->writes);
    return 0;
}

static void note_failed_write(journal_t *j, uint64_t at, uint64_t msgs_before)
{
    if (at < j->err_offset) {
        j->err_offset = at;
        j->err_messages = msgs_before;
        if (msgs_before < MEM_LD(j->messages))
            MEM_ST(j->messages, msgs_before);
    }
}

static void complete(journal_t *j, uint64_t ud, int res)
{
    if (ud >= j->nops || j->ops[ud].kind == OP_FREE)
        return; /* not ours (cannot happen) */
    uint32_t oi = (uint32_t)ud;
    journal_op_t *o = &j->ops[oi];
    res = fault_cqe(o->kind == OP_WRITE ? FAULT_JOURNAL_WRITE : FAULT_CRC_WRITE, res);
    if ((res == -EINTR || res == -EAGAIN) && o->retries < MAX_RETRIES) {
        o->retries++;
        op_issue(j, oi);
        return;
    }
    if (res <= 0 && o->kind == OP_CRC) {
        fail(j, res < 0 ? res : -EIO); /* the data is whole; its entries are missing */
        op_release(j, oi);
        return;
    }
    if (res <= 0) {
        fail(j, res < 0 ? res : -EIO); /* a write of 0 bytes to a regular file: give up */
        /* the file is cut back to where this write began (a record boundary): the bytes of
         * it that did land, and the writes behind it, go, so the count stays exact */
        note_failed_write(j, j->bufs[o->buf].off + o->start, o->msgs_before);
        op_release(j, oi);
        return;
    }
    o->done += (uint32_t)res;
    if (o->done < o->len) {
        if (o->kind == OP_WRITE)
            MEM_INC(j->short_writes);
        o->retries = 0;
        op_issue(j, oi);
        return;
    }
    op_release(j, oi);
}

/* Handle every write completion already there; never waits. Each one is consumed before it
 * is handled, so a resubmission inside complete() may reap again safely. */
static void reap(journal_t *j)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&j->ring, &cqe) == 0 && cqe != NULL) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&j->ring, cqe);
        complete(j, ud, res);
    }
}

static uint32_t ops_inflight(const journal_t *j)
{
    return j->nops - j->nfree;
}

/* Submit what is prepared, wait for at least one write completion, handle what is there.
 * Only with writes in flight. */
static int wait_some(journal_t *j)
{
    int rc = flush(j);
    if (rc < 0)
        return rc;
    struct io_uring_cqe *cqe;
    do
        rc = io_uring_wait_cqe(&j->ring, &cqe);
    while (rc == -EINTR);
    if (rc < 0)
        return fail(j, rc);
    reap(j);
    return 0;
}

/* Wait until no write is in flight (also after an error: buffers must not be reused or freed
 * while the kernel may still read them). */
static int wait_writes(journal_t *j)
{
    if (j->crc_op != UINT32_MAX) { /* a sidecar write left unissued by an error: never issued */
        if (j->uring)
            op_release(j, j->crc_op);
        j->crc_op = UINT32_MAX;
        j->crc_n = 0;
    }
    while (ops_inflight(j) > 0) {
        int rc = wait_some(j);
        if (rc < 0 && ops_inflight(j) > 0 && io_uring_cq_ready(&j->ring) == 0)
            return rc; /* the ring itself failed: nothing more will come */
    }
    return flush(j);
}

static int op_get(journal_t *j, uint32_t *out)
{
    if (j->nfree == 0) {
        MEM_INC(j->write_waits);
        while (j->nfree == 0) {
            int rc = wait_some(j);
            if (rc < 0)
                return rc;
        }
    }
    uint32_t oi = j->free_ops[--j->nfree];
    memset(&j->ops[oi], 0, sizeof j->ops[oi]);
    *out = oi;
    return 0;
}

/* The journal offset below which every submitted write has completed: the start of the
 * earliest write still in flight (a short write's rest may be behind later writes). */
static uint64_t written_end(const journal_t *j)
{
    uint64_t w = j->submitted_end;
    for (uint32_t i = 0; i < j->nops && ops_inflight(j) > 0; i++) {
        const journal_op_t *o = &j->ops[i];
        if (o->kind == OP_WRITE) {
            uint64_t at = j->bufs[o->buf].off + o->start + o->done;
            if (at < w)
                w = at;
        }
    }
    return w;
}

/* ---- writing ----------------------------------------------------------------------------- */

static int pwrite_all(journal_t *j, const uint8_t *p, size_t n, uint64_t off, uint64_t msgs)
{
    uint64_t off0 = off;
    while (n > 0) {
        MEM_INC(j->writes);
        ssize_t w = fault_pwrite(FAULT_JOURNAL_WRITE, j->fd, p, n, (off_t)off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            int rc = w < 0 ? -errno : -EIO;
            note_failed_write(j, off0, msgs);
            return fail(j, rc);
        }
        if ((size_t)w < n)
            MEM_INC(j->short_writes);
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* ---- checksums ------------------------------------------------------------------------------ */

#define CRC_INIT 0xffffffffu

static void le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ISA-L's register after n more bytes (n may exceed INT_MAX only in theory: split anyway). */
static uint32_t crc_run(uint32_t reg, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int m = n > (1u << 30) ? (1 << 30) : (int)n;
        reg = crc32_iscsi((unsigned char *)p, m, reg);
        p += m;
        n -= (size_t)m;
    }
    return reg;
}

/* Write the sidecar entries gathered in the current sidecar op: a write behind the data writes
 * already prepared (io_uring), or a pwrite now. */
static int crc_flush(journal_t *j)
{
    if (j->crc_n == 0)
        return 0;
    uint32_t oi = j->crc_op, n = j->crc_n * JOURNAL_CRC_ENTRY;
    j->crc_op = UINT32_MAX;
    j->crc_n = 0;
    j->crc_dirty = true;
    journal_op_t *o = &j->ops[oi];
    if (!j->uring) {
        const uint8_t *p = crc_entries(j, oi);
        uint64_t off = o->crc_off;
        MEM_INC(j->crc_writes);
        while (n > 0) {
            ssize_t w = fault_pwrite(FAULT_CRC_WRITE, j->cfd, p, n, (off_t)off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return fail(j, w < 0 ? -errno : -EIO);
            p += w;
            n -= (uint32_t)w;
            off += (uint64_t)w;
        }
        return 0;
    }
    o->len = n;
    return op_issue(j, oi);
}

/* One sidecar entry: block blk covers len bytes with CRC32C crc. Gathered into one write as long
 * as the entries follow each other. */
static int crc_emit(journal_t *j, uint64_t blk, uint32_t len, uint32_t crc)
{
    uint64_t off = JOURNAL_CRC_HEADER + blk * JOURNAL_CRC_ENTRY;
    if (j->crc_n > 0 && (j->crc_n == JOURNAL_CRC_OP_ENTRIES ||
                         j->ops[j->crc_op].crc_off + j->crc_n * JOURNAL_CRC_ENTRY != off)) {
        int rc = crc_flush(j);
        if (rc < 0)
            return rc;
    }
    if (j->crc_n == 0) {
        uint32_t oi = 0;
        if (j->uring) {
            int rc = op_get(j, &oi);
            if (rc < 0)
                return rc;
        } else {
            memset(&j->ops[0], 0, sizeof j->ops[0]); /* pwrite mode: op 0's space */
        }
        j->ops[oi].kind = OP_CRC;
        j->ops[oi].crc_off = off;
        j->crc_op = oi;
    }
    uint8_t *e = crc_entries(j, j->crc_op) + j->crc_n * JOURNAL_CRC_ENTRY;
    le32_put(e, len);
    le32_put(e + 4, crc);
    j->crc_n++;
    return 0;
}

/* Sum n bytes at the end of the journal into the running block, emitting each block it ends. */
static int crc_feed(journal_t *j, const uint8_t *p, size_t n)
{
    while (n > 0) {
        uint32_t m = j->crc_block - j->crc_fill;
        if (m > n)
            m = (uint32_t)n;
        j->crc_reg = crc_run(j->crc_reg, p, m);
        j->crc_fill += m;
        p += m;
        n -= m;
        if (j->crc_fill == j->crc_block) {
            int rc = crc_emit(j, j->crc_blk, j->crc_block, ~j->crc_reg);
            if (rc < 0)
                return rc;
            j->crc_blk++;
            j->crc_fill = 0;
            j->crc_reg = CRC_INIT;
        }
    }
    return 0;
}

/* The entry of the block being filled, for the bytes it has so far (journal_sync, BATCH). */
static int crc_partial(journal_t *j)
{
    uint64_t at = j->crc_blk * j->crc_block + j->crc_fill;
    if (j->crc_fill == 0 || at == j->crc_partial_at) /* none, or written already */
        return 0;
    int rc = crc_emit(j, j->crc_blk, j->crc_fill, ~j->crc_reg);
    if (rc == 0 && (rc = crc_flush(j)) == 0)
        j->crc_partial_at = at;
    return rc;
}

/* Hand the filled, not yet submitted part of buffer bi to a write. */
static int buf_submit(journal_t *j, uint32_t bi)
{
    journal_buf_t *b = &j->bufs[bi];
    if (b->sub == b->len)
        return 0;
    uint32_t start = b->sub, n = b->len - b->sub;
    uint64_t before = j->submitted_msgs;
    b->sub = b->len;
    j->submitted_msgs = MEM_LD(j->messages); /* the buffer ends where the journal does */
    if (!j->uring) {
        int rc = pwrite_all(j, b->data + start, n, b->off + start, before);
        if (rc == 0 && (rc = crc_feed(j, b->data + start, n)) == 0)
            rc = crc_flush(j);
        return rc;
    }
    j->submitted_end = b->off + b->len;
    uint32_t oi;
    int rc = op_get(j, &oi);
    if (rc < 0)
        return rc;
    journal_op_t *o = &j->ops[oi];
    o->kind = OP_WRITE;
    o->buf = bi;
    o->start = start;
    o->len = n;
    o->msgs_before = before;
    b->ops++;
    ADD(j->inflight_bytes, n);
    MAX_ST(j->inflight_high, MEM_LD(j->inflight_bytes));
    if ((rc = op_issue(j, oi)) < 0)
        return rc;
    if ((rc = crc_feed(j, b->data + start, n)) < 0)
        return rc;
    return crc_flush(j);
}

/* ---- fsync --------------------------------------------------------------------------------- */

static void fsync_done(journal_t *j, int res, uint64_t covers, uint64_t t0)
{
    uint64_t lat = clock_mono_ns() - t0;
    MEM_INC(j->fsyncs);
    ADD(j->fsync_total_ns, lat);
    MAX_ST(j->fsync_max_ns, lat);
    if (res < 0)
        fail(j, res);
    else
        MAX_ST(j->synced_bytes, covers);
}

/* Prepare and submit the fsync of the journal (which 0) or of its checksum sidecar (1). */
static int fsync_submit(journal_t *j, int which)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&j->sring);
    if (s == NULL) { /* cannot happen: one fsync pair at a time on its own ring */
        j->fsync_inflight = false;
        j->fsync_pending = 0;
        return fail(j, -EBUSY);
    }
    io_uring_prep_fsync(s, which ? j->cfd : j->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(s, (uint64_t)which);
    return flush_ring(j, &j->sring);
}

/* Handle the fsync completions that are there (the journal's and the sidecar's: one fsync as
 * counted, done when both are); with wait, wait for them. */
static int fsync_reap(journal_t *j, bool wait)
{
    while (j->fsync_inflight) {
        struct io_uring_cqe *cqe;
        int rc = wait ? io_uring_wait_cqe(&j->sring, &cqe) : io_uring_peek_cqe(&j->sring, &cqe);
        if (rc == -EINTR || (rc == 0 && cqe == NULL))
            continue;
        if (rc == -EAGAIN && !wait)
            return 0;
        if (rc < 0) {
            j->fsync_inflight = false;
            return fail(j, rc);
        }
        int res = fault_cqe(FAULT_JOURNAL_FSYNC, cqe->res),
            which = (int)io_uring_cqe_get_data64(cqe);
        io_uring_cqe_seen(&j->sring, cqe);
        if ((res == -EINTR || res == -EAGAIN) && j->fsync_retries < MAX_RETRIES) {
            j->fsync_retries++;
            if ((rc = fsync_submit(j, which)) < 0)
                return rc;
            continue;
        }
        if (res < 0 && j->fsync_res == 0)
            j->fsync_res = res;
        if (j->fsync_pending > 0 && --j->fsync_pending > 0)
            continue;
        j->fsync_inflight = false;
        fsync_done(j, j->fsync_res, j->fsync_covers, j->fsync_t0);
    }
    return MEM_LD(j->err);
}

/* Start an fsync of every write completed so far, unless that is already covered or one is
 * running (pwrite mode: do it now). With io_uring it runs on its own ring, so writes go on
 * meanwhile. Returns 1 if it started (or did) one, 0 if there was nothing to do, or the sticky
 * error. */
static int fsync_issue(journal_t *j)
{
    if (!j->uring) {
        if (j->fsync_issued >= j->end)
            return 0;
        j->fsync_issued = j->end;
        uint64_t t0 = clock_mono_ns();
        int res = datasync(FAULT_JOURNAL_FSYNC, j->fd);
        if (res == 0 && j->crc_dirty)
            res = datasync(FAULT_JOURNAL_FSYNC, j->cfd);
        j->crc_dirty = false;
        fsync_done(j, res, j->end, t0);
        return MEM_LD(j->err) < 0 ? MEM_LD(j->err) : 1;
    }
    if (j->fsync_inflight)
        return 0;
    uint64_t covers = written_end(j);
    if (covers <= j->fsync_issued)
        return 0;
    j->fsync_issued = covers;
    j->fsync_covers = covers;
    j->fsync_t0 = clock_mono_ns();
    j->fsync_retries = 0;
    j->fsync_inflight = true;
    j->fsync_pending = j->crc_dirty ? 2 : 1; /* the sidecar only when it was written since */
    j->fsync_res = 0;
    int rc = fsync_submit(j, 0);
    if (rc == 0 && j->crc_dirty)
        rc = fsync_submit(j, 1);
    j->crc_dirty = false;
    return rc < 0 ? rc : 1;
}

/* Everything appended written and fsynced, waited for; after an error, only waited for. With
 * partial, the sidecar entry of the block being filled too (journal_sync, close; not BATCH's
 * commits, which would pay a second file's flush per batch for it). */
static int sync_all(journal_t *j, bool partial)
{
    if (MEM_LD(j->err) == 0 && buf_submit(j, j->cur) == 0 && partial)
        crc_partial(j);
    if (j->uring) {
        wait_writes(j);
        fsync_reap(j, true); /* one still running covers less than everything */
    }
    if (MEM_LD(j->err) == 0) {
        fsync_issue(j);
        if (j->uring)
            fsync_reap(j, true);
    }
    return MEM_LD(j->err);
}

/* The current buffer cannot take the next frame: submit it, take the next one. */
static HINT_COLD int next_buffer(journal_t *j)
{
    int rc = buf_submit(j, j->cur);
    if (rc < 0)
        return rc;
    uint32_t nx = (j->cur + 1) % j->nbufs;
    if (j->uring) {
        if ((rc = flush(j)) < 0)
            return rc;
        reap(j);
        if (j->bufs[nx].ops > 0) {
            MEM_INC(j->write_waits);
            while (j->bufs[nx].ops > 0)
                if ((rc = wait_some(j)) < 0)
                    return rc;
        }
    }
    if ((rc = MEM_LD(j->err)) != 0)
        return rc;
    journal_buf_t *b = &j->bufs[nx];
    b->off = j->end;
    b->len = b->sub = 0;
    j->cur = nx;
    return 0;
}

int journal_append(journal_t *j, const uint8_t *msg, uint16_t len)
{
    if (unlikely(!j->is_open))
        return -EBADF;
    int e = MEM_LD(j->err);
    if (unlikely(e != 0))
        return e;
    if (unlikely(msg == NULL || len == 0 || itch_msg_len[msg[0]] != len)) {
        MEM_INC(j->rejected);
        return -EINVAL;
    }
    uint32_t frame = (uint32_t)len + 2;
    journal_buf_t *b = &j->bufs[j->cur];
    if (unlikely(b->len + frame > j->buf_size)) {
        int rc = next_buffer(j);
        if (rc < 0)
            return rc;
        b = &j->bufs[j->cur];
    }
    uint8_t *d = b->data + b->len;
    be16_put(d, (uint16_t)len);
    memcpy(d + 2, msg, len);
    b->len += frame;
    j->end += frame;
    MEM_INC(j->messages);
    MEM_ST(j->bytes, j->end);
    return 0;
}

static bool interval_due(journal_t *j, uint64_t now_ns)
{
    if (j->last_fsync_ns == UINT64_MAX)
        return true;
    if (now_ns < j->last_fsync_ns) { /* the caller's clock went back: start over from now */
        j->last_fsync_ns = now_ns;
        return false;
    }
    return now_ns - j->last_fsync_ns >= j->interval_ns;
}

int journal_commit(journal_t *j, uint64_t now_ns)
{
    if (!j->is_open)
        return -EBADF;
    int rc = MEM_LD(j->err);
    if (rc != 0)
        return rc;
    if (j->uring) {
        reap(j);
        if ((rc = fsync_reap(j, false)) < 0)
            return rc;
    }
    switch (j->policy) {
    case JOURNAL_FSYNC_BATCH:
        j->last_fsync_ns = now_ns;
        return sync_all(j, false);
    case JOURNAL_FSYNC_INTERVAL:
        if ((rc = buf_submit(j, j->cur)) < 0)
            return rc;
        if (j->uring) { /* writes often complete inside the submission: count them in */
            if ((rc = flush(j)) < 0)
                return rc;
            reap(j);
        }
        if (!j->fsync_inflight && j->fsync_issued < j->end && interval_due(j, now_ns)) {
            if ((rc = fsync_issue(j)) < 0)
                return rc;
            if (rc > 0)
                j->last_fsync_ns = now_ns;
        }
        break;
    case JOURNAL_FSYNC_OFF:
        if ((rc = buf_submit(j, j->cur)) < 0)
            return rc;
        break;
    }
    if (j->uring && (rc = flush(j)) < 0)
        return rc;
    return MEM_LD(j->err);
}

int journal_sync(journal_t *j)
{
    if (!j->is_open)
        return -EBADF;
    if (j->uring) {
        reap(j);
        fsync_reap(j, false);
    }
    return sync_all(j, true);
}

int journal_error(const journal_t *j)
{
    return MEM_LD(j->err);
}

uint64_t journal_written(journal_t *j, bool wait)
{
    if (!j->is_open)
        return 0;
    if (j->uring) {
        if (wait) {
            if (MEM_LD(j->err) == 0)
                buf_submit(j, j->cur);
            wait_writes(j); /* after an error too: the writes in flight land or fail */
        } else {
            reap(j);
        }
    } else if (wait && MEM_LD(j->err) == 0) {
        buf_submit(j, j->cur);
    }
    if (MEM_LD(j->err) != 0 && j->err_offset != UINT64_MAX)
        return j->err_messages;
    uint64_t w = j->submitted_msgs;
    for (uint32_t i = 0; i < j->nops && ops_inflight(j) > 0; i++)
        if (j->ops[i].kind == OP_WRITE && j->ops[i].msgs_before < w)
            w = j->ops[i].msgs_before;
    uint64_t m = MEM_LD(j->messages);
    return w < m ? w : m;
}

uint64_t journal_ack_seq(journal_t *j, bool wait)
{
    uint64_t w = journal_written(j, wait);
    return 1 + w + MEM_LD(j->lost_messages);
}

const char *journal_note(const journal_t *j)
{
    return j->note;
}

const char *journal_mode(const journal_t *j)
{
    return j->mode[0] ? j->mode : "closed";
}

uint64_t journal_messages(const journal_t *j)
{
    return MEM_LD(j->messages);
}

uint64_t journal_next_seq(const journal_t *j)
{
    return 1 + MEM_LD(j->messages) + MEM_LD(j->lost_messages);
}

void journal_stats(const journal_t *j, journal_stats_t *out)
{
    out->messages = MEM_LD(j->messages);
    out->bytes = MEM_LD(j->bytes);
    out->recovered_messages = MEM_LD(j->recovered_messages);
    out->recovered_bytes = MEM_LD(j->recovered_bytes);
    out->torn_bytes = MEM_LD(j->torn_bytes);
    out->torn_offset = MEM_LD(j->torn_offset);
    out->lost_messages = MEM_LD(j->lost_messages);
    out->gaps = MEM_LD(j->gaps);
    out->gaps_dropped = MEM_LD(j->gaps_dropped);
    out->writes = MEM_LD(j->writes);
    out->short_writes = MEM_LD(j->short_writes);
    out->fsyncs = MEM_LD(j->fsyncs);
    out->write_waits = MEM_LD(j->write_waits);
    out->errors = MEM_LD(j->errors);
    out->rejected = MEM_LD(j->rejected);
    out->synced_bytes = MEM_LD(j->synced_bytes);
    out->inflight_bytes = MEM_LD(j->inflight_bytes);
    out->inflight_high = MEM_LD(j->inflight_high);
    out->fsync_max_ns = MEM_LD(j->fsync_max_ns);
    out->fsync_total_ns = MEM_LD(j->fsync_total_ns);
    out->crc_blocks_checked = MEM_LD(j->crc_blocks_checked);
    out->crc_unchecked_bytes = MEM_LD(j->crc_unchecked_bytes);
    out->crc_cut_offset = MEM_LD(j->crc_cut_offset);
    out->crc_cut_bytes = MEM_LD(j->crc_cut_bytes);
    out->crc_writes = MEM_LD(j->crc_writes);
    out->crc_sidecar_missing = j->crc_missing;
    out->uring = j->uring;
    out->error = MEM_LD(j->err);
}

/* ---- gaps -------------------------------------------------------------------------------- */

/* fsync the directory holding path (a new file's name must be durable too). */
static int fsync_dir(char *path)
{
    char *slash = strrchr(path, '/');
    int dfd;
    if (slash == NULL) {
        dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (slash == path) {
        dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        *slash = '\0';
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
    }
    if (dfd < 0)
        return -errno;
    int rc = fsync(dfd) < 0 ? -errno : 0;
    close(dfd);
    return rc == -EINVAL ? 0 : rc; /* a file system that cannot fsync directories */
}

int journal_note_gap(journal_t *j, uint64_t from, uint64_t count)
{
    if (!j->is_open)
        return -EBADF;
    int rc = MEM_LD(j->err);
    if (rc != 0)
        return rc;
    uint64_t msgs = MEM_LD(j->messages), lost = MEM_LD(j->lost_messages);
    if (count == 0 || from != journal_next_seq(j))
        return -EINVAL;
    if (from + count < from)
        return -EOVERFLOW;
    if (j->gfd < 0) {
        bool created = true;
        int fd = open(j->gpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST) {
            created = false;
            fd = open(j->gpath, O_RDWR | O_CLOEXEC);
        }
        if (fd < 0)
            return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || (created && (rc = fsync_dir(j->gpath)) < 0)) {
            rc = rc < 0 ? rc : -errno;
            close(fd);
            return rc;
        }
        j->gfd = fd;
        j->gsize = (uint64_t)st.st_size;
    }
    char line[JOURNAL_GAP_LINE_MAX];
    int n = snprintf(line, sizeof line, "after=%" PRIu64 " from=%" PRIu64 " count=%" PRIu64 "\n",
                     msgs, from, count);
    size_t done = 0;
    rc = 0;
    while (done < (size_t)n) {
        ssize_t w = fault_pwrite(FAULT_GAPS_WRITE, j->gfd, line + done, (size_t)n - done,
                                 (off_t)(j->gsize + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0)
        rc = datasync(FAULT_GAPS_WRITE, j->gfd);
    if (rc < 0) {
        if (ftruncate(j->gfd, (off_t)j->gsize) < 0) { /* best effort: keep whole lines only */
        }
        return rc;
    }
    j->gsize += (uint64_t)n;
    MEM_ST(j->lost_messages, lost + count);
    MEM_INC(j->gaps);
    return 0;
}

/* Parse "after=<n> from=<n> count=<n>" exactly (decimal, no sign, no spaces but the two). */
static bool parse_field(const char **p, const char *end, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    if ((size_t)(end - *p) < kl || memcmp(*p, key, kl) != 0)
        return false;
    const char *q = *p + kl;
    uint64_t x = 0;
    const char *d0 = q;
    while (q < end && *q >= '0' && *q <= '9') {
        unsigned dg = (unsigned)(*q - '0');
        if (x > (UINT64_MAX - dg) / 10)
            return false;
        x = x * 10 + dg;
        q++;
    }
    if (q == d0)
        return false;
    *v = x;
    *p = q;
    return true;
}

static int gaps_load(journal_t *j, char *err, size_t errlen)
{
    int fd = open(j->gpath, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        err_set(err, errlen, "journal %s: open: %s", j->gpath, strerror(-rc));
        return rc;
    }
    uint8_t *b = j->slab;
    size_t cap = j->slab_size < SCAN_CHUNK ? j->slab_size : SCAN_CHUNK;
    size_t have = 0, p = 0;
    uint64_t off = 0; /* file offset of b[0] */
    bool eof = false;
    uint64_t msgs = MEM_LD(j->messages), lineno = 0, keep_end = 0, lost_all = 0, lost_kept = 0;
    uint64_t kept = 0, dropped = 0, last_after = 0;
    int rc = 0;
    for (;;) {
        const uint8_t *nl = have > p ? memchr(b + p, '\n', have - p) : NULL;
        size_t linelen = nl ? (size_t)(nl - (b + p)) + 1 : have - p;
        if (nl == NULL || linelen > JOURNAL_GAP_LINE_MAX) {
            if (linelen > JOURNAL_GAP_LINE_MAX) {
                err_set(err, errlen, "journal %s line %" PRIu64 ": longer than %d bytes", j->gpath,
                        lineno + 1, JOURNAL_GAP_LINE_MAX);
                rc = -EBADMSG;
                goto out;
            }
            if (eof) {
                if (have > p) /* a torn last line */
                    dropped++;
                break;
            }
            memmove(b, b + p, have - p);
            off += p;
            have -= p;
            p = 0;
            ssize_t n =
                fault_pread(FAULT_JOURNAL_READ, fd, b + have, cap - have, (off_t)(off + have));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = -errno;
                err_set(err, errlen, "journal %s: read: %s", j->gpath, strerror(-rc));
                goto out;
            }
            if (n == 0)
                eof = true;
            have += (size_t)n;
            continue;
        }
        lineno++;
        const char *s = (const char *)b + p, *e = (const char *)nl;
        uint64_t after, from, count;
        if (!parse_field(&s, e, "after=", &after) || !parse_field(&s, e, " from=", &from) ||
            !parse_field(&s, e, " count=", &count) || s != e) {
            err_set(err, errlen,
                    "journal %s line %" PRIu64 ": expected \"after=<messages> from=<seq> "
                    "count=<n>\" in decimal",
                    j->gpath, lineno);
            rc = -EBADMSG;
            goto out;
        }
        if (count == 0 || after < last_after || from != 1 + after + lost_all ||
            from + count < from) {
            err_set(err, errlen,
                    "journal %s line %" PRIu64 ": after=%" PRIu64 " from=%" PRIu64 " count=%" PRIu64
                    " breaks the sidecar's rules: expected count >= 1, after >= "
                    "%" PRIu64 " (the line before), from = 1 + after + %" PRIu64
                    " (the lost messages before) = %" PRIu64,
                    j->gpath, lineno, after, from, count, last_after, lost_all,
                    1 + after + lost_all);
            rc = -EBADMSG;
            goto out;
        }
        last_after = after;
        lost_all += count;
        p = (size_t)(nl - b) + 1;
        if (after <= msgs) {
            kept++;
            lost_kept += count;
            keep_end = off + p;
        } else {
            dropped++;
        }
    }
    if (dropped > 0) {
        if (ftruncate(fd, (off_t)keep_end) < 0 || fsync(fd) < 0) {
            rc = -errno;
            err_set(err, errlen, "journal %s: dropping %" PRIu64 " lines: %s", j->gpath, dropped,
                    strerror(-rc));
            goto out;
        }
    }
    j->gfd = fd;
    j->gsize = keep_end;
    MEM_ST(j->gaps, kept);
    MEM_ST(j->gaps_dropped, dropped);
    MEM_ST(j->lost_messages, lost_kept);
    return 0;
out:
    close(fd);
    return rc;
}

/* ---- open: scan and recovery ------------------------------------------------------------- */

/* Some message type has body length len. */
static bool valid_len(unsigned len)
{
    for (unsigned t = 0; t < 256; t++)
        if (len != 0 && itch_msg_len[t] == len)
            return true;
    return false;
}

/* bytes [from, size) of the file are all zero; b[0..cap) is scratch. 1, 0, or -errno. */
static int zero_to_end(int fd, uint64_t from, uint64_t size, uint8_t *b, size_t cap)
{
    while (from < size) {
        size_t want = size - from < cap ? (size_t)(size - from) : cap;
        ssize_t n = fault_pread(FAULT_JOURNAL_READ, fd, b, want, (off_t)from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 1; /* shrank under us: nothing more to check */
        for (ssize_t i = 0; i < n; i++)
            if (b[i] != 0)
                return 0;
        from += (uint64_t)n;
    }
    return 1;
}

/* Copy bytes [from, size) of the journal to path (created or replaced) and fsync it. */
static int save_cut(journal_t *j, uint64_t from, uint64_t size, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    uint8_t *b = j->slab;
    size_t cap = j->slab_size < SCAN_CHUNK ? j->slab_size : SCAN_CHUNK;
    for (uint64_t off = from; off < size && rc == 0;) {
        size_t want = size - off < cap ? (size_t)(size - off) : cap;
        ssize_t n = fault_pread(FAULT_JOURNAL_READ, j->fd, b, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        rc = fdio_write_all(fd, b, (size_t)n, NULL);
        off += (uint64_t)n;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* The record scan; with limit < the file size (a bad checksum block starts there), bytes from
 * limit on are not read, and the journal is cut at the last record boundary before it. */
static int scan(journal_t *j, uint64_t limit, const char *why, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(j->fd, &st) < 0) {
        int rc = -errno;
        err_set(err, errlen, "journal %s: stat: %s", j->path, strerror(-rc));
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t *b = j->slab;
    size_t cap = j->slab_size < SCAN_CHUNK ? j->slab_size : SCAN_CHUNK;
    size_t have = 0, p = 0;
    uint64_t off = 0, msgs = 0;
    bool eof = false, bad = false;
    for (;;) {
        while (!eof && have < cap) {
            size_t want = cap - have;
            if (off + have + want > limit)
                want = (size_t)(limit - off - have);
            if (want == 0) {
                eof = true;
                break;
            }
            ssize_t n = fault_pread(FAULT_JOURNAL_READ, j->fd, b + have, want, (off_t)(off + have));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int rc = -errno;
                err_set(err, errlen, "journal %s: read at byte offset %" PRIu64 ": %s", j->path,
                        off + have, strerror(-rc));
                return rc;
            }
            if (n == 0)
                eof = true;
            have += (size_t)n;
        }
        p = 0;
        while (have - p >= 3) {
            unsigned len = be16_get(b + p);
            if (len == 0 || itch_msg_len[b[p + 2]] != len) {
                bad = true;
                break;
            }
            if (have - p < 2 + len)
                break;
            p += 2 + len;
            msgs++;
        }
        if (bad || eof)
            break;
        memmove(b, b + p, have - p);
        off += p;
        have -= p;
    }
    uint64_t x = off + p;       /* the first byte that is not part of a whole, valid record */
    if (limit < size && !bad) { /* a bad block: keep what is before it, save and cut the rest */
        snprintf(j->cpath + j->path_cap, j->path_cap, "%s.cut-%" PRIu64, j->path, x);
        const char *saved = j->cpath + j->path_cap;
        int rc = save_cut(j, x, size, saved);
        if (rc < 0) {
            err_set(err, errlen,
                    "%s; saving the %" PRIu64 " bytes from byte offset %" PRIu64
                    " to %s before the cut: %s",
                    why, size - x, x, saved, strerror(-rc));
            return rc;
        }
        if (ftruncate(j->fd, (off_t)x) < 0) {
            rc = -errno;
            err_set(err, errlen, "%s; cutting the journal at byte offset %" PRIu64 ": %s", why, x,
                    strerror(-rc));
            return rc;
        }
        snprintf(j->note, sizeof j->note,
                 "%s; the journal is cut at byte offset %" PRIu64 " (after record %" PRIu64
                 ", the last record boundary before that block): %" PRIu64
                 " bytes cut off, saved to %s",
                 why, x, msgs, size - x, saved);
        MEM_ST(j->crc_cut_offset, x);
        MEM_ST(j->crc_cut_bytes, size - x);
        goto done;
    }
    if (eof || off + have > size)
        size = off + have; /* what the reads saw is the truth (fstat was earlier) */
    if (x < size) {
        size_t n = have - p;
        bool torn;
        if (!bad) /* an incomplete record at the end: a proper prefix of a valid frame? */
            torn = n == 1 ? b[p] == 0 : n == 2 ? valid_len(be16_get(b + p)) : true;
        else
            torn = false;
        if (!torn) {
            /* Keep what the message needs: zero_to_end reuses the buffer. */
            uint8_t head[3] = {b[p], n > 1 ? b[p + 1] : 0, n > 2 ? b[p + 2] : 0};
            int z = zero_to_end(j->fd, x, size, b, cap);
            if (z < 0) {
                err_set(err, errlen, "journal %s: read: %s", j->path, strerror(-z));
                return z;
            }
            torn = z == 1;
            if (!torn) {
                /* Say what is wrong with the record at x (b[p] is its first byte). */
                if (n < 3) {
                    err_set(err, errlen,
                            "journal %s: bad record at byte offset %" PRIu64 " (record %" PRIu64
                            "): the last %zu bytes of the file are not the start of an ITCH "
                            "message frame; refusing to open (the file is left as it is)",
                            j->path, x, msgs + 1, n);
                } else {
                    unsigned len = be16_get(head), t = head[2], want = itch_msg_len[t];
                    char ty[16];
                    if (t >= 0x21 && t <= 0x7e)
                        snprintf(ty, sizeof ty, "'%c' (0x%02x)", (char)t, t);
                    else
                        snprintf(ty, sizeof ty, "0x%02x", t);
                    if (len == 0)
                        err_set(err, errlen,
                                "journal %s: bad record at byte offset %" PRIu64 " (record %" PRIu64
                                "): length prefix 0, expected the length of "
                                "type %s; refusing to open (the file is left as it is)",
                                j->path, x, msgs + 1, ty);
                    else if (want == 0)
                        err_set(err, errlen,
                                "journal %s: bad record at byte offset %" PRIu64 " (record %" PRIu64
                                "): unknown message type %s (length prefix "
                                "%u), expected an ITCH 5.0 message type; refusing to open (the "
                                "file is left as it is)",
                                j->path, x, msgs + 1, ty, len);
                    else
                        err_set(err, errlen,
                                "journal %s: bad record at byte offset %" PRIu64 " (record %" PRIu64
                                "): length prefix %u, expected %u for type "
                                "%s; refusing to open (the file is left as it is)",
                                j->path, x, msgs + 1, len, want, ty);
                }
                return -EBADMSG;
            }
        }
        if (ftruncate(j->fd, (off_t)x) < 0) {
            int rc = -errno;
            err_set(err, errlen,
                    "journal %s: truncating the torn tail at byte offset %" PRIu64 ": %s", j->path,
                    x, strerror(-rc));
            return rc;
        }
        MEM_ST(j->torn_bytes, size - x);
        MEM_ST(j->torn_offset, x);
    }
done:
    j->end = x;
    j->submitted_msgs = msgs;
    MEM_ST(j->messages, msgs);
    MEM_ST(j->bytes, x);
    MEM_ST(j->recovered_messages, msgs);
    MEM_ST(j->recovered_bytes, x);
    return 0;
}

/* ---- open: checksums -------------------------------------------------------------------- */

/* ISA-L's register over bytes [from, from + n) of the journal (read through the slab). */
static int crc_file(journal_t *j, uint64_t from, uint64_t n, uint32_t *reg)
{
    size_t cap = j->slab_size < SCAN_CHUNK ? j->slab_size : SCAN_CHUNK;
    while (n > 0) {
        size_t want = n < cap ? (size_t)n : cap;
        ssize_t r = fault_pread(FAULT_JOURNAL_READ, j->fd, j->slab, want, (off_t)from);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        *reg = crc_run(*reg, j->slab, (size_t)r);
        from += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return 0;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = fault_pwrite(FAULT_CRC_WRITE, fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* What crc_verify found, for crc_resume. */
typedef struct crc_check {
    uint64_t limit;                 /* start of the first bad block (UINT64_MAX: none) */
    uint64_t checked_end;           /* journal bytes [0, checked_end) matched their entries */
    uint64_t full_blocks;           /* whole blocks whose entries matched (from block 0) */
    bool rewrite;                   /* no sidecar, or not ours: (re)create it with a header */
    char why[JOURNAL_NOTE_MAX / 2]; /* the bad block, said for the note */
} crc_check_t;

/* Open (or create) the sidecar and check every entry it holds against the journal, before the
 * record scan. A missing or foreign sidecar is a note, not an error; an entry that does not parse
 * ends the checking there (a note too): the record scan still checks the rest for structure. */
static int crc_verify(journal_t *j, uint32_t want_block, crc_check_t *c, char *err, size_t errlen)
{
    c->limit = UINT64_MAX;
    c->checked_end = c->full_blocks = 0;
    c->why[0] = '\0';
    c->rewrite = true;
    int rc, fd = open(j->cpath, O_RDWR | O_CLOEXEC); /* created by crc_resume if need be */
    if (fd < 0 && errno != ENOENT) {
        rc = -errno;
        err_set(err, errlen, "journal %s: open: %s", j->cpath, strerror(-rc));
        return rc;
    }
    j->cfd = fd;
    struct stat js, cs = {0};
    if (fstat(j->fd, &js) < 0 || (fd >= 0 && fstat(fd, &cs) < 0)) {
        rc = -errno;
        err_set(err, errlen, "journal %s: stat: %s", j->cpath, strerror(-rc));
        return rc;
    }
    uint64_t size = (uint64_t)js.st_size, csize = (uint64_t)cs.st_size;
    uint8_t h[JOURNAL_CRC_HEADER];
    uint32_t blk = 0;
    bool ours = false;
    ssize_t hr = csize >= JOURNAL_CRC_HEADER ? pread_full(fd, h, sizeof h, 0) : 0;
    if (hr < 0) {
        err_set(err, errlen, "journal %s: read: %s", j->cpath, strerror((int)-hr));
        return (int)hr;
    }
    if (hr == (ssize_t)sizeof h) {
        blk = le32_get(h + 8);
        ours = memcmp(h, "TKJCRC1\n", 8) == 0 && le32_get(h + 12) == ~crc_run(CRC_INIT, h, 12) &&
               blk >= JOURNAL_MIN_CRC_BLOCK && blk <= JOURNAL_MAX_CRC_BLOCK &&
               (blk & (blk - 1)) == 0;
    }
    if (!ours) {
        if (csize > 0)
            snprintf(
                j->note, sizeof j->note,
                "journal %s: the checksum sidecar %s does not start with our header "
                "(\"TKJCRC1\\n\", a power-of-two block size, their CRC32C): ignored and written "
                "again; the "
                "journal's %" PRIu64 " bytes are checked for structure only",
                j->path, j->cpath, size);
        else if (size > 0)
            snprintf(j->note, sizeof j->note,
                     "journal %s: no checksum sidecar %s (a journal written before checksums): "
                     "its %" PRIu64 " bytes are checked for structure only; their checksums are "
                     "written now",
                     j->path, j->cpath, size);
        j->crc_missing = size > 0;
        j->crc_block = want_block;
        return 0;
    }
    c->rewrite = false;
    j->crc_block = blk;
    uint64_t n = (csize - JOURNAL_CRC_HEADER) / JOURNAL_CRC_ENTRY;
    uint8_t e[512 * JOURNAL_CRC_ENTRY];
    for (uint64_t i = 0; i < n; i++) {
        size_t k = (size_t)(i % 512);
        if (k == 0) {
            size_t want = (size_t)((n - i < 512 ? n - i : 512) * JOURNAL_CRC_ENTRY);
            ssize_t r = pread_full(fd, e, want, JOURNAL_CRC_HEADER + i * JOURNAL_CRC_ENTRY);
            if (r != (ssize_t)want) {
                rc = r < 0 ? (int)r : -EIO;
                err_set(err, errlen, "journal %s: read: %s", j->cpath, strerror(-rc));
                return rc;
            }
        }
        uint32_t len = le32_get(e + k * JOURNAL_CRC_ENTRY);
        uint32_t want = le32_get(e + k * JOURNAL_CRC_ENTRY + 4);
        uint64_t at = i * blk;
        if (len == 0 || len > blk || (len < blk && i + 1 < n)) {
            snprintf(j->note, sizeof j->note,
                     "journal %s: checksum sidecar %s entry %" PRIu64 " (byte offset %" PRIu64
                     ") covers %u bytes, expected 1..%u (and %u but for the last): checked up to "
                     "byte offset %" PRIu64 " only; the rest for structure",
                     j->path, j->cpath, i, JOURNAL_CRC_HEADER + i * JOURNAL_CRC_ENTRY, len, blk,
                     blk, at);
            break;
        }
        if (at + len > size)
            break; /* describes bytes the file does not have: a crash or a cut, not damage */
        uint32_t reg = CRC_INIT;
        if ((rc = crc_file(j, at, len, &reg)) < 0) {
            err_set(err, errlen, "journal %s: read at byte offset %" PRIu64 ": %s", j->path, at,
                    strerror(-rc));
            return rc;
        }
        if (~reg != want) {
            c->limit = at;
            snprintf(c->why, sizeof c->why,
                     "journal %s: bad block %" PRIu64 " (byte offsets %" PRIu64 "..%" PRIu64
                     "): CRC32C expected 0x%08x (%s), found 0x%08x",
                     j->path, i, at, at + len, want, j->cpath, ~reg);
            break;
        }
        c->checked_end = at + len;
        if (len == blk)
            c->full_blocks = i + 1;
        MEM_INC(j->crc_blocks_checked);
    }
    return 0;
}

/* After the record scan (the journal now ends at j->end): entries for the whole blocks that had
 * none (an older journal, a tail after a crash), the sidecar cut to the whole blocks, and the
 * running CRC of the last, partial block, so that appends continue it. */
static int crc_resume(journal_t *j, const crc_check_t *c, char *err, size_t errlen)
{
    uint64_t x = j->end, B = j->crc_block, nfull = x / B;
    uint8_t e[512 * JOURNAL_CRC_ENTRY];
    int rc = 0;
    if (j->cfd < 0) {
        j->cfd = open(j->cpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (j->cfd < 0 || (rc = fsync_dir(j->cpath)) < 0) {
            rc = rc < 0 ? rc : -errno;
            err_set(err, errlen, "journal %s: create: %s", j->cpath, strerror(-rc));
            return rc;
        }
    }
    if (c->rewrite) {
        memcpy(e, "TKJCRC1\n", 8);
        le32_put(e + 8, (uint32_t)B);
        le32_put(e + 12, ~crc_run(CRC_INIT, e, 12));
        if ((rc = pwrite_full(j->cfd, e, JOURNAL_CRC_HEADER, 0)) < 0) {
            err_set(err, errlen, "journal %s: write: %s", j->cpath, strerror(-rc));
            return rc;
        }
    }
    for (uint64_t i = c->full_blocks; i < nfull && rc == 0;) {
        uint64_t first = i;
        size_t k = 0;
        for (; i < nfull && k < 512; i++, k++) {
            uint32_t reg = CRC_INIT;
            if ((rc = crc_file(j, i * B, B, &reg)) < 0)
                break;
            le32_put(e + k * JOURNAL_CRC_ENTRY, (uint32_t)B);
            le32_put(e + k * JOURNAL_CRC_ENTRY + 4, ~reg);
        }
        if (rc == 0)
            rc = pwrite_full(j->cfd, e, k * JOURNAL_CRC_ENTRY,
                             JOURNAL_CRC_HEADER + first * JOURNAL_CRC_ENTRY);
    }
    uint32_t reg = CRC_INIT;
    if (rc == 0)
        rc = crc_file(j, nfull * B, x - nfull * B, &reg);
    if (rc == 0 && ftruncate(j->cfd, (off_t)(JOURNAL_CRC_HEADER + nfull * JOURNAL_CRC_ENTRY)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = datasync(FAULT_JOURNAL_FSYNC, j->cfd);
    if (rc < 0) {
        err_set(err, errlen, "journal %s: writing the checksums of the blocks it holds: %s",
                j->cpath, strerror(-rc));
        return rc;
    }
    j->crc_blk = nfull;
    j->crc_fill = (uint32_t)(x - nfull * B);
    j->crc_reg = reg;
    MEM_ST(j->crc_unchecked_bytes, x > c->checked_end ? x - c->checked_end : 0);
    return 0;
}

static void uring_setup(journal_t *j, bool force_pwrite)
{
    if (force_pwrite) {
        snprintf(j->mode, sizeof j->mode, "pwrite (requested)");
        return;
    }
    unsigned entries = 8;
    while (entries < j->nops)
        entries <<= 1;
    int rc = io_uring_queue_init(entries, &j->ring, 0);
    if (rc == 0) {
        rc = io_uring_queue_init(4, &j->sring, 0);
        if (rc < 0)
            io_uring_queue_exit(&j->ring);
    }
    if (rc < 0) {
        snprintf(j->mode, sizeof j->mode, "pwrite (io_uring unavailable: %s)", strerror(-rc));
        return;
    }
    j->uring = true;
    struct iovec iov[JOURNAL_MAX_BUFFERS];
    for (uint32_t i = 0; i < j->nbufs; i++)
        iov[i] = (struct iovec){j->bufs[i].data, j->buf_size};
    j->registered = io_uring_register_buffers(&j->ring, iov, j->nbufs) == 0;
    snprintf(j->mode, sizeof j->mode, "%s",
             j->registered ? "io_uring, registered buffers" : "io_uring");
}

static void teardown(journal_t *j)
{
    if (j->uring) {
        wait_writes(j);
        fsync_reap(j, true);
        if (j->registered)
            io_uring_unregister_buffers(&j->ring);
        io_uring_queue_exit(&j->ring);
        io_uring_queue_exit(&j->sring);
    }
    /* After a failed write, later writes may have landed beyond it: keep the prefix before the
     * failure only, so that no hole is left for the next open to refuse (best effort). */
    if (j->fd >= 0 && j->err_offset != UINT64_MAX && ftruncate(j->fd, (off_t)j->err_offset) == 0)
        fdatasync(j->fd);
    if (j->gfd >= 0)
        close(j->gfd);
    if (j->cfd >= 0)
        close(j->cfd);
    if (j->fd >= 0)
        close(j->fd); /* also drops the flock */
    mem_free(MEM_TAG_JOURNAL, j->slab, j->slab_size);
    mem_free(MEM_TAG_JOURNAL, j->bufs, (size_t)j->nbufs * sizeof *j->bufs);
    mem_free(MEM_TAG_JOURNAL, j->ops, (size_t)j->nops * sizeof *j->ops);
    mem_free(MEM_TAG_JOURNAL, j->free_ops, (size_t)j->nops * sizeof *j->free_ops);
    mem_free(MEM_TAG_JOURNAL, j->crc_slab, j->crc_slab_size);
    mem_free(MEM_TAG_JOURNAL, j->path, 4 * j->path_cap);
    memset(j, 0, sizeof *j);
    j->fd = j->gfd = j->cfd = -1;
}

int journal_open(journal_t *j, const journal_cfg_t *cfg, char *err, size_t errlen)
{
    memset(j, 0, sizeof *j);
    j->fd = j->gfd = j->cfd = -1;
    j->err_offset = UINT64_MAX;
    j->crc_op = UINT32_MAX;
    j->crc_partial_at = UINT64_MAX;
    MEM_ST(j->crc_cut_offset, UINT64_MAX);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
        err_set(err, errlen, "journal: no path given");
        return -EINVAL;
    }
    const char *path = cfg->path;
    size_t bs = cfg->buffer_size ? cfg->buffer_size : JOURNAL_DEFAULT_BUFFER_SIZE;
    unsigned nb = cfg->buffers ? cfg->buffers : JOURNAL_DEFAULT_BUFFERS;
    if (bs < JOURNAL_MIN_BUFFER_SIZE || bs > JOURNAL_MAX_BUFFER_SIZE) {
        err_set(err, errlen, "journal %s: buffer_size %zu out of range %u..%u", path, bs,
                JOURNAL_MIN_BUFFER_SIZE, JOURNAL_MAX_BUFFER_SIZE);
        return -EINVAL;
    }
    if (nb > JOURNAL_MAX_BUFFERS) {
        err_set(err, errlen, "journal %s: buffers %u out of range 1..%u", path, nb,
                JOURNAL_MAX_BUFFERS);
        return -EINVAL;
    }
    uint32_t cb = cfg->crc_block ? cfg->crc_block : JOURNAL_DEFAULT_CRC_BLOCK;
    if (cb < JOURNAL_MIN_CRC_BLOCK || cb > JOURNAL_MAX_CRC_BLOCK || (cb & (cb - 1)) != 0) {
        err_set(err, errlen, "journal %s: crc_block %u: expected a power of two in %u..%u", path,
                cb, JOURNAL_MIN_CRC_BLOCK, JOURNAL_MAX_CRC_BLOCK);
        return -EINVAL;
    }
    if ((unsigned)cfg->fsync > JOURNAL_FSYNC_OFF) {
        err_set(err, errlen, "journal %s: unknown fsync policy %d", path, (int)cfg->fsync);
        return -EINVAL;
    }
    j->policy = cfg->fsync;
    j->interval_ns = cfg->fsync_interval_ns ? cfg->fsync_interval_ns : JOURNAL_DEFAULT_INTERVAL_NS;
    j->last_fsync_ns = UINT64_MAX;
    j->nbufs = nb;
    j->buf_size = (uint32_t)bs;
    j->nops = 2 * nb + 8;
    j->nfree = j->nops;
    j->slab_size = (size_t)nb * bs < MIN_SLAB ? MIN_SLAB : (size_t)nb * bs;
    j->path_cap = strlen(path) + sizeof ".cut-18446744073709551615";
    j->crc_slab_size = (size_t)j->nops * JOURNAL_CRC_OP_ENTRIES * JOURNAL_CRC_ENTRY;

    int rc = -ENOMEM;
    j->path = mem_alloc(MEM_TAG_JOURNAL, 4 * j->path_cap); /* path, .gaps, .crc, scratch */
    j->crc_slab = mem_alloc(MEM_TAG_JOURNAL, j->crc_slab_size);
    j->slab = mem_alloc_prefault(MEM_TAG_JOURNAL, j->slab_size, 4096);
    j->bufs = mem_calloc(MEM_TAG_JOURNAL, nb, sizeof *j->bufs);
    j->ops = mem_calloc(MEM_TAG_JOURNAL, j->nops, sizeof *j->ops);
    j->free_ops = mem_calloc(MEM_TAG_JOURNAL, j->nops, sizeof *j->free_ops);
    if (!j->path || !j->slab || !j->bufs || !j->ops || !j->free_ops || !j->crc_slab) {
        err_set(err, errlen, "journal %s: out of memory for %zu bytes of buffers", path,
                j->slab_size);
        goto fail;
    }
    j->gpath = j->path + j->path_cap;
    j->cpath = j->gpath + j->path_cap;
    snprintf(j->path, j->path_cap, "%s", path);
    snprintf(j->gpath, j->path_cap, "%s.gaps", path);
    snprintf(j->cpath, j->path_cap, "%s.crc", path);
    for (uint32_t i = 0; i < nb; i++)
        j->bufs[i].data = j->slab + (size_t)i * bs;
    for (uint32_t i = 0; i < j->nops; i++)
        j->free_ops[i] = j->nops - 1 - i;

    bool created = true;
    j->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (j->fd < 0 && errno == EEXIST) {
        created = false;
        j->fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (j->fd < 0) {
        rc = -errno;
        err_set(err, errlen, "journal %s: open: %s", path, strerror(-rc));
        goto fail;
    }
    struct stat st;
    if (fstat(j->fd, &st) < 0) {
        rc = -errno;
        err_set(err, errlen, "journal %s: stat: %s", path, strerror(-rc));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        err_set(err, errlen, "journal %s: not a regular file", path);
        goto fail;
    }
    /* The lock is the barrier against a predecessor's I/O: a killed process's io_uring requests
     * hold the file (and so the lock) until they end, which may take a moment after its death. */
    uint32_t wait_ms = cfg->lock_wait_ms == 0                      ? JOURNAL_DEFAULT_LOCK_WAIT_MS
                       : cfg->lock_wait_ms == JOURNAL_LOCK_NO_WAIT ? 0
                                                                   : cfg->lock_wait_ms;
    for (uint32_t waited = 0;; waited += 10) {
        if (flock(j->fd, LOCK_EX | LOCK_NB) == 0)
            break;
        rc = -errno;
        if (rc == -EINTR)
            continue;
        if (rc != -EWOULDBLOCK || waited >= wait_ms) {
            if (rc == -EWOULDBLOCK)
                err_set(err, errlen,
                        "journal %s: already open by another journal (locked; waited %u ms)", path,
                        waited);
            else
                err_set(err, errlen, "journal %s: flock: %s", path, strerror(-rc));
            goto fail;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    if (created && (rc = fsync_dir(j->path)) < 0) {
        err_set(err, errlen, "journal %s: fsync of its directory: %s", path, strerror(-rc));
        goto fail;
    }
    crc_check_t cc;
    if ((rc = crc_verify(j, cb, &cc, err, errlen)) < 0)
        goto fail;
    if ((rc = scan(j, cc.limit, cc.why, err, errlen)) < 0)
        goto fail;

    /* What the scan found (and a truncation) is on disk before anything is appended to it. */
    if ((rc = datasync(FAULT_JOURNAL_FSYNC, j->fd)) < 0) {
        err_set(err, errlen, "journal %s: fsync: %s", path, strerror(-rc));
        goto fail;
    }
    MEM_ST(j->synced_bytes, j->end);
    j->fsync_issued = j->end;
    if ((rc = gaps_load(j, err, errlen)) < 0)
        goto fail;
    if ((rc = crc_resume(j, &cc, err, errlen)) < 0)
        goto fail;
    j->bufs[0].off = j->end;
    uring_setup(j, cfg->force_pwrite);
    j->is_open = true;
    return 0;
fail:
    teardown(j);
    return rc;
}

int journal_close(journal_t *j)
{
    if (!j->is_open) /* zeroed, failed or closed: nothing is held */
        return 0;
    int rc = journal_sync(j);
    teardown(j);
    return rc;
}
