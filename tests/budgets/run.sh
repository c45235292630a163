#!/usr/bin/env bash
# tests/budgets/run.sh [--update] [--results FILE] [--bin BIN]
# The memory budgets stage of make test: runs the replay, serve and selfcheck scenarios with
# BIN (default build/tickcore) and checks every figure against tests/budgets/budgets.tsv
# (tests/budgets/budgets.py says which figures and how). With --results, appends one line per
# scenario, "budgets SCENARIO PASSED FAILED 0" (figures within / over budget), and exits 0 like
# tests/run.sh: tests/summary.sh decides. Without, exits 1 when a figure is over budget.
# --update rewrites budgets.tsv with the measured figures and prints what changed.
set -u
cd "$(dirname "$0")/../.." || exit 2
cmd=check
args=()
for a in "$@"; do
    case $a in
    --update) cmd=update ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$a") ;;
    esac
done
exec python3 tests/budgets/budgets.py "$cmd" "${args[@]}"
