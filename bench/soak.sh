#!/usr/bin/env bash
# bench/soak.sh [TICKCORE]: the soak. One generated day (SOAK_MESSAGES, default 10M messages,
# 500 symbols) is replayed SOAK_PASSES (default 10) times back to back in one process, each pass
# a new session; resident memory is sampled every 0.1 s (--rss-log). After the first pass
# (warm-up) RSS must stay flat: growth below 1%, and no allocation after the seal (--strict
# exits 3 otherwise). RSS and throughput over time are plotted with gnuplot to
# build/soak/soak.png. Prints the figures; exits 1 if the memory line is not flat.
set -euo pipefail
bin=${1:-build/release/tickcore}
out=${SOAK_OUT:-build/soak}
msgs=${SOAK_MESSAGES:-10M}
passes=${SOAK_PASSES:-10}
day=${SOAK_DAY:-/tmp/tickcore-soak-$msgs.itch}
mkdir -p "$out"
[ -f "$day" ] || "$bin" gen --messages "$msgs" --symbols 500 --sectors 10 --no-truth --out "$day" \
    > /dev/null
set +e
"$bin" replay --no-progress --strict --repeat "$passes" --rss-log "$out/rss.log" "$day" \
    > "$out/report.txt" 2>&1
rc=$?
set -e
grep -E '^tickcore replay:|allocations while replaying|leak check|peak RSS' "$out/report.txt" || true
[ "$rc" -eq 0 ] || { echo "soak: replay exited $rc (see $out/report.txt)"; exit 1; }
per_pass=$(awk 'END { print int($3 / '"$passes"') }' "$out/rss.log")
# After the first pass: the first and the last sample, the lowest and the highest.
awk -v warm="$per_pass" '
    $3 >= warm { if (!n++) first = $2; last = $2; if ($2 > hi) hi = $2; if (lo == "" || $2 < lo) lo = $2 }
    END {
        if (n < 2) { print "soak: too few samples after warm-up"; exit 1 }
        g = (last - first) / first * 100; span = (hi - lo) / first * 100
        printf "soak: %d samples after warm-up; RSS first %.1f MiB, last %.1f MiB, growth %+.3f%%, range %.3f%%\n",
            n, first / 1048576, last / 1048576, g, span
        if (g > 1 || span > 1) { print "soak: RSS is not flat (limit 1%)"; exit 1 }
    }' "$out/rss.log"
if command -v gnuplot > /dev/null; then
    awk 'NR > 1 { dt = $1 - t; if (dt > 0) print $1, $2 / 1048576, ($3 - m) / dt / 1e6 } { t = $1; m = $3 }' \
        "$out/rss.log" > "$out/soak.dat"
    gnuplot <<GP
set terminal pngcairo size 1000,500 noenhanced
set output "$out/soak.png"
set title "tickcore soak: $passes x $msgs messages in one process"
set xlabel "seconds"
set ylabel "RSS (MiB)"
set y2label "throughput (M messages/s)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key bottom right
plot "$out/soak.dat" using 1:2 with lines lw 2 title "RSS", \
     "$out/soak.dat" using 1:3 axes x1y2 with lines title "throughput"
GP
    echo "soak: plot $out/soak.png"
fi
