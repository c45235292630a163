/*
 * http_control: the control of bench_serve's query latency, an HTTP responder that does no work
 * per request. It runs libmicrohttpd as tickcore's server does (server/http.c: one internal
 * polling thread, epoll, an inter-thread channel, 127.0.0.1, the same connection limit, per
 * connection memory, timeout and listen backlog; a GET without a body answered on the handler's
 * second call, once the request is complete, so the connection stays alive) and answers every GET
 * with a response built once at start-up, of the size of tickcore's answer to the same endpoint
 * in bench_serve's mix (bodies of `--bytes SYMBOL,CORRELATION,METRICS,MST,HEALTHZ`; the defaults
 * are the mean sizes bench_serve printed for tickcore's answers in a tcp-1m run; any other path:
 * the /healthz body). The MHD_Response objects, with their Content-Type and Cache-Control headers,
 * are made before the daemon starts and queued again for every request (libmicrohttpd counts
 * their references), so what is left per request is libmicrohttpd's own and the kernel's.
 * `--boost` starts the daemon from a thread at SCHED_FIFO 1, which its polling thread inherits:
 * tickcore's HTTP thread under http.boost while the feed keeps up. With `--port 0` the kernel
 * picks the port. Prints "http_control: listening on 127.0.0.1:PORT" once it answers, runs until
 * SIGTERM or SIGINT, then prints the requests it answered and exits 0. bench_serve starts it when
 * TICKCORE_BENCH_SERVE_TARGET is control or control-idle (bench/latency_floor.sh). Owns nothing
 * but its responses and the daemon; single-threaded apart from libmicrohttpd's thread, which only
 * adds to one relaxed atomic counter.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

enum { R_SYMBOL, R_CORR, R_METRICS, R_MST, R_HEALTHZ, R_COUNT };
static const char *const route_prefix[R_COUNT] = {"/v1/symbols/", "/v1/correlation", "/metrics",
                                                  "/v1/mst", "/healthz"};
static const char *const route_ctype[R_COUNT] = {"application/json", "application/json",
                                                 "text/plain; version=0.0.4; charset=utf-8",
                                                 "application/json", "application/json"};
/* Body bytes of tickcore's answers: bench_serve's "answer body bytes per endpoint" (the means)
 * in a tcp-1m run, 3x10^6 messages, 500 symbols (TICKCORE_BENCH_SERVE_RUNS=tcp-1m
 * TICKCORE_BENCH_SERVE_MESSAGES=3M build/release/bench/bench_serve, 2026-12-05). */
static size_t route_bytes[R_COUNT] = {1424, 280, 17645, 34881, 193};

static struct MHD_Response *g_resp[R_COUNT];
static char *g_body[R_COUNT];
static _Atomic uint64_t g_answered;
static char g_first, g_second; /* request contexts: the first call seen, answered */

static unsigned route_of(const char *url)
{
    for (unsigned i = 0; i < R_COUNT; i++)
        if (strncmp(url, route_prefix[i], strlen(route_prefix[i])) == 0)
            return i;
    return R_HEALTHZ;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == &g_second) { /* a body after the answer: discard it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*req_cls == NULL && strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
        *req_cls = &g_first; /* headers only so far: answered on the next call, as tickcore */
        return MHD_YES;
    }
    *req_cls = &g_second;
    atomic_fetch_add_explicit(&g_answered, 1, memory_order_relaxed);
    return MHD_queue_response(conn, MHD_HTTP_OK, g_resp[route_of(url)]);
}

/* A JSON-looking body of exactly n bytes: {"x":"aaaa...a"} */
static char *make_body(size_t n)
{
    char *b = malloc(n + 1);
    if (b == NULL)
        return NULL;
    memset(b, 'a', n);
    if (n >= 8) {
        memcpy(b, "{\"x\":\"", 6);
        memcpy(b + n - 2, "\"}", 2);
    }
    b[n] = '\0';
    return b;
}

static int parse_bytes(const char *s)
{
    for (unsigned i = 0; i < R_COUNT; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || v == 0 || v > (1u << 20) ||
            (i + 1 < R_COUNT ? *end != ',' : *end != '\0'))
            return -1;
        route_bytes[i] = (size_t)v;
        s = end + 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    int boost = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v > 65535) {
                fprintf(stderr, "http_control: --port %s: expected 0..65535\n", argv[i]);
                return 2;
            }
            port = (unsigned)v;
        } else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
            if (parse_bytes(argv[++i]) < 0) {
                fprintf(stderr,
                        "http_control: --bytes %s: expected 5 sizes 1..1048576, comma-separated "
                        "(symbol, correlation, metrics, mst, healthz)\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--boost") == 0) {
            boost = 1;
        } else {
            fprintf(stderr, "usage: http_control [--port N] [--boost] [--bytes S,C,M,T,H]\n");
            return 2;
        }
    }
    for (unsigned i = 0; i < R_COUNT; i++) {
        g_body[i] = make_body(route_bytes[i]);
        g_resp[i] = g_body[i] ? MHD_create_response_from_buffer(route_bytes[i], g_body[i],
                                                                MHD_RESPMEM_PERSISTENT)
                              : NULL;
        if (g_resp[i] == NULL ||
            MHD_add_response_header(g_resp[i], MHD_HTTP_HEADER_CONTENT_TYPE, route_ctype[i]) !=
                MHD_YES ||
            MHD_add_response_header(g_resp[i], MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") !=
                MHD_YES) {
            fprintf(stderr, "http_control: cannot build the %s response (%zu bytes)\n",
                    route_prefix[i], route_bytes[i]);
            return 1;
        }
    }
    /* SIGTERM and SIGINT wait for sigwait below, in every thread (libmicrohttpd's inherits the
     * mask) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    const char *sched = "default";
    struct sched_param sp0 = {0}, sp1 = {.sched_priority = 1};
    if (boost) /* inherited by the polling thread created in MHD_start_daemon */
        sched = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp1) == 0
                    ? "SCHED_FIFO 1"
                    : "default (SCHED_FIFO refused)";
    http_cfg_t hc; /* tickcore's defaults: connection limit, request bytes, timeout */
    http_cfg_default(&hc);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, hc.max_connections + 1,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, hc.max_request_bytes + HTTP_POOL_SLACK,
        MHD_OPTION_CONNECTION_TIMEOUT, hc.timeout_s, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        hc.per_ip_connections, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)SOMAXCONN, MHD_OPTION_END);
    if (boost)
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp0);
    if (d == NULL) {
        fprintf(stderr, "http_control: cannot listen on 127.0.0.1:%u: %s\n", port,
                errno ? strerror(errno) : "libmicrohttpd failed to start");
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("http_control: listening on 127.0.0.1:%u; libmicrohttpd %s, one internal polling "
           "thread (%s), %s; body bytes symbol %zu, correlation %zu, metrics %zu, mst %zu, "
           "healthz %zu\n",
           di && di->port ? di->port : port, MHD_get_version(),
           flags & MHD_USE_EPOLL ? "epoll" : "poll", sched, route_bytes[R_SYMBOL],
           route_bytes[R_CORR], route_bytes[R_METRICS], route_bytes[R_MST], route_bytes[R_HEALTHZ]);
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("http_control: %s: %llu requests answered; CPU user %.3f s, system %.3f s; "
           "context switches %ld voluntary, %ld involuntary\n",
           sig == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)atomic_load(&g_answered),
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_nvcsw,
           ru.ru_nivcsw);
    for (unsigned i = 0; i < R_COUNT; i++) {
        MHD_destroy_response(g_resp[i]);
        free(g_body[i]);
    }
    return 0;
}
