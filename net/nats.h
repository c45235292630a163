/*
 * nats: a small JetStream transport over the NATS C client (libnats 3.4, Debian libnats-dev),
 * the only module that includes <nats/nats.h>. One nats_t is one connection (a URL, reconnect
 * forever or a bounded number of times) with its JetStream context; on it a caller ensures a
 * stream, publishes asynchronously with a bounded number of acknowledgements in flight (the
 * publishing thread blocks while the bound is reached, so a slow server or consumer keeps the
 * publisher's memory bounded), waits for every acknowledgement, and opens durable pull consumers
 * that fetch a batch (one pull request per batch, with a timeout) and acknowledge each message
 * explicitly.
 *
 * Ordering across a server restart (ordered mode, opts.ordered): a killed server loses the
 * publishes it had not stored, while the client keeps what was still in its write buffer and
 * sends it after the reconnect, ahead of anything sent again: the stream would hold the messages
 * out of their order. So in ordered mode this module numbers the publishes (k = 1, 2, ...), sends
 * each with the de-duplication id "<id_prefix>.<k>" and the expectation that the stream's last
 * id is "<id_prefix>.<k-1>" (Nats-Expected-Last-Msg-Id): the server stores a message only right
 * after its predecessor and drops one it already has. Every unacknowledged message is kept in a
 * ring of max_pending slots of max_msg_bytes (ours, allocated at create); after a reconnect, a
 * rejected expectation or a stall with the connection up, everything from the oldest
 * unacknowledged message is published again in order. The stream then holds each message once,
 * in publish order, whatever the server's restarts. The stream's duplicate window must cover the
 * outage (the server's default is 2 minutes), and one stream has one ordered publisher.
 *
 * Memory: what this module holds (the nats_t and nats_consumer_t objects, their strings, error
 * texts, the fetched-message views) is allocated at create with mem_alloc (tag NET) and reused;
 * nothing of ours is allocated per publish or per fetch. The client mallocs on its own (each
 * message, each acknowledgement, each fetch list; glibc malloc): that is measured, not
 * prevented, by nats_client_heap() (the allocator's committed bytes) and in tests by the process's
 * malloc counter (tests/support/malloc_count.h), and reported beside our own counters. In steady
 * state it is bounded by max_pending messages in flight plus one fetched batch.
 *
 * Errors: functions return 0 (or a count) or -errno; the text of the last error, naming the
 * URL and the stream, consumer or subject, is in nats_last_error(). Threads: one nats_t is used
 * by one thread at a time (the publisher, or the consumer loop); its acknowledgement handler
 * runs on the client's own thread and touches only atomics and the error text (under a mutex).
 */
#ifndef TICKCORE_NET_NATS_H
#define TICKCORE_NET_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NATS_URL_MAX      256
#define NATS_NAME_MAX     64 /* stream, consumer and subject names */
#define NATS_ERROR_MAX    512
#define NATS_MAX_SUBJECTS 8
#define NATS_MAX_BATCH    4096
/* a pull request is taken as over this long past its expiry: nats-server 2.9 drops an expired
 * request without a status when a message comes for it (consumer.go nextWaiting) */
#define NATS_PULL_GRACE_MS 5

typedef struct nats nats_t;
typedef struct nats_consumer nats_consumer_t;

/* A publish the server refused or never acknowledged (called on the client's thread): the
 * subject, the payload (valid during the call only) and the error's text. */
typedef void (*nats_pub_error_fn)(void *ctx, const char *subject, const void *data, size_t len,
                                  const char *text);

typedef struct nats_opts {
    const char *url;       /* nats://host:port (several, comma separated, are allowed) */
    const char *name;      /* connection name shown by the server (NULL: "tickcore") */
    int timeout_ms;        /* connect and JetStream API timeout (0: 5000) */
    int reconnect_wait_ms; /* between reconnect attempts (0: 200) */
    int max_reconnect;     /* attempts after a loss, -1 = forever (0: -1) */
    int max_pending;       /* asynchronous publishes in flight at most (0: 256) */
    int resend_after_ms;   /* a publish stalled this long with the connection up: publish the
                              pending ones again (lost acknowledgements) (0: 2000) */
    bool ordered;          /* exactly once and in order across restarts (see above) */
    size_t max_msg_bytes;  /* ordered: the largest message (the ring's slot size) */
    const char *id_prefix; /* ordered: de-duplication ids "<id_prefix>.<k>" (NULL: "tc") */
    nats_pub_error_fn on_error;
    void *error_ctx;
} nats_opts_t;

typedef enum nats_retention {
    NATS_RETAIN_LIMITS = 0, /* kept until a limit (bytes, messages, age): the replayable log */
    NATS_RETAIN_INTEREST,
    NATS_RETAIN_WORKQUEUE,
} nats_retention_t;

typedef struct nats_stream_cfg {
    const char *name;
    const char *subjects[NATS_MAX_SUBJECTS]; /* e.g. "itch.>"; NULL-terminated if fewer */
    nats_retention_t retention;
    bool memory;                 /* memory storage (default: file storage) */
    int64_t max_bytes;           /* 0: no limit */
    int64_t max_msgs;            /* 0: no limit */
    int64_t duplicate_window_ms; /* de-duplication of msg ids (0: the server's 2 min) */
    int replicas;                /* 0: 1 */
} nats_stream_cfg_t;

typedef struct nats_stream_info {
    uint64_t msgs, bytes, first_seq, last_seq;
    bool created; /* nats_stream_ensure made it (else it existed) */
} nats_stream_info_t;

/* Counters (publisher: this connection; read by the owner thread, or any thread: atomics). */
typedef struct nats_stats {
    uint64_t published;       /* nats_publish calls that handed a message to the client */
    uint64_t acked;           /* positive acknowledgements (duplicates included) */
    uint64_t duplicates;      /* acknowledgements flagged duplicate (resent after a reconnect) */
    uint64_t failed;          /* negative acknowledgements (errors reported through on_error) */
    uint64_t resent;          /* pending messages published again after a reconnect or stall */
    uint64_t stalls;          /* publishes that waited for the in-flight bound */
    uint64_t reconnects;      /* reconnections of this connection */
    uint64_t last_seq;        /* highest stream sequence acknowledged */
    uint64_t rejected;        /* ordered: stores refused for a wrong predecessor (then resent) */
    uint64_t fetched;         /* consumers: messages fetched */
    uint64_t fetches;         /* consumers: fetch calls that returned messages */
    uint64_t consumer_acks;   /* consumers: messages acknowledged */
    uint64_t pull_requests;   /* consumers: pull requests sent (round trips) */
    uint64_t pulls_abandoned; /* consumers: requests given up unanswered (reconnection, expiry) */
} nats_stats_t;

/* The client's own heap, measured (not ours: see the header). libmimalloc overrides malloc (and
 * glibc's __libc_malloc) for the whole process, so the client's mallocs land in mimalloc beside
 * mem/'s blocks: the figure is mimalloc's committed bytes (mi_process_info), to compare before
 * and after the client's work; the number of its malloc calls is counted by the tests
 * (tests/support/malloc_count). */
typedef struct nats_heap {
    uint64_t commit_bytes;      /* mimalloc's committed bytes now (whole process) */
    uint64_t peak_commit_bytes; /* its peak */
} nats_heap_t;

/* A fetched message, valid until the next nats_fetch or nats_consumer_destroy. */
typedef struct nats_msg {
    const uint8_t *data;
    size_t len;
    const char *subject;
    uint64_t stream_seq; /* the stream's sequence number of this message */
    uint64_t delivered;  /* delivery count (> 1: redelivered) */
    uint64_t pending;    /* messages of the consumer still after this one */
} nats_msg_t;

/* Connect. Returns 0 with *out set, or -errno (-ECONNREFUSED, -ETIMEDOUT, -EINVAL for a bad
 * URL, -ENOMEM) with the reason naming the URL in err (when err is not NULL). Any thread. */
int nats_create(nats_t **out, const nats_opts_t *o, char *err, size_t errlen);
/* Flush, close and free everything (pending acknowledgements are dropped). NULL is a no-op. */
void nats_destroy(nats_t *n);

/* The stream named s->name: created with s if absent; if present its subjects must include
 * s's (else -EEXIST naming both). *info (may be NULL) receives its state. 0 or -errno. */
int nats_stream_ensure(nats_t *n, const nats_stream_cfg_t *s, nats_stream_info_t *info);
/* The state of a stream: 0, -ENOENT, or -errno. */
int nats_stream_info(nats_t *n, const char *stream, nats_stream_info_t *info);
/* Copy message seq of stream into buf (at most cap bytes; *len receives its whole length, *at
 * its sequence). With subject (not NULL): the last message on that subject at or before seq,
 * looked for backwards over at most 4096 messages. 0, -ENOENT (none) or -errno. Start-up and
 * control paths: one request per message looked at, and the client allocates. */
int nats_stream_read(nats_t *n, const char *stream, uint64_t seq, const char *subject, void *buf,
                     size_t cap, size_t *len, uint64_t *at);
/* Delete a stream (tests, a fresh day). 0, -ENOENT or -errno. */
int nats_stream_delete(nats_t *n, const char *stream);

/* Publish len bytes on subject asynchronously (the client copies them; ordered mode copies them
 * into its ring too). Blocks while max_pending publishes are unacknowledged, and while the
 * connection is down (reconnecting). msg_id (may be NULL; ignored in ordered mode, which makes
 * its own) is the de-duplication id. Returns 0, or -errno: -EPIPE when the connection is
 * closed for good, -E2BIG when len passes the server's max payload or max_msg_bytes. The
 * acknowledgement arrives later: failures go to on_error and the failed counter. */
int nats_publish(nats_t *n, const char *subject, const void *data, size_t len, const char *msg_id);
/* The shutdown path: from now on every wait of nats_publish and nats_publish_flush on this
 * connection (for the connection to come back, for the in-flight bound, for acknowledgements)
 * ends at most timeout_ms from now, with -ETIMEDOUT and the reason (what was not acknowledged)
 * in nats_last_error. Without it a publisher whose server is gone for good waits for the
 * reconnect forever, and a process told to stop never stops. Any thread, and async-signal-safe
 * (a clock read and an atomic store); a later call only brings the deadline nearer. */
void nats_give_up_after(nats_t *n, int timeout_ms);
/* True once the deadline of nats_give_up_after has passed. */
bool nats_gave_up(const nats_t *n);

/* Wait until every publish is acknowledged (resending after a reconnect as nats_publish does),
 * at most timeout_ms. 0 when all are acknowledged and none failed, -EIO if some failed (the
 * first failure's text in nats_last_error), -ETIMEDOUT. */
int nats_publish_flush(nats_t *n, int timeout_ms);

/* A durable pull consumer named durable on stream, for the messages on filter (a subject, may
 * use wildcards), explicit acknowledgement, at most max_ack_pending unacknowledged (0: 1024),
 * batches of at most max_batch (<= NATS_MAX_BATCH). An existing durable resumes at its
 * acknowledgement floor: what was fetched and not acknowledged is delivered again after
 * ack_wait_ms (0: 30000). 0 or -errno (-ENOENT: no such stream). */
int nats_consumer_create(nats_consumer_t **out, nats_t *n, const char *stream, const char *durable,
                         const char *filter, int max_batch, int max_ack_pending, int ack_wait_ms);
/* The same durable made again from its acknowledgement floor (the highest stream sequence
 * below which everything is acknowledged; DeliverAll when there is none or no such durable):
 * what an earlier run fetched and did not acknowledge comes again at once and in stream order,
 * instead of after ack_wait and behind newer messages. *floor (may be NULL) receives the floor.
 * For a consumer restarting after a crash. 0 or -errno. */
int nats_consumer_resume(nats_consumer_t **out, nats_t *n, const char *stream, const char *durable,
                         const char *filter, int max_batch, int max_ack_pending, int ack_wait_ms,
                         uint64_t *floor);
/* The durable deleted and made again, the same settings, delivering from stream sequence
 * start_seq (0: the stream's start); the current batch is released. For a consumer that saw a
 * message go missing (fetched by an expired request) or must start over. Allocates nothing of
 * ours. 0 or -errno (then fetching fails until a restart succeeds). */
int nats_consumer_restart(nats_consumer_t *c, uint64_t start_seq);
/* Unsubscribe (the durable stays on the server) and free. NULL is a no-op. */
void nats_consumer_destroy(nats_consumer_t *c);
/* Delete the durable on the server (a fresh start). 0, -ENOENT or -errno. */
int nats_consumer_delete(nats_t *n, const char *stream, const char *durable);

/* Fetch up to max messages (<= max_batch; 0: max_batch), waiting at most timeout_ms for the
 * first: one pull request of max (no_wait, expiring after timeout_ms) answered at once with what
 * the durable has, or with the first message that comes (not the client's batched fetch, which
 * in libnats 3.4.1 can overflow its array: see nats.c). Returns the count (0: none in time), or
 * -errno (-ENOENT: no such durable). The previous batch is released first: acknowledge it before
 * (nats_ack) or it is delivered again after ack_wait. */
int nats_fetch(nats_consumer_t *c, int max, int timeout_ms);
/* Message i (< the count nats_fetch returned) of the current batch. */
const nats_msg_t *nats_msg(const nats_consumer_t *c, int i);
/* Acknowledge messages [0, count) of the current batch (explicit, one by one: a publish of
 * "+ACK" on each one's reply subject; count <= the batch). 0 or -errno (the connection is down:
 * they will be delivered again). */
int nats_ack(nats_consumer_t *c, int count);

/* Negative acknowledgement of messages [from, the batch's count): delivered again after
 * delay_ms (0: at once). 0 or -errno. */
int nats_nak(nats_consumer_t *c, int from, int delay_ms);

const char *nats_last_error(const nats_t *n);
const char *nats_consumer_error(const nats_consumer_t *c);
const char *nats_url(const nats_t *n);
void nats_get_stats(const nats_t *n, nats_stats_t *out);
/* Sample the process's heap (see nats_heap_t). Any thread. */
void nats_client_heap(nats_t *n, nats_heap_t *out);
/* True when the client is connected now. */
bool nats_connected(const nats_t *n);

#endif
