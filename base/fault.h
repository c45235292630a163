/*
 * fault: the test seam over the server's I/O, after SQLite's (test_malloc's "fail at the Nth
 * call"). Every I/O call that durability or availability depends on goes through it: the
 * journal's data writes and fsyncs (pwrite or io_uring completions), its checksum sidecar's writes
 * and fsyncs, the reads of the scan at open, the .gaps file, the exports (fdio_write_all), the
 * SoupBinTCP accepts (io_uring completions), the SoupBinTCP sessions' receives and sends (io_uring
 * requests) and the connections libmicrohttpd accepts. Armed, the seam counts the calls of the
 * chosen sites and makes the nth one fail with EIO or ENOSPC (and, if persistent, every later one
 * of those sites), return EINTR (nothing done: the caller must retry transparently), ECONNRESET
 * (the peer reset the connection) or do only part of what was asked (a short write: the caller
 * must complete it). At an accept every kind means the accepted connection fails at once (closed),
 * as accept's real errors (ECONNABORTED, EMFILE) do. A socket's receive or send is decided when
 * it is submitted, so no byte the kernel moved is lost or made up: an error kind completes the
 * request with that error and moves nothing; a short receive asks for at most FAULT_SHORT_RECV
 * bytes (the packet it reads arrives split), a short send sends the first half. Off, each call
 * costs one load and one branch that is never taken (fault_check, inline). The state is
 * process-wide: one fault at a time, armed by a test (fault_arm) or by the environment
 * (TICKCORE_FAULT, read by fault_from_env at start-up); counters are atomic, so any thread may pass
 * through the seam.
 *
 * TICKCORE_FAULT syntax: "count" (count the calls per site, inject nothing), or
 * "KIND@N[/SITE[+SITE...]][!]" with KIND eio|enospc|eintr|short|econnreset, N >= 1 the call
 * counted over the given sites (default: all), "!" = persistent. Sites: journal_write,
 * journal_fsync, journal_read, crc_write, gaps_write, export_write, tcp_accept, http_accept,
 * tcp_recv, tcp_send.
 */
#ifndef TICKCORE_BASE_FAULT_H
#define TICKCORE_BASE_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum fault_site {
    FAULT_JOURNAL_WRITE, /* journal data: pwrite, io_uring write completions */
    FAULT_JOURNAL_FSYNC, /* journal and sidecar: fdatasync, io_uring fsync completions */
    FAULT_JOURNAL_READ,  /* the scan at open: preads of the journal, its sidecar, .gaps */
    FAULT_CRC_WRITE,     /* the checksum sidecar's writes */
    FAULT_GAPS_WRITE,    /* the .gaps file: pwrite and fdatasync */
    FAULT_EXPORT_WRITE,  /* fdio_write_all: exports, CSV writers */
    FAULT_TCP_ACCEPT,    /* live: SoupBinTCP accept completions */
    FAULT_HTTP_ACCEPT,   /* http: a connection libmicrohttpd accepted */
    FAULT_TCP_RECV,      /* live: a SoupBinTCP session's receive (decided at submission) */
    FAULT_TCP_SEND,      /* live: a SoupBinTCP session's send (decided at submission) */
    FAULT_NSITES
} fault_site_t;

typedef enum fault_kind {
    FAULT_NONE,
    FAULT_EIO,
    FAULT_ENOSPC,
    FAULT_EINTR,
    FAULT_SHORT,
    FAULT_ECONNRESET,
    FAULT_NKINDS
} fault_kind_t;

/* the most bytes a short receive asks for */
#define FAULT_SHORT_RECV 5

#define FAULT_ALL_SITES ((1u << FAULT_NSITES) - 1)

/* true while armed (or counting): the only thing the fast path reads. */
extern _Atomic bool fault_armed_flag;

typedef struct fault_stats {
    uint64_t calls[FAULT_NSITES]; /* calls through the seam per site while armed */
    uint64_t injected;            /* faults injected */
    fault_kind_t kind;            /* the armed fault */
    uint64_t nth;                 /* its call number (counted over its sites) */
    int first_site;               /* where the first injected fault was, or -1 */
} fault_stats_t;

/* Arm: the nth call (from now, >= 1) counted over the sites in mask fails with kind; persistent:
 * every later call of those sites fails too (EIO/ENOSPC only). kind FAULT_NONE: count only.
 * Resets the counters. Not while I/O is running on other threads. 0 or -EINVAL. */
int fault_arm(unsigned mask, uint64_t nth, fault_kind_t kind, bool persistent);
void fault_disarm(void);

/* Arm from TICKCORE_FAULT if it is set (syntax above). 0 (also when unset), or -EINVAL with a
 * message in err. */
int fault_from_env(char *err, size_t errlen);

void fault_stats(fault_stats_t *out);
const char *fault_site_name(fault_site_t site);
const char *fault_kind_name(fault_kind_t kind);
/* "fault: calls journal_write=.. ...; injected ..." into buf (for the log at exit). */
void fault_describe(char *buf, size_t len);

/* The slow path: count the call, say which fault (FAULT_NONE mostly). */
fault_kind_t fault_hit(fault_site_t site);

/* The fault to inject into this call of site (FAULT_NONE when off: one never-taken branch). */
static inline fault_kind_t fault_check(fault_site_t site)
{
    if (__builtin_expect(atomic_load_explicit(&fault_armed_flag, memory_order_acquire), 0))
        return fault_hit(site);
    return FAULT_NONE;
}

/* -errno of an error kind (EIO, ENOSPC, EINTR, ECONNRESET); 0 for NONE and SHORT. */
int fault_errno(fault_kind_t kind);

/* The system calls through the seam: as the real ones (-1 and errno on error). A short write
 * writes the first half (at least 1 byte) of what was asked. */
ssize_t fault_pwrite(fault_site_t site, int fd, const void *buf, size_t n, off_t off);
ssize_t fault_write(fault_site_t site, int fd, const void *buf, size_t n);
ssize_t fault_pread(fault_site_t site, int fd, void *buf, size_t n, off_t off);
int fault_fdatasync(fault_site_t site, int fd);

/* An io_uring completion's result as the seam makes it: an error kind gives -errno, SHORT
 * halves a result > 1 (the rest must be written again; an fsync's 0 stays 0), NONE keeps res. */
int fault_cqe(fault_site_t site, int res);

#endif
