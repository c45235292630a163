/*
 * test_feed: `tickcore feed` against servers written here. The oracle for the messages is a
 * naive BinaryFILE walker (2-byte big-endian length, then the message) over the generator's
 * plain file; the feed reads the same day plain or gzip through ingest/stream. A TCP server
 * thread parses with soup_parse, answers the login as each test asks (Login Accepted with a
 * given sequence number, Login Rejected, End of Session after N messages, a close in the middle
 * to make the feed reconnect and resume) and keeps every Sequenced Data message by its sequence
 * number; a UDP receiver thread parses with mold_parse, checks that first transmissions arrive in
 * sequence order, re-requests every gap after End of Session, and sends the extra requests a test
 * asks for (a range it already has: the retransmission must equal the original; a range no
 * longer retained; a malformed request). Checked: byte-for-byte equality of everything received
 * with the file, resume points, login fields and overrides, exit codes and error messages (usage,
 * refused, rejected, file errors), --count, --from, --rate (a lower bound on the time only),
 * heartbeats when idle, --drop-every recovered by re-requests, and that a run allocates nothing
 * after start-up (mem's count, and the process-wide malloc count equal for 200 and 2000 messages).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "cli/cmd_feed.h"
#include "feed/publish.h"
#include "mem/mem.h"
#include "net/mold.h"
#include "net/soup.h"
#include "sim/gen.h"
#include "tests/support/malloc_count.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_MSGS      3000u /* messages in the test day */
#define SRV_TIMEOUT 20000 /* ms a test server waits for anything before it gives up */

static char tmpdir[64];
static char plain_path[128], gz_path[128], bad_path[128];

/* The day as the oracle reads it: message s (1-based) is exp_data[exp_off[s]..][exp_len[s]]. */
static uint8_t *file_data;
static size_t file_len;
static uint32_t exp_off[N_MSGS + 2];
static uint8_t exp_len[N_MSGS + 2];
static uint64_t exp_n;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const uint8_t *exp_msg(uint64_t seq)
{
    return file_data + exp_off[seq];
}

/* ---- running the feed --------------------------------------------------------------------- */

/* feed_main_result("feed", args..., NULL); checks that INGEST memory is all given back. */
static int run_feed(publish_result_t *r, ...)
{
    char *argv[48];
    int argc = 0;
    argv[argc++] = "feed";
    va_list ap;
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 47)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    mem_snapshot_t s;
    mem_snapshot(&s);
    int64_t live0 = s.tag[MEM_TAG_INGEST].live;
    int rc = feed_main_result(argc, argv, r);
    mem_snapshot(&s);
    assert_int_equal(s.tag[MEM_TAG_INGEST].live, live0);
    assert_int_equal(rc, r->status);
    return rc;
}

static int bind_loopback(int type, uint16_t *port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- the TCP test server ------------------------------------------------------------------ */

#define MAXC 4

typedef struct tsrv {
    int lfd;
    uint16_t port;
    char url[64];
    pthread_t th;
    /* behaviour, per connection */
    int nconn;
    uint64_t accept_seq[MAXC]; /* 0: reject with `reject` */
    char reject;
    uint64_t close_after[MAXC]; /* close (without reading on) after this many messages */
    uint64_t eos_after;         /* send End of Session after this many messages (connection 0) */
    bool refuse_at_logout;      /* answer the Logout Request with Debug + End of Session */
    /* what it saw */
    soup_login_t login[MAXC];
    uint64_t got[MAXC]; /* messages per connection */
    bool logout[MAXC];
    int conns;
    uint64_t heartbeats, total;
    uint64_t first_seq; /* lowest sequence number received */
    uint64_t max_seq;   /* highest */
    /* messages by sequence number (a later copy replaces an earlier one) */
    uint32_t rx_off[N_MSGS + 64];
    uint8_t rx_len[N_MSGS + 64];
    bool rx_have[N_MSGS + 64];
    uint8_t *data;
    size_t used, cap;
    uint8_t buf[1 << 17];
    char err[256];
} tsrv_t;

static tsrv_t g_srv;

static void srv_fail(tsrv_t *s, const char *what)
{
    if (!s->err[0])
        snprintf(s->err, sizeof s->err, "%s", what);
}

static void srv_store(tsrv_t *s, uint64_t seq, const uint8_t *m, uint16_t len)
{
    if (seq >= N_MSGS + 64 || s->used + len > s->cap) {
        srv_fail(s, "message past the test's capacity");
        return;
    }
    memcpy(s->data + s->used, m, len);
    s->rx_off[seq] = (uint32_t)s->used;
    s->rx_len[seq] = (uint8_t)len;
    s->rx_have[seq] = true;
    s->used += len;
    s->total++;
    if (s->first_seq == 0 || seq < s->first_seq)
        s->first_seq = seq;
    if (seq > s->max_seq)
        s->max_seq = seq;
}

static bool send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* One connection: login, then messages until logout, close, or the test's close_after. */
static void srv_conn(tsrv_t *s, int c, int fd)
{
    size_t len = 0;
    bool logged_in = false;
    uint64_t seq = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, SRV_TIMEOUT) <= 0) {
            srv_fail(s, "server: timed out waiting for the feed");
            return;
        }
        ssize_t k = recv(fd, s->buf + len, sizeof s->buf - len, 0);
        if (k <= 0)
            return; /* the feed closed */
        len += (size_t)k;
        size_t off = 0;
        for (;;) {
            soup_packet_t pk;
            char perr[128];
            int used = soup_parse(s->buf + off, len - off, SOUP_MAX_PACKET, &pk, perr, sizeof perr);
            if (used == 0)
                break;
            if (used < 0) {
                srv_fail(s, perr);
                return;
            }
            off += (size_t)used;
            uint8_t out[64];
            if (!logged_in) {
                if (pk.type != SOUP_LOGIN_REQUEST ||
                    soup_login_parse(&pk, &s->login[c], perr, sizeof perr) < 0) {
                    srv_fail(s, "server: the first packet is not a valid login request");
                    return;
                }
                if (s->accept_seq[c] == 0) {
                    send_all(fd, out, soup_put_rejected(out, sizeof out, s->reject));
                    return;
                }
                seq = s->accept_seq[c];
                send_all(fd, out, soup_put_accepted(out, sizeof out, "TICKCORE", seq));
                logged_in = true;
                continue;
            }
            switch (pk.type) {
            case SOUP_SEQUENCED:
                srv_store(s, seq++, pk.payload, pk.len);
                s->got[c]++;
                if (s->close_after[c] && s->got[c] == s->close_after[c]) {
                    /* drop the connection with a reset (as a crash with bytes unread would),
                     * even if this thread already read the rest into its buffer */
                    struct linger lg = {.l_onoff = 1, .l_linger = 0};
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                    return;
                }
                if (c == 0 && s->eos_after && s->got[c] == s->eos_after)
                    send_all(fd, out, soup_put_empty(out, sizeof out, SOUP_END_OF_SESSION));
                break;
            case SOUP_CLIENT_HEARTBEAT:
                s->heartbeats++;
                break;
            case SOUP_LOGOUT_REQUEST:
                s->logout[c] = true;
                if (s->refuse_at_logout) { /* as tickcore serve's live_refuse does */
                    static const char why[] =
                        "no more data taken: journal j: No space left on device";
                    size_t n = soup_put_packet(out, sizeof out, SOUP_DEBUG, (const uint8_t *)why,
                                               sizeof why - 1);
                    n += soup_put_empty(out + n, sizeof out - n, SOUP_END_OF_SESSION);
                    send_all(fd, out, n);
                }
                return;
            default:
                srv_fail(s, "server: unexpected packet type");
                return;
            }
        }
        memmove(s->buf, s->buf + off, len - off);
        len -= off;
    }
}

static void *srv_main(void *arg)
{
    tsrv_t *s = arg;
    for (int c = 0; c < s->nconn; c++) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, SRV_TIMEOUT) <= 0) {
            srv_fail(s, "server: no connection");
            break;
        }
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            srv_fail(s, "server: accept failed");
            break;
        }
        s->conns++;
        srv_conn(s, c, fd);
        close(fd);
    }
    return NULL;
}

/* A server for nconn connections with default behaviour (accept at 1); tests adjust before
 * srv_start. The data store is allocated here, before the feed runs. */
static tsrv_t *srv_new(int nconn)
{
    tsrv_t *s = &g_srv;
    memset(s, 0, offsetof(tsrv_t, rx_off));
    memset(s->rx_have, 0, sizeof s->rx_have);
    s->err[0] = '\0';
    s->nconn = nconn;
    for (int c = 0; c < MAXC; c++)
        s->accept_seq[c] = 1;
    if (!s->data) { /* kept from test to test; group_teardown frees it */
        s->cap = file_len * 4;
        s->data = mem_alloc(MEM_TAG_TEST, s->cap);
        assert_non_null(s->data);
    }
    s->used = 0;
    s->lfd = bind_loopback(SOCK_STREAM, &s->port);
    assert_int_equal(listen(s->lfd, 8), 0);
    snprintf(s->url, sizeof s->url, "tcp://127.0.0.1:%u", s->port);
    return s;
}

static void srv_start(tsrv_t *s)
{
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_join(tsrv_t *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* Messages [from, to] received and equal to the file's, byte for byte. */
static void srv_check_range(const tsrv_t *s, uint64_t from, uint64_t to)
{
    for (uint64_t q = from; q <= to; q++) {
        if (!s->rx_have[q] || s->rx_len[q] != exp_len[q] ||
            memcmp(s->data + s->rx_off[q], exp_msg(q), exp_len[q]) != 0)
            fail_msg("message %llu missing or different", (unsigned long long)q);
    }
}

/* ---- tests: TCP --------------------------------------------------------------------------- */

static void test_feed_tcp_sends_file_byte_for_byte(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->total, exp_n);
    assert_int_equal(s->first_seq, 1);
    assert_int_equal(s->max_seq, exp_n);
    srv_check_range(s, 1, exp_n);
    assert_true(s->logout[0]);
    /* the login: config defaults, blank session, sequence 0 */
    assert_string_equal(s->login[0].username, "tick");
    assert_string_equal(s->login[0].password, "core");
    assert_string_equal(s->login[0].session, "");
    assert_int_equal(s->login[0].seq, 0);
    /* the result */
    assert_true(r.tcp);
    assert_int_equal(r.messages, exp_n);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.next_seq, exp_n + 1);
    assert_int_equal(r.resumed_from, 1);
    assert_int_equal(r.logins, 1);
    assert_int_equal(r.reconnects, 0);
    assert_true(r.server_closed);
    assert_string_equal(r.session, "TICKCORE");
    uint64_t bytes = 0;
    for (uint64_t q = 1; q <= exp_n; q++)
        bytes += exp_len[q];
    assert_int_equal(r.bytes, bytes);
    /* every packet is 3 bytes of framing + the message; plus the login and the logout */
    assert_int_equal(r.wire_bytes, bytes + 3 * exp_n + (3 + SOUP_LOGIN_REQUEST_LEN) + 3);
    /* coalesced: far fewer sends than messages */
    assert_true(r.packets < exp_n / 10);
    assert_int_equal(r.allocs, 0);
}

static void test_feed_tcp_gzip_and_overrides(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, "--quiet", "--set", "live.username=alice", "--password", "pw12",
                      "--session", "S1", gz_path, "--to", s->url, NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    srv_check_range(s, 1, exp_n);
    assert_int_equal(s->total, exp_n);
    assert_string_equal(s->login[0].username, "alice");
    assert_string_equal(s->login[0].password, "pw12");
    assert_string_equal(s->login[0].session, "S1");
    assert_int_equal(r.allocs, 0);
}

static void test_feed_tcp_resumes_where_login_says(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    s->accept_seq[0] = 101;
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->first_seq, 101);
    assert_int_equal(s->total, exp_n - 100);
    srv_check_range(s, 101, exp_n);
    assert_false(s->rx_have[100]);
    assert_int_equal(r.resumed_from, 101);
    assert_int_equal(r.first_seq, 101);
    assert_int_equal(r.messages, exp_n - 100);
}

static void test_feed_tcp_past_end_sends_nothing(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    s->accept_seq[0] = exp_n + 5;
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->total, 0);
    assert_true(s->logout[0]);
    assert_true(r.past_end);
    assert_int_equal(r.messages, 0);
}

static void test_feed_tcp_login_rejected(void **state)
{
    (void)state;
    static const char reasons[] = {SOUP_REJECT_NOT_AUTHORIZED, SOUP_REJECT_NO_SESSION};
    static const char *const words[] = {"not authorized", "session not available"};
    for (int i = 0; i < 2; i++) {
        tsrv_t *s = srv_new(1);
        s->accept_seq[0] = 0;
        s->reject = reasons[i];
        srv_start(s);
        publish_result_t r;
        /* --retry does not retry a rejection */
        int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--retry", "5", NULL);
        srv_join(s);
        assert_string_equal(s->err, "");
        assert_int_equal(rc, 1);
        assert_non_null(strstr(r.error, words[i]));
        assert_int_equal(r.messages, 0);
        assert_int_equal(s->conns, 1);
    }
}

/* The server drops the connection after 300 messages; the feed reconnects and the second
 * Login Accepted says 250 (backwards: the file is reopened), then a third connection is never
 * needed. Everything 1..N arrives, equal to the file. */
static void test_feed_tcp_retry_resumes_after_drop(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(2);
    s->close_after[0] = 300;
    s->accept_seq[1] = 250;
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--retry", "10", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->got[0], 300);
    assert_int_equal(s->got[1], exp_n - 249);
    srv_check_range(s, 1, exp_n);
    assert_true(s->logout[1]);
    assert_int_equal(r.reconnects, 1);
    assert_int_equal(r.logins, 2);
    assert_int_equal(r.resumed_from, 1);
    assert_int_equal(r.last_resume, 250);
    assert_int_equal(r.allocs, 0);

    /* the same drop without --retry: exit 1, the reason given */
    s = srv_new(1);
    s->close_after[0] = 300;
    srv_start(s);
    rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_int_equal(rc, 1);
    assert_true(strstr(r.error, "connection") != NULL || strstr(r.error, "closed") != NULL);
}

static void test_feed_tcp_end_of_session_stops(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    s->eos_after = 100;
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--rate", "5000/s", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 1);
    assert_true(r.end_of_session);
    assert_non_null(strstr(r.error, "End of Session"));
    assert_true(r.messages < exp_n);
}

/* Issue 15 (found by tests/fault_sweep.py, eio@1/journal_write): a server whose journal failed
 * refuses further data with a Debug packet and End of Session; when that came as the feed left
 * (in answer to its Logout Request) the feed took it as a normal end and exited 0. */
static void test_feed_tcp_refusal_at_logout_fails(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    s->refuse_at_logout = true;
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 1);
    assert_true(r.end_of_session);
    assert_non_null(strstr(r.error, "No space left on device"));
}

static void test_feed_tcp_refused_and_retry_gives_up(void **state)
{
    (void)state;
    uint16_t port;
    int fd = bind_loopback(SOCK_STREAM, &port); /* bound, not listening: refused */
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", port);
    publish_result_t r;
    assert_int_equal(run_feed(&r, plain_path, "--to", url, "--quiet", NULL), 1);
    assert_non_null(strstr(r.error, "refused"));
    uint64_t t0 = now_ms();
    assert_int_equal(run_feed(&r, plain_path, "--to", url, "--quiet", "--retry", "0.4", NULL), 1);
    assert_true(now_ms() - t0 >= 350);
    assert_non_null(strstr(r.error, "gave up"));
    close(fd);
}

static void test_feed_count_and_rate(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    srv_start(s);
    publish_result_t r;
    uint64_t t0 = now_ms();
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--rate", "10000/s", "--count",
                      "2000", NULL);
    uint64_t el = now_ms() - t0;
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->total, 2000);
    assert_int_equal(s->max_seq, 2000);
    srv_check_range(s, 1, 2000);
    assert_int_equal(r.messages, 2000);
    assert_true(el >= 150); /* 2000 messages at 10000/s: 0.2 s at least (lower bound only) */
    assert_true(r.seconds >= 0.15);
    assert_int_equal(r.allocs, 0);
}

/* Nothing to send for more than 1 s: a Client Heartbeat goes out. */
static void test_feed_tcp_heartbeat_when_idle(void **state)
{
    (void)state;
    tsrv_t *s = srv_new(1);
    srv_start(s);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--rate", "0.8/s", "--count", "1",
                      NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(s->total, 1);
    assert_true(s->heartbeats >= 1);
    assert_int_equal(r.heartbeats_sent, s->heartbeats);
}

static void test_feed_file_errors(void **state)
{
    (void)state;
    /* a file that does not exist: exit 1 before any connection */
    publish_result_t r;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.itch", tmpdir);
    assert_int_equal(run_feed(&r, missing, "--to", "tcp://127.0.0.1:9", "--quiet", NULL), 1);
    assert_non_null(strstr(r.error, "nope.itch"));

    /* a bad frame after 100 good messages: those are sent, then logout and exit 1 */
    tsrv_t *s = srv_new(1);
    srv_start(s);
    int rc = run_feed(&r, bad_path, "--to", s->url, "--quiet", NULL);
    srv_join(s);
    assert_string_equal(s->err, "");
    assert_int_equal(rc, 1);
    assert_int_equal(s->total, 100);
    srv_check_range(s, 1, 100);
    assert_true(s->logout[0]);
    assert_non_null(strstr(r.error, "bad.itch"));
}

static void test_feed_usage_errors(void **state)
{
    (void)state;
    publish_result_t r;
    assert_int_equal(run_feed(&r, plain_path, "--quiet", NULL), 2);       /* no --to */
    assert_int_equal(run_feed(&r, "--to", "tcp://127.0.0.1:1", NULL), 2); /* no file */
    static const char *const bad_urls[] = {
        "http://127.0.0.1:1",    "tcp://localhost:7001", "tcp://127.0.0.1",   "tcp://127.0.0.1:0",
        "udp://127.0.0.1:70000", "tcp://1.2.3:4",        "tcp://127.0.0.1:x", "tcp://:5",
    };
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++)
        assert_int_equal(run_feed(&r, plain_path, "--to", bad_urls[i], NULL), 2);
    static const char *const bad_rates[] = {"0/s", "-5/s", "fast", "10/m", "2X/s", ""};
    for (size_t i = 0; i < sizeof bad_rates / sizeof *bad_rates; i++)
        assert_int_equal(
            run_feed(&r, plain_path, "--to", "tcp://127.0.0.1:1", "--rate", bad_rates[i], NULL), 2);
    assert_int_equal(run_feed(&r, plain_path, "--to", "tcp://127.0.0.1:1", "--from", "5", NULL), 2);
    assert_int_equal(run_feed(&r, plain_path, "--to", "udp://127.0.0.1:1", "--retry", "5", NULL),
                     2);
    assert_int_equal(run_feed(&r, plain_path, "--to", "udp://127.0.0.1:1", "--count", "0", NULL),
                     2);
    assert_int_equal(
        run_feed(&r, plain_path, "--to", "tcp://127.0.0.1:1", "--user", "toolong", NULL), 2);
    assert_int_equal(
        run_feed(&r, plain_path, "--to", "tcp://127.0.0.1:1", "--set", "live.nope=1", NULL), 2);
    assert_int_equal(run_feed(&r, plain_path, "--to", "tcp://127.0.0.1:1", "--bogus", NULL), 2);
    assert_int_equal(run_feed(&r, plain_path, "--to", NULL), 2); /* --to without a value */
    assert_int_equal(run_feed(&r, plain_path, plain_path, "--to", "tcp://127.0.0.1:1", NULL), 2);
}

/* ---- the UDP test receiver ---------------------------------------------------------------- */

typedef struct urcv {
    int fd;
    uint16_t port;
    char url[64];
    pthread_t th;
    const char *session;
    uint64_t first; /* the first sequence number the feed sends */
    /* extra requests sent once everything has arrived */
    uint64_t extra_seq;
    uint16_t extra_count;
    bool extra_answered; /* wait for the answer (else send and finish) */
    bool send_garbage;
    /* a second socket on 127.0.0.2 that sends the same extra request: its answers are counted */
    bool foreign;
    int foreign_fd;
    uint64_t foreign_got; /* datagrams that reached it */
    /* what it saw */
    uint64_t lo, hi; /* lowest seen; 1 + highest seen */
    uint64_t firsts, dups, gaps_seen, requests_sent, extra_got, extra_bad;
    uint64_t end_seq;
    bool got_end;
    struct sockaddr_in peer;
    size_t used;
    bool have[N_MSGS + 64];
    uint32_t off[N_MSGS + 64];
    uint8_t len[N_MSGS + 64];
    uint8_t *data;
    size_t cap;
    uint8_t buf[65536];
    char err[256];
} urcv_t;

static urcv_t g_rcv;

static void rcv_fail(urcv_t *u, const char *what)
{
    if (!u->err[0])
        snprintf(u->err, sizeof u->err, "%s", what);
}

static void rcv_request(urcv_t *u, uint64_t seq, uint64_t count)
{
    while (count > 0) {
        uint16_t n = count > 65535 ? 65535 : (uint16_t)count;
        uint8_t req[MOLD_REQUEST_LEN];
        size_t k = mold_put_request(req, sizeof req, u->session, seq, n);
        sendto(u->fd, req, k, 0, (struct sockaddr *)&u->peer, sizeof u->peer);
        u->requests_sent++;
        seq += n;
        count -= n;
    }
}

/* Re-request every missing range below end_seq; true if something was missing. */
static bool rcv_fill_gaps(urcv_t *u, uint64_t from)
{
    bool missing = false;
    uint64_t q = from;
    while (q < u->end_seq) {
        if (u->have[q]) {
            q++;
            continue;
        }
        uint64_t a = q;
        while (q < u->end_seq && !u->have[q])
            q++;
        rcv_request(u, a, q - a);
        missing = true;
    }
    return missing;
}

static void *rcv_main(void *arg)
{
    urcv_t *u = arg;
    uint64_t deadline = now_ms() + SRV_TIMEOUT, last_req = 0;
    bool extra_sent = false;
    for (;;) {
        uint64_t now = now_ms();
        if (now > deadline) {
            rcv_fail(u, "receiver: timed out");
            return NULL;
        }
        if (u->got_end && now - last_req >= 100) {
            last_req = now;
            if (!rcv_fill_gaps(u, u->first)) {
                if (!extra_sent && (u->extra_count || u->send_garbage)) {
                    if (u->extra_count)
                        rcv_request(u, u->extra_seq, u->extra_count);
                    if (u->send_garbage)
                        sendto(u->fd, "junk!", 5, 0, (struct sockaddr *)&u->peer, sizeof u->peer);
                    if (u->foreign) {
                        uint8_t req[MOLD_REQUEST_LEN];
                        size_t k = mold_put_request(req, sizeof req, u->session, u->extra_seq,
                                                    u->extra_count);
                        sendto(u->foreign_fd, req, k, 0, (struct sockaddr *)&u->peer,
                               sizeof u->peer);
                    }
                    extra_sent = true;
                }
                if (!u->extra_count || !u->extra_answered || u->extra_got >= u->extra_count) {
                    /* the foreign socket: anything that arrives within 300 ms is an answer */
                    for (uint64_t t0 = now_ms(); u->foreign && now_ms() - t0 < 300;) {
                        struct pollfd fp = {.fd = u->foreign_fd, .events = POLLIN};
                        if (poll(&fp, 1, 20) > 0 &&
                            recv(u->foreign_fd, u->buf, sizeof u->buf, 0) > 0)
                            u->foreign_got++;
                    }
                    return NULL;
                }
            }
        }
        struct pollfd p = {.fd = u->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t k = recvfrom(u->fd, u->buf, sizeof u->buf, 0, (struct sockaddr *)&from, &fl);
        if (k <= 0)
            continue;
        u->peer = from;
        mold_header_t h;
        char perr[160];
        if (mold_parse(u->buf, (size_t)k, &h, perr, sizeof perr) < 0) {
            rcv_fail(u, perr);
            return NULL;
        }
        if (strcmp(h.session, u->session) != 0) {
            rcv_fail(u, "receiver: wrong session");
            return NULL;
        }
        if (h.count == MOLD_END_OF_SESSION) {
            u->got_end = true;
            u->end_seq = h.seq;
            continue;
        }
        if (h.count == 0)
            continue;
        /* first transmissions come in sequence order; anything below hi is a retransmission,
         * which only a request can cause */
        if (u->hi && h.seq < u->hi && u->requests_sent == 0) {
            rcv_fail(u, "receiver: went backwards without a request");
            return NULL;
        }
        if (u->hi && h.seq > u->hi)
            u->gaps_seen++;
        mold_iter_t it;
        mold_iter_init(&it, u->buf, (size_t)k);
        const uint8_t *m;
        uint16_t len;
        uint64_t q = h.seq;
        while (mold_next(&it, &m, &len)) {
            if (q >= N_MSGS + 64) {
                rcv_fail(u, "receiver: sequence past the test's capacity");
                return NULL;
            }
            if (u->have[q]) {
                u->dups++;
                if (extra_sent && q >= u->extra_seq && q < u->extra_seq + u->extra_count) {
                    u->extra_got++;
                    if (len != u->len[q] || memcmp(m, u->data + u->off[q], len) != 0)
                        u->extra_bad++;
                }
            } else if (u->used + len <= u->cap) {
                memcpy(u->data + u->used, m, len);
                u->off[q] = (uint32_t)u->used;
                u->len[q] = (uint8_t)len;
                u->have[q] = true;
                u->used += len;
                u->firsts++;
                if (u->lo == 0 || q < u->lo)
                    u->lo = q;
            }
            q++;
        }
        if (q > u->hi)
            u->hi = q;
    }
}

static urcv_t *rcv_new(void)
{
    urcv_t *u = &g_rcv;
    memset(u, 0, offsetof(urcv_t, have));
    memset(u->have, 0, sizeof u->have);
    u->err[0] = '\0';
    u->session = "TICKCORE";
    u->first = 1;
    if (!u->data) { /* kept from test to test; group_teardown frees it */
        u->cap = file_len * 2;
        u->data = mem_alloc(MEM_TAG_TEST, u->cap);
        assert_non_null(u->data);
    }
    u->fd = bind_loopback(SOCK_DGRAM, &u->port);
    int rb = 4 << 20;
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    snprintf(u->url, sizeof u->url, "udp://127.0.0.1:%u", u->port);
    return u;
}

static void rcv_start(urcv_t *u)
{
    assert_int_equal(pthread_create(&u->th, NULL, rcv_main, u), 0);
}

static void rcv_join(urcv_t *u)
{
    pthread_join(u->th, NULL);
    close(u->fd);
    if (u->foreign)
        close(u->foreign_fd);
}

/* The receiver's second socket, bound to 127.0.0.2 (another source on loopback). */
static void rcv_add_foreign(urcv_t *u)
{
    u->foreign = true;
    u->foreign_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(u->foreign_fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
    assert_int_equal(bind(u->foreign_fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void rcv_check_range(const urcv_t *u, uint64_t from, uint64_t to)
{
    for (uint64_t q = from; q <= to; q++) {
        if (!u->have[q] || u->len[q] != exp_len[q] ||
            memcmp(u->data + u->off[q], exp_msg(q), exp_len[q]) != 0)
            fail_msg("message %llu missing or different", (unsigned long long)q);
    }
}

/* ---- tests: UDP --------------------------------------------------------------------------- */

static void test_feed_udp_sends_in_order_and_retransmits(void **state)
{
    (void)state;
    urcv_t *u = rcv_new();
    u->extra_seq = 10;
    u->extra_count = 11;
    u->extra_answered = true;
    rcv_start(u);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", u->url, "--quiet", "--retain", "10000", NULL);
    rcv_join(u);
    assert_string_equal(u->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(u->end_seq, exp_n + 1);
    assert_int_equal(u->lo, 1);
    assert_int_equal(u->firsts, exp_n);
    rcv_check_range(u, 1, exp_n);
    /* the extra request: answered with the same bytes */
    assert_int_equal(u->extra_got, 11);
    assert_int_equal(u->extra_bad, 0);
    assert_true(r.requests >= 1);
    assert_true(r.answered >= 11);
    assert_int_equal(r.unanswerable, 0);
    assert_int_equal(r.requests, u->requests_sent);
    assert_int_equal(r.messages, exp_n);
    assert_int_equal(r.first_seq, 1);
    assert_int_equal(r.next_seq, exp_n + 1);
    assert_int_equal(r.test_dropped, 0);
    assert_false(r.tcp);
    assert_string_equal(r.session, "TICKCORE");
    /* datagrams of at most 1400 bytes: at least bytes / 1400 of them */
    assert_true(r.packets >= (r.bytes + 2 * exp_n) / 1400);
    assert_int_equal(r.allocs, 0);
}

static void test_feed_udp_drop_every_filled_by_rerequest(void **state)
{
    (void)state;
    urcv_t *u = rcv_new();
    u->session = "ABC";
    rcv_start(u);
    publish_result_t r;
    int rc = run_feed(&r, gz_path, "--to", u->url, "--quiet", "--retain", "5000", "--drop-every",
                      "4", "--session", "ABC", NULL);
    rcv_join(u);
    assert_string_equal(u->err, "");
    assert_int_equal(rc, 0);
    rcv_check_range(u, 1, exp_n);
    assert_true(r.test_dropped >= r.packets / 4);
    assert_true(u->gaps_seen >= 1);
    assert_true(u->requests_sent >= 1);
    assert_true(r.answered >= r.test_dropped); /* at least one message per held-back datagram */
    assert_int_equal(r.unanswerable, 0);
    assert_int_equal(r.allocs, 0);
}

static void test_feed_udp_from_count_and_retention_limit(void **state)
{
    (void)state;
    urcv_t *u = rcv_new();
    u->first = 101;
    u->extra_seq = 101; /* evicted: only the last 20 are retained */
    u->extra_count = 5;
    u->extra_answered = false;
    u->send_garbage = true;
    rcv_start(u);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", u->url, "--quiet", "--from", "101", "--count", "200",
                      "--retain", "20", "--linger", "1", NULL);
    rcv_join(u);
    assert_string_equal(u->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(u->lo, 101);
    assert_int_equal(u->end_seq, 301);
    assert_int_equal(u->firsts, 200);
    rcv_check_range(u, 101, 300);
    assert_false(u->have[100]);
    assert_false(u->have[301]);
    assert_int_equal(r.first_seq, 101);
    assert_int_equal(r.messages, 200);
    assert_int_equal(r.requests, 1);
    assert_int_equal(r.unanswerable, 5);
    assert_int_equal(r.answered, 0);
    assert_int_equal(r.bad_requests, 1);
    assert_int_equal(r.allocs, 0);
}

/* The retransmission socket answers its target only: the same request sent from 127.0.0.2 (any
 * other source could name the public session) gets no datagram back, while the target's is
 * answered byte for byte. */
static void test_feed_udp_answers_only_its_target(void **state)
{
    (void)state;
    urcv_t *u = rcv_new();
    rcv_add_foreign(u);
    u->extra_seq = 5;
    u->extra_count = 40;
    u->extra_answered = true;
    rcv_start(u);
    publish_result_t r;
    int rc = run_feed(&r, plain_path, "--to", u->url, "--quiet", "--count", "300", "--linger", "2",
                      NULL);
    rcv_join(u);
    assert_string_equal(u->err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(u->extra_got, 40);
    assert_int_equal(u->extra_bad, 0);
    assert_int_equal(u->foreign_got, 0);
    assert_int_equal(r.requests, u->requests_sent);
    assert_int_equal(r.answered, 40);
}

/* --rtx-rate 100: a request for 500 retained messages gets the bucket's one second, 100 of them
 * (messages 50..149, the start of the range), and the other 400 are counted, not sent. Without
 * a limit (0) the same request is answered whole. */
static void test_feed_udp_retransmissions_rate_limited(void **state)
{
    (void)state;
    static const char *rates[] = {"100", "0"};
    for (int i = 0; i < 2; i++) {
        urcv_t *u = rcv_new();
        u->extra_seq = 50;
        u->extra_count = 500;
        u->extra_answered = i == 1;
        rcv_start(u);
        publish_result_t r;
        int rc = run_feed(&r, plain_path, "--to", u->url, "--quiet", "--count", "1000",
                          "--rtx-rate", rates[i], "--linger", "1", NULL);
        rcv_join(u);
        assert_string_equal(u->err, "");
        assert_int_equal(rc, 0);
        assert_int_equal(r.requests, u->requests_sent);
        assert_int_equal(r.answered, i == 0 ? 100 : 500);
        assert_int_equal(r.rtx_limited, i == 0 ? 400 : 0);
        assert_int_equal(r.unanswerable, 0);
        if (i == 1)
            assert_int_equal(u->extra_got, 500);
    }
}

/* ---- allocation ---------------------------------------------------------------------------- */

static uint64_t allocs_for(const char *count)
{
    tsrv_t *s = srv_new(1);
    srv_start(s);
    publish_result_t r;
    malloc_count_t before;
    malloc_count_get(&before);
    int rc = run_feed(&r, plain_path, "--to", s->url, "--quiet", "--count", count, NULL);
    uint64_t n = malloc_count_allocs_since(&before);
    srv_join(s);
    assert_int_equal(rc, 0);
    assert_string_equal(s->err, "");
    assert_int_equal(r.allocs, 0);
    return n;
}

/* Whatever the run allocates (start-up), it does not depend on how many messages it sends. */
static void test_feed_allocations_do_not_grow_with_messages(void **state)
{
    (void)state;
    allocs_for("200"); /* warm-up: lazily initialised library state */
    uint64_t small = allocs_for("200");
    uint64_t large = allocs_for("2000");
    assert_int_equal(small, large);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int unseal(void **state)
{
    (void)state;
    mem_unseal();
    return 0;
}

static int gen_day(const char *path, bool gzip)
{
    gen_cfg_t c;
    gen_cfg_default(&c);
    c.out = path;
    c.messages = N_MSGS;
    c.symbols = 20;
    c.sectors = 4;
    c.seed = 11;
    c.gzip = gzip;
    c.truth = false;
    gen_stats_t st;
    if (gen_run(&c, &st) < 0) {
        fprintf(stderr, "gen: %s\n", st.error);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tickcore-test-feed-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(plain_path, sizeof plain_path, "%s/day.itch", tmpdir);
    snprintf(gz_path, sizeof gz_path, "%s/day.itch.gz", tmpdir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.itch", tmpdir);
    if (gen_day(plain_path, false) < 0 || gen_day(gz_path, true) < 0)
        return -1;
    /* the oracle: walk the plain file's frames */
    int fd = open(plain_path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0)
        return -1;
    file_len = (size_t)sb.st_size;
    file_data = mem_alloc(MEM_TAG_TEST, file_len);
    if (!file_data || read(fd, file_data, file_len) != (ssize_t)file_len)
        return -1;
    close(fd);
    size_t pos = 0;
    exp_n = 0;
    while (pos + 2 <= file_len) {
        size_t len = (size_t)file_data[pos] << 8 | file_data[pos + 1];
        if (len == 0 || len > 50 || pos + 2 + len > file_len || exp_n >= N_MSGS)
            return -1;
        exp_n++;
        exp_off[exp_n] = (uint32_t)(pos + 2);
        exp_len[exp_n] = (uint8_t)len;
        pos += 2 + len;
    }
    if (pos != file_len || exp_n != N_MSGS)
        return -1;
    /* bad.itch: the first 100 frames, then a frame of an unknown message type */
    FILE *f = fopen(bad_path, "wb");
    if (!f)
        return -1;
    static const uint8_t junk[] = {0x00, 0x05, '!', 1, 2, 3, 4, 0x00, 0x05, '!', 1, 2, 3, 4};
    size_t good = exp_off[101] - 2;
    if (fwrite(file_data, 1, good, f) != good || fwrite(junk, 1, sizeof junk, f) != sizeof junk)
        return -1;
    fclose(f);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(plain_path);
    unlink(gz_path);
    unlink(bad_path);
    mem_free(MEM_TAG_TEST, file_data, file_len);
    mem_free(MEM_TAG_TEST, g_srv.data, g_srv.cap);
    mem_free(MEM_TAG_TEST, g_rcv.data, g_rcv.cap);
    return rmdir(tmpdir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_feed_tcp_sends_file_byte_for_byte, unseal),
        cmocka_unit_test_setup(test_feed_tcp_gzip_and_overrides, unseal),
        cmocka_unit_test_setup(test_feed_tcp_resumes_where_login_says, unseal),
        cmocka_unit_test_setup(test_feed_tcp_past_end_sends_nothing, unseal),
        cmocka_unit_test_setup(test_feed_tcp_login_rejected, unseal),
        cmocka_unit_test_setup(test_feed_tcp_retry_resumes_after_drop, unseal),
        cmocka_unit_test_setup(test_feed_tcp_end_of_session_stops, unseal),
        cmocka_unit_test_setup(test_feed_tcp_refusal_at_logout_fails, unseal),
        cmocka_unit_test_setup(test_feed_tcp_refused_and_retry_gives_up, unseal),
        cmocka_unit_test_setup(test_feed_count_and_rate, unseal),
        cmocka_unit_test_setup(test_feed_tcp_heartbeat_when_idle, unseal),
        cmocka_unit_test_setup(test_feed_file_errors, unseal),
        cmocka_unit_test_setup(test_feed_usage_errors, unseal),
        cmocka_unit_test_setup(test_feed_udp_sends_in_order_and_retransmits, unseal),
        cmocka_unit_test_setup(test_feed_udp_drop_every_filled_by_rerequest, unseal),
        cmocka_unit_test_setup(test_feed_udp_from_count_and_retention_limit, unseal),
        cmocka_unit_test_setup(test_feed_udp_answers_only_its_target, unseal),
        cmocka_unit_test_setup(test_feed_udp_retransmissions_rate_limited, unseal),
        cmocka_unit_test_setup(test_feed_allocations_do_not_grow_with_messages, unseal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
