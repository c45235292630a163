/*
 * export: closed bars (`tickcore replay --bars-out FILE.csv`) and order book snapshots
 * (`--book-out FILE.csv --book-every 1m --depth N [--book-symbols A,B]`) out of the shard
 * workers, streaming, in an order that does not depend on the number of workers.
 *
 * Why not one writer in feed order, as --trades-out does: that pins the run to one worker. Here
 * each worker writes fixed-size binary records (export_rec_t, 80 bytes) of the symbols it owns
 * to its own part file (an unlinked temporary beside the output) through its own preallocated
 * buffer; within a part, records are sorted by (session, time, locate, side, level), because a
 * worker closes bars and takes snapshots in time order and walks its symbols in locate order
 * (a sorted locate list kept as its stats gain symbols). export_finish, after the workers have
 * been joined, merges the K parts by that key into the CSV (a K-way merge reading each part
 * through the same buffer it was written with). So the row order is: bar by bar (or snapshot by
 * snapshot), then by stock locate, then bid before ask, best level first; the file is
 * byte-identical for any pipeline.workers (tested), and the parts cost one extra sequential
 * write and read of 80 bytes per row.
 *
 * Bars: every bar a worker's stats close and keep (stats_bar_fn), for every symbol that has a
 * price by then (a symbol before its first trade has none and gets no row; a bar without trades
 * is carried: open = high = low = close = previous close, volume 0, trades 0, return 0). Bars
 * closed by a jump longer than stats.bar_history are neither stored nor reported (stats.h) and
 * so not exported. The open bar at the end of the input is not closed and not written.
 * Columns: bar,end_ns,symbol,open,high,low,close,volume,vwap,trades,return with bar = k (the bar
 * covers [k * bar_ns, end_ns)), prices with 4 decimals, vwap in dollars (empty without volume)
 * and return = ln(close / previous close) (empty on a symbol's first priced bar).
 *
 * Book snapshots: at each boundary T = j * every of market time (the events' timestamp scale),
 * the book of each symbol as it stands after every event before T: taken when the first event
 * at or after T arrives, before it is applied. When the feed jumps over several boundaries, only
 * the last one crossed is written (the books did not change in between). Symbols: those the
 * worker's stats know (every symbol whose book has changed or that traded), or the named ones.
 * Columns: time_ns,symbol,side,level,price,shares,orders, one row per level, up to depth levels
 * per side (a side with fewer levels has fewer rows, an empty book none).
 *
 * The day store (stats.day_bars > 0, for the library: tickcore_bars, Python bars()): the same bar
 * rows as --bars-out, kept in memory instead of (or as well as) a file: day_symbols slots of
 * day_bars bars each, a slot given to a symbol at its first row (an atomic counter: the only
 * write two workers share; the slot's rows and count are written by the symbol's owner alone).
 * A symbol without a slot (all taken) or with a full slot has its rows counted as dropped. A new
 * session (the next day) empties the store: it holds the session's bars, oldest first.
 *
 * Memory: export_init allocates everything (tag ENGINE): per worker two part buffers, a sorted
 * locate list and a level array, plus the output buffer of the merge; the day store (its bars,
 * day_symbols x day_bars x 80 bytes, prefaulted; a 65536-entry locate -> slot map; the counts);
 * nothing afterwards. Errors:
 * a part or output that cannot be written keeps its first -errno (sticky), reported by
 * export_finish. Threads: worker w alone calls export_bar/export_book with its own export_part_t
 * (one writer per part); init, finish and fini on the reader thread, before start and after join.
 */
#ifndef TICKCORE_ENGINE_EXPORT_H
#define TICKCORE_ENGINE_EXPORT_H

#include "analytics/book.h"
#include "analytics/stats.h"
#include "event/symtab.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPORT_MAX_DEPTH 100u
#define EXPORT_MAX_NAMED 64u /* --book-symbols */
#define EXPORT_PART_BUF  (256u * 1024u)
#define EXPORT_OUT_BUF   (1u << 20)
#define EXPORT_KIND_BARS 0
#define EXPORT_KIND_BOOK 1
#define EXPORT_KINDS     2

typedef struct export_cfg {
    const char *bars_out, *book_out; /* NULL: not written */
    uint64_t bar_ns;                 /* stats.bar_interval */
    uint64_t book_every_ns;          /* > 0 with book_out */
    uint32_t depth;                  /* levels per side, 1..EXPORT_MAX_DEPTH */
    const char *book_symbols;        /* "A,B,C" or NULL: every symbol */
    uint32_t max_symbols;            /* symbols.max_symbols: a worker's locate list */
    uint32_t day_bars, day_symbols;  /* the day store (stats.day_bars; 0: none) */
} export_cfg_t;

/* One record of a part file: the merge key, then the bar or the level. */
typedef struct export_rec {
    uint32_t session; /* stats sessions count: a new day's file */
    uint16_t locate;
    uint8_t side; /* 0 for bars, 'B' or 'S' */
    uint8_t level;
    uint64_t t; /* bar k, or the snapshot time in ns */
    union {
        stats_bar_t bar;
        book_level_t lvl;
    } u;
} export_rec_t;

/* One part file: a worker's records of one kind. */
typedef struct export_part {
    int fd;
    int err;   /* sticky -errno */
    char *buf; /* [EXPORT_PART_BUF] */
    size_t len;
    uint64_t records;
} export_part_t;

/* A worker's side: its parts, its symbols in locate order, the snapshot clock. */
typedef struct export_worker {
    export_part_t part[EXPORT_KINDS];
    struct export *x;
    uint16_t *locs; /* [max_symbols], sorted */
    uint32_t nlocs, seen;
    uint64_t session;     /* stats sessions when locs was built */
    uint64_t snap_next;   /* the next boundary; 0: no origin yet */
    book_level_t *lv;     /* [depth] */
    uint64_t day_dropped; /* rows the day store could not keep (this worker's symbols) */
} export_worker_t;

/* The day store: symbol slot i holds bars[i * day_bars .. + count[i]), of locate loc[i]. */
typedef struct export_day {
    stats_bar_t *bars;     /* [day_symbols * day_bars] */
    uint32_t *slot;        /* [65536] locate -> slot + 1; 0: none yet; UINT32_MAX: refused */
    uint32_t *count;       /* [day_symbols] */
    uint16_t *loc;         /* [day_symbols] */
    _Atomic uint32_t used; /* slots given this session */
    size_t bars_bytes;
} export_day_t;

typedef struct export
{
    export_cfg_t cfg;
    unsigned nworkers;
    export_worker_t *w; /* [nworkers] */
    int out_fd[EXPORT_KINDS];
    char *out; /* [EXPORT_OUT_BUF], the merge's output buffer */
    const symtab_t *symbols;
    char named[EXPORT_MAX_NAMED][SYMTAB_SYM_MAX + 1];
    uint32_t nnamed;
    uint64_t rows[EXPORT_KINDS]; /* written by export_finish */
    export_day_t day;            /* day.bars NULL: no day store */
}
export_t;

/* Open the outputs (created or truncated now, so a bad path fails before anything runs), the
 * part files and every buffer, for nworkers workers. 0, or -errno with err naming the file or the
 * setting. Control path, before the seal. */
int export_init(export_t *x, const export_cfg_t *cfg, unsigned nworkers, const symtab_t *symbols,
                char *err, size_t errlen);
/* Close and free everything (a zeroed export_t is fine). */
void export_fini(export_t *x);
static inline bool export_enabled(const export_t *x)
{
    return x->w != NULL;
}

/* Worker thread, from its stats' bar callback: bar k of every symbol of st with a price. */
void export_bar(export_worker_t *w, const stats_t *st, uint64_t k);
/* Worker thread, before applying an event at ts >= w->snap_next: the snapshot at the last
 * boundary at or below ts of the books of the worker's symbols (the first call only sets the
 * clock). */
void export_book(export_worker_t *w, const book_t *b, const stats_t *st, uint64_t ts);
/* Worker thread: a new session (the clock went back): the snapshot clock starts again. */
void export_new_session(export_worker_t *w);

/* The day store's bars of a locate, oldest first: *out points into the store (valid until
 * export_fini; rows are appended by the owner worker, so read them while it is idle). Returns
 * the count, 0 without a slot or a store. Reader thread. */
uint32_t export_day_bars(const export_t *x, uint16_t locate, const stats_bar_t **out);
/* Bars in the day store now, and rows dropped since the start (all workers). Reader thread,
 * workers idle. */
uint64_t export_day_kept(const export_t *x);
uint64_t export_day_dropped(const export_t *x);

/* After every worker has stopped: merge the parts into the CSV files and close them. 0, or the
 * first -errno with err naming the file. */
int export_finish(export_t *x, char *err, size_t errlen);

#endif
