/*
 * tickcore.h: the public C API of libtickcore (symbol versions TICKCORE_1.0 and, for the
 * functions marked 1.1, TICKCORE_1.1). A session replays ITCH 5.0 BinaryFILEs (plain or gzip)
 * and trades/quotes CSV files, or ITCH bytes handed over from memory, through the same engine
 * as `tickcore replay`, then lets the caller read the results where the engine keeps them.
 *
 * Lifecycle: tickcore_open (the built-in defaults, an optional INI file, then "section.key=value"
 * settings, as `tickcore replay --config FILE --set KEY=VALUE`), tickcore_add_file for each
 * input, tickcore_run once (everything is sized, memory is sealed, the files are replayed in
 * order, the cross-section is computed), then the readers, then tickcore_close.
 * In steps (1.1): instead of tickcore_run, tickcore_step(s, N) reads the next N messages of the
 * files, or, in a session without files, tickcore_feed(s, buf, len) hands over ITCH BinaryFILE
 * bytes split anyhow; the readers work between calls (they see every message so far: the bars
 * closed so far, the books as they stand, the correlation over the rows so far); tickcore_finish
 * (or the last step, or tickcore_run) ends the input: the open bar closes and the final
 * cross-section is computed. The first step, feed or run sizes everything and seals memory.
 *
 * Ownership: every pointer a reader hands out (the correlation matrix, symbol names, buffer
 * addresses) points into the session's own buffers and stays valid until tickcore_close; the
 * caller never frees it. After the input has ended it is also unchanged until then; between
 * steps, tickcore_correlation computes the matrix again in the same buffer when bars closed since
 * its last call (tickcore_position says whether it will), and tickcore_finish computes the final
 * one there (a matrix read between steps commits the bar rows that wait for the covariance's
 * next batch, so the final matrix may differ from a run without such reads by rounding, about
 * 1e-16). Readers that copy (bars, book levels, memory) write into the caller's memory.
 * Nothing here allocates once the session has started (after the first step, feed or run).
 *
 * Errors: functions return 0 (or a count >= 0) or a negative errno; the session keeps a message
 * with context (file, key, what was expected) for the last error, tickcore_errmsg. tickcore_open
 * writes its message into the caller's buffer, since there is no session yet.
 *
 * Threads: a session belongs to one thread at a time. Sessions are independent, but the memory
 * accounting (tickcore_memory) is process-wide, and runs of two sessions must not overlap.
 * Prices are integers in 1/TICKCORE_PRICE_SCALE dollars (ITCH's 4 decimals).
 */
#ifndef TICKCORE_TICKCORE_H
#define TICKCORE_TICKCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TICKCORE_API __attribute__((visibility("default")))
#else
#define TICKCORE_API
#endif

#define TICKCORE_VERSION_MAJOR 1
#define TICKCORE_VERSION_MINOR 1
#define TICKCORE_PRICE_SCALE   10000 /* prices are integers in 1/10000 dollars */
#define TICKCORE_MAX_FILES     256
#define TICKCORE_SYMBOL_MAX    8 /* characters of a symbol, without the NUL */

typedef struct tickcore tickcore_t;

/* One closed bar of one symbol (80 bytes). */
typedef struct tickcore_bar {
    uint64_t k;                     /* bar number: the bar starts at k * bar_ns on the feed clock */
    int64_t open, high, low, close; /* 1/TICKCORE_PRICE_SCALE dollars; 0 without a price */
    uint64_t volume;                /* shares, net of breaks */
    double vwap;                    /* dollars; NaN without volume */
    double ret;                     /* ln(close / previous close); 0 carried; NaN without both */
    double mid_ret;                 /* the same from the mid-quote at the bars' ends; NaN unknown */
    uint32_t trades;
    uint32_t flags; /* TICKCORE_BAR_CARRIED, TICKCORE_BAR_NOPRICE */
} tickcore_bar_t;

enum {
    TICKCORE_BAR_CARRIED = 1u << 0, /* no trade in the bar: prices are the previous close */
    TICKCORE_BAR_NOPRICE = 1u << 1, /* the symbol had not traded yet */
};

/* One price level of a book side. */
typedef struct tickcore_level {
    int64_t price;   /* 1/TICKCORE_PRICE_SCALE dollars */
    uint64_t shares; /* left on the level's live orders */
    uint32_t orders; /* live orders at this price */
    uint32_t reserved;
} tickcore_level_t;

/* What the run did. */
typedef struct tickcore_summary {
    uint64_t messages, bytes; /* decoded, all files */
    double seconds;           /* from the seal to the end of the drain (0 until the input ends) */
    uint32_t files, files_failed;
    uint32_t symbols;           /* in the symbol table */
    uint32_t matrix_symbols;    /* columns of the correlation matrix (0: none computed) */
    uint64_t matrix_rows;       /* bar rows in the covariance over the run */
    uint64_t bar_ns;            /* bar interval */
    uint32_t bar_history;       /* closed bars kept per symbol */
    uint32_t workers;           /* shard threads */
    uint64_t allocs_after_seal; /* allocations during the replay (0: the steady state allocated
                                   nothing) */
} tickcore_summary_t;

/* One result buffer of the session: where it lives and how big it is. */
typedef struct tickcore_buffer {
    char name[32]; /* "xsection.scratch" (the correlation lives here), "xsection.full",
                      "stats.bars.N" (shard N's bar rings), "symtab.names", "export.day_bars"
                      (the day store, with stats.day_bars) */
    const void *addr;
    size_t bytes;
} tickcore_buffer_t;

#define TICKCORE_MEM_TAGS 16

/* The process's memory accounting (every byte the engine owns goes through it). */
typedef struct tickcore_memory {
    int64_t live_bytes;         /* now, all tags */
    int64_t peak_bytes;         /* most live at once (an upper bound with several threads) */
    uint64_t allocs, frees;     /* since the process started */
    uint64_t churn_allocs;      /* after a seal, outside control scopes: should stay 0 */
    uint64_t allocs_after_seal; /* this session's replay (as in tickcore_summary_t) */
    uint64_t peak_rss;          /* bytes, getrusage */
    uint32_t ntags;
    struct {
        char name[16];
        int64_t live_bytes, peak_bytes;
        uint64_t churn_allocs;
    } tag[TICKCORE_MEM_TAGS];
    char backend[32]; /* "mimalloc", or "glibc malloc" under valgrind */
} tickcore_memory_t;

/* Where a session stands (1.1: tickcore_position). */
typedef struct tickcore_position {
    uint64_t messages;  /* decoded so far, files and fed bytes */
    uint64_t fed_bytes; /* bytes of the fed stream decoded: the offset of the next frame */
    uint32_t carried;   /* bytes of a frame cut by the last tickcore_feed, waiting for the rest */
    uint32_t state;     /* TICKCORE_STATE_* */
    uint64_t bars;      /* bar closes the cross-section has taken so far */
    uint64_t corr_bars; /* bars behind the correlation computed last: while bars != corr_bars,
                           the next tickcore_correlation computes the matrix again, in place */
    uint64_t day_bars;  /* bars in the day store (stats.day_bars > 0), all symbols */
    uint64_t day_bars_dropped; /* bars the day store could not keep (symbol or bar capacity) */
} tickcore_position_t;

enum {
    TICKCORE_STATE_OPEN = 0,    /* nothing read yet: nothing is sized */
    TICKCORE_STATE_RUNNING = 1, /* started: step or feed more, or read the results so far */
    TICKCORE_STATE_ENDED = 2,   /* the input ended: the results are final */
};

/* The library's version, "1.1.0". */
TICKCORE_API const char *tickcore_version(void);

/* A new session: the built-in defaults, then config_path (an INI file like config/tickcore.ini;
 * NULL: none), then nsettings "section.key=value" strings in order. 0, or -EINVAL (a setting or
 * the file is wrong: err names the file, line and key), -ENOENT (config_path unreadable),
 * -ENOMEM. *out is NULL on failure. err may be NULL. */
TICKCORE_API int tickcore_open(tickcore_t **out, const char *config_path,
                               const char *const *settings, size_t nsettings, char *err,
                               size_t errlen);
/* Add an input file (copied). Before tickcore_run. 0, -ENOENT (not readable: checked now),
 * -E2BIG (TICKCORE_MAX_FILES already), -EALREADY (the session has run). */
TICKCORE_API int tickcore_add_file(tickcore_t *s, const char *path);
/* Replay every file to the end and compute the cross-section (after steps: the rest of the
 * files; in a fed session: tickcore_finish). 0; -EIO when a file ended with an error (the
 * results of what was read are still there; tickcore_errmsg names the file and the byte);
 * -ENODATA (no file, nothing fed), -EALREADY (the input has ended already), -ENOMEM or another
 * start-up error. */
TICKCORE_API int tickcore_run(tickcore_t *s);
/* The message of the last failed call on s ("" if none). Valid until the next call on s. */
TICKCORE_API const char *tickcore_errmsg(const tickcore_t *s);
/* Free the session and everything it holds. NULL is a no-op. Every pointer handed out by the
 * session is invalid afterwards. */
TICKCORE_API void tickcore_close(tickcore_t *s);

/* 1.1: the next max_messages messages of the files (at least 1): the first call sizes the
 * session and seals memory, as tickcore_run does. Returns how many were read (> 0); 0 once
 * every file has been read: the input has then ended (as tickcore_finish: the open bar closed,
 * the final cross-section computed) and further steps return 0. -EIO: a file ended by an error
 * in this step (tickcore_errmsg names the file and the byte; what was read stands, and the next
 * step goes on with the next file); -ENODATA (no file: a session fed with tickcore_feed),
 * -ENOMEM or another start-up error. */
TICKCORE_API int64_t tickcore_step(tickcore_t *s, uint64_t max_messages);
/* 1.1: ITCH 5.0 BinaryFILE bytes (2-byte big-endian length, then the message) from memory, in
 * a session without files. Every whole message of buf is decoded and applied now; buf is not
 * kept. A message cut by the end of buf waits in a carry buffer allocated at start-up and is
 * completed by the next call, so a stream split into calls anyhow gives the results of the
 * whole. The first call sizes the session and seals memory. 0; -EBADMSG: a bad frame
 * (tickcore_errmsg: "fed bytes: byte OFFSET (message N): ...", OFFSET from the first byte ever
 * fed; the messages before it stand; every later feed fails the same way); -EINVAL (the session
 * has files); -EALREADY (the input has ended); start-up errors. */
TICKCORE_API int tickcore_feed(tickcore_t *s, const void *buf, size_t len);
/* 1.1: end of the input now (the files not read yet are not read). The open bar closes and the
 * final cross-section is computed. 0; -EBADMSG: the fed stream ended inside a message ("truncated
 * final message", with its offset) or by an earlier bad frame (the results of everything before
 * stand); -EALREADY (ended already). A session never started is started first (no input). */
TICKCORE_API int tickcore_finish(tickcore_t *s);
/* 1.1: where the session stands (any state). 0. */
TICKCORE_API int tickcore_position(tickcore_t *s, tickcore_position_t *out);

/* Once the session has started (else -EAGAIN, as for every reader below): the results of every
 * message so far, final once the input has ended. */
TICKCORE_API int tickcore_summary(tickcore_t *s, tickcore_summary_t *out);
/* The correlation matrix of bar returns over the last window: n x n doubles, row-major,
 * symmetric, in the session's buffer (*data; valid until close). Its columns are the first n
 * symbols of tickcore_symbols (the symbols with a stock locate <= matrix.symbols). 0, or -EAGAIN
 * (not run, or no matrix: fewer than 2 symbols or 2 bars). */
TICKCORE_API int tickcore_correlation(tickcore_t *s, const double **data, size_t *n);
/* Every symbol of the replay's symbol table, in stock locate order: at most cap names into out
 * (NUL-terminated strings in the session's table, valid until close). Returns how many there
 * are; -EAGAIN. */
TICKCORE_API int tickcore_symbols(tickcore_t *s, const char **out, size_t cap);
/* The closed bars of a symbol kept by the engine (the last bar_history), oldest first: at most
 * cap of them (the newest) into out. Returns the number available when out is NULL, else the
 * number written; -ENOENT (no such symbol, or it never traded or quoted), -EAGAIN. With the day
 * store (setting stats.day_bars = N > 0, since 1.1): every bar of the session from the symbol's
 * first trade (the rows of `tickcore replay --bars-out`), up to N, so a whole day is there
 * whatever bar_history is; 0 bars before the first trade; -ENOSPC when the store had no slot
 * left for the symbol (stats.day_symbols). */
TICKCORE_API int tickcore_bars(tickcore_t *s, const char *symbol, tickcore_bar_t *out, size_t cap);
/* The best depth levels of one side (side 'B' bid, 'S' ask) of a symbol's book at the end of
 * the run, best first. Returns the number written (fewer when the side is thinner), -ENOENT (no
 * such symbol), -EINVAL (side), -EAGAIN. */
TICKCORE_API int tickcore_book(tickcore_t *s, const char *symbol, char side, tickcore_level_t *out,
                               size_t depth);
/* The session's result buffers (see tickcore_buffer_t): at most cap into out; returns how many
 * there are. -EAGAIN. */
TICKCORE_API int tickcore_buffers(tickcore_t *s, tickcore_buffer_t *out, size_t cap);
/* The memory accounting now. 0 (any time, also before run). */
TICKCORE_API int tickcore_memory(tickcore_t *s, tickcore_memory_t *out);

#ifdef __cplusplus
}
#endif

#endif
