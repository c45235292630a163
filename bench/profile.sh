#!/usr/bin/env bash
# bench/profile.sh TOOL TICKCORE: one profiler run of `tickcore replay` on a small generated day
# (PROFILE_MESSAGES, default 1M messages, 200 symbols), output under build/profile/, then the
# line that matters, set beside what tickcore's own counters say. TOOL is one of:
#   heaptrack  allocations counted by heaptrack for one day and for the same day replayed 3
#              times: equal counts mean 0 allocations per message after start-up
#   massif     peak heap by valgrind massif, beside tickcore's own peak of live bytes
#   memcheck   valgrind memcheck: errors and bytes in use at exit (must be 0 and 0)
#   perf       perf record (task-clock: software events only here), the top functions
#   callgrind  instructions per message and the top functions
set -euo pipefail
tool=$1
bin=${2:-build/tickcore}
out=build/profile
msgs=${PROFILE_MESSAGES:-1M}
day=$out/day.itch
mkdir -p "$out"
[ -f "$day" ] || "$bin" gen --messages "$msgs" --symbols 200 --sectors 8 --no-truth --out "$day" \
    > /dev/null
# capacities for a 200-symbol day: keeps valgrind runs short
small=(--no-progress --set book.max_orders=400000 --set book.max_levels=200000
       --set symbols.max_symbols=1000 --set matrix.symbols=256 --set pipeline.workers=1)
ours() { grep -E "$1" "$2" | head -n 1 | sed 's/^ *//'; }
case $tool in
heaptrack)
    for rep in 1 3; do
        rm -f "$out"/heaptrack.$rep.*
        TICKCORE_MEM_BACKEND=libc heaptrack -o "$out/heaptrack.$rep" "$bin" replay "${small[@]}" \
            --repeat $rep "$day" > "$out/heaptrack.$rep.report" 2>&1
        f=$( (ls "$out"/heaptrack.$rep.*zst "$out"/heaptrack.$rep.*gz 2>/dev/null || true) | head -n 1)
        heaptrack_print -f "$f" > "$out/heaptrack.$rep.txt" 2>/dev/null || true
        n[$rep]=$(awk '/^calls to allocation functions:/ { print $5 }' "$out/heaptrack.$rep.txt")
    done
    leak=$(awk '/^total memory leaked:/ { print $4 }' "$out/heaptrack.1.txt")
    echo "heaptrack: ${n[1]} allocation calls for 1 day, ${n[3]} for the same day 3 times" \
         "-> $(( ${n[3]} - ${n[1]} )) allocations for 2 more days of messages" \
         "(leaked at exit: $leak, all outside tickcore's tags: C library and OpenBLAS start-up)"
    echo "tickcore:  $(ours 'allocations while replaying' "$out/heaptrack.3.report")"
    ;;
massif)
    valgrind --tool=massif --massif-out-file="$out/massif.out" "$bin" replay "${small[@]}" "$day" \
        > "$out/massif.report" 2>&1
    ms_print "$out/massif.out" > "$out/massif.txt"
    peak=$(awk '/^ *[0-9]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+$/ { gsub(",", "", $3); if ($3 + 0 > p + 0) p = $3 + 0 } END { printf "%d", p }' "$out/massif.txt")
    echo "massif:    peak heap $peak bytes ($(awk -v p="$peak" 'BEGIN { printf "%.2f MiB", p / 1048576 }'))"
    echo "tickcore:  $(ours '^  total ' "$out/massif.report")  (allocated = peak: all at start-up)"
    ;;
memcheck)
    valgrind --error-exitcode=1 --leak-check=full "$bin" replay "${small[@]}" "$day" \
        > "$out/memcheck.report" 2>&1 || true
    echo "memcheck:  $(grep -oE 'ERROR SUMMARY: [0-9,]+ errors' "$out/memcheck.report"), $(grep -oE 'in use at exit: [0-9,]+ bytes in [0-9,]+ blocks' "$out/memcheck.report")"
    echo "tickcore:  $(ours 'leak check' "$out/memcheck.report")"
    ;;
perf)
    # five sessions of the day, so the steady state outweighs the start-up (prefaulting)
    perf record -e task-clock -g -o "$out/perf.data" "$bin" replay "${small[@]}" --repeat 5 \
        "$day" > "$out/perf.report" 2>&1
    perf report -i "$out/perf.data" --stdio --no-children --percent-limit 2 2>/dev/null \
        > "$out/perf.txt" || true
    grep -E '^ +[0-9.]+%' "$out/perf.txt" | head -n 10 > "$out/perf.top" || true
    echo "perf:      top functions by task-clock samples (build/profile/perf.data):"
    sed 's/^/  /' "$out/perf.top"
    echo "tickcore:  $(ours 'bottleneck' "$out/perf.report")"
    ;;
callgrind)
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "$bin" replay \
        "${small[@]}" "$day" > "$out/callgrind.report" 2>&1
    callgrind_annotate "$out/callgrind.out" > "$out/callgrind.txt" 2> /dev/null || true
    ir=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' "$out/callgrind.txt")
    m=$(awk '/^tickcore replay:/ { print $5 }' "$out/callgrind.report")
    echo "callgrind: $ir instructions for $m messages: $(awk -v i="$ir" -v m="$m" 'BEGIN { printf "%.0f", i / m }') instructions per message (all threads, start-up included)"
    grep -E '^ *[0-9,]+ \(' "$out/callgrind.txt" | sed -n '2,7p' | sed 's/^/  /' || true
    ;;
*)
    echo "usage: bench/profile.sh heaptrack|massif|memcheck|perf|callgrind [TICKCORE]" >&2
    exit 2
    ;;
esac
