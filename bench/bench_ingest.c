/*
 * bench_ingest: the decoding half of replay on a big generated file from the page cache.
 *   1. stream (io_uring reader + ITCH decoder), messages/s and GB/s;
 *   2. the same with the plain pread() reader, as a ratio (io_uring must not be slower);
 *   3. raw reading without decoding: io_uring reader vs a read() loop on the same buffer size;
 *   4. gzip: the same day compressed (ISA-L level 1 by the generator), inflated and decoded,
 *      as compressed MB/s and messages/s.
 * The file is generated once (TICKCORE_BENCH_FILE names it; default /tmp/tickcore-bench-1g.itch,
 * kept for the next run) with TICKCORE_BENCH_MB megabytes (default 1024). Each figure is the
 * median of TICKCORE_BENCH_RUNS runs (default 5); a warm-up pass fills the page cache first.
 * Allocations after the seal are counted and printed beside the figures (they must be 0).
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "ingest/stream.h"
#include "mem/mem.h"
#include "sim/gen.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int ensure_file(const char *path, uint64_t mb, bool gzip)
{
    uint64_t have = file_size(path);
    if (have > 0)
        return 0;
    gen_cfg_t cfg;
    gen_cfg_default(&cfg);
    cfg.out = path;
    cfg.gzip = gzip;
    cfg.truth = false;
    /* about 29 bytes per message with the default mix */
    cfg.messages = mb * 1000000 / 29;
    gen_stats_t st;
    fprintf(stderr, "bench_ingest: generating %s (%llu messages)...\n", path,
            (unsigned long long)cfg.messages);
    int rc = gen_run(&cfg, &st);
    if (rc < 0) {
        fprintf(stderr, "bench_ingest: gen: %s\n", st.error);
        return rc;
    }
    fprintf(stderr, "bench_ingest: %llu messages, %.0f MB in %.1f s (%.1f M msg/s)\n",
            (unsigned long long)st.messages, (double)st.bytes_written / 1e6, st.seconds,
            (double)st.messages / st.seconds / 1e6);
    return 0;
}

typedef struct result {
    double secs;
    uint64_t msgs, bytes;
} result_t;

/* One pass of the stream over the file; returns seconds. */
static double stream_pass(stream_t *s, const char *path, uint64_t *msgs, uint64_t *bytes)
{
    double t0 = clock_mono_s();
    if (stream_open(s, path) < 0) {
        fprintf(stderr, "bench_ingest: %s\n", s->err);
        exit(1);
    }
    ev_t *ev;
    size_t n;
    uint64_t m = 0, sum = 0;
    int rc;
    while ((rc = stream_next(s, &ev, &n)) > 0) {
        m += n;
        sum += ev[n - 1].ts; /* touch the batch */
    }
    if (rc < 0) {
        fprintf(stderr, "bench_ingest: %s\n", s->err);
        exit(1);
    }
    double t = clock_mono_s() - t0;
    *msgs = m;
    *bytes = s->reader.bytes_read;
    stream_close(s);
    if (sum == 42)
        fputc(' ', stderr);
    return t;
}

static result_t bench_stream(const char *path, bool force_pread, int runs)
{
    stream_cfg_t cfg;
    stream_cfg_default(&cfg);
    cfg.reader.force_pread = force_pread;
    symtab_t sy;
    stream_t s;
    if (symtab_init(&sy, 65535) < 0 || stream_init(&s, &cfg, &sy) < 0) {
        fprintf(stderr, "bench_ingest: init failed\n");
        exit(1);
    }
    double t[64];
    result_t r = {0};
    mem_seal();
    for (int i = 0; i < runs; i++) {
        symtab_clear(&sy);
        t[i] = stream_pass(&s, path, &r.msgs, &r.bytes);
    }
    mem_unseal();
    r.secs = bench_median(t, (size_t)runs);
    stream_fini(&s);
    symtab_fini(&sy);
    return r;
}

/* Raw reading, no decoding: the reader's chunks, or a read() loop into one buffer. */
static double raw_reader(const char *path, bool force_pread, int runs, uint64_t *bytes)
{
    reader_cfg_t cfg;
    reader_cfg_default(&cfg);
    cfg.force_pread = force_pread;
    reader_t r;
    if (reader_init(&r, &cfg) < 0)
        exit(1);
    double t[64];
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s();
        reader_open(&r, path);
        reader_chunk_t c;
        uint64_t b = 0;
        int held = -1;
        while (reader_next(&r, &c, NULL, 0) > 0) {
            if (held >= 0)
                reader_release(&r, (uint32_t)held);
            held = (int)c.buf;
            b += c.len;
        }
        if (held >= 0)
            reader_release(&r, (uint32_t)held);
        reader_close(&r);
        t[i] = clock_mono_s() - t0;
        *bytes = b;
    }
    reader_fini(&r);
    return bench_median(t, (size_t)runs);
}

static double raw_read_loop(const char *path, int runs, uint64_t *bytes)
{
    size_t bs = 1u << 20;
    char *buf = mem_alloc_aligned(MEM_TAG_BENCH, bs, 4096);
    double t[64];
    for (int i = 0; i < runs; i++) {
        double t0 = clock_mono_s();
        int fd = open(path, O_RDONLY);
        ssize_t n;
        uint64_t b = 0;
        while ((n = read(fd, buf, bs)) > 0)
            b += (uint64_t)n;
        close(fd);
        t[i] = clock_mono_s() - t0;
        *bytes = b;
    }
    mem_free(MEM_TAG_BENCH, buf, bs);
    return bench_median(t, (size_t)runs);
}

int main(void)
{
    const char *path = getenv("TICKCORE_BENCH_FILE");
    if (!path)
        path = "/tmp/tickcore-bench-1g.itch";
    uint64_t mb = bench_env_count("TICKCORE_BENCH_MB", 1024);
    char gzpath[512];
    snprintf(gzpath, sizeof gzpath, "%s.%llu.gz", path, (unsigned long long)(mb / 4));
    int runs = bench_runs_max(5, 64);
    bench_print_machine(stdout);
    if (ensure_file(path, mb, false) < 0 || ensure_file(gzpath, mb / 4, true) < 0)
        return 1;

    uint64_t bytes = 0;
    raw_read_loop(path, 1, &bytes); /* warm the page cache */
    mem_snapshot_t *s0 = malloc(sizeof *s0), *s1 = malloc(sizeof *s1);
    mem_snapshot(s0);
    result_t u = bench_stream(path, false, runs);
    result_t p = bench_stream(path, true, runs);
    result_t g = bench_stream(gzpath, false, runs);
    mem_snapshot(s1);
    uint64_t churn = s1->total.churn_allocs - s0->total.churn_allocs;
    uint64_t rb = 0, lb = 0;
    double raw_u = raw_reader(path, false, runs, &rb);
    double raw_p = raw_reader(path, true, runs, &rb);
    double loop = raw_read_loop(path, runs, &lb);

    printf("file: %s, %.2f GB, %llu messages (page cache, median of %d runs)\n", path,
           (double)u.bytes / 1e9, (unsigned long long)u.msgs, runs);
    printf("%-44s %10s %9s %8s\n", "", "M msg/s", "GB/s", "ratio");
    printf("%-44s %10.1f %9.2f %8.2f\n", "decode, io_uring reader (registered bufs)",
           (double)u.msgs / u.secs / 1e6, (double)u.bytes / u.secs / 1e9, 1.0);
    printf("%-44s %10.1f %9.2f %8.2f\n", "decode, pread() reader", (double)p.msgs / p.secs / 1e6,
           (double)p.bytes / p.secs / 1e9, p.secs / u.secs);
    printf("%-44s %10s %9.2f %8.2f\n", "raw read, io_uring reader", "-", (double)rb / raw_u / 1e9,
           1.0);
    printf("%-44s %10s %9.2f %8.2f\n", "raw read, pread() reader", "-", (double)rb / raw_p / 1e9,
           raw_p / raw_u);
    printf("%-44s %10s %9.2f %8.2f\n", "raw read, read() loop, 1 MiB", "-", (double)lb / loop / 1e9,
           loop / raw_u);
    printf("gzip (%s, %.0f MB compressed, %llu messages):\n", gzpath, (double)g.bytes / 1e6,
           (unsigned long long)g.msgs);
    printf("%-44s %10.1f %9.3f  (%.0f MB/s of compressed input)\n", "inflate (ISA-L) + decode",
           (double)g.msgs / g.secs / 1e6, (double)file_size(gzpath) / g.secs / 1e9,
           (double)file_size(gzpath) / g.secs / 1e6);
    printf("allocations after the seal while decoding: %llu\n", (unsigned long long)churn);
    printf("(ratio: time relative to the io_uring row above it; > 1 means slower than io_uring)\n");
    free(s0);
    free(s1);
    return churn ? 1 : 0;
}
