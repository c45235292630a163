#!/usr/bin/env bash
# tests/integration.sh RESULTS TICKCORE: runs the real binary the way a user does and checks
# exit codes and reports. Appends "integration <case> P F 0" lines to RESULTS like run.sh.
set -u
results=$1 bin=$2
logdir=build/test-logs/integration
mkdir -p "$logdir"
pass=0 fail=0

check() { # check NAME EXPECTED_STATUS GREP_PATTERN -- COMMAND...
    local name=$1 want=$2 pattern=$3
    shift 4
    local log=$logdir/$name.log
    "$@" > "$log" 2>&1 < /dev/null
    local rc=$?
    if [ "$rc" -eq "$want" ] && { [ -z "$pattern" ] || grep -qE -- "$pattern" "$log"; }; then
        pass=$((pass + 1))
        printf '  %-11s %-40s ok\n' integration "$name"
        echo "integration $name 1 0 0" >> "$results"
    else
        fail=$((fail + 1))
        printf '  %-11s %-40s FAILED (exit %d, wanted %d; wanted /%s/)\n' integration "$name" \
            "$rc" "$want" "$pattern"
        tail -n 30 "$log" | sed 's/^/    /'
        echo "integration $name 0 1 0" >> "$results"
    fi
}

check selfcheck_clean 0 'leak check: OK, 0 live bytes in every tag' -- \
    "$bin" selfcheck --strict --items 2000000
check selfcheck_no_churn 0 'allocations while running \(after the seal\): 0 ' -- \
    "$bin" selfcheck --items 100000
check selfcheck_churn_is_caught 3 'churn site engine/selfcheck\.c:[0-9]+ \[engine\]: 1 allocations' -- \
    "$bin" selfcheck --strict --inject-churn --items 10000
check selfcheck_leak_is_caught 3 'LEAK: tag journal holds 1000 B in 1 blocks' -- \
    "$bin" selfcheck --strict --inject-leak --items 10000
check selfcheck_lenient_churn_reported 0 'allocations after the seal: 1 churn' -- \
    "$bin" selfcheck --inject-churn --items 10000
check selfcheck_json_leak_check '0' '"leak_check":"ok"' -- "$bin" selfcheck --json --items 10000
if command -v python3 > /dev/null; then
    check selfcheck_json_parses 0 '' -- \
        bash -c "'$bin' selfcheck --json --items 10000 | python3 -c 'import json,sys; json.load(sys.stdin)'"
fi
check selfcheck_under_valgrind_backend 0 'allocator: glibc malloc' -- \
    env TICKCORE_MEM_BACKEND=libc "$bin" selfcheck --strict --items 10000
# External truth: valgrind memcheck (which makes mem/ use glibc malloc, so it sees every block)
# must agree with the built-in leak check, both when it is clean and when it is not.
if command -v valgrind > /dev/null; then
    check memcheck_agrees_clean 0 'in use at exit: 0 bytes in 0 blocks' -- \
        valgrind --error-exitcode=1 --leak-check=full "$bin" selfcheck --strict --items 20000
    check memcheck_agrees_leak 0 'definitely lost: 1,000 bytes in 1 blocks' -- \
        valgrind --leak-check=full "$bin" selfcheck --inject-leak --items 20000
    check memcheck_leak_also_in_report 0 'LEAK: tag journal holds 1000 B in 1 blocks' -- \
        valgrind --leak-check=full "$bin" selfcheck --inject-leak --items 20000
fi
check usage_unknown_command 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
check usage_bad_option 2 'usage: tickcore selfcheck' -- "$bin" selfcheck --no-such-option
check usage_bad_number 2 "--items wants a positive integer, got 'ten'" -- "$bin" selfcheck --items ten
check help 0 'selfcheck' -- "$bin" --help
exit 0
