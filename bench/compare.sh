#!/usr/bin/env bash
# bench/compare.sh BASE: what a change costs, BASE (any git revision) against HEAD (the working
# tree, uncommitted changes included). `make compare BASE=rev` runs it.
#
# BASE is checked out in a temporary git worktree under build/compare/ and both sides get a
# RELEASE=1 build (build/release/tickcore; bench_book too where bench/bench_book.c exists). One
# fixed day (gen --messages 2M --symbols 200 --sectors 10 --seed 7, HEAD's generator) feeds both.
# Then COMPARE_RUNS rounds (default 5), interleaved A B, B A, A B ... (a drift of the machine's
# load falls on both sides alike), each figure the median of its runs:
#   replay msg/s          tickcore replay --json --repeat 5 of the day (default config): its own
#                         figure (wall) and messages per CPU second of the process (user + sys,
#                         start-up included; less disturbed by other loads on shared cores)
#   decode-only msg/s     tickcore replay --decode-only --json --repeat 20, the same two figures
#   bench_book ev/s       book_apply_batch on 2*10^6 events, median of 3 passes, wall and per
#                         CPU second (both sides must have bench_book)
#   query p50/p99         HEAD's bench_serve against each side's binary: one run feeding a 2M-message
#                         day over TCP at 560k msg/s with 1,000 queries/s (tcp-peak); the latency of
#                         the answers while ingesting (open loop, from the scheduled send time)
# and once per side the memory scenarios of tests/budgets (replay, serve fed over TCP, selfcheck):
# bytes held at the seal and allocation calls before it per tag (for a BASE whose report has no
# seal figures: each tag's calls and bytes over the whole run, on both sides), peak RSS, churn,
# pool and arena high-water marks. Prints the machine, the date and one table with BASE, HEAD and
# HEAD/BASE, and for speed the spread of the runs; memory rows per tag or object only where the
# two differ. Raw figures stay in
# build/compare/. COMPARE_KEEP=1 keeps the BASE worktree (and its build) for the next run.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
fi
cd "$(git rev-parse --show-toplevel)"
runs=${COMPARE_RUNS:-5}
base_sha=$(git rev-parse --verify --quiet "$1^{commit}") || {
    echo "compare: '$1' is not a git revision" >&2
    exit 2
}
out=build/compare
wt=$out/base-${base_sha:0:12}
mkdir -p "$out"
jobs=-j$(nproc 2> /dev/null || echo 2)
t_start=$(date +%s)

cleanup() {
    if [ -z "${COMPARE_KEEP:-}" ] && [ -e "$wt/.git" ]; then
        git worktree remove --force "$wt" > /dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# ---- builds ----------------------------------------------------------------------------------
if [ ! -e "$wt/.git" ]; then
    rm -rf "$wt"
    git worktree add --detach --quiet "$wt" "$base_sha"
fi
log=$out/build.log
: > "$log"
base_targets=build/release/tickcore
[ -f "$wt/bench/bench_book.c" ] && base_targets+=" build/release/bench/bench_book"
echo "compare: building BASE ${base_sha:0:12} (RELEASE=1) in $wt ..."
# shellcheck disable=SC2086
make --no-print-directory -C "$wt" $jobs RELEASE=1 $base_targets >> "$log" 2>&1 || {
    tail -n 30 "$log"
    echo "compare: BASE build failed (log: $log)" >&2
    exit 1
}
echo "compare: building HEAD (the working tree, RELEASE=1) ..."
make --no-print-directory "$jobs" RELEASE=1 build/release/tickcore build/release/bench/bench_book \
    build/release/bench/bench_serve >> "$log" 2>&1 || {
    tail -n 30 "$log"
    echo "compare: HEAD build failed (log: $log)" >&2
    exit 1
}
declare -A bin=([A]=$wt/build/release/tickcore [B]=build/release/tickcore)
declare -A book=([A]=$wt/build/release/bench/bench_book [B]=build/release/bench/bench_book)
[ -x "${book[A]}" ] || book[A]=""
serve_bench=build/release/bench/bench_serve

day=$out/day.itch
if [ ! -f "$day" ] || [ "$day" -ot "${bin[B]}" ]; then
    "${bin[B]}" gen --messages 2M --symbols 200 --sectors 10 --seed 7 --no-truth --out "$day" \
        > /dev/null
fi

# ---- measurements ----------------------------------------------------------------------------
raw=$out/raw.tsv # side metric value, one line per measurement
: > "$raw"
jfield() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
note() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$raw"; }

echo "compare: memory scenarios (tests/budgets), once per side ..."
for side in A B; do
    python3 tests/budgets/budgets.py measure --bin "${bin[$side]}" --day "$day" --run-totals \
        --out "$out/mem-$side.json" > /dev/null ||
        echo "compare: a memory scenario failed for $side (see $out/mem-$side.json)" >&2
done

# timed_replay SIDE NAME COMMAND...: the replay's own msg/s (wall) and messages per CPU second
# of the process (user + sys, from bash's time: less disturbed by other loads on shared cores).
timed_replay() {
    local side=$1 name=$2 json=$out/last.json tf=$out/last.time
    shift 2
    local TIMEFORMAT='%U %S'
    if { time "$@" > "$json" 2> /dev/null; } 2> "$tf"; then
        note "$side" "${name}_msgs" "$(jfield messages_per_s < "$json")"
        local msgs user sys
        msgs=$(jfield messages < "$json")
        read -r user sys < "$tf"
        note "$side" "${name}_cpu" "$(awk -v m="$msgs" -v u="$user" -v s="$sys" \
            'BEGIN { printf "%.0f", m / (u + s) }')"
    fi
}

one_round() { # one_round SIDE
    local side=$1
    local b=${bin[$1]} bk=${book[$1]}
    timed_replay "$side" replay "$b" replay --json --no-progress --repeat 5 "$day"
    timed_replay "$side" decode "$b" replay --decode-only --json --no-progress --repeat 20 "$day"
    if [ -n "${book[A]}" ] && [ -n "$bk" ]; then
        local line
        line=$(TICKCORE_BENCH_EVENTS=2000000 TICKCORE_BENCH_RUNS=3 "$bk" 2> /dev/null |
            grep '^book_apply_batch' || true)
        if [[ $line =~ :\ ([0-9.]+)\ M\ msgs/s\ wall.*,\ ([0-9.]+)\ M\ msgs\ per\ CPU ]]; then
            note "$side" book_wall "${BASH_REMATCH[1]}e6"
            note "$side" book_cpu "${BASH_REMATCH[2]}e6"
        fi
    fi
    local s
    s=$(TICKCORE_BIN=$b TICKCORE_BENCH_SERVE_RUNS=tcp-peak TICKCORE_BENCH_SERVE_MESSAGES=2M \
        "$serve_bench" 2>&1 || true)
    local lat
    lat=$(grep '200 answers, while ingesting' <<< "$s" || true)
    if [[ $lat =~ p50\ +([0-9.]+)\ ms\ +p99\ +([0-9.]+)\ ms ]]; then
        note "$side" query_p50 "${BASH_REMATCH[1]}"
        note "$side" query_p99 "${BASH_REMATCH[2]}"
    else
        echo "compare: bench_serve gave no latency for $side:" >&2
        tail -n 5 <<< "$s" >&2
    fi
    local ing
    ing=$(grep '^ingest:' <<< "$s" || true)
    if [[ $ing =~ =\ ([0-9.]+)\ M\ msg/s ]]; then
        note "$side" serve_msgs "${BASH_REMATCH[1]}e6"
    fi
}

for ((r = 1; r <= runs; r++)); do
    if ((r % 2)); then
        echo "compare: round $r of $runs: BASE, then HEAD ..."
        one_round A
        one_round B
    else
        echo "compare: round $r of $runs: HEAD, then BASE ..."
        one_round B
        one_round A
    fi
done

# ---- the table -------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
dirty=$(git diff --quiet HEAD -- . ':!build' || echo ', with uncommitted changes')
echo
echo "machine: ${cpu:-?}, $(nproc) cores, $(uname -sr); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "BASE: $(git log -1 --format='%h %s' "$base_sha" | cut -c1-100)"
echo "HEAD: the working tree at $(git log -1 --format='%h %s' HEAD | cut -c1-80)$dirty"
echo "speed: medians of $runs interleaved runs (A B, B A, ...); memory: one run per side"
python3 - "$raw" "$out/mem-A.json" "$out/mem-B.json" << 'EOF'
import json, statistics, sys
raw, mem_a, mem_b = sys.argv[1], sys.argv[2], sys.argv[3]
vals = {}
for line in open(raw):
    side, metric, v = line.rstrip("\n").split("\t")
    vals.setdefault((side, metric), []).append(float(v))
def med(side, metric):
    v = vals.get((side, metric))
    return statistics.median(v) if v else None
rows = []
def row(label, a, b, unit="", better="higher"):
    rows.append((label, a, b, unit, better))
def spread(m):
    """The larger of the two sides' (max - min) / median: how far this machine moved the runs."""
    out = 0.0
    for side in ("A", "B"):
        v = vals.get((side, m))
        if v and statistics.median(v):
            out = max(out, (max(v) - min(v)) / statistics.median(v))
    return out
speed = [("replay, msg/s (wall)", "replay_msgs", "higher"),
         ("replay, msg per CPU s", "replay_cpu", "higher"),
         ("decode-only, msg/s (wall)", "decode_msgs", "higher"),
         ("decode-only, msg per CPU s", "decode_cpu", "higher"),
         ("bench_book batch, ev/s (wall)", "book_wall", "higher"),
         ("bench_book batch, ev/s per CPU s", "book_cpu", "higher"),
         ("query p50 under load, ms", "query_p50", "lower"),
         ("query p99 under load, ms", "query_p99", "lower")]
for label, m, better in speed:
    if med("A", m) is None and med("B", m) is None:
        continue
    row(label, med("A", m), med("B", m), f"{100 * spread(m):.0f}%", better=better)
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return {}
ma, mb = load(mem_a), load(mem_b)
for sc in ("replay", "serve", "selfcheck"):
    fa = ma.get(sc, {}).get("figures", {})
    fb = mb.get(sc, {}).get("figures", {})
    if not fa or not fb:
        err = ma.get(sc, {}).get("error") or mb.get(sc, {}).get("error") or "not measured"
        rows.append((f"{sc}: memory", None, None, err, ""))
        continue
    seal = any(k.startswith("seal_live.") for k in fa) and any(k.startswith("seal_live.") for k in fb)
    kinds = (("seal_live", "bytes held at the seal"), ("seal_allocs", "alloc calls before the seal")) \
        if seal else (("bytes_alloc", "bytes allocated, whole run"), ("allocs", "alloc calls, whole run"))
    for k, label in kinds:
        ta = sum(v for f, v in fa.items() if f.startswith(k + "."))
        tb = sum(v for f, v in fb.items() if f.startswith(k + "."))
        row(f"{sc}: {label}, all tags", ta, tb, better="lower")
    row(f"{sc}: peak RSS, bytes", fa.get("peak_rss"), fb.get("peak_rss"), better="lower")
    ca = sum(v for f, v in fa.items() if f.startswith("churn_allocs."))
    cb = sum(v for f, v in fb.items() if f.startswith("churn_allocs."))
    row(f"{sc}: allocations after the seal", ca, cb, better="lower")
    same = 0
    for f in sorted(set(fa) | set(fb)):
        if not (f.split(".")[0] in (kinds[0][0], kinds[1][0]) or f.startswith("high_water.")):
            continue
        if fa.get(f) == fb.get(f):
            same += 1
            continue
        row(f"{sc}:   {f}", fa.get(f), fb.get(f), better="lower")
    rows.append((f"{sc}:   ({same} per-tag/object figures equal)", "", "", "", ""))
def fmt(v):
    if v is None:
        return "n/a"
    if v == "":
        return ""
    if abs(v) >= 1e6:
        return f"{v / 1e6:,.2f} M"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:.3f}"
w = max(len(r[0]) for r in rows) + 2
print()
print(f"{'figure':<{w}}{'BASE':>16}{'HEAD':>16}{'HEAD/BASE':>11}{'spread':>9}")
for label, a, b, note, better in rows:
    if a is None and b is None and note:
        print(f"{label:<{w}}{note}")
        continue
    ratio = ""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a:
            ratio = f"{b / a:.3f}"
        elif b == a:
            ratio = "="
        else:
            ratio = "new"
    print(f"{label:<{w}}{fmt(a):>16}{fmt(b):>16}{ratio:>11}{note:>9}")
print()
print("ratio > 1: HEAD higher (better for msg/s and ev/s; worse for latency, bytes, calls, RSS);")
print("spread: (max - min) / median of the runs, the larger side: a ratio inside it is noise")
EOF
echo "compare: $(($(date +%s) - t_start)) s; raw figures in $raw, $out/mem-A.json, $out/mem-B.json"
