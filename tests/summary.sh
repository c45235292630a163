#!/usr/bin/env bash
# tests/summary.sh RESULTS: totals per stage, one "FAILED stage binary (n): tests" line per
# binary or check that failed (at most 10), then the closing line "N passed, N failed" (with ", N
# skipped" when some were). Exits 1 if anything failed or nothing ran.
set -u
results=$1
if [ ! -s "$results" ]; then
    echo "0 passed, 1 failed"
    echo "no test results in $results" >&2
    exit 1
fi
echo
awk '{p[$1]+=$3; f[$1]+=$4; s[$1]+=$5; if (!($1 in o)) {o[$1]=n++; name[n-1]=$1}}
     END {for (i = 0; i < n; i++) { k = name[i];
          printf "  stage %-11s %5d passed, %d failed, %d skipped\n", k, p[k], f[k], s[k] }}' "$results"
# Name what failed just above the closing line, where a CI log's tail shows it: the stage, the
# binary or check, and for a cmocka binary its failing tests (from its log in build/test-logs/).
awk '$4 > 0 {print $1, $2, $4}' "$results" | head -10 | while read -r stage name nfail; do
    log=build/test-logs/$stage/$name.log
    tests=""
    [ -f "$log" ] && tests=$(grep -aoE '^\[  (FAILED|ERROR) {2,3}\] test_[A-Za-z0-9_]+' "$log" |
        awk '{print $NF}' | sort -u | head -5 | paste -sd ' ')
    echo "  FAILED $stage $name ($nfail)${tests:+: $tests}"
done
read -r passed failed skipped < <(awk '{p+=$3; f+=$4; s+=$5} END {print p+0, f+0, s+0}' "$results")
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
