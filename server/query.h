/*
 * query: the JSON bodies of the HTTP endpoints of `tickcore serve`, written from the published
 * snapshots (server/snapshot) into a bounded jbuf. Each function returns the HTTP status; on an
 * error it writes {"error":{"status":N,"message":"..."}} (http_error) instead. Nothing here
 * allocates or takes a lock: symbol records are copied onto the stack; cross-section answers are
 * streamed straight from the published buffer inside a read transaction, and when the writer
 * overwrote the buffer meanwhile the body is discarded and written again (a few times, then 503).
 * A body larger than the buffer is a 500 that asks for a narrower query.
 *
 * Units: prices are printed in dollars, exactly (the engine's 1/10,000 $ integers as decimals);
 * VWAP, mid, spread in dollars; times are nanoseconds: feed timestamps ("ts", bars' "start_ns")
 * are the feed's (since midnight for ITCH, since the epoch for CSV); "published_ns", on every
 * endpoint, is the wall clock (CLOCK_REALTIME) at the publish, nanoseconds since the epoch.
 * Absent values are null. Symbols: 1..8 bytes of letters, digits, space (not first) and
 * . - / _ + ^ = * # $ : (anything else is a 400); names are matched exactly. Any thread (the
 * HTTP thread); one jbuf per call.
 */
#ifndef TICKCORE_SERVER_QUERY_H
#define TICKCORE_SERVER_QUERY_H

#include "base/jbuf.h"
#include "server/http.h"
#include "server/snapshot.h"

#include <stdbool.h>

#define QUERY_DEPTH_DEFAULT 5
#define QUERY_CORR_MAX      64 /* symbols in one correlation query */

/* GET /v1/symbols: 200 {"symbols":[{"symbol","locate","last","volume","trades","vwap","bid",
 * "ask","ts"}...],"count":N} in slot order (first publish order). */
int query_symbols(const snapshot_t *s, jbuf_t *out);
/* GET /v1/symbols/{name}?depth=N: 200 with top of book, depth (default 5, 0..the configured
 * depth), book counts, stats, VWAP, last closed bar and open bar; 400 bad name or depth; 404
 * unknown symbol; 503 if the record kept changing under the reader. */
int query_symbol(const snapshot_t *s, const char *name, const char *depth, jbuf_t *out);
/* GET /v1/correlation?symbols=A,B,...: 200 {"symbols":[...],"matrix":[[...]...],"n_rows":R,...}
 * (1..64 names, duplicates allowed); 400 missing, empty or bad list; 404 unknown or untracked
 * symbol (named); 503 before the first cross-section. */
int query_correlation(const snapshot_t *s, const char *symbols, jbuf_t *out);
/* GET /v1/pca: explained variance ratios, eigenvalues and loadings (in "symbols" order). */
int query_pca(const snapshot_t *s, jbuf_t *out);
/* GET /v1/mst: edges {"from","to","rho","distance"}, lightest first. */
int query_mst(const snapshot_t *s, jbuf_t *out);
/* GET /v1/clusters: clusters as arrays of names, and per node cluster, degree, betweenness. */
int query_clusters(const snapshot_t *s, jbuf_t *out);

/* ---- pre-serialised answers ----------------------------------------------------------------
 * The parameterless cross-section endpoints (/v1/pca, /v1/mst, /v1/clusters) change only when
 * the cross-section thread publishes, a few times a second, while they are asked for up to
 * thousands of times a second, and writing one (hundreds of doubles through printf) is the
 * costliest thing the HTTP thread does. A query_cache_t keeps the last 200 body of one of them
 * with the generation it was written from: query_cached copies it out while that generation is
 * still the published one and writes it again (into the cache, then copied) on the first request
 * after a publish, so each body is serialised at most once per publish, not once per request.
 * The body sent is byte for byte what the plain query would write from that generation (the
 * body's "generation" says which); it is at most one publish behind, like any read that races
 * a publish. Errors (503 before the first cross-section, 500 too large) are not kept. Memory:
 * the caller's buffer, given at init (before the seal); one thread at a time per cache (the
 * HTTP thread). */
typedef enum query_xs { QUERY_XS_PCA, QUERY_XS_MST, QUERY_XS_CLUSTERS } query_xs_t;

typedef struct query_cache {
    query_xs_t kind;
    char *buf; /* the caller's, cap bytes */
    size_t cap, len;
    uint64_t gen;         /* generation of the body in buf; 0: none */
    uint64_t hits, fills; /* answers copied from buf; bodies written */
} query_cache_t;

/* Use buf[0..cap) (cap: the response buffer size, so that the same answers fit) for kind. */
void query_cache_init(query_cache_t *c, query_xs_t kind, char *buf, size_t cap);
/* The answer of kind into out, as query_pca/mst/clusters(s, out) would write it; returns the
 * HTTP status. Allocates nothing. */
int query_cached(query_cache_t *c, const snapshot_t *s, jbuf_t *out);

/* ---- the whole correlation matrix as CSV (GET /v1/correlation?format=csv) -------------------
 * The body `replay --corr-out FILE.csv` writes (engine/xsection: "symbol,A,B,..." then one line
 * per symbol, each value printed "%.17g", so the text round-trips every double), from the
 * published cross-section. An n x n matrix is far larger than a response buffer (512 symbols:
 * ~5 MB), so it is written into one of two buffers sized for matrix.symbols at start-up, at most
 * once per publish, and sent from there without a copy (http_body_t). A buffer that responses
 * are still being sent from is never rewritten (each buffer counts the responses in flight): a
 * request after a publish writes the other buffer, or, when both are being sent, gets the newer
 * of the two (at most one publish behind, like any read racing a publish). Memory: the caller's,
 * 2 x query_csv_bytes(matrix.symbols), given at init; nothing per request. HTTP thread only. */
typedef struct query_csv_buf {
    char *buf;
    size_t len;
    uint64_t gen;     /* generation written in buf (0: none) */
    uint32_t sending; /* responses in flight from buf */
} query_csv_buf_t;

typedef struct query_csv {
    query_csv_buf_t b[2];
    size_t cap;           /* bytes of each buffer */
    uint64_t hits, fills; /* answers sent from a buffer already written; buffers written */
} query_csv_t;

/* Bytes one buffer needs for max_n symbols (the longest %.17g of a correlation is 23 bytes). */
size_t query_csv_bytes(uint32_t max_n);
/* mem: 2 x cap bytes (the caller's, allocated before the seal). */
void query_csv_init(query_csv_t *c, char *mem, size_t cap);
/* The answer: 200 with the CSV in *body (sent from a buffer of c; body->release gives it back),
 * or, with body NULL, copied into out (500 if it does not fit); an error as JSON in out (503
 * before the first cross-section or when it changed under every read). Allocates nothing. */
int query_corr_csv(query_csv_t *c, const snapshot_t *s, http_body_t *body, jbuf_t *out);
/* http_body_t.release for those bodies: ctx is the query_csv_t. */
void query_csv_release(void *ctx, const char *data);

/* Is name a valid symbol for a query (1..8 bytes of the characters above)? */
bool query_symbol_valid(const char *name, size_t len);

#endif
