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

/* Is name a valid symbol for a query (1..8 bytes of the characters above)? */
bool query_symbol_valid(const char *name, size_t len);

#endif
