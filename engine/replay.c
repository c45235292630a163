/*
 * replay: see replay.h. Ownership: replay_t owns the symbol table, the stream (and so the
 * reader's buffers and the event array), the pipeline and the trades writer from replay_create
 * to replay_destroy. Files are replayed one after another through the same buffers; the symbol
 * table is shared by all of them, so ITCH and CSV inputs name symbols the same way. Batches are
 * decoded straight into the pipeline's batch slots (no copy); with --decode-only the stream's
 * own event array is used and nothing is published.
 */
#include "engine/replay.h"
#include "base/clock.h"
#include "base/npy.h"

#include "base/byteorder.h"
#include "base/err.h"
#include "engine/export.h"
#include "engine/pipeline.h"
#include "engine/plots.h"
#include "engine/truth.h"
#include "engine/xsection.h"
#include "event/symtab.h"
#include "ingest/csvout.h"
#include "ingest/itch.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Market pace: hold back until wall time since the first message, times speed, reaches the
 * message's timestamp distance from it. */
typedef struct pacer {
    double speed, wall0;
    uint64_t ts0;
    bool started;
} pacer_t;

/* The state of the files loop the progress callback and the session rule need. */
typedef struct run_state {
    double t0, last_progress, reader_busy;
    uint64_t total_bytes, done_bytes; /* file bytes: all passes / finished files */
    uint64_t last_ts;
    bool have_ts;
    unsigned pass;
    /* where the files loop stands between replay_step calls */
    unsigned file;         /* index of the file open or to open next */
    bool open;             /* files[file] is open in the stream */
    bool first;            /* no batch of the open file read yet */
    bool files_done;       /* every pass of every file read (or stopped) */
    pacer_t pacer;         /* of the open file */
    uint64_t allocs_begin; /* mem/ allocations at the seal */
} run_state_t;

struct replay {
    replay_cfg_t c;
    config_t cfg;
    stream_cfg_t scfg;
    symtab_t symbols;
    stream_t stream;
    pipeline_t pl;
    csvout_t trades;
    export_t exp; /* --bars-out, --book-out */
    bool have_stream, have_pipeline, have_trades;
    /* the run in steps: replay_begin .. replay_finish */
    replay_result_t *res;
    run_state_t st;
    bool begun, finished;
    double t_create;           /* clock_mono_s() when replay_create was entered */
    uint64_t xs_bars_computed; /* bars behind the last replay_compute */
    bool xs_computed;
    int xs_rc;
    /* ITCH bytes fed from memory (replay_feed): a message cut between two calls waits here */
    uint8_t carry[ITCH_MAX_FRAME];
    size_t carry_len;
    uint64_t fed_bytes;    /* bytes taken so far (the offset of the next byte) */
    uint64_t fed_messages; /* messages decoded from them */
    int feed_rc;           /* sticky: a bad frame ended the fed stream */
    char feed_err[512];
};

/* How the large tables are populated (replay_create, TICKCORE_MEM_POPULATE). One replay at a
 * time per process uses it (mem/'s populator is process-wide). */
static enum { POP_WAIT, POP_LAZY, POP_SYNC } r_populate;

static bool stopped(const replay_t *r)
{
    return r->c.stop && *r->c.stop;
}

/* --bars-out and --book-out: one export part per worker (engine/export), before the seal. 0, or
 * -errno with err naming the file or setting. */
static int setup_export(replay_t *r, char *err, size_t errlen)
{
    const replay_cfg_t *c = &r->c;
    const export_cfg_t ec = {.bars_out = c->bars_out,
                             .book_out = c->book_out,
                             .bar_ns = r->cfg.bar_interval_ns,
                             .book_every_ns = c->book_every_ns,
                             .depth = c->book_depth,
                             .book_symbols = c->book_symbols,
                             .max_symbols = r->cfg.max_symbols,
                             .day_bars = r->cfg.day_bars,
                             .day_symbols = r->cfg.day_symbols};
    int rc = export_init(&r->exp, &ec, r->pl.k, &r->symbols, err, errlen);
    if (rc == 0)
        rc = pipeline_set_export(&r->pl, &r->exp);
    return rc;
}

int replay_create(replay_t **out, const replay_cfg_t *c, char *err, size_t errlen)
{
    const double t_create = clock_mono_s();
    *out = NULL;
    if (c->nfiles > REPLAY_MAX_FILES || c->repeat < 1 || (c->nfiles == 0 && c->decode_only)) {
        snprintf(err, errlen,
                 "0..%d files (0: bytes fed, not with decode-only) and a repeat "
                 "count >= 1",
                 REPLAY_MAX_FILES);
        return -EINVAL;
    }
    /* The large tables (books, stats, batches: most of the ~260 MiB at the default capacities)
     * are populated by mem/'s populator thread while the rest of start-up runs (replay_begin
     * waits for it before the seal, so the steady state takes no page fault). With
     * TICKCORE_MEM_POPULATE=lazy the seal does not wait: the populator goes on at SCHED_IDLE
     * during the run and the engine faults (counted) on what it has not reached; =sync
     * populates each block at its allocation (before issue 13). replay_destroy stops it. */
    const char *pop = getenv("TICKCORE_MEM_POPULATE");
    r_populate = !pop || strcmp(pop, "lazy") != 0 ? POP_WAIT : POP_LAZY;
    if (pop && strcmp(pop, "sync") == 0)
        r_populate = POP_SYNC;
    mem_populate_lazy(false);
    mem_populate_background(r_populate != POP_SYNC);
    replay_t *r = mem_zalloc(MEM_TAG_ENGINE, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "start-up failed: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    r->c = *c;
    r->cfg = *c->cfg;
    r->t_create = t_create;
    if (c->trades_out)
        r->cfg.workers = 1; /* one writer, in feed order */
    pipeline_stream_cfg(&r->scfg, &r->cfg);
    r->scfg.format = c->format;
    r->scfg.skip_bad |= c->skip_bad;
    r->scfg.csv.strict = c->strict;

    const char *what = "symbol table";
    char xmsg[400] = "";
    int rc = symtab_init(&r->symbols, r->cfg.max_symbols);
    if (rc == 0) {
        what = "input";
        rc = stream_init(&r->stream, &r->scfg, &r->symbols);
        r->have_stream = rc == 0;
    }
    if (rc == 0 && !c->decode_only) {
        what = "pipeline (books, stats, covariance, PCA, graph)";
        rc = pipeline_init(&r->pl, &r->cfg, &r->symbols);
        r->have_pipeline = rc == 0;
        if (rc == 0 && c->trades_out) {
            what = c->trades_out;
            rc = csvout_open(&r->trades, c->trades_out, 0);
            r->have_trades = rc == 0;
            if (rc == 0)
                rc = pipeline_set_trades_out(&r->pl, &r->trades, &r->symbols);
        }
        if (rc == 0) {
            what = "export";
            rc = setup_export(r, xmsg, sizeof xmsg);
        }
        if (rc == 0) {
            what = "pipeline threads";
            rc = pipeline_start(&r->pl);
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "start-up failed: %s: %s", what,
                 xmsg[0]            ? xmsg
                 : r->stream.err[0] ? r->stream.err
                                    : strerror(-rc));
        replay_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void replay_destroy(replay_t *r)
{
    if (!r)
        return;
    /* First: nothing more is populated for the memory about to go (what is left of it was
     * never touched, so never needed) */
    mem_populate_background(false);
    if (r->have_trades)
        csvout_close(&r->trades); /* harmless after replay_run closed it */
    if (r->have_pipeline)
        pipeline_fini(&r->pl);
    export_fini(&r->exp);
    if (r->have_stream)
        stream_fini(&r->stream);
    symtab_fini(&r->symbols);
    mem_free(MEM_TAG_ENGINE, r, sizeof *r);
}

static void pace(const replay_t *r, pacer_t *p, uint64_t ts)
{
    if (!p->started) {
        p->started = true;
        p->ts0 = ts;
        p->wall0 = clock_mono_s();
        return;
    }
    if (ts <= p->ts0)
        return;
    double due = p->wall0 + (double)(ts - p->ts0) * 1e-9 / p->speed;
    double wait = due - clock_mono_s();
    if (wait > 0.0005 && !stopped(r)) {
        struct timespec d = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&d, NULL);
    }
}

static void progress(replay_t *r, const replay_result_t *res, run_state_t *st, bool final)
{
    if (!r->c.progress)
        return;
    double t = clock_mono_s();
    double every = r->c.progress_interval > 0 ? r->c.progress_interval : 0.1;
    if (!final && t - st->last_progress < every)
        return;
    st->last_progress = t;
    bool open = !final;
    replay_progress_t p = {
        .elapsed = t - st->t0,
        .messages = res->messages + (open ? r->stream.messages : 0),
        .done_bytes = st->done_bytes + (open ? r->stream.reader.bytes_read : 0),
        .total_bytes = st->total_bytes,
        .pass = st->pass,
        .final = final,
    };
    r->c.progress(r->c.progress_ctx, &p);
}

/* The open file through the stream (and the pipeline), at most *budget messages (taken off it):
 * the reader loop. Returns 1 when the budget ran out with the file still open, else stream_next's
 * last result (0 clean end, < 0 error). */
static int replay_file(replay_t *r, replay_result_t *res, run_state_t *st, uint64_t *budget)
{
    bool paced = r->c.speed > 0;
    /* When pacing, small batches: an event waits for at most its batch-mates' pacing. */
    size_t cap = paced ? 64 : (r->c.decode_only ? r->stream.cfg.batch_events : r->pl.batch_cap);
    int rc = 0;
    while (!stopped(r)) {
        if (*budget == 0)
            return 1;
        size_t want = *budget < cap ? (size_t)*budget : cap;
        pipe_batch_t *b = NULL;
        ev_t *ev;
        size_t n = 0;
        if (r->c.decode_only) {
            ev = r->stream.events;
            rc = stream_next_into(&r->stream, ev, want, &n);
        } else {
            b = pipeline_acquire(&r->pl);
            double td = clock_mono_s();
            rc = stream_next_into(&r->stream, b->ev, want, &n);
            st->reader_busy += clock_mono_s() - td;
            ev = b->ev;
            b->n = rc > 0 ? (uint32_t)n : 0;
            /* the clock went back: the next day's file, a new session */
            if (rc > 0 && st->first && st->have_ts && ev[0].ts < st->last_ts) {
                pipeline_close_bars(&r->pl); /* the last bar of the day counts */
                pipeline_new_session(&r->pl, 1);
            }
        }
        if (rc > 0 && res->t_first == 0) /* the first message decoded: start-up ends */
            res->t_first = clock_mono_s();
        if (rc > 0) {
            st->first = false;
            st->last_ts = ev[n - 1].ts;
            st->have_ts = true;
            *budget -= n;
            for (size_t k = 0; paced && k < n && !stopped(r); k++)
                pace(r, &st->pacer, ev[k].ts);
        }
        if (b)
            pipeline_publish(&r->pl, b);
        if (rc <= 0)
            break;
        progress(r, res, st, false);
    }
    return rc;
}

/* A capture's packets and sequencing into its file result (over every pass). */
static void account_capture(replay_file_t *fr, const capture_t *c)
{
    fr->cap_packets += c->packets;
    fr->cap_mold_packets += c->mold_packets;
    fr->cap_skipped += c->not_udp + c->fragments + c->truncated + c->not_mold;
    fr->cap_duplicates += c->duplicates;
    for (uint64_t i = 0; i < c->gaps && fr->cap_gaps + i < CAPTURE_GAPS_KEPT; i++)
        fr->cap_gap[fr->cap_gaps + i] = c->gap[i];
    fr->cap_gaps += c->gaps;
    fr->cap_gap_messages += c->gap_messages;
}

/* The file's counters into its result and the totals. */
static void account(replay_t *r, replay_result_t *res, replay_file_t *fr, int rc, run_state_t *st)
{
    const stream_t *s = &r->stream;
    fr->format = s->format;
    fr->messages += s->messages;
    fr->bytes += s->bytes;
    fr->bad_frames += s->bad_frames;
    fr->skipped_bytes += s->skipped_bytes;
    if (s->format == STREAM_CSV)
        fr->csv_rows_bad += s->csv.rows_bad;
    if (s->format == STREAM_PCAP)
        account_capture(fr, &s->cap);
    if (!stopped(r) && rc < 0 && !fr->status) {
        fr->status = 1;
        res->failed++;
    }
    if (s->err[0])
        snprintf(fr->err, sizeof fr->err, "%s", s->err);
    for (int t = 0; t < 256; t++)
        res->by_type[t] += s->by_type[t];
    res->messages += s->messages;
    res->bytes += s->bytes;
    st->done_bytes += s->reader.bytes_read;
    if (s->format == STREAM_CSV && r->c.diag && (s->csv.rows_bad || s->csv.state == CSV_ST_STOPPED))
        csv_report(&s->csv, r->c.diag, fr->path);
}

/* After the drain: the matrices, the end of the count (stdio comes after it), the report, the
 * truth comparison and the files asked for. */
static void finish(replay_t *r, replay_result_t *res, const run_state_t *st, uint64_t allocs_begin)
{
    const replay_cfg_t *c = &r->c;
    xsection_t *xs = &r->pl.xs;
    double t = clock_mono_s();
    int xs_rc = c->decode_only ? -EAGAIN : xsection_compute(xs);
    t = clock_mono_s() - t;
    mem_snapshot(&res->after);
    res->allocs_after_seal = res->after.total.allocs - allocs_begin;
    report_collect(&res->report, c->decode_only ? NULL : &r->pl, &r->symbols, r->cfg.top_symbols);
    report_set_times(&res->report, st->reader_busy, res->seconds);
    res->report.xs_seconds = t;
    /* The generator's ground truth: asked for, or found next to a single input file. */
    char truth_auto[300];
    const char *truth = c->truth;
    if (!truth && c->nfiles == 1 &&
        snprintf(truth_auto, sizeof truth_auto, "%s.truth.csv", c->files[0]) <
            (int)sizeof truth_auto &&
        access(truth_auto, R_OK) == 0)
        truth = truth_auto;
    report_t *rep = &res->report;
    if (truth && xs_rc == 0) {
        snprintf(rep->truth_path, sizeof rep->truth_path, "%s", truth);
        rep->truth_rc = truth_compare(truth, xs, &rep->truth);
    }
    int failed = 0;
    if (xs_rc == 0) {
        failed |= report_write_file(
            c->corr_out, npy_path(c->corr_out) ? xsection_write_corr_npy : xsection_write_corr, xs);
        failed |= report_write_file(c->mst_out, xsection_write_mst, xs);
        failed |= report_write_file(c->clusters_out, xsection_write_clusters, xs);
    }
    if (xs_rc == 0 && c->plots_dir) {
        char perr[600];
        if (plots_write_xsection(c->plots_dir, xs, truth, perr, sizeof perr) < 0) {
            fprintf(stderr, "tickcore replay: --plots: %s\n", perr);
            failed = 1;
        }
    }
    if (xs_rc != 0 && (c->corr_out || c->mst_out || c->clusters_out)) {
        fprintf(stderr, "tickcore replay: no correlation to write: %s\n",
                c->decode_only ? "--decode-only"
                : xs->n < 2    ? "it needs at least 2 symbols"
                               : "fewer than 2 bars with trades");
        failed = 1;
    }
    res->outputs_failed |= failed != 0;
}

int replay_begin(replay_t *r, replay_result_t *res)
{
    if (r->begun)
        return -EALREADY;
    const replay_cfg_t *c = &r->c;
    r->begun = true;
    r->res = res;
    /* All of it, the report and the snapshots too: their pages are then touched here, before
     * the seal, not first by the snapshots after it (32 page faults after the seal). */
    memset(res, 0, sizeof *res);
    res->nfiles = c->nfiles;
    res->skip_bad = r->scfg.skip_bad;
    run_state_t *st = &r->st;
    memset(st, 0, sizeof *st);
    for (unsigned i = 0; i < c->nfiles; i++) {
        struct stat sb;
        if (stat(c->files[i], &sb) == 0 && S_ISREG(sb.st_mode))
            st->total_bytes += (uint64_t)sb.st_size;
    }
    st->total_bytes *= c->repeat;
    st->files_done = c->nfiles == 0;

    static mem_snapshot_t before;      /* large; one reader thread at a time */
    memset(&before, 0, sizeof before); /* its pages touched before the seal */
    if (r_populate == POP_WAIT)
        mem_populate_wait();
    else
        mem_populate_lazy(true);
    mem_seal();
    mem_snapshot(&before);
    st->allocs_begin = before.total.allocs;
    st->t0 = clock_mono_s();
    res->t_create = r->t_create;
    res->t_seal = st->t0;
    return 0;
}

uint64_t replay_step(replay_t *r, uint64_t max)
{
    const replay_cfg_t *c = &r->c;
    replay_result_t *res = r->res;
    run_state_t *st = &r->st;
    uint64_t budget = max;
    while (!st->files_done && budget > 0) {
        if (stopped(r) || st->pass >= c->repeat) {
            st->files_done = true;
            break;
        }
        replay_file_t *fr = &res->files[st->file];
        if (!st->open) {
            fr->path = c->files[st->file];
            if (stream_open(&r->stream, fr->path) < 0) {
                if (!fr->status)
                    res->failed++;
                fr->status = 1;
                snprintf(fr->err, sizeof fr->err, "%s", r->stream.err);
            } else {
                fr->gzip = reader_is_gzip(&r->stream.reader);
                fr->file_bytes = r->stream.reader.file_size;
                st->open = true;
                st->first = true;
                st->pacer = (pacer_t){.speed = c->speed};
            }
        }
        if (st->open) {
            int rc = replay_file(r, res, st, &budget);
            if (rc == 1)
                break; /* the budget ran out inside the file */
            account(r, res, fr, rc, st);
            stream_close(&r->stream);
            st->open = false;
        }
        if (++st->file == c->nfiles) {
            st->file = 0;
            st->pass++;
        }
    }
    return max - budget;
}

bool replay_files_done(const replay_t *r)
{
    return r->st.files_done;
}

uint64_t replay_messages(const replay_t *r)
{
    return r->res ? r->res->messages + (r->st.open ? r->stream.messages : 0) : 0;
}

/* Decode the whole frames of p[0..len) into batches and publish them; *used: bytes taken. 0, or
 * -EBADMSG with the frame at p + *used bad (r->feed_err says what and where). */
static int feed_block(replay_t *r, const uint8_t *p, size_t len, size_t *used)
{
    replay_result_t *res = r->res;
    size_t off = 0;
    for (;;) {
        pipe_batch_t *b = pipeline_acquire(&r->pl);
        itch_result_t ir;
        itch_decode_block(p + off, len - off, b->ev, r->pl.batch_cap, &ir);
        for (size_t i = 0; i < ir.n; i++) {
            const ev_t *e = &b->ev[i];
            res->by_type[e->type]++;
            if (e->type == 'R') /* the message is still here: name its symbol now */
                (void)itch_directory_apply(&r->symbols, e);
        }
        if (ir.n && res->t_first == 0)
            res->t_first = clock_mono_s();
        if (ir.n) {
            r->st.last_ts = b->ev[ir.n - 1].ts;
            r->st.have_ts = true;
        }
        b->n = (uint32_t)ir.n;
        pipeline_publish(&r->pl, b);
        r->fed_messages += ir.n;
        res->messages += ir.n;
        off += ir.consumed;
        if (ir.status == ITCH_FULL)
            continue;
        *used = off;
        if (ir.status == ITCH_OK)
            return 0;
        char what[160];
        itch_describe(&ir, what, sizeof what);
        err_set(r->feed_err, sizeof r->feed_err, "fed bytes: byte %llu (message %llu): %s",
                (unsigned long long)(r->fed_bytes + off), (unsigned long long)r->fed_messages + 1,
                what);
        return -EBADMSG;
    }
}

int replay_feed(replay_t *r, const void *buf, size_t len, char *err, size_t errlen)
{
    if (r->feed_rc < 0 || r->finished || !r->have_pipeline) {
        snprintf(err, errlen, "%s",
                 r->feed_rc < 0 ? r->feed_err
                 : r->finished  ? "the input has ended (replay_finish)"
                                : "no pipeline (decode only)");
        return r->feed_rc < 0 ? r->feed_rc : -EINVAL;
    }
    const uint8_t *p = buf;
    size_t off = 0, used = 0;
    int rc = 0;
    /* First the message the previous call cut: complete it in the carry buffer from the front
     * of buf (fed_bytes is the offset of carry[0]). Two bytes give the prefix, then the frame;
     * a prefix too long for any message is bad and the decoder says so from what is there. */
    if (r->carry_len) {
        for (int pass = 0; pass < 2; pass++) {
            size_t need = r->carry_len < 2 ? 2 : 2u + be16_get(r->carry);
            if (need > ITCH_MAX_FRAME)
                need = ITCH_MAX_FRAME;
            size_t take = need > r->carry_len ? need - r->carry_len : 0;
            if (take > len - off)
                take = len - off;
            memcpy(r->carry + r->carry_len, p + off, take);
            r->carry_len += take;
            off += take;
        }
        rc = feed_block(r, r->carry, r->carry_len, &used);
        if (rc == 0 && used) { /* the whole frame: decoded and published */
            r->fed_bytes += used;
            r->carry_len = 0;
        }
    }
    /* Then whole frames straight from the caller's buffer; a cut tail goes to the carry. */
    if (rc == 0 && r->carry_len == 0 && off < len) {
        rc = feed_block(r, p + off, len - off, &used);
        if (rc == 0) {
            size_t tail = len - off - used; /* < ITCH_MAX_FRAME (itch_decode_block) */
            memcpy(r->carry, p + off + used, tail);
            r->carry_len = tail;
            r->fed_bytes += used;
        }
    }
    r->res->bytes += len;
    if (rc < 0) {
        r->feed_rc = rc;
        snprintf(err, errlen, "%s", r->feed_err);
    }
    progress(r, r->res, &r->st, false);
    return rc;
}

uint64_t replay_corr_bars(const replay_t *r)
{
    return r->xs_computed ? r->xs_bars_computed : 0;
}

uint64_t replay_fed_bytes(const replay_t *r, size_t *carried)
{
    if (carried)
        *carried = r->carry_len;
    return r->fed_bytes;
}

void replay_sync(replay_t *r)
{
    if (r->have_pipeline)
        pipeline_sync(&r->pl);
}

int replay_compute(replay_t *r)
{
    if (!r->have_pipeline)
        return -EAGAIN;
    if (r->finished)
        return r->xs_rc;
    pipeline_sync(&r->pl);
    xsection_t *xs = &r->pl.xs;
    if (!r->xs_computed || xs->bars != r->xs_bars_computed) {
        r->xs_rc = xsection_compute(xs);
        r->xs_computed = true;
        r->xs_bars_computed = xs->bars;
    }
    return r->xs_rc;
}

int replay_finish(replay_t *r, char *err, size_t errlen)
{
    const replay_cfg_t *c = &r->c;
    replay_result_t *res = r->res;
    run_state_t *st = &r->st;
    if (!r->begun || r->finished)
        return -EALREADY;
    int rc = 0;
    if (st->open) { /* stopped between steps: the open file ends here */
        account(r, res, &res->files[st->file], 0, st);
        stream_close(&r->stream);
        st->open = false;
    }
    st->files_done = true;
    if (r->carry_len && r->feed_rc == 0) {
        unsigned need = r->carry_len >= 2 ? 2u + be16_get(r->carry) : 2u;
        err_set(r->feed_err, sizeof r->feed_err,
                "fed bytes: byte %llu (message %llu): truncated final message: the input ends "
                "%zu bytes into a frame of %u bytes",
                (unsigned long long)r->fed_bytes, (unsigned long long)r->fed_messages + 1,
                r->carry_len, need);
        r->feed_rc = rc = -EBADMSG;
    }
    if (r->feed_rc < 0) {
        rc = r->feed_rc;
        snprintf(err, errlen, "%s", r->feed_err);
    }
    r->finished = true;
    if (!c->decode_only) {
        pipeline_close_bars(&r->pl); /* end of input: the bar still open closes and counts */
        pipeline_finish(&r->pl);     /* drain: every published batch is applied */
    }
    char xerr[600];
    if (export_finish(&r->exp, xerr, sizeof xerr) < 0) {
        fprintf(stderr, "tickcore replay: %s\n", xerr);
        res->outputs_failed = true;
    }
    if (r->have_trades) {
        int trc = csvout_close(&r->trades);
        if (trc < 0) {
            fprintf(stderr, "tickcore replay: %s: %s\n", c->trades_out, strerror(-trc));
            res->outputs_failed = true;
        }
    }
    res->t_drained = clock_mono_s();
    res->seconds = res->t_drained - st->t0;
    res->interrupted = stopped(r);
    progress(r, res, st, true);

    finish(r, res, st, st->allocs_begin);
    r->xs_rc = c->decode_only ? -EAGAIN : (r->pl.xs.have_result ? 0 : -EAGAIN);
    r->xs_computed = true;
    r->xs_bars_computed = r->pl.xs.bars;
    res->symbols = symtab_count(&r->symbols);
    res->symbols_refused = r->symbols.full;
    res->io_mode = reader_mode(&r->stream.reader);
    res->t_finished = clock_mono_s();
    return rc;
}

int replay_run(replay_t *r, replay_result_t *res)
{
    int rc = replay_begin(r, res);
    if (rc < 0)
        return rc;
    while (!replay_files_done(r))
        replay_step(r, UINT64_MAX);
    char err[8];
    replay_finish(r, err, sizeof err);
    return (int)res->failed;
}

const symtab_t *replay_symbols(const replay_t *r)
{
    return &r->symbols;
}

const xsection_t *replay_xsection(const replay_t *r)
{
    return r->have_pipeline ? &r->pl.xs : NULL;
}

const export_t *replay_export(const replay_t *r)
{
    return &r->exp;
}

const shard_t *replay_shard(const replay_t *r, uint16_t locate)
{
    return r->have_pipeline ? &r->pl.w[r->pl.owner[locate]].shard : NULL;
}

int replay_end(replay_result_t *res)
{
    mem_snapshot(&res->end);
    memcpy(res->end.objs, res->after.objs, sizeof res->end.objs);
    res->end.nobjs = res->after.nobjs;
    int status = mem_exit_status(&res->end);
    if ((res->failed || res->outputs_failed) && status == 0)
        status = 1;
    return status;
}
