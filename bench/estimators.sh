#!/usr/bin/env bash
# bench/estimators.sh [BIN] [DIR]: the correlation estimators measured against the generator's
# truth (issue 14). Generates the demo day (10M messages, 500 symbols, 10 sectors, seed 1) and a
# 2M-message, 100-symbol day (seed 1) in DIR (default build/bench-estimators; kept, reused),
# then replays each day with the default (matrix.estimator = auto: what it picks for the bar) and
# every estimator (close, refresh, subsample K = 2, 5, 10, twoscale K = 2, 3, 4, 5, 10), without
# shrinkage and with Ledoit-Wolf shrinkage toward constant and toward
# block-constant correlation (ledoit-wolf-block), at bars of 30 s, 1 m and 5 m, the window
# holding the whole session (780, 390, 78 bars). Prints one table: bias (mean estimated - mean true rho), mean
# |error|, its ratio to the floor (the latent one-minute sample correlation, FILE.floor.csv),
# the shrinkage intensity, the ARI of the clusters against the sectors on both days, and the
# cross-section's compute time. TICKCORE_BENCH_QUICK=1: the 1 m bars only.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/tickcore}
dir=${2:-build/bench-estimators}
mkdir -p "$dir"
demo=$dir/demo.itch small=$dir/small.itch
[ -s "$demo.floor.csv" ] || "$bin" gen --messages 10M --symbols 500 --sectors 10 --seed 1 \
    --out "$demo" > /dev/null
[ -s "$small.floor.csv" ] || "$bin" gen --messages 2M --symbols 100 --sectors 10 --seed 1 \
    --out "$small" > /dev/null
bars="30s:780 1m:390 5m:78"
[ "${TICKCORE_BENCH_QUICK:-0}" = 1 ] && bars="1m:390"
out=$dir/results.tsv
: > "$out"
for bw in $bars; do
    bar=${bw%%:*} win=${bw##*:}
    for est in auto close refresh subsample:2 subsample:5 subsample:10 twoscale:2 twoscale:3 \
        twoscale:4 twoscale:5 twoscale:10; do
        name=${est%%:*} k=${est##*:}
        [ "$k" = "$est" ] && k=5
        [ $((2 * k)) -gt "$win" ] && continue
        shrinks="none ledoit-wolf ledoit-wolf-block"
        [ "$name" = auto ] && shrinks=auto
        for shr in $shrinks; do
            set_args=(--bar "$bar" --set matrix.window="$win")
            [ "$name" = auto ] || set_args+=(--set matrix.estimator="$name"
                --set matrix.subsample_grids="$k" --set matrix.shrinkage="$shr")
            d=$("$bin" replay --json --no-progress "${set_args[@]}" "$demo")
            s=$("$bin" replay --json --no-progress "${set_args[@]}" "$small")
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$bar" "$name" "$k" "$shr" "$d" "$s" >> "$out"
        done
    done
done
/usr/bin/python3 - "$out" << 'EOF'
import json, sys
print("demo day: gen --messages 10M --symbols 500 --sectors 10 --seed 1; small day: 2M messages, "
      "100 symbols, seed 1")
print("bias = mean estimated - mean true rho; floor = latent one-minute sample correlation")
hdr = ("bar", "estimator", "shrinkage", "rows", "bias", "mean|err|", "x floor", "lw delta",
       "ARI demo", "ARI 2M/100", "compute ms")
print("%-4s %-20s %-17s %5s %8s %9s %7s %8s %8s %10s %10s" % hdr)
floor = None
for line in open(sys.argv[1]):
    bar, name, k, shr, d, s = line.rstrip("\n").split("\t")
    d, s = json.loads(d)["analytics"], json.loads(s)["analytics"]
    t, ts = d["truth"], s["truth"]
    x = d["xsection"]
    floor = (t["floor_mae"], t["floor_bias"])
    label = name + (" K=%s" % k if name in ("subsample", "twoscale") else "")
    if name == "auto":
        label, shr = "auto: " + x["estimator"], x["shrinkage"]
    lw = x["lw_intensity"]
    print("%-4s %-20s %-17s %5d %+8.4f %9.4f %7.2f %8s %8.3f %10.3f %10.1f" % (
        bar, label, shr, x["rows"], t["bias"], t["mae"], t["mae_over_floor"],
        "-" if lw is None else "%.3f" % lw, t["ari"], ts["ari"], x["seconds"] * 1e3))
if floor:
    print("floor (demo day): mean |error| %.4f, bias %+.4f" % floor)
EOF
