#!/usr/bin/env bash
# replay_ab.sh: two tickcore binaries on the same input, alternated, medians: the A/B of a change
# to the hot path on a machine shared with other jobs (a drift of the load falls on both alike).
#
#   bench/replay_ab.sh ROUNDS BIN_A BIN_B -- REPLAY_ARGS...
#   bench/replay_ab.sh 8 /tmp/base/tickcore build/release/tickcore -- replay day.itch
#   bench/replay_ab.sh 8 /tmp/base/tickcore build/release/tickcore -- replay day.itch --decode-only
#
# Each round runs A then B (odd rounds B then A), each a whole process timed by /usr/bin/time,
# with --json added to REPLAY_ARGS. Per binary, the medians over the rounds of:
#   run s       the replay's own "seconds" (start-up and teardown excluded) and its msg/s
#   wall s      the whole process (start-up, truth comparison and teardown included), and msg/s
#   cpu s       user + sys of the whole process, and messages per CPU second
#   worker s    CPU seconds of the shard workers, summed (analytics.pipeline.worker_cpu_s; "-"
#               for --decode-only or a binary without the field): what the book and stats cost,
#               which preemption on shared cores does not inflate
# Exit status: 0 done, 1 a run failed, 2 usage. The raw rows stay in $TMPDIR/replay_ab.rows.
set -euo pipefail
if [ $# -lt 5 ] || [ "$4" != -- ]; then
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
fi
rounds=$1 a=$2 b=$3
shift 4
for bin in "$a" "$b"; do
    [ -x "$bin" ] || { echo "replay_ab: $bin is not an executable" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "replay_ab: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
tmp=${TMPDIR:-/tmp}
rows=$tmp/replay_ab.rows
json=$(mktemp "$tmp/replay_ab.XXXXXX")
tim=$(mktemp "$tmp/replay_ab.XXXXXX")
trap 'rm -f "$json" "$tim"' EXIT
: > "$rows"
for ((i = 0; i < rounds; i++)); do
    if ((i % 2)); then order=("$b" "$a"); else order=("$a" "$b"); fi
    for bin in "${order[@]}"; do
        if ! /usr/bin/time -f "%e %U %S" -o "$tim" "$bin" "$@" --json > "$json" 2> /dev/null; then
            echo "replay_ab: $bin $* failed" >&2
            exit 1
        fi
        python3 - "$bin" "$json" "$tim" >> "$rows" << 'PY'
import json, sys
d = json.load(open(sys.argv[2]))
wall, user, sys_ = (float(x) for x in open(sys.argv[3]).read().split()[-3:])
an = d.get("analytics")
p = an.get("pipeline", {}) if isinstance(an, dict) else {}
w = p.get("worker_cpu_s")
print(sys.argv[1], d["messages"], d["seconds"], wall, user + sys_, sum(w) if w else "nan")
PY
    done
done
python3 - "$a" "$b" "$rows" << 'PY'
import math, statistics as st, sys
rows = [l.split() for l in open(sys.argv[3])]
print(f"{'binary':<40} {'rounds':>6} {'run s':>8} {'M msg/s':>8} {'wall s':>7} {'M msg/s':>8}"
      f" {'cpu s':>7} {'M/cpu s':>8} {'worker s':>8}")
for b in sys.argv[1:3]:
    r = [x for x in rows if x[0] == b]
    m = float(r[0][1])
    med = lambda k: st.median(float(x[k]) for x in r)
    run, wall, cpu, wk = med(2), med(3), med(4), med(5)
    wks = "-" if math.isnan(wk) else f"{wk:.3f}"
    print(f"{b[-40:]:<40} {len(r):>6} {run:>8.3f} {m / run / 1e6:>8.1f} {wall:>7.3f}"
          f" {m / wall / 1e6:>8.1f} {cpu:>7.3f} {m / cpu / 1e6:>8.1f} {wks:>8}")
PY
