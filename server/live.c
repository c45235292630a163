/*
 * live: see live.h. One io_uring, owned by the serve thread. Each operation's user_data names
 * its kind and slot; a client slot is reused only after every operation on it has completed
 * (shutdown(2) makes a pending receive complete), so a late completion can never land in a
 * buffer that belongs to the next client. A client's receive buffer holds at most one partial
 * packet at its front between receives (whole packets are handled as they arrive and the tail
 * moved down), so live.recv_buffer >= live.max_packet always leaves room to read.
 */
#include "server/live.h"

#include "base/clock.h"
#include "base/fault.h"
#include "base/log.h"
#include "ingest/itch.h"
#include "mem/mem.h"
#include "net/soup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/memcheck.h>

#define TX_BUF 4096
/* A connection not yet logged in holds a small slot: room for one Login Request (49 bytes) and
 * a Login Rejected (4 bytes). The Login Accepted goes out from the session slot it moves to. */
#define PENDING_RX 64
#define PENDING_TX 16

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_UDP };

typedef enum cstate { C_FREE = 0, C_LOGIN, C_ACTIVE, C_CLOSING } cstate_t;

typedef struct live_client {
    int fd;
    cstate_t state;
    unsigned ops; /* operations in flight on this slot */
    bool recv_inflight, send_inflight, end_sent;
    int recv_fault, send_fault; /* -errno the fault seam gave the request in flight, or 0 */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    uint8_t *tx;
    size_t tx_len, tx_sending, tx_cap;
    uint64_t t_connect, t_rx, t_tx, t_partial; /* ns; t_partial: since a partial packet waits */
    uint64_t seq;                              /* sequence number of its next packet */
    uint64_t messages, duplicates;
    char peer[32];
} live_client_t;

static const char *const DROP_NAMES[LIVE_DROP_COUNT] = {
    "garbage",       "protocol",     "bad_login",     "bad_session", "bad_message",
    "login_timeout", "idle_timeout", "disconnect",    "logout",      "send_full",
    "shutdown",      "evicted",      "sessions_full", "refused",
};

const char *live_drop_name(live_drop_t r)
{
    return (unsigned)r < LIVE_DROP_COUNT ? DROP_NAMES[r] : "unknown";
}

/* single-writer counters: a relaxed load and store, no read-modify-write */
#define CADD(field, n)                                                                             \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n),    \
                          memory_order_relaxed)
#define CSET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)

static inline uint64_t ud(enum op op, uint32_t slot)
{
    return ((uint64_t)op << 32) | slot;
}

static struct io_uring_sqe *get_sqe(live_t *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    if (!sqe) {
        io_uring_submit(&l->ring);
        sqe = io_uring_get_sqe(&l->ring);
    }
    return sqe;
}

/* ---- TCP clients -------------------------------------------------------------------------- */

static void submit_accept(live_t *l)
{
    if (l->tcp_fd < 0 || !l->accepting || l->accept_inflight || l->parked_fd >= 0)
        return;
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe)
        return;
    io_uring_prep_accept(sqe, l->tcp_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, 0));
    l->accept_inflight = true;
    l->inflight++;
}

static void submit_recv(live_t *l, uint32_t i)
{
    live_client_t *c = &l->clients[i];
    if (c->recv_inflight || c->state == C_CLOSING || c->state == C_FREE)
        return;
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe)
        return;
    size_t want = c->rx_cap - c->rx_len;
    fault_kind_t k = fault_check(FAULT_TCP_RECV); /* the test seam, decided before the kernel */
    if (k == FAULT_SHORT && want > FAULT_SHORT_RECV)
        want = FAULT_SHORT_RECV;
    c->recv_fault = fault_errno(k);
    if (c->recv_fault)
        io_uring_prep_nop(sqe); /* completes at once; on_recv takes recv_fault as its result */
    else
        io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, want, 0);
    io_uring_sqe_set_data64(sqe, ud(OP_RECV, i));
    c->recv_inflight = true;
    c->ops++;
    l->inflight++;
}

static void submit_send(live_t *l, uint32_t i)
{
    live_client_t *c = &l->clients[i];
    if (c->send_inflight || !c->tx_len || c->state == C_FREE)
        return;
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe)
        return;
    c->tx_sending = c->tx_len;
    fault_kind_t k = fault_check(FAULT_TCP_SEND); /* the test seam, decided before the kernel */
    if (k == FAULT_SHORT && c->tx_sending > 1)
        c->tx_sending /= 2;
    c->send_fault = fault_errno(k);
    if (c->send_fault)
        io_uring_prep_nop(sqe); /* completes at once; on_send takes send_fault as its result */
    else
        io_uring_prep_send(sqe, c->fd, c->tx, c->tx_sending, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, i));
    c->send_inflight = true;
    c->ops++;
    l->inflight++;
}

static void drop_client(live_t *l, uint32_t i, live_drop_t why, const char *detail);

/* Queue one packet (built by put into the client's send buffer) and send it. */
static bool queue_packet(live_t *l, uint32_t i, const uint8_t *pkt, size_t n)
{
    live_client_t *c = &l->clients[i];
    if (c->tx_len + n > c->tx_cap) {
        drop_client(l, i, LIVE_DROP_SEND_FULL, "its send buffer is full");
        return false;
    }
    memcpy(c->tx + c->tx_len, pkt, n);
    c->tx_len += n;
    c->t_tx = clock_mono_ns();
    submit_send(l, i);
    return true;
}

static bool is_pending_slot(const live_t *l, uint32_t i)
{
    return i >= l->cfg.max_clients;
}

static void place(live_t *l, uint32_t slot, int fd, const char *name);

/* A slot whose operations have all ended is free again; a parked connection takes a free
 * pending slot at once, and the accept is re-armed. */
static void free_slot(live_t *l, uint32_t i)
{
    live_client_t *c = &l->clients[i];
    c->fd = -1;
    c->state = C_FREE;
    c->rx_len = c->tx_len = c->tx_sending = 0;
    if (is_pending_slot(l, i)) {
        CADD(l->c.tcp_pending, (uint64_t)-1);
        if (l->parked_fd >= 0) {
            int fd = l->parked_fd;
            l->parked_fd = -1;
            place(l, i, fd, l->parked_peer);
        }
    }
    submit_accept(l); /* a slot is free again */
}

static void release_if_done(live_t *l, uint32_t i)
{
    live_client_t *c = &l->clients[i];
    if (c->state != C_CLOSING || c->ops)
        return;
    close(c->fd);
    CADD(l->c.tcp_active, (uint64_t)-1);
    free_slot(l, i);
}

static void drop_client(live_t *l, uint32_t i, live_drop_t why, const char *detail)
{
    live_client_t *c = &l->clients[i];
    if (c->state == C_CLOSING || c->state == C_FREE)
        return;
    uint64_t nth = atomic_load_explicit(&l->c.drops[why], memory_order_relaxed);
    CADD(l->c.drops[why], 1);
    bool flood = why == LIVE_DROP_EVICTED || why == LIVE_DROP_LOGIN_TIMEOUT;
    if (flood && nth >= 10 && (nth & (nth - 1)) != 0) {
        /* connections that never log in come in floods: the first ones, then powers of two */
    } else if (flood)
        log_msg("serve: tcp %s: dropped (%s): %s (%llu so far)", c->peer, live_drop_name(why),
                detail ? detail : "", (unsigned long long)nth + 1);
    else if (why == LIVE_DROP_LOGOUT || why == LIVE_DROP_SHUTDOWN)
        log_msg("serve: tcp %s: session ended (%s) after %llu messages (%llu duplicates)", c->peer,
                live_drop_name(why), (unsigned long long)c->messages,
                (unsigned long long)c->duplicates);
    else
        log_msg("serve: tcp %s: dropped (%s): %s; %llu messages taken from it", c->peer,
                live_drop_name(why), detail ? detail : "", (unsigned long long)c->messages);
    c->state = C_CLOSING;
    /* The pending receive completes (0) once the read side is shut; a packet still being sent (a
     * Login Rejected, an End of Session) goes out first, then the write side is shut too. A drop
     * with nothing to say is an abort: the close resets the connection (SO_LINGER 0) instead of
     * ending it in order, because a publisher that has handed all it had to its kernel reads an
     * orderly close as the answer to its Logout Request (SoupBinTCP has no other) and would
     * exit 0 with what this server never read lost (tests/fault_sweep.py, econnreset@3/tcp_recv).
     * Only a logout and a shutdown (the drain read what had arrived) end in order. */
    bool orderly = c->tx_len || why == LIVE_DROP_LOGOUT || why == LIVE_DROP_SHUTDOWN;
    if (!orderly) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    shutdown(c->fd, orderly && !c->tx_len ? SHUT_RDWR : SHUT_RD);
    release_if_done(l, i);
}

/* A new connection into free pending slot `slot`: it has live.login_timeout to log in. */
static void place(live_t *l, uint32_t slot, int fd, const char *name)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    live_client_t *c = &l->clients[slot];
    c->fd = fd;
    c->state = C_LOGIN;
    c->ops = 0;
    c->recv_inflight = c->send_inflight = c->end_sent = false;
    c->rx_len = c->tx_len = c->tx_sending = 0;
    c->t_connect = c->t_rx = c->t_tx = clock_mono_ns();
    c->t_partial = 0;
    c->messages = c->duplicates = 0;
    snprintf(c->peer, sizeof c->peer, "%s", name);
    CADD(l->c.tcp_accepted, 1);
    CADD(l->c.tcp_active, 1);
    CADD(l->c.tcp_pending, 1);
    submit_recv(l, slot);
}

/* Connections that have not logged in live apart from the sessions, in live.max_pending slots.
 * When those are full, the one waiting longest is closed (evicted) and the new one waits, parked,
 * until its slot is free (a moment: the evicted receive completes at once); the accept is not
 * re-armed meanwhile, so further connections wait in the kernel's backlog. Silent connections so
 * cost a newcomer nothing but the eviction of the oldest of them, and a real publisher, which
 * logs in as soon as it connects, is never the oldest for long. */
static void on_accept(live_t *l, int res)
{
    l->accept_inflight = false;
    if (res >= 0 && fault_check(FAULT_TCP_ACCEPT) != FAULT_NONE) { /* the test seam */
        close(res);
        res = -ECONNABORTED;
    }
    if (res < 0) {
        if (res != -ECANCELED && res != -EBADF && res != -EINVAL)
            log_msg("serve: accept: %s", strerror(-res));
        submit_accept(l);
        return;
    }
    int fd = res;
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    char name[32] = "?";
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &peer.sin_addr, a, sizeof a);
        snprintf(name, sizeof name, "%s:%u", a, ntohs(peer.sin_port));
    }
    if (!l->accepting) {
        close(fd);
        return;
    }
    uint32_t n = l->cfg.max_clients + l->cfg.max_pending, slot = UINT32_MAX, oldest = UINT32_MAX;
    for (uint32_t i = l->cfg.max_clients; i < n; i++) {
        const live_client_t *c = &l->clients[i];
        if (c->state == C_FREE) {
            slot = i;
            break;
        }
        if (c->state == C_LOGIN &&
            (oldest == UINT32_MAX || c->t_connect < l->clients[oldest].t_connect))
            oldest = i;
    }
    if (slot != UINT32_MAX) {
        place(l, slot, fd, name);
        submit_accept(l);
        return;
    }
    l->parked_fd = fd;
    snprintf(l->parked_peer, sizeof l->parked_peer, "%s", name);
    if (oldest != UINT32_MAX) {
        char d[96];
        snprintf(d, sizeof d, "not logged in after %.3f s and %u others wait (live.max_pending)",
                 (double)(clock_mono_ns() - l->clients[oldest].t_connect) * 1e-9,
                 l->cfg.max_pending);
        drop_client(l, oldest, LIVE_DROP_EVICTED, d);
    }
}

/* The next sequence number a Login Accepted names. */
static uint64_t live_ack_seq(live_t *l)
{
    if (!l->ack)
        return l->next_seq;
    uint64_t a = l->ack(l->ctx);
    return a < l->next_seq ? a : l->next_seq;
}

/* One message of the stream from anywhere: deliver it if it is the next one. */
static bool offer(live_t *l, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    if (seq != l->next_seq)
        return false;
    l->deliver(l->ctx, seq, msg, len);
    l->next_seq++;
    CSET(l->c.next_seq, l->next_seq);
    CADD(l->c.delivered, 1);
    return true;
}

/* A Login Request on pending slot i. Accepted: the connection moves to a free session slot
 * (returned; the pending slot is free again). Otherwise it is dropped: UINT32_MAX. */
static uint32_t on_login(live_t *l, uint32_t i, const soup_packet_t *p, const uint8_t *rest,
                         size_t nrest)
{
    live_client_t *c = &l->clients[i];
    soup_login_t lg;
    char err[160];
    uint8_t pkt[64];
    if (soup_login_parse(p, &lg, err, sizeof err) < 0) {
        drop_client(l, i, LIVE_DROP_PROTOCOL, err);
        return UINT32_MAX;
    }
    if (strcmp(lg.username, l->cfg.username) || strcmp(lg.password, l->cfg.password)) {
        CADD(l->c.tcp_rejected, 1);
        size_t n = soup_put_rejected(pkt, sizeof pkt, 'A');
        if (queue_packet(l, i, pkt, n)) {
            snprintf(err, sizeof err, "login rejected: user '%s': not authorized", lg.username);
            drop_client(l, i, LIVE_DROP_BAD_LOGIN, err);
        }
        return UINT32_MAX;
    }
    if (lg.session[0] && strcmp(lg.session, l->cfg.session)) {
        CADD(l->c.tcp_rejected, 1);
        size_t n = soup_put_rejected(pkt, sizeof pkt, 'S');
        if (queue_packet(l, i, pkt, n)) {
            snprintf(err, sizeof err, "login rejected: session '%s' is not '%s'", lg.session,
                     l->cfg.session);
            drop_client(l, i, LIVE_DROP_BAD_SESSION, err);
        }
        return UINT32_MAX;
    }
    if (l->refusing) {
        CADD(l->c.tcp_rejected, 1);
        size_t n = soup_put_rejected(pkt, sizeof pkt, 'S');
        if (queue_packet(l, i, pkt, n)) {
            snprintf(err, sizeof err, "login rejected: the server takes no more data: %.100s",
                     l->refuse_reason);
            drop_client(l, i, LIVE_DROP_REFUSED, err);
        }
        return UINT32_MAX;
    }
    uint32_t j = 0;
    while (j < l->cfg.max_clients && l->clients[j].state != C_FREE)
        j++;
    if (j == l->cfg.max_clients) {
        CADD(l->c.tcp_rejected, 1);
        size_t n = soup_put_rejected(pkt, sizeof pkt, 'S');
        if (queue_packet(l, i, pkt, n)) {
            snprintf(err, sizeof err,
                     "login rejected: %u sessions already logged in "
                     "(live.max_clients)",
                     l->cfg.max_clients);
            drop_client(l, i, LIVE_DROP_SESSIONS_FULL, err);
        }
        return UINT32_MAX;
    }
    /* the connection moves: its fd, name and times; nothing is in flight on the pending slot
     * (its receive just completed; it sent nothing) */
    live_client_t *s = &l->clients[j];
    s->fd = c->fd;
    s->ops = 0;
    s->recv_inflight = s->send_inflight = s->end_sent = false;
    s->rx_len = s->tx_len = s->tx_sending = 0;
    s->t_connect = c->t_connect;
    s->t_rx = c->t_rx;
    s->t_partial = 0;
    s->messages = s->duplicates = 0;
    memcpy(s->peer, c->peer, sizeof s->peer);
    memcpy(s->rx, rest, nrest); /* what came after the login goes on in the session's buffer */
    s->rx_len = nrest;
    s->state = C_ACTIVE;
    free_slot(l, i);
    uint64_t next = live_ack_seq(l);
    size_t n = soup_put_accepted(pkt, sizeof pkt, l->cfg.session, next);
    if (!queue_packet(l, j, pkt, n))
        return UINT32_MAX;
    s->seq = next;
    CADD(l->c.tcp_logins, 1);
    log_msg("serve: tcp %s: logged in as '%s', session %s, next sequence number %llu", s->peer,
            lg.username, l->cfg.session, (unsigned long long)next);
    return j;
}

/* Whole packets at the front of the client's buffer. Returns the slot to receive on next (a
 * login moves the connection to a session slot), or UINT32_MAX if the client was dropped. */
static uint32_t handle_packets(live_t *l, uint32_t i)
{
    live_client_t *c = &l->clients[i];
    size_t off = 0;
    char err[160];
    while (off < c->rx_len && c->state != C_CLOSING) {
        soup_packet_t p;
        size_t maxp = c->state == C_LOGIN ? c->rx_cap : l->cfg.max_packet;
        int r = soup_parse(c->rx + off, c->rx_len - off, maxp, &p, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0) {
            char d[220];
            snprintf(d, sizeof d, "at byte %llu of its stream: %s", (unsigned long long)(off), err);
            drop_client(l, i, LIVE_DROP_GARBAGE, d);
            return UINT32_MAX;
        }
        off += (size_t)r;
        CADD(l->c.tcp_packets, 1);
        if (c->state == C_LOGIN) {
            if (p.type != SOUP_LOGIN_REQUEST) {
                snprintf(err, sizeof err, "a %s packet before its login request",
                         soup_type_name(p.type));
                drop_client(l, i, LIVE_DROP_PROTOCOL, err);
                return UINT32_MAX;
            }
            uint32_t j = on_login(l, i, &p, c->rx + off, c->rx_len - off);
            return j == UINT32_MAX ? UINT32_MAX : handle_packets(l, j);
        }
        switch (p.type) {
        case SOUP_SEQUENCED: {
            if (p.len == 0 || p.len > ITCH_MAX_MSG || itch_msg_len[p.payload[0]] != p.len) {
                snprintf(err, sizeof err,
                         "sequenced packet %llu is not an ITCH 5.0 message (type 0x%02x, %u "
                         "bytes, expected %u)",
                         (unsigned long long)c->seq, p.len ? p.payload[0] : 0, p.len,
                         p.len ? itch_msg_len[p.payload[0]] : 0);
                drop_client(l, i, LIVE_DROP_BAD_MESSAGE, err);
                return UINT32_MAX;
            }
            if (offer(l, c->seq, p.payload, p.len)) {
                c->messages++;
                CADD(l->c.tcp_messages, 1);
            } else {
                c->duplicates++;
                CADD(l->c.tcp_duplicates, 1);
            }
            c->seq++;
            break;
        }
        case SOUP_CLIENT_HEARTBEAT:
            CADD(l->c.tcp_heartbeats_in, 1);
            break;
        case SOUP_LOGOUT_REQUEST:
            /* answered once what it sent is durable; a failed sync refuses (live_refuse sends
             * the reason and drops the client) */
            if (l->sync && l->sync(l->ctx) < 0) {
                if (c->state == C_ACTIVE)
                    drop_client(l, i, LIVE_DROP_REFUSED, l->refuse_reason);
            } else if (c->state == C_ACTIVE) {
                drop_client(l, i, LIVE_DROP_LOGOUT, NULL);
            }
            return UINT32_MAX;
        case SOUP_DEBUG:
        case SOUP_UNSEQUENCED:
            break;
        default:
            snprintf(err, sizeof err, "a %s packet from a logged-in publisher",
                     soup_type_name(p.type));
            drop_client(l, i, LIVE_DROP_PROTOCOL, err);
            return UINT32_MAX;
        }
    }
    if (off && off < c->rx_len)
        memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
    if (c->rx_len == 0)
        c->t_partial = 0;
    else if (off || !c->t_partial)
        c->t_partial = clock_mono_ns();
    if (c->state == C_CLOSING)
        return UINT32_MAX;
    if (c->state == C_LOGIN && c->rx_len == c->rx_cap) { /* cannot happen: maxp above */
        drop_client(l, i, LIVE_DROP_GARBAGE, "a first packet longer than a login request");
        return UINT32_MAX;
    }
    return i;
}

static void on_recv(live_t *l, uint32_t i, int res)
{
    live_client_t *c = &l->clients[i];
    c->recv_inflight = false;
    c->ops--;
    if (c->recv_fault) {
        res = c->recv_fault;
        c->recv_fault = 0;
    }
    if (c->state == C_CLOSING) {
        release_if_done(l, i);
        return;
    }
    if (res == -EINTR || res == -EAGAIN) { /* nothing was read: again */
        submit_recv(l, i);
        return;
    }
    if (res <= 0) {
        char d[96];
        snprintf(d, sizeof d, "%s%s", res == 0 ? "closed by the peer" : strerror(-res),
                 c->rx_len ? " in the middle of a packet" : "");
        drop_client(l, i, LIVE_DROP_DISCONNECT, d);
        return;
    }
    /* the kernel wrote these bytes: memcheck cannot see io_uring's writes */
    (void)VALGRIND_MAKE_MEM_DEFINED(c->rx + c->rx_len, (size_t)res);
    c->t_rx = clock_mono_ns();
    CADD(l->c.tcp_bytes, (uint64_t)res);
    c->rx_len += (size_t)res;
    uint32_t next = handle_packets(l, i);
    if (next != UINT32_MAX)
        submit_recv(l, next);
}

static void on_send(live_t *l, uint32_t i, int res)
{
    live_client_t *c = &l->clients[i];
    c->send_inflight = false;
    c->ops--;
    if (c->send_fault) {
        res = c->send_fault;
        c->send_fault = 0;
    }
    if (res == -EINTR || res == -EAGAIN) { /* nothing was sent: again, the same bytes */
        c->tx_sending = 0;
        submit_send(l, i);
        if (c->state == C_CLOSING && !c->send_inflight) { /* not resubmitted: end as below */
            shutdown(c->fd, SHUT_RDWR);
            release_if_done(l, i);
        }
        return;
    }
    if (res > 0) {
        size_t done = (size_t)res;
        if (done > c->tx_sending)
            done = c->tx_sending;
        memmove(c->tx, c->tx + done, c->tx_len - done);
        c->tx_len -= done;
    } else if (c->state != C_CLOSING) {
        c->tx_len = 0;
        drop_client(l, i, LIVE_DROP_DISCONNECT, res ? strerror(-res) : "send returned 0");
        return;
    } else {
        c->tx_len = 0;
    }
    c->tx_sending = 0;
    if (c->state == C_CLOSING) {
        if (c->tx_len && res > 0) {
            submit_send(l, i); /* the rest of the last packets */
            return;
        }
        shutdown(c->fd, SHUT_RDWR);
        release_if_done(l, i);
        return;
    }
    submit_send(l, i);
}

/* ---- UDP ---------------------------------------------------------------------------------- */

static void submit_udp(live_t *l, uint32_t b)
{
    struct io_uring_sqe *sqe = get_sqe(l);
    if (!sqe)
        return;
    struct msghdr *m = &l->dgram_msg[b];
    memset(m, 0, sizeof *m);
    l->dgram_iov[b].iov_base = l->dgram_mem + (size_t)b * l->cfg.udp_buffer_size;
    l->dgram_iov[b].iov_len = l->cfg.udp_buffer_size;
    m->msg_iov = &l->dgram_iov[b];
    m->msg_iovlen = 1;
    m->msg_name = &l->dgram_from[b];
    m->msg_namelen = sizeof l->dgram_from[b];
    io_uring_prep_recvmsg(sqe, l->udp_fd, m, 0);
    io_uring_sqe_set_data64(sqe, ud(OP_UDP, b));
    l->inflight++;
}

static void mold_deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    live_t *l = ctx;
    if (offer(l, seq, msg, len))
        CADD(l->c.udp_messages, 1);
    else
        l->udp_offer_dups++;
}

static void mold_lost(void *ctx, uint64_t from, uint64_t count)
{
    live_t *l = ctx;
    log_msg("serve: udp: sequence numbers %llu..%llu (%llu messages) lost: not retransmitted "
            "within live.gap_timeout; going on without them",
            (unsigned long long)from, (unsigned long long)(from + count - 1),
            (unsigned long long)count);
    if (from == l->next_seq) {
        l->next_seq = from + count;
        CSET(l->c.next_seq, l->next_seq);
    }
    if (l->lost)
        l->lost(l->ctx, from, count);
}

static void sync_mold(live_t *l)
{
    mold_rx_t *rx = &l->mold;
    /* duplicates: copies the receiver dropped (below the next sequence, e.g. taken over TCP) */
    CSET(l->c.udp_duplicates, rx->duplicates + l->udp_offer_dups);
    CSET(l->c.udp_gaps, rx->gaps);
    CSET(l->c.udp_recovered, rx->recovered);
    CSET(l->c.udp_lost_gaps, l->lost_gaps0 + rx->lost_gaps);
    CSET(l->c.udp_lost_messages, l->lost_messages0 + rx->lost_messages);
    CSET(l->c.udp_held_peak, rx->held_peak_bytes);
    CSET(l->c.udp_store_full, rx->store_full);
    CSET(l->c.udp_heartbeats, rx->heartbeats);
    CSET(l->c.udp_end_of_session, rx->end_of_session);
}

static void on_udp(live_t *l, uint32_t b, int res)
{
    l->inflight--;
    if (!l->accepting)
        return; /* stopping: the receive was cancelled or woken by shutdown(2) */
    if (res < 0) {
        if (res != -ECANCELED && l->accepting)
            log_msg("serve: udp: receive: %s", strerror(-res));
        if (l->accepting && res != -ECANCELED)
            submit_udp(l, b);
        return;
    }
    const uint8_t *pkt = l->dgram_mem + (size_t)b * l->cfg.udp_buffer_size;
    (void)VALGRIND_MAKE_MEM_DEFINED(pkt, (size_t)res); /* written by the kernel (io_uring) */
    (void)VALGRIND_MAKE_MEM_DEFINED(&l->dgram_from[b], sizeof l->dgram_from[b]);
    (void)VALGRIND_MAKE_MEM_DEFINED(&l->dgram_msg[b], sizeof l->dgram_msg[b]);
    CADD(l->c.udp_datagrams, 1);
    CADD(l->c.udp_bytes, (uint64_t)res);
    char err[160], from[32];
    struct sockaddr_in *src = &l->dgram_from[b];
    if ((ntohl(src->sin_addr.s_addr) & l->udp_allow_mask) != l->udp_allow_net) {
        /* not from live.udp_allow: dropped before parsing, never a re-request target */
        uint64_t bad = atomic_load_explicit(&l->c.udp_foreign, memory_order_relaxed);
        CADD(l->c.udp_foreign, 1);
        if (bad < 10 || (bad & (bad - 1)) == 0) { /* the first ones, then powers of two */
            inet_ntop(AF_INET, &src->sin_addr, from, sizeof from);
            log_msg("serve: udp %s:%u: sender not in live.udp_allow %s: datagram dropped (%llu "
                    "so far)",
                    from, ntohs(src->sin_port), l->cfg.udp_allow, (unsigned long long)bad + 1);
        }
    } else if (l->dgram_msg[b].msg_flags & MSG_TRUNC) {
        CADD(l->c.udp_truncated, 1);
        inet_ntop(AF_INET, &src->sin_addr, from, sizeof from);
        log_msg("serve: udp %s:%u: datagram larger than live.udp_buffer_size (%llu): dropped", from,
                ntohs(src->sin_port), (unsigned long long)l->cfg.udp_buffer_size);
    } else {
        mold_header_t h;
        if (mold_parse(pkt, (size_t)res, &h, err, sizeof err) < 0) {
            uint64_t bad = atomic_load_explicit(&l->c.udp_bad, memory_order_relaxed);
            CADD(l->c.udp_bad, 1);
            if (bad < 10 || (bad & (bad - 1)) == 0) { /* the first ones, then powers of two */
                inet_ntop(AF_INET, &src->sin_addr, from, sizeof from);
                log_msg("serve: udp %s:%u: not a MoldUDP64 packet (%d bytes): %s (%llu so far)",
                        from, ntohs(src->sin_port), res, err, (unsigned long long)bad + 1);
            }
        } else if (strcmp(h.session, l->cfg.session)) {
            uint64_t bad = atomic_load_explicit(&l->c.udp_wrong_session, memory_order_relaxed);
            CADD(l->c.udp_wrong_session, 1);
            if (bad < 10 || (bad & (bad - 1)) == 0)
                log_msg("serve: udp: packet of session '%s', not '%s': dropped", h.session,
                        l->cfg.session);
        } else if (!l->refusing) {
            l->mold_source = *src;
            l->have_source = true;
            mold_rx_set_next(&l->mold, l->next_seq);
            mold_rx_packet(&l->mold, &h, pkt, (size_t)res, clock_mono_ns(), mold_deliver, mold_lost,
                           l);
            sync_mold(l);
        }
    }
    if (l->accepting)
        submit_udp(l, b);
}

/* ---- timers ------------------------------------------------------------------------------- */

static void timers(live_t *l, uint64_t t)
{
    for (uint32_t i = 0; l->clients && i < l->cfg.max_clients + l->cfg.max_pending; i++) {
        live_client_t *c = &l->clients[i];
        if (c->state == C_FREE || c->state == C_CLOSING)
            continue;
        char d[120];
        if (c->state == C_LOGIN && t - c->t_connect > l->cfg.login_timeout_ns) {
            snprintf(d, sizeof d, "no login request within %.1f s",
                     (double)l->cfg.login_timeout_ns * 1e-9);
            drop_client(l, i, LIVE_DROP_LOGIN_TIMEOUT, d);
            continue;
        }
        if (t - c->t_rx > l->cfg.idle_timeout_ns ||
            (c->t_partial && t - c->t_partial > l->cfg.idle_timeout_ns)) {
            snprintf(d, sizeof d, "%s for %.1f s (live.idle_timeout)",
                     c->t_partial ? "stalled in the middle of a packet" : "silent",
                     (double)(t - (c->t_partial ? c->t_partial : c->t_rx)) * 1e-9);
            drop_client(l, i, LIVE_DROP_IDLE, d);
            continue;
        }
        if (c->state == C_ACTIVE && t - c->t_tx >= l->cfg.heartbeat_ns) {
            uint8_t pkt[8];
            size_t n = soup_put_empty(pkt, sizeof pkt, SOUP_SERVER_HEARTBEAT);
            if (queue_packet(l, i, pkt, n))
                CADD(l->c.tcp_heartbeats_out, 1);
        }
    }
    if (l->mold_ok) {
        mold_rx_set_next(&l->mold, l->next_seq);
        mold_rx_tick(&l->mold, t, mold_deliver, mold_lost, l);
        uint64_t seq[64];
        uint16_t count[64];
        size_t n = l->have_source && l->accepting ? mold_rx_wants(&l->mold, t, seq, count, 64) : 0;
        for (size_t k = 0; k < n; k++) {
            size_t len =
                mold_put_request(l->req_buf, sizeof l->req_buf, l->cfg.session, seq[k], count[k]);
            /* rare: a plain sendto, not worth a ring slot */
            if (len && sendto(l->udp_fd, l->req_buf, len, MSG_DONTWAIT,
                              (struct sockaddr *)&l->mold_source, sizeof l->mold_source) > 0)
                CADD(l->c.udp_rerequests, 1);
        }
        sync_mold(l);
    }
}

/* ---- set-up ------------------------------------------------------------------------------- */

static int open_socket(int type, const char *addr, uint32_t cfg_port, uint16_t *bound, char *err,
                       size_t errlen)
{
    uint16_t port = cfg_port == LIVE_PORT_ANY ? 0 : (uint16_t)cfg_port;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (type == SOCK_DGRAM) {
        /* A deep kernel queue absorbs bursts while the loop is busy. SO_RCVBUF is capped by
         * net.core.rmem_max (often 208 KiB); SO_RCVBUFFORCE (root) is not. */
        int sz = 32 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)) {
        int e = errno;
        snprintf(err, errlen, "%s %s:%u: %s", type == SOCK_STREAM ? "tcp" : "udp", addr, port,
                 strerror(e));
        close(fd);
        return -e;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *bound = ntohs(sa.sin_port);
    return fd;
}

static size_t rx_bytes(const config_t *cfg)
{
    return cfg->max_clients * cfg->recv_buffer + (size_t)cfg->max_pending * PENDING_RX;
}

static size_t tx_bytes(const config_t *cfg)
{
    return (size_t)cfg->max_clients * TX_BUF + (size_t)cfg->max_pending * PENDING_TX;
}

int live_init(live_t *l, const config_t *cfg, uint64_t next_seq, live_deliver_fn *deliver,
              live_lost_fn *lost, void *ctx, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    l->tcp_fd = l->udp_fd = l->parked_fd = -1;
    l->next_seq = next_seq ? next_seq : 1;
    CSET(l->c.next_seq, l->next_seq);
    l->deliver = deliver;
    l->lost = lost;
    l->ctx = ctx;
    if (cfg->recv_buffer < cfg->max_packet) {
        snprintf(err, errlen, "live.recv_buffer (%llu) must hold live.max_packet (%llu)",
                 (unsigned long long)cfg->recv_buffer, (unsigned long long)cfg->max_packet);
        return -EINVAL;
    }
    char why[160];
    if (config_cidr(cfg->udp_allow, &l->udp_allow_net, &l->udp_allow_mask, why, sizeof why) < 0) {
        snprintf(err, errlen, "live.udp_allow: %s", why);
        return -EINVAL;
    }
    unsigned nudp = cfg->udp_port ? cfg->udp_buffers : 0;
    unsigned depth = 8;
    uint32_t nslots = cfg->max_clients + cfg->max_pending;
    while (depth < 2 * nslots + nudp + 16)
        depth <<= 1;
    int rc = io_uring_queue_init(depth, &l->ring, 0);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init(%u): %s", depth, strerror(-rc));
        return rc;
    }
    l->ring_ok = true;
    if (cfg->tcp_port) {
        l->clients = mem_calloc(MEM_TAG_SERVER, nslots, sizeof *l->clients);
        l->rx_mem = mem_alloc_prefault(MEM_TAG_SERVER, rx_bytes(cfg), 64);
        l->tx_mem = mem_alloc(MEM_TAG_SERVER, tx_bytes(cfg));
        if (!l->clients || !l->rx_mem || !l->tx_mem) {
            snprintf(err, errlen, "live: out of memory for %u clients", cfg->max_clients);
            live_fini(l);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < nslots; i++) {
            live_client_t *c = &l->clients[i];
            bool sess = i < cfg->max_clients;
            uint32_t k = sess ? i : i - cfg->max_clients;
            size_t rx0 = sess ? 0 : cfg->max_clients * cfg->recv_buffer;
            size_t tx0 = sess ? 0 : (size_t)cfg->max_clients * TX_BUF;
            c->fd = -1;
            c->rx_cap = sess ? cfg->recv_buffer : PENDING_RX;
            c->tx_cap = sess ? TX_BUF : PENDING_TX;
            c->rx = l->rx_mem + rx0 + (size_t)k * c->rx_cap;
            c->tx = l->tx_mem + tx0 + (size_t)k * c->tx_cap;
        }
        rc = open_socket(SOCK_STREAM, cfg->tcp_addr, cfg->tcp_port, &l->tcp_port, err, errlen);
        if (rc < 0) {
            live_fini(l);
            return rc;
        }
        l->tcp_fd = rc;
    }
    if (cfg->udp_port) {
        size_t nb = cfg->udp_buffers;
        l->dgram_mem = mem_alloc_prefault(MEM_TAG_SERVER, nb * cfg->udp_buffer_size, 64);
        l->dgram_msg = mem_calloc(MEM_TAG_SERVER, nb, sizeof *l->dgram_msg);
        l->dgram_iov = mem_calloc(MEM_TAG_SERVER, nb, sizeof *l->dgram_iov);
        l->dgram_from = mem_calloc(MEM_TAG_SERVER, nb, sizeof *l->dgram_from);
        if (!l->dgram_mem || !l->dgram_msg || !l->dgram_iov || !l->dgram_from) {
            snprintf(err, errlen, "live: out of memory for %zu datagram buffers", nb);
            live_fini(l);
            return -ENOMEM;
        }
        mold_rx_cfg_t mc = {.store_bytes = cfg->reorder_store,
                            .gap_timeout_ns = cfg->gap_timeout_ns,
                            .rerequest_ns = cfg->rerequest_ns};
        rc = mold_rx_init(&l->mold, &mc, l->next_seq);
        if (rc < 0) {
            snprintf(err, errlen, "live: MoldUDP64 reorder store of %llu bytes: %s",
                     (unsigned long long)cfg->reorder_store, strerror(-rc));
            live_fini(l);
            return rc;
        }
        l->mold_ok = true;
        rc = open_socket(SOCK_DGRAM, cfg->udp_addr, cfg->udp_port, &l->udp_port, err, errlen);
        if (rc < 0) {
            live_fini(l);
            return rc;
        }
        l->udp_fd = rc;
    }
    l->accepting = true;
    submit_accept(l);
    for (uint32_t b = 0; b < nudp; b++)
        submit_udp(l, b);
    io_uring_submit(&l->ring);
    return 0;
}

int live_poll(live_t *l, uint64_t timeout_ns)
{
    uint64_t before = atomic_load_explicit(&l->c.delivered, memory_order_relaxed);
    struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000ull),
                                   .tv_nsec = (long long)(timeout_ns % 1000000000ull)};
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, timeout_ns ? &ts : NULL, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    for (int round = 0; round < 64; round++) {
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&l->ring, head, cqe)
        {
            seen++;
            uint64_t u = io_uring_cqe_get_data64(cqe);
            uint32_t slot = (uint32_t)u;
            int res = cqe->res;
            switch ((enum op)(u >> 32)) {
            case OP_ACCEPT:
                l->inflight--;
                on_accept(l, res);
                break;
            case OP_RECV:
                l->inflight--;
                on_recv(l, slot, res);
                break;
            case OP_SEND:
                l->inflight--;
                on_send(l, slot, res);
                break;
            case OP_UDP:
                on_udp(l, slot, res);
                break;
            }
        }
        io_uring_cq_advance(&l->ring, seen);
        if (!seen)
            break;
        io_uring_submit(&l->ring);
    }
    timers(l, clock_mono_ns());
    io_uring_submit(&l->ring);
    return (int)(atomic_load_explicit(&l->c.delivered, memory_order_relaxed) - before);
}

void live_stop(live_t *l)
{
    if (!l->accepting)
        return;
    l->accepting = false;
    if (l->tcp_fd >= 0) {
        shutdown(l->tcp_fd, SHUT_RDWR); /* the pending accept completes */
    }
    if (l->udp_fd >= 0)
        shutdown(l->udp_fd, SHUT_RDWR);
    if (l->parked_fd >= 0) {
        close(l->parked_fd);
        l->parked_fd = -1;
    }
    for (uint32_t i = 0; l->clients && i < l->cfg.max_clients + l->cfg.max_pending; i++) {
        live_client_t *c = &l->clients[i];
        if (c->state == C_ACTIVE) {
            uint8_t pkt[8];
            size_t n = soup_put_empty(pkt, sizeof pkt, SOUP_END_OF_SESSION);
            queue_packet(l, i, pkt, n);
        }
        drop_client(l, i, LIVE_DROP_SHUTDOWN, NULL);
    }
    /* datagram receives: cancel them all */
    if (l->udp_fd >= 0) {
        struct io_uring_sqe *sqe = get_sqe(l);
        if (sqe) {
            io_uring_prep_cancel_fd(sqe, l->udp_fd, IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(sqe, 0);
        }
    }
    io_uring_submit(&l->ring);
}

void live_refuse(live_t *l, const char *reason)
{
    if (l->refusing)
        return;
    l->refusing = true;
    snprintf(l->refuse_reason, sizeof l->refuse_reason, "%s", reason);
    for (uint32_t i = 0; l->clients && i < l->cfg.max_clients; i++) {
        if (l->clients[i].state != C_ACTIVE)
            continue;
        uint8_t pkt[256];
        char text[220];
        int tn = snprintf(text, sizeof text, "no more data taken: %s", reason);
        size_t n =
            soup_put_packet(pkt, sizeof pkt, SOUP_DEBUG, (const uint8_t *)text,
                            tn > 0 && (size_t)tn < sizeof text ? (size_t)tn : sizeof text - 1);
        n += soup_put_empty(pkt + n, sizeof pkt - n, SOUP_END_OF_SESSION);
        if (queue_packet(l, i, pkt, n))
            drop_client(l, i, LIVE_DROP_REFUSED, text);
    }
    io_uring_submit(&l->ring);
}

void live_restore_lost(live_t *l, uint64_t gaps, uint64_t messages)
{
    l->lost_gaps0 = gaps;
    l->lost_messages0 = messages;
    CSET(l->c.udp_lost_gaps, gaps + (l->mold_ok ? l->mold.lost_gaps : 0));
    CSET(l->c.udp_lost_messages, messages + (l->mold_ok ? l->mold.lost_messages : 0));
}

bool live_idle(const live_t *l)
{
    return l->inflight == 0;
}

void live_fini(live_t *l)
{
    if (l->ring_ok) {
        if (l->accepting)
            live_stop(l);
        /* wait (bounded) for the operations in flight, then the ring goes */
        for (int i = 0; i < 200 && l->inflight; i++)
            live_poll(l, 10000000ull);
        io_uring_queue_exit(&l->ring);
        l->ring_ok = false;
    }
    for (uint32_t i = 0; l->clients && i < l->cfg.max_clients + l->cfg.max_pending; i++)
        if (l->clients[i].fd >= 0)
            close(l->clients[i].fd);
    if (l->parked_fd >= 0)
        close(l->parked_fd);
    l->parked_fd = -1;
    if (l->tcp_fd >= 0)
        close(l->tcp_fd);
    if (l->udp_fd >= 0)
        close(l->udp_fd);
    l->tcp_fd = l->udp_fd = -1;
    if (l->mold_ok)
        mold_rx_fini(&l->mold);
    l->mold_ok = false;
    size_t nc = (size_t)l->cfg.max_clients + l->cfg.max_pending, nb = l->cfg.udp_buffers;
    if (l->clients)
        mem_free(MEM_TAG_SERVER, l->clients, nc * sizeof *l->clients);
    if (l->rx_mem)
        mem_free(MEM_TAG_SERVER, l->rx_mem, rx_bytes(&l->cfg));
    if (l->tx_mem)
        mem_free(MEM_TAG_SERVER, l->tx_mem, tx_bytes(&l->cfg));
    if (l->dgram_mem)
        mem_free(MEM_TAG_SERVER, l->dgram_mem, nb * l->cfg.udp_buffer_size);
    if (l->dgram_msg)
        mem_free(MEM_TAG_SERVER, l->dgram_msg, nb * sizeof *l->dgram_msg);
    if (l->dgram_iov)
        mem_free(MEM_TAG_SERVER, l->dgram_iov, nb * sizeof *l->dgram_iov);
    if (l->dgram_from)
        mem_free(MEM_TAG_SERVER, l->dgram_from, nb * sizeof *l->dgram_from);
    l->clients = NULL;
    l->rx_mem = l->tx_mem = l->dgram_mem = NULL;
    l->dgram_msg = NULL;
    l->dgram_iov = NULL;
    l->dgram_from = NULL;
}
