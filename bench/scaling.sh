#!/bin/sh
# scaling.sh: how the engine scales with shard workers on this machine. Builds the release
# benchmark and runs bench_pipeline unchanged: K = 1, 2, 4, 8 workers interleaved over several
# rounds (medians), wall msg/s, CPU seconds per 10^6 messages per stage from per-thread CPU
# clocks, and a projection to 16 cores from those costs. Run it on the 2-core CI box and on a
# 16-core server and compare the CPU columns (they should agree) and the wall ratios (they should
# not: on 2 cores the threads share them).
#   bench/scaling.sh [messages] [rounds]     (defaults 2e7 and 3)
# Environment: TICKCORE_BENCH_DAY (the generated day, kept; default
# /tmp/tickcore-bench-day-<messages>.itch). Output: stdout, and $TMPDIR/tickcore-scaling-<host>.txt.
set -eu
cd "$(dirname "$0")/.."
msgs=${1:-2e7}
rounds=${2:-3}
make -s -j"$(nproc)" RELEASE=1 build/release/bench/bench_pipeline
day=${TICKCORE_BENCH_DAY:-/tmp/tickcore-bench-day-$msgs.itch}

out=${TMPDIR:-/tmp}/tickcore-scaling-$(hostname).txt
TICKCORE_BENCH_DAY=$day TICKCORE_BENCH_MESSAGES=$msgs TICKCORE_BENCH_RUNS=$rounds \
    build/release/bench/bench_pipeline | tee "$out"
echo "(written to $out)"
