/*
 * bench_serve: `tickcore serve` under load, end to end through its real interfaces. A day of
 * 5*10^6 ITCH messages and 500 symbols (TICKCORE_BENCH_SERVE_MESSAGES overrides the count) is
 * generated into a temporary folder with `tickcore gen` (the binary: $TICKCORE_BIN, else
 * build/release/tickcore, else build/tickcore). Five runs follow, each on a fresh server started
 * on free loopback ports with its journal in the folder (journal.fsync=interval): SoupBinTCP
 * (tcp://) at --rate max, MoldUDP64 (udp://) at --rate max, MoldUDP64 paced at the target rate
 * of 2 M msg/s (udp-paced), SoupBinTCP paced at a peak NASDAQ second, 560k msg/s (tcp-peak), and
 * SoupBinTCP paced at 1 M msg/s, about twice that second (tcp-1m: the query latency target, p99
 * < 1 ms and p99.9 < 5 ms, is for the paced runs; at max rate it is p99 < 5 ms). In each, three
 * things run at once: `tickcore feed --json` publishes the day; a query thread sends a fixed mix of
 * HTTP/1.1 requests over 4 keep-alive connections (50% /v1/symbols/{SYM}?depth=5, 20%
 * /v1/correlation?symbols=A,B,C, 10% each /metrics, /v1/mst, /healthz) on an open-loop schedule of
 * 1,000 requests/s from a thread that asks for SCHED_FIFO 2, one above the server's HTTP thread
 * (it stands for a client on another machine; granted when run as root or with CAP_SYS_NICE,
 * printed): request i is due at t0 + i ms
 * and its latency runs from that scheduled time to the last byte of its answer, so a stall delays
 * every request behind it and shows in the percentiles (no coordinated omission). The generator's
 * own lateness is measured apart, not taken out silently: its timed waits end at absolute times
 * (a timerfd, TFD_TIMER_ABSTIME, 1 ns timer slack), and each request's send delay is split into
 * the wait for a free connection (the answers before it still due: the server's) and the load
 * thread's own lateness after that (the generator's); printed beside the latency from the
 * scheduled time is the same less the generator's part. Each connection has SO_TIMESTAMPNS, so the
 * kernel's receive time of an answer is known apart from when the load thread read it: printed
 * are send -> kernel receive (the server and the loopback), kernel receive -> read (the client),
 * and the server's part from the scheduled time (to the kernel receive, less the generator's
 * lateness in sending; a connection counts as free from its answer's receive time).
 * TICKCORE_BENCH_SERVE_SPIN_US=N ends each
 * wait N us early and spins to the due time; off by default: on this machine (Linux 6.18 guest,
 * load 16) a 50 us spin at SCHED_FIFO 2 brought stalls of 40-100 ms, the fair class's deadline
 * server taking both cores back from the real-time threads, the server's HTTP thread included
 * (p99 from the scheduled send 71 ms in 3 of 3 runs, 1.9 ms without the spin); and a sampler
 * reads the server's RSS from /proc/PID/statm every 100 ms. Printed per run: the ingest rate
 * (messages taken from the first one to next_sequence = messages + 1, seen by polling /healthz
 * every 1 ms until the first message and every 10 ms after; beside it the feed's own figure), the
 * latency of the 200 answers (p50, p99, p99.9, max: whole run, while ingesting, per endpoint, from
 * the actual send) and the other answers by status, RSS at the start of the feed, its max and end,
 * the allocations after the seal from /metrics, UDP gaps, recovered and lost messages, and after
 * SIGTERM the server's exit status and its "allocations while serving" line. Targets (>= 2 M
 * msg/s, the latencies above, flat RSS, no churn) are printed beside the figures; slowness never
 * fails the run. Exit 1 on a real error: a command that fails, a server that does not answer or
 * does not take every message, a transport error, an answer other than 200, a 404/503 before the
 * endpoint's first 200 (warm-up) or a documented 404/503 later, churn, a non-zero exit status.
 * TICKCORE_BENCH_SERVE_RUNS=tcp-peak (a comma list of run names) runs only those runs: with
 * TICKCORE_BENCH_SERVE_MESSAGES=2M that is a short measurement (make compare uses it).
 * The server runs with its own http.boost default; TICKCORE_BENCH_SERVE_BOOST=on (or off) sets
 * it in every run. The summary's boost column: on, off, or dflt+ / dflt- (the default, and
 * whether the HTTP thread was at SCHED_FIFO at the end of the run).
 * TICKCORE_BENCH_SERVE_TARGET chooses what answers the queries: tickcore (the default), control
 * or control-idle. control: bench/http_control (TICKCORE_BENCH_SERVE_CONTROL names the binary,
 * else http_control beside this one), a libmicrohttpd responder run as tickcore's HTTP server is
 * but with answers preformed, no work per request, started on its own free port (--boost, its
 * thread at SCHED_FIFO 1, unless TICKCORE_BENCH_SERVE_BOOST=off), takes the same schedule from
 * the same load thread, while tickcore serve is started and fed the same day at the same rate as
 * ever (its /healthz still polled for the ingest figures): the machine carries the same ingest,
 * only the answers come from the control. control-idle: the control alone, no tickcore serve and
 * no feed, for as long as the run's feed would take at its rate (messages / rate) after the same
 * lead: the floor of an HTTP round trip on this machine. Everything else (the client, the
 * schedule, the percentiles, the coordinated-omission handling) is the same code; the summary's
 * "answered" column names the target that answered; after it, p50/p99/p99.9 of the answers due
 * while ingesting (control-idle: due in the same window after the lead), which leaves out the
 * lead, where tickcore answers warm-up 404/503s and the control 200s. Also printed per run: the
 * mean body bytes of the 200 answers per endpoint (so the control's sizes can be checked against
 * tickcore's). Every buffer of the bench is allocated before the first run; the folder is removed
 * at the end (on an error the logs are kept and named).
 */
#include "base/clock.h"
#include "base/histo.h"
#include "bench/bench_util.h"
#include "sim/gen.h"
#include "tests/support/xorshift.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_MESSAGES 5000000ull
#define DAY_SYMBOLS      "500"
#define RATE_HZ          1000u
#define PERIOD_NS        (1000000000ull / RATE_HZ)
#define NCONN            4
#define RECV_CAP         (2u << 20) /* the server's responses are at most 1 MiB + headers */
#define NREQ             1000       /* the request cycle: one second of the schedule */
#define REQ_LEN          384
#define MAX_SYMS         1024
#define RSS_CAP          6000            /* 10 minutes of 100 ms samples */
#define LEAD_NS          300000000ull    /* queries on the idle server before the feed */
#define POLL_NS          10000000ull     /* /healthz poll while the feed runs */
#define START_TIMEOUT_NS 60000000000ull  /* a server that does not answer /healthz by then */
#define STUCK_NS         10000000000ull  /* feed ended, next_sequence still: stuck */
#define RUN_TIMEOUT_NS   300000000000ull /* a feed that runs longer than this: a hang */
#define DRAIN_NS         5000000000ull   /* answers still due when the load stops */

enum { K_SYMBOL, K_CORR, K_METRICS, K_MST, K_HEALTHZ, K_COUNT };
static const char *const kind_name[K_COUNT] = {"/v1/symbols/{SYM}?depth=5",
                                               "/v1/correlation?symbols=A,B,C", "/metrics",
                                               "/v1/mst", "/healthz"};
/* The mix, in schedule order: 5 symbol, 2 correlation, 1 each /healthz, /v1/mst, /metrics. */
static const uint8_t mix[10] = {K_SYMBOL, K_CORR,   K_SYMBOL, K_HEALTHZ, K_SYMBOL,
                                K_MST,    K_SYMBOL, K_CORR,   K_SYMBOL,  K_METRICS};

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- children, the folder, failure ----------------------------------------------------------- */

static char g_dir[512];
static pid_t g_kids[8];
static int g_failed; /* a real error that did not stop the run: exit 1 at the end */

static void kid_forget(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_kids / sizeof g_kids[0]; i++)
        if (g_kids[i] == pid)
            g_kids[i] = 0;
}

/* Remove the folder's files: all of them, or (keep_logs) the data and journals only. */
static void clean_dir(bool keep_logs)
{
    if (!g_dir[0])
        return;
    DIR *d = opendir(g_dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t n = strlen(e->d_name);
        bool log = (n > 4 && (strcmp(e->d_name + n - 4, ".out") == 0 ||
                              strcmp(e->d_name + n - 4, ".log") == 0 ||
                              strcmp(e->d_name + n - 4, ".err") == 0)) ||
                   (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0);
        if (keep_logs && log)
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    if (!keep_logs)
        rmdir(g_dir);
}

static void print_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    static char buf[8192];
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        fseek(f, sz > (long)sizeof buf - 1 ? sz - (long)sizeof buf + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = buf + n;
    int nl = 0;
    while (s > buf && nl <= lines)
        if (*--s == '\n' && s + 1 < buf + n)
            nl++;
    if (*s == '\n')
        s++;
    fprintf(stderr, "---- %s (last lines)\n%s%s----\n", path, s,
            n && buf[n - 1] != '\n' ? "\n" : "");
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_serve: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    for (size_t i = 0; i < sizeof g_kids / sizeof g_kids[0]; i++)
        if (g_kids[i] > 0) {
            kill(g_kids[i], SIGKILL);
            waitpid(g_kids[i], NULL, 0);
        }
    clean_dir(true);
    if (g_dir[0])
        fprintf(stderr, "bench_serve: logs kept in %s\n", g_dir);
    exit(1);
}

/* Start argv[0] with stdin from /dev/null, stdout to out, stderr to err (NULL: to out). */
static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err)
        posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    else
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot start %s %s: %s", argv[0], argv[1] ? argv[1] : "", strerror(rc));
    for (size_t i = 0; i < sizeof g_kids / sizeof g_kids[0]; i++)
        if (g_kids[i] == 0) {
            g_kids[i] = pid;
            break;
        }
    return pid;
}

/* Wait up to timeout_ns for pid to end: true and its wait status, or false (still running). */
static bool reap(pid_t pid, uint64_t timeout_ns, int *wstatus)
{
    uint64_t end = clock_mono_ns() + timeout_ns;
    for (;;) {
        pid_t r = waitpid(pid, wstatus, WNOHANG);
        if (r == pid) {
            kid_forget(pid);
            return true;
        }
        if (r < 0 && errno != EINTR)
            die("waitpid %d: %s", (int)pid, strerror(errno));
        if (clock_mono_ns() >= end)
            return false;
        sleep_ns(2000000);
    }
}

static const char *wait_text(int ws, char *buf, size_t cap)
{
    if (WIFEXITED(ws))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(ws));
    else if (WIFSIGNALED(ws))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else
        snprintf(buf, cap, "wait status 0x%x", ws);
    return buf;
}

/* A loopback port free now (bound to port 0, read back, closed). */
static uint16_t free_port(int type)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("binding a free loopback port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- HTTP/1.1 client ------------------------------------------------------------------------- */

typedef struct hconn {
    int fd;
    char *buf; /* RECV_CAP bytes */
    size_t len;
    bool busy;
    bool resent;       /* the request in flight was sent again on a new connection */
    uint64_t idx;      /* the request in flight (load thread) */
    uint64_t t_sent;   /* when it was sent */
    uint64_t gen_late; /* of it: the load thread's own lateness (send - when it could go) */
    uint64_t t_arrive; /* the kernel's receive time of the answer's last bytes (load thread) */
    bool backlog;      /* sent while the load thread was catching up after its own stall */
} hconn_t;

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* the kernel's receive time of what each read returns (recv_ts) */
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One response in b[0..n): 1 complete (status, header length, total length, Connection:
 * close), 0 incomplete, -1 not an HTTP/1.x response with a Content-Length. */
static int http_parse(const char *b, size_t n, int *status, size_t *hlen, size_t *total,
                      bool *close_after)
{
    const char *e = memmem(b, n, "\r\n\r\n", 4);
    if (!e)
        return n > 65536 ? -1 : 0;
    size_t hl = (size_t)(e - b) + 4;
    if (hl < 14 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ' || b[9] < '1' || b[9] > '5' ||
        b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9')
        return -1;
    *status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    bool have_len = false;
    size_t clen = 0;
    *close_after = b[7] == '0';
    const char *line = memchr(b, '\n', hl);
    while (line && line + 1 < b + hl - 2) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(b + hl - line));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *p = line + 15;
            while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
            if (p == eol || *p < '0' || *p > '9')
                return -1;
            clen = 0;
            while (p < eol && *p >= '0' && *p <= '9')
                clen = clen * 10 + (size_t)(*p++ - '0');
            have_len = true;
        } else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0) {
            const char *p = line + 11;
            while (p < eol && *p == ' ')
                p++;
            if ((size_t)(eol - p) >= 5 && strncasecmp(p, "close", 5) == 0)
                *close_after = true;
        }
        line = eol;
    }
    if (!have_len)
        return -1;
    *hlen = hl;
    *total = hl + clen;
    return n >= *total ? 1 : 0;
}

/* GET path over c (connected on demand, kept alive): the status and the NUL-terminated body in
 * c->buf, or -1 with err. A kept-alive connection the server closed meanwhile is reopened once. */
static int hget(hconn_t *c, uint16_t port, const char *path, int *status, const char **body,
                char *err, size_t errlen)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = c->fd < 0;
        if (c->fd < 0 && (c->fd = tcp_connect(port)) < 0) {
            snprintf(err, errlen, "connect to 127.0.0.1:%u: %s", port, strerror(errno));
            return -1;
        }
        c->len = 0;
        bool retry = false;
        if (send_all(c->fd, req, (size_t)n) < 0) {
            snprintf(err, errlen, "GET %s: send: %s", path, strerror(errno));
            retry = !fresh;
            goto fail;
        }
        uint64_t deadline = clock_mono_ns() + 10000000000ull;
        for (;;) {
            uint64_t t = clock_mono_ns();
            if (t >= deadline) {
                snprintf(err, errlen, "GET %s: no complete answer in 10 s", path);
                goto fail;
            }
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int ms = (int)((deadline - t) / 1000000ull) + 1;
            if (poll(&p, 1, ms) < 0 && errno != EINTR) {
                snprintf(err, errlen, "poll: %s", strerror(errno));
                goto fail;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, RECV_CAP - 1 - c->len, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                snprintf(err, errlen, "GET %s: %s", path,
                         r == 0 ? "connection closed by the server" : strerror(errno));
                retry = !fresh && c->len == 0;
                goto fail;
            }
            if (r > 0)
                c->len += (size_t)r;
            size_t hl = 0, total = 0;
            bool cl = false;
            int pr = http_parse(c->buf, c->len, status, &hl, &total, &cl);
            if (pr < 0 || (pr == 0 && c->len >= RECV_CAP - 1)) {
                snprintf(err, errlen, "GET %s: not an HTTP/1.1 answer with a Content-Length", path);
                goto fail;
            }
            if (pr == 1) {
                c->buf[total] = '\0';
                *body = c->buf + hl;
                if (cl || c->len != total) {
                    close(c->fd);
                    c->fd = -1;
                }
                return 0;
            }
        }
    fail:
        close(c->fd);
        c->fd = -1;
        if (!retry)
            return -1;
    }
    return -1;
}

/* The number after "key": in a JSON object (a flat search; key names are unique in ours). */
static bool json_num(const char *s, const char *key, double *v)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    if (!p)
        return false;
    char *end;
    *v = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

/* Sum of the samples of a Prometheus metric: "name" matches every label set, "name{...}" one
 * exact sample. Returns the number of samples found. */
static int prom_sum(const char *text, const char *key, double *sum)
{
    size_t kl = strlen(key);
    bool labels = strchr(key, '{') != NULL;
    int n = 0;
    *sum = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (*l == '#' || strncmp(l, key, kl) != 0)
            continue;
        const char *p = l + kl;
        if (*p == '{' && !labels) {
            p = strchr(p, '}');
            if (!p)
                continue;
            p++;
        }
        if (*p != ' ')
            continue;
        *sum += strtod(p + 1, NULL);
        n++;
    }
    return n;
}

/* ---- the query load ----------------------------------------------------------------------------
 */

typedef struct load {
    uint16_t port;
    char req[NREQ][REQ_LEN];
    uint16_t req_len[NREQ];
    uint8_t req_kind[NREQ];
    hconn_t c[NCONN];
    pthread_t th;
    bool rt;     /* the load thread got SCHED_FIFO */
    uint64_t t0; /* request i is due at t0 + i * PERIOD_NS */
    _Atomic uint64_t ingest_from, ingest_to;
    _Atomic int stop;
    /* results (load thread; read after the join) */
    histo_t all, ingest, kind[K_COUNT];
    histo_t service;    /* 200 answers: from the actual send, not the scheduled time */
    histo_t late;       /* every request: actual send - scheduled time (client side or no free
                           connection) */
    histo_t wake;       /* the load thread's own lateness: waking from a timed wait - its end */
    histo_t gen;        /* every request: the load thread's own part of the send delay (actual
                           send - the later of its scheduled time and a connection being free) */
    histo_t pool;       /* every request: waiting for a free connection (answers still due: the
                           server's part of the send delay) */
    histo_t excl;       /* 200 answers: from the scheduled time to the kernel's receive time of
                           the answer, less the load thread's lateness in sending it (the pool
                           wait stays in: it is the server's) */
    histo_t arrive;     /* 200 answers: actual send -> the kernel's receive time of the answer */
    histo_t readlate;   /* 200 answers: the kernel's receive time -> the load thread read it */
    uint64_t spin_ns;   /* a timed wait ends this long before the due time; the rest is spun */
    bool behind;        /* the load thread was late by more than a period: until it catches up,
                           the wait for a connection is its own backlog, not the server's */
    uint64_t backlog_n; /* 200 answers to such requests: not in excl */
    uint64_t sent, done, ok, warmup, other, unsent, max_backlog, over_1ms;
    uint64_t reopened, resent; /* idle connections the server closed: opened again; requests
                                  sent again after such a close raced them */
    uint64_t kind_done[K_COUNT], kind_ok[K_COUNT], kind_warm[K_COUNT], kind_other[K_COUNT];
    uint64_t kind_bytes[K_COUNT]; /* body bytes of the 200 answers */
    bool seen_ok[K_COUNT];
    int codes[16];
    uint64_t code_n[16];
    int ncodes;
    uint64_t other_max;
    char first_other[256]; /* the first "other" answer: request and body */
    bool fatal;
    char err[512];
} load_t;

static void load_fail(load_t *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void load_fail(load_t *L, const char *fmt, ...)
{
    if (L->fatal)
        return;
    L->fatal = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err, sizeof L->err, fmt, ap);
    va_end(ap);
}

static void on_answer(load_t *L, hconn_t *c, int status, size_t body_len, uint64_t t)
{
    uint64_t sched = L->t0 + c->idx * PERIOD_NS;
    uint64_t lat = t > sched ? t - sched : 0;
    unsigned k = L->req_kind[c->idx % NREQ];
    L->done++;
    L->kind_done[k]++;
    if (status == 200) {
        L->ok++;
        L->kind_ok[k]++;
        L->kind_bytes[k] += body_len;
        L->seen_ok[k] = true;
        histo_record(&L->all, lat);
        histo_record(&L->kind[k], lat);
        histo_record(&L->service, t > c->t_sent ? t - c->t_sent : 0);
        uint64_t ta = c->t_arrive && c->t_arrive <= t ? c->t_arrive : t;
        uint64_t srv = ta > sched ? ta - sched : 0;
        if (c->backlog)
            L->backlog_n++;
        else
            histo_record(&L->excl, srv > c->gen_late ? srv - c->gen_late : 0);
        histo_record(&L->arrive, ta > c->t_sent ? ta - c->t_sent : 0);
        histo_record(&L->readlate, t - ta);
        uint64_t from = atomic_load(&L->ingest_from), to = atomic_load(&L->ingest_to);
        if (from && sched >= from && (!to || sched <= to))
            histo_record(&L->ingest, lat);
        if (lat > 1000000)
            L->over_1ms++;
        return;
    }
    /* 404 before the symbols' directory was applied, 503 before the first cross-section */
    if (!L->seen_ok[k] && (status == 404 || status == 503)) {
        L->warmup++;
        L->kind_warm[k]++;
        return;
    }
    L->other++;
    L->kind_other[k]++;
    const char *body = memmem(c->buf, c->len, "\r\n\r\n", 4);
    body = body ? body + 4 : c->buf + c->len;
    int blen = (int)(c->buf + c->len - body);
    const char *rq = L->req[c->idx % NREQ];
    char desc[sizeof L->first_other];
    snprintf(desc, sizeof desc, "%.*s -> %d %.*s", (int)strcspn(rq, "\r"), rq, status,
             blen < 150 ? blen : 150, body);
    if (!L->first_other[0])
        memcpy(L->first_other, desc, sizeof desc);
    int i;
    for (i = 0; i < L->ncodes && L->codes[i] != status; i++)
        ;
    if (i == L->ncodes && i < 16) {
        L->codes[i] = status;
        L->ncodes++;
    }
    if (i < 16)
        L->code_n[i]++;
    /* 503 "being updated too fast; retry" and a late 404 are answers the API documents */
    if (status != 503 && status != 404)
        load_fail(L, "%s", desc);
}

/* The server has closed this idle connection (its end of file, or an error, is waiting). */
static bool conn_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLIN));
}

/* recv(2) that also gives the kernel's receive time of the last bytes read (SO_TIMESTAMPNS, set
 * by tcp_connect; CLOCK_REALTIME, turned into the monotonic clock here) in *at, or leaves *at. */
static ssize_t recv_ts(int fd, char *buf, size_t n, uint64_t *at)
{
    union {
        char b[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT);
    if (r <= 0)
        return r;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            uint64_t mono = clock_mono_ns(), now = clock_wall_ns();
            uint64_t ago = now > wall ? now - wall : 0;
            *at = mono > ago ? mono - ago : 0;
        }
    return r;
}

static void *load_main(void *arg)
{
    load_t *L = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake at the scheduled time, not 50 us later */
    /* The client stands for another machine: where permitted it runs at real-time priority 2,
     * one above the server's HTTP thread (SCHED_FIFO 1 with http.boost, server/server.c), so that
     * neither the server's threads, its HTTP thread included, nor anything else on the 2 cores
     * makes it late: at equal priority a FIFO thread waits for the other to block, and the
     * server's thread would then delay its own client's sends and the reading of its answers.
     * What remains (the kernel finishing other work before it switches, interrupts) is
     * measured and printed below as the load thread's own lateness. */
    struct sched_param sp = {.sched_priority = sched_get_priority_min(SCHED_FIFO) + 1};
    L->rt = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    /* Timed waits end at an absolute time (a timerfd in the poll set, TFD_TIMER_ABSTIME), so the
     * time between computing a wait and starting it is not added to it; a wait for a send ends
     * spin_ns early and the rest is spun on the clock, so the wake-up's own lateness (timer
     * expiry, the switch) is paid before the due time, not after it. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (tfd < 0) {
        load_fail(L, "timerfd_create: %s", strerror(errno));
        return NULL;
    }
    uint64_t next = 0, limit = UINT64_MAX, drain_end = 0;
    uint64_t free_since = L->t0; /* since when a connection has been free; 0: none is */
    struct pollfd pfd[NCONN + 1];
    int who[NCONN];
    for (;;) {
        uint64_t now = clock_mono_ns();
        uint64_t due = now >= L->t0 ? (now - L->t0) / PERIOD_NS + 1 : 0;
        if (limit == UINT64_MAX && atomic_load(&L->stop)) {
            limit = due; /* what is due now is still sent and answered; nothing later */
            drain_end = now + DRAIN_NS;
        }
        if (due > limit)
            due = limit;
        if (next >= due)
            L->behind = false; /* caught up */
        for (int i = 0; i < NCONN && next < due && !L->fatal; i++) {
            hconn_t *c = &L->c[i];
            if (c->busy)
                continue;
            /* An idle connection the server has closed (a fresh one unused for
             * http.header_timeout, or one idle for http.timeout) is opened again, as any HTTP
             * client does with its pool: counted, not an error. */
            if (c->fd >= 0 && conn_closed(c->fd)) {
                close(c->fd);
                c->fd = -1;
                L->reopened++;
            }
            if (c->fd < 0 && (c->fd = tcp_connect(L->port)) < 0) {
                load_fail(L, "connect to 127.0.0.1:%u: %s", L->port, strerror(errno));
                break;
            }
            unsigned r = (unsigned)(next % NREQ);
            uint64_t t_go = clock_mono_ns(); /* the send starts: the generator's part ends */
            if (send_all(c->fd, L->req[r], L->req_len[r]) < 0) {
                load_fail(L, "send: %s", strerror(errno));
                break;
            }
            c->busy = true;
            c->resent = false;
            c->t_sent = clock_mono_ns();
            uint64_t sched = L->t0 + next * PERIOD_NS;
            histo_record(&L->late, c->t_sent > sched ? c->t_sent - sched : 0);
            /* the send delay in two: waiting for a connection (the answers before it) and then
             * the load thread's own lateness */
            uint64_t ready = free_since > sched ? free_since : sched;
            c->gen_late = t_go > ready ? t_go - ready : 0;
            histo_record(&L->gen, c->gen_late);
            if (c->gen_late > PERIOD_NS)
                L->behind = true;
            c->backlog = L->behind;
            histo_record(&L->pool, ready - sched);
            bool any_free = false;
            for (int k = 0; k < NCONN; k++)
                any_free |= !L->c[k].busy;
            if (!any_free)
                free_since = 0;
            c->idx = next++;
            c->len = 0;
            c->t_arrive = 0;
            L->sent++;
        }
        if (due - next > L->max_backlog && due > next)
            L->max_backlog = due - next;
        int n = 0;
        for (int i = 0; i < NCONN; i++)
            if (L->c[i].busy) {
                pfd[n] = (struct pollfd){.fd = L->c[i].fd, .events = POLLIN};
                who[n++] = i;
            }
        if (L->fatal)
            break;
        if (limit != UINT64_MAX && next >= limit && n == 0)
            break;
        if (limit != UINT64_MAX && now >= drain_end) {
            load_fail(L, "%d answers still missing %.1f s after the load stopped", n,
                      (double)DRAIN_NS * 1e-9);
            break;
        }
        /* wait until the next request is due (if a connection is free for it) or an answer */
        uint64_t wake_at = now + 2000000, due_at = 0;
        if (next < limit && n < NCONN) {
            due_at = L->t0 + next * PERIOD_NS;
            uint64_t w = due_at > L->spin_ns ? due_at - L->spin_ns : 0;
            if (w < wake_at)
                wake_at = w;
            else
                due_at = 0;
        }
        if (due_at && wake_at <= now) { /* within spin_ns of the due time: spin to it */
            while (clock_mono_ns() < due_at)
                ;
            continue;
        }
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(wake_at / 1000000000ull),
                                              .tv_nsec = (long)(wake_at % 1000000000ull)}};
        if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
            load_fail(L, "timerfd_settime: %s", strerror(errno));
            break;
        }
        pfd[n] = (struct pollfd){.fd = tfd, .events = POLLIN};
        int pr = ppoll(pfd, (nfds_t)n + 1, NULL, NULL);
        uint64_t t = clock_mono_ns();
        if (pr < 0 && errno != EINTR) {
            load_fail(L, "ppoll: %s", strerror(errno));
            break;
        }
        if (pr > 0 && pfd[n].revents) {
            uint64_t ticks;
            if (read(tfd, &ticks, sizeof ticks) < 0) { /* consumed; EAGAIN if already read */
            }
            histo_record(&L->wake, t > wake_at ? t - wake_at : 0);
        }
        if (pr <= 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (!pfd[j].revents)
                continue;
            hconn_t *c = &L->c[who[j]];
            ssize_t r = recv_ts(c->fd, c->buf + c->len, RECV_CAP - 1 - c->len, &c->t_arrive);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r == 0 && c->len == 0 && !c->resent) {
                /* closed as the request went out (the idle deadline raced the send): sent
                 * again once on a new connection, its latency still from the scheduled time */
                close(c->fd);
                unsigned q = (unsigned)(c->idx % NREQ);
                if ((c->fd = tcp_connect(L->port)) < 0 ||
                    send_all(c->fd, L->req[q], L->req_len[q]) < 0) {
                    load_fail(L, "%s: sent again on a new connection: %s", L->req[q],
                              strerror(errno));
                    break;
                }
                c->resent = true;
                L->resent++;
                continue;
            }
            if (r <= 0) {
                load_fail(L, "%s: %s", L->req[c->idx % NREQ],
                          r == 0 ? "the server closed the connection before answering"
                                 : strerror(errno));
                break;
            }
            c->len += (size_t)r;
            int status = 0;
            size_t hl = 0, total = 0;
            bool cl = false;
            int hp = http_parse(c->buf, c->len, &status, &hl, &total, &cl);
            if (hp < 0 || (hp == 0 && c->len >= RECV_CAP - 1)) {
                load_fail(L, "%s: not an HTTP/1.1 answer with a Content-Length",
                          L->req[c->idx % NREQ]);
                break;
            }
            if (hp == 0)
                continue;
            if (c->len != total) {
                load_fail(L, "%zu bytes after a complete answer (no pipelining was asked)",
                          c->len - total);
                break;
            }
            on_answer(L, c, status, total - hl, t);
            c->busy = false;
            if (free_since == 0) /* free since the answer arrived, read or not */
                free_since = c->t_arrive && c->t_arrive <= t ? c->t_arrive : t;
            if (cl) {
                close(c->fd);
                c->fd = -1;
            }
        }
        if (L->fatal)
            break;
    }
    close(tfd);
    uint64_t end_due = limit != UINT64_MAX ? limit : next;
    L->unsent = end_due > next ? end_due - next : 0;
    for (int i = 0; i < NCONN; i++)
        if (L->c[i].fd >= 0) {
            close(L->c[i].fd);
            L->c[i].fd = -1;
        }
    return NULL;
}

static void load_start(load_t *L, uint16_t port)
{
    L->port = port;
    memset(&L->all, 0, sizeof L->all);
    memset(&L->ingest, 0, sizeof L->ingest);
    memset(L->kind, 0, sizeof L->kind);
    memset(&L->service, 0, sizeof L->service);
    memset(&L->late, 0, sizeof L->late);
    memset(&L->wake, 0, sizeof L->wake);
    memset(&L->gen, 0, sizeof L->gen);
    memset(&L->pool, 0, sizeof L->pool);
    memset(&L->excl, 0, sizeof L->excl);
    L->behind = false;
    L->backlog_n = 0;
    memset(&L->arrive, 0, sizeof L->arrive);
    memset(&L->readlate, 0, sizeof L->readlate);
    L->sent = L->done = L->ok = L->warmup = L->other = L->unsent = L->max_backlog = 0;
    L->over_1ms = L->other_max = 0;
    L->reopened = L->resent = 0;
    memset(L->kind_done, 0, sizeof L->kind_done);
    memset(L->kind_ok, 0, sizeof L->kind_ok);
    memset(L->kind_bytes, 0, sizeof L->kind_bytes);
    memset(L->kind_warm, 0, sizeof L->kind_warm);
    memset(L->kind_other, 0, sizeof L->kind_other);
    memset(L->seen_ok, 0, sizeof L->seen_ok);
    L->ncodes = 0;
    memset(L->code_n, 0, sizeof L->code_n);
    L->fatal = false;
    L->err[0] = '\0';
    L->first_other[0] = '\0';
    atomic_store(&L->ingest_from, 0);
    atomic_store(&L->ingest_to, 0);
    atomic_store(&L->stop, 0);
    for (int i = 0; i < NCONN; i++) {
        L->c[i].busy = false;
        if ((L->c[i].fd = tcp_connect(port)) < 0)
            die("query load: connect to 127.0.0.1:%u: %s", port, strerror(errno));
    }
    L->t0 = clock_mono_ns() + 1000000;
    int rc = pthread_create(&L->th, NULL, load_main, L);
    if (rc != 0)
        die("pthread_create: %s", strerror(rc));
}

static void load_stop(load_t *L)
{
    atomic_store(&L->stop, 1);
    pthread_join(L->th, NULL);
}

/* ---- RSS sampler -------------------------------------------------------------------------------
 */

typedef struct rss {
    int fd;
    pthread_t th;
    _Atomic int stop;
    size_t n;
    uint64_t v[RSS_CAP];
} rss_t;

static uint64_t rss_read(int fd)
{
    char b[128];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    unsigned long long size = 0, res = 0;
    if (sscanf(b, "%llu %llu", &size, &res) != 2)
        return 0;
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void *rss_main(void *arg)
{
    rss_t *r = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        uint64_t v = rss_read(r->fd);
        if (v && r->n < RSS_CAP)
            r->v[r->n++] = v;
        if (atomic_load(&r->stop))
            break;
        next.tv_nsec += 100000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    return NULL;
}

/* ---- one run: a server, a feed, the load ------------------------------------------------------
 */

typedef struct run {
    const char *name; /* "tcp", "udp", "udp-paced", "tcp-peak", "tcp-1m": names the logs */
    bool udp;
    const char *rate;   /* the feed's --rate */
    double pace;        /* that rate in msg/s (0: max); control-idle lasts messages / pace */
    double ingest_rate; /* messages taken per second, server side */
    double p50_ms, p99_ms, p999_ms, lost, gaps;
    double service_p99_ms, service_p999_ms;     /* from the actual send: the server's part */
    double demotions;                           /* tickcore_http_boost_demotions_total */
    double gen_p99_ms;                          /* the load thread's own lateness, every request */
    double excl_p99_ms, excl_p999_ms;           /* from the scheduled time less that lateness */
    double ing_p50_ms, ing_p99_ms, ing_p999_ms; /* while ingesting (control-idle: after the lead) */
    int boost;                                  /* http.boost asked for: 1, 0, -1 default */
    bool realtime;                              /* its HTTP thread at SCHED_FIFO at the end */
    bool incomplete;                            /* next_sequence never reached messages + 1 */
} run_t;

static const char *g_bin;
static char g_day[600];
static uint64_t g_messages;

static int healthz(hconn_t *ctl, uint16_t port, uint64_t *next_seq, uint64_t *taken, char *err,
                   size_t errlen)
{
    int st;
    const char *body;
    if (hget(ctl, port, "/healthz", &st, &body, err, errlen) < 0)
        return -1;
    double a, b;
    if (!json_num(body, "next_sequence", &a) || !json_num(body, "messages", &b)) {
        snprintf(err, errlen, "/healthz answered %d without next_sequence/messages: %.200s", st,
                 body);
        return -1;
    }
    *next_seq = (uint64_t)a;
    *taken = (uint64_t)b;
    return st;
}

static void print_lat(const char *label, const histo_t *h)
{
    if (!h->n) {
        printf("  %-30s no 200 answers\n", label);
        return;
    }
    printf(
        "  %-30s %7" PRIu64 " answers  p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  max %7.3f ms\n",
        label, h->n, (double)histo_quantile(h, 0.5) * 1e-6, (double)histo_quantile(h, 0.99) * 1e-6,
        (double)histo_quantile(h, 0.999) * 1e-6, (double)h->max * 1e-6);
}

/* ---- the target: tickcore, or the control (bench/http_control) ------------------------------
 */

enum { T_TICKCORE, T_CONTROL, T_CONTROL_IDLE };
static int g_target;
static const char *const target_name[] = {"tickcore", "control", "ctl-idle"};
static char g_control[1024]; /* the control's binary */

/* Wait until the program just spawned (pid, its output in out) answers /healthz on port with 200,
 * over ctl; die naming it (what) if it ends first or is not up within START_TIMEOUT_NS. Returns
 * the seconds it took. */
static double wait_up(const run_t *R, pid_t pid, const char *out, const char *what, hconn_t *ctl,
                      uint16_t port)
{
    char err[600];
    uint64_t t = clock_mono_ns();
    for (;;) {
        int ws, st = 0;
        const char *body;
        if (reap(pid, 0, &ws)) {
            print_tail(out, 20);
            die("%s: %s ended at start-up (%s)", R->name, what, wait_text(ws, err, 100));
        }
        if (hget(ctl, port, "/healthz", &st, &body, err, sizeof err) == 0 && st == 200)
            return (double)(clock_mono_ns() - t) * 1e-9;
        if (clock_mono_ns() - t > START_TIMEOUT_NS) {
            print_tail(out, 20);
            die("%s: %s did not answer /healthz within %.0f s: %s", R->name, what,
                (double)START_TIMEOUT_NS * 1e-9, err);
        }
        sleep_ns(20000000);
    }
}

/* bench/http_control on a free loopback port, up when its /healthz answers 200 (over ctl, closed
 * after); its output in out. */
static pid_t control_start(const run_t *R, bool boost, hconn_t *ctl, uint16_t *port, char *out,
                           size_t outcap)
{
    *port = free_port(SOCK_STREAM);
    char a_port[16];
    snprintf(a_port, sizeof a_port, "%u", *port);
    snprintf(out, outcap, "%s/control-%s.out", g_dir, R->name);
    char *argv[] = {g_control, "--port", a_port, boost ? "--boost" : NULL, NULL};
    pid_t pid = spawn(argv, out, NULL);
    wait_up(R, pid, out, g_control, ctl, *port);
    if (ctl->fd >= 0) {
        close(ctl->fd);
        ctl->fd = -1;
    }
    return pid;
}

/* SIGTERM to the control: a clean stop, its count of requests answered printed. */
static void control_stop(const run_t *R, const load_t *L, pid_t pid, const char *out)
{
    kill(pid, SIGTERM);
    int ws;
    char err[100];
    if (!reap(pid, 10000000000ull, &ws)) {
        print_tail(out, 20);
        die("%s: %s still running 10 s after SIGTERM", R->name, g_control);
    }
    char line[512] = "", got[512] = "";
    FILE *f = fopen(out, "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "requests answered") || strstr(line, "listening on"))
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", got[0] ? "; " : "",
                     (int)strcspn(line, "\n"), line);
    if (f)
        fclose(f);
    printf("control: %s; %s; the load thread sent %" PRIu64 "\n", got[0] ? got : "no output",
           wait_text(ws, err, sizeof err), L->sent);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !strstr(got, "requests answered")) {
        print_tail(out, 20);
        g_failed = 1;
    }
}

/* The query figures of a run, whatever answered (printed; the summary's into R). */
static void print_queries(run_t *R, load_t *L)
{
    printf("queries (open loop, %u/s over %d keep-alive connections, load thread %s; latency from "
           "the scheduled send time to the whole answer):\n",
           RATE_HZ, NCONN, L->rt ? "SCHED_FIFO 2" : "default priority");
    printf("  %" PRIu64 " sent, %" PRIu64 " answered: %" PRIu64 " 200, %" PRIu64
           " warm-up (404/503 before the endpoint's first 200: no directory or cross-section "
           "yet), %" PRIu64 " other",
           L->sent, L->done, L->ok, L->warmup, L->other);
    for (int i = 0; i < L->ncodes; i++)
        printf("%s%" PRIu64 " x %d", i ? ", " : " (", L->code_n[i], L->codes[i]);
    printf("%s; most requests waiting for a free connection: %" PRIu64 "; idle connections "
           "the server closed, opened again: %" PRIu64 ", requests sent again: %" PRIu64 "\n",
           L->ncodes ? ")" : "", L->max_backlog, L->reopened, L->resent);
    if (L->first_other[0])
        printf("  the first other answer: %s\n", L->first_other);
    print_lat("200 answers, whole run", &L->all);
    print_lat(g_target == T_CONTROL_IDLE ? "200 answers, after the lead"
                                         : "200 answers, while ingesting",
              &L->ingest);
    for (int k = 0; k < K_COUNT; k++)
        print_lat(kind_name[k], &L->kind[k]);
    print_lat("200 answers, from actual send", &L->service);
    printf("  answer body bytes per endpoint (mean of the 200 answers):");
    for (int k = 0; k < K_COUNT; k++)
        printf("%s %s %.0f", k ? "," : "", kind_name[k],
               L->kind_ok[k] ? (double)L->kind_bytes[k] / (double)L->kind_ok[k] : 0.0);
    printf("\n");
    printf("  send delay (actual send - scheduled time, all requests): p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms (the load thread's own lateness plus waits for a free connection)\n",
           (double)histo_quantile(&L->late, 0.5) * 1e-6,
           (double)histo_quantile(&L->late, 0.99) * 1e-6, (double)L->late.max * 1e-6);
    printf("  the load thread's own wake-up lateness (timed waits that expired, %" PRIu64
           "): p50 %.3f ms, p99 %.3f ms, max %.3f ms (CPU contention on the client side)\n",
           L->wake.n, (double)histo_quantile(&L->wake, 0.5) * 1e-6,
           (double)histo_quantile(&L->wake, 0.99) * 1e-6, (double)L->wake.max * 1e-6);
    printf("  the send delay in two (all requests): the load thread's own lateness p50 %.3f ms, "
           "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (the generator; timed waits end %.0f us "
           "early, spun to the due time); waiting for a free connection, the answers before "
           "it still due, p99 %.3f ms, max %.3f ms (the server's)\n",
           (double)histo_quantile(&L->gen, 0.5) * 1e-6,
           (double)histo_quantile(&L->gen, 0.99) * 1e-6,
           (double)histo_quantile(&L->gen, 0.999) * 1e-6, (double)L->gen.max * 1e-6,
           (double)L->spin_ns * 1e-3, (double)histo_quantile(&L->pool, 0.99) * 1e-6,
           (double)L->pool.max * 1e-6);
    print_lat("200, send -> kernel receive", &L->arrive);
    print_lat("200, kernel receive -> read", &L->readlate);
    print_lat("200, server's part from sched", &L->excl);
    printf(
        "  (the server's part from the scheduled time: to the kernel's receive time of the answer "
        "(SO_TIMESTAMPNS), less the load thread's lateness in sending; a connection is free "
        "from its answer's receive time; left out: %" PRIu64 " answers to requests sent while "
        "the load thread caught up after being late by more than a period, whose wait for a "
        "connection was its own backlog)\n",
        L->backlog_n);
    R->gen_p99_ms = L->gen.n ? (double)histo_quantile(&L->gen, 0.99) * 1e-6 : 0;
    R->excl_p99_ms = L->excl.n ? (double)histo_quantile(&L->excl, 0.99) * 1e-6 : 0;
    R->excl_p999_ms = L->excl.n ? (double)histo_quantile(&L->excl, 0.999) * 1e-6 : 0;
    R->p50_ms = L->all.n ? (double)histo_quantile(&L->all, 0.5) * 1e-6 : 0;
    R->p99_ms = L->all.n ? (double)histo_quantile(&L->all, 0.99) * 1e-6 : 0;
    R->service_p99_ms = L->service.n ? (double)histo_quantile(&L->service, 0.99) * 1e-6 : 0;
    R->service_p999_ms = L->service.n ? (double)histo_quantile(&L->service, 0.999) * 1e-6 : 0;
    double p99i = L->ingest.n ? (double)histo_quantile(&L->ingest, 0.99) * 1e-6 : 0;
    R->ing_p50_ms = L->ingest.n ? (double)histo_quantile(&L->ingest, 0.5) * 1e-6 : 0;
    R->ing_p99_ms = p99i;
    R->ing_p999_ms = L->ingest.n ? (double)histo_quantile(&L->ingest, 0.999) * 1e-6 : 0;
    /* paced runs: p99 < 1 ms and p99.9 < 5 ms; at max rate the server has no CPU to spare and
     * the bar is p99 < 5 ms */
    bool paced = strcmp(R->rate, "max") != 0;
    double bar = paced ? 1.0 : 5.0;
    double p999 = L->all.n ? (double)histo_quantile(&L->all, 0.999) * 1e-6 : 0;
    R->p999_ms = p999;
    printf("  answers over 1 ms: %" PRIu64 " of %" PRIu64 "  [target p99 < %.0f ms: whole run %s, "
           "%s %s",
           L->over_1ms, L->ok, bar, R->p99_ms < bar ? "met" : "MISSED",
           g_target == T_CONTROL_IDLE ? "after the lead (no ingest)" : "while ingesting",
           p99i < bar ? "met" : "MISSED");
    if (paced)
        printf("; p99.9 < 5 ms: %s", p999 < 5.0 ? "met" : "MISSED");
    printf("]\n");
    if (L->fatal) {
        printf("  ERROR: query load: %s\n", L->err);
        g_failed = 1;
    }
    if (L->unsent) {
        printf("  ERROR: %" PRIu64 " requests due were never sent\n", L->unsent);
        g_failed = 1;
    }
}

/* The control alone: no server, no feed; the load for as long as the run's feed would take. */
static void run_idle(run_t *R, load_t *L, hconn_t *ctl)
{
    const char *bo = getenv("TICKCORE_BENCH_SERVE_BOOST");
    bool boost = !(bo && strcmp(bo, "off") == 0);
    double secs = (double)g_messages / (R->pace > 0 ? R->pace : 2e6);
    printf("\n== %s: no tickcore serve, no feed (control-idle): %s answers 1,000 queries/s for "
           "%.3f s after the %.1f s lead (%" PRIu64 " messages at %s)\n",
           R->name, g_control, secs, (double)LEAD_NS * 1e-9, g_messages, R->rate);
    fflush(stdout);
    char cout[700];
    uint16_t cport;
    pid_t cpid = control_start(R, boost, ctl, &cport, cout, sizeof cout);
    load_start(L, cport);
    sleep_ns(LEAD_NS);
    /* the window a feed would take: its answers are the "while ingesting" figures' peers */
    atomic_store(&L->ingest_from, clock_mono_ns());
    sleep_ns((uint64_t)(secs * 1e9));
    atomic_store(&L->ingest_to, clock_mono_ns());
    load_stop(L);
    R->boost = boost ? 1 : 0;
    print_queries(R, L);
    control_stop(R, L, cpid, cout);
    fflush(stdout);
}

static void run_one(run_t *R, load_t *L, rss_t *rs, hconn_t *ctl)
{
    char journal[700], slog[700], sout[700], fout[700], ferr[700], err[600];
    snprintf(journal, sizeof journal, "%s/journal-%s.itch", g_dir, R->name);
    snprintf(slog, sizeof slog, "%s/serve-%s.log", g_dir, R->name);
    snprintf(sout, sizeof sout, "%s/serve-%s.out", g_dir, R->name);
    snprintf(fout, sizeof fout, "%s/feed-%s.json", g_dir, R->name);
    snprintf(ferr, sizeof ferr, "%s/feed-%s.err", g_dir, R->name);
    uint16_t tcp = free_port(SOCK_STREAM), udp = free_port(SOCK_DGRAM),
             http = free_port(SOCK_STREAM);
    char a_tcp[64], a_udp[64], a_http[64], a_j[800], a_log[800], a_to[64];
    snprintf(a_tcp, sizeof a_tcp, "live.tcp_port=%u", tcp);
    snprintf(a_udp, sizeof a_udp, "live.udp_port=%u", udp);
    snprintf(a_http, sizeof a_http, "http.port=%u", http);
    snprintf(a_j, sizeof a_j, "journal.path=%s", journal);
    snprintf(a_log, sizeof a_log, "server.log=%s", slog);
    snprintf(a_to, sizeof a_to, "%s://127.0.0.1:%u", R->udp ? "udp" : "tcp", R->udp ? udp : tcp);
    /* http.boost (the HTTP thread ahead of the ingest threads): the binary's own default, so
     * that an A/B of two binaries compares what each does out of the box;
     * TICKCORE_BENCH_SERVE_BOOST=on (or off) sets it in every run */
    const char *bo = getenv("TICKCORE_BENCH_SERVE_BOOST");
    const int boost = bo && strcmp(bo, "on") == 0 ? 1 : bo && strcmp(bo, "off") == 0 ? 0 : -1;
    char *sargv[] = {
        (char *)g_bin, "serve", "--set", a_tcp,
        "--set",       a_udp,   "--set", a_http,
        "--set",       a_j,     "--set", "journal.fsync=interval",
        "--set",       a_log,   "--set", boost ? "http.boost=true" : "http.boost=false",
        NULL};
    if (boost < 0)
        sargv[14] = NULL; /* neither --set http.boost */
    if (g_target == T_CONTROL_IDLE) {
        run_idle(R, L, ctl);
        return;
    }
    printf("\n== %s: tickcore feed --to %s --rate %s, into tickcore serve (journal fsync "
           "interval), 1,000 queries/s answered by %s\n",
           R->name, a_to, R->rate, g_target == T_CONTROL ? g_control : "tickcore serve");
    fflush(stdout);
    /* the control first (its /healthz over ctl, closed after): then the server as ever */
    char cout[700] = "";
    uint16_t cport = 0;
    pid_t cpid =
        g_target == T_CONTROL ? control_start(R, boost != 0, ctl, &cport, cout, sizeof cout) : 0;

    /* the server, up when /healthz answers */
    pid_t spid = spawn(sargv, sout, NULL);
    double up_s = wait_up(R, spid, sout, "tickcore serve", ctl, http);
    uint64_t next_seq = 0, taken = 0;
    if (healthz(ctl, http, &next_seq, &taken, err, sizeof err) != 200)
        die("%s: tickcore serve's /healthz after start-up: %s", R->name, err);
    if (next_seq != 1 || taken != 0)
        die("%s: a fresh server expects sequence number %" PRIu64 " with %" PRIu64
            " messages taken (1 and 0 expected)",
            R->name, next_seq, taken);
    char statm[64];
    snprintf(statm, sizeof statm, "/proc/%d/statm", (int)spid);
    rs->fd = open(statm, O_RDONLY | O_CLOEXEC);
    if (rs->fd < 0)
        die("%s: %s", statm, strerror(errno));

    /* queries first (idle server), then the RSS sampler and the feed */
    load_start(L, g_target == T_CONTROL ? cport : http);
    sleep_ns(LEAD_NS);
    rs->n = 0;
    atomic_store(&rs->stop, 0);
    int rc = pthread_create(&rs->th, NULL, rss_main, rs);
    if (rc != 0)
        die("pthread_create: %s", strerror(rc));
    sleep_ns(1000000); /* the first sample: RSS at the start of the feed */
    char *fargv[] = {(char *)g_bin, "feed",          g_day,    "--to", a_to,
                     "--rate",      (char *)R->rate, "--json", NULL};
    uint64_t t_spawn = clock_mono_ns();
    atomic_store(&L->ingest_from, t_spawn);
    pid_t fpid = spawn(fargv, fout, ferr);
    uint64_t t_first = 0, t_done = 0, t_exit = 0, want = g_messages + 1;
    uint64_t last_seq = 0, t_progress = t_spawn;
    bool fed = false;
    int fws = 0;
    for (;;) {
        uint64_t t1 = clock_mono_ns();
        int st = healthz(ctl, http, &next_seq, &taken, err, sizeof err);
        uint64_t t2 = clock_mono_ns();
        if (st < 0) {
            print_tail(sout, 20);
            die("%s: while feeding: %s", R->name, err);
        }
        if (st != 200) {
            print_tail(slog, 20);
            die("%s: while feeding, /healthz answered %d (the server stopped taking data)", R->name,
                st);
        }
        if (!t_first && taken > 0)
            t_first = t2;
        if (next_seq != last_seq) {
            last_seq = next_seq;
            t_progress = t2;
        }
        if (next_seq >= want) {
            t_done = t2;
            break;
        }
        if (!fed && reap(fpid, 0, &fws)) {
            fed = true;
            t_exit = t2;
            if (!WIFEXITED(fws) || WEXITSTATUS(fws) != 0) {
                print_tail(ferr, 20);
                print_tail(fout, 5);
                die("%s: tickcore feed failed (%s)", R->name, wait_text(fws, err, 100));
            }
        }
        if (fed && t2 - t_exit > STUCK_NS && t2 - t_progress > STUCK_NS) {
            /* reported as an error below; the rest of the run is still measured */
            R->incomplete = true;
            t_done = t_progress;
            break;
        }
        if (t2 - t_spawn > RUN_TIMEOUT_NS)
            die("%s: not done %.0f s after the feed started (taken %" PRIu64
                ", next sequence %" PRIu64 ")",
                R->name, (double)RUN_TIMEOUT_NS * 1e-9, taken, next_seq);
        uint64_t step = t_first ? POLL_NS : 1000000; /* 1 ms until the first message */
        if (t2 - t1 < step)
            sleep_ns(step - (t2 - t1));
    }
    atomic_store(&L->ingest_to, t_done);
    atomic_store(&rs->stop, 1);
    pthread_join(rs->th, NULL);
    close(rs->fd);
    load_stop(L);

    /* the feed ends (UDP: after lingering for retransmission requests) */
    if (!fed) {
        if (!reap(fpid, 60000000000ull, &fws)) {
            kill(fpid, SIGTERM);
            die("%s: tickcore feed still running 60 s after the server took everything", R->name);
        }
        t_exit = clock_mono_ns();
        if (!WIFEXITED(fws) || WEXITSTATUS(fws) != 0) {
            print_tail(ferr, 20);
            die("%s: tickcore feed failed (%s)", R->name, wait_text(fws, err, 100));
        }
    }
    static char fjson[65536];
    FILE *ff = fopen(fout, "r");
    size_t fn = ff ? fread(fjson, 1, sizeof fjson - 1, ff) : 0;
    if (ff)
        fclose(ff);
    fjson[fn] = '\0';
    double f_msgs = 0, f_secs = 0, f_rate = 0;
    if (!json_num(fjson, "messages", &f_msgs) || !json_num(fjson, "seconds", &f_secs) ||
        !json_num(fjson, "rate", &f_rate)) {
        print_tail(fout, 5);
        die("%s: tickcore feed --json printed no messages/seconds/rate", R->name);
    }

    /* the server's own counters */
    int mst = 0;
    const char *m = NULL;
    if (hget(ctl, http, "/metrics", &mst, &m, err, sizeof err) < 0)
        die("%s: /metrics: %s", R->name, err);
    if (mst != 200)
        die("%s: /metrics answered %d: %.300s", R->name, mst, m);
    double churn = 0, m_total = 0, gaps = 0, rec = 0, lost = 0, rereq = 0, dups = 0, full_waits = 0,
           jwaits = 0, fsyncs = 0, rss_m = 0, dgrams = 0, store_full = 0, held_peak = 0,
           lost_gaps = 0, http_rt = 0, demotions = 0;
    int churn_tags = prom_sum(m, "tickcore_memory_churn_total", &churn);
    prom_sum(m, "tickcore_messages_total", &m_total);
    prom_sum(m, "tickcore_udp_gaps_total", &gaps);
    prom_sum(m, "tickcore_udp_recovered_messages_total", &rec);
    prom_sum(m, "tickcore_udp_lost_messages_total", &lost);
    prom_sum(m, "tickcore_udp_rerequests_total", &rereq);
    prom_sum(m, "tickcore_udp_datagrams_total", &dgrams);
    prom_sum(m, "tickcore_udp_reorder_full_total", &store_full);
    prom_sum(m, "tickcore_udp_reorder_peak_bytes", &held_peak);
    prom_sum(m, "tickcore_udp_lost_gaps_total", &lost_gaps);
    prom_sum(m, "tickcore_feed_duplicates_total", &dups);
    prom_sum(m, "tickcore_pipeline_full_waits_total", &full_waits);
    prom_sum(m, "tickcore_journal_buffer_waits_total", &jwaits);
    prom_sum(m, "tickcore_journal_fsyncs_total", &fsyncs);
    prom_sum(m, "tickcore_resident_bytes", &rss_m);
    bool have_rt = prom_sum(m, "tickcore_http_realtime", &http_rt) > 0;
    /* the server's own time per request: request line parsed -> response queued (the handler,
     * no waiting for the CPU before or after); whole server life, the warm-up included */
    double h_q[3] = {0, 0, 0};
    bool have_h =
        prom_sum(m, "tickcore_http_request_duration_seconds{quantile=\"0.5\"}", &h_q[0]) > 0;
    prom_sum(m, "tickcore_http_request_duration_seconds{quantile=\"0.99\"}", &h_q[1]);
    prom_sum(m, "tickcore_http_request_duration_seconds{quantile=\"0.999\"}", &h_q[2]);
    prom_sum(m, "tickcore_http_boost_demotions_total", &demotions);
    R->demotions = demotions;
    R->boost = boost;
    R->realtime = have_rt && http_rt > 0;
    R->lost = lost;
    R->gaps = gaps;
    if (ctl->fd >= 0) {
        close(ctl->fd);
        ctl->fd = -1;
    }

    /* SIGTERM: a clean stop with its report */
    kill(spid, SIGTERM);
    int sws;
    if (!reap(spid, 60000000000ull, &sws)) {
        print_tail(sout, 20);
        die("%s: tickcore serve still running 60 s after SIGTERM", R->name);
    }
    char alloc_line[512] = "";
    FILE *so = fopen(sout, "r");
    if (so) {
        char line[1024];
        while (fgets(line, sizeof line, so))
            if (strstr(line, "allocations while serving")) {
                const char *p = line + strspn(line, " ");
                snprintf(alloc_line, sizeof alloc_line, "%.*s", (int)strcspn(p, "\n"), p);
            }
        fclose(so);
    }

    /* figures */
    double with_start = (double)(t_done - t_spawn) * 1e-9;
    double secs = t_first && t_done > t_first ? (double)(t_done - t_first) * 1e-9 : with_start;
    R->ingest_rate = (double)taken / secs;
    printf("server up in %.2f s (ports tcp %u, udp %u, http %u); day %s\n", up_s, tcp, udp, http,
           g_day);
    printf("ingest: %" PRIu64 " messages taken in %.3f s = %.2f M msg/s (first message taken -> "
           "next_sequence %" PRIu64 " on /healthz)  [target >= 2 M msg/s: %s]\n",
           taken, secs, R->ingest_rate / 1e6, next_seq,
           strcmp(R->rate, "max")  ? "n/a, paced"
           : R->ingest_rate >= 2e6 ? "met"
                                   : "MISSED");
    printf("  the feed's own figure: %.0f messages in %.3f s = %.2f M msg/s; from starting the "
           "feed process: %.2f M msg/s in %.3f s\n",
           f_msgs, f_secs, f_rate / 1e6, (double)taken / with_start / 1e6, with_start);
    printf("  server: tickcore_messages_total %.0f, pipeline full waits %.0f, journal buffer "
           "waits %.0f, journal fsyncs %.0f\n",
           m_total, full_waits, jwaits, fsyncs);
    if (R->udp)
        printf("  udp: %.0f datagrams, %.0f gaps, %.0f re-requests, %.0f messages recovered, %.0f "
               "lost in %.0f gaps (%.1f%% of the day), %.0f duplicates ignored; reorder store: "
               "peak %.1f MiB held, %.0f messages found it full\n",
               dgrams, gaps, rereq, rec, lost, lost_gaps, 100.0 * lost / (double)g_messages, dups,
               held_peak / 1048576.0, store_full);
    if (R->incomplete) {
        printf("  ERROR: next_sequence stuck at %" PRIu64 " (%" PRIu64 " expected) for %.0f s "
               "after the feed ended: the server never learnt of the messages after it (%s)\n",
               next_seq, want, (double)STUCK_NS * 1e-9,
               R->udp ? "over UDP: the tail of the day and the feed's End of Session packets "
                        "were all dropped?"
                      : "over TCP nothing may be missing");
        g_failed = 1;
    } else if (!R->udp && (taken != g_messages || m_total != (double)g_messages)) {
        printf("  ERROR: over TCP every message must be taken: %" PRIu64 " of %" PRIu64 "\n", taken,
               g_messages);
        g_failed = 1;
    }
    printf("  http.boost %s: the HTTP thread at SCHED_FIFO at the end: %s; demotions to the fair "
           "boost (busy or UDP trouble): %.0f\n",
           boost > 0    ? "=true"
           : boost == 0 ? "=false"
                        : "(the binary's default)",
           have_rt ? (http_rt > 0 ? "yes" : "no") : "(no gauge)", demotions);
    if (have_h)
        printf(
            "  the server's own time per request (tickcore_http_request_duration_seconds: request "
            "line parsed -> response queued): p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n",
            h_q[0] * 1e3, h_q[1] * 1e3, h_q[2] * 1e3);
    print_queries(R, L);
    if (g_target == T_CONTROL)
        control_stop(R, L, cpid, cout);
    if (rs->n) {
        uint64_t r0 = rs->v[0], rmax = 0, rend = rs->v[rs->n - 1];
        for (size_t i = 0; i < rs->n; i++)
            if (rs->v[i] > rmax)
                rmax = rs->v[i];
        double gmax = 100.0 * ((double)rmax - (double)r0) / (double)r0;
        double gend = 100.0 * ((double)rend - (double)r0) / (double)r0;
        printf("rss (server, /proc/%d/statm every 100 ms, %zu samples): %.1f MiB at the start of "
               "the feed, max %.1f MiB (%+.2f%%), end %.1f MiB (%+.2f%%)  [flat within 5%%: %s]; "
               "/metrics tickcore_resident_bytes %.1f MiB\n",
               (int)spid, rs->n, (double)r0 / 1048576.0, (double)rmax / 1048576.0, gmax,
               (double)rend / 1048576.0, gend, gmax <= 5.0 ? "yes" : "NO", rss_m / 1048576.0);
    }
    printf("churn after the seal (/metrics tickcore_memory_churn_total, %d tags): %.0f%s\n",
           churn_tags, churn, churn == 0 && churn_tags ? "" : "  <-- ERROR: must be 0");
    if (churn != 0 || churn_tags == 0)
        g_failed = 1;
    bool clean = WIFEXITED(sws) && WEXITSTATUS(sws) == 0;
    printf("SIGTERM: tickcore serve %s; %s\n", wait_text(sws, err, 100),
           alloc_line[0] ? alloc_line : "no \"allocations while serving\" line in its report");
    if (!clean || !alloc_line[0]) {
        print_tail(sout, 20);
        g_failed = 1;
    }
    fflush(stdout);
}

/* ---- the day -----------------------------------------------------------------------------------
 */

/* Count the messages of an ITCH BinaryFILE and collect its directory's symbols (URL-encoded). */
static uint64_t scan_day(const char *path, char (*syms)[32], unsigned *nsyms)
{
    static unsigned char buf[1u << 20];
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    size_t have = 0, off = 0;
    uint64_t n = 0;
    for (;;) {
        size_t avail = have - off, need = 2;
        if (avail >= 2)
            need = 2 + ((size_t)buf[off] << 8 | buf[off + 1]);
        if (avail < need) {
            memmove(buf, buf + off, avail);
            have = avail;
            off = 0;
            size_t r = fread(buf + have, 1, sizeof buf - have, f);
            if (r == 0) {
                if (ferror(f))
                    die("%s: read error", path);
                if (avail)
                    die("%s: a record cut at the end (%zu bytes)", path, avail);
                break;
            }
            have += r;
            continue;
        }
        const unsigned char *msg = buf + off + 2;
        if (need == 2)
            die("%s: a record of length 0 after %" PRIu64 " messages", path, n);
        if (msg[0] == 'R' && need - 2 >= 19 && *nsyms < MAX_SYMS) {
            char *o = syms[*nsyms];
            size_t len = 8;
            while (len && msg[11 + len - 1] == ' ')
                len--;
            size_t w = 0;
            for (size_t i = 0; i < len; i++) {
                unsigned char ch = msg[11 + i];
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_')
                    o[w++] = (char)ch;
                else
                    w += (size_t)snprintf(o + w, 4, "%%%02X", ch);
            }
            o[w] = '\0';
            if (w)
                (*nsyms)++;
        }
        n++;
        off += need;
    }
    fclose(f);
    return n;
}

static uint64_t rng_next(uint64_t *s)
{
    return xorshift64_next(s);
}

static void build_requests(load_t *L, char (*syms)[32], unsigned nsyms)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < NREQ; i++) {
        unsigned k = mix[i % 10];
        char path[256];
        if (k == K_SYMBOL) {
            snprintf(path, sizeof path, "/v1/symbols/%s?depth=5", syms[rng_next(&s) % nsyms]);
        } else if (k == K_CORR) {
            unsigned a = (unsigned)(rng_next(&s) % nsyms), b = a, c = a;
            while (nsyms >= 3 && (b == a))
                b = (unsigned)(rng_next(&s) % nsyms);
            while (nsyms >= 3 && (c == a || c == b))
                c = (unsigned)(rng_next(&s) % nsyms);
            snprintf(path, sizeof path, "/v1/correlation?symbols=%s,%s,%s", syms[a], syms[b],
                     syms[c]);
        } else {
            snprintf(path, sizeof path, "%s",
                     k == K_METRICS ? "/metrics"
                     : k == K_MST   ? "/v1/mst"
                                    : "/healthz");
        }
        int n = snprintf(L->req[i], REQ_LEN, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
        L->req_len[i] = (uint16_t)n;
        L->req_kind[i] = (uint8_t)k;
    }
}

/* Is name one of the comma-separated names in list? */
static bool name_listed(const char *name, const char *list)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0)
            return true;
        p += k + (p[k] == ',');
    }
    return false;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    bench_print_machine(stdout);
    g_messages = bench_env_count("TICKCORE_BENCH_SERVE_MESSAGES", DEFAULT_MESSAGES);
    if (g_messages < 1000) {
        fprintf(stderr, "bench_serve: TICKCORE_BENCH_SERVE_MESSAGES=%" PRIu64 ": at least 1000\n",
                g_messages);
        return 1;
    }
    run_t runs[] = {{.name = "tcp", .udp = false, .rate = "max"},
                    {.name = "udp", .udp = true, .rate = "max"},
                    {.name = "udp-paced", .udp = true, .rate = "2M/s", .pace = 2e6},
                    /* a peak NASDAQ second, sustained: query latency when the feed leaves CPU */
                    {.name = "tcp-peak", .udp = false, .rate = "560k/s", .pace = 560e3},
                    /* about twice the busiest NASDAQ second, live: the query latency target */
                    {.name = "tcp-1m", .udp = false, .rate = "1M/s", .pace = 1e6}};
    size_t nruns = sizeof runs / sizeof runs[0];
    const char *only = getenv("TICKCORE_BENCH_SERVE_RUNS");
    if (only) {
        size_t nsel = 0;
        for (size_t i = 0; i < nruns; i++)
            if (name_listed(runs[i].name, only))
                runs[nsel++] = runs[i];
        if (nsel == 0)
            die("TICKCORE_BENCH_SERVE_RUNS=%s names no run (tcp, udp, udp-paced, tcp-peak, tcp-1m)",
                only);
        nruns = nsel;
    }
    const char *tgt = getenv("TICKCORE_BENCH_SERVE_TARGET");
    if (tgt && *tgt) {
        static const char *const env_name[] = {"tickcore", "control", "control-idle"};
        for (g_target = 0; g_target < 3 && strcmp(tgt, env_name[g_target]) != 0; g_target++)
            ;
        if (g_target == 3)
            die("TICKCORE_BENCH_SERVE_TARGET=%s: expected tickcore, control or control-idle", tgt);
    }
    if (g_target != T_TICKCORE) {
        const char *cb = getenv("TICKCORE_BENCH_SERVE_CONTROL");
        if (cb && *cb) {
            snprintf(g_control, sizeof g_control, "%s", cb);
        } else { /* http_control beside this binary */
            ssize_t n = readlink("/proc/self/exe", g_control, sizeof g_control - 20);
            if (n <= 0)
                die("readlink /proc/self/exe: %s", strerror(errno));
            g_control[n] = '\0';
            char *slash = strrchr(g_control, '/');
            snprintf(slash ? slash + 1 : g_control, 20, "http_control");
        }
        if (access(g_control, X_OK) != 0)
            die("the control %s: %s (make RELEASE=1 build/release/bench/http_control, or set "
                "TICKCORE_BENCH_SERVE_CONTROL)",
                g_control, strerror(errno));
    }
    g_bin = getenv("TICKCORE_BIN");
    if (g_bin && access(g_bin, X_OK) != 0)
        die("TICKCORE_BIN=%s: %s", g_bin, strerror(errno));
    if (!g_bin)
        g_bin = access("build/release/tickcore", X_OK) == 0 ? "build/release/tickcore"
                : access("build/tickcore", X_OK) == 0       ? "build/tickcore"
                                                            : NULL;
    if (!g_bin)
        die("no tickcore binary: set TICKCORE_BIN, or build build/release/tickcore "
            "(make RELEASE=1 build/release/tickcore) from the repository root");

    /* every buffer of the bench, before the first run */
    load_t *L = calloc(1, sizeof *L);
    rss_t *rs = calloc(1, sizeof *rs);
    hconn_t ctl = {.fd = -1};
    static char syms[MAX_SYMS][32];
    if (!L || !rs)
        die("out of memory");
    ctl.buf = malloc(RECV_CAP);
    for (int i = 0; i < NCONN; i++) {
        L->c[i].fd = -1;
        L->c[i].buf = malloc(RECV_CAP);
        if (!L->c[i].buf)
            die("out of memory");
        memset(L->c[i].buf, 0, RECV_CAP); /* touched now, not during the run */
    }
    if (!ctl.buf)
        die("out of memory");
    memset(ctl.buf, 0, RECV_CAP);

    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tickcore-bench-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        int e = errno;
        char d[512];
        snprintf(d, sizeof d, "%s", g_dir);
        g_dir[0] = '\0';
        die("mkdtemp %s: %s", d, strerror(e));
    }
    snprintf(g_day, sizeof g_day, "%s/day.itch", g_dir);
    char count[32], gout[700];
    snprintf(count, sizeof count, "%" PRIu64, g_messages);
    snprintf(gout, sizeof gout, "%s/gen.out", g_dir);
    char *gargv[] = {(char *)g_bin, "gen", "--messages", count,   "--symbols", DAY_SYMBOLS,
                     "--seed",      "1",   "--no-truth", "--out", g_day,       NULL};
    double tg = clock_mono_s();
    int ws;
    pid_t gp = spawn(gargv, gout, NULL);
    if (!reap(gp, RUN_TIMEOUT_NS, &ws)) {
        kill(gp, SIGKILL);
        die("tickcore gen did not finish in %.0f s", (double)RUN_TIMEOUT_NS * 1e-9);
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        char b[100];
        print_tail(gout, 20);
        die("%s gen failed (%s)", g_bin, wait_text(ws, b, sizeof b));
    }
    tg = clock_mono_s() - tg;
    unsigned nsyms = 0;
    uint64_t n = scan_day(g_day, syms, &nsyms);
    if (n != g_messages)
        die("%s holds %" PRIu64 " messages, %" PRIu64 " were asked for", g_day, n, g_messages);
    if (nsyms == 0)
        die("%s has no stock directory (R) messages", g_day);
    build_requests(L, syms, nsyms);
    /* TICKCORE_BENCH_SERVE_SPIN_US: how long before a send's due time its timed wait ends and
     * the load thread spins (default 50 us, 5% of a core at 1,000 requests/s; 0: no spin) */
    const char *spin = getenv("TICKCORE_BENCH_SERVE_SPIN_US");
    L->spin_ns = spin && *spin ? strtoull(spin, NULL, 10) * 1000ull : 0;
    printf("bench_serve: %s; day: %" PRIu64 " ITCH messages, %u symbols, generated in %.2f s\n",
           g_bin, g_messages, nsyms, tg);
    printf("query mix (each second, in order): 50%% %s, 20%% %s, 10%% each %s, %s, %s\n",
           kind_name[K_SYMBOL], kind_name[K_CORR], kind_name[K_METRICS], kind_name[K_MST],
           kind_name[K_HEALTHZ]);

    for (size_t i = 0; i < nruns; i++)
        run_one(&runs[i], L, rs, &ctl);

    /* one line per run, fixed columns: bench/serve_ab.sh reads them */
    printf("\nsummary (server side, messages taken per second; ratios to %s; query latency from "
           "the scheduled send, p99 also from the actual send):\n",
           runs[0].name);
    printf("  %-10s %-6s %8s %6s %6s %9s %8s %8s %9s %10s %10s %5s %8s %8s %9s %10s %9s %8s %8s "
           "%9s\n",
           "run", "rate", "M msg/s", "ratio", "gaps", "lost msgs", "p50 ms", "p99 ms", "p99.9 ms",
           "sent p99", "sent p99.9", "boost", "demoted", "gen p99", "excl p99", "excl p99.9",
           "answered", "ing p50", "ing p99", "ing p99.9");
    for (size_t i = 0; i < nruns; i++)
        printf(
            "  %-10s %-6s %8.2f %6.2f %6.0f %9.0f %8.3f %8.3f %9.3f %10.3f %10.3f %5s %8.0f %8.3f "
            "%9.3f %10.3f %9s %8.3f %8.3f %9.3f%s\n",
            runs[i].name, runs[i].rate, runs[i].ingest_rate / 1e6,
            runs[0].ingest_rate > 0 ? runs[i].ingest_rate / runs[0].ingest_rate : 0.0, runs[i].gaps,
            runs[i].lost, runs[i].p50_ms, runs[i].p99_ms, runs[i].p999_ms, runs[i].service_p99_ms,
            runs[i].service_p999_ms,
            runs[i].boost > 0    ? "on"
            : runs[i].boost == 0 ? "off"
            : runs[i].realtime   ? "dflt+"
                                 : "dflt-",
            runs[i].demotions, runs[i].gen_p99_ms, runs[i].excl_p99_ms, runs[i].excl_p999_ms,
            target_name[g_target], runs[i].ing_p50_ms, runs[i].ing_p99_ms, runs[i].ing_p999_ms,
            runs[i].incomplete ? "  INCOMPLETE (stuck before the end)" : "");
    if (g_failed)
        printf("ERRORS above\n");
    clean_dir(g_failed != 0);
    if (g_failed)
        fprintf(stderr, "bench_serve: errors; logs kept in %s\n", g_dir);
    for (int i = 0; i < NCONN; i++)
        free(L->c[i].buf);
    free(ctl.buf);
    free(L);
    free(rs);
    return g_failed ? 1 : 0;
}
