#!/usr/bin/env bash
# tests/format_check.sh RESULTS: every tracked .c/.h file as .clang-format lays it out (the check
# of `make format-check`, run by make test so that an unformatted change fails CI instead of piling
# up for a later session). Prints the first offending lines; appends "format format_check PASSED
# FAILED SKIPPED" to RESULTS (skipped when clang-format is not installed). Always exits 0:
# tests/summary.sh decides.
set -u
cd "$(dirname "$0")/.."
results=$1
mkdir -p "$(dirname "$results")"
if ! command -v clang-format > /dev/null; then
    echo "format: clang-format not installed, check skipped"
    echo "format format_check 0 0 1" >> "$results"
    exit 0
fi
mapfile -t files < <(git ls-files '*.c' '*.h' 2> /dev/null)
if [ "${#files[@]}" -eq 0 ]; then
    mapfile -t files < <(find . -path ./build -prune -o -name '*.[ch]' -print)
fi
if out=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
    echo "format: ${#files[@]} files as .clang-format lays them out"
    echo "format format_check 1 0 0" >> "$results"
else
    echo "format: files not as .clang-format lays them out (make format fixes them):"
    grep -oE '^[^: ]+\.[ch]:[0-9]+' <<< "$out" | sort -u -t: -k1,1 | head -20 | sed 's/^/  /'
    echo "format format_check 0 1 0" >> "$results"
fi
exit 0
