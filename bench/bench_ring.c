/*
 * bench_ring: SPSC throughput of mem/ring between two threads, in items per second, for 8-byte
 * items: single-item (ring_try_push / ring_try_pop, falling back to ring_claim / ring_wait_peek
 * to wait in the ring's mode when the ring is full or empty) and batched (claim/commit up to 64,
 * peek/release up to 64), each in RING_WAIT_SPIN and RING_WAIT_BLOCK. The main thread is the
 * producer and a second thread the consumer; with two or more CPUs they are pinned to
 * different ones. Each variant owns one ring, allocated before mem_seal() and reused by all its
 * runs; the runs must allocate nothing (checked through mem_snapshot, reported, and a failure).
 * The consumer checks the sum of the sequence it receives, so a lost or repeated item fails the
 * run. Figures: median of bench_runs(5) runs of $TICKCORE_BENCH_ITEMS (default 2*10^7) items,
 * and the ratio to the single-item spin variant, which is what to compare on a noisy machine.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/mem.h"
#include "mem/ring.h"

#define RING_SLOTS 8192
#define BATCH      64

typedef struct variant {
    const char *name;
    bool batched;
    ring_wait_t wait;
} variant_t;

static const variant_t variants[] = {
    {"single spin", false, RING_WAIT_SPIN},
    {"single block", false, RING_WAIT_BLOCK},
    {"batch64 spin", true, RING_WAIT_SPIN},
    {"batch64 block", true, RING_WAIT_BLOCK},
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

typedef struct run {
    ring_t *ring;
    uint64_t n;
    bool batched;
    int cpu; /* -1: not pinned */
    _Atomic bool ready;
    uint64_t sum; /* consumer's result */
} run_t;

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0)
        fprintf(stderr, "bench_ring: cannot pin to cpu %d: %s\n", cpu, strerror(rc));
}

static void *consumer_main(void *arg)
{
    run_t *run = arg;
    ring_t *r = run->ring;
    pin(run->cpu);
    atomic_store_explicit(&run->ready, true, memory_order_release);
    uint64_t got = 0, sum = 0;
    size_t first;
    if (run->batched) {
        while (got < run->n) {
            size_t n = ring_wait_peek(r, BATCH, &first);
            const uint64_t *v = ring_slot(r, first);
            for (size_t i = 0; i < n; i++)
                sum += v[i];
            ring_release(r, n);
            got += n;
        }
    } else {
        while (got < run->n) {
            uint64_t v;
            if (ring_try_pop(r, &v)) {
                sum += v;
                got++;
            } else {
                (void)ring_wait_peek(r, 1, &first); /* wait in the ring's mode */
            }
        }
    }
    run->sum = sum;
    return NULL;
}

static void produce(ring_t *r, uint64_t n, bool batched)
{
    size_t first;
    if (batched) {
        for (uint64_t seq = 0; seq < n;) {
            uint64_t left = n - seq;
            size_t got = ring_claim(r, left < BATCH ? (size_t)left : BATCH, &first);
            uint64_t *v = ring_slot(r, first);
            for (size_t i = 0; i < got; i++)
                v[i] = seq++;
            ring_commit(r, got);
        }
    } else {
        for (uint64_t seq = 0; seq < n; seq++) {
            while (!ring_try_push(r, &seq))
                (void)ring_claim(r, 1, &first); /* wait in the ring's mode */
        }
    }
}

/* One run: items/s, or a negative value if the consumer's sum is wrong. */
static double run_once(ring_t *r, uint64_t n, bool batched, int cpu_cons)
{
    run_t run = {.ring = r, .n = n, .batched = batched, .cpu = cpu_cons};
    pthread_t t;
    int rc = pthread_create(&t, NULL, consumer_main, &run);
    if (rc != 0) {
        fprintf(stderr, "bench_ring: pthread_create: %s\n", strerror(rc));
        exit(1);
    }
    while (!atomic_load_explicit(&run.ready, memory_order_acquire))
        sched_yield();
    double t0 = clock_mono_s();
    produce(r, n, batched);
    pthread_join(t, NULL);
    double dt = clock_mono_s() - t0;
    uint64_t want = n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
    if (run.sum != want) {
        fprintf(stderr, "bench_ring: checksum mismatch: got %" PRIu64 ", want %" PRIu64 "\n",
                run.sum, want);
        return -1.0;
    }
    return (double)n / dt;
}

int main(void)
{
    bench_print_machine(stdout);
    uint64_t n = bench_env_count("TICKCORE_BENCH_ITEMS", 20000000);
    int runs = bench_runs(5);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cpu_prod = ncpu >= 2 ? 0 : -1, cpu_cons = ncpu >= 2 ? 1 : -1;
    pin(cpu_prod);
    printf("ring: SPSC, 8-byte items, %d slots, %" PRIu64 " items/run, median of %d runs, %s\n",
           RING_SLOTS, n, runs,
           cpu_prod >= 0 ? "producer on cpu 0, consumer on cpu 1" : "threads not pinned");
    printf("%-14s %14s %10s %10s %8s %7s %10s %10s\n", "variant", "items/s", "min", "max",
           "ns/item", "ratio", "full-waits", "empty-waits");

    double *v = mem_calloc(MEM_TAG_BENCH, (size_t)runs, sizeof *v);
    if (!v) {
        fprintf(stderr, "bench_ring: out of memory\n");
        return 1;
    }
    int status = 0;
    double base = 0;
    for (int k = 0; k < NVARIANTS; k++) {
        const variant_t *var = &variants[k];
        ring_t ring;
        int rc =
            ring_init(&ring, var->name, MEM_TAG_BENCH, sizeof(uint64_t), RING_SLOTS, var->wait);
        if (rc < 0) {
            fprintf(stderr, "bench_ring: ring_init: %s\n", strerror(-rc));
            return 1;
        }
        mem_snapshot_t s0, s1;
        mem_seal();
        mem_snapshot(&s0);
        double lo = 0, hi = 0;
        for (int i = 0; i < runs; i++) {
            v[i] = run_once(&ring, n, var->batched, cpu_cons);
            if (v[i] < 0)
                status = 1;
            lo = i == 0 || v[i] < lo ? v[i] : lo;
            hi = i == 0 || v[i] > hi ? v[i] : hi;
        }
        mem_snapshot(&s1);
        mem_unseal();
        const mem_obj_row_t *row = NULL;
        for (unsigned i = 0; i < s1.nobjs; i++)
            if (strcmp(s1.objs[i].name, var->name) == 0)
                row = &s1.objs[i];
        double med = bench_median(v, (size_t)runs);
        if (k == 0)
            base = med;
        printf("%-14s %13.1fM %9.1fM %9.1fM %8.2f %7.2f %10" PRIu64 " %10" PRIu64 "\n", var->name,
               med / 1e6, lo / 1e6, hi / 1e6, 1e9 / med, base > 0 ? med / base : 0.0,
               row ? row->st.exhausted : 0, row ? row->st.waits : 0);
        uint64_t allocs = s1.total.allocs - s0.total.allocs;
        uint64_t churn = s1.total.churn_allocs - s0.total.churn_allocs;
        if (allocs || churn) {
            fprintf(stderr, "bench_ring: %s: %" PRIu64 " allocations (%" PRIu64 " churn) in runs\n",
                    var->name, allocs, churn);
            status = 1;
        }
        ring_fini(&ring);
    }
    mem_free(MEM_TAG_BENCH, v, (size_t)runs * sizeof *v);
    mem_snapshot_t end;
    mem_snapshot(&end);
    printf("mem: %" PRIu64 " churn allocations during runs, %u tags with live bytes after fini\n",
           end.total.churn_allocs, mem_leak_count(&end));
    if (end.total.churn_allocs || mem_leak_count(&end))
        status = 1;
    printf("anchors: LMAX Disruptor 26M ops/s (2011 hw), Aeron IPC 30-43M msgs/s; "
           "target >= 50M items/s batched\n");
    return status;
}
