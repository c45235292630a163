/*
 * reader: sequential file input through io_uring into a fixed set of reused buffers, with gzip
 * inflated (ISA-L) on inflate threads that overlap the consumer's decoding, and a small
 * carry-over for records split across buffers.
 *
 * reader_init() allocates everything once (tag INGEST): nbufs output buffers of buf_size bytes,
 * each preceded by `headroom` bytes, and, per inflate thread, one compressed-input buffer and
 * ISA-L's inflate state; it starts the inflate threads (they sleep until a gzip file is open). It
 * sets up one io_uring and registers the output buffers with it, so plain reads are READ_FIXED
 * into pinned pages. reader_open() then serves any number of files in turn with the same buffers
 * and threads; nothing is allocated per file, per read, per member or per record.
 *
 * Plain files: up to queue_depth reads are in flight at consecutive offsets, each into its own free
 * buffer; completions may arrive in any order, and reader_next() hands the buffers out in file
 * order. A short read is resubmitted for its remainder.
 *
 * gzip (recognised by its magic bytes 1f 8b, never by the file name; regular files only): the
 * compressed file is cut into claims. A member whose header carries its compressed size in an
 * extra subfield (BGZF's 'BC' BSIZE, or the 32-bit 'TK' written by `tickcore gen --gzip`) can be
 * inflated without inflating what precedes it, so consecutive such members are claimed (about
 * 1 MiB of compressed input per claim) by the inflate_threads threads in parallel. Anything else
 * (a single-member `gzip -1` file, members without the field) is one sequential claim, inflated
 * member after member on one inflate thread while the consumer decodes. Claims are numbered;
 * each inflate thread fills free output buffers with its claim's output and publishes them as
 * pieces (claim, piece); reader_next() hands pieces out strictly in (claim, piece) order, so the
 * output is the file's, byte for byte. A member whose real length differs from its size field
 * turns the rest of the file into one sequential claim (claims after it are dropped unseen) and is
 * counted in gz_bsize_mismatches: the output is still what `gzip -dc` gives. Back-pressure: an
 * inflate thread that is not working on the next claim the consumer needs (the head) may take a
 * buffer only while that leaves two free (one the consumer may hold across reader_next(), one for
 * the head), so the head always gets a buffer: the reader cannot deadlock while the consumer
 * holds at most one buffer across reader_next() (more is reported as -ENOBUFS, never a hang).
 * Errors (corrupt data, truncation, trailing garbage) are pieces too: every byte before the error
 * reaches the consumer first, then the error, naming the compressed byte offset and the member
 * (1-based).
 *
 * Carry-over: a record that straddles two buffers is not copied whole. The consumer passes the
 * unconsumed tail of the chunk it holds to reader_next(), which copies it (at most headroom bytes)
 * into the headroom just before the next buffer's data, so the next chunk starts with the whole
 * record. The consumer then releases the previous buffer. Ownership: a buffer handed out by
 * reader_next() belongs to the consumer until reader_release(); the reader never touches it.
 *
 * If io_uring cannot be set up (old kernel, seccomp), the reader falls back to pread() and says
 * so in reader_mode(); if registering buffers fails (RLIMIT_MEMLOCK) it uses plain reads. The
 * inflate threads read compressed input with pread() after asking the kernel to read each claim
 * ahead (POSIX_FADV_WILLNEED): from the page cache a pread costs about 2% of inflating the bytes.
 *
 * Threads: one consumer thread calls every function here. The inflate threads share only the
 * output buffer states, the claim cursor and the piece order, under one mutex taken a few times
 * per MiB of output; they sleep on condition variables, never spin. reader_close() (also on an
 * early stop mid-file) tells them to drop their claims and waits until they have; reader_fini()
 * joins them.
 */
#ifndef TICKCORE_INGEST_READER_H
#define TICKCORE_INGEST_READER_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct reader_cfg {
    uint32_t nbufs;           /* output buffers (>= 2) */
    uint32_t buf_size;        /* bytes of data per buffer */
    uint32_t headroom;        /* bytes before each buffer for the carry-over (>= longest record) */
    uint32_t queue_depth;     /* reads in flight at most (<= nbufs) */
    uint32_t gz_bufs;         /* unused since the inflate threads: kept for config compatibility */
    uint32_t gz_buf_size;     /* bytes per compressed-input read (one buffer per inflate thread) */
    uint32_t inflate_threads; /* gzip inflate threads; 0: min(2, online CPUs) */
    bool force_pread;         /* benchmarks: the plain pread() path instead of io_uring */
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

struct reader_gz; /* the inflate threads and their shared state (reader.c) */

typedef struct reader {
    reader_cfg_t cfg;
    struct io_uring ring;
    bool uring_ok, registered;
    int uring_err;
    reader_buf_t *out; /* nbufs */
    struct reader_gz *gz;
    /* the open file */
    int fd;
    bool is_gzip, regular, at_eof, failed;
    uint64_t file_size;
    uint64_t next_read_off; /* next file offset to submit */
    uint64_t next_seq_off;  /* file offset of the next buffer to hand out (plain) */
    uint64_t stream_off;    /* stream offset of the next bytes handed out */
    uint32_t inflight;
    uint32_t held; /* buffers the consumer holds (gzip) */
    /* figures for the open file (gzip: bytes_read is the compressed bytes read so far, updated by
     * each reader_next) */
    uint64_t bytes_read, reads, short_reads, chunks;
    uint64_t gz_members, gz_claims, gz_bsize_mismatches;
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

/* The inflate threads started by reader_init (gzip input). */
uint32_t reader_inflate_threads(const reader_t *r);

/* Was the open file recognised as gzip (by its magic bytes)? */
bool reader_is_gzip(const reader_t *r);
const char *reader_mode(const reader_t *r); /* "io_uring (registered buffers)", ... */

#endif
