/*
 * bench_gen: generation rate of the synthetic ITCH market (ingest/gen), 10^7 messages by default
 * ($TICKCORE_BENCH_MESSAGES), 500 symbols: with no output at all (the model and the encoder
 * alone), to a plain file in /tmp (1 MiB buffer, write(2)), and gzip-compressed (ISA-L level 1).
 * Figures are medians of several runs of gen_generate (start-up and the truth file excluded);
 * the thread's CPU time is shown next to the wall time, since the machine is shared. Files go to
 * a fresh directory under /tmp and are removed after each run.
 */
#include "base/clock.h"
#include "bench/bench_util.h"
#include "mem/mem.h"
#include "sim/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct variant {
    const char *name;
    const char *file; /* NULL: no output */
    bool gzip;
} variant_t;

int main(void)
{
    bench_print_machine(stdout);
    int runs = bench_runs_max(3, 32);
    uint64_t messages = bench_env_count("TICKCORE_BENCH_MESSAGES", 10000000);
    char dir[] = "/tmp/tickcore-bench-gen-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench_gen: mkdtemp");
        return 1;
    }
    static const variant_t variants[] = {
        {"no output (model + encoder)", NULL, false},
        {"plain file (write)", "bench.itch", false},
        {"gzip file (ISA-L level 1)", "bench.itch.gz", true},
    };
    printf("synthetic ITCH day: %llu messages, 500 symbols, 10 sectors, default mix; median of "
           "%d runs\n\n",
           (unsigned long long)messages, runs);
    printf("%-30s %12s %12s %10s %14s %12s\n", "output", "M msg/s", "M msg/s CPU", "MB/s",
           "file bytes", "allocs/run");
    int status = 0;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        double wall[32], cpu[32];
        uint64_t file_bytes = 0, bytes = 0, allocs = 0;
        char path[128];
        for (int r = 0; r < runs; r++) {
            gen_cfg_t cfg;
            gen_cfg_default(&cfg);
            cfg.messages = messages;
            cfg.gzip = variants[v].gzip;
            cfg.truth = false;
            if (variants[v].file) {
                snprintf(path, sizeof path, "%s/%s", dir, variants[v].file);
                cfg.out = path;
            }
            gen_t *g;
            char err[256];
            if (gen_create(&g, &cfg, err, sizeof err) != 0) {
                fprintf(stderr, "bench_gen: %s\n", err);
                status = 1;
                break;
            }
            static gen_stats_t st;
            mem_snapshot_t before, after;
            mem_snapshot(&before);
            double c0 = clock_thread_cpu_s();
            int rc = gen_generate(g, &st);
            cpu[r] = clock_thread_cpu_s() - c0;
            mem_snapshot(&after);
            wall[r] = st.seconds;
            gen_destroy(g);
            if (variants[v].file)
                unlink(path);
            if (rc) {
                fprintf(stderr, "bench_gen: %s\n", st.error);
                status = 1;
                break;
            }
            file_bytes = st.bytes_written;
            bytes = st.bytes;
            allocs += after.total.allocs - before.total.allocs;
        }
        if (status)
            break;
        double w = bench_median(wall, (size_t)runs), c = bench_median(cpu, (size_t)runs);
        printf("%-30s %12.1f %12.1f %10.0f %14llu %12llu\n", variants[v].name,
               (double)messages / w / 1e6, (double)messages / c / 1e6, (double)bytes / w / 1e6,
               (unsigned long long)file_bytes, (unsigned long long)(allocs / (uint64_t)runs));
    }
    rmdir(dir);
    mem_snapshot_t s;
    mem_snapshot(&s);
    printf("\nMB/s counts ITCH bytes before compression. mem accounting after teardown: %lld live "
           "bytes in tag ingest (must be 0)\n",
           (long long)s.tag[MEM_TAG_INGEST].live);
    return status || s.tag[MEM_TAG_INGEST].live != 0;
}
