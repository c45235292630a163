/*
 * snapshot: the published state that queries read while the pipeline ingests. Writers (the
 * shard workers and the cross-section thread) never wait for readers and readers never lock:
 * every record is a seqlock over words that are written and read as atomics (release stores,
 * acquire loads: TSan sees no race and there is no standalone fence), and a reader that sees
 * the sequence move under it copies again, giving up with -EAGAIN after SNAPSHOT_READ_TRIES.
 *
 * Per-symbol records: one per symbol, in slots given on a symbol's first publish (at most
 * max_symbols; a symbol that finds them all taken is counted in no_slot and not published),
 * found through a locate -> slot table or, by name, by a scan of one packed 8-byte word per
 * slot. A record holds the best bid and offer, `depth` levels per side, the book's order and
 * level counts, the stats (stats_sym_t), the last closed bar and the open bar, the feed time of
 * the symbol's last event and the time of the publish. The worker that owns a locate
 * (owner[locate], or every locate with owner NULL and one worker) is its only writer:
 * snapshot_after_batch marks the locates a batch touched dirty (a per-worker bitmap and list,
 * allocated at init) and, once interval_ns has passed since that worker's last publish (or when
 * forced), publishes them all. When the worker's bar clock moved since its last publish, every
 * record it owns is republished too, so closed and open bars never lag more than one interval.
 * A record is as of that publish: a symbol with no event since shows the state it had then.
 *
 * Cross-section: two buffers and a generation counter. The cross-section thread writes the
 * buffer the readers are not pointed at (itself a seqlock), then publishes its generation; a
 * reader that was slow enough for the writer to come round to its buffer again sees the
 * sequence change and retries. Readers either copy pieces into their own arrays
 * (snapshot_xs_read) or read in place inside a transaction (snapshot_xs_begin, the accessors,
 * snapshot_xs_valid), which is what the query module does to stream JSON with no scratch:
 * accessors clamp every index, so a torn read is never out of bounds, only discarded.
 *
 * Memory: snapshot_init allocates everything (tag MEM_TAG_SERVER) from the configuration
 * (server.depth, symbols.max_symbols, server.snapshot_interval, matrix.symbols,
 * matrix.pca_components); nothing afterwards. Threads: worker w calls snapshot_after_batch with
 * its own w; the cross-section thread calls snapshot_publish_xs; any thread reads.
 */
#ifndef TICKCORE_SERVER_SNAPSHOT_H
#define TICKCORE_SERVER_SNAPSHOT_H

#include "analytics/book.h"
#include "analytics/stats.h"
#include "config/config.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "event/event.h"
#include "event/symtab.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_DEPTH_MAX   64  /* levels per side (config server.depth: 1..64) */
#define SNAPSHOT_PC_MAX      64  /* principal components (config matrix.pca_components) */
#define SNAPSHOT_WORKERS_MAX 64  /* writers of symbol records (pipeline workers) */
#define SNAPSHOT_READ_TRIES  200 /* copies a reader tries before -EAGAIN */

enum {
    SNAPSHOT_HAS_BOOK = 1u << 0,     /* the book had the symbol (best, depth, counts valid) */
    SNAPSHOT_HAS_STATS = 1u << 1,    /* stats valid (the symbol traded or was quoted) */
    SNAPSHOT_HAS_LAST_BAR = 1u << 2, /* last_bar valid */
    SNAPSHOT_HAS_OPEN_BAR = 1u << 3, /* open_bar valid */
};

/* One symbol as a reader gets it. Prices are in 1/EV_PRICE_SCALE dollars. */
typedef struct snapshot_sym {
    uint16_t locate;
    uint16_t flags;      /* SNAPSHOT_HAS_* */
    uint16_t nbid, nask; /* levels in bids/asks (each <= the depth asked for) */
    char symbol[SYMTAB_SYM_MAX + 1];
    uint64_t version;    /* publishes of this record (1 for the first) */
    uint64_t ts;         /* feed timestamp (ns) of the symbol's last event before the publish */
    uint64_t publish_ns; /* now_ns given to the publish (serve: wall clock, ns since epoch) */
    int64_t bid, ask;    /* best prices; 0 = side empty */
    uint64_t bid_size, ask_size;
    book_symbol_t book; /* live orders and levels per side (0 bid, 1 ask) */
    stats_sym_t stats;
    stats_bar_t last_bar; /* the last closed bar */
    stats_bar_t open_bar; /* the bar open at the publish */
    book_level_t bids[SNAPSHOT_DEPTH_MAX];
    book_level_t asks[SNAPSHOT_DEPTH_MAX];
} snapshot_sym_t;

/* Per writer: its dirty set and counters. Written by worker w only; counters are relaxed
 * atomics that any thread may read. */
typedef struct snapshot_worker {
    _Alignas(64) uint64_t *dirty; /* bitmap of 65536 locates */
    uint16_t *list;               /* the dirty locates, in first-touch order */
    uint32_t nlist;
    uint64_t last_pub_ns;
    uint64_t bar_k; /* the shard's open bar at the last publish */
    snapshot_sym_t *tmp;
    _Atomic uint64_t publishes, records, no_slot;
} snapshot_worker_t;

/* The cross-section header as a reader gets it. */
typedef struct snapshot_xs_head {
    uint64_t gen;        /* publish number, 1, 2, ... (0: nothing published yet) */
    uint64_t publish_ns; /* CLOCK_REALTIME at the publish */
    uint32_t n;          /* tracked symbols (nodes) */
    uint32_t k;          /* principal components published (0 if PCA failed) */
    uint32_t nedges;     /* MST edges (0 if the graph failed) */
    uint32_t nclusters;  /* clusters of the last cut (0: none) */
    int32_t pca_rc, graph_rc;
    uint64_t rows_window; /* rows behind the matrix (covariance_rows) */
    uint64_t rows, bars, idle_bars;
    uint64_t first_k, last_k; /* bar numbers of the first and last row pushed */
    uint64_t bar_ns;
    double mst_total; /* sum of the MST distances */
    double pc_ratio[SNAPSHOT_PC_MAX];
    double pc_value[SNAPSHOT_PC_MAX];
} snapshot_xs_head_t;

typedef struct snapshot_xs_node {
    uint16_t locate;
    char symbol[SYMTAB_SYM_MAX + 1];
    uint32_t cluster;   /* 0..nclusters-1 (0 when there is no cut) */
    uint32_t degree;    /* MST degree */
    double betweenness; /* normalised tree betweenness (graph_between_norm) */
} snapshot_xs_node_t;

typedef struct snapshot_xs_edge {
    uint32_t u, v; /* node indices */
    double rho, d;
} snapshot_xs_edge_t;

typedef struct snapshot {
    /* sizes */
    uint32_t depth, max_symbols, nworkers;
    uint64_t interval_ns;
    size_t rec_words; /* stride of a record in words (seq word first) */
    size_t hdr_words; /* snapshot_sym_t up to bids */
    /* symbol records */
    _Atomic uint64_t *recs;      /* [max_symbols * rec_words] */
    _Atomic uint32_t *slot_of;   /* [65536] locate -> slot + 1 once published; 0 = none */
    _Atomic uint16_t *slot_loc;  /* [max_symbols] locate of a claimed slot; 0 = not yet */
    _Atomic uint64_t *slot_name; /* [max_symbols] the symbol packed into 8 bytes */
    _Atomic uint32_t claimed;    /* slots claimed (may pass max_symbols: refusals) */
    uint64_t *last_ts;           /* [65536] feed time of a locate's last event (owner writes) */
    snapshot_worker_t *w;        /* [nworkers] */
    /* cross-section */
    uint32_t max_n, max_k;
    uint64_t bar_ns;
    size_t xs_words; /* words per buffer */
    size_t off_pcr, off_pcv, off_node, off_cl, off_edge, off_load, off_corr;
    _Atomic uint64_t *xs[2];  /* the two buffers; word 0 is the sequence */
    _Atomic uint64_t xs_gen;  /* the published generation (0: none) */
    _Atomic uint64_t xs_pubs; /* publishes */
    size_t recs_bytes, xs_bytes;
} snapshot_t;

/* Size everything from cfg for nworkers writers (1..SNAPSHOT_WORKERS_MAX). 0, -EINVAL, -ENOMEM
 * (nothing stays allocated). Start-up, before the seal. */
int snapshot_init(snapshot_t *s, const config_t *cfg, unsigned nworkers);
/* Free everything; a zeroed or finished snapshot_t is accepted. No thread may use it. */
void snapshot_fini(snapshot_t *s);

/* Worker w, right after it applied a batch to sh: mark the locates of its events dirty, and if
 * interval_ns has passed since its last publish, or force, publish every dirty record (and all
 * of its records when its bar clock moved). Its events: with own, ev[own[0]], ..., ev[own[n-1]]
 * (positions in feed order: the pipeline's routed list, all of them w's; the cost is
 * proportional to n); without, ev[0..n) filtered by owner[locate] == w (owner NULL: every
 * locate, for a single worker). owner also names w's records when the bar clock moved. names
 * may be NULL (records then have no symbol). n may be 0 (an idle, forced publish). Allocates
 * nothing; never waits. */
void snapshot_after_batch(snapshot_t *s, unsigned w, const shard_t *sh, const symtab_t *names,
                          const ev_t *ev, const uint32_t *own, size_t n, const uint8_t *owner,
                          uint64_t now_ns, bool force);
/* Cross-section thread, after xsection_compute returned 0: publish x. 0, or -EAGAIN (x has no
 * result; nothing published). Allocates nothing; never waits. */
int snapshot_publish_xs(snapshot_t *s, const xsection_t *x);

/* ---- readers: any thread, never blocking the writers -------------------------------------- */

/* The record of a locate, with `depth` levels per side (<= the configured depth, clamped).
 * 0, -ENOENT (never published), -EAGAIN (the writer kept changing it). */
int snapshot_get(const snapshot_t *s, uint16_t locate, snapshot_sym_t *out, uint32_t depth);
/* The same by symbol name (exact, 1..8 bytes; a linear scan of the slots' name words). */
int snapshot_find(const snapshot_t *s, const char *name, snapshot_sym_t *out, uint32_t depth);
/* Slots to scan with snapshot_read_slot: 0..snapshot_slots()-1. */
uint32_t snapshot_slots(const snapshot_t *s);
/* The record in a slot: 0, -ENOENT (empty or not yet published), -EAGAIN, -EINVAL. */
int snapshot_read_slot(const snapshot_t *s, uint32_t slot, snapshot_sym_t *out, uint32_t depth);

typedef struct snapshot_counters {
    uint32_t slots;   /* slots holding a symbol */
    uint64_t no_slot; /* publishes refused: every slot taken */
    uint64_t publishes, records, xs_publishes;
} snapshot_counters_t;
void snapshot_counters(const snapshot_t *s, snapshot_counters_t *out);

/* Copy pieces of the current cross-section in one consistent read. Pointers left NULL are not
 * copied; arrays hold up to their cap entries (nodes, edges: cap entries; corr: the full
 * n x n matrix when n * n <= corr_cap; loadings: k x n, component c at loadings + c * n, when
 * k * n <= loadings_cap). head is always filled. 0, -ENODATA (nothing published yet), -ENOSPC
 * (an array too small: nothing but head filled), -EAGAIN. */
typedef struct snapshot_xs_copy {
    snapshot_xs_head_t head;
    snapshot_xs_node_t *nodes;
    size_t nodes_cap;
    snapshot_xs_edge_t *edges;
    size_t edges_cap;
    double *corr;
    size_t corr_cap;
    double *loadings;
    size_t loadings_cap;
} snapshot_xs_copy_t;
int snapshot_xs_read(const snapshot_t *s, snapshot_xs_copy_t *c);

/* Reading in place. begin fills head and pins one buffer; the accessors read from it (indices
 * clamped, so a torn read is safe); valid says whether everything read since begin is
 * consistent (if not, discard it and begin again). begin: 0, -ENODATA, -EAGAIN. */
typedef struct snapshot_xs_tx {
    const snapshot_t *s;
    const _Atomic uint64_t *b;
    uint64_t seq;
    uint32_t n, k, nedges, nclusters;
} snapshot_xs_tx_t;
int snapshot_xs_begin(const snapshot_t *s, snapshot_xs_tx_t *tx, snapshot_xs_head_t *head);
/* The published generation (0: nothing yet): what snapshot_xs_begin would pin now. */
uint64_t snapshot_xs_gen(const snapshot_t *s);
bool snapshot_xs_valid(const snapshot_xs_tx_t *tx);
void snapshot_xs_node(const snapshot_xs_tx_t *tx, uint32_t i, snapshot_xs_node_t *out);
/* Node index of a symbol, or UINT32_MAX. */
uint32_t snapshot_xs_find(const snapshot_xs_tx_t *tx, const char *name);
double snapshot_xs_corr(const snapshot_xs_tx_t *tx, uint32_t i, uint32_t j);
double snapshot_xs_loading(const snapshot_xs_tx_t *tx, uint32_t comp, uint32_t i);
void snapshot_xs_edge(const snapshot_xs_tx_t *tx, uint32_t e, snapshot_xs_edge_t *out);
/* Cluster c: its first node (UINT32_MAX when empty) and size; snapshot_xs_next walks on
 * (UINT32_MAX at the end). Nodes of a cluster come in node order. */
uint32_t snapshot_xs_cluster_first(const snapshot_xs_tx_t *tx, uint32_t c, uint32_t *size);
uint32_t snapshot_xs_next(const snapshot_xs_tx_t *tx, uint32_t i);

/* A symbol packed into a word (bytes in order, zero padded); 0 for "" or a name over 8 bytes. */
uint64_t snapshot_pack_name(const char *name);

#endif
