/*
 * natsin: see natsin.h. The packet check (net/pack) runs over the whole packet before any of
 * its messages is delivered, and each message's length must be its type's ITCH 5.0 size, so a
 * damaged packet delivers nothing. Ownership: natsin owns its net/nats connection and consumer.
 */
#include "server/natsin.h"

#include "base/clock.h"
#include "base/log.h"
#include "ingest/itch.h"
#include "net/pack.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define LD(x)    atomic_load_explicit(&(x), memory_order_relaxed)

static int rebuild(natsin_t *ni, uint64_t found, char *err, size_t errlen);

/* The durable from its acknowledgement floor (resume), or from the stream's start. Resuming
 * makes the durable again (the same name, started at floor + 1, in this configuration), so what
 * a killed run fetched and did not acknowledge comes first and in order. */
static int open_consumer(natsin_t *ni, bool resume, char *err, size_t errlen)
{
    uint64_t floor = 0;
    if (resume && LD(ni->c.next_seq) == 1) { /* nothing here: from the stream's start */
        resume = false;
        if (nats_consumer_delete(ni->n, ni->stream, ni->durable) == 0)
            log_msg("serve: nats: this shard has no message (no journal, or an empty one): "
                    "durable %s rebuilding from the start of stream %s",
                    ni->durable, ni->stream);
    }
    int rc = resume ? nats_consumer_resume(&ni->cons, ni->n, ni->stream, ni->durable, ni->subject,
                                           (int)ni->batch, (int)ni->batch * 4, NATSIN_ACK_WAIT_MS,
                                           &floor)
                    : nats_consumer_create(&ni->cons, ni->n, ni->stream, ni->durable, ni->subject,
                                           (int)ni->batch, (int)ni->batch * 4, NATSIN_ACK_WAIT_MS);
    ni->last_sseq = resume ? floor : 0;
    if (rc < 0)
        snprintf(err, errlen, "%s", nats_last_error(ni->n));
    else if (resume && floor) {
        /* the last acknowledged packet says which shard index the durable is past */
        uint8_t h[PACK_HEADER];
        size_t len = 0;
        pack_view_t v;
        uint64_t past = 0;
        uint64_t at = 0;
        int r = nats_stream_read(ni->n, ni->stream, floor, ni->subject, h, sizeof h, &len, &at);
        if (r == 0 && pack_peek(h, len < sizeof h ? len : sizeof h, &v) == 0)
            past = v.first_local + v.count - 1;
        else /* not found (should not be): safe, slower: everything from the start */
            past = UINT64_MAX - 1;
        log_msg("serve: nats: durable %s resumes after stream sequence %llu (its acknowledgement "
                "floor; the last packet of %s at or before it, %llu, ends at shard index %llu; "
                "this shard has %llu)",
                ni->durable, (unsigned long long)floor, ni->subject, (unsigned long long)at,
                (unsigned long long)past, (unsigned long long)(LD(ni->c.next_seq) - 1));
        if (past >= LD(ni->c.next_seq)) /* acknowledged more than we have: from the start */
            return rebuild(ni, past + 1, err, errlen);
    }
    return rc;
}

int natsin_init(natsin_t *ni, const config_t *cfg, uint64_t next_seq, natsin_deliver_fn *deliver,
                void *ctx, char *err, size_t errlen)
{
    memset(ni, 0, sizeof *ni);
    ni->deliver = deliver;
    ni->ctx = ctx;
    ni->batch = cfg->cluster_fetch_batch;
    snprintf(ni->stream, sizeof ni->stream, "%s", cfg->cluster_stream);
    snprintf(ni->durable, sizeof ni->durable, "%s_%u", cfg->cluster_stream, cfg->cluster_shard);
    snprintf(ni->subject, sizeof ni->subject, "%s.%u", cfg->cluster_subject, cfg->cluster_shard);
    ST(ni->c.next_seq, next_seq);
    nats_opts_t o = {.url = cfg->cluster_nats, .name = "tickcore serve", .reconnect_wait_ms = 100};
    int rc = nats_create(&ni->n, &o, err, errlen);
    if (rc < 0)
        return rc;
    /* the shard may start before the publisher: the stream is made as the publisher makes it
     * (subjects <prefix>.>, file storage, limits retention), and the publisher finds it empty */
    snprintf(ni->subjects, sizeof ni->subjects, "%s.>", cfg->cluster_subject);
    ni->scfg = (nats_stream_cfg_t){.name = ni->stream, .subjects = {ni->subjects}};
    nats_stream_info_t si;
    rc = nats_stream_ensure(ni->n, &ni->scfg, &si);
    if (rc < 0) {
        snprintf(err, errlen, "%s", nats_last_error(ni->n));
        natsin_fini(ni);
        return rc;
    }
    rc = open_consumer(ni, true, err, errlen);
    if (rc < 0) {
        natsin_fini(ni);
        return rc;
    }
    log_msg("serve: nats %s: stream %s (%s%llu messages), subject %s, durable %s, from shard "
            "index %llu",
            cfg->cluster_nats, ni->stream, si.created ? "created, " : "",
            (unsigned long long)si.msgs, ni->subject, ni->durable, (unsigned long long)next_seq);
    return 0;
}

/* The durable is ahead of what we have: make it again from the stream's start. */
static int rebuild(natsin_t *ni, uint64_t found, char *err, size_t errlen)
{
    log_msg("serve: nats: durable %s starts at shard index %llu but this shard has %llu "
            "messages: rebuilding from the start of stream %s",
            ni->durable, (unsigned long long)found, (unsigned long long)(LD(ni->c.next_seq) - 1),
            ni->stream);
    nats_consumer_destroy(ni->cons);
    ni->cons = NULL;
    ni->pending = 0;
    int rc = nats_consumer_delete(ni->n, ni->stream, ni->durable);
    if (rc < 0 && rc != -ENOENT) {
        snprintf(err, errlen, "%s", nats_last_error(ni->n));
        return rc;
    }
    ST(ni->c.rebuilds, LD(ni->c.rebuilds) + 1);
    return open_consumer(ni, false, err, errlen);
}

/* Does the stream hold shard index `want` before stream sequence `seq`? The last packet of our
 * subject before seq must end at or past it. A stream that cannot be read (connection down)
 * counts as holding it: the restart after it asks again. */
static bool stream_has(natsin_t *ni, uint64_t seq, uint64_t want)
{
    uint8_t h[PACK_HEADER];
    size_t len = 0;
    uint64_t at = 0;
    pack_view_t v;
    if (seq <= 1)
        return false;
    int r = nats_stream_read(ni->n, ni->stream, seq - 1, ni->subject, h, sizeof h, &len, &at);
    if (r == -ENOENT)
        return false;
    if (r < 0 || pack_peek(h, len < sizeof h ? len : sizeof h, &v) < 0)
        return true;
    return v.count && v.first_local + v.count - 1 >= want;
}

int natsin_poll(natsin_t *ni, int timeout_ms, char *err, size_t errlen)
{
    int k = nats_fetch(ni->cons, 0, timeout_ms);
    ni->pending = 0;
    if (k < 0) {
        /* the connection is down (the client reconnects: try again), or the durable or its
         * stream is gone (deleted by hand, or `feed --fresh`): every 20th error in a row, the
         * stream is ensured and the durable made again after the last packet applied */
        uint64_t e = ++ni->fetch_errors;
        if ((e & (e - 1)) == 0)
            log_msg("serve: %s (%llu fetch errors so far)", nats_consumer_error(ni->cons),
                    (unsigned long long)e);
        if (++ni->errors_in_row % 20 == 0 && nats_connected(ni->n)) {
            nats_stream_info_t si;
            if (nats_stream_ensure(ni->n, &ni->scfg, &si) == 0 &&
                nats_consumer_restart(ni->cons, ni->last_sseq ? ni->last_sseq + 1 : 0) == 0)
                log_msg("serve: nats: durable %s made again from stream sequence %llu (stream %s "
                        "has %llu messages)",
                        ni->durable, (unsigned long long)(ni->last_sseq + 1), ni->stream,
                        (unsigned long long)si.msgs);
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        return 0;
    }
    ni->errors_in_row = 0;
    if (k == 0)
        return 0;
    ST(ni->c.fetches, LD(ni->c.fetches) + 1);
    int delivered = 0;
    uint64_t next = LD(ni->c.next_seq);
    for (int i = 0; i < k; i++) {
        const nats_msg_t *m = nats_msg(ni->cons, i);
        pack_view_t v;
        char why[300];
        if (pack_check(m->data, m->len, &v, why, sizeof why) < 0) {
            snprintf(err, errlen, "nats %s: stream %s sequence %llu (subject %s): bad packet: %s",
                     nats_url(ni->n), ni->stream, (unsigned long long)m->stream_seq, m->subject,
                     why);
            return -EBADMSG;
        }
        if (v.count && v.first_local > next) {
            if (!ni->started && !LD(ni->c.rebuilds)) {
                int rc = rebuild(ni, v.first_local, err, errlen);
                return rc < 0 ? rc : delivered;
            }
            /* Ahead of what we have: a packet was lost between the server and us (see
             * natsin.h). What is before it is acknowledged, it and the rest negatively with a
             * short delay: the server delivers the lost one again after its acknowledgement
             * wait, then these. Still ahead NATSIN_AHEAD_MS later: the durable is made again
             * from the stream sequence after the last packet applied; ahead again right after
             * that, the stream is asked whether it holds the missing shard index (the last
             * packet of this subject before this one must end at or past it); only when it
             * does not is it a gap. */
            uint64_t now = clock_mono_ns();
            if (!ni->ahead_since)
                ni->ahead_since = now;
            bool stuck = now - ni->ahead_since > (uint64_t)NATSIN_AHEAD_MS * 1000000u;
            if (ni->restarted && stuck && !stream_has(ni, m->stream_seq, next)) {
                snprintf(err, errlen,
                         "nats %s: stream %s sequence %llu (subject %s): gap: shard index %llu "
                         "expected, the packet starts at %llu (file index %llu): the stream lost "
                         "messages",
                         nats_url(ni->n), ni->stream, (unsigned long long)m->stream_seq, m->subject,
                         (unsigned long long)next, (unsigned long long)v.first_local,
                         (unsigned long long)v.first_index);
                return -ERANGE;
            }
            ST(ni->c.out_of_order, LD(ni->c.out_of_order) + 1);
            if (i > 0 && nats_ack(ni->cons, i) == 0)
                ST(ni->c.acks, LD(ni->c.acks) + (uint64_t)i);
            ST(ni->c.next_seq, next);
            ST(ni->c.messages, LD(ni->c.messages) + (uint64_t)delivered);
            uint64_t ooo = LD(ni->c.out_of_order);
            if ((ooo & (ooo - 1)) == 0)
                log_msg("serve: nats: stream %s subject %s: a packet ahead of shard index %llu "
                        "(a lost delivery): the rest of durable %s's batch comes again after it "
                        "(%llu times so far)",
                        ni->stream, ni->subject, (unsigned long long)next, ni->durable,
                        (unsigned long long)ooo);
            ni->pending = 0;
            if (!stuck) {
                (void)nats_nak(ni->cons, i, NATSIN_NAK_DELAY_MS); /* failed: the ack wait */
                return delivered;
            }
            log_msg("serve: nats: stream %s subject %s: shard index %llu still missing after "
                    "%d ms: durable %s made again from stream sequence %llu",
                    ni->stream, ni->subject, (unsigned long long)next, NATSIN_AHEAD_MS, ni->durable,
                    (unsigned long long)(ni->last_sseq + 1));
            int rc = nats_consumer_restart(ni->cons, ni->last_sseq + 1);
            if (rc < 0) {
                snprintf(err, errlen, "%s", nats_last_error(ni->n));
                return rc;
            }
            ni->restarted = true;
            ni->ahead_since = now;
            return delivered;
        }
        ni->restarted = false;
        ni->ahead_since = 0;
        ni->started = true;
        /* every message's length against its type, before any is delivered */
        pack_view_t w = v;
        uint64_t index, local;
        const uint8_t *msg;
        uint16_t len;
        while (pack_next(&w, &index, &local, &msg, &len))
            if (itch_msg_len[msg[0]] != len) {
                snprintf(err, errlen,
                         "nats %s: stream %s sequence %llu (subject %s): file index %llu: ITCH "
                         "message type 0x%02x of %u bytes, expected %u",
                         nats_url(ni->n), ni->stream, (unsigned long long)m->stream_seq, m->subject,
                         (unsigned long long)index, msg[0], len, itch_msg_len[msg[0]]);
                return -EBADMSG;
            }
        if (m->delivered > 1)
            ST(ni->c.redelivered, LD(ni->c.redelivered) + 1);
        uint64_t skipped = 0;
        while (pack_next(&v, &index, &local, &msg, &len)) {
            if (local < next) {
                skipped++;
                continue;
            }
            ni->deliver(ni->ctx, local, msg, len);
            next = local + 1;
            delivered++;
            ST(ni->c.last_index, index);
        }
        if (skipped)
            ST(ni->c.skipped, LD(ni->c.skipped) + skipped);
        ni->last_sseq = m->stream_seq;
        ST(ni->c.packets, LD(ni->c.packets) + 1);
    }
    ni->pending = k;
    ST(ni->c.next_seq, next);
    ST(ni->c.messages, LD(ni->c.messages) + (uint64_t)delivered);
    return delivered;
}

int natsin_ack(natsin_t *ni)
{
    if (!ni->pending)
        return 0;
    int rc = nats_ack(ni->cons, ni->pending);
    if (rc == 0)
        ST(ni->c.acks, LD(ni->c.acks) + (uint64_t)ni->pending);
    ni->pending = 0;
    return rc;
}

void natsin_client_heap(natsin_t *ni, uint64_t *commit, uint64_t *peak)
{
    nats_heap_t h;
    nats_client_heap(ni->n, &h);
    *commit = h.commit_bytes;
    *peak = h.peak_commit_bytes;
}

void natsin_fini(natsin_t *ni)
{
    nats_consumer_destroy(ni->cons);
    ni->cons = NULL;
    nats_destroy(ni->n);
    ni->n = NULL;
}
