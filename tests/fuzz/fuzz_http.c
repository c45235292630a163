/*
 * fuzz_http: libFuzzer target for the server's HTTP request handling without sockets:
 * http_dispatch (server/http.c: method check, route table with exact and prefix routes, bearer
 * token check, handler status and overflow mapping) over the server's API routes, whose handlers
 * call the real query parsers (server/query.c: symbol names, depth=, symbols= lists) on a
 * snapshot sized from the default configuration. The input is one request: "METHOD URL" on the
 * first line, then the Authorization header's value (absent if there is no second line). The URL
 * is split at '?' and both halves percent-decoded with libmicrohttpd's own MHD_http_unescape, the
 * query string into name=value pairs at '&' (a name without '=' has no value), as libmicrohttpd
 * hands them to http_param. The token is "tok-en". Invariants, checked with abort():
 *   - the status is 200..599 and the body is one well-formed JSON value, shorter than the
 *     response buffer;
 *   - not GET/HEAD: 405 with an Allow header; a path that no route takes: 404 (401 first when it
 *     is not public and the token is wrong); a non-public route without the right bearer token:
 *     401 with WWW-Authenticate; /healthz needs no token;
 *   - an error status comes with {"error":...};
 *   - with a response buffer too small for the answer, 500 and why = overflow, never a cut body.
 * Build: make fuzz (clang, ASan and UBSan, against build/fuzz/libtickcore-fuzz.a).
 */
#include "base/jbuf.h"
#include "config/config.h"
#include "server/http.h"
#include "server/query.h"
#include "server/snapshot.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #c);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static snapshot_t g_snap;
static bool g_up;

/* ---- a strict JSON checker (RFC 8259), recursive descent over out's bytes ------------------ */

static const char *ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *value(const char *p, const char *e, int depth);

static const char *string(const char *p, const char *e)
{
    if (p >= e || *p != '"')
        return NULL;
    for (p++; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= e)
                return NULL;
            if (*p == 'u') {
                for (int k = 0; k < 4; k++)
                    if (++p >= e || !strchr("0123456789abcdefABCDEF", *p))
                        return NULL;
            } else if (!strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *number(const char *p, const char *e)
{
    if (p < e && *p == '-')
        p++;
    if (p >= e || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return NULL;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *word(const char *p, const char *e, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(e - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

static const char *value(const char *p, const char *e, int depth)
{
    if (depth > 64 || (p = ws(p, e)) >= e)
        return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = ws(p + 1, e);
        if (p < e && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if ((p = string(ws(p, e), e)) == NULL || (p = ws(p, e)) >= e || *p != ':')
                    return NULL;
                p++;
            }
            if ((p = value(p, e, depth + 1)) == NULL || (p = ws(p, e)) >= e)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    if (*p == '"')
        return string(p, e);
    if (*p == 't')
        return word(p, e, "true");
    if (*p == 'f')
        return word(p, e, "false");
    if (*p == 'n')
        return word(p, e, "null");
    return number(p, e);
}

static bool json_ok(const char *s, size_t n)
{
    const char *e = s + n, *p = value(s, e, 0);
    return p != NULL && ws(p, e) == e;
}

/* ---- the routes: the server's API over the query parsers ------------------------------------ */

static int h_healthz(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)ctx;
    (void)req;
    jbuf_puts(out, "{\"status\":\"ok\"}");
    return 200;
}

static int h_symbols(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)req;
    return query_symbols(ctx, out);
}

static int h_symbol(void *ctx, const http_request_t *req, jbuf_t *out)
{
    return query_symbol(ctx, req->path + strlen("/v1/symbols/"), http_param(req, "depth"), out);
}

static int h_correlation(void *ctx, const http_request_t *req, jbuf_t *out)
{
    return query_correlation(ctx, http_param(req, "symbols"), out);
}

static int h_pca(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)req;
    return query_pca(ctx, out);
}

static int h_mst(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)req;
    return query_mst(ctx, out);
}

static int h_clusters(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)req;
    return query_clusters(ctx, out);
}

static int h_bad(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)ctx;
    (void)req;
    (void)out;
    return 99; /* a handler that returns no HTTP status: the dispatcher must make it 500 */
}

static http_route_t g_routes[] = {
    {"/healthz", false, true, NULL, h_healthz, NULL},
    {"/v1/symbols", false, false, NULL, h_symbols, &g_snap},
    {"/v1/symbols/", true, false, NULL, h_symbol, &g_snap},
    {"/v1/correlation", false, false, NULL, h_correlation, &g_snap},
    {"/v1/pca", false, false, NULL, h_pca, &g_snap},
    {"/v1/mst", false, false, NULL, h_mst, &g_snap},
    {"/v1/clusters", false, false, NULL, h_clusters, &g_snap},
    {"/v1/bad", false, false, NULL, h_bad, NULL},
};
#define NROUTES (sizeof g_routes / sizeof g_routes[0])

/* ---- the query string ------------------------------------------------------------------------ */

#define MAX_ARGS 32
static char *g_names[MAX_ARGS], *g_values[MAX_ARGS];
static size_t g_nargs;

static const char *param(void *ctx, const char *name)
{
    (void)ctx;
    for (size_t i = 0; i < g_nargs; i++)
        if (strcmp(g_names[i], name) == 0)
            return g_values[i];
    return NULL;
}

static void parse_query(char *q)
{
    g_nargs = 0;
    while (q && *q && g_nargs < MAX_ARGS) {
        char *amp = strchr(q, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(q, '=');
        if (eq) {
            *eq = '\0';
            MHD_http_unescape(eq + 1);
        }
        MHD_http_unescape(q);
        g_names[g_nargs] = q;
        g_values[g_nargs] = eq ? eq + 1 : NULL;
        g_nargs++;
        q = amp ? amp + 1 : NULL;
    }
}

static const char *route_of(const char *path)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const http_route_t *r = &g_routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0)
            return r->path;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    if (!g_up) {
        config_t cfg;
        config_default(&cfg);
        CHECK(snapshot_init(&g_snap, &cfg, 1) == 0);
        g_up = true;
    }
    static char in[8193];
    memcpy(in, data, size);
    in[size] = '\0';
    if (strlen(in) != size)
        return 0; /* libmicrohttpd never hands over a NUL inside a line */
    char *nl = strchr(in, '\n');
    const char *auth = NULL;
    if (nl) {
        *nl = '\0';
        auth = nl + 1;
    }
    char *sp = strchr(in, ' ');
    if (sp == NULL)
        return 0;
    *sp = '\0';
    const char *method = in;
    char *url = sp + 1;
    char *q = strchr(url, '?');
    if (q)
        *q++ = '\0';
    MHD_http_unescape(url);
    if (strlen(url) == 0)
        return 0;
    parse_query(q);

    static char buf[1 << 16];
    /* a small buffer now and then: every answer must fit or become a clean 500 */
    size_t cap = (size > 0 && data[size - 1] == '~') ? 48 : sizeof buf;
    jbuf_t out;
    jbuf_init(&out, buf, cap);
    http_request_t req = {.conn = NULL, .param = param};
    http_answer_t a;
    const char token[] = "tok-en";
    http_dispatch(g_routes, NROUTES, token, sizeof token - 1, method, url, auth, &req, &out, &a);

    CHECK(a.status >= 200 && a.status <= 599);
    CHECK(!jbuf_overflow(&out) && jbuf_len(&out) < cap);
    if (!json_ok(out.buf, jbuf_len(&out))) {
        fprintf(stderr, "fuzz_http: not JSON (%d): %.*s\n", a.status, (int)jbuf_len(&out), out.buf);
        abort();
    }
    if (a.status >= 400)
        CHECK(strncmp(out.buf, "{\"error\":", 9) == 0);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *rt = route_of(url);
    if (!get) {
        CHECK(a.status == 405 && a.why == HTTP_WHY_BAD_METHOD && a.xname != NULL);
        return 0;
    }
    bool good_token = false;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *v = auth + 7;
        while (*v == ' ')
            v++;
        size_t n = strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        good_token = n == 6 && memcmp(v, token, 6) == 0;
    }
    bool public_ = rt && strcmp(rt, "/healthz") == 0;
    if (!public_ && !good_token) {
        CHECK(a.status == 401 && a.why == HTTP_WHY_UNAUTHORIZED && a.xname != NULL);
        return 0;
    }
    if (rt == NULL) {
        CHECK(a.status == 404 && a.why == HTTP_WHY_NOT_FOUND);
        return 0;
    }
    CHECK(a.why == HTTP_WHY_HANDLED || (a.why == HTTP_WHY_OVERFLOW && a.status == 500));
    if (strcmp(rt, "/v1/bad") == 0 && a.why == HTTP_WHY_HANDLED)
        CHECK(a.status == 500);
    if (public_ && a.why == HTTP_WHY_HANDLED)
        CHECK(a.status == 200);
    return 0;
}
