/*
 * report: the analytics part of the replay report. report_collect copies what the report shows
 * out of the shard (books, stats) and the cross-section (PCA, MST, clusters) into a plain struct,
 * so that the engine can tear everything down and run the leak check before printing. Text for
 * people, JSON for machines; both from the same struct. Control path: stdio, no hot path.
 */
#ifndef TICKCORE_ENGINE_REPORT_H
#define TICKCORE_ENGINE_REPORT_H

#include "analytics/book.h"
#include "engine/pipeline.h"
#include "engine/shard.h"
#include "engine/truth.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "mem/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define REPORT_TOP_MAX        1000
#define REPORT_CLUSTERS_SHOWN 10

typedef struct report_sym {
    char name[SYMTAB_SYM_MAX + 1];
    uint16_t locate;
    uint64_t trades, volume;
    double notional, vwap, last, bid, ask, spread, vol, open, high, low;
    uint32_t orders, levels; /* live in the book at the end */
} report_sym_t;

typedef struct report {
    bool analytics;
    /* books */
    book_stats_t book;
    uint64_t by_result[BOOK_RESULT_COUNT];
    /* stats */
    uint64_t bar_ns, trades, bars_closed, unpriced, breaks, breaks_unknown, sym_full, late;
    uint32_t symbols_traded;
    size_t ntop;
    report_sym_t top[REPORT_TOP_MAX];
    /* cross-section */
    bool xs_ok;
    char estimator[32]; /* matrix.estimator, with its K for subsample */
    bool est_auto;      /* matrix.estimator = auto chose it (for bars of bar_ns) */
    bool shrinkage;     /* ledoit-wolf */
    bool shrink_block;  /* ledoit-wolf-block */
    double lw_delta, lw_rbar;
    uint64_t est_rows; /* rows in the estimator's windows (refresh: sampled; subsample: K-bar) */
    size_t n, window;
    uint64_t rows, idle_bars, partial_rows, restarts, discarded_rows, rejected, recomputes;
    size_t npc;
    double pc[8];
    double mst_total;
    size_t nclusters;
    uint32_t cluster_size[REPORT_CLUSTERS_SHOWN]; /* largest first */
    char hub[SYMTAB_SYM_MAX + 1];                 /* highest MST betweenness */
    uint32_t hub_degree;
    double xs_seconds;
    /* pipeline */
    unsigned workers;
    uint64_t batches_published, acquire_waits, xs_waits, row_waits;
    double acquire_wait_s, xs_busy, reader_busy, wall;
    double worker_busy[PIPE_MAX_WORKERS], worker_wall[PIPE_MAX_WORKERS];
    double worker_wait[PIPE_MAX_WORKERS], worker_cpu[PIPE_MAX_WORKERS]; /* row waits; CPU s */
    double xs_wait, xs_cpu, route_s; /* cross-section waiting for row parts; reader routing */
    uint64_t worker_owned[PIPE_MAX_WORKERS];
    uint64_t lat_n, lat_p50, lat_p99, lat_p999, lat_max; /* ns */
    histo_t lat_scratch;
    /* against the generator's truth file, when there is one */
    int truth_rc; /* 0 compared, -1 failed (truth.err), 1 not asked */
    char truth_path[320];
    truth_result_t truth;
} report_t;

/* From the K shards of a finished pipeline (p NULL: decode-only, nothing to collect). */
void report_collect(report_t *r, const pipeline_t *p, const symtab_t *symbols, uint32_t top);
/* The reader's own time (decoding), the wall time of the run: for the stage table. */
void report_set_times(report_t *r, double reader_busy, double wall);
void report_text(FILE *f, const report_t *r);
void report_json(FILE *f, const report_t *r);

/* The memory part of a report after the teardown: verbose, mem_report_text's whole table (tags,
 * churn sites, arenas, pools, rings); otherwise the summary: allocations after the seal (and the
 * churn sites if any), peak RSS, and the leak verdict (one line per leaking tag). */
void report_memory_text(FILE *f, const mem_snapshot_t *end, bool verbose);

/* Write one output file with fn; path NULL: nothing to do. 0 ok, 1 failed (said on stderr). */
int report_write_file(const char *path, int (*fn)(const xsection_t *, FILE *), const xsection_t *x);

#endif
