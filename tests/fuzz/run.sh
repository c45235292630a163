#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS FUZZ_BIN...: run each libFuzzer target for SECONDS on its corpus
# build/fuzz/corpus-NAME (seeded by tests/fuzz/seeds.py), and print one line per target: runs,
# seconds, coverage, corpus. A crash or a broken invariant leaves its input in build/fuzz/ and
# makes the exit status 1 (after every target has run). make fuzz calls it.
set -u
secs=$1; shift
cd "$(dirname "$0")/../.." || exit 2
status=0
# fuzz_journal writes files and fsyncs them: on a tmpfs that costs nothing
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
for f in "$@"; do
    name=$(basename "$f")
    corpus=build/fuzz/corpus-${name#fuzz_}
    python3 tests/fuzz/seeds.py "$name" "$corpus" || exit 2
    log=build/fuzz/$name.log
    t0=$(date +%s.%N)
    (cd build/fuzz && ./"$name" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 \
        -timeout=20 "corpus-${name#fuzz_}") > "$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    size=$(ls "$corpus" | wc -l)
    printf '  fuzz  %-14s %10s runs in %5.1f s, %s, corpus %s: %s\n' "$name" "${runs:-?}" \
        "$(echo "$t1 - $t0" | bc)" "${cov:-cov: ?}" "$size" "$([ $rc = 0 ] && echo ok || echo FAILED)"
    if [ $rc != 0 ]; then
        status=1
        grep -E 'ERROR|check failed|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    fi
done
exit $status
