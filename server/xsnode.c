/*
 * xsnode: see xsnode.h. One step: for each shard in turn (starting one further each step, so no
 * shard is always last), offer its held part again, then fetch a batch unless it is held back,
 * and take the batch's parts in order until one cannot be taken; acknowledge the taken prefix;
 * poll the join after every part so the window moves as soon as a row is complete.
 */
#include "server/xsnode.h"

#include "base/clock.h"
#include "base/log.h"
#include "mem/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void push_row(void *ctx, uint64_t session, uint64_t k, double *row, bool traded)
{
    xsnode_t *x = ctx;
    (void)session;
    xsection_push(x->xs, k, row, traded);
}

static void compute(xsnode_t *x)
{
    x->last_compute = clock_mono_ns();
    x->rows_computed = x->xs->rows;
    if (xsection_compute(x->xs) == 0) {
        if (x->publish)
            x->publish(x->publish_ctx, x->xs);
        atomic_fetch_add_explicit(&x->computes, 1, memory_order_relaxed);
    }
}

int xsnode_init(xsnode_t *x, const config_t *cfg, xsection_t *xs, symtab_t *names,
                xsnode_publish_fn *publish, void *ctx, char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    x->xs = xs;
    x->publish = publish;
    x->publish_ctx = ctx;
    x->interval_ns = cfg->analytics_interval_ns;
    unsigned N = cfg->cluster_shards;
    x->nshards = N;
    if (N > XROW_MAX_SHARDS) {
        snprintf(err, errlen, "cluster.shards is %u: the cross-section join takes at most %d", N,
                 XROW_MAX_SHARDS);
        return -EINVAL;
    }
    x->owner = mem_alloc(MEM_TAG_SERVER, 65536);
    x->sh = mem_calloc(MEM_TAG_SERVER, N, sizeof *x->sh);
    x->part_max = XROW_HEADER + 16 * (size_t)cfg->matrix_symbols;
    if (!x->owner || !x->sh) {
        xsnode_fini(x);
        snprintf(err, errlen, "out of memory for the cross-section node");
        return -ENOMEM;
    }
    for (uint32_t loc = 0; loc < 65536; loc++)
        x->owner[loc] = (uint8_t)(loc % N); /* the ITCH publisher's shard function */
    for (unsigned s = 0; s < N; s++) {
        x->sh[s].held = mem_alloc(MEM_TAG_SERVER, x->part_max);
        if (!x->sh[s].held) {
            xsnode_fini(x);
            snprintf(err, errlen, "out of memory for the cross-section node");
            return -ENOMEM;
        }
    }
    xjoin_cfg_t jc = {.nshards = N,
                      .m = cfg->matrix_symbols,
                      .window = cfg->cluster_join_window,
                      .deadline_ns = cfg->cluster_join_deadline_ns,
                      .owner = x->owner,
                      .names = names};
    int rc = xjoin_init(&x->join, &jc);
    x->join_ok = rc == 0;
    if (rc < 0) {
        xsnode_fini(x);
        snprintf(err, errlen, "the bar row join (%u shards, %u bars): %s", N,
                 cfg->cluster_join_window, strerror(-rc));
        return rc;
    }
    nats_opts_t no = {.url = cfg->cluster_nats, .name = "tickcore cross-section"};
    rc = nats_create(&x->n, &no, err, errlen);
    if (rc < 0) {
        xsnode_fini(x);
        return rc;
    }
    char subjects[NATS_NAME_MAX];
    snprintf(subjects, sizeof subjects, "%s.>", cfg->cluster_rows_subject);
    nats_stream_cfg_t sc = {.name = cfg->cluster_rows_stream, .subjects = {subjects}};
    rc = nats_stream_ensure(x->n, &sc, NULL);
    for (unsigned s = 0; rc == 0 && s < N; s++) {
        char durable[NATS_NAME_MAX], filter[NATS_NAME_MAX];
        snprintf(durable, sizeof durable, "%s_xs_%u", cfg->cluster_rows_stream, s);
        snprintf(filter, sizeof filter, "%s.%u", cfg->cluster_rows_subject, s);
        rc = nats_consumer_delete(x->n, cfg->cluster_rows_stream, durable);
        if (rc == -ENOENT)
            rc = 0;
        if (rc == 0)
            rc = nats_consumer_create(&x->sh[s].cons, x->n, cfg->cluster_rows_stream, durable,
                                      filter, (int)cfg->cluster_fetch_batch, 0, XSNODE_ACK_WAIT_MS);
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", nats_last_error(x->n));
        xsnode_fini(x);
        return rc;
    }
    log_msg("serve: cross-section of %u shards: bar rows from stream %s (%s, from its start), "
            "window %u bars, deadline %.3f s",
            N, cfg->cluster_rows_stream, subjects, cfg->cluster_join_window,
            (double)cfg->cluster_join_deadline_ns * 1e-9);
    return 0;
}

/* Offer one part of shard s; false when the join had no room (kept in held). */
static bool offer(xsnode_t *x, unsigned s, const uint8_t *data, size_t len, bool from_held)
{
    char err[512];
    int rc = xjoin_put(&x->join, data, len, clock_mono_ns(), err, sizeof err);
    if (rc == XJOIN_FULL) {
        xsnode_shard_t *sh = &x->sh[s];
        if (!from_held) {
            memcpy(sh->held, data, len);
            sh->held_len = len;
        }
        sh->holding = true;
        return false;
    }
    if (rc < 0 && (x->join.bad + x->join.foreign) <= 10) /* counted; the first ones logged */
        log_msg("serve: cross-section: a bar row part of shard %u refused: %s", s, err);
    if (from_held)
        x->sh[s].holding = false;
    xjoin_poll(&x->join, clock_mono_ns(), clock_wall_ns(), push_row, x);
    return true;
}

int xsnode_step(xsnode_t *x, int timeout_ms, char *err, size_t errlen)
{
    uint64_t rows0 = x->join.rows;
    unsigned N = x->nshards;
    int wait = timeout_ms / (int)N > 1 ? timeout_ms / (int)N : 1;
    bool got = false;
    for (unsigned i = 0; i < N; i++) {
        unsigned s = (x->rr + i) % N;
        xsnode_shard_t *sh = &x->sh[s];
        if (sh->holding && !offer(x, s, sh->held, sh->held_len, true))
            continue; /* still no room: this shard waits, the others go on */
        if (sh->bi >= sh->bn) {
            int n = nats_fetch(sh->cons, 0, got ? 1 : wait);
            if (n < 0) {
                if (!nats_connected(x->n))
                    continue; /* reconnecting: tried again next step */
                snprintf(err, errlen, "cross-section: fetching bar rows of shard %u: %s", s,
                         nats_consumer_error(sh->cons));
                return n;
            }
            sh->bn = n;
            sh->bi = sh->acked = 0;
        }
        int first = sh->bi;
        while (sh->bi < sh->bn) {
            const nats_msg_t *m = nats_msg(sh->cons, sh->bi);
            xrow_part_t p;
            char perr[256];
            if (xrow_decode(m->data, m->len, &p, perr, sizeof perr) == 0) {
                if (p.seq < sh->next) { /* a restarted shard's copy of a part already taken */
                    atomic_fetch_add_explicit(&x->resent, 1, memory_order_relaxed);
                    sh->bi++;
                    continue;
                }
                if (p.seq > sh->next) { /* ahead of a lost delivery: the rest comes again after
                                           the ack wait, after the missing one */
                    atomic_fetch_add_explicit(&x->ahead, 1, memory_order_relaxed);
                    sh->bn = sh->bi;
                    break;
                }
                sh->next++;
            } /* else: the join counts it as bad and logs the first ones */
            sh->bi++;
            if (!offer(x, s, m->data, m->len, false))
                break; /* kept in held: the rest of the batch after it */
        }
        if (sh->bi > first) {
            got = true;
            atomic_fetch_add_explicit(&x->fetched, (uint64_t)(sh->bi - first),
                                      memory_order_relaxed);
        }
        if (sh->bi > sh->acked) {
            (void)nats_ack(sh->cons, sh->bi); /* a failed ack only means a redelivery (skipped) */
            sh->acked = sh->bi;
        }
    }
    x->rr = (x->rr + 1) % N;
    xjoin_poll(&x->join, clock_mono_ns(), clock_wall_ns(), push_row, x);
    uint64_t t = clock_mono_ns();
    if (x->xs->rows != x->rows_computed && (!got || t - x->last_compute >= x->interval_ns))
        compute(x);
    return (int)(x->join.rows - rows0);
}

void xsnode_finish(xsnode_t *x)
{
    if (!x->join_ok)
        return;
    xjoin_poll(&x->join, UINT64_MAX, clock_wall_ns(), push_row, x);
    if (x->xs->rows != x->rows_computed)
        compute(x);
    const xjoin_t *j = &x->join;
    log_msg("serve: cross-section: %llu rows joined from %llu parts, %llu incomplete, %llu "
            "duplicates, %llu late, %llu resent, %llu window full; bar-join latency (the last "
            "shard's row -> joined) p50 %.3f ms p99 %.3f ms max %.3f ms; wait for the slowest "
            "shard p50 %.3f ms p99 %.3f ms",
            (unsigned long long)j->rows, (unsigned long long)j->parts,
            (unsigned long long)j->incomplete, (unsigned long long)j->duplicates,
            (unsigned long long)j->late, (unsigned long long)x->resent, (unsigned long long)j->full,
            (double)histo_quantile(&j->latency, 0.5) * 1e-6,
            (double)histo_quantile(&j->latency, 0.99) * 1e-6, (double)j->latency.max * 1e-6,
            (double)histo_quantile(&j->wait, 0.5) * 1e-6,
            (double)histo_quantile(&j->wait, 0.99) * 1e-6);
}

void xsnode_fini(xsnode_t *x)
{
    if (x->sh) {
        for (unsigned s = 0; s < x->nshards; s++) {
            nats_consumer_destroy(x->sh[s].cons);
            if (x->sh[s].held)
                mem_free(MEM_TAG_SERVER, x->sh[s].held, x->part_max);
        }
        mem_free(MEM_TAG_SERVER, x->sh, x->nshards * sizeof *x->sh);
    }
    nats_destroy(x->n);
    if (x->join_ok)
        xjoin_fini(&x->join);
    if (x->owner)
        mem_free(MEM_TAG_SERVER, x->owner, 65536);
    memset(x, 0, sizeof *x);
}
