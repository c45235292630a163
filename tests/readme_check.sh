#!/usr/bin/env bash
# tests/readme_check.sh RESULTS BIN: the README kept true to the repository. Checks, each one line
# of RESULTS ("readme NAME PASSED FAILED 0"):
#   links        every relative link and every path in backquotes that looks like a file of this
#                tree exists; nothing points outside the repository (../) or at issue numbers
#   options      every `tickcore CMD ... --opt` in the README's code blocks is an option that
#                `tickcore CMD --help` lists
#   tests        every test binary the Makefile builds (tests/unit/test_*.c), every make test
#                stage and every TSan test is named in the README
#   benches      every bench/bench_*.c and bench script is named in the README, and every
#                bench_X the README names exists
set -u
results=$1 bin=$2
cd "$(dirname "$0")/.."
readme=README.md
fails=0
report() { # NAME PROBLEMS...
    local name=$1; shift
    if [ $# -eq 0 ]; then
        echo "  readme      $name ok"; echo "readme $name 1 0 0" >> "$results"
    else
        echo "  readme      $name FAILED"; printf '    %s\n' "$@"; echo "readme $name 0 1 0" >> "$results"
        fails=$((fails + 1))
    fi
}

# ---- links -----------------------------------------------------------------------------------
probs=()
while read -r target; do
    target=${target%%#*}
    [ -z "$target" ] && continue
    case $target in http*|mailto:*) continue ;; esac
    [[ $target == ../* ]] && { probs+=("link outside the repository: $target"); continue; }
    [ -e "$target" ] || probs+=("link to a missing path: $target")
done < <(grep -oE '\]\([^)]+\)' "$readme" | sed -E 's/^\]\((.*)\)$/\1/')
while read -r path; do
    # a module may be named without its extension (`cli/args`)
    [ -e "$path" ] || [ -e "$path.c" ] || [ -e "$path.h" ] || probs+=("names a missing file: $path")
done < <(grep -oE '`(mem|base|config|event|ingest|net|sim|analytics|engine|server|cli|tests|bench)/[A-Za-z0-9_./-]+`' "$readme" |
         tr -d '`' | grep -v '[<>*{]' | sort -u)
if grep -nE '\.\./|[Ii]ssue #?[0-9]+' "$readme" >/tmp/readme_refs.$$; then
    while read -r l; do probs+=("reference outside the repository: $l"); done </tmp/readme_refs.$$
fi
rm -f /tmp/readme_refs.$$
report links "${probs[@]}"

# ---- options ---------------------------------------------------------------------------------
probs=()
declare -A known=()
for cmd in gen replay serve feed selfcheck; do
    known[$cmd]=" $("$bin" "$cmd" --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | tr '\n' ' ') "
done
# Code blocks only: lines between ``` fences.
while IFS= read -r line; do
    cmd=$(sed -nE 's/.*tickcore (gen|replay|serve|feed|selfcheck)\b.*/\1/p' <<<"$line")
    [ -z "$cmd" ] && continue
    seg=${line#*tickcore $cmd}
    seg=${seg%%#*}; seg=${seg%%|*}; seg=${seg%%;*}
    for opt in $(grep -oE -- '(^| )--[a-z][a-z0-9-]*' <<<"$seg"); do
        [[ ${known[$cmd]} == *" $opt "* ]] || probs+=("tickcore $cmd has no option $opt: $line")
    done
done < <(awk '/^```/ {inblock = !inblock; next} inblock' "$readme")
report options "${probs[@]}"

# ---- tests -----------------------------------------------------------------------------------
probs=()
for t in tests/unit/test_*.c; do
    n=$(basename "$t" .c)
    grep -qw "$n" "$readme" || probs+=("test binary $n (from $t) is not named in the README")
done
for s in $(make -s -n test 2>/dev/null | grep -oE 'tests/run\.sh [a-z+-]+' | awk '{print $2}' | sort -u); do
    grep -qw -- "$s" "$readme" || probs+=("make test stage '$s' is not named in the README")
done
for t in $(sed -nE 's/^TSAN_TESTS := //p' Makefile); do
    grep -qw "$t" "$readme" || probs+=("TSan test $t (Makefile TSAN_TESTS) is not named in the README")
done
for s in tests/*.sh tests/*.py; do
    grep -q "$(basename "$s")" "$readme" || probs+=("test script $s is not named in the README")
done
report tests "${probs[@]}"

# ---- benches ---------------------------------------------------------------------------------
probs=()
for b in bench/bench_*.c bench/*.sh bench/*.py; do
    n=$(basename "$b"); n=${n%.c}
    [ "$n" = bench_util ] && continue
    grep -qw -- "$n" "$readme" || probs+=("benchmark $b is not named in the README")
done
for n in $(grep -oE '\bbench_[a-z_]+' "$readme" | sort -u); do
    [ "$n" = bench_util ] && continue
    [ -e "bench/$n.c" ] || probs+=("the README names $n but bench/$n.c does not exist")
done
report benches "${probs[@]}"
exit 0
