#!/usr/bin/env bash
# serve_ab.sh: query latency under load, two tickcore binaries A/B, interleaved.
#
#   bench/serve_ab.sh BASE_BIN HEAD_BIN [ROUNDS] [RUNS] [MESSAGES]
#
# Runs build/release/bench/bench_serve against each binary in turn (TICKCORE_BIN), ROUNDS times
# (default 5), alternating which side goes first (A B, B A, ...), each with
# TICKCORE_BENCH_SERVE_RUNS=RUNS (default tcp-1m: 1 M msg/s paced over TCP, 1,000 queries/s open
# loop) and TICKCORE_BENCH_SERVE_MESSAGES=MESSAGES (default 3M). Each bench_serve's summary line
# is kept with the 1-minute load average read just before it started; at the end one table per
# run name gives, for each side, the median of each figure over the rounds (ingest M msg/s, UDP
# gaps and lost messages, query p50/p99/p99.9 from the scheduled send, p99 and p99.9 from the
# actual send, the HTTP thread's boost demotions), its range, and the load averages seen. Raw
# outputs stay in build/serve_ab/. Extra environment (TICKCORE_BENCH_SERVE_BOOST) reaches both
# sides alike; A_ENV / B_ENV (e.g. B_ENV=TICKCORE_BENCH_SERVE_BOOST=on) reach one side only, so
# one binary against itself with and without a setting is also an A/B. A_BENCH / B_BENCH (a
# bench_serve binary) give one side another load generator: one server binary with two
# generators is the generator's A/B. On a shared machine the rounds swing widely: compare the
# two sides within this run, not with figures from another. Exit 1 if any bench_serve reported an error (its output is named).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 BASE_BIN HEAD_BIN [ROUNDS] [RUNS] [MESSAGES]" >&2
    exit 2
fi
base=$1 head=$2 rounds=${3:-5} runs=${4:-tcp-1m} msgs=${5:-3M}
bench=build/release/bench/bench_serve
for b in "$base" "$head" "$bench" ${A_BENCH:-} ${B_BENCH:-}; do
    [[ -x $b ]] || { echo "serve_ab: $b: not an executable" >&2; exit 2; }
done
out=build/serve_ab
mkdir -p "$out"
rm -f "$out"/*.out "$out"/rows.tsv
failed=0
echo "serve_ab: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, A=$base ${A_ENV:-} ${A_BENCH:-} B=$head ${B_ENV:-} ${B_BENCH:-}, $rounds rounds of $runs, $msgs messages"
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order="A B"; else order="B A"; fi
    for side in $order; do
        bin=$base extra=${A_ENV:-} sbench=${A_BENCH:-$bench}
        [[ $side == B ]] && bin=$head extra=${B_ENV:-} sbench=${B_BENCH:-$bench}
        load=$(cut -d' ' -f1 /proc/loadavg)
        f=$out/r$r-$side.out
        # shellcheck disable=SC2086 # extra: zero or more NAME=VALUE words
        if ! env $extra TICKCORE_BIN="$bin" TICKCORE_BENCH_SERVE_RUNS="$runs" \
            TICKCORE_BENCH_SERVE_MESSAGES="$msgs" "$sbench" >"$f" 2>&1; then
            echo "serve_ab: round $r side $side: bench_serve failed, see $f" >&2
            failed=1
        fi
        # the summary rows: run rate M/s ratio gaps lost p50 p99 p999 sent_p99 sent_p999 boost
        # demoted gen_p99 excl_p99 excl_p999 (an older bench_serve without the last three or
        # six: "-")
        awk -v side="$side" -v load="$load" -v r="$r" '
            /^summary/ { on = 1; next }
            on && NF >= 10 && $1 != "run" && $1 != "ERRORS" {
                print side "\t" r "\t" load "\t" $1 "\t" $3 "\t" $5 "\t" $6 "\t" $7 "\t" $8 "\t" $9 "\t" $10 "\t" (NF >= 13 ? $11 : "-") "\t" (NF >= 13 ? $13 : "-") "\t" (NF >= 16 ? $14 : "-") "\t" (NF >= 16 ? $15 : "-") "\t" (NF >= 16 ? $16 : "-")
            }' "$f" >>"$out/rows.tsv"
        printf '  round %d %s: load %s  %s\n' "$r" "$side" "$load" \
            "$(awk -F'\t' -v s="$side" -v r="$r" '$1==s && $2==r {printf "%s %s M msg/s gaps %s lost %s p50 %s p99 %s p99.9 %s (sent p99 %s)  ", $4,$5,$6,$7,$8,$9,$10,$11}' "$out/rows.tsv")"
    done
done
python3 - "$out/rows.tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = [("M msg/s", 4), ("gaps", 5), ("lost", 6), ("p50 ms", 7), ("p99 ms", 8), ("p99.9 ms", 9),
        ("p99 from send", 10), ("p99.9 from send", 11), ("boost demotions", 12),
        ("generator p99", 13), ("p99 less gen.", 14), ("p99.9 less gen.", 15)]
for run in sorted({r[3] for r in rows}):
    print(f"\n{run}: median over rounds [min-max]")
    print(f"  {'figure':<14} {'A (base)':>24} {'B (head)':>24} {'B/A':>6}")
    for name, i in cols:
        v = {s: [float(r[i]) for r in rows if r[0] == s and r[3] == run and r[i] != "-"]
             for s in "AB"}
        if not v["A"] or not v["B"]:
            continue
        m = {s: statistics.median(v[s]) for s in "AB"}
        cell = {s: f"{m[s]:.3f} [{min(v[s]):.3f}-{max(v[s]):.3f}]" for s in "AB"}
        ratio = f"{m['B'] / m['A']:.2f}" if m["A"] else "-"
        print(f"  {name:<14} {cell['A']:>24} {cell['B']:>24} {ratio:>6}")
    for s in "AB":
        loads = [r[2] for r in rows if r[0] == s and r[3] == run]
        print(f"  load average before each {s} run: {' '.join(loads)}")
EOF
exit $failed
