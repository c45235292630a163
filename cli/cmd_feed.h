/*
 * cmd_feed: `tickcore feed FILE --to tcp://IP:PORT | udp://IP:PORT`, the publisher side of the
 * live feeds. It replays an ITCH 5.0 BinaryFILE (plain or gzip, read through ingest/stream) as a
 * live feed into `tickcore serve`, for demos, tests and load tests. Message N of the file is
 * sequence number N of the feed.
 *
 * Push mode (see net/soup.h and net/mold.h): `serve` listens and the feed connects. Over
 * TCP (SoupBinTCP 3.0) the feed logs in (username/password from live.username/live.password,
 * session blank unless --session, requested sequence 0), and the server's Login Accepted names
 * the next sequence number it expects: the feed skips the file's messages before it and sends
 * the rest as Sequenced Data packets, many packets coalesced into one send() of up to 64 KB, a
 * Client Heartbeat after 1 s without sending, and a Logout Request at the end of the file; it
 * then shuts its write side down and waits for the server to close, so that the server has read
 * everything. With --retry, a failed or dropped connection is reopened every 200 ms and the feed
 * resumes where the new Login Accepted says (backwards or forwards in the file). Over UDP
 * (MoldUDP64) the feed sends datagrams of up to 1400 bytes from --from, keeps the last --retain
 * messages in a ring (preallocated bytes plus an index of offsets) and answers the server's
 * retransmission requests, which arrive on the same socket, from it; after the file it sends 3
 * End of Session packets and keeps answering requests for --linger seconds. Pacing (--rate) is
 * smooth: the messages due are sent in 1 ms slices, never in bursts of a second.
 *
 * Memory: everything (stream buffers, symbol table, the 64 KB send buffer, the receive buffer,
 * the retransmission ring) is allocated at start-up (tag INGEST), then memory is sealed; sending
 * allocates nothing per message or per packet (the result counts allocations after start-up).
 * Sockets are plain non-blocking sockets driven by poll (io_uring is the server's business).
 */
#ifndef TICKCORE_CLI_CMD_FEED_H
#define TICKCORE_CLI_CMD_FEED_H

#include <stdbool.h>
#include <stdint.h>

/* What a run did (the --json report carries the same fields). */
typedef struct feed_result {
    int status;          /* the exit status: 0 ok, 1 runtime error, 2 usage */
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
    double target_rate;  /* --rate, 0 = max */
    bool past_end;       /* the first sequence number is past the end of the file: nothing sent */
    bool interrupted;    /* SIGINT/SIGTERM stopped the feed early (it still ended cleanly) */
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
    uint64_t rtx_packets;  /* datagrams of retransmitted messages */
    uint64_t test_dropped; /* datagrams held back by --drop-every */
    uint64_t allocs;       /* mem allocations after start-up (0: nothing per message) */
} feed_result_t;

/* Run `tickcore feed` with argv[0..argc) (argv[0] is "feed"). Returns the process exit status:
 * 0 ok, 1 runtime error (file error, connection refused or lost, login rejected), 2 usage.
 * Prints the report on stdout (text or --json) and errors on stderr. Uses getopt and installs
 * SIGINT/SIGTERM handlers for the run (restored before it returns): one call at a time. */
int feed_main(int argc, char **argv);
/* The same, and fills *res (may be NULL) with what the run did (tests, callers that embed it). */
int feed_main_result(int argc, char **argv, feed_result_t *res);

#endif
