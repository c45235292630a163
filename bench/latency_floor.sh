#!/usr/bin/env bash
# latency_floor.sh: is the query latency left under load tickcore's, or this machine's floor?
#
#   bench/latency_floor.sh [ROUNDS] [MESSAGES] [CYCLICTEST_SECONDS]
#
# ROUNDS (default 5) interleaved rounds of four measurements, the order rotated each round:
#   tickcore   build/release/bench/bench_serve tcp-1m: tickcore serve fed 1 M msg/s over TCP,
#              answering 1,000 queries/s open loop (TICKCORE_BENCH_SERVE_TARGET=tickcore)
#   control    the same run, tickcore fed the same way, but the queries answered by
#              bench/http_control (libmicrohttpd as tickcore runs it, preformed answers of
#              tickcore's sizes, no work per request; TICKCORE_BENCH_SERVE_TARGET=control)
#   ctl-idle   the control alone, no tickcore and no feed, for as long (control-idle)
#   cyclictest `cyclictest -m -p 90 -t 2 -a -i 1000 -D CYCLICTEST_SECONDS -q` (default 10 s) with
#              a histogram to 100 ms (-h, which also puts both threads at priority 90): how late a
#              SCHED_FIFO 90 thread doing nothing else wakes on this machine
# MESSAGES (default 3M) is bench_serve's day (tcp-1m: about MESSAGES / 10^6 s of ingest and
# 1,000 queries per second of it). Each measurement is kept with the 1-minute load average read
# just before it; at the end one table gives each figure's median over the rounds [min-max]:
# query p50/p99/p99.9 from the scheduled send of the answers due while ingesting (the headline;
# ctl-idle: due in the same window after the lead; the lead itself is left out, where tickcore
# answers warm-up 404/503s and the control 200s), the same over the whole run, p99/p99.9 from the
# actual send, the server's part from the scheduled send (less the load generator's own
# lateness), the ingest rate, and cyclictest's p50/p99/p99.9/max wake-up latency; then tickcore over control (the same load:
# what tickcore itself adds) and the load averages. The machine is printed first. If tickcore is
# near the control under the same ingest, and the control near ctl-idle and cyclictest, what is
# left is the machine's, not tickcore's. Extra environment (TICKCORE_BENCH_SERVE_BOOST=off, the
# binaries: TICKCORE_BIN, BENCH_SERVE) reaches every run. Raw outputs in build/latency_floor/.
# Exit 1 if any bench_serve failed (its output is named). Figures, not pass/fail.
set -euo pipefail

rounds=${1:-5} msgs=${2:-3M} ct_s=${3:-10}
bench=${BENCH_SERVE:-build/release/bench/bench_serve}
bin=${TICKCORE_BIN:-build/release/tickcore}
control=${TICKCORE_BENCH_SERVE_CONTROL:-$(dirname "$bench")/http_control}
for b in "$bench" "$bin" "$control"; do
    [[ -x $b ]] || { echo "latency_floor: $b: not an executable (make RELEASE=1 bench-bin build/release/tickcore)" >&2; exit 2; }
done
have_ct=1
command -v cyclictest >/dev/null || { have_ct=0; echo "latency_floor: no cyclictest (Debian rt-tests): its rows are left out" >&2; }
out=build/latency_floor
mkdir -p "$out"
rm -f "$out"/*.out "$out"/*.hist "$out"/rows.tsv
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
vm=$(grep -qw hypervisor /proc/cpuinfo && echo ", a virtual machine (cpuinfo: hypervisor)")
echo "machine: ${cpu:-?}, $(nproc) cores, $(uname -srv)$vm"
echo "latency_floor: $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds rounds; bench_serve tcp-1m, $msgs messages, $bin; control $control; cyclictest ${ct_s} s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"

modes=(tickcore control ctl-idle cyclictest)
((have_ct)) || modes=(tickcore control ctl-idle)
failed=0
for ((r = 1; r <= rounds; r++)); do
    k=$(((r - 1) % ${#modes[@]}))
    order=("${modes[@]:k}" "${modes[@]:0:k}")
    for m in "${order[@]}"; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        f=$out/r$r-$m.out
        if [[ $m == cyclictest ]]; then
            if ! cyclictest -m -p 90 -t 2 -a -i 1000 -D "$ct_s" -q -h 100000 \
                --histfile="$out/r$r-ct.hist" >"$f" 2>&1; then
                echo "latency_floor: round $r: cyclictest failed, see $f" >&2
                failed=1
                continue
            fi
            # p50 p99 p99.9 max (ms) over both threads; overflows (over 100 ms) count as the max
            python3 - "$out/r$r-ct.hist" "$r" "$load" >>"$out/rows.tsv" <<'EOF'
import sys
counts, over, mx = {}, 0, 0
for line in open(sys.argv[1]):
    if line.startswith("# Histogram Overflows:"):
        over = sum(int(x) for x in line.split(":")[1].split())
    elif line.startswith("# Max Latencies:"):
        mx = max(int(x) for x in line.split(":")[1].split())
    elif line[:1].isdigit():
        f = line.split()
        counts[int(f[0])] = sum(int(x) for x in f[1:])
n = sum(counts.values()) + over
def q(p):
    want, seen = p * n, 0
    for us in sorted(counts):
        seen += counts[us]
        if seen >= want:
            return us / 1000
    return mx / 1000
print("\t".join(["cyclictest", sys.argv[2], sys.argv[3], f"{q(0.5):.3f}", f"{q(0.99):.3f}",
                 f"{q(0.999):.3f}", f"{mx / 1000:.3f}", "-", "-", "-", "-", "-", str(n),
                 f"{q(0.5):.3f}", f"{q(0.99):.3f}", f"{q(0.999):.3f}"]))
EOF
        else
            target=$m
            [[ $m == ctl-idle ]] && target="control-idle"
            if ! env TICKCORE_BIN="$bin" TICKCORE_BENCH_SERVE_CONTROL="$control" \
                TICKCORE_BENCH_SERVE_TARGET="$target" TICKCORE_BENCH_SERVE_RUNS=tcp-1m \
                TICKCORE_BENCH_SERVE_MESSAGES="$msgs" "$bench" >"$f" 2>&1; then
                echo "latency_floor: round $r $m: bench_serve failed, see $f" >&2
                failed=1
            fi
            # the summary row: run rate M/s ratio gaps lost p50 p99 p999 sent_p99 sent_p999 boost
            # demoted gen_p99 excl_p99 excl_p999 answered ing_p50 ing_p99 ing_p999
            awk -v m="$m" -v load="$load" -v r="$r" '
                /^summary/ { on = 1; next }
                on && $1 == "tcp-1m" && NF >= 20 {
                    print m "\t" r "\t" load "\t" $7 "\t" $8 "\t" $9 "\t-\t" $10 "\t" $11 "\t" $15 "\t" $16 "\t" $3 "\t" $17 "\t" $18 "\t" $19 "\t" $20
                }' "$f" >>"$out/rows.tsv"
        fi
        printf '  round %d %-10s load %-5s  %s\n' "$r" "$m" "$load" \
            "$(awk -F'\t' -v m="$m" -v r="$r" '$1==m && $2==r {printf "p50 %s p99 %s p99.9 %s ms%s", $14, $15, $16, (m=="cyclictest" ? " max " $7 " ms" : "  (from send p99 " $8 ", server part p99 " $10 "; ingest " $12 " M msg/s; answered by " $13 ")")}' "$out/rows.tsv")"
    done
done
python3 - "$out/rows.tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
modes = [m for m in ("tickcore", "control", "ctl-idle", "cyclictest") if any(r[0] == m for r in rows)]
cols = [("p50 ms", 13), ("p99 ms", 14), ("p99.9 ms", 15), ("max ms (cyclictest)", 6),
        ("whole run p50", 3), ("whole run p99", 4), ("whole run p99.9", 5),
        ("from send p99", 7), ("from send p99.9", 8), ("server part p99", 9),
        ("server part p99.9", 10), ("ingest M msg/s", 11)]
def vals(m, i):
    return [float(r[i]) for r in rows if r[0] == m and r[i] not in ("-", "")]
print("\nlatency floor: median over rounds [min-max]; queries from the scheduled send, answers due "
      "while ingesting (ctl-idle: in the same window after the lead; cyclictest: wake-ups), unless named")
print(f"  {'figure':<20}" + "".join(f"{m:>26}" for m in modes))
for name, i in cols:
    if not any(vals(m, i) for m in modes):
        continue
    cells = []
    for m in modes:
        v = vals(m, i)
        cells.append(f"{statistics.median(v):.3f} [{min(v):.3f}-{max(v):.3f}]" if v else "-")
    print(f"  {name:<20}" + "".join(f"{c:>26}" for c in cells))
if "tickcore" in modes and "control" in modes:
    parts = []
    for name, i in cols[:3] + cols[4:11]:
        a, b = vals("tickcore", i), vals("control", i)
        if a and b and statistics.median(b) > 0:
            parts.append(f"{name} {statistics.median(a) / statistics.median(b):.2f}")
    print("  tickcore / control (the same ingest; medians): " + ", ".join(parts))
for m in modes:
    print(f"  load average before each {m} run: {' '.join(r[2] for r in rows if r[0] == m)}")
EOF
exit $failed
