/*
 * bench_util: what every benchmark in bench/ shares: the machine line printed before any
 * figure, a monotonic clock, the median of repeated runs, and the reading of the count and
 * size variables ($TICKCORE_BENCH_RUNS, _EVENTS, _MB, ...: "2000000" or "2e6", a bad value
 * is an error, not a silent default). Benchmarks compare ratios within one run because the
 * machine is shared and noisy; absolute figures are for the record only.
 */
#ifndef TICKCORE_BENCH_UTIL_H
#define TICKCORE_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Print "machine: <cpu model>, <n> cores online, <kernel>, <compiler>, <date>" to f. */
void bench_print_machine(FILE *f);
/* Median of v[0..n) (sorts v in place). n must be > 0. */
double bench_median(double *v, size_t n);
/* $name as a count (args_parse_count: "2000000", "2e6", "500k", "10M"); def when unset or
 * empty. Anything else, or 0: "NAME: not a count: VALUE (...)" on stderr and exit(2). */
uint64_t bench_env_count(const char *name, uint64_t def);
/* Number of repeated runs: bench_env_count("TICKCORE_BENCH_RUNS", def), at most INT_MAX. */
int bench_runs(int def);
/* bench_runs(def), at most max (the size of a bench's per-run arrays). */
int bench_runs_max(int def, int max);

#endif
