/*
 * stream: see stream.h. The reader hands out chunks that begin with the previous chunk's
 * unconsumed tail, so each decoder only ever sees whole records followed by at most one partial
 * one. The previous chunk is released only once the next one has been obtained, so at the end of
 * the file the tail is still readable: the CSV decoder gets its last line (at_eof), and an ITCH
 * tail is reported as a truncated final message.
 */
#include "ingest/stream.h"

#include "base/byteorder.h"
#include "base/err.h"
#include "ingest/itch.h"
#include "mem/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void stream_cfg_default(stream_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    reader_cfg_default(&cfg->reader);
    cfg->format = STREAM_AUTO;
    cfg->csv.max_line = 4096;
    cfg->csv.max_reported = 10;
    cfg->batch_events = 4096;
}

const char *stream_format_name(stream_format_t f)
{
    switch (f) {
    case STREAM_ITCH:
        return "itch";
    case STREAM_CSV:
        return "csv";
    case STREAM_PCAP:
        return "pcap";
    default:
        return "auto";
    }
}

int stream_init(stream_t *s, const stream_cfg_t *cfg, symtab_t *symbols)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (s->cfg.batch_events == 0)
        s->cfg.batch_events = 4096;
    if (s->cfg.csv.max_line == 0)
        s->cfg.csv.max_line = 4096;
    /* The carry-over must hold the longest record either decoder can leave behind. */
    uint32_t need = s->cfg.csv.max_line > ITCH_MAX_FRAME ? s->cfg.csv.max_line : ITCH_MAX_FRAME;
    if (s->cfg.reader.headroom < need)
        s->cfg.reader.headroom = need;
    s->symbols = symbols;
    int rc = reader_init(&s->reader, &s->cfg.reader);
    if (rc < 0) {
        snprintf(s->err, sizeof s->err, "%s", s->reader.err);
        return rc;
    }
    s->events = mem_alloc_aligned(MEM_TAG_INGEST, s->cfg.batch_events * sizeof(ev_t), 64);
    s->cap_copy = mem_alloc(MEM_TAG_INGEST, STREAM_CAPTURE_COPY);
    if (!s->events || !s->cap_copy) {
        if (s->events)
            mem_free(MEM_TAG_INGEST, s->events, s->cfg.batch_events * sizeof(ev_t));
        if (s->cap_copy)
            mem_free(MEM_TAG_INGEST, s->cap_copy, STREAM_CAPTURE_COPY);
        reader_fini(&s->reader);
        snprintf(s->err, sizeof s->err, "stream: out of memory for %u events", s->cfg.batch_events);
        return -ENOMEM;
    }
    return 0;
}

void stream_fini(stream_t *s)
{
    stream_close(s);
    reader_fini(&s->reader);
    if (s->events)
        mem_free(MEM_TAG_INGEST, s->events, s->cfg.batch_events * sizeof(ev_t));
    s->events = NULL;
    if (s->cap_copy)
        mem_free(MEM_TAG_INGEST, s->cap_copy, STREAM_CAPTURE_COPY);
    s->cap_copy = NULL;
}

void stream_close(stream_t *s)
{
    if (s->have_chunk)
        reader_release(&s->reader, s->chunk.buf);
    s->have_chunk = false;
    reader_close(&s->reader);
    capture_close(&s->cap);
}

/* A pcap or pcapng file, by its first 4 bytes (read with pread; 0 bytes or an error: no). */
static bool is_capture(const char *path)
{
    uint8_t m[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t k = pread(fd, m, sizeof m, 0);
    close(fd);
    return k == (ssize_t)sizeof m && capture_magic(m, sizeof m);
}

int stream_open(stream_t *s, const char *path)
{
    stream_close(s);
    s->path = path;
    s->have_chunk = s->need_more = s->ended = s->resyncing = s->in_bad_region = false;
    s->pos = 0;
    s->pending = 0;
    s->messages = s->bytes = s->bad_frames = s->skipped_bytes = s->truncated_tail = 0;
    s->directory_conflicts = 0;
    memset(s->by_type, 0, sizeof s->by_type);
    s->err[0] = '\0';
    s->format = s->cfg.format;
    if (s->format == STREAM_AUTO && is_capture(path)) {
        s->format = STREAM_PCAP;
        int rc = capture_open(&s->cap, path, s->cfg.skip_bad, s->cap_copy, STREAM_CAPTURE_COPY);
        if (rc < 0)
            err_set(s->err, sizeof s->err, "%s", s->cap.err);
        return rc;
    }
    int rc = reader_open(&s->reader, path);
    if (rc < 0) {
        err_set(s->err, sizeof s->err, "%s", s->reader.err);
        return rc;
    }
    return 0;
}

/* ITCH, CSV, or (for text that is not one of our headers) CSV so that its header error is
 * what the user sees. */
static stream_format_t detect(const uint8_t *p, size_t n)
{
    if (n >= 3) {
        unsigned len = be16_get(p);
        if (len != 0 && len == itch_msg_len[p[2]])
            return STREAM_ITCH;
    }
    if (csv_probe(p, n))
        return STREAM_CSV;
    size_t printable = 0, k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++)
        printable += (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\r' || p[i] == '\t';
    return k > 0 && printable == k ? STREAM_CSV : STREAM_ITCH;
}

/* The directory events of a batch whose types the decoder counted already (by_type['R']
 * rose by dir_new): only a batch with one is scanned. */
static void directory_batch(stream_t *s, size_t n, uint64_t dir_new)
{
    for (size_t i = 0; i < n && dir_new > 0; i++) {
        const ev_t *e = &s->out[i];
        if (e->type == 'R') {
            dir_new--;
            if (itch_directory_apply(s->symbols, e) == -EEXIST)
                s->directory_conflicts++;
        }
    }
    s->messages += n;
}

static void count_batch(stream_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &s->out[i];
        s->by_type[e->type]++;
        if (e->type == 'R' && itch_directory_apply(s->symbols, e) == -EEXIST)
            s->directory_conflicts++;
    }
    s->messages += n;
}

static void itch_error(stream_t *s, const itch_result_t *r, uint64_t off, uint64_t index)
{
    char what[160];
    itch_describe(r, what, sizeof what);
    err_set(s->err, sizeof s->err, "%s: byte %llu (message %llu): %s", s->path,
            (unsigned long long)off, (unsigned long long)index + 1, what);
}

/* Decode CSV rows from p[0..len) into s->out (at_eof: these are the file's last bytes). Returns
 * the events decoded; *done is set when the block is used up. A bad row is recorded in s->err
 * and s->pending. */
static size_t csv_batch(stream_t *s, const uint8_t *p, size_t len, bool at_eof, bool *done)
{
    csv_result_t res;
    csv_decode_block(&s->csv, p, len, at_eof, s->out, s->out_max, &res);
    s->pos += res.consumed;
    count_batch(s, res.n);
    *done = false;
    if (res.status >= CSV_ERR_EMPTY) {
        char msg[400];
        csv_format_error(&s->csv, msg, sizeof msg);
        err_set(s->err, sizeof s->err, "%s: %s", s->path, msg);
        s->pending = -1;
    } else if (res.status == CSV_OK) {
        *done = true;
    }
    return res.n;
}

/* End of the file with `tail` bytes of a record left. */
static int at_end(stream_t *s, ev_t **ev, size_t *n)
{
    const uint8_t *p = s->chunk.data + s->pos;
    size_t tail = s->have_chunk ? s->chunk.len - s->pos : 0;
    if (s->format == STREAM_CSV && s->have_chunk) {
        bool done;
        size_t got = csv_batch(s, p, tail, true, &done);
        if (done)
            s->ended = true;
        if (got) {
            *ev = s->out;
            *n = got;
            return 1;
        }
        return s->pending ? -1 : (s->ended ? 0 : at_end(s, ev, n));
    }
    s->ended = true;
    if (tail == 0)
        return 0;
    s->truncated_tail = tail;
    if (s->cfg.skip_bad)
        s->skipped_bytes += tail;
    if (s->cfg.skip_bad && s->err[0])
        return 0; /* keep the first error's message */
    unsigned need = tail >= 2 ? 2u + be16_get(p) : 2u;
    err_set(s->err, sizeof s->err,
            "%s: byte %llu (message %llu): truncated final message: the file ends %zu bytes "
            "into a frame of %u bytes",
            s->path, (unsigned long long)(s->chunk.offset + s->pos),
            (unsigned long long)s->messages + 1, tail, need);
    if (s->cfg.skip_bad)
        return 0;
    s->pending = -1;
    return -1;
}

/* A batch out of a capture. */
static int capture_batch(stream_t *s, ev_t **ev, size_t *n)
{
    int rc = capture_next(&s->cap, s->out, s->out_max, n);
    s->bytes = s->cap.pos;
    if (rc > 0) {
        count_batch(s, *n);
        *ev = s->out;
        return 1;
    }
    if (rc < 0) {
        err_set(s->err, sizeof s->err, "%s: %s", s->path, s->cap.err);
        s->pending = -1;
    } else {
        s->ended = true;
    }
    return rc;
}

static int next_batch(stream_t *s, ev_t **ev, size_t *n)
{
    if (s->pending)
        return -1;
    if (s->ended)
        return 0;
    if (s->format == STREAM_PCAP)
        return capture_batch(s, ev, n);
    for (;;) {
        if (!s->have_chunk || s->need_more) {
            const uint8_t *carry = s->have_chunk ? s->chunk.data + s->pos : NULL;
            size_t clen = s->have_chunk ? s->chunk.len - s->pos : 0;
            reader_chunk_t c;
            int rc = reader_next(&s->reader, &c, carry, clen);
            if (rc < 0) {
                err_set(s->err, sizeof s->err, "%s: %s", s->path, s->reader.err);
                s->pending = -1;
                return -1;
            }
            if (rc == 0) {
                if (!s->have_chunk) {
                    if (s->format == STREAM_CSV) {
                        csv_init(&s->csv, s->symbols, &s->cfg.csv);
                    } else {
                        err_set(s->err, sizeof s->err,
                                "%s: empty file (0 bytes): expected an ITCH 5.0 BinaryFILE or "
                                "a CSV file with a header row",
                                s->path);
                        s->pending = -1;
                        return -1;
                    }
                }
                return at_end(s, ev, n);
            }
            if (s->have_chunk)
                reader_release(&s->reader, s->chunk.buf);
            else if (s->format == STREAM_AUTO)
                s->format = detect(c.data, c.len);
            if (!s->have_chunk && s->format == STREAM_CSV)
                csv_init(&s->csv, s->symbols, &s->cfg.csv);
            s->bytes += c.len - clen;
            s->chunk = c;
            s->have_chunk = true;
            s->need_more = false;
            s->pos = 0;
        }
        const uint8_t *p = s->chunk.data + s->pos;
        size_t len = s->chunk.len - s->pos;

        if (s->format == STREAM_CSV) {
            bool done;
            size_t got = csv_batch(s, p, len, false, &done);
            if (done)
                s->need_more = true;
            if (got) {
                *ev = s->out;
                *n = got;
                return 1;
            }
            if (s->pending)
                return -1;
            continue;
        }

        /* ITCH */
        if (s->resyncing) {
            size_t k = itch_resync(p, len, false);
            if (k > len)
                k = len;
            s->pos += k;
            s->skipped_bytes += k;
            /* the decode below says whether the candidate holds */
            s->resyncing = false;
            if (s->pos >= s->chunk.len) {
                s->need_more = true;
                s->resyncing = true;
            }
            continue;
        }
        itch_result_t r;
        const uint64_t dir_before = s->by_type['R'];
        itch_decode_block_count(p, len, s->out, s->out_max, &r, s->by_type);
        s->pos += r.consumed;
        directory_batch(s, r.n, s->by_type['R'] - dir_before);
        if (r.status == ITCH_OK)
            s->need_more = true;
        if (r.n)
            s->in_bad_region = false;
        if (r.status >= ITCH_ERR_ZERO_LENGTH) {
            uint64_t off = s->chunk.offset + s->pos;
            /* one bad region counts once, however many candidates fail inside it */
            if (!s->in_bad_region) {
                if (!s->cfg.skip_bad || !s->err[0]) /* skipping: the first error's message */
                    itch_error(s, &r, off, s->messages);
                s->bad_frames++;
            }
            s->in_bad_region = true;
            if (s->cfg.skip_bad)
                s->resyncing = true;
            else
                s->pending = -1;
        }
        if (r.n) {
            *ev = s->out;
            *n = r.n;
            return 1;
        }
        if (s->pending)
            return -1;
    }
}

int stream_next(stream_t *s, ev_t **ev, size_t *n)
{
    s->out = s->events;
    s->out_max = s->cfg.batch_events;
    return next_batch(s, ev, n);
}

int stream_next_into(stream_t *s, ev_t *out, size_t max, size_t *n)
{
    ev_t *ev;
    if (max == 0)
        return -1;
    s->out = out;
    s->out_max = max;
    return next_batch(s, &ev, n);
}
