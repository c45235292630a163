/*
 * xrowpub: a cluster shard's bar rows into JetStream. `serve` as shard cluster.shard of
 * cluster.shards (cluster.nats set, cluster.role = shard) hands every complete row of its
 * pipeline (pipeline.on_row, on the cross-section thread, before xsection_push) to xrowpub_row,
 * which encodes the shard's part (engine/xrow: the columns of the locates L with
 * L % cluster.shards == cluster.shard, the shard function of the ITCH publisher) into one
 * preallocated buffer and publishes it asynchronously on <cluster.rows_subject>.<shard> of the
 * stream cluster.rows_stream (created if absent: file storage, limits retention), with the
 * de-duplication id "<subject>.<part number>". The part number counts the rows this process
 * closed; a shard that restarts and rebuilds (journal, or the ITCH stream from its start)
 * closes the same rows again with the same numbers, so the server drops the copies it still
 * remembers (its duplicate window) and the cross-section node drops the others (it keeps, per
 * shard, the next part number it expects).
 *
 * Publishing is bounded: at most cluster.max_pending parts unacknowledged, the cross-section
 * thread blocks beyond (and the shard's workers behind it: backpressure, nothing dropped). The
 * hook is set before the journal rebuild, so rows rebuilt are published again too (a crash may
 * have lost some that were never acknowledged).
 *
 * Memory: xrowpub_init allocates the part buffer and the layout (tag SERVER, ENGINE) and opens
 * its own connection (net/nats: tag NET; the client's own heap is measured there). Threads:
 * init and fini on the serve thread; xrowpub_row on the pipeline's cross-section thread only
 * (the connection is used by that thread alone); counters are relaxed atomics.
 */
#ifndef TICKCORE_SERVER_XROWPUB_H
#define TICKCORE_SERVER_XROWPUB_H

#include "config/config.h"
#include "engine/xrow.h"
#include "event/symtab.h"
#include "net/nats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct xrowpub {
    nats_t *n;
    xrow_layout_t l;
    uint8_t *buf; /* l.bytes */
    const symtab_t *names;
    char subject[NATS_NAME_MAX];
    uint64_t seq; /* parts published (the next part number) */
    _Atomic uint64_t published, errors, bytes;
    char err[NATS_ERROR_MAX]; /* the first publish error (cross-section thread) */
} xrowpub_t;

/* Connect to cfg->cluster_nats, ensure the rows stream, size the part for cfg's shard.
 * 0, or -errno with a message naming the URL or stream in err. */
int xrowpub_init(xrowpub_t *x, const config_t *cfg, const symtab_t *names, char *err,
                 size_t errlen);
/* Encode and publish the part of one row (a pipeline on_row hook body). Allocates nothing of
 * ours; blocks while max_pending parts are unacknowledged. Cross-section thread. */
void xrowpub_row(xrowpub_t *x, uint64_t session, uint64_t k, const double *row, bool traded);
/* The stop request: from now on publishing (xrowpub_row, on the cross-section thread) and
 * xrowpub_flush wait at most timeout_ms for the connection or for acknowledgements, so a shard
 * whose nats-server is gone still stops (a part that cannot be published is counted in errors).
 * Any thread; async-signal-safe (net/nats: a clock read and an atomic store). */
void xrowpub_give_up_after(xrowpub_t *x, int timeout_ms);
/* The shutdown: wait (at most timeout_ms, and not past the give-up deadline) until every part
 * published is acknowledged. 0, or -errno with err naming how many of how many parts the
 * server did not acknowledge (and were not published) and why; a restart publishes them again.
 * Serve thread, after the pipeline has finished (no xrowpub_row any more). */
int xrowpub_flush(xrowpub_t *x, int timeout_ms, char *err, size_t errlen);
/* Close the connection (what is unacknowledged is dropped: xrowpub_flush first) and free. */
void xrowpub_fini(xrowpub_t *x);

#endif
