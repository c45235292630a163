/*
 * bench_util: machine description, medians and the count variables for the benchmarks.
 * Reads /proc/cpuinfo and uname(2) once per call; nothing here is on a measured path.
 */
#include "bench/bench_util.h"

#include "cli/args.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

void bench_print_machine(FILE *f)
{
    char model[256] = "unknown cpu";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci)) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ' || *c == '\t')
                        c++;
                    snprintf(model, sizeof model, "%s", c);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(ci);
    }
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(f, "machine: %s, %ld cores online, Linux %s, %s, %s\n", model,
            sysconf(_SC_NPROCESSORS_ONLN), u.release,
#if defined(__clang__)
            "clang " __clang_version__,
#elif defined(__GNUC__)
            "gcc " __VERSION__,
#else
            "cc",
#endif
            date);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

uint64_t bench_env_count(const char *name, uint64_t def)
{
    const char *e = getenv(name);
    if (!e || !*e)
        return def;
    uint64_t v;
    if (args_parse_count(e, &v) != 0 || v == 0) {
        fprintf(stderr, "%s: not a count: %s (expected e.g. 2000000 or 2e6)\n", name, e);
        exit(2);
    }
    return v;
}

int bench_runs(int def)
{
    uint64_t n = bench_env_count("TICKCORE_BENCH_RUNS", (uint64_t)def);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int bench_runs_max(int def, int max)
{
    int n = bench_runs(def);
    return n > max ? max : n;
}
