/*
 * publish: see publish.h. Ownership: publish_run owns everything of a run on its stack or through
 * mem_alloc (tag INGEST): the symbol table and stream (the file as a cursor of messages in
 * sequence order, reopened when a resume goes backwards), one send buffer (64 KB of coalesced
 * SoupBinTCP packets, or the MoldUDP64 datagram being built), one receive buffer, and for UDP the
 * retransmission datagram and the retained-message ring. All of it is allocated before the first
 * connection and freed before the function returns; memory is sealed in between, so the
 * allocation count of the run proves that sending allocates nothing. The socket is non-blocking
 * and every wait is a poll on it, so incoming packets (server heartbeats, End of Session,
 * retransmission requests) are handled while the publisher paces itself or waits for the kernel
 * to take more bytes. Internal functions return FEED_OK, FEED_CONN (the connection failed or
 * dropped: retried when a retry time is set) or FEED_FATAL (not retried); the message is in
 * f->err.
 */
#include "feed/publish.h"
#include "base/clock.h"

#include "config/config.h"
#include "engine/pipeline.h"
#include "event/symtab.h"
#include "ingest/itch.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "net/mold.h"
#include "net/soup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FEED_TX_CAP       (64u * 1024u) /* one send() of coalesced packets */
#define FEED_RX_CAP       (SOUP_MAX_PACKET + 65536u)
#define FEED_DGRAM        1400u /* MoldUDP64 datagram budget (below a 1500-byte MTU) */
#define FEED_NS           1000000000ull
#define FEED_HEARTBEAT_NS FEED_NS
#define FEED_LOGIN_NS     (10 * FEED_NS) /* wait for Login Accepted/Rejected */
#define FEED_CONNECT_NS   (10 * FEED_NS)
#define FEED_CLOSE_NS     (10 * FEED_NS) /* wait for the server to close after the logout */
#define FEED_STALL_NS     (30 * FEED_NS) /* the kernel takes nothing this long: give up */
#define FEED_RETRY_NS     (200000000ull) /* reconnect interval */
#define FEED_SLICE_NS     1000000ull     /* pacing slice, 1 ms */
#define FEED_CATCHUP_NS   100000000ull   /* a feed further behind than this does not catch up */
#define FEED_END_PACKETS  3

enum { FEED_OK = 0, FEED_CONN = -1, FEED_FATAL = -2 };
enum { LOGIN_PENDING = 0, LOGIN_ACCEPTED, LOGIN_REJECTED };

/* The file as messages in sequence order: ev[i] is message number seq (1-based). */
typedef struct cursor {
    stream_t stream;
    const char *path;
    ev_t *ev;
    size_t n, i;
    uint64_t seq;
    bool eof, failed;
} cursor_t;

typedef struct feed {
    const publish_cfg_t *o;
    publish_result_t *r;
    cursor_t cur;
    symtab_t symbols;
    int fd;
    char session[11]; /* UDP: the session sent */
    char err[512];
    /* buffers (allocated once) */
    uint8_t *tx;
    size_t txlen;
    uint8_t *rx;
    size_t rxlen;
    uint8_t *rtx;
    /* UDP retention ring: messages [ring_lo, ring_hi), message s at ring[pos[s % retain]] */
    uint8_t *ring;
    uint32_t *ring_pos;
    uint8_t *ring_len;
    size_t ring_cap, ring_head;
    uint64_t ring_lo, ring_hi;
    mold_builder_t mb;
    uint64_t sent_hi;   /* UDP: messages below this have been sent (or held back by the hook) */
    uint64_t data_pkts; /* UDP: first-time data datagrams built (for --drop-every) */
    bool udp_ended;     /* End of Session sent: no more heartbeats */
    bool peer_closed;   /* TCP: the server closed its side (tcp_read returned 1) */
    bool tx_complete;   /* TCP: the last tcp_flush wrote every byte */
    /* TCP */
    int login_state;
    char reject;
    char said[128]; /* the server's last Debug packet (why it ended the session) */
    uint64_t login_seq;
    /* sending */
    uint64_t end_seq; /* last sequence number to send (inclusive) */
    uint64_t last_send_ns;
    uint64_t t_start;
    bool started;
    /* UDP retransmission budget (rtx_take): tokens in 1/FEED_NS messages, last refill */
    uint64_t rtx_tokens, rtx_t;
    /* pacing */
    uint64_t pace_t0, pace_sent, pace_budget;
} feed_t;

static bool stopped(const feed_t *f)
{
    return f->o->stop && *f->o->stop;
}

/* ---- the file as a cursor ----------------------------------------------------------------- */

static int cursor_open(cursor_t *c, char *err, size_t errlen)
{
    c->ev = NULL;
    c->n = c->i = 0;
    c->seq = 1;
    c->eof = c->failed = false;
    if (stream_open(&c->stream, c->path) < 0) {
        snprintf(err, errlen, "%s", c->stream.err);
        c->failed = true;
        return -1;
    }
    return 0;
}

/* The next message: 1 (*e set), 0 at the end of the file, -1 on a file error (in err). */
static int cursor_peek(cursor_t *c, const ev_t **e, char *err, size_t errlen)
{
    while (c->i >= c->n) {
        if (c->eof)
            return 0;
        if (c->failed)
            return -1;
        int rc = stream_next(&c->stream, &c->ev, &c->n);
        c->i = 0;
        if (rc == 0) {
            c->n = 0;
            c->eof = true;
            return 0;
        }
        if (rc < 0) {
            c->n = 0;
            c->failed = true;
            snprintf(err, errlen, "%s", c->stream.err);
            return -1;
        }
    }
    *e = &c->ev[c->i];
    return 1;
}

static void cursor_advance(cursor_t *c)
{
    c->i++;
    c->seq++;
}

/* Position on message `seq`: 1 there, 0 if the file ends before it, -1 on a file error. */
static int cursor_seek(cursor_t *c, uint64_t seq, char *err, size_t errlen)
{
    if (seq < c->seq) {
        stream_close(&c->stream);
        if (cursor_open(c, err, errlen) < 0)
            return -1;
    }
    const ev_t *e;
    for (;;) {
        int rc = cursor_peek(c, &e, err, errlen);
        if (rc <= 0)
            return rc;
        if (c->seq >= seq)
            return 1;
        uint64_t skip = seq - c->seq;
        size_t have = c->n - c->i;
        if (skip > have)
            skip = have;
        c->i += (size_t)skip;
        c->seq += skip;
    }
}

/* ---- pacing ------------------------------------------------------------------------------- */

typedef int service_fn(feed_t *f, uint64_t deadline_ns);
typedef int flush_fn(feed_t *f);

static void pace_start(feed_t *f)
{
    f->pace_t0 = clock_mono_ns();
    f->pace_sent = f->pace_budget = 0;
}

/* Returns when one more message may go: with --rate, the messages due are released in whole
 * 1 ms slices (one coalesced send each); until a slice is due the pending bytes are flushed and
 * the socket is served. The schedule is absolute (t0 + n / rate), so sleeping late costs nothing;
 * but a feed that fell more than 100 ms behind (a slow server, a stall, a reconnect) restarts
 * the schedule from now instead of catching up in a burst. */
static int pace_wait(feed_t *f, flush_fn *flush, service_fn *service)
{
    double rate = f->o->rate;
    if (rate <= 0 || f->pace_sent < f->pace_budget)
        return FEED_OK;
    int rc = flush(f);
    if (rc)
        return rc;
    double slice = rate * 1e-9 * (double)FEED_SLICE_NS;
    if (slice < 1)
        slice = 1;
    for (;;) {
        uint64_t now = clock_mono_ns();
        double due = rate * 1e-9 * (double)(now - f->pace_t0);
        if (due >= (double)f->pace_sent + slice) { /* a whole slice is due */
            if (due > (double)f->pace_sent + slice + rate * 1e-9 * (double)FEED_CATCHUP_NS) {
                due = (double)f->pace_sent + slice;
                f->pace_t0 = now - (uint64_t)(due / rate * 1e9);
            }
            f->pace_budget = (uint64_t)due;
            return FEED_OK;
        }
        uint64_t wake = f->pace_t0 + (uint64_t)(((double)f->pace_sent + slice) / rate * 1e9) + 1;
        rc = service(f, wake);
        if (rc)
            return rc;
        if (stopped(f))
            return FEED_OK;
    }
}

/* poll() one descriptor until deadline (ns precision). Returns revents, 0 on timeout. */
static short poll_until(int fd, short events, uint64_t deadline)
{
    uint64_t now = clock_mono_ns();
    uint64_t left = deadline > now ? deadline - now : 0;
    struct timespec ts = {(time_t)(left / FEED_NS), (long)(left % FEED_NS)};
    struct pollfd p = {.fd = fd, .events = events};
    int k = ppoll(&p, 1, &ts, NULL);
    return k > 0 ? p.revents : 0;
}

/* ---- TCP (SoupBinTCP) --------------------------------------------------------------------- */

static void handle_packet(feed_t *f, const soup_packet_t *p)
{
    char perr[128];
    switch (p->type) {
    case SOUP_LOGIN_ACCEPTED:
        if (f->login_state == LOGIN_PENDING) {
            char sess[11];
            uint64_t seq;
            if (soup_accepted_parse(p, sess, &seq, perr, sizeof perr) == 0) {
                memcpy(f->r->session, sess, sizeof sess);
                f->login_seq = seq == 0 ? 1 : seq;
                f->login_state = LOGIN_ACCEPTED;
                return;
            }
        }
        f->r->unexpected_packets++;
        return;
    case SOUP_LOGIN_REJECTED:
        if (f->login_state == LOGIN_PENDING) {
            f->reject = (char)p->payload[0];
            f->login_state = LOGIN_REJECTED;
            return;
        }
        f->r->unexpected_packets++;
        return;
    case SOUP_SERVER_HEARTBEAT:
        f->r->heartbeats_received++;
        return;
    case SOUP_END_OF_SESSION:
        f->r->end_of_session = true;
        return;
    case SOUP_DEBUG: { /* a server that ends the session says why here (tickcore serve does) */
        size_t n = p->len < sizeof f->said - 1 ? p->len : sizeof f->said - 1;
        for (size_t k = 0; k < n; k++)
            f->said[k] = p->payload[k] >= 0x20 && p->payload[k] < 0x7f ? (char)p->payload[k] : '?';
        f->said[n] = '\0';
        return;
    }
    default:
        f->r->unexpected_packets++;
        return;
    }
}

/* Read and handle whatever the server has sent, without waiting. 0: still open; 1: the server
 * closed the connection in order (f->peer_closed); 2: the connection was reset or failed (a
 * server that closes with bytes unread resets it); -1: it sent bytes that are not SoupBinTCP.
 * The reason is in f->err whenever the result is not 0. */
static int tcp_read(feed_t *f)
{
    for (;;) {
        ssize_t k = recv(f->fd, f->rx + f->rxlen, FEED_RX_CAP - f->rxlen, MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(f->err, sizeof f->err, "connection lost: %s", strerror(errno));
            return 2;
        }
        if (k == 0) {
            snprintf(f->err, sizeof f->err, "the server closed the connection");
            f->peer_closed = true;
            return 1;
        }
        f->rxlen += (size_t)k;
        size_t off = 0;
        for (;;) {
            soup_packet_t p;
            char perr[160];
            int used =
                soup_parse(f->rx + off, f->rxlen - off, SOUP_MAX_PACKET, &p, perr, sizeof perr);
            if (used == 0)
                break;
            if (used < 0) {
                snprintf(f->err, sizeof f->err, "the server sent a bad packet: %s", perr);
                return -1;
            }
            handle_packet(f, &p);
            off += (size_t)used;
        }
        if (off > 0) {
            memmove(f->rx, f->rx + off, f->rxlen - off);
            f->rxlen -= off;
        }
    }
}

/* Write the whole send buffer, serving incoming packets while the kernel is full. */
static int tcp_flush(feed_t *f)
{
    size_t off = 0;
    f->tx_complete = false;
    uint64_t progress = clock_mono_ns();
    while (off < f->txlen) {
        ssize_t k = send(f->fd, f->tx + off, f->txlen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            off += (size_t)k;
            f->r->wire_bytes += (uint64_t)k;
            progress = clock_mono_ns();
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(f->err, sizeof f->err, "connection lost: %s", strerror(errno));
            f->txlen = 0;
            return FEED_CONN;
        }
        short ev = poll_until(f->fd, POLLIN | POLLOUT, clock_mono_ns() + 100000000ull);
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
            int rc = tcp_read(f);
            if (rc) {
                f->txlen = 0;
                return FEED_CONN;
            }
        }
        if (clock_mono_ns() - progress > FEED_STALL_NS) {
            snprintf(f->err, sizeof f->err, "the server read nothing for %llu s",
                     (unsigned long long)(FEED_STALL_NS / FEED_NS));
            f->txlen = 0;
            return FEED_CONN;
        }
    }
    if (f->txlen > 0) {
        f->r->packets++;
        f->last_send_ns = clock_mono_ns();
    }
    f->txlen = 0;
    f->tx_complete = true;
    /* Whatever the server said meanwhile (heartbeats, End of Session). The bytes are written:
     * a close seen now is reported, and tcp_finish takes it as the server's normal close. */
    if (tcp_read(f))
        return FEED_CONN;
    return f->r->end_of_session ? FEED_FATAL : FEED_OK;
}

static int tcp_put_empty(feed_t *f, uint8_t type)
{
    if (f->txlen + 3 > FEED_TX_CAP) {
        int rc = tcp_flush(f);
        if (rc)
            return rc;
    }
    f->txlen += soup_put_empty(f->tx + f->txlen, FEED_TX_CAP - f->txlen, type);
    return FEED_OK;
}

/* One protocol's half of the service loop (service): keepalive sends what is due (heartbeat,
 * End of Session) and returns 1, or returns 0 after lowering *wake to when it will be due;
 * readable handles what arrived. Both return FEED_CONN or FEED_FATAL on errors. */
typedef int keepalive_fn(feed_t *f, uint64_t now, uint64_t *wake);
typedef int readable_fn(feed_t *f);

/* Serve the socket until deadline (or a stop): keep-alives when due, incoming packets. */
static int service(feed_t *f, uint64_t deadline, keepalive_fn *keepalive, readable_fn *readable)
{
    for (;;) {
        uint64_t now = clock_mono_ns(), wake = deadline;
        if (now >= deadline || stopped(f))
            return FEED_OK;
        int rc = keepalive(f, now, &wake);
        if (rc < 0)
            return rc;
        if (rc == 0 && poll_until(f->fd, POLLIN, wake) && (rc = readable(f)) != FEED_OK)
            return rc;
    }
}

/* TCP: a Client Heartbeat after 1 s without sending. */
static int tcp_keepalive(feed_t *f, uint64_t now, uint64_t *wake)
{
    uint64_t hb = f->last_send_ns + FEED_HEARTBEAT_NS;
    if (now < hb) {
        if (hb < *wake)
            *wake = hb;
        return 0;
    }
    int rc = tcp_put_empty(f, SOUP_CLIENT_HEARTBEAT);
    if (rc == FEED_OK)
        rc = tcp_flush(f);
    if (rc)
        return rc;
    f->r->heartbeats_sent++;
    return 1;
}

static int tcp_readable(feed_t *f)
{
    if (tcp_read(f))
        return FEED_CONN;
    return f->r->end_of_session ? FEED_FATAL : FEED_OK;
}

/* Serve the connection until deadline: handle incoming packets, heartbeat after 1 s idle. */
static int tcp_service(feed_t *f, uint64_t deadline)
{
    return service(f, deadline, tcp_keepalive, tcp_readable);
}

static void tcp_close(feed_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->txlen = f->rxlen = 0;
    f->peer_closed = false;
}

/* Connect and log in. FEED_OK with f->login_seq, FEED_CONN, or FEED_FATAL (rejected). */
static int tcp_login(feed_t *f)
{
    const publish_cfg_t *o = f->o;
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0) {
        snprintf(f->err, sizeof f->err, "socket: %s", strerror(errno));
        return FEED_FATAL;
    }
    int one = 1;
    setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(f->fd, (const struct sockaddr *)&o->addr, sizeof o->addr) < 0) {
        if (errno != EINPROGRESS) {
            snprintf(f->err, sizeof f->err, "connect to %s: %s", o->to, strerror(errno));
            tcp_close(f);
            return FEED_CONN;
        }
        short ev = poll_until(f->fd, POLLOUT, clock_mono_ns() + FEED_CONNECT_NS);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (!ev)
            soerr = ETIMEDOUT;
        else if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            snprintf(f->err, sizeof f->err, "connect to %s: %s", o->to, strerror(soerr));
            tcp_close(f);
            return FEED_CONN;
        }
    }
    const char *user = o->user ? o->user : o->cfg.username;
    const char *pass = o->pass ? o->pass : o->cfg.password;
    const char *sess = o->session ? o->session : "";
    f->login_state = LOGIN_PENDING;
    f->txlen = soup_put_login(f->tx, FEED_TX_CAP, user, pass, sess, 0);
    if (f->txlen == 0) {
        snprintf(f->err, sizeof f->err, "cannot build a login request for user '%s'", user);
        tcp_close(f);
        return FEED_FATAL;
    }
    f->r->end_of_session = false;
    int rc = tcp_flush(f);
    uint64_t deadline = clock_mono_ns() + FEED_LOGIN_NS;
    while (rc == FEED_OK && f->login_state == LOGIN_PENDING) {
        if (stopped(f)) {
            snprintf(f->err, sizeof f->err, "interrupted while logging in");
            rc = FEED_FATAL;
            break;
        }
        if (clock_mono_ns() >= deadline) {
            snprintf(f->err, sizeof f->err, "no answer to the login from %s within %llu s", o->to,
                     (unsigned long long)(FEED_LOGIN_NS / FEED_NS));
            rc = FEED_CONN;
            break;
        }
        short ev = poll_until(f->fd, POLLIN, clock_mono_ns() + 100000000ull);
        if (ev && tcp_read(f))
            rc = FEED_CONN;
        if (f->r->end_of_session) {
            snprintf(f->err, sizeof f->err, "the server ended the session (End of Session)%s%s",
                     f->said[0] ? ": " : "", f->said);
            rc = FEED_FATAL;
        }
    }
    if (f->login_state == LOGIN_REJECTED) { /* whatever followed it (the server closes) */
        const char *why = f->reject == SOUP_REJECT_NOT_AUTHORIZED ? "not authorized"
                          : f->reject == SOUP_REJECT_NO_SESSION   ? "session not available"
                                                                  : "unknown reason";
        snprintf(f->err, sizeof f->err, "login rejected by %s: %s (reason '%c')", o->to, why,
                 f->reject >= 0x20 && f->reject < 0x7f ? f->reject : '?');
        rc = FEED_FATAL;
    }
    if (rc != FEED_OK) {
        if (rc == FEED_CONN && f->login_state == LOGIN_PENDING &&
            strncmp(f->err, "the server closed", 17) == 0)
            snprintf(f->err, sizeof f->err, "%s closed the connection before answering the login",
                     o->to);
        tcp_close(f);
        return rc;
    }
    f->r->logins++;
    f->last_send_ns = clock_mono_ns();
    return FEED_OK;
}

/* rc, unless the server ended the session saying why (a Debug packet, then End of Session: how
 * tickcore serve refuses data after a journal failure): then FEED_FATAL with its reason, also
 * when it came in answer to the Logout Request. */
static int finish_status(feed_t *f, int rc)
{
    if (rc == FEED_OK && f->r->end_of_session && f->said[0]) {
        snprintf(f->err, sizeof f->err,
                 "the server ended the session (End of Session) after the last message: %s",
                 f->said);
        return FEED_FATAL;
    }
    return rc;
}

/* After the last message: Logout Request, shut the write side, wait for the server to close. */
static int tcp_finish(feed_t *f)
{
    int rc = tcp_put_empty(f, SOUP_LOGOUT_REQUEST);
    if (rc == FEED_OK)
        rc = tcp_flush(f);
    if (rc == FEED_FATAL && f->r->end_of_session)
        rc = finish_status(f, FEED_OK); /* the server ends the session as we leave: fine */
    if (rc == FEED_CONN && f->peer_closed && f->txlen == 0 && f->tx_complete) {
        f->r->server_closed = true; /* it read the logout and closed at once */
        f->err[0] = '\0';
        return finish_status(f, FEED_OK);
    }
    if (rc)
        return rc;
    shutdown(f->fd, SHUT_WR);
    uint64_t deadline = clock_mono_ns() + FEED_CLOSE_NS;
    for (;;) {
        if (clock_mono_ns() >= deadline) {
            snprintf(f->err, sizeof f->err,
                     "the server did not close the connection within %llu s of the logout",
                     (unsigned long long)(FEED_CLOSE_NS / FEED_NS));
            return FEED_FATAL;
        }
        short ev = poll_until(f->fd, POLLIN, deadline);
        if (!ev)
            continue;
        int k = tcp_read(f);
        if (k == 1) {
            f->r->server_closed = true;
            f->err[0] = '\0';
            return finish_status(f, FEED_OK);
        }
        if (k != 0)
            return FEED_CONN; /* reset: the server may not have read everything */
    }
}

/* Send from message `from` (the Login Accepted) to the end: FEED_OK, FEED_CONN or FEED_FATAL. */
static int tcp_send(feed_t *f, uint64_t from, bool first)
{
    publish_result_t *r = f->r;
    int rc = FEED_OK;
    bool file_error = false;
    bool nothing = from > f->end_seq; /* --count reached before a reconnect */
    if (!nothing) {
        int k = cursor_seek(&f->cur, from, f->err, sizeof f->err);
        if (k < 0)
            file_error = true;
        else if (k == 0 && first) {
            r->past_end = true;
            if (!f->o->quiet)
                fprintf(stderr,
                        "tickcore feed: the server expects sequence %" PRIu64
                        ", past the end of %s (%" PRIu64 " messages): nothing to send\n",
                        from, f->o->file, f->cur.seq - 1);
        }
    }
    pace_start(f);
    while (!nothing && !file_error && f->cur.seq <= f->end_seq && !stopped(f)) {
        const ev_t *e;
        int k = cursor_peek(&f->cur, &e, f->err, sizeof f->err);
        if (k < 0)
            file_error = true;
        if (k <= 0)
            break;
        rc = pace_wait(f, tcp_flush, tcp_service);
        if (rc)
            break;
        if (stopped(f))
            break;
        if (f->txlen + 3u + e->raw_len > FEED_TX_CAP) {
            rc = tcp_flush(f);
            if (rc)
                break;
        }
        f->txlen +=
            soup_put_sequenced(f->tx + f->txlen, FEED_TX_CAP - f->txlen, e->raw, e->raw_len);
        r->messages++;
        r->bytes += e->raw_len;
        f->pace_sent++;
        cursor_advance(&f->cur);
        r->next_seq = f->cur.seq;
    }
    if (rc != FEED_OK && r->end_of_session) {
        snprintf(f->err, sizeof f->err,
                 "the server ended the session (End of Session) at sequence %" PRIu64 "%s%s",
                 f->cur.seq, f->said[0] ? ": " : "", f->said);
        return FEED_FATAL;
    }
    if (rc)
        return rc;
    char ferr[sizeof f->err];
    if (file_error)
        memcpy(ferr, f->err, sizeof ferr);
    rc = tcp_finish(f);
    if (rc == FEED_OK && file_error) {
        memcpy(f->err, ferr, sizeof ferr);
        return FEED_FATAL;
    }
    return rc;
}

static int tcp_run(feed_t *f)
{
    const publish_cfg_t *o = f->o;
    publish_result_t *r = f->r;
    bool first = true;
    uint64_t fail_since = 0;
    for (;;) {
        int rc = tcp_login(f);
        if (rc == FEED_OK) {
            uint64_t from = f->login_seq;
            if (first) {
                r->resumed_from = r->first_seq = r->next_seq = from;
                f->end_seq =
                    o->count && from <= UINT64_MAX - o->count ? from + o->count - 1 : UINT64_MAX;
                f->t_start = clock_mono_ns();
                f->started = true;
                if (!o->quiet)
                    fprintf(stderr,
                            "tickcore feed: logged in to %s, session '%s', next sequence %" PRIu64
                            "\n",
                            o->to, r->session, from);
            } else {
                r->reconnects++;
                if (!o->quiet)
                    fprintf(stderr,
                            "tickcore feed: reconnected to %s, resuming at sequence %" PRIu64 "\n",
                            o->to, from);
            }
            r->last_resume = from;
            fail_since = 0;
            rc = tcp_send(f, from, first);
            first = false;
            if (rc != FEED_CONN) {
                tcp_close(f);
                return rc;
            }
        }
        tcp_close(f);
        if (rc == FEED_FATAL)
            return rc;
        uint64_t now = clock_mono_ns();
        if (fail_since == 0) {
            fail_since = now;
            if (o->retry_ns > 0 && !stopped(f) && !o->quiet)
                fprintf(stderr, "tickcore feed: %s; retrying for up to %.1f s\n", f->err,
                        (double)o->retry_ns * 1e-9);
        }
        if (stopped(f) || now - fail_since >= o->retry_ns) {
            if (o->retry_ns > 0) {
                size_t l = strlen(f->err);
                snprintf(f->err + l, sizeof f->err - l, " (gave up after %.1f s of retries)",
                         (double)(now - fail_since) * 1e-9);
            }
            return FEED_CONN;
        }
        struct timespec d = {0, (long)FEED_RETRY_NS};
        nanosleep(&d, NULL);
    }
}

/* ---- UDP (MoldUDP64) ---------------------------------------------------------------------- */

static void ring_add(feed_t *f, uint64_t seq, const uint8_t *msg, uint8_t len)
{
    if (f->ring_hi - f->ring_lo == f->o->retain)
        f->ring_lo++;
    uint64_t slot = seq % f->o->retain;
    size_t pos = f->ring_head;
    size_t first = f->ring_cap - pos < len ? f->ring_cap - pos : len;
    memcpy(f->ring + pos, msg, first);
    memcpy(f->ring, msg + first, len - first);
    f->ring_pos[slot] = (uint32_t)pos;
    f->ring_len[slot] = len;
    f->ring_head = (pos + len) % f->ring_cap;
    f->ring_hi = seq + 1;
}

/* Copy retained message seq (ring_lo <= seq < ring_hi) into out[ITCH_MAX_MSG]; its length. */
static uint8_t ring_get(const feed_t *f, uint64_t seq, uint8_t *out)
{
    uint64_t slot = seq % f->o->retain;
    size_t pos = f->ring_pos[slot];
    uint8_t len = f->ring_len[slot];
    size_t first = f->ring_cap - pos < len ? f->ring_cap - pos : len;
    memcpy(out, f->ring + pos, first);
    memcpy(out + first, f->ring, len - first);
    return len;
}

static int udp_sendto(feed_t *f, const uint8_t *buf, size_t len, const struct sockaddr_in *to)
{
    uint64_t start = 0;
    for (;;) {
        ssize_t k = sendto(f->fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof *to);
        if (k >= 0) {
            f->r->wire_bytes += (uint64_t)k;
            f->last_send_ns = clock_mono_ns();
            return FEED_OK;
        }
        if (errno == EINTR || errno == ECONNREFUSED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &to->sin_addr, ip, sizeof ip);
            snprintf(f->err, sizeof f->err, "sendto %s:%u: %s", ip, ntohs(to->sin_port),
                     strerror(errno));
            return FEED_FATAL;
        }
        uint64_t now = clock_mono_ns();
        if (start == 0)
            start = now;
        else if (now - start > FEED_STALL_NS) {
            snprintf(f->err, sizeof f->err, "the socket took no datagram for %llu s",
                     (unsigned long long)(FEED_STALL_NS / FEED_NS));
            return FEED_FATAL;
        }
        poll_until(f->fd, POLLOUT, now + 1000000ull);
    }
}

/* The retransmission budget, a token bucket in messages: rtx_rate per second, at most one
 * second's worth saved up. Returns how many of `want` messages may be sent now and takes them. */
static uint64_t rtx_take(feed_t *f, uint64_t want)
{
    uint64_t rate = f->o->rtx_rate;
    if (rate == 0)
        return want;
    uint64_t now = clock_mono_ns();
    uint64_t dt = now - f->rtx_t;
    f->rtx_t = now;
    /* tokens in units of 1/FEED_NS messages: no rounding loss between calls */
    uint64_t cap = rate * FEED_NS;
    uint64_t add = dt >= FEED_NS ? cap : dt * rate;
    f->rtx_tokens = f->rtx_tokens + add > cap ? cap : f->rtx_tokens + add; /* both <= 1e16 */
    uint64_t have = f->rtx_tokens / FEED_NS;
    uint64_t n = want < have ? want : have;
    f->rtx_tokens -= n * FEED_NS;
    return n;
}

/* Answer one retransmission request of the target: the retained, already sent messages of the
 * range that the rate limit allows, in datagrams of up to 1400 bytes, sent to the target. */
static int udp_answer(feed_t *f, uint64_t seq, uint16_t count)
{
    publish_result_t *r = f->r;
    const struct sockaddr_in *to = &f->o->addr;
    uint64_t hi = seq > UINT64_MAX - count ? UINT64_MAX : seq + count;
    uint64_t a = seq > f->ring_lo ? seq : f->ring_lo;
    uint64_t b = hi < f->sent_hi ? hi : f->sent_hi;
    uint64_t n = b > a ? b - a : 0;
    r->unanswerable += count - n;
    uint64_t ok = rtx_take(f, n);
    r->rtx_limited += n - ok;
    b = a + ok;
    if (ok == 0)
        return FEED_OK;
    mold_builder_t rb;
    mold_begin(&rb, f->rtx, FEED_DGRAM, f->session, a);
    uint8_t msg[ITCH_MAX_MSG + 8];
    for (uint64_t s = a; s < b; s++) {
        uint8_t len = ring_get(f, s, msg);
        if (!mold_add(&rb, msg, len)) {
            int rc = udp_sendto(f, f->rtx, mold_finish(&rb), to);
            if (rc)
                return rc;
            r->rtx_packets++;
            mold_begin(&rb, f->rtx, FEED_DGRAM, f->session, s);
            mold_add(&rb, msg, len);
        }
        r->answered++;
    }
    int rc = udp_sendto(f, f->rtx, mold_finish(&rb), to);
    if (rc == FEED_OK)
        r->rtx_packets++;
    return rc;
}

/* Take every request waiting on the socket, without blocking. */
static int udp_requests(feed_t *f)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t k =
            recvfrom(f->fd, f->rx, FEED_RX_CAP, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return FEED_OK; /* EAGAIN, or an ICMP error reported on the socket */
        }
        char sess[11], rerr[160];
        uint64_t seq;
        uint16_t count;
        if (fl != sizeof from || from.sin_family != AF_INET ||
            from.sin_addr.s_addr != f->o->addr.sin_addr.s_addr ||
            from.sin_port != f->o->addr.sin_port ||
            mold_request_parse(f->rx, (size_t)k, sess, &seq, &count, rerr, sizeof rerr) < 0 ||
            strcmp(sess, f->session) != 0) {
            f->r->bad_requests++;
            continue;
        }
        f->r->requests++;
        int rc = udp_answer(f, seq, count);
        if (rc)
            return rc;
    }
}

/* UDP: a Heartbeat after 1 s without sending; after the end, End of Session again every 100 ms
 * while lingering (MoldUDP64's heartbeat after the end): a receiver that lost the tail of the day
 * and the first End of Session packets still learns the last sequence number and re-requests. */
static int udp_keepalive(feed_t *f, uint64_t now, uint64_t *wake)
{
    uint64_t due = f->last_send_ns + (f->udp_ended ? FEED_HEARTBEAT_NS / 10 : FEED_HEARTBEAT_NS);
    if (now < due) {
        if (due < *wake)
            *wake = due;
        return 0;
    }
    size_t n = f->udp_ended ? mold_put_end(f->rtx, FEED_DGRAM, f->session, f->sent_hi)
                            : mold_put_heartbeat(f->rtx, FEED_DGRAM, f->session, f->sent_hi);
    int rc = udp_sendto(f, f->rtx, n, &f->o->addr);
    if (rc)
        return rc;
    if (!f->udp_ended)
        f->r->heartbeats_sent++;
    return 1;
}

static int udp_service(feed_t *f, uint64_t deadline)
{
    return service(f, deadline, udp_keepalive, udp_requests);
}

/* Send the datagram being built (unless the --drop-every hook holds it back) and start the next
 * one at sequence number next. */
static int udp_flush(feed_t *f)
{
    int rc = FEED_OK;
    if (f->mb.count > 0) {
        size_t n = mold_finish(&f->mb);
        f->data_pkts++;
        if (f->o->drop_every && f->data_pkts % f->o->drop_every == 0) {
            f->r->test_dropped++;
        } else {
            rc = udp_sendto(f, f->tx, n, &f->o->addr);
            f->r->packets++;
        }
        f->sent_hi = f->ring_hi;
        mold_begin(&f->mb, f->tx, FEED_DGRAM, f->session, f->sent_hi);
    }
    if (rc == FEED_OK)
        rc = udp_requests(f);
    return rc;
}

static int udp_run(feed_t *f)
{
    const publish_cfg_t *o = f->o;
    publish_result_t *r = f->r;
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0) {
        snprintf(f->err, sizeof f->err, "socket: %s", strerror(errno));
        return FEED_FATAL;
    }
    int sndbuf = 4 << 20;
    setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    /* connect(): the kernel binds the local address the route to the target picks (not
     * 0.0.0.0) and delivers datagrams from the target's address and port only, so nothing else
     * can make the feed send anything anywhere (an open reflector otherwise: one 20-byte request
     * naming the public session could ask for 60 KB). */
    if (connect(f->fd, (const struct sockaddr *)&o->addr, sizeof o->addr) < 0) {
        snprintf(f->err, sizeof f->err, "connect %s: %s", o->to ? o->to : "udp target",
                 strerror(errno));
        return FEED_FATAL;
    }
    memcpy(r->session, f->session, sizeof r->session);
    r->first_seq = r->next_seq = o->from;
    f->end_seq = o->count && o->from <= UINT64_MAX - o->count ? o->from + o->count - 1 : UINT64_MAX;
    f->ring_lo = f->ring_hi = f->sent_hi = o->from;
    f->rtx_t = clock_mono_ns();
    f->rtx_tokens = o->rtx_rate * FEED_NS; /* a full second's budget */
    bool file_error = false;
    int k = cursor_seek(&f->cur, o->from, f->err, sizeof f->err);
    if (k < 0)
        file_error = true;
    else if (k == 0) {
        r->past_end = true;
        if (!o->quiet)
            fprintf(stderr,
                    "tickcore feed: --from %" PRIu64 " is past the end of %s (%" PRIu64
                    " messages): nothing to send\n",
                    o->from, o->file, f->cur.seq - 1);
    }
    f->t_start = f->last_send_ns = clock_mono_ns();
    f->started = true;
    pace_start(f);
    mold_begin(&f->mb, f->tx, FEED_DGRAM, f->session, o->from);
    int rc = FEED_OK;
    uint64_t next = o->from;
    while (!file_error && next <= f->end_seq && !stopped(f)) {
        const ev_t *e;
        k = cursor_peek(&f->cur, &e, f->err, sizeof f->err);
        if (k < 0)
            file_error = true;
        if (k <= 0)
            break;
        rc = pace_wait(f, udp_flush, udp_service);
        if (rc || stopped(f))
            break;
        if (!mold_add(&f->mb, e->raw, e->raw_len)) {
            rc = udp_flush(f);
            if (rc)
                break;
            if (!mold_add(&f->mb, e->raw, e->raw_len)) {
                snprintf(f->err, sizeof f->err, "message %" PRIu64 " does not fit a datagram",
                         next);
                rc = FEED_FATAL;
                break;
            }
        }
        ring_add(f, next, e->raw, e->raw_len);
        r->messages++;
        r->bytes += e->raw_len;
        f->pace_sent++;
        next++;
        r->next_seq = next;
        cursor_advance(&f->cur);
    }
    char ferr[sizeof f->err];
    if (file_error)
        memcpy(ferr, f->err, sizeof ferr);
    if (rc == FEED_OK)
        rc = udp_flush(f);
    for (int i = 0; rc == FEED_OK && i < FEED_END_PACKETS; i++) {
        size_t n = mold_put_end(f->rtx, FEED_DGRAM, f->session, f->sent_hi);
        rc = udp_sendto(f, f->rtx, n, &o->addr);
    }
    f->udp_ended = true;
    r->seconds = (double)(clock_mono_ns() - f->t_start) * 1e-9;
    if (rc == FEED_OK)
        rc = udp_service(f, clock_mono_ns() + o->linger_ns);
    if (rc == FEED_OK && file_error) {
        memcpy(f->err, ferr, sizeof ferr);
        rc = FEED_FATAL;
    }
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

static int feed_alloc(feed_t *f, char *err, size_t errlen)
{
    f->tx = mem_alloc(MEM_TAG_INGEST, FEED_TX_CAP);
    f->rx = mem_alloc(MEM_TAG_INGEST, FEED_RX_CAP);
    if (!f->tx || !f->rx)
        goto oom;
    if (!f->o->tcp) {
        f->rtx = mem_alloc(MEM_TAG_INGEST, FEED_DGRAM);
        f->ring_cap = (size_t)f->o->retain * ITCH_MAX_MSG + 64;
        f->ring = mem_alloc(MEM_TAG_INGEST, f->ring_cap);
        f->ring_pos = mem_alloc(MEM_TAG_INGEST, (size_t)f->o->retain * sizeof *f->ring_pos);
        f->ring_len = mem_alloc(MEM_TAG_INGEST, (size_t)f->o->retain);
        if (!f->rtx || !f->ring || !f->ring_pos || !f->ring_len)
            goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory for the feed's buffers (--retain %" PRIu64 ")",
             f->o->retain);
    return -1;
}

static void feed_free(feed_t *f)
{
    mem_free(MEM_TAG_INGEST, f->tx, FEED_TX_CAP);
    mem_free(MEM_TAG_INGEST, f->rx, FEED_RX_CAP);
    mem_free(MEM_TAG_INGEST, f->rtx, FEED_DGRAM);
    if (f->ring)
        mem_free(MEM_TAG_INGEST, f->ring, f->ring_cap);
    if (f->ring_pos)
        mem_free(MEM_TAG_INGEST, f->ring_pos, (size_t)f->o->retain * sizeof *f->ring_pos);
    if (f->ring_len)
        mem_free(MEM_TAG_INGEST, f->ring_len, (size_t)f->o->retain);
}

void publish_cfg_default(publish_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    config_default(&c->cfg);
    c->from = 1;
    c->retain = PUBLISH_DEFAULT_RETAIN;
    c->linger_ns = FEED_NS;
    c->rtx_rate = PUBLISH_DEFAULT_RTX_RATE;
}

int publish_run(const publish_cfg_t *o, publish_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->tcp = o->tcp;
    r->target_rate = o->rate;
    feed_t f;
    memset(&f, 0, sizeof f);
    f.o = o;
    f.r = r;
    f.fd = -1;
    f.cur.path = o->file;
    snprintf(f.session, sizeof f.session, "%s", o->session ? o->session : o->cfg.session);

    /* Start-up: everything sized here. */
    char err[600] = "";
    int rc = FEED_OK;
    bool sym_ok = false, stream_ok = false;
    stream_cfg_t scfg;
    pipeline_stream_cfg(&scfg, &o->cfg);
    scfg.format = STREAM_ITCH; /* the feeds carry ITCH 5.0 only */
    if (symtab_init(&f.symbols, o->cfg.max_symbols) < 0)
        snprintf(err, sizeof err, "out of memory for the symbol table");
    else
        sym_ok = true;
    if (sym_ok) {
        if (stream_init(&f.cur.stream, &scfg, &f.symbols) < 0)
            snprintf(err, sizeof err, "%s", f.cur.stream.err);
        else
            stream_ok = true;
    }
    if (stream_ok && feed_alloc(&f, err, sizeof err) == 0 &&
        cursor_open(&f.cur, err, sizeof err) == 0) {
        bool was_sealed = mem_is_sealed();
        static mem_snapshot_t before, after;
        mem_seal();
        mem_snapshot(&before);
        rc = o->tcp ? tcp_run(&f) : udp_run(&f);
        mem_snapshot(&after);
        if (!was_sealed)
            mem_unseal();
        r->allocs = after.total.allocs - before.total.allocs;
        if (rc)
            snprintf(err, sizeof err, "%s", f.err);
        if (o->tcp && f.started)
            r->seconds = (double)(clock_mono_ns() - f.t_start) * 1e-9;
        r->rate = r->seconds > 0 ? (double)r->messages / r->seconds : 0;
        r->interrupted = stopped(&f);
    } else {
        rc = FEED_FATAL;
    }
    if (f.fd >= 0)
        close(f.fd);
    feed_free(&f);
    if (stream_ok)
        stream_fini(&f.cur.stream);
    if (sym_ok)
        symtab_fini(&f.symbols);
    r->status = rc == FEED_OK ? 0 : 1;
    if (r->status)
        snprintf(r->error, sizeof r->error, "%s", err);
    return r->status;
}
