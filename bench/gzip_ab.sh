#!/bin/bash
# gzip_ab.sh: gzip replay against its peer, interleaved. Each round runs the bare ISA-L loop
# (bench_inflate FILE 1, one thread) on the single-member file, then every binary given on the
# single-member and the multi-member file (`replay --decode-only --json`), alternating, so that
# every figure of a round shares the machine's state. Printed per run: the replay's `seconds`
# (start-up excluded), the whole process (wall, user+sys CPU); at the end, medians, compressed
# MB/s (file size / seconds) and the ratio to the bare loop's median.
#   bench/gzip_ab.sh ROUNDS SINGLE.gz MULTI.gz BIN [BIN...]
#   e.g. bench/gzip_ab.sh 5 day.itch.gz day-members.itch.gz /tmp/main/tickcore build/release/tickcore
# BI names bench_inflate (default build/release/bench/bench_inflate).
set -eu
if [ $# -lt 4 ]; then
    sed -n 2,9p "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
rounds=$1 single=$2 multi=$3
shift 3
bi=${BI:-build/release/bench/bench_inflate}
log=$(mktemp)
tm=$(mktemp)
trap 'rm -f "$log" "$tm"' EXIT
for r in $(seq "$rounds"); do
    echo "round $r load $(cut -d' ' -f1 /proc/loadavg)"
    s=$("$bi" "$single" 1 | sed -n 's/.*median of 1: \([0-9.]*\) s.*/\1/p')
    echo "bare single $s" | tee -a "$log"
    for f in single multi; do
        file=$single
        [ $f = multi ] && file=$multi
        i=0
        for b in "$@"; do
            i=$((i + 1))
            secs=$(/usr/bin/time -f '%e %U %S' -o "$tm" "$b" replay --decode-only --json \
                --no-progress "$file" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
            read -r wall usr sys < "$tm"
            cpu=$(python3 -c "print(round($usr + $sys, 2))")
            echo "bin$i $f $secs whole $wall cpu $cpu" | tee -a "$log"
        done
    done
done
echo "binaries: $(i=0; for b in "$@"; do i=$((i + 1)); printf 'bin%d=%s ' $i "$b"; done)"
python3 - "$log" "$single" "$multi" <<'EOF'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    a = line.split()
    rows.setdefault((a[0], a[1]), []).append([float(x) for x in a[2::2]])
size = {"single": os.path.getsize(sys.argv[2]) / 1e6, "multi": os.path.getsize(sys.argv[3]) / 1e6}
bare = statistics.median(v[0] for v in rows[("bare", "single")])
print(f"bare ISA-L, single member: median {bare:.3f} s, {size['single'] / bare:.1f} MB/s")
for (who, f), v in sorted(rows.items()):
    if who == "bare":
        continue
    m = [statistics.median(c) for c in zip(*v)]
    print(f"{who} {f}: seconds median {m[0]:.3f} ({size[f] / m[0]:.1f} MB/s, "
          f"{bare / m[0]:.2f}x bare), whole {m[1]:.3f} s ({bare / m[1]:.2f}x), cpu {m[2]:.2f} s, "
          f"rounds {' '.join(f'{x[0]:.3f}' for x in v)}")
EOF
