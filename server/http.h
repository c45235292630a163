/*
 * http: the HTTP layer of `tickcore serve`, on libmicrohttpd. Read-only by construction: GET and
 * HEAD only, a fixed route table, handlers that format what the engine has published into a
 * buffer; no file serving, nothing in a request can change state.
 *
 * Threads: one internal polling thread (epoll where libmicrohttpd has it, else poll) runs every
 * callback, so handlers run on that thread, one at a time, and must not block. Connections and
 * responses are budgeted apart, so that clients that hold connections (slow or silent ones)
 * cannot take what answering needs: a connection costs a descriptor and libmicrohttpd's pool
 * (max_request_bytes + 2 KiB), and max_connections may be in the thousands (epoll); a response
 * takes one of response_buffers buffers of response_bytes (MEM_TAG_SERVER, prefaulted, allocated
 * by http_start) when its request is complete and gives it back when it has been sent. With none
 * free the response is built in a scratch buffer and libmicrohttpd copies it (counted in
 * response_copies), so every complete request is answered. Past max_connections, or past
 * per_ip_connections from one address, a connection is closed at once and counted
 * (connections_refused; our accept policy, so the listening socket never stalls with clients
 * left in the backlog). A new connection has header_timeout_s of silence to complete its request
 * headers (slow-loris clients are cut early); once they are in, the connection has the keep-alive
 * timeout_s. libmicrohttpd's timeouts count silence, not the total: a client sending a byte
 * every second keeps its connection, but holds one of thousands, and at most per_ip_connections
 * from its address. A response is handed to libmicrohttpd without a copy (MHD_RESPMEM_PERSISTENT);
 * libmicrohttpd parses the next request on a connection only after the response has been sent. A
 * GET or HEAD is answered once its headers are complete; a request with a body, or another method,
 * is answered (405) before the body is read and the connection is then closed. libmicrohttpd
 * itself allocates a per-connection memory pool and, per request, a response object and its
 * header lines: that is its allocation, not ours (test_http measures it: 7 malloc calls per
 * request on a kept-alive connection, 11 with a new connection each time). Limits: a request
 * larger than the pool is refused by libmicrohttpd (431 for headers, 414 for a URL) and counted
 * as too_large; a malformed one gets its 400/505 (bad_request); a response larger than its
 * buffer becomes a 500 JSON error (overflow); a connection idle for timeout_s seconds, such as a
 * slow-loris client holding half a request, is closed. Authentication: with a token set, every
 * route not marked public needs "Authorization: Bearer <token>" (scheme case-insensitive, token
 * compared in constant time), else 401 with WWW-Authenticate; unknown paths answer 401 before
 * 404 so an anonymous client learns only the public routes. Counters are relaxed atomics,
 * readable from any thread; the latency histogram is written by the server thread and may be
 * read by a handler or after http_stop.
 */
#ifndef TICKCORE_SERVER_HTTP_H
#define TICKCORE_SERVER_HTTP_H

#include "base/histo.h"
#include "base/jbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Daemon;
struct MHD_Connection;

#define HTTP_CONTENT_JSON "application/json"

typedef struct http_cfg {
    char addr[64]; /* IPv4 literal; "" means "127.0.0.1" */
    uint16_t port; /* 0 = any free port (see http_port) */
    unsigned max_connections;
    size_t max_request_bytes;    /* request line + headers, roughly (libmicrohttpd's pool) */
    size_t response_bytes;       /* per connection, preallocated */
    char token[128];             /* "" = no auth; else visible ASCII, no spaces */
    unsigned timeout_s;          /* idle connection timeout (keep-alive), > 0 */
    unsigned header_timeout_s;   /* a new connection's request headers: 0 = timeout_s */
    unsigned response_buffers;   /* pooled response buffers: 0 = min(max_connections, 16) */
    unsigned per_ip_connections; /* connections at once from one address: 0 = no limit */
} http_cfg_t;

/* 127.0.0.1:8080, 64 connections, 8 KiB requests, 1 MiB responses, no token, 10 s timeout. */
void http_cfg_default(http_cfg_t *cfg);
/* Bytes of a connection's libmicrohttpd memory pool beyond max_request_bytes: the pool also holds
 * the parsed headers and the response header lines (MHD_OPTION_CONNECTION_MEMORY_LIMIT is
 * max_request_bytes + this; bench/http_control sets its daemon up the same way). */
#define HTTP_POOL_SLACK 2048

/* A body the handler owns instead of writing into out (a large answer kept in its own buffer,
 * e.g. the whole correlation matrix as CSV): data stays valid and unchanged until the http
 * module calls release(ctx, data) on the server thread once the response is sent or dropped;
 * ctype overrides the route's content type (NULL: the route's). data must be 2-byte aligned.
 * Set by the handler (status < 400) through req->body when that is not NULL; when it is NULL
 * (http_dispatch without a connection) the handler writes into out as usual. */
typedef struct http_body {
    const char *data;
    size_t len;
    const char *ctype;
    void (*release)(void *ctx, const char *data);
    void *ctx;
} http_body_t;

typedef struct http_request {
    const char *method, *path; /* path is percent-decoded, without the query string */
    struct MHD_Connection *conn;
    http_body_t *body; /* where a handler may put its own body (NULL: out only) */
    /* without a connection (http_dispatch from a test or fuzz target): the parameters */
    const char *(*param)(void *ctx, const char *name);
    void *param_ctx;
} http_request_t;

/* The value of a query string parameter (percent-decoded), or NULL if absent or given without
 * '='. Valid during the handler call. */
const char *http_param(const http_request_t *r, const char *name);

/* A handler writes the body into out and returns the HTTP status (200..599); on 4xx/5xx it
 * writes a JSON error with http_error(). Content type comes from the route (errors are always
 * JSON). Runs on the server thread; must not block. If out overflows, the client gets a 500. */
typedef int http_handler_fn(void *ctx, const http_request_t *req, jbuf_t *out);

typedef struct http_route {
    const char *path; /* exact, or a prefix if prefix is set ("/v1/symbols/") */
    bool prefix;
    bool public_;             /* served without the token */
    const char *content_type; /* NULL = application/json */
    http_handler_fn *fn;
    void *ctx;
} http_route_t;

/* What http_dispatch decided beside the body: the status, the content type, one extra header
 * (xname NULL: none), and why (for the counters). */
typedef enum http_why {
    HTTP_WHY_HANDLED = 0,  /* a route's handler answered (its status, or 500 for a bad one) */
    HTTP_WHY_BAD_METHOD,   /* 405 */
    HTTP_WHY_UNAUTHORIZED, /* 401 */
    HTTP_WHY_NOT_FOUND,    /* 404 */
    HTTP_WHY_OVERFLOW      /* the body did not fit in out: 500 */
} http_why_t;

typedef struct http_answer {
    int status;
    const char *ctype, *xname, *xval;
    http_why_t why;
} http_answer_t;

/* One request without a connection: the method check, the route (routes[0..n), first match),
 * the bearer token (token[0..token_len); token_len 0: none; authorization is the header's value
 * or NULL) and the handler, into out (reset first). req->method and req->path are set from
 * method and path. What the server thread runs for every request, and what fuzz_http calls.
 * Allocates nothing. */
void http_dispatch(const http_route_t *routes, size_t n, const char *token, size_t token_len,
                   const char *method, const char *path, const char *authorization,
                   http_request_t *req, jbuf_t *out, http_answer_t *a);

/* Reset out and write {"error":{"status":404,"message":"..."}}; returns status. */
int http_error(jbuf_t *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Counters, also kept as relaxed atomics of the same names in http_t (GGET-style reads). */
typedef struct http_stats {
    uint64_t requests; /* requests that reached the router (each gets one response below) */
    uint64_t responses_2xx, responses_3xx, responses_4xx, responses_5xx;
    uint64_t unauthorized;        /* 401 */
    uint64_t not_found;           /* 404 from the router */
    uint64_t bad_method;          /* 405 */
    uint64_t overflow;            /* responses that did not fit their buffer: 500 */
    uint64_t too_large;           /* refused by libmicrohttpd: request over max_request_bytes */
    uint64_t bad_request;         /* refused by libmicrohttpd: malformed request (400, 505, ...) */
    uint64_t connections;         /* connections accepted */
    uint64_t connections_refused; /* closed at once: connection limit (not in connections) */
    uint64_t response_copies;     /* responses built with no pooled buffer free (copied) */
    uint64_t handler_bodies;      /* responses sent from a handler's own buffer (http_body_t) */
    uint64_t mhd_errors;          /* other libmicrohttpd errors and messages */
    uint64_t open_connections;    /* open now */
} http_stats_t;

typedef struct http {
    struct MHD_Daemon *daemon;
    http_cfg_t cfg;
    const http_route_t *routes; /* the caller's; must outlive the server */
    size_t nroutes;
    size_t token_len;
    uint16_t port;
    char *bufs;           /* nbufs pooled response buffers, then the scratch one */
    char *scratch;        /* a response built when no pooled buffer is free (then copied) */
    uint32_t *free_stack; /* indexes of free buffers */
    uint32_t nbufs;
    uint32_t nfree;  /* server thread only */
    char *start_err; /* where the logger writes during http_start, from its thread only */
    size_t start_errlen;
    pthread_t starter;
    atomic_bool starting;
    /* Counters: relaxed atomics, any thread may read them (http_stats copies them all). */
    _Atomic uint64_t requests, responses_2xx, responses_3xx, responses_4xx, responses_5xx,
        unauthorized, not_found, bad_method, overflow, too_large, bad_request, connections,
        connections_refused, mhd_errors, open_connections, response_copies, handler_bodies;
    histo_t latency; /* ns from the request line parsed to the response queued */
    /* libmicrohttpd's thread, recorded on its first connection (its own callback): the
     * thread id (0 until then; release after thread), for a caller that sets its scheduling */
    pthread_t thread;
    _Atomic int thread_tid;
    /* the release of handlers' own bodies (http_body_t; server thread; one per server) */
    void (*body_release)(void *ctx, const char *data);
    void *body_ctx;
} http_t;

/* Validate cfg, allocate the buffers, bind addr:port and start the server thread. routes[0..n)
 * are the caller's and must stay valid until http_stop. Returns 0, or -errno with a message in
 * err (-EINVAL bad config, -EADDRINUSE, -ENOMEM, -EIO); on failure nothing is left allocated.
 * Control path; any thread. */
int http_start(http_t *h, const http_cfg_t *cfg, const http_route_t *routes, size_t n, char *err,
               size_t errlen);
/* The bound port (port 0 -> the one the kernel chose). */
uint16_t http_port(const http_t *h);

/* The kernel thread id of the server thread, 0 before its first connection; with it, in *thread,
 * its pthread_t (for pthread_getcpuclockid). Any thread. */
int http_thread_id(const http_t *h, pthread_t *thread);
/* Stop accepting, close every connection, join the server thread, free everything. A handler
 * running at that moment completes; responses still being sent are cut. Safe on a zeroed or
 * already stopped http_t. Not from a handler. */
void http_stop(http_t *h);

/* Copy the counters (any thread). */
void http_stats(const http_t *h, http_stats_t *out);
/* Connections open now (any thread). */
unsigned http_open_connections(const http_t *h);
/* The latency histogram: read it from a handler (same thread as its writer) or after stop. */
const histo_t *http_latency(const http_t *h);

/* The counters and the latency summary as Prometheus families named prefix_http_... (prefix
 * "tickcore" gives tickcore_http_requests_total ...). For a /metrics handler of this server
 * (it reads the histogram, so only from a handler). Returns 0 or -EINVAL (bad prefix). */
int http_metrics_prom(const http_t *h, jbuf_t *out, const char *prefix);

#endif
