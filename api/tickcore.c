/*
 * tickcore: the public API (include/tickcore/tickcore.h) over engine/replay. A session is a
 * config_t, the input paths and, once run, a replay_t that is kept until tickcore_close: replay
 * joins its threads at the end of the run but leaves the symbol table, the shards' books and
 * stats and the cross-section (with the correlation in its cycle arena) allocated until
 * replay_destroy, so the readers hand out pointers into those buffers (the correlation) or copy
 * small pieces into the caller's memory (bars, book levels) without allocating.
 *
 * Ownership: tickcore_t, the path copies and the replay result (a few hundred KB: it holds the
 * analytics report) come from mem/ with tag ENGINE, allocated in control scopes (opening a
 * session and sizing its run are control commands, so a process that already ran a session and
 * is sealed counts them as control allocations, not churn), and go back in tickcore_close.
 * Threads: the caller's; the engine's threads live only inside tickcore_run.
 *
 * Only the functions declared TICKCORE_API are exported from libtickcore.so (everything is
 * compiled with -fvisibility=hidden, and api/tickcore.map versions the exports TICKCORE_1.0),
 * so the internal headers stay internal.
 */
#include <tickcore/tickcore.h>

#include "analytics/book.h"
#include "analytics/stats.h"
#include "config/config.h"
#include "engine/export.h"
#include "engine/replay.h"
#include "engine/shard.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "mem/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The public bar is the engine's bar, field for field, so bars are copied with one memcpy. */
_Static_assert(sizeof(tickcore_bar_t) == sizeof(stats_bar_t), "bar layout");
_Static_assert(offsetof(tickcore_bar_t, vwap) == offsetof(stats_bar_t, vwap), "bar layout");
_Static_assert(offsetof(tickcore_bar_t, flags) == offsetof(stats_bar_t, flags), "bar layout");
_Static_assert((int)TICKCORE_BAR_CARRIED == (int)STATS_BAR_CARRIED, "bar flags");
_Static_assert((int)TICKCORE_BAR_NOPRICE == (int)STATS_BAR_NOPRICE, "bar flags");
/* The public level is the engine's level, field for field (reserved is its padding). */
_Static_assert(sizeof(tickcore_level_t) == sizeof(book_level_t), "level layout");
_Static_assert(offsetof(tickcore_level_t, orders) == offsetof(book_level_t, orders),
               "level layout");
_Static_assert(TICKCORE_PRICE_SCALE == EV_PRICE_SCALE, "price scale");
_Static_assert(TICKCORE_MAX_FILES == REPLAY_MAX_FILES, "files");
_Static_assert(TICKCORE_MEM_TAGS >= MEM_TAG_COUNT, "memory tags");

struct tickcore {
    config_t cfg;
    char *files[REPLAY_MAX_FILES];
    size_t file_len[REPLAY_MAX_FILES]; /* bytes allocated for files[i] */
    unsigned nfiles;
    replay_t *rp;
    replay_result_t *res;
    bool ran;                        /* started: sized and sealed (the first step, feed or run) */
    bool ended;                      /* the input has ended: the results are final */
    bool fed;                        /* tickcore_feed was called */
    bool reported[REPLAY_MAX_FILES]; /* a step said that files[i] ended by an error */
    char err[600];
};

static int fail(tickcore_t *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(tickcore_t *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return rc;
}

const char *tickcore_version(void)
{
    return "1.1.0";
}

const char *tickcore_errmsg(const tickcore_t *s)
{
    return s ? s->err : "no session";
}

int tickcore_open(tickcore_t **out, const char *config_path, const char *const *settings,
                  size_t nsettings, char *err, size_t errlen)
{
    char scratch[8];
    if (!err) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (errlen)
        err[0] = '\0';
    *out = NULL;
    mem_control_enter();
    tickcore_t *s = mem_zalloc(MEM_TAG_ENGINE, sizeof *s);
    mem_control_leave();
    if (!s) {
        snprintf(err, errlen, "tickcore_open: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    config_default(&s->cfg);
    int rc = 0;
    if (config_path) {
        if (access(config_path, R_OK) != 0) {
            rc = -ENOENT;
            snprintf(err, errlen, "%s: cannot read: %s", config_path, strerror(errno));
        } else if (config_load(&s->cfg, config_path, err, errlen) < 0) {
            rc = -EINVAL;
        }
    }
    for (size_t i = 0; rc == 0 && i < nsettings; i++) {
        const char *kv = settings[i];
        if (!kv || !strchr(kv, '=')) {
            snprintf(err, errlen, "setting %zu: '%s': expected section.key=value", i,
                     kv ? kv : "(null)");
            rc = -EINVAL;
        } else if (config_set(&s->cfg, kv, NULL, err, errlen) < 0) {
            rc = -EINVAL;
        }
    }
    if (rc == 0 && config_check(&s->cfg, err, errlen) < 0)
        rc = -EINVAL;
    if (rc < 0) {
        tickcore_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int tickcore_add_file(tickcore_t *s, const char *path)
{
    s->err[0] = '\0';
    if (s->ran)
        return fail(s, -EALREADY, "tickcore_add_file: the session has run; open a new one");
    if (s->nfiles == REPLAY_MAX_FILES)
        return fail(s, -E2BIG, "tickcore_add_file: at most %d files", REPLAY_MAX_FILES);
    if (!path || access(path, R_OK) != 0)
        return fail(s, -ENOENT, "%s: cannot read: %s", path ? path : "(null)",
                    strerror(path ? errno : EINVAL));
    size_t len = strlen(path) + 1;
    mem_control_enter();
    char *copy = mem_alloc(MEM_TAG_ENGINE, len);
    mem_control_leave();
    if (!copy)
        return fail(s, -ENOMEM, "tickcore_add_file: %s", strerror(ENOMEM));
    memcpy(copy, path, len);
    s->files[s->nfiles] = copy;
    s->file_len[s->nfiles++] = len;
    return 0;
}

/* Size the session and seal memory (the first step, feed or run). 0 or -errno with the message. */
static int start(tickcore_t *s, const char *what)
{
    if (s->ran)
        return 0;
    replay_cfg_t rc = {
        .cfg = &s->cfg,
        .files = s->files,
        .nfiles = s->nfiles,
        .repeat = 1,
        .format = STREAM_AUTO,
    };
    char err[512];
    mem_control_enter();
    s->res = mem_zalloc(MEM_TAG_ENGINE, sizeof *s->res);
    int r = s->res ? replay_create(&s->rp, &rc, err, sizeof err) : -ENOMEM;
    mem_control_leave();
    if (r < 0)
        return fail(s, r, "%s: %s", what, s->res ? err : strerror(ENOMEM));
    s->ran = true;
    replay_begin(s->rp, s->res);
    return 0;
}

/* The first file that ended by an error (with all: any; else one not reported yet): -EIO with
 * its message, else 0. */
static int file_failure(tickcore_t *s, bool all)
{
    const replay_result_t *res = s->res;
    for (unsigned i = 0; res->failed && i < res->nfiles; i++) {
        const replay_file_t *f = &res->files[i];
        if (f->status && (all || !s->reported[i])) {
            s->reported[i] = true;
            return fail(s, -EIO, "%s: %s", f->path, f->err[0] ? f->err : "ended by an error");
        }
    }
    return 0;
}

static int end_input(tickcore_t *s)
{
    s->ended = true;
    char err[512];
    int rc = replay_finish(s->rp, err, sizeof err);
    return rc < 0 ? fail(s, rc, "%s", err) : 0;
}

int tickcore_run(tickcore_t *s)
{
    s->err[0] = '\0';
    if (s->ended)
        return fail(s, -EALREADY, "tickcore_run: the session has run already");
    if (s->nfiles == 0 && !s->fed)
        return fail(s, -ENODATA, "tickcore_run: no input file (tickcore_add_file)");
    int rc = start(s, "tickcore_run");
    if (rc < 0)
        return rc;
    while (!replay_files_done(s->rp))
        replay_step(s->rp, UINT64_MAX);
    rc = end_input(s);
    int frc = file_failure(s, true);
    return frc < 0 ? frc : rc;
}

int64_t tickcore_step(tickcore_t *s, uint64_t max_messages)
{
    s->err[0] = '\0';
    if (s->ended)
        return 0;
    if (s->nfiles == 0)
        return fail(s, -ENODATA,
                    "tickcore_step: no input file (tickcore_add_file; bytes are "
                    "handed over with tickcore_feed)");
    int rc = start(s, "tickcore_step");
    if (rc < 0)
        return rc;
    if (max_messages == 0)
        max_messages = 1;
    uint64_t n = replay_step(s->rp, max_messages);
    int frc = file_failure(s, false);
    if (n == 0 && replay_files_done(s->rp)) {
        rc = end_input(s);
        if (rc < 0 && frc == 0)
            frc = rc;
    }
    if (frc < 0)
        return frc;
    return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

int tickcore_feed(tickcore_t *s, const void *buf, size_t len)
{
    s->err[0] = '\0';
    if (s->ended)
        return fail(s, -EALREADY, "tickcore_feed: the input has ended (tickcore_finish)");
    if (s->nfiles)
        return fail(s, -EINVAL,
                    "tickcore_feed: the session reads files (tickcore_add_file); "
                    "open another session to feed bytes");
    if (!buf && len)
        return fail(s, -EINVAL, "tickcore_feed: NULL buffer");
    int rc = start(s, "tickcore_feed");
    if (rc < 0)
        return rc;
    s->fed = true;
    char err[512];
    rc = replay_feed(s->rp, buf, len, err, sizeof err);
    return rc < 0 ? fail(s, rc, "%s", err) : 0;
}

int tickcore_finish(tickcore_t *s)
{
    s->err[0] = '\0';
    if (s->ended)
        return fail(s, -EALREADY, "tickcore_finish: the input has ended already");
    int rc = start(s, "tickcore_finish");
    if (rc < 0)
        return rc;
    return end_input(s);
}

int tickcore_position(tickcore_t *s, tickcore_position_t *out)
{
    memset(out, 0, sizeof *out);
    out->state = s->ended ? TICKCORE_STATE_ENDED
                 : s->ran ? TICKCORE_STATE_RUNNING
                          : TICKCORE_STATE_OPEN;
    if (!s->ran)
        return 0;
    out->messages = replay_messages(s->rp);
    size_t carried = 0;
    out->fed_bytes = replay_fed_bytes(s->rp, &carried);
    out->carried = (uint32_t)carried;
    replay_sync(s->rp);
    const xsection_t *x = replay_xsection(s->rp);
    if (x) {
        out->bars = x->bars;
        out->corr_bars = replay_corr_bars(s->rp);
    }
    out->day_bars = export_day_kept(replay_export(s->rp));
    out->day_bars_dropped = export_day_dropped(replay_export(s->rp));
    return 0;
}

void tickcore_close(tickcore_t *s)
{
    if (!s)
        return;
    replay_destroy(s->rp);
    if (s->res)
        mem_free(MEM_TAG_ENGINE, s->res, sizeof *s->res);
    for (unsigned i = 0; i < s->nfiles; i++)
        mem_free(MEM_TAG_ENGINE, s->files[i], s->file_len[i]);
    mem_free(MEM_TAG_ENGINE, s, sizeof *s);
}

/* ---- readers ---- */

/* The session has started: wait until every message so far is applied (the readers' view). */
static int need_run(tickcore_t *s, const char *what)
{
    s->err[0] = '\0';
    if (!s->ran)
        return fail(s, -EAGAIN,
                    "%s: the session has not run yet (tickcore_run, tickcore_step or "
                    "tickcore_feed start it)",
                    what);
    replay_sync(s->rp);
    return 0;
}

/* The computed cross-section, or NULL with the reason in s->err. */
static const xsection_t *matrix(tickcore_t *s, const char *what)
{
    if (need_run(s, what) < 0)
        return NULL;
    const xsection_t *x = replay_xsection(s->rp);
    int rc = replay_compute(s->rp);
    if (!x || rc < 0 || !x->have_result) {
        fail(s, -EAGAIN, "%s: no correlation: %s", what,
             !x         ? "no analytics"
             : x->n < 2 ? "it needs at least 2 symbols"
                        : "fewer than 2 bars with trades");
        return NULL;
    }
    return x;
}

int tickcore_summary(tickcore_t *s, tickcore_summary_t *out)
{
    int rc = need_run(s, "tickcore_summary");
    if (rc < 0)
        return rc;
    const replay_result_t *r = s->res;
    const xsection_t *x = replay_xsection(s->rp);
    *out = (tickcore_summary_t){
        .messages = replay_messages(s->rp),
        .bytes = r->bytes,
        .seconds = r->seconds,
        .files = r->nfiles,
        .files_failed = r->failed,
        .symbols = r->symbols,
        .matrix_symbols = x && x->have_result ? (uint32_t)x->n : 0,
        .matrix_rows = x ? x->rows : 0,
        .bar_ns = s->cfg.bar_interval_ns,
        .bar_history = s->cfg.bar_history,
        .workers = r->report.workers,
        .allocs_after_seal = r->allocs_after_seal,
    };
    return 0;
}

int tickcore_correlation(tickcore_t *s, const double **data, size_t *n)
{
    const xsection_t *x = matrix(s, "tickcore_correlation");
    if (!x)
        return -EAGAIN;
    *data = x->compact;
    *n = x->n;
    return 0;
}

int tickcore_symbols(tickcore_t *s, const char **out, size_t cap)
{
    int rc = need_run(s, "tickcore_symbols");
    if (rc < 0)
        return rc;
    const symtab_t *t = replay_symbols(s->rp);
    size_t n = 0;
    for (uint32_t loc = 1; loc <= SYMTAB_MAX_SYMBOLS; loc++) {
        const char *name = symtab_name(t, (uint16_t)loc);
        if (!name[0])
            continue;
        if (n < cap)
            out[n] = name;
        n++;
    }
    return (int)n;
}

/* The locate of a symbol that the pipeline saw, or -errno with the message. */
static int locate_of(tickcore_t *s, const char *what, const char *symbol)
{
    int rc = need_run(s, what);
    if (rc < 0)
        return rc;
    size_t len = symbol ? strlen(symbol) : 0;
    uint16_t loc =
        len && len <= SYMTAB_SYM_MAX ? symtab_find(replay_symbols(s->rp), symbol, len) : 0;
    if (!loc)
        return fail(s, -ENOENT, "%s: no symbol '%s' in the replay", what, symbol ? symbol : "");
    if (!replay_shard(s->rp, loc))
        return fail(s, -EAGAIN, "%s: no analytics (decode only)", what);
    return loc;
}

int tickcore_bars(tickcore_t *s, const char *symbol, tickcore_bar_t *out, size_t cap)
{
    int loc = locate_of(s, "tickcore_bars", symbol);
    if (loc < 0)
        return loc;
    const stats_t *st = &replay_shard(s->rp, (uint16_t)loc)->stats;
    const export_t *x = replay_export(s->rp);
    if (s->cfg.day_bars) { /* the day store: every priced bar of the session */
        const stats_bar_t *day = NULL;
        uint32_t avail = export_day_bars(x, (uint16_t)loc, &day);
        if (avail == 0 && x->day.slot[loc] == UINT32_MAX)
            return fail(s, -ENOSPC,
                        "tickcore_bars: '%s': the day store is full (stats.day_symbols = %u "
                        "symbols have bars): raise stats.day_symbols",
                        symbol, s->cfg.day_symbols);
        if (!out)
            return (int)(avail > INT32_MAX ? INT32_MAX : avail);
        size_t lo = avail > cap ? avail - cap : 0;
        memcpy(out, day + lo, (avail - lo) * sizeof *day);
        return (int)(avail - lo);
    }
    stats_sym_t sym;
    if (stats_get(st, (uint16_t)loc, &sym) < 0)
        return fail(s, -ENOENT, "tickcore_bars: '%s' never traded or quoted", symbol);
    uint64_t cur = stats_open_k(st);
    if (cur == UINT64_MAX || cur == st->origin)
        return 0; /* no bar closed yet */
    uint64_t h = st->cfg.bar_history;
    uint64_t lo = cur - st->origin > h ? cur - h : st->origin;
    uint64_t avail = cur - lo;
    if (!out)
        return avail > INT32_MAX ? INT32_MAX : (int)avail;
    if (avail > cap)
        lo = cur - cap;
    size_t n = 0;
    for (uint64_t k = lo; k < cur; k++) {
        stats_bar_t b;
        if (stats_bar(st, (uint16_t)loc, k, &b) == 0)
            memcpy(&out[n++], &b, sizeof b);
    }
    return (int)n;
}

int tickcore_book(tickcore_t *s, const char *symbol, char side, tickcore_level_t *out, size_t depth)
{
    int loc = locate_of(s, "tickcore_book", symbol);
    if (loc < 0)
        return loc;
    if (side != 'B' && side != 'S')
        return fail(s, -EINVAL, "tickcore_book: side '%c': expected 'B' (bid) or 'S' (ask)", side);
    if (depth > UINT32_MAX)
        depth = UINT32_MAX;
    const book_t *b = &replay_shard(s->rp, (uint16_t)loc)->book;
    int n = book_depth(b, (uint16_t)loc, (uint8_t)side, (uint32_t)depth, (book_level_t *)out);
    for (int i = 0; i < n; i++)
        out[i].reserved = 0; /* the engine's padding */
    return n;
}

static void add_buffer(tickcore_buffer_t *out, size_t cap, int *n, const char *name,
                       const void *addr, size_t bytes)
{
    if ((size_t)*n < cap) {
        tickcore_buffer_t *b = &out[*n];
        snprintf(b->name, sizeof b->name, "%s", name);
        b->addr = addr;
        b->bytes = bytes;
    }
    (*n)++;
}

int tickcore_buffers(tickcore_t *s, tickcore_buffer_t *out, size_t cap)
{
    int rc = need_run(s, "tickcore_buffers");
    if (rc < 0)
        return rc;
    int n = 0;
    const symtab_t *t = replay_symbols(s->rp);
    add_buffer(out, cap, &n, "symtab.names", t->names, (SYMTAB_MAX_SYMBOLS + 1) * sizeof *t->names);
    const xsection_t *x = replay_xsection(s->rp);
    if (!x)
        return n;
    if (x->scratch.first)
        add_buffer(out, cap, &n, "xsection.scratch", x->scratch.first->data,
                   x->scratch.first->size);
    add_buffer(out, cap, &n, "xsection.full", x->full, x->max_n * x->max_n * sizeof(double));
    const export_t *ex = replay_export(s->rp);
    if (ex->day.bars)
        add_buffer(out, cap, &n, "export.day_bars", ex->day.bars, ex->day.bars_bytes);
    /* each shard once: locate l belongs to shard l % workers */
    unsigned k = s->res->report.workers;
    for (unsigned w = 0; w < k && w < 65535; w++) {
        const shard_t *sh = replay_shard(s->rp, (uint16_t)(w ? w : k));
        char name[32];
        snprintf(name, sizeof name, "stats.bars.%u", w);
        add_buffer(out, cap, &n, name, sh->stats.bars, sh->stats.bars_bytes);
    }
    return n;
}

int tickcore_memory(tickcore_t *s, tickcore_memory_t *out)
{
    static mem_snapshot_t snap; /* large; the API is one thread at a time */
    mem_snapshot(&snap);
    memset(out, 0, sizeof *out);
    out->live_bytes = snap.total.live;
    out->peak_bytes = snap.total.peak;
    out->allocs = snap.total.allocs;
    out->frees = snap.total.frees;
    out->churn_allocs = snap.total.churn_allocs;
    out->allocs_after_seal = s && s->ended ? s->res->allocs_after_seal : 0;
    out->peak_rss = snap.peak_rss;
    out->ntags = MEM_TAG_COUNT;
    for (unsigned i = 0; i < MEM_TAG_COUNT; i++) {
        snprintf(out->tag[i].name, sizeof out->tag[i].name, "%s", mem_tag_name((mem_tag_t)i));
        out->tag[i].live_bytes = snap.tag[i].live;
        out->tag[i].peak_bytes = snap.tag[i].peak;
        out->tag[i].churn_allocs = snap.tag[i].churn_allocs;
    }
    snprintf(out->backend, sizeof out->backend, "%s", mem_backend_name());
    return 0;
}
