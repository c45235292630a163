/*
 * selfcheck: see selfcheck.h. Ownership: selfcheck_main owns every object it creates (ring,
 * arena, pool, threads) and destroys them before it reports; the producer thread writes only
 * ring slots it claimed, the consumer thread owns the arena and the pool. The items are
 * sequence numbers 0..N-1, so the expected checksum is known in closed form and the consumer's
 * result is checked against it, not against an earlier run.
 */
#include "cli/cmd_selfcheck.h"

#include "base/clock.h"
#include "cli/args.h"

#include "mem/arena.h"
#include "mem/mem.h"
#include "mem/pool.h"
#include "mem/ring.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct batch_desc {
    uint64_t first; /* sequence number of the first item */
    uint32_t count;
    uint32_t pad;
} batch_desc_t;

typedef struct order_obj { /* the shape of a book order: what the pool will hold */
    uint64_t ref;
    int64_t price;
    uint32_t shares;
    uint32_t locate;
    uint64_t ts;
} order_obj_t;

enum { LIVE_ORDERS = 512 };

typedef struct selfcheck {
    uint64_t items;
    uint32_t batch;
    ring_t ring;
    arena_t arena;
    pool_t pool;
    /* consumer results */
    uint64_t sum, xorsum, seen, batches, order_errors;
    bool inject_churn;
    void *churned;
    size_t churned_size;
} selfcheck_t;

static void *producer(void *arg)
{
    selfcheck_t *sc = arg;
    uint64_t next = 0;
    while (next < sc->items) {
        size_t first;
        size_t n = ring_claim(&sc->ring, 64, &first);
        for (size_t i = 0; i < n && next < sc->items; i++) {
            batch_desc_t *d = ring_slot(&sc->ring, first + i);
            uint64_t left = sc->items - next;
            d->first = next;
            d->count = (uint32_t)(left < sc->batch ? left : sc->batch);
            next += d->count;
            if (next == sc->items || i + 1 == n) {
                ring_commit(&sc->ring, i + 1);
                break;
            }
        }
    }
    ring_close(&sc->ring);
    return NULL;
}

static void *consumer(void *arg)
{
    selfcheck_t *sc = arg;
    order_obj_t *live[LIVE_ORDERS] = {0};
    uint64_t expect = 0;
    for (;;) {
        size_t first;
        size_t n = ring_wait_peek(&sc->ring, 64, &first);
        if (n == 0)
            break; /* closed and drained */
        for (size_t i = 0; i < n; i++) {
            const batch_desc_t *d = ring_slot(&sc->ring, first + i);
            if (d->first != expect)
                sc->order_errors++;
            expect = d->first + d->count;
            /* Per-batch scratch: a decoded copy of the batch, dropped by the reset below. */
            uint64_t *scratch = arena_new(&sc->arena, uint64_t, d->count);
            if (scratch == NULL) {
                sc->order_errors++;
                continue;
            }
            for (uint32_t k = 0; k < d->count; k++)
                scratch[k] = d->first + k;
            for (uint32_t k = 0; k < d->count; k++) {
                uint64_t v = scratch[k];
                sc->sum += v;
                sc->xorsum ^= v * 0x9E3779B97F4A7C15ull;
                /* Order-like lifecycle: replace the object in one of LIVE_ORDERS slots. */
                order_obj_t **slot = &live[v % LIVE_ORDERS];
                if (*slot && pool_put(&sc->pool, *slot) != 0)
                    sc->order_errors++;
                *slot = pool_get(&sc->pool);
                if (*slot) {
                    (*slot)->ref = v;
                    (*slot)->shares = (uint32_t)v;
                }
            }
            sc->seen += d->count;
            sc->batches++;
            if (sc->inject_churn && sc->churned == NULL) {
                sc->churned_size = 40;
                sc->churned = mem_alloc(MEM_TAG_ENGINE, sc->churned_size);
            }
            arena_reset(&sc->arena);
        }
        ring_release(&sc->ring, n);
    }
    for (unsigned i = 0; i < LIVE_ORDERS; i++) {
        if (live[i] && live[i]->ref % LIVE_ORDERS != i)
            sc->order_errors++;
        if (live[i])
            (void)pool_put(&sc->pool, live[i]);
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tickcore selfcheck [--items N] [--batch N] [--json] [--strict]\n"
            "                          [--inject-churn] [--inject-leak]\n"
            "Moves N items (default 10000000) in batches (default 64 items) from a producer\n"
            "thread to a consumer thread through a ring, with per-batch arena scratch and\n"
            "pooled objects, after the memory seal; then tears down and prints the memory\n"
            "report. --strict: exit 3 on churn or leak. --inject-churn / --inject-leak:\n"
            "allocate once after the seal / keep one block at teardown, to show the detectors.\n");
}

enum { O_ITEMS = 1, O_BATCH, O_JSON, O_STRICT, O_CHURN, O_LEAK };

static const args_opt_t OPTS[] = {
    {"items", true, O_ITEMS, NULL},
    {"batch", true, O_BATCH, NULL},
    {"json", false, O_JSON, NULL},
    {"strict", false, O_STRICT, NULL},
    {"inject-churn", false, O_CHURN, NULL},
    {"inject-leak", false, O_LEAK, NULL},
    {NULL, false, 0, NULL},
};

typedef struct sc_opts {
    uint64_t items, batch;
    bool json, inject_leak, inject_churn;
} sc_opts_t;

static int on_opt(void *ctx, int id, const char *val)
{
    sc_opts_t *o = ctx;
    switch (id) {
    case O_ITEMS:
        return args_count("selfcheck", "--items", val, 1, UINT64_MAX, "a positive integer",
                          &o->items);
    case O_BATCH:
        return args_count("selfcheck", "--batch", val, 1, 65536, "1..65536", &o->batch);
    case O_JSON:
        o->json = true;
        break;
    case O_STRICT:
        mem_set_strict(true);
        break;
    case O_CHURN:
        o->inject_churn = true;
        break;
    case O_LEAK:
        o->inject_leak = true;
        break;
    }
    return 0;
}

int selfcheck_main(int argc, char **argv)
{
    sc_opts_t o = {.items = 10000000, .batch = 64};
    const args_spec_t spec = {
        .command = "selfcheck", .opts = OPTS, .on_opt = on_opt, .ctx = &o, .usage = usage};
    int npos, prc = args_parse(&spec, argc, argv, &npos);
    if (prc != ARGS_RUN)
        return prc;
    uint64_t items = o.items, batch = o.batch;
    bool json = o.json, inject_leak = o.inject_leak, inject_churn = o.inject_churn;

    /* Start-up: everything sized here, then the seal. */
    selfcheck_t *sc = mem_zalloc(MEM_TAG_ENGINE, sizeof *sc);
    if (sc == NULL) {
        fprintf(stderr, "tickcore selfcheck: out of memory at start-up\n");
        return 1;
    }
    sc->items = items;
    sc->batch = (uint32_t)batch;
    sc->inject_churn = inject_churn;
    int rc = ring_init(&sc->ring, "selfcheck.batches", MEM_TAG_RING, sizeof(batch_desc_t), 1024,
                       RING_WAIT_BLOCK);
    if (rc == 0)
        rc = arena_init(&sc->arena, "selfcheck.scratch", MEM_TAG_ENGINE,
                        batch * sizeof(uint64_t) + 64, ARENA_FIXED);
    if (rc == 0)
        rc = pool_init(&sc->pool, "selfcheck.orders", MEM_TAG_BOOK, sizeof(order_obj_t), 0,
                       LIVE_ORDERS);
    void *leak = inject_leak ? mem_alloc(MEM_TAG_JOURNAL, 1000) : NULL;
    if (rc != 0) {
        fprintf(stderr, "tickcore selfcheck: start-up failed: %s\n", strerror(-rc));
        ring_fini(&sc->ring);
        arena_fini(&sc->arena);
        pool_fini(&sc->pool);
        mem_free(MEM_TAG_ENGINE, sc, sizeof *sc);
        return 1;
    }
    /* Snapshots are static: the report itself must not allocate or show up as live. */
    static mem_snapshot_t before_s, after_s, end_s;
    mem_snapshot_t *before = &before_s, *after = &after_s, *end = &end_s;
    mem_seal();
    mem_snapshot(before);

    double t0 = clock_mono_s();
    pthread_t prod, cons;
    if (pthread_create(&cons, NULL, consumer, sc) != 0 ||
        pthread_create(&prod, NULL, producer, sc) != 0) {
        fprintf(stderr, "tickcore selfcheck: cannot start threads\n");
        return 1;
    }
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    double secs = clock_mono_s() - t0;
    mem_snapshot(after);

    uint64_t want_sum = items % 2 ? items * ((items - 1) / 2) : (items / 2) * (items - 1);
    uint64_t want_xor = 0;
    for (uint64_t v = 0; v < items; v++)
        want_xor ^= v * 0x9E3779B97F4A7C15ull;
    bool ok =
        sc->sum == want_sum && sc->xorsum == want_xor && sc->seen == items && sc->order_errors == 0;
    uint64_t steady_allocs = after->total.allocs - before->total.allocs;

    /* Teardown, then the leak check on what is left. */
    uint64_t batches = sc->batches, seen = sc->seen, errors = sc->order_errors, sum = sc->sum;
    if (sc->churned)
        mem_free(MEM_TAG_ENGINE, sc->churned, sc->churned_size);
    ring_fini(&sc->ring);
    arena_fini(&sc->arena);
    pool_fini(&sc->pool);
    mem_free(MEM_TAG_ENGINE, sc, sizeof *sc);
    (void)leak; /* --inject-leak: deliberately never freed */
    mem_snapshot(end);
    memcpy(end->objs, after->objs, sizeof end->objs); /* objects as they were at the end */
    end->nobjs = after->nobjs;
    int status = ok ? mem_exit_status(end) : 1;

    if (json) {
        printf("{\"command\":\"selfcheck\",\"items\":%" PRIu64 ",\"batches\":%" PRIu64
               ",\"seconds\":%.6f,\"items_per_s\":%.0f,\"checksum_ok\":%s,"
               "\"allocs_after_seal\":%" PRIu64 ",\"backend\":\"%s\",\"memory\":",
               seen, batches, secs, (double)seen / secs, ok ? "true" : "false", steady_allocs,
               mem_backend_name());
        mem_report_json(stdout, end, MEM_REPORT_LEAKS);
        printf(",\"exit_status\":%d}\n", status);
    } else {
        printf("tickcore selfcheck: %" PRIu64 " items in %" PRIu64
               " batches, producer -> 1024-slot ring -> consumer with arena scratch and pooled "
               "objects\n",
               seen, batches);
        printf("  checksum: %s (sum %" PRIu64 ", expected %" PRIu64 "; order errors %" PRIu64 ")\n",
               ok ? "ok" : "MISMATCH", sum, want_sum, errors);
        printf("  time: %.3f s, %.1f M items/s\n", secs, (double)seen / secs / 1e6);
        printf("  allocations while running (after the seal): %" PRIu64 "%s\n", steady_allocs,
               steady_allocs ? "  <-- churn" : " (steady state allocates nothing)");
        printf("  allocator: %s\n", mem_backend_name());
        mem_report_text(stdout, end, MEM_REPORT_LEAKS);
    }
    fflush(stdout);
    return status;
}
