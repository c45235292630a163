/*
 * fuzz_live: libFuzzer target for the SoupBinTCP session layer of the server (server/live.c: the
 * pre-login table, Login Request handling, sequenced data, heartbeats, logout, every drop
 * reason), driven end to end through its own io_uring loop: one live_t listens on 127.0.0.1 (an
 * ephemeral port) for the whole run, and each input is what one publisher connection sends.
 * Byte 0 says in how many pieces (1..4, with the loop polled between them, so that packets
 * straddle receives); the rest is the stream (the seeds log in as tick/core and send ITCH
 * messages from tests/data). Invariants, checked with abort():
 *   - delivered messages come with consecutive sequence numbers across the whole run, each a
 *     whole ITCH 5.0 message of its type's length, and the counters agree with what was
 *     delivered;
 *   - after the client closes, the server ends the session: within 2 s no connection is left,
 *     logged in or pending (no slot is lost whatever was sent);
 *   - the server keeps listening: the next input connects again.
 * Build: make fuzz (clang, ASan and UBSan, against build/fuzz/libtickcore-fuzz.a).
 */
#include "config/config.h"
#include "ingest/itch.h"
#include "server/live.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_live: check failed at line %d: %s\n", __LINE__, #c);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static live_t g_live;
static bool g_up;
static uint64_t g_next = 1, g_delivered;

static void deliver(void *ctx, uint64_t seq, const uint8_t *msg, uint16_t len)
{
    (void)ctx;
    CHECK(seq == g_next);
    CHECK(len > 0 && itch_msg_len[msg[0]] == len);
    g_next++;
    g_delivered++;
}

static void lost(void *ctx, uint64_t from, uint64_t count)
{
    (void)ctx;
    (void)from;
    (void)count;
    CHECK(!"no UDP feed: nothing can be lost");
}

static void init_once(void)
{
    if (g_up)
        return;
    config_t cfg;
    config_default(&cfg);
    char err[400];
    static const char *const keys[] = {"live.tcp_addr=127.0.0.1", "live.udp_port=0",
                                       "live.max_clients=2", "live.max_pending=8",
                                       "live.login_timeout=1s"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (config_set(&cfg, keys[i], NULL, err, sizeof err) < 0) {
            fprintf(stderr, "fuzz_live: %s\n", err);
            abort();
        }
    cfg.tcp_port = LIVE_PORT_ANY;
    if (live_init(&g_live, &cfg, 1, deliver, lost, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_live: live_init: %s\n", err);
        abort();
    }
    g_up = true;
}

static uint64_t ld(_Atomic uint64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

static void poll_for(unsigned ms)
{
    for (unsigned i = 0; i < ms; i++)
        CHECK(live_poll(&g_live, 1000000ull) >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    init_once();
    unsigned pieces = 1 + data[0] % 4;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* a new source address each time (127.0.0.1 .. 127.0.0.250): the closed connections' TIME_WAIT
     * spreads over 250 port spaces instead of exhausting one */
    static unsigned src;
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + src++ % 250);
    CHECK(bind(fd, (struct sockaddr *)&from, sizeof from) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_live.tcp_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0 && errno == EADDRNOTAVAIL) {
        close(fd); /* the client side is out of ports (not the server's doing): skip the input */
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "fuzz_live: connect to 127.0.0.1:%u: %s (accepted %llu, refused %llu)\n",
                g_live.tcp_port, strerror(errno), (unsigned long long)ld(&g_live.c.tcp_accepted),
                (unsigned long long)ld(&g_live.c.tcp_refused));
        abort();
    }
    uint64_t accepted0 = ld(&g_live.c.tcp_accepted);
    for (int i = 0; i < 200 && ld(&g_live.c.tcp_accepted) == accepted0; i++)
        poll_for(1);
    CHECK(ld(&g_live.c.tcp_accepted) == accepted0 + 1);

    size_t off = 0;
    for (unsigned k = 0; k < pieces && off < n; k++) {
        size_t want = k + 1 == pieces ? n - off : (n - off) / (pieces - k);
        while (want > 0) {
            ssize_t w = send(fd, p + off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                poll_for(1);
                continue;
            }
            if (w <= 0)
                break; /* the server dropped us: the rest goes nowhere */
            off += (size_t)w;
            want -= (size_t)w;
        }
        poll_for(2);
        /* read what the server sent (Login Accepted or Rejected, heartbeats) */
        char sink[4096];
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        if (off < n && k + 1 < pieces && ld(&g_live.c.tcp_active) + ld(&g_live.c.tcp_pending) == 0)
            break; /* dropped already */
    }
    close(fd);
    /* the session ends on the server: nothing left, logged in or pending */
    int waited = 0;
    while (ld(&g_live.c.tcp_active) + ld(&g_live.c.tcp_pending) != 0 && waited < 2000) {
        poll_for(1);
        waited++;
    }
    CHECK(ld(&g_live.c.tcp_active) == 0 && ld(&g_live.c.tcp_pending) == 0);
    CHECK(ld(&g_live.c.delivered) == g_delivered);
    CHECK(ld(&g_live.c.next_seq) == g_next);
    return 0;
}
