/*
 * replay: the engine run over files, the job behind `tickcore replay`. replay_create sizes
 * everything from the configuration (symbol table, input stream, the pipeline with its shard
 * workers and cross-section thread, the --trades-out writer) and starts the threads; replay_run
 * seals memory, reads the files one after another through the same buffers (ITCH or CSV by
 * content, `repeat` times, at market pace on request; a file whose clock starts before the last
 * one ended starts a new session), publishes every batch to the pipeline, drains it, computes the
 * cross-section, writes the files asked for and compares with the generator's truth file; then
 * replay_destroy tears everything down and replay_end takes the leak check. What the report shows
 * is copied into the caller's replay_result_t, which outlives the teardown.
 *
 * Ownership: replay_t and everything in it come from mem/ (tag ENGINE and the pipeline's tags)
 * and go back in replay_destroy; the result is the caller's (static: it holds the analytics
 * report, a few hundred KB). Threads: create, run, destroy and end on one thread (the reader);
 * the progress callback runs on it; *stop may be set from a signal handler (the run stops
 * reading, drains and reports).
 */
#ifndef TICKCORE_ENGINE_REPLAY_H
#define TICKCORE_ENGINE_REPLAY_H

#include "config/config.h"
#include "engine/export.h"
#include "engine/report.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "ingest/stream.h"
#include "mem/mem.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define REPLAY_MAX_FILES 256

/* Where the run is, every progress_interval seconds and once at the end (final). */
typedef struct replay_progress {
    double elapsed;       /* seconds since the seal */
    uint64_t messages;    /* decoded so far, every pass */
    uint64_t done_bytes;  /* file bytes read so far, every pass */
    uint64_t total_bytes; /* the regular files' sizes times repeat */
    unsigned pass;        /* 0-based */
    bool final;
} replay_progress_t;

typedef void replay_progress_fn(void *ctx, const replay_progress_t *p);

typedef struct replay_cfg {
    const config_t *cfg; /* copied by replay_create */
    char *const *files;  /* paths, in order; must outlive the run */
    unsigned nfiles;     /* 1..REPLAY_MAX_FILES; 0: bytes fed with replay_feed */
    unsigned repeat;     /* >= 1: the files this many times */
    stream_format_t format;
    bool skip_bad, strict; /* strict: stop at the first bad CSV row */
    double speed;          /* market pace factor; 0 = as fast as possible */
    bool decode_only;      /* no pipeline: decode and count */
    const char *trades_out, *corr_out, *mst_out, *clusters_out; /* NULL: not written */
    const char *bars_out, *book_out; /* engine/export: closed bars, book snapshots (NULL: none) */
    uint64_t book_every_ns;          /* snapshot interval of market time (with book_out) */
    uint32_t book_depth;             /* levels per side (with book_out) */
    const char *book_symbols;        /* "A,B" or NULL: every symbol (with book_out) */
    const char *truth;               /* NULL: FILE.truth.csv next to a single input, if present */
    FILE *diag;                      /* CSV row errors of each file (NULL: not shown) */
    const char *plots_dir; /* the heatmap, MST and PCA data for engine/plots (NULL: none) */
    replay_progress_fn *progress;
    void *progress_ctx;
    double progress_interval; /* seconds (0: 0.1) */
    volatile sig_atomic_t *stop;
} replay_cfg_t;

typedef struct replay_file {
    const char *path;
    stream_format_t format;
    bool gzip;
    uint64_t messages, bytes, file_bytes, bad_frames, skipped_bytes, csv_rows_bad;
    int status; /* 0 clean, 1 ended by an error */
    char err[512];
    /* a pcap/pcapng capture (format pcap): its packets and MoldUDP64 sequencing (ingest/capture) */
    uint64_t cap_packets, cap_mold_packets, cap_skipped, cap_duplicates, cap_gaps, cap_gap_messages;
    capture_gap_t cap_gap[CAPTURE_GAPS_KEPT]; /* the first cap_gaps ranges */
} replay_file_t;

typedef struct replay_result {
    unsigned nfiles;
    replay_file_t files[REPLAY_MAX_FILES];
    uint64_t by_type[256];
    uint64_t messages, bytes;
    double seconds;
    bool interrupted, skip_bad;
    unsigned failed;     /* files that ended by an error */
    bool outputs_failed; /* a --*-out file could not be written */
    uint32_t symbols;    /* in the table */
    uint64_t symbols_refused;
    const char *io_mode; /* "io_uring (registered buffers)", ... (static) */
    uint64_t allocs_after_seal;
    /* The run's timeline, CLOCK_MONOTONIC seconds (clock_mono_s): replay_create entered, the
     * seal (replay_begin), the first batch decoded (0: none), the input drained (the end of
     * "seconds"), the report ready (replay_finish returns: cross-section, truth, outputs). The
     * caller adds the process's start and its teardown (cli/cmd_replay). */
    double t_create, t_seal, t_first, t_drained, t_finished;
    report_t report;      /* books, stats, cross-section, pipeline, truth */
    mem_snapshot_t after; /* after the run, before the teardown */
    mem_snapshot_t end;   /* after the teardown (replay_end): the leak check */
} replay_result_t;

typedef struct replay replay_t;

/* Start-up: everything sized, threads started (memory not sealed yet). 0, or -errno with what
 * failed in err (the part of start-up and why). */
int replay_create(replay_t **out, const replay_cfg_t *c, char *err, size_t errlen);
/* Seal, replay every file, drain, compute and write the outputs, fill *res. Returns the number of
 * files that ended by an error. Call once. It is replay_begin, replay_step to the end of the
 * files, replay_finish. */
int replay_run(replay_t *r, replay_result_t *res);

/* The run in steps (the library, include/tickcore/). replay_begin seals memory and starts the
 * clock; res is filled as the run goes (totals, file results) and completed by replay_finish.
 * 0, or -EALREADY. */
int replay_begin(replay_t *r, replay_result_t *res);
/* At most max messages of the files, in order (repeat passes included): returns how many were
 * read. A file that ends by an error is recorded in res (status, err, failed) and the next file
 * follows. replay_files_done: every file read (or stopped); a step then reads 0. */
uint64_t replay_step(replay_t *r, uint64_t max);
bool replay_files_done(const replay_t *r);
/* Messages decoded so far (files and fed bytes). */
uint64_t replay_messages(const replay_t *r);
/* ITCH 5.0 BinaryFILE bytes from memory instead of files (a replay created with 0 files): every
 * whole frame of buf is decoded and published now (buf is not kept); a frame cut at the end of buf
 * waits in a carry buffer of ITCH_MAX_FRAME bytes inside replay_t and is completed by the next
 * call, so any split of a stream into calls gives the same messages. 0, or -EBADMSG: a bad frame
 * (err: "fed bytes: byte OFFSET (message N): what was expected", OFFSET counted from the first
 * byte ever fed); every message before it has been published, and every later call fails the
 * same way. -EINVAL after replay_finish or without a pipeline. Allocates nothing. */
int replay_feed(replay_t *r, const void *buf, size_t len, char *err, size_t errlen);
/* Bytes of the fed stream decoded so far (the offset of the carried frame), and in *carried the
 * bytes waiting in the carry buffer (may be NULL). */
uint64_t replay_fed_bytes(const replay_t *r, size_t *carried);
/* Wait until the pipeline has applied everything published (pipeline_sync): the shards can then
 * be read on this thread until the next step or feed. */
void replay_sync(replay_t *r);
/* replay_sync, then the correlation, PCA, MST and clusters over the rows so far, computed again
 * only when rows came since the last call (in the cross-section's own buffers: x->compact keeps
 * its address). 0, or -EAGAIN (fewer than 2 rows, or no pipeline). After replay_finish: the
 * final result's status. */
int replay_compute(replay_t *r);
/* The bar closes behind the cross-section computed last (replay_compute or the end), 0: none. */
uint64_t replay_corr_bars(const replay_t *r);
/* End of the input: a frame still waiting in the carry buffer is a truncated final message
 * (-EBADMSG, err says where: the results of everything before it stand); the open bar closes,
 * the pipeline drains and joins, the cross-section is computed and the outputs written, and res
 * is complete. 0, -EBADMSG (the fed stream ended by an error), -EALREADY (not begun, or
 * finished already). */
int replay_finish(replay_t *r, char *err, size_t errlen);
/* Join and free everything (NULL: nothing). */
void replay_destroy(replay_t *r);

/* The results in place (the library, include/tickcore/): after replay_run the threads are
 * joined but the books, stats, symbol table and cross-section stay allocated until
 * replay_destroy, so a reader may view them instead of copying. NULL with decode_only (no
 * pipeline). replay_shard: the shard that owns a locate's book and stats. Reader thread, after
 * replay_run. */
const symtab_t *replay_symbols(const replay_t *r);
const xsection_t *replay_xsection(const replay_t *r);
const shard_t *replay_shard(const replay_t *r, uint16_t locate);
/* The exports, with the day store (stats.day_bars; export_day_bars). */
const export_t *replay_export(const replay_t *r);
/* After replay_destroy: the final memory snapshot into res->end (with the registered objects as
 * they were at the end of the run). Returns the exit status: 3 on churn or a leak in strict mode,
 * else 1 if a file or an output failed, else 0. */
int replay_end(replay_result_t *res);

#endif
