/*
 * publish: an ITCH 5.0 BinaryFILE (plain or gzip, read through ingest/stream) published as a live
 * feed into `tickcore serve`, the publisher behind `tickcore feed`, for demos, tests and load
 * tests. Message N of the file is sequence number N of the feed.
 *
 * Push mode (see net/soup.h and net/mold.h): `serve` listens and the publisher connects. Over
 * TCP (SoupBinTCP 3.0) it logs in (username/password from live.username/live.password, session
 * blank unless given, requested sequence 0), and the server's Login Accepted names the next
 * sequence number it expects: the publisher skips the file's messages before it and sends the
 * rest as Sequenced Data packets, many packets coalesced into one send() of up to 64 KB, a Client
 * Heartbeat after 1 s without sending, and a Logout Request at the end of the file; it then shuts
 * its write side down and waits for the server to close, so that the server has read everything.
 * With a retry time, a failed or dropped connection is reopened every 200 ms and the publisher
 * resumes where the new Login Accepted says (backwards or forwards in the file). Over UDP
 * (MoldUDP64) it sends datagrams of up to 1400 bytes, keeps the last `retain` messages in a ring
 * (preallocated bytes plus an index of offsets) and answers the server's retransmission requests,
 * which arrive on the same socket, from it. The socket is connect()ed to the target: it is bound
 * to the local address the route to the target picks and the kernel hands it datagrams from the
 * target's address and port only; answers go to the target and nowhere else, at most `rtx_rate`
 * messages a second (a token bucket holding one second; the rest is counted, and the receiver
 * asks again). After the file it sends 3 End of Session packets and
 * keeps answering requests for `linger`. Pacing (rate) is smooth: the messages due are sent in
 * 1 ms slices, never in bursts of a second.
 *
 * Memory: everything (stream buffers, symbol table, the 64 KB send buffer, the receive buffer,
 * the retransmission ring) is allocated at start-up (tag INGEST), then memory is sealed; sending
 * allocates nothing per message or per packet (the result counts allocations after start-up).
 * Sockets are plain non-blocking sockets driven by poll (io_uring is the server's business).
 * Threads: publish_run runs on the caller's thread; *stop may be set from a signal handler.
 */
#ifndef TICKCORE_FEED_PUBLISH_H
#define TICKCORE_FEED_PUBLISH_H

#include "config/config.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define PUBLISH_MAX_RETAIN       (64ull << 20)
#define PUBLISH_DEFAULT_RETAIN   (1ull << 20)
#define PUBLISH_DEFAULT_RTX_RATE 100000ull /* retransmitted messages/s */
#define PUBLISH_MAX_RTX_RATE     10000000ull

/* What to publish, where and how. publish_cfg_default gives the defaults of `tickcore feed`. */
typedef struct publish_cfg {
    config_t cfg; /* live.username/password/session, input.* */
    const char *file;
    const char *to; /* the URL, for messages */
    bool tcp;       /* else UDP */
    struct sockaddr_in addr;
    double rate;                       /* messages/s, 0 = max */
    uint64_t from;                     /* UDP: first sequence number (default 1) */
    uint64_t count;                    /* at most this many messages, 0 = all */
    uint64_t retain;                   /* UDP: messages kept for retransmission */
    uint64_t rtx_rate;                 /* UDP: retransmitted messages/s at most, 0 = no limit */
    uint64_t drop_every;               /* UDP test hook: hold back every N-th data datagram once */
    uint64_t retry_ns, linger_ns;      /* TCP reconnect budget; UDP answers after the end */
    bool quiet;                        /* no status lines on stderr */
    const char *user, *pass, *session; /* NULL: from cfg (TCP session: blank) */
    volatile sig_atomic_t *stop;       /* non-zero: end early, cleanly (may be NULL) */
} publish_cfg_t;

/* What a run did (the feed's --json report carries the same fields). */
typedef struct publish_result {
    int status;          /* 0 ok, 1 runtime error, 2 usage */
    char error[512];     /* why status is not 0 ("" when it is) */
    bool tcp;            /* tcp:// (else udp://) */
    char session[11];    /* TCP: from the Login Accepted; UDP: the session sent */
    uint64_t first_seq;  /* the first sequence number this run was to send */
    uint64_t next_seq;   /* 1 + the last sequence number sent */
    uint64_t messages;   /* messages sent (TCP: resent ones after a resume count again; UDP:
                            first transmissions only) */
    uint64_t bytes;      /* ITCH bytes of those messages */
    uint64_t wire_bytes; /* bytes written to the socket (framing, heartbeats, retransmissions) */
    uint64_t packets;    /* TCP: send() calls; UDP: datagrams sent */
    double seconds;      /* from the first login (TCP) or the first datagram (UDP) to the end */
    double rate;         /* messages / seconds */
    double target_rate;  /* rate asked for, 0 = max */
    bool past_end;       /* the first sequence number is past the end of the file: nothing sent */
    bool interrupted;    /* *stop ended the run early (it still ended cleanly) */
    /* TCP */
    uint64_t resumed_from; /* the sequence number of the first Login Accepted */
    uint64_t last_resume;  /* ... of the last one */
    uint64_t logins, reconnects;
    uint64_t heartbeats_sent, heartbeats_received, unexpected_packets;
    bool end_of_session; /* the server sent End of Session */
    bool server_closed;  /* after the logout, the server closed the connection */
    /* UDP */
    uint64_t requests;     /* retransmission requests received */
    uint64_t bad_requests; /* malformed ones or of another session (ignored) */
    uint64_t answered;     /* messages sent again */
    uint64_t unanswerable; /* requested messages no longer retained or never sent */
    uint64_t rtx_limited;  /* retained messages requested but not sent: over rtx_rate */
    uint64_t rtx_packets;  /* datagrams of retransmitted messages */
    uint64_t test_dropped; /* datagrams held back by drop_every */
    uint64_t allocs;       /* mem allocations after start-up (0: nothing per message) */
} publish_result_t;

void publish_cfg_default(publish_cfg_t *c);

/* Publish c->file to c->addr. Fills *r (zeroed first) and returns r->status: 0, or 1 with the
 * reason in r->error (file error, connection refused or lost, login rejected, End of Session from
 * the server). Allocates at start-up and frees everything before it returns; seals memory for the
 * run when it was not sealed. Writes nothing on stdout. */
int publish_run(const publish_cfg_t *c, publish_result_t *r);

#endif
