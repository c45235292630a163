/*
 * stream: one input file as a sequence of event batches. It joins the reader (io_uring, gzip,
 * carry-over) to the decoder that the content calls for: ITCH 5.0 BinaryFILE or trades/quotes
 * CSV, chosen by the first bytes (gzip is looked through first), or forced by the caller; or a
 * pcap/pcapng capture of MoldUDP64 (ingest/capture), recognised by its magic bytes when the
 * file is opened and read by libpcap instead of the reader (uncompressed captures only). It
 * owns the error policy: by default the first framing error ends the stream after every valid
 * event before it has been delivered, with a message naming the file, the byte offset, the
 * message (or line) index and what was expected; with skip_bad it resynchronises (ITCH) or skips
 * the row (CSV), counts what it skipped, and goes on.
 *
 * Batches: stream_next() hands out up to batch_events decoded events. Their `raw` pointers point
 * into the reader's buffer and stay valid until the next stream_next() call. Everything (reader
 * buffers, the event array) is allocated by stream_init (tag INGEST); stream_open and
 * stream_next allocate nothing, for any input, good or bad. One thread uses a stream.
 */
#ifndef TICKCORE_INGEST_STREAM_H
#define TICKCORE_INGEST_STREAM_H

#include "event/event.h"
#include "event/symtab.h"
#include "ingest/capture.h"
#include "ingest/csv.h"
#include "ingest/reader.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum stream_format {
    STREAM_AUTO = 0,
    STREAM_ITCH,
    STREAM_CSV,
    STREAM_PCAP
} stream_format_t;

#define STREAM_CAPTURE_COPY (1u << 20) /* bytes of captured packets per batch */

typedef struct stream_cfg {
    reader_cfg_t reader;
    stream_format_t format; /* AUTO: by content */
    bool skip_bad;          /* resynchronise / skip bad rows instead of stopping */
    csv_cfg_t csv; /* csv.strict is set from !skip_bad by default (see stream_cfg_default) */
    uint32_t batch_events; /* events per batch */
} stream_cfg_t;

void stream_cfg_default(stream_cfg_t *cfg);

typedef struct stream {
    stream_cfg_t cfg;
    reader_t reader;
    symtab_t *symbols;
    ev_t *events;
    ev_t *out; /* where the current call decodes to: events, or the caller's array */
    size_t out_max;
    csv_t csv;
    capture_t cap;     /* STREAM_PCAP: the capture (libpcap reads it, not the reader) */
    uint8_t *cap_copy; /* [STREAM_CAPTURE_COPY]: the packets of one batch (tag INGEST) */
    const char *path;
    stream_format_t format; /* of the open file */
    /* position */
    reader_chunk_t chunk;
    bool have_chunk, need_more, ended, resyncing, in_bad_region;
    size_t pos;  /* decoded up to here in chunk */
    int pending; /* error to return on the next call (after the batch that preceded it) */
    /* figures for the open file */
    uint64_t messages;            /* events delivered */
    uint64_t by_type[256];        /* events by type byte */
    uint64_t bytes;               /* input bytes (after inflate) */
    uint64_t bad_frames;          /* ITCH bad regions met (with skip_bad: each skipped once) */
    uint64_t skipped_bytes;       /* bytes dropped while resynchronising */
    uint64_t truncated_tail;      /* bytes of an incomplete final record */
    uint64_t directory_conflicts; /* stock directory entries the symbol table refused */
    char err[512];                /* the error that ended the stream (or the last one skipped) */
} stream_t;

/* symbols: the shared table (not owned); R messages are applied to it as they pass. */
int stream_init(stream_t *s, const stream_cfg_t *cfg, symtab_t *symbols);
void stream_fini(stream_t *s);

/* 0, or -errno with s->err naming the file. */
int stream_open(stream_t *s, const char *path);
void stream_close(stream_t *s);

/* The next batch: 1 (*ev, *n set, n >= 1), 0 at the clean end of the file, -1 on an error that
 * ends it (message in s->err; every event before the error has been delivered). */
int stream_next(stream_t *s, ev_t **ev, size_t *n);
/* The same into the caller's array out[0..max) (the pipeline's batches). Events' raw pointers
 * are valid only until the next call, on this thread. */
int stream_next_into(stream_t *s, ev_t *out, size_t max, size_t *n);

const char *stream_format_name(stream_format_t f);

#endif
