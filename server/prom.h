/*
 * prom: the Prometheus text exposition format, version 0.0.4, written on a jbuf (no allocation).
 * A family is its "# HELP" and "# TYPE" lines followed by its samples, one uninterrupted group:
 *
 *     # HELP tickcore_http_requests_total Requests routed.
 *     # TYPE tickcore_http_requests_total counter
 *     tickcore_http_requests_total{class="2xx"} 12
 *
 * Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and not
 * starting with "__"); a counter's name must end in "_total" (the 0.0.4 format has the full
 * sample name in HELP and TYPE). A bad name writes nothing and returns -EINVAL: a programming
 * error the tests catch, not a runtime condition. Escaping: HELP text escapes backslash and
 * newline; label values escape backslash, double quote and newline, and invalid UTF-8 becomes
 * U+FFFD. Values: Go float syntax, so NaN, +Inf and -Inf are written as such; finite values in
 * the shortest %g form that reads back to the same double. Running out of room is the jbuf's
 * overflow flag, checked once by the caller. One thread at a time per jbuf.
 */
#ifndef TICKCORE_SERVER_PROM_H
#define TICKCORE_SERVER_PROM_H

#include "base/histo.h"
#include "base/jbuf.h"

#include <stdint.h>

/* The Content-Type for a /metrics response. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n". type: "counter", "gauge", "histogram", "summary" or
 * "untyped". Returns 0, or -EINVAL (bad name or type, counter not ending in _total). */
int prom_family(jbuf_t *jb, const char *name, const char *type, const char *help);

/* "name{labels} value\n"; labels NULL or "" for none, else a label set without braces as
 * prom_label builds it. Returns 0 or -EINVAL (bad name). */
int prom_sample(jbuf_t *jb, const char *name, const char *labels, double v);
int prom_sample_u64(jbuf_t *jb, const char *name, const char *labels, uint64_t v);

/* Append name="escaped value" to a label set being built in jb (a comma first if jb is not
 * empty). Build a set in a small scratch jbuf, then pass its buf to prom_sample. Returns 0 or
 * -EINVAL (bad label name). */
int prom_label(jbuf_t *jb, const char *name, const char *value);

/* A summary from a latency histogram: name{labels,quantile="q"} for q = 0.5, 0.9, 0.99, 0.999,
 * then name_sum and name_count; values are multiplied by scale (1e-9: nanoseconds to seconds,
 * as Prometheus base units want). Write prom_family(jb, name, "summary", ...) first. The
 * histogram must not be written meanwhile (call from its writer thread). Returns 0 or -EINVAL. */
int prom_summary_histo(jbuf_t *jb, const char *name, const char *labels, const histo_t *h,
                       double scale);

#endif
