/*
 * xsnode: the cluster's cross-section node, `serve --set cluster.role=xsection` (cluster.nats,
 * cluster.shards = N; no ITCH input, live.tcp_port=0 live.udp_port=0). It reads the bar row
 * parts every shard publishes (server/xrowpub) from the stream cluster.rows_stream, joins them
 * (engine/xjoin) and pushes the complete rows, in bar order, into the server's xsection, which
 * it computes (at most every server.analytics_interval while rows come, at once when they stop)
 * and publishes to the snapshots: /v1/pca, /v1/mst, /v1/clusters and /v1/correlation answer for
 * the whole cluster over the same endpoints.
 *
 * Nothing is lost when this node is slow or restarts: the parts stay in the stream (limits
 * retention), and the node reads them from the stream's start every time it starts (its N
 * durable pull consumers <rows_stream>_xs_<I>, one per shard subject, are deleted and made
 * again at start-up), so a restarted node rebuilds the same rolling window from the same rows.
 * Acknowledgements only pace delivery. One consumer per shard lets the node stop fetching from
 * a shard that is ahead (its next part found the join window full: the part is kept in a
 * per-shard buffer and offered again after the window moved) while it goes on fetching from the
 * others. Each shard's parts are taken in part-number order: a part whose number is below the
 * shard's next one was already taken (a restarted shard publishing its rows again: counted,
 * dropped); one above it came ahead of a lost delivery (a fetch that expired in the client):
 * it and the rest of its batch are left unacknowledged and come again after the ack wait
 * (XSNODE_ACK_WAIT_MS), after the missing one.
 *
 * Memory: xsnode_init allocates the join (engine/xjoin, tag ENGINE), the per-shard buffers (tag
 * SERVER) and the connection with its consumers (net/nats, tag NET); xsnode_step allocates
 * nothing of ours (the client's own heap is measured by net/nats). Threads: the serve thread
 * (server_run's loop) only; it owns the xsection while the pipeline's own cross-section thread,
 * which gets no bars in this role, stays idle. Counters: relaxed atomics for /metrics.
 */
#ifndef TICKCORE_SERVER_XSNODE_H
#define TICKCORE_SERVER_XSNODE_H

#include "config/config.h"
#include "engine/xjoin.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "net/nats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define XSNODE_ACK_WAIT_MS 1000

typedef void xsnode_publish_fn(void *ctx, const xsection_t *x);

typedef struct xsnode_shard {
    nats_consumer_t *cons;
    uint64_t next; /* the next part number expected */
    uint8_t *held; /* a part the window had no room for (layout bytes) */
    size_t held_len;
    bool holding;
    int bn, bi, acked; /* the fetched batch: its size, the next to take, the prefix acked */
} xsnode_shard_t;

typedef struct xsnode {
    nats_t *n;
    unsigned nshards;
    xsnode_shard_t *sh; /* [nshards] */
    size_t part_max;
    uint8_t *owner; /* [65536] locate % nshards */
    xjoin_t join;
    bool join_ok;
    xsection_t *xs;
    xsnode_publish_fn *publish;
    void *publish_ctx;
    uint64_t interval_ns, last_compute, rows_computed;
    unsigned rr; /* the shard fetched first next time */
    /* counters */
    _Atomic uint64_t fetched, resent, ahead, computes;
    char err[NATS_ERROR_MAX];
} xsnode_t;

/* Connect to cfg->cluster_nats, ensure the rows stream, make the consumers from its start and
 * the join for cfg->cluster_shards shards of cfg->matrix_symbols columns. Rows go into xs (the
 * server's, whose symbol table is names: the parts' names are written there); publish(ctx, xs)
 * after each compute. 0, or -errno with a message naming the URL, stream or key in err. */
int xsnode_init(xsnode_t *x, const config_t *cfg, xsection_t *xs, symtab_t *names,
                xsnode_publish_fn *publish, void *ctx, char *err, size_t errlen);
/* Fetch what the shards published (waiting at most timeout_ms in all), join it, push the rows
 * that are complete or due, compute and publish when it is time. Returns the rows pushed, or
 * -errno with a message in err (a connection lost for good). Allocates nothing of ours. */
int xsnode_step(xsnode_t *x, int timeout_ms, char *err, size_t errlen);
/* The end: every bar still in flight is pushed if complete, else dropped and counted; the
 * xsection computed and published. */
void xsnode_finish(xsnode_t *x);
void xsnode_fini(xsnode_t *x);

#endif
