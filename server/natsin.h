/*
 * natsin: a NATS JetStream shard as an input of `tickcore serve` (cluster.nats set), beside the
 * live feeds. It consumes subject <cluster.subject>.<cluster.shard> of stream cluster.stream
 * through the durable pull consumer <stream>_<shard> (explicit acknowledgement), in batches of
 * cluster.fetch_batch packets (net/pack), checks each packet whole before using it, and hands
 * the messages to the server's deliver callback in order with their shard-local index as the
 * sequence number, the number the journal counts.
 *
 * Resume: the server starts with next_seq = what its journal holds + 1 (1 without a journal).
 * Messages below it are skipped (counted), so a redelivered or resent packet is never applied
 * twice. If the durable's acknowledgement floor is past next_seq (the journal is off or was
 * lost: the shard starts from nothing but the durable remembers an earlier run), the first
 * packet starts after next_seq: the durable is deleted and made again from the stream's start,
 * and the shard rebuilds from the stream (logged). A gap that remains after that (the stream
 * dropped messages: retention limits) is an error that stops ingest with the expected and found
 * index. So: with a journal, journal + the stream's tail; without one, the stream from its
 * start; in both cases no gap and no double count.
 *
 * Lost deliveries: a packet may be missing while later ones arrive (a nats-server killed
 * mid-delivery loses them; libnats 3.4.1's batched fetch, which overflowed its array, and its
 * pull subscription, which dropped answers to an expired fetch request, are no longer used:
 * net/nats publishes its own pull requests, one per batch). The server delivers the missing one
 * again once its acknowledgement wait (NATSIN_ACK_WAIT_MS) has passed, since it was never
 * acknowledged; the packets ahead of it are acknowledged up to the gap and the rest negatively
 * acknowledged with a short delay (NATSIN_NAK_DELAY_MS), so they come again after it (counted:
 * out_of_order). Only a packet still ahead NATSIN_AHEAD_MS after the first one makes the durable
 * again from the stream sequence after the last packet applied, and one still ahead after that is
 * an error if the stream does not hold the missing index (the stream lost messages). The durable
 * used to be made again at the first packet ahead: deleting a consumer under the client's live pull
 * subscription was followed, under load, by heap corruption inside libnats 3.4.1 (segfaults at
 * natsSub_nextMsg+781, in natsMsg_create/mi_malloc, natsParser_Parse, or a fetched message's
 * reply pointer; 3 of 10 cluster_test restart runs at 3 CPU hogs).
 *
 * Acknowledgement: natsin_poll leaves the batch unacknowledged; the server acknowledges it
 * (natsin_ack) once the batch is in the pipeline and, with a journal, written to it. A crash in
 * between redelivers the batch, and the skip above drops what the journal already holds.
 *
 * Memory: the natsin_t is the caller's; net/nats holds the connection and the batch views (tag
 * NET, at init); nothing of ours is allocated per batch. Threads: the serve thread only; the
 * counters are single-writer atomics read by the HTTP thread.
 */
#ifndef TICKCORE_SERVER_NATSIN_H
#define TICKCORE_SERVER_NATSIN_H

#include "config/config.h"
#include "net/nats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Packets fetched and not acknowledged come again after this (a shard stalled that long). */
#define NATSIN_ACK_WAIT_MS 3000
/* A packet ahead of the next index (a lost delivery): the packets from it on come again after
 * this; the durable is made again only when one is still ahead NATSIN_AHEAD_MS later. */
#define NATSIN_NAK_DELAY_MS 100
#define NATSIN_AHEAD_MS     (NATSIN_ACK_WAIT_MS + 3000)

typedef void natsin_deliver_fn(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len);

typedef struct natsin_counters {
    _Atomic uint64_t packets;      /* packets applied (wholly or partly) */
    _Atomic uint64_t messages;     /* messages delivered */
    _Atomic uint64_t skipped;      /* messages below next_seq (already applied or journalled) */
    _Atomic uint64_t redelivered;  /* packets delivered more than once by the server */
    _Atomic uint64_t rebuilds;     /* the durable made again from the stream's start */
    _Atomic uint64_t out_of_order; /* packets ahead of a lost one (the durable made again) */
    _Atomic uint64_t acks;         /* packets acknowledged */
    _Atomic uint64_t fetches;      /* fetch calls that returned packets */
    _Atomic uint64_t next_seq;     /* the next shard-local index expected */
    _Atomic uint64_t last_index;   /* file index of the last message delivered */
} natsin_counters_t;

typedef struct natsin {
    nats_t *n;
    nats_consumer_t *cons;
    char stream[NATS_NAME_MAX], durable[NATS_NAME_MAX], subject[NATS_NAME_MAX];
    uint32_t batch;
    int pending; /* packets of the current batch not yet acknowledged */
    bool started;
    uint64_t fetch_errors, errors_in_row;
    char subjects[NATS_NAME_MAX + 2];
    nats_stream_cfg_t scfg; /* the stream as the publisher makes it */
    uint64_t last_sseq;     /* stream sequence of the last packet applied */
    bool restarted;         /* the durable was just made again after a lost delivery */
    uint64_t ahead_since;   /* CLOCK_MONOTONIC ns of the first packet ahead (0: in order) */
    natsin_deliver_fn *deliver;
    void *ctx;
    natsin_counters_t c;
} natsin_t;

/* Connect to cfg->cluster_nats and open (or resume) the durable. 0, or -errno with a message in
 * err naming the URL, stream, consumer or subject. */
int natsin_init(natsin_t *ni, const config_t *cfg, uint64_t next_seq, natsin_deliver_fn *deliver,
                void *ctx, char *err, size_t errlen);
/* Fetch one batch (waiting at most timeout_ms), check it and deliver its new messages. Returns
 * the messages delivered (0: nothing came), or -errno with a message in err: -EBADMSG for a
 * packet that fails its checks, -ERANGE for a gap the stream cannot fill, -EPIPE for a
 * connection lost for good. A fetch error while the client reconnects is 0 (tried again). */
int natsin_poll(natsin_t *ni, int timeout_ms, char *err, size_t errlen);
/* Acknowledge the batch natsin_poll delivered. 0 or -errno (the batch will come again). */
int natsin_ack(natsin_t *ni);
/* The client's heap (net/nats), for the report and /metrics. */
void natsin_client_heap(natsin_t *ni, uint64_t *commit, uint64_t *peak);
void natsin_fini(natsin_t *ni);

#endif
