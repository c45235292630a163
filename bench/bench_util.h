/*
 * bench_util: what every benchmark in bench/ shares: the machine line printed before any
 * figure, a monotonic clock, and the median of repeated runs. Benchmarks compare ratios within
 * one run because the machine is shared and noisy; absolute figures are for the record only.
 */
#ifndef TICKCORE_BENCH_UTIL_H
#define TICKCORE_BENCH_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Print "machine: <cpu model>, <n> cores online, <kernel>, <compiler>, <date>" to f. */
void bench_print_machine(FILE *f);
/* Median of v[0..n) (sorts v in place). n must be > 0. */
double bench_median(double *v, size_t n);
/* Number of repeated runs: $TICKCORE_BENCH_RUNS if set and > 0, else def. */
int bench_runs(int def);

#endif
