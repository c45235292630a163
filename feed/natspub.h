/*
 * natspub: an ITCH 5.0 BinaryFILE published into a NATS JetStream stream, the publisher behind
 * `tickcore feed FILE --to nats://HOST:PORT`. Message N of the file has file index N.
 *
 * Shards: a message goes to subject <cluster.subject>.<shard> with shard = stock locate %
 * cluster.shards; System Event ('S'), Stock Directory ('R') and every message with locate 0
 * (market-wide: MWCB 'V'/'W') go to every shard's subject, so each shard sees the whole day's
 * frame and directory, and each shard's subject holds its messages in file order.
 *
 * Packing: the messages of one subject are packed (net/pack: header with count, first file
 * index, first shard-local index, record lengths and an XXH3 checksum) into one NATS message of
 * up to cluster.packet_bytes, published when full, when its first message is older than
 * cluster.flush_interval, or at the end of the file. Publishing is ordered (net/nats ordered
 * mode: de-duplication ids and the expected-last-id chain), so a nats-server restart leaves every
 * packet in the stream once and in order; at most cluster.max_pending packets are unacknowledged
 * (the publisher blocks beyond, so a slow server or shard keeps its memory bounded).
 *
 * The stream (cluster.stream, subjects <prefix>.>, file storage, limits retention) is created if
 * absent. Because of the ordered chain a run starts on an empty stream: a stream that already
 * holds messages is an error unless `fresh` deletes it first.
 *
 * Memory: the stream reader, the symbol table, N packet buffers and the in-flight ring are
 * allocated at start-up (tags INGEST, NET), then memory is sealed; publishing allocates nothing
 * of ours (the result counts allocations after start-up). The NATS client's own allocations are
 * reported apart (the allocator's committed bytes at start and at peak). Threads: the caller's;
 * *stop may be set from a signal handler.
 */
#ifndef TICKCORE_FEED_NATSPUB_H
#define TICKCORE_FEED_NATSPUB_H

#include "config/config.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct natspub_cfg {
    config_t cfg; /* cluster.*, input.* */
    const char *file;
    const char *url; /* nats://host:port */
    uint64_t count;  /* at most this many file messages, 0 = all */
    double rate;     /* file messages per second, 0 = as fast as the server takes them */
    bool fresh;      /* delete the stream first */
    bool quiet;      /* no status lines */
    volatile sig_atomic_t *stop;
} natspub_cfg_t;

typedef struct natspub_result {
    int status;          /* 0 ok, 1 runtime error */
    char error[600];     /* why not 0 */
    uint64_t messages;   /* file messages read and published */
    uint64_t bytes;      /* their ITCH bytes */
    uint64_t copies;     /* messages placed on subjects (broadcast ones once per shard) */
    uint64_t broadcast;  /* file messages sent to every shard */
    uint64_t packets;    /* NATS messages published */
    uint64_t wire_bytes; /* their bytes */
    uint32_t shards;
    double seconds, rate; /* first message read to the last acknowledgement; messages / s */
    /* net/nats counters */
    uint64_t acked, duplicates, resent, rejected, stalls, reconnects;
    uint64_t stream_msgs, stream_bytes;               /* the stream's state at the end */
    uint64_t allocs;                                  /* our allocations after start-up (0) */
    uint64_t client_commit_start, client_commit_peak; /* allocator bytes (the client's share) */
    bool interrupted;
} natspub_result_t;

/* Publish c->file. Fills *r (zeroed first), returns r->status. Allocates at start-up and frees
 * everything before it returns; seals memory for the run when it was not sealed. */
int natspub_run(const natspub_cfg_t *c, natspub_result_t *r);

/* The shard of a message (its type byte first) among n: locate % n, or -1 for every shard. */
int natspub_shard(const uint8_t *msg, uint32_t n);

#endif
