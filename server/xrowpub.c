/*
 * xrowpub: see xrowpub.h. The owner table (locate -> shard) exists only while the layout is
 * computed at init; the layout keeps the owned columns.
 */
#include "server/xrowpub.h"

#include "base/clock.h"
#include "base/log.h"
#include "mem/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int xrowpub_init(xrowpub_t *x, const config_t *cfg, const symtab_t *names, char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    x->names = names;
    unsigned N = cfg->cluster_shards, shard = cfg->cluster_shard;
    if (N > XROW_MAX_SHARDS) {
        snprintf(err, errlen, "cluster.shards is %u: the cross-section join takes at most %d", N,
                 XROW_MAX_SHARDS);
        return -EINVAL;
    }
    uint8_t *owner = mem_alloc(MEM_TAG_SERVER, 65536);
    if (!owner) {
        snprintf(err, errlen, "out of memory for the shard table");
        return -ENOMEM;
    }
    for (uint32_t loc = 0; loc < 65536; loc++)
        owner[loc] = (uint8_t)(loc % N); /* the ITCH publisher's shard function (feed/natspub) */
    int rc = xrow_layout_init(&x->l, shard, N, cfg->matrix_symbols, owner);
    mem_free(MEM_TAG_SERVER, owner, 65536);
    if (rc < 0) {
        snprintf(err, errlen, "bar rows of shard %u of %u: %s", shard, N, strerror(-rc));
        return rc;
    }
    x->buf = mem_alloc(MEM_TAG_SERVER, x->l.bytes);
    if (!x->buf) {
        xrow_layout_fini(&x->l);
        snprintf(err, errlen, "out of memory for the bar row buffer");
        return -ENOMEM;
    }
    snprintf(x->subject, sizeof x->subject, "%s.%u", cfg->cluster_rows_subject, shard);
    nats_opts_t no = {.url = cfg->cluster_nats,
                      .name = "tickcore shard rows",
                      .max_pending = (int)cfg->cluster_max_pending};
    rc = nats_create(&x->n, &no, err, errlen);
    if (rc == 0) {
        char subjects[NATS_NAME_MAX];
        snprintf(subjects, sizeof subjects, "%s.>", cfg->cluster_rows_subject);
        nats_stream_cfg_t sc = {.name = cfg->cluster_rows_stream, .subjects = {subjects}};
        rc = nats_stream_ensure(x->n, &sc, NULL);
        if (rc < 0)
            snprintf(err, errlen, "%s", nats_last_error(x->n));
    }
    if (rc < 0) {
        nats_destroy(x->n);
        x->n = NULL;
        mem_free(MEM_TAG_SERVER, x->buf, x->l.bytes);
        x->buf = NULL;
        xrow_layout_fini(&x->l);
        return rc;
    }
    log_msg("serve: shard %u of %u publishes its bar rows (%zu bytes each, %u of %u columns) on "
            "%s of stream %s",
            shard, N, x->l.bytes, x->l.ncols, x->l.m, x->subject, cfg->cluster_rows_stream);
    return 0;
}

void xrowpub_row(xrowpub_t *x, uint64_t session, uint64_t k, const double *row, bool traded)
{
    size_t len =
        xrow_encode(&x->l, session, k, x->seq, clock_wall_ns(), row, traded, x->names, x->buf);
    char id[NATS_NAME_MAX + 24];
    snprintf(id, sizeof id, "%s.%llu", x->subject, (unsigned long long)x->seq);
    x->seq++;
    int rc = nats_publish(x->n, x->subject, x->buf, len, id);
    if (rc < 0) {
        if (atomic_fetch_add_explicit(&x->errors, 1, memory_order_relaxed) == 0) {
            snprintf(x->err, sizeof x->err, "%s", nats_last_error(x->n));
            log_msg("serve: publishing bar row %llu on %s: %s", (unsigned long long)k, x->subject,
                    x->err);
        }
        return;
    }
    atomic_fetch_add_explicit(&x->published, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->bytes, len, memory_order_relaxed);
}

void xrowpub_give_up_after(xrowpub_t *x, int timeout_ms)
{
    if (x->n)
        nats_give_up_after(x->n, timeout_ms);
}

int xrowpub_flush(xrowpub_t *x, int timeout_ms, char *err, size_t errlen)
{
    if (!x->n)
        return 0;
    int rc = nats_publish_flush(x->n, timeout_ms);
    if (rc == 0 && !atomic_load_explicit(&x->errors, memory_order_relaxed))
        return 0;
    nats_stats_t st;
    nats_get_stats(x->n, &st);
    uint64_t lost = atomic_load_explicit(&x->errors, memory_order_relaxed);
    snprintf(err, errlen,
             "bar rows on %s: of %llu parts, %llu were published and not acknowledged by the "
             "NATS server and %llu could not be published (%s): a restart of this shard "
             "publishes them again",
             x->subject, (unsigned long long)(st.published + lost),
             (unsigned long long)(st.published - st.acked), (unsigned long long)lost,
             rc < 0 ? nats_last_error(x->n) : x->err);
    return rc < 0 ? rc : -EIO;
}

void xrowpub_fini(xrowpub_t *x)
{
    if (x->n)
        nats_destroy(x->n);
    if (x->buf)
        mem_free(MEM_TAG_SERVER, x->buf, x->l.bytes);
    xrow_layout_fini(&x->l);
    memset(x, 0, sizeof *x);
}
