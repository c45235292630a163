/*
 * live: the network side of `tickcore serve`: SoupBinTCP 3.0 publishers over TCP and MoldUDP64
 * datagrams over UDP, both carrying one sequenced stream of ITCH 5.0 messages, turned into
 * messages delivered exactly once and in sequence order.
 *
 * Protocols (push mode, see net/soup.h): `serve` listens; a publisher logs in with a
 * SoupBinTCP Login Request, and the Login Accepted names the next sequence number the server
 * expects (what the journal holds + 1), so a publisher resumes exactly where a restarted server
 * left off. Sequenced Data packets then carry one message each; the server sends heartbeats on an
 * idle session and End of Session when it shuts down. MoldUDP64 packets carry the sequence number
 * of their first message; ingest/mold's receiver drops duplicates, holds packets past a gap while
 * it re-requests the gap from the packet's sender, and declares the gap lost after
 * live.gap_timeout (reported through on_lost, which the server records in the journal). Both
 * sources feed one sequence (A/B arbitration): whichever brings message `next` first delivers it,
 * the other's copy is a counted duplicate. Datagrams are taken only from live.udp_allow (a CIDR,
 * default the loopback range): others are dropped before parsing, counted (udp_foreign) and
 * logged (the first ten, then at powers of two), and never become the re-request target.
 *
 * Bad clients: a client that sends bytes that are not a SoupBinTCP packet, a packet before its
 * login or a login with the wrong credentials or session, a malformed ITCH message, or that
 * stalls in the middle of a packet or sends nothing for live.idle_timeout, is dropped with a
 * counted reason and a log line; the other clients are unaffected (each has its own buffers,
 * and the loop never waits on one client). Connections that have not logged in are held apart
 * from the sessions: live.max_pending small slots (64 bytes each way), live.login_timeout (1 s)
 * to log in, and when the table is full the one waiting longest is evicted for the newcomer, so
 * silent connections, however many, cannot keep a real publisher from logging in. A login moves
 * the connection to one of live.max_clients session slots (full buffers); with none free the
 * login is rejected (counted).
 *
 * I/O: one io_uring owned by the serve thread: an accept, one receive per client into its own
 * buffer, one send per client from its own send buffer, and live.udp_buffers datagram receives
 * (recvmsg) in flight. Every buffer is allocated by live_init (tag SERVER) and reused; nothing is
 * allocated while serving. Re-requests and the rare control sends that would find a client's
 * send in flight are queued in that client's send buffer. Counters are single-writer atomics,
 * read by the HTTP thread for /metrics.
 */
#ifndef TICKCORE_SERVER_LIVE_H
#define TICKCORE_SERVER_LIVE_H

#include "config/config.h"
#include "net/mold.h"

#include <liburing.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The next sequence number a Login Accepted may name: never past what the journal wrote. */
typedef uint64_t live_ack_fn(void *ctx);
/* Everything delivered so far made durable, before a Logout Request is answered (the publisher
 * takes the orderly close as "all of it is kept"): 0, or -errno after which the server refuses
 * (live_refuse, which ends the session with the reason instead of the orderly close). */
typedef int live_sync_fn(void *ctx);

/* Why a client was dropped (counted per reason; /metrics label `reason`). */
typedef enum live_drop {
    LIVE_DROP_GARBAGE = 0,   /* bytes that are not a SoupBinTCP packet */
    LIVE_DROP_PROTOCOL,      /* a valid packet where it is not allowed (data before login, ...) */
    LIVE_DROP_BAD_LOGIN,     /* wrong username or password */
    LIVE_DROP_BAD_SESSION,   /* login for another session */
    LIVE_DROP_BAD_MESSAGE,   /* a sequenced packet that is not a valid ITCH 5.0 message */
    LIVE_DROP_LOGIN_TIMEOUT, /* no login in time */
    LIVE_DROP_IDLE,          /* nothing received for live.idle_timeout (incl. mid-packet) */
    LIVE_DROP_DISCONNECT,    /* the peer closed or reset without a logout */
    LIVE_DROP_LOGOUT,        /* a logout request: the normal end */
    LIVE_DROP_SEND_FULL,     /* the client does not read what we send */
    LIVE_DROP_SHUTDOWN,      /* the server stops */
    LIVE_DROP_EVICTED,       /* not logged in, oldest of a full live.max_pending table */
    LIVE_DROP_SESSIONS_FULL, /* logged in while live.max_clients sessions were */
    LIVE_DROP_REFUSED,       /* the server takes no more data (live_refuse: journal failed) */
    LIVE_DROP_COUNT
} live_drop_t;

const char *live_drop_name(live_drop_t r);

/* A message of the stream, in sequence order, exactly once. msg is valid during the call. */
typedef void live_deliver_fn(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len);
/* Sequence numbers [from, from + count) will never come (a MoldUDP64 gap declared lost). */
typedef void live_lost_fn(void *ctx, uint64_t from, uint64_t count);

typedef struct live_counters {
    _Atomic uint64_t tcp_accepted, tcp_refused, tcp_logins, tcp_rejected, tcp_active;
    _Atomic uint64_t tcp_packets, tcp_bytes, tcp_messages, tcp_duplicates, tcp_heartbeats_in;
    _Atomic uint64_t tcp_heartbeats_out, drops[LIVE_DROP_COUNT];
    _Atomic uint64_t tcp_pending; /* connections not logged in yet, now */
    _Atomic uint64_t udp_datagrams, udp_bytes, udp_messages, udp_bad, udp_truncated;
    _Atomic uint64_t udp_wrong_session, udp_duplicates, udp_gaps, udp_recovered, udp_lost_gaps;
    _Atomic uint64_t udp_lost_messages, udp_rerequests, udp_held_peak, udp_store_full;
    _Atomic uint64_t udp_heartbeats, udp_end_of_session;
    _Atomic uint64_t udp_foreign; /* datagrams from outside live.udp_allow (dropped) */
    _Atomic uint64_t delivered, next_seq;
} live_counters_t;

struct live_client;

typedef struct live {
    config_t cfg;
    struct io_uring ring;
    bool ring_ok;
    int tcp_fd, udp_fd;
    uint16_t tcp_port, udp_port; /* bound ports (LIVE_PORT_ANY: the kernel's choice) */
    struct live_client *clients; /* max_clients sessions, then max_pending pending slots */
    int parked_fd;               /* accepted, waiting for an evicted pending slot to free */
    char parked_peer[32];
    uint8_t *rx_mem, *tx_mem;
    /* UDP */
    uint8_t *dgram_mem;
    struct msghdr *dgram_msg;
    struct iovec *dgram_iov;
    struct sockaddr_in *dgram_from;
    mold_rx_t mold;
    bool mold_ok;
    uint32_t udp_allow_net, udp_allow_mask; /* live.udp_allow, host byte order */
    struct sockaddr_in mold_source;         /* where re-requests go: the last (allowed) sender */
    bool have_source;
    uint64_t udp_offer_dups;
    uint64_t lost_gaps0, lost_messages0; /* live_restore_lost: lost before this run */
    uint8_t req_buf[64];
    /* the stream */
    uint64_t next_seq;
    live_deliver_fn *deliver;
    live_lost_fn *lost;
    live_ack_fn *ack;   /* NULL: the next sequence delivered */
    live_sync_fn *sync; /* NULL: a logout is answered at once */
    void *ctx;
    bool refusing; /* live_refuse: no more data, logins rejected */
    char refuse_reason[200];
    bool accepting, accept_inflight;
    unsigned inflight; /* operations in flight */
    live_counters_t c;
    char log_line[320];
} live_t;

/* A port for live_init's cfg that config keys cannot hold: bind to one the kernel chooses (read
 * it back from tcp_port/udp_port). For servers embedded in tests. */
#define LIVE_PORT_ANY 65536u

/* Bind and listen (cfg: live.*; a port of 0 disables that feed, LIVE_PORT_ANY takes any), allocate
 * every buffer, and set the next expected sequence number (journal_next_seq). 0, or -errno with a
 * message in err. */
int live_init(live_t *l, const config_t *cfg, uint64_t next_seq, live_deliver_fn *deliver,
              live_lost_fn *lost, void *ctx, char *err, size_t errlen);
/* Process what has arrived, waiting up to timeout_ns for the first completion; runs the timers
 * (heartbeats, timeouts, MoldUDP64 gap re-requests and losses). Returns messages delivered, or
 * -errno if the ring failed. Allocates nothing. */
int live_poll(live_t *l, uint64_t timeout_ns);
/* Stop accepting connections and datagrams (SIGTERM): End of Session to every client, then
 * close them once their operations finish (live_poll until live_idle). */
void live_stop(live_t *l);
/* Take no more data (the journal failed): every session gets a Debug packet with reason and End
 * of Session and is closed (reason refused); later logins are rejected ('S') and datagrams
 * ignored. Queries are not live's business: the server keeps serving them. Serve thread. */
void live_refuse(live_t *l, const char *reason);
/* The UDP lost counters (udp_lost_gaps, udp_lost_messages) start from what earlier runs lost
 * (the journal's gap sidecar), so that they survive a restart. Serve thread, after live_init. */
void live_restore_lost(live_t *l, uint64_t gaps, uint64_t messages);
bool live_idle(const live_t *l);
void live_fini(live_t *l);

#endif
