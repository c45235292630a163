/*
 * natspub: see natspub.h. Ownership: natspub_run owns everything it allocates (the stream
 * reader and symbol table, tag INGEST; one packet buffer per shard and the subject names, tag
 * NET; the net/nats connection with its ring) and frees it before returning.
 */
#include "feed/natspub.h"

#include "base/clock.h"
#include "engine/pipeline.h"
#include "event/symtab.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "net/nats.h"
#include "net/pack.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct shard_out {
    pack_builder_t b;
    uint8_t *buf;
    uint64_t next_local; /* the local index of the next message put on this subject */
    uint64_t t_first;    /* when the packet's first message was added */
    char subject[NATS_NAME_MAX];
} shard_out_t;

int natspub_shard(const uint8_t *msg, uint32_t n)
{
    uint16_t locate = (uint16_t)((msg[1] << 8) | msg[2]);
    if (msg[0] == 'S' || msg[0] == 'R' || locate == 0)
        return -1;
    return (int)(locate % n);
}

static int publish_packet(nats_t *n, shard_out_t *o, natspub_result_t *r)
{
    size_t len = pack_finish(&o->b);
    int rc = nats_publish(n, o->subject, o->buf, len, NULL);
    if (rc < 0)
        return rc;
    r->packets++;
    r->wire_bytes += len;
    pack_begin(&o->b, o->buf, o->b.cap, o->next_local);
    return 0;
}

/* Put one message on one shard's subject. */
static int put(nats_t *n, shard_out_t *o, uint64_t index, const uint8_t *msg, size_t len,
               uint64_t now, natspub_result_t *r)
{
    if (!pack_fits(&o->b, len)) {
        int rc = publish_packet(n, o, r);
        if (rc < 0)
            return rc;
    }
    if (!o->b.count)
        o->t_first = now;
    if (!pack_add(&o->b, index, msg, len))
        return -EINVAL; /* cannot happen: it fits and indices grow */
    o->next_local++;
    r->copies++;
    return 0;
}

int natspub_run(const natspub_cfg_t *c, natspub_result_t *r)
{
    memset(r, 0, sizeof *r);
    const config_t *cfg = &c->cfg;
    uint32_t N = cfg->cluster_shards;
    r->shards = N;
    char err[600] = "";
    int rc = 0;
    symtab_t symbols;
    stream_t st;
    bool sym_ok = false, st_ok = false, open_ok = false;
    nats_t *n = NULL;
    shard_out_t *outs = NULL;
    size_t pkt = cfg->cluster_packet_bytes;
    stream_cfg_t scfg;
    pipeline_stream_cfg(&scfg, cfg);
    scfg.format = STREAM_ITCH;
    nats_heap_t heap;
    if (symtab_init(&symbols, cfg->max_symbols) < 0) {
        snprintf(err, sizeof err, "out of memory for the symbol table");
        rc = -ENOMEM;
        goto out;
    }
    sym_ok = true;
    if (stream_init(&st, &scfg, &symbols) < 0) {
        snprintf(err, sizeof err, "%s", st.err);
        rc = -ENOMEM;
        goto out;
    }
    st_ok = true;
    if (stream_open(&st, c->file) < 0) {
        snprintf(err, sizeof err, "%s", st.err);
        rc = -EIO;
        goto out;
    }
    open_ok = true;
    outs = mem_calloc(MEM_TAG_NET, N, sizeof *outs);
    if (!outs) {
        snprintf(err, sizeof err, "out of memory for %u shards", N);
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t s = 0; s < N; s++) {
        outs[s].buf = mem_alloc_prefault(MEM_TAG_NET, pkt, MEM_CACHE_LINE);
        if (!outs[s].buf) {
            snprintf(err, sizeof err, "out of memory for %u packet buffers of %zu bytes", N, pkt);
            rc = -ENOMEM;
            goto out;
        }
        snprintf(outs[s].subject, sizeof outs[s].subject, "%s.%u", cfg->cluster_subject, s);
        outs[s].next_local = 1;
        pack_begin(&outs[s].b, outs[s].buf, pkt, 1);
    }
    nats_client_heap(NULL, &heap);
    r->client_commit_start = heap.commit_bytes;
    char id_prefix[48];
    snprintf(id_prefix, sizeof id_prefix, "%s", cfg->cluster_stream);
    nats_opts_t no = {.url = c->url,
                      .name = "tickcore feed",
                      .max_pending = (int)cfg->cluster_max_pending,
                      .ordered = true,
                      .max_msg_bytes = pkt,
                      .id_prefix = id_prefix};
    rc = nats_create(&n, &no, err, sizeof err);
    if (rc < 0)
        goto out;
    char subjects[NATS_NAME_MAX];
    snprintf(subjects, sizeof subjects, "%s.>", cfg->cluster_subject);
    nats_stream_cfg_t sc = {.name = cfg->cluster_stream, .subjects = {subjects}};
    if (c->fresh) {
        rc = nats_stream_delete(n, cfg->cluster_stream);
        if (rc < 0 && rc != -ENOENT) {
            snprintf(err, sizeof err, "%s", nats_last_error(n));
            goto out;
        }
    }
    nats_stream_info_t si;
    rc = nats_stream_ensure(n, &sc, &si);
    if (rc < 0) {
        snprintf(err, sizeof err, "%s", nats_last_error(n));
        goto out;
    }
    if (si.msgs) {
        snprintf(err, sizeof err,
                 "%s: stream %s already holds %llu messages (an earlier feed): start over with "
                 "--fresh (deletes it) or publish into another cluster.stream",
                 c->url, cfg->cluster_stream, (unsigned long long)si.msgs);
        rc = -EEXIST;
        goto out;
    }
    if (!c->quiet)
        fprintf(stderr, "feed: %s stream %s (%s, file storage), %u shard%s, packets of %zu bytes\n",
                si.created ? "created" : "into", cfg->cluster_stream, subjects, N,
                N == 1 ? "" : "s", pkt);

    bool was_sealed = mem_is_sealed();
    static mem_snapshot_t before, after;
    mem_seal();
    mem_snapshot_counters(&before);
    uint64_t t0 = clock_mono_ns(), now = t0, index = 0;
    for (;;) {
        if (c->stop && *c->stop) {
            r->interrupted = true;
            break;
        }
        ev_t *ev;
        size_t k;
        int sr = stream_next(&st, &ev, &k);
        if (sr == 0)
            break;
        if (sr < 0) {
            snprintf(err, sizeof err, "%s", st.err);
            rc = -EIO;
            break;
        }
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (c->count && index >= c->count)
                break;
            const uint8_t *m = ev[i].raw;
            size_t len = ev[i].raw_len;
            index++;
            r->bytes += len;
            int sh = natspub_shard(m, N);
            if (sh < 0) {
                r->broadcast++;
                for (uint32_t s = 0; s < N && rc == 0; s++)
                    rc = put(n, &outs[s], index, m, len, now, r);
            } else {
                rc = put(n, &outs[sh], index, m, len, now, r);
            }
        }
        if (rc < 0) {
            snprintf(err, sizeof err, "%s", nats_last_error(n));
            break;
        }
        /* the flush deadline, once per batch of the reader */
        now = clock_mono_ns();
        for (uint32_t s = 0; s < N && rc == 0; s++)
            if (outs[s].b.count && now - outs[s].t_first >= cfg->cluster_flush_ns)
                rc = publish_packet(n, &outs[s], r);
        if (rc < 0) {
            snprintf(err, sizeof err, "%s", nats_last_error(n));
            break;
        }
        if (c->count && index >= c->count)
            break;
        if (c->rate > 0) { /* paced: wait until this many messages are due */
            uint64_t due = t0 + (uint64_t)((double)index / c->rate * 1e9);
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000ull),
                                      (long)((due - now) % 1000000000ull)};
                nanosleep(&ts, NULL);
            }
        }
    }
    r->messages = index;
    for (uint32_t s = 0; s < N && rc == 0; s++)
        if (outs[s].b.count) {
            rc = publish_packet(n, &outs[s], r);
            if (rc < 0)
                snprintf(err, sizeof err, "%s", nats_last_error(n));
        }
    if (rc == 0) {
        rc = nats_publish_flush(n, 120000);
        if (rc < 0)
            snprintf(err, sizeof err, "%s", nats_last_error(n));
    }
    r->seconds = (double)(clock_mono_ns() - t0) * 1e-9;
    r->rate = r->seconds > 0 ? (double)r->messages / r->seconds : 0;
    mem_snapshot_counters(&after);
    if (!was_sealed)
        mem_unseal();
    r->allocs = after.total.allocs - before.total.allocs;
    nats_client_heap(n, &heap);
    r->client_commit_peak = heap.peak_commit_bytes;
    nats_stats_t ns;
    nats_get_stats(n, &ns);
    r->acked = ns.acked;
    r->duplicates = ns.duplicates;
    r->resent = ns.resent;
    r->rejected = ns.rejected;
    r->stalls = ns.stalls;
    r->reconnects = ns.reconnects;
    if (nats_stream_info(n, cfg->cluster_stream, &si) == 0) {
        r->stream_msgs = si.msgs;
        r->stream_bytes = si.bytes;
    }
out:
    nats_destroy(n);
    if (outs) {
        for (uint32_t s = 0; s < N; s++)
            mem_free(MEM_TAG_NET, outs[s].buf, pkt);
        mem_free(MEM_TAG_NET, outs, N * sizeof *outs);
    }
    if (open_ok)
        stream_close(&st);
    if (st_ok)
        stream_fini(&st);
    if (sym_ok)
        symtab_fini(&symbols);
    r->status = rc < 0 ? 1 : 0;
    if (r->status)
        snprintf(r->error, sizeof r->error, "%s", err[0] ? err : strerror(-rc));
    return r->status;
}
