#!/usr/bin/env bash
# tests/run.sh STAGE RESULTS WRAPPER BINARY...
# Runs each cmocka test binary (under WRAPPER, e.g. valgrind, or "" for none), keeps its output
# in build/test-logs/STAGE/, and appends one line per binary to RESULTS:
#   STAGE BINARY PASSED FAILED SKIPPED
# A binary that exits non-zero with no failed test counted (a sanitizer or valgrind error, a
# crash) counts one failure. Prints one line per binary and the log tail of failures. Always
# exits 0: tests/summary.sh decides.
set -u
stage=$1 results=$2 wrapper=$3
shift 3
logdir=build/test-logs/$stage
mkdir -p "$logdir" "$(dirname "$results")"
for bin in "$@"; do
    name=$(basename "$bin")
    log=$logdir/$name.log
    start=$EPOCHREALTIME
    if [ ! -x "$bin" ]; then
        echo "missing test binary $bin" > "$log"
        rc=127
    else
        # A hang is a failure, not a stuck CI: each binary gets at most TEST_TIMEOUT seconds.
        # shellcheck disable=SC2086
        timeout --kill-after=10 "${TEST_TIMEOUT:-600}" $wrapper "$bin" > "$log" 2>&1 < /dev/null
        rc=$?
        [ "$rc" -eq 124 ] && echo "tests/run.sh: timed out after ${TEST_TIMEOUT:-600} s" >> "$log"
    fi
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    passed=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    failed=$(grep -aoE '^\[  FAILED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | tail -1)
    skipped=$(grep -aoE '^\[  SKIPPED \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | tail -1)
    passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0}
    note=""
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
        note=" (exit status $rc: crash, time-out, sanitizer or valgrind error)"
    fi
    echo "$stage $name $passed $failed $skipped" >> "$results"
    printf '  %-11s %-22s %4d passed, %d failed, %d skipped  %5ss%s\n' \
        "$stage" "$name" "$passed" "$failed" "$skipped" "$secs" "$note"
    if [ "$failed" -ne 0 ]; then
        echo "    ---- last lines of $log ----"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
done
exit 0
