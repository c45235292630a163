/*
 * http: see http.h. libmicrohttpd calls four functions of ours, all on its one polling thread:
 * on_conn (a connection opens: pop a response buffer into its socket context; it closes: push
 * it back), on_uri (the request line is parsed: stamp the time into the request context, an odd
 * integer stored in the pointer itself, so nothing is allocated), on_request (route, check the
 * token, run the handler, queue the response over the connection's buffer) and on_log
 * (libmicrohttpd's messages: the requests it refused itself, and the connection limit, are only
 * visible there, so they are counted from the message's format string; during http_start the
 * message is kept for the caller's err). Counters are relaxed atomic adds (the logger may also
 * run on the thread calling http_start or http_stop).
 */
#include "server/http.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "mem/mem.h"
#include "server/prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define DEC(x) atomic_fetch_sub_explicit(&(x), 1, memory_order_relaxed)
#define LD(x)  atomic_load_explicit(&(x), memory_order_relaxed)

enum {
    HTTP_MIN_RESPONSE = 256, /* an error body always fits */
    HTTP_MIN_REQUEST = 1024, /* a request line and a few headers */
    HTTP_MAX_CONNECTIONS = 65536,
    HTTP_ERR_MSG = 200, /* bytes of an error message before escaping */
};

/* The request context once the response is queued: the pooled response buffer it holds until
 * the response is sent, or &g_done (an even address; stamps are odd). */
static _Alignas(8) char g_done;

static bool req_done(const void *rc)
{
    return rc != NULL && ((uintptr_t)rc & 1u) == 0;
}

void http_cfg_default(http_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->addr, sizeof cfg->addr, "127.0.0.1");
    cfg->port = 8080;
    cfg->max_connections = 64;
    cfg->max_request_bytes = 8192;
    cfg->response_bytes = 1u << 20;
    cfg->timeout_s = 10;
    cfg->response_buffers = 0;   /* min(max_connections, 16) */
    cfg->header_timeout_s = 0;   /* = timeout_s */
    cfg->per_ip_connections = 0; /* no limit */
}

const char *http_param(const http_request_t *r, const char *name)
{
    if (r->conn == NULL)
        return r->param ? r->param(r->param_ctx, name) : NULL;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int http_error(jbuf_t *out, int status, const char *fmt, ...)
{
    char msg[HTTP_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    jbuf_reset(out);
    jbuf_puts(out, "{\"error\":{\"status\":");
    jbuf_i64(out, status);
    jbuf_puts(out, ",\"message\":");
    jbuf_str(out, msg);
    jbuf_puts(out, "}}");
    if (jbuf_overflow(out)) { /* a small buffer and a long message: drop the message */
        jbuf_reset(out);
        jbuf_printf(out, "{\"error\":{\"status\":%d,\"message\":\"\"}}", status);
    }
    return status;
}

/* Equal in time that depends only on want_len (the configured token), not on the content. */
static bool ct_equal(const char *got, size_t got_len, const char *want, size_t want_len)
{
    volatile unsigned char acc = (unsigned char)(got_len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
        acc = (unsigned char)(acc | (g ^ (unsigned char)want[i]));
    }
    return acc == 0;
}

/* 0: the right token; 1: no usable Authorization header (v: its value); 2: a bearer token, but
 * wrong. */
static int auth_check(const char *token, size_t token_len, const char *v)
{
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return 1;
    v += 7;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return ct_equal(v, n, token, token_len) ? 0 : 2;
}

static const http_route_t *route_find(const http_route_t *routes, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++) {
        const http_route_t *r = &routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0)
            return r;
    }
    return NULL;
}

static bool is_get(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

void http_dispatch(const http_route_t *routes, size_t n, const char *token, size_t token_len,
                   const char *method, const char *path, const char *authorization,
                   http_request_t *req, jbuf_t *out, http_answer_t *a)
{
    jbuf_reset(out);
    *a = (http_answer_t){.status = 500, .ctype = HTTP_CONTENT_JSON, .why = HTTP_WHY_HANDLED};
    if (!is_get(method)) {
        a->why = HTTP_WHY_BAD_METHOD;
        a->status = http_error(out, 405, "method %s not allowed: GET or HEAD only", method);
        a->xname = MHD_HTTP_HEADER_ALLOW;
        a->xval = "GET, HEAD";
    } else {
        const http_route_t *rt = route_find(routes, n, path);
        int auth = (token_len == 0 || (rt && rt->public_))
                       ? 0
                       : auth_check(token, token_len, authorization);
        if (auth) {
            a->why = HTTP_WHY_UNAUTHORIZED;
            a->status =
                http_error(out, 401, auth == 1 ? "missing bearer token" : "invalid bearer token");
            a->xname = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
            a->xval = auth == 1 ? "Bearer realm=\"tickcore\""
                                : "Bearer realm=\"tickcore\", error=\"invalid_token\"";
        } else if (rt == NULL) {
            a->why = HTTP_WHY_NOT_FOUND;
            a->status = http_error(out, 404, "no route for %s", path);
        } else {
            req->method = method;
            req->path = path;
            a->status = rt->fn(rt->ctx, req, out);
            if (a->status < 200 || a->status > 599)
                a->status =
                    http_error(out, 500, "handler for %s returned status %d", rt->path, a->status);
            else if (a->status < 400 && rt->content_type)
                a->ctype = rt->content_type;
        }
    }
    if (jbuf_overflow(out)) {
        a->why = HTTP_WHY_OVERFLOW;
        a->status = http_error(out, 500, "response too large: over %zu bytes (http response_bytes)",
                               out->cap);
        a->ctype = HTTP_CONTENT_JSON;
        a->xname = NULL;
    }
}

static bool has_body(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl && strspn(cl, "0") != strlen(cl)) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)uri;
    (void)conn;
    return (void *)(uintptr_t)((clock_mono_ns() << 2) | 1u);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    http_t *h = cls;
    (void)version;
    (void)upload_data;
    if (req_done(*req_cls)) { /* more body after our response: discard it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    bool get = is_get(method);
    uintptr_t stamp = (uintptr_t)*req_cls;
    if ((stamp & 1u) == 0) /* no stamp from on_uri */
        stamp = (uintptr_t)(clock_mono_ns() << 2) | 1u;
    if ((stamp & 3u) != 3u && get && !has_body(conn)) {
        /* Headers only so far. libmicrohttpd (0.9.75, seen in the tests) closes the connection
         * after a response queued on this first call, so answer on the next one, when the
         * request is complete and the connection can be kept alive. */
        *req_cls = (void *)(stamp | 3u);
        return MHD_YES;
    }
    /* Other methods, and requests with a body, are answered at once, before the body is read
     * (libmicrohttpd refuses a response in the middle of a body), and the connection is closed
     * after the response. */
    uint64_t t0 = (uint64_t)(stamp >> 2);
    /* The headers are in: from here the connection has the keep-alive timeout, not the
     * header deadline. */
    if (h->cfg.header_timeout_s != h->cfg.timeout_s)
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, h->cfg.timeout_s);
    /* A pooled buffer, held until the response is sent (on_completed); with none free the
     * response is built in the scratch buffer and libmicrohttpd copies it: every request is
     * answered, /healthz included, however many responses wait for slow readers. */
    char *buf;
    bool copy = h->nfree == 0;
    if (copy) {
        buf = h->scratch;
        INC(h->response_copies);
        *req_cls = &g_done;
    } else {
        buf = h->bufs + (size_t)h->free_stack[--h->nfree] * h->cfg.response_bytes;
        *req_cls = buf;
    }
    jbuf_t out;
    jbuf_init(&out, buf, h->cfg.response_bytes);
    INC(h->requests);

    http_body_t body = {0};
    http_request_t req = {.conn = conn, .body = &body};
    http_answer_t a;
    http_dispatch(h->routes, h->nroutes, h->cfg.token, h->token_len, method, url,
                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                  &req, &out, &a);
    switch (a.why) {
    case HTTP_WHY_HANDLED:
        break;
    case HTTP_WHY_BAD_METHOD:
        INC(h->bad_method);
        break;
    case HTTP_WHY_UNAUTHORIZED:
        INC(h->unauthorized);
        break;
    case HTTP_WHY_NOT_FOUND:
        INC(h->not_found);
        break;
    case HTTP_WHY_OVERFLOW:
        INC(h->overflow);
        break;
    }
    int status = a.status;
    const char *ctype = a.ctype, *xname = a.xname, *xval = a.xval;

    /* Counted before the response is queued: a client that has read it sees the counters. */
    if (status < 300)
        INC(h->responses_2xx);
    else if (status < 400)
        INC(h->responses_3xx);
    else if (status < 500)
        INC(h->responses_4xx);
    else
        INC(h->responses_5xx);
    uint64_t t1 = clock_mono_ns();
    histo_record(&h->latency, t1 > t0 ? t1 - t0 : 0);

    struct MHD_Response *resp;
    if (body.data && status < 400 && a.why == HTTP_WHY_HANDLED &&
        ((uintptr_t)body.data & 1u) == 0) {
        /* the handler's own buffer: the pooled one goes back now; on_completed calls release */
        if (!copy)
            h->free_stack[h->nfree++] = (uint32_t)((size_t)(buf - h->bufs) / h->cfg.response_bytes);
        *req_cls = (void *)(uintptr_t)body.data;
        h->body_release = body.release;
        h->body_ctx = body.ctx;
        if (body.ctype)
            ctype = body.ctype;
        INC(h->handler_bodies);
        resp = MHD_create_response_from_buffer(body.len, (void *)(uintptr_t)body.data,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        if (body.data && body.release) /* not used after all (an error): give it back */
            body.release(body.ctx, body.data);
        resp = MHD_create_response_from_buffer(
            jbuf_len(&out), out.buf, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL) { /* out of memory in libmicrohttpd: close the connection */
        INC(h->mhd_errors);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_YES;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        (xname && MHD_add_response_header(resp, xname, xval) != MHD_YES))
        ok = MHD_NO;
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        INC(h->mhd_errors);
    return ok;
}

/* A request ends (sent, or the connection closed): its pooled buffer is free again. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_t *h = cls;
    (void)conn;
    (void)toe;
    char *p = *req_cls;
    size_t total = (size_t)h->nbufs * h->cfg.response_bytes;
    if (req_done(p) && p >= h->bufs && p < h->bufs + total)
        h->free_stack[h->nfree++] = (uint32_t)((size_t)(p - h->bufs) / h->cfg.response_bytes);
    else if (req_done(p) && p != &g_done && h->body_release) /* a handler's own body */
        h->body_release(h->body_ctx, p);
    *req_cls = NULL;
}

static void on_conn(void *cls, struct MHD_Connection *conn, void **sctx,
                    enum MHD_ConnectionNotificationCode toe)
{
    http_t *h = cls;
    (void)conn;
    (void)sctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        if (atomic_load_explicit(&h->thread_tid, memory_order_relaxed) == 0) {
            h->thread = pthread_self();
            atomic_store_explicit(&h->thread_tid, (int)syscall(SYS_gettid), memory_order_release);
        }
        INC(h->connections);
        INC(h->open_connections);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        DEC(h->open_connections);
    }
}

/* The connection limit is ours: past max_connections a connection is closed at once (counted),
 * not left waiting in the backlog behind libmicrohttpd's own limit. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    http_t *h = cls;
    (void)addr;
    (void)addrlen;
    if (fault_check(FAULT_HTTP_ACCEPT) != FAULT_NONE) /* the test seam: as if accept failed */
        return MHD_NO;
    if (LD(h->open_connections) < h->cfg.max_connections)
        return MHD_YES;
    INC(h->connections_refused);
    return MHD_NO;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    static const char refused[] = "Error processing request (HTTP response code is ";
    static const char limit[] = "Server reached connection limit";
    http_t *h = cls;
    if (strncmp(fmt, refused, sizeof refused - 1) == 0) {
        va_list aq;
        va_copy(aq, ap);
        unsigned code = va_arg(aq, unsigned);
        va_end(aq);
        if (code == MHD_HTTP_CONTENT_TOO_LARGE || code == MHD_HTTP_URI_TOO_LONG ||
            code == MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE)
            INC(h->too_large);
        else
            INC(h->bad_request);
    } else if (strncmp(fmt, limit, sizeof limit - 1) == 0)
        INC(h->connections_refused);
    else
        INC(h->mhd_errors);
    if (atomic_load(&h->starting) && pthread_equal(pthread_self(), h->starter) && h->start_err &&
        h->start_errlen) {
        int n = vsnprintf(h->start_err, h->start_errlen, fmt, ap);
        for (size_t k = n > 0 ? strlen(h->start_err) : 0; k && h->start_err[k - 1] == '\n'; k--)
            h->start_err[k - 1] = '\0';
    }
}

/* Each connection is a descriptor: lift the soft RLIMIT_NOFILE toward the hard one when the
 * budget needs it (best effort; past the limit accept fails and libmicrohttpd logs it). */
static void raise_fd_limit(unsigned max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void free_buffers(http_t *h)
{
    if (h->bufs)
        mem_free(MEM_TAG_SERVER, h->bufs, ((size_t)h->nbufs + 1) * h->cfg.response_bytes);
    if (h->free_stack)
        mem_free(MEM_TAG_SERVER, h->free_stack, (size_t)h->nbufs * sizeof *h->free_stack);
    h->bufs = NULL;
    h->free_stack = NULL;
}

int http_start(http_t *h, const http_cfg_t *cfg, const http_route_t *routes, size_t n, char *err,
               size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (err && errlen)
        err[0] = '\0';
    h->cfg = *cfg;
    http_cfg_t *c = &h->cfg;
    if (memchr(c->addr, '\0', sizeof c->addr) == NULL)
        return err_fail(err, errlen, -EINVAL, "http: addr is not terminated");
    if (c->addr[0] == '\0')
        snprintf(c->addr, sizeof c->addr, "127.0.0.1");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(c->port);
    if (inet_pton(AF_INET, c->addr, &sa.sin_addr) != 1)
        return err_fail(err, errlen, -EINVAL, "http: addr '%s' is not an IPv4 address", c->addr);
    if (c->max_connections == 0 || c->max_connections > HTTP_MAX_CONNECTIONS)
        return err_fail(err, errlen, -EINVAL, "http: max_connections %u not in 1..%u",
                        c->max_connections, (unsigned)HTTP_MAX_CONNECTIONS);
    if (c->response_bytes < HTTP_MIN_RESPONSE || c->response_bytes > ((size_t)1 << 30))
        return err_fail(err, errlen, -EINVAL, "http: response_bytes %zu not in %u..2^30",
                        c->response_bytes, (unsigned)HTTP_MIN_RESPONSE);
    if (c->max_request_bytes < HTTP_MIN_REQUEST || c->max_request_bytes > ((size_t)1 << 24))
        return err_fail(err, errlen, -EINVAL, "http: max_request_bytes %zu not in %u..2^24",
                        c->max_request_bytes, (unsigned)HTTP_MIN_REQUEST);
    if (c->timeout_s == 0)
        return err_fail(
            err, errlen, -EINVAL,
            "http: timeout_s must be > 0 (idle clients would hold connections forever)");
    h->token_len = strnlen(c->token, sizeof c->token);
    if (h->token_len == sizeof c->token)
        return err_fail(err, errlen, -EINVAL, "http: token is not terminated");
    for (size_t i = 0; i < h->token_len; i++)
        if ((unsigned char)c->token[i] <= 0x20 || (unsigned char)c->token[i] >= 0x7f)
            return err_fail(err, errlen, -EINVAL,
                            "http: token byte %zu is not visible ASCII (no spaces)", i);
    for (size_t i = 0; i < n; i++)
        if (routes[i].path == NULL || routes[i].path[0] != '/' || routes[i].fn == NULL)
            return err_fail(err, errlen, -EINVAL,
                            "http: route %zu needs a path starting with / "
                            "and a handler",
                            i);
    h->routes = routes;
    h->nroutes = n;

    if (c->header_timeout_s == 0 || c->header_timeout_s > c->timeout_s)
        c->header_timeout_s = c->timeout_s;
    h->nbufs = c->response_buffers ? c->response_buffers
                                   : (c->max_connections < 16 ? c->max_connections : 16);
    if (h->nbufs > c->max_connections)
        h->nbufs = c->max_connections;
    /* the pooled buffers, then the scratch buffer */
    size_t total = ((size_t)h->nbufs + 1) * c->response_bytes;
    h->bufs = mem_alloc_prefault(MEM_TAG_SERVER, total, MEM_CACHE_LINE);
    h->free_stack = mem_alloc(MEM_TAG_SERVER, (size_t)h->nbufs * sizeof *h->free_stack);
    if (h->bufs == NULL || h->free_stack == NULL) {
        free_buffers(h);
        return err_fail(err, errlen, -ENOMEM,
                        "http: cannot allocate %u response buffers of %zu bytes", h->nbufs + 1,
                        c->response_bytes);
    }
    h->scratch = h->bufs + (size_t)h->nbufs * c->response_bytes;
    for (uint32_t i = 0; i < h->nbufs; i++) /* buffer 0 on top */
        h->free_stack[i] = h->nbufs - 1 - i;
    h->nfree = h->nbufs;
    raise_fd_limit(c->max_connections);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    /* epoll: thousands of connections cost nothing per poll (poll() would scan them all) */
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    h->start_err = err;
    h->start_errlen = errlen;
    h->starter = pthread_self();
    atomic_store(&h->starting, true);
    errno = 0;
    h->daemon = MHD_start_daemon(
        flags, c->port, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->max_connections + 1, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(c->max_request_bytes + HTTP_POOL_SLACK), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c->header_timeout_s, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)c->per_ip_connections, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)SOMAXCONN,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
    int e = errno;
    atomic_store(&h->starting, false);
    h->start_err = NULL;
    h->start_errlen = 0;
    if (h->daemon == NULL) {
        free_buffers(h);
        int rc = e == EADDRINUSE || e == EACCES || e == EADDRNOTAVAIL ? -e : -EIO;
        if (err && errlen && err[0]) { /* libmicrohttpd said why */
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            return err_fail(err, errlen, rc, "http: cannot listen on %s:%u: %s", c->addr,
                            (unsigned)c->port, why);
        }
        return err_fail(err, errlen, rc, "http: cannot listen on %s:%u: %s", c->addr,
                        (unsigned)c->port, e ? strerror(e) : "libmicrohttpd failed to start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di && di->port ? di->port : c->port;
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

uint16_t http_port(const http_t *h)
{
    return h->port;
}

int http_thread_id(const http_t *h, pthread_t *thread)
{
    int tid = atomic_load_explicit(&((http_t *)h)->thread_tid, memory_order_acquire);
    if (tid && thread)
        *thread = h->thread;
    return tid;
}

void http_stop(http_t *h)
{
    if (h->daemon) {
        MHD_stop_daemon(h->daemon);
        h->daemon = NULL;
    }
    free_buffers(h);
}

void http_stats(const http_t *h, http_stats_t *o)
{
    http_t *m = (http_t *)h; /* atomic loads take non-const pointers in C17 */
    o->requests = LD(m->requests);
    o->responses_2xx = LD(m->responses_2xx);
    o->responses_3xx = LD(m->responses_3xx);
    o->responses_4xx = LD(m->responses_4xx);
    o->responses_5xx = LD(m->responses_5xx);
    o->unauthorized = LD(m->unauthorized);
    o->not_found = LD(m->not_found);
    o->bad_method = LD(m->bad_method);
    o->overflow = LD(m->overflow);
    o->too_large = LD(m->too_large);
    o->bad_request = LD(m->bad_request);
    o->connections = LD(m->connections);
    o->connections_refused = LD(m->connections_refused);
    o->response_copies = LD(m->response_copies);
    o->handler_bodies = LD(m->handler_bodies);
    o->mhd_errors = LD(m->mhd_errors);
    o->open_connections = LD(m->open_connections);
}

unsigned http_open_connections(const http_t *h)
{
    http_t *m = (http_t *)h;
    return (unsigned)LD(m->open_connections);
}

const histo_t *http_latency(const http_t *h)
{
    return &h->latency;
}

int http_metrics_prom(const http_t *h, jbuf_t *out, const char *prefix)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"requests_total", "HTTP requests routed.", offsetof(http_stats_t, requests)},
        {"unauthorized_total", "Requests refused with 401.", offsetof(http_stats_t, unauthorized)},
        {"not_found_total", "Requests for unknown paths (404).", offsetof(http_stats_t, not_found)},
        {"bad_method_total", "Requests with a method other than GET or HEAD (405).",
         offsetof(http_stats_t, bad_method)},
        {"response_overflow_total", "Responses larger than their buffer (sent as 500).",
         offsetof(http_stats_t, overflow)},
        {"too_large_total", "Requests over the size limit, refused by libmicrohttpd.",
         offsetof(http_stats_t, too_large)},
        {"bad_request_total", "Malformed requests refused by libmicrohttpd.",
         offsetof(http_stats_t, bad_request)},
        {"connections_total", "Connections accepted.", offsetof(http_stats_t, connections)},
        {"connections_refused_total", "Connections closed at once: connection limit.",
         offsetof(http_stats_t, connections_refused)},
    };
    http_stats_t s;
    http_stats(h, &s);
    char name[128];
    int rc = 0;
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        snprintf(name, sizeof name, "%s_http_%s", prefix, counters[i].name);
        uint64_t v;
        memcpy(&v, (const char *)&s + counters[i].off, sizeof v);
        rc |= prom_family(out, name, "counter", counters[i].help);
        rc |= prom_sample_u64(out, name, NULL, v);
    }
    snprintf(name, sizeof name, "%s_http_responses_total", prefix);
    rc |= prom_family(out, name, "counter", "HTTP responses by status class.");
    const uint64_t cls[] = {s.responses_2xx, s.responses_3xx, s.responses_4xx, s.responses_5xx};
    const char *const cname[] = {"class=\"2xx\"", "class=\"3xx\"", "class=\"4xx\"",
                                 "class=\"5xx\""};
    for (size_t i = 0; i < 4; i++)
        rc |= prom_sample_u64(out, name, cname[i], cls[i]);
    snprintf(name, sizeof name, "%s_http_connections_open", prefix);
    rc |= prom_family(out, name, "gauge", "Connections open now.");
    rc |= prom_sample_u64(out, name, NULL, s.open_connections);
    snprintf(name, sizeof name, "%s_http_request_duration_seconds", prefix);
    rc |= prom_family(out, name, "summary",
                      "Time from the request line parsed to the response queued.");
    rc |= prom_summary_histo(out, name, NULL, &h->latency, 1e-9);
    return rc ? -EINVAL : 0;
}
