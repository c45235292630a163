/*
 * journal: the append-only record of every message the server accepts from a live feed, so that
 * a restarted server rebuilds its state and resumes where it stopped. The file is an ITCH 5.0
 * BinaryFILE (2-byte big-endian length, then the message body, type byte first), so
 * `tickcore replay JOURNAL` reads it back. journal_open() allocates everything once (tag
 * MEM_TAG_JOURNAL): `buffers` write buffers of `buffer_size` bytes, a small table of write
 * operations and the path strings. It scans an existing journal (counting and checking every
 * record, truncating a torn tail), reads the gap sidecar PATH.gaps, and sets up two io_urings:
 * one for the writes, with the buffers registered (WRITE_FIXED), and a small one for the fsyncs.
 * From then on nothing is allocated:
 * journal_append() copies a message into the current buffer; a full buffer is handed to the
 * kernel as one write at its file offset and the next buffer is taken, and the thread waits only
 * when every buffer is still being written. journal_commit() ends an ingest batch: it submits the
 * part of the current buffer not yet submitted (the buffer keeps filling after it; the write in
 * flight covers only the bytes before) and fsyncs per policy. The journal owns its file offsets
 * (no O_APPEND) and holds an exclusive flock on the file, so a second server cannot write to it.
 * The lock is also the barrier after a crash: the io_uring requests of a killed process hold
 * its file (and so the lock) until they end, a moment after its death, so journal_open() waits
 * for the lock (lock_wait_ms, 2 s by default) and scans only once no old write can still land.
 *
 * Order and crashes. Every write is submitted with IOSQE_IO_DRAIN, so the kernel runs the writes
 * one after the other in file order: a crash (kill -9) leaves a prefix of what was appended,
 * never a hole. fsyncs run on their own ring, beside the writes (a drained write would otherwise
 * wait for a running fsync, and a full set of buffers would stall the thread for the whole
 * flush): an fsync covers the writes completed when it starts, and only one runs at a time.
 * The prefix may end inside a record; journal_open() truncates such a torn tail away (a tail
 * whose bytes are a proper prefix of a valid record, or a tail of zero bytes only, as a power loss
 * after the file size but before the data reached the disk can leave) and reports it in
 * torn_bytes and torn_offset. Any other bad record refuses the open with its byte offset and what
 * was expected, and leaves the file untouched. A short write is resubmitted for the rest (a
 * regular file writes short only when out of space or over a size limit, where the rest then
 * fails too). A failed write or fsync is a sticky error; journal_close() then cuts the file back
 * to where the first failed write began, so that writes queued behind it leave no hole, and the
 * next open truncates the torn record it may end in. (Only a process that dies between a short
 * write and the resubmission of its rest could leave a hole; the next open refuses it.)
 *
 * fsync policy (the trade-off). Each fsync is an fdatasync (IORING_FSYNC_DATASYNC): it flushes
 * the data and the file size, not the timestamps.
 *   BATCH     journal_commit() writes, waits for the writes, fsyncs and waits for it: a batch is
 *             on disk before it is applied, so even a power loss loses nothing that was applied;
 *             costs one disk flush (0.1 to several ms) per batch on the ingest thread.
 *   INTERVAL  journal_commit() submits the writes and, when fsync_interval_ns has passed since the
 *             last fsync started and none is running, starts an fsync of the writes completed so
 *             far without waiting for it: a crash of the process loses nothing whose write
 *             completed (the page cache has it), a power loss may lose about one interval plus
 *             the fsync's own time. The thread waits only when every buffer is in flight.
 *   OFF       journal_commit() only submits; the kernel writes back when it likes (a power loss
 *             may lose tens of seconds). journal_sync() and journal_close() fsync in every policy.
 * In every policy a write submitted but not completed when the process dies may be lost (the
 * kernel cancels what it has not started); BATCH's commit, which waits, is the only promise.
 * The fsync latency counted is from submission to the moment the ingest thread reaps the
 * completion (exact for BATCH, which waits; an upper bound for INTERVAL).
 *
 * Gaps. A MoldUDP64 gap that could not be filled is recorded in the sidecar PATH.gaps, one line
 * "after=<messages so far> from=<seq> count=<n>\n" per gap, written and fsynced at once. The feed
 * sequence number of the next message is then 1 + messages + lost messages. At open only the
 * lines whose `after` is <= the messages really in the journal count; the others (written after
 * messages that a crash tore off) and a torn last line are dropped, and the sidecar is truncated
 * to the lines kept. A line that does not parse, or breaks the invariants (count >= 1, `after`
 * never decreasing, from == 1 + after + the lost messages of the lines before it), refuses the
 * open with its line number.
 *
 * Checksums. Every block of crc_block bytes of the journal file (64 KiB by default; block i is
 * bytes [i * crc_block, (i + 1) * crc_block)) has a CRC32C (Castagnoli, ISA-L's crc32_iscsi) in
 * the sidecar PATH.crc: a 16-byte header ("TKJCRC1\n", the block size as u32 LE, the CRC32C of
 * those 12 bytes as u32 LE: a header bit flip is a foreign sidecar, not a cut at byte 0) and then
 * one 8-byte entry per block at 16 + 8 * i (u32 LE bytes covered from the block's start, u32 LE
 * CRC32C of those bytes). An entry covers a whole block, except the last one, which may cover
 * only the block's first bytes (written by journal_sync and journal_close; the next entry for
 * that block overwrites it). The CRCs are computed when a buffer's bytes are handed to a write
 * (one pass over bytes already in cache) and the entries go out as writes of their own on the
 * same ring, behind the data they cover (IOSQE_IO_DRAIN): after a crash an entry never describes
 * bytes that did not reach the file. An fsync covers the sidecar too when entries were written
 * since the last one (once per block, not per batch). At open every entry is checked against the
 * file before the record scan: the first block whose CRC differs cuts the journal at the last
 * record boundary at or before that block's start (everything before it is kept; the cut-off bytes
 * are saved to PATH.cut-<offset> and then truncated), and journal_note() says so, naming the file,
 * the block's byte offset and the expected and found CRC. Entries that describe bytes past the end
 * of the file (a crash, or a cut after a failed write) are dropped; bytes after the last entry (at
 * most a block and a buffer after a crash) are checked for structure only, and counted in
 * crc_unchecked_bytes. A journal without a sidecar (written before checksums existed), or with a
 * sidecar whose header is not ours, is opened with a warning in journal_note(): its records are
 * checked for structure as before, and the entries of its blocks are written at open, so that the
 * next open checks them.
 *
 * If io_uring cannot be set up (old kernel, seccomp) or cfg.force_pwrite is set, the journal uses
 * pwrite()/fdatasync() on the calling thread instead, with the same buffers and semantics
 * (but a commit's writes are done when it returns, and INTERVAL's fsync blocks the thread for
 * the whole flush); journal_mode() says which. One thread owns a journal (the
 * server's ingest thread): every function but journal_stats() must be called from it;
 * journal_stats() may be called from any thread.
 */
#ifndef TICKCORE_SERVER_JOURNAL_H
#define TICKCORE_SERVER_JOURNAL_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Same order as cfg_fsync_t in config/config.h. */
typedef enum journal_fsync {
    JOURNAL_FSYNC_BATCH = 0,
    JOURNAL_FSYNC_INTERVAL,
    JOURNAL_FSYNC_OFF
} journal_fsync_t;

#define JOURNAL_DEFAULT_BUFFER_SIZE (1u << 20)
#define JOURNAL_DEFAULT_BUFFERS     4u
#define JOURNAL_DEFAULT_INTERVAL_NS 100000000ull /* 100 ms */
#define JOURNAL_MIN_BUFFER_SIZE     64u          /* holds the longest frame (52 bytes) */
#define JOURNAL_MAX_BUFFER_SIZE     (1u << 30)
#define JOURNAL_MAX_BUFFERS         64u
#define JOURNAL_GAP_LINE_MAX        96 /* longest valid sidecar line, newline included */

typedef struct journal_cfg {
    const char *path;           /* the journal; the sidecar is path + ".gaps" */
    size_t buffer_size;         /* bytes per write buffer: 0 = default, else 64 .. 1 GiB */
    unsigned buffers;           /* write buffers: 0 = default, else 1 .. 64 */
    journal_fsync_t fsync;      /* policy, see the header comment */
    uint64_t fsync_interval_ns; /* INTERVAL: 0 = default (100 ms) */
    uint32_t lock_wait_ms;      /* wait for the file lock: 0 = default (2 s), or NO_WAIT */
    bool force_pwrite;          /* tests, benchmarks: pwrite() even where io_uring works */
    uint32_t crc_block;         /* checksum block: 0 = default (64 KiB), else a power of two in
                                   4 KiB .. 64 MiB; an existing sidecar's own size wins */
} journal_cfg_t;

#define JOURNAL_DEFAULT_CRC_BLOCK (64u << 10)
#define JOURNAL_MIN_CRC_BLOCK     4096u
#define JOURNAL_MAX_CRC_BLOCK     (64u << 20)
#define JOURNAL_CRC_HEADER        16u
#define JOURNAL_CRC_ENTRY         8u
#define JOURNAL_CRC_OP_ENTRIES    64u /* entries one sidecar write carries at most */
#define JOURNAL_NOTE_MAX          512

#define JOURNAL_DEFAULT_LOCK_WAIT_MS 2000u
#define JOURNAL_LOCK_NO_WAIT         UINT32_MAX

/* Counters, copied out by journal_stats(). Bytes are journal file bytes (prefixes included). */
typedef struct journal_stats {
    uint64_t messages;           /* in the journal: recovered + appended */
    uint64_t bytes;              /* journal size: recovered + appended (submitted or not) */
    uint64_t recovered_messages; /* found by the scan at open */
    uint64_t recovered_bytes;
    uint64_t torn_bytes;     /* truncated away at open (0: the file ended on a record) */
    uint64_t torn_offset;    /* where the torn tail began (the journal's size after open) */
    uint64_t lost_messages;  /* sum of the counts of the gaps recorded */
    uint64_t gaps;           /* gap lines recorded (kept at open + noted since) */
    uint64_t gaps_dropped;   /* sidecar lines dropped at open (torn, or after torn-off messages) */
    uint64_t writes;         /* write requests (io_uring) or pwrite calls, resubmissions included */
    uint64_t short_writes;   /* writes that wrote less than asked (the rest was resubmitted) */
    uint64_t fsyncs;         /* fsyncs completed after open (the one at open not counted) */
    uint64_t write_waits;    /* appends that had to wait for a buffer or a request slot */
    uint64_t errors;         /* failed writes or fsyncs (the first one is sticky) */
    uint64_t rejected;       /* journal_append calls refused (length does not match the type) */
    uint64_t synced_bytes;   /* journal bytes known to be on disk (fsync completed) */
    uint64_t inflight_bytes; /* bytes in write requests not yet completed */
    uint64_t inflight_high;  /* the most ever in flight at once */
    uint64_t fsync_max_ns;   /* longest fsync, see the header comment */
    uint64_t fsync_total_ns; /* all fsyncs together (mean = total / fsyncs) */
    uint64_t crc_blocks_checked;  /* sidecar entries whose CRC matched at open */
    uint64_t crc_unchecked_bytes; /* journal bytes at open that no entry covered */
    uint64_t crc_cut_offset;      /* a bad block cut the journal here at open (UINT64_MAX: none) */
    uint64_t crc_cut_bytes;       /* bytes cut off by that */
    uint64_t crc_writes;          /* sidecar write requests (not counted in writes) */
    bool crc_sidecar_missing;     /* the journal had bytes but no (valid) sidecar at open */
    bool uring;                   /* true: io_uring; false: pwrite fallback */
    int error;                    /* the sticky error (-errno), 0 if none */
} journal_stats_t;

/* Internal: one write buffer. data[0] goes to file offset off; [0, sub) has been handed to a
 * write, [sub, len) is filled but not yet submitted; ops writes are in flight on it. */
typedef struct journal_buf {
    uint8_t *data;
    uint64_t off;
    uint32_t len, sub, ops;
} journal_buf_t;

/* Internal: one write request (user_data = its index). */
typedef struct journal_op {
    uint32_t buf, start, len, done; /* buffer, its bytes [start, start + len), done so far */
    uint64_t msgs_before;           /* messages in the journal before its first byte */
    uint64_t crc_off;               /* a sidecar write: its file offset */
    uint8_t kind;                   /* 0 free, 1 write, 2 sidecar write */
    uint8_t retries;                /* -EINTR / -EAGAIN resubmissions */
} journal_op_t;

typedef struct journal {
    bool is_open;
    int fd, gfd; /* the journal, the sidecar (-1 until the first gap is noted) */
    bool uring, registered;
    journal_fsync_t policy;
    uint64_t interval_ns;
    uint64_t last_fsync_ns; /* caller's clock at the last fsync started; UINT64_MAX: none yet */
    uint64_t fsync_issued;  /* journal size covered by the last fsync submitted */
    uint64_t fsync_covers, fsync_t0; /* the fsync in flight: what it covers, when it started */
    uint64_t submitted_end;          /* journal size handed to writes so far */
    bool fsync_inflight;
    uint8_t fsync_retries;
    char *path, *gpath; /* one block of path_cap bytes */
    size_t path_cap;
    uint8_t *slab; /* the buffers, one after the other (slab_size >= nbufs * buf_size) */
    size_t slab_size;
    journal_buf_t *bufs;
    uint32_t nbufs, buf_size, cur;
    journal_op_t *ops;
    uint32_t *free_ops;
    uint32_t nops, nfree;
    uint64_t end;            /* journal size (the offset of the next byte appended) */
    uint64_t gsize;          /* sidecar size */
    uint64_t err_offset;     /* where the first failed write began (UINT64_MAX: none) */
    uint64_t err_messages;   /* messages before err_offset: what the file holds after close */
    uint64_t submitted_msgs; /* messages before submitted_end */
    /* checksums: the sidecar, its block size, the block being summed (crc_reg: ISA-L's running
     * register over its first crc_fill bytes), per-op entry space (JOURNAL_CRC_OP_ENTRIES each),
     * the sidecar write being filled (crc_op, UINT32_MAX: none) and how many entries it holds */
    int cfd;
    char *cpath;
    uint32_t crc_block, crc_reg, crc_fill, crc_op, crc_n;
    uint64_t crc_blk;
    uint64_t crc_partial_at; /* journal offset the last partial-block entry covers to */
    uint8_t *crc_slab;
    size_t crc_slab_size;
    uint8_t fsync_pending;       /* fsync completions still due (the journal's and the sidecar's) */
    bool crc_dirty;              /* sidecar entries written since its last fsync started */
    int fsync_res;               /* the first error among them */
    char note[JOURNAL_NOTE_MAX]; /* what journal_note() returns */
    char mode[80];               /* what journal_mode() returns */
    struct io_uring ring;        /* writes, one after the other (IOSQE_IO_DRAIN) */
    struct io_uring sring;       /* fsyncs, so that writes go on while one runs */
    /* Counters: written by the owner with MEM_ST, read by journal_stats() from any thread. */
    _Atomic uint64_t messages, bytes, recovered_messages, recovered_bytes, torn_bytes, torn_offset,
        lost_messages, gaps, gaps_dropped, writes, short_writes, fsyncs, write_waits, errors,
        rejected, synced_bytes, inflight_bytes, inflight_high, fsync_max_ns, fsync_total_ns,
        crc_blocks_checked, crc_unchecked_bytes, crc_cut_offset, crc_cut_bytes, crc_writes;
    bool crc_missing;
    _Atomic int err;
} journal_t;

/* cfg with the defaults (path NULL, policy INTERVAL as in config/tickcore.ini). */
void journal_cfg_default(journal_cfg_t *cfg);
/* "batch", "interval", "off". */
const char *journal_fsync_name(journal_fsync_t f);
/* The inverse of journal_fsync_name: 0, or -EINVAL for any other string. */
int journal_fsync_parse(const char *s, journal_fsync_t *out);

/* Open or create cfg->path, scan it and its sidecar (see the header comment), allocate and set
 * up everything. Returns 0, or -errno with a message naming the file (and the byte offset or
 * line and what was expected) in err[0..errlen) (err may be NULL): -EINVAL a bad cfg or not a
 * regular file, -EBADMSG a bad record or sidecar line, -EWOULDBLOCK the journal is still locked
 * after lock_wait_ms (open elsewhere), -ENOMEM, or an errno of open/read/ftruncate/fsync (-ENOENT:
 * no such directory). On failure nothing stays allocated or open (journal_close is then a harmless
 * no-op), and a journal refused for a bad record, or a sidecar refused, is not modified. On
 * success err holds "". Call before mem_seal(); the owner thread then uses the journal. */
int journal_open(journal_t *j, const journal_cfg_t *cfg, char *err, size_t errlen);

/* Messages in the journal (recovered + appended; after a failed write, only those before it, as
 * journal_written). Owner thread. */
uint64_t journal_messages(const journal_t *j);
/* The feed sequence number of the next message: 1 + messages + lost messages. Owner thread. */
uint64_t journal_next_seq(const journal_t *j);

/* Append one message body (type byte first, len bytes, len == itch_msg_len[msg[0]]): copied
 * into the current buffer, so msg may be reused at once. A full buffer is submitted as one
 * write and the next buffer taken; waits (counted in write_waits) only when that buffer is
 * still in flight. Returns 0; -EINVAL (counted in rejected; nothing appended) when len does not
 * match the type, so the journal never holds a record that would refuse the next open; or the
 * sticky error of an earlier failed write or fsync (every later call fails with it). Allocates
 * nothing. */
int journal_append(journal_t *j, const uint8_t *msg, uint16_t len);

/* End of an ingest batch, per policy (see the header comment); now_ns is the caller's monotonic
 * clock, used only for INTERVAL. Also reaps finished writes. Returns 0 or the sticky error (for
 * BATCH: 0 means the batch is on disk). Allocates nothing. */
int journal_commit(journal_t *j, uint64_t now_ns);

/* Record that feed sequence numbers [from, from + count) were lost: one sidecar line, written
 * and fsynced before returning (a rare path: plain write()). from must be journal_next_seq()
 * (the gap starts where the journal stops) and count >= 1, else -EINVAL; -EOVERFLOW if the
 * sequence would pass 2^64; or an errno of open/write/fsync (the sidecar is then cut back to
 * its last whole line, and nothing is counted). Allocates nothing. */
int journal_note_gap(journal_t *j, uint64_t from, uint64_t count);

/* Submit everything, fsync (in every policy) and wait for both (shutdown, SIGTERM). Returns 0
 * or the sticky error. */
int journal_sync(journal_t *j);

/* The sticky error (-errno), 0 if none. */
int journal_error(const journal_t *j);

/* Messages whose writes have completed (the page cache has them: a crash of the process loses
 * none), at most journal_messages(); after a failed write, the messages before it, which is what
 * the file holds once journal_close has cut it back. With wait, first waits for the writes in
 * flight (a rare control path: a login names 1 + this + lost as the next sequence number). Owner
 * thread. */
uint64_t journal_written(journal_t *j, bool wait);

/* The feed sequence number a server may acknowledge as the next one it expects (Login Accepted,
 * /healthz): 1 + journal_written(j, wait) + the lost messages. Never journal_next_seq(), which
 * after an error still counts the writes in flight (and, after a failed gap record, messages not
 * yet handed to a write) that may never reach the file. With wait (a login, a journal error:
 * rare), what is appended is first handed to a write (unless an error stopped the journal) and
 * every write in flight waited for, so the figure is final for what was taken so far. Owner
 * thread. */
uint64_t journal_ack_seq(journal_t *j, bool wait);

/* Fault injection: base/fault (sites FAULT_JOURNAL_WRITE, _FSYNC, _READ, FAULT_CRC_WRITE,
 * FAULT_GAPS_WRITE) is the test seam of every read, write and fsync here. */

/* What the open had to say without failing, "" if nothing: a bad block cut (file, byte offset,
 * expected and found CRC), a journal without a checksum sidecar, a sidecar not ours. Meant for
 * the log; valid until journal_close. */
const char *journal_note(const journal_t *j);

/* "io_uring, registered buffers", "io_uring", "pwrite (requested)" or "pwrite (io_uring
 * unavailable: <reason>)". */
const char *journal_mode(const journal_t *j);

/* Counters; any thread (exact once the owner is idle). */
void journal_stats(const journal_t *j, journal_stats_t *out);

/* journal_sync, then close and free everything. Returns what journal_sync returned (0 for a
 * journal that is not open). A zeroed, never opened or failed journal is accepted. */
int journal_close(journal_t *j);

#endif
