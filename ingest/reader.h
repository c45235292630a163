/*
 * reader: sequential file input through io_uring into a fixed set of reused buffers, with
 * streaming gzip inflate (ISA-L) and a small carry-over for records split across buffers.
 *
 * reader_init() allocates everything once (tag INGEST): nbufs output buffers of buf_size bytes,
 * each preceded by `headroom` bytes, plus, for gzip input, a ring of compressed-input buffers
 * and ISA-L's inflate state. It sets up one io_uring and registers every buffer with it, so reads
 * are READ_FIXED into pinned pages. reader_open() then serves any number of files in turn with
 * the same buffers; nothing is allocated per file, per read or per record.
 *
 * Reads: for a regular file, up to queue_depth reads are in flight at consecutive offsets, each
 * into its own free buffer; completions may arrive in any order, and reader_next() hands the
 * buffers out in file order. A short read is resubmitted for its remainder. gzip input is
 * recognised by its magic bytes (1f 8b), never by the file name: the compressed bytes are read the
 * same way into the input ring and inflated, member after member (multi-member files work), into
 * the output buffers, which are then handed out like plain data.
 *
 * Carry-over: a record that straddles two buffers is not copied whole. The consumer passes the
 * unconsumed tail of the chunk it holds to reader_next(), which copies it (at most headroom bytes)
 * into the headroom just before the next buffer's data, so the next chunk starts with the whole
 * record. The consumer then releases the previous buffer. Ownership: a buffer handed out by
 * reader_next() belongs to the consumer until reader_release(); the reader never touches it.
 *
 * If io_uring cannot be set up (old kernel, seccomp), the reader falls back to pread() and says
 * so in reader_mode(); if registering buffers fails (RLIMIT_MEMLOCK) it uses plain reads.
 * One thread uses a reader.
 */
#ifndef TICKCORE_INGEST_READER_H
#define TICKCORE_INGEST_READER_H

#include <isa-l.h>
#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct reader_cfg {
    uint32_t nbufs;       /* output buffers (>= 2) */
    uint32_t buf_size;    /* bytes of data per buffer */
    uint32_t headroom;    /* bytes before each buffer for the carry-over (>= longest record) */
    uint32_t queue_depth; /* reads in flight at most (<= nbufs) */
    uint32_t gz_bufs;     /* compressed-input buffers for gzip files */
    uint32_t gz_buf_size;
    bool force_pread; /* benchmarks: the plain pread() path instead of io_uring */
} reader_cfg_t;

void reader_cfg_default(reader_cfg_t *cfg);

typedef struct reader_chunk {
    uint8_t *data; /* the carried-over tail, then the new bytes */
    size_t len;
    uint64_t offset; /* stream offset of data[0] (of the inflated stream for gzip) */
    uint32_t buf;    /* buffer id for reader_release() */
} reader_chunk_t;

enum { RB_FREE = 0, RB_INFLIGHT, RB_READY, RB_HELD };

typedef struct reader_buf {
    uint8_t *base; /* headroom + size bytes; data at base + headroom */
    uint64_t offset;
    uint32_t want, got;
    uint8_t state;
    int err; /* -errno of a failed read */
} reader_buf_t;

typedef struct reader {
    reader_cfg_t cfg;
    struct io_uring ring;
    bool uring_ok, registered;
    int uring_err;
    reader_buf_t *out; /* nbufs */
    reader_buf_t *gz;  /* gz_bufs */
    struct inflate_state *inflate;
    /* the open file */
    int fd;
    bool is_gzip, regular, at_eof, failed;
    uint64_t file_size;
    uint64_t next_read_off; /* next file offset to submit */
    uint64_t next_seq_off;  /* file offset of the next buffer to hand out (plain) */
    uint64_t stream_off;    /* stream offset of the next bytes handed out */
    uint32_t inflight;
    /* gzip: the compressed buffer being inflated, and where in it */
    int gz_cur;
    uint32_t gz_pos;
    uint64_t gz_in_off; /* compressed offset of gz_cur's first byte */
    uint64_t gz_members;
    bool gz_member_done;
    /* figures for the open file */
    uint64_t bytes_read, reads, short_reads, chunks;
    int error; /* -errno of the failure kept for the next reader_next() */
    char err[256];
} reader_t;

/* 0 or -errno (message in r->err). */
int reader_init(reader_t *r, const reader_cfg_t *cfg);
void reader_fini(reader_t *r);

/* Open a file (closing any previous one; every buffer must have been released).
 * 0 or -errno, with a message naming the file in r->err. */
int reader_open(reader_t *r, const char *path);
void reader_close(reader_t *r);

/* The next chunk in stream order, starting with carry[0..carry_len) (the caller's unconsumed
 * tail, copied into the headroom; carry_len <= headroom). 1: a chunk; 0: end of stream (if
 * carry_len > 0 the tail is left to the caller: a truncated record); <0: -errno, with a message
 * in r->err (I/O error, corrupt or truncated gzip, carry too long). */
int reader_next(reader_t *r, reader_chunk_t *out, const uint8_t *carry, size_t carry_len);
void reader_release(reader_t *r, uint32_t buf);

/* Was the open file recognised as gzip (by its magic bytes)? */
bool reader_is_gzip(const reader_t *r);
const char *reader_mode(const reader_t *r); /* "io_uring (registered buffers)", ... */

#endif
